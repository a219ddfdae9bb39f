/*
 * Throwaway PostgreSQL for tests. Plain blocking code (fork/exec, waitpid,
 * polling postmaster.pid), deliberately sharing nothing with
 * src/store/embedded_pg.c so that the server's supervisor is tested against
 * a postgres it did not start.
 *
 * Nothing is left running: every postmaster we start is registered for an
 * atexit() cleanup, and gets SIGINT (fast shutdown) through
 * PR_SET_PDEATHSIG if the test process dies without running atexit handlers
 * (abort, SIGKILL from a test timeout).
 */
#include "support/pg_harness.h"
#include "support/loop_util.h"

#include "opsc/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define H_PORT 5432
#define H_SUPERUSER "postgres"
#define H_DBNAME "opsc_test"
#define H_OS_USER "postgres"
#define H_MAX_TRACKED 32

typedef struct {
    pid_t pid;
    char dir[256]; /* removed at exit; "" for none */
} h_tracked_t;

static h_tracked_t h_tracked[H_MAX_TRACKED];
static int h_atexit_done;

static void h_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* waitpid bounded by timeout_ms. 1 reaped (status in *status), 0 still running, -1 not our child.
 */
static int h_waitpid(pid_t pid, int *status, int timeout_ms) {
    int waited = 0;

    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid) {
            return 1;
        }
        if (r < 0 && errno != EINTR) {
            return -1;
        }
        if (waited >= timeout_ms) {
            return 0;
        }
        h_sleep_ms(10);
        waited += 10;
    }
}

static void h_forget(pid_t pid) {
    int i;

    for (i = 0; i < H_MAX_TRACKED; i++) {
        if (h_tracked[i].pid == pid) {
            h_tracked[i].pid = 0;
            if (!h_tracked[i].dir[0]) {
                memset(&h_tracked[i], 0, sizeof(h_tracked[i]));
            }
        }
    }
}

static void h_forget_dir(const char *dir) {
    int i;

    for (i = 0; i < H_MAX_TRACKED; i++) {
        if (h_tracked[i].dir[0] && strcmp(h_tracked[i].dir, dir) == 0) {
            memset(&h_tracked[i], 0, sizeof(h_tracked[i]));
        }
    }
}

static void h_stop_pid(pid_t pid, int grace_ms) {
    int status;

    if (pid <= 0) {
        return;
    }
    (void)kill(pid, SIGINT);
    if (h_waitpid(pid, &status, grace_ms) == 0) {
        fprintf(stderr, "pg_harness: postgres %d ignored SIGINT for %d ms; SIGKILL\n", (int)pid,
                grace_ms);
        (void)kill(pid, SIGKILL);
        (void)h_waitpid(pid, &status, 5000);
    }
}

static void h_atexit(void) {
    int i;

    for (i = 0; i < H_MAX_TRACKED; i++) {
        if (h_tracked[i].pid > 0) {
            fprintf(stderr, "pg_harness: cleaning up postgres %d at exit\n", (int)h_tracked[i].pid);
            h_stop_pid(h_tracked[i].pid, 5000);
        }
        if (h_tracked[i].dir[0]) {
            (void)opsc_rm_rf(h_tracked[i].dir);
        }
        memset(&h_tracked[i], 0, sizeof(h_tracked[i]));
    }
}

static void h_track(pid_t pid, const char *dir) {
    int i;

    if (!h_atexit_done) {
        h_atexit_done = 1;
        (void)atexit(h_atexit);
    }
    for (i = 0; i < H_MAX_TRACKED; i++) {
        if (h_tracked[i].pid == 0 && h_tracked[i].dir[0] == '\0') {
            h_tracked[i].pid = pid;
            if (dir) {
                (void)snprintf(h_tracked[i].dir, sizeof(h_tracked[i].dir), "%s", dir);
            }
            return;
        }
    }
    fprintf(stderr, "pg_harness: too many tracked postgres instances\n");
}

static void h_track_pid_in_dir(pid_t pid, const char *dir) {
    int i;

    for (i = 0; i < H_MAX_TRACKED; i++) {
        if (h_tracked[i].dir[0] && strcmp(h_tracked[i].dir, dir) == 0) {
            h_tracked[i].pid = pid;
            return;
        }
    }
    h_track(pid, dir);
}

/* The OS user postgres runs as: "postgres" when we are root, ourselves otherwise. */
static int h_os_user(uid_t *uid, gid_t *gid) {
    const struct passwd *pw;

    if (geteuid() != 0) {
        *uid = geteuid();
        *gid = getegid();
        return 0;
    }
    pw = getpwnam(H_OS_USER);
    if (!pw) {
        fprintf(stderr,
                "pg_harness: running as root needs the '%s' user "
                "(apt-get install postgresql-15)\n",
                H_OS_USER);
        return -1;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return 0;
}

/* In a forked child: become the postgres OS user when we are root. Returns only on success. */
static void h_child_become_user(void) {
    uid_t uid;
    gid_t gid;

    if (geteuid() != 0) {
        return;
    }
    if (h_os_user(&uid, &gid) != 0 || setgroups(0, NULL) != 0 || setgid(gid) != 0 ||
        setuid(uid) != 0) {
        _exit(126);
    }
}

/*
 * fork/exec argv; stdout+stderr to `logfile` (NULL: inherited) or, with
 * out_fd, stdout into a pipe returned there. Returns the pid or -1.
 */
static pid_t h_spawn(char *const argv[], int as_pg_user, const char *logfile, int *out_fd,
                     int pdeathsig) {
    int pfd[2] = {-1, -1};
    int logfd = -1;
    pid_t parent = getpid();
    pid_t pid;

    if (logfile) {
        logfd = open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (logfd < 0) {
            fprintf(stderr, "pg_harness: open %s: %s\n", logfile, strerror(errno));
            return -1;
        }
    }
    if (out_fd && pipe(pfd) != 0) {
        if (logfd >= 0) {
            close(logfd);
        }
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "pg_harness: fork: %s\n", strerror(errno));
        if (logfd >= 0) {
            close(logfd);
        }
        if (out_fd) {
            close(pfd[0]);
            close(pfd[1]);
        }
        return -1;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) {
            (void)dup2(devnull, 0);
        }
        if (logfd >= 0) {
            (void)dup2(logfd, 1);
            (void)dup2(logfd, 2);
        }
        if (out_fd) {
            (void)dup2(pfd[1], 1);
            close(pfd[0]);
            close(pfd[1]);
        }
        /* The test's cwd may be unreachable for the postgres user. */
        if (chdir("/") != 0) {
            _exit(126);
        }
        if (as_pg_user) {
            h_child_become_user();
        }
        if (pdeathsig) {
            /* After setuid: a credential change clears it. */
            (void)prctl(PR_SET_PDEATHSIG, pdeathsig);
            if (getppid() != parent) {
                _exit(125);
            }
        }
        execv(argv[0], argv);
        _exit(127);
    }
    if (logfd >= 0) {
        close(logfd);
    }
    if (out_fd) {
        close(pfd[1]);
        *out_fd = pfd[0];
    }
    return pid;
}

/* Run to completion (bounded). Exit status, or -1 when it could not run / was killed. */
static int h_run(char *const argv[], int as_pg_user, const char *logfile, int timeout_ms) {
    int status = 0;
    int r;
    pid_t pid = h_spawn(argv, as_pg_user, logfile, NULL, 0);

    if (pid < 0) {
        return -1;
    }
    r = h_waitpid(pid, &status, timeout_ms);
    if (r == 0) {
        fprintf(stderr, "pg_harness: %s still running after %d ms; killing it\n", argv[0],
                timeout_ms);
        (void)kill(pid, SIGKILL);
        (void)h_waitpid(pid, &status, 5000);
        return -1;
    }
    if (r < 0 || !WIFEXITED(status)) {
        return -1;
    }
    return WEXITSTATUS(status);
}

static void h_dump_file(const char *path) {
    char line[1024];
    FILE *f = fopen(path, "r");

    if (!f) {
        return;
    }
    fprintf(stderr, "---- %s\n", path);
    while (fgets(line, sizeof(line), f)) {
        fputs(line, stderr);
    }
    fprintf(stderr, "----\n");
    fclose(f);
}

static int h_has_binaries(const char *dir) {
    char p[512];

    if (snprintf(p, sizeof(p), "%s/initdb", dir) >= (int)sizeof(p) || access(p, X_OK) != 0) {
        return 0;
    }
    if (snprintf(p, sizeof(p), "%s/postgres", dir) >= (int)sizeof(p) || access(p, X_OK) != 0) {
        return 0;
    }
    return 1;
}

int opsc_test_pg_find_bindir(char *out, size_t outlen) {
    char line[512];
    long best = -1;
    FILE *f;
    DIR *d;
    struct dirent *de;

    f = popen("pg_config --bindir 2>/dev/null", "r");
    if (f) {
        int got = fgets(line, sizeof(line), f) != NULL;
        if (pclose(f) == 0 && got) {
            line[strcspn(line, "\r\n")] = '\0';
            if (h_has_binaries(line) && strlen(line) < outlen) {
                memcpy(out, line, strlen(line) + 1);
                return 0;
            }
        }
    }
    d = opendir("/usr/lib/postgresql");
    if (!d) {
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        long major = strtol(de->d_name, NULL, 10);
        if (de->d_name[0] < '0' || de->d_name[0] > '9' || major <= best) {
            continue;
        }
        if (snprintf(line, sizeof(line), "/usr/lib/postgresql/%s/bin", de->d_name) <
                (int)sizeof(line) &&
            h_has_binaries(line) && strlen(line) < outlen) {
            best = major;
            memcpy(out, line, strlen(line) + 1);
        }
    }
    closedir(d);
    return best < 0 ? -1 : 0;
}

pid_t opsc_test_pg_spawn_postgres(const char *bindir, const char *datadir, const char *sockdir,
                                  int port, const char *logfile) {
    char bin[512];
    char portstr[16];
    pid_t pid;

    (void)snprintf(bin, sizeof(bin), "%s/postgres", bindir);
    (void)snprintf(portstr, sizeof(portstr), "%d", port);
    {
        char *argv[] = {bin,
                        (char *)"-D",
                        (char *)datadir,
                        (char *)"-k",
                        (char *)sockdir,
                        (char *)"-p",
                        portstr,
                        (char *)"-c",
                        (char *)"listen_addresses=",
                        (char *)"-c",
                        (char *)"fsync=off",
                        (char *)"-c",
                        (char *)"logging_collector=off",
                        NULL};
        pid = h_spawn(argv, 1, logfile, NULL, SIGINT);
    }
    if (pid > 0) {
        h_track(pid, NULL);
    }
    return pid;
}

int opsc_test_pg_wait_ready(const char *datadir, const char *sockdir, int port, pid_t pid,
                            int timeout_ms) {
    char pidfile[512];
    char sock[512];
    int waited = 0;

    (void)snprintf(pidfile, sizeof(pidfile), "%s/postmaster.pid", datadir);
    (void)snprintf(sock, sizeof(sock), "%s/.s.PGSQL.%d", sockdir, port);
    for (;;) {
        char text[1024];
        size_t n = 0;
        FILE *f = fopen(pidfile, "r");
        int status;

        if (f) {
            n = fread(text, 1, sizeof(text) - 1, f);
            fclose(f);
        }
        text[n] = '\0';
        if (n > 0 && strtol(text, NULL, 10) == (long)pid) {
            const char *p = text;
            int line;
            for (line = 1; line < 8 && p; line++) {
                p = strchr(p, '\n');
                if (p) {
                    p++;
                }
            }
            if (p && strncmp(p, "ready", 5) == 0 && access(sock, F_OK) == 0) {
                return 0;
            }
        }
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "pg_harness: postgres %d exited before becoming ready\n", (int)pid);
            h_forget(pid);
            return -1;
        }
        if (waited >= timeout_ms) {
            fprintf(stderr, "pg_harness: postgres %d not ready after %d ms\n", (int)pid,
                    timeout_ms);
            return -1;
        }
        h_sleep_ms(20);
        waited += 20;
    }
}

int opsc_test_pg_wait_exit(pid_t pid, int timeout_ms) {
    int status;
    int r = h_waitpid(pid, &status, timeout_ms);

    if (r != 0) {
        h_forget(pid); /* reaped, or not our child at all */
    }
    return r == 1 ? 0 : -1;
}

int opsc_test_pg_start(opsc_test_pg_t *pg) {
    char datadir[320];
    char log[320];
    char bin[320];
    char portstr[16];
    uid_t uid;
    gid_t gid;
    int rc;

    memset(pg, 0, sizeof(*pg));
    pg->port = H_PORT;
    (void)snprintf(pg->user, sizeof(pg->user), "%s", H_SUPERUSER);
    if (opsc_test_pg_find_bindir(pg->bindir, sizeof(pg->bindir)) != 0) {
        fprintf(stderr, "pg_harness: PostgreSQL server binaries not found "
                        "(apt-get install postgresql-15)\n");
        return -1;
    }
    if (h_os_user(&uid, &gid) != 0) {
        return -1;
    }
    (void)snprintf(pg->dir, sizeof(pg->dir), "/tmp/opsc-test-pg-XXXXXX");
    if (!mkdtemp(pg->dir)) {
        fprintf(stderr, "pg_harness: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    h_track(0, pg->dir);
    if (geteuid() == 0 && chown(pg->dir, uid, gid) != 0) {
        fprintf(stderr, "pg_harness: chown %s: %s\n", pg->dir, strerror(errno));
        goto error;
    }
    (void)snprintf(pg->sockdir, sizeof(pg->sockdir), "%s", pg->dir);
    (void)snprintf(datadir, sizeof(datadir), "%s/data", pg->dir);
    (void)snprintf(portstr, sizeof(portstr), "%d", pg->port);

    (void)snprintf(log, sizeof(log), "%s/initdb.log", pg->dir);
    (void)snprintf(bin, sizeof(bin), "%s/initdb", pg->bindir);
    {
        char *argv[] = {bin,
                        (char *)"-D",
                        datadir,
                        (char *)"-U",
                        (char *)H_SUPERUSER,
                        (char *)"-A",
                        (char *)"trust",
                        (char *)"-E",
                        (char *)"UTF8",
                        (char *)"--locale=C",
                        (char *)"--no-sync",
                        (char *)"--no-instructions",
                        NULL};
        rc = h_run(argv, 1, log, 60000);
    }
    if (rc != 0) {
        fprintf(stderr, "pg_harness: initdb failed (%d)\n", rc);
        h_dump_file(log);
        goto error;
    }

    (void)snprintf(log, sizeof(log), "%s/postgres.log", pg->dir);
    pg->pid = opsc_test_pg_spawn_postgres(pg->bindir, datadir, pg->sockdir, pg->port, log);
    if (pg->pid <= 0) {
        goto error;
    }
    h_forget(pg->pid);
    h_track_pid_in_dir(pg->pid, pg->dir);
    if (opsc_test_pg_wait_ready(datadir, pg->sockdir, pg->port, pg->pid, 30000) != 0) {
        h_dump_file(log);
        goto error;
    }

    (void)snprintf(bin, sizeof(bin), "%s/createdb", pg->bindir);
    (void)snprintf(log, sizeof(log), "%s/createdb.log", pg->dir);
    {
        char *argv[] = {bin,          (char *)"-h", pg->sockdir,      (char *)"-p", portstr,
                        (char *)"-U", pg->user,     (char *)H_DBNAME, NULL};
        rc = h_run(argv, 0, log, 30000);
    }
    if (rc != 0) {
        fprintf(stderr, "pg_harness: createdb failed (%d)\n", rc);
        h_dump_file(log);
        goto error;
    }
    (void)snprintf(pg->conninfo, sizeof(pg->conninfo), "host=%s port=%d dbname=%s user=%s",
                   pg->sockdir, pg->port, H_DBNAME, pg->user);
    return 0;

error:
    opsc_test_pg_stop(pg);
    return -1;
}

void opsc_test_pg_stop(opsc_test_pg_t *pg) {
    if (pg->pid > 0) {
        h_stop_pid(pg->pid, 10000);
        h_forget(pg->pid);
        pg->pid = 0;
    }
    if (pg->dir[0]) {
        (void)opsc_rm_rf(pg->dir);
        h_forget_dir(pg->dir);
        pg->dir[0] = '\0';
    }
}

int opsc_test_pg_psql(const opsc_test_pg_t *pg, const char *sql, char *out, size_t outlen) {
    char bin[320];
    size_t len = 0;
    int fd = -1;
    int status;
    pid_t pid;

    if (out && outlen > 0) {
        out[0] = '\0';
    }
    (void)snprintf(bin, sizeof(bin), "%s/psql", pg->bindir);
    {
        /* -d takes the whole conninfo: callers may point pg->conninfo at another database. */
        char *argv[] = {bin,          (char *)"-XAtq",      (char *)"-v", (char *)"ON_ERROR_STOP=1",
                        (char *)"-d", (char *)pg->conninfo, (char *)"-c", (char *)sql,
                        NULL};
        pid = h_spawn(argv, 0, NULL, &fd, 0);
    }
    if (pid < 0) {
        return -1;
    }
    /* Bounded: a psql that never finishes is killed and reported, not waited for. */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        char chunk[4096];
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long spent_ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        long left_ms = 60000 - spent_ms;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = left_ms > 0 ? poll(&pfd, 1, (int)left_ms) : 0;
        if (pr < 0 && errno == EINTR) {
            continue;
        }
        if (pr == 0) {
            fprintf(stderr, "pg_harness: psql still running after 60 s (%s); killing it\n", sql);
            (void)kill(pid, SIGKILL);
            break;
        }
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        if (out && outlen > 0) {
            size_t room = outlen - 1 - len;
            size_t take = (size_t)n < room ? (size_t)n : room;
            memcpy(out + len, chunk, take);
            len += take;
        }
    }
    close(fd);
    if (out && outlen > 0) {
        while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r')) {
            len--;
        }
        out[len] = '\0';
    }
    if (h_waitpid(pid, &status, 30000) != 1) {
        (void)kill(pid, SIGKILL);
        (void)h_waitpid(pid, &status, 5000);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int opsc_test_pg_create_db(const opsc_test_pg_t *pg, const char *dbname, char *out, size_t outlen) {
    char bin[320];
    char portstr[16];
    int rc;

    (void)snprintf(bin, sizeof(bin), "%s/createdb", pg->bindir);
    (void)snprintf(portstr, sizeof(portstr), "%d", pg->port);
    {
        char *argv[] = {bin,          (char *)"-h",     (char *)pg->sockdir, (char *)"-p", portstr,
                        (char *)"-U", (char *)pg->user, (char *)dbname,      NULL};
        rc = h_run(argv, 0, NULL, 30000);
    }
    if (rc != 0) {
        fprintf(stderr, "pg_harness: createdb %s failed (%d)\n", dbname, rc);
        return -1;
    }
    if (snprintf(out, outlen, "host=%s port=%d dbname=%s user=%s", pg->sockdir, pg->port, dbname,
                 pg->user) >= (int)outlen) {
        return -1;
    }
    return 0;
}

int opsc_test_pg_env_setup(opsc_test_pg_t *pg, uv_loop_t *loop, opsc_log_level_t level) {
    opsc_log_set_level(level);
    uv_loop_init(loop);
    return opsc_test_pg_start(pg);
}

void opsc_test_pg_env_teardown(opsc_test_pg_t *pg, uv_loop_t *loop) {
    opsc_test_drain(loop);
    uv_loop_close(loop);
    if (pg->pid > 0) {
        opsc_test_pg_stop(pg);
    }
}
