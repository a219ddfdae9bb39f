/*
 * audit_log writer: rows queued on the loop thread, written by one INSERT of
 * unnested binary arrays per flush, one flush in flight at a time.
 */
#include "opsc/audit.h"

#include <stdio.h>
#include <string.h>

#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/metrics.h"

#define LOG "audit"
#define QUEUE_MAX 10000
#define FLUSH_MS 100
#define BATCH_MAX 1000

enum { COLS = 8 };

typedef struct row_s {
    char actor[128];
    char actor_type[8];
    char action[80];
    char resource_type[50];
    char resource_id[128];
    char ip[46];
    char result[8];
    int status;
} row_t;

struct opsc_audit_s {
    uv_loop_t *loop;
    opsc_pg_pool_t *pool;
    const opsc_pg_stmt_t *stmt;
    uv_timer_t timer;
    row_t *q; /* ring of QUEUE_MAX */
    size_t head, n;
    size_t inflight; /* rows of the INSERT in flight (still at the queue's head) */
    int closing;
    opsc_pg_array_t col[COLS];
    uint64_t n_written, n_dropped, n_failed;
};

static const char sql_insert[] =
    "INSERT INTO audit_log (actor, actor_type, action, resource_type, resource_id, ip_address, "
    "result, details) SELECT a, t, x, rt, ri, ip, r, jsonb_build_object('status', s) FROM "
    "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], "
    "$8::int4[]) AS v(a, t, x, rt, ri, ip, r, s)";

static void flush(opsc_audit_t *a);
static void on_timer(uv_timer_t *t);

static void set_text(opsc_pg_array_t *c, const char *s) {
    if (s[0]) {
        opsc_pg_array_bytes(c, s, strlen(s));
    } else {
        opsc_pg_array_null(c);
    }
}

static void on_written(int err, const opsc_pg_res_t *res, void *arg) {
    opsc_audit_t *a = arg;
    size_t n = a->inflight;
    a->inflight = 0;
    if (err == 0) {
        a->head = (a->head + n) % QUEUE_MAX;
        a->n -= n;
        a->n_written += n;
    } else if (err == OPSC_EDB_QUERY) {
        /* A row the database refuses would block the queue forever: count and drop the batch. */
        opsc_log_err(LOG, "audit rows refused (SQLSTATE %s: %s): %zu rows lost",
                     opsc_pg_res_sqlstate(res), opsc_pg_res_message(res), n);
        a->head = (a->head + n) % QUEUE_MAX;
        a->n -= n;
        a->n_failed += n;
    }
    if (a->closing) {
        uv_close((uv_handle_t *)&a->timer, NULL); /* freed by opsc_audit_free after the loop */
        return;
    }
    if (a->n > 0 && !uv_is_active((uv_handle_t *)&a->timer)) {
        uv_timer_start(&a->timer, on_timer, err ? 1000 : FLUSH_MS, 0);
    }
}

static void flush(opsc_audit_t *a) {
    if (a->inflight || a->n == 0) {
        return;
    }
    size_t n = a->n < BATCH_MAX ? a->n : BATCH_MAX;
    for (int k = 0; k < COLS; k++) {
        opsc_pg_array_begin(&a->col[k], k == 7 ? OPSC_PG_OID_INT4 : OPSC_PG_OID_TEXT);
    }
    for (size_t i = 0; i < n; i++) {
        const row_t *r = &a->q[(a->head + i) % QUEUE_MAX];
        set_text(&a->col[0], r->actor);
        set_text(&a->col[1], r->actor_type);
        set_text(&a->col[2], r->action);
        set_text(&a->col[3], r->resource_type);
        set_text(&a->col[4], r->resource_id);
        set_text(&a->col[5], r->ip);
        set_text(&a->col[6], r->result);
        opsc_pg_array_int4(&a->col[7], r->status);
    }
    const char *params[COLS];
    int lens[COLS];
    for (int k = 0; k < COLS; k++) {
        if (opsc_pg_array_finish(&a->col[k]) != 0) {
            return; /* out of memory: the timer tries again */
        }
        params[k] = a->col[k].b.base;
        lens[k] = (int)a->col[k].b.len;
    }
    opsc_pg_batch_t *b = opsc_pg_batch_create(a->pool);
    if (!b || opsc_pg_batch_add_exec_bin(b, a->stmt, COLS, params, lens) != 0 ||
        opsc_pg_batch_submit(b, OPSC_PG_WRITER, on_written, a) != 0) {
        if (b) {
            opsc_pg_batch_destroy(b);
        }
        if (!a->closing) {
            uv_timer_start(&a->timer, on_timer, 1000, 0);
        }
        return;
    }
    a->inflight = n;
}

static void on_timer(uv_timer_t *t) {
    flush(t->data);
}

/* "/api/v1/tokens/<id>" -> "tokens", "<id>" */
static void split_resource(const char *path, row_t *r) {
    const char *p = strncmp(path, "/api/v1/", 8) == 0 ? path + 8 : path;
    const char *slash = strchr(p, '/');
    size_t tl = slash ? (size_t)(slash - p) : strlen(p);
    snprintf(r->resource_type, sizeof(r->resource_type), "%.*s", (int)tl, p);
    snprintf(r->resource_id, sizeof(r->resource_id), "%s", slash ? slash + 1 : "");
}

void opsc_audit_http(void *arg, const opsc_principal_t *who, const char *method, const char *path,
                     int status, const char *peer) {
    opsc_audit_t *a = arg;
    if (a->closing) {
        return;
    }
    if (a->n == QUEUE_MAX) {
        a->n_dropped++;
        return;
    }
    row_t *r = &a->q[(a->head + a->n) % QUEUE_MAX];
    memset(r, 0, sizeof(*r));
    if (who) {
        snprintf(r->actor, sizeof(r->actor), "%s", who->name);
        snprintf(r->actor_type, sizeof(r->actor_type), "%s",
                 strcmp(who->kind, "session") == 0 ? "user" : "token");
    }
    snprintf(r->action, sizeof(r->action), "%s %s", method, path);
    char *q = strchr(r->action, '?');
    if (q) {
        *q = '\0';
    }
    split_resource(path, r);
    snprintf(r->ip, sizeof(r->ip), "%s", peer ? peer : "");
    snprintf(r->result, sizeof(r->result), "%s",
             status == 401 || status == 403 ? "denied"
             : status < 400                 ? "success"
                                            : "failure");
    r->status = status;
    a->n++;
    if (!uv_is_active((uv_handle_t *)&a->timer) && !a->inflight) {
        uv_timer_start(&a->timer, on_timer, FLUSH_MS, 0);
    }
}

int opsc_audit_create(uv_loop_t *loop, opsc_pg_pool_t *pool, opsc_audit_t **out) {
    opsc_audit_t *a = opsc_calloc(1, sizeof(*a));
    row_t *q = a ? opsc_calloc(QUEUE_MAX, sizeof(*q)) : NULL;
    const opsc_pg_stmt_t *st =
        q ? opsc_pg_stmt_register(pool, "opsc_audit_insert", sql_insert, COLS) : NULL;
    if (!st) {
        opsc_free(q);
        opsc_free(a);
        return OPSC_ENOMEM;
    }
    a->loop = loop;
    a->pool = pool;
    a->stmt = st;
    a->q = q;
    uv_timer_init(loop, &a->timer);
    a->timer.data = a;
    *out = a;
    return 0;
}

void opsc_audit_close(opsc_audit_t *a) {
    if (!a || a->closing) {
        return;
    }
    uv_timer_stop(&a->timer);
    flush(a); /* what is queued, once more, if nothing is in flight */
    a->closing = 1;
    if (!a->inflight) {
        uv_close((uv_handle_t *)&a->timer, NULL);
    }
}

void opsc_audit_free(opsc_audit_t *a) {
    if (!a) {
        return;
    }
    for (int k = 0; k < COLS; k++) {
        opsc_pg_array_free(&a->col[k]);
    }
    opsc_free(a->q);
    opsc_free(a);
}

void opsc_audit_metrics(opsc_buf_t *out, void *arg) {
    opsc_audit_t *a = arg;
    opsc_metrics_one_u64(out, "opsc_audit_rows_written_total", "counter", "audit_log rows written",
                         a->n_written);
    opsc_metrics_one_u64(out, "opsc_audit_queued", "gauge", "audit_log rows waiting to be written",
                         a->n);
    opsc_metrics_one_u64(out, "opsc_audit_dropped_total", "counter",
                         "audit_log rows dropped: the queue was full or the database refused them",
                         a->n_dropped + a->n_failed);
}
