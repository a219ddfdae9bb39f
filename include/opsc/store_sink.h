#ifndef OPSC_STORE_SINK_H
#define OPSC_STORE_SINK_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "opsc/alert.h"
#include "opsc/buf.h"
#include "opsc/change.h"
#include "opsc/pg.h"

/*
 * The store sink: writes the pipeline's changes (opsc_change_t) to
 * PostgreSQL in batches, and loads what the pipeline rebuilds its state from.
 * Loop thread only: every function and every callback here runs on the loop.
 *
 * Writing. Changes are coalesced per alert id into the open batch: a REPEAT
 * keeps the largest absolute count, a REPEAT or STATUS of an alert CREATEd in
 * the same batch folds into its row, several STATUS transitions keep the
 * final state plus one history row each, UPDATEs fold into the CREATE's row
 * or merge into one UPDATE row (later field wins) plus one history row
 * (`updated`) each. A status leaving resolved/expired clears resolved_at and
 * resolved_by. A batch is sealed when it holds
 * `batch_max` items, or once it is `flush_interval_ms` old and the batch
 * before it has committed (until then it keeps growing), or on
 * opsc_store_flush(). It is written as ONE transaction (one pool batch, one
 * sync, prepared statements) of at most six statements, each one array of
 * JSON rows:
 *
 *   1. UPDATE alerts ... FROM json_to_recordset($1)   statuses leaving 'active'
 *   2. WITH v AS (json_populate_recordset(NULL::alerts, $1))
 *      INSERT INTO alerts ... ON CONFLICT DO NOTHING     all new alerts
 *   3. UPDATE alerts ... FROM json_to_recordset($1)   the other statuses
 *   4. UPDATE alerts ... FROM json_to_recordset($1)   field UPDATEs (one row per alert)
 *   5. UPDATE alerts SET occurrence_count = GREATEST(...) ...   all repeats
 *   6. INSERT INTO alert_history ... ON CONFLICT (id) DO NOTHING
 *
 * (1 before 2 before 3: the partial unique index on active fingerprints is
 * checked row by row; see src/sinks/store_sink.c.) One batch is in flight at
 * a time, so batches commit in submission order.
 *
 * Replays are idempotent (a batch whose commit was not confirmed is sent
 * again, and a journal may replay changes after a crash): alert ids come
 * from the process; counts are absolute and merged with GREATEST; statuses
 * are set to their final value; history ids are name-based UUIDs of (alert
 * id, action, old and new status, time), inserted with ON CONFLICT DO
 * NOTHING and only for alerts that exist.
 *
 * Fingerprints: the INSERT has no conflict target, so it also skips a new
 * alert whose fingerprint is already 'active' in the database under another
 * id (another collector sharing the database got there first). Such a row is
 * counted (opsc_store_create_skipped_total{reason="fingerprint_active"}) and
 * logged, never an error that would hold the batch back; later changes of
 * that id update nothing.
 *
 * Failures. Connection loss, a full pool queue, serialization failures and
 * other non-data errors keep the batch and send it again, unchanged, with
 * exponential backoff, until it commits: nothing is dropped, and the store
 * holds up to `pending_max` items meanwhile. A data error (SQLSTATE class 22
 * or 23) is logged with its SQLSTATE, then the batch is bisected, each half
 * its own transaction, in order, until the failing rows stand alone: those
 * are rejected (counted, logged), every other row is written.
 *
 * Spool seam (the journal is not part of this module): every accepted change
 * gets a sequence number (1, 2, ...); the durable callback reports, in
 * order, the highest sequence whose batch is finished (committed, or its bad
 * rows rejected). A journal appends each change before submitting it, keeps
 * what submit refused (OPSC_EQUEUE_FULL leaves the change with the caller),
 * truncates up to the durable number, and replays into opsc_store_submit:
 * replays are idempotent.
 */

typedef struct opsc_store_s opsc_store_t;

typedef struct opsc_store_options_s {
    int flush_interval_ms; /* age of the open batch before it is written; default 20 */
    size_t batch_max;      /* items per batch (alerts touched + replies + status rows); 2000 */
    size_t pending_max;    /* items held, open + sealed + in flight; default 200000 */
    int retry_min_ms;      /* backoff after a failed attempt: first delay; default 10 */
    int retry_max_ms;      /* ... and largest delay; default 2000 */
    int drain_timeout_ms;  /* opsc_store_close: how long to keep writing; 5000; < 0: not at all */
} opsc_store_options_t;

/** Create on `loop` writing through `pool` (which must outlive the store). opts NULL: defaults. */
int opsc_store_create(uv_loop_t *loop, opsc_pg_pool_t *pool, const opsc_store_options_t *opts,
                      opsc_store_t **out);

/**
 * Hand one change to the store. A CREATE is keyed by c->alert->id, the others
 * by c->id; a CREATE of an id already created in the open batch is dropped as
 * a replay. On 0 the store owns `c` (and frees it, or passes a REPLY to the
 * reply callback). On error the caller keeps `c`:
 * OPSC_EQUEUE_FULL when `pending_max` items are held (a change that folds
 * into an existing item of the open batch is still accepted), OPSC_ESHUTDOWN
 * after opsc_store_close, UV_EINVAL for a CREATE without an alert,
 * OPSC_ENOMEM. Never calls back from inside the call.
 */
int opsc_store_submit(opsc_store_t *s, opsc_change_t *c);

/**
 * REPLY changes are held in their batch and handed to `cb` (ownership passes)
 * in submission order once that batch and every batch before it finished, so
 * a reply is sent only when everything submitted before it is durable.
 * Without a callback, replies are freed at that point. The reply and durable
 * callbacks may submit; they may also call opsc_store_close.
 */
void opsc_store_set_reply_cb(opsc_store_t *s, void (*cb)(opsc_change_t *reply, void *arg),
                             void *arg);

/** Called after each finished batch with the highest durable sequence number (see above). */
void opsc_store_set_durable_cb(opsc_store_t *s, void (*cb)(uint64_t durable_seq, void *arg),
                               void *arg);

/** One alert a finished batch changed (see opsc_store_set_commit_cb). */
typedef struct opsc_store_committed_s {
    opsc_uuid_t id;
    /* What happened, for the live feed: "alert.created", "alert.resolved",
     * "alert.suppressed", "alert.acknowledged", "alert.reopened",
     * "alert.expired", "alert.updated" (fields, repeats). */
    const char *event;
} opsc_store_committed_t;
/**
 * Called once per finished batch, in commit order, with the alerts it
 * changed (rows the batch rejected left out); the array is valid during the
 * call only. The rows are committed: a reader that queries them now sees
 * this batch's state or a later one.
 */
void opsc_store_set_commit_cb(opsc_store_t *s,
                              void (*cb)(const opsc_store_committed_t *items, size_t n, void *arg),
                              void *arg);
/** Sequence number given to the last accepted change (0 before the first). */
uint64_t opsc_store_last_seq(const opsc_store_t *s);

/** Write the open batch now instead of waiting for the interval (asynchronous). */
void opsc_store_flush(opsc_store_t *s);

/** Items not yet durable: open, sealed and in-flight batches. 0 = drained. */
size_t opsc_store_pending(const opsc_store_t *s);

/**
 * Graceful stop: submit is refused from now on, everything held is written as
 * fast as possible for at most `drain_timeout_ms` (< 0: not at all); reply and
 * durable callbacks keep firing meanwhile. Then what is still held is
 * counted and logged as not durable, the store is freed, and `done` runs
 * (from a close callback, never inside this call). A batch still in the pool
 * at that point completes later without calling back. The pool must stay
 * open until `done`.
 */
void opsc_store_close(opsc_store_t *s, void (*done)(void *arg), void *arg);

/** Append the store's Prometheus families (signature of opsc_metrics_collect_cb). */
void opsc_store_metrics(opsc_buf_t *out, void *store);

/*
 * Loaders (start-up and reload), on the pool's reader role. Each calls its
 * callback exactly once, on the loop, never inside the call; on error the
 * array is NULL and n is 0. Ownership of the array and of what it holds
 * passes to the callback. Returns 0, or the pool's submit error (callback not
 * called). They only read through the pool: the store may be closed before
 * they complete. They see what is committed: to include everything submitted
 * to the store, wait for opsc_store_pending() == 0 first.
 */

/** Every alert whose status is active, acknowledged or suppressed, all columns. */
typedef void (*opsc_store_alerts_cb)(opsc_alert_t **alerts, size_t n, int err, void *arg);
int opsc_store_load_active(opsc_store_t *s, opsc_store_alerts_cb cb, void *arg);
/** Frees each alert and the array. */
void opsc_store_alerts_free(opsc_alert_t **alerts, size_t n);

/** One oid_mappings row. Strings are owned; NULL = SQL NULL. */
typedef struct opsc_store_mapping_row_s {
    char *id;
    char *oid_pattern;
    char *vendor;
    char *alert_type;
    char *category;
    char *default_severity;
    char *title_template;
    char *description;
    int is_clear_event;
    char *clear_oid_pattern;
    char *mib_name;
    char *mib_object;
} opsc_store_mapping_row_t;

typedef void (*opsc_store_mappings_cb)(opsc_store_mapping_row_t *rows, size_t n, int err,
                                       void *arg);
/** Every oid_mappings row, ordered by oid_pattern, vendor (NULL first), id. */
int opsc_store_load_mappings(opsc_store_t *s, opsc_store_mappings_cb cb, void *arg);
void opsc_store_mapping_rows_free(opsc_store_mapping_row_t *rows, size_t n);

/** One devices row (the columns the pipeline uses). Strings owned; NULL = SQL NULL. */
typedef struct opsc_store_device_row_s {
    char *ip_address;
    char *name;
    char *site;
    char *status;
    char *impact; /* custom_fields->>'impact' (ITIL impact given by the operator) */
} opsc_store_device_row_t;

typedef void (*opsc_store_devices_cb)(opsc_store_device_row_t *rows, size_t n, int err, void *arg);
/** Every devices row, ordered by ip_address. */
int opsc_store_load_devices(opsc_store_t *s, opsc_store_devices_cb cb, void *arg);
void opsc_store_device_rows_free(opsc_store_device_row_t *rows, size_t n);

/** One dependencies row: device_ip depends on depends_on_ip. Strings owned. */
typedef struct opsc_store_dependency_row_s {
    char *device_ip;
    char *depends_on_ip;
} opsc_store_dependency_row_t;

typedef void (*opsc_store_dependencies_cb)(opsc_store_dependency_row_t *rows, size_t n, int err,
                                           void *arg);
/** Every dependencies row (any dependency_type), ordered by device_ip, depends_on_ip. */
int opsc_store_load_dependencies(opsc_store_t *s, opsc_store_dependencies_cb cb, void *arg);
void opsc_store_dependency_rows_free(opsc_store_dependency_row_t *rows, size_t n);

/**
 * One occurrence of an enabled maintenance window: the window's matchers
 * (strings owned, NULL = any; device_ip_cidr in PostgreSQL's text form,
 * "10.1.0.0/16") and one concrete UTC interval [start_us, end_us), computed by
 * PostgreSQL from the window's range, recurrence and time zone. INT64_MIN /
 * INT64_MAX = unbounded. A window has as many rows as occurrences.
 */
typedef struct opsc_store_maint_row_s {
    char *window_id;
    char *name;
    char *device_ip_cidr;
    char *device_name_glob;
    char *site;
    char *category;
    char *alert_type;
    int64_t start_us;
    int64_t end_us;
} opsc_store_maint_row_t;

typedef void (*opsc_store_maint_cb)(opsc_store_maint_row_t *rows, size_t n, int err, void *arg);
/**
 * Every occurrence of an enabled window overlapping [from_us, to_us) (Unix
 * microseconds, the process clock), ordered by start.
 */
int opsc_store_load_maintenance(opsc_store_t *s, int64_t from_us, int64_t to_us,
                                opsc_store_maint_cb cb, void *arg);
void opsc_store_maint_rows_free(opsc_store_maint_row_t *rows, size_t n);

#endif
