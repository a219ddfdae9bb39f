/* Alert filters (src/api/alert_query.c): parsing, 422 fields, SQL with parameters, in memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "opsc/alert_query.h"

static int parse(const char *qs, opsc_alert_query_t *q, char *field) {
    char msg[256];
    return opsc_alert_query_parse(qs, q, field, 64, msg, sizeof(msg));
}

static void test_defaults(void **state) {
    (void)state;
    opsc_alert_query_t q;
    char field[64];
    assert_int_equal(parse(NULL, &q, field), 0);
    assert_int_equal(q.limit, 100);
    assert_int_equal(q.offset, 0);
    opsc_buf_t sql = OPSC_BUF_INIT;
    const char *params[OPSC_AQ_MAX_PARAMS];
    int np = 0;
    assert_int_equal(opsc_alert_query_where(&q, &sql, params, &np), 0);
    assert_int_equal(np, 0);
    assert_int_equal(opsc_alert_query_order(&q, &sql), 0);
    assert_string_equal(sql.base, " ORDER BY a.occurred_at DESC, a.id DESC");
    opsc_buf_free(&sql);
    opsc_alert_query_free(&q);
}

static void test_bad_parameters_named(void **state) {
    (void)state;
    static const struct {
        const char *qs, *field;
    } bad[] = {
        {"status=open", "status"},
        {"severity=major,nope", "severity"},
        {"category=", "category"},
        {"priority=P0", "priority"},
        {"since=2026-13-01T00:00:00Z", "since"},
        {"until=tomorrow", "until"},
        {"since=2026-01-01T00:00:00", "since"},
        {"sort=title", "sort"},
        {"limit=0", "limit"},
        {"limit=1001", "limit"},
        {"limit=5x", "limit"},
        {"offset=-3", "offset"},
        {"colour=red", "colour"},
        {"q=%ff", "q"},
        {"device_ip=%4", "device_ip"},
        {"tag=a%00b", "tag"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        opsc_alert_query_t q;
        char field[64] = "";
        assert_int_equal(parse(bad[i].qs, &q, field), -1);
        assert_string_equal(field, bad[i].field);
        opsc_alert_query_free(&q);
    }
    /* 33 values for one parameter. */
    char many[512] = "tag=";
    for (int i = 0; i < 33; i++) {
        strcat(many, i ? ",t" : "t");
    }
    opsc_alert_query_t q;
    char field[64];
    assert_int_equal(parse(many, &q, field), -1);
    assert_string_equal(field, "tag");
    opsc_alert_query_free(&q);
}

static void test_sql_is_parameterized(void **state) {
    (void)state;
    opsc_alert_query_t q;
    char field[64];
    assert_int_equal(parse("status=active,acknowledged&site=hq&tag=a,b&q=it%27s%20100%25"
                           "&since=2026-01-01T00:00:00Z&sort=-severity&limit=7&offset=14&"
                           "device_name=x%27%3B%20DROP%20TABLE%20alerts",
                           &q, field),
                     0);
    assert_int_equal(q.limit, 7);
    assert_int_equal(q.offset, 14);
    opsc_buf_t sql = OPSC_BUF_INIT;
    const char *params[OPSC_AQ_MAX_PARAMS];
    int np = 0;
    assert_int_equal(opsc_alert_query_where(&q, &sql, params, &np), 0);
    assert_int_equal(opsc_alert_query_order(&q, &sql), 0);
    assert_int_equal(np, 8);
    assert_string_equal(params[0], "active");
    assert_string_equal(params[1], "acknowledged");
    assert_string_equal(params[2], "x'; DROP TABLE alerts");
    assert_string_equal(params[3], "hq");
    assert_string_equal(params[6], "it's 100%");
    assert_string_equal(params[7], "2026-01-01T00:00:00Z");
    /* No value ever reaches the SQL text. */
    assert_null(strstr(sql.base, "DROP"));
    assert_null(strstr(sql.base, "100%"));
    assert_null(strstr(sql.base, "hq"));
    assert_non_null(strstr(sql.base, "a.status IN ($1, $2)"));
    assert_non_null(strstr(sql.base, "d.site IN ($4)"));
    assert_non_null(strstr(sql.base, "a.tags && ARRAY[$5, $6]::text[]"));
    assert_non_null(strstr(sql.base, "a.occurred_at >= $8::timestamptz"));
    assert_non_null(strstr(sql.base, "ORDER BY a.severity DESC, a.id DESC"));
    opsc_buf_free(&sql);
    opsc_alert_query_free(&q);
}

static void test_rfc3339(void **state) {
    (void)state;
    int64_t us;
    assert_int_equal(opsc_rfc3339_parse("1970-01-01T00:00:01Z", &us), 0);
    assert_int_equal(us, 1000000);
    assert_int_equal(opsc_rfc3339_parse("1970-01-01T01:00:01.5+01:00", &us), 0);
    assert_int_equal(us, 1500000);
    assert_int_equal(opsc_rfc3339_parse("2026-11-22T10:00:00.123456Z", &us), 0);
    assert_int_equal(us % 1000000, 123456);
    assert_int_not_equal(opsc_rfc3339_parse("2026-02-30T00:00:00Z", &us), 0);
    assert_int_not_equal(opsc_rfc3339_parse("2026-01-01T00:00:00Zjunk", &us), 0);
    assert_int_not_equal(opsc_rfc3339_parse("2026-01-01", &us), 0);
}

static void test_in_memory_agrees(void **state) {
    (void)state;
    json_t *a =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[s,s],s:s,s:s,s:s}", "status", "active",
                  "severity", "major", "category", "network", "priority", "P2", "device_ip",
                  "10.0.0.1", "device_name", "rtr", "source_system", "snmp", "alert_type",
                  "link_down", "tags", "x", "y", "title", "Interface Down - RTR", "message",
                  "it's 100% down", "occurred_at", "2026-01-01T00:30:00.000000Z");
    static const struct {
        const char *qs;
        const char *site;
        int match;
    } cases[] = {
        {"", NULL, 1},
        {"status=active", NULL, 1},
        {"status=resolved", NULL, 0},
        {"severity=critical,major&category=network", NULL, 1},
        {"priority=P1", NULL, 0},
        {"device_ip=10.0.0.2,10.0.0.1", NULL, 1},
        {"device_name=RTR", NULL, 0}, /* exact, as in SQL */
        {"site=hq", "hq", 1},
        {"site=hq", NULL, 0},
        {"source_system=snmp&alert_type=link_down", NULL, 1},
        {"tag=z,y", NULL, 1},
        {"tag=z", NULL, 0},
        {"q=interface%20down", NULL, 1},
        {"q=100%25", NULL, 1},
        {"q=nothing,rtr", NULL, 1},
        {"q=nothing", NULL, 0},
        {"since=2026-01-01T00:30:00Z", NULL, 1},
        {"since=2026-01-01T00:30:00.000001Z", NULL, 0},
        {"until=2026-01-01T00:30:00Z", NULL, 0},
        {"until=2026-01-01T01:30:00%2B01:00", NULL, 0},
        {"until=2026-01-01T01:31:00%2B01:00", NULL, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        opsc_alert_query_t q;
        char field[64];
        assert_int_equal(parse(cases[i].qs, &q, field), 0);
        if (opsc_alert_query_match(&q, a, cases[i].site, 0) != cases[i].match) {
            fail_msg("case %zu: %s", i, cases[i].qs);
        }
        opsc_alert_query_free(&q);
    }
    /* A status change reaches a client whatever its status filter says. */
    opsc_alert_query_t q;
    char field[64];
    assert_int_equal(parse("status=resolved&severity=major", &q, field), 0);
    assert_true(opsc_alert_query_match(&q, a, NULL, 1));
    opsc_alert_query_free(&q);
    json_decref(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_bad_parameters_named),
        cmocka_unit_test(test_sql_is_parameterized),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_in_memory_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
