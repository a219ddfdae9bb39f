/*
 * The live feed over WebSocket. See opsc/stream.h for what clients see.
 *
 * Ordering. Every read of alert rows, live changes and snapshots alike, goes
 * through one queue with one query in flight: a client is subscribed before
 * its snapshot is queued, so a change committed before the snapshot's query
 * ran is in the snapshot, and one committed after it is read after it and
 * reaches the client after the snapshot. Reader connections run side by side,
 * so without the single queue a change read before the snapshot could arrive
 * after it with an older state.
 *
 * Memory. A change is one frame (header and JSON) in a refcounted buffer;
 * each client's queue holds references, at most one per alert (a newer state
 * replaces the queued one in place) and at most max_pending of them, so a
 * client that stops reading costs bounded memory and never slows the others.
 * Writes go out as one gathered write of up to WRITE_BATCH frames.
 */
#include "opsc/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "opsc/alert.h"
#include "opsc/alert_json.h"
#include "opsc/alert_query.h"
#include "opsc/error.h"
#include "opsc/http.h"
#include "opsc/log.h"
#include "opsc/metrics.h"
#include "opsc/ops_server.h"
#include "opsc/transport.h"
#include "opsc/ws.h"

#define LOG "stream"
#define CHANNEL "opsc_alert_changes"
#define WRITE_BATCH 64
#define FETCH_MAX 2000     /* ids read back per query */
#define NOTIFY_PER_MSG 180 /* ids per NOTIFY: 38 bytes each, under the 8000-byte payload limit */
#define TICK_MS 500
#define CLOSE_WAIT_MS 5000 /* after our close frame: how long the peer has to answer it */
#define SEND_BUFFER 65536  /* kernel send buffer per client: backpressure shows early */

/* ---- shared frames ------------------------------------------------------------- */

typedef struct frame_s {
    size_t refs;
    size_t len;
    char data[];
} frame_t;

static frame_t *frame_new(int opcode, const void *payload, size_t n) {
    uint8_t h[10];
    size_t hl = opsc_ws_header(h, opcode, n);
    frame_t *f = opsc_malloc(sizeof(*f) + hl + n);
    if (f) {
        f->refs = 1;
        f->len = hl + n;
        memcpy(f->data, h, hl);
        if (n) {
            memcpy(f->data + hl, payload, n);
        }
    }
    return f;
}

static frame_t *frame_json(json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    frame_t *f = s ? frame_new(OPSC_WS_TEXT, s, strlen(s)) : NULL;
    free(s);
    return f;
}

static void frame_unref(frame_t *f) {
    if (f && --f->refs == 0) {
        opsc_free(f);
    }
}

/* ---- types ------------------------------------------------------------------ */

typedef struct qent_s {
    frame_t *f;
    char id[37]; /* the alert it carries; "" for frames never coalesced */
} qent_t;

typedef struct client_s client_t;
struct client_s {
    client_t *prev, *next; /* st->clients */
    opsc_stream_t *st;
    opsc_http_conn_t *conn; /* NULL once gone */
    opsc_transport_t *t;    /* NULL until handed over */
    int refs;               /* the connection, and each queued snapshot job */
    opsc_alert_query_t q;
    opsc_ws_reader_t rd;
    opsc_buf_t in;
    char accept[29];
    qent_t *queue;
    size_t qhead, qlen, qcap;
    uv_buf_t wbufs[WRITE_BATCH];
    frame_t *wframes[WRITE_BATCH];
    int nw;
    int snapshotting;          /* changes wait: the snapshot goes first */
    unsigned gen;              /* snapshot generation: a filter change makes older ones moot */
    struct job_s *waiting_job; /* queued, its query not yet sent: it will read the latest filter */
    int closing;               /* our close frame is queued: nothing more is */
    int close_sent;
    int peer_closed;
    int awaiting_pong;
    uint64_t close_deadline_ns;
    uint64_t next_ping_ns;
};

typedef struct job_s {
    struct job_s *next;
    client_t *cl;
    unsigned gen;
} job_t;

typedef struct pend_s {
    char id[37];
    const char *event;
    uint64_t seq;
    uint64_t t_ns; /* uv_hrtime() when the change was committed (or announced) */
} pend_t;

/* Delivery latency: from a change's commit to its frame queued for every client. */
static const double delivery_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
#define DELIVERY_BUCKETS (sizeof(delivery_le) / sizeof(delivery_le[0]))

struct opsc_stream_s {
    uv_loop_t *loop;
    opsc_pg_pool_t *pool;
    opsc_stream_options_t o;
    char instance[37];
    client_t clients; /* list head */
    size_t nclients;
    uv_timer_t tick;
    int tick_open;
    int listening;
    int busy; /* a query is in flight */
    int last_was_fetch;
    job_t *jhead, *jtail;
    pend_t *pend; /* ids to read back */
    size_t npend, cappend;
    uint64_t pend_seq;
    void (*close_done)(void *);
    void *close_arg;
    /* counters */
    uint64_t n_connects, n_frames, n_coalesced, n_slow_closed, n_protocol_closed, n_local, n_remote,
        n_notify_errors, n_snapshots, n_fetch_errors, n_dead;
    uint64_t delivery_bucket[DELIVERY_BUCKETS], n_delivered;
    double delivery_sum;
};

static void pump(opsc_stream_t *st);
static void client_flush(client_t *cl);
static void client_close(client_t *cl, int code, const char *reason);

static const char *const events[] = {
    "alert.created",      "alert.updated",  "alert.resolved", "alert.suppressed",
    "alert.acknowledged", "alert.reopened", "alert.expired",  NULL};
static const char event_codes[] = "cursaoe";

static int status_event(const char *ev) {
    return strcmp(ev, "alert.created") != 0 && strcmp(ev, "alert.updated") != 0;
}

/* ---- clients: lifetime and queue --------------------------------------------------- */

static void client_unref(client_t *cl) {
    if (--cl->refs > 0) {
        return;
    }
    opsc_alert_query_free(&cl->q);
    opsc_ws_reader_free(&cl->rd);
    opsc_buf_free(&cl->in);
    opsc_free(cl->queue);
    opsc_free(cl);
}

static void queue_drop(client_t *cl) {
    for (size_t i = 0; i < cl->qlen; i++) {
        frame_unref(cl->queue[cl->qhead + i].f);
    }
    cl->qhead = cl->qlen = 0;
}

static int queue_reserve(client_t *cl, size_t extra) {
    if (cl->qhead > 0 && cl->qhead + cl->qlen + extra > cl->qcap) {
        memmove(cl->queue, cl->queue + cl->qhead, cl->qlen * sizeof(qent_t));
        cl->qhead = 0;
    }
    if (cl->qlen + extra <= cl->qcap) {
        return 0;
    }
    size_t cap = cl->qcap ? cl->qcap * 2 : 16;
    while (cap < cl->qlen + extra) {
        cap *= 2;
    }
    qent_t *q = opsc_realloc(cl->queue, cap * sizeof(qent_t));
    if (!q) {
        return OPSC_ENOMEM;
    }
    cl->queue = q;
    cl->qcap = cap;
    return 0;
}

/* Queue a frame (taking a reference); id != NULL: an alert's state, coalesced per alert. */
static void client_send(client_t *cl, frame_t *f, const char *id) {
    if (!cl->t || cl->closing || !f) {
        return;
    }
    if (id) {
        for (size_t i = 0; i < cl->qlen; i++) {
            qent_t *e = &cl->queue[cl->qhead + i];
            if (strcmp(e->id, id) == 0) {
                /* Latest state only: the queued one was never sent. */
                frame_unref(e->f);
                f->refs++;
                e->f = f;
                cl->st->n_coalesced++;
                return;
            }
        }
        if (cl->qlen >= cl->st->o.max_pending) {
            cl->st->n_slow_closed++;
            client_close(cl, OPSC_WS_TRY_AGAIN_LATER, "too far behind");
            return;
        }
    }
    if (queue_reserve(cl, 1) != 0) {
        client_close(cl, OPSC_WS_TRY_AGAIN_LATER, "out of memory");
        return;
    }
    qent_t *e = &cl->queue[cl->qhead + cl->qlen++];
    f->refs++;
    e->f = f;
    snprintf(e->id, sizeof(e->id), "%s", id ? id : "");
    cl->st->n_frames++;
    client_flush(cl);
}

static void send_json(client_t *cl, json_t *j) {
    frame_t *f = frame_json(j);
    json_decref(j);
    client_send(cl, f, NULL);
    frame_unref(f);
}

static void on_write(opsc_transport_t *t, int status) {
    client_t *cl = t->data;
    for (int i = 0; i < cl->nw; i++) {
        frame_unref(cl->wframes[i]);
    }
    cl->nw = 0;
    if (status < 0 || !cl->conn) {
        if (cl->conn) {
            opsc_http_upgraded_close(cl->conn);
        }
        return;
    }
    client_flush(cl);
}

static void client_flush(client_t *cl) {
    if (!cl->t || !cl->conn || cl->nw > 0) {
        return;
    }
    size_t n = 0;
    /* During a snapshot only control frames (the close) may pass the changes waiting. */
    while (n < WRITE_BATCH && n < cl->qlen && (!cl->snapshotting || cl->closing)) {
        qent_t *e = &cl->queue[cl->qhead + n];
        cl->wframes[n] = e->f;
        cl->wbufs[n] = uv_buf_init(e->f->data, (unsigned)e->f->len);
        n++;
    }
    if (n == 0) {
        if (cl->closing && cl->qlen == 0) {
            cl->close_sent = 1;
            if (cl->peer_closed) {
                opsc_http_upgraded_close(cl->conn);
            }
        }
        return;
    }
    cl->qhead += n;
    cl->qlen -= n;
    if (cl->qlen == 0) {
        cl->qhead = 0;
    }
    cl->nw = (int)n;
    if (opsc_transport_write(cl->t, cl->wbufs, (unsigned)n, on_write) != 0) {
        for (size_t i = 0; i < n; i++) {
            frame_unref(cl->wframes[i]);
        }
        cl->nw = 0;
        opsc_http_upgraded_close(cl->conn);
    }
}

/* Our side of the close handshake: what is queued is dropped, the close frame goes next. */
static void client_close(client_t *cl, int code, const char *reason) {
    if (cl->closing || !cl->conn) {
        return;
    }
    uint8_t p[125];
    size_t rl = strlen(reason) > 100 ? 100 : strlen(reason);
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    memcpy(p + 2, reason, rl);
    queue_drop(cl);
    frame_t *f = frame_new(OPSC_WS_CLOSE, p, 2 + rl);
    if (f && queue_reserve(cl, 1) == 0) {
        cl->queue[cl->qhead + cl->qlen].f = f;
        cl->queue[cl->qhead + cl->qlen].id[0] = '\0';
        cl->qlen++;
    } else {
        frame_unref(f);
    }
    cl->closing = 1;
    cl->close_deadline_ns = uv_hrtime() + (uint64_t)CLOSE_WAIT_MS * 1000000u;
    client_flush(cl);
}

/* ---- snapshots ------------------------------------------------------------------- */

static void job_push(opsc_stream_t *st, client_t *cl) {
    if (cl->waiting_job) {
        /* A client changing its filter faster than snapshots are read costs one query. */
        cl->waiting_job->gen = ++cl->gen;
        return;
    }
    job_t *j = opsc_calloc(1, sizeof(*j));
    if (!j) {
        client_close(cl, OPSC_WS_TRY_AGAIN_LATER, "out of memory");
        return;
    }
    j->cl = cl;
    j->gen = ++cl->gen;
    cl->waiting_job = j;
    cl->refs++;
    cl->snapshotting = 1;
    if (st->jtail) {
        st->jtail->next = j;
    } else {
        st->jhead = j;
    }
    st->jtail = j;
    pump(st);
}

/* The snapshot's pages go in front of the changes that waited for them. */
static void snapshot_deliver(client_t *cl, const opsc_pg_res_t *res) {
    size_t page = cl->st->o.snapshot_page, nrows = (size_t)opsc_pg_res_ntuples(res);
    size_t npages = nrows == 0 ? 1 : (nrows + page - 1) / page;
    qent_t *waiting = NULL;
    size_t nwaiting = cl->qlen;
    if (nwaiting > 0) {
        waiting = opsc_malloc(nwaiting * sizeof(*waiting));
        if (!waiting) {
            client_close(cl, OPSC_WS_TRY_AGAIN_LATER, "out of memory");
            return;
        }
        memcpy(waiting, cl->queue + cl->qhead, nwaiting * sizeof(*waiting));
    }
    cl->qhead = cl->qlen = 0;
    /* Still snapshotting while the pages are queued: nothing is written before the last. */
    for (size_t p = 0; p < npages; p++) {
        json_t *alerts = json_array();
        for (size_t r = p * page; r < nrows && r < (p + 1) * page; r++) {
            json_array_append_new(alerts, opsc_alert_json_row(res, (int)r, 0));
        }
        json_t *m = json_pack("{s:s,s:o,s:b}", "type", "snapshot", "alerts", alerts, "more",
                              p + 1 < npages);
        if (m && p + 1 == npages && nrows >= cl->st->o.snapshot_max) {
            json_object_set_new(m, "truncated", json_true());
        }
        send_json(cl, m);
    }
    for (size_t i = 0; i < nwaiting; i++) {
        if (!cl->closing && queue_reserve(cl, 1) == 0) {
            cl->queue[cl->qhead + cl->qlen++] = waiting[i];
        } else {
            frame_unref(waiting[i].f);
        }
    }
    opsc_free(waiting);
    cl->snapshotting = 0;
    cl->st->n_snapshots++;
    client_flush(cl);
}

static void on_snapshot(int err, const opsc_pg_res_t *res, void *arg) {
    job_t *j = arg;
    client_t *cl = j->cl;
    opsc_stream_t *st = cl->st;
    st->busy = 0;
    if (cl->conn && !cl->closing) {
        if (err != 0) {
            opsc_log_warn(LOG, "snapshot query failed: %s", opsc_pg_res_message(res));
            client_close(cl, OPSC_WS_TRY_AGAIN_LATER, "snapshot unavailable");
        } else if (j->gen == cl->gen) {
            snapshot_deliver(cl, res);
        }
    }
    client_unref(cl);
    opsc_free(j);
    pump(st);
}

static int run_snapshot(opsc_stream_t *st, job_t *j) {
    client_t *cl = j->cl;
    const char *params[OPSC_AQ_MAX_PARAMS];
    int np = 0;
    opsc_buf_t sql = OPSC_BUF_INIT;
    int rc = opsc_buf_printf(&sql, "SELECT %s FROM alerts a WHERE true", opsc_alert_json_columns);
    if (rc == 0 && cl->q.n[OPSC_AQ_STATUS] == 0) {
        rc = opsc_buf_appends(&sql, " AND a.status IN ('active', 'acknowledged', 'suppressed')");
    }
    rc = rc ? rc : opsc_alert_query_where(&cl->q, &sql, params, &np);
    rc = rc ? rc : opsc_buf_appends(&sql, " ORDER BY a.occurred_at DESC, a.id DESC");
    rc = rc ? rc : opsc_buf_printf(&sql, " LIMIT %zu", st->o.snapshot_max);
    rc = rc ? rc : opsc_pg_query(st->pool, OPSC_PG_READER, sql.base, np, params, on_snapshot, j);
    opsc_buf_free(&sql);
    return rc;
}

/* ---- changes: read back and broadcast ------------------------------------------------ */

static int cmp_pend(const void *a, const void *b) {
    const pend_t *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->seq < y->seq ? -1 : x->seq > y->seq);
}

static void pend_add(opsc_stream_t *st, const char *id, const char *event) {
    if (st->nclients == 0) {
        return; /* nobody to tell */
    }
    if (st->npend == st->cappend) {
        size_t cap = st->cappend ? st->cappend * 2 : 256;
        pend_t *p = opsc_realloc(st->pend, cap * sizeof(*p));
        if (!p) {
            return;
        }
        st->pend = p;
        st->cappend = cap;
    }
    pend_t *p = &st->pend[st->npend++];
    snprintf(p->id, sizeof(p->id), "%s", id);
    p->event = event;
    p->seq = ++st->pend_seq;
    p->t_ns = uv_hrtime();
}

typedef struct fetch_s {
    opsc_stream_t *st;
    pend_t *ids; /* sorted by id, one per alert */
    size_t n;
} fetch_t;

static const pend_t *fetch_find(const fetch_t *f, const char *id) {
    pend_t key;
    snprintf(key.id, sizeof(key.id), "%s", id ? id : "");
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(f->ids[mid].id, key.id);
        if (c == 0) {
            return &f->ids[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

static void broadcast(opsc_stream_t *st, const opsc_pg_res_t *res, const fetch_t *f) {
    for (int r = 0; r < opsc_pg_res_ntuples(res); r++) {
        json_t *alert = opsc_alert_json_row(res, r, 0);
        const char *site = opsc_pg_res_value(res, r, OPSC_ALERT_JSON_NCOLS);
        const char *id = json_string_value(json_object_get(alert, "id"));
        const pend_t *pe = fetch_find(f, id);
        const char *ev = pe ? pe->event : "alert.updated";
        frame_t *fr = NULL; /* serialized once, for the first client that wants it */
        for (client_t *cl = st->clients.next; alert && cl != &st->clients; cl = cl->next) {
            if (!cl->t || cl->closing ||
                !opsc_alert_query_match(&cl->q, alert, site, status_event(ev))) {
                continue;
            }
            if (!fr) {
                json_t *m = json_pack("{s:s,s:O}", "type", ev, "alert", alert);
                fr = frame_json(m);
                json_decref(m);
            }
            client_send(cl, fr, id);
        }
        if (fr && pe) {
            double lat = (double)(uv_hrtime() - pe->t_ns) / 1e9;
            opsc_metrics_observe(delivery_le, st->delivery_bucket, DELIVERY_BUCKETS, lat);
            st->n_delivered++;
            st->delivery_sum += lat;
        }
        frame_unref(fr);
        json_decref(alert);
    }
}

static void on_fetched(int err, const opsc_pg_res_t *res, void *arg) {
    fetch_t *f = arg;
    opsc_stream_t *st = f->st;
    st->busy = 0;
    if (err != 0) {
        /* The ids are lost for the live stream; a client's next snapshot is complete again. */
        st->n_fetch_errors++;
        opsc_log_warn(LOG, "reading %zu changed alerts failed: %s", f->n, opsc_pg_res_message(res));
    } else {
        broadcast(st, res, f);
    }
    opsc_free(f->ids);
    opsc_free(f);
    pump(st);
}

static int run_fetch(opsc_stream_t *st) {
    qsort(st->pend, st->npend, sizeof(*st->pend), cmp_pend);
    /* One per alert: a creation stays a creation, else the latest event wins. */
    size_t n = 0;
    for (size_t i = 0; i < st->npend; i++) {
        if (n > 0 && strcmp(st->pend[n - 1].id, st->pend[i].id) == 0) {
            if (strcmp(st->pend[n - 1].event, "alert.created") != 0) {
                st->pend[n - 1].event = st->pend[i].event;
            }
            continue;
        }
        st->pend[n++] = st->pend[i];
    }
    size_t take = n < FETCH_MAX ? n : FETCH_MAX;
    fetch_t *f = opsc_calloc(1, sizeof(*f));
    opsc_buf_t arr = OPSC_BUF_INIT;
    int rc = f ? 0 : OPSC_ENOMEM;
    if (rc == 0 && !(f->ids = opsc_malloc(take * sizeof(pend_t)))) {
        rc = OPSC_ENOMEM;
    }
    if (rc == 0) {
        f->st = st;
        f->n = take;
        memcpy(f->ids, st->pend, take * sizeof(pend_t));
        memmove(st->pend, st->pend + take, (n - take) * sizeof(pend_t));
        st->npend = n - take;
        rc = opsc_buf_appends(&arr, "{");
        for (size_t i = 0; rc == 0 && i < take; i++) {
            rc = opsc_buf_printf(&arr, "%s%s", i ? "," : "", f->ids[i].id);
        }
        rc = rc ? rc : opsc_buf_appends(&arr, "}");
    }
    if (rc == 0) {
        static const char sql[] =
            "SELECT %s, d.site FROM alerts a LEFT JOIN devices d ON d.ip_address = a.device_ip "
            "WHERE a.id = ANY($1::uuid[])";
        char q[4096];
        snprintf(q, sizeof(q), sql, opsc_alert_json_columns);
        const char *params[1] = {arr.base};
        rc = opsc_pg_query(st->pool, OPSC_PG_READER, q, 1, params, on_fetched, f);
    }
    opsc_buf_free(&arr);
    if (rc != 0 && f) {
        opsc_free(f->ids);
        opsc_free(f);
    }
    return rc;
}

/* One read at a time, live changes and snapshots taking turns. */
static void pump(opsc_stream_t *st) {
    while (!st->busy && (st->npend > 0 || st->jhead)) {
        int fetch = st->npend > 0 && (!st->jhead || !st->last_was_fetch);
        int rc;
        if (fetch) {
            if (st->nclients == 0) {
                st->npend = 0;
                continue;
            }
            st->last_was_fetch = 1;
            rc = run_fetch(st);
            if (rc != 0) {
                st->n_fetch_errors++;
                st->npend = 0;
                continue;
            }
        } else {
            job_t *j = st->jhead;
            st->jhead = j->next;
            if (!st->jhead) {
                st->jtail = NULL;
            }
            st->last_was_fetch = 0;
            j->cl->waiting_job = NULL;
            if (!j->cl->conn || j->cl->closing) {
                client_unref(j->cl);
                opsc_free(j);
                continue;
            }
            rc = run_snapshot(st, j);
            if (rc != 0) {
                client_close(j->cl, OPSC_WS_TRY_AGAIN_LATER, "database busy");
                client_unref(j->cl);
                opsc_free(j);
                continue;
            }
        }
        st->busy = 1;
    }
}

/* ---- this instance's commits, and the others' ---------------------------------------- */

static void on_notified(int err, const opsc_pg_res_t *res, void *arg) {
    opsc_stream_t *st = arg;
    (void)res;
    if (err != 0) {
        st->n_notify_errors++;
    }
}

static void notify_send(opsc_stream_t *st, opsc_buf_t *b) {
    const char *params[1] = {b->base};
    if (opsc_pg_query(st->pool, OPSC_PG_WRITER, "SELECT pg_notify('" CHANNEL "', $1)", 1, params,
                      on_notified, st) != 0) {
        st->n_notify_errors++;
    }
    opsc_buf_reset(b);
}

void opsc_stream_committed(const opsc_store_committed_t *items, size_t n, void *arg) {
    opsc_stream_t *st = arg;
    opsc_buf_t b = OPSC_BUF_INIT;
    size_t in_msg = 0;
    for (size_t i = 0; i < n; i++) {
        char id[37];
        opsc_uuid_format(&items[i].id, id);
        pend_add(st, id, items[i].event);
        st->n_local++;
        /* Other instances: "<instance> c<id>,u<id>,..." in payloads under 8000 bytes. */
        int k = 0;
        while (events[k] && strcmp(events[k], items[i].event) != 0) {
            k++;
        }
        if (in_msg == 0) {
            opsc_buf_printf(&b, "%s ", st->instance);
        }
        opsc_buf_printf(&b, "%s%c%s", in_msg ? "," : "", events[k] ? event_codes[k] : 'u', id);
        if (++in_msg == NOTIFY_PER_MSG) {
            notify_send(st, &b);
            in_msg = 0;
        }
    }
    if (in_msg > 0) {
        notify_send(st, &b);
    }
    opsc_buf_free(&b);
    pump(st);
}

static void on_notify(const char *channel, const char *payload, void *arg) {
    opsc_stream_t *st = arg;
    (void)channel;
    if (!payload || strlen(payload) < 37 || strncmp(payload, st->instance, 36) == 0) {
        return; /* our own: already fed from the commit hook */
    }
    const char *p = payload + 37;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *code = strchr(event_codes, p[0]);
        opsc_uuid_t u;
        char id[37];
        if (len == 37 && code && p[0]) {
            memcpy(id, p + 1, 36);
            id[36] = '\0';
            if (opsc_uuid_parse(id, &u) == 0) {
                pend_add(st, id, events[code - event_codes]);
                st->n_remote++;
            }
        }
        p += len + (p[len] == ',');
    }
    pump(st);
}

/* ---- WebSocket connection ------------------------------------------------------------ */

static void on_alloc(opsc_transport_t *t, size_t suggested, uv_buf_t *buf) {
    client_t *cl = t->data;
    (void)suggested;
    if (opsc_buf_reserve(&cl->in, 16384) != 0) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(cl->in.base + cl->in.len, (unsigned)(cl->in.cap - cl->in.len - 1));
}

/* {"type": "filter", "filters": {"severity": "critical,major", "tag": ["a", "b"]}} */
static void on_text(client_t *cl, const uint8_t *data, size_t len) {
    json_t *j = json_loadb((const char *)data, len, 0, NULL);
    json_t *filters = json_object_get(j, "filters");
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type || strcmp(type, "filter") != 0 || (filters && !json_is_object(filters))) {
        send_json(cl, json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "code", "malformed",
                                "message", "expected {\"type\": \"filter\", \"filters\": {...}}"));
        json_decref(j);
        return;
    }
    /* Back to a query string, so that one parser decides what a filter means. */
    opsc_buf_t qs = OPSC_BUF_INIT;
    const char *key;
    json_t *v;
    json_object_foreach(filters, key, v) {
        size_t n = json_is_array(v) ? json_array_size(v) : 1;
        opsc_buf_printf(&qs, "%s%s=", qs.len ? "&" : "", key);
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
            const char *s = json_string_value(e);
            char num[32];
            if (!s && json_is_integer(e)) {
                snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(e));
                s = num;
            }
            opsc_buf_appends(&qs, i ? "," : "");
            for (; s && *s; s++) {
                opsc_buf_printf(&qs, "%%%02X", (unsigned char)*s);
            }
        }
    }
    opsc_alert_query_t q;
    char field[64], msg[256];
    if (opsc_alert_query_parse(qs.base ? qs.base : "", &q, field, sizeof(field), msg,
                               sizeof(msg)) != 0) {
        opsc_alert_query_free(&q);
        send_json(cl, json_pack("{s:s,s:{s:s,s:s,s:s}}", "type", "error", "error", "code",
                                "validation", "message", msg, "field", field));
    } else {
        /* Changes queued under the old filter are moot: the new snapshot replaces them. */
        opsc_alert_query_free(&cl->q);
        cl->q = q;
        queue_drop(cl);
        job_push(cl->st, cl);
    }
    opsc_buf_free(&qs);
    json_decref(j);
}

static void on_message(client_t *cl, const opsc_ws_msg_t *m) {
    switch (m->opcode) {
    case OPSC_WS_TEXT:
        on_text(cl, m->data, m->len);
        break;
    case OPSC_WS_BINARY:
        cl->st->n_protocol_closed++;
        client_close(cl, 1003, "text messages only");
        break;
    case OPSC_WS_PING: {
        frame_t *f = frame_new(OPSC_WS_PONG, m->data, m->len);
        client_send(cl, f, NULL);
        frame_unref(f);
        break;
    }
    case OPSC_WS_PONG:
        cl->awaiting_pong = 0;
        break;
    case OPSC_WS_CLOSE:
        cl->peer_closed = 1;
        if (cl->closing) {
            if (cl->close_sent) {
                opsc_http_upgraded_close(cl->conn);
            }
        } else {
            /* Echo the peer's code (RFC 6455 5.5.1), unless it is one no endpoint may send. */
            int code = m->len >= 2 ? (m->data[0] << 8) | m->data[1] : OPSC_WS_NORMAL;
            int valid = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
                        (code >= 3000 && code <= 4999);
            client_close(cl, valid ? code : OPSC_WS_PROTOCOL_ERROR, "");
        }
        break;
    default:
        break;
    }
}

static void on_read(opsc_transport_t *t, ssize_t nread, const uv_buf_t *buf) {
    client_t *cl = t->data;
    (void)buf;
    if (!cl->conn) {
        return;
    }
    if (nread < 0) {
        opsc_http_upgraded_close(cl->conn);
        return;
    }
    cl->in.len += (size_t)nread;
    if (cl->peer_closed) {
        cl->in.len = 0; /* after its close frame a peer has nothing more to say */
        return;
    }
    while (cl->conn && !cl->peer_closed) {
        size_t used = 0;
        opsc_ws_msg_t m;
        int rc = opsc_ws_read(&cl->rd, (uint8_t *)cl->in.base, cl->in.len, &used, &m);
        if (rc < 0) {
            cl->st->n_protocol_closed++;
            opsc_transport_read_stop(t);
            client_close(cl, -rc, rc == -OPSC_WS_TOO_BIG ? "message too big" : "protocol error");
            cl->peer_closed = 1; /* nothing more is read: close once our frame is out */
            if (cl->close_sent) {
                opsc_http_upgraded_close(cl->conn);
            }
            return;
        }
        if (rc == 1) {
            on_message(cl, &m);
        }
        if (cl->conn) {
            memmove(cl->in.base, cl->in.base + used, cl->in.len - used);
            cl->in.len -= used;
        }
        if (rc == 0) {
            break;
        }
    }
}

static void client_start(void *arg, opsc_transport_t *t, const char *rest, size_t len) {
    client_t *cl = arg;
    opsc_stream_t *st = cl->st;
    char head[256];
    cl->t = t;
    t->data = cl;
    int sz = SEND_BUFFER;
    uv_send_buffer_size((uv_handle_t *)&t->tcp, &sz);
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     cl->accept);
    frame_t *f = opsc_malloc(sizeof(*f) + (size_t)n);
    if (f) {
        f->refs = 1;
        f->len = (size_t)n;
        memcpy(f->data, head, (size_t)n);
    }
    /* Subscribed from here on: changes queue behind the snapshot. */
    cl->prev = st->clients.prev;
    cl->next = &st->clients;
    st->clients.prev->next = cl;
    st->clients.prev = cl;
    st->nclients++;
    st->n_connects++;
    cl->next_ping_ns = uv_hrtime() + (uint64_t)st->o.ping_interval_ms * 1000000u;
    client_send(cl, f, NULL);
    frame_unref(f);
    if (len > 0 && opsc_buf_append(&cl->in, rest, len) != 0) {
        opsc_http_upgraded_close(cl->conn);
        return;
    }
    if (opsc_transport_read_start(t, on_alloc, on_read) != 0) {
        opsc_http_upgraded_close(cl->conn);
        return;
    }
    job_push(st, cl);
    if (len > 0) {
        on_read(t, 0, NULL);
    }
}

static void client_gone(void *arg) {
    client_t *cl = arg;
    opsc_stream_t *st = cl->st;
    if (cl->t) {
        cl->prev->next = cl->next;
        cl->next->prev = cl->prev;
        st->nclients--;
    }
    /* Pending write callbacks ran before this (with UV_ECANCELED). */
    queue_drop(cl);
    cl->conn = NULL;
    cl->t = NULL;
    client_unref(cl);
}

static const opsc_http_upgrade_t upgrade_ops = {.start = client_start, .gone = client_gone};

static int header_has_token(const char *v, const char *token) {
    size_t n = strlen(token);
    while (v && *v) {
        v += strspn(v, " \t,");
        size_t len = strcspn(v, " \t,");
        if (len == n && strncasecmp(v, token, n) == 0) {
            return 1;
        }
        v += len;
    }
    return 0;
}

static void handle_stream(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    opsc_stream_t *st = arg;
    const char *key = opsc_http_req_header(req, "Sec-WebSocket-Key");
    const char *ver = opsc_http_req_header(req, "Sec-WebSocket-Version");
    if (!header_has_token(opsc_http_req_header(req, "Upgrade"), "websocket") ||
        !header_has_token(opsc_http_req_header(req, "Connection"), "upgrade")) {
        opsc_http_error_ex(c, 426, "upgrade_required", "this endpoint is a WebSocket", NULL,
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n");
        return;
    }
    if (!ver || strcmp(ver, "13") != 0) {
        opsc_http_error_ex(c, 426, "upgrade_required", "WebSocket version 13 only",
                           "Sec-WebSocket-Version", "Sec-WebSocket-Version: 13\r\n");
        return;
    }
    client_t *cl = opsc_calloc(1, sizeof(*cl));
    if (!cl) {
        opsc_http_error_retry(c, 503, "unavailable", "out of memory", 1);
        return;
    }
    if (opsc_ws_accept_key(key, cl->accept) != 0) {
        opsc_free(cl);
        opsc_http_error(c, 400, "bad_request", "missing or malformed Sec-WebSocket-Key",
                        "Sec-WebSocket-Key");
        return;
    }
    char field[64], msg[256];
    if (opsc_alert_query_parse(opsc_http_req_query(req), &cl->q, field, sizeof(field), msg,
                               sizeof(msg)) != 0) {
        opsc_alert_query_free(&cl->q);
        opsc_free(cl);
        opsc_http_error(c, 422, "validation", msg, field);
        return;
    }
    cl->st = st;
    cl->conn = c;
    cl->refs = 1;
    cl->rd.max_message = st->o.max_message;
    opsc_http_upgrade(c, &upgrade_ops, cl);
}

static const opsc_http_route_t routes[] = {
    {.methods = OPSC_HTTP_M(OPSC_HTTP_GET),
     .path = "/api/v1/stream",
     .handler = handle_stream,
     .roles = OPSC_ROLES_READ},
};

/* ---- heartbeats and close deadlines --------------------------------------------------- */

static void on_tick(uv_timer_t *h) {
    opsc_stream_t *st = h->data;
    uint64_t now = uv_hrtime();
    for (client_t *cl = st->clients.next; cl != &st->clients; cl = cl->next) {
        if (!cl->conn) {
            continue;
        }
        if (cl->closing) {
            if (now >= cl->close_deadline_ns) {
                opsc_http_upgraded_close(cl->conn); /* the peer never answered our close */
            }
            continue;
        }
        if (now < cl->next_ping_ns) {
            continue;
        }
        if (cl->awaiting_pong) {
            st->n_dead++;
            client_close(cl, OPSC_WS_GOING_AWAY, "no pong");
            continue;
        }
        cl->awaiting_pong = 1;
        cl->next_ping_ns = now + (uint64_t)st->o.ping_interval_ms * 1000000u;
        frame_t *f = frame_new(OPSC_WS_PING, "hb", 2);
        client_send(cl, f, NULL);
        frame_unref(f);
    }
}

/* ---- lifecycle -------------------------------------------------------------------- */

int opsc_stream_create(uv_loop_t *loop, opsc_pg_pool_t *pool, const opsc_stream_options_t *opts,
                       opsc_stream_t **out) {
    opsc_stream_t *st = opsc_calloc(1, sizeof(*st));
    if (!st) {
        return OPSC_ENOMEM;
    }
    st->loop = loop;
    st->pool = pool;
    st->o = (opsc_stream_options_t){.max_pending = 1000,
                                    .max_message = 65536,
                                    .ping_interval_ms = 30000,
                                    .snapshot_page = 500,
                                    .snapshot_max = 10000};
    if (opts) {
        st->o.max_pending = opts->max_pending ? opts->max_pending : st->o.max_pending;
        st->o.max_message = opts->max_message ? opts->max_message : st->o.max_message;
        st->o.ping_interval_ms =
            opts->ping_interval_ms ? opts->ping_interval_ms : st->o.ping_interval_ms;
        st->o.snapshot_page = opts->snapshot_page ? opts->snapshot_page : st->o.snapshot_page;
        st->o.snapshot_max = opts->snapshot_max ? opts->snapshot_max : st->o.snapshot_max;
    }
    opsc_uuid_t u;
    opsc_uuid_generate(&u);
    opsc_uuid_format(&u, st->instance);
    st->clients.next = st->clients.prev = &st->clients;
    uv_timer_init(loop, &st->tick);
    st->tick.data = st;
    st->tick_open = 1;
    uv_timer_start(&st->tick, on_tick, TICK_MS, TICK_MS);
    uv_unref((uv_handle_t *)&st->tick);
    *out = st;
    return 0;
}

int opsc_stream_add_routes(opsc_stream_t *st, opsc_ops_server_t *srv) {
    return opsc_ops_server_add_routes(srv, routes, sizeof(routes) / sizeof(routes[0]), st);
}

void opsc_stream_start(opsc_stream_t *st) {
    if (!st->listening && opsc_pg_listen(st->pool, CHANNEL, on_notify, st) == 0) {
        st->listening = 1;
    }
}

static void tick_closed(uv_handle_t *h) {
    opsc_stream_t *st = h->data;
    st->tick_open = 0;
    if (st->close_done) {
        st->close_done(st->close_arg);
    }
}

void opsc_stream_close(opsc_stream_t *st, void (*done)(void *arg), void *arg) {
    st->close_done = done;
    st->close_arg = arg;
    uv_timer_stop(&st->tick);
    uv_close((uv_handle_t *)&st->tick, tick_closed);
}

void opsc_stream_destroy(opsc_stream_t *st) {
    if (!st) {
        return;
    }
    /* Jobs still queued hold their clients, long gone with the HTTP server. */
    while (st->jhead) {
        job_t *j = st->jhead;
        st->jhead = j->next;
        client_unref(j->cl);
        opsc_free(j);
    }
    opsc_free(st->pend);
    opsc_free(st);
}

void opsc_stream_metrics(opsc_buf_t *out, void *arg) {
    opsc_stream_t *st = arg;
    opsc_metrics_one_u64(out, "opsc_stream_clients", "gauge", "WebSocket feed clients connected",
                         st->nclients);
    size_t longest = 0;
    for (const client_t *cl = st->clients.next; cl != &st->clients; cl = cl->next) {
        longest = cl->qlen > longest ? cl->qlen : longest;
    }
    opsc_metrics_one_u64(out, "opsc_stream_queue_longest", "gauge",
                         "Frames waiting for the feed client furthest behind", longest);
    opsc_metrics_one_u64(out, "opsc_stream_connects_total", "counter",
                         "WebSocket feed clients accepted", st->n_connects);
    opsc_metrics_one_u64(out, "opsc_stream_frames_total", "counter",
                         "Frames queued to feed clients", st->n_frames);
    opsc_metrics_one_u64(out, "opsc_stream_coalesced_total", "counter",
                         "Queued alert states replaced by a newer one (slow clients)",
                         st->n_coalesced);
    opsc_metrics_one_u64(out, "opsc_stream_slow_closed_total", "counter",
                         "Feed clients closed with 1013: too many alerts waiting",
                         st->n_slow_closed);
    opsc_metrics_one_u64(out, "opsc_stream_protocol_closed_total", "counter",
                         "Feed clients closed for a protocol error (1002, 1003, 1007, 1009)",
                         st->n_protocol_closed);
    opsc_metrics_one_u64(out, "opsc_stream_dead_closed_total", "counter",
                         "Feed clients closed for not answering a ping", st->n_dead);
    opsc_metrics_one_u64(out, "opsc_stream_snapshots_total", "counter", "Snapshots sent",
                         st->n_snapshots);
    opsc_metrics_histogram(out, "opsc_stream_delivery_seconds",
                           "From a change's commit to its frame queued for every matching client "
                           "(the alert read included)",
                           delivery_le, st->delivery_bucket, DELIVERY_BUCKETS, st->n_delivered,
                           st->delivery_sum);
    opsc_metrics_one_u64(out, "opsc_stream_changes_local_total", "counter",
                         "Alert changes committed by this instance", st->n_local);
    opsc_metrics_one_u64(out, "opsc_stream_changes_remote_total", "counter",
                         "Alert changes announced by other instances (NOTIFY)", st->n_remote);
    opsc_metrics_one_u64(out, "opsc_stream_notify_errors_total", "counter",
                         "NOTIFYs of changed alerts that failed", st->n_notify_errors);
    opsc_metrics_one_u64(out, "opsc_stream_read_errors_total", "counter",
                         "Reads of changed alerts that failed (those changes were not streamed)",
                         st->n_fetch_errors);
}
