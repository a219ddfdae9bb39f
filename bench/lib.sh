# Shared set-up of the end-to-end benchmarks (sourced): a throwaway
# PostgreSQL 15 (fsync on, as in production) on a private unix socket and a
# release opsconductord on it. Sets D (work dir), CI (psql conninfo), HTTP,
# TRAPS (ports), SERVER (pid); metric NAME prints a value from /metrics.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${OPSC_BENCH_BIN:-build/release/bin}
PG_BINDIR=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
export PATH="$PG_BINDIR:$PATH"
D=$(mktemp -d /tmp/opsc-bench-XXXXXX); chmod 755 "$D"
SERVER=""
as_pg() { if [[ $(id -u) -eq 0 ]]; then chown -R postgres "$D"; runuser -u postgres -- "$@"; else "$@"; fi; }
bench_cleanup() {
    [[ -n $SERVER ]] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
    as_pg pg_ctl -D "$D/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$D"
}
trap bench_cleanup EXIT
metric() { curl -s "http://127.0.0.1:$HTTP/metrics" | awk -v k="$1" '$1 == k {print $2}'; }

# bench_start [EXTRA_YAML]: database, then the server with reverse DNS off.
bench_start() {
    as_pg initdb -D "$D/data" -A trust -U bench >/dev/null
    as_pg pg_ctl -D "$D/data" -l "$D/pg.log" -w -o "-k $D -c listen_addresses= -c shared_buffers=256MB" start >/dev/null
    psql -XAtq "host=$D user=bench dbname=postgres" -c "CREATE DATABASE bench" >/dev/null
    CI="host=$D user=bench dbname=bench"
    HTTP=$((20000 + RANDOM % 20000)); TRAPS=$((HTTP + 1))
    cat >"$D/opsc.yaml" <<YAML
data_dir: $D/state
http:
  listen: 127.0.0.1:$HTTP
snmp:
  listen: udp:127.0.0.1:$TRAPS
  communities: public
dns:
  cache_ttl: 0
${1:-}
YAML
    OPSC_DATABASE_URL="postgresql:///bench?host=$D&user=bench" "$BIN/opsconductord" --config "$D/opsc.yaml" 2>"$D/server.log" &
    SERVER=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$HTTP/ready" >/dev/null && return 0; sleep 0.2; done
    tail "$D/server.log"
    return 1
}
