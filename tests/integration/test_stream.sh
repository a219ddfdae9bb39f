#!/usr/bin/env bash
# The WebSocket live feed against the real server and a throwaway PostgreSQL,
# with Debian's python3-websockets as the client (stream_client.py) and real
# traps from snmptrap producing the changes: paged snapshot, created /
# updated / resolved events, filters by query and by message, ping/pong,
# close handshake, 1002 / 1007 / 1009, credentials by header and query
# string, a slow client coalesced then closed with 1013 while a fast one gets
# everything, and two instances on one database seeing each other's changes.
source "$(dirname "$0")/lib.sh"
command -v snmptrap >/dev/null || fail "snmptrap not installed (apt-get install snmp)"
PY=/usr/bin/python3 # Debian's, with python3-websockets
$PY -c 'import websockets' 2>/dev/null || fail "python3-websockets not installed (apt-get install python3-websockets)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >"$TMP/openssl.log" 2>&1 ||
    { cat "$TMP/openssl.log"; fail "openssl req"; }
export OPSC_ADMIN_TOKEN="bootstrap-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ext_server_config "  communities: public
stream:
  max_pending: 20"
TLS_PORT=$(free_port tcp)
OPSC_HTTP_TLS_LISTEN="127.0.0.1:$TLS_PORT" OPSC_HTTP_TLS_CERT="$TMP/cert.pem" OPSC_HTTP_TLS_KEY="$TMP/key.pem" start_server
client() { $PY "$TEST_OPSC_SOURCE_DIR/tests/integration/stream_client.py" "$1" "$HTTP_PORT" "$TRAP_PORT" "$OPSC_ADMIN_TOKEN" "${@:2}"; }

q "INSERT INTO alerts (source_system, source_alert_id, device_ip, severity, category, alert_type, title, occurred_at, fingerprint)
   SELECT 'sqlgen', 'g' || i, '10.1.0.' || (i % 200), 'minor', 'power', 'gen', 'Generated ' || i, now() - i * interval '1 s', 'fp-' || i
   FROM generate_series(1, 1200) i" >/dev/null

code=$(curl -s -o "$TMP/body" -w '%{http_code}' -H "Authorization: Bearer $OPSC_ADMIN_TOKEN" "$BASE/api/v1/stream")
[[ $code == 426 ]] || fail "plain GET of the stream: $code"
ok "a plain GET of /api/v1/stream: 426 Upgrade Required"

client auth || fail "auth scenario"
client basic || fail "basic scenario"
client bad_frames || fail "bad frames scenario"
client slow 100 || fail "slow client scenario"
client tls "$TLS_PORT" "$TMP/cert.pem" || fail "TLS scenario"

# A second instance on the same database.
HTTP_B=$(free_port tcp); TRAP_B=$(free_port udp)
sed -e "s|127.0.0.1:$HTTP_PORT|127.0.0.1:$HTTP_B|" -e "s|udp:127.0.0.1:$TRAP_PORT|udp:127.0.0.1:$TRAP_B|" \
    -e "s|^data_dir: .*|data_dir: $TMP/data-b|" "$TMP/opsc.yaml" >"$TMP/opsc-b.yaml"
OPSC_DATABASE_URL="$EXT_URL" "$BIN" --config "$TMP/opsc-b.yaml" >>"$TMP/server-b.log" 2>&1 &
SERVER_B=$!
CLEANUP_PIDS+=("$SERVER_B")
wait_for_code "http://127.0.0.1:$HTTP_B/ready" 200 30 || { tail -n 30 "$TMP/server-b.log"; fail "instance B not ready"; }
client instances "$HTTP_B" "$TRAP_B" || fail "instances scenario"

kill -TERM "$SERVER_B"
wait_exit "$SERVER_B" 10 || fail "instance B: no exit after SIGTERM"
[[ $EXIT_STATUS -eq 0 ]] || fail "instance B: exit status $EXIT_STATUS"
# A feed client connected during shutdown does not hold the server up.
$PY - "$HTTP_PORT" "$OPSC_ADMIN_TOKEN" <<'PYEOF' &
import asyncio, sys, websockets
async def main():
    async with websockets.connect(f"ws://127.0.0.1:{sys.argv[1]}/api/v1/stream",
                                  extra_headers={"Authorization": f"Bearer {sys.argv[2]}"}) as ws:
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 30)
        except websockets.exceptions.ConnectionClosed:
            pass
asyncio.run(main())
PYEOF
HOLDER=$!
CLEANUP_PIDS+=("$HOLDER")
wait_q "SELECT 1" 1 5 >/dev/null
for _ in $(seq 1 50); do [[ $(metric opsc_stream_clients) == 1 ]] && break; sleep 0.1; done
[[ $(metric opsc_stream_clients) == 1 ]] || fail "the holder never connected"
stop_server
wait_exit "$HOLDER" 10 || fail "the feed client was not closed at shutdown"
ok "SIGTERM with a feed client connected: clean exit, the client is closed"
