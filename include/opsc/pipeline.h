#ifndef OPSC_PIPELINE_H
#define OPSC_PIPELINE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "opsc/alert.h"
#include "opsc/buf.h"
#include "opsc/change.h"

/*
 * The pipeline thread: the one owner of all correlation state.
 *
 *   loop thread                         pipeline thread
 *   UDP datagram --ingest ring-->       decode (net-snmp) -> normalize key ->
 *                                       dedup / clear -> normalize in full
 *                                       (first occurrence only)
 *   on_change()  <--change ring--       CREATE / REPEAT / STATUS / UPDATE / REPLY
 *
 * Both rings are bounded, lock-free and single-producer/single-consumer; each
 * side wakes the other with uv_async_send only when the other sleeps. A full
 * ingest ring drops the datagram and counts it; the loop never waits. A full
 * change ring pauses the pipeline (changes are never dropped), which fills
 * the ingest ring, which drops at the door: loss is always counted.
 *
 * Reference data (the normalizer snapshot) and the active alerts loaded at
 * start travel through the ingest ring too, so they are ordered with the
 * traffic and no lock is needed.
 */

typedef struct opsc_pipeline_s opsc_pipeline_t;
struct opsc_snmp_decoder_options_s;
struct opsc_normalizer_s;
struct opsc_maint_s;

/**
 * Called on the loop thread for each change, in order; takes ownership and
 * returns 0, or non-zero when the consumer is full: the same change is offered
 * again later (after `retry_ms`), nothing is lost.
 */
typedef int (*opsc_pipeline_change_cb)(opsc_change_t *c, void *arg);

typedef struct opsc_pipeline_options_s {
    size_t ingest_ring_bytes; /* 0: 64 MiB */
    size_t change_ring_bytes; /* 0: 4 MiB */
    const struct opsc_snmp_decoder_options_s *snmp;
    opsc_pipeline_change_cb on_change;
    void *arg;
    /* Alert types that mark a device as down (copied; any critical alert does too). */
    const char *const *down_alert_types;
    size_t ndown_alert_types;
    /* Flapping (see docs/architecture.md): more than flap_threshold resolves of one
     * fingerprint within flap_window_ms; threshold 0 = off. flap_track_max: fingerprints
     * remembered (0: 100000). */
    uint32_t flap_threshold;
    int64_t flap_window_ms;
    size_t flap_track_max;
    /* Expiry: no occurrence for this long -> expired; 0 = never. A category whose
     * expire_by_category_set[c] is 1 uses expire_by_category_ms[c] instead (0 = never). */
    int64_t expire_after_ms;
    int64_t expire_by_category_ms[OPSC_CAT_COUNT];
    unsigned char expire_by_category_set[OPSC_CAT_COUNT];
    /* A new alert of a device missing from the devices table carries title_for_name (reverse DNS).
     */
    int resolve_names;
    /* trap_storm alerts: the per-source limit they report on, and the quiet period (0: 60 s). */
    uint64_t storm_rate, storm_burst;
    int64_t storm_quiet_ms;
} opsc_pipeline_options_t;

/**
 * Parse correlation.expire_after_by_category items ("network=2h", "power=0")
 * into `po`. 0, or OPSC_ECONFIG with the offending item in errbuf.
 */
int opsc_pipeline_parse_expiry_overrides(const char *const *items, size_t n,
                                         opsc_pipeline_options_t *po, char *errbuf, size_t errlen);

/** Create and start the thread (it initialises net-snmp itself). */
int opsc_pipeline_start(uv_loop_t *loop, const opsc_pipeline_options_t *opts, opsc_pipeline_t **out,
                        char *errbuf, size_t errlen);

/** Loop thread: hand over one datagram (copied). 0, or OPSC_EQUEUE_FULL (dropped, counted). */
int opsc_pipeline_push_datagram(opsc_pipeline_t *p, const void *data, size_t len,
                                const struct sockaddr *from, int listener);

/**
 * Loop thread: the rate limit is cutting `from` (`dropped` since its last
 * report; at most one report per source per second): the pipeline creates or
 * repeats its trap_storm alert. `from` NULL is a tick (call about once a
 * second while the limit is on): quiet storms resolve. 0 or OPSC_EQUEUE_FULL.
 */
int opsc_pipeline_push_storm(opsc_pipeline_t *p, const struct sockaddr *from, uint64_t dropped);

/**
 * Loop thread: hand over `n` validated events (opsc/event.h; ownership of the
 * array and the alerts passes on 0). Once the pipeline has decided them it
 * emits a REPLY change with reply NULL and ack_token = `token`; the consumer
 * answers the sender when everything before that change is durable. Tokens
 * increase; an ack covers every token before it. 0 or OPSC_EQUEUE_FULL (the
 * caller keeps the alerts: answer 503).
 */
int opsc_pipeline_push_events(opsc_pipeline_t *p, opsc_alert_t **alerts, size_t n, uint64_t token);

/**
 * Loop thread: hand over alert actions (ownership of `b` passes on 0). The
 * pipeline decides each item against its state (filling done/before/after/
 * why) and sends `b` back in a REPLY change (reply NULL, ack_token = token,
 * actions = b) once everything it changed is queued; the consumer answers
 * when that is durable. 0 or OPSC_EQUEUE_FULL (the caller keeps `b`).
 */
int opsc_pipeline_push_actions(opsc_pipeline_t *p, opsc_action_batch_t *b, uint64_t token);

/** Loop thread: replace the normalizer snapshot (ownership passes; the old one is freed). */
int opsc_pipeline_set_normalizer(opsc_pipeline_t *p, struct opsc_normalizer_s *n);

/**
 * Loop thread: replace the maintenance-window snapshot (ownership passes; the
 * old one is freed). Every alert of the index is re-evaluated against it.
 */
int opsc_pipeline_set_maintenance(opsc_pipeline_t *p, struct opsc_maint_s *m);

/**
 * Loop thread: seed the active-alert index with alerts read from the database
 * at start (ownership of the array and the alerts passes).
 */
int opsc_pipeline_load_active(opsc_pipeline_t *p, opsc_alert_t **alerts, size_t n);

/** 1 once the normalizer and the active alerts have both been taken in. */
int opsc_pipeline_ready(const opsc_pipeline_t *p);

/**
 * Stop: the thread finishes what is in the ingest ring, hands over its last
 * changes, exits; `done` runs on the loop thread after it joined and the
 * handles closed.
 */
void opsc_pipeline_stop(opsc_pipeline_t *p, void (*done)(void *arg), void *arg);

/** Records waiting in either ring (for the shutdown drain). */
size_t opsc_pipeline_pending(const opsc_pipeline_t *p);

void opsc_pipeline_metrics(opsc_buf_t *out, void *p);

#endif
