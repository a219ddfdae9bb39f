# Shared helpers for the integration tests (bash). Every wait is bounded.
set -euo pipefail

: "${TEST_OPSC_BIN_DIR:?set by ctest}"
: "${TEST_OPSC_SOURCE_DIR:?set by ctest}"
BIN="$TEST_OPSC_BIN_DIR/opsconductord"
PG_BINDIR=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
export PATH="$PG_BINDIR:$PATH"

TMP=$(mktemp -d /tmp/opsc-it-XXXXXX)
chmod 755 "$TMP"
CLEANUP_PIDS=()
EXT_PG=""

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

cleanup() {
    local p
    for p in "${CLEANUP_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    if [[ -n $EXT_PG ]]; then stop_ext_pg; fi
    # A postmaster of a test cluster that outlived a failed test.
    for pidfile in "$TMP"/*/pg/postmaster.pid "$TMP"/pg-ext/data/postmaster.pid; do
        [[ -f $pidfile ]] && kill -9 "$(head -n 1 "$pidfile")" 2>/dev/null || true
    done
    [[ -n ${KEEP_TMP:-} ]] || rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
    local proto=$1 p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 30000))
        if [[ $proto == tcp ]] && ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"; return 0
        elif [[ $proto == udp ]] && ! grep -qi ":$(printf '%04X' "$p") " /proc/net/udp /proc/net/udp6; then
            echo "$p"; return 0
        fi
    done
    return 1
}

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true; }

# wait_for_code URL CODE SECONDS
wait_for_code() {
    local deadline=$((SECONDS + $3))
    while ((SECONDS < deadline)); do
        [[ $(http_code "$1") == "$2" ]] && return 0
        sleep 0.1
    done
    return 1
}

# wait_exit PID SECONDS -> sets EXIT_STATUS, returns 1 on timeout
wait_exit() {
    local pid=$1 deadline=$((SECONDS + $2))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" && EXIT_STATUS=0 || EXIT_STATUS=$?
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# The embedded cluster of a data dir: postmaster.pid line 1 = pid, line 5 = socket dir.
cluster_dir() {
    local d=$1
    if [[ -f $d/pg.location ]]; then cat "$d/pg.location"; else echo "$d/pg"; fi
}
embedded_conninfo() {
    local c; c=$(cluster_dir "$1")
    echo "host=$(sed -n 5p "$c/postmaster.pid") port=$(sed -n 4p "$c/postmaster.pid") dbname=opsconductor user=opsconductor"
}

as_pg_user() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A PostgreSQL the server did not start, for database.url.
start_ext_pg() {
    EXT_PG="$TMP/pg-ext"
    mkdir -p "$EXT_PG"
    [[ $(id -u) -eq 0 ]] && chown postgres "$EXT_PG"
    as_pg_user initdb -D "$EXT_PG/data" -A trust -U opsc_ext >"$EXT_PG/initdb.log" 2>&1 ||
        fail "initdb: $(tail -n 5 "$EXT_PG/initdb.log")"
    as_pg_user pg_ctl -D "$EXT_PG/data" -l "$EXT_PG/pg.log" -w -t 60 \
        -o "-k $EXT_PG -c listen_addresses= -c fsync=off" start >/dev/null ||
        fail "pg_ctl start: $(tail -n 5 "$EXT_PG/pg.log")"
    psql -XAtq "host=$EXT_PG user=opsc_ext dbname=postgres" -c "CREATE DATABASE opsc_ext" >/dev/null
    EXT_URL="postgresql://opsc_ext@/opsc_ext?host=$EXT_PG"
}
stop_ext_pg() {
    as_pg_user pg_ctl -D "$EXT_PG/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    EXT_PG=""
}
