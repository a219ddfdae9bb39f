#!/usr/bin/env bash
# Traps end to end: net-snmp's real snmptrap/snmpinform against the server,
# PostgreSQL checked afterwards (the acceptance of the trap pipeline).
source "$(dirname "$0")/lib.sh"
command -v snmptrap >/dev/null || fail "snmptrap not installed (apt-get install snmp)"

ENGINE=0x80001f8804616c696365
WANT_V6=1 ext_server_config "  communities: public,private
  v3_users:
    - name: alice
      auth_protocol: SHA
      auth_passphrase: alice-auth-pass
      priv_protocol: AES
      priv_passphrase: alice-priv-pass
      engine_id: \"$ENGINE\"
    - name: bob
      auth_protocol: SHA-256
      auth_passphrase: bob-auth-pass1
      priv_protocol: none"

# The server migrates an empty database; a device row makes the names real.
start_server
psql -XAtq "$CI" -c "INSERT INTO devices (ip_address, name) VALUES ('127.0.0.1', 'core-rtr-1')" >/dev/null
# A change made by plain SQL reaches the running server (trigger + NOTIFY) within 2 s.
t0=$SECONDS
reloaded=""
for _ in $(seq 1 40); do
    if grep -q '^opsc_refdata_devices 1$' <<<"$(curl -s "$BASE/metrics")"; then reloaded=1; break; fi
    sleep 0.05
done
[[ -n $reloaded ]] || fail "the new device did not reach the server within 2 s"
ok "server ready; a device inserted by SQL was taken in within $((SECONDS - t0)) s, no restart"

T="127.0.0.1:$TRAP_PORT"
IFX=1.3.6.1.2.1.2.2.1
link() { # link down|up IFINDEX [extra snmptrap args...]
    local oid=1.3.6.1.6.3.1.1.5.3; [[ $1 == up ]] && oid=1.3.6.1.6.3.1.1.5.4
    local idx=$2; shift 2
    snmptrap -Ln "$@" '' "$oid" $IFX.1.$idx i "$idx" $IFX.7.$idx i 1 $IFX.8.$idx i 2
}

for _ in $(seq 1 50); do link down 3 -v 2c -c public "$T"; done
wait_q "SELECT count(*) || ' ' || max(occurrence_count) || ' ' || max(severity) || ' ' || max(category) || ' ' || max(title) FROM alerts WHERE alert_type = 'link_down' AND status = 'active'" \
       "1 50 major network Interface Down - core-rtr-1" 15 || fail "50 x linkDown ifIndex 3"
ok "50 x v2c linkDown ifIndex 3: one active link_down alert, occurrence_count 50, titled by device name"

link down 4 -v 2c -c public "$T"
wait_q "SELECT count(*) FROM alerts WHERE alert_type = 'link_down' AND status = 'active'" 2 10 ||
    fail "linkDown ifIndex 4 is not a second alert"
ok "linkDown ifIndex 4: a second alert"

link up 3 -v 2c -c public "$T"
wait_q "SELECT string_agg(status || ':' || coalesce(resolved_by, '-'), ',' ORDER BY occurrence_count DESC) FROM alerts WHERE alert_type = 'link_down'" \
       "resolved:auto-clear,active:-" 10 || fail "linkUp ifIndex 3 did not resolve exactly the first"
[[ $(q "SELECT count(*) FROM alerts WHERE alert_type = 'link_up'") == 0 ]] || fail "the clear opened an alert"
[[ $(q "SELECT count(*) FROM alert_history h JOIN alerts a ON a.id = h.alert_id WHERE a.alert_type = 'link_down' AND h.action = 'resolved'") == 1 ]] ||
    fail "no history row for the resolve"
ok "linkUp ifIndex 3 resolves only the first (auto-clear, history), opens nothing"

snmptrap -Ln -v 1 -c private "$T" 1.3.6.1.4.1.8072.3.2.10 127.0.0.1 0 0 ''
wait_q "SELECT severity || ' ' || category FROM alerts WHERE alert_type = 'cold_start'" "warning network" 10 ||
    fail "v1 coldStart"
ok "v1 coldStart: cold_start, warning"

link down 7 -v 3 -e "$ENGINE" -u alice -l authPriv -a SHA -A alice-auth-pass -x AES -X alice-priv-pass "$T"
link down 8 -v 3 -e "$ENGINE" -u alice -l authPriv -a SHA -A wrong-passphrase -x AES -X alice-priv-pass "$T"
link down 9 -v 3 -e "$ENGINE" -u alice -l authPriv -a SHA -A alice-auth-pass -x AES -X wrong-privpass "$T"
link down 10 -v 3 -e "$ENGINE" -u alice -l authNoPriv -a SHA -A alice-auth-pass "$T"
link down 11 -v 2c -c not-a-community "$T"
wait_q "SELECT count(*) FROM alerts WHERE alert_type = 'link_down' AND source_alert_id LIKE '%/7'" 1 10 ||
    fail "v3 authPriv trap from alice not stored"
sleep 1
[[ $(q "SELECT count(*) FROM alerts WHERE alert_type = 'link_down' AND source_alert_id ~ '/(8|9|10|11)$'") == 0 ]] ||
    fail "a trap with wrong credentials, a lower security level or a wrong community became an alert"
metrics=$(curl -s "$BASE/metrics")
for r in bad_auth bad_priv wrong_security_level bad_community; do
    grep -q "^opsc_trap_dropped_total{reason=\"$r\"} [1-9]" <<<"$metrics" || fail "no $r drop counted"
done
ok "v3 authPriv: one alert; wrong auth, wrong priv, lower level, wrong community: none, each counted"

# bob is bound to our own engine (INFORMs): a trap claiming another engine is refused.
snmptrap -Ln -v 3 -u bob -l authNoPriv -a SHA-256 -A bob-auth-pass1 -e 0x80001f8804626f62 "$T" '' 1.3.6.1.6.3.1.1.5.5
snmptrap -Ln -v 2c -c public "$T" '' 1.3.6.1.4.1.99999.0.42 1.3.6.1.4.1.99999.1 s "mystery"
wait_q "SELECT severity || ' ' || category || ' ' || (title LIKE '%1.3.6.1.4.1.99999.0.42%') FROM alerts WHERE alert_type = 'unknown_trap'" \
       "warning unknown true" 10 || fail "unknown enterprise trap"
ok "unknown enterprise trap: unknown_trap, warning, unknown, OID in the title"
grep -q '^opsc_trap_dropped_total{reason="unknown_engine"} [1-9]' <<<"$(curl -s "$BASE/metrics")" ||
    fail "a v3 trap for an engine the user is not bound to was not dropped as unknown_engine"
[[ $(q "SELECT count(*) FROM alerts WHERE alert_type = 'auth_failure'") == 0 ]] || fail "bob's trap became an alert"
ok "v3 trap for an unbound engine: dropped (unknown_engine)"

synced_before=$(curl -s "$BASE/metrics" | awk '$1 == "opsc_spool_records_total{event=\"synced\"}" {print $2}')
timeout 20 snmpinform -Ln -t 3 -r 2 -v 2c -c public "$T" '' 1.3.6.1.6.3.1.1.5.2 ||
    fail "v2c INFORM not answered"
# Answered once durable: its alert is in the synced journal at that moment (the
# database row follows from there; test_outage covers the journal's guarantee).
synced_after=$(curl -s "$BASE/metrics" | awk '$1 == "opsc_spool_records_total{event=\"synced\"}" {print $2}')
((synced_after > synced_before)) || fail "the INFORM was answered before its alert was journaled"
wait_q "SELECT count(*) FROM alerts WHERE alert_type = 'warm_start'" 1 5 ||
    fail "the INFORM's alert did not reach the database"
ok "v2c INFORM answered after its alert was stored"
timeout 20 snmpinform -Ln -t 3 -r 2 -v 3 -u bob -l authNoPriv -a SHA-256 -A bob-auth-pass1 "$T" '' 1.3.6.1.6.3.1.1.5.5 ||
    fail "v3 INFORM (engine discovery, authNoPriv SHA-256) not answered"
ok "v3 INFORM answered (engine discovery, SHA-256)"

snmptrap -Ln -v 2c -c public "udp6:[::1]:$TRAP6_PORT" '' 1.3.6.1.6.3.1.1.5.3 $IFX.1.21 i 21
wait_q "SELECT count(*) FROM alerts WHERE device_ip = '::1'" 1 10 || fail "IPv6 trap"
ok "IPv6 trap"

# Restart: the active index is rebuilt from the database; repeats keep counting.
stop_server
start_server
link down 4 -v 2c -c public "$T"
wait_q "SELECT count(*) || ' ' || max(occurrence_count) FROM alerts WHERE alert_type = 'link_down' AND status = 'active' AND source_alert_id LIKE '%/4'" "1 2" 10 ||
    fail "a repeat after restart opened a new alert"
ok "after a restart, a repeat counts on the existing alert"
stop_server
echo "all passed"
