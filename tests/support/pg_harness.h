#ifndef OPSC_TEST_PG_HARNESS_H
#define OPSC_TEST_PG_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include <uv.h>

#include "opsc/log.h"

/*
 * A throwaway PostgreSQL for tests: initdb into a fresh directory under /tmp,
 * start `postgres` on a private unix socket (as the "postgres" user when the
 * tests run as root), wait until it accepts connections, create database
 * "opsc_test". Independent of src/store/embedded_pg.c on purpose, so the
 * server's own supervisor is tested against something it did not start.
 */
typedef struct opsc_test_pg_s {
    char dir[256]; /* cluster + socket live under here */
    char sockdir[256];
    char bindir[256];
    int port;
    char conninfo[512]; /* "host=<sockdir> port=<port> dbname=opsc_test user=<user>" */
    char user[64];
    pid_t pid; /* postmaster */
} opsc_test_pg_t;

/** 0 on success; on failure prints why to stderr and returns -1. */
int opsc_test_pg_start(opsc_test_pg_t *pg);
/** Fast shutdown, wait, remove the directory. */
void opsc_test_pg_stop(opsc_test_pg_t *pg);
/**
 * Run SQL through psql -XAtq against pg->conninfo (point it at another database to run there);
 * fields separated by '|', trailing newline removed; output into out. Exit status of psql.
 */
int opsc_test_pg_psql(const opsc_test_pg_t *pg, const char *sql, char *out, size_t outlen);
/** Create a fresh database; returns its conninfo in out. 0 or -1. */
int opsc_test_pg_create_db(const opsc_test_pg_t *pg, const char *dbname, char *out, size_t outlen);

/*
 * The usual cmocka group set-up of a test file that talks to PostgreSQL from a
 * loop: log level, `loop` initialised, the cluster started (pg->pid > 0 then).
 * 0, or -1 when the cluster did not start. The teardown drains and closes the
 * loop and stops the cluster if it started.
 */
int opsc_test_pg_env_setup(opsc_test_pg_t *pg, uv_loop_t *loop, opsc_log_level_t level);
void opsc_test_pg_env_teardown(opsc_test_pg_t *pg, uv_loop_t *loop);

/*
 * Lower-level pieces, also used to fake "a postmaster left over by a killed
 * previous process" on a cluster the server created.
 */

/** Locate initdb/postgres (pg_config --bindir, else newest /usr/lib/postgresql/N/bin). 0 or -1. */
int opsc_test_pg_find_bindir(char *out, size_t outlen);
/**
 * Start a bare `postgres -D datadir -k sockdir -p port -c listen_addresses= -c fsync=off` by
 * fork/exec (as "postgres" when root), output to `logfile` (NULL: inherit stderr); it gets
 * SIGINT if this process dies. Does not wait. Registered for the atexit cleanup. pid or -1.
 */
pid_t opsc_test_pg_spawn_postgres(const char *bindir, const char *datadir, const char *sockdir,
                                  int port, const char *logfile);
/** Poll datadir/postmaster.pid until `pid` reports "ready" and its socket exists. 0 or -1. */
int opsc_test_pg_wait_ready(const char *datadir, const char *sockdir, int port, pid_t pid,
                            int timeout_ms);
/** Reap our child `pid` (waits at most timeout_ms, sends nothing); drop it from the cleanup. 0/-1.
 */
int opsc_test_pg_wait_exit(pid_t pid, int timeout_ms);

#endif
