#ifndef OPSC_ALERT_JSON_H
#define OPSC_ALERT_JSON_H

/*
 * An alert's JSON, the one form every reader sees (REST listings, single
 * reads, the live feed's snapshots and changes): the seed's column names,
 * timestamps as RFC 3339 UTC with microseconds, tags as an array,
 * custom_fields and raw_data as JSON. It is built from a row selected with
 * OPSC_ALERT_JSON_COLUMNS, so the database's committed state is what goes
 * out, whichever instance wrote it.
 */

#include <jansson.h>

#include "opsc/pg.h"

#define OPSC_RFC3339_SQL(col)                                                                      \
    "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/** The select list over table alias `a`; OPSC_ALERT_JSON_NCOLS columns. */
extern const char opsc_alert_json_columns[];
#define OPSC_ALERT_JSON_NCOLS 31

/** The alert in row `row`, its columns from `col0` on; NULL on allocation failure. */
json_t *opsc_alert_json_row(const opsc_pg_res_t *res, int row, int col0);

#endif
