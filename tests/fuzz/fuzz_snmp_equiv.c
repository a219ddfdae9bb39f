/*
 * libFuzzer target: the v1/v2c fast path against net-snmp. Each input is one
 * datagram, decoded by net-snmp alone and by the fast path (net-snmp for what
 * it declines); any difference in the results, field by field, including the
 * drop reason and the INFORM Response bytes, aborts with both descriptions
 * (tests/support/snmp_equiv.h).
 *
 * The decoder accepts any community and has no v3 users: v3 takes the same
 * path in both runs, and the point is to let mutations reach the PDU. The
 * seed corpus is tests/fuzz/corpus/snmp (real snmptrap/snmpinform datagrams).
 * net-snmp is per process: one decoder, created in LLVMFuzzerInitialize.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "opsc/buf.h"
#include "opsc/config.h"
#include "opsc/log.h"
#include "opsc/snmp_decode.h"
#include "opsc/trap.h"
#include "sources/snmp_trap/snmp_int.h"

#include "../support/snmp_equiv.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static opsc_snmp_decoder_t *dec;
static struct sockaddr_in from4;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char err[512];
    opsc_engine_id_t engine;

    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull >= 0) {
        opsc_log_set_fd(devnull);
    }
    opsc_log_set_level(OPSC_LOG_ERROR);
    if (opsc_engine_id_parse("0x80001f88056f70736366757a7a3032", &engine, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_snmp_equiv: engine id: %s\n", err);
        abort();
    }
    opsc_snmp_decoder_options_t o;
    memset(&o, 0, sizeof(o));
    o.engine_id = engine.bytes;
    o.engine_id_len = engine.len;
    o.engine_boots = 1;
    o.log_component = "snmp-equiv";
    if (opsc_snmp_decoder_create(&o, &dec, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_snmp_equiv: decoder_create: %s\n", err);
        abort();
    }
    from4.sin_family = AF_INET;
    from4.sin_port = htons(50162);
    from4.sin_addr.s_addr = htonl(0x0a000001);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > OPSC_SNMP_DATAGRAM_MAX) {
        return -1;
    }
    equiv_result_t r = EQUIV_RESULT_INIT;
    int eq = equiv_run(dec, data, size, (const struct sockaddr *)&from4, &r);
    if (eq == 0) {
        fprintf(stderr,
                "fuzz_snmp_equiv: the decoders differ (%zu bytes)\n--- net-snmp:\n%.*s"
                "--- fast path:\n%.*s",
                size, (int)r.netsnmp.len, r.netsnmp.base, (int)r.fast.len, r.fast.base);
        abort();
    }
    equiv_result_free(&r);
    return 0;
}
