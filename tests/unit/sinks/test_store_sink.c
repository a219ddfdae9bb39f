/*
 * The store sink against a real, throwaway PostgreSQL: every test gets a
 * fresh database with the embedded migrations, writes through the store and
 * checks the rows with psql or the store's own loaders.
 */
/* cmocka.h needs these first, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/migrate.h"
#include "opsc/pg.h"
#include "opsc/store_sink.h"
#include "support/loop_util.h"
#include "support/pg_harness.h"

#define T0_US 1750000000000000LL /* 2025-06-15T15:06:40Z */
#define NOWHERE "host=/nonexistent/opsc port=5 dbname=x connect_timeout=2"

static opsc_test_pg_t g_pg;
static uv_loop_t g_loop;
static int g_db_seq;

/* ---- helpers ----------------------------------------------------------------------- */

static int g_flag;
static void set_flag(void *arg) {
    *(int *)arg = 1;
}

static void on_migrated(int err, int applied, const char *message, void *arg) {
    (void)applied;
    if (err) {
        fprintf(stderr, "migration failed: %s\n", message);
    }
    *(int *)arg = err ? -1 : 1;
}

static opsc_pg_pool_t *pool_for(const char *conninfo) {
    opsc_pg_options_t o = {.conninfo = conninfo,
                           .readers = 1,
                           .bulk = 1, /* as the server: batches ahead go side by side */
                           .queue_max = 1000,
                           .connect_timeout_ms = 5000,
                           .reconnect_min_ms = 20,
                           .reconnect_max_ms = 200,
                           .application_name = "test_store_sink"};
    opsc_pg_pool_t *p = NULL;
    assert_int_equal(opsc_pg_pool_create(&g_loop, &o, &p), 0);
    assert_int_equal(opsc_pg_pool_start(p), 0);
    return p;
}

static void close_pool(opsc_pg_pool_t *p) {
    g_flag = 0;
    opsc_pg_pool_close(p, set_flag, &g_flag);
    assert_int_equal(opsc_test_run_until(&g_loop, &g_flag, 5000), 0);
}

/* A fresh database with the embedded migrations applied; its conninfo into ci. */
static void fresh_db(char *ci, size_t len) {
    char name[32];
    snprintf(name, sizeof(name), "store_%d", ++g_db_seq);
    assert_int_equal(opsc_test_pg_create_db(&g_pg, name, ci, len), 0);
    opsc_pg_pool_t *p = pool_for(ci);
    int done = 0;
    assert_int_equal(
        opsc_migrate_run(p, opsc_migrations, opsc_migrations_count, on_migrated, &done), 0);
    /* Bounded: a migration that never finishes fails here (with the pool's state), not
     * at ctest's timeout with nothing said. */
    if (opsc_test_run_until(&g_loop, &done, 60000) != 0) {
        opsc_buf_t b = OPSC_BUF_INIT;
        opsc_pg_pool_metrics(&b, p);
        fprintf(stderr, "migrations of %s not finished after 60 s; pool:\n%s\n", name,
                b.base ? b.base : "");
        opsc_buf_free(&b);
    }
    assert_int_equal(done, 1);
    close_pool(p);
}

static void psql_in(const char *ci, const char *sql, char *out, size_t outlen) {
    opsc_test_pg_t db = g_pg;
    snprintf(db.conninfo, sizeof(db.conninfo), "%s", ci);
    assert_int_equal(opsc_test_pg_psql(&db, sql, out, outlen), 0);
}

static void run_for(int ms) {
    int never = 0;
    (void)opsc_test_run_until(&g_loop, &never, ms);
}

static opsc_store_t *store_for(opsc_pg_pool_t *p, const opsc_store_options_t *o) {
    opsc_store_t *s = NULL;
    assert_int_equal(opsc_store_create(&g_loop, p, o, &s), 0);
    return s;
}

static void store_close(opsc_store_t *s) {
    int done = 0;
    opsc_store_close(s, set_flag, &done);
    assert_int_equal(opsc_test_run_until(&g_loop, &done, 15000), 0);
}

/* Flush and run the loop until nothing is held. */
static void drain(opsc_store_t *s, int timeout_ms) {
    uint64_t until = uv_now(&g_loop) + (uint64_t)timeout_ms;
    opsc_store_flush(s);
    while (opsc_store_pending(s) > 0 && uv_now(&g_loop) < until) {
        run_for(5);
        opsc_store_flush(s);
    }
    assert_int_equal(opsc_store_pending(s), 0);
}

/* Value of one sample ("name" or "name{labels}") in the store's metrics. */
static double metric(opsc_store_t *s, const char *sample) {
    opsc_buf_t b = OPSC_BUF_INIT;
    opsc_store_metrics(&b, s);
    double v = -1;
    size_t n = strlen(sample);
    for (const char *line = b.base; line && *line;) {
        if (strncmp(line, sample, n) == 0 && line[n] == ' ') {
            v = strtod(line + n + 1, NULL);
            break;
        }
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
    }
    opsc_buf_free(&b);
    assert_true(v >= 0);
    return v;
}

static void uuid_str(const opsc_uuid_t *u, char out[37]) {
    opsc_uuid_format(u, out);
}

/* A plausible trap alert number i. */
static opsc_alert_t *mk_alert(int i) {
    opsc_alert_t *a = opsc_alert_new();
    assert_non_null(a);
    char t[256];
    opsc_uuid_generate(&a->id);
    assert_int_equal(opsc_alert_set(&a->source_system, "snmp"), 0);
    snprintf(t, sizeof(t), "trap-%d", i);
    assert_int_equal(opsc_alert_set(&a->source_alert_id, t), 0);
    snprintf(t, sizeof(t), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    assert_int_equal(opsc_alert_set(&a->device_ip, t), 0);
    snprintf(t, sizeof(t), "sw-%d", i);
    assert_int_equal(opsc_alert_set(&a->device_name, t), 0);
    a->severity = OPSC_SEV_MAJOR;
    a->category = OPSC_CAT_NETWORK;
    assert_int_equal(opsc_alert_set(&a->alert_type, "link_down"), 0);
    snprintf(t, sizeof(t), "Interface Down - sw-%d", i);
    assert_int_equal(opsc_alert_set(&a->title, t), 0);
    snprintf(t, sizeof(t), "ifIndex %d went down", i % 48);
    assert_int_equal(opsc_alert_set(&a->message, t), 0);
    a->status = OPSC_STATUS_ACTIVE;
    a->occurred_at_us = T0_US + (int64_t)i * 1000;
    a->received_at_us = a->occurred_at_us + 250;
    a->last_occurrence_at_us = a->occurred_at_us;
    snprintf(a->fingerprint, sizeof(a->fingerprint), "%064x", (unsigned)i);
    snprintf(t, sizeof(t),
             "{\"version\":\"v2c\",\"source\":\"10.0.0.%d:162\",\"community\":\"pu***\","
             "\"varbinds\":[{\"oid\":\"1.3.6.1.2.1.2.2.1.1.%d\",\"name\":\"ifIndex\","
             "\"type\":\"INTEGER\",\"value\":\"%d\"}]}",
             i & 255, i % 48, i % 48);
    assert_int_equal(opsc_alert_set(&a->raw_data_json, t), 0);
    return a;
}

static opsc_change_t *ch_create(const opsc_alert_t *a) {
    opsc_change_t *c = opsc_change_new(OPSC_CHANGE_CREATE);
    assert_non_null(c);
    c->id = a->id;
    c->alert = opsc_alert_clone(a);
    assert_non_null(c->alert);
    return c;
}

static opsc_change_t *ch_repeat(const opsc_uuid_t *id, uint32_t count, int64_t at) {
    opsc_change_t *c = opsc_change_new(OPSC_CHANGE_REPEAT);
    assert_non_null(c);
    c->id = *id;
    c->occurrence_count = count;
    c->last_occurrence_at_us = at;
    return c;
}

static opsc_change_t *ch_status(const opsc_uuid_t *id, opsc_status_t from, opsc_status_t to,
                                int64_t at, const char *actor, const char *rule,
                                const char *action) {
    opsc_change_t *c = opsc_change_new(OPSC_CHANGE_STATUS);
    assert_non_null(c);
    c->id = *id;
    c->old_status = from;
    c->new_status = to;
    c->at_us = at;
    snprintf(c->actor, sizeof(c->actor), "%s", actor ? actor : "");
    snprintf(c->rule, sizeof(c->rule), "%s", rule ? rule : "");
    snprintf(c->action, sizeof(c->action), "%s", action ? action : "");
    return c;
}

static opsc_change_t *ch_reply(int tag) {
    opsc_change_t *c = opsc_change_new(OPSC_CHANGE_REPLY);
    assert_non_null(c);
    c->reply = malloc(4);
    assert_non_null(c->reply);
    memcpy(c->reply, &tag, 4);
    c->reply_len = 4;
    return c;
}

static void submit_ok(opsc_store_t *s, opsc_change_t *c) {
    assert_int_equal(opsc_store_submit(s, c), 0);
}

typedef struct loaded_s {
    int done;
    int err;
    opsc_alert_t **v;
    size_t n;
} loaded_t;

static void on_loaded(opsc_alert_t **alerts, size_t n, int err, void *arg) {
    loaded_t *l = arg;
    l->done = 1;
    l->err = err;
    l->v = alerts;
    l->n = n;
}

static loaded_t load_active(opsc_store_t *s) {
    loaded_t l = {0};
    assert_int_equal(opsc_store_load_active(s, on_loaded, &l), 0);
    assert_int_equal(opsc_test_run_until(&g_loop, &l.done, 30000), 0);
    assert_int_equal(l.err, 0);
    return l;
}

static const opsc_alert_t *find_alert(const loaded_t *l, const opsc_uuid_t *id) {
    for (size_t i = 0; i < l->n; i++) {
        if (memcmp(l->v[i]->id.b, id->b, 16) == 0) {
            return l->v[i];
        }
    }
    return NULL;
}

/* The alert with this id, which must be there. */
static const opsc_alert_t *get_alert(const loaded_t *l, const opsc_uuid_t *id) {
    const opsc_alert_t *a = find_alert(l, id);
    if (!a) {
        fail_msg("alert not loaded");
        abort(); /* not reached: tells the compiler a is not NULL below */
    }
    return a;
}

static void assert_str_eq(const char *a, const char *b) {
    if (!a || !b) {
        assert_ptr_equal(a, b);
    } else {
        assert_string_equal(a, b);
    }
}

static void assert_json_eq(const char *a, const char *b) {
    json_t *ja = json_loads(a ? a : "{}", 0, NULL);
    json_t *jb = json_loads(b ? b : "{}", 0, NULL);
    assert_non_null(ja);
    assert_non_null(jb);
    if (!json_equal(ja, jb)) {
        fprintf(stderr, "json differs:\n  %s\n  %s\n", a, b);
        fail();
    }
    json_decref(ja);
    json_decref(jb);
}

static void assert_alert_eq(const opsc_alert_t *a, const opsc_alert_t *b) {
    assert_memory_equal(a->id.b, b->id.b, 16);
    assert_str_eq(a->source_system, b->source_system);
    assert_str_eq(a->source_alert_id, b->source_alert_id);
    assert_str_eq(a->device_ip, b->device_ip);
    assert_str_eq(a->device_name, b->device_name);
    assert_int_equal(a->severity, b->severity);
    assert_int_equal(a->category, b->category);
    assert_str_eq(a->alert_type, b->alert_type);
    assert_int_equal(a->impact, b->impact);
    assert_int_equal(a->urgency, b->urgency);
    assert_int_equal(a->priority, b->priority);
    assert_str_eq(a->title, b->title);
    assert_str_eq(a->message, b->message);
    assert_int_equal(a->status, b->status);
    assert_int_equal(!!a->is_clear, !!b->is_clear);
    assert_int_equal(a->occurred_at_us, b->occurred_at_us);
    assert_int_equal(a->received_at_us, b->received_at_us);
    assert_int_equal(a->acknowledged_at_us, b->acknowledged_at_us);
    assert_str_eq(a->acknowledged_by, b->acknowledged_by);
    assert_int_equal(a->resolved_at_us, b->resolved_at_us);
    assert_str_eq(a->resolved_by, b->resolved_by);
    assert_int_equal(a->has_correlated_to, b->has_correlated_to);
    if (a->has_correlated_to) {
        assert_memory_equal(a->correlated_to_id.b, b->correlated_to_id.b, 16);
    }
    assert_str_eq(a->correlation_rule, b->correlation_rule);
    assert_int_equal(a->ntags, b->ntags);
    for (size_t i = 0; i < a->ntags; i++) {
        assert_string_equal(a->tags[i], b->tags[i]);
    }
    assert_json_eq(a->custom_fields_json, b->custom_fields_json);
    assert_json_eq(a->raw_data_json, b->raw_data_json);
    assert_string_equal(a->fingerprint, b->fingerprint);
    assert_int_equal(a->occurrence_count, b->occurrence_count);
    assert_int_equal(a->last_occurrence_at_us, b->last_occurrence_at_us);
}

/* ---- fixtures ------------------------------------------------------------------------ */

static int setup(void **state) {
    (void)state;
    return opsc_test_pg_env_setup(&g_pg, &g_loop, OPSC_LOG_ERROR);
}

static int teardown(void **state) {
    (void)state;
    opsc_test_pg_env_teardown(&g_pg, &g_loop);
    return 0;
}

/* ---- tests ----------------------------------------------------------------------------- */

/* Every column written by the INSERT comes back, through the loader and through psql. */
static void test_create_round_trip(void **state) {
    (void)state;
    char ci[512], out[4096], q[512], id[37], up[37];
    fresh_db(ci, sizeof(ci));
    opsc_pg_pool_t *p = pool_for(ci);
    opsc_store_t *s = store_for(p, NULL);

    opsc_alert_t *upstream = mk_alert(1);
    opsc_alert_t *full = mk_alert(2);
    full->severity = OPSC_SEV_CRITICAL;
    full->category = OPSC_CAT_POWER;
    full->impact = OPSC_LEVEL_HIGH;
    full->urgency = OPSC_LEVEL_MEDIUM;
    full->priority = 2;
    opsc_alert_set(&full->title, "UPS \"on battery\" \\ caf\xc3\xa9 \xe2\x9a\xa1\nsecond line\t!");
    opsc_alert_set(&full->message, NULL);
    opsc_alert_set(&full->device_ip, NULL);
    full->status = OPSC_STATUS_ACKNOWLEDGED;
    full->is_clear = 1;
    full->acknowledged_at_us = T0_US + 5000001;
    opsc_alert_set(&full->acknowledged_by, "alice");
    full->resolved_at_us = T0_US + 6000002;
    opsc_alert_set(&full->resolved_by, "bob");
    full->correlated_to_id = upstream->id; /* same batch: the self-FK is checked per statement */
    full->has_correlated_to = 1;
    opsc_alert_set(&full->correlation_rule, "upstream_dependency");
    full->tags = calloc(3, sizeof(char *));
    full->tags[0] = strdup("flapping");
    full->tags[1] = strdup("with space");
    full->tags[2] = strdup("quo\"te,{brace}");
    full->ntags = 3;
    opsc_alert_set(&full->custom_fields_json, "{\"impact\": \"high\", \"n\": [1, 2.5, null]}");
    full->occurrence_count = 7;
    full->last_occurrence_at_us = T0_US + 7000003;

    /* Invalid UTF-8 in a string and invalid JSON text: the alert is still stored. */
    opsc_alert_t *odd = mk_alert(3);
    opsc_alert_set(&odd->message, "bad \xff byte");
    opsc_alert_set(&odd->raw_data_json, "{\"a\":1}, \"status\": \"resolved\"");
    odd->fingerprint[0] = '\0';

    submit_ok(s, ch_create(upstream));
    submit_ok(s, ch_create(full));
    submit_ok(s, ch_create(odd));
    drain(s, 10000);
    assert_int_equal(metric(s, "opsc_store_rows_written_total{kind=\"create\"}"), 3);
    assert_int_equal(metric(s, "opsc_store_rows_written_total{kind=\"history\"}"), 3);
    assert_int_equal(metric(s, "opsc_store_invalid_json_total"), 1);
    assert_int_equal(metric(s, "opsc_store_batches_committed_total"), 1);

    loaded_t l = load_active(s);
    assert_int_equal(l.n, 3);
    assert_alert_eq(get_alert(&l, &upstream->id), upstream);
    assert_alert_eq(get_alert(&l, &full->id), full);
    const opsc_alert_t *o = get_alert(&l, &odd->id);
    assert_string_equal(o->message, "bad \xef\xbf\xbd byte");
    assert_string_equal(o->fingerprint, "");
    assert_json_eq(o->raw_data_json,
                   "{\"invalid_json\": \"{\\\"a\\\":1}, \\\"status\\\": \\\"resolved\\\"\"}");
    assert_int_equal(o->status, OPSC_STATUS_ACTIVE);
    opsc_store_alerts_free(l.v, l.n);

    /* The SQL view of the same row. */
    uuid_str(&full->id, id);
    uuid_str(&upstream->id, up);
    snprintf(q, sizeof(q),
             "SELECT priority, impact, urgency, severity, category, tags::text, is_clear, "
             "device_ip IS NULL, message IS NULL, correlated_to_id = '%s', "
             "to_char(acknowledged_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), "
             "custom_fields->>'impact', fingerprint IS NOT NULL FROM alerts WHERE id = '%s'",
             up, id);
    psql_in(ci, q, out, sizeof(out));
    assert_string_equal(out, "P2|high|medium|critical|power|{flapping,\"with space\","
                             "\"quo\\\"te,{brace}\"}|t|t|t|t|2025-06-15 15:06:45.000001|high|t");
    snprintf(q, sizeof(q),
             "SELECT action, old_status IS NULL, new_status, user_id, user_name, "
             "changes->>'status', created_at = (SELECT received_at FROM alerts WHERE id = '%s') "
             "FROM alert_history WHERE alert_id = '%s'",
             id, id);
    psql_in(ci, q, out, sizeof(out));
    assert_string_equal(out, "created|t|acknowledged|system|system|acknowledged|t");

    opsc_alert_free(upstream);
    opsc_alert_free(full);
    opsc_alert_free(odd);
    store_close(s);
    close_pool(p);
}

/* 10,000 repeats of one alert (and 10,000 of another, interleaved) are two rows of one UPDATE. */
static void test_repeats_coalesce(void **state) {
    (void)state;
    char ci[512], out[512], q[512], id[37];
    fresh_db(ci, sizeof(ci));
    opsc_pg_pool_t *p = pool_for(ci);
    opsc_store_t *s = store_for(p, NULL);
    opsc_alert_t *a = mk_alert(10);
    opsc_alert_t *b = mk_alert(11);
    submit_ok(s, ch_create(a));
    submit_ok(s, ch_create(b));
    drain(s, 10000);
    double batches0 = metric(s, "opsc_store_batches_committed_total");
    double txns0 = metric(s, "opsc_store_transactions_total");

    for (uint32_t n = 2; n <= 10001; n++) {
        submit_ok(s, ch_repeat(&a->id, n, T0_US + (int64_t)n * 10));
        /* Out of order on purpose: the largest absolute count wins. */
        uint32_t nb = n % 2 ? n : n - 1;
        submit_ok(s, ch_repeat(&b->id, nb, T0_US + (int64_t)nb * 10));
    }
    assert_int_equal(opsc_store_pending(s), 2);
    drain(s, 10000);
    assert_true(metric(s, "opsc_store_batches_committed_total") - batches0 <= 2);
    assert_true(metric(s, "opsc_store_transactions_total") - txns0 <= 2);
    assert_int_equal(metric(s, "opsc_store_rows_written_total{kind=\"repeat\"}"), 2);
    assert_int_equal(metric(s, "opsc_store_changes_received_total{kind=\"repeat\"}"), 20000);

    uuid_str(&a->id, id);
    snprintf(q, sizeof(q),
             "SELECT occurrence_count, last_occurrence_at = to_timestamp(%lld / 1e6) "
             "FROM alerts WHERE id = '%s'",
             (long long)(T0_US + 10001 * 10), id);
    psql_in(ci, q, out, sizeof(out));
    assert_string_equal(out, "10001|t");
    uuid_str(&b->id, id);
    snprintf(q, sizeof(q), "SELECT occurrence_count FROM alerts WHERE id = '%s'", id);
    psql_in(ci, q, out, sizeof(out));
    assert_string_equal(out, "10001");

    /* A stale repeat (replayed late) never lowers the count. */
    submit_ok(s, ch_repeat(&b->id, 5, T0_US));
    drain(s, 10000);
    psql_in(ci, q, out, sizeof(out));
    assert_string_equal(out, "10001");

    opsc_alert_free(a);
    opsc_alert_free(b);
    store_close(s);
    close_pool(p);
}

/* A repeat of an alert created in the same batch is folded into its INSERT row. */
static void test_repeat_folds_into_create(void **state) {
    (void)state;
    char ci[512], out[512], q[512], id[37];
    fresh_db(ci, sizeof(ci));
    opsc_pg_pool_t *p = pool_for(ci);
    opsc_store_t *s = store_for(p, NULL);
    opsc_alert_t *a = mk_alert(20);
    submit_ok(s, ch_create(a));
    submit_ok(s, ch_repeat(&a->id, 5, T0_US + 500000));
    submit_ok(s, ch_repeat(&a->id, 3, T0_US + 300000));
    assert_int_equal(opsc_store_pending(s), 1);
    drain(s, 10000);
    assert_int_equal(metric(s, "opsc_store_batches_committed_total"), 1);
    assert_int_equal(metric(s, "opsc_store_changes_coalesced_total"), 2);
    uuid_str(&a->id, id);
    snprintf(q, sizeof(q),
             "SELECT occurrence_count, last_occurrence_at = to_timestamp(%lld / 1e6), "
             "(SELECT count(*) FROM alert_history WHERE alert_id = a.id) FROM alerts a "
             "WHERE id = '%s'",
             (long long)(T0_US + 500000), id);
    psql_in(ci, q, out, sizeof(out));
    assert_string_equal(out, "5|t|1");
    opsc_alert_free(a);
    store_close(s);
    close_pool(p);
}

/* Status transitions: resolve, same-batch folds, fingerprint hand-over, suppression. */
static void test_status_changes(void **state) {
    (void)state;
    char ci[512], out[2048], q[1024], id[37], id2[37];
    fresh_db(ci, sizeof(ci));
    opsc_pg_pool_t *p = pool_for(ci);
    opsc_store_t *s = store_for(p, NULL);

    opsc_alert_t *a = mk_alert(30); /* resolved in a later batch */
    opsc_alert_t *d = mk_alert(31); /* resolved in the batch that creates its successor e */
    opsc_alert_t *x = mk_alert(32); /* suppressed under an alert created in the same batch */
    submit_ok(s, ch_create(a));
    submit_ok(s, ch_create(d));
    submit_ok(s, ch_create(x));
    drain(s, 10000);

    int64_t at = T0_US + 42000042;
    submit_ok(s, ch_status(&a->id, OPSC_STATUS_ACTIVE, OPSC_STATUS_RESOLVED, at, "auto-clear",
                           "link_up_clears_link_down", "resolved"));
    /* b created and resolved, then c with the same fingerprint: both in one batch. */
    opsc_alert_t *b = mk_alert(33);
    opsc_alert_t *c = mk_alert(34);
    memcpy(c->fingerprint, b->fingerprint, sizeof(b->fingerprint));
    submit_ok(s, ch_create(b));
    submit_ok(s, ch_status(&b->id, OPSC_STATUS_ACTIVE, OPSC_STATUS_RESOLVED, at + 1, "auto-clear",
                           "link_up_clears_link_down", NULL));
    submit_ok(s, ch_create(c));
    /* e takes over d's fingerprint in the batch that resolves d (d was written before). */
    opsc_alert_t *e = mk_alert(35);
    memcpy(e->fingerprint, d->fingerprint, sizeof(d->fingerprint));
    submit_ok(s, ch_status(&d->id, OPSC_STATUS_ACTIVE, OPSC_STATUS_RESOLVED, at + 2, "auto-clear",
                           NULL, NULL));
    submit_ok(s, ch_create(e));
    /* u is new; x (already written) is suppressed under it: the FK needs u first. */
    opsc_alert_t *u = mk_alert(36);
    submit_ok(s, ch_create(u));
    opsc_change_t *sup = ch_status(&x->id, OPSC_STATUS_ACTIVE, OPSC_STATUS_SUPPRESSED, at + 3,
                                   "system", "upstream_dependency", "suppressed");
    sup->correlated_to_id = u->id;
    sup->has_correlated_to = 1;
    submit_ok(s, sup);
    drain(s, 10000);
    assert_int_equal(metric(s, "opsc_store_rows_rejected_total"), 0);
    assert_int_equal(metric(s, "opsc_store_isolations_total"), 0);

    uuid_str(&a->id, id);
    snprintf(q, sizeof(q),
             "SELECT status, resolved_at = to_timestamp(%lld / 1e6), resolved_by, "
             "correlation_rule FROM alerts WHERE id = '%s'",
             (long long)at, id);
    psql_in(ci, q, out, sizeof(out));
    assert_string_equal(out, "resolved|t|auto-clear|link_up_clears_link_down");
    snprintf(q, sizeof(q),
             "SELECT string_agg(action || ',' || COALESCE(old_status, '-') || ',' || new_status || "
             "',' || COALESCE(user_id, '-') || ',' || COALESCE(user_name, '-') || ',' || "
             "COALESCE(changes->'status'->>'old', '-') || '>' || "
             "COALESCE(changes->'status'->>'new', changes->>'status') || ',' || "
             "COALESCE(changes->>'correlation_rule', '-'), ';' ORDER BY created_at) "
             "FROM alert_history WHERE alert_id = '%s'",
             id);
    psql_in(ci, q, out, sizeof(out));
    assert_string_equal(out, "created,-,active,system,system,->active,-;"
                             "resolved,active,resolved,auto-clear,auto-clear,active>resolved,"
                             "link_up_clears_link_down");

    psql_in(ci,
            "SELECT string_agg(source_alert_id || '=' || status, ',' ORDER BY source_alert_id) "
            "FROM alerts WHERE source_alert_id IN ('trap-33','trap-34','trap-31','trap-35')",
            out, sizeof(out));
    assert_string_equal(out, "trap-31=resolved,trap-33=resolved,trap-34=active,trap-35=active");
    uuid_str(&b->id, id);
    snprintf(q, sizeof(q),
             "SELECT string_agg(action || ':' || new_status, ',' ORDER BY created_at) FROM "
             "alert_history WHERE alert_id = '%s'",
             id);
    psql_in(ci, q, out, sizeof(out));
    /* The default action name for a resolve, and the 'created' row with the initial status. */
    assert_string_equal(out, "created:active,resolved:resolved");

    uuid_str(&x->id, id);
    uuid_str(&u->id, id2);
    snprintf(q, sizeof(q),
             "SELECT status, correlated_to_id = '%s', correlation_rule, resolved_at IS NULL, "
             "(SELECT changes->>'correlated_to_id' = '%s' FROM alert_history WHERE alert_id = "
             "'%s' AND action = 'suppressed') FROM alerts WHERE id = '%s'",
             id2, id2, id, id);
    psql_in(ci, q, out, sizeof(out));
    assert_string_equal(out, "suppressed|t|upstream_dependency|t|t");

    opsc_alert_t *all[] = {a, b, c, d, e, u, x};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        opsc_alert_free(all[i]);
    }
    store_close(s);
    close_pool(p);
}

/* The same changes applied twice (a replayed batch) leave the same rows, once. */
static void submit_set(opsc_store_t *s, opsc_alert_t **alerts, int n, int with_updates) {
    for (int i = 0; i < n; i++) {
        submit_ok(s, ch_create(alerts[i]));
    }
    if (!with_updates) {
        return;
    }
    for (int i = 0; i < n; i++) {
        submit_ok(s, ch_repeat(&alerts[i]->id, 40 + (uint32_t)i, T0_US + 9000000 + i));
    }
    for (int i = 0; i < n; i += 2) {
        submit_ok(s, ch_status(&alerts[i]->id, OPSC_STATUS_ACTIVE, OPSC_STATUS_RESOLVED,
                               T0_US + 10000000 + i, "auto-clear", "rule_x", "resolved"));
    }
}

static void test_replay_idempotent(void **state) {
    (void)state;
    char ci[512], out[512];
    fresh_db(ci, sizeof(ci));
    opsc_pg_pool_t *p = pool_for(ci);
    opsc_store_t *s = store_for(p, NULL);
    enum { N = 20 };
    opsc_alert_t *alerts[N];
    for (int i = 0; i < N; i++) {
        alerts[i] = mk_alert(100 + i);
    }
    const char *check =
        "SELECT count(*), sum(occurrence_count), count(*) FILTER (WHERE status = 'resolved'), "
        "(SELECT count(*) FROM alert_history), (SELECT count(DISTINCT (alert_id, action)) FROM "
        "alert_history) FROM alerts";

    /* Only the creates reached the database (the rest was lost with a crash)... */
    submit_set(s, alerts, N, 0);
    drain(s, 10000);
    psql_in(ci, check, out, sizeof(out));
    assert_string_equal(out, "20|20|0|20|20");
    /* ...then everything is replayed: creates skipped, the rest applied. */
    submit_set(s, alerts, N, 1);
    drain(s, 10000);
    int sum = 0;
    for (int i = 0; i < N; i++) {
        sum += 40 + i;
    }
    char want[128];
    snprintf(want, sizeof(want), "20|%d|10|30|30", sum);
    psql_in(ci, check, out, sizeof(out));
    assert_string_equal(out, want);
    assert_int_equal(metric(s, "opsc_store_create_skipped_total{reason=\"replay\"}"), N);
    /* The first write had no conflict handling; the replay needed it (a unique violation). */
    assert_true(metric(s, "opsc_store_conflict_retries_total") >= 1);
    /* And the whole set once more, twice, including in one batch. */
    submit_set(s, alerts, N, 1);
    submit_set(s, alerts, N, 1);
    drain(s, 10000);
    submit_set(s, alerts, N, 1);
    drain(s, 10000);
    psql_in(ci, check, out, sizeof(out));
    assert_string_equal(out, want);
    assert_int_equal(metric(s, "opsc_store_create_skipped_total{reason=\"fingerprint_active\"}"),
                     0);
    assert_int_equal(metric(s, "opsc_store_rows_rejected_total"), 0);

    /* Another collector's active alert with the same fingerprint: ours is skipped, counted. */
    double retries = metric(s, "opsc_store_conflict_retries_total");
    opsc_alert_t *twin = mk_alert(101); /* alerts[1]'s fingerprint, still active, another id */
    submit_ok(s, ch_create(twin));
    drain(s, 10000);
    assert_int_equal(metric(s, "opsc_store_create_skipped_total{reason=\"fingerprint_active\"}"),
                     1);
    assert_true(metric(s, "opsc_store_conflict_retries_total") > retries);
    psql_in(ci, "SELECT count(*) FROM alerts", out, sizeof(out));
    assert_string_equal(out, "20");
    opsc_alert_free(twin);

    for (int i = 0; i < N; i++) {
        opsc_alert_free(alerts[i]);
    }
    store_close(s);
    close_pool(p);
}

/* ---- database outage -------------------------------------------------------------------- */

enum { STREAM_MAX = 60000 };

typedef struct stream_s {
    opsc_store_t *s;
    uv_timer_t timer;
    opsc_uuid_t *ids;
    uint32_t *counts;
    int n;
    uint64_t rng;
    int refused;
} stream_t;

static void on_stream_tick(uv_timer_t *t) {
    stream_t *st = t->data;
    for (int k = 0; k < 25 && st->n < STREAM_MAX; k++) {
        opsc_alert_t *a = mk_alert(1000 + st->n);
        opsc_change_t *c = opsc_change_new(OPSC_CHANGE_CREATE);
        c->alert = a;
        c->id = a->id;
        if (opsc_store_submit(st->s, c) != 0) {
            opsc_change_free(c);
            st->refused++;
            continue;
        }
        st->ids[st->n] = a->id;
        st->counts[st->n] = 1;
        st->n++;
    }
    for (int k = 0; k < 50 && st->n > 0; k++) {
        st->rng = st->rng * 6364136223846793005ull + 1442695040888963407ull;
        int i = (int)((st->rng >> 33) % (uint64_t)st->n);
        opsc_change_t *c = ch_repeat(&st->ids[i], st->counts[i] + 1, T0_US + 1000);
        if (opsc_store_submit(st->s, c) != 0) {
            opsc_change_free(c);
            st->refused++;
            continue;
        }
        st->counts[i]++;
    }
}

static void restart_postgres(void) {
    char datadir[320], log[320];
    snprintf(datadir, sizeof(datadir), "%s/data", g_pg.dir);
    snprintf(log, sizeof(log), "%s/postgres-restart.log", g_pg.dir);
    g_pg.pid = opsc_test_pg_spawn_postgres(g_pg.bindir, datadir, g_pg.sockdir, g_pg.port, log);
    assert_true(g_pg.pid > 0);
    assert_int_equal(opsc_test_pg_wait_ready(datadir, g_pg.sockdir, g_pg.port, g_pg.pid, 30000), 0);
}

static void test_database_outage_loses_nothing(void **state) {
    (void)state;
    char ci[512], out[512], want[128];
    fresh_db(ci, sizeof(ci));
    opsc_pg_pool_t *p = pool_for(ci);
    opsc_store_options_t o = {.flush_interval_ms = 5, .batch_max = 500, .retry_max_ms = 100};
    opsc_store_t *s = store_for(p, &o);
    stream_t st = {.s = s, .rng = 42};
    st.ids = calloc(STREAM_MAX, sizeof(*st.ids));
    st.counts = calloc(STREAM_MAX, sizeof(*st.counts));
    uv_timer_init(&g_loop, &st.timer);
    st.timer.data = &st;
    uv_timer_start(&st.timer, on_stream_tick, 2, 2);

    run_for(400);
    assert_true(metric(s, "opsc_store_batches_committed_total") > 0);
    /* Fast shutdown: the server aborts the transaction in flight and closes the connections. */
    pid_t pid = g_pg.pid;
    assert_int_equal(kill(pid, SIGINT), 0);
    assert_int_equal(opsc_test_pg_wait_exit(pid, 30000), 0);
    g_pg.pid = 0;
    run_for(600);
    size_t held_while_down = opsc_store_pending(s);
    assert_true(held_while_down > 0);
    restart_postgres();
    run_for(400);
    uv_timer_stop(&st.timer);
    drain(s, 60000);

    assert_int_equal(st.refused, 0);
    assert_true(metric(s, "opsc_store_retries_total") >= 1);
    long long sum = 0;
    for (int i = 0; i < st.n; i++) {
        sum += st.counts[i];
    }
    snprintf(want, sizeof(want), "%d|%lld|%d|%d", st.n, sum, st.n, st.n);
    psql_in(ci,
            "SELECT count(*), sum(occurrence_count), (SELECT count(*) FROM alert_history), "
            "(SELECT count(DISTINCT alert_id) FROM alert_history) FROM alerts",
            out, sizeof(out));
    assert_string_equal(out, want);
    fprintf(stderr,
            "outage: %d alerts, %lld occurrences, %zu items held while down, %.0f retries\n", st.n,
            sum, held_while_down, metric(s, "opsc_store_retries_total"));

    uv_close((uv_handle_t *)&st.timer, NULL);
    free(st.ids);
    free(st.counts);
    store_close(s);
    close_pool(p);
}

/* ---- bad rows ------------------------------------------------------------------------------- */

static int g_replies;
static int g_reply_rows_ok;
static const char *g_reply_ci;

static void on_reply(opsc_change_t *r, void *arg) {
    (void)arg;
    g_replies++;
    if (g_reply_ci) {
        /* The datagram goes out only once its alert is committed. */
        char out[64];
        psql_in(g_reply_ci, "SELECT count(*) FROM alerts", out, sizeof(out));
        g_reply_rows_ok = atoi(out) > 0;
    }
    opsc_change_free(r);
}

static void test_bad_rows_isolated(void **state) {
    (void)state;
    char ci[512], out[512];
    fresh_db(ci, sizeof(ci));
    opsc_pg_pool_t *p = pool_for(ci);
    opsc_store_t *s = store_for(p, NULL);
    g_replies = 0;
    g_reply_ci = NULL;
    opsc_store_set_reply_cb(s, on_reply, NULL);
    enum { N = 50 };
    opsc_alert_t *alerts[N];
    for (int i = 0; i < N; i++) {
        alerts[i] = mk_alert(200 + i);
    }
    char longtitle[301];
    memset(longtitle, 'x', 300);
    longtitle[300] = '\0';
    opsc_alert_set(&alerts[17]->title, longtitle);    /* 22001 */
    alerts[33]->severity = (opsc_severity_t)99;       /* 23514 */
    opsc_alert_set(&alerts[41]->source_system, NULL); /* 23502 */
    for (int i = 0; i < N; i++) {
        submit_ok(s, ch_create(alerts[i]));
        submit_ok(s, ch_repeat(&alerts[i]->id, 3, T0_US + 77));
    }
    submit_ok(s, ch_reply(1));
    drain(s, 20000);
    assert_int_equal(g_replies, 1);
    assert_int_equal(metric(s, "opsc_store_rows_rejected_total"), 3);
    assert_int_equal(metric(s, "opsc_store_isolations_total"), 1);
    assert_int_equal(metric(s, "opsc_store_batches_committed_total"), 1);
    psql_in(ci,
            "SELECT count(*), sum(occurrence_count), (SELECT count(*) FROM alert_history), "
            "count(*) FILTER (WHERE source_alert_id IN ('trap-217','trap-233','trap-241')) "
            "FROM alerts",
            out, sizeof(out));
    assert_string_equal(out, "47|141|47|0");
    /* Bisection: fewer transactions than one per row (N + 1 = 51). */
    double txns = metric(s, "opsc_store_transactions_total");
    fprintf(stderr, "isolating 3 bad rows among %d took %.0f transactions\n", N, txns);
    assert_true(txns < N);

    /* A later change of a rejected alert updates nothing and fails nothing. */
    submit_ok(s, ch_repeat(&alerts[17]->id, 9, T0_US + 99));
    drain(s, 10000);
    assert_int_equal(metric(s, "opsc_store_rows_rejected_total"), 3);

    for (int i = 0; i < N; i++) {
        opsc_alert_free(alerts[i]);
    }
    store_close(s);
    close_pool(p);
}

/* ---- replies and back-pressure ------------------------------------------------------------------
 */

static uint64_t g_durable;
static void on_durable(uint64_t seq, void *arg) {
    (void)arg;
    assert_true(seq >= g_durable);
    g_durable = seq;
}

static void test_reply_after_commit(void **state) {
    (void)state;
    char ci[512], out[64];
    fresh_db(ci, sizeof(ci));
    opsc_pg_pool_t *p = pool_for(NOWHERE);
    opsc_store_t *s = store_for(p, NULL);
    g_replies = 0;
    g_reply_rows_ok = 0;
    g_reply_ci = ci;
    g_durable = 0;
    opsc_store_set_reply_cb(s, on_reply, NULL);
    opsc_store_set_durable_cb(s, on_durable, NULL);
    opsc_alert_t *a = mk_alert(300);
    submit_ok(s, ch_create(a));
    submit_ok(s, ch_reply(7));
    assert_int_equal(opsc_store_last_seq(s), 2);
    run_for(300);
    assert_int_equal(g_replies, 0);
    assert_int_equal(g_durable, 0);
    assert_int_equal(opsc_store_pending(s), 2);
    psql_in(ci, "SELECT count(*) FROM alerts", out, sizeof(out));
    assert_string_equal(out, "0");

    assert_int_equal(opsc_pg_pool_set_conninfo(p, ci), 0);
    drain(s, 10000);
    assert_int_equal(g_replies, 1);
    assert_int_equal(g_reply_rows_ok, 1);
    assert_int_equal(g_durable, 2);

    /* A reply alone (nothing to write) still waits for the batches before it. */
    submit_ok(s, ch_reply(8));
    drain(s, 10000);
    assert_int_equal(g_replies, 2);
    assert_int_equal(g_durable, 3);
    g_reply_ci = NULL;
    opsc_alert_free(a);
    store_close(s);
    close_pool(p);
}

/* The commit hook: each finished batch's alerts with their event, after the commit, in order. */
typedef struct committed_s {
    char ci[512];
    int calls;
    char seen[16][128]; /* "<event> <id> <status in the database now>" */
    int n;
} committed_t;

static void on_committed(const opsc_store_committed_t *items, size_t n, void *arg) {
    committed_t *c = arg;
    c->calls++;
    for (size_t i = 0; i < n && c->n < 16; i++) {
        char id[37], q[256], out[32];
        uuid_str(&items[i].id, id);
        /* Committed: a connection of its own already sees the row. */
        snprintf(q, sizeof(q), "SELECT coalesce((SELECT status FROM alerts WHERE id = '%s'), '-')",
                 id);
        psql_in(c->ci, q, out, sizeof(out));
        snprintf(c->seen[c->n++], sizeof(c->seen[0]), "%s %s %s", items[i].event, id, out);
    }
}

static void test_commit_hook(void **state) {
    (void)state;
    committed_t c = {0};
    char id_a[37], id_b[37], want[80];
    fresh_db(c.ci, sizeof(c.ci));
    opsc_pg_pool_t *p = pool_for(c.ci);
    opsc_store_t *s = store_for(p, NULL);
    opsc_store_set_commit_cb(s, on_committed, &c);
    opsc_alert_t *a = mk_alert(400), *b = mk_alert(401);
    uuid_str(&a->id, id_a);
    uuid_str(&b->id, id_b);
    submit_ok(s, ch_create(a));
    submit_ok(s, ch_repeat(&a->id, 4, T0_US + 400000)); /* folds into the creation */
    drain(s, 10000);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.n, 1);
    snprintf(want, sizeof(want), "alert.created %s active", id_a);
    assert_string_equal(c.seen[0], want);

    submit_ok(s, ch_create(b));
    submit_ok(s, ch_repeat(&a->id, 5, T0_US + 500000));
    drain(s, 10000);
    submit_ok(s, ch_status(&a->id, OPSC_STATUS_ACTIVE, OPSC_STATUS_RESOLVED, T0_US + 600000,
                           "auto-clear", NULL, "resolved"));
    submit_ok(s, ch_status(&b->id, OPSC_STATUS_ACTIVE, OPSC_STATUS_SUPPRESSED, T0_US + 600000,
                           "system", NULL, "suppressed"));
    drain(s, 10000);
    assert_int_equal(c.calls, 3);
    assert_int_equal(c.n, 5);
    /* Batch 2 and 3 in commit order; within a batch, each alert once. */
    char got2[2][128], got3[2][128];
    memcpy(got2, c.seen[1], sizeof(got2));
    memcpy(got3, c.seen[3], sizeof(got3));
    char a2[80], b2[80], a3[80], b3[80];
    snprintf(a2, sizeof(a2), "alert.updated %s active", id_a);
    snprintf(b2, sizeof(b2), "alert.created %s active", id_b);
    snprintf(a3, sizeof(a3), "alert.resolved %s resolved", id_a);
    snprintf(b3, sizeof(b3), "alert.suppressed %s suppressed", id_b);
    assert_true((strcmp(got2[0], a2) == 0 && strcmp(got2[1], b2) == 0) ||
                (strcmp(got2[0], b2) == 0 && strcmp(got2[1], a2) == 0));
    assert_true((strcmp(got3[0], a3) == 0 && strcmp(got3[1], b3) == 0) ||
                (strcmp(got3[0], b3) == 0 && strcmp(got3[1], a3) == 0));
    opsc_alert_free(a);
    opsc_alert_free(b);
    store_close(s);
    close_pool(p);
}

static void test_pending_max(void **state) {
    (void)state;
    char ci[512], out[64];
    fresh_db(ci, sizeof(ci));
    opsc_pg_pool_t *p = pool_for(NOWHERE);
    opsc_store_options_t o = {.pending_max = 10, .batch_max = 4};
    opsc_store_t *s = store_for(p, &o);
    opsc_alert_t *alerts[11];
    for (int i = 0; i < 11; i++) {
        alerts[i] = mk_alert(400 + i);
    }
    for (int i = 0; i < 10; i++) {
        submit_ok(s, ch_create(alerts[i]));
    }
    assert_int_equal(opsc_store_pending(s), 10);
    opsc_change_t *c = ch_create(alerts[10]);
    assert_int_equal(opsc_store_submit(s, c), OPSC_EQUEUE_FULL);
    opsc_change_free(c); /* refused: still ours */
    /* A repeat that folds into the open batch holds nothing more: accepted. */
    submit_ok(s, ch_repeat(&alerts[9]->id, 2, T0_US));
    /* A repeat of an alert in a sealed batch would need a new item: refused. */
    c = ch_repeat(&alerts[0]->id, 2, T0_US);
    assert_int_equal(opsc_store_submit(s, c), OPSC_EQUEUE_FULL);
    opsc_change_free(c);
    c = ch_status(&alerts[9]->id, OPSC_STATUS_ACTIVE, OPSC_STATUS_RESOLVED, T0_US, "x", NULL, NULL);
    assert_int_equal(opsc_store_submit(s, c), OPSC_EQUEUE_FULL);
    opsc_change_free(c);
    c = ch_reply(1);
    assert_int_equal(opsc_store_submit(s, c), OPSC_EQUEUE_FULL);
    opsc_change_free(c);
    assert_int_equal(metric(s, "opsc_store_changes_refused_total"), 4);

    run_for(200); /* the database is away: everything stays held */
    assert_int_equal(opsc_store_pending(s), 10);
    assert_int_equal(opsc_pg_pool_set_conninfo(p, ci), 0);
    drain(s, 10000);
    submit_ok(s, ch_create(alerts[10]));
    drain(s, 10000);
    psql_in(ci, "SELECT count(*), sum(occurrence_count) FROM alerts", out, sizeof(out));
    assert_string_equal(out, "11|12");
    for (int i = 0; i < 11; i++) {
        opsc_alert_free(alerts[i]);
    }
    store_close(s);
    close_pool(p);
}

/* ---- loaders -----------------------------------------------------------------------------------
 */

typedef struct maps_s {
    int done;
    int err;
    opsc_store_mapping_row_t *rows;
    size_t n;
} maps_t;

static void on_maps(opsc_store_mapping_row_t *rows, size_t n, int err, void *arg) {
    maps_t *m = arg;
    m->done = 1;
    m->err = err;
    m->rows = rows;
    m->n = n;
}

typedef struct devs_s {
    int done;
    int err;
    opsc_store_device_row_t *rows;
    size_t n;
} devs_t;

static void on_devs(opsc_store_device_row_t *rows, size_t n, int err, void *arg) {
    devs_t *d = arg;
    d->done = 1;
    d->err = err;
    d->rows = rows;
    d->n = n;
}

static void test_loaders(void **state) {
    (void)state;
    char ci[512], out[256];
    fresh_db(ci, sizeof(ci));
    opsc_pg_pool_t *p = pool_for(ci);
    opsc_store_t *s = store_for(p, NULL);

    /* More than two loader pages of active alerts, and every status once. */
    enum { N = 11000 };
    opsc_alert_t *keep[5];
    for (int i = 0; i < N; i++) {
        opsc_alert_t *a = mk_alert(5000 + i);
        if (i < 5) {
            a->status = (opsc_status_t)i;
            keep[i] = opsc_alert_clone(a);
        }
        opsc_change_t *c = opsc_change_new(OPSC_CHANGE_CREATE);
        c->alert = a;
        submit_ok(s, c);
    }
    drain(s, 60000);
    loaded_t l = load_active(s);
    assert_int_equal(l.n, N - 2);
    for (size_t i = 1; i < l.n; i++) {
        assert_true(memcmp(l.v[i - 1]->id.b, l.v[i]->id.b, 16) < 0);
    }
    for (int i = 0; i < 5; i++) {
        const opsc_alert_t *a = find_alert(&l, &keep[i]->id);
        if (keep[i]->status == OPSC_STATUS_RESOLVED || keep[i]->status == OPSC_STATUS_EXPIRED) {
            assert_null(a);
        } else {
            assert_non_null(a);
            assert_alert_eq(a, keep[i]);
        }
        opsc_alert_free(keep[i]);
    }
    opsc_store_alerts_free(l.v, l.n);

    maps_t m = {0};
    assert_int_equal(opsc_store_load_mappings(s, on_maps, &m), 0);
    assert_int_equal(opsc_test_run_until(&g_loop, &m.done, 10000), 0);
    assert_int_equal(m.err, 0);
    psql_in(ci, "SELECT count(*) FROM oid_mappings", out, sizeof(out));
    assert_int_equal(m.n, (size_t)atoi(out));
    int found = 0;
    for (size_t i = 0; i < m.n; i++) {
        if (strcmp(m.rows[i].oid_pattern, "1.3.6.1.6.3.1.1.5.3") == 0 && !m.rows[i].vendor) {
            found = 1;
            assert_string_equal(m.rows[i].alert_type, "link_down");
            assert_string_equal(m.rows[i].category, "network");
            assert_string_equal(m.rows[i].default_severity, "major");
            assert_string_equal(m.rows[i].title_template, "Interface Down - {device_name}");
            assert_string_equal(m.rows[i].description, "Network interface has gone down");
            assert_non_null(m.rows[i].id);
            assert_int_equal(strlen(m.rows[i].id), 36);
        }
    }
    assert_true(found);
    opsc_store_mapping_rows_free(m.rows, m.n);

    psql_in(ci,
            "INSERT INTO oid_mappings (oid_pattern, vendor, alert_type, category, "
            "default_severity, is_clear_event, clear_oid_pattern, mib_name, mib_object) VALUES "
            "('1.3.6.1.4.1.6141.*', 'ciena', 'optical', 'network', 'minor', true, "
            "'1.3.6.1.4.1.6141.2', 'WWP-LEOS-MIB', 'wwpLeosAlarm'); "
            "INSERT INTO devices (ip_address, name, site, status) VALUES "
            "('10.0.0.2', 'core-2', 'dc1', 'active'), ('10.0.0.1', 'core-1', NULL, 'planned')",
            out, sizeof(out));
    m = (maps_t){0};
    assert_int_equal(opsc_store_load_mappings(s, on_maps, &m), 0);
    assert_int_equal(opsc_test_run_until(&g_loop, &m.done, 10000), 0);
    found = 0;
    for (size_t i = 0; i < m.n; i++) {
        if (m.rows[i].vendor && strcmp(m.rows[i].vendor, "ciena") == 0) {
            found = 1;
            assert_int_equal(m.rows[i].is_clear_event, 1);
            assert_string_equal(m.rows[i].clear_oid_pattern, "1.3.6.1.4.1.6141.2");
            assert_string_equal(m.rows[i].mib_name, "WWP-LEOS-MIB");
            assert_string_equal(m.rows[i].mib_object, "wwpLeosAlarm");
            assert_null(m.rows[i].title_template);
        }
    }
    assert_true(found);
    opsc_store_mapping_rows_free(m.rows, m.n);

    devs_t d = {0};
    assert_int_equal(opsc_store_load_devices(s, on_devs, &d), 0);
    assert_int_equal(opsc_test_run_until(&g_loop, &d.done, 10000), 0);
    assert_int_equal(d.err, 0);
    assert_int_equal(d.n, 2);
    assert_string_equal(d.rows[0].ip_address, "10.0.0.1");
    assert_string_equal(d.rows[0].name, "core-1");
    assert_null(d.rows[0].site);
    assert_string_equal(d.rows[0].status, "planned");
    assert_string_equal(d.rows[1].name, "core-2");
    assert_string_equal(d.rows[1].site, "dc1");
    opsc_store_device_rows_free(d.rows, d.n);

    store_close(s);
    close_pool(p);
}

/* ---- close ------------------------------------------------------------------------------------
 */

static void test_close_drains(void **state) {
    (void)state;
    char ci[512], out[64];
    fresh_db(ci, sizeof(ci));
    opsc_pg_pool_t *p = pool_for(ci);
    opsc_store_t *s = store_for(p, NULL);
    for (int i = 0; i < 300; i++) {
        opsc_alert_t *a = mk_alert(600 + i);
        opsc_change_t *c = opsc_change_new(OPSC_CHANGE_CREATE);
        c->alert = a;
        submit_ok(s, c);
    }
    g_replies = 0;
    g_reply_ci = NULL;
    opsc_store_set_reply_cb(s, on_reply, NULL);
    submit_ok(s, ch_reply(3));
    store_close(s); /* writes what it holds before `done` */
    assert_int_equal(g_replies, 1);
    psql_in(ci, "SELECT count(*) FROM alerts", out, sizeof(out));
    assert_string_equal(out, "300");
    close_pool(p);

    /* The database away: close gives up after drain_timeout_ms, frees everything. */
    p = pool_for(NOWHERE);
    opsc_store_options_t o = {.drain_timeout_ms = 200};
    s = store_for(p, &o);
    g_replies = 0;
    opsc_store_set_reply_cb(s, on_reply, NULL);
    for (int i = 0; i < 10; i++) {
        opsc_alert_t *a = mk_alert(900 + i);
        opsc_change_t *c = opsc_change_new(OPSC_CHANGE_CREATE);
        c->alert = a;
        submit_ok(s, c);
    }
    submit_ok(s, ch_reply(4));
    run_for(50); /* the first batch is in the pool's queue */
    uint64_t t0 = uv_now(&g_loop);
    store_close(s);
    assert_true(uv_now(&g_loop) - t0 >= 150);
    assert_int_equal(g_replies, 0);
    close_pool(p); /* completes the orphaned request: nothing calls back, nothing leaks */
}

/* Closing the store from its own reply callback is allowed. */
typedef struct closer_s {
    opsc_store_t *s;
    int replies;
    int done;
} closer_t;

static void on_reply_close(opsc_change_t *r, void *arg) {
    closer_t *c = arg;
    c->replies++;
    opsc_change_free(r);
    if (c->replies == 1) {
        opsc_store_close(c->s, set_flag, &c->done);
    }
}

static void test_close_from_reply_cb(void **state) {
    (void)state;
    char ci[512], out[64];
    fresh_db(ci, sizeof(ci));
    opsc_pg_pool_t *p = pool_for(ci);
    closer_t c = {0};
    c.s = store_for(p, NULL);
    opsc_store_set_reply_cb(c.s, on_reply_close, &c);
    opsc_alert_t *a = mk_alert(950);
    opsc_alert_t *b = mk_alert(951);
    submit_ok(c.s, ch_create(a));
    submit_ok(c.s, ch_reply(1));
    submit_ok(c.s, ch_reply(2)); /* same batch: still delivered after the close call */
    opsc_store_flush(c.s);
    run_for(1);                   /* the batch is sealed and sent */
    submit_ok(c.s, ch_create(b)); /* next batch: written by the drain */
    assert_int_equal(opsc_test_run_until(&g_loop, &c.done, 10000), 0);
    assert_int_equal(c.replies, 2);
    psql_in(ci, "SELECT count(*) FROM alerts", out, sizeof(out));
    assert_string_equal(out, "2");
    opsc_alert_free(a);
    opsc_alert_free(b);
    close_pool(p);
}

/* ---- throughput (printed, not asserted)
 * ---------------------------------------------------------- */

typedef struct feed_s {
    opsc_store_t *s;
    uv_idle_t idle;
    int next;
    int total;
} feed_t;

static void on_feed(uv_idle_t *h) {
    feed_t *f = h->data;
    for (int k = 0; k < 2000 && f->next < f->total && opsc_store_pending(f->s) < 20000; k++) {
        opsc_alert_t *a = mk_alert(f->next);
        opsc_change_t *c = opsc_change_new(OPSC_CHANGE_CREATE);
        c->alert = a;
        assert_int_equal(opsc_store_submit(f->s, c), 0);
        f->next++;
    }
    if (f->next >= f->total) {
        uv_idle_stop(h);
    }
}

/* ---- UPDATE ---------------------------------------------------------------------------- */

static opsc_change_t *ch_update(const opsc_uuid_t *id, int64_t at) {
    opsc_change_t *c = opsc_change_new(OPSC_CHANGE_UPDATE);
    assert_non_null(c);
    assert_non_null(c->upd);
    c->id = *id;
    c->at_us = at;
    return c;
}

/* The flapping mark as the pipeline writes it, then a count and a name. */
static void add_updates(opsc_store_t *s, const opsc_uuid_t *id, int64_t at) {
    opsc_change_t *u = ch_update(id, at);
    assert_int_equal(opsc_alert_update_tag(u->upd, "flapping", 1), 0);
    assert_int_equal(opsc_alert_update_custom(u->upd, "{\"flapping\":true,\"flap_count\":6}"), 0);
    submit_ok(s, u);
    u = ch_update(id, at + 1);
    assert_int_equal(opsc_alert_update_tag(u->upd, "old", 0), 0);
    assert_int_equal(opsc_alert_update_custom(u->upd, "{\"flap_count\":7,\"gone\":null}"), 0);
    u->upd->mask |= OPSC_UPD_PRIORITY | OPSC_UPD_IMPACT | OPSC_UPD_DEVICE_NAME;
    u->upd->old_mask |= OPSC_UPD_PRIORITY;
    u->upd->priority = 2;
    u->upd->old_priority = 4;
    u->upd->impact = OPSC_LEVEL_HIGH;
    u->upd->device_name = strdup("core-sw-1.example.net");
    snprintf(u->actor, sizeof(u->actor), "rdns");
    submit_ok(s, u);
}

static void check_updated_row(const char *ci, const opsc_uuid_t *uid) {
    char id[37], q[512], out[1024];
    uuid_str(uid, id);
    snprintf(q, sizeof(q),
             "SELECT tags::text, custom_fields->>'flapping', custom_fields->>'flap_count', "
             "custom_fields ? 'gone', custom_fields->>'keep', priority, impact, device_name "
             "FROM alerts WHERE id = '%s'",
             id);
    psql_in(ci, q, out, sizeof(out));
    assert_string_equal(out, "{keep,flapping}|true|7|f|1|P2|high|core-sw-1.example.net");
    snprintf(q, sizeof(q),
             "SELECT action, user_name, changes::text FROM alert_history WHERE alert_id = '%s' "
             "AND action = 'updated' ORDER BY created_at",
             id);
    psql_in(ci, q, out, sizeof(out));
    assert_string_equal(
        out, "updated|system|{\"tags\": {\"added\": [\"flapping\"], \"removed\": []}, "
             "\"custom_fields\": {\"new\": {\"flapping\": true, \"flap_count\": 6}}}\n"
             "updated|rdns|{\"tags\": {\"added\": [], \"removed\": [\"old\"]}, \"impact\": "
             "{\"new\": \"high\"}, \"priority\": {\"new\": \"P2\", \"old\": \"P4\"}, "
             "\"device_name\": {\"new\": \"core-sw-1.example.net\"}, \"custom_fields\": "
             "{\"new\": {\"gone\": null, \"flap_count\": 7}}}");
}

static opsc_alert_t *mk_tagged(int i) {
    opsc_alert_t *a = mk_alert(i);
    a->tags = calloc(2, sizeof(char *));
    a->tags[0] = strdup("keep");
    a->tags[1] = strdup("old");
    a->ntags = 2;
    opsc_alert_set(&a->custom_fields_json, "{\"keep\":1,\"gone\":2}");
    return a;
}

/* UPDATEs of an alert created in the same batch fold into its INSERT row. */
static void test_update_folds_into_create(void **state) {
    (void)state;
    char ci[512], id[37], q[256], out[256];
    fresh_db(ci, sizeof(ci));
    opsc_pg_pool_t *p = pool_for(ci);
    opsc_store_t *s = store_for(p, NULL);
    opsc_alert_t *a = mk_tagged(1);
    submit_ok(s, ch_create(a));
    add_updates(s, &a->id, T0_US + 10);
    drain(s, 10000);
    assert_int_equal(metric(s, "opsc_store_rows_written_total{kind=\"update\"}"), 0);
    assert_int_equal(metric(s, "opsc_store_changes_received_total{kind=\"update\"}"), 2);
    assert_int_equal(metric(s, "opsc_store_rows_written_total{kind=\"history\"}"), 3);
    check_updated_row(ci, &a->id);
    uuid_str(&a->id, id);
    snprintf(q, sizeof(q), "SELECT count(*) FROM alert_history WHERE alert_id = '%s'", id);
    psql_in(ci, q, out, sizeof(out));
    assert_string_equal(out, "3");
    opsc_alert_free(a);
    store_close(s);
    close_pool(p);
}

/* UPDATEs of an existing alert: one UPDATE row per batch, patches merged. */
static void test_update_standalone(void **state) {
    (void)state;
    char ci[512];
    fresh_db(ci, sizeof(ci));
    opsc_pg_pool_t *p = pool_for(ci);
    opsc_store_t *s = store_for(p, NULL);
    opsc_alert_t *a = mk_tagged(2);
    submit_ok(s, ch_create(a));
    drain(s, 10000);
    add_updates(s, &a->id, T0_US + 10);
    drain(s, 10000);
    assert_int_equal(metric(s, "opsc_store_rows_written_total{kind=\"update\"}"), 1);
    assert_int_equal(metric(s, "opsc_store_changes_coalesced_total"), 1);
    check_updated_row(ci, &a->id);

    /* The mark comes off again in a later batch: the tag goes, the key is deleted. */
    opsc_change_t *u = ch_update(&a->id, T0_US + 20);
    assert_int_equal(opsc_alert_update_tag(u->upd, "flapping", 0), 0);
    assert_int_equal(opsc_alert_update_custom(u->upd, "{\"flapping\":null}"), 0);
    submit_ok(s, u);
    drain(s, 10000);
    char id[37], q[256], out[256];
    uuid_str(&a->id, id);
    snprintf(q, sizeof(q), "SELECT tags::text, custom_fields::text FROM alerts WHERE id = '%s'",
             id);
    psql_in(ci, q, out, sizeof(out));
    assert_string_equal(out, "{keep}|{\"keep\": 1, \"flap_count\": 7}");
    opsc_alert_free(a);
    store_close(s);
    close_pool(p);
}

/* The same changes again (a journal replay, another store): the rows do not move. */
static void test_update_replay(void **state) {
    (void)state;
    char ci[512], id[37], q[256], out[256];
    fresh_db(ci, sizeof(ci));
    opsc_pg_pool_t *p = pool_for(ci);
    opsc_alert_t *a = mk_tagged(3);
    opsc_alert_t *b = mk_tagged(4);
    for (int round = 0; round < 2; round++) {
        opsc_store_t *s = store_for(p, NULL);
        submit_ok(s, ch_create(a)); /* a: created and updated in one batch */
        add_updates(s, &a->id, T0_US + 10);
        submit_ok(s, ch_create(b)); /* b: updated in a batch of its own */
        drain(s, 10000);
        add_updates(s, &b->id, T0_US + 10);
        drain(s, 10000);
        store_close(s);
    }
    check_updated_row(ci, &a->id);
    check_updated_row(ci, &b->id);
    uuid_str(&b->id, id);
    snprintf(q, sizeof(q), "SELECT count(*) FROM alert_history WHERE alert_id = '%s'", id);
    psql_in(ci, q, out, sizeof(out));
    assert_string_equal(out, "3");
    opsc_alert_free(a);
    opsc_alert_free(b);
    close_pool(p);
}

/* resolved -> active (a flapping alert reopened) clears the resolution, in one batch or two. */
static void test_reopen_clears_resolution(void **state) {
    (void)state;
    char ci[512], id[37], id2[37], q[512], out[256];
    fresh_db(ci, sizeof(ci));
    opsc_pg_pool_t *p = pool_for(ci);
    opsc_store_t *s = store_for(p, NULL);
    opsc_alert_t *a = mk_alert(5);
    opsc_alert_t *b = mk_alert(6);
    submit_ok(s, ch_create(a));
    drain(s, 10000);
    submit_ok(s, ch_status(&a->id, OPSC_STATUS_ACTIVE, OPSC_STATUS_RESOLVED, T0_US + 5,
                           "auto-clear", "clear:link_up", "resolved"));
    drain(s, 10000);
    submit_ok(s, ch_status(&a->id, OPSC_STATUS_RESOLVED, OPSC_STATUS_ACTIVE, T0_US + 6, "system",
                           "flapping", "reopened"));
    submit_ok(s, ch_create(b));
    submit_ok(s, ch_status(&b->id, OPSC_STATUS_ACTIVE, OPSC_STATUS_RESOLVED, T0_US + 5,
                           "auto-clear", "clear:link_up", "resolved"));
    submit_ok(s, ch_status(&b->id, OPSC_STATUS_RESOLVED, OPSC_STATUS_ACTIVE, T0_US + 6, "system",
                           "flapping", "reopened"));
    drain(s, 10000);
    uuid_str(&a->id, id);
    uuid_str(&b->id, id2);
    snprintf(q, sizeof(q),
             "SELECT status, resolved_at IS NULL, resolved_by IS NULL, correlation_rule FROM "
             "alerts WHERE id IN ('%s', '%s')",
             id, id2);
    psql_in(ci, q, out, sizeof(out));
    assert_string_equal(out, "active|t|t|flapping\nactive|t|t|flapping");
    opsc_alert_free(a);
    opsc_alert_free(b);
    store_close(s);
    close_pool(p);
}

/*
 * Full batches of new alerts go ahead of the one in flight; one that fails
 * there (a bad row) goes back and is bisected in its turn. Every good row is
 * stored, the durable sequence only grows, and replies keep their order.
 */
static void test_batches_ahead(void **state) {
    (void)state;
    char ci[512], out[128];
    fresh_db(ci, sizeof(ci));
    opsc_pg_pool_t *p = pool_for(ci);
    opsc_store_options_t o = {.batch_max = 20};
    opsc_store_t *s = store_for(p, &o);
    g_durable = 0;
    opsc_store_set_durable_cb(s, on_durable, NULL);
    enum { N = 200 };
    opsc_alert_t *alerts[N];
    char longtitle[301];
    memset(longtitle, 'x', 300);
    longtitle[300] = '\0';
    for (int i = 0; i < N; i++) {
        alerts[i] = mk_alert(500 + i);
        /* 22001 in batches 0 and 1 (the second fails ahead of the first and goes back) and
         * in batch 5 (batch 6, good, is written ahead and waits while 5 is bisected). */
        if (i == 7 || i == 27 || i == 107) {
            opsc_alert_set(&alerts[i]->title, longtitle);
        }
        submit_ok(s, ch_create(alerts[i]));
    }
    drain(s, 30000);
    assert_int_equal(opsc_store_pending(s), 0);
    assert_true(metric(s, "opsc_store_batches_ahead_total") >= 1);
    /* Whether a failing batch was ahead when it failed depends on timing (under load
     * batch 0 may commit before batch 1 leaves): what must hold either way is below. */
    if (metric(s, "opsc_store_batches_ahead_back_total") == 0) {
        fprintf(stderr, "note: no failing batch was ahead this time (timing)\n");
    }
    assert_int_equal(metric(s, "opsc_store_rows_rejected_total"), 3);
    assert_true(g_durable == opsc_store_last_seq(s));
    psql_in(ci, "SELECT count(*), (SELECT count(*) FROM alert_history) FROM alerts", out,
            sizeof(out));
    assert_string_equal(out, "197|197");
    for (int i = 0; i < N; i++) {
        opsc_alert_free(alerts[i]);
    }
    store_close(s);
    close_pool(p);
}

static void test_throughput_creates(void **state) {
    (void)state;
    char ci[512], out[64];
    fresh_db(ci, sizeof(ci));
    opsc_pg_pool_t *p = pool_for(ci);
    opsc_store_t *s = store_for(p, NULL);
    enum { N = 100000 };
    feed_t f = {.s = s, .total = N};
    uv_idle_init(&g_loop, &f.idle);
    f.idle.data = &f;
    uint64_t t0 = uv_hrtime();
    uv_idle_start(&f.idle, on_feed);
    while (f.next < N) {
        uv_run(&g_loop, UV_RUN_ONCE);
    }
    drain(s, 110000);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    uv_close((uv_handle_t *)&f.idle, NULL);
    psql_in(ci, "SELECT count(*) FROM alerts", out, sizeof(out));
    assert_int_equal(atoi(out), N);
    fprintf(stderr,
            "throughput: %d CREATEs in %.2f s = %.0f alerts/s, %.0f rows/s with their history "
            "rows; %.0f batches, largest %.0f changes, slowest %.3f s (docs/performance.md "
            "multirow, 4-column rows, no history: 28,030 rows/s)\n",
            N, secs, N / secs, 2 * N / secs, metric(s, "opsc_store_batches_committed_total"),
            metric(s, "opsc_store_batch_changes_max"), metric(s, "opsc_store_flush_seconds_max"));
    store_close(s);
    close_pool(p);
}

int main(void) {
    /* Every psql and libpq connection of this test gives up instead of waiting for ever:
     * a stuck statement fails its test with PostgreSQL's message. */
    setenv("PGCONNECT_TIMEOUT", "20", 0);
    setenv("PGOPTIONS", "-c statement_timeout=60000 -c lock_timeout=60000", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_round_trip),
        cmocka_unit_test(test_repeats_coalesce),
        cmocka_unit_test(test_repeat_folds_into_create),
        cmocka_unit_test(test_status_changes),
        cmocka_unit_test(test_replay_idempotent),
        cmocka_unit_test(test_batches_ahead),
        cmocka_unit_test(test_bad_rows_isolated),
        cmocka_unit_test(test_reply_after_commit),
        cmocka_unit_test(test_commit_hook),
        cmocka_unit_test(test_pending_max),
        cmocka_unit_test(test_loaders),
        cmocka_unit_test(test_close_drains),
        cmocka_unit_test(test_close_from_reply_cb),
        cmocka_unit_test(test_database_outage_loses_nothing),
        cmocka_unit_test(test_update_folds_into_create),
        cmocka_unit_test(test_update_standalone),
        cmocka_unit_test(test_update_replay),
        cmocka_unit_test(test_reopen_clears_resolution),
        cmocka_unit_test(test_throughput_creates),
    };
    /* TEST_STORE_FILTER=test_loaders runs one test (cmocka's wildcard pattern). */
    if (getenv("TEST_STORE_FILTER")) {
        cmocka_set_test_filter(getenv("TEST_STORE_FILTER"));
    }
    return cmocka_run_group_tests(tests, setup, teardown);
}
