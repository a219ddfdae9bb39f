/*
 * Binary form of opsc_change_t for the spool journal. Little-endian fixed
 * widths, strings as a u32 length (0xffffffff = NULL) and the bytes, enums as
 * one byte: compact enough that a storm's REPEATs cost ~30 bytes each, and
 * every length read from disk is checked against what is left, so a damaged
 * record is a parse error, never a crash (the CRC catches damage first; this
 * is the second line).
 *
 * The field order is the format: changing it needs a new segment format
 * version (spool.c), because journals outlive upgrades.
 */
#include <string.h>

#include "opsc/alert.h"
#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/spool.h"

#define NULL_STR UINT32_MAX
#define STR_MAX (16u << 20) /* a single field; records are capped in spool.c too */
#define TAGS_MAX 65536u

/* ---- CRC-32C -------------------------------------------------------------- */

/*
 * The loop thread checksums every journal record: with a table, 10% of that
 * thread at 150,000 mixed traps/s (perf). x86-64 CPUs since 2008 have the
 * CRC-32C instruction (SSE4.2), used when the CPU says so; the table is the
 * fallback. Same polynomial, same reflection: the two give identical values.
 */
static uint32_t crc_table[256];
static int crc_hw;
static uv_once_t crc_once = UV_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1; /* Castagnoli, reflected */
        }
        crc_table[i] = c;
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const unsigned char *p,
                                                            size_t len) {
    uint64_t c = crc;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
    }
    uint32_t c32 = (uint32_t)c;
    while (len--) {
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    }
    return c32;
}
#endif

uint32_t opsc_crc32c(uint32_t crc, const void *data, size_t len) {
    const unsigned char *p = data;
    uv_once(&crc_once, crc_init);
    crc = ~crc;
#if defined(__x86_64__)
    if (crc_hw) {
        return ~crc_sse42(crc, p, len);
    }
#endif
    while (len--) {
        crc = crc_table[(crc ^ *p++) & 0xffu] ^ (crc >> 8);
    }
    return ~crc;
}

/* ---- writer ---------------------------------------------------------------- */

static int put(opsc_buf_t *b, const void *p, size_t n) {
    return opsc_buf_append(b, p, n);
}

static int put_u8(opsc_buf_t *b, unsigned v) {
    unsigned char c = (unsigned char)v;
    return put(b, &c, 1);
}

static int put_u32(opsc_buf_t *b, uint32_t v) {
    unsigned char c[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    return put(b, c, 4);
}

static int put_u64(opsc_buf_t *b, uint64_t v) {
    int rc = put_u32(b, (uint32_t)v);
    return rc ? rc : put_u32(b, (uint32_t)(v >> 32));
}

static int put_str(opsc_buf_t *b, const char *s) {
    if (!s) {
        return put_u32(b, NULL_STR);
    }
    size_t n = strlen(s);
    if (n > STR_MAX) {
        return OPSC_ETOOBIG;
    }
    int rc = put_u32(b, (uint32_t)n);
    return rc ? rc : put(b, s, n);
}

static int put_uuid(opsc_buf_t *b, const opsc_uuid_t *u) {
    return put(b, u->b, sizeof(u->b));
}

static int encode_alert(opsc_buf_t *b, const opsc_alert_t *a) {
    int rc = 0;
    /* One expression per field keeps the order visible: it is the format. */
    rc = rc ? rc : put_uuid(b, &a->id);
    rc = rc ? rc : put_str(b, a->source_system);
    rc = rc ? rc : put_str(b, a->source_alert_id);
    rc = rc ? rc : put_str(b, a->device_ip);
    rc = rc ? rc : put_str(b, a->device_name);
    rc = rc ? rc : put_u8(b, (unsigned)a->severity);
    rc = rc ? rc : put_u8(b, (unsigned)a->category);
    rc = rc ? rc : put_str(b, a->alert_type);
    rc = rc ? rc : put_u8(b, (unsigned)a->impact);
    rc = rc ? rc : put_u8(b, (unsigned)a->urgency);
    rc = rc ? rc : put_u32(b, (uint32_t)a->priority);
    rc = rc ? rc : put_str(b, a->title);
    rc = rc ? rc : put_str(b, a->message);
    rc = rc ? rc : put_u8(b, (unsigned)a->status);
    rc = rc ? rc : put_u8(b, a->is_clear ? 1u : 0u);
    rc = rc ? rc : put_u64(b, (uint64_t)a->occurred_at_us);
    rc = rc ? rc : put_u64(b, (uint64_t)a->received_at_us);
    rc = rc ? rc : put_u64(b, (uint64_t)a->acknowledged_at_us);
    rc = rc ? rc : put_str(b, a->acknowledged_by);
    rc = rc ? rc : put_u64(b, (uint64_t)a->resolved_at_us);
    rc = rc ? rc : put_str(b, a->resolved_by);
    rc = rc ? rc : put_uuid(b, &a->correlated_to_id);
    rc = rc ? rc : put_u8(b, a->has_correlated_to ? 1u : 0u);
    rc = rc ? rc : put_str(b, a->correlation_rule);
    if (!rc && a->ntags > TAGS_MAX) {
        rc = OPSC_ETOOBIG;
    }
    rc = rc ? rc : put_u32(b, (uint32_t)a->ntags);
    for (size_t i = 0; !rc && i < a->ntags; i++) {
        rc = put_str(b, a->tags[i]);
    }
    rc = rc ? rc : put_str(b, a->custom_fields_json);
    rc = rc ? rc : put_str(b, a->raw_data_json);
    rc = rc ? rc : put_str(b, a->fingerprint);
    rc = rc ? rc : put_u32(b, a->occurrence_count);
    rc = rc ? rc : put_u64(b, (uint64_t)a->last_occurrence_at_us);
    return rc;
}

/* An UPDATE's fields (change.h); also opsc_alert_update_encode. */
static int put_strv(opsc_buf_t *b, char *const *v, size_t n) {
    if (n > TAGS_MAX) {
        return OPSC_ETOOBIG;
    }
    int rc = put_u32(b, (uint32_t)n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = put_str(b, v[i]);
    }
    return rc;
}

int opsc_alert_update_encode(opsc_buf_t *b, const opsc_alert_update_t *u) {
    int rc = 0;
    rc = rc ? rc : put_u32(b, u->mask);
    rc = rc ? rc : put_u32(b, u->old_mask);
    rc = rc ? rc : put_strv(b, u->tags_add, u->ntags_add);
    rc = rc ? rc : put_strv(b, u->tags_del, u->ntags_del);
    rc = rc ? rc : put_str(b, u->custom_patch);
    rc = rc ? rc : put_u8(b, (unsigned)u->impact);
    rc = rc ? rc : put_u8(b, (unsigned)u->old_impact);
    rc = rc ? rc : put_u8(b, (unsigned)u->urgency);
    rc = rc ? rc : put_u8(b, (unsigned)u->old_urgency);
    rc = rc ? rc : put_u8(b, (unsigned)u->priority);
    rc = rc ? rc : put_u8(b, (unsigned)u->old_priority);
    rc = rc ? rc : put_str(b, u->device_name);
    rc = rc ? rc : put_str(b, u->old_device_name);
    rc = rc ? rc : put_str(b, u->title);
    rc = rc ? rc : put_str(b, u->old_title);
    rc = rc ? rc : put_u8(b, (unsigned)u->severity);
    rc = rc ? rc : put_u8(b, (unsigned)u->old_severity);
    return rc;
}

int opsc_change_encode(opsc_buf_t *b, const opsc_change_t *c) {
    int rc = 0;
    if (!c || c->kind == OPSC_CHANGE_REPLY || (unsigned)c->kind > OPSC_CHANGE_UPDATE ||
        (c->kind == OPSC_CHANGE_CREATE && !c->alert) ||
        (c->kind == OPSC_CHANGE_UPDATE && !c->upd)) {
        return UV_EINVAL;
    }
    size_t start = b->len;
    rc = rc ? rc : put_u8(b, (unsigned)c->kind);
    rc = rc ? rc : put_uuid(b, &c->id);
    switch (c->kind) {
    case OPSC_CHANGE_CREATE:
        rc = rc ? rc : encode_alert(b, c->alert);
        break;
    case OPSC_CHANGE_REPEAT:
        rc = rc ? rc : put_u32(b, c->occurrence_count);
        rc = rc ? rc : put_u64(b, (uint64_t)c->last_occurrence_at_us);
        break;
    case OPSC_CHANGE_STATUS:
        rc = rc ? rc : put_u8(b, (unsigned)c->old_status);
        rc = rc ? rc : put_u8(b, (unsigned)c->new_status);
        rc = rc ? rc : put_u64(b, (uint64_t)c->at_us);
        rc = rc ? rc : put_str(b, c->actor);
        rc = rc ? rc : put_str(b, c->rule);
        rc = rc ? rc : put_str(b, c->action);
        rc = rc ? rc : put_u8(b, c->has_correlated_to ? 1u : 0u);
        rc = rc ? rc : put_uuid(b, &c->correlated_to_id);
        /* Added after the first format: a record that ends before it has no notes. */
        rc = rc ? rc : put_str(b, c->notes);
        break;
    case OPSC_CHANGE_UPDATE:
        rc = rc ? rc : put_u64(b, (uint64_t)c->at_us);
        rc = rc ? rc : put_str(b, c->actor);
        rc = rc ? rc : put_str(b, c->action);
        rc = rc ? rc : opsc_alert_update_encode(b, c->upd);
        break;
    default:
        break;
    }
    if (rc) {
        b->len = start; /* nothing half-written stays behind */
        if (b->base) {
            b->base[start] = '\0';
        }
    }
    return rc;
}

/* ---- reader ---------------------------------------------------------------- */

typedef struct rd_s {
    const unsigned char *p;
    size_t left;
    int bad;
} rd_t;

static const unsigned char *take(rd_t *r, size_t n) {
    if (r->bad || r->left < n) {
        r->bad = 1;
        return NULL;
    }
    const unsigned char *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static unsigned get_u8(rd_t *r) {
    const unsigned char *p = take(r, 1);
    return p ? p[0] : 0;
}

static uint32_t get_u32(rd_t *r) {
    const unsigned char *p = take(r, 4);
    return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
             : 0;
}

static uint64_t get_u64(rd_t *r) {
    uint64_t lo = get_u32(r);
    uint64_t hi = get_u32(r);
    return lo | hi << 32;
}

static void get_uuid(rd_t *r, opsc_uuid_t *u) {
    const unsigned char *p = take(r, sizeof(u->b));
    if (p) {
        memcpy(u->b, p, sizeof(u->b));
    }
}

/* A heap string (NULL for the NULL marker); sets *oom on allocation failure. */
static char *get_str(rd_t *r, int *oom) {
    uint32_t n = get_u32(r);
    if (r->bad || n == NULL_STR) {
        return NULL;
    }
    const unsigned char *p = n <= STR_MAX ? take(r, n) : take(r, SIZE_MAX);
    if (!p) {
        return NULL;
    }
    char *s = opsc_malloc((size_t)n + 1);
    if (!s) {
        *oom = 1;
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = '\0';
    if (strlen(s) != n) {
        r->bad = 1; /* an embedded NUL: not something we wrote */
    }
    return s;
}

/* Into a fixed array; NULL and too long are format errors. */
static void get_fixed(rd_t *r, char *out, size_t cap) {
    uint32_t n = get_u32(r);
    if (r->bad || n == NULL_STR || n >= cap) {
        r->bad = 1;
        return;
    }
    const unsigned char *p = take(r, n);
    if (p) {
        memcpy(out, p, n);
        out[n] = '\0';
        if (strlen(out) != n) {
            r->bad = 1;
        }
    }
}

static unsigned get_enum(rd_t *r, unsigned count) {
    unsigned v = get_u8(r);
    if (v >= count) {
        r->bad = 1;
        return 0;
    }
    return v;
}

static void decode_alert(rd_t *r, opsc_alert_t *a, int *oom) {
    get_uuid(r, &a->id);
    a->source_system = get_str(r, oom);
    a->source_alert_id = get_str(r, oom);
    a->device_ip = get_str(r, oom);
    a->device_name = get_str(r, oom);
    a->severity = (opsc_severity_t)get_enum(r, OPSC_SEV_COUNT);
    a->category = (opsc_category_t)get_enum(r, OPSC_CAT_COUNT);
    a->alert_type = get_str(r, oom);
    a->impact = (opsc_level_t)get_enum(r, OPSC_LEVEL_LOW + 1);
    a->urgency = (opsc_level_t)get_enum(r, OPSC_LEVEL_LOW + 1);
    a->priority = (int)get_u32(r);
    a->title = get_str(r, oom);
    a->message = get_str(r, oom);
    a->status = (opsc_status_t)get_enum(r, OPSC_STATUS_COUNT);
    a->is_clear = (int)get_enum(r, 2);
    a->occurred_at_us = (int64_t)get_u64(r);
    a->received_at_us = (int64_t)get_u64(r);
    a->acknowledged_at_us = (int64_t)get_u64(r);
    a->acknowledged_by = get_str(r, oom);
    a->resolved_at_us = (int64_t)get_u64(r);
    a->resolved_by = get_str(r, oom);
    get_uuid(r, &a->correlated_to_id);
    a->has_correlated_to = (int)get_enum(r, 2);
    a->correlation_rule = get_str(r, oom);
    uint32_t ntags = get_u32(r);
    if (ntags > TAGS_MAX || ntags > r->left / 4) {
        r->bad = 1; /* each tag takes 4 bytes at least: no huge allocation from a bad count */
    }
    if (!r->bad && ntags > 0) {
        a->tags = opsc_calloc(ntags, sizeof(*a->tags));
        if (!a->tags) {
            *oom = 1;
            r->bad = 1;
        }
    }
    for (uint32_t i = 0; !r->bad && i < ntags; i++) {
        a->tags[i] = get_str(r, oom);
        a->ntags = i + 1;
        if (!a->tags[i]) {
            r->bad = 1; /* tags are never NULL */
        }
    }
    a->custom_fields_json = get_str(r, oom);
    a->raw_data_json = get_str(r, oom);
    get_fixed(r, a->fingerprint, sizeof(a->fingerprint));
    a->occurrence_count = get_u32(r);
    a->last_occurrence_at_us = (int64_t)get_u64(r);
}

static void get_strv(rd_t *r, char ***v, size_t *n, int *oom) {
    uint32_t count = get_u32(r);
    if (r->bad || count == 0) {
        return;
    }
    if (count > TAGS_MAX || count > r->left / 4) {
        r->bad = 1;
        return;
    }
    if (!(*v = opsc_calloc(count, sizeof(**v)))) {
        *oom = 1;
        return;
    }
    for (uint32_t i = 0; i < count && !r->bad && !*oom; i++) {
        char *s = get_str(r, oom);
        if (!s) {
            r->bad |= !*oom; /* tags are never NULL */
            return;
        }
        (*v)[(*n)++] = s;
    }
}

int opsc_alert_update_decode(const void *data, size_t len, size_t *used,
                             opsc_alert_update_t **out) {
    rd_t r = {data, len, 0};
    int oom = 0;
    opsc_alert_update_t *u = opsc_calloc(1, sizeof(*u));
    *out = NULL;
    if (!u) {
        return OPSC_ENOMEM;
    }
    u->mask = get_u32(&r);
    u->old_mask = get_u32(&r);
    get_strv(&r, &u->tags_add, &u->ntags_add, &oom);
    get_strv(&r, &u->tags_del, &u->ntags_del, &oom);
    u->custom_patch = get_str(&r, &oom);
    u->impact = (opsc_level_t)get_enum(&r, 4);
    u->old_impact = (opsc_level_t)get_enum(&r, 4);
    u->urgency = (opsc_level_t)get_enum(&r, 4);
    u->old_urgency = (opsc_level_t)get_enum(&r, 4);
    u->priority = (int)get_enum(&r, 6);
    u->old_priority = (int)get_enum(&r, 6);
    u->device_name = get_str(&r, &oom);
    u->old_device_name = get_str(&r, &oom);
    u->title = get_str(&r, &oom);
    u->old_title = get_str(&r, &oom);
    u->severity = (opsc_severity_t)get_enum(&r, OPSC_SEV_COUNT);
    u->old_severity = (opsc_severity_t)get_enum(&r, OPSC_SEV_COUNT);
    if (r.bad || oom || (u->mask & ~(uint32_t)OPSC_UPD_ALL)) {
        opsc_alert_update_free(u);
        return oom ? OPSC_ENOMEM : OPSC_EPARSE;
    }
    *used = len - r.left;
    *out = u;
    return 0;
}

int opsc_change_decode(const void *data, size_t len, opsc_change_t **out) {
    rd_t r = {data, len, 0};
    int oom = 0;
    *out = NULL;
    unsigned kind = get_u8(&r);
    if (r.bad || kind == OPSC_CHANGE_REPLY || kind > OPSC_CHANGE_UPDATE) {
        return OPSC_EPARSE;
    }
    opsc_change_t *c = opsc_change_new((opsc_change_kind_t)kind);
    if (!c) {
        return OPSC_ENOMEM;
    }
    get_uuid(&r, &c->id);
    switch (c->kind) {
    case OPSC_CHANGE_CREATE:
        c->alert = opsc_calloc(1, sizeof(*c->alert));
        if (!c->alert) {
            opsc_change_free(c);
            return OPSC_ENOMEM;
        }
        decode_alert(&r, c->alert, &oom);
        break;
    case OPSC_CHANGE_REPEAT:
        c->occurrence_count = get_u32(&r);
        c->last_occurrence_at_us = (int64_t)get_u64(&r);
        break;
    case OPSC_CHANGE_STATUS:
        c->old_status = (opsc_status_t)get_enum(&r, OPSC_STATUS_COUNT);
        c->new_status = (opsc_status_t)get_enum(&r, OPSC_STATUS_COUNT);
        c->at_us = (int64_t)get_u64(&r);
        get_fixed(&r, c->actor, sizeof(c->actor));
        get_fixed(&r, c->rule, sizeof(c->rule));
        get_fixed(&r, c->action, sizeof(c->action));
        c->has_correlated_to = (int)get_enum(&r, 2);
        get_uuid(&r, &c->correlated_to_id);
        if (!r.bad && r.left > 0) {
            c->notes = get_str(&r, &oom);
        }
        break;
    case OPSC_CHANGE_UPDATE: {
        c->at_us = (int64_t)get_u64(&r);
        get_fixed(&r, c->actor, sizeof(c->actor));
        get_fixed(&r, c->action, sizeof(c->action));
        opsc_alert_update_free(c->upd);
        c->upd = NULL;
        size_t used = 0;
        int urc = r.bad ? OPSC_EPARSE : opsc_alert_update_decode(r.p, r.left, &used, &c->upd);
        if (urc == OPSC_ENOMEM) {
            oom = 1;
        } else if (urc != 0) {
            r.bad = 1;
        } else {
            r.p += used;
            r.left -= used;
        }
        break;
    }
    default:
        break;
    }
    if (oom || r.bad || r.left != 0) {
        opsc_change_free(c);
        return oom ? OPSC_ENOMEM : OPSC_EPARSE;
    }
    *out = c;
    return 0;
}
