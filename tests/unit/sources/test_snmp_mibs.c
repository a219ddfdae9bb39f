/*
 * Names from MIB files (snmp.mib_dirs): a vendor MIB written by the test is
 * read by net-snmp's parser when the decoder is created, and its names then
 * come out of the same lookups as the built-in table's, from any thread.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/normalize.h"
#include "opsc/snmp_decode.h"

static const char acme_mib[] =
    "ACME-MIB DEFINITIONS ::= BEGIN\n"
    "IMPORTS MODULE-IDENTITY, OBJECT-TYPE, NOTIFICATION-TYPE, Integer32 FROM SNMPv2-SMI;\n"
    "acme OBJECT IDENTIFIER ::= { iso 3 6 1 4 1 99999 }\n"
    "acmeObjects OBJECT IDENTIFIER ::= { acme 1 }\n"
    "acmeTraps OBJECT IDENTIFIER ::= { acme 2 }\n"
    "acmeFanIndex OBJECT-TYPE SYNTAX Integer32 (1..64) MAX-ACCESS accessible-for-notify\n"
    "    STATUS current DESCRIPTION \"Fan number.\" ::= { acmeObjects 1 }\n"
    "acmeFanState OBJECT-TYPE SYNTAX INTEGER { ok(1), degraded(2), failed(3) }\n"
    "    MAX-ACCESS accessible-for-notify STATUS current DESCRIPTION \"Fan state.\"\n"
    "    ::= { acmeObjects 2 }\n"
    "acmeFanFailure NOTIFICATION-TYPE OBJECTS { acmeFanIndex, acmeFanState } STATUS current\n"
    "    DESCRIPTION \"A fan failed.\" ::= { acmeTraps 0 1 }\n"
    "acmeDeep OBJECT IDENTIFIER ::= { acme 3 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 }\n"
    "END\n";

static char dir[64];
static opsc_snmp_decoder_t *dec;

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/opsc-mibs-XXXXXX");
    if (!mkdtemp(dir)) {
        return -1;
    }
    char path[128];
    snprintf(path, sizeof(path), "%s/ACME-MIB.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        return -1;
    }
    fputs(acme_mib, f);
    fclose(f);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    opsc_snmp_decoder_destroy(dec);
    char path[128];
    snprintf(path, sizeof(path), "%s/ACME-MIB.txt", dir);
    unlink(path);
    rmdir(dir);
    return 0;
}

static const unsigned char engine[] = {0x80, 0x00, 0x1f, 0x88, 0x04, 't', 'e', 's', 't'};

static void decoder_options(opsc_snmp_decoder_options_t *o, const char *const *dirs, size_t n) {
    memset(o, 0, sizeof(*o));
    o->engine_id = engine;
    o->engine_id_len = sizeof(engine);
    o->log_component = "snmp-test";
    o->mib_dirs = dirs;
    o->nmib_dirs = n;
}

/* Runs first: a missing directory stops the decoder before anything is installed. */
static void test_missing_directory_is_an_error(void **state) {
    (void)state;
    const char *dirs[] = {"/nonexistent/opsc-mibs"};
    opsc_snmp_decoder_options_t o;
    decoder_options(&o, dirs, 1);
    char err[512] = "";
    opsc_snmp_decoder_t *d = NULL;
    assert_int_equal(opsc_snmp_decoder_create(&o, &d, err, sizeof(err)), OPSC_ECONFIG);
    assert_null(d);
    assert_non_null(strstr(err, "snmp.mib_dirs: /nonexistent/opsc-mibs"));
    assert_int_equal(opsc_mibnames_extra_count(), 0);
}

static void test_vendor_names_from_mib_files(void **state) {
    (void)state;
    const char *dirs[] = {dir};
    opsc_snmp_decoder_options_t o;
    decoder_options(&o, dirs, 1);
    char err[512] = "";
    assert_int_equal(opsc_snmp_decoder_create(&o, &dec, err, sizeof(err)), 0);
    assert_true(opsc_mibnames_extra_count() > 0);

    const opsc_mib_name_t *e = opsc_mibnames_find("acmeFanFailure");
    assert_non_null(e);
    assert_string_equal(e->module, "ACME-MIB");
    assert_int_equal(e->kind, OPSC_MIB_NOTIFICATION);
    static const uint32_t trap_oid[] = {1, 3, 6, 1, 4, 1, 99999, 2, 0, 1};
    assert_int_equal(e->oid_len, 10);
    assert_memory_equal(e->oid, trap_oid, sizeof(trap_oid));
    assert_ptr_equal(opsc_mibnames_lookup(trap_oid, 10), e);
    assert_ptr_equal(opsc_mibnames_find("ACME-MIB::acmeFanFailure"), e);
    assert_null(opsc_mibnames_find("IF-MIB::acmeFanFailure"));

    /* A scalar's instance and an enumeration. */
    static const uint32_t state_inst[] = {1, 3, 6, 1, 4, 1, 99999, 1, 2, 0};
    const opsc_mib_name_t *st = opsc_mibnames_lookup(state_inst, 10);
    assert_non_null(st);
    assert_string_equal(st->name, "acmeFanState");
    assert_int_equal(st->kind, OPSC_MIB_SCALAR);
    assert_string_equal(opsc_mibnames_enum_label(st, 3), "failed");
    char text[128];
    opsc_mibnames_format(state_inst, 10, text, sizeof(text));
    assert_string_equal(text, "ACME-MIB::acmeFanState.0");

    /* Templates resolve vendor names too (opsc__object_resolve goes through find). */
    const opsc_mib_name_t *idx = opsc_mibnames_find("acmeFanIndex");
    assert_non_null(idx);

    /* The built-in names still win for the standard objects. */
    const opsc_mib_name_t *ifindex = opsc_mibnames_find("ifIndex");
    assert_non_null(ifindex);
    assert_string_equal(ifindex->module, "IF-MIB");
    assert_int_equal(ifindex->kind, OPSC_MIB_COLUMN);

    /* Deeper than 32 sub-identifiers is left numeric, not truncated into a wrong name. */
    static const uint32_t deep[] = {1, 3, 6, 1, 4, 1, 99999, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9,
                                    10, 11, 12, 13, 14, 15, 16, 17, 18};
    const opsc_mib_name_t *dp = opsc_mibnames_lookup(deep, sizeof(deep) / sizeof(deep[0]));
    assert_non_null(dp);
    assert_int_equal(dp->oid_len, sizeof(deep) / sizeof(deep[0]));
    assert_string_equal(dp->name, "acmeDeep");

    /* Once per process: a second table is refused. */
    opsc_mib_name_t one[1];
    memset(one, 0, sizeof(one));
    assert_int_equal(opsc_mibnames_install(one, 0), OPSC_ECONFIG);
}

int main(void) {
    opsc_log_set_level(OPSC_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_directory_is_an_error),
        cmocka_unit_test(test_vendor_names_from_mib_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
