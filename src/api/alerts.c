/*
 * Alert reads. Each request becomes one statement (or one batch, when the
 * total is counted beside the page) on a reader connection; the connection
 * is held until the answer, which may come after the client left.
 */
#include "opsc/alerts_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "opsc/alert_json.h"
#include "opsc/alert_query.h"
#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/http.h"
#include "opsc/log.h"
#include "opsc/ops_server.h"

#define LOG "api"
#define PREFIX "/api/v1/alerts/"

struct opsc_alerts_api_s {
    opsc_pg_pool_t *pool;
};

typedef enum { CALL_LIST, CALL_STATS, CALL_ONE, CALL_HISTORY } call_kind_t;

typedef struct call_s {
    opsc_http_conn_t *c;
    call_kind_t kind;
    int limit;
    long offset;
} call_t;

static call_t *call_new(opsc_http_conn_t *c, call_kind_t kind) {
    call_t *x = opsc_calloc(1, sizeof(*x));
    if (x) {
        x->c = c;
        x->kind = kind;
        opsc_http_hold(c);
    }
    return x;
}

static void call_end(call_t *x) {
    opsc_http_release(x->c);
    opsc_free(x);
}

static void db_error(opsc_http_conn_t *c, int err, const opsc_pg_res_t *res) {
    if (err == OPSC_EDB_QUERY) {
        opsc_log_err(LOG, "alert read: SQLSTATE %s: %s", opsc_pg_res_sqlstate(res),
                     opsc_pg_res_message(res));
        opsc_http_error(c, 500, "internal", "the database refused the request", NULL);
    } else {
        opsc_http_error_retry(c, 503, "unavailable", "the database is not reachable", 5);
    }
}

static json_t *str_or_null(const char *s) {
    return s ? json_string(s) : json_null();
}

static json_t *page_json(const opsc_pg_res_t *res) {
    json_t *items = json_array();
    for (int r = 0; items && r < opsc_pg_res_ntuples(res); r++) {
        json_array_append_new(items, opsc_alert_json_row(res, r, 0));
    }
    return items;
}

static json_t *stats_json(const opsc_pg_res_t *res) {
    static const char *const keys[] = {"by_status", "by_severity", "by_category", "by_priority"};
    json_t *o = json_object();
    json_t *by[4];
    long long total = 0;
    for (int k = 0; k < 4; k++) {
        by[k] = json_object();
        json_object_set_new(o, keys[k], by[k]);
    }
    /* Rows: (which grouping 0-3, value, count). */
    for (int r = 0; r < opsc_pg_res_ntuples(res); r++) {
        int g = atoi(opsc_pg_res_value(res, r, 0));
        long long n = strtoll(opsc_pg_res_value(res, r, 2), NULL, 10);
        const char *v = opsc_pg_res_value(res, r, 1);
        if (g >= 0 && g < 4) {
            json_object_set_new(by[g], v ? v : "none", json_integer(n));
            total += g == 0 ? n : 0;
        }
    }
    json_object_set_new(o, "total", json_integer(total));
    return o;
}

static json_t *history_json(const opsc_pg_res_t *res) {
    static const char *const cols[] = {"id",         "alert_id",  "action",    "old_status",
                                       "new_status", "user_id",   "user_name", "notes",
                                       "changes",    "created_at"};
    json_t *items = json_array();
    for (int r = 0; items && r < opsc_pg_res_ntuples(res); r++) {
        json_t *o = json_object();
        for (int k = 0; o && k < 10; k++) {
            const char *v = opsc_pg_res_value(res, r, k);
            json_t *j = k == 8 && v ? json_loads(v, JSON_DECODE_ANY, NULL) : str_or_null(v);
            json_object_set_new(o, cols[k], j ? j : json_null());
        }
        json_array_append_new(items, o);
    }
    return items;
}

static void on_result(int err, const opsc_pg_res_t *res, void *arg) {
    call_t *x = arg;
    if (opsc_http_conn_gone(x->c)) {
        call_end(x);
        return;
    }
    if (err != 0) {
        db_error(x->c, err, res);
        call_end(x);
        return;
    }
    switch (x->kind) {
    case CALL_LIST: {
        const opsc_pg_res_t *count = opsc_pg_res_item(res, 0), *page = opsc_pg_res_item(res, 1);
        opsc_http_respond_json(
            x->c, 200,
            json_pack("{s:o,s:I,s:i,s:I}", "items", page_json(page), "total",
                      (json_int_t)strtoll(opsc_pg_res_value(count, 0, 0), NULL, 10), "limit",
                      x->limit, "offset", (json_int_t)x->offset));
        break;
    }
    case CALL_STATS:
        opsc_http_respond_json(x->c, 200, stats_json(res));
        break;
    case CALL_ONE:
        if (opsc_pg_res_ntuples(res) != 1) {
            opsc_http_error(x->c, 404, "not_found", "no such alert", NULL);
        } else {
            opsc_http_respond_json(x->c, 200, opsc_alert_json_row(res, 0, 0));
        }
        break;
    case CALL_HISTORY: {
        const opsc_pg_res_t *exists = opsc_pg_res_item(res, 0), *rows = opsc_pg_res_item(res, 1);
        if (opsc_pg_res_ntuples(exists) != 1) {
            opsc_http_error(x->c, 404, "not_found", "no such alert", NULL);
        } else {
            opsc_http_respond_json(x->c, 200, json_pack("{s:o}", "items", history_json(rows)));
        }
        break;
    }
    }
    call_end(x);
}

static void busy(opsc_http_conn_t *c) {
    opsc_http_error_retry(c, 503, "unavailable", "the database is busy", 1);
}

/* Parse the filters; on a bad one answer 422 and return -1. */
static int parse_or_422(opsc_http_conn_t *c, opsc_http_req_t *req, opsc_alert_query_t *q) {
    char field[64], msg[256];
    if (opsc_alert_query_parse(opsc_http_req_query(req), q, field, sizeof(field), msg,
                               sizeof(msg)) != 0) {
        opsc_http_error(c, 422, "validation", msg, field);
        opsc_alert_query_free(q);
        return -1;
    }
    return 0;
}

static void handle_list(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    opsc_alerts_api_t *a = arg;
    opsc_alert_query_t q;
    if (parse_or_422(c, req, &q) != 0) {
        return;
    }
    const char *params[OPSC_AQ_MAX_PARAMS + 2];
    int np = 0;
    char lim[16], off[24];
    opsc_buf_t where = OPSC_BUF_INIT, sql = OPSC_BUF_INIT;
    int rc = opsc_alert_query_where(&q, &where, params, &np);
    rc = rc ? rc
            : opsc_buf_printf(&sql, "SELECT %s FROM alerts a WHERE true%s", opsc_alert_json_columns,
                              where.base ? where.base : "");
    rc = rc ? rc : opsc_alert_query_order(&q, &sql);
    snprintf(lim, sizeof(lim), "%d", q.limit);
    snprintf(off, sizeof(off), "%ld", q.offset);
    params[np] = lim;
    params[np + 1] = off;
    rc = rc ? rc : opsc_buf_printf(&sql, " LIMIT $%d OFFSET $%d", np + 1, np + 2);
    call_t *x = rc ? NULL : call_new(c, CALL_LIST);
    opsc_pg_batch_t *b = x ? opsc_pg_batch_create(a->pool) : NULL;
    if (b) {
        opsc_buf_t count = OPSC_BUF_INIT;
        x->limit = q.limit;
        x->offset = q.offset;
        rc = opsc_buf_printf(&count, "SELECT count(*) FROM alerts a WHERE true%s",
                             where.base ? where.base : "");
        rc = rc ? rc : opsc_pg_batch_add_query(b, count.base, np, params);
        rc = rc ? rc : opsc_pg_batch_add_query(b, sql.base, np + 2, params);
        opsc_buf_free(&count);
        rc = rc ? (opsc_pg_batch_destroy(b), rc)
                : opsc_pg_batch_submit(b, OPSC_PG_READER, on_result, x);
    }
    if (!b || rc != 0) {
        if (x) {
            call_end(x);
        }
        busy(c);
    }
    opsc_buf_free(&where);
    opsc_buf_free(&sql);
    opsc_alert_query_free(&q);
}

static void handle_stats(opsc_http_conn_t *c, opsc_http_req_t *req, opsc_alerts_api_t *a) {
    opsc_alert_query_t q;
    if (parse_or_422(c, req, &q) != 0) {
        return;
    }
    const char *params[OPSC_AQ_MAX_PARAMS];
    int np = 0;
    opsc_buf_t where = OPSC_BUF_INIT, sql = OPSC_BUF_INIT;
    int rc = opsc_alert_query_where(&q, &where, params, &np);
    /* One scan for the four counts: grouping() says which set a row belongs to. */
    rc = rc ? rc
            : opsc_buf_printf(
                  &sql,
                  "SELECT CASE WHEN grouping(a.status) = 0 THEN 0 WHEN grouping(a.severity) = 0 "
                  "THEN 1 WHEN grouping(a.category) = 0 THEN 2 ELSE 3 END, "
                  "coalesce(a.status, a.severity, a.category, a.priority), count(*) "
                  "FROM alerts a WHERE true%s GROUP BY GROUPING SETS ((a.status), (a.severity), "
                  "(a.category), (a.priority))",
                  where.base ? where.base : "");
    call_t *x = rc ? NULL : call_new(c, CALL_STATS);
    if (!x || opsc_pg_query(a->pool, OPSC_PG_READER, sql.base, np, params, on_result, x) != 0) {
        if (x) {
            call_end(x);
        }
        busy(c);
    }
    opsc_buf_free(&where);
    opsc_buf_free(&sql);
    opsc_alert_query_free(&q);
}

static int uuid_like(const char *s, size_t n) {
    if (n != 36) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]) || !s[i]) {
            return 0;
        }
    }
    return 1;
}

static void handle_one(opsc_http_conn_t *c, const char *id, int history, opsc_alerts_api_t *a) {
    char sql[2048];
    const char *params[1] = {id};
    call_t *x = call_new(c, history ? CALL_HISTORY : CALL_ONE);
    int rc = x ? 0 : OPSC_ENOMEM;
    if (rc == 0 && history) {
        opsc_pg_batch_t *b = opsc_pg_batch_create(a->pool);
        rc = b ? 0 : OPSC_ENOMEM;
        rc = rc ? rc
                : opsc_pg_batch_add_query(b, "SELECT 1 FROM alerts WHERE id = $1::uuid", 1, params);
        rc = rc ? rc
                : opsc_pg_batch_add_query(
                      b,
                      "SELECT id::text, alert_id::text, action, old_status, new_status, user_id, "
                      "user_name, notes, changes::text, " OPSC_RFC3339_SQL(
                          "created_at") " FROM alert_history WHERE alert_id = $1::uuid "
                                        "ORDER BY created_at, id",
                      1, params);
        if (b) {
            rc = rc ? (opsc_pg_batch_destroy(b), rc)
                    : opsc_pg_batch_submit(b, OPSC_PG_READER, on_result, x);
        }
    } else if (rc == 0) {
        snprintf(sql, sizeof(sql), "SELECT %s FROM alerts a WHERE a.id = $1::uuid",
                 opsc_alert_json_columns);
        rc = opsc_pg_query(a->pool, OPSC_PG_READER, sql, 1, params, on_result, x);
    }
    if (rc != 0) {
        if (x) {
            call_end(x);
        }
        busy(c);
    }
}

static void handle_sub(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    opsc_alerts_api_t *a = arg;
    const char *rest = opsc_http_req_path(req) + strlen(PREFIX);
    const char *slash = strchr(rest, '/');
    size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
    char id[37];
    if (strcmp(rest, "stats") == 0) {
        handle_stats(c, req, a);
    } else if (!uuid_like(rest, idlen) || (slash && strcmp(slash, "/history") != 0)) {
        opsc_http_error(c, 404, "not_found", "no such alert", NULL);
    } else {
        memcpy(id, rest, 36);
        id[36] = '\0';
        handle_one(c, id, slash != NULL, a);
    }
}

static const opsc_http_route_t routes[] = {
    {.methods = OPSC_HTTP_M(OPSC_HTTP_GET),
     .path = "/api/v1/alerts",
     .handler = handle_list,
     .roles = OPSC_ROLES_READ},
    {.methods = OPSC_HTTP_M(OPSC_HTTP_GET),
     .path = PREFIX,
     .prefix = 1,
     .handler = handle_sub,
     .roles = OPSC_ROLES_READ},
};

int opsc_alerts_api_create(opsc_pg_pool_t *pool, opsc_alerts_api_t **out) {
    opsc_alerts_api_t *a = opsc_calloc(1, sizeof(*a));
    if (!a) {
        return OPSC_ENOMEM;
    }
    a->pool = pool;
    *out = a;
    return 0;
}

void opsc_alerts_api_destroy(opsc_alerts_api_t *a) {
    opsc_free(a);
}

int opsc_alerts_api_add_routes(opsc_alerts_api_t *a, opsc_ops_server_t *srv) {
    return opsc_ops_server_add_routes(srv, routes, sizeof(routes) / sizeof(routes[0]), a);
}
