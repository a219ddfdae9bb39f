/* File-system helpers: mkdir -p, abspath, rm -rf, lock file contention, read_file. */
/* cmocka.h needs these first, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/fsutil.h"

static char tmpdir[PATH_MAX];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/opsc_test_fs_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    umask(022); /* the mode checks below assume it */
    return 0;
}

static int teardown(void **state) {
    (void)state;
    assert_int_equal(opsc_rm_rf(tmpdir), 0);
    return 0;
}

static void path_in(char *out, size_t outlen, const char *rel) {
    int n = snprintf(out, outlen, "%s/%s", tmpdir, rel);
    assert_true(n > 0 && (size_t)n < outlen);
}

static void write_file(const char *path, const char *content) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void test_mkdir_p(void **state) {
    (void)state;
    char p[PATH_MAX];
    path_in(p, sizeof(p), "a/b//c/d/");
    assert_int_equal(opsc_mkdir_p(p, 0750), 0);
    path_in(p, sizeof(p), "a/b/c/d");
    assert_true(is_dir(p));
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0750);
    assert_int_equal(opsc_mkdir_p(p, 0755), 0); /* exists: fine */
    assert_int_equal(opsc_mkdir_p("/", 0755), 0);

    /* a file in the way */
    path_in(p, sizeof(p), "file");
    write_file(p, "x");
    path_in(p, sizeof(p), "file/sub");
    assert_int_equal(opsc_mkdir_p(p, 0755), -ENOTDIR);
    path_in(p, sizeof(p), "file");
    assert_int_equal(opsc_mkdir_p(p, 0755), -ENOTDIR);
    assert_int_equal(opsc_mkdir_p("", 0755), -EINVAL);

    /* relative paths work from the cwd */
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(tmpdir), 0);
    assert_int_equal(opsc_mkdir_p("rel/x", 0755), 0);
    assert_true(is_dir("rel/x"));
    assert_int_equal(chdir(cwd), 0);
}

static void expect_abspath(const char *in, const char *want) {
    char out[PATH_MAX];
    int rc = opsc_abspath(in, out, sizeof(out));
    if (rc != 0) {
        fail_msg("abspath(\"%s\") = %d", in, rc);
    }
    if (strcmp(out, want) != 0) {
        fail_msg("abspath(\"%s\") = \"%s\", want \"%s\"", in, out, want);
    }
}

static void test_abspath(void **state) {
    (void)state;
    expect_abspath("/", "/");
    expect_abspath("//", "/");
    expect_abspath("/a/b/c", "/a/b/c");
    expect_abspath("/a/b/c/", "/a/b/c");
    expect_abspath("/a//b///c", "/a/b/c");
    expect_abspath("/a/./b/./c/.", "/a/b/c");
    expect_abspath("/a/b/../c", "/a/c");
    expect_abspath("/a/b/../../..", "/");
    expect_abspath("/../../x", "/x");
    expect_abspath("/a/..b/.c/...", "/a/..b/.c/...");
    expect_abspath("/does/not/exist/../really", "/does/not/really");

    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(tmpdir), 0);
    char want[PATH_MAX + 16];
    expect_abspath(".", tmpdir);
    snprintf(want, sizeof(want), "%s/var", tmpdir);
    expect_abspath("./var", want);
    expect_abspath("var/", want);
    expect_abspath("x/../var/./", want);
    snprintf(want, sizeof(want), "%s/pg", tmpdir);
    expect_abspath("var/../pg", want);
    expect_abspath("../../../../../../../../../../../..", "/");
    assert_int_equal(chdir(cwd), 0);

    char small[8];
    assert_int_equal(opsc_abspath("/abcdefgh", small, sizeof(small)), -ENAMETOOLONG);
    assert_int_equal(opsc_abspath("/abcdef", small, sizeof(small)), 0);
    assert_string_equal(small, "/abcdef");
    char out[PATH_MAX];
    assert_int_equal(opsc_abspath("", out, sizeof(out)), -EINVAL);
    assert_int_equal(opsc_abspath(NULL, out, sizeof(out)), -EINVAL);
}

static void test_rm_rf(void **state) {
    (void)state;
    char p[PATH_MAX], q[PATH_MAX], outside[PATH_MAX], keep[PATH_MAX];
    path_in(p, sizeof(p), "tree/a/b/c");
    assert_int_equal(opsc_mkdir_p(p, 0755), 0);
    path_in(p, sizeof(p), "tree/a/f1");
    write_file(p, "1");
    path_in(p, sizeof(p), "tree/a/b/c/f2");
    write_file(p, "2");
    path_in(p, sizeof(p), "tree/empty");
    assert_int_equal(opsc_mkdir_p(p, 0755), 0);

    /* a symlink to a directory outside: the link goes, the target stays */
    path_in(outside, sizeof(outside), "outside");
    assert_int_equal(opsc_mkdir_p(outside, 0755), 0);
    path_in(keep, sizeof(keep), "outside/keep");
    write_file(keep, "k");
    path_in(q, sizeof(q), "tree/a/link");
    assert_int_equal(symlink(outside, q), 0);
    /* an unreadable directory is still removable (we own it) */
    path_in(p, sizeof(p), "tree/locked");
    assert_int_equal(mkdir(p, 0), 0);

    path_in(p, sizeof(p), "tree");
    assert_int_equal(opsc_rm_rf(p), 0);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(access(keep, F_OK), 0);

    assert_int_equal(opsc_rm_rf(p), 0); /* already gone */
    path_in(p, sizeof(p), "single");
    write_file(p, "x");
    assert_int_equal(opsc_rm_rf(p), 0);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(opsc_rm_rf(""), -EINVAL);
}

static long read_pid_file(const char *path) {
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(opsc_read_file(path, &text, &len, 64), 0);
    assert_true(len > 1);
    assert_int_equal(text[len - 1], '\n');
    long pid = strtol(text, NULL, 10);
    opsc_free(text);
    return pid;
}

/* In a child: try the lock. Exit 0 if ELOCKED with holder == expect_holder, 10 if acquired. */
static int child_try_lock(const char *path, long expect_holder) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = -1;
        long holder = -1;
        int rc = opsc_lockfile_acquire(path, &fd, &holder);
        if (rc == OPSC_ELOCKED) {
            _exit(holder == expect_holder ? 0 : 2);
        }
        if (rc == 0) {
            /* the file now names this child */
            char *text = NULL;
            size_t len;
            int ok =
                opsc_read_file(path, &text, &len, 64) == 0 && strtol(text, NULL, 10) == getpid();
            opsc_lockfile_release(fd, path);
            _exit(ok ? 10 : 11);
        }
        _exit(3);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_lockfile(void **state) {
    (void)state;
    char path[PATH_MAX];
    path_in(path, sizeof(path), "opsconductord.lock");

    int fd = -1;
    long holder = -1;
    assert_int_equal(opsc_lockfile_acquire(path, &fd, &holder), 0);
    assert_true(fd >= 0);
    assert_int_equal(holder, 0);
    assert_int_equal(read_pid_file(path), (long)getpid());
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);

    /* another process: refused, told our PID */
    assert_int_equal(child_try_lock(path, (long)getpid()), 0);

    /* another open file description in this process is refused as well */
    int fd2 = -1;
    holder = 0;
    assert_int_equal(opsc_lockfile_acquire(path, &fd2, &holder), OPSC_ELOCKED);
    assert_int_equal(fd2, -1);
    assert_int_equal(holder, (long)getpid());
    assert_int_equal(opsc_lockfile_acquire(path, &fd2, NULL), OPSC_ELOCKED);

    /* released: the file is gone and the next process gets the lock */
    opsc_lockfile_release(fd, path);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(child_try_lock(path, 0), 10);

    /* a stale file left by a dead process does not block, and is rewritten */
    write_file(path, "999999999 garbage and more text than a pid\n");
    assert_int_equal(opsc_lockfile_acquire(path, &fd, &holder), 0);
    assert_int_equal(read_pid_file(path), (long)getpid());
    opsc_lockfile_release(fd, path);
    opsc_lockfile_release(-1, path); /* no-op */

    /* unusable paths report errno */
    char bad[PATH_MAX];
    path_in(bad, sizeof(bad), "missing-dir/x.lock");
    assert_int_equal(opsc_lockfile_acquire(bad, &fd, &holder), -ENOENT);
    assert_int_equal(fd, -1);
}

static void test_read_file(void **state) {
    (void)state;
    char path[PATH_MAX];
    char *text = NULL;
    size_t len = 99;

    path_in(path, sizeof(path), "empty");
    write_file(path, "");
    assert_int_equal(opsc_read_file(path, &text, &len, 100), 0);
    assert_int_equal(len, 0);
    assert_string_equal(text, "");
    opsc_free(text);

    path_in(path, sizeof(path), "big");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 100000; i++) {
        fputc('a' + i % 26, f);
    }
    fclose(f);
    assert_int_equal(opsc_read_file(path, &text, &len, 100000), 0);
    assert_int_equal(len, 100000);
    assert_int_equal(text[99999], 'a' + 99999 % 26);
    assert_int_equal(text[100000], '\0');
    opsc_free(text);
    assert_int_equal(opsc_read_file(path, &text, &len, 99999), OPSC_ETOOBIG);
    assert_null(text);

    path_in(path, sizeof(path), "nope");
    assert_int_equal(opsc_read_file(path, &text, &len, 10), -ENOENT);
    assert_null(text);
    assert_int_equal(opsc_read_file(tmpdir, &text, NULL, 10), -EISDIR);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abspath, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rm_rf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lockfile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
