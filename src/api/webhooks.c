/*
 * Webhook receivers: each payload is mapped to normalized events
 * (opsc/webhook.h) and goes the way of POST /events (ingest.c).
 *
 * The generic receiver reads its connector (type "webhook") per request on a
 * reader connection: webhooks are few per second, and a connector changed
 * through the API or by SQL applies to the very next delivery.
 */
#include <stdio.h>
#include <string.h>

#include "ingest_int.h"
#include "opsc/api_util.h"
#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/ops_server.h"
#include "opsc/webhook.h"

#define LOG "api"
#define GENERIC "/api/v1/webhooks/generic/"
#define CONNECTOR_TYPE "webhook"

typedef int (*mapper_fn)(const json_t *body, const opsc_webhook_opts_t *o, json_t **events,
                         char *err, size_t errlen);

static void map_and_submit(opsc_ingest_t *g, opsc_http_conn_t *c, opsc_http_req_t *req,
                           mapper_fn fn, int kind) {
    json_t *body = opsc__ingest_body(c, req);
    if (!body) {
        return;
    }
    opsc_webhook_opts_t o = {opsc__ingest_severity_map(g), opsc__ingest_default_category(g)};
    json_t *events = NULL;
    char err[256] = "";
    if (fn(body, &o, &events, err, sizeof(err)) != 0) {
        opsc_http_error(c, 422, "validation", err[0] ? err : "unusable webhook payload", NULL);
    } else {
        opsc__ingest_submit(g, c, events, kind);
    }
    json_decref(events);
    json_decref(body);
}

static void handle_alertmanager(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    map_and_submit(arg, c, req, opsc_webhook_alertmanager, OPSC_INGEST_ALERTMANAGER);
}

static void handle_grafana(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    map_and_submit(arg, c, req, opsc_webhook_grafana, OPSC_INGEST_GRAFANA);
}

/* ---- generic, per connector ---- */

typedef struct call_s {
    opsc_ingest_t *g;
    opsc_http_conn_t *c;
    opsc_http_req_t *req;
    const char *signature; /* NULL: authenticated by token already */
    char name[101];
} call_t;

static const char *signature_header(const opsc_http_req_t *req) {
    const char *s = opsc_http_req_header(req, "X-Signature-256");
    return s ? s : opsc_http_req_header(req, "X-Hub-Signature-256");
}

static void on_connector(int err, const opsc_pg_res_t *res, void *arg) {
    call_t *x = arg;
    opsc_http_conn_t *c = x->c;
    if (opsc_http_conn_gone(c)) {
        goto out;
    }
    if (err != 0) {
        opsc_api_db_error(c, "webhook connector lookup", err, res);
        goto out;
    }
    char msg[200];
    if (opsc_pg_res_ntuples(res) != 1) {
        snprintf(msg, sizeof(msg), "no connector named \"%s\"", x->name);
        opsc_http_error(c, 404, "not_found", msg, NULL);
        goto out;
    }
    const char *type = opsc_pg_res_value(res, 0, 0);
    const char *enabled = opsc_pg_res_value(res, 0, 1);
    const char *config = opsc_pg_res_value(res, 0, 2);
    const char *secret = opsc_pg_res_value(res, 0, 3);
    if (!type || strcmp(type, CONNECTOR_TYPE) != 0) {
        snprintf(msg, sizeof(msg), "connector \"%s\" is of type \"%s\", not \"webhook\"", x->name,
                 type ? type : "");
        opsc_http_error(c, 404, "not_found", msg, NULL);
        goto out;
    }
    if (x->signature) {
        size_t len = 0;
        const char *body = opsc_http_req_body(x->req, &len);
        if (!secret || !*secret) {
            opsc_http_error_ex(c, 401, "unauthorized",
                               "this connector has no secret: authenticate with an ingest token",
                               NULL, "WWW-Authenticate: Bearer\r\n");
            goto out;
        }
        if (!opsc_webhook_hmac_ok(secret, body ? body : "", len, x->signature)) {
            opsc_log_warn(LOG, "webhook connector %s: bad signature from %s", x->name,
                          opsc_http_conn_peer(c));
            opsc_http_error_ex(c, 401, "unauthorized",
                               "the signature does not match the body under the connector's secret",
                               NULL, "WWW-Authenticate: Bearer\r\n");
            goto out;
        }
    }
    if (!enabled || strcmp(enabled, "t") != 0) {
        snprintf(msg, sizeof(msg), "connector \"%s\" is disabled", x->name);
        opsc_http_error(c, 409, "conflict", msg, NULL);
        goto out;
    }
    json_error_t je;
    json_t *cfg = json_loads(config ? config : "{}", 0, &je);
    json_t *body = cfg ? opsc__ingest_body(c, x->req) : NULL;
    if (!cfg) {
        opsc_http_error(c, 500, "internal", "the connector's config is not JSON", NULL);
    } else if (body) {
        json_t *events = NULL;
        char e[256] = "";
        if (opsc_webhook_generic(body, cfg, &events, e, sizeof(e)) != 0) {
            opsc_http_error(c, 422, "validation", e[0] ? e : "unusable webhook payload", NULL);
        } else {
            opsc__ingest_submit(x->g, c, events, OPSC_INGEST_GENERIC);
        }
        json_decref(events);
    }
    json_decref(body);
    json_decref(cfg);
out:
    opsc_http_release(x->c);
    opsc_free(x);
}

static void handle_generic(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    opsc_ingest_t *g = arg;
    const char *name = opsc_http_req_path(req) + strlen(GENERIC);
    if (!*name || strchr(name, '/') || strlen(name) > 100) {
        opsc_http_error(c, 404, "not_found", "no such connector", NULL);
        return;
    }
    const char *sig = signature_header(req);
    if (!sig) {
        opsc_principal_t who;
        if (opsc_http_authenticate(c, req, OPSC_ROLES_INGEST, &who) != 0) {
            return; /* answered */
        }
    }
    call_t *x = opsc_calloc(1, sizeof(*x));
    if (!x) {
        opsc_http_error(c, 500, "internal", "out of memory", NULL);
        return;
    }
    x->g = g;
    x->c = c;
    x->req = req;
    x->signature = sig;
    snprintf(x->name, sizeof(x->name), "%s", name);
    const char *params[1] = {x->name};
    opsc_http_hold(c);
    if (opsc_pg_query(opsc__ingest_pool(g), OPSC_PG_READER,
                      "SELECT type, enabled, config::text, secret FROM connectors WHERE name = $1",
                      1, params, on_connector, x) != 0) {
        opsc_http_error_retry(c, 503, "unavailable", "the database is busy", 1);
        opsc_http_release(c);
        opsc_free(x);
    }
}

static const opsc_http_route_t routes[] = {
    {.methods = OPSC_HTTP_M(OPSC_HTTP_POST),
     .path = "/api/v1/webhooks/alertmanager",
     .handler = handle_alertmanager,
     .body_type = "application/json",
     .max_body = 16u << 20,
     .roles = OPSC_ROLES_INGEST},
    {.methods = OPSC_HTTP_M(OPSC_HTTP_POST),
     .path = "/api/v1/webhooks/grafana",
     .handler = handle_grafana,
     .body_type = "application/json",
     .max_body = 16u << 20,
     .roles = OPSC_ROLES_INGEST},
    /* Public: the handler takes a token or the connector's signature. */
    {.methods = OPSC_HTTP_M(OPSC_HTTP_POST),
     .path = GENERIC,
     .prefix = 1,
     .handler = handle_generic,
     .body_type = "application/json",
     .max_body = 16u << 20},
};

int opsc__webhooks_add_routes(opsc_ingest_t *g, opsc_ops_server_t *srv) {
    return opsc_ops_server_add_routes(srv, routes, sizeof(routes) / sizeof(routes[0]), g);
}
