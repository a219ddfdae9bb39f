#ifndef OPSC_PIPELINE_MAINTENANCE_INT_H
#define OPSC_PIPELINE_MAINTENANCE_INT_H

/*
 * The pipeline thread's side of maintenance windows (src/pipeline/maintenance.c):
 * the current snapshot, a timer on the pipeline's own loop that fires at the
 * next window boundary, and the transitions it decides. pipeline.c embeds one
 * opsc__maint_t and calls in at a few points; everything here runs on the
 * pipeline thread except opsc__maint_metrics (atomics only).
 *
 * Precedence: maintenance wins over dependency suppression. An alert covered
 * by an active window is suppressed with rule `maintenance`, also when an
 * upstream device is down (a planned outage explains it better); when the
 * window ends and the upstream is still down, it is handed to
 * `upstream_dependency` (correlated to the down alert) instead of being
 * reopened. Every evaluation (boundary, new snapshot, restart) applies the
 * same rule, so the result does not depend on the order things happened in.
 * Acknowledged alerts are left alone: someone owns them.
 */

#include <stdatomic.h>
#include <stdint.h>

#include <uv.h>

#include "opsc/alert.h"
#include "opsc/buf.h"
#include "opsc/change.h"
#include "opsc/dedup.h"
#include "opsc/maintenance.h"
#include "opsc/normalize.h"

#define OPSC_MAINT_RULE "maintenance"

typedef struct opsc__maint_hooks_s {
    void (*emit)(opsc_change_t *c, void *arg); /* queue a change, in order */
    /* The down alert that suppresses new alerts of `device` (dependency suppression), or NULL. */
    opsc_dedup_entry_t *(*upstream)(const char *device, void *arg);
    void (*kick)(void *arg); /* the timer emitted changes: hand them to the loop thread */
    void *arg;
} opsc__maint_hooks_t;

typedef struct opsc__maint_s {
    opsc_maint_t *snap; /* owned; NULL until the first one arrives */
    opsc_dedup_t *dedup;
    opsc_normalizer_t *const *norm; /* the pipeline's current normalizer pointer */
    opsc__maint_hooks_t hooks;
    uv_timer_t timer;
    unsigned char *was_active; /* per window of snap, at the last evaluation */
    int64_t now_us;            /* of the evaluation in progress */
    atomic_uint_fast64_t n_suppressed;
    atomic_uint_fast64_t n_reopened;
    atomic_uint_fast64_t n_to_upstream;
    atomic_uint_fast64_t n_windows;
    atomic_uint_fast64_t n_windows_active;
    atomic_uint_fast64_t n_evaluations;
} opsc__maint_t;

/** Set up on the pipeline loop (pipeline_start, before the thread runs). */
void opsc__maint_init(opsc__maint_t *mt, uv_loop_t *ploop, opsc_dedup_t *dedup,
                      opsc_normalizer_t *const *norm, const opsc__maint_hooks_t *hooks);

/** Close the timer (no callback: the caller runs the loop until closed) and free the snapshot. */
void opsc__maint_close(opsc__maint_t *mt);

/** A new snapshot (ownership passes): swap, re-evaluate every alert, re-arm the timer. */
void opsc__maint_set(opsc__maint_t *mt, opsc_maint_t *snap);

/** Re-evaluate every alert of the index now (after the active alerts were loaded). */
void opsc__maint_reevaluate(opsc__maint_t *mt);

/** Flag an entry loaded from the database (suppressed with rule maintenance) and its category. */
void opsc__maint_take_loaded(opsc_dedup_entry_t *e, const opsc_alert_t *a);

/** 1 when an active window covers this new alert at now_us. */
int opsc__maint_covers_alert(const opsc__maint_t *mt, const opsc_alert_t *a, int64_t now_us);

/**
 * `e` was just created (CREATE already queued, status active) for an alert
 * opsc__maint_covers_alert accepted: queue its suppression (history action
 * `suppressed`, actor and rule `maintenance`) and mark it.
 */
void opsc__maint_suppress_new(opsc__maint_t *mt, opsc_dedup_entry_t *e, int64_t now_us);

void opsc__maint_metrics(opsc_buf_t *out, opsc__maint_t *mt);

#endif
