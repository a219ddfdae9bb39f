/*
 * Logging: one event per line, logfmt or JSON.
 *
 * Each line is built in a stack buffer and handed to a single write(2), so
 * lines from different threads never interleave (writes to a pipe up to
 * PIPE_BUF and O_APPEND writes to a file are atomic; stderr to a terminal is
 * close enough). A line longer than OPSC__LOG_LINE_MAX is cut at a character
 * boundary and the message ends with "..." so the reader knows.
 *
 * The message text comes from anywhere, including packets, so the escaping
 * has to produce a valid line for any bytes: control characters are escaped,
 * and bytes that are not valid UTF-8 become \xNN (logfmt) or U+FFFD (JSON,
 * which must be valid UTF-8 for a parser to accept it).
 */
#include "opsc/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "opsc/error.h"

#define OPSC__LOG_LINE_MAX 8192
#define OPSC__LOG_TRUNC_MARK "..."

static atomic_int opsc__log_level = OPSC_LOG_INFO;
static atomic_int opsc__log_format = OPSC_LOG_LOGFMT;
static atomic_int opsc__log_fd = -1;

static const char *const opsc__level_names[] = {"error", "warn", "info", "debug", "trace"};

void opsc_log_set_level(opsc_log_level_t level) {
    if ((int)level < OPSC_LOG_ERROR) {
        level = OPSC_LOG_ERROR;
    } else if (level > OPSC_LOG_TRACE) {
        level = OPSC_LOG_TRACE;
    }
    atomic_store_explicit(&opsc__log_level, (int)level, memory_order_relaxed);
}

opsc_log_level_t opsc_log_get_level(void) {
    return (opsc_log_level_t)atomic_load_explicit(&opsc__log_level, memory_order_relaxed);
}

void opsc_log_set_format(opsc_log_format_t format) {
    atomic_store_explicit(&opsc__log_format,
                          format == OPSC_LOG_JSON ? OPSC_LOG_JSON : OPSC_LOG_LOGFMT,
                          memory_order_relaxed);
}

opsc_log_format_t opsc_log_get_format(void) {
    return (opsc_log_format_t)atomic_load_explicit(&opsc__log_format, memory_order_relaxed);
}

void opsc_log_set_fd(int fd) {
    atomic_store_explicit(&opsc__log_fd, fd, memory_order_relaxed);
}

int opsc_log_level_parse(const char *s, opsc_log_level_t *out) {
    if (s == NULL) {
        return OPSC_ECONFIG;
    }
    for (int i = OPSC_LOG_ERROR; i <= OPSC_LOG_TRACE; i++) {
        if (strcasecmp(s, opsc__level_names[i]) == 0) {
            *out = (opsc_log_level_t)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = OPSC_LOG_WARN;
        return 0;
    }
    return OPSC_ECONFIG;
}

const char *opsc_log_level_name(opsc_log_level_t level) {
    if ((int)level < OPSC_LOG_ERROR || level > OPSC_LOG_TRACE) {
        return "unknown";
    }
    return opsc__level_names[level];
}

int opsc_log_format_parse(const char *s, opsc_log_format_t *out) {
    if (s == NULL) {
        return OPSC_ECONFIG;
    }
    if (strcasecmp(s, "logfmt") == 0) {
        *out = OPSC_LOG_LOGFMT;
        return 0;
    }
    if (strcasecmp(s, "json") == 0) {
        *out = OPSC_LOG_JSON;
        return 0;
    }
    return OPSC_ECONFIG;
}

const char *opsc_log_format_name(opsc_log_format_t format) {
    return format == OPSC_LOG_JSON ? "json" : "logfmt";
}

int opsc_log_enabled(opsc_log_level_t level) {
    return (int)level <= atomic_load_explicit(&opsc__log_level, memory_order_relaxed);
}

/* ---- line building -------------------------------------------------------------------------- */

typedef struct opsc__line_s {
    char *p;
    size_t len;
    size_t cap; /* usable bytes (the tail reserve is already subtracted) */
    int truncated;
} opsc__line_t;

static void opsc__line_put(opsc__line_t *l, const char *s, size_t n) {
    if (l->truncated) {
        return;
    }
    if (n > l->cap - l->len) {
        l->truncated = 1;
        return;
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void opsc__line_puts(opsc__line_t *l, const char *s) {
    opsc__line_put(l, s, strlen(s));
}

/*
 * Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if the
 * bytes there are not one (bad lead, bad continuation, overlong, surrogate,
 * above U+10FFFF, cut short).
 */
static size_t opsc__utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    unsigned cp;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return len;
}

/* Append text escaped for a logfmt double-quoted value or a JSON string. */
static void opsc__line_escape(opsc__line_t *l, const char *text, int json) {
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text);
    size_t i = 0;
    char tmp[8];
    while (i < n && !l->truncated) {
        unsigned c = s[i];
        if (c == '"') {
            opsc__line_put(l, "\\\"", 2);
        } else if (c == '\\') {
            opsc__line_put(l, "\\\\", 2);
        } else if (c == '\n') {
            opsc__line_put(l, "\\n", 2);
        } else if (c == '\r') {
            opsc__line_put(l, "\\r", 2);
        } else if (c == '\t') {
            opsc__line_put(l, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(tmp, sizeof(tmp), json ? "\\u%04x" : "\\x%02x", c);
            opsc__line_puts(l, tmp);
        } else if (c < 0x80) {
            opsc__line_put(l, (const char *)s + i, 1);
        } else {
            size_t ul = opsc__utf8_len(s + i, n - i);
            if (ul > 0) {
                /* whole character or nothing: never cut a sequence in half */
                opsc__line_put(l, (const char *)s + i, ul);
                i += ul;
                continue;
            }
            if (json) {
                opsc__line_puts(l, "\\ufffd");
            } else {
                snprintf(tmp, sizeof(tmp), "\\x%02x", c);
                opsc__line_puts(l, tmp);
            }
        }
        i++;
    }
}

/* logfmt values are bare when they can be, quoted otherwise. */
static void opsc__line_logfmt_value(opsc__line_t *l, const char *v) {
    int bare = v[0] != '\0';
    for (const char *p = v; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c >= 0x7f) {
            bare = 0;
            break;
        }
    }
    if (bare) {
        opsc__line_puts(l, v);
        return;
    }
    opsc__line_put(l, "\"", 1);
    opsc__line_escape(l, v, 0);
    opsc__line_put(l, "\"", 1);
}

static void opsc__log_timestamp(char *out, size_t outlen) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, outlen, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n > 0 && n + 6 <= outlen) {
        unsigned ms = (unsigned)(ts.tv_nsec / 1000000) % 1000u;
        out[n++] = '.';
        out[n++] = (char)('0' + ms / 100);
        out[n++] = (char)('0' + ms / 10 % 10);
        out[n++] = (char)('0' + ms % 10);
        out[n++] = 'Z';
        out[n] = '\0';
    }
}

static void opsc__log_emit(const char *line, size_t len) {
    int fd = atomic_load_explicit(&opsc__log_fd, memory_order_relaxed);
    if (fd < 0) {
        fd = STDERR_FILENO;
    }
    /* One write; the loop only runs if the kernel took part of the line (full pipe). */
    while (len > 0) {
        ssize_t n = write(fd, line, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return; /* nowhere left to report it */
        }
        line += n;
        len -= (size_t)n;
    }
}

static size_t opsc__log_build(char *out, size_t outlen, opsc_log_format_t format,
                              opsc_log_level_t level, const char *ts, const char *component,
                              const char *msg, int msg_cut) {
    /* Kept back for the truncation mark, the closing quote/brace and "\n". */
    static const size_t tail = sizeof(OPSC__LOG_TRUNC_MARK) - 1 + 3;
    char comp[64];
    opsc__line_t l = {out, 0, outlen - tail, 0};
    const char *lvl = opsc_log_level_name(level);

    /* A component is a short tag; bound it so the message always has room. */
    snprintf(comp, sizeof(comp), "%s", component != NULL && component[0] != '\0' ? component : "-");
    if (format == OPSC_LOG_JSON) {
        opsc__line_puts(&l, "{\"ts\":\"");
        opsc__line_puts(&l, ts);
        opsc__line_puts(&l, "\",\"level\":\"");
        opsc__line_puts(&l, lvl);
        opsc__line_puts(&l, "\",\"comp\":\"");
        opsc__line_escape(&l, comp, 1);
        opsc__line_puts(&l, "\",\"msg\":\"");
        opsc__line_escape(&l, msg, 1);
    } else {
        opsc__line_puts(&l, "ts=");
        opsc__line_puts(&l, ts);
        opsc__line_puts(&l, " level=");
        opsc__line_puts(&l, lvl);
        opsc__line_puts(&l, " comp=");
        opsc__line_logfmt_value(&l, comp);
        opsc__line_puts(&l, " msg=\"");
        opsc__line_escape(&l, msg, 0);
    }
    /* The tail reserve is still free: every put above was all-or-nothing. */
    int cut = l.truncated || msg_cut;
    l.cap = outlen;
    l.truncated = 0;
    if (cut) {
        opsc__line_puts(&l, OPSC__LOG_TRUNC_MARK);
    }
    opsc__line_puts(&l, format == OPSC_LOG_JSON ? "\"}\n" : "\"\n");
    return l.len;
}

void opsc_log_vwrite(opsc_log_level_t level, const char *component, const char *fmt, va_list ap) {
    if (!opsc_log_enabled(level)) {
        return;
    }
    char msg[OPSC__LOG_LINE_MAX];
    char line[OPSC__LOG_LINE_MAX];
    char ts[40];
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    int msg_cut = n >= 0 && (size_t)n >= sizeof(msg);
    if (n < 0) {
        snprintf(msg, sizeof(msg), "(unformattable log message)");
    }
    opsc__log_timestamp(ts, sizeof(ts));
    opsc_log_format_t format = opsc_log_get_format();
    size_t len = opsc__log_build(line, sizeof(line), format, level, ts, component, msg, msg_cut);
    opsc__log_emit(line, len);
}

void opsc_log_write(opsc_log_level_t level, const char *component, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    opsc_log_vwrite(level, component, fmt, ap);
    va_end(ap);
}

/* ---- rate limiting -------------------------------------------------------------------------- */

static unsigned long long opsc__mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000ULL + (unsigned long long)ts.tv_nsec / 1000000ULL;
}

int opsc__log_ratelimit_ok_at(opsc_log_ratelimit_t *rl, unsigned long long now_ms,
                              unsigned long long *suppressed) {
    unsigned burst = rl->burst > 0 ? rl->burst : 1;
    if (suppressed != NULL) {
        *suppressed = 0;
    }
    /* window_start_ms == 0 with nothing printed: first use (the macro zeroes it). */
    if ((rl->window_start_ms == 0 && rl->printed == 0) || now_ms < rl->window_start_ms ||
        now_ms - rl->window_start_ms >= rl->interval_ms) {
        rl->window_start_ms = now_ms;
        rl->printed = 0;
    }
    if (rl->printed < burst) {
        rl->printed++;
        if (suppressed != NULL) {
            *suppressed = rl->suppressed;
        }
        rl->suppressed = 0;
        return 1;
    }
    rl->suppressed++;
    return 0;
}

int opsc_log_ratelimit_ok(opsc_log_ratelimit_t *rl, unsigned long long *suppressed) {
    return opsc__log_ratelimit_ok_at(rl, opsc__mono_ms(), suppressed);
}
