/*
 * PostgreSQL's binary array format (array_recv): a 20-byte header (number of
 * dimensions, has-null flag, element type, length and lower bound of the one
 * dimension), then per element a 4-byte length (-1 for NULL) and its bytes.
 * All integers big-endian. The header is reserved at begin and written at
 * finish, when the count and the null flag are known.
 */
#include <string.h>

#include "opsc/error.h"
#include "opsc/pg.h"

#define ARRAY_HEADER 20
/* PostgreSQL counts timestamps from 2000-01-01 00:00:00 UTC. */
#define PG_EPOCH_UNIX_US INT64_C(946684800000000)

static void put32(char *p, uint32_t v) {
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static void put64(char *p, uint64_t v) {
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

void opsc_pg_array_begin(opsc_pg_array_t *a, uint32_t elem_oid) {
    opsc_buf_reset(&a->b);
    a->oid = elem_oid;
    a->n = 0;
    a->has_null = 0;
    a->err = 0;
    if (opsc_buf_reserve(&a->b, ARRAY_HEADER) != 0) {
        a->err = OPSC_ENOMEM;
        return;
    }
    a->b.len = ARRAY_HEADER;
}

/* Room for the length word and n bytes; the element is counted. */
static char *element(opsc_pg_array_t *a, int32_t len, size_t n) {
    if (a->err || opsc_buf_reserve(&a->b, 4 + n) != 0) {
        a->err = a->err ? a->err : OPSC_ENOMEM;
        return NULL;
    }
    char *p = a->b.base + a->b.len;
    put32(p, (uint32_t)len);
    a->b.len += 4 + n;
    a->n++;
    return p + 4;
}

void opsc_pg_array_null(opsc_pg_array_t *a) {
    if (element(a, -1, 0)) {
        a->has_null = 1;
    }
}

char *opsc_pg_array_element(opsc_pg_array_t *a, size_t n) {
    if (n > INT32_MAX) {
        a->err = a->err ? a->err : OPSC_ENOMEM;
        return NULL;
    }
    return element(a, (int32_t)n, n);
}

void opsc_pg_array_bytes(opsc_pg_array_t *a, const void *p, size_t n) {
    char *e = opsc_pg_array_element(a, n);
    if (e && n) {
        memcpy(e, p, n);
    }
}

void opsc_pg_array_int4(opsc_pg_array_t *a, int32_t v) {
    char *e = element(a, 4, 4);
    if (e) {
        put32(e, (uint32_t)v);
    }
}

void opsc_pg_array_bool(opsc_pg_array_t *a, int v) {
    char *e = element(a, 1, 1);
    if (e) {
        e[0] = v ? 1 : 0;
    }
}

void opsc_pg_array_timestamptz(opsc_pg_array_t *a, int64_t unix_us) {
    char *e = element(a, 8, 8);
    if (e) {
        put64(e, (uint64_t)(unix_us - PG_EPOCH_UNIX_US));
    }
}

void opsc_pg_array_jsonb(opsc_pg_array_t *a, const char *text, size_t n) {
    char *e = opsc_pg_array_element(a, n + 1);
    if (e) {
        e[0] = 1;
        memcpy(e + 1, text, n);
    }
}

int opsc_pg_array_finish(opsc_pg_array_t *a) {
    if (a->err) {
        return a->err;
    }
    char *h = a->b.base;
    if (a->n == 0) { /* the empty array has no dimension */
        put32(h, 0);
        put32(h + 4, 0);
        put32(h + 8, a->oid);
        a->b.len = 12;
        return 0;
    }
    put32(h, 1);
    put32(h + 4, a->has_null ? 1 : 0);
    put32(h + 8, a->oid);
    put32(h + 12, a->n);
    put32(h + 16, 1);
    return 0;
}

void opsc_pg_array_free(opsc_pg_array_t *a) {
    opsc_buf_free(&a->b);
    a->n = 0;
}
