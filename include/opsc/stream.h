#ifndef OPSC_STREAM_H
#define OPSC_STREAM_H

/*
 * The live feed (issue 4 items 5 and 6): GET /api/v1/stream upgraded to a
 * WebSocket (opsc/ws.h). A client is subscribed first, then sent a snapshot
 * of the matching open alerts (active, acknowledged, suppressed unless its
 * filter names statuses) as {"type": "snapshot", "alerts": [...], "more"},
 * then every committed change that matches its filter as {"type":
 * "alert.created|updated|resolved|suppressed|acknowledged|reopened|expired",
 * "alert": {...}}. Filters come from the query string (the names of
 * GET /api/v1/alerts) and are replaced by a client message
 * {"type": "filter", "filters": {"severity": "critical,major", ...}}, which
 * is answered by a new snapshot. Status changes are sent whatever the
 * client's status filter says, so that a client learns an alert left it.
 *
 * Changes come from the store's commit hook (opsc_stream_committed), and
 * from other instances on the same database through NOTIFY
 * opsc_alert_changes (ids only: the rows are read back). Rows are read with
 * one query at a time, snapshots included, so a client never receives a
 * state older than its snapshot; each change is serialized once, in a
 * refcounted frame shared by every client. A client that does not keep up
 * has its queue coalesced per alert (the latest state replaces the queued
 * one); when more than stream.max_pending distinct alerts wait it is closed
 * with 1013 and counted.
 */

#include <stddef.h>

#include <uv.h>

#include "opsc/buf.h"
#include "opsc/pg.h"
#include "opsc/store_sink.h"

typedef struct opsc_stream_s opsc_stream_t;
struct opsc_ops_server_s;

typedef struct opsc_stream_options_s {
    size_t max_pending;   /* distinct alerts queued for one client before 1013 */
    size_t max_message;   /* largest client message (1009 beyond) */
    int ping_interval_ms; /* heartbeat; a client silent for two intervals is closed */
    size_t snapshot_page; /* alerts per snapshot message */
    size_t snapshot_max;  /* alerts in a snapshot at most; beyond: "truncated": true */
} opsc_stream_options_t;

int opsc_stream_create(uv_loop_t *loop, opsc_pg_pool_t *pool, const opsc_stream_options_t *opts,
                       opsc_stream_t **out);
int opsc_stream_add_routes(opsc_stream_t *st, struct opsc_ops_server_s *srv);
/** After the schema is migrated: LISTEN for other instances' changes. */
void opsc_stream_start(opsc_stream_t *st);
/** The store's commit hook (opsc_store_set_commit_cb): arg is the stream. */
void opsc_stream_committed(const opsc_store_committed_t *items, size_t n, void *arg);
/** Stop the timer; clients are closed by the HTTP server's close. done runs from a close cb. */
void opsc_stream_close(opsc_stream_t *st, void (*done)(void *arg), void *arg);
/** Free; after opsc_stream_close's done and once the HTTP server is closed. */
void opsc_stream_destroy(opsc_stream_t *st);
void opsc_stream_metrics(opsc_buf_t *out, void *arg);

#endif
