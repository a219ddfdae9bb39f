#ifndef OPSC_OPS_SERVER_H
#define OPSC_OPS_SERVER_H

#include <uv.h>

#include "opsc/buf.h"
#include "opsc/config.h"

/*
 * The HTTP/1.1 server (llhttp), plain and TLS listeners side by side. It
 * answers the operations endpoints itself; the API registers its routes
 * with opsc_ops_server_add_routes (handlers: opsc/http.h).
 *
 *   GET /health   200 {"status":"ok"} while the process runs
 *   GET /ready    200 {"status":"ready"} or 503 {"status":"not_ready","reasons":[...]}
 *   GET /metrics  Prometheus text format 0.0.4
 *
 * Keep-alive and pipelined requests are answered in order; request bodies by
 * Content-Length or chunked; "Expect: 100-continue" gets 100 Continue only
 * when the request will be accepted (route, method, content type and
 * declared length all fine), else its final status at once. Other methods on
 * a path get 405 with Allow; unknown paths 404; all errors are JSON:
 * {"error":{"code":"not_found","message":"no route for /x"}}.
 *
 * Limits: request line + headers over max_header_bytes or more than
 * max_headers fields -> 431, URL over max_url_bytes -> 414, body over the
 * route's limit -> 413 (at once when declared), wrong body type -> 415,
 * malformed -> 400, headers not complete within header_timeout_ms of the
 * first byte or a body silent for body_timeout_ms -> 408; each of these
 * closes the connection after the response. A complete request whose
 * handler answers later is never timed out meanwhile. Connections beyond
 * max_connections are accepted and closed at once (counted). A TLS client
 * that does not finish its handshake within tls_handshake_timeout_ms is
 * closed.
 *
 * Everything runs on the loop thread; no function here may be called from
 * another thread.
 */

#include "opsc/http.h"

typedef struct opsc_ops_server_s opsc_ops_server_t;

/** Readiness: returns 1 when ready; otherwise appends reason strings with add(). */
typedef int (*opsc_ready_cb)(void *arg, void (*add)(void *ctx, const char *reason), void *ctx);
/** Metrics: render everything into out. */
typedef void (*opsc_metrics_cb)(void *arg, opsc_buf_t *out);

typedef struct opsc_ops_server_options_s {
    const opsc_listen_list_t *listen;     /* copied by start */
    int max_connections;                  /* <= 0: 1024 */
    int max_header_bytes;                 /* <= 0: 16 KiB */
    int idle_timeout_ms;                  /* <= 0: 60 s; also bounds a stalled write */
    opsc_ready_cb ready;                  /* NULL: always ready */
    opsc_metrics_cb metrics;              /* NULL: only the server's own families */
    void *arg;                            /* passed to ready and metrics */
    int header_timeout_ms;                /* <= 0: 10 s (slowloris bound, from the first byte) */
    int body_timeout_ms;                  /* <= 0: 30 s of silence while a body arrives */
    int max_headers;                      /* <= 0: 100 header fields */
    size_t max_url_bytes;                 /* 0: 8 KiB */
    size_t max_body_bytes;                /* 0: 1 MiB (routes may declare more) */
    const opsc_listen_list_t *tls_listen; /* NULL or empty: no TLS listener; copied */
    const char *tls_cert;                 /* PEM paths, read by start */
    const char *tls_key;
    int tls_handshake_timeout_ms; /* <= 0: 10 s */
} opsc_ops_server_options_t;

/**
 * Bind and listen on every address of opts->listen and opts->tls_listen
 * (IPv6 sockets are IPv6-only, so 0.0.0.0:P and [::]:P can both be listed).
 * On failure returns the libuv error (or OPSC_ECONFIG / OPSC_ENOMEM), writes
 * one line naming the address or file and the reason into errbuf
 * ("http.listen 0.0.0.0:8080: address already in use", "http.tls.cert
 * /x.pem: ..."), and starts closing whatever it opened: that memory is
 * released by close callbacks, so run the loop once more before
 * uv_loop_close. `ready` and `metrics` are called on the loop thread, from
 * inside a request; they must not close the server.
 * If SIGPIPE still has its default action, start sets it to SIG_IGN (a client
 * that resets its connection must not kill the process).
 */
int opsc_ops_server_start(uv_loop_t *loop, const opsc_ops_server_options_t *opts,
                          opsc_ops_server_t **out, char *errbuf, size_t errlen);
/**
 * Add a table of routes (kept by pointer: static storage) with the `arg`
 * its handlers get. Tables are searched in the order added, after the
 * operations endpoints; the first route whose path matches and allows the
 * method wins. At most 16 tables. Returns 0 or OPSC_ENOMEM (table full).
 */
/** Install the authenticator for routes with roles (none: such routes answer 401). */
void opsc_ops_server_set_authenticator(opsc_ops_server_t *srv, opsc_http_auth_fn fn, void *arg);
/** Install the audit hook (opsc_http_audit_fn) for mutating requests to routes with roles. */
void opsc_ops_server_set_audit(opsc_ops_server_t *srv, opsc_http_audit_fn fn, void *arg);
int opsc_ops_server_add_routes(opsc_ops_server_t *srv, const opsc_http_route_t *routes, size_t n,
                               void *arg);
/**
 * Stop accepting; close idle connections at once; connections with a request
 * or a response in progress finish it (answered with Connection: close) and
 * then close. `done(arg)` is called once, from a close callback, after every
 * handle closed and the server memory was freed. Call once.
 * The caller bounds the wait: see opsc_ops_server_abort.
 */
void opsc_ops_server_close(opsc_ops_server_t *srv, void (*done)(void *arg), void *arg);
/**
 * After opsc_ops_server_close: close every remaining connection now (the
 * shutdown deadline passed). `done` still fires from the close callbacks.
 */
void opsc_ops_server_abort(opsc_ops_server_t *srv);
/** Number of open client connections (rejected ones are never counted). */
int opsc_ops_server_connections(const opsc_ops_server_t *srv);
/**
 * Bound port of listener idx (useful with port 0), or a negative error: the
 * addresses of opts->listen first, then those of opts->tls_listen.
 */
int opsc_ops_server_port(const opsc_ops_server_t *srv, int idx);
/**
 * The server's own families (opsc_http_*). /metrics appends them after
 * opts->metrics unless opts->metrics already rendered them (it may register
 * this function as a collector: it is not rendered twice).
 */
void opsc_ops_server_metrics(opsc_buf_t *out, void *srv);

#endif
