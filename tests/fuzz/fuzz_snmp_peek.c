/*
 * libFuzzer target: the pre-parse BER walk (opsc__snmp_peek, snmp_ber.c)
 * alone. It runs on every datagram before net-snmp sees it, so besides
 * memory safety it must keep its contract: a known return code, and every
 * pointer it hands out inside the input with its length.
 *
 * Pure function, no net-snmp state: millions of runs per second, so it
 * covers the header walk far more deeply than fuzz_snmp_decode can.
 * Same seed corpus (tests/fuzz/corpus/snmp/).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opsc/snmp_decode.h"
#include "sources/snmp_trap/snmp_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_span(const unsigned char *base, size_t size, const unsigned char *p, size_t n,
                       const char *what) {
    if (p == NULL) {
        if (n != 0) {
            fprintf(stderr, "opsc__snmp_peek: %s is NULL with length %zu\n", what, n);
            abort();
        }
        return;
    }
    if (p < base || n > size || (size_t)(p - base) > size - n) {
        fprintf(stderr,
                "opsc__snmp_peek: %s (%zu bytes at offset %td) outside the %zu-byte input\n", what,
                n, p - base, size);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    opsc__snmp_peek_t pk;
    /* An exact-size heap copy: ASan catches a read one byte past the datagram. */
    unsigned char *in = malloc(size > 0 ? size : 1);
    if (in == NULL) {
        return 0;
    }
    if (size > 0) {
        memcpy(in, data, size);
    }
    int rc = opsc__snmp_peek(in, size, &pk);
    if (rc != 0 && rc != OPSC_SNMP_MALFORMED && rc != OPSC_SNMP_UNSUPPORTED_VERSION) {
        fprintf(stderr, "opsc__snmp_peek returned %d\n", rc);
        abort();
    }
    if (rc == 0) {
        if (pk.version != 0 && pk.version != 1 && pk.version != 3) {
            fprintf(stderr, "opsc__snmp_peek: accepted version %d\n", pk.version);
            abort();
        }
        if (pk.pdu_tag != -1 && (pk.pdu_tag < 0xa0 || pk.pdu_tag > 0xa8)) {
            fprintf(stderr, "opsc__snmp_peek: pdu tag 0x%x\n", (unsigned)pk.pdu_tag);
            abort();
        }
        if (pk.version == 3) {
            if (pk.security_model != 3 || pk.engine_id_len > OPSC_SNMP_ENGINE_ID_MAX ||
                pk.user_len > 32 || ((pk.msg_flags & OPSC__SNMP_FLAG_PRIV) && pk.pdu_tag != -1)) {
                fprintf(stderr, "opsc__snmp_peek: v3 header outside its contract\n");
                abort();
            }
        } else if (pk.pdu_tag == -1) {
            fprintf(stderr, "opsc__snmp_peek: v1/v2c accepted without a PDU tag\n");
            abort();
        }
        check_span(in, size, pk.community, pk.community_len, "community");
        check_span(in, size, pk.engine_id, pk.engine_id_len, "engine_id");
        check_span(in, size, pk.user, pk.user_len, "user");
    }
    free(in);
    return 0;
}
