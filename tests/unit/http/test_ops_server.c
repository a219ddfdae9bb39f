/*
 * The ops HTTP server against real loopback sockets.
 *
 * The server runs on a libuv loop in its own thread; the test body is the
 * client, with plain blocking sockets (5 s receive timeouts, so a server that
 * stops answering fails the test instead of hanging it). Work that must run
 * on the loop thread (closing, reading counters) is posted with run_on_loop.
 * A safety timer on the loop stops it if the server never finishes closing.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <jansson.h>
#include <uv.h>

#include "http/ops_server_int.h"
#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/http.h"
#include "opsc/log.h"
#include "opsc/ops_server.h"
#include "support/mem_transport.h"

#define SAFETY_MS 30000
#define CLIENT_TIMEOUT_S 5

/* ------------------------------------------------------------------------ */
/* Fixture: a server on a loop thread                                       */

typedef struct fixture_s fixture_t;
typedef void (*job_fn)(fixture_t *fx, void *arg);

struct fixture_s {
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t safety;
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cv;
    job_fn job;
    void *job_arg;
    int job_done;
    opsc_ops_server_t *srv;
    opsc_listen_list_t listen;
    opsc_ops_server_options_t opts;
    atomic_int ready;
    atomic_int done_called;
    atomic_int timed_out;
    int family;
    int port;
    int skip; /* no IPv6 on this host */
};

static int ready_cb(void *arg, void (*add)(void *ctx, const char *reason), void *ctx) {
    fixture_t *fx = arg;

    if (atomic_load(&fx->ready)) {
        return 1;
    }
    add(ctx, "database not connected");
    add(ctx, "migrations pending");
    return 0;
}

static void metrics_cb(void *arg, opsc_buf_t *out) {
    (void)arg;
    opsc_buf_appends(out, "# HELP test_collector_value A value from the test collector.\n"
                          "# TYPE test_collector_value gauge\n"
                          "test_collector_value 42\n");
}

/* Routes of the kind the API adds: a JSON body, a bulk limit, the error helpers. */
static void h_echo(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    size_t len;
    const char *body = opsc_http_req_body(req, &len);

    (void)arg;
    opsc_http_respond(c, 200, "application/json", NULL, body, len);
}

static void h_size(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    char out[64];
    size_t len;

    (void)arg;
    (void)opsc_http_req_body(req, &len);
    snprintf(out, sizeof(out), "{\"len\":%zu}", len);
    opsc_http_respond(c, 200, "application/json", NULL, out, strlen(out));
}

static void h_errors(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    const char *path = opsc_http_req_path(req);

    (void)arg;
    if (strcmp(path, "/err/422") == 0) {
        opsc_http_error(c, 422, "validation", "severity must be one of critical..info",
                        "items[3].severity");
    } else if (strcmp(path, "/err/503") == 0) {
        opsc_http_error_retry(c, 503, "overloaded", "ingest queue full", 2);
    } else if (strcmp(path, "/err/429") == 0) {
        opsc_http_error_retry(c, 429, "rate_limited", "too many requests", 0);
    } else if (strcmp(path, "/err/409") == 0) {
        opsc_http_error(c, 409, "invalid_transition", "alert is resolved", "status");
    } else {
        json_t *j = json_pack("{s:s,s:s}", "path", path, "query", opsc_http_req_query(req));
        opsc_http_respond_json(c, 200, j);
    }
}

/* Answers later, from a timer: the way a handler waiting for the database does. */
typedef struct later_s {
    uv_timer_t timer;
    opsc_http_conn_t *conn;
} later_t;

static void later_closed(uv_handle_t *h) {
    free(h->data);
}

static void later_fire(uv_timer_t *t) {
    later_t *l = t->data;

    opsc_http_respond(l->conn, 200, "text/plain", NULL, "later", 5);
    uv_close((uv_handle_t *)&l->timer, later_closed);
}

static void h_later(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    fixture_t *fx = arg;
    later_t *l = calloc(1, sizeof(*l));

    (void)req;
    assert_non_null(l);
    l->conn = c;
    uv_timer_init(&fx->loop, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, later_fire, 50, 0);
}

static const opsc_http_route_t test_routes[] = {
    {.methods = OPSC_HTTP_M(OPSC_HTTP_POST) | OPSC_HTTP_M(OPSC_HTTP_PUT),
     .path = "/echo",
     .handler = h_echo,
     .body_type = "application/json"},
    {.methods = OPSC_HTTP_M(OPSC_HTTP_POST),
     .path = "/bulk",
     .handler = h_size,
     .max_body = 256 * 1024},
    {.methods = OPSC_HTTP_M(OPSC_HTTP_GET), .path = "/err/", .prefix = 1, .handler = h_errors},
    {.methods = OPSC_HTTP_M(OPSC_HTTP_GET), .path = "/later", .handler = h_later},
};

static void on_done(void *arg) {
    fixture_t *fx = arg;

    atomic_store(&fx->done_called, 1);
    uv_close((uv_handle_t *)&fx->safety, NULL);
}

static void safety_cb(uv_timer_t *t) {
    fixture_t *fx = t->data;

    atomic_store(&fx->timed_out, 1);
    uv_stop(&fx->loop);
}

static void async_cb(uv_async_t *a) {
    fixture_t *fx = a->data;
    job_fn job;
    void *arg;

    uv_mutex_lock(&fx->mu);
    job = fx->job;
    arg = fx->job_arg;
    fx->job = NULL;
    uv_mutex_unlock(&fx->mu);
    if (job == NULL) {
        return;
    }
    job(fx, arg);
    uv_mutex_lock(&fx->mu);
    fx->job_done = 1;
    uv_cond_signal(&fx->cv);
    uv_mutex_unlock(&fx->mu);
}

static void loop_thread(void *arg) {
    fixture_t *fx = arg;

    uv_run(&fx->loop, UV_RUN_DEFAULT);
}

/* Run fn on the loop thread and wait for it (fails the test after 10 s). */
static void run_on_loop(fixture_t *fx, job_fn fn, void *arg) {
    int rc = 0;

    uv_mutex_lock(&fx->mu);
    fx->job = fn;
    fx->job_arg = arg;
    fx->job_done = 0;
    uv_mutex_unlock(&fx->mu);
    uv_async_send(&fx->async);
    uv_mutex_lock(&fx->mu);
    while (!fx->job_done && rc == 0) {
        rc = uv_cond_timedwait(&fx->cv, &fx->mu, UINT64_C(10000000000));
    }
    uv_mutex_unlock(&fx->mu);
    assert_int_equal(rc, 0);
}

static void job_close(fixture_t *fx, void *arg) {
    (void)arg;
    if (fx->srv != NULL) {
        opsc_ops_server_close(fx->srv, on_done, fx);
        fx->srv = NULL;
    }
}

static void job_finish(fixture_t *fx, void *arg) {
    (void)arg;
    uv_close((uv_handle_t *)&fx->async, NULL);
}

typedef struct {
    int value;
} int_box_t;

static void job_connections(fixture_t *fx, void *arg) {
    int_box_t *box = arg;
    box->value = fx->srv != NULL ? opsc_ops_server_connections(fx->srv) : -1;
}

/* How many connections are in a given parser state (reaches into the server). */
typedef struct {
    opsc__http_state_t state;
    int count;
} state_query_t;

static void job_count_state(fixture_t *fx, void *arg) {
    state_query_t *q = arg;
    opsc__http_link_t *l;

    q->count = 0;
    if (fx->srv == NULL) {
        return;
    }
    for (l = fx->srv->conns.next; l != &fx->srv->conns; l = l->next) {
        opsc__http_conn_t *c = opsc_container_of(l, opsc__http_conn_t, link);
        if (!c->closing && c->state == q->state) {
            q->count++;
        }
    }
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int fx_setup(void **state, int family, const char *host, void (*tune)(fixture_t *)) {
    fixture_t *fx = calloc(1, sizeof(*fx));
    char err[256] = "";
    int rc;

    assert_non_null(fx);
    opsc_log_set_level(OPSC_LOG_WARN);
    fx->family = family;
    fx->listen.count = 1;
    fx->listen.addr[0].proto = OPSC_PROTO_TCP;
    fx->listen.addr[0].family = family;
    snprintf(fx->listen.addr[0].host, sizeof(fx->listen.addr[0].host), "%s", host);
    fx->listen.addr[0].port = 0;
    fx->opts.listen = &fx->listen;
    fx->opts.max_connections = 64;
    fx->opts.max_header_bytes = 8192;
    fx->opts.idle_timeout_ms = 10000;
    fx->opts.max_body_bytes = 65536;
    fx->opts.ready = ready_cb;
    fx->opts.metrics = metrics_cb;
    fx->opts.arg = fx;
    if (tune != NULL) {
        tune(fx);
    }
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    assert_int_equal(uv_mutex_init(&fx->mu), 0);
    assert_int_equal(uv_cond_init(&fx->cv), 0);
    rc = opsc_ops_server_start(&fx->loop, &fx->opts, &fx->srv, err, sizeof(err));
    if (rc != 0 && family == AF_INET6) {
        /* No IPv6 loopback here: the test skips. */
        fx->skip = 1;
        uv_run(&fx->loop, UV_RUN_DEFAULT);
        *state = fx;
        return 0;
    }
    assert_int_equal(rc, 0);
    fx->port = opsc_ops_server_port(fx->srv, 0);
    assert_true(fx->port > 0);
    assert_int_equal(opsc_ops_server_add_routes(fx->srv, test_routes,
                                                sizeof(test_routes) / sizeof(test_routes[0]), fx),
                     0);
    assert_int_equal(uv_async_init(&fx->loop, &fx->async, async_cb), 0);
    fx->async.data = fx;
    assert_int_equal(uv_timer_init(&fx->loop, &fx->safety), 0);
    fx->safety.data = fx;
    uv_timer_start(&fx->safety, safety_cb, SAFETY_MS, 0);
    uv_unref((uv_handle_t *)&fx->safety);
    assert_int_equal(uv_thread_create(&fx->thread, loop_thread, fx), 0);
    *state = fx;
    return 0;
}

static int fx_teardown(void **state) {
    fixture_t *fx = *state;

    if (!fx->skip) {
        run_on_loop(fx, job_close, NULL);
        run_on_loop(fx, job_finish, NULL);
        uv_thread_join(&fx->thread);
        assert_false(atomic_load(&fx->timed_out));
        assert_true(atomic_load(&fx->done_called));
    }
    /* Every handle closed: the server freed all it owned. */
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    uv_mutex_destroy(&fx->mu);
    uv_cond_destroy(&fx->cv);
    free(fx);
    return 0;
}

static int setup_v4(void **state) {
    return fx_setup(state, AF_INET, "127.0.0.1", NULL);
}

static int setup_v6(void **state) {
    return fx_setup(state, AF_INET6, "::1", NULL);
}

static void tune_small(fixture_t *fx) {
    fx->opts.max_connections = 2;
    fx->opts.max_header_bytes = 1024;
    fx->opts.idle_timeout_ms = 300;
    fx->opts.header_timeout_ms = 300;
}

static int setup_small(void **state) {
    return fx_setup(state, AF_INET, "127.0.0.1", tune_small);
}

static void tune_maxconn(fixture_t *fx) {
    fx->opts.max_connections = 2;
}

static void tune_limits(fixture_t *fx) {
    fx->opts.max_headers = 10;
    fx->opts.max_url_bytes = 300;
    fx->opts.body_timeout_ms = 300;
    fx->opts.header_timeout_ms = 2000;
}

static int setup_limits(void **state) {
    return fx_setup(state, AF_INET, "127.0.0.1", tune_limits);
}

/* A body timeout shorter than /later takes to answer (50 ms). */
static void tune_short_body(fixture_t *fx) {
    fx->opts.body_timeout_ms = 20;
}

static int setup_short_body(void **state) {
    return fx_setup(state, AF_INET, "127.0.0.1", tune_short_body);
}

static int setup_maxconn(void **state) {
    return fx_setup(state, AF_INET, "127.0.0.1", tune_maxconn);
}

/* ------------------------------------------------------------------------ */
/* Client                                                                   */

typedef struct {
    int fd;
    size_t len;
    char buf[256 * 1024];
} client_t;

typedef struct {
    int status;
    char head[16384]; /* status line and headers */
    char *body;       /* NUL-terminated */
    size_t body_len;
} response_t;

static client_t *cli_connect_port(int family, int port) {
    client_t *c = calloc(1, sizeof(*c));
    struct sockaddr_storage ss;
    socklen_t sslen;
    struct timeval tv = {CLIENT_TIMEOUT_S, 0};
    int one = 1;

    assert_non_null(c);
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        sslen = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sslen = sizeof(*a);
    }
    c->fd = socket(family, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&ss, sslen) != 0) {
        close(c->fd);
        free(c);
        return NULL;
    }
    return c;
}

static client_t *cli_connect(fixture_t *fx) {
    client_t *c = cli_connect_port(fx->family, fx->port);
    assert_non_null(c);
    return c;
}

static void cli_close(client_t *c) {
    if (c != NULL) {
        close(c->fd);
        free(c);
    }
}

static void cli_send(client_t *c, const char *data, size_t len) {
    size_t off = 0;

    while (off < len) {
        ssize_t n = send(c->fd, data + off, len - off, MSG_NOSIGNAL);
        assert_true(n > 0);
        off += (size_t)n;
    }
}

static void cli_sends(client_t *c, const char *s) {
    cli_send(c, s, strlen(s));
}

/* Read more bytes into the buffer; 0 on EOF, -1 on error or timeout. */
static ssize_t cli_fill(client_t *c) {
    ssize_t n;

    if (c->len >= sizeof(c->buf) - 1) {
        return -1;
    }
    n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
    if (n > 0) {
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
    }
    return n;
}

static void resp_free(response_t *r) {
    free(r->body);
    r->body = NULL;
}

/* Header value (first match, case-insensitive) copied into a static buffer; NULL if absent. */
static const char *resp_header(const response_t *r, const char *name) {
    static char value[1024];
    size_t nlen = strlen(name);
    const char *p = strstr(r->head, "\r\n");

    while (p != NULL && p[2] != '\0') {
        const char *line = p + 2;
        const char *end = strstr(line, "\r\n");
        if (end == NULL) {
            end = line + strlen(line);
        }
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            size_t vlen;
            while (*v == ' ') {
                v++;
            }
            vlen = (size_t)(end - v);
            if (vlen >= sizeof(value)) {
                vlen = sizeof(value) - 1;
            }
            memcpy(value, v, vlen);
            value[vlen] = '\0';
            return value;
        }
        p = *end != '\0' ? end : NULL;
    }
    return NULL;
}

/* Read one response; `head_request`: no body follows whatever Content-Length says. */
static int cli_read_response(client_t *c, response_t *r, int head_request) {
    char *eoh;
    size_t hlen;
    const char *cl;
    size_t blen = 0;

    memset(r, 0, sizeof(*r));
    while ((eoh = strstr(c->buf, "\r\n\r\n")) == NULL) {
        if (cli_fill(c) <= 0) {
            return -1;
        }
    }
    hlen = (size_t)(eoh - c->buf) + 4;
    if (hlen >= sizeof(r->head)) {
        return -1;
    }
    memcpy(r->head, c->buf, hlen - 2);
    r->head[hlen - 2] = '\0';
    if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1) {
        return -1;
    }
    cl = resp_header(r, "Content-Length");
    if (cl == NULL) {
        return -1; /* every response must have one */
    }
    if (!head_request) {
        blen = (size_t)strtoul(cl, NULL, 10);
    }
    while (c->len < hlen + blen) {
        if (cli_fill(c) <= 0) {
            return -1;
        }
    }
    r->body = malloc(blen + 1);
    assert_non_null(r->body);
    memcpy(r->body, c->buf + hlen, blen);
    r->body[blen] = '\0';
    r->body_len = blen;
    memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
    c->len -= hlen + blen;
    c->buf[c->len] = '\0';
    return 0;
}

/* 1 when the server closed the connection (EOF or reset) with no more bytes. */
static int cli_expect_eof(client_t *c) {
    ssize_t n;

    if (c->len > 0) {
        return 0;
    }
    n = recv(c->fd, c->buf, sizeof(c->buf) - 1, 0);
    if (n == 0) {
        return 1;
    }
    return n < 0 && (errno == ECONNRESET || errno == EPIPE);
}

/* The next bytes are exactly `want` (an interim response); consume them. */
static int cli_expect_bytes(client_t *c, const char *want) {
    size_t n = strlen(want);

    while (c->len < n) {
        if (cli_fill(c) <= 0) {
            return -1;
        }
    }
    if (memcmp(c->buf, want, n) != 0) {
        return -1;
    }
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    c->buf[c->len] = '\0';
    return 0;
}

/* Nothing arrives within ms (the server is waiting for us). */
static int cli_quiet_for(client_t *c, int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    struct timeval back = {CLIENT_TIMEOUT_S, 0};
    ssize_t n;

    if (c->len > 0) {
        return 0;
    }
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    n = recv(c->fd, c->buf, sizeof(c->buf) - 1, MSG_PEEK);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &back, sizeof(back));
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static void get(client_t *c, const char *path, response_t *r) {
    char req[512];

    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path);
    cli_sends(c, req);
    assert_int_equal(cli_read_response(c, r, 0), 0);
}

static void check_common_headers(const response_t *r) {
    char date[64];
    int day;
    int year;
    int hh;
    int mm;
    int ss;
    char wd[4];
    char mon[4];

    assert_non_null(resp_header(r, "Content-Length"));
    assert_non_null(resp_header(r, "Date"));
    snprintf(date, sizeof(date), "%s", resp_header(r, "Date")); /* resp_header's buffer is reused */
    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
    assert_int_equal(strlen(date), 29);
    assert_int_equal(
        sscanf(date, "%3s, %2d %3s %4d %2d:%2d:%2d GMT", wd, &day, mon, &year, &hh, &mm, &ss), 7);
    assert_true(year >= 2024);
    assert_non_null(resp_header(r, "Server"));
    assert_string_equal(resp_header(r, "Server"), "opsconductor");
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */

static void test_health(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    response_t r;

    get(c, "/health", &r);
    assert_int_equal(r.status, 200);
    check_common_headers(&r);
    assert_string_equal(resp_header(&r, "Content-Type"), "application/json");
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    assert_string_equal(resp_header(&r, "Content-Length"), "15");
    resp_free(&r);

    /* The query string plays no part in routing. */
    get(c, "/health?verbose=1&x=%20", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    cli_close(c);
}

static void test_ready(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    response_t r;

    get(c, "/ready", &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "{\"status\":\"not_ready\",\"reasons\":[\"database not "
                                "connected\",\"migrations pending\"]}");
    resp_free(&r);

    atomic_store(&fx->ready, 1);
    get(c, "/ready", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ready\"}");
    resp_free(&r);
    cli_close(c);
}

static void test_metrics_endpoint(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    response_t r;

    get(c, "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(resp_header(&r, "Content-Type"),
                        "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(strstr(r.body, "test_collector_value 42\n"));
    assert_non_null(strstr(r.body, "opsc_http_connections_open 1\n"));
    assert_non_null(strstr(r.body, "# TYPE opsc_http_requests_total counter\n"));
    resp_free(&r);

    /* The previous answer is counted by the next scrape. */
    get(c, "/metrics", &r);
    assert_non_null(strstr(r.body, "opsc_http_requests_total{code=\"200\"} 1\n"));
    resp_free(&r);
    cli_close(c);
}

/* A metrics callback that renders the server's own families itself: not twice. */
static void metrics_with_self(void *arg, opsc_buf_t *out) {
    fixture_t *fx = arg;
    metrics_cb(arg, out);
    opsc_ops_server_metrics(out, fx->srv);
}

static void tune_self_metrics(fixture_t *fx) {
    fx->opts.metrics = metrics_with_self;
}

static int setup_self_metrics(void **state) {
    return fx_setup(state, AF_INET, "127.0.0.1", tune_self_metrics);
}

static void test_metrics_not_twice(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    response_t r;
    const char *first;

    get(c, "/metrics", &r);
    assert_int_equal(r.status, 200);
    first = strstr(r.body, "# TYPE opsc_http_connections_open gauge");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE opsc_http_connections_open gauge"));
    resp_free(&r);
    cli_close(c);
}

static void test_not_found(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    response_t r;

    get(c, "/x", &r);
    assert_int_equal(r.status, 404);
    check_common_headers(&r);
    assert_string_equal(resp_header(&r, "Content-Type"), "application/json");
    assert_string_equal(r.body,
                        "{\"error\":{\"code\":\"not_found\",\"message\":\"no route for /x\"}}");
    resp_free(&r);

    /* Client bytes in the message stay printable ASCII (valid JSON, one line). */
    cli_sends(c, "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body, "\"no route for /caf%C3%A9\""));
    resp_free(&r);
    cli_close(c);
}

static void test_method_not_allowed(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    response_t r;

    cli_sends(c, "POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 405);
    assert_string_equal(resp_header(&r, "Allow"), "GET, HEAD");
    assert_non_null(strstr(r.body, "\"code\":\"method_not_allowed\""));
    resp_free(&r);

    /* Still usable afterwards. */
    get(c, "/health", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    cli_close(c);
}

static void test_head(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    response_t r;

    cli_sends(c, "HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_read_response(c, &r, 1), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(resp_header(&r, "Content-Length"), "15");
    resp_free(&r);
    /* No body followed: the next response starts right after the headers. */
    get(c, "/health", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    resp_free(&r);
    cli_close(c);
}

static void test_pipelined(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    response_t r;

    cli_sends(c, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
                 "POST /ready HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                 "HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /ready HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    resp_free(&r);
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body, "no route for /nope"));
    resp_free(&r);
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 405);
    resp_free(&r);
    assert_int_equal(cli_read_response(c, &r, 1), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 503);
    resp_free(&r);
    cli_close(c);
}

static void test_many_pipelined(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    opsc_buf_t reqs = OPSC_BUF_INIT;
    response_t r;
    int i;

    /* More answers than the output high-water mark holds: parsing pauses and resumes. */
    for (i = 0; i < 3000; i++) {
        opsc_buf_appends(&reqs, i % 2 ? "GET /health HTTP/1.1\r\n\r\n" : "GET /x HTTP/1.1\r\n\r\n");
    }
    cli_send(c, reqs.base, reqs.len);
    opsc_buf_free(&reqs);
    for (i = 0; i < 3000; i++) {
        assert_int_equal(cli_read_response(c, &r, 0), 0);
        assert_int_equal(r.status, i % 2 ? 200 : 404);
        resp_free(&r);
    }
    cli_close(c);
}

static void test_keep_alive(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    response_t r;
    int i;

    for (i = 0; i < 5; i++) {
        get(c, "/health", &r);
        assert_int_equal(r.status, 200);
        assert_null(resp_header(&r, "Connection"));
        resp_free(&r);
    }
    get(c, "/metrics", &r);
    /* Every request came over the one connection. */
    assert_non_null(strstr(r.body, "opsc_http_connections_accepted_total 1\n"));
    resp_free(&r);
    cli_close(c);
}

static void test_connection_close(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    response_t r;

    cli_sends(c, "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(resp_header(&r, "Connection"), "close");
    resp_free(&r);
    assert_true(cli_expect_eof(c));
    cli_close(c);
}

static void test_http10(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    response_t r;

    /* HTTP/1.0 closes unless it asks for keep-alive. */
    cli_sends(c, "GET /health HTTP/1.0\r\n\r\n");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(resp_header(&r, "Connection"), "close");
    resp_free(&r);
    assert_true(cli_expect_eof(c));
    cli_close(c);

    c = cli_connect(fx);
    cli_sends(c, "GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_string_equal(resp_header(&r, "Connection"), "keep-alive");
    resp_free(&r);
    cli_sends(c, "GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    cli_close(c);
}

static void test_header_too_large(void **state) {
    fixture_t *fx = *state; /* max_header_bytes 1024 */
    client_t *c = cli_connect(fx);
    response_t r;
    char big[2100];

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cli_sends(c, "GET /health HTTP/1.1\r\nHost: t\r\nX-Big: ");
    cli_sends(c, big);
    cli_sends(c, "\r\n\r\n");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 431);
    assert_string_equal(resp_header(&r, "Connection"), "close");
    assert_non_null(strstr(r.body, "\"code\":\"header_too_large\""));
    resp_free(&r);
    assert_true(cli_expect_eof(c));
    cli_close(c);

    /* Many small headers add up the same way. */
    c = cli_connect(fx);
    {
        int i;
        cli_sends(c, "GET /health HTTP/1.1\r\n");
        for (i = 0; i < 200; i++) {
            cli_sends(c, "X-A: b\r\n");
        }
        cli_sends(c, "\r\n");
    }
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 431);
    resp_free(&r);
    assert_true(cli_expect_eof(c));
    cli_close(c);
}

static void test_uri_too_long(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    response_t r;
    char *url = malloc(9001);

    assert_non_null(url);
    url[0] = '/';
    memset(url + 1, 'u', 8999);
    url[9000] = '\0';
    cli_sends(c, "GET ");
    cli_sends(c, url);
    cli_sends(c, " HTTP/1.1\r\n\r\n");
    free(url);
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 414);
    resp_free(&r);
    assert_true(cli_expect_eof(c));
    cli_close(c);
}

static void test_body_too_large(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    response_t r;

    /* Refused from Content-Length alone, before the body arrives. */
    cli_sends(c, "POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nabc");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.body, "\"code\":\"payload_too_large\""));
    resp_free(&r);
    assert_true(cli_expect_eof(c));
    cli_close(c);

    /* Chunked: counted as it arrives. */
    c = cli_connect(fx);
    {
        char chunk[8192 + 16];
        int i;
        cli_sends(c, "POST /health HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
        snprintf(chunk, sizeof(chunk), "2000\r\n");
        memset(chunk + 6, 'z', 8192);
        memcpy(chunk + 6 + 8192, "\r\n", 3);
        for (i = 0; i < 9; i++) {
            cli_send(c, chunk, 6 + 8192 + 2);
        }
    }
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 413);
    resp_free(&r);
    cli_close(c);
}

static void test_garbage(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    response_t r;

    cli_sends(c, "HELLO THERE\r\n\r\n");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 400);
    assert_string_equal(resp_header(&r, "Connection"), "close");
    assert_non_null(strstr(r.body, "{\"error\":{\"code\":\"bad_request\",\"message\":\""));
    resp_free(&r);
    assert_true(cli_expect_eof(c));
    cli_close(c);

    /* A bad request after a good one on the same connection: in order, then closed. */
    c = cli_connect(fx);
    cli_sends(c, "GET /health HTTP/1.1\r\n\r\nGET /health HTTP/1.1\r\nBad Header\r\n\r\n");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    assert_true(cli_expect_eof(c));
    cli_close(c);
}

static void test_byte_at_a_time(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    const char *req = "GET /ready?x=1 HTTP/1.1\r\nHost: byte\r\nX-Long-Header: some value\r\n\r\n";
    response_t r;
    size_t i;

    for (i = 0; req[i] != '\0'; i++) {
        cli_send(c, &req[i], 1);
        sleep_ms(1);
    }
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "database not connected"));
    resp_free(&r);
    cli_close(c);
}

static int wait_connections(fixture_t *fx, int want) {
    int_box_t box = {-1};
    int i;

    for (i = 0; i < 500; i++) {
        run_on_loop(fx, job_connections, &box);
        if (box.value == want) {
            return 1;
        }
        sleep_ms(10);
    }
    return 0;
}

static void test_max_connections(void **state) {
    fixture_t *fx = *state; /* max_connections 2 */
    client_t *c1 = cli_connect(fx);
    client_t *c2 = cli_connect(fx);
    client_t *c3;
    client_t *c4;
    response_t r;

    get(c1, "/health", &r);
    resp_free(&r);
    get(c2, "/health", &r);
    resp_free(&r);
    assert_true(wait_connections(fx, 2));

    /* The third is accepted and closed at once, without an answer. */
    c3 = cli_connect(fx);
    cli_sends(c3, "GET /health HTTP/1.1\r\n\r\n");
    assert_true(cli_expect_eof(c3));
    cli_close(c3);
    assert_true(wait_connections(fx, 2));

    cli_close(c1);
    assert_true(wait_connections(fx, 1));
    c4 = cli_connect(fx);
    get(c4, "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "opsc_http_connections_rejected_total 1\n"));
    assert_non_null(strstr(r.body, "opsc_http_connections_open 2\n"));
    resp_free(&r);
    cli_close(c4);
    cli_close(c2);
}

static void test_idle_timeout(void **state) {
    fixture_t *fx = *state; /* idle 300 ms */
    client_t *c = cli_connect(fx);
    response_t r;

    get(c, "/health", &r);
    resp_free(&r);
    sleep_ms(100);
    get(c, "/health", &r); /* within the idle time: still open */
    resp_free(&r);
    /* Then nothing: closed without an answer after ~300 ms. */
    assert_true(cli_expect_eof(c));
    cli_close(c);

    /* A connection that never sends anything is idle too. */
    c = cli_connect(fx);
    assert_true(cli_expect_eof(c));
    cli_close(c);
}

static void test_header_timeout(void **state) {
    fixture_t *fx = *state; /* header timeout 300 ms */
    client_t *c = cli_connect(fx);
    response_t r;
    int i;

    /* Slowloris: a byte now and then does not extend the header deadline. */
    cli_sends(c, "GET /health HTTP/1.1\r\n");
    for (i = 0; i < 3; i++) {
        sleep_ms(50);
        cli_sends(c, "X-A: b\r\n");
    }
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 408);
    assert_non_null(strstr(r.body, "\"code\":\"request_timeout\""));
    resp_free(&r);
    assert_true(cli_expect_eof(c));
    cli_close(c);
}

static void test_close_with_connections(void **state) {
    fixture_t *fx = *state;
    client_t *idle = cli_connect(fx);
    client_t *partial = cli_connect(fx);
    client_t *late;
    state_query_t q = {OPSC__HTTP_HEADERS, 0};
    response_t r;
    int i;

    get(idle, "/health", &r);
    resp_free(&r);
    cli_sends(partial, "GET /health HTTP/1.1\r\nHost: t\r\n");
    for (i = 0; i < 500 && q.count == 0; i++) {
        run_on_loop(fx, job_count_state, &q);
        if (q.count == 0) {
            sleep_ms(10);
        }
    }
    assert_int_equal(q.count, 1);

    run_on_loop(fx, job_close, NULL);
    /* No more listening. */
    late = cli_connect_port(fx->family, fx->port);
    assert_null(late);
    /* The idle connection is closed at once. */
    assert_true(cli_expect_eof(idle));
    cli_close(idle);
    /* The request in progress gets its answer, marked as the last. */
    cli_sends(partial, "\r\n");
    assert_int_equal(cli_read_response(partial, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(resp_header(&r, "Connection"), "close");
    resp_free(&r);
    assert_true(cli_expect_eof(partial));
    cli_close(partial);
    for (i = 0; i < 500 && !atomic_load(&fx->done_called); i++) {
        sleep_ms(10);
    }
    assert_true(atomic_load(&fx->done_called));
}

static void job_close_then_abort(fixture_t *fx, void *arg) {
    opsc_ops_server_t *srv = fx->srv;
    (void)arg;
    job_close(fx, NULL);
    opsc_ops_server_abort(srv); /* the shutdown deadline passed */
}

static void test_close_abort(void **state) {
    fixture_t *fx = *state;
    client_t *partial = cli_connect(fx);
    state_query_t q = {OPSC__HTTP_HEADERS, 0};
    int i;

    cli_sends(partial, "GET /health HTTP/1.1\r\n");
    for (i = 0; i < 500 && q.count == 0; i++) {
        run_on_loop(fx, job_count_state, &q);
        if (q.count == 0) {
            sleep_ms(10);
        }
    }
    assert_int_equal(q.count, 1);
    run_on_loop(fx, job_close_then_abort, NULL);
    assert_true(cli_expect_eof(partial));
    cli_close(partial);
    for (i = 0; i < 500 && !atomic_load(&fx->done_called); i++) {
        sleep_ms(10);
    }
    assert_true(atomic_load(&fx->done_called));
}

static void test_ipv6(void **state) {
    fixture_t *fx = *state;
    client_t *c;
    response_t r;

    if (fx->skip) {
        skip();
    }
    c = cli_connect(fx);
    get(c, "/health", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    resp_free(&r);
    get(c, "/nope", &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    cli_close(c);
}

/* A client that resets the connection while we write must not kill the process (SIGPIPE). */
static void test_client_reset(void **state) {
    fixture_t *fx = *state;
    opsc_buf_t reqs = OPSC_BUF_INIT;
    struct linger lg = {1, 0};
    response_t r;
    client_t *c;
    int round;
    int i;

    /* Enough answers to pass the output high-water mark: the server stops
     * reading and is blocked in a write when the reset arrives. */
    for (i = 0; i < 2000; i++) {
        opsc_buf_appends(&reqs, "GET /metrics HTTP/1.1\r\n\r\n");
    }
    for (round = 0; round < 3; round++) {
        c = cli_connect(fx);
        cli_send(c, reqs.base, reqs.len);
        sleep_ms(50);
        (void)cli_fill(c);
        sleep_ms(50);
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        cli_close(c); /* RST */
    }
    opsc_buf_free(&reqs);
    /* Pipelined requests, then close at once: answers go to a closed socket. */
    for (round = 0; round < 50; round++) {
        c = cli_connect(fx);
        for (i = 0; i < 20; i++) {
            cli_sends(c, "GET /health HTTP/1.1\r\n\r\n");
        }
        cli_sends(c, "GET /hea");
        cli_close(c);
    }
    sleep_ms(100);
    c = cli_connect(fx);
    get(c, "/health", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    cli_close(c);
    assert_true(wait_connections(fx, 0));
}

/* Random and crafted hostile input: every connection ends, the server keeps serving. */
static void test_hostile_input(void **state) {
    fixture_t *fx = *state;
#define RAW(x)                                                                                     \
    { x, sizeof(x) - 1 }
    static const struct {
        const char *data;
        size_t len;
    } crafted[] = {
        RAW("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
        RAW("GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"),
        RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"),
        RAW("POST /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        RAW("POST /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\n"),
        RAW("GET /he\0alth HTTP/1.1\r\n\r\n"),
        RAW("GET * HTTP/1.1\r\n\r\n"),
        RAW("OPTIONS * HTTP/1.1\r\n\r\n"),
        RAW("GET http://example.com/health?x HTTP/1.1\r\n\r\n"),
        RAW("GET http://example.com HTTP/1.1\r\n\r\n"),
        RAW("GET /health HTTP/9.9\r\n\r\n"),
        RAW("GET /health HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
        RAW("CONNECT example.com:443 HTTP/1.1\r\n\r\n"),
        RAW("GET /health HTTP/1.1\r\n: empty-name\r\n\r\n"),
        RAW("GET /health HTTP/1.1\r\nX: \x01\x02\r\n\r\n"),
        RAW("GET /health HTTP/1.1\r\nX:\r\nY: \r\n\r\n"),
        RAW("\r\n\r\n\r\n"),
        RAW("GET /health HTTP/1.1\n\n"),
        RAW("GET /health HTTP/1.1\r\n\r\nGARBAGE\r\n\r\n"),
        RAW("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
    };
#undef RAW
    unsigned int seed = 12345;
    response_t r;
    client_t *c;
    size_t i;
    int k;

    for (i = 0; i < sizeof(crafted) / sizeof(crafted[0]); i++) {
        c = cli_connect(fx);
        cli_send(c, crafted[i].data, crafted[i].len);
        shutdown(c->fd, SHUT_WR);
        while (cli_fill(c) > 0) {
        }
        /* Whatever it answered, the connection ended (EOF, not a timeout). */
        assert_int_equal(recv(c->fd, c->buf, 1, 0), 0);
        if (c->len > 0) {
            assert_memory_equal(c->buf, "HTTP/1.1 ", 9);
        }
        cli_close(c);
    }
    for (k = 0; k < 200; k++) {
        char junk[512];
        size_t len = 1 + (size_t)(rand_r(&seed) % (int)sizeof(junk));
        size_t j;
        for (j = 0; j < len; j++) {
            junk[j] = (char)(rand_r(&seed) & 0xff);
        }
        if (k % 3 == 0) { /* a valid-looking start makes llhttp go deeper */
            memcpy(junk, "GET /", len < 5 ? len : 5);
        }
        c = cli_connect(fx);
        cli_send(c, junk, len);
        shutdown(c->fd, SHUT_WR);
        while (cli_fill(c) > 0) {
        }
        cli_close(c);
    }
    c = cli_connect(fx);
    get(c, "/health", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    cli_close(c);
}

/* ------------------------------------------------------------------------ */
/* Start-up: binding                                                        */

typedef struct {
    int done;
} done_flag_t;

static void flag_done(void *arg) {
    ((done_flag_t *)arg)->done = 1;
}

static void set_addr(opsc_listen_t *a, int family, const char *host, int port) {
    memset(a, 0, sizeof(*a));
    a->proto = OPSC_PROTO_TCP;
    a->family = family;
    snprintf(a->host, sizeof(a->host), "%s", host);
    a->port = port;
}

static void test_listen_failure(void **state) {
    uv_loop_t loop;
    opsc_listen_list_t list;
    opsc_ops_server_options_t opts;
    opsc_ops_server_t *srv = NULL;
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    char err[256] = "";
    char want[128];
    int fd;
    int rc;

    (void)state;
    /* Take a port. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);

    assert_int_equal(uv_loop_init(&loop), 0);
    memset(&list, 0, sizeof(list));
    list.count = 2;
    set_addr(&list.addr[0], AF_INET, "127.0.0.1", 0); /* opens fine, then is closed again */
    set_addr(&list.addr[1], AF_INET, "127.0.0.1", ntohs(sin.sin_port));
    memset(&opts, 0, sizeof(opts));
    opts.listen = &list;
    rc = opsc_ops_server_start(&loop, &opts, &srv, err, sizeof(err));
    assert_int_equal(rc, UV_EADDRINUSE);
    assert_null(srv);
    snprintf(want, sizeof(want), "http.listen 127.0.0.1:%d: address already in use",
             ntohs(sin.sin_port));
    assert_string_equal(err, want);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);

    /* Not an address. */
    assert_int_equal(uv_loop_init(&loop), 0);
    list.count = 1;
    set_addr(&list.addr[0], AF_INET, "localhost", 80);
    rc = opsc_ops_server_start(&loop, &opts, &srv, err, sizeof(err));
    assert_true(rc < 0);
    assert_non_null(strstr(err, "http.listen localhost:80"));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    close(fd);
}

/* 0.0.0.0:P and [::]:P at once (the IPv6 socket is IPv6-only). */
static void test_dual_stack_same_port(void **state) {
    uv_loop_t loop;
    opsc_listen_list_t list;
    opsc_ops_server_options_t opts;
    opsc_ops_server_t *srv = NULL;
    done_flag_t flag = {0};
    char err[256] = "";
    client_t *c;
    response_t r;
    int port;
    int rc;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    memset(&list, 0, sizeof(list));
    memset(&opts, 0, sizeof(opts));
    opts.listen = &list;
    list.count = 1;
    set_addr(&list.addr[0], AF_INET6, "::", 0);
    rc = opsc_ops_server_start(&loop, &opts, &srv, err, sizeof(err));
    if (rc != 0) {
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        skip(); /* no IPv6 */
    }
    port = opsc_ops_server_port(srv, 0);
    assert_true(port > 0);
    opsc_ops_server_close(srv, flag_done, &flag);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(flag.done);

    list.count = 2;
    set_addr(&list.addr[0], AF_INET, "0.0.0.0", port);
    set_addr(&list.addr[1], AF_INET6, "::", port);
    rc = opsc_ops_server_start(&loop, &opts, &srv, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(opsc_ops_server_port(srv, 0), port);
    assert_int_equal(opsc_ops_server_port(srv, 1), port);
    assert_true(opsc_ops_server_port(srv, 2) < 0);

    /* A v4 client reaches the 0.0.0.0 socket; run the loop while it waits. */
    c = cli_connect_port(AF_INET, port);
    assert_non_null(c);
    cli_sends(c, "GET /health HTTP/1.1\r\n\r\n");
    {
        int i;
        for (i = 0; i < 100; i++) {
            uv_run(&loop, UV_RUN_NOWAIT);
            sleep_ms(1);
        }
    }
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    cli_close(c);

    flag.done = 0;
    opsc_ops_server_close(srv, flag_done, &flag);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(flag.done);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_chunked_body(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    response_t r;

    /* Chunks split across sends, with an extension and a trailer: llhttp frames them. */
    cli_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n"
                 "4;ext=1\r\n{\"a\"\r\n");
    sleep_ms(20);
    cli_sends(c, "5\r\n:[1,2\r\n2\r\n]}\r\n0\r\nX-Trailer: t\r\n\r\n");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"a\":[1,2]}");
    resp_free(&r);
    /* Content-Length body on the same connection. */
    cli_sends(c,
              "PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Type: Application/JSON; charset=utf-8\r\n"
              "Content-Length: 2\r\n\r\n[]");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "[]");
    resp_free(&r);
    cli_close(c);

    /* A bad chunk size is malformed: 400 and close. */
    c = cli_connect(fx);
    cli_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                 "Transfer-Encoding: chunked\r\n\r\nzz\r\n");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "\"code\":\"bad_request\""));
    resp_free(&r);
    assert_true(cli_expect_eof(c));
    cli_close(c);

    /* Both Content-Length and chunked (request smuggling): refused. */
    c = cli_connect(fx);
    cli_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                 "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    cli_close(c);
}

static void test_expect_continue(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    response_t r;

    /* Accepted: 100 Continue first, and only then do we send the body. */
    cli_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                 "Expect: 100-continue\r\nContent-Length: 7\r\n\r\n");
    assert_int_equal(cli_expect_bytes(c, "HTTP/1.1 100 Continue\r\n\r\n"), 0);
    cli_sends(c, "{\"x\":1}");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"x\":1}");
    resp_free(&r);
    cli_close(c);

    /* Refused: the final status at once, no 100, then close. */
    {
        static const struct {
            const char *req;
            int status;
        } cases[] = {
            {"POST /nowhere HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 404},
            {"POST /health HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 405},
            {"POST /echo HTTP/1.1\r\nContent-Type: text/plain\r\nExpect: 100-continue\r\n"
             "Content-Length: 5\r\n\r\n",
             415},
            {"POST /echo HTTP/1.1\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
             "Content-Length: 70000\r\n\r\n",
             413},
            {"POST /echo HTTP/1.1\r\nContent-Type: application/json\r\nExpect: 200-ok\r\n"
             "Content-Length: 5\r\n\r\n",
             417},
        };
        size_t i;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            c = cli_connect(fx);
            cli_sends(c, cases[i].req);
            assert_int_equal(cli_read_response(c, &r, 0), 0);
            assert_int_equal(r.status, cases[i].status);
            assert_non_null(strstr(r.body, "{\"error\":{\"code\":"));
            assert_string_equal(resp_header(&r, "Connection"), "close");
            if (cases[i].status == 405) {
                assert_string_equal(resp_header(&r, "Allow"), "GET, HEAD");
            }
            resp_free(&r);
            assert_true(cli_expect_eof(c));
            cli_close(c);
        }
    }
}

static void test_unsupported_media_type(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    response_t r;

    /* Without Expect the body is read and dropped, and the connection stays usable. */
    cli_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
                 "Content-Length: 5\r\n\r\nhello");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 415);
    assert_non_null(strstr(r.body, "\"code\":\"unsupported_media_type\""));
    assert_non_null(strstr(r.body, "\"field\":\"Content-Type\""));
    assert_non_null(strstr(r.body, "application/json"));
    resp_free(&r);
    /* No Content-Type at all. */
    cli_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 415);
    resp_free(&r);
    /* application/jsonx is another type. */
    cli_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/jsonx\r\n"
                 "Content-Length: 2\r\n\r\n{}");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 415);
    resp_free(&r);
    get(c, "/health", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    cli_close(c);
}

static void test_route_body_limit(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    opsc_buf_t req = OPSC_BUF_INIT;
    response_t r;
    char *big = malloc(100000);

    assert_non_null(big);
    memset(big, 'x', 100000);
    /* /bulk declares 256 KiB: 100000 bytes pass although the server default is 64 KiB. */
    opsc_buf_printf(&req, "POST /bulk HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
    opsc_buf_append(&req, big, 100000);
    cli_send(c, req.base, req.len);
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"len\":100000}");
    resp_free(&r);
    /* ... and chunked, over its own limit: 413 as the chunks arrive. */
    opsc_buf_reset(&req);
    opsc_buf_printf(&req, "POST /bulk HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    cli_send(c, req.base, req.len);
    {
        int i;
        for (i = 0; i < 3; i++) {
            opsc_buf_reset(&req);
            opsc_buf_printf(&req, "%x\r\n", 100000);
            opsc_buf_append(&req, big, 100000);
            opsc_buf_appends(&req, "\r\n");
            if (send(c->fd, req.base, req.len, MSG_NOSIGNAL) <= 0) {
                break; /* the server may answer and close before all of it is sent */
            }
        }
    }
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.body, "\"code\":\"payload_too_large\""));
    resp_free(&r);
    cli_close(c);

    /* /echo has the server's limit. */
    c = cli_connect(fx);
    opsc_buf_reset(&req);
    opsc_buf_printf(&req, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                          "Content-Length: 100000\r\n\r\n");
    cli_send(c, req.base, req.len);
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 413);
    resp_free(&r);
    cli_close(c);
    opsc_buf_free(&req);
    free(big);
}

static void test_error_helpers(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    response_t r;
    json_t *j;
    json_error_t jerr;

    get(c, "/err/422", &r);
    assert_int_equal(r.status, 422);
    assert_non_null(strstr(r.head, "HTTP/1.1 422 Unprocessable Content\r\n"));
    assert_string_equal(resp_header(&r, "Content-Type"), "application/json");
    j = json_loads(r.body, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                        "validation");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "field")),
                        "items[3].severity");
    assert_non_null(json_string_value(json_object_get(json_object_get(j, "error"), "message")));
    json_decref(j);
    resp_free(&r);

    get(c, "/err/503", &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(resp_header(&r, "Retry-After"), "2");
    assert_non_null(strstr(r.body, "\"code\":\"overloaded\""));
    assert_null(strstr(r.body, "\"field\""));
    resp_free(&r);

    get(c, "/err/429", &r);
    assert_int_equal(r.status, 429);
    assert_string_equal(resp_header(&r, "Retry-After"), "1");
    resp_free(&r);

    get(c, "/err/409", &r);
    assert_int_equal(r.status, 409);
    assert_non_null(strstr(r.body, "\"field\":\"status\""));
    resp_free(&r);

    /* Prefix route: the query reaches the handler raw. */
    get(c, "/err/other?a=1&b=%20", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"path\":\"/err/other\",\"query\":\"a=1&b=%20\"}");
    resp_free(&r);
    /* A GET-only prefix route answers 405 with its Allow for other methods. */
    cli_sends(c, "DELETE /err/x HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 405);
    assert_string_equal(resp_header(&r, "Allow"), "GET");
    resp_free(&r);
    cli_close(c);
}

/* GET /later answers 200 "later" 50 ms after it arrives; a pipelined GET /health waits its turn. */
static void later_then_health(fixture_t *fx, const char *first, const char *rest) {
    client_t *c = cli_connect(fx);
    response_t r;

    cli_sends(c, first);
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "later");
    resp_free(&r);
    if (rest != NULL) {
        cli_sends(c, rest);
    }
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    resp_free(&r);
    cli_close(c);
}

static void test_async_answer_in_order(void **state) {
    later_then_health(
        *state, "GET /later HTTP/1.1\r\nHost: t\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\n\r\n",
        NULL);
}

/*
 * Found by fuzz_http_request: a complete request whose handler answers later
 * than body_timeout_ms got "408 request body not received in time" and its
 * connection closed, so the handler ran and the client was told it failed.
 * No request timeout runs while the handler works; a pipelined byte read
 * meanwhile does not restart one either.
 */
static void test_async_answer_after_body_timeout(void **state) {
    later_then_health(*state, "GET /later HTTP/1.1\r\nHost: t\r\n\r\nG",
                      "ET /health HTTP/1.1\r\nHost: t\r\n\r\n");
}

static void test_configured_limits(void **state) {
    fixture_t *fx = *state;
    client_t *c = cli_connect(fx);
    opsc_buf_t req = OPSC_BUF_INIT;
    response_t r;
    int i;

    /* max_headers = 10: ten pass, eleven are 431. */
    opsc_buf_appends(&req, "GET /health HTTP/1.1\r\n");
    for (i = 0; i < 10; i++) {
        opsc_buf_printf(&req, "X-H%d: v\r\n", i);
    }
    opsc_buf_appends(&req, "\r\n");
    cli_send(c, req.base, req.len);
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    opsc_buf_reset(&req);
    opsc_buf_appends(&req, "GET /health HTTP/1.1\r\n");
    for (i = 0; i < 11; i++) {
        opsc_buf_appends(&req, "X-Same: duplicated\r\n");
    }
    opsc_buf_appends(&req, "\r\n");
    cli_send(c, req.base, req.len);
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 431);
    assert_non_null(strstr(r.body, "too many header fields"));
    resp_free(&r);
    assert_true(cli_expect_eof(c));
    cli_close(c);

    /* max_url_bytes = 300. */
    c = cli_connect(fx);
    opsc_buf_reset(&req);
    opsc_buf_appends(&req, "GET /err/");
    for (i = 0; i < 250; i++) {
        opsc_buf_appends(&req, "a");
    }
    opsc_buf_appends(&req, " HTTP/1.1\r\n\r\n");
    cli_send(c, req.base, req.len);
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    opsc_buf_reset(&req);
    opsc_buf_appends(&req, "GET /err/");
    for (i = 0; i < 400; i++) {
        opsc_buf_appends(&req, "a");
    }
    opsc_buf_appends(&req, " HTTP/1.1\r\n\r\n");
    cli_send(c, req.base, req.len);
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 414);
    resp_free(&r);
    cli_close(c);
    opsc_buf_free(&req);

    /* body_timeout = 300 ms of silence mid-body: 408, then close. */
    c = cli_connect(fx);
    cli_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                 "Content-Length: 10\r\n\r\n{\"a\"");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 408);
    assert_non_null(strstr(r.body, "body"));
    resp_free(&r);
    assert_true(cli_expect_eof(c));
    cli_close(c);

    /* A trickling body is not silent: each byte re-arms the body timer. */
    c = cli_connect(fx);
    cli_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                 "Content-Length: 4\r\n\r\n");
    for (i = 0; i < 4; i++) {
        assert_true(cli_quiet_for(c, 200));
        cli_send(c, &"[12]"[i], 1);
    }
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "[12]");
    resp_free(&r);
    cli_close(c);

    /* An unterminated chunked body ends the same way. */
    c = cli_connect(fx);
    cli_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\"");
    assert_int_equal(cli_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 408);
    resp_free(&r);
    cli_close(c);
}

static void test_tls_config_errors(void **state) {
    uv_loop_t loop;
    opsc_listen_list_t plain;
    opsc_listen_list_t tls;
    opsc_ops_server_options_t opts;
    opsc_ops_server_t *srv = NULL;
    char err[256] = "";
    char path[] = "/tmp/opsc_test_pem_XXXXXX";
    int fd;

    (void)state;
    memset(&plain, 0, sizeof(plain));
    memset(&tls, 0, sizeof(tls));
    memset(&opts, 0, sizeof(opts));
    plain.count = 1;
    plain.addr[0].proto = OPSC_PROTO_TCP;
    plain.addr[0].family = AF_INET;
    snprintf(plain.addr[0].host, sizeof(plain.addr[0].host), "127.0.0.1");
    tls = plain;
    opts.listen = &plain;
    opts.tls_listen = &tls;
    assert_int_equal(uv_loop_init(&loop), 0);

    /* No files named. */
    assert_int_equal(opsc_ops_server_start(&loop, &opts, &srv, err, sizeof(err)), OPSC_ECONFIG);
    assert_null(srv);
    assert_non_null(strstr(err, "http.tls.cert"));
    /* A missing file is named with the key. */
    opts.tls_cert = "/nonexistent/cert.pem";
    opts.tls_key = "/nonexistent/key.pem";
    assert_int_equal(opsc_ops_server_start(&loop, &opts, &srv, err, sizeof(err)), OPSC_ECONFIG);
    assert_non_null(strstr(err, "http.tls.cert /nonexistent/cert.pem"));
    /* A file that is not PEM. */
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a certificate\n", 18), 18);
    close(fd);
    opts.tls_cert = path;
    assert_int_equal(opsc_ops_server_start(&loop, &opts, &srv, err, sizeof(err)), OPSC_ECONFIG);
    assert_non_null(strstr(err, "http.tls.cert"));
    assert_non_null(strstr(err, path));
    unlink(path);
    /* Nothing was left open. */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void set_flag(void *arg) {
    *(int *)arg = 1;
}

/* Pump the in-memory connection and the loop until it closed (bounded). */
static void mem_run(uv_loop_t *loop, opsc_test_mem_t *m) {
    for (int i = 0; i < 100 && !m->close_done; i++) {
        (void)opsc_test_mem_pump(m);
        uv_run(loop, UV_RUN_NOWAIT);
    }
}

/*
 * The in-process seam the HTTP fuzzer uses (opsc__http_server_create,
 * opsc__http_conn_attach, tests/support/mem_transport.h): pipelined
 * requests and a half-close with no socket, answered in order, then closed.
 */
static void test_mem_connection(void **state) {
    static const char reqs[] = "POST /echo HTTP/1.1\r\nContent-Type: application/json\r\n"
                               "Content-Length: 2\r\n\r\n{}"
                               "GET /err/x?q=1 HTTP/1.1\r\n\r\n"
                               "GET /nope HTTP/1.1\r\n\r\n"
                               "GET /health HTTP/1.0\r\n\r\n"
                               "GET /health HTTP/1.1\r\n\r\n";
    opsc_ops_server_options_t opts = {.max_body_bytes = 1024};
    opsc_ops_server_t *srv = NULL;
    opsc__http_conn_t *c = NULL;
    opsc_test_mem_t m;
    uv_loop_t loop;
    const char *w;
    int done = 0;

    (void)state;
    memset(&m, 0, sizeof(m));
    opsc_log_set_level(OPSC_LOG_WARN);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(opsc__http_server_create(&loop, &opts, &srv), 0);
    assert_int_equal(opsc_ops_server_add_routes(srv, test_routes,
                                                sizeof(test_routes) / sizeof(test_routes[0]), NULL),
                     0);
    assert_int_equal(opsc__http_conn_attach(srv, opsc_test_mem_init, &m, &c), 0);
    assert_non_null(c);
    assert_int_equal(opsc_ops_server_connections(srv), 1);
    assert_int_equal(opsc_test_mem_send(&m, reqs, sizeof(reqs) - 1), 0);
    m.read_max = 7; /* requests split across reads */
    m.eof = 1;
    mem_run(&loop, &m);
    assert_null(m.violation);
    assert_true(m.close_done);
    w = m.wire.base;
    assert_non_null(w);
    w = strstr(w, "HTTP/1.1 200 OK\r\n");
    assert_non_null(w);
    w = strstr(w, "\r\n\r\n{}HTTP/1.1 200 OK\r\n");
    assert_non_null(w);
    w = strstr(w, "{\"path\":\"/err/x\",\"query\":\"q=1\"}HTTP/1.1 404 Not Found\r\n");
    assert_non_null(w);
    w = strstr(w, "HTTP/1.1 200 OK\r\n");
    assert_non_null(w);
    w = strstr(w, "Connection: close\r\n\r\n{\"status\":\"ok\"}");
    assert_non_null(w);
    /* The HTTP/1.0 answer closed the connection: the last request is not answered. */
    assert_null(strstr(w + 1, "HTTP/1.1"));
    assert_int_equal(opsc_ops_server_connections(srv), 0);
    /* Nothing left open: close finishes at once. */
    opsc_ops_server_close(srv, set_flag, &done);
    assert_int_equal(done, 1);
    opsc_test_mem_free(&m);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_date_format(void **state) {
    char buf[64];

    (void)state;
    opsc__http_format_date(784111777, buf, sizeof(buf));
    assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
    opsc__http_format_date(0, buf, sizeof(buf));
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_date_format),
        cmocka_unit_test(test_mem_connection),
        cmocka_unit_test_setup_teardown(test_health, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ready, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_endpoint, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_not_twice, setup_self_metrics, fx_teardown),
        cmocka_unit_test_setup_teardown(test_not_found, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_method_not_allowed, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_head, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pipelined, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_many_pipelined, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_connection_close, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_http10, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_header_too_large, setup_small, fx_teardown),
        cmocka_unit_test_setup_teardown(test_uri_too_long, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_body_too_large, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_byte_at_a_time, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_max_connections, setup_maxconn, fx_teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout, setup_small, fx_teardown),
        cmocka_unit_test_setup_teardown(test_header_timeout, setup_small, fx_teardown),
        cmocka_unit_test_setup_teardown(test_close_with_connections, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_close_abort, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ipv6, setup_v6, fx_teardown),
        cmocka_unit_test_setup_teardown(test_client_reset, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_hostile_input, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_chunked_body, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_expect_continue, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unsupported_media_type, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_route_body_limit, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_error_helpers, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_async_answer_in_order, setup_v4, fx_teardown),
        cmocka_unit_test_setup_teardown(test_async_answer_after_body_timeout, setup_short_body,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_configured_limits, setup_limits, fx_teardown),
        cmocka_unit_test(test_tls_config_errors),
        cmocka_unit_test(test_listen_failure),
        cmocka_unit_test(test_dual_stack_same_port),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
