/*
 * The pipeline thread and the two rings around it (see include/opsc/pipeline.h).
 *
 * The thread runs a libuv loop of its own with one uv_async_t: the loop
 * thread sends it only when the thread has said it is going to sleep
 * (opsc_ring_should_wake), so a storm costs one wake-up per drained batch,
 * not one per datagram. The thread drains at most BATCH records per turn,
 * turns dirty dedup entries into one REPEAT change each, pushes its changes
 * into the change ring and wakes the loop thread the same way.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <sys/prctl.h>

#include "correlate_int.h"
#include "maintenance_int.h"
#include <jansson.h>

#include "opsc/alert_query.h"
#include "opsc/buf.h"
#include "opsc/dedup.h"
#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/metrics.h"
#include "opsc/normalize.h"
#include "opsc/pipeline.h"
#include "opsc/ring.h"
#include "opsc/snmp_decode.h"
#include "opsc/wake.h"
#include "trap_storm.h"

#define LOG "pipeline"
#define BATCH 4096
#define DEFAULT_INGEST (64u << 20)
#define DEFAULT_CHANGES (4u << 20)

enum {
    REC_DATAGRAM = 1,
    REC_NORMALIZER = 2,
    REC_ACTIVE = 3,
    REC_MAINT = 4,
    REC_STORM = 5,
    REC_EVENTS = 6,  /* normalized events (HTTP): ptr = opsc_alert_t *[n], token = the ack */
    REC_ACTIONS = 7, /* alert actions of people: ptr = opsc_action_batch_t, token = the ack */
};

/* Ingest ring record header; a datagram's bytes follow it. */
typedef struct rec_s {
    uint32_t kind;
    uint32_t len;
    int32_t listener;
    uint32_t pad;
    int64_t wall_us;
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } from;
    void *ptr; /* REC_NORMALIZER, REC_ACTIVE, REC_MAINT, REC_EVENTS */
    size_t n;  /* REC_ACTIVE, REC_EVENTS; REC_STORM: datagrams dropped (from AF_UNSPEC: a tick) */
    uint64_t token; /* REC_EVENTS: handed back in an ACK once they are durable */
} rec_t;

struct opsc_pipeline_s {
    uv_loop_t *loop;
    opsc_ring_t *ingest;
    opsc_ring_t *changes;
    opsc_pipeline_change_cb on_change;
    void *arg;

    /* loop thread side */
    opsc_wake_t loop_wake;
    uv_timer_t loop_retry;
    uv_timer_t ingest_hold; /* a held-off wake-up of the pipeline thread (see push_record) */
    unsigned ingest_owed;   /* records committed since the wake-up we owe, 0: none owed */
    uint64_t ring_full_drops;
    uint64_t wall_at_ms; /* uv_now() when wall_us was read (loop_wall_us) */
    int64_t wall_us;
    int stop_requested;
    void (*stop_done)(void *);
    void *stop_arg;
    int loop_handles;

    /* pipeline thread side */
    uv_thread_t thread;
    uv_loop_t ploop;
    opsc_wake_t wake;
    uv_timer_t retry;        /* change ring full: try again shortly */
    uv_timer_t changes_hold; /* a held-off wake-up of the loop thread (see push_changes) */
    size_t changes_owed;
    int changes_urgent; /* a REPLY someone waits for is queued: no hold-off */
    opsc_snmp_decoder_options_t snmp;
    opsc_snmp_decoder_t *dec;
    opsc_normalizer_t *norm;
    opsc_dedup_t *dedup;
    opsc_trap_storm_t *storm;           /* trap_storm alerts (trap_storm.c) */
    opsc_change_t *out_head, *out_tail; /* changes not yet in the change ring */
    unsigned char *scratch;
    opsc_buf_t reply;
    int have_norm, have_active;
    int resolve_names;
    char **down_types; /* owned copies of opts->down_alert_types */
    size_t ndown_types;
    opsc_dedup_entry_t **down; /* entries with is_down set (few: a linear scan is fine) */
    size_t ndown, capdown;
    opsc__maint_t maint; /* maintenance windows (maintenance.c) */
    /* flapping, expiry (correlate.c) */
    opsc_flap_tracker_t *flap;
    int64_t expire_us[OPSC_CAT_COUNT]; /* 0 = never */
    int expiry_on;
    uv_timer_t corr_timer;
    struct ack_expiry_s *ackx; /* acknowledgements that expire (few: a linear scan is fine) */
    size_t nackx, capackx;
    size_t expire_cursor;
    atomic_int ready;
    atomic_int stopping;
    atomic_int exited;
    char start_error[512];
    uv_sem_t started;
    int start_rc;

    /* counters written by the pipeline thread, read by /metrics */
    atomic_uint_fast64_t n_records;
    atomic_uint_fast64_t n_decoded;
    atomic_uint_fast64_t n_dropped[OPSC_SNMP_REASON_COUNT + 1];
    atomic_uint_fast64_t n_unnormalizable;
    atomic_uint_fast64_t n_created;
    atomic_uint_fast64_t n_deduplicated;
    atomic_uint_fast64_t n_cleared;
    atomic_uint_fast64_t n_clears_unmatched;
    atomic_uint_fast64_t n_suppressed;
    atomic_uint_fast64_t n_reopened;
    atomic_uint_fast64_t n_informs;
    atomic_uint_fast64_t n_events;
    atomic_uint_fast64_t n_event_clears_unmatched;
    atomic_uint_fast64_t n_actions[OPSC_ACT_COUNT];
    atomic_uint_fast64_t n_actions_refused;
    atomic_uint_fast64_t n_ack_expired;
    atomic_uint_fast64_t n_reports;
    atomic_uint_fast64_t n_change_ring_waits;
    atomic_uint_fast64_t n_active;
    atomic_uint_fast64_t n_versions[4];
    atomic_uint_fast64_t n_flap_reopened;
    atomic_uint_fast64_t n_flap_clears;
    atomic_uint_fast64_t n_flap_settled;
    atomic_uint_fast64_t n_expired;
    atomic_uint_fast64_t n_flapping;
    atomic_uint_fast64_t n_flap_records;
    atomic_uint_fast64_t n_flap_memory;
    atomic_uint_fast64_t n_flap_evicted;
    atomic_uint_fast64_t n_flap_untracked;
    atomic_uint_fast64_t expire_slice_max_ns;
};

/* ---- pipeline thread -------------------------------------------------------------------- */

static void emit(opsc_pipeline_t *p, opsc_change_t *c) {
    if (c->kind == OPSC_CHANGE_REPLY) {
        p->changes_urgent = 1; /* an INFORM or an HTTP request waits for it */
    }
    c->next = NULL;
    if (p->out_tail) {
        p->out_tail->next = c;
    } else {
        p->out_head = c;
    }
    p->out_tail = c;
}

/* Move queued changes into the change ring; 0 when all went, -1 when it is full. */
/*
 * Wake-up hold-off. With traffic that arrives one datagram at a time (a few
 * thousand per second, evenly paced), waking the other thread for every
 * record costs two context switches per record each way; at 8,000 new
 * alerts/s the loop thread spent a fifth of its time switching. So a
 * producer that finds the consumer asleep may hold the wake-up back for up
 * to WAKE_HOLDOFF_MS, or until WAKE_BATCH records wait: the records of one
 * millisecond then cost one wake-up. Latency grows by at most that (the
 * store batches for 20 ms anyway); a storm never waits, its batches pass
 * WAKE_BATCH at once. Owing a wake-up replaces should_wake for the records
 * that follow: the consumer stays asleep until we signal.
 */
#define WAKE_HOLDOFF_MS 1
#define WAKE_BATCH 64

static void wake_loop_now(opsc_pipeline_t *p) {
    if (p->changes_owed) {
        p->changes_owed = 0;
        uv_timer_stop(&p->changes_hold);
        opsc_wake_send(&p->loop_wake);
    }
}

static void on_changes_hold(uv_timer_t *t) {
    wake_loop_now(t->data);
}

/* Pipeline thread, after `pushed` changes were committed to the change ring. */
static void wake_loop_later(opsc_pipeline_t *p, size_t pushed) {
    if (p->changes_owed) {
        p->changes_owed += pushed;
    } else if (opsc_ring_should_wake(p->changes)) {
        p->changes_owed = pushed;
        uv_timer_start(&p->changes_hold, on_changes_hold, WAKE_HOLDOFF_MS, 0);
    }
    if (p->changes_owed >= WAKE_BATCH) {
        wake_loop_now(p);
    }
}

static int push_changes(opsc_pipeline_t *p) {
    int pushed = 0;
    while (p->out_head) {
        opsc_change_t **slot = opsc_ring_reserve(p->changes, sizeof(opsc_change_t *));
        if (!slot) {
            break;
        }
        opsc_change_t *c = p->out_head;
        p->out_head = c->next;
        if (!p->out_head) {
            p->out_tail = NULL;
        }
        c->next = NULL;
        *slot = c;
        opsc_ring_commit(p->changes);
        pushed++;
    }
    if (pushed) {
        wake_loop_later(p, pushed);
        if (p->changes_urgent && !p->out_head) {
            p->changes_urgent = 0;
            wake_loop_now(p);
        }
    }
    return p->out_head ? -1 : 0;
}

static void emit_reply(opsc_pipeline_t *p, const rec_t *r) {
    opsc_change_t *c = opsc_change_new(OPSC_CHANGE_REPLY);
    if (!c || !(c->reply = opsc_malloc(p->reply.len))) {
        opsc_change_free(c);
        return;
    }
    memcpy(c->reply, p->reply.base, p->reply.len);
    c->reply_len = p->reply.len;
    memcpy(&c->reply_to, &r->from, sizeof(r->from));
    c->listener = r->listener;
    emit(p, c);
}

/* Events up to `token` are decided: the loop answers them once all before is durable. */
static void emit_ack(opsc_pipeline_t *p, uint64_t token) {
    opsc_change_t *c = opsc_change_new(OPSC_CHANGE_REPLY);
    if (c) {
        c->ack_token = token; /* lost only when out of memory: the next ack covers it */
        emit(p, c);
    }
}

static void emit_cb(opsc_change_t *c, void *arg) {
    emit(arg, c);
}

static void flush_repeats(opsc_pipeline_t *p) {
    for (opsc_dedup_entry_t *e = opsc_dedup_take_dirty(p->dedup); e; e = e->dirty_next) {
        opsc_change_t *c = opsc_change_new(OPSC_CHANGE_REPEAT);
        if (!c) {
            continue; /* the next repeat of this alert carries the count again */
        }
        c->id = e->id;
        c->occurrence_count = e->occurrence_count;
        c->last_occurrence_at_us = e->last_occurrence_at_us;
        emit(p, c);
    }
}

/* ---- dependency suppression ---- */

#define UPSTREAM_MAX 64
#define RULE_UPSTREAM "upstream_dependency"

static int is_down_alert(const opsc_pipeline_t *p, const char *alert_type, opsc_severity_t sev) {
    if (sev == OPSC_SEV_CRITICAL) {
        return 1;
    }
    for (size_t i = 0; alert_type && i < p->ndown_types; i++) {
        if (strcmp(p->down_types[i], alert_type) == 0) {
            return 1;
        }
    }
    return 0;
}

static void down_add(opsc_pipeline_t *p, opsc_dedup_entry_t *e) {
    if (p->ndown == p->capdown) {
        size_t ncap = p->capdown ? p->capdown * 2 : 16;
        opsc_dedup_entry_t **nd = opsc_realloc(p->down, ncap * sizeof(*nd));
        if (!nd) {
            return; /* out of memory: this alert suppresses nothing */
        }
        p->down = nd;
        p->capdown = ncap;
    }
    p->down[p->ndown++] = e;
    e->is_down = 1;
}

static void down_remove(opsc_pipeline_t *p, opsc_dedup_entry_t *e) {
    for (size_t i = 0; i < p->ndown; i++) {
        if (p->down[i] == e) {
            p->down[i] = p->down[--p->ndown];
            break;
        }
    }
    e->is_down = 0;
}

/* The down alert of the nearest device `device` depends on (transitively), or NULL. */
static opsc_dedup_entry_t *upstream_down(opsc_pipeline_t *p, const char *device) {
    if (p->ndown == 0 || !p->norm) {
        return NULL;
    }
    const char *ups[UPSTREAM_MAX];
    size_t n = opsc_normalizer_upstreams(p->norm, device, ups, UPSTREAM_MAX);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < p->ndown; j++) {
            if (strcmp(p->down[j]->device, ups[i]) == 0) {
                return p->down[j];
            }
        }
    }
    return NULL;
}

typedef struct {
    opsc_pipeline_t *p;
    opsc_uuid_t upstream;
    int64_t now_us;
} reopen_arg_t;

static void reopen_one(opsc_dedup_entry_t *e, void *arg) {
    reopen_arg_t *ra = arg;
    if (!e->has_correlated_to ||
        memcmp(&e->correlated_to, &ra->upstream, sizeof(e->correlated_to)) ||
        e->status != OPSC_STATUS_SUPPRESSED) {
        return;
    }
    opsc_change_t *c = opsc_change_new(OPSC_CHANGE_STATUS);
    if (!c) {
        return; /* stays suppressed (and correlated) in the store */
    }
    c->id = e->id;
    c->old_status = OPSC_STATUS_SUPPRESSED;
    c->new_status = OPSC_STATUS_ACTIVE;
    c->at_us = ra->now_us;
    snprintf(c->actor, sizeof(c->actor), "system");
    snprintf(c->action, sizeof(c->action), "reopened");
    emit(ra->p, c);
    e->status = OPSC_STATUS_ACTIVE;
    e->has_correlated_to = 0;
    atomic_fetch_add_explicit(&ra->p->n_reopened, 1, memory_order_relaxed);
}

/* The down alert `id` left the active set: what it suppressed goes back to active. */
static void reopen_dependents(opsc_pipeline_t *p, const opsc_uuid_t *id, int64_t now_us) {
    reopen_arg_t ra = {.p = p, .upstream = *id, .now_us = now_us};
    opsc_dedup_each(p->dedup, reopen_one, &ra);
}

/* `e` leaves the active set (resolved or expired): STATUS, dependents reopened, entry removed. */
static void close_entry(opsc_pipeline_t *p, opsc_dedup_entry_t *e, opsc_status_t to,
                        const char *actor, const char *rule, const char *notes, int64_t now_us) {
    opsc_change_t *c = opsc_change_new(OPSC_CHANGE_STATUS);
    if (!c || (notes && !(c->notes = opsc_strdup(notes)))) {
        opsc_change_free(c);
        return;
    }
    /* A count changed in this batch must reach the store before the status. */
    if (e->dirty) {
        opsc_change_t *r = opsc_change_new(OPSC_CHANGE_REPEAT);
        if (r) {
            r->id = e->id;
            r->occurrence_count = e->occurrence_count;
            r->last_occurrence_at_us = e->last_occurrence_at_us;
            emit(p, r);
        }
    }
    c->id = e->id;
    c->old_status = e->status;
    c->new_status = to;
    c->at_us = now_us;
    snprintf(c->actor, sizeof(c->actor), "%s", actor);
    snprintf(c->rule, sizeof(c->rule), "%s", rule);
    snprintf(c->action, sizeof(c->action), "%s", opsc_status_name(to));
    emit(p, c);
    if (e->is_down) {
        opsc_uuid_t id = e->id;
        down_remove(p, e);
        reopen_dependents(p, &id, now_us);
    }
    opsc_dedup_remove(p->dedup, e);
}

static void resolve_entry(opsc_pipeline_t *p, opsc_dedup_entry_t *e, const char *clear_type,
                          int64_t now_us) {
    char rule[64];
    snprintf(rule, sizeof(rule), "clear:%s", clear_type);
    close_entry(p, e, OPSC_STATUS_RESOLVED, "auto-clear", rule, NULL, now_us);
    atomic_fetch_add_explicit(&p->n_cleared, 1, memory_order_relaxed);
}

/* ---- flapping, expiry, priority (the logic lives in correlate.c) ---- */

static void on_retry(uv_timer_t *t);

#define RULE_FLAPPING "flapping"
#define CORR_TICK_MS 100
#define EXPIRE_SLICE 16384 /* slots per tick: 1M alerts (2M slots) in 128 ticks, 12.8 s */
#define EXPIRE_BATCH 4096  /* expired per tick at most; the rest on the next pass */

static void set_priority(opsc_pipeline_t *p, const opsc_trap_key_t *key, opsc_alert_t *a) {
    size_t ndep = opsc_normalizer_dependents(p->norm, key->device_ip, OPSC_IMPACT_HIGH_DEPENDENTS);
    a->urgency = opsc__urgency_of(a->severity);
    a->impact = opsc__impact_of(key->device ? key->device->impact : NULL, ndep);
    a->priority = opsc__priority_of(a->impact, a->urgency);
}

/* An active, non-flapping alert is about to be resolved by a clear: remember when. */
static void flap_note_resolve(opsc_pipeline_t *p, const opsc_dedup_entry_t *e, int64_t now_us) {
    if (!p->flap) {
        return;
    }
    opsc_flap_rec_t *r = opsc__flap_get(p->flap, e->fingerprint);
    if (!r) {
        atomic_fetch_add_explicit(&p->n_flap_untracked, 1, memory_order_relaxed);
        return;
    }
    opsc__flap_note_resolve(p->flap, r, &e->id, e->occurrence_count, now_us);
}

/* A clear of a flapping alert: counted, not resolving; written at most every tenth window. */
static void flap_clear(opsc_pipeline_t *p, opsc_dedup_entry_t *e, int64_t now_us) {
    opsc_flap_rec_t *r = p->flap ? opsc__flap_find(p->flap, e->fingerprint) : NULL;
    atomic_fetch_add_explicit(&p->n_flap_clears, 1, memory_order_relaxed);
    if (!r) {
        return;
    }
    r->flap_count++;
    if (!r->last_clear) {
        r->last_clear = 1;
        r->last_transition_us = now_us;
        int64_t every = opsc__flap_window_us(p->flap) / 10;
        if (now_us - r->count_written_us >= every) {
            opsc_change_t *c = opsc__flap_count_change(&e->id, r->flap_count, now_us);
            if (c) {
                emit(p, c);
                r->count_written_us = now_us;
            }
        }
    }
}

/* An occurrence of a flapping alert: after a clear, that is a transition. */
static void flap_fire(opsc_pipeline_t *p, opsc_dedup_entry_t *e, int64_t now_us) {
    opsc_flap_rec_t *r = p->flap ? opsc__flap_find(p->flap, e->fingerprint) : NULL;
    if (r && r->last_clear) {
        r->last_clear = 0;
        r->last_transition_us = now_us;
    }
}

/* The record of a fingerprint that fires again while flapping: its last alert is reopened. */
static opsc_flap_rec_t *flap_reopen_candidate(opsc_pipeline_t *p, const char *fp, int64_t now_us) {
    if (!p->flap) {
        return NULL;
    }
    opsc_flap_rec_t *r = opsc__flap_find(p->flap, fp);
    return r && !r->flapping && opsc__flap_exceeded(p->flap, r, now_us) ? r : NULL;
}

/*
 * Instead of CREATE of `a`: the resolved alert r->last_id goes back to a's
 * status (active, or suppressed by an upstream), counts on, and is marked.
 */
static void flap_reopen(opsc_pipeline_t *p, opsc_flap_rec_t *r, opsc_dedup_entry_t *e,
                        const opsc_alert_t *a, int64_t now_us) {
    opsc_change_t *st = opsc_change_new(OPSC_CHANGE_STATUS);
    if (st) {
        st->id = e->id;
        st->old_status = OPSC_STATUS_RESOLVED;
        st->new_status = a->status;
        st->at_us = now_us;
        snprintf(st->actor, sizeof(st->actor), "system");
        snprintf(st->rule, sizeof(st->rule), "%s",
                 a->has_correlated_to ? RULE_UPSTREAM : RULE_FLAPPING);
        snprintf(st->action, sizeof(st->action), "reopened");
        st->has_correlated_to = a->has_correlated_to;
        st->correlated_to_id = a->correlated_to_id;
        emit(p, st);
    }
    opsc_change_t *rp = opsc_change_new(OPSC_CHANGE_REPEAT);
    if (rp) {
        rp->id = e->id;
        rp->occurrence_count = e->occurrence_count;
        rp->last_occurrence_at_us = now_us;
        emit(p, rp);
    }
    opsc__flap_set_flapping(p->flap, r, 1, now_us);
    r->flap_count = r->ntimes; /* the resolves that made it flap */
    r->count_written_us = now_us;
    opsc_change_t *mk = opsc__flap_mark_change(&e->id, r->flap_count, now_us, now_us);
    if (mk) {
        emit(p, mk);
    }
    e->flapping = 1;
    atomic_fetch_add_explicit(&p->n_flap_reopened, 1, memory_order_relaxed);
}

/* Unmark `e` (the UPDATE) and forget its flapping record's episode. */
static void flap_unmark(opsc_pipeline_t *p, opsc_dedup_entry_t *e, opsc_flap_rec_t *r,
                        int64_t now_us) {
    opsc_change_t *c = opsc__flap_unmark_change(&e->id, r ? r->flap_count : 0, now_us);
    if (c) {
        emit(p, c);
    }
    e->flapping = 0;
    if (r) {
        opsc__flap_set_flapping(p->flap, r, 0, now_us);
    }
}

typedef struct {
    opsc_pipeline_t *p;
    int64_t now_us;
} corr_arg_t;

/* Quiet for a whole window: the alert takes the state of its last event. */
static void flap_settle_one(opsc_flap_rec_t *r, void *arg) {
    corr_arg_t *ca = arg;
    opsc_pipeline_t *p = ca->p;
    opsc_dedup_entry_t *e = opsc_dedup_find(p->dedup, r->fingerprint);
    int last_clear = r->last_clear;
    atomic_fetch_add_explicit(&p->n_flap_settled, 1, memory_order_relaxed);
    if (!e) {
        opsc__flap_set_flapping(p->flap, r, 0, ca->now_us); /* it left the index meanwhile */
        return;
    }
    flap_unmark(p, e, r, ca->now_us);
    if (last_clear) {
        resolve_entry(p, e, RULE_FLAPPING, ca->now_us);
    }
}

typedef struct {
    opsc_pipeline_t *p;
    int64_t now_us;
    opsc_dedup_entry_t *v[EXPIRE_BATCH];
    size_t n;
} expire_arg_t;

static void expire_check(opsc_dedup_entry_t *e, void *arg) {
    expire_arg_t *xa = arg;
    int64_t after = xa->p->expire_us[e->category < OPSC_CAT_COUNT ? e->category : 0];
    if (after > 0 && xa->now_us - e->last_occurrence_at_us >= after && xa->n < EXPIRE_BATCH) {
        xa->v[xa->n++] = e;
    }
}

static void expire_slice(opsc_pipeline_t *p, int64_t now_us) {
    static _Thread_local expire_arg_t xa; /* 32 KiB: not on the loop's stack */
    uint64_t t0 = uv_hrtime();
    xa.p = p;
    xa.now_us = now_us;
    xa.n = 0;
    opsc_dedup_scan(p->dedup, &p->expire_cursor, EXPIRE_SLICE, expire_check, &xa);
    for (size_t i = 0; i < xa.n; i++) {
        opsc_dedup_entry_t *e = xa.v[i];
        /* Its count may have moved since the last flush: that goes first. */
        if (e->flapping) {
            flap_unmark(p, e, p->flap ? opsc__flap_find(p->flap, e->fingerprint) : NULL, now_us);
        }
        close_entry(p, e, OPSC_STATUS_EXPIRED, "system", "expiry", NULL, now_us);
        atomic_fetch_add_explicit(&p->n_expired, 1, memory_order_relaxed);
    }
    uint64_t ns = uv_hrtime() - t0;
    if (ns > atomic_load_explicit(&p->expire_slice_max_ns, memory_order_relaxed)) {
        atomic_store_explicit(&p->expire_slice_max_ns, ns, memory_order_relaxed);
    }
}

static void corr_gauges(opsc_pipeline_t *p) {
    atomic_store_explicit(&p->n_flapping, opsc__flap_flapping(p->flap), memory_order_relaxed);
    atomic_store_explicit(&p->n_flap_records, opsc__flap_count(p->flap), memory_order_relaxed);
    atomic_store_explicit(&p->n_flap_memory, opsc__flap_memory(p->flap), memory_order_relaxed);
    atomic_store_explicit(&p->n_flap_evicted, opsc__flap_evicted(p->flap), memory_order_relaxed);
}

static void ack_expiry_tick(opsc_pipeline_t *p, int64_t now_us);

static void on_corr_tick(uv_timer_t *t) {
    opsc_pipeline_t *p = t->data;
    if (!p->have_active) {
        return; /* the index is not complete yet */
    }
    int64_t now = opsc_now_us();
    if (p->flap) {
        corr_arg_t ca = {p, now};
        opsc__flap_each_settled(p->flap, now, flap_settle_one, &ca);
    }
    if (p->expiry_on) {
        expire_slice(p, now);
    }
    if (p->nackx) {
        ack_expiry_tick(p, now);
    }
    corr_gauges(p);
    atomic_store_explicit(&p->n_active, opsc_dedup_count(p->dedup), memory_order_relaxed);
    if (p->out_head) {
        flush_repeats(p);
        if (push_changes(p) != 0) {
            uv_timer_start(&p->retry, on_retry, 1, 0);
        }
    }
}

/* An alert loaded at start carries the mark of an earlier run: track it again from now. */
static void flap_adopt(opsc_pipeline_t *p, opsc_dedup_entry_t *e, const opsc_alert_t *a) {
    int tagged = 0;
    for (size_t i = 0; i < a->ntags && !tagged; i++) {
        tagged = strcmp(a->tags[i], "flapping") == 0;
    }
    if (!tagged) {
        return;
    }
    int64_t now = opsc_now_us();
    opsc_flap_rec_t *r = p->flap ? opsc__flap_get(p->flap, e->fingerprint) : NULL;
    if (!r) {
        flap_unmark(p, e, NULL, now); /* detection off (or no room): no one would settle it */
        return;
    }
    r->last_id = e->id;
    r->last_count = e->occurrence_count;
    opsc__flap_set_flapping(p->flap, r, 1, now);
    e->flapping = 1;
}

/*
 * A new alert `a` whose fingerprint has no active entry (both `a` and its
 * CREATE change `c` owned; c NULL = out of memory): suppression by a
 * maintenance window or a down upstream device, the index, flapping, and
 * the CREATE on its way. Shared by traps and events.
 */
static opsc_dedup_entry_t *admit_new(opsc_pipeline_t *p, opsc_alert_t *a, opsc_change_t *c,
                                     const char *discriminator, int64_t now) {
    opsc_flap_rec_t *fr = flap_reopen_candidate(p, a->fingerprint, now);
    if (fr) {
        /* Flapping: the last alert of this fingerprint comes back instead. */
        a->id = fr->last_id;
        a->occurrence_count = fr->last_count + 1;
    }
    const char *device = a->device_ip ? a->device_ip : (a->device_name ? a->device_name : "");
    int in_maint = opsc__maint_covers_alert(&p->maint, a, now);
    opsc_dedup_entry_t *up = in_maint ? NULL : upstream_down(p, device);
    char *rule = up ? opsc_strdup(RULE_UPSTREAM) : NULL;
    if (up && rule) {
        /* An upstream device is down: this alert is a consequence of it. */
        a->status = OPSC_STATUS_SUPPRESSED;
        a->correlated_to_id = up->id;
        a->has_correlated_to = 1;
        opsc_free(a->correlation_rule);
        a->correlation_rule = rule;
    }
    opsc_dedup_entry_t *e = NULL;
    if (!c || !(e = opsc_dedup_add(p->dedup, a->fingerprint, &a->id, a->status, a->occurrence_count,
                                   now, a->alert_type, device, discriminator))) {
        opsc_change_free(c);
        opsc_alert_free(a);
        return NULL;
    }
    if (a->has_correlated_to) {
        e->has_correlated_to = 1;
        e->correlated_to = a->correlated_to_id;
        atomic_fetch_add_explicit(&p->n_suppressed, 1, memory_order_relaxed);
    }
    if (is_down_alert(p, a->alert_type, a->severity)) {
        down_add(p, e);
    }
    e->category = (uint8_t)a->category;
    if (fr) {
        flap_reopen(p, fr, e, a, now);
        opsc_change_free(c);
        opsc_alert_free(a);
    } else {
        c->id = a->id;
        c->alert = a;
        emit(p, c);
        atomic_fetch_add_explicit(&p->n_created, 1, memory_order_relaxed);
    }
    if (in_maint) {
        opsc__maint_suppress_new(&p->maint, e, now); /* history: created, then suppressed */
    }
    return e;
}

static void handle_datagram(opsc_pipeline_t *p, const rec_t *r) {
    opsc_trap_t trap;
    memcpy(p->scratch, r + 1, r->len); /* the decoder writes into its input */
    int rc = opsc_snmp_decode(p->dec, p->scratch, r->len, &r->from.sa, &trap, &p->reply);
    if (rc < 0) {
        int idx = -rc <= OPSC_SNMP_REASON_COUNT ? -rc : 0;
        atomic_fetch_add_explicit(&p->n_dropped[idx], 1, memory_order_relaxed);
        if (p->reply.len > 0) {
            atomic_fetch_add_explicit(&p->n_reports, 1, memory_order_relaxed);
            emit_reply(p, r);
        }
        return;
    }
    atomic_fetch_add_explicit(&p->n_decoded, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->n_versions[trap.version == 3 ? 3 : trap.version & 3], 1,
                              memory_order_relaxed);

    opsc_trap_key_t key;
    if (opsc_normalize_key(p->norm, &trap, &key) != 0) {
        atomic_fetch_add_explicit(&p->n_unnormalizable, 1, memory_order_relaxed);
        return;
    }
    int64_t now = r->wall_us;
    if (key.is_clear) {
        /* A clear resolves what it clears and opens nothing itself. */
        char fps[16][OPSC_FINGERPRINT_HEX];
        size_t n = opsc_normalize_clear_fingerprints(p->norm, &trap, &key, fps, 16);
        size_t hit = 0;
        for (size_t i = 0; i < n; i++) {
            opsc_dedup_entry_t *e = opsc_dedup_find(p->dedup, fps[i]);
            if (e && e->flapping) {
                flap_clear(p, e, now);
                hit++;
            } else if (e) {
                flap_note_resolve(p, e, now);
                resolve_entry(p, e, key.alert_type, now);
                hit++;
            }
        }
        if (!hit) {
            atomic_fetch_add_explicit(&p->n_clears_unmatched, 1, memory_order_relaxed);
        }
    } else {
        opsc_dedup_entry_t *e = opsc_dedup_find(p->dedup, key.fingerprint);
        if (e) {
            opsc_dedup_touch(p->dedup, e, now);
            if (e->flapping) {
                flap_fire(p, e, now);
            }
            atomic_fetch_add_explicit(&p->n_deduplicated, 1, memory_order_relaxed);
        } else {
            opsc_alert_t *a = opsc_alert_new();
            if (!a || opsc_normalize_full(p->norm, &trap, &key, now, a) != 0) {
                opsc_alert_free(a);
                atomic_fetch_add_explicit(&p->n_unnormalizable, 1, memory_order_relaxed);
                return;
            }
            set_priority(p, &key, a);
            opsc_change_t *c = opsc_change_new(OPSC_CHANGE_CREATE);
            if (c && p->resolve_names && !a->device_name && a->device_ip) {
                /* Named later by reverse DNS, on the loop thread (nothing waits here). */
                (void)opsc_normalize_title(p->norm, &trap, &key, NULL, &c->title_for_name);
            }
            admit_new(p, a, c, key.discriminator, now);
        }
    }
    if (trap.pdu == OPSC_PDU_INFORM && p->reply.len > 0) {
        /* Answered once everything before it is durable (the store sends it). */
        flush_repeats(p);
        atomic_fetch_add_explicit(&p->n_informs, 1, memory_order_relaxed);
        emit_reply(p, r);
    }
}

/*
 * Normalized events (HTTP API, webhooks): already validated and
 * fingerprinted by opsc_event_from_json. A clear resolves the active alert of
 * its fingerprint; anything else repeats it or opens a new one, with the
 * sender's impact and urgency where given. Then the ack: the loop answers 202
 * once everything up to it is durable.
 */
static void handle_events(opsc_pipeline_t *p, const rec_t *r) {
    opsc_alert_t **ev = r->ptr;
    int64_t now = r->wall_us;
    for (size_t i = 0; i < r->n; i++) {
        opsc_alert_t *a = ev[i];
        atomic_fetch_add_explicit(&p->n_events, 1, memory_order_relaxed);
        opsc_dedup_entry_t *e = opsc_dedup_find(p->dedup, a->fingerprint);
        if (a->is_clear) {
            if (e && e->flapping) {
                flap_clear(p, e, now);
            } else if (e) {
                flap_note_resolve(p, e, now);
                resolve_entry(p, e, a->alert_type, now);
            } else {
                atomic_fetch_add_explicit(&p->n_event_clears_unmatched, 1, memory_order_relaxed);
            }
            opsc_alert_free(a);
        } else if (e) {
            opsc_dedup_touch(p->dedup, e, now);
            if (e->flapping) {
                flap_fire(p, e, now);
            }
            atomic_fetch_add_explicit(&p->n_deduplicated, 1, memory_order_relaxed);
            opsc_alert_free(a);
        } else {
            const opsc_device_ref_t *dev =
                a->device_ip ? opsc_normalizer_device(p->norm, a->device_ip) : NULL;
            if (dev && !a->device_name && opsc_alert_set(&a->device_name, dev->name) != 0) {
                opsc_alert_free(a);
                continue;
            }
            const char *device = a->device_ip ? a->device_ip : a->device_name;
            if (a->urgency == OPSC_LEVEL_NONE) {
                a->urgency = opsc__urgency_of(a->severity);
            }
            if (a->impact == OPSC_LEVEL_NONE) {
                size_t ndep =
                    opsc_normalizer_dependents(p->norm, device, OPSC_IMPACT_HIGH_DEPENDENTS);
                a->impact = opsc__impact_of(dev ? dev->impact : NULL, ndep);
            }
            a->priority = opsc__priority_of(a->impact, a->urgency);
            admit_new(p, a, opsc_change_new(OPSC_CHANGE_CREATE), a->source_alert_id, now);
        }
    }
    opsc_free(ev);
    flush_repeats(p); /* the counts are part of what the ack says is durable */
    emit_ack(p, r->token);
}

/* ---- alert actions of people (acknowledge, resolve, ...) ---- */

#define RULE_MANUAL "manual"
#define ACK_EXPIRES_KEY "ack_expires_at"

typedef struct ack_expiry_s {
    char fingerprint[OPSC_FINGERPRINT_HEX];
    opsc_uuid_t id;
    int64_t at_us;
} ack_expiry_t;

/* An in-place status change of an entry that stays in the index. */
static void set_status(opsc_pipeline_t *p, opsc_dedup_entry_t *e, opsc_status_t to,
                       const char *actor, const char *rule, const char *action, const char *notes,
                       int64_t now_us) {
    opsc_change_t *c = opsc_change_new(OPSC_CHANGE_STATUS);
    if (!c || (notes && !(c->notes = opsc_strdup(notes)))) {
        opsc_change_free(c);
        return;
    }
    c->id = e->id;
    c->old_status = e->status;
    c->new_status = to;
    c->at_us = now_us;
    snprintf(c->actor, sizeof(c->actor), "%s", actor);
    snprintf(c->rule, sizeof(c->rule), "%s", rule ? rule : "");
    snprintf(c->action, sizeof(c->action), "%s", action);
    emit(p, c);
    e->status = to;
    e->has_correlated_to = 0;
    e->maint_suppressed = 0;
}

/* custom_fields.ack_expires_at set (at_us > 0) or removed: survives a restart. */
static void ack_expiry_mark(opsc_pipeline_t *p, const opsc_uuid_t *id, int64_t at_us,
                            int64_t now_us) {
    opsc_change_t *c = opsc_change_new(OPSC_CHANGE_UPDATE);
    char patch[96];
    if (at_us > 0) {
        char t[32];
        opsc_time_format(at_us, t);
        snprintf(patch, sizeof(patch), "{\"" ACK_EXPIRES_KEY "\":\"%s\"}", t);
    } else {
        snprintf(patch, sizeof(patch), "{\"" ACK_EXPIRES_KEY "\":null}");
    }
    if (!c || opsc_alert_update_custom(c->upd, patch) != 0) {
        opsc_change_free(c);
        return;
    }
    c->upd->mask |= OPSC_UPD_CUSTOM_FIELDS;
    c->id = *id;
    c->at_us = now_us;
    emit(p, c);
}

static void ack_expiry_add(opsc_pipeline_t *p, const opsc_dedup_entry_t *e, int64_t at_us) {
    if (p->nackx == p->capackx) {
        size_t cap = p->capackx ? p->capackx * 2 : 16;
        ack_expiry_t *n = opsc_realloc(p->ackx, cap * sizeof(*n));
        if (!n) {
            return; /* stays acknowledged until someone unacknowledges it */
        }
        p->ackx = n;
        p->capackx = cap;
    }
    ack_expiry_t *x = &p->ackx[p->nackx++];
    memcpy(x->fingerprint, e->fingerprint, sizeof(x->fingerprint));
    x->id = e->id;
    x->at_us = at_us;
}

/* Stop tracking the expiry of alert `id`'s acknowledgement; 1 when there was one. */
static int ack_expiry_forget(opsc_pipeline_t *p, const opsc_uuid_t *id) {
    for (size_t i = 0; i < p->nackx; i++) {
        if (memcmp(&p->ackx[i].id, id, sizeof(*id)) == 0) {
            p->ackx[i] = p->ackx[--p->nackx];
            return 1;
        }
    }
    return 0;
}

/* Due acknowledgements go back to active (those no longer acknowledged are forgotten). */
static void ack_expiry_tick(opsc_pipeline_t *p, int64_t now_us) {
    size_t j = 0;
    for (size_t i = 0; i < p->nackx; i++) {
        ack_expiry_t *x = &p->ackx[i];
        opsc_dedup_entry_t *e = opsc_dedup_find(p->dedup, x->fingerprint);
        int live = e && memcmp(&e->id, &x->id, sizeof(x->id)) == 0 &&
                   e->status == OPSC_STATUS_ACKNOWLEDGED;
        if (live && x->at_us <= now_us) {
            set_status(p, e, OPSC_STATUS_ACTIVE, "system", "ack_expired", "unacknowledged",
                       "acknowledgement expired", now_us);
            ack_expiry_mark(p, &e->id, 0, now_us);
            atomic_fetch_add_explicit(&p->n_ack_expired, 1, memory_order_relaxed);
        } else if (live) {
            p->ackx[j++] = *x;
        }
    }
    p->nackx = j;
}

/* An alert loaded at start that was acknowledged with an expiry: track it again. */
static void ack_expiry_adopt(opsc_pipeline_t *p, opsc_dedup_entry_t *e, const opsc_alert_t *a) {
    if (a->status != OPSC_STATUS_ACKNOWLEDGED || !a->custom_fields_json ||
        !strstr(a->custom_fields_json, ACK_EXPIRES_KEY)) {
        return;
    }
    json_t *cf = json_loads(a->custom_fields_json, 0, NULL);
    int64_t at = 0;
    const char *t = json_string_value(json_object_get(cf, ACK_EXPIRES_KEY));
    if (t && opsc_rfc3339_parse(t, &at) == 0 && at > 0) {
        ack_expiry_add(p, e, at);
    }
    json_decref(cf);
}

static void refuse(opsc_action_item_t *it, opsc_status_t st, const char *what) {
    it->done = 0;
    it->before = it->after = st;
    snprintf(it->why, sizeof(it->why), "%s", what);
}

/* Bring a resolved or expired alert back into the index as active. */
static void reopen_closed(opsc_pipeline_t *p, const opsc_action_batch_t *b, opsc_action_item_t *it,
                          opsc_status_t was, int64_t now_us) {
    opsc_alert_t *a = it->row;
    const char *device = a->device_ip ? a->device_ip : (a->device_name ? a->device_name : "");
    opsc_dedup_entry_t *e =
        opsc_dedup_add(p->dedup, a->fingerprint, &a->id, was, a->occurrence_count,
                       a->last_occurrence_at_us ? a->last_occurrence_at_us : now_us, a->alert_type,
                       device, a->source_alert_id);
    if (!e) {
        refuse(it, was, "out of memory");
        return;
    }
    e->category = (uint8_t)a->category;
    set_status(p, e, OPSC_STATUS_ACTIVE, b->actor, NULL, "reopened", b->notes, now_us);
    if (is_down_alert(p, a->alert_type, a->severity)) {
        down_add(p, e);
    }
    it->done = 1;
    it->before = was;
    it->after = OPSC_STATUS_ACTIVE;
}

/* What each action may do to an alert in the index (the seed's status model). */
#define ST(s) (1u << OPSC_STATUS_##s)
typedef struct transition_s {
    unsigned from; /* statuses it applies to */
    opsc_status_t to;
    const char *rule;    /* correlation_rule it sets, NULL: none */
    const char *history; /* alert_history.action */
    const char *refusal; /* 409 from any other status */
} transition_t;
static const transition_t transitions[OPSC_ACT_COUNT] = {
    [OPSC_ACT_ACKNOWLEDGE] = {ST(ACTIVE), OPSC_STATUS_ACKNOWLEDGED, NULL, "acknowledged",
                              "only an active alert can be acknowledged"},
    [OPSC_ACT_UNACKNOWLEDGE] = {ST(ACKNOWLEDGED), OPSC_STATUS_ACTIVE, NULL, "unacknowledged",
                                "only an acknowledged alert can be unacknowledged"},
    [OPSC_ACT_RESOLVE] = {ST(ACTIVE) | ST(ACKNOWLEDGED) | ST(SUPPRESSED), OPSC_STATUS_RESOLVED,
                          RULE_MANUAL, "resolved", "the alert is closed already"},
    [OPSC_ACT_SUPPRESS] = {ST(ACTIVE) | ST(ACKNOWLEDGED), OPSC_STATUS_SUPPRESSED, RULE_MANUAL,
                           "suppressed", "only an active or acknowledged alert can be suppressed"},
    [OPSC_ACT_REOPEN] = {ST(SUPPRESSED), OPSC_STATUS_ACTIVE, NULL, "reopened",
                         "the alert is open already"},
};
#undef ST

static void act_one(opsc_pipeline_t *p, const opsc_action_batch_t *b, opsc_action_item_t *it,
                    int64_t now_us) {
    opsc_alert_t *a = it->row;
    opsc_dedup_entry_t *e = a->fingerprint[0] ? opsc_dedup_find(p->dedup, a->fingerprint) : NULL;
    int mine = e && memcmp(&e->id, &a->id, sizeof(a->id)) == 0;
    if (!mine) {
        /* Not in the index: closed (the database may not show it yet). */
        opsc_status_t was =
            a->status == OPSC_STATUS_EXPIRED ? OPSC_STATUS_EXPIRED : OPSC_STATUS_RESOLVED;
        if (b->kind != OPSC_ACT_REOPEN) {
            refuse(it, was,
                   was == OPSC_STATUS_EXPIRED ? "the alert has expired; reopen it first"
                                              : "the alert is resolved; reopen it first");
        } else if (e) {
            char idtext[37], msg[160];
            opsc_uuid_format(&e->id, idtext);
            snprintf(msg, sizeof(msg),
                     "alert %s with the same fingerprint is open: act on that one", idtext);
            refuse(it, was, msg);
        } else if (!a->fingerprint[0]) {
            refuse(it, was, "the alert has no fingerprint and cannot be tracked again");
        } else {
            reopen_closed(p, b, it, was, now_us);
        }
        return;
    }
    opsc_status_t st = e->status;
    const transition_t *t = b->kind < OPSC_ACT_COUNT ? &transitions[b->kind] : NULL;
    if (!t || !(t->from & (1u << st))) {
        refuse(it, st, t ? t->refusal : "unknown action");
        return;
    }
    if (t->to == OPSC_STATUS_RESOLVED) {
        close_entry(p, e, t->to, b->actor, t->rule, b->notes, now_us);
    } else {
        set_status(p, e, t->to, b->actor, t->rule, t->history, b->notes, now_us);
    }
    if (b->kind == OPSC_ACT_ACKNOWLEDGE && b->expires_in_us > 0) {
        ack_expiry_add(p, e, now_us + b->expires_in_us);
        ack_expiry_mark(p, &it->row->id, now_us + b->expires_in_us, now_us);
    } else if (b->kind != OPSC_ACT_ACKNOWLEDGE && ack_expiry_forget(p, &it->row->id)) {
        ack_expiry_mark(p, &it->row->id, 0, now_us); /* unacknowledged, resolved, suppressed */
    }
    it->done = 1;
    it->before = st;
    it->after = t->to;
}

static void handle_actions(opsc_pipeline_t *p, const rec_t *r) {
    opsc_action_batch_t *b = r->ptr;
    int64_t now = r->wall_us;
    for (size_t i = 0; i < b->n; i++) {
        act_one(p, b, &b->items[i], now);
        atomic_fetch_add_explicit(b->items[i].done ? &p->n_actions[b->kind] : &p->n_actions_refused,
                                  1, memory_order_relaxed);
    }
    flush_repeats(p);
    opsc_change_t *c = opsc_change_new(OPSC_CHANGE_REPLY);
    if (c) {
        c->ack_token = r->token;
        c->actions = b;
        emit(p, c);
    } else {
        opsc_action_batch_free(b); /* the next ack answers it (500: outcome unknown) */
    }
}

static void reopen_orphan(opsc_dedup_entry_t *e, void *arg) {
    opsc_pipeline_t *p = arg;
    if (!e->has_correlated_to || e->status != OPSC_STATUS_SUPPRESSED) {
        return;
    }
    for (size_t i = 0; i < p->ndown; i++) {
        if (memcmp(&p->down[i]->id, &e->correlated_to, sizeof(e->correlated_to)) == 0) {
            return;
        }
    }
    reopen_arg_t ra = {.p = p, .upstream = e->correlated_to, .now_us = opsc_now_us()};
    reopen_one(e, &ra);
}

/*
 * New reference data: an alert suppressed by an upstream that its device no
 * longer depends on (the dependency row was deleted or changed) goes back to
 * active, as when the upstream resolves.
 */
static void reopen_unrelated(opsc_dedup_entry_t *e, void *arg) {
    opsc_pipeline_t *p = arg;
    if (!e->has_correlated_to || e->status != OPSC_STATUS_SUPPRESSED || e->maint_suppressed) {
        return;
    }
    const char *upstream_device = NULL;
    for (size_t i = 0; i < p->ndown; i++) {
        if (memcmp(&p->down[i]->id, &e->correlated_to, sizeof(e->correlated_to)) == 0) {
            upstream_device = p->down[i]->device;
            break;
        }
    }
    if (!upstream_device) {
        return; /* reopen_orphan's case: handled when the upstream left the index */
    }
    const char *ups[UPSTREAM_MAX];
    size_t n = opsc_normalizer_upstreams(p->norm, e->device, ups, UPSTREAM_MAX);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ups[i], upstream_device) == 0) {
            return; /* still depends on it */
        }
    }
    reopen_arg_t ra = {.p = p, .upstream = e->correlated_to, .now_us = opsc_now_us()};
    reopen_one(e, &ra);
}

static void take_active(opsc_pipeline_t *p, opsc_alert_t **alerts, size_t n) {
    for (size_t i = 0; i < n; i++) {
        opsc_alert_t *a = alerts[i];
        if (a->fingerprint[0] && a->status != OPSC_STATUS_RESOLVED &&
            a->status != OPSC_STATUS_EXPIRED) {
            const char *device =
                a->device_ip ? a->device_ip : (a->device_name ? a->device_name : "");
            opsc_dedup_entry_t *e =
                opsc_dedup_add(p->dedup, a->fingerprint, &a->id, a->status, a->occurrence_count,
                               a->last_occurrence_at_us, a->alert_type, device, "");
            if (e && a->status == OPSC_STATUS_SUPPRESSED && a->has_correlated_to &&
                a->correlation_rule && strcmp(a->correlation_rule, RULE_UPSTREAM) == 0) {
                e->has_correlated_to = 1;
                e->correlated_to = a->correlated_to_id;
            }
            if (e && is_down_alert(p, a->alert_type, a->severity)) {
                down_add(p, e);
            }
            if (e) {
                opsc__maint_take_loaded(e, a);
                flap_adopt(p, e, a);
                ack_expiry_adopt(p, e, a);
            }
        }
        opsc_alert_free(a);
    }
    opsc_free(alerts);
    /* Suppressed by an upstream alert that is no longer active (resolved while we were down). */
    opsc_dedup_each(p->dedup, reopen_orphan, p);
    opsc__maint_reevaluate(&p->maint); /* windows that ended (or changed) while we were down */
    p->have_active = 1;
    opsc_log_info(LOG, "active-alert index loaded: %zu alerts", opsc_dedup_count(p->dedup));
}

static void on_retry(uv_timer_t *t);

static void drain(opsc_pipeline_t *p) {
    if (p->out_head && push_changes(p) != 0) {
        atomic_fetch_add_explicit(&p->n_change_ring_waits, 1, memory_order_relaxed);
        uv_timer_start(&p->retry, on_retry, 1, 0);
        return;
    }
    size_t n = 0;
    size_t len;
    const void *rec;
    opsc_ring_consumer_awake(p->ingest);
    while (n < BATCH && (rec = opsc_ring_peek(p->ingest, &len)) != NULL) {
        const rec_t *r = rec;
        switch (r->kind) {
        case REC_DATAGRAM:
            if (p->norm && p->dec) {
                handle_datagram(p, r);
            } else {
                atomic_fetch_add_explicit(&p->n_unnormalizable, 1, memory_order_relaxed);
            }
            break;
        case REC_NORMALIZER:
            if (p->norm) {
                opsc_normalizer_destroy(p->norm);
            }
            p->norm = r->ptr;
            p->have_norm = 1;
            if (p->have_active && p->ndown > 0) {
                opsc_dedup_each(p->dedup, reopen_unrelated, p);
            }
            break;
        case REC_ACTIVE:
            take_active(p, r->ptr, r->n);
            break;
        case REC_MAINT:
            opsc__maint_set(&p->maint, r->ptr);
            break;
        case REC_EVENTS:
            handle_events(p, r);
            break;
        case REC_ACTIONS:
            handle_actions(p, r);
            break;
        case REC_STORM:
            if (r->from.sa.sa_family != AF_UNSPEC) {
                opsc_trap_storm_report(p->storm, p->dedup, p->norm, &r->from.sa, r->n, r->wall_us);
            } else if (p->have_active) {
                opsc_trap_storm_tick(p->storm, p->dedup, r->wall_us);
            }
            break;
        default:
            break;
        }
        opsc_ring_release(p->ingest);
        n++;
        atomic_fetch_add_explicit(&p->n_records, 1, memory_order_relaxed);
    }
    atomic_store_explicit(&p->n_active, opsc_dedup_count(p->dedup), memory_order_relaxed);
    if (p->have_norm && p->have_active) {
        atomic_store_explicit(&p->ready, 1, memory_order_release);
    }
    flush_repeats(p);
    if (push_changes(p) != 0) {
        atomic_fetch_add_explicit(&p->n_change_ring_waits, 1, memory_order_relaxed);
        uv_timer_start(&p->retry, on_retry, 1, 0);
        return;
    }
    if (n == BATCH) {
        opsc_wake_send(&p->wake); /* more to do: yield to stop requests, then continue */
        return;
    }
    /* Going to sleep: say so, then look once more (no lost wake-up). */
    opsc_ring_consumer_sleeping(p->ingest);
    if (opsc_ring_peek(p->ingest, &len) != NULL) {
        opsc_ring_consumer_awake(p->ingest);
        opsc_wake_send(&p->wake);
    } else if (atomic_load(&p->stopping) && !p->out_head) {
        uv_stop(&p->ploop);
    }
}

static void on_wake(opsc_wake_t *w) {
    drain(w->data);
}

static void on_retry(uv_timer_t *t) {
    drain(t->data);
}

/* ---- maintenance windows: the hooks maintenance.c calls back into ---- */

static void maint_emit(opsc_change_t *c, void *arg) {
    emit(arg, c);
}

static opsc_dedup_entry_t *maint_upstream(const char *device, void *arg) {
    return upstream_down(arg, device);
}

static void maint_kick(void *arg) {
    drain(arg);
}

static void thread_main(void *arg) {
    opsc_pipeline_t *p = arg;
    prctl(PR_SET_NAME, "opsc-pipeline", 0, 0, 0); /* visible in top -H and perf */
    p->start_rc =
        opsc_snmp_decoder_create(&p->snmp, &p->dec, p->start_error, sizeof(p->start_error));
    /* Both consumers start asleep: the first record wakes them. */
    opsc_ring_consumer_sleeping(p->ingest);
    uv_sem_post(&p->started);
    if (p->start_rc != 0) {
        return;
    }
    uv_run(&p->ploop, UV_RUN_DEFAULT);
    /* Stopping: whatever arrived last is processed, then everything is handed over. */
    drain(p);
    while (p->out_head) {
        if (push_changes(p) != 0) {
            uv_sleep(1);
        }
    }
    opsc_snmp_decoder_destroy(p->dec);
    p->dec = NULL;
    p->changes_owed = 0; /* the send below covers it */
    uv_timer_stop(&p->changes_hold);
    atomic_store(&p->exited, 1);
    opsc_wake_send(&p->loop_wake);
}

/* ---- loop thread ------------------------------------------------------------------------ */

static void loop_drain(opsc_pipeline_t *p);

static void on_loop_retry(uv_timer_t *t) {
    loop_drain(t->data);
}

static void free_down_types(opsc_pipeline_t *p) {
    for (size_t i = 0; i < p->ndown_types; i++) {
        opsc_free(p->down_types[i]);
    }
    opsc_free(p->down_types);
    p->down_types = NULL;
    p->ndown_types = 0;
}

static void loop_handle_gone(opsc_pipeline_t *p);

static void loop_handle_closed(uv_handle_t *h) {
    loop_handle_gone(h->data);
}

static void loop_handle_gone(opsc_pipeline_t *p) {
    if (--p->loop_handles > 0) {
        return;
    }
    void (*done)(void *) = p->stop_done;
    void *arg = p->stop_arg;
    opsc_ring_destroy(p->ingest);
    opsc_ring_destroy(p->changes);
    opsc_free(p->scratch);
    opsc_buf_free(&p->reply);
    free_down_types(p);
    opsc_trap_storm_destroy(p->storm); /* NULL after finish_stop; not after a failed start */
    opsc_free(p);
    if (done) {
        done(arg);
    }
}

static void loop_wake_closed(opsc_wake_t *w) {
    loop_handle_gone(w->data);
}

/* The pipeline thread's handles, once it has exited (or never started), and its loop. */
static void close_thread_handles(opsc_pipeline_t *p) {
    opsc_wake_close(&p->wake, NULL);
    uv_close((uv_handle_t *)&p->retry, NULL);
    uv_close((uv_handle_t *)&p->changes_hold, NULL);
    opsc__maint_close(&p->maint);
    uv_close((uv_handle_t *)&p->corr_timer, NULL);
    /* A uv_stop left pending by the thread makes one run return at once. */
    for (int i = 0; i < 10 && uv_loop_close(&p->ploop) == UV_EBUSY; i++) {
        uv_run(&p->ploop, UV_RUN_NOWAIT);
    }
}

/* The loop thread's handles; the last close frees the pipeline. */
static void close_loop_handles(opsc_pipeline_t *p) {
    p->loop_handles = 3;
    opsc_wake_close(&p->loop_wake, loop_wake_closed);
    uv_close((uv_handle_t *)&p->loop_retry, loop_handle_closed);
    uv_close((uv_handle_t *)&p->ingest_hold, loop_handle_closed);
}

static void finish_stop(opsc_pipeline_t *p) {
    uv_thread_join(&p->thread);
    /* Records the thread never took (ring full at the very end) are freed here. */
    size_t len;
    const void *rec;
    while ((rec = opsc_ring_peek(p->ingest, &len)) != NULL) {
        const rec_t *r = rec;
        if (r->kind == REC_NORMALIZER) {
            opsc_normalizer_destroy(r->ptr);
        } else if (r->kind == REC_MAINT) {
            opsc_maint_destroy(r->ptr);
        } else if (r->kind == REC_ACTIONS) {
            opsc_action_batch_free(r->ptr);
        } else if (r->kind == REC_ACTIVE || r->kind == REC_EVENTS) {
            opsc_alert_t **a = r->ptr;
            for (size_t i = 0; i < r->n; i++) {
                opsc_alert_free(a[i]);
            }
            opsc_free(a);
        }
        opsc_ring_release(p->ingest);
    }
    if (p->norm) {
        opsc_normalizer_destroy(p->norm);
        p->norm = NULL;
    }
    opsc_dedup_destroy(p->dedup);
    p->dedup = NULL;
    opsc__flap_destroy(p->flap);
    p->flap = NULL;
    opsc_trap_storm_destroy(p->storm);
    p->storm = NULL;
    opsc_free(p->down);
    p->down = NULL;
    p->ndown = p->capdown = 0;
    opsc_free(p->ackx);
    p->ackx = NULL;
    p->nackx = p->capackx = 0;
    close_thread_handles(p);
    close_loop_handles(p);
}

static void loop_drain(opsc_pipeline_t *p) {
    size_t len;
    const void *rec;
    opsc_ring_consumer_awake(p->changes);
    while ((rec = opsc_ring_peek(p->changes, &len)) != NULL) {
        opsc_change_t *c = *(opsc_change_t *const *)rec;
        if (p->on_change(c, p->arg) != 0) {
            /* The consumer is full: keep it in the ring and offer it again soon. */
            uv_timer_start(&p->loop_retry, on_loop_retry, 5, 0);
            return;
        }
        opsc_ring_release(p->changes);
    }
    opsc_ring_consumer_sleeping(p->changes);
    if (opsc_ring_peek(p->changes, &len) != NULL) {
        opsc_ring_consumer_awake(p->changes);
        opsc_wake_send(&p->loop_wake);
        return;
    }
    if (p->stop_requested && atomic_load(&p->exited) && !opsc_wake_is_closing(&p->loop_wake)) {
        finish_stop(p);
    }
}

static void on_loop_wake(opsc_wake_t *w) {
    loop_drain(w->data);
}

static void wake_pipeline_now(opsc_pipeline_t *p) {
    if (p->ingest_owed) {
        p->ingest_owed = 0;
        uv_timer_stop(&p->ingest_hold);
        opsc_wake_send(&p->wake);
    }
}

static void on_ingest_hold(uv_timer_t *t) {
    wake_pipeline_now(t->data);
}

static int push_record(opsc_pipeline_t *p, const rec_t *hdr, const void *data, size_t len) {
    rec_t *r = opsc_ring_reserve(p->ingest, sizeof(*r) + len);
    if (!r) {
        return OPSC_EQUEUE_FULL;
    }
    *r = *hdr;
    if (len) {
        memcpy(r + 1, data, len);
    }
    opsc_ring_commit(p->ingest);
    if (p->ingest_owed) {
        p->ingest_owed++;
    } else if (opsc_ring_should_wake(p->ingest)) {
        p->ingest_owed = 1;
        uv_timer_start(&p->ingest_hold, on_ingest_hold, WAKE_HOLDOFF_MS, 0);
    }
    /* Only datagrams wait: reference data, timers' records and stop requests go at once. */
    if (p->ingest_owed && (p->ingest_owed >= WAKE_BATCH || hdr->kind != REC_DATAGRAM)) {
        wake_pipeline_now(p);
    }
    return 0;
}

/*
 * Receive time of a datagram: the wall clock read once per loop iteration
 * (uv_now changes once per iteration), not once per datagram, which cost 5% of
 * the loop thread at 150,000 traps/s. Datagrams read in one go share it.
 */
static int64_t loop_wall_us(opsc_pipeline_t *p) {
    uint64_t now = uv_now(p->loop);
    if (now != p->wall_at_ms || p->wall_us == 0) {
        p->wall_at_ms = now;
        p->wall_us = opsc_now_us();
    }
    return p->wall_us;
}

int opsc_pipeline_push_datagram(opsc_pipeline_t *p, const void *data, size_t len,
                                const struct sockaddr *from, int listener) {
    rec_t h;
    memset(&h, 0, sizeof(h));
    h.kind = REC_DATAGRAM;
    h.len = (uint32_t)len;
    h.listener = listener;
    h.wall_us = loop_wall_us(p);
    memcpy(&h.from, from,
           from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    if (p->stop_requested || len > OPSC_SNMP_DATAGRAM_MAX || push_record(p, &h, data, len) != 0) {
        p->ring_full_drops++;
        return OPSC_EQUEUE_FULL;
    }
    return 0;
}

int opsc_pipeline_push_storm(opsc_pipeline_t *p, const struct sockaddr *from, uint64_t dropped) {
    rec_t h;
    memset(&h, 0, sizeof(h));
    h.kind = REC_STORM;
    h.wall_us = opsc_now_us();
    h.n = (size_t)dropped;
    if (from) {
        memcpy(&h.from, from,
               from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                           : sizeof(struct sockaddr_in));
    } /* else a tick: from stays AF_UNSPEC */
    return p->stop_requested ? OPSC_EQUEUE_FULL : push_record(p, &h, NULL, 0);
}

int opsc_pipeline_push_events(opsc_pipeline_t *p, opsc_alert_t **alerts, size_t n, uint64_t token) {
    rec_t h;
    memset(&h, 0, sizeof(h));
    h.kind = REC_EVENTS;
    h.wall_us = opsc_now_us();
    h.ptr = alerts;
    h.n = n;
    h.token = token;
    if (p->stop_requested || push_record(p, &h, NULL, 0) != 0) {
        p->ring_full_drops++;
        return OPSC_EQUEUE_FULL;
    }
    return 0;
}

int opsc_pipeline_push_actions(opsc_pipeline_t *p, opsc_action_batch_t *b, uint64_t token) {
    rec_t h;
    memset(&h, 0, sizeof(h));
    h.kind = REC_ACTIONS;
    h.wall_us = opsc_now_us();
    h.ptr = b;
    h.token = token;
    if (p->stop_requested || push_record(p, &h, NULL, 0) != 0) {
        return OPSC_EQUEUE_FULL;
    }
    return 0;
}

int opsc_pipeline_set_normalizer(opsc_pipeline_t *p, opsc_normalizer_t *n) {
    rec_t h;
    memset(&h, 0, sizeof(h));
    h.kind = REC_NORMALIZER;
    h.ptr = n;
    return push_record(p, &h, NULL, 0);
}

int opsc_pipeline_set_maintenance(opsc_pipeline_t *p, struct opsc_maint_s *m) {
    rec_t h;
    memset(&h, 0, sizeof(h));
    h.kind = REC_MAINT;
    h.ptr = m;
    return push_record(p, &h, NULL, 0);
}

int opsc_pipeline_load_active(opsc_pipeline_t *p, opsc_alert_t **alerts, size_t n) {
    rec_t h;
    memset(&h, 0, sizeof(h));
    h.kind = REC_ACTIVE;
    h.ptr = alerts;
    h.n = n;
    return push_record(p, &h, NULL, 0);
}

int opsc_pipeline_ready(const opsc_pipeline_t *p) {
    return atomic_load_explicit(&p->ready, memory_order_acquire);
}

size_t opsc_pipeline_pending(const opsc_pipeline_t *p) {
    return (size_t)(opsc_ring_used_bytes(p->ingest) + opsc_ring_used_bytes(p->changes));
}

int opsc_pipeline_start(uv_loop_t *loop, const opsc_pipeline_options_t *opts, opsc_pipeline_t **out,
                        char *errbuf, size_t errlen) {
    int rc;
    opsc_pipeline_t *p = opsc_calloc(1, sizeof(*p));
    if (!p) {
        return OPSC_ENOMEM;
    }
    p->loop = loop;
    p->on_change = opts->on_change;
    p->arg = opts->arg;
    p->snmp = *opts->snmp;
    p->resolve_names = opts->resolve_names;
    rc = opsc_ring_create(opts->ingest_ring_bytes ? opts->ingest_ring_bytes : DEFAULT_INGEST,
                          &p->ingest);
    if (rc == 0) {
        rc = opsc_ring_create(opts->change_ring_bytes ? opts->change_ring_bytes : DEFAULT_CHANGES,
                              &p->changes);
    }
    p->scratch = opsc_malloc(OPSC_SNMP_DATAGRAM_MAX + 1);
    p->dedup = opsc_dedup_create(4096);
    p->storm = opsc_trap_storm_create(opts->storm_rate, opts->storm_burst,
                                      opts->storm_quiet_ms * 1000, emit_cb, p);
    int types_ok = 1;
    if (opts->ndown_alert_types > 0) {
        p->down_types = opsc_calloc(opts->ndown_alert_types, sizeof(*p->down_types));
        types_ok = p->down_types != NULL;
        for (size_t i = 0; types_ok && i < opts->ndown_alert_types; i++) {
            p->down_types[i] = opsc_strdup(opts->down_alert_types[i]);
            types_ok = p->down_types[i] != NULL;
            p->ndown_types = i + 1;
        }
    }
    if (opts->flap_threshold > 0) {
        p->flap = opsc__flap_create(opts->flap_threshold, opts->flap_window_ms * 1000,
                                    opts->flap_track_max ? opts->flap_track_max : 100000);
        types_ok = types_ok && p->flap != NULL;
    }
    for (int c = 0; c < OPSC_CAT_COUNT; c++) {
        int64_t ms = opts->expire_by_category_set[c] ? opts->expire_by_category_ms[c]
                                                     : opts->expire_after_ms;
        p->expire_us[c] = ms > 0 ? ms * 1000 : 0;
        p->expiry_on |= p->expire_us[c] > 0;
    }
    if (rc != 0 || !p->scratch || !p->dedup || !p->storm || !types_ok) {
        opsc_errbuf_printf(errbuf, errlen, "pipeline: out of memory for the rings");
        rc = rc ? rc : OPSC_ENOMEM;
        goto error;
    }
    uv_loop_init(&p->ploop);
    rc = opsc_wake_init(&p->ploop, &p->wake, on_wake);
    if (rc == 0 && (rc = opsc_wake_init(loop, &p->loop_wake, on_loop_wake)) != 0) {
        opsc_wake_close(&p->wake, NULL);
    }
    if (rc != 0) {
        /* Out of file descriptors at start-up. */
        opsc_errbuf_printf(errbuf, errlen, "pipeline: cannot create its wake-up eventfd: %s",
                           uv_strerror(rc));
        uv_run(&p->ploop, UV_RUN_NOWAIT);
        uv_loop_close(&p->ploop);
        goto error;
    }
    p->wake.data = p;
    p->loop_wake.data = p;
    uv_timer_init(&p->ploop, &p->retry);
    p->retry.data = p;
    uv_timer_init(&p->ploop, &p->changes_hold);
    p->changes_hold.data = p;
    opsc__maint_hooks_t mh = {
        .emit = maint_emit, .upstream = maint_upstream, .kick = maint_kick, .arg = p};
    opsc__maint_init(&p->maint, &p->ploop, p->dedup, &p->norm, &mh);
    uv_timer_init(&p->ploop, &p->corr_timer);
    p->corr_timer.data = p;
    /* Always: acknowledgements may expire even with flapping and expiry off. */
    uv_timer_start(&p->corr_timer, on_corr_tick, CORR_TICK_MS, CORR_TICK_MS);
    uv_timer_init(loop, &p->loop_retry);
    p->loop_retry.data = p;
    uv_timer_init(loop, &p->ingest_hold);
    p->ingest_hold.data = p;
    opsc_ring_consumer_sleeping(p->changes);
    uv_sem_init(&p->started, 0);
    rc = uv_thread_create(&p->thread, thread_main, p);
    if (rc == 0) {
        uv_sem_wait(&p->started);
        rc = p->start_rc;
        if (rc != 0) {
            uv_thread_join(&p->thread);
            opsc_errbuf_printf(errbuf, errlen, "%s", p->start_error);
        }
    } else {
        opsc_errbuf_printf(errbuf, errlen, "pipeline: cannot start its thread: %s",
                           uv_strerror(rc));
    }
    uv_sem_destroy(&p->started);
    if (rc != 0) {
        close_thread_handles(p);
        p->stop_done = NULL;
        close_loop_handles(p);
        return rc;
    }
    *out = p;
    return 0;

error:
    free_down_types(p);
    opsc__flap_destroy(p->flap);
    opsc_dedup_destroy(p->dedup);
    opsc_trap_storm_destroy(p->storm);
    opsc_free(p->scratch);
    if (p->ingest) {
        opsc_ring_destroy(p->ingest);
    }
    if (p->changes) {
        opsc_ring_destroy(p->changes);
    }
    opsc_free(p);
    return rc;
}

void opsc_pipeline_stop(opsc_pipeline_t *p, void (*done)(void *arg), void *arg) {
    p->stop_requested = 1;
    p->stop_done = done;
    p->stop_arg = arg;
    atomic_store(&p->stopping, 1);
    opsc_wake_send(&p->wake);
}

/* ---- metrics ---------------------------------------------------------------------------- */

#define LOAD(x) ((uint64_t)atomic_load_explicit(&(x), memory_order_relaxed))

void opsc_pipeline_metrics(opsc_buf_t *out, void *arg) {
    opsc_pipeline_t *p = arg;
    char labels[96];
    opsc_metrics_one_u64(out, "opsc_trap_ingest_ring_dropped_total", "counter",
                         "Datagrams dropped because the ingest ring was full", p->ring_full_drops);
    opsc_metrics_family(out, "opsc_ring_used_bytes", "gauge", "Bytes waiting in each ring");
    opsc_metrics_sample_u64(out, "opsc_ring_used_bytes", "ring=\"ingest\"",
                            opsc_ring_used_bytes(p->ingest));
    opsc_metrics_sample_u64(out, "opsc_ring_used_bytes", "ring=\"change\"",
                            opsc_ring_used_bytes(p->changes));
    opsc_metrics_family(out, "opsc_ring_capacity_bytes", "gauge", "Size of each ring");
    opsc_metrics_sample_u64(out, "opsc_ring_capacity_bytes", "ring=\"ingest\"",
                            opsc_ring_capacity(p->ingest));
    opsc_metrics_sample_u64(out, "opsc_ring_capacity_bytes", "ring=\"change\"",
                            opsc_ring_capacity(p->changes));
    opsc_metrics_family(out, "opsc_trap_decoded_total", "counter",
                        "Notifications decoded and accepted, by SNMP version");
    static const char *const vname[4] = {"v1", "v2c", "", "v3"};
    for (int v = 0; v < 4; v++) {
        if (v == 2) {
            continue;
        }
        snprintf(labels, sizeof(labels), "version=\"%s\"", vname[v]);
        opsc_metrics_sample_u64(out, "opsc_trap_decoded_total", labels, LOAD(p->n_versions[v]));
    }
    opsc_metrics_family(out, "opsc_trap_dropped_total", "counter",
                        "Datagrams dropped by the decoder, by reason");
    for (int i = 1; i <= OPSC_SNMP_REASON_COUNT; i++) {
        snprintf(labels, sizeof(labels), "reason=\"%s\"", opsc_snmp_reason_name(-i));
        opsc_metrics_sample_u64(out, "opsc_trap_dropped_total", labels, LOAD(p->n_dropped[i]));
    }
    snprintf(labels, sizeof(labels), "reason=\"unnormalizable\"");
    opsc_metrics_sample_u64(out, "opsc_trap_dropped_total", labels, LOAD(p->n_unnormalizable));
    opsc_metrics_family(out, "opsc_alerts_total", "counter",
                        "What the pipeline did with accepted notifications");
    opsc_metrics_sample_u64(out, "opsc_alerts_total", "outcome=\"created\"", LOAD(p->n_created));
    opsc_metrics_sample_u64(out, "opsc_alerts_total", "outcome=\"deduplicated\"",
                            LOAD(p->n_deduplicated));
    opsc_metrics_sample_u64(out, "opsc_alerts_total", "outcome=\"cleared\"", LOAD(p->n_cleared));
    opsc_metrics_sample_u64(out, "opsc_alerts_total", "outcome=\"clear_without_alert\"",
                            LOAD(p->n_clears_unmatched));
    opsc_metrics_sample_u64(out, "opsc_alerts_total", "outcome=\"suppressed_upstream\"",
                            LOAD(p->n_suppressed));
    opsc_metrics_sample_u64(out, "opsc_alerts_total", "outcome=\"reopened_upstream_resolved\"",
                            LOAD(p->n_reopened));
    opsc_metrics_sample_u64(out, "opsc_alerts_total", "outcome=\"flap_reopened\"",
                            LOAD(p->n_flap_reopened));
    opsc_metrics_sample_u64(out, "opsc_alerts_total", "outcome=\"flap_clear_counted\"",
                            LOAD(p->n_flap_clears));
    opsc_metrics_sample_u64(out, "opsc_alerts_total", "outcome=\"flap_settled\"",
                            LOAD(p->n_flap_settled));
    opsc_metrics_sample_u64(out, "opsc_alerts_total", "outcome=\"expired\"", LOAD(p->n_expired));
    opsc_metrics_one_u64(out, "opsc_alerts_flapping", "gauge", "Alerts marked flapping now",
                         LOAD(p->n_flapping));
    opsc_metrics_one_u64(out, "opsc_flap_tracker_records", "gauge",
                         "Fingerprints the flap tracker remembers", LOAD(p->n_flap_records));
    opsc_metrics_one_u64(out, "opsc_flap_tracker_memory_bytes", "gauge",
                         "Memory of the flap tracker", LOAD(p->n_flap_memory));
    opsc_metrics_one_u64(out, "opsc_flap_tracker_evicted_total", "counter",
                         "Fingerprints forgotten by the flap tracker to make room",
                         LOAD(p->n_flap_evicted));
    opsc_metrics_one_u64(out, "opsc_flap_tracker_full_total", "counter",
                         "Resolves not tracked because every remembered fingerprint was flapping",
                         LOAD(p->n_flap_untracked));
    opsc_metrics_one_u64(out, "opsc_expiry_slice_max_nanoseconds", "gauge",
                         "Longest expiry scan slice so far (the pipeline pauses that long)",
                         LOAD(p->expire_slice_max_ns));
    opsc_metrics_one_u64(out, "opsc_alerts_active", "gauge",
                         "Alerts in the pipeline's active index (active, acknowledged, suppressed)",
                         LOAD(p->n_active));
    opsc_metrics_family(out, "opsc_snmp_replies_total", "counter",
                        "INFORM responses and v3 Reports produced");
    opsc_metrics_sample_u64(out, "opsc_snmp_replies_total", "kind=\"inform_response\"",
                            LOAD(p->n_informs));
    opsc_metrics_sample_u64(out, "opsc_snmp_replies_total", "kind=\"report\"", LOAD(p->n_reports));
    opsc_trap_storm_metrics(out, p->storm);
    opsc_metrics_one_u64(out, "opsc_events_processed_total", "counter",
                         "Normalized events (REST API, webhooks) decided by the pipeline",
                         LOAD(p->n_events));
    opsc_metrics_one_u64(out, "opsc_event_clears_unmatched_total", "counter",
                         "Clear events that found no active alert of their fingerprint",
                         LOAD(p->n_event_clears_unmatched));
    opsc_metrics_family(out, "opsc_alert_actions_total", "counter",
                        "Alert actions of people applied by the pipeline");
    for (int k = 0; k < OPSC_ACT_COUNT; k++) {
        char lab[48];
        snprintf(lab, sizeof(lab), "action=\"%s\"", opsc_action_name((opsc_action_kind_t)k));
        opsc_metrics_sample_u64(out, "opsc_alert_actions_total", lab, LOAD(p->n_actions[k]));
    }
    opsc_metrics_one_u64(out, "opsc_alert_actions_refused_total", "counter",
                         "Alert actions refused (409: not allowed in the alert's status)",
                         LOAD(p->n_actions_refused));
    opsc_metrics_one_u64(out, "opsc_alert_acks_expired_total", "counter",
                         "Acknowledgements that expired (the alert went back to active)",
                         LOAD(p->n_ack_expired));
    opsc_metrics_one_u64(out, "opsc_pipeline_change_ring_waits_total", "counter",
                         "Times the pipeline paused because the change ring was full",
                         LOAD(p->n_change_ring_waits));
    opsc__maint_metrics(out, &p->maint);
}
