/*
 * UDP listeners for SNMP notifications.
 *
 * Each socket is created with UV_UDP_RECVMMSG, so libuv reads up to
 * UV__MMSG_MAXWIDTH (20 in libuv 1.44) datagrams per recvmmsg(2) into one
 * buffer that alloc_cb hands out: it must hold that many 64 KiB slots, since
 * libuv divides it into 64 KiB chunks and uses min(len / 64 KiB, 20) of
 * them. The buffer belongs to the socket and is reused for every batch:
 * libuv delivers each chunk (UV_UDP_MMSG_CHUNK) and then one
 * UV_UDP_MMSG_FREE call before it asks for a buffer again, so nothing is
 * allocated per datagram or per batch.
 *
 * Datagrams per wake-up (snmp.max_per_wakeup): libuv 1.44 reads recvmmsg
 * batches until it has counted 32 datagrams per readiness event (so 40 with
 * 20-message batches), then goes round the loop. Our cap bounds that
 * explicitly, per socket and loop iteration: alloc_cb hands out only as many
 * slots as the cap has left, so a batch never overshoots it, and once it is
 * reached the socket stops reading at the end of the batch (never in the
 * middle: libuv would drop the rest of the batch) and a prepare handle starts
 * it again just before the next poll. Timers, HTTP and the database run in
 * between. When libuv is about to leave its read loop by itself (it has
 * counted 32), the stop/start pair (two epoll_ctl calls) is skipped: it would
 * change nothing. So caps of 32 and more cost nothing, and caps above 40
 * behave like 40 (see docs/performance.md).
 *
 * Loss is counted where it can be seen: our own drops (no consumer, truncated)
 * and receive errors per listener, and the kernel's receive-buffer overflows
 * from /proc/net/snmp{,6} (per network namespace: libuv's recv path gives no
 * access to SO_RXQ_OVFL's ancillary data).
 */
#include "opsc/udp_listen.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/metrics.h"

#define LOG_COMP "snmp"

/* libuv's recvmmsg batch: 20 messages of at most 64 KiB (UV__MMSG_MAXWIDTH, UV__UDP_DGRAM_MAXSIZE).
 */
#define OPSC__UDP_SLOT (64 * 1024)
#define OPSC__UDP_SLOTS 20
#define OPSC__UDP_RCVBUF (16 * 1024 * 1024)
/* libuv's uv__udp_recvmsg stops reading once it has counted this many datagrams in one event. */
#define OPSC__UDP_LIBUV_COUNT 32

typedef enum {
    OPSC__UDP_DROP_NO_CONSUMER = 0,
    OPSC__UDP_DROP_TRUNCATED,
    OPSC__UDP_DROP_CLOSING,
    OPSC__UDP_NDROP
} opsc__udp_drop_t;

static const char *const opsc__udp_drop_names[OPSC__UDP_NDROP] = {"no_consumer", "truncated",
                                                                  "closing"};

typedef struct opsc__udp_sock_s {
    uv_udp_t udp; /* handle.data = sock */
    opsc_udp_listen_t *owner;
    char name[96]; /* "udp:0.0.0.0:162", "udp6:[::]:162" */
    char *rbuf;    /* OPSC__UDP_SLOTS * OPSC__UDP_SLOT, reused for every batch */
    size_t rbuf_len;
    int initialized;
    int rcvbuf; /* what getsockopt reports (Linux: twice the usable size) */
    uint64_t datagrams;
    uint64_t bytes;
    uint64_t dropped[OPSC__UDP_NDROP];
    uint64_t recv_errors;
    unsigned turn_count; /* datagrams read in this loop iteration */
    int paused;          /* reached the cap: restarted by the prepare handle */
    int over;            /* libuv asked for more after the cap in this iteration */
    uint64_t pauses;
} opsc__udp_sock_t;

struct opsc_udp_listen_s {
    uv_loop_t *loop;
    opsc_udp_datagram_cb cb;
    void *arg;
    opsc_listen_list_t listen;
    opsc__udp_sock_t socks[OPSC_LISTEN_MAX];
    int nsocks;
    int rcvbuf_want; /* bytes asked of the kernel per socket */
    unsigned max_per_wakeup; /* 0: libuv's own limit only */
    uv_prepare_t turn;       /* resets the per-iteration counts, resumes paused sockets */
    int turn_init;
    uint64_t replies_sent;
    uint64_t replies_failed;
    int live; /* handles (sockets, the prepare) whose close callback has not run */
    int closing;
    void (*done)(void *arg);
    void *done_arg;
};

static opsc_log_ratelimit_t opsc__udp_log_rl = OPSC_LOG_RATELIMIT_INIT(10000, 10);

static int sock_port(const uv_udp_t *h) {
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    int err = uv_udp_getsockname(h, (struct sockaddr *)&ss, &len);

    if (err != 0) {
        return err;
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return ntohs(((const struct sockaddr_in *)&ss)->sin_port);
}

static long read_rmem_max(void) {
    FILE *f = fopen("/proc/sys/net/core/rmem_max", "r");
    long v = -1;

    if (f == NULL) {
        return -1;
    }
    if (fscanf(f, "%ld", &v) != 1) {
        v = -1;
    }
    fclose(f);
    return v;
}

/*
 * Ask for a big receive buffer so a trap storm is absorbed by the kernel
 * while the loop is busy. SO_RCVBUFFORCE ignores net.core.rmem_max but needs
 * CAP_NET_ADMIN; SO_RCVBUF is clamped to rmem_max. Never fatal.
 */
static void set_rcvbuf(opsc__udp_sock_t *s) {
    uv_os_fd_t fd;
    int want = s->owner->rcvbuf_want > 0 ? s->owner->rcvbuf_want : OPSC__UDP_RCVBUF;
    int got = 0;
    socklen_t glen = sizeof(got);
    int forced;

    if (uv_fileno((const uv_handle_t *)&s->udp, &fd) != 0) {
        return;
    }
#ifdef SO_RCVBUFFORCE
    forced = setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want)) == 0;
#else
    forced = 0;
#endif
    if (!forced) {
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
    }
    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &glen) != 0) {
        return;
    }
    s->rcvbuf = got;
    /* Linux reports twice the requested size (bookkeeping overhead). */
    if (got / 2 < want) {
        long rmem_max = read_rmem_max();
        opsc_log_warn(LOG_COMP,
                      "%s: receive buffer %d bytes (asked %d); clamped by net.core.rmem_max=%ld: "
                      "raise it (sysctl -w net.core.rmem_max=%d) or grant CAP_NET_ADMIN",
                      s->name, got / 2, want, rmem_max, want);
    } else {
        opsc_log_info(LOG_COMP, "%s: receive buffer %d bytes (kernel reports %d)", s->name, got / 2,
                      got);
    }
}

static void udp_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    opsc__udp_sock_t *s = h->data;
    unsigned cap = s->owner->max_per_wakeup;
    size_t len = s->rbuf_len;

    (void)suggested;
    if (cap > 0 && s->turn_count >= cap) {
        /* A second readiness event in the same iteration (rare): read one, then pause. */
        s->over = 1;
        len = OPSC__UDP_SLOT;
    } else if (cap > 0 && cap - s->turn_count < OPSC__UDP_SLOTS) {
        /* libuv reads len / 64 KiB messages per recvmmsg: never more than the cap has left. */
        len = (size_t)(cap - s->turn_count) * OPSC__UDP_SLOT;
    }
    /* Safe to reuse: libuv is done with the previous batch before it asks again. */
    buf->base = s->rbuf;
    buf->len = s->rbuf != NULL ? len : 0; /* NULL: recv_cb gets UV_ENOBUFS */
}

static void udp_recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags);

/* Cap reached: stop until the prepare handle runs (libuv leaves its read loop at once). */
static void maybe_pause(opsc__udp_sock_t *s) {
    opsc_udp_listen_t *u = s->owner;

    if (u->max_per_wakeup == 0 || s->turn_count < u->max_per_wakeup || s->paused || u->closing) {
        return;
    }
    if (s->turn_count >= OPSC__UDP_LIBUV_COUNT && !s->over) {
        return; /* libuv leaves its read loop now anyway */
    }
    if (uv_udp_recv_stop(&s->udp) == 0) {
        s->paused = 1;
        s->pauses++;
    }
}

static void on_turn(uv_prepare_t *p) {
    opsc_udp_listen_t *u = p->data;
    int i;

    for (i = 0; i < u->nsocks; i++) {
        opsc__udp_sock_t *s = &u->socks[i];
        s->turn_count = 0;
        s->over = 0;
        if (s->paused && !u->closing) {
            s->paused = 0;
            if (uv_udp_recv_start(&s->udp, udp_alloc_cb, udp_recv_cb) != 0) {
                s->recv_errors++;
            }
        }
    }
}

static void udp_recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags) {
    opsc__udp_sock_t *s = h->data;
    opsc_udp_listen_t *u = s->owner;
    unsigned long long suppressed = 0;

    if (flags & UV_UDP_MMSG_FREE) {
        maybe_pause(s); /* end of a batch; the buffer is the socket's own */
        return;
    }
    if (nread < 0) {
        s->recv_errors++;
        if (opsc_log_ratelimit_ok(&opsc__udp_log_rl, &suppressed)) {
            opsc_log_warn(LOG_COMP, "%s: receive: %s (%llu similar suppressed)", s->name,
                          uv_strerror((int)nread), suppressed);
        }
        return;
    }
    if (addr == NULL) {
        return; /* nothing (more) to read: nread is 0 */
    }
    s->datagrams++;
    s->bytes += (uint64_t)nread;
    s->turn_count++;
    if (!(flags & UV_UDP_MMSG_CHUNK)) {
        maybe_pause(s); /* one datagram per read (no recvmmsg): pausing now loses nothing */
    }
    if (flags & UV_UDP_PARTIAL) {
        s->dropped[OPSC__UDP_DROP_TRUNCATED]++;
        return;
    }
    if (u->closing) {
        s->dropped[OPSC__UDP_DROP_CLOSING]++;
        return;
    }
    if (u->cb == NULL) {
        s->dropped[OPSC__UDP_DROP_NO_CONSUMER]++;
        return;
    }
    u->cb(buf->base, (size_t)nread, addr, uv_hrtime(), (int)(s - u->socks), u->arg);
}

static void maybe_finish(opsc_udp_listen_t *u) {
    void (*done)(void *);
    void *arg;

    if (!u->closing || u->live > 0) {
        return;
    }
    done = u->done;
    arg = u->done_arg;
    opsc_free(u);
    if (done != NULL) {
        done(arg);
    }
}

static void sock_closed(uv_handle_t *h) {
    opsc__udp_sock_t *s = h->data;
    opsc_udp_listen_t *u = s->owner;

    opsc_free(s->rbuf);
    s->rbuf = NULL;
    u->live--;
    maybe_finish(u);
}

static void turn_closed(uv_handle_t *h) {
    opsc_udp_listen_t *u = h->data;

    u->live--;
    maybe_finish(u);
}

/* Close every handle; the last close callback frees u (maybe_finish). */
static void close_all(opsc_udp_listen_t *u) {
    int i;

    for (i = 0; i < u->nsocks; i++) {
        if (u->socks[i].initialized) {
            uv_close((uv_handle_t *)&u->socks[i].udp, sock_closed);
        }
    }
    if (u->turn_init) {
        uv_close((uv_handle_t *)&u->turn, turn_closed);
    }
}

static int bind_one(opsc_udp_listen_t *u, int idx, char *errbuf, size_t errlen) {
    const opsc_listen_t *a = &u->listen.addr[idx];
    opsc__udp_sock_t *s = &u->socks[idx];
    struct sockaddr_storage ss;
    unsigned int flags = 0;
    int err;

    s->owner = u;
    opsc_listen_format_port(a, a->port, s->name, sizeof(s->name));
    memset(&ss, 0, sizeof(ss));
    if (a->family == AF_INET6) {
        err = uv_ip6_addr(a->host, a->port, (struct sockaddr_in6 *)&ss);
        flags = UV_UDP_IPV6ONLY; /* so udp:0.0.0.0:P and udp6:[::]:P can both be bound */
    } else {
        err = uv_ip4_addr(a->host, a->port, (struct sockaddr_in *)&ss);
    }
    if (err != 0 || a->port < 0 || a->port > 65535 || a->proto != OPSC_PROTO_UDP ||
        (a->family != AF_INET && a->family != AF_INET6)) {
        opsc_errbuf_printf(errbuf, errlen, "snmp.listen %s: not a numeric UDP address", s->name);
        return OPSC_ECONFIG;
    }
    s->rbuf_len = (size_t)OPSC__UDP_SLOTS * OPSC__UDP_SLOT;
    s->rbuf = opsc_malloc(s->rbuf_len);
    if (s->rbuf == NULL) {
        opsc_errbuf_printf(errbuf, errlen, "snmp.listen %s: out of memory", s->name);
        return OPSC_ENOMEM;
    }
    err = uv_udp_init_ex(u->loop, &s->udp, (unsigned int)a->family | UV_UDP_RECVMMSG);
    if (err != 0) {
        opsc_free(s->rbuf);
        s->rbuf = NULL;
        opsc_errbuf_printf(errbuf, errlen, "snmp.listen %s: %s", s->name, uv_strerror(err));
        return err;
    }
    s->udp.data = s;
    s->initialized = 1;
    u->live++;
    u->nsocks = idx + 1;
    err = uv_udp_bind(&s->udp, (const struct sockaddr *)&ss, flags);
    if (err != 0) {
        opsc_errbuf_printf(errbuf, errlen, "snmp.listen %s: %s%s", s->name, uv_strerror(err),
                err == UV_EACCES ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE)" : "");
        return err;
    }
    if (a->port == 0) {
        opsc_listen_format_port(a, sock_port(&s->udp), s->name, sizeof(s->name));
    }
    set_rcvbuf(s);
    err = uv_udp_recv_start(&s->udp, udp_alloc_cb, udp_recv_cb);
    if (err != 0) {
        opsc_errbuf_printf(errbuf, errlen, "snmp.listen %s: %s", s->name, uv_strerror(err));
        return err;
    }
    opsc_log_info(LOG_COMP, "listening on %s (recvmmsg %s)", s->name,
                  uv_udp_using_recvmmsg(&s->udp) ? "on" : "off");
    return 0;
}

int opsc_udp_listen_start(uv_loop_t *loop, const opsc_listen_list_t *listen, size_t rcvbuf,
                          opsc_udp_datagram_cb cb, void *arg, opsc_udp_listen_t **out, char *errbuf,
                          size_t errlen) {
    opsc_udp_listen_t *u;
    int err = 0;
    int i;

    *out = NULL;
    if (listen == NULL || listen->count <= 0 || listen->count > OPSC_LISTEN_MAX) {
        opsc_errbuf_printf(errbuf, errlen, "snmp.listen: no address to listen on");
        return OPSC_ECONFIG;
    }
    u = opsc_calloc(1, sizeof(*u));
    if (u == NULL) {
        opsc_errbuf_printf(errbuf, errlen, "snmp.listen: out of memory");
        return OPSC_ENOMEM;
    }
    u->loop = loop;
    u->rcvbuf_want = rcvbuf > 0 && rcvbuf <= (size_t)INT32_MAX / 2 ? (int)rcvbuf : 0;
    u->cb = cb;
    u->arg = arg;
    u->listen = *listen;
    uv_prepare_init(loop, &u->turn);
    u->turn.data = u;
    u->turn_init = 1;
    u->live++;
    for (i = 0; i < u->listen.count; i++) {
        err = bind_one(u, i, errbuf, errlen);
        if (err != 0) {
            goto error;
        }
    }
    *out = u;
    return 0;

error:
    /* Close what was opened; the last close callback frees u. */
    u->closing = 1;
    close_all(u);
    return err;
}

void opsc_udp_listen_close(opsc_udp_listen_t *u, void (*done)(void *arg), void *arg) {
    if (u == NULL || u->closing) {
        return;
    }
    u->closing = 1;
    u->done = done;
    u->done_arg = arg;
    close_all(u);
}

void opsc_udp_listen_set_max_per_wakeup(opsc_udp_listen_t *u, unsigned max) {
    if (u == NULL || u->closing) {
        return;
    }
    u->max_per_wakeup = max;
    if (max > 0) {
        /* Runs every iteration but must not keep the loop alive by itself. */
        uv_prepare_start(&u->turn, on_turn);
        uv_unref((uv_handle_t *)&u->turn);
    } else {
        uv_prepare_stop(&u->turn);
        on_turn(&u->turn); /* resume anything paused */
    }
}

uint64_t opsc_udp_listen_pauses(const opsc_udp_listen_t *u) {
    uint64_t n = 0;
    int i;

    for (i = 0; u != NULL && i < u->nsocks; i++) {
        n += u->socks[i].pauses;
    }
    return n;
}

int opsc_udp_listen_port(const opsc_udp_listen_t *u, int idx) {
    if (u == NULL || idx < 0 || idx >= u->nsocks || !u->socks[idx].initialized) {
        return UV_EINVAL;
    }
    return sock_port(&u->socks[idx].udp);
}

int opsc_udp_listen_rcvbuf(const opsc_udp_listen_t *u, int idx) {
    if (u == NULL || idx < 0 || idx >= u->nsocks) {
        return UV_EINVAL;
    }
    return u->socks[idx].rcvbuf;
}

/*
 * Kernel UDP counters. /proc/net/snmp has a header line and a value line per
 * protocol ("Udp: InDatagrams NoPorts InErrors ..." then "Udp: 1 2 3 ...");
 * /proc/net/snmp6 has "Udp6RcvbufErrors  12" lines. A procfs read never
 * touches a disk, so doing it on the loop thread at scrape time is fine.
 */
static int read_snmp4(const char *field, uint64_t *out) {
    FILE *f = fopen("/proc/net/snmp", "r");
    char head[1024];
    char vals[1024];
    int found = 0;

    if (f == NULL) {
        return -1;
    }
    while (!found && fgets(head, sizeof(head), f) != NULL) {
        char *hs;
        char *vs;
        char *h;
        char *v;
        if (strncmp(head, "Udp: ", 5) != 0) {
            continue;
        }
        if (fgets(vals, sizeof(vals), f) == NULL || strncmp(vals, "Udp: ", 5) != 0) {
            break;
        }
        h = strtok_r(head + 5, " \n", &hs);
        v = strtok_r(vals + 5, " \n", &vs);
        while (h != NULL && v != NULL) {
            if (strcmp(h, field) == 0) {
                *out = strtoull(v, NULL, 10);
                found = 1;
                break;
            }
            h = strtok_r(NULL, " \n", &hs);
            v = strtok_r(NULL, " \n", &vs);
        }
        break;
    }
    fclose(f);
    return found ? 0 : -1;
}

static int read_snmp6(const char *field, uint64_t *out) {
    FILE *f = fopen("/proc/net/snmp6", "r");
    char line[256];
    size_t flen = strlen(field);
    int found = 0;

    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, field, flen) == 0 && (line[flen] == ' ' || line[flen] == '\t')) {
            *out = strtoull(line + flen, NULL, 10);
            found = 1;
            break;
        }
    }
    fclose(f);
    return found ? 0 : -1;
}

static void kernel_family(opsc_buf_t *out, const char *metric, const char *help, const char *field4,
                          const char *field6) {
    uint64_t v;

    opsc_metrics_family(out, metric, "counter", help);
    if (read_snmp4(field4, &v) == 0) {
        opsc_metrics_sample_u64(out, metric, "proto=\"udp\"", v);
    }
    if (read_snmp6(field6, &v) == 0) {
        opsc_metrics_sample_u64(out, metric, "proto=\"udp6\"", v);
    }
}

static void label(opsc_buf_t *lb, const opsc__udp_sock_t *s, const char *reason) {
    opsc_buf_reset(lb);
    opsc_buf_appends(lb, "listener=\"");
    opsc_metrics_escape(lb, s->name);
    opsc_buf_appends(lb, "\"");
    if (reason != NULL) {
        opsc_buf_printf(lb, ",reason=\"%s\"", reason);
    }
}

void opsc_udp_listen_metrics(opsc_buf_t *out, void *arg) {
    opsc_udp_listen_t *u = arg;
    opsc_buf_t lb = OPSC_BUF_INIT;
    int i;
    int r;

    if (u == NULL) {
        return;
    }
    opsc_metrics_family(out, "opsc_snmp_datagrams_received_total", "counter",
                        "UDP datagrams received on the SNMP notification listeners.");
    for (i = 0; i < u->nsocks; i++) {
        label(&lb, &u->socks[i], NULL);
        opsc_metrics_sample_u64(out, "opsc_snmp_datagrams_received_total", lb.base,
                                u->socks[i].datagrams);
    }
    opsc_metrics_family(out, "opsc_snmp_bytes_received_total", "counter",
                        "UDP payload bytes received on the SNMP notification listeners.");
    for (i = 0; i < u->nsocks; i++) {
        label(&lb, &u->socks[i], NULL);
        opsc_metrics_sample_u64(out, "opsc_snmp_bytes_received_total", lb.base, u->socks[i].bytes);
    }
    opsc_metrics_family(out, "opsc_snmp_datagrams_dropped_total", "counter",
                        "Received datagrams dropped before decoding, by reason.");
    for (i = 0; i < u->nsocks; i++) {
        for (r = 0; r < OPSC__UDP_NDROP; r++) {
            label(&lb, &u->socks[i], opsc__udp_drop_names[r]);
            opsc_metrics_sample_u64(out, "opsc_snmp_datagrams_dropped_total", lb.base,
                                    u->socks[i].dropped[r]);
        }
    }
    opsc_metrics_family(out, "opsc_snmp_receive_errors_total", "counter",
                        "Failed receive calls on the SNMP notification sockets.");
    for (i = 0; i < u->nsocks; i++) {
        label(&lb, &u->socks[i], NULL);
        opsc_metrics_sample_u64(out, "opsc_snmp_receive_errors_total", lb.base,
                                u->socks[i].recv_errors);
    }
    opsc_metrics_family(out, "opsc_snmp_wakeup_cap_pauses_total", "counter",
                        "Times a listener stopped reading for the rest of a loop iteration because "
                        "it reached snmp.max_per_wakeup.");
    for (i = 0; i < u->nsocks; i++) {
        label(&lb, &u->socks[i], NULL);
        opsc_metrics_sample_u64(out, "opsc_snmp_wakeup_cap_pauses_total", lb.base,
                                u->socks[i].pauses);
    }
    opsc_metrics_family(out, "opsc_snmp_socket_receive_buffer_bytes", "gauge",
                        "Receive buffer granted by the kernel (as getsockopt reports it).");
    for (i = 0; i < u->nsocks; i++) {
        label(&lb, &u->socks[i], NULL);
        opsc_metrics_sample_u64(out, "opsc_snmp_socket_receive_buffer_bytes", lb.base,
                                (uint64_t)(u->socks[i].rcvbuf > 0 ? u->socks[i].rcvbuf : 0));
    }
    opsc_buf_free(&lb);
    kernel_family(out, "opsc_udp_kernel_rcvbuf_errors_total",
                  "UDP datagrams the kernel dropped because a socket receive buffer was full. "
                  "Machine-wide (whole network namespace, every UDP socket), from /proc/net/snmp.",
                  "RcvbufErrors", "Udp6RcvbufErrors");
    kernel_family(out, "opsc_udp_kernel_in_errors_total",
                  "UDP datagrams the kernel failed to deliver (includes buffer overflows and bad "
                  "checksums). Machine-wide (whole network namespace), from /proc/net/snmp.",
                  "InErrors", "Udp6InErrors");
}

int opsc_udp_listen_send(opsc_udp_listen_t *u, int idx, const void *data, size_t len,
                         const struct sockaddr *to) {
    if (idx < 0 || idx >= u->nsocks || u->closing || len > 65507) {
        u->replies_failed++;
        return UV_EINVAL;
    }
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)data, (unsigned)len);
    /* A reply is one small datagram: try_send never blocks; EAGAIN means the
     * socket's send buffer is full, and the sender will retransmit. */
    int rc = uv_udp_try_send(&u->socks[idx].udp, &b, 1, to);
    if (rc < 0) {
        u->replies_failed++;
        return rc;
    }
    u->replies_sent++;
    return 0;
}
