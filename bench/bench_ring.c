/*
 * bench_ring: records per second through the SPSC ring across two threads.
 *
 *   bench_ring [RECORDS] [RECORD_BYTES] [RING_BYTES]
 *
 * Defaults: 20,000,000 records of 200 bytes (a typical SNMP trap) through a
 * 1 MiB ring. The producer copies each record in (its sequence number first),
 * commits it and, every 32 records, asks should_wake as the loop thread
 * would after a batch; the consumer checks the order and touches the bytes.
 * Neither side sleeps: on full or empty it spins, yielding now and then.
 * Prints one line.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "opsc/error.h"
#include "opsc/ring.h"

static opsc_ring_t *ring;
static uint64_t records = 20000000;
static size_t rec_bytes = 200;
static uint64_t full_retries;
static uint64_t empty_polls;
static uint64_t wakes;
static uint64_t checksum;
static int out_of_order;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *producer(void *arg) {
    (void)arg;
    unsigned char src[65536];
    for (size_t i = 0; i < sizeof src; i++) {
        src[i] = (unsigned char)(i * 31);
    }
    for (uint64_t seq = 0; seq < records; seq++) {
        void *p;
        while ((p = opsc_ring_reserve(ring, rec_bytes)) == NULL) {
            if ((++full_retries & 127) == 0) {
                sched_yield();
            }
        }
        memcpy(src, &seq, sizeof seq);
        memcpy(p, src, rec_bytes);
        opsc_ring_commit(ring);
        if ((seq & 31) == 31) {
            wakes += (uint64_t)opsc_ring_should_wake(ring);
        }
    }
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    uint64_t sum = 0;
    for (uint64_t seq = 0; seq < records;) {
        size_t len;
        const unsigned char *q = opsc_ring_peek(ring, &len);
        if (q == NULL) {
            if ((++empty_polls & 127) == 0) {
                sched_yield();
            }
            continue;
        }
        uint64_t got;
        memcpy(&got, q, sizeof got);
        if (got != seq || len != rec_bytes) {
            out_of_order = 1;
        }
        sum += q[len - 1];
        opsc_ring_release(ring);
        seq++;
    }
    checksum = sum;
    return NULL;
}

int main(int argc, char **argv) {
    size_t ring_bytes = 1u << 20;
    if (argc > 1) {
        records = strtoull(argv[1], NULL, 10);
    }
    if (argc > 2) {
        rec_bytes = (size_t)strtoull(argv[2], NULL, 10);
    }
    if (argc > 3) {
        ring_bytes = (size_t)strtoull(argv[3], NULL, 10);
    }
    int rc = opsc_ring_create(ring_bytes, &ring);
    if (rc != 0) {
        fprintf(stderr, "bench_ring: %s\n", opsc_strerror(rc));
        return 1;
    }
    if (records == 0 || rec_bytes < 8 || rec_bytes > opsc_ring_max_record(ring) ||
        rec_bytes > 65536) {
        fprintf(stderr, "usage: bench_ring [RECORDS] [RECORD_BYTES 8..%zu] [RING_BYTES]\n",
                opsc_ring_max_record(ring) < 65536 ? opsc_ring_max_record(ring) : (size_t)65536);
        opsc_ring_destroy(ring);
        return 2;
    }

    pthread_t p, c;
    uint64_t t0 = now_ns();
    if (pthread_create(&c, NULL, consumer, NULL) != 0 ||
        pthread_create(&p, NULL, producer, NULL) != 0) {
        fprintf(stderr, "bench_ring: pthread_create failed\n");
        return 1;
    }
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    double secs = (double)(now_ns() - t0) / 1e9;

    printf("bench_ring: %zu-byte records, %zu KiB ring, 2 threads: %.2f M records/s "
           "(%.0f MB/s), %llu records in %.2f s, full retries %llu, empty polls %llu%s\n",
           rec_bytes, opsc_ring_capacity(ring) / 1024, (double)records / secs / 1e6,
           (double)records * (double)rec_bytes / secs / 1e6, (unsigned long long)records, secs,
           (unsigned long long)full_retries, (unsigned long long)empty_polls,
           out_of_order ? " OUT OF ORDER" : "");
    (void)checksum;
    (void)wakes;
    opsc_ring_destroy(ring);
    return out_of_order ? 1 : 0;
}
