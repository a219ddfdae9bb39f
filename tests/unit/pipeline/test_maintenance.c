/*
 * Maintenance windows: matching (CIDR v4/v6, name glob, site, category,
 * alert_type), occurrence intervals and boundaries of the snapshot, and the
 * store's loader query against a real PostgreSQL: recurrences expanded into
 * UTC intervals across daylight-saving changes.
 */
/* cmocka.h needs these first, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "opsc/log.h"
#include "opsc/maintenance.h"
#include "opsc/migrate.h"
#include "opsc/pg.h"
#include "opsc/store_sink.h"
#include "support/loop_util.h"
#include "support/pg_harness.h"

#define HOUR_US (3600LL * 1000000)

/* "2026-03-29T01:00:00Z" -> Unix microseconds. */
static int64_t utc(const char *s) {
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    assert_int_equal(sscanf(s, "%d-%d-%dT%d:%d:%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec),
                     6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000000;
}

static opsc_maint_row_t row(const char *id, int64_t start, int64_t end) {
    return (opsc_maint_row_t){.window_id = id, .name = id, .start_us = start, .end_us = end};
}

static opsc_maint_subject_t subj(const char *ip, const char *name, const char *site,
                                 const char *category, const char *type) {
    return (opsc_maint_subject_t){ip, name, site, category, type};
}

/* One window with the given row's matchers, always active. */
static opsc_maint_t *one(opsc_maint_row_t r) {
    r.window_id = "w";
    r.start_us = INT64_MIN;
    r.end_us = INT64_MAX;
    opsc_maint_t *m = opsc_maint_create(&r, 1);
    assert_non_null(m);
    return m;
}

static int hit(const opsc_maint_t *m, opsc_maint_subject_t s) {
    return opsc_maint_match(m, &s, 0) == 0;
}

/* ---- matching ------------------------------------------------------------------------ */

static void test_cidr_v4(void **state) {
    (void)state;
    opsc_maint_t *m = one((opsc_maint_row_t){.device_ip_cidr = "10.1.2.0/24"});
    assert_true(hit(m, subj("10.1.2.0", NULL, NULL, "network", "x")));
    assert_true(hit(m, subj("10.1.2.255", NULL, NULL, "network", "x")));
    assert_false(hit(m, subj("10.1.3.1", NULL, NULL, "network", "x")));
    assert_false(hit(m, subj("2001:db8::1", NULL, NULL, "network", "x")));
    assert_false(hit(m, subj(NULL, "sw1", NULL, "network", "x")));
    assert_true(hit(m, subj("::ffff:10.1.2.7", NULL, NULL, "network", "x"))); /* v4-mapped */
    opsc_maint_destroy(m);

    m = one((opsc_maint_row_t){.device_ip_cidr = "10.1.2.3/32"});
    assert_true(hit(m, subj("10.1.2.3", NULL, NULL, NULL, NULL)));
    assert_false(hit(m, subj("10.1.2.4", NULL, NULL, NULL, NULL)));
    opsc_maint_destroy(m);

    m = one((opsc_maint_row_t){.device_ip_cidr = "10.1.2.3"}); /* bare address: a host */
    assert_true(hit(m, subj("10.1.2.3", NULL, NULL, NULL, NULL)));
    assert_false(hit(m, subj("10.1.2.2", NULL, NULL, NULL, NULL)));
    opsc_maint_destroy(m);

    m = one((opsc_maint_row_t){.device_ip_cidr = "172.16.0.0/12"}); /* not on a byte boundary */
    assert_true(hit(m, subj("172.31.255.255", NULL, NULL, NULL, NULL)));
    assert_false(hit(m, subj("172.32.0.0", NULL, NULL, NULL, NULL)));
    opsc_maint_destroy(m);

    m = one((opsc_maint_row_t){.device_ip_cidr = "0.0.0.0/0"});
    assert_true(hit(m, subj("192.0.2.1", NULL, NULL, NULL, NULL)));
    assert_false(hit(m, subj("2001:db8::1", NULL, NULL, NULL, NULL)));
    opsc_maint_destroy(m);
}

static void test_cidr_v6(void **state) {
    (void)state;
    opsc_maint_t *m = one((opsc_maint_row_t){.device_ip_cidr = "2001:db8:aa::/48"});
    assert_true(hit(m, subj("2001:db8:aa::1", NULL, NULL, NULL, NULL)));
    assert_true(hit(m, subj("2001:db8:aa:ffff::2", NULL, NULL, NULL, NULL)));
    assert_false(hit(m, subj("2001:db8:ab::1", NULL, NULL, NULL, NULL)));
    assert_false(hit(m, subj("10.0.0.1", NULL, NULL, NULL, NULL)));
    opsc_maint_destroy(m);

    m = one((opsc_maint_row_t){.device_ip_cidr = "2001:db8::/127"});
    assert_true(hit(m, subj("2001:db8::1", NULL, NULL, NULL, NULL)));
    assert_false(hit(m, subj("2001:db8::2", NULL, NULL, NULL, NULL)));
    opsc_maint_destroy(m);
}

static void test_glob_site_category_type(void **state) {
    (void)state;
    opsc_maint_t *m = one((opsc_maint_row_t){.device_name_glob = "core-sw-??.FRA*"});
    assert_true(hit(m, subj("10.0.0.1", "core-sw-01.fra1", NULL, NULL, NULL)));
    assert_true(
        hit(m, subj("10.0.0.1", "CORE-SW-02.fra", NULL, NULL, NULL))); /* case-insensitive */
    assert_false(hit(m, subj("10.0.0.1", "core-sw-1.fra1", NULL, NULL, NULL)));
    assert_false(hit(m, subj("10.0.0.1", NULL, NULL, NULL, NULL))); /* unknown name never matches */
    opsc_maint_destroy(m);

    m = one((opsc_maint_row_t){.site = "dc-east"});
    assert_true(hit(m, subj("10.0.0.1", "a", "dc-east", NULL, NULL)));
    assert_false(hit(m, subj("10.0.0.1", "a", "dc-west", NULL, NULL)));
    assert_false(hit(m, subj("10.0.0.1", "a", NULL, NULL, NULL)));
    opsc_maint_destroy(m);

    m = one((opsc_maint_row_t){.category = "power"});
    assert_true(hit(m, subj("10.0.0.1", NULL, NULL, "power", "ups_on_battery")));
    assert_false(hit(m, subj("10.0.0.1", NULL, NULL, "network", "ups_on_battery")));
    opsc_maint_destroy(m);

    m = one((opsc_maint_row_t){.alert_type = "link_down"});
    assert_true(hit(m, subj("10.0.0.1", NULL, NULL, "network", "link_down")));
    assert_false(hit(m, subj("10.0.0.1", NULL, NULL, "network", "link_up")));
    opsc_maint_destroy(m);

    /* Every matcher that is set must match. */
    m = one((opsc_maint_row_t){.device_ip_cidr = "10.0.0.0/8",
                               .device_name_glob = "edge-*",
                               .site = "lab",
                               .category = "network",
                               .alert_type = "link_down"});
    assert_true(hit(m, subj("10.9.9.9", "edge-1", "lab", "network", "link_down")));
    assert_false(hit(m, subj("11.9.9.9", "edge-1", "lab", "network", "link_down")));
    assert_false(hit(m, subj("10.9.9.9", "core-1", "lab", "network", "link_down")));
    assert_false(hit(m, subj("10.9.9.9", "edge-1", "dc", "network", "link_down")));
    assert_false(hit(m, subj("10.9.9.9", "edge-1", "lab", "power", "link_down")));
    assert_false(hit(m, subj("10.9.9.9", "edge-1", "lab", "network", "cold_start")));
    opsc_maint_destroy(m);
}

static void test_bad_rows_skipped(void **state) {
    (void)state;
    opsc_maint_row_t rows[] = {
        {.window_id = "a", .device_ip_cidr = "10.0.0.0/33", .start_us = 0, .end_us = 10},
        {.window_id = "b", .device_ip_cidr = "nonsense", .start_us = 0, .end_us = 10},
        {.window_id = "c", .category = "weather", .start_us = 0, .end_us = 10},
        {.window_id = "d", .site = "lab", .start_us = 10, .end_us = 10},
        {.window_id = "e", .site = "lab", .start_us = 0, .end_us = 10},
    };
    opsc_maint_t *m = opsc_maint_create(rows, 5);
    assert_non_null(m);
    assert_int_equal(opsc_maint_window_count(m), 1);
    assert_int_equal(opsc_maint_skipped(m), 4);
    assert_string_equal(opsc_maint_window_name(m, 0), "e");
    opsc_maint_destroy(m);
    m = opsc_maint_create(NULL, 0);
    assert_non_null(m);
    assert_int_equal(opsc_maint_window_count(m), 0);
    assert_int_equal(opsc_maint_next_boundary(m, 0), INT64_MAX);
    opsc_maint_destroy(m);
}

static void test_intervals_and_boundaries(void **state) {
    (void)state;
    /* Window "w" twice (a recurrence), "x" once and open-ended. */
    opsc_maint_row_t rows[] = {row("w", 100, 200), row("w", 1100, 1200), row("x", 500, INT64_MAX)};
    rows[0].site = rows[1].site = "lab";
    rows[2].alert_type = "link_down";
    opsc_maint_t *m = opsc_maint_create(rows, 3);
    assert_int_equal(opsc_maint_window_count(m), 2);
    opsc_maint_subject_t s = subj("10.0.0.1", "sw", "lab", "network", "cold_start");
    assert_int_equal(opsc_maint_match(m, &s, 99), -1);
    assert_int_equal(opsc_maint_match(m, &s, 100), 0); /* start inclusive */
    assert_int_equal(opsc_maint_match(m, &s, 199), 0);
    assert_int_equal(opsc_maint_match(m, &s, 200), -1); /* end exclusive */
    assert_int_equal(opsc_maint_match(m, &s, 1150), 0);
    s.alert_type = "link_down";
    s.site = NULL;
    assert_int_equal(opsc_maint_match(m, &s, 499), -1);
    assert_int_equal(opsc_maint_match(m, &s, 1000000), 1);
    assert_int_equal(opsc_maint_next_boundary(m, 0), 100);
    assert_int_equal(opsc_maint_next_boundary(m, 100), 200);
    assert_int_equal(opsc_maint_next_boundary(m, 200), 500);
    assert_int_equal(opsc_maint_next_boundary(m, 500), 1100);
    assert_int_equal(opsc_maint_next_boundary(m, 1200), INT64_MAX);
    opsc_maint_destroy(m);
}

/* ---- the loader query against PostgreSQL ---------------------------------------------- */

static opsc_test_pg_t g_pg;
static uv_loop_t g_loop;

static void on_migrated(int err, int applied, const char *message, void *arg) {
    (void)applied;
    if (err) {
        fprintf(stderr, "migration failed: %s\n", message);
    }
    *(int *)arg = err ? -1 : 1;
}

static void set_flag(void *arg) {
    *(int *)arg = 1;
}

typedef struct loaded_s {
    int done, err;
    opsc_store_maint_row_t *rows;
    size_t n;
} loaded_t;

static void on_loaded(opsc_store_maint_row_t *rows, size_t n, int err, void *arg) {
    loaded_t *l = arg;
    l->done = 1;
    l->err = err;
    l->rows = rows;
    l->n = n;
}

static void psql(const char *sql) {
    char out[1024];
    assert_int_equal(opsc_test_pg_psql(&g_pg, sql, out, sizeof(out)), 0);
}

/* Occurrences of window `name` as "start/end" lines in UTC, from the real loader. */
static void occurrences(loaded_t *l, const char *name, char *out, size_t outlen) {
    out[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->rows[i].name, name) != 0) {
            continue;
        }
        char a[32] = "-", b[32] = "-";
        if (l->rows[i].start_us != INT64_MIN) {
            opsc_time_format(l->rows[i].start_us, a);
        }
        if (l->rows[i].end_us != INT64_MAX) {
            opsc_time_format(l->rows[i].end_us, b);
        }
        len += (size_t)snprintf(out + len, outlen - len, "%s/%s\n", a, b);
        assert_true(len < outlen);
    }
}

static void test_loader_recurrence_dst(void **state) {
    (void)state;
    char ci[512];
    assert_int_equal(opsc_test_pg_create_db(&g_pg, "maint", ci, sizeof(ci)), 0);
    snprintf(g_pg.conninfo, sizeof(g_pg.conninfo), "%s", ci);
    opsc_pg_options_t o = {.conninfo = ci,
                           .readers = 1,
                           .queue_max = 100,
                           .connect_timeout_ms = 5000,
                           .reconnect_min_ms = 20,
                           .reconnect_max_ms = 200,
                           .application_name = "test_maintenance"};
    opsc_pg_pool_t *pool = NULL;
    assert_int_equal(opsc_pg_pool_create(&g_loop, &o, &pool), 0);
    assert_int_equal(opsc_pg_pool_start(pool), 0);
    int migrated = 0;
    assert_int_equal(
        opsc_migrate_run(pool, opsc_migrations, opsc_migrations_count, on_migrated, &migrated), 0);
    assert_int_equal(opsc_test_run_until(&g_loop, &migrated, 30000), 0);
    assert_int_equal(migrated, 1);

    psql("INSERT INTO maintenance_windows (name, site, starts_at, recurrence, recurrence_days, "
         "recurrence_start, recurrence_duration, time_zone) VALUES "
         "('berlin sunday', 'lab', '2026-01-01Z', 'weekly', '{7}', '02:00', '2 hours', "
         "'Europe/Berlin'), "
         "('tokyo daily', 'lab', '2026-03-27T00:00:00Z', 'daily', NULL, '23:30', '1 hour', "
         "'Asia/Tokyo')");
    psql("INSERT INTO maintenance_windows (name, site, starts_at, ends_at) VALUES "
         "('one-off', 'lab', '2026-03-28T10:00:00Z', '2026-03-28T12:00:00Z'), "
         "('open', 'lab', '2026-03-01T00:00:00Z', NULL), "
         "('elsewhere', 'lab', '2026-05-01T00:00:00Z', '2026-05-02T00:00:00Z')");
    psql("INSERT INTO maintenance_windows (name, site, starts_at, enabled) VALUES "
         "('disabled', 'lab', '2026-03-01T00:00:00Z', false)");
    /* The range clips a recurrence: this one starts in the middle of an occurrence. */
    psql("INSERT INTO maintenance_windows (name, site, starts_at, ends_at, recurrence, "
         "recurrence_start, recurrence_duration, time_zone) VALUES "
         "('clipped', 'lab', '2026-03-27T12:30:00Z', '2026-03-28T12:15:00Z', 'daily', '12:00', "
         "'1 hour', 'UTC')");

    opsc_store_t *s = NULL;
    assert_int_equal(opsc_store_create(&g_loop, pool, NULL, &s), 0);
    loaded_t l = {0};
    int64_t from = utc("2026-03-20T00:00:00Z"), to = utc("2026-04-06T00:00:00Z");
    assert_int_equal(opsc_store_load_maintenance(s, from, to, on_loaded, &l), 0);
    assert_int_equal(opsc_test_run_until(&g_loop, &l.done, 10000), 0);
    assert_int_equal(l.err, 0);

    char got[2048];
    /*
     * Sunday 02:00-04:00 Berlin: CET (UTC+1) on 22 March, CEST (UTC+2) from
     * 29 March. On the 29th 02:00 does not exist (clocks jump to 03:00):
     * PostgreSQL reads the nonexistent 02:00 as 02:00 CET = 01:00Z; the end,
     * 04:00 CEST, is 02:00Z: the one real hour the wall-clock window covers.
     */
    occurrences(&l, "berlin sunday", got, sizeof(got));
    assert_string_equal(got, "2026-03-22T01:00:00.000000Z/2026-03-22T03:00:00.000000Z\n"
                             "2026-03-29T01:00:00.000000Z/2026-03-29T02:00:00.000000Z\n"
                             "2026-04-05T00:00:00.000000Z/2026-04-05T02:00:00.000000Z\n");
    /* Tokyo has no DST; 23:30+09 is 14:30Z, crossing local midnight; first from starts_at on. */
    occurrences(&l, "tokyo daily", got, sizeof(got));
    assert_non_null(strstr(got, "2026-03-27T14:30:00.000000Z/2026-03-27T15:30:00.000000Z\n"));
    assert_null(strstr(got, "2026-03-26T"));
    assert_non_null(strstr(got, "2026-04-05T14:30:00.000000Z/2026-04-05T15:30:00.000000Z\n"));
    occurrences(&l, "one-off", got, sizeof(got));
    assert_string_equal(got, "2026-03-28T10:00:00.000000Z/2026-03-28T12:00:00.000000Z\n");
    occurrences(&l, "open", got, sizeof(got));
    assert_string_equal(got, "2026-03-01T00:00:00.000000Z/-\n");
    occurrences(&l, "clipped", got, sizeof(got));
    assert_string_equal(got, "2026-03-27T12:30:00.000000Z/2026-03-27T13:00:00.000000Z\n"
                             "2026-03-28T12:00:00.000000Z/2026-03-28T12:15:00.000000Z\n");
    occurrences(&l, "elsewhere", got, sizeof(got));
    assert_string_equal(got, "");
    occurrences(&l, "disabled", got, sizeof(got));
    assert_string_equal(got, "");
    opsc_store_maint_rows_free(l.rows, l.n);

    /* Autumn: 25 October 2026, 03:00 CEST -> 02:00 CET; 04:00 CET = 03:00Z. */
    l = (loaded_t){0};
    assert_int_equal(opsc_store_load_maintenance(s, utc("2026-10-24T00:00:00Z"),
                                                 utc("2026-10-26T00:00:00Z"), on_loaded, &l),
                     0);
    assert_int_equal(opsc_test_run_until(&g_loop, &l.done, 10000), 0);
    assert_int_equal(l.err, 0);
    occurrences(&l, "berlin sunday", got, sizeof(got));
    assert_string_equal(got, "2026-10-25T01:00:00.000000Z/2026-10-25T03:00:00.000000Z\n");

    /* The snapshot built from those rows: matched by UTC instants only. */
    opsc_maint_row_t *mr = calloc(l.n, sizeof(*mr));
    assert_non_null(mr);
    for (size_t i = 0; i < l.n; i++) {
        mr[i] = (opsc_maint_row_t){.window_id = l.rows[i].window_id,
                                   .name = l.rows[i].name,
                                   .site = l.rows[i].site,
                                   .start_us = l.rows[i].start_us,
                                   .end_us = l.rows[i].end_us};
    }
    opsc_maint_t *m = opsc_maint_create(mr, l.n);
    free(mr);
    assert_non_null(m);
    opsc_maint_subject_t sub = subj("10.0.0.1", "sw", "lab", "network", "link_down");
    long berlin = -1;
    for (size_t i = 0; i < opsc_maint_window_count(m); i++) {
        if (strcmp(opsc_maint_window_name(m, i), "berlin sunday") == 0) {
            berlin = (long)i;
        }
    }
    assert_true(berlin >= 0);
    assert_false(opsc_maint_window_active(m, (size_t)berlin, utc("2026-10-25T00:59:59Z")));
    assert_true(opsc_maint_window_active(m, (size_t)berlin, utc("2026-10-25T01:00:00Z")));
    assert_true(opsc_maint_window_active(m, (size_t)berlin, utc("2026-10-25T02:59:59Z")));
    assert_false(opsc_maint_window_active(m, (size_t)berlin, utc("2026-10-25T03:00:00Z")));
    assert_true(opsc_maint_match(m, &sub, utc("2026-10-25T02:00:00Z")) >= 0);
    opsc_maint_destroy(m);
    opsc_store_maint_rows_free(l.rows, l.n);

    /* Bad definitions are refused by the table itself. */
    char out[256];
    assert_int_not_equal(opsc_test_pg_psql(&g_pg,
                                           "INSERT INTO maintenance_windows (name, site, "
                                           "recurrence, recurrence_days, recurrence_start, "
                                           "recurrence_duration) VALUES ('x', 'lab', 'weekly', "
                                           "'{8}', '02:00', '1 hour')",
                                           out, sizeof(out)),
                         0);
    assert_int_not_equal(opsc_test_pg_psql(&g_pg,
                                           "INSERT INTO maintenance_windows (name, site, "
                                           "time_zone) VALUES ('x', 'lab', 'CET+1')",
                                           out, sizeof(out)),
                         0);

    int closed = 0;
    opsc_store_close(s, set_flag, &closed);
    assert_int_equal(opsc_test_run_until(&g_loop, &closed, 15000), 0);
    closed = 0;
    opsc_pg_pool_close(pool, set_flag, &closed);
    assert_int_equal(opsc_test_run_until(&g_loop, &closed, 5000), 0);
}

static int setup(void **state) {
    (void)state;
    return opsc_test_pg_env_setup(&g_pg, &g_loop, OPSC_LOG_ERROR);
}

static int teardown(void **state) {
    (void)state;
    opsc_test_pg_env_teardown(&g_pg, &g_loop);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidr_v4),
        cmocka_unit_test(test_cidr_v6),
        cmocka_unit_test(test_glob_site_category_type),
        cmocka_unit_test(test_bad_rows_skipped),
        cmocka_unit_test(test_intervals_and_boundaries),
        cmocka_unit_test(test_loader_recurrence_dst),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
