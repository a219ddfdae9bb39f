/*
 * Trap normalization: the built-in MIB names, the compiled oid_mappings, the
 * key (fingerprint, discriminator, device) and the full alert, from
 * hand-built opsc_trap_t values (no network, no decoder).
 */

/*
 * buf.c with fault injection (STYLE.md 18, as test_buf_metrics does): its
 * definitions replace the library's buf.o, so the normalizer's allocations
 * can be made to fail one by one.
 */
#define OPSC_FAULT_INJECTION 1
#include "core/buf.c"

/* cmocka.h needs these first, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "opsc/alert.h"
#include "opsc/error.h"
#include "opsc/normalize.h"
#include "pipeline/normalize_int.h"

/* ---- fixtures ------------------------------------------------------------------------------ */

#define COLD "1.3.6.1.6.3.1.1.5.1"
#define WARM "1.3.6.1.6.3.1.1.5.2"
#define LINKDOWN "1.3.6.1.6.3.1.1.5.3"
#define LINKUP "1.3.6.1.6.3.1.1.5.4"
#define AUTHFAIL "1.3.6.1.6.3.1.1.5.5"
#define IFINDEX "1.3.6.1.2.1.2.2.1.1"
#define IFDESCR "1.3.6.1.2.1.2.2.1.2"
#define IFPHYS "1.3.6.1.2.1.2.2.1.6"
#define IFADMIN "1.3.6.1.2.1.2.2.1.7"
#define IFOPER "1.3.6.1.2.1.2.2.1.8"
#define IFNAME "1.3.6.1.2.1.31.1.1.1.1"
#define IFALIAS "1.3.6.1.2.1.31.1.1.1.18"

/* The seed's five rows (001_core_schema.sql) plus the pairing of migration 002. */
static const opsc_oid_mapping_t seed_rows[] = {
    {.id = "seed-cold",
     .oid_pattern = COLD,
     .alert_type = "cold_start",
     .category = "network",
     .default_severity = "warning",
     .title_template = "Device Cold Start - {device_name}",
     .description = "Device has rebooted (cold start)"},
    {.id = "seed-warm",
     .oid_pattern = WARM,
     .alert_type = "warm_start",
     .category = "network",
     .default_severity = "info",
     .title_template = "Device Warm Start - {device_name}",
     .description = "Device has rebooted (warm start)"},
    {.id = "seed-down",
     .oid_pattern = LINKDOWN,
     .alert_type = "link_down",
     .category = "network",
     .default_severity = "major",
     .title_template = "Interface Down - {device_name}",
     .description = "Network interface has gone down",
     .clear_oid_pattern = LINKUP},
    {.id = "seed-up",
     .oid_pattern = LINKUP,
     .alert_type = "link_up",
     .category = "network",
     .default_severity = "clear",
     .title_template = "Interface Up - {device_name}",
     .description = "Network interface has come up",
     .is_clear_event = 1},
    {.id = "seed-auth",
     .oid_pattern = AUTHFAIL,
     .alert_type = "auth_failure",
     .category = "security",
     .default_severity = "warning",
     .title_template = "Authentication Failure - {device_name}",
     .description = "SNMP authentication failure"},
};
#define NSEED (sizeof(seed_rows) / sizeof(seed_rows[0]))

static const opsc_device_ref_t devices[] = {
    {.ip = "10.0.0.1", .name = "core-sw1", .site = "hq"},
    {.ip = "10.0.0.2/24", .name = "edge-rtr", .site = "branch", .vendor = "cisco"},
    {.ip = "2001:db8::5", .name = "v6-host"},
    {.ip = "not-an-ip", .name = "broken"},
    {.ip = "10.0.0.1", .name = "duplicate"},
};
#define NDEV (sizeof(devices) / sizeof(devices[0]))

static opsc_normalizer_t *seed_normalizer(void) {
    char err[256] = "";
    opsc_normalizer_t *n =
        opsc_normalizer_create(seed_rows, NSEED, devices, NDEV, err, sizeof(err));
    if (!n) {
        fail_msg("normalizer_create: %s", err);
    }
    return n;
}

/* A hand-built trap with its own storage for OIDs and varbinds. */
#define MAXVB 12
typedef struct trapb_s {
    opsc_trap_t t;
    uint32_t trap_oid[OPSC_OID_MAX];
    uint32_t ent[OPSC_OID_MAX];
    uint32_t vb_oid[MAXVB][OPSC_OID_MAX];
    uint32_t vb_val[MAXVB][OPSC_OID_MAX];
    opsc_varbind_t vbs[MAXVB];
} trapb_t;

static uint32_t parse_oid(const char *s, uint32_t *out) {
    int n = opsc__oid_parse(s, strlen(s), out, OPSC_OID_MAX, NULL);
    assert_true(n > 0);
    return (uint32_t)n;
}

static void set_from(trapb_t *b, const char *ip, uint16_t port) {
    memset(&b->t.from, 0, sizeof(b->t.from));
    if (!ip) {
        return;
    }
    struct sockaddr_in sin = {0};
    struct sockaddr_in6 sin6 = {0};
    if (inet_pton(AF_INET, ip, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        memcpy(&b->t.from, &sin, sizeof(sin));
    } else {
        assert_int_equal(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(port);
        memcpy(&b->t.from, &sin6, sizeof(sin6));
    }
}

/* v2c trap (version 1) from ip:port, community "public". */
static void tb_init(trapb_t *b, const char *trap_oid, const char *ip) {
    memset(b, 0, sizeof(*b));
    b->t.version = 1;
    b->t.pdu = OPSC_PDU_TRAP_V2;
    b->t.request_id = 4242;
    strcpy(b->t.community, "public");
    b->t.trap_oid = b->trap_oid;
    b->t.trap_oid_len = parse_oid(trap_oid, b->trap_oid);
    b->t.generic_trap = -1;
    b->t.uptime_ticks = 123456;
    b->t.varbinds = b->vbs;
    set_from(b, ip, 50162);
}

static opsc_varbind_t *tb_vb(trapb_t *b, const char *oid) {
    assert_true(b->t.nvarbinds < MAXVB);
    size_t i = b->t.nvarbinds++;
    opsc_varbind_t *vb = &b->vbs[i];
    memset(vb, 0, sizeof(*vb));
    vb->oid = b->vb_oid[i];
    vb->oid_len = parse_oid(oid, b->vb_oid[i]);
    return vb;
}

static void tb_int(trapb_t *b, const char *oid, int64_t v) {
    opsc_varbind_t *vb = tb_vb(b, oid);
    vb->type = OPSC_VB_INTEGER;
    vb->i = v;
}

static void tb_bytes(trapb_t *b, const char *oid, const void *p, size_t n) {
    opsc_varbind_t *vb = tb_vb(b, oid);
    vb->type = OPSC_VB_OCTETS;
    vb->bytes = p;
    vb->bytes_len = (uint32_t)n;
}

static void tb_str(trapb_t *b, const char *oid, const char *s) {
    tb_bytes(b, oid, s, strlen(s));
}

static void tb_ip(trapb_t *b, const char *oid, const unsigned char *a4) {
    opsc_varbind_t *vb = tb_vb(b, oid);
    vb->type = OPSC_VB_IPADDR;
    vb->bytes = a4;
    vb->bytes_len = 4;
}

static void tb_oidval(trapb_t *b, const char *oid, const char *val) {
    size_t i = b->t.nvarbinds;
    opsc_varbind_t *vb = tb_vb(b, oid);
    vb->type = OPSC_VB_OID;
    vb->oid_value = b->vb_val[i];
    vb->oid_value_len = parse_oid(val, b->vb_val[i]);
}

/* A standard linkDown/linkUp for ifIndex idx (IF-MIB: ifIndex, ifAdminStatus, ifOperStatus). */
static void tb_link(trapb_t *b, const char *trap_oid, const char *ip, int idx, int status) {
    char o[64];
    tb_init(b, trap_oid, ip);
    snprintf(o, sizeof(o), IFINDEX ".%d", idx);
    tb_int(b, o, idx);
    snprintf(o, sizeof(o), IFADMIN ".%d", idx);
    tb_int(b, o, 1);
    snprintf(o, sizeof(o), IFOPER ".%d", idx);
    tb_int(b, o, status);
}

/* key + full, asserting success; returns a new alert. */
static opsc_alert_t *normalize(const opsc_normalizer_t *n, const trapb_t *b, opsc_trap_key_t *key) {
    assert_int_equal(opsc_normalize_key(n, &b->t, key), 0);
    opsc_alert_t *a = opsc_alert_new();
    assert_non_null(a);
    assert_int_equal(opsc_normalize_full(n, &b->t, key, 1763777641000000, a), 0);
    return a;
}

static int reset_faults(void **state) {
    (void)state;
    opsc__alloc_fail_after = -1;
    return 0;
}

/* ---- MIB names ----------------------------------------------------------------------------- */

static void test_mib_table_sorted_unique(void **state) {
    (void)state;
    size_t n = opsc_mibnames_count();
    assert_true(n > 150);
    for (size_t i = 0; i < n; i++) {
        const opsc_mib_name_t *e = opsc_mibnames_at(i);
        assert_true(e->oid_len > 0 && e->oid_len <= 16);
        if (i > 0) {
            const opsc_mib_name_t *p = opsc_mibnames_at(i - 1);
            uint32_t m = p->oid_len < e->oid_len ? p->oid_len : e->oid_len;
            int c = 0;
            for (uint32_t k = 0; k < m && c == 0; k++) {
                c = p->oid[k] < e->oid[k] ? -1 : p->oid[k] > e->oid[k];
            }
            if (c == 0) {
                c = p->oid_len < e->oid_len ? -1 : 1;
            }
            if (c >= 0) {
                fail_msg("table out of OID order at %s::%s", e->module, e->name);
            }
        }
        /* Reachable both ways, and names are unique. */
        assert_ptr_equal(opsc_mibnames_find(e->name), e);
        assert_ptr_equal(opsc_mibnames_lookup(e->oid, e->oid_len), e);
    }
    assert_null(opsc_mibnames_at(n));
}

static void test_mib_lookup_both_ways(void **state) {
    (void)state;
    uint32_t oid[OPSC_OID_MAX];
    char buf[256];
    struct {
        const char *oid, *text;
    } cases[] = {
        {IFINDEX ".3", "IF-MIB::ifIndex.3"},
        {IFDESCR ".10101", "IF-MIB::ifDescr.10101"},
        {IFNAME ".7", "IF-MIB::ifName.7"},
        {"1.3.6.1.2.1.1.5.0", "SNMPv2-MIB::sysName.0"},
        {"1.3.6.1.2.1.1.3.0", "SNMPv2-MIB::sysUpTime.0"},
        {LINKDOWN, "IF-MIB::linkDown"},
        {COLD, "SNMPv2-MIB::coldStart"},
        {"1.3.6.1.6.3.1.1.5.6", "RFC1213-MIB::egpNeighborLoss"},
        {"1.3.6.1.6.3.1.1.5.7", "SNMPv2-MIB::snmpTraps.7"},
        {"1.3.6.1.6.3.1.1.4.1.0", "SNMPv2-MIB::snmpTrapOID.0"},
        {"1.3.6.1.6.3.1.1.4.3.0", "SNMPv2-MIB::snmpTrapEnterprise.0"},
        {"1.3.6.1.6.3.18.1.3.0", "SNMP-COMMUNITY-MIB::snmpTrapAddress.0"},
        {"1.3.6.1.6.3.18.1.4.0", "SNMP-COMMUNITY-MIB::snmpTrapCommunity.0"},
        {"1.3.6.1.2.1.15.3.1.2.192.0.2.7", "BGP4-MIB::bgpPeerState.192.0.2.7"},
        {"1.3.6.1.2.1.15.7.2", "BGP4-MIB::bgpBackwardTransition"},
        {"1.3.6.1.2.1.15.0.1", "BGP4-MIB::bgpEstablishedNotification"},
        {"1.3.6.1.2.1.15.0.2", "BGP4-MIB::bgpBackwardTransNotification"},
        {"1.3.6.1.2.1.47.2.0.1", "ENTITY-MIB::entConfigChange"},
        {"1.3.6.1.2.1.47.1.1.1.1.7.1001", "ENTITY-MIB::entPhysicalName.1001"},
        {"1.3.6.1.2.1.14.16.2.2", "OSPF-TRAP-MIB::ospfNbrStateChange"},
        {"1.3.6.1.2.1.33.2.1", "UPS-MIB::upsTrapOnBattery"},
        {"1.3.6.1.4.1.8072.4.0.2", "NET-SNMP-AGENT-MIB::nsNotifyShutdown"},
        {"1.3.6.1.4.1.9.9.41.2.0.1", "SNMPv2-SMI::enterprises.9.9.41.2.0.1"},
        {"1.3.6.1.2.1.2.2.1", "SNMPv2-SMI::mib-2.2.2.1"}, /* ifEntry: not in the table */
        {"1.3.6.1.2.1.2.2.1.23.1", "SNMPv2-SMI::mib-2.2.2.1.23.1"},
        {"1.2.840.10036.1", "1.2.840.10036.1"},
        {"1.3.6.1", "1.3.6.1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t len = parse_oid(cases[i].oid, oid);
        size_t k = opsc_mibnames_format(oid, len, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].text);
        assert_int_equal(k, strlen(cases[i].text));
    }

    /* Instance suffix separately: lookup returns the entry, the rest is the index. */
    uint32_t len = parse_oid(IFADMIN ".3", oid);
    const opsc_mib_name_t *e = opsc_mibnames_lookup(oid, len);
    assert_non_null(e);
    assert_string_equal(e->module, "IF-MIB");
    assert_string_equal(e->name, "ifAdminStatus");
    assert_int_equal(e->kind, OPSC_MIB_COLUMN);
    assert_int_equal(len - e->oid_len, 1);
    assert_int_equal(oid[e->oid_len], 3);
    assert_null(opsc_mibnames_lookup(oid, 3)); /* 1.3.6 */

    /* Reverse: plain or qualified; the module must match. */
    e = opsc_mibnames_find("ifIndex");
    assert_non_null(e);
    assert_ptr_equal(opsc_mibnames_find("IF-MIB::ifIndex"), e);
    assert_null(opsc_mibnames_find("SNMPv2-MIB::ifIndex"));
    assert_null(opsc_mibnames_find("ifindex"));
    assert_null(opsc_mibnames_find("ifInde"));
    assert_null(opsc_mibnames_find("IF-MIB::"));
    assert_null(opsc_mibnames_find(""));
    assert_null(opsc_mibnames_find(NULL));
    e = opsc_mibnames_find("linkUp");
    assert_int_equal(e->kind, OPSC_MIB_NOTIFICATION);
    assert_int_equal(e->oid_len, 10);
    assert_int_equal(e->oid[9], 4);
    assert_int_equal(opsc_mibnames_find("sysName")->kind, OPSC_MIB_SCALAR);
    assert_int_equal(opsc_mibnames_find("enterprises")->kind, OPSC_MIB_NODE);

    /* Enumerations. */
    assert_string_equal(opsc_mibnames_enum_label(opsc_mibnames_find("ifOperStatus"), 2), "down");
    assert_string_equal(opsc_mibnames_enum_label(opsc_mibnames_find("ifOperStatus"), 7),
                        "lowerLayerDown");
    assert_string_equal(opsc_mibnames_enum_label(opsc_mibnames_find("ifAdminStatus"), 1), "up");
    assert_string_equal(opsc_mibnames_enum_label(opsc_mibnames_find("bgpPeerState"), 6),
                        "established");
    assert_string_equal(opsc_mibnames_enum_label(opsc_mibnames_find("ifType"), 6),
                        "ethernetCsmacd");
    assert_null(opsc_mibnames_enum_label(opsc_mibnames_find("ifOperStatus"), 99));
    assert_null(opsc_mibnames_enum_label(opsc_mibnames_find("ifDescr"), 1));
    assert_null(opsc_mibnames_enum_label(NULL, 1));

    /* Truncation never overruns and stays NUL-terminated. */
    len = parse_oid(IFINDEX ".3", oid);
    char small[8];
    assert_int_equal(opsc_mibnames_format(oid, len, small, sizeof(small)), 7);
    assert_string_equal(small, "IF-MIB:");
    assert_int_equal(opsc_mibnames_format(oid, len, small, 1), 0);
    assert_string_equal(small, "");
    len = parse_oid("1.2.3333333.4", oid);
    assert_int_equal(opsc_mibnames_format(oid, len, small, sizeof(small)), 7);
    assert_string_equal(small, "1.2.333");

    /* Object names as templates and discriminators write them. */
    int k = opsc__object_resolve("ifDescr", 7, oid, OPSC_OID_MAX);
    assert_int_equal(k, 10);
    k = opsc__object_resolve("IF-MIB::ifDescr.3", 17, oid, OPSC_OID_MAX);
    assert_int_equal(k, 11);
    assert_int_equal(oid[10], 3);
    assert_int_equal(opsc__object_resolve(".1.3.6.1", 8, oid, OPSC_OID_MAX), 4);
    assert_int_equal(opsc__object_resolve("nosuchname", 10, oid, OPSC_OID_MAX), OPSC_ENOTFOUND);
    assert_int_equal(opsc__object_resolve("ifDescr.", 8, oid, OPSC_OID_MAX), OPSC_EPARSE);
    assert_int_equal(opsc__object_resolve("ifDescr.x", 9, oid, OPSC_OID_MAX), OPSC_EPARSE);
    assert_int_equal(opsc__object_resolve("ifDescr..3", 10, oid, OPSC_OID_MAX), OPSC_EPARSE);
    assert_int_equal(opsc__object_resolve("1.3.x", 5, oid, OPSC_OID_MAX), OPSC_EPARSE);
}

/* ---- OID patterns and mappings ------------------------------------------------------------- */

static void test_pattern_parse(void **state) {
    (void)state;
    uint32_t oid[OPSC_OID_MAX];
    int wc = -1;
    const char *why = NULL;
    assert_int_equal(opsc_oidmap_pattern_parse("1.3.6.1.4.1.6141.*", oid, OPSC_OID_MAX, &wc, &why),
                     7);
    assert_int_equal(wc, 1);
    assert_int_equal(oid[6], 6141);
    assert_int_equal(opsc_oidmap_pattern_parse(".1.3.6.1", oid, OPSC_OID_MAX, &wc, &why), 4);
    assert_int_equal(wc, 0);
    assert_int_equal(opsc_oidmap_pattern_parse("0", oid, OPSC_OID_MAX, &wc, &why), 1);
    assert_int_equal(opsc_oidmap_pattern_parse("1.4294967295", oid, OPSC_OID_MAX, &wc, &why), 2);
    assert_int_equal(oid[1], 4294967295u);
    static const char *const bad[] = {"",           "*",       ".*",   ".",         "1..3",
                                      "1.3.",       "1.3.*.4", "1.3*", "1.3.6.*.*", " 1.3",
                                      "1.3 ",       "1.a.3",   "01.3", "1.03",      "1.4294967296",
                                      "1.3.6.1.-1", "1.3,6.1", "..1.3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        if (opsc_oidmap_pattern_parse(bad[i], oid, OPSC_OID_MAX, &wc, &why) != OPSC_EPARSE) {
            fail_msg("accepted bad pattern '%s'", bad[i]);
        }
        assert_non_null(why);
    }
    assert_int_equal(opsc_oidmap_pattern_parse(NULL, oid, OPSC_OID_MAX, &wc, &why), OPSC_EPARSE);
    /* 129 sub-identifiers is one too many */
    char longp[600] = "1";
    for (int i = 1; i < 129; i++) {
        strcat(longp, ".1");
    }
    assert_int_equal(opsc_oidmap_pattern_parse(longp, oid, OPSC_OID_MAX, &wc, &why), OPSC_EPARSE);
    longp[strlen(longp) - 2] = '\0';
    assert_int_equal(opsc_oidmap_pattern_parse(longp, oid, OPSC_OID_MAX, &wc, &why), 128);

    /* Matching semantics: exact is equal; wildcard is strictly under. */
    uint32_t p[8] = {1, 3, 6, 1, 4, 1, 6141};
    opsc_oid_pattern_t exact = {p, 7, 0}, wild = {p, 7, 1};
    uint32_t o[9] = {1, 3, 6, 1, 4, 1, 6141, 2, 1};
    assert_true(opsc_oidmap_pattern_match(&exact, o, 7));
    assert_false(opsc_oidmap_pattern_match(&exact, o, 8));
    assert_false(opsc_oidmap_pattern_match(&wild, o, 7));
    assert_true(opsc_oidmap_pattern_match(&wild, o, 8));
    assert_true(opsc_oidmap_pattern_match(&wild, o, 9));
    o[6] = 6142;
    assert_false(opsc_oidmap_pattern_match(&wild, o, 9));
    opsc_oid_pattern_t none = {NULL, 0, 0};
    assert_false(opsc_oidmap_pattern_match(&none, o, 9));
}

#define ROW(pat, vend, type)                                                                       \
    {                                                                                              \
        .oid_pattern = (pat), .vendor = (vend), .alert_type = (type), .category = "network",       \
        .default_severity = "minor"                                                                \
    }

static const char *match_type(const opsc_oidmap_t *m, const char *oid, const char *vendor) {
    uint32_t o[OPSC_OID_MAX];
    uint32_t len = parse_oid(oid, o);
    const opsc_oid_rule_t *r = opsc_oidmap_match(m, o, len, vendor);
    return r ? r->row.alert_type : "(none)";
}

static void test_oidmap_precedence(void **state) {
    (void)state;
    const opsc_oid_mapping_t rows[] = {
        ROW("1.3.6.1.4.1.6141.2.60.1.0.1", NULL, "exact_generic"),
        ROW("1.3.6.1.4.1.6141.*", NULL, "ciena_any"),
        ROW("1.3.6.1.4.1.6141.2.*", NULL, "ciena2_generic"),
        ROW("1.3.6.1.4.1.6141.2.*", "ciena", "ciena2_vendor"),
        ROW("1.3.6.1.4.1.6141.2.60.1.0.1", "ciena", "exact_ciena"),
        ROW("1.3.6.1.4.1.6141.2.60.1.0.1", "adva", "exact_adva"),
        ROW("1.3.6.1.4.1.*", NULL, "enterprise_any"),
        ROW("1.3.6.1.4.1.705.*", "eaton", "eaton_only"),
        ROW("1.3.6.1.4.1.705.*", "apc", "apc_only"),
        ROW("1.3.6.1.6.3.1.1.5.3", NULL, "link_down"),
    };
    char err[256];
    opsc_oidmap_t *m = opsc_oidmap_create(rows, sizeof(rows) / sizeof(rows[0]), err, sizeof(err));
    assert_non_null(m);
    assert_int_equal(opsc_oidmap_count(m), 10);
    assert_string_equal(opsc_oidmap_rule(m, 3)->row.alert_type, "ciena2_vendor");
    assert_null(opsc_oidmap_rule(m, 10));

    const char *ex = "1.3.6.1.4.1.6141.2.60.1.0.1";
    /* Exact beats every wildcard; vendor rows beat the generic one when the vendor is unknown. */
    assert_string_equal(match_type(m, ex, NULL), "exact_adva"); /* first vendor row by name */
    assert_string_equal(match_type(m, ex, "ciena"), "exact_ciena");
    assert_string_equal(match_type(m, ex, "CIENA"), "exact_ciena");
    assert_string_equal(match_type(m, ex, "adva"), "exact_adva");
    assert_string_equal(match_type(m, ex, "cisco"), "exact_generic");
    assert_string_equal(match_type(m, ex, ""), "exact_adva");
    /* Longest wildcard. */
    assert_string_equal(match_type(m, "1.3.6.1.4.1.6141.2.60.1.0.2", NULL), "ciena2_vendor");
    assert_string_equal(match_type(m, "1.3.6.1.4.1.6141.2.60.1.0.2", "cisco"), "ciena2_generic");
    assert_string_equal(match_type(m, "1.3.6.1.4.1.6141.2.1", "ciena"), "ciena2_vendor");
    assert_string_equal(match_type(m, "1.3.6.1.4.1.6141.2", NULL), "ciena_any"); /* not under .2 */
    assert_string_equal(match_type(m, "1.3.6.1.4.1.6141.3.1", NULL), "ciena_any");
    assert_string_equal(match_type(m, "1.3.6.1.4.1.6141", NULL), "enterprise_any");
    assert_string_equal(match_type(m, "1.3.6.1.4.1.9.9.41.2.0.1", NULL), "enterprise_any");
    assert_string_equal(match_type(m, "1.3.6.1.4.1", NULL), "(none)");
    /* Only vendor rows for a pattern: a known other vendor still gets the first (no generic). */
    assert_string_equal(match_type(m, "1.3.6.1.4.1.705.1.11.0.3", "eaton"), "eaton_only");
    assert_string_equal(match_type(m, "1.3.6.1.4.1.705.1.11.0.3", "apc"), "apc_only");
    assert_string_equal(match_type(m, "1.3.6.1.4.1.705.1.11.0.3", NULL), "apc_only");
    assert_string_equal(match_type(m, "1.3.6.1.4.1.705.1.11.0.3", "cisco"), "apc_only");
    assert_string_equal(match_type(m, LINKDOWN, NULL), "link_down");
    assert_string_equal(match_type(m, LINKDOWN ".0", NULL), "(none)");
    assert_string_equal(match_type(m, "1.3.6.1.6.3.1.1.5", NULL), "(none)");
    assert_null(opsc_oidmap_match(m, NULL, 0, NULL));
    opsc_oidmap_destroy(m);

    /* An empty snapshot matches nothing. */
    m = opsc_oidmap_create(NULL, 0, err, sizeof(err));
    assert_non_null(m);
    assert_string_equal(match_type(m, LINKDOWN, NULL), "(none)");
    opsc_oidmap_destroy(m);
    opsc_oidmap_destroy(NULL);
}

static void expect_reject(const opsc_oid_mapping_t *bad, const char *needle) {
    opsc_oid_mapping_t rows[2] = {ROW(COLD, NULL, "cold_start"), *bad};
    char err[256] = "";
    opsc_oidmap_t *m = opsc_oidmap_create(rows, 2, err, sizeof(err));
    if (m) {
        opsc_oidmap_destroy(m);
        fail_msg("accepted a bad row (expected '%s')", needle);
    }
    if (!strstr(err, "rows[1]") || !strstr(err, needle)) {
        fail_msg("error '%s' does not name rows[1] and '%s'", err, needle);
    }
}

static void test_oidmap_rejects_bad_rows(void **state) {
    (void)state;
    opsc_oid_mapping_t r = ROW("1.3.6..1", NULL, "x");
    r.id = "7f1c";
    expect_reject(&r, "invalid oid_pattern: empty sub-identifier");
    expect_reject(&r, "id 7f1c, oid_pattern '1.3.6..1'");
    r = (opsc_oid_mapping_t)ROW("1.3.6.1.4.1.6141*", NULL, "x");
    expect_reject(&r, "invalid oid_pattern");
    r = (opsc_oid_mapping_t)ROW(NULL, NULL, "x");
    expect_reject(&r, "invalid oid_pattern: empty pattern");
    r = (opsc_oid_mapping_t)ROW("1.3.6.1.4.1.9.*", NULL, "");
    expect_reject(&r, "alert_type is empty");
    r = (opsc_oid_mapping_t)ROW("1.3.6.1.4.1.9.*", NULL, "x");
    r.category = "weather";
    expect_reject(&r, "invalid category 'weather'");
    r = (opsc_oid_mapping_t)ROW("1.3.6.1.4.1.9.*", NULL, "x");
    r.default_severity = "fatal";
    expect_reject(&r, "invalid default_severity 'fatal'");
    r = (opsc_oid_mapping_t)ROW("1.3.6.1.4.1.9.*", NULL, "x");
    r.clear_oid_pattern = "1.3.6.x";
    expect_reject(&r, "invalid clear_oid_pattern '1.3.6.x'");
    r = (opsc_oid_mapping_t)ROW("1.3.6.1.4.1.9.*", NULL, "x");
    r.discriminator = "ifNoSuchThing";
    expect_reject(&r, "discriminator 'ifNoSuchThing' names no known MIB object");
    r.discriminator = "1.3..6";
    expect_reject(&r, "discriminator '1.3..6'");
    r = (opsc_oid_mapping_t)ROW(COLD, NULL, "again");
    expect_reject(&r, "same oid_pattern and vendor as rows[0]");
    r = (opsc_oid_mapping_t)ROW("." COLD, "", "again"); /* "" vendor is generic; .OID the same */
    expect_reject(&r, "same oid_pattern and vendor as rows[0]");

    /* Accepted: vendor row next to the generic one; discriminators of every kind. */
    const char *ok_disc[] = {NULL, "", "none", "ifDescr", "IF-MIB::ifName", IFDESCR, "ifDescr.3"};
    for (size_t i = 0; i < sizeof(ok_disc) / sizeof(ok_disc[0]); i++) {
        opsc_oid_mapping_t rows[2] = {ROW(COLD, NULL, "cold_start"), ROW(COLD, "cisco", "c")};
        rows[1].discriminator = ok_disc[i];
        char err[256] = "";
        opsc_oidmap_t *m = opsc_oidmap_create(rows, 2, err, sizeof(err));
        if (!m) {
            fail_msg("rejected discriminator '%s': %s", ok_disc[i] ? ok_disc[i] : "NULL", err);
        }
        const opsc_oid_rule_t *rule = opsc_oidmap_rule(m, 1);
        opsc_disc_kind_t want = !ok_disc[i] || !*ok_disc[i]       ? OPSC_DISC_INDEX
                                : strcmp(ok_disc[i], "none") == 0 ? OPSC_DISC_NONE
                                                                  : OPSC_DISC_VARBIND;
        assert_int_equal(rule->disc, want);
        opsc_oidmap_destroy(m);
    }

    /* The normalizer passes the message through. */
    opsc_oid_mapping_t rows[1] = {ROW("bogus", NULL, "x")};
    char err[256] = "";
    assert_null(opsc_normalizer_create(rows, 1, NULL, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "rows[0]"));
}

/* ---- the seeded mappings ------------------------------------------------------------------- */

static void test_seed_mappings(void **state) {
    (void)state;
    opsc_normalizer_t *n = seed_normalizer();
    struct {
        const char *oid, *type, *sev, *cat, *title, *message;
        int is_clear;
    } want[] = {
        {COLD, "cold_start", "warning", "network", "Device Cold Start - core-sw1",
         "Device has rebooted (cold start)", 0},
        {WARM, "warm_start", "info", "network", "Device Warm Start - core-sw1",
         "Device has rebooted (warm start)", 0},
        {LINKDOWN, "link_down", "major", "network", "Interface Down - core-sw1",
         "Network interface has gone down", 0},
        {LINKUP, "link_up", "clear", "network", "Interface Up - core-sw1",
         "Network interface has come up", 1},
        {AUTHFAIL, "auth_failure", "warning", "security", "Authentication Failure - core-sw1",
         "SNMP authentication failure", 0},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        trapb_t b;
        tb_link(&b, want[i].oid, "10.0.0.1", 3, 2);
        opsc_trap_key_t key;
        opsc_alert_t *a = normalize(n, &b, &key);
        assert_non_null(key.rule);
        assert_string_equal(key.alert_type, want[i].type);
        assert_int_equal(key.is_clear, want[i].is_clear);
        assert_string_equal(a->source_system, "snmp");
        assert_string_equal(a->alert_type, want[i].type);
        assert_string_equal(opsc_severity_name(a->severity), want[i].sev);
        assert_string_equal(opsc_category_name(a->category), want[i].cat);
        assert_string_equal(a->title, want[i].title);
        assert_string_equal(a->message, want[i].message);
        assert_int_equal(a->is_clear, want[i].is_clear);
        assert_string_equal(a->device_ip, "10.0.0.1");
        assert_string_equal(a->device_name, "core-sw1");
        assert_int_equal(a->status, OPSC_STATUS_ACTIVE);
        assert_int_equal(a->occurrence_count, 1);
        assert_string_equal(a->fingerprint, key.fingerprint);
        opsc_alert_free(a);

        /* A device the snapshot does not know: the title falls back to its address. */
        tb_link(&b, want[i].oid, "192.0.2.77", 3, 2);
        a = normalize(n, &b, &key);
        assert_null(key.device);
        assert_null(a->device_name);
        assert_string_equal(a->device_ip, "192.0.2.77");
        char t[128];
        snprintf(t, sizeof(t), "%.*s192.0.2.77", (int)(strlen(want[i].title) - strlen("core-sw1")),
                 want[i].title);
        assert_string_equal(a->title, t);
        opsc_alert_free(a);
    }
    opsc_normalizer_destroy(n);
}

static void test_unknown_trap(void **state) {
    (void)state;
    opsc_normalizer_t *n = seed_normalizer();
    trapb_t b;
    tb_init(&b, "1.3.6.1.4.1.9999.0.17", "10.0.0.1");
    tb_str(&b, "1.3.6.1.4.1.9999.1.1.0", "door open");
    opsc_trap_key_t key;
    opsc_alert_t *a = normalize(n, &b, &key);
    assert_null(key.rule);
    assert_string_equal(key.alert_type, "unknown_trap");
    assert_string_equal(a->alert_type, "unknown_trap");
    assert_int_equal(a->category, OPSC_CAT_UNKNOWN);
    assert_int_equal(a->severity, OPSC_SEV_WARNING);
    assert_int_equal(a->is_clear, 0);
    assert_string_equal(a->title, "Unknown trap 1.3.6.1.4.1.9999.0.17 from core-sw1");
    assert_string_equal(a->message, "No oid_mappings row matches trap OID 1.3.6.1.4.1.9999.0.17");
    opsc_alert_free(a);

    /* Known to the name table but not mapped: name and OID in the title. */
    tb_init(&b, "1.3.6.1.2.1.15.7.2", "198.51.100.9");
    a = normalize(n, &b, &key);
    assert_string_equal(a->title,
                        "Unknown trap BGP4-MIB::bgpBackwardTransition (1.3.6.1.2.1.15.7.2) "
                        "from 198.51.100.9");
    opsc_alert_free(a);
    opsc_normalizer_destroy(n);
}

/* ---- templates ----------------------------------------------------------------------------- */

static opsc_normalizer_t *one_rule(const char *pattern, const char *tmpl, const char *disc) {
    opsc_oid_mapping_t row = ROW(pattern, NULL, "custom");
    row.title_template = tmpl;
    row.discriminator = disc;
    char err[256] = "";
    opsc_normalizer_t *n = opsc_normalizer_create(&row, 1, devices, NDEV, err, sizeof(err));
    if (!n) {
        fail_msg("create: %s", err);
    }
    return n;
}

static char *title_of(const opsc_normalizer_t *n, const trapb_t *b) {
    opsc_trap_key_t key;
    opsc_alert_t *a = normalize(n, b, &key);
    char *t = strdup(a->title);
    opsc_alert_free(a);
    return t;
}

static void assert_title(const opsc_normalizer_t *n, const trapb_t *b, const char *want) {
    char *t = title_of(n, b);
    if (strcmp(t, want) != 0) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "title '%s' != '%s'", t, want);
        free(t);
        fail_msg("%s", msg);
    }
    free(t);
}

static void test_template_placeholders(void **state) {
    (void)state;
    opsc_normalizer_t *n = one_rule(
        LINKDOWN,
        "{device_name}|{device_ip}|{trap_oid}|{trap_name}|{ifIndex}|{ifDescr}|{" IFDESCR
        "}|{IF-MIB::ifOperStatus}|{ifAdminStatus.3}|{interface}|{ifPhysAddress}|{nope}|{ifAlias}|"
        "{IF-MIB::nope}|{1.3.6.1.9}|{}|{ {device_ip}|{unclosed",
        NULL);
    trapb_t b;
    static const unsigned char mac[6] = {0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e};
    tb_link(&b, LINKDOWN, "10.0.0.1", 3, 2);
    tb_str(&b, IFDESCR ".3", "GigabitEthernet0/3");
    tb_bytes(&b, IFPHYS ".3", mac, sizeof(mac));
    assert_title(n, &b,
                 "core-sw1|10.0.0.1|1.3.6.1.6.3.1.1.5.3|linkDown|3|GigabitEthernet0/3|"
                 "GigabitEthernet0/3|down|up|GigabitEthernet0/3|00:1a:2b:3c:4d:5e|{nope}|"
                 "{ifAlias}|{IF-MIB::nope}|{1.3.6.1.9}|{}|{ 10.0.0.1|{unclosed");
    opsc_normalizer_destroy(n);

    /* Unknown device: {device_name} is the address; trap names fall back to the OID. */
    n = one_rule("1.3.6.1.4.1.9999.*", "{trap_name} on {device_name} ({sysName})", NULL);
    tb_init(&b, "1.3.6.1.4.1.9999.0.1", "203.0.113.5");
    assert_title(n, &b, "1.3.6.1.4.1.9999.0.1 on 203.0.113.5 ({sysName})");
    tb_str(&b, "1.3.6.1.2.1.1.5.0", "ups-3");
    assert_title(n, &b, "1.3.6.1.4.1.9999.0.1 on 203.0.113.5 (ups-3)");
    opsc_normalizer_destroy(n);

    /* Value kinds: OID values by name, IpAddress, counters, binary octets. */
    n = one_rule("1.3.6.1.2.1.33.2.*",
                 "{upsAlarmDescr}/{bgpPeerRemoteAddr}/{ifHighSpeed}/{sysDescr}", NULL);
    static const unsigned char ip4[4] = {192, 0, 2, 7};
    static const unsigned char bin[3] = {0xff, 0x00, 0x10};
    tb_init(&b, "1.3.6.1.2.1.33.2.3", "10.0.0.1");
    tb_oidval(&b, "1.3.6.1.2.1.33.1.6.2.1.2.5", "1.3.6.1.2.1.33.1.6.3.2");
    tb_ip(&b, "1.3.6.1.2.1.15.3.1.7.192.0.2.7", ip4);
    opsc_varbind_t *vb = tb_vb(&b, "1.3.6.1.2.1.31.1.1.1.15.3");
    vb->type = OPSC_VB_GAUGE32;
    vb->u = 10000;
    tb_bytes(&b, "1.3.6.1.2.1.1.1.0", bin, sizeof(bin));
    assert_title(n, &b, "upsAlarmOnBattery/192.0.2.7/10000/ff:00:10");
    opsc_normalizer_destroy(n);

    /* NULL or empty template: "{trap_name} - {device_name}". */
    n = one_rule(LINKDOWN, NULL, NULL);
    tb_link(&b, LINKDOWN, "10.0.0.2", 1, 2);
    assert_title(n, &b, "linkDown - edge-rtr");
    opsc_normalizer_destroy(n);
    n = one_rule(LINKDOWN, "", NULL);
    assert_title(n, &b, "linkDown - edge-rtr");
    opsc_normalizer_destroy(n);
}

static void test_template_interface_fallbacks(void **state) {
    (void)state;
    opsc_normalizer_t *n = one_rule(LINKDOWN, "Down: {interface}", NULL);
    trapb_t b;
    tb_link(&b, LINKDOWN, "10.0.0.1", 5, 2);
    tb_str(&b, IFDESCR ".5", "GigabitEthernet0/5");
    tb_str(&b, IFNAME ".5", "Gi0/5");
    assert_title(n, &b, "Down: Gi0/5");

    tb_link(&b, LINKDOWN, "10.0.0.1", 5, 2);
    tb_str(&b, IFNAME ".5", ""); /* empty ifName: next choice */
    tb_str(&b, IFDESCR ".5", "GigabitEthernet0/5");
    assert_title(n, &b, "Down: GigabitEthernet0/5");

    tb_link(&b, LINKDOWN, "10.0.0.1", 5, 2);
    assert_title(n, &b, "Down: 5"); /* ifIndex value */

    tb_init(&b, LINKDOWN, "10.0.0.1");
    tb_int(&b, IFOPER ".9", 2); /* no ifIndex varbind: the row index */
    assert_title(n, &b, "Down: 9");

    tb_init(&b, LINKDOWN, "10.0.0.1");
    tb_int(&b, IFALIAS ".11", 2);
    assert_title(n, &b, "Down: 11");

    tb_init(&b, LINKDOWN, "10.0.0.1");
    assert_title(n, &b, "Down: {interface}");
    opsc_normalizer_destroy(n);
}

static void test_template_truncation(void **state) {
    (void)state;
    opsc_normalizer_t *n = one_rule(LINKDOWN, "{ifDescr}", NULL);
    trapb_t b;
    /* 300 two-byte characters: 255 kept (characters, as VARCHAR counts), never split. */
    char *big = malloc(601);
    for (int i = 0; i < 300; i++) {
        memcpy(big + 2 * i, "\xc3\xa9", 2); /* é */
    }
    big[600] = '\0';
    tb_init(&b, LINKDOWN, "10.0.0.1");
    tb_str(&b, IFDESCR ".1", big);
    char *t = title_of(n, &b);
    assert_int_equal(strlen(t), 510);
    assert_memory_equal(t, big, 510);
    free(t);

    /* An odd cut point for 4-byte characters. */
    for (int i = 0; i < 150; i++) {
        memcpy(big + 4 * i, "\xf0\x9f\x94\xa5", 4);
    }
    big[600] = '\0';
    tb_init(&b, LINKDOWN, "10.0.0.1");
    tb_str(&b, IFDESCR ".1", big);
    t = title_of(n, &b);
    assert_int_equal(strlen(t), 600); /* 150 characters: all kept */
    free(t);
    opsc_normalizer_destroy(n);

    /* A long literal template is cut at 255 characters too; controls become spaces. */
    char tmpl[400];
    memset(tmpl, 'x', 300);
    tmpl[300] = '\0';
    n = one_rule(LINKDOWN, tmpl, NULL);
    t = title_of(n, &b);
    assert_int_equal(strlen(t), 255);
    free(t);
    opsc_normalizer_destroy(n);

    n = one_rule(LINKDOWN, "[{ifDescr}]", NULL);
    tb_init(&b, LINKDOWN, "10.0.0.1");
    tb_str(&b, IFDESCR ".1", "a\tb\r\nc");
    assert_title(n, &b, "[a b  c]");
    opsc_normalizer_destroy(n);
    free(big);
}

/* ---- discriminator and fingerprint --------------------------------------------------------- */

static void key_of(const opsc_normalizer_t *n, const trapb_t *b, opsc_trap_key_t *key) {
    assert_int_equal(opsc_normalize_key(n, &b->t, key), 0);
}

static void test_fingerprint_and_discriminator(void **state) {
    (void)state;
    opsc_normalizer_t *n = seed_normalizer();
    trapb_t b;
    opsc_trap_key_t k3, k3b, k4, kdev, kup;
    tb_link(&b, LINKDOWN, "10.0.0.1", 3, 2);
    key_of(n, &b, &k3);
    assert_string_equal(k3.discriminator, "3");
    assert_string_equal(k3.device_ip, "10.0.0.1");
    /* Known vector: SHA-256("snmp\0" "10.0.0.1\0" "link_down\0" "3\0"). */
    assert_string_equal(k3.fingerprint,
                        "103b5f479db597aa961dab2a4c03131d9505515af309eb16f7e2c4c994141327");
    char fp[OPSC_FINGERPRINT_HEX];
    opsc_normalize_fingerprint("snmp", "10.0.0.1", "link_down", "3", fp);
    assert_string_equal(fp, k3.fingerprint);
    /* Fields are separated: moving a byte between them changes the hash. */
    opsc_normalize_fingerprint("snmp", "10.0.0.1", "link_down3", "", fp);
    assert_string_not_equal(fp, k3.fingerprint);
    opsc_normalize_fingerprint(NULL, NULL, NULL, NULL, fp);
    assert_string_equal(fp, "df3f619804a92fdb4057192dc43dd748ea778adc52bc498ce80524c014b81119");

    key_of(n, &b, &k3b); /* same trap twice */
    assert_string_equal(k3.fingerprint, k3b.fingerprint);
    tb_link(&b, LINKDOWN, "10.0.0.1", 3, 7); /* other values, same instance */
    key_of(n, &b, &k3b);
    assert_string_equal(k3.fingerprint, k3b.fingerprint);
    tb_link(&b, LINKDOWN, "10.0.0.1", 4, 2);
    key_of(n, &b, &k4);
    assert_string_equal(k4.discriminator, "4");
    assert_string_not_equal(k3.fingerprint, k4.fingerprint);
    tb_link(&b, LINKDOWN, "10.0.0.9", 3, 2);
    key_of(n, &b, &kdev);
    assert_string_not_equal(k3.fingerprint, kdev.fingerprint);
    tb_link(&b, LINKUP, "10.0.0.1", 3, 1);
    key_of(n, &b, &kup);
    assert_string_equal(kup.discriminator, "3");
    assert_string_not_equal(k3.fingerprint, kup.fingerprint);

    /* Scalars are skipped; the first table column wins; multi-part indexes stay whole. */
    tb_init(&b, "1.3.6.1.2.1.15.0.2", "10.0.0.1");
    tb_str(&b, "1.3.6.1.2.1.1.5.0", "r1");
    static const unsigned char peer[4] = {192, 0, 2, 7};
    tb_ip(&b, "1.3.6.1.2.1.15.3.1.7.192.0.2.7", peer);
    tb_int(&b, "1.3.6.1.2.1.15.3.1.2.192.0.2.7", 1);
    opsc_trap_key_t k;
    key_of(n, &b, &k);
    assert_string_equal(k.discriminator, "192.0.2.7");

    /* No table column at all: "" (one alert per device and type). */
    tb_init(&b, COLD, "10.0.0.1");
    tb_str(&b, "1.3.6.1.2.1.1.5.0", "r1");
    tb_str(&b, "1.3.6.1.4.1.9.2.1.2.0", "reload");
    key_of(n, &b, &k);
    assert_string_equal(k.discriminator, "");
    opsc_normalizer_destroy(n);
}

static void test_mapping_discriminator(void **state) {
    (void)state;
    trapb_t b;
    opsc_trap_key_t k1, k2;

    /* "none": every instance is the same alert. */
    opsc_normalizer_t *n = one_rule(LINKDOWN, NULL, "none");
    tb_link(&b, LINKDOWN, "10.0.0.1", 3, 2);
    key_of(n, &b, &k1);
    tb_link(&b, LINKDOWN, "10.0.0.1", 4, 2);
    key_of(n, &b, &k2);
    assert_string_equal(k1.discriminator, "");
    assert_string_equal(k1.fingerprint, k2.fingerprint);
    opsc_normalizer_destroy(n);

    /* A varbind's value, by name or by numeric OID. */
    const char *discs[] = {"ifDescr", IFDESCR, "IF-MIB::ifDescr"};
    for (size_t i = 0; i < 3; i++) {
        n = one_rule(LINKDOWN, NULL, discs[i]);
        tb_link(&b, LINKDOWN, "10.0.0.1", 3, 2);
        tb_str(&b, IFDESCR ".3", "Gi0/3");
        key_of(n, &b, &k1);
        assert_string_equal(k1.discriminator, "Gi0/3");
        tb_link(&b, LINKDOWN, "10.0.0.1", 4, 2); /* no ifDescr: the default (index) */
        key_of(n, &b, &k2);
        assert_string_equal(k2.discriminator, "4");
        opsc_normalizer_destroy(n);
    }

    /* Enumerations stay numeric in a discriminator; binary octets in hex. */
    n = one_rule(LINKDOWN, NULL, "ifOperStatus");
    tb_link(&b, LINKDOWN, "10.0.0.1", 3, 2);
    key_of(n, &b, &k1);
    assert_string_equal(k1.discriminator, "2");
    opsc_normalizer_destroy(n);
    n = one_rule(LINKDOWN, NULL, "ifPhysAddress");
    static const unsigned char mac[6] = {0, 1, 2, 0xaa, 0xbb, 0xcc};
    tb_link(&b, LINKDOWN, "10.0.0.1", 3, 2);
    tb_bytes(&b, IFPHYS ".3", mac, 6);
    key_of(n, &b, &k1);
    assert_string_equal(k1.discriminator, "00:01:02:aa:bb:cc");
    opsc_normalizer_destroy(n);

    /* Long values are cut at the buffer on a character boundary. */
    n = one_rule(LINKDOWN, NULL, "ifDescr");
    char big[700];
    for (int i = 0; i < 300; i++) {
        memcpy(big + 2 * i, "\xc3\xa9", 2); /* é: 255 bytes would split one */
    }
    big[600] = '\0';
    tb_link(&b, LINKDOWN, "10.0.0.1", 3, 2);
    tb_str(&b, IFDESCR ".3", big);
    key_of(n, &b, &k1);
    assert_int_equal(strlen(k1.discriminator), 254);
    assert_memory_equal(k1.discriminator, big, 254);
    opsc_normalizer_destroy(n);
}

/* ---- clears -------------------------------------------------------------------------------- */

static void test_clear_matching(void **state) {
    (void)state;
    opsc_normalizer_t *n = seed_normalizer();
    trapb_t down3, down4, up3, up3other, cold;
    opsc_trap_key_t kd3, kd4, ku3, ku3o, kc;
    tb_link(&down3, LINKDOWN, "10.0.0.1", 3, 2);
    tb_link(&down4, LINKDOWN, "10.0.0.1", 4, 2);
    tb_link(&up3, LINKUP, "10.0.0.1", 3, 1);
    tb_link(&up3other, LINKUP, "10.0.0.2", 3, 1);
    tb_init(&cold, COLD, "10.0.0.1");
    key_of(n, &down3, &kd3);
    key_of(n, &down4, &kd4);
    key_of(n, &up3, &ku3);
    key_of(n, &up3other, &ku3o);
    key_of(n, &cold, &kc);
    assert_false(kd3.is_clear);
    assert_true(ku3.is_clear);

    /* The pattern level: linkDown's clear_oid_pattern is linkUp, nothing else. */
    assert_true(opsc_normalize_clears(n, kd3.rule, &up3.t));
    assert_false(opsc_normalize_clears(n, kd3.rule, &cold.t));
    assert_false(opsc_normalize_clears(n, kd3.rule, &down4.t));
    assert_false(opsc_normalize_clears(n, kc.rule, &up3.t));
    assert_false(opsc_normalize_clears(n, NULL, &up3.t));

    /* The fingerprint level: linkUp idx 3 resolves linkDown idx 3 on the same device only. */
    char fps[4][OPSC_FINGERPRINT_HEX];
    size_t k = opsc_normalize_clear_fingerprints(n, &up3.t, &ku3, fps, 4);
    assert_int_equal(k, 1);
    assert_string_equal(fps[0], kd3.fingerprint);
    assert_string_not_equal(fps[0], kd4.fingerprint);
    k = opsc_normalize_clear_fingerprints(n, &up3other.t, &ku3o, fps, 4);
    assert_int_equal(k, 1);
    assert_string_not_equal(fps[0], kd3.fingerprint);
    assert_int_equal(opsc_normalize_clear_fingerprints(n, &cold.t, &kc, fps, 4), 0);
    assert_int_equal(opsc_normalize_clear_fingerprints(n, &up3.t, &ku3, fps, 0), 0);
    opsc_normalizer_destroy(n);

    /* Wildcard clears: every matching pattern counts, alert_types distinct. */
    opsc_oid_mapping_t rows[] = {
        ROW("1.3.6.1.4.1.6141.2.60.1.0.1", NULL, "optical_los"),
        ROW("1.3.6.1.4.1.6141.2.60.1.0.1", "ciena", "optical_los"),
        ROW("1.3.6.1.4.1.6141.2.60.1.0.3", NULL, "optical_power"),
        ROW("1.3.6.1.4.1.6141.2.60.1.0.9", NULL, "ciena_alarm_cleared"),
    };
    rows[0].clear_oid_pattern = "1.3.6.1.4.1.6141.2.60.1.0.9";
    rows[1].clear_oid_pattern = "1.3.6.1.4.1.6141.2.60.1.0.9";
    rows[2].clear_oid_pattern = "1.3.6.1.4.1.6141.2.*";
    rows[3].is_clear_event = 1;
    char err[256];
    n = opsc_normalizer_create(rows, 4, devices, NDEV, err, sizeof(err));
    assert_non_null(n);
    trapb_t c;
    opsc_trap_key_t kcl;
    tb_init(&c, "1.3.6.1.4.1.6141.2.60.1.0.9", "10.0.0.1");
    key_of(n, &c, &kcl);
    assert_true(kcl.is_clear);
    const char *types[8];
    k = opsc_oidmap_clear_types(opsc_normalizer_oidmap(n), c.t.trap_oid, c.t.trap_oid_len, types,
                                8);
    assert_int_equal(k, 2);
    assert_true((strcmp(types[0], "optical_los") == 0 && strcmp(types[1], "optical_power") == 0) ||
                (strcmp(types[1], "optical_los") == 0 && strcmp(types[0], "optical_power") == 0));
    assert_int_equal(opsc_oidmap_clear_types(opsc_normalizer_oidmap(n), c.t.trap_oid,
                                             c.t.trap_oid_len, types, 1),
                     1);
    opsc_normalizer_destroy(n);
}

/* ---- addresses ----------------------------------------------------------------------------- */

static void test_address_precedence(void **state) {
    (void)state;
    opsc_normalizer_t *n = seed_normalizer();
    assert_int_equal(opsc_normalizer_devices_skipped(n), 2); /* "not-an-ip" and the duplicate */
    trapb_t b;
    opsc_trap_key_t k;
    static const unsigned char a2[4] = {10, 0, 0, 2}, a1[4] = {10, 0, 0, 1}, zero[4] = {0};

    /* v1: agent-addr beats the UDP source (and matches the NetBox-style "10.0.0.2/24"). */
    tb_init(&b, COLD, "192.0.2.1");
    b.t.version = 0;
    b.t.pdu = OPSC_PDU_TRAP_V1;
    b.t.generic_trap = 0;
    memcpy(b.t.agent_addr, a2, 4);
    b.t.has_agent_addr = 1;
    key_of(n, &b, &k);
    assert_string_equal(k.device_ip, "10.0.0.2");
    assert_non_null(k.device);
    assert_string_equal(k.device->name, "edge-rtr");
    assert_string_equal(k.device->site, "branch");

    /* agent-addr 0.0.0.0 counts as absent. */
    memcpy(b.t.agent_addr, zero, 4);
    key_of(n, &b, &k);
    assert_string_equal(k.device_ip, "192.0.2.1");
    assert_null(k.device);

    /* v2c: an snmpTrapAddress.0 varbind beats the UDP source (a relay or NAT). */
    tb_init(&b, COLD, "192.0.2.1");
    tb_ip(&b, "1.3.6.1.6.3.18.1.3.0", a1);
    key_of(n, &b, &k);
    assert_string_equal(k.device_ip, "10.0.0.1");
    assert_string_equal(k.device->name, "core-sw1");
    /* ...and the decoder's agent_addr (its reading of snmpTrapAddress.0) beats both. */
    memcpy(b.t.agent_addr, a2, 4);
    b.t.has_agent_addr = 1;
    key_of(n, &b, &k);
    assert_string_equal(k.device_ip, "10.0.0.2");

    /* Nothing else: the UDP source. IPv4-mapped IPv6 is shown as IPv4. */
    tb_init(&b, COLD, "::ffff:10.0.0.1");
    key_of(n, &b, &k);
    assert_string_equal(k.device_ip, "10.0.0.1");
    assert_string_equal(k.device->name, "core-sw1");
    tb_init(&b, COLD, "2001:db8:0::5");
    key_of(n, &b, &k);
    assert_string_equal(k.device_ip, "2001:db8::5");
    assert_string_equal(k.device->name, "v6-host");
    tb_init(&b, COLD, "2001:db8::6");
    key_of(n, &b, &k);
    assert_null(k.device);

    /* Not normalizable: no address at all, no trap OID. */
    tb_init(&b, COLD, NULL);
    assert_int_equal(opsc_normalize_key(n, &b.t, &k), OPSC_EPARSE);
    tb_init(&b, COLD, "::");
    assert_int_equal(opsc_normalize_key(n, &b.t, &k), OPSC_EPARSE);
    tb_init(&b, COLD, "10.0.0.1");
    b.t.trap_oid_len = 0;
    assert_int_equal(opsc_normalize_key(n, &b.t, &k), OPSC_EPARSE);
    opsc_normalizer_destroy(n);
}

/* ---- the full alert and raw_data ----------------------------------------------------------- */

static json_t *vb_at(json_t *root, size_t i) {
    json_t *vbs = json_object_get(root, "varbinds");
    assert_true(json_is_array(vbs));
    json_t *v = json_array_get(vbs, i);
    assert_non_null(v);
    return v;
}

static const char *jget_s(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    if (!json_is_string(v)) {
        fail_msg("'%s' is not a string", k);
    }
    return json_string_value(v);
}

static void test_full_alert_and_raw_data(void **state) {
    (void)state;
    opsc_normalizer_t *n = seed_normalizer();
    trapb_t b;
    static const unsigned char mac[6] = {0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e};
    tb_link(&b, LINKDOWN, "10.0.0.1", 3, 2);
    tb_str(&b, IFDESCR ".3", "Gi0/3\0\0"); /* DisplayString with trailing NULs */
    b.vbs[3].bytes_len = 7;
    tb_bytes(&b, IFPHYS ".3", mac, sizeof(mac));
    opsc_varbind_t *vb = tb_vb(&b, "1.3.6.1.4.1.9.9.1.0");
    vb->type = OPSC_VB_COUNTER64;
    vb->u = UINT64_MAX;
    tb_oidval(&b, "1.3.6.1.2.1.1.2.0", "1.3.6.1.4.1.8072.3.2.10");
    vb = tb_vb(&b, "1.3.6.1.2.1.1.9.1.2.1");
    vb->type = OPSC_VB_NOSUCHINSTANCE;
    strcpy(b.t.community, "s3cret");

    opsc_trap_key_t key;
    assert_int_equal(opsc_normalize_key(n, &b.t, &key), 0);
    opsc_alert_t *a = opsc_alert_new();
    /* Fields already set are replaced, not leaked (ASan checks). */
    opsc_alert_set(&a->title, "old");
    opsc_alert_set(&a->raw_data_json, "{}");
    assert_int_equal(opsc_normalize_full(n, &b.t, &key, 1763777641000000, a), 0);
    assert_string_equal(a->source_alert_id, "10.0.0.1/1.3.6.1.6.3.1.1.5.3/3");
    assert_int_equal(a->occurred_at_us, 1763777641000000);
    assert_int_equal(a->received_at_us, 1763777641000000);
    assert_int_equal(a->last_occurrence_at_us, 1763777641000000);
    opsc_uuid_t zero_id = {{0}};
    assert_memory_not_equal(&a->id, &zero_id, sizeof(zero_id));
    assert_string_equal(a->fingerprint, key.fingerprint);
    assert_string_equal(a->title, "Interface Down - core-sw1");

    json_error_t jerr;
    json_t *root = json_loads(a->raw_data_json, 0, &jerr);
    if (!root) {
        fail_msg("raw_data is not JSON: %s: %s", jerr.text, a->raw_data_json);
    }
    assert_string_equal(jget_s(root, "version"), "v2c");
    assert_string_equal(jget_s(root, "pdu"), "trap");
    assert_int_equal(json_integer_value(json_object_get(root, "request_id")), 4242);
    json_t *src = json_object_get(root, "source");
    assert_string_equal(jget_s(src, "address"), "10.0.0.1");
    assert_int_equal(json_integer_value(json_object_get(src, "port")), 50162);
    assert_string_equal(jget_s(root, "community"), "s***");
    assert_null(strstr(a->raw_data_json, "s3cret"));
    assert_null(json_object_get(root, "v3"));
    assert_true(json_is_null(json_object_get(root, "enterprise")));
    assert_int_equal(json_integer_value(json_object_get(root, "uptime")), 123456);
    assert_string_equal(jget_s(root, "trap_oid"), LINKDOWN);
    assert_string_equal(jget_s(root, "trap_name"), "IF-MIB::linkDown");

    json_t *v = vb_at(root, 0);
    assert_string_equal(jget_s(v, "oid"), IFINDEX ".3");
    assert_string_equal(jget_s(v, "name"), "IF-MIB::ifIndex.3");
    assert_string_equal(jget_s(v, "type"), "Integer32");
    assert_int_equal(json_integer_value(json_object_get(v, "value")), 3);
    v = vb_at(root, 2);
    assert_string_equal(jget_s(v, "name"), "IF-MIB::ifOperStatus.3");
    assert_int_equal(json_integer_value(json_object_get(v, "value")), 2);
    assert_string_equal(jget_s(v, "enum"), "down");
    v = vb_at(root, 3);
    assert_string_equal(jget_s(v, "type"), "OctetString");
    assert_string_equal(jget_s(v, "value"), "Gi0/3");
    assert_string_equal(jget_s(v, "encoding"), "text");
    v = vb_at(root, 4);
    assert_string_equal(jget_s(v, "value"), "00:1a:2b:3c:4d:5e");
    assert_string_equal(jget_s(v, "encoding"), "hex");
    v = vb_at(root, 5);
    assert_string_equal(jget_s(v, "type"), "Counter64");
    assert_string_equal(jget_s(v, "value"), "18446744073709551615");
    assert_string_equal(jget_s(v, "name"), "SNMPv2-SMI::enterprises.9.9.1.0");
    v = vb_at(root, 6);
    assert_string_equal(jget_s(v, "type"), "ObjectIdentifier");
    assert_string_equal(jget_s(v, "value"), "1.3.6.1.4.1.8072.3.2.10");
    assert_string_equal(jget_s(v, "value_name"), "SNMPv2-SMI::enterprises.8072.3.2.10");
    v = vb_at(root, 7);
    assert_string_equal(jget_s(v, "type"), "noSuchInstance");
    assert_true(json_is_null(json_object_get(v, "value")));
    json_decref(root);
    opsc_alert_free(a);

    /* v1 and v3 specifics; unprintable security names go out as hex. */
    tb_init(&b, "1.3.6.1.4.1.8072.4.0.2", "10.0.0.1");
    b.t.version = 0;
    b.t.pdu = OPSC_PDU_TRAP_V1;
    b.t.generic_trap = 6;
    b.t.specific_trap = 2;
    b.t.enterprise = b.ent;
    b.t.enterprise_len = parse_oid("1.3.6.1.4.1.8072.4", b.ent);
    b.t.community[0] = '\x01';
    /* Characters JSON must escape, and non-ASCII text. */
    tb_str(&b, "1.3.6.1.2.1.1.6.0", "rack \"A\"\\1\tB\r\n\xe2\x82\xac/\x7f");
    a = normalize(n, &b, &key);
    root = json_loads(a->raw_data_json, 0, &jerr);
    if (!root) {
        fail_msg("raw_data is not JSON: %s: %s", jerr.text, a->raw_data_json);
    }
    v = vb_at(root, 0);
    assert_string_equal(jget_s(v, "name"), "SNMPv2-MIB::sysLocation.0");
    assert_string_equal(jget_s(v, "encoding"), "hex"); /* DEL is not printable */
    json_decref(root);
    opsc_alert_free(a);
    b.t.nvarbinds = 0;
    tb_str(&b, "1.3.6.1.2.1.1.6.0", "rack \"A\"\\1\tB\r\n\xe2\x82\xac/");
    b.t.community[0] = '"';
    a = normalize(n, &b, &key);
    root = json_loads(a->raw_data_json, 0, &jerr);
    if (!root) {
        fail_msg("raw_data is not JSON: %s: %s", jerr.text, a->raw_data_json);
    }
    v = vb_at(root, 0);
    assert_string_equal(jget_s(v, "value"), "rack \"A\"\\1\tB\r\n\xe2\x82\xac/");
    assert_string_equal(jget_s(v, "encoding"), "text");
    assert_string_equal(jget_s(root, "community"), "\"***");
    json_decref(root);
    opsc_alert_free(a);
    b.t.community[0] = '\x01';
    a = normalize(n, &b, &key);
    root = json_loads(a->raw_data_json, 0, &jerr);
    assert_non_null(root);
    assert_string_equal(jget_s(root, "version"), "v1");
    assert_string_equal(jget_s(root, "pdu"), "trap-v1");
    assert_null(json_object_get(root, "request_id"));
    assert_string_equal(jget_s(root, "enterprise"), "1.3.6.1.4.1.8072.4");
    assert_int_equal(json_integer_value(json_object_get(root, "generic_trap")), 6);
    assert_int_equal(json_integer_value(json_object_get(root, "specific_trap")), 2);
    assert_string_equal(jget_s(root, "community"), "****");
    assert_string_equal(jget_s(root, "trap_name"), "NET-SNMP-AGENT-MIB::nsNotifyShutdown");
    assert_string_equal(a->title, "Unknown trap NET-SNMP-AGENT-MIB::nsNotifyShutdown "
                                  "(1.3.6.1.4.1.8072.4.0.2) from core-sw1");
    json_decref(root);
    opsc_alert_free(a);

    tb_init(&b, COLD, "2001:db8::5");
    b.t.version = 3;
    b.t.pdu = OPSC_PDU_INFORM;
    b.t.community[0] = '\0';
    strcpy(b.t.user, "ops\xff");
    strcpy(b.t.engine_id_hex, "80001f8880e9630000d61ff449");
    b.t.security_level = 3;
    a = normalize(n, &b, &key);
    root = json_loads(a->raw_data_json, 0, &jerr);
    assert_non_null(root);
    assert_string_equal(jget_s(root, "version"), "v3");
    assert_string_equal(jget_s(root, "pdu"), "inform");
    assert_null(json_object_get(root, "community"));
    json_t *v3 = json_object_get(root, "v3");
    assert_string_equal(jget_s(v3, "engine_id"), "80001f8880e9630000d61ff449");
    assert_string_equal(jget_s(v3, "user"), "6f:70:73:ff");
    assert_string_equal(jget_s(v3, "security_level"), "authPriv");
    assert_string_equal(jget_s(json_object_get(root, "source"), "address"), "2001:db8::5");
    assert_string_equal(a->device_name, "v6-host");
    assert_string_equal(a->source_alert_id, "2001:db8::5/1.3.6.1.6.3.1.1.5.1");
    json_decref(root);
    opsc_alert_free(a);
    opsc_normalizer_destroy(n);
}

/* ---- out of memory ------------------------------------------------------------------------- */

static void test_allocation_failures(void **state) {
    (void)state;
    /* Every allocation of create, then of full, fails in turn: an error, never a crash or leak. */
    int created = 0;
    for (long k = 0; k < 400 && !created; k++) {
        char err[256] = "";
        opsc__alloc_fail_after = k;
        opsc_normalizer_t *n =
            opsc_normalizer_create(seed_rows, NSEED, devices, NDEV, err, sizeof(err));
        opsc__alloc_fail_after = -1;
        if (n) {
            created = 1;
            opsc_normalizer_destroy(n);
        } else {
            assert_non_null(strstr(err, "out of memory"));
        }
    }
    assert_true(created);

    opsc_normalizer_t *n = seed_normalizer();
    trapb_t b;
    tb_link(&b, LINKDOWN, "10.0.0.1", 3, 2);
    tb_str(&b, IFPHYS ".3", "\x01\x02");
    opsc_trap_key_t key;
    assert_int_equal(opsc_normalize_key(n, &b.t, &key), 0);
    int done = 0;
    for (long k = 0; k < 200 && !done; k++) {
        opsc_alert_t *a = opsc_alert_new();
        assert_non_null(a);
        opsc__alloc_fail_after = k;
        int rc = opsc_normalize_full(n, &b.t, &key, 1, a);
        opsc__alloc_fail_after = -1;
        if (rc == 0) {
            done = 1;
            assert_non_null(a->raw_data_json);
        } else {
            assert_int_equal(rc, OPSC_ENOMEM);
        }
        opsc_alert_free(a);
    }
    assert_true(done);
    opsc_normalizer_destroy(n);
}

/* ---- micro-benchmark (printed, not asserted) ----------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_bench_normalize_key(void **state) {
    (void)state;
    /* The seed plus 200 vendor wildcard rows and 2,000 devices, as a busy site might have. */
    enum { NEXTRA = 200, NDEVS = 2000 };
    opsc_oid_mapping_t *rows = calloc(NSEED + NEXTRA, sizeof(*rows));
    char(*pats)[40] = calloc(NEXTRA, sizeof(*pats));
    opsc_device_ref_t *devs = calloc(NDEVS, sizeof(*devs));
    char(*ips)[20] = calloc(NDEVS, sizeof(*ips));
    memcpy(rows, seed_rows, sizeof(seed_rows));
    for (int i = 0; i < NEXTRA; i++) {
        snprintf(pats[i], sizeof(pats[i]), "1.3.6.1.4.1.%d.*", 10000 + i);
        rows[NSEED + i] = (opsc_oid_mapping_t)ROW(pats[i], i % 2 ? "acme" : NULL, "vendor_alarm");
        rows[NSEED + i].clear_oid_pattern = i % 3 ? NULL : pats[i];
    }
    for (int i = 0; i < NDEVS; i++) {
        snprintf(ips[i], sizeof(ips[i]), "10.1.%d.%d", i / 250, i % 250 + 1);
        devs[i].ip = ips[i];
        devs[i].name = "dev";
    }
    char err[256];
    opsc_normalizer_t *n =
        opsc_normalizer_create(rows, NSEED + NEXTRA, devs, NDEVS, err, sizeof(err));
    assert_non_null(n);

    enum { NTRAPS = 64 };
    trapb_t *tr = calloc(NTRAPS, sizeof(*tr));
    for (int i = 0; i < NTRAPS; i++) {
        char ip[20];
        snprintf(ip, sizeof(ip), "10.1.%d.%d", i % 8, i % 200 + 1);
        tb_link(&tr[i], i % 4 == 3 ? "1.3.6.1.4.1.10042.0.7" : LINKDOWN, ip, i % 48 + 1, 2);
        tr[i].t.varbinds = tr[i].vbs;
    }
    opsc_trap_key_t key;
    const long iters = 400000;
    volatile unsigned sink = 0;
    double t0 = now_s();
    for (long i = 0; i < iters; i++) {
        opsc_normalize_key(n, &tr[i % NTRAPS].t, &key);
        sink += (unsigned char)key.fingerprint[0];
    }
    double per_key = (now_s() - t0) / (double)iters * 1e9;

    char fp[OPSC_FINGERPRINT_HEX];
    t0 = now_s();
    for (long i = 0; i < iters; i++) {
        opsc_normalize_fingerprint("snmp", "10.1.0.1", "link_down", "3", fp);
        sink += (unsigned char)fp[0];
    }
    double per_sha = (now_s() - t0) / (double)iters * 1e9;

    const long fulls = 20000;
    t0 = now_s();
    for (long i = 0; i < fulls; i++) {
        const trapb_t *b = &tr[i % NTRAPS];
        opsc_normalize_key(n, &b->t, &key);
        opsc_alert_t *a = opsc_alert_new();
        opsc_normalize_full(n, &b->t, &key, 1, a);
        sink += (unsigned char)a->title[0];
        opsc_alert_free(a);
    }
    double per_full = (now_s() - t0) / (double)fulls * 1e9;
    printf("[ BENCH    ] normalize_key %.0f ns/trap (of which SHA-256 %.0f ns); "
           "key+full+free %.0f ns/first occurrence (%u)\n",
           per_key, per_sha, per_full, sink & 1);

    opsc_normalizer_destroy(n);
    free(tr);
    free(rows);
    free(pats);
    free(devs);
    free(ips);
}

/* The dependency graph: nearest first, transitive, cycle-safe, "/24" ignored. */
static void test_dependency_upstreams(void **state) {
    (void)state;
    char err[256];
    opsc_normalizer_t *n = opsc_normalizer_create(NULL, 0, NULL, 0, err, sizeof(err));
    assert_non_null(n);
    const char *out[8];
    assert_int_equal(opsc_normalizer_upstreams(n, "10.0.0.3", out, 8), 0);
    const opsc_dependency_ref_t deps[] = {
        {"10.0.0.3", "10.0.0.2"}, {"10.0.0.2", "10.0.0.1/24"}, {"10.0.0.1", "10.0.0.3"}, /* cycle */
        {"10.0.0.3", "10.0.0.9"}, {"10.0.0.5", "10.0.0.5"}, /* self: skipped */
        {NULL, "10.0.0.1"},       {"", "10.0.0.1"},           /* skipped */
    };
    assert_int_equal(opsc_normalizer_set_dependencies(n, deps, sizeof(deps) / sizeof(deps[0])), 0);
    assert_int_equal(opsc_normalizer_dependency_count(n), 4);
    size_t c = opsc_normalizer_upstreams(n, "10.0.0.3", out, 8);
    assert_int_equal(c, 3);
    assert_string_equal(out[0], "10.0.0.2"); /* direct ones first */
    assert_string_equal(out[1], "10.0.0.9");
    assert_string_equal(out[2], "10.0.0.1"); /* then transitive; back to .3: cycle stops */
    assert_int_equal(opsc_normalizer_upstreams(n, "10.0.0.3", out, 1), 1);
    assert_int_equal(opsc_normalizer_upstreams(n, "10.0.0.9", out, 8), 0);
    assert_int_equal(opsc_normalizer_upstreams(n, "10.0.0.5", out, 8), 0);
    c = opsc_normalizer_upstreams(n, "10.0.0.1", out, 8);
    assert_int_equal(c, 3);
    assert_string_equal(out[0], "10.0.0.3");
    /* A long chain is followed OPSC_UPSTREAM_DEPTH levels deep. */
    char names[40][16];
    opsc_dependency_ref_t chain[39];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof(names[i]), "10.1.0.%d", i);
    }
    for (int i = 0; i < 39; i++) {
        chain[i] = (opsc_dependency_ref_t){names[i], names[i + 1]};
    }
    assert_int_equal(opsc_normalizer_set_dependencies(n, chain, 39), 0);
    const char *many[64];
    assert_int_equal(opsc_normalizer_upstreams(n, "10.1.0.0", many, 64), OPSC_UPSTREAM_DEPTH);
    assert_int_equal(opsc_normalizer_set_dependencies(n, NULL, 0), 0);
    assert_int_equal(opsc_normalizer_upstreams(n, "10.1.0.0", many, 64), 0);
    opsc_normalizer_destroy(n);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dependency_upstreams),
        cmocka_unit_test(test_mib_table_sorted_unique),
        cmocka_unit_test(test_mib_lookup_both_ways),
        cmocka_unit_test(test_pattern_parse),
        cmocka_unit_test(test_oidmap_precedence),
        cmocka_unit_test(test_oidmap_rejects_bad_rows),
        cmocka_unit_test(test_seed_mappings),
        cmocka_unit_test(test_unknown_trap),
        cmocka_unit_test(test_template_placeholders),
        cmocka_unit_test(test_template_interface_fallbacks),
        cmocka_unit_test(test_template_truncation),
        cmocka_unit_test(test_fingerprint_and_discriminator),
        cmocka_unit_test(test_mapping_discriminator),
        cmocka_unit_test(test_clear_matching),
        cmocka_unit_test(test_address_precedence),
        cmocka_unit_test(test_full_alert_and_raw_data),
        cmocka_unit_test_setup_teardown(test_allocation_failures, reset_faults, reset_faults),
        cmocka_unit_test(test_bench_normalize_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
