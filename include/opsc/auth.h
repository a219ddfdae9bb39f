#ifndef OPSC_AUTH_H
#define OPSC_AUTH_H

#include "opsc/http.h"

/*
 * Authentication of API requests (issue 4): "Authorization: Bearer <token>"
 * with the bootstrap admin token from OPSC_ADMIN_TOKEN or an API token
 * (opsc/tokens.h); without an Authorization header, the console's session
 * cookie (opsc/users.h). All checked in memory, never waiting for the
 * database; a bearer header that fails is not retried as a cookie.
 */
typedef struct opsc_auth_s opsc_auth_t;
struct opsc_tokens_s;
struct opsc_users_s;

/** admin_token may be NULL or "" (no bootstrap token). 0 or OPSC_ENOMEM. */
/** The access_token parameter of a raw query string (length in *len); NULL when absent. */
const char *opsc_auth_query_token(const char *query, size_t *len);
int opsc_auth_create(const char *admin_token, opsc_auth_t **out);
void opsc_auth_destroy(opsc_auth_t *a);
/** Also accept the API tokens of `tokens` (opsc/tokens.h). */
void opsc_auth_set_tokens(opsc_auth_t *a, struct opsc_tokens_s *tokens);
/** Also accept the login sessions of `users` (opsc/users.h). */
void opsc_auth_set_users(opsc_auth_t *a, struct opsc_users_s *users);
/** The server's authenticator (opsc_http_auth_fn); arg is the opsc_auth_t. */
int opsc_auth_http(void *arg, opsc_http_conn_t *c, const opsc_http_req_t *req,
                   opsc_principal_t *out);
/**
 * The token of an "Authorization: Bearer <token>" header value (scheme
 * case-insensitive, one or more spaces); NULL when it is not one.
 */
const char *opsc_auth_bearer(const char *authorization, size_t *len);
/** Compare in time that depends only on the lengths. 1 when equal. */
int opsc_auth_equal(const void *a, size_t alen, const void *b, size_t blen);

#endif
