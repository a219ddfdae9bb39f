/*
 * The SNMP decoder against net-snmp's real command-line clients: snmptrap and
 * snmpinform send to a loopback socket owned by the test, the test decodes
 * what arrives and, for INFORMs, sends the decoder's answer back and checks
 * that the client is satisfied. Then hostile input: 100,000 mutations of the
 * captured datagrams, and 10,000 v3 messages for unknown engines that must
 * leave no state behind in net-snmp. Every wait is bounded.
 *
 * Also here: the snmp.* configuration keys, the engine ID/boots files, and
 * the OID helpers of trap.h.
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
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "opsc/buf.h"
#include "opsc/config.h"
#include "opsc/error.h"
#include "opsc/fsutil.h"
#include "opsc/log.h"
#include "opsc/snmp_decode.h"
#include "opsc/trap.h"
#include "sources/snmp_trap/snmp_int.h"

extern char **environ;

#define WAIT_MS 5000

/* Our engine (INFORMs are sent to it) and the engine of the trap senders. */
#define OUR_ENGINE "0x80001f88056f707363746573743031"
#define TRAP_ENGINE "0x8000000001020304"
#define OTHER_ENGINE "0x80000000aabbccdd"
#define TIME_ENGINE "0x8000000001020305" /* only for the time-window test: it moves boots */

/* ---- fixture: one decoder for the whole file (net-snmp is per process) ---------------------- */

typedef struct {
    const char *name;
    opsc_snmp_auth_t auth;
    const char *apass;
    opsc_snmp_priv_t priv;
    const char *ppass;
    const char *engine; /* NULL: ours */
} user_spec_t;

static const user_spec_t user_specs[] = {
    {"authsha", OPSC_SNMP_AUTH_SHA, "authpass123", OPSC_SNMP_PRIV_NONE, NULL, TRAP_ENGINE},
    {"privaes", OPSC_SNMP_AUTH_SHA, "authpass123", OPSC_SNMP_PRIV_AES128, "privpass123",
     TRAP_ENGINE},
    {"priv256", OPSC_SNMP_AUTH_SHA256, "authpass256", OPSC_SNMP_PRIV_AES256, "privpass256",
     TRAP_ENGINE},
    {"sha1aes256", OPSC_SNMP_AUTH_SHA, "authpass123", OPSC_SNMP_PRIV_AES256, "privpass123",
     TRAP_ENGINE},
    {"sha512aes192", OPSC_SNMP_AUTH_SHA512, "authpass512", OPSC_SNMP_PRIV_AES192, "privpass192",
     TRAP_ENGINE},
    {"md5des", OPSC_SNMP_AUTH_MD5, "authpassmd5", OPSC_SNMP_PRIV_DES, "privpassdes", TRAP_ENGINE},
    {"noauth", OPSC_SNMP_AUTH_NONE, NULL, OPSC_SNMP_PRIV_NONE, NULL, TRAP_ENGINE},
    {"timeuser", OPSC_SNMP_AUTH_SHA, "authpass123", OPSC_SNMP_PRIV_NONE, NULL, TIME_ENGINE},
    {"informer", OPSC_SNMP_AUTH_SHA, "informauth1", OPSC_SNMP_PRIV_AES128, "informpriv1", NULL},
    {"informauth", OPSC_SNMP_AUTH_SHA256, "informauth2", OPSC_SNMP_PRIV_NONE, NULL, NULL},
};
#define NUSERS (sizeof(user_specs) / sizeof(user_specs[0]))

static opsc_snmp_decoder_t *dec;
static opsc_snmp_v3_user_t users[NUSERS];
static opsc_engine_id_t our_engine, trap_engine;
static char tmpdir[128];
static char env_conf[256], env_persist[256], env_home[256], env_path[4096];
static char *child_env[8];

/* Captured datagrams (as received, before decoding): the seed of the hostile tests. */
#define CORPUS_MAX 64
static struct {
    unsigned char *bytes;
    size_t len;
} corpus[CORPUS_MAX];
static size_t corpus_n;

static void corpus_add(const unsigned char *b, size_t len) {
    if (corpus_n >= CORPUS_MAX || len == 0) {
        return;
    }
    corpus[corpus_n].bytes = malloc(len);
    assert_non_null(corpus[corpus_n].bytes);
    memcpy(corpus[corpus_n].bytes, b, len);
    corpus[corpus_n].len = len;
    corpus_n++;
}

static void make_decoder(void) {
    char err[512];
    static const char *const communities[] = {"public", "s3cret,with comma"};
    opsc_snmp_decoder_options_t o;
    memset(&o, 0, sizeof(o));
    o.communities = communities;
    o.ncommunities = 2;
    o.users = users;
    o.nusers = NUSERS;
    o.engine_id = our_engine.bytes;
    o.engine_id_len = our_engine.len;
    o.engine_boots = 7;
    o.log_component = "snmp-test";
    int rc = opsc_snmp_decoder_create(&o, &dec, err, sizeof(err));
    if (rc != 0) {
        fail_msg("decoder_create: %s", err);
    }
}

static int group_setup(void **state) {
    (void)state;
    char err[256];
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/opsc_snmp_test_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    /* The clients read and write nothing of the machine's: their own config/persist dirs. */
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/conf", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(dir, sizeof(dir), "%s/persist", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(env_conf, sizeof(env_conf), "SNMPCONFPATH=%s/conf", tmpdir);
    snprintf(env_persist, sizeof(env_persist), "SNMP_PERSISTENT_DIR=%s/persist", tmpdir);
    snprintf(env_home, sizeof(env_home), "HOME=%s", tmpdir);
    const char *path = getenv("PATH");
    snprintf(env_path, sizeof(env_path), "PATH=%s", path != NULL ? path : "/usr/bin:/bin");
    child_env[0] = env_conf;
    child_env[1] = env_persist;
    child_env[2] = env_home;
    child_env[3] = env_path;
    child_env[4] = (char *)"MIBS=";
    child_env[5] = NULL;

    assert_int_equal(opsc_engine_id_parse(OUR_ENGINE, &our_engine, err, sizeof(err)), 0);
    assert_int_equal(opsc_engine_id_parse(TRAP_ENGINE, &trap_engine, err, sizeof(err)), 0);
    for (size_t i = 0; i < NUSERS; i++) {
        const user_spec_t *s = &user_specs[i];
        users[i].name = (char *)s->name;
        users[i].auth = s->auth;
        users[i].auth_passphrase = (char *)s->apass;
        users[i].priv = s->priv;
        users[i].priv_passphrase = (char *)s->ppass;
        if (s->engine != NULL) {
            assert_int_equal(opsc_engine_id_parse(s->engine, &users[i].engine_id, err, sizeof(err)),
                             0);
        }
        snprintf(users[i].src, sizeof(users[i].src), "test user %zu", i);
    }
    /* Drop lines and net-snmp's own go to the log; keep the test output readable. */
    opsc_log_set_level(OPSC_LOG_ERROR);
    make_decoder();
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    opsc_snmp_decoder_destroy(dec);
    dec = NULL;
    for (size_t i = 0; i < corpus_n; i++) {
        free(corpus[i].bytes);
    }
    corpus_n = 0;
    opsc_rm_rf(tmpdir);
    return 0;
}

/* ---- sockets and child processes ------------------------------------------------------------ */

typedef struct {
    int fd;
    int family;
    int port;
    char target[64]; /* "127.0.0.1:PORT" or "udp6:[::1]:PORT" for the clients */
} sock_t;

static int sock_open(sock_t *s, int family) {
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof(ss));
    memset(s, 0, sizeof(*s));
    s->family = family;
    s->fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        return -1;
    }
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        sl = sizeof(*a);
    }
    if (bind(s->fd, (struct sockaddr *)&ss, sl) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&ss, &sl) != 0) {
        close(s->fd);
        s->fd = -1;
        return -1;
    }
    if (family == AF_INET) {
        s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        snprintf(s->target, sizeof(s->target), "127.0.0.1:%d", s->port);
    } else {
        s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        snprintf(s->target, sizeof(s->target), "udp6:[::1]:%d", s->port);
    }
    return 0;
}

static void sock_close(sock_t *s) {
    if (s->fd >= 0) {
        close(s->fd);
    }
    s->fd = -1;
}

typedef struct {
    unsigned char buf[OPSC_SNMP_DATAGRAM_MAX + 1];
    size_t len;
    struct sockaddr_storage from;
    socklen_t fromlen;
} dgram_t;

/* One datagram within timeout_ms: 0, or -1 on timeout. */
static int sock_recv(sock_t *s, dgram_t *d, int timeout_ms) {
    struct pollfd p = {s->fd, POLLIN, 0};
    int r = poll(&p, 1, timeout_ms);
    if (r <= 0) {
        return -1;
    }
    d->fromlen = sizeof(d->from);
    ssize_t n =
        recvfrom(s->fd, d->buf, sizeof(d->buf), 0, (struct sockaddr *)&d->from, &d->fromlen);
    if (n < 0) {
        return -1;
    }
    d->len = (size_t)n;
    return 0;
}

static pid_t spawn(const char *const *argv) {
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, child_env);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fail_msg("cannot run %s: %s (apt-get install snmp)", argv[0], strerror(rc));
    }
    return pid;
}

/* Exit status of pid within timeout_ms; on timeout it is killed and -1 returned. */
static int wait_exit(pid_t pid, int timeout_ms) {
    int status;
    for (int waited = 0;; waited += 5) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        if (r < 0 || waited >= timeout_ms) {
            break;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* Run a client that sends one datagram; receive it. */
static void send_and_recv(sock_t *s, const char *const *argv, dgram_t *d) {
    pid_t pid = spawn(argv);
    int rc = sock_recv(s, d, WAIT_MS);
    int st = wait_exit(pid, WAIT_MS);
    if (rc != 0) {
        fail_msg("%s sent nothing within %d ms (exit %d)", argv[0], WAIT_MS, st);
    }
    assert_int_equal(st, 0);
}

/* Decode a copy (the decoder writes into its input); the original goes into the corpus. */
static int decode(const dgram_t *d, opsc_trap_t *t, opsc_buf_t *reply) {
    static unsigned char work[OPSC_SNMP_DATAGRAM_MAX + 1];
    corpus_add(d->buf, d->len);
    memcpy(work, d->buf, d->len);
    return opsc_snmp_decode(dec, work, d->len, (const struct sockaddr *)&d->from, t, reply);
}

/* ---- assertions ----------------------------------------------------------------------------- */

static void assert_oid_text(const uint32_t *oid, uint32_t len, const char *want) {
    char got[512];
    opsc_oid_format(oid, len, got, sizeof(got));
    if (strcmp(got, want) != 0) {
        fail_msg("OID %s, expected %s", got, want);
    }
}

static const opsc_varbind_t *find_vb(const opsc_trap_t *t, const char *oid_text) {
    char got[512];
    for (size_t i = 0; i < t->nvarbinds; i++) {
        opsc_oid_format(t->varbinds[i].oid, t->varbinds[i].oid_len, got, sizeof(got));
        if (strcmp(got, oid_text) == 0) {
            return &t->varbinds[i];
        }
    }
    fail_msg("no varbind %s among %zu", oid_text, t->nvarbinds);
    static const opsc_varbind_t none; /* not reached: fail_msg jumps out */
    return &none;
}

static void assert_reason(int got, int want) {
    if (got != want) {
        fail_msg("decode returned %d (%s), expected %d (%s)", got, opsc_snmp_reason_name(got), want,
                 opsc_snmp_reason_name(want));
    }
}

/* ---- v1 and v2c ----------------------------------------------------------------------------- */

static void test_v1_coldstart(void **state) {
    (void)state;
    sock_t s;
    dgram_t d;
    opsc_trap_t t;
    opsc_buf_t reply = OPSC_BUF_INIT;
    assert_int_equal(sock_open(&s, AF_INET), 0);
    const char *argv[] = {"snmptrap",
                          "-Ln",
                          "-v",
                          "1",
                          "-c",
                          "public",
                          s.target,
                          "1.3.6.1.4.1.8072.2.3",
                          "192.0.2.9",
                          "0",
                          "0",
                          "4242",
                          "1.3.6.1.2.1.1.5.0",
                          "s",
                          "router-1",
                          NULL};
    send_and_recv(&s, argv, &d);
    assert_reason(decode(&d, &t, &reply), 0);
    assert_int_equal(t.version, 0);
    assert_int_equal(t.pdu, OPSC_PDU_TRAP_V1);
    assert_int_equal(t.request_id, 0);
    assert_string_equal(t.community, "public");
    assert_oid_text(t.trap_oid, t.trap_oid_len, "1.3.6.1.6.3.1.1.5.1");
    assert_oid_text(t.enterprise, t.enterprise_len, "1.3.6.1.4.1.8072.2.3");
    assert_int_equal(t.generic_trap, 0);
    assert_int_equal(t.specific_trap, 0);
    assert_int_equal(t.uptime_ticks, 4242);
    assert_true(t.has_agent_addr);
    assert_memory_equal(t.agent_addr, ((unsigned char[]){192, 0, 2, 9}), 4);
    assert_int_equal(t.from.ss_family, AF_INET);
    assert_int_equal(t.nvarbinds, 1);
    const opsc_varbind_t *vb = find_vb(&t, "1.3.6.1.2.1.1.5.0");
    assert_int_equal(vb->type, OPSC_VB_OCTETS);
    assert_int_equal(vb->bytes_len, 8);
    assert_memory_equal(vb->bytes, "router-1", 8);
    assert_int_equal(reply.len, 0);
    opsc_buf_free(&reply);
    sock_close(&s);
}

static void test_v1_enterprise_specific(void **state) {
    (void)state;
    sock_t s;
    dgram_t d;
    opsc_trap_t t;
    opsc_buf_t reply = OPSC_BUF_INIT;
    assert_int_equal(sock_open(&s, AF_INET), 0);
    const char *argv[] = {"snmptrap",           "-Ln",      "-v", "1",  "-c", "public", s.target,
                          "1.3.6.1.4.1.6141.2", "10.9.8.7", "6",  "17", "",   NULL};
    send_and_recv(&s, argv, &d);
    assert_reason(decode(&d, &t, &reply), 0);
    assert_oid_text(t.trap_oid, t.trap_oid_len, "1.3.6.1.4.1.6141.2.0.17");
    assert_oid_text(t.enterprise, t.enterprise_len, "1.3.6.1.4.1.6141.2");
    assert_int_equal(t.generic_trap, 6);
    assert_int_equal(t.specific_trap, 17);
    assert_memory_equal(t.agent_addr, ((unsigned char[]){10, 9, 8, 7}), 4);
    assert_int_equal(t.nvarbinds, 0);

    /* linkDown (generic 2) -> snmpTraps.3 */
    const char *argv2[] = {"snmptrap",
                           "-Ln",
                           "-v",
                           "1",
                           "-c",
                           "public",
                           s.target,
                           "1.3.6.1.4.1.6141.2",
                           "10.9.8.7",
                           "2",
                           "0",
                           "",
                           "1.3.6.1.2.1.2.2.1.1.3",
                           "i",
                           "3",
                           NULL};
    send_and_recv(&s, argv2, &d);
    assert_reason(decode(&d, &t, &reply), 0);
    assert_oid_text(t.trap_oid, t.trap_oid_len, "1.3.6.1.6.3.1.1.5.3");
    assert_int_equal(t.generic_trap, 2);
    assert_int_equal(find_vb(&t, "1.3.6.1.2.1.2.2.1.1.3")->i, 3);
    opsc_buf_free(&reply);
    sock_close(&s);
}

static void test_v2c_linkdown(void **state) {
    (void)state;
    sock_t s;
    dgram_t d;
    opsc_trap_t t;
    opsc_buf_t reply = OPSC_BUF_INIT;
    assert_int_equal(sock_open(&s, AF_INET), 0);
    const char *argv[] = {"snmptrap",
                          "-Ln",
                          "-v",
                          "2c",
                          "-c",
                          "public",
                          s.target,
                          "123",
                          "1.3.6.1.6.3.1.1.5.3",
                          "1.3.6.1.2.1.2.2.1.1.3",
                          "i",
                          "3",
                          "1.3.6.1.2.1.2.2.1.7.3",
                          "i",
                          "1",
                          "1.3.6.1.2.1.2.2.1.8.3",
                          "i",
                          "2",
                          "1.3.6.1.2.1.2.2.1.2.3",
                          "s",
                          "GigabitEthernet0/3",
                          "1.3.6.1.2.1.2.2.1.10.3",
                          "c",
                          "4000000000",
                          "1.3.6.1.2.1.31.1.1.1.6.3",
                          "C",
                          "123456789012",
                          "1.3.6.1.2.1.2.2.1.5.3",
                          "u",
                          "1000000000",
                          "1.3.6.1.2.1.1.2.0",
                          "o",
                          "1.3.6.1.4.1.9.1.1",
                          "1.3.6.1.2.1.1.1.0",
                          "x",
                          "DE AD BE EF",
                          "1.3.6.1.2.1.1.6.0",
                          "n",
                          "",
                          "1.3.6.1.2.1.2.2.1.9.3",
                          "t",
                          "77",
                          "1.3.6.1.2.1.4.20.1.1.10.0.0.1",
                          "a",
                          "10.0.0.1",
                          "1.3.6.1.2.1.1.4.0",
                          "i",
                          "-5",
                          NULL};
    send_and_recv(&s, argv, &d);
    assert_reason(decode(&d, &t, &reply), 0);
    assert_int_equal(t.version, 1);
    assert_int_equal(t.pdu, OPSC_PDU_TRAP_V2);
    assert_string_equal(t.community, "public");
    assert_oid_text(t.trap_oid, t.trap_oid_len, "1.3.6.1.6.3.1.1.5.3");
    assert_int_equal(t.uptime_ticks, 123);
    assert_int_equal(t.generic_trap, -1);
    assert_int_equal(t.specific_trap, -1);
    assert_false(t.has_agent_addr);
    assert_int_equal(t.enterprise_len, 0);
    assert_int_equal(t.nvarbinds, 13); /* sysUpTime.0 and snmpTrapOID.0 are not among them */
    assert_oid_text(t.varbinds[0].oid, t.varbinds[0].oid_len, "1.3.6.1.2.1.2.2.1.1.3");
    const opsc_varbind_t *vb = find_vb(&t, "1.3.6.1.2.1.2.2.1.1.3");
    assert_int_equal(vb->type, OPSC_VB_INTEGER);
    assert_int_equal(vb->i, 3);
    vb = find_vb(&t, "1.3.6.1.2.1.2.2.1.7.3");
    assert_int_equal(vb->type, OPSC_VB_INTEGER);
    assert_int_equal(vb->i, 1);
    vb = find_vb(&t, "1.3.6.1.2.1.2.2.1.8.3");
    assert_int_equal(vb->type, OPSC_VB_INTEGER);
    assert_int_equal(vb->i, 2);
    vb = find_vb(&t, "1.3.6.1.2.1.2.2.1.2.3");
    assert_int_equal(vb->type, OPSC_VB_OCTETS);
    assert_int_equal(vb->bytes_len, strlen("GigabitEthernet0/3"));
    assert_memory_equal(vb->bytes, "GigabitEthernet0/3", vb->bytes_len);
    vb = find_vb(&t, "1.3.6.1.2.1.2.2.1.10.3");
    assert_int_equal(vb->type, OPSC_VB_COUNTER32);
    assert_int_equal(vb->u, 4000000000u);
    vb = find_vb(&t, "1.3.6.1.2.1.31.1.1.1.6.3");
    assert_int_equal(vb->type, OPSC_VB_COUNTER64);
    assert_int_equal(vb->u, 123456789012ull);
    vb = find_vb(&t, "1.3.6.1.2.1.2.2.1.5.3");
    assert_int_equal(vb->type, OPSC_VB_GAUGE32);
    assert_int_equal(vb->u, 1000000000u);
    vb = find_vb(&t, "1.3.6.1.2.1.1.2.0");
    assert_int_equal(vb->type, OPSC_VB_OID);
    assert_oid_text(vb->oid_value, vb->oid_value_len, "1.3.6.1.4.1.9.1.1");
    vb = find_vb(&t, "1.3.6.1.2.1.1.1.0");
    assert_int_equal(vb->type, OPSC_VB_OCTETS);
    assert_memory_equal(vb->bytes, "\xde\xad\xbe\xef", 4);
    assert_int_equal(find_vb(&t, "1.3.6.1.2.1.1.6.0")->type, OPSC_VB_NULL);
    vb = find_vb(&t, "1.3.6.1.2.1.2.2.1.9.3");
    assert_int_equal(vb->type, OPSC_VB_TIMETICKS);
    assert_int_equal(vb->u, 77);
    vb = find_vb(&t, "1.3.6.1.2.1.4.20.1.1.10.0.0.1");
    assert_int_equal(vb->type, OPSC_VB_IPADDR);
    assert_int_equal(vb->bytes_len, 4);
    assert_memory_equal(vb->bytes, ((unsigned char[]){10, 0, 0, 1}), 4);
    vb = find_vb(&t, "1.3.6.1.2.1.1.4.0");
    assert_int_equal(vb->i, -5);
    /* snmpTrapAddress.0 absent: a later normalizer uses the UDP source */
    struct sockaddr_in *sin = (struct sockaddr_in *)&t.from;
    assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
    assert_int_equal(reply.len, 0);
    opsc_buf_free(&reply);
    sock_close(&s);
}

static void test_v2c_trap_address_and_enterprise(void **state) {
    (void)state;
    sock_t s;
    dgram_t d;
    opsc_trap_t t;
    opsc_buf_t reply = OPSC_BUF_INIT;
    assert_int_equal(sock_open(&s, AF_INET), 0);
    /* The second community of the list, which holds a comma (given in code, not as text). */
    const char *argv[] = {"snmptrap",
                          "-Ln",
                          "-v",
                          "2c",
                          "-c",
                          "s3cret,with comma",
                          s.target,
                          "",
                          "1.3.6.1.4.1.9.9.41.2.0.1",
                          "1.3.6.1.6.3.18.1.3.0",
                          "a",
                          "10.1.2.3",
                          "1.3.6.1.6.3.1.1.4.3.0",
                          "o",
                          "1.3.6.1.4.1.9.9.41.2",
                          NULL};
    send_and_recv(&s, argv, &d);
    assert_reason(decode(&d, &t, &reply), 0);
    assert_string_equal(t.community, "s3cret,with comma");
    assert_true(t.has_agent_addr);
    assert_memory_equal(t.agent_addr, ((unsigned char[]){10, 1, 2, 3}), 4);
    assert_oid_text(t.enterprise, t.enterprise_len, "1.3.6.1.4.1.9.9.41.2");
    assert_oid_text(t.trap_oid, t.trap_oid_len, "1.3.6.1.4.1.9.9.41.2.0.1");
    /* Both stay among the varbinds: only sysUpTime.0 and snmpTrapOID.0 are taken out. */
    assert_int_equal(t.nvarbinds, 2);
    find_vb(&t, "1.3.6.1.6.3.18.1.3.0");
    opsc_buf_free(&reply);
    sock_close(&s);
}

static void test_v2c_bad_community(void **state) {
    (void)state;
    sock_t s;
    dgram_t d;
    opsc_trap_t t;
    opsc_buf_t reply = OPSC_BUF_INIT;
    assert_int_equal(sock_open(&s, AF_INET), 0);
    const char *argv[] = {
        "snmptrap", "-Ln", "-v", "2c", "-c", "private", s.target, "", "1.3.6.1.6.3.1.1.5.1", NULL};
    send_and_recv(&s, argv, &d);
    assert_reason(decode(&d, &t, &reply), OPSC_SNMP_BAD_COMMUNITY);
    assert_int_equal(reply.len, 0);
    const char *argv1[] = {
        "snmptrap",  "-Ln", "-v", "1", "-c", "publi", s.target, "1.3.6.1.4.1.8072.2.3",
        "192.0.2.9", "0",   "0",  "",  NULL};
    send_and_recv(&s, argv1, &d);
    assert_reason(decode(&d, &t, &reply), OPSC_SNMP_BAD_COMMUNITY);
    opsc_buf_free(&reply);
    sock_close(&s);
}

static void test_ipv6(void **state) {
    (void)state;
    sock_t s;
    dgram_t d;
    opsc_trap_t t;
    opsc_buf_t reply = OPSC_BUF_INIT;
    if (sock_open(&s, AF_INET6) != 0) {
        skip(); /* no IPv6 loopback in this environment */
    }
    const char *argv[] = {"snmptrap",
                          "-Ln",
                          "-v",
                          "2c",
                          "-c",
                          "public",
                          s.target,
                          "",
                          "1.3.6.1.6.3.1.1.5.4",
                          "1.3.6.1.2.1.2.2.1.1.4",
                          "i",
                          "4",
                          NULL};
    send_and_recv(&s, argv, &d);
    assert_reason(decode(&d, &t, &reply), 0);
    assert_int_equal(t.from.ss_family, AF_INET6);
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t.from;
    assert_memory_equal(&sin6->sin6_addr, &in6addr_loopback, 16);
    assert_oid_text(t.trap_oid, t.trap_oid_len, "1.3.6.1.6.3.1.1.5.4");
    assert_int_equal(find_vb(&t, "1.3.6.1.2.1.2.2.1.1.4")->i, 4);
    opsc_buf_free(&reply);
    sock_close(&s);
}

/* ---- v3 traps ------------------------------------------------------------------------------- */

/* snmptrap -v 3 with the given security; NULL protocols are left out. */
static void v3_trap(sock_t *s, dgram_t *d, const char *engine, const char *user, const char *level,
                    const char *auth, const char *apass, const char *priv, const char *ppass,
                    const char *zboots) {
    const char *argv[40];
    int n = 0;
    argv[n++] = "snmptrap";
    argv[n++] = "-Ln";
    argv[n++] = "-v";
    argv[n++] = "3";
    argv[n++] = "-e";
    argv[n++] = engine;
    argv[n++] = "-u";
    argv[n++] = user;
    argv[n++] = "-l";
    argv[n++] = level;
    if (auth != NULL) {
        argv[n++] = "-a";
        argv[n++] = auth;
        argv[n++] = "-A";
        argv[n++] = apass;
    }
    if (priv != NULL) {
        argv[n++] = "-x";
        argv[n++] = priv;
        argv[n++] = "-X";
        argv[n++] = ppass;
    }
    if (zboots != NULL) {
        argv[n++] = "-Z";
        argv[n++] = zboots;
    }
    argv[n++] = s->target;
    argv[n++] = "";
    argv[n++] = "1.3.6.1.6.3.1.1.5.3";
    argv[n++] = "1.3.6.1.2.1.2.2.1.1.7";
    argv[n++] = "i";
    argv[n++] = "7";
    argv[n] = NULL;
    send_and_recv(s, argv, d);
}

static void assert_v3_ok(const dgram_t *d, const char *user, int level) {
    opsc_trap_t t;
    opsc_buf_t reply = OPSC_BUF_INIT;
    assert_reason(decode(d, &t, &reply), 0);
    assert_int_equal(t.version, 3);
    assert_int_equal(t.pdu, OPSC_PDU_TRAP_V2);
    assert_string_equal(t.user, user);
    assert_string_equal(t.engine_id_hex, TRAP_ENGINE + 2);
    assert_int_equal(t.security_level, level);
    assert_string_equal(t.community, "");
    assert_oid_text(t.trap_oid, t.trap_oid_len, "1.3.6.1.6.3.1.1.5.3");
    assert_int_equal(t.nvarbinds, 1);
    assert_int_equal(find_vb(&t, "1.3.6.1.2.1.2.2.1.1.7")->i, 7);
    assert_int_equal(reply.len, 0); /* a trap is never answered */
    opsc_buf_free(&reply);
}

static void test_v3_auth_nopriv(void **state) {
    (void)state;
    sock_t s;
    dgram_t d;
    assert_int_equal(sock_open(&s, AF_INET), 0);
    v3_trap(&s, &d, TRAP_ENGINE, "authsha", "authNoPriv", "SHA", "authpass123", NULL, NULL, NULL);
    assert_v3_ok(&d, "authsha", 2);
    /* The same datagram again: net-snmp zeroed the copy's digest, not our original. */
    assert_v3_ok(&d, "authsha", 2);
    v3_trap(&s, &d, TRAP_ENGINE, "noauth", "noAuthNoPriv", NULL, NULL, NULL, NULL, NULL);
    assert_v3_ok(&d, "noauth", 1);
    sock_close(&s);
}

static void test_v3_auth_priv(void **state) {
    (void)state;
    sock_t s;
    dgram_t d;
    assert_int_equal(sock_open(&s, AF_INET), 0);
    v3_trap(&s, &d, TRAP_ENGINE, "privaes", "authPriv", "SHA", "authpass123", "AES", "privpass123",
            NULL);
    assert_v3_ok(&d, "privaes", 3);
    v3_trap(&s, &d, TRAP_ENGINE, "priv256", "authPriv", "SHA-256", "authpass256", "AES-256",
            "privpass256", NULL);
    assert_v3_ok(&d, "priv256", 3);
    /* SHA-1 gives 20 bytes, AES-256 needs 32: the key extension path. */
    v3_trap(&s, &d, TRAP_ENGINE, "sha1aes256", "authPriv", "SHA", "authpass123", "AES-256",
            "privpass123", NULL);
    assert_v3_ok(&d, "sha1aes256", 3);
    v3_trap(&s, &d, TRAP_ENGINE, "sha512aes192", "authPriv", "SHA-512", "authpass512", "AES-192",
            "privpass192", NULL);
    assert_v3_ok(&d, "sha512aes192", 3);
    v3_trap(&s, &d, TRAP_ENGINE, "md5des", "authPriv", "MD5", "authpassmd5", "DES", "privpassdes",
            NULL);
    assert_v3_ok(&d, "md5des", 3);
    sock_close(&s);
}

static void test_v3_rejections(void **state) {
    (void)state;
    sock_t s;
    dgram_t d;
    opsc_trap_t t;
    opsc_buf_t reply = OPSC_BUF_INIT;
    assert_int_equal(sock_open(&s, AF_INET), 0);

    v3_trap(&s, &d, TRAP_ENGINE, "authsha", "authNoPriv", "SHA", "wrongpass99", NULL, NULL, NULL);
    assert_reason(decode(&d, &t, &reply), OPSC_SNMP_BAD_AUTH);
    assert_int_equal(reply.len, 0); /* a trap is not reportable */

    v3_trap(&s, &d, TRAP_ENGINE, "privaes", "authPriv", "SHA", "authpass123", "AES", "wrongpriv99",
            NULL);
    assert_reason(decode(&d, &t, &reply), OPSC_SNMP_BAD_PRIV);

    v3_trap(&s, &d, TRAP_ENGINE, "priv256", "authPriv", "SHA-256", "authpass256", "AES-256",
            "wrongpriv99", NULL);
    assert_reason(decode(&d, &t, &reply), OPSC_SNMP_BAD_PRIV);

    v3_trap(&s, &d, TRAP_ENGINE, "mallory", "authNoPriv", "SHA", "authpass123", NULL, NULL, NULL);
    assert_reason(decode(&d, &t, &reply), OPSC_SNMP_UNKNOWN_USER);

    /* A configured user name from an engine it is not configured for. */
    v3_trap(&s, &d, OTHER_ENGINE, "authsha", "authNoPriv", "SHA", "authpass123", NULL, NULL, NULL);
    assert_reason(decode(&d, &t, &reply), OPSC_SNMP_UNKNOWN_ENGINE);

    /* authNoPriv from a user configured authPriv: net-snmp would accept it. */
    v3_trap(&s, &d, TRAP_ENGINE, "privaes", "authNoPriv", "SHA", "authpass123", NULL, NULL, NULL);
    assert_reason(decode(&d, &t, &reply), OPSC_SNMP_WRONG_SECURITY_LEVEL);
    v3_trap(&s, &d, TRAP_ENGINE, "authsha", "noAuthNoPriv", NULL, NULL, NULL, NULL, NULL);
    assert_reason(decode(&d, &t, &reply), OPSC_SNMP_WRONG_SECURITY_LEVEL);

    /* Wrong auth protocol for the user (MD5 key against a SHA user): digest mismatch. */
    v3_trap(&s, &d, TRAP_ENGINE, "authsha", "authNoPriv", "MD5", "authpass123", NULL, NULL, NULL);
    assert_int_not_equal(decode(&d, &t, &reply), 0);

    /* After a trap from an engine at boots 1 / time T, boots 1 / time 5 is outside the window. */
    v3_trap(&s, &d, TIME_ENGINE, "timeuser", "authNoPriv", "SHA", "authpass123", NULL, NULL,
            "1,999999");
    assert_reason(decode(&d, &t, &reply), 0);
    v3_trap(&s, &d, TIME_ENGINE, "timeuser", "authNoPriv", "SHA", "authpass123", NULL, NULL, "1,5");
    assert_reason(decode(&d, &t, &reply), OPSC_SNMP_NOT_IN_TIME_WINDOW);
    /* ... and a later boots counter is accepted again (the sender restarted). */
    v3_trap(&s, &d, TIME_ENGINE, "timeuser", "authNoPriv", "SHA", "authpass123", NULL, NULL, "2,5");
    assert_reason(decode(&d, &t, &reply), 0);
    opsc_buf_free(&reply);
    sock_close(&s);
}

/* ---- INFORMs -------------------------------------------------------------------------------- */

typedef struct {
    int informs;     /* accepted InformRequests */
    int reports;     /* Reports sent back */
    int last_reason; /* of the last decode */
    opsc_trap_t last;
    char last_trap_oid[128];
    char last_user[64];
} inform_result_t;

/*
 * Run snmpinform, decode what it sends; answer Reports always and Responses
 * when `answer` is set. Returns snmpinform's exit status.
 */
static int run_inform(sock_t *s, const char *const *argv, int answer, inform_result_t *res) {
    dgram_t *d = malloc(sizeof(*d));
    opsc_buf_t reply = OPSC_BUF_INIT;
    int status = -1;
    assert_non_null(d);
    memset(res, 0, sizeof(*res));
    pid_t pid = spawn(argv);
    for (int waited = 0; waited < WAIT_MS; waited += 20) {
        pid_t r;
        int st;
        if (sock_recv(s, d, 20) == 0) {
            opsc_trap_t t;
            int rc = decode(d, &t, &reply);
            res->last_reason = rc;
            if (rc == 0) {
                assert_int_equal(t.pdu, OPSC_PDU_INFORM);
                res->informs++;
                res->last = t;
                opsc_oid_format(t.trap_oid, t.trap_oid_len, res->last_trap_oid,
                                sizeof(res->last_trap_oid));
                snprintf(res->last_user, sizeof(res->last_user), "%s", t.user);
                assert_true(reply.len > 0);
            } else if (reply.len > 0) {
                res->reports++;
            }
            if (reply.len > 0 && (rc != 0 || answer)) {
                assert_int_equal(sendto(s->fd, reply.base, reply.len, 0,
                                        (const struct sockaddr *)&d->from, d->fromlen),
                                 (ssize_t)reply.len);
            }
        }
        r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            pid = -1;
            break;
        }
    }
    if (pid > 0) {
        status = wait_exit(pid, 10);
    }
    opsc_buf_free(&reply);
    free(d);
    return status;
}

static void test_inform_v2c(void **state) {
    (void)state;
    sock_t s;
    inform_result_t res;
    assert_int_equal(sock_open(&s, AF_INET), 0);
    const char *argv[] = {"snmpinform",
                          "-Ln",
                          "-t",
                          "1",
                          "-r",
                          "0",
                          "-v",
                          "2c",
                          "-c",
                          "public",
                          s.target,
                          "",
                          "1.3.6.1.6.3.1.1.5.3",
                          "1.3.6.1.2.1.2.2.1.1.5",
                          "i",
                          "5",
                          NULL};
    assert_int_equal(run_inform(&s, argv, 1, &res), 0);
    assert_int_equal(res.informs, 1);
    assert_string_equal(res.last_trap_oid, "1.3.6.1.6.3.1.1.5.3");
    assert_int_equal(res.last.version, 1);
    assert_int_not_equal(res.last.request_id, 0);
    /* Unanswered: snmpinform times out and fails. */
    assert_int_not_equal(run_inform(&s, argv, 0, &res), 0);
    assert_int_equal(res.informs, 1);
    /* Wrong community: dropped, not answered. */
    const char *argv2[] = {
        "snmpinform",          "-Ln", "-t", "1", "-r", "0", "-v", "2c", "-c", "nope", s.target, "",
        "1.3.6.1.6.3.1.1.5.3", NULL};
    assert_int_not_equal(run_inform(&s, argv2, 1, &res), 0);
    assert_int_equal(res.informs, 0);
    assert_int_equal(res.last_reason, OPSC_SNMP_BAD_COMMUNITY);
    sock_close(&s);
}

static void test_inform_v3(void **state) {
    (void)state;
    sock_t s;
    inform_result_t res;
    assert_int_equal(sock_open(&s, AF_INET), 0);
    /* No -e: snmpinform discovers our engine ID first (a Report answers its probe). */
    const char *argv[] = {"snmpinform",
                          "-Ln",
                          "-t",
                          "1",
                          "-r",
                          "0",
                          "-v",
                          "3",
                          "-u",
                          "informer",
                          "-l",
                          "authPriv",
                          "-a",
                          "SHA",
                          "-A",
                          "informauth1",
                          "-x",
                          "AES",
                          "-X",
                          "informpriv1",
                          s.target,
                          "",
                          "1.3.6.1.6.3.1.1.5.1",
                          NULL};
    assert_int_equal(run_inform(&s, argv, 1, &res), 0);
    assert_int_equal(res.informs, 1);
    assert_true(res.reports >= 1);
    assert_string_equal(res.last_user, "informer");
    assert_string_equal(res.last.engine_id_hex, OUR_ENGINE + 2);
    assert_int_equal(res.last.security_level, 3);
    assert_string_equal(res.last_trap_oid, "1.3.6.1.6.3.1.1.5.1");

    /* Discovery answered, the INFORM itself not: failure. */
    assert_int_not_equal(run_inform(&s, argv, 0, &res), 0);
    assert_int_equal(res.informs, 1);

    /* authNoPriv user with SHA-256 */
    const char *argv2[] = {"snmpinform",
                           "-Ln",
                           "-t",
                           "1",
                           "-r",
                           "0",
                           "-v",
                           "3",
                           "-u",
                           "informauth",
                           "-l",
                           "authNoPriv",
                           "-a",
                           "SHA-256",
                           "-A",
                           "informauth2",
                           s.target,
                           "",
                           "1.3.6.1.6.3.1.1.5.2",
                           NULL};
    assert_int_equal(run_inform(&s, argv2, 1, &res), 0);
    assert_int_equal(res.informs, 1);
    assert_int_equal(res.last.security_level, 2);

    /* Wrong auth passphrase: the client gets a Report (usmStatsWrongDigests) and fails. */
    const char *argv3[] = {"snmpinform",
                           "-Ln",
                           "-t",
                           "1",
                           "-r",
                           "0",
                           "-v",
                           "3",
                           "-u",
                           "informer",
                           "-l",
                           "authPriv",
                           "-a",
                           "SHA",
                           "-A",
                           "wrongauth9",
                           "-x",
                           "AES",
                           "-X",
                           "informpriv1",
                           s.target,
                           "",
                           "1.3.6.1.6.3.1.1.5.1",
                           NULL};
    assert_int_not_equal(run_inform(&s, argv3, 1, &res), 0);
    assert_int_equal(res.informs, 0);
    assert_int_equal(res.last_reason, OPSC_SNMP_BAD_AUTH);
    assert_true(res.reports >= 2);

    /* Wrong priv passphrase: a decryption-error Report. */
    const char *argv4[] = {"snmpinform",
                           "-Ln",
                           "-t",
                           "1",
                           "-r",
                           "0",
                           "-v",
                           "3",
                           "-u",
                           "informer",
                           "-l",
                           "authPriv",
                           "-a",
                           "SHA",
                           "-A",
                           "informauth1",
                           "-x",
                           "AES",
                           "-X",
                           "wrongpriv9",
                           s.target,
                           "",
                           "1.3.6.1.6.3.1.1.5.1",
                           NULL};
    assert_int_not_equal(run_inform(&s, argv4, 1, &res), 0);
    assert_int_equal(res.informs, 0);
    assert_int_equal(res.last_reason, OPSC_SNMP_BAD_PRIV);

    /* Below the configured level: a Report, no event. */
    const char *argv5[] = {"snmpinform",
                           "-Ln",
                           "-t",
                           "1",
                           "-r",
                           "0",
                           "-v",
                           "3",
                           "-u",
                           "informer",
                           "-l",
                           "authNoPriv",
                           "-a",
                           "SHA",
                           "-A",
                           "informauth1",
                           s.target,
                           "",
                           "1.3.6.1.6.3.1.1.5.1",
                           NULL};
    assert_int_not_equal(run_inform(&s, argv5, 1, &res), 0);
    assert_int_equal(res.informs, 0);
    assert_int_equal(res.last_reason, OPSC_SNMP_WRONG_SECURITY_LEVEL);

    /*
     * A sender that knows our engine ID but has stale boots/time: a notInTimeWindow Report
     * (authenticated, so the sender may trust it) carries the right values; the sender
     * resynchronises and sends again.
     */
    const char *argv7[] = {"snmpinform",
                           "-Ln",
                           "-t",
                           "1",
                           "-r",
                           "0",
                           "-v",
                           "3",
                           "-e",
                           OUR_ENGINE,
                           "-Z",
                           "1,5",
                           "-u",
                           "informer",
                           "-l",
                           "authPriv",
                           "-a",
                           "SHA",
                           "-A",
                           "informauth1",
                           "-x",
                           "AES",
                           "-X",
                           "informpriv1",
                           s.target,
                           "",
                           "1.3.6.1.6.3.1.1.5.1",
                           NULL};
    int st = run_inform(&s, argv7, 1, &res);
    print_message("stale boots/time: exit %d, %d informs, %d reports, last %s\n", st, res.informs,
                  res.reports, opsc_snmp_reason_name(res.last_reason));
    assert_int_equal(st, 0);
    assert_int_equal(res.informs, 1);
    assert_int_equal(res.reports, 1);

    /* An unknown user gets nothing past the probe. */
    const char *argv6[] = {"snmpinform",
                           "-Ln",
                           "-t",
                           "1",
                           "-r",
                           "0",
                           "-v",
                           "3",
                           "-u",
                           "mallory",
                           "-l",
                           "authNoPriv",
                           "-a",
                           "SHA",
                           "-A",
                           "informauth1",
                           s.target,
                           "",
                           "1.3.6.1.6.3.1.1.5.1",
                           NULL};
    assert_int_not_equal(run_inform(&s, argv6, 1, &res), 0);
    assert_int_equal(res.informs, 0);
    sock_close(&s);
}

/* What the answers look like on the wire (the clients above only say whether they liked them). */
static void test_reply_bytes(void **state) {
    (void)state;
    sock_t s;
    dgram_t *d = malloc(sizeof(*d));
    opsc_buf_t reply = OPSC_BUF_INIT;
    opsc_trap_t t;
    opsc__snmp_peek_t pk;
    assert_non_null(d);
    assert_int_equal(sock_open(&s, AF_INET), 0);

    /* The v3 discovery probe: a Report from our engine, with our boots, unauthenticated. */
    const char *probe[] = {"snmpinform",
                           "-Ln",
                           "-t",
                           "1",
                           "-r",
                           "0",
                           "-v",
                           "3",
                           "-u",
                           "informer",
                           "-l",
                           "authPriv",
                           "-a",
                           "SHA",
                           "-A",
                           "informauth1",
                           "-x",
                           "AES",
                           "-X",
                           "informpriv1",
                           s.target,
                           "",
                           "1.3.6.1.6.3.1.1.5.1",
                           NULL};
    pid_t pid = spawn(probe);
    assert_int_equal(sock_recv(&s, d, WAIT_MS), 0);
    wait_exit(pid, 0);
    assert_int_equal(opsc__snmp_peek(d->buf, d->len, &pk), 0);
    assert_int_equal(pk.engine_id_len, 0);
    assert_true(pk.msg_flags & OPSC__SNMP_FLAG_REPORTABLE);
    assert_reason(decode(d, &t, &reply), OPSC_SNMP_DISCOVERY);
    assert_true(reply.len > 0);
    assert_int_equal(opsc__snmp_peek((unsigned char *)reply.base, reply.len, &pk), 0);
    assert_int_equal(pk.version, 3);
    assert_int_equal(pk.pdu_tag, OPSC__SNMP_TAG_REPORT);
    assert_int_equal(pk.msg_flags & OPSC__SNMP_FLAG_REPORTABLE, 0);
    assert_int_equal(pk.engine_id_len, our_engine.len);
    assert_memory_equal(pk.engine_id, our_engine.bytes, our_engine.len);
    assert_int_equal(pk.engine_boots, 7);

    /* A v2c INFORM: a Response (0xa2) with the community of the request. */
    const char *inf[] = {"snmpinform",
                         "-Ln",
                         "-t",
                         "1",
                         "-r",
                         "0",
                         "-v",
                         "2c",
                         "-c",
                         "public",
                         s.target,
                         "",
                         "1.3.6.1.6.3.1.1.5.3",
                         NULL};
    pid = spawn(inf);
    assert_int_equal(sock_recv(&s, d, WAIT_MS), 0);
    wait_exit(pid, 0);
    assert_reason(decode(d, &t, &reply), 0);
    assert_int_equal(t.pdu, OPSC_PDU_INFORM);
    assert_int_equal(opsc__snmp_peek((unsigned char *)reply.base, reply.len, &pk), 0);
    assert_int_equal(pk.version, 1);
    assert_int_equal(pk.pdu_tag, 0xa2);
    assert_int_equal(pk.community_len, 6);
    assert_memory_equal(pk.community, "public", 6);
    /* A Response is never taken for a notification. */
    memcpy(d->buf, reply.base, reply.len);
    d->len = reply.len;
    assert_reason(decode(d, &t, &reply), OPSC_SNMP_UNSUPPORTED_PDU);
    assert_int_equal(reply.len, 0);

    /* A reply buffer is optional. */
    pid = spawn(inf);
    assert_int_equal(sock_recv(&s, d, WAIT_MS), 0);
    wait_exit(pid, 0);
    unsigned char work[2048];
    memcpy(work, d->buf, d->len);
    assert_reason(opsc_snmp_decode(dec, work, d->len, (struct sockaddr *)&d->from, &t, NULL), 0);
    opsc_buf_free(&reply);
    sock_close(&s);
    free(d);
}

/* ---- hostile input -------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

/* Capture one datagram of every kind the decoder meets, if earlier tests did not. */
static void ensure_corpus(void) {
    sock_t s;
    dgram_t *d = malloc(sizeof(*d));
    assert_non_null(d);
    if (corpus_n >= 8) {
        free(d);
        return;
    }
    assert_int_equal(sock_open(&s, AF_INET), 0);
    const char *v1[] = {"snmptrap",
                        "-Ln",
                        "-v",
                        "1",
                        "-c",
                        "public",
                        s.target,
                        "1.3.6.1.4.1.8072.2.3",
                        "192.0.2.9",
                        "6",
                        "3",
                        "",
                        "1.3.6.1.2.1.1.5.0",
                        "s",
                        "x",
                        NULL};
    send_and_recv(&s, v1, d);
    corpus_add(d->buf, d->len);
    const char *v2[] = {"snmptrap",
                        "-Ln",
                        "-v",
                        "2c",
                        "-c",
                        "public",
                        s.target,
                        "",
                        "1.3.6.1.6.3.1.1.5.3",
                        "1.3.6.1.2.1.2.2.1.1.3",
                        "i",
                        "3",
                        "1.3.6.1.6.3.18.1.3.0",
                        "a",
                        "10.1.2.3",
                        "1.3.6.1.2.1.1.1.0",
                        "s",
                        "abc",
                        NULL};
    send_and_recv(&s, v2, d);
    corpus_add(d->buf, d->len);
    const char *inf[] = {"snmpinform",
                         "-Ln",
                         "-t",
                         "1",
                         "-r",
                         "0",
                         "-v",
                         "2c",
                         "-c",
                         "public",
                         s.target,
                         "",
                         "1.3.6.1.6.3.1.1.5.3",
                         NULL};
    pid_t pid = spawn(inf);
    assert_int_equal(sock_recv(&s, d, WAIT_MS), 0);
    wait_exit(pid, 0);
    corpus_add(d->buf, d->len);
    v3_trap(&s, d, TRAP_ENGINE, "authsha", "authNoPriv", "SHA", "authpass123", NULL, NULL, NULL);
    corpus_add(d->buf, d->len);
    v3_trap(&s, d, TRAP_ENGINE, "noauth", "noAuthNoPriv", NULL, NULL, NULL, NULL, NULL);
    corpus_add(d->buf, d->len); /* plaintext scoped PDU: mutations reach net-snmp's PDU parser */
    v3_trap(&s, d, TRAP_ENGINE, "privaes", "authPriv", "SHA", "authpass123", "AES", "privpass123",
            NULL);
    corpus_add(d->buf, d->len);
    v3_trap(&s, d, TRAP_ENGINE, "priv256", "authPriv", "SHA-256", "authpass256", "AES-256",
            "privpass256", NULL);
    corpus_add(d->buf, d->len);
    const char *probe[] = {"snmpinform",
                           "-Ln",
                           "-t",
                           "1",
                           "-r",
                           "0",
                           "-v",
                           "3",
                           "-u",
                           "informer",
                           "-l",
                           "authPriv",
                           "-a",
                           "SHA",
                           "-A",
                           "informauth1",
                           "-x",
                           "AES",
                           "-X",
                           "informpriv1",
                           s.target,
                           "",
                           "1.3.6.1.6.3.1.1.5.1",
                           NULL};
    pid = spawn(probe);
    assert_int_equal(sock_recv(&s, d, WAIT_MS), 0);
    wait_exit(pid, 0);
    corpus_add(d->buf, d->len);
    sock_close(&s);
    free(d);
}

/* One mutation of src into dst; returns the new length (at most cap). */
static size_t mutate(const unsigned char *src, size_t len, unsigned char *dst, size_t cap) {
    static const unsigned char lens[] = {0x00, 0x01, 0x02, 0x7f, 0x80, 0x81, 0x82,
                                         0x83, 0x84, 0x85, 0x88, 0xfe, 0xff};
    size_t n = len;
    memcpy(dst, src, len);
    int rounds = 1 + (int)(rnd() % 3);
    for (int r = 0; r < rounds && n > 0; r++) {
        size_t p = (size_t)(rnd() % n);
        switch (rnd() % 7) {
        case 0: /* bit flips */
            for (int k = 0; k < 1 + (int)(rnd() % 4); k++) {
                dst[rnd() % n] ^= (unsigned char)(1u << (rnd() % 8));
            }
            break;
        case 1: /* truncation */
            n = (size_t)(rnd() % n);
            break;
        case 2: { /* a length byte after something that looks like a tag */
            for (size_t tries = 0; tries < 16; tries++) {
                size_t q = (size_t)(rnd() % n);
                unsigned char t = dst[q];
                if (q + 1 < n && (t == 0x30 || t == 0x02 || t == 0x04 || t == 0x06 ||
                                  (t >= 0x40 && t <= 0x46) || (t >= 0xa0 && t <= 0xa8))) {
                    int how = (int)(rnd() % 3);
                    if (how == 0) {
                        dst[q + 1] = lens[rnd() % sizeof(lens)];
                    } else if (how == 1) {
                        dst[q + 1] = (unsigned char)(dst[q + 1] + 1);
                    } else {
                        dst[q + 1] = (unsigned char)(dst[q + 1] - 1);
                    }
                    break;
                }
            }
            break;
        }
        case 3: /* overwrite a run with random bytes */
            for (size_t k = 0; k < 1 + rnd() % 8 && p + k < n; k++) {
                dst[p + k] = (unsigned char)rnd();
            }
            break;
        case 4: { /* delete a run */
            size_t k = 1 + (size_t)(rnd() % 8);
            if (p + k > n) {
                k = n - p;
            }
            memmove(dst + p, dst + p + k, n - p - k);
            n -= k;
            break;
        }
        case 5: { /* insert random bytes */
            size_t k = 1 + (size_t)(rnd() % 8);
            if (n + k <= cap) {
                memmove(dst + p + k, dst + p, n - p);
                for (size_t i = 0; i < k; i++) {
                    dst[p + i] = (unsigned char)rnd();
                }
                n += k;
            }
            break;
        }
        default: /* an interesting value on a random byte */
            dst[p] = lens[rnd() % sizeof(lens)];
            break;
        }
    }
    return n;
}

/* Read everything a decoded trap points to (ASan checks the reads). */
static unsigned touch(const opsc_trap_t *t) {
    unsigned sum = 0;
    assert_non_null(t->trap_oid);
    assert_true(t->trap_oid_len > 0);
    for (uint32_t i = 0; i < t->trap_oid_len; i++) {
        sum += t->trap_oid[i];
    }
    for (uint32_t i = 0; i < t->enterprise_len; i++) {
        sum += t->enterprise[i];
    }
    for (size_t v = 0; v < t->nvarbinds; v++) {
        const opsc_varbind_t *vb = &t->varbinds[v];
        for (uint32_t i = 0; i < vb->oid_len; i++) {
            sum += vb->oid[i];
        }
        for (uint32_t i = 0; i < vb->bytes_len; i++) {
            sum += vb->bytes[i];
        }
        for (uint32_t i = 0; i < vb->oid_value_len; i++) {
            sum += vb->oid_value[i];
        }
    }
    assert_true(strlen(t->community) < sizeof(t->community));
    assert_true(strlen(t->user) < sizeof(t->user));
    return sum;
}

static void test_hostile_mutations(void **state) {
    (void)state;
    /* OPSC_TEST_SEED / OPSC_TEST_MUTATIONS: longer or other runs by hand. */
    int N = getenv("OPSC_TEST_MUTATIONS") != NULL ? atoi(getenv("OPSC_TEST_MUTATIONS")) : 100000;
    if (getenv("OPSC_TEST_SEED") != NULL) {
        rng_state = strtoull(getenv("OPSC_TEST_SEED"), NULL, 0) | 1;
    }
    unsigned char *work = malloc(OPSC_SNMP_DATAGRAM_MAX + 1);
    opsc_buf_t reply = OPSC_BUF_INIT;
    opsc_trap_t t;
    unsigned long counts[OPSC_SNMP_REASON_COUNT + 1] = {0};
    unsigned sum = 0;
    struct sockaddr_in from = {0};
    from.sin_family = AF_INET;
    from.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    from.sin_port = htons(40000);
    assert_non_null(work);
    ensure_corpus();
    assert_true(corpus_n >= 8);
    print_message("hostile: %zu seed datagrams, seed 0x%llx\n", corpus_n,
                  (unsigned long long)rng_state);

    /* Edges first: nothing, one byte, too big. */
    memset(work, 0x30, OPSC_SNMP_DATAGRAM_MAX + 1);
    assert_reason(opsc_snmp_decode(dec, work, 0, (struct sockaddr *)&from, &t, &reply),
                  OPSC_SNMP_MALFORMED);
    assert_reason(opsc_snmp_decode(dec, work, 1, (struct sockaddr *)&from, &t, &reply),
                  OPSC_SNMP_MALFORMED);
    assert_reason(opsc_snmp_decode(dec, work, OPSC_SNMP_DATAGRAM_MAX + 1, (struct sockaddr *)&from,
                                   &t, &reply),
                  OPSC_SNMP_TOO_BIG);
    assert_reason(
        opsc_snmp_decode(dec, work, OPSC_SNMP_DATAGRAM_MAX, (struct sockaddr *)&from, &t, &reply),
        OPSC_SNMP_MALFORMED);

    for (int i = 0; i < N; i++) {
        size_t k = (size_t)(rnd() % corpus_n);
        size_t n = mutate(corpus[k].bytes, corpus[k].len, work, OPSC_SNMP_DATAGRAM_MAX);
        int rc = opsc_snmp_decode(dec, work, n, (struct sockaddr *)&from, &t, &reply);
        if (rc > 0 || rc < -OPSC_SNMP_REASON_COUNT) {
            fail_msg("mutation %d: unexpected return %d", i, rc);
        }
        if (rc == 0) {
            sum += touch(&t);
        }
        assert_true(reply.len < 65536);
        counts[-rc]++;
    }
    for (int r = 0; r <= OPSC_SNMP_REASON_COUNT; r++) {
        if (counts[r] > 0) {
            print_message("  %-22s %lu\n", opsc_snmp_reason_name(-r), counts[r]);
        }
    }
    (void)sum;
    opsc_buf_free(&reply);
    free(work);
}

/* Offset of the v3 msgAuthoritativeEngineID inside a datagram. */
static size_t engine_offset(const unsigned char *b, size_t len, size_t *elen) {
    opsc__snmp_peek_t pk;
    assert_int_equal(opsc__snmp_peek(b, len, &pk), 0);
    assert_int_equal(pk.version, 3);
    *elen = pk.engine_id_len;
    return (size_t)(pk.engine_id - b);
}

static void test_v3_unknown_engines_leave_no_state(void **state) {
    (void)state;
    sock_t s;
    dgram_t *d = malloc(sizeof(*d));
    unsigned char work[2048], engines[64][8];
    opsc_buf_t reply = OPSC_BUF_INIT;
    opsc_trap_t t;
    assert_non_null(d);
    assert_int_equal(sock_open(&s, AF_INET), 0);
    v3_trap(&s, d, TRAP_ENGINE, "privaes", "authPriv", "SHA", "authpass123", "AES", "privpass123",
            NULL);
    sock_close(&s);
    size_t elen;
    size_t off = engine_offset(d->buf, d->len, &elen);
    assert_int_equal(elen, 8);
    assert_reason(decode(d, &t, &reply), 0); /* the configured engine becomes known */
    assert_true(opsc__snmp_engine_known(trap_engine.bytes, trap_engine.len));

    for (int i = 0; i < 10000; i++) {
        memcpy(work, d->buf, d->len);
        for (size_t k = 0; k < elen; k++) {
            work[off + k] = (unsigned char)rnd();
        }
        if (i < 64) {
            memcpy(engines[i], work + off, elen);
        }
        int rc = opsc_snmp_decode(dec, work, d->len, (struct sockaddr *)&d->from, &t, &reply);
        assert_reason(rc, OPSC_SNMP_UNKNOWN_ENGINE);
        assert_int_equal(reply.len, 0);
    }
    for (int i = 0; i < 64; i++) {
        assert_false(opsc__snmp_engine_known(engines[i], elen));
    }
    /* Unknown user names from the configured engine: rejected the same way. */
    opsc__snmp_peek_t pk;
    assert_int_equal(opsc__snmp_peek(d->buf, d->len, &pk), 0);
    size_t uoff = (size_t)(pk.user - d->buf);
    for (int i = 0; i < 1000; i++) {
        memcpy(work, d->buf, d->len);
        for (size_t k = 0; k < pk.user_len; k++) {
            work[uoff + k] = (unsigned char)('a' + rnd() % 26);
        }
        assert_reason(opsc_snmp_decode(dec, work, d->len, (struct sockaddr *)&d->from, &t, &reply),
                      OPSC_SNMP_UNKNOWN_USER);
    }
    /* Without the pre-filter, net-snmp would have remembered the engine: the check matters. */
    memcpy(work, d->buf, d->len);
    memset(work + off, 0x5a, elen);
    assert_false(opsc__snmp_engine_known(work + off, elen));
    (void)opsc__snmp_raw_parse(dec, work, d->len);
    memset(work + off, 0x5a, elen); /* in case net-snmp wrote into it */
    assert_true(opsc__snmp_engine_known(work + off, elen));
    opsc_buf_free(&reply);
    free(d);
}

/* ---- cost ----------------------------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Per-decode cost of opsc_snmp_decode and, for comparison, of net-snmp's snmp_parse alone on
 * the same bytes. Rounds alternate and the best round counts: the machine is shared.
 */
static double cost_us(const dgram_t *d, int n, double *raw_us) {
    unsigned char work[2048];
    opsc_buf_t reply = OPSC_BUF_INIT;
    opsc_trap_t t;
    double best = 1e9, best_raw = 1e9;
    for (int round = 0; round < 5; round++) {
        double t0 = now_s();
        for (int i = 0; i < n / 5; i++) {
            memcpy(work, d->buf, d->len);
            int rc =
                opsc_snmp_decode(dec, work, d->len, (const struct sockaddr *)&d->from, &t, &reply);
            if (rc != 0) {
                fail_msg("decode %d failed: %s", i, opsc_snmp_reason_name(rc));
            }
        }
        double us = (now_s() - t0) * 1e6 / (n / 5);
        best = us < best ? us : best;
        t0 = now_s();
        for (int i = 0; i < n / 5; i++) {
            memcpy(work, d->buf, d->len);
            if (opsc__snmp_raw_parse(dec, work, d->len) != 0) {
                fail_msg("raw parse %d failed", i);
            }
        }
        us = (now_s() - t0) * 1e6 / (n / 5);
        best_raw = us < best_raw ? us : best_raw;
    }
    *raw_us = best_raw;
    opsc_buf_free(&reply);
    return best;
}

static void test_decode_cost(void **state) {
    (void)state;
    sock_t s;
    dgram_t *d = malloc(sizeof(*d));
    assert_non_null(d);
    assert_int_equal(sock_open(&s, AF_INET), 0);
    const char *v2[] = {"snmptrap",
                        "-Ln",
                        "-v",
                        "2c",
                        "-c",
                        "public",
                        s.target,
                        "",
                        "1.3.6.1.6.3.1.1.5.3",
                        "1.3.6.1.2.1.2.2.1.1.3",
                        "i",
                        "3",
                        "1.3.6.1.2.1.2.2.1.7.3",
                        "i",
                        "1",
                        "1.3.6.1.2.1.2.2.1.8.3",
                        "i",
                        "2",
                        "1.3.6.1.2.1.2.2.1.2.3",
                        "s",
                        "GigabitEthernet0/3",
                        NULL};
    send_and_recv(&s, v2, d);
    double raw;
    double v2c = cost_us(d, 20000, &raw);
    print_message("decode cost: v2c linkDown (%zu bytes, 5 varbinds): %.2f us "
                  "(snmp_parse + snmp_free_pdu alone: %.2f us)\n",
                  d->len, v2c, raw);
    v3_trap(&s, d, TRAP_ENGINE, "privaes", "authPriv", "SHA", "authpass123", "AES", "privpass123",
            NULL);
    double v3 = cost_us(d, 5000, &raw);
    print_message("decode cost: v3 authPriv SHA/AES (%zu bytes): %.2f us (snmp_parse alone: "
                  "%.2f us)\n",
                  d->len, v3, raw);
    v3_trap(&s, d, TRAP_ENGINE, "priv256", "authPriv", "SHA-256", "authpass256", "AES-256",
            "privpass256", NULL);
    v3 = cost_us(d, 5000, &raw);
    print_message("decode cost: v3 authPriv SHA-256/AES-256 (%zu bytes): %.2f us (snmp_parse "
                  "alone: %.2f us)\n",
                  d->len, v3, raw);
    /* A wrong community costs only the header walk. */
    const char *bad[] = {
        "snmptrap", "-Ln", "-v", "2c", "-c", "wrong", s.target, "", "1.3.6.1.6.3.1.1.5.3", NULL};
    send_and_recv(&s, bad, d);
    unsigned char work[2048];
    opsc_buf_t reply = OPSC_BUF_INIT;
    opsc_trap_t t;
    double t0 = now_s();
    for (int i = 0; i < 20000; i++) {
        memcpy(work, d->buf, d->len);
        assert_int_equal(
            opsc_snmp_decode(dec, work, d->len, (const struct sockaddr *)&d->from, &t, &reply),
            OPSC_SNMP_BAD_COMMUNITY);
    }
    print_message("decode cost: v2c wrong community: %.3f us\n", (now_s() - t0) * 1e6 / 20000);
    opsc_buf_free(&reply);
    sock_close(&s);
    free(d);
}

/* ---- drop log lines ------------------------------------------------------------------------- */

static void test_drop_log_line(void **state) {
    (void)state;
    char path[300];
    snprintf(path, sizeof(path), "%s/log.txt", tmpdir);
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    assert_true(fd >= 0);
    opsc_log_set_fd(fd);
    opsc_log_set_level(OPSC_LOG_INFO);
    sock_t s;
    dgram_t d;
    opsc_trap_t t;
    opsc_buf_t reply = OPSC_BUF_INIT;
    assert_int_equal(sock_open(&s, AF_INET), 0);
    const char *argv[] = {"snmptrap", "-Ln", "-v",
                          "2c",       "-c",  "topsecretcommunity",
                          s.target,   "",    "1.3.6.1.6.3.1.1.5.1",
                          NULL};
    send_and_recv(&s, argv, &d);
    assert_reason(decode(&d, &t, &reply), OPSC_SNMP_BAD_COMMUNITY);
    v3_trap(&s, &d, TRAP_ENGINE, "privaes", "authPriv", "SHA", "authpass123", "AES", "wrongpriv99",
            NULL);
    assert_reason(decode(&d, &t, &reply), OPSC_SNMP_BAD_PRIV);
    opsc_log_set_fd(-1);
    opsc_log_set_level(OPSC_LOG_ERROR);
    char *text = NULL;
    size_t len;
    assert_int_equal(opsc_read_file(path, &text, &len, 1 << 20), 0);
    close(fd);
    if (strstr(text, "bad_community") == NULL || strstr(text, "bad_priv") == NULL ||
        strstr(text, "privaes") == NULL || strstr(text, "127.0.0.1:") == NULL) {
        fail_msg("drop lines missing in: %s", text);
    }
    assert_null(strstr(text, "topsecretcommunity"));
    assert_null(strstr(text, "wrongpriv99"));
    opsc_free(text);
    opsc_buf_free(&reply);
    sock_close(&s);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static void test_decoder_lifecycle(void **state) {
    (void)state;
    char err[512];
    sock_t ps;
    dgram_t *probe = malloc(sizeof(*probe));
    assert_non_null(probe);
    assert_int_equal(sock_open(&ps, AF_INET), 0);
    const char *pargv[] = {"snmpinform",
                           "-Ln",
                           "-t",
                           "1",
                           "-r",
                           "0",
                           "-v",
                           "3",
                           "-u",
                           "informer",
                           "-l",
                           "authNoPriv",
                           "-a",
                           "SHA",
                           "-A",
                           "informauth1",
                           ps.target,
                           "",
                           "1.3.6.1.6.3.1.1.5.1",
                           NULL};
    pid_t pid = spawn(pargv);
    assert_int_equal(sock_recv(&ps, probe, WAIT_MS), 0);
    wait_exit(pid, 0);
    sock_close(&ps);
    opsc_snmp_decoder_t *d2 = NULL;
    opsc_snmp_decoder_options_t o;
    memset(&o, 0, sizeof(o));
    o.engine_id = our_engine.bytes;
    o.engine_id_len = our_engine.len;
    /* One per process. */
    assert_int_equal(opsc_snmp_decoder_create(&o, &d2, err, sizeof(err)), OPSC_ECONFIG);
    assert_non_null(strstr(err, "already exists"));
    assert_null(d2);

    opsc_snmp_decoder_destroy(dec);
    dec = NULL;
    /* The engine ID cannot change under net-snmp. */
    opsc_engine_id_t other;
    assert_int_equal(opsc_engine_id_parse(OTHER_ENGINE, &other, err, sizeof(err)), 0);
    o.engine_id = other.bytes;
    o.engine_id_len = other.len;
    assert_int_equal(opsc_snmp_decoder_create(&o, &d2, err, sizeof(err)), OPSC_ECONFIG);
    assert_non_null(strstr(err, "engine ID"));

    /* Two users with the same name bound to our engine: one explicitly, one by default. */
    opsc_snmp_v3_user_t dup[2];
    memset(dup, 0, sizeof(dup));
    dup[0].name = dup[1].name = (char *)"twin";
    dup[0].engine_id = our_engine;
    snprintf(dup[1].src, sizeof(dup[1].src), "opsc.yaml:12");
    o.engine_id = our_engine.bytes;
    o.engine_id_len = our_engine.len;
    o.users = dup;
    o.nusers = 2;
    assert_int_equal(opsc_snmp_decoder_create(&o, &d2, err, sizeof(err)), OPSC_ECONFIG);
    assert_non_null(strstr(err, "user 2 (\"twin\")"));
    assert_non_null(strstr(err, "opsc.yaml:12"));

    /* Every protocol of the config is in this build (Debian's net-snmp 5.9.3 with OpenSSL). */
    opsc_snmp_v3_user_t all = {0};
    all.name = (char *)"x";
    for (int a = OPSC_SNMP_AUTH_NONE; a <= OPSC_SNMP_AUTH_SHA512; a++) {
        for (int p = OPSC_SNMP_PRIV_NONE; p <= OPSC_SNMP_PRIV_AES256; p++) {
            all.auth = (opsc_snmp_auth_t)a;
            all.priv = (opsc_snmp_priv_t)p;
            assert_int_equal(opsc_snmp_check_users(&all, 1, err, sizeof(err)), 0);
        }
    }
    all.auth = (opsc_snmp_auth_t)99;
    snprintf(all.src, sizeof(all.src), "opsc.yaml:3");
    assert_int_equal(opsc_snmp_check_users(&all, 1, err, sizeof(err)), OPSC_ECONFIG);
    assert_non_null(strstr(err, "snmp.v3_users: user 1 (\"x\"): auth_protocol"));
    assert_non_null(strstr(err, "not supported by this net-snmp build (opsc.yaml:3)"));

    /* Without a user bound to our engine, discovery probes are not answered. */
    o.users = users;
    o.nusers = 1; /* authsha: a trap user */
    assert_int_equal(opsc_snmp_decoder_create(&o, &d2, err, sizeof(err)), 0);
    unsigned char work[2048];
    opsc_trap_t t;
    opsc_buf_t reply = OPSC_BUF_INIT;
    memcpy(work, probe->buf, probe->len);
    assert_reason(opsc_snmp_decode(d2, work, probe->len, NULL, &t, &reply),
                  OPSC_SNMP_UNKNOWN_ENGINE);
    assert_int_equal(reply.len, 0);
    opsc_buf_free(&reply);
    opsc_snmp_decoder_destroy(d2);

    /* Recreate the shared decoder; its users were removed and come back with it. */
    make_decoder();
    sock_t s;
    dgram_t d;
    assert_int_equal(sock_open(&s, AF_INET), 0);
    v3_trap(&s, &d, TRAP_ENGINE, "privaes", "authPriv", "SHA", "authpass123", "AES", "privpass123",
            NULL);
    assert_v3_ok(&d, "privaes", 3);
    sock_close(&s);
    free(probe);
}

/* ---- BER peek ------------------------------------------------------------------------------- */

static void test_peek(void **state) {
    (void)state;
    opsc__snmp_peek_t pk;
    /* a minimal v2c trap: community "public", one varbind snmpTrapOID.0 = 0.0 */
    static const unsigned char v2c[] = {
        0x30, 0x29, 0x02, 0x01, 0x01, 0x04, 0x06, 'p',  'u',  'b',  'l',  'i',  'c',  0xa7, 0x1c,
        0x02, 0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x11, 0x30, 0x0f, 0x06, 0x0a,
        0x2b, 0x06, 0x01, 0x06, 0x03, 0x01, 0x01, 0x04, 0x01, 0x00, 0x06, 0x01, 0x00};
    assert_int_equal(opsc__snmp_peek(v2c, sizeof(v2c), &pk), 0);
    assert_int_equal(pk.version, 1);
    assert_int_equal(pk.pdu_tag, 0xa7);
    assert_int_equal(pk.community_len, 6);
    assert_memory_equal(pk.community, "public", 6);
    /* trailing byte, short length, long-form lengths, indefinite length */
    unsigned char b[64];
    memcpy(b, v2c, sizeof(v2c));
    b[sizeof(v2c)] = 0;
    assert_int_equal(opsc__snmp_peek(b, sizeof(v2c) + 1, &pk), OPSC_SNMP_MALFORMED);
    assert_int_equal(opsc__snmp_peek(b, sizeof(v2c) - 1, &pk), OPSC_SNMP_MALFORMED);
    b[1] = 0x80;
    assert_int_equal(opsc__snmp_peek(b, sizeof(v2c), &pk), OPSC_SNMP_MALFORMED);
    b[1] = 0x85;
    assert_int_equal(opsc__snmp_peek(b, sizeof(v2c), &pk), OPSC_SNMP_MALFORMED);
    b[1] = 0x29;
    b[4] = 2; /* version 2: SNMPv2u/v2*, never deployed */
    assert_int_equal(opsc__snmp_peek(b, sizeof(v2c), &pk), OPSC_SNMP_UNSUPPORTED_VERSION);
    assert_int_equal(opsc__snmp_peek(NULL, 0, &pk), OPSC_SNMP_MALFORMED);
    /* A v2c GET is well-formed; the decoder rejects it as not a notification. */
    memcpy(b, v2c, sizeof(v2c));
    b[13] = 0xa0;
    assert_int_equal(opsc__snmp_peek(b, sizeof(v2c), &pk), 0);
    opsc_trap_t t;
    opsc_buf_t reply = OPSC_BUF_INIT;
    assert_reason(opsc_snmp_decode(dec, b, sizeof(v2c), NULL, &t, &reply),
                  OPSC_SNMP_UNSUPPORTED_PDU);
    /* The capture itself: snmpTrapOID.0 with a bad value (0x06 0x01 0x00 = "0") is accepted... */
    memcpy(b, v2c, sizeof(v2c));
    assert_reason(opsc_snmp_decode(dec, b, sizeof(v2c), NULL, &t, &reply), 0);
    assert_int_equal(t.trap_oid_len, 2);
    assert_int_equal(t.nvarbinds, 0);
    /* ... but without snmpTrapOID.0 there is no notification. */
    memcpy(b, v2c, sizeof(v2c));
    b[39] = 0x02; /* ...4.1.2 instead of ...4.1.0 */
    assert_reason(opsc_snmp_decode(dec, b, sizeof(v2c), NULL, &t, &reply), OPSC_SNMP_MALFORMED);
    opsc_buf_free(&reply);
}

static void test_reason_names(void **state) {
    (void)state;
    assert_string_equal(opsc_snmp_reason_name(0), "ok");
    assert_string_equal(opsc_snmp_reason_name(OPSC_SNMP_MALFORMED), "malformed");
    assert_string_equal(opsc_snmp_reason_name(OPSC_SNMP_BAD_COMMUNITY), "bad_community");
    assert_string_equal(opsc_snmp_reason_name(OPSC_SNMP_NOT_IN_TIME_WINDOW), "not_in_time_window");
    assert_string_equal(opsc_snmp_reason_name(-999), "unknown");
    assert_string_equal(opsc_snmp_reason_name(1), "unknown");
    for (int a = 1; a <= OPSC_SNMP_REASON_COUNT; a++) {
        const char *na = opsc_snmp_reason_name(-a);
        assert_string_not_equal(na, "unknown");
        for (const char *p = na; *p != '\0'; p++) {
            assert_true((*p >= 'a' && *p <= 'z') || *p == '_'); /* a metric label */
        }
        for (int b = a + 1; b <= OPSC_SNMP_REASON_COUNT; b++) {
            assert_string_not_equal(na, opsc_snmp_reason_name(-b));
        }
    }
    assert_string_equal(opsc_snmp_reason_name(-OPSC_SNMP_REASON_COUNT - 1), "unknown");
}

/* ---- engine ID and boots files -------------------------------------------------------------- */

static void test_engine_files(void **state) {
    (void)state;
    char dir[300], path[400], err[512];
    unsigned char id[OPSC_SNMP_ENGINE_ID_MAX], id2[OPSC_SNMP_ENGINE_ID_MAX];
    size_t len = 0, len2 = 0;
    uint32_t boots = 0;
    snprintf(dir, sizeof(dir), "%s/data", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);

    assert_int_equal(opsc_snmp_engine_id_load_or_create(dir, id, &len, err, sizeof(err)), 0);
    assert_int_equal(len, 17);
    assert_memory_equal(id, "\x80\x00\x1f\x88\x05", 5);
    assert_int_equal(opsc_snmp_engine_id_load_or_create(dir, id2, &len2, err, sizeof(err)), 0);
    assert_int_equal(len2, len);
    assert_memory_equal(id, id2, len);
    /* A second data dir gets another one. */
    char dir2[300];
    snprintf(dir2, sizeof(dir2), "%s/data2", tmpdir);
    assert_int_equal(mkdir(dir2, 0700), 0);
    assert_int_equal(opsc_snmp_engine_id_load_or_create(dir2, id2, &len2, err, sizeof(err)), 0);
    assert_memory_not_equal(id, id2, len);

    /* A hand-written one, without 0x and with blanks around. */
    snprintf(path, sizeof(path), "%s/snmp_engine_id", dir2);
    FILE *f = fopen(path, "w");
    fputs("  800000000102030405\n\n", f);
    fclose(f);
    assert_int_equal(opsc_snmp_engine_id_load_or_create(dir2, id2, &len2, err, sizeof(err)), 0);
    assert_int_equal(len2, 9);
    /* A broken one is an error naming the file, not silently replaced. */
    f = fopen(path, "w");
    fputs("0x8000zz\n", f);
    fclose(f);
    assert_int_equal(opsc_snmp_engine_id_load_or_create(dir2, id2, &len2, err, sizeof(err)),
                     OPSC_ECONFIG);
    assert_non_null(strstr(err, "snmp_engine_id"));
    /* A missing data dir. */
    char nodir[400];
    snprintf(nodir, sizeof(nodir), "%s/nope", tmpdir);
    assert_true(opsc_snmp_engine_id_load_or_create(nodir, id2, &len2, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "nope"));

    assert_int_equal(opsc_snmp_engine_boots_next(dir, &boots, err, sizeof(err)), 0);
    assert_int_equal(boots, 1);
    assert_int_equal(opsc_snmp_engine_boots_next(dir, &boots, err, sizeof(err)), 0);
    assert_int_equal(boots, 2);
    assert_int_equal(opsc_snmp_engine_boots_next(dir, &boots, err, sizeof(err)), 0);
    assert_int_equal(boots, 3);
    snprintf(path, sizeof(path), "%s/snmp_engine_boots", dir);
    f = fopen(path, "w");
    fputs("2147483647\n", f);
    fclose(f);
    assert_int_equal(opsc_snmp_engine_boots_next(dir, &boots, err, sizeof(err)), 0);
    assert_int_equal(boots, 2147483647u); /* sticks at the maximum */
    f = fopen(path, "w");
    fputs("-3\n", f);
    fclose(f);
    assert_int_equal(opsc_snmp_engine_boots_next(dir, &boots, err, sizeof(err)), OPSC_ECONFIG);
    assert_non_null(strstr(err, "snmp_engine_boots"));
}

/* ---- configuration keys --------------------------------------------------------------------- */

static char *const no_env[] = {NULL};

static const char *write_file(const char *name, const char *text) {
    static char path[400];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void load_fail(const char *path, char *const *env, const char *want1, const char *want2) {
    opsc_config_t cfg;
    char err[1024];
    assert_int_equal(opsc_config_load(&cfg, path, env, err, sizeof(err)), OPSC_ECONFIG);
    if (strstr(err, want1) == NULL || (want2 != NULL && strstr(err, want2) == NULL)) {
        fail_msg("error \"%s\" lacks \"%s\" / \"%s\"", err, want1, want2 != NULL ? want2 : "");
    }
    assert_null(strchr(err, '\n'));
    /* Secrets never appear in errors. */
    assert_null(strstr(err, "verysecret"));
}

static void test_config_snmp_defaults(void **state) {
    (void)state;
    opsc_config_t cfg;
    char err[512], text[1024];
    assert_int_equal(opsc_config_load(&cfg, NULL, no_env, err, sizeof(err)), 0);
    assert_int_equal(cfg.snmp.communities.count, 0);
    assert_int_equal(cfg.snmp.engine_id.len, 0);
    assert_int_equal(cfg.snmp.rcvbuf, 16 * 1024 * 1024);
    assert_int_equal(cfg.snmp.v3_users.count, 0);
    /* Unset values format as "" (and parse back), --check-config says (unset). */
    opsc_config_format_value(&cfg, opsc_config_find_key("snmp.v3_users"), text, sizeof(text));
    assert_string_equal(text, "");
    opsc_config_format_value(&cfg, opsc_config_find_key("snmp.engine_id"), text, sizeof(text));
    assert_string_equal(text, "");
    char *eff = NULL;
    size_t efflen = 0;
    FILE *f = open_memstream(&eff, &efflen);
    assert_non_null(f);
    opsc_config_print_effective(&cfg, f);
    fclose(f);
    assert_non_null(strstr(eff, "snmp.v3_users = (unset)\n"));
    assert_non_null(strstr(eff, "snmp.engine_id = (unset)\n"));
    assert_non_null(strstr(eff, "snmp.communities = (unset)\n"));
    assert_non_null(strstr(eff, "snmp.rcvbuf = 16MiB\n"));
    free(eff);
    opsc_config_format_value(&cfg, opsc_config_find_key("snmp.rcvbuf"), text, sizeof(text));
    assert_string_equal(text, "16MiB");
    /* Secret: its printed form masks the passphrases, so it does not read back. */
    assert_true(opsc_config_find_key("snmp.v3_users")->secret);
    assert_true(opsc_config_find_key("snmp.communities")->secret);
    assert_false(opsc_config_find_key("snmp.engine_id")->secret);
    opsc_config_free(&cfg);
}

static void test_config_snmp_yaml(void **state) {
    (void)state;
    opsc_config_t cfg, cfg2;
    char err[1024], text[2048];
    const char *path = write_file("ok.yaml", "snmp:\n"
                                             "  communities: [public, \"with,comma\"]\n"
                                             "  engine_id: 0x80001F8804616263\n"
                                             "  rcvbuf: 4MiB\n"
                                             "  v3_users:\n"
                                             "    - name: alice\n"
                                             "      auth_protocol: SHA-256\n"
                                             "      auth_passphrase: verysecret-a\n"
                                             "      priv_protocol: AES-256\n"
                                             "      priv_passphrase: verysecret-p\n"
                                             "      engine_id: 8000000001020304\n"
                                             "    - name: bob\n"
                                             "      auth_protocol: md5\n"
                                             "      auth_passphrase: verysecret-b\n"
                                             "    - {name: carol}\n");
    if (opsc_config_load(&cfg, path, no_env, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    assert_int_equal(cfg.snmp.communities.count, 2);
    assert_string_equal(cfg.snmp.communities.items[1], "with,comma");
    assert_int_equal(cfg.snmp.engine_id.len, 8);
    assert_memory_equal(cfg.snmp.engine_id.bytes,
                        "\x80\x00\x1f\x88\x04"
                        "abc",
                        8);
    assert_int_equal(cfg.snmp.rcvbuf, 4 * 1024 * 1024);
    assert_int_equal(cfg.snmp.v3_users.count, 3);
    const opsc_snmp_v3_user_t *a = &cfg.snmp.v3_users.users[0];
    assert_string_equal(a->name, "alice");
    assert_int_equal(a->auth, OPSC_SNMP_AUTH_SHA256);
    assert_int_equal(a->priv, OPSC_SNMP_PRIV_AES256);
    assert_string_equal(a->priv_passphrase, "verysecret-p");
    assert_int_equal(a->engine_id.len, 8);
    assert_non_null(strstr(a->src, "ok.yaml:6"));
    assert_int_equal(cfg.snmp.v3_users.users[1].auth, OPSC_SNMP_AUTH_MD5);
    assert_int_equal(cfg.snmp.v3_users.users[1].engine_id.len, 0);
    assert_int_equal(cfg.snmp.v3_users.users[2].auth, OPSC_SNMP_AUTH_NONE);

    /* Printed without passphrases or communities. */
    opsc_config_format_value(&cfg, opsc_config_find_key("snmp.v3_users"), text, sizeof(text));
    assert_null(strstr(text, "verysecret"));
    assert_non_null(strstr(text, "name: alice"));
    assert_non_null(strstr(text, "auth_passphrase: ***"));
    assert_non_null(strstr(text, "engine_id: 0x8000000001020304"));
    opsc_config_format_value(&cfg, opsc_config_find_key("snmp.communities"), text, sizeof(text));
    assert_string_equal(text, "***");
    opsc_config_format_value(&cfg, opsc_config_find_key("snmp.engine_id"), text, sizeof(text));
    assert_string_equal(text, "0x80001f8804616263");

    /* copy_key and diff see deep values. */
    assert_int_equal(opsc_config_load(&cfg2, NULL, no_env, err, sizeof(err)), 0);
    assert_int_equal(opsc_config_copy_key(&cfg2, &cfg, opsc_config_find_key("snmp.v3_users")), 0);
    assert_int_equal(opsc_config_copy_key(&cfg2, &cfg, opsc_config_find_key("snmp.communities")),
                     0);
    assert_string_equal(cfg2.snmp.v3_users.users[0].priv_passphrase, "verysecret-p");
    assert_ptr_not_equal(cfg2.snmp.v3_users.users[0].name, cfg.snmp.v3_users.users[0].name);
    assert_string_equal(cfg2.snmp.communities.items[0], "public");
    opsc_config_free(&cfg2);
    opsc_config_free(&cfg);

    /* Comma-separated in the file and the environment; JSON users in the environment. */
    path = write_file("flat.yaml", "snmp.communities: \"a, b ,c\"\n");
    char *env[] = {(char *)"OPSC_SNMP_V3_USERS=[{\"name\":\"dave\",\"auth_protocol\":\"SHA\","
                           "\"auth_passphrase\":\"verysecret-d\",\"priv_protocol\":\"AES\","
                           "\"priv_passphrase\":\"verysecret-e\",\"engine_id\":\"0x8000000001\"}]",
                   (char *)"OPSC_SNMP_ENGINE_ID=8000000001020304", NULL};
    if (opsc_config_load(&cfg, path, env, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    assert_int_equal(cfg.snmp.communities.count, 3);
    assert_string_equal(cfg.snmp.communities.items[1], "b");
    assert_int_equal(cfg.snmp.v3_users.count, 1);
    assert_string_equal(cfg.snmp.v3_users.users[0].name, "dave");
    assert_int_equal(cfg.snmp.v3_users.users[0].priv, OPSC_SNMP_PRIV_AES128);
    assert_int_equal(cfg.snmp.v3_users.users[0].engine_id.len, 5);
    assert_int_equal(cfg.snmp.engine_id.len, 8);
    opsc_config_free(&cfg);
    char *env2[] = {(char *)"OPSC_SNMP_COMMUNITIES=x,y", NULL};
    assert_int_equal(opsc_config_load(&cfg, NULL, env2, err, sizeof(err)), 0);
    assert_int_equal(cfg.snmp.communities.count, 2);
    opsc_config_free(&cfg);
}

static void test_config_snmp_errors(void **state) {
    (void)state;
    load_fail(write_file("e1.yaml", "snmp:\n  v3_users:\n    - name: alice\n"
                                    "      auth_protocol: SHA-3\n"
                                    "      auth_passphrase: verysecret\n"),
              no_env, "snmp.v3_users: user 1 (\"alice\"): auth_protocol: expected one of",
              "e1.yaml:4");
    load_fail(write_file("e2.yaml", "snmp:\n  v3_users:\n    - name: alice\n"
                                    "      auth_protocol: SHA\n"
                                    "      auth_passphrase: short\n"),
              no_env, "auth_passphrase: expected 8 to 1024 characters, got 5", "e2.yaml:5");
    load_fail(write_file("e3.yaml", "snmp:\n  v3_users:\n    - name: alice\n"
                                    "      priv_protocol: AES\n"
                                    "      priv_passphrase: verysecret\n"),
              no_env, "privacy needs authentication", "e3.yaml:3");
    load_fail(write_file("e4.yaml", "snmp:\n  v3_users:\n    - name: alice\n"
                                    "      auth_protocol: SHA\n"),
              no_env, "auth_passphrase: missing", "e4.yaml:3");
    load_fail(write_file("e5.yaml", "snmp:\n  v3_users:\n    - name: alice\n"
                                    "      engine_id: 0x1234\n"),
              no_env, "engine_id: expected 5 to 32 bytes in hex", "e5.yaml:4");
    load_fail(write_file("e6.yaml", "snmp:\n  v3_users:\n    - name: alice\n"
                                    "      auth_proto: SHA\n"),
              no_env, "unknown field \"auth_proto\"", "e6.yaml:4");
    load_fail(write_file("e7.yaml", "snmp:\n  v3_users:\n    name: alice\n"), no_env,
              "expected a sequence of users", "e7.yaml:3");
    load_fail(write_file("e8.yaml", "snmp:\n  v3_users:\n    - name: alice\n    - name: alice\n"),
              no_env, "user 2 (\"alice\"): the same name and engine_id", "e8.yaml:4");
    load_fail(write_file("e9.yaml", "snmp:\n  v3_users:\n    - auth_protocol: none\n"), no_env,
              "user 1: name: missing", "e9.yaml:3");
    load_fail(write_file("e10.yaml", "snmp:\n  engine_id: 0x80zz000001\n"), no_env,
              "snmp.engine_id: expected an engine ID of 5 to 32 bytes", "e10.yaml:2");
    load_fail(write_file("e11.yaml", "snmp:\n  communities: [a, [b]]\n"), no_env,
              "snmp.communities: expected a sequence of strings", "e11.yaml:2");
    load_fail(write_file("e12.yaml", "snmp:\n  communities: \"a,,b\"\n"), no_env,
              "empty item in the list", "e12.yaml:2");
    load_fail(write_file("e13.yaml", "snmp:\n  rcvbuf: 1KiB\n"), no_env,
              "snmp.rcvbuf: expected a size from 64KiB to 1GiB", "e13.yaml:2");
    load_fail(write_file("e14.yaml", "snmp:\n  v3_users:\n    - name: alice\n"
                                     "      auth_protocol: SHA\n"
                                     "      auth_passphrase: [verysecret]\n"),
              no_env, "auth_passphrase: expected a single value", "e14.yaml:5");
    char *env[] = {(char *)"OPSC_SNMP_V3_USERS=[{\"name\":\"x\",\"auth_passphrase\":\"verysecret1",
                   NULL};
    load_fail(NULL, env, "snmp.v3_users: expected a JSON array", "env OPSC_SNMP_V3_USERS");
    char *env2[] = {(char *)"OPSC_SNMP_V3_USERS={\"name\":\"x\"}", NULL};
    load_fail(NULL, env2, "got an object", "env OPSC_SNMP_V3_USERS");
    char *env3[] = {(char *)"OPSC_SNMP_V3_USERS=[{\"name\":\"x\",\"auth_protocol\":\"SHA\","
                            "\"auth_passphrase\":\"verysecret\",\"priv_protocol\":\"AES\"}]",
                    NULL};
    load_fail(NULL, env3, "user 1 (\"x\"): priv_passphrase: missing", "env OPSC_SNMP_V3_USERS");
    char *env4[] = {(char *)"OPSC_SNMP_V3_USERS=[{\"name\":\"x\",\"auth_protocol\":5}]", NULL};
    load_fail(NULL, env4, "auth_protocol: expected a string", NULL);
}

/* ---- OIDs ----------------------------------------------------------------------------------- */

static void test_oid_text(void **state) {
    (void)state;
    uint32_t oid[8];
    char out[64];
    assert_int_equal(opsc_oid_parse("1.3.6.1.4294967295", oid, 8), 5);
    assert_int_equal(oid[4], 4294967295u);
    assert_int_equal(opsc_oid_parse(".1.3", oid, 8), 2);
    assert_int_equal(opsc_oid_parse("1.3.6.1.4294967296", oid, 8), -1);
    assert_int_equal(opsc_oid_parse("1..3", oid, 8), -1);
    assert_int_equal(opsc_oid_parse("1.3.", oid, 8), -1);
    assert_int_equal(opsc_oid_parse("", oid, 8), -1);
    assert_int_equal(opsc_oid_parse(".", oid, 8), -1);
    assert_int_equal(opsc_oid_parse("1.x", oid, 8), -1);
    assert_int_equal(opsc_oid_parse(" 1.3", oid, 8), -1);
    assert_int_equal(opsc_oid_parse("1.2.3", oid, 2), -1);
    assert_int_equal(opsc_oid_parse(NULL, oid, 2), -1);
    assert_int_equal(opsc_oid_parse("1.3.6.1.6.3.1.1.5.3", oid, 8), -1);
    uint32_t big[16];
    assert_int_equal(opsc_oid_parse("1.3.6.1.6.3.1.1.5.3", big, 16), 10);
    assert_int_equal(opsc_oid_format(big, 10, out, sizeof(out)), strlen("1.3.6.1.6.3.1.1.5.3"));
    assert_string_equal(out, "1.3.6.1.6.3.1.1.5.3");
    assert_int_equal(opsc_oid_format(big, 10, out, 6), 5);
    assert_string_equal(out, "1.3.6");
    assert_int_equal(opsc_oid_format(big, 0, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(opsc_oid_format(big, 3, out, 0), 0);
    oid[0] = 4294967295u;
    assert_int_equal(opsc_oid_format(oid, 1, out, sizeof(out)), 10);
    assert_string_equal(out, "4294967295");
}

int main(void) {
    /* The clients' exits must not kill us; SIGPIPE cannot happen on UDP but stays harmless. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oid_text),
        cmocka_unit_test(test_reason_names),
        cmocka_unit_test(test_peek),
        cmocka_unit_test(test_v1_coldstart),
        cmocka_unit_test(test_v1_enterprise_specific),
        cmocka_unit_test(test_v2c_linkdown),
        cmocka_unit_test(test_v2c_trap_address_and_enterprise),
        cmocka_unit_test(test_v2c_bad_community),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_v3_auth_nopriv),
        cmocka_unit_test(test_v3_auth_priv),
        cmocka_unit_test(test_v3_rejections),
        cmocka_unit_test(test_inform_v2c),
        cmocka_unit_test(test_inform_v3),
        cmocka_unit_test(test_reply_bytes),
        cmocka_unit_test(test_drop_log_line),
        cmocka_unit_test(test_hostile_mutations),
        cmocka_unit_test(test_v3_unknown_engines_leave_no_state),
        cmocka_unit_test(test_decode_cost),
        cmocka_unit_test(test_decoder_lifecycle),
        cmocka_unit_test(test_engine_files),
        cmocka_unit_test(test_config_snmp_defaults),
        cmocka_unit_test(test_config_snmp_yaml),
        cmocka_unit_test(test_config_snmp_errors),
    };
    /* OPSC_TEST_FILTER=test_decode_cost runs one test (cmocka patterns: * and ?). */
    if (getenv("OPSC_TEST_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("OPSC_TEST_FILTER"));
    }
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
