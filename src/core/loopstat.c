/*
 * Event-loop lag. A timer asks to fire every `interval_ms`; how late it fires
 * is time the loop spent on something else (a long callback, a blocking call).
 * It is the first number to look at when the server feels slow.
 */
#include <stdint.h>
#include <stdio.h>

#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/loopstat.h"
#include "opsc/metrics.h"

static const double bucket_le[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0};
#define NBUCKETS (sizeof(bucket_le) / sizeof(bucket_le[0]))

struct opsc_loopstat_s {
    uv_timer_t timer;
    unsigned interval_ms;
    uint64_t expected_ns;
    double last_s;
    double max_s; /* since the previous scrape */
    double sum_s;
    uint64_t count;
    uint64_t buckets[NBUCKETS];
};

static void on_tick(uv_timer_t *t) {
    opsc_loopstat_t *ls = t->data;
    uint64_t now = uv_hrtime();
    double lag = now > ls->expected_ns ? (double)(now - ls->expected_ns) / 1e9 : 0.0;
    ls->last_s = lag;
    if (lag > ls->max_s) {
        ls->max_s = lag;
    }
    ls->sum_s += lag;
    ls->count++;
    for (size_t i = 0; i < NBUCKETS; i++) {
        if (lag <= bucket_le[i]) {
            ls->buckets[i]++;
        }
    }
    ls->expected_ns = now + (uint64_t)ls->interval_ms * 1000000ull;
}

int opsc_loopstat_start(uv_loop_t *loop, unsigned interval_ms, opsc_loopstat_t **out) {
    opsc_loopstat_t *ls = opsc_calloc(1, sizeof(*ls));
    if (!ls) {
        return OPSC_ENOMEM;
    }
    ls->interval_ms = interval_ms ? interval_ms : 100;
    uv_timer_init(loop, &ls->timer);
    ls->timer.data = ls;
    ls->expected_ns = uv_hrtime() + (uint64_t)ls->interval_ms * 1000000ull;
    uv_timer_start(&ls->timer, on_tick, ls->interval_ms, ls->interval_ms);
    uv_unref((uv_handle_t *)&ls->timer); /* never keeps the loop alive by itself */
    *out = ls;
    return 0;
}

static void on_close(uv_handle_t *h) {
    opsc_free(h->data);
}

void opsc_loopstat_close(opsc_loopstat_t *ls) {
    if (ls) {
        uv_close((uv_handle_t *)&ls->timer, on_close);
    }
}

void opsc_loopstat_metrics(opsc_buf_t *out, void *arg) {
    opsc_loopstat_t *ls = arg;
    opsc_metrics_family(out, "opsc_loop_lag_seconds", "gauge",
                        "How late the loop's lag timer fired, last measurement");
    opsc_metrics_sample(out, "opsc_loop_lag_seconds", NULL, ls->last_s);
    opsc_metrics_family(out, "opsc_loop_lag_max_seconds", "gauge",
                        "Largest loop lag since the previous scrape");
    opsc_metrics_sample(out, "opsc_loop_lag_max_seconds", NULL, ls->max_s);
    ls->max_s = ls->last_s;
    opsc_metrics_family(out, "opsc_loop_lag_histogram_seconds", "histogram",
                        "Distribution of loop lag measurements");
    char le[48];
    for (size_t i = 0; i < NBUCKETS; i++) {
        snprintf(le, sizeof(le), "le=\"%g\"", bucket_le[i]);
        opsc_metrics_sample_u64(out, "opsc_loop_lag_histogram_seconds_bucket", le, ls->buckets[i]);
    }
    opsc_metrics_sample_u64(out, "opsc_loop_lag_histogram_seconds_bucket", "le=\"+Inf\"",
                            ls->count);
    opsc_metrics_sample(out, "opsc_loop_lag_histogram_seconds_sum", NULL, ls->sum_s);
    opsc_metrics_sample_u64(out, "opsc_loop_lag_histogram_seconds_count", NULL, ls->count);
}
