/*
 * Normalized events (opsc/event.h): one JSON object in, one alert out, or
 * every problem of the object listed. Pure: no I/O, no global state; the
 * fingerprint is computed here so that the pipeline only looks it up.
 */
#include "opsc/event.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "opsc/alert_query.h"
#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/normalize.h"

#define TAGS_MAX 64
#define TAG_BYTES 100

typedef struct ctx_s {
    json_t *errors;
    size_t index;
    int bad;
} ctx_t;

__attribute__((format(printf, 3, 4))) static void fail(ctx_t *x, const char *field, const char *fmt,
                                                       ...) {
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *e = json_pack("{s:s,s:s}", "field", field, "message", msg);
    if (e && x->index != SIZE_MAX) {
        json_object_set_new(e, "index", json_integer((json_int_t)x->index));
    }
    if (e) {
        json_array_append_new(x->errors, e);
    }
    x->bad = 1;
}

/* A string field: NULL when absent; a wrong type or length is an error. */
static const char *str(ctx_t *x, const json_t *ev, const char *field, size_t max, int required) {
    const json_t *v = json_object_get(ev, field);
    if (!v || json_is_null(v)) {
        if (required) {
            fail(x, field, "%s is required", field);
        }
        return NULL;
    }
    if (!json_is_string(v)) {
        fail(x, field, "%s must be a string", field);
        return NULL;
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (memchr(s, '\0', len)) {
        fail(x, field, "%s contains a NUL character", field);
        return NULL;
    }
    if (max && len > max) {
        fail(x, field, "%s is longer than %zu bytes", field, max);
        return NULL;
    }
    if (required && strspn(s, " \t\r\n") == len) {
        fail(x, field, "%s must not be blank", field);
        return NULL;
    }
    return s;
}

static opsc_level_t level(ctx_t *x, const json_t *ev, const char *field) {
    const char *s = str(x, ev, field, 0, 0);
    if (!s) {
        return OPSC_LEVEL_NONE;
    }
    if (strcmp(s, "high") == 0) {
        return OPSC_LEVEL_HIGH;
    }
    if (strcmp(s, "medium") == 0) {
        return OPSC_LEVEL_MEDIUM;
    }
    if (strcmp(s, "low") == 0) {
        return OPSC_LEVEL_LOW;
    }
    fail(x, field, "%s must be high, medium or low", field);
    return OPSC_LEVEL_NONE;
}

/* JSON object text of field `field`, or NULL when absent. */
static char *object_text(ctx_t *x, const json_t *ev, const char *field) {
    const json_t *v = json_object_get(ev, field);
    if (!v || json_is_null(v)) {
        return NULL;
    }
    if (!json_is_object(v)) {
        fail(x, field, "%s must be an object", field);
        return NULL;
    }
    char *t = json_dumps(v, JSON_COMPACT);
    char *c = t ? opsc_strdup(t) : NULL;
    free(t);
    if (!c) {
        fail(x, field, "%s: out of memory", field);
    }
    return c;
}

static const char *const known_keys[] = {
    "source_system", "source_alert_id", "device_ip", "device_name", "severity",
    "category",      "alert_type",      "title",     "message",     "occurred_at",
    "is_clear",      "impact",          "urgency",   "tags",        "custom_fields",
    "raw_data",      "fingerprint",
};

static void check_keys(ctx_t *x, const json_t *ev) {
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)ev, k, v) {
        size_t i = 0;
        while (i < sizeof(known_keys) / sizeof(known_keys[0]) && strcmp(k, known_keys[i]) != 0) {
            i++;
        }
        if (i == sizeof(known_keys) / sizeof(known_keys[0])) {
            char field[120];
            snprintf(field, sizeof(field), "%.100s", k);
            fail(x, field, "%s is not a field of an event", field);
        }
    }
}

static void tags(ctx_t *x, const json_t *ev, opsc_alert_t *a) {
    const json_t *v = json_object_get(ev, "tags");
    if (!v || json_is_null(v)) {
        return;
    }
    if (!json_is_array(v)) {
        fail(x, "tags", "tags must be an array of strings");
        return;
    }
    size_t n = json_array_size(v);
    if (n > TAGS_MAX) {
        fail(x, "tags", "tags: at most %d tags", TAGS_MAX);
        return;
    }
    if (n == 0) {
        return;
    }
    a->tags = opsc_calloc(n, sizeof(char *));
    if (!a->tags) {
        fail(x, "tags", "tags: out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *t = json_array_get(v, i);
        if (!json_is_string(t) || json_string_length(t) == 0 || json_string_length(t) > TAG_BYTES ||
            memchr(json_string_value(t), '\0', json_string_length(t))) {
            fail(x, "tags", "tags must be non-empty strings of at most %d bytes", TAG_BYTES);
            return;
        }
        if (!(a->tags[a->ntags] = opsc_strdup(json_string_value(t)))) {
            fail(x, "tags", "tags: out of memory");
            return;
        }
        a->ntags++;
    }
}

static int set(ctx_t *x, char **field, const char *v) {
    if (v && opsc_alert_set(field, v) != 0) {
        x->bad = 1;
        return OPSC_ENOMEM;
    }
    return 0;
}

int opsc_event_from_json(const json_t *ev, size_t index, int64_t now_us, opsc_alert_t **out,
                         json_t *errors) {
    ctx_t x = {errors, index, 0};
    *out = NULL;
    if (!json_is_object(ev)) {
        fail(&x, "", "an event must be a JSON object");
        return OPSC_EPARSE;
    }
    opsc_alert_t *a = opsc_alert_new();
    if (!a) {
        return OPSC_ENOMEM;
    }
    int mem = 0;
    check_keys(&x, ev);
    const char *source = str(&x, ev, "source_system", 50, 0);
    const char *source_id = str(&x, ev, "source_alert_id", 255, 0);
    const char *ip = str(&x, ev, "device_ip", 45, 0);
    const char *name = str(&x, ev, "device_name", 255, 0);
    const char *sev = str(&x, ev, "severity", 0, 1);
    const char *cat = str(&x, ev, "category", 0, 0);
    const char *type = str(&x, ev, "alert_type", 100, 1);
    const char *title = str(&x, ev, "title", 255, 1);
    const char *message = str(&x, ev, "message", 0, 0);
    const char *occurred = str(&x, ev, "occurred_at", 64, 0);
    const char *fp = str(&x, ev, "fingerprint", 64, 0);

    char ipbuf[INET6_ADDRSTRLEN] = "";
    if (ip) {
        unsigned char bin[16];
        if (inet_pton(AF_INET, ip, bin) == 1) {
            inet_ntop(AF_INET, bin, ipbuf, sizeof(ipbuf));
        } else if (inet_pton(AF_INET6, ip, bin) == 1) {
            inet_ntop(AF_INET6, bin, ipbuf, sizeof(ipbuf));
        } else {
            fail(&x, "device_ip", "%s must be an IPv4 or IPv6 address", "device_ip");
        }
    }
    if (!json_object_get(ev, "device_ip") && !json_object_get(ev, "device_name")) {
        fail(&x, "device_ip", "%s or device_name is required", "device_ip");
    }
    if (sev && opsc_severity_parse(sev, &a->severity) != 0) {
        fail(&x, "severity", "%s must be critical, major, minor, warning, info or clear",
             "severity");
    }
    a->category = OPSC_CAT_UNKNOWN;
    if (cat && opsc_category_parse(cat, &a->category) != 0) {
        fail(&x, "category",
             "%s must be network, power, video, wireless, security, environment, compute, "
             "storage, application or unknown",
             "category");
    }
    a->occurred_at_us = now_us;
    if (occurred && opsc_rfc3339_parse(occurred, &a->occurred_at_us) != 0) {
        fail(&x, "occurred_at", "%s must be an RFC 3339 time (2026-11-22T10:00:00Z)",
             "occurred_at");
    }
    const json_t *clr = json_object_get(ev, "is_clear");
    if (clr && !json_is_null(clr) && !json_is_boolean(clr)) {
        fail(&x, "is_clear", "%s must be true or false", "is_clear");
    }
    a->is_clear = json_is_true(clr);
    a->impact = level(&x, ev, "impact");
    a->urgency = level(&x, ev, "urgency");
    tags(&x, ev, a);
    a->custom_fields_json = object_text(&x, ev, "custom_fields");
    a->raw_data_json = object_text(&x, ev, "raw_data");
    if (x.bad) {
        opsc_alert_free(a);
        return OPSC_EPARSE;
    }

    if (!source) {
        source = "api";
    }
    if (!source_id) {
        source_id = type;
    }
    mem |= set(&x, &a->source_system, source);
    mem |= set(&x, &a->source_alert_id, source_id);
    mem |= set(&x, &a->device_ip, ip ? ipbuf : NULL);
    mem |= set(&x, &a->device_name, name);
    mem |= set(&x, &a->alert_type, type);
    mem |= set(&x, &a->title, title);
    mem |= set(&x, &a->message, message);
    if (mem) {
        opsc_alert_free(a);
        return OPSC_ENOMEM;
    }
    if (fp) {
        snprintf(a->fingerprint, sizeof(a->fingerprint), "%s", fp);
    } else {
        /* The source's id stands in the discriminator's place of a trap's fingerprint. */
        opsc_normalize_fingerprint(source, ip ? ipbuf : name, type, source_id, a->fingerprint);
    }
    opsc_uuid_generate(&a->id);
    a->status = OPSC_STATUS_ACTIVE;
    a->received_at_us = now_us;
    a->last_occurrence_at_us = now_us;
    a->occurrence_count = 1;
    *out = a;
    return 0;
}
