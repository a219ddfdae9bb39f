/*
 * Per-source token bucket: rate and burst per source, sources independent,
 * v4 and v6 keys, storm reports at most once a second, bounded table with
 * least-recently-heard eviction, and the /metrics rendering (top sources only).
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <uv.h>

#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/rate_limit.h"

#define SEC 1000000000ull
#define T0 (1000 * SEC) /* any nonzero start */

static struct sockaddr_storage v4(const char *ip, int port) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    assert_int_equal(uv_ip4_addr(ip, port, (struct sockaddr_in *)&ss), 0);
    return ss;
}

static struct sockaddr_storage v6(const char *ip, int port) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    assert_int_equal(uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&ss), 0);
    return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static void test_create_rejects_bad_arguments(void **state) {
    (void)state;
    opsc_rate_limit_t *r = NULL;
    assert_int_equal(opsc_rate_limit_create(0, 10, 10, &r), OPSC_ECONFIG);
    assert_int_equal(opsc_rate_limit_create(10, 0, 10, &r), OPSC_ECONFIG);
    assert_int_equal(opsc_rate_limit_create(10, 10, 0, &r), OPSC_ECONFIG);
    assert_null(r);
}

/* A burst of `burst` passes at once, then exactly `rate` per second. */
static void test_burst_then_rate(void **state) {
    (void)state;
    opsc_rate_limit_t *r;
    assert_int_equal(opsc_rate_limit_create(100, 20, 16, &r), 0);
    struct sockaddr_storage a = v4("10.0.0.1", 162);
    uint64_t rep = 0;
    int pass = 0;
    for (int i = 0; i < 50; i++) {
        pass += opsc_rate_limit_check(r, SA(a), T0, &rep) == OPSC_RATE_PASS;
    }
    assert_int_equal(pass, 20);
    assert_int_equal(opsc_rate_limit_dropped(r), 30);
    /* Flood 10,000/s for 2 s: 100/s get through (plus nothing saved up). */
    pass = 0;
    for (uint64_t t = 0; t < 2 * SEC; t += SEC / 10000) {
        pass += opsc_rate_limit_check(r, SA(a), T0 + 1 + t, &rep) == OPSC_RATE_PASS;
    }
    assert_in_range(pass, 199, 201);
    /* After a quiet second the bucket is full again, and no fuller than burst. */
    pass = 0;
    for (int i = 0; i < 50; i++) {
        pass += opsc_rate_limit_check(r, SA(a), T0 + 10 * SEC, &rep) == OPSC_RATE_PASS;
    }
    assert_int_equal(pass, 20);
    opsc_rate_limit_destroy(r);
}

/* A steady sender under its rate is never cut. */
static void test_under_rate_never_dropped(void **state) {
    (void)state;
    opsc_rate_limit_t *r;
    assert_int_equal(opsc_rate_limit_create(50, 1, 16, &r), 0);
    struct sockaddr_storage a = v4("10.0.0.1", 162);
    uint64_t rep = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        assert_int_equal(opsc_rate_limit_check(r, SA(a), T0 + i * (SEC / 50), &rep),
                         OPSC_RATE_PASS);
    }
    assert_int_equal(opsc_rate_limit_dropped(r), 0);
    opsc_rate_limit_destroy(r);
}

/* One flooding source does not take another's budget; the port does not matter. */
static void test_sources_independent(void **state) {
    (void)state;
    opsc_rate_limit_t *r;
    assert_int_equal(opsc_rate_limit_create(10, 10, 16, &r), 0);
    struct sockaddr_storage a = v4("10.0.0.1", 1000);
    struct sockaddr_storage a2 = v4("10.0.0.1", 2000);
    struct sockaddr_storage b = v4("10.0.0.2", 1000);
    struct sockaddr_storage c = v6("2001:db8::1", 1000);
    struct sockaddr_storage c4 = v6("::ffff:10.0.0.2", 1000); /* same as b */
    uint64_t rep = 0;
    for (int i = 0; i < 1000; i++) {
        (void)opsc_rate_limit_check(r, SA(a), T0, &rep);
        (void)opsc_rate_limit_check(r, SA(a2), T0, &rep);
    }
    assert_int_equal(opsc_rate_limit_source_dropped(r, SA(a)), 1990);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(opsc_rate_limit_check(r, SA(c), T0, &rep), OPSC_RATE_PASS);
    }
    for (int i = 0; i < 5; i++) {
        assert_int_equal(opsc_rate_limit_check(r, SA(b), T0, &rep), OPSC_RATE_PASS);
        assert_int_equal(opsc_rate_limit_check(r, SA(c4), T0, &rep), OPSC_RATE_PASS);
    }
    assert_int_not_equal(opsc_rate_limit_check(r, SA(b), T0, &rep), OPSC_RATE_PASS);
    assert_int_equal(opsc_rate_limit_sources(r), 3);
    assert_int_equal(opsc_rate_limit_dropped(r), 1991);
    opsc_rate_limit_destroy(r);
}

/* Reports: the first drop reports, then at most one per second with the count since. */
static void test_reports_once_per_second(void **state) {
    (void)state;
    opsc_rate_limit_t *r;
    assert_int_equal(opsc_rate_limit_create(1, 1, 16, &r), 0);
    struct sockaddr_storage a = v4("192.0.2.7", 162);
    uint64_t rep = 0;
    uint64_t total_reported = 0;
    int reports = 0;
    assert_int_equal(opsc_rate_limit_check(r, SA(a), T0, &rep), OPSC_RATE_PASS);
    /* 10 s at 1000/s: 10 pass, the rest drop, one report per second. */
    for (uint64_t t = 1; t <= 10000; t++) {
        opsc_rate_verdict_t v = opsc_rate_limit_check(r, SA(a), T0 + t * (SEC / 1000), &rep);
        if (v == OPSC_RATE_DROP_REPORT) {
            reports++;
            total_reported += rep;
        }
    }
    assert_int_equal(reports, 10);
    uint64_t dropped = opsc_rate_limit_dropped(r);
    assert_in_range(dropped, 9985, 9991);
    /* What was not reported yet goes with the next report. */
    assert_true(total_reported <= dropped);
    assert_true(dropped - total_reported < 1000);
    opsc_rate_limit_destroy(r);
}

/* A full table evicts the least recently heard source, never a busy one. */
static void test_bounded_table_evicts_idle(void **state) {
    (void)state;
    opsc_rate_limit_t *r;
    enum { MAX = 64 };
    assert_int_equal(opsc_rate_limit_create(1, 1, MAX, &r), 0);
    struct sockaddr_storage hot = v4("10.9.9.9", 162);
    uint64_t rep = 0;
    uint64_t t = T0;
    char ip[32];
    (void)opsc_rate_limit_check(r, SA(hot), t, &rep);
    /* 100,000 one-off sources interleaved with the flooding one. */
    for (int i = 0; i < 100000; i++) {
        snprintf(ip, sizeof(ip), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        struct sockaddr_storage s = v4(ip, 162);
        assert_int_equal(opsc_rate_limit_check(r, SA(s), ++t, &rep), OPSC_RATE_PASS);
        assert_int_not_equal(opsc_rate_limit_check(r, SA(hot), ++t, &rep), OPSC_RATE_PASS);
    }
    assert_int_equal(opsc_rate_limit_sources(r), MAX);
    assert_int_equal(opsc_rate_limit_evictions(r), 100000 + 1 - MAX);
    assert_int_equal(opsc_rate_limit_source_dropped(r, SA(hot)), 100000);
    /* The most recent sources are still there (their buckets are empty). */
    for (int i = 100000 - (MAX - 1); i < 100000; i++) {
        snprintf(ip, sizeof(ip), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        struct sockaddr_storage s = v4(ip, 162);
        assert_int_not_equal(opsc_rate_limit_check(r, SA(s), t, &rep), OPSC_RATE_PASS);
    }
    opsc_rate_limit_destroy(r);
}

static int count_lines(const char *text, const char *prefix) {
    int n = 0;
    size_t pl = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        n += strncmp(p, prefix, pl) == 0;
    }
    return n;
}

/* /metrics: the total, and by name only the 10 sources that dropped most. */
static void test_metrics_top_sources(void **state) {
    (void)state;
    opsc_rate_limit_t *r;
    assert_int_equal(opsc_rate_limit_create(1, 1, 1024, &r), 0);
    uint64_t now = uv_hrtime();
    uint64_t rep = 0;
    char ip[32];
    uint64_t total = 0;
    for (int s = 1; s <= 30; s++) {
        snprintf(ip, sizeof(ip), "172.16.0.%d", s);
        struct sockaddr_storage a = v4(ip, 162);
        for (int i = 0; i <= s; i++) { /* source s drops s */
            (void)opsc_rate_limit_check(r, SA(a), now, &rep);
        }
        total += (uint64_t)s;
    }
    opsc_buf_t out = OPSC_BUF_INIT;
    opsc_rate_limit_metrics(&out, r);
    char line[128];
    snprintf(line, sizeof(line), "opsc_trap_rate_limited_total %llu\n", (unsigned long long)total);
    assert_non_null(strstr(out.base, line));
    assert_int_equal(count_lines(out.base, "opsc_trap_rate_limited_by_source_total{"), 10);
    assert_non_null(
        strstr(out.base, "opsc_trap_rate_limited_by_source_total{source=\"172.16.0.30\"} 30\n"));
    assert_non_null(
        strstr(out.base, "opsc_trap_rate_limited_by_source_total{source=\"172.16.0.21\"} 21\n"));
    assert_null(strstr(out.base, "source=\"172.16.0.20\""));
    /* Sorted: most dropped first. */
    assert_true(strstr(out.base, "172.16.0.30") < strstr(out.base, "172.16.0.29"));
    opsc_buf_free(&out);
    /* Limit off: the families are still there, reading 0. */
    opsc_rate_limit_metrics(&out, NULL);
    assert_non_null(strstr(out.base, "opsc_trap_rate_limited_total 0\n"));
    opsc_buf_free(&out);
    opsc_rate_limit_destroy(r);
}

static void test_format_source(void **state) {
    (void)state;
    char s[64];
    struct sockaddr_storage a = v6("::ffff:192.0.2.1", 5);
    opsc_rate_limit_format_source(SA(a), s, sizeof(s));
    assert_string_equal(s, "192.0.2.1");
    a = v6("2001:db8::5", 5);
    opsc_rate_limit_format_source(SA(a), s, sizeof(s));
    assert_string_equal(s, "2001:db8::5");
    a = v4("127.0.0.2", 5);
    opsc_rate_limit_format_source(SA(a), s, sizeof(s));
    assert_string_equal(s, "127.0.0.2");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_rejects_bad_arguments),
        cmocka_unit_test(test_burst_then_rate),
        cmocka_unit_test(test_under_rate_never_dropped),
        cmocka_unit_test(test_sources_independent),
        cmocka_unit_test(test_reports_once_per_second),
        cmocka_unit_test(test_bounded_table_evicts_idle),
        cmocka_unit_test(test_metrics_top_sources),
        cmocka_unit_test(test_format_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
