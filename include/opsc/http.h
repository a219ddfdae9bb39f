#ifndef OPSC_HTTP_H
#define OPSC_HTTP_H

/*
 * What a request handler of the HTTP server sees: routes, the request, and
 * the response and error writers. The server (opsc/ops_server.h) owns
 * connections; a handler gets a complete request (headers and the whole
 * body, already checked against the route's content type and size limit)
 * and answers it exactly once, now or later from another callback of the
 * loop thread.
 *
 * Errors are always JSON:
 *   {"error": {"code": "validation", "message": "...", "field": "items[3].severity"}}
 * ("field" only when given). The server itself answers, before any handler
 * runs: 400 malformed, 404 no route, 405 method not allowed (with Allow),
 * 408 too slow, 413 body too large, 414 URL too long, 415 wrong content type,
 * 417 unsupported Expect, 431 header fields too large or too many.
 */

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct opsc_http_conn_s opsc_http_conn_t;
typedef struct opsc_http_req_s opsc_http_req_t;

/*
 * Roles (issue 4): viewer reads; operator also acts on alerts and maintenance
 * windows; admin also configures, manages users and tokens; ingest may only
 * post events and webhooks. A route names the roles it admits as a bit set.
 */
typedef enum {
    OPSC_ROLE_NONE = 0,
    OPSC_ROLE_INGEST,
    OPSC_ROLE_VIEWER,
    OPSC_ROLE_OPERATOR,
    OPSC_ROLE_ADMIN,
} opsc_role_t;
#define OPSC_ROLE_BIT(r) (1u << (r))
#define OPSC_ROLES_READ                                                                            \
    (OPSC_ROLE_BIT(OPSC_ROLE_VIEWER) | OPSC_ROLE_BIT(OPSC_ROLE_OPERATOR) |                         \
     OPSC_ROLE_BIT(OPSC_ROLE_ADMIN))
#define OPSC_ROLES_OPERATE (OPSC_ROLE_BIT(OPSC_ROLE_OPERATOR) | OPSC_ROLE_BIT(OPSC_ROLE_ADMIN))
#define OPSC_ROLES_ADMIN OPSC_ROLE_BIT(OPSC_ROLE_ADMIN)
#define OPSC_ROLES_INGEST                                                                          \
    (OPSC_ROLE_BIT(OPSC_ROLE_INGEST) | OPSC_ROLE_BIT(OPSC_ROLE_OPERATOR) |                         \
     OPSC_ROLE_BIT(OPSC_ROLE_ADMIN))

/** Who made a request: filled by the server's authenticator. */
typedef struct opsc_principal_s {
    opsc_role_t role;
    char kind[16];  /* "token", "session", "bootstrap" */
    char id[40];    /* user or token id (UUID text), "" when none */
    char name[128]; /* user name or token name: the actor in audit_log and history */
} opsc_principal_t;

/**
 * The authenticator: from the request's credentials (bearer token, session
 * cookie, ...) to a principal. 0 with *out filled, or 401 (no or bad
 * credentials), or 429 (too many failures from this client). Runs on the
 * loop thread and must not block: credentials are checked in memory.
 */
typedef int (*opsc_http_auth_fn)(void *arg, opsc_http_conn_t *c, const opsc_http_req_t *req,
                                 opsc_principal_t *out);

/* Methods: the values are llhttp's (the server checks that they agree). */
enum {
    OPSC_HTTP_DELETE = 0,
    OPSC_HTTP_GET = 1,
    OPSC_HTTP_HEAD = 2,
    OPSC_HTTP_POST = 3,
    OPSC_HTTP_PUT = 4,
    OPSC_HTTP_OPTIONS = 6,
    OPSC_HTTP_PATCH = 28,
};
#define OPSC_HTTP_M(m) (UINT64_C(1) << (m))

/**
 * Handle one request. Called on the loop thread once the request is
 * complete; `arg` is the one given with the route table. The handler must
 * answer with exactly one opsc_http_respond* / opsc_http_error* call, now or
 * later; until then the connection parses no further pipelined request.
 */
typedef void (*opsc_http_handler_fn)(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg);

typedef struct opsc_http_route_s {
    uint64_t methods; /* OPSC_HTTP_M(OPSC_HTTP_GET) | ...; HEAD is not implied by GET */
    const char *path; /* exact match; with prefix, every path that starts with it */
    int prefix;
    opsc_http_handler_fn handler;
    /*
     * The body this route accepts. body_type (like "application/json"):
     * a request with a body of another media type gets 415; NULL accepts any.
     * max_body: 0 = http.max_body_bytes; bulk endpoints declare more.
     */
    const char *body_type;
    size_t max_body;
    /*
     * Roles admitted (OPSC_ROLES_*): the server authenticates the request and
     * answers 401 / 403 itself before the handler runs. 0: public (the
     * handler may still call opsc_http_authenticate, e.g. for webhook
     * signatures as an alternative to a token).
     */
    unsigned roles;
} opsc_http_route_t;

/**
 * The audit hook: called once per answered request to a route with roles
 * whose method changes something (POST, PUT, PATCH, DELETE), after its
 * status is known; `who` is NULL when authentication failed. Must not block.
 */
typedef void (*opsc_http_audit_fn)(void *arg, const opsc_principal_t *who, const char *method,
                                   const char *path, int status, const char *peer);

/** The request's method (OPSC_HTTP_*), path (no query, not decoded) and raw query ("" if none). */
int opsc_http_req_method(const opsc_http_req_t *req);
const char *opsc_http_req_path(const opsc_http_req_t *req);
const char *opsc_http_req_query(const opsc_http_req_t *req);
/** The complete body (NUL-terminated, may contain NULs); len may be NULL. Valid until answered. */
const char *opsc_http_req_body(const opsc_http_req_t *req, size_t *len);
/** Case-insensitive header lookup; NULL when absent. The first of duplicates. */
const char *opsc_http_req_header(const opsc_http_req_t *req, const char *name);
/** The peer's address as text ("192.0.2.1", "2001:db8::1"); "" when unknown. */
const char *opsc_http_conn_peer(const opsc_http_conn_t *c);
/** 1 when the connection is TLS. */
int opsc_http_conn_is_tls(const opsc_http_conn_t *c);
/** The authenticated principal of a route with roles; NULL on a public route. */
const opsc_principal_t *opsc_http_req_principal(const opsc_http_req_t *req);
/**
 * Authenticate explicitly (public routes with their own alternative): 0 with
 * *out filled and the role in `roles`; else the error (401, 403, 429) has
 * already been answered and the handler must not answer again.
 */
int opsc_http_authenticate(opsc_http_conn_t *c, opsc_http_req_t *req, unsigned roles,
                           opsc_principal_t *out);

/**
 * A handler that answers later (after a database query, a pipeline round
 * trip, a worker thread) holds the connection before it returns and
 * releases it after answering. The client may go away meanwhile: answering
 * a gone connection does nothing (opsc_http_conn_gone says so), and the
 * connection's memory and the request stay valid until the last release.
 */
void opsc_http_hold(opsc_http_conn_t *c);
void opsc_http_release(opsc_http_conn_t *c);
int opsc_http_conn_gone(const opsc_http_conn_t *c);

/**
 * Answer with status, Content-Type ctype (NULL: none), `extra` header lines
 * ("Name: value\r\n"..., or NULL) and the body. Ends the request. Never
 * fails: on allocation failure the connection is closed.
 */
void opsc_http_respond(opsc_http_conn_t *c, int status, const char *ctype, const char *extra,
                       const void *body, size_t len);
/** Answer with j serialized as compact JSON; takes the reference to j (NULL: 500). */
void opsc_http_respond_json(opsc_http_conn_t *c, int status, json_t *j);
/**
 * Answer with the JSON error body. code is a short machine-readable word
 * ("validation", "not_found", "conflict"); message is for people; field
 * names the offending input ("severity", "ids[2]") or is NULL.
 */
void opsc_http_error(opsc_http_conn_t *c, int status, const char *code, const char *message,
                     const char *field);
/** As opsc_http_error, with `extra` header lines (405's Allow, 401's WWW-Authenticate). */
void opsc_http_error_ex(opsc_http_conn_t *c, int status, const char *code, const char *message,
                        const char *field, const char *extra);
/** 429 or 503 with Retry-After: retry_after_s seconds (at least 1). */
void opsc_http_error_retry(opsc_http_conn_t *c, int status, const char *code, const char *message,
                           int retry_after_s);
/** The reason phrase of a status ("Unprocessable Content"); "Unknown" for others. */
const char *opsc_http_reason(int status);

/*
 * Protocol upgrade (WebSocket). A handler that switches protocols calls
 * opsc_http_upgrade instead of answering. The server stops parsing and
 * timing the connection and, once every earlier response is written, calls
 * start(arg, t, rest, len) with the bytes already received after the
 * request: from then on the caller owns the transport's callbacks and
 * t->data, and writes everything itself, the 101 response first. The
 * connection still counts against http.max_connections. gone(arg) runs
 * exactly once when the connection is closed (opsc_http_upgraded_close, the
 * server's close or abort, or a start that never came), after the
 * transport's pending callbacks ran and before its memory is freed.
 */
struct opsc_transport_s;
typedef struct opsc_http_upgrade_s {
    void (*start)(void *arg, struct opsc_transport_s *t, const char *rest, size_t len);
    void (*gone)(void *arg);
} opsc_http_upgrade_t;
void opsc_http_upgrade(opsc_http_conn_t *c, const opsc_http_upgrade_t *u, void *arg);
/** Close an upgraded connection; gone() follows from a close callback. */
void opsc_http_upgraded_close(opsc_http_conn_t *c);

#endif
