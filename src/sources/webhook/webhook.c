/*
 * Webhook payload mappers. Alertmanager and Grafana send the same shape, so
 * one code path serves both, told apart by a small descriptor (its name,
 * its default alert type, the extra URLs it carries). The generic mapper
 * compiles its connector's JSON pointers once per call, then walks the
 * items. Every mapper fills an `event_t` and hands it to event_build(), so
 * the rules every event shares (no empty strings, no nulls, an address only
 * in device_ip) live in one place.
 *
 * A mapper refuses a payload only when it cannot read its shape at all; a
 * missing value is left out and the events validator, which knows which
 * keys are required, gives the answer the sender sees.
 */
#include "opsc/webhook.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <mbedtls/md.h>

#include "opsc/auth.h"
#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/tokens.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const severities[] = {"critical", "major", "minor", "warning", "info", "clear"};
static const char *const categories[] = {"network",     "power",       "video",   "wireless",
                                         "security",    "environment", "compute", "storage",
                                         "application", "unknown"};

static const struct {
    const char *label, *severity;
} default_severity_map[] = {
    {"critical", "critical"}, {"high", "major"},   {"error", "major"}, {"major", "major"},
    {"warning", "warning"},   {"warn", "warning"}, {"minor", "minor"}, {"medium", "minor"},
    {"low", "info"},          {"info", "info"},    {"none", "info"},   {"page", "critical"},
};

#define ZERO_TIME "0001-01-01T00:00:00Z" /* Go's time.Time{}: Alertmanager's "not set" */

/* Our spelling of s when it is one of names (case-insensitive); NULL when not. */
static const char *name_in(const char *const *names, size_t n, const char *s) {
    for (size_t i = 0; s && i < n; i++) {
        if (strcasecmp(names[i], s) == 0) {
            return names[i];
        }
    }
    return NULL;
}

static const char *map_severity(const json_t *map, const char *value) {
    if (!value) {
        return "warning";
    }
    if (!map) {
        for (size_t i = 0; i < COUNT(default_severity_map); i++) {
            if (strcasecmp(default_severity_map[i].label, value) == 0) {
                return default_severity_map[i].severity;
            }
        }
        return "warning";
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)map, k, v) {
        if (strcasecmp(k, value) == 0) {
            /* validated by check_severity_map(), so a string of ours */
            return name_in(severities, COUNT(severities), json_string_value(v));
        }
    }
    return "warning";
}

static int check_severity_map(const json_t *map, char *err, size_t errlen) {
    if (!json_is_object(map)) {
        opsc_errbuf_printf(err, errlen, "severity_map: not an object");
        return OPSC_EPARSE;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)map, k, v) {
        if (!name_in(severities, COUNT(severities), json_string_value(v))) {
            opsc_errbuf_printf(err, errlen, "severity_map.%s: not a severity", k);
            return OPSC_EPARSE;
        }
    }
    return 0;
}

/* ==== Values as text ========================================================================== */

/*
 * A new JSON string: a string as it is, any other value as its JSON text.
 * Reals with 15 significant digits, so that 0.1 reads "0.1" as it was sent
 * rather than the 17-digit "0.10000000000000001".
 */
static json_t *text_of(const json_t *v) {
    if (json_is_string(v)) {
        return json_stringn(json_string_value(v), json_string_length(v));
    }
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_t *t = s ? json_string(s) : NULL;
    free(s);
    return t;
}

/* What a generic field may hold as text; null, objects and arrays read as no value. */
static int is_scalar(const json_t *v) {
    return json_is_string(v) || json_is_number(v) || json_is_boolean(v);
}

/* A copy of an object whose values are all strings (text_of); NULL when out of memory. */
static json_t *text_object(const json_t *obj) {
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        if (!out || json_object_set_new(out, k, text_of(v)) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static const char *get_str(const json_t *obj, const char *key) {
    return json_string_value(json_object_get(obj, key));
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "name=value" for every member of a text object, sorted by name. NULL when out of memory. */
static json_t *tags_of_object(const json_t *obj) {
    size_t n = json_object_size(obj), i = 0;
    const char **keys = opsc_malloc((n ? n : 1) * sizeof(*keys));
    json_t *tags = json_array();
    const char *k;
    json_t *v;
    if (!keys || !tags) {
        goto error;
    }
    json_object_foreach((json_t *)obj, k, v) {
        keys[i++] = k;
    }
    qsort(keys, n, sizeof(*keys), cmp_str);
    for (i = 0; i < n; i++) {
        const char *val = get_str(obj, keys[i]);
        if (json_array_append_new(tags, json_sprintf("%s=%s", keys[i], val ? val : "")) != 0) {
            goto error;
        }
    }
    opsc_free(keys);
    return tags;
error:
    opsc_free(keys);
    json_decref(tags);
    return NULL;
}

/* Lower-case hex SHA-256 over each tag followed by "\n". 0 or OPSC_ENOMEM. */
static int tags_hash(const json_t *tags, char hex[65]) {
    opsc_buf_t b = OPSC_BUF_INIT;
    int rc = 0;
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) {
        rc = rc ? rc : opsc_buf_append(&b, json_string_value(t), json_string_length(t));
        rc = rc ? rc : opsc_buf_append(&b, "\n", 1);
    }
    if (rc == 0) {
        opsc_tokens_hash_hex(b.base ? b.base : "", b.len, hex);
    }
    opsc_buf_free(&b);
    return rc;
}

static int is_ip(const char *s) {
    unsigned char a[16];
    return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/*
 * The host of an Alertmanager instance label as a new JSON string: a URL's
 * scheme, user, path and query go ("https://u@h:8443/x" -> "h"), then the
 * port ("h:9100" -> "h", "[2001:db8::1]:9100" -> "2001:db8::1"); a bare
 * IPv6 address (several colons, no brackets) is kept whole. NULL when
 * nothing is left.
 */
static json_t *instance_host(const char *inst) {
    const char *p = inst, *scheme = strstr(inst, "://");
    if (scheme) {
        p = scheme + 3;
    }
    const char *end = p + (scheme ? strcspn(p, "/?#") : strlen(p));
    for (const char *q = p; q < end; q++) {
        if (*q == '@' && scheme) {
            p = q + 1;
        }
    }
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (close) {
            p++;
            end = close;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (colon && !memchr(colon + 1, ':', (size_t)(end - colon - 1))) {
            size_t plen = (size_t)(end - colon - 1);
            if (plen > 0 && strspn(colon + 1, "0123456789") >= plen) {
                end = colon;
            }
        }
    }
    return end > p ? json_stringn(p, (size_t)(end - p)) : NULL;
}

/* ==== One event ================================================================================
 */

/* What a mapper found for one event; strings borrowed, JSON values owned (stolen by the build). */
typedef struct event_s {
    const char *source_system, *source_alert_id, *device, *device_name, *severity, *category;
    const char *alert_type, *title, *message, *occurred_at;
    int is_clear; /* -1: no value */
    json_t *tags, *custom_fields, *raw_data;
} event_t;

static void event_free(event_t *e) {
    json_decref(e->tags);
    json_decref(e->custom_fields);
    json_decref(e->raw_data);
}

static int put_str(json_t *ev, const char *key, const char *s) {
    return s && *s ? json_object_set_new(ev, key, json_string(s)) : 0;
}

static int put_json(json_t *ev, const char *key, json_t *v) {
    return v ? json_object_set_new(ev, key, v) : 0;
}

/*
 * Append the event to `events`. `device` goes to device_ip when it is an
 * address, else to device_name unless that has a value of its own. 0 or
 * OPSC_ENOMEM; the event's JSON values are consumed either way.
 */
static int event_build(event_t *e, json_t *events) {
    json_t *ev = json_object();
    if (!ev) {
        return OPSC_ENOMEM; /* the JSON values stay the caller's */
    }
    int ip = e->device && is_ip(e->device);
    const char *name = e->device_name && *e->device_name ? e->device_name : ip ? NULL : e->device;
    int bad = put_str(ev, "source_system", e->source_system);
    bad |= put_str(ev, "source_alert_id", e->source_alert_id);
    bad |= put_str(ev, "device_ip", ip ? e->device : NULL);
    bad |= put_str(ev, "device_name", name);
    bad |= put_str(ev, "severity", e->severity);
    bad |= put_str(ev, "category", e->category);
    bad |= put_str(ev, "alert_type", e->alert_type);
    bad |= put_str(ev, "title", e->title);
    bad |= put_str(ev, "message", e->message);
    bad |= put_str(ev, "occurred_at", e->occurred_at);
    bad |= e->is_clear >= 0 && json_object_set_new(ev, "is_clear", json_boolean(e->is_clear));
    /* json_object_set_new() consumes the value even when it fails */
    bad |= put_json(ev, "tags", e->tags);
    bad |= put_json(ev, "custom_fields", e->custom_fields);
    bad |= put_json(ev, "raw_data", e->raw_data);
    e->tags = e->custom_fields = e->raw_data = NULL;
    if (bad) {
        json_decref(ev);
        return OPSC_ENOMEM;
    }
    return json_array_append_new(events, ev) == 0 ? 0 : OPSC_ENOMEM;
}

/* ==== Alertmanager and Grafana ================================================================ */

typedef struct am_source_s {
    const char *name;         /* source_system, and the device of last resort */
    const char *default_type; /* alert_type without an alertname label */
    const char *const *urls;  /* alert keys copied into custom_fields when non-empty strings */
    size_t nurls;
} am_source_t;

static const char *const grafana_urls[] = {"dashboardURL", "panelURL", "silenceURL", "valueString"};
static const am_source_t am_alertmanager = {"alertmanager", "alertmanager_alert", NULL, 0};
static const am_source_t am_grafana = {"grafana", "grafana_alert", grafana_urls,
                                       COUNT(grafana_urls)};

/* An object member that must be an object when present; absent or null reads as {}. */
static int member_object(const json_t *alert, const char *key, size_t i, json_t **out, char *err,
                         size_t errlen) {
    json_t *v = json_object_get(alert, key);
    if (v && !json_is_null(v) && !json_is_object(v)) {
        opsc_errbuf_printf(err, errlen, "alerts[%zu].%s: not an object", i, key);
        return OPSC_EPARSE;
    }
    *out = text_object(v);
    return *out ? 0 : OPSC_ENOMEM;
}

static json_t *am_custom_fields(const am_source_t *src, const json_t *body, const json_t *alert,
                                json_t *labels, json_t *annotations, int resolved) {
    json_t *cf = json_object();
    int bad = !cf;
    bad |= cf && json_object_set(cf, "labels", labels);
    bad |= cf && json_object_set(cf, "annotations", annotations);
    bad |= cf && put_str(cf, "generatorURL", get_str(alert, "generatorURL"));
    bad |= cf && put_str(cf, "receiver", get_str(body, "receiver"));
    bad |= cf && resolved && put_str(cf, "endsAt", get_str(alert, "endsAt"));
    for (size_t u = 0; cf && u < src->nurls; u++) {
        bad |= put_str(cf, src->urls[u], get_str(alert, src->urls[u]));
    }
    if (bad) {
        json_decref(cf);
        return NULL;
    }
    return cf;
}

static int am_alert(const am_source_t *src, const json_t *body, const json_t *alert, size_t i,
                    const json_t *sevmap, const char *defcat, json_t *events, char *err,
                    size_t errlen) {
    json_t *labels = NULL, *ann = NULL, *host = NULL, *title = NULL;
    char hash[65];
    event_t e = {.source_system = src->name, .is_clear = -1};
    int rc = OPSC_EPARSE;
    if (!json_is_object(alert)) {
        opsc_errbuf_printf(err, errlen, "alerts[%zu]: not an object", i);
        goto cleanup;
    }
    /* Each alert carries its own status; the payload's stands in when an alert has none. */
    const json_t *st = json_object_get(alert, "status");
    const char *status = json_string_value(st ? st : json_object_get(body, "status"));
    if (!status || (strcasecmp(status, "firing") != 0 && strcasecmp(status, "resolved") != 0)) {
        opsc_errbuf_printf(err, errlen, "alerts[%zu].status: not firing or resolved", i);
        goto cleanup;
    }
    if ((rc = member_object(alert, "labels", i, &labels, err, errlen)) != 0 ||
        (rc = member_object(alert, "annotations", i, &ann, err, errlen)) != 0) {
        goto cleanup;
    }
    rc = OPSC_ENOMEM;
    e.is_clear = strcasecmp(status, "resolved") == 0;
    if (!(e.tags = tags_of_object(labels))) {
        goto cleanup;
    }
    e.source_alert_id = get_str(alert, "fingerprint");
    if (!e.source_alert_id || !*e.source_alert_id) {
        if (tags_hash(e.tags, hash) != 0) {
            goto cleanup;
        }
        e.source_alert_id = hash;
    }
    const char *name = get_str(labels, "alertname"), *inst = get_str(labels, "instance");
    e.alert_type = name && *name ? name : src->default_type;
    e.severity = map_severity(sevmap, get_str(labels, "severity"));
    e.category = name_in(categories, COUNT(categories), get_str(labels, "category"));
    e.category = e.category ? e.category : defcat;
    if (inst && *inst) {
        host = instance_host(inst);
        e.device = json_string_value(host);
    }
    /* Without an instance, a host label names the device (as a name, even when it is an address).
     */
    static const char *const device_labels[] = {"host", "node", "hostname", "job"};
    for (size_t d = 0; !e.device && !e.device_name && d < COUNT(device_labels); d++) {
        const char *v = get_str(labels, device_labels[d]);
        e.device_name = v && *v ? v : NULL;
    }
    e.device_name = e.device || e.device_name ? e.device_name : src->name;
    e.title = get_str(ann, "summary");
    e.title = e.title && *e.title ? e.title : get_str(ann, "title");
    if (!e.title || !*e.title) {
        title = inst && *inst ? json_sprintf("%s on %s", e.alert_type, inst) : NULL;
        e.title = title ? json_string_value(title) : e.alert_type;
    }
    e.message = get_str(ann, "description");
    e.message = e.message && *e.message ? e.message : get_str(ann, "message");
    e.occurred_at = get_str(alert, "startsAt");
    e.occurred_at = e.occurred_at && strcmp(e.occurred_at, ZERO_TIME) != 0 ? e.occurred_at : NULL;
    e.custom_fields = am_custom_fields(src, body, alert, labels, ann, e.is_clear);
    e.raw_data = json_deep_copy(alert);
    if (!e.custom_fields || !e.raw_data) {
        goto cleanup;
    }
    rc = event_build(&e, events);
cleanup:
    event_free(&e);
    json_decref(title);
    json_decref(host);
    json_decref(ann);
    json_decref(labels);
    return rc;
}

static int am_map(const am_source_t *src, const json_t *body, const opsc_webhook_opts_t *o,
                  json_t **events, char *err, size_t errlen) {
    const json_t *sevmap = o ? o->severity_map : NULL;
    const char *defcat = "application";
    *events = NULL;
    if (sevmap && check_severity_map(sevmap, err, errlen) != 0) {
        return OPSC_EPARSE;
    }
    if (o && o->default_category &&
        !(defcat = name_in(categories, COUNT(categories), o->default_category))) {
        opsc_errbuf_printf(err, errlen, "default_category: not a category");
        return OPSC_EPARSE;
    }
    if (!json_is_object(body)) {
        opsc_errbuf_printf(err, errlen, "body: not an object");
        return OPSC_EPARSE;
    }
    const json_t *alerts = json_object_get(body, "alerts");
    if (!json_is_array(alerts)) {
        opsc_errbuf_printf(err, errlen, "alerts: missing or not an array");
        return OPSC_EPARSE;
    }
    json_t *out = json_array();
    if (!out) {
        return OPSC_ENOMEM;
    }
    size_t i;
    json_t *a;
    json_array_foreach(alerts, i, a) {
        int rc = am_alert(src, body, a, i, sevmap, defcat, out, err, errlen);
        if (rc != 0) {
            json_decref(out);
            return rc;
        }
    }
    *events = out;
    return 0;
}

int opsc_webhook_alertmanager(const json_t *body, const opsc_webhook_opts_t *o, json_t **events,
                              char *err, size_t errlen) {
    return am_map(&am_alertmanager, body, o, events, err, errlen);
}

int opsc_webhook_grafana(const json_t *body, const opsc_webhook_opts_t *o, json_t **events,
                         char *err, size_t errlen) {
    return am_map(&am_grafana, body, o, events, err, errlen);
}

/* ==== JSON pointers (RFC 6901) =================================================================
 */

/*
 * A pointer compiled to its reference tokens, a JSON array of strings with
 * ~1 and ~0 decoded, so that each item is walked without re-parsing. 0,
 * OPSC_EPARSE (not a pointer) or OPSC_ENOMEM.
 */
static int pointer_compile(const char *ptr, json_t **out) {
    *out = NULL;
    if (!ptr || (*ptr != '\0' && *ptr != '/')) {
        return OPSC_EPARSE;
    }
    char *tok = opsc_malloc(strlen(ptr) + 1);
    json_t *toks = json_array();
    int rc = tok && toks ? 0 : OPSC_ENOMEM;
    while (rc == 0 && *ptr == '/') {
        size_t n = 0;
        for (ptr++; rc == 0 && *ptr != '\0' && *ptr != '/'; ptr++) {
            if (*ptr != '~') {
                tok[n++] = *ptr;
            } else if (ptr[1] == '0' || ptr[1] == '1') {
                tok[n++] = ptr[1] == '0' ? '~' : '/';
                ptr++;
            } else {
                rc = OPSC_EPARSE;
            }
        }
        if (rc == 0 && json_array_append_new(toks, json_stringn(tok, n)) != 0) {
            rc = OPSC_ENOMEM;
        }
    }
    opsc_free(tok);
    if (rc != 0) {
        json_decref(toks);
        return rc;
    }
    *out = toks;
    return 0;
}

/* An array index token: "0" or digits without a leading zero. */
static int array_index(const char *s, size_t *idx) {
    size_t n = strlen(s);
    if (n == 0 || n > 18 || (s[0] == '0' && n > 1) || strspn(s, "0123456789") != n) {
        return 0;
    }
    *idx = (size_t)strtoull(s, NULL, 10);
    return 1;
}

/* The value a compiled pointer designates in doc; NULL when there is none. */
static const json_t *pointer_get(const json_t *doc, const json_t *toks) {
    size_t i, idx;
    json_t *t;
    json_array_foreach(toks, i, t) {
        const char *s = json_string_value(t);
        if (json_is_object(doc)) {
            doc = json_object_get(doc, s);
        } else if (json_is_array(doc) && array_index(s, &idx)) {
            doc = json_array_get(doc, idx);
        } else {
            return NULL;
        }
        if (!doc) {
            return NULL;
        }
    }
    return doc;
}

/* ==== Generic ==================================================================================
 */

enum {
    F_SOURCE_ALERT_ID,
    F_DEVICE_IP,
    F_DEVICE_NAME,
    F_SEVERITY,
    F_CATEGORY,
    F_ALERT_TYPE,
    F_TITLE,
    F_MESSAGE,
    F_OCCURRED_AT,
    F_TAGS,
    F_CUSTOM_FIELDS,
    F_COUNT
};
static const char *const field_names[F_COUNT] = {
    "source_alert_id", "device_ip", "device_name", "severity", "category",      "alert_type",
    "title",           "message",   "occurred_at", "tags",     "custom_fields",
};

typedef struct generic_cfg_s {
    json_t *items;          /* compiled pointer; NULL: the body */
    json_t *field[F_COUNT]; /* compiled pointers; NULL: not mapped */
    json_t *clear;          /* compiled pointer; NULL: no clear rule */
    const json_t *clear_equals;
    const json_t *severity_map;
    const char *category, *source_system;
} generic_cfg_t;

static void generic_cfg_free(generic_cfg_t *g) {
    json_decref(g->items);
    json_decref(g->clear);
    for (size_t f = 0; f < F_COUNT; f++) {
        json_decref(g->field[f]);
    }
}

/* An optional member; JSON null reads as absent. */
static const json_t *opt(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* Compile the pointer in v; on a bad one, OPSC_EPARSE naming `what`. */
static int cfg_pointer(const json_t *v, json_t **out, const char *what, const char *key, char *err,
                       size_t errlen) {
    int rc = pointer_compile(json_string_value(v), out);
    if (rc == OPSC_EPARSE) {
        opsc_errbuf_printf(err, errlen, "%s%s: not a JSON pointer", what, key);
    }
    return rc;
}

static int generic_config(const json_t *c, generic_cfg_t *g, char *err, size_t errlen) {
    const json_t *v, *fields, *clear, *eq;
    const char *k;
    int rc;
    if (!json_is_object(c)) {
        opsc_errbuf_printf(err, errlen, "config: not an object");
        return OPSC_EPARSE;
    }
    if ((v = opt(c, "items")) && (rc = cfg_pointer(v, &g->items, "items", "", err, errlen)) != 0) {
        return rc;
    }
    if ((fields = opt(c, "fields")) && !json_is_object(fields)) {
        opsc_errbuf_printf(err, errlen, "fields: not an object");
        return OPSC_EPARSE;
    }
    json_object_foreach((json_t *)fields, k, v) {
        size_t f = 0;
        while (f < F_COUNT && strcmp(field_names[f], k) != 0) {
            f++;
        }
        if (f == F_COUNT) {
            opsc_errbuf_printf(err, errlen, "fields.%s: not an event field", k);
            return OPSC_EPARSE;
        }
        if ((rc = cfg_pointer(v, &g->field[f], "fields.", k, err, errlen)) != 0) {
            return rc;
        }
    }
    if ((g->severity_map = opt(c, "severity_map")) &&
        check_severity_map(g->severity_map, err, errlen) != 0) {
        return OPSC_EPARSE;
    }
    if ((v = opt(c, "category")) &&
        !(g->category = name_in(categories, COUNT(categories), json_string_value(v)))) {
        opsc_errbuf_printf(err, errlen, "category: not a category");
        return OPSC_EPARSE;
    }
    g->source_system = "webhook";
    if ((v = opt(c, "source_system")) &&
        (!json_is_string(v) || !*(g->source_system = json_string_value(v)))) {
        opsc_errbuf_printf(err, errlen, "source_system: not a non-empty string");
        return OPSC_EPARSE;
    }
    if (!(clear = opt(c, "clear"))) {
        return 0;
    }
    if (!json_is_object(clear)) {
        opsc_errbuf_printf(err, errlen, "clear: not an object");
        return OPSC_EPARSE;
    }
    if ((rc = cfg_pointer(json_object_get(clear, "pointer"), &g->clear, "clear.", "pointer", err,
                          errlen)) != 0) {
        return rc;
    }
    eq = json_object_get(clear, "equals");
    size_t i;
    json_array_foreach(eq, i, v) {
        if (!json_is_string(v)) {
            break;
        }
    }
    if (!json_is_array(eq) || json_array_size(eq) == 0 || i < json_array_size(eq)) {
        opsc_errbuf_printf(err, errlen, "clear.equals: not an array of strings");
        return OPSC_EPARSE;
    }
    g->clear_equals = eq;
    return 0;
}

/* The tags a field holds: an array (non-strings as JSON text), one string, or an object. */
static json_t *generic_tags(const json_t *v) {
    if (json_is_object(v)) {
        json_t *texts = text_object(v), *tags = texts ? tags_of_object(texts) : NULL;
        json_decref(texts);
        return tags;
    }
    json_t *tags = json_array();
    if (tags && json_is_string(v) && json_string_length(v) > 0) {
        if (json_array_append_new(tags, text_of(v)) != 0) {
            json_decref(tags);
            return NULL;
        }
    }
    size_t i;
    json_t *t;
    json_array_foreach(v, i, t) {
        if (tags && !json_is_null(t) && json_array_append_new(tags, text_of(t)) != 0) {
            json_decref(tags);
            return NULL;
        }
    }
    return tags;
}

static int generic_item(const generic_cfg_t *g, const json_t *item, json_t *events) {
    json_t *text[F_COUNT + 1] = {NULL}; /* the last one: the clear value */
    const json_t *val[F_COUNT + 1] = {NULL};
    const char *s[F_COUNT + 1] = {NULL};
    event_t e = {.source_system = g->source_system, .is_clear = -1};
    int rc = OPSC_ENOMEM;
    for (size_t f = 0; f <= F_COUNT; f++) {
        const json_t *ptr = f < F_COUNT ? g->field[f] : g->clear;
        val[f] = ptr ? pointer_get(item, ptr) : NULL;
        if (f != F_TAGS && f != F_CUSTOM_FIELDS && is_scalar(val[f])) {
            if (!(text[f] = text_of(val[f]))) {
                goto cleanup;
            }
            s[f] = json_string_value(text[f]);
        }
    }
    e.source_alert_id = s[F_SOURCE_ALERT_ID];
    e.device = s[F_DEVICE_IP];
    e.device_name = s[F_DEVICE_NAME];
    e.severity = map_severity(g->severity_map, s[F_SEVERITY]);
    e.category = name_in(categories, COUNT(categories), s[F_CATEGORY]);
    e.category = e.category ? e.category : g->category ? g->category : "application";
    e.alert_type = s[F_ALERT_TYPE];
    e.title = s[F_TITLE];
    e.message = s[F_MESSAGE];
    e.occurred_at = s[F_OCCURRED_AT];
    if (g->clear) {
        size_t i;
        json_t *want;
        e.is_clear = 0;
        json_array_foreach(g->clear_equals, i, want) {
            e.is_clear |= s[F_COUNT] && strcasecmp(s[F_COUNT], json_string_value(want)) == 0;
        }
    }
    if ((val[F_TAGS] && !(e.tags = generic_tags(val[F_TAGS]))) ||
        (json_is_object(val[F_CUSTOM_FIELDS]) &&
         !(e.custom_fields = json_deep_copy(val[F_CUSTOM_FIELDS]))) ||
        !(e.raw_data = json_deep_copy(item))) {
        goto cleanup;
    }
    rc = event_build(&e, events);
cleanup:
    event_free(&e);
    for (size_t f = 0; f <= F_COUNT; f++) {
        json_decref(text[f]);
    }
    return rc;
}

int opsc_webhook_generic(const json_t *body, const json_t *connector_config, json_t **events,
                         char *err, size_t errlen) {
    generic_cfg_t g = {0};
    const json_t *items = body;
    json_t *out = NULL;
    int rc;
    *events = NULL;
    if ((rc = generic_config(connector_config, &g, err, errlen)) != 0) {
        goto cleanup;
    }
    rc = OPSC_EPARSE;
    if (g.items && !json_is_array(items = pointer_get(body, g.items))) {
        opsc_errbuf_printf(err, errlen, "items: %s is not an array",
                           json_string_value(json_object_get(connector_config, "items")));
        goto cleanup;
    }
    if (!json_is_array(items) && !json_is_object(items)) {
        opsc_errbuf_printf(err, errlen, "body: not an object or an array");
        goto cleanup;
    }
    if (!(out = json_array())) {
        rc = OPSC_ENOMEM;
        goto cleanup;
    }
    if (json_is_object(items)) {
        rc = generic_item(&g, items, out);
        goto cleanup;
    }
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item) {
        if (!json_is_object(item)) {
            opsc_errbuf_printf(err, errlen, "items[%zu]: not an object", i);
            rc = OPSC_EPARSE;
            goto cleanup;
        }
        if ((rc = generic_item(&g, item, out)) != 0) {
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    if (rc != 0) {
        json_decref(out);
        out = NULL;
    }
    *events = out;
    generic_cfg_free(&g);
    return rc;
}

/* ==== Signatures ===============================================================================
 */

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int opsc_webhook_hmac_ok(const char *secret, const void *body, size_t len, const char *header) {
    unsigned char want[32], got[32];
    if (!secret || !*secret || !header || (!body && len > 0)) {
        return 0;
    }
    header += strspn(header, " \t");
    if (strncasecmp(header, "sha256=", 7) == 0) {
        header += 7;
    }
    size_t n = strlen(header);
    while (n > 0 && (header[n - 1] == ' ' || header[n - 1] == '\t')) {
        n--;
    }
    if (n != 2 * sizeof(want)) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(want); i++) {
        int hi = hex_digit(header[2 * i]), lo = hex_digit(header[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return 0;
        }
        want[i] = (unsigned char)(hi << 4 | lo);
    }
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    if (mbedtls_md_hmac(md, (const unsigned char *)secret, strlen(secret),
                        body ? (const unsigned char *)body : (const unsigned char *)"", len,
                        got) != 0) {
        return 0;
    }
    int ok = opsc_auth_equal(got, sizeof(got), want, sizeof(want));
    memset(got, 0, sizeof(got));
    return ok;
}
