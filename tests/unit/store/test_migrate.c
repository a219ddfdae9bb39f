/*
 * The migration runner against a real, throwaway PostgreSQL: order,
 * idempotence, checksum mismatch, failure rollback, concurrent starters, and
 * the real embedded migrations producing the schema of seed 000.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/migrate.h"
#include "opsc/pg.h"
#include "support/loop_util.h"
#include "support/pg_harness.h"

static opsc_test_pg_t g_pg;
static uv_loop_t g_loop;
static int g_db_seq;

typedef struct mres_s {
    int done;
    int err;
    int applied;
    char message[512];
} mres_t;

static void on_migrated(int err, int applied, const char *message, void *arg) {
    mres_t *m = arg;
    m->done = 1;
    m->err = err;
    m->applied = applied;
    snprintf(m->message, sizeof(m->message), "%s", message);
}

static int g_closed;
static void on_closed(void *arg) {
    (void)arg;
    g_closed++;
}

static opsc_pg_pool_t *pool_for(const char *conninfo) {
    opsc_pg_options_t o = {.conninfo = conninfo, .readers = 0, .queue_max = 100,
                           .reconnect_min_ms = 20, .reconnect_max_ms = 200};
    opsc_pg_pool_t *p = NULL;
    assert_int_equal(opsc_pg_pool_create(&g_loop, &o, &p), 0);
    opsc_pg_pool_start(p);
    return p;
}

static void close_pool(opsc_pg_pool_t *p) {
    g_closed = 0;
    opsc_pg_pool_close(p, on_closed, NULL);
    assert_int_equal(opsc_test_run_until(&g_loop, &g_closed, 5000), 0);
}

static mres_t migrate(const char *conninfo, const opsc_migration_t *list, size_t n) {
    opsc_pg_pool_t *p = pool_for(conninfo);
    mres_t m = {0};
    assert_int_equal(opsc_migrate_run(p, list, n, on_migrated, &m), 0);
    assert_int_equal(opsc_test_run_until(&g_loop, &m.done, 30000), 0);
    close_pool(p);
    return m;
}

static void fresh_db(char *conninfo, size_t len) {
    char name[32];
    snprintf(name, sizeof(name), "mig_%d", ++g_db_seq);
    assert_int_equal(opsc_test_pg_create_db(&g_pg, name, conninfo, len), 0);
}

static void psql_in(const char *conninfo, const char *sql, char *out, size_t outlen) {
    /* Run in a specific database: the harness takes the conninfo's dbname. */
    opsc_test_pg_t db = g_pg;
    snprintf(db.conninfo, sizeof(db.conninfo), "%s", conninfo);
    assert_int_equal(opsc_test_pg_psql(&db, sql, out, outlen), 0);
}

static const opsc_migration_t three[] = {
    {1, "001_first", "CREATE TABLE t_one (id int PRIMARY KEY);"},
    {2, "002_second", "ALTER TABLE t_one ADD COLUMN name text;"},
    {3, "003_third", "INSERT INTO t_one VALUES (1, 'x'); -- a trailing comment, no newline"},
};

static int setup(void **state) {
    (void)state;
    return opsc_test_pg_env_setup(&g_pg, &g_loop, OPSC_LOG_WARN);
}

static int teardown(void **state) {
    (void)state;
    opsc_test_pg_env_teardown(&g_pg, &g_loop);
    return 0;
}

static void test_applies_in_order_once(void **state) {
    (void)state;
    char ci[512], out[1024];
    fresh_db(ci, sizeof(ci));
    mres_t m = migrate(ci, three, 3);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.applied, 3);
    psql_in(ci, "SELECT string_agg(version || ':' || name, ',' ORDER BY applied_at, version) FROM "
                "schema_migrations",
            out, sizeof(out));
    assert_string_equal(out, "1:001_first,2:002_second,3:003_third");
    char sum[65];
    opsc_migrate_checksum(three[1].sql, sum);
    char q[256];
    snprintf(q, sizeof(q), "SELECT checksum = '%s' FROM schema_migrations WHERE version = 2", sum);
    psql_in(ci, q, out, sizeof(out));
    assert_string_equal(out, "t");

    /* Again: nothing re-applied (the INSERT would fail on a duplicate key). */
    m = migrate(ci, three, 3);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.applied, 0);

    /* A new migration on top is applied alone. */
    const opsc_migration_t four[] = {three[0], three[1], three[2],
                                     {4, "004_fourth", "CREATE INDEX t_one_name ON t_one (name)"}};
    m = migrate(ci, four, 4);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.applied, 1);
}

static void test_checksum_mismatch_names_migration(void **state) {
    (void)state;
    char ci[512], out[256];
    fresh_db(ci, sizeof(ci));
    assert_int_equal(migrate(ci, three, 2).err, 0);
    opsc_migration_t edited[] = {three[0],
                                 {2, "002_second", "ALTER TABLE t_one ADD COLUMN name varchar(9);"},
                                 three[2]};
    mres_t m = migrate(ci, edited, 3);
    assert_int_equal(m.err, OPSC_ECHECKSUM);
    assert_int_equal(m.applied, 0);
    assert_non_null(strstr(m.message, "002_second"));
    /* Nothing after it ran. */
    psql_in(ci, "SELECT count(*) FROM schema_migrations", out, sizeof(out));
    assert_string_equal(out, "2");
}

static void test_failed_migration_rolls_back(void **state) {
    (void)state;
    char ci[512], out[256];
    fresh_db(ci, sizeof(ci));
    const opsc_migration_t bad[] = {
        three[0],
        {2, "002_broken", "CREATE TABLE t_two (a int); INSERT INTO t_two VALUES ('nope');"},
        {3, "003_after", "CREATE TABLE t_three (a int);"},
    };
    mres_t m = migrate(ci, bad, 3);
    assert_int_equal(m.err, OPSC_EMIGRATION);
    assert_int_equal(m.applied, 1);
    assert_non_null(strstr(m.message, "002_broken"));
    assert_non_null(strstr(m.message, "22P02"));
    psql_in(ci,
            "SELECT to_regclass('t_two') IS NULL AND to_regclass('t_three') IS NULL AND "
            "(SELECT count(*) FROM schema_migrations) = 1",
            out, sizeof(out));
    assert_string_equal(out, "t");
    /* The lock was released: a fixed list applies. */
    m = migrate(ci, three, 3);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.applied, 2);
}

static void test_rejects_bad_lists_and_newer_db(void **state) {
    (void)state;
    char ci[512];
    fresh_db(ci, sizeof(ci));
    opsc_pg_pool_t *p = pool_for(ci);
    mres_t m = {0};
    const opsc_migration_t unordered[] = {three[1], three[0]};
    assert_int_equal(opsc_migrate_run(p, unordered, 2, on_migrated, &m), OPSC_EMIGRATION);
    const opsc_migration_t badname[] = {{1, "001 Bad", "SELECT 1"}};
    assert_int_equal(opsc_migrate_run(p, badname, 1, on_migrated, &m), OPSC_EMIGRATION);
    close_pool(p);

    /* A database migrated by a newer server is refused, not "downgraded". */
    assert_int_equal(migrate(ci, three, 3).err, 0);
    m = migrate(ci, three, 2);
    assert_int_equal(m.err, OPSC_EMIGRATION);
    assert_non_null(strstr(m.message, "003_third"));
}

static void test_concurrent_starters_serialize(void **state) {
    (void)state;
    char ci[512], out[256];
    fresh_db(ci, sizeof(ci));
    const opsc_migration_t slow[] = {
        {1, "001_slow", "SELECT pg_sleep(0.5); CREATE TABLE t_slow (a int);"},
        {2, "002_fill", "INSERT INTO t_slow SELECT generate_series(1, 10);"},
    };
    enum { N = 3 };
    opsc_pg_pool_t *pools[N];
    mres_t res[N];
    memset(res, 0, sizeof(res));
    for (int i = 0; i < N; i++) {
        pools[i] = pool_for(ci);
        assert_int_equal(opsc_migrate_run(pools[i], slow, 2, on_migrated, &res[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(opsc_test_run_until(&g_loop, &res[i].done, 30000), 0);
    }
    int total = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(res[i].err, 0);
        total += res[i].applied;
    }
    assert_int_equal(total, 2);
    psql_in(ci, "SELECT (SELECT count(*) FROM t_slow) || '/' || (SELECT count(*) FROM "
                "schema_migrations)",
            out, sizeof(out));
    assert_string_equal(out, "10/2");
    g_closed = 0;
    for (int i = 0; i < N; i++) {
        opsc_pg_pool_close(pools[i], on_closed, NULL);
    }
    while (g_closed < N) {
        uv_run(&g_loop, UV_RUN_ONCE);
    }
}

static void test_embedded_migrations_make_seed_schema(void **state) {
    (void)state;
    char ci[512];
    fresh_db(ci, sizeof(ci));
    assert_true(opsc_migrations_count >= 1);
    assert_string_equal(opsc_migrations[0].name, "001_core_schema");
    mres_t m = migrate(ci, opsc_migrations, opsc_migrations_count);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.applied, (int)opsc_migrations_count);

    const char *src = getenv("TEST_OPSC_SOURCE_DIR");
    assert_non_null(src);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "PATH=\"%s:$PATH\" bash '%s/tests/integration/check_schema.sh' '%s'",
             g_pg.bindir, src, ci);
    assert_int_equal(system(cmd), 0);
    m = migrate(ci, opsc_migrations, opsc_migrations_count);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.applied, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_applies_in_order_once),
        cmocka_unit_test(test_checksum_mismatch_names_migration),
        cmocka_unit_test(test_failed_migration_rolls_back),
        cmocka_unit_test(test_rejects_bad_lists_and_newer_db),
        cmocka_unit_test(test_concurrent_starters_serialize),
        cmocka_unit_test(test_embedded_migrations_make_seed_schema),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
