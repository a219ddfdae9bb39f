#!/usr/bin/env bash
# With database.url the server migrates that database, becomes ready, never
# starts a postgres of its own, and does not re-apply migrations on restart.
source "$(dirname "$0")/lib.sh"

start_ext_pg
HTTP_PORT=$(free_port tcp)
BASE="http://127.0.0.1:$HTTP_PORT"
run() {
    OPSC_DATABASE_URL="$EXT_URL" OPSC_DATA_DIR="$TMP/data" OPSC_HTTP_LISTEN="127.0.0.1:$HTTP_PORT" \
    OPSC_SNMP_LISTEN="udp:127.0.0.1:$(free_port udp)" "$BIN" >>"$TMP/server.log" 2>&1 &
    SERVER=$!
    CLEANUP_PIDS+=("$SERVER")
    wait_for_code "$BASE/ready" 200 30 || { tail -n 30 "$TMP/server.log"; fail "not ready"; }
    [[ -z $(pgrep -P "$SERVER" || true) ]] || fail "the server started a child process"
    [[ ! -e $TMP/data/pg ]] || fail "an embedded cluster was created"
}
run
CI="host=$EXT_PG user=opsc_ext dbname=opsc_ext"
bash "$TEST_OPSC_SOURCE_DIR/tests/integration/check_schema.sh" "$CI" >"$TMP/schema.log" 2>&1 ||
    { cat "$TMP/schema.log"; fail "schema check"; }
first=$(psql -XAtq "$CI" -c "SELECT string_agg(version || '@' || applied_at, ',') FROM schema_migrations")
ok "database.url: migrated and ready, no embedded postgres"
kill -TERM "$SERVER"; wait_exit "$SERVER" 5 || fail "no exit"; [[ $EXIT_STATUS -eq 0 ]] || fail "exit $EXIT_STATUS"
run
second=$(psql -XAtq "$CI" -c "SELECT string_agg(version || '@' || applied_at, ',') FROM schema_migrations")
[[ $first == "$second" ]] || fail "re-applied: $first / $second"
ok "second start: migrations not re-applied"

# The external server goes away and comes back: /ready follows it.
stop_ext_pg
wait_for_code "$BASE/ready" 503 10 || fail "/ready stayed 200 with the database down"
body=$(curl -s "$BASE/ready")
[[ $body == *"database not connected"* ]] || fail "503 body lacks the reason: $body"
EXT_PG="$TMP/pg-ext"
as_pg_user pg_ctl -D "$EXT_PG/data" -l "$EXT_PG/pg.log" -w -t 60 -o "-k $EXT_PG -c listen_addresses= -c fsync=off" start >/dev/null
wait_for_code "$BASE/ready" 200 15 || fail "/ready did not recover after the database came back"
ok "database down: 503 naming the reason; back: 200"
kill -TERM "$SERVER"; wait_exit "$SERVER" 5 || fail "no exit"; [[ $EXIT_STATUS -eq 0 ]] || fail "exit $EXIT_STATUS"
echo "all passed"
