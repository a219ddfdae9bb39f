#ifndef OPSC_AUDIT_H
#define OPSC_AUDIT_H

#include <uv.h>

#include "opsc/buf.h"
#include "opsc/http.h"
#include "opsc/pg.h"

/*
 * The audit log (issue 4, item 3): every mutating API request - who, what,
 * which resource, from where, with what result - becomes an audit_log row.
 * Rows are queued on the loop and written in batches (one multi-row INSERT
 * at most every 100 ms), never waited for; the queue is bounded
 * (opsc_audit_dropped_total counts what it could not hold) and rows that a
 * database outage keeps from being written wait in it.
 */
typedef struct opsc_audit_s opsc_audit_t;

int opsc_audit_create(uv_loop_t *loop, opsc_pg_pool_t *pool, opsc_audit_t **out);
/**
 * At shutdown, before the pool closes: send what is queued (one last INSERT)
 * and stop. The memory goes with opsc_audit_free once the loop has ended.
 */
void opsc_audit_close(opsc_audit_t *a);
void opsc_audit_free(opsc_audit_t *a);
/** The HTTP server's audit hook (opsc_http_audit_fn); arg is the opsc_audit_t. */
void opsc_audit_http(void *arg, const opsc_principal_t *who, const char *method, const char *path,
                     int status, const char *peer);
void opsc_audit_metrics(opsc_buf_t *out, void *arg);

#endif
