#ifndef OPSC_TOKENS_H
#define OPSC_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "opsc/http.h"
#include "opsc/pg.h"

/*
 * API tokens (issue 4, item 3): `opsc_` + 43 characters of base64url (32
 * random bytes), shown once at creation and stored only as their SHA-256
 * (api_tokens.token_hash). Every request is checked against an in-memory
 * copy of the live tokens, so the loop never waits on the database; the copy
 * is reloaded at start and whenever api_tokens changes (NOTIFY
 * opsc_api_tokens, migration 005), so a token revoked on one instance stops
 * working on all of them within moments.
 *
 *   POST   /api/v1/tokens       {"name", "role", "expires_at"?}  -> 201 with "token"
 *   GET    /api/v1/tokens       -> {"items": [...]} (never the token)
 *   DELETE /api/v1/tokens/{id}  -> 204 (revoked), 404
 * All admin only.
 */
typedef struct opsc_tokens_s opsc_tokens_t;
struct opsc_ops_server_s;

int opsc_tokens_create(uv_loop_t *loop, opsc_pg_pool_t *pool, opsc_tokens_t **out);
void opsc_tokens_destroy(opsc_tokens_t *t);
/** After the schema is migrated: load the tokens and follow their changes. */
void opsc_tokens_start(opsc_tokens_t *t);
/** Register the routes on the HTTP server. */
int opsc_tokens_add_routes(opsc_tokens_t *t, struct opsc_ops_server_s *srv);
/**
 * Check a presented token (constant-time in its hash): 0 with *out filled,
 * or 401 (unknown, revoked or expired).
 */
int opsc_tokens_check(opsc_tokens_t *t, const char *token, size_t len, int64_t now_us,
                      opsc_principal_t *out);
/** Metrics (opsc_metrics collector). */
void opsc_tokens_metrics(opsc_buf_t *out, void *arg);

/* Helpers, exposed for the tests. */
/** A new token text (NUL-terminated, 48 characters) from 32 bytes of the OS's randomness. */
int opsc_tokens_generate(char out[49]);
/** Lower-case hex SHA-256 of the token (65 bytes with the NUL). */
void opsc_tokens_hash_hex(const char *token, size_t len, char out[65]);

#endif
