#!/usr/bin/env bash
# Maintenance windows end to end (issue 3 item 7e): a window inserted by plain
# SQL suppresses the matching alerts that are already active and every new
# one (rule 'maintenance', history 'created' + 'suppressed'), leaves others
# alone, and when it ends (shortened by SQL) those alerts go back to active
# (history 'reopened'). A weekly window in another time zone matches by
# device-name glob; a restart re-evaluates what the database says was
# suppressed by maintenance.
source "$(dirname "$0")/lib.sh"
command -v snmptrap >/dev/null || fail "snmptrap not installed (apt-get install snmp)"

ext_server_config

start_server

# wait_metric NAME EXPECTED: until the server reports it (at most 10 s)
wait_metric() {
    local got=""
    for _ in $(seq 1 50); do
        got=$(metric "$1")
        [[ $got == "$2" ]] && return 0
        sleep 0.2
    done
    echo "$1 = $got, expected $2" >&2
    return 1
}

T="127.0.0.1:$TRAP_PORT"
IFX=1.3.6.1.2.1.2.2.1
ADDR=1.3.6.1.6.3.18.1.3.0
link_down() { # link_down DEVICE_IP IFINDEX
    snmptrap -Ln -v 2c -c public "$T" '' 1.3.6.1.6.3.1.1.5.3 $ADDR a "$1" \
        $IFX.1.$2 i "$2" $IFX.7.$2 i 1 $IFX.8.$2 i 2
}
status_of() { # status_of DEVICE_IP IFINDEX -> "status rule"
    echo "SELECT status || ' ' || COALESCE(correlation_rule, '-') FROM alerts
          WHERE alert_type = 'link_down' AND device_ip = '$1' AND source_alert_id LIKE '%/$2'"
}

q "INSERT INTO devices (ip_address, name, site) VALUES
     ('10.8.8.1', 'core-a', 'lab'), ('10.8.8.2', 'core-b', 'lab'),
     ('10.8.8.3', 'edge-c', 'field'), ('10.8.8.4', 'core-d', 'field')" >/dev/null

# A bad time zone is refused by the database, not discovered by the server.
if q "INSERT INTO maintenance_windows (name, site, time_zone) VALUES ('bad', 'lab', 'Mars/Olympus')" \
    >"$TMP/bad_tz.out" 2>&1; then
    fail "a window with an unknown time zone was accepted"
fi
grep -q "unknown time zone" "$TMP/bad_tz.out" || { cat "$TMP/bad_tz.out"; fail "wrong error for a bad time zone"; }
if q "INSERT INTO maintenance_windows (name) VALUES ('matches everything')" >/dev/null 2>&1; then
    fail "a window without any matcher was accepted"
fi
ok "an unknown time zone and a window without matchers are refused"

link_down 10.8.8.1 1
wait_q "$(status_of 10.8.8.1 1)" "active -" 10 || fail "linkDown from A before the window"
ok "before the window: A's linkDown is active"

# A window covering now for device A only (CIDR /32).
q "INSERT INTO maintenance_windows (name, device_ip_cidr, starts_at, ends_at, reason, created_by)
   VALUES ('core-a upgrade', '10.8.8.1/32', now() - interval '1 minute', now() + interval '1 hour',
           'IOS upgrade', 'test')" >/dev/null
wait_q "$(status_of 10.8.8.1 1)" "suppressed maintenance" 10 ||
    { tail -n 20 "$TMP/server.log"; fail "the active alert of A was not suppressed when the window was inserted"; }
wait_q "SELECT string_agg(action || ':' || COALESCE(old_status, '') || '>' || new_status || ':' || user_name, ',' ORDER BY h.created_at)
        FROM alert_history h JOIN alerts a ON a.id = h.alert_id
        WHERE a.device_ip = '10.8.8.1' AND a.source_alert_id LIKE '%/1'" \
    "created:>active:system,suppressed:active>suppressed:maintenance" 10 ||
    fail "history of the suppressed alert"
ok "inserting a window by SQL suppresses A's active alert (rule maintenance, history 'suppressed')"

link_down 10.8.8.1 2
link_down 10.8.8.2 2
wait_q "$(status_of 10.8.8.1 2)" "suppressed maintenance" 10 || fail "a new alert of A during the window"
wait_q "$(status_of 10.8.8.2 2)" "active -" 10 || fail "an alert of B during A's window"
wait_q "SELECT string_agg(action || ':' || COALESCE(old_status, '') || '>' || new_status || ':' || user_name, ',' ORDER BY action)
        FROM alert_history h JOIN alerts a ON a.id = h.alert_id
        WHERE a.device_ip = '10.8.8.1' AND a.source_alert_id LIKE '%/2'" \
    "created:>active:system,suppressed:active>suppressed:maintenance" 10 ||
    fail "history of a new alert created during the window"
ok "during the window: A's new alert is suppressed (created + suppressed), B's is active"

link_down 10.8.8.1 2
wait_q "SELECT status || ' ' || occurrence_count FROM alerts WHERE device_ip = '10.8.8.1' AND source_alert_id LIKE '%/2'" \
    "suppressed 2" 10 || fail "a repeat of a maintenance-suppressed alert"
ok "a repeat of a suppressed alert still counts"
[[ $(metric 'opsc_maintenance_windows_active') == 1 ]] || fail "windows_active metric: $(metric 'opsc_maintenance_windows_active')"
[[ $(metric 'opsc_maintenance_alerts_total{transition="suppressed"}') == 2 ]] ||
    fail "suppressed metric: $(metric 'opsc_maintenance_alerts_total{transition="suppressed"}')"

# End the window now: both alerts of A return to active.
q "UPDATE maintenance_windows SET ends_at = now() WHERE name = 'core-a upgrade'" >/dev/null
wait_q "SELECT string_agg(status, ',' ORDER BY source_alert_id) FROM alerts WHERE device_ip = '10.8.8.1'" \
    "active,active" 10 || fail "A's alerts did not return to active when the window ended"
wait_q "SELECT count(*) FROM alert_history h JOIN alerts a ON a.id = h.alert_id
        WHERE a.device_ip = '10.8.8.1' AND h.action = 'reopened' AND h.old_status = 'suppressed'
          AND h.new_status = 'active' AND h.user_name = 'system'" 2 10 ||
    fail "no 'reopened' history rows"
[[ $(metric 'opsc_maintenance_alerts_total{transition="reopened"}') == 2 ]] || fail "reopened metric"
ok "shortening the window by SQL (ends_at = now()) reopens A's alerts, history 'reopened'"

# A weekly window in New York's time zone covering the current local weekday
# and time (from 10 minutes ago for an hour), for devices named edge-*.
q "INSERT INTO maintenance_windows (name, device_name_glob, alert_type, recurrence, recurrence_days,
                                  recurrence_start, recurrence_duration, time_zone)
   SELECT 'edge weekly', 'EDGE-*', 'link_down', 'weekly', ARRAY[extract(isodow FROM l)::int],
          l::time, interval '1 hour', 'America/New_York'
     FROM (SELECT (now() AT TIME ZONE 'America/New_York') - interval '10 minutes' AS l) x" >/dev/null
wait_metric opsc_maintenance_windows 2 || fail "the weekly window did not reach the server"
link_down 10.8.8.3 3
link_down 10.8.8.4 3
wait_q "$(status_of 10.8.8.3 3)" "suppressed maintenance" 10 || fail "the weekly window did not match edge-c"
wait_q "$(status_of 10.8.8.4 3)" "active -" 10 || fail "core-d matched the edge-* window"
ok "a weekly window (America/New_York, glob EDGE-*) covers edge-c, not core-d"

# Disabled while the server is down: the restart re-evaluates and reopens.
stop_server
q "UPDATE maintenance_windows SET enabled = false WHERE name = 'edge weekly'" >/dev/null
start_server
wait_q "SELECT status FROM alerts WHERE device_ip = '10.8.8.3' AND source_alert_id LIKE '%/3'" "active" 10 ||
    fail "after a restart, the alert of a disabled window was not reopened"
ok "after a restart, an alert suppressed by a window disabled meanwhile is reopened"

# And the other way round: enabled again, it suppresses after the reload.
q "UPDATE maintenance_windows SET enabled = true WHERE name = 'edge weekly'" >/dev/null
wait_q "$(status_of 10.8.8.3 3)" "suppressed maintenance" 10 || fail "re-enabling the window"
ok "re-enabling the window by SQL suppresses the alert again"

# Precedence: maintenance wins over dependency suppression; when the window
# ends while the upstream is still down, the alert is handed to the upstream.
RELOADS=$(metric opsc_refdata_reloads_total)
q "BEGIN;
INSERT INTO oid_mappings (oid_pattern, alert_type, category, default_severity, title_template, clear_oid_pattern)
     VALUES ('1.3.6.1.4.1.99999.0.1', 'device_down', 'network', 'critical', 'Device down', '1.3.6.1.4.1.99999.0.2');
INSERT INTO oid_mappings (oid_pattern, alert_type, category, default_severity, is_clear_event)
     VALUES ('1.3.6.1.4.1.99999.0.2', 'device_up', 'network', 'clear', true);
INSERT INTO dependencies (device_ip, depends_on_ip) VALUES ('10.8.8.6', '10.8.8.5');
INSERT INTO maintenance_windows (name, device_ip_cidr, starts_at, ends_at)
     VALUES ('dep test', '10.8.8.6', now() - interval '1 minute', now() + interval '1 hour');
COMMIT;" >/dev/null
wait_metric opsc_maintenance_windows 3 || fail "the window did not reach the server"
for _ in $(seq 1 50); do
    (($(metric opsc_refdata_reloads_total) > RELOADS)) && break
    sleep 0.2
done
(($(metric opsc_refdata_reloads_total) > RELOADS)) || fail "mappings and dependencies were not reloaded"
snmptrap -Ln -v 2c -c public "$T" '' 1.3.6.1.4.1.99999.0.1 $ADDR a 10.8.8.5
wait_q "SELECT status FROM alerts WHERE alert_type = 'device_down' AND device_ip = '10.8.8.5'" "active" 10 ||
    fail "device_down of the upstream"
DOWN=$(q "SELECT id FROM alerts WHERE alert_type = 'device_down' AND device_ip = '10.8.8.5'")
link_down 10.8.8.6 6
wait_q "SELECT status || ' ' || correlation_rule || ' ' || (correlated_to_id IS NULL) FROM alerts WHERE device_ip = '10.8.8.6'" \
    "suppressed maintenance true" 10 || fail "maintenance did not win over the down upstream"
ok "a device in maintenance behind a down upstream: suppressed by maintenance, not correlated"
q "UPDATE maintenance_windows SET ends_at = now() WHERE name = 'dep test'" >/dev/null
wait_q "SELECT status || ' ' || correlation_rule || ' ' || correlated_to_id FROM alerts WHERE device_ip = '10.8.8.6'" \
    "suppressed upstream_dependency $DOWN" 10 || fail "the window ended: not handed to the upstream"
snmptrap -Ln -v 2c -c public "$T" '' 1.3.6.1.4.1.99999.0.2 $ADDR a 10.8.8.5
wait_q "SELECT status FROM alerts WHERE device_ip = '10.8.8.6'" "active" 10 ||
    fail "resolving the upstream did not reopen the alert handed to it"
ok "when the window ends the upstream still down takes it over; its clear reopens it"
[[ $(metric 'opsc_maintenance_alerts_total{transition="to_upstream_dependency"}') == 1 ]] ||
    fail "to_upstream_dependency metric"
stop_server
echo "all passed"
