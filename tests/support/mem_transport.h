#ifndef OPSC_TEST_MEM_TRANSPORT_H
#define OPSC_TEST_MEM_TRANSPORT_H

/*
 * An in-memory transport (opsc/transport.h) for driving the HTTP server
 * without sockets: the fuzzer (tests/fuzz/fuzz_http_request.c) and unit
 * tests attach it with opsc__http_conn_attach(srv, opsc_test_mem_init, &m).
 *
 * The test plays the client and the kernel: opsc_test_mem_send queues bytes,
 * opsc_test_mem_pump delivers them as reads and completes the write or
 * shutdown in flight, each callback from the pump, never from inside the
 * call that started it (as libuv would). Everything written is kept in
 * `wire`. The handle behind close is the transport's uv_tcp_t, initialised
 * with no socket, so close callbacks come from the loop as for TCP.
 *
 * Contract breaches by the server (a second write in flight, a write after
 * shutdown, any call after close) are recorded in `violation` rather than
 * crashing here, so the caller decides how to fail. The state belongs to
 * the test and outlives the transport: inspect it after the close.
 */

#include <string.h>

#include <uv.h>

#include "opsc/buf.h"
#include "opsc/transport.h"

typedef struct opsc_test_mem_s {
    opsc_transport_t *t; /* NULL once close_cb ran */
    opsc_buf_t in;       /* client bytes queued; in_off of them read */
    size_t in_off;
    size_t read_max;   /* bytes per read at most; 0: as many as alloc_cb gives */
    int eof;           /* after `in`, the client half-closes */
    int eof_delivered; /* read_cb(UV_EOF) ran */
    int hold_writes;   /* pump leaves the write in flight pending */
    opsc_buf_t wire;   /* every byte the server wrote, in order */
    int reading;
    int writing;  /* a write's callback still to run */
    int shutting; /* a shutdown's callback still to run */
    int shut;     /* shutdown was called */
    int closed;   /* close was called */
    int close_done;
    const char *violation; /* the first contract breach, or NULL */
} opsc_test_mem_t;

static inline opsc_test_mem_t *opsc__test_mem(opsc_transport_t *t) {
    return t->impl;
}

static inline void opsc__test_mem_breach(opsc_test_mem_t *m, const char *what) {
    if (m->violation == NULL) {
        m->violation = what;
    }
}

static inline int opsc__test_mem_read_start(opsc_transport_t *t, opsc_transport_alloc_cb a,
                                            opsc_transport_read_cb r) {
    opsc_test_mem_t *m = opsc__test_mem(t);

    if (m->closed) {
        opsc__test_mem_breach(m, "read_start after close");
        return UV_EINVAL;
    }
    t->alloc_cb = a;
    t->read_cb = r;
    m->reading = 1;
    return 0;
}

static inline void opsc__test_mem_read_stop(opsc_transport_t *t) {
    opsc__test_mem(t)->reading = 0;
}

static inline int opsc__test_mem_write(opsc_transport_t *t, const uv_buf_t *bufs,
                                       unsigned int nbufs, opsc_transport_write_cb cb) {
    opsc_test_mem_t *m = opsc__test_mem(t);
    unsigned int i;

    if (m->closed || m->shut || m->writing) {
        opsc__test_mem_breach(m, m->closed ? "write after close"
                                 : m->shut ? "write after shutdown"
                                           : "second write in flight");
        return UV_EINVAL;
    }
    for (i = 0; i < nbufs; i++) {
        if (opsc_buf_append(&m->wire, bufs[i].base, bufs[i].len) != 0) {
            return UV_ENOMEM;
        }
    }
    t->write_cb = cb;
    m->writing = 1;
    return 0;
}

static inline int opsc__test_mem_shutdown(opsc_transport_t *t, opsc_transport_shutdown_cb cb) {
    opsc_test_mem_t *m = opsc__test_mem(t);

    if (m->closed || m->shut) {
        opsc__test_mem_breach(m, m->closed ? "shutdown after close" : "second shutdown");
        return UV_EINVAL;
    }
    t->shutdown_cb = cb;
    m->shut = 1;
    m->shutting = 1;
    return 0;
}

static inline void opsc__test_mem_closed(uv_handle_t *h) {
    opsc_transport_t *t = h->data;
    opsc_test_mem_t *m = opsc__test_mem(t);

    /* As libuv does: requests still pending are cancelled before the close callback. */
    if (m->writing) {
        m->writing = 0;
        t->write_cb(t, UV_ECANCELED);
    }
    if (m->shutting) {
        m->shutting = 0;
        t->shutdown_cb(t, UV_ECANCELED);
    }
    m->t = NULL;
    m->close_done = 1;
    if (t->close_cb != NULL) {
        t->close_cb(t); /* may free t */
    }
}

static inline void opsc__test_mem_close(opsc_transport_t *t, opsc_transport_close_cb cb) {
    opsc_test_mem_t *m = opsc__test_mem(t);

    if (t->closing) {
        return;
    }
    t->closing = 1;
    t->close_cb = cb;
    m->closed = 1;
    m->reading = 0;
    uv_close((uv_handle_t *)&t->tcp, opsc__test_mem_closed);
}

static inline int opsc__test_mem_ready(const opsc_transport_t *t) {
    (void)t;
    return 1;
}

static const opsc_transport_vtable_t opsc__test_mem_vtable = {
    .name = "mem",
    .read_start = opsc__test_mem_read_start,
    .read_stop = opsc__test_mem_read_stop,
    .write = opsc__test_mem_write,
    .shutdown = opsc__test_mem_shutdown,
    .close = opsc__test_mem_close,
    .ready = opsc__test_mem_ready,
};

/** An opsc__http_transport_init_fn: arg is the caller's zeroed opsc_test_mem_t. */
static inline int opsc_test_mem_init(uv_loop_t *loop, opsc_transport_t *t, void *arg) {
    opsc_test_mem_t *m = arg;
    int err = uv_tcp_init(loop, &t->tcp); /* no socket: only the close callback is used */

    if (err != 0) {
        return err;
    }
    t->tcp.data = t;
    t->vt = &opsc__test_mem_vtable;
    t->tls = NULL;
    t->impl = m;
    t->closing = 0;
    m->t = t;
    return 0;
}

/** Queue bytes from the client; the next pump delivers them. */
static inline int opsc_test_mem_send(opsc_test_mem_t *m, const void *data, size_t len) {
    return opsc_buf_append(&m->in, data, len);
}

/*
 * Deliver what is due: complete the write in flight (unless hold_writes),
 * then the shutdown, then reads while the server reads (EOF after the
 * queued bytes when m->eof). Returns how many callbacks ran: 0 when nothing
 * moved.
 */
static inline int opsc_test_mem_pump(opsc_test_mem_t *m) {
    int n = 0;

    if (m->t != NULL && m->writing && !m->hold_writes && !m->closed) {
        m->writing = 0;
        n++;
        m->t->write_cb(m->t, 0);
    }
    if (m->t != NULL && m->shutting && !m->writing && !m->closed) {
        m->shutting = 0;
        n++;
        m->t->shutdown_cb(m->t, 0);
    }
    while (m->t != NULL && m->reading && !m->closed) {
        opsc_transport_t *t = m->t;
        size_t avail = m->in.len - m->in_off;
        uv_buf_t buf = uv_buf_init(NULL, 0);

        if (avail == 0 && (!m->eof || m->eof_delivered)) {
            break;
        }
        /* As uv__read: a buffer first, even for the read that finds EOF (TLS does the same). */
        t->alloc_cb(t, 64 * 1024, &buf);
        if (avail == 0) {
            m->eof_delivered = 1;
            m->reading = 0; /* the transport stops reading on EOF */
            n++;
            t->read_cb(t, UV_EOF, &buf);
            break;
        }
        if (buf.base == NULL || buf.len == 0) {
            m->reading = 0;
            n++;
            t->read_cb(t, UV_ENOBUFS, &buf);
            break;
        }
        if (avail > buf.len) {
            avail = buf.len;
        }
        if (m->read_max > 0 && avail > m->read_max) {
            avail = m->read_max;
        }
        memcpy(buf.base, m->in.base + m->in_off, avail);
        m->in_off += avail;
        n++;
        t->read_cb(t, (ssize_t)avail, &buf);
    }
    return n;
}

/** Free the test's buffers (after the transport closed). */
static inline void opsc_test_mem_free(opsc_test_mem_t *m) {
    opsc_buf_free(&m->in);
    opsc_buf_free(&m->wire);
}

#endif
