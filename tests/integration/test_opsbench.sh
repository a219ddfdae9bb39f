#!/usr/bin/env bash
# opsbench traps against the real server and a throwaway PostgreSQL: its
# encoder produces traps the server turns into the right alerts, and its
# report agrees with the database (no loss at a modest rate).
source "$(dirname "$0")/lib.sh"
OPSBENCH="$TEST_OPSC_BIN_DIR/opsbench"
[[ -x $OPSBENCH ]] || fail "no $OPSBENCH"

# --dry-run: one SNMPv2c linkDown from 10.0.0.1 ifIndex 1, exactly as encoded.
hex=$("$OPSBENCH" traps --dry-run)
[[ $hex == 30*a7*2b0601060301010503*2b060106031201030040040a000001 ]] || fail "dry-run encoding: $hex"
"$OPSBENCH" --help | grep -q -- '--dup-ratio' || fail "--help"
ok "opsbench --dry-run and --help"

ext_server_config "  communities: public
  v3_users:
    - name: bench
      auth_protocol: none
      priv_protocol: none
      engine_id: 8000e2f00101
    - name: benchpriv
      auth_protocol: SHA
      auth_passphrase: bench-auth-pass
      priv_protocol: AES
      priv_passphrase: bench-priv-pass
      engine_id: 8000e2f00101"
start_server

timeout 60 "$OPSBENCH" traps --target "127.0.0.1:$TRAP_PORT" --metrics "$BASE/metrics" \
    --count 20000 --devices 50 --interfaces 4 --clear-ratio 0 --rate 20000 --duration 10 >"$TMP/report.txt" ||
    { cat "$TMP/report.txt"; fail "opsbench exit status"; }
cat "$TMP/report.txt"
grep -Eq '^  traps sent +20000$' "$TMP/report.txt" || fail "not 20000 sent"
grep -q '^lost or dropped, total: 0$' "$TMP/report.txt" || fail "opsbench reports drops"
grep -q '^result: LOSSLESS$' "$TMP/report.txt" || fail "opsbench does not report LOSSLESS"
ok "opsbench: 20000 sent, 0 lost or dropped"

want="200 20000 50"
deadline=$((SECONDS + 15)) got=""
while ((SECONDS < deadline)); do
    got=$(psql -XAtq "$CI" -c "SELECT count(*) || ' ' || coalesce(sum(occurrence_count), 0) || ' ' || count(DISTINCT device_ip) FROM alerts WHERE alert_type = 'link_down' AND status = 'active'")
    [[ $got == "$want" ]] && break
    sleep 0.2
done
[[ $got == "$want" ]] || fail "alerts: got '$got', expected '$want' (count, sum of occurrence_count, devices)"
[[ $(psql -XAtq "$CI" -c "SELECT count(*) FROM alerts WHERE alert_type <> 'link_down' OR status <> 'active'") == 0 ]] ||
    fail "alerts other than active link_down"
ok "200 active link_down alerts (50 devices x 4 interfaces), occurrence_count summing to 20000"

# SNMPv3 (noAuthNoPriv) from opsbench's own encoder: net-snmp decodes every one.
v3_before=$(metric 'opsc_trap_decoded_total{version="v3"}')
timeout 60 "$OPSBENCH" traps --target "127.0.0.1:$TRAP_PORT" --metrics "$BASE/metrics" --version 3 \
    --user bench --engine-id 0x8000e2f00101 --count 5000 --devices 5 --interfaces 2 --rate 10000 \
    --duration 10 >"$TMP/report3.txt" || { cat "$TMP/report3.txt"; fail "opsbench v3 exit status"; }
grep -q '^result: LOSSLESS$' "$TMP/report3.txt" || { cat "$TMP/report3.txt"; fail "v3 run not lossless"; }
v3_after=$(metric 'opsc_trap_decoded_total{version="v3"}')
((v3_after - v3_before == 5000)) || fail "v3 decoded: $((v3_after - v3_before)), expected 5000"
ok "opsbench --version 3: 5000 noAuthNoPriv traps, all decoded as v3"

# authPriv (HMAC-SHA-96, AES-128-CFB) from opsbench's encoder: net-snmp authenticates and
# decrypts every one; with a wrong passphrase none is decoded and all are counted as dropped.
timeout 60 "$OPSBENCH" traps --target "127.0.0.1:$TRAP_PORT" --metrics "$BASE/metrics" --version 3 \
    --user benchpriv --auth-pass bench-auth-pass --priv-pass bench-priv-pass \
    --engine-id 0x8000e2f00101 --count 3000 --devices 5 --interfaces 2 --rate 5000 \
    --duration 10 >"$TMP/report3p.txt" || { cat "$TMP/report3p.txt"; fail "opsbench authPriv exit status"; }
grep -q '^result: LOSSLESS$' "$TMP/report3p.txt" || { cat "$TMP/report3p.txt"; fail "authPriv run not lossless"; }
v3p=$(metric 'opsc_trap_decoded_total{version="v3"}')
((v3p - v3_after == 3000)) || fail "authPriv decoded: $((v3p - v3_after)), expected 3000"
dropped() { curl -s "$BASE/metrics" | awk '$1 ~ /^opsc_trap_dropped_total/ {s += $2} END {print s + 0}'; }
dropped_before=$(dropped)
timeout 60 "$OPSBENCH" traps --target "127.0.0.1:$TRAP_PORT" --version 3 --user benchpriv \
    --auth-pass wrong-auth-pass --priv-pass bench-priv-pass --engine-id 0x8000e2f00101 \
    --count 200 --devices 5 --interfaces 2 --rate 2000 --duration 5 >/dev/null || fail "opsbench wrong pass"
deadline=$((SECONDS + 10))
while ((SECONDS < deadline && $(dropped) < dropped_before + 200)); do sleep 0.2; done
(($(dropped) >= dropped_before + 200)) || fail "wrong passphrase: $(($(dropped) - dropped_before)) dropped, expected 200"
(($(metric 'opsc_trap_decoded_total{version="v3"}') == v3p)) || fail "traps with a wrong passphrase decoded"
ok "opsbench --version 3 authPriv: 3000 decoded; a wrong passphrase: none"
