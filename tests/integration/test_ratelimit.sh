#!/usr/bin/env bash
# Per-source rate limit (snmp.per_source_rate) end to end: opsbench floods
# from 127.0.0.1 while net-snmp's snmptrap sends a few traps from ::1. The
# second source loses nothing, the first is cut before decoding (counted in
# total and by source), its storm is ONE trap_storm alert on that device,
# /health keeps answering during the flood, and the alert resolves once the
# source has been quiet for snmp.storm_quiet.
source "$(dirname "$0")/lib.sh"
command -v snmptrap >/dev/null || fail "snmptrap not installed (apt-get install snmp)"
OPSBENCH="$TEST_OPSC_BIN_DIR/opsbench"
[[ -x $OPSBENCH ]] || fail "no $OPSBENCH"

WANT_V6=1 ext_server_config "  communities: public
  per_source_rate: 50
  per_source_burst: 50
  storm_quiet: 3s
  max_per_wakeup: 16"
start_server

q "INSERT INTO devices (ip_address, name) VALUES ('127.0.0.1', 'blaster-1')" >/dev/null
reloaded=""
for _ in $(seq 1 100); do
    [[ $(metric opsc_refdata_devices) == 1 ]] && { reloaded=1; break; }
    sleep 0.1
done
[[ -n $reloaded ]] || fail "the device row did not reach the server"

# The flood: one source, far over 50/s, bounded in count and time.
timeout 60 "$OPSBENCH" traps --target "127.0.0.1:$TRAP_PORT" --count 200000 --rate 50000 \
    --duration 8 --devices 1 --interfaces 1 >"$TMP/bench.txt" 2>&1 &
BENCH=$!
CLEANUP_PIDS+=("$BENCH")

# While it runs: /health answers, and the other source's traps get through.
health_ok=0
for i in 1 2 3 4 5; do
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$BASE/health" || true) == 200 ]] &&
        health_ok=$((health_ok + 1))
    snmptrap -Ln -v 2c -c public "udp6:[::1]:$TRAP6_PORT" '' 1.3.6.1.6.3.1.1.5.3 \
        1.3.6.1.2.1.2.2.1.1.$i i "$i"
    sleep 0.3
done
kill -0 "$BENCH" 2>/dev/null || { cat "$TMP/bench.txt"; fail "opsbench ended before the checks during the flood"; }
((health_ok == 5)) || fail "/health answered $health_ok of 5 times during the flood"
ok "/health answered 5 of 5 times during the flood"
wait_exit "$BENCH" 60 || fail "opsbench did not finish"
cat "$TMP/bench.txt"

wait_q "SELECT count(*) || ' ' || sum(occurrence_count) FROM alerts WHERE device_ip = '::1' AND alert_type = 'link_down' AND status = 'active'" \
    "5 5" 15 || fail "the second source's 5 traps"
ok "all 5 traps from the second source (::1) became alerts"

limited=$(metric opsc_trap_rate_limited_total)
by_source=$(metric 'opsc_trap_rate_limited_by_source_total{source="127.0.0.1"}')
received=$(metric "opsc_snmp_datagrams_received_total{listener=\"udp:127.0.0.1:$TRAP_PORT\"}")
decoded=$(metric 'opsc_trap_decoded_total{version="v2c"}')
echo "received on v4: $received, rate limited: $limited (127.0.0.1: $by_source), decoded v2c: $decoded"
((limited > 0)) || fail "nothing was rate limited"
((by_source == limited)) || fail "per-source count $by_source differs from the total $limited"
((limited * 2 > received)) || fail "the flood was not cut: $limited of $received limited"
# Everything received was either cut at the door or decoded (5 of the decoded came from ::1).
((received == limited + decoded - 5)) || fail "received $received != limited $limited + decoded $((decoded - 5))"
[[ $(metric 'opsc_trap_rate_limited_by_source_total{source="::1"}') == 0 ]] || fail "::1 was limited"
ok "127.0.0.1 cut before decoding: $limited of $received dropped, counted in total and by source"

wait_q "SELECT count(*) || ' ' || max(severity) || ' ' || max(category) || ' ' || max(status) || ' ' || max(device_name) || ' ' || max(title) FROM alerts WHERE alert_type = 'trap_storm'" \
    "1 warning network active blaster-1 Trap storm from blaster-1 (rate limited)" 10 ||
    fail "one active trap_storm alert on 127.0.0.1"
[[ $(q "SELECT device_ip || ' ' || (custom_fields->>'per_source_rate') || ' ' || ((custom_fields->>'dropped')::int > 0)::text || ' ' || (raw_data->'source'->>'address') FROM alerts WHERE alert_type = 'trap_storm'") == "127.0.0.1 50 true 127.0.0.1" ]] ||
    fail "trap_storm device_ip/custom_fields/raw_data: $(q "SELECT device_ip, custom_fields, raw_data FROM alerts WHERE alert_type = 'trap_storm'")"
ok "exactly one trap_storm alert: warning, network, on blaster-1 (127.0.0.1), with rate and dropped count"

# Quiet for snmp.storm_quiet (3 s): the alert resolves, by the system, rule trap_storm.
wait_q "SELECT status || ' ' || resolved_by || ' ' || correlation_rule || ' ' || (occurrence_count >= 2)::text FROM alerts WHERE alert_type = 'trap_storm'" \
    "resolved system trap_storm true" 20 || fail "the trap_storm alert did not resolve after the quiet period"
[[ $(q "SELECT count(*) FROM alert_history h JOIN alerts a ON a.id = h.alert_id WHERE a.alert_type = 'trap_storm' AND h.new_status = 'resolved'") == 1 ]] ||
    fail "no history row for the resolution"
ok "after 3 s quiet the trap_storm alert resolved (actor system, rule trap_storm), repeats counted"

kill -TERM "$SERVER"
wait_exit "$SERVER" 30 || fail "server did not stop"
((EXIT_STATUS == 0)) || fail "server exit status $EXIT_STATUS"
if grep -q "dropping traps from 127.0.0.1" "$TMP/server.log"; then
    ok "the log names the source being cut"
else
    fail "no log line names 127.0.0.1"
fi

# A storm alert still open when the server stops resolves after a restart with the limit off.
start_server
timeout 60 "$OPSBENCH" traps --target "127.0.0.1:$TRAP_PORT" --count 5000 --rate 5000 \
    --duration 5 --devices 1 --interfaces 1 >"$TMP/bench2.txt" 2>&1 || fail "second flood"
wait_q "SELECT count(*) FROM alerts WHERE alert_type = 'trap_storm' AND status = 'active'" 1 10 ||
    fail "no active trap_storm alert after the second flood"
stop_server
OPSC_SNMP_PER_SOURCE_RATE=0 start_server
wait_q "SELECT count(*) FROM alerts WHERE alert_type = 'trap_storm' AND status = 'active'" 0 20 ||
    fail "with the limit off, the open trap_storm alert never resolved"
ok "an open trap_storm alert resolves after a restart with the limit off"
stop_server
