/*
 * Lock-free single-producer / single-consumer ring of variable-length records.
 *
 * Indexes. `head` (consumer) and `tail` (producer) are byte positions that
 * only grow; the offset in the buffer is `pos & mask`. Unsigned wrap-around
 * keeps `tail - head` right even when size_t overflows, because the capacity
 * is a power of two far below SIZE_MAX. The ring is empty when head == tail
 * and holds tail - head bytes, at most the capacity: it can fill completely.
 *
 * Records. [len: 8 bytes][payload, padded to 8]. A header whose length is
 * OPSC__RING_SKIP is a skip marker: the rest of the buffer up to its end is
 * padding and the next record starts at offset 0. Everything is a multiple of
 * 8, so the space before the end of the buffer is either 0 or room for at
 * least a marker. The marker and the record after it are published by the
 * same commit, so a consumer never sees a marker without a record behind it.
 * A record may take at most half the buffer: an empty ring at any offset then
 * has room for it on one side or the other.
 *
 * Memory order. The producer writes a record, then stores `tail` with
 * release; the consumer loads `tail` with acquire, then reads the record.
 * Symmetrically for `head` when the consumer releases space. Each side keeps
 * a private copy of the other's index and re-reads the shared one only when
 * its copy says "full" (producer) or "empty" (consumer), so in a steady flow
 * the two cache lines move between cores once per batch, not once per record.
 *
 * Layout. Read-only fields, the producer's line, the consumer's line and the
 * idle flag each take their own 64-byte line; the data follows, 64-byte
 * aligned, in the same allocation.
 *
 * Wake-up. The consumer stores `sleeping` then loads `tail`; the producer
 * stores `tail` then loads `sleeping`. That store-then-load on both sides
 * needs sequential consistency: the consumer's store and load are seq_cst,
 * and the producer, after its release store of `tail`, does a seq_cst
 * read-modify-write of `tail` (adding 0) before its seq_cst load of
 * `sleeping`. All four are then in the single total order, so either the
 * consumer's load sees the new tail or the producer's load sees the flag.
 * (A pair of seq_cst fences would do the same, but ThreadSanitizer does not
 * model fences and GCC's -Wtsan rejects them.)
 */
#include "opsc/ring.h"

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "opsc/buf.h"
#include "opsc/error.h"

#define OPSC__RING_LINE 64
#define OPSC__RING_MAX_CAPACITY ((size_t)1 << 30)
#define OPSC__RING_SKIP UINT64_MAX

struct opsc_ring_s {
    /* Read-only after create: shared by both threads without traffic. */
    unsigned char *data;
    size_t cap;
    size_t mask;
    size_t max_record;
    void *alloc; /* what opsc_free() gets back */

    /* Producer's line: `tail` is read by the consumer, the rest is private. */
    alignas(OPSC__RING_LINE) atomic_size_t tail;
    size_t head_cache; /* the producer's last view of head */
    size_t rec_pos;    /* position of the reserved record's header */
    size_t pending;    /* end of the reserved record; == tail when none */

    /* Consumer's line: `head` is read by the producer, the rest is private. */
    alignas(OPSC__RING_LINE) atomic_size_t head;
    size_t tail_cache; /* the consumer's last view of tail */
    size_t next;       /* end of the peeked record; == head when none */

    /* Set by the consumer before it waits, cleared by either side. */
    alignas(OPSC__RING_LINE) atomic_int sleeping;
};

static size_t opsc__ring_pad(size_t len) {
    return (len + 7u) & ~(size_t)7u;
}

static void opsc__ring_put_header(opsc_ring_t *r, size_t pos, uint64_t v) {
    memcpy(r->data + (pos & r->mask), &v, sizeof v);
}

static uint64_t opsc__ring_get_header(const opsc_ring_t *r, size_t pos) {
    uint64_t v;
    memcpy(&v, r->data + (pos & r->mask), sizeof v);
    return v;
}

int opsc_ring_create(size_t capacity_bytes, opsc_ring_t **out) {
    if (out == NULL) {
        return -EINVAL;
    }
    *out = NULL;
    if (capacity_bytes > OPSC__RING_MAX_CAPACITY) {
        return OPSC_ETOOBIG;
    }
    size_t cap = OPSC_RING_MIN_CAPACITY;
    while (cap < capacity_bytes) {
        cap <<= 1;
    }

    /* sizeof is a multiple of the struct's 64-byte alignment, so the data
     * that follows the struct is 64-byte aligned too. */
    void *mem = opsc_malloc(sizeof(opsc_ring_t) + cap + OPSC__RING_LINE - 1);
    if (mem == NULL) {
        return OPSC_ENOMEM;
    }
    uintptr_t at = ((uintptr_t)mem + OPSC__RING_LINE - 1) & ~(uintptr_t)(OPSC__RING_LINE - 1);
    opsc_ring_t *r = (opsc_ring_t *)(void *)((unsigned char *)mem + (at - (uintptr_t)mem));
    memset(r, 0, sizeof *r);
    r->alloc = mem;
    r->data = (unsigned char *)r + sizeof *r;
    r->cap = cap;
    r->mask = cap - 1;
    r->max_record = cap / 2 - OPSC_RING_HEADER;
    atomic_init(&r->tail, 0);
    atomic_init(&r->head, 0);
    atomic_init(&r->sleeping, 0);
    *out = r;
    return 0;
}

void opsc_ring_destroy(opsc_ring_t *r) {
    if (r != NULL) {
        opsc_free(r->alloc);
    }
}

size_t opsc_ring_capacity(const opsc_ring_t *r) {
    return r->cap;
}

size_t opsc_ring_max_record(const opsc_ring_t *r) {
    return r->max_record;
}

uint64_t opsc_ring_used_bytes(const opsc_ring_t *r) {
    /* head first: it never passes the tail read after it, so no underflow;
     * the other thread may have moved on in between, hence the clamp. */
    size_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    size_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    size_t used = t - h;
    return used > r->cap ? r->cap : used;
}

/* ---- producer ------------------------------------------------------------------------------ */

void *opsc_ring_reserve(opsc_ring_t *r, size_t len) {
    size_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed); /* ours */
    r->pending = pos; /* abandon an uncommitted reservation */
    if (len > r->max_record) {
        return NULL;
    }
    size_t need = OPSC_RING_HEADER + opsc__ring_pad(len);
    size_t room = r->cap - (pos & r->mask); /* to the end */
    size_t skip = need <= room ? 0 : room;

    if (pos + skip + need - r->head_cache > r->cap) {
        r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
        if (pos + skip + need - r->head_cache > r->cap) {
            return NULL;
        }
    }
    if (skip != 0) {
        opsc__ring_put_header(r, pos, OPSC__RING_SKIP);
        pos += skip;
    }
    opsc__ring_put_header(r, pos, (uint64_t)len);
    r->rec_pos = pos;
    r->pending = pos + need;
    return r->data + (pos & r->mask) + OPSC_RING_HEADER;
}

void opsc_ring_commit(opsc_ring_t *r) {
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (r->pending != tail) {
        atomic_store_explicit(&r->tail, r->pending, memory_order_release);
    }
}

void opsc_ring_commit_len(opsc_ring_t *r, size_t len) {
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (r->pending == tail) {
        return;
    }
    size_t reserved = (size_t)opsc__ring_get_header(r, r->rec_pos);
    if (len < reserved) {
        opsc__ring_put_header(r, r->rec_pos, (uint64_t)len);
        r->pending = r->rec_pos + OPSC_RING_HEADER + opsc__ring_pad(len);
    }
    atomic_store_explicit(&r->tail, r->pending, memory_order_release);
}

int opsc_ring_should_wake(opsc_ring_t *r) {
    /* The read-modify-write orders the tail stores before the load below
     * (see the top of the file); it does not change the value. */
    atomic_fetch_add_explicit(&r->tail, 0, memory_order_seq_cst);
    if (atomic_load_explicit(&r->sleeping, memory_order_seq_cst) == 0) {
        return 0;
    }
    return atomic_exchange_explicit(&r->sleeping, 0, memory_order_seq_cst) != 0;
}

/* ---- consumer ------------------------------------------------------------------------------ */

const void *opsc_ring_peek(opsc_ring_t *r, size_t *len) {
    size_t pos = atomic_load_explicit(&r->head, memory_order_relaxed); /* ours */
    for (;;) {
        if (pos == r->tail_cache) {
            r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
            if (pos == r->tail_cache) {
                r->next = pos;
                return NULL;
            }
        }
        uint64_t h = opsc__ring_get_header(r, pos);
        if (h == OPSC__RING_SKIP) {
            pos += r->cap - (pos & r->mask);
            continue;
        }
        size_t n = (size_t)h;
        r->next = pos + OPSC_RING_HEADER + opsc__ring_pad(n);
        if (len != NULL) {
            *len = n;
        }
        return r->data + (pos & r->mask) + OPSC_RING_HEADER;
    }
}

void opsc_ring_release(opsc_ring_t *r) {
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (r->next != head) {
        atomic_store_explicit(&r->head, r->next, memory_order_release);
    }
}

void opsc_ring_consumer_sleeping(opsc_ring_t *r) {
    atomic_store_explicit(&r->sleeping, 1, memory_order_seq_cst);
    /* The re-check peek must see every record committed before the
     * producer's should_wake read the flag as 0: load tail in the total order. */
    r->tail_cache = atomic_load_explicit(&r->tail, memory_order_seq_cst);
}

void opsc_ring_consumer_awake(opsc_ring_t *r) {
    atomic_store_explicit(&r->sleeping, 0, memory_order_relaxed);
}
