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

# fail MESSAGE: with the end of the server's log, when there is one (a sanitizer's report is there).
fail() {
    echo "FAIL: $*" >&2
    if [[ -s ${TMP:-}/server.log ]]; then
        echo "--- last lines of $TMP/server.log:" >&2
        tail -n 60 "$TMP/server.log" >&2
    fi
    exit 1
}
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

# free_port tcp|udp: a port no socket of that protocol uses, below the kernel's
# ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 here), so that an
# outgoing connection of a test running alongside cannot take it meanwhile.
free_port() {
    local proto=$1 p lo
    lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    for _ in $(seq 1 100); do
        p=$((10000 + RANDOM % (lo - 10000)))
        if ! grep -qi "^ *[0-9]*: [0-9A-F]*:$(printf '%04X' "$p") " \
            "/proc/net/$proto" "/proc/net/${proto}6" 2>/dev/null; then
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

# ---- a server on a throwaway PostgreSQL --------------------------------------
# ext_server_config [SNMP_AND_MORE_YAML]: start a throwaway PostgreSQL, pick free
# ports (HTTP_PORT, TRAP_PORT, and TRAP6_PORT on [::1] when WANT_V6=1), set CI
# (psql conninfo) and BASE, and write $TMP/opsc.yaml. The argument follows the
# snmp section's listen line: lines indented by two spaces extend snmp, lines
# that are not start sections of their own. Default: "  communities: public".
ext_server_config() {
    start_ext_pg
    CI="host=$EXT_PG user=opsc_ext dbname=opsc_ext"
    HTTP_PORT=$(free_port tcp)
    TRAP_PORT=$(free_port udp)
    BASE="http://127.0.0.1:$HTTP_PORT"
    local listen="udp:127.0.0.1:$TRAP_PORT"
    if [[ ${WANT_V6:-} == 1 ]]; then
        TRAP6_PORT=$(free_port udp)
        listen+=",udp6:[::1]:$TRAP6_PORT"
    fi
    cat >"$TMP/opsc.yaml" <<YAML
data_dir: $TMP/data
http:
  listen: 127.0.0.1:$HTTP_PORT
snmp:
  listen: $listen
${1:-  communities: public}
YAML
}

# start_server [READY_SECONDS]: opsconductord on the throwaway database; SERVER is its pid.
start_server() {
    OPSC_DATABASE_URL="$EXT_URL" "$BIN" --config "$TMP/opsc.yaml" >>"$TMP/server.log" 2>&1 &
    SERVER=$!
    CLEANUP_PIDS+=("$SERVER")
    wait_for_code "$BASE/ready" 200 "${1:-30}" || { tail -n 30 "$TMP/server.log"; fail "not ready"; }
}

# stop_server: SIGTERM, which must end it with exit status 0 within 10 s.
stop_server() {
    kill -TERM "$SERVER"
    wait_exit "$SERVER" 10 || fail "no exit after SIGTERM"
    [[ $EXIT_STATUS -eq 0 ]] || fail "exit status $EXIT_STATUS"
}

q() { psql -XAtq "$CI" -c "$1"; }

# wait_q SQL EXPECTED SECONDS: until the query returns EXPECTED.
wait_q() {
    local deadline=$((SECONDS + $3)) got=""
    while ((SECONDS < deadline)); do
        got=$(q "$1" 2>&1 || true) # the database may be away for a moment
        [[ $got == "$2" ]] && return 0
        sleep 0.2
    done
    echo "got: $got  expected: $2" >&2
    return 1
}

# metric NAME_WITH_LABELS: its value on /metrics, 0 when absent.
metric() {
    local m
    m=$(curl -s --max-time 10 "$BASE/metrics")
    awk -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? 0 : v) }' <<<"$m"
}

# ---- REST calls ---------------------------------------------------------------
# curl_j METHOD PATH TOKEN [BODY [CONTENT_TYPE]]: prints "STATUS BODY".
curl_j() {
    local args=(-s -o "$TMP/body" -w '%{http_code}' -X "$1" "$BASE$2")
    [[ -n $3 ]] && args+=(-H "Authorization: Bearer $3")
    [[ -n ${4:-} ]] && args+=(-H "Content-Type: ${5:-application/json}" --data-binary "$4")
    local code
    code=$(curl "${args[@]}")
    echo "$code $(cat "$TMP/body")"
}
# expect STATUS "STATUS BODY" WHAT
expect() { [[ ${2%% *} == "$1" ]] || fail "$3: expected $1, got: ${2:0:600}"; }
# py 'EXPR over d' <<< "STATUS BODY": a Python expression over the JSON body.
py() { python3 -c "import json,sys; d=json.loads(sys.stdin.read().split(' ',1)[1]); print(($1))"; }
# new_token NAME ROLE: a new API token made with the bootstrap admin token.
new_token() {
    local r
    r=$(curl_j POST /api/v1/tokens "$OPSC_ADMIN_TOKEN" "{\"name\": \"$1\", \"role\": \"$2\"}")
    expect 201 "$r" "token $1"
    py 'd["token"]' <<<"$r"
}
