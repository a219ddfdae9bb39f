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
