#!/usr/bin/env bash
# Users, passwords, login sessions and their audit, against the real server and
# a throwaway PostgreSQL, with curl: the first admin created and printed once
# (never again), login cookies with their flags (plain and TLS), sessions and
# tokens of each role against routes of each role class (401 vs 403), users
# CRUD, disabling and logging out ending sessions at once, a revocation by SQL
# arriving by NOTIFY, failed-login limits (429 + Retry-After), audit rows.
source "$(dirname "$0")/lib.sh"
unset OPSC_ADMIN_TOKEN
command -v openssl >/dev/null || fail "openssl CLI missing (apt-get install openssl)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >"$TMP/openssl.log" 2>&1 ||
    { cat "$TMP/openssl.log"; fail "openssl req"; }

ext_server_config
TLS_PORT=$(free_port tcp)
cat >>"$TMP/opsc.yaml" <<YAML
auth:
  pbkdf2_iterations: 1000
  login_max_failures: 3
  login_lockout: 4s
YAML
sed -i "s|^  listen: 127.0.0.1:$HTTP_PORT|&\n  tls:\n    listen: 127.0.0.1:$TLS_PORT\n    cert: $TMP/cert.pem\n    key: $TMP/key.pem|" "$TMP/opsc.yaml"
start_server
TBASE="https://localhost:$TLS_PORT"
TLSOPT=(--cacert "$TMP/cert.pem" --resolve "localhost:$TLS_PORT:127.0.0.1")

# req METHOD URL [BODY] [curl args...]: prints "STATUS BODY"; headers in $TMP/hdr.
req() {
    local m=$1 url=$2 body=${3:-}
    shift 3 || shift $#
    local args=(-s -D "$TMP/hdr" -o "$TMP/body" -w '%{http_code}' -X "$m" "$url" "$@")
    [[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data "$body")
    local code
    code=$(curl "${args[@]}")
    echo "$code $(cat "$TMP/body")"
}
expect() { # expect STATUS "STATUS BODY" WHAT
    [[ ${2%% *} == "$1" ]] || fail "$3: expected $1, got: $2"
}
jget() { python3 -c "import json,sys; print(json.loads(sys.argv[1])$2)" "${1#* }"; }
cookie_of() { sed -n 's/^[Ss]et-[Cc]ookie: opsc_session=\([^;]*\);.*/\1/p' "$TMP/hdr" | tr -d '\r'; }
C() { echo -b "opsc_session=$1"; }

# The first admin: printed once, clearly, with a random password.
wait_for_log() { local d=$((SECONDS + 10)); while ((SECONDS < d)); do grep -q "$1" "$TMP/server.log" && return 0; sleep 0.2; done; return 1; }
wait_for_log "password: " || { tail -n 30 "$TMP/server.log"; fail "no first admin password printed"; }
PW=$(sed -n 's/^ *password: \(.*\)$/\1/p' "$TMP/server.log")
[[ $PW =~ ^[A-Za-z0-9_-]{24}$ ]] || fail "first admin password: '$PW'"
[[ $(q "SELECT count(*) FROM users WHERE username = 'admin' AND password_hash LIKE 'pbkdf2-sha256\$1000\$%'") == 1 ]] ||
    fail "admin row: $(q "SELECT username, password_hash FROM users")"
[[ $(q "SELECT count(*) FROM users WHERE password_hash LIKE '%$PW%'") == 0 ]] || fail "password stored in clear"
ok "first start without users or OPSC_ADMIN_TOKEN: user admin created, its random password printed, stored as PBKDF2"

# Login over plain HTTP: cookie flags, no Secure; the session stored only as a hash.
expect 401 "$(req GET "$BASE/api/v1/auth/me" "")" "me without credentials"
r=$(req POST "$BASE/api/v1/auth/login" "{\"username\": \"ADMIN\", \"password\": \"$PW\"}")
expect 200 "$r" "admin login (name case-insensitive)"
[[ $(jget "$r" '["user"]["role"]') == admin ]] || fail "login body: $r"
SC=$(grep -i '^set-cookie:' "$TMP/hdr" | tr -d '\r')
for flag in 'HttpOnly' 'SameSite=Strict' 'Path=/'; do [[ $SC == *"$flag"* ]] || fail "cookie without $flag: $SC"; done
[[ $SC == *Secure* ]] && fail "Secure over plain HTTP: $SC"
ADM=$(cookie_of)
[[ $ADM =~ ^opsc_[A-Za-z0-9_-]{43}$ ]] || fail "session cookie value: $ADM"
h=$(printf '%s' "$ADM" | sha256sum | cut -d' ' -f1)
[[ $(q "SELECT count(*) FROM sessions WHERE token_hash = '$h' AND expires_at > now() + interval '11 hours'") == 1 ]] ||
    fail "session row: $(q "SELECT token_hash, expires_at FROM sessions")"
r=$(req GET "$BASE/api/v1/auth/me" "" $(C "$ADM"))
expect 200 "$r" "me with the cookie"
[[ $(jget "$r" '["kind"]')/$(jget "$r" '["name"]')/$(jget "$r" '["role"]') == session/admin/admin ]] || fail "me: $r"
ok "login: 200 with opsc_session cookie (HttpOnly, SameSite=Strict, Path=/, no Secure on plain HTTP), stored as SHA-256, 12 h"

# Over TLS the cookie is Secure.
r=$(req POST "$TBASE/api/v1/auth/login" "{\"username\": \"admin\", \"password\": \"$PW\"}" "${TLSOPT[@]}")
expect 200 "$r" "login over TLS"
SC=$(grep -i '^set-cookie:' "$TMP/hdr" | tr -d '\r')
[[ $SC == *"; Secure"* && $SC == *HttpOnly* ]] || fail "TLS cookie: $SC"
TLSC=$(cookie_of)
expect 200 "$(req GET "$TBASE/api/v1/auth/me" "" $(C "$TLSC") "${TLSOPT[@]}")" "me over TLS"
ok "login over TLS: the cookie is Secure"

# Users CRUD by the admin session; the password never comes back.
r=$(req POST "$BASE/api/v1/users" '{"username": "alice", "password": "alice-pass-1", "role": "operator", "email": "a@example.com"}' $(C "$ADM"))
expect 201 "$r" "create alice"
AID=$(jget "$r" '["id"]')
[[ $(jget "$r" '["role"]') == operator && $r != *password* ]] || fail "create body: $r"
expect 409 "$(req POST "$BASE/api/v1/users" '{"username": "Alice", "password": "whatever-1", "role": "viewer"}' $(C "$ADM"))" "duplicate name"
r=$(req POST "$BASE/api/v1/users" '{"username": "bob", "password": "short", "role": "viewer"}' $(C "$ADM"))
expect 422 "$r" "short password"; [[ $r == *'"field":"password"'* ]] || fail "422 field: $r"
r=$(req POST "$BASE/api/v1/users" '{"username": "bob", "password": "long-enough", "role": "root"}' $(C "$ADM"))
expect 422 "$r" "bad role"; [[ $r == *'"field":"role"'* ]] || fail "422 field: $r"
expect 400 "$(req POST "$BASE/api/v1/users" '{"username": ' $(C "$ADM"))" "malformed JSON"
r=$(req GET "$BASE/api/v1/users" "" $(C "$ADM"))
expect 200 "$r" "list users"
[[ $r == *'"alice"'* && $r == *'"admin"'* && $r != *password* && $r != *pbkdf2* ]] || fail "list: $r"
expect 200 "$(req GET "$BASE/api/v1/users/$AID" "" $(C "$ADM"))" "get alice"
expect 404 "$(req GET "$BASE/api/v1/users/00000000-0000-0000-0000-000000000000" "" $(C "$ADM"))" "get unknown"
ok "users: 201, 409 on a duplicate name (any case), 422 naming password/role, 400, list and get without any password"

# Roles: sessions and tokens of each role against read / operate / admin / any-role routes.
r=$(req POST "$BASE/api/v1/auth/login" '{"username": "alice", "password": "alice-pass-1"}')
expect 200 "$r" "alice login"
ALICE=$(cookie_of)
r=$(req GET "$BASE/api/v1/auth/me" "" $(C "$ALICE")); expect 200 "$r" "alice me"
[[ $(jget "$r" '["role"]') == operator ]] || fail "alice me: $r"
expect 403 "$(req GET "$BASE/api/v1/users" "" $(C "$ALICE"))" "operator lists users"
expect 403 "$(req POST "$BASE/api/v1/tokens" '{"name": "x", "role": "admin"}' $(C "$ALICE"))" "operator makes a token"
declare -A TOK
for role in viewer operator admin ingest; do
    r=$(req POST "$BASE/api/v1/tokens" "{\"name\": \"t-$role\", \"role\": \"$role\"}" $(C "$ADM"))
    expect 201 "$r" "token $role by the admin session"
    TOK[$role]=$(jget "$r" '["token"]')
done
for role in viewer operator admin ingest; do
    r=$(req GET "$BASE/api/v1/auth/me" "" -H "Authorization: Bearer ${TOK[$role]}")
    expect 200 "$r" "$role token me"; [[ $(jget "$r" '["role"]') == "$role" ]] || fail "$role me: $r"
    want=403; [[ $role == admin ]] && want=200
    expect $want "$(req GET "$BASE/api/v1/users" "" -H "Authorization: Bearer ${TOK[$role]}")" "$role token lists users"
done
expect 401 "$(req GET "$BASE/api/v1/users" "" -H "Authorization: Bearer opsc_nope")" "bad token"
expect 401 "$(req GET "$BASE/api/v1/users" "" -H "Authorization: Bearer opsc_nope" $(C "$ADM"))" "bad bearer is not retried as the cookie"
expect 401 "$(req GET "$BASE/api/v1/users" "" $(C "opsc_forged"))" "forged cookie"
ok "roles: each token role and session reaches its own routes (me: 200), admin-only routes 403 below admin, 401 for bad credentials"

# Wrong passwords: 401, then 429 with Retry-After per user name, then allowed again after the window.
for i in 1 2 3; do
    expect 401 "$(req POST "$BASE/api/v1/auth/login" '{"username": "alice", "password": "wrong"}')" "wrong password $i"
done
r=$(req POST "$BASE/api/v1/auth/login" '{"username": "alice", "password": "alice-pass-1"}')
expect 429 "$r" "right password while limited"
grep -qi '^retry-after: [1-9]' "$TMP/hdr" || fail "429 without Retry-After: $(cat "$TMP/hdr")"
expect 401 "$(req POST "$BASE/api/v1/auth/login" '{"username": "nobody", "password": "whatever"}')" "unknown user"
sleep 5
expect 200 "$(req POST "$BASE/api/v1/auth/login" '{"username": "alice", "password": "alice-pass-1"}')" "after the window"
# Per address: 12 failures over different names (4 x 3) limit this client for every name.
for i in $(seq 1 12); do
    expect 401 "$(req POST "$BASE/api/v1/auth/login" "{\"username\": \"ghost$i\", \"password\": \"x\"}")" "ghost $i"
done
expect 429 "$(req POST "$BASE/api/v1/auth/login" '{"username": "alice", "password": "alice-pass-1"}')" "address limited"
sleep 5
ok "failed logins: 401, then 429 with Retry-After per name and per address; allowed again after auth.login_lockout"

# Password change and disabling end sessions at once; logout ends its own.
r=$(req POST "$BASE/api/v1/auth/login" '{"username": "alice", "password": "alice-pass-1"}'); expect 200 "$r" "alice again"
ALICE=$(cookie_of)
expect 200 "$(req PATCH "$BASE/api/v1/users/$AID" '{"password": "alice-pass-2"}' $(C "$ADM"))" "set alice's password"
expect 401 "$(req GET "$BASE/api/v1/auth/me" "" $(C "$ALICE"))" "session after password change"
expect 401 "$(req POST "$BASE/api/v1/auth/login" '{"username": "alice", "password": "alice-pass-1"}')" "old password"
r=$(req POST "$BASE/api/v1/auth/login" '{"username": "alice", "password": "alice-pass-2"}'); expect 200 "$r" "new password"
ALICE=$(cookie_of)
r=$(req PATCH "$BASE/api/v1/users/$AID" '{"is_active": false, "role": "viewer"}' $(C "$ADM"))
expect 200 "$r" "disable alice"; [[ $(jget "$r" '["role"]') == viewer && $(jget "$r" '["is_active"]') == False ]] || fail "patch: $r"
expect 401 "$(req GET "$BASE/api/v1/auth/me" "" $(C "$ALICE"))" "disabled user's session"
expect 401 "$(req POST "$BASE/api/v1/auth/login" '{"username": "alice", "password": "alice-pass-2"}')" "disabled login"
expect 204 "$(req POST "$BASE/api/v1/auth/logout" "" $(C "$TLSC"))" "logout"
grep -qi '^set-cookie: opsc_session=;.*Max-Age=0' "$TMP/hdr" || fail "logout does not clear the cookie: $(cat "$TMP/hdr")"
expect 401 "$(req GET "$BASE/api/v1/auth/me" "" $(C "$TLSC"))" "after logout"
[[ $(q "SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL") -ge 3 ]] || fail "revoked_at not set"
ok "password change and disabling end the user's sessions at once; logout clears the cookie and revokes the session"

# A change made elsewhere arrives by NOTIFY: a session revoked by SQL stops working.
r=$(req POST "$BASE/api/v1/auth/login" "{\"username\": \"admin\", \"password\": \"$PW\"}"); expect 200 "$r" "admin again"
SQLC=$(cookie_of)
expect 200 "$(req GET "$BASE/api/v1/auth/me" "" $(C "$SQLC"))" "before revoking by SQL"
q "UPDATE sessions SET revoked_at = now() WHERE token_hash = '$(printf '%s' "$SQLC" | sha256sum | cut -d' ' -f1)'" >/dev/null
deadline=$((SECONDS + 10)) got=""
while ((SECONDS < deadline)); do
    got=$(req GET "$BASE/api/v1/auth/me" "" $(C "$SQLC")); [[ ${got%% *} == 401 ]] && break; sleep 0.2
done
expect 401 "$got" "session revoked in the database by someone else"
# A user created by SQL elsewhere can log in here (the users set follows NOTIFY too).
q "WITH u AS (INSERT INTO users (username, password_hash) SELECT 'carol', password_hash FROM users WHERE username = 'admin' RETURNING id) INSERT INTO user_roles (user_id, role_id) SELECT u.id, r.id FROM u, roles r WHERE r.name = 'viewer'" >/dev/null
deadline=$((SECONDS + 10)) got=""
while ((SECONDS < deadline)); do
    got=$(req POST "$BASE/api/v1/auth/login" "{\"username\": \"carol\", \"password\": \"$PW\"}"); [[ ${got%% *} == 200 ]] && break; sleep 0.3
done
expect 200 "$got" "user created by SQL logs in"
ok "sessions and users changed in the database by others reach the in-memory sets (NOTIFY)"

expect 204 "$(req DELETE "$BASE/api/v1/users/$AID" "" $(C "$ADM"))" "delete alice"
expect 404 "$(req DELETE "$BASE/api/v1/users/$AID" "" $(C "$ADM"))" "delete twice"

# Audit: logins (success and failure) and mutating requests by session users.
wait_q "SELECT count(*) FROM audit_log WHERE action = 'DELETE /api/v1/users/$AID' AND actor = 'admin' AND actor_type = 'user' AND result = 'success'" 1 10 ||
    fail "no audit row for the delete: $(q "SELECT actor, actor_type, action, result FROM audit_log ORDER BY id DESC LIMIT 5")"
[[ $(q "SELECT count(*) FROM audit_log WHERE action = 'POST /api/v1/auth/login' AND actor = 'admin' AND actor_type = 'user' AND result = 'success' AND ip_address = '127.0.0.1' AND details->>'status' = '200'") -ge 3 ]] ||
    fail "login audit rows: $(q "SELECT actor, action, result, details FROM audit_log WHERE action LIKE '%login'")"
[[ $(q "SELECT count(*) FROM audit_log WHERE action = 'POST /api/v1/auth/login' AND actor = 'alice' AND result = 'denied' AND details->>'status' = '401'") -ge 3 ]] ||
    fail "failed login audit rows"
[[ $(q "SELECT count(*) FROM audit_log WHERE action = 'POST /api/v1/auth/login' AND details->>'status' = '429'") -ge 2 ]] ||
    fail "429 login audit rows"
[[ $(q "SELECT count(*) FROM audit_log WHERE action = 'POST /api/v1/auth/logout' AND actor = 'admin' AND result = 'success'") == 1 ]] ||
    fail "logout audit row"
[[ $(q "SELECT count(*) FROM audit_log WHERE action = 'PATCH /api/v1/users/$AID' AND resource_type = 'users' AND resource_id = '$AID' AND actor = 'admin'") == 2 ]] ||
    fail "patch audit rows"
[[ $(q "SELECT count(*) FROM audit_log WHERE action = 'GET /api/v1/users' OR action LIKE 'GET%'") == 0 ]] || fail "reads audited"
ok "audit_log: logins (success, failure, 429), logout, user changes, with the session user as actor"

# Restart: no second admin, nothing printed again; the stored password still works.
stop_server
start_server
sleep 1
[[ $(grep -c "password: " "$TMP/server.log") == 1 ]] || fail "password printed again: $(grep "password: " "$TMP/server.log")"
[[ $(q "SELECT count(*) FROM users WHERE username = 'admin'") == 1 ]] || fail "second admin"
expect 200 "$(req POST "$BASE/api/v1/auth/login" "{\"username\": \"admin\", \"password\": \"$PW\"}")" "admin after restart"
ADM=$(cookie_of)
expect 200 "$(req GET "$BASE/api/v1/auth/me" "" $(C "$ADM"))" "session after restart"
stop_server
ok "restart: no new admin, no password printed again; stored users and sessions keep working"
