/*
 * bench_dedup: what the pipeline's active-alert index costs per alert.
 *
 *   bench_dedup [ALERTS]        (default 1,000,000)
 *
 * Fills the index the pipeline keeps (src/pipeline/dedup.c) with ALERTS
 * distinct active alerts shaped like a mixed trap load (one linkDown per
 * device interface: alert_type "link_down", device "10.a.b.c", discriminator
 * the ifIndex), then reports:
 *
 *   - the index's own accounting (opsc_dedup_memory), per alert, in total and
 *     beyond the alert's strings (alert type, device, discriminator);
 *   - the process's resident set growth per alert (malloc's overhead
 *     included), from /proc/self/statm;
 *   - lookups and touches per second on the filled index.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "opsc/alert.h"
#include "opsc/dedup.h"

static long rss_bytes(void) {
    long pages_total = 0, pages_rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) {
        return -1;
    }
    if (fscanf(f, "%ld %ld", &pages_total, &pages_rss) != 2) {
        pages_rss = -1;
    }
    fclose(f);
    return pages_rss < 0 ? -1 : pages_rss * sysconf(_SC_PAGESIZE);
}

static void fingerprint(size_t i, char out[65]) {
    /* Distinct, uniformly spread hex like a SHA-256 (the index hashes its first 16 digits). */
    uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
    for (int k = 0; k < 4; k++) {
        x ^= x >> 31;
        x *= 0xbf58476d1ce4e5b9ull;
        x ^= x >> 29;
        snprintf(out + 16 * k, 17, "%016" PRIx64, x);
    }
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 1000000;
    if (n == 0) {
        fprintf(stderr, "usage: bench_dedup [ALERTS]\n");
        return 2;
    }
    long rss0 = rss_bytes();
    opsc_dedup_t *d = opsc_dedup_create(4096); /* as the pipeline does: it grows */
    size_t strings = 0;
    char fp[65], dev[32], disc[16];
    uint64_t t0 = uv_hrtime();
    for (size_t i = 0; i < n; i++) {
        opsc_uuid_t id;
        memset(&id, 0, sizeof(id));
        memcpy(id.b, &i, sizeof(i));
        fingerprint(i, fp);
        size_t devno = i / 4;
        snprintf(dev, sizeof(dev), "10.%zu.%zu.%zu", (devno >> 16) & 255, (devno >> 8) & 255,
                 devno & 255);
        snprintf(disc, sizeof(disc), "%zu", 1 + i % 4);
        if (!opsc_dedup_add(d, fp, &id, OPSC_STATUS_ACTIVE, 1, 0, "link_down", dev, disc)) {
            fprintf(stderr, "out of memory at %zu alerts\n", i);
            return 1;
        }
        strings += strlen("link_down") + strlen(dev) + strlen(disc) + 3;
    }
    uint64_t t1 = uv_hrtime();
    long rss1 = rss_bytes();
    size_t mem = opsc_dedup_memory(d);
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        fingerprint(i, fp);
        opsc_dedup_entry_t *e = opsc_dedup_find(d, fp);
        if (e) {
            opsc_dedup_touch(d, e, (int64_t)i);
            found++;
        }
    }
    uint64_t t2 = uv_hrtime();
    (void)opsc_dedup_take_dirty(d);
    printf("# bench_dedup: %zu active alerts, entry %zu bytes\n", n, sizeof(opsc_dedup_entry_t));
    printf("index memory              %zu bytes = %.1f bytes/alert\n", mem, (double)mem / (double)n);
    printf("  beyond strings          %.1f bytes/alert (strings %.1f bytes/alert)\n",
           (double)(mem - strings) / (double)n, (double)strings / (double)n);
    if (rss0 > 0 && rss1 > 0) {
        printf("resident set growth       %.1f bytes/alert (malloc overhead included)\n",
               (double)(rss1 - rss0) / (double)n);
    }
    printf("add                       %.0f alerts/s\n", (double)n / ((double)(t1 - t0) / 1e9));
    printf("find + touch              %.0f lookups/s (%zu found)\n",
           (double)n / ((double)(t2 - t1) / 1e9), found);
    opsc_dedup_destroy(d);
    return found == n ? 0 : 1;
}
