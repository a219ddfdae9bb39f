#!/usr/bin/env bash
# Grafana and generic webhooks with curl against the real server and a
# throwaway PostgreSQL: a Grafana unified-alerting payload (Grafana is not in
# Debian; the payload is its documented shape) firing then resolved; a generic
# connector created through the API, mapped by JSON pointers, authenticated by
# its HMAC-SHA-256 signature (openssl computes it) or an ingest token; 401 for
# a bad or missing signature, 404 unknown connector or wrong type, 409
# disabled, 422 for a payload or config the mapping cannot use.
source "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || fail "openssl not installed"
export OPSC_ADMIN_TOKEN="bootstrap-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ext_server_config
start_server
ING=$(new_token hooks ingest)

grafana() { # grafana STATUS
    cat <<JSON
{"receiver": "opsc", "status": "$1", "orgId": 1, "version": "1", "groupKey": "{}:{alertname=\"DiskFull\"}",
 "truncatedAlerts": 0, "title": "[FIRING:1] DiskFull", "state": "alerting", "message": "disk",
 "externalURL": "http://grafana.example/", "groupLabels": {"alertname": "DiskFull"},
 "commonLabels": {"alertname": "DiskFull"}, "commonAnnotations": {},
 "alerts": [{"status": "$1", "labels": {"alertname": "DiskFull", "instance": "nas-1.example:9100",
   "severity": "warning", "grafana_folder": "Storage", "category": "storage"},
   "annotations": {"summary": "Disk / above 90% on nas-1", "description": "92% used"},
   "startsAt": "2026-12-07T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
   "generatorURL": "http://grafana.example/alerting/grafana/abc/view", "fingerprint": "c6eadffa33fcdf37",
   "silenceURL": "http://grafana.example/alerting/silence/new", "dashboardURL": "", "panelURL": "",
   "values": {"B": 92.1}, "valueString": "[ var='B' value=92.1 ]"}]}
JSON
}
r=$(curl_j POST /api/v1/webhooks/grafana "$ING" "$(grafana firing)")
expect 202 "$r" "grafana firing"
wait_q "SELECT count(*) FROM alerts WHERE source_system = 'grafana'" 1 10 || fail "no grafana alert"
row=$(q "SELECT alert_type, severity, category, device_ip IS NULL, device_name, title, message, source_alert_id, occurred_at AT TIME ZONE 'UTC', custom_fields->>'valueString'
         FROM alerts WHERE source_system = 'grafana'")
[[ $row == "DiskFull|warning|storage|t|nas-1.example|Disk / above 90% on nas-1|92% used|c6eadffa33fcdf37|2026-12-07 10:00:00|[ var='B' value=92.1 ]" ]] || fail "grafana row: $row"
expect 202 "$(curl_j POST /api/v1/webhooks/grafana "$ING" "$(grafana resolved)")" "grafana resolved"
wait_q "SELECT status FROM alerts WHERE source_system = 'grafana'" resolved 10 || fail "grafana resolution"
ok "grafana: firing makes an alert (type, severity, category label, host name as device, title, message, valueString), resolved clears it"

# A generic connector through the API (admin), with a secret.
cfg='{"items": "/events", "source_system": "zabbix",
      "fields": {"source_alert_id": "/eventid", "device_ip": "/host/ip", "device_name": "/host/name",
                 "severity": "/priority", "alert_type": "/trigger/name", "title": "/trigger~1title", "message": "/text", "tags": "/tags"},
      "severity_map": {"disaster": "critical", "high": "major", "average": "minor"}, "category": "network",
      "clear": {"pointer": "/value", "equals": ["0", "ok"]}}'
r=$(curl_j POST /api/v1/connectors "$OPSC_ADMIN_TOKEN" "{\"name\": \"zabbix\", \"type\": \"webhook\", \"enabled\": true, \"config\": $cfg, \"secret\": \"s3cr3t-zbx\"}")
expect 201 "$r" "connector"
payload() { # payload VALUE
    echo "{\"events\": [{\"eventid\": 4711, \"value\": \"$1\", \"priority\": \"disaster\", \"host\": {\"ip\": \"10.30.0.1\", \"name\": \"edge-1\"},
       \"trigger\": {\"name\": \"icmp_down\"}, \"trigger/title\": \"edge-1 unreachable\", \"text\": \"ICMP ping failed\", \"tags\": {\"scope\": \"availability\"}}]}"
}
sig() { printf '%s' "$1" | openssl dgst -sha256 -hmac "$2" | awk '{print $NF}'; }
post_signed() { # post_signed BODY SIGNATURE_HEADER [CONNECTOR]
    local code
    code=$(curl -s -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' -H "$2" \
        --data-binary "$1" "$BASE/api/v1/webhooks/generic/${3:-zabbix}")
    echo "$code $(cat "$TMP/body")"
}
body=$(payload 1)
r=$(post_signed "$body" "X-Signature-256: sha256=$(sig "$body" s3cr3t-zbx)")
expect 202 "$r" "signed generic"
wait_q "SELECT count(*) FROM alerts WHERE source_system = 'zabbix'" 1 10 || fail "no generic alert"
row=$(q "SELECT source_alert_id, device_ip, device_name, severity, category, alert_type, title, message, tags FROM alerts WHERE source_system = 'zabbix'")
[[ $row == "4711|10.30.0.1|edge-1|critical|network|icmp_down|edge-1 unreachable|ICMP ping failed|{scope=availability}" ]] || fail "generic row: $row"
ok "generic: signed delivery (X-Signature-256) mapped by JSON pointers (escapes, nested, items), severity map, static category"

expect 401 "$(post_signed "$body" "X-Signature-256: sha256=$(sig "$body" wrong-secret)")" "wrong secret"
expect 401 "$(post_signed "$body" "X-Signature-256: sha256=$(sig "$body x" s3cr3t-zbx)")" "signature of another body"
expect 401 "$(post_signed "$body" "X-Hub-Signature-256: sha256=00")" "short signature"
expect 401 "$(curl_j POST /api/v1/webhooks/generic/zabbix "" "$body")" "no signature, no token"
expect 202 "$(post_signed "$body" "X-Hub-Signature-256: sha256=$(sig "$body" s3cr3t-zbx)")" "X-Hub-Signature-256"
expect 202 "$(curl_j POST /api/v1/webhooks/generic/zabbix "$ING" "$body")" "ingest token"
wait_q "SELECT occurrence_count FROM alerts WHERE source_system = 'zabbix'" 3 10 || fail "repeats through the generic webhook"
body=$(payload ok)
expect 202 "$(post_signed "$body" "X-Signature-256: sha256=$(sig "$body" s3cr3t-zbx)")" "generic clear"
wait_q "SELECT status FROM alerts WHERE source_system = 'zabbix'" resolved 10 || fail "generic clear"
ok "generic: 401 for a wrong, foreign or short signature and for none; X-Hub-Signature-256 and an ingest token work; the clear rule resolves"

expect 404 "$(curl_j POST /api/v1/webhooks/generic/nosuch "$ING" "$body")" "unknown connector"
expect 201 "$(curl_j POST /api/v1/connectors "$OPSC_ADMIN_TOKEN" '{"name": "prtg", "type": "prtg", "enabled": true}')" "another type"
expect 404 "$(curl_j POST /api/v1/webhooks/generic/prtg "$ING" "$body")" "not a webhook connector"
expect 201 "$(curl_j POST /api/v1/connectors "$OPSC_ADMIN_TOKEN" '{"name": "off", "type": "webhook", "enabled": false, "config": {}}')" "disabled"
expect 409 "$(curl_j POST /api/v1/webhooks/generic/off "$ING" "$body")" "disabled connector"
expect 201 "$(curl_j POST /api/v1/connectors "$OPSC_ADMIN_TOKEN" '{"name": "bad", "type": "webhook", "enabled": true, "config": {"fields": {"colour": "/c"}}}')" "bad config"
r=$(curl_j POST /api/v1/webhooks/generic/bad "$ING" '{"c": 1}')
expect 422 "$r" "bad config"
[[ $r == *colour* ]] || fail "422 names the config key: $r"
expect 422 "$(curl_j POST /api/v1/webhooks/generic/zabbix "$ING" '{"events": 5}')" "items not an array"
r=$(curl_j POST /api/v1/webhooks/generic/zabbix "$ING" '{"events": [{"eventid": 1}]}')
expect 422 "$r" "items missing required fields"
[[ $r == *alert_type* && $r == *title* ]] || fail "422 lists the missing fields: $r"
expect 400 "$(curl_j POST /api/v1/webhooks/generic/zabbix "$ING" '{"events": [')" "malformed"
expect 403 "$(curl_j POST /api/v1/webhooks/generic/zabbix "$(new_token viewer-x viewer)" "$body")" "viewer token"
ok "generic: 404 unknown connector or other type, 409 disabled, 422 naming the config key / the payload problem / missing fields, 400, 403"
stop_server
