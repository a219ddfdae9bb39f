/*
 * Asynchronous PostgreSQL pool on the libuv loop.
 *
 * Each connection is a small state machine: DOWN -> RESOLVING (uv_getaddrinfo,
 * only for host names) -> CONNECTING (PQconnectStartParams / PQconnectPoll on
 * a uv_poll_t) -> READY (pipeline mode) -> DOWN on any failure, with a
 * reconnect timer using exponential backoff and jitter.
 *
 * Requests wait in one FIFO per role (writer, reader, listen). A READY
 * connection pulls from its role's queue and sends up to OPSC__PG_MAX_INFLIGHT
 * requests into its pipeline, each followed by a sync point, so a failing
 * statement aborts only its own request. A batch is several statements
 * before one sync: one implicit transaction. Scripts (multi-statement SQL,
 * migrations) need the simple query protocol, so the connection leaves
 * pipeline mode for them once its pipeline is empty.
 *
 * Results are matched to requests by order: per request an array of
 * expected results (a Parse for a statement not yet prepared on this
 * connection, then each statement), closed by PGRES_PIPELINE_SYNC.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libpq-fe.h>

#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/metrics.h"
#include "opsc/pg.h"

#define OPSC__PG_MAX_INFLIGHT 64
#define OPSC__PG_LOG "db"

enum { CONN_WRITER = 0, CONN_READER = 1, CONN_LISTEN = 2, CONN_BULK = 3, CONN_KINDS = 4 };

typedef enum {
    ST_DOWN = 0,
    ST_RESOLVING,
    ST_CONNECTING,
    ST_READY,
    ST_CLOSED,
} conn_state_t;

typedef enum { REQ_SINGLE, REQ_BATCH, REQ_SCRIPT } req_kind_t;

typedef struct pg_item_s {
    char *sql;                  /* owned, NULL for prepared statements */
    const opsc_pg_stmt_t *stmt; /* or NULL */
    int nparams;
    char **params; /* owned block: pointers followed by strings */
    int *lengths;  /* binary parameters: lengths, inside the params block; NULL for text */
    int *formats;  /* all 1 when lengths is set */
} pg_item_t;

/* One expected result on the wire. */
typedef struct pg_slot_s {
    int item;                       /* index into items, -1 for a Parse */
    const opsc_pg_stmt_t *prepared; /* Parse of this statement */
    PGresult *res;
} pg_slot_t;

struct opsc_pg_res_s {
    PGresult *r;
    const char *message;
    char sqlstate[6];
    struct opsc_pg_res_s *items;
    size_t nitems;
};

typedef struct pg_req_s {
    struct pg_req_s *next;
    req_kind_t kind;
    int internal; /* no callback: LISTEN, ROLLBACK */
    pg_item_t *items;
    size_t nitems;
    size_t cap;
    opsc_pg_cb cb;
    void *arg;
    pg_slot_t *slots;
    size_t nslots;
    size_t cur; /* slot receiving results */
    opsc_pg_pool_t *pool;
} pg_req_t;

typedef struct pg_fifo_s {
    pg_req_t *head;
    pg_req_t *tail;
    size_t len;
} pg_fifo_t;

struct opsc_pg_stmt_s {
    struct opsc_pg_stmt_s *next;
    char *name;
    char *sql;
    int nparams;
    int index;
};

typedef struct pg_poll_s {
    uv_poll_t h;
    struct pg_conn_s *conn;
} pg_poll_t;

typedef struct pg_conn_s {
    opsc_pg_pool_t *pool;
    int kind;
    int idx;
    conn_state_t state;
    PGconn *pg;
    pg_poll_t *poll;
    int poll_events;
    uv_timer_t timer; /* connect timeout and reconnect backoff */
    uv_getaddrinfo_t gai;
    int gai_active;
    int backoff_ms;
    pg_fifo_t inflight;
    int script_mode; /* out of pipeline mode for a script */
    unsigned char *prepared;
    size_t prepared_cap;
    uint64_t connects;
    char last_error[256];
} pg_conn_t;

typedef struct pg_listener_s {
    struct pg_listener_s *next;
    char *channel;
    opsc_pg_notify_cb cb;
    void *arg;
} pg_listener_t;

struct opsc_pg_pool_s {
    uv_loop_t *loop;
    char *conninfo;
    char *application_name;
    int queue_max;
    int connect_timeout_ms;
    int reconnect_min_ms;
    int reconnect_max_ms;
    int nconns;
    pg_conn_t *conns;
    pg_fifo_t queue[CONN_KINDS];
    opsc_pg_stmt_t *stmts;
    int nstmts;
    pg_listener_t *listeners;
    opsc_pg_state_cb state_cb;
    void *state_arg;
    int closing;
    int handles_open;
    void (*close_done)(void *arg);
    void *close_arg;
    uint64_t rng;
    uv_prepare_t kick; /* sends queued work once per loop iteration, before polling */
    int kick_active;
    /* counters (loop thread only) */
    uint64_t n_ok, n_error, n_lost, n_rejected, n_shutdown, n_reconnects, n_connect_fail;
    uint64_t n_notifies;
};

static void conn_pump(pg_conn_t *c);
static void conn_fail(pg_conn_t *c, const char *why);
static void conn_schedule_reconnect(pg_conn_t *c);
static void conn_connect(pg_conn_t *c);
static void conn_read(pg_conn_t *c);
static void conn_set_poll(pg_conn_t *c, int events, int recreate);
static void pool_maybe_done(opsc_pg_pool_t *pool);
static void pool_kick(opsc_pg_pool_t *pool);

static const char *const kind_names[CONN_KINDS] = {"writer", "reader", "listen", "bulk"};

/* ---- small helpers ---------------------------------------------------- */

static void fifo_push(pg_fifo_t *q, pg_req_t *r) {
    r->next = NULL;
    if (q->tail) {
        q->tail->next = r;
    } else {
        q->head = r;
    }
    q->tail = r;
    q->len++;
}

static pg_req_t *fifo_pop(pg_fifo_t *q) {
    pg_req_t *r = q->head;
    if (r) {
        q->head = r->next;
        if (!q->head) {
            q->tail = NULL;
        }
        q->len--;
        r->next = NULL;
    }
    return r;
}

static uint64_t pool_rand(opsc_pg_pool_t *p) {
    uint64_t x = p->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p->rng = x;
    return x;
}

/* libpq messages end in newlines and indent continuation lines: make one line. */
static void trim_nl(char *s) {
    char *w = s;
    int space = 0;
    for (char *r = s; *r; r++) {
        if (*r == '\n' || *r == '\r' || *r == '\t' || *r == ' ') {
            space = 1;
            continue;
        }
        if (space && w != s) {
            *w++ = ' ';
        }
        space = 0;
        *w++ = *r;
    }
    *w = '\0';
}

/* Server notices (NOTICE, WARNING, a FATAL outside a query) go to our log. */
static void on_notice(void *arg, const char *message) {
    pg_conn_t *c = arg;
    char line[512];
    snprintf(line, sizeof(line), "%s", message);
    trim_nl(line);
    opsc_log_debug(OPSC__PG_LOG, "%s connection %d: server says: %s", kind_names[c->kind], c->idx,
                   line);
}

static char **copy_params(int nparams, const char *const *params) {
    size_t total = sizeof(char *) * (size_t)(nparams > 0 ? nparams : 1);
    for (int i = 0; i < nparams; i++) {
        if (params && params[i]) {
            total += strlen(params[i]) + 1;
        }
    }
    char **block = opsc_malloc(total);
    if (!block) {
        return NULL;
    }
    char *p = (char *)(block + (nparams > 0 ? nparams : 1));
    for (int i = 0; i < nparams; i++) {
        if (params && params[i]) {
            size_t n = strlen(params[i]) + 1;
            memcpy(p, params[i], n);
            block[i] = p;
            p += n;
        } else {
            block[i] = NULL;
        }
    }
    return block;
}

/*
 * Binary parameters: one block holding the pointers, the lengths, the formats
 * (all 1) and the bytes, so it is freed like a text block.
 */
static char **copy_params_bin(int nparams, const char *const *params, const int *lengths,
                              int **lens_out, int **fmts_out) {
    size_t np = (size_t)(nparams > 0 ? nparams : 1);
    size_t head = sizeof(char *) * np + 2 * sizeof(int) * np;
    size_t total = head;
    for (int i = 0; i < nparams; i++) {
        if (params[i]) {
            total += (size_t)lengths[i];
        }
    }
    char **block = opsc_malloc(total);
    if (!block) {
        return NULL;
    }
    int *lens = (int *)(block + np);
    int *fmts = lens + np;
    char *p = (char *)block + head;
    for (int i = 0; i < nparams; i++) {
        fmts[i] = 1;
        lens[i] = 0;
        block[i] = NULL;
        if (params[i]) {
            memcpy(p, params[i], (size_t)lengths[i]);
            block[i] = p;
            lens[i] = lengths[i];
            p += lengths[i];
        }
    }
    *lens_out = lens;
    *fmts_out = fmts;
    return block;
}

static void req_free(pg_req_t *r) {
    if (!r) {
        return;
    }
    for (size_t i = 0; i < r->nitems; i++) {
        opsc_free(r->items[i].sql);
        opsc_free(r->items[i].params);
    }
    for (size_t i = 0; i < r->nslots; i++) {
        if (r->slots[i].res) {
            PQclear(r->slots[i].res);
        }
    }
    opsc_free(r->slots);
    opsc_free(r->items);
    opsc_free(r);
}

static pg_req_t *req_new(opsc_pg_pool_t *pool, req_kind_t kind) {
    pg_req_t *r = opsc_calloc(1, sizeof(*r));
    if (r) {
        r->kind = kind;
        r->pool = pool;
    }
    return r;
}

static int req_add(pg_req_t *r, const char *sql, const opsc_pg_stmt_t *stmt, int nparams,
                   const char *const *params, const int *lengths) {
    if (nparams < 0 || (nparams > 0 && !params) || (lengths && nparams == 0)) {
        return UV_EINVAL;
    }
    if (r->nitems == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 4;
        pg_item_t *n = opsc_realloc(r->items, ncap * sizeof(*n));
        if (!n) {
            return OPSC_ENOMEM;
        }
        r->items = n;
        r->cap = ncap;
    }
    pg_item_t *it = &r->items[r->nitems];
    memset(it, 0, sizeof(*it));
    if (sql) {
        it->sql = opsc_strdup(sql);
        if (!it->sql) {
            return OPSC_ENOMEM;
        }
    }
    it->stmt = stmt;
    it->nparams = nparams;
    it->params = lengths ? copy_params_bin(nparams, params, lengths, &it->lengths, &it->formats)
                         : copy_params(nparams, params);
    if (!it->params) {
        opsc_free(it->sql);
        return OPSC_ENOMEM;
    }
    r->nitems++;
    return 0;
}

/* ---- completion ---------------------------------------------------------- */

static void fill_res(opsc_pg_res_t *out, PGresult *r) {
    memset(out, 0, sizeof(*out));
    out->r = r;
    out->message = "";
    if (!r) {
        return;
    }
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_PIPELINE_ABORTED) {
        const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        if (st == PGRES_PIPELINE_ABORTED) {
            msg = "statement not executed: an earlier statement of the batch failed";
        }
        snprintf(out->sqlstate, sizeof(out->sqlstate), "%s", ss ? ss : "");
        out->message = msg ? msg : PQresultErrorMessage(r);
    }
}

static int slot_failed(const pg_slot_t *s) {
    if (!s->res) {
        return 1;
    }
    ExecStatusType st = PQresultStatus(s->res);
    return st == PGRES_FATAL_ERROR || st == PGRES_PIPELINE_ABORTED || st == PGRES_BAD_RESPONSE;
}

/*
 * Deliver a request's outcome. `lost` names a connection failure (message);
 * `fallback_err` is used when no slot carries an error (e.g. shutdown).
 */
static void req_complete(pg_req_t *r, int err, const char *lost_msg, const char *lost_state) {
    opsc_pg_pool_t *pool = r->pool;
    if (r->internal || !r->cb) {
        req_free(r);
        return;
    }
    opsc_pg_res_t top;
    opsc_pg_res_t *items = NULL;
    size_t nitems = 0;
    PGresult *first_err = NULL;
    PGresult *last = NULL;

    /* Map item results (skipping Parse slots). */
    if (r->nitems > 0) {
        items = opsc_calloc(r->nitems, sizeof(*items));
    }
    for (size_t i = 0; i < r->nslots; i++) {
        pg_slot_t *s = &r->slots[i];
        if (s->item < 0) {
            if (s->res && PQresultStatus(s->res) == PGRES_FATAL_ERROR && !first_err) {
                first_err = s->res;
            }
            continue;
        }
        if (items && (size_t)s->item < r->nitems) {
            fill_res(&items[s->item], s->res);
            if ((size_t)s->item + 1 > nitems) {
                nitems = (size_t)s->item + 1;
            }
        }
        if (s->res) {
            last = s->res;
            if (PQresultStatus(s->res) == PGRES_FATAL_ERROR && !first_err) {
                first_err = s->res;
            }
        }
    }
    if (items) {
        nitems = r->nitems; /* items never reached stay empty results */
    }
    if (first_err) {
        fill_res(&top, first_err);
        if (err == 0) {
            err = OPSC_EDB_QUERY;
        }
    } else {
        fill_res(&top, last);
    }
    if (err == OPSC_EDB_CONN_LOST || err == OPSC_ESHUTDOWN) {
        if (!top.sqlstate[0]) {
            snprintf(top.sqlstate, sizeof(top.sqlstate), "%s", lost_state ? lost_state : "08006");
        }
        if (!first_err) {
            top.message = lost_msg ? lost_msg : opsc_strerror(err);
        }
    }
    if (err == OPSC_EDB_CONN_LOST && first_err) {
        /* The server told us why it closed (57P01 admin shutdown...): keep it. */
    }
    top.items = items;
    top.nitems = items ? nitems : 0;
    switch (err) {
    case 0:
        pool->n_ok++;
        break;
    case OPSC_EDB_CONN_LOST:
        pool->n_lost++;
        break;
    case OPSC_ESHUTDOWN:
        pool->n_shutdown++;
        break;
    default:
        pool->n_error++;
        break;
    }
    r->cb(err, &top, r->arg);
    opsc_free(items);
    req_free(r);
}

/* ---- poll handle management --------------------------------------------- */

static void poll_close_cb(uv_handle_t *h) {
    pg_poll_t *p = h->data;
    opsc_pg_pool_t *pool = p->conn->pool;
    opsc_free(p);
    pool->handles_open--;
    pool_maybe_done(pool);
}

static void conn_drop_poll(pg_conn_t *c) {
    if (c->poll) {
        uv_poll_stop(&c->poll->h);
        uv_close((uv_handle_t *)&c->poll->h, poll_close_cb);
        c->poll = NULL;
        c->poll_events = 0;
    }
}

static void on_poll(uv_poll_t *h, int status, int events);

/*
 * Watch the libpq socket for `events`. During connection set-up libpq may
 * replace its socket (next address, SSL retry) and reuse the number, so the
 * handle is recreated after every PQconnectPoll step (`recreate`).
 */
static void conn_set_poll(pg_conn_t *c, int events, int recreate) {
    int fd = c->pg ? PQsocket(c->pg) : -1;
    if (fd < 0) {
        conn_drop_poll(c);
        return;
    }
    if (recreate) {
        conn_drop_poll(c);
    }
    if (!c->poll) {
        pg_poll_t *p = opsc_calloc(1, sizeof(*p));
        if (!p) {
            conn_fail(c, "out of memory");
            return;
        }
        if (uv_poll_init(c->pool->loop, &p->h, fd) != 0) {
            opsc_free(p);
            conn_fail(c, "cannot watch the database socket");
            return;
        }
        p->conn = c;
        p->h.data = p;
        c->pool->handles_open++;
        c->poll = p;
        c->poll_events = 0;
    }
    if (events != c->poll_events) {
        uv_poll_start(&c->poll->h, events, on_poll);
        c->poll_events = events;
    }
}

/* ---- connection lifecycle ------------------------------------------------- */

static void conn_stop_timer(pg_conn_t *c) {
    uv_timer_stop(&c->timer);
}

static void notify_state(pg_conn_t *c, int up) {
    if (c->kind == CONN_WRITER && c->pool->state_cb && !c->pool->closing) {
        c->pool->state_cb(c->pool, up, c->pool->state_arg);
    }
}

static void conn_fail(pg_conn_t *c, const char *why) {
    opsc_pg_pool_t *pool = c->pool;
    int was_ready = c->state == ST_READY;
    char msg[256];
    const char *pqmsg = c->pg ? PQerrorMessage(c->pg) : "";
    if (pqmsg && *pqmsg) {
        snprintf(msg, sizeof(msg), "%s: %s", why, pqmsg);
    } else {
        snprintf(msg, sizeof(msg), "%s", why);
    }
    trim_nl(msg);
    snprintf(c->last_error, sizeof(c->last_error), "%s", msg);

    conn_stop_timer(c);
    conn_drop_poll(c);
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->script_mode = 0;
    if (c->prepared) {
        memset(c->prepared, 0, c->prepared_cap);
    }

    /* In-flight work may or may not have run: its callers must know. */
    pg_req_t *r;
    while ((r = fifo_pop(&c->inflight)) != NULL) {
        req_complete(r, OPSC_EDB_CONN_LOST, msg, "08006");
    }
    if (pool->closing) {
        c->state = ST_CLOSED;
        return;
    }
    c->state = ST_DOWN;
    if (was_ready) {
        opsc_log_warn(OPSC__PG_LOG, "%s connection %d lost: %s", kind_names[c->kind], c->idx, msg);
        notify_state(c, 0);
    } else {
        pool->n_connect_fail++;
        opsc_log_debug(OPSC__PG_LOG, "%s connection %d: connect failed: %s", kind_names[c->kind],
                       c->idx, msg);
    }
    conn_schedule_reconnect(c);
}

static void on_timer(uv_timer_t *t) {
    pg_conn_t *c = t->data;
    if (c->state == ST_CONNECTING || c->state == ST_RESOLVING) {
        if (c->state == ST_RESOLVING && c->gai_active) {
            uv_cancel((uv_req_t *)&c->gai);
        }
        conn_fail(c, "connect timeout");
    } else if (c->state == ST_DOWN) {
        conn_connect(c);
    }
}

static void conn_schedule_reconnect(pg_conn_t *c) {
    opsc_pg_pool_t *pool = c->pool;
    int base = c->backoff_ms ? c->backoff_ms : pool->reconnect_min_ms;
    /* Full jitter on the upper half: spreads out a fleet of collectors. */
    int delay = base / 2 + (int)(pool_rand(pool) % (uint64_t)(base / 2 + 1));
    if (delay < 1) {
        delay = 1;
    }
    c->backoff_ms = base * 2 > pool->reconnect_max_ms ? pool->reconnect_max_ms : base * 2;
    pool->n_reconnects++;
    uv_timer_start(&c->timer, on_timer, (uint64_t)delay, 0);
}

/*
 * LISTEN on `l`'s channel. Once it has taken effect the listener hears
 * cb(channel, NULL): anything announced while it was not subscribed (before
 * the first LISTEN, or between a lost connection and the new one) was
 * missed, and what depends on it should be read again.
 */
static void on_listened(int err, const opsc_pg_res_t *res, void *arg) {
    pg_listener_t *l = arg;
    (void)res;
    if (err == 0) {
        l->cb(l->channel, NULL, l->arg);
    }
}

static int listen_issue(opsc_pg_pool_t *pool, pg_listener_t *l) {
    pg_req_t *r = req_new(pool, REQ_SINGLE);
    char sql[160];
    snprintf(sql, sizeof(sql), "LISTEN \"%s\"", l->channel);
    if (!r || req_add(r, sql, NULL, 0, NULL, NULL) != 0) {
        req_free(r);
        return OPSC_ENOMEM;
    }
    r->cb = on_listened;
    r->arg = l;
    fifo_push(&pool->queue[CONN_LISTEN], r);
    return 0;
}

static void conn_ready(pg_conn_t *c) {
    opsc_pg_pool_t *pool = c->pool;
    conn_stop_timer(c);
    if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
        conn_fail(c, "cannot enter pipeline mode");
        return;
    }
    c->state = ST_READY;
    c->backoff_ms = 0;
    c->connects++;
    opsc_log_info(OPSC__PG_LOG, "%s connection %d ready (server %d, pid %d)", kind_names[c->kind],
                  c->idx, PQserverVersion(c->pg), PQbackendPID(c->pg));
    conn_set_poll(c, UV_READABLE, 1);
    if (c->kind == CONN_LISTEN) {
        for (pg_listener_t *l = pool->listeners; l; l = l->next) {
            (void)listen_issue(pool, l);
        }
    }
    notify_state(c, 1);
    if (c->state == ST_READY) {
        conn_pump(c);
    }
}

static void conn_connect_step(pg_conn_t *c) {
    PostgresPollingStatusType st = PQconnectPoll(c->pg);
    switch (st) {
    case PGRES_POLLING_OK:
        conn_ready(c);
        return;
    case PGRES_POLLING_READING:
        conn_set_poll(c, UV_READABLE, 1);
        return;
    case PGRES_POLLING_WRITING:
        conn_set_poll(c, UV_WRITABLE, 1);
        return;
    case PGRES_POLLING_FAILED:
    default:
        conn_fail(c, "connect failed");
        return;
    }
}

static int is_numeric_host(const char *h) {
    unsigned char buf[16];
    return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

/* Start libpq's non-blocking connect; `hostaddr` (numeric) may be NULL. */
static void conn_start_libpq(pg_conn_t *c, const char *hostaddr) {
    opsc_pg_pool_t *pool = c->pool;
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(pool->conninfo, &err);
    if (!opts) {
        snprintf(c->last_error, sizeof(c->last_error), "invalid conninfo: %s",
                 err ? err : "out of memory");
        trim_nl(c->last_error);
        PQfreemem(err);
        c->state = ST_DOWN;
        pool->n_connect_fail++;
        conn_schedule_reconnect(c);
        return;
    }
    size_t n = 0;
    while (opts[n].keyword) {
        n++;
    }
    const char **kw = opsc_calloc(n + 4, sizeof(char *));
    const char **vals = opsc_calloc(n + 4, sizeof(char *));
    size_t k = 0;
    int have_app = 0;
    if (kw && vals) {
        for (size_t i = 0; i < n; i++) {
            if (!opts[i].val) {
                continue;
            }
            if (hostaddr && strcmp(opts[i].keyword, "hostaddr") == 0) {
                continue;
            }
            if (strcmp(opts[i].keyword, "application_name") == 0) {
                have_app = 1;
            }
            kw[k] = opts[i].keyword;
            vals[k] = opts[i].val;
            k++;
        }
        if (hostaddr) {
            kw[k] = "hostaddr";
            vals[k] = hostaddr;
            k++;
        }
        if (!have_app && pool->application_name) {
            kw[k] = "application_name";
            vals[k] = pool->application_name;
            k++;
        }
        kw[k] = NULL;
        vals[k] = NULL;
        c->pg = PQconnectStartParams(kw, vals, 0);
    }
    opsc_free(kw);
    opsc_free(vals);
    PQconninfoFree(opts);
    if (!c->pg) {
        conn_fail(c, "out of memory");
        return;
    }
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        conn_fail(c, "connect failed");
        return;
    }
    PQsetnonblocking(c->pg, 1);
    PQsetNoticeProcessor(c->pg, on_notice, c);
    c->state = ST_CONNECTING;
    conn_connect_step(c);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    pg_conn_t *c = req->data;
    c->gai_active = 0;
    c->pool->handles_open--;
    if (c->pool->closing || c->state != ST_RESOLVING) {
        uv_freeaddrinfo(res);
        if (c->pool->closing) {
            c->state = ST_CLOSED;
            pool_maybe_done(c->pool);
        }
        return;
    }
    if (status != 0 || !res) {
        uv_freeaddrinfo(res);
        char why[200];
        snprintf(why, sizeof(why), "cannot resolve database host: %s", uv_strerror(status));
        conn_fail(c, why);
        return;
    }
    char ip[INET6_ADDRSTRLEN] = "";
    if (res->ai_family == AF_INET) {
        uv_ip4_name((const struct sockaddr_in *)(const void *)res->ai_addr, ip, sizeof(ip));
    } else {
        uv_ip6_name((const struct sockaddr_in6 *)(const void *)res->ai_addr, ip, sizeof(ip));
    }
    uv_freeaddrinfo(res);
    conn_start_libpq(c, ip);
}

static void conn_connect(pg_conn_t *c) {
    opsc_pg_pool_t *pool = c->pool;
    if (pool->closing) {
        return;
    }
    if (c->gai_active) {
        /* A timed-out lookup is still running on the thread pool: try later. */
        conn_schedule_reconnect(c);
        return;
    }
    uv_timer_start(&c->timer, on_timer, (uint64_t)pool->connect_timeout_ms, 0);

    /*
     * libpq resolves host names with a blocking getaddrinfo inside
     * PQconnectPoll; resolve them on libuv's thread pool instead and hand
     * libpq the numeric address (hostaddr), keeping `host` for TLS and auth.
     */
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(pool->conninfo, &err);
    const char *host = NULL;
    int has_hostaddr = 0;
    if (opts) {
        for (PQconninfoOption *o = opts; o->keyword; o++) {
            if (strcmp(o->keyword, "host") == 0 && o->val && *o->val) {
                host = o->val;
            } else if (strcmp(o->keyword, "hostaddr") == 0 && o->val && *o->val) {
                has_hostaddr = 1;
            }
        }
    }
    PQfreemem(err);
    int resolve = host && !has_hostaddr && host[0] != '/' && host[0] != '@' && !strchr(host, ',') &&
                  !is_numeric_host(host);
    if (resolve) {
        char hostcopy[256];
        snprintf(hostcopy, sizeof(hostcopy), "%s", host);
        PQconninfoFree(opts);
        struct addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_socktype = SOCK_STREAM;
        c->gai.data = c;
        c->state = ST_RESOLVING;
        int rc = uv_getaddrinfo(pool->loop, &c->gai, on_resolved, hostcopy, NULL, &hints);
        if (rc != 0) {
            conn_fail(c, "cannot resolve database host");
            return;
        }
        c->gai_active = 1;
        pool->handles_open++;
        return;
    }
    if (opts) {
        PQconninfoFree(opts);
    }
    conn_start_libpq(c, NULL);
}

/* ---- sending -------------------------------------------------------------- */

static int conn_is_prepared(pg_conn_t *c, const opsc_pg_stmt_t *s) {
    return (size_t)s->index < c->prepared_cap && c->prepared[s->index];
}

static void conn_mark_prepared(pg_conn_t *c, const opsc_pg_stmt_t *s, int v) {
    if ((size_t)s->index >= c->prepared_cap) {
        size_t ncap = (size_t)s->index + 16;
        unsigned char *n = opsc_realloc(c->prepared, ncap);
        if (!n) {
            return; /* stays "not prepared": it will be prepared again */
        }
        memset(n + c->prepared_cap, 0, ncap - c->prepared_cap);
        c->prepared = n;
        c->prepared_cap = ncap;
    }
    c->prepared[s->index] = (unsigned char)v;
}

static int req_add_slot(pg_req_t *r, int item, const opsc_pg_stmt_t *prep) {
    pg_slot_t *n = opsc_realloc(r->slots, (r->nslots + 1) * sizeof(*n));
    if (!n) {
        return OPSC_ENOMEM;
    }
    r->slots = n;
    r->slots[r->nslots].item = item;
    r->slots[r->nslots].prepared = prep;
    r->slots[r->nslots].res = NULL;
    r->nslots++;
    return 0;
}

/* Send one pipelined request (statements + sync). 0, or -1 when libpq refused. */
static int conn_send_pipelined(pg_conn_t *c, pg_req_t *r) {
    for (size_t i = 0; i < r->nitems; i++) {
        pg_item_t *it = &r->items[i];
        const char *const *params = (const char *const *)it->params;
        if (it->stmt) {
            if (!conn_is_prepared(c, it->stmt)) {
                if (!PQsendPrepare(c->pg, it->stmt->name, it->stmt->sql, it->stmt->nparams, NULL) ||
                    req_add_slot(r, -1, it->stmt) != 0) {
                    return -1;
                }
                conn_mark_prepared(c, it->stmt, 1);
            }
            if (!PQsendQueryPrepared(c->pg, it->stmt->name, it->nparams, params, it->lengths,
                                     it->formats, 0)) {
                return -1;
            }
        } else if (!PQsendQueryParams(c->pg, it->sql, it->nparams, NULL, params, it->lengths,
                                      it->formats, 0)) {
            return -1;
        }
        if (req_add_slot(r, (int)i, NULL) != 0) {
            return -1;
        }
    }
    return PQpipelineSync(c->pg) == 1 ? 0 : -1;
}

static void conn_flush(pg_conn_t *c) {
    int rc = PQflush(c->pg);
    if (rc < 0) {
        conn_fail(c, "write to database failed");
        return;
    }
    conn_set_poll(c, rc == 1 ? (UV_READABLE | UV_WRITABLE) : UV_READABLE, 0);
}

static void conn_pump(pg_conn_t *c) {
    opsc_pg_pool_t *pool = c->pool;
    pg_fifo_t *q = &pool->queue[c->kind];
    int sent = 0;
    while (c->state == ST_READY && q->head && !c->script_mode &&
           c->inflight.len < OPSC__PG_MAX_INFLIGHT) {
        pg_req_t *r = q->head;
        if (r->kind == REQ_SCRIPT) {
            if (c->inflight.len > 0) {
                break; /* wait until the pipeline drains */
            }
            fifo_pop(q);
            if (PQexitPipelineMode(c->pg) != 1 || !PQsendQuery(c->pg, r->items[0].sql) ||
                req_add_slot(r, 0, NULL) != 0) {
                fifo_push(&c->inflight, r);
                conn_fail(c, "cannot send script");
                return;
            }
            c->script_mode = 1;
            fifo_push(&c->inflight, r);
            sent++;
            break;
        }
        fifo_pop(q);
        fifo_push(&c->inflight, r);
        if (conn_send_pipelined(c, r) != 0) {
            conn_fail(c, "cannot send query");
            return;
        }
        sent++;
    }
    if (sent && c->state == ST_READY) {
        conn_flush(c);
    }
}

/* After a script: leave no transaction open, then go back to pipeline mode. */
static void conn_after_script(pg_conn_t *c) {
    PGTransactionStatusType ts = PQtransactionStatus(c->pg);
    if (ts == PQTRANS_INERROR || ts == PQTRANS_INTRANS) {
        pg_req_t *rb = req_new(c->pool, REQ_SCRIPT);
        if (!rb || req_add(rb, "ROLLBACK", NULL, 0, NULL, NULL) != 0 ||
            !PQsendQuery(c->pg, "ROLLBACK") || req_add_slot(rb, 0, NULL) != 0) {
            req_free(rb);
            conn_fail(c, "cannot roll back a failed script");
            return;
        }
        rb->internal = 1;
        fifo_push(&c->inflight, rb);
        conn_flush(c);
        return;
    }
    c->script_mode = 0;
    if (PQenterPipelineMode(c->pg) != 1) {
        conn_fail(c, "cannot re-enter pipeline mode");
        return;
    }
    conn_pump(c);
}

/* ---- receiving ------------------------------------------------------------ */

static void conn_notifies(pg_conn_t *c) {
    PGnotify *n;
    while (c->pg && (n = PQnotifies(c->pg)) != NULL) {
        c->pool->n_notifies++;
        for (pg_listener_t *l = c->pool->listeners; l; l = l->next) {
            if (strcmp(l->channel, n->relname) == 0 && l->cb) {
                l->cb(n->relname, n->extra ? n->extra : "", l->arg);
            }
        }
        PQfreemem(n);
    }
}

static void conn_script_result(pg_conn_t *c, pg_req_t *r, PGresult *res) {
    if (res) {
        /* Keep the first error, else the last result. */
        pg_slot_t *s = &r->slots[0];
        if (s->res && slot_failed(s)) {
            PQclear(res);
        } else {
            if (s->res) {
                PQclear(s->res);
            }
            s->res = res;
        }
        return;
    }
    /* NULL: the script is done. */
    fifo_pop(&c->inflight);
    req_complete(r, 0, NULL, NULL);
    if (c->state == ST_READY) {
        conn_after_script(c);
    }
}

static void conn_read(pg_conn_t *c) {
    if (!PQconsumeInput(c->pg)) {
        conn_fail(c, "read from database failed");
        return;
    }
    while (c->state == ST_READY && c->inflight.head && !PQisBusy(c->pg)) {
        pg_req_t *r = c->inflight.head;
        PGresult *res = PQgetResult(c->pg);
        if (r->kind == REQ_SCRIPT) {
            conn_script_result(c, r, res);
            continue;
        }
        if (!res) {
            if (r->cur < r->nslots && r->slots[r->cur].res) {
                r->cur++; /* end of this statement's results */
                continue;
            }
            break; /* nothing more available yet */
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            fifo_pop(&c->inflight);
            /* A Parse that failed or never ran leaves the statement unprepared. */
            for (size_t i = 0; i < r->nslots; i++) {
                if (r->slots[i].item < 0 && slot_failed(&r->slots[i])) {
                    conn_mark_prepared(c, r->slots[i].prepared, 0);
                }
            }
            req_complete(r, 0, NULL, NULL);
            continue;
        }
        if (r->cur >= r->nslots) {
            /* More results than statements: protocol confusion, start over. */
            PQclear(res);
            conn_fail(c, "unexpected result from database");
            return;
        }
        pg_slot_t *s = &r->slots[r->cur];
        if (s->res) {
            PQclear(s->res);
        }
        s->res = res;
    }
    if (c->state == ST_READY) {
        if (PQstatus(c->pg) == CONNECTION_BAD) {
            conn_fail(c, "connection closed");
            return;
        }
        conn_notifies(c);
        conn_pump(c);
    }
}

static void on_poll(uv_poll_t *h, int status, int events) {
    pg_poll_t *p = h->data;
    pg_conn_t *c = p->conn;
    if (c->poll != p) {
        return; /* a stale handle that is closing */
    }
    if (c->state == ST_CONNECTING) {
        conn_connect_step(c);
        return;
    }
    if (c->state != ST_READY) {
        return;
    }
    if (status < 0) {
        conn_fail(c, "socket error");
        return;
    }
    if (events & UV_WRITABLE) {
        conn_flush(c);
        if (c->state != ST_READY) {
            return;
        }
    }
    if (events & UV_READABLE) {
        conn_read(c);
    }
}

/*
 * Work submitted during this loop iteration is sent from a prepare hook, just
 * before the loop polls: many submits share one flush, and a callback never
 * runs inside the submit call that queued its request.
 */
static void on_kick(uv_prepare_t *h) {
    opsc_pg_pool_t *pool = h->data;
    uv_prepare_stop(h);
    pool->kick_active = 0;
    for (int i = 0; i < pool->nconns && !pool->closing; i++) {
        pg_conn_t *c = &pool->conns[i];
        if (c->state == ST_READY && pool->queue[c->kind].head) {
            conn_pump(c);
        }
    }
}

static void pool_kick(opsc_pg_pool_t *pool) {
    if (!pool->kick_active && !pool->closing) {
        uv_prepare_start(&pool->kick, on_kick);
        pool->kick_active = 1;
    }
}

/* ---- public API ----------------------------------------------------------- */

int opsc_pg_pool_create(uv_loop_t *loop, const opsc_pg_options_t *opts, opsc_pg_pool_t **out) {
    if (!loop || !opts || !opts->conninfo || !out || opts->readers < 0 || opts->queue_max < 1) {
        return UV_EINVAL;
    }
    opsc_pg_pool_t *p = opsc_calloc(1, sizeof(*p));
    if (!p) {
        return OPSC_ENOMEM;
    }
    p->loop = loop;
    p->conninfo = opsc_strdup(opts->conninfo);
    p->application_name =
        opsc_strdup(opts->application_name ? opts->application_name : "opsconductord");
    p->queue_max = opts->queue_max;
    p->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 10000;
    p->reconnect_min_ms = opts->reconnect_min_ms > 0 ? opts->reconnect_min_ms : 100;
    p->reconnect_max_ms =
        opts->reconnect_max_ms > p->reconnect_min_ms ? opts->reconnect_max_ms : p->reconnect_min_ms;
    p->rng = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)p;
    if (!p->rng) {
        p->rng = 0x9e3779b97f4a7c15ull;
    }
    uv_prepare_init(loop, &p->kick);
    p->kick.data = p;
    p->handles_open++;
    p->nconns = 1 + opts->readers + (opts->bulk ? 1 : 0) + (opts->listen ? 1 : 0);
    p->conns = opsc_calloc((size_t)p->nconns, sizeof(*p->conns));
    if (!p->conninfo || !p->application_name || !p->conns) {
        opsc_free(p->conninfo);
        opsc_free(p->application_name);
        opsc_free(p->conns);
        opsc_free(p);
        return OPSC_ENOMEM;
    }
    for (int i = 0; i < p->nconns; i++) {
        pg_conn_t *c = &p->conns[i];
        c->pool = p;
        /* writer, readers, the bulk writer, the LISTEN connection (always last) */
        c->kind = i == 0                                 ? CONN_WRITER
                  : i <= opts->readers                   ? CONN_READER
                  : opts->bulk && i == opts->readers + 1 ? CONN_BULK
                                                         : CONN_LISTEN;
        c->idx = c->kind == CONN_READER ? i - 1 : 0;
        c->state = ST_DOWN;
        uv_timer_init(loop, &c->timer);
        c->timer.data = c;
        p->handles_open++;
    }
    *out = p;
    return 0;
}

int opsc_pg_pool_start(opsc_pg_pool_t *pool) {
    for (int i = 0; i < pool->nconns; i++) {
        if (pool->conns[i].state == ST_DOWN) {
            conn_connect(&pool->conns[i]);
        }
    }
    return 0;
}

void opsc_pg_pool_set_state_cb(opsc_pg_pool_t *pool, opsc_pg_state_cb cb, void *arg) {
    pool->state_cb = cb;
    pool->state_arg = arg;
}

int opsc_pg_pool_set_conninfo(opsc_pg_pool_t *pool, const char *conninfo) {
    char *n = opsc_strdup(conninfo);
    if (!n) {
        return OPSC_ENOMEM;
    }
    opsc_free(pool->conninfo);
    pool->conninfo = n;
    /* The server is (back) there: whoever waits out a backoff tries now. */
    for (int i = 0; i < pool->nconns; i++) {
        pg_conn_t *c = &pool->conns[i];
        if (c->state == ST_DOWN && !pool->closing) {
            c->backoff_ms = 0;
            uv_timer_start(&c->timer, on_timer, 0, 0);
        }
    }
    return 0;
}

static void kick_close_cb(uv_handle_t *h) {
    opsc_pg_pool_t *pool = h->data;
    pool->handles_open--;
    pool_maybe_done(pool);
}

static void timer_close_cb(uv_handle_t *h) {
    pg_conn_t *c = h->data;
    c->pool->handles_open--;
    pool_maybe_done(c->pool);
}

static void pool_free(opsc_pg_pool_t *p) {
    for (int i = 0; i < p->nconns; i++) {
        opsc_free(p->conns[i].prepared);
    }
    opsc_pg_stmt_t *s = p->stmts;
    while (s) {
        opsc_pg_stmt_t *n = s->next;
        opsc_free(s->name);
        opsc_free(s->sql);
        opsc_free(s);
        s = n;
    }
    pg_listener_t *l = p->listeners;
    while (l) {
        pg_listener_t *n = l->next;
        opsc_free(l->channel);
        opsc_free(l);
        l = n;
    }
    opsc_free(p->conns);
    opsc_free(p->conninfo);
    opsc_free(p->application_name);
    opsc_free(p);
}

static void pool_maybe_done(opsc_pg_pool_t *pool) {
    if (pool->closing && pool->handles_open == 0) {
        void (*done)(void *) = pool->close_done;
        void *arg = pool->close_arg;
        pool_free(pool);
        if (done) {
            done(arg);
        }
    }
}

void opsc_pg_pool_close(opsc_pg_pool_t *pool, void (*done)(void *arg), void *arg) {
    if (pool->closing) {
        return;
    }
    pool->closing = 1;
    pool->close_done = done;
    pool->close_arg = arg;
    pool->handles_open++; /* hold: callbacks below may close handles synchronously */
    for (int k = 0; k < CONN_KINDS; k++) {
        pg_req_t *r;
        while ((r = fifo_pop(&pool->queue[k])) != NULL) {
            req_complete(r, OPSC_ESHUTDOWN, "pool closing", "57P01");
        }
    }
    for (int i = 0; i < pool->nconns; i++) {
        pg_conn_t *c = &pool->conns[i];
        if (c->state == ST_RESOLVING && c->gai_active) {
            uv_cancel((uv_req_t *)&c->gai); /* on_resolved releases its hold */
        }
        conn_stop_timer(c);
        conn_drop_poll(c);
        if (c->pg) {
            PQfinish(c->pg);
            c->pg = NULL;
        }
        pg_req_t *r;
        while ((r = fifo_pop(&c->inflight)) != NULL) {
            req_complete(r, OPSC_ESHUTDOWN, "pool closing", "57P01");
        }
        if (c->state != ST_RESOLVING) {
            c->state = ST_CLOSED;
        }
        uv_close((uv_handle_t *)&c->timer, timer_close_cb);
    }
    uv_close((uv_handle_t *)&pool->kick, kick_close_cb);
    pool->handles_open--;
    pool_maybe_done(pool);
}

size_t opsc_pg_pool_pending(const opsc_pg_pool_t *pool) {
    size_t n = 0;
    for (int k = 0; k < CONN_KINDS; k++) {
        if (k != CONN_LISTEN) {
            n += pool->queue[k].len;
        }
    }
    for (int i = 0; i < pool->nconns; i++) {
        if (pool->conns[i].kind != CONN_LISTEN) {
            n += pool->conns[i].inflight.len;
        }
    }
    return n;
}

int opsc_pg_pool_writer_up(const opsc_pg_pool_t *pool) {
    return pool->nconns > 0 && pool->conns[0].state == ST_READY;
}

const char *opsc_pg_pool_last_error(const opsc_pg_pool_t *pool) {
    return pool->nconns > 0 ? pool->conns[0].last_error : "";
}

opsc_pg_stmt_t *opsc_pg_stmt_register(opsc_pg_pool_t *pool, const char *name, const char *sql,
                                      int nparams) {
    for (opsc_pg_stmt_t *s = pool->stmts; s; s = s->next) {
        if (strcmp(s->name, name) == 0) {
            return strcmp(s->sql, sql) == 0 ? s : NULL;
        }
    }
    opsc_pg_stmt_t *s = opsc_calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    s->name = opsc_strdup(name);
    s->sql = opsc_strdup(sql);
    if (!s->name || !s->sql) {
        opsc_free(s->name);
        opsc_free(s->sql);
        opsc_free(s);
        return NULL;
    }
    s->nparams = nparams;
    s->index = pool->nstmts++;
    s->next = pool->stmts;
    pool->stmts = s;
    return s;
}

static int role_queue(opsc_pg_pool_t *pool, opsc_pg_role_t role) {
    if (role == OPSC_PG_READER && pool->nconns > 1 && pool->conns[1].kind == CONN_READER) {
        return CONN_READER;
    }
    if (role == OPSC_PG_BULK) {
        for (int i = 1; i < pool->nconns; i++) {
            if (pool->conns[i].kind == CONN_BULK) {
                return CONN_BULK;
            }
        }
    }
    return CONN_WRITER;
}

static int submit(opsc_pg_pool_t *pool, opsc_pg_role_t role, pg_req_t *r, opsc_pg_cb cb,
                  void *arg) {
    if (pool->closing) {
        req_free(r);
        return OPSC_ESHUTDOWN;
    }
    int k = role_queue(pool, role);
    if (pool->queue[k].len >= (size_t)pool->queue_max) {
        pool->n_rejected++;
        req_free(r);
        return OPSC_EQUEUE_FULL;
    }
    r->cb = cb;
    r->arg = arg;
    fifo_push(&pool->queue[k], r);
    pool_kick(pool);
    return 0;
}

int opsc_pg_query(opsc_pg_pool_t *pool, opsc_pg_role_t role, const char *sql, int nparams,
                  const char *const *params, opsc_pg_cb cb, void *arg) {
    pg_req_t *r = req_new(pool, REQ_SINGLE);
    if (!r) {
        return OPSC_ENOMEM;
    }
    int rc = req_add(r, sql, NULL, nparams, params, NULL);
    if (rc != 0) {
        req_free(r);
        return rc;
    }
    return submit(pool, role, r, cb, arg);
}

int opsc_pg_exec(opsc_pg_pool_t *pool, opsc_pg_role_t role, const opsc_pg_stmt_t *stmt, int nparams,
                 const char *const *params, opsc_pg_cb cb, void *arg) {
    if (!stmt) {
        return UV_EINVAL;
    }
    pg_req_t *r = req_new(pool, REQ_SINGLE);
    if (!r) {
        return OPSC_ENOMEM;
    }
    int rc = req_add(r, NULL, stmt, nparams, params, NULL);
    if (rc != 0) {
        req_free(r);
        return rc;
    }
    return submit(pool, role, r, cb, arg);
}

int opsc_pg_script(opsc_pg_pool_t *pool, opsc_pg_role_t role, const char *sql, opsc_pg_cb cb,
                   void *arg) {
    pg_req_t *r = req_new(pool, REQ_SCRIPT);
    if (!r) {
        return OPSC_ENOMEM;
    }
    int rc = req_add(r, sql, NULL, 0, NULL, NULL);
    if (rc != 0) {
        req_free(r);
        return rc;
    }
    return submit(pool, role, r, cb, arg);
}

struct opsc_pg_batch_s {
    opsc_pg_pool_t *pool;
    pg_req_t *req;
    int failed;
};

opsc_pg_batch_t *opsc_pg_batch_create(opsc_pg_pool_t *pool) {
    opsc_pg_batch_t *b = opsc_calloc(1, sizeof(*b));
    if (!b) {
        return NULL;
    }
    b->pool = pool;
    b->req = req_new(pool, REQ_BATCH);
    if (!b->req) {
        opsc_free(b);
        return NULL;
    }
    return b;
}

int opsc_pg_batch_add_query(opsc_pg_batch_t *b, const char *sql, int nparams,
                            const char *const *params) {
    int rc = req_add(b->req, sql, NULL, nparams, params, NULL);
    if (rc) {
        b->failed = rc;
    }
    return rc;
}

int opsc_pg_batch_add_exec(opsc_pg_batch_t *b, const opsc_pg_stmt_t *stmt, int nparams,
                           const char *const *params) {
    int rc = stmt ? req_add(b->req, NULL, stmt, nparams, params, NULL) : UV_EINVAL;
    if (rc) {
        b->failed = rc;
    }
    return rc;
}

int opsc_pg_batch_add_exec_bin(opsc_pg_batch_t *b, const opsc_pg_stmt_t *stmt, int nparams,
                               const char *const *params, const int *lengths) {
    int rc = stmt && lengths ? req_add(b->req, NULL, stmt, nparams, params, lengths) : UV_EINVAL;
    if (rc) {
        b->failed = rc;
    }
    return rc;
}

size_t opsc_pg_batch_size(const opsc_pg_batch_t *b) {
    return b->req->nitems;
}

int opsc_pg_batch_submit(opsc_pg_batch_t *b, opsc_pg_role_t role, opsc_pg_cb cb, void *arg) {
    pg_req_t *r = b->req;
    opsc_pg_pool_t *pool = b->pool;
    int failed = b->failed;
    opsc_free(b);
    if (failed || r->nitems == 0) {
        req_free(r);
        return failed ? failed : UV_EINVAL;
    }
    return submit(pool, role, r, cb, arg);
}

void opsc_pg_batch_destroy(opsc_pg_batch_t *b) {
    if (b) {
        req_free(b->req);
        opsc_free(b);
    }
}

int opsc_pg_listen(opsc_pg_pool_t *pool, const char *channel, opsc_pg_notify_cb cb, void *arg) {
    size_t n = strlen(channel);
    if (n == 0 || n > 63) {
        return UV_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = channel[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.')) {
            return UV_EINVAL;
        }
    }
    pg_listener_t *l = opsc_calloc(1, sizeof(*l));
    if (!l) {
        return OPSC_ENOMEM;
    }
    l->channel = opsc_strdup(channel);
    if (!l->channel) {
        opsc_free(l);
        return OPSC_ENOMEM;
    }
    l->cb = cb;
    l->arg = arg;
    l->next = pool->listeners;
    pool->listeners = l;
    pg_conn_t *lc = &pool->conns[pool->nconns - 1];
    if (lc->kind != CONN_LISTEN) {
        return UV_EINVAL; /* pool created without a LISTEN connection */
    }
    if (lc->state == ST_READY) {
        int rc = listen_issue(pool, l);
        if (rc != 0) {
            return rc;
        }
        pool_kick(pool);
    }
    return 0;
}

/* ---- results -------------------------------------------------------------- */

int opsc_pg_res_ntuples(const opsc_pg_res_t *res) {
    return res && res->r ? PQntuples(res->r) : 0;
}

int opsc_pg_res_nfields(const opsc_pg_res_t *res) {
    return res && res->r ? PQnfields(res->r) : 0;
}

const char *opsc_pg_res_value(const opsc_pg_res_t *res, int row, int col) {
    if (!res || !res->r || row < 0 || col < 0 || row >= PQntuples(res->r) ||
        col >= PQnfields(res->r) || PQgetisnull(res->r, row, col)) {
        return NULL;
    }
    return PQgetvalue(res->r, row, col);
}

const char *opsc_pg_res_field_name(const opsc_pg_res_t *res, int col) {
    return res && res->r ? PQfname(res->r, col) : NULL;
}

long opsc_pg_res_cmd_tuples(const opsc_pg_res_t *res) {
    if (!res || !res->r) {
        return -1;
    }
    const char *s = PQcmdTuples(res->r);
    return s && *s ? strtol(s, NULL, 10) : -1;
}

const char *opsc_pg_res_sqlstate(const opsc_pg_res_t *res) {
    return res ? res->sqlstate : "";
}

const char *opsc_pg_res_message(const opsc_pg_res_t *res) {
    return res && res->message ? res->message : "";
}

size_t opsc_pg_res_nitems(const opsc_pg_res_t *res) {
    return res ? res->nitems : 0;
}

const opsc_pg_res_t *opsc_pg_res_item(const opsc_pg_res_t *res, size_t i) {
    return res && i < res->nitems ? &res->items[i] : NULL;
}

/* ---- metrics -------------------------------------------------------------- */

void opsc_pg_pool_metrics(opsc_buf_t *out, void *arg) {
    opsc_pg_pool_t *pool = arg;
    char labels[96];
    opsc_metrics_family(out, "opsc_db_connection_up", "gauge",
                        "1 when the database connection is connected and ready");
    for (int i = 0; i < pool->nconns; i++) {
        pg_conn_t *c = &pool->conns[i];
        snprintf(labels, sizeof(labels), "role=\"%s\",index=\"%d\"", kind_names[c->kind], c->idx);
        opsc_metrics_sample(out, "opsc_db_connection_up", labels, c->state == ST_READY ? 1 : 0);
    }
    opsc_metrics_family(out, "opsc_db_connects_total", "counter",
                        "Successful database connections made, per connection");
    for (int i = 0; i < pool->nconns; i++) {
        pg_conn_t *c = &pool->conns[i];
        snprintf(labels, sizeof(labels), "role=\"%s\",index=\"%d\"", kind_names[c->kind], c->idx);
        opsc_metrics_sample_u64(out, "opsc_db_connects_total", labels, c->connects);
    }
    opsc_metrics_family(out, "opsc_db_queue_depth", "gauge",
                        "Requests waiting for a database connection, per role");
    for (int k = 0; k < CONN_KINDS; k++) {
        snprintf(labels, sizeof(labels), "role=\"%s\"", kind_names[k]);
        opsc_metrics_sample_u64(out, "opsc_db_queue_depth", labels, pool->queue[k].len);
    }
    opsc_metrics_family(out, "opsc_db_inflight", "gauge", "Requests sent and awaiting results");
    for (int k = 0; k < CONN_KINDS; k++) {
        size_t n = 0;
        for (int i = 0; i < pool->nconns; i++) {
            if (pool->conns[i].kind == k) {
                n += pool->conns[i].inflight.len;
            }
        }
        snprintf(labels, sizeof(labels), "role=\"%s\"", kind_names[k]);
        opsc_metrics_sample_u64(out, "opsc_db_inflight", labels, n);
    }
    opsc_metrics_one_u64(out, "opsc_db_queue_capacity", "gauge",
                         "Queue bound per role (database.queue_max)", (uint64_t)pool->queue_max);
    opsc_metrics_family(out, "opsc_db_requests_total", "counter",
                        "Database requests completed, by outcome");
    opsc_metrics_sample_u64(out, "opsc_db_requests_total", "result=\"ok\"", pool->n_ok);
    opsc_metrics_sample_u64(out, "opsc_db_requests_total", "result=\"error\"", pool->n_error);
    opsc_metrics_sample_u64(out, "opsc_db_requests_total", "result=\"connection_lost\"",
                            pool->n_lost);
    opsc_metrics_sample_u64(out, "opsc_db_requests_total", "result=\"rejected_queue_full\"",
                            pool->n_rejected);
    opsc_metrics_sample_u64(out, "opsc_db_requests_total", "result=\"shutdown\"", pool->n_shutdown);
    opsc_metrics_one_u64(out, "opsc_db_reconnect_attempts_total", "counter",
                         "Reconnect attempts scheduled after a failure", pool->n_reconnects);
    opsc_metrics_one_u64(out, "opsc_db_connect_failures_total", "counter",
                         "Connection attempts that failed", pool->n_connect_fail);
    opsc_metrics_one_u64(out, "opsc_db_notifications_total", "counter",
                         "LISTEN/NOTIFY notifications received", pool->n_notifies);
}
