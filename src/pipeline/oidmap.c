/*
 * The oid_mappings snapshot, compiled for matching.
 *
 * Rows are validated and copied, then grouped by pattern: rows that share a
 * pattern (a generic row and vendor rows) form one slot whose candidates are
 * ordered vendor rows first (by vendor name), the generic row last. Slots
 * live in one open-addressing hash table keyed on (OID, length, wildcard).
 * A trap OID of length L is matched by one probe for the exact pattern, then
 * one probe per distinct wildcard prefix length shorter than L, longest
 * first; the prefix hashes come from a single pass over the OID. A storm
 * therefore costs a handful of probes per trap however many rows there are.
 *
 * clear_oid_pattern gets a second table of the same shape whose slots list
 * the distinct alert_types a clear trap resolves; there every matching
 * pattern counts, not only the longest.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "normalize_int.h"
#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/normalize.h"

typedef struct slot_s {
    uint64_t hash;
    const uint32_t *oid;
    uint32_t len;
    int wildcard;
    uint32_t first; /* into items */
    uint32_t count;
} slot_t;

typedef struct pindex_s {
    slot_t *slots;
    size_t nslots;
    const opsc_oid_rule_t **items;
    uint32_t *table; /* slot index + 1; 0 = empty */
    size_t mask;
    uint32_t wild_lens[OPSC_OID_MAX + 1]; /* distinct wildcard prefix lengths, descending */
    size_t nwild;
    int has_exact;
} pindex_t;

struct opsc_oidmap_s {
    opsc_oid_rule_t *rules;
    size_t n;
    pindex_t main;
    pindex_t clear;
};

/* ---- hashing ------------------------------------------------------------------------------ */

#define H_SEED 0xcbf29ce484222325ULL

static inline uint64_t h_step(uint64_t h, uint32_t w) {
    return (h ^ w) * 0x100000001b3ULL;
}

static inline uint64_t h_final(uint64_t h, uint32_t len, int wildcard) {
    h ^= ((uint64_t)len << 1) | (uint64_t)(wildcard != 0);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t h_oid(const uint32_t *oid, uint32_t len, int wildcard) {
    uint64_t h = H_SEED;
    for (uint32_t i = 0; i < len; i++) {
        h = h_step(h, oid[i]);
    }
    return h_final(h, len, wildcard);
}

static const slot_t *probe(const pindex_t *ix, uint64_t h, const uint32_t *oid, uint32_t len,
                           int wildcard) {
    for (size_t i = (size_t)h & ix->mask;; i = (i + 1) & ix->mask) {
        uint32_t v = ix->table[i];
        if (v == 0) {
            return NULL;
        }
        const slot_t *s = &ix->slots[v - 1];
        if (s->hash == h && s->len == len && s->wildcard == wildcard &&
            memcmp(s->oid, oid, len * sizeof(uint32_t)) == 0) {
            return s;
        }
    }
}

/* ---- patterns ----------------------------------------------------------------------------- */

int opsc_oidmap_pattern_parse(const char *s, uint32_t *oid, uint32_t max, int *wildcard,
                              const char **why) {
    if (!s || !*s) {
        if (why) {
            *why = "empty pattern";
        }
        return OPSC_EPARSE;
    }
    size_t len = strlen(s);
    int wc = 0;
    if (len >= 2 && s[len - 2] == '.' && s[len - 1] == '*') {
        wc = 1;
        len -= 2;
    }
    int n = opsc__oid_parse(s, len, oid, max, why);
    if (n >= 0 && wildcard) {
        *wildcard = wc;
    }
    return n;
}

int opsc_oidmap_pattern_match(const opsc_oid_pattern_t *p, const uint32_t *oid, uint32_t len) {
    if (!p || p->len == 0 || !oid) {
        return 0;
    }
    if (p->wildcard ? len <= p->len : len != p->len) {
        return 0;
    }
    return memcmp(p->oid, oid, p->len * sizeof(uint32_t)) == 0;
}

static int pattern_cmp(const opsc_oid_pattern_t *a, const opsc_oid_pattern_t *b) {
    if (a->wildcard != b->wildcard) {
        return a->wildcard - b->wildcard;
    }
    if (a->len != b->len) {
        return a->len < b->len ? -1 : 1;
    }
    for (uint32_t i = 0; i < a->len; i++) {
        if (a->oid[i] != b->oid[i]) {
            return a->oid[i] < b->oid[i] ? -1 : 1;
        }
    }
    return 0;
}

/* Vendor rows first, by name; the generic row (NULL) last. */
static int vendor_cmp(const char *a, const char *b) {
    if (!a || !b) {
        return (a == NULL) - (b == NULL);
    }
    return strcmp(a, b);
}

static int cmp_main(const void *pa, const void *pb) {
    const opsc_oid_rule_t *a = *(const opsc_oid_rule_t *const *)pa;
    const opsc_oid_rule_t *b = *(const opsc_oid_rule_t *const *)pb;
    int c = pattern_cmp(&a->pattern, &b->pattern);
    if (c == 0) {
        c = vendor_cmp(a->row.vendor, b->row.vendor);
    }
    if (c == 0) {
        c = a->index < b->index ? -1 : a->index > b->index;
    }
    return c;
}

static int cmp_clear(const void *pa, const void *pb) {
    const opsc_oid_rule_t *a = *(const opsc_oid_rule_t *const *)pa;
    const opsc_oid_rule_t *b = *(const opsc_oid_rule_t *const *)pb;
    int c = pattern_cmp(&a->clear, &b->clear);
    if (c == 0) {
        c = strcmp(a->row.alert_type, b->row.alert_type);
    }
    if (c == 0) {
        c = a->index < b->index ? -1 : a->index > b->index;
    }
    return c;
}

/* ---- building ----------------------------------------------------------------------------- */

static void index_free(pindex_t *ix) {
    opsc_free(ix->slots);
    opsc_free(ix->items);
    opsc_free(ix->table);
    memset(ix, 0, sizeof(*ix));
}

static const opsc_oid_pattern_t *pat_of(const opsc_oid_rule_t *r, int clear) {
    return clear ? &r->clear : &r->pattern;
}

/*
 * Group the sorted items into slots (for the clear index, keeping one item
 * per distinct alert_type) and hash them.
 */
static int index_build(pindex_t *ix, const opsc_oid_rule_t **sorted, size_t n, int clear) {
    ix->items = opsc_calloc(n ? n : 1, sizeof(*ix->items));
    ix->slots = opsc_calloc(n ? n : 1, sizeof(*ix->slots));
    size_t cap = 8;
    while (cap < 2 * n) {
        cap *= 2;
    }
    ix->table = opsc_calloc(cap, sizeof(*ix->table));
    if (!ix->items || !ix->slots || !ix->table) {
        return OPSC_ENOMEM;
    }
    ix->mask = cap - 1;
    size_t nitems = 0;
    int seen_len[OPSC_OID_MAX + 1] = {0};
    for (size_t i = 0; i < n; i++) {
        const opsc_oid_pattern_t *p = pat_of(sorted[i], clear);
        slot_t *s = ix->nslots ? &ix->slots[ix->nslots - 1] : NULL;
        if (!s || pattern_cmp(pat_of(ix->items[s->first], clear), p) != 0) {
            s = &ix->slots[ix->nslots++];
            s->oid = p->oid;
            s->len = p->len;
            s->wildcard = p->wildcard;
            s->hash = h_oid(p->oid, p->len, p->wildcard);
            s->first = (uint32_t)nitems;
            s->count = 0;
            if (p->wildcard) {
                seen_len[p->len] = 1;
            } else {
                ix->has_exact = 1;
            }
        } else if (clear &&
                   strcmp(ix->items[nitems - 1]->row.alert_type, sorted[i]->row.alert_type) == 0) {
            continue;
        }
        ix->items[nitems++] = sorted[i];
        s->count++;
    }
    for (size_t i = 0; i < ix->nslots; i++) {
        size_t j = (size_t)ix->slots[i].hash & ix->mask;
        while (ix->table[j]) {
            j = (j + 1) & ix->mask;
        }
        ix->table[j] = (uint32_t)i + 1;
    }
    for (int l = OPSC_OID_MAX; l >= 1; l--) {
        if (seen_len[l]) {
            ix->wild_lens[ix->nwild++] = (uint32_t)l;
        }
    }
    return 0;
}

static char *dup_or_null(const char *s, int *failed) {
    if (!s) {
        return NULL;
    }
    char *d = opsc_strdup(s);
    if (!d) {
        *failed = 1;
    }
    return d;
}

static void rule_free(opsc_oid_rule_t *r) {
    opsc_free((void *)r->row.id);
    opsc_free((void *)r->row.oid_pattern);
    opsc_free((void *)r->row.vendor);
    opsc_free((void *)r->row.alert_type);
    opsc_free((void *)r->row.category);
    opsc_free((void *)r->row.default_severity);
    opsc_free((void *)r->row.title_template);
    opsc_free((void *)r->row.description);
    opsc_free((void *)r->row.clear_oid_pattern);
    opsc_free((void *)r->row.mib_name);
    opsc_free((void *)r->row.mib_object);
    opsc_free((void *)r->row.notes);
    opsc_free((void *)r->row.discriminator);
    opsc_free((void *)r->pattern.oid);
    opsc_free((void *)r->clear.oid);
    opsc_free((void *)r->disc_oid.oid);
}

static int copy_oid(opsc_oid_pattern_t *p, const uint32_t *oid, int len, int wildcard) {
    uint32_t *o = opsc_malloc((size_t)len * sizeof(uint32_t));
    if (!o) {
        return OPSC_ENOMEM;
    }
    memcpy(o, oid, (size_t)len * sizeof(uint32_t));
    p->oid = o;
    p->len = (uint32_t)len;
    p->wildcard = wildcard;
    return 0;
}

#define ROW_ERR(fmt, ...)                                                                          \
    opsc_errbuf_printf(err, errlen, "oid_mappings rows[%zu] (id %s, oid_pattern '%s'): " fmt, i,   \
                       src->id ? src->id : "-", src->oid_pattern ? src->oid_pattern : "",          \
                       __VA_ARGS__)

/* Validate rows[i] into r (strings copied). 0, OPSC_EPARSE (err set) or OPSC_ENOMEM. */
static int rule_compile(opsc_oid_rule_t *r, const opsc_oid_mapping_t *rows, size_t i, char *err,
                        size_t errlen) {
    const opsc_oid_mapping_t *src = &rows[i];
    uint32_t tmp[OPSC_OID_MAX];
    const char *why = "";
    int wc = 0;
    r->index = i;
    int n = opsc_oidmap_pattern_parse(src->oid_pattern, tmp, OPSC_OID_MAX, &wc, &why);
    if (n < 0) {
        ROW_ERR("invalid oid_pattern: %s", why);
        return OPSC_EPARSE;
    }
    if (copy_oid(&r->pattern, tmp, n, wc) != 0) {
        return OPSC_ENOMEM;
    }
    if (!src->alert_type || !*src->alert_type) {
        ROW_ERR("%s", "alert_type is empty");
        return OPSC_EPARSE;
    }
    if (opsc_category_parse(src->category, &r->category) != 0) {
        ROW_ERR("invalid category '%s'", src->category ? src->category : "(null)");
        return OPSC_EPARSE;
    }
    if (opsc_severity_parse(src->default_severity, &r->severity) != 0) {
        ROW_ERR("invalid default_severity '%s'",
                src->default_severity ? src->default_severity : "(null)");
        return OPSC_EPARSE;
    }
    if (src->clear_oid_pattern && *src->clear_oid_pattern) {
        n = opsc_oidmap_pattern_parse(src->clear_oid_pattern, tmp, OPSC_OID_MAX, &wc, &why);
        if (n < 0) {
            ROW_ERR("invalid clear_oid_pattern '%s': %s", src->clear_oid_pattern, why);
            return OPSC_EPARSE;
        }
        if (copy_oid(&r->clear, tmp, n, wc) != 0) {
            return OPSC_ENOMEM;
        }
    }
    r->disc = OPSC_DISC_INDEX;
    if (src->discriminator && *src->discriminator) {
        if (strcmp(src->discriminator, "none") == 0) {
            r->disc = OPSC_DISC_NONE;
        } else {
            n = opsc__object_resolve(src->discriminator, strlen(src->discriminator), tmp,
                                     OPSC_OID_MAX);
            if (n < 0) {
                ROW_ERR("discriminator '%s' %s", src->discriminator,
                        n == OPSC_ENOTFOUND ? "names no known MIB object"
                                            : "is neither \"none\", a MIB name nor an OID");
                return OPSC_EPARSE;
            }
            r->disc = OPSC_DISC_VARBIND;
            if (copy_oid(&r->disc_oid, tmp, n, 1) != 0) {
                return OPSC_ENOMEM;
            }
        }
    }
    r->is_clear = src->is_clear_event || r->severity == OPSC_SEV_CLEAR;

    int failed = 0;
    r->row.id = dup_or_null(src->id, &failed);
    r->row.oid_pattern = dup_or_null(src->oid_pattern, &failed);
    r->row.vendor = dup_or_null(src->vendor && *src->vendor ? src->vendor : NULL, &failed);
    r->row.alert_type = dup_or_null(src->alert_type, &failed);
    r->row.category = dup_or_null(src->category, &failed);
    r->row.default_severity = dup_or_null(src->default_severity, &failed);
    r->row.title_template = dup_or_null(src->title_template, &failed);
    r->row.description = dup_or_null(src->description, &failed);
    r->row.is_clear_event = src->is_clear_event;
    r->row.clear_oid_pattern = dup_or_null(src->clear_oid_pattern, &failed);
    r->row.mib_name = dup_or_null(src->mib_name, &failed);
    r->row.mib_object = dup_or_null(src->mib_object, &failed);
    r->row.notes = dup_or_null(src->notes, &failed);
    r->row.discriminator = dup_or_null(src->discriminator, &failed);
    return failed ? OPSC_ENOMEM : 0;
}

opsc_oidmap_t *opsc_oidmap_create(const opsc_oid_mapping_t *rows, size_t n, char *err,
                                  size_t errlen) {
    const opsc_oid_rule_t **sorted = NULL;
    opsc_oidmap_t *m = opsc_calloc(1, sizeof(*m));
    if (!m) {
        goto nomem;
    }
    m->rules = opsc_calloc(n ? n : 1, sizeof(*m->rules));
    sorted = opsc_calloc(n ? n : 1, sizeof(*sorted));
    if (!m->rules || !sorted) {
        goto nomem;
    }
    for (size_t i = 0; i < n; i++) {
        m->n = i + 1;
        int rc = rule_compile(&m->rules[i], rows, i, err, errlen);
        if (rc == OPSC_ENOMEM) {
            goto nomem;
        }
        if (rc != 0) {
            goto error;
        }
        sorted[i] = &m->rules[i];
    }

    qsort(sorted, n, sizeof(*sorted), cmp_main);
    for (size_t k = 1; k < n; k++) {
        const opsc_oid_rule_t *a = sorted[k - 1], *b = sorted[k];
        if (pattern_cmp(&a->pattern, &b->pattern) == 0 &&
            vendor_cmp(a->row.vendor, b->row.vendor) == 0) {
            size_t i = b->index;
            const opsc_oid_mapping_t *src = &rows[i];
            ROW_ERR("same oid_pattern and vendor as rows[%zu]", a->index);
            goto error;
        }
    }
    if (index_build(&m->main, sorted, n, 0) != 0) {
        goto nomem;
    }

    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        if (m->rules[i].clear.len > 0) {
            sorted[nc++] = &m->rules[i];
        }
    }
    qsort(sorted, nc, sizeof(*sorted), cmp_clear);
    if (index_build(&m->clear, sorted, nc, 1) != 0) {
        goto nomem;
    }
    opsc_free(sorted);
    return m;

nomem:
    opsc_errbuf_printf(err, errlen, "oid_mappings: %s", opsc_strerror(OPSC_ENOMEM));
error:
    opsc_free(sorted);
    opsc_oidmap_destroy(m);
    return NULL;
}

void opsc_oidmap_destroy(opsc_oidmap_t *m) {
    if (!m) {
        return;
    }
    index_free(&m->main);
    index_free(&m->clear);
    for (size_t i = 0; i < m->n; i++) {
        rule_free(&m->rules[i]);
    }
    opsc_free(m->rules);
    opsc_free(m);
}

size_t opsc_oidmap_count(const opsc_oidmap_t *m) {
    return m ? m->n : 0;
}

const opsc_oid_rule_t *opsc_oidmap_rule(const opsc_oidmap_t *m, size_t i) {
    return m && i < m->n ? &m->rules[i] : NULL;
}

/* ---- matching ----------------------------------------------------------------------------- */

static const opsc_oid_rule_t *pick(const pindex_t *ix, const slot_t *s, const char *vendor) {
    const opsc_oid_rule_t *const *c = &ix->items[s->first];
    if (vendor && *vendor) {
        for (uint32_t i = 0; i < s->count && c[i]->row.vendor; i++) {
            if (strcasecmp(c[i]->row.vendor, vendor) == 0) {
                return c[i];
            }
        }
        /* A known vendor that none of the vendor rows is for: the generic row if any. */
        if (!c[s->count - 1]->row.vendor) {
            return c[s->count - 1];
        }
    }
    return c[0];
}

/*
 * Prefix hashes of oid, hs[l] = unfinalized hash of oid[0..l). Only computed
 * as far as the longest length we will probe.
 */
static void prefix_hashes(const uint32_t *oid, uint32_t len, uint64_t *hs) {
    hs[0] = H_SEED;
    for (uint32_t i = 0; i < len; i++) {
        hs[i + 1] = h_step(hs[i], oid[i]);
    }
}

const opsc_oid_rule_t *opsc_oidmap_match(const opsc_oidmap_t *m, const uint32_t *oid, uint32_t len,
                                         const char *device_vendor) {
    if (!m || !oid || len == 0 || len > OPSC_OID_MAX || m->main.nslots == 0) {
        return NULL;
    }
    const pindex_t *ix = &m->main;
    uint64_t hs[OPSC_OID_MAX + 1];
    prefix_hashes(oid, len, hs);
    if (ix->has_exact) {
        const slot_t *s = probe(ix, h_final(hs[len], len, 0), oid, len, 0);
        if (s) {
            return pick(ix, s, device_vendor);
        }
    }
    for (size_t w = 0; w < ix->nwild; w++) {
        uint32_t l = ix->wild_lens[w];
        if (l >= len) {
            continue;
        }
        const slot_t *s = probe(ix, h_final(hs[l], l, 1), oid, l, 1);
        if (s) {
            return pick(ix, s, device_vendor);
        }
    }
    return NULL;
}

static size_t add_types(const pindex_t *ix, const slot_t *s, const char **types, size_t n,
                        size_t max) {
    for (uint32_t i = 0; i < s->count && n < max; i++) {
        const char *t = ix->items[s->first + i]->row.alert_type;
        size_t k = 0;
        while (k < n && strcmp(types[k], t) != 0) {
            k++;
        }
        if (k == n) {
            types[n++] = t;
        }
    }
    return n;
}

size_t opsc_oidmap_clear_types(const opsc_oidmap_t *m, const uint32_t *oid, uint32_t len,
                               const char **types, size_t max) {
    if (!m || !oid || len == 0 || len > OPSC_OID_MAX || m->clear.nslots == 0 || max == 0) {
        return 0;
    }
    const pindex_t *ix = &m->clear;
    uint64_t hs[OPSC_OID_MAX + 1];
    prefix_hashes(oid, len, hs);
    size_t n = 0;
    if (ix->has_exact) {
        const slot_t *s = probe(ix, h_final(hs[len], len, 0), oid, len, 0);
        if (s) {
            n = add_types(ix, s, types, n, max);
        }
    }
    for (size_t w = 0; w < ix->nwild; w++) {
        uint32_t l = ix->wild_lens[w];
        if (l < len) {
            const slot_t *s = probe(ix, h_final(hs[l], l, 1), oid, l, 1);
            if (s) {
                n = add_types(ix, s, types, n, max);
            }
        }
    }
    return n;
}
