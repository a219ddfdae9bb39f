/*
 * trap_storm alerts on the pipeline side: a report creates one alert (the
 * shared fingerprint, device name from the snapshot), later reports repeat
 * it, a tick resolves it only after the quiet period, and an alert loaded
 * from the database at start resolves the same way.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <string.h>

#include <uv.h>

#include "opsc/dedup.h"
#include "opsc/normalize.h"
#include "pipeline/trap_storm.h"

#define SEC 1000000LL
#define T0 (1700000000LL * SEC)

typedef struct {
    opsc_change_t *c[16];
    int n;
} sink_t;

static void sink_emit(opsc_change_t *c, void *arg) {
    sink_t *s = arg;
    assert_true(s->n < 16);
    s->c[s->n++] = c;
}

static void sink_clear(sink_t *s) {
    for (int i = 0; i < s->n; i++) {
        opsc_change_free(s->c[i]);
    }
    s->n = 0;
}

static struct sockaddr_storage v4(const char *ip) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    assert_int_equal(uv_ip4_addr(ip, 40000, (struct sockaddr_in *)&ss), 0);
    return ss;
}

static void test_report_repeat_resolve(void **state) {
    (void)state;
    static const opsc_device_ref_t devs[] = {{.ip = "192.0.2.9", .name = "edge-9"}};
    char err[256];
    opsc_normalizer_t *norm = opsc_normalizer_create(NULL, 0, devs, 1, err, sizeof(err));
    assert_non_null(norm);
    opsc_dedup_t *d = opsc_dedup_create(16);
    sink_t sink = {0};
    opsc_trap_storm_t *s = opsc_trap_storm_create(50, 100, 3 * SEC, sink_emit, &sink);
    assert_non_null(s);
    struct sockaddr_storage a = v4("192.0.2.9");
    struct sockaddr_storage b = v4("192.0.2.10");

    opsc_trap_storm_report(s, d, norm, (struct sockaddr *)&a, 1234, T0);
    assert_int_equal(sink.n, 1);
    opsc_change_t *c = sink.c[0];
    assert_int_equal(c->kind, OPSC_CHANGE_CREATE);
    const opsc_alert_t *al = c->alert;
    char fp[OPSC_FINGERPRINT_HEX];
    opsc_normalize_fingerprint("snmp", "192.0.2.9", "trap_storm", "", fp);
    assert_string_equal(al->fingerprint, fp);
    assert_string_equal(al->alert_type, "trap_storm");
    assert_string_equal(al->title, "Trap storm from edge-9 (rate limited)");
    assert_string_equal(al->device_ip, "192.0.2.9");
    assert_string_equal(al->device_name, "edge-9");
    assert_int_equal(al->severity, OPSC_SEV_WARNING);
    assert_int_equal(al->category, OPSC_CAT_NETWORK);
    assert_int_equal(al->status, OPSC_STATUS_ACTIVE);
    assert_non_null(strstr(al->custom_fields_json, "\"dropped\": 1234"));
    assert_non_null(strstr(al->custom_fields_json, "\"per_source_rate\": 50"));
    assert_non_null(strstr(al->raw_data_json, "\"address\": \"192.0.2.9\""));
    assert_memory_equal(&c->id, &al->id, sizeof(c->id));
    sink_clear(&sink);

    /* An unknown device is named by its address. */
    opsc_trap_storm_report(s, d, norm, (struct sockaddr *)&b, 7, T0);
    assert_int_equal(sink.n, 1);
    assert_string_equal(sink.c[0]->alert->title, "Trap storm from 192.0.2.10 (rate limited)");
    assert_null(sink.c[0]->alert->device_name);
    sink_clear(&sink);

    /* Repeats: no new alert, the count goes up. */
    opsc_trap_storm_report(s, d, norm, (struct sockaddr *)&a, 50, T0 + 1 * SEC);
    opsc_trap_storm_report(s, d, norm, (struct sockaddr *)&a, 50, T0 + 2 * SEC);
    assert_int_equal(sink.n, 0);
    opsc_dedup_entry_t *e = opsc_dedup_find(d, fp);
    assert_non_null(e);
    assert_int_equal(e->occurrence_count, 3);
    (void)opsc_dedup_take_dirty(d); /* the pipeline flushed its REPEAT */

    /* Not quiet long enough for a; b (last heard at T0) is. */
    opsc_trap_storm_tick(s, d, T0 + 4 * SEC);
    assert_int_equal(sink.n, 1);
    assert_int_equal(sink.c[0]->kind, OPSC_CHANGE_STATUS);
    assert_int_equal(sink.c[0]->new_status, OPSC_STATUS_RESOLVED);
    assert_string_equal(sink.c[0]->actor, "system");
    assert_string_equal(sink.c[0]->rule, "trap_storm");
    assert_string_equal(sink.c[0]->action, "resolved");
    sink_clear(&sink);
    assert_non_null(opsc_dedup_find(d, fp));

    /* a goes quiet: a repeat noted in this batch goes out before its resolution. */
    opsc_trap_storm_report(s, d, norm, (struct sockaddr *)&a, 5, T0 + 5 * SEC);
    opsc_trap_storm_tick(s, d, T0 + 8 * SEC);
    assert_int_equal(sink.n, 2);
    assert_int_equal(sink.c[0]->kind, OPSC_CHANGE_REPEAT);
    assert_int_equal(sink.c[0]->occurrence_count, 4);
    assert_int_equal(sink.c[1]->kind, OPSC_CHANGE_STATUS);
    assert_memory_equal(&sink.c[1]->id, &e->id, sizeof(e->id));
    sink_clear(&sink);
    assert_null(opsc_dedup_find(d, fp));
    assert_int_equal(opsc_dedup_count(d), 0);

    /* A storm after that opens a new alert. */
    opsc_trap_storm_report(s, d, norm, (struct sockaddr *)&a, 9, T0 + 60 * SEC);
    assert_int_equal(sink.n, 1);
    assert_int_equal(sink.c[0]->kind, OPSC_CHANGE_CREATE);
    sink_clear(&sink);

    opsc_trap_storm_destroy(s);
    opsc_dedup_destroy(d);
    opsc_normalizer_destroy(norm);
}

/* An active trap_storm alert loaded at start (not created here) resolves too. */
static void test_loaded_alert_resolves(void **state) {
    (void)state;
    opsc_dedup_t *d = opsc_dedup_create(16);
    sink_t sink = {0};
    opsc_trap_storm_t *s = opsc_trap_storm_create(50, 100, 3 * SEC, sink_emit, &sink);
    char fp[OPSC_FINGERPRINT_HEX];
    opsc_uuid_t id;
    opsc_uuid_generate(&id);
    opsc_normalize_fingerprint("snmp", "198.51.100.1", "trap_storm", "", fp);
    assert_non_null(
        opsc_dedup_add(d, fp, &id, OPSC_STATUS_ACTIVE, 9, T0, "trap_storm", "198.51.100.1", ""));
    assert_non_null(opsc_dedup_add(d, "f00d", &id, OPSC_STATUS_ACTIVE, 1, T0, "link_down",
                                   "198.51.100.1", "3"));
    opsc_trap_storm_tick(s, d, T0 + 1 * SEC);
    assert_int_equal(sink.n, 0);
    opsc_trap_storm_tick(s, d, T0 + 3 * SEC);
    assert_int_equal(sink.n, 1);
    assert_int_equal(sink.c[0]->new_status, OPSC_STATUS_RESOLVED);
    sink_clear(&sink);
    assert_int_equal(opsc_dedup_count(d), 1); /* the link_down alert stays */
    opsc_trap_storm_tick(s, d, T0 + 100 * SEC);
    assert_int_equal(sink.n, 0);
    opsc_trap_storm_destroy(s);
    opsc_dedup_destroy(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_repeat_resolve),
        cmocka_unit_test(test_loaded_alert_resolves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
