#ifndef OPSC_PG_H
#define OPSC_PG_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "opsc/buf.h"

/*
 * Asynchronous PostgreSQL pool on the libuv loop. Only src/store includes
 * libpq; everyone else sees these opaque types.
 *
 * The pool keeps one writer connection, N reader connections and one LISTEN
 * connection. Connections are made with PQconnectStartParams/PQconnectPoll on
 * a uv_poll_t (host names resolved with uv_getaddrinfo first, so nothing
 * blocks the loop), run in pipeline mode, and reconnect with exponential
 * backoff and jitter. Work submitted while no connection of its role is up
 * is queued up to `queue_max`; beyond that the submit call fails at once
 * with OPSC_EQUEUE_FULL and the callback is never called.
 *
 * Every callback runs on the loop thread, exactly once per accepted request,
 * never from inside the submit call. A request in flight when its connection
 * dies completes with OPSC_EDB_CONN_LOST (SQLSTATE 08006 unless the server
 * sent one, e.g. 57P01 for pg_terminate_backend): it may or may not have been
 * executed; requests not yet sent stay queued for the next connection.
 */

typedef struct opsc_pg_pool_s opsc_pg_pool_t;
typedef struct opsc_pg_stmt_s opsc_pg_stmt_t;

/*
 * OPSC_PG_BULK: a second writing connection (opts.bulk), so that two write
 * transactions can run side by side (the store writes a batch of new alerts
 * ahead of the one in flight there). Without one it is the writer.
 */
typedef enum { OPSC_PG_WRITER = 0, OPSC_PG_READER = 1, OPSC_PG_BULK = 2 } opsc_pg_role_t;

/** Result of one statement. Valid only during the callback. */
typedef struct opsc_pg_res_s opsc_pg_res_t;

/**
 * Completion of a request. `err` is 0 on success, else OPSC_EDB_QUERY (server
 * error), OPSC_EDB_CONN_LOST, OPSC_ESHUTDOWN. For a batch, `res` holds the
 * result of the statement that failed (or the last one), and
 * opsc_pg_res_item() reaches every statement's result.
 */
typedef void (*opsc_pg_cb)(int err, const opsc_pg_res_t *res, void *arg);

typedef struct opsc_pg_options_s {
    const char *conninfo; /* libpq URI or key=value string */
    int readers;          /* reader connections, >= 0 (0: reads go to the writer) */
    int queue_max;        /* requests queued per role while disconnected/busy */
    int connect_timeout_ms;
    int reconnect_min_ms;
    int reconnect_max_ms;
    int listen; /* open the LISTEN connection */
    int bulk;   /* open a second writing connection (OPSC_PG_BULK) */
    const char *application_name;
} opsc_pg_options_t;

/** Notification from LISTEN: channel and payload valid during the callback. */
typedef void (*opsc_pg_notify_cb)(const char *channel, const char *payload, void *arg);
/** Called when the writer connection becomes ready (1) or is lost (0). */
typedef void (*opsc_pg_state_cb)(opsc_pg_pool_t *pool, int writer_up, void *arg);

int opsc_pg_pool_create(uv_loop_t *loop, const opsc_pg_options_t *opts, opsc_pg_pool_t **out);
/** Start connecting. State changes are reported through the state callback. */
int opsc_pg_pool_start(opsc_pg_pool_t *pool);
void opsc_pg_pool_set_state_cb(opsc_pg_pool_t *pool, opsc_pg_state_cb cb, void *arg);
/** Change the conninfo used for the next (re)connect; disconnected connections retry at once. */
int opsc_pg_pool_set_conninfo(opsc_pg_pool_t *pool, const char *conninfo);
/**
 * Close: every request queued or in flight completes with OPSC_ESHUTDOWN
 * (those callbacks run inside this call), connections are closed at once.
 * Drain first (opsc_pg_pool_pending() == 0) for a graceful stop. `done` runs
 * once every handle is closed, after the pool has been freed.
 */
void opsc_pg_pool_close(opsc_pg_pool_t *pool, void (*done)(void *arg), void *arg);
/** Number of requests queued or in flight (for graceful drain). */
size_t opsc_pg_pool_pending(const opsc_pg_pool_t *pool);
/** 1 when the writer connection is connected and idle-ready. */
int opsc_pg_pool_writer_up(const opsc_pg_pool_t *pool);
/** Last connection error of the writer ("" if none), for /ready reasons and logs. */
const char *opsc_pg_pool_last_error(const opsc_pg_pool_t *pool);
/** Append the pool's Prometheus families. */
void opsc_pg_pool_metrics(opsc_buf_t *out, void *pool);

/** A named prepared statement, prepared lazily on each connection that runs it. */
opsc_pg_stmt_t *opsc_pg_stmt_register(opsc_pg_pool_t *pool, const char *name, const char *sql,
                                      int nparams);

/**
 * Submit one statement with text parameters (NULL entries are SQL NULL).
 * Parameters are copied. 0, or OPSC_EQUEUE_FULL / OPSC_ESHUTDOWN / OPSC_ENOMEM
 * (callback not called).
 */
int opsc_pg_query(opsc_pg_pool_t *pool, opsc_pg_role_t role, const char *sql, int nparams,
                  const char *const *params, opsc_pg_cb cb, void *arg);
int opsc_pg_exec(opsc_pg_pool_t *pool, opsc_pg_role_t role, const opsc_pg_stmt_t *stmt, int nparams,
                 const char *const *params, opsc_pg_cb cb, void *arg);
/**
 * A multi-statement script (simple query protocol: DDL, migrations). Runs
 * outside pipeline mode, after the connection's in-flight work completes.
 */
int opsc_pg_script(opsc_pg_pool_t *pool, opsc_pg_role_t role, const char *sql, opsc_pg_cb cb,
                   void *arg);

/*
 * Batches: several statements sent in one pipeline with one sync point, so
 * they commit or fail together as one implicit transaction.
 */
typedef struct opsc_pg_batch_s opsc_pg_batch_t;
opsc_pg_batch_t *opsc_pg_batch_create(opsc_pg_pool_t *pool);
int opsc_pg_batch_add_query(opsc_pg_batch_t *b, const char *sql, int nparams,
                            const char *const *params);
int opsc_pg_batch_add_exec(opsc_pg_batch_t *b, const opsc_pg_stmt_t *stmt, int nparams,
                           const char *const *params);
/**
 * A prepared statement whose parameters are all in binary format (see
 * opsc_pg_array_t): lengths[i] bytes at params[i], NULL for SQL NULL.
 */
int opsc_pg_batch_add_exec_bin(opsc_pg_batch_t *b, const opsc_pg_stmt_t *stmt, int nparams,
                               const char *const *params, const int *lengths);
size_t opsc_pg_batch_size(const opsc_pg_batch_t *b);
/** Submit (takes ownership of b whatever the outcome). Same contract as opsc_pg_query. */
int opsc_pg_batch_submit(opsc_pg_batch_t *b, opsc_pg_role_t role, opsc_pg_cb cb, void *arg);
void opsc_pg_batch_destroy(opsc_pg_batch_t *b);

/*
 * One-dimensional arrays in PostgreSQL's binary wire format, for binary
 * parameters: a statement unnests one array per column, so PostgreSQL reads
 * many rows with no text parsing at all (no JSON, no array_in, no
 * timestamp_in). Elements are appended in order; opsc_pg_array_finish()
 * writes the header. Allocation failure is sticky in `err`.
 */
typedef struct opsc_pg_array_s {
    opsc_buf_t b;
    uint32_t oid; /* element type */
    uint32_t n;
    int has_null;
    int err;
} opsc_pg_array_t;

enum {
    OPSC_PG_OID_BOOL = 16,
    OPSC_PG_OID_INT4 = 23,
    OPSC_PG_OID_TEXT = 25,
    OPSC_PG_OID_TIMESTAMPTZ = 1184,
    OPSC_PG_OID_UUID = 2950,
    OPSC_PG_OID_JSONB = 3802,
};

/** Start (or restart, keeping the memory) an array of elem_oid elements. */
void opsc_pg_array_begin(opsc_pg_array_t *a, uint32_t elem_oid);
void opsc_pg_array_null(opsc_pg_array_t *a);
/** Room for one element of n bytes; NULL on allocation failure. Fill all n. */
char *opsc_pg_array_element(opsc_pg_array_t *a, size_t n);
void opsc_pg_array_bytes(opsc_pg_array_t *a, const void *p, size_t n);
void opsc_pg_array_int4(opsc_pg_array_t *a, int32_t v);
void opsc_pg_array_bool(opsc_pg_array_t *a, int v);
/** Microseconds since the Unix epoch, UTC. */
void opsc_pg_array_timestamptz(opsc_pg_array_t *a, int64_t unix_us);
/** jsonb's binary form: a version byte, then the JSON text. */
void opsc_pg_array_jsonb(opsc_pg_array_t *a, const char *text, size_t n);
/** Write the header; 0 or the sticky error. The bytes are a.b.base, a.b.len long. */
int opsc_pg_array_finish(opsc_pg_array_t *a);
void opsc_pg_array_free(opsc_pg_array_t *a);

/**
 * Subscribe the LISTEN connection to a channel (re-issued after every
 * reconnect). `cb` gets each notification's payload ("" when none), and
 * cb(channel, NULL) each time the subscription takes effect: whatever was
 * announced while not subscribed was missed, so read the data again.
 */
int opsc_pg_listen(opsc_pg_pool_t *pool, const char *channel, opsc_pg_notify_cb cb, void *arg);

/* Result accessors. */
int opsc_pg_res_ntuples(const opsc_pg_res_t *res);
int opsc_pg_res_nfields(const opsc_pg_res_t *res);
const char *opsc_pg_res_value(const opsc_pg_res_t *res, int row, int col); /* NULL if SQL NULL */
const char *opsc_pg_res_field_name(const opsc_pg_res_t *res, int col);
/** Affected rows of INSERT/UPDATE/DELETE, -1 if not applicable. */
long opsc_pg_res_cmd_tuples(const opsc_pg_res_t *res);
/** Five-character SQLSTATE or "" on success. */
const char *opsc_pg_res_sqlstate(const opsc_pg_res_t *res);
/** Server or client error message, "" on success. */
const char *opsc_pg_res_message(const opsc_pg_res_t *res);
/** Batch: number of statement results and one of them (NULL past the end). */
size_t opsc_pg_res_nitems(const opsc_pg_res_t *res);
const opsc_pg_res_t *opsc_pg_res_item(const opsc_pg_res_t *res, size_t i);

#endif
