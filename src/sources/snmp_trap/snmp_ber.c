/*
 * A strict, copy-free BER walk over an SNMP message header: version,
 * community, PDU type and, for v3, the USM engine ID and user name.
 *
 * It runs before net-snmp on every datagram, so it decides cheaply (tens of
 * nanoseconds) what need not be parsed at all: wrong communities, PDUs that
 * are not notifications and, above all, v3 messages for an engine/user we do
 * not know, which net-snmp would otherwise remember forever (it creates an
 * engine time record for any engine ID it sees, before checking the user).
 * Pure function, no I/O, no allocation: easy to fuzz.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "snmp_int.h"

int opsc__ber_tlv(opsc__ber_t *r, int *tag, const unsigned char **val, size_t *vlen) {
    size_t avail = (size_t)(r->end - r->p);
    if (avail < 2) {
        return -1;
    }
    unsigned t = r->p[0];
    unsigned l = r->p[1];
    const unsigned char *q = r->p + 2;
    size_t n;
    if ((t & 0x1f) == 0x1f) {
        return -1; /* multi-byte tags do not occur in SNMP */
    }
    if (l < 0x80) {
        n = l;
    } else {
        unsigned k = l & 0x7f;
        /* 0x80 is the indefinite form, which SNMP forbids; 4 bytes cover any datagram. */
        if (k == 0 || k > 4 || (size_t)(r->end - q) < k) {
            return -1;
        }
        n = 0;
        for (unsigned i = 0; i < k; i++) {
            n = n << 8 | q[i];
        }
        q += k;
    }
    if ((size_t)(r->end - q) < n) {
        return -1;
    }
    *tag = (int)t;
    *val = q;
    *vlen = n;
    r->p = q + n;
    return 0;
}

int opsc__ber_expect(opsc__ber_t *r, int want, const unsigned char **val, size_t *vlen) {
    int tag;
    if (opsc__ber_tlv(r, &tag, val, vlen) != 0 || tag != want) {
        return -1;
    }
    return 0;
}

int opsc__ber_int(opsc__ber_t *r, int64_t *out) {
    const unsigned char *v;
    size_t n;
    if (opsc__ber_expect(r, 0x02, &v, &n) != 0 || n == 0 || n > 8) {
        return -1;
    }
    uint64_t u = (v[0] & 0x80) ? UINT64_MAX : 0;
    for (size_t i = 0; i < n; i++) {
        u = u << 8 | v[i];
    }
    memcpy(out, &u, sizeof(*out));
    return 0;
}

static int opsc__ber_is_pdu_tag(int tag) {
    return tag >= 0xa0 && tag <= 0xa8;
}

/* The USM security parameters (RFC 3414 2.4): the inside of msgSecurityParameters. */
static int opsc__peek_usm(const unsigned char *v, size_t n, opsc__snmp_peek_t *out) {
    opsc__ber_t r = {v, v + n};
    opsc__ber_t s;
    const unsigned char *seq;
    size_t seqlen;
    const unsigned char *auth, *priv;
    size_t auth_len, priv_len;
    if (opsc__ber_expect(&r, 0x30, &seq, &seqlen) != 0 || r.p != r.end) {
        return -1;
    }
    s.p = seq;
    s.end = seq + seqlen;
    if (opsc__ber_expect(&s, 0x04, &out->engine_id, &out->engine_id_len) != 0 ||
        opsc__ber_int(&s, &out->engine_boots) != 0 || opsc__ber_int(&s, &out->engine_time) != 0 ||
        opsc__ber_expect(&s, 0x04, &out->user, &out->user_len) != 0 ||
        opsc__ber_expect(&s, 0x04, &auth, &auth_len) != 0 ||
        opsc__ber_expect(&s, 0x04, &priv, &priv_len) != 0 || s.p != s.end) {
        return -1;
    }
    /* RFC 3411/3414 bounds: SnmpEngineID is at most 32 octets, userName at most 32. */
    if (out->engine_id_len > OPSC_SNMP_ENGINE_ID_MAX || out->user_len > 32 ||
        out->engine_boots < 0 || out->engine_boots > INT32_MAX || out->engine_time < 0 ||
        out->engine_time > INT32_MAX) {
        return -1;
    }
    return 0;
}

static int opsc__peek_v3(opsc__ber_t *r, opsc__snmp_peek_t *out) {
    const unsigned char *v;
    size_t n;
    int64_t msg_id, max_size;
    const unsigned char *flags;
    size_t flags_len;
    int tag;

    /* msgGlobalData */
    if (opsc__ber_expect(r, 0x30, &v, &n) != 0) {
        return OPSC_SNMP_MALFORMED;
    }
    opsc__ber_t g = {v, v + n};
    if (opsc__ber_int(&g, &msg_id) != 0 || opsc__ber_int(&g, &max_size) != 0 ||
        opsc__ber_expect(&g, 0x04, &flags, &flags_len) != 0 || flags_len != 1 ||
        opsc__ber_int(&g, &out->security_model) != 0 || g.p != g.end) {
        return OPSC_SNMP_MALFORMED;
    }
    if (msg_id < 0 || msg_id > INT32_MAX || max_size < 484 || max_size > INT32_MAX) {
        return OPSC_SNMP_MALFORMED;
    }
    out->msg_flags = flags[0];
    if ((out->msg_flags & OPSC__SNMP_FLAG_PRIV) && !(out->msg_flags & OPSC__SNMP_FLAG_AUTH)) {
        return OPSC_SNMP_MALFORMED; /* RFC 3412 7.2 (5): privacy without authentication */
    }

    /* msgSecurityParameters */
    if (opsc__ber_expect(r, 0x04, &v, &n) != 0) {
        return OPSC_SNMP_MALFORMED;
    }
    if (out->security_model != 3) {
        return OPSC_SNMP_UNSUPPORTED_VERSION; /* only the USM */
    }
    if (opsc__peek_usm(v, n, out) != 0) {
        return OPSC_SNMP_MALFORMED;
    }

    /* msgData: encrypted OCTET STRING or a plaintext ScopedPDU */
    if (opsc__ber_tlv(r, &tag, &v, &n) != 0 || r->p != r->end) {
        return OPSC_SNMP_MALFORMED;
    }
    if (out->msg_flags & OPSC__SNMP_FLAG_PRIV) {
        if (tag != 0x04) {
            return OPSC_SNMP_MALFORMED;
        }
        out->pdu_tag = -1;
        return 0;
    }
    if (tag != 0x30) {
        return OPSC_SNMP_MALFORMED;
    }
    opsc__ber_t sp = {v, v + n};
    const unsigned char *ctx;
    size_t ctx_len;
    if (opsc__ber_expect(&sp, 0x04, &ctx, &ctx_len) != 0 ||
        opsc__ber_expect(&sp, 0x04, &ctx, &ctx_len) != 0 || opsc__ber_tlv(&sp, &tag, &v, &n) != 0 ||
        sp.p != sp.end || !opsc__ber_is_pdu_tag(tag)) {
        return OPSC_SNMP_MALFORMED;
    }
    out->pdu_tag = tag;
    return 0;
}

int opsc__snmp_peek(const unsigned char *buf, size_t len, opsc__snmp_peek_t *out) {
    const unsigned char *v;
    size_t n;
    int64_t version;
    int tag;

    memset(out, 0, sizeof(*out));
    out->version = -1;
    out->pdu_tag = -1;
    out->security_model = -1;
    if (buf == NULL) {
        return OPSC_SNMP_MALFORMED;
    }
    opsc__ber_t top = {buf, buf + len};
    /* The message, and nothing after it. */
    if (opsc__ber_expect(&top, 0x30, &v, &n) != 0 || top.p != top.end) {
        return OPSC_SNMP_MALFORMED;
    }
    opsc__ber_t r = {v, v + n};
    if (opsc__ber_int(&r, &version) != 0) {
        return OPSC_SNMP_MALFORMED;
    }
    if (version == 3) {
        out->version = 3;
        return opsc__peek_v3(&r, out);
    }
    if (version != 0 && version != 1) {
        return OPSC_SNMP_UNSUPPORTED_VERSION;
    }
    out->version = (int)version;
    if (opsc__ber_expect(&r, 0x04, &out->community, &out->community_len) != 0 ||
        opsc__ber_tlv(&r, &tag, &v, &n) != 0 || r.p != r.end || !opsc__ber_is_pdu_tag(tag)) {
        return OPSC_SNMP_MALFORMED;
    }
    out->pdu_tag = tag;
    return 0;
}
