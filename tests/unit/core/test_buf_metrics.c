/* Buffers, allocation fault injection, Prometheus rendering, error names. */

/*
 * Build buf.c into this test with fault injection on (STYLE.md 18: a test may
 * include the file under test). Its definitions replace the library's buf.o,
 * so the library's other modules allocate through this copy too.
 */
#define OPSC_FAULT_INJECTION 1
#include "core/buf.c"

/* cmocka.h needs these first, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "opsc/error.h"
#include "opsc/metrics.h"

static int reset_faults(void **state) {
    (void)state;
    opsc__alloc_fail_after = -1;
    return 0;
}

/* ---- buffers -------------------------------------------------------------------------------- */

static void test_buf_basics(void **state) {
    (void)state;
    opsc_buf_t b = OPSC_BUF_INIT;
    assert_int_equal(opsc_buf_append(&b, "", 0), 0);
    assert_non_null(b.base);
    assert_string_equal(b.base, "");
    assert_int_equal(b.len, 0);

    assert_int_equal(opsc_buf_appends(&b, "hello"), 0);
    assert_int_equal(opsc_buf_append(&b, " world!!", 6), 0);
    assert_string_equal(b.base, "hello world");
    assert_int_equal(b.len, 11);
    assert_true(b.cap > b.len);

    assert_int_equal(opsc_buf_printf(&b, " %d-%s", 42, "x"), 0);
    assert_string_equal(b.base, "hello world 42-x");

    opsc_buf_consume(&b, 6);
    assert_string_equal(b.base, "world 42-x");
    assert_int_equal(b.len, 10);
    opsc_buf_consume(&b, 100);
    assert_string_equal(b.base, "");
    assert_int_equal(b.len, 0);

    assert_int_equal(opsc_buf_appends(&b, "abc"), 0);
    opsc_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.base, "");
    opsc_buf_free(&b);
    assert_null(b.base);
    assert_int_equal(b.cap, 0);
    opsc_buf_free(&b);  /* twice is fine */
    opsc_buf_reset(&b); /* on an empty buffer too */
    opsc_buf_consume(&b, 1);
}

static void test_buf_growth(void **state) {
    (void)state;
    opsc_buf_t b = OPSC_BUF_INIT;
    size_t prev_cap = 0;
    int grew = 0;
    for (int i = 0; i < 10000; i++) {
        char c = (char)('a' + i % 26);
        assert_int_equal(opsc_buf_append(&b, &c, 1), 0);
        assert_int_equal(b.base[b.len], '\0');
        assert_true(b.cap >= b.len + 1);
        if (b.cap != prev_cap) {
            grew++;
            prev_cap = b.cap;
        }
    }
    assert_int_equal(b.len, 10000);
    assert_true(grew < 20); /* geometric, not one realloc per byte */
    for (size_t i = 0; i < b.len; i++) {
        assert_int_equal(b.base[i], 'a' + i % 26);
    }

    /* printf larger than the free space: grows and formats in full */
    opsc_buf_reset(&b);
    char big[5000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(opsc_buf_printf(&b, "<%s>", big), 0);
    assert_int_equal(b.len, sizeof(big) + 1);
    assert_int_equal(b.base[0], '<');
    assert_int_equal(b.base[b.len - 1], '>');
    assert_int_equal(b.base[b.len], '\0');

    /* exactly filling the remaining capacity */
    opsc_buf_t c = OPSC_BUF_INIT;
    assert_int_equal(opsc_buf_reserve(&c, 10), 0);
    size_t room = c.cap - 1;
    char *fill = malloc(room + 1);
    memset(fill, 'q', room);
    fill[room] = '\0';
    assert_int_equal(opsc_buf_printf(&c, "%s", fill), 0);
    assert_int_equal(c.len, room);
    assert_int_equal(opsc_buf_printf(&c, "%s", "x"), 0);
    assert_int_equal(c.len, room + 1);
    assert_int_equal(c.base[c.len], '\0');
    free(fill);

    /* absurd sizes fail cleanly */
    assert_int_equal(opsc_buf_reserve(&c, SIZE_MAX), OPSC_ENOMEM);
    assert_int_equal(opsc_buf_reserve(&c, SIZE_MAX - c.len), OPSC_ENOMEM);
    opsc_buf_free(&b);
    opsc_buf_free(&c);
}

static void test_alloc_wrappers(void **state) {
    (void)state;
    void *p = opsc_malloc(0);
    assert_non_null(p);
    p = opsc_realloc(p, 0);
    assert_non_null(p);
    opsc_free(p);
    p = opsc_calloc(0, 8);
    assert_non_null(p);
    opsc_free(p);
    int *z = opsc_calloc(4, sizeof(int));
    if (z == NULL) {
        fail_msg("opsc_calloc returned NULL");
        return;
    }
    assert_int_equal(z[0] | z[1] | z[2] | z[3], 0);
    opsc_free(z);
    assert_null(opsc_strdup(NULL));
    char *s = opsc_strdup("dup");
    assert_string_equal(s, "dup");
    opsc_free(s);
    opsc_free(NULL);
}

static void test_fault_injection(void **state) {
    (void)state;
    opsc__alloc_fail_after = 0;
    assert_null(opsc_malloc(1));
    assert_null(opsc_calloc(1, 1));
    assert_null(opsc_realloc(NULL, 1));
    assert_null(opsc_strdup("x"));
    opsc_buf_t b = OPSC_BUF_INIT;
    assert_int_equal(opsc_buf_appends(&b, "x"), OPSC_ENOMEM);
    assert_null(b.base);
    assert_int_equal(opsc_buf_printf(&b, "%d", 1), OPSC_ENOMEM);

    /* two more allocations succeed, then they fail again */
    opsc__alloc_fail_after = 2;
    void *a1 = opsc_malloc(8);
    void *a2 = opsc_malloc(8);
    void *a3 = opsc_malloc(8);
    assert_non_null(a1);
    assert_non_null(a2);
    assert_null(a3);
    opsc_free(a1);
    opsc_free(a2);

    /* a failed grow leaves the buffer as it was */
    opsc__alloc_fail_after = -1;
    assert_int_equal(opsc_buf_appends(&b, "keep"), 0);
    opsc__alloc_fail_after = 0;
    char big[1000];
    memset(big, 'x', sizeof(big));
    assert_int_equal(opsc_buf_append(&b, big, sizeof(big)), OPSC_ENOMEM);
    assert_string_equal(b.base, "keep");
    assert_int_equal(b.len, 4);

    /* other modules allocate through the same hook */
    assert_null(opsc_metrics_create());
    opsc__alloc_fail_after = -1;
    opsc_metrics_t *m = opsc_metrics_create();
    assert_non_null(m);
    opsc__alloc_fail_after = 0;
    assert_int_equal(opsc_metrics_register(m, NULL, NULL), OPSC_ENOMEM);
    opsc__alloc_fail_after = -1;
    opsc_metrics_destroy(m);
    opsc_buf_free(&b);
}

/* ---- metrics -------------------------------------------------------------------------------- */

static void collect_a(opsc_buf_t *out, void *arg) {
    opsc_metrics_family(out, "opsc_a_total", "counter", "Things counted by A.");
    opsc_metrics_sample_u64(out, "opsc_a_total", NULL, *(uint64_t *)arg);
}

static void collect_b(opsc_buf_t *out, void *arg) {
    (void)arg;
    opsc_metrics_family(out, "opsc_b", "gauge", "B's level.");
    opsc_metrics_sample(out, "opsc_b", "kind=\"x\"", 1.5);
}

static void test_metrics_registry(void **state) {
    (void)state;
    opsc_metrics_t *m = opsc_metrics_create();
    assert_non_null(m);
    opsc_buf_t out = OPSC_BUF_INIT;
    assert_int_equal(opsc_metrics_render(m, &out), 0);
    assert_string_equal(out.base, "");

    uint64_t count = 7;
    assert_int_equal(opsc_metrics_register(m, collect_a, &count), 0);
    assert_int_equal(opsc_metrics_register(m, collect_b, NULL), 0);
    assert_int_equal(opsc_metrics_render(m, &out), 0);
    assert_string_equal(out.base, "# HELP opsc_a_total Things counted by A.\n"
                                  "# TYPE opsc_a_total counter\n"
                                  "opsc_a_total 7\n"
                                  "# HELP opsc_b B's level.\n"
                                  "# TYPE opsc_b gauge\n"
                                  "opsc_b{kind=\"x\"} 1.5\n");

    opsc_metrics_unregister(m, collect_a, &count);
    opsc_metrics_unregister(m, collect_a, &count); /* not registered: no-op */
    opsc_buf_reset(&out);
    assert_int_equal(opsc_metrics_render(m, &out), 0);
    assert_string_equal(out.base, "# HELP opsc_b B's level.\n"
                                  "# TYPE opsc_b gauge\n"
                                  "opsc_b{kind=\"x\"} 1.5\n");

    /* many collectors: the array grows */
    uint64_t vals[40];
    for (int i = 0; i < 40; i++) {
        vals[i] = (uint64_t)i;
        assert_int_equal(opsc_metrics_register(m, collect_a, &vals[i]), 0);
    }
    opsc_buf_reset(&out);
    assert_int_equal(opsc_metrics_render(m, &out), 0);
    assert_non_null(strstr(out.base, "opsc_a_total 39\n"));
    opsc_metrics_unregister(m, collect_b, NULL);
    opsc_buf_reset(&out);
    assert_int_equal(opsc_metrics_render(m, &out), 0);
    assert_true(strncmp(out.base, "# HELP opsc_a_total", 19) == 0);
    opsc_buf_free(&out);
    opsc_metrics_destroy(m);
    opsc_metrics_destroy(NULL);
}

static void test_metrics_values(void **state) {
    (void)state;
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0.0, "0"},
        {-0.0, "0"},
        {42.0, "42"},
        {-3.0, "-3"},
        {1e6, "1000000"},
        {9007199254740991.0, "9007199254740991"},
        {0.25, "0.25"},
        {0.1, "0.1"},
        {1.0 / 3.0, "0.3333333333333333"},
        {-2.5e-7, "-2.5e-07"},
        {1e20, "1e+20"},
        {123456.789, "123456.789"},
    };
    char out[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        opsc_metrics_format_value(cases[i].v, out, sizeof(out));
        assert_string_equal(out, cases[i].text);
        assert_true(strtod(out, NULL) == cases[i].v);
    }
    opsc_metrics_format_value((double)NAN, out, sizeof(out));
    assert_string_equal(out, "NaN");
    opsc_metrics_format_value(HUGE_VAL, out, sizeof(out));
    assert_string_equal(out, "+Inf");
    opsc_metrics_format_value(-HUGE_VAL, out, sizeof(out));
    assert_string_equal(out, "-Inf");

    opsc_buf_t b = OPSC_BUF_INIT;
    opsc_metrics_sample(&b, "x", NULL, (double)NAN);
    opsc_metrics_sample(&b, "x", "", 2);
    opsc_metrics_sample(&b, "h_bucket", "le=\"+Inf\"", HUGE_VAL);
    opsc_metrics_sample_u64(&b, "big", "a=\"1\",b=\"2\"", UINT64_MAX);
    assert_string_equal(b.base, "x NaN\n"
                                "x 2\n"
                                "h_bucket{le=\"+Inf\"} +Inf\n"
                                "big{a=\"1\",b=\"2\"} 18446744073709551615\n");
    opsc_buf_free(&b);
}

static void test_metrics_escaping(void **state) {
    (void)state;
    opsc_buf_t b = OPSC_BUF_INIT;
    opsc_metrics_escape(&b, "a\"b\\c\nd");
    assert_string_equal(b.base, "a\\\"b\\\\c\\nd");
    opsc_buf_reset(&b);
    opsc_metrics_family(&b, "m", "untyped", "line one\nback\\slash \"quoted\"");
    assert_string_equal(b.base, "# HELP m line one\\nback\\\\slash \"quoted\"\n# TYPE m untyped\n");
    opsc_buf_free(&b);
}

/* ---- error codes ---------------------------------------------------------------------------- */

static void test_metrics_histogram(void **state) {
    (void)state;
    static const double le[] = {0.001, 0.01, 0.1};
    uint64_t b[3] = {0, 0, 0};
    opsc_metrics_observe(le, b, 3, 0.0005);
    opsc_metrics_observe(le, b, 3, 0.05);
    opsc_metrics_observe(le, b, 3, 2.0);
    assert_true(b[0] == 1 && b[1] == 1 && b[2] == 2); /* cumulative */
    opsc_buf_t out = OPSC_BUF_INIT;
    opsc_metrics_histogram(&out, "opsc_x_seconds", "X latency", le, b, 3, 3, 2.0505);
    assert_string_equal(out.base, "# HELP opsc_x_seconds X latency\n"
                                  "# TYPE opsc_x_seconds histogram\n"
                                  "opsc_x_seconds_bucket{le=\"0.001\"} 1\n"
                                  "opsc_x_seconds_bucket{le=\"0.01\"} 1\n"
                                  "opsc_x_seconds_bucket{le=\"0.1\"} 2\n"
                                  "opsc_x_seconds_bucket{le=\"+Inf\"} 3\n"
                                  "opsc_x_seconds_sum 2.0505\n"
                                  "opsc_x_seconds_count 3\n");
    opsc_buf_free(&out);
}

static void test_errors(void **state) {
    (void)state;
    assert_string_equal(opsc_strerror(OPSC_EQUEUE_FULL), "queue full");
    assert_string_equal(opsc_err_name(OPSC_EQUEUE_FULL), "OPSC_EQUEUE_FULL");
    assert_string_equal(opsc_strerror(OPSC_ECONFIG), "invalid configuration");
    assert_string_equal(opsc_err_name(OPSC_ECHILD), "OPSC_ECHILD");
    assert_string_equal(opsc_strerror(OPSC_ELOCKED), "resource locked by another process");
    assert_int_equal(OPSC_ECONFIG, -30001);
    assert_int_equal(OPSC_ECHILD, -30014);

    assert_string_equal(opsc_strerror(UV_ECONNREFUSED), "connection refused");
    assert_string_equal(opsc_err_name(UV_ECONNREFUSED), "ECONNREFUSED");
    assert_string_equal(opsc_strerror(-ENOENT), "no such file or directory");
    assert_string_equal(opsc_err_name(-ENOENT), "ENOENT");
    assert_string_equal(opsc_err_name(UV_EOF), "EOF");

    assert_string_equal(opsc_strerror(0), "success");
    assert_string_equal(opsc_strerror(-29999), "unknown error");
    assert_string_equal(opsc_strerror(OPSC__ERR_BASE - 99), "unknown error");
    assert_string_equal(opsc_strerror(12345), "unknown error");
    assert_string_equal(opsc_err_name(12345), "UNKNOWN");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_buf_basics, reset_faults),
        cmocka_unit_test_teardown(test_buf_growth, reset_faults),
        cmocka_unit_test_teardown(test_alloc_wrappers, reset_faults),
        cmocka_unit_test_teardown(test_fault_injection, reset_faults),
        cmocka_unit_test_teardown(test_metrics_registry, reset_faults),
        cmocka_unit_test_teardown(test_metrics_values, reset_faults),
        cmocka_unit_test_teardown(test_metrics_escaping, reset_faults),
        cmocka_unit_test_teardown(test_metrics_histogram, reset_faults),
        cmocka_unit_test_teardown(test_errors, reset_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
