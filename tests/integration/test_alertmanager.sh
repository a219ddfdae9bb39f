#!/usr/bin/env bash
# A real Prometheus Alertmanager (Debian's prometheus-alertmanager) delivers
# to our webhook: an alert posted to Alertmanager's API arrives here as an
# alert (alertname -> alert_type, labels.severity through the severity map,
# instance without its port -> device, summary/description -> title/message,
# labels -> tags), and its resolution clears it. Alertmanager authenticates
# with an ingest token (http_config.authorization).
source "$(dirname "$0")/lib.sh"
AM=$(command -v prometheus-alertmanager || command -v alertmanager || true)
[[ -n $AM ]] || fail "prometheus-alertmanager not installed (apt-get install prometheus-alertmanager)"
export OPSC_ADMIN_TOKEN="bootstrap-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ext_server_config
start_server
ING=$(new_token alertmanager ingest)
q "INSERT INTO devices (ip_address, name, site) VALUES ('10.20.0.5', 'web-5', 'dc1')" >/dev/null

AM_PORT=$(free_port tcp)
cat >"$TMP/am.yml" <<YAML
route:
  receiver: opsc
  group_by: ['alertname', 'instance']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: opsc
    webhook_configs:
      - url: $BASE/api/v1/webhooks/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: $ING
YAML
"$AM" --config.file="$TMP/am.yml" --storage.path="$TMP/am-data" \
    --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= >"$TMP/am.log" 2>&1 &
AMPID=$!
CLEANUP_PIDS+=("$AMPID")
wait_for_code "http://127.0.0.1:$AM_PORT/-/ready" 200 30 || { tail -n 20 "$TMP/am.log"; fail "alertmanager not ready"; }

start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
am_post() { # am_post ENDS_AT
    curl -s -o "$TMP/am.out" -w '%{http_code}' -H 'Content-Type: application/json' "http://127.0.0.1:$AM_PORT/api/v2/alerts" \
        --data "[{\"labels\": {\"alertname\": \"HighLatency\", \"instance\": \"10.20.0.5:9100\", \"job\": \"node\", \"severity\": \"critical\"},
                 \"annotations\": {\"summary\": \"p99 latency above 2 s on web-5\", \"description\": \"p99 is 2.7 s for 5 minutes\"},
                 \"startsAt\": \"$start\"${1:+, \"endsAt\": \"$1\"}, \"generatorURL\": \"http://prometheus.example/graph\"}]"
}
[[ $(am_post) == 200 ]] || fail "alertmanager refused the alert: $(cat "$TMP/am.out")"
wait_q "SELECT count(*) FROM alerts WHERE source_system = 'alertmanager'" 1 30 ||
    { tail -n 20 "$TMP/am.log"; tail -n 20 "$TMP/server.log"; fail "the alert did not arrive through the webhook"; }
row=$(q "SELECT alert_type, severity, device_ip, device_name, title, message, status, 'instance=10.20.0.5:9100' = ANY(tags), 'job=node' = ANY(tags),
           custom_fields->'labels'->>'job', length(source_alert_id) > 0 FROM alerts WHERE source_system = 'alertmanager'")
[[ $row == "HighLatency|critical|10.20.0.5|web-5|p99 latency above 2 s on web-5|p99 is 2.7 s for 5 minutes|active|t|t|node|t" ]] || fail "alert row: $row"
ok "firing: Alertmanager's webhook made one alert (type, severity, device without port and named from devices, title, message, tags, labels)"

[[ $(am_post "$(date -u +%Y-%m-%dT%H:%M:%SZ)") == 200 ]] || fail "alertmanager refused the resolution"
wait_q "SELECT status, resolved_by FROM alerts WHERE source_system = 'alertmanager'" "resolved|auto-clear" 30 ||
    { tail -n 20 "$TMP/am.log"; fail "the resolution did not clear the alert"; }
[[ $(q "SELECT count(*) FROM alerts WHERE source_system = 'alertmanager'") == 1 ]] || fail "the resolution opened an alert"
[[ $(metric 'opsc_ingest_requests_total{endpoint="alertmanager"}') -ge 2 ]] || fail "requests metric"
ok "resolved: Alertmanager's resolution cleared the same alert (resolved, auto-clear), opening nothing"

# A direct post without a token is refused; a malformed payload is 422.
expect 401 "$(curl_j POST /api/v1/webhooks/alertmanager "" '{"version": "4", "alerts": []}')" "no token"
expect 422 "$(curl_j POST /api/v1/webhooks/alertmanager "$ING" '{"version": "4", "alerts": "nope"}')" "alerts not an array"
ok "webhook without a token 401; unusable payload 422"
kill "$AMPID"
stop_server
