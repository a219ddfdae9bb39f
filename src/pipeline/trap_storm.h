#ifndef OPSC_TRAP_STORM_H
#define OPSC_TRAP_STORM_H

#include <stdint.h>
#include <sys/socket.h>

#include "opsc/buf.h"
#include "opsc/change.h"
#include "opsc/dedup.h"
#include "opsc/normalize.h"

/*
 * trap_storm alerts (pipeline thread): the loop thread's per-source rate
 * limit reports a source it is cutting at most once a second; each report
 * creates or repeats ONE alert on that device (alert_type trap_storm,
 * category network, severity warning, fingerprint by the shared scheme over
 * "snmp", the source address, "trap_storm", ""). Once no report has come for
 * the quiet period, a tick resolves it (actor system, rule trap_storm).
 * Module-private to the pipeline: it works on the pipeline's dedup index and
 * hands its changes to `emit`.
 */

#define OPSC_TRAP_STORM_TYPE "trap_storm"

typedef struct opsc_trap_storm_s opsc_trap_storm_t;
typedef void (*opsc_trap_storm_emit_cb)(opsc_change_t *c, void *arg);

/** `rate`/`burst`: the configured limit (recorded in the alert); `quiet_us` before resolving. */
opsc_trap_storm_t *opsc_trap_storm_create(uint64_t rate, uint64_t burst, int64_t quiet_us,
                                          opsc_trap_storm_emit_cb emit, void *arg);
void opsc_trap_storm_destroy(opsc_trap_storm_t *s);

/**
 * One report: `dropped` datagrams from `from` since its previous report.
 * `norm` (may be NULL) names the device. Creates the alert or counts one
 * more occurrence of it.
 */
void opsc_trap_storm_report(opsc_trap_storm_t *s, opsc_dedup_t *dedup,
                            const opsc_normalizer_t *norm, const struct sockaddr *from,
                            uint64_t dropped, int64_t now_us);

/**
 * Time passes: resolve every active trap_storm alert (also those loaded from
 * the database at start) whose last occurrence is older than the quiet
 * period. Cheap when there is none: the index is scanned only while storms
 * are known, plus once after start.
 */
void opsc_trap_storm_tick(opsc_trap_storm_t *s, opsc_dedup_t *dedup, int64_t now_us);

/** opsc_trap_storm_alerts_total{outcome=created|repeated|resolved}; any thread. */
void opsc_trap_storm_metrics(opsc_buf_t *out, const opsc_trap_storm_t *s);

#endif
