/*
 * SPSC record ring: single-thread behaviour against a reference model, then
 * two threads: a stress run that wraps and fills a small ring millions of
 * times, and the sleep/wake protocol with a condition variable standing in
 * for uv_async.
 *
 * Every loop is bounded in time: a thread that waits too long records an
 * error and stops the other one, so a bug fails the test instead of hanging
 * it. cmocka's assertions jump out of the calling thread, so the worker
 * threads only record what went wrong; the main thread asserts after join.
 *
 * Environment: OPSC_RING_STRESS_RECORDS (default 5,000,000; 1,000,000 in
 * sanitizer builds), OPSC_RING_WAKE_BATCHES (default 1,000,000).
 */
/* cmocka.h needs these first, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "opsc/error.h"
#include "opsc/ring.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SLOW_BUILD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SLOW_BUILD 1
#endif
#endif
#ifndef SLOW_BUILD
#define SLOW_BUILD 0
#endif

#define DEADLINE_S 60
/* wake test: how often the producer waits for the consumer to run dry */
#define PAUSE_EVERY (SLOW_BUILD ? 32 : 8)

/* ---- helpers -------------------------------------------------------------------------------- */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64: deterministic, so the consumer can replay the producer's lengths */
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static uint64_t env_count(const char *name, uint64_t dflt) {
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        return dflt;
    }
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    return (*end == '\0' && n > 0) ? (uint64_t)n : dflt;
}

/*
 * Waiting on a full or empty ring: spin a little, then yield, then sleep
 * 50 us, so that a waiting thread does not starve the other one of a CPU on
 * a busy machine (or under a sanitizer).
 */
static void backoff(unsigned *spins) {
    unsigned n = (*spins)++;
    if (n < 64) {
        return;
    }
    if (n < 256) {
        sched_yield();
        return;
    }
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
}

static uint64_t word_at(uint64_t seq, size_t i) {
    return (seq + 1) * 0x9E3779B97F4A7C15u ^ ((uint64_t)i * 0xBF58476D1CE4E5B9u);
}

/*
 * FNV-1a over 8-byte words, the last one zero-padded. `p` is 8-byte aligned
 * (ring payloads are), so whole words are read directly: memcpy per word is
 * a call that ThreadSanitizer intercepts, and the stress test would crawl.
 */
static uint64_t checksum(const unsigned char *p, size_t n) {
    const uint64_t *w = (const void *)p;
    uint64_t h = 0xcbf29ce484222325u;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        h = (h ^ w[i / 8]) * 0x100000001b3u;
    }
    if (i < n) {
        uint64_t last = 0;
        memcpy(&last, p + i, n - i);
        h = (h ^ last) * 0x100000001b3u;
    }
    return h;
}

/*
 * Record contents for sequence number `seq` (dst 8-byte aligned): the first
 * 8 bytes (or fewer) hold seq, then a pattern derived from seq and the
 * offset, and records of 16 bytes or more end with a checksum of everything
 * before it.
 */
static void fill_record(void *dst, size_t len, uint64_t seq) {
    unsigned char *p = dst;
    uint64_t *w = dst;
    size_t body = len >= 16 ? len - 8 : len;
    size_t i = 0;
    for (; i + 8 <= body; i += 8) {
        w[i / 8] = i == 0 ? seq : word_at(seq, i);
    }
    if (i < body) {
        uint64_t last = i == 0 ? seq : word_at(seq, i);
        memcpy(p + i, &last, body - i);
    }
    if (len >= 16) {
        uint64_t c = checksum(p, body);
        memcpy(p + body, &c, 8);
    }
}

/* 0 when intact; otherwise writes why into err */
static int check_record(const void *src, size_t len, uint64_t seq, unsigned char *scratch,
                        char *err, size_t errlen) {
    const unsigned char *p = src;
    uint64_t got = 0;
    uint64_t want = seq;
    size_t n = len < 8 ? len : 8;
    memcpy(&got, p, n);
    if (n < 8) {
        want &= ((uint64_t)1 << (8 * n)) - 1;
    }
    if (got != want) {
        snprintf(err, errlen, "record %llu: sequence field %llu", (unsigned long long)seq,
                 (unsigned long long)got);
        return -1;
    }
    if (len >= 16) {
        uint64_t c;
        memcpy(&c, p + len - 8, 8);
        if (c != checksum(p, len - 8)) {
            snprintf(err, errlen, "record %llu (len %zu): bad checksum", (unsigned long long)seq,
                     len);
            return -1;
        }
    }
    fill_record(scratch, len, seq);
    if (memcmp(scratch, p, len) != 0) {
        snprintf(err, errlen, "record %llu (len %zu): contents differ", (unsigned long long)seq,
                 len);
        return -1;
    }
    return 0;
}

static opsc_ring_t *make_ring(size_t cap) {
    opsc_ring_t *r = NULL;
    assert_int_equal(opsc_ring_create(cap, &r), 0);
    assert_non_null(r);
    return r;
}

/* Offset in the buffer where the next record's payload would go (reserve(0), abandoned). */
static size_t next_offset(opsc_ring_t *r, const unsigned char *base) {
    unsigned char *p = opsc_ring_reserve(r, 0);
    assert_non_null(p);
    return (size_t)(p - base);
}

/* Payload base of a fresh ring: the first record's payload is at offset 8. */
static unsigned char *ring_base(opsc_ring_t *r) {
    unsigned char *p = opsc_ring_reserve(r, 0);
    assert_non_null(p);
    return p - OPSC_RING_HEADER;
}

static size_t rec_size(size_t len) {
    return OPSC_RING_HEADER + ((len + 7) & ~(size_t)7);
}

/* ---- single thread -------------------------------------------------------------------------- */

static void test_create(void **state) {
    (void)state;
    opsc_ring_t *r = NULL;
    assert_int_equal(opsc_ring_create(4096, NULL), -EINVAL);
    assert_int_equal(opsc_ring_create(((size_t)1 << 30) + 1, &r), OPSC_ETOOBIG);
    assert_null(r);
    assert_int_equal(opsc_ring_create(SIZE_MAX, &r), OPSC_ETOOBIG);

    static const struct {
        size_t ask, cap;
    } sizes[] = {{0, 4096},    {1, 4096},      {4096, 4096},
                 {4097, 8192}, {65536, 65536}, {100000, 131072}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        r = make_ring(sizes[i].ask);
        assert_int_equal(opsc_ring_capacity(r), sizes[i].cap);
        assert_int_equal(opsc_ring_max_record(r), sizes[i].cap / 2 - 8);
        assert_int_equal(opsc_ring_used_bytes(r), 0);
        unsigned char *base = ring_base(r);
        assert_int_equal((uintptr_t)base % 64, 0); /* data is 64-byte aligned */
        opsc_ring_destroy(r);
    }
    opsc_ring_destroy(NULL);
}

static void test_empty(void **state) {
    (void)state;
    opsc_ring_t *r = make_ring(4096);
    size_t len = 12345;
    assert_null(opsc_ring_peek(r, &len));
    assert_int_equal(len, 12345);
    assert_null(opsc_ring_peek(r, NULL));
    opsc_ring_release(r); /* nothing peeked: no-op */
    opsc_ring_commit(r);  /* nothing reserved: no-op */
    opsc_ring_commit_len(r, 10);
    assert_int_equal(opsc_ring_used_bytes(r), 0);
    assert_null(opsc_ring_peek(r, &len));

    /* a zero-length record is a record */
    assert_non_null(opsc_ring_reserve(r, 0));
    opsc_ring_commit(r);
    assert_int_equal(opsc_ring_used_bytes(r), 8);
    assert_non_null(opsc_ring_peek(r, &len));
    assert_int_equal(len, 0);
    opsc_ring_release(r);
    assert_null(opsc_ring_peek(r, &len));
    assert_int_equal(opsc_ring_used_bytes(r), 0);
    opsc_ring_destroy(r);
}

static void test_full(void **state) {
    (void)state;
    opsc_ring_t *r = make_ring(4096);
    char err[256];
    _Alignas(8) unsigned char scratch[4096];
    uint64_t n = 0;
    void *p;
    /* 36 records of 100 bytes (112 each) = 4032 bytes, 64 left */
    while ((p = opsc_ring_reserve(r, 100)) != NULL) {
        assert_int_equal((uintptr_t)p % 8, 0);
        fill_record(p, 100, n++);
        opsc_ring_commit(r);
    }
    assert_int_equal(n, 36);
    assert_int_equal(opsc_ring_used_bytes(r), 4032);
    opsc_ring_commit(r); /* the failed reserve left nothing to publish */
    assert_int_equal(opsc_ring_used_bytes(r), 4032);
    assert_null(opsc_ring_reserve(r, 57)); /* 72 bytes: no */
    assert_null(opsc_ring_reserve(r, 2040));
    /* exactly the remaining 64 bytes: fills the ring to the last byte */
    p = opsc_ring_reserve(r, 56);
    assert_non_null(p);
    fill_record(p, 56, n++);
    opsc_ring_commit(r);
    assert_int_equal(opsc_ring_used_bytes(r), 4096);
    assert_null(opsc_ring_reserve(r, 0));
    opsc_ring_commit(r);
    assert_int_equal(opsc_ring_used_bytes(r), 4096);

    /* nothing was overwritten */
    const void *q;
    size_t len;
    for (uint64_t i = 0; i < n; i++) {
        q = opsc_ring_peek(r, &len);
        assert_non_null(q);
        assert_int_equal(len, i < 36 ? 100 : 56);
        if (check_record(q, len, i, scratch, err, sizeof err) != 0) {
            fail_msg("%s", err);
        }
        opsc_ring_release(r);
        if (i == 0) {
            assert_int_equal(opsc_ring_used_bytes(r), 4096 - 112);
        }
    }
    assert_null(opsc_ring_peek(r, &len));
    assert_int_equal(opsc_ring_used_bytes(r), 0);
    opsc_ring_destroy(r);
}

static void test_wrap_skip(void **state) {
    (void)state;
    opsc_ring_t *r = make_ring(4096);
    unsigned char *base = ring_base(r);
    _Alignas(8) unsigned char scratch[4096];
    char err[256];
    size_t len;
    const void *q;

    /* tail at 4032: 64 bytes left before the end */
    for (uint64_t i = 0; i < 36; i++) {
        void *p = opsc_ring_reserve(r, 100);
        assert_ptr_equal(p, base + i * 112 + 8);
        fill_record(p, 100, i);
        opsc_ring_commit(r);
    }
    assert_int_equal(next_offset(r, base), 4032 + 8);

    /* nothing released: a 100-byte record fits neither at the end nor at 0 */
    assert_null(opsc_ring_reserve(r, 100));
    /* release one (0..112 free): now it fits at 0 after a 64-byte skip, exactly */
    q = opsc_ring_peek(r, &len);
    assert_ptr_equal(q, base + 8);
    opsc_ring_release(r);
    void *p = opsc_ring_reserve(r, 100);
    assert_ptr_equal(p, base + 8);
    fill_record(p, 100, 36);
    opsc_ring_commit(r);
    assert_int_equal(opsc_ring_used_bytes(r), 4096);
    assert_null(opsc_ring_reserve(r, 0));

    /* the consumer steps over the marker to the wrapped record */
    for (uint64_t i = 1; i <= 36; i++) {
        q = opsc_ring_peek(r, &len);
        assert_non_null(q);
        assert_int_equal(len, 100);
        assert_ptr_equal(q, i < 36 ? base + i * 112 + 8 : base + 8);
        if (check_record(q, len, i, scratch, err, sizeof err) != 0) {
            fail_msg("%s", err);
        }
        opsc_ring_release(r);
    }
    assert_null(opsc_ring_peek(r, &len));
    assert_int_equal(opsc_ring_used_bytes(r), 0);

    /* a record that exactly fits the end does not wrap; the next starts at 0 */
    for (uint64_t i = 0; i < 35; i++) {
        assert_non_null(opsc_ring_reserve(r, 100));
        opsc_ring_commit(r);
        assert_non_null(opsc_ring_peek(r, NULL));
        opsc_ring_release(r);
    }
    assert_int_equal(next_offset(r, base), 112 + 35 * 112 + 8); /* 4032 */
    p = opsc_ring_reserve(r, 60);                               /* 72 > 64: wraps */
    assert_ptr_equal(p, base + 8);
    opsc_ring_reserve(r, 0); /* abandon it */
    p = opsc_ring_reserve(r, 56);
    assert_ptr_equal(p, base + 4032 + 8);
    opsc_ring_commit(r);
    assert_int_equal(next_offset(r, base), 8);
    p = opsc_ring_reserve(r, 1);
    assert_ptr_equal(p, base + 8);
    opsc_ring_commit(r);
    assert_int_equal(opsc_ring_used_bytes(r), 64 + 16);
    assert_ptr_equal(opsc_ring_peek(r, &len), base + 4032 + 8);
    assert_int_equal(len, 56);
    opsc_ring_release(r);
    assert_ptr_equal(opsc_ring_peek(r, &len), base + 8);
    assert_int_equal(len, 1);
    opsc_ring_release(r);
    assert_null(opsc_ring_peek(r, NULL));
    opsc_ring_destroy(r);
}

/* A FIFO of (seq, len, position) mirrors what the ring should hold. */
struct model_rec {
    uint64_t seq;
    size_t len;
    size_t pos; /* absolute position of the record's header (after any skip) */
};

static void test_random_sizes(void **state) {
    (void)state;
    enum { CAP = 8192 };
    const int steps = SLOW_BUILD ? 60000 : 300000;
    opsc_ring_t *r = make_ring(CAP);
    unsigned char *base = ring_base(r);
    size_t max = opsc_ring_max_record(r);
    assert_int_equal(max, CAP / 2 - 8);
    static struct model_rec fifo[CAP / 8];
    size_t fh = 0, ft = 0;       /* fifo head / tail (counts) */
    size_t mhead = 0, mtail = 0; /* the model's ring positions */
    static _Alignas(8) unsigned char scratch[CAP];
    char err[256];
    uint64_t seq = 0, consumed = 0, fulls = 0, wraps = 0;
    uint64_t rng = 42;

    for (int step = 0; step < steps; step++) {
        uint64_t x = rng_next(&rng);
        if (x % 2 == 0) {
            /* produce: lengths 0..max, many small, some at the very top */
            size_t len;
            switch ((x >> 1) % 4) {
            case 0:
                len = (size_t)((x >> 8) % (max + 1));
                break;
            case 1:
                len = max - (size_t)((x >> 8) % 16);
                break;
            default:
                len = (size_t)((x >> 8) % 200);
                break;
            }
            size_t need = rec_size(len);
            size_t room = CAP - mtail % CAP;
            size_t skip = need <= room ? 0 : room;
            int fits = mtail + skip + need - mhead <= CAP;
            unsigned char *p = opsc_ring_reserve(r, len);
            if (!fits) {
                assert_null(p);
                opsc_ring_commit(r); /* publishes nothing */
                fulls++;
            } else {
                assert_non_null(p);
                wraps += skip != 0;
                size_t pos = mtail + skip;
                assert_ptr_equal(p, base + pos % CAP + 8);
                fill_record(p, len, seq);
                opsc_ring_commit(r);
                fifo[ft++ % (CAP / 8)] = (struct model_rec){seq++, len, pos};
                mtail = pos + need;
            }
        } else {
            /* consume a batch of 1..8 */
            for (unsigned k = 1 + (unsigned)((x >> 1) % 8); k > 0; k--) {
                size_t len;
                const void *q = opsc_ring_peek(r, &len);
                if (fh == ft) {
                    assert_null(q);
                    break;
                }
                struct model_rec m = fifo[fh++ % (CAP / 8)];
                assert_non_null(q);
                assert_int_equal(len, m.len);
                assert_ptr_equal(q, base + m.pos % CAP + 8);
                if (check_record(q, len, m.seq, scratch, err, sizeof err) != 0) {
                    fail_msg("%s", err);
                }
                opsc_ring_release(r);
                mhead = m.pos + rec_size(m.len);
                consumed++;
            }
        }
        assert_int_equal(opsc_ring_used_bytes(r), mtail - mhead);
    }
    print_message("random sizes: %llu records, %llu consumed, %llu full, %llu wraps\n",
                  (unsigned long long)seq, (unsigned long long)consumed, (unsigned long long)fulls,
                  (unsigned long long)wraps);
    assert_true(fulls > 50);
    assert_true(wraps > 50);
    opsc_ring_destroy(r);
}

static void test_max_record(void **state) {
    (void)state;
    opsc_ring_t *r = make_ring(4096);
    unsigned char *base = ring_base(r);
    size_t max = opsc_ring_max_record(r);
    static _Alignas(8) unsigned char scratch[4096];
    char err[256];
    assert_int_equal(max, 2040);
    assert_null(opsc_ring_reserve(r, max + 1));
    assert_null(opsc_ring_reserve(r, SIZE_MAX));
    assert_null(opsc_ring_reserve(r, SIZE_MAX - 6));

    /* an empty ring accepts the largest record wherever its indexes stand */
    for (size_t o = 8; o <= 4096; o += 8) {
        while (next_offset(r, base) != o) {
            assert_non_null(opsc_ring_reserve(r, 0));
            opsc_ring_commit(r);
            assert_non_null(opsc_ring_peek(r, NULL));
            opsc_ring_release(r);
        }
        unsigned char *p = opsc_ring_reserve(r, max);
        assert_non_null(p);
        assert_ptr_equal(p, 4096 - (o - 8) >= 2048 ? base + o : base + 8);
        fill_record(p, max, o);
        opsc_ring_commit(r);
        size_t len;
        const void *q = opsc_ring_peek(r, &len);
        assert_ptr_equal(q, p);
        assert_int_equal(len, max);
        if (check_record(q, len, o, scratch, err, sizeof err) != 0) {
            fail_msg("%s", err);
        }
        opsc_ring_release(r);
        assert_int_equal(opsc_ring_used_bytes(r), 0);
    }
    /* two largest records fill the ring exactly */
    while (next_offset(r, base) != 8) {
        assert_non_null(opsc_ring_reserve(r, 0));
        opsc_ring_commit(r);
        assert_non_null(opsc_ring_peek(r, NULL));
        opsc_ring_release(r);
    }
    assert_non_null(opsc_ring_reserve(r, max));
    opsc_ring_commit(r);
    assert_non_null(opsc_ring_reserve(r, max));
    opsc_ring_commit(r);
    assert_int_equal(opsc_ring_used_bytes(r), 4096);
    assert_null(opsc_ring_reserve(r, 0));
    opsc_ring_destroy(r);
}

static void test_release_order(void **state) {
    (void)state;
    opsc_ring_t *r = make_ring(4096);
    size_t len;
    const char *q;

    /* an abandoned reservation is never seen */
    char *p = opsc_ring_reserve(r, 10);
    memcpy(p, "abandoned!", 10);
    p = opsc_ring_reserve(r, 1);
    *p = 'A';
    opsc_ring_commit(r);
    /* a failed reserve abandons the previous one too */
    p = opsc_ring_reserve(r, 1);
    *p = 'X';
    assert_null(opsc_ring_reserve(r, 4000));
    opsc_ring_commit(r);
    p = opsc_ring_reserve(r, 1);
    *p = 'B';
    opsc_ring_commit(r);
    opsc_ring_commit(r); /* twice: still one record */
    p = opsc_ring_reserve(r, 1);
    *p = 'C';
    opsc_ring_commit(r);
    assert_int_equal(opsc_ring_used_bytes(r), 3 * 16);

    q = opsc_ring_peek(r, &len);
    assert_int_equal(len, 1);
    assert_int_equal(*q, 'A');
    assert_ptr_equal(opsc_ring_peek(r, &len), q); /* peek again: the same record */
    opsc_ring_release(r);
    opsc_ring_release(r); /* nothing peeked since: no-op */
    q = opsc_ring_peek(r, &len);
    assert_int_equal(*q, 'B');
    opsc_ring_release(r);
    /* interleave: produce while the consumer holds a record */
    q = opsc_ring_peek(r, &len);
    assert_int_equal(*q, 'C');
    p = opsc_ring_reserve(r, 1);
    *p = 'D';
    opsc_ring_commit(r);
    assert_int_equal(*q, 'C');
    opsc_ring_release(r);
    q = opsc_ring_peek(r, &len);
    assert_int_equal(*q, 'D');
    opsc_ring_release(r);
    assert_null(opsc_ring_peek(r, &len));
    opsc_ring_destroy(r);
}

static void test_commit_len(void **state) {
    (void)state;
    opsc_ring_t *r = make_ring(4096);
    size_t len;
    char *p = opsc_ring_reserve(r, opsc_ring_max_record(r));
    memcpy(p, "hello", 5);
    opsc_ring_commit_len(r, 5);
    assert_int_equal(opsc_ring_used_bytes(r), 16);
    p = opsc_ring_reserve(r, 3);
    memcpy(p, "abc", 3);
    opsc_ring_commit_len(r, 100); /* larger than reserved: clamped */
    opsc_ring_commit_len(r, 1);   /* nothing reserved any more: no-op */
    p = opsc_ring_reserve(r, 8);
    opsc_ring_commit_len(r, 0);
    assert_int_equal(opsc_ring_used_bytes(r), 16 + 16 + 8);

    const char *q = opsc_ring_peek(r, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(q, "hello", 5);
    opsc_ring_release(r);
    q = opsc_ring_peek(r, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(q, "abc", 3);
    opsc_ring_release(r);
    assert_non_null(opsc_ring_peek(r, &len));
    assert_int_equal(len, 0);
    opsc_ring_release(r);
    assert_null(opsc_ring_peek(r, &len));
    opsc_ring_destroy(r);
}

static void test_wake_flags(void **state) {
    (void)state;
    opsc_ring_t *r = make_ring(4096);
    assert_int_equal(opsc_ring_should_wake(r), 0);
    opsc_ring_consumer_sleeping(r);
    assert_int_equal(opsc_ring_should_wake(r), 1);
    assert_int_equal(opsc_ring_should_wake(r), 0); /* one signal per idle period */
    opsc_ring_consumer_sleeping(r);
    opsc_ring_consumer_awake(r);
    assert_int_equal(opsc_ring_should_wake(r), 0);

    /* the protocol in one thread: idle, re-check empty, then a commit asks for a wake-up */
    opsc_ring_consumer_sleeping(r);
    assert_null(opsc_ring_peek(r, NULL));
    assert_non_null(opsc_ring_reserve(r, 4));
    opsc_ring_commit(r);
    assert_int_equal(opsc_ring_should_wake(r), 1);
    opsc_ring_consumer_awake(r);
    assert_non_null(opsc_ring_peek(r, NULL));
    opsc_ring_release(r);
    /* commit before the re-check: the re-check sees it */
    assert_non_null(opsc_ring_reserve(r, 4));
    opsc_ring_commit(r);
    assert_int_equal(opsc_ring_should_wake(r), 0);
    opsc_ring_consumer_sleeping(r);
    assert_non_null(opsc_ring_peek(r, NULL));
    opsc_ring_consumer_awake(r);
    opsc_ring_release(r);
    opsc_ring_destroy(r);
}

/* ---- two threads: stress -------------------------------------------------------------------- */

struct stress {
    opsc_ring_t *ring;
    uint64_t count;
    uint64_t seed;
    uint64_t deadline;
    atomic_int stop;
    /* producer's results */
    uint64_t full_retries;
    char perr[256];
    /* consumer's results */
    uint64_t consumed;
    uint64_t empty_polls;
    uint64_t max_len_seen;
    char cerr[256];
};

/* Mostly small datagrams, some larger, a few up to the largest record. */
static size_t stress_len(uint64_t *rng, size_t max) {
    uint64_t x = rng_next(rng);
    unsigned sel = (unsigned)(x & 1023);
    x >>= 10;
    if (sel == 0) {
        return 1 + (size_t)(x % max);
    }
    if (sel < 16) {
        return 1 + (size_t)(x % 2048);
    }
    return 1 + (size_t)(x % 128);
}

static void *stress_producer(void *arg) {
    struct stress *s = arg;
    uint64_t rng = s->seed;
    size_t max = opsc_ring_max_record(s->ring);
    for (uint64_t seq = 0; seq < s->count; seq++) {
        size_t len = stress_len(&rng, max);
        void *p;
        unsigned spins = 0;
        while ((p = opsc_ring_reserve(s->ring, len)) == NULL) {
            backoff(&spins);
            if ((++s->full_retries & 255) == 0) {
                if (atomic_load(&s->stop)) {
                    return NULL;
                }
                if (now_ns() > s->deadline) {
                    snprintf(s->perr, sizeof s->perr, "producer: timed out at record %llu",
                             (unsigned long long)seq);
                    atomic_store(&s->stop, 1);
                    return NULL;
                }
            }
        }
        if (((uintptr_t)p & 7) != 0) {
            snprintf(s->perr, sizeof s->perr, "producer: misaligned record %llu",
                     (unsigned long long)seq);
            atomic_store(&s->stop, 1);
            return NULL;
        }
        fill_record(p, len, seq);
        opsc_ring_commit(s->ring);
    }
    return NULL;
}

static void *stress_consumer(void *arg) {
    struct stress *s = arg;
    uint64_t rng = s->seed;
    size_t max = opsc_ring_max_record(s->ring);
    unsigned char *scratch = malloc(max + 8);
    if (scratch == NULL) {
        snprintf(s->cerr, sizeof s->cerr, "consumer: out of memory");
        atomic_store(&s->stop, 1);
        return NULL;
    }
    unsigned spins = 0;
    while (s->consumed < s->count) {
        size_t len;
        const void *q = opsc_ring_peek(s->ring, &len);
        if (q == NULL) {
            backoff(&spins);
            if ((++s->empty_polls & 255) == 0) {
                if (atomic_load(&s->stop)) {
                    break;
                }
                if (now_ns() > s->deadline) {
                    snprintf(s->cerr, sizeof s->cerr, "consumer: timed out at record %llu",
                             (unsigned long long)s->consumed);
                    atomic_store(&s->stop, 1);
                    break;
                }
            }
            continue;
        }
        spins = 0;
        /* strict order: the record must be the next one the producer made */
        size_t want = stress_len(&rng, max);
        if (len != want) {
            snprintf(s->cerr, sizeof s->cerr, "record %llu: length %zu, expected %zu",
                     (unsigned long long)s->consumed, len, want);
            atomic_store(&s->stop, 1);
            break;
        }
        if (check_record(q, len, s->consumed, scratch, s->cerr, sizeof s->cerr) != 0) {
            atomic_store(&s->stop, 1);
            break;
        }
        if (len > s->max_len_seen) {
            s->max_len_seen = len;
        }
        opsc_ring_release(s->ring);
        s->consumed++;
    }
    /* no duplicates or extras behind the last record */
    if (s->cerr[0] == '\0' && s->consumed == s->count && opsc_ring_peek(s->ring, NULL) != NULL) {
        snprintf(s->cerr, sizeof s->cerr, "consumer: a record after the last one");
    }
    free(scratch);
    return NULL;
}

static void test_stress_spsc(void **state) {
    (void)state;
    static struct stress s;
    memset(&s, 0, sizeof s);
    s.count = env_count("OPSC_RING_STRESS_RECORDS", SLOW_BUILD ? 1000000 : 5000000);
    s.seed = 0x0c0ffee;
    s.ring = make_ring(64 * 1024);
    atomic_init(&s.stop, 0);
    uint64_t t0 = now_ns();
    s.deadline = t0 + (uint64_t)DEADLINE_S * 1000000000u;

    pthread_t prod, cons;
    assert_int_equal(pthread_create(&cons, NULL, stress_consumer, &s), 0);
    assert_int_equal(pthread_create(&prod, NULL, stress_producer, &s), 0);
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);
    double secs = (double)(now_ns() - t0) / 1e9;

    print_message("stress: %llu records in %.2f s (%.0f/s), producer full-retries %llu, "
                  "consumer empty polls %llu, largest %llu bytes\n",
                  (unsigned long long)s.consumed, secs, (double)s.consumed / secs,
                  (unsigned long long)s.full_retries, (unsigned long long)s.empty_polls,
                  (unsigned long long)s.max_len_seen);
    if (s.perr[0] != '\0') {
        fail_msg("%s", s.perr);
    }
    if (s.cerr[0] != '\0') {
        fail_msg("%s", s.cerr);
    }
    assert_int_equal(s.consumed, s.count);
    assert_int_equal(opsc_ring_used_bytes(s.ring), 0);
    /* the ring was small enough to fill: the full path was exercised */
    assert_true(s.full_retries > 0);
    opsc_ring_destroy(s.ring);
}

/* ---- two threads: sleep / wake protocol ----------------------------------------------------- */

struct wake {
    opsc_ring_t *ring;
    uint64_t batches;
    uint64_t total; /* records over all batches */
    uint64_t seed;
    uint64_t deadline;
    atomic_int stop;
    /* the stand-in for uv_async: a latched flag under a mutex */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int signaled;
    /* records whose batch has been through should_wake (and signal) */
    atomic_uint_fast64_t decided;
    /* producer's results */
    uint64_t signals;
    uint64_t full_retries;
    char perr[256];
    /* consumer's results */
    uint64_t consumed;
    uint64_t sleeps;        /* waits entered */
    uint64_t recheck_found; /* the re-check after sleeping found work */
    uint64_t timeouts;      /* waits that timed out with the producer still deciding */
    uint64_t lost;          /* timed out with a record whose wake-up was decided: a bug */
    char cerr[256];
};

static void *wake_producer(void *arg) {
    struct wake *w = arg;
    uint64_t rng = w->seed;
    uint64_t pause_rng = w->seed ^ 0x5555;
    uint64_t seq = 0;
    for (uint64_t b = 0; b < w->batches; b++) {
        unsigned k = 1 + (unsigned)(rng_next(&rng) % 8);
        for (unsigned i = 0; i < k; i++, seq++) {
            void *p;
            unsigned spins = 0;
            while ((p = opsc_ring_reserve(w->ring, 16)) == NULL) {
                backoff(&spins);
                if ((++w->full_retries & 255) == 0 &&
                    (atomic_load(&w->stop) || now_ns() > w->deadline)) {
                    snprintf(w->perr, sizeof w->perr, "producer: stuck on a full ring at %llu",
                             (unsigned long long)seq);
                    atomic_store(&w->stop, 1);
                    return NULL;
                }
            }
            uint64_t v[2] = {seq, ~seq};
            memcpy(p, v, sizeof v);
            opsc_ring_commit(w->ring);
        }
        if (opsc_ring_should_wake(w->ring)) {
            pthread_mutex_lock(&w->mu);
            w->signaled = 1;
            pthread_cond_signal(&w->cv);
            pthread_mutex_unlock(&w->mu);
            w->signals++;
        }
        atomic_store_explicit(&w->decided, seq, memory_order_release);
        /*
         * One batch in PAUSE_EVERY: let the consumer run dry, then wait a
         * random moment before the next commit, so that commits land before,
         * inside and after the consumer's sleeping / re-check / wait window.
         * (The consumer also sleeps whenever the producer is descheduled.)
         */
        uint64_t x = rng_next(&pause_rng);
        if (x % PAUSE_EVERY == 0) {
            /* spin (a sleep here would only ever find the consumer asleep) */
            for (unsigned spins = 1; opsc_ring_used_bytes(w->ring) != 0; spins++) {
                if ((spins & 1023) == 0) {
                    if (atomic_load(&w->stop) || now_ns() > w->deadline) {
                        return NULL;
                    }
                    sched_yield();
                }
            }
            for (volatile unsigned d = (unsigned)((x >> 8) % 2048); d > 0; d--) {
            }
        }
    }
    return NULL;
}

static int wake_drain(struct wake *w) {
    const void *q;
    size_t len;
    while ((q = opsc_ring_peek(w->ring, &len)) != NULL) {
        uint64_t v[2];
        if (len != 16) {
            snprintf(w->cerr, sizeof w->cerr, "record %llu: length %zu",
                     (unsigned long long)w->consumed, len);
            return -1;
        }
        memcpy(v, q, sizeof v);
        if (v[0] != w->consumed || v[1] != ~w->consumed) {
            snprintf(w->cerr, sizeof w->cerr, "record %llu: got %llu",
                     (unsigned long long)w->consumed, (unsigned long long)v[0]);
            return -1;
        }
        opsc_ring_release(w->ring);
        w->consumed++;
    }
    return 0;
}

static void *wake_consumer(void *arg) {
    struct wake *w = arg;
    for (;;) {
        if (wake_drain(w) != 0) {
            break;
        }
        if (w->consumed == w->total) {
            break;
        }
        if (atomic_load(&w->stop) || now_ns() > w->deadline) {
            snprintf(w->cerr, sizeof w->cerr, "consumer: timed out at record %llu",
                     (unsigned long long)w->consumed);
            break;
        }
        opsc_ring_consumer_sleeping(w->ring);
        if (opsc_ring_peek(w->ring, NULL) != NULL) {
            opsc_ring_consumer_awake(w->ring);
            w->recheck_found++;
            continue;
        }
        w->sleeps++;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 250 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        int got;
        pthread_mutex_lock(&w->mu);
        while (!w->signaled) {
            if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT) {
                break;
            }
        }
        got = w->signaled;
        w->signaled = 0;
        pthread_mutex_unlock(&w->mu);
        opsc_ring_consumer_awake(w->ring);
        if (!got) {
            /*
             * No signal for 250 ms. A record waiting now whose batch the
             * producer has already been through should_wake with is a lost
             * wake-up: it was committed, nobody was told, and we slept.
             */
            uint64_t decided = atomic_load_explicit(&w->decided, memory_order_acquire);
            const void *q = opsc_ring_peek(w->ring, NULL);
            if (q != NULL && w->consumed < decided) {
                w->lost++;
                snprintf(w->cerr, sizeof w->cerr,
                         "lost wake-up: record %llu committed and decided, no signal",
                         (unsigned long long)w->consumed);
                break;
            } else {
                w->timeouts++;
            }
        }
    }
    atomic_store(&w->stop, 1);
    return NULL;
}

static void test_wake_protocol(void **state) {
    (void)state;
    static struct wake w;
    memset(&w, 0, sizeof w);
    w.batches = env_count("OPSC_RING_WAKE_BATCHES", 1000000);
    w.seed = 7;
    uint64_t rng = w.seed;
    for (uint64_t b = 0; b < w.batches; b++) {
        w.total += 1 + rng_next(&rng) % 8;
    }
    w.ring = make_ring(4096);
    atomic_init(&w.stop, 0);
    atomic_init(&w.decided, 0);
    pthread_condattr_t ca;
    assert_int_equal(pthread_condattr_init(&ca), 0);
    assert_int_equal(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC), 0);
    assert_int_equal(pthread_cond_init(&w.cv, &ca), 0);
    pthread_condattr_destroy(&ca);
    assert_int_equal(pthread_mutex_init(&w.mu, NULL), 0);
    uint64_t t0 = now_ns();
    w.deadline = t0 + (uint64_t)DEADLINE_S * 1000000000u;

    pthread_t prod, cons;
    assert_int_equal(pthread_create(&cons, NULL, wake_consumer, &w), 0);
    assert_int_equal(pthread_create(&prod, NULL, wake_producer, &w), 0);
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);
    double secs = (double)(now_ns() - t0) / 1e9;

    print_message("wake: %llu batches, %llu records in %.2f s; consumer slept %llu times, "
                  "re-check found work %llu times, %llu signals, %llu idle timeouts, %llu lost\n",
                  (unsigned long long)w.batches, (unsigned long long)w.consumed, secs,
                  (unsigned long long)w.sleeps, (unsigned long long)w.recheck_found,
                  (unsigned long long)w.signals, (unsigned long long)w.timeouts,
                  (unsigned long long)w.lost);
    if (w.perr[0] != '\0') {
        fail_msg("%s", w.perr);
    }
    if (w.cerr[0] != '\0') {
        fail_msg("%s", w.cerr);
    }
    assert_int_equal(w.lost, 0);
    assert_int_equal(w.consumed, w.total);
    assert_null(opsc_ring_peek(w.ring, NULL));
    assert_true(w.sleeps > 0);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    opsc_ring_destroy(w.ring);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_full),          cmocka_unit_test(test_wrap_skip),
        cmocka_unit_test(test_random_sizes),  cmocka_unit_test(test_max_record),
        cmocka_unit_test(test_release_order), cmocka_unit_test(test_commit_len),
        cmocka_unit_test(test_wake_flags),    cmocka_unit_test(test_stress_spsc),
        cmocka_unit_test(test_wake_protocol),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
