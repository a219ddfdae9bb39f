#ifndef OPSC_EVENT_H
#define OPSC_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "opsc/alert.h"

/*
 * Normalized events: the body of POST /api/v1/events, and what every webhook
 * mapper (opsc/webhook.h) produces. One event is a JSON object:
 *
 *   source_system    string <= 50, default "api"
 *   source_alert_id  string <= 255, default the alert_type: the sender's id
 *                    of the condition (not of one notification of it)
 *   device_ip        IPv4 or IPv6 address   } at least one of the two
 *   device_name      string <= 255          }
 *   severity         critical|major|minor|warning|info|clear   (required)
 *   category         network|power|...|unknown, default "unknown"
 *   alert_type       string <= 100          (required)
 *   title            string <= 255          (required, not blank)
 *   message          string
 *   occurred_at      RFC 3339, default the time it was received
 *   is_clear         boolean, default false: resolves the active alert of the
 *                    same fingerprint and opens nothing
 *   impact, urgency  high|medium|low, default derived (ITIL, see the pipeline)
 *   tags             array of strings (<= 64 of <= 100 bytes)
 *   custom_fields    object
 *   raw_data         object
 *   fingerprint      string <= 64: the sender's own dedup key; default the
 *                    SHA-256 of source_system, source_alert_id, device
 *                    (device_ip, else device_name) and alert_type
 *
 * Unknown keys are refused (a typo must not silently drop a field).
 */

/**
 * Validate `ev` (item `index` of the request; SIZE_MAX: a single event, no
 * index in the errors) into a new alert (status active, a new UUID,
 * received_at = now_us). 0 and *out, or OPSC_EPARSE with one error object
 * per problem appended to `errors`: {"index": i, "field": "...", "message":
 * "..."}; OPSC_ENOMEM.
 */
int opsc_event_from_json(const json_t *ev, size_t index, int64_t now_us, opsc_alert_t **out,
                         json_t *errors);

#endif
