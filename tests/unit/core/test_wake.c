/*
 * Cross-thread wake-ups (opsc/wake.h): whatever a thread publishes before a
 * send is seen by the loop's callback after it, sends coalesce, and closing
 * releases the eventfd.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <fcntl.h>
#include <stdatomic.h>

#include <uv.h>

#include "opsc/wake.h"
#include "support/loop_util.h"

#define SENDS 200000

typedef struct {
    opsc_wake_t w;
    atomic_uint_fast64_t published;
    uint64_t seen;
    uint64_t callbacks;
    int done;
} ctx_t;

static void on_wake(opsc_wake_t *w) {
    ctx_t *c = w->data;
    c->callbacks++;
    c->seen = atomic_load_explicit(&c->published, memory_order_acquire);
    if (c->seen == SENDS) {
        c->done = 1;
    }
}

static void sender(void *arg) {
    ctx_t *c = arg;
    for (uint64_t i = 1; i <= SENDS; i++) {
        atomic_store_explicit(&c->published, i, memory_order_release);
        opsc_wake_send(&c->w);
    }
}

static int closed;
static void on_closed(opsc_wake_t *w) {
    (void)w;
    closed = 1;
}

static void test_cross_thread(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    static ctx_t c;
    assert_int_equal(opsc_wake_init(&loop, &c.w, on_wake), 0);
    c.w.data = &c;
    int fd = c.w.fd;
    uv_thread_t t;
    assert_int_equal(uv_thread_create(&t, sender, &c), 0);
    assert_int_equal(opsc_test_run_until(&loop, &c.done, 30000), 0);
    uv_thread_join(&t);
    assert_int_equal(c.seen, SENDS);
    assert_true(c.callbacks >= 1);
    assert_true(c.callbacks <= SENDS); /* coalesced, never more than sent */
    opsc_wake_close(&c.w, on_closed);
    assert_int_equal(opsc_test_run_until(&loop, &closed, 2000), 0);
    assert_int_equal(fcntl(fd, F_GETFD), -1); /* the eventfd is closed */
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_cross_thread)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
