/*
 * The server's lifecycle on one loop.
 *
 * start:    data dir lock -> loop lag -> HTTP and UDP listeners -> database
 *           (embedded child, or the configured URL) -> pool -> migrations
 * ready:    writer connected, schema migrated, every listener bound
 * shutdown: stop accepting (listeners closed) -> drain the pool's pending
 *           work within shutdown_timeout -> close the pool -> stop the
 *           embedded postgres -> close the remaining handles; uv_run returns
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "opsc/alerts_api.h"
#include "opsc/audit.h"
#include "opsc/auth.h"
#include "opsc/buf.h"
#include "opsc/config.h"
#include "opsc/crud.h"
#include "opsc/dns.h"
#include "opsc/embedded_pg.h"
#include "opsc/error.h"
#include "opsc/fsutil.h"
#include "opsc/ingest.h"
#include "opsc/log.h"
#include "opsc/loopstat.h"
#include "opsc/maintenance.h"
#include "opsc/metrics.h"
#include "opsc/migrate.h"
#include "opsc/namefill.h"
#include "opsc/normalize.h"
#include "opsc/openapi.h"
#include "opsc/ops_server.h"
#include "opsc/pg.h"
#include "opsc/pipeline.h"
#include "opsc/rate_limit.h"
#include "opsc/server.h"
#include "opsc/snmp_decode.h"
#include "opsc/spool.h"
#include "opsc/store_sink.h"
#include "opsc/stream.h"
#include "opsc/tokens.h"
#include "opsc/udp_listen.h"
#include "opsc/users.h"
#include "opsc/version.h"

#define LOG "server"

typedef enum { PHASE_INIT, PHASE_RUNNING, PHASE_DRAINING, PHASE_STOPPING, PHASE_DONE } phase_t;

struct opsc_server_s {
    uv_loop_t *loop;
    opsc_config_t cfg;
    char *config_path;
    phase_t phase;
    int exit_code;

    char data_dir[4096];
    char lock_path[4200];
    int lock_fd;

    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_timer;
    uint64_t drain_deadline_ns;
    int handles_open;

    opsc_metrics_t *metrics;
    opsc_loopstat_t *loopstat;
    opsc_ops_server_t *http;
    opsc_auth_t *auth;
    opsc_tokens_t *tokens; /* API tokens: created with the pool, loaded once migrated */
    opsc_audit_t *audit;   /* audit_log writer for mutating API requests */
    opsc_users_t *users;   /* users, login sessions: created with the pool, loaded once migrated */
    opsc_crud_t *crud;     /* configuration resources (devices, dependencies, ...) */
    opsc_alerts_api_t *alerts_api; /* alert reads (issue 4 item 4) */
    opsc_stream_t *stream;         /* WebSocket live feed (issue 4 items 5, 6) */
    opsc_ingest_t *ingest;         /* POST /events and webhooks (issue 4 item 4) */
    int audit_closed;
    opsc_udp_listen_t *udp;
    opsc_rate_limit_t *ratelimit; /* snmp.per_source_rate; NULL: off */
    uv_timer_t storm_tick;        /* lets the pipeline resolve quiet trap storms */
    opsc_embedded_pg_t *epg;
    opsc_pg_pool_t *pool;
    opsc_pipeline_t *pipeline;
    opsc_store_t *store;
    opsc_spool_t *spool;

    /*
     * Journal -> store feeding. Every change is appended to the journal, then
     * submitted. Once the store refuses one (full: the database is away), the
     * changes after fed_seq live only in the journal and are read back from
     * disk, in order, when the store has room again ("backlog"); the start-up
     * replay is the same thing from sequence 0.
     */
    uint64_t fed_seq; /* highest journal sequence handed to the store (or skipped) */
    int backlog;      /* changes after fed_seq are fed from the journal */
    int replaying;    /* start-up replay running: the pipeline waits for it */
    int feed_reading;
    opsc_spool_record_t *feed;
    size_t feed_n, feed_i;
    uv_timer_t feed_timer;
    struct seqmap_s {
        uint64_t store_seq, spool_seq;
    } * seqmap; /* store sequence -> journal sequence, for truncation */
    size_t map_head, map_n;
    uint64_t db_durable; /* every journal sequence <= this is committed */
    struct reply_wait_s *rwait_head, *rwait_tail;
    size_t rwait_n;
    uint64_t n_replayed, n_fed_from_journal, n_replies_sent;
    int spool_closing;
    opsc_dns_t *dns;           /* NULL: reverse lookups off */
    opsc_namefill_t *namefill; /* device names from DNS for new alerts */
    int dns_closing;

    /* reference data being loaded for the pipeline */
    opsc_store_mapping_row_t *maps;
    size_t nmaps;
    opsc_store_device_row_t *devs;
    size_t ndevs;
    opsc_store_dependency_row_t *deps;
    size_t ndeps;
    size_t loaded_maps, loaded_devs, loaded_deps; /* in the pipeline's snapshot (gauges) */
    int maps_loaded, devs_loaded, deps_loaded, loading;
    int pipeline_loaded;     /* normalizer and active alerts handed to the pipeline */
    int listening;           /* LISTEN opsc_refdata subscribed */
    uv_timer_t reload_timer; /* debounces reference-data notifications */
    uv_timer_t maint_timer;  /* reloads maintenance occurrences before the horizon runs out */
    int maint_loading, maint_again;
    uint64_t refdata_reloads;
    uint64_t not_ready_drops;
    unsigned char engine_id[OPSC_SNMP_ENGINE_ID_MAX];
    size_t engine_id_len;
    uint32_t engine_boots;

    int migrated;
    int migrating;
    int pipeline_stopping;
    int store_closing;
    int migrations_applied;
    char migrate_error[512];

    uint64_t start_ns;
    time_t start_time;
    uint64_t reloads;
    uint64_t signals_term;
};

static void shutdown_step(opsc_server_t *srv);

/* ---- readiness and metrics ---------------------------------------------- */

static int ready_cb(void *arg, void (*add)(void *ctx, const char *reason), void *ctx) {
    opsc_server_t *srv = arg;
    int ready = 1;
    char why[640];
    if (srv->phase != PHASE_RUNNING) {
        add(ctx, "shutting down");
        return 0;
    }
    if (srv->epg && !opsc_embedded_pg_running(srv->epg)) {
        add(ctx, "embedded PostgreSQL not running");
        ready = 0;
    }
    if (!srv->pool || !opsc_pg_pool_writer_up(srv->pool)) {
        const char *e = srv->pool ? opsc_pg_pool_last_error(srv->pool) : "";
        snprintf(why, sizeof(why), "database not connected%s%s", *e ? ": " : "", e);
        add(ctx, why);
        ready = 0;
    }
    if (srv->migrate_error[0]) {
        snprintf(why, sizeof(why), "migrations failed: %s", srv->migrate_error);
        add(ctx, why);
        ready = 0;
    } else if (!srv->migrated) {
        add(ctx, "database schema not migrated yet");
        ready = 0;
    }
    if (!srv->http) {
        add(ctx, "HTTP listeners not bound");
        ready = 0;
    }
    if (!srv->udp) {
        add(ctx, "SNMP listeners not bound");
        ready = 0;
    }
    if (!srv->pipeline_loaded || !srv->pipeline || !opsc_pipeline_ready(srv->pipeline)) {
        add(ctx, "trap pipeline not loaded (OID mappings, devices, active alerts)");
        ready = 0;
    }
    return ready;
}

static void noop_add(void *ctx, const char *reason) {
    (void)ctx;
    (void)reason;
}

static void server_metrics(opsc_buf_t *out, void *arg) {
    opsc_server_t *srv = arg;
    char labels[128];
    opsc_metrics_family(out, "opsc_build_info", "gauge", "Build information; value is always 1");
    snprintf(labels, sizeof(labels), "version=\"%s\",build_type=\"%s\"", OPSC_VERSION,
             OPSC_BUILD_TYPE);
    opsc_metrics_sample(out, "opsc_build_info", labels, 1);
    opsc_metrics_one_u64(out, "opsc_start_time_seconds", "gauge", "Unix time the server started",
                         (uint64_t)srv->start_time);
    opsc_metrics_family(out, "opsc_uptime_seconds", "gauge", "Seconds since the server started");
    opsc_metrics_sample(out, "opsc_uptime_seconds", NULL,
                        (double)(uv_hrtime() - srv->start_ns) / 1e9);
    opsc_metrics_family(out, "opsc_ready", "gauge", "1 when /ready answers 200");
    opsc_metrics_sample(out, "opsc_ready", NULL, ready_cb(srv, noop_add, NULL));
    opsc_metrics_family(out, "opsc_schema_migrations", "gauge",
                        "Migrations known to this build, and applied by this process");
    opsc_metrics_sample_u64(out, "opsc_schema_migrations", "state=\"known\"",
                            opsc_migrations_count);
    opsc_metrics_sample_u64(out, "opsc_schema_migrations", "state=\"applied_by_this_process\"",
                            (uint64_t)srv->migrations_applied);
    opsc_metrics_one_u64(out, "opsc_config_reloads_total", "counter", "SIGHUP reloads handled",
                         srv->reloads);
    opsc_metrics_family(out, "opsc_database_embedded", "gauge",
                        "1 when the server runs its own PostgreSQL");
    opsc_metrics_sample(out, "opsc_database_embedded", NULL, srv->epg ? 1 : 0);
}

static void render_metrics(void *arg, opsc_buf_t *out) {
    opsc_server_t *srv = arg;
    opsc_metrics_render(srv->metrics, out);
}

static void collect_pool(opsc_buf_t *out, void *arg) {
    opsc_server_t *srv = arg;
    if (srv->pool) {
        opsc_pg_pool_metrics(out, srv->pool);
    }
}

static void collect_epg(opsc_buf_t *out, void *arg) {
    opsc_server_t *srv = arg;
    if (srv->epg) {
        opsc_embedded_pg_metrics(out, srv->epg);
    }
}

static void collect_udp(opsc_buf_t *out, void *arg) {
    opsc_server_t *srv = arg;
    if (srv->udp) {
        opsc_udp_listen_metrics(out, srv->udp);
    }
}

static void collect_ratelimit(opsc_buf_t *out, void *arg) {
    opsc_server_t *srv = arg;
    opsc_rate_limit_metrics(out, srv->ratelimit);
}

static void collect_pipeline(opsc_buf_t *out, void *arg) {
    opsc_server_t *srv = arg;
    opsc_metrics_one_u64(out, "opsc_trap_not_ready_dropped_total", "counter",
                         "Datagrams dropped because the pipeline was not loaded yet (start-up)",
                         srv->not_ready_drops);
    opsc_metrics_one_u64(out, "opsc_refdata_reloads_total", "counter",
                         "OID mappings and devices reloaded after a change in the database",
                         srv->refdata_reloads);
    opsc_metrics_one_u64(out, "opsc_refdata_oid_mappings", "gauge",
                         "OID mapping rows in the pipeline's snapshot", srv->loaded_maps);
    opsc_metrics_one_u64(out, "opsc_refdata_devices", "gauge",
                         "Device rows in the pipeline's snapshot", srv->loaded_devs);
    opsc_metrics_one_u64(out, "opsc_refdata_dependencies", "gauge",
                         "Dependencies in the pipeline's snapshot", srv->loaded_deps);
    if (srv->pipeline) {
        opsc_pipeline_metrics(out, srv->pipeline);
    }
    if (srv->store) {
        opsc_store_metrics(out, srv->store);
    }
    if (srv->dns) {
        opsc_dns_metrics(out, srv->dns);
    }
    if (srv->namefill) {
        opsc_namefill_metrics(out, srv->namefill);
    }
}

static void collect_spool(opsc_buf_t *out, void *arg) {
    opsc_server_t *srv = arg;
    if (srv->spool) {
        opsc_spool_metrics(out, srv->spool);
    }
    opsc_metrics_one_u64(out, "opsc_spool_replayed_total", "counter",
                         "Journal records replayed into the store at start-up", srv->n_replayed);
    opsc_metrics_one_u64(out, "opsc_spool_fed_total", "counter",
                         "Journal records fed to the store from disk after it had been full",
                         srv->n_fed_from_journal);
    opsc_metrics_one_u64(out, "opsc_spool_backlog", "gauge",
                         "1 while changes reach the store from the journal (database behind)",
                         (uint64_t)srv->backlog);
    opsc_metrics_one_u64(out, "opsc_spool_replies_waiting", "gauge",
                         "INFORM answers waiting for the journal sync", (uint64_t)srv->rwait_n);
}

static void collect_loop(opsc_buf_t *out, void *arg) {
    opsc_server_t *srv = arg;
    if (srv->loopstat) {
        opsc_loopstat_metrics(out, srv->loopstat);
    }
}

/* ---- database ----------------------------------------------------------- */

/* ---- trap pipeline: reference data, changes, replies ---------------------- */

static void maybe_hand_refdata(opsc_server_t *srv);

static void on_mappings(opsc_store_mapping_row_t *rows, size_t n, int err, void *arg) {
    opsc_server_t *srv = arg;
    if (err) {
        opsc_log_err(LOG, "loading oid_mappings failed (%s); retrying when the database is back",
                     opsc_strerror(err));
        srv->loading = 0;
        return;
    }
    srv->maps = rows;
    srv->nmaps = n;
    srv->maps_loaded = 1;
    maybe_hand_refdata(srv);
}

static void on_devices(opsc_store_device_row_t *rows, size_t n, int err, void *arg) {
    opsc_server_t *srv = arg;
    if (err) {
        opsc_log_err(LOG, "loading devices failed (%s); retrying when the database is back",
                     opsc_strerror(err));
        srv->loading = 0;
        return;
    }
    srv->devs = rows;
    srv->ndevs = n;
    srv->devs_loaded = 1;
    maybe_hand_refdata(srv);
}

static void on_dependencies(opsc_store_dependency_row_t *rows, size_t n, int err, void *arg) {
    opsc_server_t *srv = arg;
    if (err) {
        opsc_log_err(LOG, "loading dependencies failed (%s); retrying when the database is back",
                     opsc_strerror(err));
        srv->loading = 0;
        return;
    }
    opsc_store_dependency_rows_free(srv->deps, srv->ndeps); /* left by a failed load */
    srv->deps = rows;
    srv->ndeps = n;
    srv->deps_loaded = 1;
    maybe_hand_refdata(srv);
}

static void on_active(opsc_alert_t **alerts, size_t n, int err, void *arg) {
    opsc_server_t *srv = arg;
    if (err) {
        opsc_log_err(LOG, "loading active alerts failed (%s); retrying when the database is back",
                     opsc_strerror(err));
        srv->loading = 0;
        return;
    }
    if (!srv->pipeline || opsc_pipeline_load_active(srv->pipeline, alerts, n) != 0) {
        opsc_store_alerts_free(alerts, n);
        srv->loading = 0;
        return;
    }
    /* Records are ordered: the normalizer went first, so traps may flow now. */
    srv->pipeline_loaded = 1;
    srv->loading = 0;
    opsc_log_info(LOG, "trap pipeline loaded: %zu active alerts", n);
}

static void maybe_hand_refdata(opsc_server_t *srv) {
    if (!srv->maps_loaded || !srv->devs_loaded || !srv->deps_loaded || !srv->pipeline) {
        return;
    }
    char err[512] = "";
    opsc_oid_mapping_t *rows = opsc_calloc(srv->nmaps ? srv->nmaps : 1, sizeof(*rows));
    opsc_device_ref_t *devs = opsc_calloc(srv->ndevs ? srv->ndevs : 1, sizeof(*devs));
    opsc_normalizer_t *n = NULL;
    if (rows && devs) {
        for (size_t i = 0; i < srv->nmaps; i++) {
            const opsc_store_mapping_row_t *m = &srv->maps[i];
            rows[i] = (opsc_oid_mapping_t){.id = m->id,
                                           .oid_pattern = m->oid_pattern,
                                           .vendor = m->vendor,
                                           .alert_type = m->alert_type,
                                           .category = m->category,
                                           .default_severity = m->default_severity,
                                           .title_template = m->title_template,
                                           .description = m->description,
                                           .is_clear_event = m->is_clear_event,
                                           .clear_oid_pattern = m->clear_oid_pattern,
                                           .mib_name = m->mib_name,
                                           .mib_object = m->mib_object};
        }
        for (size_t i = 0; i < srv->ndevs; i++) {
            devs[i] = (opsc_device_ref_t){.ip = srv->devs[i].ip_address,
                                          .name = srv->devs[i].name,
                                          .site = srv->devs[i].site,
                                          .impact = srv->devs[i].impact};
        }
        n = opsc_normalizer_create(rows, srv->nmaps, devs, srv->ndevs, err, sizeof(err));
    }
    if (n && srv->ndeps > 0) {
        opsc_dependency_ref_t *deps = opsc_calloc(srv->ndeps, sizeof(*deps));
        for (size_t i = 0; deps && i < srv->ndeps; i++) {
            deps[i] = (opsc_dependency_ref_t){.device = srv->deps[i].device_ip,
                                              .upstream = srv->deps[i].depends_on_ip};
        }
        if (!deps || opsc_normalizer_set_dependencies(n, deps, srv->ndeps) != 0) {
            opsc_log_err(LOG, "out of memory for the dependency graph: no dependency suppression");
        }
        opsc_free(deps);
    }
    opsc_free(rows);
    opsc_free(devs);
    opsc_store_mapping_rows_free(srv->maps, srv->nmaps);
    opsc_store_device_rows_free(srv->devs, srv->ndevs);
    srv->maps = NULL;
    srv->devs = NULL;
    opsc_store_dependency_rows_free(srv->deps, srv->ndeps);
    srv->deps = NULL;
    srv->maps_loaded = srv->devs_loaded = srv->deps_loaded = 0;
    if (!n) {
        opsc_log_err(LOG, "cannot use the OID mappings: %s", err[0] ? err : "out of memory");
        if (srv->pipeline_loaded) {
            /* A bad row added at run time: keep the snapshot in use. */
            srv->loading = 0;
            return;
        }
        opsc_server_shutdown(srv, 1);
        return;
    }
    opsc_log_info(LOG, "OID mappings: %zu rules; devices: %zu; dependencies: %zu", srv->nmaps,
                  srv->ndevs, opsc_normalizer_dependency_count(n));
    size_t ldeps = opsc_normalizer_dependency_count(n);
    if (opsc_pipeline_set_normalizer(srv->pipeline, n) == 0) {
        srv->loaded_maps = srv->nmaps;
        srv->loaded_devs = srv->ndevs;
        srv->loaded_deps = ldeps;
    } else {
        opsc_normalizer_destroy(n);
        srv->loading = 0;
        return;
    }
    if (srv->pipeline_loaded) {
        srv->refdata_reloads++;
        srv->loading = 0; /* a reload: the active alerts are the pipeline's already */
        return;
    }
    if (opsc_store_load_active(srv->store, on_active, srv) != 0) {
        srv->loading = 0;
    }
}

/*
 * Maintenance windows reach the pipeline as UTC occurrences over a horizon
 * PostgreSQL expands (time-zone rules stay there); the hourly reload keeps
 * the horizon ahead of the clock, NOTIFY opsc_refdata brings edits at once.
 */
#define MAINT_PAST_US (24LL * 3600 * 1000000)
#define MAINT_HORIZON_US (2LL * 24 * 3600 * 1000000)
#define MAINT_RELOAD_MS (3600u * 1000u)

static void load_maintenance(opsc_server_t *srv);

static void on_maintenance(opsc_store_maint_row_t *rows, size_t n, int err, void *arg) {
    opsc_server_t *srv = arg;
    srv->maint_loading = 0;
    if (err) {
        opsc_log_err(LOG,
                     "loading maintenance windows failed (%s); the pipeline keeps the last ones",
                     opsc_strerror(err));
        return;
    }
    opsc_maint_row_t *mr = opsc_calloc(n ? n : 1, sizeof(*mr));
    opsc_maint_t *m = NULL;
    for (size_t i = 0; mr && i < n; i++) {
        mr[i] = (opsc_maint_row_t){.window_id = rows[i].window_id,
                                   .name = rows[i].name,
                                   .device_ip_cidr = rows[i].device_ip_cidr,
                                   .device_name_glob = rows[i].device_name_glob,
                                   .site = rows[i].site,
                                   .category = rows[i].category,
                                   .alert_type = rows[i].alert_type,
                                   .start_us = rows[i].start_us,
                                   .end_us = rows[i].end_us};
    }
    if (mr) {
        m = opsc_maint_create(mr, n);
    }
    opsc_free(mr);
    opsc_store_maint_rows_free(rows, n);
    if (!m) {
        opsc_log_err(LOG, "out of memory for the maintenance windows; keeping the last ones");
    } else if (!srv->pipeline || srv->pipeline_stopping ||
               opsc_pipeline_set_maintenance(srv->pipeline, m) != 0) {
        opsc_maint_destroy(m);
    } else {
        opsc_log_info(LOG, "maintenance windows: %zu with occurrences in the next %lld h",
                      opsc_maint_window_count(m), (long long)(MAINT_HORIZON_US / 3600000000LL));
    }
    if (srv->maint_again) {
        srv->maint_again = 0;
        load_maintenance(srv);
    }
}

static void load_maintenance(opsc_server_t *srv) {
    if (!srv->store || srv->phase != PHASE_RUNNING || !srv->pipeline) {
        return;
    }
    if (srv->maint_loading) {
        srv->maint_again = 1; /* a change arrived during the load: read it once more after */
        return;
    }
    int64_t now = opsc_now_us();
    if (opsc_store_load_maintenance(srv->store, now - MAINT_PAST_US, now + MAINT_HORIZON_US,
                                    on_maintenance, srv) == 0) {
        srv->maint_loading = 1;
    }
}

static void on_maint_timer(uv_timer_t *t) {
    load_maintenance(t->data);
}

static void load_refdata(opsc_server_t *srv) {
    load_maintenance(srv);
    if (srv->loading || !srv->store || srv->replaying || srv->phase != PHASE_RUNNING) {
        return;
    }
    srv->loading = 1;
    if (opsc_store_load_mappings(srv->store, on_mappings, srv) != 0 ||
        opsc_store_load_devices(srv->store, on_devices, srv) != 0 ||
        opsc_store_load_dependencies(srv->store, on_dependencies, srv) != 0) {
        srv->loading = 0; /* the pool refused: the next writer-up tries again */
    }
}

static void on_reload_timer(uv_timer_t *t) {
    opsc_server_t *srv = t->data;
    if (srv->loading) {
        uv_timer_start(&srv->reload_timer, on_reload_timer, 100, 0); /* after the current load */
        return;
    }
    load_refdata(srv);
}

/* Reference data changed somewhere (trigger + NOTIFY): reload it, debounced. */
static void on_refdata_notify(const char *channel, const char *payload, void *arg) {
    opsc_server_t *srv = arg;
    (void)channel;
    opsc_log_debug(LOG, "reference data %s: reloading",
                   payload ? payload : "may have changed while not listening");
    if (srv->pipeline_loaded && srv->phase == PHASE_RUNNING) {
        uv_timer_start(&srv->reload_timer, on_reload_timer, 200, 0);
    }
}

/* ---- journal, store and INFORM answers ------------------------------------------ */

#define SEQMAP_MAX 65536
#define FEED_BATCH 4096

typedef struct reply_wait_s {
    struct reply_wait_s *next;
    opsc_change_t *reply;
    uint64_t need; /* journal sequence that must be synced first */
} reply_wait_t;

static void send_reply(opsc_server_t *srv, opsc_change_t *c) {
    if (!c->reply) {
        opsc_ingest_durable(srv->ingest, c->ack_token, c->actions); /* 202 / action outcome */
    } else if (srv->udp) {
        opsc_udp_listen_send(srv->udp, c->listener, c->reply, c->reply_len,
                             (const struct sockaddr *)&c->reply_to);
        srv->n_replies_sent++;
    }
    opsc_change_free(c);
}

/*
 * An INFORM is answered once everything before it is durable. Every change
 * before it was appended to the journal before it was submitted, so "synced
 * in the journal" covers both ways of being durable (DESIGN.md "Durability"),
 * and keeps INFORMs answered while the database is down.
 */
static void release_replies(opsc_server_t *srv, uint64_t synced) {
    while (srv->rwait_head && srv->rwait_head->need <= synced) {
        reply_wait_t *w = srv->rwait_head;
        srv->rwait_head = w->next;
        if (!srv->rwait_head) {
            srv->rwait_tail = NULL;
        }
        srv->rwait_n--;
        send_reply(srv, w->reply);
        opsc_free(w);
    }
}

/* Remember which journal sequence a store sequence stands for. When the map is
 * full the newest entry moves forward: truncation then waits a little longer,
 * it never deletes too early. */
static void seqmap_push(opsc_server_t *srv, uint64_t store_seq, uint64_t spool_seq) {
    if (srv->map_n == SEQMAP_MAX) {
        struct seqmap_s *e = &srv->seqmap[(srv->map_head + srv->map_n - 1) % SEQMAP_MAX];
        e->store_seq = store_seq;
        e->spool_seq = spool_seq;
        return;
    }
    struct seqmap_s *e = &srv->seqmap[(srv->map_head + srv->map_n) % SEQMAP_MAX];
    e->store_seq = store_seq;
    e->spool_seq = spool_seq;
    srv->map_n++;
}

static void feed_kick(opsc_server_t *srv);
static void load_refdata(opsc_server_t *srv);

static void update_durable(opsc_server_t *srv) {
    if (srv->map_n == 0 && srv->fed_seq > srv->db_durable) {
        srv->db_durable = srv->fed_seq; /* nothing in the store: what was fed is done */
    }
    if (srv->spool) {
        opsc_spool_release(srv->spool, srv->db_durable);
    }
    if (srv->replaying && !srv->backlog &&
        srv->db_durable >= opsc_spool_recovered_seq(srv->spool)) {
        srv->replaying = 0;
        opsc_log_info(LOG, "journal replayed: %" PRIu64 " changes are in the database",
                      srv->n_replayed);
        load_refdata(srv);
    }
}

static void on_store_durable(uint64_t durable_seq, void *arg) {
    opsc_server_t *srv = arg;
    while (srv->map_n > 0 && srv->seqmap[srv->map_head].store_seq <= durable_seq) {
        srv->db_durable = srv->seqmap[srv->map_head].spool_seq;
        srv->map_head = (srv->map_head + 1) % SEQMAP_MAX;
        srv->map_n--;
    }
    update_durable(srv);
    feed_kick(srv); /* the store has room again */
}

static void on_spool_synced(uint64_t synced, void *arg) {
    opsc_server_t *srv = arg;
    release_replies(srv, synced);
    feed_kick(srv);
}

/* 0: taken (or skipped for good); 1: the store is full, offer it again later. */
static int submit_one(opsc_server_t *srv, opsc_change_t *c, uint64_t seq) {
    int rc = opsc_store_submit(srv->store, c);
    if (rc == 0) {
        seqmap_push(srv, opsc_store_last_seq(srv->store), seq);
        srv->fed_seq = seq;
        return 0;
    }
    if (rc == OPSC_EQUEUE_FULL || rc == OPSC_ENOMEM || rc == OPSC_ESHUTDOWN) {
        return 1;
    }
    opsc_log_err(LOG, "store refused journal record %" PRIu64 ": %s", seq, opsc_strerror(rc));
    opsc_change_free(c);
    srv->fed_seq = seq;
    return 0;
}

static void on_feed_read(opsc_spool_record_t *recs, size_t n, int err, void *arg) {
    opsc_server_t *srv = arg;
    srv->feed_reading = 0;
    if (err) {
        opsc_log_err(LOG, "reading the journal back failed: %s; trying again", opsc_strerror(err));
        return; /* the feed timer tries again */
    }
    if (n == 0) {
        opsc_spool_records_free(recs, 0);
        /* Nothing readable up to the synced sequence: damaged records, counted by the spool. */
        uint64_t upto = opsc_spool_synced_seq(srv->spool);
        if (upto > srv->fed_seq) {
            srv->fed_seq = upto;
        }
    } else {
        srv->feed = recs;
        srv->feed_n = n;
        srv->feed_i = 0;
    }
    feed_kick(srv);
}

static void feed_free(opsc_server_t *srv) {
    for (size_t i = srv->feed_i; srv->feed && i < srv->feed_n; i++) {
        opsc_change_free(srv->feed[i].change);
        srv->feed[i].change = NULL;
    }
    opsc_spool_records_free(srv->feed, 0);
    srv->feed = NULL;
    srv->feed_n = srv->feed_i = 0;
}

static void feed_kick(opsc_server_t *srv) {
    if (!srv->backlog || !srv->store || srv->store_closing || !srv->spool || srv->feed_reading) {
        return;
    }
    while (srv->feed_i < srv->feed_n) {
        opsc_spool_record_t *r = &srv->feed[srv->feed_i];
        if (r->seq <= srv->fed_seq) {
            opsc_change_free(r->change); /* fed already */
        } else if (submit_one(srv, r->change, r->seq) != 0) {
            return; /* the durable callback comes back here */
        }
        r->change = NULL;
        srv->feed_i++;
        if (srv->replaying) {
            srv->n_replayed++;
        } else {
            srv->n_fed_from_journal++;
        }
    }
    feed_free(srv);
    if (srv->fed_seq >= opsc_spool_last_seq(srv->spool)) {
        srv->backlog = 0;
        uv_timer_stop(&srv->feed_timer);
        if (!srv->replaying) {
            opsc_log_info(LOG, "store caught up with the journal (sequence %" PRIu64 ")",
                          srv->fed_seq);
        }
        update_durable(srv);
        return;
    }
    uint64_t upto = opsc_spool_synced_seq(srv->spool);
    if (srv->fed_seq >= upto) {
        return; /* the synced callback comes back here */
    }
    if (opsc_spool_read(srv->spool, srv->fed_seq, upto, FEED_BATCH, on_feed_read, srv) == 0) {
        srv->feed_reading = 1;
    }
}

static void on_feed_timer(uv_timer_t *t) {
    feed_kick(t->data);
}

static opsc_log_ratelimit_t backlog_log_rl = OPSC_LOG_RATELIMIT_INIT(10000, 1);

static int on_change(opsc_change_t *c, void *arg) {
    opsc_server_t *srv = arg;
    opsc_namefill_change(srv->namefill,
                         c); /* before the journal: a cached name is written at once */
    if (!srv->spool) {
        opsc_change_free(c); /* shutting down after the journal closed */
        return 0;
    }
    if (c->kind == OPSC_CHANGE_REPLY) {
        uint64_t need = opsc_spool_last_seq(srv->spool);
        if (opsc_spool_synced_seq(srv->spool) >= need) {
            send_reply(srv, c);
            return 0;
        }
        reply_wait_t *w = opsc_calloc(1, sizeof(*w));
        if (!w) {
            return 1; /* offered again */
        }
        w->reply = c;
        w->need = need;
        opsc_spool_sync_soon(srv->spool); /* no group-commit window for what someone waits for */
        if (srv->rwait_tail) {
            srv->rwait_tail->next = w;
        } else {
            srv->rwait_head = w;
        }
        srv->rwait_tail = w;
        srv->rwait_n++;
        return 0;
    }
    uint64_t seq = 0;
    int rc = opsc_spool_append(srv->spool, c, &seq);
    if (rc == OPSC_EQUEUE_FULL || rc == OPSC_ENOMEM) {
        return 1; /* journal full: the pipeline waits (logged and counted by the spool) */
    }
    if (rc != 0) {
        opsc_log_err(LOG, "journal refused a change: %s", opsc_strerror(rc));
        opsc_change_free(c);
        return 0;
    }
    if (srv->backlog || !srv->store || srv->store_closing) {
        opsc_change_free(c); /* the journal has it; fed from there */
        if (!srv->backlog) {
            srv->backlog = 1;
        }
        feed_kick(srv);
        return 0;
    }
    if (submit_one(srv, c, seq) != 0) {
        opsc_change_free(c);
        srv->backlog = 1;
        unsigned long long supp = 0;
        if (opsc_log_ratelimit_ok(&backlog_log_rl, &supp)) {
            opsc_log_warn(LOG,
                          "store full (database slow or away): changes after journal sequence "
                          "%" PRIu64 " wait in the journal and are fed from disk%s",
                          srv->fed_seq, supp ? " (more of these suppressed)" : "");
        }
        uv_timer_start(&srv->feed_timer, on_feed_timer, 100, 100);
    }
    return 0;
}

/* A device name that reverse DNS found after its alert was created: journaled like any change. */
static int submit_name_update(opsc_change_t *c, void *arg) {
    return on_change(c, arg);
}

static opsc_log_ratelimit_t rate_log_rl = OPSC_LOG_RATELIMIT_INIT(10000, 20);

/*
 * snmp.per_source_rate, before the ring and before any decoding: a source
 * over its rate is cut here, and at most once a second per source the
 * pipeline hears about it (its trap_storm alert) and the log names it.
 */
static int rate_ok(opsc_server_t *srv, const struct sockaddr *from, uint64_t now_ns) {
    uint64_t dropped = 0;
    opsc_rate_verdict_t v = opsc_rate_limit_check(srv->ratelimit, from, now_ns, &dropped);
    if (v == OPSC_RATE_PASS) {
        return 1;
    }
    if (v == OPSC_RATE_DROP_REPORT) {
        char src[64];
        unsigned long long suppressed = 0;
        opsc_rate_limit_format_source(from, src, sizeof(src));
        if (opsc_log_ratelimit_ok(&rate_log_rl, &suppressed)) {
            opsc_log_warn(LOG,
                          "snmp.per_source_rate: dropping traps from %s over %lld/s (%llu since "
                          "the last report, %llu in all) (%llu similar suppressed)",
                          src, (long long)srv->cfg.snmp.per_source_rate,
                          (unsigned long long)dropped,
                          (unsigned long long)opsc_rate_limit_source_dropped(srv->ratelimit, from),
                          suppressed);
        }
        if (srv->pipeline) {
            (void)opsc_pipeline_push_storm(srv->pipeline, from, dropped);
        }
    }
    return 0;
}

static void on_storm_tick(uv_timer_t *t) {
    opsc_server_t *srv = t->data;
    if (srv->pipeline && srv->phase == PHASE_RUNNING) {
        (void)opsc_pipeline_push_storm(srv->pipeline, NULL, 0);
    }
}

static void on_datagram(const void *data, size_t len, const struct sockaddr *from, uint64_t recv_ns,
                        int listener, void *arg) {
    opsc_server_t *srv = arg;
    if (srv->ratelimit && !rate_ok(srv, from, recv_ns)) {
        return;
    }
    if (!srv->pipeline_loaded) {
        srv->not_ready_drops++;
        return;
    }
    opsc_pipeline_push_datagram(srv->pipeline, data, len, from, listener);
}

static void on_migrated(int err, int applied, const char *message, void *arg) {
    opsc_server_t *srv = arg;
    srv->migrating = 0;
    srv->migrations_applied += applied;
    if (err == 0) {
        srv->migrated = 1;
        srv->migrate_error[0] = '\0';
        opsc_log_info(LOG, "database schema current (%zu migrations, %d applied now)",
                      opsc_migrations_count, applied);
        if (!srv->store) {
            /* The store's own drain bound is the shutdown bound. */
            opsc_store_options_t so = {.drain_timeout_ms = (int)srv->cfg.shutdown_timeout_ms};
            int rc = opsc_store_create(srv->loop, srv->pool, &so, &srv->store);
            if (rc != 0) {
                opsc_log_err(LOG, "cannot create the store: %s", opsc_strerror(rc));
                opsc_server_shutdown(srv, 1);
                return;
            }
            opsc_store_set_durable_cb(srv->store, on_store_durable, srv);
            if (srv->stream) {
                opsc_store_set_commit_cb(srv->store, opsc_stream_committed, srv->stream);
            }
            if (opsc_spool_recovered_seq(srv->spool) > 0) {
                /* What the last run could not write goes first, so that the active
                 * alerts loaded next include it. */
                opsc_log_info(LOG, "replaying the journal (up to sequence %" PRIu64 ")",
                              opsc_spool_recovered_seq(srv->spool));
                srv->replaying = 1;
                srv->backlog = 1;
                uv_timer_start(&srv->feed_timer, on_feed_timer, 100, 100);
                feed_kick(srv);
            }
            uv_timer_start(&srv->maint_timer, on_maint_timer, MAINT_RELOAD_MS, MAINT_RELOAD_MS);
        }
        if (!srv->listening &&
            opsc_pg_listen(srv->pool, "opsc_refdata", on_refdata_notify, srv) == 0) {
            srv->listening = 1;
        }
        if (srv->tokens) {
            opsc_tokens_start(srv->tokens);
            opsc_users_start(srv->users);
        }
        if (srv->stream) {
            opsc_stream_start(srv->stream);
        }
        if (!srv->pipeline_loaded) {
            load_refdata(srv);
        }
        return;
    }
    if (err == OPSC_EDB_CONN_LOST || err == OPSC_ESHUTDOWN) {
        return; /* runs again when the writer is back */
    }
    /* An edited or failing migration stops start-up: never serve on a wrong schema. */
    snprintf(srv->migrate_error, sizeof(srv->migrate_error), "%s", message);
    opsc_log_err(LOG, "cannot start: %s", message);
    opsc_server_shutdown(srv, 1);
}

static void on_writer_state(opsc_pg_pool_t *pool, int up, void *arg) {
    opsc_server_t *srv = arg;
    if (!up) {
        opsc_log_warn(LOG, "database writer connection down: %s", opsc_pg_pool_last_error(pool));
        return;
    }
    if (srv->migrated) {
        /* A load that failed with the connection is retried; and notifications
         * sent while we were away are lost, so reload what may have changed. */
        if (srv->pipeline_loaded) {
            uv_timer_start(&srv->reload_timer, on_reload_timer, 200, 0);
        } else {
            load_refdata(srv);
        }
    }
    if (!srv->migrated && !srv->migrating && srv->phase == PHASE_RUNNING) {
        int rc = opsc_migrate_run(pool, opsc_migrations, opsc_migrations_count, on_migrated, srv);
        if (rc == 0) {
            srv->migrating = 1;
        } else {
            opsc_log_err(LOG, "cannot run migrations: %s", opsc_strerror(rc));
            opsc_server_shutdown(srv, 1);
        }
    }
}

/* Users and sessions (issue 4 item 3): routes, the authenticator's second source, audit. */
static int users_setup(opsc_server_t *srv) {
    const char *admin_token = getenv("OPSC_ADMIN_TOKEN");
    opsc_users_options_t uo = {
        .pbkdf2_iterations = (unsigned)srv->cfg.auth.pbkdf2_iterations,
        .session_ttl_ms = srv->cfg.auth.session_ttl_ms,
        .login_max_failures = (unsigned)srv->cfg.auth.login_max_failures,
        .login_lockout_ms = srv->cfg.auth.login_lockout_ms,
        .bootstrap_admin = !(admin_token && *admin_token),
    };
    int rc = opsc_users_create(srv->loop, srv->pool, &uo, &srv->users);
    if (rc != 0 || (rc = opsc_users_add_routes(srv->users, srv->http)) != 0) {
        return rc;
    }
    opsc_auth_set_users(srv->auth, srv->users);
    opsc_users_set_audit(srv->users, opsc_audit_http, srv->audit);
    opsc_metrics_register(srv->metrics, opsc_users_metrics, srv->users);
    return 0;
}

static int pool_start(opsc_server_t *srv, const char *conninfo) {
    opsc_pg_options_t o = {
        .conninfo = conninfo,
        .readers = (int)srv->cfg.database.readers,
        .queue_max = (int)srv->cfg.database.queue_max,
        .connect_timeout_ms = (int)srv->cfg.database.connect_timeout_ms,
        .reconnect_min_ms = (int)srv->cfg.database.reconnect_min_ms,
        .reconnect_max_ms = (int)srv->cfg.database.reconnect_max_ms,
        .listen = 1,
        .bulk = 1, /* the store's second writer (batches of new alerts written side by side) */
        .application_name = "opsconductord",
    };
    int rc = opsc_pg_pool_create(srv->loop, &o, &srv->pool);
    if (rc != 0) {
        return rc;
    }
    opsc_pg_pool_set_state_cb(srv->pool, on_writer_state, srv);
    if (!srv->tokens) {
        if ((rc = opsc_tokens_create(srv->loop, srv->pool, &srv->tokens)) != 0 ||
            (rc = opsc_tokens_add_routes(srv->tokens, srv->http)) != 0) {
            return rc;
        }
        opsc_auth_set_tokens(srv->auth, srv->tokens);
        opsc_metrics_register(srv->metrics, opsc_tokens_metrics, srv->tokens);
        if ((rc = opsc_audit_create(srv->loop, srv->pool, &srv->audit)) != 0) {
            return rc;
        }
        opsc_ops_server_set_audit(srv->http, opsc_audit_http, srv->audit);
        opsc_metrics_register(srv->metrics, opsc_audit_metrics, srv->audit);
        if ((rc = users_setup(srv)) != 0) {
            return rc;
        }
        if ((rc = opsc_crud_create(srv->pool, &srv->crud)) != 0 ||
            (rc = opsc_crud_add_routes(srv->crud, srv->http)) != 0 ||
            (rc = opsc_openapi_add_routes(srv->http)) != 0) {
            return rc;
        }
        char err[256] = "";
        opsc_ingest_options_t io = {.severity_map = srv->cfg.webhooks.severity_map,
                                    .default_category = srv->cfg.webhooks.default_category};
        if ((rc = opsc_ingest_create(srv->pool, &io, &srv->ingest, err, sizeof(err))) != 0 ||
            (rc = opsc_ingest_add_routes(srv->ingest, srv->http)) != 0) {
            if (err[0]) {
                opsc_log_err(LOG, "%s", err);
            }
            return rc;
        }
        opsc_ingest_set_pipeline(srv->ingest, srv->pipeline);
        opsc_metrics_register(srv->metrics, opsc_ingest_metrics, srv->ingest);
    }
    if (!srv->alerts_api) {
        opsc_stream_options_t so = {
            .max_pending = (size_t)srv->cfg.stream.max_pending,
            .max_message = (size_t)srv->cfg.stream.max_message_bytes,
            .ping_interval_ms = (int)srv->cfg.stream.ping_interval_ms,
        };
        if ((rc = opsc_alerts_api_create(srv->pool, &srv->alerts_api)) != 0 ||
            (rc = opsc_alerts_api_add_routes(srv->alerts_api, srv->http)) != 0 ||
            (rc = opsc_stream_create(srv->loop, srv->pool, &so, &srv->stream)) != 0 ||
            (rc = opsc_stream_add_routes(srv->stream, srv->http)) != 0) {
            return rc;
        }
        opsc_metrics_register(srv->metrics, opsc_stream_metrics, srv->stream);
    }
    return opsc_pg_pool_start(srv->pool);
}

static void on_embedded(opsc_embedded_pg_t *epg, int running, int fatal, void *arg) {
    opsc_server_t *srv = arg;
    if (fatal) {
        opsc_log_err(LOG, "embedded PostgreSQL cannot be started; see the postgres lines above");
        opsc_server_shutdown(srv, 1);
        return;
    }
    if (!running || srv->phase != PHASE_RUNNING) {
        return;
    }
    if (!srv->pool) {
        int rc = pool_start(srv, opsc_embedded_pg_conninfo(epg));
        if (rc != 0) {
            opsc_log_err(LOG, "cannot create the database pool: %s", opsc_strerror(rc));
            opsc_server_shutdown(srv, 1);
        }
    } else {
        /* Restarted child, same socket: the pool reconnects by itself. */
        opsc_pg_pool_set_conninfo(srv->pool, opsc_embedded_pg_conninfo(epg));
    }
}

/* ---- signals and reload ------------------------------------------------- */

static void on_signal(uv_signal_t *h, int signum) {
    opsc_server_t *srv = h->data;
    if (signum == SIGHUP) {
        opsc_server_reload(srv);
        return;
    }
    srv->signals_term++;
    if (srv->signals_term > 1 && srv->phase >= PHASE_DRAINING) {
        opsc_log_warn(LOG, "second %s: skipping the drain",
                      signum == SIGINT ? "SIGINT" : "SIGTERM");
        srv->drain_deadline_ns = 0;
        shutdown_step(srv);
        return;
    }
    opsc_log_info(LOG, "%s received: shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
    opsc_server_shutdown(srv, 0);
}

typedef struct reload_ctx_s {
    opsc_server_t *srv;
    opsc_config_t *next;
    opsc_buf_t applied;
    opsc_buf_t restart;
} reload_ctx_t;

static void reload_key(const opsc_config_key_t *key, void *arg) {
    reload_ctx_t *rc = arg;
    char before[256], after[256];
    opsc_config_format_value(&rc->srv->cfg, key, before, sizeof(before));
    opsc_config_format_value(rc->next, key, after, sizeof(after));
    if (!key->reloadable) {
        opsc_buf_printf(&rc->restart, "%s%s", rc->restart.len ? ", " : "", key->path);
        return;
    }
    if (opsc_config_copy_key(&rc->srv->cfg, rc->next, key) != 0) {
        opsc_buf_printf(&rc->restart, "%s%s (out of memory)", rc->restart.len ? ", " : "",
                        key->path);
        return;
    }
    opsc_buf_printf(&rc->applied, "%s%s (%s -> %s)", rc->applied.len ? ", " : "", key->path, before,
                    after);
}

void opsc_server_reload(opsc_server_t *srv) {
    opsc_config_t next;
    char err[512];
    memset(&next, 0, sizeof(next));
    srv->reloads++;
    if (opsc_config_load(&next, srv->config_path, NULL, err, sizeof(err)) != 0) {
        opsc_log_err(LOG, "SIGHUP: reload failed, keeping the running configuration: %s", err);
        return;
    }
    reload_ctx_t rc = {srv, &next, OPSC_BUF_INIT, OPSC_BUF_INIT};
    opsc_config_diff(&srv->cfg, &next, reload_key, &rc);
    opsc_log_set_level(srv->cfg.log.level);
    opsc_log_set_format(srv->cfg.log.format);
    if (!rc.applied.len && !rc.restart.len) {
        opsc_log_info(LOG, "SIGHUP: configuration reloaded, nothing changed");
    } else {
        opsc_log_info(LOG, "SIGHUP: reloaded: %s; changed but needs a restart: %s",
                      rc.applied.len ? rc.applied.base : "nothing",
                      rc.restart.len ? rc.restart.base : "nothing");
    }
    opsc_buf_free(&rc.applied);
    opsc_buf_free(&rc.restart);
    opsc_config_free(&next);
}

/* ---- shutdown ----------------------------------------------------------- */

static void handle_closed(uv_handle_t *h) {
    opsc_server_t *srv = h->data;
    srv->handles_open--;
}

static void stream_closed(void *arg) {
    opsc_server_t *srv = arg;
    srv->handles_open--;
}

static void finish_shutdown(opsc_server_t *srv) {
    if (srv->phase == PHASE_DONE) {
        return;
    }
    srv->phase = PHASE_DONE;
    opsc_loopstat_close(srv->loopstat);
    srv->loopstat = NULL;
    uv_timer_stop(&srv->drain_timer);
    uv_close((uv_handle_t *)&srv->drain_timer, handle_closed);
    uv_timer_stop(&srv->reload_timer);
    uv_close((uv_handle_t *)&srv->reload_timer, handle_closed);
    uv_close((uv_handle_t *)&srv->maint_timer, handle_closed);
    uv_timer_stop(&srv->feed_timer);
    uv_close((uv_handle_t *)&srv->feed_timer, handle_closed);
    uv_timer_stop(&srv->storm_tick);
    uv_close((uv_handle_t *)&srv->storm_tick, handle_closed);
    uv_close((uv_handle_t *)&srv->sig_term, handle_closed);
    uv_close((uv_handle_t *)&srv->sig_int, handle_closed);
    uv_close((uv_handle_t *)&srv->sig_hup, handle_closed);
    if (srv->stream) {
        srv->handles_open++;
        opsc_stream_close(srv->stream, stream_closed, srv);
    }
    opsc_ingest_fail_pending(srv->ingest); /* acks that never came (journal closed early) */
    if (srv->lock_fd >= 0) {
        opsc_lockfile_release(srv->lock_fd, srv->lock_path);
        srv->lock_fd = -1;
    }
    opsc_log_info(LOG, "stopped (exit status %d)", srv->exit_code);
}

static void on_epg_stopped(void *arg) {
    opsc_server_t *srv = arg;
    srv->epg = NULL;
    shutdown_step(srv);
}

static void on_pool_closed(void *arg) {
    opsc_server_t *srv = arg;
    srv->pool = NULL;
    shutdown_step(srv);
}

static void on_http_closed(void *arg) {
    opsc_server_t *srv = arg;
    srv->http = NULL;
    shutdown_step(srv);
}

static void on_udp_closed(void *arg) {
    opsc_server_t *srv = arg;
    srv->udp = NULL;
    shutdown_step(srv);
}

static void on_pipeline_stopped(void *arg) {
    opsc_server_t *srv = arg;
    srv->pipeline = NULL;
    if (srv->ingest) {
        opsc_ingest_set_pipeline(srv->ingest, NULL);
    }
    shutdown_step(srv);
}

static void on_dns_closed(void *arg) {
    opsc_server_t *srv = arg;
    srv->dns = NULL;
    shutdown_step(srv);
}

static void on_store_closed(void *arg) {
    opsc_server_t *srv = arg;
    srv->store = NULL;
    shutdown_step(srv);
}

static void on_spool_closed(void *arg) {
    opsc_server_t *srv = arg;
    srv->spool = NULL;
    shutdown_step(srv);
}

static void on_drain_tick(uv_timer_t *t) {
    shutdown_step(t->data);
}

/*
 * Shutdown is a sequence of asynchronous closes; each completion calls this
 * again and it moves on to the next thing still open.
 */
static void shutdown_step(opsc_server_t *srv) {
    if (srv->phase == PHASE_DONE) {
        return;
    }
    if (srv->http || srv->udp) {
        /* Their close callbacks come back here; slow HTTP clients get until the deadline. */
        if (srv->http && uv_hrtime() >= srv->drain_deadline_ns) {
            opsc_ops_server_abort(srv->http);
        } else if (!uv_is_active((uv_handle_t *)&srv->drain_timer)) {
            uv_timer_start(&srv->drain_timer, on_drain_tick, 10, 10);
        }
        return;
    }
    if (srv->audit && !srv->audit_closed) {
        srv->audit_closed = 1; /* no request comes any more: its last rows go before the pool */
        opsc_audit_close(srv->audit);
    }
    if (srv->pipeline) {
        /* Everything received is decided and handed to the store first. */
        if (srv->phase == PHASE_DRAINING && !srv->pipeline_stopping) {
            srv->pipeline_stopping = 1;
            opsc_pipeline_stop(srv->pipeline, on_pipeline_stopped, srv);
        }
        return;
    }
    if (srv->store) {
        if (!srv->store_closing) {
            srv->store_closing = 1;
            opsc_store_close(srv->store, on_store_closed, srv);
        }
        return;
    }
    if (srv->dns || srv->namefill) {
        /* After the store, before the journal: a late name still reaches the journal. */
        opsc_namefill_destroy(srv->namefill);
        srv->namefill = NULL;
        if (srv->dns && !srv->dns_closing) {
            srv->dns_closing = 1;
            opsc_dns_close(srv->dns, on_dns_closed, srv);
        }
        if (srv->dns) {
            return;
        }
    }
    if (srv->spool) {
        /* Buffered records are synced; what the store could not write stays for the next start. */
        if (!srv->spool_closing && !srv->feed_reading) {
            srv->spool_closing = 1;
            feed_free(srv);
            uint64_t left = opsc_spool_last_seq(srv->spool) > srv->db_durable
                                ? opsc_spool_last_seq(srv->spool) - srv->db_durable
                                : 0;
            if (left > 0) {
                opsc_log_info(LOG,
                              "shutdown: %" PRIu64 " journal records not yet in the database "
                              "stay in the journal for the next start",
                              left);
            }
            opsc_spool_close(srv->spool, on_spool_closed, srv);
        } else if (srv->feed_reading && !uv_is_active((uv_handle_t *)&srv->drain_timer)) {
            uv_timer_start(&srv->drain_timer, on_drain_tick, 10, 10);
        }
        return;
    }
    if (srv->pool) {
        size_t pending = opsc_pg_pool_pending(srv->pool);
        uint64_t now = uv_hrtime();
        if (pending > 0 && now < srv->drain_deadline_ns) {
            if (!uv_is_active((uv_handle_t *)&srv->drain_timer)) {
                uv_timer_start(&srv->drain_timer, on_drain_tick, 10, 10);
            }
            return;
        }
        uv_timer_stop(&srv->drain_timer);
        if (pending > 0) {
            opsc_log_warn(LOG, "shutdown: %zu database requests still pending at the deadline",
                          pending);
        }
        if (srv->phase == PHASE_DRAINING) {
            srv->phase = PHASE_STOPPING;
            opsc_users_stop(srv->users); /* a password hash may still finish on the thread pool */
            opsc_pg_pool_close(srv->pool, on_pool_closed, srv);
        }
        return;
    }
    srv->phase = PHASE_STOPPING;
    if (srv->epg) {
        uint64_t now = uv_hrtime();
        int left =
            srv->drain_deadline_ns > now ? (int)((srv->drain_deadline_ns - now) / 1000000ull) : 0;
        if (left < 1000) {
            left = 1000; /* a fast shutdown of postgres needs a moment */
        }
        opsc_embedded_pg_t *epg = srv->epg;
        srv->epg = NULL;
        opsc_embedded_pg_stop(epg, left, on_epg_stopped, srv);
        return;
    }
    finish_shutdown(srv);
}

void opsc_server_shutdown(opsc_server_t *srv, int exit_code) {
    if (exit_code > srv->exit_code) {
        srv->exit_code = exit_code;
    }
    if (srv->phase != PHASE_RUNNING && srv->phase != PHASE_INIT) {
        return;
    }
    srv->phase = PHASE_DRAINING;
    srv->drain_deadline_ns = uv_hrtime() + (uint64_t)srv->cfg.shutdown_timeout_ms * 1000000ull;
    /* Stop accepting first; then drain; then the database goes. */
    if (srv->http) {
        opsc_ops_server_close(srv->http, on_http_closed, srv);
    }
    if (srv->udp) {
        opsc_udp_listen_close(srv->udp, on_udp_closed, srv);
    }
    shutdown_step(srv);
}

/* ---- create / start ----------------------------------------------------- */

int opsc_server_create(uv_loop_t *loop, opsc_config_t *cfg, const char *config_path,
                       opsc_server_t **out) {
    opsc_server_t *srv = opsc_calloc(1, sizeof(*srv));
    if (!srv) {
        return OPSC_ENOMEM;
    }
    srv->loop = loop;
    srv->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    srv->config_path = config_path ? opsc_strdup(config_path) : NULL;
    srv->lock_fd = -1;
    srv->start_ns = uv_hrtime();
    srv->start_time = time(NULL);
    srv->metrics = opsc_metrics_create();
    srv->seqmap = opsc_calloc(SEQMAP_MAX, sizeof(*srv->seqmap));
    if (!srv->metrics || !srv->seqmap || (config_path && !srv->config_path)) {
        opsc_server_destroy(srv);
        return OPSC_ENOMEM;
    }
    uv_timer_init(loop, &srv->drain_timer);
    srv->drain_timer.data = srv;
    uv_timer_init(loop, &srv->reload_timer);
    srv->reload_timer.data = srv;
    uv_timer_init(loop, &srv->maint_timer);
    srv->maint_timer.data = srv;
    uv_timer_init(loop, &srv->feed_timer);
    srv->feed_timer.data = srv;
    uv_timer_init(loop, &srv->storm_tick);
    srv->storm_tick.data = srv;
    uv_signal_init(loop, &srv->sig_term);
    uv_signal_init(loop, &srv->sig_int);
    uv_signal_init(loop, &srv->sig_hup);
    srv->sig_term.data = srv->sig_int.data = srv->sig_hup.data = srv;
    srv->handles_open = 8; /* drain, reload, maint, feed, storm timers; three signals */
    opsc_metrics_register(srv->metrics, server_metrics, srv);
    opsc_metrics_register(srv->metrics, collect_loop, srv);
    opsc_metrics_register(srv->metrics, collect_pool, srv);
    opsc_metrics_register(srv->metrics, collect_epg, srv);
    opsc_metrics_register(srv->metrics, collect_udp, srv);
    opsc_metrics_register(srv->metrics, collect_ratelimit, srv);
    opsc_metrics_register(srv->metrics, collect_pipeline, srv);
    opsc_metrics_register(srv->metrics, collect_spool, srv);
    *out = srv;
    return 0;
}

static int dns_start(opsc_server_t *srv, char *errbuf, size_t errlen) {
    if (srv->cfg.dns.cache_ttl_ms <= 0) {
        opsc_log_info(LOG, "reverse DNS off (dns.cache_ttl 0)");
        return 0;
    }
    opsc_buf_t servers = OPSC_BUF_INIT;
    for (size_t i = 0; i < srv->cfg.dns.servers.count; i++) {
        opsc_buf_printf(&servers, "%s%s", i ? "," : "", srv->cfg.dns.servers.items[i]);
    }
    opsc_dns_options_t o = {
        .servers = servers.base,
        .timeout_ms = (int)srv->cfg.dns.timeout_ms,
        .tries = 2,
        .ttl_s = (unsigned)((srv->cfg.dns.cache_ttl_ms + 999) / 1000),
        .negative_ttl_s = (unsigned)((srv->cfg.dns.negative_ttl_ms + 999) / 1000),
        .cache_max = (size_t)srv->cfg.dns.cache_max,
    };
    int rc = opsc_dns_create(srv->loop, &o, &srv->dns, errbuf, errlen);
    opsc_buf_free(&servers);
    if (rc != 0) {
        return rc;
    }
    srv->namefill = opsc_namefill_create(srv->dns, submit_name_update, srv);
    if (!srv->namefill) {
        snprintf(errbuf, errlen, "reverse DNS: out of memory");
        return OPSC_ENOMEM;
    }
    return 0;
}

static int64_t rate_burst(const opsc_config_t *cfg) {
    return cfg->snmp.per_source_burst > 0 ? cfg->snmp.per_source_burst
                                          : 2 * cfg->snmp.per_source_rate;
}

/* snmp.per_source_rate: the table is allocated here, once; nothing per datagram. */
static int ratelimit_start(opsc_server_t *srv, char *errbuf, size_t errlen) {
    const opsc_config_t *cfg = &srv->cfg;
    /* Even with the limit off: a storm alert left open by an earlier run must still resolve. */
    uv_timer_start(&srv->storm_tick, on_storm_tick, 1000, 1000);
    if (cfg->snmp.per_source_rate <= 0) {
        return 0;
    }
    int rc = opsc_rate_limit_create((uint64_t)cfg->snmp.per_source_rate, (uint64_t)rate_burst(cfg),
                                    (size_t)cfg->snmp.per_source_max, &srv->ratelimit);
    if (rc != 0) {
        snprintf(errbuf, errlen, "snmp.per_source_rate: %s", opsc_strerror(rc));
        return rc;
    }
    opsc_log_info(LOG, "per-source rate limit: %lld traps/s, burst %lld, %lld sources tracked",
                  (long long)cfg->snmp.per_source_rate, (long long)rate_burst(cfg),
                  (long long)cfg->snmp.per_source_max);
    return 0;
}

static int pipeline_start(opsc_server_t *srv, char *errbuf, size_t errlen) {
    int rc;
    const opsc_engine_id_t *cfg_id = &srv->cfg.snmp.engine_id;
    if (cfg_id->len > 0) {
        memcpy(srv->engine_id, cfg_id->bytes, cfg_id->len);
        srv->engine_id_len = cfg_id->len;
    } else if ((rc = opsc_snmp_engine_id_load_or_create(
                    srv->data_dir, srv->engine_id, &srv->engine_id_len, errbuf, errlen)) != 0) {
        return rc;
    }
    if ((rc = opsc_snmp_engine_boots_next(srv->data_dir, &srv->engine_boots, errbuf, errlen)) !=
        0) {
        return rc;
    }
    opsc_snmp_decoder_options_t so = {
        .communities = (const char *const *)srv->cfg.snmp.communities.items,
        .ncommunities = srv->cfg.snmp.communities.count,
        .users = srv->cfg.snmp.v3_users.users,
        .nusers = srv->cfg.snmp.v3_users.count,
        .engine_id = srv->engine_id,
        .engine_id_len = srv->engine_id_len,
        .engine_boots = srv->engine_boots,
        .log_component = "snmp",
        .mib_dirs = (const char *const *)srv->cfg.snmp.mib_dirs.items,
        .nmib_dirs = srv->cfg.snmp.mib_dirs.count,
    };
    opsc_pipeline_options_t po = {
        .snmp = &so,
        .on_change = on_change,
        .arg = srv,
        .down_alert_types = (const char *const *)srv->cfg.correlation.down_alert_types.items,
        .ndown_alert_types = srv->cfg.correlation.down_alert_types.count,
        .flap_threshold = (uint32_t)srv->cfg.correlation.flap_threshold,
        .flap_window_ms = srv->cfg.correlation.flap_window_ms,
        .flap_track_max = (size_t)srv->cfg.correlation.flap_track_max,
        .expire_after_ms = srv->cfg.correlation.expire_after_ms,
        .resolve_names = srv->dns != NULL,
        .storm_rate = (uint64_t)srv->cfg.snmp.per_source_rate,
        .storm_burst = (uint64_t)rate_burst(&srv->cfg),
        .storm_quiet_ms = srv->cfg.snmp.storm_quiet_ms,
    };
    const opsc_strlist_t *xc = &srv->cfg.correlation.expire_after_by_category;
    rc = opsc_pipeline_parse_expiry_overrides((const char *const *)xc->items, xc->count, &po,
                                              errbuf, errlen);
    if (rc != 0) {
        return rc;
    }
    return opsc_pipeline_start(srv->loop, &po, &srv->pipeline, errbuf, errlen);
}

int opsc_server_start(opsc_server_t *srv, char *errbuf, size_t errlen) {
    int rc;
    long holder = 0;
    srv->phase = PHASE_RUNNING;
    signal(SIGPIPE, SIG_IGN);
    uv_signal_start(&srv->sig_term, on_signal, SIGTERM);
    uv_signal_start(&srv->sig_int, on_signal, SIGINT);
    uv_signal_start(&srv->sig_hup, on_signal, SIGHUP);

    rc = opsc_abspath(srv->cfg.data_dir, srv->data_dir, sizeof(srv->data_dir));
    if (rc == 0) {
        rc = opsc_mkdir_p(srv->data_dir, 0755);
    }
    if (rc != 0) {
        snprintf(errbuf, errlen, "data_dir %s: cannot create: %s", srv->cfg.data_dir,
                 opsc_strerror(rc));
        goto error;
    }
    snprintf(srv->lock_path, sizeof(srv->lock_path), "%s/opsconductord.lock", srv->data_dir);
    rc = opsc_lockfile_acquire(srv->lock_path, &srv->lock_fd, &holder);
    if (rc == OPSC_ELOCKED) {
        snprintf(errbuf, errlen,
                 "data_dir %s is in use by another opsconductord (pid %ld); stop it or use "
                 "another data_dir",
                 srv->data_dir, holder);
        goto error;
    } else if (rc != 0) {
        snprintf(errbuf, errlen, "data_dir %s: cannot lock %s: %s", srv->data_dir, srv->lock_path,
                 opsc_strerror(rc));
        goto error;
    }

    if ((rc = opsc_loopstat_start(srv->loop, 100, &srv->loopstat)) != 0) {
        snprintf(errbuf, errlen, "loop statistics: %s", opsc_strerror(rc));
        goto error;
    }

    opsc_ops_server_options_t hopts = {
        .listen = &srv->cfg.http.listen,
        .max_connections = (int)srv->cfg.http.max_connections,
        .max_header_bytes = (int)srv->cfg.http.max_header_bytes,
        .idle_timeout_ms = (int)srv->cfg.http.idle_timeout_ms,
        .header_timeout_ms = (int)srv->cfg.http.header_timeout_ms,
        .body_timeout_ms = (int)srv->cfg.http.body_timeout_ms,
        .max_headers = (int)srv->cfg.http.max_headers,
        .max_url_bytes = (size_t)srv->cfg.http.max_url_bytes,
        .max_body_bytes = (size_t)srv->cfg.http.max_body_bytes,
        .tls_listen = &srv->cfg.http.tls.listen,
        .tls_cert = srv->cfg.http.tls.cert,
        .tls_key = srv->cfg.http.tls.key,
        .tls_handshake_timeout_ms = (int)srv->cfg.http.tls.handshake_timeout_ms,
        .ready = ready_cb,
        .metrics = render_metrics,
        .arg = srv,
    };
    if ((rc = opsc_ops_server_start(srv->loop, &hopts, &srv->http, errbuf, errlen)) != 0) {
        goto error;
    }
    if ((rc = opsc_auth_create(getenv("OPSC_ADMIN_TOKEN"), &srv->auth)) != 0) {
        goto error;
    }
    opsc_ops_server_set_authenticator(srv->http, opsc_auth_http, srv->auth);
    {
        char spool_dir[4200];
        if (srv->cfg.spool.dir && *srv->cfg.spool.dir) {
            snprintf(spool_dir, sizeof(spool_dir), "%s", srv->cfg.spool.dir);
        } else {
            snprintf(spool_dir, sizeof(spool_dir), "%s/spool", srv->data_dir);
        }
        opsc_spool_options_t sp = {
            .dir = spool_dir,
            .max_bytes = (uint64_t)srv->cfg.spool.max_bytes,
            .segment_bytes = (uint64_t)srv->cfg.spool.segment_bytes,
            .sync_interval_ms = (int)srv->cfg.spool.sync_interval_ms,
        };
        if ((rc = opsc_spool_open(srv->loop, &sp, &srv->spool, errbuf, errlen)) != 0) {
            goto error;
        }
        opsc_spool_set_synced_cb(srv->spool, on_spool_synced, srv);
    }
    if ((rc = dns_start(srv, errbuf, errlen)) != 0) {
        goto error;
    }
    opsc_ingest_options_t io = {.severity_map = srv->cfg.webhooks.severity_map,
                                .default_category = srv->cfg.webhooks.default_category};
    if ((rc = opsc_ingest_check_options(&io, errbuf, errlen)) != 0) {
        goto error;
    }
    if ((rc = pipeline_start(srv, errbuf, errlen)) == 0 && srv->ingest) {
        opsc_ingest_set_pipeline(srv->ingest, srv->pipeline);
    }
    if (rc != 0) {
        goto error;
    }
    if ((rc = ratelimit_start(srv, errbuf, errlen)) != 0) {
        goto error;
    }
    if ((rc = opsc_udp_listen_start(srv->loop, &srv->cfg.snmp.listen, (size_t)srv->cfg.snmp.rcvbuf,
                                    on_datagram, srv, &srv->udp, errbuf, errlen)) != 0) {
        goto error;
    }
    opsc_udp_listen_set_max_per_wakeup(srv->udp, (unsigned)srv->cfg.snmp.max_per_wakeup);

    if (srv->cfg.database.url && *srv->cfg.database.url) {
        opsc_log_info(LOG, "using the PostgreSQL server from database.url");
        if ((rc = pool_start(srv, srv->cfg.database.url)) != 0) {
            snprintf(errbuf, errlen, "database.url: %s", opsc_strerror(rc));
            goto error;
        }
    } else {
        opsc_embedded_pg_options_t eo = {
            .data_dir = srv->data_dir,
            .dir = srv->cfg.database.embedded_dir,
            .user = srv->cfg.database.embedded_user,
            .bindir = srv->cfg.database.embedded_bindir,
        };
        rc = opsc_embedded_pg_create(srv->loop, &eo, on_embedded, srv, &srv->epg, errbuf, errlen);
        if (rc == 0) {
            rc = opsc_embedded_pg_start(srv->epg);
            if (rc != 0) {
                snprintf(errbuf, errlen, "embedded PostgreSQL: %s", opsc_strerror(rc));
            }
        }
        if (rc != 0) {
            goto error;
        }
    }
    opsc_log_info(LOG, "opsconductord %s started (pid %d, data_dir %s)", OPSC_VERSION,
                  (int)getpid(), srv->data_dir);
    return 0;

error:
    /* Unwind through the normal shutdown path; the caller runs the loop to finish it. */
    opsc_server_shutdown(srv, 1);
    return rc ? rc : OPSC_ECONFIG;
}

int opsc_server_exit_code(const opsc_server_t *srv) {
    return srv->exit_code;
}

void opsc_server_destroy(opsc_server_t *srv) {
    if (!srv) {
        return;
    }
    while (srv->rwait_head) {
        reply_wait_t *w = srv->rwait_head;
        srv->rwait_head = w->next;
        opsc_change_free(w->reply);
        opsc_free(w);
    }
    feed_free(srv);
    opsc_free(srv->seqmap);
    opsc_metrics_destroy(srv->metrics);
    opsc_rate_limit_destroy(srv->ratelimit);
    opsc_auth_destroy(srv->auth);
    opsc_crud_destroy(srv->crud);
    opsc_tokens_destroy(srv->tokens);
    opsc_users_destroy(srv->users);
    opsc_audit_free(srv->audit);
    opsc_alerts_api_destroy(srv->alerts_api);
    opsc_stream_destroy(srv->stream);
    opsc_ingest_destroy(srv->ingest);
    opsc_config_free(&srv->cfg);
    opsc_free(srv->config_path);
    opsc_free(srv);
}
