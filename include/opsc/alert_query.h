#ifndef OPSC_ALERT_QUERY_H
#define OPSC_ALERT_QUERY_H

/*
 * Alert filters, sort and paging from a query string (issue 4 items 4 and 5),
 * shared by GET /api/v1/alerts and the live feed: one parser, and two
 * evaluators that must agree - a WHERE clause for PostgreSQL (values always
 * travel as parameters, never pasted into the SQL text) and an in-memory
 * predicate over an alert's JSON for changes streamed to feed clients.
 *
 * Every filter takes a comma-separated list (any value matches):
 *   status severity category priority device_ip device_name site
 *   source_system alert_type tag q(substring of title or message, any case)
 * and since / until (one RFC 3339 timestamp each, on occurred_at).
 * sort: one of OPSC_ALERT_SORTABLE with an optional leading '-' (descending);
 * default -occurred_at. limit 1..1000 (default 100), offset >= 0.
 * access_token is a credential, not a filter, and is skipped.
 */

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "opsc/buf.h"

enum {
    OPSC_AQ_STATUS,
    OPSC_AQ_SEVERITY,
    OPSC_AQ_CATEGORY,
    OPSC_AQ_PRIORITY,
    OPSC_AQ_DEVICE_IP,
    OPSC_AQ_DEVICE_NAME,
    OPSC_AQ_SITE,
    OPSC_AQ_SOURCE_SYSTEM,
    OPSC_AQ_ALERT_TYPE,
    OPSC_AQ_TAG,
    OPSC_AQ_Q,
    OPSC_AQ_NLISTS
};
#define OPSC_AQ_MAX_VALUES 32 /* per parameter: bounds the statement's parameter count */
#define OPSC_AQ_MAX_PARAMS (OPSC_AQ_NLISTS * OPSC_AQ_MAX_VALUES + 2)

typedef struct opsc_alert_query_s {
    char *vals[OPSC_AQ_NLISTS][OPSC_AQ_MAX_VALUES]; /* percent-decoded, owned */
    int n[OPSC_AQ_NLISTS];
    char since[64], until[64]; /* "" when absent; checked RFC 3339 */
    int64_t since_us, until_us;
    int sort; /* index into the sortable columns */
    int sort_desc;
    int limit;
    long offset;
} opsc_alert_query_t;

/**
 * Parse a raw query string ("" or NULL: no filter). 0, or -1 with `field`
 * naming the offending parameter and `msg` saying why (for a 422). q is
 * always left safe to free.
 */
int opsc_alert_query_parse(const char *query, opsc_alert_query_t *q, char *field, size_t field_len,
                           char *msg, size_t msg_len);
void opsc_alert_query_free(opsc_alert_query_t *q);

/**
 * Append the conditions to `sql` as " AND ..." terms over table alias `a`
 * (the caller writes "WHERE true"), with their values appended to params
 * (pointers into q, valid while q lives) from index *np on ($n numbering
 * follows). 0 or OPSC_ENOMEM.
 */
int opsc_alert_query_where(const opsc_alert_query_t *q, opsc_buf_t *sql, const char **params,
                           int *np);
/** Append " ORDER BY ..." for the query's sort (ties broken by id). */
int opsc_alert_query_order(const opsc_alert_query_t *q, opsc_buf_t *sql);

/**
 * The same filter in memory: 1 when the alert (as serialized by
 * opsc_alert_json_row) matches. `site` is its device's site (NULL: none);
 * ignore_status: the status list is not applied (status changes).
 */
int opsc_alert_query_match(const opsc_alert_query_t *q, const json_t *alert, const char *site,
                           int ignore_status);

/** RFC 3339 ("2026-11-22T10:00:00Z", fractions, offsets) to microseconds since the epoch. */
int opsc_rfc3339_parse(const char *s, int64_t *out_us);

#endif
