#ifndef OPSC_ERROR_H
#define OPSC_ERROR_H

#include <stddef.h>

/*
 * Error codes. Functions return 0 or a negative code. libuv's codes (negative
 * errno values) pass through unchanged; OpsConductor's own codes live below
 * OPSC__ERR_BASE so the two ranges never collide.
 */

#define OPSC__ERR_BASE (-30000)

#define OPSC_ERRNO_MAP(X)                                                                          \
    X(CONFIG, 1, "invalid configuration")                                                          \
    X(NOMEM, 2, "out of memory")                                                                   \
    X(QUEUE_FULL, 3, "queue full")                                                                 \
    X(DB_DISCONNECTED, 4, "database not connected")                                                \
    X(DB_QUERY, 5, "database query failed")                                                        \
    X(DB_CONN_LOST, 6, "database connection lost")                                                 \
    X(SHUTDOWN, 7, "shutting down")                                                                \
    X(MIGRATION, 8, "migration failed")                                                            \
    X(CHECKSUM, 9, "migration checksum mismatch")                                                  \
    X(LOCKED, 10, "resource locked by another process")                                            \
    X(NOTFOUND, 11, "not found")                                                                   \
    X(TOOBIG, 12, "value too large")                                                               \
    X(PARSE, 13, "parse error")                                                                    \
    X(CHILD, 14, "child process failed")

typedef enum {
#define OPSC__ERR_ENUM(name, n, msg) OPSC_E##name = OPSC__ERR_BASE - (n),
    OPSC_ERRNO_MAP(OPSC__ERR_ENUM)
#undef OPSC__ERR_ENUM
} opsc_errno_t;

/** Human-readable text for any code this project returns (ours, libuv's, errno). Static. */
const char *opsc_strerror(int err);

/**
 * Write a one-line message into a caller's error buffer (newlines become
 * spaces). NULL or empty buffers are ignored.
 */
void opsc_errbuf_printf(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Symbolic name ("OPSC_EQUEUE_FULL", "ECONNREFUSED"). Static. */
const char *opsc_err_name(int err);

#endif
