#ifndef OPSC_METRICS_H
#define OPSC_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "opsc/buf.h"

/*
 * Prometheus text exposition (format 0.0.4). Modules register a collector;
 * at scrape time (on the loop thread) every collector appends its families.
 * Counters shared with other threads are C11 atomics owned by the module.
 */

typedef void (*opsc_metrics_collect_cb)(opsc_buf_t *out, void *arg);

typedef struct opsc_metrics_s opsc_metrics_t;

opsc_metrics_t *opsc_metrics_create(void);
void opsc_metrics_destroy(opsc_metrics_t *m);
/** Register a collector; collectors run in registration order. 0 or OPSC_ENOMEM. */
int opsc_metrics_register(opsc_metrics_t *m, opsc_metrics_collect_cb cb, void *arg);
void opsc_metrics_unregister(opsc_metrics_t *m, opsc_metrics_collect_cb cb, void *arg);
/** Render all registered collectors into out. */
int opsc_metrics_render(opsc_metrics_t *m, opsc_buf_t *out);

/** "# HELP name help\n# TYPE name type\n" (type: counter, gauge, histogram, untyped). */
void opsc_metrics_family(opsc_buf_t *out, const char *name, const char *type, const char *help);
/** One sample: labels is NULL or a preformatted `k="v",k2="v2"` list (values escaped by caller). */
void opsc_metrics_sample(opsc_buf_t *out, const char *name, const char *labels, double value);
void opsc_metrics_sample_u64(opsc_buf_t *out, const char *name, const char *labels, uint64_t value);
/** A sample value as Prometheus prints it: "42", "0.25", "NaN", "+Inf" (out: 32+ bytes). */
void opsc_metrics_format_value(double v, char *out, size_t outlen);
/** A family with a single unlabelled sample: family() + sample_u64() in one call. */
void opsc_metrics_one_u64(opsc_buf_t *out, const char *name, const char *type, const char *help,
                          uint64_t value);
/**
 * A histogram family: `le` holds n upper bounds (ascending), `buckets` the
 * cumulative count for each (observations <= le[i]); `count` and `sum` are
 * the totals (the +Inf bucket is `count`).
 */
void opsc_metrics_histogram(opsc_buf_t *out, const char *name, const char *help, const double *le,
                            const uint64_t *buckets, size_t n, uint64_t count, double sum);
/** Count one observation `v` into cumulative `buckets` of bounds `le` (n of them). */
void opsc_metrics_observe(const double *le, uint64_t *buckets, size_t n, double v);
/** Escape a label value (backslash, quote, newline) into out. */
void opsc_metrics_escape(opsc_buf_t *out, const char *value);

#endif
