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
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:?usage: bench/new_alerts.sh RATE [SECONDS]}
SECS=${2:-30}
BIN=${OPSC_BENCH_BIN:-build/release/bin}
PG_BINDIR=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
export PATH="$PG_BINDIR:$PATH"
D=$(mktemp -d /tmp/opsc-newalerts-XXXXXX); chmod 755 "$D"
SERVER=""
as_pg() { if [[ $(id -u) -eq 0 ]]; then chown -R postgres "$D"; runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    [[ -n $SERVER ]] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
    as_pg pg_ctl -D "$D/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$D"
}
trap cleanup EXIT
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
YAML
OPSC_DATABASE_URL="postgresql:///bench?host=$D&user=bench" "$BIN/opsconductord" --config "$D/opsc.yaml" 2>"$D/server.log" &
SERVER=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$HTTP/ready" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$HTTP/ready" >/dev/null || { tail "$D/server.log"; exit 1; }
metric() { curl -s "http://127.0.0.1:$HTTP/metrics" | awk -v k="$1" '$1 == k {print $2}'; }

COUNT=$((RATE * SECS))
DEVICES=$(( (COUNT * 2 + 3) / 4 )) # twice the fingerprints needed: nearly every draw is new
echo "# new alerts: $COUNT traps at $RATE/s for ${SECS}s, $(nproc) cores, $(date -u +%F)"
(
    for _ in $(seq 1 $((SECS + 60))); do
        echo "$(date +%s) $(metric opsc_store_pending_items)"
        sleep 1
    done
) >"$D/pending.txt" &
SAMPLER=$!
"$BIN/opsbench" traps --target "127.0.0.1:$TRAPS" --metrics "http://127.0.0.1:$HTTP/metrics" \
    --count "$COUNT" --rate "$RATE" --devices "$DEVICES" --interfaces 4 --dup-ratio 0 \
    --duration $((SECS + 10)) | tee "$D/report.txt"
T_END=$(date +%s.%N)
for _ in $(seq 1 600); do
    [[ $(metric opsc_store_pending_items) == 0 ]] && break
    sleep 0.1
done
T_DRAINED=$(date +%s.%N)
kill "$SAMPLER" 2>/dev/null || true
ROWS=$(psql -XAtq "$CI" -c "SELECT count(*) FROM alerts")
awk 'NF == 2 {print $2}' "$D/pending.txt" | sort -n | tail -n 1 | xargs echo "store items held, largest 1 s sample:"
awk 'NF == 2 {printf "%s ", $2} END {print ""}' "$D/pending.txt" | cut -c1-400 | xargs echo "store items held, per second:"
calc() { awk "BEGIN {printf \"%$1\", $2}"; }
echo "drained $(calc .2f "$T_DRAINED - $T_END") s after the last trap; $ROWS alert rows"

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
echo "offered new-alert rate / COPY rate: $(calc .2f "$RATE / $COPY_RATE")"
