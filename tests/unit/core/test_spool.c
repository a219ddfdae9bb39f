/* The spool journal: codec round trips, group commit, replay order, torn tail, corrupt middle,
 * truncation after durable, the size bound, reopen after a crash. Real files in a temp dir. */
/* cmocka.h needs these first, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "opsc/alert.h"
#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/fsutil.h"
#include "opsc/spool.h"

static char tmpdir[PATH_MAX];
static char spooldir[PATH_MAX + 16];
static uv_loop_t loop;

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/opsc_test_spool_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(spooldir, sizeof(spooldir), "%s/spool", tmpdir);
    assert_int_equal(uv_loop_init(&loop), 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(opsc_rm_rf(tmpdir), 0);
    return 0;
}

/* ---- codec ----------------------------------------------------------------- */

static void fill_uuid(opsc_uuid_t *u, unsigned char base) {
    for (int i = 0; i < 16; i++) {
        u->b[i] = (unsigned char)(base + i);
    }
}

static opsc_alert_t *full_alert(int n) {
    char buf[64];
    opsc_alert_t *a = opsc_alert_new();
    assert_non_null(a);
    fill_uuid(&a->id, (unsigned char)n);
    assert_int_equal(opsc_alert_set(&a->source_system, "snmp"), 0);
    snprintf(buf, sizeof(buf), "trap-%d", n);
    assert_int_equal(opsc_alert_set(&a->source_alert_id, buf), 0);
    assert_int_equal(opsc_alert_set(&a->device_ip, "192.0.2.7"), 0);
    assert_int_equal(opsc_alert_set(&a->device_name, "core-sw-1"), 0);
    a->severity = OPSC_SEV_MAJOR;
    a->category = OPSC_CAT_STORAGE;
    assert_int_equal(opsc_alert_set(&a->alert_type, "link_down"), 0);
    a->impact = OPSC_LEVEL_HIGH;
    a->urgency = OPSC_LEVEL_LOW;
    a->priority = 3;
    assert_int_equal(opsc_alert_set(&a->title, "Interface Down - core-sw-1 \xc3\xa9"), 0);
    assert_int_equal(opsc_alert_set(&a->message, "msg"), 0);
    a->status = OPSC_STATUS_SUPPRESSED;
    a->is_clear = 1;
    a->occurred_at_us = 1700000000123456 + n;
    a->received_at_us = 1700000000223456;
    a->acknowledged_at_us = 1700000000323456;
    assert_int_equal(opsc_alert_set(&a->acknowledged_by, "alice"), 0);
    a->resolved_at_us = 1700000000423456;
    assert_int_equal(opsc_alert_set(&a->resolved_by, "auto-clear"), 0);
    fill_uuid(&a->correlated_to_id, 100);
    a->has_correlated_to = 1;
    assert_int_equal(opsc_alert_set(&a->correlation_rule, "upstream_dependency"), 0);
    a->ntags = 2;
    a->tags = opsc_calloc(2, sizeof(char *));
    a->tags[0] = opsc_strdup("flapping");
    a->tags[1] = opsc_strdup("");
    assert_int_equal(opsc_alert_set(&a->custom_fields_json, "{\"impact\":\"high\"}"), 0);
    assert_int_equal(opsc_alert_set(&a->raw_data_json, "{\"version\":\"v2c\"}"), 0);
    memset(a->fingerprint, 'a', 64);
    a->fingerprint[64] = '\0';
    a->occurrence_count = 50;
    a->last_occurrence_at_us = 1700000000523456;
    return a;
}

static void assert_str_eq_null(const char *a, const char *b) {
    if (!a || !b) {
        assert_ptr_equal(a, b);
    } else {
        assert_string_equal(a, b);
    }
}

static void assert_alert_equal(const opsc_alert_t *a, const opsc_alert_t *b) {
    assert_memory_equal(a->id.b, b->id.b, 16);
    assert_str_eq_null(a->source_system, b->source_system);
    assert_str_eq_null(a->source_alert_id, b->source_alert_id);
    assert_str_eq_null(a->device_ip, b->device_ip);
    assert_str_eq_null(a->device_name, b->device_name);
    assert_int_equal(a->severity, b->severity);
    assert_int_equal(a->category, b->category);
    assert_str_eq_null(a->alert_type, b->alert_type);
    assert_int_equal(a->impact, b->impact);
    assert_int_equal(a->urgency, b->urgency);
    assert_int_equal(a->priority, b->priority);
    assert_str_eq_null(a->title, b->title);
    assert_str_eq_null(a->message, b->message);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->is_clear, b->is_clear);
    assert_true(a->occurred_at_us == b->occurred_at_us);
    assert_true(a->received_at_us == b->received_at_us);
    assert_true(a->acknowledged_at_us == b->acknowledged_at_us);
    assert_str_eq_null(a->acknowledged_by, b->acknowledged_by);
    assert_true(a->resolved_at_us == b->resolved_at_us);
    assert_str_eq_null(a->resolved_by, b->resolved_by);
    assert_memory_equal(a->correlated_to_id.b, b->correlated_to_id.b, 16);
    assert_int_equal(a->has_correlated_to, b->has_correlated_to);
    assert_str_eq_null(a->correlation_rule, b->correlation_rule);
    assert_int_equal(a->ntags, b->ntags);
    for (size_t i = 0; i < a->ntags; i++) {
        assert_string_equal(a->tags[i], b->tags[i]);
    }
    assert_str_eq_null(a->custom_fields_json, b->custom_fields_json);
    assert_str_eq_null(a->raw_data_json, b->raw_data_json);
    assert_string_equal(a->fingerprint, b->fingerprint);
    assert_int_equal(a->occurrence_count, b->occurrence_count);
    assert_true(a->last_occurrence_at_us == b->last_occurrence_at_us);
}

static opsc_change_t *make_change(int i) {
    opsc_change_t *c;
    switch (i % 4) {
    case 0:
        c = opsc_change_new(OPSC_CHANGE_CREATE);
        c->alert = full_alert(i);
        c->id = c->alert->id;
        break;
    case 1:
        c = opsc_change_new(OPSC_CHANGE_REPEAT);
        fill_uuid(&c->id, (unsigned char)i);
        c->occurrence_count = (uint32_t)(1000 + i);
        c->last_occurrence_at_us = -5 + i; /* negative survives too */
        break;
    default:
        c = opsc_change_new(OPSC_CHANGE_STATUS);
        fill_uuid(&c->id, (unsigned char)i);
        c->old_status = OPSC_STATUS_ACTIVE;
        c->new_status = OPSC_STATUS_RESOLVED;
        c->at_us = 1700000000000000 + i;
        snprintf(c->actor, sizeof(c->actor), "auto-clear");
        snprintf(c->rule, sizeof(c->rule), "clear_oid_pattern");
        snprintf(c->action, sizeof(c->action), "resolved");
        fill_uuid(&c->correlated_to_id, 77);
        c->has_correlated_to = 1;
        if (i % 2) {
            c->notes = opsc_strdup("fixed by the night shift");
        }
        break;
    case 3:
        c = opsc_change_new(OPSC_CHANGE_UPDATE);
        fill_uuid(&c->id, (unsigned char)i);
        c->at_us = 1700000000000000 + i;
        snprintf(c->actor, sizeof(c->actor), "system");
        snprintf(c->action, sizeof(c->action), "updated");
        c->upd->mask = OPSC_UPD_DEVICE_NAME | OPSC_UPD_TITLE | OPSC_UPD_TAGS |
                       OPSC_UPD_CUSTOM_FIELDS | OPSC_UPD_PRIORITY;
        c->upd->device_name = opsc_strdup("edge-sw-10.example.net");
        c->upd->title = opsc_strdup("Interface Down - edge-sw-10.example.net");
        assert_int_equal(opsc_alert_update_tag(c->upd, "flapping", 1), 0);
        assert_int_equal(opsc_alert_update_custom(c->upd, "{\"flapping\":true,\"flap_count\":7}"),
                         0);
        c->upd->priority = 2;
        break;
    }
    assert_non_null(c);
    return c;
}

static void assert_change_equal(const opsc_change_t *a, const opsc_change_t *b) {
    assert_int_equal(a->kind, b->kind);
    assert_memory_equal(a->id.b, b->id.b, 16);
    switch (a->kind) {
    case OPSC_CHANGE_CREATE:
        assert_non_null(b->alert);
        assert_alert_equal(a->alert, b->alert);
        break;
    case OPSC_CHANGE_REPEAT:
        assert_int_equal(a->occurrence_count, b->occurrence_count);
        assert_true(a->last_occurrence_at_us == b->last_occurrence_at_us);
        break;
    case OPSC_CHANGE_UPDATE:
        assert_true(a->at_us == b->at_us);
        assert_string_equal(a->actor, b->actor);
        assert_string_equal(a->action, b->action);
        assert_non_null(b->upd);
        assert_int_equal(a->upd->mask, b->upd->mask);
        assert_string_equal(a->upd->device_name, b->upd->device_name);
        assert_string_equal(a->upd->title, b->upd->title);
        assert_int_equal(a->upd->ntags_add, b->upd->ntags_add);
        assert_string_equal(a->upd->tags_add[0], b->upd->tags_add[0]);
        assert_string_equal(a->upd->custom_patch, b->upd->custom_patch);
        assert_int_equal(a->upd->priority, b->upd->priority);
        break;
    default:
        assert_int_equal(a->old_status, b->old_status);
        assert_int_equal(a->new_status, b->new_status);
        assert_true(a->at_us == b->at_us);
        assert_string_equal(a->actor, b->actor);
        assert_string_equal(a->rule, b->rule);
        assert_string_equal(a->action, b->action);
        assert_int_equal(a->has_correlated_to, b->has_correlated_to);
        assert_memory_equal(a->correlated_to_id.b, b->correlated_to_id.b, 16);
        if (a->notes) {
            assert_non_null(b->notes);
            assert_string_equal(a->notes, b->notes);
        } else {
            assert_null(b->notes);
        }
        break;
    }
}

/* Bytes of a STATUS record's notes field (the last one) as encoded. */
static size_t notes_bytes(const opsc_change_t *c) {
    return c->kind == OPSC_CHANGE_STATUS ? 4 + (c->notes ? strlen(c->notes) : 0) : 0;
}

static void test_codec_round_trip(void **state) {
    (void)state;
    for (int i = 0; i < 8; i++) {
        opsc_change_t *c = make_change(i);
        opsc_buf_t b = OPSC_BUF_INIT;
        assert_int_equal(opsc_change_encode(&b, c), 0);
        opsc_change_t *d = NULL;
        assert_int_equal(opsc_change_decode(b.base, b.len, &d), 0);
        assert_change_equal(c, d);
        opsc_change_free(d);
        /* Every truncation and one extra byte are parse errors, never a crash; except a
         * STATUS record that ends where the first format ended (before notes): read
         * as one without notes, so that journals written before notes still replay. */
        size_t old_end = notes_bytes(c) ? b.len - notes_bytes(c) : SIZE_MAX;
        for (size_t n = 0; n < b.len; n++) {
            if (n == old_end) {
                assert_int_equal(opsc_change_decode(b.base, n, &d), 0);
                assert_null(d->notes);
                assert_int_equal(d->new_status, c->new_status);
                opsc_change_free(d);
                continue;
            }
            assert_int_equal(opsc_change_decode(b.base, n, &d), OPSC_EPARSE);
            assert_null(d);
        }
        opsc_buf_append(&b, "x", 1);
        assert_int_equal(opsc_change_decode(b.base, b.len, &d), OPSC_EPARSE);
        opsc_buf_free(&b);
        opsc_change_free(c);
    }
}

static void test_codec_nulls_and_refusals(void **state) {
    (void)state;
    opsc_change_t *c = opsc_change_new(OPSC_CHANGE_CREATE);
    c->alert = opsc_alert_new(); /* every string NULL, no tags */
    opsc_buf_t b = OPSC_BUF_INIT;
    assert_int_equal(opsc_change_encode(&b, c), 0);
    opsc_change_t *d = NULL;
    assert_int_equal(opsc_change_decode(b.base, b.len, &d), 0);
    assert_change_equal(c, d);
    assert_null(d->alert->title);
    opsc_change_free(d);
    opsc_change_free(c);
    opsc_buf_reset(&b);
    c = opsc_change_new(OPSC_CHANGE_REPLY);
    assert_int_equal(opsc_change_encode(&b, c), UV_EINVAL);
    assert_int_equal(b.len, 0);
    opsc_change_free(c);
    c = opsc_change_new(OPSC_CHANGE_CREATE); /* no alert */
    assert_int_equal(opsc_change_encode(&b, c), UV_EINVAL);
    opsc_change_free(c);
    unsigned char bad_kind[17] = {9};
    assert_int_equal(opsc_change_decode(bad_kind, sizeof(bad_kind), &d), OPSC_EPARSE);
    opsc_buf_free(&b);
    /* Known CRC-32C check value. */
    assert_int_equal(opsc_crc32c(0, "123456789", 9), 0xE3069283u);
    /* Against a bit-at-a-time reference: every length 0..300 at odd offsets, and chained. */
    unsigned char data[320];
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (unsigned char)(i * 131u + 7u);
    }
    for (size_t off = 0; off < 3; off++) {
        for (size_t len = 0; len <= 300; len++) {
            uint32_t ref = 0xffffffffu;
            for (size_t i = 0; i < len; i++) {
                ref ^= data[off + i];
                for (int k = 0; k < 8; k++) {
                    ref = (ref & 1u) ? (ref >> 1) ^ 0x82F63B78u : ref >> 1;
                }
            }
            assert_int_equal(opsc_crc32c(0, data + off, len), ~ref);
            assert_int_equal(opsc_crc32c(opsc_crc32c(0, data + off, len / 2), data + off + len / 2,
                                         len - len / 2),
                             ~ref);
        }
    }
}

/* ---- journal ---------------------------------------------------------------- */

typedef struct ctx_s {
    uint64_t synced;
    int read_done;
    opsc_spool_record_t *recs;
    size_t n;
    int err;
    int closed;
} ctx_t;

static void on_synced(uint64_t seq, void *arg) {
    ((ctx_t *)arg)->synced = seq;
}

static void on_read(opsc_spool_record_t *recs, size_t n, int err, void *arg) {
    ctx_t *c = arg;
    c->recs = recs;
    c->n = n;
    c->err = err;
    c->read_done = 1;
}

static void on_closed(void *arg) {
    ((ctx_t *)arg)->closed = 1;
}

/* Run the loop until *flag is set; bounded (5 s). */
static void run_until(int *flag) {
    for (int i = 0; i < 5000 && !*flag; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (!*flag) {
            usleep(1000);
        }
    }
    assert_true(*flag);
}

static void run_until_synced(ctx_t *c, uint64_t seq) {
    for (int i = 0; i < 5000 && c->synced < seq; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_true(c->synced >= seq);
}

static opsc_spool_t *open_spool(uint64_t max_bytes, uint64_t seg_bytes, ctx_t *c) {
    opsc_spool_t *s = NULL;
    char err[256] = "";
    opsc_spool_options_t o = {
        .dir = spooldir, .max_bytes = max_bytes, .segment_bytes = seg_bytes, .sync_interval_ms = 1};
    int rc = opsc_spool_open(&loop, &o, &s, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "open: %s\n", err);
    }
    assert_int_equal(rc, 0);
    opsc_spool_set_synced_cb(s, on_synced, c);
    return s;
}

static void close_spool(opsc_spool_t *s, ctx_t *c) {
    c->closed = 0;
    opsc_spool_close(s, on_closed, c);
    run_until(&c->closed);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* Read everything after `after` up to `upto`, in as many reads as it takes. */
static size_t read_all(opsc_spool_t *s, uint64_t after, uint64_t upto, uint64_t *seqs, size_t max,
                       int check_content) {
    size_t total = 0;
    for (int round = 0; round < 1000; round++) {
        ctx_t c = {0};
        assert_int_equal(opsc_spool_read(s, after, upto, 7, on_read, &c), 0);
        run_until(&c.read_done);
        assert_int_equal(c.err, 0);
        if (c.n == 0) {
            opsc_spool_records_free(c.recs, 0);
            return total;
        }
        for (size_t i = 0; i < c.n; i++) {
            assert_true(c.recs[i].seq > after);
            assert_true(total < max);
            seqs[total++] = c.recs[i].seq;
            if (check_content) {
                opsc_change_t *want = make_change((int)c.recs[i].seq - 1);
                assert_change_equal(want, c.recs[i].change);
                opsc_change_free(want);
            }
            after = c.recs[i].seq;
        }
        opsc_spool_records_free(c.recs, c.n);
    }
    fail_msg("read_all did not finish");
    return total;
}

static void append_n(opsc_spool_t *s, int from, int n) {
    for (int i = from; i < from + n; i++) {
        opsc_change_t *c = make_change(i);
        uint64_t seq = 0;
        assert_int_equal(opsc_spool_append(s, c, &seq), 0);
        assert_true(seq == (uint64_t)i + 1);
        opsc_change_free(c);
    }
}

static size_t count_segments(void) {
    size_t n = 0;
    DIR *d = opendir(spooldir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        n += strstr(e->d_name, ".seg") != NULL;
    }
    closedir(d);
    return n;
}

static void segment_name(int idx, char *out, size_t outlen) {
    /* idx-th segment file in order */
    char names[64][32];
    int n = 0;
    DIR *d = opendir(spooldir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 64) {
        if (strstr(e->d_name, ".seg") && strlen(e->d_name) < 32) {
            memcpy(names[n++], e->d_name, strlen(e->d_name) + 1);
        }
    }
    closedir(d);
    qsort(names, (size_t)n, 32, (int (*)(const void *, const void *))strcmp);
    assert_true(idx < n);
    snprintf(out, outlen, "%s/%s", spooldir, names[idx]);
}

static void test_append_sync_replay(void **state) {
    (void)state;
    ctx_t c = {0};
    opsc_spool_t *s = open_spool(0, 0, &c);
    assert_int_equal(opsc_spool_recovered_seq(s), 0);
    opsc_change_t *reply = opsc_change_new(OPSC_CHANGE_REPLY);
    assert_int_equal(opsc_spool_append(s, reply, NULL), UV_EINVAL);
    opsc_change_free(reply);
    append_n(s, 0, 50);
    assert_true(opsc_spool_last_seq(s) == 50);
    run_until_synced(&c, 50);
    uint64_t seqs[200];
    assert_int_equal(read_all(s, 0, 50, seqs, 200, 1), 50);
    for (int i = 0; i < 50; i++) {
        assert_true(seqs[i] == (uint64_t)i + 1); /* in order, none missing */
    }
    /* Partial: after 20, up to 30. */
    assert_int_equal(read_all(s, 20, 30, seqs, 200, 1), 10);
    assert_true(seqs[0] == 21);
    close_spool(s, &c);

    /* Reopen (a restart): everything is there to replay; new records continue the numbering. */
    ctx_t c2 = {0};
    s = open_spool(0, 0, &c2);
    assert_true(opsc_spool_recovered_seq(s) == 50);
    assert_int_equal(read_all(s, 0, 50, seqs, 200, 1), 50);
    append_n(s, 50, 5);
    run_until_synced(&c2, 55);
    assert_int_equal(read_all(s, 0, 55, seqs, 200, 1), 55);
    assert_int_equal(count_segments(), 2);
    close_spool(s, &c2);
}

static void test_torn_tail(void **state) {
    (void)state;
    ctx_t c = {0};
    opsc_spool_t *s = open_spool(0, 0, &c);
    append_n(s, 0, 10);
    run_until_synced(&c, 10);
    close_spool(s, &c);
    /* kill -9 in the middle of a write: the last record is cut short. */
    char path[PATH_MAX + 64];
    struct stat st;
    segment_name(0, path, sizeof(path));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size - 5), 0);

    ctx_t c2 = {0};
    s = open_spool(0, 0, &c2);
    assert_true(opsc_spool_recovered_seq(s) == 9);
    uint64_t seqs[64];
    assert_int_equal(read_all(s, 0, 9, seqs, 64, 1), 9);
    opsc_buf_t m = OPSC_BUF_INIT;
    opsc_spool_metrics(&m, s);
    assert_non_null(strstr(m.base, "opsc_spool_corrupt_records_total{where=\"tail\"} 1"));
    opsc_buf_free(&m);
    /* The numbering goes on after the last valid record. */
    opsc_change_t *x = make_change(9);
    uint64_t seq = 0;
    assert_int_equal(opsc_spool_append(s, x, &seq), 0);
    assert_true(seq == 10);
    opsc_change_free(x);
    run_until_synced(&c2, 10);
    assert_int_equal(read_all(s, 0, 10, seqs, 64, 1), 10);
    close_spool(s, &c2);

    /* A segment cut inside its header holds nothing: removed at open. */
    segment_name(1, path, sizeof(path));
    assert_int_equal(truncate(path, 10), 0);
    ctx_t c3 = {0};
    s = open_spool(0, 0, &c3);
    assert_true(opsc_spool_recovered_seq(s) == 9);
    assert_int_equal(count_segments(), 1);
    close_spool(s, &c3);
}

static void test_corrupt_middle(void **state) {
    (void)state;
    ctx_t c = {0};
    /* Small segments: a few records each. */
    opsc_spool_t *s = open_spool(0, 2048, &c);
    append_n(s, 0, 30);
    run_until_synced(&c, 30);
    close_spool(s, &c);
    size_t nseg = count_segments();
    assert_true(nseg >= 3);
    /* Flip a byte in the middle of the first segment. */
    char path[PATH_MAX + 64];
    struct stat st;
    segment_name(0, path, sizeof(path));
    assert_int_equal(stat(path, &st), 0);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    off_t at = st.st_size / 2;
    unsigned char b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x55;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);

    ctx_t c2 = {0};
    s = open_spool(0, 2048, &c2);
    assert_true(opsc_spool_recovered_seq(s) == 30);
    uint64_t seqs[64];
    size_t n = read_all(s, 0, 30, seqs, 64, 1);
    /* Some of the first segment is lost, everything after it is there, in order. */
    assert_true(n < 30 && n > 10);
    assert_true(seqs[n - 1] == 30);
    for (size_t i = 1; i < n; i++) {
        assert_true(seqs[i] > seqs[i - 1]);
    }
    size_t gap = 0;
    for (size_t i = 1; i < n; i++) {
        gap += seqs[i] != seqs[i - 1] + 1;
    }
    assert_true(gap <= 1 && (gap == 1 || seqs[0] > 1));
    opsc_buf_t m = OPSC_BUF_INIT;
    opsc_spool_metrics(&m, s);
    assert_non_null(strstr(m.base, "opsc_spool_corrupt_records_total{where=\"middle\"} 1"));
    opsc_buf_free(&m);
    close_spool(s, &c2);
}

static void run_until_segments(size_t want) {
    for (int i = 0; i < 5000 && count_segments() != want; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_int_equal(count_segments(), want);
}

static void test_truncate_after_durable(void **state) {
    (void)state;
    ctx_t c = {0};
    opsc_spool_t *s = open_spool(0, 2048, &c);
    append_n(s, 0, 30);
    run_until_synced(&c, 30);
    size_t nseg = count_segments();
    assert_true(nseg >= 3);
    /* Durable up to 1: no segment is entirely durable. */
    opsc_spool_release(s, 1);
    for (int i = 0; i < 20; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_int_equal(count_segments(), nseg);
    /* Everything durable: every segment goes, and the bytes gauge follows. */
    opsc_spool_release(s, 30);
    run_until_segments(0);
    for (int i = 0; i < 100 && opsc_spool_bytes(s) != 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_true(opsc_spool_bytes(s) == 0);
    /* Writing goes on into a new segment. */
    append_n(s, 30, 3);
    run_until_synced(&c, 33);
    assert_int_equal(count_segments(), 1);
    uint64_t seqs[8];
    assert_int_equal(read_all(s, 30, 33, seqs, 8, 1), 3);
    close_spool(s, &c);
    ctx_t c2 = {0};
    s = open_spool(0, 2048, &c2);
    assert_true(opsc_spool_recovered_seq(s) == 33);
    close_spool(s, &c2);
}

static void test_full_refused(void **state) {
    (void)state;
    ctx_t c = {0};
    opsc_spool_t *s = open_spool(4096, 0, &c);
    int accepted = 0, rc = 0;
    for (int i = 0; i < 100; i++) {
        opsc_change_t *x = make_change(i);
        rc = opsc_spool_append(s, x, NULL);
        opsc_change_free(x);
        if (rc != 0) {
            break;
        }
        accepted++;
    }
    assert_int_equal(rc, OPSC_EQUEUE_FULL);
    assert_true(accepted > 0 && accepted < 100);
    assert_true(opsc_spool_bytes(s) <= 4096);
    assert_true(opsc_spool_last_seq(s) == (uint64_t)accepted);
    run_until_synced(&c, (uint64_t)accepted);
    opsc_buf_t m = OPSC_BUF_INIT;
    opsc_spool_metrics(&m, s);
    assert_non_null(strstr(m.base, "opsc_spool_full_refused_total 1"));
    opsc_buf_free(&m);
    /* Released: room again. */
    opsc_spool_release(s, (uint64_t)accepted);
    run_until_segments(0);
    for (int i = 0; i < 100 && opsc_spool_bytes(s) != 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    opsc_change_t *x = make_change(accepted);
    assert_int_equal(opsc_spool_append(s, x, NULL), 0);
    opsc_change_free(x);
    close_spool(s, &c);
}

/*
 * A read that starts far into a big segment skips megabytes of older records
 * first; it must still hand back what follows (a read with nothing means
 * "nothing more" to the caller, which would then skip ahead and lose changes:
 * seen with the store's backlog feed at 150,000 traps/s).
 */
static void test_read_deep_into_segment(void **state) {
    (void)state;
    ctx_t c = {0};
    opsc_spool_t *s = open_spool(0, 0, &c);
    enum { N = 40000 };
    append_n(s, 0, N);
    run_until_synced(&c, N);
    assert_true(opsc_spool_bytes(s) > (6u << 20)); /* well past one read's byte budget */
    assert_int_equal(count_segments(), 1);
    static uint64_t seqs[64];
    assert_int_equal(read_all(s, N - 20, N, seqs, 64, 1), 20);
    assert_true(seqs[0] == N - 19 && seqs[19] == N);
    close_spool(s, &c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_deep_into_segment, setup, teardown),
        cmocka_unit_test(test_codec_round_trip),
        cmocka_unit_test(test_codec_nulls_and_refusals),
        cmocka_unit_test_setup_teardown(test_append_sync_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_after_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
