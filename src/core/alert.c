/*
 * The alert model's small helpers: enum names (the seed's CHECK values),
 * UUIDs (libuuid), times, and the owned-string alert record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>

#include <uuid/uuid.h>

#include "opsc/alert.h"
#include "opsc/buf.h"
#include "opsc/error.h"

static const char *const severity_names[OPSC_SEV_COUNT] = {"critical", "major", "minor",
                                                           "warning",  "info",  "clear"};
static const char *const category_names[OPSC_CAT_COUNT] = {
    "network", "power",   "video",       "wireless", "security",
    "environment", "compute", "storage", "application", "unknown"};
static const char *const status_names[OPSC_STATUS_COUNT] = {"active", "acknowledged",
                                                            "suppressed", "resolved", "expired"};

const char *opsc_severity_name(opsc_severity_t s) {
    return (unsigned)s < OPSC_SEV_COUNT ? severity_names[s] : "unknown";
}

const char *opsc_category_name(opsc_category_t c) {
    return (unsigned)c < OPSC_CAT_COUNT ? category_names[c] : "unknown";
}

const char *opsc_status_name(opsc_status_t s) {
    return (unsigned)s < OPSC_STATUS_COUNT ? status_names[s] : "unknown";
}

const char *opsc_level_name(opsc_level_t l) {
    switch (l) {
    case OPSC_LEVEL_HIGH:
        return "high";
    case OPSC_LEVEL_MEDIUM:
        return "medium";
    case OPSC_LEVEL_LOW:
        return "low";
    default:
        return NULL;
    }
}

static int find_name(const char *const *names, int n, const char *s) {
    for (int i = 0; s && i < n; i++) {
        if (strcmp(names[i], s) == 0) {
            return i;
        }
    }
    return -1;
}

int opsc_severity_parse(const char *s, opsc_severity_t *out) {
    int i = find_name(severity_names, OPSC_SEV_COUNT, s);
    if (i < 0) {
        return OPSC_EPARSE;
    }
    *out = (opsc_severity_t)i;
    return 0;
}

int opsc_category_parse(const char *s, opsc_category_t *out) {
    int i = find_name(category_names, OPSC_CAT_COUNT, s);
    if (i < 0) {
        return OPSC_EPARSE;
    }
    *out = (opsc_category_t)i;
    return 0;
}

int opsc_status_parse(const char *s, opsc_status_t *out) {
    int i = find_name(status_names, OPSC_STATUS_COUNT, s);
    if (i < 0) {
        return OPSC_EPARSE;
    }
    *out = (opsc_status_t)i;
    return 0;
}

/*
 * Version 4 UUIDs from the kernel's CSPRNG, 256 at a time per thread:
 * libuuid's uuid_generate_random makes several system calls per UUID, a
 * quarter of the cost of a new alert.
 */
void opsc_uuid_generate(opsc_uuid_t *u) {
    static _Thread_local unsigned char pool[4096];
    static _Thread_local size_t used = sizeof(pool);
    if (used == sizeof(pool)) {
        size_t got = 0;
        while (got < sizeof(pool)) {
            ssize_t n = getrandom(pool + got, sizeof(pool) - got, 0);
            if (n <= 0) {
                break;
            }
            got += (size_t)n;
        }
        if (got < sizeof(pool)) {
            uuid_generate_random(u->b); /* no getrandom: libuuid's own sources */
            return;
        }
        used = 0;
    }
    memcpy(u->b, pool + used, 16);
    memset(pool + used, 0, 16); /* do not keep handed-out ids around */
    used += 16;
    u->b[6] = (unsigned char)((u->b[6] & 0x0f) | 0x40); /* version 4 */
    u->b[8] = (unsigned char)((u->b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

void opsc_uuid_format(const opsc_uuid_t *u, char out[37]) {
    uuid_unparse_lower(u->b, out);
}

int opsc_uuid_parse(const char *s, opsc_uuid_t *u) {
    return s && uuid_parse(s, u->b) == 0 ? 0 : OPSC_EPARSE;
}

int64_t opsc_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void opsc_time_format(int64_t us, char out[32]) {
    time_t sec = (time_t)(us / 1000000);
    long frac = (long)(us % 1000000);
    if (frac < 0) {
        frac += 1000000;
        sec -= 1;
    }
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%06ldZ", frac % 1000000);
}

opsc_alert_t *opsc_alert_new(void) {
    opsc_alert_t *a = opsc_calloc(1, sizeof(*a));
    if (a) {
        a->occurrence_count = 1;
    }
    return a;
}

int opsc_alert_set(char **field, const char *value) {
    char *n = NULL;
    if (value) {
        n = opsc_strdup(value);
        if (!n) {
            return OPSC_ENOMEM;
        }
    }
    opsc_free(*field);
    *field = n;
    return 0;
}

#define ALERT_STRINGS(X)                                                                           \
    X(source_system)                                                                               \
    X(source_alert_id)                                                                             \
    X(device_ip)                                                                                   \
    X(device_name)                                                                                 \
    X(alert_type)                                                                                  \
    X(title)                                                                                       \
    X(message)                                                                                     \
    X(acknowledged_by)                                                                             \
    X(resolved_by)                                                                                 \
    X(correlation_rule)                                                                            \
    X(custom_fields_json)                                                                          \
    X(raw_data_json)

void opsc_alert_free(opsc_alert_t *a) {
    if (!a) {
        return;
    }
#define FREE_ONE(f) opsc_free(a->f);
    ALERT_STRINGS(FREE_ONE)
#undef FREE_ONE
    for (size_t i = 0; i < a->ntags; i++) {
        opsc_free(a->tags[i]);
    }
    opsc_free(a->tags);
    opsc_free(a);
}

opsc_alert_t *opsc_alert_clone(const opsc_alert_t *src) {
    opsc_alert_t *a = opsc_malloc(sizeof(*a));
    if (!a) {
        return NULL;
    }
    *a = *src;
    int failed = 0;
#define COPY_ONE(f)                                                                                \
    a->f = NULL;                                                                                   \
    if (src->f && !(a->f = opsc_strdup(src->f))) {                                                 \
        failed = 1;                                                                                \
    }
    ALERT_STRINGS(COPY_ONE)
#undef COPY_ONE
    a->tags = NULL;
    a->ntags = 0;
    if (src->ntags) {
        a->tags = opsc_calloc(src->ntags, sizeof(char *));
        if (!a->tags) {
            failed = 1;
        } else {
            a->ntags = src->ntags;
            for (size_t i = 0; i < src->ntags; i++) {
                if (!(a->tags[i] = opsc_strdup(src->tags[i]))) {
                    failed = 1;
                }
            }
        }
    }
    if (failed) {
        opsc_alert_free(a);
        return NULL;
    }
    return a;
}
