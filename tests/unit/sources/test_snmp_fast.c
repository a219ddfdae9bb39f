/*
 * The v1/v2c fast path (snmp_fast.c) against net-snmp: every datagram goes
 * through both decoders and the results must be identical, field by field,
 * including the drop reason and the INFORM Response bytes (snmp_equiv.h).
 *
 * The corpus: the captured seeds (tests/fuzz/corpus/snmp, real snmptrap and
 * snmpinform datagrams), traps built here with every varbind type and the
 * encoding edge cases (64-bit Counter64, negative and wide INTEGERs, Opaque
 * and its wrapped types, NULL and the exception values with and without
 * content, IpAddress of the wrong length, sub-identifiers past 32 bits, OIDs
 * at net-snmp's 128 sub-id limit, long-form and non-minimal lengths,
 * zero-length values, varbind counts around the fast path's limit, trailing
 * bytes, v1 generic/specific/agent-addr edges, community lengths), and
 * 200,000 mutations of all of them. It also checks that the fast path is the
 * one that decided the ordinary traps (a test where everything is declined
 * would prove nothing), and a few decoded values by hand.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "opsc/buf.h"
#include "opsc/config.h"
#include "opsc/log.h"
#include "opsc/snmp_decode.h"
#include "opsc/trap.h"
#include "sources/snmp_trap/snmp_int.h"
#include "support/snmp_equiv.h"

static opsc_snmp_decoder_t *dec;
static struct sockaddr_in from4;
static int verbose; /* TEST_SNMP_FAST_VERBOSE=1: which path decided each generated case */

/* ---- a small BER builder: blobs live until the end of the test ------------------------------ */

typedef struct {
    unsigned char *p;
    size_t n;
} blob_t;

#define MAX_ALLOCS 100000
static void *allocs[MAX_ALLOCS];
static size_t nallocs;

static blob_t blob_new(size_t n) {
    blob_t b = {malloc(n > 0 ? n : 1), n};
    assert_non_null(b.p);
    assert_true(nallocs < MAX_ALLOCS);
    allocs[nallocs++] = b.p;
    return b;
}

static void blobs_free(void) {
    for (size_t i = 0; i < nallocs; i++) {
        free(allocs[i]);
    }
    nallocs = 0;
}

static blob_t cat(size_t k, ...) {
    va_list ap;
    size_t total = 0;
    va_start(ap, k);
    for (size_t i = 0; i < k; i++) {
        total += va_arg(ap, blob_t).n;
    }
    va_end(ap);
    blob_t out = blob_new(total);
    size_t off = 0;
    va_start(ap, k);
    for (size_t i = 0; i < k; i++) {
        blob_t b = va_arg(ap, blob_t);
        memcpy(out.p + off, b.p, b.n);
        off += b.n;
    }
    va_end(ap);
    return out;
}

static blob_t hex(const char *h) {
    size_t n = strlen(h) / 2;
    blob_t b = blob_new(n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
        b.p[i] = (unsigned char)v;
    }
    return b;
}

/* TLV with the length in `lenbytes` long-form bytes (0 = shortest form). */
static blob_t tlv_len(int tag, blob_t v, int lenbytes) {
    unsigned char h[8];
    size_t hn = 0;
    h[hn++] = (unsigned char)tag;
    if (lenbytes == 0) {
        if (v.n < 0x80) {
            h[hn++] = (unsigned char)v.n;
        } else {
            lenbytes = v.n < 0x100 ? 1 : v.n < 0x10000 ? 2 : 3;
        }
    }
    if (lenbytes > 0) {
        h[hn++] = (unsigned char)(0x80 | lenbytes);
        for (int i = lenbytes - 1; i >= 0; i--) {
            h[hn++] = (unsigned char)(v.n >> (8 * i));
        }
    }
    blob_t hb = blob_new(hn);
    memcpy(hb.p, h, hn);
    return cat(2, hb, v);
}

static blob_t tlv(int tag, blob_t v) {
    return tlv_len(tag, v, 0);
}

/* Minimal two's-complement content. */
static blob_t int_content(int64_t x) {
    unsigned char t[8];
    for (int i = 0; i < 8; i++) {
        t[i] = (unsigned char)((uint64_t)x >> (8 * (7 - i)));
    }
    int s = 0;
    while (s < 7 && ((t[s] == 0x00 && !(t[s + 1] & 0x80)) || (t[s] == 0xff && (t[s + 1] & 0x80)))) {
        s++;
    }
    blob_t b = blob_new((size_t)(8 - s));
    memcpy(b.p, t + s, b.n);
    return b;
}

/* Minimal content of a non-negative value (a leading 00 when the top bit is set). */
static blob_t uint_content(uint64_t x) {
    unsigned char t[9];
    t[0] = 0;
    for (int i = 0; i < 8; i++) {
        t[1 + i] = (unsigned char)(x >> (8 * (7 - i)));
    }
    int s = 0;
    while (s < 8 && t[s] == 0x00 && !(t[s + 1] & 0x80)) {
        s++;
    }
    blob_t b = blob_new((size_t)(9 - s));
    memcpy(b.p, t + s, b.n);
    return b;
}

static blob_t integer(int64_t x) {
    return tlv(0x02, int_content(x));
}

static blob_t unsig(int tag, uint64_t x) {
    return tlv(tag, uint_content(x));
}

static void put_subid(unsigned char *p, size_t *n, uint64_t v) {
    unsigned char t[10];
    int k = 0;
    do {
        t[k++] = (unsigned char)(v & 0x7f);
        v >>= 7;
    } while (v > 0);
    while (k > 0) {
        k--;
        p[(*n)++] = (unsigned char)(t[k] | (k > 0 ? 0x80 : 0));
    }
}

/* OID content from dotted decimal; sub-ids may exceed 32 bits (edge cases). */
static blob_t oid_content(const char *s) {
    uint64_t ids[300] = {0};
    size_t k = 0;
    const char *p = s;
    while (*p != '\0' && k < 300) {
        ids[k++] = strtoull(p, (char **)&p, 10);
        if (*p == '.') {
            p++;
        }
    }
    assert_true(k >= 2);
    unsigned char *buf = malloc(k * 10 + 10);
    assert_non_null(buf);
    size_t n = 0;
    put_subid(buf, &n, ids[0] * 40 + ids[1]);
    for (size_t i = 2; i < k; i++) {
        put_subid(buf, &n, ids[i]);
    }
    blob_t b = blob_new(n);
    memcpy(b.p, buf, n);
    free(buf);
    return b;
}

static blob_t oid(const char *s) {
    return tlv(0x06, oid_content(s));
}

static blob_t octets(const char *s) {
    blob_t b = blob_new(strlen(s));
    memcpy(b.p, s, b.n);
    return tlv(0x04, b);
}

static blob_t vb(const char *name, blob_t value) {
    return tlv(0x30, cat(2, oid(name), value));
}

static blob_t empty(void) {
    return blob_new(0);
}

#define SYSUPTIME "1.3.6.1.2.1.1.3.0"
#define TRAPOID "1.3.6.1.6.3.1.1.4.1.0"
#define LINKDOWN "1.3.6.1.6.3.1.1.5.3"
#define IFINDEX "1.3.6.1.2.1.2.2.1.1.3"

/* A v2c message: version 1, community, PDU tag, request-id, error fields, varbinds. */
static blob_t v2c_msg(const char *community, int tag, int64_t reqid, blob_t vbs) {
    blob_t pdu = tlv(tag, cat(4, integer(reqid), integer(0), integer(0), tlv(0x30, vbs)));
    return tlv(0x30, cat(3, integer(1), octets(community), pdu));
}

/* The two varbinds every notification starts with, then `rest`. */
static blob_t v2c_trap(blob_t rest) {
    return v2c_msg("public", 0xa7, 4242,
                   cat(3, vb(SYSUPTIME, unsig(0x43, 123456)), vb(TRAPOID, oid(LINKDOWN)), rest));
}

static blob_t v2c_inform(blob_t rest) {
    return v2c_msg("public", 0xa6, 77,
                   cat(3, vb(SYSUPTIME, unsig(0x43, 99)), vb(TRAPOID, oid(LINKDOWN)), rest));
}

static blob_t v1_msg(const char *enterprise, blob_t addr, int64_t generic, int64_t specific,
                     blob_t ticks, blob_t vbs) {
    blob_t pdu = tlv(0xa4, cat(6, oid(enterprise), addr, integer(generic), integer(specific), ticks,
                               tlv(0x30, vbs)));
    return tlv(0x30, cat(3, integer(0), octets("public"), pdu));
}

static blob_t ip4(void) {
    return tlv(0x40, hex("0a000001"));
}

/* ---- the corpus ------------------------------------------------------------------------------ */

#define MAX_CASES 512
static struct {
    char name[64];
    blob_t b;
} cases[MAX_CASES];
static size_t ncases;

static void add(const char *name, blob_t b) {
    assert_true(ncases < MAX_CASES);
    snprintf(cases[ncases].name, sizeof(cases[ncases].name), "%s", name);
    cases[ncases].b = b;
    ncases++;
}

static void load_seeds(void) {
    const char *src = getenv("TEST_OPSC_SOURCE_DIR");
    char dir[1024], path[1400];
    snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/snmp", src != NULL ? src : ".");
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        unsigned char buf[4096];
        size_t n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        blob_t b = blob_new(n);
        memcpy(b.p, buf, n);
        char name[64];
        snprintf(name, sizeof(name), "seed %.50s", e->d_name);
        add(name, b);
    }
    closedir(d);
}

static blob_t many_varbinds(size_t n) {
    blob_t all = empty();
    blob_t one = vb(IFINDEX, integer(7));
    for (size_t i = 0; i < n; i++) {
        all = cat(2, all, one);
    }
    return all;
}

static char *long_oid(size_t nsub) {
    char *s = malloc(nsub * 4 + 8);
    assert_non_null(s);
    strcpy(s, "1.3");
    for (size_t i = 2; i < nsub; i++) {
        strcat(s, ".9");
    }
    return s;
}

/* The same, kept until the end of the test. */
static const char *long_oid_keep(size_t nsub) {
    char *s = long_oid(nsub);
    assert_true(nallocs < MAX_ALLOCS);
    allocs[nallocs++] = s;
    return s;
}

static void build_generated(void) {
    /* Every varbind type, canonical: the fast path's home ground. */
    add("v2c all types",
        v2c_trap(cat(
            13, vb(IFINDEX, integer(3)), vb("1.3.6.1.2.1.2.2.1.2.3", octets("eth0")),
            vb("1.3.6.1.4.1.9.1", tlv(0x05, empty())),
            vb("1.3.6.1.4.1.9.2", oid("1.3.6.1.4.1.9.9.9")),
            vb("1.3.6.1.4.1.9.3", tlv(0x40, hex("c0000201"))),
            vb("1.3.6.1.4.1.9.4", unsig(0x41, 4294967295u)),
            vb("1.3.6.1.4.1.9.5", unsig(0x42, 2147483648u)), vb("1.3.6.1.4.1.9.6", unsig(0x43, 0)),
            vb("1.3.6.1.4.1.9.7", tlv(0x44, hex("0102030405"))),
            vb("1.3.6.1.4.1.9.8", unsig(0x46, UINT64_MAX)),
            vb("1.3.6.1.4.1.9.9", tlv(0x80, empty())), vb("1.3.6.1.4.1.9.10", tlv(0x81, empty())),
            vb("1.3.6.1.4.1.9.11", tlv(0x82, empty())))));
    add("v2c uinteger32", v2c_trap(vb("1.3.6.1.4.1.9.1", unsig(0x47, 12345))));
    add("v2c counter64 values",
        v2c_trap(cat(4, vb("1.3.6.1.4.1.9.1", unsig(0x46, 0)),
                     vb("1.3.6.1.4.1.9.2", unsig(0x46, (uint64_t)1 << 63)),
                     vb("1.3.6.1.4.1.9.3", unsig(0x46, 0xffffffffu)),
                     vb("1.3.6.1.4.1.9.4", unsig(0x46, ((uint64_t)1 << 32) + 5)))));
    add("v2c counter64 negative", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x46, hex("ff")))));
    add("v2c counter64 9 bytes not 00",
        v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x46, hex("010000000000000000")))));
    add("v2c counter64 10 bytes",
        v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x46, hex("00ff00000000000000ff")))));
    add("v2c counter32 too wide", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x41, hex("0100000000")))));
    add("v2c counter32 negative", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x41, hex("80")))));
    add("v2c gauge 9 bytes", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x42, hex("000000000000000001")))));
    add("v2c timeticks nonminimal", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x43, hex("0001")))));
    add("v2c integers",
        v2c_trap(cat(8, vb("1.3.6.1.4.1.9.1", integer(-1)), vb("1.3.6.1.4.1.9.2", integer(-128)),
                     vb("1.3.6.1.4.1.9.3", integer(-129)),
                     vb("1.3.6.1.4.1.9.4", integer(INT32_MIN)),
                     vb("1.3.6.1.4.1.9.5", integer(INT32_MAX)), vb("1.3.6.1.4.1.9.6", integer(0)),
                     vb("1.3.6.1.4.1.9.7", integer(255)), vb("1.3.6.1.4.1.9.8", integer(-32768)))));
    add("v2c integer 5 bytes positive", v2c_trap(vb("1.3.6.1.4.1.9.1", integer(2147483648LL))));
    add("v2c integer 5 bytes negative", v2c_trap(vb("1.3.6.1.4.1.9.1", integer(-2147483649LL))));
    add("v2c integer 8 bytes", v2c_trap(vb("1.3.6.1.4.1.9.1", integer(INT64_MIN))));
    add("v2c integer 9 bytes",
        v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x02, hex("000000000000000001")))));
    add("v2c integer nonminimal", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x02, hex("0005")))));
    add("v2c integer ff-padded", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x02, hex("ff80")))));
    add("v2c integer empty", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x02, empty()))));
    add("v2c octets empty", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x04, empty()))));
    add("v2c octets with NUL", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x04, hex("610062")))));
    add("v2c octets 300", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x04, blob_new(300)))));
    add("v2c octets constructed", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x24, octets("ab")))));
    add("v2c counter32 empty", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x41, empty()))));
    add("v2c counter64 empty", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x46, empty()))));
    add("v2c null with content", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x05, hex("00")))));
    add("v2c nosuchobject with content", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x80, hex("01")))));
    add("v2c endofmibview with content", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x82, hex("0102")))));
    add("v2c ipaddress 3", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x40, hex("010203")))));
    add("v2c ipaddress 5", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x40, hex("0102030405")))));
    add("v2c ipaddress 0", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x40, empty()))));
    add("v2c ipaddress 16", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x40, blob_new(16)))));
    add("v2c opaque empty", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x44, empty()))));
    add("v2c opaque float", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x44, hex("9f78043f800000")))));
    add("v2c opaque double",
        v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x44, hex("9f79083ff0000000000000")))));
    add("v2c opaque counter64", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x44, hex("9f76020102")))));
    add("v2c opaque i64", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x44, hex("9f7a01ff")))));
    add("v2c opaque u64", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x44, hex("9f7b0105")))));
    add("v2c opaque 9f other", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x44, hex("9f300100")))));
    add("v2c opaque lone 9f", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x44, hex("9f")))));
    add("v2c bit string", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x03, hex("0080")))));
    add("v2c nsap", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x45, hex("0102")))));
    add("v2c unknown type", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x48, hex("01")))));
    add("v2c boolean", v2c_trap(vb("1.3.6.1.4.1.9.1", tlv(0x01, hex("ff")))));

    /* OIDs: sub-identifier widths, first arcs, lengths. */
    add("v2c subid 2^32-1", v2c_trap(vb("1.3.6.1.4.1.4294967295", integer(1))));
    add("v2c subid 2^32", v2c_trap(vb("1.3.6.1.4.1.4294967296", integer(1))));
    add("v2c subid 2^35", v2c_trap(vb("1.3.6.1.4.1.34359738368", integer(1))));
    add("v2c value subid 2^32", v2c_trap(vb("1.3.6.1.4.1.9", oid("1.3.6.4294967296"))));
    add("v2c trapoid subid 2^32",
        v2c_msg("public", 0xa7, 1,
                cat(2, vb(SYSUPTIME, unsig(0x43, 1)), vb(TRAPOID, oid("1.3.6.1.4.1.4294967296")))));
    add("v2c subid leading 80", v2c_trap(vb("1.3.6.1.4.1.9", tlv(0x06, hex("2b06018001")))));
    add("v2c subid unterminated", v2c_trap(vb("1.3.6.1.4.1.9", tlv(0x06, hex("2b0601ff")))));
    add("v2c oid empty", v2c_trap(vb("1.3.6.1.4.1.9", tlv(0x06, empty()))));
    add("v2c name oid empty", v2c_trap(tlv(0x30, cat(2, tlv(0x06, empty()), integer(1)))));
    add("v2c name not an oid", v2c_trap(tlv(0x30, cat(2, octets("x"), integer(1)))));
    add("v2c oid 0.0", v2c_trap(vb("1.3.6.1.4.1.9", oid("0.0"))));
    add("v2c oid 0.39", v2c_trap(vb("1.3.6.1.4.1.9", oid("0.39"))));
    add("v2c oid 1.39", v2c_trap(vb("1.3.6.1.4.1.9", oid("1.39"))));
    add("v2c oid 2.0", v2c_trap(vb("1.3.6.1.4.1.9", oid("2.0"))));
    add("v2c oid 2.39", v2c_trap(vb("1.3.6.1.4.1.9", oid("2.39"))));
    add("v2c oid 2.40", v2c_trap(vb("1.3.6.1.4.1.9", oid("2.40"))));
    add("v2c oid 2.999", v2c_trap(vb("1.3.6.1.4.1.9", oid("2.999"))));
    add("v2c oid one byte", v2c_trap(vb("1.3.6.1.4.1.9", tlv(0x06, hex("2b")))));
    for (size_t k = 126; k <= 130; k++) {
        char name[64];
        char *o = long_oid(k);
        snprintf(name, sizeof(name), "v2c value oid %zu subids", k);
        add(name, v2c_trap(vb("1.3.6.1.4.1.9", oid(o))));
        snprintf(name, sizeof(name), "v2c name oid %zu subids", k);
        add(name, v2c_trap(vb(o, integer(1))));
        free(o);
    }

    /* Lengths. */
    add("v2c long-form varbind length",
        v2c_trap(tlv_len(0x30, cat(2, oid(IFINDEX), integer(3)), 1)));
    add("v2c long-form value length", v2c_trap(vb(IFINDEX, tlv_len(0x04, hex("41"), 2))));
    add("v2c long-form message",
        tlv_len(0x30,
                cat(3, integer(1), octets("public"),
                    tlv(0xa7, cat(4, integer(5), integer(0), integer(0),
                                  tlv(0x30, cat(2, vb(SYSUPTIME, unsig(0x43, 1)),
                                                vb(TRAPOID, oid(LINKDOWN))))))),
                1));
    add("v2c long-form 4 bytes", v2c_trap(vb(IFINDEX, tlv_len(0x04, hex("41"), 4))));
    add("v2c long-form 5 bytes", v2c_trap(vb(IFINDEX, tlv_len(0x04, hex("41"), 5))));
    add("v2c big varbind list", v2c_trap(vb(IFINDEX, tlv(0x04, blob_new(40000)))));
    add("v2c version nonminimal",
        tlv(0x30, cat(3, tlv(0x02, hex("0001")), octets("public"),
                      tlv(0xa7, cat(4, integer(5), integer(0), integer(0),
                                    tlv(0x30, cat(2, vb(SYSUPTIME, unsig(0x43, 1)),
                                                  vb(TRAPOID, oid(LINKDOWN)))))))));

    /* Structure. */
    add("v2c trailing byte in varbind",
        v2c_trap(tlv(0x30, cat(3, oid(IFINDEX), integer(3), hex("00")))));
    add("v2c trailing varbind in varbind",
        v2c_trap(tlv(0x30, cat(3, oid(IFINDEX), integer(3), vb(IFINDEX, integer(4))))));
    add("v2c trailing after list",
        tlv(0x30, cat(3, integer(1), octets("public"),
                      tlv(0xa7, cat(5, integer(5), integer(0), integer(0),
                                    tlv(0x30, cat(2, vb(SYSUPTIME, unsig(0x43, 1)),
                                                  vb(TRAPOID, oid(LINKDOWN)))),
                                    hex("0500"))))));
    add("v2c varbind missing value", v2c_trap(tlv(0x30, oid(IFINDEX))));
    add("v2c varbind list not a sequence",
        tlv(0x30, cat(3, integer(1), octets("public"),
                      tlv(0xa7, cat(4, integer(5), integer(0), integer(0), tlv(0x31, empty()))))));
    add("v2c no varbinds", v2c_msg("public", 0xa7, 1, empty()));
    add("v2c no trap oid", v2c_msg("public", 0xa7, 1, vb(SYSUPTIME, unsig(0x43, 1))));
    add("v2c trap oid wrong type",
        v2c_msg("public", 0xa7, 1, cat(2, vb(SYSUPTIME, unsig(0x43, 1)), vb(TRAPOID, integer(3)))));
    add("v2c trap oid wrong type then bad varbind",
        v2c_msg("public", 0xa7, 1,
                cat(3, vb(SYSUPTIME, unsig(0x43, 1)), vb(TRAPOID, integer(3)),
                    vb(IFINDEX, tlv(0x05, hex("00"))))));
    add("v2c trap oid first, uptime last",
        v2c_msg("public", 0xa7, 1,
                cat(3, vb(TRAPOID, oid(LINKDOWN)), vb(IFINDEX, integer(2)),
                    vb(SYSUPTIME, unsig(0x43, 5)))));
    add("v2c uptime wrong type kept",
        v2c_msg("public", 0xa7, 1, cat(2, vb(SYSUPTIME, integer(5)), vb(TRAPOID, oid(LINKDOWN)))));
    add("v2c twice each",
        v2c_msg("public", 0xa7, 1,
                cat(4, vb(SYSUPTIME, unsig(0x43, 1)), vb(TRAPOID, oid(LINKDOWN)),
                    vb(SYSUPTIME, unsig(0x43, 2)), vb(TRAPOID, oid("1.3.6.1.6.3.1.1.5.4")))));
    add("v2c enterprise and trap address",
        v2c_trap(cat(4, vb("1.3.6.1.6.3.1.1.4.3.0", oid("1.3.6.1.4.1.9")),
                     vb("1.3.6.1.6.3.1.1.4.3.0", oid("1.3.6.1.4.1.10")),
                     vb("1.3.6.1.6.3.18.1.3.0", tlv(0x40, hex("0a0b0c0d"))),
                     vb("1.3.6.1.6.3.18.1.3.0", tlv(0x40, hex("01020304"))))));
    add("v2c trap address as octets",
        v2c_trap(vb("1.3.6.1.6.3.18.1.3.0", tlv(0x04, hex("0a0b0c0d")))));
    add("v2c enterprise wrong type", v2c_trap(vb("1.3.6.1.6.3.1.1.4.3.0", octets("x"))));
    add("v2c request-id min",
        v2c_msg("public", 0xa7, INT32_MIN,
                cat(2, vb(SYSUPTIME, unsig(0x43, 1)), vb(TRAPOID, oid(LINKDOWN)))));
    add("v2c request-id 2^31",
        v2c_msg("public", 0xa7, 2147483648LL,
                cat(2, vb(SYSUPTIME, unsig(0x43, 1)), vb(TRAPOID, oid(LINKDOWN)))));
    add("v2c request-id 2^32+1",
        v2c_msg("public", 0xa7, 4294967297LL,
                cat(2, vb(SYSUPTIME, unsig(0x43, 1)), vb(TRAPOID, oid(LINKDOWN)))));
    add("v2c request-id -2^31-5",
        v2c_msg("public", 0xa7, -2147483653LL,
                cat(2, vb(SYSUPTIME, unsig(0x43, 1)), vb(TRAPOID, oid(LINKDOWN)))));
    add("v2c empty community",
        v2c_msg("", 0xa7, 1, cat(2, vb(SYSUPTIME, unsig(0x43, 1)), vb(TRAPOID, oid(LINKDOWN)))));
    {
        char c[300];
        for (size_t k = 0; k < 3; k++) {
            size_t len = 255 + k;
            memset(c, 'c', len);
            c[len] = '\0';
            char name[64];
            snprintf(name, sizeof(name), "v2c community %zu", len);
            add(name, v2c_msg(c, 0xa7, 1,
                              cat(2, vb(SYSUPTIME, unsig(0x43, 1)), vb(TRAPOID, oid(LINKDOWN)))));
            snprintf(name, sizeof(name), "v2c inform community %zu", len);
            add(name, v2c_msg(c, 0xa6, 1,
                              cat(2, vb(SYSUPTIME, unsig(0x43, 1)), vb(TRAPOID, oid(LINKDOWN)))));
        }
    }
    for (size_t n = 254; n <= 258; n++) {
        char name[64];
        snprintf(name, sizeof(name), "v2c %zu varbinds", n);
        add(name, v2c_trap(many_varbinds(n)));
    }
    add("v2c 2000 varbinds", v2c_trap(many_varbinds(2000)));

    /* INFORMs: the Response bytes are compared too. */
    add("inform plain", v2c_inform(vb(IFINDEX, integer(3))));
    add("inform all types",
        v2c_inform(cat(6, vb("1.3.6.1.4.1.9.1", unsig(0x46, UINT64_MAX)),
                       vb("1.3.6.1.4.1.9.2", integer(-5)), vb("1.3.6.1.4.1.9.3", octets("")),
                       vb("1.3.6.1.4.1.9.4", tlv(0x05, empty())),
                       vb("1.3.6.1.4.1.9.5", tlv(0x44, hex("01"))),
                       vb("1.3.6.1.4.1.9.6", tlv(0x40, hex("01020304"))))));
    add("inform no varbinds", v2c_msg("public", 0xa6, 5, empty()));
    add("inform empty community",
        v2c_msg("", 0xa6, 5, cat(2, vb(SYSUPTIME, unsig(0x43, 1)), vb(TRAPOID, oid(LINKDOWN)))));
    add("inform big", v2c_inform(vb(IFINDEX, tlv(0x04, blob_new(1000)))));
    add("inform request-id negative",
        v2c_msg("public", 0xa6, -7,
                cat(2, vb(SYSUPTIME, unsig(0x43, 1)), vb(TRAPOID, oid(LINKDOWN)))));
    add("inform error-status set",
        tlv(0x30, cat(3, integer(1), octets("public"),
                      tlv(0xa6, cat(4, integer(5), integer(3), integer(2),
                                    tlv(0x30, cat(2, vb(SYSUPTIME, unsig(0x43, 1)),
                                                  vb(TRAPOID, oid(LINKDOWN)))))))));
    add("inform 130-subid oid", v2c_inform(vb("1.3.6.1.4.1.9", oid(long_oid_keep(130)))));
    add("v1 inform tag",
        tlv(0x30, cat(3, integer(0), octets("public"),
                      tlv(0xa6, cat(4, integer(5), integer(0), integer(0), tlv(0x30, empty()))))));
    add("v2c v1-trap tag", tlv(0x30, cat(3, integer(1), octets("public"),
                                         tlv(0xa4, cat(2, oid("1.3.6.1.4.1.9"), ip4())))));
    add("v2c get", v2c_msg("public", 0xa0, 1, empty()));
    add("v2c response", v2c_msg("public", 0xa2, 1, empty()));

    /* v1: generic, specific, agent-addr, time-stamp. */
    for (int g = -1; g <= 7; g++) {
        char name[64];
        snprintf(name, sizeof(name), "v1 generic %d", g);
        add(name,
            v1_msg("1.3.6.1.4.1.9.1", ip4(), g, 17, unsig(0x43, 100), vb(IFINDEX, integer(3))));
    }
    add("v1 specific negative", v1_msg("1.3.6.1.4.1.9", ip4(), 6, -1, unsig(0x43, 1), empty()));
    add("v1 specific max", v1_msg("1.3.6.1.4.1.9", ip4(), 6, INT32_MAX, unsig(0x43, 1), empty()));
    add("v1 specific 2^31",
        v1_msg("1.3.6.1.4.1.9", ip4(), 6, 2147483648LL, unsig(0x43, 1), empty()));
    add("v1 specific 2^32-1",
        v1_msg("1.3.6.1.4.1.9", ip4(), 6, 4294967295LL, unsig(0x43, 1), empty()));
    add("v1 specific 2^32",
        v1_msg("1.3.6.1.4.1.9", ip4(), 6, 4294967296LL, unsig(0x43, 1), empty()));
    add("v1 generic 2^32+3",
        v1_msg("1.3.6.1.4.1.9", ip4(), 4294967299LL, 0, unsig(0x43, 1), empty()));
    add("v1 addr 3",
        v1_msg("1.3.6.1.4.1.9", tlv(0x40, hex("010203")), 0, 0, unsig(0x43, 1), empty()));
    add("v1 addr 5",
        v1_msg("1.3.6.1.4.1.9", tlv(0x40, hex("0102030405")), 0, 0, unsig(0x43, 1), empty()));
    add("v1 addr as octets",
        v1_msg("1.3.6.1.4.1.9", tlv(0x04, hex("01020304")), 0, 0, unsig(0x43, 1), empty()));
    add("v1 ticks negative", v1_msg("1.3.6.1.4.1.9", ip4(), 0, 0, tlv(0x43, hex("ff")), empty()));
    add("v1 ticks 2^32", v1_msg("1.3.6.1.4.1.9", ip4(), 0, 0, unsig(0x43, 4294967296ULL), empty()));
    add("v1 ticks max", v1_msg("1.3.6.1.4.1.9", ip4(), 0, 0, unsig(0x43, 4294967295ULL), empty()));
    add("v1 ticks as integer", v1_msg("1.3.6.1.4.1.9", ip4(), 0, 0, integer(5), empty()));
    add("v1 ticks as gauge", v1_msg("1.3.6.1.4.1.9", ip4(), 0, 0, unsig(0x42, 5), empty()));
    add("v1 enterprise 128 subids",
        v1_msg(long_oid_keep(128), ip4(), 6, 3, unsig(0x43, 1), empty()));
    add("v1 all types",
        v1_msg("1.3.6.1.4.1.9.1", ip4(), 6, 5, unsig(0x43, 7),
               cat(6, vb(IFINDEX, integer(-3)), vb("1.3.6.1.4.1.9.2", unsig(0x46, 1)),
                   vb(SYSUPTIME, unsig(0x43, 5)), vb(TRAPOID, oid(LINKDOWN)),
                   vb("1.3.6.1.4.1.9.3", tlv(0x05, empty())),
                   vb("1.3.6.1.4.1.9.4", tlv(0x44, hex("00"))))));
    add("v1 trailing after list",
        tlv(0x30, cat(3, integer(0), octets("public"),
                      tlv(0xa4, cat(7, oid("1.3.6.1.4.1.9"), ip4(), integer(0), integer(0),
                                    unsig(0x43, 1), tlv(0x30, empty()), hex("0500"))))));
    add("v1 enterprise as octets",
        tlv(0x30, cat(3, integer(0), octets("public"),
                      tlv(0xa4, cat(6, octets("ab"), ip4(), integer(0), integer(0), unsig(0x43, 1),
                                    tlv(0x30, empty()))))));
    add("v1 empty enterprise",
        tlv(0x30, cat(3, integer(0), octets("public"),
                      tlv(0xa4, cat(6, tlv(0x06, empty()), ip4(), integer(6), integer(1),
                                    unsig(0x43, 1), tlv(0x30, empty()))))));
}

/* ---- the tests ------------------------------------------------------------------------------- */

static void check_case(const char *name, const unsigned char *b, size_t n, size_t *fast_ok,
                       size_t *fast_drop, size_t *declined) {
    equiv_result_t r = EQUIV_RESULT_INIT;
    int eq = equiv_run(dec, b, n, (const struct sockaddr *)&from4, &r);
    if (eq != 1) {
        fprintf(stderr, "MISMATCH: %s (%zu bytes)\n--- net-snmp:\n%.*s--- fast path:\n%.*s", name,
                n, (int)r.netsnmp.len, r.netsnmp.base, (int)r.fast.len, r.fast.base);
        equiv_result_free(&r);
        fail_msg("the two decoders differ on %s", name);
    }
    if (verbose && strncmp(name, "mutation", 8) != 0) {
        print_message("%-44s %-9s %s\n", name, r.decided_fast ? "fast" : "declined",
                      opsc_snmp_reason_name(r.rc));
    }
    if (r.decided_fast) {
        (*(r.rc == 0 ? fast_ok : fast_drop))++;
    } else {
        (*declined)++;
    }
    equiv_result_free(&r);
}

static void test_corpus_equivalence(void **state) {
    (void)state;
    size_t ok = 0, drop = 0, declined = 0;
    for (size_t i = 0; i < ncases; i++) {
        check_case(cases[i].name, cases[i].b.p, cases[i].b.n, &ok, &drop, &declined);
    }
    print_message("%zu datagrams: fast path accepted %zu, dropped %zu; declined to net-snmp %zu\n",
                  ncases, ok, drop, declined);
    /* The fast path must be the one doing the ordinary work, or this test proves little. */
    assert_true(ok >= 60);
    assert_true(declined >= 40);
}

/* Every captured v1/v2c seed is canonical: the fast path decides each of them. */
static void test_seeds_take_fast_path(void **state) {
    (void)state;
    size_t seen = 0;
    for (size_t i = 0; i < ncases; i++) {
        if (strncmp(cases[i].name, "seed v1", 7) != 0 &&
            strncmp(cases[i].name, "seed v2c", 8) != 0) {
            continue;
        }
        equiv_result_t r = EQUIV_RESULT_INIT;
        assert_int_equal(
            equiv_run(dec, cases[i].b.p, cases[i].b.n, (const struct sockaddr *)&from4, &r), 1);
        if (!r.decided_fast || r.rc != 0) {
            fail_msg("%s: decided by %s, rc %d", cases[i].name,
                     r.decided_fast ? "fast" : "net-snmp", r.rc);
        }
        equiv_result_free(&r);
        seen++;
    }
    assert_true(seen >= 10);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* One random edit: flip a bit, set an interesting byte, truncate, insert, delete, repeat. */
static size_t mutate(const unsigned char *in, size_t n, unsigned char *out, size_t cap) {
    static const unsigned char interesting[] = {0x00, 0x01, 0x04, 0x05, 0x06, 0x30, 0x40, 0x43,
                                                0x44, 0x46, 0x7f, 0x80, 0x81, 0x82, 0x9f, 0xff};
    if (n > cap) {
        n = cap;
    }
    memcpy(out, in, n);
    int edits = 1 + (int)(rnd() % 3);
    for (int e = 0; e < edits && n > 0; e++) {
        size_t at = rnd() % n;
        switch (rnd() % 6) {
        case 0:
            out[at] ^= (unsigned char)(1u << (rnd() % 8));
            break;
        case 1:
            out[at] = interesting[rnd() % sizeof(interesting)];
            break;
        case 2:
            n = at + 1;
            break;
        case 3:
            if (n < cap) {
                memmove(out + at + 1, out + at, n - at);
                out[at] = (unsigned char)rnd();
                n++;
            }
            break;
        case 4:
            memmove(out + at, out + at + 1, n - at - 1);
            n--;
            break;
        default:
            out[at] = (unsigned char)(out[at] + (rnd() % 2 ? 1 : -1));
            break;
        }
    }
    return n;
}

static void test_mutations_equivalence(void **state) {
    (void)state;
    enum { N = 200000 };
    static unsigned char work[70000];
    size_t ok = 0, drop = 0, declined = 0;
    char name[96];
    for (int i = 0; i < N; i++) {
        size_t k = rnd() % ncases;
        if (cases[k].b.n > 4096) {
            continue; /* the huge cases add time, not coverage */
        }
        size_t n = mutate(cases[k].b.p, cases[k].b.n, work, sizeof(work));
        snprintf(name, sizeof(name), "mutation %d of %.60s", i, cases[k].name);
        check_case(name, work, n, &ok, &drop, &declined);
    }
    print_message("%d mutations: fast path accepted %zu, dropped %zu; declined %zu\n", N, ok, drop,
                  declined);
    assert_true(ok > 1000);
}

/* A few values by hand, so "equal" also means "right". */
static void test_values(void **state) {
    (void)state;
    blob_t m = v2c_trap(cat(
        5, vb(IFINDEX, integer(-129)), vb("1.3.6.1.4.1.9.1", unsig(0x46, UINT64_MAX)),
        vb("1.3.6.1.4.1.9.2", octets("eth0")), vb("1.3.6.1.4.1.9.3", oid("1.3.6.1.4.1.4294967295")),
        vb("1.3.6.1.6.3.18.1.3.0", tlv(0x40, hex("0a0b0c0d")))));
    unsigned char work[512];
    memcpy(work, m.p, m.n);
    opsc_trap_t t;
    opsc_buf_t reply = OPSC_BUF_INIT;
    uint64_t f0, d0, f1, d1;
    opsc__snmp_path_stats(dec, &f0, &d0);
    assert_int_equal(opsc_snmp_decode(dec, work, m.n, (const struct sockaddr *)&from4, &t, &reply),
                     0);
    opsc__snmp_path_stats(dec, &f1, &d1);
    assert_int_equal(f1, f0 + 1);
    assert_int_equal(t.version, 1);
    assert_int_equal(t.pdu, OPSC_PDU_TRAP_V2);
    assert_int_equal(t.request_id, 4242);
    assert_string_equal(t.community, "public");
    assert_int_equal(t.uptime_ticks, 123456);
    char buf[256];
    opsc_oid_format(t.trap_oid, t.trap_oid_len, buf, sizeof(buf));
    assert_string_equal(buf, LINKDOWN);
    assert_int_equal(t.nvarbinds, 5);
    assert_int_equal(t.varbinds[0].type, OPSC_VB_INTEGER);
    assert_int_equal(t.varbinds[0].i, -129);
    assert_int_equal(t.varbinds[1].type, OPSC_VB_COUNTER64);
    assert_true(t.varbinds[1].u == UINT64_MAX);
    assert_int_equal(t.varbinds[2].bytes_len, 4);
    assert_memory_equal(t.varbinds[2].bytes, "eth0", 4);
    /* zero-copy: the string points into the datagram */
    assert_true(t.varbinds[2].bytes >= work && t.varbinds[2].bytes < work + m.n);
    opsc_oid_format(t.varbinds[3].oid_value, t.varbinds[3].oid_value_len, buf, sizeof(buf));
    assert_string_equal(buf, "1.3.6.1.4.1.4294967295");
    assert_int_equal(t.has_agent_addr, 1);
    assert_memory_equal(t.agent_addr, "\x0a\x0b\x0c\x0d", 4);
    assert_int_equal(reply.len, 0);

    /* An INFORM: answered with a Response of the same request-id and varbinds. */
    m = v2c_inform(vb(IFINDEX, integer(3)));
    memcpy(work, m.p, m.n);
    assert_int_equal(opsc_snmp_decode(dec, work, m.n, (const struct sockaddr *)&from4, &t, &reply),
                     0);
    assert_int_equal(t.pdu, OPSC_PDU_INFORM);
    assert_int_equal(t.request_id, 77);
    blob_t want = tlv(
        0x30,
        cat(3, integer(1), octets("public"),
            tlv(0xa2, cat(4, integer(77), integer(0), integer(0),
                          tlv(0x30, cat(3, vb(SYSUPTIME, unsig(0x43, 99)),
                                        vb(TRAPOID, oid(LINKDOWN)), vb(IFINDEX, integer(3))))))));
    assert_int_equal(reply.len, want.n);
    assert_memory_equal(reply.base, want.p, want.n);

    /* v1 enterpriseSpecific: enterprise.0.specific. */
    m = v1_msg("1.3.6.1.4.1.9.1", ip4(), 6, 17, unsig(0x43, 100), empty());
    memcpy(work, m.p, m.n);
    assert_int_equal(opsc_snmp_decode(dec, work, m.n, (const struct sockaddr *)&from4, &t, NULL),
                     0);
    opsc_oid_format(t.trap_oid, t.trap_oid_len, buf, sizeof(buf));
    assert_string_equal(buf, "1.3.6.1.4.1.9.1.0.17");
    assert_int_equal(t.generic_trap, 6);
    assert_int_equal(t.specific_trap, 17);
    assert_int_equal(t.uptime_ticks, 100);
    opsc_buf_free(&reply);
}

static int setup(void **state) {
    (void)state;
    char err[512];
    opsc_log_set_level(OPSC_LOG_ERROR);
    opsc_engine_id_t engine;
    assert_int_equal(
        opsc_engine_id_parse("0x80001f88056f707363666173743031", &engine, err, sizeof(err)), 0);
    opsc_snmp_decoder_options_t o;
    memset(&o, 0, sizeof(o));
    o.engine_id = engine.bytes; /* no communities: any is accepted, so every PDU is reached */
    o.engine_id_len = engine.len;
    o.engine_boots = 1;
    o.log_component = "snmp-fast-test";
    if (opsc_snmp_decoder_create(&o, &dec, err, sizeof(err)) != 0) {
        fail_msg("decoder_create: %s", err);
    }
    from4.sin_family = AF_INET;
    from4.sin_port = htons(50162);
    from4.sin_addr.s_addr = htonl(0x7f000001);
    verbose = getenv("TEST_SNMP_FAST_VERBOSE") != NULL;
    load_seeds();
    build_generated();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    opsc_snmp_decoder_destroy(dec);
    blobs_free();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_seeds_take_fast_path),
        cmocka_unit_test(test_corpus_equivalence),
        cmocka_unit_test(test_mutations_equivalence),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
