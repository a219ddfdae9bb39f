#ifndef OPSC_MAINTENANCE_H
#define OPSC_MAINTENANCE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Maintenance windows (issue 3 item 7e): an immutable snapshot of the enabled
 * windows and their occurrences as concrete UTC intervals, built on the loop
 * thread from the rows PostgreSQL expanded (opsc_store_load_maintenance) and
 * handed to the pipeline thread (opsc_pipeline_set_maintenance), which owns
 * and frees it like the normalizer snapshot. Time-zone and recurrence rules
 * never reach C: here a window is only "these matchers, during these
 * microsecond intervals".
 *
 * Matching is pure computation: no I/O, no allocation, any thread.
 */

typedef struct opsc_maint_s opsc_maint_t;

/** One occurrence row (copied by opsc_maint_create); NULL matchers = any. */
typedef struct opsc_maint_row_s {
    const char *window_id;        /* UUID text; rows of one window share it */
    const char *name;             /* for logs */
    const char *device_ip_cidr;   /* "10.1.0.0/16", "2001:db8::/32", a bare address = /32, /128 */
    const char *device_name_glob; /* fnmatch pattern, case-insensitive */
    const char *site;             /* exact */
    const char *category;         /* the seed's category names */
    const char *alert_type;       /* exact */
    int64_t start_us;             /* [start, end) in Unix microseconds; INT64_MIN/MAX = open */
    int64_t end_us;
} opsc_maint_row_t;

/** What an alert is matched on. NULL fields match only a NULL (= any) matcher. */
typedef struct opsc_maint_subject_s {
    const char *device_ip;
    const char *device_name;
    const char *site;
    const char *category;
    const char *alert_type;
} opsc_maint_subject_t;

/**
 * Build a snapshot. Rows whose device_ip_cidr does not parse, or whose
 * category is not one of the seed's, are skipped with a log line and counted
 * (opsc_maint_skipped): a bad row never silences more than it says. NULL only
 * when out of memory.
 */
opsc_maint_t *opsc_maint_create(const opsc_maint_row_t *rows, size_t n);
void opsc_maint_destroy(opsc_maint_t *m);

size_t opsc_maint_window_count(const opsc_maint_t *m);
size_t opsc_maint_skipped(const opsc_maint_t *m);
/** Name (or id when unnamed) of window i, 0 <= i < opsc_maint_window_count. */
const char *opsc_maint_window_name(const opsc_maint_t *m, size_t i);

/** 1 when window i has an occurrence containing now_us. */
int opsc_maint_window_active(const opsc_maint_t *m, size_t i, int64_t now_us);

/** 1 when every matcher window i has matches the subject. */
int opsc_maint_window_matches(const opsc_maint_t *m, size_t i, const opsc_maint_subject_t *s);

/** Index of the first window active at now_us that matches, or -1. */
long opsc_maint_match(const opsc_maint_t *m, const opsc_maint_subject_t *s, int64_t now_us);

/**
 * The first occurrence boundary (a start or an end) strictly after now_us,
 * or INT64_MAX when there is none: when the set of active windows next
 * changes.
 */
int64_t opsc_maint_next_boundary(const opsc_maint_t *m, int64_t now_us);

#endif
