#!/usr/bin/env bash
# opsconductord end to end on its embedded PostgreSQL: ready, schema, kill -9
# of the postgres child and recovery, SIGHUP, a second instance refused,
# SIGTERM with a clean exit and no postgres left, restart without re-migrating.
source "$(dirname "$0")/lib.sh"

DATA="$TMP/data"
HTTP_PORT=$(free_port tcp)
UDP_PORT=$(free_port udp)
BASE="http://127.0.0.1:$HTTP_PORT"
CONF="$TMP/opsc.yaml"
cat >"$CONF" <<YAML
data_dir: $DATA
log:
  level: info
http:
  listen: 127.0.0.1:$HTTP_PORT
snmp:
  listen: udp:127.0.0.1:$UDP_PORT
YAML

start_server() {
    "$BIN" --config "$CONF" >>"$TMP/server.log" 2>&1 &
    SERVER=$!
    CLEANUP_PIDS+=("$SERVER")
}

start_server
wait_for_code "$BASE/ready" 200 90 || { tail -n 40 "$TMP/server.log"; fail "/ready never reached 200"; }
ok "first start: /ready 200 on the embedded database"

[[ $(curl -s "$BASE/health") == *'"status":"ok"'* ]] || fail "/health body"
metrics=$(curl -s "$BASE/metrics")
for m in opsc_build_info opsc_uptime_seconds opsc_loop_lag_seconds opsc_db_connection_up \
         opsc_db_queue_depth opsc_embedded_pg_up; do
    grep -q "^$m" <<<"$metrics" || fail "/metrics lacks $m"
done
grep -q '^opsc_ready 1' <<<"$metrics" || fail "opsc_ready is not 1"
ok "/health and /metrics"

CI=$(embedded_conninfo "$DATA")
bash "$TEST_OPSC_SOURCE_DIR/tests/integration/check_schema.sh" "$CI" >"$TMP/schema.log" 2>&1 ||
    { cat "$TMP/schema.log"; fail "schema check"; }
ok "schema of seed 000 present (psql)"
applied_at=$(psql -XAtq "$CI" -c "SELECT string_agg(version || '@' || applied_at, ',') FROM schema_migrations")
[[ -n $applied_at ]] || fail "schema_migrations empty"

# The embedded postgres runs as an unprivileged user and only on a unix socket.
CLUSTER=$(cluster_dir "$DATA")
PGPID=$(head -n 1 "$CLUSTER/postmaster.pid")
[[ $(ps -o user= -p "$PGPID") != root ]] || fail "postgres runs as root"
[[ $(sed -n 6p "$CLUSTER/postmaster.pid") == "" ]] || fail "postgres listens on TCP"
ok "postgres child pid $PGPID runs as $(ps -o user= -p "$PGPID" | tr -d ' '), unix socket only"

# kill -9 the postgres child: /ready must come back to 200 within 10 s.
kill -9 "$PGPID"
t0=$SECONDS
wait_for_code "$BASE/ready" 503 5 || true
wait_for_code "$BASE/ready" 200 10 || { tail -n 30 "$TMP/server.log"; fail "/ready did not recover within 10 s"; }
NEWPID=$(head -n 1 "$CLUSTER/postmaster.pid")
[[ $NEWPID != "$PGPID" ]] || fail "postgres was not restarted"
ok "kill -9 of postgres: restarted (pid $NEWPID), /ready 200 again after $((SECONDS - t0)) s"

# A second server on the same data dir refuses to start.
set +e
OPSC_HTTP_LISTEN="127.0.0.1:$(free_port tcp)" OPSC_SNMP_LISTEN="udp:127.0.0.1:$(free_port udp)" \
    timeout 20 "$BIN" --config "$CONF" >"$TMP/second.log" 2>&1
rc=$?
set -e
[[ $rc -ne 0 && $rc -ne 124 ]] || fail "second instance: exit $rc"
grep -q "in use by another opsconductord (pid $SERVER)" "$TMP/second.log" ||
    { cat "$TMP/second.log"; fail "second instance message"; }
ok "second instance on the same data dir refused (exit $rc)"

# SIGHUP: log level reloaded, listen address reported as needing a restart.
sed -i 's/level: info/level: debug/; s/listen: 127.0.0.1:'"$HTTP_PORT"'/listen: 127.0.0.1:1/' "$CONF"
kill -HUP "$SERVER"
for _ in $(seq 1 50); do grep -q "SIGHUP: reloaded" "$TMP/server.log" && break; sleep 0.1; done
reload_line=$(grep "SIGHUP: reloaded" "$TMP/server.log" || true)
[[ $reload_line == *"log.level (info -> debug)"* ]] ||
    { tail -n 5 "$TMP/server.log"; fail "SIGHUP did not reload log.level"; }
[[ $reload_line == *"needs a restart: http.listen"* ]] ||
    fail "SIGHUP did not report http.listen as needing a restart"
[[ $(http_code "$BASE/ready") == 200 ]] || fail "not ready after SIGHUP"
sed -i 's/level: debug/level: info/; s/listen: 127.0.0.1:1$/listen: 127.0.0.1:'"$HTTP_PORT"'/' "$CONF"
ok "SIGHUP reload"

# SIGTERM: exit 0 within 5 s, no postgres of this cluster left.
kill -TERM "$SERVER"
wait_exit "$SERVER" 5 || fail "no exit within 5 s of SIGTERM"
[[ $EXIT_STATUS -eq 0 ]] || { tail -n 20 "$TMP/server.log"; fail "exit status $EXIT_STATUS"; }
kill -0 "$NEWPID" 2>/dev/null && fail "postgres $NEWPID still running"
pgrep -f -- "-D $CLUSTER" >/dev/null && fail "a postgres of $CLUSTER is still running"
ok "SIGTERM: exit 0, no postgres left"

# Restart on the same data dir: no initdb, no migration applied again.
start_server
wait_for_code "$BASE/ready" 200 60 || { tail -n 30 "$TMP/server.log"; fail "restart not ready"; }
CI=$(embedded_conninfo "$DATA")
again=$(psql -XAtq "$CI" -c "SELECT string_agg(version || '@' || applied_at, ',') FROM schema_migrations")
[[ $again == "$applied_at" ]] || fail "migrations re-applied: $applied_at vs $again"
kill -INT "$SERVER"
wait_exit "$SERVER" 5 || fail "no exit within 5 s of SIGINT"
[[ $EXIT_STATUS -eq 0 ]] || fail "exit status $EXIT_STATUS after SIGINT"
ok "restart: ready, migrations not re-applied; SIGINT: exit 0"
echo "all passed"
