/*
 * GET /openapi.json: the API's OpenAPI document, kept in docs/openapi.json and
 * compiled into the binary (cmake/embed_file.cmake), so the description served
 * is always the one of this build. test_openapi holds it to the routes the
 * server registers.
 */
#include "opsc/openapi.h"

#include "opsc/ops_server.h"

static void handle(opsc_http_conn_t *c, opsc_http_req_t *req, void *arg) {
    (void)req;
    (void)arg;
    opsc_http_respond(c, 200, "application/json", "Cache-Control: no-cache\r\n", opsc_openapi_json,
                      opsc_openapi_json_len);
}

/* Public: a client reads it before it has a token. */
static const opsc_http_route_t routes[] = {
    {.methods = OPSC_HTTP_M(OPSC_HTTP_GET), .path = "/openapi.json", .handler = handle},
};

int opsc_openapi_add_routes(opsc_ops_server_t *srv) {
    return opsc_ops_server_add_routes(srv, routes, sizeof(routes) / sizeof(routes[0]), NULL);
}
