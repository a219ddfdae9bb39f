/*
 * Reverse DNS against a real DNS server: dnsmasq on a loopback port serving
 * PTR records from a hosts file written by the test, with no upstream (so an
 * unknown address gets no name). A port where nothing listens gives timeouts.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <uv.h>

#include "opsc/buf.h"
#include "opsc/dns.h"
#include "opsc/error.h"
#include "opsc/log.h"
#include "support/loop_util.h"

extern char **environ;

static pid_t dnsmasq_pid;
static int dns_port;
static char dir[64];
static char servers[64];

static int free_udp_port(void) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        return -1;
    }
    close(fd);
    return ntohs(sa.sin_port);
}

/* A port free for UDP and TCP both: dnsmasq listens on both. -1 if this one is not. */
static int free_udp_tcp_port(void) {
    int port = free_udp_port();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = port > 0 && fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok ? port : -1;
}

typedef struct {
    int done;
    int calls;
    char ip[64];
    char name[256];
    int has_name;
    unsigned ttl;
} res_t;

static void on_answer(const char *ip, const char *name, unsigned ttl, void *arg) {
    res_t *r = arg;
    r->calls++;
    r->done = 1;
    snprintf(r->ip, sizeof(r->ip), "%s", ip);
    r->has_name = name != NULL;
    snprintf(r->name, sizeof(r->name), "%s", name ? name : "");
    r->ttl = ttl;
}

static void on_closed(void *arg) {
    *(int *)arg = 1;
}

static opsc_dns_t *make(uv_loop_t *loop, const char *srv, int timeout_ms, size_t inflight) {
    opsc_dns_options_t o = {.servers = srv,
                            .timeout_ms = timeout_ms,
                            .tries = 1,
                            .ttl_s = 300,
                            .negative_ttl_s = 30,
                            .max_inflight = inflight};
    opsc_dns_t *d = NULL;
    char err[256] = "";
    int rc = opsc_dns_create(loop, &o, &d, err, sizeof(err));
    if (rc != 0) {
        fail_msg("opsc_dns_create: %s", err);
    }
    return d;
}

static void destroy(uv_loop_t *loop, opsc_dns_t *d) {
    int closed = 0;
    opsc_dns_close(d, on_closed, &closed);
    assert_int_equal(opsc_test_run_until(loop, &closed, 2000), 0);
    opsc_test_drain(loop);
    assert_int_equal(uv_loop_close(loop), 0);
}

static int start_dnsmasq(const char *hosts);

/* dnsmasq answers as soon as it is up; wait for that (bounded). */
static int group_setup(void **state) {
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/opsc-dns-XXXXXX");
    if (!mkdtemp(dir)) {
        return -1;
    }
    char hosts[128];
    snprintf(hosts, sizeof(hosts), "%s/hosts", dir);
    FILE *f = fopen(hosts, "w");
    if (!f) {
        return -1;
    }
    fprintf(f, "192.0.2.10 edge-sw-10.example.net\n2001:db8::10 core-v6.example.net\n");
    fclose(f);
    /* Another test may take the port between our check and dnsmasq's bind: try a few. */
    for (int attempt = 0; attempt < 5; attempt++) {
        if (start_dnsmasq(hosts) == 0) {
            return 0;
        }
    }
    return -1;
}

/* Start dnsmasq on a fresh port and wait until it answers (bounded); -1 if it does not. */
static int start_dnsmasq(const char *hosts) {
    dns_port = free_udp_tcp_port();
    if (dns_port < 0) {
        return -1;
    }
    char port_arg[32], hosts_arg[160];
    snprintf(port_arg, sizeof(port_arg), "--port=%d", dns_port);
    snprintf(hosts_arg, sizeof(hosts_arg), "--addn-hosts=%s", hosts);
    const char *args[] = {"dnsmasq",
                          "--keep-in-foreground",
                          "--conf-file=/dev/null",
                          port_arg,
                          "--listen-address=127.0.0.1",
                          "--bind-interfaces",
                          "--no-resolv",
                          "--no-hosts",
                          hosts_arg,
                          "--pid-file=",
                          "--user=root",
                          "--log-facility=-"};
    char *argv[sizeof(args) / sizeof(args[0]) + 1];
    for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++) {
        argv[i] = strdup(args[i]);
    }
    argv[sizeof(args) / sizeof(args[0])] = NULL;
    static const char *const paths[] = {"/usr/sbin/dnsmasq", "/sbin/dnsmasq"};
    int rc = -1;
    for (size_t i = 0; i < 2 && rc != 0; i++) {
        rc = posix_spawn(&dnsmasq_pid, paths[i], NULL, NULL, argv, environ);
    }
    for (size_t i = 0; argv[i]; i++) {
        free(argv[i]);
    }
    if (rc != 0) {
        fprintf(stderr, "cannot run dnsmasq (Debian package dnsmasq-base)\n");
        return -1;
    }
    snprintf(servers, sizeof(servers), "127.0.0.1:%d", dns_port);
    for (int i = 0; i < 50; i++) { /* 5 s */
        uv_loop_t loop;
        uv_loop_init(&loop);
        opsc_dns_t *d = make(&loop, servers, 100, 16);
        res_t r = {0};
        const char *name = NULL;
        int up = 0;
        if (opsc_dns_reverse(d, "192.0.2.10", &name, on_answer, &r) == 0 &&
            opsc_test_run_until(&loop, &r.done, 1000) == 0) {
            up = r.has_name;
        }
        destroy(&loop, d);
        if (up) {
            return 0;
        }
        if (waitpid(dnsmasq_pid, NULL, WNOHANG) == dnsmasq_pid) {
            dnsmasq_pid = 0; /* it exited: the port was taken after all */
            return -1;
        }
        usleep(100 * 1000);
    }
    fprintf(stderr, "dnsmasq did not answer on port %d\n", dns_port);
    kill(dnsmasq_pid, SIGTERM);
    waitpid(dnsmasq_pid, NULL, 0);
    dnsmasq_pid = 0;
    return -1;
}

static int group_teardown(void **state) {
    (void)state;
    if (dnsmasq_pid > 0) {
        kill(dnsmasq_pid, SIGTERM);
        waitpid(dnsmasq_pid, NULL, 0);
    }
    char hosts[128];
    snprintf(hosts, sizeof(hosts), "%s/hosts", dir);
    unlink(hosts);
    rmdir(dir);
    return 0;
}

static void test_v4_answer_then_cache(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    opsc_dns_t *d = make(&loop, servers, 2000, 16);
    res_t r = {0};
    const char *name = NULL;
    assert_int_equal(opsc_dns_reverse(d, "192.0.2.10", &name, on_answer, &r), 0);
    assert_int_equal(r.calls, 0); /* never from inside the call */
    assert_int_equal(opsc_test_run_until(&loop, &r.done, 5000), 0);
    assert_true(r.has_name);
    assert_string_equal(r.name, "edge-sw-10.example.net");
    assert_string_equal(r.ip, "192.0.2.10");
    assert_int_equal(r.ttl, 300);
    /* Now from the cache, at once. */
    assert_int_equal(opsc_dns_reverse(d, "192.0.2.10", &name, on_answer, &r), 1);
    assert_non_null(name);
    assert_string_equal(name, "edge-sw-10.example.net");
    assert_int_equal(r.calls, 1);
    opsc_buf_t m = OPSC_BUF_INIT;
    opsc_dns_metrics(&m, d);
    assert_non_null(strstr(m.base, "opsc_dns_cache_total{outcome=\"hit\"} 1\n"));
    assert_non_null(strstr(m.base, "opsc_dns_lookups_total{result=\"name\"} 1\n"));
    opsc_buf_free(&m);
    destroy(&loop, d);
}

static void test_v6_and_spelling(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    opsc_dns_t *d = make(&loop, servers, 2000, 16);
    res_t r = {0};
    const char *name = NULL;
    assert_int_equal(opsc_dns_reverse(d, "2001:0db8:0:0::10", &name, on_answer, &r), 0);
    assert_int_equal(opsc_test_run_until(&loop, &r.done, 5000), 0);
    assert_true(r.has_name);
    assert_string_equal(r.name, "core-v6.example.net");
    assert_string_equal(r.ip, "2001:db8::10"); /* one spelling per address */
    assert_int_equal(opsc_dns_reverse(d, "2001:db8::10", &name, on_answer, &r), 1);
    assert_string_equal(name, "core-v6.example.net");
    destroy(&loop, d);
}

static void test_no_name_is_cached_negative(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    opsc_dns_t *d = make(&loop, servers, 2000, 16);
    res_t r = {0};
    const char *name = "x";
    assert_int_equal(opsc_dns_reverse(d, "198.51.100.77", &name, on_answer, &r), 0);
    assert_int_equal(opsc_test_run_until(&loop, &r.done, 5000), 0);
    assert_false(r.has_name);
    assert_int_equal(r.ttl, 30);
    name = "x";
    assert_int_equal(opsc_dns_reverse(d, "198.51.100.77", &name, on_answer, &r), 1);
    assert_null(name);
    destroy(&loop, d);
}

static void test_concurrent_lookups_share_a_query(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    opsc_dns_t *d = make(&loop, servers, 2000, 16);
    res_t a = {0}, b = {0};
    const char *name = NULL;
    assert_int_equal(opsc_dns_reverse(d, "192.0.2.10", &name, on_answer, &a), 0);
    assert_int_equal(opsc_dns_reverse(d, "192.0.2.10", &name, on_answer, &b), 0);
    assert_int_equal(opsc_test_run_until(&loop, &b.done, 5000), 0);
    assert_int_equal(opsc_test_run_until(&loop, &a.done, 5000), 0);
    assert_string_equal(a.name, "edge-sw-10.example.net");
    assert_string_equal(b.name, "edge-sw-10.example.net");
    opsc_buf_t m = OPSC_BUF_INIT;
    opsc_dns_metrics(&m, d);
    assert_non_null(strstr(m.base, "opsc_dns_cache_total{outcome=\"miss\"} 1\n"));
    opsc_buf_free(&m);
    destroy(&loop, d);
}

static void test_bad_input_and_inflight_bound(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    opsc_dns_t *d = make(&loop, servers, 2000, 2);
    res_t r[3] = {{0}};
    const char *name = NULL;
    assert_int_equal(opsc_dns_reverse(d, "not-an-ip", &name, on_answer, &r[0]), UV_EINVAL);
    assert_int_equal(opsc_dns_reverse(d, "", &name, on_answer, &r[0]), UV_EINVAL);
    assert_int_equal(opsc_dns_reverse(d, "192.0.2.1", &name, on_answer, &r[0]), 0);
    assert_int_equal(opsc_dns_reverse(d, "192.0.2.2", &name, on_answer, &r[1]), 0);
    assert_int_equal(opsc_dns_reverse(d, "192.0.2.3", &name, on_answer, &r[2]), OPSC_EQUEUE_FULL);
    assert_int_equal(opsc_test_run_until(&loop, &r[1].done, 5000), 0);
    assert_int_equal(opsc_test_run_until(&loop, &r[0].done, 5000), 0);
    assert_int_equal(r[2].calls, 0);
    destroy(&loop, d);
}

static void test_timeout_and_close_in_flight(void **state) {
    (void)state;
    char dead[64];
    snprintf(dead, sizeof(dead), "127.0.0.1:%d", free_udp_port()); /* nothing answers there */
    uv_loop_t loop;
    uv_loop_init(&loop);
    opsc_dns_t *d = make(&loop, dead, 200, 16);
    res_t r = {0};
    const char *name = NULL;
    assert_int_equal(opsc_dns_reverse(d, "192.0.2.10", &name, on_answer, &r), 0);
    assert_int_equal(opsc_test_run_until(&loop, &r.done, 5000), 0);
    assert_false(r.has_name);
    /* A query still in flight when the resolver closes hears "no name", once. */
    res_t q = {0};
    assert_int_equal(opsc_dns_reverse(d, "192.0.2.99", &name, on_answer, &q), 0);
    int closed = 0;
    opsc_dns_close(d, on_closed, &closed);
    assert_int_equal(opsc_test_run_until(&loop, &closed, 2000), 0);
    assert_int_equal(q.calls, 1);
    assert_false(q.has_name);
    opsc_test_drain(&loop);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_bad_server_list(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    opsc_dns_options_t o = {.servers = "not a server list!"};
    opsc_dns_t *d = NULL;
    char err[256] = "";
    assert_int_equal(opsc_dns_create(&loop, &o, &d, err, sizeof(err)), OPSC_ECONFIG);
    assert_non_null(strstr(err, "dns.servers"));
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
    opsc_log_set_level(OPSC_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v4_answer_then_cache),
        cmocka_unit_test(test_v6_and_spelling),
        cmocka_unit_test(test_no_name_is_cached_negative),
        cmocka_unit_test(test_concurrent_lookups_share_a_query),
        cmocka_unit_test(test_bad_input_and_inflight_bound),
        cmocka_unit_test(test_timeout_and_close_in_flight),
        cmocka_unit_test(test_bad_server_list),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
