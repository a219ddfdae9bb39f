/*
 * Prometheus text exposition (0.0.4): a registry of collectors and helpers
 * to write families and samples.
 *
 * The registry is a plain array used on the loop thread only; collectors run
 * in registration order and must not (un)register while a render is running.
 *
 * Values print like Prometheus' own client: integers without a fraction,
 * other numbers in the shortest form that reads back to the same double, and
 * "NaN", "+Inf", "-Inf".
 */
#include "opsc/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opsc/error.h"

typedef struct opsc__collector_s {
    opsc_metrics_collect_cb cb;
    void *arg;
} opsc__collector_t;

struct opsc_metrics_s {
    opsc__collector_t *v;
    size_t n;
    size_t cap;
};

opsc_metrics_t *opsc_metrics_create(void) {
    return opsc_calloc(1, sizeof(opsc_metrics_t));
}

void opsc_metrics_destroy(opsc_metrics_t *m) {
    if (m == NULL) {
        return;
    }
    opsc_free(m->v);
    opsc_free(m);
}

int opsc_metrics_register(opsc_metrics_t *m, opsc_metrics_collect_cb cb, void *arg) {
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        opsc__collector_t *v = opsc_realloc(m->v, cap * sizeof(*v));
        if (v == NULL) {
            return OPSC_ENOMEM;
        }
        m->v = v;
        m->cap = cap;
    }
    m->v[m->n].cb = cb;
    m->v[m->n].arg = arg;
    m->n++;
    return 0;
}

void opsc_metrics_unregister(opsc_metrics_t *m, opsc_metrics_collect_cb cb, void *arg) {
    for (size_t i = 0; i < m->n; i++) {
        if (m->v[i].cb == cb && m->v[i].arg == arg) {
            memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof(m->v[0]));
            m->n--;
            return;
        }
    }
}

int opsc_metrics_render(opsc_metrics_t *m, opsc_buf_t *out) {
    /* Make sure `out` is a valid (possibly empty) string even with no collectors. */
    if (opsc_buf_reserve(out, 0) != 0) {
        return OPSC_ENOMEM;
    }
    for (size_t i = 0; i < m->n; i++) {
        m->v[i].cb(out, m->v[i].arg);
    }
    return 0;
}

/* HELP text escapes backslash and newline (quotes stay as they are). */
static void opsc__metrics_escape_help(opsc_buf_t *out, const char *s) {
    for (; *s != '\0'; s++) {
        if (*s == '\\') {
            opsc_buf_append(out, "\\\\", 2);
        } else if (*s == '\n') {
            opsc_buf_append(out, "\\n", 2);
        } else {
            opsc_buf_append(out, s, 1);
        }
    }
}

void opsc_metrics_family(opsc_buf_t *out, const char *name, const char *type, const char *help) {
    opsc_buf_appends(out, "# HELP ");
    opsc_buf_appends(out, name);
    opsc_buf_appends(out, " ");
    opsc__metrics_escape_help(out, help != NULL ? help : "");
    opsc_buf_appends(out, "\n# TYPE ");
    opsc_buf_appends(out, name);
    opsc_buf_appends(out, " ");
    opsc_buf_appends(out, type != NULL ? type : "untyped");
    opsc_buf_appends(out, "\n");
}

void opsc_metrics_escape(opsc_buf_t *out, const char *value) {
    for (const char *s = value; *s != '\0'; s++) {
        if (*s == '\\') {
            opsc_buf_append(out, "\\\\", 2);
        } else if (*s == '"') {
            opsc_buf_append(out, "\\\"", 2);
        } else if (*s == '\n') {
            opsc_buf_append(out, "\\n", 2);
        } else {
            opsc_buf_append(out, s, 1);
        }
    }
}

/** Format a sample value the way Prometheus does. */
void opsc_metrics_format_value(double v, char *out, size_t outlen) {
    if (isnan(v)) {
        snprintf(out, outlen, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, outlen, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    /* Integral values below 2^53 are exact: print them without a fraction. */
    double mag = v < 0 ? -v : v;
    if (mag < 9007199254740992.0 && (double)(int64_t)v == v) {
        snprintf(out, outlen, "%" PRId64, (int64_t)v);
        return;
    }
    /* Shortest of %.15g..%.17g that reads back to the same double. */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, outlen, "%.*g", prec, v);
        if (strtod(out, NULL) == v) {
            return;
        }
    }
}

static void opsc__metrics_sample_start(opsc_buf_t *out, const char *name, const char *labels) {
    opsc_buf_appends(out, name);
    if (labels != NULL && labels[0] != '\0') {
        opsc_buf_appends(out, "{");
        opsc_buf_appends(out, labels);
        opsc_buf_appends(out, "}");
    }
    opsc_buf_appends(out, " ");
}

void opsc_metrics_sample(opsc_buf_t *out, const char *name, const char *labels, double value) {
    char num[40];
    opsc_metrics_format_value(value, num, sizeof(num));
    opsc__metrics_sample_start(out, name, labels);
    opsc_buf_appends(out, num);
    opsc_buf_appends(out, "\n");
}

void opsc_metrics_sample_u64(opsc_buf_t *out, const char *name, const char *labels,
                             uint64_t value) {
    opsc__metrics_sample_start(out, name, labels);
    opsc_buf_printf(out, "%" PRIu64 "\n", value);
}

void opsc_metrics_one_u64(opsc_buf_t *out, const char *name, const char *type, const char *help,
                          uint64_t value) {
    opsc_metrics_family(out, name, type, help);
    opsc_metrics_sample_u64(out, name, NULL, value);
}

void opsc_metrics_histogram(opsc_buf_t *out, const char *name, const char *help, const double *le,
                            const uint64_t *buckets, size_t n, uint64_t count, double sum) {
    char sample[128], labels[48];
    opsc_metrics_family(out, name, "histogram", help);
    snprintf(sample, sizeof(sample), "%s_bucket", name);
    for (size_t i = 0; i < n; i++) {
        snprintf(labels, sizeof(labels), "le=\"%g\"", le[i]);
        opsc_metrics_sample_u64(out, sample, labels, buckets[i]);
    }
    opsc_metrics_sample_u64(out, sample, "le=\"+Inf\"", count);
    snprintf(sample, sizeof(sample), "%s_sum", name);
    opsc_metrics_sample(out, sample, NULL, sum);
    snprintf(sample, sizeof(sample), "%s_count", name);
    opsc_metrics_sample_u64(out, sample, NULL, count);
}

void opsc_metrics_observe(const double *le, uint64_t *buckets, size_t n, double v) {
    for (size_t i = 0; i < n; i++) {
        if (v <= le[i]) {
            buckets[i]++;
        }
    }
}
