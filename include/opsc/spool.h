#ifndef OPSC_SPOOL_H
#define OPSC_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "opsc/buf.h"
#include "opsc/change.h"

/*
 * The spool journal: an append-only, checksummed log of the pipeline's
 * changes (CREATE, REPEAT, STATUS; never REPLY) in segment files under one
 * directory, so that what the database has not committed yet survives a
 * database outage, a restart and kill -9. See docs/architecture.md ("Spool
 * journal") for the format and the guarantees.
 *
 * Threads. Every function and callback here runs on the loop thread. Writing
 * and fdatasync happen on a dedicated writer thread; reading back happens on
 * the libuv thread pool. The loop never touches the disk after open.
 *
 * Group commit. opsc_spool_append encodes the change into an in-memory
 * buffer and gives it the next sequence number. At most one write+sync is in
 * flight; whatever is appended meanwhile goes into the next one, which starts
 * `sync_interval_ms` after its first record (or at once when the previous
 * sync took longer). The synced callback reports the highest sequence that
 * is on disk and synced.
 *
 * Bounded. Segment files plus unsynced memory never exceed `max_bytes`: an
 * append that would is refused (OPSC_EQUEUE_FULL), counted and logged.
 * opsc_spool_release(durable) deletes every whole segment whose records are
 * all <= durable (the caller knows they are committed in the database).
 *
 * Records with sequence numbers carry over restarts: segment file names are
 * the first sequence they hold, and opsc_spool_open continues after the last
 * valid record it finds.
 */

typedef struct opsc_spool_s opsc_spool_t;

typedef struct opsc_spool_options_s {
    const char *dir;        /* created if missing */
    uint64_t max_bytes;     /* 0: 1 GiB */
    uint64_t segment_bytes; /* 0: 64 MiB; a record never spans two segments */
    int sync_interval_ms;   /* group-commit window; < 0: default 2 */
} opsc_spool_options_t;

/** One record read back: ownership of `change` passes with it. */
typedef struct opsc_spool_record_s {
    uint64_t seq;
    opsc_change_t *change;
} opsc_spool_record_t;

/**
 * Open (blocking: start-up only, before traffic): create the directory,
 * list the segments, scan the last one for its last valid record (a torn
 * tail is logged and counted, and ignored from then on), start the writer
 * thread. New records go to a new segment.
 */
int opsc_spool_open(uv_loop_t *loop, const opsc_spool_options_t *opts, opsc_spool_t **out,
                    char *errbuf, size_t errlen);

/**
 * Append a change (encoded; the caller keeps `c`). *seq_out gets its
 * sequence number. OPSC_EQUEUE_FULL when max_bytes would be exceeded,
 * UV_EINVAL for a REPLY, OPSC_ESHUTDOWN after close, OPSC_ENOMEM.
 */
int opsc_spool_append(opsc_spool_t *s, const opsc_change_t *c, uint64_t *seq_out);
/**
 * Somebody waits for what was appended (an INFORM answer, an HTTP 202): start
 * the write+sync now instead of at the end of the group-commit window, unless
 * one is in flight (then what waits goes out the moment it finishes).
 */
void opsc_spool_sync_soon(opsc_spool_t *s);

/** Called (never inside a call) each time a sync completes, with the highest synced sequence. */
void opsc_spool_set_synced_cb(opsc_spool_t *s, void (*cb)(uint64_t synced_seq, void *arg),
                              void *arg);

/** Last sequence appended (0: none ever); highest synced; last valid one found by open. */
uint64_t opsc_spool_last_seq(const opsc_spool_t *s);
uint64_t opsc_spool_synced_seq(const opsc_spool_t *s);
uint64_t opsc_spool_recovered_seq(const opsc_spool_t *s);

/** Everything <= durable_seq is in the database: whole segments up to it may go (asynchronous). */
void opsc_spool_release(opsc_spool_t *s, uint64_t durable_seq);

/**
 * Read back, off the loop, the records with after_seq < seq <= upto_seq
 * (upto_seq must be synced), in order, at most `max_records` of them. `cb`
 * gets an array (owned by the callback; free with opsc_spool_records_free)
 * and its length; n == 0 means there is nothing more up to upto_seq. One
 * read at a time (OPSC_EQUEUE_FULL otherwise). A corrupt record stops its
 * segment: it is logged and counted, and reading goes on in the next one.
 */
typedef void (*opsc_spool_read_cb)(opsc_spool_record_t *recs, size_t n, int err, void *arg);
int opsc_spool_read(opsc_spool_t *s, uint64_t after_seq, uint64_t upto_seq, size_t max_records,
                    opsc_spool_read_cb cb, void *arg);
void opsc_spool_records_free(opsc_spool_record_t *recs, size_t n);

/** Bytes held: segment files plus records not yet written. Number of segment files. */
uint64_t opsc_spool_bytes(const opsc_spool_t *s);
size_t opsc_spool_segments(const opsc_spool_t *s);

/**
 * Close: appends are refused from now on, what is buffered is written and
 * synced, the writer stops, and `done` runs (never inside this call). Segments
 * stay on disk unless released. A read in flight completes first (its
 * callback still runs).
 */
void opsc_spool_close(opsc_spool_t *s, void (*done)(void *arg), void *arg);

/** Prometheus families (signature of opsc_metrics_collect_cb). */
void opsc_spool_metrics(opsc_buf_t *out, void *spool);

/* ---- codec (src/core/change_codec.c) ------------------------------------ */

/** Append the binary form of a CREATE, REPEAT or STATUS to out. 0, UV_EINVAL or OPSC_ENOMEM. */
int opsc_change_encode(opsc_buf_t *out, const opsc_change_t *c);
/** Decode exactly `len` bytes into a new change. 0, OPSC_EPARSE or OPSC_ENOMEM. */
int opsc_change_decode(const void *data, size_t len, opsc_change_t **out);
/** CRC-32C (Castagnoli), software; start with crc = 0. */
uint32_t opsc_crc32c(uint32_t crc, const void *data, size_t len);

#endif
