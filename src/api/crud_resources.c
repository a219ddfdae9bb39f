/*
 * The configuration resources, column for column (migration 001 = seed 000,
 * 004 for maintenance windows, 008 for the connector secret), and the checks
 * of values the database would take but the pipeline could not use.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crud_int.h"
#include "opsc/normalize.h"

static const char *const severities[] = {"critical", "major", "minor", "warning",
                                         "info",     "clear", NULL};
static const char *const categories[] = {"network",     "power",   "video",   "wireless",
                                         "security",    "environment", "compute", "storage",
                                         "application", "unknown", NULL};
static const char *const dep_types[] = {"network", "power", "service", NULL};
static const char *const recurrences[] = {"daily", "weekly", NULL};

/* ---- checks ------------------------------------------------------------------------ */

const char *opsc_crud_check_ip(const char *s) {
    unsigned char a[16];
    if (inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1) {
        return NULL;
    }
    return "must be an IPv4 or IPv6 address";
}

const char *opsc_crud_check_cidr(const char *s) {
    char host[64];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (n == 0 || n >= sizeof(host)) {
        return "must be an address with an optional /prefix (10.0.0.0/8, 2001:db8::/32)";
    }
    memcpy(host, s, n);
    host[n] = '\0';
    unsigned char a[16];
    int bits;
    if (inet_pton(AF_INET, host, a) == 1) {
        bits = 32;
    } else if (inet_pton(AF_INET6, host, a) == 1) {
        bits = 128;
    } else {
        return "must be an address with an optional /prefix (10.0.0.0/8, 2001:db8::/32)";
    }
    if (slash) {
        char *end;
        long p = strtol(slash + 1, &end, 10);
        if (!isdigit((unsigned char)slash[1]) || *end || p < 0 || p > bits) {
            return "prefix length out of range";
        }
        /* cidr refuses bits set right of the prefix; say so here, with the field */
        for (int i = (int)p; i < bits; i++) {
            if (a[i / 8] & (0x80u >> (i % 8))) {
                return "has bits set to the right of the prefix length";
            }
        }
    }
    return NULL;
}

const char *opsc_crud_check_oid(const char *s) {
    uint32_t oid[OPSC_OID_MAX];
    int wc = 0;
    const char *why = "not an OID pattern";
    if (opsc_oidmap_pattern_parse(s, oid, OPSC_OID_MAX, &wc, &why) < 0) {
        return why;
    }
    return NULL;
}

/* fnmatch globs: a bracket expression must be closed, a trailing backslash escapes nothing. */
const char *opsc_crud_check_glob(const char *s) {
    for (const char *p = s; *p; p++) {
        if (*p == '\\') {
            if (!p[1]) {
                return "ends in a lone backslash";
            }
            p++;
        } else if (*p == '[') {
            const char *q = p + 1;
            if (*q == '!' || *q == '^') {
                q++;
            }
            if (*q == ']') {
                q++;
            }
            while (*q && *q != ']') {
                q++;
            }
            if (!*q) {
                return "has an unclosed [ bracket expression";
            }
            p = q;
        }
    }
    return NULL;
}

static int digits(const char *s, int n) {
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

const char *opsc_crud_check_time(const char *s) {
    size_t n = strlen(s);
    if ((n != 5 && n != 8) || !digits(s, 2) || s[2] != ':' || !digits(s + 3, 2) ||
        (n == 8 && (s[5] != ':' || !digits(s + 6, 2))) || atoi(s) > 23 || atoi(s + 3) > 59 ||
        (n == 8 && atoi(s + 6) > 59)) {
        return "must be a wall-clock time HH:MM or HH:MM:SS";
    }
    return NULL;
}

/* RFC 3339: 2026-01-31T23:59:59[.fraction](Z|+hh:mm|-hh:mm) */
const char *opsc_crud_check_ts(const char *s) {
    static const char *why = "must be an RFC 3339 timestamp (2026-01-31T22:00:00Z)";
    size_t n = strlen(s);
    if (n < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
        !digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' ||
        !digits(s + 17, 2)) {
        return why;
    }
    int mon = atoi(s + 5), day = atoi(s + 8), h = atoi(s + 11), mi = atoi(s + 14),
        se = atoi(s + 17);
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || h > 23 || mi > 59 || se > 60) {
        return why;
    }
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p)) {
            return why;
        }
        while (isdigit((unsigned char)*p)) {
            p++;
        }
    }
    if ((*p == 'Z' || *p == 'z') && !p[1]) {
        return NULL;
    }
    if ((*p == '+' || *p == '-') && strlen(p) == 6 && digits(p + 1, 2) && p[3] == ':' &&
        digits(p + 4, 2)) {
        return NULL;
    }
    return why;
}

const char *opsc_crud_check_url(const char *s) {
    if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0) {
        return "must be an http:// or https:// URL";
    }
    return NULL;
}

/* ---- the resources ------------------------------------------------------------------ */

#define TS_RO(n) {n, CRUD_TS, CRUD_RO, 0, NULL, 0, 0, NULL, NULL}

static const crud_field_t device_fields[] = {
    {"ip_address", CRUD_TEXT, CRUD_REQ | CRUD_UNIQUE, 45, NULL, 0, 0, NULL, opsc_crud_check_ip},
    {"name", CRUD_TEXT, CRUD_REQ, 255, NULL, 0, 0, NULL, NULL},
    {"netbox_id", CRUD_INT, 0, 0, NULL, 0, 2147483647, NULL, NULL},
    {"netbox_url", CRUD_TEXT, 0, 500, NULL, 0, 0, NULL, opsc_crud_check_url},
    {"device_type", CRUD_TEXT, 0, 100, NULL, 0, 0, NULL, NULL},
    {"manufacturer", CRUD_TEXT, 0, 100, NULL, 0, 0, NULL, NULL},
    {"model", CRUD_TEXT, 0, 100, NULL, 0, 0, NULL, NULL},
    {"site", CRUD_TEXT, 0, 100, NULL, 0, 0, NULL, NULL},
    {"location", CRUD_TEXT, 0, 255, NULL, 0, 0, NULL, NULL},
    {"status", CRUD_TEXT, 0, 50, NULL, 0, 0, "'active'", NULL},
    {"tags", CRUD_TEXT_ARR, 0, 0, NULL, 0, 0, NULL, NULL},
    {"custom_fields", CRUD_OBJ, 0, 0, NULL, 0, 0, "'{}'::jsonb", NULL},
    TS_RO("created_at"),
    TS_RO("updated_at"),
    TS_RO("last_synced_at"),
};
static const crud_filter_t device_filters[] = {
    {"name", "name", CRUD_F_CONTAINS},
    {"ip", "ip_address", CRUD_F_LIST},
    {"ip_address", "ip_address", CRUD_F_LIST},
    {"site", "site", CRUD_F_LIST},
    {"status", "status", CRUD_F_LIST},
};
static const crud_constraint_t device_constraints[] = {
    {"devices_ip_address_key", "ip_address", "a device with this ip_address exists"},
};

static const crud_field_t dependency_fields[] = {
    {"device_ip", CRUD_TEXT, CRUD_REQ, 45, NULL, 0, 0, NULL, opsc_crud_check_ip},
    {"depends_on_ip", CRUD_TEXT, CRUD_REQ, 45, NULL, 0, 0, NULL, opsc_crud_check_ip},
    {"dependency_type", CRUD_TEXT, CRUD_NN, 50, dep_types, 0, 0, "'network'", NULL},
    {"description", CRUD_TEXT, 0, 0, NULL, 0, 0, NULL, NULL},
    {"auto_discovered", CRUD_BOOL, 0, 0, NULL, 0, 0, "false", NULL},
    {"confidence", CRUD_NUM, 0, 0, NULL, 0, 0, NULL, NULL},
    TS_RO("created_at"),
    {"created_by", CRUD_TEXT, CRUD_ACTOR, 100, NULL, 0, 0, NULL, NULL},
    TS_RO("updated_at"),
};
static const crud_filter_t dependency_filters[] = {
    {"device_ip", "device_ip", CRUD_F_LIST},
    {"depends_on_ip", "depends_on_ip", CRUD_F_LIST},
    {"dependency_type", "dependency_type", CRUD_F_LIST},
};
static const crud_constraint_t dependency_constraints[] = {
    {"dependencies_unique", "depends_on_ip",
     "this dependency (device_ip, depends_on_ip, dependency_type) exists"},
    {"dependencies_no_self_reference", "depends_on_ip", "a device cannot depend on itself"},
    {"dependencies_confidence_range", "confidence", "confidence must be between 0 and 1"},
};

static const crud_field_t oid_mapping_fields[] = {
    {"oid_pattern", CRUD_TEXT, CRUD_REQ, 255, NULL, 0, 0, NULL, opsc_crud_check_oid},
    {"vendor", CRUD_TEXT, 0, 50, NULL, 0, 0, NULL, NULL},
    {"alert_type", CRUD_TEXT, CRUD_REQ, 100, NULL, 0, 0, NULL, NULL},
    {"category", CRUD_TEXT, CRUD_REQ, 50, categories, 0, 0, NULL, NULL},
    {"default_severity", CRUD_TEXT, CRUD_REQ, 20, severities, 0, 0, NULL, NULL},
    {"title_template", CRUD_TEXT, 0, 255, NULL, 0, 0, NULL, NULL},
    {"description", CRUD_TEXT, 0, 0, NULL, 0, 0, NULL, NULL},
    {"is_clear_event", CRUD_BOOL, 0, 0, NULL, 0, 0, "false", NULL},
    {"clear_oid_pattern", CRUD_TEXT, 0, 255, NULL, 0, 0, NULL, opsc_crud_check_oid},
    {"mib_name", CRUD_TEXT, 0, 100, NULL, 0, 0, NULL, NULL},
    {"mib_object", CRUD_TEXT, 0, 100, NULL, 0, 0, NULL, NULL},
    {"notes", CRUD_TEXT, 0, 0, NULL, 0, 0, NULL, NULL},
    TS_RO("created_at"),
    TS_RO("updated_at"),
};
static const crud_filter_t oid_mapping_filters[] = {
    {"oid_pattern", "oid_pattern", CRUD_F_LIST},
    {"vendor", "vendor", CRUD_F_LIST},
    {"alert_type", "alert_type", CRUD_F_LIST},
    {"category", "category", CRUD_F_LIST},
};
static const crud_constraint_t oid_mapping_constraints[] = {
    {"oid_mappings_unique", "oid_pattern", "a mapping for this oid_pattern and vendor exists"},
};

static const crud_field_t maintenance_fields[] = {
    {"name", CRUD_TEXT, CRUD_REQ, 255, NULL, 0, 0, NULL, NULL},
    {"device_ip_cidr", CRUD_CIDR, 0, 0, NULL, 0, 0, NULL, opsc_crud_check_cidr},
    {"device_name_glob", CRUD_TEXT, 0, 255, NULL, 0, 0, NULL, opsc_crud_check_glob},
    {"site", CRUD_TEXT, 0, 100, NULL, 0, 0, NULL, NULL},
    {"category", CRUD_TEXT, 0, 50, categories, 0, 0, NULL, NULL},
    {"alert_type", CRUD_TEXT, 0, 100, NULL, 0, 0, NULL, NULL},
    {"starts_at", CRUD_TS, CRUD_NN, 0, NULL, 0, 0, "now()", opsc_crud_check_ts},
    {"ends_at", CRUD_TS, 0, 0, NULL, 0, 0, NULL, opsc_crud_check_ts},
    {"recurrence", CRUD_TEXT, 0, 10, recurrences, 0, 0, NULL, NULL},
    {"recurrence_days", CRUD_INT_ARR, 0, 0, NULL, 1, 7, NULL, NULL},
    {"recurrence_start", CRUD_TIME, 0, 0, NULL, 0, 0, NULL, opsc_crud_check_time},
    {"recurrence_duration", CRUD_INTERVAL, 0, 100, NULL, 0, 0, NULL, NULL},
    {"time_zone", CRUD_TEXT, CRUD_NN, 64, NULL, 0, 0, "'UTC'", NULL},
    {"reason", CRUD_TEXT, 0, 0, NULL, 0, 0, NULL, NULL},
    {"created_by", CRUD_TEXT, CRUD_ACTOR, 255, NULL, 0, 0, NULL, NULL},
    {"enabled", CRUD_BOOL, CRUD_NN, 0, NULL, 0, 0, "true", NULL},
    TS_RO("created_at"),
    TS_RO("updated_at"),
};
static const crud_filter_t maintenance_filters[] = {
    {"name", "name", CRUD_F_CONTAINS},
    {"site", "site", CRUD_F_LIST},
    {"category", "category", CRUD_F_LIST},
    {"enabled", "enabled", CRUD_F_BOOL},
};
static const crud_constraint_t maintenance_constraints[] = {
    {"maintenance_windows_matcher_check", "device_ip_cidr",
     "a window needs at least one matcher (device_ip_cidr, device_name_glob, site, category, "
     "alert_type); to cover everything say device_ip_cidr 0.0.0.0/0"},
    {"maintenance_windows_range_check", "ends_at", "ends_at must be after starts_at"},
    {"maintenance_windows_recurrence_check", "recurrence",
     "recurrence: none (and no recurrence_* fields), 'daily' with recurrence_start and a "
     "recurrence_duration of at most 1 day, or 'weekly' with recurrence_days (1-7), "
     "recurrence_start and a recurrence_duration of at most 7 days"},
};

static const crud_field_t rule_fields[] = {
    {"name", CRUD_TEXT, CRUD_REQ, 100, NULL, 0, 0, NULL, NULL},
    {"description", CRUD_TEXT, 0, 0, NULL, 0, 0, NULL, NULL},
    {"enabled", CRUD_BOOL, 0, 0, NULL, 0, 0, "true", NULL},
    {"priority", CRUD_INT, 0, 0, NULL, -2147483647, 2147483647, "100", NULL},
    {"conditions", CRUD_OBJ, CRUD_NN, 0, NULL, 0, 0, "'{}'::jsonb", NULL},
    {"channels", CRUD_ARR, CRUD_NN, 0, NULL, 0, 0, "'[]'::jsonb", NULL},
    {"throttle_minutes", CRUD_INT, 0, 0, NULL, 0, 525600, "0", NULL},
    {"last_triggered_at", CRUD_TS, CRUD_RO, 0, NULL, 0, 0, NULL, NULL},
    TS_RO("created_at"),
    TS_RO("updated_at"),
    {"created_by", CRUD_TEXT, CRUD_ACTOR, 100, NULL, 0, 0, NULL, NULL},
};
static const crud_filter_t rule_filters[] = {
    {"name", "name", CRUD_F_CONTAINS},
    {"enabled", "enabled", CRUD_F_BOOL},
};
static const crud_constraint_t rule_constraints[] = {
    {"notification_log_rule_id_fkey", "id",
     "the rule has delivery records in notification_log; disable it instead"},
};

static const crud_field_t connector_fields[] = {
    {"name", CRUD_TEXT, CRUD_REQ, 100, NULL, 0, 0, NULL, NULL},
    {"type", CRUD_TEXT, CRUD_REQ, 50, NULL, 0, 0, NULL, NULL},
    {"enabled", CRUD_BOOL, 0, 0, NULL, 0, 0, "false", NULL},
    {"config", CRUD_OBJ, CRUD_NN, 0, NULL, 0, 0, "'{}'::jsonb", NULL},
    {"secret", CRUD_TEXT, CRUD_SECRET, 4096, NULL, 0, 0, NULL, NULL},
    {"status", CRUD_TEXT, CRUD_RO, 0, NULL, 0, 0, NULL, NULL},
    {"error_message", CRUD_TEXT, CRUD_RO, 0, NULL, 0, 0, NULL, NULL},
    TS_RO("last_poll_at"),
    TS_RO("last_success_at"),
    {"alerts_received", CRUD_INT, CRUD_RO, 0, NULL, 0, 0, NULL, NULL},
    {"alerts_today", CRUD_INT, CRUD_RO, 0, NULL, 0, 0, NULL, NULL},
    TS_RO("created_at"),
    TS_RO("updated_at"),
};
static const crud_filter_t connector_filters[] = {
    {"name", "name", CRUD_F_LIST},
    {"type", "type", CRUD_F_LIST},
    {"enabled", "enabled", CRUD_F_BOOL},
};
static const crud_constraint_t connector_constraints[] = {
    {"connectors_name_key", "name", "a connector with this name exists"},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

const crud_resource_t opsc_crud_resources[] = {
    {"devices", "devices", device_fields, N(device_fields), device_filters, N(device_filters),
     device_constraints, N(device_constraints), "name, ip_address", 1},
    {"dependencies", "dependencies", dependency_fields, N(dependency_fields), dependency_filters,
     N(dependency_filters), dependency_constraints, N(dependency_constraints),
     "device_ip, depends_on_ip, dependency_type", 0},
    {"oid-mappings", "oid_mappings", oid_mapping_fields, N(oid_mapping_fields),
     oid_mapping_filters, N(oid_mapping_filters), oid_mapping_constraints,
     N(oid_mapping_constraints), "oid_pattern, vendor NULLS LAST", 0},
    {"maintenance-windows", "maintenance_windows", maintenance_fields, N(maintenance_fields),
     maintenance_filters, N(maintenance_filters), maintenance_constraints,
     N(maintenance_constraints), "starts_at, name, id", 0},
    {"notification-rules", "notification_rules", rule_fields, N(rule_fields), rule_filters,
     N(rule_filters), rule_constraints, N(rule_constraints), "priority, name, id", 0},
    {"connectors", "connectors", connector_fields, N(connector_fields), connector_filters,
     N(connector_filters), connector_constraints, N(connector_constraints), "name", 0},
};
const size_t opsc_crud_resources_count = N(opsc_crud_resources);
