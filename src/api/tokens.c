/*
 * API tokens: creation, listing and revocation over HTTP, and the in-memory
 * set of live tokens the authenticator checks on every request.
 *
 * The set is a sorted array of token hashes, replaced whole on every reload
 * (a query of the live rows); a reload asked for while one runs runs again
 * after it, so the last change is never missed. A token this instance
 * creates or revokes is added or removed at once as well, so the answer to
 * its own POST or DELETE already holds for the next request.
 */
#include "opsc/tokens.h"

#include "opsc/api_util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <jansson.h>
#include <mbedtls/sha256.h>

#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/metrics.h"
#include "opsc/ops_server.h"

#define LOG "api"
#define TOKEN_PREFIX "opsc_"
#define PREFIX_SHOWN 12 /* "opsc_" and 7 characters: enough to recognise a token in a list */

typedef struct tok_s {
    unsigned char hash[32];
    char id[37];
    char name[101];
    opsc_role_t role;
    int64_t expires_us; /* 0: never */
} tok_t;

struct opsc_tokens_s {
    uv_loop_t *loop;
    opsc_pg_pool_t *pool;
    tok_t *toks; /* sorted by hash */
    size_t n;
    int loading;
    int load_again;
    int listening;
    uint64_t n_reloads, n_created, n_revoked, n_load_errors;
};

static const char sql_load[] =
    "SELECT token_hash, id::text, name, role, "
    "CASE WHEN expires_at IS NULL THEN 0 ELSE (extract(epoch FROM expires_at) * 1000000)::int8 "
    "END FROM api_tokens WHERE revoked_at IS NULL";

#define RFC3339(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* The past is refused in the statement itself: no clock of ours to disagree with the database's. */
static const char sql_create[] =
    "INSERT INTO api_tokens (name, token_hash, token_prefix, role, created_by, expires_at) "
    "SELECT $1, $2, $3, $4, $5, $6::timestamptz WHERE $6::timestamptz IS NULL OR "
    "$6::timestamptz > now() "
    "RETURNING id::text, " RFC3339("created_at") ", " RFC3339(
        "expires_at") ", "
                      "CASE WHEN expires_at IS NULL THEN 0 ELSE (extract(epoch FROM expires_at) * "
                      "1000000)::int8 END";

static const char sql_list[] =
    "SELECT id::text, name, token_prefix, role, created_by, " RFC3339("created_at") ", " RFC3339(
        "expires_at") ", " RFC3339("last_used_at") ", " RFC3339("revoked_at") " "
                                                                              "FROM api_tokens "
                                                                              "ORDER BY "
                                                                              "created_at, id";

static const char sql_revoke[] =
    "UPDATE api_tokens SET revoked_at = now() WHERE id = $1::uuid AND revoked_at IS NULL "
    "RETURNING token_hash";

/* ---- the set of live tokens ------------------------------------------------------ */

static int cmp_tok(const void *a, const void *b) {
    return memcmp(((const tok_t *)a)->hash, ((const tok_t *)b)->hash, 32);
}

static void tok_fill(tok_t *k, const char *id, const char *name, opsc_role_t role, int64_t exp) {
    snprintf(k->id, sizeof(k->id), "%s", id ? id : "");
    snprintf(k->name, sizeof(k->name), "%s", name ? name : "");
    k->role = role;
    k->expires_us = exp;
}

static void set_add(opsc_tokens_t *t, const tok_t *k) {
    tok_t *n = opsc_realloc(t->toks, (t->n + 1) * sizeof(*n));
    if (!n) {
        return; /* the reload that the NOTIFY brings adds it */
    }
    t->toks = n;
    t->toks[t->n++] = *k;
    qsort(t->toks, t->n, sizeof(*t->toks), cmp_tok);
}

static void set_remove(opsc_tokens_t *t, const unsigned char hash[32]) {
    tok_t key;
    memcpy(key.hash, hash, 32);
    tok_t *k = t->n ? bsearch(&key, t->toks, t->n, sizeof(*t->toks), cmp_tok) : NULL;
    if (k) {
        size_t i = (size_t)(k - t->toks);
        memmove(k, k + 1, (t->n - i - 1) * sizeof(*k));
        t->n--;
    }
}

static void load(opsc_tokens_t *t);

static void on_loaded(int err, const opsc_pg_res_t *res, void *arg) {
    opsc_tokens_t *t = arg;
    t->loading = 0;
    if (err == OPSC_ESHUTDOWN) {
        return;
    }
    if (err != 0) {
        t->n_load_errors++;
        opsc_log_warn(LOG, "loading API tokens failed: %s; the previous set stays in use",
                      opsc_pg_res_message(res));
    } else {
        int rows = opsc_pg_res_ntuples(res);
        tok_t *v = opsc_calloc(rows > 0 ? (size_t)rows : 1, sizeof(*v));
        if (v) {
            size_t n = 0;
            for (int r = 0; r < rows; r++) {
                tok_t *k = &v[n];
                if (opsc_api_hex_to_hash(opsc_pg_res_value(res, r, 0), k->hash) != 0) {
                    continue;
                }
                const char *exp = opsc_pg_res_value(res, r, 4);
                tok_fill(k, opsc_pg_res_value(res, r, 1), opsc_pg_res_value(res, r, 2),
                         opsc_api_role_parse(opsc_pg_res_value(res, r, 3)),
                         exp ? strtoll(exp, NULL, 10) : 0);
                n++;
            }
            qsort(v, n, sizeof(*v), cmp_tok);
            opsc_free(t->toks);
            t->toks = v;
            t->n = n;
            t->n_reloads++;
        }
    }
    if (t->load_again) {
        t->load_again = 0;
        load(t);
    }
}

static void load(opsc_tokens_t *t) {
    if (t->loading) {
        t->load_again = 1;
        return;
    }
    if (opsc_pg_query(t->pool, OPSC_PG_READER, sql_load, 0, NULL, on_loaded, t) == 0) {
        t->loading = 1;
    }
}

static void on_notify(const char *channel, const char *payload, void *arg) {
    (void)channel;
    (void)payload;
    load(arg);
}

int opsc_tokens_check(opsc_tokens_t *t, const char *token, size_t len, int64_t now_us,
                      opsc_principal_t *out) {
    if (!t || len <= strlen(TOKEN_PREFIX) || strncmp(token, TOKEN_PREFIX, 5) != 0) {
        return 401;
    }
    tok_t key;
    mbedtls_sha256_ret((const unsigned char *)token, len, key.hash, 0);
    /* Looked up by its hash: a timing difference tells nothing about a valid token. */
    const tok_t *k = t->n ? bsearch(&key, t->toks, t->n, sizeof(*t->toks), cmp_tok) : NULL;
    if (!k || k->role == OPSC_ROLE_NONE || (k->expires_us != 0 && k->expires_us <= now_us)) {
        return 401;
    }
    out->role = k->role;
    snprintf(out->kind, sizeof(out->kind), "token");
    snprintf(out->id, sizeof(out->id), "%s", k->id);
    snprintf(out->name, sizeof(out->name), "token:%s", k->name);
    return 0;
}

/* ---- helpers ---------------------------------------------------------------------- */

int opsc_tokens_generate(char out[49]) {
    unsigned char r[32];
    size_t got = 0;
    while (got < sizeof(r)) {
        ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        got += (size_t)n;
    }
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    memcpy(out, TOKEN_PREFIX, 5);
    char *o = out + 5;
    for (size_t i = 0; i < 32; i += 3) {
        uint32_t v = (uint32_t)r[i] << 16;
        if (i + 1 < 32) {
            v |= (uint32_t)r[i + 1] << 8;
        }
        if (i + 2 < 32) {
            v |= r[i + 2];
        }
        size_t chars = i + 2 < 32 ? 4 : 3; /* 32 bytes: 43 characters, no padding */
        for (size_t j = 0; j < chars; j++) {
            *o++ = b64[(v >> (18 - 6 * j)) & 63];
        }
    }
    *o = '\0';
    return 0;
}

void opsc_tokens_hash_hex(const char *token, size_t len, char out[65]) {
    unsigned char h[32];
    mbedtls_sha256_ret((const unsigned char *)token, len, h, 0);
    for (int i = 0; i < 32; i++) {
        snprintf(out + 2 * i, 3, "%02x", h[i]);
    }
}

/* ---- HTTP ----------------------------------------------------------------------- */

typedef struct call_s {
    opsc_tokens_t *t;
    opsc_http_conn_t *c;
    tok_t tok;
    char token[49];
} call_t;

static call_t *call_new(opsc_tokens_t *t, opsc_http_conn_t *c) {
    call_t *x = opsc_calloc(1, sizeof(*x));
    if (x) {
        x->t = t;
        x->c = c;
        opsc_http_hold(c);
    }
    return x;
}

static void call_end(call_t *x) {
    opsc_http_release(x->c);
    memset(x->token, 0, sizeof(x->token));
    opsc_free(x);
}

static void on_created(int err, const opsc_pg_res_t *res, void *arg) {
    call_t *x = arg;
    if (!opsc_http_conn_gone(x->c)) {
        if (err == OPSC_EDB_QUERY && strncmp(opsc_pg_res_sqlstate(res), "22", 2) == 0) {
            opsc_http_error(x->c, 422, "validation", "expires_at is not a valid timestamp",
                            "expires_at");
        } else if (err != 0) {
            opsc_api_db_error(x->c, "API tokens", err, res);
        } else if (opsc_pg_res_ntuples(res) != 1) {
            opsc_http_error(x->c, 422, "validation", "expires_at must be in the future",
                            "expires_at");
        } else {
            const char *exp = opsc_pg_res_value(res, 0, 3);
            /* id and expiry from the row; name and role were filled from the request */
            snprintf(x->tok.id, sizeof(x->tok.id), "%s", opsc_pg_res_value(res, 0, 0));
            x->tok.expires_us = exp ? strtoll(exp, NULL, 10) : 0;
            set_add(x->t, &x->tok);
            x->t->n_created++;
            json_t *j = json_pack(
                "{s:s,s:s,s:s,s:s,s:o,s:s}", "id", x->tok.id, "name", x->tok.name, "role",
                opsc_api_role_name(x->tok.role), "created_at", opsc_pg_res_value(res, 0, 1),
                "expires_at", opsc_api_json_str(opsc_pg_res_value(res, 0, 2)), "token", x->token);
            opsc_http_respond_json(x->c, 201, j);
        }
    }
    call_end(x);
}

static void handle_create(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    opsc_tokens_t *t = arg;
    size_t len = 0;
    const char *body = opsc_http_req_body(req, &len);
    json_error_t jerr;
    json_t *j = json_loadb(body, len, 0, &jerr);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        opsc_http_error(c, 400, "malformed", "the body must be a JSON object", NULL);
        return;
    }
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *role = json_string_value(json_object_get(j, "role"));
    json_t *exp = json_object_get(j, "expires_at");
    if (!name || !*name || strlen(name) > 100) {
        opsc_http_error(c, 422, "validation", "name: a string of 1-100 characters is required",
                        "name");
    } else if (opsc_api_role_parse(role) == OPSC_ROLE_NONE) {
        opsc_http_error(c, 422, "validation", "role must be one of viewer, operator, admin, ingest",
                        "role");
    } else if (exp && !json_is_null(exp) && !json_is_string(exp)) {
        opsc_http_error(c, 422, "validation", "expires_at must be an RFC 3339 timestamp",
                        "expires_at");
    } else {
        call_t *x = call_new(t, c);
        char hash[65], prefix[PREFIX_SHOWN + 1];
        if (!x || opsc_tokens_generate(x->token) != 0) {
            if (x) {
                call_end(x);
            }
            opsc_http_error(c, 500, "internal", "cannot create a token now", NULL);
            json_decref(j);
            return;
        }
        opsc_tokens_hash_hex(x->token, strlen(x->token), hash);
        opsc_api_hex_to_hash(hash, x->tok.hash);
        memcpy(prefix, x->token, PREFIX_SHOWN);
        prefix[PREFIX_SHOWN] = '\0';
        tok_fill(&x->tok, "", name, opsc_api_role_parse(role), 0);
        const opsc_principal_t *who = opsc_http_req_principal(req);
        const char *params[6] = {
            name, hash, prefix, role, who ? who->name : NULL, json_string_value(exp)};
        if (opsc_pg_query(t->pool, OPSC_PG_WRITER, sql_create, 6, params, on_created, x) != 0) {
            call_end(x);
            opsc_http_error_retry(c, 503, "unavailable", "the database is busy", 1);
        }
    }
    json_decref(j);
}

static void on_listed(int err, const opsc_pg_res_t *res, void *arg) {
    call_t *x = arg;
    if (!opsc_http_conn_gone(x->c)) {
        if (err != 0) {
            opsc_api_db_error(x->c, "API tokens", err, res);
        } else {
            json_t *items = json_array();
            static const char *const cols[] = {"id",         "name",         "token_prefix",
                                               "role",       "created_by",   "created_at",
                                               "expires_at", "last_used_at", "revoked_at"};
            for (int r = 0; items && r < opsc_pg_res_ntuples(res); r++) {
                json_t *o = json_object();
                for (int k = 0; o && k < 9; k++) {
                    json_object_set_new(o, cols[k],
                                        opsc_api_json_str(opsc_pg_res_value(res, r, k)));
                }
                json_array_append_new(items, o);
            }
            opsc_http_respond_json(x->c, 200, json_pack("{s:o}", "items", items));
        }
    }
    call_end(x);
}

static void on_revoked(int err, const opsc_pg_res_t *res, void *arg) {
    call_t *x = arg;
    if (err == 0 && opsc_pg_res_ntuples(res) == 1) {
        unsigned char h[32];
        if (opsc_api_hex_to_hash(opsc_pg_res_value(res, 0, 0), h) == 0) {
            set_remove(x->t, h);
        }
        x->t->n_revoked++;
    }
    if (!opsc_http_conn_gone(x->c)) {
        if (err == OPSC_EDB_QUERY && strncmp(opsc_pg_res_sqlstate(res), "22", 2) == 0) {
            opsc_http_error(x->c, 404, "not_found", "no such token", NULL);
        } else if (err != 0) {
            opsc_api_db_error(x->c, "API tokens", err, res);
        } else if (opsc_pg_res_ntuples(res) != 1) {
            opsc_http_error(x->c, 404, "not_found", "no such token (or already revoked)", NULL);
        } else {
            opsc_http_respond(x->c, 204, NULL, NULL, NULL, 0);
        }
    }
    call_end(x);
}

static void handle_list(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    (void)req;
    opsc_tokens_t *t = arg;
    call_t *x = call_new(t, c);
    if (!x || opsc_pg_query(t->pool, OPSC_PG_READER, sql_list, 0, NULL, on_listed, x) != 0) {
        if (x) {
            call_end(x);
        }
        opsc_http_error_retry(c, 503, "unavailable", "the database is busy", 1);
    }
}

static void handle_tokens(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    if (opsc_http_req_method(req) == OPSC_HTTP_POST) {
        handle_create(c, req, arg);
    } else {
        handle_list(c, req, arg);
    }
}

static void handle_revoke(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    opsc_tokens_t *t = arg;
    const char *id = opsc_http_req_path(req) + strlen("/api/v1/tokens/");
    if (strlen(id) != 36 || strchr(id, '/')) {
        opsc_http_error(c, 404, "not_found", "no such token", NULL);
        return;
    }
    call_t *x = call_new(t, c);
    const char *params[1] = {id};
    if (!x || opsc_pg_query(t->pool, OPSC_PG_WRITER, sql_revoke, 1, params, on_revoked, x) != 0) {
        if (x) {
            call_end(x);
        }
        opsc_http_error_retry(c, 503, "unavailable", "the database is busy", 1);
    }
}

static const opsc_http_route_t routes[] = {
    {.methods = OPSC_HTTP_M(OPSC_HTTP_GET) | OPSC_HTTP_M(OPSC_HTTP_POST),
     .path = "/api/v1/tokens",
     .handler = handle_tokens,
     .body_type = "application/json",
     .max_body = 4096,
     .roles = OPSC_ROLES_ADMIN},
    {.methods = OPSC_HTTP_M(OPSC_HTTP_DELETE),
     .path = "/api/v1/tokens/",
     .prefix = 1,
     .handler = handle_revoke,
     .roles = OPSC_ROLES_ADMIN},
};

/* ---- lifecycle -------------------------------------------------------------------- */

int opsc_tokens_create(uv_loop_t *loop, opsc_pg_pool_t *pool, opsc_tokens_t **out) {
    opsc_tokens_t *t = opsc_calloc(1, sizeof(*t));
    if (!t) {
        return OPSC_ENOMEM;
    }
    t->loop = loop;
    t->pool = pool;
    *out = t;
    return 0;
}

void opsc_tokens_destroy(opsc_tokens_t *t) {
    if (!t) {
        return;
    }
    opsc_free(t->toks);
    opsc_free(t);
}

void opsc_tokens_start(opsc_tokens_t *t) {
    if (!t->listening && opsc_pg_listen(t->pool, "opsc_api_tokens", on_notify, t) == 0) {
        t->listening = 1;
    }
    load(t);
}

int opsc_tokens_add_routes(opsc_tokens_t *t, opsc_ops_server_t *srv) {
    return opsc_ops_server_add_routes(srv, routes, sizeof(routes) / sizeof(routes[0]), t);
}

void opsc_tokens_metrics(opsc_buf_t *out, void *arg) {
    opsc_tokens_t *t = arg;
    opsc_metrics_one_u64(out, "opsc_api_tokens_live", "gauge",
                         "API tokens in the in-memory set (not revoked)", t->n);
    opsc_metrics_one_u64(out, "opsc_api_tokens_created_total", "counter",
                         "API tokens created by this instance", t->n_created);
    opsc_metrics_one_u64(out, "opsc_api_tokens_revoked_total", "counter",
                         "API tokens revoked by this instance", t->n_revoked);
    opsc_metrics_one_u64(out, "opsc_api_tokens_reloads_total", "counter",
                         "Reloads of the token set from the database", t->n_reloads);
}
