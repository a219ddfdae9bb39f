#ifndef OPSC_CHANGE_H
#define OPSC_CHANGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "opsc/alert.h"

/*
 * A change decided by the pipeline thread, carried to the loop thread
 * through the change ring (as a pointer: the record is heap-allocated on the
 * pipeline thread and freed on the loop thread by whoever consumes it last).
 * The store writes it; the live feed (later) broadcasts it.
 *
 * Every change is idempotent when replayed: a CREATE carries the alert's
 * process-generated UUID, a REPEAT carries the absolute occurrence count.
 */

typedef enum {
    OPSC_CHANGE_CREATE = 0, /* new alert row (alert: full row) */
    OPSC_CHANGE_REPEAT,     /* occurrence_count / last_occurrence_at of `id` */
    OPSC_CHANGE_STATUS,     /* status transition of `id` (resolve, suppress, reopen...) */
    OPSC_CHANGE_REPLY,      /* a datagram to send once everything before it is durable */
} opsc_change_kind_t;

typedef struct opsc_change_s {
    struct opsc_change_s *next; /* free for the consumer's own lists */
    opsc_change_kind_t kind;
    opsc_uuid_t id;
    opsc_alert_t *alert; /* CREATE: owned */

    /* REPEAT */
    uint32_t occurrence_count;
    int64_t last_occurrence_at_us;

    /* STATUS */
    opsc_status_t old_status;
    opsc_status_t new_status;
    int64_t at_us;           /* resolved_at / acknowledged_at ... */
    char actor[64];          /* "system", "auto-clear", a user */
    char rule[64];           /* correlation_rule, "" = unchanged */
    char action[32];         /* alert_history.action: resolved, suppressed, reopened, ... */
    opsc_uuid_t correlated_to_id;
    int has_correlated_to;

    /* REPLY */
    unsigned char *reply; /* owned */
    size_t reply_len;
    struct sockaddr_storage reply_to;
    int listener; /* index of the UDP socket to send from */
} opsc_change_t;

opsc_change_t *opsc_change_new(opsc_change_kind_t kind);
void opsc_change_free(opsc_change_t *c);

#endif
