#!/usr/bin/env bash
# Alert actions with curl against the real server and a throwaway PostgreSQL:
# acknowledge / unacknowledge / suppress / reopen / resolve with notes, each a
# history row with the user; 409 naming the current status for a transition
# the status model does not allow; acknowledged alerts staying acknowledged
# through repeats; acknowledgement expiry (also across a restart); reopening
# a resolved alert, refused while a newer alert of its fingerprint is open;
# bulk actions; 401/403/404/415/422; audit_log rows.
source "$(dirname "$0")/lib.sh"
export OPSC_ADMIN_TOKEN="bootstrap-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ext_server_config
start_server
ING=$(new_token feeder ingest)
OP=$(new_token night-shift operator)
VIEW=$(new_token watcher viewer)

post_ev() { # post_ev SOURCE_ID: one event, waits for its row, prints the alert id
    expect 202 "$(curl_j POST /api/v1/events "$ING" "{\"source_alert_id\": \"$1\", \"device_name\": \"db-$1\",
        \"severity\": \"minor\", \"alert_type\": \"slow_query\", \"title\": \"Slow queries on db-$1\"}")" "event $1"
    wait_q "SELECT count(*) FROM alerts WHERE source_alert_id = '$1' AND status <> 'resolved'" 1 10 >/dev/null || fail "no alert for $1"
    q "SELECT id FROM alerts WHERE source_alert_id = '$1' AND status <> 'resolved'"
}
act() { curl_j POST "/api/v1/alerts/$1/$2" "${4-$OP}" "${3:-}"; } # act ID ACTION [BODY [TOKEN]]
status_of() { q "SELECT status FROM alerts WHERE id = '$1'"; }

A=$(post_ev a)
r=$(act "$A" acknowledge '{"notes": "looking at it"}')
expect 200 "$r" "acknowledge"
[[ $(py 'd["id"], d["action"], d["status"], d["previous_status"]' <<<"$r") == "('$A', 'acknowledge', 'acknowledged', 'active')" ]] || fail "acknowledge answer: $r"
wait_q "SELECT status, acknowledged_by, acknowledged_at IS NOT NULL FROM alerts WHERE id = '$A'" "acknowledged|token:night-shift|t" 10 || fail "acknowledged row"
wait_q "SELECT action, old_status, new_status, user_name, notes FROM alert_history WHERE alert_id = '$A' AND action = 'acknowledged'" \
    "acknowledged|active|acknowledged|token:night-shift|looking at it" 10 || fail "acknowledged history"
r=$(act "$A" acknowledge)
expect 409 "$r" "acknowledge twice"
[[ $(py 'd["error"]["code"]' <<<"$r") == conflict && $r == *"status acknowledged"* ]] || fail "409 names the status: $r"
ok "acknowledge: 200 with the new status, acknowledged_by/at, history with the user and notes; again -> 409 naming 'acknowledged'"

expect 202 "$(curl_j POST /api/v1/events "$ING" '{"source_alert_id": "a", "device_name": "db-a", "severity": "minor", "alert_type": "slow_query", "title": "Slow queries on db-a"}')" "repeat"
wait_q "SELECT status, occurrence_count FROM alerts WHERE id = '$A'" "acknowledged|2" 10 || fail "a repeat changed the acknowledgement"
ok "a repeat of an acknowledged alert counts and stays acknowledged"

expect 200 "$(act "$A" unacknowledge)" "unacknowledge"
wait_q "SELECT status, acknowledged_by IS NULL, acknowledged_at IS NULL FROM alerts WHERE id = '$A'" "active|t|t" 10 || fail "unacknowledged row"
expect 409 "$(act "$A" unacknowledge)" "unacknowledge an active alert"
expect 409 "$(act "$A" reopen)" "reopen an active alert"
r=$(act "$A" suppress '{"notes": "known issue"}')
expect 200 "$r" "suppress"
wait_q "SELECT status, correlation_rule FROM alerts WHERE id = '$A'" "suppressed|manual" 10 || fail "suppressed row"
expect 409 "$(act "$A" acknowledge)" "acknowledge a suppressed alert"
expect 200 "$(act "$A" reopen)" "reopen a suppressed alert"
wait_q "SELECT status FROM alerts WHERE id = '$A'" active 10 || fail "reopened from suppressed"
ok "unacknowledge (ack fields cleared), suppress (rule manual), reopen; 409 for unacknowledge/reopen of an active and acknowledge of a suppressed alert"

r=$(act "$A" resolve '{"notes": "fixed the index"}')
expect 200 "$r" "resolve"
wait_q "SELECT status, resolved_by, resolved_at IS NOT NULL FROM alerts WHERE id = '$A'" "resolved|token:night-shift|t" 10 || fail "resolved row"
r=$(act "$A" resolve)
expect 409 "$r" "resolve twice"
[[ $r == *"status resolved"* ]] || fail "409 names resolved: $r"
expect 409 "$(act "$A" acknowledge)" "acknowledge a resolved alert"
expect 200 "$(act "$A" reopen '{"notes": "came back"}')" "reopen a resolved alert"
wait_q "SELECT status, resolved_by IS NULL FROM alerts WHERE id = '$A'" "active|t" 10 || fail "reopened from resolved"
expect 202 "$(curl_j POST /api/v1/events "$ING" '{"source_alert_id": "a", "device_name": "db-a", "severity": "minor", "alert_type": "slow_query", "title": "Slow queries on db-a"}')" "repeat after reopen"
wait_q "SELECT count(*), max(occurrence_count) FROM alerts WHERE source_alert_id = 'a'" "1|3" 10 || fail "the reopened alert does not take repeats"
hist=$(q "SELECT string_agg(action || ':' || COALESCE(user_name, ''), ',' ORDER BY created_at) FROM alert_history WHERE alert_id = '$A'")
[[ $hist == "created:system,acknowledged:token:night-shift,unacknowledged:token:night-shift,suppressed:token:night-shift,reopened:token:night-shift,resolved:token:night-shift,reopened:token:night-shift" ]] || fail "history: $hist"
ok "resolve (resolved_by the user), 409 on resolved; reopen of a resolved alert takes repeats again; the history tells it all in order"

# A newer alert of the fingerprint is open: the old one cannot be reopened.
expect 200 "$(act "$A" resolve)" "resolve again"
wait_q "SELECT status FROM alerts WHERE id = '$A'" resolved 10 || fail "resolved again"
B=$(post_ev a)
[[ $B != "$A" ]] || fail "firing after resolve should open a new alert"
r=$(act "$A" reopen)
expect 409 "$r" "reopen with a newer open alert"
[[ $r == *"$B"* ]] || fail "409 names the open alert: $r"
ok "reopen refused (409 naming it) while a newer alert of the fingerprint is open"

# Acknowledgement expiry, also across a restart.
C=$(post_ev c)
expect 200 "$(act "$C" acknowledge '{"expires_in": "1s"}')" "acknowledge 1s"
wait_q "SELECT status FROM alerts WHERE id = '$C'" acknowledged 5 || fail "not acknowledged"
wait_q "SELECT status, acknowledged_by IS NULL FROM alerts WHERE id = '$C'" "active|t" 10 || fail "acknowledgement did not expire"
[[ $(q "SELECT user_name || '|' || notes FROM alert_history WHERE alert_id = '$C' AND action = 'unacknowledged'") == "system|acknowledgement expired" ]] || fail "expiry history"
D=$(post_ev d)
expect 200 "$(act "$D" acknowledge '{"expires_in": "4s"}')" "acknowledge 4s"
wait_q "SELECT status, custom_fields ? 'ack_expires_at' FROM alerts WHERE id = '$D'" "acknowledged|t" 5 || fail "ack expiry not recorded"
stop_server
start_server
wait_q "SELECT status, custom_fields ? 'ack_expires_at' FROM alerts WHERE id = '$D'" "active|f" 15 || fail "acknowledgement expiry lost over a restart"
expect 422 "$(act "$D" acknowledge '{"expires_in": "soon"}')" "bad expires_in"
expect 422 "$(act "$D" resolve '{"expires_in": "1h"}')" "expires_in on resolve"
expect 422 "$(act "$D" acknowledge '{"note": "typo"}')" "unknown field"
ok "acknowledgement expiry returns alerts to active (history by system), also after a restart; 422 for bad expires_in / unknown fields"

# Bulk.
E=$(post_ev e)
F=$(post_ev f)
expect 200 "$(act "$E" acknowledge)" "acknowledge E"
r=$(curl_j POST /api/v1/alerts/bulk "$OP" "{\"ids\": [\"$E\", \"$F\", \"$D\"], \"action\": \"acknowledge\", \"notes\": \"bulk\"}")
expect 200 "$r" "bulk"
[[ $(py 'd["action"], d["succeeded"], d["failed"], [(x["id"], x["status"], "error" in x) for x in d["results"]]' <<<"$r") == \
    "('acknowledge', 2, 1, [('$E', 'acknowledged', True), ('$F', 'acknowledged', False), ('$D', 'acknowledged', False)])" ]] || fail "bulk answer: $r"
wait_q "SELECT count(*) FROM alert_history WHERE notes = 'bulk' AND action = 'acknowledged'" 2 10 || fail "bulk history"
r=$(curl_j POST /api/v1/alerts/bulk "$OP" "{\"ids\": [\"$E\", \"00000000-0000-4000-8000-000000000000\"], \"action\": \"resolve\"}")
expect 404 "$r" "bulk with an unknown id"
[[ $(py 'd["error"]["field"]' <<<"$r") == "ids[1]" ]] || fail "bulk 404 field: $r"
[[ $(status_of "$E") == acknowledged ]] || fail "a 404 bulk changed something"
expect 422 "$(curl_j POST /api/v1/alerts/bulk "$OP" "{\"ids\": [\"$E\", \"$E\"], \"action\": \"resolve\"}")" "bulk duplicate"
expect 422 "$(curl_j POST /api/v1/alerts/bulk "$OP" "{\"ids\": [\"$E\"], \"action\": \"explode\"}")" "bulk action"
expect 422 "$(curl_j POST /api/v1/alerts/bulk "$OP" '{"ids": [], "action": "resolve"}')" "bulk empty"
expect 422 "$(curl_j POST /api/v1/alerts/bulk "$OP" '{"ids": ["not-a-uuid"], "action": "resolve"}')" "bulk bad id"
r=$(curl_j POST /api/v1/alerts/bulk "$OP" "{\"ids\": [\"$E\", \"$F\"], \"action\": \"resolve\"}")
expect 200 "$r" "bulk resolve"
wait_q "SELECT count(*) FROM alerts WHERE id IN ('$E', '$F') AND status = 'resolved'" 2 10 || fail "bulk resolve"
ok "bulk: per-id outcomes (409 items listed, the rest applied); 404 naming an unknown id with nothing changed; 422 for duplicates, bad action/ids"

expect 401 "$(act "$B" acknowledge "" "")" "no token"
expect 403 "$(act "$B" acknowledge "" "$VIEW")" "viewer"
expect 403 "$(act "$B" acknowledge "" "$ING")" "ingest"
expect 404 "$(act 00000000-0000-4000-8000-000000000000 acknowledge)" "unknown alert"
expect 404 "$(act "$B" explode)" "unknown action"
expect 404 "$(act not-an-id acknowledge)" "bad id"
expect 415 "$(curl_j POST "/api/v1/alerts/$B/acknowledge" "$OP" 'notes=x' text/plain)" "text body"
expect 400 "$(act "$B" acknowledge '{"notes": ')" "malformed body"
expect 200 "$(act "$B" acknowledge "" "$OPSC_ADMIN_TOKEN")" "admin may act"
ok "401 without a token, 403 for viewer and ingest, 404 unknown alert/action/id, 415, 400; admin may act"

wait_q "SELECT count(*) > 0 FROM audit_log WHERE action = 'POST /api/v1/alerts/$A/acknowledge' AND actor LIKE '%night-shift' AND result = 'success'" t 10 ||
    fail "no audit row: $(q "SELECT action, actor, result FROM audit_log ORDER BY id DESC LIMIT 5")"
wait_q "SELECT count(*) > 0 FROM audit_log WHERE action = 'POST /api/v1/alerts/$A/resolve' AND result = 'failure'" t 10 || fail "no audit row for the 409"
[[ $(metric 'opsc_alert_actions_total{action="acknowledge"}') -ge 4 ]] || fail "actions metric"
[[ $(metric 'opsc_alert_acks_expired_total') -ge 1 ]] || fail "expiry metric"
ok "audit_log rows for actions (409 as failure); metrics"
stop_server
