#ifndef OPSC_EMBEDDED_PG_H
#define OPSC_EMBEDDED_PG_H

#include <uv.h>

#include "opsc/buf.h"

/*
 * Embedded PostgreSQL: when no database URL is configured, the server runs
 * its own cluster as a supervised child.
 *
 * - The cluster lives in `dir` (default <data_dir>/pg). When we run as root,
 *   the child runs as an unprivileged user (default "postgres"); if that user
 *   cannot traverse the path to `dir` (e.g. under /root), the cluster moves to
 *   /var/lib/opsconductor/<hash of the absolute data dir>/pg and the log says so.
 * - First start runs initdb (asynchronously, through uv_spawn).
 * - The child listens only on a unix socket in a private directory
 *   (listen_addresses=''), never on TCP.
 * - A leftover postmaster of this cluster (our previous process was killed)
 *   is stopped before we start ours.
 * - If the child dies, it is restarted with exponential backoff.
 * - Stop: SIGINT (fast shutdown), then SIGKILL after the bound.
 *
 * Layout: cluster in `dir`; unix socket in the sibling `pg-run` (0700, owned
 * by the child user; a private /tmp/opsc-pg-XXXXXX when that path would not
 * fit sun_path); <data_dir>/pg.location names the cluster dir. The cluster's
 * superuser and database are both "opsconductor", trust auth over the socket
 * only (the socket dir is 0700).
 *
 * Timing (2 cores, ext4): first start (initdb + start + createdb) about
 * 1.5 s; a later start about 50-150 ms; a restart after kill -9 about 0.4 s.
 *
 * Threading: loop thread only. Not reentrant except as documented below.
 */

typedef struct opsc_embedded_pg_s opsc_embedded_pg_t;

typedef struct opsc_embedded_pg_options_s {
    const char *data_dir; /* the server's data dir (absolute or relative) */
    const char *dir;      /* cluster dir; NULL = <data_dir>/pg */
    const char *user;     /* child user when root; NULL = "postgres" */
    const char *bindir;   /* NULL = discover */
} opsc_embedded_pg_options_t;

/**
 * State callback: running=1 when postgres accepts connections on its socket
 * (conninfo then names it), 0 when it stopped or died. `fatal` is set when
 * it cannot be started at all (initdb failed, no binaries).
 *
 * Order: 1 once ready (on a first start only after initdb and createdb);
 * if the child dies, 0 then, after the automatic restart, 1 again (0 is only
 * reported after a 1). fatal=1 comes with running=0 and nothing follows it:
 * call _stop(). No callback at all once _stop() was called. The callback may
 * call _stop() (never frees synchronously).
 */
typedef void (*opsc_embedded_pg_cb)(opsc_embedded_pg_t *epg, int running, int fatal, void *arg);

/**
 * Resolve binaries, user and directories (blocking: start-up only; may create
 * and chown directories, may relocate the cluster as described above).
 * 0, or a negative error with a human-readable reason in errbuf
 * (OPSC_ENOTFOUND: no binaries or no such user; OPSC_ECONFIG: unusable dirs).
 * The object is freed only through _stop().
 */
int opsc_embedded_pg_create(uv_loop_t *loop, const opsc_embedded_pg_options_t *opts,
                            opsc_embedded_pg_cb cb, void *arg, opsc_embedded_pg_t **out,
                            char *errbuf, size_t errlen);
/**
 * initdb if needed, then start the child. Asynchronous; progress via the
 * callback. Blocks (up to ~7 s) only to stop a postmaster left on this cluster
 * by a killed previous process. A negative return (initdb could not be
 * spawned, started twice) means no callback will come; _stop() still frees.
 */
int opsc_embedded_pg_start(opsc_embedded_pg_t *epg);
/** libpq conninfo for the running cluster ("host=/sock/dir port=5432 dbname=opsconductor ..."). */
const char *opsc_embedded_pg_conninfo(const opsc_embedded_pg_t *epg);
/** Absolute cluster directory actually used (after any relocation, see above). */
const char *opsc_embedded_pg_cluster_dir(const opsc_embedded_pg_t *epg);
/** Directory holding the unix socket (the conninfo's host). */
const char *opsc_embedded_pg_socket_dir(const opsc_embedded_pg_t *epg);
/** PID of the postmaster child, 0 if none. */
int opsc_embedded_pg_pid(const opsc_embedded_pg_t *epg);
int opsc_embedded_pg_running(const opsc_embedded_pg_t *epg);
/**
 * Stop the child (fast shutdown, SIGKILL after timeout_ms), then free; `done` after exit.
 * `done` (may be NULL) always runs later from the loop, never inside this call, once every
 * process has exited and every handle is closed; `epg` is freed before it runs. A second call
 * is ignored. Unregister the metrics collector first.
 */
void opsc_embedded_pg_stop(opsc_embedded_pg_t *epg, int timeout_ms, void (*done)(void *arg),
                           void *arg);
/**
 * Metrics collector (opsc_metrics_collect_cb; arg = epg): opsc_embedded_pg_up,
 * opsc_embedded_pg_restarts_total, opsc_embedded_pg_pid.
 */
void opsc_embedded_pg_metrics(opsc_buf_t *out, void *epg);

/** Locate PostgreSQL server binaries (dir containing initdb and postgres). 0 or OPSC_ENOTFOUND. */
int opsc_embedded_pg_find_bindir(char *out, size_t outlen);

#endif
