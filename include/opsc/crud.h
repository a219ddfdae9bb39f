#ifndef OPSC_CRUD_H
#define OPSC_CRUD_H

#include "opsc/pg.h"

/*
 * The configuration resources of the REST API (issue 4 item 4), all under
 * /api/v1, JSON in and out with the seed's column names:
 *
 *   /devices (+ POST /devices/bulk: upsert by ip_address, all or nothing)
 *   /dependencies (self-references and cycles refused: 422)
 *   /oid-mappings, /maintenance-windows, /notification-rules, /connectors
 *
 * Each has GET (list: limit/offset and filters, {"items","total","limit",
 * "offset"}), POST, and GET/PUT/PATCH/DELETE on /{id}. Reads need a reading
 * role; writes need admin, except maintenance windows (operator). Every
 * statement runs on the pool asynchronously (reads on a reader, writes on
 * the writer); reference-data tables notify the running servers through
 * their triggers (migrations 003, 004), so a change reaches the pipeline at
 * once. A connector's secret is write-only: answers show "********".
 */
typedef struct opsc_crud_s opsc_crud_t;
struct opsc_ops_server_s;

int opsc_crud_create(opsc_pg_pool_t *pool, opsc_crud_t **out);
void opsc_crud_destroy(opsc_crud_t *c);
/** Register the routes (one table) on the HTTP server. 0 or OPSC_ENOMEM. */
int opsc_crud_add_routes(opsc_crud_t *c, struct opsc_ops_server_s *srv);

#endif
