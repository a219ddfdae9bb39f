/*
 * libFuzzer target: the webhook mappers (src/sources/webhook/webhook.c). The
 * input is JSON text; a value that parses goes through Alertmanager (default
 * and custom severity map), Grafana, and the generic mapper with two fixed
 * configurations that between them use every feature (items pointer or
 * not, every field, escapes, indices, a severity map, a static category, a
 * clear rule). The raw input also goes through the HMAC check. Besides
 * memory safety it checks the contract: 0 with an array of events holding
 * only event keys with values of the right type, never null; or
 * OPSC_EPARSE with a message and no array. Out of memory fails too: nothing
 * here should run short of it, so it would mean a misread result.
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "opsc/error.h"
#include "opsc/event.h"
#include "opsc/webhook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char generic_config[] =
    "{\"items\":\"/events\",\"source_system\":\"fuzz\",\"category\":\"network\","
    "\"fields\":{\"source_alert_id\":\"/id\",\"device_ip\":\"/host/ip\",\"device_name\":"
    "\"/host/name\",\"severity\":\"/sev\",\"category\":\"/cat\",\"alert_type\":\"/type\","
    "\"title\":\"/t~1x\",\"message\":\"/msgs/0\",\"occurred_at\":\"/a~0t\",\"tags\":\"/tags\","
    "\"custom_fields\":\"/extra\"},"
    "\"severity_map\":{\"p1\":\"critical\",\"p2\":\"major\",\"p3\":\"minor\",\"ok\":\"clear\"},"
    "\"clear\":{\"pointer\":\"/status\",\"equals\":[\"resolved\",\"OK\"]}}";

static const char *const severities[] = {"critical", "major", "minor", "warning", "info", "clear"};
static const char *const categories[] = {"network",     "power",       "video",   "wireless",
                                         "security",    "environment", "compute", "storage",
                                         "application", "unknown"};

static int one_of(const char *const *names, size_t n, const char *s) {
    for (size_t i = 0; s && i < n; i++) {
        if (strcmp(names[i], s) == 0) {
            return 1;
        }
    }
    return 0;
}

static void check_event(const json_t *ev) {
    static const char *const strings[] = {"source_system", "source_alert_id", "device_name",
                                          "alert_type",    "title",           "message",
                                          "occurred_at"};
    const char *k;
    json_t *v;
    if (!json_is_object(ev)) {
        abort();
    }
    json_object_foreach((json_t *)ev, k, v) {
        if (one_of(strings, sizeof(strings) / sizeof(strings[0]), k)) {
            if (!json_is_string(v) || json_string_length(v) == 0) {
                abort();
            }
        } else if (strcmp(k, "device_ip") == 0) {
            unsigned char a[16];
            const char *s = json_string_value(v);
            if (!s || (inet_pton(AF_INET, s, a) != 1 && inet_pton(AF_INET6, s, a) != 1)) {
                abort();
            }
        } else if (strcmp(k, "severity") == 0) {
            if (!one_of(severities, 6, json_string_value(v))) {
                abort();
            }
        } else if (strcmp(k, "category") == 0) {
            if (!one_of(categories, 10, json_string_value(v))) {
                abort();
            }
        } else if (strcmp(k, "is_clear") == 0) {
            if (!json_is_boolean(v)) {
                abort();
            }
        } else if (strcmp(k, "tags") == 0) {
            size_t i;
            json_t *t;
            if (!json_is_array(v)) {
                abort();
            }
            json_array_foreach(v, i, t) {
                if (!json_is_string(t)) {
                    abort();
                }
            }
        } else if (strcmp(k, "custom_fields") != 0 && strcmp(k, "raw_data") != 0) {
            abort();
        } else if (!json_is_object(v)) {
            abort();
        }
    }
    if (!json_object_get(ev, "source_system") || !json_object_get(ev, "severity") ||
        !json_object_get(ev, "category") || !json_object_get(ev, "raw_data")) {
        abort();
    }
}

/*
 * The events validator (POST /events and every webhook end there): an alert,
 * or at least one error naming a field, never both, never neither.
 */
static void validate(const json_t *ev) {
    json_t *errors = json_array();
    opsc_alert_t *a = NULL;
    int rc = opsc_event_from_json(ev, 0, 1700000000000000, &a, errors);
    if (!errors || (rc == 0) != (a != NULL) || (rc == 0) != (json_array_size(errors) == 0) ||
        (rc != 0 && rc != OPSC_EPARSE && rc != OPSC_ENOMEM)) {
        abort();
    }
    if (a && (!a->title || !a->alert_type || !a->source_system || !a->source_alert_id ||
              (!a->device_ip && !a->device_name) || strlen(a->fingerprint) == 0)) {
        abort();
    }
    opsc_alert_free(a);
    json_decref(errors);
}

static void check(int rc, json_t *events, const char *err) {
    size_t i;
    json_t *ev;
    if (rc == OPSC_EPARSE && !events && err[0] != '\0') {
        return;
    }
    if (rc != 0 || !json_is_array(events)) {
        abort();
    }
    json_array_foreach(events, i, ev) {
        check_event(ev);
        validate(ev);
    }
    json_decref(events);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_t *body = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    json_t *config = json_loads(generic_config, 0, NULL);
    json_t *map = json_pack("{ssssss}", "P1", "critical", "warn", "minor", "ok", "clear");
    json_t *events;
    char err[128];
    if (!config || !map) {
        abort();
    }
    if (body) {
        opsc_webhook_opts_t o = {.severity_map = map, .default_category = "storage"};
        err[0] = '\0';
        check(opsc_webhook_alertmanager(body, NULL, &events, err, sizeof(err)), events, err);
        err[0] = '\0';
        check(opsc_webhook_alertmanager(body, &o, &events, err, sizeof(err)), events, err);
        err[0] = '\0';
        check(opsc_webhook_grafana(body, NULL, &events, err, sizeof(err)), events, err);
        err[0] = '\0';
        check(opsc_webhook_generic(body, config, &events, err, sizeof(err)), events, err);
        json_object_del(config, "items"); /* the body itself: one item, or an array of them */
        err[0] = '\0';
        check(opsc_webhook_generic(body, config, &events, err, sizeof(err)), events, err);
        /* The body as a POST /events item itself, or each item of an array. */
        if (json_is_array(body)) {
            size_t i;
            json_t *ev;
            json_array_foreach(body, i, ev) {
                validate(ev);
            }
        } else {
            validate(body);
        }
    }
    char header[80];
    size_t hl = size < sizeof(header) - 1 ? size : sizeof(header) - 1;
    memcpy(header, data, hl);
    header[hl] = '\0';
    (void)opsc_webhook_hmac_ok("fuzz-secret", data, size, header);
    json_decref(map);
    json_decref(config);
    json_decref(body);
    return 0;
}
