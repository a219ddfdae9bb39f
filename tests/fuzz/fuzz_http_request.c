/*
 * libFuzzer target: the HTTP/1.1 server (src/http/ops_server.c) as a client
 * connection drives it. Each input is one connection: the bytes go through
 * the real request path (llhttp, header/URL/body limits, chunked bodies,
 * Expect: 100-continue, pipelining, routing, authentication, answers) over
 * the in-memory transport (tests/support/mem_transport.h), without sockets.
 *
 * The first byte picks how the client behaves: read size, whether our
 * writes complete at once or only between the client's sends, whether the
 * handler of /later answers at once or after the next send, and how the
 * connection ends (EOF, server shutdown, or the connection's timer firing).
 *
 * Besides memory safety and leaks it checks the contract:
 *  - the transport's (one write in flight, nothing after shutdown or close);
 *  - what was written is a sequence of well-formed responses (status line
 *    with the right reason, one Content-Length that matches the body,
 *    nothing after a "Connection: close" answer), as many as the server
 *    counted, with one 100 Continue per continue counted;
 *  - a handler runs for a complete request that fits its route (method,
 *    path, body limit and type, role) and its answer is exactly the next
 *    response: never an error answered for the same request as well;
 *  - after the client's EOF the connection ends (no half-open leftover).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#include "http/ops_server_int.h"
#include "opsc/http.h"
#include "opsc/log.h"
#include "opsc/ops_server.h"
#include "support/mem_transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CALLS 256
#define MAX_BODY 1024
#define SMALL_BODY 64
#define SETTLE_ROUNDS 4096 /* bounded even for hundreds of pipelined /later */

#define FLAG_HOLD_WRITES 0x40 /* writes complete only between sends */
#define FLAG_LATE_ANSWER 0x80 /* /later answers after the next send */

#define M(m) OPSC_HTTP_M(m)

typedef struct call_s {
    uint64_t resp_index; /* responses queued before the handler ran: its answer is the next */
    int answered;        /* an answer is expected on the wire */
    int seen;            /* it was there, at resp_index */
} call_t;

/* One input's state; handlers reach it through a static (one connection at a time). */
typedef struct fuzz_s {
    uv_loop_t *loop;
    opsc_ops_server_t *srv;
    opsc__http_conn_t *conn;
    opsc_test_mem_t mem;
    call_t calls[MAX_CALLS];
    int ncalls;
    int pending;             /* a handler's answer is outstanding */
    opsc_http_conn_t *later; /* /later waiting to answer, held */
    int upgrade_call;        /* index of the call that upgraded, or -1 */
    int upgrade_started;
    int upgrade_gone;
    size_t wire_at_upgrade;
    uint64_t queued; /* the server's counts, kept after it is gone */
    uint64_t continues;
    int done;
} fuzz_t;

static fuzz_t *cur;

static uint64_t responses_queued(const opsc_ops_server_t *srv) {
    uint64_t n = 0;

    for (int i = 0; i < OPSC__HTTP_NCODES; i++) {
        n += srv->requests[i];
    }
    return n;
}

/* Check the request a handler got against its route; register the call. */
static int begin_call(opsc_http_conn_t *c, opsc_http_req_t *req, uint64_t methods, size_t limit) {
    size_t len;
    int method = opsc_http_req_method(req);

    if (cur->pending || cur->upgrade_call >= 0) {
        abort(); /* a request dispatched while one is unanswered, or after an upgrade */
    }
    if (!req->headers_done || method < 0 || method >= 64 || (methods & M(method)) == 0) {
        abort();
    }
    (void)opsc_http_req_body(req, &len);
    if (len > limit || len != req->body_seen) {
        abort();
    }
    if (cur->ncalls >= MAX_CALLS) {
        return -1; /* enough recorded: answered without a marker */
    }
    cur->calls[cur->ncalls].resp_index = responses_queued(c->srv);
    cur->calls[cur->ncalls].answered = 1;
    cur->pending = 1;
    return cur->ncalls++;
}

static void answer(opsc_http_conn_t *c, int call, const char *prefix, const char *body,
                   size_t len) {
    char extra[48];
    opsc_buf_t out = OPSC_BUF_INIT;

    snprintf(extra, sizeof(extra), "X-Fuzz-Call: %d\r\n", call);
    /* A prefix, so that no body looks like the next status line (see check_wire). */
    if (opsc_buf_appends(&out, prefix) != 0 || opsc_buf_append(&out, body, len) != 0) {
        abort();
    }
    cur->pending = 0;
    opsc_http_respond(c, 200, "text/plain", call >= 0 ? extra : NULL, out.base, out.len);
    opsc_buf_free(&out);
}

/* The media type is application/json (parameters and case ignored). */
static int is_json(const char *ct) {
    while (ct != NULL && (*ct == ' ' || *ct == '\t')) {
        ct++;
    }
    return ct != NULL && strncasecmp(ct, "application/json", 16) == 0;
}

static void h_echo(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    const char *ct = opsc_http_req_header(req, "Content-Type");
    size_t len;
    const char *body = opsc_http_req_body(req, &len);
    int call = begin_call(c, req, M(OPSC_HTTP_POST) | M(OPSC_HTTP_PUT), MAX_BODY);

    (void)arg;
    if (strcmp(opsc_http_req_path(req), "/echo") != 0) {
        abort();
    }
    if (len > 0 && !is_json(ct)) {
        abort(); /* body_type was not enforced */
    }
    answer(c, call, "echo:", body, len);
}

static void h_small(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    size_t len;
    const char *body = opsc_http_req_body(req, &len);
    int call = begin_call(c, req, M(OPSC_HTTP_POST), SMALL_BODY);

    (void)arg;
    answer(c, call, "small:", body, len);
}

static void h_api(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    const opsc_principal_t *who = opsc_http_req_principal(req);
    const char *path = opsc_http_req_path(req);
    int call =
        begin_call(c, req, M(OPSC_HTTP_GET) | M(OPSC_HTTP_HEAD) | M(OPSC_HTTP_DELETE), MAX_BODY);

    (void)arg;
    if (strncmp(path, "/api/", 5) != 0 || who == NULL ||
        (OPSC_ROLES_OPERATE & OPSC_ROLE_BIT(who->role)) == 0) {
        abort();
    }
    answer(c, call, "api:", path, strlen(path));
}

static void h_later(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    (void)arg;
    if (begin_call(c, req, M(OPSC_HTTP_GET), MAX_BODY) < 0) {
        answer(c, -1, "later", "", 0);
        return;
    }
    opsc_http_hold(c);
    cur->later = c;
}

/* Answer /later (from the test loop, as a database reply would). */
static int answer_later(void) {
    opsc_http_conn_t *c = cur->later;

    if (c == NULL) {
        return 0;
    }
    cur->later = NULL;
    if (opsc_http_conn_gone(c)) {
        cur->calls[cur->ncalls - 1].answered = 0;
        cur->pending = 0;
    } else {
        answer(c, cur->ncalls - 1, "later", "", 0);
    }
    opsc_http_release(c);
    return 1;
}

static void up_start(void *arg, struct opsc_transport_s *t, const char *rest, size_t len) {
    (void)t;
    (void)rest;
    (void)len;
    if (cur->upgrade_started++ != 0 || cur->upgrade_gone) {
        abort();
    }
    cur->wire_at_upgrade = cur->mem.wire.len;
    opsc_http_upgraded_close(arg);
}

static void up_gone(void *arg) {
    (void)arg;
    if (cur->upgrade_gone++ != 0) {
        abort();
    }
}

static const opsc_http_upgrade_t fuzz_upgrade = {.start = up_start, .gone = up_gone};

static void h_ws(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    int call = begin_call(c, req, M(OPSC_HTTP_GET), MAX_BODY);

    (void)arg;
    if (call < 0) {
        answer(c, -1, "ws", "", 0);
        return;
    }
    cur->calls[call].answered = 0;
    cur->pending = 0;
    cur->upgrade_call = call;
    opsc_http_upgrade(c, &fuzz_upgrade, c);
}

static const opsc_http_route_t fuzz_routes[] = {
    {.methods = M(OPSC_HTTP_POST) | M(OPSC_HTTP_PUT),
     .path = "/echo",
     .handler = h_echo,
     .body_type = "application/json"},
    {.methods = M(OPSC_HTTP_POST), .path = "/small", .handler = h_small, .max_body = SMALL_BODY},
    {.methods = M(OPSC_HTTP_GET) | M(OPSC_HTTP_HEAD) | M(OPSC_HTTP_DELETE),
     .path = "/api/",
     .prefix = 1,
     .handler = h_api,
     .roles = OPSC_ROLES_OPERATE},
    {.methods = M(OPSC_HTTP_GET), .path = "/later", .handler = h_later},
    {.methods = M(OPSC_HTTP_GET), .path = "/ws", .handler = h_ws},
};

/* Bearer op: operator; view: viewer (403); many: 429; anything else 401. */
static int fuzz_auth(void *arg, opsc_http_conn_t *c, const opsc_http_req_t *req,
                     opsc_principal_t *out) {
    const char *h = opsc_http_req_header(req, "Authorization");

    (void)arg;
    (void)c;
    if (h == NULL) {
        return 401;
    }
    if (strcmp(h, "Bearer many") == 0) {
        return 429;
    }
    if (strcmp(h, "Bearer op") == 0 || strcmp(h, "Bearer view") == 0) {
        out->role = h[7] == 'o' ? OPSC_ROLE_OPERATOR : OPSC_ROLE_VIEWER;
        snprintf(out->kind, sizeof(out->kind), "token");
        return 0;
    }
    return 401;
}

static void fuzz_audit(void *arg, const opsc_principal_t *who, const char *method, const char *path,
                       int status, const char *peer) {
    (void)arg;
    (void)who;
    if (method == NULL || path == NULL || peer == NULL || status < 100 || status > 599) {
        abort();
    }
}

static void on_done(void *arg) {
    fuzz_t *f = arg;

    f->done = 1;
    f->srv = NULL;
}

/* Run callbacks until nothing moves (bounded): the client's side, then the loop's. */
static void settle(int later_now) {
    for (int i = 0; i < SETTLE_ROUNDS; i++) {
        int moved = opsc_test_mem_pump(&cur->mem);
        if (later_now) {
            moved += answer_later();
        }
        if (cur->srv != NULL) { /* answers are queued only above, never by the loop */
            cur->queued = responses_queued(cur->srv);
            cur->continues = cur->srv->continues;
        }
        uv_run(cur->loop, UV_RUN_NOWAIT);
        if (moved == 0) {
            break;
        }
    }
    uv_run(cur->loop, UV_RUN_NOWAIT); /* close callbacks queued by the last ones */
}

/* The first `what` (2 or 4 bytes of CR LF) in p[0..n), or NULL. */
static const char *find(const char *p, size_t n, const char *what, size_t wlen) {
    for (size_t i = 0; i + wlen <= n; i++) {
        if (memcmp(p + i, what, wlen) == 0) {
            return p + i;
        }
    }
    return NULL;
}

/* One response at p (n bytes left); returns its length, aborts when malformed. */
static size_t check_response(const char *p, size_t n, int *status, int *close, int *call) {
    const char *end = find(p, n, "\r\n\r\n", 4);
    const char *line;
    size_t hlen, clen = 0;
    int ncl = 0;
    char first[64];

    *close = 0;
    *call = -1;
    if (end == NULL || n < 16 || memcmp(p, "HTTP/1.1 ", 9) != 0) {
        abort();
    }
    hlen = (size_t)(end - p) + 4;
    *status = (int)strtol(p + 9, NULL, 10);
    snprintf(first, sizeof(first), "HTTP/1.1 %d %s\r\n", *status, opsc_http_reason(*status));
    if (*status < 100 || *status > 599 || strncmp(p, first, strlen(first)) != 0) {
        abort();
    }
    line = p + strlen(first) - 2;
    if (*status == 100) {
        if (hlen != 25) {
            abort(); /* "HTTP/1.1 100 Continue\r\n\r\n" */
        }
        return hlen;
    }
    for (line = line + 2; line < end + 2;) {
        const char *eol = find(line, (size_t)(end + 2 - line), "\r\n", 2);
        size_t ll = (size_t)(eol - line);
        if (memchr(line, ':', ll) == NULL || memchr(line, '\n', ll) != NULL) {
            abort();
        }
        if (ll > 16 && strncasecmp(line, "Content-Length: ", 16) == 0) {
            clen = strtoul(line + 16, NULL, 10);
            ncl++;
        } else if (ll == 17 && strncasecmp(line, "Connection: close", 17) == 0) {
            *close = 1;
        } else if (ll > 13 && strncmp(line, "X-Fuzz-Call: ", 13) == 0) {
            *call = atoi(line + 13);
        }
        line = eol + 2;
    }
    if (ncl != 1) {
        abort();
    }
    /*
     * A HEAD answer has no body: nothing or the next response follows (no
     * body here starts with a status line: the handlers prefix theirs).
     */
    if (clen > 0 && n > hlen && (n - hlen < 9 || memcmp(p + hlen, "HTTP/1.1 ", 9) != 0)) {
        if (n - hlen < clen) {
            abort();
        }
        hlen += clen;
    }
    return hlen;
}

/* The wire: well-formed responses, matching the server's counts and the handlers' calls. */
static void check_wire(void) {
    const char *p = cur->mem.wire.base;
    size_t n = cur->mem.wire.len;
    uint64_t final = 0, cont = 0;
    int last_close = 0;

    if (cur->upgrade_started && n != cur->wire_at_upgrade) {
        abort(); /* the server wrote after handing the transport over */
    }
    while (n > 0) {
        int status, close, call;
        size_t len;
        if (last_close) {
            abort(); /* something after "Connection: close" */
        }
        len = check_response(p, n, &status, &close, &call);
        if (status == 100) {
            cont++;
        } else {
            if (call >= 0 && (call >= cur->ncalls || cur->calls[call].resp_index != final ||
                              !cur->calls[call].answered || cur->calls[call].seen++)) {
                abort();
            }
            final++;
            last_close = close;
        }
        p += len;
        n -= len;
    }
    for (int i = 0; i < cur->ncalls; i++) {
        if (cur->calls[i].answered && !cur->calls[i].seen) {
            abort(); /* the handler's answer is not where it belongs: another answer took its place
                      */
        }
    }
    if (final != cur->queued || cont != cur->continues) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static uv_loop_t loop;
    static int loop_ready;
    opsc_ops_server_options_t opts = {
        .max_header_bytes = 2048,
        .max_headers = 16,
        .max_url_bytes = 512,
        .max_body_bytes = MAX_BODY,
    };
    fuzz_t f = {.loop = &loop, .upgrade_call = -1};
    size_t step;
    int flags, ending;

    if (size < 1) {
        return 0;
    }
    if (!loop_ready) {
        opsc_log_set_level(OPSC_LOG_ERROR);
        if (uv_loop_init(&loop) != 0) {
            abort();
        }
        loop_ready = 1;
    }
    flags = data[0];
    step = (size_t)(flags & 0x0f) * 7 + 1; /* 1 .. 106 bytes a send */
    ending = (flags >> 4) & 3;             /* 0, 1: EOF; 2: server close; 3: timer */
    data++;
    size--;
    cur = &f;
    if (opsc__http_server_create(&loop, &opts, &f.srv) != 0 ||
        opsc_ops_server_add_routes(f.srv, fuzz_routes, sizeof(fuzz_routes) / sizeof(fuzz_routes[0]),
                                   NULL) != 0) {
        abort();
    }
    opsc_ops_server_set_authenticator(f.srv, fuzz_auth, NULL);
    opsc_ops_server_set_audit(f.srv, fuzz_audit, NULL);
    f.mem.hold_writes = (flags & FLAG_HOLD_WRITES) != 0;
    f.mem.read_max = step * 3;
    if (opsc__http_conn_attach(f.srv, opsc_test_mem_init, &f.mem, &f.conn) != 0) {
        abort();
    }
    for (size_t off = 0; off < size && !f.mem.closed; off += step) {
        size_t n = size - off < step ? size - off : step;
        if (opsc_test_mem_send(&f.mem, data + off, n) != 0) {
            abort();
        }
        answer_later();
        settle(!(flags & FLAG_LATE_ANSWER));
    }
    f.mem.hold_writes = 0;
    settle(!(flags & FLAG_LATE_ANSWER));
    if (ending == 3 && !f.mem.closed && uv_is_active((uv_handle_t *)&f.conn->timer)) {
        /* The header, body, idle or linger timeout, whichever is armed (/later may still wait). */
        f.conn->timer.timer_cb(&f.conn->timer);
    }
    settle(1);
    if (ending == 2) {
        opsc_ops_server_close(f.srv, on_done, &f);
        settle(1);
    }
    f.mem.eof = 1;
    settle(1);
    if (f.mem.violation != NULL) {
        fprintf(stderr, "transport contract: %s\n", f.mem.violation);
        abort();
    }
    if (!f.mem.close_done || f.later != NULL) {
        abort(); /* EOF after everything was answered: the connection must be gone */
    }
    if ((f.upgrade_call >= 0) != (f.upgrade_gone == 1)) {
        abort();
    }
    if (getenv("FUZZ_HTTP_DUMP") != NULL) { /* to read what a crashing input got */
        fwrite(f.mem.wire.base != NULL ? f.mem.wire.base : "", 1, f.mem.wire.len, stderr);
    }
    check_wire();
    if (!f.done) {
        opsc_ops_server_close(f.srv, on_done, &f);
        settle(1);
    }
    if (!f.done) {
        abort();
    }
    opsc_test_mem_free(&f.mem);
    cur = NULL;
    return 0;
}
