#ifndef OPSC_TRANSPORT_H
#define OPSC_TRANSPORT_H

/*
 * One byte-stream interface for plain TCP and TLS (STYLE.md 13), so the HTTP
 * and WebSocket code never know which one they have. The calls mirror
 * libuv's stream calls (read_start with an alloc and a read callback, one
 * write, shutdown, close) and keep their contracts:
 *
 *  - read_cb(t, n > 0, buf): n bytes of plaintext were placed in the buffer
 *    that alloc_cb returned; n == 0: nothing this time (for TLS also "the
 *    handshake just completed": see opsc_transport_ready); n < 0: UV_EOF
 *    (the peer closed its side; for TLS a close_notify or a bare FIN) or an
 *    error (UV_EPROTO for a TLS failure). After an error or EOF reading has
 *    stopped.
 *  - write: at most one write in flight per transport; write_cb fires once,
 *    with 0 when every byte was handed to the kernel, or a negative error
 *    (UV_ECANCELED when the transport was closed first).
 *  - shutdown: after the writes queued so far, send FIN (TLS: close_notify
 *    first); shutdown_cb fires once.
 *  - close: may be called at any time, from any of the transport's callbacks;
 *    write and shutdown callbacks still pending fire with UV_ECANCELED first,
 *    then close_cb, after which the owner may free the memory holding t.
 *
 * Everything runs on the loop thread. Callbacks may call any function of the
 * same transport, including close; read_start may be called from inside
 * read_cb.
 */

#include <stddef.h>

#include <uv.h>

typedef struct opsc_transport_s opsc_transport_t;
/** TLS server settings (certificate, key, RNG) shared by every TLS connection of a listener. */
typedef struct opsc_tls_server_s opsc_tls_server_t;

typedef void (*opsc_transport_alloc_cb)(opsc_transport_t *t, size_t suggested, uv_buf_t *buf);
typedef void (*opsc_transport_read_cb)(opsc_transport_t *t, ssize_t nread, const uv_buf_t *buf);
typedef void (*opsc_transport_write_cb)(opsc_transport_t *t, int status);
typedef void (*opsc_transport_shutdown_cb)(opsc_transport_t *t, int status);
typedef void (*opsc_transport_close_cb)(opsc_transport_t *t);

typedef struct opsc_transport_vtable_s {
    const char *name; /* "tcp", "tls" */
    int (*read_start)(opsc_transport_t *t, opsc_transport_alloc_cb alloc_cb,
                      opsc_transport_read_cb read_cb);
    void (*read_stop)(opsc_transport_t *t);
    int (*write)(opsc_transport_t *t, const uv_buf_t *bufs, unsigned int nbufs,
                 opsc_transport_write_cb cb);
    int (*shutdown)(opsc_transport_t *t, opsc_transport_shutdown_cb cb);
    void (*close)(opsc_transport_t *t, opsc_transport_close_cb cb);
    /** 1 once application data can flow (TLS: handshake complete). */
    int (*ready)(const opsc_transport_t *t);
} opsc_transport_vtable_t;

struct opsc__tls_conn_s;

struct opsc_transport_s {
    uv_tcp_t tcp; /* handle.data = the transport; accept into it */
    const opsc_transport_vtable_t *vt;
    void *data;                   /* the owner's */
    struct opsc__tls_conn_s *tls; /* TLS state; NULL for plain TCP */
    void *impl;                   /* a test transport's state; NULL for TCP and TLS */
    uv_write_t wreq;
    uv_shutdown_t sreq;
    opsc_transport_alloc_cb alloc_cb;
    opsc_transport_read_cb read_cb;
    opsc_transport_write_cb write_cb;
    opsc_transport_shutdown_cb shutdown_cb;
    opsc_transport_close_cb close_cb;
    int pending_closes; /* uv handles still to close */
    unsigned closing : 1;
};

/** Initialise t as a plain TCP transport (uv_tcp_init); uv_accept into &t->tcp next. */
int opsc_transport_tcp_init(uv_loop_t *loop, opsc_transport_t *t);

/**
 * Load the certificate chain and key (PEM files) and build the TLS server
 * settings: TLS 1.2 at least, ECDHE with AES-GCM or ChaCha20-Poly1305 only.
 * On failure returns OPSC_ECONFIG (or OPSC_ENOMEM) with one line naming the
 * file and the reason in errbuf.
 */
int opsc_tls_server_create(const char *cert_path, const char *key_path, opsc_tls_server_t **out,
                           char *errbuf, size_t errlen);
/** Free the settings; every transport made from them must be closed (close_cb ran) first. */
void opsc_tls_server_destroy(opsc_tls_server_t *srv);
/** The TLS versions the library can speak, for the log: "TLSv1.2". */
const char *opsc_tls_versions(void);

/**
 * Initialise t as a server-side TLS transport over TCP; uv_accept into
 * &t->tcp next. The handshake runs once reading starts, driven by the
 * loop: mbedTLS reads and writes our own buffers, never the socket.
 */
int opsc_transport_tls_init(uv_loop_t *loop, opsc_transport_t *t, opsc_tls_server_t *srv);

static inline int opsc_transport_read_start(opsc_transport_t *t, opsc_transport_alloc_cb a,
                                            opsc_transport_read_cb r) {
    return t->vt->read_start(t, a, r);
}
static inline void opsc_transport_read_stop(opsc_transport_t *t) {
    t->vt->read_stop(t);
}
static inline int opsc_transport_write(opsc_transport_t *t, const uv_buf_t *bufs,
                                       unsigned int nbufs, opsc_transport_write_cb cb) {
    return t->vt->write(t, bufs, nbufs, cb);
}
static inline int opsc_transport_shutdown(opsc_transport_t *t, opsc_transport_shutdown_cb cb) {
    return t->vt->shutdown(t, cb);
}
static inline void opsc_transport_close(opsc_transport_t *t, opsc_transport_close_cb cb) {
    t->vt->close(t, cb);
}
static inline int opsc_transport_ready(const opsc_transport_t *t) {
    return t->vt->ready(t);
}

#endif
