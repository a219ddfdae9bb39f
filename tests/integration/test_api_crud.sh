#!/usr/bin/env bash
# The configuration API (issue 4 item 4) against the real server and a
# throwaway PostgreSQL, with curl: for every resource create, read, list with
# paging and filters, replace, patch, delete; 422 naming the field (and the
# item of a bulk request), 404, 409, 400; roles with real viewer and operator
# tokens; secrets never answered; and the pipeline effects: a device created
# through the API names the alerts of its traps, a dependency created through
# it suppresses, a mapping created through it classifies.
source "$(dirname "$0")/lib.sh"
command -v snmptrap >/dev/null || fail "snmptrap not installed (apt-get install snmp)"
export OPSC_ADMIN_TOKEN="bootstrap-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ext_server_config
start_server
A=$OPSC_ADMIN_TOKEN
V1=/api/v1

# api METHOD PATH TOKEN [BODY]: sets CODE and BODY.
api() {
    local args=(-s -o "$TMP/body" -w '%{http_code}' -X "$1" "$BASE$2")
    [[ -n $3 ]] && args+=(-H "Authorization: Bearer $3")
    [[ -n ${4:-} ]] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
    CODE=$(curl "${args[@]}")
    BODY=$(cat "$TMP/body")
}
# expect STATUS [FIELD]: the last answer had this status (and this error field).
expect() {
    [[ $CODE == "$1" ]] || fail "${WHAT:-}: expected $1, got $CODE: $BODY"
    if [[ -n ${2:-} ]]; then
        local f
        f=$(jget "$BODY" '["error"]["field"]')
        [[ $f == "$2" || $f == "$2["* ]] || fail "${WHAT:-}: expected field $2: $BODY"
    fi
}
jget() { python3 -c 'import json,sys; v=eval("json.load(sys.stdin)"+sys.argv[1]); print(v if not isinstance(v,(dict,list,bool)) and v is not None else json.dumps(v))' "$2" <<<"$1"; }

# ---- devices ---------------------------------------------------------------------------
WHAT="create device"; api POST $V1/devices "$A" '{"ip_address": "10.20.0.1", "name": "core-sw-1", "site": "hq", "tags": ["core", "sw"], "custom_fields": {"rack": 4}}'
expect 201
DEV=$(jget "$BODY" '["id"]')
[[ $(jget "$BODY" '["status"]') == active ]] || fail "default status: $BODY"
[[ $(jget "$BODY" '["tags"]') == '["core", "sw"]' ]] || fail "tags: $BODY"
[[ $(jget "$BODY" '["created_at"]') =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] || fail "created_at: $BODY"
[[ $(q "SELECT name || ' ' || site || ' ' || (custom_fields->>'rack') FROM devices WHERE id = '$DEV'") == "core-sw-1 hq 4" ]] || fail "row"
WHAT="get device"; api GET $V1/devices/$DEV "$A"; expect 200
[[ $(jget "$BODY" '["ip_address"]') == 10.20.0.1 ]] || fail "get: $BODY"
WHAT="duplicate ip"; api POST $V1/devices "$A" '{"ip_address": "10.20.0.1", "name": "again"}'; expect 409 ip_address
WHAT="bad ip"; api POST $V1/devices "$A" '{"ip_address": "10.20.0.300", "name": "x"}'; expect 422 ip_address
WHAT="no name"; api POST $V1/devices "$A" '{"ip_address": "10.20.0.9"}'; expect 422 name
WHAT="bad type"; api POST $V1/devices "$A" '{"ip_address": "10.20.0.9", "name": "x", "netbox_id": "7"}'; expect 422 netbox_id
WHAT="bad tag"; api POST $V1/devices "$A" '{"ip_address": "10.20.0.9", "name": "x", "tags": ["a", 3]}'; expect 422 'tags[1]'
WHAT="unknown field"; api POST $V1/devices "$A" '{"ip_address": "10.20.0.9", "name": "x", "colour": "red"}'; expect 422 colour
WHAT="too long"; api POST $V1/devices "$A" "{\"ip_address\": \"10.20.0.9\", \"name\": \"$(printf 'n%.0s' $(seq 1 256))\"}"; expect 422 name
WHAT="malformed"; api POST $V1/devices "$A" '{"ip_address": '; expect 400
WHAT="not an object"; api POST $V1/devices "$A" '[1]'; expect 422
WHAT="SQL in a value"; api POST $V1/devices "$A" "{\"ip_address\": \"10.20.0.8\", \"name\": \"x'); DROP TABLE devices; --\"}"; expect 201
[[ $(q "SELECT name FROM devices WHERE ip_address = '10.20.0.8'") == "x'); DROP TABLE devices; --" ]] || fail "stored name"
[[ $(q "SELECT count(*) FROM devices") == 2 ]] || fail "a refused request wrote a row"
ok "devices: create (201, defaults, RFC 3339), get, 409 on ip_address, 422 naming ip_address/name/netbox_id/tags[1]/unknown field/length, 400 malformed, SQL text stored as text"

WHAT="put"; api PUT $V1/devices/$DEV "$A" '{"ip_address": "10.20.0.1", "name": "core-sw-1b", "status": "planned"}'; expect 200
[[ $(jget "$BODY" '["name"]') == core-sw-1b && $(jget "$BODY" '["site"]') == null && $(jget "$BODY" '["custom_fields"]') == '{}' ]] || fail "PUT replaces the row: $BODY"
WHAT="patch"; api PATCH $V1/devices/$DEV "$A" '{"site": "dc2"}'; expect 200
[[ $(jget "$BODY" '["name"]') == core-sw-1b && $(jget "$BODY" '["site"]') == dc2 && $(jget "$BODY" '["status"]') == planned ]] || fail "PATCH keeps the rest: $BODY"
WHAT="patch null name"; api PATCH $V1/devices/$DEV "$A" '{"name": null}'; expect 422 name
WHAT="put missing"; api PUT $V1/devices/$DEV "$A" '{"name": "x"}'; expect 422 ip_address
WHAT="put GET back"; api GET $V1/devices/$DEV "$A"; api PUT $V1/devices/$DEV "$A" "$BODY"; expect 200
WHAT="404 get"; api GET $V1/devices/00000000-0000-0000-0000-000000000000 "$A"; expect 404
WHAT="404 put"; api PUT $V1/devices/00000000-0000-0000-0000-000000000000 "$A" '{"ip_address": "10.1.1.1", "name": "x"}'; expect 404
WHAT="404 bad id"; api GET $V1/devices/nope "$A"; expect 404
ok "devices: PUT replaces (absent fields back to defaults), PATCH changes only what it names, a GET answer can be PUT back, 404 for unknown and malformed ids"

# bulk: 422 lists every bad item and writes none; then an upsert of 2,000.
WHAT="bulk bad"; api POST $V1/devices/bulk "$A" '[{"ip_address": "10.30.0.1", "name": "a"}, {"ip_address": "bad", "name": "b"}, {"ip_address": "10.30.0.3"}, {"ip_address": "10.30.0.1", "name": "dup"}]'
expect 422 'items[1].ip_address'
[[ $(jget "$BODY" '["error"]["errors"]') == *'items[2].name'* && $(jget "$BODY" '["error"]["errors"]') == *'items[3].ip_address'* ]] || fail "bulk errors: $BODY"
[[ $(q "SELECT count(*) FROM devices WHERE ip_address LIKE '10.30.%'") == 0 ]] || fail "a refused bulk wrote rows"
python3 - "$TMP/bulk.json" <<'PY'
import json, sys
items = [{"ip_address": "10.40.%d.%d" % (i // 250, i % 250 + 1), "name": "bulk-%04d" % i, "site": "s%d" % (i % 3)} for i in range(2000)]
items[0] = {"ip_address": "10.20.0.1", "name": "core-sw-1c", "site": "hq"}  # an existing one: updated
json.dump(items, open(sys.argv[1], "w"))
PY
WHAT="bulk"; api POST $V1/devices/bulk "$A" "@$TMP/bulk.json"; expect 200
[[ $(jget "$BODY" '["created"]') == 1999 && $(jget "$BODY" '["updated"]') == 1 ]] || fail "bulk counts: $BODY"
[[ $(q "SELECT name FROM devices WHERE id = '$DEV'") == core-sw-1c ]] || fail "bulk did not update the existing device"
WHAT="bulk again"; api POST $V1/devices/bulk "$A" "@$TMP/bulk.json"; expect 200
[[ $(jget "$BODY" '["created"]') == 0 && $(jget "$BODY" '["updated"]') == 2000 ]] || fail "bulk again: $BODY"
ok "devices/bulk: 422 lists every bad item (items[1].ip_address, items[2].name, a duplicate) and writes none; 2,000 upserted by ip_address in one statement, again idempotent"

WHAT="list"; api GET "$V1/devices?limit=10&offset=5" "$A"; expect 200
[[ $(jget "$BODY" '["total"]') == 2001 && $(jget "$BODY" '["limit"]') == 10 && $(jget "$BODY" '["offset"]') == 5 && $(jget "$BODY" '["items"].__len__()') == 10 ]] || fail "page: ${BODY:0:300}"
[[ $(jget "$BODY" '["items"][0]["name"]') == bulk-0006 ]] || fail "order by name: ${BODY:0:300}"
api GET "$V1/devices?offset=5000" "$A"; expect 200
[[ $(jget "$BODY" '["total"]') == 2001 && $(jget "$BODY" '["items"]') == '[]' ]] || fail "beyond the end: $BODY"
api GET "$V1/devices?site=s1,s2&limit=1000" "$A"; expect 200
[[ $(jget "$BODY" '["total"]') == 1333 ]] || fail "site filter: ${BODY:0:200}"
api GET "$V1/devices?name=BULK-019&ip=10.40.0.191,10.40.0.192,10.40.0.193,10.40.1.1" "$A"; expect 200
[[ $(jget "$BODY" '["total"]') == 3 ]] || fail "name+ip filter: ${BODY:0:400}"
api GET "$V1/devices?name=%25%27%3B" "$A"; expect 200
[[ $(jget "$BODY" '["total"]') == 0 ]] || fail "metacharacters in a filter: $BODY"
api GET "$V1/devices?status=planned" "$A"; expect 200
WHAT="limit"; api GET "$V1/devices?limit=0" "$A"; expect 422 limit
api GET "$V1/devices?limit=1001" "$A"; expect 422 limit
api GET "$V1/devices?offset=-1" "$A"; expect 422 offset
ok "devices list: total/limit/offset, order, filters site (list), name (substring) + ip, metacharacters literal, 422 for limit/offset"

WHAT="delete"; api DELETE $V1/devices/$DEV "$A"; expect 204
api DELETE $V1/devices/$DEV "$A"; expect 404
api GET $V1/devices/$DEV "$A"; expect 404
ok "devices: DELETE 204, then 404"

# ---- dependencies ------------------------------------------------------------------------
WHAT="dep"; api POST $V1/dependencies "$A" '{"device_ip": "10.9.9.2", "depends_on_ip": "10.9.9.1"}'; expect 201
DEP1=$(jget "$BODY" '["id"]')
[[ $(jget "$BODY" '["created_by"]') == admin-token && $(jget "$BODY" '["dependency_type"]') == network ]] || fail "dep: $BODY"
api POST $V1/dependencies "$A" '{"device_ip": "10.9.9.3", "depends_on_ip": "10.9.9.2", "created_by": "mallory"}'; expect 201
[[ $(jget "$BODY" '["created_by"]') == admin-token ]] || fail "created_by taken from the client: $BODY"
WHAT="self"; api POST $V1/dependencies "$A" '{"device_ip": "10.9.9.1", "depends_on_ip": "10.9.9.1"}'; expect 422 depends_on_ip
WHAT="cycle"; api POST $V1/dependencies "$A" '{"device_ip": "10.9.9.1", "depends_on_ip": "10.9.9.3"}'; expect 422 depends_on_ip
[[ $BODY == *cycle* ]] || fail "cycle message: $BODY"
WHAT="cycle by patch"; api PATCH $V1/dependencies/$DEP1 "$A" '{"device_ip": "10.9.9.4", "depends_on_ip": "10.9.9.3"}'
[[ $CODE == 200 ]] || fail "patch to a non-cycle: $CODE $BODY"
api PATCH $V1/dependencies/$DEP1 "$A" '{"device_ip": "10.9.9.2", "depends_on_ip": "10.9.9.3"}'; expect 422 depends_on_ip
api PUT $V1/dependencies/$DEP1 "$A" '{"device_ip": "10.9.9.2", "depends_on_ip": "10.9.9.1"}'; expect 200
WHAT="dup dep"; api POST $V1/dependencies "$A" '{"device_ip": "10.9.9.2", "depends_on_ip": "10.9.9.1"}'; expect 409 depends_on_ip
WHAT="confidence"; api POST $V1/dependencies "$A" '{"device_ip": "10.9.9.5", "depends_on_ip": "10.9.9.1", "confidence": 1.5}'; expect 422 confidence
WHAT="dep type"; api POST $V1/dependencies "$A" '{"device_ip": "10.9.9.5", "depends_on_ip": "10.9.9.1", "dependency_type": "magic"}'; expect 422 dependency_type
# The database holds raw SQL writers to it too; two concurrent opposite edges cannot both land.
q "INSERT INTO dependencies (device_ip, depends_on_ip) VALUES ('10.9.9.1', '10.9.9.3')" 2>"$TMP/sqlerr" && fail "a cycle by SQL was accepted"
grep -q "cycle" "$TMP/sqlerr" || fail "SQL cycle error: $(cat "$TMP/sqlerr")"
for i in $(seq 1 20); do
    api POST $V1/dependencies "$A" "{\"device_ip\": \"10.7.$i.1\", \"depends_on_ip\": \"10.7.$i.2\"}" &
    p1=$!
    q "INSERT INTO dependencies (device_ip, depends_on_ip) VALUES ('10.7.$i.2', '10.7.$i.1')" >/dev/null 2>&1 &
    p2=$!
    wait "$p1" "$p2" || true # one of the two is refused
done
[[ $(q "SELECT count(*) FROM dependencies a JOIN dependencies b ON a.device_ip = b.depends_on_ip AND a.depends_on_ip = b.device_ip") == 0 ]] ||
    fail "concurrent opposite edges both landed"
[[ $(q "SELECT count(*) FROM dependencies WHERE device_ip LIKE '10.7.%'") == 20 ]] || fail "one of each pair must land"
api GET "$V1/dependencies?device_ip=10.9.9.3" "$A"; expect 200
[[ $(jget "$BODY" '["total"]') == 1 ]] || fail "dependency filter: $BODY"
ok "dependencies: create (created_by from the principal), 422 self-reference and cycle (also by PATCH and by plain SQL), 409 duplicate, 422 confidence/type, 20 races of opposite edges each land exactly one"

# ---- oid-mappings ------------------------------------------------------------------------
WHAT="map"; api POST $V1/oid-mappings "$A" '{"oid_pattern": "1.3.6.1.4.1.99999.0.1", "alert_type": "device_down", "category": "network", "default_severity": "critical", "title_template": "Device down {device_name}"}'; expect 201
MAP=$(jget "$BODY" '["id"]')
api POST $V1/oid-mappings "$A" '{"oid_pattern": "1.3.6.1.4.1.99998.*", "vendor": "acme", "alert_type": "acme_any", "category": "power", "default_severity": "minor"}'; expect 201
api POST $V1/oid-mappings "$A" '{"oid_pattern": "1.3.6.1.4.1.99999.0.1", "alert_type": "x", "category": "network", "default_severity": "major"}'; expect 409 oid_pattern
for bad in '1.3.6.*.1' '1..3' 'abc' '1.3.6.1.*.*' ''; do
    WHAT="pattern $bad"; api POST $V1/oid-mappings "$A" "{\"oid_pattern\": \"$bad\", \"alert_type\": \"x\", \"category\": \"network\", \"default_severity\": \"major\"}"; expect 422 oid_pattern
done
WHAT="severity"; api POST $V1/oid-mappings "$A" '{"oid_pattern": "1.3.6.1.4.1.5", "alert_type": "x", "category": "network", "default_severity": "huge"}'; expect 422 default_severity
WHAT="category"; api POST $V1/oid-mappings "$A" '{"oid_pattern": "1.3.6.1.4.1.5", "alert_type": "x", "category": "weather", "default_severity": "major"}'; expect 422 category
WHAT="clear oid"; api POST $V1/oid-mappings "$A" '{"oid_pattern": "1.3.6.1.4.1.5", "alert_type": "x", "category": "network", "default_severity": "major", "clear_oid_pattern": "1.x"}'; expect 422 clear_oid_pattern
api GET "$V1/oid-mappings?vendor=acme" "$A"; expect 200
[[ $(jget "$BODY" '["total"]') == 1 ]] || fail "vendor filter: $BODY"
api GET "$V1/oid-mappings?limit=3" "$A"; expect 200
[[ $(jget "$BODY" '["total"]') == 7 && $(jget "$BODY" '["items"].__len__()') == 3 ]] || fail "mappings list: ${BODY:0:200}"
ok "oid-mappings: create (plain and wildcard), 409 on (oid_pattern, vendor), 422 for five bad patterns, severity, category, clear_oid_pattern; list and filter"

# ---- maintenance windows -----------------------------------------------------------------
WHAT="mw"; api POST $V1/maintenance-windows "$A" '{"name": "sunday", "device_ip_cidr": "10.50.0.0/16", "recurrence": "weekly", "recurrence_days": [7], "recurrence_start": "02:00", "recurrence_duration": "2 hours", "time_zone": "Europe/Berlin"}'; expect 201
MW=$(jget "$BODY" '["id"]')
[[ $(jget "$BODY" '["recurrence_start"]') == 02:00:00 && $(jget "$BODY" '["recurrence_duration"]') == 02:00:00 && $(jget "$BODY" '["time_zone"]') == Europe/Berlin && $(jget "$BODY" '["created_by"]') == admin-token ]] || fail "mw: $BODY"
for t in 'device_ip_cidr "10.50.0.1/16"' 'device_ip_cidr "10.50.0.0/33"' 'device_name_glob "sw-[12"' 'time_zone "Mars/Olympus"' 'recurrence "monthly"' 'recurrence_days [0]' 'recurrence_start "25:00"' 'starts_at "tomorrow"' 'category "weather"' 'recurrence_duration "forever"'; do
    f=${t%% *} v=${t#* }
    WHAT="mw $t"; api POST $V1/maintenance-windows "$A" "{\"name\": \"bad\", \"site\": \"hq\", \"$f\": $v}"; expect 422 "$f"
done
WHAT="mw no matcher"; api POST $V1/maintenance-windows "$A" '{"name": "everything"}'; expect 422 device_ip_cidr
WHAT="mw range"; api POST $V1/maintenance-windows "$A" '{"name": "r", "site": "hq", "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}'; expect 422 ends_at
WHAT="mw recurrence"; api POST $V1/maintenance-windows "$A" '{"name": "r", "site": "hq", "recurrence": "daily"}'; expect 422 recurrence
WHAT="mw patch"; api PATCH $V1/maintenance-windows/$MW "$A" '{"enabled": false}'; expect 200
[[ $(jget "$BODY" '["enabled"]') == false ]] || fail "$BODY"
api GET "$V1/maintenance-windows?enabled=false" "$A"; expect 200
[[ $(jget "$BODY" '["total"]') == 1 ]] || fail "enabled filter: $BODY"
ok "maintenance-windows: create (weekly, Europe/Berlin), 422 for CIDR bits and prefix, glob, unknown zone, recurrence, days, start, starts_at, category, duration, no matcher, range, incomplete recurrence; patch; filter"

# ---- notification rules --------------------------------------------------------------------
WHAT="rule"; api POST $V1/notification-rules "$A" '{"name": "crit to noc", "conditions": {"severity": ["critical"]}, "channels": [{"type": "email", "recipients": ["noc@example.com"]}]}'; expect 201
RULE=$(jget "$BODY" '["id"]')
[[ $(jget "$BODY" '["priority"]') == 100 && $(jget "$BODY" '["enabled"]') == true ]] || fail "rule defaults: $BODY"
WHAT="rule channels"; api POST $V1/notification-rules "$A" '{"name": "x", "channels": {"type": "email"}}'; expect 422 channels
WHAT="rule throttle"; api POST $V1/notification-rules "$A" '{"name": "x", "throttle_minutes": -1}'; expect 422 throttle_minutes
WHAT="rule conditions null"; api PATCH $V1/notification-rules/$RULE "$A" '{"conditions": null}'; expect 422 conditions
api PATCH $V1/notification-rules/$RULE "$A" '{"priority": 5}'; expect 200
api DELETE $V1/notification-rules/$RULE "$A"; expect 204
ok "notification-rules: create with defaults, 422 channels/throttle_minutes/conditions, patch, delete"

# ---- connectors ----------------------------------------------------------------------------
WHAT="connector"; api POST $V1/connectors "$A" '{"name": "hooks", "type": "webhook", "config": {"severity_map": {"P1": "critical"}}, "secret": "s3cr3t-value"}'; expect 201
CON=$(jget "$BODY" '["id"]')
[[ $(jget "$BODY" '["secret"]') == '********' ]] || fail "secret not masked: $BODY"
[[ $BODY != *s3cr3t* ]] || fail "secret answered"
api GET $V1/connectors/$CON "$A"; [[ $BODY != *s3cr3t* && $(jget "$BODY" '["secret"]') == '********' ]] || fail "GET shows the secret: $BODY"
api GET $V1/connectors "$A"; [[ $BODY != *s3cr3t* ]] || fail "list shows the secret"
WHAT="connector put keeps"; api PUT $V1/connectors/$CON "$A" '{"name": "hooks", "type": "webhook", "enabled": true}'; expect 200
[[ $(q "SELECT secret FROM connectors WHERE id = '$CON'") == s3cr3t-value ]] || fail "PUT without secret lost it"
api GET $V1/connectors/$CON "$A"; api PUT $V1/connectors/$CON "$A" "$BODY"; expect 200
[[ $(q "SELECT secret FROM connectors WHERE id = '$CON'") == s3cr3t-value ]] || fail "PUT of the masked value overwrote it"
api PATCH $V1/connectors/$CON "$A" '{"secret": "new-one"}'; expect 200
[[ $(q "SELECT secret FROM connectors WHERE id = '$CON'") == new-one ]] || fail "secret not changed"
api POST $V1/connectors "$A" '{"name": "plain", "type": "prtg"}'; expect 201
[[ $(jget "$BODY" '["secret"]') == null ]] || fail "no secret is null: $BODY"
WHAT="dup connector"; api POST $V1/connectors "$A" '{"name": "hooks", "type": "webhook"}'; expect 409 name
WHAT="connector ro"; api PATCH $V1/connectors/$CON "$A" '{"alerts_received": 99}'; expect 200
[[ $(jget "$BODY" '["alerts_received"]') == 0 ]] || fail "read-only field written: $BODY"
ok "connectors: secret stored, answered only as ******** (create, get, list), kept by a PUT without it or with the mask, changed by PATCH; 409 name; read-only fields ignored"

# ---- roles -----------------------------------------------------------------------------------
mk_token() { api POST $V1/tokens "$A" "{\"name\": \"$1\", \"role\": \"$1\"}"; jget "$BODY" '["token"]'; }
VIEWER=$(mk_token viewer) OPERATOR=$(mk_token operator) INGEST=$(mk_token ingest)
for r in devices dependencies oid-mappings maintenance-windows notification-rules connectors; do
    WHAT="viewer reads $r"; api GET $V1/$r "$VIEWER"; expect 200
    WHAT="viewer writes $r"; api POST $V1/$r "$VIEWER" '{}'; expect 403
    WHAT="ingest reads $r"; api GET $V1/$r "$INGEST"; expect 403
    WHAT="anonymous $r"; api GET $V1/$r ""; expect 401
done
WHAT="viewer deletes"; api DELETE $V1/connectors/$CON "$VIEWER"; expect 403
WHAT="viewer bulk"; api POST $V1/devices/bulk "$VIEWER" '[]'; expect 403
WHAT="operator device"; api POST $V1/devices "$OPERATOR" '{"ip_address": "10.60.0.1", "name": "op"}'; expect 403
WHAT="operator mw"; api POST $V1/maintenance-windows "$OPERATOR" '{"name": "op", "site": "lab"}'; expect 201
[[ $(jget "$BODY" '["created_by"]') == token:operator ]] || fail "$BODY"
WHAT="operator mw delete"; api DELETE $V1/maintenance-windows/$(jget "$BODY" '["id"]') "$OPERATOR"; expect 204
ok "roles: viewer reads all and writes none (403), ingest reads none, anonymous 401, operator writes maintenance windows only"

# ---- pipeline effects --------------------------------------------------------------------
T="127.0.0.1:$TRAP_PORT"
ADDR=1.3.6.1.6.3.18.1.3.0
trap_from() { local dev=$1 oid=$2; shift 2; snmptrap -Ln -v 2c -c public "$T" '' "$oid" $ADDR a "$dev" "$@"; }
api POST $V1/devices "$A" '{"ip_address": "10.70.0.1", "name": "named-by-api", "site": "lab"}'; expect 201
sleep 1 # the reload after NOTIFY is debounced (200 ms)
wait_q "SELECT count(*) FROM devices WHERE name = 'named-by-api'" 1 5 || fail "device row"
deadline=$((SECONDS + 15)); got=""
while ((SECONDS < deadline)); do
    trap_from 10.70.0.1 1.3.6.1.4.1.99999.0.1
    got=$(q "SELECT device_name || ' ' || alert_type || ' ' || title FROM alerts WHERE device_ip = '10.70.0.1'")
    [[ $got == "named-by-api device_down Device down named-by-api" ]] && break
    sleep 0.5
done
[[ $got == "named-by-api device_down Device down named-by-api" ]] || fail "trap from an API device: '$got'"
ok "a device and a mapping created through the API reach the pipeline: the trap's alert is device_down, titled with the device's name"

# Dependency: 10.70.0.2 depends on 10.70.0.1 (which has an open device_down): its alert is suppressed.
api POST $V1/dependencies "$A" '{"device_ip": "10.70.0.2", "depends_on_ip": "10.70.0.1"}'; expect 201
DOWN=$(q "SELECT id FROM alerts WHERE device_ip = '10.70.0.1' AND alert_type = 'device_down'")
deadline=$((SECONDS + 15)); got=""
while ((SECONDS < deadline)); do
    sleep 0.5
    trap_from 10.70.0.2 1.3.6.1.6.3.1.1.5.3 1.3.6.1.2.1.2.2.1.1.3 i 3
    got=$(q "SELECT status || ' ' || correlated_to_id FROM alerts WHERE device_ip = '10.70.0.2' AND alert_type = 'link_down'")
    [[ $got == "suppressed $DOWN" ]] && break
    [[ -n $got ]] && q "DELETE FROM alerts WHERE device_ip = '10.70.0.2'" >/dev/null # taken before the reload: try again
done
[[ $got == "suppressed $DOWN" ]] || fail "dependency from the API did not suppress: '$got'"
ok "a dependency created through the API suppresses the dependent device's alert"

WHAT="openapi"; api GET /openapi.json ""; expect 200
[[ $(jget "$BODY" '["paths"]["/api/v1/devices/bulk"]["post"]["x-roles"]') == '["admin"]' ]] || fail "openapi: ${BODY:0:200}"
ok "GET /openapi.json: public, the embedded document"

stop_server
ok "stopped cleanly"
