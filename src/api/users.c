/*
 * Users and console sessions: the in-memory sets the authenticator checks,
 * their reloads, and the HTTP routes that change them.
 *
 * Both sets are sorted arrays replaced whole by a reload (users, then live
 * sessions). A change of our own is applied to the arrays at once; a reload
 * that was already running when it happened could predate it, so its result
 * is thrown away and the reload runs again (at most a few times in a row).
 */
#include "opsc/users.h"

#include "opsc/api_util.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <mbedtls/sha256.h>

#include "opsc/alert.h"
#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/login_limit.h"
#include "opsc/metrics.h"
#include "opsc/ops_server.h"
#include "opsc/passwd.h"
#include "opsc/tokens.h"

#define LOG "api"
#define COOKIE "opsc_session"
#define LIMIT_SLOTS 8192 /* per limiter: ~1 MiB each, whatever the attack */
#define MAX_DISCARDS 3
#define PASSWORD_MIN 8
#define PASSWORD_MAX 1024

typedef struct user_s {
    char id[37];
    char username[101];
    char lname[101]; /* lower-cased: log-in is case-insensitive, like the unique index */
    char pw_hash[OPSC_PASSWD_HASH_MAX];
    opsc_role_t role;
    int active;
} user_t;

typedef struct sess_s {
    unsigned char hash[32];
    char user_id[37];
    int64_t expires_us;
} sess_t;

struct opsc_users_s {
    uv_loop_t *loop;
    opsc_pg_pool_t *pool;
    opsc_users_options_t o;
    user_t *users; /* sorted by id */
    size_t n_users;
    sess_t *sess; /* sorted by hash */
    size_t n_sess;
    user_t *pending_users; /* a reload's first half, until its sessions arrive */
    size_t n_pending;
    int loading, load_again, dirty, discards, listening, loaded_once, bootstrapping;
    opsc_login_limit_t *by_user, *by_addr;
    opsc_http_audit_fn audit_fn;
    void *audit_arg;
    uint64_t n_logins, n_login_failures, n_limited, n_reloads;
};

/*
 * Every statement goes through here: after opsc_users_stop (the pool is about to
 * close) a password hash finishing on the thread pool must not touch it.
 */
static int users_query(opsc_users_t *u, opsc_pg_role_t role, const char *sql, int nparams,
                       const char *const *params, opsc_pg_cb cb, void *arg) {
    if (!u->pool) {
        return OPSC_ESHUTDOWN;
    }
    return opsc_pg_query(u->pool, role, sql, nparams, params, cb, arg);
}

#define RFC3339(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define ROLE_OF(u)                                                                                 \
    "(SELECT r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE ur.user_id = " u    \
    ".id ORDER BY CASE r.name WHEN 'admin' THEN 4 WHEN 'operator' THEN 3 WHEN 'viewer' THEN 2 "    \
    "ELSE 1 END DESC LIMIT 1)"
/* The columns of a user as the API shows it, then the password hash for the cache (not shown). */
#define USER_COLS(u)                                                                               \
    u ".id::text, " u ".username, " u ".display_name, " u ".email, " u                             \
      ".is_active, " RFC3339(u ".last_login_at") ", " RFC3339(u ".created_at") ", " RFC3339(       \
          u ".updated_at") ", " u ".password_hash"
enum {
    C_ID,
    C_USERNAME,
    C_DISPLAY,
    C_EMAIL,
    C_ACTIVE,
    C_LAST_LOGIN,
    C_CREATED,
    C_UPDATED,
    C_HASH,
    C_ROLE
};

static const char sql_load_users[] = "SELECT " USER_COLS("u") ", " ROLE_OF("u") " FROM users u";
static const char sql_load_sessions[] =
    "SELECT token_hash, user_id::text, (extract(epoch FROM expires_at) * 1000000)::int8 "
    "FROM sessions WHERE revoked_at IS NULL AND expires_at > now()";
static const char sql_list[] =
    "SELECT " USER_COLS("u") ", " ROLE_OF("u") " FROM users u ORDER BY lower(u.username)";
static const char sql_get[] =
    "SELECT " USER_COLS("u") ", " ROLE_OF("u") " FROM users u WHERE u.id = $1::uuid";
static const char sql_create[] =
    "WITH u AS (INSERT INTO users (username, display_name, email, password_hash, is_active) "
    "SELECT $1, $2, $3, $4, COALESCE($5::bool, true) WHERE $8::bool IS NOT TRUE OR NOT EXISTS "
    "(SELECT 1 FROM users) RETURNING *), "
    "r AS (INSERT INTO user_roles (user_id, role_id, granted_by) SELECT u.id, roles.id, $7 "
    "FROM u, roles WHERE roles.name = $6) "
    "SELECT " USER_COLS("u") ", $6 FROM u";
/* Disabling a user or setting a password ends the user's sessions in the same statement. */
static const char sql_update[] =
    "WITH u AS (UPDATE users SET "
    "display_name = CASE WHEN $2::bool THEN $3 ELSE display_name END, "
    "email = CASE WHEN $4::bool THEN $5 ELSE email END, "
    "is_active = COALESCE($6::bool, is_active), "
    "password_hash = COALESCE($7, password_hash), "
    "password_changed_at = CASE WHEN $7::text IS NULL THEN password_changed_at ELSE now() END "
    "WHERE id = $1::uuid RETURNING *), "
    "d AS (DELETE FROM user_roles WHERE $8::text IS NOT NULL AND user_id IN (SELECT id FROM u) "
    "AND role_id <> (SELECT id FROM roles WHERE name = $8)), "
    "i AS (INSERT INTO user_roles (user_id, role_id, granted_by) SELECT u.id, r.id, $9 FROM u, "
    "roles r WHERE r.name = $8 ON CONFLICT DO NOTHING), "
    "s AS (UPDATE sessions SET revoked_at = now() WHERE revoked_at IS NULL AND user_id IN "
    "(SELECT id FROM u WHERE NOT is_active OR $7::text IS NOT NULL)) "
    "SELECT " USER_COLS("u") ", COALESCE($8, " ROLE_OF("u") ") FROM u";
static const char sql_delete[] = "DELETE FROM users WHERE id = $1::uuid RETURNING id::text";
static const char sql_login[] =
    "WITH s AS (INSERT INTO sessions (user_id, token_hash, expires_at, ip_address, user_agent) "
    "SELECT id, $2, now() + $3::int8 * interval '1 millisecond', NULLIF($4, ''), $5 FROM users "
    "WHERE id = $1::uuid AND is_active RETURNING expires_at), "
    "u AS (UPDATE users SET last_login_at = now(), password_hash = COALESCE($6, password_hash) "
    "WHERE id = $1::uuid AND EXISTS (SELECT 1 FROM s)) "
    "SELECT (extract(epoch FROM expires_at) * 1000000)::int8, " RFC3339("expires_at") " FROM s";
static const char sql_logout[] =
    "UPDATE sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL";

/* ---- roles, hex, lookups ------------------------------------------------------------- */

static void lower_copy(char *dst, size_t cap, const char *src) {
    size_t i = 0;
    for (; src[i] && i + 1 < cap; i++) {
        dst[i] = (char)tolower((unsigned char)src[i]);
    }
    dst[i] = '\0';
}

static int cmp_user(const void *a, const void *b) {
    return strcmp(((const user_t *)a)->id, ((const user_t *)b)->id);
}

static int cmp_sess(const void *a, const void *b) {
    return memcmp(((const sess_t *)a)->hash, ((const sess_t *)b)->hash, 32);
}

static user_t *user_by_id(opsc_users_t *u, const char *id) {
    user_t key;
    snprintf(key.id, sizeof(key.id), "%s", id);
    return u->n_users ? bsearch(&key, u->users, u->n_users, sizeof(*u->users), cmp_user) : NULL;
}

static user_t *user_by_name(opsc_users_t *u, const char *name) {
    char l[101];
    lower_copy(l, sizeof(l), name);
    for (size_t i = 0; i < u->n_users; i++) {
        if (strcmp(u->users[i].lname, l) == 0) {
            return &u->users[i];
        }
    }
    return NULL;
}

static void user_from_row(user_t *x, const opsc_pg_res_t *res, int r) {
    memset(x, 0, sizeof(*x));
    snprintf(x->id, sizeof(x->id), "%s", opsc_pg_res_value(res, r, C_ID));
    snprintf(x->username, sizeof(x->username), "%s", opsc_pg_res_value(res, r, C_USERNAME));
    lower_copy(x->lname, sizeof(x->lname), x->username);
    const char *h = opsc_pg_res_value(res, r, C_HASH);
    snprintf(x->pw_hash, sizeof(x->pw_hash), "%s", h ? h : "");
    const char *a = opsc_pg_res_value(res, r, C_ACTIVE);
    x->active = a && a[0] == 't';
    x->role = opsc_api_role_parse(opsc_pg_res_value(res, r, C_ROLE));
}

/* Our own write of a user: replace or add it. On allocation failure the reload brings it. */
static void user_put(opsc_users_t *u, const user_t *x) {
    user_t *old = user_by_id(u, x->id);
    if (old) {
        *old = *x;
        return;
    }
    user_t *n = opsc_realloc(u->users, (u->n_users + 1) * sizeof(*n));
    if (!n) {
        return;
    }
    u->users = n;
    u->users[u->n_users++] = *x;
    qsort(u->users, u->n_users, sizeof(*u->users), cmp_user);
    u->dirty = u->loading;
}

static void sessions_drop_user(opsc_users_t *u, const char *user_id) {
    size_t k = 0;
    for (size_t i = 0; i < u->n_sess; i++) {
        if (strcmp(u->sess[i].user_id, user_id) != 0) {
            u->sess[k++] = u->sess[i];
        }
    }
    u->n_sess = k; /* order kept: still sorted */
}

static void user_drop(opsc_users_t *u, const char *id) {
    user_t *x = user_by_id(u, id);
    if (x) {
        size_t i = (size_t)(x - u->users);
        memmove(x, x + 1, (u->n_users - i - 1) * sizeof(*x));
        u->n_users--;
    }
    sessions_drop_user(u, id);
    u->dirty = u->loading;
}

static void session_put(opsc_users_t *u, const sess_t *s) {
    sess_t *n = opsc_realloc(u->sess, (u->n_sess + 1) * sizeof(*n));
    if (!n) {
        return;
    }
    u->sess = n;
    u->sess[u->n_sess++] = *s;
    qsort(u->sess, u->n_sess, sizeof(*u->sess), cmp_sess);
    u->dirty = u->loading;
}

static void session_drop(opsc_users_t *u, const unsigned char hash[32]) {
    sess_t key;
    memcpy(key.hash, hash, 32);
    sess_t *s = u->n_sess ? bsearch(&key, u->sess, u->n_sess, sizeof(*u->sess), cmp_sess) : NULL;
    if (s) {
        size_t i = (size_t)(s - u->sess);
        memmove(s, s + 1, (u->n_sess - i - 1) * sizeof(*s));
        u->n_sess--;
    }
    u->dirty = u->loading;
}

/* ---- the authenticator's side --------------------------------------------------------- */

const char *opsc_users_cookie(const char *header, const char *name, size_t *len) {
    size_t nl = strlen(name);
    const char *p = header;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ';') {
            p++;
        }
        const char *end = strchr(p, ';');
        size_t l = end ? (size_t)(end - p) : strlen(p);
        if (l > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            const char *v = p + nl + 1;
            size_t vl = l - nl - 1;
            while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) {
                vl--;
            }
            if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
                v++;
                vl -= 2;
            }
            *len = vl;
            return vl ? v : NULL;
        }
        p = end;
    }
    return NULL;
}

int opsc_users_check_session(opsc_users_t *u, const char *cookie_header, int64_t now_us,
                             opsc_principal_t *out) {
    size_t len = 0;
    const char *v = u ? opsc_users_cookie(cookie_header, COOKIE, &len) : NULL;
    if (!v) {
        return 401;
    }
    sess_t key;
    mbedtls_sha256_ret((const unsigned char *)v, len, key.hash, 0);
    /* Looked up by its hash: timing says nothing about a valid cookie. */
    const sess_t *s =
        u->n_sess ? bsearch(&key, u->sess, u->n_sess, sizeof(*u->sess), cmp_sess) : NULL;
    const user_t *x = s && s->expires_us > now_us ? user_by_id(u, s->user_id) : NULL;
    if (!x || !x->active || x->role == OPSC_ROLE_NONE) {
        return 401;
    }
    out->role = x->role;
    snprintf(out->kind, sizeof(out->kind), "session");
    snprintf(out->id, sizeof(out->id), "%s", x->id);
    snprintf(out->name, sizeof(out->name), "%s", x->username);
    return 0;
}

/* ---- reloads and the first admin ------------------------------------------------------ */

static void load(opsc_users_t *u);
static void bootstrap(opsc_users_t *u);

static void load_done(opsc_users_t *u) {
    u->loading = 0;
    if (u->load_again) {
        u->load_again = 0;
        load(u);
    }
}

static void on_sessions_loaded(int err, const opsc_pg_res_t *res, void *arg) {
    opsc_users_t *u = arg;
    if (err == OPSC_ESHUTDOWN) {
        opsc_free(u->pending_users);
        u->pending_users = NULL;
        u->loading = 0;
        return;
    }
    sess_t *v = NULL;
    size_t n = 0;
    if (err == 0) {
        int rows = opsc_pg_res_ntuples(res);
        v = opsc_calloc(rows > 0 ? (size_t)rows : 1, sizeof(*v));
        for (int r = 0; v && r < rows; r++) {
            sess_t *s = &v[n];
            const char *exp = opsc_pg_res_value(res, r, 2);
            if (opsc_api_hex_to_hash(opsc_pg_res_value(res, r, 0), s->hash) == 0 && exp) {
                snprintf(s->user_id, sizeof(s->user_id), "%s", opsc_pg_res_value(res, r, 1));
                s->expires_us = strtoll(exp, NULL, 10);
                n++;
            }
        }
    } else {
        opsc_log_warn(LOG, "loading sessions failed: %s; the previous set stays in use",
                      opsc_pg_res_message(res));
    }
    if (v && u->pending_users && !u->dirty) {
        qsort(v, n, sizeof(*v), cmp_sess);
        opsc_free(u->users);
        opsc_free(u->sess);
        u->users = u->pending_users;
        u->n_users = u->n_pending;
        u->pending_users = NULL;
        u->sess = v;
        u->n_sess = n;
        u->discards = 0;
        u->n_reloads++;
        v = NULL;
    } else if (u->dirty && u->discards < MAX_DISCARDS) {
        u->discards++;
        u->load_again = 1; /* our own change may be missing from this result: read again */
    }
    u->dirty = 0;
    opsc_free(v);
    opsc_free(u->pending_users);
    u->pending_users = NULL;
    int first = !u->loaded_once && u->n_reloads > 0;
    if (first) {
        u->loaded_once = 1;
        if (u->n_users == 0 && u->o.bootstrap_admin) {
            bootstrap(u);
        }
    }
    load_done(u);
}

static void on_users_loaded(int err, const opsc_pg_res_t *res, void *arg) {
    opsc_users_t *u = arg;
    if (err != 0) {
        if (err != OPSC_ESHUTDOWN) {
            opsc_log_warn(LOG, "loading users failed: %s; the previous set stays in use",
                          opsc_pg_res_message(res));
        }
        u->loading = 0;
        if (err != OPSC_ESHUTDOWN) {
            load_done(u);
        }
        return;
    }
    int rows = opsc_pg_res_ntuples(res);
    u->pending_users = opsc_calloc(rows > 0 ? (size_t)rows : 1, sizeof(user_t));
    if (!u->pending_users) {
        load_done(u);
        return;
    }
    for (int r = 0; r < rows; r++) {
        user_from_row(&u->pending_users[r], res, r);
    }
    qsort(u->pending_users, (size_t)rows, sizeof(user_t), cmp_user);
    u->n_pending = (size_t)rows;
    if (users_query(u, OPSC_PG_READER, sql_load_sessions, 0, NULL, on_sessions_loaded, u) != 0) {
        opsc_free(u->pending_users);
        u->pending_users = NULL;
        load_done(u);
    }
}

static void load(opsc_users_t *u) {
    if (u->loading) {
        u->load_again = 1;
        return;
    }
    u->dirty = 0;
    if (users_query(u, OPSC_PG_READER, sql_load_users, 0, NULL, on_users_loaded, u) == 0) {
        u->loading = 1;
    }
}

static void on_notify(const char *channel, const char *payload, void *arg) {
    (void)channel;
    (void)payload;
    load(arg);
}

/* ---- work on the thread pool ------------------------------------------------------------ */

enum { W_LOGIN, W_CREATE, W_UPDATE, W_BOOTSTRAP };

typedef struct work_s {
    uv_work_t w;
    opsc_users_t *u;
    opsc_http_conn_t *c; /* held; NULL for the bootstrap */
    int kind;
    char password[PASSWORD_MAX + 1];
    size_t plen;
    unsigned iterations; /* for new hashes */
    char stored[OPSC_PASSWD_HASH_MAX];
    int verified;
    char new_hash[OPSC_PASSWD_HASH_MAX]; /* "" when none */
    int rc;
    /* login */
    user_t user;
    int known; /* the name is a user that may log in */
    int tls;
    char peer[46];
    char agent[256];
    char token[49];
    char token_hex[65];
    char actor[128]; /* the audit's principal name */
    /* create / update */
    json_t *body;
    char id[37];
    char by[128];
} work_t;

static void work_run(uv_work_t *w) {
    work_t *x = w->data;
    if (x->kind == W_LOGIN) {
        unsigned it = 0;
        if (!x->known) {
            /* An unknown or disabled name costs the same PBKDF2 as a real one. */
            (void)opsc_passwd_hash(x->password, x->plen, x->iterations, x->new_hash);
            x->new_hash[0] = '\0';
            x->verified = 0;
            memset(x->password, 0, sizeof(x->password));
            return;
        }
        x->verified = opsc_passwd_verify(x->password, x->plen, x->stored, &it);
        if (x->verified && it != x->iterations) {
            /* Re-hash at today's count, while we hold the password anyway. */
            if (opsc_passwd_hash(x->password, x->plen, x->iterations, x->new_hash) != 0) {
                x->new_hash[0] = '\0';
            }
        }
    } else {
        x->rc = opsc_passwd_hash(x->password, x->plen, x->iterations, x->new_hash);
    }
    memset(x->password, 0, sizeof(x->password));
}

static void work_free(work_t *x) {
    if (x->c) {
        opsc_http_release(x->c);
    }
    json_decref(x->body);
    memset(x, 0, sizeof(*x));
    opsc_free(x);
}

static work_t *work_new(opsc_users_t *u, opsc_http_conn_t *c, int kind, const char *pw,
                        size_t plen) {
    work_t *x = opsc_calloc(1, sizeof(*x));
    if (!x) {
        return NULL;
    }
    x->u = u;
    x->c = c;
    x->kind = kind;
    x->w.data = x;
    x->iterations = u->o.pbkdf2_iterations;
    if (pw) {
        memcpy(x->password, pw, plen < PASSWORD_MAX ? plen : PASSWORD_MAX);
        x->plen = plen < PASSWORD_MAX ? plen : PASSWORD_MAX;
    }
    if (c) {
        opsc_http_hold(c);
    }
    return x;
}

/* 0, or the libuv error: then the caller answers and frees x. */
static int work_queue(work_t *x, uv_after_work_cb after) {
    return uv_queue_work(x->u->loop, &x->w, work_run, after);
}

static void on_bootstrapped(int err, const opsc_pg_res_t *res, void *arg) {
    work_t *x = arg;
    opsc_users_t *u = x->u;
    u->bootstrapping = 0;
    if (err == 0 && opsc_pg_res_ntuples(res) == 1) {
        user_t nu;
        user_from_row(&nu, res, 0);
        user_put(u, &nu);
        /* The one time this password exists anywhere but in the admin's head. */
        fprintf(stderr,
                "\n"
                "=====================================================================\n"
                "  OpsConductor created the first user (there was none and no\n"
                "  OPSC_ADMIN_TOKEN):\n"
                "      username: admin\n"
                "      password: %s\n"
                "  This is shown once only. Log in and change it:\n"
                "      PATCH /api/v1/users/%s {\"password\": \"...\"}\n"
                "=====================================================================\n\n",
                x->token, nu.id);
        fflush(stderr);
        opsc_log_warn(LOG, "created the first user \"admin\"; its password was printed once above");
    } else if (err == 0) {
        opsc_log_info(LOG, "another instance created the first user meanwhile");
    } else if (err != OPSC_ESHUTDOWN) {
        opsc_log_err(LOG, "cannot create the first user: %s", opsc_pg_res_message(res));
    }
    work_free(x);
}

static void after_bootstrap_hash(uv_work_t *w, int status) {
    work_t *x = w->data;
    if (status != 0 || x->rc != 0) {
        opsc_log_err(LOG, "cannot hash the first user's password");
        x->u->bootstrapping = 0;
        work_free(x);
        return;
    }
    /* $8: only while the table is still empty, so two instances starting together make one. */
    const char *p[8] = {"admin", "Administrator", NULL,        x->new_hash,
                        "t",     "admin",         "bootstrap", "t"};
    if (users_query(x->u, OPSC_PG_WRITER, sql_create, 8, p, on_bootstrapped, x) != 0) {
        x->u->bootstrapping = 0;
        work_free(x);
    }
}

static void bootstrap(opsc_users_t *u) {
    char pw[25];
    if (u->bootstrapping || opsc_passwd_random(pw) != 0) {
        return;
    }
    work_t *x = work_new(u, NULL, W_BOOTSTRAP, pw, strlen(pw));
    if (!x) {
        return;
    }
    memcpy(x->token, pw, sizeof(pw)); /* kept to be printed once the row exists */
    memset(pw, 0, sizeof(pw));
    u->bootstrapping = 1;
    if (work_queue(x, after_bootstrap_hash) != 0) {
        u->bootstrapping = 0;
        work_free(x);
    }
}

/* ---- HTTP: helpers ---------------------------------------------------------------------- */

static json_t *user_json(const opsc_pg_res_t *res, int r) {
    const char *active = opsc_pg_res_value(res, r, C_ACTIVE);
    return json_pack("{s:s,s:s,s:o,s:o,s:s,s:b,s:o,s:o,s:o}", "id", opsc_pg_res_value(res, r, C_ID),
                     "username", opsc_pg_res_value(res, r, C_USERNAME), "display_name",
                     opsc_api_json_str(opsc_pg_res_value(res, r, C_DISPLAY)), "email",
                     opsc_api_json_str(opsc_pg_res_value(res, r, C_EMAIL)), "role",
                     opsc_api_role_name(opsc_api_role_parse(opsc_pg_res_value(res, r, C_ROLE))),
                     "is_active", active && active[0] == 't', "last_login_at",
                     opsc_api_json_str(opsc_pg_res_value(res, r, C_LAST_LOGIN)), "created_at",
                     opsc_api_json_str(opsc_pg_res_value(res, r, C_CREATED)), "updated_at",
                     opsc_api_json_str(opsc_pg_res_value(res, r, C_UPDATED)));
}

static void db_error(opsc_http_conn_t *c, int err, const opsc_pg_res_t *res) {
    if (err == OPSC_EDB_QUERY && strcmp(opsc_pg_res_sqlstate(res), "23505") == 0) {
        opsc_http_error(c, 409, "conflict", "a user with this username exists", "username");
    } else if (err == OPSC_EDB_QUERY && strcmp(opsc_pg_res_sqlstate(res), "22P02") == 0) {
        opsc_http_error(c, 404, "not_found", "no such user", NULL);
    } else {
        opsc_api_db_error(c, "users", err, res);
    }
}

static json_t *body_object(opsc_http_conn_t *c, opsc_http_req_t *req) {
    size_t len = 0;
    const char *body = opsc_http_req_body(req, &len);
    json_error_t jerr;
    json_t *j = json_loadb(body, len, 0, &jerr);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        opsc_http_error(c, 400, "malformed", "the body must be a JSON object", NULL);
        return NULL;
    }
    return j;
}

static void audit_login(opsc_users_t *u, const char *name, int status, const char *peer) {
    if (!u->audit_fn) {
        return;
    }
    opsc_principal_t who;
    memset(&who, 0, sizeof(who));
    snprintf(who.kind, sizeof(who.kind), "session");
    snprintf(who.name, sizeof(who.name), "%s", name);
    u->audit_fn(u->audit_arg, &who, "POST", "/api/v1/auth/login", status, peer);
}

/* ---- HTTP: login, logout, me ------------------------------------------------------------ */

static void login_failed(work_t *x) {
    opsc_users_t *u = x->u;
    int64_t now = opsc_now_us() / 1000;
    char ukey[OPSC_LOGIN_KEY_MAX];
    lower_copy(ukey, sizeof(ukey), x->actor);
    opsc_login_limit_fail(u->by_user, ukey, now);
    opsc_login_limit_fail(u->by_addr, x->peer, now);
    u->n_login_failures++;
    audit_login(u, x->actor, 401, x->peer);
    opsc_http_error(x->c, 401, "unauthorized", "wrong username or password", NULL);
}

static void on_session_stored(int err, const opsc_pg_res_t *res, void *arg) {
    work_t *x = arg;
    opsc_users_t *u = x->u;
    if (err == 0 && opsc_pg_res_ntuples(res) == 1) {
        sess_t s;
        memset(&s, 0, sizeof(s));
        opsc_api_hex_to_hash(x->token_hex, s.hash);
        snprintf(s.user_id, sizeof(s.user_id), "%s", x->user.id);
        s.expires_us = strtoll(opsc_pg_res_value(res, 0, 0), NULL, 10);
        session_put(u, &s);
        if (x->new_hash[0]) {
            user_t *cached = user_by_id(u, x->user.id);
            if (cached) {
                snprintf(cached->pw_hash, sizeof(cached->pw_hash), "%s", x->new_hash);
            }
        }
        char ukey[OPSC_LOGIN_KEY_MAX];
        lower_copy(ukey, sizeof(ukey), x->user.username);
        opsc_login_limit_clear(u->by_user, ukey);
        u->n_logins++;
    }
    if (!opsc_http_conn_gone(x->c)) {
        if (err != 0) {
            db_error(x->c, err, res);
        } else if (opsc_pg_res_ntuples(res) != 1) {
            login_failed(x); /* disabled or deleted meanwhile */
        } else {
            audit_login(u, x->user.username, 200, x->peer);
            char hdr[256];
            snprintf(hdr, sizeof(hdr),
                     "Set-Cookie: " COOKIE "=%s; Path=/; Max-Age=%" PRId64
                     "; HttpOnly; SameSite=Strict%s\r\nCache-Control: no-store\r\n",
                     x->token, u->o.session_ttl_ms / 1000, x->tls ? "; Secure" : "");
            json_t *j = json_pack("{s:{s:s,s:s,s:s},s:s}", "user", "id", x->user.id, "username",
                                  x->user.username, "role", opsc_api_role_name(x->user.role),
                                  "expires_at", opsc_pg_res_value(res, 0, 1));
            char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
            json_decref(j);
            if (text) {
                opsc_http_respond(x->c, 200, "application/json", hdr, text, strlen(text));
                free(text);
            } else {
                opsc_http_error(x->c, 500, "internal", "out of memory", NULL);
            }
        }
    }
    work_free(x);
}

static void after_login_check(uv_work_t *w, int status) {
    work_t *x = w->data;
    opsc_users_t *u = x->u;
    if (opsc_http_conn_gone(x->c)) {
        work_free(x);
        return;
    }
    if (status != 0 || !x->verified) {
        login_failed(x);
        work_free(x);
        return;
    }
    if (opsc_tokens_generate(x->token) != 0) {
        opsc_http_error(x->c, 500, "internal", "cannot create a session now", NULL);
        work_free(x);
        return;
    }
    x->token[0] = 'o'; /* same form as an API token: "opsc_" + 43 base64url characters */
    opsc_tokens_hash_hex(x->token, strlen(x->token), x->token_hex);
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%" PRId64, u->o.session_ttl_ms);
    const char *p[6] = {x->user.id, x->token_hex, ttl,
                        x->peer,    x->agent,     x->new_hash[0] ? x->new_hash : NULL};
    if (users_query(u, OPSC_PG_WRITER, sql_login, 6, p, on_session_stored, x) != 0) {
        opsc_http_error_retry(x->c, 503, "unavailable", "the database is busy", 1);
        work_free(x);
    }
}

static void handle_login(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    opsc_users_t *u = arg;
    json_t *j = body_object(c, req);
    if (!j) {
        return;
    }
    const char *name = json_string_value(json_object_get(j, "username"));
    json_t *pwj = json_object_get(j, "password");
    const char *pw = json_string_value(pwj);
    const char *peer = opsc_http_conn_peer(c);
    if (!name || !*name || strlen(name) > 100) {
        opsc_http_error(c, 422, "validation", "username: a string of 1-100 characters is required",
                        "username");
        json_decref(j);
        return;
    }
    if (!pw || json_string_length(pwj) > PASSWORD_MAX) {
        opsc_http_error(c, 422, "validation", "password: a string is required", "password");
        json_decref(j);
        return;
    }
    char ukey[OPSC_LOGIN_KEY_MAX];
    lower_copy(ukey, sizeof(ukey), name);
    int64_t now = opsc_now_us() / 1000;
    int wait_u = opsc_login_limit_check(u->by_user, ukey, now);
    int wait_a = opsc_login_limit_check(u->by_addr, peer, now);
    if (wait_u || wait_a) {
        u->n_limited++;
        audit_login(u, name, 429, peer);
        opsc_http_error_retry(c, 429, "rate_limited", "too many failed logins; try again later",
                              wait_u > wait_a ? wait_u : wait_a);
        json_decref(j);
        return;
    }
    work_t *x = work_new(u, c, W_LOGIN, pw, json_string_length(pwj));
    if (!x) {
        opsc_http_error(c, 500, "internal", "out of memory", NULL);
        json_decref(j);
        return;
    }
    const user_t *usr = user_by_name(u, name);
    x->known = usr && usr->active && usr->role != OPSC_ROLE_NONE;
    if (usr) {
        x->user = *usr;
    }
    snprintf(x->stored, sizeof(x->stored), "%s", x->known ? usr->pw_hash : "");
    snprintf(x->actor, sizeof(x->actor), "%s", name);
    snprintf(x->peer, sizeof(x->peer), "%s", peer);
    const char *ua = opsc_http_req_header(req, "User-Agent");
    snprintf(x->agent, sizeof(x->agent), "%s", ua ? ua : "");
    x->tls = opsc_http_conn_is_tls(c);
    json_decref(j);
    if (work_queue(x, after_login_check) != 0) {
        opsc_http_error_retry(c, 503, "unavailable", "busy", 1);
        work_free(x);
    }
}

static void on_logged_out(int err, const opsc_pg_res_t *res, void *arg) {
    work_t *x = arg;
    if (!opsc_http_conn_gone(x->c)) {
        if (err != 0) {
            db_error(x->c, err, res);
        } else {
            opsc_http_respond(x->c, 204, NULL,
                              "Set-Cookie: " COOKIE "=; Path=/; Max-Age=0; HttpOnly; "
                              "SameSite=Strict\r\n",
                              NULL, 0);
        }
    }
    work_free(x);
}

static void handle_logout(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    opsc_users_t *u = arg;
    size_t len = 0;
    const char *v = opsc_users_cookie(opsc_http_req_header(req, "Cookie"), COOKIE, &len);
    if (!v) {
        /* A bearer token has no session to end. */
        opsc_http_respond(c, 204, NULL, NULL, NULL, 0);
        return;
    }
    work_t *x = work_new(u, c, W_LOGIN, NULL, 0);
    if (!x) {
        opsc_http_error(c, 500, "internal", "out of memory", NULL);
        return;
    }
    opsc_tokens_hash_hex(v, len, x->token_hex);
    unsigned char h[32];
    opsc_api_hex_to_hash(x->token_hex, h);
    session_drop(u, h); /* refused from now on, whatever the database says */
    const char *p[1] = {x->token_hex};
    if (users_query(u, OPSC_PG_WRITER, sql_logout, 1, p, on_logged_out, x) != 0) {
        opsc_http_error_retry(c, 503, "unavailable", "the database is busy", 1);
        work_free(x);
    }
}

static void handle_me(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    (void)arg;
    const opsc_principal_t *who = opsc_http_req_principal(req);
    opsc_http_respond_json(c, 200,
                           json_pack("{s:s,s:o,s:s,s:s}", "kind", who->kind, "id",
                                     who->id[0] ? json_string(who->id) : json_null(), "name",
                                     who->name, "role", opsc_api_role_name(who->role)));
}

/* ---- HTTP: users ------------------------------------------------------------------------- */

/* A JSON member that must be a string when present: 0 ok (*out may be NULL), -1 answered 422. */
static int opt_string(opsc_http_conn_t *c, json_t *j, const char *key, size_t max,
                      const char **out) {
    json_t *v = json_object_get(j, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) > max) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%s must be a string of at most %zu characters", key, max);
        opsc_http_error(c, 422, "validation", msg, key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* Validate a user body; create: username, password and role are required. 0 or -1 (answered). */
static int check_user_body(opsc_http_conn_t *c, json_t *j, int create) {
    const char *name, *pw, *role, *s;
    json_t *act = json_object_get(j, "is_active");
    if (opt_string(c, j, "username", 100, &name) ||
        opt_string(c, j, "password", PASSWORD_MAX, &pw) || opt_string(c, j, "role", 20, &role) ||
        opt_string(c, j, "display_name", 255, &s) || opt_string(c, j, "email", 255, &s)) {
        return -1;
    }
    if (create && (!name || !*name || isspace((unsigned char)name[0]) ||
                   isspace((unsigned char)name[strlen(name) - 1]))) {
        opsc_http_error(c, 422, "validation",
                        "username: 1-100 characters without leading or trailing spaces",
                        "username");
    } else if (!create && json_object_get(j, "username")) {
        opsc_http_error(c, 422, "validation", "username cannot be changed", "username");
    } else if ((create && !pw) || (pw && strlen(pw) < PASSWORD_MIN) ||
               (pw && strlen(pw) != json_string_length(json_object_get(j, "password")))) {
        opsc_http_error(c, 422, "validation", "password: at least 8 characters, no NUL",
                        "password");
    } else if ((create || role) && opsc_api_role_parse(role) == OPSC_ROLE_NONE) {
        opsc_http_error(c, 422, "validation", "role must be one of viewer, operator, admin, ingest",
                        "role");
    } else if (act && !json_is_boolean(act)) {
        opsc_http_error(c, 422, "validation", "is_active must be true or false", "is_active");
    } else {
        return 0;
    }
    return -1;
}

static void on_user_written(int err, const opsc_pg_res_t *res, void *arg) {
    work_t *x = arg;
    if (err == 0 && opsc_pg_res_ntuples(res) == 1) {
        user_t nu;
        user_from_row(&nu, res, 0);
        user_put(x->u, &nu);
        if (!nu.active || x->new_hash[0]) {
            sessions_drop_user(x->u, nu.id); /* the statement revoked them too */
        }
    }
    if (!opsc_http_conn_gone(x->c)) {
        if (err != 0) {
            db_error(x->c, err, res);
        } else if (opsc_pg_res_ntuples(res) != 1) {
            opsc_http_error(x->c, 404, "not_found", "no such user", NULL);
        } else {
            opsc_http_respond_json(x->c, x->kind == W_CREATE ? 201 : 200, user_json(res, 0));
        }
    }
    work_free(x);
}

static const char *bool_text(json_t *v) {
    return !v || json_is_null(v) ? NULL : json_is_true(v) ? "t" : "f";
}

static void user_write(work_t *x) {
    json_t *j = x->body;
    const char *pw = x->new_hash[0] ? x->new_hash : NULL;
    const char *role = json_string_value(json_object_get(j, "role"));
    const char *dn = json_string_value(json_object_get(j, "display_name"));
    const char *em = json_string_value(json_object_get(j, "email"));
    json_t *act = json_object_get(j, "is_active");
    int rc;
    if (x->kind == W_CREATE) {
        const char *p[8] = {json_string_value(json_object_get(j, "username")),
                            dn,
                            em,
                            pw,
                            bool_text(act),
                            role,
                            x->by,
                            NULL};
        rc = users_query(x->u, OPSC_PG_WRITER, sql_create, 8, p, on_user_written, x);
    } else {
        const char *p[9] = {x->id, json_object_get(j, "display_name") ? "t" : "f",
                            dn,    json_object_get(j, "email") ? "t" : "f",
                            em,    bool_text(act),
                            pw,    role,
                            x->by};
        rc = users_query(x->u, OPSC_PG_WRITER, sql_update, 9, p, on_user_written, x);
    }
    if (rc != 0) {
        opsc_http_error_retry(x->c, 503, "unavailable", "the database is busy", 1);
        work_free(x);
    }
}

static void after_user_hash(uv_work_t *w, int status) {
    work_t *x = w->data;
    if (opsc_http_conn_gone(x->c)) {
        work_free(x);
    } else if (status != 0 || x->rc != 0) {
        opsc_http_error(x->c, 500, "internal", "cannot hash the password now", NULL);
        work_free(x);
    } else {
        user_write(x);
    }
}

/* POST /users, PATCH /users/{id}: hash a new password on the thread pool first. */
static void handle_write(opsc_users_t *u, opsc_http_conn_t *c, opsc_http_req_t *req,
                         const char *id) {
    json_t *j = body_object(c, req);
    if (!j) {
        return;
    }
    if (check_user_body(c, j, id == NULL) != 0) {
        json_decref(j);
        return;
    }
    json_t *pwj = json_object_get(j, "password");
    const char *pw = json_string_value(pwj);
    work_t *x = work_new(u, c, id ? W_UPDATE : W_CREATE, pw, pw ? json_string_length(pwj) : 0);
    if (!x) {
        json_decref(j);
        opsc_http_error(c, 500, "internal", "out of memory", NULL);
        return;
    }
    x->body = j;
    snprintf(x->id, sizeof(x->id), "%s", id ? id : "");
    const opsc_principal_t *who = opsc_http_req_principal(req);
    snprintf(x->by, sizeof(x->by), "%s", who ? who->name : "");
    if (!pw) {
        user_write(x);
    } else if (work_queue(x, after_user_hash) != 0) {
        opsc_http_error_retry(c, 503, "unavailable", "busy", 1);
        work_free(x);
    }
}

static void on_users_read(int err, const opsc_pg_res_t *res, void *arg) {
    work_t *x = arg;
    if (!opsc_http_conn_gone(x->c)) {
        if (err != 0) {
            db_error(x->c, err, res);
        } else if (x->id[0]) {
            if (opsc_pg_res_ntuples(res) == 1) {
                opsc_http_respond_json(x->c, 200, user_json(res, 0));
            } else {
                opsc_http_error(x->c, 404, "not_found", "no such user", NULL);
            }
        } else {
            json_t *items = json_array();
            for (int r = 0; items && r < opsc_pg_res_ntuples(res); r++) {
                json_array_append_new(items, user_json(res, r));
            }
            opsc_http_respond_json(x->c, 200, json_pack("{s:o}", "items", items));
        }
    }
    work_free(x);
}

static void on_user_deleted(int err, const opsc_pg_res_t *res, void *arg) {
    work_t *x = arg;
    if (err == 0 && opsc_pg_res_ntuples(res) == 1) {
        user_drop(x->u, x->id);
    }
    if (!opsc_http_conn_gone(x->c)) {
        if (err != 0) {
            db_error(x->c, err, res);
        } else if (opsc_pg_res_ntuples(res) != 1) {
            opsc_http_error(x->c, 404, "not_found", "no such user", NULL);
        } else {
            opsc_http_respond(x->c, 204, NULL, NULL, NULL, 0);
        }
    }
    work_free(x);
}

static void query_for(opsc_users_t *u, opsc_http_conn_t *c, const char *id, opsc_pg_role_t role,
                      const char *sql, opsc_pg_cb cb) {
    work_t *x = work_new(u, c, W_UPDATE, NULL, 0);
    const char *p[1] = {id};
    if (x) {
        snprintf(x->id, sizeof(x->id), "%s", id ? id : "");
    }
    if (!x || users_query(u, role, sql, id ? 1 : 0, id ? p : NULL, cb, x) != 0) {
        if (x) {
            work_free(x);
        }
        opsc_http_error_retry(c, 503, "unavailable", "the database is busy", 1);
    }
}

static void handle_users(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    opsc_users_t *u = arg;
    if (opsc_http_req_method(req) == OPSC_HTTP_POST) {
        handle_write(u, c, req, NULL);
    } else {
        query_for(u, c, NULL, OPSC_PG_READER, sql_list, on_users_read);
    }
}

static void handle_user(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    opsc_users_t *u = arg;
    const char *id = opsc_http_req_path(req) + strlen("/api/v1/users/");
    if (strlen(id) != 36 || strchr(id, '/')) {
        opsc_http_error(c, 404, "not_found", "no such user", NULL);
        return;
    }
    switch (opsc_http_req_method(req)) {
    case OPSC_HTTP_PATCH:
        handle_write(u, c, req, id);
        break;
    case OPSC_HTTP_DELETE:
        query_for(u, c, id, OPSC_PG_WRITER, sql_delete, on_user_deleted);
        break;
    default:
        query_for(u, c, id, OPSC_PG_READER, sql_get, on_users_read);
        break;
    }
}

#define ANY_ROLE (OPSC_ROLES_READ | OPSC_ROLES_INGEST)

static const opsc_http_route_t routes[] = {
    {.methods = OPSC_HTTP_M(OPSC_HTTP_GET) | OPSC_HTTP_M(OPSC_HTTP_POST),
     .path = "/api/v1/users",
     .handler = handle_users,
     .body_type = "application/json",
     .max_body = 8192,
     .roles = OPSC_ROLES_ADMIN},
    {.methods =
         OPSC_HTTP_M(OPSC_HTTP_GET) | OPSC_HTTP_M(OPSC_HTTP_PATCH) | OPSC_HTTP_M(OPSC_HTTP_DELETE),
     .path = "/api/v1/users/",
     .prefix = 1,
     .handler = handle_user,
     .body_type = "application/json",
     .max_body = 8192,
     .roles = OPSC_ROLES_ADMIN},
    /* Public: the password is the credential. Audited by the handler itself. */
    {.methods = OPSC_HTTP_M(OPSC_HTTP_POST),
     .path = "/api/v1/auth/login",
     .handler = handle_login,
     .body_type = "application/json",
     .max_body = 4096},
    {.methods = OPSC_HTTP_M(OPSC_HTTP_POST),
     .path = "/api/v1/auth/logout",
     .handler = handle_logout,
     .roles = ANY_ROLE},
    {.methods = OPSC_HTTP_M(OPSC_HTTP_GET),
     .path = "/api/v1/auth/me",
     .handler = handle_me,
     .roles = ANY_ROLE},
};

/* ---- lifecycle ----------------------------------------------------------------------------- */

int opsc_users_create(uv_loop_t *loop, opsc_pg_pool_t *pool, const opsc_users_options_t *opts,
                      opsc_users_t **out) {
    opsc_users_t *u = opsc_calloc(1, sizeof(*u));
    if (!u) {
        return OPSC_ENOMEM;
    }
    u->loop = loop;
    u->pool = pool;
    u->o = *opts;
    int64_t win = opts->login_lockout_ms;
    u->by_user = opsc_login_limit_create(LIMIT_SLOTS, opts->login_max_failures, win);
    u->by_addr = opsc_login_limit_create(LIMIT_SLOTS, 4 * opts->login_max_failures, win);
    if (!u->by_user || !u->by_addr) {
        opsc_users_destroy(u);
        return OPSC_ENOMEM;
    }
    *out = u;
    return 0;
}

void opsc_users_destroy(opsc_users_t *u) {
    if (!u) {
        return;
    }
    opsc_login_limit_destroy(u->by_user);
    opsc_login_limit_destroy(u->by_addr);
    for (size_t i = 0; i < u->n_users; i++) {
        memset(u->users[i].pw_hash, 0, sizeof(u->users[i].pw_hash));
    }
    opsc_free(u->users);
    opsc_free(u->sess);
    opsc_free(u->pending_users);
    opsc_free(u);
}

void opsc_users_stop(opsc_users_t *u) {
    if (u) {
        u->pool = NULL;
    }
}

void opsc_users_start(opsc_users_t *u) {
    if (u->pool && !u->listening && opsc_pg_listen(u->pool, "opsc_auth", on_notify, u) == 0) {
        u->listening = 1;
    }
    load(u);
}

int opsc_users_add_routes(opsc_users_t *u, opsc_ops_server_t *srv) {
    return opsc_ops_server_add_routes(srv, routes, sizeof(routes) / sizeof(routes[0]), u);
}

void opsc_users_set_audit(opsc_users_t *u, opsc_http_audit_fn fn, void *arg) {
    u->audit_fn = fn;
    u->audit_arg = arg;
}

void opsc_users_metrics(opsc_buf_t *out, void *arg) {
    opsc_users_t *u = arg;
    opsc_metrics_one_u64(out, "opsc_auth_users", "gauge", "Users in the in-memory set", u->n_users);
    opsc_metrics_one_u64(out, "opsc_auth_sessions", "gauge", "Login sessions in the in-memory set",
                         u->n_sess);
    opsc_metrics_one_u64(out, "opsc_auth_logins_total", "counter", "Successful logins",
                         u->n_logins);
    opsc_metrics_one_u64(out, "opsc_auth_login_failures_total", "counter",
                         "Failed logins (wrong name or password)", u->n_login_failures);
    opsc_metrics_one_u64(out, "opsc_auth_login_limited_total", "counter",
                         "Logins refused with 429 by the failed-login limits", u->n_limited);
    opsc_metrics_one_u64(out, "opsc_auth_login_limit_evictions_total", "counter",
                         "Failed-login counters forgotten because the table was full",
                         opsc_login_limit_evicted(u->by_user) +
                             opsc_login_limit_evicted(u->by_addr));
    opsc_metrics_one_u64(out, "opsc_auth_reloads_total", "counter",
                         "Reloads of users and sessions from the database", u->n_reloads);
}
