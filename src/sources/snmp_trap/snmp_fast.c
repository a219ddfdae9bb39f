/*
 * The v1/v2c fast path: a strict, copy-free BER decoder for Trap-PDU,
 * SNMPv2-Trap-PDU and InformRequest-PDU messages that fills the same
 * opsc_trap_t as net-snmp's snmp_parse followed by opsc__fill (snmp_decode.c).
 *
 * Why it exists: snmp_parse costs 0.7-1.1 us per trap and mallocs a PDU and
 * every varbind, which we then copy again; at 150,000 traps/s on two shared
 * cores that is most of a core. This walk costs a tenth of it.
 *
 * The contract that keeps the two paths equal: the fast path accepts only the
 * canonical encoding (minimal lengths and integers, minimal sub-identifiers,
 * every TLV exactly filling its parent, only the value types whose net-snmp
 * result is known) and DECLINES everything else, which then goes through
 * net-snmp exactly as before. It never rejects a message as malformed on its
 * own grammar: where net-snmp is lax (NULL with content, trailing bytes
 * inside a varbind or after the varbind list, short agent addresses, Opaque-
 * wrapped 64-bit types, integers wider than 32 bits, which net-snmp masks),
 * what happens is still net-snmp's decision, so no sender that works today
 * stops working, and a hostile datagram costs what it cost before. The only
 * drop it makes itself is opsc__fill's: a notification that parsed but says
 * nothing (no snmpTrapOID.0, a v1 generic-trap outside 0..6, ...), for which
 * both paths reach the same reason. tests/unit/sources/test_snmp_fast.c and
 * tests/fuzz/fuzz_snmp_equiv.c hold the two paths to that.
 *
 * Zero-copy: OCTET STRING, Opaque and IpAddress values point into the
 * caller's datagram buffer; only OIDs (BER -> uint32 sub-ids) and the varbind
 * array are written, into the decoder's arena. Recursion: none (the grammar
 * has fixed depth). Every length is checked against its parent by the TLV
 * reader; counts are bounded before anything is written.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "opsc/buf.h"
#include "opsc/snmp_decode.h"
#include "snmp_int.h"

/* Well-known OIDs (RFC 3416, RFC 3584), as opsc__fill matches them. */
static const uint32_t opsc__fast_sysuptime[] = {1, 3, 6, 1, 2, 1, 1, 3, 0};
static const uint32_t opsc__fast_trapoid[] = {1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0};
static const uint32_t opsc__fast_trapenterprise[] = {1, 3, 6, 1, 6, 3, 1, 1, 4, 3, 0};
static const uint32_t opsc__fast_trapaddress[] = {1, 3, 6, 1, 6, 3, 18, 1, 3, 0};
static const uint32_t opsc__fast_snmptraps[] = {1, 3, 6, 1, 6, 3, 1, 1, 5};

#define OPSC__FAST_IS(p, n, o)                                                                     \
    ((n) == sizeof(o) / sizeof((o)[0]) && memcmp((p), (o), sizeof(o)) == 0)

/* net-snmp's MAX_OID_LEN: a longer OID is its call, not ours. */
#define OPSC__FAST_MAX_SUBIDS 128u

/* net-snmp's COMMUNITY_MAX_LEN is 256; longer ones fail in snmp_parse. */
#define OPSC__FAST_MAX_COMMUNITY 255u

/* ---- arena ---------------------------------------------------------------------------------- */

int opsc__snmp_arena_reserve(opsc__snmp_arena_t *a, size_t need) {
    if (need <= a->cap) {
        return 0;
    }
    size_t cap = a->cap > 0 ? a->cap : 4096;
    while (cap < need) {
        cap *= 2;
    }
    unsigned char *b = opsc_malloc(cap);
    if (b == NULL) {
        return -1;
    }
    opsc_free(a->base); /* nothing in it survives a new decode */
    a->base = b;
    a->cap = cap;
    return 0;
}

void opsc__snmp_arena_free(opsc__snmp_arena_t *a) {
    opsc_free(a->base);
    a->base = NULL;
    a->cap = 0;
}

/* ---- canonical BER on top of snmp_ber.c's reader -------------------------------------------- */

/* A TLV whose length is in its shortest form (DER); anything else is declined. */
static int opsc__fast_tlv(opsc__ber_t *r, int *tag, const unsigned char **v, size_t *n) {
    const unsigned char *start = r->p;
    if (opsc__ber_tlv(r, tag, v, n) != 0) {
        return -1;
    }
    size_t hdr = (size_t)(*v - start);
    size_t want = *n < 0x80 ? 2 : *n < 0x100 ? 3 : *n < 0x10000 ? 4 : *n < 0x1000000 ? 5 : 6;
    return hdr == want ? 0 : -1;
}

static int opsc__fast_expect(opsc__ber_t *r, int want, const unsigned char **v, size_t *n) {
    int tag;
    if (opsc__fast_tlv(r, &tag, v, n) != 0 || tag != want) {
        return -1;
    }
    return 0;
}

/* The content of an INTEGER in its shortest two's-complement form. */
static int opsc__fast_minimal_int(const unsigned char *v, size_t n) {
    if (n == 0) {
        return 0;
    }
    if (n == 1) {
        return 1;
    }
    return !((v[0] == 0x00 && !(v[1] & 0x80)) || (v[0] == 0xff && (v[1] & 0x80)));
}

/*
 * A signed INTEGER of at most 4 content bytes (so it fits int32 and net-snmp's
 * truncation of wider values never comes into play).
 */
static int opsc__fast_int32(const unsigned char *v, size_t n, int32_t *out) {
    if (n > 4 || !opsc__fast_minimal_int(v, n)) {
        return -1;
    }
    uint32_t u = (v[0] & 0x80) ? UINT32_MAX : 0;
    for (size_t i = 0; i < n; i++) {
        u = u << 8 | v[i];
    }
    memcpy(out, &u, sizeof(*out));
    return 0;
}

/*
 * A non-negative INTEGER-encoded value of at most `bits` bits (32 or 64):
 * Counter32, Gauge32, TimeTicks, UInteger32, Counter64. net-snmp turns a
 * negative encoding into a sign-extended value; we leave those to it.
 */
static int opsc__fast_unsigned(const unsigned char *v, size_t n, unsigned bits, uint64_t *out) {
    if (!opsc__fast_minimal_int(v, n) || (v[0] & 0x80)) {
        return -1;
    }
    size_t max = bits / 8 + 1;
    if (n > max || (n == max && v[0] != 0)) {
        return -1;
    }
    uint64_t u = 0;
    for (size_t i = 0; i < n; i++) {
        u = u << 8 | v[i];
    }
    *out = u;
    return 0;
}

/*
 * OBJECT IDENTIFIER content -> sub-ids at dst (room for OPSC__FAST_MAX_SUBIDS).
 * Minimal sub-identifiers of at most 32 bits; a first arc that net-snmp's
 * versions split differently (>= 120, i.e. 2.40 and above) is declined.
 */
static int opsc__fast_oid(const unsigned char *v, size_t n, uint32_t *dst, uint32_t *out_len) {
    uint32_t count = 0;
    size_t i = 0;
    if (n == 0) {
        return -1; /* net-snmp makes "06 00" an OID of one zero: its business */
    }
    while (i < n) {
        uint64_t sub = 0;
        if (v[i] == 0x80) {
            return -1; /* leading zero septet */
        }
        size_t k = 0;
        for (;;) {
            if (i >= n || k == 5) {
                return -1; /* unterminated, or more than 32 bits */
            }
            unsigned char b = v[i++];
            sub = sub << 7 | (b & 0x7f);
            k++;
            if (!(b & 0x80)) {
                break;
            }
        }
        if (sub > UINT32_MAX) {
            return -1;
        }
        if (count == 0) {
            if (sub >= 120) {
                return -1;
            }
            dst[0] = sub < 40 ? 0 : sub < 80 ? 1 : 2;
            dst[1] = (uint32_t)(sub - 40u * dst[0]);
            count = 2;
        } else {
            if (count >= OPSC__FAST_MAX_SUBIDS) {
                return -1;
            }
            dst[count++] = (uint32_t)sub;
        }
    }
    *out_len = count;
    return 0;
}

/* ---- varbinds ------------------------------------------------------------------------------- */

typedef struct opsc__fast_s {
    opsc_varbind_t *vb; /* next free varbind */
    size_t vb_left;
    uint32_t *ids; /* next free sub-id */
    size_t ids_left;
} opsc__fast_t;

static int opsc__fast_take_oid(opsc__fast_t *f, const unsigned char *v, size_t n,
                               const uint32_t **out, uint32_t *out_len) {
    /* A TLV of n content bytes yields at most n + 1 sub-ids: the bound the arena was sized by. */
    if (f->ids_left < n + 1) {
        return -1;
    }
    if (opsc__fast_oid(v, n, f->ids, out_len) != 0) {
        return -1;
    }
    *out = f->ids;
    f->ids += *out_len;
    f->ids_left -= *out_len;
    return 0;
}

/* One VarBind, converted as opsc__convert_varbind converts net-snmp's. 0 or -1 (decline). */
static int opsc__fast_varbind(opsc__fast_t *f, opsc__ber_t *list, opsc_varbind_t *vb) {
    const unsigned char *v;
    size_t n;
    int tag;
    uint64_t u;
    int32_t i32;

    memset(vb, 0, sizeof(*vb));
    if (opsc__fast_expect(list, 0x30, &v, &n) != 0) {
        return -1;
    }
    opsc__ber_t r = {v, v + n};
    if (opsc__fast_expect(&r, 0x06, &v, &n) != 0 ||
        opsc__fast_take_oid(f, v, n, &vb->oid, &vb->oid_len) != 0) {
        return -1;
    }
    if (opsc__fast_tlv(&r, &tag, &v, &n) != 0 || r.p != r.end) {
        return -1;
    }
    switch (tag) {
    case 0x02: /* INTEGER */
        if (opsc__fast_int32(v, n, &i32) != 0) {
            return -1;
        }
        vb->type = OPSC_VB_INTEGER;
        vb->i = i32;
        return 0;
    case 0x04: /* OCTET STRING */
        vb->type = OPSC_VB_OCTETS;
        vb->bytes = v;
        vb->bytes_len = (uint32_t)n;
        return 0;
    case 0x40: /* IpAddress: net-snmp's take on other lengths is its own */
        if (n != 4) {
            return -1;
        }
        vb->type = OPSC_VB_IPADDR;
        vb->bytes = v;
        vb->bytes_len = 4;
        return 0;
    case 0x44: /* Opaque; 9f xx inside is net-snmp's wrapped float/double/64-bit */
        if (n == 0 || v[0] == 0x9f) {
            return -1;
        }
        vb->type = OPSC_VB_OPAQUE;
        vb->bytes = v;
        vb->bytes_len = (uint32_t)n;
        return 0;
    case 0x06:
        vb->type = OPSC_VB_OID;
        return opsc__fast_take_oid(f, v, n, &vb->oid_value, &vb->oid_value_len);
    case 0x41: /* Counter32 */
    case 0x42: /* Gauge32 / Unsigned32 */
    case 0x43: /* TimeTicks */
    case 0x47: /* UInteger32 (RFC 1442, obsolete): OPSC_VB_OTHER with its value */
        if (opsc__fast_unsigned(v, n, 32, &u) != 0) {
            return -1;
        }
        vb->type = tag == 0x41   ? OPSC_VB_COUNTER32
                   : tag == 0x42 ? OPSC_VB_GAUGE32
                   : tag == 0x43 ? OPSC_VB_TIMETICKS
                                 : OPSC_VB_OTHER;
        vb->u = u;
        if (tag == 0x47) {
            vb->bytes = v; /* net-snmp's path leaves a non-NULL, empty byte range here */
        }
        return 0;
    case 0x46: /* Counter64 */
        if (opsc__fast_unsigned(v, n, 64, &u) != 0) {
            return -1;
        }
        vb->type = OPSC_VB_COUNTER64;
        vb->u = u;
        return 0;
    case 0x05: /* NULL, and the three exceptions: empty, or net-snmp decides */
    case 0x80:
    case 0x81:
    case 0x82:
        if (n != 0) {
            return -1;
        }
        vb->type = tag == 0x05   ? OPSC_VB_NULL
                   : tag == 0x80 ? OPSC_VB_NOSUCHOBJECT
                   : tag == 0x81 ? OPSC_VB_NOSUCHINSTANCE
                                 : OPSC_VB_ENDOFMIBVIEW;
        return 0;
    default: /* BIT STRING, NsapAddress, anything else: net-snmp's call */
        return -1;
    }
}

/*
 * The VarBindList: every varbind into out, then opsc__fill's rules. Returns 0,
 * OPSC__SNMP_DECLINED, or OPSC_SNMP_MALFORMED (a v2 notification without a
 * usable snmpTrapOID.0, judged only once the whole list parsed).
 */
static int opsc__fast_varbinds(opsc__fast_t *f, const unsigned char *v, size_t n, int v1,
                               opsc_trap_t *out) {
    opsc__ber_t list = {v, v + n};
    int have_uptime = 0, have_trapoid = 0, bad = 0;
    opsc_varbind_t *first = f->vb;

    out->varbinds = first;
    out->nvarbinds = 0;
    while (list.p < list.end) {
        if (f->vb_left == 0) {
            return OPSC__SNMP_DECLINED;
        }
        opsc_varbind_t *vb = f->vb;
        if (opsc__fast_varbind(f, &list, vb) != 0) {
            return OPSC__SNMP_DECLINED;
        }
        if (!v1) {
            /* As opsc__fill: these two anywhere, once, and kept out of the list. */
            if (!have_uptime && OPSC__FAST_IS(vb->oid, vb->oid_len, opsc__fast_sysuptime) &&
                vb->type == OPSC_VB_TIMETICKS) {
                have_uptime = 1;
                out->uptime_ticks = vb->u;
                continue;
            }
            if (!have_trapoid && OPSC__FAST_IS(vb->oid, vb->oid_len, opsc__fast_trapoid)) {
                if (vb->type != OPSC_VB_OID || vb->oid_value_len == 0) {
                    bad = 1; /* malformed, once the rest is known to parse */
                }
                have_trapoid = 1;
                out->trap_oid = vb->oid_value;
                out->trap_oid_len = vb->oid_value_len;
                continue;
            }
            if (out->enterprise_len == 0 &&
                OPSC__FAST_IS(vb->oid, vb->oid_len, opsc__fast_trapenterprise) &&
                vb->type == OPSC_VB_OID) {
                out->enterprise = vb->oid_value;
                out->enterprise_len = vb->oid_value_len;
            }
            if (!out->has_agent_addr &&
                OPSC__FAST_IS(vb->oid, vb->oid_len, opsc__fast_trapaddress) &&
                vb->type == OPSC_VB_IPADDR && vb->bytes_len == 4) {
                memcpy(out->agent_addr, vb->bytes, 4);
                out->has_agent_addr = 1;
            }
        }
        f->vb++;
        f->vb_left--;
        out->nvarbinds++;
    }
    if (!v1 && (bad || !have_trapoid)) {
        return OPSC_SNMP_MALFORMED;
    }
    return 0;
}

/* ---- PDUs ----------------------------------------------------------------------------------- */

/* Trap-PDU (RFC 1157) and its RFC 3584 3.1 mapping, as opsc__fill. */
static int opsc__fast_trap_v1(opsc__fast_t *f, const unsigned char *v, size_t n, opsc_trap_t *out) {
    opsc__ber_t r = {v, v + n};
    const unsigned char *x, *addr;
    size_t xn, addr_n;
    int32_t generic, specific;
    uint64_t ticks;

    out->pdu = OPSC_PDU_TRAP_V1;
    out->request_id = 0;
    if (opsc__fast_expect(&r, 0x06, &x, &xn) != 0 ||
        opsc__fast_take_oid(f, x, xn, &out->enterprise, &out->enterprise_len) != 0 ||
        opsc__fast_expect(&r, 0x40, &addr, &addr_n) != 0 || addr_n != 4 ||
        opsc__fast_expect(&r, 0x02, &x, &xn) != 0 || opsc__fast_int32(x, xn, &generic) != 0 ||
        opsc__fast_expect(&r, 0x02, &x, &xn) != 0 || opsc__fast_int32(x, xn, &specific) != 0 ||
        opsc__fast_expect(&r, 0x43, &x, &xn) != 0 || opsc__fast_unsigned(x, xn, 32, &ticks) != 0 ||
        opsc__fast_expect(&r, 0x30, &x, &xn) != 0 || r.p != r.end) {
        return OPSC__SNMP_DECLINED;
    }
    int rc = opsc__fast_varbinds(f, x, xn, 1, out);
    if (rc != 0) {
        return rc;
    }
    if (generic < 0 || generic > 6 || specific < 0) {
        return OPSC_SNMP_MALFORMED;
    }
    /* The trap OID: enterprise.0.specific or snmpTraps.(generic+1); room was reserved. */
    uint32_t *t = f->ids;
    if (generic == 6) {
        memcpy(t, out->enterprise, out->enterprise_len * sizeof(uint32_t));
        t[out->enterprise_len] = 0;
        t[out->enterprise_len + 1] = (uint32_t)specific;
        out->trap_oid_len = out->enterprise_len + 2;
    } else {
        memcpy(t, opsc__fast_snmptraps, sizeof(opsc__fast_snmptraps));
        t[9] = (uint32_t)generic + 1;
        out->trap_oid_len = 10;
    }
    out->trap_oid = t;
    out->generic_trap = generic;
    out->specific_trap = specific;
    out->uptime_ticks = ticks;
    memcpy(out->agent_addr, addr, 4);
    out->has_agent_addr = 1;
    return 0;
}

/* Shortest BER length header for n into p (room for 5); returns its size. */
static size_t opsc__fast_put_len(unsigned char *p, size_t n) {
    if (n < 0x80) {
        p[0] = (unsigned char)n;
        return 1;
    }
    size_t k = n < 0x100 ? 1 : n < 0x10000 ? 2 : n < 0x1000000 ? 3 : 4;
    p[0] = (unsigned char)(0x80 | k);
    for (size_t i = 0; i < k; i++) {
        p[1 + i] = (unsigned char)(n >> (8 * (k - 1 - i)));
    }
    return 1 + k;
}

/*
 * The Response to a v2c InformRequest (RFC 3416 4.2.7): the same version,
 * community, request-id and varbinds, error-status and error-index 0. The
 * message was canonical (or we would have declined it), so copying its TLVs
 * gives the bytes net-snmp's re-encoding gives.
 */
static int opsc__fast_inform_response(const unsigned char *version, size_t version_len,
                                      const unsigned char *community, size_t community_len,
                                      const unsigned char *reqid, size_t reqid_len,
                                      const unsigned char *vbl, size_t vbl_len, opsc_buf_t *reply) {
    static const unsigned char zero_zero[] = {0x02, 0x01, 0x00, 0x02, 0x01, 0x00};
    unsigned char pdu_hdr[6], msg_hdr[6];
    size_t pdu_body = reqid_len + sizeof(zero_zero) + vbl_len;
    pdu_hdr[0] = 0xa2; /* GetResponse-PDU */
    size_t pdu_hl = 1 + opsc__fast_put_len(pdu_hdr + 1, pdu_body);
    size_t msg_body = version_len + community_len + pdu_hl + pdu_body;
    msg_hdr[0] = 0x30;
    size_t msg_hl = 1 + opsc__fast_put_len(msg_hdr + 1, msg_body);

    opsc_buf_reset(reply);
    if (opsc_buf_reserve(reply, msg_hl + msg_body) != 0 ||
        opsc_buf_append(reply, msg_hdr, msg_hl) != 0 ||
        opsc_buf_append(reply, version, version_len) != 0 ||
        opsc_buf_append(reply, community, community_len) != 0 ||
        opsc_buf_append(reply, pdu_hdr, pdu_hl) != 0 ||
        opsc_buf_append(reply, reqid, reqid_len) != 0 ||
        opsc_buf_append(reply, zero_zero, sizeof(zero_zero)) != 0 ||
        opsc_buf_append(reply, vbl, vbl_len) != 0) {
        opsc_buf_reset(reply);
        return OPSC_SNMP_INTERNAL;
    }
    return 0;
}

int opsc__snmp_fast_decode(opsc__snmp_arena_t *arena, const unsigned char *buf, size_t len,
                           const opsc__snmp_peek_t *pk, opsc_trap_t *out, opsc_buf_t *reply) {
    const unsigned char *v, *version, *community, *pdu, *reqid, *vbl;
    size_t n, version_len, community_len, pdu_len, vbl_len, reqid_len;
    int tag;

    if (pk->version != 0 && pk->version != 1) {
        return OPSC__SNMP_DECLINED;
    }
    /* The header again, canonical this time; opsc__snmp_peek only promised it is sound. */
    opsc__ber_t top = {buf, buf + len};
    if (opsc__fast_expect(&top, 0x30, &v, &n) != 0 || top.p != top.end) {
        return OPSC__SNMP_DECLINED;
    }
    opsc__ber_t msg = {v, v + n};
    version = msg.p;
    if (opsc__fast_expect(&msg, 0x02, &v, &n) != 0 || n != 1 || v[0] != (unsigned)pk->version) {
        return OPSC__SNMP_DECLINED;
    }
    version_len = (size_t)(msg.p - version);
    community = msg.p;
    if (opsc__fast_expect(&msg, 0x04, &v, &n) != 0 || n > OPSC__FAST_MAX_COMMUNITY) {
        return OPSC__SNMP_DECLINED;
    }
    community_len = (size_t)(msg.p - community);
    size_t c = n < sizeof(out->community) - 1 ? n : sizeof(out->community) - 1;
    memcpy(out->community, v, c);
    out->community[c] = '\0';
    if (opsc__fast_tlv(&msg, &tag, &pdu, &pdu_len) != 0 || msg.p != msg.end) {
        return OPSC__SNMP_DECLINED;
    }
    int v1 = pk->version == 0;
    if (v1 ? tag != OPSC__SNMP_TAG_TRAP_V1
           : (tag != OPSC__SNMP_TAG_TRAP_V2 && tag != OPSC__SNMP_TAG_INFORM)) {
        return OPSC__SNMP_DECLINED;
    }
    out->version = pk->version;

    /*
     * Arena: the varbinds, and the sub-ids. A varbind takes at least 7 bytes
     * (30 05 06 01 xx 05 00); an OID TLV of k bytes yields at most k sub-ids;
     * the v1 trap OID adds at most enterprise + 2.
     */
    size_t max_vb = len / 7 + 1;
    if (max_vb > OPSC__SNMP_FAST_MAX_VARBINDS) {
        max_vb = OPSC__SNMP_FAST_MAX_VARBINDS;
    }
    size_t max_ids = len + OPSC__FAST_MAX_SUBIDS + 2;
    size_t vb_size = max_vb * sizeof(opsc_varbind_t);
    size_t ids_off = (vb_size + 7) & ~(size_t)7;
    if (opsc__snmp_arena_reserve(arena, ids_off + max_ids * sizeof(uint32_t)) != 0) {
        return OPSC_SNMP_INTERNAL;
    }
    opsc__fast_t f;
    f.vb = (opsc_varbind_t *)(void *)arena->base;
    f.vb_left = max_vb;
    f.ids = (uint32_t *)(void *)(arena->base + ids_off);
    f.ids_left = max_ids - (OPSC__FAST_MAX_SUBIDS + 2); /* kept for the v1 trap OID */

    if (v1) {
        return opsc__fast_trap_v1(&f, pdu, pdu_len, out);
    }

    out->pdu = tag == OPSC__SNMP_TAG_INFORM ? OPSC_PDU_INFORM : OPSC_PDU_TRAP_V2;
    opsc__ber_t r = {pdu, pdu + pdu_len};
    int32_t req, err_status, err_index;
    reqid = r.p;
    if (opsc__fast_expect(&r, 0x02, &v, &n) != 0 || opsc__fast_int32(v, n, &req) != 0) {
        return OPSC__SNMP_DECLINED;
    }
    reqid_len = (size_t)(r.p - reqid);
    if (opsc__fast_expect(&r, 0x02, &v, &n) != 0 || opsc__fast_int32(v, n, &err_status) != 0 ||
        opsc__fast_expect(&r, 0x02, &v, &n) != 0 || opsc__fast_int32(v, n, &err_index) != 0) {
        return OPSC__SNMP_DECLINED;
    }
    vbl = r.p;
    if (opsc__fast_expect(&r, 0x30, &v, &n) != 0 || r.p != r.end) {
        return OPSC__SNMP_DECLINED;
    }
    vbl_len = (size_t)(r.p - vbl);
    out->request_id = req;
    int rc = opsc__fast_varbinds(&f, v, n, 0, out);
    if (rc != 0) {
        return rc;
    }
    if (out->pdu == OPSC_PDU_INFORM && reply != NULL) {
        return opsc__fast_inform_response(version, version_len, community, community_len, reqid,
                                          reqid_len, vbl, vbl_len, reply);
    }
    return 0;
}
