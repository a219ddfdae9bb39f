/*
 * Maintenance windows: the snapshot (matchers + UTC occurrences) and the
 * pipeline thread's use of it (see include/opsc/maintenance.h and
 * maintenance_int.h).
 *
 * The snapshot is small (windows an operator typed in, a few occurrences
 * each over a two-day horizon), so lookups are linear scans: a new alert
 * checks every window, a boundary re-evaluates the whole active-alert index
 * once. Repeats of an alert never come here: dedup answers them first.
 */
#define _GNU_SOURCE /* FNM_CASEFOLD */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>

#include "maintenance_int.h"
#include "opsc/log.h"
#include "opsc/metrics.h"

#define LOG "maintenance"
#define SKIP_LOG_MAX 5
/* Re-check at least this often: uv timers follow the monotonic clock, windows the wall clock. */
#define RECHECK_MAX_MS 60000

typedef struct occ_s {
    int64_t start_us, end_us;
} occ_t;

typedef struct window_s {
    char *id;
    char *name;
    char *glob;
    char *site;
    char *alert_type;
    int has_category;
    opsc_category_t category;
    int has_cidr;
    unsigned char net[16]; /* IPv4 as IPv4-mapped IPv6 */
    unsigned prefix;       /* bits of net, 0..128 */
    occ_t *occ;
    size_t nocc, capocc;
} window_t;

struct opsc_maint_s {
    window_t *w;
    size_t nw, capw;
    size_t skipped;
};

/* ---- addresses ------------------------------------------------------------------------- */

static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Text address into 16 bytes; *is_v4 says which family it was written in. */
static int addr16(const char *s, size_t len, unsigned char out[16], int *is_v4) {
    char buf[64];
    if (len == 0 || len >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    unsigned char v4[4];
    if (inet_pton(AF_INET, buf, v4) == 1) {
        memcpy(out, v4mapped, 12);
        memcpy(out + 12, v4, 4);
        *is_v4 = 1;
        return 0;
    }
    *is_v4 = 0;
    return inet_pton(AF_INET6, buf, out) == 1 ? 0 : -1;
}

/* "10.1.0.0/16", "2001:db8::/32", or a bare address (a host). */
static int cidr_parse(const char *s, unsigned char net[16], unsigned *prefix) {
    size_t alen = strcspn(s, "/");
    int is_v4;
    if (addr16(s, alen, net, &is_v4) != 0) {
        return -1;
    }
    unsigned max = is_v4 ? 32 : 128;
    unsigned bits = max;
    if (s[alen] == '/') {
        const char *p = s + alen + 1;
        if (*p < '0' || *p > '9') {
            return -1;
        }
        bits = 0;
        for (; *p >= '0' && *p <= '9' && bits <= max; p++) {
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (*p != '\0' || bits > max) {
            return -1;
        }
    }
    *prefix = is_v4 ? 96 + bits : bits;
    return 0;
}

static int prefix_match(const unsigned char net[16], unsigned prefix, const unsigned char a[16]) {
    unsigned whole = prefix / 8, rest = prefix % 8;
    if (memcmp(net, a, whole) != 0) {
        return 0;
    }
    if (rest == 0) {
        return 1;
    }
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (net[whole] & mask) == (a[whole] & mask);
}

/* ---- snapshot -------------------------------------------------------------------------- */

static void window_free(window_t *w) {
    opsc_free(w->id);
    opsc_free(w->name);
    opsc_free(w->glob);
    opsc_free(w->site);
    opsc_free(w->alert_type);
    opsc_free(w->occ);
}

void opsc_maint_destroy(opsc_maint_t *m) {
    if (!m) {
        return;
    }
    for (size_t i = 0; i < m->nw; i++) {
        window_free(&m->w[i]);
    }
    opsc_free(m->w);
    opsc_free(m);
}

static int dup_or_null(const char *s, char **out) {
    *out = NULL;
    return s && !(*out = opsc_strdup(s)) ? -1 : 0;
}

static int row_check(const opsc_maint_row_t *r, const char **why) {
    unsigned char net[16];
    unsigned prefix;
    opsc_category_t c;
    if (!r->window_id) {
        *why = "no window id";
    } else if (r->device_ip_cidr && cidr_parse(r->device_ip_cidr, net, &prefix) != 0) {
        *why = "device_ip_cidr does not parse";
    } else if (r->category && opsc_category_parse(r->category, &c) != 0) {
        *why = "unknown category";
    } else if (r->end_us <= r->start_us) {
        *why = "empty interval";
    } else {
        return 0;
    }
    return -1;
}

static window_t *window_for(opsc_maint_t *m, const opsc_maint_row_t *r) {
    for (size_t i = 0; i < m->nw; i++) {
        if (strcmp(m->w[i].id, r->window_id) == 0) {
            return &m->w[i];
        }
    }
    if (m->nw == m->capw) {
        size_t ncap = m->capw ? m->capw * 2 : 8;
        window_t *nw = opsc_realloc(m->w, ncap * sizeof(*nw));
        if (!nw) {
            return NULL;
        }
        m->w = nw;
        m->capw = ncap;
    }
    window_t *w = &m->w[m->nw];
    memset(w, 0, sizeof(*w));
    m->nw++; /* counted now so that destroy frees a half-built one */
    if (dup_or_null(r->window_id, &w->id) || dup_or_null(r->name, &w->name) ||
        dup_or_null(r->device_name_glob, &w->glob) || dup_or_null(r->site, &w->site) ||
        dup_or_null(r->alert_type, &w->alert_type)) {
        return NULL;
    }
    if (r->device_ip_cidr) {
        w->has_cidr = cidr_parse(r->device_ip_cidr, w->net, &w->prefix) == 0;
    }
    if (r->category) {
        w->has_category = opsc_category_parse(r->category, &w->category) == 0;
    }
    return w;
}

static int occ_add(window_t *w, int64_t start_us, int64_t end_us) {
    if (w->nocc == w->capocc) {
        size_t ncap = w->capocc ? w->capocc * 2 : 4;
        occ_t *n = opsc_realloc(w->occ, ncap * sizeof(*n));
        if (!n) {
            return -1;
        }
        w->occ = n;
        w->capocc = ncap;
    }
    w->occ[w->nocc++] = (occ_t){start_us, end_us};
    return 0;
}

opsc_maint_t *opsc_maint_create(const opsc_maint_row_t *rows, size_t n) {
    opsc_maint_t *m = opsc_calloc(1, sizeof(*m));
    if (!m) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *why;
        if (row_check(&rows[i], &why) != 0) {
            if (m->skipped++ < SKIP_LOG_MAX) {
                opsc_log_warn(LOG, "window %s (%s) ignored: %s",
                              rows[i].window_id ? rows[i].window_id : "?",
                              rows[i].name ? rows[i].name : "", why);
            }
            continue;
        }
        window_t *w = window_for(m, &rows[i]);
        if (!w || occ_add(w, rows[i].start_us, rows[i].end_us) != 0) {
            opsc_maint_destroy(m);
            return NULL;
        }
    }
    return m;
}

size_t opsc_maint_window_count(const opsc_maint_t *m) {
    return m ? m->nw : 0;
}

size_t opsc_maint_skipped(const opsc_maint_t *m) {
    return m ? m->skipped : 0;
}

const char *opsc_maint_window_name(const opsc_maint_t *m, size_t i) {
    return m->w[i].name ? m->w[i].name : m->w[i].id;
}

int opsc_maint_window_active(const opsc_maint_t *m, size_t i, int64_t now_us) {
    const window_t *w = &m->w[i];
    for (size_t k = 0; k < w->nocc; k++) {
        if (w->occ[k].start_us <= now_us && now_us < w->occ[k].end_us) {
            return 1;
        }
    }
    return 0;
}

int opsc_maint_window_matches(const opsc_maint_t *m, size_t i, const opsc_maint_subject_t *s) {
    const window_t *w = &m->w[i];
    if (w->has_cidr) {
        unsigned char a[16];
        int is_v4;
        if (!s->device_ip || addr16(s->device_ip, strlen(s->device_ip), a, &is_v4) != 0 ||
            !prefix_match(w->net, w->prefix, a)) {
            return 0;
        }
    }
    if (w->glob && (!s->device_name || fnmatch(w->glob, s->device_name, FNM_CASEFOLD) != 0)) {
        return 0;
    }
    if (w->site && (!s->site || strcmp(w->site, s->site) != 0)) {
        return 0;
    }
    if (w->has_category &&
        (!s->category || strcmp(opsc_category_name(w->category), s->category) != 0)) {
        return 0;
    }
    if (w->alert_type && (!s->alert_type || strcmp(w->alert_type, s->alert_type) != 0)) {
        return 0;
    }
    return 1;
}

long opsc_maint_match(const opsc_maint_t *m, const opsc_maint_subject_t *s, int64_t now_us) {
    for (size_t i = 0; m && i < m->nw; i++) {
        if (opsc_maint_window_active(m, i, now_us) && opsc_maint_window_matches(m, i, s)) {
            return (long)i;
        }
    }
    return -1;
}

int64_t opsc_maint_next_boundary(const opsc_maint_t *m, int64_t now_us) {
    int64_t next = INT64_MAX;
    for (size_t i = 0; m && i < m->nw; i++) {
        for (size_t k = 0; k < m->w[i].nocc; k++) {
            const occ_t *o = &m->w[i].occ[k];
            if (o->start_us > now_us && o->start_us < next) {
                next = o->start_us;
            }
            if (o->end_us > now_us && o->end_us < next) {
                next = o->end_us;
            }
        }
    }
    return next;
}

/* ---- pipeline thread ------------------------------------------------------------------ */

/* What an index entry is matched on: its device's name and site come from the devices snapshot. */
static void subject_of(const opsc__maint_t *mt, const char *device, const char *alert_type,
                       opsc_category_t category, opsc_maint_subject_t *s) {
    const opsc_device_ref_t *d = opsc_normalizer_device(*mt->norm, device);
    unsigned char a[16];
    int is_v4;
    int is_ip = device && addr16(device, strlen(device), a, &is_v4) == 0;
    s->device_ip = is_ip ? device : NULL;
    s->device_name = d ? d->name : (is_ip ? NULL : device); /* no ip: the alert names its device */
    s->site = d ? d->site : NULL;
    s->category = opsc_category_name(category);
    s->alert_type = alert_type;
}

static void emit_status(opsc__maint_t *mt, opsc_dedup_entry_t *e, opsc_status_t to,
                        const char *action, const char *actor, const char *rule,
                        const opsc_uuid_t *correlated_to) {
    opsc_change_t *c = opsc_change_new(OPSC_CHANGE_STATUS);
    if (!c) {
        return; /* the next evaluation tries again: the entry keeps its state */
    }
    c->id = e->id;
    c->old_status = e->status;
    c->new_status = to;
    c->at_us = mt->now_us;
    snprintf(c->actor, sizeof(c->actor), "%s", actor);
    snprintf(c->action, sizeof(c->action), "%s", action);
    if (rule) {
        snprintf(c->rule, sizeof(c->rule), "%s", rule);
    }
    if (correlated_to) {
        c->correlated_to_id = *correlated_to;
        c->has_correlated_to = 1;
    }
    mt->hooks.emit(c, mt->hooks.arg);
    e->status = to;
    e->maint_suppressed = 0;
    e->has_correlated_to = 0;
    if (rule && strcmp(rule, OPSC_MAINT_RULE) == 0) {
        e->maint_suppressed = 1;
    } else if (correlated_to) {
        e->has_correlated_to = 1;
        e->correlated_to = *correlated_to;
    }
}

static void suppress(opsc__maint_t *mt, opsc_dedup_entry_t *e) {
    emit_status(mt, e, OPSC_STATUS_SUPPRESSED, "suppressed", OPSC_MAINT_RULE, OPSC_MAINT_RULE,
                NULL);
    atomic_fetch_add_explicit(&mt->n_suppressed, 1, memory_order_relaxed);
}

static int covered(const opsc__maint_t *mt, const opsc_dedup_entry_t *e) {
    opsc_maint_subject_t s;
    subject_of(mt, e->device, e->alert_type, (opsc_category_t)e->category, &s);
    for (size_t i = 0; i < mt->snap->nw; i++) {
        if (mt->was_active[i] && opsc_maint_window_matches(mt->snap, i, &s)) {
            return 1;
        }
    }
    return 0;
}

static void evaluate_one(opsc_dedup_entry_t *e, void *arg) {
    opsc__maint_t *mt = arg;
    if (e->status == OPSC_STATUS_ACKNOWLEDGED) {
        return;
    }
    if (covered(mt, e)) {
        /* Maintenance wins, also over an upstream suppression (see maintenance_int.h). */
        if (e->status == OPSC_STATUS_ACTIVE ||
            (e->status == OPSC_STATUS_SUPPRESSED && !e->maint_suppressed && e->has_correlated_to)) {
            suppress(mt, e);
        }
        return;
    }
    if (!e->maint_suppressed || e->status != OPSC_STATUS_SUPPRESSED) {
        return;
    }
    opsc_dedup_entry_t *up = mt->hooks.upstream(e->device, mt->hooks.arg);
    if (up) {
        opsc_uuid_t id = up->id;
        emit_status(mt, e, OPSC_STATUS_SUPPRESSED, "suppressed", "upstream_dependency",
                    "upstream_dependency", &id);
        atomic_fetch_add_explicit(&mt->n_to_upstream, 1, memory_order_relaxed);
        return;
    }
    emit_status(mt, e, OPSC_STATUS_ACTIVE, "reopened", "system", NULL, NULL);
    atomic_fetch_add_explicit(&mt->n_reopened, 1, memory_order_relaxed);
}

static void on_timer(uv_timer_t *t);

/* Which windows are active now; 1 when that changed since the last evaluation. */
static int refresh_active(opsc__maint_t *mt) {
    int changed = 0;
    uint64_t nactive = 0;
    for (size_t i = 0; i < mt->snap->nw; i++) {
        unsigned char a = (unsigned char)opsc_maint_window_active(mt->snap, i, mt->now_us);
        if (a != mt->was_active[i]) {
            changed = 1;
            opsc_log_info(LOG, "window \"%s\" %s", opsc_maint_window_name(mt->snap, i),
                          a ? "started" : "ended");
        }
        mt->was_active[i] = a;
        nactive += a;
    }
    atomic_store_explicit(&mt->n_windows_active, nactive, memory_order_relaxed);
    return changed;
}

static void arm(opsc__maint_t *mt) {
    int64_t next = opsc_maint_next_boundary(mt->snap, mt->now_us);
    uint64_t ms = RECHECK_MAX_MS;
    if (next != INT64_MAX && (next - mt->now_us) / 1000 + 1 < RECHECK_MAX_MS) {
        ms = (uint64_t)((next - mt->now_us) / 1000 + 1); /* never early: +1 rounds up */
    }
    uv_timer_start(&mt->timer, on_timer, ms, 0);
}

/* force: every alert is looked at even when no window started or ended (new matchers). */
static void evaluate(opsc__maint_t *mt, int force) {
    if (!mt->snap) {
        return; /* nothing known yet: never reopen what an earlier run suppressed */
    }
    mt->now_us = opsc_now_us();
    int changed = refresh_active(mt);
    if (changed || force) {
        atomic_fetch_add_explicit(&mt->n_evaluations, 1, memory_order_relaxed);
        opsc_dedup_each(mt->dedup, evaluate_one, mt);
    }
    arm(mt);
}

static void on_timer(uv_timer_t *t) {
    opsc__maint_t *mt = t->data;
    evaluate(mt, 0);
    mt->hooks.kick(mt->hooks.arg);
}

void opsc__maint_init(opsc__maint_t *mt, uv_loop_t *ploop, opsc_dedup_t *dedup,
                      opsc_normalizer_t *const *norm, const opsc__maint_hooks_t *hooks) {
    mt->snap = NULL;
    mt->was_active = NULL;
    mt->dedup = dedup;
    mt->norm = norm;
    mt->hooks = *hooks;
    uv_timer_init(ploop, &mt->timer);
    mt->timer.data = mt;
}

void opsc__maint_close(opsc__maint_t *mt) {
    uv_close((uv_handle_t *)&mt->timer, NULL);
    opsc_maint_destroy(mt->snap);
    opsc_free(mt->was_active);
    mt->snap = NULL;
    mt->was_active = NULL;
}

void opsc__maint_set(opsc__maint_t *mt, opsc_maint_t *snap) {
    unsigned char *act = opsc_calloc(snap->nw ? snap->nw : 1, 1);
    if (!act) {
        opsc_log_err(LOG, "out of memory for a new snapshot: keeping the old one");
        opsc_maint_destroy(snap);
        return;
    }
    opsc_maint_destroy(mt->snap);
    opsc_free(mt->was_active);
    mt->snap = snap;
    mt->was_active = act;
    atomic_store_explicit(&mt->n_windows, snap->nw, memory_order_relaxed);
    evaluate(mt, 1);
}

void opsc__maint_reevaluate(opsc__maint_t *mt) {
    evaluate(mt, 1);
}

void opsc__maint_take_loaded(opsc_dedup_entry_t *e, const opsc_alert_t *a) {
    e->category = (unsigned char)a->category;
    e->maint_suppressed = a->status == OPSC_STATUS_SUPPRESSED && a->correlation_rule &&
                          strcmp(a->correlation_rule, OPSC_MAINT_RULE) == 0;
}

int opsc__maint_covers_alert(const opsc__maint_t *mt, const opsc_alert_t *a, int64_t now_us) {
    if (!mt->snap || mt->snap->nw == 0) {
        return 0;
    }
    opsc_maint_subject_t s;
    subject_of(mt, a->device_ip ? a->device_ip : a->device_name, a->alert_type, a->category, &s);
    if (a->device_name) {
        s.device_name = a->device_name;
    }
    return opsc_maint_match(mt->snap, &s, now_us) >= 0;
}

void opsc__maint_suppress_new(opsc__maint_t *mt, opsc_dedup_entry_t *e, int64_t now_us) {
    mt->now_us = now_us;
    suppress(mt, e);
}

#define LOAD(x) ((uint64_t)atomic_load_explicit(&(x), memory_order_relaxed))

void opsc__maint_metrics(opsc_buf_t *out, opsc__maint_t *mt) {
    opsc_metrics_family(out, "opsc_maintenance_alerts_total", "counter",
                        "Alert transitions decided by maintenance windows");
    opsc_metrics_sample_u64(out, "opsc_maintenance_alerts_total", "transition=\"suppressed\"",
                            LOAD(mt->n_suppressed));
    opsc_metrics_sample_u64(out, "opsc_maintenance_alerts_total", "transition=\"reopened\"",
                            LOAD(mt->n_reopened));
    opsc_metrics_sample_u64(out, "opsc_maintenance_alerts_total",
                            "transition=\"to_upstream_dependency\"", LOAD(mt->n_to_upstream));
    opsc_metrics_one_u64(out, "opsc_maintenance_windows", "gauge",
                         "Enabled maintenance windows with an occurrence in the loaded horizon",
                         LOAD(mt->n_windows));
    opsc_metrics_one_u64(out, "opsc_maintenance_windows_active", "gauge",
                         "Maintenance windows in effect now", LOAD(mt->n_windows_active));
    opsc_metrics_one_u64(out, "opsc_maintenance_evaluations_total", "counter",
                         "Times every active alert was matched against the windows",
                         LOAD(mt->n_evaluations));
}
