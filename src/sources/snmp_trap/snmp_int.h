#ifndef OPSC_SNMP_INT_H
#define OPSC_SNMP_INT_H

/*
 * Private to src/sources/snmp_trap/. Deliberately free of net-snmp headers so
 * that tests can include it: net-snmp types appear only as incomplete structs.
 */

#include <stddef.h>
#include <stdint.h>

#include "opsc/buf.h"
#include "opsc/snmp_decode.h"

struct snmp_pdu;
struct snmp_session;

/* ---- snmp_ber.c: the cheap look at a datagram before net-snmp sees it ---------------------- */

/* A read position in a BER buffer: [p, end). The walkers below never read outside it. */
typedef struct opsc__ber_s {
    const unsigned char *p;
    const unsigned char *end;
} opsc__ber_t;

/*
 * One TLV at r->p: its tag, value and value length; r->p moves past it. Single-byte tags,
 * definite lengths (short or long form of 1..4 bytes, minimal or not), value inside
 * [p, end). 0 or -1.
 */
int opsc__ber_tlv(opsc__ber_t *r, int *tag, const unsigned char **val, size_t *vlen);

/** A TLV that must have tag `want`. 0 or -1. */
int opsc__ber_expect(opsc__ber_t *r, int want, const unsigned char **val, size_t *vlen);

/** An INTEGER (tag 0x02) of 1..8 content bytes, sign-extended. 0 or -1. */
int opsc__ber_int(opsc__ber_t *r, int64_t *out);

#define OPSC__SNMP_FLAG_AUTH 0x01u
#define OPSC__SNMP_FLAG_PRIV 0x02u
#define OPSC__SNMP_FLAG_REPORTABLE 0x04u

/* PDU tags (context-specific, constructed). */
#define OPSC__SNMP_TAG_GET 0xa0
#define OPSC__SNMP_TAG_TRAP_V1 0xa4
#define OPSC__SNMP_TAG_INFORM 0xa6
#define OPSC__SNMP_TAG_TRAP_V2 0xa7
#define OPSC__SNMP_TAG_REPORT 0xa8

typedef struct opsc__snmp_peek_s {
    int version; /* 0 (v1), 1 (v2c), 3 (v3), as on the wire */
    int pdu_tag; /* 0xa0..0xa8; -1 when encrypted (v3 with the priv flag) */
    /* v1/v2c */
    const unsigned char *community;
    size_t community_len;
    /* v3: msgFlags, msgSecurityModel, and from the USM security parameters */
    unsigned msg_flags;
    int64_t security_model;
    const unsigned char *engine_id; /* msgAuthoritativeEngineID (empty: discovery) */
    size_t engine_id_len;
    const unsigned char *user; /* msgUserName */
    size_t user_len;
    int64_t engine_boots; /* msgAuthoritativeEngineBoots */
    int64_t engine_time;  /* msgAuthoritativeEngineTime */
} opsc__snmp_peek_t;

/**
 * Walk the message header with strict BER (definite lengths, every length
 * inside its parent, nothing after the message) without copying anything.
 * Pointers point into buf. 0, OPSC_SNMP_MALFORMED or OPSC_SNMP_UNSUPPORTED_VERSION.
 * For v3 the security parameters are parsed only when msgSecurityModel is 3 (USM).
 */
int opsc__snmp_peek(const unsigned char *buf, size_t len, opsc__snmp_peek_t *out);

/* ---- snmp_fast.c: the v1/v2c fast path ---------------------------------------------------- */

/* Scratch memory of one decode: reused, grown on demand, never shrunk. */
typedef struct opsc__snmp_arena_s {
    unsigned char *base;
    size_t cap;
} opsc__snmp_arena_t;

/** Room for `need` bytes; the old contents are lost. 0 or -1 (out of memory). */
int opsc__snmp_arena_reserve(opsc__snmp_arena_t *a, size_t need);
void opsc__snmp_arena_free(opsc__snmp_arena_t *a);

/* The fast path's answer "not mine": decode the datagram with net-snmp instead. */
#define OPSC__SNMP_DECLINED 1

/* More varbinds than this in one notification: declined (net-snmp has no limit of its own). */
#define OPSC__SNMP_FAST_MAX_VARBINDS 256u

/**
 * Decode a v1 Trap-PDU or a v2c SNMPv2-Trap / InformRequest whose header
 * opsc__snmp_peek accepted (pk), into *out exactly as net-snmp's snmp_parse
 * and opsc__fill would, without net-snmp and without copying values: byte
 * values point into buf, OIDs and varbinds into the arena. The caller set
 * out->from, generic_trap and specific_trap (-1) and zeroed the rest.
 * For an InformRequest, reply (may be NULL) gets the Response.
 * Returns 0; OPSC__SNMP_DECLINED (anything but the canonical encoding of the
 * types it knows: net-snmp decides, *out and reply are to be reset); or a
 * negative reason (malformed: a notification without a usable trap OID or
 * generic-trap; internal: out of memory) that net-snmp's path would give too.
 * Pure: no I/O, no global state, any thread.
 */
int opsc__snmp_fast_decode(opsc__snmp_arena_t *arena, const unsigned char *buf, size_t len,
                           const opsc__snmp_peek_t *pk, opsc_trap_t *out, opsc_buf_t *reply);

/* Which decoder opsc_snmp_decode uses for v1/v2c (tests and benchmarks; no config key). */
typedef enum {
    OPSC__SNMP_PATH_AUTO = 0,    /* the fast path, net-snmp for what it declines */
    OPSC__SNMP_PATH_NETSNMP = 1, /* net-snmp for everything, as before the fast path */
} opsc__snmp_path_t;

void opsc__snmp_set_path(opsc_snmp_decoder_t *d, opsc__snmp_path_t path);

/** Tests: datagrams the fast path decided (accepted or dropped) and declined, since create. */
void opsc__snmp_path_stats(const opsc_snmp_decoder_t *d, uint64_t *fast, uint64_t *declined);

/* ---- snmp_v3.c: net-snmp set-up, USM users, Reports and Responses -------------------------- */

/**
 * The process-wide net-snmp set-up, done once (later calls only check that the
 * engine ID is the same and update boots). Installs the log handler.
 */
int opsc__snmp_lib_init(const unsigned char *engine_id, size_t engine_id_len, uint32_t boots,
                        char *err, size_t errlen);

/**
 * Index the MIB files of `dirs` with net-snmp and install their names as the
 * extra name table (opsc_mibnames_install). After opsc__snmp_lib_init, on
 * the thread that owns net-snmp; once per process (later calls do nothing).
 * A directory that does not exist is a configuration error.
 */
int opsc__snmp_load_mibs(const char *const *dirs, size_t ndirs, const char *log_component,
                         char *err, size_t errlen);

/** Where net-snmp's own log lines go (component; NULL = drop them). */
void opsc__snmp_lib_set_log(const char *component);

/**
 * Add one USM user with keys localized to engine_id. *handle gets what
 * opsc__snmp_usm_remove needs. `label` names the user in errors.
 */
int opsc__snmp_usm_add(const opsc_snmp_v3_user_t *u, const char *label,
                       const unsigned char *engine_id, size_t engine_id_len, void **handle,
                       char *err, size_t errlen);
void opsc__snmp_usm_remove(void *handle);

/** Encode `pdu` with `sess` into reply (replacing its contents). 0 or OPSC_SNMP_INTERNAL. */
int opsc__snmp_build(struct snmp_session *sess, struct snmp_pdu *pdu, opsc_buf_t *reply);

/**
 * A Report for a v3 message that net-snmp rejected with `snmp_err` (a
 * SNMPERR_USM_* code): the parsed (partial) pdu is cloned, made a Report and
 * encoded into reply. Drops pdu's security state reference (as net-snmp's
 * own usm_handle_report does). 0 or OPSC_SNMP_INTERNAL.
 */
int opsc__snmp_report(struct snmp_session *sess, struct snmp_pdu *pdu, int snmp_err,
                      opsc_buf_t *reply);

/** The Response to an InformRequest: same request-id and varbinds. 0 or OPSC_SNMP_INTERNAL. */
int opsc__snmp_inform_response(struct snmp_session *sess, struct snmp_pdu *pdu, opsc_buf_t *reply);

/** Tests: does net-snmp hold an engine time record for this engine ID? */
int opsc__snmp_engine_known(const unsigned char *engine_id, size_t engine_id_len);

/** Tests: snmp_parse without any of our checks (shows what the pre-filter protects). */
int opsc__snmp_raw_parse(opsc_snmp_decoder_t *d, unsigned char *buf, size_t len);

#endif
