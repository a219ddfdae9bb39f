/*
 * Flapping, expiry and ITIL priority helpers for the pipeline thread (see
 * correlate_int.h and docs/architecture.md "Flapping, expiry, priority").
 *
 * The flap tracker must outlive the dedup entry (a resolved alert leaves the
 * index, and flapping is exactly about alerts that keep leaving it), so it is
 * its own small table: chained hash on the fingerprint, an LRU list for
 * eviction (bounded: a storm of distinct one-off fingerprints costs at most
 * `max_recs` records), and a list of the flapping records, which are few, for
 * the settle check. A flapping record is never evicted: its alert carries the
 * mark until the record settles it.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "correlate_int.h"
#include "opsc/buf.h"
#include "opsc/config.h"
#include "opsc/error.h"
#include "opsc/pipeline.h"

/* ---- ITIL priority -------------------------------------------------------------------------- */

opsc_level_t opsc__urgency_of(opsc_severity_t sev) {
    switch (sev) {
    case OPSC_SEV_CRITICAL:
    case OPSC_SEV_MAJOR:
        return OPSC_LEVEL_HIGH;
    case OPSC_SEV_MINOR:
    case OPSC_SEV_WARNING:
        return OPSC_LEVEL_MEDIUM;
    default:
        return OPSC_LEVEL_LOW;
    }
}

opsc_level_t opsc__impact_of(const char *device_impact, size_t ndependents) {
    if (device_impact) {
        if (strcasecmp(device_impact, "high") == 0) {
            return OPSC_LEVEL_HIGH;
        }
        if (strcasecmp(device_impact, "medium") == 0) {
            return OPSC_LEVEL_MEDIUM;
        }
        if (strcasecmp(device_impact, "low") == 0) {
            return OPSC_LEVEL_LOW;
        }
        /* Anything else is a typo in reference data: fall back to the graph. */
    }
    if (ndependents >= OPSC_IMPACT_HIGH_DEPENDENTS) {
        return OPSC_LEVEL_HIGH;
    }
    return ndependents >= OPSC_IMPACT_MEDIUM_DEPENDENTS ? OPSC_LEVEL_MEDIUM : OPSC_LEVEL_LOW;
}

int opsc__priority_of(opsc_level_t impact, opsc_level_t urgency) {
    if (impact == OPSC_LEVEL_NONE || urgency == OPSC_LEVEL_NONE) {
        return 0;
    }
    /* HIGH=1, MEDIUM=2, LOW=3: the standard matrix is their sum minus one. */
    return (int)impact + (int)urgency - 1;
}

/* ---- flap tracker --------------------------------------------------------------------------- */

struct opsc_flap_tracker_s {
    uint32_t threshold;
    int64_t window_us;
    size_t max_recs;
    opsc_flap_rec_t **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    size_t nflapping;
    uint64_t evicted;
    opsc_flap_rec_t *lru_head, *lru_tail; /* head: most recent */
    opsc_flap_rec_t *fl_head;
};

static size_t rec_size(const opsc_flap_tracker_t *t) {
    return sizeof(opsc_flap_rec_t) + (t->threshold + 1) * sizeof(int64_t);
}

static uint64_t fp_hash(const char *fp) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 16 && fp[i]; i++) {
        h = (h ^ (unsigned char)fp[i]) * 1099511628211ull;
    }
    return h;
}

opsc_flap_tracker_t *opsc__flap_create(uint32_t threshold, int64_t window_us, size_t max_recs) {
    if (threshold == 0 || threshold > OPSC_FLAP_THRESHOLD_MAX || window_us <= 0 || max_recs == 0) {
        return NULL;
    }
    opsc_flap_tracker_t *t = opsc_calloc(1, sizeof(*t));
    if (!t) {
        return NULL;
    }
    t->threshold = threshold;
    t->window_us = window_us;
    t->max_recs = max_recs;
    t->nbuckets = 64;
    while (t->nbuckets < max_recs && t->nbuckets < ((size_t)1 << 24)) {
        t->nbuckets <<= 1;
    }
    t->buckets = opsc_calloc(t->nbuckets, sizeof(*t->buckets));
    if (!t->buckets) {
        opsc_free(t);
        return NULL;
    }
    return t;
}

void opsc__flap_destroy(opsc_flap_tracker_t *t) {
    if (!t) {
        return;
    }
    opsc_flap_rec_t *r = t->lru_head;
    while (r) {
        opsc_flap_rec_t *n = r->lru_next;
        opsc_free(r);
        r = n;
    }
    opsc_free(t->buckets);
    opsc_free(t);
}

opsc_flap_rec_t *opsc__flap_find(opsc_flap_tracker_t *t, const char *fingerprint) {
    for (opsc_flap_rec_t *r = t->buckets[fp_hash(fingerprint) & (t->nbuckets - 1)]; r;
         r = r->hnext) {
        if (strcmp(r->fingerprint, fingerprint) == 0) {
            return r;
        }
    }
    return NULL;
}

static void lru_unlink(opsc_flap_tracker_t *t, opsc_flap_rec_t *r) {
    if (r->lru_prev) {
        r->lru_prev->lru_next = r->lru_next;
    } else {
        t->lru_head = r->lru_next;
    }
    if (r->lru_next) {
        r->lru_next->lru_prev = r->lru_prev;
    } else {
        t->lru_tail = r->lru_prev;
    }
    r->lru_prev = r->lru_next = NULL;
}

static void lru_push(opsc_flap_tracker_t *t, opsc_flap_rec_t *r) {
    r->lru_prev = NULL;
    r->lru_next = t->lru_head;
    if (t->lru_head) {
        t->lru_head->lru_prev = r;
    } else {
        t->lru_tail = r;
    }
    t->lru_head = r;
}

static void rec_remove(opsc_flap_tracker_t *t, opsc_flap_rec_t *r) {
    for (opsc_flap_rec_t **pp = &t->buckets[fp_hash(r->fingerprint) & (t->nbuckets - 1)]; *pp;
         pp = &(*pp)->hnext) {
        if (*pp == r) {
            *pp = r->hnext;
            break;
        }
    }
    lru_unlink(t, r);
    t->count--;
    opsc_free(r);
}

/* The stalest record that does not flap, looking at most a few from the tail. */
static opsc_flap_rec_t *victim(opsc_flap_tracker_t *t) {
    int looked = 0;
    for (opsc_flap_rec_t *r = t->lru_tail; r && looked < 64; r = r->lru_prev, looked++) {
        if (!r->flapping) {
            return r;
        }
    }
    return NULL;
}

opsc_flap_rec_t *opsc__flap_get(opsc_flap_tracker_t *t, const char *fingerprint) {
    opsc_flap_rec_t *r = opsc__flap_find(t, fingerprint);
    if (r) {
        lru_unlink(t, r);
        lru_push(t, r);
        return r;
    }
    if (strlen(fingerprint) >= sizeof(r->fingerprint)) {
        return NULL;
    }
    if (t->count >= t->max_recs) {
        opsc_flap_rec_t *v = victim(t);
        if (!v) {
            return NULL;
        }
        rec_remove(t, v);
        t->evicted++;
    }
    r = opsc_calloc(1, rec_size(t));
    if (!r) {
        return NULL;
    }
    memcpy(r->fingerprint, fingerprint, strlen(fingerprint) + 1);
    size_t b = fp_hash(fingerprint) & (t->nbuckets - 1);
    r->hnext = t->buckets[b];
    t->buckets[b] = r;
    lru_push(t, r);
    t->count++;
    return r;
}

void opsc__flap_note_resolve(opsc_flap_tracker_t *t, opsc_flap_rec_t *r, const opsc_uuid_t *id,
                             uint32_t count, int64_t now_us) {
    uint32_t cap = t->threshold + 1;
    r->times[(r->head + r->ntimes) % cap] = now_us;
    if (r->ntimes < cap) {
        r->ntimes++;
    } else {
        r->head = (uint8_t)((r->head + 1) % cap); /* the oldest falls out */
    }
    r->last_id = *id;
    r->last_count = count;
    r->last_transition_us = now_us;
}

int opsc__flap_exceeded(const opsc_flap_tracker_t *t, const opsc_flap_rec_t *r, int64_t now_us) {
    uint32_t cap = t->threshold + 1;
    uint32_t in_window = 0;
    for (uint32_t i = 0; i < r->ntimes; i++) {
        if (now_us - r->times[(r->head + i) % cap] <= t->window_us) {
            in_window++;
        }
    }
    return in_window > t->threshold;
}

void opsc__flap_set_flapping(opsc_flap_tracker_t *t, opsc_flap_rec_t *r, int on, int64_t now_us) {
    if (!!on == !!r->flapping) {
        return;
    }
    r->flapping = !!on;
    if (on) {
        r->flapping_since_us = now_us;
        r->last_transition_us = now_us;
        r->fl_prev = NULL;
        r->fl_next = t->fl_head;
        if (t->fl_head) {
            t->fl_head->fl_prev = r;
        }
        t->fl_head = r;
        t->nflapping++;
        return;
    }
    if (r->fl_prev) {
        r->fl_prev->fl_next = r->fl_next;
    } else {
        t->fl_head = r->fl_next;
    }
    if (r->fl_next) {
        r->fl_next->fl_prev = r->fl_prev;
    }
    r->fl_prev = r->fl_next = NULL;
    t->nflapping--;
    /* A settled fingerprint starts counting afresh. */
    r->ntimes = 0;
    r->head = 0;
    r->flap_count = 0;
    r->last_clear = 0;
}

size_t opsc__flap_each_settled(opsc_flap_tracker_t *t, int64_t now_us,
                               void (*cb)(opsc_flap_rec_t *r, void *arg), void *arg) {
    size_t n = 0;
    opsc_flap_rec_t *r = t->fl_head;
    while (r) {
        opsc_flap_rec_t *next = r->fl_next; /* cb may unmark r */
        if (now_us - r->last_transition_us >= t->window_us) {
            cb(r, arg);
            n++;
        }
        r = next;
    }
    return n;
}

size_t opsc__flap_count(const opsc_flap_tracker_t *t) {
    return t ? t->count : 0;
}

size_t opsc__flap_flapping(const opsc_flap_tracker_t *t) {
    return t ? t->nflapping : 0;
}

uint64_t opsc__flap_evicted(const opsc_flap_tracker_t *t) {
    return t ? t->evicted : 0;
}

size_t opsc__flap_memory(const opsc_flap_tracker_t *t) {
    return t ? sizeof(*t) + t->nbuckets * sizeof(*t->buckets) + t->count * rec_size(t) : 0;
}

int64_t opsc__flap_window_us(const opsc_flap_tracker_t *t) {
    return t ? t->window_us : 0;
}

/* ---- mark / unmark ----------------------------------------------------------------------------
 */

static opsc_change_t *update_new(const opsc_uuid_t *id, int64_t now_us) {
    opsc_change_t *c = opsc_change_new(OPSC_CHANGE_UPDATE);
    if (c) {
        c->id = *id;
        c->at_us = now_us;
        snprintf(c->actor, sizeof(c->actor), "system");
    }
    return c;
}

static opsc_change_t *with_patch(opsc_change_t *c, const char *patch) {
    if (c && opsc_alert_update_custom(c->upd, patch) != 0) {
        opsc_change_free(c);
        return NULL;
    }
    return c;
}

opsc_change_t *opsc__flap_mark_change(const opsc_uuid_t *id, uint32_t flap_count, int64_t since_us,
                                      int64_t now_us) {
    opsc_change_t *c = update_new(id, now_us);
    char since[32], patch[160];
    opsc_time_format(since_us, since);
    snprintf(patch, sizeof(patch),
             "{\"flapping\":true,\"flap_count\":%u,\"flapping_since\":\"%s\"}", flap_count, since);
    if (c && opsc_alert_update_tag(c->upd, "flapping", 1) != 0) {
        opsc_change_free(c);
        return NULL;
    }
    return with_patch(c, patch);
}

opsc_change_t *opsc__flap_count_change(const opsc_uuid_t *id, uint32_t flap_count, int64_t now_us) {
    char patch[64];
    snprintf(patch, sizeof(patch), "{\"flap_count\":%u}", flap_count);
    return with_patch(update_new(id, now_us), patch);
}

opsc_change_t *opsc__flap_unmark_change(const opsc_uuid_t *id, uint32_t flap_count,
                                        int64_t now_us) {
    opsc_change_t *c = update_new(id, now_us);
    char until[32], patch[128];
    opsc_time_format(now_us, until);
    snprintf(patch, sizeof(patch),
             "{\"flapping\":false,\"flap_count\":%u,\"flapping_until\":\"%s\"}", flap_count, until);
    if (c && opsc_alert_update_tag(c->upd, "flapping", 0) != 0) {
        opsc_change_free(c);
        return NULL;
    }
    return with_patch(c, patch);
}

/* ---- configuration ------------------------------------------------------------------------------
 */

int opsc_pipeline_parse_expiry_overrides(const char *const *items, size_t n,
                                         opsc_pipeline_options_t *po, char *errbuf, size_t errlen) {
    /* The same duration syntax and bounds as correlation.expire_after. */
    const opsc_config_key_t *key = opsc_config_find_key("correlation.expire_after");
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(items[i], '=');
        char cat[32];
        size_t clen = eq ? (size_t)(eq - items[i]) : 0;
        opsc_category_t c;
        if (!eq || clen == 0 || clen >= sizeof(cat)) {
            opsc_errbuf_printf(errbuf, errlen,
                               "correlation.expire_after_by_category: expected CATEGORY=DURATION, "
                               "got \"%s\"",
                               items[i]);
            return OPSC_ECONFIG;
        }
        memcpy(cat, items[i], clen);
        cat[clen] = '\0';
        if (opsc_category_parse(cat, &c) != 0) {
            opsc_errbuf_printf(errbuf, errlen,
                               "correlation.expire_after_by_category: unknown category \"%s\"",
                               cat);
            return OPSC_ECONFIG;
        }
        int64_t ms = 0;
        char why[256];
        if (!key || opsc_config_parse_value(key, eq + 1, &ms, why, sizeof(why)) != 0) {
            opsc_errbuf_printf(errbuf, errlen, "correlation.expire_after_by_category: %s: %s", cat,
                               key ? why : "no duration key");
            return OPSC_ECONFIG;
        }
        po->expire_by_category_ms[c] = ms;
        po->expire_by_category_set[c] = 1;
    }
    return 0;
}
