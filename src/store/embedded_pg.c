/*
 * Embedded PostgreSQL: a supervised `postgres` child on a private unix socket.
 *
 * Everything that may block (finding binaries, choosing and creating
 * directories, stopping a postmaster left over by a previous process of ours)
 * happens in _create() and at the top of _start(), i.e. at start-up. From
 * then on every step is asynchronous on the loop:
 *
 *   initdb (uv_spawn, into <cluster>.initdb, renamed into place on success, so
 *   a half-done initdb never looks like a cluster)
 *     -> postgres (uv_spawn) -> poll postmaster.pid every 50 ms until its
 *        status line says "ready" and the socket exists
 *     -> createdb opsconductor (first time only; marker file in the cluster)
 *     -> running=1
 *
 * A child that dies while we are not stopping is restarted with exponential
 * backoff. Every child's stdout/stderr goes through one pipe into our log,
 * line by line. No libpq here: readiness comes from postmaster.pid.
 */
#include "opsc/embedded_pg.h"
#include "embedded_pg_int.h"
#include "opsc/error.h"
#include "opsc/fsutil.h"
#include "opsc/log.h"
#include "opsc/metrics.h"

#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define EPG_COMP "postgres"
#define EPG_PATH_MAX 4096
#define EPG_PORT_STR "5432"
#define EPG_SOCK_NAME ".s.PGSQL." EPG_PORT_STR
#define EPG_SOCK_PATH_MAX 107 /* sizeof(sun_path) - 1 */
#define EPG_ROLE "opsconductor"
#define EPG_DBNAME "opsconductor"
#define EPG_DB_MARKER "opsconductor.dbcreated"
#define EPG_RELOCATE_ROOT "/var/lib/opsconductor"
#define EPG_POLL_MS 50
#define EPG_SLOW_START_MS 15000
#define EPG_BACKOFF_MIN_MS 200u
#define EPG_BACKOFF_MAX_MS 5000u
#define EPG_STABLE_MS 30000u
#define EPG_CREATEDB_TRIES 3
#define EPG_LINE_MAX 8192
#define EPG_CAPTURE_MAX 16384
#define EPG_LEFTOVER_INT_MS 5000
#define EPG_LEFTOVER_KILL_MS 2000
#define EPG_ORPHAN_WAIT_MS 2000

typedef enum {
    EPG_CHILD_POSTGRES = 0,
    EPG_CHILD_INITDB,
    EPG_CHILD_CREATEDB,
} epg_child_kind_t;

typedef enum {
    EPG_ST_IDLE = 0,
    EPG_ST_INITDB,
    EPG_ST_STARTING, /* postgres spawned, polling postmaster.pid */
    EPG_ST_CREATEDB,
    EPG_ST_RUNNING,
    EPG_ST_BACKOFF, /* waiting to restart a postgres that died */
    EPG_ST_FAILED,  /* fatal reported; waits for _stop() */
} epg_state_t;

typedef struct opsc__epg_child_s opsc__epg_child_t;

/*
 * One spawned process and the pipe carrying its stdout+stderr. Lives until
 * both handles are closed: the process handle closes in the exit callback,
 * the pipe at EOF (which may come later: postgres' own children share it) or
 * when the supervisor finishes.
 */
struct opsc__epg_child_s {
    opsc_embedded_pg_t *epg;
    opsc__epg_child_t *next;
    epg_child_kind_t kind;
    uv_process_t proc;
    uv_pipe_t pipe;
    int proc_open;
    int pipe_open;
    int exited;
    int eof;
    int finished; /* helper result handled */
    int64_t exit_status;
    int term_signal;
    int pid;
    unsigned generation; /* epg->generation at spawn (which postgres a createdb talks to) */
    uint64_t started_ms;
    opsc_buf_t line;    /* partial output line */
    opsc_buf_t capture; /* helpers: output kept for the error log */
    char rbuf[4096];
};

struct opsc_embedded_pg_s {
    uv_loop_t *loop;
    opsc_embedded_pg_cb cb;
    void *cb_arg;

    char data_dir[EPG_PATH_MAX]; /* "" when only opts->dir was given */
    char cluster[EPG_PATH_MAX];
    char initdb_tmp[EPG_PATH_MAX];
    char sockdir[EPG_PATH_MAX];
    char sockpath[EPG_PATH_MAX];
    char pidfile[EPG_PATH_MAX];
    char dbmarker[EPG_PATH_MAX];
    char bindir[EPG_PATH_MAX];
    char bin_initdb[EPG_PATH_MAX];
    char bin_postgres[EPG_PATH_MAX];
    char bin_createdb[EPG_PATH_MAX];
    char conninfo[EPG_PATH_MAX + 256];
    char locale_arg[32];
    char user[64];
    int as_root;
    uid_t uid;
    gid_t gid;
    int sockdir_is_tmp; /* mkdtemp'd: removed when we finish */
    char **env;

    uv_timer_t poll_timer;
    uv_timer_t backoff_timer;
    uv_timer_t kill_timer;
    int nhandles; /* open timers */
    int nchildren;
    opsc__epg_child_t *children; /* every child struct not yet freed */
    opsc__epg_child_t *pg;       /* the postmaster, until it exits */
    opsc__epg_child_t *helper;   /* initdb or createdb, until handled */

    epg_state_t state;
    int started;
    int stopping;
    int finishing;
    int sigkilled;
    int running;
    int slow_logged;
    int createdb_failures;
    unsigned generation;
    unsigned backoff_ms;
    uint64_t restarts;
    int pid;
    uint64_t initdb_started_ms;
    uint64_t pg_spawned_ms;

    int stop_timeout_ms;
    uint64_t orphans_since_ms;
    void (*done)(void *arg);
    void *done_arg;
};

/* ---------------------------------------------------------------- helpers */

static int epg_fmt(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int epg_fmt(char *out, size_t len, const char *fmt, ...) {
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len) {
        if (len) {
            out[0] = '\0';
        }
        return OPSC_ETOOBIG;
    }
    return 0;
}

static int epg_is_exec(const char *dir, const char *name) {
    char p[EPG_PATH_MAX];
    struct stat st;

    if (epg_fmt(p, sizeof(p), "%s/%s", dir, name) < 0) {
        return 0;
    }
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

int opsc__epg_has_server_binaries(const char *bindir) {
    return bindir && *bindir && epg_is_exec(bindir, "initdb") && epg_is_exec(bindir, "postgres");
}

/* Read a small file (also /proc files, whose st_size is 0) into buf. Length or -1. */
static ssize_t epg_slurp(const char *path, char *buf, size_t cap) {
    size_t len = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    while (len + 1 < cap) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

static void epg_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static const char *epg_basename(const char *p) {
    const char *s = strrchr(p, '/');

    return s ? s + 1 : p;
}

int opsc_embedded_pg_find_bindir(char *out, size_t outlen) {
    char line[EPG_PATH_MAX];
    char best[EPG_PATH_MAX] = "";
    long best_major = -1;
    FILE *f;
    DIR *d;
    struct dirent *de;

    /* Start-up only: popen blocks for the few milliseconds pg_config takes. */
    f = popen("pg_config --bindir 2>/dev/null", "r");
    if (f) {
        int got = fgets(line, sizeof(line), f) != NULL;
        int status = pclose(f);
        if (got && status == 0) {
            line[strcspn(line, "\r\n")] = '\0';
            if (opsc__epg_has_server_binaries(line)) {
                return epg_fmt(out, outlen, "%s", line) < 0 ? OPSC_ETOOBIG : 0;
            }
        }
    }

    d = opendir("/usr/lib/postgresql");
    if (!d) {
        return OPSC_ENOTFOUND;
    }
    while ((de = readdir(d)) != NULL) {
        char *end;
        long major;

        errno = 0;
        major = strtol(de->d_name, &end, 10);
        if (de->d_name[0] < '0' || de->d_name[0] > '9' || errno != 0) {
            continue;
        }
        /* "9.6" style names: the part before the dot orders them well enough. */
        if (*end != '\0' && *end != '.') {
            continue;
        }
        if (epg_fmt(line, sizeof(line), "/usr/lib/postgresql/%s/bin", de->d_name) < 0) {
            continue;
        }
        if (major > best_major && opsc__epg_has_server_binaries(line)) {
            best_major = major;
            memcpy(best, line, strlen(line) + 1);
        }
    }
    closedir(d);
    if (best_major < 0) {
        return OPSC_ENOTFOUND;
    }
    return epg_fmt(out, outlen, "%s", best) < 0 ? OPSC_ETOOBIG : 0;
}

static int epg_may_search(const struct stat *st, uid_t uid, gid_t gid) {
    if (uid == 0) {
        return 1;
    }
    if (st->st_uid == uid) {
        return (st->st_mode & S_IXUSR) != 0;
    }
    if (st->st_gid == gid) {
        return (st->st_mode & S_IXGRP) != 0;
    }
    return (st->st_mode & S_IXOTH) != 0;
}

int opsc__epg_can_traverse(const char *path, uid_t uid, gid_t gid, char *blocker, size_t blen) {
    char probe[EPG_PATH_MAX];
    char real[EPG_PATH_MAX];
    char prefix[EPG_PATH_MAX];
    struct stat st;
    size_t i, n;

    if (blocker && blen) {
        blocker[0] = '\0';
    }
    if (epg_fmt(probe, sizeof(probe), "%s", path) < 0 || probe[0] != '/') {
        return 0;
    }
    /* The deepest existing ancestor, resolved: what lies below it we create 0755. */
    for (;;) {
        char *slash = strrchr(probe, '/');
        if (slash == probe) {
            probe[1] = '\0';
        } else {
            *slash = '\0';
        }
        if (stat(probe, &st) == 0) {
            break;
        }
        if (strcmp(probe, "/") == 0) {
            return 0;
        }
    }
    if (!realpath(probe, real)) {
        if (blocker) {
            (void)epg_fmt(blocker, blen, "%s", probe);
        }
        return 0;
    }
    n = strlen(real);
    for (i = 0; i <= n; i++) {
        if (i < n && real[i] != '/') {
            continue;
        }
        if (i == 0) {
            memcpy(prefix, "/", 2);
        } else {
            memcpy(prefix, real, i);
            prefix[i] = '\0';
        }
        if (stat(prefix, &st) != 0 || !epg_may_search(&st, uid, gid)) {
            if (blocker) {
                (void)epg_fmt(blocker, blen, "%s", prefix);
            }
            return 0;
        }
    }
    return 1;
}

int opsc__epg_relocation_base(const char *abs_data_dir, char *out, size_t outlen) {
    unsigned char digest[32];
    char hex[17];
    int r, i;

#if defined(MBEDTLS_VERSION_NUMBER) && MBEDTLS_VERSION_NUMBER >= 0x03000000
    r = mbedtls_sha256((const unsigned char *)abs_data_dir, strlen(abs_data_dir), digest, 0);
#else
    r = mbedtls_sha256_ret((const unsigned char *)abs_data_dir, strlen(abs_data_dir), digest, 0);
#endif
    if (r != 0) {
        return OPSC_ECONFIG;
    }
    for (i = 0; i < 8; i++) {
        static const char xd[] = "0123456789abcdef";
        hex[2 * i] = xd[digest[i] >> 4];
        hex[2 * i + 1] = xd[digest[i] & 15];
    }
    hex[16] = '\0';
    return epg_fmt(out, outlen, "%s/%s", EPG_RELOCATE_ROOT, hex);
}

int opsc__epg_parse_pidfile(const char *text, long *pid, char *status, size_t slen) {
    const char *p = text;
    char *end;
    int line;

    if (status && slen) {
        status[0] = '\0';
    }
    errno = 0;
    *pid = strtol(p, &end, 10);
    if (end == p || errno != 0 || *pid <= 0 || (*end != '\n' && *end != '\0')) {
        return OPSC_EPARSE;
    }
    /* Line 8 is the status ("starting", "stopping", "ready   ", "standby "). */
    for (line = 1; line < 8; line++) {
        p = strchr(p, '\n');
        if (!p) {
            return 0;
        }
        p++;
    }
    if (status && slen) {
        size_t n = strcspn(p, "\n");
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\r' || p[n - 1] == '\t')) {
            n--;
        }
        if (n >= slen) {
            n = slen - 1;
        }
        memcpy(status, p, n);
        status[n] = '\0';
    }
    return 0;
}

int opsc__epg_pid_gone(long pid) {
    char path[64];
    char stat_text[512];
    const char *paren;

    if (pid <= 0) {
        return 1;
    }
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
        return 1;
    }
    /* A zombie still answers kill(pid, 0): it is dead all the same. */
    (void)epg_fmt(path, sizeof(path), "/proc/%ld/stat", pid);
    if (epg_slurp(path, stat_text, sizeof(stat_text)) <= 0) {
        return 1;
    }
    paren = strrchr(stat_text, ')');
    if (paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X')) {
        return 1;
    }
    return 0;
}

/* 1 when /proc/<pid>/exe is a postgres binary. */
static int epg_pid_is_postgres(long pid) {
    char path[64];
    char exe[EPG_PATH_MAX];
    ssize_t n;
    const char *base;

    (void)epg_fmt(path, sizeof(path), "/proc/%ld/exe", pid);
    n = readlink(path, exe, sizeof(exe) - 1);
    if (n <= 0) {
        /* Exiting (its memory is gone, so is exe): the command name is still there. */
        char st[256];
        (void)epg_fmt(path, sizeof(path), "/proc/%ld/stat", pid);
        if (epg_slurp(path, st, sizeof(st)) <= 0) {
            return 0;
        }
        base = strchr(st, '(');
        return base &&
               (strncmp(base, "(postgres)", 10) == 0 || strncmp(base, "(postmaster)", 12) == 0);
    }
    exe[n] = '\0';
    base = epg_basename(exe);
    /* "postgres (deleted)" after a package upgrade is still ours to stop. */
    return strncmp(base, "postgres", 8) == 0 || strncmp(base, "postmaster", 10) == 0;
}

static int epg_pid_cwd_is(long pid, const char *real_cluster) {
    char path[64];
    char cwd[EPG_PATH_MAX];
    ssize_t n;

    (void)epg_fmt(path, sizeof(path), "/proc/%ld/cwd", pid);
    n = readlink(path, cwd, sizeof(cwd) - 1);
    if (n <= 0) {
        return 0;
    }
    cwd[n] = '\0';
    return strcmp(cwd, real_cluster) == 0;
}

static int epg_same_dir(const char *a, const char *real_b) {
    char ra[EPG_PATH_MAX];

    if (strcmp(a, real_b) == 0) {
        return 1;
    }
    return realpath(a, ra) != NULL && strcmp(ra, real_b) == 0;
}

int opsc__epg_is_cluster_postmaster(long pid, const char *cluster) {
    char path[64];
    char cmd[8192];
    char real_cluster[EPG_PATH_MAX];
    ssize_t n;
    size_t off;
    const char *argv0;

    if (pid <= 0 || opsc__epg_pid_gone(pid) || !realpath(cluster, real_cluster)) {
        return 0;
    }
    (void)epg_fmt(path, sizeof(path), "/proc/%ld/cmdline", pid);
    n = epg_slurp(path, cmd, sizeof(cmd));
    if (n > 0) {
        argv0 = epg_basename(cmd);
        if (strncmp(argv0, "postgres", 8) == 0 || strncmp(argv0, "postmaster", 10) == 0) {
            /* cmdline is NUL-separated: look for "-D <dir>" or "-D<dir>". */
            for (off = strlen(cmd) + 1; off < (size_t)n; off += strlen(cmd + off) + 1) {
                const char *arg = cmd + off;
                if (strcmp(arg, "-D") == 0) {
                    size_t next = off + strlen(arg) + 1;
                    if (next < (size_t)n && epg_same_dir(cmd + next, real_cluster)) {
                        return 1;
                    }
                } else if (strncmp(arg, "-D", 2) == 0 && epg_same_dir(arg + 2, real_cluster)) {
                    return 1;
                }
            }
        }
    }
    /* Started without -D (PGDATA) or with a rewritten title: postgres chdirs into its data dir. */
    return epg_pid_is_postgres(pid) && epg_pid_cwd_is(pid, real_cluster);
}

int opsc__epg_cluster_processes(const char *cluster, int sig) {
    char real_cluster[EPG_PATH_MAX];
    DIR *d;
    struct dirent *de;
    int count = 0;

    if (!realpath(cluster, real_cluster)) {
        return 0;
    }
    d = opendir("/proc");
    if (!d) {
        return 0;
    }
    while ((de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);

        if (*end != '\0' || pid <= 0 || pid == (long)getpid()) {
            continue;
        }
        if (!epg_pid_cwd_is(pid, real_cluster) || !epg_pid_is_postgres(pid) ||
            opsc__epg_pid_gone(pid)) {
            continue;
        }
        count++;
        if (sig) {
            (void)kill((pid_t)pid, sig);
        }
    }
    closedir(d);
    return count;
}

/* Directory owned by the child user with `mode` (created if missing). 0 or negative errno. */
static int epg_own_dir(const opsc_embedded_pg_t *epg, const char *path, mode_t mode) {
    struct stat st;

    if (mkdir(path, mode) != 0 && errno != EEXIST) {
        return -errno;
    }
    if (stat(path, &st) != 0) {
        return -errno;
    }
    if (!S_ISDIR(st.st_mode)) {
        return -ENOTDIR;
    }
    if (epg->as_root && (st.st_uid != epg->uid || st.st_gid != epg->gid) &&
        chown(path, epg->uid, epg->gid) != 0) {
        return -errno;
    }
    if ((st.st_mode & 07777) != mode && chmod(path, mode) != 0) {
        return -errno;
    }
    return 0;
}

static int epg_dir_is_empty(const char *path) {
    DIR *d = opendir(path);
    struct dirent *de;
    int empty = 1;

    if (!d) {
        return 0;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            empty = 0;
            break;
        }
    }
    closedir(d);
    return empty;
}

static int epg_exists(const char *path) {
    struct stat st;

    return stat(path, &st) == 0;
}

static int epg_cluster_initialized(const opsc_embedded_pg_t *epg) {
    char p[EPG_PATH_MAX];

    return epg_fmt(p, sizeof(p), "%s/PG_VERSION", epg->cluster) == 0 && epg_exists(p);
}

/*
 * The children get our environment minus anything that would redirect them:
 * PG* variables (PGDATA, PGHOST, PGPORT, PGUSER...) and the locale, which is
 * pinned to the one given to initdb.
 */
static char **epg_build_env(const char *locale) {
    size_t n = 0, i, j = 0;
    char **env;

    while (environ && environ[n]) {
        n++;
    }
    env = opsc_calloc(n + 2, sizeof(*env));
    if (!env) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        const char *e = environ[i];
        if (strncmp(e, "PG", 2) == 0 || strncmp(e, "LC_", 3) == 0 || strncmp(e, "LANG=", 5) == 0 ||
            strncmp(e, "LANGUAGE=", 9) == 0) {
            continue;
        }
        env[j] = opsc_strdup(e);
        if (!env[j]) {
            goto error;
        }
        j++;
    }
    env[j] = opsc_malloc(strlen("LC_ALL=") + strlen(locale) + 1);
    if (!env[j]) {
        goto error;
    }
    memcpy(env[j], "LC_ALL=", 7);
    memcpy(env[j] + 7, locale, strlen(locale) + 1);
    return env;

error:
    for (i = 0; env[i]; i++) {
        opsc_free(env[i]);
    }
    opsc_free(env);
    return NULL;
}

static void epg_free_env(char **env) {
    size_t i;

    if (!env) {
        return;
    }
    for (i = 0; env[i]; i++) {
        opsc_free(env[i]);
    }
    opsc_free(env);
}

/* libpq conninfo value: quoted when it holds anything but plain characters. */
static int epg_conninfo_value(char *out, size_t outlen, const char *v) {
    size_t o = 0;
    const char *p;

    if (strpbrk(v, " '\\\t") == NULL && *v) {
        return epg_fmt(out, outlen, "%s", v);
    }
    if (outlen < 3) {
        return OPSC_ETOOBIG;
    }
    out[o++] = '\'';
    for (p = v; *p; p++) {
        if (o + 4 >= outlen) {
            return OPSC_ETOOBIG;
        }
        if (*p == '\'' || *p == '\\') {
            out[o++] = '\\';
        }
        out[o++] = *p;
    }
    out[o++] = '\'';
    out[o] = '\0';
    return 0;
}

static void epg_describe_exit(char *buf, size_t len, int64_t status, int sig) {
    if (sig) {
        (void)epg_fmt(buf, len, "was killed by signal %d (%s)", sig, strsignal(sig));
    } else {
        (void)epg_fmt(buf, len, "exited with status %lld", (long long)status);
    }
}

/* ------------------------------------------------------------- children */

static void epg_start_postgres(opsc_embedded_pg_t *epg);
static void epg_helper_finished(opsc__epg_child_t *c);
static void epg_postgres_exited(opsc_embedded_pg_t *epg, opsc__epg_child_t *c);
static void epg_maybe_finish(opsc_embedded_pg_t *epg);
static void epg_maybe_free(opsc_embedded_pg_t *epg);

static const char *epg_child_name(const opsc__epg_child_t *c) {
    switch (c->kind) {
    case EPG_CHILD_POSTGRES:
        return "postgres";
    case EPG_CHILD_INITDB:
        return "initdb";
    case EPG_CHILD_CREATEDB:
        return "createdb";
    }
    return "?";
}

static void epg_child_free(opsc__epg_child_t *c) {
    opsc_embedded_pg_t *epg = c->epg;
    opsc__epg_child_t **pp;

    for (pp = &epg->children; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    opsc_buf_free(&c->line);
    opsc_buf_free(&c->capture);
    opsc_free(c);
    epg->nchildren--;
    epg_maybe_free(epg);
}

static void epg_child_handle_closed(uv_handle_t *h) {
    opsc__epg_child_t *c = h->data;

    if (h == (uv_handle_t *)&c->proc) {
        c->proc_open = 0;
    } else {
        c->pipe_open = 0;
    }
    if (!c->proc_open && !c->pipe_open) {
        epg_child_free(c);
    }
}

static void epg_child_close_pipe(opsc__epg_child_t *c) {
    if (c->pipe_open && !uv_is_closing((uv_handle_t *)&c->pipe)) {
        uv_close((uv_handle_t *)&c->pipe, epg_child_handle_closed);
    }
}

static void epg_child_emit(opsc__epg_child_t *c, const char *s, size_t n) {
    char line[EPG_LINE_MAX + 1];

    while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n')) {
        n--;
    }
    if (n == 0) {
        return;
    }
    if (n > EPG_LINE_MAX) {
        n = EPG_LINE_MAX;
    }
    memcpy(line, s, n);
    line[n] = '\0';

    if (c->kind == EPG_CHILD_POSTGRES) {
        opsc_log_level_t lvl = OPSC_LOG_INFO;
        if (strstr(line, "ERROR:") || strstr(line, "FATAL:") || strstr(line, "PANIC:") ||
            strstr(line, "WARNING:")) {
            lvl = OPSC_LOG_WARN;
        }
        opsc_log_write(lvl, EPG_COMP, "%s", line);
        return;
    }
    opsc_log_debug(EPG_COMP, "%s: %s", epg_child_name(c), line);
    if (c->capture.len + n + 1 <= EPG_CAPTURE_MAX) {
        (void)opsc_buf_append(&c->capture, line, n);
        (void)opsc_buf_append(&c->capture, "\n", 1);
    }
}

static void epg_child_feed(opsc__epg_child_t *c, const char *data, size_t n) {
    char *nl;

    if (opsc_buf_append(&c->line, data, n) < 0) {
        /* Out of memory: log what we have rather than lose it silently. */
        epg_child_emit(c, data, n);
        return;
    }
    while (c->line.len > 0 && (nl = memchr(c->line.base, '\n', c->line.len)) != NULL) {
        size_t len = (size_t)(nl - c->line.base);
        epg_child_emit(c, c->line.base, len);
        opsc_buf_consume(&c->line, len + 1);
    }
    if (c->line.len >= EPG_LINE_MAX) {
        epg_child_emit(c, c->line.base, c->line.len);
        opsc_buf_reset(&c->line);
    }
}

static void epg_child_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    opsc__epg_child_t *c = h->data;

    (void)suggested;
    buf->base = c->rbuf;
    buf->len = sizeof(c->rbuf);
}

static void epg_child_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    opsc__epg_child_t *c = s->data;

    if (nread > 0) {
        epg_child_feed(c, buf->base, (size_t)nread);
        return;
    }
    if (nread == 0) {
        return;
    }
    /* EOF (every holder of the write end is gone) or a read error. */
    if (c->line.len > 0) {
        epg_child_emit(c, c->line.base, c->line.len);
        opsc_buf_reset(&c->line);
    }
    c->eof = 1;
    epg_child_close_pipe(c);
    if (c->kind != EPG_CHILD_POSTGRES && c->exited) {
        epg_helper_finished(c);
    }
}

static void epg_child_exit_cb(uv_process_t *p, int64_t exit_status, int term_signal) {
    opsc__epg_child_t *c = p->data;

    c->exited = 1;
    c->exit_status = exit_status;
    c->term_signal = term_signal;
    uv_close((uv_handle_t *)p, epg_child_handle_closed);
    if (c->kind == EPG_CHILD_POSTGRES) {
        epg_postgres_exited(c->epg, c);
        return;
    }
    if (c->epg->stopping) {
        char how[128];
        epg_describe_exit(how, sizeof(how), exit_status, term_signal);
        opsc_log_info(EPG_COMP, "%s (pid %d) %s while stopping", epg_child_name(c), c->pid, how);
    }
    if (c->eof) {
        epg_helper_finished(c);
    } else if (c->epg->stopping) {
        /* Do not wait for the pipe's EOF to finish stopping. */
        epg_maybe_finish(c->epg);
    }
}

/*
 * Spawn argv[0] (absolute) as the child user, stdout and stderr into one
 * pipe that we read line by line. 0 or negative error; on error nothing
 * needs to be done by the caller (the child struct closes itself).
 */
static int epg_spawn(opsc_embedded_pg_t *epg, epg_child_kind_t kind, char **argv,
                     opsc__epg_child_t **out) {
    opsc__epg_child_t *c;
    uv_process_options_t o;
    uv_stdio_container_t stdio[3];
    uv_file fds[2];
    int r;

    *out = NULL;
    /* Both ends close-on-exec; libuv dup2()s the write end onto fds 1 and 2 in the child. */
    r = uv_pipe(fds, 0, 0);
    if (r < 0) {
        return r;
    }
    c = opsc_calloc(1, sizeof(*c));
    if (!c) {
        close(fds[0]);
        close(fds[1]);
        return OPSC_ENOMEM;
    }
    c->epg = epg;
    c->kind = kind;
    c->generation = epg->generation;
    c->next = epg->children;
    epg->children = c;
    epg->nchildren++;

    (void)uv_pipe_init(epg->loop, &c->pipe, 0);
    c->pipe.data = c;
    c->pipe_open = 1;
    r = uv_pipe_open(&c->pipe, fds[0]);
    if (r < 0) {
        close(fds[0]);
        close(fds[1]);
        epg_child_close_pipe(c);
        return r;
    }

    memset(&o, 0, sizeof(o));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = fds[1];
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = fds[1];
    o.exit_cb = epg_child_exit_cb;
    o.file = argv[0];
    o.args = argv;
    o.env = epg->env;
    o.cwd = "/"; /* our own cwd may not be reachable by the child user */
    o.stdio_count = 3;
    o.stdio = stdio;
    if (epg->as_root) {
        o.flags = UV_PROCESS_SETUID | UV_PROCESS_SETGID;
        o.uid = epg->uid;
        o.gid = epg->gid;
    }
    c->proc.data = c;
    r = uv_spawn(epg->loop, &c->proc, &o);
    close(fds[1]);
    c->proc_open = 1; /* initialised even when uv_spawn fails */
    if (r < 0) {
        c->exited = 1;
        c->finished = 1;
        uv_close((uv_handle_t *)&c->proc, epg_child_handle_closed);
        epg_child_close_pipe(c);
        return r;
    }
    c->pid = c->proc.pid;
    c->started_ms = uv_now(epg->loop);
    r = uv_read_start((uv_stream_t *)&c->pipe, epg_child_alloc_cb, epg_child_read_cb);
    if (r < 0) {
        opsc_log_warn(EPG_COMP, "cannot read the output of %s: %s", epg_child_name(c),
                      opsc_strerror(r));
        c->eof = 1;
        epg_child_close_pipe(c);
    }
    *out = c;
    return 0;
}

/* --------------------------------------------------------------- states */

static void epg_fail(opsc_embedded_pg_t *epg) {
    epg->state = EPG_ST_FAILED;
    epg->running = 0;
    uv_timer_stop(&epg->poll_timer);
    epg->cb(epg, 0, 1, epg->cb_arg);
}

static void epg_became_ready(opsc_embedded_pg_t *epg) {
    epg->state = EPG_ST_RUNNING;
    epg->running = 1;
    epg->createdb_failures = 0;
    opsc_log_info(EPG_COMP, "postgres is ready (pid %d, socket %s, %llu ms after spawn)", epg->pid,
                  epg->sockpath, (unsigned long long)(uv_now(epg->loop) - epg->pg_spawned_ms));
    epg->cb(epg, 1, 0, epg->cb_arg);
}

static void epg_start_createdb(opsc_embedded_pg_t *epg) {
    char *argv[] = {epg->bin_createdb, (char *)"-h",         epg->sockdir,
                    (char *)"-p",      (char *)EPG_PORT_STR, (char *)"-U",
                    (char *)EPG_ROLE,  (char *)EPG_DBNAME,   NULL};
    opsc__epg_child_t *c;
    int r;

    r = epg_spawn(epg, EPG_CHILD_CREATEDB, argv, &c);
    if (r < 0) {
        opsc_log_err(EPG_COMP, "cannot run %s: %s", epg->bin_createdb, opsc_strerror(r));
        epg_fail(epg);
        return;
    }
    epg->helper = c;
    epg->state = EPG_ST_CREATEDB;
    opsc_log_info(EPG_COMP, "creating database \"%s\" (first start of this cluster)", EPG_DBNAME);
}

/* postmaster.pid names our child, says "ready", and the socket exists. */
static int epg_pidfile_ready(const opsc_embedded_pg_t *epg, int pid) {
    char text[1024];
    char status[32];
    long file_pid;
    struct stat st;

    if (epg_slurp(epg->pidfile, text, sizeof(text)) <= 0) {
        return 0;
    }
    if (opsc__epg_parse_pidfile(text, &file_pid, status, sizeof(status)) < 0) {
        return 0;
    }
    return file_pid == pid && strcmp(status, "ready") == 0 && stat(epg->sockpath, &st) == 0 &&
           S_ISSOCK(st.st_mode);
}

static void epg_poll_cb(uv_timer_t *t) {
    opsc_embedded_pg_t *epg = t->data;

    if (epg->stopping || !epg->pg || epg->state != EPG_ST_STARTING) {
        uv_timer_stop(t);
        return;
    }
    if (!epg_pidfile_ready(epg, epg->pg->pid)) {
        if (!epg->slow_logged && uv_now(epg->loop) - epg->pg_spawned_ms > EPG_SLOW_START_MS) {
            epg->slow_logged = 1;
            opsc_log_warn(EPG_COMP,
                          "postgres (pid %d) is still starting after %d s "
                          "(crash recovery?); waiting",
                          epg->pid, EPG_SLOW_START_MS / 1000);
        }
        return;
    }
    if (epg->helper) {
        return; /* a createdb aimed at a previous postmaster is still finishing */
    }
    uv_timer_stop(t);
    if (epg_exists(epg->dbmarker)) {
        epg_became_ready(epg);
    } else {
        epg_start_createdb(epg);
    }
}

static void epg_backoff_cb(uv_timer_t *t) {
    opsc_embedded_pg_t *epg = t->data;

    if (!epg->stopping && epg->state == EPG_ST_BACKOFF) {
        epg_start_postgres(epg);
    }
}

/* Schedule a restart; returns the delay. */
static unsigned epg_schedule_restart(opsc_embedded_pg_t *epg, uint64_t uptime_ms) {
    unsigned delay;

    if (uptime_ms >= EPG_STABLE_MS) {
        epg->backoff_ms = EPG_BACKOFF_MIN_MS;
    }
    delay = epg->backoff_ms;
    epg->backoff_ms = delay * 2 > EPG_BACKOFF_MAX_MS ? EPG_BACKOFF_MAX_MS : delay * 2;
    epg->restarts++;
    epg->state = EPG_ST_BACKOFF;
    uv_timer_start(&epg->backoff_timer, epg_backoff_cb, delay, 0);
    return delay;
}

static void epg_start_postgres(opsc_embedded_pg_t *epg) {
    char *argv[] = {epg->bin_postgres,
                    (char *)"-D",
                    epg->cluster,
                    (char *)"-k",
                    epg->sockdir,
                    (char *)"-p",
                    (char *)EPG_PORT_STR,
                    (char *)"-c",
                    (char *)"listen_addresses=",
                    (char *)"-c",
                    (char *)"unix_socket_permissions=0700",
                    (char *)"-c",
                    (char *)"max_connections=50",
                    (char *)"-c",
                    (char *)"shared_buffers=128MB",
                    (char *)"-c",
                    (char *)"logging_collector=off",
                    NULL};
    opsc__epg_child_t *c;
    int r;

    epg->generation++;
    r = epg_spawn(epg, EPG_CHILD_POSTGRES, argv, &c);
    if (r < 0) {
        unsigned delay = epg_schedule_restart(epg, 0);
        opsc_log_err(EPG_COMP, "cannot start %s: %s; retrying in %u ms", epg->bin_postgres,
                     opsc_strerror(r), delay);
        return;
    }
    epg->pg = c;
    epg->pid = c->pid;
    epg->state = EPG_ST_STARTING;
    epg->slow_logged = 0;
    epg->pg_spawned_ms = c->started_ms;
    opsc_log_info(EPG_COMP, "started postgres (pid %d) on cluster %s", c->pid, epg->cluster);
    uv_timer_start(&epg->poll_timer, epg_poll_cb, EPG_POLL_MS, EPG_POLL_MS);
}

static void epg_postgres_exited(opsc_embedded_pg_t *epg, opsc__epg_child_t *c) {
    char how[128];
    int was_running = epg->running;
    uint64_t uptime = uv_now(epg->loop) - c->started_ms;
    unsigned delay;

    epg_describe_exit(how, sizeof(how), c->exit_status, c->term_signal);
    if (epg->pg == c) {
        epg->pg = NULL;
        epg->pid = 0;
    }
    epg->running = 0;
    uv_timer_stop(&epg->poll_timer);

    if (epg->stopping) {
        opsc_log_info(EPG_COMP, "postgres (pid %d) %s", c->pid, how);
        epg_maybe_finish(epg);
        return;
    }
    if (epg->state == EPG_ST_FAILED) {
        opsc_log_err(EPG_COMP, "postgres (pid %d) %s", c->pid, how);
        return;
    }
    delay = epg_schedule_restart(epg, uptime);
    opsc_log_err(EPG_COMP, "postgres (pid %d) %s after %llu ms; restarting in %u ms (restart %llu)",
                 c->pid, how, (unsigned long long)uptime, delay, (unsigned long long)epg->restarts);
    /* Last: the callback may call _stop(). */
    if (was_running) {
        epg->cb(epg, 0, 0, epg->cb_arg);
    }
}

static void epg_initdb_finished(opsc_embedded_pg_t *epg, opsc__epg_child_t *c, int ok) {
    char how[128];

    if (!ok) {
        epg_describe_exit(how, sizeof(how), c->exit_status, c->term_signal);
        opsc_log_err(EPG_COMP, "initdb %s; its output:\n%s", how,
                     c->capture.len ? c->capture.base : "(none)");
        (void)opsc_rm_rf(epg->initdb_tmp);
        epg_fail(epg);
        return;
    }
    /* Atomic: a cluster dir either holds a complete cluster or nothing. */
    if (rename(epg->initdb_tmp, epg->cluster) != 0) {
        opsc_log_err(EPG_COMP, "cannot rename %s to %s: %s", epg->initdb_tmp, epg->cluster,
                     strerror(errno));
        epg_fail(epg);
        return;
    }
    opsc_log_info(EPG_COMP, "initdb finished in %llu ms: new cluster in %s",
                  (unsigned long long)(uv_now(epg->loop) - epg->initdb_started_ms), epg->cluster);
    epg_start_postgres(epg);
}

static void epg_createdb_finished(opsc_embedded_pg_t *epg, opsc__epg_child_t *c, int ok) {
    char how[128];
    FILE *f;

    if (!epg->pg || c->generation != epg->generation) {
        /* The postmaster it talked to died meanwhile; the next "ready" retries. */
        opsc_log_debug(EPG_COMP, "createdb result ignored: postgres restarted meanwhile");
        return;
    }
    if (!ok && !strstr(c->capture.len ? c->capture.base : "", "already exists")) {
        epg_describe_exit(how, sizeof(how), c->exit_status, c->term_signal);
        epg->createdb_failures++;
        opsc_log_err(EPG_COMP, "createdb %s (attempt %d of %d); its output:\n%s", how,
                     epg->createdb_failures, EPG_CREATEDB_TRIES,
                     c->capture.len ? c->capture.base : "(none)");
        if (epg->createdb_failures >= EPG_CREATEDB_TRIES) {
            epg_fail(epg);
            return;
        }
        epg->state = EPG_ST_STARTING;
        uv_timer_start(&epg->poll_timer, epg_poll_cb, 500, EPG_POLL_MS);
        return;
    }
    f = fopen(epg->dbmarker, "w");
    if (f) {
        fprintf(f, "database %s created\n", EPG_DBNAME);
        if (fclose(f) != 0) {
            opsc_log_warn(EPG_COMP, "cannot write %s: %s", epg->dbmarker, strerror(errno));
        }
        if (epg->as_root && chown(epg->dbmarker, epg->uid, epg->gid) != 0) {
            opsc_log_warn(EPG_COMP, "cannot chown %s: %s", epg->dbmarker, strerror(errno));
        }
    } else {
        opsc_log_warn(EPG_COMP, "cannot write %s: %s", epg->dbmarker, strerror(errno));
    }
    epg_became_ready(epg);
}

static void epg_helper_finished(opsc__epg_child_t *c) {
    opsc_embedded_pg_t *epg = c->epg;
    int ok = c->term_signal == 0 && c->exit_status == 0;

    if (c->finished) {
        return;
    }
    c->finished = 1;
    if (epg->helper == c) {
        epg->helper = NULL;
    }
    if (epg->stopping) {
        epg_maybe_finish(epg);
        return;
    }
    if (c->kind == EPG_CHILD_INITDB) {
        epg_initdb_finished(epg, c, ok);
    } else {
        epg_createdb_finished(epg, c, ok);
    }
}

/* ----------------------------------------------------- leftover postmaster */

static int epg_wait_gone(long pid, int timeout_ms) {
    int waited = 0;

    while (!opsc__epg_pid_gone(pid)) {
        if (waited >= timeout_ms) {
            return 0;
        }
        epg_sleep_ms(20);
        waited += 20;
    }
    return 1;
}

/*
 * Our previous process was killed (-9) and left its postmaster running on
 * this cluster. We hold the data dir's lock, so it is ours: stop it (fast
 * shutdown, SIGKILL after a bound). Blocking: start-up only.
 */
static void epg_kill_leftover(opsc_embedded_pg_t *epg) {
    char text[1024];
    long pid;
    int n;

    if (epg_slurp(epg->pidfile, text, sizeof(text)) <= 0 ||
        opsc__epg_parse_pidfile(text, &pid, NULL, 0) < 0) {
        return;
    }
    if (pid == (long)getpid() || !opsc__epg_is_cluster_postmaster(pid, epg->cluster)) {
        opsc_log_debug(EPG_COMP, "stale %s (pid %ld is not running on this cluster)", epg->pidfile,
                       pid);
        return;
    }
    opsc_log_warn(EPG_COMP,
                  "a postgres (pid %ld) left over by a previous run is still running on "
                  "%s; stopping it",
                  pid, epg->cluster);
    if (kill((pid_t)pid, SIGINT) != 0 && errno != ESRCH) {
        opsc_log_err(EPG_COMP, "cannot signal pid %ld: %s", pid, strerror(errno));
    }
    if (!epg_wait_gone(pid, EPG_LEFTOVER_INT_MS)) {
        opsc_log_warn(EPG_COMP,
                      "leftover postgres (pid %ld) ignored fast shutdown for %d ms; "
                      "sending SIGKILL",
                      pid, EPG_LEFTOVER_INT_MS);
        (void)kill((pid_t)pid, SIGKILL);
        (void)epg_wait_gone(pid, EPG_LEFTOVER_KILL_MS);
    }
    /* Its children exit on postmaster death; make sure, they would pin the shared memory. */
    n = opsc__epg_cluster_processes(epg->cluster, SIGKILL);
    if (n > 0) {
        int waited = 0;
        opsc_log_warn(EPG_COMP, "killing %d orphaned postgres process(es) of %s", n, epg->cluster);
        while (opsc__epg_cluster_processes(epg->cluster, SIGKILL) > 0 &&
               waited < EPG_ORPHAN_WAIT_MS) {
            epg_sleep_ms(20);
            waited += 20;
        }
    }
}

/* ------------------------------------------------------------- public API */

static int epg_resolve_user(opsc_embedded_pg_t *epg, const opsc_embedded_pg_options_t *opts,
                            char *errbuf, size_t errlen) {
    const struct passwd *pw;
    const char *user;

    epg->as_root = geteuid() == 0;
    if (!epg->as_root) {
        epg->uid = geteuid();
        epg->gid = getegid();
        pw = getpwuid(epg->uid);
        (void)epg_fmt(epg->user, sizeof(epg->user), "%s", pw ? pw->pw_name : "(self)");
        return 0;
    }
    user = opts->user && *opts->user ? opts->user : "postgres";
    pw = getpwnam(user);
    if (!pw) {
        opsc_errbuf_printf(errbuf, errlen,
                "user '%s' does not exist: running as root, the embedded PostgreSQL must run as an "
                "unprivileged user (apt-get install postgresql-15 creates 'postgres', or configure "
                "another user)",
                user);
        return OPSC_ENOTFOUND;
    }
    if (pw->pw_uid == 0) {
        opsc_errbuf_printf(errbuf, errlen,
                "user '%s' has uid 0: PostgreSQL refuses to run as root; configure an "
                "unprivileged user",
                user);
        return OPSC_ECONFIG;
    }
    epg->uid = pw->pw_uid;
    epg->gid = pw->pw_gid;
    if (epg_fmt(epg->user, sizeof(epg->user), "%s", user) < 0) {
        opsc_errbuf_printf(errbuf, errlen, "user name too long: %s", user);
        return OPSC_ECONFIG;
    }
    return 0;
}

/* As root, move the cluster where the child user can reach it. */
static int epg_relocate(opsc_embedded_pg_t *epg, const char *blocker, char *errbuf, size_t errlen) {
    char base[EPG_PATH_MAX];
    char orig[EPG_PATH_MAX];
    char why[EPG_PATH_MAX];
    int r;

    memcpy(orig, epg->cluster, sizeof(orig));
    r = opsc__epg_relocation_base(epg->data_dir[0] ? epg->data_dir : orig, base, sizeof(base));
    if (r < 0) {
        opsc_errbuf_printf(errbuf, errlen, "cannot hash the data dir for the cluster's new location");
        return r;
    }
    r = opsc_mkdir_p(EPG_RELOCATE_ROOT, 0755);
    if (r == 0) {
        r = epg_own_dir(epg, base, 0700);
    }
    if (r < 0) {
        opsc_errbuf_printf(errbuf, errlen, "cannot create %s for the PostgreSQL cluster: %s", base,
                opsc_strerror(r));
        return r;
    }
    if (!opsc__epg_can_traverse(base, epg->uid, epg->gid, why, sizeof(why)) ||
        epg_fmt(epg->cluster, sizeof(epg->cluster), "%s/pg", base) < 0) {
        opsc_errbuf_printf(errbuf, errlen,
                "user '%s' can reach neither %s (blocked at %s) nor %s (blocked at %s)", epg->user,
                orig, blocker, base, why);
        return OPSC_ECONFIG;
    }
    opsc_log_warn(EPG_COMP,
                  "user '%s' (which PostgreSQL runs as, since we run as root) cannot reach %s: "
                  "directory %s is not searchable by it; the cluster lives in %s instead%s",
                  epg->user, orig, blocker, epg->cluster,
                  epg->data_dir[0] ? " (recorded in <data_dir>/pg.location)" : "");
    return 0;
}

/*
 * The data dir became reachable (its parent was chmod'ed) after an earlier
 * run had to relocate the cluster: keep using that cluster rather than
 * silently starting an empty one.
 */
static void epg_adopt_relocated(opsc_embedded_pg_t *epg) {
    char base[EPG_PATH_MAX];
    char p[EPG_PATH_MAX];

    if (!epg->data_dir[0] || opsc__epg_relocation_base(epg->data_dir, base, sizeof(base)) < 0 ||
        epg_fmt(p, sizeof(p), "%s/pg/PG_VERSION", base) < 0 || !epg_exists(p)) {
        return;
    }
    opsc_log_warn(EPG_COMP,
                  "%s holds no cluster but %s/pg does (an earlier run put it there "
                  "because user '%s' could not reach the data dir): using it",
                  epg->cluster, base, epg->user);
    (void)epg_fmt(epg->cluster, sizeof(epg->cluster), "%s/pg", base);
}

static void epg_write_location(const opsc_embedded_pg_t *epg) {
    char path[EPG_PATH_MAX];
    FILE *f;

    if (!epg->data_dir[0] || epg_fmt(path, sizeof(path), "%s/pg.location", epg->data_dir) < 0) {
        return;
    }
    if (opsc_mkdir_p(epg->data_dir, 0755) < 0 || (f = fopen(path, "w")) == NULL) {
        opsc_log_warn(EPG_COMP, "cannot write %s: %s", path, strerror(errno));
        return;
    }
    fprintf(f, "%s\n", epg->cluster);
    if (fclose(f) != 0) {
        opsc_log_warn(EPG_COMP, "cannot write %s: %s", path, strerror(errno));
    }
}

static int epg_prepare_dirs(opsc_embedded_pg_t *epg, char *errbuf, size_t errlen) {
    char parent[EPG_PATH_MAX];
    char *slash;
    struct stat st;
    int r;

    memcpy(parent, epg->cluster, sizeof(parent));
    slash = strrchr(parent, '/');
    if (!slash || slash == parent) {
        opsc_errbuf_printf(errbuf, errlen, "cluster dir %s must not be at the file system root", epg->cluster);
        return OPSC_ECONFIG;
    }
    *slash = '\0';
    r = opsc_mkdir_p(parent, 0755);
    if (r < 0) {
        opsc_errbuf_printf(errbuf, errlen, "cannot create %s: %s", parent, opsc_strerror(r));
        return r;
    }

    if (stat(epg->cluster, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            opsc_errbuf_printf(errbuf, errlen, "%s exists and is not a directory", epg->cluster);
            return OPSC_ECONFIG;
        }
        if (epg_cluster_initialized(epg)) {
            if (st.st_uid != epg->uid) {
                opsc_errbuf_printf(errbuf, errlen,
                        "PostgreSQL cluster %s belongs to uid %u but runs as '%s' (uid %u): "
                        "chown -R %s %s",
                        epg->cluster, (unsigned)st.st_uid, epg->user, (unsigned)epg->uid, epg->user,
                        epg->cluster);
                return OPSC_ECONFIG;
            }
        } else if (!epg_dir_is_empty(epg->cluster)) {
            opsc_errbuf_printf(errbuf, errlen,
                    "%s is not empty but holds no PostgreSQL cluster (no PG_VERSION); "
                    "remove it or point the cluster dir elsewhere",
                    epg->cluster);
            return OPSC_ECONFIG;
        }
    }

    if (epg_fmt(epg->initdb_tmp, sizeof(epg->initdb_tmp), "%s.initdb", epg->cluster) < 0 ||
        epg_fmt(epg->pidfile, sizeof(epg->pidfile), "%s/postmaster.pid", epg->cluster) < 0 ||
        epg_fmt(epg->dbmarker, sizeof(epg->dbmarker), "%s/%s", epg->cluster, EPG_DB_MARKER) < 0 ||
        epg_fmt(epg->sockdir, sizeof(epg->sockdir), "%s/pg-run", parent) < 0) {
        opsc_errbuf_printf(errbuf, errlen, "cluster path too long: %s", epg->cluster);
        return OPSC_ETOOBIG;
    }
    /* The socket path must fit sun_path; otherwise a short private dir under /tmp. */
    if (strlen(epg->sockdir) + 1 + strlen(EPG_SOCK_NAME) > EPG_SOCK_PATH_MAX) {
        char tmpl[] = "/tmp/opsc-pg-XXXXXX";
        if (!mkdtemp(tmpl)) {
            r = -errno;
            opsc_errbuf_printf(errbuf, errlen, "cannot create a socket dir under /tmp: %s", opsc_strerror(r));
            return r;
        }
        memcpy(epg->sockdir, tmpl, sizeof(tmpl));
        epg->sockdir_is_tmp = 1;
        opsc_log_info(EPG_COMP, "socket path under %s would be too long; using %s", parent,
                      epg->sockdir);
    }
    r = epg_own_dir(epg, epg->sockdir, 0700);
    if (r < 0) {
        opsc_errbuf_printf(errbuf, errlen, "cannot prepare socket dir %s: %s", epg->sockdir, opsc_strerror(r));
        return r;
    }
    return epg_fmt(epg->sockpath, sizeof(epg->sockpath), "%s/%s", epg->sockdir, EPG_SOCK_NAME);
}

static void epg_timer_closed(uv_handle_t *h) {
    opsc_embedded_pg_t *epg = h->data;

    epg->nhandles--;
    epg_maybe_free(epg);
}

int opsc_embedded_pg_create(uv_loop_t *loop, const opsc_embedded_pg_options_t *opts,
                            opsc_embedded_pg_cb cb, void *arg, opsc_embedded_pg_t **out,
                            char *errbuf, size_t errlen) {
    opsc_embedded_pg_t *epg = NULL;
    char blocker[EPG_PATH_MAX];
    char host[EPG_PATH_MAX + 8];
    locale_t loc;
    int has_data_dir = opts && opts->data_dir && *opts->data_dir;
    int has_dir = opts && opts->dir && *opts->dir;
    int r;

    if (errbuf && errlen) {
        errbuf[0] = '\0';
    }
    if (out) {
        *out = NULL;
    }
    if (!loop || !opts || !cb || !out || (!has_data_dir && !has_dir)) {
        opsc_errbuf_printf(errbuf, errlen, "embedded PostgreSQL needs a loop, a callback and a data dir");
        return OPSC_ECONFIG;
    }
    epg = opsc_calloc(1, sizeof(*epg));
    if (!epg) {
        opsc_errbuf_printf(errbuf, errlen, "out of memory");
        return OPSC_ENOMEM;
    }
    epg->loop = loop;
    epg->cb = cb;
    epg->cb_arg = arg;
    epg->backoff_ms = EPG_BACKOFF_MIN_MS;

    /* Binaries. */
    if (opts->bindir && *opts->bindir) {
        if (!opsc__epg_has_server_binaries(opts->bindir)) {
            opsc_errbuf_printf(errbuf, errlen, "no initdb and postgres in %s (configured bindir)",
                    opts->bindir);
            r = OPSC_ENOTFOUND;
            goto error;
        }
        r = epg_fmt(epg->bindir, sizeof(epg->bindir), "%s", opts->bindir);
    } else {
        r = opsc_embedded_pg_find_bindir(epg->bindir, sizeof(epg->bindir));
        if (r < 0) {
            opsc_errbuf_printf(errbuf, errlen,
                    "PostgreSQL server binaries not found (apt-get install postgresql-15) "
                    "neither through `pg_config --bindir` nor in /usr/lib/postgresql/*/bin; "
                    "or configure a database URL instead of the embedded server");
            r = OPSC_ENOTFOUND;
            goto error;
        }
    }
    if (r < 0 || epg_fmt(epg->bin_initdb, sizeof(epg->bin_initdb), "%s/initdb", epg->bindir) < 0 ||
        epg_fmt(epg->bin_postgres, sizeof(epg->bin_postgres), "%s/postgres", epg->bindir) < 0 ||
        epg_fmt(epg->bin_createdb, sizeof(epg->bin_createdb), "%s/createdb", epg->bindir) < 0) {
        opsc_errbuf_printf(errbuf, errlen, "bindir path too long");
        r = OPSC_ETOOBIG;
        goto error;
    }
    if (!epg_is_exec(epg->bindir, "createdb")) {
        opsc_errbuf_printf(errbuf, errlen, "%s not found (apt-get install postgresql-client-15)",
                epg->bin_createdb);
        r = OPSC_ENOTFOUND;
        goto error;
    }

    /* Paths. */
    if (has_data_dir) {
        r = opsc_abspath(opts->data_dir, epg->data_dir, sizeof(epg->data_dir));
        if (r < 0) {
            opsc_errbuf_printf(errbuf, errlen, "bad data dir %s: %s", opts->data_dir, opsc_strerror(r));
            goto error;
        }
    }
    if (has_dir) {
        r = opsc_abspath(opts->dir, epg->cluster, sizeof(epg->cluster));
    } else {
        r = epg_fmt(epg->cluster, sizeof(epg->cluster), "%s/pg", epg->data_dir);
    }
    if (r < 0) {
        opsc_errbuf_printf(errbuf, errlen, "bad cluster dir: %s", opsc_strerror(r));
        goto error;
    }

    /* Who runs it, and can that user get there. */
    r = epg_resolve_user(epg, opts, errbuf, errlen);
    if (r < 0) {
        goto error;
    }
    if (epg->as_root &&
        !opsc__epg_can_traverse(epg->cluster, epg->uid, epg->gid, blocker, sizeof(blocker))) {
        r = epg_relocate(epg, blocker, errbuf, errlen);
        if (r < 0) {
            goto error;
        }
    } else if (epg->as_root && !has_dir && !epg_cluster_initialized(epg)) {
        epg_adopt_relocated(epg);
    }
    r = epg_prepare_dirs(epg, errbuf, errlen);
    if (r < 0) {
        goto error;
    }
    epg_write_location(epg);

    /* C.UTF-8 when this libc has it (same libc as initdb's), plain C otherwise. */
    loc = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0);
    if (loc != (locale_t)0) {
        freelocale(loc);
        memcpy(epg->locale_arg, "C.UTF-8", sizeof("C.UTF-8"));
    } else {
        memcpy(epg->locale_arg, "C", sizeof("C"));
    }
    epg->env = epg_build_env(epg->locale_arg);
    if (!epg->env) {
        opsc_errbuf_printf(errbuf, errlen, "out of memory");
        r = OPSC_ENOMEM;
        goto error;
    }
    r = epg_conninfo_value(host, sizeof(host), epg->sockdir);
    if (r == 0) {
        r = epg_fmt(epg->conninfo, sizeof(epg->conninfo),
                    "host=%s port=" EPG_PORT_STR " dbname=" EPG_DBNAME " user=" EPG_ROLE
                    " application_name=opsconductord",
                    host);
    }
    if (r < 0) {
        opsc_errbuf_printf(errbuf, errlen, "socket dir path too long");
        goto error;
    }

    uv_timer_init(loop, &epg->poll_timer);
    uv_timer_init(loop, &epg->backoff_timer);
    uv_timer_init(loop, &epg->kill_timer);
    epg->poll_timer.data = epg;
    epg->backoff_timer.data = epg;
    epg->kill_timer.data = epg;
    epg->nhandles = 3;

    opsc_log_info(EPG_COMP, "embedded PostgreSQL: binaries %s, cluster %s, socket dir %s, user %s",
                  epg->bindir, epg->cluster, epg->sockdir, epg->user);
    *out = epg;
    return 0;

error:
    if (epg->sockdir_is_tmp) {
        (void)opsc_rm_rf(epg->sockdir);
    }
    epg_free_env(epg->env);
    opsc_free(epg);
    return r;
}

int opsc_embedded_pg_start(opsc_embedded_pg_t *epg) {
    char *argv[12];
    char locale[48];
    opsc__epg_child_t *c;
    int r, i = 0;

    if (epg->started || epg->stopping) {
        return UV_EALREADY;
    }
    epg->started = 1;
    epg_kill_leftover(epg);

    if (epg_cluster_initialized(epg)) {
        epg_start_postgres(epg);
        return 0;
    }

    /* initdb into a sibling directory, renamed into place once complete. */
    if (epg_exists(epg->initdb_tmp)) {
        opsc_log_info(EPG_COMP, "removing %s left by an interrupted initdb", epg->initdb_tmp);
        (void)opsc_rm_rf(epg->initdb_tmp);
    }
    r = epg_own_dir(epg, epg->initdb_tmp, 0700);
    if (r < 0) {
        opsc_log_err(EPG_COMP, "cannot create %s: %s", epg->initdb_tmp, opsc_strerror(r));
        epg->state = EPG_ST_FAILED;
        return r;
    }
    (void)epg_fmt(locale, sizeof(locale), "--locale=%s", epg->locale_arg);
    argv[i++] = epg->bin_initdb;
    argv[i++] = (char *)"-D";
    argv[i++] = epg->initdb_tmp;
    argv[i++] = (char *)"-U";
    argv[i++] = (char *)EPG_ROLE;
    argv[i++] = (char *)"-A";
    argv[i++] = (char *)"trust";
    argv[i++] = (char *)"--encoding=UTF8";
    argv[i++] = locale;
    argv[i++] = (char *)"--no-instructions";
    argv[i] = NULL;

    r = epg_spawn(epg, EPG_CHILD_INITDB, argv, &c);
    if (r < 0) {
        opsc_log_err(EPG_COMP, "cannot run %s: %s", epg->bin_initdb, opsc_strerror(r));
        (void)opsc_rm_rf(epg->initdb_tmp);
        epg->state = EPG_ST_FAILED;
        return r;
    }
    epg->helper = c;
    epg->state = EPG_ST_INITDB;
    epg->initdb_started_ms = c->started_ms;
    opsc_log_info(EPG_COMP, "first start: creating a PostgreSQL cluster in %s (initdb, pid %d)",
                  epg->cluster, c->pid);
    return 0;
}

const char *opsc_embedded_pg_conninfo(const opsc_embedded_pg_t *epg) {
    return epg->conninfo;
}

const char *opsc_embedded_pg_cluster_dir(const opsc_embedded_pg_t *epg) {
    return epg->cluster;
}

const char *opsc_embedded_pg_socket_dir(const opsc_embedded_pg_t *epg) {
    return epg->sockdir;
}

int opsc_embedded_pg_pid(const opsc_embedded_pg_t *epg) {
    return epg->pg ? epg->pid : 0;
}

int opsc_embedded_pg_running(const opsc_embedded_pg_t *epg) {
    return epg->running;
}

static void epg_kill_cb(uv_timer_t *t) {
    opsc_embedded_pg_t *epg = t->data;

    if (epg->pg) {
        opsc_log_warn(EPG_COMP, "postgres (pid %d) did not stop within %d ms; sending SIGKILL",
                      epg->pid, epg->stop_timeout_ms);
        (void)uv_process_kill(&epg->pg->proc, SIGKILL);
        epg->sigkilled = 1;
    }
    if (epg->helper && !epg->helper->exited) {
        (void)uv_process_kill(&epg->helper->proc, SIGKILL);
    }
}

static void epg_close_timer(opsc_embedded_pg_t *epg, uv_timer_t *t) {
    (void)epg;
    if (!uv_is_closing((uv_handle_t *)t)) {
        uv_close((uv_handle_t *)t, epg_timer_closed);
    }
}

static void epg_close_all(opsc_embedded_pg_t *epg) {
    opsc__epg_child_t *c;

    for (c = epg->children; c; c = c->next) {
        epg_child_close_pipe(c);
    }
    epg_close_timer(epg, &epg->poll_timer);
    epg_close_timer(epg, &epg->backoff_timer);
    epg_close_timer(epg, &epg->kill_timer);
}

/* After a SIGKILL: wait (bounded) until the postmaster's orphaned children are gone too. */
static void epg_orphan_poll_cb(uv_timer_t *t) {
    opsc_embedded_pg_t *epg = t->data;
    int n = opsc__epg_cluster_processes(epg->cluster, SIGKILL);

    if (n > 0 && uv_now(epg->loop) - epg->orphans_since_ms < EPG_ORPHAN_WAIT_MS) {
        return;
    }
    if (n > 0) {
        opsc_log_err(EPG_COMP, "%d postgres process(es) of %s survived SIGKILL for %d ms", n,
                     epg->cluster, EPG_ORPHAN_WAIT_MS);
    }
    uv_timer_stop(t);
    epg_close_all(epg);
}

/* Stopping, and no process of ours is alive any more: close everything. */
static void epg_maybe_finish(opsc_embedded_pg_t *epg) {
    int n;

    if (!epg->stopping || epg->finishing || epg->pg || (epg->helper && !epg->helper->exited)) {
        return;
    }
    epg->finishing = 1;
    uv_timer_stop(&epg->kill_timer);
    if (epg->sigkilled) {
        /* SIGKILL leaves the postmaster's children behind for a moment. */
        n = opsc__epg_cluster_processes(epg->cluster, SIGKILL);
        if (n > 0) {
            opsc_log_warn(EPG_COMP, "killing %d orphaned postgres process(es) of %s", n,
                          epg->cluster);
            epg->orphans_since_ms = uv_now(epg->loop);
            uv_timer_start(&epg->kill_timer, epg_orphan_poll_cb, 10, 20);
            return;
        }
    }
    epg_close_all(epg);
}

static void epg_maybe_free(opsc_embedded_pg_t *epg) {
    void (*done)(void *);
    void *done_arg;

    if (!epg->finishing || epg->nhandles > 0 || epg->nchildren > 0) {
        return;
    }
    if (epg->sockdir_is_tmp) {
        (void)opsc_rm_rf(epg->sockdir);
    }
    if (epg_exists(epg->initdb_tmp)) {
        (void)opsc_rm_rf(epg->initdb_tmp);
    }
    opsc_log_info(EPG_COMP, "embedded PostgreSQL stopped");
    done = epg->done;
    done_arg = epg->done_arg;
    epg_free_env(epg->env);
    opsc_free(epg);
    if (done) {
        done(done_arg);
    }
}

void opsc_embedded_pg_stop(opsc_embedded_pg_t *epg, int timeout_ms, void (*done)(void *arg),
                           void *arg) {
    if (epg->stopping) {
        return;
    }
    epg->stopping = 1;
    epg->done = done;
    epg->done_arg = arg;
    epg->stop_timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
    epg->running = 0;
    uv_timer_stop(&epg->poll_timer);
    uv_timer_stop(&epg->backoff_timer);

    if (epg->pg) {
        opsc_log_info(EPG_COMP, "stopping postgres (pid %d, fast shutdown)", epg->pid);
        (void)uv_process_kill(&epg->pg->proc, SIGINT);
    }
    if (epg->helper && !epg->helper->exited) {
        /* initdb removes its half-made cluster on SIGTERM; createdb just goes. */
        (void)uv_process_kill(&epg->helper->proc, SIGTERM);
    }
    if (epg->pg || (epg->helper && !epg->helper->exited)) {
        uv_timer_start(&epg->kill_timer, epg_kill_cb, (uint64_t)epg->stop_timeout_ms, 0);
    }
    epg_maybe_finish(epg);
}

void opsc_embedded_pg_metrics(opsc_buf_t *out, void *arg) {
    const opsc_embedded_pg_t *epg = arg;

    opsc_metrics_family(out, "opsc_embedded_pg_up", "gauge",
                        "1 when the embedded PostgreSQL accepts connections");
    opsc_metrics_sample(out, "opsc_embedded_pg_up", NULL, epg->running ? 1.0 : 0.0);
    opsc_metrics_one_u64(out, "opsc_embedded_pg_restarts_total", "counter",
                         "Restarts of the embedded PostgreSQL after it died", epg->restarts);
    opsc_metrics_one_u64(out, "opsc_embedded_pg_pid", "gauge",
                         "PID of the embedded postmaster (0 when not running)",
                         (uint64_t)(epg->pg ? epg->pid : 0));
}
