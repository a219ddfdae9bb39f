/* The active-alert index: a randomized comparison against a plain array. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opsc/dedup.h"

static void fp_of(unsigned n, char out[65]) {
    /* Deliberately similar keys: collisions and long probe runs get exercised. */
    snprintf(out, 65, "%016x%048x", n % 97u, n);
}

static void test_add_find_remove_random(void **state) {
    (void)state;
    enum { N = 20000, OPS = 200000 };
    static unsigned char present[N];
    memset(present, 0, sizeof(present));
    opsc_dedup_t *d = opsc_dedup_create(16);
    assert_non_null(d);
    unsigned seed = 12345;
    size_t live = 0;
    char fp[65];
    for (int op = 0; op < OPS; op++) {
        seed = seed * 1103515245u + 12345u;
        unsigned k = (seed >> 8) % N;
        fp_of(k, fp);
        opsc_dedup_entry_t *e = opsc_dedup_find(d, fp);
        assert_int_equal(e != NULL, present[k]);
        if (e && (seed & 1)) {
            assert_string_equal(e->fingerprint, fp);
            opsc_dedup_remove(d, e);
            present[k] = 0;
            live--;
        } else if (!e) {
            opsc_uuid_t id;
            memset(&id, 0, sizeof(id));
            memcpy(id.b, &k, sizeof(k));
            char dev[32];
            snprintf(dev, sizeof(dev), "10.0.%u.%u", k / 256 % 256, k % 256);
            e = opsc_dedup_add(d, fp, &id, OPSC_STATUS_ACTIVE, 1, 0, "link_down", dev, "3");
            assert_non_null(e);
            assert_null(opsc_dedup_add(d, fp, &id, OPSC_STATUS_ACTIVE, 1, 0, "x", dev, ""));
            present[k] = 1;
            live++;
        }
        assert_int_equal(opsc_dedup_count(d), live);
    }
    for (unsigned k = 0; k < N; k++) {
        fp_of(k, fp);
        assert_int_equal(opsc_dedup_find(d, fp) != NULL, present[k]);
    }
    opsc_dedup_destroy(d);
}

typedef struct visit_s {
    int n;
    opsc_dedup_t *d;
    int remove;
} visit_t;

static void on_visit(opsc_dedup_entry_t *e, void *arg) {
    visit_t *v = arg;
    v->n++;
    if (v->remove) {
        opsc_dedup_remove(v->d, e);
    }
}

static void test_device_index_and_dirty(void **state) {
    (void)state;
    opsc_dedup_t *d = opsc_dedup_create(4);
    opsc_uuid_t id;
    memset(&id, 0, sizeof(id));
    opsc_dedup_entry_t *a = opsc_dedup_add(d, "aa", &id, OPSC_STATUS_ACTIVE, 1, 10, "link_down",
                                           "10.0.0.1", "3");
    opsc_dedup_add(d, "bb", &id, OPSC_STATUS_ACTIVE, 1, 10, "bgp_down", "10.0.0.1", "3");
    opsc_dedup_add(d, "cc", &id, OPSC_STATUS_ACTIVE, 1, 10, "link_down", "10.0.0.1", "4");
    opsc_dedup_add(d, "dd", &id, OPSC_STATUS_ACTIVE, 1, 10, "link_down", "10.0.0.2", "3");
    visit_t v = {0, d, 0};
    assert_int_equal(opsc_dedup_each_on_device(d, "10.0.0.1", "3", on_visit, &v), 2);
    assert_int_equal(v.n, 2);

    opsc_dedup_touch(d, a, 20);
    opsc_dedup_touch(d, a, 15);
    assert_int_equal(a->occurrence_count, 3);
    assert_int_equal(a->last_occurrence_at_us, 20);
    opsc_dedup_entry_t *dirty = opsc_dedup_take_dirty(d);
    assert_ptr_equal(dirty, a);
    assert_null(dirty->dirty_next);
    assert_null(opsc_dedup_take_dirty(d));

    /* Removing from inside the visit (what a clear does), dirty ones included. */
    opsc_dedup_touch(d, a, 30);
    v = (visit_t){0, d, 1};
    assert_int_equal(opsc_dedup_each_on_device(d, "10.0.0.1", "3", on_visit, &v), 2);
    assert_null(opsc_dedup_find(d, "aa"));
    assert_null(opsc_dedup_find(d, "bb"));
    assert_non_null(opsc_dedup_find(d, "cc"));
    assert_null(opsc_dedup_take_dirty(d));
    assert_int_equal(opsc_dedup_count(d), 2);
    opsc_dedup_destroy(d);
}

static void test_memory_per_alert(void **state) {
    (void)state;
    enum { N = 100000 };
    opsc_dedup_t *d = opsc_dedup_create(N);
    opsc_uuid_t id;
    memset(&id, 0, sizeof(id));
    char fp[65];
    size_t strings = 0;
    for (unsigned k = 0; k < N; k++) {
        fp_of(k * 7919u, fp);
        assert_non_null(opsc_dedup_add(d, fp, &id, OPSC_STATUS_ACTIVE, 1, 0, "link_down",
                                       "10.20.30.40", "12"));
        strings += strlen("link_down") + strlen("10.20.30.40") + strlen("12") + 3;
    }
    double per = (double)(opsc_dedup_memory(d) - strings) / N;
    printf("active-alert index: %.0f bytes per alert beyond its strings\n", per);
    assert_true(per < 300.0);
    opsc_dedup_destroy(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_find_remove_random),
        cmocka_unit_test(test_device_index_and_dirty),
        cmocka_unit_test(test_memory_per_alert),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
