/* Logging: line format, escaping (logfmt and JSON), truncation, threads, rate limiting. */
/* cmocka.h needs these first, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "opsc/error.h"
#include "opsc/log.h"

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        const char *h_ = (hay);                                                                    \
        const char *n_ = (needle);                                                                 \
        if (strstr(h_, n_) == NULL) {                                                              \
            fail_msg("\"%s\" does not contain \"%s\"", h_, n_);                                    \
        }                                                                                          \
    } while (0)

/* Output goes to a temp file opened O_APPEND; each test reads what was written. */
static int log_fd = -1;
static char log_path[64];

static int setup(void **state) {
    (void)state;
    snprintf(log_path, sizeof(log_path), "/tmp/opsc_test_log_XXXXXX");
    int fd = mkstemp(log_path);
    assert_true(fd >= 0);
    close(fd);
    log_fd = open(log_path, O_WRONLY | O_APPEND | O_CLOEXEC);
    assert_true(log_fd >= 0);
    opsc_log_set_fd(log_fd);
    opsc_log_set_level(OPSC_LOG_INFO);
    opsc_log_set_format(OPSC_LOG_LOGFMT);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    opsc_log_set_fd(-1);
    close(log_fd);
    unlink(log_path);
    opsc_log_set_level(OPSC_LOG_INFO);
    opsc_log_set_format(OPSC_LOG_LOGFMT);
    return 0;
}

/* Everything logged so far (caller frees). */
static char *read_log(size_t *len_out) {
    FILE *f = fopen(log_path, "rb");
    assert_non_null(f);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (cap - len < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        if (n == 0) {
            break;
        }
        len += n;
    }
    fclose(f);
    buf[len] = '\0';
    if (len_out != NULL) {
        *len_out = len;
    }
    return buf;
}

static void truncate_log(void) {
    assert_int_equal(ftruncate(log_fd, 0), 0);
}

/* "2026-11-22T02:14:01.123Z" */
static void assert_timestamp(const char *ts) {
    static const char pattern[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (size_t i = 0; i < sizeof(pattern) - 1; i++) {
        if (pattern[i] == 'd') {
            assert_true(ts[i] >= '0' && ts[i] <= '9');
        } else {
            assert_int_equal(ts[i], pattern[i]);
        }
    }
}

static void test_logfmt_line(void **state) {
    (void)state;
    opsc_log_info("store", "connected to %s", "database");
    char *out = read_log(NULL);
    assert_int_equal(strncmp(out, "ts=", 3), 0);
    assert_timestamp(out + 3);
    assert_string_equal(out + 3 + 24, " level=info comp=store msg=\"connected to database\"\n");
    free(out);

    truncate_log();
    opsc_log_err("snmp_trap:0", "bad packet");
    opsc_log_warn("http", "slow");
    opsc_log_write(OPSC_LOG_INFO, NULL, "no component");
    opsc_log_write(OPSC_LOG_INFO, "a b=c", "odd component");
    out = read_log(NULL);
    assert_contains(out, " level=error comp=snmp_trap:0 msg=\"bad packet\"\n");
    assert_contains(out, " level=warn comp=http msg=\"slow\"\n");
    assert_contains(out, " level=info comp=- msg=\"no component\"\n");
    assert_contains(out, " level=info comp=\"a b=c\" msg=\"odd component\"\n");
    free(out);
}

static void test_levels(void **state) {
    (void)state;
    opsc_log_set_level(OPSC_LOG_WARN);
    assert_int_equal(opsc_log_get_level(), OPSC_LOG_WARN);
    assert_true(opsc_log_enabled(OPSC_LOG_ERROR));
    assert_true(opsc_log_enabled(OPSC_LOG_WARN));
    assert_false(opsc_log_enabled(OPSC_LOG_INFO));
    opsc_log_info("x", "hidden");
    opsc_log_debug("x", "hidden %d", 1);
    opsc_log_warn("x", "shown");
    opsc_log_set_level(OPSC_LOG_TRACE);
    opsc_log_debug("x", "debug shown");
    opsc_log_write(OPSC_LOG_TRACE, "x", "trace shown");
    char *out = read_log(NULL);
    assert_null(strstr(out, "hidden"));
    assert_contains(out, "level=warn comp=x msg=\"shown\"");
    assert_contains(out, "level=debug comp=x msg=\"debug shown\"");
    assert_contains(out, "level=trace comp=x msg=\"trace shown\"");
    free(out);

    opsc_log_level_t l;
    assert_int_equal(opsc_log_level_parse("DEBUG", &l), 0);
    assert_int_equal(l, OPSC_LOG_DEBUG);
    assert_int_equal(opsc_log_level_parse("warning", &l), 0);
    assert_int_equal(l, OPSC_LOG_WARN);
    assert_int_equal(opsc_log_level_parse("verbose", &l), OPSC_ECONFIG);
    assert_int_equal(opsc_log_level_parse(NULL, &l), OPSC_ECONFIG);
    assert_string_equal(opsc_log_level_name(OPSC_LOG_ERROR), "error");
    assert_string_equal(opsc_log_level_name(OPSC_LOG_TRACE), "trace");
    assert_string_equal(opsc_log_level_name((opsc_log_level_t)42), "unknown");
    opsc_log_format_t f;
    assert_int_equal(opsc_log_format_parse("JSON", &f), 0);
    assert_int_equal(f, OPSC_LOG_JSON);
    assert_int_equal(opsc_log_format_parse("logfmt", &f), 0);
    assert_int_equal(f, OPSC_LOG_LOGFMT);
    assert_int_equal(opsc_log_format_parse("xml", &f), OPSC_ECONFIG);
    assert_string_equal(opsc_log_format_name(OPSC_LOG_JSON), "json");
    opsc_log_set_format(OPSC_LOG_JSON);
    assert_int_equal(opsc_log_get_format(), OPSC_LOG_JSON);
}

static void test_logfmt_escaping(void **state) {
    (void)state;
    opsc_log_info("t",
                  "quote\" back\\slash\nnew\ttab\rcr\x01 ctl\x7f del caf\xc3\xa9 bad\xff\xc3 end");
    char *out = read_log(NULL);
    assert_contains(out, "msg=\"quote\\\" back\\\\slash\\nnew\\ttab\\rcr\\x01 ctl\\x7f del "
                         "caf\xc3\xa9 bad\\xff\\xc3 end\"\n");
    /* one line: the only newline is the last byte */
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
    free(out);
}

static json_t *parse_json_line(const char *line) {
    json_error_t jerr;
    json_t *j = json_loads(line, 0, &jerr);
    if (j == NULL) {
        fail_msg("not JSON (%s): %s", jerr.text, line);
    }
    return j;
}

static void test_json(void **state) {
    (void)state;
    opsc_log_set_format(OPSC_LOG_JSON);
    const char *msg =
        "quote\" back\\slash\nnew\ttab\x01\x1f caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    opsc_log_info("store", "%s", msg);
    char *out = read_log(NULL);
    assert_int_equal(strncmp(out, "{\"ts\":\"", 7), 0);
    assert_timestamp(out + 7);
    assert_contains(out,
                    "\",\"level\":\"info\",\"comp\":\"store\",\"msg\":\"quote\\\" back\\\\slash"
                    "\\nnew\\ttab\\u0001\\u001f caf");
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
    json_t *j = parse_json_line(out);
    assert_string_equal(json_string_value(json_object_get(j, "msg")), msg);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(j, "comp")), "store");
    assert_int_equal(strlen(json_string_value(json_object_get(j, "ts"))), 24);
    assert_int_equal(json_object_size(j), 4);
    json_decref(j);
    free(out);

    /* invalid UTF-8 (stray bytes, overlong, surrogate, cut sequence) -> U+FFFD, still valid JSON */
    truncate_log();
    opsc_log_warn("snmp", "a\xff"
                          "b\xc0\xaf"
                          "c\xed\xa0\x80"
                          "d\xe2\x82");
    out = read_log(NULL);
    j = parse_json_line(out);
    assert_string_equal(json_string_value(json_object_get(j, "msg")),
                        "a\xef\xbf\xbd"
                        "b\xef\xbf\xbd\xef\xbf\xbd"
                        "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                        "d\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(j);
    free(out);
}

static void check_truncated(opsc_log_format_t fmt, char fill) {
    size_t n = 20000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, fill, n);
    big[n] = '\0';
    truncate_log();
    opsc_log_set_format(fmt);
    opsc_log_info("big", "%s", big);
    size_t len;
    char *out = read_log(&len);
    assert_true(len <= 8192);
    assert_true(len > 4096);
    assert_ptr_equal(strchr(out, '\n'), out + len - 1);
    if (fmt == OPSC_LOG_JSON) {
        assert_string_equal(out + len - 6, "...\"}\n");
        json_t *j = parse_json_line(out);
        const char *m = json_string_value(json_object_get(j, "msg"));
        assert_non_null(m);
        size_t ml = strlen(m);
        assert_string_equal(m + ml - 3, "...");
        for (size_t i = 0; i + 3 < ml; i++) {
            assert_int_equal(m[i], fill);
        }
        json_decref(j);
    } else {
        assert_string_equal(out + len - 5, "...\"\n");
        /* never a dangling backslash before the marker */
        if (fill == '"') {
            assert_true(strstr(out, "\\\"...\"\n") != NULL);
        }
    }
    free(out);
    free(big);
}

static void test_truncation(void **state) {
    (void)state;
    check_truncated(OPSC_LOG_LOGFMT, 'a');
    check_truncated(OPSC_LOG_LOGFMT, '"');
    check_truncated(OPSC_LOG_JSON, 'a');
    check_truncated(OPSC_LOG_JSON, '\\');
    check_truncated(OPSC_LOG_JSON, '\x01');

    /* multi-byte characters are never cut in half */
    size_t n = 9000;
    char *big = malloc(n * 2 + 1);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++) {
        big[2 * i] = '\xc3';
        big[2 * i + 1] = '\xa9';
    }
    big[2 * n] = '\0';
    truncate_log();
    opsc_log_set_format(OPSC_LOG_JSON);
    opsc_log_info("big", "%s", big);
    char *out = read_log(NULL);
    json_t *j = parse_json_line(out);
    const char *m = json_string_value(json_object_get(j, "msg"));
    assert_null(strstr(m, "\xef\xbf\xbd"));
    json_decref(j);
    free(out);
    free(big);
}

#define THREADS 8
#define LINES 300

static void *thread_main(void *arg) {
    int id = (int)(intptr_t)arg;
    char payload[1500];
    memset(payload, 'a' + id, sizeof(payload) - 1);
    payload[sizeof(payload) - 1] = '\0';
    for (int i = 0; i < LINES; i++) {
        opsc_log_info("thr", "t%d n%04d %s", id, i, payload);
    }
    return NULL;
}

static void test_threads_never_interleave(void **state) {
    (void)state;
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, (void *)(intptr_t)i), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    size_t len;
    char *out = read_log(&len);
    int count[THREADS] = {0};
    int lines = 0;
    for (char *line = out; *line != '\0';) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        int id, n;
        const char *m = strstr(line, "msg=\"t");
        assert_non_null(m);
        assert_int_equal(sscanf(m, "msg=\"t%d n%d ", &id, &n), 2);
        assert_true(id >= 0 && id < THREADS);
        /* the payload is intact: 1499 copies of this thread's letter, then the quote */
        const char *p = strchr(strchr(m + 6, ' ') + 1, ' ') + 1;
        for (int k = 0; k < 1499; k++) {
            if (p[k] != 'a' + id) {
                fail_msg("line %d corrupted at %d", lines, k);
            }
        }
        assert_string_equal(p + 1499, "\"");
        count[id]++;
        lines++;
        line = nl + 1;
    }
    assert_int_equal(lines, THREADS * LINES);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(count[i], LINES);
    }
    free(out);
}

static void test_ratelimit_clock(void **state) {
    (void)state;
    opsc_log_ratelimit_t rl = OPSC_LOG_RATELIMIT_INIT(1000, 3);
    unsigned long long sup = 99;
    unsigned long long t = 5000;
    assert_true(opsc__log_ratelimit_ok_at(&rl, t, &sup));
    assert_int_equal(sup, 0);
    assert_true(opsc__log_ratelimit_ok_at(&rl, t + 1, &sup));
    assert_true(opsc__log_ratelimit_ok_at(&rl, t + 2, &sup));
    assert_false(opsc__log_ratelimit_ok_at(&rl, t + 3, &sup));
    assert_false(opsc__log_ratelimit_ok_at(&rl, t + 500, &sup));
    assert_false(opsc__log_ratelimit_ok_at(&rl, t + 999, &sup));
    /* new window: allowed again, and told how many were dropped */
    assert_true(opsc__log_ratelimit_ok_at(&rl, t + 1000, &sup));
    assert_int_equal(sup, 3);
    assert_true(opsc__log_ratelimit_ok_at(&rl, t + 1001, &sup));
    assert_int_equal(sup, 0);
    assert_true(opsc__log_ratelimit_ok_at(&rl, t + 1002, &sup));
    assert_false(opsc__log_ratelimit_ok_at(&rl, t + 1003, NULL));
    /* a long quiet period */
    assert_true(opsc__log_ratelimit_ok_at(&rl, t + 100000, &sup));
    assert_int_equal(sup, 1);

    /* burst 0 still lets one line through per window rather than none ever */
    opsc_log_ratelimit_t one = OPSC_LOG_RATELIMIT_INIT(100, 0);
    assert_true(opsc__log_ratelimit_ok_at(&one, 1, NULL));
    assert_false(opsc__log_ratelimit_ok_at(&one, 2, NULL));
}

static void test_ratelimit_monotonic(void **state) {
    (void)state;
    opsc_log_ratelimit_t rl = OPSC_LOG_RATELIMIT_INIT(50, 2);
    unsigned long long sup = 0;
    assert_true(opsc_log_ratelimit_ok(&rl, &sup));
    assert_true(opsc_log_ratelimit_ok(&rl, &sup));
    for (int i = 0; i < 10; i++) {
        assert_false(opsc_log_ratelimit_ok(&rl, &sup));
    }
    struct timespec ts = {0, 80 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_true(opsc_log_ratelimit_ok(&rl, &sup));
    assert_int_equal(sup, 10);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_logfmt_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logfmt_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_never_interleave, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ratelimit_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ratelimit_monotonic, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
