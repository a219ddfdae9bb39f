#ifndef OPSC_PIPELINE_CORRELATE_INT_H
#define OPSC_PIPELINE_CORRELATE_INT_H

/*
 * Correlation helpers of the pipeline thread (flapping, expiry, ITIL
 * priority): pure logic and bounded state, no I/O; pipeline.c wires them to
 * the dedup index and emits the changes. See docs/architecture.md.
 * Single-threaded: everything here belongs to the pipeline thread.
 */

#include <stddef.h>
#include <stdint.h>

#include "opsc/alert.h"
#include "opsc/change.h"

/* ---- ITIL priority ---- */

/* A device with at least this many dependents (direct or transitive) has high impact. */
#define OPSC_IMPACT_HIGH_DEPENDENTS 10
/* ... at least this many: medium; fewer: low. */
#define OPSC_IMPACT_MEDIUM_DEPENDENTS 1

/** critical/major -> high, minor/warning -> medium, info (and clear) -> low. */
opsc_level_t opsc__urgency_of(opsc_severity_t sev);
/**
 * The device's own say (devices.custom_fields->>'impact': high, medium or low,
 * any case) when it has one, else from its dependents count.
 */
opsc_level_t opsc__impact_of(const char *device_impact, size_t ndependents);
/** The 3x3 ITIL matrix: 1 (H/H) .. 5 (L/L); 0 when either level is NONE. */
int opsc__priority_of(opsc_level_t impact, opsc_level_t urgency);

/* ---- flap tracker ---- */

#define OPSC_FLAP_THRESHOLD_MAX 64

typedef struct opsc_flap_rec_s opsc_flap_rec_t;
typedef struct opsc_flap_tracker_s opsc_flap_tracker_t;

/* What the pipeline reads and writes of a record; the rest is the tracker's. */
struct opsc_flap_rec_s {
    char fingerprint[65];
    opsc_uuid_t last_id; /* the alert last resolved under this fingerprint */
    uint32_t last_count; /* its occurrence_count then */
    int flapping;        /* marked: its alert is active and flapping */
    int last_clear;      /* the last event was a clear (flapping only) */
    uint32_t flap_count; /* clears counted while flapping (plus the resolves before) */
    int64_t flapping_since_us;
    int64_t last_transition_us; /* last active<->clear transition */
    int64_t count_written_us;   /* flap_count last sent to the store */
    /* tracker internals */
    opsc_flap_rec_t *hnext;
    opsc_flap_rec_t *lru_prev, *lru_next;
    opsc_flap_rec_t *fl_prev, *fl_next; /* the flapping list */
    uint8_t ntimes, head;
    int64_t times[]; /* resolve times, a ring of `threshold + 1` */
};

/**
 * A tracker that remembers at most `max_recs` fingerprints (the least recently
 * used non-flapping one is evicted for a new one). NULL when out of memory or
 * threshold is 0 (off).
 */
opsc_flap_tracker_t *opsc__flap_create(uint32_t threshold, int64_t window_us, size_t max_recs);
void opsc__flap_destroy(opsc_flap_tracker_t *t);
opsc_flap_rec_t *opsc__flap_find(opsc_flap_tracker_t *t, const char *fingerprint);
/** Find or add (counted as evicted when a stale one had to go); NULL when every record flaps. */
opsc_flap_rec_t *opsc__flap_get(opsc_flap_tracker_t *t, const char *fingerprint);
/** An alert of this fingerprint went active -> resolved at now_us. */
void opsc__flap_note_resolve(opsc_flap_tracker_t *t, opsc_flap_rec_t *r, const opsc_uuid_t *id,
                             uint32_t count, int64_t now_us);
/** 1 when more than `threshold` resolves fell within the window ending at now_us. */
int opsc__flap_exceeded(const opsc_flap_tracker_t *t, const opsc_flap_rec_t *r, int64_t now_us);
/** Mark / unmark (keeps the flapping list). */
void opsc__flap_set_flapping(opsc_flap_tracker_t *t, opsc_flap_rec_t *r, int on, int64_t now_us);
/**
 * Visit the flapping records quiet for a whole window at now_us (cb may unmark
 * the record it is given, nothing else). Returns how many were visited.
 */
size_t opsc__flap_each_settled(opsc_flap_tracker_t *t, int64_t now_us,
                               void (*cb)(opsc_flap_rec_t *r, void *arg), void *arg);
size_t opsc__flap_count(const opsc_flap_tracker_t *t);
size_t opsc__flap_flapping(const opsc_flap_tracker_t *t);
uint64_t opsc__flap_evicted(const opsc_flap_tracker_t *t);
size_t opsc__flap_memory(const opsc_flap_tracker_t *t);
int64_t opsc__flap_window_us(const opsc_flap_tracker_t *t);

/* ---- the UPDATEs that mark and unmark a flapping alert ---- */

/** Tag `flapping`, custom_fields {flapping: true, flap_count, flapping_since}. */
opsc_change_t *opsc__flap_mark_change(const opsc_uuid_t *id, uint32_t flap_count, int64_t since_us,
                                      int64_t now_us);
/** custom_fields {flap_count}. */
opsc_change_t *opsc__flap_count_change(const opsc_uuid_t *id, uint32_t flap_count, int64_t now_us);
/** Tag removed, custom_fields {flapping: false, flap_count, flapping_until}. */
opsc_change_t *opsc__flap_unmark_change(const opsc_uuid_t *id, uint32_t flap_count, int64_t now_us);

#endif
