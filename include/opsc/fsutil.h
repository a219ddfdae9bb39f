#ifndef OPSC_FSUTIL_H
#define OPSC_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Start-up file-system helpers (blocking; used before the loop runs or in tests). */

/** mkdir -p with `mode` for created directories. 0 or negative errno (UV_* compatible). */
int opsc_mkdir_p(const char *path, mode_t mode);

/** Absolute, normalized path of `path` (need not exist) into out. 0 or negative errno. */
int opsc_abspath(const char *path, char *out, size_t outlen);

/** Remove a directory tree (tests). 0 or negative errno. */
int opsc_rm_rf(const char *path);

/**
 * Take an exclusive, non-blocking lock on `path` (created 0644) and write our
 * PID into it. On contention returns OPSC_ELOCKED and *holder_pid gets the
 * PID recorded by the holder (0 if unknown). The fd stays open for the life of
 * the process (*fd_out). 0 or negative error.
 */
int opsc_lockfile_acquire(const char *path, int *fd_out, long *holder_pid);
void opsc_lockfile_release(int fd, const char *path);

/** Read a whole small file into a NUL-terminated heap buffer. 0 or negative errno. */
int opsc_read_file(const char *path, char **out, size_t *len_out, size_t max_len);

#endif
