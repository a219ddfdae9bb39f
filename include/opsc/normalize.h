#ifndef OPSC_NORMALIZE_H
#define OPSC_NORMALIZE_H

#include <stddef.h>
#include <stdint.h>

#include "opsc/alert.h"
#include "opsc/trap.h"

/*
 * Trap normalization: a decoded trap (opsc_trap_t) becomes an alert of the
 * seed's model (opsc_alert_t). Three parts, one header:
 *
 *   - the built-in MIB name table (src/pipeline/mibnames.c): the standard
 *     names operators meet every day, so that names and templates work on a
 *     machine without MIB files;
 *   - the compiled oid_mappings snapshot (src/pipeline/oidmap.c);
 *   - the normalizer (src/pipeline/normalize.c), in two phases so that a
 *     storm never pays for formatting: opsc_normalize_key() finds the
 *     mapping, the device and the fingerprint, and nothing else;
 *     opsc_normalize_full() builds the whole alert, for the first occurrence
 *     of a fingerprint only.
 *
 * Everything here is pure computation: no I/O, no locks, no event loop. A
 * normalizer is an immutable snapshot: built on any thread, then read by one
 * or many threads without synchronization.
 */

/* ==== Built-in MIB names ===================================================================== */

/** Longest OID we accept anywhere (RFC 2578 §3.5: at most 128 sub-identifiers). */
#define OPSC_OID_MAX 128

typedef enum {
    OPSC_MIB_NODE = 0,     /* a subtree (mib-2, enterprises, snmpTraps) */
    OPSC_MIB_SCALAR,       /* a scalar object; its instance is .0 */
    OPSC_MIB_COLUMN,       /* a table column; the suffix is the row index */
    OPSC_MIB_NOTIFICATION, /* a NOTIFICATION-TYPE (or v1 TRAP-TYPE) */
    OPSC_MIB_IDENTITY      /* an OBJECT-IDENTITY used as a value (well-known alarms) */
} opsc_mib_kind_t;

typedef struct opsc_mib_enum_s {
    int32_t value;
    const char *label; /* NULL terminates a list */
} opsc_mib_enum_t;

typedef struct opsc_mib_name_s {
    const char *module; /* "IF-MIB" */
    const char *name;   /* "ifIndex" */
    opsc_mib_kind_t kind;
    const opsc_mib_enum_t *enums; /* named INTEGER values, NULL if none */
    uint32_t oid_len;
    uint32_t oid[16];
} opsc_mib_name_t;

/**
 * The longest table entry whose OID is a prefix of (or equal to) `oid`; NULL
 * when none is. The instance suffix is oid[ret->oid_len .. len). Binary
 * search over a static table: no allocation, safe from any thread.
 *
 * The table is built in; extending it at run time from MIB files parsed
 * elsewhere (net-snmp's loader, issue 3 item 5) is not implemented yet: it
 * would add a second, snapshot-owned table consulted after this one.
 */
const opsc_mib_name_t *opsc_mibnames_lookup(const uint32_t *oid, uint32_t len);

/**
 * "IF-MIB::ifIndex.3": the longest match plus the numeric instance suffix, or
 * the numeric OID when no entry matches. Writes at most outlen-1 bytes and a
 * NUL; returns the length written.
 */
size_t opsc_mibnames_format(const uint32_t *oid, uint32_t len, char *out, size_t outlen);

/** By name, "ifIndex" or "IF-MIB::ifIndex" (case-sensitive, as in MIBs); NULL if unknown. */
const opsc_mib_name_t *opsc_mibnames_find(const char *name);

/** The label of an enumerated INTEGER value ("down" for ifOperStatus 2), or NULL. */
const char *opsc_mibnames_enum_label(const opsc_mib_name_t *e, int64_t value);

/** Table size and entries in OID order (tests, diagnostics). */
size_t opsc_mibnames_count(void);
const opsc_mib_name_t *opsc_mibnames_at(size_t i);

/* ==== OID mappings ========================================================================== */

/**
 * One row of the oid_mappings table as the store reads it (strings may be
 * NULL where the column may be NULL). Only the row set handed to
 * opsc_oidmap_create() / opsc_normalizer_create() needs to live during that
 * call: everything is copied.
 */
typedef struct opsc_oid_mapping_s {
    const char *id;          /* UUID text, used in error messages; NULL allowed */
    const char *oid_pattern; /* "1.3.6.1.6.3.1.1.5.3" or "1.3.6.1.4.1.6141.*" */
    const char *vendor;      /* NULL = generic */
    const char *alert_type;
    const char *category;         /* the seed's CHECK values */
    const char *default_severity; /* the seed's CHECK values */
    const char *title_template;   /* NULL = "{trap_name} - {device_name}" */
    const char *description;      /* becomes the alert's message */
    int is_clear_event;
    const char *clear_oid_pattern; /* the trap that clears this one; NULL/"" = none */
    const char *mib_name;
    const char *mib_object;
    const char *notes;
    /*
     * Not a column (yet): what tells two alerts of this type on one device
     * apart. NULL or "" = the default (instance index of the trap's first
     * table-column varbind); "none" = one alert per device and type; else a
     * varbind by MIB name or numeric OID ("ifDescr", "1.3.6.1.2.1.2.2.1.2")
     * whose VALUE is the discriminator (the default applies when the trap
     * lacks that varbind).
     */
    const char *discriminator;
} opsc_oid_mapping_t;

/** A compiled OID pattern. */
typedef struct opsc_oid_pattern_s {
    const uint32_t *oid; /* owned by whoever compiled it */
    uint32_t len;        /* 0 = no pattern */
    int wildcard;        /* written "prefix.*": matches OIDs strictly under the prefix */
} opsc_oid_pattern_t;

typedef enum {
    OPSC_DISC_INDEX = 0, /* default: first table-column varbind's instance index */
    OPSC_DISC_NONE,      /* "none": always "" */
    OPSC_DISC_VARBIND    /* the value of a named varbind */
} opsc_disc_kind_t;

/** A validated, compiled oid_mappings row. */
typedef struct opsc_oid_rule_s {
    opsc_oid_mapping_t row; /* deep copy, owned by the map */
    size_t index;           /* position in the rows given to create */
    opsc_oid_pattern_t pattern;
    opsc_oid_pattern_t clear; /* len 0 = no clear_oid_pattern */
    opsc_severity_t severity;
    opsc_category_t category;
    int is_clear; /* is_clear_event, or default_severity 'clear' */
    opsc_disc_kind_t disc;
    opsc_oid_pattern_t disc_oid; /* OPSC_DISC_VARBIND: the object (matches itself or under) */
} opsc_oid_rule_t;

typedef struct opsc_oidmap_s opsc_oidmap_t;

/**
 * Parse a pattern: dotted decimal (leading dot allowed), optionally ending
 * in ".*"; at least one sub-identifier, each 0..4294967295, at most `max`.
 * Returns the number of sub-identifiers written to `oid`, or OPSC_EPARSE
 * with a static reason in *why (when why is not NULL).
 */
int opsc_oidmap_pattern_parse(const char *s, uint32_t *oid, uint32_t max, int *wildcard,
                              const char **why);

/** 1 when `oid` matches the pattern: equal to an exact one, strictly under a wildcard one. */
int opsc_oidmap_pattern_match(const opsc_oid_pattern_t *p, const uint32_t *oid, uint32_t len);

/**
 * Validate and compile rows (copied). NULL on error with a message naming the
 * row ("oid_mappings row 3 (id ..., oid_pattern '1.3..6'): ...") in err, or
 * on OOM. Rejected: malformed oid_pattern / clear_oid_pattern, empty
 * alert_type, category or severity outside the seed's values, a discriminator
 * naming an unknown object, two rows with the same pattern and vendor.
 */
opsc_oidmap_t *opsc_oidmap_create(const opsc_oid_mapping_t *rows, size_t n, char *err,
                                  size_t errlen);
void opsc_oidmap_destroy(opsc_oidmap_t *m);

size_t opsc_oidmap_count(const opsc_oidmap_t *m);
/** Rule i, in the order of the rows given to create. */
const opsc_oid_rule_t *opsc_oidmap_rule(const opsc_oidmap_t *m, size_t i);

/**
 * The rule for a trap OID, or NULL. Precedence: an exact pattern beats any
 * wildcard; among wildcards the longest prefix wins; among rows with the same
 * pattern, a row whose vendor equals `device_vendor` (case-insensitively)
 * wins, then — when the device's vendor is unknown (NULL) — a vendor row
 * beats the generic one (several vendor rows: the first by vendor name); when
 * the device's vendor is known and matches none of them, the generic row wins
 * if there is one. O(1) hash probes for the exact pattern plus one per
 * distinct wildcard length; no allocation.
 */
const opsc_oid_rule_t *opsc_oidmap_match(const opsc_oidmap_t *m, const uint32_t *oid, uint32_t len,
                                         const char *device_vendor);

/**
 * The distinct alert_types of every rule whose clear_oid_pattern matches
 * `oid` (all matching patterns, not only the longest). Writes at most `max`
 * pointers (owned by the map) and returns how many it wrote.
 */
size_t opsc_oidmap_clear_types(const opsc_oidmap_t *m, const uint32_t *oid, uint32_t len,
                               const char **types, size_t max);

/* ==== Normalizer ============================================================================ */

/** One row of the devices snapshot (copied by opsc_normalizer_create). */
typedef struct opsc_device_ref_s {
    const char *ip;     /* "10.0.0.1", "2001:db8::1"; a NetBox-style "/24" suffix is ignored */
    const char *name;   /* NOT NULL in the table */
    const char *site;   /* NULL allowed */
    const char *vendor; /* oid_mappings.vendor spelling ("cisco"); NULL = unknown */
} opsc_device_ref_t;

typedef struct opsc_normalizer_s opsc_normalizer_t;

#define OPSC_NORMALIZE_SOURCE "snmp"
#define OPSC_UNKNOWN_TRAP_TYPE "unknown_trap"
#define OPSC_DEVICE_IP_MAX 46 /* INET6_ADDRSTRLEN */
#define OPSC_DISCRIMINATOR_MAX 256
#define OPSC_FINGERPRINT_HEX 65

/**
 * The cheap half of normalization: everything dedup needs, in fixed buffers.
 * Pointers point into the normalizer that filled the key and stay valid as
 * long as it lives (not across a snapshot swap: keep strings, not pointers).
 */
typedef struct opsc_trap_key_s {
    const opsc_oid_rule_t *rule;     /* the matched mapping; NULL = unknown trap */
    const opsc_device_ref_t *device; /* devices snapshot row; NULL = not in it */
    const char *alert_type;          /* rule's, or OPSC_UNKNOWN_TRAP_TYPE */
    int is_clear;                    /* rule->is_clear */
    char device_ip[OPSC_DEVICE_IP_MAX];
    char discriminator[OPSC_DISCRIMINATOR_MAX]; /* "" when none */
    char fingerprint[OPSC_FINGERPRINT_HEX];     /* lowercase hex SHA-256 */
} opsc_trap_key_t;

/**
 * Build an immutable snapshot from oid_mappings rows and the devices table
 * (both copied; the caller keeps ownership of its arrays). Device rows whose
 * ip does not parse, or without a name, are skipped and counted
 * (opsc_normalizer_devices_skipped); the first row wins for a duplicate address. NULL on a bad
 * mapping row (message in err, see opsc_oidmap_create) or OOM.
 */
opsc_normalizer_t *opsc_normalizer_create(const opsc_oid_mapping_t *rows, size_t n,
                                          const opsc_device_ref_t *devices, size_t ndev, char *err,
                                          size_t errlen);
void opsc_normalizer_destroy(opsc_normalizer_t *n);

/** One dependencies row: `device` depends on `upstream` (device addresses as text). */
typedef struct opsc_dependency_ref_s {
    const char *device;
    const char *upstream;
} opsc_dependency_ref_t;

#define OPSC_UPSTREAM_DEPTH 16 /* levels followed by opsc_normalizer_upstreams */

/**
 * Give the snapshot its dependency graph (rows copied; a NetBox-style "/24"
 * suffix is ignored; rows with a NULL or empty side are skipped). Call before
 * handing the normalizer to the pipeline: it is immutable afterwards.
 * Replaces any earlier graph. 0, or OPSC_ENOMEM (the graph is then empty).
 */
int opsc_normalizer_set_dependencies(opsc_normalizer_t *n, const opsc_dependency_ref_t *rows,
                                     size_t count);
size_t opsc_normalizer_dependency_count(const opsc_normalizer_t *n);

/**
 * Every device `device` depends on, directly or transitively, nearest first
 * (breadth-first over the graph, cycle-safe, at most OPSC_UPSTREAM_DEPTH levels
 * and `max` devices). The strings belong to the normalizer. Returns the count.
 */
size_t opsc_normalizer_upstreams(const opsc_normalizer_t *n, const char *device, const char **out,
                                 size_t max);
/** The devices row for address `ip` (text, v4 or v6), or NULL. Any thread holding the snapshot. */
const opsc_device_ref_t *opsc_normalizer_device(const opsc_normalizer_t *n, const char *ip);
const opsc_oidmap_t *opsc_normalizer_oidmap(const opsc_normalizer_t *n);
size_t opsc_normalizer_devices_skipped(const opsc_normalizer_t *n);

/**
 * Phase 1, run for every trap: mapping, device_ip, device, alert_type,
 * is_clear, discriminator and fingerprint. No allocation, no name
 * translation beyond one table-column lookup per varbind until the first hit.
 *
 * device_ip: v1 agent-addr (or snmpTrapAddress.0, as the decoder reports it in
 * agent_addr), else an snmpTrapAddress.0 varbind, else the UDP source; 0.0.0.0
 * counts as absent; IPv4-mapped IPv6 sources are shown as IPv4.
 *
 * fingerprint: SHA-256 over "snmp", device_ip, alert_type and discriminator,
 * each followed by a NUL (see opsc_normalize_fingerprint).
 *
 * Returns 0, or OPSC_EPARSE when the trap has no trap OID or no address.
 */
int opsc_normalize_key(const opsc_normalizer_t *n, const opsc_trap_t *t, opsc_trap_key_t *key);

/**
 * Phase 2, for the first occurrence of a fingerprint: fill `out` (an alert
 * from opsc_alert_new; string fields already set are replaced) from the trap
 * and its key: id (new UUID), source_system "snmp", source_alert_id
 * "<device_ip>/<trap oid>[/<discriminator>]", device, severity, category,
 * alert_type, title (template expanded, at most 255 characters), message (the
 * mapping's description), status active, is_clear, occurred_at = received_at
 * = last_occurrence_at = now_us, fingerprint, raw_data. `key` must come
 * from opsc_normalize_key(n, t, ...). 0 or OPSC_ENOMEM (out then holds what
 * was set so far; the caller frees it as usual).
 *
 * An unknown trap: alert_type "unknown_trap", category unknown, severity
 * warning, title "Unknown trap [MODULE::name (]<oid>[)] from <device>".
 *
 * raw_data: {"version": "v1"|"v2c"|"v3", "pdu": "trap-v1"|"trap"|"inform",
 * "request_id" (v2c/v3), "source": {"address", "port"}, "agent_address" (when
 * the decoder had one), "community": first character + "***" (v1/v2c) or
 * "v3": {"engine_id", "user", "security_level"}, "enterprise" (OID or null),
 * "generic_trap"/"specific_trap" (v1), "uptime" (TimeTicks), "trap_oid",
 * "trap_name" (qualified MIB name or null), "varbinds": [{"oid", "name",
 * "type", "value", ["enum"], ["encoding": "text"|"hex"], ["value_name"]}]}.
 * Numbers stay numbers (a Counter64 above 2^63-1 becomes a string); OCTET
 * STRINGs are text when printable UTF-8, else colon-separated hex.
 */
int opsc_normalize_full(const opsc_normalizer_t *n, const opsc_trap_t *t,
                        const opsc_trap_key_t *key, int64_t now_us, opsc_alert_t *out);

/**
 * 1 when `clear`'s trap OID matches the clear_oid_pattern of `active` (the
 * rule of an active alert), else 0. Device and discriminator are the
 * caller's to compare (or use opsc_normalize_clear_fingerprints).
 */
int opsc_normalize_clears(const opsc_normalizer_t *n, const opsc_oid_rule_t *active,
                          const opsc_trap_t *clear);

/**
 * The fingerprints of the alerts a clear trap resolves: for every alert_type
 * whose mapping's clear_oid_pattern matches the trap OID, the fingerprint of
 * (key's device, that alert_type, key's discriminator). A linkUp for ifIndex 3
 * yields the fingerprint of link_down/ifIndex 3 on the same device, nothing
 * else; the caller looks those up among its active alerts. Writes at most
 * `max`; returns how many it wrote.
 */
size_t opsc_normalize_clear_fingerprints(const opsc_normalizer_t *n, const opsc_trap_t *t,
                                         const opsc_trap_key_t *key,
                                         char (*fps)[OPSC_FINGERPRINT_HEX], size_t max);

/**
 * The dedup fingerprint shared by every source: lowercase hex SHA-256 of
 * source, device, alert_type and discriminator, each followed by a NUL byte
 * (unambiguous: none of them can contain a NUL). NULL counts as "".
 */
void opsc_normalize_fingerprint(const char *source, const char *device, const char *alert_type,
                                const char *discriminator, char out[OPSC_FINGERPRINT_HEX]);

#endif
