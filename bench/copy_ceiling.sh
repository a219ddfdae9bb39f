#!/usr/bin/env bash
# What PostgreSQL itself does with the rows the store writes for new alerts:
# COPY of the alert rows alone (the issue's baseline) against COPY of the alert
# rows and their `created` history rows, and plain INSERT ... SELECT of both.
#
#   bench/copy_ceiling.sh [ALERTS]     (default 40000; release build)
#
# The rows are real: opsbench sends ALERTS new-fingerprint traps through a
# release server first; its tables are then copied out and loaded back.
source "$(dirname "$0")/lib.sh"
N=${1:-40000}
bench_start
"$BIN/opsbench" traps --target "127.0.0.1:$TRAPS" --metrics "http://127.0.0.1:$HTTP/metrics" \
    --count "$N" --rate 8000 --devices "$N" --interfaces 4 --dup-ratio 0 --duration 60 >/dev/null
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
P() { psql -XAtq "$CI" "$@"; }
P -c "CREATE TABLE src AS SELECT * FROM alerts" -c "CREATE TABLE hsrc AS SELECT * FROM alert_history"
ROWS=$(P -c "SELECT count(*) FROM src")
echo "# $ROWS alerts (raw_data $(P -c "SELECT round(avg(pg_column_size(raw_data))) FROM src") bytes on average), $(nproc) cores, $(date -u +%F)"
P -c "COPY src TO '$D/src.copy'" -c "COPY hsrc TO '$D/hsrc.copy'"
timed() {
    local label=$1; shift
    P -c "TRUNCATE alerts CASCADE" -c CHECKPOINT 2>/dev/null
    local t0 t1; t0=$(date +%s.%N); P "$@"; t1=$(date +%s.%N)
    awk -v l="$label" -v n="$ROWS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%-48s %6.2f s = %6.0f alerts/s\n", l, b - a, n / (b - a) }'
}
timed "COPY alerts" -c "\\copy alerts FROM '$D/src.copy'"
timed "COPY alerts, then COPY their history rows" -c "\\copy alerts FROM '$D/src.copy'" -c "\\copy alert_history FROM '$D/hsrc.copy'"
timed "INSERT SELECT alerts (no parsing)" -c "INSERT INTO alerts SELECT * FROM src"
timed "INSERT SELECT alerts and history (no parsing)" -c "BEGIN" -c "INSERT INTO alerts SELECT * FROM src" -c "INSERT INTO alert_history SELECT * FROM hsrc" -c "COMMIT"
