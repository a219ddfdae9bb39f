#!/usr/bin/env bash
# GET /api/v1/alerts over 1,000,000 stored alerts, under wrk (issue 4, performance).
#
#   bench/alert_reads.sh [SECONDS] [ROWS]     (release build: build/release/bin; wrk)
#
# 1. A throwaway PostgreSQL 15 and a release opsconductord on it (migrated).
# 2. ROWS alerts (default 1,000,000) inserted by SQL: 5,000 devices, 10 alert
#    types, every severity/category/status, 90% resolved, occurred_at over 30
#    days, tags; then ANALYZE.
# 3. wrk -t2 -c10 --latency on typical console queries, each with limit=100:
#    the open list, a severity filter, a device, a text search, a time window.
source "$(dirname "$0")/lib.sh"
SECS=${1:-15}
ROWS=${2:-1000000}
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 1; }
export OPSC_ADMIN_TOKEN="bench-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
bench_start "${BENCH_YAML:-}"
echo "# alert reads: $ROWS alerts, $(nproc) cores, $(date -u +%F), ${SECS}s per query, wrk -t2 -c10"
t0=$(date +%s)
psql -XAtq "$CI" <<SQL
INSERT INTO alerts (source_system, source_alert_id, device_ip, device_name, severity, category, alert_type,
                    priority, title, message, status, occurred_at, last_occurrence_at, tags, fingerprint, resolved_at)
SELECT 'bench', 'b' || i, '10.' || (i % 5000 / 250) || '.' || (i % 250) || '.1', 'dev-' || (i % 5000),
       (ARRAY['critical','major','minor','warning','info'])[1 + i % 5],
       (ARRAY['network','power','compute','storage','application'])[1 + i % 5],
       'type_' || (i % 10), 'P' || (1 + i % 5), 'Alert ' || i || ' on dev-' || (i % 5000), 'message ' || i,
       CASE WHEN i % 10 = 0 THEN (ARRAY['active','acknowledged','suppressed'])[1 + i / 10 % 3] ELSE 'resolved' END,
       now() - (i % 2592000) * interval '1 second', now() - (i % 2592000) * interval '1 second',
       ARRAY['t' || (i % 20)], md5(i::text) || md5((i + 1)::text),
       CASE WHEN i % 10 = 0 THEN NULL ELSE now() END
FROM generate_series(1, $ROWS) i;
ANALYZE alerts;
SQL
echo "inserted in $(( $(date +%s) - t0 )) s"
cat >"$D/get.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $OPSC_ADMIN_TOKEN"
LUA
for query in "status=active,acknowledged&limit=100" \
             "status=active&severity=critical,major&limit=100" \
             "device_name=dev-42&limit=100" \
             "q=dev-4242&limit=100" \
             "since=$(date -u -d '-1 day' +%Y-%m-%dT%H:%M:%SZ)&category=network&limit=100" \
             "limit=100"; do
    echo "## GET /api/v1/alerts?$query"
    wrk -t2 -c10 -d"${SECS}s" --latency -s "$D/get.lua" "http://127.0.0.1:$HTTP/api/v1/alerts?$query" |
        grep -E "Requests/sec|50%|90%|99%|Non-2xx"
done
