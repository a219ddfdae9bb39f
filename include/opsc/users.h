#ifndef OPSC_USERS_H
#define OPSC_USERS_H

#include <stdint.h>

#include <uv.h>

#include "opsc/buf.h"
#include "opsc/http.h"
#include "opsc/pg.h"

/*
 * Users, passwords and console sessions (issue 4, item 3).
 *
 *   GET/POST       /api/v1/users            admin; the password is never returned
 *   GET/PATCH/DEL  /api/v1/users/{id}       admin
 *   POST           /api/v1/auth/login       {"username", "password"} -> 200 + session cookie
 *   POST           /api/v1/auth/logout      any role; ends the cookie's session
 *   GET            /api/v1/auth/me          any role; who the credentials are
 *
 * Passwords are PBKDF2-HMAC-SHA-256 (opsc/passwd.h), hashed and checked on
 * libuv's thread pool. A session is 32 random bytes in the cookie
 * `opsc_session`, stored only as its SHA-256, with an ABSOLUTE lifetime
 * (auth.session_ttl from login; using it does not extend it: a stolen cookie
 * dies on schedule, and no request has to write to the database).
 *
 * Users (with their role and password hash) and live sessions are held in
 * memory, so the authenticator never waits for the database: loaded at
 * start, changed at once by this instance's own writes, and reloaded when
 * another instance (or plain SQL) changes users, user_roles or sessions
 * (NOTIFY opsc_auth, migration 009). Disabling a user or changing a password
 * ends that user's sessions.
 */
typedef struct opsc_users_s opsc_users_t;
struct opsc_ops_server_s;

typedef struct opsc_users_options_s {
    unsigned pbkdf2_iterations;
    int64_t session_ttl_ms;
    unsigned login_max_failures; /* per user name; 4x per client address */
    int64_t login_lockout_ms;
    /* No other admin credential (OPSC_ADMIN_TOKEN) exists: when the users
     * table is empty at start, create `admin` and print its password once. */
    int bootstrap_admin;
} opsc_users_options_t;

int opsc_users_create(uv_loop_t *loop, opsc_pg_pool_t *pool, const opsc_users_options_t *opts,
                      opsc_users_t **out);
/** After the loop has ended (no hashing left in the thread pool). */
void opsc_users_destroy(opsc_users_t *u);
/** After the schema is migrated: load users and sessions and follow their changes. */
void opsc_users_start(opsc_users_t *u);
/** The pool is about to close: from now on nothing is sent to it (work finishing on the
 *  thread pool, e.g. the first user's password hash, is dropped). */
void opsc_users_stop(opsc_users_t *u);
int opsc_users_add_routes(opsc_users_t *u, struct opsc_ops_server_s *srv);
/** Login attempts are public requests: they reach the audit hook through here. */
void opsc_users_set_audit(opsc_users_t *u, opsc_http_audit_fn fn, void *arg);
/**
 * The session of a request's Cookie header: 0 with *out filled (kind
 * "session", the user's id, name and role), or 401 (no session cookie,
 * unknown, expired or revoked session, disabled user).
 */
int opsc_users_check_session(opsc_users_t *u, const char *cookie_header, int64_t now_us,
                             opsc_principal_t *out);
void opsc_users_metrics(opsc_buf_t *out, void *arg);

/* Helpers, exposed for the tests. */
/** The value of cookie `name` in a Cookie header; NULL when absent. */
const char *opsc_users_cookie(const char *header, const char *name, size_t *len);

#endif
