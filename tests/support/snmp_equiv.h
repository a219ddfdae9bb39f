#ifndef OPSC_TEST_SNMP_EQUIV_H
#define OPSC_TEST_SNMP_EQUIV_H

/*
 * One datagram through both SNMP decoders (net-snmp alone, and the fast path
 * with net-snmp for what it declines), each result written out as text, field
 * by field: the return code, every opsc_trap_t field, every varbind (OID,
 * type, integer values, bytes and whether the pointer is NULL, OID value) and
 * the reply bytes. Equal text = equal results. Shared by the unit test
 * (tests/unit/sources/test_snmp_fast.c) and the libFuzzer target
 * (tests/fuzz/fuzz_snmp_equiv.c); header-only so the fuzzer needs no library.
 *
 * Needs "sources/snmp_trap/snmp_int.h" (opsc__snmp_set_path) included first.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "opsc/buf.h"
#include "opsc/snmp_decode.h"
#include "opsc/trap.h"

static void equiv_hex(opsc_buf_t *o, const unsigned char *b, size_t n) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        char h[2] = {digits[b[i] >> 4], digits[b[i] & 0xf]};
        (void)opsc_buf_append(o, h, 2);
    }
}

static void equiv_oid(opsc_buf_t *o, const uint32_t *oid, uint32_t len) {
    (void)opsc_buf_printf(o, "[%u]%s", (unsigned)len, oid == NULL ? "null" : "");
    for (uint32_t i = 0; oid != NULL && i < len; i++) {
        (void)opsc_buf_printf(o, ".%u", (unsigned)oid[i]);
    }
}

/* The whole result as text into o (reset first). */
static void equiv_describe(int rc, const opsc_trap_t *t, const opsc_buf_t *reply, opsc_buf_t *o) {
    opsc_buf_reset(o);
    (void)opsc_buf_printf(o, "rc %d (%s)\n", rc, opsc_snmp_reason_name(rc));
    if (reply != NULL) {
        (void)opsc_buf_appends(o, "reply ");
        equiv_hex(o, (const unsigned char *)reply->base, reply->len);
        (void)opsc_buf_appends(o, "\n");
    }
    if (rc != 0) {
        return; /* *out is unspecified after a drop */
    }
    (void)opsc_buf_printf(o, "version %d pdu %d request_id %d\n", t->version, (int)t->pdu,
                          (int)t->request_id);
    (void)opsc_buf_appends(o, "community ");
    equiv_hex(o, (const unsigned char *)t->community, sizeof(t->community));
    (void)opsc_buf_appends(o, "\nuser ");
    equiv_hex(o, (const unsigned char *)t->user, sizeof(t->user));
    (void)opsc_buf_appends(o, "\nengine ");
    equiv_hex(o, (const unsigned char *)t->engine_id_hex, sizeof(t->engine_id_hex));
    (void)opsc_buf_printf(o, "\nsecurity_level %d\ntrap_oid ", t->security_level);
    equiv_oid(o, t->trap_oid, t->trap_oid_len);
    (void)opsc_buf_appends(o, "\nenterprise ");
    equiv_oid(o, t->enterprise, t->enterprise_len);
    (void)opsc_buf_printf(o, "\ngeneric %d specific %d uptime %llu\n", t->generic_trap,
                          t->specific_trap, (unsigned long long)t->uptime_ticks);
    (void)opsc_buf_printf(o, "agent_addr %u.%u.%u.%u has %d\nfrom ", t->agent_addr[0],
                          t->agent_addr[1], t->agent_addr[2], t->agent_addr[3], t->has_agent_addr);
    equiv_hex(o, (const unsigned char *)&t->from, sizeof(t->from));
    (void)opsc_buf_printf(o, "\nnvarbinds %zu\n", t->nvarbinds);
    for (size_t i = 0; i < t->nvarbinds; i++) {
        const opsc_varbind_t *vb = &t->varbinds[i];
        (void)opsc_buf_printf(o, "vb %zu ", i);
        equiv_oid(o, vb->oid, vb->oid_len);
        (void)opsc_buf_printf(o, " type %d i %lld u %llu bytes %s[%u] ", (int)vb->type,
                              (long long)vb->i, (unsigned long long)vb->u,
                              vb->bytes == NULL ? "null" : "", (unsigned)vb->bytes_len);
        if (vb->bytes != NULL) {
            equiv_hex(o, vb->bytes, vb->bytes_len);
        }
        (void)opsc_buf_appends(o, " oid_value ");
        equiv_oid(o, vb->oid_value, vb->oid_value_len);
        (void)opsc_buf_appends(o, "\n");
    }
}

typedef struct {
    opsc_buf_t netsnmp; /* description of net-snmp's result */
    opsc_buf_t fast;    /* description of the fast path's (or, declined, net-snmp's again) */
    int rc;             /* the return code of the fast run */
    int decided_fast;   /* the fast path decided (did not decline) */
} equiv_result_t;

#define EQUIV_RESULT_INIT                                                                          \
    { OPSC_BUF_INIT, OPSC_BUF_INIT, 0, 0 }

static void equiv_result_free(equiv_result_t *r) {
    opsc_buf_free(&r->netsnmp);
    opsc_buf_free(&r->fast);
}

/*
 * Decode `in` with both paths (each from its own copy: the decoder may write
 * into its input). Returns 1 if the two descriptions are equal, 0 if not, -1
 * if out of memory. The decoder is left on the fast path.
 */
static int equiv_run(opsc_snmp_decoder_t *dec, const unsigned char *in, size_t len,
                     const struct sockaddr *from, equiv_result_t *res) {
    opsc_trap_t t;
    opsc_buf_t reply = OPSC_BUF_INIT;
    uint64_t fast0, declined0, fast1, declined1;
    unsigned char *work = malloc(len > 0 ? len : 1);
    if (work == NULL) {
        return -1;
    }

    opsc__snmp_set_path(dec, OPSC__SNMP_PATH_NETSNMP);
    if (len > 0) {
        memcpy(work, in, len);
    }
    int rc = opsc_snmp_decode(dec, work, len, from, &t, &reply);
    equiv_describe(rc, &t, &reply, &res->netsnmp);

    opsc__snmp_set_path(dec, OPSC__SNMP_PATH_AUTO);
    if (len > 0) {
        memcpy(work, in, len);
    }
    opsc__snmp_path_stats(dec, &fast0, &declined0);
    res->rc = opsc_snmp_decode(dec, work, len, from, &t, &reply);
    opsc__snmp_path_stats(dec, &fast1, &declined1);
    res->decided_fast = fast1 > fast0;
    equiv_describe(res->rc, &t, &reply, &res->fast);

    opsc_buf_free(&reply);
    free(work);
    return res->netsnmp.len == res->fast.len &&
           memcmp(res->netsnmp.base, res->fast.base, res->fast.len) == 0;
}

#endif
