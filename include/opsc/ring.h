#ifndef OPSC_RING_H
#define OPSC_RING_H

#include <stddef.h>
#include <stdint.h>

/*
 * A bounded, lock-free, single-producer / single-consumer ring of
 * variable-length records (C11 atomics, acquire/release). It carries work
 * between the loop thread and the pipeline thread: raw datagrams in the
 * ingest ring, change pointers back in the change ring.
 *
 * Threads. At any moment exactly one thread is the producer (reserve,
 * commit, commit_len, should_wake) and exactly one is the consumer (peek,
 * release, consumer_sleeping, consumer_awake). They may be the same thread.
 * A role may move to another thread only with outside synchronisation
 * (thread start or join, a mutex). opsc_ring_used_bytes, _capacity and
 * _max_record may be called from any thread. Create and destroy are not
 * concurrent with anything.
 *
 * Records. A record is a header (8 bytes, its length) followed by the
 * payload, padded to 8 bytes; the payload starts 8-byte aligned. A record
 * never wraps: when the space left before the end of the buffer is too short,
 * the producer writes a skip marker there and the record starts at offset 0.
 * A full ring never blocks: reserve returns NULL and the caller decides
 * (drop and count, answer 503, retry later).
 *
 * Wake-up protocol (the cross-thread signal, uv_async_send or similar).
 * The consumer drains in batches and declares itself idle before it waits;
 * the producer signals only when the consumer declared itself idle:
 *
 *     consumer                                producer
 *     for (;;) {                              p = opsc_ring_reserve(r, n);
 *         while ((p = opsc_ring_peek(r, &n)))   ... fill p ...
 *             { handle(p, n);                 opsc_ring_commit(r);
 *               opsc_ring_release(r); }       ... more records (a batch) ...
 *         opsc_ring_consumer_sleeping(r);     if (opsc_ring_should_wake(r))
 *         if (opsc_ring_peek(r, &n)) {            signal();
 *             opsc_ring_consumer_awake(r);
 *             continue;
 *         }
 *         wait_for_signal();
 *         opsc_ring_consumer_awake(r);
 *     }
 *
 * Every record committed before should_wake is either seen by the consumer's
 * re-check peek or makes should_wake return 1 (both sides order their store
 * before their load with sequentially consistent operations), so a wake-up is
 * never lost provided the signal itself latches (uv_async_send does; with a
 * condition variable, wait on a flag). Spurious wake-ups are possible and
 * harmless: after any wake-up the consumer drains and re-checks as above.
 * Two obligations follow: the producer calls should_wake after the last
 * commit of every batch (commits after the last call are not covered), and a
 * consumer that stops draining before the ring is empty (a batch limit) has
 * not declared itself idle, so it must schedule its own return.
 */

typedef struct opsc_ring_s opsc_ring_t;

/** Size of the per-record header; records take 8 + (len rounded up to 8) bytes. */
#define OPSC_RING_HEADER 8u
/** Smallest capacity; smaller requests are rounded up to it. */
#define OPSC_RING_MIN_CAPACITY 4096u

/**
 * Create a ring of `capacity_bytes` rounded up to a power of two (at least
 * OPSC_RING_MIN_CAPACITY), in one 64-byte aligned allocation. The largest
 * record is capacity / 2 - 8 bytes (opsc_ring_max_record), so that an empty
 * ring always accepts it: a ring carrying 64 KiB datagrams needs 256 KiB.
 * Returns 0 and sets *out; -EINVAL (out is NULL), OPSC_ETOOBIG (capacity
 * above 1 GiB), OPSC_ENOMEM.
 */
int opsc_ring_create(size_t capacity_bytes, opsc_ring_t **out);

/**
 * Free the ring and every record still in it (records are bytes: pointers
 * stored in them are the caller's to free first). NULL is ignored. Neither
 * thread may use the ring any more.
 */
void opsc_ring_destroy(opsc_ring_t *r);

/** Buffer size in bytes (a power of two). Any thread. */
size_t opsc_ring_capacity(const opsc_ring_t *r);

/** Largest `len` that opsc_ring_reserve accepts: capacity / 2 - 8. Any thread. */
size_t opsc_ring_max_record(const opsc_ring_t *r);

/**
 * Bytes in use (headers, padding and skip markers included), between 0 and
 * the capacity. Any thread; approximate while the other threads work (the
 * two indexes are read one after the other), exact when both are quiet.
 */
uint64_t opsc_ring_used_bytes(const opsc_ring_t *r);

/**
 * Producer. Reserve a contiguous, 8-byte aligned, writable region of `len`
 * bytes (0 allowed) for the next record; NULL when the ring has no room for
 * it now or `len` > opsc_ring_max_record (never blocks, writes nothing the
 * consumer can see). The region belongs to the producer until commit; the
 * consumer sees nothing of it before. Calling reserve again without commit
 * abandons the previous reservation.
 */
void *opsc_ring_reserve(opsc_ring_t *r, size_t len);

/**
 * Producer. Publish the last reserved record (a release store: its bytes are
 * visible to the consumer before the record is). No-op without a
 * reservation. The producer must not touch the region afterwards.
 */
void opsc_ring_commit(opsc_ring_t *r);

/**
 * Producer. Publish the last reserved record shortened to `len` bytes (`len`
 * <= the reserved length; larger values are clamped to it): for a receive
 * into a reservation of the largest possible size. No-op without a
 * reservation.
 */
void opsc_ring_commit_len(opsc_ring_t *r, size_t len);

/**
 * Producer, after committing a batch. Returns 1 when the consumer declared
 * itself idle (opsc_ring_consumer_sleeping) and must be signalled, 0 when it
 * need not be. Returning 1 clears the declaration, so one idle period asks for
 * one signal. Costs one atomic read-modify-write: call it per batch, not per
 * record.
 */
int opsc_ring_should_wake(opsc_ring_t *r);

/**
 * Consumer. The next record, or NULL when the ring is empty; *len (may be
 * NULL) is set to its length, and left alone on NULL. The bytes stay valid and unchanged until
 * opsc_ring_release; peeking again without release returns the same record.
 * The consumer may read the record but not write it.
 */
const void *opsc_ring_peek(opsc_ring_t *r, size_t *len);

/**
 * Consumer. Free the record returned by the last peek (a release store: the
 * consumer's reads of it happen before the producer reuses the space). No-op
 * when nothing was peeked. The pointer from peek is invalid afterwards.
 */
void opsc_ring_release(opsc_ring_t *r);

/**
 * Consumer. Declare that the ring looked empty and the consumer is about to
 * wait (sequentially consistent). The consumer must then peek once more: a
 * record there means it must call opsc_ring_consumer_awake and carry on;
 * NULL means it may wait for the producer's signal.
 */
void opsc_ring_consumer_sleeping(opsc_ring_t *r);

/** Consumer. Withdraw the idle declaration (after the re-check found work, or on wake-up). */
void opsc_ring_consumer_awake(opsc_ring_t *r);

#endif
