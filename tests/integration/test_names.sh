#!/usr/bin/env bash
# Names end to end (issue 3 item 5): device names by reverse DNS (through a
# real DNS server, dnsmasq on a loopback port, answering PTR queries from a
# hosts file) for devices missing from the devices table, and vendor names
# from MIB files in snmp.mib_dirs used in titles, templates and raw_data.
source "$(dirname "$0")/lib.sh"
command -v snmptrap >/dev/null || fail "snmptrap not installed (apt-get install snmp)"
DNSMASQ=$(command -v dnsmasq || ls /usr/sbin/dnsmasq 2>/dev/null || true)
[[ -x $DNSMASQ ]] || fail "dnsmasq not installed (apt-get install dnsmasq-base)"

DNS_PORT=$(free_port udp)
cat >"$TMP/hosts" <<HOSTS
192.0.2.10 edge-sw-10.example.net
2001:db8::10 core-v6.example.net
HOSTS
"$DNSMASQ" --keep-in-foreground --conf-file=/dev/null --port="$DNS_PORT" \
    --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts \
    --addn-hosts="$TMP/hosts" --pid-file= --user=root --log-facility=- >>"$TMP/dnsmasq.log" 2>&1 &
CLEANUP_PIDS+=("$!")

ext_server_config "  communities: public
  mib_dirs: [$TEST_OPSC_SOURCE_DIR/tests/fixtures/mibs]
dns:
  servers: 127.0.0.1:$DNS_PORT
  timeout: 500ms"
start_server
grep -q "MIB files: .* names" "$TMP/server.log" || { tail -n 20 "$TMP/server.log"; fail "the MIB directory was not read"; }
ok "MIB files of snmp.mib_dirs indexed at start"


T="127.0.0.1:$TRAP_PORT"
IFX=1.3.6.1.2.1.2.2.1
ADDR=1.3.6.1.6.3.18.1.3.0
link_down() { # link_down DEVICE_IP IFINDEX
    snmptrap -Ln -v 2c -c public "$T" '' 1.3.6.1.6.3.1.1.5.3 $ADDR a "$1" \
        $IFX.1.$2 i "$2" $IFX.7.$2 i 1 $IFX.8.$2 i 2
}

# A device with a PTR record: the first alert is named once the answer arrives.
link_down 192.0.2.10 3
wait_q "SELECT device_name || ' | ' || title FROM alerts WHERE device_ip = '192.0.2.10' AND source_alert_id LIKE '%/3'" \
       "edge-sw-10.example.net | Interface Down - edge-sw-10.example.net" 10 \
    || { tail -n 20 "$TMP/server.log"; fail "the device name from reverse DNS did not reach the alert"; }
ok "reverse DNS names a device missing from the devices table (device_name and title)"

# The second alert of the same device takes the cached name when it is created.
before=$(metric 'opsc_alert_names_total{outcome="at_create"}')
link_down 192.0.2.10 4
wait_q "SELECT device_name || ' | ' || title FROM alerts WHERE device_ip = '192.0.2.10' AND source_alert_id LIKE '%/4'" \
       "edge-sw-10.example.net | Interface Down - edge-sw-10.example.net" 10 || fail "second alert not named"
after=$(metric 'opsc_alert_names_total{outcome="at_create"}')
((after == before + 1)) || fail "the second alert was not named from the cache (at_create $before -> $after)"
ok "a cached name is written with the new alert itself"

# No PTR record: no name, the address in the title; the history has no 'updated' row.
link_down 198.51.100.7 1
wait_q "SELECT coalesce(device_name, 'NULL') || ' | ' || title FROM alerts WHERE device_ip = '198.51.100.7'" \
       "NULL | Interface Down - 198.51.100.7" 10 || fail "unnamed device"
sleep 1
[[ $(q "SELECT coalesce(device_name, 'NULL') FROM alerts WHERE device_ip = '198.51.100.7'") == NULL ]] \
    || fail "a device without a PTR record got a name"
ok "a device without a PTR record keeps device_name NULL and its address in the title"

# The devices table wins over DNS.
q "INSERT INTO devices (ip_address, name) VALUES ('192.0.2.10', 'edge-10-inventory')" >/dev/null
sleep 1.5 # reference-data reload (NOTIFY)
link_down 192.0.2.10 5
wait_q "SELECT device_name || ' | ' || title FROM alerts WHERE device_ip = '192.0.2.10' AND source_alert_id LIKE '%/5'" \
       "edge-10-inventory | Interface Down - edge-10-inventory" 10 || fail "the devices table did not win"
ok "a name from the devices table wins over reverse DNS"

# Vendor names from the MIB directory: an unmapped trap names its notification...
ACME=1.3.6.1.4.1.99999
snmptrap -Ln -v 2c -c public "$T" '' $ACME.2.0.1 $ADDR a 198.51.100.8 $ACME.1.1.0 i 2 $ACME.1.2.0 i 3
wait_q "SELECT alert_type || ' | ' || title FROM alerts WHERE device_ip = '198.51.100.8'" \
       "unknown_trap | Unknown trap ACME-MIB::acmeFanFailure ($ACME.2.0.1) from 198.51.100.8" 10 \
    || fail "unknown trap title without the MIB file's name"
wait_q "SELECT string_agg(v->>'name' || '=' || coalesce((v->>'enum') || '(' || (v->>'value') || ')', v->>'value'), ',' ORDER BY v->>'oid') FROM alerts, jsonb_array_elements(raw_data->'varbinds') v WHERE device_ip = '198.51.100.8' AND v->>'oid' LIKE '$ACME.%'" \
       "ACME-MIB::acmeFanIndex.0=2,ACME-MIB::acmeFanState.0=failed(3)" 5 || {
    q "SELECT raw_data FROM alerts WHERE device_ip = '198.51.100.8'"; fail "raw_data varbind names from the MIB file"; }
ok "an unmapped vendor trap is titled and its varbinds named from the MIB file"

# ... and a mapping's template can use the vendor's object names.
q "INSERT INTO oid_mappings (oid_pattern, alert_type, category, default_severity, title_template)
   VALUES ('$ACME.2.0.1', 'fan_failure', 'environment', 'major', 'Fan {acmeFanIndex} {acmeFanState} on {device_name}')" >/dev/null
sleep 1.5
snmptrap -Ln -v 2c -c public "$T" '' $ACME.2.0.1 $ADDR a 198.51.100.9 $ACME.1.1.0 i 7 $ACME.1.2.0 i 2
wait_q "SELECT alert_type || ' | ' || title FROM alerts WHERE device_ip = '198.51.100.9'" \
       "fan_failure | Fan 7 degraded on 198.51.100.9" 10 || fail "template with vendor object names"
ok "title templates use object names from the MIB file"

stop_server
echo "all passed"
