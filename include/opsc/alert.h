#ifndef OPSC_ALERT_H
#define OPSC_ALERT_H

#include <stddef.h>
#include <stdint.h>

/*
 * The normalized alert: one row of the `alerts` table (seed 000), the shape
 * every source produces and every sink consumes. Strings are owned by the
 * alert (heap); opsc_alert_free releases them.
 */

typedef enum {
    OPSC_SEV_CRITICAL = 0,
    OPSC_SEV_MAJOR,
    OPSC_SEV_MINOR,
    OPSC_SEV_WARNING,
    OPSC_SEV_INFO,
    OPSC_SEV_CLEAR,
    OPSC_SEV_COUNT
} opsc_severity_t;

typedef enum {
    OPSC_CAT_NETWORK = 0,
    OPSC_CAT_POWER,
    OPSC_CAT_VIDEO,
    OPSC_CAT_WIRELESS,
    OPSC_CAT_SECURITY,
    OPSC_CAT_ENVIRONMENT,
    OPSC_CAT_COMPUTE,
    OPSC_CAT_STORAGE,
    OPSC_CAT_APPLICATION,
    OPSC_CAT_UNKNOWN,
    OPSC_CAT_COUNT
} opsc_category_t;

typedef enum {
    OPSC_STATUS_ACTIVE = 0,
    OPSC_STATUS_ACKNOWLEDGED,
    OPSC_STATUS_SUPPRESSED,
    OPSC_STATUS_RESOLVED,
    OPSC_STATUS_EXPIRED,
    OPSC_STATUS_COUNT
} opsc_status_t;

/* ITIL impact and urgency: OPSC_LEVEL_NONE = NULL in the database. */
typedef enum { OPSC_LEVEL_NONE = 0, OPSC_LEVEL_HIGH, OPSC_LEVEL_MEDIUM, OPSC_LEVEL_LOW } opsc_level_t;

typedef struct opsc_uuid_s {
    unsigned char b[16];
} opsc_uuid_t;

typedef struct opsc_alert_s {
    opsc_uuid_t id;
    char *source_system;   /* "snmp" */
    char *source_alert_id; /* identifies the source's instance */
    char *device_ip;       /* NULL allowed when device_name is set */
    char *device_name;     /* NULL when unknown */
    opsc_severity_t severity;
    opsc_category_t category;
    char *alert_type;
    opsc_level_t impact;
    opsc_level_t urgency;
    int priority; /* 1..5, 0 = NULL */
    char *title;
    char *message; /* NULL allowed */
    opsc_status_t status;
    int is_clear;
    int64_t occurred_at_us; /* Unix microseconds */
    int64_t received_at_us;
    int64_t acknowledged_at_us; /* 0 = NULL */
    char *acknowledged_by;
    int64_t resolved_at_us; /* 0 = NULL */
    char *resolved_by;
    opsc_uuid_t correlated_to_id;
    int has_correlated_to;
    char *correlation_rule;
    char **tags;
    size_t ntags;
    char *custom_fields_json; /* JSON object text, NULL = {} */
    char *raw_data_json;      /* JSON object text, NULL = {} */
    char fingerprint[65];     /* SHA-256 hex */
    uint32_t occurrence_count;
    int64_t last_occurrence_at_us;
} opsc_alert_t;

const char *opsc_severity_name(opsc_severity_t s);
const char *opsc_category_name(opsc_category_t c);
const char *opsc_status_name(opsc_status_t s);
const char *opsc_level_name(opsc_level_t l); /* NULL for NONE */
/** Parse the seed's names; 0 or OPSC_EPARSE. */
int opsc_severity_parse(const char *s, opsc_severity_t *out);
int opsc_category_parse(const char *s, opsc_category_t *out);
int opsc_status_parse(const char *s, opsc_status_t *out);

/** Random (version 4) UUID from libuuid; text form is 36 characters + NUL. */
void opsc_uuid_generate(opsc_uuid_t *u);
void opsc_uuid_format(const opsc_uuid_t *u, char out[37]);
int opsc_uuid_parse(const char *s, opsc_uuid_t *u);

/** Current time in Unix microseconds. */
int64_t opsc_now_us(void);
/** RFC 3339 UTC with microseconds ("2026-11-22T02:14:01.123456Z"). */
void opsc_time_format(int64_t us, char out[32]);

opsc_alert_t *opsc_alert_new(void);
opsc_alert_t *opsc_alert_clone(const opsc_alert_t *a);
void opsc_alert_free(opsc_alert_t *a);
/** Replace a string field (copied; NULL clears). 0 or OPSC_ENOMEM. */
int opsc_alert_set(char **field, const char *value);

#endif
