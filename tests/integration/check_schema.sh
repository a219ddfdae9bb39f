#!/usr/bin/env bash
# check_schema.sh PSQL_CONNINFO
#
# Checks that a database migrated with migrations/001_core_schema.sql matches
# seed 000 (shared/seeds/000_*.txt) column for column, and that the constraints
# that matter behave:
#   columns      information_schema.columns of the 8 core tables == tests/fixtures/schema_000.tsv,
#                with the columns later migrations add (tests/fixtures/schema_added.tsv,
#                each naming its migration) after their table's seed columns
#   indexes      every name in tests/fixtures/schema_000_indexes.txt exists (pg_indexes)
#   oid_seed     the seed's 5 generic OID mappings are present with the seed's values
#   oid_unique   a second generic (vendor NULL) row for a seeded OID is rejected
#   fingerprint  two ACTIVE alerts with one fingerprint are rejected; active + resolved allowed
#   check        an alert with an invalid severity is rejected by alerts_severity_check
#   updated_at   the BEFORE UPDATE trigger sets updated_at on every core table that has it
#
# Behavioural checks run inside a transaction that is rolled back: the script
# leaves no rows behind and is safe against a live database.
# Prints one line per check ("ok ..." / "FAIL ..."); exit 0 when all pass,
# 1 when any fails, 2 on usage or connection error. Needs only bash and psql.
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
    echo "usage: $0 PSQL_CONNINFO   (e.g. \"host=/tmp/pg user=postgres dbname=t\")" >&2
    exit 2
fi
CONNINFO=$1

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FIXTURES="$HERE/../fixtures"
COLUMNS_FIXTURE="$FIXTURES/schema_000.tsv"
ADDED_FIXTURE="$FIXTURES/schema_added.tsv"
INDEXES_FIXTURE="$FIXTURES/schema_000_indexes.txt"

# psql from PATH, else the newest /usr/lib/postgresql/*/bin/psql.
PSQL_BIN=$(command -v psql || true)
if [[ -z "$PSQL_BIN" ]]; then
    PSQL_BIN=$(ls -d /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [[ -z "$PSQL_BIN" || ! -x "$PSQL_BIN" ]]; then
    echo "check_schema: psql not found (PATH or /usr/lib/postgresql/*/bin)" >&2
    exit 2
fi

# -X: no ~/.psqlrc; -A -t: bare rows; -q: no command tags; tab-separated.
q() {
    "$PSQL_BIN" -XAtq -v ON_ERROR_STOP=1 -F $'\t' -d "$CONNINFO" "$@"
}

FAILED=0
ok()   { printf 'ok   %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; FAILED=1; }

if ! q -c 'SELECT 1' >/dev/null; then
    echo "check_schema: cannot connect with \"$CONNINFO\"" >&2
    exit 2
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/check_schema.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# Runs SQL from stdin; on failure prints psql's error indented under the FAIL.
run_sql() {
    local name=$1 msg=$2
    if q -f - >"$TMP/out" 2>"$TMP/err"; then
        ok "$name: $msg"
    else
        fail "$name: $msg"
        sed 's/^/     /' "$TMP/err"
    fi
}

CORE_TABLES="'alerts','alert_history','devices','dependencies','connectors','oid_mappings','notification_rules','notification_log'"

# --- 1. columns ---------------------------------------------------------------
q -c "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable
        FROM information_schema.columns
       WHERE table_schema = current_schema()
         AND table_name IN ($CORE_TABLES)
       ORDER BY table_name COLLATE \"C\", ordinal_position" >"$TMP/columns"
# Expected: the seed's columns in the seed's order, each table followed by the
# columns later migrations add to it (schema_added.tsv: the same five fields
# and the migration's name; comment lines start with #).
awk -F '\t' -v OFS='\t' '
    FNR == NR { if ($0 !~ /^#/ && NF >= 5) { add[$1] = add[$1] $1 OFS $2 OFS $3 OFS $4 OFS $5 "\n" } next }
    prev != "" && $1 != prev { printf "%s", add[prev]; delete add[prev] }
    { print; prev = $1 }
    END { printf "%s", add[prev]; delete add[prev]; for (t in add) printf "%s", add[t] }
' "$ADDED_FIXTURE" "$COLUMNS_FIXTURE" >"$TMP/expected"
if diff -u --label expected:schema_000.tsv+schema_added.tsv --label actual:information_schema.columns \
        "$TMP/expected" "$TMP/columns" >"$TMP/columns.diff"; then
    ok "columns: $(wc -l <"$TMP/columns") columns in 8 tables match the seed (+ $(grep -vc '^#' "$ADDED_FIXTURE") added)"
else
    fail "columns: information_schema.columns differs from $COLUMNS_FIXTURE + $ADDED_FIXTURE"
    cat "$TMP/columns.diff"
fi

# --- 2. indexes ---------------------------------------------------------------
q -c "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()" >"$TMP/indexes"
missing=()
while IFS= read -r idx; do
    [[ -z "$idx" ]] && continue
    grep -qxF -- "$idx" "$TMP/indexes" || missing+=("$idx")
done <"$INDEXES_FIXTURE"
if [[ ${#missing[@]} -eq 0 ]]; then
    ok "indexes: all $(grep -c . "$INDEXES_FIXTURE") seed indexes exist"
else
    fail "indexes: missing ${missing[*]}"
fi

# --- 3. seeded oid_mappings (as of the newest migration: 002 makes link_up a clear event) ---
cat >"$TMP/oid_expected" <<'EOF'
1.3.6.1.6.3.1.1.5.1		cold_start	network	warning	Device Cold Start - {device_name}	Device has rebooted (cold start)	f	1
1.3.6.1.6.3.1.1.5.2		warm_start	network	info	Device Warm Start - {device_name}	Device has rebooted (warm start)	f	1
1.3.6.1.6.3.1.1.5.3		link_down	network	major	Interface Down - {device_name}	Network interface has gone down	f	1
1.3.6.1.6.3.1.1.5.4		link_up	network	clear	Interface Up - {device_name}	Network interface has come up	t	1
1.3.6.1.6.3.1.1.5.5		auth_failure	security	warning	Authentication Failure - {device_name}	SNMP authentication failure	f	1
EOF
q -c "SELECT oid_pattern, vendor, alert_type, category, default_severity, title_template,
             description, is_clear_event, count(*) OVER (PARTITION BY oid_pattern)
        FROM oid_mappings
       WHERE vendor IS NULL
         AND oid_pattern IN ('1.3.6.1.6.3.1.1.5.1','1.3.6.1.6.3.1.1.5.2','1.3.6.1.6.3.1.1.5.3',
                             '1.3.6.1.6.3.1.1.5.4','1.3.6.1.6.3.1.1.5.5')
       ORDER BY oid_pattern COLLATE \"C\"" >"$TMP/oid_actual"
if diff -u --label expected --label actual "$TMP/oid_expected" "$TMP/oid_actual" >"$TMP/oid.diff"; then
    ok "oid_seed: 5 seeded generic OID mappings present, once each"
else
    fail "oid_seed: seeded oid_mappings rows differ"
    cat "$TMP/oid.diff"
fi

# --- 4. oid_mappings_unique treats NULL vendor as one value ----------------------
run_sql oid_unique "duplicate generic mapping rejected by oid_mappings_unique" <<'EOF'
BEGIN;
DO $$
DECLARE c text;
BEGIN
    BEGIN
        INSERT INTO oid_mappings (oid_pattern, vendor, alert_type, category, default_severity)
        VALUES ('1.3.6.1.6.3.1.1.5.3', NULL, 'dup_link_down', 'network', 'major');
        RAISE EXCEPTION 'a second generic mapping for 1.3.6.1.6.3.1.1.5.3 was accepted';
    EXCEPTION WHEN unique_violation THEN
        GET STACKED DIAGNOSTICS c = CONSTRAINT_NAME;
        IF c IS DISTINCT FROM 'oid_mappings_unique' THEN
            RAISE EXCEPTION 'rejected by % instead of oid_mappings_unique', c;
        END IF;
    END;
END $$;
ROLLBACK;
EOF

# --- 5. active-fingerprint partial unique index --------------------------------
run_sql fingerprint "alerts_unique_fingerprint rejects 2 active, allows active + resolved" <<'EOF'
BEGIN;
DO $$
DECLARE
    fp text := encode(sha256(convert_to(gen_random_uuid()::text, 'UTF8')), 'hex');
    c  text;
BEGIN
    INSERT INTO alerts (source_system, source_alert_id, device_ip, severity, category,
                        alert_type, title, occurred_at, fingerprint, status)
    VALUES ('check_schema', 'a1', '192.0.2.1', 'major', 'network', 'link_down',
            'check_schema first', now(), fp, 'active');
    BEGIN
        INSERT INTO alerts (source_system, source_alert_id, device_ip, severity, category,
                            alert_type, title, occurred_at, fingerprint, status)
        VALUES ('check_schema', 'a2', '192.0.2.1', 'major', 'network', 'link_down',
                'check_schema second', now(), fp, 'active');
        RAISE EXCEPTION 'a second active alert with the same fingerprint was accepted';
    EXCEPTION WHEN unique_violation THEN
        GET STACKED DIAGNOSTICS c = CONSTRAINT_NAME;
        IF c IS DISTINCT FROM 'alerts_unique_fingerprint' THEN
            RAISE EXCEPTION 'rejected by % instead of alerts_unique_fingerprint', c;
        END IF;
    END;
    -- Must succeed: resolved alerts are outside the partial index.
    INSERT INTO alerts (source_system, source_alert_id, device_ip, severity, category,
                        alert_type, title, occurred_at, fingerprint, status)
    VALUES ('check_schema', 'a3', '192.0.2.1', 'major', 'network', 'link_down',
            'check_schema resolved', now(), fp, 'resolved');
    INSERT INTO alerts (source_system, source_alert_id, device_ip, severity, category,
                        alert_type, title, occurred_at, fingerprint, status)
    VALUES ('check_schema', 'a4', '192.0.2.1', 'major', 'network', 'link_down',
            'check_schema resolved again', now(), fp, 'resolved');
END $$;
ROLLBACK;
EOF

# --- 6. a CHECK constraint ------------------------------------------------------
run_sql check "severity 'bogus' rejected by alerts_severity_check" <<'EOF'
BEGIN;
DO $$
DECLARE c text;
BEGIN
    BEGIN
        INSERT INTO alerts (source_system, source_alert_id, device_ip, severity, category,
                            alert_type, title, occurred_at)
        VALUES ('check_schema', 'c1', '192.0.2.1', 'bogus', 'network', 'link_down',
                'check_schema bad severity', now());
        RAISE EXCEPTION 'an alert with severity ''bogus'' was accepted';
    EXCEPTION WHEN check_violation THEN
        GET STACKED DIAGNOSTICS c = CONSTRAINT_NAME;
        IF c IS DISTINCT FROM 'alerts_severity_check' THEN
            RAISE EXCEPTION 'rejected by % instead of alerts_severity_check', c;
        END IF;
    END;
END $$;
ROLLBACK;
EOF

# --- 7. updated_at triggers -------------------------------------------------------
# Rows are inserted with updated_at in 2000; an UPDATE that does not touch
# updated_at must leave it at now() (the transaction's time).
run_sql updated_at "BEFORE UPDATE trigger sets updated_at on alerts, devices, dependencies, connectors, oid_mappings, notification_rules" <<'EOF'
BEGIN;
DO $$
DECLARE
    old_ts constant timestamptz := '2000-01-01 00:00:00+00';
    u      text := gen_random_uuid()::text;
    id_    uuid;
    got    timestamptz;
BEGIN
    INSERT INTO alerts (source_system, source_alert_id, device_ip, severity, category,
                        alert_type, title, occurred_at, updated_at)
    VALUES ('check_schema', u, '192.0.2.1', 'info', 'network', 't', 'check_schema trigger', now(), old_ts)
    RETURNING id INTO id_;
    UPDATE alerts SET title = 'check_schema trigger 2' WHERE id = id_;
    SELECT updated_at INTO got FROM alerts WHERE id = id_;
    IF got IS DISTINCT FROM now() THEN RAISE EXCEPTION 'alerts.updated_at not set by trigger (%)', got; END IF;

    INSERT INTO devices (ip_address, name, updated_at)
    VALUES ('check-' || left(u, 30), 'check_schema', old_ts) RETURNING id INTO id_;
    UPDATE devices SET name = 'check_schema 2' WHERE id = id_;
    SELECT updated_at INTO got FROM devices WHERE id = id_;
    IF got IS DISTINCT FROM now() THEN RAISE EXCEPTION 'devices.updated_at not set by trigger (%)', got; END IF;

    INSERT INTO dependencies (device_ip, depends_on_ip, updated_at)
    VALUES ('a-' || left(u, 30), 'b-' || left(u, 30), old_ts) RETURNING id INTO id_;
    UPDATE dependencies SET description = 'check_schema' WHERE id = id_;
    SELECT updated_at INTO got FROM dependencies WHERE id = id_;
    IF got IS DISTINCT FROM now() THEN RAISE EXCEPTION 'dependencies.updated_at not set by trigger (%)', got; END IF;

    INSERT INTO connectors (name, type, updated_at)
    VALUES ('check_schema ' || u, 'snmp', old_ts) RETURNING id INTO id_;
    UPDATE connectors SET status = 'error' WHERE id = id_;
    SELECT updated_at INTO got FROM connectors WHERE id = id_;
    IF got IS DISTINCT FROM now() THEN RAISE EXCEPTION 'connectors.updated_at not set by trigger (%)', got; END IF;

    INSERT INTO oid_mappings (oid_pattern, alert_type, category, default_severity, updated_at)
    VALUES ('check_schema.' || u, 't', 'network', 'info', old_ts) RETURNING id INTO id_;
    UPDATE oid_mappings SET notes = 'check_schema' WHERE id = id_;
    SELECT updated_at INTO got FROM oid_mappings WHERE id = id_;
    IF got IS DISTINCT FROM now() THEN RAISE EXCEPTION 'oid_mappings.updated_at not set by trigger (%)', got; END IF;

    INSERT INTO notification_rules (name, updated_at)
    VALUES ('check_schema', old_ts) RETURNING id INTO id_;
    UPDATE notification_rules SET enabled = false WHERE id = id_;
    SELECT updated_at INTO got FROM notification_rules WHERE id = id_;
    IF got IS DISTINCT FROM now() THEN RAISE EXCEPTION 'notification_rules.updated_at not set by trigger (%)', got; END IF;
END $$;
ROLLBACK;
EOF

exit "$FAILED"
