/*
 * Growable buffer and allocation wrappers.
 *
 * The wrappers are plain libc calls, with one twist: malloc(0) and
 * realloc(p, 0) are implementation-defined (they may return NULL), so a size
 * of 0 is rounded up to 1 and NULL always means "out of memory".
 *
 * Fuzz and fault-injection builds define OPSC_FAULT_INJECTION: then
 * `opsc__alloc_fail_after` counts down successful allocations, and once it
 * reaches 0 every allocation fails until it is set back to a negative value.
 */
#include "opsc/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opsc/error.h"

#ifdef OPSC_FAULT_INJECTION
long opsc__alloc_fail_after = -1;

static int opsc__alloc_should_fail(void) {
    if (opsc__alloc_fail_after < 0) {
        return 0;
    }
    if (opsc__alloc_fail_after == 0) {
        return 1;
    }
    opsc__alloc_fail_after--;
    return 0;
}
#define OPSC__ALLOC_FAIL() opsc__alloc_should_fail()
#else
#define OPSC__ALLOC_FAIL() 0
#endif

void *opsc_malloc(size_t n) {
    if (OPSC__ALLOC_FAIL()) {
        return NULL;
    }
    return malloc(n ? n : 1);
}

void *opsc_calloc(size_t n, size_t size) {
    if (OPSC__ALLOC_FAIL()) {
        return NULL;
    }
    if (n == 0 || size == 0) {
        n = 1;
        size = 1;
    }
    return calloc(n, size);
}

void *opsc_realloc(void *p, size_t n) {
    if (OPSC__ALLOC_FAIL()) {
        return NULL;
    }
    return realloc(p, n ? n : 1);
}

char *opsc_strdup(const char *s) {
    if (s == NULL) {
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *p = opsc_malloc(n);
    if (p != NULL) {
        memcpy(p, s, n);
    }
    return p;
}

void opsc_free(void *p) {
    free(p);
}

int opsc_buf_reserve(opsc_buf_t *b, size_t extra) {
    if (extra > SIZE_MAX - 1 - b->len) {
        return OPSC_ENOMEM;
    }
    size_t need = b->len + extra + 1;
    if (b->base != NULL && need <= b->cap) {
        return 0;
    }
    size_t cap = b->cap < 64 ? 64 : b->cap;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    char *p = opsc_realloc(b->base, cap);
    if (p == NULL) {
        return OPSC_ENOMEM;
    }
    if (b->base == NULL) {
        p[0] = '\0';
    }
    b->base = p;
    b->cap = cap;
    return 0;
}

int opsc_buf_append(opsc_buf_t *b, const void *data, size_t len) {
    int rc = opsc_buf_reserve(b, len);
    if (rc != 0) {
        return rc;
    }
    if (len > 0) {
        memcpy(b->base + b->len, data, len);
    }
    b->len += len;
    b->base[b->len] = '\0';
    return 0;
}

int opsc_buf_appends(opsc_buf_t *b, const char *s) {
    return opsc_buf_append(b, s, strlen(s));
}

int opsc_buf_vprintf(opsc_buf_t *b, const char *fmt, va_list ap) {
    /* Try the space we already have; grow once to the exact size if short. */
    int rc = opsc_buf_reserve(b, 0);
    if (rc != 0) {
        return rc;
    }
    va_list ap2;
    va_copy(ap2, ap);
    size_t room = b->cap - b->len;
    int n = vsnprintf(b->base + b->len, room, fmt, ap);
    if (n < 0) {
        va_end(ap2);
        b->base[b->len] = '\0';
        return OPSC_EPARSE;
    }
    if ((size_t)n >= room) {
        rc = opsc_buf_reserve(b, (size_t)n);
        if (rc != 0) {
            va_end(ap2);
            b->base[b->len] = '\0';
            return rc;
        }
        n = vsnprintf(b->base + b->len, b->cap - b->len, fmt, ap2);
    }
    va_end(ap2);
    b->len += (size_t)n;
    return 0;
}

int opsc_buf_printf(opsc_buf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = opsc_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void opsc_buf_consume(opsc_buf_t *b, size_t n) {
    if (b->base == NULL) {
        return;
    }
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->base, b->base + n, b->len - n);
        b->len -= n;
    }
    b->base[b->len] = '\0';
}

void opsc_buf_reset(opsc_buf_t *b) {
    b->len = 0;
    if (b->base != NULL) {
        b->base[0] = '\0';
    }
}

void opsc_buf_free(opsc_buf_t *b) {
    opsc_free(b->base);
    b->base = NULL;
    b->len = 0;
    b->cap = 0;
}
