/*
 * Object identifiers as text: the two conversions every consumer of a decoded
 * trap needs (normalizer patterns, raw_data, logs), with no MIB knowledge.
 */
#include "opsc/trap.h"

#include <stdio.h>
#include <string.h>

size_t opsc_oid_format(const uint32_t *oid, uint32_t len, char *out, size_t outlen) {
    size_t o = 0;
    if (outlen == 0) {
        return 0;
    }
    out[0] = '\0';
    for (uint32_t i = 0; i < len; i++) {
        char tmp[16];
        int n = snprintf(tmp, sizeof(tmp), i == 0 ? "%u" : ".%u", (unsigned)oid[i]);
        size_t room = outlen - 1 - o;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(out + o, tmp, take);
        o += take;
        if (take < (size_t)n) {
            break;
        }
    }
    out[o] = '\0';
    return o;
}

int opsc_oid_parse(const char *s, uint32_t *out, uint32_t max) {
    uint32_t n = 0;
    if (s == NULL) {
        return -1;
    }
    if (*s == '.') {
        s++;
    }
    if (*s == '\0') {
        return -1;
    }
    for (;;) {
        uint64_t v = 0;
        const char *start = s;
        while (*s >= '0' && *s <= '9') {
            v = v * 10 + (uint64_t)(*s - '0');
            if (v > UINT32_MAX) {
                return -1;
            }
            s++;
        }
        if (s == start || n >= max) {
            return -1;
        }
        out[n++] = (uint32_t)v;
        if (*s == '\0') {
            return (int)n;
        }
        if (*s != '.') {
            return -1;
        }
        s++;
    }
}
