/*
 * Correlation helpers (src/pipeline/correlate.c): the ITIL matrix, impact
 * derivation, the flap tracker, the dependents count of the normalizer
 * snapshot, the UPDATE patches that mark a flapping alert, and the cost of
 * one expiry scan slice over a million-entry index.
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

#include <uv.h>

#include "opsc/buf.h"
#include "opsc/dedup.h"
#include "opsc/error.h"
#include "opsc/normalize.h"
#include "opsc/pipeline.h"
#include "pipeline/correlate_int.h"

#define H OPSC_LEVEL_HIGH
#define M OPSC_LEVEL_MEDIUM
#define L OPSC_LEVEL_LOW
#define S 1000000LL

static void test_priority_matrix(void **state) {
    (void)state;
    /* impact (rows) x urgency (columns), the standard 3x3 table */
    static const int want[3][3] = {{1, 2, 3}, {2, 3, 4}, {3, 4, 5}};
    const opsc_level_t lv[3] = {H, M, L};
    for (int i = 0; i < 3; i++) {
        for (int u = 0; u < 3; u++) {
            assert_int_equal(opsc__priority_of(lv[i], lv[u]), want[i][u]);
        }
    }
    assert_int_equal(opsc__priority_of(OPSC_LEVEL_NONE, H), 0);
    assert_int_equal(opsc__priority_of(H, OPSC_LEVEL_NONE), 0);
}

static void test_urgency_from_severity(void **state) {
    (void)state;
    assert_int_equal(opsc__urgency_of(OPSC_SEV_CRITICAL), H);
    assert_int_equal(opsc__urgency_of(OPSC_SEV_MAJOR), H);
    assert_int_equal(opsc__urgency_of(OPSC_SEV_MINOR), M);
    assert_int_equal(opsc__urgency_of(OPSC_SEV_WARNING), M);
    assert_int_equal(opsc__urgency_of(OPSC_SEV_INFO), L);
    assert_int_equal(opsc__urgency_of(OPSC_SEV_CLEAR), L);
}

static void test_impact_derivation(void **state) {
    (void)state;
    /* The device's own say wins, in any case; a typo falls back to the graph. */
    assert_int_equal(opsc__impact_of("high", 0), H);
    assert_int_equal(opsc__impact_of("Medium", 50), M);
    assert_int_equal(opsc__impact_of("LOW", 50), L);
    assert_int_equal(opsc__impact_of("hihg", 50), H);
    assert_int_equal(opsc__impact_of(NULL, 0), L);
    assert_int_equal(opsc__impact_of(NULL, 1), M);
    assert_int_equal(opsc__impact_of(NULL, OPSC_IMPACT_HIGH_DEPENDENTS - 1), M);
    assert_int_equal(opsc__impact_of(NULL, OPSC_IMPACT_HIGH_DEPENDENTS), H);
}

/* core <- dist <- 12 leaves, plus a cycle a <-> b and an unrelated edge. */
static opsc_normalizer_t *graph(void) {
    char err[256];
    opsc_normalizer_t *n = opsc_normalizer_create(NULL, 0, NULL, 0, err, sizeof(err));
    assert_non_null(n);
    static char names[12][16];
    opsc_dependency_ref_t rows[20];
    size_t k = 0;
    rows[k++] = (opsc_dependency_ref_t){"10.0.0.2", "10.0.0.1/32"};
    for (int i = 0; i < 12; i++) {
        snprintf(names[i], sizeof(names[i]), "10.0.1.%d", i);
        rows[k++] = (opsc_dependency_ref_t){names[i], "10.0.0.2"};
    }
    rows[k++] = (opsc_dependency_ref_t){"10.9.0.1", "10.9.0.2"};
    rows[k++] = (opsc_dependency_ref_t){"10.9.0.2", "10.9.0.1"};
    rows[k++] = (opsc_dependency_ref_t){"10.8.0.1", "10.8.0.9"};
    assert_int_equal(opsc_normalizer_set_dependencies(n, rows, k), 0);
    return n;
}

static void test_dependents_count(void **state) {
    (void)state;
    opsc_normalizer_t *n = graph();
    assert_int_equal(opsc_normalizer_dependents(n, "10.0.0.1", 64), 13); /* transitive */
    assert_int_equal(opsc_normalizer_dependents(n, "10.0.0.2", 64), 12);
    assert_int_equal(opsc_normalizer_dependents(n, "10.0.0.1", 10), 10); /* stops at max */
    assert_int_equal(opsc_normalizer_dependents(n, "10.0.1.3", 64), 0);  /* a leaf */
    assert_int_equal(opsc_normalizer_dependents(n, "10.9.0.1", 64), 1);  /* cycle-safe */
    assert_int_equal(opsc_normalizer_dependents(n, "10.8.0.9", 64), 1);
    assert_int_equal(opsc_normalizer_dependents(n, "10.7.7.7", 64), 0);
    assert_int_equal(opsc__impact_of(NULL, opsc_normalizer_dependents(n, "10.0.0.1", 10)), H);
    assert_int_equal(opsc__impact_of(NULL, opsc_normalizer_dependents(n, "10.8.0.9", 10)), M);
    opsc_normalizer_destroy(n);
}

/* Distinct in the first 16 hex digits, as SHA-256 fingerprints are (the index hashes those). */
static void fp_of(unsigned i, char out[65]) {
    snprintf(out, 65, "%016x%048x", i * 2654435761u, i);
}

static void test_flap_threshold_and_window(void **state) {
    (void)state;
    opsc_flap_tracker_t *t = opsc__flap_create(3, 10 * S, 100);
    assert_non_null(t);
    char fp[65];
    fp_of(1, fp);
    opsc_uuid_t id[5];
    opsc_flap_rec_t *r = opsc__flap_get(t, fp);
    assert_non_null(r);
    for (int i = 0; i < 3; i++) {
        opsc_uuid_generate(&id[i]);
        opsc__flap_note_resolve(t, r, &id[i], (uint32_t)i + 1, (i + 1) * S);
        assert_false(opsc__flap_exceeded(t, r, (i + 1) * S)); /* 3 is not more than 3 */
    }
    opsc_uuid_generate(&id[3]);
    opsc__flap_note_resolve(t, r, &id[3], 9, 4 * S);
    assert_true(opsc__flap_exceeded(t, r, 4 * S));
    assert_memory_equal(r->last_id.b, id[3].b, 16);
    assert_int_equal(r->last_count, 9);
    /* The first resolve (t=1 s) leaves the window at 11 s: 3 left, not flapping. */
    assert_true(opsc__flap_exceeded(t, r, 11 * S));
    assert_false(opsc__flap_exceeded(t, r, 11 * S + 1));
    /* A fifth resolve pushes the oldest out of the ring; 4 within the window again. */
    opsc__flap_note_resolve(t, r, &id[3], 10, 12 * S);
    assert_true(opsc__flap_exceeded(t, r, 12 * S));
    assert_ptr_equal(opsc__flap_find(t, fp), r);
    opsc__flap_destroy(t);
}

static void count_cb(opsc_flap_rec_t *r, void *arg) {
    (*(int *)arg)++;
    (void)r;
}

static void unmark_cb(opsc_flap_rec_t *r, void *arg) {
    opsc__flap_set_flapping(arg, r, 0, 0);
}

static void test_flap_settle(void **state) {
    (void)state;
    opsc_flap_tracker_t *t = opsc__flap_create(2, 10 * S, 100);
    char fp[65];
    for (unsigned i = 0; i < 3; i++) {
        fp_of(i, fp);
        opsc__flap_set_flapping(t, opsc__flap_get(t, fp), 1, (int64_t)i * S);
    }
    assert_int_equal(opsc__flap_flapping(t), 3);
    int n = 0;
    assert_int_equal(opsc__flap_each_settled(t, 10 * S, count_cb, &n), 1); /* only fp 0 */
    fp_of(1, fp);
    opsc__flap_find(t, fp)->last_transition_us = 15 * S; /* a late transition keeps it */
    assert_int_equal(opsc__flap_each_settled(t, 12 * S + 1, unmark_cb, t), 2);
    assert_int_equal(opsc__flap_flapping(t), 1);
    assert_int_equal(opsc__flap_each_settled(t, 25 * S, unmark_cb, t), 1);
    assert_int_equal(opsc__flap_flapping(t), 0);
    /* Unmarked: counts start afresh. */
    opsc_flap_rec_t *r = opsc__flap_find(t, fp);
    assert_int_equal(r->ntimes, 0);
    assert_int_equal(r->flap_count, 0);
    opsc__flap_destroy(t);
}

/* Bounded: the stalest non-flapping record goes; a flapping one is never evicted. */
static void test_flap_bounded(void **state) {
    (void)state;
    enum { MAX = 32 };
    opsc_flap_tracker_t *t = opsc__flap_create(5, 10 * S, MAX);
    char fp[65];
    fp_of(0, fp);
    opsc__flap_set_flapping(t, opsc__flap_get(t, fp), 1, 0);
    for (unsigned i = 1; i < 1000; i++) {
        fp_of(i, fp);
        assert_non_null(opsc__flap_get(t, fp));
        assert_true(opsc__flap_count(t) <= MAX);
    }
    assert_int_equal(opsc__flap_count(t), MAX);
    assert_int_equal(opsc__flap_evicted(t), 1000 - MAX);
    fp_of(0, fp);
    assert_non_null(opsc__flap_find(t, fp)); /* the flapping one stayed */
    fp_of(999 - MAX + 2, fp);
    assert_non_null(opsc__flap_find(t, fp)); /* the newest stayed */
    fp_of(1, fp);
    assert_null(opsc__flap_find(t, fp)); /* the stalest went */
    size_t mem = opsc__flap_memory(t);
    assert_true(mem > MAX * sizeof(opsc_flap_rec_t) && mem < 64 * 1024);
    opsc__flap_destroy(t);

    /* Every record flapping: a new fingerprint is refused, nothing evicted. */
    t = opsc__flap_create(1, S, 16);
    for (unsigned i = 0; i < 16; i++) {
        fp_of(i, fp);
        opsc__flap_set_flapping(t, opsc__flap_get(t, fp), 1, 0);
    }
    fp_of(99, fp);
    assert_null(opsc__flap_get(t, fp));
    assert_int_equal(opsc__flap_count(t), 16);
    opsc__flap_destroy(t);
    assert_null(opsc__flap_create(0, S, 16)); /* threshold 0: off */
}

static void test_flap_changes(void **state) {
    (void)state;
    opsc_uuid_t id;
    opsc_uuid_generate(&id);
    opsc_change_t *c = opsc__flap_mark_change(&id, 4, 1750000000000000LL, 1750000000000001LL);
    assert_non_null(c);
    assert_int_equal(c->kind, OPSC_CHANGE_UPDATE);
    assert_memory_equal(c->id.b, id.b, 16);
    assert_int_equal(c->upd->mask, OPSC_UPD_TAGS | OPSC_UPD_CUSTOM_FIELDS);
    assert_int_equal(c->upd->ntags_add, 1);
    assert_string_equal(c->upd->tags_add[0], "flapping");
    assert_string_equal(c->upd->custom_patch,
                        "{\"flapping\":true,\"flap_count\":4,"
                        "\"flapping_since\":\"2025-06-15T15:06:40.000000Z\"}");
    /* Folded into an alert row: tag added once, keys merged. */
    opsc_alert_t *a = opsc_alert_new();
    opsc_alert_set(&a->custom_fields_json, "{\"site\":\"x\",\"flapping\":false}");
    assert_int_equal(opsc_alert_update_apply(c->upd, a), 0);
    assert_int_equal(opsc_alert_update_apply(c->upd, a), 0);
    assert_int_equal(a->ntags, 1);
    opsc_change_t *u = opsc__flap_unmark_change(&id, 6, 1750000000000000LL);
    assert_non_null(u);
    assert_int_equal(u->upd->ntags_del, 1);
    /* Merged: the later patch wins per key, the tag is removed again. */
    assert_int_equal(opsc_alert_update_merge(c->upd, u->upd), 0);
    assert_int_equal(c->upd->ntags_add, 0);
    assert_int_equal(c->upd->ntags_del, 1);
    assert_int_equal(opsc_alert_update_apply(u->upd, a), 0);
    assert_int_equal(a->ntags, 0);
    assert_string_equal(a->custom_fields_json,
                        "{\"site\":\"x\",\"flapping\":false,\"flap_count\":6,"
                        "\"flapping_since\":\"2025-06-15T15:06:40.000000Z\","
                        "\"flapping_until\":\"2025-06-15T15:06:40.000000Z\"}");
    assert_int_equal(opsc_alert_update_custom(c->upd, "[1]"), OPSC_EPARSE);
    opsc_alert_free(a);
    opsc_change_free(c);
    opsc_change_free(u);
}

static void test_expiry_overrides(void **state) {
    (void)state;
    opsc_pipeline_options_t po;
    memset(&po, 0, sizeof(po));
    char err[256];
    const char *ok[] = {"environment=2h", "network=0", "power=90s"};
    assert_int_equal(opsc_pipeline_parse_expiry_overrides(ok, 3, &po, err, sizeof(err)), 0);
    assert_true(po.expire_by_category_set[OPSC_CAT_ENVIRONMENT]);
    assert_int_equal(po.expire_by_category_ms[OPSC_CAT_ENVIRONMENT], 2 * 3600 * 1000);
    assert_true(po.expire_by_category_set[OPSC_CAT_NETWORK]);
    assert_int_equal(po.expire_by_category_ms[OPSC_CAT_NETWORK], 0);
    assert_int_equal(po.expire_by_category_ms[OPSC_CAT_POWER], 90000);
    assert_false(po.expire_by_category_set[OPSC_CAT_VIDEO]);
    const char *bad1[] = {"weather=1h"};
    assert_int_equal(opsc_pipeline_parse_expiry_overrides(bad1, 1, &po, err, sizeof(err)),
                     OPSC_ECONFIG);
    assert_non_null(strstr(err, "weather"));
    const char *bad2[] = {"network"};
    assert_int_equal(opsc_pipeline_parse_expiry_overrides(bad2, 1, &po, err, sizeof(err)),
                     OPSC_ECONFIG);
    const char *bad3[] = {"network=soon"};
    assert_int_equal(opsc_pipeline_parse_expiry_overrides(bad3, 1, &po, err, sizeof(err)),
                     OPSC_ECONFIG);
}

/* The journal form of an UPDATE: round trip, and every truncation is a parse error. */
static void test_update_codec(void **state) {
    (void)state;
    opsc_alert_update_t u;
    memset(&u, 0, sizeof(u));
    assert_int_equal(opsc_alert_update_tag(&u, "flapping", 1), 0);
    assert_int_equal(opsc_alert_update_tag(&u, "old", 0), 0);
    assert_int_equal(opsc_alert_update_custom(&u, "{\"a\":1,\"b\":null}"), 0);
    u.mask |= OPSC_UPD_ALL;
    u.old_mask = OPSC_UPD_PRIORITY | OPSC_UPD_DEVICE_NAME;
    u.impact = H;
    u.urgency = M;
    u.priority = 2;
    u.old_priority = 4;
    u.device_name = opsc_strdup("core-1");
    u.title = opsc_strdup("Interface Down - core-1");
    u.severity = OPSC_SEV_MAJOR;
    opsc_buf_t b = OPSC_BUF_INIT;
    assert_int_equal(opsc_alert_update_encode(&b, &u), 0);
    opsc_alert_update_t *d = NULL;
    size_t used = 0;
    assert_int_equal(opsc_alert_update_decode(b.base, b.len, &used, &d), 0);
    assert_int_equal(used, b.len);
    assert_int_equal(d->mask, u.mask);
    assert_int_equal(d->old_mask, u.old_mask);
    assert_int_equal(d->ntags_add, 1);
    assert_string_equal(d->tags_add[0], "flapping");
    assert_int_equal(d->ntags_del, 1);
    assert_string_equal(d->tags_del[0], "old");
    assert_string_equal(d->custom_patch, u.custom_patch);
    assert_int_equal(d->impact, H);
    assert_int_equal(d->urgency, M);
    assert_int_equal(d->priority, 2);
    assert_int_equal(d->old_priority, 4);
    assert_string_equal(d->device_name, "core-1");
    assert_null(d->old_device_name);
    assert_string_equal(d->title, u.title);
    assert_int_equal(d->severity, OPSC_SEV_MAJOR);
    opsc_alert_update_free(d);
    for (size_t n = 0; n < b.len; n++) {
        d = NULL;
        assert_int_equal(opsc_alert_update_decode(b.base, n, &used, &d), OPSC_EPARSE);
        assert_null(d);
    }
    /* Trailing bytes belong to the caller: used says where the update ended. */
    assert_int_equal(opsc_buf_append(&b, "xyz", 3), 0);
    assert_int_equal(opsc_alert_update_decode(b.base, b.len, &used, &d), 0);
    assert_int_equal(used, b.len - 3);
    opsc_alert_update_free(d);
    opsc_buf_free(&b);
    opsc_alert_update_t *heap = opsc_malloc(sizeof(*heap));
    assert_non_null(heap);
    *heap = u; /* everything in it came from opsc_* allocators */
    opsc_alert_update_free(heap);
}

typedef struct {
    size_t seen;
    int64_t cutoff;
    size_t old;
} scan_arg_t;

static void scan_cb(opsc_dedup_entry_t *e, void *arg) {
    scan_arg_t *sa = arg;
    sa->seen++;
    sa->old += e->last_occurrence_at_us < sa->cutoff;
}

/*
 * A full pass of slices visits every entry exactly once; one slice of the
 * size the pipeline uses stays short on a million alerts (printed, and
 * bounded loosely so a slow sanitizer build passes: the point is "a slice,
 * not a stall").
 */
static void test_expiry_scan_slices(void **state) {
    (void)state;
    enum { N = 1000000, SLICE = 16384 }; /* as the pipeline (EXPIRE_SLICE) */
    opsc_dedup_t *d = opsc_dedup_create(N);
    assert_non_null(d);
    char fp[65];
    opsc_uuid_t id;
    memset(&id, 0, sizeof(id));
    for (unsigned i = 0; i < N; i++) {
        fp_of(i, fp);
        assert_non_null(opsc_dedup_add(d, fp, &id, OPSC_STATUS_ACTIVE, 1, (int64_t)i, "link_down",
                                       "10.0.0.1", ""));
    }
    size_t cursor = 0, cap = 0;
    scan_arg_t sa = {0, N / 2, 0};
    uint64_t worst = 0;
    size_t slices = 0;
    do {
        uint64_t t0 = uv_hrtime();
        cap = opsc_dedup_scan(d, &cursor, SLICE, scan_cb, &sa);
        uint64_t ns = uv_hrtime() - t0;
        worst = ns > worst ? ns : worst;
        slices++;
    } while (cursor != 0);
    assert_int_equal(sa.seen, N);
    assert_int_equal(sa.old, N / 2);
    assert_int_equal(slices, cap / SLICE);
    printf("expiry scan: %zu slots in %zu slices of %d, slowest %.3f ms (%zu entries)\n", cap,
           slices, SLICE, (double)worst / 1e6, (size_t)N);
    assert_true(worst < 50 * 1000 * 1000ull);
    opsc_dedup_destroy(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_priority_matrix),
        cmocka_unit_test(test_urgency_from_severity),
        cmocka_unit_test(test_impact_derivation),
        cmocka_unit_test(test_dependents_count),
        cmocka_unit_test(test_flap_threshold_and_window),
        cmocka_unit_test(test_flap_settle),
        cmocka_unit_test(test_flap_bounded),
        cmocka_unit_test(test_flap_changes),
        cmocka_unit_test(test_expiry_overrides),
        cmocka_unit_test(test_update_codec),
        cmocka_unit_test(test_expiry_scan_slices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
