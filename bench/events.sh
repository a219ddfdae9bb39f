#!/usr/bin/env bash
# POST /api/v1/events under wrk, next to Prometheus Alertmanager's
# POST /api/v2/alerts in the same run (issue 4, performance).
#
#   bench/events.sh [SECONDS]      (release build: build/release/bin; wrk, prometheus-alertmanager)
#
# 1. A throwaway PostgreSQL 15 (fsync on) and a release opsconductord on it.
# 2. wrk, 10 connections over keep-alive, 2 threads: one event per request,
#    then 100 events per request; 1,000 distinct alerts cycled (repeats after
#    the first round, as in a NOC); every answer is a 202 only once durable.
# 3. Alertmanager 0.25 (Debian) pinned to one core (taskset -c 1), a receiver
#    that sends nowhere: one alert per request, then 10 per request.
# wrk prints latency percentiles (--latency); non-2xx answers are counted.
source "$(dirname "$0")/lib.sh"
SECS=${1:-15}
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 1; }
AM=$(command -v prometheus-alertmanager || true)
export OPSC_ADMIN_TOKEN="bench-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
bench_start "${BENCH_YAML:-}"
TOKEN=$(curl -s -H "Authorization: Bearer $OPSC_ADMIN_TOKEN" -H 'Content-Type: application/json' \
    --data '{"name": "bench", "role": "ingest"}' "http://127.0.0.1:$HTTP/api/v1/tokens" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
echo "# events: $(nproc) cores, $(date -u +%F), ${SECS}s per run, wrk -t2 -c10"

cat >"$D/events.lua" <<'LUA'
-- BATCH events per request, 1,000 distinct alerts cycled.
local batch = tonumber(os.getenv("BATCH") or "1")
local token = os.getenv("TOKEN")
local n = 0
local function event(i)
  return string.format('{"source_system":"bench","source_alert_id":"a%d","device_ip":"10.9.%d.%d",' ..
    '"severity":"major","category":"compute","alert_type":"disk_full","title":"Disk full on host %d",' ..
    '"message":"98%% used","tags":["bench"]}', i, math.floor(i / 250), i % 250, i)
end
request = function()
  local parts = {}
  for k = 1, batch do
    parts[k] = event(n % 1000)
    n = n + 1
  end
  local body = batch == 1 and parts[1] or ("[" .. table.concat(parts, ",") .. "]")
  return wrk.format("POST", "/api/v1/events",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end
LUA
run_wrk() { # run_wrk LABEL URL LUA [ENV...]
    local label=$1 url=$2 lua=$3
    shift 3
    echo "## $label"
    env "$@" wrk -t2 -c10 -d"${SECS}s" --latency -s "$lua" "$url" | grep -E "Requests/sec|Latency |50%|90%|99%|Non-2xx|requests in"
}
run_wrk "opsconductor POST /api/v1/events, 1 event/request" "http://127.0.0.1:$HTTP" "$D/events.lua" BATCH=1 TOKEN="$TOKEN"
run_wrk "opsconductor POST /api/v1/events, 100 events/request" "http://127.0.0.1:$HTTP" "$D/events.lua" BATCH=100 TOKEN="$TOKEN"
echo "alerts stored: $(psql -XAtq "$CI" -c "SELECT count(*), sum(occurrence_count) FROM alerts")"

if [[ -n $AM ]]; then
    AMP=$((HTTP + 7))
    printf 'route:\n  receiver: none\nreceivers:\n  - name: none\n' >"$D/am.yml"
    taskset -c 1 "$AM" --config.file="$D/am.yml" --storage.path="$D/am" --web.listen-address="127.0.0.1:$AMP" \
        --cluster.listen-address= >"$D/am.log" 2>&1 &
    AMPID=$!
    for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$AMP/-/ready" >/dev/null && break; sleep 0.2; done
    cat >"$D/am.lua" <<'LUA'
local batch = tonumber(os.getenv("BATCH") or "1")
local n = 0
request = function()
  local parts = {}
  for k = 1, batch do
    local i = n % 1000
    parts[k] = string.format('{"labels":{"alertname":"DiskFull","instance":"10.9.%d.%d:9100","severity":"major"},' ..
      '"annotations":{"summary":"Disk full on host %d"}}', math.floor(i / 250), i % 250, i)
    n = n + 1
  end
  return wrk.format("POST", "/api/v2/alerts", {["Content-Type"] = "application/json"}, "[" .. table.concat(parts, ",") .. "]")
end
LUA
    run_wrk "alertmanager POST /api/v2/alerts (taskset -c 1), 1 alert/request" "http://127.0.0.1:$AMP" "$D/am.lua" BATCH=1
    run_wrk "alertmanager POST /api/v2/alerts (taskset -c 1), 10 alerts/request" "http://127.0.0.1:$AMP" "$D/am.lua" BATCH=10
    kill "$AMPID"
fi
