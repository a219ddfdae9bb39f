/* The alert model's helpers: UUIDs, times, enum names, clone/free. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "opsc/alert.h"

static int cmp16(const void *a, const void *b) {
    return memcmp(a, b, 16);
}

static void test_uuid_v4_unique(void **state) {
    (void)state;
    enum { N = 20000 };
    opsc_uuid_t *u = calloc(N, sizeof(*u));
    assert_non_null(u);
    for (int i = 0; i < N; i++) {
        opsc_uuid_generate(&u[i]);
        assert_int_equal(u[i].b[6] >> 4, 4);
        assert_int_equal(u[i].b[8] >> 6, 2);
    }
    qsort(u, N, sizeof(*u), cmp16);
    for (int i = 1; i < N; i++) {
        assert_true(memcmp(&u[i - 1], &u[i], 16) != 0);
    }
    char text[37];
    opsc_uuid_t back;
    opsc_uuid_format(&u[7], text);
    assert_int_equal(strlen(text), 36);
    assert_int_equal(opsc_uuid_parse(text, &back), 0);
    assert_memory_equal(&back, &u[7], 16);
    assert_true(opsc_uuid_parse("not-a-uuid", &back) != 0);
    free(u);
}

static void test_time_and_names(void **state) {
    (void)state;
    char t[32];
    opsc_time_format(1795316041123456LL, t);
    assert_string_equal(t, "2026-11-22T02:54:01.123456Z");
    opsc_time_format(0, t);
    assert_string_equal(t, "1970-01-01T00:00:00.000000Z");
    opsc_severity_t sev;
    assert_int_equal(opsc_severity_parse("major", &sev), 0);
    assert_int_equal(sev, OPSC_SEV_MAJOR);
    assert_true(opsc_severity_parse("Major", &sev) != 0);
    opsc_category_t cat;
    assert_int_equal(opsc_category_parse("environment", &cat), 0);
    assert_string_equal(opsc_category_name(cat), "environment");
    opsc_status_t st;
    assert_int_equal(opsc_status_parse("suppressed", &st), 0);
    assert_string_equal(opsc_status_name(st), "suppressed");
    assert_null(opsc_level_name(OPSC_LEVEL_NONE));
    assert_string_equal(opsc_level_name(OPSC_LEVEL_LOW), "low");
}

static void test_clone_is_deep(void **state) {
    (void)state;
    opsc_alert_t *a = opsc_alert_new();
    assert_int_equal(a->occurrence_count, 1);
    assert_int_equal(opsc_alert_set(&a->title, "Interface Down - r1"), 0);
    assert_int_equal(opsc_alert_set(&a->device_ip, "10.0.0.1"), 0);
    a->tags = calloc(1, sizeof(char *));
    a->tags[0] = strdup("core");
    a->ntags = 1;
    opsc_alert_t *b = opsc_alert_clone(a);
    assert_non_null(b);
    assert_ptr_not_equal(a->title, b->title);
    assert_string_equal(b->title, "Interface Down - r1");
    assert_ptr_not_equal(a->tags[0], b->tags[0]);
    assert_string_equal(b->tags[0], "core");
    assert_null(b->message);
    opsc_alert_free(a);
    assert_string_equal(b->device_ip, "10.0.0.1");
    opsc_alert_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_v4_unique),
        cmocka_unit_test(test_time_and_names),
        cmocka_unit_test(test_clone_is_deep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
