#ifndef OPSC_DEDUP_H
#define OPSC_DEDUP_H

#include <stddef.h>
#include <stdint.h>

#include "opsc/alert.h"

/*
 * The active-alert index of the pipeline thread: every alert whose status
 * is active, acknowledged or suppressed, by fingerprint (dedup) and by
 * (device, discriminator) (clear matching). Single-threaded: owned by the
 * pipeline thread.
 *
 * An entry is small on purpose (a storm of repeats touches only this):
 * the alert's id, status, counters, and what clear matching needs.
 */

typedef struct opsc_dedup_entry_s {
    char fingerprint[65];
    opsc_uuid_t id;
    opsc_status_t status;
    uint32_t occurrence_count;
    int64_t last_occurrence_at_us;
    int dirty;          /* count changed since the last flush of repeats */
    /* maintenance (set by the pipeline; in what was padding) */
    unsigned char category;         /* opsc_category_t of the alert */
    unsigned char maint_suppressed; /* suppressed by a maintenance window */
    char *alert_type;   /* these three live in the entry's own block: never reassign */
    char *device;       /* owned: device_ip, or device_name when no ip */
    char *discriminator; /* owned, "" when none */
    /* dependency suppression (the pipeline sets these after opsc_dedup_add) */
    int is_down;           /* its alert marks `device` as down for its dependents */
    int has_correlated_to; /* suppressed by the upstream alert `correlated_to` */
    opsc_uuid_t correlated_to;
    /* flapping and expiry (the pipeline sets these after opsc_dedup_add; see correlate.c) */
    uint8_t flapping; /* marked flapping: clears are counted, not resolving */
    /* internal links */
    struct opsc_dedup_entry_s *dirty_next;
    struct opsc_dedup_entry_s *dev_next;
    size_t slot;
} opsc_dedup_entry_t;

typedef struct opsc_dedup_s opsc_dedup_t;

opsc_dedup_t *opsc_dedup_create(size_t expected);
void opsc_dedup_destroy(opsc_dedup_t *d);

/** The active entry with this fingerprint, or NULL. */
opsc_dedup_entry_t *opsc_dedup_find(opsc_dedup_t *d, const char *fingerprint);

/**
 * Add an entry (strings copied). Returns it, or NULL on out-of-memory or when
 * the fingerprint is already present.
 */
opsc_dedup_entry_t *opsc_dedup_add(opsc_dedup_t *d, const char *fingerprint, const opsc_uuid_t *id,
                                   opsc_status_t status, uint32_t count, int64_t last_us,
                                   const char *alert_type, const char *device,
                                   const char *discriminator);

/** Remove and free an entry (it leaves the active set: resolved, expired). */
void opsc_dedup_remove(opsc_dedup_t *d, opsc_dedup_entry_t *e);

/** Count one more occurrence at `now_us`; marks the entry dirty. */
void opsc_dedup_touch(opsc_dedup_t *d, opsc_dedup_entry_t *e, int64_t now_us);

/**
 * Visit every entry of `device` with `discriminator` (clear matching). The
 * callback may remove the entry it is given. Returns how many were visited.
 */
size_t opsc_dedup_each_on_device(opsc_dedup_t *d, const char *device, const char *discriminator,
                                 void (*cb)(opsc_dedup_entry_t *e, void *arg), void *arg);

/** Visit every entry (the callback must not add or remove entries). */
void opsc_dedup_each(opsc_dedup_t *d, void (*cb)(opsc_dedup_entry_t *e, void *arg), void *arg);

/**
 * Visit the entries in the next `nslots` slots from *cursor (wrapping at the
 * end of the table; the cursor is advanced), so a periodic check can walk a
 * large index a bounded slice at a time. The callback must not add or remove
 * entries. Returns the number of slots the table has (a full pass).
 */
size_t opsc_dedup_scan(opsc_dedup_t *d, size_t *cursor, size_t nslots,
                       void (*cb)(opsc_dedup_entry_t *e, void *arg), void *arg);

/** Take the list of dirty entries (clears their flag); iterate with e->dirty_next. */
opsc_dedup_entry_t *opsc_dedup_take_dirty(opsc_dedup_t *d);

size_t opsc_dedup_count(const opsc_dedup_t *d);
/** Bytes used by the index itself (table + entries + their strings). */
size_t opsc_dedup_memory(const opsc_dedup_t *d);

#endif
