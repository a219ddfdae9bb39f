#!/usr/bin/env bash
# Dependency suppression end to end (issue 3 item 7b): while a device has an
# open "down" alert, new alerts from devices that depend on it (directly or
# transitively, the dependencies table) are stored suppressed and correlated
# to it; when it resolves they go back to active (history action 'reopened').
source "$(dirname "$0")/lib.sh"
command -v snmptrap >/dev/null || fail "snmptrap not installed (apt-get install snmp)"

ext_server_config
start_server

reloads() { curl -s "$BASE/metrics" | awk '$1 == "opsc_refdata_reloads_total" {print $2}'; }

# One transaction: one NOTIFY per table, one (debounced) reload.
q "BEGIN;
INSERT INTO oid_mappings (oid_pattern, alert_type, category, default_severity, title_template, clear_oid_pattern)
     VALUES ('1.3.6.1.4.1.99999.0.1', 'device_down', 'network', 'critical', 'Device down', '1.3.6.1.4.1.99999.0.2');
INSERT INTO oid_mappings (oid_pattern, alert_type, category, default_severity, is_clear_event)
     VALUES ('1.3.6.1.4.1.99999.0.2', 'device_up', 'network', 'clear', true);
INSERT INTO dependencies (device_ip, depends_on_ip) VALUES ('10.9.9.2', '10.9.9.1'), ('10.9.9.3', '10.9.9.2');
COMMIT;" >/dev/null
r=""
for _ in $(seq 1 100); do
    r=$(reloads)
    [[ -n $r && $r != 0 ]] && break
    sleep 0.05
done
[[ -n $r && $r != 0 ]] || fail "the mappings and dependencies did not reach the server"
# Wait for any second reload of the same change to settle.
sleep 0.5
grep -q "dependencies: 2" "$TMP/server.log" || { tail -n 20 "$TMP/server.log"; fail "the dependency graph was not loaded"; }
ok "oid_mappings and dependencies inserted by SQL were taken in, no restart"

T="127.0.0.1:$TRAP_PORT"
IFX=1.3.6.1.2.1.2.2.1
ADDR=1.3.6.1.6.3.18.1.3.0
trap_from() { # trap_from DEVICE_IP OID [varbinds...]
    local dev=$1 oid=$2; shift 2
    snmptrap -Ln -v 2c -c public "$T" '' "$oid" $ADDR a "$dev" "$@"
}
link_down() { # link_down DEVICE_IP IFINDEX
    trap_from "$1" 1.3.6.1.6.3.1.1.5.3 $IFX.1.$2 i "$2" $IFX.7.$2 i 1 $IFX.8.$2 i 2
}

trap_from 10.9.9.1 1.3.6.1.4.1.99999.0.1
wait_q "SELECT status || ' ' || severity FROM alerts WHERE alert_type = 'device_down' AND device_ip = '10.9.9.1'" \
       "active critical" 10 || fail "device_down from 10.9.9.1 not stored"
DOWN=$(q "SELECT id FROM alerts WHERE alert_type = 'device_down' AND device_ip = '10.9.9.1'")
ok "device_down from 10.9.9.1 (snmpTrapAddress.0): active, critical"

link_down 10.9.9.2 5
wait_q "SELECT status || ' ' || correlated_to_id || ' ' || correlation_rule FROM alerts WHERE alert_type = 'link_down' AND device_ip = '10.9.9.2'" \
       "suppressed $DOWN upstream_dependency" 10 || fail "linkDown from 10.9.9.2 not suppressed"
ok "linkDown from 10.9.9.2 (depends on 10.9.9.1): suppressed, correlated to the device_down alert"

link_down 10.9.9.3 6
wait_q "SELECT status || ' ' || correlated_to_id || ' ' || correlation_rule FROM alerts WHERE alert_type = 'link_down' AND device_ip = '10.9.9.3'" \
       "suppressed $DOWN upstream_dependency" 10 || fail "linkDown from 10.9.9.3 not suppressed"
ok "linkDown from 10.9.9.3 (transitively through 10.9.9.2): suppressed, correlated to the device_down alert"

link_down 10.9.9.2 5
wait_q "SELECT status || ' ' || occurrence_count FROM alerts WHERE alert_type = 'link_down' AND device_ip = '10.9.9.2'" \
       "suppressed 2" 10 || fail "a repeat of the suppressed alert"
link_down 10.9.9.1 7
wait_q "SELECT status || ' ' || (correlated_to_id IS NULL) FROM alerts WHERE alert_type = 'link_down' AND device_ip = '10.9.9.1'" \
       "active true" 10 || fail "an alert of the down device itself"
link_down 10.9.9.4 8
wait_q "SELECT status FROM alerts WHERE alert_type = 'link_down' AND device_ip = '10.9.9.4'" "active" 10 ||
    fail "an alert of an unrelated device"
ok "a repeat stays suppressed and counts; the down device's own and an unrelated device's alerts are active"

trap_from 10.9.9.1 1.3.6.1.4.1.99999.0.2
wait_q "SELECT status || ' ' || resolved_by FROM alerts WHERE id = '$DOWN'" "resolved auto-clear" 10 ||
    fail "the clear did not resolve device_down"
wait_q "SELECT string_agg(device_ip || ':' || status, ',' ORDER BY device_ip) FROM alerts WHERE alert_type = 'link_down'" \
       "10.9.9.1:active,10.9.9.2:active,10.9.9.3:active,10.9.9.4:active" 10 ||
    fail "the suppressed alerts did not go back to active"
wait_q "SELECT string_agg(a.device_ip || ':' || h.old_status || '>' || h.new_status || ':' || h.user_name, ',' ORDER BY a.device_ip) FROM alert_history h JOIN alerts a ON a.id = h.alert_id WHERE h.action = 'reopened'" \
       "10.9.9.2:suppressed>active:system,10.9.9.3:suppressed>active:system" 10 ||
    fail "no 'reopened' history rows"
ok "the clear resolves device_down; both suppressed alerts are active again, history 'reopened'"

link_down 10.9.9.3 9
wait_q "SELECT status FROM alerts WHERE alert_type = 'link_down' AND device_ip = '10.9.9.3' AND source_alert_id LIKE '%/9'" "active" 10 ||
    fail "a new alert after the upstream resolved was suppressed"
ok "after the upstream resolved, new alerts of its dependents are active"

# Restart while suppressed: the index remembers what suppresses what.
trap_from 10.9.9.1 1.3.6.1.4.1.99999.0.1
wait_q "SELECT count(*) FROM alerts WHERE alert_type = 'device_down' AND status = 'active'" 1 10 || fail "second device_down"
DOWN2=$(q "SELECT id FROM alerts WHERE alert_type = 'device_down' AND status = 'active'")
link_down 10.9.9.2 10
wait_q "SELECT status || ' ' || correlated_to_id FROM alerts WHERE device_ip = '10.9.9.2' AND source_alert_id LIKE '%/10'" \
       "suppressed $DOWN2" 10 || fail "linkDown 10 not suppressed"
stop_server
start_server
trap_from 10.9.9.1 1.3.6.1.4.1.99999.0.2
wait_q "SELECT status FROM alerts WHERE device_ip = '10.9.9.2' AND source_alert_id LIKE '%/10'" "active" 10 ||
    fail "after a restart, resolving the upstream did not reopen its suppressed alert"
ok "after a restart, resolving the upstream still reopens what it suppressed"
wait_q "SELECT coalesce(correlation_rule, 'NULL') || ' ' || coalesce(correlated_to_id::text, 'NULL') FROM alerts WHERE device_ip = '10.9.9.2' AND source_alert_id LIKE '%/10'" \
       "NULL NULL" 5 || fail "a reopened alert still names its former upstream"
ok "a reopened alert is no longer correlated (correlation_rule and correlated_to_id NULL)"

# Deleting the dependency by SQL releases what it suppressed.
trap_from 10.9.9.1 1.3.6.1.4.1.99999.0.1
wait_q "SELECT count(*) FROM alerts WHERE alert_type = 'device_down' AND status = 'active'" 1 10 || fail "third device_down"
link_down 10.9.9.3 11
wait_q "SELECT status || ' ' || correlation_rule FROM alerts WHERE device_ip = '10.9.9.3' AND source_alert_id LIKE '%/11'" \
       "suppressed upstream_dependency" 10 || fail "linkDown 11 of 10.9.9.3 not suppressed (transitively)"
q "DELETE FROM dependencies WHERE device_ip = '10.9.9.3'" >/dev/null
wait_q "SELECT status || ' ' || coalesce(correlation_rule, 'NULL') FROM alerts WHERE device_ip = '10.9.9.3' AND source_alert_id LIKE '%/11'" \
       "active NULL" 10 || fail "deleting the dependency did not release the suppressed alert"
ok "deleting a dependency by SQL releases the alert it suppressed (reopened, no restart)"
stop_server
echo "all passed"
