/*
 * The asynchronous database layer against a real, throwaway PostgreSQL.
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
#include "opsc/pg.h"
#include "support/loop_util.h"
#include "support/pg_harness.h"

static opsc_test_pg_t g_pg;
static uv_loop_t g_loop;

typedef struct result_s {
    int done;
    int err;
    char sqlstate[6];
    char message[256];
    char value[256];
    int has_value;
    int ntuples;
    size_t nitems;
    char item_state[8][6];
    long cmd_tuples;
} result_t;

static void on_result(int err, const opsc_pg_res_t *res, void *arg) {
    result_t *r = arg;
    r->done = 1;
    r->err = err;
    snprintf(r->sqlstate, sizeof(r->sqlstate), "%s", opsc_pg_res_sqlstate(res));
    snprintf(r->message, sizeof(r->message), "%s", opsc_pg_res_message(res));
    const char *v = opsc_pg_res_value(res, 0, 0);
    r->has_value = v != NULL;
    snprintf(r->value, sizeof(r->value), "%s", v ? v : "");
    r->ntuples = opsc_pg_res_ntuples(res);
    r->cmd_tuples = opsc_pg_res_cmd_tuples(res);
    r->nitems = opsc_pg_res_nitems(res);
    for (size_t i = 0; i < r->nitems && i < 8; i++) {
        snprintf(r->item_state[i], 6, "%s", opsc_pg_res_sqlstate(opsc_pg_res_item(res, i)));
    }
}

static int g_closed;
static void on_closed(void *arg) {
    (void)arg;
    g_closed = 1;
}

static opsc_pg_pool_t *make_pool(const char *conninfo, int readers, int queue_max, int listen) {
    opsc_pg_options_t o = {
        .conninfo = conninfo,
        .readers = readers,
        .queue_max = queue_max,
        .connect_timeout_ms = 5000,
        .reconnect_min_ms = 20,
        .reconnect_max_ms = 200,
        .listen = listen,
        .application_name = "opsc_test_pg",
    };
    opsc_pg_pool_t *p = NULL;
    assert_int_equal(opsc_pg_pool_create(&g_loop, &o, &p), 0);
    assert_int_equal(opsc_pg_pool_start(p), 0);
    return p;
}

static void close_pool(opsc_pg_pool_t *p) {
    g_closed = 0;
    opsc_pg_pool_close(p, on_closed, NULL);
    assert_int_equal(opsc_test_run_until(&g_loop, &g_closed, 5000), 0);
}

static void run(result_t *r) {
    assert_int_equal(opsc_test_run_until(&g_loop, &r->done, 15000), 0);
}

static int setup(void **state) {
    (void)state;
    return opsc_test_pg_env_setup(&g_pg, &g_loop, OPSC_LOG_WARN);
}

static int teardown(void **state) {
    (void)state;
    opsc_test_pg_env_teardown(&g_pg, &g_loop);
    return 0;
}

static void test_query_params(void **state) {
    (void)state;
    opsc_pg_pool_t *p = make_pool(g_pg.conninfo, 1, 100, 0);
    result_t r = {0};
    const char *params[] = {"41", NULL};
    assert_int_equal(opsc_pg_query(p, OPSC_PG_READER, "SELECT $1::int + 1, $2::text IS NULL", 2,
                                   params, on_result, &r),
                     0);
    assert_int_equal(r.done, 0); /* never called from inside the submit */
    run(&r);
    assert_int_equal(r.err, 0);
    assert_string_equal(r.value, "42");
    assert_string_equal(r.sqlstate, "");
    /* The writer connects in parallel with the reader. */
    int never = 0;
    for (int i = 0; i < 100 && !opsc_pg_pool_writer_up(p); i++) {
        opsc_test_run_until(&g_loop, &never, 20);
    }
    assert_int_equal(opsc_pg_pool_writer_up(p), 1);
    close_pool(p);
}

static void test_server_error_has_sqlstate(void **state) {
    (void)state;
    opsc_pg_pool_t *p = make_pool(g_pg.conninfo, 0, 100, 0);
    result_t r = {0};
    assert_int_equal(
        opsc_pg_query(p, OPSC_PG_WRITER, "SELECT * FROM no_such_table", 0, NULL, on_result, &r), 0);
    run(&r);
    assert_int_equal(r.err, OPSC_EDB_QUERY);
    assert_string_equal(r.sqlstate, "42P01");
    assert_non_null(strstr(r.message, "no_such_table"));
    /* The connection is still good. */
    result_t r2 = {0};
    assert_int_equal(opsc_pg_query(p, OPSC_PG_WRITER, "SELECT 'ok'", 0, NULL, on_result, &r2), 0);
    run(&r2);
    assert_int_equal(r2.err, 0);
    assert_string_equal(r2.value, "ok");
    close_pool(p);
}

static void test_prepared_statements(void **state) {
    (void)state;
    opsc_pg_pool_t *p = make_pool(g_pg.conninfo, 0, 100, 0);
    opsc_pg_stmt_t *s = opsc_pg_stmt_register(p, "t_mul", "SELECT $1::int * $2::int", 2);
    assert_non_null(s);
    assert_ptr_equal(opsc_pg_stmt_register(p, "t_mul", "SELECT $1::int * $2::int", 2), s);
    assert_null(opsc_pg_stmt_register(p, "t_mul", "SELECT 1", 0)); /* same name, other SQL */
    for (int i = 1; i <= 3; i++) {
        char a[8];
        snprintf(a, sizeof(a), "%d", i);
        const char *params[] = {a, "7"};
        result_t r = {0};
        assert_int_equal(opsc_pg_exec(p, OPSC_PG_WRITER, s, 2, params, on_result, &r), 0);
        run(&r);
        assert_int_equal(r.err, 0);
        char expect[8];
        snprintf(expect, sizeof(expect), "%d", i * 7);
        assert_string_equal(r.value, expect);
    }
    /* A statement that cannot be prepared fails each time with its own error. */
    opsc_pg_stmt_t *bad = opsc_pg_stmt_register(p, "t_bad", "SELEC oops", 0);
    for (int i = 0; i < 2; i++) {
        result_t r = {0};
        assert_int_equal(opsc_pg_exec(p, OPSC_PG_WRITER, bad, 0, NULL, on_result, &r), 0);
        run(&r);
        assert_int_equal(r.err, OPSC_EDB_QUERY);
        assert_string_equal(r.sqlstate, "42601");
    }
    close_pool(p);
}

static void test_batch_is_atomic(void **state) {
    (void)state;
    opsc_pg_pool_t *p = make_pool(g_pg.conninfo, 0, 100, 0);
    result_t r = {0};
    assert_int_equal(opsc_pg_script(p, OPSC_PG_WRITER,
                                    "DROP TABLE IF EXISTS t_batch; CREATE TABLE t_batch (id int "
                                    "PRIMARY KEY, v text)",
                                    on_result, &r),
                     0);
    run(&r);
    assert_int_equal(r.err, 0);

    opsc_pg_stmt_t *ins =
        opsc_pg_stmt_register(p, "t_ins", "INSERT INTO t_batch VALUES ($1, $2)", 2);
    opsc_pg_batch_t *b = opsc_pg_batch_create(p);
    const char *p1[] = {"1", "a"}, *p2[] = {"2", "b"}, *p3[] = {"3", "c"};
    assert_int_equal(opsc_pg_batch_add_exec(b, ins, 2, p1), 0);
    assert_int_equal(opsc_pg_batch_add_exec(b, ins, 2, p2), 0);
    assert_int_equal(opsc_pg_batch_add_query(b, "INSERT INTO t_batch VALUES ($1, $2)", 2, p3), 0);
    assert_int_equal(opsc_pg_batch_size(b), 3);
    result_t rb = {0};
    assert_int_equal(opsc_pg_batch_submit(b, OPSC_PG_WRITER, on_result, &rb), 0);
    run(&rb);
    assert_int_equal(rb.err, 0);
    assert_int_equal(rb.nitems, 3);
    assert_int_equal(rb.cmd_tuples, 1);

    /* 4 is fine, 1 is a duplicate, 5 comes after: nothing of it may stay. */
    b = opsc_pg_batch_create(p);
    const char *q4[] = {"4", "d"}, *q1[] = {"1", "dup"}, *q5[] = {"5", "e"};
    opsc_pg_batch_add_exec(b, ins, 2, q4);
    opsc_pg_batch_add_exec(b, ins, 2, q1);
    opsc_pg_batch_add_exec(b, ins, 2, q5);
    result_t rf = {0};
    assert_int_equal(opsc_pg_batch_submit(b, OPSC_PG_WRITER, on_result, &rf), 0);
    run(&rf);
    assert_int_equal(rf.err, OPSC_EDB_QUERY);
    assert_string_equal(rf.sqlstate, "23505");
    assert_int_equal(rf.nitems, 3);
    assert_string_equal(rf.item_state[0], "");
    assert_string_equal(rf.item_state[1], "23505");

    result_t rc = {0};
    assert_int_equal(
        opsc_pg_query(p, OPSC_PG_READER, "SELECT count(*) FROM t_batch", 0, NULL, on_result, &rc),
        0);
    run(&rc);
    assert_string_equal(rc.value, "3");
    close_pool(p);
}

typedef struct order_s {
    int next;
    int bad;
    int done;
    int total;
} order_t;

typedef struct order_item_s {
    order_t *o;
    int seq;
} order_item_t;

static void on_ordered(int err, const opsc_pg_res_t *res, void *arg) {
    order_item_t *it = arg;
    const char *v = opsc_pg_res_value(res, 0, 0);
    if (err || !v || atoi(v) != it->seq || it->seq != it->o->next) {
        it->o->bad++;
    }
    it->o->next++;
    if (it->o->next == it->o->total) {
        it->o->done = 1;
    }
}

static void test_pipelined_in_order(void **state) {
    (void)state;
    enum { N = 2000 };
    opsc_pg_pool_t *p = make_pool(g_pg.conninfo, 0, N, 0);
    static order_item_t items[N];
    order_t o = {.total = N};
    for (int i = 0; i < N; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        const char *params[] = {v};
        items[i].o = &o;
        items[i].seq = i;
        assert_int_equal(
            opsc_pg_query(p, OPSC_PG_WRITER, "SELECT $1::int", 1, params, on_ordered, &items[i]),
            0);
    }
    assert_int_equal(opsc_test_run_until(&g_loop, &o.done, 20000), 0);
    assert_int_equal(o.bad, 0);
    assert_int_equal(o.next, N);
    close_pool(p);
}

static void test_script_failure_leaves_no_transaction(void **state) {
    (void)state;
    opsc_pg_pool_t *p = make_pool(g_pg.conninfo, 0, 100, 0);
    result_t r = {0};
    assert_int_equal(opsc_pg_script(p, OPSC_PG_WRITER,
                                    "BEGIN; CREATE TABLE t_script (a int); SELECT 1/0; COMMIT;",
                                    on_result, &r),
                     0);
    run(&r);
    assert_int_equal(r.err, OPSC_EDB_QUERY);
    assert_string_equal(r.sqlstate, "22012");
    /* Not left in an aborted transaction, and the table was rolled back. */
    result_t r2 = {0};
    assert_int_equal(opsc_pg_query(p, OPSC_PG_WRITER, "SELECT to_regclass('t_script') IS NULL", 0,
                                   NULL, on_result, &r2),
                     0);
    run(&r2);
    assert_int_equal(r2.err, 0);
    assert_string_equal(r2.value, "t");
    close_pool(p);
}

static void test_queue_bound_while_disconnected(void **state) {
    (void)state;
    /* No server at this socket: everything waits, up to the bound. */
    opsc_pg_pool_t *p =
        make_pool("host=/nonexistent/opsc port=5 dbname=x connect_timeout=2", 0, 5, 0);
    result_t r[6];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 5; i++) {
        assert_int_equal(opsc_pg_query(p, OPSC_PG_WRITER, "SELECT 1", 0, NULL, on_result, &r[i]),
                         0);
    }
    assert_int_equal(opsc_pg_query(p, OPSC_PG_WRITER, "SELECT 1", 0, NULL, on_result, &r[5]),
                     OPSC_EQUEUE_FULL);
    assert_int_equal(opsc_pg_pool_pending(p), 5);
    /* Let a few reconnect attempts fail; nothing completes meanwhile. */
    int never = 0;
    assert_int_equal(opsc_test_run_until(&g_loop, &never, 300), -1);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(r[i].done, 0);
    }
    assert_int_equal(opsc_pg_pool_writer_up(p), 0);
    assert_true(strlen(opsc_pg_pool_last_error(p)) > 0);

    /* The server appears: queued work runs on the new connection. */
    assert_int_equal(opsc_pg_pool_set_conninfo(p, g_pg.conninfo), 0);
    assert_int_equal(opsc_test_run_until(&g_loop, &r[4].done, 10000), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r[i].done, 1);
        assert_int_equal(r[i].err, 0);
        assert_string_equal(r[i].value, "1");
    }
    assert_int_equal(r[5].done, 0);
    close_pool(p);
}

static void test_close_fails_queued_with_shutdown(void **state) {
    (void)state;
    opsc_pg_pool_t *p = make_pool("host=/nonexistent/opsc port=5 dbname=x", 0, 10, 0);
    result_t r = {0};
    assert_int_equal(opsc_pg_query(p, OPSC_PG_WRITER, "SELECT 1", 0, NULL, on_result, &r), 0);
    g_closed = 0;
    opsc_pg_pool_close(p, on_closed, NULL);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.err, OPSC_ESHUTDOWN);
    assert_int_equal(opsc_test_run_until(&g_loop, &g_closed, 5000), 0);
}

typedef struct killer_s {
    uv_timer_t t;
    int fired;
} killer_t;

static void kill_sleepers(uv_timer_t *t) {
    killer_t *k = t->data;
    char out[64];
    /* Blocking psql from a test timer is fine: it is the test, not the server. */
    opsc_test_pg_psql(&g_pg,
                      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query "
                      "LIKE 'SELECT pg_sleep(30)%'",
                      out, sizeof(out));
    k->fired = atoi(out);
}

static void test_connection_killed_mid_query(void **state) {
    (void)state;
    opsc_pg_pool_t *p = make_pool(g_pg.conninfo, 1, 100, 0);
    result_t warm = {0};
    assert_int_equal(opsc_pg_query(p, OPSC_PG_READER, "SELECT 1", 0, NULL, on_result, &warm), 0);
    run(&warm);

    result_t r = {0};
    assert_int_equal(
        opsc_pg_query(p, OPSC_PG_READER, "SELECT pg_sleep(30)", 0, NULL, on_result, &r), 0);
    /* Queued behind it on the same connection: not yet sent or in flight. */
    result_t after = {0};
    killer_t k = {0};
    uv_timer_init(&g_loop, &k.t);
    k.t.data = &k;
    uv_timer_start(&k.t, kill_sleepers, 300, 0);
    run(&r);
    assert_int_equal(k.fired, 1);
    assert_int_equal(r.err, OPSC_EDB_CONN_LOST);
    assert_string_equal(r.sqlstate, "57P01");
    assert_true(strlen(r.message) > 0);
    uv_close((uv_handle_t *)&k.t, NULL);

    /* The pool reconnects by itself and the next query succeeds. */
    assert_int_equal(opsc_pg_query(p, OPSC_PG_READER, "SELECT 'back'", 0, NULL, on_result, &after),
                     0);
    run(&after);
    assert_int_equal(after.err, 0);
    assert_string_equal(after.value, "back");
    close_pool(p);
}

typedef struct notified_s {
    int done;
    int subscribed; /* cb(channel, NULL) calls: the LISTEN took effect */
    char payload[64];
} notified_t;

static void on_notify(const char *channel, const char *payload, void *arg) {
    notified_t *n = arg;
    if (strcmp(channel, "opsc_changes") != 0) {
        return;
    }
    if (!payload) {
        n->subscribed++;
        return;
    }
    snprintf(n->payload, sizeof(n->payload), "%s", payload);
    n->done = 1;
}

static void test_listen_notify(void **state) {
    (void)state;
    opsc_pg_pool_t *p = make_pool(g_pg.conninfo, 0, 100, 1);
    notified_t n = {0};
    assert_int_equal(opsc_pg_listen(p, "opsc_changes", on_notify, &n), 0);
    assert_int_equal(opsc_pg_listen(p, "Bad Channel", on_notify, &n), UV_EINVAL);
    /* NOTIFY until the LISTEN connection is up and subscribed. */
    for (int i = 0; i < 100 && !n.done; i++) {
        result_t r = {0};
        assert_int_equal(opsc_pg_query(p, OPSC_PG_WRITER, "SELECT pg_notify('opsc_changes', 'hi')",
                                       0, NULL, on_result, &r),
                         0);
        run(&r);
        assert_int_equal(r.err, 0);
        int never = 0;
        opsc_test_run_until(&g_loop, &never, 50);
    }
    assert_int_equal(n.done, 1);
    assert_string_equal(n.payload, "hi");
    /* The listener heard that its subscription took effect (before the payload). */
    assert_int_equal(n.subscribed, 1);

    /* The LISTEN connection is killed: after the reconnect the subscription is renewed
     * and the listener hears it again (what was announced meanwhile was missed). */
    result_t k = {0};
    assert_int_equal(opsc_pg_query(p, OPSC_PG_WRITER,
                                   "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity "
                                   "WHERE query LIKE 'LISTEN%'",
                                   0, NULL, on_result, &k),
                     0);
    run(&k);
    assert_int_equal(k.err, 0);
    for (int i = 0; i < 200 && n.subscribed < 2; i++) {
        int never = 0;
        opsc_test_run_until(&g_loop, &never, 50);
    }
    assert_int_equal(n.subscribed, 2);
    close_pool(p);
}

typedef struct states_s {
    int ups;
    int downs;
} states_t;

static void on_state(opsc_pg_pool_t *pool, int up, void *arg) {
    (void)pool;
    states_t *s = arg;
    if (up) {
        s->ups++;
    } else {
        s->downs++;
    }
}

static void test_writer_state_callback(void **state) {
    (void)state;
    opsc_pg_options_t o = {.conninfo = g_pg.conninfo,
                           .readers = 0,
                           .queue_max = 10,
                           .reconnect_min_ms = 20,
                           .reconnect_max_ms = 100};
    opsc_pg_pool_t *p = NULL;
    assert_int_equal(opsc_pg_pool_create(&g_loop, &o, &p), 0);
    states_t s = {0};
    opsc_pg_pool_set_state_cb(p, on_state, &s);
    opsc_pg_pool_start(p);
    assert_int_equal(opsc_test_run_until(&g_loop, &s.ups, 5000), 0);
    char out[64];
    opsc_test_pg_psql(&g_pg,
                      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                      "application_name = 'opsconductord'",
                      out, sizeof(out));
    assert_int_equal(atoi(out), 1);
    assert_int_equal(opsc_test_run_until(&g_loop, &s.downs, 5000), 0);
    int two = 0;
    for (int i = 0; i < 100 && s.ups < 2; i++) {
        opsc_test_run_until(&g_loop, &two, 50);
    }
    assert_int_equal(s.ups, 2);
    close_pool(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_params),
        cmocka_unit_test(test_server_error_has_sqlstate),
        cmocka_unit_test(test_prepared_statements),
        cmocka_unit_test(test_batch_is_atomic),
        cmocka_unit_test(test_pipelined_in_order),
        cmocka_unit_test(test_script_failure_leaves_no_transaction),
        cmocka_unit_test(test_queue_bound_while_disconnected),
        cmocka_unit_test(test_close_fails_queued_with_shutdown),
        cmocka_unit_test(test_connection_killed_mid_query),
        cmocka_unit_test(test_listen_notify),
        cmocka_unit_test(test_writer_state_callback),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
