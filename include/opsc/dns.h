#ifndef OPSC_DNS_H
#define OPSC_DNS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "opsc/buf.h"

/*
 * Reverse DNS (PTR) lookups through c-ares on the loop thread, with a bounded
 * cache. Nothing here blocks: c-ares' sockets are watched with uv_poll and
 * its timeouts with one uv_timer.
 *
 * The answers are cached for `ttl_s` seconds (c-ares' PTR interface does not
 * report the record's own TTL), failures ("no name") for `negative_ttl_s`, so
 * a device without a PTR record costs one query per negative TTL, not one per
 * alert. Concurrent lookups of the same address share one query. At most
 * `max_inflight` queries run at once; beyond that a lookup is refused at once
 * (OPSC_EQUEUE_FULL) and tried again by the caller's next alert.
 */

typedef struct opsc_dns_s opsc_dns_t;

typedef struct opsc_dns_options_s {
    const char *servers;  /* "host[:port],..." (c-ares CSV); NULL/"" = /etc/resolv.conf */
    int timeout_ms;       /* per try; default 2000 */
    int tries;            /* default 2 */
    unsigned ttl_s;       /* positive answers; default 300 */
    unsigned negative_ttl_s; /* no name / error; default 60 */
    size_t cache_max;     /* addresses cached; default 65536 */
    size_t max_inflight;  /* queries at once; default 256 */
} opsc_dns_options_t;

/**
 * The answer for `ip` (text form, v4 or v6): `name` is the host name, or NULL
 * when there is none (NXDOMAIN, timeout, error). `ttl_s` is how long the
 * answer is cached. Called on the loop thread, never inside opsc_dns_reverse.
 */
typedef void (*opsc_dns_cb)(const char *ip, const char *name, unsigned ttl_s, void *arg);

/** errbuf names what failed (an unparsable server list, c-ares initialisation). */
int opsc_dns_create(uv_loop_t *loop, const opsc_dns_options_t *opts, opsc_dns_t **out,
                    char *errbuf, size_t errlen);

/**
 * Look `ip` up. Returns 1 with *name set (NULL for a cached negative answer;
 * valid until the next call into this module) when the cache answers, 0 when
 * a query started or joined one in flight (`cb` follows), UV_EINVAL for text
 * that is not an address, OPSC_EQUEUE_FULL when too many queries are in
 * flight, OPSC_ESHUTDOWN after close.
 */
int opsc_dns_reverse(opsc_dns_t *d, const char *ip, const char **name, opsc_dns_cb cb, void *arg);

/** Cancel what is in flight (callbacks run with name NULL), free everything, then `done`. */
void opsc_dns_close(opsc_dns_t *d, void (*done)(void *arg), void *arg);

void opsc_dns_metrics(opsc_buf_t *out, void *d);

#endif
