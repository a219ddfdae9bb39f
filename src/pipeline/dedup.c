/*
 * Active-alert index: open addressing with linear probing on the
 * fingerprint (SHA-256 hex, so its first 16 hex digits are already a good
 * hash), backward-shift deletion (no tombstones, so a long-running storm of
 * open/resolve cycles never degrades the table), and a chained secondary
 * table on (device, discriminator) for clear matching.
 */
#include <stdlib.h>
#include <string.h>

#include "opsc/buf.h"
#include "opsc/dedup.h"

struct opsc_dedup_s {
    opsc_dedup_entry_t **slots; /* capacity = power of two */
    size_t cap;
    size_t count;
    opsc_dedup_entry_t **dev; /* chained, dev_cap buckets */
    size_t dev_cap;
    opsc_dedup_entry_t *dirty;
    size_t strings_bytes;
};

static uint64_t fp_hash(const char *fp) {
    uint64_t h = 0;
    for (int i = 0; i < 16 && fp[i]; i++) {
        char c = fp[i];
        unsigned v = (c >= '0' && c <= '9') ? (unsigned)(c - '0')
                     : (c >= 'a' && c <= 'f') ? (unsigned)(c - 'a' + 10)
                     : (unsigned)(unsigned char)c;
        h = (h << 4) ^ v ^ (h >> 60);
    }
    /* Fingerprints are uniform already; mix anyway for hand-made test keys. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static uint64_t dev_hash(const char *device, const char *disc) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = device; *p; p++) {
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    }
    h = (h ^ 0xff) * 1099511628211ull;
    for (const char *p = disc; *p; p++) {
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    }
    return h;
}

static size_t pow2_at_least(size_t n) {
    size_t c = 64;
    while (c < n) {
        c <<= 1;
    }
    return c;
}

opsc_dedup_t *opsc_dedup_create(size_t expected) {
    opsc_dedup_t *d = opsc_calloc(1, sizeof(*d));
    if (!d) {
        return NULL;
    }
    d->cap = pow2_at_least(expected * 2);
    d->dev_cap = d->cap / 2;
    d->slots = opsc_calloc(d->cap, sizeof(*d->slots));
    d->dev = opsc_calloc(d->dev_cap, sizeof(*d->dev));
    if (!d->slots || !d->dev) {
        opsc_free(d->slots);
        opsc_free(d->dev);
        opsc_free(d);
        return NULL;
    }
    return d;
}

static void entry_free(opsc_dedup_t *d, opsc_dedup_entry_t *e) {
    d->strings_bytes -= strlen(e->alert_type) + strlen(e->device) + strlen(e->discriminator) + 3;
    opsc_free(e); /* its strings live in the same block */
}

void opsc_dedup_destroy(opsc_dedup_t *d) {
    if (!d) {
        return;
    }
    for (size_t i = 0; i < d->cap; i++) {
        if (d->slots[i]) {
            entry_free(d, d->slots[i]);
        }
    }
    opsc_free(d->slots);
    opsc_free(d->dev);
    opsc_free(d);
}

opsc_dedup_entry_t *opsc_dedup_find(opsc_dedup_t *d, const char *fingerprint) {
    size_t mask = d->cap - 1;
    for (size_t i = fp_hash(fingerprint) & mask;; i = (i + 1) & mask) {
        opsc_dedup_entry_t *e = d->slots[i];
        if (!e) {
            return NULL;
        }
        if (strcmp(e->fingerprint, fingerprint) == 0) {
            return e;
        }
    }
}

static void place(opsc_dedup_t *d, opsc_dedup_entry_t *e) {
    size_t mask = d->cap - 1;
    size_t i = fp_hash(e->fingerprint) & mask;
    while (d->slots[i]) {
        i = (i + 1) & mask;
    }
    d->slots[i] = e;
    e->slot = i;
}

static void dev_link(opsc_dedup_t *d, opsc_dedup_entry_t *e) {
    size_t b = dev_hash(e->device, e->discriminator) & (d->dev_cap - 1);
    e->dev_next = d->dev[b];
    d->dev[b] = e;
}

static void dev_unlink(opsc_dedup_t *d, opsc_dedup_entry_t *e) {
    size_t b = dev_hash(e->device, e->discriminator) & (d->dev_cap - 1);
    for (opsc_dedup_entry_t **pp = &d->dev[b]; *pp; pp = &(*pp)->dev_next) {
        if (*pp == e) {
            *pp = e->dev_next;
            return;
        }
    }
}

static int grow(opsc_dedup_t *d) {
    size_t ncap = d->cap * 2;
    opsc_dedup_entry_t **nslots = opsc_calloc(ncap, sizeof(*nslots));
    opsc_dedup_entry_t **ndev = opsc_calloc(ncap / 2, sizeof(*ndev));
    if (!nslots || !ndev) {
        opsc_free(nslots);
        opsc_free(ndev);
        return -1;
    }
    opsc_dedup_entry_t **old = d->slots;
    size_t ocap = d->cap;
    opsc_free(d->dev);
    d->slots = nslots;
    d->cap = ncap;
    d->dev = ndev;
    d->dev_cap = ncap / 2;
    for (size_t i = 0; i < ocap; i++) {
        if (old[i]) {
            place(d, old[i]);
            dev_link(d, old[i]);
        }
    }
    opsc_free(old);
    return 0;
}

opsc_dedup_entry_t *opsc_dedup_add(opsc_dedup_t *d, const char *fingerprint, const opsc_uuid_t *id,
                                   opsc_status_t status, uint32_t count, int64_t last_us,
                                   const char *alert_type, const char *device,
                                   const char *discriminator) {
    if (strlen(fingerprint) >= sizeof(((opsc_dedup_entry_t *)0)->fingerprint) ||
        opsc_dedup_find(d, fingerprint)) {
        return NULL;
    }
    if ((d->count + 1) * 2 > d->cap && grow(d) != 0) {
        return NULL;
    }
    /*
     * One block per alert, its three strings behind the entry: a million
     * active alerts cost a million allocations, not four million (malloc's
     * per-block overhead was a third of the index's resident size).
     */
    const char *strs[3] = {alert_type ? alert_type : "", device ? device : "",
                           discriminator ? discriminator : ""};
    size_t lens[3], total = 0;
    for (int k = 0; k < 3; k++) {
        lens[k] = strlen(strs[k]) + 1;
        total += lens[k];
    }
    opsc_dedup_entry_t *e = opsc_calloc(1, sizeof(*e) + total);
    if (!e) {
        return NULL;
    }
    char *tail = (char *)(e + 1);
    char **dst[3] = {&e->alert_type, &e->device, &e->discriminator};
    for (int k = 0; k < 3; k++) {
        memcpy(tail, strs[k], lens[k]);
        *dst[k] = tail;
        tail += lens[k];
    }
    d->strings_bytes += total;
    memcpy(e->fingerprint, fingerprint, strlen(fingerprint) + 1);
    e->id = *id;
    e->status = status;
    e->occurrence_count = count;
    e->last_occurrence_at_us = last_us;
    place(d, e);
    dev_link(d, e);
    d->count++;
    return e;
}

void opsc_dedup_remove(opsc_dedup_t *d, opsc_dedup_entry_t *e) {
    size_t mask = d->cap - 1;
    size_t i = e->slot;
    dev_unlink(d, e);
    if (e->dirty) {
        for (opsc_dedup_entry_t **pp = &d->dirty; *pp; pp = &(*pp)->dirty_next) {
            if (*pp == e) {
                *pp = e->dirty_next;
                break;
            }
        }
    }
    d->slots[i] = NULL;
    /* Backward shift: pull later members of the probe run into the hole. */
    for (size_t j = (i + 1) & mask; d->slots[j]; j = (j + 1) & mask) {
        size_t home = fp_hash(d->slots[j]->fingerprint) & mask;
        /* Move j to i when home is not cyclically within (i, j]. */
        int move = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
        if (move) {
            d->slots[i] = d->slots[j];
            d->slots[i]->slot = i;
            d->slots[j] = NULL;
            i = j;
        }
    }
    d->count--;
    entry_free(d, e);
}

void opsc_dedup_touch(opsc_dedup_t *d, opsc_dedup_entry_t *e, int64_t now_us) {
    e->occurrence_count++;
    if (now_us > e->last_occurrence_at_us) {
        e->last_occurrence_at_us = now_us;
    }
    if (!e->dirty) {
        e->dirty = 1;
        e->dirty_next = d->dirty;
        d->dirty = e;
    }
}

size_t opsc_dedup_each_on_device(opsc_dedup_t *d, const char *device, const char *discriminator,
                                 void (*cb)(opsc_dedup_entry_t *e, void *arg), void *arg) {
    size_t b = dev_hash(device, discriminator) & (d->dev_cap - 1);
    size_t n = 0;
    opsc_dedup_entry_t *e = d->dev[b];
    while (e) {
        opsc_dedup_entry_t *next = e->dev_next; /* cb may remove e */
        if (strcmp(e->device, device) == 0 && strcmp(e->discriminator, discriminator) == 0) {
            n++;
            cb(e, arg);
        }
        e = next;
    }
    return n;
}

void opsc_dedup_each(opsc_dedup_t *d, void (*cb)(opsc_dedup_entry_t *e, void *arg), void *arg) {
    for (size_t i = 0; i < d->cap; i++) {
        if (d->slots[i]) {
            cb(d->slots[i], arg);
        }
    }
}

size_t opsc_dedup_scan(opsc_dedup_t *d, size_t *cursor, size_t nslots,
                       void (*cb)(opsc_dedup_entry_t *e, void *arg), void *arg) {
    size_t i = *cursor < d->cap ? *cursor : 0; /* the table may have grown or been rebuilt */
    if (nslots > d->cap) {
        nslots = d->cap;
    }
    for (size_t k = 0; k < nslots; k++, i = (i + 1) & (d->cap - 1)) {
        if (d->slots[i]) {
            cb(d->slots[i], arg);
        }
    }
    *cursor = i;
    return d->cap;
}

opsc_dedup_entry_t *opsc_dedup_take_dirty(opsc_dedup_t *d) {
    opsc_dedup_entry_t *list = d->dirty;
    d->dirty = NULL;
    for (opsc_dedup_entry_t *e = list; e; e = e->dirty_next) {
        e->dirty = 0;
    }
    return list;
}

size_t opsc_dedup_count(const opsc_dedup_t *d) {
    return d->count;
}

size_t opsc_dedup_memory(const opsc_dedup_t *d) {
    return sizeof(*d) + d->cap * sizeof(*d->slots) + d->dev_cap * sizeof(*d->dev) +
           d->count * sizeof(opsc_dedup_entry_t) + d->strings_bytes;
}
