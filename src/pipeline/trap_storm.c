/*
 * trap_storm alerts (see trap_storm.h).
 *
 * The alert's timing lives in the dedup entry itself (last_occurrence_at is
 * touched by every report), so nothing else has to be remembered per source,
 * and an alert loaded from the database after a restart resolves exactly like
 * one created in this process.
 */
#include "trap_storm.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/metrics.h"

#define LOG "pipeline"
#define RULE "trap_storm"
#define RESOLVE_PER_TICK 256 /* the rest waits for the next tick */

struct opsc_trap_storm_s {
    uint64_t rate, burst;
    int64_t quiet_us;
    opsc_trap_storm_emit_cb emit;
    void *arg;
    size_t known; /* trap_storm entries seen at the last scan or created since */
    int scanned;  /* the index was scanned once (alerts loaded at start) */
    atomic_uint_fast64_t n_created, n_repeated, n_resolved;
};

opsc_trap_storm_t *opsc_trap_storm_create(uint64_t rate, uint64_t burst, int64_t quiet_us,
                                          opsc_trap_storm_emit_cb emit, void *arg) {
    opsc_trap_storm_t *s = opsc_calloc(1, sizeof(*s));
    if (s) {
        s->rate = rate;
        s->burst = burst;
        s->quiet_us = quiet_us > 0 ? quiet_us : 60 * 1000000LL;
        s->emit = emit;
        s->arg = arg;
    }
    return s;
}

void opsc_trap_storm_destroy(opsc_trap_storm_t *s) {
    opsc_free(s);
}

/* v4-mapped IPv6 sources are shown as IPv4, as normalize does for device_ip. */
static void source_ip(const struct sockaddr *from, char out[OPSC_DEVICE_IP_MAX]) {
    const char *r = NULL;
    out[0] = '\0';
    if (from->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)from;
        r = inet_ntop(AF_INET, &in->sin_addr, out, OPSC_DEVICE_IP_MAX);
    } else if (from->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)from;
        r = IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)
                ? inet_ntop(AF_INET, (const unsigned char *)&in6->sin6_addr + 12, out,
                            OPSC_DEVICE_IP_MAX)
                : inet_ntop(AF_INET6, &in6->sin6_addr, out, OPSC_DEVICE_IP_MAX);
    }
    if (!r) {
        out[0] = '\0';
    }
}

static opsc_alert_t *storm_alert(const opsc_trap_storm_t *s, const opsc_normalizer_t *norm,
                                 const char *ip, const char *fp, uint64_t dropped, int64_t now_us) {
    opsc_alert_t *a = opsc_alert_new();
    if (!a) {
        return NULL;
    }
    const opsc_device_ref_t *dev = norm ? opsc_normalizer_device(norm, ip) : NULL;
    char title[300], said[128], custom[192], raw[320];
    snprintf(title, sizeof(title), "Trap storm from %s (rate limited)", dev ? dev->name : ip);
    snprintf(said, sizeof(said), "%s/" RULE, ip);
    snprintf(custom, sizeof(custom),
             "{\"dropped\": %llu, \"per_source_rate\": %llu, \"per_source_burst\": %llu}",
             (unsigned long long)dropped, (unsigned long long)s->rate,
             (unsigned long long)s->burst);
    snprintf(raw, sizeof(raw),
             "{\"source\": {\"address\": \"%s\"}, \"dropped_since_last_report\": %llu, "
             "\"per_source_rate\": %llu, \"per_source_burst\": %llu}",
             ip, (unsigned long long)dropped, (unsigned long long)s->rate,
             (unsigned long long)s->burst);
    opsc_uuid_generate(&a->id);
    a->severity = OPSC_SEV_WARNING;
    a->category = OPSC_CAT_NETWORK;
    a->status = OPSC_STATUS_ACTIVE;
    a->occurred_at_us = a->received_at_us = a->last_occurrence_at_us = now_us;
    a->occurrence_count = 1;
    memcpy(a->fingerprint, fp, sizeof(a->fingerprint));
    if (opsc_alert_set(&a->source_system, OPSC_NORMALIZE_SOURCE) != 0 ||
        opsc_alert_set(&a->source_alert_id, said) != 0 || opsc_alert_set(&a->device_ip, ip) != 0 ||
        opsc_alert_set(&a->device_name, dev ? dev->name : NULL) != 0 ||
        opsc_alert_set(&a->alert_type, OPSC_TRAP_STORM_TYPE) != 0 ||
        opsc_alert_set(&a->title, title) != 0 ||
        opsc_alert_set(&a->message,
                       "The per-source rate limit (snmp.per_source_rate) is dropping traps from "
                       "this device before decoding.") != 0 ||
        opsc_alert_set(&a->custom_fields_json, custom) != 0 ||
        opsc_alert_set(&a->raw_data_json, raw) != 0) {
        opsc_alert_free(a);
        return NULL;
    }
    return a;
}

void opsc_trap_storm_report(opsc_trap_storm_t *s, opsc_dedup_t *dedup,
                            const opsc_normalizer_t *norm, const struct sockaddr *from,
                            uint64_t dropped, int64_t now_us) {
    char ip[OPSC_DEVICE_IP_MAX];
    char fp[OPSC_FINGERPRINT_HEX];
    source_ip(from, ip);
    if (!ip[0]) {
        return;
    }
    opsc_normalize_fingerprint(OPSC_NORMALIZE_SOURCE, ip, OPSC_TRAP_STORM_TYPE, "", fp);
    opsc_dedup_entry_t *e = opsc_dedup_find(dedup, fp);
    if (e) {
        opsc_dedup_touch(dedup, e, now_us); /* one REPEAT per drained batch */
        atomic_fetch_add_explicit(&s->n_repeated, 1, memory_order_relaxed);
        return;
    }
    opsc_alert_t *a = storm_alert(s, norm, ip, fp, dropped, now_us);
    opsc_change_t *c = a ? opsc_change_new(OPSC_CHANGE_CREATE) : NULL;
    if (!c || !(e = opsc_dedup_add(dedup, fp, &a->id, a->status, 1, now_us, OPSC_TRAP_STORM_TYPE,
                                   ip, ""))) {
        opsc_change_free(c);
        opsc_alert_free(a);
        return; /* out of memory: the next report tries again */
    }
    c->id = a->id;
    c->alert = a;
    s->emit(c, s->arg);
    s->known++;
    atomic_fetch_add_explicit(&s->n_created, 1, memory_order_relaxed);
    opsc_log_warn(LOG, "trap storm from %s: rate limit dropping its traps (alert opened)", ip);
}

typedef struct {
    const opsc_trap_storm_t *s;
    int64_t now_us;
    size_t seen;
    size_t n;
    char fps[RESOLVE_PER_TICK][OPSC_FINGERPRINT_HEX];
} quiet_scan_t;

static void collect_quiet(opsc_dedup_entry_t *e, void *arg) {
    quiet_scan_t *q = arg;
    if (!e->alert_type || strcmp(e->alert_type, OPSC_TRAP_STORM_TYPE) != 0) {
        return;
    }
    q->seen++;
    /* is_down: the pipeline's down list points at it; leave such an alert alone. */
    if (e->is_down || q->now_us - e->last_occurrence_at_us < q->s->quiet_us ||
        q->n == RESOLVE_PER_TICK) {
        return;
    }
    memcpy(q->fps[q->n++], e->fingerprint, OPSC_FINGERPRINT_HEX);
}

static void resolve(opsc_trap_storm_t *s, opsc_dedup_t *dedup, opsc_dedup_entry_t *e,
                    int64_t now_us) {
    opsc_change_t *c = opsc_change_new(OPSC_CHANGE_STATUS);
    if (!c) {
        return; /* tried again on the next tick */
    }
    if (e->dirty) {
        /* A count changed in this batch must reach the store before the status. */
        opsc_change_t *r = opsc_change_new(OPSC_CHANGE_REPEAT);
        if (r) {
            r->id = e->id;
            r->occurrence_count = e->occurrence_count;
            r->last_occurrence_at_us = e->last_occurrence_at_us;
            s->emit(r, s->arg);
        }
    }
    c->id = e->id;
    c->old_status = e->status;
    c->new_status = OPSC_STATUS_RESOLVED;
    c->at_us = now_us;
    snprintf(c->actor, sizeof(c->actor), "system");
    snprintf(c->rule, sizeof(c->rule), RULE);
    snprintf(c->action, sizeof(c->action), "resolved");
    s->emit(c, s->arg);
    opsc_log_info(LOG, "trap storm from %s over: alert resolved", e->device ? e->device : "?");
    opsc_dedup_remove(dedup, e);
    atomic_fetch_add_explicit(&s->n_resolved, 1, memory_order_relaxed);
}

void opsc_trap_storm_tick(opsc_trap_storm_t *s, opsc_dedup_t *dedup, int64_t now_us) {
    if (s->scanned && s->known == 0) {
        return;
    }
    quiet_scan_t *q = opsc_malloc(sizeof(*q));
    if (!q) {
        return;
    }
    q->s = s;
    q->now_us = now_us;
    q->seen = q->n = 0;
    /* Collect first: removing while the index is being walked would skip entries. */
    opsc_dedup_each(dedup, collect_quiet, q);
    for (size_t i = 0; i < q->n; i++) {
        opsc_dedup_entry_t *e = opsc_dedup_find(dedup, q->fps[i]);
        if (e) {
            resolve(s, dedup, e, now_us);
        }
    }
    s->known = q->seen - q->n;
    s->scanned = 1;
    opsc_free(q);
}

#define LOAD(x) ((uint64_t)atomic_load_explicit(&(x), memory_order_relaxed))

void opsc_trap_storm_metrics(opsc_buf_t *out, const opsc_trap_storm_t *cs) {
    opsc_trap_storm_t *s = (opsc_trap_storm_t *)(uintptr_t)cs; /* atomics: loads only */
    opsc_metrics_family(out, "opsc_trap_storm_alerts_total", "counter",
                        "trap_storm alerts raised for sources the per-source rate limit cuts");
    opsc_metrics_sample_u64(out, "opsc_trap_storm_alerts_total", "outcome=\"created\"",
                            s ? LOAD(s->n_created) : 0);
    opsc_metrics_sample_u64(out, "opsc_trap_storm_alerts_total", "outcome=\"repeated\"",
                            s ? LOAD(s->n_repeated) : 0);
    opsc_metrics_sample_u64(out, "opsc_trap_storm_alerts_total", "outcome=\"resolved\"",
                            s ? LOAD(s->n_resolved) : 0);
}
