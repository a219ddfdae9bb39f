/*
 * POST /api/v1/events, and the common path of every webhook: validate all,
 * hand the batch to the pipeline as one record, answer 202 when the
 * pipeline's ack for it is durable (opsc/ingest.h).
 *
 * Requests waiting for their ack are kept in token order: acks come back in
 * the order the records went in (one ingest ring, one change ring, replies
 * released in journal order), and an ack covers every token before it, so a
 * lost ack (out of memory in the pipeline) delays an answer until the next
 * one instead of losing it.
 */
#include "ingest_int.h"

#include <stdio.h>
#include <string.h>

#include "opsc/alert.h"
#include "opsc/error.h"
#include "opsc/event.h"
#include "opsc/log.h"
#include "opsc/metrics.h"
#include "opsc/ops_server.h"
#include "opsc/pipeline.h"

#define LOG "api"
#define PENDING_DEFAULT 10000
#define ERRORS_MAX 1000 /* errors listed in one 422 */

typedef struct pending_s {
    struct pending_s *next;
    uint64_t token;
    opsc_http_conn_t *c;
    size_t n;
    int actions; /* 1: alert actions (answered from the pipeline's outcome), 0: events */
    int single;  /* actions: one alert's route, not /alerts/bulk */
} pending_t;

static const char *const kind_label[] = {"events", "alertmanager", "grafana", "generic"};
#define KINDS (sizeof(kind_label) / sizeof(kind_label[0]))

struct opsc_ingest_s {
    opsc_pg_pool_t *pool;
    opsc_pipeline_t *pipeline;
    json_t *severity_map;
    char *default_category;
    uint64_t next_token;
    pending_t *head, *tail;
    size_t npending, max_pending;
    uint64_t n_requests[KINDS];
    uint64_t n_accepted[KINDS];
    uint64_t n_invalid[KINDS];
    uint64_t n_busy;
};

json_t *opsc__ingest_body(opsc_http_conn_t *c, opsc_http_req_t *req) {
    size_t len = 0;
    const char *body = opsc_http_req_body(req, &len);
    json_error_t je;
    json_t *j =
        body && len ? json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je) : NULL;
    if (!j) {
        char msg[300];
        if (!body || !len) {
            snprintf(msg, sizeof(msg), "the request has no body");
        } else {
            snprintf(msg, sizeof(msg), "malformed JSON at line %d column %d: %s", je.line,
                     je.column, je.text);
        }
        opsc_http_error(c, 400, "malformed", msg, NULL);
    }
    return j;
}

static void answer_invalid(opsc_http_conn_t *c, json_t *errors, size_t nbad, size_t total) {
    json_t *first = json_array_get(errors, 0);
    char msg[600];
    json_t *idx = json_object_get(first, "index");
    const char *m = json_string_value(json_object_get(first, "message"));
    if (json_array_size(errors) == 1) {
        snprintf(msg, sizeof(msg), "%s", m ? m : "invalid");
    } else if (idx) {
        snprintf(msg, sizeof(msg), "%zu of %zu events invalid, none accepted; the first: [%lld] %s",
                 nbad, total, (long long)json_integer_value(idx), m ? m : "invalid");
    } else {
        snprintf(msg, sizeof(msg), "%zu invalid values; the first: %s", json_array_size(errors),
                 m ? m : "invalid");
    }
    char field[160];
    const char *f = json_string_value(json_object_get(first, "field"));
    if (idx) {
        snprintf(field, sizeof(field), "[%lld].%s", (long long)json_integer_value(idx), f ? f : "");
    } else {
        snprintf(field, sizeof(field), "%s", f ? f : "");
    }
    json_t *err = json_pack("{s:s,s:s,s:s,s:O}", "code", "validation", "message", msg, "field",
                            field, "errors", errors);
    opsc_http_respond_json(c, 422, err ? json_pack("{s:o}", "error", err) : NULL);
}

static void wait_ack(opsc_ingest_t *g, pending_t *w) {
    opsc_http_hold(w->c);
    if (g->tail) {
        g->tail->next = w;
    } else {
        g->head = w;
    }
    g->tail = w;
    g->npending++;
}

void opsc__ingest_submit(opsc_ingest_t *g, opsc_http_conn_t *c, const json_t *events, int kind) {
    g->n_requests[kind]++;
    int single = json_is_object(events);
    size_t n = single ? 1 : json_array_size(events);
    if (!single && !json_is_array(events)) {
        g->n_invalid[kind]++;
        opsc_http_error(c, 422, "validation",
                        "the body must be an event object or an array of them", NULL);
        return;
    }
    if (n > OPSC_INGEST_BATCH_MAX) {
        g->n_invalid[kind]++;
        opsc_http_error(c, 422, "validation", "at most 1000 events per request", NULL);
        return;
    }
    if (n == 0) {
        /* Nothing to make durable (a webhook may carry no alert at all). */
        opsc_http_respond_json(c, 202, json_pack("{s:i}", "accepted", 0));
        return;
    }
    if (!g->pipeline || !opsc_pipeline_ready(g->pipeline)) {
        g->n_busy++;
        opsc_http_error_retry(c, 503, "unavailable", "the alert pipeline is still loading", 2);
        return;
    }
    if (g->npending >= g->max_pending) {
        g->n_busy++;
        opsc_http_error_retry(c, 503, "overloaded",
                              "too many requests are waiting for their events to be durable", 1);
        return;
    }
    opsc_alert_t **alerts = opsc_calloc(n, sizeof(*alerts));
    json_t *errors = json_array();
    pending_t *w = opsc_calloc(1, sizeof(*w));
    if (!alerts || !errors || !w) {
        opsc_free(alerts);
        json_decref(errors);
        opsc_free(w);
        opsc_http_error(c, 500, "internal", "out of memory", NULL);
        return;
    }
    int64_t now = opsc_now_us();
    size_t nbad = 0;
    int oom = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *ev = single ? events : json_array_get(events, i);
        json_t *errs = json_array_size(errors) < ERRORS_MAX ? errors : NULL;
        json_t *sink = errs ? errs : json_array();
        int rc = opsc_event_from_json(ev, single ? SIZE_MAX : i, now, &alerts[i], sink);
        if (!errs) {
            json_decref(sink);
        }
        if (rc == OPSC_ENOMEM) {
            oom = 1;
        } else if (rc != 0) {
            nbad++;
        }
    }
    if (oom || nbad) {
        for (size_t i = 0; i < n; i++) {
            opsc_alert_free(alerts[i]);
        }
        opsc_free(alerts);
        opsc_free(w);
        if (oom) {
            opsc_http_error(c, 500, "internal", "out of memory", NULL);
        } else {
            g->n_invalid[kind]++;
            answer_invalid(c, errors, nbad, n);
        }
        json_decref(errors);
        return;
    }
    json_decref(errors);
    uint64_t token = ++g->next_token;
    if (opsc_pipeline_push_events(g->pipeline, alerts, n, token) != 0) {
        for (size_t i = 0; i < n; i++) {
            opsc_alert_free(alerts[i]);
        }
        opsc_free(alerts);
        opsc_free(w);
        g->n_busy++;
        opsc_http_error_retry(c, 503, "overloaded", "the alert pipeline is full; retry shortly", 1);
        return;
    }
    w->token = token;
    w->c = c;
    w->n = n;
    wait_ack(g, w);
    g->n_accepted[kind] += n;
}

int opsc__ingest_push_actions(opsc_ingest_t *g, opsc_http_conn_t *c, opsc_action_batch_t *b,
                              int single) {
    pending_t *w = NULL;
    if (!g->pipeline || !opsc_pipeline_ready(g->pipeline)) {
        opsc_http_error_retry(c, 503, "unavailable", "the alert pipeline is still loading", 2);
        return OPSC_EQUEUE_FULL;
    }
    if (g->npending >= g->max_pending || !(w = opsc_calloc(1, sizeof(*w)))) {
        g->n_busy++;
        opsc_http_error_retry(c, 503, "overloaded", "too many requests are waiting", 1);
        return OPSC_EQUEUE_FULL;
    }
    uint64_t token = ++g->next_token;
    if (opsc_pipeline_push_actions(g->pipeline, b, token) != 0) {
        opsc_free(w);
        g->n_busy++;
        opsc_http_error_retry(c, 503, "overloaded", "the alert pipeline is full; retry shortly", 1);
        return OPSC_EQUEUE_FULL;
    }
    w->token = token;
    w->c = c;
    w->n = b->n;
    w->actions = 1;
    w->single = single;
    wait_ack(g, w);
    return 0;
}

static void pop_answer(opsc_ingest_t *g, int ok, const opsc_action_batch_t *actions) {
    pending_t *w = g->head;
    g->head = w->next;
    if (!g->head) {
        g->tail = NULL;
    }
    g->npending--;
    if (!opsc_http_conn_gone(w->c)) {
        if (ok && w->actions && actions) {
            opsc__actions_answer(w->c, actions, w->single);
        } else if (ok && w->actions) {
            /* Its ack was lost (out of memory in the pipeline): the outcome is unknown. */
            opsc_http_error(w->c, 500, "internal",
                            "the outcome of the action is unknown; read the alert again", NULL);
        } else if (ok) {
            opsc_http_respond_json(w->c, 202, json_pack("{s:I}", "accepted", (json_int_t)w->n));
        } else {
            opsc_http_error_retry(w->c, 503, "unavailable",
                                  "the server is shutting down; the events may have been "
                                  "accepted (the same events again are deduplicated)",
                                  5);
        }
    }
    opsc_http_release(w->c);
    opsc_free(w);
}

void opsc_ingest_durable(opsc_ingest_t *g, uint64_t token, const opsc_action_batch_t *actions) {
    while (g && g->head && g->head->token <= token) {
        pop_answer(g, 1, g->head->token == token ? actions : NULL);
    }
}

void opsc_ingest_fail_pending(opsc_ingest_t *g) {
    while (g && g->head) {
        pop_answer(g, 0, NULL);
    }
}

static void handle_events(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    json_t *j = opsc__ingest_body(c, req);
    if (j) {
        opsc__ingest_submit(arg, c, j, OPSC_INGEST_EVENTS);
        json_decref(j);
    }
}

static const opsc_http_route_t routes[] = {
    {.methods = OPSC_HTTP_M(OPSC_HTTP_POST),
     .path = "/api/v1/events",
     .handler = handle_events,
     .body_type = "application/json",
     .max_body = 16u << 20, /* 1,000 events with their raw_data */
     .roles = OPSC_ROLES_INGEST},
};

opsc_pg_pool_t *opsc__ingest_pool(const opsc_ingest_t *g) {
    return g->pool;
}
const json_t *opsc__ingest_severity_map(const opsc_ingest_t *g) {
    return g->severity_map;
}
const char *opsc__ingest_default_category(const opsc_ingest_t *g) {
    return g->default_category;
}

int opsc_ingest_check_options(const opsc_ingest_options_t *o, char *errbuf, size_t errlen) {
    if (o && o->severity_map && *o->severity_map) {
        json_error_t je;
        json_t *m = json_loads(o->severity_map, 0, &je);
        if (!json_is_object(m)) {
            snprintf(errbuf, errlen, "webhooks.severity_map: not a JSON object (%s)",
                     m ? "another JSON value" : je.text);
            json_decref(m);
            return OPSC_ECONFIG;
        }
        const char *k;
        json_t *v;
        json_object_foreach(m, k, v) {
            opsc_severity_t sev;
            if (!json_is_string(v) || opsc_severity_parse(json_string_value(v), &sev) != 0) {
                snprintf(errbuf, errlen,
                         "webhooks.severity_map: \"%.60s\" maps to no severity (critical, major, "
                         "minor, warning, info, clear)",
                         k);
                json_decref(m);
                return OPSC_ECONFIG;
            }
        }
        json_decref(m);
    }
    opsc_category_t cat;
    if (o && o->default_category && opsc_category_parse(o->default_category, &cat) != 0) {
        snprintf(errbuf, errlen, "webhooks.default_category: unknown category \"%.60s\"",
                 o->default_category);
        return OPSC_ECONFIG;
    }
    return 0;
}

int opsc_ingest_create(opsc_pg_pool_t *pool, const opsc_ingest_options_t *o, opsc_ingest_t **out,
                       char *errbuf, size_t errlen) {
    opsc_ingest_t *g = opsc_calloc(1, sizeof(*g));
    if (!g) {
        return OPSC_ENOMEM;
    }
    g->pool = pool;
    g->max_pending = o && o->max_pending ? o->max_pending : PENDING_DEFAULT;
    int rc = opsc_ingest_check_options(o, errbuf, errlen);
    if (rc == 0 && o && o->severity_map && *o->severity_map) {
        g->severity_map = json_loads(o->severity_map, 0, NULL);
        rc = g->severity_map ? 0 : OPSC_ENOMEM;
    }
    if (rc == 0 && o && o->default_category &&
        !(g->default_category = opsc_strdup(o->default_category))) {
        rc = OPSC_ENOMEM;
    }
    if (rc != 0) {
        opsc_ingest_destroy(g);
        return rc;
    }
    *out = g;
    return 0;
}

void opsc_ingest_set_pipeline(opsc_ingest_t *g, opsc_pipeline_t *p) {
    g->pipeline = p;
}

int opsc_ingest_add_routes(opsc_ingest_t *g, opsc_ops_server_t *srv) {
    int rc = opsc_ops_server_add_routes(srv, routes, sizeof(routes) / sizeof(routes[0]), g);
    rc = rc ? rc : opsc__webhooks_add_routes(g, srv);
    return rc ? rc : opsc__actions_add_routes(g, srv);
}

void opsc_ingest_destroy(opsc_ingest_t *g) {
    if (!g) {
        return;
    }
    opsc_ingest_fail_pending(g);
    json_decref(g->severity_map);
    opsc_free(g->default_category);
    opsc_free(g);
}

static void per_endpoint(opsc_buf_t *out, const char *name, const char *help,
                         const uint64_t v[KINDS]) {
    char lab[64];
    opsc_metrics_family(out, name, "counter", help);
    for (size_t k = 0; k < KINDS; k++) {
        snprintf(lab, sizeof(lab), "endpoint=\"%s\"", kind_label[k]);
        opsc_metrics_sample_u64(out, name, lab, v[k]);
    }
}

void opsc_ingest_metrics(opsc_buf_t *out, void *arg) {
    opsc_ingest_t *g = arg;
    per_endpoint(out, "opsc_ingest_requests_total",
                 "Event ingestion requests (REST API and webhooks) by endpoint", g->n_requests);
    per_endpoint(out, "opsc_ingest_events_accepted_total",
                 "Events handed to the pipeline (answered 202 once durable)", g->n_accepted);
    per_endpoint(out, "opsc_ingest_invalid_total",
                 "Ingestion requests refused with 422 (no event of them accepted)", g->n_invalid);
    opsc_metrics_one_u64(
        out, "opsc_ingest_busy_total", "counter",
        "Ingestion requests answered 503 (pipeline full or loading, too many waiting)", g->n_busy);
    opsc_metrics_one_u64(out, "opsc_ingest_waiting", "gauge",
                         "Ingestion requests waiting for their events to be durable", g->npending);
}
