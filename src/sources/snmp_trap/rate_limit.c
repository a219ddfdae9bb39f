/*
 * Per-source token bucket (see include/opsc/rate_limit.h).
 *
 * The bucket is kept as one number per source, the "theoretical arrival
 * time" of the generic cell rate algorithm: every accepted datagram pushes
 * it `interval` = 1 s / rate into the future, and a datagram is refused when
 * that would put it more than burst * interval ahead of now. That is exactly
 * a token bucket of `burst` tokens refilled at `rate`, in integer
 * nanoseconds, with no refill arithmetic per datagram.
 *
 * The table is a fixed array of max_sources entries, found through an
 * open-addressing index of twice that size (linear probing, so a deletion
 * shifts its cluster back instead of leaving tombstones) and chained in a
 * least-recently-heard list: a new source in a full table takes the entry of
 * the one that has been quiet longest. A source that is being cut is heard
 * constantly, so it is never the one evicted.
 */
#include "opsc/rate_limit.h"

#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <uv.h>

#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/metrics.h"

#define NONE UINT32_MAX
#define RECENT_NS (60ull * 1000000000ull) /* "currently limited" on /metrics */

typedef struct entry_s {
    unsigned char addr[16]; /* IPv4 as v4-mapped IPv6 */
    uint64_t tat_ns;        /* when the bucket will be full again */
    uint64_t dropped;       /* since the source entered the table */
    uint64_t unreported;    /* dropped since the last storm report */
    uint64_t last_report_ns;
    uint64_t last_drop_ns; /* 0: never */
    uint32_t prev, next;   /* LRU list: head = most recently heard */
    uint32_t slot;         /* its position in the index */
} entry_t;

struct opsc_rate_limit_s {
    uint64_t interval_ns;  /* 1 s / rate */
    uint64_t tolerance_ns; /* burst * interval */
    entry_t *entries;
    uint32_t nentries, max;
    uint32_t *index; /* entry number + 1; 0 = empty */
    uint32_t mask;
    uint32_t head, tail;
    uint64_t dropped;
    uint64_t evictions;
};

static void addr_key(const struct sockaddr *sa, unsigned char out[16]) {
    memset(out, 0, 16);
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        memcpy(out, &s6->sin6_addr, 16);
        return;
    }
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &s4->sin_addr, 4);
    }
}

static uint32_t addr_hash(const unsigned char a[16]) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 16; i++) {
        h = (h ^ a[i]) * 1099511628211ull;
    }
    return (uint32_t)(h ^ (h >> 32));
}

int opsc_rate_limit_create(uint64_t rate, uint64_t burst, size_t max_sources,
                           opsc_rate_limit_t **out) {
    *out = NULL;
    if (rate == 0 || rate > 1000000000ull || burst == 0 || burst > 1000000000ull ||
        max_sources == 0 || max_sources > (1u << 24)) {
        return OPSC_ECONFIG;
    }
    opsc_rate_limit_t *r = opsc_calloc(1, sizeof(*r));
    if (!r) {
        return OPSC_ENOMEM;
    }
    r->interval_ns = 1000000000ull / rate;
    r->tolerance_ns = burst * r->interval_ns;
    r->max = (uint32_t)max_sources;
    uint32_t cap = 8;
    while (cap < 2 * r->max) {
        cap *= 2;
    }
    r->mask = cap - 1;
    r->head = r->tail = NONE;
    r->entries = opsc_calloc(r->max, sizeof(*r->entries));
    r->index = opsc_calloc(cap, sizeof(*r->index));
    if (!r->entries || !r->index) {
        opsc_rate_limit_destroy(r);
        return OPSC_ENOMEM;
    }
    *out = r;
    return 0;
}

void opsc_rate_limit_destroy(opsc_rate_limit_t *r) {
    if (!r) {
        return;
    }
    opsc_free(r->entries);
    opsc_free(r->index);
    opsc_free(r);
}

static void lru_unlink(opsc_rate_limit_t *r, uint32_t i) {
    entry_t *e = &r->entries[i];
    if (e->prev != NONE) {
        r->entries[e->prev].next = e->next;
    } else {
        r->head = e->next;
    }
    if (e->next != NONE) {
        r->entries[e->next].prev = e->prev;
    } else {
        r->tail = e->prev;
    }
}

static void lru_push_front(opsc_rate_limit_t *r, uint32_t i) {
    entry_t *e = &r->entries[i];
    e->prev = NONE;
    e->next = r->head;
    if (r->head != NONE) {
        r->entries[r->head].prev = i;
    }
    r->head = i;
    if (r->tail == NONE) {
        r->tail = i;
    }
}

static uint32_t find(const opsc_rate_limit_t *r, const unsigned char a[16]) {
    for (uint32_t s = addr_hash(a) & r->mask;; s = (s + 1) & r->mask) {
        uint32_t v = r->index[s];
        if (v == 0) {
            return NONE;
        }
        if (memcmp(r->entries[v - 1].addr, a, 16) == 0) {
            return v - 1;
        }
    }
}

/* Backward-shift deletion: keeps every probe chain unbroken without tombstones. */
static void index_remove(opsc_rate_limit_t *r, uint32_t slot) {
    uint32_t hole = slot;
    for (uint32_t s = (slot + 1) & r->mask; r->index[s] != 0; s = (s + 1) & r->mask) {
        uint32_t v = r->index[s];
        uint32_t home = addr_hash(r->entries[v - 1].addr) & r->mask;
        /* Move it into the hole unless its home lies cyclically in (hole, s]. */
        int stays = hole <= s ? (home > hole && home <= s) : (home > hole || home <= s);
        if (!stays) {
            r->index[hole] = v;
            r->entries[v - 1].slot = hole;
            hole = s;
        }
    }
    r->index[hole] = 0;
}

static uint32_t insert(opsc_rate_limit_t *r, const unsigned char a[16], uint64_t now_ns) {
    uint32_t i;
    if (r->nentries < r->max) {
        i = r->nentries++;
    } else {
        i = r->tail;
        lru_unlink(r, i);
        index_remove(r, r->entries[i].slot);
        r->evictions++;
    }
    entry_t *e = &r->entries[i];
    memset(e, 0, sizeof(*e));
    memcpy(e->addr, a, 16);
    e->tat_ns = now_ns;
    uint32_t s = addr_hash(a) & r->mask;
    while (r->index[s] != 0) {
        s = (s + 1) & r->mask;
    }
    r->index[s] = i + 1;
    e->slot = s;
    lru_push_front(r, i);
    return i;
}

opsc_rate_verdict_t opsc_rate_limit_check(opsc_rate_limit_t *r, const struct sockaddr *from,
                                          uint64_t now_ns, uint64_t *report_dropped) {
    unsigned char a[16];
    addr_key(from, a);
    uint32_t i = find(r, a);
    if (i == NONE) {
        i = insert(r, a, now_ns);
    } else if (r->head != i) {
        lru_unlink(r, i);
        lru_push_front(r, i);
    }
    entry_t *e = &r->entries[i];
    uint64_t tat = e->tat_ns > now_ns ? e->tat_ns : now_ns;
    if (tat + r->interval_ns - now_ns <= r->tolerance_ns) {
        e->tat_ns = tat + r->interval_ns;
        return OPSC_RATE_PASS;
    }
    r->dropped++;
    e->dropped++;
    e->unreported++;
    e->last_drop_ns = now_ns;
    if (e->last_report_ns != 0 && now_ns - e->last_report_ns < OPSC_RATE_LIMIT_REPORT_NS) {
        return OPSC_RATE_DROP;
    }
    e->last_report_ns = now_ns ? now_ns : 1;
    *report_dropped = e->unreported;
    e->unreported = 0;
    return OPSC_RATE_DROP_REPORT;
}

uint64_t opsc_rate_limit_dropped(const opsc_rate_limit_t *r) {
    return r ? r->dropped : 0;
}

size_t opsc_rate_limit_sources(const opsc_rate_limit_t *r) {
    return r ? r->nentries : 0;
}

uint64_t opsc_rate_limit_evictions(const opsc_rate_limit_t *r) {
    return r ? r->evictions : 0;
}

uint64_t opsc_rate_limit_source_dropped(const opsc_rate_limit_t *r, const struct sockaddr *from) {
    unsigned char a[16];
    addr_key(from, a);
    uint32_t i = find(r, a);
    return i == NONE ? 0 : r->entries[i].dropped;
}

static void format_addr(const unsigned char a[16], char *out, size_t outlen) {
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char tmp[INET6_ADDRSTRLEN];
    const char *s = memcmp(a, mapped, 12) == 0 ? inet_ntop(AF_INET, a + 12, tmp, sizeof(tmp))
                                               : inet_ntop(AF_INET6, a, tmp, sizeof(tmp));
    snprintf(out, outlen, "%s", s ? s : "?");
}

void opsc_rate_limit_format_source(const struct sockaddr *from, char *out, size_t outlen) {
    unsigned char a[16];
    addr_key(from, a);
    format_addr(a, out, outlen);
}

void opsc_rate_limit_metrics(opsc_buf_t *out, void *arg) {
    opsc_rate_limit_t *r = arg;
    opsc_metrics_one_u64(out, "opsc_trap_rate_limited_total", "counter",
                         "Datagrams dropped by the per-source rate limit (snmp.per_source_rate), "
                         "before decoding",
                         opsc_rate_limit_dropped(r));
    opsc_metrics_one_u64(
        out, "opsc_trap_rate_limit_sources", "gauge",
        "Sources tracked by the per-source rate limit (at most snmp.per_source_max)",
        opsc_rate_limit_sources(r));
    opsc_metrics_one_u64(out, "opsc_trap_rate_limit_evictions_total", "counter",
                         "Sources forgotten to make room for new ones (least recently heard first)",
                         opsc_rate_limit_evictions(r));
    opsc_metrics_family(out, "opsc_trap_rate_limited_by_source_total", "counter",
                        "Datagrams dropped by the per-source rate limit, for the sources that "
                        "dropped most among those cut in the last minute (at most 10)");
    if (!r) {
        return;
    }
    /* Scrape time only: one pass over the table, keeping the top few by insertion. */
    uint32_t top[OPSC_RATE_LIMIT_TOP];
    size_t ntop = 0;
    uint64_t now = uv_hrtime();
    for (uint32_t i = 0; i < r->nentries; i++) {
        const entry_t *e = &r->entries[i];
        if (e->last_drop_ns == 0 || now - e->last_drop_ns > RECENT_NS) {
            continue;
        }
        size_t k = ntop < OPSC_RATE_LIMIT_TOP ? ntop++ : OPSC_RATE_LIMIT_TOP;
        if (k == OPSC_RATE_LIMIT_TOP) {
            if (r->entries[top[k - 1]].dropped >= e->dropped) {
                continue;
            }
            k--;
        }
        while (k > 0 && r->entries[top[k - 1]].dropped < e->dropped) {
            top[k] = top[k - 1];
            k--;
        }
        top[k] = i;
    }
    for (size_t k = 0; k < ntop; k++) {
        char src[INET6_ADDRSTRLEN];
        char labels[INET6_ADDRSTRLEN + 16];
        format_addr(r->entries[top[k]].addr, src, sizeof(src));
        snprintf(labels, sizeof(labels), "source=\"%s\"", src);
        opsc_metrics_sample_u64(out, "opsc_trap_rate_limited_by_source_total", labels,
                                r->entries[top[k]].dropped);
    }
}
