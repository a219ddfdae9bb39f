#!/usr/bin/env bash
# Flapping, expiry and ITIL priority end to end (issue 3 items 7c, 7d, 7f):
# real server, throwaway PostgreSQL, net-snmp's snmptrap, small windows
# through OPSC_CORRELATION_* variables.
source "$(dirname "$0")/lib.sh"
command -v snmptrap >/dev/null || fail "snmptrap not installed (apt-get install snmp)"

ext_server_config


# Flapping: more than 3 resolves within 4 s. Expiry: environment alerts after 3 s, others never.
OPSC_CORRELATION_FLAP_THRESHOLD=3 OPSC_CORRELATION_FLAP_WINDOW=4s \
OPSC_CORRELATION_EXPIRE_AFTER=0 OPSC_CORRELATION_EXPIRE_AFTER_BY_CATEGORY=environment=3s \
start_server

# Reference data by plain SQL: the server takes it in without a restart (NOTIFY).
q "BEGIN;
INSERT INTO oid_mappings (oid_pattern, alert_type, category, default_severity, title_template)
     VALUES ('1.3.6.1.4.1.99998.0.1', 'temperature_high', 'environment', 'warning', 'Hot'),
            ('1.3.6.1.4.1.99998.0.2', 'psu_failed', 'power', 'critical', 'PSU failed'),
            ('1.3.6.1.4.1.99998.0.3', 'fan_degraded', 'environment', 'major', 'Fan degraded');
INSERT INTO devices (ip_address, name, custom_fields)
     VALUES ('10.8.8.1', 'core-1', '{\"impact\": \"high\"}'), ('10.8.8.2', 'dist-2', '{}'),
            ('10.8.8.3', 'leaf-3', '{}'), ('10.8.8.9', 'leaf-9', '{}');
INSERT INTO dependencies (device_ip, depends_on_ip) VALUES ('10.8.8.3', '10.8.8.2');
COMMIT;" >/dev/null

r=""
for _ in $(seq 1 100); do
    r=$(metric opsc_refdata_reloads_total)
    [[ -n $r && $r != 0 ]] && break
    sleep 0.05
done
[[ -n $r && $r != 0 ]] || fail "the reference data did not reach the server"
sleep 0.5 # any second reload of the same change settles

T="127.0.0.1:$TRAP_PORT"
IFX=1.3.6.1.2.1.2.2.1
ADDR=1.3.6.1.6.3.18.1.3.0
trap_from() { # trap_from DEVICE_IP OID [varbinds...]
    local dev=$1 oid=$2; shift 2
    snmptrap -Ln -v 2c -c public "$T" '' "$oid" $ADDR a "$dev" "$@"
}
link() { # link DEVICE_IP IFINDEX down|up
    local oid=1.3.6.1.6.3.1.1.5.3
    [[ $3 == up ]] && oid=1.3.6.1.6.3.1.1.5.4
    trap_from "$1" $oid $IFX.1.$2 i "$2" $IFX.7.$2 i 1 $IFX.8.$2 i 2
}

# ---- priority ----
trap_from 10.8.8.1 1.3.6.1.4.1.99998.0.2   # critical on a device with custom_fields impact high
trap_from 10.8.8.2 1.3.6.1.4.1.99998.0.3   # major on a device one other depends on
trap_from 10.8.8.9 1.3.6.1.4.1.99998.0.1   # warning on a leaf
trap_from 10.8.8.3 1.3.6.1.4.1.99998.0.2   # critical on a leaf
wait_q "SELECT string_agg(device_ip || ':' || impact || '/' || urgency || '=' || priority, ',' ORDER BY device_ip) FROM alerts WHERE device_ip LIKE '10.8.8.%'" \
       "10.8.8.1:high/high=P1,10.8.8.2:medium/high=P2,10.8.8.3:low/high=P3,10.8.8.9:low/medium=P4" 10 ||
    fail "ITIL impact/urgency/priority"
ok "priority: impact from custom_fields or dependents, urgency from severity, P1..P4 by the matrix"

# ---- flapping ----
# 4 down/up cycles: the 4th resolve is more than 3 within the window.
for _ in 1 2 3 4; do
    link 10.7.7.1 2 down
    link 10.7.7.1 2 up
done
wait_q "SELECT count(*) || ' ' || count(*) FILTER (WHERE status = 'resolved') FROM alerts WHERE device_ip = '10.7.7.1'" \
       "4 4" 10 || fail "four link_down alerts, all resolved"
LAST=$(q "SELECT id FROM alerts WHERE device_ip = '10.7.7.1' ORDER BY occurred_at DESC LIMIT 1")
link 10.7.7.1 2 down
wait_q "SELECT status || ' ' || correlation_rule || ' ' || (resolved_at IS NULL) || ' ' || ('flapping' = ANY(tags)) || ' ' || (custom_fields->>'flapping') || ' ' || occurrence_count FROM alerts WHERE id = '$LAST'" \
       "active flapping true true true 2" 10 || fail "the fifth linkDown did not reopen the last alert, marked"
[[ $(q "SELECT count(*) FROM alerts WHERE device_ip = '10.7.7.1'") == 4 ]] || fail "a new alert was opened"
ok "flapping: the next linkDown reopens the last alert (no new row), tagged and marked flapping"

# While flapping, clears are counted, not resolving; repeats count on the same row.
for _ in 1 2; do
    link 10.7.7.1 2 up
    link 10.7.7.1 2 down
done
link 10.7.7.1 2 up
wait_q "SELECT status || ' ' || occurrence_count FROM alerts WHERE id = '$LAST'" "active 4" 10 ||
    fail "clears resolved the flapping alert"
[[ $(q "SELECT count(*) FROM alerts WHERE device_ip = '10.7.7.1'") == 4 ]] || fail "a new alert was opened while flapping"
[[ $(q "SELECT count(*) FROM alerts WHERE device_ip = '10.7.7.1' AND 'flapping' = ANY(tags)") == 1 ]] ||
    fail "not exactly one alert row tagged flapping"
[[ $(q "SELECT count(*) FROM alert_history WHERE alert_id = '$LAST' AND action = 'reopened' AND user_name = 'system'") == 1 ]] ||
    fail "no 'reopened' history row"
[[ $(q "SELECT count(*) FROM alert_history WHERE alert_id = '$LAST' AND action = 'updated' AND changes->'tags'->'added' ? 'flapping'") == 1 ]] ||
    fail "no 'updated' history row for the mark"
[[ $(metric opsc_alerts_flapping) == 1 ]] || fail "opsc_alerts_flapping is not 1"
ok "while flapping: clears are counted and resolve nothing, one row tagged flapping, history reopened/updated"

# Quiet for a whole window (4 s) after a clear: unmarked and resolved by auto-clear.
wait_q "SELECT status || ' ' || resolved_by || ' ' || COALESCE(array_to_string(tags, ','), '') || ' ' || (custom_fields->>'flapping') || ' ' || (custom_fields->>'flap_count')::int FROM alerts WHERE id = '$LAST'" \
       "resolved auto-clear  false 7" 15 || fail "the flapping alert did not settle"
[[ $(metric opsc_alerts_flapping) == 0 ]] || fail "opsc_alerts_flapping is not 0"
ok "after a quiet window: the mark is removed and the alert takes its last event's state (resolved)"

# Settled: the fingerprint counts afresh, a new linkDown opens a new alert.
link 10.7.7.1 2 down
wait_q "SELECT count(*) FROM alerts WHERE device_ip = '10.7.7.1' AND status = 'active' AND id <> '$LAST'" 1 10 ||
    fail "after settling, a linkDown did not open a new alert"
ok "after settling, the next linkDown opens a new alert"

# ---- expiry ----
trap_from 10.6.6.1 1.3.6.1.4.1.99998.0.1
wait_q "SELECT status FROM alerts WHERE device_ip = '10.6.6.1'" "active" 10 || fail "temperature alert"
EXP=$(q "SELECT id FROM alerts WHERE device_ip = '10.6.6.1'")
wait_q "SELECT status || ' ' || correlation_rule FROM alerts WHERE id = '$EXP'" "expired expiry" 15 ||
    fail "the environment alert did not expire"
[[ $(q "SELECT old_status || '>' || new_status || ' ' || user_name FROM alert_history WHERE alert_id = '$EXP' AND action = 'expired'") == "active>expired system" ]] ||
    fail "no 'expired' history row"
[[ $(q "SELECT status FROM alerts WHERE device_ip = '10.8.8.1'") == active ]] || fail "a power alert expired"
[[ $(metric 'opsc_alerts_total{outcome="expired"}') -ge 2 ]] || fail "expired metric"
ok "expiry: an environment alert without occurrences for 3 s is expired (history, rule expiry); others stay"

# The same fingerprint again: a new alert (the expired one left the index).
trap_from 10.6.6.1 1.3.6.1.4.1.99998.0.1
wait_q "SELECT count(*) FROM alerts WHERE device_ip = '10.6.6.1' AND status = 'active'" 1 10 ||
    fail "no new alert after expiry"
ok "after expiry the fingerprint opens a new alert"

stop_server
echo "all passed"
