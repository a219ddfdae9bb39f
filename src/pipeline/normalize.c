/*
 * Trap normalization: decoded trap -> (key, alert).
 *
 * Two phases, because a storm repeats one fingerprint hundreds of thousands
 * of times a second and only its first occurrence becomes a row (issue 3
 * item 4): opsc_normalize_key() does what dedup needs — one hash match for
 * the mapping, one hash probe for the device, at most one table-column name
 * lookup per varbind until the first hit, one SHA-256 — in fixed buffers;
 * opsc_normalize_full() does names, value formatting, the title template
 * and raw_data JSON.
 *
 * Choices (docs for the pipeline core):
 *  - source_alert_id = "<device_ip>/<numeric trap OID>[/<discriminator>]":
 *    it names the source's condition, so every repeat of one alert carries
 *    the same id; per-trap facts (request-id, uptime) are in raw_data.
 *  - discriminator: the mapping's rule (see opsc_oid_mapping_t), default =
 *    the instance index of the first varbind under a table column of the
 *    built-in MIB table (ifIndex.3, ifAdminStatus.3 -> "3"; bgpPeerState.
 *    10.0.0.1 -> "10.0.0.1"), "" when there is none. A varbind-valued
 *    discriminator uses the raw value (numbers in decimal, never enum labels)
 *    so that it does not change when the name table grows.
 *  - A placeholder that names nothing known, or a varbind the trap does not
 *    carry, is left in the title as written ("{ifAlias}").
 *  - Titles use short MIB names ("linkDown", "down"); raw_data and the
 *    unknown-trap title use qualified ones ("IF-MIB::linkDown").
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/sha256.h>

#include "normalize_int.h"
#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/normalize.h"

#define TITLE_MAX_CHARS 255     /* alerts.title VARCHAR(255) */
#define SOURCE_ID_MAX_CHARS 255 /* alerts.source_alert_id VARCHAR(255) */
#define OID_TEXT_MAX (OPSC_OID_MAX * 11 + 1)

static const char default_template[] = "{trap_name} - {device_name}";

static const uint32_t oid_snmp_trap_address0[] = {1, 3, 6, 1, 6, 3, 18, 1, 3, 0};
static const uint32_t oid_if_name[] = {1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1};
static const uint32_t oid_if_descr[] = {1, 3, 6, 1, 2, 1, 2, 2, 1, 2};
static const uint32_t oid_if_index[] = {1, 3, 6, 1, 2, 1, 2, 2, 1, 1};
static const uint32_t oid_if_entry[] = {1, 3, 6, 1, 2, 1, 2, 2, 1};
static const uint32_t oid_ifx_entry[] = {1, 3, 6, 1, 2, 1, 31, 1, 1, 1};
#define OIDLEN(a) ((uint32_t)(sizeof(a) / sizeof((a)[0])))

/* ---- compiled title templates ------------------------------------------------------------- */

typedef enum {
    SEG_LITERAL = 0,
    SEG_DEVICE_NAME,
    SEG_DEVICE_IP,
    SEG_TRAP_OID,
    SEG_TRAP_NAME,
    SEG_INTERFACE,
    SEG_VARBIND
} seg_kind_t;

typedef struct seg_s {
    seg_kind_t kind;
    const char *text; /* literal text, or the placeholder as written (with braces) */
    size_t len;
    uint32_t *oid; /* SEG_VARBIND */
    uint32_t oid_len;
} seg_t;

typedef struct tmpl_s {
    char *src;
    seg_t *segs;
    size_t nsegs;
} tmpl_t;

typedef struct devrec_s {
    unsigned char addr[16]; /* IPv6, IPv4 as ::ffff:a.b.c.d */
    opsc_device_ref_t ref;  /* strings owned */
} devrec_t;

struct opsc_normalizer_s {
    opsc_oidmap_t *map;
    tmpl_t *tmpls; /* by rule index */
    tmpl_t default_tmpl;
    devrec_t *devs;
    size_t ndevs;
    uint32_t *dtable; /* devs index + 1 */
    size_t dmask;
    size_t skipped;
    /* dependency graph: edges sorted by device (opsc_normalizer_set_dependencies) */
    struct dep_edge_s {
        char *device;
        char *upstream;
    } *deps;
    size_t ndeps;
    size_t *rdeps; /* edge indexes sorted by upstream: who depends on a device */
};

static void tmpl_free(tmpl_t *tp) {
    for (size_t i = 0; i < tp->nsegs; i++) {
        opsc_free(tp->segs[i].oid);
    }
    opsc_free(tp->segs);
    opsc_free(tp->src);
    memset(tp, 0, sizeof(*tp));
}

static int seg_add(tmpl_t *tp, seg_kind_t kind, const char *text, size_t len) {
    if (kind == SEG_LITERAL && len == 0) {
        return 0;
    }
    seg_t *s = &tp->segs[tp->nsegs++];
    s->kind = kind;
    s->text = text;
    s->len = len;
    return 0;
}

/*
 * Split a template into literals and placeholders. A '{' with no '}' before
 * the next '{' is literal text; unknown names stay literal.
 */
static int tmpl_compile(tmpl_t *tp, const char *src) {
    static const struct {
        const char *name;
        seg_kind_t kind;
    } fixed[] = {{"device_name", SEG_DEVICE_NAME},
                 {"device_ip", SEG_DEVICE_IP},
                 {"trap_oid", SEG_TRAP_OID},
                 {"trap_name", SEG_TRAP_NAME},
                 {"interface", SEG_INTERFACE}};
    memset(tp, 0, sizeof(*tp));
    tp->src = opsc_strdup(src);
    size_t len = strlen(src), nbrace = 0;
    for (size_t i = 0; i < len; i++) {
        nbrace += src[i] == '{';
    }
    tp->segs = opsc_calloc(2 * nbrace + 1, sizeof(*tp->segs));
    if (!tp->src || !tp->segs) {
        return OPSC_ENOMEM;
    }
    const char *s = tp->src;
    size_t lit = 0, i = 0;
    while (i < len) {
        if (s[i] != '{') {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < len && s[j] != '}' && s[j] != '{') {
            j++;
        }
        if (j >= len || s[j] == '{') {
            i = j; /* this '{' is literal */
            continue;
        }
        const char *name = s + i + 1;
        size_t nlen = j - i - 1;
        seg_kind_t kind = SEG_LITERAL;
        for (size_t f = 0; f < sizeof(fixed) / sizeof(fixed[0]); f++) {
            if (strlen(fixed[f].name) == nlen && memcmp(fixed[f].name, name, nlen) == 0) {
                kind = fixed[f].kind;
            }
        }
        uint32_t oid[OPSC_OID_MAX];
        int olen = -1;
        if (kind == SEG_LITERAL) {
            olen = opsc__object_resolve(name, nlen, oid, OPSC_OID_MAX);
            if (olen > 0) {
                kind = SEG_VARBIND;
            }
        }
        if (kind == SEG_LITERAL) {
            i = j + 1; /* unknown: stays in the literal run */
            continue;
        }
        seg_add(tp, SEG_LITERAL, s + lit, i - lit);
        seg_add(tp, kind, s + i, j + 1 - i);
        if (kind == SEG_VARBIND) {
            seg_t *sg = &tp->segs[tp->nsegs - 1];
            sg->oid = opsc_malloc((size_t)olen * sizeof(uint32_t));
            if (!sg->oid) {
                return OPSC_ENOMEM;
            }
            memcpy(sg->oid, oid, (size_t)olen * sizeof(uint32_t));
            sg->oid_len = (uint32_t)olen;
        }
        lit = i = j + 1;
    }
    seg_add(tp, SEG_LITERAL, s + lit, len - lit);
    return 0;
}

/* ---- devices ------------------------------------------------------------------------------ */

static uint64_t addr_hash(const unsigned char a[16]) {
    uint64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, a + 8, 8);
    uint64_t h = x * 0x9e3779b97f4a7c15ULL ^ (y + 0x632be59bd9b4e019ULL);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static const unsigned char v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void addr_from_v4(unsigned char a[16], const unsigned char v4[4]) {
    memcpy(a, v4mapped_prefix, 12);
    memcpy(a + 12, v4, 4);
}

/* devices.ip_address text -> 16 bytes; a "/prefix" suffix (NetBox) is ignored. */
static int addr_parse(const char *s, unsigned char a[16]) {
    char buf[64];
    if (!s) {
        return -1;
    }
    size_t n = strcspn(s, "/");
    if (n == 0 || n >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    unsigned char v4[4];
    if (inet_pton(AF_INET, buf, v4) == 1) {
        addr_from_v4(a, v4);
        return 0;
    }
    return inet_pton(AF_INET6, buf, a) == 1 ? 0 : -1;
}

static const opsc_device_ref_t *device_find(const opsc_normalizer_t *n, const unsigned char a[16]) {
    if (n->ndevs == 0) {
        return NULL;
    }
    for (size_t i = (size_t)addr_hash(a) & n->dmask;; i = (i + 1) & n->dmask) {
        uint32_t v = n->dtable[i];
        if (v == 0) {
            return NULL;
        }
        if (memcmp(n->devs[v - 1].addr, a, 16) == 0) {
            return &n->devs[v - 1].ref;
        }
    }
}

const opsc_device_ref_t *opsc_normalizer_device(const opsc_normalizer_t *n, const char *ip) {
    unsigned char a[16];
    if (!n || addr_parse(ip, a) != 0) {
        return NULL;
    }
    return device_find(n, a);
}

static int devices_build(opsc_normalizer_t *n, const opsc_device_ref_t *devices, size_t ndev) {
    n->devs = opsc_calloc(ndev ? ndev : 1, sizeof(*n->devs));
    size_t cap = 8;
    while (cap < 2 * ndev) {
        cap *= 2;
    }
    n->dtable = opsc_calloc(cap, sizeof(*n->dtable));
    if (!n->devs || !n->dtable) {
        return OPSC_ENOMEM;
    }
    n->dmask = cap - 1;
    for (size_t i = 0; i < ndev; i++) {
        devrec_t *d = &n->devs[n->ndevs];
        if (addr_parse(devices[i].ip, d->addr) != 0 || !devices[i].name) {
            n->skipped++;
            continue;
        }
        size_t slot = (size_t)addr_hash(d->addr) & n->dmask;
        int dup = 0;
        while (n->dtable[slot]) {
            if (memcmp(n->devs[n->dtable[slot] - 1].addr, d->addr, 16) == 0) {
                dup = 1;
                break;
            }
            slot = (slot + 1) & n->dmask;
        }
        if (dup) {
            n->skipped++;
            continue;
        }
        d->ref.ip = opsc_strdup(devices[i].ip);
        d->ref.name = opsc_strdup(devices[i].name);
        d->ref.site = devices[i].site ? opsc_strdup(devices[i].site) : NULL;
        d->ref.vendor = devices[i].vendor ? opsc_strdup(devices[i].vendor) : NULL;
        d->ref.impact = devices[i].impact ? opsc_strdup(devices[i].impact) : NULL;
        n->ndevs++;
        if (!d->ref.ip || !d->ref.name || (devices[i].site && !d->ref.site) ||
            (devices[i].vendor && !d->ref.vendor) || (devices[i].impact && !d->ref.impact)) {
            return OPSC_ENOMEM;
        }
        n->dtable[slot] = (uint32_t)n->ndevs;
    }
    return 0;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

opsc_normalizer_t *opsc_normalizer_create(const opsc_oid_mapping_t *rows, size_t nrows,
                                          const opsc_device_ref_t *devices, size_t ndev, char *err,
                                          size_t errlen) {
    opsc_normalizer_t *n = opsc_calloc(1, sizeof(*n));
    if (!n) {
        goto nomem;
    }
    n->map = opsc_oidmap_create(rows, nrows, err, errlen);
    if (!n->map) {
        goto error; /* err already says why */
    }
    n->tmpls = opsc_calloc(nrows ? nrows : 1, sizeof(*n->tmpls));
    if (!n->tmpls || tmpl_compile(&n->default_tmpl, default_template) != 0) {
        goto nomem;
    }
    for (size_t i = 0; i < nrows; i++) {
        const char *tt = opsc_oidmap_rule(n->map, i)->row.title_template;
        if (tt && *tt && tmpl_compile(&n->tmpls[i], tt) != 0) {
            goto nomem;
        }
    }
    if (devices_build(n, devices, ndev) != 0) {
        goto nomem;
    }
    return n;
nomem:
    opsc_errbuf_printf(err, errlen, "normalizer: %s", opsc_strerror(OPSC_ENOMEM));
error:
    opsc_normalizer_destroy(n);
    return NULL;
}

/* ---- dependency graph ---------------------------------------------------------------------- */

static void deps_free(opsc_normalizer_t *n) {
    for (size_t i = 0; i < n->ndeps; i++) {
        opsc_free(n->deps[i].device);
        opsc_free(n->deps[i].upstream);
    }
    opsc_free(n->deps);
    opsc_free(n->rdeps);
    n->deps = NULL;
    n->rdeps = NULL;
    n->ndeps = 0;
}

/* A copy of the address without a "/prefix" suffix; NULL when empty or OOM (*oom set). */
static char *dep_addr(const char *s, int *oom) {
    if (!s) {
        return NULL;
    }
    size_t len = strcspn(s, "/");
    if (len == 0) {
        return NULL;
    }
    char *c = opsc_malloc(len + 1);
    if (!c) {
        *oom = 1;
        return NULL;
    }
    memcpy(c, s, len);
    c[len] = '\0';
    return c;
}

static int dep_cmp(const void *a, const void *b) {
    const struct dep_edge_s *x = a, *y = b;
    int c = strcmp(x->device, y->device);
    return c ? c : strcmp(x->upstream, y->upstream);
}

static void rdeps_sort(opsc_normalizer_t *n) {
    /* Shell sort by upstream: no context-free comparator can reach n->deps. */
    size_t len = n->ndeps;
    size_t gap = 1;
    while (gap < len / 3) {
        gap = gap * 3 + 1;
    }
    for (; gap > 0; gap /= 3) {
        for (size_t i = gap; i < len; i++) {
            size_t v = n->rdeps[i];
            size_t j = i;
            while (j >= gap &&
                   strcmp(n->deps[n->rdeps[j - gap]].upstream, n->deps[v].upstream) > 0) {
                n->rdeps[j] = n->rdeps[j - gap];
                j -= gap;
            }
            n->rdeps[j] = v;
        }
    }
}

int opsc_normalizer_set_dependencies(opsc_normalizer_t *n, const opsc_dependency_ref_t *rows,
                                     size_t count) {
    deps_free(n);
    if (count == 0) {
        return 0;
    }
    n->deps = opsc_calloc(count, sizeof(*n->deps));
    if (!n->deps) {
        return OPSC_ENOMEM;
    }
    int oom = 0;
    for (size_t i = 0; i < count && !oom; i++) {
        char *d = dep_addr(rows[i].device, &oom);
        char *u = dep_addr(rows[i].upstream, &oom);
        if (!d || !u || strcmp(d, u) == 0) {
            opsc_free(d);
            opsc_free(u);
            continue;
        }
        n->deps[n->ndeps].device = d;
        n->deps[n->ndeps].upstream = u;
        n->ndeps++;
    }
    if (oom) {
        deps_free(n);
        return OPSC_ENOMEM;
    }
    qsort(n->deps, n->ndeps, sizeof(*n->deps), dep_cmp);
    n->rdeps = opsc_malloc((n->ndeps ? n->ndeps : 1) * sizeof(*n->rdeps));
    if (!n->rdeps) {
        deps_free(n);
        return OPSC_ENOMEM;
    }
    for (size_t i = 0; i < n->ndeps; i++) {
        n->rdeps[i] = i;
    }
    rdeps_sort(n);
    return 0;
}

size_t opsc_normalizer_dependency_count(const opsc_normalizer_t *n) {
    return n ? n->ndeps : 0;
}

/*
 * The dependency graph, walked either way: rev 0 follows edges from a device
 * to what it depends on (deps, sorted by device), rev 1 from a device to what
 * depends on it (rdeps, sorted by upstream).
 */
static const char *edge_key(const opsc_normalizer_t *n, size_t i, int rev) {
    return rev ? n->deps[n->rdeps[i]].upstream : n->deps[i].device;
}

static const char *edge_other(const opsc_normalizer_t *n, size_t i, int rev) {
    return rev ? n->deps[n->rdeps[i]].device : n->deps[i].upstream;
}

/* Index of the first edge keyed by `device`, or n->ndeps. */
static size_t edge_first(const opsc_normalizer_t *n, const char *device, int rev) {
    size_t lo = 0, hi = n->ndeps;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(edge_key(n, mid, rev), device) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Breadth first from `device`, nearest first, each device once, at most `max`. */
static size_t walk(const opsc_normalizer_t *n, const char *device, int rev, const char **out,
                   size_t max) {
    if (!n || !n->ndeps || !device || !device[0] || max == 0) {
        return 0;
    }
    size_t count = 0, level_start = 0;
    for (int depth = 0; depth < OPSC_UPSTREAM_DEPTH; depth++) {
        size_t level_end = count;
        /* level 0 expands `device`; later levels expand out[level_start .. level_end) */
        size_t nfrom = depth == 0 ? 1 : level_end - level_start;
        if (nfrom == 0) {
            break;
        }
        for (size_t k = 0; k < nfrom; k++) {
            const char *cur = depth == 0 ? device : out[level_start + k];
            for (size_t i = edge_first(n, cur, rev);
                 i < n->ndeps && strcmp(edge_key(n, i, rev), cur) == 0; i++) {
                const char *next = edge_other(n, i, rev);
                int seen = strcmp(next, device) == 0;
                for (size_t j = 0; j < count && !seen; j++) {
                    seen = strcmp(out[j], next) == 0;
                }
                if (seen) {
                    continue;
                }
                out[count++] = next;
                if (count == max) {
                    return count;
                }
            }
        }
        level_start = depth == 0 ? 0 : level_end;
    }
    return count;
}

size_t opsc_normalizer_upstreams(const opsc_normalizer_t *n, const char *device, const char **out,
                                 size_t max) {
    return walk(n, device, 0, out, max);
}

size_t opsc_normalizer_dependents(const opsc_normalizer_t *n, const char *device, size_t max) {
    const char *found[64];
    return walk(n, device, 1, found, max > 64 ? 64 : max);
}

void opsc_normalizer_destroy(opsc_normalizer_t *n) {
    if (!n) {
        return;
    }
    if (n->tmpls) {
        for (size_t i = 0; i < opsc_oidmap_count(n->map); i++) {
            tmpl_free(&n->tmpls[i]);
        }
    }
    opsc_free(n->tmpls);
    tmpl_free(&n->default_tmpl);
    for (size_t i = 0; i < n->ndevs; i++) {
        opsc_free((void *)n->devs[i].ref.ip);
        opsc_free((void *)n->devs[i].ref.name);
        opsc_free((void *)n->devs[i].ref.site);
        opsc_free((void *)n->devs[i].ref.vendor);
        opsc_free((void *)n->devs[i].ref.impact);
    }
    opsc_free(n->devs);
    opsc_free(n->dtable);
    opsc_oidmap_destroy(n->map);
    deps_free(n);
    opsc_free(n);
}

const opsc_oidmap_t *opsc_normalizer_oidmap(const opsc_normalizer_t *n) {
    return n ? n->map : NULL;
}

size_t opsc_normalizer_devices_skipped(const opsc_normalizer_t *n) {
    return n ? n->skipped : 0;
}


/* ---- small text helpers ------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) {
        return 1;
    }
    size_t k;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) {
        k = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        k = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        k = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < k) {
        return 0;
    }
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return k;
}

/* Printable UTF-8 text: valid, no control characters except tab, CR, LF. */
static int is_text(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x20 ? (s[i] != '\t' && s[i] != '\n' && s[i] != '\r') : s[i] == 0x7f) {
            return 0;
        }
        size_t k = utf8_seq(s + i, n - i);
        if (k == 0) {
            return 0;
        }
        i += k;
    }
    return 1;
}

/*
 * An OCTET STRING as text when printable (trailing NULs, common in
 * DisplayStrings, dropped); *text_len = the text length, or SIZE_MAX when it
 * has to be shown in hex.
 */
static size_t octets_text_len(const unsigned char *s, size_t n) {
    size_t m = n;
    while (m > 0 && s[m - 1] == 0) {
        m--;
    }
    if (m == 0 && n > 0) {
        return SIZE_MAX;
    }
    return is_text(s, m) ? m : SIZE_MAX;
}

/* Bytes as "de:ad:be:ef" into out (truncated at outlen-1); returns the length. */
static size_t hex_colon(const unsigned char *s, size_t n, char *out, size_t outlen) {
    static const char hx[] = "0123456789abcdef";
    size_t o = 0;
    if (outlen == 0) {
        return 0;
    }
    for (size_t i = 0; i < n && o + 3 <= outlen - 1 + (i == 0); i++) {
        if (i > 0) {
            out[o++] = ':';
        }
        out[o++] = hx[s[i] >> 4];
        out[o++] = hx[s[i] & 15];
    }
    out[o] = '\0';
    return o;
}

/* src[0..n) into out, truncated to outlen-1 bytes on a UTF-8 boundary; returns the length. */
static size_t copy_str(const char *src, size_t n, char *out, size_t outlen) {
    if (outlen == 0) {
        return 0;
    }
    size_t k = n;
    if (k > outlen - 1) {
        k = outlen - 1;
        while (k > 0 && ((unsigned char)src[k] & 0xc0) == 0x80) {
            k--;
        }
    }
    memcpy(out, src, k);
    out[k] = '\0';
    return k;
}

/* snprintf's result clamped to what was written. */
static size_t clamp_printed(int k, size_t outlen) {
    if (k < 0) {
        return 0;
    }
    return (size_t)k < outlen ? (size_t)k : outlen - 1;
}

static size_t ipv4_format(const unsigned char v4[4], char *out) {
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        if (i) {
            out[n++] = '.';
        }
        n += opsc__u32_format(v4[i], out + n);
    }
    out[n] = '\0';
    return n;
}

static void addr_format(const unsigned char a[16], char out[OPSC_DEVICE_IP_MAX]) {
    if (memcmp(a, v4mapped_prefix, 12) == 0) {
        ipv4_format(a + 12, out);
    } else if (!inet_ntop(AF_INET6, a, out, OPSC_DEVICE_IP_MAX)) {
        out[0] = '\0';
    }
}

static int nonzero(const unsigned char *a, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (a[i]) {
            return 1;
        }
    }
    return 0;
}

/* oid equals prefix or lies under it. */
static int oid_at_or_under(const uint32_t *oid, uint32_t len, const uint32_t *prefix,
                           uint32_t plen) {
    return len >= plen && memcmp(oid, prefix, plen * sizeof(uint32_t)) == 0;
}

static const opsc_varbind_t *find_vb(const opsc_trap_t *t, const uint32_t *prefix, uint32_t plen) {
    for (size_t i = 0; i < t->nvarbinds; i++) {
        const opsc_varbind_t *vb = &t->varbinds[i];
        if (vb->oid && oid_at_or_under(vb->oid, vb->oid_len, prefix, plen)) {
            return vb;
        }
    }
    return NULL;
}

/*
 * A varbind's value as plain text. names = 1 (titles): enumerated INTEGERs
 * by label, OBJECT IDENTIFIERs by short MIB name when exactly known; names
 * = 0 (discriminators): raw values only.
 */
static size_t value_text(const opsc_varbind_t *vb, int names, char *out, size_t outlen) {
    if (outlen == 0) {
        return 0;
    }
    out[0] = '\0';
    switch (vb->type) {
    case OPSC_VB_INTEGER:
        if (names) {
            const char *label =
                opsc_mibnames_enum_label(opsc_mibnames_lookup(vb->oid, vb->oid_len), vb->i);
            if (label) {
                return copy_str(label, strlen(label), out, outlen);
            }
        }
        return clamp_printed(snprintf(out, outlen, "%lld", (long long)vb->i), outlen);
    case OPSC_VB_COUNTER32:
    case OPSC_VB_GAUGE32:
    case OPSC_VB_TIMETICKS:
    case OPSC_VB_COUNTER64:
        return clamp_printed(snprintf(out, outlen, "%llu", (unsigned long long)vb->u), outlen);
    case OPSC_VB_OCTETS:
    case OPSC_VB_OPAQUE: {
        if (!vb->bytes || vb->bytes_len == 0) {
            return 0;
        }
        size_t tl =
            vb->type == OPSC_VB_OCTETS ? octets_text_len(vb->bytes, vb->bytes_len) : SIZE_MAX;
        if (tl != SIZE_MAX) {
            return copy_str((const char *)vb->bytes, tl, out, outlen);
        }
        return hex_colon(vb->bytes, vb->bytes_len, out, outlen);
    }
    case OPSC_VB_IPADDR:
        if (vb->bytes && vb->bytes_len == 4 && outlen >= 16) {
            return ipv4_format(vb->bytes, out);
        }
        return vb->bytes ? hex_colon(vb->bytes, vb->bytes_len, out, outlen) : 0;
    case OPSC_VB_OID:
        if (names && vb->oid_value) {
            const opsc_mib_name_t *e = opsc_mibnames_lookup(vb->oid_value, vb->oid_value_len);
            if (e && e->oid_len == vb->oid_value_len) {
                return copy_str(e->name, strlen(e->name), out, outlen);
            }
        }
        return vb->oid_value ? opsc__oid_format(vb->oid_value, vb->oid_value_len, out, outlen) : 0;
    default:
        return 0;
    }
}

/* ---- phase 1 ------------------------------------------------------------------------------ */

/*
 * A storm repeats the same few fingerprints: remember the last ones per
 * thread (direct-mapped, keyed by FNV-1a of the exact input bytes, checked
 * byte for byte) so a repeat costs a hash and a compare, not a SHA-256.
 */
#define FP_CACHE_SLOTS 256
#define FP_CACHE_INPUT 192
typedef struct fp_cache_slot_s {
    uint16_t len; /* 0 = empty */
    char input[FP_CACHE_INPUT];
    char fp[OPSC_FINGERPRINT_HEX];
} fp_cache_slot_t;
static _Thread_local fp_cache_slot_t fp_cache[FP_CACHE_SLOTS]; /* ~66 KiB per thread */

static void fingerprint_compute(const char *const parts[4], char out[OPSC_FINGERPRINT_HEX]);

void opsc_normalize_fingerprint(const char *source, const char *device, const char *alert_type,
                                const char *discriminator, char out[OPSC_FINGERPRINT_HEX]) {
    const char *parts[4] = {source, device, alert_type, discriminator};
    char input[FP_CACHE_INPUT];
    size_t len = 0;
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 4; i++) {
        const char *p = parts[i] ? parts[i] : "";
        size_t n = strlen(p) + 1;
        if (len + n > sizeof(input)) {
            fingerprint_compute(parts, out); /* too long to cache: rare */
            return;
        }
        memcpy(input + len, p, n);
        len += n;
    }
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (unsigned char)input[i]) * 1099511628211ull;
    }
    fp_cache_slot_t *slot = &fp_cache[h & (FP_CACHE_SLOTS - 1)];
    if (slot->len == len && memcmp(slot->input, input, len) == 0) {
        memcpy(out, slot->fp, OPSC_FINGERPRINT_HEX);
        return;
    }
    fingerprint_compute(parts, out);
    memcpy(slot->input, input, len);
    slot->len = (uint16_t)len;
    memcpy(slot->fp, out, OPSC_FINGERPRINT_HEX);
}

static void fingerprint_compute(const char *const parts[4], char out[OPSC_FINGERPRINT_HEX]) {
    static const char hx[] = "0123456789abcdef";
    unsigned char digest[32];
    mbedtls_sha256_context ctx;
    mbedtls_sha256_init(&ctx);
    mbedtls_sha256_starts_ret(&ctx, 0);
    for (int i = 0; i < 4; i++) {
        const char *p = parts[i] ? parts[i] : "";
        /* Including the terminating NUL separates the fields unambiguously. */
        mbedtls_sha256_update_ret(&ctx, (const unsigned char *)p, strlen(p) + 1);
    }
    mbedtls_sha256_finish_ret(&ctx, digest);
    mbedtls_sha256_free(&ctx);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[digest[i] >> 4];
        out[2 * i + 1] = hx[digest[i] & 15];
    }
    out[64] = '\0';
}

/* The agent's address: v1 agent-addr / snmpTrapAddress.0 / UDP source. */
static int device_addr(const opsc_trap_t *t, unsigned char a[16]) {
    if (t->has_agent_addr && nonzero(t->agent_addr, 4)) {
        addr_from_v4(a, t->agent_addr);
        return 0;
    }
    const opsc_varbind_t *vb = find_vb(t, oid_snmp_trap_address0, OIDLEN(oid_snmp_trap_address0));
    if (vb && vb->oid_len == OIDLEN(oid_snmp_trap_address0) && vb->type == OPSC_VB_IPADDR &&
        vb->bytes && vb->bytes_len == 4 && nonzero(vb->bytes, 4)) {
        addr_from_v4(a, vb->bytes);
        return 0;
    }
    if (t->from.ss_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, &t->from, sizeof(sin));
        addr_from_v4(a, (const unsigned char *)&sin.sin_addr);
        return 0;
    }
    if (t->from.ss_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, &t->from, sizeof(sin6));
        memcpy(a, &sin6.sin6_addr, 16);
        return nonzero(a, 16) ? 0 : OPSC_EPARSE;
    }
    return OPSC_EPARSE;
}

static void discriminator(const opsc_trap_t *t, const opsc_oid_rule_t *r,
                          char out[OPSC_DISCRIMINATOR_MAX]) {
    out[0] = '\0';
    if (r && r->disc == OPSC_DISC_NONE) {
        return;
    }
    if (r && r->disc == OPSC_DISC_VARBIND) {
        const opsc_varbind_t *vb = find_vb(t, r->disc_oid.oid, r->disc_oid.len);
        if (vb) {
            value_text(vb, 0, out, OPSC_DISCRIMINATOR_MAX);
            return;
        }
    }
    for (size_t i = 0; i < t->nvarbinds; i++) {
        const opsc_varbind_t *vb = &t->varbinds[i];
        if (!vb->oid || vb->oid_len == 0) {
            continue;
        }
        const opsc_mib_name_t *e = opsc_mibnames_lookup(vb->oid, vb->oid_len);
        if (e && e->kind == OPSC_MIB_COLUMN && vb->oid_len > e->oid_len) {
            opsc__oid_format(vb->oid + e->oid_len, vb->oid_len - e->oid_len, out,
                             OPSC_DISCRIMINATOR_MAX);
            return;
        }
    }
}

int opsc_normalize_key(const opsc_normalizer_t *n, const opsc_trap_t *t, opsc_trap_key_t *key) {
    if (!t->trap_oid || t->trap_oid_len == 0 || t->trap_oid_len > OPSC_OID_MAX) {
        return OPSC_EPARSE;
    }
    unsigned char a[16];
    if (device_addr(t, a) != 0) {
        return OPSC_EPARSE;
    }
    addr_format(a, key->device_ip);
    key->device = device_find(n, a);
    key->rule = opsc_oidmap_match(n->map, t->trap_oid, t->trap_oid_len,
                                  key->device ? key->device->vendor : NULL);
    key->alert_type = key->rule ? key->rule->row.alert_type : OPSC_UNKNOWN_TRAP_TYPE;
    key->is_clear = key->rule ? key->rule->is_clear : 0;
    discriminator(t, key->rule, key->discriminator);
    opsc_normalize_fingerprint(OPSC_NORMALIZE_SOURCE, key->device_ip, key->alert_type,
                               key->discriminator, key->fingerprint);
    return 0;
}

/* ---- clears ------------------------------------------------------------------------------- */

int opsc_normalize_clears(const opsc_normalizer_t *n, const opsc_oid_rule_t *active,
                          const opsc_trap_t *clear) {
    (void)n;
    return active && clear &&
           opsc_oidmap_pattern_match(&active->clear, clear->trap_oid, clear->trap_oid_len);
}

size_t opsc_normalize_clear_fingerprints(const opsc_normalizer_t *n, const opsc_trap_t *t,
                                         const opsc_trap_key_t *key,
                                         char (*fps)[OPSC_FINGERPRINT_HEX], size_t max) {
    const char *types[32];
    size_t nt =
        opsc_oidmap_clear_types(n->map, t->trap_oid, t->trap_oid_len, types, max < 32 ? max : 32);
    for (size_t i = 0; i < nt; i++) {
        opsc_normalize_fingerprint(OPSC_NORMALIZE_SOURCE, key->device_ip, types[i],
                                   key->discriminator, fps[i]);
    }
    return nt;
}

/* ---- phase 2: titles ---------------------------------------------------------------------- */

/*
 * Text limited to max_chars code points (PostgreSQL VARCHAR(n) counts
 * characters), never split inside a UTF-8 sequence; control characters
 * become spaces and invalid bytes '?'.
 */
typedef struct tbuf_s {
    char buf[4 * 255 + 4];
    size_t len;
    size_t chars;
    size_t max_chars;
} tbuf_t;

static void tb_init(tbuf_t *b, size_t max_chars) {
    b->len = 0;
    b->chars = 0;
    b->max_chars = max_chars;
    b->buf[0] = '\0';
}

static void tb_put(tbuf_t *b, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n && b->chars < b->max_chars;) {
        size_t k = utf8_seq(u + i, n - i);
        if (k == 0 || (k == 1 && (u[i] < 0x20 || u[i] == 0x7f))) {
            b->buf[b->len++] = k == 0 ? '?' : ' ';
            i++;
        } else {
            memcpy(b->buf + b->len, u + i, k);
            b->len += k;
            i += k;
        }
        b->chars++;
    }
    b->buf[b->len] = '\0';
}

static void tb_puts(tbuf_t *b, const char *s) {
    tb_put(b, s, strlen(s));
}

/* The device label; NULL writes OPSC_NAME_MARK (tb_put would turn a control byte into a space). */
static void tb_label(tbuf_t *b, const char *label) {
    if (label) {
        tb_puts(b, label);
    } else if (b->chars < b->max_chars) {
        b->buf[b->len++] = OPSC_NAME_MARK;
        b->buf[b->len] = '\0';
        b->chars++;
    }
}

/* {interface}: ifName, else ifDescr, else ifIndex, else an ifTable/ifXTable row index. */
static int interface_text(const opsc_trap_t *t, char *out, size_t outlen) {
    static const struct {
        const uint32_t *oid;
        uint32_t len;
    } pref[] = {{oid_if_name, OIDLEN(oid_if_name)},
                {oid_if_descr, OIDLEN(oid_if_descr)},
                {oid_if_index, OIDLEN(oid_if_index)}};
    for (size_t p = 0; p < sizeof(pref) / sizeof(pref[0]); p++) {
        const opsc_varbind_t *vb = find_vb(t, pref[p].oid, pref[p].len);
        if (vb && value_text(vb, 0, out, outlen) > 0) {
            return 1;
        }
    }
    for (size_t i = 0; i < t->nvarbinds; i++) {
        const opsc_varbind_t *vb = &t->varbinds[i];
        uint32_t plen = 0;
        if (vb->oid && oid_at_or_under(vb->oid, vb->oid_len, oid_if_entry, OIDLEN(oid_if_entry))) {
            plen = OIDLEN(oid_if_entry) + 1;
        } else if (vb->oid &&
                   oid_at_or_under(vb->oid, vb->oid_len, oid_ifx_entry, OIDLEN(oid_ifx_entry))) {
            plen = OIDLEN(oid_ifx_entry) + 1;
        }
        if (plen && vb->oid_len > plen) {
            opsc__oid_format(vb->oid + plen, vb->oid_len - plen, out, outlen);
            return 1;
        }
    }
    return 0;
}

static void title_expand(const tmpl_t *tp, const opsc_trap_t *t, const opsc_trap_key_t *key,
                         const char *oid_text, const char *dev_label, tbuf_t *b) {
    char v[1024];
    for (size_t i = 0; i < tp->nsegs && b->chars < b->max_chars; i++) {
        const seg_t *s = &tp->segs[i];
        switch (s->kind) {
        case SEG_LITERAL:
            tb_put(b, s->text, s->len);
            break;
        case SEG_DEVICE_NAME:
            tb_label(b, dev_label);
            break;
        case SEG_DEVICE_IP:
            tb_puts(b, key->device_ip);
            break;
        case SEG_TRAP_OID:
            tb_puts(b, oid_text);
            break;
        case SEG_TRAP_NAME: {
            const opsc_mib_name_t *e = opsc_mibnames_lookup(t->trap_oid, t->trap_oid_len);
            tb_puts(b, e && e->oid_len == t->trap_oid_len ? e->name : oid_text);
            break;
        }
        case SEG_INTERFACE:
            if (interface_text(t, v, sizeof(v))) {
                tb_puts(b, v);
            } else {
                tb_put(b, s->text, s->len);
            }
            break;
        case SEG_VARBIND: {
            const opsc_varbind_t *vb = find_vb(t, s->oid, s->oid_len);
            if (vb) {
                value_text(vb, 1, v, sizeof(v));
                tb_puts(b, v);
            } else {
                tb_put(b, s->text, s->len);
            }
            break;
        }
        }
    }
}

/* ---- phase 2: raw_data -------------------------------------------------------------------- */

static const char *vb_type_name(opsc_vb_type_t type) {
    switch (type) {
    case OPSC_VB_INTEGER:
        return "Integer32";
    case OPSC_VB_OCTETS:
        return "OctetString";
    case OPSC_VB_NULL:
        return "Null";
    case OPSC_VB_OID:
        return "ObjectIdentifier";
    case OPSC_VB_IPADDR:
        return "IpAddress";
    case OPSC_VB_COUNTER32:
        return "Counter32";
    case OPSC_VB_GAUGE32:
        return "Gauge32";
    case OPSC_VB_TIMETICKS:
        return "TimeTicks";
    case OPSC_VB_OPAQUE:
        return "Opaque";
    case OPSC_VB_COUNTER64:
        return "Counter64";
    case OPSC_VB_NOSUCHOBJECT:
        return "noSuchObject";
    case OPSC_VB_NOSUCHINSTANCE:
        return "noSuchInstance";
    case OPSC_VB_ENDOFMIBVIEW:
        return "endOfMibView";
    default:
        return "other";
    }
}

/*
 * raw_data is written directly as JSON text rather than built as a jansson
 * tree: measured on this machine, building and dumping the tree for a
 * 3-varbind trap cost ~30 us (jansson's per-node allocations and its dump's
 * loop detection), the direct writer a small fraction of that, and this runs
 * for every new alert, whose budget is the database's COPY rate. Every
 * string written is valid UTF-8 (network bytes that are not printable text
 * go out in hex), so escaping is only '"', '\\' and control characters;
 * tests parse the output with jansson.
 */
typedef struct jw_s {
    opsc_buf_t b;
    int bad;
    int depth;
    unsigned char first[8]; /* per open container: no member written yet */
} jw_t;

static void jw_put(jw_t *w, const char *s, size_t n) {
    if (!w->bad && opsc_buf_append(&w->b, s, n) != 0) {
        w->bad = 1;
    }
}

/* A JSON string; s must be valid UTF-8 without NUL (callers guarantee it). */
static void jw_str(jw_t *w, const char *s, size_t n) {
    static const char hx[] = "0123456789abcdef";
    if (w->bad || opsc_buf_reserve(&w->b, n + 2) != 0) {
        w->bad = 1;
        return;
    }
    jw_put(w, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        jw_put(w, s + run, i - run);
        run = i + 1;
        char esc[7] = {'\\', (char)c, 0};
        size_t el = 2;
        switch (c) {
        case '"':
        case '\\':
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hx[c >> 4];
            esc[5] = hx[c & 15];
            el = 6;
            break;
        }
        jw_put(w, esc, el);
    }
    jw_put(w, s + run, n - run);
    jw_put(w, "\"", 1);
}

static void jw_sep(jw_t *w) {
    if (!w->first[w->depth]) {
        jw_put(w, ",", 1);
    }
    w->first[w->depth] = 0;
}

static void jw_key(jw_t *w, const char *k) {
    jw_sep(w);
    jw_str(w, k, strlen(k));
    jw_put(w, ":", 1);
}

static void jw_open(jw_t *w, char c) {
    jw_put(w, &c, 1);
    if (w->depth + 1 < (int)sizeof(w->first)) {
        w->first[++w->depth] = 1;
    } else {
        w->bad = 1;
    }
}

static void jw_close(jw_t *w, char c) {
    jw_put(w, &c, 1);
    w->depth--;
}

static void jw_kstr(jw_t *w, const char *k, const char *v) {
    jw_key(w, k);
    jw_str(w, v, strlen(v));
}

static void jw_kint(jw_t *w, const char *k, int64_t v) {
    char d[24];
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    size_t n = 0;
    if (v < 0) {
        d[n++] = '-';
    }
    char tmp[21];
    size_t t = 0;
    do {
        tmp[t++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (t) {
        d[n++] = tmp[--t];
    }
    jw_key(w, k);
    jw_put(w, d, n);
}

static void jw_knull(jw_t *w, const char *k) {
    jw_key(w, k);
    jw_put(w, "null", 4);
}

/* Bytes from the network: text when printable UTF-8, else colon hex. */
static void jw_kbytes(jw_t *w, const char *k, const unsigned char *s, size_t n) {
    jw_key(w, k);
    if (is_text(s, n)) {
        jw_str(w, (const char *)s, n);
        return;
    }
    char hex[3 * 128];
    size_t hl = hex_colon(s, n, hex, sizeof(hex));
    jw_str(w, hex, hl);
}

static void jw_koid(jw_t *w, const char *k, const uint32_t *oid, uint32_t len) {
    char buf[OID_TEXT_MAX];
    size_t n = opsc__oid_format(oid, len, buf, sizeof(buf));
    jw_key(w, k);
    jw_str(w, buf, n);
}

/* The qualified MIB name when any table entry covers the OID, else null. */
static void jw_kname(jw_t *w, const char *k, const uint32_t *oid, uint32_t len) {
    if (!oid || !opsc_mibnames_lookup(oid, len)) {
        jw_knull(w, k);
        return;
    }
    char buf[OID_TEXT_MAX + 64];
    size_t n = opsc_mibnames_format(oid, len, buf, sizeof(buf));
    jw_key(w, k);
    jw_str(w, buf, n);
}

static void jw_varbind(jw_t *w, const opsc_varbind_t *vb) {
    jw_sep(w);
    jw_open(w, '{');
    jw_koid(w, "oid", vb->oid, vb->oid_len);
    jw_kname(w, "name", vb->oid, vb->oid_len);
    jw_kstr(w, "type", vb_type_name(vb->type));
    switch (vb->type) {
    case OPSC_VB_INTEGER: {
        jw_kint(w, "value", vb->i);
        const char *label =
            opsc_mibnames_enum_label(opsc_mibnames_lookup(vb->oid, vb->oid_len), vb->i);
        if (label) {
            jw_kstr(w, "enum", label);
        }
        break;
    }
    case OPSC_VB_COUNTER32:
    case OPSC_VB_GAUGE32:
    case OPSC_VB_TIMETICKS:
    case OPSC_VB_COUNTER64:
        if (vb->u <= (uint64_t)INT64_MAX) {
            jw_kint(w, "value", (int64_t)vb->u);
        } else {
            /* Beyond what JSON consumers hold exactly as a number: a string. */
            char d[24];
            snprintf(d, sizeof(d), "%llu", (unsigned long long)vb->u);
            jw_kstr(w, "value", d);
        }
        break;
    case OPSC_VB_OCTETS:
    case OPSC_VB_OPAQUE: {
        const unsigned char *s = vb->bytes ? vb->bytes : (const unsigned char *)"";
        size_t tl = vb->type == OPSC_VB_OCTETS ? octets_text_len(s, vb->bytes_len) : SIZE_MAX;
        if (tl != SIZE_MAX) {
            jw_key(w, "value");
            jw_str(w, (const char *)s, tl);
            jw_kstr(w, "encoding", "text");
        } else {
            size_t cap = 3 * (size_t)vb->bytes_len + 1;
            char *hex = opsc_malloc(cap);
            if (!hex) {
                w->bad = 1;
                break;
            }
            size_t hl = hex_colon(s, vb->bytes_len, hex, cap);
            jw_key(w, "value");
            jw_str(w, hex, hl);
            jw_kstr(w, "encoding", "hex");
            opsc_free(hex);
        }
        break;
    }
    case OPSC_VB_IPADDR:
        if (vb->bytes && vb->bytes_len == 4) {
            char ip[16];
            ipv4_format(vb->bytes, ip);
            jw_kstr(w, "value", ip);
        } else if (vb->bytes) {
            jw_kbytes(w, "value", vb->bytes, vb->bytes_len);
        } else {
            jw_knull(w, "value");
        }
        break;
    case OPSC_VB_OID:
        if (vb->oid_value) {
            jw_koid(w, "value", vb->oid_value, vb->oid_value_len);
            if (opsc_mibnames_lookup(vb->oid_value, vb->oid_value_len)) {
                jw_kname(w, "value_name", vb->oid_value, vb->oid_value_len);
            }
        } else {
            jw_knull(w, "value");
        }
        break;
    default:
        jw_knull(w, "value");
        break;
    }
    jw_close(w, '}');
}

static void jw_source(jw_t *w, const struct sockaddr_storage *ss) {
    unsigned char a[16];
    unsigned port;
    if (ss->ss_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, ss, sizeof(sin));
        addr_from_v4(a, (const unsigned char *)&sin.sin_addr);
        port = ntohs(sin.sin_port);
    } else if (ss->ss_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, ss, sizeof(sin6));
        memcpy(a, &sin6.sin6_addr, 16);
        port = ntohs(sin6.sin6_port);
    } else {
        jw_knull(w, "source");
        return;
    }
    char ip[OPSC_DEVICE_IP_MAX];
    addr_format(a, ip);
    jw_key(w, "source");
    jw_open(w, '{');
    jw_kstr(w, "address", ip);
    jw_kint(w, "port", port);
    jw_close(w, '}');
}

static char *raw_data(const opsc_trap_t *t) {
    jw_t w = {.b = OPSC_BUF_INIT};
    if (opsc_buf_reserve(&w.b, 512 + 160 * t->nvarbinds) != 0) {
        return NULL;
    }
    jw_open(&w, '{');
    switch (t->version) {
    case 0:
        jw_kstr(&w, "version", "v1");
        break;
    case 1:
        jw_kstr(&w, "version", "v2c");
        break;
    case 3:
        jw_kstr(&w, "version", "v3");
        break;
    default:
        jw_kint(&w, "version", t->version);
        break;
    }
    jw_kstr(&w, "pdu",
            t->pdu == OPSC_PDU_INFORM    ? "inform"
            : t->pdu == OPSC_PDU_TRAP_V1 ? "trap-v1"
                                         : "trap");
    if (t->pdu != OPSC_PDU_TRAP_V1) {
        jw_kint(&w, "request_id", t->request_id);
    }
    jw_source(&w, &t->from);
    if (t->has_agent_addr) {
        char ip[16];
        ipv4_format(t->agent_addr, ip);
        jw_kstr(&w, "agent_address", ip);
    }
    if (t->version != 3) {
        /* Masked: the first character when printable ASCII, then "***". */
        char masked[5] = "";
        if (t->community[0]) {
            unsigned char c0 = (unsigned char)t->community[0];
            masked[0] = c0 > 0x20 && c0 < 0x7f ? (char)c0 : '*';
            memcpy(masked + 1, "***", 4);
        }
        jw_kstr(&w, "community", masked);
    } else {
        static const char *const levels[] = {"noAuthNoPriv", "authNoPriv", "authPriv"};
        jw_key(&w, "v3");
        jw_open(&w, '{');
        jw_kbytes(&w, "engine_id", (const unsigned char *)t->engine_id_hex,
                  strnlen(t->engine_id_hex, sizeof(t->engine_id_hex)));
        jw_kbytes(&w, "user", (const unsigned char *)t->user, strnlen(t->user, sizeof(t->user)));
        if (t->security_level >= 1 && t->security_level <= 3) {
            jw_kstr(&w, "security_level", levels[t->security_level - 1]);
        } else {
            jw_kint(&w, "security_level", t->security_level);
        }
        jw_close(&w, '}');
    }
    if (t->enterprise && t->enterprise_len) {
        jw_koid(&w, "enterprise", t->enterprise, t->enterprise_len);
    } else {
        jw_knull(&w, "enterprise");
    }
    if (t->version == 0) {
        jw_kint(&w, "generic_trap", t->generic_trap);
        jw_kint(&w, "specific_trap", t->specific_trap);
    }
    jw_kint(&w, "uptime", t->uptime_ticks <= (uint64_t)INT64_MAX ? (int64_t)t->uptime_ticks : -1);
    jw_koid(&w, "trap_oid", t->trap_oid, t->trap_oid_len);
    jw_kname(&w, "trap_name", t->trap_oid, t->trap_oid_len);
    jw_key(&w, "varbinds");
    jw_open(&w, '[');
    for (size_t i = 0; i < t->nvarbinds; i++) {
        jw_varbind(&w, &t->varbinds[i]);
    }
    jw_close(&w, ']');
    jw_close(&w, '}');
    if (w.bad) {
        opsc_buf_free(&w.b);
        return NULL;
    }
    return w.b.base;
}

/* ---- phase 2 ------------------------------------------------------------------------------ */

/* The alert's title: the mapping's template, or the unknown-trap title. */
static void render_title(const opsc_normalizer_t *n, const opsc_trap_t *t,
                         const opsc_trap_key_t *key, const char *oid_text, const char *dev_label,
                         tbuf_t *b) {
    const opsc_oid_rule_t *r = key->rule;
    tb_init(b, TITLE_MAX_CHARS);
    if (r) {
        const tmpl_t *tp = &n->tmpls[r->index];
        title_expand(tp->segs ? tp : &n->default_tmpl, t, key, oid_text, dev_label, b);
    } else {
        const opsc_mib_name_t *e = opsc_mibnames_lookup(t->trap_oid, t->trap_oid_len);
        tb_puts(b, "Unknown trap ");
        if (e && e->oid_len == t->trap_oid_len) {
            tb_puts(b, e->module);
            tb_puts(b, "::");
            tb_puts(b, e->name);
            tb_puts(b, " (");
            tb_puts(b, oid_text);
            tb_puts(b, ")");
        } else {
            tb_puts(b, oid_text);
        }
        tb_puts(b, " from ");
        tb_label(b, dev_label);
    }
}

int opsc_normalize_title(const opsc_normalizer_t *n, const opsc_trap_t *t,
                         const opsc_trap_key_t *key, const char *dev_label, char **out) {
    char oid_text[OID_TEXT_MAX];
    opsc__oid_format(t->trap_oid, t->trap_oid_len, oid_text, sizeof(oid_text));
    tbuf_t *b = opsc_malloc(sizeof(*b));
    if (!b) {
        return OPSC_ENOMEM;
    }
    render_title(n, t, key, oid_text, dev_label, b);
    *out = opsc_strdup(b->buf);
    opsc_free(b);
    return *out ? 0 : OPSC_ENOMEM;
}


int opsc_normalize_full(const opsc_normalizer_t *n, const opsc_trap_t *t,
                        const opsc_trap_key_t *key, int64_t now_us, opsc_alert_t *out) {
    char oid_text[OID_TEXT_MAX];
    opsc__oid_format(t->trap_oid, t->trap_oid_len, oid_text, sizeof(oid_text));
    const opsc_oid_rule_t *r = key->rule;
    const char *dev_label = key->device ? key->device->name : key->device_ip;
    tbuf_t *b = opsc_malloc(sizeof(*b));
    char *raw = NULL;
    int rc = OPSC_ENOMEM;
    if (!b) {
        goto cleanup;
    }

    opsc_uuid_generate(&out->id);
    out->severity = r ? r->severity : OPSC_SEV_WARNING;
    out->category = r ? r->category : OPSC_CAT_UNKNOWN;
    out->status = OPSC_STATUS_ACTIVE;
    out->is_clear = key->is_clear;
    out->occurred_at_us = now_us;
    out->received_at_us = now_us;
    out->last_occurrence_at_us = now_us;
    out->occurrence_count = 1;
    memcpy(out->fingerprint, key->fingerprint, sizeof(out->fingerprint));
    if (opsc_alert_set(&out->source_system, OPSC_NORMALIZE_SOURCE) != 0 ||
        opsc_alert_set(&out->device_ip, key->device_ip) != 0 ||
        opsc_alert_set(&out->device_name, key->device ? key->device->name : NULL) != 0 ||
        opsc_alert_set(&out->alert_type, key->alert_type) != 0) {
        goto cleanup;
    }

    tb_init(b, SOURCE_ID_MAX_CHARS);
    tb_puts(b, key->device_ip);
    tb_puts(b, "/");
    tb_puts(b, oid_text);
    if (key->discriminator[0]) {
        tb_puts(b, "/");
        tb_puts(b, key->discriminator);
    }
    if (opsc_alert_set(&out->source_alert_id, b->buf) != 0) {
        goto cleanup;
    }

    render_title(n, t, key, oid_text, dev_label, b);
    if (opsc_alert_set(&out->title, b->buf) != 0) {
        goto cleanup;
    }

    if (r) {
        if (opsc_alert_set(&out->message, r->row.description) != 0) {
            goto cleanup;
        }
    } else {
        opsc_buf_t m = OPSC_BUF_INIT;
        if (opsc_buf_printf(&m, "No oid_mappings row matches trap OID %s", oid_text) != 0) {
            opsc_buf_free(&m);
            goto cleanup;
        }
        opsc_free(out->message);
        out->message = m.base;
    }

    raw = raw_data(t);
    if (!raw) {
        goto cleanup;
    }
    opsc_free(out->raw_data_json);
    out->raw_data_json = raw;
    rc = 0;
cleanup:
    opsc_free(b);
    return rc;
}
