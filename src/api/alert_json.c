/*
 * One serializer for alerts. PostgreSQL formats the timestamps and arrays
 * (to_char, to_json) so that no value is re-parsed in C except the JSON
 * columns, which jansson must hold as objects anyway.
 */
#include "opsc/alert_json.h"

#include <stdlib.h>
#include <string.h>

/* Name and kind of each column: s text, i integer, b boolean, j JSON text. */
static const struct {
    const char *name;
    char kind;
} cols[OPSC_ALERT_JSON_NCOLS] = {
    {"id", 's'},
    {"source_system", 's'},
    {"source_alert_id", 's'},
    {"device_ip", 's'},
    {"device_name", 's'},
    {"severity", 's'},
    {"category", 's'},
    {"alert_type", 's'},
    {"impact", 's'},
    {"urgency", 's'},
    {"priority", 's'},
    {"title", 's'},
    {"message", 's'},
    {"status", 's'},
    {"is_clear", 'b'},
    {"occurred_at", 's'},
    {"received_at", 's'},
    {"acknowledged_at", 's'},
    {"acknowledged_by", 's'},
    {"resolved_at", 's'},
    {"resolved_by", 's'},
    {"correlated_to_id", 's'},
    {"correlation_rule", 's'},
    {"tags", 'j'},
    {"custom_fields", 'j'},
    {"raw_data", 'j'},
    {"fingerprint", 's'},
    {"occurrence_count", 'i'},
    {"last_occurrence_at", 's'},
    {"created_at", 's'},
    {"updated_at", 's'},
};

const char
    opsc_alert_json_columns
        [] = "a.id::text, a.source_system, a.source_alert_id, a.device_ip, a.device_name, "
             "a.severity, "
             "a.category, a.alert_type, a.impact, a.urgency, a.priority, a.title, a.message, "
             "a.status, "
             "a.is_clear, " OPSC_RFC3339_SQL("a.occurred_at") ", " OPSC_RFC3339_SQL("a.received_at") ", " OPSC_RFC3339_SQL("a.acknowledged_at") ", a.acknowledged_by, " OPSC_RFC3339_SQL(
                 "a.resolved_at") ", a.resolved_by, a.correlated_to_id::text, "
                                  "a.correlation_rule, coalesce(to_json(a.tags), "
                                  "'[]'::json)::text, a.custom_fields::text, "
                                  "a.raw_data::text, a.fingerprint, "
                                  "a.occurrence_count, " OPSC_RFC3339_SQL("a.last_occurrence_at") ", " OPSC_RFC3339_SQL(
                                      "a.created_at") ", " OPSC_RFC3339_SQL("a.updated_at");

static json_t *value(char kind, const char *v) {
    if (!v) {
        return json_null();
    }
    switch (kind) {
    case 'i':
        return json_integer(strtoll(v, NULL, 10));
    case 'b':
        return json_boolean(v[0] == 't');
    case 'j': {
        json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);
        return j ? j : json_null();
    }
    default:
        return json_string(v);
    }
}

json_t *opsc_alert_json_row(const opsc_pg_res_t *res, int row, int col0) {
    json_t *o = json_object();
    for (int k = 0; o && k < OPSC_ALERT_JSON_NCOLS; k++) {
        if (json_object_set_new(o, cols[k].name,
                                value(cols[k].kind, opsc_pg_res_value(res, row, col0 + k))) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
    return o;
}
