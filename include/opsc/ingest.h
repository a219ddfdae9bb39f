#ifndef OPSC_INGEST_H
#define OPSC_INGEST_H

/*
 * Event ingestion over HTTP (issue 4 item 4), on the loop thread:
 *
 *   POST /api/v1/events                   one normalized event (opsc/event.h) or an array
 *                                         of up to 1,000 -> 202 {"accepted": N} once
 *                                         durable; 422 listing every invalid item, none
 *                                         accepted
 *   POST /api/v1/webhooks/alertmanager    Prometheus Alertmanager webhook (version 4)
 *   POST /api/v1/webhooks/grafana         Grafana unified alerting webhook
 *   POST /api/v1/webhooks/generic/{name}  mapped by connector {name} (type "webhook")
 *   POST /api/v1/alerts/{id}/{acknowledge|unacknowledge|resolve|suppress|reopen}
 *   POST /api/v1/alerts/bulk              {"ids": [...], "action": "...", "notes": "..."}
 *                                         (operator, admin; src/api/actions.c)
 *
 * Roles ingest, operator, admin. The generic webhook also takes, instead of a
 * token, an HMAC-SHA-256 of the body under the connector's secret in
 * X-Signature-256 (or X-Hub-Signature-256): "sha256=<hex>".
 *
 * Accepted events enter the pipeline's ingest ring as one record per request;
 * the request is answered when the pipeline's ack for it comes back through
 * the change ring and everything before it is durable (journal synced or
 * committed: DESIGN.md "Durability"). A full ring or too many requests
 * waiting is 503 with Retry-After: nothing is half accepted.
 */

#include <stdint.h>

#include <uv.h>

#include "opsc/buf.h"
#include "opsc/change.h"
#include "opsc/pg.h"

typedef struct opsc_ingest_s opsc_ingest_t;
struct opsc_ops_server_s;
struct opsc_pipeline_s;

typedef struct opsc_ingest_options_s {
    size_t max_pending;           /* requests waiting for durability; 0: 10000 */
    const char *severity_map;     /* JSON object text for the Prometheus webhooks; NULL: default */
    const char *default_category; /* webhooks without a category label; NULL: "application" */
} opsc_ingest_options_t;

/** Check the options (severity map values, category) as opsc_ingest_create would. 0 or
 * OPSC_ECONFIG. */
int opsc_ingest_check_options(const opsc_ingest_options_t *o, char *errbuf, size_t errlen);
int opsc_ingest_create(opsc_pg_pool_t *pool, const opsc_ingest_options_t *o, opsc_ingest_t **out,
                       char *errbuf, size_t errlen);
/** The pipeline events go to (NULL while there is none: requests get 503). */
void opsc_ingest_set_pipeline(opsc_ingest_t *g, struct opsc_pipeline_s *p);
int opsc_ingest_add_routes(opsc_ingest_t *g, struct opsc_ops_server_s *srv);
/**
 * Loop thread: everything up to `token` is durable; answer those requests.
 * `actions`: the decided alert actions of `token` (a REPLY change's), or NULL.
 */
void opsc_ingest_durable(opsc_ingest_t *g, uint64_t token, const opsc_action_batch_t *actions);
/** Answer every waiting request with 503 (shutting down; the events may still land). */
void opsc_ingest_fail_pending(opsc_ingest_t *g);
void opsc_ingest_destroy(opsc_ingest_t *g);
void opsc_ingest_metrics(opsc_buf_t *out, void *g);

#endif
