#!/usr/bin/env bash
# Alert reads with curl against the real server and a throwaway PostgreSQL:
# alerts made by real traps (snmptrap) and by plain SQL, listed with every
# filter, sorted, paged, counted; single alerts and their history; 422 naming
# the bad parameter, 404, 401/403, and SQL metacharacters kept as data.
source "$(dirname "$0")/lib.sh"
command -v snmptrap >/dev/null || fail "snmptrap not installed (apt-get install snmp)"
export OPSC_ADMIN_TOKEN="bootstrap-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ext_server_config
start_server
TOK=$OPSC_ADMIN_TOKEN

# get PATH_AND_QUERY [TOKEN]: prints "STATUS BODY".
get() {
    local code
    code=$(curl -s -o "$TMP/body" -w '%{http_code}' -H "Authorization: Bearer ${2-$TOK}" "$BASE$1")
    echo "$code $(cat "$TMP/body")"
}
expect() { [[ ${2%% *} == "$1" ]] || fail "$3: expected $1, got: $2"; }
# jq-like: py 'EXPR over d' <<< "STATUS BODY"
py() { python3 -c "import json,sys; d=json.loads(sys.stdin.read().split(' ',1)[1]); print(($1))"; }

# Real traps: a linkDown from 127.0.0.1 (a registered device at site hq), then its linkUp.
q "INSERT INTO devices (ip_address, name, site) VALUES ('127.0.0.1', 'core-rtr-1', 'hq')" >/dev/null
sleep 1 # the device reaches the pipeline by NOTIFY (names the alert)
IFX=1.3.6.1.2.1.2.2.1
snmptrap -Ln -v 2c -c public "127.0.0.1:$TRAP_PORT" '' 1.3.6.1.6.3.1.1.5.3 $IFX.1.7 i 7 $IFX.7.7 i 1 $IFX.8.7 i 2
wait_q "SELECT count(*) FROM alerts WHERE alert_type = 'link_down'" 1 15 || fail "the trap made no alert"
TRAP_ID=$(q "SELECT id FROM alerts WHERE alert_type = 'link_down'")

# SQL-made alerts with known values (the seed's columns), one with SQL metacharacters in its title.
q "INSERT INTO alerts (source_system, source_alert_id, device_ip, device_name, severity, category,
     alert_type, priority, title, message, status, occurred_at, tags, fingerprint)
   SELECT 'sqlgen', 'g' || i, '10.0.0.' || (i % 5), 'dev-' || (i % 5),
     (ARRAY['critical','major','minor','warning','info'])[1 + i % 5],
     (ARRAY['power','video'])[1 + i % 2], 'gen_type', 'P' || (1 + i % 3),
     'Generated ' || i, 'msg ' || i, (ARRAY['active','resolved'])[1 + i % 2],
     '2026-01-01T00:00:00Z'::timestamptz + i * interval '1 minute',
     ARRAY['t' || (i % 3)], 'fp-' || i
   FROM generate_series(1, 30) i" >/dev/null
q "INSERT INTO alerts (source_system, source_alert_id, device_ip, severity, category, alert_type, title, occurred_at, fingerprint)
   VALUES ('sqlgen', 'evil', '10.9.9.9', 'info', 'unknown', 'evil', 'it''s 100% _odd_ ''; DROP TABLE alerts; --', '2025-06-01T00:00:00Z', 'fp-evil')" >/dev/null

expect 401 "$(get /api/v1/alerts "")" "no token"
r=$(get /api/v1/alerts)
expect 200 "$r" "list"
[[ $(py 'd["total"], d["limit"], d["offset"], len(d["items"])' <<<"$r") == "(32, 100, 0, 32)" ]] || fail "list shape: $(py 'd["total"], d["limit"], d["offset"], len(d["items"])' <<<"$r")"
# Default sort -occurred_at: the trap (now) first, the 2025 one last.
[[ $(py 'd["items"][0]["id"] == "'"$TRAP_ID"'" and d["items"][-1]["source_alert_id"] == "evil"' <<<"$r") == True ]] || fail "default sort"
ok "GET /alerts: items, total, limit, offset; default sort -occurred_at; 401 without a token"

r=$(get "/api/v1/alerts/$TRAP_ID")
expect 200 "$r" "one alert"
[[ $(py 'd["alert_type"], d["device_name"], d["status"], d["occurrence_count"], d["is_clear"], type(d["tags"]).__name__, type(d["raw_data"]).__name__' <<<"$r") == \
    "('link_down', 'core-rtr-1', 'active', 1, False, 'list', 'dict')" ]] || fail "alert JSON: ${r:0:400}"
py 'd["occurred_at"]' <<<"$r" | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$' || fail "timestamp not RFC 3339 UTC: $r"
for col in id source_system source_alert_id device_ip device_name severity category alert_type impact urgency priority \
    title message status is_clear occurred_at received_at acknowledged_at acknowledged_by resolved_at resolved_by \
    correlated_to_id correlation_rule tags custom_fields raw_data fingerprint occurrence_count last_occurrence_at created_at updated_at; do
    [[ $(py "'$col' in d" <<<"$r") == True ]] || fail "alert JSON lacks $col"
done
ok "GET /alerts/{id}: the trap's alert with every seed column, RFC 3339 UTC timestamps, typed values"

# Filters, each a comma-separated list.
cnt() { local r; r=$(get "/api/v1/alerts?$1"); expect 200 "$r" "$1"; py 'd["total"]' <<<"$r"; }
[[ $(cnt status=resolved) == 15 ]] || fail "status=resolved"
[[ $(cnt status=active,acknowledged) == 17 ]] || fail "status=active,acknowledged"
[[ $(cnt severity=critical,major) == 13 ]] || fail "severity=critical,major: $(cnt severity=critical,major)"
[[ $(cnt category=power) == 15 ]] || fail "category=power"
[[ $(cnt priority=P1) == 10 ]] || fail "priority=P1"
[[ $(cnt device_ip=10.0.0.1,10.0.0.2) == 12 ]] || fail "device_ip list"
[[ $(cnt device_name=core-rtr-1) == 1 ]] || fail "device_name"
[[ $(cnt site=hq) == 1 ]] || fail "site (devices.site)"
[[ $(cnt site=nowhere) == 0 ]] || fail "site nowhere"
[[ $(cnt source_system=sqlgen) == 31 ]] || fail "source_system"
[[ $(cnt alert_type=link_down,evil) == 2 ]] || fail "alert_type list"
[[ $(cnt tag=t0,t1) == 20 ]] || fail "tag list"
[[ $(cnt 'q=GENERATED%201') == 11 ]] || fail "q (1, 10-19): $(cnt 'q=GENERATED%201')"
[[ $(cnt 'q=msg%2030,interface') == 2 ]] || fail "q list over message and title"
[[ $(cnt 'q=100%25%20_odd_') == 1 ]] || fail "q with % and _ taken literally"
[[ $(cnt 'q=%27%3B%20DROP%20TABLE%20alerts%3B%20--') == 1 ]] || fail "q with SQL in it"
[[ $(cnt 'q=x%25') == 0 ]] || fail "a % matches anything"
[[ $(cnt 'since=2026-01-01T00:10:00Z&until=2026-01-01T00:20:00Z') == 10 ]] || fail "since/until"
[[ $(cnt 'since=2026-01-01T01:10:00%2B01:00&until=2026-01-01T00:20:00Z&severity=critical') == 2 ]] || fail "offset timestamps with other filters"
[[ $(cnt 'status=active&category=power&tag=t1') == 5 ]] || fail "filters combine with AND: $(cnt 'status=active&category=power&tag=t1')"
[[ $(q "SELECT count(*) FROM alerts") == 32 ]] || fail "the table changed"
ok "filters status, severity, category, priority, device_ip, device_name, site, source_system, alert_type, tag, q, since, until (lists, combined, metacharacters as data)"

# Sort and paging.
r=$(get "/api/v1/alerts?source_system=sqlgen&alert_type=gen_type&sort=occurred_at&limit=7&offset=7")
[[ $(py '[i["source_alert_id"] for i in d["items"]], d["total"], d["limit"], d["offset"]' <<<"$r") == \
    "(['g8', 'g9', 'g10', 'g11', 'g12', 'g13', 'g14'], 30, 7, 7)" ]] || fail "paging ascending: ${r:0:300}"
r=$(get "/api/v1/alerts?alert_type=gen_type&sort=-severity&limit=1000")
[[ $(py 'sorted([i["severity"] for i in d["items"]], reverse=True) == [i["severity"] for i in d["items"]]' <<<"$r") == True ]] || fail "sort -severity"
r=$(get "/api/v1/alerts?alert_type=gen_type&offset=29")
[[ $(py 'len(d["items"]), d["total"]' <<<"$r") == "(1, 30)" ]] || fail "last page"
r=$(get "/api/v1/alerts?alert_type=gen_type&offset=100")
[[ $(py 'len(d["items"]), d["total"]' <<<"$r") == "(0, 30)" ]] || fail "past the end keeps the total"
ok "sort (ascending, '-' descending), limit and offset pages, total past the end"

# 422 naming the parameter.
bad() { local r; r=$(get "/api/v1/alerts$1"); expect 422 "$r" "$1"; [[ $(py 'd["error"]["field"]' <<<"$r") == "$2" ]] || fail "$1: field: $r"; }
bad '?status=open' status
bad '?severity=critical,bogus' severity
bad '?category=' category
bad '?priority=P9' priority
bad '?since=yesterday' since
bad '?until=2026-02-30T00:00:00Z' until
bad '?sort=title' sort
bad '?sort=-password' sort
bad '?limit=0' limit
bad '?limit=1001' limit
bad '?limit=ten' limit
bad '?offset=-1' offset
bad '?colour=red' colour
bad '?q=%ff%fe' q
bad '?device_name=%zz' device_name
r=$(get "/api/v1/alerts/stats?status=nope"); expect 422 "$r" "stats filter"
ok "422 naming the parameter: bad values, bad timestamps, sort, limit, offset, unknown names, bad encoding"

# Stats.
r=$(get /api/v1/alerts/stats)
expect 200 "$r" "stats"
[[ $(py 'd["total"], d["by_status"], d["by_category"]["power"], d["by_severity"]["critical"], d["by_priority"]["P1"], d["by_priority"]["none"]' <<<"$r") == \
    "(32, {'active': 17, 'resolved': 15}, 15, 6, 10, 1)" ]] || fail "stats: $r"
r=$(get "/api/v1/alerts/stats?source_system=sqlgen&status=active")
[[ $(py 'd["total"], d["by_status"]' <<<"$r") == "(16, {'active': 16})" ]] || fail "stats with filters: $r"
ok "GET /alerts/stats: counts by status, severity, category, priority, with filters"

# History; 404s.
q "INSERT INTO alert_history (alert_id, action, old_status, new_status, user_name, notes, changes)
   VALUES ('$TRAP_ID', 'acknowledged', 'active', 'acknowledged', 'alice', 'looking', '{\"status\": \"acknowledged\"}')" >/dev/null
r=$(get "/api/v1/alerts/$TRAP_ID/history")
expect 200 "$r" "history"
[[ $(py '[(h["action"], h["user_name"]) for h in d["items"]][-1], d["items"][-1]["changes"]' <<<"$r") == \
    "(('acknowledged', 'alice'), {'status': 'acknowledged'})" ]] || fail "history: $r"
expect 404 "$(get /api/v1/alerts/00000000-0000-0000-0000-000000000000)" "unknown id"
expect 404 "$(get /api/v1/alerts/00000000-0000-0000-0000-000000000000/history)" "unknown id history"
expect 404 "$(get /api/v1/alerts/not-a-uuid)" "bad id"
expect 404 "$(get "/api/v1/alerts/$TRAP_ID/nothing")" "bad sub-resource"
ok "GET /alerts/{id}/history (rows, changes as JSON); 404 for unknown and malformed ids"

# A viewer token reads; an ingest token may not.
mk() { curl -s -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' --data "{\"name\": \"$1\", \"role\": \"$1\"}" "$BASE/api/v1/tokens" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'; }
VIEWER=$(mk viewer); INGEST=$(mk ingest)
expect 200 "$(get /api/v1/alerts/stats "$VIEWER")" "viewer reads"
expect 403 "$(get /api/v1/alerts "$INGEST")" "ingest reads"
expect 403 "$(get "/api/v1/alerts/$TRAP_ID" "$INGEST")" "ingest reads one"
ok "roles: viewer reads, ingest gets 403"

stop_server
ok "clean shutdown"
