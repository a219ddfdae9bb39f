#ifndef OPSC_LOG_H
#define OPSC_LOG_H

#include <stdarg.h>

/*
 * Logging: one event per line on stderr, logfmt or JSON. Safe from any
 * thread: each line is formatted in a local buffer and written with a single
 * write(2). Every line carries a component ("store", "http", "pg") that
 * says who logged it.
 */

typedef enum {
    OPSC_LOG_ERROR = 0,
    OPSC_LOG_WARN = 1,
    OPSC_LOG_INFO = 2,
    OPSC_LOG_DEBUG = 3,
    OPSC_LOG_TRACE = 4,
} opsc_log_level_t;

typedef enum {
    OPSC_LOG_LOGFMT = 0,
    OPSC_LOG_JSON = 1,
} opsc_log_format_t;

void opsc_log_set_level(opsc_log_level_t level);
opsc_log_level_t opsc_log_get_level(void);
void opsc_log_set_format(opsc_log_format_t format);
opsc_log_format_t opsc_log_get_format(void);
/** Redirect output (tests); fd -1 restores stderr. */
void opsc_log_set_fd(int fd);

/** Parse "error|warn|info|debug|trace" (any case; "warning" = warn); 0 or OPSC_ECONFIG. */
int opsc_log_level_parse(const char *s, opsc_log_level_t *out);
const char *opsc_log_level_name(opsc_log_level_t level);
/** Parse "logfmt|json"; 0 or OPSC_ECONFIG. */
int opsc_log_format_parse(const char *s, opsc_log_format_t *out);
/** "logfmt" or "json". Static. */
const char *opsc_log_format_name(opsc_log_format_t format);

void opsc_log_write(opsc_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void opsc_log_vwrite(opsc_log_level_t level, const char *component, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/** True when a message at this level would be written (skip costly formatting). */
int opsc_log_enabled(opsc_log_level_t level);

#define opsc_log_err(comp, ...)                                                                    \
    do {                                                                                           \
        opsc_log_write(OPSC_LOG_ERROR, (comp), __VA_ARGS__);                                       \
    } while (0)
#define opsc_log_warn(comp, ...)                                                                   \
    do {                                                                                           \
        opsc_log_write(OPSC_LOG_WARN, (comp), __VA_ARGS__);                                        \
    } while (0)
#define opsc_log_info(comp, ...)                                                                   \
    do {                                                                                           \
        opsc_log_write(OPSC_LOG_INFO, (comp), __VA_ARGS__);                                        \
    } while (0)
#define opsc_log_debug(comp, ...)                                                                  \
    do {                                                                                           \
        if (opsc_log_enabled(OPSC_LOG_DEBUG)) {                                                    \
            opsc_log_write(OPSC_LOG_DEBUG, (comp), __VA_ARGS__);                                   \
        }                                                                                          \
    } while (0)

/*
 * Rate limiting for log lines caused by outside input (bad packets, failed
 * logins): at most `burst` lines per `interval_ms`; the next line after a quiet
 * period reports how many were suppressed. Not thread-safe: one per thread.
 */
typedef struct opsc_log_ratelimit_s {
    unsigned interval_ms;
    unsigned burst;
    unsigned long long window_start_ms;
    unsigned printed;
    unsigned long long suppressed;
} opsc_log_ratelimit_t;

// clang-format off
#define OPSC_LOG_RATELIMIT_INIT(interval_ms, burst) {(interval_ms), (burst), 0, 0, 0}
// clang-format on

/** Returns 1 when the caller may log now; *suppressed gets the count dropped since. */
int opsc_log_ratelimit_ok(opsc_log_ratelimit_t *rl, unsigned long long *suppressed);
/** Same, with the monotonic time in ms given by the caller (tests). */
int opsc__log_ratelimit_ok_at(opsc_log_ratelimit_t *rl, unsigned long long now_ms,
                              unsigned long long *suppressed);

#endif
