#ifndef OPSC_STORE_EMBEDDED_PG_INT_H
#define OPSC_STORE_EMBEDDED_PG_INT_H

#include <stddef.h>
#include <sys/types.h>

/* Module-private helpers of src/store/embedded_pg.c, exposed for its unit test. */

/** 1 when `bindir` holds executable `initdb` and `postgres`, else 0. */
int opsc__epg_has_server_binaries(const char *bindir);

/**
 * 1 when a process with exactly `uid`/`gid` (no supplementary groups: libuv's
 * UV_PROCESS_SETGID drops them) may search every existing ancestor directory
 * of `path` (symlinks resolved); components that do not exist yet count as
 * searchable because we create them 0755. Otherwise 0, and `blocker` (if not
 * NULL) names the first directory that stops it.
 */
int opsc__epg_can_traverse(const char *path, uid_t uid, gid_t gid, char *blocker, size_t blen);

/** "/var/lib/opsconductor/<first 16 hex digits of SHA-256(abs_data_dir)>". 0 or negative. */
int opsc__epg_relocation_base(const char *abs_data_dir, char *out, size_t outlen);

/**
 * Parse the text of postmaster.pid: PID (line 1) and status (line 8, trailing
 * blanks removed; "" when the line is absent). 0 or OPSC_EPARSE.
 */
int opsc__epg_parse_pidfile(const char *text, long *pid, char *status, size_t slen);

/** 1 when `pid` is a live (not zombie) postgres whose data directory is `cluster`. */
int opsc__epg_is_cluster_postmaster(long pid, const char *cluster);

/** 1 when `pid` does not exist any more or is a zombie. */
int opsc__epg_pid_gone(long pid);

/**
 * Number of live postgres processes (postmaster and its children) whose
 * working directory is `cluster` (postgres chdirs into its data directory).
 * With `sig` != 0, sends them that signal. Scans /proc; blocking.
 */
int opsc__epg_cluster_processes(const char *cluster, int sig);

#endif
