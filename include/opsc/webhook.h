#ifndef OPSC_WEBHOOK_H
#define OPSC_WEBHOOK_H

#include <stddef.h>

#include <jansson.h>

/*
 * Webhook payload mappers (src/sources/webhook/webhook.c): a payload that a
 * monitoring system POSTs becomes an array of *normalized events*, JSON
 * objects in the form of the `POST /api/v1/events` body, which the events
 * API validates and ingests. Keys, each present only when there is a value
 * (never JSON null):
 *   source_system, source_alert_id, device_ip (an IPv4/IPv6 address only),
 *   device_name, severity (critical|major|minor|warning|info|clear), category
 *   (network|power|video|wireless|security|environment|compute|storage|
 *   application|unknown), alert_type, title, message, occurred_at (copied
 *   from the payload), is_clear (bool), tags (array of strings),
 *   custom_fields (object), raw_data (object).
 * Empty strings count as no value.
 *
 * Everything here is pure computation: no I/O, no globals, safe on any
 * thread. The input is never modified or kept; every event is a new value
 * (raw_data is a deep copy). The mappers are fed by a fuzzer
 * (tests/fuzz/fuzz_webhook.c): any JSON value is either mapped or refused.
 */

/*
 * Severity map: label value (case-insensitive) -> our severity name. A JSON
 * object {"critical":"critical","error":"major","warning":"warning", ...};
 * every value must be one of our severities. The default map (used when the
 * object is NULL) is: critical->critical, high->major, error->major,
 * major->major, warning->warning, warn->warning, minor->minor,
 * medium->minor, low->info, info->info, none->info, page->critical. An
 * unmapped or missing value -> "warning".
 */
typedef struct opsc_webhook_opts_s {
    const json_t *severity_map;   /* NULL: the default map above */
    const char *default_category; /* NULL: "application"; else one of our categories */
} opsc_webhook_opts_t;

/**
 * Prometheus Alertmanager webhook (version 4): one event per element of
 * body.alerts. `o` may be NULL (defaults).
 *
 * Per alert: source_system "alertmanager"; source_alert_id = fingerprint, or
 * when it has none the hex SHA-256 of the sorted labels as "k=v\n" (the same
 * for the firing and the resolved notification of one alert); alert_type =
 * labels.alertname ("alertmanager_alert"); severity = the map applied to
 * labels.severity; is_clear = status is "resolved" (the severity stays the
 * mapped one); labels.instance without its port ("10.0.0.5:9100",
 * "[2001:db8::1]:9100", a URL's host) goes to device_ip when it is an IP
 * address, else to device_name; without an instance device_name is
 * labels.host, .node or .hostname, else labels.job, else "alertmanager";
 * title = annotations.summary, .title, else alertname (" on <instance>");
 * message = annotations.description, else .message; occurred_at = startsAt
 * (omitted when it is Go's zero time); category = labels.category when it is
 * one of ours, else o->default_category; tags = every label as
 * "name=value", sorted by name; custom_fields = {labels, annotations,
 * generatorURL, receiver, endsAt (resolved only)}; raw_data = the alert.
 * Label and annotation values that are not strings are written as JSON text.
 * An alert's status may be absent when the payload's own status is valid.
 *
 * Returns 0 and sets *events to a new array (possibly empty; the caller
 * owns it), or sets *events to NULL and returns OPSC_EPARSE with the JSON
 * path of the problem in err ("alerts: missing or not an array",
 * "alerts[3].labels: not an object", "alerts[0].status: not firing or
 * resolved", "severity_map.x: not a severity" for a bad `o`), or
 * OPSC_ENOMEM.
 */
int opsc_webhook_alertmanager(const json_t *body, const opsc_webhook_opts_t *o, json_t **events,
                              char *err, size_t errlen);

/**
 * Grafana unified alerting's webhook contact point: the Alertmanager shape,
 * mapped the same way with source_system "grafana", alert_type default
 * "grafana_alert", device fallback labels.job else "grafana"
 * (grafana_folder is never a device), and custom_fields adding
 * dashboardURL, panelURL, silenceURL and valueString when they are
 * non-empty strings. Results and errors as opsc_webhook_alertmanager().
 */
int opsc_webhook_grafana(const json_t *body, const opsc_webhook_opts_t *o, json_t **events,
                         char *err, size_t errlen);

/**
 * Any other JSON webhook, mapped by the connector's configuration
 * (connectors.config of a connector with type "webhook"):
 *
 *   {"items": "/alerts",            optional JSON pointer to an array of
 *                                   items; absent: the body is one item, or
 *                                   an array of items when it is an array
 *    "fields": {"title": "/labels/summary", ...},
 *                                   event key -> JSON pointer into the item;
 *                                   keys: source_alert_id, device_ip,
 *                                   device_name, severity, category,
 *                                   alert_type, title, message, occurred_at,
 *                                   tags, custom_fields
 *    "severity_map": {...},         optional, as opsc_webhook_opts_t's
 *    "category": "network",         optional, used when the item has no
 *                                   category of ours; else "application"
 *    "source_system": "mysystem",   optional, default "webhook"
 *    "clear": {"pointer": "/status", "equals": ["resolved", "ok"]}}
 *                                   optional: is_clear (then always written)
 *                                   when the value there equals one of the
 *                                   strings, case-insensitively
 *
 * Pointers follow RFC 6901 ("" is the item itself; ~0 and ~1 escapes; array
 * indices). Other top-level keys are ignored (they belong to the HTTP side).
 * A value that is a number or bool is written as its JSON text; a missing or
 * null one is omitted (the events validator judges required keys); severity
 * goes through the map and is "warning" when unmapped or missing; device_ip
 * takes a value only when it is an IP address, else the value becomes
 * device_name (unless that has a field of its own); tags takes an array
 * (non-strings as JSON text), a string, or an object ("name=value", sorted);
 * custom_fields takes an object. raw_data = the item.
 *
 * A wrong configuration gives OPSC_EPARSE naming the key ("fields.colour:
 * not an event field", "clear.equals: not an array of strings"); a payload
 * whose items pointer does not lead to an array, or whose items are not
 * objects, OPSC_EPARSE naming that ("items: /alerts is not an array",
 * "items[2]: not an object"). Otherwise as opsc_webhook_alertmanager().
 */
int opsc_webhook_generic(const json_t *body, const json_t *connector_config, json_t **events,
                         char *err, size_t errlen);

/**
 * HMAC-SHA-256 of the `len` bytes of body keyed with secret, compared in
 * constant time against a signature header value: "sha256=<64 hex>" or the
 * bare hex, either case, surrounding blanks ignored. 1 when it matches; 0
 * when not, when the header is malformed, or when secret is NULL or empty
 * (an unset secret never authenticates anyone).
 */
int opsc_webhook_hmac_ok(const char *secret, const void *body, size_t len, const char *header);

#endif
