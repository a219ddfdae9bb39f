#!/usr/bin/env bash
# Role checks for every route: each method and path that docs/openapi.json
# lists with x-roles is called without credentials (401), with a token of
# each role it does not admit (403), and with each role it admits (neither
# 401 nor 403: the request reaches its handler, which answers 404/422/...
# for the harmless made-up ids and empty bodies used here). test_openapi
# checks that the document lists every route the server has; a documented
# method the server does not serve shows here as 405.
source "$(dirname "$0")/lib.sh"
export OPSC_ADMIN_TOKEN="bootstrap-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ext_server_config
start_server
declare -A TOK
for role in viewer operator admin ingest; do TOK[$role]=$(new_token "role-$role" "$role"); done
TOKENS_JSON=$(printf '{"viewer": "%s", "operator": "%s", "admin": "%s", "ingest": "%s"}' \
    "${TOK[viewer]}" "${TOK[operator]}" "${TOK[admin]}" "${TOK[ingest]}")

BASE="$BASE" TOKENS="$TOKENS_JSON" python3 - "$TEST_OPSC_SOURCE_DIR/docs/openapi.json" <<'PY' || fail "role checks (above)"
import http.client, json, os, sys, urllib.parse

doc = json.load(open(sys.argv[1]))
tokens = json.loads(os.environ["TOKENS"])
base = urllib.parse.urlparse(os.environ["BASE"])
fake = {"id": "00000000-0000-4000-8000-000000000000", "connector": "no-such-connector"}
bad, checked = [], 0

def call(method, path, token):
    conn = http.client.HTTPConnection(base.hostname, base.port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    body = "{}" if method in ("POST", "PUT", "PATCH") else None
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.status

for path, item in doc["paths"].items():
    for method, op in item.items():
        if method == "parameters" or "x-roles" not in op or op["x-roles"] == ["public"]:
            continue
        url = path
        for k, v in fake.items():
            url = url.replace("{" + k + "}", v)
        m = method.upper()
        s = call(m, url, None)
        checked += 1
        if s != 401:
            bad.append(f"{m} {url} without credentials: {s}, expected 401")
        for role, tok in tokens.items():
            s = call(m, url, tok)
            checked += 1
            if role in op["x-roles"] and s in (401, 403, 405):
                bad.append(f"{m} {url} as {role}: {s}, but {role} is admitted (405: not served)")
            if role not in op["x-roles"] and s != 403:
                bad.append(f"{m} {url} as {role}: {s}, expected 403")
for b in bad:
    print("  " + b)
print(f"{checked} calls, {len(bad)} wrong")
sys.exit(1 if bad else 0)
PY
ok "every route of docs/openapi.json: 401 without credentials, 403 for each role it does not admit, admitted roles reach the handler"
curl -sf "$BASE/health" >/dev/null || fail "server unhealthy after the role sweep"
stop_server
