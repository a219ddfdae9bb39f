#ifndef OPSC_INGEST_INT_H
#define OPSC_INGEST_INT_H

/* Shared by src/api/ingest.c (POST /events) and src/api/webhooks.c. */

#include <jansson.h>

#include "opsc/change.h"
#include "opsc/http.h"
#include "opsc/ingest.h"
#include "opsc/pg.h"

#define OPSC_INGEST_BATCH_MAX 1000

enum { OPSC_INGEST_EVENTS = 0, OPSC_INGEST_ALERTMANAGER, OPSC_INGEST_GRAFANA, OPSC_INGEST_GENERIC };

/**
 * Validate `events` (one event object, or an array of them), hand them to the
 * pipeline and answer `c`: 202 {"accepted": N} once durable, 422 listing every
 * invalid item (none accepted), 503 when the pipeline cannot take them now.
 * `kind` counts the request in the metrics.
 */
void opsc__ingest_submit(opsc_ingest_t *g, opsc_http_conn_t *c, const json_t *events, int kind);

/** Parse a request body as JSON; on failure answers 400 naming the position and returns NULL. */
json_t *opsc__ingest_body(opsc_http_conn_t *c, opsc_http_req_t *req);

opsc_pg_pool_t *opsc__ingest_pool(const opsc_ingest_t *g);
const json_t *opsc__ingest_severity_map(const opsc_ingest_t *g);
const char *opsc__ingest_default_category(const opsc_ingest_t *g);

/**
 * Hand alert actions to the pipeline; `c` is answered (opsc__actions_answer)
 * once their outcome is durable. 0, or non-zero with 503 answered already
 * (the caller keeps and frees `b`).
 */
int opsc__ingest_push_actions(opsc_ingest_t *g, opsc_http_conn_t *c, opsc_action_batch_t *b,
                              int single);
/** Answer decided actions: 200 (or 409 for a single refused one). src/api/actions.c */
void opsc__actions_answer(opsc_http_conn_t *c, const opsc_action_batch_t *b, int single);
/** The alert action routes (src/api/actions.c). */
int opsc__actions_add_routes(opsc_ingest_t *g, struct opsc_ops_server_s *srv);

/** The webhook routes (src/api/webhooks.c). */
int opsc__webhooks_add_routes(opsc_ingest_t *g, struct opsc_ops_server_s *srv);

#endif
