#ifndef OPSC_TRAP_H
#define OPSC_TRAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * A decoded SNMP notification, independent of net-snmp: what the decoder
 * hands the normalizer. All pointers point into memory owned by the decoder
 * (or into the datagram it decoded, see opsc_snmp_decode) and stay valid
 * until its next decode call.
 */

typedef enum {
    OPSC_VB_INTEGER = 0,
    OPSC_VB_OCTETS,
    OPSC_VB_NULL,
    OPSC_VB_OID,
    OPSC_VB_IPADDR,
    OPSC_VB_COUNTER32,
    OPSC_VB_GAUGE32,
    OPSC_VB_TIMETICKS,
    OPSC_VB_OPAQUE,
    OPSC_VB_COUNTER64,
    OPSC_VB_NOSUCHOBJECT,
    OPSC_VB_NOSUCHINSTANCE,
    OPSC_VB_ENDOFMIBVIEW,
    OPSC_VB_OTHER
} opsc_vb_type_t;

typedef struct opsc_varbind_s {
    const uint32_t *oid;
    uint32_t oid_len;
    opsc_vb_type_t type;
    int64_t i;                  /* INTEGER */
    uint64_t u;                 /* Counter32, Gauge32, TimeTicks, Counter64 */
    const unsigned char *bytes; /* OCTET STRING, Opaque, IpAddress (4 bytes) */
    uint32_t bytes_len;
    const uint32_t *oid_value; /* OBJECT IDENTIFIER */
    uint32_t oid_value_len;
} opsc_varbind_t;

typedef enum {
    OPSC_PDU_TRAP_V1 = 0, /* SNMPv1 Trap-PDU */
    OPSC_PDU_TRAP_V2 = 1, /* SNMPv2-Trap-PDU (v2c and v3) */
    OPSC_PDU_INFORM = 2,  /* InformRequest-PDU (v2c and v3) */
} opsc_pdu_kind_t;

typedef struct opsc_trap_s {
    int version; /* 0 = v1, 1 = v2c, 3 = v3 */
    opsc_pdu_kind_t pdu;
    int32_t request_id;
    char community[128];     /* v1/v2c, truncated */
    char user[64];           /* v3 security name */
    char engine_id_hex[68];  /* v3 authoritative engine ID in hex */
    int security_level;      /* v3: 1 noAuthNoPriv, 2 authNoPriv, 3 authPriv */
    /* snmpTrapOID.0; for v1 mapped per RFC 3584 §3.1 */
    const uint32_t *trap_oid;
    uint32_t trap_oid_len;
    /* v1 enterprise, or snmpTrapEnterprise.0 when present; len 0 = none */
    const uint32_t *enterprise;
    uint32_t enterprise_len;
    int generic_trap; /* v1 only, else -1 */
    int specific_trap;
    uint64_t uptime_ticks; /* v1 time-stamp or sysUpTime.0 */
    /* v1 agent-addr, else snmpTrapAddress.0 when present */
    unsigned char agent_addr[4];
    int has_agent_addr;
    struct sockaddr_storage from; /* UDP source */
    /* varbinds after sysUpTime.0 and snmpTrapOID.0 (v2c/v3); all of them for v1 */
    size_t nvarbinds;
    const opsc_varbind_t *varbinds;
} opsc_trap_t;

/** "1.3.6.1..." into out; returns the length written (truncated at outlen-1). */
size_t opsc_oid_format(const uint32_t *oid, uint32_t len, char *out, size_t outlen);
/** Parse dotted decimal (leading dot allowed); returns the number of sub-ids or -1. */
int opsc_oid_parse(const char *s, uint32_t *out, uint32_t max);

#endif
