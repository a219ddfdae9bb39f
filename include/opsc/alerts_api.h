#ifndef OPSC_ALERTS_API_H
#define OPSC_ALERTS_API_H

/*
 * Alert reads over HTTP (issue 4 item 4), all on the pool's readers and
 * answered asynchronously; viewer, operator and admin may read:
 *
 *   GET /api/v1/alerts               filters, sort, limit, offset (opsc/alert_query.h)
 *                                    -> {"items", "total", "limit", "offset"}
 *   GET /api/v1/alerts/stats         the same filters -> {"total", "by_status",
 *                                    "by_severity", "by_category", "by_priority"}
 *   GET /api/v1/alerts/{id}          -> the alert (opsc/alert_json.h), 404
 *   GET /api/v1/alerts/{id}/history  -> {"items": [alert_history rows]}, 404
 * A bad parameter is 422 naming it.
 */

#include <uv.h>

#include "opsc/pg.h"

typedef struct opsc_alerts_api_s opsc_alerts_api_t;
struct opsc_ops_server_s;

int opsc_alerts_api_create(opsc_pg_pool_t *pool, opsc_alerts_api_t **out);
void opsc_alerts_api_destroy(opsc_alerts_api_t *a);
int opsc_alerts_api_add_routes(opsc_alerts_api_t *a, struct opsc_ops_server_s *srv);

#endif
