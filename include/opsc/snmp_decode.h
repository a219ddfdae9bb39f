#ifndef OPSC_SNMP_DECODE_H
#define OPSC_SNMP_DECODE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "opsc/buf.h"
#include "opsc/config.h"
#include "opsc/trap.h"

/*
 * SNMP datagram -> opsc_trap_t, with net-snmp (v1, v2c, v3/USM) behind this
 * header: nothing outside src/sources/snmp_trap/ sees a net-snmp type.
 *
 * Thread rule: net-snmp's USM users, engine time records, statistics and
 * error state are process-wide and not reentrant. Create, use and destroy the
 * decoder on ONE thread (the pipeline thread); at most one decoder exists in a
 * process at a time. More v3 throughput means more processes, not threads.
 */

/* Largest datagram decoded (the UDP payload limit); larger ones are too_big. */
#define OPSC_SNMP_DATAGRAM_MAX 65535

/*
 * Why a datagram was not turned into a trap: negative codes returned by
 * opsc_snmp_decode. These are their own domain (not opsc_errno_t): each one is
 * a stable metric label, opsc_snmp_reason_name().
 *
 *   malformed             bad BER, a bad PDU, no snmpTrapOID.0
 *   too_big               more than OPSC_SNMP_DATAGRAM_MAX bytes
 *   unsupported_version   not v1/v2c/v3, or v3 with another security model than USM
 *   unsupported_pdu       not a Trap, SNMPv2-Trap or InformRequest (GET, Response, ...)
 *   bad_community         v1/v2c: not in snmp.communities
 *   unknown_user          v3: no configured user of that name
 *   unknown_engine        v3: the user exists, but not for that engine ID; or a discovery
 *                         probe that asks no answer, or while no user is bound to our engine
 *   bad_auth              v3: wrong digest (auth passphrase or protocol)
 *   bad_priv              v3: decryption failed (priv passphrase or protocol)
 *   not_in_time_window    v3: engine boots/time outside the 150 s window
 *   wrong_security_level  v3: below the level configured for the user
 *   discovery             v3 engine-ID discovery probe: answered with a Report
 *   internal              out of memory, net-snmp could not build an answer
 */
#define OPSC_SNMP_REASON_MAP(X)                                                                    \
    X(MALFORMED, 1, "malformed")                                                                   \
    X(TOO_BIG, 2, "too_big")                                                                       \
    X(UNSUPPORTED_VERSION, 3, "unsupported_version")                                               \
    X(UNSUPPORTED_PDU, 4, "unsupported_pdu")                                                       \
    X(BAD_COMMUNITY, 5, "bad_community")                                                           \
    X(UNKNOWN_USER, 6, "unknown_user")                                                             \
    X(UNKNOWN_ENGINE, 7, "unknown_engine")                                                         \
    X(BAD_AUTH, 8, "bad_auth")                                                                     \
    X(BAD_PRIV, 9, "bad_priv")                                                                     \
    X(NOT_IN_TIME_WINDOW, 10, "not_in_time_window")                                                \
    X(WRONG_SECURITY_LEVEL, 11, "wrong_security_level")                                            \
    X(DISCOVERY, 12, "discovery")                                                                  \
    X(INTERNAL, 13, "internal")

typedef enum {
#define OPSC__SNMP_REASON_ENUM(name, n, label) OPSC_SNMP_##name = -(n),
    OPSC_SNMP_REASON_MAP(OPSC__SNMP_REASON_ENUM)
#undef OPSC__SNMP_REASON_ENUM
} opsc_snmp_reason_t;

#define OPSC_SNMP_REASON_COUNT 13

/** Stable label of a reason code ("bad_auth"); "ok" for 0, "unknown" otherwise. Static. */
const char *opsc_snmp_reason_name(int reason);

typedef struct opsc_snmp_decoder_s opsc_snmp_decoder_t;

typedef struct opsc_snmp_decoder_options_s {
    /* v1/v2c communities accepted; count 0 = any. Copied. */
    const char *const *communities;
    size_t ncommunities;
    /* v3 users (snmp.v3_users); a user without engine_id is bound to engine_id below. Copied. */
    const opsc_snmp_v3_user_t *users;
    size_t nusers;
    /* Our engine ID (snmp.engine_id or opsc_snmp_engine_id_load_or_create) and boots count. */
    const unsigned char *engine_id;
    size_t engine_id_len;
    uint32_t engine_boots; /* 1.. (opsc_snmp_engine_boots_next); 0 = 1 */
    /* Log component ("snmp" when NULL); net-snmp's own messages and drops, rate-limited. */
    const char *log_component;
    /* Directories of MIB files whose names extend the built-in table (snmp.mib_dirs). */
    const char *const *mib_dirs;
    size_t nmib_dirs;
} opsc_snmp_decoder_options_t;

/**
 * Create the decoder: the one-time net-snmp set-up (no config files, no
 * persistent state, our engine ID and boots, a log handler into our log) and
 * one USM user per configured user, keys localized to its engine ID.
 * Blocking (key derivation is ~1 ms per user); start-up only. Fails when a
 * decoder already exists, when a user's protocol is not in this net-snmp build
 * ("snmp.v3_users: user 2 ("alice"): priv_protocol AES-192 is not supported
 * by this net-snmp build (opsc.yaml:14)"), or when the engine ID differs from
 * the one an earlier decoder in this process used. 0 or OPSC_ECONFIG / OPSC_ENOMEM.
 */
int opsc_snmp_decoder_create(const opsc_snmp_decoder_options_t *o, opsc_snmp_decoder_t **out,
                             char *err, size_t errlen);

/**
 * Check that this net-snmp build has every user's protocols, without touching
 * net-snmp's state (for --check-config; create checks again). 0 or
 * OPSC_ECONFIG with the same one-line message as create. Any thread.
 */
int opsc_snmp_check_users(const opsc_snmp_v3_user_t *users, size_t nusers, char *err,
                          size_t errlen);

/** Remove our USM users and free the decoder. NULL is fine. Same thread as create. */
void opsc_snmp_decoder_destroy(opsc_snmp_decoder_t *d);

/**
 * Decode one datagram received from `from` (sockaddr_in or sockaddr_in6).
 *
 * `buf` MAY BE MODIFIED (net-snmp zeroes the v3 authentication parameters
 * while checking them): decode a copy if the original bytes are needed again.
 *
 * Returns 0 for an accepted SNMPv1 Trap, SNMPv2-Trap or InformRequest and
 * fills *out; its pointers (OIDs, varbinds, values) point into memory owned
 * by the decoder or, for byte values (OCTET STRING, Opaque, IpAddress) of
 * v1/v2c traps, into `buf` itself: they stay valid until the next
 * opsc_snmp_decode or destroy, as long as the caller keeps `buf` unchanged.
 * Otherwise returns a negative opsc_snmp_reason_t and *out is unspecified.
 *
 * `reply` (may be NULL: nothing is built) is reset, then receives the bytes
 * to send back to `from`, if any. It is the caller's buffer: the decoder does
 * not keep a reference, so move or copy it before passing it to the next call.
 *  - return 0 with out->pdu == OPSC_PDU_INFORM: the Response PDU (same
 *    request-id and varbinds). The CALLER sends it, and only once the event
 *    is durable: an unanswered INFORM is retransmitted by its sender (same
 *    request-id: dedup sees a repeat). A v3 Response carries our engine time
 *    of the decode; one sent more than 150 s later is rejected by the sender.
 *  - a negative return with reply->len > 0: a v3 Report (engine discovery,
 *    time-window resync, or an authentication failure on a PDU that asked
 *    for one). Send it at once; it carries no event.
 * Drops are logged here, rate-limited (at most 5 lines per 10 s); the caller
 * counts them per reason.
 */
int opsc_snmp_decode(opsc_snmp_decoder_t *d, unsigned char *buf, size_t len,
                     const struct sockaddr *from, opsc_trap_t *out, opsc_buf_t *reply);

/**
 * Our engine ID, kept in <data_dir>/snmp_engine_id (one line of hex). The
 * first call creates it: RFC 3411 format 5 (octets) under net-snmp's
 * enterprise number 8072 with 12 random bytes (80 00 1f 88 05 + 12 bytes).
 * `out` has room for OPSC_SNMP_ENGINE_ID_MAX bytes; *len gets the length.
 * Blocking file I/O: start-up only. 0 or a negative error, with a one-line
 * message naming the file in err.
 */
int opsc_snmp_engine_id_load_or_create(const char *data_dir, unsigned char *out, size_t *len,
                                       char *err, size_t errlen);

/**
 * snmpEngineBoots for this start: reads <data_dir>/snmp_engine_boots (absent:
 * 0), stores the value + 1 and returns it in *boots (RFC 3414: boots
 * increases on every restart; it sticks at 2147483647). Blocking, start-up
 * only. 0 or a negative error with a message in err.
 */
int opsc_snmp_engine_boots_next(const char *data_dir, uint32_t *boots, char *err, size_t errlen);

#endif
