#ifndef OPSC_TEST_LOOP_UTIL_H
#define OPSC_TEST_LOOP_UTIL_H

#include <uv.h>

/*
 * Run `loop` until *flag becomes non-zero or timeout_ms passes. Returns 0 when
 * the flag was set, -1 on timeout (so a hang fails the test instead of
 * hanging it).
 */
static inline void opsc__test_timeout_cb(uv_timer_t *t) {
    *(int *)t->data = 1;
}

static inline int opsc_test_run_until(uv_loop_t *loop, const volatile int *flag, int timeout_ms) {
    uv_timer_t t;
    int expired = 0;
    uv_timer_init(loop, &t);
    t.data = &expired;
    uv_timer_start(&t, opsc__test_timeout_cb, (uint64_t)timeout_ms, 0);
    while (!*flag && !expired) {
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag ? 0 : -1;
}

/* Let pending close callbacks run. */
static inline void opsc_test_drain(uv_loop_t *loop) {
    for (int i = 0; i < 100 && uv_run(loop, UV_RUN_NOWAIT); i++) {
    }
}

#endif
