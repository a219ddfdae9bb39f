/*
 * The store sink: the pipeline's changes into PostgreSQL, in batches.
 *
 * Batches form a FIFO. New changes go into the open batch (the last one),
 * coalesced per alert id into one entry each; the open batch is sealed when
 * it is full, when its flush interval elapsed and nothing is in flight, or
 * on an explicit flush. Only the first batch is ever in the pool: batches
 * commit in the order their changes were submitted, and while one is in
 * flight the open batch keeps growing (group commit).
 *
 * A batch is written as one transaction of up to six set-based statements
 * (see include/opsc/store_sink.h); their order matters for the partial
 * unique index on fingerprint WHERE status = 'active', which PostgreSQL
 * checks row by row, not at commit:
 *
 *   1. status rows leaving 'active' (resolved, suppressed, ...) first, so an
 *      alert that replaces a resolved one with the same fingerprint can be
 *      inserted as 'active' by statement 2;
 *   2. the INSERT of every new alert, already in its final state within the
 *      batch (a resolve of an alert created in the same batch is folded into
 *      its row: inserting it 'active' would make a same-batch successor with
 *      its fingerprint conflict);
 *   3. the remaining status rows: those becoming 'active' (after everything
 *      that leaves it), and those pointing (correlated_to_id, a foreign key)
 *      at an alert created in this batch;
 *   4. one UPDATE for the field UPDATEs of alerts not created in this batch
 *      (those were folded into the INSERT row); patches, so idempotent;
 *   5. one UPDATE for all repeats (GREATEST: absolute counts, idempotent);
 *   6. one INSERT of all history rows, for alerts that exist.
 *
 * Entries of a CREATE also get their status and repeat rows in 1/3/4: on a
 * first write they change nothing, on a replay where the alert row is already
 * there (ON CONFLICT skipped it) they still bring it to its final state.
 *
 * Isolation: on a data error (SQLSTATE class 22/23) the batch's entries, in
 * the order above (first-seen order within each group), are bisected; each
 * half is its own transaction, the first half before the second, until a
 * failing entry stands alone and is rejected. A bad row costs about
 * 2*log2(n) extra transactions instead of n.
 *
 * JSON for the statements is written here rather than built with jansson:
 * the rows are flat, and custom_fields/raw_data arrive as JSON text that
 * jansson would have to parse and print again for every row on the loop
 * thread. The text is instead checked by a small validator (one value, valid
 * UTF-8, no \u0000 that jsonb refuses) and embedded as is; text that fails
 * is stored as {"invalid_json": "<text>"} and counted, so the alert is kept.
 * Strings are escaped with invalid UTF-8 replaced by U+FFFD.
 */
#include "opsc/store_sink.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uuid/uuid.h>

#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/metrics.h"

#define STORE_LOG "store"
#define LOAD_PAGE 5000
#define LOAD_PAGE_STR "5000"

/* ---- SQL ------------------------------------------------------------------- */

#define ALERT_COLS                                                                                 \
    "id, source_system, source_alert_id, device_ip, device_name, severity, category, "             \
    "alert_type, impact, urgency, priority, title, message, status, is_clear, occurred_at, "       \
    "received_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by, correlated_to_id, "  \
    "correlation_rule, tags, custom_fields, raw_data, fingerprint, occurrence_count, "             \
    "last_occurrence_at"

/*
 * Rows arrive as one binary array per column (opsc_pg_array_t), unnested:
 * PostgreSQL parses no text for them but the jsonb columns (which COPY
 * parses too). `tags` is an array literal per row (text[] has no ragged
 * form), cast only where present. The last three columns are the alert's
 * `created` history row (id, status at creation, changes).
 *
 * No conflict target: an id that is already there (a replay) and a
 * fingerprint already active under another id (another collector) are both
 * skipped. Only rows actually inserted get their `created` history row, in
 * the same statement: a replayed alert has it already (same transaction as
 * its first write), a skipped one must not (foreign key). The SELECT
 * returns the skipped rows and whether their id existed, to tell the two
 * apart (the main query does not see the CTEs' inserts).
 */
// clang-format off
/* The rows (one array per column) and the INSERT of the alerts, shared by both statements. */
#define SQL_INSERT_ROWS \
    "WITH v AS MATERIALIZED (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], " \
    "$4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], " \
    "$11::text[], $12::text[], $13::text[], $14::text[], $15::bool[], $16::timestamptz[], " \
    "$17::timestamptz[], $18::timestamptz[], $19::text[], $20::timestamptz[], $21::text[], " \
    "$22::uuid[], $23::text[], $24::text[], $25::jsonb[], $26::jsonb[], $27::text[], " \
    "$28::int4[], $29::timestamptz[], $30::uuid[], $31::text[], $32::jsonb[]) " \
    "AS v(" ALERT_COLS ", h_id, h_status, h_changes)), " \
    "ins AS (INSERT INTO alerts (" ALERT_COLS ") " \
    "SELECT id, source_system, source_alert_id, device_ip, device_name, severity, category, " \
    "alert_type, impact, urgency, priority, title, message, COALESCE(status, 'active'), " \
    "COALESCE(is_clear, false), occurred_at, COALESCE(received_at, now()), acknowledged_at, " \
    "acknowledged_by, resolved_at, resolved_by, correlated_to_id, correlation_rule, " \
    "tags::text[], COALESCE(custom_fields, '{}'), COALESCE(raw_data, '{}'), fingerprint, " \
    "COALESCE(occurrence_count, 1), last_occurrence_at FROM v"
static const char sql_insert[] =
    SQL_INSERT_ROWS
    " ON CONFLICT DO NOTHING RETURNING id), "
    "hist AS (INSERT INTO alert_history (id, alert_id, action, new_status, user_id, user_name, "
    "changes, created_at) "
    "SELECT v.h_id, v.id, 'created', v.h_status, 'system', 'system', v.h_changes, "
    "COALESCE(v.received_at, now()) FROM v WHERE v.id IN (SELECT id FROM ins) "
    "ON CONFLICT (id) DO NOTHING) "
    "SELECT v.id::text, EXISTS (SELECT 1 FROM alerts a WHERE a.id = v.id), v.fingerprint "
    "FROM v WHERE v.id NOT IN (SELECT id FROM ins)";
// clang-format on
/*
 * The same rows without conflict handling: ON CONFLICT makes PostgreSQL probe
 * every unique index before each insert (13% of the backend's time writing
 * new alerts, measured). Conflicts come only from a replay after a crash or
 * from another collector, so a batch is first sent with this statement and
 * sent again with sql_insert only when it fails with unique_violation.
 */
// clang-format off
static const char sql_insert_fast[] =
    SQL_INSERT_ROWS
    ") "
    "INSERT INTO alert_history (id, alert_id, action, new_status, user_id, user_name, "
    "changes, created_at) "
    "SELECT v.h_id, v.id, 'created', v.h_status, 'system', 'system', v.h_changes, "
    "COALESCE(v.received_at, now()) FROM v";
// clang-format on
enum { INSERT_COLS = 32 };

/*
 * NULL in a row means "unchanged". An alert that goes back to active with no
 * rule of its own (the upstream resolved, the maintenance window ended) is no
 * longer correlated: `uncorrelate` clears correlation_rule and
 * correlated_to_id. An alert that leaves resolved/expired
 * (a flapping alert reopened) loses its resolved_at/resolved_by: they describe
 * a resolution that no longer holds. Likewise an alert back to active
 * (unacknowledged, its acknowledgement expired, reopened) loses
 * acknowledged_at/acknowledged_by.
 */
static const char sql_status[] =
    "UPDATE alerts a SET status = v.status, "
    "resolved_at = CASE WHEN v.status IN ('resolved', 'expired') "
    "THEN COALESCE(v.resolved_at, a.resolved_at) END, "
    "resolved_by = CASE WHEN v.status IN ('resolved', 'expired') "
    "THEN COALESCE(v.resolved_by, a.resolved_by) END, "
    "acknowledged_at = CASE WHEN v.status = 'active' THEN NULL "
    "ELSE COALESCE(v.acknowledged_at, a.acknowledged_at) END, "
    "acknowledged_by = CASE WHEN v.status = 'active' THEN NULL "
    "ELSE COALESCE(v.acknowledged_by, a.acknowledged_by) END, "
    "correlation_rule = CASE WHEN v.uncorrelate THEN NULL "
    "ELSE COALESCE(v.correlation_rule, a.correlation_rule) END, "
    "correlated_to_id = CASE WHEN v.uncorrelate THEN NULL "
    "ELSE COALESCE(v.correlated_to_id, a.correlated_to_id) END "
    "FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::timestamptz[], "
    "$6::text[], $7::text[], $8::uuid[], $9::bool[]) AS v(id, status, resolved_at, resolved_by, "
    "acknowledged_at, acknowledged_by, correlation_rule, correlated_to_id, uncorrelate) "
    "WHERE a.id = v.id";
enum { STATUS_COLS = 9 };

/*
 * UPDATE changes, merged per alert: `m` is the field mask (OPSC_UPD_*), so a
 * NULL value can be set on purpose. Tags and custom_fields are patches
 * (see change.h); both, like the plain fields, give the same row when
 * applied twice.
 */
// clang-format off
static const char sql_update[] =
    "UPDATE alerts a SET "
    "tags = CASE WHEN v.m & 1 <> 0 THEN (SELECT array_agg(x.t ORDER BY x.o) FROM "
    "(SELECT u.t, min(u.o) AS o FROM unnest(COALESCE(a.tags, '{}'::text[]) || "
    "COALESCE(v.tags_add, '{}'::text[])) WITH ORDINALITY AS u(t, o) "
    "WHERE u.t <> ALL (COALESCE(v.tags_del, '{}'::text[])) GROUP BY u.t) x) ELSE a.tags END, "
    "custom_fields = CASE WHEN v.m & 2 <> 0 THEN (COALESCE(a.custom_fields, '{}'::jsonb) - "
    "ARRAY(SELECT j.k FROM jsonb_each(v.cf) AS j(k, val) WHERE j.val = 'null'::jsonb)) || "
    "COALESCE((SELECT jsonb_object_agg(j.k, j.val) FROM jsonb_each(v.cf) AS j(k, val) "
    "WHERE j.val <> 'null'::jsonb), '{}'::jsonb) ELSE a.custom_fields END, "
    "impact = CASE WHEN v.m & 4 <> 0 THEN v.impact ELSE a.impact END, "
    "urgency = CASE WHEN v.m & 8 <> 0 THEN v.urgency ELSE a.urgency END, "
    "priority = CASE WHEN v.m & 16 <> 0 THEN v.priority ELSE a.priority END, "
    "device_name = CASE WHEN v.m & 32 <> 0 THEN v.device_name ELSE a.device_name END, "
    "title = CASE WHEN v.m & 64 <> 0 THEN COALESCE(v.title, a.title) ELSE a.title END, "
    "severity = CASE WHEN v.m & 128 <> 0 THEN COALESCE(v.severity, a.severity) "
    "ELSE a.severity END "
    "FROM json_to_recordset($1::json) AS v(id uuid, m int, tags_add text[], tags_del text[], "
    "cf jsonb, impact text, urgency text, priority text, device_name text, title text, "
    "severity text) "
    "WHERE a.id = v.id";
// clang-format on
_Static_assert(OPSC_UPD_TAGS == 1 && OPSC_UPD_CUSTOM_FIELDS == 2 && OPSC_UPD_IMPACT == 4 &&
                   OPSC_UPD_URGENCY == 8 && OPSC_UPD_PRIORITY == 16 && OPSC_UPD_DEVICE_NAME == 32 &&
                   OPSC_UPD_TITLE == 64 && OPSC_UPD_SEVERITY == 128,
               "sql_update's masks");

static const char sql_repeat[] =
    "UPDATE alerts a SET occurrence_count = GREATEST(a.occurrence_count, v.c), "
    "last_occurrence_at = GREATEST(a.last_occurrence_at, v.t) "
    "FROM unnest($1::uuid[], $2::int4[], $3::timestamptz[]) AS v(id, c, t) "
    "WHERE a.id = v.id";
enum { REPEAT_COLS = 3 };

/* EXISTS keeps the foreign key satisfied for an alert whose INSERT was skipped. */
static const char sql_history[] =
    "INSERT INTO alert_history (id, alert_id, action, old_status, new_status, user_id, "
    "user_name, changes, created_at, notes) "
    "SELECT v.id, v.alert_id, v.action, v.old_status, v.new_status, v.actor, v.actor, v.changes, "
    "COALESCE(v.at, now()), v.notes "
    "FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], "
    "$7::jsonb[], $8::timestamptz[], $9::text[]) AS v(id, alert_id, action, old_status, "
    "new_status, actor, changes, at, notes) "
    "WHERE EXISTS (SELECT 1 FROM alerts a WHERE a.id = v.alert_id) "
    "ON CONFLICT (id) DO NOTHING";
enum { HISTORY_COLS = 9, MAX_COLS = INSERT_COLS };

#define US_OF(col) "(extract(epoch FROM " col ") * 1000000)::int8"

// clang-format off
static const char sql_load_active[] =
    "SELECT id, source_system, source_alert_id, device_ip, device_name, severity, category, "
    "alert_type, impact, urgency, priority, title, message, status, is_clear, "
    US_OF("occurred_at") ", " US_OF("received_at") ", " US_OF("acknowledged_at") ", "
    "acknowledged_by, " US_OF("resolved_at") ", resolved_by, correlated_to_id, "
    "correlation_rule, array_to_json(tags)::text, custom_fields::text, raw_data::text, "
    "fingerprint, occurrence_count, " US_OF("last_occurrence_at") " "
    "FROM alerts WHERE status IN ('active', 'acknowledged', 'suppressed') AND id > $1::uuid "
    "ORDER BY id LIMIT " LOAD_PAGE_STR;
// clang-format on

static const char sql_load_mappings[] =
    "SELECT id, oid_pattern, vendor, alert_type, category, default_severity, title_template, "
    "description, COALESCE(is_clear_event, false), clear_oid_pattern, mib_name, mib_object "
    "FROM oid_mappings ORDER BY oid_pattern, vendor NULLS FIRST, id";

static const char sql_load_devices[] =
    "SELECT ip_address, name, site, status, custom_fields->>'impact' FROM devices "
    "ORDER BY ip_address";

static const char sql_load_dependencies[] =
    "SELECT DISTINCT device_ip, depends_on_ip FROM dependencies ORDER BY device_ip, depends_on_ip";

/*
 * Maintenance windows as concrete UTC intervals overlapping [$1, $2): the
 * server never applies time-zone rules itself. A recurring window becomes one
 * interval per matching local day: (local date + recurrence_start) AT TIME
 * ZONE time_zone, and its end likewise from the wall-clock end, so "Sunday
 * 02:00-04:00 Europe/Berlin" follows daylight-saving changes (on the night
 * the clocks skip 02:00 it covers 03:00-04:00 local, one real hour). Days are
 * generated from 8 days before $1 (a weekly occurrence lasts at most 7 days)
 * and clipped to the validity range. A non-finite bound ('infinity') is
 * returned as NULL: open-ended.
 */
// clang-format off
static const char sql_load_maintenance[] =
    "WITH w AS (SELECT * FROM maintenance_windows WHERE enabled), "
    "occ AS ("
    "SELECT w.id, w.starts_at AS s, w.ends_at AS e FROM w WHERE w.recurrence IS NULL "
    "UNION ALL "
    "SELECT w.id, GREATEST(o.s, w.starts_at), LEAST(o.e, w.ends_at) FROM w "
    "CROSS JOIN LATERAL ("
    "SELECT (x.d + w.recurrence_start) AT TIME ZONE w.time_zone AS s, "
    "(x.d + w.recurrence_start + w.recurrence_duration) AT TIME ZONE w.time_zone AS e "
    "FROM (SELECT lo.d + i AS d FROM "
    "(SELECT ($1::timestamptz AT TIME ZONE w.time_zone)::date - 8 AS d) lo, "
    "generate_series(0, ($2::timestamptz AT TIME ZONE w.time_zone)::date - "
    "($1::timestamptz AT TIME ZONE w.time_zone)::date + 8) i) x "
    "WHERE w.recurrence = 'daily' OR extract(isodow FROM x.d)::int = ANY (w.recurrence_days)"
    ") o WHERE w.recurrence IS NOT NULL) "
    "SELECT w.id::text, w.name, w.device_ip_cidr::text, w.device_name_glob, w.site, w.category, "
    "w.alert_type, CASE WHEN isfinite(occ.s) THEN " US_OF("occ.s") " END, "
    "CASE WHEN isfinite(occ.e) THEN " US_OF("occ.e") " END "
    "FROM occ JOIN w ON w.id = occ.id "
    "WHERE occ.s < $2::timestamptz AND (occ.e IS NULL OR occ.e > $1::timestamptz) "
    "AND (occ.e IS NULL OR occ.e > occ.s) "
    "ORDER BY occ.s, w.id";
// clang-format on

/* Statement slots of one request, in execution order. */
enum { ST_PRE = 0, ST_INSERT, ST_POST, ST_UPDATE, ST_REPEAT, ST_HISTORY, ST_COUNT };

/* Namespace of the name-based (v5) history row ids. */
static const unsigned char history_ns[16] = {0x6f, 0x70, 0x73, 0x63, 0x2d, 0x68, 0x69, 0x73,
                                             0x74, 0x6f, 0x72, 0x79, 0x2d, 0x6e, 0x73, 0x31};

/* ---- types ------------------------------------------------------------------ */

/* All changes of one alert id in one batch. */
typedef struct store_entry_s {
    opsc_uuid_t id;
    opsc_alert_t *create; /* owned, from a CREATE */
    int has_repeat;
    uint32_t rep_count;
    int64_t rep_at_us;
    /* STATUS changes in order (owned, chained by `next`); the final state is
     * read from the last one that set each field. */
    opsc_change_t *st_head;
    opsc_change_t *st_tail;
    const opsc_change_t *st_last;
    const opsc_change_t *st_resolved;
    const opsc_change_t *st_ack;
    const opsc_change_t *st_rule;
    const opsc_change_t *st_corr;
    /* UPDATE changes in order (owned, chained by `next`: one history row each) and, when
     * there is no CREATE to fold them into, their merge (owned) for the UPDATE row. */
    opsc_change_t *up_head;
    opsc_change_t *up_tail;
    opsc_alert_update_t *up;
    unsigned char pre;      /* status row runs before the INSERT */
    unsigned char rejected; /* isolated by a data error */
} store_entry_t;

typedef struct store_range_s {
    uint32_t lo;
    uint32_t hi;
} store_range_t;

typedef struct store_batch_s {
    struct store_batch_s *next;
    opsc_store_t *s; /* NULL once orphaned by a close: completion only frees */
    store_entry_t *e;
    size_t ne;
    size_t cap;
    uint32_t *slots; /* open addressing: entry index + 1, 0 = empty */
    size_t nslots;
    opsc_change_t *rhead; /* REPLY changes, in order */
    opsc_change_t *rtail;
    size_t nreplies;
    size_t nstatus;  /* STATUS and UPDATE changes: one history row each */
    size_t nchanges; /* changes folded in, for the size histogram */
    uint64_t last_seq;
    int sealed;
    int started;
    int in_pool; /* a request is in the pool; its callback is pending */
    int waiting; /* backoff timer running */
    int stalled; /* the pool is closed: nothing more can be sent */
    uint32_t *order;
    store_range_t *stack;
    size_t nstack;
    size_t capstack;
    int item[ST_COUNT]; /* request item index per statement, -1 if absent */
    size_t sent_creates;
    uint64_t t0_ns;
    int attempts;
    int isolating;
    int safe_insert;     /* a unique violation was seen: inserts handle conflicts (sql_insert) */
    int ahead;           /* sent while the batch before it was still in flight (see pump) */
    int ahead_refused;   /* not to be sent ahead (dependent, or it failed ahead once) */
    opsc_pg_role_t role; /* the connection it goes to: a batch ahead takes the other one */
    int done_ahead;      /* written ahead; finished when its turn in the FIFO comes */
} store_batch_t;

#define LAT_BUCKETS 10
#define SIZE_BUCKETS 8
static const double lat_le[LAT_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                           0.05,  0.1,    0.25,  1.0,  5.0};
static const double size_le[SIZE_BUCKETS] = {1, 10, 50, 100, 500, 1000, 2000, 5000};

enum { K_CREATE = 0, K_REPEAT, K_STATUS, K_REPLY, K_UPDATE, K_COUNT };
static const char *const kind_label[K_COUNT] = {"create", "repeat", "status", "reply", "update"};
_Static_assert(K_UPDATE == (int)OPSC_CHANGE_UPDATE, "kinds index n_received");

struct opsc_store_s {
    uv_loop_t *loop;
    opsc_pg_pool_t *pool;
    opsc_store_options_t o;
    const opsc_pg_stmt_t *stmt[ST_COUNT];
    const opsc_pg_stmt_t *stmt_insert_fast;
    const opsc_pg_stmt_t *stmt_load_active;
    const opsc_pg_stmt_t *stmt_load_mappings;
    const opsc_pg_stmt_t *stmt_load_devices;
    const opsc_pg_stmt_t *stmt_load_dependencies;
    const opsc_pg_stmt_t *stmt_load_maintenance;

    store_batch_t *first; /* FIFO; only `first` is ever sent */
    store_batch_t *last;
    store_batch_t *open; /* == last while it takes changes, else NULL */
    size_t held;
    uint64_t seq;
    int due; /* the open batch is old enough to be sealed */

    uv_timer_t flush_timer; /* age of the open batch */
    uv_timer_t kick_timer;  /* run pump() from the loop, not from a caller */
    uv_timer_t retry_timer; /* backoff */
    uv_timer_t drain_timer; /* close: give up after drain_timeout_ms */
    int retry_ms;
    uint64_t rng;

    int closing;    /* close called: submit refused, draining */
    int finalizing; /* handles closing, store about to be freed */
    int handles_open;
    void (*done)(void *);
    void *done_arg;

    void (*reply_cb)(opsc_change_t *, void *);
    void *reply_arg;
    void (*durable_cb)(uint64_t, void *);
    void *durable_arg;
    void (*commit_cb)(const opsc_store_committed_t *, size_t, void *); /* the live feed */
    void *commit_arg;

    opsc_pg_array_t col[ST_COUNT][MAX_COLS]; /* binary columns per statement */
    opsc_buf_t jb;                           /* the UPDATE statement's JSON array */
    opsc_buf_t scratch;                      /* one JSON value or tag literal at a time */

    opsc_log_ratelimit_t rl_retry;
    opsc_log_ratelimit_t rl_reject;
    opsc_log_ratelimit_t rl_skip;

    /* counters (loop thread only) */
    uint64_t n_received[K_COUNT];
    uint64_t n_coalesced;
    uint64_t n_refused_full;
    uint64_t n_rows_created, n_rows_status, n_rows_repeat, n_rows_history, n_rows_update;
    uint64_t n_update_fold_failed;
    uint64_t n_skip_replay, n_skip_fingerprint;
    uint64_t n_rejected;
    uint64_t n_invalid_json;
    uint64_t n_batches, n_txns, n_isolations, n_retries;
    uint64_t n_safe_inserts;
    uint64_t n_ahead, n_ahead_back;
    uint64_t n_unflushed;
    size_t last_batch, max_batch;
    double last_lat_s, max_lat_s, sum_lat_s, sum_size;
    uint64_t lat_bucket[LAT_BUCKETS];
    uint64_t size_bucket[SIZE_BUCKETS];
};

static void pump(opsc_store_t *s);
static void send_range(opsc_store_t *s, store_batch_t *b);
static void finish_close(opsc_store_t *s);

/* ---- JSON writer -------------------------------------------------------------- */

typedef struct jw_s {
    opsc_buf_t *b;
    int err;
} jw_t;

static void jw_raw(jw_t *w, const char *s, size_t n) {
    if (!w->err && opsc_buf_append(w->b, s, n) != 0) {
        w->err = OPSC_ENOMEM;
    }
}

static void jw_lit(jw_t *w, const char *s) {
    jw_raw(w, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    if (c < 0x80) {
        return 1;
    }
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) {
            lo = 0xA0;
        } else if (c == 0xED) {
            hi = 0x9F; /* no UTF-16 surrogates */
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) {
            lo = 0x90;
        } else if (c == 0xF4) {
            hi = 0x8F;
        }
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < len; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF) {
            return 0;
        }
    }
    return len;
}

/*
 * Copy the UTF-8 sequence at p[*i] to o, or `bad` (U+FFFD, escaped or not)
 * for an invalid byte; advances *i. Returns the new end of o.
 */
static char *utf8_put(char *o, const unsigned char *p, size_t n, size_t *i, const char *bad,
                      size_t badlen) {
    size_t len = p[*i] < 0x80 ? 1 : utf8_seq(p + *i, n - *i);
    if (len == 0) {
        memcpy(o, bad, badlen);
        *i += 1;
        return o + badlen;
    }
    memcpy(o, p + *i, len);
    *i += len;
    return o + len;
}

/* A JSON string; NULL writes null. Invalid UTF-8 bytes become U+FFFD. */
static void jw_strn(jw_t *w, const char *str, size_t n) {
    if (!str) {
        jw_lit(w, "null");
        return;
    }
    if (w->err || opsc_buf_reserve(w->b, n * 6 + 2) != 0) {
        w->err = OPSC_ENOMEM;
        return;
    }
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)str;
    char *o = w->b->base + w->b->len;
    char *start = o;
    *o++ = '"';
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = (char)c;
            i++;
            continue;
        }
        if (c < 0x80) {
            *o++ = '\\';
            switch (c) {
            case '"':
                *o++ = '"';
                break;
            case '\\':
                *o++ = '\\';
                break;
            case '\n':
                *o++ = 'n';
                break;
            case '\r':
                *o++ = 'r';
                break;
            case '\t':
                *o++ = 't';
                break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[c >> 4];
                *o++ = hex[c & 15];
                break;
            }
            i++;
            continue;
        }
        o = utf8_put(o, p, n, &i, "\\ufffd", 6);
    }
    *o++ = '"';
    w->b->len += (size_t)(o - start);
    w->b->base[w->b->len] = '\0';
}

static void jw_str(jw_t *w, const char *s) {
    jw_strn(w, s, s ? strlen(s) : 0);
}

/* A fixed char array from a change record: not necessarily NUL-terminated. */
static void jw_arr(jw_t *w, const char *a, size_t cap) {
    jw_strn(w, a, strnlen(a, cap));
}

static void jw_key(jw_t *w, int *first, const char *key) {
    jw_raw(w, *first ? "\"" : ",\"", *first ? 1 : 2);
    *first = 0;
    jw_lit(w, key);
    jw_raw(w, "\":", 2);
}

static void jw_uuid(jw_t *w, const opsc_uuid_t *u) {
    char t[40];
    t[0] = '"';
    opsc_uuid_format(u, t + 1);
    t[37] = '"';
    jw_raw(w, t, 38);
}

static void jw_u64(jw_t *w, uint64_t v) {
    char t[24];
    int n = snprintf(t, sizeof(t), "%" PRIu64, v);
    jw_raw(w, t, (size_t)n);
}

/* ---- JSON text validator (for custom_fields / raw_data) ------------------------ */

typedef struct jv_s {
    const unsigned char *p;
    const unsigned char *end;
} jv_t;

static void jv_ws(jv_t *v) {
    while (v->p < v->end && (*v->p == ' ' || *v->p == '\t' || *v->p == '\n' || *v->p == '\r')) {
        v->p++;
    }
}

static int jv_hex4(const unsigned char *p) {
    int x = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        x <<= 4;
        if (c >= '0' && c <= '9') {
            x |= (int)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            x |= (int)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            x |= (int)(c - 'A' + 10);
        } else {
            return -1;
        }
    }
    return x;
}

static int jv_string(jv_t *v) {
    v->p++; /* opening quote */
    while (v->p < v->end) {
        unsigned c = *v->p;
        if (c == '"') {
            v->p++;
            return 0;
        }
        if (c < 0x20) {
            return -1;
        }
        if (c == '\\') {
            if (v->end - v->p < 2) {
                return -1;
            }
            unsigned e = v->p[1];
            if (e == 'u') {
                if (v->end - v->p < 6) {
                    return -1;
                }
                int x = jv_hex4(v->p + 2);
                if (x <= 0) {
                    return -1; /* malformed, or \u0000 which jsonb refuses */
                }
                v->p += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", (int)e) || e == 0) {
                return -1;
            }
            v->p += 2;
            continue;
        }
        size_t len = utf8_seq(v->p, (size_t)(v->end - v->p));
        if (len == 0) {
            return -1;
        }
        v->p += len;
    }
    return -1;
}

static int jv_digits(jv_t *v) {
    const unsigned char *s = v->p;
    while (v->p < v->end && *v->p >= '0' && *v->p <= '9') {
        v->p++;
    }
    return v->p > s ? 0 : -1;
}

static int jv_number(jv_t *v) {
    if (*v->p == '-') {
        v->p++;
    }
    if (v->p < v->end && *v->p == '0') {
        v->p++;
    } else if (jv_digits(v) != 0) {
        return -1;
    }
    if (v->p < v->end && *v->p == '.') {
        v->p++;
        if (jv_digits(v) != 0) {
            return -1;
        }
    }
    if (v->p < v->end && (*v->p == 'e' || *v->p == 'E')) {
        v->p++;
        if (v->p < v->end && (*v->p == '+' || *v->p == '-')) {
            v->p++;
        }
        if (jv_digits(v) != 0) {
            return -1;
        }
    }
    return 0;
}

static int jv_value(jv_t *v, int depth) {
    jv_ws(v);
    if (v->p >= v->end || depth > 64) {
        return -1;
    }
    unsigned c = *v->p;
    if (c == '"') {
        return jv_string(v);
    }
    if (c == '{' || c == '[') {
        unsigned close = c == '{' ? '}' : ']';
        v->p++;
        jv_ws(v);
        if (v->p < v->end && *v->p == close) {
            v->p++;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                jv_ws(v);
                if (v->p >= v->end || *v->p != '"' || jv_string(v) != 0) {
                    return -1;
                }
                jv_ws(v);
                if (v->p >= v->end || *v->p != ':') {
                    return -1;
                }
                v->p++;
            }
            if (jv_value(v, depth + 1) != 0) {
                return -1;
            }
            jv_ws(v);
            if (v->p >= v->end) {
                return -1;
            }
            if (*v->p == ',') {
                v->p++;
                continue;
            }
            if (*v->p == close) {
                v->p++;
                return 0;
            }
            return -1;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        return jv_number(v);
    }
    static const char *const lits[] = {"true", "false", "null"};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(lits[i]);
        if ((size_t)(v->end - v->p) >= n && memcmp(v->p, lits[i], n) == 0) {
            v->p += n;
            return 0;
        }
    }
    return -1;
}

/* 1 when `text` is exactly one JSON value that PostgreSQL's jsonb accepts. */
static int json_text_ok(const char *text) {
    jv_t v = {(const unsigned char *)text, (const unsigned char *)text + strlen(text)};
    if (jv_value(&v, 0) != 0) {
        return 0;
    }
    jv_ws(&v);
    return v.p == v.end;
}

static void jw_json_text(opsc_store_t *s, jw_t *w, const char *text) {
    if (!text) {
        jw_lit(w, "null");
        return;
    }
    if (json_text_ok(text)) {
        jw_lit(w, text);
        return;
    }
    s->n_invalid_json++;
    jw_lit(w, "{\"invalid_json\":");
    jw_str(w, text);
    jw_lit(w, "}");
}

/* ---- binary column writer ---------------------------------------------------- */

typedef opsc_pg_array_t col_t;

/*
 * A text element; NULL is SQL NULL. Invalid UTF-8 bytes become U+FFFD, as in
 * the JSON writer: PostgreSQL refuses invalid text in binary parameters too,
 * and one bad byte must not cost the alert.
 */
static void c_textn(col_t *c, const char *str, size_t n) {
    if (!str) {
        opsc_pg_array_null(c);
        return;
    }
    const unsigned char *p = (const unsigned char *)str;
    size_t i = 0, out = 0;
    int clean = 1;
    while (i < n) {
        size_t len = p[i] < 0x80 ? 1 : utf8_seq(p + i, n - i);
        if (len == 0) {
            clean = 0;
            out += 3;
            i++;
        } else {
            out += len;
            i += len;
        }
    }
    if (clean) {
        opsc_pg_array_bytes(c, str, n);
        return;
    }
    char *o = opsc_pg_array_element(c, out);
    if (!o) {
        return;
    }
    for (i = 0; i < n;) {
        o = utf8_put(o, p, n, &i, "\xef\xbf\xbd", 3);
    }
}

static void c_text(col_t *c, const char *s) {
    c_textn(c, s, s ? strlen(s) : 0);
}

/* A fixed char array from a change record: not necessarily NUL-terminated. */
static void c_arr(col_t *c, const char *a, size_t cap) {
    c_textn(c, a, strnlen(a, cap));
}

static void c_uuid(col_t *c, const opsc_uuid_t *u) {
    opsc_pg_array_bytes(c, u->b, sizeof(u->b));
}

/* 0 is "no time": SQL NULL. */
static void c_time(col_t *c, int64_t us) {
    if (us == 0) {
        opsc_pg_array_null(c);
    } else {
        opsc_pg_array_timestamptz(c, us);
    }
}

static void c_priority(col_t *c, int prio) {
    char p[8];
    if (prio < 1 || prio > 5) {
        opsc_pg_array_null(c);
        return;
    }
    snprintf(p, sizeof(p), "P%d", prio);
    c_text(c, p);
}

/* JSON text for a jsonb column, checked as jw_json_text does; NULL is SQL NULL. */
static void c_json(opsc_store_t *s, col_t *c, const char *text) {
    if (!text) {
        opsc_pg_array_null(c);
        return;
    }
    if (json_text_ok(text)) {
        opsc_pg_array_jsonb(c, text, strlen(text));
        return;
    }
    opsc_buf_reset(&s->scratch);
    jw_t w = {&s->scratch, 0};
    jw_json_text(s, &w, text);
    if (w.err) {
        c->err = w.err;
        return;
    }
    opsc_pg_array_jsonb(c, s->scratch.base, s->scratch.len);
}

/* text[] as an array literal, cast per row by the statement; no tags is NULL. */
static void c_tags(opsc_store_t *s, col_t *c, char *const *tags, size_t n) {
    if (n == 0) {
        opsc_pg_array_null(c);
        return;
    }
    opsc_buf_t *b = &s->scratch;
    opsc_buf_reset(b);
    int err = opsc_buf_append(b, "{", 1);
    for (size_t i = 0; i < n && !err; i++) {
        err = opsc_buf_append(b, i ? ",\"" : "\"", i ? 2 : 1);
        for (const char *p = tags[i]; *p && !err; p++) {
            if (*p == '"' || *p == '\\') {
                err = opsc_buf_append(b, "\\", 1);
            }
            err = err ? err : opsc_buf_append(b, p, 1);
        }
        err = err ? err : opsc_buf_append(b, "\"", 1);
    }
    err = err ? err : opsc_buf_append(b, "}", 1);
    if (err) {
        c->err = OPSC_ENOMEM;
        return;
    }
    c_textn(c, b->base, b->len);
}

/* Element types of each statement's columns, in parameter order. */
#define T_UUID OPSC_PG_OID_UUID
#define T_TEXT OPSC_PG_OID_TEXT
#define T_TS OPSC_PG_OID_TIMESTAMPTZ
#define T_BOOL OPSC_PG_OID_BOOL
#define T_INT4 OPSC_PG_OID_INT4
#define T_JSONB OPSC_PG_OID_JSONB
static const uint32_t insert_types[INSERT_COLS] = {
    T_UUID, T_TEXT, T_TEXT,  T_TEXT,  T_TEXT, T_TEXT, T_TEXT, T_TEXT, T_TEXT, T_TEXT, T_TEXT,
    T_TEXT, T_TEXT, T_TEXT,  T_BOOL,  T_TS,   T_TS,   T_TS,   T_TEXT, T_TS,   T_TEXT, T_UUID,
    T_TEXT, T_TEXT, T_JSONB, T_JSONB, T_TEXT, T_INT4, T_TS,   T_UUID, T_TEXT, T_JSONB};
static const uint32_t status_types[STATUS_COLS] = {T_UUID, T_TEXT, T_TS,   T_TEXT, T_TS,
                                                   T_TEXT, T_TEXT, T_UUID, T_BOOL};
static const uint32_t repeat_types[REPEAT_COLS] = {T_UUID, T_INT4, T_TS};
static const uint32_t history_types[HISTORY_COLS] = {T_UUID, T_UUID,  T_TEXT, T_TEXT, T_TEXT,
                                                     T_TEXT, T_JSONB, T_TS,   T_TEXT};

typedef struct stmt_shape_s {
    size_t ncols; /* 0: one JSON array parameter (the UPDATE) */
    const uint32_t *types;
} stmt_shape_t;

static const stmt_shape_t shapes[ST_COUNT] = {
    [ST_PRE] = {STATUS_COLS, status_types},    [ST_INSERT] = {INSERT_COLS, insert_types},
    [ST_POST] = {STATUS_COLS, status_types},   [ST_UPDATE] = {0, NULL},
    [ST_REPEAT] = {REPEAT_COLS, repeat_types}, [ST_HISTORY] = {HISTORY_COLS, history_types},
};

/* " (N similar lines suppressed)" when N > 0, else "". */
static const char *suppressed_note(unsigned long long n, char *buf, size_t len) {
    buf[0] = '\0';
    if (n > 0) {
        snprintf(buf, len, " (%llu similar lines suppressed)", n);
    }
    return buf;
}

/* ---- batches ------------------------------------------------------------------- */

static uint64_t uuid_hash(const opsc_uuid_t *u) {
    uint64_t a, b;
    memcpy(&a, u->b, 8);
    memcpy(&b, u->b + 8, 8);
    uint64_t h = a ^ (b * 0x9e3779b97f4a7c15ull);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static size_t batch_held(const store_batch_t *b) {
    return b->ne + b->nreplies + b->nstatus;
}

static void change_list_free(opsc_change_t *c) {
    while (c) {
        opsc_change_t *n = c->next;
        opsc_change_free(c);
        c = n;
    }
}

static void entry_release(store_entry_t *e) {
    opsc_alert_free(e->create);
    change_list_free(e->st_head);
    change_list_free(e->up_head);
    opsc_alert_update_free(e->up);
}

static void batch_free(store_batch_t *b) {
    if (!b) {
        return;
    }
    for (size_t i = 0; i < b->ne; i++) {
        entry_release(&b->e[i]);
    }
    opsc_change_t *c = b->rhead;
    while (c) {
        opsc_change_t *n = c->next;
        opsc_change_free(c);
        c = n;
    }
    opsc_free(b->e);
    opsc_free(b->slots);
    opsc_free(b->order);
    opsc_free(b->stack);
    opsc_free(b);
}

static store_entry_t *batch_find(const store_batch_t *b, const opsc_uuid_t *id) {
    if (!b || b->nslots == 0) {
        return NULL;
    }
    size_t mask = b->nslots - 1;
    for (size_t i = (size_t)uuid_hash(id) & mask;; i = (i + 1) & mask) {
        uint32_t v = b->slots[i];
        if (v == 0) {
            return NULL;
        }
        if (memcmp(b->e[v - 1].id.b, id->b, 16) == 0) {
            return &b->e[v - 1];
        }
    }
}

static void slots_put(uint32_t *slots, size_t nslots, const opsc_uuid_t *id, uint32_t v) {
    size_t mask = nslots - 1;
    size_t i = (size_t)uuid_hash(id) & mask;
    while (slots[i] != 0) {
        i = (i + 1) & mask;
    }
    slots[i] = v;
}

/* A new entry for `id` (not present). NULL when out of memory. */
static store_entry_t *batch_add(store_batch_t *b, const opsc_uuid_t *id) {
    if (b->ne == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 64;
        store_entry_t *n = opsc_realloc(b->e, ncap * sizeof(*n));
        if (!n) {
            return NULL;
        }
        b->e = n;
        b->cap = ncap;
    }
    if ((b->ne + 1) * 2 > b->nslots) {
        size_t ns = b->nslots ? b->nslots * 2 : 128;
        uint32_t *n = opsc_calloc(ns, sizeof(*n));
        if (!n) {
            return NULL;
        }
        for (size_t i = 0; i < b->ne; i++) {
            slots_put(n, ns, &b->e[i].id, (uint32_t)i + 1);
        }
        opsc_free(b->slots);
        b->slots = n;
        b->nslots = ns;
    }
    store_entry_t *e = &b->e[b->ne];
    memset(e, 0, sizeof(*e));
    e->id = *id;
    slots_put(b->slots, b->nslots, id, (uint32_t)b->ne + 1);
    b->ne++;
    return e;
}

/* ---- scheduling --------------------------------------------------------------- */

static void on_kick(uv_timer_t *t) {
    pump(t->data);
}

/* pump() from the loop: never inside a caller's submit/flush, never recursively. */
static void kick(opsc_store_t *s) {
    if (!s->finalizing) {
        uv_timer_start(&s->kick_timer, on_kick, 0, 0);
    }
}

static void on_flush_timer(uv_timer_t *t) {
    opsc_store_t *s = t->data;
    s->due = 1;
    pump(s);
}

static void seal(opsc_store_t *s, store_batch_t *b) {
    b->sealed = 1;
    if (s->open == b) {
        s->open = NULL;
        s->due = 0;
        uv_timer_stop(&s->flush_timer);
    }
}

static store_batch_t *open_batch(opsc_store_t *s) {
    if (s->open) {
        return s->open;
    }
    store_batch_t *b = opsc_calloc(1, sizeof(*b));
    if (!b) {
        return NULL;
    }
    b->s = s;
    if (s->last) {
        s->last->next = b;
    } else {
        s->first = b;
    }
    s->last = b;
    s->open = b;
    return b;
}

/* ---- submit --------------------------------------------------------------------- */

static void fold_status(store_entry_t *e, opsc_change_t *c) {
    c->next = NULL;
    if (e->st_tail) {
        e->st_tail->next = c;
    } else {
        e->st_head = c;
    }
    e->st_tail = c;
    e->st_last = c;
    if (c->new_status == OPSC_STATUS_RESOLVED) {
        e->st_resolved = c;
    } else if (c->new_status == OPSC_STATUS_ACKNOWLEDGED) {
        e->st_ack = c;
    } else if (c->new_status == OPSC_STATUS_ACTIVE) {
        e->st_ack = NULL; /* unacknowledged again in this batch */
    }
    if (c->rule[0]) {
        e->st_rule = c;
    }
    if (c->has_correlated_to) {
        e->st_corr = c;
    }
}

/*
 * The row takes every UPDATE at once: folded into the CREATE's alert when the
 * batch creates it, else merged into e->up (later fields win). The change
 * itself stays for its history row.
 */
static void fold_update(opsc_store_t *s, store_entry_t *e, opsc_change_t *c) {
    int rc;
    if (e->create) {
        rc = opsc_alert_update_apply(c->upd, e->create);
    } else if (!e->up) {
        e->up = c->upd;
        c->upd = opsc_calloc(1, sizeof(*c->upd));
        rc = c->upd ? opsc_alert_update_merge(c->upd, e->up) : OPSC_ENOMEM;
    } else {
        rc = opsc_alert_update_merge(e->up, c->upd);
    }
    if (rc != 0) {
        /* Out of memory: the row misses this update; the history row still tells it. */
        s->n_update_fold_failed++;
    }
    c->next = NULL;
    if (e->up_tail) {
        e->up_tail->next = c;
    } else {
        e->up_head = c;
    }
    e->up_tail = c;
}

static void fold_repeat(store_entry_t *e, const opsc_change_t *c) {
    if (!e->has_repeat || c->occurrence_count > e->rep_count) {
        e->rep_count = c->occurrence_count;
    }
    if (!e->has_repeat || c->last_occurrence_at_us > e->rep_at_us) {
        e->rep_at_us = c->last_occurrence_at_us;
    }
    e->has_repeat = 1;
}

int opsc_store_submit(opsc_store_t *s, opsc_change_t *c) {
    if (!s || !c) {
        return UV_EINVAL;
    }
    if (s->closing) {
        return OPSC_ESHUTDOWN;
    }
    if ((unsigned)c->kind >= K_COUNT || (c->kind == OPSC_CHANGE_CREATE && !c->alert) ||
        (c->kind == OPSC_CHANGE_UPDATE && !c->upd)) {
        return UV_EINVAL;
    }
    opsc_change_kind_t kind = c->kind;
    const opsc_uuid_t *id = kind == OPSC_CHANGE_CREATE ? &c->alert->id : &c->id;
    store_entry_t *e = kind == OPSC_CHANGE_REPLY ? NULL : batch_find(s->open, id);
    /* What this change adds to the items held: a new entry, a status row, a reply. */
    size_t adds = (size_t)(kind == OPSC_CHANGE_REPLY || kind == OPSC_CHANGE_STATUS ||
                           kind == OPSC_CHANGE_UPDATE) +
                  (size_t)(!e && kind != OPSC_CHANGE_REPLY);
    if (adds && s->held + adds > s->o.pending_max) {
        s->n_refused_full++;
        return OPSC_EQUEUE_FULL;
    }
    store_batch_t *b = open_batch(s);
    if (!b) {
        return OPSC_ENOMEM;
    }
    size_t before = batch_held(b);
    if (kind != OPSC_CHANGE_REPLY && !e) {
        e = batch_add(b, id);
        if (!e) {
            return OPSC_ENOMEM;
        }
    }
    switch (kind) {
    case OPSC_CHANGE_CREATE:
        if (e->create) {
            /* The same CREATE again (a replay): the first one stands. */
            s->n_coalesced++;
            opsc_change_free(c);
        } else {
            e->create = c->alert;
            c->alert = NULL;
            opsc_change_free(c);
        }
        break;
    case OPSC_CHANGE_REPEAT:
        if (e->has_repeat || e->create) {
            s->n_coalesced++;
        }
        fold_repeat(e, c);
        opsc_change_free(c);
        break;
    case OPSC_CHANGE_STATUS:
        fold_status(e, c);
        b->nstatus++;
        break;
    case OPSC_CHANGE_UPDATE:
        if (e->up || e->create) {
            s->n_coalesced++;
        }
        fold_update(s, e, c);
        b->nstatus++;
        break;
    case OPSC_CHANGE_REPLY:
        c->next = NULL;
        if (b->rtail) {
            b->rtail->next = c;
        } else {
            b->rhead = c;
        }
        b->rtail = c;
        b->nreplies++;
        break;
    }
    size_t after = batch_held(b);
    s->held += after - before;
    s->n_received[kind]++;
    b->nchanges++;
    b->last_seq = ++s->seq;
    if (after >= s->o.batch_max) {
        seal(s, b);
        kick(s);
    } else if (before == 0) {
        if (s->o.flush_interval_ms > 0) {
            uv_timer_start(&s->flush_timer, on_flush_timer, (uint64_t)s->o.flush_interval_ms, 0);
        } else {
            s->due = 1;
            kick(s);
        }
    }
    return 0;
}

/* ---- building one transaction ---------------------------------------------------- */

static const char *default_action(opsc_status_t st) {
    switch (st) {
    case OPSC_STATUS_RESOLVED:
        return "resolved";
    case OPSC_STATUS_ACKNOWLEDGED:
        return "acknowledged";
    case OPSC_STATUS_SUPPRESSED:
        return "suppressed";
    case OPSC_STATUS_EXPIRED:
        return "expired";
    default:
        return "reopened";
    }
}

static void history_id_created(const opsc_uuid_t *alert, opsc_uuid_t *out) {
    unsigned char name[16 + 7];
    memcpy(name, alert->b, 16);
    memcpy(name + 16, "created", 7);
    uuid_generate_sha1(out->b, history_ns, (const char *)name, sizeof(name));
}

/* Name: alert id, action, old and new status, time: the same transition replayed gets the
 * same id (ON CONFLICT DO NOTHING), two different transitions get different ones. */
static void history_id_status(const opsc_uuid_t *alert, const opsc_change_t *c, const char *action,
                              opsc_uuid_t *out) {
    unsigned char name[16 + 32 + 1 + 2 + 8];
    size_t alen = strnlen(action, 32);
    size_t n = 0;
    memcpy(name, alert->b, 16);
    n = 16;
    memcpy(name + n, action, alen);
    n += alen;
    name[n++] = 0;
    name[n++] = (unsigned char)c->old_status;
    name[n++] = (unsigned char)c->new_status;
    uint64_t at = (uint64_t)c->at_us;
    for (int i = 0; i < 8; i++) {
        name[n++] = (unsigned char)(at >> (8 * i));
    }
    uuid_generate_sha1(out->b, history_ns, (const char *)name, n);
}

/* The `created` history row's columns of the INSERT: id, status at creation, changes. */
static void created_history(opsc_store_t *s, col_t *k, const opsc_alert_t *a) {
    opsc_uuid_t hid;
    history_id_created(&a->id, &hid);
    c_uuid(k++, &hid);
    c_text(k++, opsc_status_name(a->status));
    opsc_buf_t *cb = &s->scratch;
    opsc_buf_reset(cb);
    jw_t w = {cb, 0};
    jw_lit(&w, "{\"status\":");
    jw_str(&w, opsc_status_name(a->status));
    jw_lit(&w, ",\"severity\":");
    jw_str(&w, opsc_severity_name(a->severity));
    if (a->correlation_rule) {
        jw_lit(&w, ",\"correlation_rule\":");
        jw_str(&w, a->correlation_rule);
    }
    jw_raw(&w, "}", 1);
    if (w.err) {
        k->err = w.err;
        return;
    }
    opsc_pg_array_jsonb(k, cb->base, cb->len);
}

static void emit_alert(opsc_store_t *s, col_t *k, const store_entry_t *e) {
    const opsc_alert_t *a = e->create;
    opsc_status_t status = e->st_last ? e->st_last->new_status : a->status;
    uint32_t count = a->occurrence_count;
    int64_t last_at = a->last_occurrence_at_us;
    if (e->has_repeat) {
        count = e->rep_count > count ? e->rep_count : count;
        last_at = e->rep_at_us > last_at ? e->rep_at_us : last_at;
    }
    c_uuid(k++, &a->id);
    c_text(k++, a->source_system);
    c_text(k++, a->source_alert_id);
    c_text(k++, a->device_ip);
    c_text(k++, a->device_name);
    c_text(k++, opsc_severity_name(a->severity));
    c_text(k++, opsc_category_name(a->category));
    c_text(k++, a->alert_type);
    c_text(k++, opsc_level_name(a->impact));
    c_text(k++, opsc_level_name(a->urgency));
    c_priority(k++, a->priority);
    c_text(k++, a->title);
    c_text(k++, a->message);
    c_text(k++, opsc_status_name(status));
    opsc_pg_array_bool(k++, a->is_clear);
    c_time(k++, a->occurred_at_us);
    c_time(k++, a->received_at_us);
    c_time(k++, e->st_ack ? e->st_ack->at_us : a->acknowledged_at_us);
    if (e->st_ack) {
        c_arr(k++, e->st_ack->actor, sizeof(e->st_ack->actor));
    } else {
        c_text(k++, a->acknowledged_by);
    }
    /* A resolve followed by a reopen in the same batch leaves no resolution behind. */
    int closed = !e->st_last || status == OPSC_STATUS_RESOLVED || status == OPSC_STATUS_EXPIRED;
    c_time(k++, !closed ? 0 : e->st_resolved ? e->st_resolved->at_us : a->resolved_at_us);
    if (closed && e->st_resolved) {
        c_arr(k++, e->st_resolved->actor, sizeof(e->st_resolved->actor));
    } else {
        c_text(k++, closed ? a->resolved_by : NULL);
    }
    if (e->st_corr) {
        c_uuid(k++, &e->st_corr->correlated_to_id);
    } else if (a->has_correlated_to) {
        c_uuid(k++, &a->correlated_to_id);
    } else {
        opsc_pg_array_null(k++);
    }
    if (e->st_rule) {
        c_arr(k++, e->st_rule->rule, sizeof(e->st_rule->rule));
    } else {
        c_text(k++, a->correlation_rule);
    }
    c_tags(s, k++, a->tags, a->ntags);
    c_json(s, k++, a->custom_fields_json);
    c_json(s, k++, a->raw_data_json);
    if (a->fingerprint[0]) {
        c_arr(k++, a->fingerprint, sizeof(a->fingerprint));
    } else {
        opsc_pg_array_null(k++);
    }
    opsc_pg_array_int4(k++, count > INT32_MAX ? INT32_MAX : (int32_t)count);
    c_time(k++, last_at);
    created_history(s, k, a);
}

/* The final state of an entry's STATUS changes; NULL means "unchanged". */
static void emit_status(col_t *k, const store_entry_t *e) {
    const opsc_change_t *last = e->st_last;
    c_uuid(k++, &e->id);
    c_text(k++, opsc_status_name(last->new_status));
    if (e->st_resolved) {
        c_time(k++, e->st_resolved->at_us);
        c_arr(k++, e->st_resolved->actor, sizeof(e->st_resolved->actor));
    } else {
        opsc_pg_array_null(k++);
        opsc_pg_array_null(k++);
    }
    if (e->st_ack) {
        c_time(k++, e->st_ack->at_us);
        c_arr(k++, e->st_ack->actor, sizeof(e->st_ack->actor));
    } else {
        opsc_pg_array_null(k++);
        opsc_pg_array_null(k++);
    }
    if (e->st_rule) {
        c_arr(k++, e->st_rule->rule, sizeof(e->st_rule->rule));
    } else {
        opsc_pg_array_null(k++);
    }
    if (e->st_corr) {
        c_uuid(k++, &e->st_corr->correlated_to_id);
    } else {
        opsc_pg_array_null(k++);
    }
    opsc_pg_array_bool(k++, last->new_status == OPSC_STATUS_ACTIVE && !last->rule[0] &&
                                !last->has_correlated_to);
}

static void emit_repeat(col_t *k, const store_entry_t *e) {
    c_uuid(k++, &e->id);
    opsc_pg_array_int4(k++, e->rep_count > INT32_MAX ? INT32_MAX : (int32_t)e->rep_count);
    c_time(k++, e->rep_at_us);
}

static void jw_strv(jw_t *w, char *const *v, size_t n) {
    jw_raw(w, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i) {
            jw_raw(w, ",", 1);
        }
        jw_str(w, v[i]);
    }
    jw_raw(w, "]", 1);
}

static void jw_priority(jw_t *w, int prio) {
    char p[8];
    if (prio < 1 || prio > 5) {
        jw_lit(w, "null");
        return;
    }
    snprintf(p, sizeof(p), "\"P%d\"", prio);
    jw_lit(w, p);
}

/* The merged UPDATE of an entry without a CREATE: only masked keys (absent = NULL, ignored). */
static void emit_update(opsc_store_t *s, jw_t *w, const store_entry_t *e) {
    const opsc_alert_update_t *u = e->up;
    int f = 1;
    jw_raw(w, "{", 1);
    jw_key(w, &f, "id");
    jw_uuid(w, &e->id);
    jw_key(w, &f, "m");
    jw_u64(w, u->mask & OPSC_UPD_ALL);
    if (u->mask & OPSC_UPD_TAGS) {
        jw_key(w, &f, "tags_add");
        jw_strv(w, u->tags_add, u->ntags_add);
        jw_key(w, &f, "tags_del");
        jw_strv(w, u->tags_del, u->ntags_del);
    }
    if (u->mask & OPSC_UPD_CUSTOM_FIELDS) {
        jw_key(w, &f, "cf");
        jw_json_text(s, w, u->custom_patch ? u->custom_patch : "{}");
    }
    if (u->mask & OPSC_UPD_IMPACT) {
        jw_key(w, &f, "impact");
        jw_str(w, opsc_level_name(u->impact));
    }
    if (u->mask & OPSC_UPD_URGENCY) {
        jw_key(w, &f, "urgency");
        jw_str(w, opsc_level_name(u->urgency));
    }
    if (u->mask & OPSC_UPD_PRIORITY) {
        jw_key(w, &f, "priority");
        jw_priority(w, u->priority);
    }
    if (u->mask & OPSC_UPD_DEVICE_NAME) {
        jw_key(w, &f, "device_name");
        jw_str(w, u->device_name);
    }
    if (u->mask & OPSC_UPD_TITLE) {
        jw_key(w, &f, "title");
        jw_str(w, u->title);
    }
    if (u->mask & OPSC_UPD_SEVERITY) {
        jw_key(w, &f, "severity");
        jw_str(w, opsc_severity_name(u->severity));
    }
    jw_raw(w, "}", 1);
}

/* {"old": x, "new": y} of one scalar field; "old" only when known. */
#define UPD_PAIR(bit, name, write_old, write_new)                                                  \
    if (u->mask & (bit)) {                                                                         \
        jw_key(w, &f, name);                                                                       \
        jw_raw(w, "{", 1);                                                                         \
        if (u->old_mask & (bit)) {                                                                 \
            jw_lit(w, "\"old\":");                                                                 \
            write_old;                                                                             \
            jw_raw(w, ",", 1);                                                                     \
        }                                                                                          \
        jw_lit(w, "\"new\":");                                                                     \
        write_new;                                                                                 \
        jw_raw(w, "}", 1);                                                                         \
    }

/* alert_history.changes of one UPDATE change. */
static void update_changes(opsc_store_t *s, jw_t *w, const opsc_alert_update_t *u) {
    int f = 1;
    jw_raw(w, "{", 1);
    if (u->mask & OPSC_UPD_TAGS) {
        jw_key(w, &f, "tags");
        jw_lit(w, "{\"added\":");
        jw_strv(w, u->tags_add, u->ntags_add);
        jw_lit(w, ",\"removed\":");
        jw_strv(w, u->tags_del, u->ntags_del);
        jw_raw(w, "}", 1);
    }
    if (u->mask & OPSC_UPD_CUSTOM_FIELDS) {
        jw_key(w, &f, "custom_fields");
        jw_lit(w, "{\"new\":");
        jw_json_text(s, w, u->custom_patch ? u->custom_patch : "{}");
        jw_raw(w, "}", 1);
    }
    UPD_PAIR(OPSC_UPD_IMPACT, "impact", jw_str(w, opsc_level_name(u->old_impact)),
             jw_str(w, opsc_level_name(u->impact)))
    UPD_PAIR(OPSC_UPD_URGENCY, "urgency", jw_str(w, opsc_level_name(u->old_urgency)),
             jw_str(w, opsc_level_name(u->urgency)))
    UPD_PAIR(OPSC_UPD_PRIORITY, "priority", jw_priority(w, u->old_priority),
             jw_priority(w, u->priority))
    UPD_PAIR(OPSC_UPD_DEVICE_NAME, "device_name", jw_str(w, u->old_device_name),
             jw_str(w, u->device_name))
    UPD_PAIR(OPSC_UPD_TITLE, "title", jw_str(w, u->old_title), jw_str(w, u->title))
    UPD_PAIR(OPSC_UPD_SEVERITY, "severity", jw_str(w, opsc_severity_name(u->old_severity)),
             jw_str(w, opsc_severity_name(u->severity)))
    jw_raw(w, "}", 1);
}
#undef UPD_PAIR

/* Name: alert id, "updated", time and the changes text: a replay gets the same id. */
static void history_id_update(const opsc_uuid_t *alert, int64_t at_us, const opsc_buf_t *changes,
                              opsc_uuid_t *out) {
    size_t n = 16 + 8 + 8 + changes->len;
    unsigned char *name = opsc_malloc(n);
    if (!name) {
        opsc_uuid_generate(out); /* out of memory: a replay may then add a second row */
        return;
    }
    memcpy(name, alert->b, 16);
    memcpy(name + 16, "updated", 8);
    uint64_t at = (uint64_t)at_us;
    for (int i = 0; i < 8; i++) {
        name[24 + i] = (unsigned char)(at >> (8 * i));
    }
    memcpy(name + 32, changes->base, changes->len);
    uuid_generate_sha1(out->b, history_ns, (const char *)name, n);
    opsc_free(name);
}

/* One alert_history row; `changes` is JSON text. */
static void history_row(col_t *k, const opsc_uuid_t *hid, const opsc_uuid_t *alert,
                        const char *action, const char *old_status, const char *new_status,
                        const char *actor, size_t actor_cap, const char *changes,
                        size_t changes_len, int64_t at_us, const char *notes) {
    c_uuid(k++, hid);
    c_uuid(k++, alert);
    c_text(k++, action);
    c_text(k++, old_status);
    c_text(k++, new_status);
    if (actor && actor[0]) {
        c_arr(k++, actor, actor_cap);
    } else {
        c_text(k++, "system");
    }
    opsc_pg_array_jsonb(k++, changes, changes_len);
    c_time(k++, at_us);
    c_text(k++, notes);
}

static size_t emit_update_history(opsc_store_t *s, col_t *k, const store_entry_t *e) {
    size_t rows = 0;
    for (const opsc_change_t *c = e->up_head; c; c = c->next) {
        opsc_buf_reset(&s->scratch);
        jw_t cw = {&s->scratch, 0};
        update_changes(s, &cw, c->upd);
        if (cw.err) {
            k[0].err = cw.err;
            break;
        }
        opsc_uuid_t hid;
        history_id_update(&e->id, c->at_us, &s->scratch, &hid);
        history_row(k, &hid, &e->id, "updated", NULL, NULL, c->actor, sizeof(c->actor),
                    s->scratch.base, s->scratch.len, c->at_us, NULL);
        rows++;
    }
    return rows;
}

/* History rows of an entry's STATUS changes ('created' goes with the INSERT). */
static size_t emit_history(opsc_store_t *s, col_t *k, const store_entry_t *e) {
    size_t rows = 0;
    opsc_buf_t *cb = &s->scratch;
    for (const opsc_change_t *c = e->st_head; c; c = c->next) {
        const char *action = c->action[0] ? c->action : default_action(c->new_status);
        size_t alen = strnlen(action, sizeof(c->action));
        char act[33];
        memcpy(act, action, alen);
        act[alen] = '\0';
        opsc_uuid_t hid;
        history_id_status(&e->id, c, act, &hid);
        opsc_buf_reset(cb);
        jw_t w = {cb, 0};
        jw_lit(&w, "{\"status\":{\"old\":");
        jw_str(&w, opsc_status_name(c->old_status));
        jw_lit(&w, ",\"new\":");
        jw_str(&w, opsc_status_name(c->new_status));
        jw_raw(&w, "}", 1);
        if (c->rule[0]) {
            jw_lit(&w, ",\"correlation_rule\":");
            jw_arr(&w, c->rule, sizeof(c->rule));
        }
        if (c->has_correlated_to) {
            jw_lit(&w, ",\"correlated_to_id\":");
            jw_uuid(&w, &c->correlated_to_id);
        }
        jw_raw(&w, "}", 1);
        if (w.err) {
            k[0].err = w.err;
            return rows;
        }
        history_row(k, &hid, &e->id, act, opsc_status_name(c->old_status),
                    opsc_status_name(c->new_status), c->actor, sizeof(c->actor), cb->base, cb->len,
                    c->at_us, c->notes);
        rows++;
    }
    return rows;
}

/*
 * Decide each entry's place: `pre` status rows (leaving 'active', not pointing
 * at an alert created in this batch) go before the INSERT. The order array
 * lists entries as the statements run them: pre-status only, creates, the
 * rest; first-seen order within each group. Bisection keeps this order.
 */
static int batch_prepare(store_batch_t *b) {
    b->order = opsc_malloc((b->ne ? b->ne : 1) * sizeof(uint32_t));
    if (!b->order) {
        return OPSC_ENOMEM;
    }
    for (size_t i = 0; i < b->ne; i++) {
        store_entry_t *e = &b->e[i];
        e->pre = 0;
        if (e->st_last && e->st_last->new_status != OPSC_STATUS_ACTIVE) {
            const store_entry_t *t =
                e->st_corr ? batch_find(b, &e->st_corr->correlated_to_id) : NULL;
            e->pre = !(t && t->create);
        }
    }
    size_t n = 0;
    for (int group = 0; group < 3; group++) {
        for (size_t i = 0; i < b->ne; i++) {
            const store_entry_t *e = &b->e[i];
            int g = e->create ? 1 : (e->pre ? 0 : 2);
            if (g == group) {
                b->order[n++] = (uint32_t)i;
            }
        }
    }
    return 0;
}

static int stack_reserve(store_batch_t *b, size_t n) {
    if (n <= b->capstack) {
        return 0;
    }
    size_t ncap = b->capstack ? b->capstack * 2 : 8;
    while (ncap < n) {
        ncap *= 2;
    }
    store_range_t *v = opsc_realloc(b->stack, ncap * sizeof(*v));
    if (!v) {
        return OPSC_ENOMEM;
    }
    b->stack = v;
    b->capstack = ncap;
    return 0;
}

/* Push a range; the caller reserved room (stack_reserve). */
static void push_range(store_batch_t *b, uint32_t lo, uint32_t hi) {
    b->stack[b->nstack].lo = lo;
    b->stack[b->nstack].hi = hi;
    b->nstack++;
}

/*
 * The request for the range on top of the stack. *out NULL with 0: nothing
 * to write in that range.
 */
static int build_request(opsc_store_t *s, store_batch_t *b, opsc_pg_batch_t **out) {
    *out = NULL;
    store_range_t r = b->stack[b->nstack - 1];
    size_t rows[ST_COUNT] = {0};
    for (int k = 0; k < ST_COUNT; k++) {
        for (size_t c = 0; c < shapes[k].ncols; c++) {
            opsc_pg_array_begin(&s->col[k][c], shapes[k].types[c]);
        }
        b->item[k] = -1;
    }
    opsc_buf_reset(&s->jb);
    jw_t uw = {&s->jb, 0};
    jw_raw(&uw, "[", 1);
    b->sent_creates = 0;
    for (uint32_t i = r.lo; i < r.hi; i++) {
        const store_entry_t *e = &b->e[b->order[i]];
        if (e->rejected) {
            continue;
        }
        if (e->st_last) {
            int k = e->pre ? ST_PRE : ST_POST;
            rows[k]++;
            emit_status(s->col[k], e);
        }
        if (e->create) {
            rows[ST_INSERT]++;
            emit_alert(s, s->col[ST_INSERT], e);
            b->sent_creates++;
        }
        if (e->has_repeat) {
            rows[ST_REPEAT]++;
            emit_repeat(s->col[ST_REPEAT], e);
        }
        if (e->up) {
            if (rows[ST_UPDATE]++) {
                jw_raw(&uw, ",", 1);
            }
            emit_update(s, &uw, e);
        }
        rows[ST_HISTORY] += emit_history(s, s->col[ST_HISTORY], e);
        rows[ST_HISTORY] += emit_update_history(s, s->col[ST_HISTORY], e);
    }
    jw_raw(&uw, "]", 1);
    if (uw.err) {
        return uw.err;
    }
    size_t total = 0;
    for (int k = 0; k < ST_COUNT; k++) {
        for (size_t c = 0; c < shapes[k].ncols; c++) {
            int rc = opsc_pg_array_finish(&s->col[k][c]);
            if (rc != 0) {
                return rc;
            }
        }
        total += rows[k];
    }
    if (total == 0) {
        return 0;
    }
    opsc_pg_batch_t *pb = opsc_pg_batch_create(s->pool);
    if (!pb) {
        return OPSC_ENOMEM;
    }
    int idx = 0;
    for (int k = 0; k < ST_COUNT; k++) {
        if (rows[k] == 0) {
            continue;
        }
        int rc;
        if (shapes[k].ncols == 0) {
            const char *param = s->jb.base;
            rc = opsc_pg_batch_add_exec(pb, s->stmt[k], 1, &param);
        } else {
            const char *params[MAX_COLS];
            int lengths[MAX_COLS];
            for (size_t c = 0; c < shapes[k].ncols; c++) {
                params[c] = s->col[k][c].b.base;
                lengths[c] = (int)s->col[k][c].b.len;
            }
            const opsc_pg_stmt_t *st =
                k == ST_INSERT && !b->safe_insert ? s->stmt_insert_fast : s->stmt[k];
            rc = opsc_pg_batch_add_exec_bin(pb, st, (int)shapes[k].ncols, params, lengths);
        }
        if (rc != 0) {
            opsc_pg_batch_destroy(pb);
            return rc;
        }
        b->item[k] = idx++;
    }
    *out = pb;
    return 0;
}

/* ---- completion ---------------------------------------------------------------------- */

static int is_data_error(const char *sqlstate) {
    return sqlstate && sqlstate[0] == '2' && (sqlstate[1] == '2' || sqlstate[1] == '3');
}

static int backoff_ms(opsc_store_t *s) {
    int base = s->retry_ms ? s->retry_ms : s->o.retry_min_ms;
    uint64_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s->rng = x;
    int delay = base / 2 + (int)(x % (uint64_t)(base / 2 + 1));
    s->retry_ms = base * 2 > s->o.retry_max_ms ? s->o.retry_max_ms : base * 2;
    return delay < 1 ? 1 : delay;
}

static void start_batch(opsc_store_t *s, store_batch_t *b);

static void on_retry(uv_timer_t *t) {
    opsc_store_t *s = t->data;
    store_batch_t *b = s->first;
    if (b && b->waiting) {
        b->waiting = 0;
        if (b->started) {
            send_range(s, b);
        } else {
            start_batch(s, b);
        }
    }
}

static void ahead_back(opsc_store_t *s, store_batch_t *b);

static void retry_later(opsc_store_t *s, store_batch_t *b, int err, const char *sqlstate,
                        const char *message) {
    if (b != s->first) {
        ahead_back(s, b); /* the retry timer serves the first batch only */
        return;
    }
    int delay = backoff_ms(s);
    b->attempts++;
    b->waiting = 1;
    s->n_retries++;
    unsigned long long suppressed = 0;
    char note[64];
    if (opsc_log_ratelimit_ok(&s->rl_retry, &suppressed)) {
        opsc_log_warn(
            STORE_LOG, "batch of %zu items not written (%s%s%s%s%s); attempt %d, next in %d ms%s",
            batch_held(b), opsc_err_name(err), sqlstate && *sqlstate ? ", SQLSTATE " : "",
            sqlstate ? sqlstate : "", message && *message ? ": " : "", message ? message : "",
            b->attempts, delay, suppressed_note(suppressed, note, sizeof(note)));
    }
    uv_timer_start(&s->retry_timer, on_retry, (uint64_t)delay, 0);
}

static void account(opsc_store_t *s, store_batch_t *b, const opsc_pg_res_t *res) {
    const opsc_pg_res_t *it;
    long n;
    if (b->item[ST_PRE] >= 0 && (it = opsc_pg_res_item(res, (size_t)b->item[ST_PRE])) &&
        (n = opsc_pg_res_cmd_tuples(it)) > 0) {
        s->n_rows_status += (uint64_t)n;
    }
    if (b->item[ST_POST] >= 0 && (it = opsc_pg_res_item(res, (size_t)b->item[ST_POST])) &&
        (n = opsc_pg_res_cmd_tuples(it)) > 0) {
        s->n_rows_status += (uint64_t)n;
    }
    if (b->item[ST_UPDATE] >= 0 && (it = opsc_pg_res_item(res, (size_t)b->item[ST_UPDATE])) &&
        (n = opsc_pg_res_cmd_tuples(it)) > 0) {
        s->n_rows_update += (uint64_t)n;
    }
    if (b->item[ST_REPEAT] >= 0 && (it = opsc_pg_res_item(res, (size_t)b->item[ST_REPEAT])) &&
        (n = opsc_pg_res_cmd_tuples(it)) > 0) {
        s->n_rows_repeat += (uint64_t)n;
    }
    if (b->item[ST_HISTORY] >= 0 && (it = opsc_pg_res_item(res, (size_t)b->item[ST_HISTORY])) &&
        (n = opsc_pg_res_cmd_tuples(it)) > 0) {
        s->n_rows_history += (uint64_t)n;
    }
    if (b->item[ST_INSERT] >= 0 && (it = opsc_pg_res_item(res, (size_t)b->item[ST_INSERT]))) {
        int skipped = opsc_pg_res_ntuples(it);
        for (int i = 0; i < skipped; i++) {
            const char *existed = opsc_pg_res_value(it, i, 1);
            if (existed && existed[0] == 't') {
                s->n_skip_replay++;
                continue;
            }
            s->n_skip_fingerprint++;
            unsigned long long suppressed = 0;
            char note[64];
            if (opsc_log_ratelimit_ok(&s->rl_skip, &suppressed)) {
                const char *fp = opsc_pg_res_value(it, i, 2);
                opsc_log_warn(STORE_LOG,
                              "alert %s not stored: fingerprint %s is already active in the "
                              "database under another id (another collector); its changes "
                              "will update nothing%s",
                              opsc_pg_res_value(it, i, 0), fp ? fp : "",
                              suppressed_note(suppressed, note, sizeof(note)));
            }
        }
        if ((size_t)skipped <= b->sent_creates) {
            /* each inserted alert came with its `created` history row */
            s->n_rows_created += b->sent_creates - (size_t)skipped;
            s->n_rows_history += b->sent_creates - (size_t)skipped;
        }
    }
}

static void batch_done(opsc_store_t *s, store_batch_t *b);

/* The range on top is finished (written or rejected): go on with the next one. */
static void advance(opsc_store_t *s, store_batch_t *b) {
    b->nstack--;
    if (b->nstack == 0) {
        batch_done(s, b);
    } else {
        send_range(s, b);
    }
}

static void reject_entry(opsc_store_t *s, store_entry_t *e, const char *sqlstate,
                         const char *message) {
    e->rejected = 1;
    s->n_rejected++;
    unsigned long long suppressed = 0;
    char note[64];
    if (opsc_log_ratelimit_ok(&s->rl_reject, &suppressed)) {
        char id[37];
        opsc_uuid_format(&e->id, id);
        opsc_log_err(STORE_LOG,
                     "alert %s: changes rejected by the database (create %d, status %d, "
                     "repeat %d): SQLSTATE %s: %s%s",
                     id, e->create != NULL, e->st_last != NULL, e->has_repeat, sqlstate, message,
                     suppressed_note(suppressed, note, sizeof(note)));
    }
}

static void on_request_done(int err, const opsc_pg_res_t *res, void *arg) {
    store_batch_t *b = arg;
    b->in_pool = 0;
    opsc_store_t *s = b->s;
    if (!s) {
        batch_free(b); /* orphaned by close */
        return;
    }
    s->n_txns++;
    if (err == 0) {
        s->retry_ms = 0;
        account(s, b, res);
        advance(s, b);
        return;
    }
    if (b != s->first) {
        ahead_back(s, b); /* rolled back: it goes again in its turn, in order */
        return;
    }
    const char *sqlstate = opsc_pg_res_sqlstate(res);
    const char *message = opsc_pg_res_message(res);
    if (err == OPSC_EDB_QUERY && !b->safe_insert && b->item[ST_INSERT] >= 0 && sqlstate &&
        strcmp(sqlstate, "23505") == 0) {
        /* A replayed or foreign row: the same range again, inserting with conflict handling. */
        b->safe_insert = 1;
        s->n_safe_inserts++;
        send_range(s, b);
        return;
    }
    if (err == OPSC_EDB_QUERY && is_data_error(sqlstate)) {
        store_range_t r = b->stack[b->nstack - 1];
        if (!b->isolating) {
            b->isolating = 1;
            s->n_isolations++;
            opsc_log_warn(STORE_LOG,
                          "batch of %u entries failed: SQLSTATE %s: %s; isolating the bad rows",
                          r.hi - r.lo, sqlstate, message);
        }
        if (r.hi - r.lo == 1) {
            reject_entry(s, &b->e[b->order[r.lo]], sqlstate, message);
            advance(s, b);
            return;
        }
        if (stack_reserve(b, b->nstack + 1) != 0) {
            retry_later(s, b, OPSC_ENOMEM, "", ""); /* the whole range again, later */
            return;
        }
        /* The first half runs first: the order of the entries is kept. */
        uint32_t mid = r.lo + (r.hi - r.lo) / 2;
        b->nstack--;
        push_range(b, mid, r.hi);
        push_range(b, r.lo, mid);
        send_range(s, b);
        return;
    }
    if (err == OPSC_ESHUTDOWN) {
        if (s->closing) {
            finish_close(s);
            return;
        }
        b->stalled = 1;
        opsc_log_err(STORE_LOG, "database pool closed under the store: %zu items not written",
                     s->held);
        return;
    }
    /* Connection lost, server shutting down, serialization failure, ...: same batch again. */
    retry_later(s, b, err, sqlstate, message);
}

static void send_range(opsc_store_t *s, store_batch_t *b) {
    while (b->nstack > 0) {
        opsc_pg_batch_t *pb = NULL;
        int rc = build_request(s, b, &pb);
        if (rc != 0) {
            retry_later(s, b, rc, "", "");
            return;
        }
        if (!pb) {
            b->nstack--; /* nothing to write in this range */
            continue;
        }
        rc = opsc_pg_batch_submit(pb, b->role, on_request_done, b);
        if (rc == 0) {
            b->in_pool = 1;
            return;
        }
        if (rc == OPSC_ESHUTDOWN) {
            if (s->closing) {
                finish_close(s);
            } else {
                b->stalled = 1;
                opsc_log_err(STORE_LOG, "database pool closed: %zu items not written", s->held);
            }
            return;
        }
        retry_later(s, b, rc, "", "");
        return;
    }
    batch_done(s, b);
}

/* Free the statement buffers larger than `keep` bytes (0: all of them). */
static void store_trim_buffers(opsc_store_t *s, size_t keep) {
    for (int k = 0; k < ST_COUNT; k++) {
        for (size_t c = 0; c < MAX_COLS; c++) {
            if (s->col[k][c].b.cap > keep || keep == 0) {
                opsc_pg_array_free(&s->col[k][c]);
            }
        }
    }
    opsc_buf_t *bufs[] = {&s->jb, &s->scratch};
    for (size_t i = 0; i < 2; i++) {
        if (bufs[i]->cap > keep || keep == 0) {
            opsc_buf_free(bufs[i]);
        }
    }
}

static void batch_finish(opsc_store_t *s, store_batch_t *b);

/*
 * A batch is written. Its replies and the durable sequence go out in FIFO
 * order: a batch written ahead waits for the one before it.
 */
static void batch_done(opsc_store_t *s, store_batch_t *b) {
    if (b != s->first) {
        b->done_ahead = 1;
        return;
    }
    batch_finish(s, b);
    while (!s->finalizing && s->first && s->first->done_ahead) {
        batch_finish(s, s->first);
    }
    if (s->closing && s->held == 0) {
        finish_close(s);
        return;
    }
    kick(s);
}

static const char *entry_event(const store_entry_t *e) {
    if (e->create) {
        return "alert.created"; /* its row already holds what the batch folded in */
    }
    if (e->st_last) {
        switch (e->st_last->new_status) {
        case OPSC_STATUS_RESOLVED:
            return "alert.resolved";
        case OPSC_STATUS_SUPPRESSED:
            return "alert.suppressed";
        case OPSC_STATUS_ACKNOWLEDGED:
            return "alert.acknowledged";
        case OPSC_STATUS_EXPIRED:
            return "alert.expired";
        case OPSC_STATUS_ACTIVE:
            return "alert.reopened";
        default:
            break;
        }
    }
    return "alert.updated";
}

/* The live feed's seam: which alerts this batch committed, and how. */
static void report_committed(opsc_store_t *s, const store_batch_t *b) {
    opsc_store_committed_t one[64],
        *items = b->ne <= 64 ? one : opsc_malloc(b->ne * sizeof(*items));
    size_t n = 0;
    if (!items) {
        return; /* counted by nobody: the feed's clients resync on their next snapshot */
    }
    for (size_t i = 0; i < b->ne; i++) {
        if (!b->e[i].rejected) {
            items[n].id = b->e[i].id;
            items[n].event = entry_event(&b->e[i]);
            n++;
        }
    }
    if (n > 0) {
        s->commit_cb(items, n, s->commit_arg);
    }
    if (items != one) {
        opsc_free(items);
    }
}

static void batch_finish(opsc_store_t *s, store_batch_t *b) {
    /* Unlink first: callbacks below may submit (into the open batch). */
    s->first = b->next;
    if (!s->first) {
        s->last = NULL;
    }
    if (s->open == b) {
        s->open = NULL;
    }
    s->held -= batch_held(b);
    double lat = (double)(uv_hrtime() - b->t0_ns) / 1e9;
    s->n_batches++;
    s->last_batch = b->nchanges;
    if (b->nchanges > s->max_batch) {
        s->max_batch = b->nchanges;
    }
    s->sum_size += (double)b->nchanges;
    opsc_metrics_observe(size_le, s->size_bucket, SIZE_BUCKETS, (double)b->nchanges);
    s->last_lat_s = lat;
    if (lat > s->max_lat_s) {
        s->max_lat_s = lat;
    }
    s->sum_lat_s += lat;
    opsc_metrics_observe(lat_le, s->lat_bucket, LAT_BUCKETS, lat);
    opsc_change_t *r = b->rhead;
    b->rhead = b->rtail = NULL;
    while (r) {
        opsc_change_t *n = r->next;
        r->next = NULL;
        if (s->reply_cb) {
            s->reply_cb(r, s->reply_arg);
        } else {
            opsc_change_free(r);
        }
        r = n;
    }
    if (s->commit_cb) {
        report_committed(s, b);
    }
    if (s->durable_cb) {
        s->durable_cb(b->last_seq, s->durable_arg);
    }
    batch_free(b);
    store_trim_buffers(s, 8u << 20); /* one huge batch does not pin its buffers */
}

static void start_batch(opsc_store_t *s, store_batch_t *b) {
    if (!b->started) {
        if (batch_prepare(b) != 0 || stack_reserve(b, 1) != 0) {
            opsc_free(b->order);
            b->order = NULL;
            b->nstack = 0;
            retry_later(s, b, OPSC_ENOMEM, "", "");
            return;
        }
        if (b->ne > 0) {
            push_range(b, 0, (uint32_t)b->ne);
        }
        b->started = 1;
        b->t0_ns = uv_hrtime();
    }
    send_range(s, b);
}

/*
 * Whether `b` may be written while `before` is in flight: new alerts only on
 * both sides, no alert in both, nothing in `b` pointing at an alert of
 * `before` (correlated_to_id). Then the two transactions touch disjoint rows
 * and take no locks the other waits for. With status changes on either side
 * they can: a resolve and a new alert with the same fingerprint meet in the
 * partial unique index, and two such transactions were measured deadlocking
 * (40P01, a second each) at 150,000 mixed traps/s. A batch ahead that fails
 * anyway goes back to wait its turn (ahead_back): never a wrong row.
 */
static int may_go_ahead(const store_batch_t *before, const store_batch_t *b) {
    for (size_t i = 0; i < before->ne; i++) {
        if (!before->e[i].create) {
            return 0;
        }
    }
    for (size_t i = 0; i < b->ne; i++) {
        if (!b->e[i].create) {
            return 0;
        }
    }
    for (size_t i = 0; i < b->ne; i++) {
        const store_entry_t *e = &b->e[i];
        if (batch_find(before, &e->id) ||
            (e->create && e->create->has_correlated_to &&
             batch_find(before, &e->create->correlated_to_id)) ||
            (e->st_corr && batch_find(before, &e->st_corr->correlated_to_id))) {
            return 0;
        }
    }
    return 1;
}

/*
 * While the first batch is in flight, the full batch behind it may go too
 * (may_go_ahead), on the other writing connection (OPSC_PG_BULK): two
 * transactions side by side, two backends' worth of CPU. It is finished in
 * FIFO order (batch_done); anything that goes wrong with it sends it back
 * to wait its turn.
 */
static void pump_ahead(opsc_store_t *s) {
    store_batch_t *first = s->first;
    store_batch_t *b = first ? first->next : NULL;
    if (!b || !b->sealed || b->started || b->in_pool || b->waiting || b->ahead_refused ||
        !first->in_pool || first->isolating || first->waiting) {
        return;
    }
    if (!may_go_ahead(first, b)) {
        b->ahead_refused = 1;
        return;
    }
    b->ahead = 1;
    b->role = first->role == OPSC_PG_BULK ? OPSC_PG_WRITER : OPSC_PG_BULK;
    s->n_ahead++;
    start_batch(s, b);
}

/* A batch written ahead failed: forget the attempt, it goes again in its turn. */
static void ahead_back(opsc_store_t *s, store_batch_t *b) {
    opsc_free(b->order);
    b->order = NULL;
    b->nstack = 0;
    b->started = 0;
    b->isolating = 0;
    b->ahead = 0;
    b->ahead_refused = 1;
    b->in_pool = 0;
    b->role = OPSC_PG_WRITER;
    s->n_ahead_back++;
    kick(s);
}

/* Send the first batch if it may go and nothing is in flight. */
static void pump(opsc_store_t *s) {
    if (s->finalizing) {
        return;
    }
    store_batch_t *b = s->first;
    if (b && b->in_pool) {
        pump_ahead(s);
        return;
    }
    if (!b || b->waiting || b->stalled) {
        return;
    }
    if (b->started) {
        return; /* between two ranges: its own completion drives it */
    }
    if (!b->sealed) {
        if (batch_held(b) == 0 || !(s->due || s->closing)) {
            return;
        }
        seal(s, b);
    }
    start_batch(s, b);
    if (s->first == b && b->in_pool) {
        pump_ahead(s);
    }
}

/* ---- lifecycle ----------------------------------------------------------------------- */

int opsc_store_create(uv_loop_t *loop, opsc_pg_pool_t *pool, const opsc_store_options_t *opts,
                      opsc_store_t **out) {
    if (!loop || !pool || !out) {
        return UV_EINVAL;
    }
    opsc_store_t *s = opsc_calloc(1, sizeof(*s));
    if (!s) {
        return OPSC_ENOMEM;
    }
    s->loop = loop;
    s->pool = pool;
    if (opts) {
        s->o = *opts;
    }
    if (s->o.flush_interval_ms <= 0) {
        s->o.flush_interval_ms = 20;
    }
    if (s->o.batch_max == 0) {
        s->o.batch_max = 2000;
    }
    if (s->o.pending_max == 0) {
        s->o.pending_max = 200000;
    }
    if (s->o.retry_min_ms <= 0) {
        s->o.retry_min_ms = 10;
    }
    if (s->o.retry_max_ms < s->o.retry_min_ms) {
        s->o.retry_max_ms = s->o.retry_min_ms > 2000 ? s->o.retry_min_ms : 2000;
    }
    if (s->o.drain_timeout_ms == 0) {
        s->o.drain_timeout_ms = 5000;
    }
    s->stmt[ST_PRE] = opsc_pg_stmt_register(pool, "opsc_store_status", sql_status, STATUS_COLS);
    s->stmt[ST_POST] = s->stmt[ST_PRE];
    s->stmt[ST_INSERT] = opsc_pg_stmt_register(pool, "opsc_store_insert", sql_insert, INSERT_COLS);
    s->stmt_insert_fast =
        opsc_pg_stmt_register(pool, "opsc_store_insert_fast", sql_insert_fast, INSERT_COLS);
    s->stmt[ST_REPEAT] = opsc_pg_stmt_register(pool, "opsc_store_repeat", sql_repeat, REPEAT_COLS);
    s->stmt[ST_UPDATE] = opsc_pg_stmt_register(pool, "opsc_store_update", sql_update, 1);
    s->stmt[ST_HISTORY] =
        opsc_pg_stmt_register(pool, "opsc_store_history", sql_history, HISTORY_COLS);
    s->stmt_load_active = opsc_pg_stmt_register(pool, "opsc_store_load_active", sql_load_active, 1);
    s->stmt_load_mappings =
        opsc_pg_stmt_register(pool, "opsc_store_load_mappings", sql_load_mappings, 0);
    s->stmt_load_devices =
        opsc_pg_stmt_register(pool, "opsc_store_load_devices", sql_load_devices, 0);
    s->stmt_load_dependencies =
        opsc_pg_stmt_register(pool, "opsc_store_load_dependencies", sql_load_dependencies, 0);
    s->stmt_load_maintenance =
        opsc_pg_stmt_register(pool, "opsc_store_load_maintenance", sql_load_maintenance, 2);
    int ok = s->stmt_load_active && s->stmt_load_mappings && s->stmt_load_devices &&
             s->stmt_load_dependencies && s->stmt_load_maintenance;
    for (int k = 0; k < ST_COUNT; k++) {
        ok = ok && s->stmt[k] && s->stmt_insert_fast;
    }
    if (!ok) {
        opsc_free(s);
        return OPSC_ENOMEM;
    }
    uv_timer_t *timers[] = {&s->flush_timer, &s->kick_timer, &s->retry_timer, &s->drain_timer};
    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = s;
        s->handles_open++;
    }
    s->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)s;
    if (!s->rng) {
        s->rng = 0x9e3779b97f4a7c15ull;
    }
    s->rl_retry = (opsc_log_ratelimit_t)OPSC_LOG_RATELIMIT_INIT(1000, 5);
    s->rl_reject = (opsc_log_ratelimit_t)OPSC_LOG_RATELIMIT_INIT(1000, 20);
    s->rl_skip = (opsc_log_ratelimit_t)OPSC_LOG_RATELIMIT_INIT(1000, 20);
    *out = s;
    return 0;
}

void opsc_store_set_reply_cb(opsc_store_t *s, void (*cb)(opsc_change_t *reply, void *arg),
                             void *arg) {
    s->reply_cb = cb;
    s->reply_arg = arg;
}

void opsc_store_set_commit_cb(opsc_store_t *s,
                              void (*cb)(const opsc_store_committed_t *items, size_t n, void *arg),
                              void *arg) {
    s->commit_cb = cb;
    s->commit_arg = arg;
}

void opsc_store_set_durable_cb(opsc_store_t *s, void (*cb)(uint64_t durable_seq, void *arg),
                               void *arg) {
    s->durable_cb = cb;
    s->durable_arg = arg;
}

uint64_t opsc_store_last_seq(const opsc_store_t *s) {
    return s->seq;
}

void opsc_store_flush(opsc_store_t *s) {
    if (s && s->held > 0) {
        s->due = 1;
        kick(s);
    }
}

size_t opsc_store_pending(const opsc_store_t *s) {
    return s ? s->held : 0;
}

static void on_handle_closed(uv_handle_t *h) {
    opsc_store_t *s = h->data;
    if (--s->handles_open > 0) {
        return;
    }
    void (*done)(void *) = s->done;
    void *arg = s->done_arg;
    store_trim_buffers(s, 0);
    opsc_free(s);
    if (done) {
        done(arg);
    }
}

/* Stop writing: count what is left, let an in-flight request finish on its own, close. */
static void finish_close(opsc_store_t *s) {
    if (s->finalizing) {
        return;
    }
    s->finalizing = 1;
    if (s->held > 0) {
        s->n_unflushed += s->held;
        opsc_log_err(STORE_LOG,
                     "closing with %zu items (alerts, status rows, replies) not confirmed "
                     "durable",
                     s->held);
    }
    store_batch_t *b = s->first;
    while (b) {
        store_batch_t *n = b->next;
        if (b->in_pool) {
            b->s = NULL; /* its completion frees it */
            b->next = NULL;
        } else {
            batch_free(b);
        }
        b = n;
    }
    s->first = s->last = s->open = NULL;
    s->held = 0;
    uv_timer_t *timers[] = {&s->flush_timer, &s->kick_timer, &s->retry_timer, &s->drain_timer};
    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
        uv_timer_stop(timers[i]);
        uv_close((uv_handle_t *)timers[i], on_handle_closed);
    }
}

static void on_drain_timeout(uv_timer_t *t) {
    finish_close(t->data);
}

void opsc_store_close(opsc_store_t *s, void (*done)(void *arg), void *arg) {
    if (!s || s->closing) {
        return;
    }
    s->closing = 1;
    s->done = done;
    s->done_arg = arg;
    if (s->held == 0 || s->o.drain_timeout_ms < 0) {
        finish_close(s);
        return;
    }
    opsc_log_info(STORE_LOG, "closing: writing %zu held items (at most %d ms)", s->held,
                  s->o.drain_timeout_ms);
    uv_timer_start(&s->drain_timer, on_drain_timeout, (uint64_t)s->o.drain_timeout_ms, 0);
    if (s->first && s->first->waiting) {
        /* Do not wait out a long backoff while draining. */
        s->retry_ms = 0;
        uv_timer_start(&s->retry_timer, on_retry, 0, 0);
    }
    s->due = 1;
    kick(s);
}

/* ---- metrics ------------------------------------------------------------------------- */

void opsc_store_metrics(opsc_buf_t *out, void *arg) {
    opsc_store_t *s = arg;
    char labels[64];
    opsc_metrics_family(out, "opsc_store_changes_received_total", "counter",
                        "Changes accepted by the store, by kind");
    for (int k = 0; k < K_COUNT; k++) {
        snprintf(labels, sizeof(labels), "kind=\"%s\"", kind_label[k]);
        opsc_metrics_sample_u64(out, "opsc_store_changes_received_total", labels, s->n_received[k]);
    }
    opsc_metrics_one_u64(out, "opsc_store_changes_coalesced_total", "counter",
                         "Changes folded into a change of the same alert in the same batch",
                         s->n_coalesced);
    opsc_metrics_one_u64(out, "opsc_store_changes_refused_total", "counter",
                         "Changes refused because pending_max items were held", s->n_refused_full);
    opsc_metrics_family(out, "opsc_store_rows_written_total", "counter",
                        "Rows inserted or updated in the database, by kind");
    opsc_metrics_sample_u64(out, "opsc_store_rows_written_total", "kind=\"create\"",
                            s->n_rows_created);
    opsc_metrics_sample_u64(out, "opsc_store_rows_written_total", "kind=\"repeat\"",
                            s->n_rows_repeat);
    opsc_metrics_sample_u64(out, "opsc_store_rows_written_total", "kind=\"status\"",
                            s->n_rows_status);
    opsc_metrics_sample_u64(out, "opsc_store_rows_written_total", "kind=\"history\"",
                            s->n_rows_history);
    opsc_metrics_sample_u64(out, "opsc_store_rows_written_total", "kind=\"update\"",
                            s->n_rows_update);
    opsc_metrics_one_u64(out, "opsc_store_update_fold_failed_total", "counter",
                         "UPDATE changes that could not be merged into their row (out of memory)",
                         s->n_update_fold_failed);
    opsc_metrics_family(out, "opsc_store_create_skipped_total", "counter",
                        "New alerts the INSERT skipped: already there (replay), or their "
                        "fingerprint active under another id");
    opsc_metrics_sample_u64(out, "opsc_store_create_skipped_total", "reason=\"replay\"",
                            s->n_skip_replay);
    opsc_metrics_sample_u64(out, "opsc_store_create_skipped_total", "reason=\"fingerprint_active\"",
                            s->n_skip_fingerprint);
    opsc_metrics_one_u64(out, "opsc_store_rows_rejected_total", "counter",
                         "Alerts whose changes the database rejected (SQLSTATE class 22/23)",
                         s->n_rejected);
    opsc_metrics_one_u64(out, "opsc_store_invalid_json_total", "counter",
                         "custom_fields/raw_data texts that were not valid JSON (stored wrapped)",
                         s->n_invalid_json);
    opsc_metrics_one_u64(out, "opsc_store_batches_committed_total", "counter",
                         "Batches finished (committed, bad rows isolated)", s->n_batches);
    opsc_metrics_one_u64(out, "opsc_store_transactions_total", "counter",
                         "Database transactions attempted (batches, retries, isolation halves)",
                         s->n_txns);
    opsc_metrics_one_u64(out, "opsc_store_isolations_total", "counter",
                         "Batches bisected to isolate rows the database rejected", s->n_isolations);
    opsc_metrics_one_u64(out, "opsc_store_conflict_retries_total", "counter",
                         "Batches sent again with conflict handling after a unique violation "
                         "(a replay after a crash, or an alert another collector stored)",
                         s->n_safe_inserts);
    opsc_metrics_one_u64(out, "opsc_store_batches_ahead_total", "counter",
                         "Batches of new alerts sent while the batch before them was in flight",
                         s->n_ahead);
    opsc_metrics_one_u64(out, "opsc_store_batches_ahead_back_total", "counter",
                         "Batches sent ahead that failed and went again in their turn",
                         s->n_ahead_back);
    opsc_metrics_one_u64(out, "opsc_store_retries_total", "counter",
                         "Attempts repeated after connection loss or a transient error",
                         s->n_retries);
    opsc_metrics_one_u64(out, "opsc_store_pending_items", "gauge",
                         "Items held and not yet durable (alerts, status rows, replies)", s->held);
    opsc_metrics_one_u64(out, "opsc_store_pending_capacity", "gauge", "pending_max",
                         s->o.pending_max);
    opsc_metrics_one_u64(out, "opsc_store_batch_changes_last", "gauge",
                         "Changes in the last finished batch", s->last_batch);
    opsc_metrics_one_u64(out, "opsc_store_batch_changes_max", "gauge",
                         "Changes in the largest finished batch", s->max_batch);
    opsc_metrics_histogram(out, "opsc_store_batch_changes", "Changes per batch", size_le,
                           s->size_bucket, SIZE_BUCKETS, s->n_batches, s->sum_size);
    opsc_metrics_family(out, "opsc_store_flush_seconds_last", "gauge",
                        "Last batch: from sending to durable, retries included");
    opsc_metrics_sample(out, "opsc_store_flush_seconds_last", NULL, s->last_lat_s);
    opsc_metrics_family(out, "opsc_store_flush_seconds_max", "gauge", "Slowest batch");
    opsc_metrics_sample(out, "opsc_store_flush_seconds_max", NULL, s->max_lat_s);
    opsc_metrics_histogram(out, "opsc_store_flush_seconds", "Batch write latency", lat_le,
                           s->lat_bucket, LAT_BUCKETS, s->n_batches, s->sum_lat_s);
}

/* ---- loaders ------------------------------------------------------------------------- */

static int dup_field(const opsc_pg_res_t *res, int row, int col, char **out) {
    const char *v = opsc_pg_res_value(res, row, col);
    *out = NULL;
    if (v && !(*out = opsc_strdup(v))) {
        return OPSC_ENOMEM;
    }
    return 0;
}

static int64_t us_field(const opsc_pg_res_t *res, int row, int col) {
    const char *v = opsc_pg_res_value(res, row, col);
    return v ? (int64_t)strtoll(v, NULL, 10) : 0;
}

static opsc_level_t level_parse(const char *v) {
    if (!v) {
        return OPSC_LEVEL_NONE;
    }
    if (strcmp(v, "high") == 0) {
        return OPSC_LEVEL_HIGH;
    }
    if (strcmp(v, "medium") == 0) {
        return OPSC_LEVEL_MEDIUM;
    }
    if (strcmp(v, "low") == 0) {
        return OPSC_LEVEL_LOW;
    }
    return OPSC_LEVEL_NONE;
}

static int parse_tags(const char *text, opsc_alert_t *a) {
    if (!text) {
        return 0;
    }
    json_error_t jerr;
    json_t *arr = json_loads(text, 0, &jerr);
    if (!arr || !json_is_array(arr)) {
        json_decref(arr);
        return OPSC_EPARSE;
    }
    int rc = 0;
    size_t n = json_array_size(arr);
    if (n > 0) {
        a->tags = opsc_calloc(n, sizeof(char *));
        if (!a->tags) {
            rc = OPSC_ENOMEM;
            goto done;
        }
        a->ntags = n;
        for (size_t i = 0; i < n; i++) {
            const char *t = json_string_value(json_array_get(arr, i));
            a->tags[i] = opsc_strdup(t ? t : "");
            if (!a->tags[i]) {
                rc = OPSC_ENOMEM;
                goto done;
            }
        }
    }
done:
    json_decref(arr);
    return rc;
}

/* Column order of sql_load_active. */
enum {
    LA_ID = 0,
    LA_SOURCE_SYSTEM,
    LA_SOURCE_ALERT_ID,
    LA_DEVICE_IP,
    LA_DEVICE_NAME,
    LA_SEVERITY,
    LA_CATEGORY,
    LA_ALERT_TYPE,
    LA_IMPACT,
    LA_URGENCY,
    LA_PRIORITY,
    LA_TITLE,
    LA_MESSAGE,
    LA_STATUS,
    LA_IS_CLEAR,
    LA_OCCURRED_AT,
    LA_RECEIVED_AT,
    LA_ACK_AT,
    LA_ACK_BY,
    LA_RESOLVED_AT,
    LA_RESOLVED_BY,
    LA_CORRELATED_TO,
    LA_CORRELATION_RULE,
    LA_TAGS,
    LA_CUSTOM_FIELDS,
    LA_RAW_DATA,
    LA_FINGERPRINT,
    LA_OCCURRENCE_COUNT,
    LA_LAST_OCCURRENCE_AT,
    LA_NCOLS
};

static int alert_from_row(const opsc_pg_res_t *res, int row, opsc_alert_t **out) {
    opsc_alert_t *a = opsc_alert_new();
    if (!a) {
        return OPSC_ENOMEM;
    }
    int rc = 0;
    const char *v;
    if (opsc_uuid_parse(opsc_pg_res_value(res, row, LA_ID), &a->id) != 0) {
        rc = OPSC_EPARSE;
        goto error;
    }
    if ((rc = dup_field(res, row, LA_SOURCE_SYSTEM, &a->source_system)) ||
        (rc = dup_field(res, row, LA_SOURCE_ALERT_ID, &a->source_alert_id)) ||
        (rc = dup_field(res, row, LA_DEVICE_IP, &a->device_ip)) ||
        (rc = dup_field(res, row, LA_DEVICE_NAME, &a->device_name)) ||
        (rc = dup_field(res, row, LA_ALERT_TYPE, &a->alert_type)) ||
        (rc = dup_field(res, row, LA_TITLE, &a->title)) ||
        (rc = dup_field(res, row, LA_MESSAGE, &a->message)) ||
        (rc = dup_field(res, row, LA_ACK_BY, &a->acknowledged_by)) ||
        (rc = dup_field(res, row, LA_RESOLVED_BY, &a->resolved_by)) ||
        (rc = dup_field(res, row, LA_CORRELATION_RULE, &a->correlation_rule)) ||
        (rc = dup_field(res, row, LA_CUSTOM_FIELDS, &a->custom_fields_json)) ||
        (rc = dup_field(res, row, LA_RAW_DATA, &a->raw_data_json))) {
        goto error;
    }
    /* The CHECK constraints admit only names these parsers know. */
    (void)opsc_severity_parse(opsc_pg_res_value(res, row, LA_SEVERITY), &a->severity);
    (void)opsc_category_parse(opsc_pg_res_value(res, row, LA_CATEGORY), &a->category);
    (void)opsc_status_parse(opsc_pg_res_value(res, row, LA_STATUS), &a->status);
    a->impact = level_parse(opsc_pg_res_value(res, row, LA_IMPACT));
    a->urgency = level_parse(opsc_pg_res_value(res, row, LA_URGENCY));
    v = opsc_pg_res_value(res, row, LA_PRIORITY);
    a->priority = v && v[0] == 'P' ? atoi(v + 1) : 0;
    v = opsc_pg_res_value(res, row, LA_IS_CLEAR);
    a->is_clear = v && v[0] == 't';
    a->occurred_at_us = us_field(res, row, LA_OCCURRED_AT);
    a->received_at_us = us_field(res, row, LA_RECEIVED_AT);
    a->acknowledged_at_us = us_field(res, row, LA_ACK_AT);
    a->resolved_at_us = us_field(res, row, LA_RESOLVED_AT);
    a->last_occurrence_at_us = us_field(res, row, LA_LAST_OCCURRENCE_AT);
    v = opsc_pg_res_value(res, row, LA_CORRELATED_TO);
    a->has_correlated_to = v && opsc_uuid_parse(v, &a->correlated_to_id) == 0;
    v = opsc_pg_res_value(res, row, LA_FINGERPRINT);
    snprintf(a->fingerprint, sizeof(a->fingerprint), "%s", v ? v : "");
    v = opsc_pg_res_value(res, row, LA_OCCURRENCE_COUNT);
    a->occurrence_count = v ? (uint32_t)strtoul(v, NULL, 10) : 1;
    if ((rc = parse_tags(opsc_pg_res_value(res, row, LA_TAGS), a)) != 0) {
        goto error;
    }
    *out = a;
    return 0;

error:
    opsc_alert_free(a);
    return rc;
}

void opsc_store_alerts_free(opsc_alert_t **alerts, size_t n) {
    if (!alerts) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        opsc_alert_free(alerts[i]);
    }
    opsc_free(alerts);
}

typedef struct load_active_s {
    opsc_pg_pool_t *pool;
    const opsc_pg_stmt_t *stmt;
    opsc_store_alerts_cb cb;
    void *arg;
    opsc_alert_t **v;
    size_t n;
    size_t cap;
    char after[37];
} load_active_t;

static void load_active_finish(load_active_t *l, int err) {
    if (err) {
        opsc_store_alerts_free(l->v, l->n);
        l->cb(NULL, 0, err, l->arg);
    } else {
        l->cb(l->v, l->n, 0, l->arg);
    }
    opsc_free(l);
}

static int load_active_page(load_active_t *l);

static void on_active_page(int err, const opsc_pg_res_t *res, void *arg) {
    load_active_t *l = arg;
    if (err) {
        opsc_log_err(STORE_LOG, "loading active alerts: %s: SQLSTATE %s: %s", opsc_strerror(err),
                     opsc_pg_res_sqlstate(res), opsc_pg_res_message(res));
        load_active_finish(l, err);
        return;
    }
    int rows = opsc_pg_res_ntuples(res);
    if (rows > 0 && opsc_pg_res_nfields(res) != LA_NCOLS) {
        load_active_finish(l, OPSC_EPARSE);
        return;
    }
    if (l->n + (size_t)rows > l->cap) {
        size_t ncap = l->cap ? l->cap : 1024;
        while (ncap < l->n + (size_t)rows) {
            ncap *= 2;
        }
        opsc_alert_t **nv = opsc_realloc(l->v, ncap * sizeof(*nv));
        if (!nv) {
            load_active_finish(l, OPSC_ENOMEM);
            return;
        }
        l->v = nv;
        l->cap = ncap;
    }
    for (int i = 0; i < rows; i++) {
        int rc = alert_from_row(res, i, &l->v[l->n]);
        if (rc != 0) {
            load_active_finish(l, rc);
            return;
        }
        l->n++;
    }
    if (rows < LOAD_PAGE) {
        opsc_log_info(STORE_LOG, "loaded %zu active alerts", l->n);
        load_active_finish(l, 0);
        return;
    }
    snprintf(l->after, sizeof(l->after), "%s", opsc_pg_res_value(res, rows - 1, LA_ID));
    int rc = load_active_page(l);
    if (rc != 0) {
        load_active_finish(l, rc);
    }
}

/* Keyset pages: a million active alerts never sit in one libpq result. */
static int load_active_page(load_active_t *l) {
    const char *params[1] = {l->after};
    return opsc_pg_exec(l->pool, OPSC_PG_READER, l->stmt, 1, params, on_active_page, l);
}

int opsc_store_load_active(opsc_store_t *s, opsc_store_alerts_cb cb, void *arg) {
    if (!s || !cb) {
        return UV_EINVAL;
    }
    load_active_t *l = opsc_calloc(1, sizeof(*l));
    if (!l) {
        return OPSC_ENOMEM;
    }
    l->pool = s->pool;
    l->stmt = s->stmt_load_active;
    l->cb = cb;
    l->arg = arg;
    snprintf(l->after, sizeof(l->after), "00000000-0000-0000-0000-000000000000");
    int rc = load_active_page(l);
    if (rc != 0) {
        opsc_free(l);
    }
    return rc;
}

/*
 * The reference-data loaders share one shape: every selected column is a
 * string field of the row struct (NOT_STR: filled by the caller), copied
 * out of the result; the table of offsets is the only per-type part.
 */
#define NOT_STR ((size_t)-1)

typedef struct row_kind_s {
    const char *what; /* table name, for the log */
    size_t row_size;
    size_t ncols;
    const size_t *offs; /* per selected column: offsetof a char * field, or NOT_STR */
    /* The NOT_STR columns, filled after the strings (NULL: none). */
    void (*fixup)(void *rows, size_t n, const opsc_pg_res_t *res);
} row_kind_t;

static void mapping_fixup(void *rows, size_t n, const opsc_pg_res_t *res) {
    opsc_store_mapping_row_t *m = rows;
    for (size_t i = 0; i < n; i++) {
        const char *v = opsc_pg_res_value(res, (int)i, 8);
        m[i].is_clear_event = v && v[0] == 't';
    }
}

static void maint_fixup(void *rows, size_t n, const opsc_pg_res_t *res) {
    opsc_store_maint_row_t *m = rows;
    for (size_t i = 0; i < n; i++) {
        m[i].start_us = opsc_pg_res_value(res, (int)i, 7) ? us_field(res, (int)i, 7) : INT64_MIN;
        m[i].end_us = opsc_pg_res_value(res, (int)i, 8) ? us_field(res, (int)i, 8) : INT64_MAX;
    }
}

#define MAPPING_OFF(f) offsetof(opsc_store_mapping_row_t, f)
static const size_t mapping_offs[] = {MAPPING_OFF(id),
                                      MAPPING_OFF(oid_pattern),
                                      MAPPING_OFF(vendor),
                                      MAPPING_OFF(alert_type),
                                      MAPPING_OFF(category),
                                      MAPPING_OFF(default_severity),
                                      MAPPING_OFF(title_template),
                                      MAPPING_OFF(description),
                                      NOT_STR /* is_clear_event */,
                                      MAPPING_OFF(clear_oid_pattern),
                                      MAPPING_OFF(mib_name),
                                      MAPPING_OFF(mib_object)};
static const row_kind_t mapping_kind = {"oid_mappings", sizeof(opsc_store_mapping_row_t),
                                        sizeof(mapping_offs) / sizeof(mapping_offs[0]),
                                        mapping_offs, mapping_fixup};
static const size_t device_offs[] = {
    offsetof(opsc_store_device_row_t, ip_address), offsetof(opsc_store_device_row_t, name),
    offsetof(opsc_store_device_row_t, site), offsetof(opsc_store_device_row_t, status),
    offsetof(opsc_store_device_row_t, impact)};
static const row_kind_t device_kind = {"devices", sizeof(opsc_store_device_row_t), 5, device_offs,
                                       NULL};
static const size_t dependency_offs[] = {offsetof(opsc_store_dependency_row_t, device_ip),
                                         offsetof(opsc_store_dependency_row_t, depends_on_ip)};
static const row_kind_t dependency_kind = {"dependencies", sizeof(opsc_store_dependency_row_t), 2,
                                           dependency_offs, NULL};
#define MAINT_OFF(f) offsetof(opsc_store_maint_row_t, f)
static const size_t maint_offs[] = {
    MAINT_OFF(window_id),        MAINT_OFF(name),     MAINT_OFF(device_ip_cidr),
    MAINT_OFF(device_name_glob), MAINT_OFF(site),     MAINT_OFF(category),
    MAINT_OFF(alert_type),       NOT_STR /* start */, NOT_STR /* end */};
static const row_kind_t maint_kind = {"maintenance_windows", sizeof(opsc_store_maint_row_t),
                                      sizeof(maint_offs) / sizeof(maint_offs[0]), maint_offs,
                                      maint_fixup};

static char **row_str(const row_kind_t *k, void *rows, size_t i, size_t c) {
    return (char **)(void *)((char *)rows + i * k->row_size + k->offs[c]);
}

static void rows_free(const row_kind_t *k, void *rows, size_t n) {
    if (!rows) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t c = 0; c < k->ncols; c++) {
            if (k->offs[c] != NOT_STR) {
                opsc_free(*row_str(k, rows, i, c));
            }
        }
    }
    opsc_free(rows);
}

/* The rows of a loader's result, or an error (logged); *out NULL on error. */
static int rows_from_result(const row_kind_t *k, int err, const opsc_pg_res_t *res, void **out,
                            size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    if (err) {
        opsc_log_err(STORE_LOG, "loading %s: %s: SQLSTATE %s: %s", k->what, opsc_strerror(err),
                     opsc_pg_res_sqlstate(res), opsc_pg_res_message(res));
        return err;
    }
    int nt = opsc_pg_res_ntuples(res);
    void *rows = opsc_calloc(nt > 0 ? (size_t)nt : 1, k->row_size);
    if (!rows) {
        return OPSC_ENOMEM;
    }
    for (int i = 0; i < nt; i++) {
        for (size_t c = 0; c < k->ncols; c++) {
            if (k->offs[c] != NOT_STR &&
                dup_field(res, i, (int)c, row_str(k, rows, (size_t)i, c)) != 0) {
                rows_free(k, rows, (size_t)i + 1);
                return OPSC_ENOMEM;
            }
        }
    }
    *out = rows;
    *n_out = (size_t)nt;
    return 0;
}

/* One loader request: which table, and the caller's callback for that table's row type. */
typedef struct load_rows_s {
    const row_kind_t *kind;
    union {
        opsc_store_mappings_cb mappings;
        opsc_store_devices_cb devices;
        opsc_store_dependencies_cb deps;
        opsc_store_maint_cb maint;
    } cb;
    void *arg;
} load_rows_t;

void opsc_store_mapping_rows_free(opsc_store_mapping_row_t *rows, size_t n) {
    rows_free(&mapping_kind, rows, n);
}

void opsc_store_device_rows_free(opsc_store_device_row_t *rows, size_t n) {
    rows_free(&device_kind, rows, n);
}

void opsc_store_dependency_rows_free(opsc_store_dependency_row_t *rows, size_t n) {
    rows_free(&dependency_kind, rows, n);
}

void opsc_store_maint_rows_free(opsc_store_maint_row_t *rows, size_t n) {
    rows_free(&maint_kind, rows, n);
}

static void on_rows(int err, const opsc_pg_res_t *res, void *arg) {
    load_rows_t l = *(load_rows_t *)arg;
    opsc_free(arg);
    void *rows;
    size_t n;
    err = rows_from_result(l.kind, err, res, &rows, &n);
    if (l.kind->fixup) {
        l.kind->fixup(rows, n, res);
    }
    if (l.kind == &mapping_kind) {
        l.cb.mappings(rows, n, err, l.arg);
    } else if (l.kind == &device_kind) {
        l.cb.devices(rows, n, err, l.arg);
    } else if (l.kind == &dependency_kind) {
        l.cb.deps(rows, n, err, l.arg);
    } else {
        l.cb.maint(rows, n, err, l.arg);
    }
}

static int load_rows_params(opsc_store_t *s, const opsc_pg_stmt_t *stmt, int nparams,
                            const char *const *params, const load_rows_t *proto) {
    if (!s) {
        return UV_EINVAL;
    }
    load_rows_t *l = opsc_malloc(sizeof(*l));
    if (!l) {
        return OPSC_ENOMEM;
    }
    *l = *proto;
    int rc = opsc_pg_exec(s->pool, OPSC_PG_READER, stmt, nparams, params, on_rows, l);
    if (rc != 0) {
        opsc_free(l);
    }
    return rc;
}

int opsc_store_load_mappings(opsc_store_t *s, opsc_store_mappings_cb cb, void *arg) {
    load_rows_t l = {.kind = &mapping_kind, .cb.mappings = cb, .arg = arg};
    return cb ? load_rows_params(s, s ? s->stmt_load_mappings : NULL, 0, NULL, &l) : UV_EINVAL;
}

int opsc_store_load_devices(opsc_store_t *s, opsc_store_devices_cb cb, void *arg) {
    load_rows_t l = {.kind = &device_kind, .cb.devices = cb, .arg = arg};
    return cb ? load_rows_params(s, s ? s->stmt_load_devices : NULL, 0, NULL, &l) : UV_EINVAL;
}

int opsc_store_load_dependencies(opsc_store_t *s, opsc_store_dependencies_cb cb, void *arg) {
    load_rows_t l = {.kind = &dependency_kind, .cb.deps = cb, .arg = arg};
    return cb ? load_rows_params(s, s ? s->stmt_load_dependencies : NULL, 0, NULL, &l) : UV_EINVAL;
}

int opsc_store_load_maintenance(opsc_store_t *s, int64_t from_us, int64_t to_us,
                                opsc_store_maint_cb cb, void *arg) {
    char from[32], to[32];
    opsc_time_format(from_us, from);
    opsc_time_format(to_us, to);
    const char *params[2] = {from, to};
    load_rows_t l = {.kind = &maint_kind, .cb.maint = cb, .arg = arg};
    return cb ? load_rows_params(s, s ? s->stmt_load_maintenance : NULL, 2, params, &l) : UV_EINVAL;
}
