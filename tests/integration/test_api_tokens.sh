#!/usr/bin/env bash
# API tokens against the real server and a throwaway PostgreSQL, with curl:
# created by the bootstrap admin token, shown once, stored as a hash, usable at
# once with their role's rights (403 beyond them), listed without the secret,
# revoked (401 at once, on every instance), expired, validated (422/400).
source "$(dirname "$0")/lib.sh"
export OPSC_ADMIN_TOKEN="bootstrap-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ext_server_config
start_server

# curl_j METHOD PATH TOKEN [BODY]: prints "STATUS BODY".
curl_j() {
    local args=(-s -o "$TMP/body" -w '%{http_code}' -X "$1" "$BASE$2")
    [[ -n $3 ]] && args+=(-H "Authorization: Bearer $3")
    [[ -n ${4:-} ]] && args+=(-H 'Content-Type: application/json' --data "$4")
    local code
    code=$(curl "${args[@]}")
    echo "$code $(cat "$TMP/body")"
}
expect() { # expect STATUS "STATUS BODY" WHAT
    [[ ${2%% *} == "$1" ]] || fail "$3: expected $1, got: $2"
}

expect 401 "$(curl_j GET /api/v1/tokens "")" "no credentials"
expect 401 "$(curl_j GET /api/v1/tokens "opsc_not-a-real-token")" "unknown token"
expect 200 "$(curl_j GET /api/v1/tokens "$OPSC_ADMIN_TOKEN")" "bootstrap admin lists"
ok "401 without or with a wrong token; the bootstrap admin token works"

r=$(curl_j POST /api/v1/tokens "$OPSC_ADMIN_TOKEN" '{"name": "noc-viewer", "role": "viewer"}')
expect 201 "$r" "create viewer"
VIEWER=$(echo "${r#* }" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
VID=$(echo "${r#* }" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
[[ $VIEWER =~ ^opsc_[A-Za-z0-9_-]{43}$ ]] || fail "token format: $VIEWER"
hash=$(printf '%s' "$VIEWER" | sha256sum | cut -d' ' -f1)
[[ $(q "SELECT token_hash || ' ' || role || ' ' || created_by FROM api_tokens WHERE id = '$VID'") == "$hash viewer admin-token" ]] ||
    fail "stored row: $(q "SELECT token_hash, role, created_by FROM api_tokens WHERE id = '$VID'")"
[[ $(q "SELECT count(*) FROM api_tokens WHERE token_hash = '$VIEWER' OR token_prefix = '$VIEWER'") == 0 ]] ||
    fail "the token itself is stored"
ok "created: opsc_ + 43 characters, stored only as its SHA-256, created_by the admin"

# The viewer may read (it is admin-only here: 403), an admin token may manage tokens.
expect 403 "$(curl_j GET /api/v1/tokens "$VIEWER")" "viewer lists tokens"
expect 403 "$(curl_j POST /api/v1/tokens "$VIEWER" '{"name": "x", "role": "admin"}')" "viewer creates"
r=$(curl_j POST /api/v1/tokens "$OPSC_ADMIN_TOKEN" '{"name": "second-admin", "role": "admin"}')
expect 201 "$r" "create admin token"
ADMIN2=$(echo "${r#* }" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
r=$(curl_j GET /api/v1/tokens "$ADMIN2")
expect 200 "$r" "new admin token lists"
echo "$r" | grep -q "$VIEWER" && fail "a listing shows a token"
echo "$r" | grep -q '"token_prefix": *"opsc_' || fail "listing without token_prefix: $r"
echo "$r" | grep -q '"noc-viewer"' || fail "listing misses noc-viewer: $r"
ok "roles: a viewer token gets 403 on admin routes; a new admin token works at once; listings never show a token"

# Validation: every field named.
r=$(curl_j POST /api/v1/tokens "$ADMIN2" '{"role": "viewer"}')
expect 422 "$r" "no name"; echo "$r" | grep -q '"field": *"name"' || fail "422 without field name: $r"
r=$(curl_j POST /api/v1/tokens "$ADMIN2" '{"name": "x", "role": "superuser"}')
expect 422 "$r" "bad role"; echo "$r" | grep -q '"field": *"role"' || fail "422 without field role: $r"
r=$(curl_j POST /api/v1/tokens "$ADMIN2" '{"name": "x", "role": "viewer", "expires_at": "yesterday-ish"}')
expect 422 "$r" "bad expires_at"; echo "$r" | grep -q '"field": *"expires_at"' || fail "$r"
r=$(curl_j POST /api/v1/tokens "$ADMIN2" '{"name": "x", "role": "viewer", "expires_at": "2001-01-01T00:00:00Z"}')
expect 422 "$r" "past expires_at"
expect 400 "$(curl_j POST /api/v1/tokens "$ADMIN2" '{"name": ')" "malformed JSON"
ok "422 naming name, role, expires_at (bad and past); 400 for malformed JSON"

# Expiry: a token that expires in 2 s works, then does not.
r=$(curl_j POST /api/v1/tokens "$ADMIN2" "{\"name\": \"short\", \"role\": \"admin\", \"expires_at\": \"$(date -u -d '+2 seconds' +%FT%TZ)\"}")
expect 201 "$r" "short-lived token"
SHORT=$(echo "${r#* }" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
expect 200 "$(curl_j GET /api/v1/tokens "$SHORT")" "short token before expiry"
sleep 3
expect 401 "$(curl_j GET /api/v1/tokens "$SHORT")" "short token after expiry"
ok "an expired token is refused"

# Revocation: 204, then 401 at once; again 404; a bad id 404.
expect 204 "$(curl_j DELETE "/api/v1/tokens/$VID" "$ADMIN2")" "revoke"
expect 401 "$(curl_j DELETE "/api/v1/tokens/$VID" "$VIEWER")" "revoked token used"
expect 404 "$(curl_j DELETE "/api/v1/tokens/$VID" "$ADMIN2")" "revoke twice"
expect 404 "$(curl_j DELETE /api/v1/tokens/not-a-uuid "$ADMIN2")" "bad id"
[[ -n $(q "SELECT revoked_at FROM api_tokens WHERE id = '$VID'") ]] || fail "revoked_at not set"
ok "revoked: 204, refused at once, 404 the second time"

# Another instance's change arrives by NOTIFY: revoke by SQL, the token stops working.
r=$(curl_j POST /api/v1/tokens "$ADMIN2" '{"name": "by-sql", "role": "viewer"}')
BYSQL_ID=$(echo "${r#* }" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
BYSQL=$(echo "${r#* }" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
expect 403 "$(curl_j GET /api/v1/tokens "$BYSQL")" "by-sql token is a viewer"
q "UPDATE api_tokens SET revoked_at = now() WHERE id = '$BYSQL_ID'" >/dev/null
deadline=$((SECONDS + 10)) got=""
while ((SECONDS < deadline)); do
    got=$(curl_j GET /api/v1/tokens "$BYSQL"); [[ ${got%% *} == 401 ]] && break; sleep 0.2
done
expect 401 "$got" "revoked in the database by someone else"
ok "a revocation made elsewhere (NOTIFY) is refused within moments"

# Audit: every mutating request, allowed or not, with who, what, which resource, from where.
expect 401 "$(curl_j POST /api/v1/tokens "" '{"name": "anon", "role": "admin"}')" "anonymous create"
wait_q "SELECT count(*) FROM audit_log WHERE action = 'POST /api/v1/tokens' AND actor IS NULL AND result = 'denied'" 1 10 ||
    fail "no audit row for the anonymous attempt: $(q "SELECT actor, action, result FROM audit_log")"
[[ $(q "SELECT count(*) FROM audit_log WHERE action = 'POST /api/v1/tokens' AND actor = 'admin-token' AND actor_type = 'token' AND resource_type = 'tokens' AND result = 'success' AND ip_address = '127.0.0.1' AND details->>'status' = '201'") -ge 2 ]] ||
    fail "audit rows for creates: $(q "SELECT actor, actor_type, action, resource_type, result, ip_address, details FROM audit_log")"
[[ $(q "SELECT count(*) FROM audit_log WHERE action = 'POST /api/v1/tokens' AND actor = 'token:noc-viewer' AND result = 'denied'") == 1 ]] ||
    fail "no denied audit row for the viewer"
[[ $(q "SELECT result || ' ' || actor FROM audit_log WHERE action = 'DELETE /api/v1/tokens/$VID' AND resource_id = '$VID' ORDER BY id LIMIT 1") == "success token:second-admin" ]] ||
    fail "audit row for the revoke: $(q "SELECT actor, action, resource_id, result FROM audit_log WHERE resource_id = '$VID'")"
[[ $(q "SELECT count(*) FROM audit_log WHERE action LIKE 'GET%'") == 0 ]] || fail "reads audited"
ok "audit_log: creates, revokes, denied and anonymous attempts, with actor, resource, address, result"

stop_server
ok "stopped cleanly"
