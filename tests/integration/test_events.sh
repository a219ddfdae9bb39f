#!/usr/bin/env bash
# POST /api/v1/events with curl against the real server and a throwaway
# PostgreSQL: one event and batches answered 202 once durable, repeats
# deduplicated, clears resolving, the sender's own fingerprint, devices named
# from the devices table, ITIL priority; 422 listing every invalid item with
# none of the batch stored; 400/401/403/413/415; and an acknowledged event
# surviving kill -9 of the server right after its 202.
source "$(dirname "$0")/lib.sh"
export OPSC_ADMIN_TOKEN="bootstrap-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ext_server_config
start_server
ING=$(new_token feeder ingest)
VIEW=$(new_token watcher viewer)
q "INSERT INTO devices (ip_address, name, site) VALUES ('10.1.1.1', 'core-sw-1', 'hq')" >/dev/null
sleep 1 # the device reaches the pipeline by NOTIFY

ev() { # ev SOURCE_ID [EXTRA_JSON_FIELDS]
    echo "{\"source_system\": \"nagios\", \"source_alert_id\": \"$1\", \"device_ip\": \"10.1.1.1\",
      \"severity\": \"major\", \"category\": \"compute\", \"alert_type\": \"disk_full\",
      \"title\": \"Disk /var full on core-sw-1\", \"message\": \"98% used\",
      \"occurred_at\": \"2026-12-01T10:00:00Z\", \"tags\": [\"disk\", \"prod\"],
      \"custom_fields\": {\"mount\": \"/var\"}, \"raw_data\": {\"check\": \"disk\"}${2:+, $2}}"
}

r=$(curl_j POST /api/v1/events "$ING" "$(ev d1)")
expect 202 "$r" "one event"
[[ $(py 'd["accepted"]' <<<"$r") == 1 ]] || fail "accepted: $r"
wait_q "SELECT count(*) FROM alerts WHERE source_system = 'nagios'" 1 10 || fail "no alert row"
row=$(q "SELECT device_ip, device_name, severity, category, alert_type, title, message, status, occurred_at AT TIME ZONE 'UTC',
           tags, custom_fields->>'mount', raw_data->>'check', urgency, impact, priority, occurrence_count, source_alert_id
         FROM alerts WHERE source_system = 'nagios'")
[[ $row == "10.1.1.1|core-sw-1|major|compute|disk_full|Disk /var full on core-sw-1|98% used|active|2026-12-01 10:00:00|{disk,prod}|/var|disk|high|low|P3|1|d1" ]] ||
    fail "stored row: $row"
[[ $(q "SELECT action FROM alert_history h JOIN alerts a ON a.id = h.alert_id WHERE a.source_system = 'nagios'") == created ]] || fail "history"
ok "one event: 202 {accepted: 1}; every field stored; device named from devices; urgency/impact/priority; history 'created'"

expect 202 "$(curl_j POST /api/v1/events "$ING" "$(ev d1)")" "repeat"
expect 202 "$(curl_j POST /api/v1/events "$ING" "[$(ev d1), $(ev d1)]")" "repeat batch"
wait_q "SELECT count(*), max(occurrence_count) FROM alerts WHERE source_system = 'nagios'" "1|4" 10 || fail "repeats not deduplicated"
ok "repeats of one fingerprint: one alert, occurrence_count 4"

r=$(curl_j POST /api/v1/events "$ING" "[$(ev d2), $(ev d3 '"fingerprint": "sender-fp-1", "impact": "high", "urgency": "high"'), $(ev d4 '"fingerprint": "sender-fp-1"')]")
expect 202 "$r" "batch of 3"
[[ $(py 'd["accepted"]' <<<"$r") == 3 ]] || fail "batch accepted: $r"
wait_q "SELECT count(*) FROM alerts WHERE source_system = 'nagios'" 3 10 || fail "batch rows"
[[ $(q "SELECT occurrence_count, priority FROM alerts WHERE fingerprint = 'sender-fp-1'") == "2|P1" ]] || fail "sender fingerprint: $(q "SELECT occurrence_count, priority FROM alerts WHERE fingerprint = 'sender-fp-1'")"
ok "a batch: 202 {accepted: 3}; the sender's fingerprint dedups across source ids; impact/urgency given -> P1"

r=$(curl_j POST /api/v1/events "$ING" "$(ev d2 '"is_clear": true')")
expect 202 "$r" "clear"
wait_q "SELECT status, resolved_by, correlation_rule FROM alerts WHERE source_alert_id = 'd2'" "resolved|auto-clear|clear:disk_full" 10 || fail "clear did not resolve"
[[ $(q "SELECT count(*) FROM alerts WHERE source_system = 'nagios'") == 3 ]] || fail "a clear opened an alert"
expect 202 "$(curl_j POST /api/v1/events "$ING" "$(ev d2)")" "again after the clear"
wait_q "SELECT count(*) FROM alerts WHERE source_alert_id = 'd2'" 2 10 || fail "firing again after resolve opens a new alert"
ok "is_clear resolves the alert of its fingerprint (auto-clear) and opens nothing; firing again opens a new alert"

# 422: every invalid item listed, none of the batch stored.
before=$(q "SELECT count(*) FROM alerts")
bad='[{"source_alert_id": "ok1", "device_ip": "10.1.1.2", "severity": "minor", "alert_type": "t", "title": "fine"},
      {"device_ip": "10.1.1.999", "severity": "urgent", "alert_type": "t", "title": "x"},
      {"source_alert_id": "ok2", "device_name": "db-1", "severity": "info", "alert_type": "t", "title": "fine too"},
      {"device_name": "db-1", "severity": "info", "title": "   ", "occurred_at": "yesterday", "tags": [1], "colour": "red"}]'
r=$(curl_j POST /api/v1/events "$ING" "$bad")
expect 422 "$r" "invalid batch"
errs=$(py 'sorted((e["index"], e["field"]) for e in d["error"]["errors"])' <<<"$r")
[[ $errs == "[(1, 'device_ip'), (1, 'severity'), (3, 'alert_type'), (3, 'colour'), (3, 'occurred_at'), (3, 'tags'), (3, 'title')]" ]] || fail "422 errors: $errs"
[[ $(py 'd["error"]["code"], d["error"]["field"]' <<<"$r") == "('validation', '[1].device_ip')" ]] || fail "422 head: $r"
sleep 0.5
[[ $(q "SELECT count(*) FROM alerts") == "$before" ]] || fail "a 422 batch stored something"
expect 422 "$(curl_j POST /api/v1/events "$ING" '{"device_ip": "10.0.0.1", "severity": "info", "title": "no type"}')" "missing alert_type"
expect 422 "$(curl_j POST /api/v1/events "$ING" '{"severity": "info", "alert_type": "t", "title": "no device"}')" "no device"
expect 422 "$(curl_j POST /api/v1/events "$ING" '"just a string"')" "not an object"
many=$(python3 -c 'import json; print(json.dumps([{"device_name": "d", "severity": "info", "alert_type": "t", "title": "x"}] * 1001))')
expect 422 "$(curl_j POST /api/v1/events "$ING" "$many")" "1001 events"
ok "422 lists every invalid item with its index and field, stores none of the batch; missing fields, 1001 events"

expect 400 "$(curl_j POST /api/v1/events "$ING" '{"title": ')" "truncated JSON"
expect 400 "$(curl_j POST /api/v1/events "$ING" $'{"title": "\xff\xfe"}')" "invalid UTF-8"
expect 400 "$(curl_j POST /api/v1/events "$ING" '{"a": 1, "a": 2}')" "duplicate keys"
expect 415 "$(curl_j POST /api/v1/events "$ING" "$(ev d9)" text/plain)" "text/plain"
expect 401 "$(curl_j POST /api/v1/events "" "$(ev d9)")" "no token"
expect 401 "$(curl_j POST /api/v1/events "opsc_wrong" "$(ev d9)")" "bad token"
expect 403 "$(curl_j POST /api/v1/events "$VIEW" "$(ev d9)")" "viewer"
expect 202 "$(curl_j POST /api/v1/events "$OPSC_ADMIN_TOKEN" "$(ev d9)")" "admin may post"
head -c $((17 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$TMP/big.json"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ING" -H 'Content-Type: application/json' --data-binary @"$TMP/big.json" "$BASE/api/v1/events")
[[ $code == 413 ]] || fail "17 MiB body: $code"
expect 405 "$(curl_j GET /api/v1/events "$ING")" "GET"
ok "400 truncated/invalid UTF-8/duplicate keys, 415, 401, 403 for viewer, 413 over 16 MiB, 405"

[[ $(metric 'opsc_ingest_requests_total{endpoint="events"}') -ge 10 ]] || fail "requests metric"
[[ $(metric 'opsc_ingest_events_accepted_total{endpoint="events"}') == 10 ]] || fail "accepted metric: $(metric 'opsc_ingest_events_accepted_total{endpoint="events"}')"
[[ $(metric 'opsc_ingest_invalid_total{endpoint="events"}') == 5 ]] || fail "invalid metric: $(metric 'opsc_ingest_invalid_total{endpoint="events"}')"
ok "metrics: requests, accepted events, invalid requests"

# A few thousand hostile API requests over keep-alive: never a 5xx, never a hang, nothing stored.
before=$(q "SELECT count(*) FROM alerts")
BASE="$BASE" TOK="$ING" ADMIN="$OPSC_ADMIN_TOKEN" python3 - >"$TMP/hostile.log" 2>&1 <<'PY' || { cat "$TMP/hostile.log"; fail "hostile API requests"; }
import http.client, json, os, random, urllib.parse
random.seed(7)
u = urllib.parse.urlparse(os.environ["BASE"])
ok_status = {200, 202, 400, 401, 403, 404, 405, 409, 413, 414, 415, 422, 431}
bodies = [b'{"title": ', b'\xff\xfe\xfd', b'{"a":' * 5000, b'[' * 3000, b'{"severity": 1e999999}',
          b'{"title": "x\u0000y", "severity": "info", "alert_type": "t"}', b'null', b'[]' , b'"' + b'a' * 100000,
          json.dumps([{"severity": "info"}] * 1001).encode(), b'{"device_ip": "1.2.3.4", "severity": "info", "alert_type": "t", "title": "x", "tags": {"a": 1}}',
          b'{"device_ip": "\'; DROP TABLE alerts; --", "severity": "info", "alert_type": "t", "title": "x"}',
          b'{"device_ip": "10.0.0.1", "severity": "info", "alert_type": "' + b'x' * 101 + b'", "title": "x"}',
          b'{"device_name": "d", "severity": "info", "alert_type": "t", "title": "t", "occurred_at": "2026-13-45T99:99:99Z"}']
queries = ["status=active';--", "q=%27%3B%20DROP%20TABLE%20alerts%3B--", "severity=%ff%fe", "sort=;DELETE", "limit=-1",
           "limit=99999999999999999999", "since=yesterday", "tag=" + "%" * 50, "offset=1e9", "device_ip=1.2.3.4%00"]
conn, n, bad = None, 0, []
for i in range(2500):
    if conn is None or i % 50 == 0:
        if conn: conn.close()
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    kind = i % 4
    try:
        if kind == 3:
            path = "/api/v1/alerts?" + random.choice(queries)
            conn.request("GET", path, headers={"Authorization": "Bearer " + os.environ["ADMIN"]})
        else:
            path = random.choice(["/api/v1/events", "/api/v1/webhooks/alertmanager", "/api/v1/webhooks/grafana",
                                  "/api/v1/alerts/bulk", "/api/v1/alerts/00000000-0000-4000-8000-000000000000/acknowledge"])
            tok = os.environ["ADMIN"] if "alerts" in path else os.environ["TOK"]
            conn.request("POST", path, body=random.choice(bodies),
                         headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        n += 1
        if r.status not in ok_status:
            bad.append((path, r.status))
        if r.getheader("Connection", "").lower() == "close":
            conn.close(); conn = None
    except (ConnectionError, http.client.HTTPException) as e:
        conn = None
print(n, "answered;", len(bad), "unexpected:", bad[:10])
assert n >= 2400 and not bad
PY
sleep 0.5
[[ $(q "SELECT count(*) FROM alerts") == "$before" ]] || fail "hostile requests stored alerts"
[[ $(http_code "$BASE/health") == 200 ]] || fail "server unhealthy after hostile requests"
ok "2,500 hostile API requests (bad JSON, invalid UTF-8, deep nesting, NULs, SQL in filters, oversized): no 5xx, nothing stored, still healthy"

# Durability: the 202 means journal-synced or committed; kill -9 right after it loses nothing.
r=$(curl_j POST /api/v1/events "$ING" "[$(ev k1), $(ev k2), $(ev k3)]")
expect 202 "$r" "before kill"
kill -9 "$SERVER"
wait "$SERVER" 2>/dev/null || true
start_server
wait_q "SELECT count(*) FROM alerts WHERE source_alert_id IN ('k1','k2','k3')" 3 15 || fail "acknowledged events lost over kill -9"
ok "kill -9 right after a 202: the three events are in the database after restart"
stop_server
