/*
 * The spool journal (see include/opsc/spool.h and docs/architecture.md).
 *
 * On disk: <dir>/<first seq, 20 digits>.seg, each a 32-byte header
 *   "OPSCSPL\0" | u32 version | u32 header bytes | u64 first seq | u32 crc | u32 0
 * followed by records
 *   u32 payload bytes | u32 crc32c(len, seq, payload) | u64 seq | payload (change_codec.c)
 * all little-endian. A record never spans two segments, so a segment can be
 * deleted as a whole once its last sequence is durable in the database.
 *
 * Three parties touch the files: the loop (open at start-up, blocking, before
 * traffic), the writer thread (append, fdatasync, rotate, unlink) and the
 * thread-pool reader (read back). They share the segment list under `mu`;
 * nobody holds `mu` across I/O. A segment's `readable` only grows after its
 * bytes are synced, so the reader never sees a record being written.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "opsc/error.h"
#include "opsc/fsutil.h"
#include "opsc/log.h"
#include "opsc/metrics.h"
#include "opsc/spool.h"
#include "opsc/wake.h"

#define LOG "spool"
#define SEG_MAGIC "OPSCSPL"
#define SEG_VERSION 1u
#define SEG_HDR 32u
#define REC_HDR 16u
#define REC_MAX (16u << 20)
#define READ_CHUNK (1u << 20)
#define READ_BYTES_MAX (4u << 20) /* per read request: bounds what a refused feed holds */
#define RETRY_MS 1000

typedef struct seg_s {
    uint64_t first_seq;
    uint64_t last_seq; /* published after sync; recovered: an upper bound */
    uint64_t readable; /* bytes synced and valid: the reader stops here */
    uint64_t bytes;    /* file size as published */
    struct seg_s *next;
    /* writer thread only */
    uint64_t w_bytes;
    uint64_t w_last;
} seg_t;

typedef struct read_req_s {
    uv_work_t work;
    opsc_spool_t *s;
    uint64_t after, upto;
    size_t max;
    opsc_spool_read_cb cb;
    void *arg;
    /* cursor in and out */
    uint64_t seg_first;
    uint64_t offset;
    uint64_t last_seq;
    /* results */
    opsc_spool_record_t *recs;
    size_t n;
    int err;
    uint64_t corrupt;
} read_req_t;

struct opsc_spool_s {
    uv_loop_t *loop;
    char dir[4096];
    uint64_t max_bytes, segment_bytes;
    int sync_interval_ms;

    /* loop thread */
    uint64_t last_seq, synced_seq, recovered_seq;
    opsc_buf_t pending;
    uint64_t pending_last, pending_n;
    uint64_t job_last, job_n, job_bytes;
    int inflight;
    int retry_wait; /* a failed write waits for the timer */
    uint64_t job_t0;
    uint64_t disk_bytes; /* copy of what the writer published */
    size_t nsegs;
    opsc_wake_t async; /* the writer thread -> the loop (opsc/wake.h: no uv_async spin) */
    uv_timer_t timer;
    int closing, handles_open;
    void (*close_done)(void *);
    void *close_arg;
    void (*synced_cb)(uint64_t, void *);
    void *synced_arg;
    read_req_t *reading;
    uint64_t cur_seg_first, cur_offset, cur_last; /* read cursor */
    opsc_log_ratelimit_t rl_full, rl_write;

    /* counters (loop thread) */
    uint64_t n_appended, n_synced, n_syncs, n_read, n_full, n_write_errors, n_corrupt_tail,
        n_corrupt_middle;
    double sync_last_s, sync_max_s, sync_sum_s;

    /* shared, under mu */
    uv_mutex_t mu;
    uv_cond_t cv;
    uv_thread_t thread;
    int thread_started;
    seg_t *segs;
    opsc_buf_t job;
    int job_ready, job_done, job_err;
    uint64_t release_seq;
    int stop;
    uint64_t w_disk_bytes;
    size_t w_nsegs;

    /* writer thread only */
    seg_t *cur;
    int cur_fd;
    int dir_fd;
    uint64_t released;
};

/* ---- little helpers --------------------------------------------------------- */

static void le32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void le64(unsigned char *p, uint64_t v) {
    le32(p, (uint32_t)v);
    le32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p) {
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void seg_path(const opsc_spool_t *s, uint64_t first, char *out, size_t outlen) {
    snprintf(out, outlen, "%s/%020" PRIu64 ".seg", s->dir, first);
}

static void seg_header(unsigned char h[SEG_HDR], uint64_t first) {
    memset(h, 0, SEG_HDR);
    memcpy(h, SEG_MAGIC, 8); /* with its NUL */
    le32(h + 8, SEG_VERSION);
    le32(h + 12, SEG_HDR);
    le64(h + 16, first);
    le32(h + 24, opsc_crc32c(0, h, 24));
}

static int seg_header_ok(const unsigned char h[SEG_HDR], uint64_t first) {
    return memcmp(h, SEG_MAGIC, 8) == 0 && rd32(h + 8) == SEG_VERSION && rd32(h + 12) == SEG_HDR &&
           rd64(h + 16) == first && rd32(h + 24) == opsc_crc32c(0, h, 24);
}

static uint32_t rec_crc(const unsigned char *hdr, const unsigned char *payload, uint32_t len) {
    uint32_t c = opsc_crc32c(0, hdr, 4); /* length */
    c = opsc_crc32c(c, hdr + 8, 8);      /* sequence */
    return opsc_crc32c(c, payload, len);
}

static int full_write(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static ssize_t full_pread(int fd, void *p, size_t n, uint64_t off) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)p + got, n - got, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Under mu. */
static void publish_totals(opsc_spool_t *s) {
    uint64_t b = 0;
    size_t n = 0;
    for (seg_t *g = s->segs; g; g = g->next) {
        b += g->bytes;
        n++;
    }
    s->w_disk_bytes = b;
    s->w_nsegs = n;
}

/* ---- writer thread ---------------------------------------------------------- */

static int seal_current(opsc_spool_t *s) {
    int rc = 0;
    if (s->cur_fd >= 0) {
        if (fdatasync(s->cur_fd) != 0) {
            rc = -errno;
        }
        close(s->cur_fd);
    }
    s->cur_fd = -1;
    s->cur = NULL;
    return rc;
}

static int open_segment(opsc_spool_t *s, uint64_t first) {
    char path[4200];
    unsigned char h[SEG_HDR];
    seg_path(s, first, path, sizeof(path));
    /* O_TRUNC: a same-named file can only hold a failed attempt at these very records. */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -errno;
    }
    seg_header(h, first);
    int rc = full_write(fd, h, SEG_HDR);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    uv_mutex_lock(&s->mu);
    seg_t *g = s->segs, *tail = NULL;
    for (; g && g->first_seq != first; g = g->next) {
        tail = g;
    }
    if (!g) {
        g = opsc_calloc(1, sizeof(*g));
        if (g) {
            g->first_seq = first;
            if (tail) {
                tail->next = g;
            } else {
                s->segs = g;
            }
        }
    } else {
        g->readable = g->bytes = SEG_HDR;
        g->last_seq = 0;
    }
    if (g) {
        g->w_bytes = SEG_HDR;
        g->w_last = 0;
    }
    uv_mutex_unlock(&s->mu);
    if (!g) {
        close(fd);
        return OPSC_ENOMEM;
    }
    s->cur = g;
    s->cur_fd = fd;
    if (s->dir_fd >= 0 && fsync(s->dir_fd) != 0) {
        return -errno; /* the new name must survive a crash as well as its bytes */
    }
    return 0;
}

static int write_job(opsc_spool_t *s, const unsigned char *p, size_t len) {
    size_t off = 0;
    int rc = 0;
    while (off < len) {
        uint32_t rlen = rd32(p + off);
        uint64_t seq = rd64(p + off + 8);
        size_t total = REC_HDR + rlen;
        if (s->cur && s->cur->w_bytes + total > s->segment_bytes && s->cur->w_bytes > SEG_HDR) {
            if ((rc = seal_current(s)) != 0) {
                return rc;
            }
        }
        if (!s->cur && (rc = open_segment(s, seq)) != 0) {
            return rc;
        }
        /* Write the run of records that fits into this segment with one call. */
        size_t run = 0;
        uint64_t room = s->segment_bytes > s->cur->w_bytes ? s->segment_bytes - s->cur->w_bytes : 0;
        uint64_t last = seq;
        while (off + run < len) {
            uint32_t l = rd32(p + off + run);
            size_t t = REC_HDR + l;
            if (run > 0 && run + t > room) {
                break;
            }
            last = rd64(p + off + run + 8);
            run += t;
        }
        if ((rc = full_write(s->cur_fd, p + off, run)) != 0) {
            return rc;
        }
        s->cur->w_bytes += run;
        s->cur->w_last = last;
        /* Sealed segments were synced by seal_current; publish what they hold now. */
        uv_mutex_lock(&s->mu);
        s->cur->bytes = s->cur->w_bytes;
        uv_mutex_unlock(&s->mu);
        off += run;
        if (off < len) {
            /* The next record goes to a new segment: make this one readable first. */
            uv_mutex_lock(&s->mu);
            s->cur->last_seq = s->cur->w_last;
            uv_mutex_unlock(&s->mu);
            if ((rc = seal_current(s)) != 0) {
                return rc;
            }
            /* readable follows the sync */
        }
    }
    if (s->cur_fd >= 0 && fdatasync(s->cur_fd) != 0) {
        return -errno;
    }
    return 0;
}

/* After a successful sync: every segment's written bytes are durable and readable. */
static void publish_synced(opsc_spool_t *s) {
    uv_mutex_lock(&s->mu);
    for (seg_t *g = s->segs; g; g = g->next) {
        if (g->w_bytes > g->readable) {
            g->readable = g->w_bytes;
            g->bytes = g->w_bytes;
            g->last_seq = g->w_last;
        }
    }
    uv_mutex_unlock(&s->mu);
}

static void truncate_upto(opsc_spool_t *s, uint64_t upto) {
    seg_t *dead = NULL;
    uv_mutex_lock(&s->mu);
    seg_t **pp = &s->segs;
    while (*pp) {
        seg_t *g = *pp;
        /* A segment goes when its last record is durable; the one being written only
         * when it is not going to get more (it is replaced by a new one on the next write). */
        if (g->last_seq != 0 && g->last_seq <= upto && g->readable == g->bytes) {
            *pp = g->next;
            g->next = dead;
            dead = g;
            continue;
        }
        pp = &g->next;
    }
    uv_mutex_unlock(&s->mu);
    int unlinked = 0;
    while (dead) {
        seg_t *g = dead;
        char path[4200];
        dead = g->next;
        if (g == s->cur) {
            close(s->cur_fd);
            s->cur_fd = -1;
            s->cur = NULL;
        }
        seg_path(s, g->first_seq, path, sizeof(path));
        if (unlink(path) != 0 && errno != ENOENT) {
            opsc_log_warn(LOG, "cannot delete %s: %s", path, strerror(errno));
        }
        unlinked = 1;
        opsc_free(g);
    }
    if (unlinked && s->dir_fd >= 0) {
        (void)fsync(
            s->dir_fd); /* best effort: a deleted segment coming back is replayed idempotently */
    }
}

static void writer_main(void *arg) {
    opsc_spool_t *s = arg;
    uv_mutex_lock(&s->mu);
    for (;;) {
        while (!s->job_ready && s->release_seq <= s->released && !s->stop) {
            uv_cond_wait(&s->cv, &s->mu);
        }
        int have_job = s->job_ready;
        uint64_t rel = s->release_seq;
        if (!have_job && rel <= s->released && s->stop) {
            break;
        }
        uv_mutex_unlock(&s->mu);
        int err = 0;
        if (have_job) {
            err = write_job(s, (const unsigned char *)s->job.base, s->job.len);
            if (err == 0) {
                publish_synced(s);
            } else {
                (void)seal_current(s); /* the retry starts a fresh segment */
            }
        }
        if (rel > s->released) {
            truncate_upto(s, rel);
            s->released = rel;
        }
        uv_mutex_lock(&s->mu);
        if (have_job) {
            s->job_ready = 0;
            s->job_done = 1;
            s->job_err = err;
        }
        publish_totals(s);
        uv_mutex_unlock(&s->mu);
        opsc_wake_send(&s->async);
        uv_mutex_lock(&s->mu);
    }
    uv_mutex_unlock(&s->mu);
    (void)seal_current(s);
}

/* ---- loop side: group commit -------------------------------------------------- */

static void dispatch(opsc_spool_t *s) {
    if (s->inflight || s->pending.len == 0) {
        return;
    }
    uv_mutex_lock(&s->mu);
    opsc_buf_t t = s->job; /* empty: the last job finished */
    s->job = s->pending;
    s->pending = t;
    opsc_buf_reset(&s->pending);
    s->job_ready = 1;
    uv_cond_signal(&s->cv);
    uv_mutex_unlock(&s->mu);
    s->job_last = s->pending_last;
    s->job_n = s->pending_n;
    s->job_bytes = s->job.len;
    s->pending_n = 0;
    s->inflight = 1;
    s->job_t0 = uv_hrtime();
}

static void on_timer(uv_timer_t *t) {
    opsc_spool_t *s = t->data;
    if (s->retry_wait) {
        /* The failed job is written again, unchanged, into a fresh segment. */
        s->retry_wait = 0;
        uv_mutex_lock(&s->mu);
        s->job_ready = 1;
        uv_cond_signal(&s->cv);
        uv_mutex_unlock(&s->mu);
        s->job_t0 = uv_hrtime();
        return;
    }
    dispatch(s);
}

static void maybe_finish_close(opsc_spool_t *s);

static void on_async(opsc_wake_t *a) {
    opsc_spool_t *s = a->data;
    uv_mutex_lock(&s->mu);
    int done = s->job_done, err = s->job_err;
    s->job_done = 0;
    s->disk_bytes = s->w_disk_bytes;
    s->nsegs = s->w_nsegs;
    uv_mutex_unlock(&s->mu);
    if (!done) {
        return; /* a truncation finished: only the totals changed */
    }
    if (err != 0) {
        unsigned long long supp = 0;
        s->n_write_errors++;
        if (opsc_log_ratelimit_ok(&s->rl_write, &supp)) {
            opsc_log_err(LOG,
                         "writing the journal in %s failed: %s; %" PRIu64
                         " records wait in memory and are written again in %d ms "
                         "(INFORM answers wait too)%s",
                         s->dir, opsc_strerror(err), s->job_n + s->pending_n, RETRY_MS,
                         supp ? " (more of these suppressed)" : "");
        }
        if (s->closing) {
            opsc_log_err(LOG, "shutdown: %" PRIu64 " records could not be written to the journal",
                         s->job_n + s->pending_n);
            s->inflight = 0;
            opsc_buf_reset(&s->pending);
            maybe_finish_close(s);
            return;
        }
        s->retry_wait = 1;
        uv_timer_start(&s->timer, on_timer, RETRY_MS, 0);
        return;
    }
    double lat = (double)(uv_hrtime() - s->job_t0) / 1e9;
    s->n_syncs++;
    s->n_synced += s->job_n;
    s->sync_last_s = lat;
    s->sync_sum_s += lat;
    if (lat > s->sync_max_s) {
        s->sync_max_s = lat;
    }
    s->synced_seq = s->job_last;
    s->inflight = 0;
    uv_mutex_lock(&s->mu);
    if (s->job.cap > (8u << 20)) {
        opsc_buf_free(&s->job); /* one burst does not pin its buffer */
    }
    opsc_buf_reset(&s->job);
    uv_mutex_unlock(&s->mu);
    /* Group commit: whatever arrived during this sync already waited long enough. */
    dispatch(s);
    if (s->synced_cb) {
        s->synced_cb(s->synced_seq, s->synced_arg);
    }
    maybe_finish_close(s);
}

/* ---- append / release ------------------------------------------------------- */

int opsc_spool_append(opsc_spool_t *s, const opsc_change_t *c, uint64_t *seq_out) {
    static const unsigned char zero[REC_HDR];
    if (s->closing) {
        return OPSC_ESHUTDOWN;
    }
    if (!c || c->kind == OPSC_CHANGE_REPLY) {
        return UV_EINVAL;
    }
    size_t start = s->pending.len;
    int rc = opsc_buf_append(&s->pending, zero, REC_HDR);
    if (rc == 0) {
        rc = opsc_change_encode(&s->pending, c);
    }
    size_t plen = s->pending.len - start - REC_HDR;
    if (rc == 0 && plen > REC_MAX) {
        rc = OPSC_ETOOBIG;
    }
    uint64_t total = s->disk_bytes + (s->inflight ? s->job_bytes : 0) + s->pending.len;
    if (rc == 0 && total > s->max_bytes) {
        unsigned long long supp = 0;
        s->n_full++;
        if (opsc_log_ratelimit_ok(&s->rl_full, &supp)) {
            opsc_log_err(
                LOG,
                "journal full: %" PRIu64 " bytes held of spool.max_bytes %" PRIu64
                " in %s; changes wait (the pipeline pauses, traps are dropped and counted) "
                "until the database takes the backlog%s",
                total - (s->pending.len - start), s->max_bytes, s->dir,
                supp ? " (more of these suppressed)" : "");
        }
        rc = OPSC_EQUEUE_FULL;
    }
    if (rc != 0) {
        s->pending.len = start;
        if (s->pending.base) {
            s->pending.base[start] = '\0';
        }
        return rc;
    }
    unsigned char *h = (unsigned char *)s->pending.base + start;
    uint64_t seq = ++s->last_seq;
    le32(h, (uint32_t)plen);
    le64(h + 8, seq);
    le32(h + 4, rec_crc(h, h + REC_HDR, (uint32_t)plen));
    s->pending_last = seq;
    s->pending_n++;
    s->n_appended++;
    if (seq_out) {
        *seq_out = seq;
    }
    if (!s->inflight && !uv_is_active((uv_handle_t *)&s->timer)) {
        if (s->sync_interval_ms == 0) {
            dispatch(s);
        } else {
            uv_timer_start(&s->timer, on_timer, (uint64_t)s->sync_interval_ms, 0);
        }
    }
    return 0;
}

void opsc_spool_sync_soon(opsc_spool_t *s) {
    if (!s->closing && !s->inflight && !s->retry_wait && s->pending_n > 0) {
        uv_timer_stop(&s->timer);
        dispatch(s);
    }
}

void opsc_spool_release(opsc_spool_t *s, uint64_t durable_seq) {
    uv_mutex_lock(&s->mu);
    if (durable_seq > s->release_seq) {
        s->release_seq = durable_seq;
        uv_cond_signal(&s->cv);
    }
    uv_mutex_unlock(&s->mu);
}

void opsc_spool_set_synced_cb(opsc_spool_t *s, void (*cb)(uint64_t, void *), void *arg) {
    s->synced_cb = cb;
    s->synced_arg = arg;
}

uint64_t opsc_spool_last_seq(const opsc_spool_t *s) {
    return s->last_seq;
}

uint64_t opsc_spool_synced_seq(const opsc_spool_t *s) {
    return s->synced_seq;
}

uint64_t opsc_spool_recovered_seq(const opsc_spool_t *s) {
    return s->recovered_seq;
}

uint64_t opsc_spool_bytes(const opsc_spool_t *s) {
    return s->disk_bytes + (s->inflight ? s->job_bytes : 0) + s->pending.len;
}

size_t opsc_spool_segments(const opsc_spool_t *s) {
    return s->nsegs;
}

/* ---- reading back (thread pool) ----------------------------------------------- */

static void read_corrupt(read_req_t *r, uint64_t seg, uint64_t off, const char *what) {
    char path[4200];
    seg_path(r->s, seg, path, sizeof(path));
    opsc_log_err(LOG,
                 "CORRUPT journal record in %s at offset %" PRIu64 " (%s): the rest of this "
                 "segment is skipped and its changes are LOST; reading goes on in the next one",
                 path, off, what);
    r->corrupt++;
}

/* Find the segment to read: seg_first, or the next one after it; 0 = locate `after`. */
static int read_locate(read_req_t *r, uint64_t *first, uint64_t *readable, int *has_next) {
    opsc_spool_t *s = r->s;
    seg_t *g = NULL;
    uv_mutex_lock(&s->mu);
    if (r->seg_first == 0) {
        for (seg_t *x = s->segs; x; x = x->next) {
            if (!g || x->first_seq <= r->after + 1) {
                g = x;
            }
            if (x->first_seq > r->after + 1) {
                break;
            }
        }
    } else {
        for (g = s->segs; g && g->first_seq < r->seg_first; g = g->next) {
        }
    }
    if (g) {
        *first = g->first_seq;
        *readable = g->readable;
        *has_next = g->next != NULL;
    }
    uv_mutex_unlock(&s->mu);
    return g != NULL;
}

static void read_work(uv_work_t *w) {
    read_req_t *r = opsc_container_of(w, read_req_t, work);
    size_t cap = r->max < 65536 ? r->max : 65536;
    unsigned char *chunk = opsc_malloc(READ_CHUNK);
    r->recs = opsc_calloc(cap ? cap : 1, sizeof(*r->recs));
    if (!chunk || !r->recs) {
        r->err = OPSC_ENOMEM;
        opsc_free(chunk);
        return;
    }
    size_t chunk_cap = READ_CHUNK;
    uint64_t bytes = 0;
    int fd = -1, done = 0;
    uint64_t fd_seg = 0;
    while (!done && r->n < cap && bytes < READ_BYTES_MAX) {
        uint64_t first, readable;
        int has_next;
        if (!read_locate(r, &first, &readable, &has_next)) {
            break;
        }
        if (first != r->seg_first) {
            r->seg_first = first;
            r->offset = 0;
        }
        if (fd < 0 || fd_seg != first) {
            char path[4200];
            if (fd >= 0) {
                close(fd);
            }
            seg_path(r->s, first, path, sizeof(path));
            fd = open(path, O_RDONLY | O_CLOEXEC);
            fd_seg = first;
            if (fd < 0) {
                /* Deleted meanwhile (released: nothing we need) or unreadable. */
                if (errno != ENOENT) {
                    read_corrupt(r, first, 0, strerror(errno));
                }
                r->seg_first = first + 1;
                r->offset = 0;
                continue;
            }
        }
        if (r->offset == 0) {
            unsigned char h[SEG_HDR];
            if (full_pread(fd, h, SEG_HDR, 0) != SEG_HDR || !seg_header_ok(h, first)) {
                read_corrupt(r, first, 0, "bad segment header");
                r->seg_first = first + 1;
                continue;
            }
            r->offset = SEG_HDR;
        }
        if (r->offset >= readable) {
            if (!has_next) {
                break; /* caught up with what is synced */
            }
            r->seg_first = first + 1;
            r->offset = 0;
            continue;
        }
        uint64_t want = readable - r->offset;
        if (want > chunk_cap) {
            want = chunk_cap;
        }
        ssize_t got = full_pread(fd, chunk, (size_t)want, r->offset);
        if (got < (ssize_t)REC_HDR) {
            read_corrupt(r, first, r->offset, got < 0 ? strerror((int)-got) : "short read");
            r->seg_first = first + 1;
            r->offset = 0;
            continue;
        }
        size_t at = 0;
        const char *bad = NULL;
        while (!done && r->n < cap && bytes < READ_BYTES_MAX) {
            if ((size_t)got - at < REC_HDR) {
                break; /* read on from here */
            }
            const unsigned char *h = chunk + at;
            uint32_t len = rd32(h);
            uint64_t seq = rd64(h + 8);
            uint64_t total = REC_HDR + (uint64_t)len;
            if (len > REC_MAX || r->offset + total > readable) {
                bad = "bad record length";
                break;
            }
            if (at + total > (size_t)got) {
                if (at == 0) {
                    /* One record larger than the chunk: grow it once and read again. */
                    unsigned char *bigger = opsc_realloc(chunk, (size_t)total);
                    if (!bigger) {
                        r->err = OPSC_ENOMEM;
                        done = 1;
                        break;
                    }
                    chunk = bigger;
                    chunk_cap = (size_t)total;
                }
                break;
            }
            if (rd32(h + 4) != rec_crc(h, h + REC_HDR, len)) {
                bad = "checksum mismatch";
                break;
            }
            if (seq > r->upto) {
                done = 1;
                break;
            }
            if (seq > r->after && seq > r->last_seq) {
                opsc_change_t *c = NULL;
                int rc = opsc_change_decode(h + REC_HDR, len, &c);
                if (rc == OPSC_ENOMEM) {
                    r->err = rc;
                    done = 1;
                    break;
                }
                if (rc != 0) {
                    read_corrupt(r, first, r->offset, "undecodable record (skipped alone)");
                } else {
                    r->recs[r->n].seq = seq;
                    r->recs[r->n].change = c;
                    r->n++;
                }
            }
            if (seq > r->last_seq) {
                r->last_seq = seq;
            }
            at += (size_t)total;
            r->offset += total;
            if (seq > r->after) {
                /* Only what is handed back counts: skipping older records must never end a
                 * read with nothing, which means "nothing more up to upto" to the caller. */
                bytes += total;
            }
        }
        if (bad) {
            read_corrupt(r, first, r->offset, bad);
            r->seg_first = first + 1;
            r->offset = 0;
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    opsc_free(chunk);
}

static void read_after(uv_work_t *w, int status) {
    read_req_t *r = opsc_container_of(w, read_req_t, work);
    opsc_spool_t *s = r->s;
    s->reading = NULL;
    s->cur_seg_first = r->seg_first;
    s->cur_offset = r->offset;
    s->cur_last = r->last_seq;
    s->n_read += r->n;
    s->n_corrupt_middle += r->corrupt;
    int err = status ? status : r->err;
    if (err) {
        opsc_spool_records_free(r->recs, r->n);
        r->recs = NULL;
        r->n = 0;
        s->cur_seg_first = 0; /* locate again next time */
    }
    r->cb(r->recs, r->n, err, r->arg);
    opsc_free(r);
    maybe_finish_close(s);
}

int opsc_spool_read(opsc_spool_t *s, uint64_t after_seq, uint64_t upto_seq, size_t max_records,
                    opsc_spool_read_cb cb, void *arg) {
    if (s->reading) {
        return OPSC_EQUEUE_FULL;
    }
    if (!cb || max_records == 0) {
        return UV_EINVAL;
    }
    read_req_t *r = opsc_calloc(1, sizeof(*r));
    if (!r) {
        return OPSC_ENOMEM;
    }
    r->s = s;
    r->after = after_seq;
    r->upto = upto_seq;
    r->max = max_records;
    r->cb = cb;
    r->arg = arg;
    if (s->cur_seg_first != 0 && s->cur_last == after_seq) {
        r->seg_first = s->cur_seg_first; /* sequential: go on where the last read stopped */
        r->offset = s->cur_offset;
        r->last_seq = after_seq;
    } else {
        r->last_seq = after_seq;
    }
    int rc = uv_queue_work(s->loop, &r->work, read_work, read_after);
    if (rc != 0) {
        opsc_free(r);
        return rc;
    }
    s->reading = r;
    return 0;
}

void opsc_spool_records_free(opsc_spool_record_t *recs, size_t n) {
    for (size_t i = 0; recs && i < n; i++) {
        opsc_change_free(recs[i].change);
    }
    opsc_free(recs);
}

/* ---- open: recover what the last run left ------------------------------------- */

/* Valid records of one segment: end offset of the last valid one, its sequence. */
static int scan_segment(const char *path, uint64_t first, uint64_t *valid_end, uint64_t *last_seq,
                        uint64_t *nrec, int *header_ok) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    unsigned char h[SEG_HDR];
    *valid_end = 0;
    *last_seq = 0;
    *nrec = 0;
    *header_ok = full_pread(fd, h, SEG_HDR, 0) == SEG_HDR && seg_header_ok(h, first);
    if (!*header_ok) {
        close(fd);
        return 0;
    }
    uint64_t off = SEG_HDR, prev = 0;
    size_t cap = 64 * 1024;
    unsigned char *buf = opsc_malloc(cap);
    int rc = buf ? 0 : OPSC_ENOMEM;
    while (rc == 0) {
        unsigned char rh[REC_HDR];
        if (full_pread(fd, rh, REC_HDR, off) != REC_HDR) {
            break;
        }
        uint32_t len = rd32(rh);
        uint64_t seq = rd64(rh + 8);
        if (len > REC_MAX || seq <= prev || seq < first) {
            break;
        }
        if (len > cap) {
            unsigned char *b = opsc_realloc(buf, len);
            if (!b) {
                rc = OPSC_ENOMEM;
                break;
            }
            buf = b;
            cap = len;
        }
        if (full_pread(fd, buf, len, off + REC_HDR) != (ssize_t)len ||
            rd32(rh + 4) != rec_crc(rh, buf, len)) {
            break;
        }
        prev = seq;
        off += REC_HDR + len;
        (*nrec)++;
    }
    opsc_free(buf);
    close(fd);
    *valid_end = off;
    *last_seq = prev;
    return rc;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int list_segments(const char *dir, uint64_t **out, size_t *n) {
    DIR *d = opendir(dir);
    if (!d) {
        return -errno;
    }
    size_t cap = 0;
    int rc = 0;
    *out = NULL;
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        size_t len = strlen(name);
        if (len != 24 || strcmp(name + 20, ".seg") != 0 || strspn(name, "0123456789") != 20) {
            continue;
        }
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            uint64_t *m = opsc_realloc(*out, nc * sizeof(*m));
            if (!m) {
                rc = OPSC_ENOMEM;
                break;
            }
            *out = m;
            cap = nc;
        }
        (*out)[(*n)++] = strtoull(name, NULL, 10);
    }
    closedir(d);
    if (rc == 0 && *n > 1) {
        qsort(*out, *n, sizeof(**out), cmp_u64);
    }
    return rc;
}

static int recover(opsc_spool_t *s, char *errbuf, size_t errlen) {
    uint64_t *firsts = NULL;
    size_t n = 0;
    int rc = list_segments(s->dir, &firsts, &n);
    if (rc != 0) {
        opsc_errbuf_printf(errbuf, errlen, "spool.dir %s: cannot list: %s", s->dir,
                           opsc_strerror(rc));
        return rc;
    }
    /* The last segment is the only one a crash can leave torn: scan it, drop it when empty. */
    uint64_t last_seq = 0, valid_end = 0;
    while (n > 0) {
        char path[4200];
        uint64_t nrec = 0;
        int hok = 0;
        struct stat st;
        seg_path(s, firsts[n - 1], path, sizeof(path));
        if (stat(path, &st) != 0) {
            rc = -errno;
            break;
        }
        if ((rc = scan_segment(path, firsts[n - 1], &valid_end, &last_seq, &nrec, &hok)) != 0) {
            break;
        }
        if (hok && nrec > 0) {
            if ((uint64_t)st.st_size > valid_end) {
                s->n_corrupt_tail++;
                opsc_log_warn(LOG,
                              "%s: torn or corrupt record at offset %" PRIu64 " (file %" PRIu64
                              " bytes): the journal ends at sequence %" PRIu64
                              " (a write cut short by a crash); truncating the tail",
                              path, valid_end, (uint64_t)st.st_size, last_seq);
                if (truncate(path, (off_t)valid_end) != 0) {
                    rc = -errno;
                    break;
                }
            }
            break;
        }
        if ((uint64_t)st.st_size > SEG_HDR || !hok) {
            s->n_corrupt_tail++;
            opsc_log_warn(LOG, "%s: no valid record (torn at creation): removed", path);
        }
        if (unlink(path) != 0) {
            rc = -errno;
            break;
        }
        n--;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char path[4200];
        struct stat st;
        seg_t *g = opsc_calloc(1, sizeof(*g));
        if (!g) {
            rc = OPSC_ENOMEM;
            break;
        }
        seg_path(s, firsts[i], path, sizeof(path));
        g->first_seq = firsts[i];
        if (i + 1 < n) {
            /* Not scanned (that is the replay's job): bounded by the next one's first. */
            g->last_seq = firsts[i + 1] - 1;
            g->bytes = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
        } else {
            g->last_seq = last_seq;
            g->bytes = valid_end;
        }
        g->readable = g->w_bytes = g->bytes;
        g->w_last = g->last_seq;
        seg_t **pp = &s->segs;
        while (*pp) {
            pp = &(*pp)->next;
        }
        *pp = g;
    }
    if (rc != 0) {
        opsc_errbuf_printf(errbuf, errlen, "spool.dir %s: recovery failed: %s", s->dir,
                           opsc_strerror(rc));
    } else if (n > 0) {
        s->recovered_seq = last_seq;
        s->last_seq = last_seq;
        s->synced_seq = last_seq;
        s->released = 0;
    }
    opsc_free(firsts);
    publish_totals(s);
    s->disk_bytes = s->w_disk_bytes;
    s->nsegs = s->w_nsegs;
    return rc;
}

int opsc_spool_open(uv_loop_t *loop, const opsc_spool_options_t *o, opsc_spool_t **out,
                    char *errbuf, size_t errlen) {
    opsc_spool_t *s = opsc_calloc(1, sizeof(*s));
    int rc;
    if (!s) {
        return OPSC_ENOMEM;
    }
    s->loop = loop;
    s->max_bytes = o->max_bytes ? o->max_bytes : (UINT64_C(1) << 30);
    s->segment_bytes = o->segment_bytes ? o->segment_bytes : (UINT64_C(64) << 20);
    s->sync_interval_ms = o->sync_interval_ms < 0 ? 2 : o->sync_interval_ms;
    s->cur_fd = -1;
    s->dir_fd = -1;
    s->rl_full = (opsc_log_ratelimit_t)OPSC_LOG_RATELIMIT_INIT(10000, 1);
    s->rl_write = (opsc_log_ratelimit_t)OPSC_LOG_RATELIMIT_INIT(10000, 3);
    uv_mutex_init(&s->mu);
    uv_cond_init(&s->cv);
    if (!o->dir || snprintf(s->dir, sizeof(s->dir), "%s", o->dir) >= (int)sizeof(s->dir)) {
        opsc_errbuf_printf(errbuf, errlen, "spool.dir: missing or too long");
        rc = OPSC_ECONFIG;
        goto error;
    }
    if ((rc = opsc_mkdir_p(s->dir, 0700)) != 0) {
        opsc_errbuf_printf(errbuf, errlen, "spool.dir %s: cannot create: %s", s->dir,
                           opsc_strerror(rc));
        goto error;
    }
    s->dir_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd < 0) {
        rc = -errno;
        opsc_errbuf_printf(errbuf, errlen, "spool.dir %s: %s", s->dir, opsc_strerror(rc));
        goto error;
    }
    if ((rc = recover(s, errbuf, errlen)) != 0) {
        goto error;
    }
    if ((rc = opsc_wake_init(loop, &s->async, on_async)) != 0) {
        opsc_errbuf_printf(errbuf, errlen, "spool: cannot create its wake-up eventfd: %s",
                           opsc_strerror(rc));
        goto error;
    }
    s->async.data = s;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    s->handles_open = 2;
    if ((rc = uv_thread_create(&s->thread, writer_main, s)) != 0) {
        opsc_errbuf_printf(errbuf, errlen, "spool writer thread: %s", opsc_strerror(rc));
        /* handles are initialised: the caller must close; keep it simple and leak nothing */
        s->closing = 1;
        opsc_wake_close(&s->async, NULL);
        uv_close((uv_handle_t *)&s->timer, NULL);
        *out = NULL;
        return rc; /* s is freed after the closes by nobody: accepted, start-up fails anyway */
    }
    s->thread_started = 1;
    if (s->nsegs > 0) {
        opsc_log_info(LOG,
                      "journal %s: %zu segments, %" PRIu64 " bytes, up to sequence %" PRIu64
                      " to replay",
                      s->dir, s->nsegs, s->disk_bytes, s->recovered_seq);
    }
    *out = s;
    return 0;

error:
    if (s->dir_fd >= 0) {
        close(s->dir_fd);
    }
    while (s->segs) {
        seg_t *g = s->segs;
        s->segs = g->next;
        opsc_free(g);
    }
    uv_mutex_destroy(&s->mu);
    uv_cond_destroy(&s->cv);
    opsc_free(s);
    *out = NULL;
    return rc;
}

/* ---- close ------------------------------------------------------------------------ */

static void handle_gone(opsc_spool_t *s);

static void on_handle_closed(uv_handle_t *h) {
    handle_gone(h->data);
}

static void handle_gone(opsc_spool_t *s) {
    if (--s->handles_open > 0) {
        return;
    }
    void (*done)(void *) = s->close_done;
    void *arg = s->close_arg;
    while (s->segs) {
        seg_t *g = s->segs;
        s->segs = g->next;
        opsc_free(g);
    }
    opsc_buf_free(&s->pending);
    opsc_buf_free(&s->job);
    if (s->dir_fd >= 0) {
        close(s->dir_fd);
    }
    uv_mutex_destroy(&s->mu);
    uv_cond_destroy(&s->cv);
    opsc_free(s);
    if (done) {
        done(arg);
    }
}

static void on_wake_closed(opsc_wake_t *w) {
    handle_gone(w->data);
}

static void maybe_finish_close(opsc_spool_t *s) {
    if (!s->closing || s->handles_open == 0 || s->inflight || s->reading ||
        opsc_wake_is_closing(&s->async)) {
        return;
    }
    if (s->pending.len > 0) {
        dispatch(s);
        return;
    }
    uv_mutex_lock(&s->mu);
    s->stop = 1;
    uv_cond_signal(&s->cv);
    uv_mutex_unlock(&s->mu);
    /* The writer is idle (nothing in flight): it exits at once after a pending release. */
    uv_thread_join(&s->thread);
    s->thread_started = 0;
    uv_timer_stop(&s->timer);
    opsc_wake_close(&s->async, on_wake_closed);
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}

void opsc_spool_close(opsc_spool_t *s, void (*done)(void *arg), void *arg) {
    s->closing = 1;
    s->close_done = done;
    s->close_arg = arg;
    if (s->retry_wait) {
        /* A failing disk must not hold the shutdown: one more attempt, then give up. */
        uv_timer_stop(&s->timer);
        on_timer(&s->timer);
    }
    if (!s->inflight) {
        uv_timer_stop(&s->timer);
        dispatch(s);
    }
    maybe_finish_close(s);
}

/* ---- metrics ------------------------------------------------------------------------ */

void opsc_spool_metrics(opsc_buf_t *out, void *arg) {
    opsc_spool_t *s = arg;
    opsc_metrics_one_u64(out, "opsc_spool_bytes", "gauge",
                         "Journal bytes held: segment files plus records not yet written",
                         opsc_spool_bytes(s));
    opsc_metrics_one_u64(out, "opsc_spool_capacity_bytes", "gauge", "spool.max_bytes",
                         s->max_bytes);
    opsc_metrics_one_u64(out, "opsc_spool_segments", "gauge", "Journal segment files",
                         (uint64_t)s->nsegs);
    opsc_metrics_family(out, "opsc_spool_records_total", "counter",
                        "Journal records appended, synced to disk, and read back");
    opsc_metrics_sample_u64(out, "opsc_spool_records_total", "event=\"appended\"", s->n_appended);
    opsc_metrics_sample_u64(out, "opsc_spool_records_total", "event=\"synced\"", s->n_synced);
    opsc_metrics_sample_u64(out, "opsc_spool_records_total", "event=\"read\"", s->n_read);
    opsc_metrics_one_u64(out, "opsc_spool_full_refused_total", "counter",
                         "Appends refused because spool.max_bytes was reached", s->n_full);
    opsc_metrics_family(out, "opsc_spool_corrupt_records_total", "counter",
                        "Damaged records found: a torn tail ends the journal, one in the "
                        "middle skips the rest of its segment");
    opsc_metrics_sample_u64(out, "opsc_spool_corrupt_records_total", "where=\"tail\"",
                            s->n_corrupt_tail);
    opsc_metrics_sample_u64(out, "opsc_spool_corrupt_records_total", "where=\"middle\"",
                            s->n_corrupt_middle);
    opsc_metrics_one_u64(out, "opsc_spool_write_errors_total", "counter",
                         "Journal writes or syncs that failed (retried)", s->n_write_errors);
    opsc_metrics_one_u64(out, "opsc_spool_syncs_total", "counter",
                         "Group commits (write + fdatasync) completed", s->n_syncs);
    opsc_metrics_family(out, "opsc_spool_sync_seconds", "gauge",
                        "Group commit latency, from hand-off to synced: last, max, sum");
    opsc_metrics_sample(out, "opsc_spool_sync_seconds", "stat=\"last\"", s->sync_last_s);
    opsc_metrics_sample(out, "opsc_spool_sync_seconds", "stat=\"max\"", s->sync_max_s);
    opsc_metrics_sample(out, "opsc_spool_sync_seconds", "stat=\"sum\"", s->sync_sum_s);
}
