#ifndef OPSC_HTTP_OPS_SERVER_INT_H
#define OPSC_HTTP_OPS_SERVER_INT_H

/*
 * Module-private types of the HTTP server (src/http/ops_server.c). Exposed to
 * the unit tests and to the API server that grows from this one (issue 4):
 * routes, the request, and the response writer are the seams it extends.
 */

#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>
#include <uv.h>

#include "opsc/buf.h"
#include "opsc/config.h"
#include "opsc/http.h"
#include "opsc/ops_server.h"
#include "opsc/transport.h"

#define OPSC__HTTP_DEFAULT_MAX_URL 8192
#define OPSC__HTTP_DEFAULT_MAX_BODY (1024 * 1024)
#define OPSC__HTTP_DEFAULT_MAX_HEADERS 100
#define OPSC__HTTP_DEFAULT_MAX_CONNECTIONS 1024
#define OPSC__HTTP_DEFAULT_MAX_HEADER_BYTES (16 * 1024)
#define OPSC__HTTP_DEFAULT_IDLE_MS 60000
#define OPSC__HTTP_DEFAULT_HEADER_MS 10000
#define OPSC__HTTP_DEFAULT_BODY_MS 30000
#define OPSC__HTTP_DEFAULT_HANDSHAKE_MS 10000
#define OPSC__HTTP_MAX_ROUTE_TABLES 16
/* After the last response of a closing connection: how long to drain input. */
#define OPSC__HTTP_LINGER_MS 2000
/* Stop parsing further pipelined requests while this much output waits. */
#define OPSC__HTTP_OUT_HIGH_WATER (256 * 1024)
#define OPSC__HTTP_READ_CHUNK (16 * 1024)

/* Intrusive doubly linked list (libuv uv__queue style). */
typedef struct opsc__http_link_s {
    struct opsc__http_link_s *prev;
    struct opsc__http_link_s *next;
} opsc__http_link_t;

static inline void opsc__http_list_init(opsc__http_link_t *head) {
    head->prev = head;
    head->next = head;
}

static inline void opsc__http_list_insert_tail(opsc__http_link_t *head, opsc__http_link_t *l) {
    l->next = head;
    l->prev = head->prev;
    head->prev->next = l;
    head->prev = l;
}

static inline void opsc__http_list_remove(opsc__http_link_t *l) {
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l;
    l->next = l;
}

/* One header: offsets into the request's hbuf, where name and value are NUL-terminated. */
typedef struct opsc__http_header_s {
    uint32_t name_off;
    uint32_t name_len;
    uint32_t value_off;
    uint32_t value_len;
} opsc__http_header_t;

typedef struct opsc__http_route_table_s {
    const opsc_http_route_t *routes;
    size_t n;
    void *arg;
} opsc__http_route_table_t;

/* One request; reset between requests of a connection. */
typedef struct opsc_http_req_s opsc__http_req_t;
struct opsc_http_req_s {
    int method; /* llhttp_method_t */
    int http_major;
    int http_minor;
    int keep_alive;               /* llhttp_should_keep_alive at headers complete */
    int headers_done;             /* method, version, path and headers are valid */
    opsc_buf_t url;               /* raw request-target */
    const char *path;             /* points into `target`: path without query */
    const char *query;            /* after '?', or "" */
    opsc_buf_t target;            /* url copy split into path\0query\0 */
    opsc_buf_t hbuf;              /* header names and values, NUL separated */
    opsc__http_header_t *headers; /* grown up to opts.max_headers */
    int nheaders;
    int headers_cap;
    int in_field; /* header callback state (values may arrive in pieces) */
    int in_value;
    size_t header_bytes; /* URL + header names and values (+4 per header) vs the limit */
    opsc_buf_t body;
    /* Resolved at headers complete; NULL: no route or method (answered at the end). */
    const opsc_http_route_t *route;
    void *route_arg;
    size_t body_limit;
    size_t body_seen; /* body bytes received, kept or not */
    int refused;      /* 404/405/415 decided at headers complete, answered at the end */
    int authenticated;
    opsc_principal_t principal;
    int discard_body; /* refused: count the body against the limit, keep none of it */
};

typedef enum {
    OPSC__HTTP_IDLE = 0, /* between requests: idle timer */
    OPSC__HTTP_HEADERS,  /* first byte seen: header timer (not reset by reads) */
    OPSC__HTTP_BODY,     /* headers complete: idle timer, reset by reads */
    OPSC__HTTP_DRAINING, /* last response queued: write it, then shut down */
    OPSC__HTTP_LINGER,   /* FIN sent: discard input until EOF or the linger timer */
} opsc__http_state_t;

typedef struct opsc_http_conn_s opsc__http_conn_t;
struct opsc_http_conn_s {
    opsc_transport_t tx;    /* plain TCP or TLS; tx.data = conn */
    uv_timer_t timer;       /* one timer, re-armed for the current state */
    opsc__http_link_t link; /* srv->conns */
    opsc_ops_server_t *srv;
    llhttp_t parser;
    opsc__http_req_t req;
    opsc_buf_t in;   /* input; alloc_cb reserves here */
    size_t in_off;   /* bytes of `in` already given to llhttp */
    opsc_buf_t out;  /* responses queued while a write is in flight */
    opsc_buf_t wbuf; /* bytes of the write in flight */
    opsc__http_state_t state;
    int handles;    /* uv handles still to close */
    int err_status; /* HTTP status a parser callback chose for its error */
    const char *err_code;
    const char *err_message;
    opsc_buf_t err_extra; /* header lines for that error (405's Allow) */
    char peer[48];
    const opsc_http_upgrade_t *upgrade; /* set by opsc_http_upgrade: parse no further */
    void *upgrade_arg;
    unsigned writing : 1;
    unsigned reading : 1;
    unsigned closing : 1; /* uv_close called; freed from the last close callback */
    unsigned counted : 1; /* included in srv->nconns */
    unsigned timer_open : 1;
    unsigned in_request : 1;        /* message begun and not yet answered */
    unsigned awaiting_response : 1; /* complete request, handler answers later */
    unsigned in_process : 1;        /* inside conn_process (and llhttp): do not re-enter */
    unsigned force_close : 1;       /* the next answer says Connection: close */
    unsigned peer_eof : 1;
    unsigned handshaking : 1; /* TLS: handshake timer armed, not yet ready */
    unsigned upgraded : 1;    /* the transport was handed to c->upgrade->start */
};

typedef struct opsc__http_listener_s {
    uv_tcp_t tcp; /* handle.data = listener */
    opsc_ops_server_t *srv;
    char name[96]; /* "0.0.0.0:8080", "[::]:8080" */
    int initialized;
    int tls;
} opsc__http_listener_t;

/* Statuses we count by code; anything else is "other". */
#define OPSC__HTTP_CODES(X)                                                                        \
    X(200)                                                                                         \
    X(201)                                                                                         \
    X(202)                                                                                         \
    X(204) X(400) X(401) X(403) X(404) X(405) X(408) X(409) X(413) X(414) X(415) X(417) X(422)     \
        X(429) X(431) X(500) X(503)
#define OPSC__HTTP_NCODES 21 /* the list above plus "other" */

struct opsc_ops_server_s {
    uv_loop_t *loop;
    opsc_ops_server_options_t opts; /* defaults applied; opts.listen points at `listen` */
    opsc_listen_list_t listen;
    opsc_listen_list_t tls_listen;
    opsc__http_listener_t listeners[2 * OPSC_LISTEN_MAX]; /* plain, then TLS */
    opsc_tls_server_t *tls;
    opsc__http_route_table_t tables[OPSC__HTTP_MAX_ROUTE_TABLES];
    int ntables;
    int nlisteners;
    opsc__http_link_t conns;
    int nconns; /* counted (not rejected) connections not yet closing */
    int live;   /* listeners + connections whose memory is not yet freed */
    int closing;
    opsc_http_auth_fn auth_fn;
    void *auth_arg;
    opsc_http_audit_fn audit_fn;
    void *audit_arg;
    void (*done)(void *arg);
    void *done_arg;
    int rendering;     /* inside opts.metrics during /metrics */
    int self_rendered; /* opsc_ops_server_metrics ran inside it */
    /* Date header cache, refreshed once per second. */
    int64_t date_sec;
    char date[40];
    /* Counters (loop thread only). */
    uint64_t accepted;
    uint64_t rejected;
    uint64_t accept_errors;
    uint64_t tls_handshake_failures;
    uint64_t continues; /* 100 Continue sent */
    uint64_t requests[OPSC__HTTP_NCODES];
};

#define OPSC__HTTP_M(m) OPSC_HTTP_M(m)

/**
 * Queue one complete response on the connection: status line, Server, Date,
 * Content-Type (if ctype), Content-Length, `extra` (preformatted
 * "Name: value\r\n" lines or NULL), Connection; body omitted for HEAD.
 * Ends the current request. Never fails: on allocation failure the
 * connection is closed.
 */
void opsc__http_respond(opsc__http_conn_t *c, int status, const char *ctype, const char *extra,
                        const void *body, size_t len);
/** Respond with the project's JSON error body {"error":{"code":..,"message":..}}. */
void opsc__http_respond_error(opsc__http_conn_t *c, int status, const char *code,
                              const char *message, const char *extra);
/** Case-insensitive header lookup on a complete request; NULL when absent. */
const char *opsc__http_req_header(const opsc__http_req_t *req, const char *name);
/** IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") of t into out (>= 30 bytes). */
void opsc__http_format_date(int64_t t, char *out, size_t outlen);

/*
 * In-process seam for the HTTP fuzzer (tests/fuzz/fuzz_http_request.c) and
 * unit tests: the whole request path (parser, limits, routing, answers)
 * over a transport of the caller's, no listener and no socket. The test
 * transport (tests/support/mem_transport.h) keeps its state in t->impl.
 */

/**
 * A server with no listener: opts as for opsc_ops_server_start, with listen
 * and tls_listen ignored. Add routes as usual; end it with
 * opsc_ops_server_close (then run the loop until done): with no connection
 * left open, done runs before close returns.
 */
int opsc__http_server_create(uv_loop_t *loop, const opsc_ops_server_options_t *opts,
                             opsc_ops_server_t **out);

/** Initialise t in place (set t->vt and anything the transport needs); 0 or a negative error. */
typedef int (*opsc__http_transport_init_fn)(uv_loop_t *loop, opsc_transport_t *t, void *arg);

/**
 * Serve one more connection on srv, as if accepted from a plain listener,
 * over the transport that init(loop, &c->tx, arg) sets up. On success the
 * connection is counted (or refused and closed, like an accept beyond
 * max_connections), reading has started, and *out is the connection: valid
 * until its transport's close callback ran. On failure (init's error, or
 * OPSC_ENOMEM) nothing was created. Only the fuzzer and tests use this.
 */
int opsc__http_conn_attach(opsc_ops_server_t *srv, opsc__http_transport_init_fn init, void *arg,
                           opsc__http_conn_t **out);

#endif
