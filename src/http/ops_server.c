/*
 * HTTP/1.1 server for the operations endpoints, on llhttp and libuv.
 *
 * One connection = one opsc__http_conn_t embedding its uv_tcp_t and one
 * uv_timer_t. Input goes into the connection's own buffer; llhttp is paused
 * after every complete request, the request is answered (the response is
 * appended to the connection's output buffer and written with uv_write), and
 * parsing resumes with the bytes that follow. That keeps pipelined responses
 * in order, bounds the output a client can make us queue, and leaves room
 * for handlers that answer later (the API server's database calls).
 *
 * A connection ends in one of two ways: conn_close() for errors, timeouts and
 * idle connections, or DRAINING -> LINGER for a response that says
 * "Connection: close" (write it, send FIN, discard input until the peer
 * closes or the linger timer fires, so the kernel does not answer unread
 * input with a RST that could destroy the response). Memory is freed only
 * from the last close callback, never from a callback of the connection's
 * own that may still be on the stack.
 */
#include "ops_server_int.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <jansson.h>

#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/metrics.h"

#define LOG_COMP "http"

static void conn_close(opsc__http_conn_t *c);
static void conn_release(opsc__http_conn_t *c);
static void conn_process(opsc__http_conn_t *c);
static void conn_flush(opsc__http_conn_t *c);

static void handle_health(opsc__http_conn_t *c, opsc__http_req_t *req, void *arg);
static void handle_ready(opsc__http_conn_t *c, opsc__http_req_t *req, void *arg);
static void handle_metrics(opsc__http_conn_t *c, opsc__http_req_t *req, void *arg);

#define GET_HEAD (OPSC__HTTP_M(HTTP_GET) | OPSC__HTTP_M(HTTP_HEAD))

/* The operations endpoints; the API adds its tables with opsc_ops_server_add_routes. */
static const opsc_http_route_t opsc__http_routes[] = {
    {.methods = GET_HEAD, .path = "/health", .handler = handle_health},
    {.methods = GET_HEAD, .path = "/ready", .handler = handle_ready},
    {.methods = GET_HEAD, .path = "/metrics", .handler = handle_metrics},
};

/* opsc/http.h promises llhttp's method numbers. */
_Static_assert((int)OPSC_HTTP_DELETE == (int)HTTP_DELETE && (int)OPSC_HTTP_GET == (int)HTTP_GET &&
                   (int)OPSC_HTTP_HEAD == (int)HTTP_HEAD && (int)OPSC_HTTP_POST == (int)HTTP_POST &&
                   (int)OPSC_HTTP_PUT == (int)HTTP_PUT &&
                   (int)OPSC_HTTP_OPTIONS == (int)HTTP_OPTIONS &&
                   (int)OPSC_HTTP_PATCH == (int)HTTP_PATCH,
               "OPSC_HTTP_* method values must match llhttp's");

static opsc_log_ratelimit_t opsc__http_log_rl = OPSC_LOG_RATELIMIT_INIT(10000, 10);

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */

const char *opsc_http_reason(int status) {
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

static int status_index(int status) {
    int i = 0;
#define OPSC__HTTP_CODE_IDX(code)                                                                  \
    if (status == (code)) {                                                                        \
        return i;                                                                                  \
    }                                                                                              \
    i++;
    OPSC__HTTP_CODES(OPSC__HTTP_CODE_IDX)
#undef OPSC__HTTP_CODE_IDX
    return i; /* "other" */
}

void opsc__http_format_date(int64_t t, char *out, size_t outlen) {
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    time_t tt = (time_t)t;

    if (gmtime_r(&tt, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
        tm.tm_mon > 11) {
        snprintf(out, outlen, "Thu, 01 Jan 1970 00:00:00 GMT");
        return;
    }
    /* Not strftime: %a and %b follow the locale, IMF-fixdate does not. */
    snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static const char *server_date(opsc_ops_server_t *srv) {
    int64_t now = (int64_t)time(NULL);

    if (now != srv->date_sec || srv->date[0] == '\0') {
        srv->date_sec = now;
        opsc__http_format_date(now, srv->date, sizeof(srv->date));
    }
    return srv->date;
}

/*
 * Copy client-supplied text into a message safely: printable ASCII as is,
 * anything else percent-encoded, at most `max` input bytes. Keeps JSON valid
 * UTF-8 and log lines single-line whatever the client sent.
 */
static void append_safe_text(opsc_buf_t *out, const char *s, size_t max) {
    static const char hex[] = "0123456789ABCDEF";
    size_t i;

    for (i = 0; s[i] != '\0' && i < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f) {
            opsc_buf_append(out, &s[i], 1);
        } else {
            char esc[3] = {'%', hex[ch >> 4], hex[ch & 0xf]};
            opsc_buf_append(out, esc, sizeof(esc));
        }
    }
    if (s[i] != '\0') {
        opsc_buf_appends(out, "...");
    }
}

/* json_dumpb into an opsc_buf (no allocator mismatch with jansson's free). */
static int json_to_buf(const json_t *j, opsc_buf_t *out) {
    size_t n;

    if (j == NULL) {
        return OPSC_ENOMEM;
    }
    n = json_dumpb(j, NULL, 0, JSON_COMPACT);
    if (n == 0) {
        return OPSC_ENOMEM;
    }
    if (opsc_buf_reserve(out, n) != 0) {
        return OPSC_ENOMEM;
    }
    if (json_dumpb(j, out->base + out->len, n, JSON_COMPACT) != n) {
        return OPSC_ENOMEM;
    }
    out->len += n;
    out->base[out->len] = '\0';
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */

static void req_reset(opsc__http_req_t *req) {
    req->method = -1;
    req->http_major = 1;
    req->http_minor = 1;
    req->keep_alive = 0;
    req->headers_done = 0;
    opsc_buf_reset(&req->url);
    opsc_buf_reset(&req->target);
    opsc_buf_reset(&req->hbuf);
    opsc_buf_reset(&req->body);
    req->path = "";
    req->query = "";
    req->nheaders = 0;
    req->route = NULL;
    req->route_arg = NULL;
    req->body_limit = 0;
    req->body_seen = 0;
    req->refused = 0;
    req->authenticated = 0;
    memset(&req->principal, 0, sizeof(req->principal));
    req->discard_body = 0;
    req->in_field = 0;
    req->in_value = 0;
    req->header_bytes = 0;
}

static void req_free(opsc__http_req_t *req) {
    opsc_buf_free(&req->url);
    opsc_buf_free(&req->target);
    opsc_buf_free(&req->hbuf);
    opsc_buf_free(&req->body);
    opsc_free(req->headers);
    req->headers = NULL;
    req->headers_cap = 0;
}

const char *opsc__http_req_header(const opsc__http_req_t *req, const char *name) {
    int i;

    if (!req->headers_done || req->hbuf.base == NULL) {
        return NULL;
    }
    for (i = 0; i < req->nheaders; i++) {
        const opsc__http_header_t *h = &req->headers[i];
        if (strcasecmp(req->hbuf.base + h->name_off, name) == 0) {
            return req->hbuf.base + h->value_off;
        }
    }
    return NULL;
}

/*
 * Split the request-target into path and query. Origin-form ("/a?b") is what
 * clients send; absolute-form ("http://host/a?b") is accepted too. The query
 * plays no part in routing.
 */
static int req_split_target(opsc__http_req_t *req) {
    const char *u = req->url.base != NULL ? req->url.base : "";
    const char *q;
    size_t plen;

    if (strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0) {
        const char *slash;
        u = strstr(u, "//") + 2;
        slash = strchr(u, '/');
        u = slash != NULL ? slash : "/";
    }
    q = strchr(u, '?');
    plen = q != NULL ? (size_t)(q - u) : strlen(u);
    if (opsc_buf_append(&req->target, u, plen) != 0 || opsc_buf_append(&req->target, "", 1) != 0) {
        return OPSC_ENOMEM;
    }
    if (q != NULL && opsc_buf_appends(&req->target, q + 1) != 0) {
        return OPSC_ENOMEM;
    }
    req->path = req->target.base;
    req->query = req->target.base + plen + 1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Parser callbacks (llhttp); parser->data is the connection.               */

static void conn_arm_timer(opsc__http_conn_t *c, int ms);
static void conn_timer_cb(uv_timer_t *t);

/* A limit was hit: remember the response; llhttp then stops with an error. */
static int parse_fail(opsc__http_conn_t *c, int status, const char *code, const char *message) {
    c->err_status = status;
    c->err_code = code;
    c->err_message = message;
    llhttp_set_error_reason(&c->parser, message);
    return HPE_USER;
}

static int req_grow_headers(opsc__http_conn_t *c) {
    opsc__http_req_t *req = &c->req;
    int cap = req->headers_cap == 0 ? 16 : req->headers_cap * 2;
    opsc__http_header_t *h;

    if (cap > c->srv->opts.max_headers) {
        cap = c->srv->opts.max_headers;
    }
    h = opsc_realloc(req->headers, (size_t)cap * sizeof(*h));
    if (h == NULL) {
        return OPSC_ENOMEM;
    }
    req->headers = h;
    req->headers_cap = cap;
    return 0;
}

static int check_header_bytes(opsc__http_conn_t *c) {
    if (c->req.header_bytes > (size_t)c->srv->opts.max_header_bytes) {
        return parse_fail(c, 431, "header_too_large", "request header fields too large");
    }
    return 0;
}

static int on_message_begin(llhttp_t *p) {
    opsc__http_conn_t *c = p->data;

    req_reset(&c->req);
    c->in_request = 1;
    if (c->state == OPSC__HTTP_IDLE) {
        /* Slowloris bound: from the first byte, not reset by later reads. */
        c->state = OPSC__HTTP_HEADERS;
        conn_arm_timer(c, c->srv->opts.header_timeout_ms);
    }
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len) {
    opsc__http_conn_t *c = p->data;

    if (c->req.url.len + len > c->srv->opts.max_url_bytes) {
        return parse_fail(c, 414, "uri_too_long", "request target too long");
    }
    c->req.header_bytes += len;
    if (check_header_bytes(c) != 0) {
        return HPE_USER;
    }
    if (opsc_buf_append(&c->req.url, at, len) != 0) {
        return parse_fail(c, 500, "internal", "out of memory");
    }
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
    opsc__http_conn_t *c = p->data;
    opsc__http_req_t *req = &c->req;

    if (!req->in_field) {
        if (req->nheaders >= c->srv->opts.max_headers) {
            return parse_fail(c, 431, "header_too_large", "too many header fields");
        }
        if (req->nheaders >= req->headers_cap && req_grow_headers(c) != 0) {
            return parse_fail(c, 500, "internal", "out of memory");
        }
        req->in_field = 1;
        req->headers[req->nheaders].name_off = (uint32_t)req->hbuf.len;
        req->header_bytes += 4; /* ": " and CRLF */
    }
    req->header_bytes += len;
    if (check_header_bytes(c) != 0) {
        return HPE_USER;
    }
    if (opsc_buf_append(&req->hbuf, at, len) != 0) {
        return parse_fail(c, 500, "internal", "out of memory");
    }
    return 0;
}

static int on_header_field_complete(llhttp_t *p) {
    opsc__http_conn_t *c = p->data;
    opsc__http_req_t *req = &c->req;
    opsc__http_header_t *h = &req->headers[req->nheaders];

    if (!req->in_field) { /* empty name: llhttp rejects those, but stay consistent */
        h->name_off = (uint32_t)req->hbuf.len;
    }
    h->name_len = (uint32_t)(req->hbuf.len - h->name_off);
    req->in_field = 0;
    if (opsc_buf_append(&req->hbuf, "", 1) != 0) {
        return parse_fail(c, 500, "internal", "out of memory");
    }
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
    opsc__http_conn_t *c = p->data;
    opsc__http_req_t *req = &c->req;

    if (!req->in_value) {
        req->in_value = 1;
        req->headers[req->nheaders].value_off = (uint32_t)req->hbuf.len;
    }
    req->header_bytes += len;
    if (check_header_bytes(c) != 0) {
        return HPE_USER;
    }
    if (opsc_buf_append(&req->hbuf, at, len) != 0) {
        return parse_fail(c, 500, "internal", "out of memory");
    }
    return 0;
}

static int on_header_value_complete(llhttp_t *p) {
    opsc__http_conn_t *c = p->data;
    opsc__http_req_t *req = &c->req;
    opsc__http_header_t *h = &req->headers[req->nheaders];

    if (!req->in_value) { /* empty value: no on_header_value call */
        h->value_off = (uint32_t)req->hbuf.len;
    }
    h->value_len = (uint32_t)(req->hbuf.len - h->value_off);
    req->in_value = 0;
    req->nheaders++;
    if (opsc_buf_append(&req->hbuf, "", 1) != 0) {
        return parse_fail(c, 500, "internal", "out of memory");
    }
    return 0;
}

/*
 * Routing: the first route (operations endpoints, then the tables added in
 * order) whose path matches and that allows the method. *allowed collects
 * the methods of every route whose path matches, for 405's Allow.
 */
static const opsc_http_route_t *route_find(opsc_ops_server_t *srv, const char *path, int method,
                                           void **arg, uint64_t *allowed) {
    int t;
    size_t i;

    *allowed = 0;
    for (t = 0; t < srv->ntables; t++) {
        const opsc__http_route_table_t *tab = &srv->tables[t];
        for (i = 0; i < tab->n; i++) {
            const opsc_http_route_t *r = &tab->routes[i];
            int match = r->prefix ? strncmp(path, r->path, strlen(r->path)) == 0
                                  : strcmp(path, r->path) == 0;
            if (!match) {
                continue;
            }
            *allowed |= r->methods;
            if (method >= 0 && method < 64 && (r->methods & OPSC__HTTP_M(method))) {
                *arg = tab->arg;
                return r;
            }
        }
    }
    return NULL;
}

/* "Allow: GET, HEAD\r\n" into out. */
static void format_allow(opsc_buf_t *out, uint64_t methods) {
    const char *sep = "";
    int m;

    opsc_buf_appends(out, "Allow: ");
    for (m = 0; m < 64; m++) {
        if (methods & OPSC__HTTP_M(m)) {
            opsc_buf_printf(out, "%s%s", sep, llhttp_method_name((llhttp_method_t)m));
            sep = ", ";
        }
    }
    opsc_buf_appends(out, "\r\n");
}

/* Media type of a Content-Type value equals want (parameters and case ignored). */
static int media_type_is(const char *value, const char *want) {
    size_t n = strlen(want);

    while (*value == ' ' || *value == '\t') {
        value++;
    }
    if (strncasecmp(value, want, n) != 0) {
        return 0;
    }
    value += n;
    while (*value == ' ' || *value == '\t') {
        value++;
    }
    return *value == '\0' || *value == ';';
}

/*
 * Decide, before any body byte is read, whether this request will be
 * accepted. A body declared larger than the limit is refused now (413, then
 * close). Other refusals (404, 405, 415) of a request that asked
 * "Expect: 100-continue" are answered now, without 100 Continue, and the
 * connection closed: the client holds its body back. Without Expect, the
 * body (bounded like any other) is read and dropped and the refusal answered
 * in order, so the connection stays usable.
 */
static int check_request(opsc__http_conn_t *c, llhttp_t *p) {
    opsc__http_req_t *req = &c->req;
    opsc_ops_server_t *srv = c->srv;
    int chunked = (p->flags & F_CHUNKED) != 0;
    int has_body = chunked || ((p->flags & F_CONTENT_LENGTH) != 0 && p->content_length > 0);
    const char *expect = opsc__http_req_header(req, "Expect");
    uint64_t allowed = 0;

    req->route = route_find(srv, req->path, req->method, &req->route_arg, &allowed);
    req->body_limit = srv->opts.max_body_bytes;
    if (req->route != NULL && req->route->max_body > 0) {
        req->body_limit = req->route->max_body;
    }
    if (!has_body) {
        return 0; /* errors, if any, are answered at message complete; Expect is moot */
    }
    if (expect != NULL && strcasecmp(expect, "100-continue") != 0) {
        return parse_fail(c, 417, "expectation_failed", "only Expect: 100-continue is supported");
    }
    if ((p->flags & F_CONTENT_LENGTH) != 0 && p->content_length > req->body_limit) {
        return parse_fail(c, 413, "payload_too_large", "request body too large");
    }
    if (req->route != NULL && req->route->body_type != NULL) {
        const char *ct = opsc__http_req_header(req, "Content-Type");
        if (ct == NULL || !media_type_is(ct, req->route->body_type)) {
            req->refused = 415;
        }
    } else if (req->route == NULL) {
        req->refused = allowed == 0 ? 404 : 405;
    }
    if (req->refused != 0) {
        req->discard_body = 1;
        if (expect == NULL) {
            return 0;
        }
        switch (req->refused) {
        case 404:
            return parse_fail(c, 404, "not_found", "no route for this path");
        case 405:
            opsc_buf_reset(&c->err_extra);
            format_allow(&c->err_extra, allowed);
            return parse_fail(c, 405, "method_not_allowed", "method not allowed on this path");
        default:
            return parse_fail(c, 415, "unsupported_media_type",
                              "request body of a Content-Type this endpoint does not take");
        }
    }
    if (expect != NULL && req->http_major == 1 && req->http_minor >= 1 &&
        opsc_buf_appends(&c->out, "HTTP/1.1 100 Continue\r\n\r\n") == 0) {
        srv->continues++;
        conn_flush(c);
    }
    return 0;
}

static int on_headers_complete(llhttp_t *p) {
    opsc__http_conn_t *c = p->data;
    opsc__http_req_t *req = &c->req;
    int rc;

    req->method = llhttp_get_method(p);
    req->http_major = llhttp_get_http_major(p);
    req->http_minor = llhttp_get_http_minor(p);
    req->keep_alive = llhttp_should_keep_alive(p);
    req->headers_done = 1;
    if (req_split_target(req) != 0) {
        return parse_fail(c, 500, "internal", "out of memory");
    }
    rc = check_request(c, p);
    if (rc != 0) {
        return rc;
    }
    c->state = OPSC__HTTP_BODY;
    conn_arm_timer(c, c->srv->opts.body_timeout_ms);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
    opsc__http_conn_t *c = p->data;

    if (c->req.body_seen + len > c->req.body_limit) {
        return parse_fail(c, 413, "payload_too_large", "request body too large");
    }
    c->req.body_seen += len;
    if (c->req.discard_body) {
        return 0;
    }
    if (opsc_buf_append(&c->req.body, at, len) != 0) {
        return parse_fail(c, 500, "internal", "out of memory");
    }
    return 0;
}

static void respond_error_body(opsc__http_conn_t *c, int status, const char *code,
                               const char *message, const char *field, const char *extra);

static void dispatch(opsc__http_conn_t *c) {
    opsc__http_req_t *req = &c->req;
    opsc_buf_t msg = OPSC_BUF_INIT;
    uint64_t allowed = 0;

    if (llhttp_get_upgrade(&c->parser)) {
        /* No upgrades here (WebSocket arrives with the API server): answer, then close. */
        c->force_close = 1;
    }
    if (req->refused == 415) {
        opsc_buf_printf(&msg, "request body must be %s", req->route->body_type);
        respond_error_body(c, 415, "unsupported_media_type",
                           msg.base != NULL ? msg.base : "unsupported media type", "Content-Type",
                           NULL);
        opsc_buf_free(&msg);
        return;
    }
    if (req->route != NULL) {
        if (req->route->roles != 0 &&
            opsc_http_authenticate(c, req, req->route->roles, &req->principal) != 0) {
            return; /* answered */
        }
        req->route->handler(c, req, req->route_arg);
        return;
    }
    (void)route_find(c->srv, req->path, req->method, &req->route_arg, &allowed);
    if (allowed != 0) {
        opsc_buf_t allow = OPSC_BUF_INIT;
        format_allow(&allow, allowed);
        opsc_buf_printf(&msg, "method %s not allowed on ",
                        llhttp_method_name((llhttp_method_t)req->method));
        append_safe_text(&msg, req->path, 200);
        opsc__http_respond_error(c, 405, "method_not_allowed",
                                 msg.base != NULL ? msg.base : "method not allowed", allow.base);
        opsc_buf_free(&allow);
    } else {
        opsc_buf_appends(&msg, "no route for ");
        append_safe_text(&msg, req->path, 200);
        opsc__http_respond_error(c, 404, "not_found", msg.base != NULL ? msg.base : "no route",
                                 NULL);
    }
    opsc_buf_free(&msg);
}

static int on_message_complete(llhttp_t *p) {
    opsc__http_conn_t *c = p->data;

    dispatch(c);
    /* One request at a time: conn_process resumes with the bytes after it. */
    return HPE_PAUSED;
}

static const llhttp_settings_t opsc__http_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value_complete = on_header_value_complete,
};

/* ------------------------------------------------------------------------ */
/* Responses                                                                */

void opsc__http_respond(opsc__http_conn_t *c, int status, const char *ctype, const char *extra,
                        const void *body, size_t len) {
    opsc_ops_server_t *srv = c->srv;
    opsc__http_req_t *req = &c->req;
    int keep_alive;
    int rc;

    if (c->closing || c->state >= OPSC__HTTP_DRAINING) {
        return; /* the connection already gave its last answer */
    }
    keep_alive = req->headers_done && req->keep_alive && !c->force_close && !srv->closing;
    rc = opsc_buf_printf(&c->out,
                         "HTTP/1.1 %d %s\r\n"
                         "Server: opsconductor\r\n"
                         "Date: %s\r\n",
                         status, opsc_http_reason(status), server_date(srv));
    if (rc == 0 && ctype != NULL) {
        rc = opsc_buf_printf(&c->out, "Content-Type: %s\r\n", ctype);
    }
    if (rc == 0) {
        rc = opsc_buf_printf(&c->out, "Content-Length: %zu\r\n", len);
    }
    if (rc == 0 && extra != NULL) {
        rc = opsc_buf_appends(&c->out, extra);
    }
    if (rc == 0) {
        if (!keep_alive) {
            rc = opsc_buf_appends(&c->out, "Connection: close\r\n");
        } else if (req->http_major == 1 && req->http_minor == 0) {
            rc = opsc_buf_appends(&c->out, "Connection: keep-alive\r\n");
        }
    }
    if (rc == 0) {
        rc = opsc_buf_appends(&c->out, "\r\n");
    }
    if (rc == 0 && len > 0 && !(req->headers_done && req->method == HTTP_HEAD)) {
        rc = opsc_buf_append(&c->out, body, len);
    }
    if (rc != 0) {
        conn_close(c);
        return;
    }
    srv->requests[status_index(status)]++;
    if (srv->audit_fn && req->headers_done && req->route && req->route->roles != 0 &&
        (req->method == HTTP_POST || req->method == HTTP_PUT || req->method == HTTP_PATCH ||
         req->method == HTTP_DELETE)) {
        srv->audit_fn(srv->audit_arg, req->authenticated ? &req->principal : NULL,
                      llhttp_method_name((llhttp_method_t)req->method), req->path, status, c->peer);
    }
    opsc_log_debug(LOG_COMP, "%s %s -> %d",
                   req->headers_done ? llhttp_method_name((llhttp_method_t)req->method) : "-",
                   req->headers_done ? req->path : "-", status);

    c->in_request = 0;
    if (keep_alive) {
        c->state = OPSC__HTTP_IDLE;
    } else {
        c->state = OPSC__HTTP_DRAINING;
    }
    /* Idle timer: the keep-alive wait, and the bound on a stalled write. */
    conn_arm_timer(c, srv->opts.idle_timeout_ms);
    conn_flush(c);
    c->awaiting_response = 0;
    conn_process(c); /* no-op inside conn_process; else an async answer unblocks parsing */
}

/*
 * The error body. Messages and fields may quote client input: jansson
 * refuses invalid UTF-8, so fall back to a body without them rather than
 * answer with nothing.
 */
static void respond_error_body(opsc__http_conn_t *c, int status, const char *code,
                               const char *message, const char *field, const char *extra) {
    opsc_buf_t body = OPSC_BUF_INIT;
    json_t *err = json_pack("{s:s,s:s}", "code", code != NULL ? code : "error", "message",
                            message != NULL ? message : "");
    json_t *j;

    if (err != NULL && field != NULL) {
        json_t *f = json_string(field);
        json_object_set_new(err, "field", f != NULL ? f : json_string("(not UTF-8)"));
    }
    j = err != NULL ? json_pack("{s:o}", "error", err) : NULL;
    if (json_to_buf(j, &body) != 0) {
        opsc_buf_reset(&body);
        opsc_buf_printf(&body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
                        code != NULL ? code : "error", opsc_http_reason(status));
    }
    json_decref(j);
    opsc__http_respond(c, status, "application/json", extra, body.base, body.len);
    opsc_buf_free(&body);
}

void opsc__http_respond_error(opsc__http_conn_t *c, int status, const char *code,
                              const char *message, const char *extra) {
    respond_error_body(c, status, code, message, NULL, extra);
}

void opsc_http_respond(opsc_http_conn_t *c, int status, const char *ctype, const char *extra,
                       const void *body, size_t len) {
    opsc__http_respond(c, status, ctype, extra, body, len);
}

void opsc_http_error(opsc_http_conn_t *c, int status, const char *code, const char *message,
                     const char *field) {
    respond_error_body(c, status, code, message, field, NULL);
}

void opsc_http_error_ex(opsc_http_conn_t *c, int status, const char *code, const char *message,
                        const char *field, const char *extra) {
    respond_error_body(c, status, code, message, field, extra);
}

void opsc_http_error_retry(opsc_http_conn_t *c, int status, const char *code, const char *message,
                           int retry_after_s) {
    char extra[48];

    snprintf(extra, sizeof(extra), "Retry-After: %d\r\n", retry_after_s < 1 ? 1 : retry_after_s);
    respond_error_body(c, status, code, message, NULL, extra);
}

static void respond_json(opsc__http_conn_t *c, int status, json_t *j) {
    opsc_buf_t body = OPSC_BUF_INIT;

    if (json_to_buf(j, &body) != 0) {
        json_decref(j);
        opsc_buf_free(&body);
        opsc__http_respond_error(c, 500, "internal", "out of memory", NULL);
        return;
    }
    json_decref(j);
    opsc__http_respond(c, status, "application/json", NULL, body.base, body.len);
    opsc_buf_free(&body);
}

void opsc_http_respond_json(opsc_http_conn_t *c, int status, json_t *j) {
    respond_json(c, status, j);
}

void opsc_ops_server_set_audit(opsc_ops_server_t *srv, opsc_http_audit_fn fn, void *arg) {
    srv->audit_fn = fn;
    srv->audit_arg = arg;
}

void opsc_ops_server_set_authenticator(opsc_ops_server_t *srv, opsc_http_auth_fn fn, void *arg) {
    srv->auth_fn = fn;
    srv->auth_arg = arg;
}

int opsc_http_authenticate(opsc_http_conn_t *c, opsc_http_req_t *req, unsigned roles,
                           opsc_principal_t *out) {
    opsc_ops_server_t *srv = c->srv;
    int rc = 401;

    memset(out, 0, sizeof(*out));
    if (srv->auth_fn != NULL) {
        rc = srv->auth_fn(srv->auth_arg, c, req, out);
    }
    if (rc == 429) {
        opsc_http_error_retry(c, 429, "rate_limited", "too many failed authentications", 60);
        return rc;
    }
    if (rc != 0) {
        opsc_http_error_ex(c, 401, "unauthorized", "missing or invalid credentials", NULL,
                           "WWW-Authenticate: Bearer realm=\"opsconductor\"\r\n");
        return 401;
    }
    if (out != &req->principal) {
        req->principal = *out;
    }
    req->authenticated = 1; /* known even when refused: the audit names who was refused */
    if (out->role <= OPSC_ROLE_NONE || out->role > OPSC_ROLE_ADMIN ||
        (roles & OPSC_ROLE_BIT(out->role)) == 0) {
        opsc_http_error(c, 403, "forbidden", "this role may not do that", NULL);
        return 403;
    }
    return 0;
}

const opsc_principal_t *opsc_http_req_principal(const opsc_http_req_t *req) {
    return req->authenticated ? &req->principal : NULL;
}

void opsc_http_hold(opsc_http_conn_t *c) {
    c->handles++;
}

void opsc_http_release(opsc_http_conn_t *c) {
    conn_release(c);
}

int opsc_http_conn_gone(const opsc_http_conn_t *c) {
    return c->closing;
}

int opsc_http_req_method(const opsc_http_req_t *req) {
    return req->method;
}

const char *opsc_http_req_path(const opsc_http_req_t *req) {
    return req->path;
}

const char *opsc_http_req_query(const opsc_http_req_t *req) {
    return req->query;
}

const char *opsc_http_req_body(const opsc_http_req_t *req, size_t *len) {
    if (len != NULL) {
        *len = req->body.len;
    }
    return req->body.base != NULL ? req->body.base : "";
}

const char *opsc_http_req_header(const opsc_http_req_t *req, const char *name) {
    return opsc__http_req_header(req, name);
}

const char *opsc_http_conn_peer(const opsc_http_conn_t *c) {
    return c->peer;
}

int opsc_http_conn_is_tls(const opsc_http_conn_t *c) {
    return c->tx.tls != NULL;
}

static void handle_health(opsc__http_conn_t *c, opsc__http_req_t *req, void *arg) {
    (void)req;
    (void)arg;
    respond_json(c, 200, json_pack("{s:s}", "status", "ok"));
}

static void ready_add(void *ctx, const char *reason) {
    json_t *reasons = ctx;
    json_t *s = json_string(reason != NULL ? reason : "");

    if (s == NULL) { /* not UTF-8 */
        s = json_string("(unprintable reason)");
    }
    json_array_append_new(reasons, s);
}

static void handle_ready(opsc__http_conn_t *c, opsc__http_req_t *req, void *arg) {
    opsc_ops_server_t *srv = c->srv;
    json_t *reasons = json_array();
    int ready;

    (void)req;
    (void)arg;
    if (reasons == NULL) {
        opsc__http_respond_error(c, 500, "internal", "out of memory", NULL);
        return;
    }
    ready = srv->opts.ready == NULL ? 1 : srv->opts.ready(srv->opts.arg, ready_add, reasons);
    if (ready == 1) {
        json_decref(reasons);
        respond_json(c, 200, json_pack("{s:s}", "status", "ready"));
    } else {
        respond_json(c, 503, json_pack("{s:s,s:o}", "status", "not_ready", "reasons", reasons));
    }
}

static void handle_metrics(opsc__http_conn_t *c, opsc__http_req_t *req, void *arg) {
    opsc_ops_server_t *srv = c->srv;
    opsc_buf_t body = OPSC_BUF_INIT;

    (void)req;
    (void)arg;
    srv->rendering = 1;
    srv->self_rendered = 0;
    if (srv->opts.metrics != NULL) {
        srv->opts.metrics(srv->opts.arg, &body);
    }
    srv->rendering = 0;
    if (!srv->self_rendered) {
        opsc_ops_server_metrics(&body, srv);
    }
    opsc__http_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL,
                       body.base != NULL ? body.base : "", body.len);
    opsc_buf_free(&body);
}

/* ------------------------------------------------------------------------ */
/* Connections                                                              */

static void maybe_finish(opsc_ops_server_t *srv) {
    void (*done)(void *);
    void *arg;

    if (!srv->closing || srv->live > 0) {
        return;
    }
    done = srv->done;
    arg = srv->done_arg;
    opsc_tls_server_destroy(srv->tls); /* every TLS connection closed: live == 0 */
    opsc_free(srv);
    if (done != NULL) {
        done(arg);
    }
}

static void conn_release(opsc__http_conn_t *c) {
    opsc_ops_server_t *srv = c->srv;

    if (--c->handles > 0) {
        return;
    }
    if (c->upgrade != NULL) {
        c->upgrade->gone(c->upgrade_arg);
    }
    opsc__http_list_remove(&c->link);
    req_free(&c->req);
    opsc_buf_free(&c->err_extra);
    opsc_buf_free(&c->in);
    opsc_buf_free(&c->out);
    opsc_buf_free(&c->wbuf);
    opsc_free(c);
    srv->live--;
    maybe_finish(srv);
}

static void conn_timer_closed(uv_handle_t *h) {
    conn_release(h->data);
}

static void conn_transport_closed(opsc_transport_t *t) {
    /* Not t->data: an upgraded connection's new owner has it. */
    conn_release(opsc_container_of(t, opsc__http_conn_t, tx));
}

static void conn_close(opsc__http_conn_t *c) {
    if (c->closing) {
        return;
    }
    c->closing = 1;
    if (c->counted) {
        c->srv->nconns--;
    }
    /* Cancels a write or shutdown in flight; their callbacks run before ours. */
    opsc_transport_close(&c->tx, conn_transport_closed);
    if (c->timer_open) {
        uv_close((uv_handle_t *)&c->timer, conn_timer_closed);
    }
}

static void conn_arm_timer(opsc__http_conn_t *c, int ms) {
    if (c->closing || !c->timer_open) {
        return;
    }
    uv_timer_start(&c->timer, conn_timer_cb, (uint64_t)ms, 0);
}

static void conn_timer_cb(uv_timer_t *t) {
    opsc__http_conn_t *c = t->data;

    if (c->handshaking) {
        c->srv->tls_handshake_failures++;
        conn_close(c); /* nothing to answer over a connection not yet secured */
        return;
    }
    switch (c->state) {
    case OPSC__HTTP_HEADERS:
    case OPSC__HTTP_BODY:
        c->force_close = 1;
        opsc__http_respond_error(c, 408, "request_timeout",
                                 c->state == OPSC__HTTP_HEADERS
                                     ? "request headers not received in time"
                                     : "request body not received in time",
                                 NULL);
        break;
    case OPSC__HTTP_IDLE:     /* keep-alive expired, or our write stalled */
    case OPSC__HTTP_DRAINING: /* the client stopped reading */
    case OPSC__HTTP_LINGER:
    default:
        conn_close(c);
        break;
    }
}

static void conn_alloc_cb(opsc_transport_t *t, size_t suggested, uv_buf_t *buf) {
    opsc__http_conn_t *c = t->data;

    (void)suggested;
    if (c->state == OPSC__HTTP_LINGER) {
        c->in.len = 0; /* discarding */
        c->in_off = 0;
    }
    if (opsc_buf_reserve(&c->in, OPSC__HTTP_READ_CHUNK) != 0) {
        buf->base = NULL; /* read_cb gets UV_ENOBUFS */
        buf->len = 0;
        return;
    }
    buf->base = c->in.base + c->in.len;
    buf->len = c->in.cap - c->in.len - 1; /* keep room for the NUL */
}

static void conn_read_cb(opsc_transport_t *t, ssize_t nread, const uv_buf_t *buf) {
    opsc__http_conn_t *c = t->data;

    (void)buf;
    if (c->closing) {
        return;
    }
    if (c->handshaking && opsc_transport_ready(&c->tx)) {
        /* TLS is up: from now on the usual keep-alive wait for the first request. */
        c->handshaking = 0;
        if (c->state == OPSC__HTTP_IDLE) {
            conn_arm_timer(c, c->srv->opts.idle_timeout_ms);
        }
    }
    if (nread == 0) {
        return;
    }
    if (nread < 0) {
        c->reading = 0; /* the transport stopped reading on EOF and errors */
        if (c->handshaking) {
            c->srv->tls_handshake_failures++;
            conn_close(c);
            return;
        }
        if (nread != UV_EOF || c->state == OPSC__HTTP_LINGER) {
            conn_close(c);
            return;
        }
        /* Peer half-closed: answer what is complete, then go. */
        c->peer_eof = 1;
        conn_process(c);
        return;
    }
    if (c->state == OPSC__HTTP_LINGER) {
        c->in.len = 0;
        return;
    }
    c->in.len += (size_t)nread;
    c->in.base[c->in.len] = '\0';
    if (c->state == OPSC__HTTP_BODY && !c->awaiting_response) {
        conn_arm_timer(c, c->srv->opts.body_timeout_ms); /* body idle: reset by every read */
    }
    conn_process(c);
}

static void conn_read_start(opsc__http_conn_t *c) {
    if (c->reading || c->closing || c->peer_eof) {
        return;
    }
    if (opsc_transport_read_start(&c->tx, conn_alloc_cb, conn_read_cb) != 0) {
        conn_close(c);
        return;
    }
    c->reading = 1;
}

static void conn_read_stop(opsc__http_conn_t *c) {
    if (!c->reading) {
        return;
    }
    opsc_transport_read_stop(&c->tx);
    c->reading = 0;
}

static void parse_error(opsc__http_conn_t *c, llhttp_errno_t err) {
    const char *reason = llhttp_get_error_reason(&c->parser);
    unsigned long long suppressed = 0;

    if (reason == NULL || reason[0] == '\0') {
        reason = llhttp_errno_name(err);
    }
    c->force_close = 1;
    if (c->err_status != 0) {
        opsc__http_respond_error(c, c->err_status, c->err_code, c->err_message,
                                 c->err_extra.len > 0 ? c->err_extra.base : NULL);
        return;
    }
    if (opsc_log_enabled(OPSC_LOG_DEBUG) &&
        opsc_log_ratelimit_ok(&opsc__http_log_rl, &suppressed)) {
        opsc_log_debug(LOG_COMP, "bad request: %s: %s (%llu similar suppressed)",
                       llhttp_errno_name(err), reason, suppressed);
    }
    opsc__http_respond_error(c, 400, "bad_request", reason, NULL);
}

/* Hand an upgraded connection over once every earlier response is written. */
static void upgrade_handoff(opsc__http_conn_t *c) {
    if (c->upgraded || c->writing || c->out.len > 0) {
        return; /* conn_write_cb comes back here through conn_process */
    }
    c->upgraded = 1;
    c->awaiting_response = 0;
    c->in_request = 0;
    conn_read_stop(c);
    if (c->timer_open) {
        uv_timer_stop(&c->timer);
    }
    c->tx.data = NULL;
    c->upgrade->start(c->upgrade_arg, &c->tx, c->in.base + c->in_off, c->in.len - c->in_off);
    c->in.len = 0;
    c->in_off = 0;
}

void opsc_http_upgrade(opsc_http_conn_t *c, const opsc_http_upgrade_t *u, void *arg) {
    c->upgrade = u;
    c->upgrade_arg = arg;
}

void opsc_http_upgraded_close(opsc_http_conn_t *c) {
    conn_close(c);
}

/*
 * Feed buffered input to llhttp, one request at a time, while the connection
 * may take another request: not closing, not draining, no request waiting
 * for its answer, and not too much output queued (then reading stops too, so
 * a client that pipelines without reading cannot make us buffer without bound).
 */
static void conn_process_input(opsc__http_conn_t *c) {
    while (!c->closing && c->state < OPSC__HTTP_DRAINING && !c->awaiting_response &&
           c->upgrade == NULL) {
        size_t avail = c->in.len - c->in_off;
        llhttp_errno_t err;

        if (avail == 0) {
            break; /* before any pointer arithmetic: in.base may still be NULL */
        }
        const char *p = c->in.base + c->in_off;
        if (c->out.len + c->wbuf.len >= OPSC__HTTP_OUT_HIGH_WATER) {
            conn_read_stop(c);
            return; /* conn_write_cb resumes */
        }
        err = llhttp_execute(&c->parser, p, avail);
        if (err == HPE_OK) {
            c->in_off = c->in.len;
        } else if (err == HPE_PAUSED) {
            c->in_off += (size_t)(llhttp_get_error_pos(&c->parser) - p);
            llhttp_resume(&c->parser);
            if (c->in_request) {
                /*
                 * The handler answers later. The request is complete: no
                 * request timeout runs meanwhile (a 408 would answer it a
                 * second time); the answer arms the idle timer.
                 */
                c->awaiting_response = 1;
                if (c->timer_open) {
                    uv_timer_stop(&c->timer);
                }
            }
        } else if (err == HPE_PAUSED_UPGRADE && c->upgrade != NULL) {
            c->in_off += (size_t)(llhttp_get_error_pos(&c->parser) - p);
        } else if (err == HPE_PAUSED_UPGRADE) {
            c->in_off = c->in.len; /* answered with Connection: close already */
        } else {
            c->in_off = c->in.len;
            parse_error(c, err);
        }
    }
    if (c->closing) {
        return;
    }
    if (c->upgrade != NULL) {
        upgrade_handoff(c);
        return;
    }
    if (c->in_off == c->in.len) {
        c->in.len = 0;
        c->in_off = 0;
    }
    if (c->peer_eof) {
        /* Nothing more will arrive: a partial request can never complete. */
        if (c->state < OPSC__HTTP_DRAINING && c->in_off == c->in.len && !c->awaiting_response) {
            if (c->writing || c->out.len > 0) {
                c->state = OPSC__HTTP_DRAINING;
            } else {
                conn_close(c);
            }
        }
        return;
    }
    if (c->state < OPSC__HTTP_DRAINING && c->out.len + c->wbuf.len < OPSC__HTTP_OUT_HIGH_WATER) {
        conn_read_start(c);
    }
}

static void conn_process(opsc__http_conn_t *c) {
    if (c->in_process) {
        return;
    }
    c->in_process = 1;
    conn_process_input(c);
    c->in_process = 0;
}

static void conn_shutdown_cb(opsc_transport_t *t, int status) {
    opsc__http_conn_t *c = t->data;

    if (c->closing) {
        return;
    }
    if (status < 0 || c->peer_eof) {
        conn_close(c);
    }
}

static void conn_write_cb(opsc_transport_t *t, int status) {
    opsc__http_conn_t *c = t->data;

    c->writing = 0;
    c->wbuf.len = 0;
    if (c->closing) {
        return;
    }
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->state == OPSC__HTTP_IDLE && c->out.len == 0) {
        conn_arm_timer(c, c->srv->opts.idle_timeout_ms); /* idle from now */
    }
    conn_flush(c);
    conn_process(c);
}

/* Start writing queued output; when a draining connection has nothing left, send FIN. */
static void conn_flush(opsc__http_conn_t *c) {
    opsc_buf_t tmp;
    uv_buf_t b;
    int err;

    if (c->writing || c->closing) {
        return;
    }
    if (c->out.len == 0) {
        if (c->state == OPSC__HTTP_DRAINING) {
            c->state = OPSC__HTTP_LINGER;
            if (opsc_transport_shutdown(&c->tx, conn_shutdown_cb) != 0 || c->peer_eof) {
                conn_close(c);
                return;
            }
            conn_arm_timer(c, OPSC__HTTP_LINGER_MS);
            conn_read_start(c); /* discard until EOF */
        } else if (c->srv->closing && c->state == OPSC__HTTP_IDLE) {
            conn_close(c);
        }
        return;
    }
    tmp = c->wbuf;
    c->wbuf = c->out;
    c->out = tmp;
    c->out.len = 0;
    b = uv_buf_init(c->wbuf.base, (unsigned int)c->wbuf.len);
    err = opsc_transport_write(&c->tx, &b, 1, conn_write_cb);
    if (err != 0) {
        conn_close(c);
        return;
    }
    c->writing = 1;
}

static void conn_set_peer(opsc__http_conn_t *c) {
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);

    c->peer[0] = '\0';
    if (uv_tcp_getpeername(&c->tx.tcp, (struct sockaddr *)&ss, &len) != 0) {
        return;
    }
    if (ss.ss_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)&ss, c->peer, sizeof(c->peer));
    } else if (ss.ss_family == AF_INET) {
        uv_ip4_name((const struct sockaddr_in *)&ss, c->peer, sizeof(c->peer));
    }
}

/* A connection object for srv, its transport not yet initialised. */
static opsc__http_conn_t *conn_alloc(opsc_ops_server_t *srv) {
    opsc__http_conn_t *c = opsc_calloc(1, sizeof(*c));

    if (c == NULL) {
        return NULL;
    }
    c->srv = srv;
    opsc__http_list_init(&c->link);
    req_reset(&c->req);
    return c;
}

/* The transport is initialised: from now on the memory is freed by close callbacks. */
static void conn_link(opsc__http_conn_t *c) {
    c->tx.data = c;
    c->handles = 1;
    c->srv->live++;
    opsc__http_list_insert_tail(&c->srv->conns, &c->link);
}

/* An accepted (or attached) connection: count it, or refuse it when full; then read. */
static void conn_begin(opsc__http_conn_t *c, int tls) {
    opsc_ops_server_t *srv = c->srv;

    if (srv->closing || srv->nconns >= srv->opts.max_connections) {
        srv->rejected++;
        conn_close(c);
        return;
    }
    if (uv_timer_init(srv->loop, &c->timer) != 0) {
        conn_close(c);
        return;
    }
    c->timer.data = c;
    c->timer_open = 1;
    c->handles = 2;
    c->counted = 1;
    srv->nconns++;
    srv->accepted++;
    uv_tcp_nodelay(&c->tx.tcp, 1);
    conn_set_peer(c);
    llhttp_init(&c->parser, HTTP_REQUEST, &opsc__http_settings);
    c->parser.data = c;
    c->state = OPSC__HTTP_IDLE;
    if (tls) {
        c->handshaking = 1;
        conn_arm_timer(c, srv->opts.tls_handshake_timeout_ms);
    } else {
        conn_arm_timer(c, srv->opts.idle_timeout_ms);
    }
    conn_read_start(c);
}

static void on_connection(uv_stream_t *server, int status) {
    opsc__http_listener_t *l = server->data;
    opsc_ops_server_t *srv = l->srv;
    opsc__http_conn_t *c;
    unsigned long long suppressed = 0;
    int err;

    if (status < 0) {
        srv->accept_errors++;
        if (opsc_log_ratelimit_ok(&opsc__http_log_rl, &suppressed)) {
            opsc_log_warn(LOG_COMP, "accept on %s: %s", l->name, uv_strerror(status));
        }
        return;
    }
    c = conn_alloc(srv);
    if (c == NULL) {
        /* The pending connection stays in the backlog; libuv retries on the next wake-up. */
        srv->accept_errors++;
        return;
    }
    err = l->tls ? opsc_transport_tls_init(srv->loop, &c->tx, srv->tls)
                 : opsc_transport_tcp_init(srv->loop, &c->tx);
    if (err != 0) {
        srv->accept_errors++;
        opsc_free(c);
        return;
    }
    conn_link(c);
    if (uv_accept(server, (uv_stream_t *)&c->tx.tcp) != 0) {
        srv->accept_errors++;
        conn_close(c);
        return;
    }
    conn_begin(c, l->tls);
}

int opsc__http_conn_attach(opsc_ops_server_t *srv, opsc__http_transport_init_fn init, void *arg,
                           opsc__http_conn_t **out) {
    opsc__http_conn_t *c = conn_alloc(srv);
    int err;

    *out = NULL;
    if (c == NULL) {
        return OPSC_ENOMEM;
    }
    err = init(srv->loop, &c->tx, arg);
    if (err != 0) {
        opsc_free(c);
        return err;
    }
    conn_link(c);
    conn_begin(c, 0);
    *out = c;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Server lifecycle                                                         */

static void listener_closed(uv_handle_t *h) {
    opsc__http_listener_t *l = h->data;
    opsc_ops_server_t *srv = l->srv;

    srv->live--;
    maybe_finish(srv);
}

static int sock_port(const uv_tcp_t *h) {
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    int err = uv_tcp_getsockname(h, (struct sockaddr *)&ss, &len);

    if (err != 0) {
        return err;
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return ntohs(((const struct sockaddr_in *)&ss)->sin_port);
}

static int listen_one(opsc_ops_server_t *srv, const opsc_listen_t *a, int tls, int idx,
                      char *errbuf, size_t errlen) {
    const char *key = tls ? "http.tls.listen" : "http.listen";
    opsc__http_listener_t *l = &srv->listeners[idx];
    struct sockaddr_storage ss;
    unsigned int flags = 0;
    int err;

    l->srv = srv;
    l->tls = tls;
    opsc_listen_format_port(a, a->port, l->name, sizeof(l->name));
    memset(&ss, 0, sizeof(ss));
    if (a->family == AF_INET6) {
        err = uv_ip6_addr(a->host, a->port, (struct sockaddr_in6 *)&ss);
        flags = UV_TCP_IPV6ONLY; /* so 0.0.0.0:P and [::]:P can both be bound */
    } else {
        err = uv_ip4_addr(a->host, a->port, (struct sockaddr_in *)&ss);
    }
    if (err != 0 || a->port < 0 || a->port > 65535 || a->proto != OPSC_PROTO_TCP ||
        (a->family != AF_INET && a->family != AF_INET6)) {
        opsc_errbuf_printf(errbuf, errlen, "%s %s: not a numeric TCP address", key, l->name);
        return OPSC_ECONFIG;
    }
    err = uv_tcp_init(srv->loop, &l->tcp);
    if (err != 0) {
        opsc_errbuf_printf(errbuf, errlen, "%s %s: %s", key, l->name, uv_strerror(err));
        return err;
    }
    l->tcp.data = l;
    l->initialized = 1;
    srv->live++;
    srv->nlisteners = idx + 1;
    err = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&ss, flags);
    if (err == 0) {
        /* libuv reports EADDRINUSE from listen, not bind */
        err = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
    }
    if (err != 0) {
        opsc_errbuf_printf(
            errbuf, errlen, "%s %s: %s%s", key, l->name, uv_strerror(err),
            err == UV_EACCES ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE)" : "");
        return err;
    }
    if (a->port == 0) {
        opsc_listen_format_port(a, sock_port(&l->tcp), l->name, sizeof(l->name));
    }
    opsc_log_info(LOG_COMP, "listening on %s://%s", tls ? "https" : "http", l->name);
    return 0;
}

/*
 * A write to a connection the peer already reset raises SIGPIPE, whose
 * default action kills the process; libuv leaves that to the application.
 * One client that disconnects early must not stop the server, so unless the
 * program chose a disposition of its own, ignore it (writes then fail with
 * EPIPE, which closes the connection).
 */
static void ignore_sigpipe(void) {
    struct sigaction sa;

    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGPIPE, &sa, NULL);
    }
}

/* The server object with the defaults applied and the operations routes; no listener yet. */
static opsc_ops_server_t *server_new(uv_loop_t *loop, const opsc_ops_server_options_t *opts) {
    opsc_ops_server_t *srv = opsc_calloc(1, sizeof(*srv));

    if (srv == NULL) {
        return NULL;
    }
    srv->loop = loop;
    srv->opts = *opts;
    if (opts->listen != NULL) {
        srv->listen = *opts->listen;
    }
    srv->opts.listen = &srv->listen;
    if (srv->opts.max_connections <= 0) {
        srv->opts.max_connections = OPSC__HTTP_DEFAULT_MAX_CONNECTIONS;
    }
    if (srv->opts.max_header_bytes <= 0) {
        srv->opts.max_header_bytes = OPSC__HTTP_DEFAULT_MAX_HEADER_BYTES;
    }
    if (srv->opts.idle_timeout_ms <= 0) {
        srv->opts.idle_timeout_ms = OPSC__HTTP_DEFAULT_IDLE_MS;
    }
    if (srv->opts.header_timeout_ms <= 0) {
        srv->opts.header_timeout_ms = OPSC__HTTP_DEFAULT_HEADER_MS;
    }
    if (srv->opts.body_timeout_ms <= 0) {
        srv->opts.body_timeout_ms = OPSC__HTTP_DEFAULT_BODY_MS;
    }
    if (srv->opts.max_headers <= 0) {
        srv->opts.max_headers = OPSC__HTTP_DEFAULT_MAX_HEADERS;
    }
    if (srv->opts.max_url_bytes == 0) {
        srv->opts.max_url_bytes = OPSC__HTTP_DEFAULT_MAX_URL;
    }
    if (srv->opts.max_body_bytes == 0) {
        srv->opts.max_body_bytes = OPSC__HTTP_DEFAULT_MAX_BODY;
    }
    if (srv->opts.tls_handshake_timeout_ms <= 0) {
        srv->opts.tls_handshake_timeout_ms = OPSC__HTTP_DEFAULT_HANDSHAKE_MS;
    }
    if (opts->tls_listen != NULL) {
        srv->tls_listen = *opts->tls_listen;
    }
    srv->opts.tls_listen = &srv->tls_listen;
    srv->opts.tls_cert = NULL; /* read below; the caller's strings are not kept */
    srv->opts.tls_key = NULL;
    srv->tables[0].routes = opsc__http_routes;
    srv->tables[0].n = sizeof(opsc__http_routes) / sizeof(opsc__http_routes[0]);
    srv->ntables = 1;
    opsc__http_list_init(&srv->conns);
    return srv;
}

int opsc__http_server_create(uv_loop_t *loop, const opsc_ops_server_options_t *opts,
                             opsc_ops_server_t **out) {
    opsc_ops_server_options_t o = *opts;

    o.listen = NULL;
    o.tls_listen = NULL;
    *out = server_new(loop, &o);
    return *out != NULL ? 0 : OPSC_ENOMEM;
}

int opsc_ops_server_start(uv_loop_t *loop, const opsc_ops_server_options_t *opts,
                          opsc_ops_server_t **out, char *errbuf, size_t errlen) {
    opsc_ops_server_t *srv = NULL;
    int err = 0;
    int i;

    *out = NULL;
    ignore_sigpipe();
    if (opts == NULL || opts->listen == NULL || opts->listen->count < 0 ||
        opts->listen->count > OPSC_LISTEN_MAX ||
        (opts->tls_listen != NULL &&
         (opts->tls_listen->count < 0 || opts->tls_listen->count > OPSC_LISTEN_MAX)) ||
        opts->listen->count + (opts->tls_listen != NULL ? opts->tls_listen->count : 0) == 0) {
        opsc_errbuf_printf(errbuf, errlen, "http.listen: no address to listen on");
        return OPSC_ECONFIG;
    }
    srv = server_new(loop, opts);
    if (srv == NULL) {
        opsc_errbuf_printf(errbuf, errlen, "http: out of memory");
        return OPSC_ENOMEM;
    }

    if (srv->tls_listen.count > 0) {
        /* Before any socket: a bad certificate is a config error, not a half-started server. */
        err = opsc_tls_server_create(opts->tls_cert, opts->tls_key, &srv->tls, errbuf, errlen);
        if (err != 0) {
            opsc_free(srv);
            return err;
        }
    }
    for (i = 0; i < srv->listen.count; i++) {
        err = listen_one(srv, &srv->listen.addr[i], 0, i, errbuf, errlen);
        if (err != 0) {
            goto error;
        }
    }
    for (i = 0; i < srv->tls_listen.count; i++) {
        err = listen_one(srv, &srv->tls_listen.addr[i], 1, srv->listen.count + i, errbuf, errlen);
        if (err != 0) {
            goto error;
        }
    }
    *out = srv;
    return 0;

error:
    /* Close what was opened; the last close callback frees srv. */
    srv->closing = 1;
    for (i = 0; i < srv->nlisteners; i++) {
        if (srv->listeners[i].initialized) {
            uv_close((uv_handle_t *)&srv->listeners[i].tcp, listener_closed);
        }
    }
    if (srv->live == 0) {
        opsc_tls_server_destroy(srv->tls);
        opsc_free(srv);
    }
    return err;
}

int opsc_ops_server_add_routes(opsc_ops_server_t *srv, const opsc_http_route_t *routes, size_t n,
                               void *arg) {
    if (srv->ntables >= OPSC__HTTP_MAX_ROUTE_TABLES) {
        return OPSC_ENOMEM;
    }
    srv->tables[srv->ntables].routes = routes;
    srv->tables[srv->ntables].n = n;
    srv->tables[srv->ntables].arg = arg;
    srv->ntables++;
    return 0;
}

void opsc_ops_server_close(opsc_ops_server_t *srv, void (*done)(void *arg), void *arg) {
    opsc__http_link_t *q;
    opsc__http_link_t *next;
    int i;

    if (srv == NULL || srv->closing) {
        return;
    }
    srv->closing = 1;
    srv->done = done;
    srv->done_arg = arg;
    for (i = 0; i < srv->nlisteners; i++) {
        if (srv->listeners[i].initialized) {
            uv_close((uv_handle_t *)&srv->listeners[i].tcp, listener_closed);
        }
    }
    for (q = srv->conns.next; q != &srv->conns; q = next) {
        opsc__http_conn_t *c = opsc_container_of(q, opsc__http_conn_t, link);
        next = q->next; /* conn_close never frees synchronously; be tidy anyway */
        if (c->closing) {
            continue;
        }
        if ((c->state == OPSC__HTTP_IDLE && !c->in_request && !c->writing && c->out.len == 0) ||
            c->state == OPSC__HTTP_LINGER || c->upgrade != NULL) {
            conn_close(c);
        }
        /* Others finish their request; the answer says Connection: close. */
    }
    opsc_log_info(LOG_COMP, "closing: %d connection(s) finishing", srv->nconns);
    /* Only a server without listeners (opsc__http_server_create) can have nothing to wait for. */
    maybe_finish(srv);
}

void opsc_ops_server_abort(opsc_ops_server_t *srv) {
    opsc__http_link_t *q;

    if (srv == NULL) {
        return;
    }
    for (q = srv->conns.next; q != &srv->conns; q = q->next) {
        conn_close(opsc_container_of(q, opsc__http_conn_t, link));
    }
}

int opsc_ops_server_connections(const opsc_ops_server_t *srv) {
    return srv != NULL ? srv->nconns : 0;
}

int opsc_ops_server_port(const opsc_ops_server_t *srv, int idx) {
    if (srv == NULL || idx < 0 || idx >= srv->nlisteners || !srv->listeners[idx].initialized) {
        return UV_EINVAL;
    }
    return sock_port(&srv->listeners[idx].tcp);
}

void opsc_ops_server_metrics(opsc_buf_t *out, void *arg) {
    opsc_ops_server_t *srv = arg;
    char labels[32];
    int i = 0;

    if (srv == NULL) {
        return;
    }
    if (srv->rendering) {
        srv->self_rendered = 1;
    }
    opsc_metrics_one_u64(out, "opsc_http_connections_open", "gauge",
                         "Client connections open on the HTTP server.", (uint64_t)srv->nconns);
    opsc_metrics_one_u64(out, "opsc_http_connections_accepted_total", "counter",
                         "Client connections accepted and served.", srv->accepted);
    opsc_metrics_one_u64(
        out, "opsc_http_connections_rejected_total", "counter",
        "Client connections closed at once because http.max_connections were open.", srv->rejected);
    opsc_metrics_one_u64(out, "opsc_http_accept_errors_total", "counter",
                         "Failed accepts (out of file descriptors or memory).", srv->accept_errors);
    opsc_metrics_one_u64(out, "opsc_http_tls_handshake_failures_total", "counter",
                         "TLS connections closed before their handshake completed (failed, "
                         "abandoned or too slow).",
                         srv->tls_handshake_failures);
    opsc_metrics_one_u64(out, "opsc_http_continue_total", "counter",
                         "100 Continue answers sent to requests with Expect: 100-continue.",
                         srv->continues);
    opsc_metrics_family(out, "opsc_http_requests_total", "counter",
                        "HTTP responses sent, by status code.");
#define OPSC__HTTP_CODE_SAMPLE(code)                                                               \
    snprintf(labels, sizeof(labels), "code=\"%d\"", (code));                                       \
    opsc_metrics_sample_u64(out, "opsc_http_requests_total", labels, srv->requests[i]);            \
    i++;
    OPSC__HTTP_CODES(OPSC__HTTP_CODE_SAMPLE)
#undef OPSC__HTTP_CODE_SAMPLE
    opsc_metrics_sample_u64(out, "opsc_http_requests_total", "code=\"other\"", srv->requests[i]);
}
