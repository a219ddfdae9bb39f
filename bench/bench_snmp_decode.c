/*
 * bench_snmp_decode: ns per trap for the two v1/v2c decoders over a corpus.
 *
 *   bench_snmp_decode [CORPUS_DIR] [ROUNDS]
 *
 * Defaults: tests/fuzz/corpus/snmp, 200,000 rounds. Each v1/v2c datagram of
 * the corpus (v3 ones are skipped: they never take the fast path) is decoded
 * ROUNDS times with net-snmp (snmp_parse + copy into the arena, the path
 * before the fast decoder) and ROUNDS times with the fast path, each time
 * from a fresh copy as the pipeline does. Prints one line per datagram and a
 * mean over the corpus (each datagram weighted equally). Single thread;
 * times are the thread's CPU time.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "opsc/buf.h"
#include "opsc/config.h"
#include "opsc/log.h"
#include "opsc/snmp_decode.h"
#include "sources/snmp_trap/snmp_int.h"

/* CPU time of this thread: the machine is shared (and we run niced), wall time would measure
 * the neighbours. */
static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double run(opsc_snmp_decoder_t *d, opsc__snmp_path_t path, const unsigned char *dg,
                  size_t len, long rounds, const struct sockaddr *from, opsc_buf_t *reply) {
    static unsigned char work[OPSC_SNMP_DATAGRAM_MAX];
    opsc_trap_t t;
    opsc__snmp_set_path(d, path);
    uint64_t t0 = now_ns();
    for (long i = 0; i < rounds; i++) {
        memcpy(work, dg, len);
        if (opsc_snmp_decode(d, work, len, from, &t, reply) != 0) {
            fprintf(stderr, "bench_snmp_decode: a corpus datagram does not decode\n");
            exit(1);
        }
    }
    return (double)(now_ns() - t0) / (double)rounds;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "tests/fuzz/corpus/snmp";
    long rounds = argc > 2 ? atol(argv[2]) : 200000;
    char err[512], path[1400];
    opsc_engine_id_t engine;
    opsc_snmp_decoder_t *d;

    opsc_log_set_level(OPSC_LOG_ERROR);
    if (opsc_engine_id_parse("0x80001f880562656e636830303031", &engine, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_snmp_decode: %s\n", err);
        return 1;
    }
    opsc_snmp_decoder_options_t o;
    memset(&o, 0, sizeof(o));
    o.engine_id = engine.bytes;
    o.engine_id_len = engine.len;
    o.log_component = "bench";
    if (opsc_snmp_decoder_create(&o, &d, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_snmp_decode: %s\n", err);
        return 1;
    }
    struct sockaddr_in from = {.sin_family = AF_INET, .sin_port = htons(162)};
    from.sin_addr.s_addr = htonl(0x0a000001);
    opsc_buf_t reply = OPSC_BUF_INIT;

    DIR *dd = opendir(dir);
    if (dd == NULL) {
        fprintf(stderr, "bench_snmp_decode: cannot open %s\n", dir);
        return 1;
    }
    struct dirent *e;
    double sum_ns = 0, sum_fast = 0;
    int n = 0;
    printf("# bench_snmp_decode: %ld rounds per datagram, ns per decode (net-snmp / fast path)\n",
           rounds);
    while ((e = readdir(dd)) != NULL) {
        if (strncmp(e->d_name, "v1_", 3) != 0 && strncmp(e->d_name, "v2c_", 4) != 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            continue;
        }
        unsigned char dg[4096];
        size_t len = fread(dg, 1, sizeof(dg), f);
        fclose(f);
        (void)run(d, OPSC__SNMP_PATH_AUTO, dg, len, rounds / 10 + 1, (struct sockaddr *)&from,
                  &reply); /* warm-up */
        double a =
            run(d, OPSC__SNMP_PATH_NETSNMP, dg, len, rounds, (struct sockaddr *)&from, &reply);
        double b = run(d, OPSC__SNMP_PATH_AUTO, dg, len, rounds, (struct sockaddr *)&from, &reply);
        printf("%-28s %4zu bytes  net-snmp %7.1f ns  fast %6.1f ns  x%.1f\n", e->d_name, len, a, b,
               a / b);
        sum_ns += a;
        sum_fast += b;
        n++;
    }
    closedir(dd);
    uint64_t fast, declined;
    opsc__snmp_path_stats(d, &fast, &declined);
    if (n > 0) {
        printf("mean over %d datagrams: net-snmp %.1f ns/trap, fast path %.1f ns/trap (x%.1f); "
               "declined %llu\n",
               n, sum_ns / n, sum_fast / n, sum_ns / sum_fast, (unsigned long long)declined);
    }
    opsc_buf_free(&reply);
    opsc_snmp_decoder_destroy(d);
    return 0;
}
