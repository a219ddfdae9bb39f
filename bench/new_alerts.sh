#!/usr/bin/env bash
# New alerts written to PostgreSQL, against PostgreSQL's own COPY of the same
# rows into the same table, in one run (issue 3, performance).
#
#   bench/new_alerts.sh RATE [SECONDS]      (release build: build/release/bin)
#
# 1. A throwaway PostgreSQL 15 (fsync on) and a release opsconductord on it.
# 2. opsbench sends RATE traps/s for SECONDS, nearly every one a new
#    fingerprint (dup-ratio 0 over devices x 4 interfaces); the store's held
#    items (opsc_store_pending_items) are sampled every second: a writer that
#    keeps up holds a bounded, non-growing number.
# 3. The alert rows it wrote are exported, the tables emptied, and the same
#    rows loaded back with one COPY: PostgreSQL's ceiling for these rows.
source "$(dirname "$0")/lib.sh"
RATE=${1:?usage: bench/new_alerts.sh RATE [SECONDS]}
SECS=${2:-30}
bench_start "${BENCH_YAML:-}"

COUNT=$((RATE * SECS))
DEVICES=$(( (COUNT * 2 + 3) / 4 )) # twice the fingerprints needed: nearly every draw is new
echo "# new alerts: $COUNT traps at $RATE/s for ${SECS}s, $(nproc) cores, $(date -u +%F)"
# CPU seconds (user + system) of a process and its threads, from /proc.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ s += ($14 + $15) / hz } END { printf "%.2f", s }' "$@" 2>/dev/null || echo 0; }
pg_stats() { for p in $(pgrep -f "postgres: .*bench" || true); do echo "/proc/$p/stat"; done; }
(
    for _ in $(seq 1 $((SECS + 60))); do
        echo "$(date +%s.%N) $(metric opsc_store_pending_items) $(metric 'opsc_store_rows_written_total{kind="create"}')"
        sleep 1
    done
) >"$D/pending.txt" &
SAMPLER=$!
"$BIN/opsbench" traps --target "127.0.0.1:$TRAPS" --metrics "http://127.0.0.1:$HTTP/metrics" \
    --count "$COUNT" --rate "$RATE" --devices "$DEVICES" --interfaces 4 --dup-ratio 0 \
    --duration $((SECS + 10)) >"$D/report.txt" &
SENDER=$!
# CPU over the sending window: server (all threads) and the database backends.
sleep 2
S0=$(cpu_s "/proc/$SERVER/stat"); mapfile -t PGS < <(pg_stats); P0=$(cpu_s "${PGS[@]}"); T0W=$(date +%s.%N)
sleep $((SECS - 4))
S1=$(cpu_s "/proc/$SERVER/stat"); P1=$(cpu_s "${PGS[@]}"); T1W=$(date +%s.%N)
wait "$SENDER"
cat "$D/report.txt"
# opsbench returns once the server settled (store empty, or 60 s).
kill "$SAMPLER" 2>/dev/null || true
ROWS=$(psql -XAtq "$CI" -c "SELECT count(*) FROM alerts")
awk 'NF == 3 {print $2}' "$D/pending.txt" | sort -n | tail -n 1 | xargs echo "store items held, largest 1 s sample:"
awk 'NF == 3 {printf "%s ", $2} END {print ""}' "$D/pending.txt" | cut -c1-400 | xargs echo "store items held, per second:"
calc() { awk "BEGIN {printf \"%$1\", $2}"; }
late=$(awk -v secs="$SECS" 'NF == 3 { if (!t0) t0 = $1; if ($1 - t0 >= secs && $2 > 0) n++ } END { print n + 0 }' "$D/pending.txt")
# The store's own rate while traffic flows: alert rows written between the
# first sample with rows and SECS-2 seconds later (the traffic window).
STORE_RATE=$(awk -v secs="$SECS" 'NF == 3 && $3 > 0 { if (!t0) { t0 = $1; r0 = $3 } if ($1 - t0 <= secs - 2) { t1 = $1; r1 = $3 } }
    END { if (t1 > t0) printf "%.0f", (r1 - r0) / (t1 - t0); else print 0 }' "$D/pending.txt")
echo "store: $STORE_RATE alert rows/s written while traffic flowed (each with its history row)"
echo "CPU while traffic flowed ($(calc .0f "$T1W - $T0W") s): server $(calc .0f "100 * ($S1 - $S0) / ($T1W - $T0W)")% of a core, PostgreSQL backends $(calc .0f "100 * ($P1 - $P0) / ($T1W - $T0W)")%"
echo "the store still held changes for ~$late s after the last trap; $ROWS alert rows"

# PostgreSQL's own ceiling for the same rows: COPY them back into the emptied table.
psql -XAtq "$CI" -c "COPY alerts TO '$D/alerts.copy'" 2>/dev/null || \
    psql -XAtq "$CI" -c "\\copy alerts TO '$D/alerts.copy'"
psql -XAtq "$CI" -c "TRUNCATE alerts CASCADE" >/dev/null
psql -XAtq "$CI" -c "CHECKPOINT" >/dev/null
T0=$(date +%s.%N)
psql -XAtq "$CI" -c "\\copy alerts FROM '$D/alerts.copy'"
T1=$(date +%s.%N)
COPY_RATE=$(calc .0f "$ROWS / ($T1 - $T0)")
echo "COPY of the same $ROWS rows into alerts: $(calc .2f "$T1 - $T0") s = $COPY_RATE rows/s"
echo "store rate while traffic flowed / COPY rate: $(calc .2f "$STORE_RATE / $COPY_RATE")"
