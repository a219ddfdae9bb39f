#ifndef OPSC_BUF_H
#define OPSC_BUF_H

#include <stdarg.h>
#include <stddef.h>

/* A growable byte buffer with explicit capacity; always NUL-terminated. */
typedef struct opsc_buf_s {
    char *base;
    size_t len;
    size_t cap;
} opsc_buf_t;

// clang-format off
#define OPSC_BUF_INIT {NULL, 0, 0}
// clang-format on

/** Ensure room for `extra` more bytes (+1 for the NUL). 0 or OPSC_ENOMEM. */
int opsc_buf_reserve(opsc_buf_t *b, size_t extra);
int opsc_buf_append(opsc_buf_t *b, const void *data, size_t len);
int opsc_buf_appends(opsc_buf_t *b, const char *s);
int opsc_buf_printf(opsc_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int opsc_buf_vprintf(opsc_buf_t *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/** Drop the first n bytes (consumed input). */
void opsc_buf_consume(opsc_buf_t *b, size_t n);
void opsc_buf_reset(opsc_buf_t *b);
void opsc_buf_free(opsc_buf_t *b);

/** Allocation wrappers: abort on failure is never used; callers check NULL. */
void *opsc_malloc(size_t n);
void *opsc_calloc(size_t n, size_t size);
void *opsc_realloc(void *p, size_t n);
char *opsc_strdup(const char *s);
void opsc_free(void *p);

#ifdef OPSC_FAULT_INJECTION
/**
 * Fault injection (fuzz/test builds only): negative = off (default); N >= 0 =
 * let N more allocations succeed, then every allocation fails until reset to -1.
 */
extern long opsc__alloc_fail_after;
#endif

/* Through void * so that -Wcast-align (clang) accepts it: the member's offset keeps alignment. */
// clang-format off
#define opsc_container_of(ptr, type, member)                                                       \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))
// clang-format on

#endif
