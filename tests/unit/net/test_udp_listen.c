/*
 * UDP listeners against real loopback sockets on a real loop. The client
 * sockets live on the same loop thread: a timer sends bursts, the listener
 * receives between them, a deadline timer bounds the whole exchange.
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
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <uv.h>

#include "opsc/buf.h"
#include "opsc/log.h"
#include "opsc/udp_listen.h"

#define TOTAL 1000
#define BURST 50
#define DEADLINE_MS 10000

typedef struct {
    uv_loop_t loop;
    uv_timer_t sender;
    uv_timer_t deadline;
    opsc_udp_listen_t *u;
    int have_v6;
    int port[2]; /* listener ports: v4, v6 */
    int cfd[2];  /* client sockets */
    struct sockaddr_storage caddr[2];
    int sent;
    int received;
    uint64_t bytes;
    uint64_t expected_bytes;
    int bad; /* wrong payload, length or source */
    int dup;
    int timed_out;
    int closed;
    unsigned char seen[TOTAL];
    int replied;
    int wrong_listener;
} udp_fx_t;

static void listen_done(void *arg) {
    ((udp_fx_t *)arg)->closed = 1;
}

static void listen_done_int(void *arg) {
    *(int *)arg = 1;
}

static void set_addr(opsc_listen_t *a, int family, const char *host, int port) {
    memset(a, 0, sizeof(*a));
    a->proto = OPSC_PROTO_UDP;
    a->family = family;
    snprintf(a->host, sizeof(a->host), "%s", host);
    a->port = port;
}

static int ipv6_available(void) {
    struct sockaddr_in6 sin6;
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    int ok;

    if (fd < 0) {
        return 0;
    }
    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    sin6.sin6_addr = in6addr_loopback;
    ok = bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
    close(fd);
    return ok;
}

/* Datagram i: "trap NNNNN " then a pattern, 20..419 bytes long. */
static size_t payload_len(int i) {
    return 20 + (size_t)((i * 37) % 400);
}

static void make_payload(int i, char *buf) {
    size_t len = payload_len(i);
    size_t k;

    snprintf(buf, 12, "trap %05u ", (unsigned)i % 100000u);
    for (k = 11; k < len; k++) {
        buf[k] = (char)('a' + (int)((k + (size_t)i) % 26));
    }
}

static int same_addr(const struct sockaddr *a, const struct sockaddr_storage *b) {
    if (a->sa_family != b->ss_family) {
        return 0;
    }
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
}

static void on_datagram(const void *data, size_t len, const struct sockaddr *from, uint64_t recv_ns,
                        int listener, void *arg) {
    udp_fx_t *fx = arg;
    char want[512];
    int i;

    if (recv_ns == 0 || len < 11 || sscanf(data, "trap %05d ", &i) != 1 || i < 0 || i >= TOTAL) {
        fx->bad++;
        return;
    }
    make_payload(i, want);
    if (len != payload_len(i) || memcmp(data, want, len) != 0) {
        fx->bad++;
    }
    /* Even datagrams came from the v4 client, odd ones from v6 (when there is v6). */
    if (!same_addr(from, &fx->caddr[fx->have_v6 ? i % 2 : 0])) {
        fx->bad++;
    }
    if (listener != (fx->have_v6 ? i % 2 : 0)) {
        fx->wrong_listener++;
    }
    /* Every 100th is answered from the socket it came in on (what an INFORM gets). */
    if (i % 100 == 0 && opsc_udp_listen_send(fx->u, listener, data, len, from) == 0) {
        fx->replied++;
    }
    if (fx->seen[i]) {
        fx->dup++;
    }
    fx->seen[i] = 1;
    fx->received++;
    fx->bytes += len;
    if (fx->received == TOTAL) {
        uv_stop(&fx->loop);
    }
}

static void sender_cb(uv_timer_t *t) {
    udp_fx_t *fx = t->data;
    char buf[512];
    int n;

    for (n = 0; n < BURST && fx->sent < TOTAL; n++) {
        int i = fx->sent;
        int side = fx->have_v6 ? i % 2 : 0;
        make_payload(i, buf);
        if (send(fx->cfd[side], buf, payload_len(i), 0) < 0) {
            break; /* EAGAIN: try again on the next tick */
        }
        fx->expected_bytes += payload_len(i);
        fx->sent++;
    }
    if (fx->sent == TOTAL) {
        uv_timer_stop(t);
    }
}

static void deadline_cb(uv_timer_t *t) {
    udp_fx_t *fx = t->data;

    fx->timed_out = 1;
    uv_stop(&fx->loop);
}

/* A connected, non-blocking client socket towards 127.0.0.1 / ::1 port. */
static int client_socket(int family, int port, struct sockaddr_storage *self) {
    struct sockaddr_storage ss;
    socklen_t len;
    int fd = socket(family, SOCK_DGRAM, 0);

    assert_true(fd >= 0);
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    }
    assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
    len = sizeof(*self);
    assert_int_equal(getsockname(fd, (struct sockaddr *)self, &len), 0);
    assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    return fd;
}

static void close_and_drain(udp_fx_t *fx) {
    opsc_udp_listen_close(fx->u, listen_done, fx);
    fx->u = NULL;
    uv_close((uv_handle_t *)&fx->sender, NULL);
    uv_close((uv_handle_t *)&fx->deadline, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_true(fx->closed);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
}

static void test_receive_all(void **state) {
    udp_fx_t *fx = calloc(1, sizeof(*fx));
    opsc_listen_list_t list;
    opsc_buf_t m = OPSC_BUF_INIT;
    char err[256] = "";
    char line[256];
    int i;

    (void)state;
    assert_non_null(fx);
    opsc_log_set_level(OPSC_LOG_WARN);
    fx->have_v6 = ipv6_available();
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    memset(&list, 0, sizeof(list));
    set_addr(&list.addr[list.count++], AF_INET, "127.0.0.1", 0);
    if (fx->have_v6) {
        set_addr(&list.addr[list.count++], AF_INET6, "::1", 0);
    }
    assert_int_equal(
        opsc_udp_listen_start(&fx->loop, &list, 0, on_datagram, fx, &fx->u, err, sizeof(err)), 0);
    fx->port[0] = opsc_udp_listen_port(fx->u, 0);
    assert_true(fx->port[0] > 0);
    assert_true(opsc_udp_listen_rcvbuf(fx->u, 0) > 0);
    fx->cfd[0] = client_socket(AF_INET, fx->port[0], &fx->caddr[0]);
    if (fx->have_v6) {
        fx->port[1] = opsc_udp_listen_port(fx->u, 1);
        assert_true(fx->port[1] > 0);
        fx->cfd[1] = client_socket(AF_INET6, fx->port[1], &fx->caddr[1]);
    }
    assert_true(opsc_udp_listen_port(fx->u, 5) < 0);

    uv_timer_init(&fx->loop, &fx->sender);
    fx->sender.data = fx;
    uv_timer_init(&fx->loop, &fx->deadline);
    fx->deadline.data = fx;
    uv_timer_start(&fx->sender, sender_cb, 0, 1);
    uv_timer_start(&fx->deadline, deadline_cb, DEADLINE_MS, 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);

    assert_false(fx->timed_out);
    assert_int_equal(fx->received, TOTAL);
    assert_int_equal(fx->bad, 0);
    assert_int_equal(fx->dup, 0);
    assert_int_equal(fx->bytes, fx->expected_bytes);
    assert_int_equal(fx->wrong_listener, 0);
    for (i = 0; i < TOTAL; i++) {
        assert_true(fx->seen[i]);
    }
    /* The replies reached the clients, from the address they sent to. */
    {
        int got = 0;
        char rb[512];
        for (int side = 0; side < (fx->have_v6 ? 2 : 1); side++) {
            while (recv(fx->cfd[side], rb, sizeof(rb), MSG_DONTWAIT) > 0) {
                got++;
            }
        }
        assert_true(fx->replied > 0);
        assert_int_equal(got, fx->replied);
    }

    opsc_udp_listen_metrics(&m, fx->u);
    snprintf(line, sizeof(line),
             "opsc_snmp_datagrams_received_total{listener=\"udp:127.0.0.1:%d\"} %d\n", fx->port[0],
             fx->have_v6 ? TOTAL / 2 : TOTAL);
    assert_non_null(strstr(m.base, line));
    if (fx->have_v6) {
        snprintf(line, sizeof(line),
                 "opsc_snmp_datagrams_received_total{listener=\"udp6:[::1]:%d\"} %d\n", fx->port[1],
                 TOTAL / 2);
        assert_non_null(strstr(m.base, line));
    }
    snprintf(line, sizeof(line),
             "opsc_snmp_datagrams_dropped_total{listener=\"udp:127.0.0.1:%d\",reason=\"no_"
             "consumer\"} 0\n",
             fx->port[0]);
    assert_non_null(strstr(m.base, line));
    assert_non_null(strstr(m.base, "# TYPE opsc_snmp_bytes_received_total counter\n"));
    assert_non_null(strstr(m.base, "# TYPE opsc_snmp_receive_errors_total counter\n"));
    assert_non_null(strstr(m.base, "# TYPE opsc_udp_kernel_rcvbuf_errors_total counter\n"));
    assert_non_null(strstr(m.base, "opsc_udp_kernel_rcvbuf_errors_total{proto=\"udp\"} "));
    assert_non_null(strstr(m.base, "Machine-wide"));
    opsc_buf_free(&m);

    close(fx->cfd[0]);
    if (fx->have_v6) {
        close(fx->cfd[1]);
    }
    close_and_drain(fx);
    free(fx);
}

static void stop_when(uv_timer_t *t) {
    udp_fx_t *fx = t->data;
    opsc_buf_t m = OPSC_BUF_INIT;
    char line[256];

    opsc_udp_listen_metrics(&m, fx->u);
    snprintf(line, sizeof(line),
             "opsc_snmp_datagrams_dropped_total{listener=\"udp:127.0.0.1:%d\",reason=\"no_"
             "consumer\"} 10\n",
             fx->port[0]);
    if (strstr(m.base, line) != NULL) {
        uv_stop(&fx->loop);
    }
    opsc_buf_free(&m);
}

static void test_no_consumer(void **state) {
    udp_fx_t *fx = calloc(1, sizeof(*fx));
    opsc_listen_list_t list;
    char err[256] = "";
    int i;

    (void)state;
    assert_non_null(fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    memset(&list, 0, sizeof(list));
    list.count = 1;
    set_addr(&list.addr[0], AF_INET, "127.0.0.1", 0);
    assert_int_equal(opsc_udp_listen_start(&fx->loop, &list, 0, NULL, NULL, &fx->u, err, sizeof(err)),
                     0);
    fx->port[0] = opsc_udp_listen_port(fx->u, 0);
    fx->cfd[0] = client_socket(AF_INET, fx->port[0], &fx->caddr[0]);
    for (i = 0; i < 10; i++) {
        assert_int_equal(send(fx->cfd[0], "x", 1, 0), 1);
    }
    uv_timer_init(&fx->loop, &fx->sender);
    fx->sender.data = fx;
    uv_timer_init(&fx->loop, &fx->deadline);
    fx->deadline.data = fx;
    uv_timer_start(&fx->sender, stop_when, 1, 1);
    uv_timer_start(&fx->deadline, deadline_cb, DEADLINE_MS, 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_false(fx->timed_out);
    close(fx->cfd[0]);
    close_and_drain(fx);
    free(fx);
}

static void test_bind_failure(void **state) {
    uv_loop_t loop;
    opsc_listen_list_t list;
    opsc_udp_listen_t *u = NULL;
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    char err[256] = "";
    char want[160];
    int fd;
    int rc;

    (void)state;
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);

    assert_int_equal(uv_loop_init(&loop), 0);
    memset(&list, 0, sizeof(list));
    list.count = 2;
    set_addr(&list.addr[0], AF_INET, "127.0.0.1", 0); /* opened, then closed again */
    set_addr(&list.addr[1], AF_INET, "127.0.0.1", ntohs(sin.sin_port));
    rc = opsc_udp_listen_start(&loop, &list, 0, on_datagram, NULL, &u, err, sizeof(err));
    assert_int_equal(rc, UV_EADDRINUSE);
    assert_null(u);
    snprintf(want, sizeof(want), "snmp.listen udp:127.0.0.1:%d: address already in use",
             ntohs(sin.sin_port));
    assert_string_equal(err, want);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);

    /* Not an address. */
    assert_int_equal(uv_loop_init(&loop), 0);
    list.count = 1;
    set_addr(&list.addr[0], AF_INET6, "not-an-ip", 162);
    rc = opsc_udp_listen_start(&loop, &list, 0, NULL, NULL, &u, err, sizeof(err));
    assert_true(rc < 0);
    assert_string_equal(err, "snmp.listen udp6:[not-an-ip]:162: not a numeric UDP address");
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    close(fd);
}

/* udp:0.0.0.0:P and udp6:[::]:P at once (the IPv6 socket is IPv6-only). */
static void test_dual_stack_same_port(void **state) {
    uv_loop_t loop;
    opsc_listen_list_t list;
    opsc_udp_listen_t *u = NULL;
    char err[256] = "";
    int closed = 0;
    int port;

    (void)state;
    if (!ipv6_available()) {
        skip();
    }
    assert_int_equal(uv_loop_init(&loop), 0);
    memset(&list, 0, sizeof(list));
    list.count = 1;
    set_addr(&list.addr[0], AF_INET6, "::", 0);
    assert_int_equal(opsc_udp_listen_start(&loop, &list, 0, NULL, NULL, &u, err, sizeof(err)), 0);
    port = opsc_udp_listen_port(u, 0);
    opsc_udp_listen_close(u, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);

    list.count = 2;
    set_addr(&list.addr[0], AF_INET, "0.0.0.0", port);
    set_addr(&list.addr[1], AF_INET6, "::", port);
    assert_int_equal(opsc_udp_listen_start(&loop, &list, 0, NULL, NULL, &u, err, sizeof(err)), 0);
    assert_int_equal(opsc_udp_listen_port(u, 0), port);
    assert_int_equal(opsc_udp_listen_port(u, 1), port);
    opsc_udp_listen_close(u, listen_done_int, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(closed);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/*
 * snmp.max_per_wakeup: a flood already waiting in the kernel buffer is read
 * at most `cap` datagrams per loop iteration, an idle handle runs between
 * those slices, and nothing is lost or duplicated.
 */
#define FLOOD 2000

typedef struct {
    uv_loop_t loop;
    uv_idle_t idle;
    uv_timer_t deadline;
    opsc_udp_listen_t *u;
    int received;
    int this_turn;   /* datagrams since the idle handle last ran */
    int max_turn;    /* most datagrams in one iteration */
    int turns;       /* iterations that delivered datagrams */
    int idle_between; /* idle callbacks that ran while datagrams were still due */
    int dup;
    unsigned char seen[FLOOD];
    int timed_out;
} cap_fx_t;

static void cap_on_datagram(const void *data, size_t len, const struct sockaddr *from,
                            uint64_t recv_ns, int listener, void *arg) {
    cap_fx_t *fx = arg;
    unsigned i;

    (void)from;
    (void)recv_ns;
    (void)listener;
    if (len < 4 || sscanf(data, "%u", &i) != 1 || i >= FLOOD) {
        return;
    }
    if (fx->seen[i]) {
        fx->dup++;
    }
    fx->seen[i] = 1;
    fx->received++;
    fx->this_turn++;
    if (fx->received == FLOOD) {
        uv_stop(&fx->loop);
    }
}

static void cap_idle_cb(uv_idle_t *h) {
    cap_fx_t *fx = h->data;

    if (fx->this_turn > 0) {
        fx->turns++;
        if (fx->this_turn > fx->max_turn) {
            fx->max_turn = fx->this_turn;
        }
        if (fx->received < FLOOD) {
            fx->idle_between++;
        }
    }
    fx->this_turn = 0;
}

static void cap_deadline_cb(uv_timer_t *t) {
    cap_fx_t *fx = t->data;

    fx->timed_out = 1;
    uv_stop(&fx->loop);
}

static void run_cap(unsigned cap, int *max_turn, int *turns, uint64_t *pauses) {
    cap_fx_t *fx = calloc(1, sizeof(*fx));
    opsc_listen_list_t list;
    char err[256];
    char buf[64];
    struct sockaddr_storage self;
    int closed = 0;
    int fd;
    int i;

    assert_non_null(fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    memset(&list, 0, sizeof(list));
    set_addr(&list.addr[0], AF_INET, "127.0.0.1", 0);
    list.count = 1;
    assert_int_equal(opsc_udp_listen_start(&fx->loop, &list, 0, cap_on_datagram, fx, &fx->u, err,
                                           sizeof(err)),
                     0);
    opsc_udp_listen_set_max_per_wakeup(fx->u, cap);
    /* The whole flood waits in the (16 MiB) receive buffer before the loop runs. */
    fd = client_socket(AF_INET, opsc_udp_listen_port(fx->u, 0), &self);
    for (i = 0; i < FLOOD; i++) {
        int n = snprintf(buf, sizeof(buf), "%05d flood datagram", i);
        assert_true(send(fd, buf, (size_t)n, 0) == n);
    }
    uv_idle_init(&fx->loop, &fx->idle);
    fx->idle.data = fx;
    uv_idle_start(&fx->idle, cap_idle_cb);
    uv_timer_init(&fx->loop, &fx->deadline);
    fx->deadline.data = fx;
    uv_timer_start(&fx->deadline, cap_deadline_cb, DEADLINE_MS, 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    cap_idle_cb(&fx->idle); /* account the last slice */

    assert_false(fx->timed_out);
    assert_int_equal(fx->received, FLOOD);
    assert_int_equal(fx->dup, 0);
    *max_turn = fx->max_turn;
    *turns = fx->turns;
    *pauses = opsc_udp_listen_pauses(fx->u);
    assert_true(fx->idle_between >= fx->turns - 1);

    close(fd);
    uv_close((uv_handle_t *)&fx->idle, NULL);
    uv_close((uv_handle_t *)&fx->deadline, NULL);
    opsc_udp_listen_close(fx->u, listen_done_int, &closed);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_true(closed);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    free(fx);
}

static void test_cap_below_batch(void **state) {
    int max_turn;
    int turns;
    uint64_t pauses;

    (void)state;
    run_cap(7, &max_turn, &turns, &pauses);
    assert_int_equal(max_turn, 7);
    assert_true(turns >= FLOOD / 7);
    assert_true(pauses >= (uint64_t)(FLOOD / 7 - 1));
}

/* 30 is neither a multiple of libuv's 20-message batch nor its own limit (40). */
static void test_cap_across_batches(void **state) {
    int max_turn;
    int turns;
    uint64_t pauses;

    (void)state;
    run_cap(30, &max_turn, &turns, &pauses);
    assert_int_equal(max_turn, 30);
    assert_true(turns >= FLOOD / 30);
    assert_true(pauses > 0);
}

/* At libuv's own limit or above: still bounded, and no stop/start is needed for it. */
static void test_cap_at_libuv_limit(void **state) {
    int max_turn;
    int turns;
    uint64_t pauses;

    (void)state;
    run_cap(40, &max_turn, &turns, &pauses);
    assert_true(max_turn <= 40);
    assert_true(turns >= FLOOD / 40);
    run_cap(35, &max_turn, &turns, &pauses);
    assert_int_equal(max_turn, 35);
    assert_true(turns >= FLOOD / 35);
}

/* Without a cap of ours, libuv's own (about 40 per readiness event) still slices the flood. */
static void test_no_cap(void **state) {
    int max_turn;
    int turns;
    uint64_t pauses;

    (void)state;
    run_cap(0, &max_turn, &turns, &pauses);
    assert_true(max_turn <= 64);
    assert_true(turns > 1);
    assert_int_equal(pauses, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_receive_all),
        cmocka_unit_test(test_no_consumer),
        cmocka_unit_test(test_bind_failure),
        cmocka_unit_test(test_dual_stack_same_port),
        cmocka_unit_test(test_cap_below_batch),
        cmocka_unit_test(test_cap_across_batches),
        cmocka_unit_test(test_cap_at_libuv_limit),
        cmocka_unit_test(test_no_cap),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
