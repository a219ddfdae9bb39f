/*
 * Embedded PostgreSQL supervisor against real PostgreSQL binaries: no mocks.
 * Every test gets a fresh data dir under /tmp and a fresh loop; every wait is
 * bounded (run_until), and the teardown stops whatever a failed test left.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <uv.h>

#include "opsc/buf.h"
#include "opsc/embedded_pg.h"
#include "opsc/error.h"
#include "opsc/fsutil.h"
#include "opsc/log.h"
#include "store/embedded_pg_int.h"
#include "support/pg_harness.h"

#define FIRST_START_MS 60000
#define STOP_MS 20000

typedef struct {
    uv_loop_t loop;
    char tmp[256];
    char data_dir[400];
    char extra_cleanup[4096]; /* e.g. the relocated cluster's /var/lib/opsconductor/<hash> */
    opsc_embedded_pg_t *epg;
    int running;
    int ups;
    int downs;
    int fatals;
    int events[64]; /* running values in callback order */
    int nevents;
    int done;
} fx_t;

static void state_cb(opsc_embedded_pg_t *epg, int running, int fatal, void *arg) {
    fx_t *fx = arg;

    (void)epg;
    fx->running = running;
    if (running) {
        fx->ups++;
    } else {
        fx->downs++;
    }
    if (fatal) {
        fx->fatals++;
    }
    if (fx->nevents < 64) {
        fx->events[fx->nevents++] = running;
    }
}

static void done_cb(void *arg) {
    ((fx_t *)arg)->done = 1;
}

static void expire_cb(uv_timer_t *t) {
    *(int *)t->data = 1;
}

/* Run the loop until pred holds or timeout_ms pass. 0 when pred holds. */
static int run_until(fx_t *fx, int (*pred)(const fx_t *), int timeout_ms) {
    uv_timer_t t;
    int expired = 0;

    uv_timer_init(&fx->loop, &t);
    t.data = &expired;
    uv_timer_start(&t, expire_cb, (uint64_t)timeout_ms, 0);
    while (!pred(fx) && !expired) {
        uv_run(&fx->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    return pred(fx) ? 0 : -1;
}

static int is_up(const fx_t *fx) {
    return fx->running == 1 || fx->fatals > 0;
}

static int is_done(const fx_t *fx) {
    return fx->done;
}

static int restarted(const fx_t *fx) {
    return (fx->downs >= 1 && fx->running == 1) || fx->fatals > 0;
}

static uint64_t now_ms(void) {
    return uv_hrtime() / 1000000u;
}

static int path_exists(const char *p) {
    struct stat st;

    return stat(p, &st) == 0;
}

/*
 * Live processes whose cwd is at or under `dir` (postgres chdirs into its data
 * dir; so does initdb's bootstrap backend). `dir` may be gone already.
 */
static int count_cluster_procs_v(const char *dir, int verbose) {
    char real[4096];
    DIR *d;
    struct dirent *de;
    int n = 0;

    if (!realpath(dir, real)) {
        (void)snprintf(real, sizeof(real), "%s", dir);
    }
    d = opendir("/proc");
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        char link[300];
        char cwd[4096];
        char st[512];
        char path[300];
        FILE *f;
        ssize_t len;
        const char *paren;

        if (de->d_name[0] < '0' || de->d_name[0] > '9') {
            continue;
        }
        (void)snprintf(link, sizeof(link), "/proc/%s/cwd", de->d_name);
        len = readlink(link, cwd, sizeof(cwd) - 1);
        if (len <= 0) {
            continue;
        }
        cwd[len] = '\0';
        if (strncmp(cwd, real, strlen(real)) != 0) {
            continue;
        }
        (void)snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        f = fopen(path, "r");
        if (!f) {
            continue;
        }
        len = (ssize_t)fread(st, 1, sizeof(st) - 1, f);
        fclose(f);
        st[len > 0 ? len : 0] = '\0';
        paren = strrchr(st, ')');
        if (paren && strncmp(paren, ") Z", 3) == 0) {
            continue;
        }
        if (verbose) {
            fprintf(stderr, "process %s still runs in %s: %.60s\n", de->d_name, real, st);
        }
        n++;
    }
    closedir(d);
    return n;
}

static int count_cluster_procs(const char *dir) {
    return count_cluster_procs_v(dir, 1);
}

static void assert_db_works(const char *conninfo) {
    PGconn *c = PQconnectdb(conninfo);
    PGresult *r;

    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "connect '%s': %s", conninfo, PQerrorMessage(c));
    }
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    r = PQexec(c, "SELECT 1, current_database(), current_user, "
                  "current_setting('listen_addresses'), pg_encoding_to_char(encoding) "
                  "FROM pg_database WHERE datname = current_database()");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 0), "1");
    assert_string_equal(PQgetvalue(r, 0, 1), "opsconductor");
    assert_string_equal(PQgetvalue(r, 0, 2), "opsconductor");
    assert_string_equal(PQgetvalue(r, 0, 3), ""); /* no TCP */
    assert_string_equal(PQgetvalue(r, 0, 4), "UTF8");
    PQclear(r);
    PQfinish(c);
}

static int fx_setup(void **state) {
    fx_t *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    (void)snprintf(fx->tmp, sizeof(fx->tmp), "/tmp/opsc-epg-test-XXXXXX");
    assert_non_null(mkdtemp(fx->tmp));
    /* mkdtemp makes it 0700: as root, the postgres user must be able to pass through. */
    assert_int_equal(chmod(fx->tmp, 0755), 0);
    (void)snprintf(fx->data_dir, sizeof(fx->data_dir), "%s/data", fx->tmp);
    *state = fx;
    return 0;
}

static void fx_stop(fx_t *fx) {
    if (!fx->epg) {
        return;
    }
    fx->done = 0;
    opsc_embedded_pg_stop(fx->epg, 10000, done_cb, fx);
    assert_int_equal(run_until(fx, is_done, STOP_MS), 0);
    fx->epg = NULL;
}

static int fx_teardown(void **state) {
    fx_t *fx = *state;
    int i;

    if (fx->epg) {
        fx->done = 0;
        opsc_embedded_pg_stop(fx->epg, 5000, done_cb, fx);
        (void)run_until(fx, is_done, STOP_MS);
        fx->epg = NULL;
    }
    for (i = 0; i < 100 && uv_loop_close(&fx->loop) == UV_EBUSY; i++) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    }
    (void)opsc_rm_rf(fx->tmp);
    if (fx->extra_cleanup[0]) {
        (void)opsc_rm_rf(fx->extra_cleanup);
        (void)rmdir("/var/lib/opsconductor"); /* only when empty, i.e. when we made it */
    }
    free(fx);
    return 0;
}

static void fx_create(fx_t *fx, const char *user) {
    opsc_embedded_pg_options_t o = {0};
    char err[512] = "";
    int r;

    o.data_dir = fx->data_dir;
    o.user = user;
    fx->running = fx->ups = fx->downs = fx->fatals = fx->nevents = 0;
    r = opsc_embedded_pg_create(&fx->loop, &o, state_cb, fx, &fx->epg, err, sizeof(err));
    if (r != 0) {
        fprintf(stderr, "create: %s (%s)\n", err, opsc_strerror(r));
    }
    assert_int_equal(r, 0);
}

/* Create, start, wait for running=1. Returns the time it took in ms. */
static uint64_t fx_start(fx_t *fx) {
    uint64_t t0 = now_ms();

    fx_create(fx, NULL);
    assert_int_equal(opsc_embedded_pg_start(fx->epg), 0);
    assert_int_equal(run_until(fx, is_up, FIRST_START_MS), 0);
    assert_int_equal(fx->fatals, 0);
    assert_int_equal(fx->running, 1);
    assert_true(opsc_embedded_pg_running(fx->epg));
    return now_ms() - t0;
}

static void read_text(const char *path, char *out, size_t len) {
    FILE *f = fopen(path, "r");
    size_t n;

    assert_non_null(f);
    n = fread(out, 1, len - 1, f);
    fclose(f);
    out[n] = '\0';
    out[strcspn(out, "\n")] = '\0';
}

static void test_first_start(void **state) {
    fx_t *fx = *state;
    char cluster[4096];
    char p[4200];
    char text[4096];
    opsc_buf_t m = OPSC_BUF_INIT;
    uint64_t ms;
    int pid;

    ms = fx_start(fx);
    fprintf(stderr, "first start (initdb + start + createdb): %llu ms\n", (unsigned long long)ms);
    (void)snprintf(cluster, sizeof(cluster), "%s", opsc_embedded_pg_cluster_dir(fx->epg));
    (void)snprintf(p, sizeof(p), "%s/pg", fx->data_dir);
    assert_string_equal(cluster, p); /* not relocated: the data dir is reachable */
    (void)snprintf(p, sizeof(p), "%s/PG_VERSION", cluster);
    assert_true(path_exists(p));
    (void)snprintf(p, sizeof(p), "%s.initdb", cluster);
    assert_false(path_exists(p));
    (void)snprintf(p, sizeof(p), "%s/pg.location", fx->data_dir);
    read_text(p, text, sizeof(text));
    assert_string_equal(text, cluster);
    assert_int_equal(fx->ups, 1);
    assert_int_equal(fx->downs, 0);

    pid = opsc_embedded_pg_pid(fx->epg);
    assert_true(pid > 0);
    assert_int_equal(kill(pid, 0), 0);
    assert_non_null(strstr(opsc_embedded_pg_conninfo(fx->epg), "dbname=opsconductor"));
    assert_db_works(opsc_embedded_pg_conninfo(fx->epg));

    opsc_embedded_pg_metrics(&m, fx->epg);
    assert_non_null(strstr(m.base, "\nopsc_embedded_pg_up 1\n"));
    assert_non_null(strstr(m.base, "\nopsc_embedded_pg_restarts_total 0\n"));
    opsc_buf_free(&m);

    fx_stop(fx);
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    assert_int_equal(count_cluster_procs(cluster), 0);
    assert_int_equal(fx->ups, 1); /* no state callback after stop */
}

static void test_second_start(void **state) {
    fx_t *fx = *state;
    char pgver[4200];
    struct stat st1, st2;
    uint64_t first, second;

    first = fx_start(fx);
    (void)snprintf(pgver, sizeof(pgver), "%s/PG_VERSION", opsc_embedded_pg_cluster_dir(fx->epg));
    assert_int_equal(stat(pgver, &st1), 0);
    fx_stop(fx);

    second = fx_start(fx);
    fprintf(stderr, "first start %llu ms, second start %llu ms\n", (unsigned long long)first,
            (unsigned long long)second);
    assert_int_equal(stat(pgver, &st2), 0);
    /* No initdb: the cluster is the same one. */
    assert_true(st1.st_ino == st2.st_ino);
    assert_true(st1.st_mtim.tv_sec == st2.st_mtim.tv_sec &&
                st1.st_mtim.tv_nsec == st2.st_mtim.tv_nsec);
    assert_true(second < first);
    assert_db_works(opsc_embedded_pg_conninfo(fx->epg));
    fx_stop(fx);
}

static void test_kill9_restarts(void **state) {
    fx_t *fx = *state;
    char cluster[4096];
    opsc_buf_t m = OPSC_BUF_INIT;
    uint64_t t0;
    int pid1, pid2;

    (void)fx_start(fx);
    (void)snprintf(cluster, sizeof(cluster), "%s", opsc_embedded_pg_cluster_dir(fx->epg));
    pid1 = opsc_embedded_pg_pid(fx->epg);
    assert_true(pid1 > 0);

    t0 = now_ms();
    assert_int_equal(kill(pid1, SIGKILL), 0);
    assert_int_equal(run_until(fx, restarted, 10000), 0);
    fprintf(stderr, "restart after kill -9: %llu ms\n", (unsigned long long)(now_ms() - t0));
    assert_int_equal(fx->fatals, 0);
    assert_int_equal(fx->nevents, 3);
    assert_int_equal(fx->events[0], 1);
    assert_int_equal(fx->events[1], 0);
    assert_int_equal(fx->events[2], 1);
    pid2 = opsc_embedded_pg_pid(fx->epg);
    assert_true(pid2 > 0);
    assert_true(pid2 != pid1);
    assert_db_works(opsc_embedded_pg_conninfo(fx->epg));

    opsc_embedded_pg_metrics(&m, fx->epg);
    assert_non_null(strstr(m.base, "\nopsc_embedded_pg_restarts_total 1\n"));
    opsc_buf_free(&m);

    fx_stop(fx);
    assert_true(kill(pid2, 0) == -1 && errno == ESRCH);
    assert_int_equal(count_cluster_procs(cluster), 0);
}

static void test_leftover_postmaster_replaced(void **state) {
    fx_t *fx = *state;
    char bindir[512];
    char cluster[4096];
    char sockdir[512];
    char logfile[512];
    struct passwd *pw;
    pid_t leftover;
    int pid;

    /* A cluster made by the supervisor... */
    (void)fx_start(fx);
    (void)snprintf(cluster, sizeof(cluster), "%s", opsc_embedded_pg_cluster_dir(fx->epg));
    fx_stop(fx);

    /* ...and a postmaster on it that "our killed previous process" left behind. */
    assert_int_equal(opsc_test_pg_find_bindir(bindir, sizeof(bindir)), 0);
    (void)snprintf(sockdir, sizeof(sockdir), "%s/leftover-sock", fx->tmp);
    (void)snprintf(logfile, sizeof(logfile), "%s/leftover.log", fx->tmp);
    assert_int_equal(mkdir(sockdir, 0700), 0);
    if (geteuid() == 0) {
        pw = getpwnam("postgres");
        assert_non_null(pw);
        assert_int_equal(chown(sockdir, pw->pw_uid, pw->pw_gid), 0);
    }
    leftover = opsc_test_pg_spawn_postgres(bindir, cluster, sockdir, 5432, logfile);
    assert_true(leftover > 0);
    assert_int_equal(opsc_test_pg_wait_ready(cluster, sockdir, 5432, leftover, 30000), 0);

    (void)fx_start(fx);
    pid = opsc_embedded_pg_pid(fx->epg);
    assert_true(pid > 0 && pid != (int)leftover);
    /* It was stopped (it is our child here, so a zombie until we reap it). */
    assert_int_equal(opsc_test_pg_wait_exit(leftover, 10000), 0);
    assert_db_works(opsc_embedded_pg_conninfo(fx->epg));
    fx_stop(fx);
    assert_int_equal(count_cluster_procs(cluster), 0);
}

static void test_root_relocates_unreachable_cluster(void **state) {
    fx_t *fx = *state;
    char priv[320];
    char base[4096];
    char want[4200];
    char p[4200];
    char text[4096];
    char cluster[4096];
    struct passwd *pw;
    struct stat st;

    if (geteuid() != 0) {
        skip();
    }
    pw = getpwnam("postgres");
    assert_non_null(pw);
    /* Like /root: a 0700 directory the postgres user cannot pass through. */
    (void)snprintf(priv, sizeof(priv), "%s/private", fx->tmp);
    assert_int_equal(mkdir(priv, 0700), 0);
    (void)snprintf(fx->data_dir, sizeof(fx->data_dir), "%s/data", priv);
    assert_int_equal(opsc__epg_relocation_base(fx->data_dir, base, sizeof(base)), 0);
    (void)snprintf(fx->extra_cleanup, sizeof(fx->extra_cleanup), "%s", base);
    (void)opsc_rm_rf(base);

    (void)fx_start(fx);
    (void)snprintf(cluster, sizeof(cluster), "%s", opsc_embedded_pg_cluster_dir(fx->epg));
    (void)snprintf(want, sizeof(want), "%s/pg", base);
    assert_string_equal(cluster, want);
    assert_int_equal(strncmp(cluster, "/var/lib/opsconductor/", 22), 0);
    assert_int_equal(stat(base, &st), 0);
    assert_int_equal(st.st_uid, pw->pw_uid);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(stat(cluster, &st), 0);
    assert_int_equal(st.st_uid, pw->pw_uid);
    (void)snprintf(p, sizeof(p), "%s/pg.location", fx->data_dir);
    read_text(p, text, sizeof(text));
    assert_string_equal(text, cluster);
    assert_db_works(opsc_embedded_pg_conninfo(fx->epg));
    fx_stop(fx);
    assert_int_equal(count_cluster_procs(cluster), 0);
}

static void test_stop_during_initdb(void **state) {
    fx_t *fx = *state;
    char p[4200];
    char cluster[4096];

    fx_create(fx, NULL);
    (void)snprintf(cluster, sizeof(cluster), "%s", opsc_embedded_pg_cluster_dir(fx->epg));
    assert_int_equal(opsc_embedded_pg_start(fx->epg), 0);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    fx_stop(fx);
    assert_int_equal(fx->ups, 0);
    (void)snprintf(p, sizeof(p), "%s/PG_VERSION", cluster);
    assert_false(path_exists(p));
    (void)snprintf(p, sizeof(p), "%s.initdb", cluster);
    assert_false(path_exists(p));

    assert_int_equal(count_cluster_procs(fx->tmp), 0);

    /* Again, in the middle of initdb this time (its bootstrap backend is running). */
    fx_create(fx, NULL);
    assert_int_equal(opsc_embedded_pg_start(fx->epg), 0);
    {
        uv_timer_t t;
        int expired = 0;
        uv_timer_init(&fx->loop, &t);
        t.data = &expired;
        uv_timer_start(&t, expire_cb, 400, 0);
        while (!expired) {
            uv_run(&fx->loop, UV_RUN_ONCE);
        }
        uv_close((uv_handle_t *)&t, NULL);
    }
    fx_stop(fx);
    assert_int_equal(fx->ups, 0);
    assert_int_equal(count_cluster_procs(fx->tmp), 0);
    (void)snprintf(p, sizeof(p), "%s/PG_VERSION", cluster);
    assert_false(path_exists(p));
    (void)snprintf(p, sizeof(p), "%s.initdb", cluster);
    assert_false(path_exists(p));

    /* The next start does the whole first start again. */
    (void)fx_start(fx);
    assert_db_works(opsc_embedded_pg_conninfo(fx->epg));
    fx_stop(fx);
}

/* A postmaster that ignores SIGINT (stopped) is killed after the bound, children and all. */
static void test_stop_timeout_kills(void **state) {
    fx_t *fx = *state;
    char cluster[4096];
    uint64_t t0;
    int pid;

    (void)fx_start(fx);
    (void)snprintf(cluster, sizeof(cluster), "%s", opsc_embedded_pg_cluster_dir(fx->epg));
    pid = opsc_embedded_pg_pid(fx->epg);
    assert_int_equal(kill(pid, SIGSTOP), 0);
    assert_true(count_cluster_procs_v(cluster, 0) > 1); /* checkpointer, walwriter, ... */

    t0 = now_ms();
    fx->done = 0;
    opsc_embedded_pg_stop(fx->epg, 500, done_cb, fx);
    assert_int_equal(run_until(fx, is_done, STOP_MS), 0);
    fx->epg = NULL;
    fprintf(stderr, "stop with SIGKILL fallback: %llu ms\n", (unsigned long long)(now_ms() - t0));
    assert_true(now_ms() - t0 >= 500);
    assert_true(kill(pid, 0) == -1 && errno == ESRCH);
    assert_int_equal(count_cluster_procs(cluster), 0);
}

/* A data dir so deep that <dir>/pg-run/.s.PGSQL.5432 would not fit sun_path. */
static void test_long_socket_path(void **state) {
    fx_t *fx = *state;
    char deep[300];
    char sockdir[4096];

    assert_true(snprintf(deep, sizeof(deep), "%s/%s", fx->tmp,
                         "a-rather-long-directory-name-that-pushes-the-socket-path-over-the-"
                         "sun-path-limit") < (int)sizeof(deep));
    assert_int_equal(mkdir(deep, 0755), 0);
    assert_true(snprintf(fx->data_dir, sizeof(fx->data_dir), "%s/data", deep) <
                (int)sizeof(fx->data_dir));
    (void)fx_start(fx);
    (void)snprintf(sockdir, sizeof(sockdir), "%s", opsc_embedded_pg_socket_dir(fx->epg));
    assert_int_equal(strncmp(sockdir, "/tmp/opsc-pg-", 13), 0);
    assert_db_works(opsc_embedded_pg_conninfo(fx->epg));
    fx_stop(fx);
    assert_false(path_exists(sockdir));
}

/* The harness other store tests rely on. */
static void test_harness(void **state) {
    opsc_test_pg_t pg;
    opsc_test_pg_t other;
    char out[256];
    char conninfo[512];
    char dir[256];
    pid_t pid;

    (void)state;
    assert_int_equal(opsc_test_pg_start(&pg), 0);
    pid = pg.pid;
    (void)snprintf(dir, sizeof(dir), "%s", pg.dir);
    assert_int_equal(opsc_test_pg_psql(&pg, "SELECT 1, current_database()", out, sizeof(out)), 0);
    assert_string_equal(out, "1|opsc_test");
    assert_int_equal(opsc_test_pg_psql(&pg, "SELEC 1", out, sizeof(out)), 1);
    assert_int_equal(opsc_test_pg_create_db(&pg, "opsc_other", conninfo, sizeof(conninfo)), 0);
    other = pg;
    (void)snprintf(other.conninfo, sizeof(other.conninfo), "%s", conninfo);
    assert_int_equal(opsc_test_pg_psql(&other, "SELECT current_database()", out, sizeof(out)), 0);
    assert_string_equal(out, "opsc_other");
    opsc_test_pg_stop(&pg);
    assert_true(kill(pid, 0) == -1 && errno == ESRCH);
    assert_false(path_exists(dir));
}

static void test_missing_user(void **state) {
    fx_t *fx = *state;
    opsc_embedded_pg_options_t o = {0};
    char err[512] = "";

    if (geteuid() != 0) {
        skip();
    }
    o.data_dir = fx->data_dir;
    o.user = "opsc-no-such-user";
    assert_int_equal(
        opsc_embedded_pg_create(&fx->loop, &o, state_cb, fx, &fx->epg, err, sizeof(err)),
        OPSC_ENOTFOUND);
    assert_null(fx->epg);
    assert_non_null(strstr(err, "opsc-no-such-user"));
    assert_non_null(strstr(err, "postgresql-15"));
}

static void test_bad_bindir(void **state) {
    fx_t *fx = *state;
    opsc_embedded_pg_options_t o = {0};
    char err[512] = "";

    o.data_dir = fx->data_dir;
    o.bindir = "/nonexistent/bin";
    assert_int_equal(
        opsc_embedded_pg_create(&fx->loop, &o, state_cb, fx, &fx->epg, err, sizeof(err)),
        OPSC_ENOTFOUND);
    assert_null(fx->epg);
    assert_non_null(strstr(err, "/nonexistent/bin"));
}

static void test_helpers(void **state) {
    fx_t *fx = *state;
    char status[32];
    char blocker[4096];
    char p[512];
    char bindir[4096];
    long pid;

    assert_int_equal(
        opsc__epg_parse_pidfile("123\n/d\n1700000000\n5432\n/s\n\n  1234  5\nready   \n", &pid,
                                status, sizeof(status)),
        0);
    assert_int_equal(pid, 123);
    assert_string_equal(status, "ready");
    assert_int_equal(opsc__epg_parse_pidfile("77\n/d\n", &pid, status, sizeof(status)), 0);
    assert_int_equal(pid, 77);
    assert_string_equal(status, "");
    assert_int_equal(opsc__epg_parse_pidfile("x\n", &pid, status, sizeof(status)), OPSC_EPARSE);
    assert_int_equal(opsc__epg_parse_pidfile("", &pid, status, sizeof(status)), OPSC_EPARSE);

    assert_int_equal(opsc_embedded_pg_find_bindir(bindir, sizeof(bindir)), 0);
    assert_true(opsc__epg_has_server_binaries(bindir));
    assert_false(opsc__epg_has_server_binaries("/tmp"));

    /* uid 65534 (nobody) against a 0700 root-owned directory (when we are root). */
    (void)snprintf(p, sizeof(p), "%s/private", fx->tmp);
    assert_int_equal(mkdir(p, 0700), 0);
    (void)snprintf(p, sizeof(p), "%s/private/data/pg", fx->tmp);
    if (geteuid() == 0) {
        assert_false(opsc__epg_can_traverse(p, 65534, 65534, blocker, sizeof(blocker)));
        (void)snprintf(p, sizeof(p), "%s/private", fx->tmp);
        assert_string_equal(blocker, p);
    }
    (void)snprintf(p, sizeof(p), "%s/public/not/yet/there", fx->tmp);
    assert_true(opsc__epg_can_traverse(p, 65534, 65534, blocker, sizeof(blocker)));
    assert_true(opsc__epg_can_traverse(p, geteuid(), getegid(), blocker, sizeof(blocker)));

    assert_true(opsc__epg_pid_gone(0));
    assert_false(opsc__epg_pid_gone((long)getpid()));
    assert_false(opsc__epg_is_cluster_postmaster((long)getpid(), fx->tmp));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_helpers, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_bindir, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_missing_user, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_first_start, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_second_start, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_kill9_restarts, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_leftover_postmaster_replaced, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_root_relocates_unreachable_cluster, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_stop_during_initdb, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stop_timeout_kills, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_long_socket_path, fx_setup, fx_teardown),
        cmocka_unit_test(test_harness),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
