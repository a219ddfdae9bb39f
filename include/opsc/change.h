#ifndef OPSC_CHANGE_H
#define OPSC_CHANGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "opsc/alert.h"
#include "opsc/buf.h"

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
    OPSC_CHANGE_REPLY,      /* a datagram to send (or, reply NULL, an ack_token to hand back)
                               once everything before it is durable */
    OPSC_CHANGE_UPDATE,     /* fields of `id` changed in place (upd: which, and to what) */
} opsc_change_kind_t;

/* Fields an UPDATE changes (opsc_alert_update_t.mask). */
enum {
    OPSC_UPD_TAGS = 1u << 0,          /* tags_add / tags_del applied to the row's tags */
    OPSC_UPD_CUSTOM_FIELDS = 1u << 1, /* custom_patch merged into custom_fields */
    OPSC_UPD_IMPACT = 1u << 2,
    OPSC_UPD_URGENCY = 1u << 3,
    OPSC_UPD_PRIORITY = 1u << 4,
    OPSC_UPD_DEVICE_NAME = 1u << 5,
    OPSC_UPD_TITLE = 1u << 6,
    OPSC_UPD_SEVERITY = 1u << 7,
    OPSC_UPD_ALL = (1u << 8) - 1,
};

/*
 * What an UPDATE changes. Only the fields named in `mask` count; `old_mask`
 * says which old values are known (they go into the history row's
 * `changes`, nothing else reads them).
 *
 * Tags and custom_fields are patches, not whole values, because the producer
 * (the pipeline) does not keep an alert's tags or custom fields in memory:
 * tags_add are added (kept unique, existing order first), tags_del removed;
 * custom_patch is a JSON object whose top-level keys replace those of
 * custom_fields, a null value deleting the key (RFC 7386 at depth one).
 * Both are idempotent, so a replayed UPDATE changes nothing more.
 */
typedef struct opsc_alert_update_s {
    uint32_t mask;
    uint32_t old_mask;
    char **tags_add; /* owned */
    size_t ntags_add;
    char **tags_del; /* owned */
    size_t ntags_del;
    char *custom_patch; /* owned JSON object text */
    opsc_level_t impact, old_impact;
    opsc_level_t urgency, old_urgency;
    int priority, old_priority;          /* 1..5, 0 = NULL */
    char *device_name, *old_device_name; /* owned, NULL = NULL */
    char *title, *old_title;             /* owned */
    opsc_severity_t severity, old_severity;
} opsc_alert_update_t;

/*
 * Alert actions of people (POST /alerts/{id}/acknowledge ..., /alerts/bulk):
 * built on the loop thread with the alerts as read from the database, decided
 * by the pipeline (which owns the state), and carried back in a REPLY change
 * (ack_token, actions) with each item's outcome once it is durable.
 */
typedef enum {
    OPSC_ACT_ACKNOWLEDGE = 0,
    OPSC_ACT_UNACKNOWLEDGE,
    OPSC_ACT_RESOLVE,
    OPSC_ACT_SUPPRESS,
    OPSC_ACT_REOPEN,
    OPSC_ACT_COUNT
} opsc_action_kind_t;

typedef struct opsc_action_item_s {
    opsc_alert_t *row;           /* the alert as the database had it (owned) */
    int done;                    /* pipeline: 1 applied, 0 refused (409: `why`) */
    opsc_status_t before, after; /* pipeline: the status it found, and left */
    char why[160];
} opsc_action_item_t;

typedef struct opsc_action_batch_s {
    opsc_action_kind_t kind;
    char actor[64];
    char *notes;           /* owned; NULL = none */
    int64_t expires_in_us; /* acknowledge: back to active after this long; 0 = never */
    size_t n;
    opsc_action_item_t *items; /* owned */
} opsc_action_batch_t;

const char *opsc_action_name(opsc_action_kind_t k); /* "acknowledge", ... */
int opsc_action_parse(const char *s, opsc_action_kind_t *out);
void opsc_action_batch_free(opsc_action_batch_t *b);

typedef struct opsc_change_s {
    struct opsc_change_s *next; /* free for the consumer's own lists */
    opsc_change_kind_t kind;
    opsc_uuid_t id;
    opsc_alert_t *alert; /* CREATE: owned */
    /*
     * CREATE of a device without a name: the title again with OPSC_NAME_MARK
     * where the name goes, for reverse DNS to fill in (src/sinks/namefill.c);
     * owned, NULL otherwise. Consumed before the store sees the change.
     */
    char *title_for_name;

    /* REPEAT */
    uint32_t occurrence_count;
    int64_t last_occurrence_at_us;

    /* STATUS */
    opsc_status_t old_status;
    opsc_status_t new_status;
    int64_t at_us;   /* resolved_at / acknowledged_at ... */
    char actor[64];  /* "system", "auto-clear", a user */
    char rule[64];   /* correlation_rule, "" = unchanged */
    char action[32]; /* alert_history.action: resolved, suppressed, reopened, ... */
    char *notes;     /* alert_history.notes (owned; NULL = none) */
    opsc_uuid_t correlated_to_id;
    int has_correlated_to;

    /* REPLY */
    unsigned char *reply; /* owned */
    size_t reply_len;
    struct sockaddr_storage reply_to;
    int listener;                 /* index of the UDP socket to send from */
    uint64_t ack_token;           /* reply NULL: the events (HTTP) this acknowledges as durable */
    opsc_action_batch_t *actions; /* ...or the alert actions, decided (owned) */

    /* UPDATE (at_us: when; actor: who, "" = system) */
    opsc_alert_update_t *upd; /* owned */
} opsc_change_t;

/** A zeroed change; an UPDATE also gets an empty `upd`. NULL when out of memory. */
opsc_change_t *opsc_change_new(opsc_change_kind_t kind);
void opsc_change_free(opsc_change_t *c);

void opsc_alert_update_free(opsc_alert_update_t *u);
/** Add `tag` to tags_add (and drop it from tags_del), or the reverse. 0 or OPSC_ENOMEM. */
int opsc_alert_update_tag(opsc_alert_update_t *u, const char *tag, int add);
/**
 * Merge the JSON object text `patch` into u->custom_patch (its keys win).
 * 0, OPSC_EPARSE when `patch` is not a JSON object, or OPSC_ENOMEM.
 */
int opsc_alert_update_custom(opsc_alert_update_t *u, const char *patch);
/**
 * Fold `later` into `u` (the same alert; `later` happened after `u`): per
 * field the later value wins, the earliest known old value stays. 0 or
 * OPSC_ENOMEM.
 */
int opsc_alert_update_merge(opsc_alert_update_t *u, const opsc_alert_update_t *later);
/**
 * Apply `u` to the alert row `a` (a CREATE folded with its UPDATEs). 0,
 * or OPSC_ENOMEM (a may then be partly updated, still consistent).
 */
int opsc_alert_update_apply(const opsc_alert_update_t *u, opsc_alert_t *a);

/*
 * Binary form of an UPDATE's payload, for the spool journal's change codec:
 * the same conventions (little-endian fixed widths, strings as a u32 length
 * with 0xffffffff = NULL, enums as one byte). The field order is the format.
 */
/** Append `u` to b. 0, OPSC_ENOMEM or OPSC_ETOOBIG (b then holds a partial record). */
int opsc_alert_update_encode(opsc_buf_t *b, const opsc_alert_update_t *u);
/**
 * Read one encoded update from the first `len` bytes of data into `u` (zeroed
 * first; free with opsc_alert_update_free on success). *used gets the bytes
 * read. 0, OPSC_EPARSE (damaged: nothing to free) or OPSC_ENOMEM.
 */
int opsc_alert_update_decode(const void *data, size_t len, size_t *used, opsc_alert_update_t **out);

#endif
