/*
 * Plain TCP behind the transport interface: each call is the libuv stream
 * call, with the callbacks translated to take the transport.
 */
#include "opsc/transport.h"

static void tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    opsc_transport_t *t = h->data;

    t->alloc_cb(t, suggested, buf);
}

static void tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    opsc_transport_t *t = s->data;

    if (t->closing) {
        return;
    }
    t->read_cb(t, nread, buf);
}

static int tcp_read_start(opsc_transport_t *t, opsc_transport_alloc_cb a,
                          opsc_transport_read_cb r) {
    t->alloc_cb = a;
    t->read_cb = r;
    return uv_read_start((uv_stream_t *)&t->tcp, tcp_alloc, tcp_read);
}

static void tcp_read_stop(opsc_transport_t *t) {
    uv_read_stop((uv_stream_t *)&t->tcp);
}

static void tcp_write_done(uv_write_t *w, int status) {
    opsc_transport_t *t = w->data;

    t->write_cb(t, status);
}

static int tcp_write(opsc_transport_t *t, const uv_buf_t *bufs, unsigned int nbufs,
                     opsc_transport_write_cb cb) {
    t->write_cb = cb;
    t->wreq.data = t;
    return uv_write(&t->wreq, (uv_stream_t *)&t->tcp, bufs, nbufs, tcp_write_done);
}

static void tcp_shutdown_done(uv_shutdown_t *r, int status) {
    opsc_transport_t *t = r->data;

    t->shutdown_cb(t, status);
}

static int tcp_shutdown(opsc_transport_t *t, opsc_transport_shutdown_cb cb) {
    t->shutdown_cb = cb;
    t->sreq.data = t;
    return uv_shutdown(&t->sreq, (uv_stream_t *)&t->tcp, tcp_shutdown_done);
}

static void tcp_closed(uv_handle_t *h) {
    opsc_transport_t *t = h->data;

    if (t->close_cb != NULL) {
        t->close_cb(t);
    }
}

static void tcp_close(opsc_transport_t *t, opsc_transport_close_cb cb) {
    if (t->closing) {
        return;
    }
    t->closing = 1;
    t->close_cb = cb;
    uv_close((uv_handle_t *)&t->tcp, tcp_closed);
}

static int tcp_ready(const opsc_transport_t *t) {
    (void)t;
    return 1;
}

static const opsc_transport_vtable_t opsc__tcp_vtable = {
    .name = "tcp",
    .read_start = tcp_read_start,
    .read_stop = tcp_read_stop,
    .write = tcp_write,
    .shutdown = tcp_shutdown,
    .close = tcp_close,
    .ready = tcp_ready,
};

int opsc_transport_tcp_init(uv_loop_t *loop, opsc_transport_t *t) {
    int err = uv_tcp_init(loop, &t->tcp);

    if (err != 0) {
        return err;
    }
    t->tcp.data = t;
    t->vt = &opsc__tcp_vtable;
    t->tls = NULL;
    t->closing = 0;
    return 0;
}
