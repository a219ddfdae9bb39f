#ifndef OPSC_RATE_LIMIT_H
#define OPSC_RATE_LIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "opsc/buf.h"

/*
 * Per-source token bucket for SNMP notifications (snmp.per_source_rate), run
 * on the loop thread before a datagram is queued for decoding: one device
 * that floods cannot starve the others when total capacity is exceeded.
 *
 * Keyed by the UDP source address (IPv4, IPv6; the port is ignored: an agent
 * sends from ephemeral ports). The table is bounded (max_sources), allocated
 * once, and O(1) per datagram: an open-addressing hash plus an LRU list; a
 * new source in a full table evicts the one heard from least recently. Not
 * thread-safe: one owner thread.
 */

typedef struct opsc_rate_limit_s opsc_rate_limit_t;

#define OPSC_RATE_LIMIT_TOP 10                  /* sources shown by name on /metrics */
#define OPSC_RATE_LIMIT_REPORT_NS 1000000000ull /* at most one storm report per source per second  \
                                                 */

typedef enum {
    OPSC_RATE_PASS = 0,   /* within its rate: queue it */
    OPSC_RATE_DROP,       /* over its rate: drop it (counted) */
    OPSC_RATE_DROP_REPORT /* dropped, and a storm report is due (see opsc_rate_limit_check) */
} opsc_rate_verdict_t;

/**
 * `rate` datagrams per second per source (> 0), `burst` (>= 1: how many may
 * arrive at once after a quiet spell), at most `max_sources` sources tracked
 * (>= 1). 0, OPSC_ECONFIG or OPSC_ENOMEM. All memory is allocated here.
 */
int opsc_rate_limit_create(uint64_t rate, uint64_t burst, size_t max_sources,
                           opsc_rate_limit_t **out);
void opsc_rate_limit_destroy(opsc_rate_limit_t *r);

/**
 * Account one datagram from `from` at `now_ns` (monotonic, e.g. uv_hrtime;
 * never decreasing between calls). Returns the verdict. On
 * OPSC_RATE_DROP_REPORT, `*report_dropped` holds how many datagrams from this
 * source were dropped since its previous report (including this one); the
 * caller forwards it (trap_storm) and logs. No allocation; O(1).
 */
opsc_rate_verdict_t opsc_rate_limit_check(opsc_rate_limit_t *r, const struct sockaddr *from,
                                          uint64_t now_ns, uint64_t *report_dropped);

/** Datagrams dropped in total; sources in the table; sources evicted to make room. */
uint64_t opsc_rate_limit_dropped(const opsc_rate_limit_t *r);
size_t opsc_rate_limit_sources(const opsc_rate_limit_t *r);
uint64_t opsc_rate_limit_evictions(const opsc_rate_limit_t *r);

/** Dropped so far for the source `from` (0 when not in the table). */
uint64_t opsc_rate_limit_source_dropped(const opsc_rate_limit_t *r, const struct sockaddr *from);

/**
 * Families opsc_trap_rate_limited_total (all sources),
 * opsc_trap_rate_limited_by_source_total{source} for at most
 * OPSC_RATE_LIMIT_TOP sources that dropped in the last minute (most dropped
 * first: bounded label cardinality), opsc_trap_rate_limit_sources and
 * opsc_trap_rate_limit_evictions_total. `r` may be NULL (limit off: the total
 * reads 0). Signature of opsc_metrics_collect_cb; `now_ns` is read from uv_hrtime.
 */
void opsc_rate_limit_metrics(opsc_buf_t *out, void *r);

/** The source address as text ("10.0.0.1", "2001:db8::1"; v4-mapped IPv6 as IPv4). */
void opsc_rate_limit_format_source(const struct sockaddr *from, char *out, size_t outlen);

#endif
