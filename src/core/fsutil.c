/*
 * Start-up file-system helpers. Blocking by design: they run before the loop
 * starts (data dir, lock file, config file) or in tests.
 *
 * Errors are negative errno values, which are libuv's UV_E* codes on Linux,
 * so opsc_strerror() describes them.
 */
#include "opsc/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "opsc/buf.h"
#include "opsc/error.h"

int opsc_mkdir_p(const char *path, mode_t mode) {
    char buf[PATH_MAX];
    struct stat st;
    size_t len = path != NULL ? strlen(path) : 0;
    if (len == 0) {
        return -EINVAL;
    }
    if (len >= sizeof(buf)) {
        return -ENAMETOOLONG;
    }
    memcpy(buf, path, len + 1);
    /* Create each prefix ending before a '/', then the whole path. */
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') {
            continue;
        }
        if (buf[i - 1] == '/') {
            continue; /* "a//b" */
        }
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, mode) != 0) {
            int err = errno;
            if (err != EEXIST) {
                return -err;
            }
            if (stat(buf, &st) != 0) {
                return -errno;
            }
            if (!S_ISDIR(st.st_mode)) {
                return -ENOTDIR;
            }
        }
        buf[i] = saved;
    }
    return 0;
}

int opsc_abspath(const char *path, char *out, size_t outlen) {
    char tmp[PATH_MAX * 2];
    if (path == NULL || path[0] == '\0') {
        return -EINVAL;
    }
    if (path[0] == '/') {
        if (strlen(path) >= sizeof(tmp)) {
            return -ENAMETOOLONG;
        }
        strcpy(tmp, path);
    } else {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof(cwd)) == NULL) {
            return -errno;
        }
        int n = snprintf(tmp, sizeof(tmp), "%s/%s", cwd, path);
        if (n < 0 || (size_t)n >= sizeof(tmp)) {
            return -ENAMETOOLONG;
        }
    }

    /*
     * Normalize textually, component by component: "" and "." vanish, ".."
     * drops the previous component (and stays at "/" at the top). Symlinks
     * are not resolved: the path need not exist.
     */
    size_t o = 0;
    const char *p = tmp;
    if (outlen < 2) {
        return -ENAMETOOLONG;
    }
    while (*p != '\0') {
        while (*p == '/') {
            p++;
        }
        const char *start = p;
        while (*p != '\0' && *p != '/') {
            p++;
        }
        size_t clen = (size_t)(p - start);
        if (clen == 0 || (clen == 1 && start[0] == '.')) {
            continue;
        }
        if (clen == 2 && start[0] == '.' && start[1] == '.') {
            while (o > 0 && out[o - 1] != '/') {
                o--;
            }
            if (o > 0) {
                o--; /* the '/' before the dropped component */
            }
            continue;
        }
        if (o + 1 + clen + 1 > outlen) {
            return -ENAMETOOLONG;
        }
        out[o++] = '/';
        memcpy(out + o, start, clen);
        o += clen;
    }
    if (o == 0) {
        out[o++] = '/';
    }
    out[o] = '\0';
    return 0;
}

/* Remove everything inside the directory `dfd` (closed here), never following symlinks. */
static int opsc__rm_rf_at(int dfd) {
    int rc = 0;
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        rc = -errno;
        close(dfd);
        return rc;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
            continue;
        }
        if (unlinkat(dirfd(d), name, 0) == 0) {
            continue;
        }
        if (errno != EISDIR && errno != EPERM) {
            if (errno != ENOENT && rc == 0) {
                rc = -errno;
            }
            continue;
        }
        int sub = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
            int err = errno;
            /* an empty directory we may not read (mode 0) can still be removed */
            if (unlinkat(dirfd(d), name, AT_REMOVEDIR) != 0 && rc == 0) {
                rc = -err;
            }
            continue;
        }
        int r = opsc__rm_rf_at(sub);
        if (r == 0 && unlinkat(dirfd(d), name, AT_REMOVEDIR) != 0) {
            r = -errno;
        }
        if (r != 0 && rc == 0) {
            rc = r;
        }
    }
    closedir(d);
    return rc;
}

int opsc_rm_rf(const char *path) {
    struct stat st;
    if (path == NULL || path[0] == '\0') {
        return -EINVAL;
    }
    if (lstat(path, &st) != 0) {
        return errno == ENOENT ? 0 : -errno;
    }
    if (!S_ISDIR(st.st_mode)) {
        return unlink(path) == 0 ? 0 : -errno;
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    int rc = opsc__rm_rf_at(fd);
    if (rc != 0) {
        return rc;
    }
    return rmdir(path) == 0 ? 0 : -errno;
}

/* PID recorded in an open lock file, 0 if unreadable. */
static long opsc__lockfile_read_pid(int fd) {
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    if (end == buf || pid <= 0) {
        return 0;
    }
    return pid;
}

int opsc_lockfile_acquire(const char *path, int *fd_out, long *holder_pid) {
    if (holder_pid != NULL) {
        *holder_pid = 0;
    }
    *fd_out = -1;
    /*
     * The holder unlinks the file on release. If we opened the file before
     * that and locked it after, we hold a lock on a file nobody else can
     * find: check that the locked file is still the one at `path`, else
     * start over. A handful of rounds is plenty; it only loops on races.
     */
    for (int attempt = 0; attempt < 16; attempt++) {
        struct stat st_fd, st_path;
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            return -errno;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int err = errno;
            if (err == EWOULDBLOCK) {
                if (holder_pid != NULL) {
                    *holder_pid = opsc__lockfile_read_pid(fd);
                }
                close(fd);
                return OPSC_ELOCKED;
            }
            close(fd);
            return -err;
        }
        if (fstat(fd, &st_fd) != 0) {
            int err = errno;
            close(fd);
            return -err;
        }
        if (stat(path, &st_path) != 0 || st_fd.st_dev != st_path.st_dev ||
            st_fd.st_ino != st_path.st_ino) {
            close(fd);
            continue;
        }
        char pid[32];
        int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
            int err = errno != 0 ? errno : EIO;
            close(fd);
            return -err;
        }
        *fd_out = fd;
        return 0;
    }
    return OPSC_ELOCKED;
}

void opsc_lockfile_release(int fd, const char *path) {
    if (fd < 0) {
        return;
    }
    /* Unlink while still holding the lock, so no one can lock the old inode in between. */
    if (path != NULL) {
        unlink(path);
    }
    close(fd);
}

int opsc_read_file(const char *path, char **out, size_t *len_out, size_t max_len) {
    int rc = 0;
    char *data = NULL;
    size_t len = 0, cap = 0;
    *out = NULL;
    if (len_out != NULL) {
        *len_out = 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    for (;;) {
        if (cap - len < 4096 + 1) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *p = opsc_realloc(data, ncap);
            if (p == NULL) {
                rc = OPSC_ENOMEM;
                goto error;
            }
            data = p;
            cap = ncap;
        }
        ssize_t n = read(fd, data + len, cap - len - 1);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            rc = -errno;
            goto error;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
        if (len > max_len) {
            rc = OPSC_ETOOBIG;
            goto error;
        }
    }
    close(fd);
    data[len] = '\0';
    *out = data;
    if (len_out != NULL) {
        *len_out = len;
    }
    return 0;

error:
    opsc_free(data);
    close(fd);
    return rc;
}
