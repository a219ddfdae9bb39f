/*
 * The configuration API's engine: one set of handlers for every resource in
 * crud_resources.c.
 *
 * A request body is validated here, field by field, so that a 422 names the
 * field (and the item of a bulk request); what only the database can judge
 * (unique keys, cross-field CHECKs, time zones, dependency cycles) comes back
 * as its SQLSTATE and constraint name and is mapped to a field the same way.
 * The validated object goes to PostgreSQL whole, as one jsonb parameter, and
 * each column is taken out of it with a cast in the statement: one parameter
 * whatever the columns, and POST, PUT and the bulk upsert share the same
 * column expressions. Answers are built by PostgreSQL too (json_build_object
 * with timestamps formatted as RFC 3339 UTC), so a row never passes through a
 * C struct.
 */
#include "opsc/crud.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crud_int.h"
#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/http.h"
#include "opsc/log.h"
#include "opsc/ops_server.h"

#define LOG "api"
#define PREFIX "/api/v1/"
#define LIMIT_DEFAULT 100
#define LIMIT_MAX 1000
#define BULK_MAX 10000
#define BULK_ERRORS_MAX 1000 /* errors listed in one 422 */
#define MASK "********"

typedef struct res_sql_s {
    const crud_resource_t *r;
    char *obj; /* json_build_object(...) of a row */
} res_sql_t;

struct opsc_crud_s {
    opsc_pg_pool_t *pool;
    res_sql_t res[8];
    size_t n;
};

/* ---- SQL generation ----------------------------------------------------------------- */

static void out_expr(opsc_buf_t *b, const crud_field_t *f) {
    const char *n = f->name;
    if (f->flags & CRUD_SECRET) {
        opsc_buf_printf(b, "CASE WHEN %s IS NULL THEN NULL ELSE '" MASK "' END", n);
        return;
    }
    switch (f->type) {
    case CRUD_TS:
        opsc_buf_printf(b, "to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')", n);
        break;
    case CRUD_CIDR:
    case CRUD_INTERVAL:
        opsc_buf_printf(b, "%s::text", n);
        break;
    case CRUD_TIME:
        opsc_buf_printf(b, "to_char(%s, 'HH24:MI:SS')", n);
        break;
    default:
        opsc_buf_appends(b, n);
    }
}

/* The value of a field taken out of the jsonb "opsc_in" with its column's cast. */
static void in_expr(opsc_buf_t *b, const crud_field_t *f) {
    const char *n = f->name;
    switch (f->type) {
    case CRUD_TEXT:
        opsc_buf_printf(b, "(opsc_in->>'%s')", n);
        break;
    case CRUD_INT:
        opsc_buf_printf(b, "(opsc_in->>'%s')::integer", n);
        break;
    case CRUD_BOOL:
        opsc_buf_printf(b, "(opsc_in->>'%s')::boolean", n);
        break;
    case CRUD_NUM:
        opsc_buf_printf(b, "(opsc_in->>'%s')::numeric", n);
        break;
    case CRUD_TS:
        opsc_buf_printf(b, "(opsc_in->>'%s')::timestamptz", n);
        break;
    case CRUD_CIDR:
        opsc_buf_printf(b, "(opsc_in->>'%s')::cidr", n);
        break;
    case CRUD_TIME:
        opsc_buf_printf(b, "(opsc_in->>'%s')::time", n);
        break;
    case CRUD_INTERVAL:
        opsc_buf_printf(b, "(opsc_in->>'%s')::interval", n);
        break;
    case CRUD_OBJ:
    case CRUD_ARR:
        opsc_buf_printf(b, "nullif(opsc_in->'%s', 'null'::jsonb)", n);
        break;
    case CRUD_TEXT_ARR:
        opsc_buf_printf(b,
                        "CASE WHEN jsonb_typeof(opsc_in->'%s') = 'array' THEN "
                        "ARRAY(SELECT jsonb_array_elements_text(opsc_in->'%s')) END",
                        n, n);
        break;
    case CRUD_INT_ARR:
        opsc_buf_printf(b,
                        "CASE WHEN jsonb_typeof(opsc_in->'%s') = 'array' THEN "
                        "ARRAY(SELECT x::integer FROM jsonb_array_elements_text(opsc_in->'%s') x) "
                        "END",
                        n, n);
        break;
    }
}

/* An absent value on PUT and /bulk: the column's default, so a PUT is a whole new row. */
static void in_expr_full(opsc_buf_t *b, const crud_field_t *f) {
    if (f->dflt) {
        opsc_buf_appends(b, "coalesce(");
        in_expr(b, f);
        opsc_buf_printf(b, ", %s)", f->dflt);
    } else {
        in_expr(b, f);
    }
}

static int writable(const crud_field_t *f) {
    return !(f->flags & CRUD_RO);
}

static char *build_obj(const crud_resource_t *r) {
    opsc_buf_t b = OPSC_BUF_INIT;
    opsc_buf_appends(&b, "json_build_object('id', id");
    for (size_t i = 0; i < r->nfields; i++) {
        opsc_buf_printf(&b, ", '%s', ", r->fields[i].name);
        out_expr(&b, &r->fields[i]);
    }
    opsc_buf_appends(&b, ")::text");
    return b.base;
}

/* ---- requests ----------------------------------------------------------------------- */

typedef enum { OP_LIST, OP_GET, OP_CREATE, OP_REPLACE, OP_PATCH, OP_DELETE, OP_BULK } op_t;

typedef struct call_s {
    opsc_crud_t *crud;
    const res_sql_t *rs;
    opsc_http_conn_t *c;
    op_t op;
    json_t *in; /* the validated body (its fields name a 22xxx error's culprit) */
    long limit, offset;
} call_t;

static call_t *call_new(opsc_crud_t *crud, const res_sql_t *rs, opsc_http_conn_t *c, op_t op) {
    call_t *x = opsc_calloc(1, sizeof(*x));
    if (x) {
        x->crud = crud;
        x->rs = rs;
        x->c = c;
        x->op = op;
        opsc_http_hold(c);
    }
    return x;
}

static void call_end(call_t *x) {
    json_decref(x->in);
    opsc_http_release(x->c);
    opsc_free(x);
}

static const crud_field_t *field_by_name(const crud_resource_t *r, const char *name, size_t n) {
    for (size_t i = 0; i < r->nfields; i++) {
        if (strlen(r->fields[i].name) == n && strncmp(r->fields[i].name, name, n) == 0) {
            return &r->fields[i];
        }
    }
    return NULL;
}

/*
 * The database refused: a unique key is 409; a CHECK, a cast, a trigger's
 * "table.field: ..." refusal is 422 with the field when it can be named;
 * a foreign key still referring to the row is 409; anything else is 500
 * (logged) or 503 (no database).
 */
static void db_error(call_t *x, int err, const opsc_pg_res_t *res) {
    const crud_resource_t *r = x->rs->r;
    if (err != OPSC_EDB_QUERY) {
        opsc_http_error_retry(x->c, 503, "unavailable", "the database is not reachable", 5);
        return;
    }
    const char *st = opsc_pg_res_sqlstate(res), *msg = opsc_pg_res_message(res);
    for (size_t i = 0; i < r->nconstraints; i++) {
        const crud_constraint_t *k = &r->constraints[i];
        char quoted[160];
        snprintf(quoted, sizeof(quoted), "\"%s\"", k->name);
        if (strstr(msg, quoted)) {
            int conflict = strcmp(st, "23505") == 0 || strcmp(st, "23503") == 0;
            opsc_http_error(x->c, conflict ? 409 : 422, conflict ? "conflict" : "validation",
                            k->message, k->field);
            return;
        }
    }
    if (strcmp(st, "23505") == 0) {
        opsc_http_error(x->c, 409, "conflict", "a unique key of this resource exists already",
                        NULL);
        return;
    }
    if (strcmp(st, "23503") == 0) {
        opsc_http_error(x->c, 409, "conflict", "other rows still refer to this one", NULL);
        return;
    }
    if (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0) {
        /* "maintenance_windows.time_zone: unknown time zone" (a trigger's refusal) */
        size_t tl = strlen(r->table);
        const char *colon = strchr(msg, ':');
        if (strncmp(msg, r->table, tl) == 0 && msg[tl] == '.' && colon) {
            const crud_field_t *f = field_by_name(r, msg + tl + 1, (size_t)(colon - msg - tl - 1));
            if (f) {
                opsc_http_error(x->c, 422, "validation", msg, f->name);
                return;
            }
        }
        /* a value only PostgreSQL parses (interval): the field of that type in the body */
        for (size_t i = 0; x->in && i < r->nfields; i++) {
            const crud_field_t *f = &r->fields[i];
            if (f->type == CRUD_INTERVAL && strstr(msg, "interval") &&
                json_object_get(x->in, f->name)) {
                opsc_http_error(x->c, 422, "validation", msg, f->name);
                return;
            }
        }
        opsc_http_error(x->c, 422, "validation", msg, NULL);
        return;
    }
    opsc_log_err(LOG, "%s: SQLSTATE %s: %s", r->table, st, msg);
    opsc_http_error(x->c, 500, "internal", "the database refused the request", NULL);
}

static void on_row(int err, const opsc_pg_res_t *res, void *arg) {
    call_t *x = arg;
    if (!opsc_http_conn_gone(x->c)) {
        if (err != 0) {
            db_error(x, err, res);
        } else if (opsc_pg_res_ntuples(res) != 1) {
            opsc_http_error(x->c, 404, "not_found", "no such resource", NULL);
        } else if (x->op == OP_DELETE) {
            opsc_http_respond(x->c, 204, NULL, NULL, NULL, 0);
        } else {
            const char *v = opsc_pg_res_value(res, 0, 0);
            opsc_http_respond(x->c, x->op == OP_CREATE ? 201 : 200, "application/json", NULL, v,
                              strlen(v));
        }
    }
    call_end(x);
}

static void on_list(int err, const opsc_pg_res_t *res, void *arg) {
    call_t *x = arg;
    if (!opsc_http_conn_gone(x->c)) {
        json_t *items = NULL;
        if (err != 0) {
            db_error(x, err, res);
        } else if (opsc_pg_res_ntuples(res) != 1 ||
                   !(items = json_loads(opsc_pg_res_value(res, 0, 1), 0, NULL))) {
            opsc_http_error(x->c, 500, "internal", "cannot read the list", NULL);
        } else {
            json_t *j = json_pack("{s:o,s:I,s:I,s:I}", "items", items, "total",
                                  (json_int_t)strtoll(opsc_pg_res_value(res, 0, 0), NULL, 10),
                                  "limit", (json_int_t)x->limit, "offset", (json_int_t)x->offset);
            opsc_http_respond_json(x->c, 200, j);
        }
    }
    call_end(x);
}

static void on_bulk(int err, const opsc_pg_res_t *res, void *arg) {
    call_t *x = arg;
    if (!opsc_http_conn_gone(x->c)) {
        if (err != 0) {
            db_error(x, err, res);
        } else {
            json_t *j = json_pack("{s:I,s:I}", "created",
                                  (json_int_t)strtoll(opsc_pg_res_value(res, 0, 0), NULL, 10),
                                  "updated",
                                  (json_int_t)strtoll(opsc_pg_res_value(res, 0, 1), NULL, 10));
            opsc_http_respond_json(x->c, 200, j);
        }
    }
    call_end(x);
}

static void submit(call_t *x, opsc_pg_role_t role, const char *sql, int n, const char *const *p,
                   opsc_pg_cb cb) {
    if (!sql || opsc_pg_query(x->crud->pool, role, sql, n, p, cb, x) != 0) {
        opsc_http_error_retry(x->c, 503, "unavailable", "the database is busy", 1);
        call_end(x);
    }
}

/* ---- validation --------------------------------------------------------------------- */

typedef struct verr_s {
    json_t *list; /* [{"field", "message"}] */
    size_t n;
} verr_t;

static void verr_add(verr_t *e, const char *prefix, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void verr_add(verr_t *e, const char *prefix, const char *field, const char *fmt, ...) {
    e->n++;
    if (json_array_size(e->list) >= BULK_ERRORS_MAX) {
        return;
    }
    char f[256], m[512];
    snprintf(f, sizeof(f), "%s%s", prefix, field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    json_array_append_new(e->list, json_pack("{s:s,s:s}", "field", f, "message", m));
}

static size_t utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++) {
        n += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return n;
}

static int in_enum(const char *const *e, const char *s) {
    for (; *e; e++) {
        if (strcmp(*e, s) == 0) {
            return 1;
        }
    }
    return 0;
}

static void check_value(const crud_field_t *f, json_t *v, const char *pre, verr_t *e) {
    const char *n = f->name;
    switch (f->type) {
    case CRUD_TEXT:
    case CRUD_TS:
    case CRUD_CIDR:
    case CRUD_TIME:
    case CRUD_INTERVAL: {
        if (!json_is_string(v)) {
            verr_add(e, pre, n, "%s must be a string", n);
            return;
        }
        const char *s = json_string_value(v);
        const char *why;
        if (strlen(s) != json_string_length(v)) {
            verr_add(e, pre, n, "%s must not contain NUL characters", n);
        } else if (f->maxlen > 0 && utf8_chars(s) > (size_t)f->maxlen) {
            verr_add(e, pre, n, "%s: at most %d characters", n, f->maxlen);
        } else if ((f->flags & CRUD_REQ) && !*s) {
            verr_add(e, pre, n, "%s must not be empty", n);
        } else if (f->enums && !in_enum(f->enums, s)) {
            char all[256] = "";
            for (const char *const *x = f->enums; *x; x++) {
                snprintf(all + strlen(all), sizeof(all) - strlen(all), "%s%s",
                         x == f->enums ? "" : ", ", *x);
            }
            verr_add(e, pre, n, "%s must be one of %s", n, all);
        } else if (f->check && (why = f->check(s)) != NULL) {
            verr_add(e, pre, n, "%s %s", n, why);
        }
        return;
    }
    case CRUD_INT:
        if (!json_is_integer(v) || (f->min < f->max && (json_integer_value(v) < f->min ||
                                                        json_integer_value(v) > f->max))) {
            verr_add(e, pre, n, "%s must be an integer from %lld to %lld", n, f->min, f->max);
        }
        return;
    case CRUD_BOOL:
        if (!json_is_boolean(v)) {
            verr_add(e, pre, n, "%s must be true or false", n);
        }
        return;
    case CRUD_NUM:
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1) {
            verr_add(e, pre, n, "%s must be a number from 0 to 1", n);
        }
        return;
    case CRUD_OBJ:
        if (!json_is_object(v)) {
            verr_add(e, pre, n, "%s must be an object", n);
        }
        return;
    case CRUD_ARR:
        if (!json_is_array(v)) {
            verr_add(e, pre, n, "%s must be an array", n);
        }
        return;
    case CRUD_TEXT_ARR:
    case CRUD_INT_ARR: {
        if (!json_is_array(v)) {
            verr_add(e, pre, n, "%s must be an array", n);
            return;
        }
        size_t i;
        json_t *el;
        json_array_foreach(v, i, el) {
            char fn[128];
            snprintf(fn, sizeof(fn), "%s[%zu]", n, i);
            if (f->type == CRUD_TEXT_ARR) {
                if (!json_is_string(el) || strlen(json_string_value(el)) != json_string_length(el)) {
                    verr_add(e, pre, fn, "%s must be a string", fn);
                }
            } else if (!json_is_integer(el) || (f->min < f->max && (json_integer_value(el) < f->min ||
                                                                    json_integer_value(el) > f->max))) {
                verr_add(e, pre, fn, "%s must be an integer from %lld to %lld", fn, f->min, f->max);
            }
        }
        return;
    }
    }
}

/*
 * Validate one object against the resource. `full`: POST/PUT (required
 * fields present). Read-only fields and "id" are ignored, so that what a GET
 * answered can be PUT back; so is the mask in place of a secret.
 */
static void validate(const crud_resource_t *r, json_t *o, int full, const char *pre, verr_t *e) {
    if (!json_is_object(o)) {
        verr_add(e, pre, "", "%s must be an object", *pre ? pre : "the body");
        return;
    }
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(o, tmp, k, v) {
        const crud_field_t *f = field_by_name(r, k, strlen(k));
        if (!f && strcmp(k, "id") != 0) {
            verr_add(e, pre, k, "unknown field %s", k);
            continue;
        }
        if (!f || (f->flags & (CRUD_RO | CRUD_ACTOR)) ||
            ((f->flags & CRUD_SECRET) && json_is_string(v) &&
             strcmp(json_string_value(v), MASK) == 0)) {
            json_object_del(o, k);
            continue;
        }
        if (json_is_null(v)) {
            if (f->flags & (CRUD_REQ | CRUD_NN)) {
                verr_add(e, pre, k, "%s must not be null", k);
            }
            continue;
        }
        check_value(f, v, pre, e);
    }
    for (size_t i = 0; full && i < r->nfields; i++) {
        const crud_field_t *f = &r->fields[i];
        if ((f->flags & CRUD_REQ) && !json_object_get(o, f->name)) {
            verr_add(e, pre, f->name, "%s is required", f->name);
        }
    }
    /* Cheaper said here than by the CHECK, and with the field the client sent. */
    const char *a = json_string_value(json_object_get(o, "device_ip"));
    const char *b = json_string_value(json_object_get(o, "depends_on_ip"));
    if (strcmp(r->table, "dependencies") == 0 && a && b && strcmp(a, b) == 0) {
        verr_add(e, pre, "depends_on_ip", "a device cannot depend on itself");
    }
}

static void answer_verr(opsc_http_conn_t *c, verr_t *e) {
    json_t *first = json_array_get(e->list, 0);
    char msg[600];
    if (e->n == 1) {
        snprintf(msg, sizeof(msg), "%s", json_string_value(json_object_get(first, "message")));
    } else {
        snprintf(msg, sizeof(msg), "%zu invalid values; the first: %s", e->n,
                 json_string_value(json_object_get(first, "message")));
    }
    json_t *err = json_pack("{s:s,s:s,s:O,s:O}", "code", "validation", "message", msg, "field",
                            json_object_get(first, "field"), "errors", e->list);
    opsc_http_respond_json(c, 422, json_pack("{s:o}", "error", err));
}

/* ---- handlers ----------------------------------------------------------------------- */

static int uuid_ok(const char *s) {
    if (strlen(s) != 36) {
        return 0;
    }
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i])) {
            return 0;
        }
    }
    return 1;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Percent-decode in place ('+' is a space); -1 on a broken escape or a NUL. */
static int url_decode(char *s) {
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '+') {
            *o++ = ' ';
        } else if (*p == '%') {
            int h = hexval(p[1]), l = h < 0 ? -1 : hexval(p[2]);
            if (l < 0 || (h == 0 && l == 0)) {
                return -1;
            }
            *o++ = (char)(h * 16 + l);
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return 0;
}

static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

#define MAX_FILTERS 8

static void handle_list(opsc_crud_t *crud, const res_sql_t *rs, opsc_http_conn_t *c,
                        opsc_http_req_t *req) {
    const crud_resource_t *r = rs->r;
    char *q = opsc_strdup(opsc_http_req_query(req));
    const char *params[2 + MAX_FILTERS];
    char *fvals[MAX_FILTERS] = {0};
    long limit = LIMIT_DEFAULT, offset = 0;
    opsc_buf_t where = OPSC_BUF_INIT, sql = OPSC_BUF_INIT;
    int np = 2;
    char lbuf[24], obuf[24];
    call_t *x = NULL;
    if (!q) {
        opsc_http_error(c, 500, "internal", "out of memory", NULL);
        return;
    }
    for (char *save = NULL, *kv = strtok_r(q, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        char *val = eq ? eq + 1 : kv + strlen(kv);
        if (eq) {
            *eq = '\0';
        }
        if (url_decode(kv) != 0 || url_decode(val) != 0) {
            opsc_http_error(c, 400, "malformed", "a query parameter has a broken % escape", kv);
            goto done;
        }
        if (strcmp(kv, "limit") == 0) {
            if (parse_long(val, 1, LIMIT_MAX, &limit) != 0) {
                opsc_http_error(c, 422, "validation", "limit must be an integer from 1 to 1000",
                                "limit");
                goto done;
            }
            continue;
        }
        if (strcmp(kv, "offset") == 0) {
            if (parse_long(val, 0, 1000000000L, &offset) != 0) {
                opsc_http_error(c, 422, "validation", "offset must be a non-negative integer",
                                "offset");
                goto done;
            }
            continue;
        }
        for (size_t i = 0; i < r->nfilters; i++) {
            const crud_filter_t *f = &r->filters[i];
            if (strcmp(kv, f->param) != 0) {
                continue;
            }
            if (np - 2 >= MAX_FILTERS) {
                opsc_http_error(c, 422, "validation", "too many filters", kv);
                goto done;
            }
            if (f->kind == CRUD_F_BOOL && strcmp(val, "true") != 0 && strcmp(val, "false") != 0) {
                opsc_http_error(c, 422, "validation", "must be true or false", kv);
                goto done;
            }
            fvals[np - 2] = opsc_strdup(val);
            params[np] = fvals[np - 2];
            np++;
            opsc_buf_appends(&where, where.len ? " AND " : " WHERE ");
            switch (f->kind) {
            case CRUD_F_LIST:
                /* comma-separated values, any of them */
                opsc_buf_printf(&where, "%s = ANY(string_to_array($%d, ','))", f->column, np);
                break;
            case CRUD_F_CONTAINS:
                opsc_buf_printf(&where,
                                "%s ILIKE '%%' || replace(replace(replace($%d, '\\', '\\\\'), "
                                "'%%', '\\%%'), '_', '\\_') || '%%'",
                                f->column, np);
                break;
            case CRUD_F_BOOL:
                opsc_buf_printf(&where, "%s = $%d::boolean", f->column, np);
                break;
            }
        }
    }
    snprintf(lbuf, sizeof(lbuf), "%ld", limit);
    snprintf(obuf, sizeof(obuf), "%ld", offset);
    params[0] = lbuf;
    params[1] = obuf;
    const char *w = where.base ? where.base : "";
    /* The subquery's order carries into json_agg: PostgreSQL aggregates rows as they come. */
    opsc_buf_printf(&sql,
                    "SELECT (SELECT count(*) FROM %s%s), (SELECT coalesce(json_agg(o), '[]') FROM "
                    "(SELECT %s::json AS o FROM %s%s ORDER BY %s, id LIMIT $1::integer OFFSET "
                    "$2::integer) s)",
                    r->table, w, rs->obj, r->table, w, r->order);
    x = call_new(crud, rs, c, OP_LIST);
    if (!x) {
        opsc_http_error(c, 500, "internal", "out of memory", NULL);
        goto done;
    }
    x->limit = limit;
    x->offset = offset;
    submit(x, OPSC_PG_READER, sql.base, np, params, on_list);
done:
    for (int i = 0; i < MAX_FILTERS; i++) {
        opsc_free(fvals[i]);
    }
    opsc_buf_free(&where);
    opsc_buf_free(&sql);
    opsc_free(q);
}

static json_t *load_body(opsc_http_conn_t *c, opsc_http_req_t *req) {
    size_t len = 0;
    const char *body = opsc_http_req_body(req, &len);
    json_error_t jerr;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        char msg[256];
        snprintf(msg, sizeof(msg), "the body is not JSON: %s (at %d:%d)", jerr.text, jerr.line,
                 jerr.column);
        opsc_http_error(c, 400, "malformed", msg, NULL);
    }
    return j;
}

static void handle_write(opsc_crud_t *crud, const res_sql_t *rs, opsc_http_conn_t *c,
                         opsc_http_req_t *req, op_t op, const char *id) {
    const crud_resource_t *r = rs->r;
    json_t *in = load_body(c, req);
    if (!in) {
        return;
    }
    verr_t e = {json_array(), 0};
    validate(r, in, op != OP_PATCH, "", &e);
    if (e.n > 0) {
        answer_verr(c, &e);
        json_decref(e.list);
        json_decref(in);
        return;
    }
    json_decref(e.list);
    opsc_buf_t sql = OPSC_BUF_INIT;
    const opsc_principal_t *who = opsc_http_req_principal(req);
    if (op == OP_CREATE) {
        opsc_buf_t cols = OPSC_BUF_INIT, vals = OPSC_BUF_INIT;
        for (size_t i = 0; i < r->nfields; i++) {
            const crud_field_t *f = &r->fields[i];
            if (f->flags & CRUD_ACTOR) {
                json_object_set_new(in, f->name, json_string(who ? who->name : ""));
            }
            if (!writable(f) || !json_object_get(in, f->name)) {
                continue; /* the column's default */
            }
            opsc_buf_appends(&cols, cols.len ? ", " : "");
            opsc_buf_appends(&cols, f->name);
            opsc_buf_appends(&vals, vals.len ? ", " : "");
            in_expr(&vals, f);
        }
        opsc_buf_printf(&sql,
                        "INSERT INTO %s (%s) SELECT %s FROM (SELECT $1::jsonb AS opsc_in) s "
                        "RETURNING %s",
                        r->table, cols.base, vals.base, rs->obj);
        opsc_buf_free(&cols);
        opsc_buf_free(&vals);
    } else {
        opsc_buf_printf(&sql, "UPDATE %s SET ", r->table);
        size_t set = 0;
        for (size_t i = 0; i < r->nfields; i++) {
            const crud_field_t *f = &r->fields[i];
            int present = json_object_get(in, f->name) != NULL;
            /* PUT replaces the row, but keeps a secret it was not given, and the creator */
            if (!writable(f) || (f->flags & CRUD_ACTOR) ||
                ((op == OP_PATCH || (f->flags & CRUD_SECRET)) && !present)) {
                continue;
            }
            opsc_buf_printf(&sql, "%s%s = ", set++ ? ", " : "", f->name);
            if (op == OP_PATCH) {
                in_expr(&sql, f);
            } else {
                in_expr_full(&sql, f);
            }
        }
        if (set == 0) {
            opsc_buf_printf(&sql, "id = %s.id", r->table);
        }
        opsc_buf_printf(&sql, " FROM (SELECT $2::jsonb AS opsc_in) s WHERE %s.id = $1::uuid "
                              "RETURNING %s",
                        r->table, rs->obj);
    }
    char *text = json_dumps(in, JSON_COMPACT);
    call_t *x = call_new(crud, rs, c, op);
    if (!x || !text || !sql.base) {
        if (x) {
            call_end(x);
        }
        opsc_http_error(c, 500, "internal", "out of memory", NULL);
    } else {
        x->in = in;
        in = NULL;
        const char *p1[1] = {text}, *p2[2] = {id, text};
        if (op == OP_CREATE) {
            submit(x, OPSC_PG_WRITER, sql.base, 1, p1, on_row);
        } else {
            submit(x, OPSC_PG_WRITER, sql.base, 2, p2, on_row);
        }
    }
    free(text);
    json_decref(in);
    opsc_buf_free(&sql);
}

/*
 * POST /{resource}/bulk: upsert by the unique field, every item or none. The
 * whole array is validated first and every bad item is listed; then one
 * INSERT ... ON CONFLICT statement writes them all, which PostgreSQL runs as
 * one transaction.
 */
static void handle_bulk(opsc_crud_t *crud, const res_sql_t *rs, opsc_http_conn_t *c,
                        opsc_http_req_t *req) {
    const crud_resource_t *r = rs->r;
    json_t *in = load_body(c, req);
    if (!in) {
        return;
    }
    json_t *items = json_is_array(in) ? in : json_object_get(in, "items");
    if (!json_is_array(items) || json_array_size(items) == 0 ||
        json_array_size(items) > BULK_MAX) {
        opsc_http_error(c, 422, "validation",
                        "the body must be an array of 1 to 10000 items (or {\"items\": [...]})",
                        "items");
        json_decref(in);
        return;
    }
    const crud_field_t *key = NULL;
    for (size_t i = 0; i < r->nfields; i++) {
        if (r->fields[i].flags & CRUD_UNIQUE) {
            key = &r->fields[i];
        }
    }
    verr_t e = {json_array(), 0};
    json_t *seen = json_object();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        char pre[48];
        snprintf(pre, sizeof(pre), "items[%zu].", i);
        size_t before = e.n;
        validate(r, it, 1, pre, &e);
        const char *k = json_string_value(json_object_get(it, key->name));
        if (e.n == before && k) {
            json_t *prev = json_object_get(seen, k);
            if (prev) {
                verr_add(&e, pre, key->name, "%s %s is also items[%lld]'s", key->name, k,
                         (long long)json_integer_value(prev));
            } else {
                json_object_set_new(seen, k, json_integer((json_int_t)i));
            }
        }
    }
    json_decref(seen);
    if (e.n > 0) {
        answer_verr(c, &e);
        json_decref(e.list);
        json_decref(in);
        return;
    }
    json_decref(e.list);
    opsc_buf_t cols = OPSC_BUF_INIT, vals = OPSC_BUF_INIT, upd = OPSC_BUF_INIT, sql = OPSC_BUF_INIT;
    for (size_t f = 0; f < r->nfields; f++) {
        const crud_field_t *fd = &r->fields[f];
        if (!writable(fd) || (fd->flags & (CRUD_ACTOR | CRUD_SECRET))) {
            continue;
        }
        opsc_buf_printf(&cols, "%s%s", cols.len ? ", " : "", fd->name);
        opsc_buf_appends(&vals, vals.len ? ", " : "");
        in_expr_full(&vals, fd);
        if (!(fd->flags & CRUD_UNIQUE)) {
            opsc_buf_printf(&upd, "%s%s = EXCLUDED.%s", upd.len ? ", " : "", fd->name, fd->name);
        }
    }
    /* xmax is 0 only in a row this statement inserted (not one it updated). */
    opsc_buf_printf(&sql,
                    "WITH u AS (INSERT INTO %s (%s) SELECT %s FROM jsonb_array_elements($1::jsonb) "
                    "AS s(opsc_in) ON CONFLICT (%s) DO UPDATE SET %s RETURNING (xmax = 0) AS ins) "
                    "SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM u",
                    r->table, cols.base, vals.base, key->name, upd.base);
    char *text = json_dumps(items, JSON_COMPACT);
    call_t *x = call_new(crud, rs, c, OP_BULK);
    if (!x || !text || !sql.base) {
        if (x) {
            call_end(x);
        }
        opsc_http_error(c, 500, "internal", "out of memory", NULL);
    } else {
        const char *p[1] = {text};
        submit(x, OPSC_PG_WRITER, sql.base, 1, p, on_bulk);
    }
    free(text);
    json_decref(in);
    opsc_buf_free(&cols);
    opsc_buf_free(&vals);
    opsc_buf_free(&upd);
    opsc_buf_free(&sql);
}

static void handle_one(opsc_crud_t *crud, const res_sql_t *rs, opsc_http_conn_t *c,
                       opsc_http_req_t *req, const char *id) {
    int m = opsc_http_req_method(req);
    if (!uuid_ok(id)) {
        opsc_http_error(c, 404, "not_found", "no such resource (ids are UUIDs)", NULL);
        return;
    }
    if (m == OPSC_HTTP_PUT || m == OPSC_HTTP_PATCH) {
        handle_write(crud, rs, c, req, m == OPSC_HTTP_PUT ? OP_REPLACE : OP_PATCH, id);
        return;
    }
    opsc_buf_t sql = OPSC_BUF_INIT;
    op_t op = m == OPSC_HTTP_DELETE ? OP_DELETE : OP_GET;
    if (op == OP_DELETE) {
        opsc_buf_printf(&sql, "DELETE FROM %s WHERE id = $1::uuid RETURNING id", rs->r->table);
    } else {
        opsc_buf_printf(&sql, "SELECT %s FROM %s WHERE id = $1::uuid", rs->obj, rs->r->table);
    }
    call_t *x = call_new(crud, rs, c, op);
    const char *p[1] = {id};
    if (!x) {
        opsc_http_error(c, 500, "internal", "out of memory", NULL);
    } else {
        submit(x, op == OP_DELETE ? OPSC_PG_WRITER : OPSC_PG_READER, sql.base, 1, p, on_row);
    }
    opsc_buf_free(&sql);
}

static void handle(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    opsc_crud_t *crud = arg;
    const char *path = opsc_http_req_path(req) + strlen(PREFIX);
    for (size_t i = 0; i < crud->n; i++) {
        const res_sql_t *rs = &crud->res[i];
        size_t n = strlen(rs->r->name);
        if (strncmp(path, rs->r->name, n) != 0 || (path[n] != '\0' && path[n] != '/')) {
            continue;
        }
        const char *rest = path[n] == '/' ? path + n + 1 : NULL;
        int m = opsc_http_req_method(req);
        if (!rest) {
            if (m == OPSC_HTTP_POST) {
                handle_write(crud, rs, c, req, OP_CREATE, NULL);
            } else {
                handle_list(crud, rs, c, req);
            }
        } else if (rs->r->bulk && strcmp(rest, "bulk") == 0 && m == OPSC_HTTP_POST) {
            handle_bulk(crud, rs, c, req);
        } else {
            handle_one(crud, rs, c, req, rest);
        }
        return;
    }
    opsc_http_error(c, 404, "not_found", "no such resource", NULL);
}

/* Reads for every reading role; writes for admins, maintenance windows for operators too. */
#define GET_M OPSC_HTTP_M(OPSC_HTTP_GET)
#define POST_M OPSC_HTTP_M(OPSC_HTTP_POST)
#define ONE_W (OPSC_HTTP_M(OPSC_HTTP_PUT) | OPSC_HTTP_M(OPSC_HTTP_PATCH) | OPSC_HTTP_M(OPSC_HTTP_DELETE))
#define JSON "application/json"
#define RES_ROUTES(p, w)                                                                           \
    {.methods = GET_M, .path = PREFIX p, .handler = handle, .roles = OPSC_ROLES_READ},             \
        {.methods = POST_M,                                                                        \
         .path = PREFIX p,                                                                         \
         .handler = handle,                                                                        \
         .body_type = JSON,                                                                        \
         .max_body = 65536,                                                                        \
         .roles = (w)},                                                                            \
        {.methods = GET_M,                                                                         \
         .path = PREFIX p "/",                                                                     \
         .prefix = 1,                                                                              \
         .handler = handle,                                                                        \
         .roles = OPSC_ROLES_READ},                                                                \
    {                                                                                              \
        .methods = ONE_W, .path = PREFIX p "/", .prefix = 1, .handler = handle, .body_type = JSON, \
        .max_body = 65536, .roles = (w)                                                            \
    }

static const opsc_http_route_t routes[] = {
    /* before the /devices/ prefix routes: the bulk body may be large */
    {.methods = POST_M,
     .path = PREFIX "devices/bulk",
     .handler = handle,
     .body_type = JSON,
     .max_body = 16u << 20,
     .roles = OPSC_ROLES_ADMIN},
    RES_ROUTES("devices", OPSC_ROLES_ADMIN),
    RES_ROUTES("dependencies", OPSC_ROLES_ADMIN),
    RES_ROUTES("oid-mappings", OPSC_ROLES_ADMIN),
    RES_ROUTES("maintenance-windows", OPSC_ROLES_OPERATE),
    RES_ROUTES("notification-rules", OPSC_ROLES_ADMIN),
    RES_ROUTES("connectors", OPSC_ROLES_ADMIN),
};

/* ---- lifecycle ---------------------------------------------------------------------- */

int opsc_crud_create(opsc_pg_pool_t *pool, opsc_crud_t **out) {
    opsc_crud_t *c = opsc_calloc(1, sizeof(*c));
    if (!c) {
        return OPSC_ENOMEM;
    }
    c->pool = pool;
    for (size_t i = 0; i < opsc_crud_resources_count && i < sizeof(c->res) / sizeof(c->res[0]);
         i++) {
        c->res[i].r = &opsc_crud_resources[i];
        if (!(c->res[i].obj = build_obj(&opsc_crud_resources[i]))) {
            opsc_crud_destroy(c);
            return OPSC_ENOMEM;
        }
        c->n++;
    }
    *out = c;
    return 0;
}

void opsc_crud_destroy(opsc_crud_t *c) {
    if (!c) {
        return;
    }
    for (size_t i = 0; i < c->n; i++) {
        opsc_free(c->res[i].obj);
    }
    opsc_free(c);
}

int opsc_crud_add_routes(opsc_crud_t *c, opsc_ops_server_t *srv) {
    return opsc_ops_server_add_routes(srv, routes, sizeof(routes) / sizeof(routes[0]), c);
}
