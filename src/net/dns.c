/*
 * Reverse DNS through c-ares on the loop (see include/opsc/dns.h).
 *
 * c-ares tells us which sockets it wants watched (sock_state_cb); each gets a
 * uv_poll_t, and one uv_timer_t drives its retransmissions and timeouts
 * (ares_timeout after every call into it). The cache is a chained hash table
 * of addresses plus an LRU list of finished entries; an entry being looked up
 * is pinned (not in the LRU) and holds the callbacks waiting for it.
 */
#include "opsc/dns.h"

#include <ares.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/metrics.h"

#define LOG "dns"
#define IPTEXT 46

typedef struct waiter_s {
    struct waiter_s *next;
    opsc_dns_cb cb;
    void *arg;
} waiter_t;

typedef struct entry_s {
    struct entry_s *hnext;            /* hash chain */
    struct entry_s *lprev, *lnext;    /* LRU (finished entries only) */
    char ip[IPTEXT];
    char *name;                       /* NULL: no name */
    uint64_t expires_ms;              /* uv_now */
    int pending;
    waiter_t *waiters;
    opsc_dns_t *owner;
} entry_t;

typedef struct dpoll_s {
    uv_poll_t h;
    struct dpoll_s *next;
    ares_socket_t fd;
    opsc_dns_t *owner;
} dpoll_t;

enum { R_NAME = 0, R_NONAME, R_TIMEOUT, R_ERROR, R_COUNT };
static const char *const result_names[R_COUNT] = {"name", "no_name", "timeout", "error"};

struct opsc_dns_s {
    uv_loop_t *loop;
    ares_channel channel;
    uv_timer_t timer;
    dpoll_t *polls;
    entry_t **buckets;
    size_t nbuckets;
    entry_t *lru_head, *lru_tail; /* head = most recent */
    size_t count, inflight;
    opsc_dns_options_t o;
    int closing;
    int handles; /* open uv handles while closing */
    void (*done)(void *);
    void *done_arg;
    uint64_t hits, misses, refused, evicted;
    uint64_t results[R_COUNT];
};

static uv_once_t ares_once = UV_ONCE_INIT;
static int ares_init_rc;

static void ares_lib_init(void) {
    ares_init_rc = ares_library_init(ARES_LIB_INIT_ALL);
}

/* ---- cache ---------------------------------------------------------------------------------- */

static size_t hash_ip(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    return (size_t)h;
}

static entry_t **slot_of(opsc_dns_t *d, const char *ip) {
    entry_t **pp = &d->buckets[hash_ip(ip) & (d->nbuckets - 1)];
    while (*pp && strcmp((*pp)->ip, ip) != 0) {
        pp = &(*pp)->hnext;
    }
    return pp;
}

static void lru_unlink(opsc_dns_t *d, entry_t *e) {
    if (e->lprev) {
        e->lprev->lnext = e->lnext;
    } else if (d->lru_head == e) {
        d->lru_head = e->lnext;
    }
    if (e->lnext) {
        e->lnext->lprev = e->lprev;
    } else if (d->lru_tail == e) {
        d->lru_tail = e->lprev;
    }
    e->lprev = e->lnext = NULL;
}

static void lru_push(opsc_dns_t *d, entry_t *e) {
    e->lprev = NULL;
    e->lnext = d->lru_head;
    if (d->lru_head) {
        d->lru_head->lprev = e;
    }
    d->lru_head = e;
    if (!d->lru_tail) {
        d->lru_tail = e;
    }
}

static void entry_drop(opsc_dns_t *d, entry_t *e) {
    entry_t **pp = slot_of(d, e->ip);
    if (*pp == e) {
        *pp = e->hnext;
    }
    lru_unlink(d, e);
    opsc_free(e->name);
    opsc_free(e);
    d->count--;
}

/* Room for one more entry: the least recently used finished one goes (pending ones are pinned). */
static int make_room(opsc_dns_t *d) {
    if (d->count < d->o.cache_max) {
        return 0;
    }
    if (!d->lru_tail) {
        return -1;
    }
    entry_drop(d, d->lru_tail);
    d->evicted++;
    return 0;
}

/* ---- c-ares plumbing ------------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

static void rearm(opsc_dns_t *d) {
    if (d->closing) {
        return;
    }
    struct timeval tv;
    struct timeval *tvp = ares_timeout(d->channel, NULL, &tv);
    if (!tvp) {
        uv_timer_stop(&d->timer);
        return;
    }
    uint64_t ms = (uint64_t)tvp->tv_sec * 1000u + (uint64_t)tvp->tv_usec / 1000u + 1u;
    uv_timer_start(&d->timer, on_timer, ms, 0);
}

static void on_timer(uv_timer_t *t) {
    opsc_dns_t *d = t->data;
    ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearm(d);
}

static void on_poll(uv_poll_t *h, int status, int events) {
    dpoll_t *p = h->data;
    opsc_dns_t *d = p->owner;
    ares_socket_t r = ARES_SOCKET_BAD, w = ARES_SOCKET_BAD;
    if (status < 0 || (events & UV_READABLE)) {
        r = p->fd;
    }
    if (status < 0 || (events & UV_WRITABLE)) {
        w = p->fd;
    }
    ares_process_fd(d->channel, r, w); /* may close this poll through sock_state_cb */
    rearm(d);
}

/* Every handle (the timer, each poll) counts in d->handles; the last close frees d. */
static void handle_gone(opsc_dns_t *d) {
    if (--d->handles == 0 && d->closing) {
        void (*done)(void *) = d->done;
        void *arg = d->done_arg;
        opsc_free(d->buckets);
        opsc_free(d);
        if (done) {
            done(arg);
        }
    }
}

static void poll_closed(uv_handle_t *h) {
    dpoll_t *p = h->data;
    opsc_dns_t *d = p->owner;
    opsc_free(p);
    handle_gone(d);
}

static void sock_state(void *data, ares_socket_t fd, int readable, int writable) {
    opsc_dns_t *d = data;
    dpoll_t **pp = &d->polls;
    while (*pp && (*pp)->fd != fd) {
        pp = &(*pp)->next;
    }
    dpoll_t *p = *pp;
    if (!readable && !writable) {
        if (p) {
            *pp = p->next;
            uv_poll_stop(&p->h); /* before c-ares closes the descriptor */
            uv_close((uv_handle_t *)&p->h, poll_closed);
        }
        return;
    }
    if (!p) {
        p = opsc_calloc(1, sizeof(*p));
        if (!p || uv_poll_init_socket(d->loop, &p->h, fd) != 0) {
            opsc_free(p);
            opsc_log_err(LOG, "cannot watch a resolver socket: its queries will time out");
            return;
        }
        d->handles++;
        p->fd = fd;
        p->owner = d;
        p->h.data = p;
        p->next = d->polls;
        d->polls = p;
    }
    uv_poll_start(&p->h, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), on_poll);
}

static void answer(opsc_dns_t *d, entry_t *e, const char *name, int result) {
    d->results[result]++;
    d->inflight--;
    e->pending = 0;
    waiter_t *w = e->waiters;
    e->waiters = NULL;
    char ip[IPTEXT];
    memcpy(ip, e->ip, sizeof(ip));
    const char *n = NULL;
    unsigned ttl = d->o.negative_ttl_s;
    if (d->closing) {
        entry_drop(d, e); /* cancelled: nothing is cached any more */
    } else {
        if (name) {
            e->name = opsc_strdup(name); /* out of memory: cached as no name */
        }
        ttl = e->name ? d->o.ttl_s : d->o.negative_ttl_s;
        e->expires_ms = uv_now(d->loop) + (uint64_t)ttl * 1000u;
        lru_push(d, e);
        n = e->name;
    }
    while (w) {
        waiter_t *next = w->next;
        w->cb(ip, n, ttl, w->arg);
        opsc_free(w);
        w = next;
    }
}

static void on_host(void *arg, int status, int timeouts, struct hostent *host) {
    (void)timeouts;
    entry_t *e = arg;
    opsc_dns_t *d = e->owner;
    const char *name = NULL;
    int result = R_ERROR;
    if (status == ARES_SUCCESS && host && host->h_name && host->h_name[0]) {
        name = host->h_name;
        result = R_NAME;
    } else if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
        result = R_NONAME;
    } else if (status == ARES_ETIMEOUT) {
        result = R_TIMEOUT;
    } else if (status != ARES_EDESTRUCTION && status != ARES_ECANCELLED) {
        opsc_log_debug(LOG, "reverse lookup of %s failed: %s", e->ip, ares_strerror(status));
    }
    answer(d, e, name, result);
}

/* ---- API ------------------------------------------------------------------------------------- */

int opsc_dns_create(uv_loop_t *loop, const opsc_dns_options_t *opts, opsc_dns_t **out,
                    char *errbuf, size_t errlen) {
    uv_once(&ares_once, ares_lib_init);
    if (ares_init_rc != ARES_SUCCESS) {
        opsc_errbuf_printf(errbuf, errlen, "dns: c-ares: %s", ares_strerror(ares_init_rc));
        return OPSC_ECONFIG;
    }
    opsc_dns_t *d = opsc_calloc(1, sizeof(*d));
    if (!d) {
        return OPSC_ENOMEM;
    }
    d->loop = loop;
    if (opts) {
        d->o = *opts;
    }
    d->o.timeout_ms = d->o.timeout_ms > 0 ? d->o.timeout_ms : 2000;
    d->o.tries = d->o.tries > 0 ? d->o.tries : 2;
    d->o.ttl_s = d->o.ttl_s ? d->o.ttl_s : 300;
    d->o.negative_ttl_s = d->o.negative_ttl_s ? d->o.negative_ttl_s : 60;
    d->o.cache_max = d->o.cache_max ? d->o.cache_max : 65536;
    d->o.max_inflight = d->o.max_inflight ? d->o.max_inflight : 256;
    d->o.servers = NULL; /* not kept */
    for (d->nbuckets = 64; d->nbuckets < d->o.cache_max; d->nbuckets <<= 1) {
    }
    d->buckets = opsc_calloc(d->nbuckets, sizeof(*d->buckets));
    if (!d->buckets) {
        opsc_free(d);
        return OPSC_ENOMEM;
    }
    struct ares_options ao;
    memset(&ao, 0, sizeof(ao));
    ao.sock_state_cb = sock_state;
    ao.sock_state_cb_data = d;
    ao.timeout = d->o.timeout_ms;
    ao.tries = d->o.tries;
    int rc = ares_init_options(&d->channel, &ao,
                               ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) {
        opsc_errbuf_printf(errbuf, errlen, "dns: cannot initialise the resolver: %s",
                           ares_strerror(rc));
        opsc_free(d->buckets);
        opsc_free(d);
        return OPSC_ECONFIG;
    }
    if (opts && opts->servers && opts->servers[0]) {
        rc = ares_set_servers_ports_csv(d->channel, opts->servers);
        if (rc != ARES_SUCCESS) {
            opsc_errbuf_printf(errbuf, errlen, "dns.servers \"%s\": %s", opts->servers,
                               ares_strerror(rc));
            ares_destroy(d->channel);
            opsc_free(d->buckets);
            opsc_free(d);
            return OPSC_ECONFIG;
        }
    }
    uv_timer_init(loop, &d->timer);
    d->timer.data = d;
    d->handles = 1;
    *out = d;
    return 0;
}

int opsc_dns_reverse(opsc_dns_t *d, const char *ip, const char **name, opsc_dns_cb cb, void *arg) {
    if (d->closing) {
        return OPSC_ESHUTDOWN;
    }
    unsigned char addr[16];
    int family = AF_INET;
    size_t alen = 4;
    if (inet_pton(AF_INET, ip, addr) != 1) {
        family = AF_INET6;
        alen = 16;
        if (inet_pton(AF_INET6, ip, addr) != 1) {
            return UV_EINVAL;
        }
    }
    char key[IPTEXT];
    inet_ntop(family, addr, key, sizeof(key)); /* one spelling per address */
    entry_t **pp = slot_of(d, key);
    entry_t *e = *pp;
    if (e && !e->pending && e->expires_ms <= uv_now(d->loop)) {
        entry_drop(d, e); /* stale */
        e = NULL;
        pp = slot_of(d, key);
    }
    if (e && !e->pending) {
        d->hits++;
        lru_unlink(d, e);
        lru_push(d, e);
        *name = e->name;
        return 1;
    }
    waiter_t *w = opsc_malloc(sizeof(*w));
    if (!w) {
        return OPSC_ENOMEM;
    }
    w->cb = cb;
    w->arg = arg;
    if (e) { /* already being looked up */
        w->next = e->waiters;
        e->waiters = w;
        return 0;
    }
    if (d->inflight >= d->o.max_inflight || make_room(d) != 0) {
        d->refused++;
        opsc_free(w);
        return OPSC_EQUEUE_FULL;
    }
    pp = slot_of(d, key); /* make_room may have changed the chain */
    e = opsc_calloc(1, sizeof(*e));
    if (!e) {
        opsc_free(w);
        return OPSC_ENOMEM;
    }
    memcpy(e->ip, key, sizeof(key));
    e->owner = d;
    e->pending = 1;
    w->next = NULL;
    e->waiters = w;
    *pp = e;
    d->count++;
    d->inflight++;
    d->misses++;
    ares_gethostbyaddr(d->channel, addr, (int)alen, family, on_host, e);
    rearm(d);
    return 0;
}

static void timer_closed(uv_handle_t *h) {
    handle_gone(h->data);
}

void opsc_dns_close(opsc_dns_t *d, void (*done)(void *arg), void *arg) {
    d->closing = 1;
    d->done = done;
    d->done_arg = arg;
    /* Cancels every query (callbacks with ARES_EDESTRUCTION) and closes its sockets. */
    ares_destroy(d->channel);
    while (d->lru_head) {
        entry_drop(d, d->lru_head);
    }
    uv_close((uv_handle_t *)&d->timer, timer_closed);
}

void opsc_dns_metrics(opsc_buf_t *out, void *arg) {
    opsc_dns_t *d = arg;
    char labels[48];
    opsc_metrics_family(out, "opsc_dns_lookups_total", "counter",
                        "Reverse lookups sent to the resolver, by result");
    for (int i = 0; i < R_COUNT; i++) {
        snprintf(labels, sizeof(labels), "result=\"%s\"", result_names[i]);
        opsc_metrics_sample_u64(out, "opsc_dns_lookups_total", labels, d->results[i]);
    }
    opsc_metrics_family(out, "opsc_dns_cache_total", "counter",
                        "Reverse lookups answered from the cache (hit) or sent (miss)");
    opsc_metrics_sample_u64(out, "opsc_dns_cache_total", "outcome=\"hit\"", d->hits);
    opsc_metrics_sample_u64(out, "opsc_dns_cache_total", "outcome=\"miss\"", d->misses);
    opsc_metrics_sample_u64(out, "opsc_dns_cache_total", "outcome=\"refused\"", d->refused);
    opsc_metrics_sample_u64(out, "opsc_dns_cache_total", "outcome=\"evicted\"", d->evicted);
    opsc_metrics_one_u64(out, "opsc_dns_cache_entries", "gauge", "Addresses in the cache",
                         d->count);
    opsc_metrics_one_u64(out, "opsc_dns_inflight", "gauge", "Reverse lookups in flight",
                         d->inflight);
}
