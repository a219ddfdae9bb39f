#ifndef OPSC_OPENAPI_H
#define OPSC_OPENAPI_H

#include <stddef.h>

/*
 * The OpenAPI 3.0 document of the HTTP API (docs/openapi.json, embedded at
 * build), served at GET /openapi.json without authentication.
 */
struct opsc_ops_server_s;

extern const unsigned char opsc_openapi_json[]; /* NUL-terminated */
extern const size_t opsc_openapi_json_len;

/** Register GET /openapi.json. 0 or OPSC_ENOMEM. */
int opsc_openapi_add_routes(struct opsc_ops_server_s *srv);

#endif
