#!/usr/bin/env bash
# Bad input end to end (issue 3 item 11 and the acceptance's "100,000 mutated
# packets"): opsbench sends 100,000 damaged SNMPv2c traps (truncated, flipped
# bits, BER length and tag bytes, trailing garbage, a 4 GiB outer length,
# random bytes) to the real server. It must stay up and answering, account for
# every datagram (decoded, or dropped under a counted reason), log drops at a
# limited rate, create alerts only from what decoded as a valid trap, and go
# on taking good traps.
source "$(dirname "$0")/lib.sh"
command -v snmptrap >/dev/null || fail "snmptrap not installed (apt-get install snmp)"
OPSBENCH="$TEST_OPSC_BIN_DIR/opsbench"
[[ -x $OPSBENCH ]] || fail "no $OPSBENCH"

ext_server_config "  communities: public
dns:
  cache_ttl: 0"
start_server

timeout 120 "$OPSBENCH" traps --target "127.0.0.1:$TRAP_PORT" --metrics "$BASE/metrics" \
    --count 100000 --devices 20 --interfaces 4 --dup-ratio 0.5 --rate 20000 --mutate --seed 7 \
    >"$TMP/report.txt" || { cat "$TMP/report.txt"; fail "opsbench exit status"; }
cat "$TMP/report.txt"
grep -Eq '^  traps sent +100000$' "$TMP/report.txt" || fail "not 100000 sent"
grep -q '^result: ACCOUNTED$' "$TMP/report.txt" || fail "datagrams neither decoded nor counted"
kill -0 "$SERVER" 2>/dev/null || fail "the server died"
wait_for_code "$BASE/health" 200 5 || fail "/health does not answer after the flood"
ok "100,000 mutated datagrams: the server is up, every one decoded or counted by reason"

decoded=$(metric 'opsc_trap_decoded_total{version="v2c"}')
malformed=$(metric 'opsc_trap_dropped_total{reason="malformed"}')
((malformed > 50000)) || fail "only $malformed counted as malformed"
wait_q "SELECT (count(*) <= $decoded)::text FROM alerts" true 10 || fail "more alerts than decoded traps"
ok "$malformed dropped as malformed; $(q 'SELECT count(*) FROM alerts') alerts, all from the $decoded that decoded"

lines=$(grep -c 'malformed' "$TMP/server.log" || true)
((lines < 100)) || fail "$lines log lines about malformed packets: not rate-limited"
ok "drops logged at a limited rate ($lines lines)"

before=$(q "SELECT count(*) FROM alerts WHERE device_ip = '192.0.2.77'")
snmptrap -Ln -v 2c -c public "127.0.0.1:$TRAP_PORT" '' 1.3.6.1.6.3.1.1.5.3 \
    1.3.6.1.6.3.18.1.3.0 a 192.0.2.77 1.3.6.1.2.1.2.2.1.1.9 i 9
wait_q "SELECT count(*) FROM alerts WHERE device_ip = '192.0.2.77'" $((before + 1)) 10 ||
    fail "a good trap after the flood did not become an alert"
ok "a good trap after the flood becomes its alert"
stop_server
echo "all passed"
