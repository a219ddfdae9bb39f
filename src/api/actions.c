/*
 * Alert actions of people (issue 4 item 4), operator and admin:
 *
 *   POST /api/v1/alerts/{id}/acknowledge|unacknowledge|resolve|suppress|reopen
 *        optional body {"notes": "...", "expires_in": "2h" (acknowledge only)}
 *        -> 200 {"id", "action", "status", "previous_status"}; 404; 409 naming the
 *           current status when the transition is not allowed
 *   POST /api/v1/alerts/bulk {"ids": [...], "action": "...", "notes": "..."}
 *        -> 200 {"action", "succeeded", "failed", "results": [per id]}
 *
 * The alerts are read first (404 for an unknown id, and what the pipeline
 * needs to reopen a closed alert); the pipeline, which owns the state,
 * decides each transition; the answer comes when the outcome is durable.
 *
 * Allowed: acknowledge active; unacknowledge acknowledged; suppress active or
 * acknowledged; resolve active, acknowledged or suppressed; reopen suppressed,
 * resolved or expired (not while another alert of the fingerprint is open).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingest_int.h"
#include "opsc/alert_query.h"
#include "opsc/api_util.h"
#include "opsc/config.h"
#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/ops_server.h"

#define LOG "api"
#define PREFIX "/api/v1/alerts/"
#define BULK_MAX 1000
#define NOTES_MAX 10000
#define EXPIRES_MAX_MS (30LL * 24 * 3600 * 1000)

typedef struct call_s {
    opsc_ingest_t *g;
    opsc_http_conn_t *c;
    opsc_action_batch_t *b;
    int single;
    char **ids; /* asked for, in order (bulk: unknown ones are answered 404 per item) */
    size_t nids;
} call_t;

static void call_free(call_t *x) {
    for (size_t i = 0; i < x->nids; i++) {
        opsc_free(x->ids[i]);
    }
    opsc_free(x->ids);
    opsc_action_batch_free(x->b);
    opsc_free(x);
}

static int uuid_ok(const char *s, size_t len) {
    opsc_uuid_t u;
    char buf[37];
    if (len != 36) {
        return 0;
    }
    memcpy(buf, s, 36);
    buf[36] = '\0';
    return opsc_uuid_parse(buf, &u) == 0;
}

static json_t *outcome_json(const opsc_action_batch_t *b, const opsc_action_item_t *it) {
    char id[37];
    opsc_uuid_format(&it->row->id, id);
    if (it->done) {
        return json_pack("{s:s,s:s,s:s,s:s}", "id", id, "action", opsc_action_name(b->kind),
                         "status", opsc_status_name(it->after), "previous_status",
                         opsc_status_name(it->before));
    }
    char msg[240];
    snprintf(msg, sizeof(msg), "%s (status %s)", it->why, opsc_status_name(it->before));
    return json_pack("{s:s,s:s,s:{s:s,s:s,s:s}}", "id", id, "status", opsc_status_name(it->before),
                     "error", "code", "conflict", "message", msg, "status",
                     opsc_status_name(it->before));
}

void opsc__actions_answer(opsc_http_conn_t *c, const opsc_action_batch_t *b, int single) {
    if (single) {
        const opsc_action_item_t *it = &b->items[0];
        if (it->done) {
            opsc_http_respond_json(c, 200, outcome_json(b, it));
        } else {
            char msg[240];
            snprintf(msg, sizeof(msg), "cannot %s: %s (status %s)", opsc_action_name(b->kind),
                     it->why, opsc_status_name(it->before));
            opsc_http_error(c, 409, "conflict", msg, "status");
        }
        return;
    }
    /* Bulk: the decided items; the unknown ids were answered already in the batch's tail. */
    json_t *results = json_array();
    size_t ok = 0;
    for (size_t i = 0; i < b->n; i++) {
        ok += b->items[i].done ? 1 : 0;
        json_array_append_new(results, outcome_json(b, &b->items[i]));
    }
    opsc_http_respond_json(c, 200,
                           json_pack("{s:s,s:I,s:I,s:o}", "action", opsc_action_name(b->kind),
                                     "succeeded", (json_int_t)ok, "failed", (json_int_t)(b->n - ok),
                                     "results", results));
}

/* ---- reading the alerts ---- */

enum { C_ID, C_FP, C_STATUS, C_IP, C_NAME, C_TYPE, C_CAT, C_SEV, C_SRCID, C_COUNT, C_LAST };

static opsc_alert_t *row_alert(const opsc_pg_res_t *res, int row) {
    opsc_alert_t *a = opsc_alert_new();
    if (!a) {
        return NULL;
    }
    const char *v;
    int bad = opsc_uuid_parse(opsc_pg_res_value(res, row, C_ID), &a->id) != 0;
    if ((v = opsc_pg_res_value(res, row, C_FP)) != NULL) {
        snprintf(a->fingerprint, sizeof(a->fingerprint), "%s", v);
    }
    bad |= opsc_status_parse(opsc_pg_res_value(res, row, C_STATUS), &a->status) != 0;
    bad |= opsc_alert_set(&a->device_ip, opsc_pg_res_value(res, row, C_IP)) != 0;
    bad |= opsc_alert_set(&a->device_name, opsc_pg_res_value(res, row, C_NAME)) != 0;
    bad |= opsc_alert_set(&a->alert_type, opsc_pg_res_value(res, row, C_TYPE)) != 0;
    bad |= opsc_category_parse(opsc_pg_res_value(res, row, C_CAT), &a->category) != 0;
    bad |= opsc_severity_parse(opsc_pg_res_value(res, row, C_SEV), &a->severity) != 0;
    bad |= opsc_alert_set(&a->source_alert_id, opsc_pg_res_value(res, row, C_SRCID)) != 0;
    if ((v = opsc_pg_res_value(res, row, C_COUNT)) != NULL) {
        a->occurrence_count = (uint32_t)strtoul(v, NULL, 10);
    }
    if ((v = opsc_pg_res_value(res, row, C_LAST)) != NULL) {
        a->last_occurrence_at_us = strtoll(v, NULL, 10);
    }
    if (bad) {
        opsc_alert_free(a);
        return NULL;
    }
    return a;
}

static void on_rows(int err, const opsc_pg_res_t *res, void *arg) {
    call_t *x = arg;
    opsc_http_conn_t *c = x->c;
    if (opsc_http_conn_gone(c)) {
        goto out;
    }
    if (err != 0) {
        opsc_api_db_error(c, "alert action", err, res);
        goto out;
    }
    int n = opsc_pg_res_ntuples(res);
    if (x->single && n != 1) {
        opsc_http_error(c, 404, "not_found", "no such alert", NULL);
        goto out;
    }
    opsc_action_batch_t *b = x->b;
    b->items = opsc_calloc((size_t)n + 1, sizeof(*b->items));
    if (!b->items) {
        opsc_http_error(c, 500, "internal", "out of memory", NULL);
        goto out;
    }
    /* In the order asked (the query answers in any order); unknown ids are left out. */
    for (size_t i = 0; i < x->nids; i++) {
        for (int r = 0; r < n; r++) {
            if (strcmp(opsc_pg_res_value(res, r, C_ID), x->ids[i]) == 0) {
                opsc_alert_t *a = row_alert(res, r);
                if (!a) {
                    opsc_http_error(c, 500, "internal", "an alert row could not be read", NULL);
                    goto out;
                }
                b->items[b->n++].row = a;
                break;
            }
        }
    }
    if (!x->single && (size_t)n < x->nids) {
        /* Bulk with unknown ids: 404 for the whole request, naming the first. */
        for (size_t i = 0; i < x->nids; i++) {
            int found = 0;
            for (int r = 0; r < n && !found; r++) {
                found = strcmp(opsc_pg_res_value(res, r, C_ID), x->ids[i]) == 0;
            }
            if (!found) {
                char msg[120], field[32];
                snprintf(msg, sizeof(msg), "no alert %s; nothing was changed", x->ids[i]);
                snprintf(field, sizeof(field), "ids[%zu]", i);
                opsc_http_error(c, 404, "not_found", msg, field);
                goto out;
            }
        }
    }
    if (opsc__ingest_push_actions(x->g, c, b, x->single) == 0) {
        x->b = NULL; /* the pipeline has it */
    }
out:
    opsc_http_release(c);
    call_free(x);
}

static const char select_sql[] =
    "SELECT id::text, fingerprint, status, device_ip, device_name, alert_type, category, "
    "severity, source_alert_id, occurrence_count, "
    "(extract(epoch FROM COALESCE(last_occurrence_at, occurred_at)) * 1000000)::bigint "
    "FROM alerts WHERE id = ANY($1::uuid[])";

/* notes and expires_in of a body (may be empty); 0, or the error answered. */
static int read_options(opsc_http_conn_t *c, opsc_http_req_t *req, const json_t *j,
                        opsc_action_batch_t *b) {
    (void)req;
    const json_t *notes = json_object_get(j, "notes");
    if (notes && !json_is_null(notes)) {
        if (!json_is_string(notes) || json_string_length(notes) > NOTES_MAX ||
            memchr(json_string_value(notes), '\0', json_string_length(notes))) {
            opsc_http_error(c, 422, "validation", "notes must be a string of at most 10000 bytes",
                            "notes");
            return -1;
        }
        if (!(b->notes = opsc_strdup(json_string_value(notes)))) {
            opsc_http_error(c, 500, "internal", "out of memory", NULL);
            return -1;
        }
    }
    const json_t *exp = json_object_get(j, "expires_in");
    if (exp && !json_is_null(exp)) {
        int64_t ms = 0;
        if (b->kind != OPSC_ACT_ACKNOWLEDGE) {
            opsc_http_error(c, 422, "validation", "expires_in applies to acknowledge only",
                            "expires_in");
            return -1;
        }
        if (!json_is_string(exp) ||
            opsc_config_parse_duration_ms(json_string_value(exp), &ms) != 0 || ms <= 0 ||
            ms > EXPIRES_MAX_MS) {
            opsc_http_error(c, 422, "validation",
                            "expires_in must be a duration like \"30m\" or \"2h\" (at most 30d)",
                            "expires_in");
            return -1;
        }
        b->expires_in_us = ms * 1000;
    }
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)j, k, v) {
        if (strcmp(k, "notes") && strcmp(k, "expires_in") && strcmp(k, "ids") &&
            strcmp(k, "action")) {
            char msg[160];
            snprintf(msg, sizeof(msg), "unknown field \"%.100s\"", k);
            opsc_http_error(c, 422, "validation", msg, k);
            return -1;
        }
    }
    return 0;
}

/* Start the read of `ids`; takes x. */
static void start(call_t *x) {
    opsc_buf_t arr = OPSC_BUF_INIT;
    opsc_buf_appends(&arr, "{");
    for (size_t i = 0; i < x->nids; i++) {
        opsc_buf_printf(&arr, "%s%s", i ? "," : "", x->ids[i]);
    }
    opsc_buf_appends(&arr, "}");
    const char *params[1] = {arr.base};
    opsc_http_hold(x->c);
    if (!arr.base || opsc_pg_query(opsc__ingest_pool(x->g), OPSC_PG_READER, select_sql, 1, params,
                                   on_rows, x) != 0) {
        opsc_http_error_retry(x->c, 503, "unavailable", "the database is busy", 1);
        opsc_http_release(x->c);
        call_free(x);
    }
    opsc_buf_free(&arr);
}

static call_t *call_new(opsc_ingest_t *g, opsc_http_conn_t *c, opsc_http_req_t *req, int single) {
    call_t *x = opsc_calloc(1, sizeof(*x));
    if (!x || !(x->b = opsc_calloc(1, sizeof(*x->b)))) {
        opsc_free(x);
        opsc_http_error(c, 500, "internal", "out of memory", NULL);
        return NULL;
    }
    x->g = g;
    x->c = c;
    x->single = single;
    const opsc_principal_t *who = opsc_http_req_principal(req);
    snprintf(x->b->actor, sizeof(x->b->actor), "%.63s", who && who->name[0] ? who->name : "api");
    return x;
}

static int add_id(call_t *x, const char *id) {
    char **n = opsc_realloc(x->ids, (x->nids + 1) * sizeof(*n));
    if (!n) {
        return OPSC_ENOMEM;
    }
    x->ids = n;
    if (!(x->ids[x->nids] = opsc_strdup(id))) {
        return OPSC_ENOMEM;
    }
    x->nids++;
    return 0;
}

static void handle_one(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    const char *rest = opsc_http_req_path(req) + strlen(PREFIX);
    const char *slash = strchr(rest, '/');
    opsc_action_kind_t kind;
    if (!slash || !uuid_ok(rest, (size_t)(slash - rest))) {
        opsc_http_error(c, 404, "not_found", "no such alert action", NULL);
        return;
    }
    if (opsc_action_parse(slash + 1, &kind) != 0) {
        opsc_http_error(c, 404, "not_found",
                        "no such action: acknowledge, unacknowledge, resolve, suppress or reopen",
                        NULL);
        return;
    }
    size_t len = 0;
    const char *body = opsc_http_req_body(req, &len);
    json_t *j = NULL;
    if (body && len) {
        const char *ct = opsc_http_req_header(req, "Content-Type");
        if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
            opsc_http_error(c, 415, "unsupported_media_type", "the body must be application/json",
                            NULL);
            return;
        }
        if (!(j = opsc__ingest_body(c, req))) {
            return;
        }
        if (!json_is_object(j)) {
            json_decref(j);
            opsc_http_error(c, 422, "validation", "the body must be a JSON object", NULL);
            return;
        }
    }
    call_t *x = call_new(arg, c, req, 1);
    if (!x) {
        json_decref(j);
        return;
    }
    x->b->kind = kind;
    char id[37];
    memcpy(id, rest, 36);
    id[36] = '\0';
    int rc = j ? read_options(c, req, j, x->b) : 0; /* answers its own errors */
    if (rc == 0 && (rc = add_id(x, id)) != 0) {
        opsc_http_error(c, 500, "internal", "out of memory", NULL);
    }
    if (rc != 0) {
        json_decref(j);
        call_free(x);
        return;
    }
    json_decref(j);
    start(x);
}

static void handle_bulk(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    json_t *j = opsc__ingest_body(c, req);
    if (!j) {
        return;
    }
    call_t *x = NULL;
    opsc_action_kind_t kind;
    const json_t *ids = json_object_get(j, "ids");
    const char *action = json_string_value(json_object_get(j, "action"));
    if (!json_is_object(j)) {
        opsc_http_error(c, 422, "validation", "the body must be a JSON object", NULL);
    } else if (!action || opsc_action_parse(action, &kind) != 0) {
        opsc_http_error(c, 422, "validation",
                        "action must be acknowledge, unacknowledge, resolve, suppress or reopen",
                        "action");
    } else if (!json_is_array(ids) || json_array_size(ids) == 0 ||
               json_array_size(ids) > BULK_MAX) {
        opsc_http_error(c, 422, "validation", "ids must be an array of 1 to 1000 alert ids", "ids");
    } else if ((x = call_new(arg, c, req, 0)) != NULL) {
        x->b->kind = kind;
        if (read_options(c, req, j, x->b) != 0) {
            goto fail;
        }
        for (size_t i = 0; i < json_array_size(ids); i++) {
            const json_t *v = json_array_get(ids, i);
            char field[32];
            snprintf(field, sizeof(field), "ids[%zu]", i);
            if (!json_is_string(v) || !uuid_ok(json_string_value(v), json_string_length(v))) {
                opsc_http_error(c, 422, "validation", "not an alert id (a UUID)", field);
                goto fail;
            }
            char id[37];
            opsc_uuid_t u;
            opsc_uuid_parse(json_string_value(v), &u);
            opsc_uuid_format(&u, id); /* lower case, as the database answers */
            for (size_t k = 0; k < x->nids; k++) {
                if (strcmp(x->ids[k], id) == 0) {
                    opsc_http_error(c, 422, "validation", "the same id twice", field);
                    goto fail;
                }
            }
            if (add_id(x, id) != 0) {
                opsc_http_error(c, 500, "internal", "out of memory", NULL);
                goto fail;
            }
        }
        json_decref(j);
        start(x);
        return;
    }
    json_decref(j);
    return;
fail:
    json_decref(j);
    call_free(x);
}

static const opsc_http_route_t routes[] = {
    {.methods = OPSC_HTTP_M(OPSC_HTTP_POST),
     .path = "/api/v1/alerts/bulk",
     .handler = handle_bulk,
     .body_type = "application/json",
     .roles = OPSC_ROLES_OPERATE},
    /* The body is optional: its type is checked by the handler when there is one. */
    {.methods = OPSC_HTTP_M(OPSC_HTTP_POST),
     .path = PREFIX,
     .prefix = 1,
     .handler = handle_one,
     .roles = OPSC_ROLES_OPERATE},
};

int opsc__actions_add_routes(opsc_ingest_t *g, opsc_ops_server_t *srv) {
    return opsc_ops_server_add_routes(srv, routes, sizeof(routes) / sizeof(routes[0]), g);
}
