#!/usr/bin/env bash
# Benchmarks. Starts a throwaway PostgreSQL 15 (fsync on, as in production)
# on a private unix socket, runs each benchmark, stops it.
#   bench/run.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-100000}
BIN=${OPSC_BENCH_BIN:-build/bin}
PG_BINDIR=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
export PATH="$PG_BINDIR:$PATH"
D=$(mktemp -d /tmp/opsc-bench-XXXXXX); chmod 755 "$D"
as_pg() { if [[ $(id -u) -eq 0 ]]; then chown -R postgres "$D"; runuser -u postgres -- "$@"; else "$@"; fi; }
trap 'as_pg pg_ctl -D "$D/data" -m fast -w stop >/dev/null 2>&1 || true; rm -rf "$D"' EXIT
as_pg initdb -D "$D/data" -A trust -U bench >/dev/null
as_pg pg_ctl -D "$D/data" -l "$D/pg.log" -w -o "-k $D -c listen_addresses= -c shared_buffers=256MB" start >/dev/null
psql -XAtq "host=$D user=bench dbname=postgres" -c "CREATE DATABASE bench" >/dev/null
echo "# bench_pg: $ROWS alert rows into the real alerts table (fsync on), $(nproc) cores, $(date -u +%F)"
"$BIN/bench_pg" "host=$D user=bench dbname=bench" "$ROWS"
