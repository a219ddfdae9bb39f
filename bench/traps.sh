#!/usr/bin/env bash
# One opsbench traps run against a fresh release server on a fresh
# PostgreSQL, then what the database holds.
#
#   bench/traps.sh OPSBENCH_OPTIONS...
#   e.g. bench/traps.sh --count 6000000 --devices 1 --interfaces 1 --rate 200000   (30 s storm)
#   BENCH_YAML="correlation: {flap_threshold: 0}" bench/traps.sh ...   (extra server config)
source "$(dirname "$0")/lib.sh"
bench_start "${BENCH_YAML:-}"
echo "# opsbench traps $*, $(nproc) cores, $(date -u +%F)"
"$BIN/opsbench" traps --target "127.0.0.1:$TRAPS" --metrics "http://127.0.0.1:$HTTP/metrics" --duration 120 "$@"
echo "database: $(psql -XAtq "$CI" -c "SELECT count(*) || ' alert rows, ' || coalesce(sum(occurrence_count), 0) || ' occurrences, ' || count(*) FILTER (WHERE status = 'active') || ' active' FROM alerts")"
echo "server: peak resident set $(awk '/VmHWM/ {print $2 " " $3}' /proc/$SERVER/status)"
