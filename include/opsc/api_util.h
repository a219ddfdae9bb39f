#ifndef OPSC_API_UTIL_H
#define OPSC_API_UTIL_H

#include <jansson.h>

#include "opsc/http.h"
#include "opsc/pg.h"

/* Small pieces every API resource needs (src/api/). */

/** "viewer", "operator", "admin", "ingest" -> the role; anything else OPSC_ROLE_NONE. */
opsc_role_t opsc_api_role_parse(const char *s);
const char *opsc_api_role_name(opsc_role_t r);
/** 64 lower-case hex digits -> 32 bytes; -1 when it is not that. */
int opsc_api_hex_to_hash(const char *hex, unsigned char out[32]);
/** A JSON string, or null for NULL. */
json_t *opsc_api_json_str(const char *s);
/**
 * Answer a failed database request: 503 with Retry-After when the database is
 * away, else 500 (logged with its SQLSTATE under `what`).
 */
void opsc_api_db_error(opsc_http_conn_t *c, const char *what, int err, const opsc_pg_res_t *res);

#endif
