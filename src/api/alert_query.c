/*
 * Alert filters: parse once, evaluate twice (SQL for reads and snapshots, in
 * memory for the live feed). The two evaluators sit side by side below so
 * that a change to one is seen next to the other.
 */
#include "opsc/alert_query.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "opsc/error.h"

#define MAX_VALUE_BYTES 255 /* the widest filtered column is VARCHAR(255) */

static const char *const list_names[OPSC_AQ_NLISTS] = {
    "status", "severity",      "category",   "priority", "device_ip", "device_name",
    "site",   "source_system", "alert_type", "tag",      "q"};

static const char *const statuses[] = {"active",   "acknowledged", "suppressed",
                                       "resolved", "expired",      NULL};
static const char *const severities[] = {"critical", "major", "minor", "warning",
                                         "info",     "clear", NULL};
static const char *const categories[] = {"network",     "power",       "video",   "wireless",
                                         "security",    "environment", "compute", "storage",
                                         "application", "unknown",     NULL};
static const char *const priorities[] = {"P1", "P2", "P3", "P4", "P5", NULL};

/* The indexed columns a listing may be sorted by (migration 001's indexes). */
static const char *const sortable[] = {"occurred_at", "status",    "severity",
                                       "category",    "device_ip", "source_system",
                                       "fingerprint", "id",        NULL};

static int in_set(const char *const *set, const char *v) {
    for (; *set; set++) {
        if (strcmp(*set, v) == 0) {
            return 1;
        }
    }
    return 0;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode [s, s+n) into a new string; NULL on a bad escape or an embedded NUL. */
static char *pct_decode(const char *s, size_t n) {
    char *out = opsc_malloc(n + 1);
    size_t o = 0;
    if (!out) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                opsc_free(out);
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    out[o] = '\0';
    return out;
}

static int utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80             ? 0
                : (*p & 0xE0) == 0xC0 ? 1
                : (*p & 0xF0) == 0xE0 ? 2
                : (*p & 0xF8) == 0xF0 ? 3
                                      : -1;
        if (n < 0 || (n == 1 && *p < 0xC2) || (n == 3 && *p > 0xF4)) {
            return 0;
        }
        unsigned cp = n == 0 ? *p : (unsigned)(*p & (0x3F >> n));
        p++;
        for (int k = 0; k < n; k++, p++) {
            if ((*p & 0xC0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (*p & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10FFFF))) {
            return 0;
        }
    }
    return 1;
}

int opsc_rfc3339_parse(const char *s, int64_t *out_us) {
    int Y, M, D, h, m, sec, used = 0;
    if (!s || sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &used) != 6 ||
        used != 19) {
        return -1;
    }
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) {
        return -1;
    }
    const char *p = s + 19;
    int64_t frac_us = 0;
    if (*p == '.') {
        int64_t scale = 100000;
        p++;
        if (!isdigit((unsigned char)*p)) {
            return -1;
        }
        for (; isdigit((unsigned char)*p); p++) {
            frac_us += (*p - '0') * scale;
            scale /= 10;
        }
    }
    int off_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2 || strlen(p) < 6 || oh > 23 || om > 59) {
            return -1;
        }
        off_s = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p) {
        return -1;
    }
    struct tm tm = {.tm_year = Y - 1900,
                    .tm_mon = M - 1,
                    .tm_mday = D,
                    .tm_hour = h,
                    .tm_min = m,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (tm.tm_mday != D) { /* 31 February */
        return -1;
    }
    *out_us = ((int64_t)t - off_s) * 1000000 + frac_us;
    return 0;
}

static int fail(char *field, size_t fl, char *msg, size_t ml, const char *name, const char *why) {
    snprintf(field, fl, "%s", name);
    snprintf(msg, ml, "%s: %s", name, why);
    return -1;
}

static int check_value(int list, const char *v, const char **why) {
    static const char *const *const sets[] = {statuses, severities, categories, priorities};
    static const char *const set_msgs[] = {
        "must be active, acknowledged, suppressed, resolved or expired",
        "must be critical, major, minor, warning, info or clear",
        ("must be network, power, video, wireless, security, environment, compute, storage, "
         "application or unknown"),
        "must be P1, P2, P3, P4 or P5"};
    if (!*v) {
        *why = "empty value";
        return -1;
    }
    if (strlen(v) > MAX_VALUE_BYTES) {
        *why = "value longer than 255 bytes";
        return -1;
    }
    if (!utf8_valid(v)) {
        *why = "not valid UTF-8";
        return -1;
    }
    if (list <= OPSC_AQ_PRIORITY && !in_set(sets[list], v)) {
        *why = set_msgs[list];
        return -1;
    }
    return 0;
}

static int add_list(opsc_alert_query_t *q, int list, const char *v, char *field, size_t fl,
                    char *msg, size_t ml) {
    const char *start = v;
    for (;;) {
        const char *comma = strchr(start, ',');
        size_t n = comma ? (size_t)(comma - start) : strlen(start);
        const char *why = NULL;
        if (q->n[list] == OPSC_AQ_MAX_VALUES) {
            return fail(field, fl, msg, ml, list_names[list], "too many values (at most 32)");
        }
        char *one = opsc_malloc(n + 1);
        if (!one) {
            return fail(field, fl, msg, ml, list_names[list], "out of memory");
        }
        memcpy(one, start, n);
        one[n] = '\0';
        q->vals[list][q->n[list]++] = one;
        if (check_value(list, one, &why) != 0) {
            return fail(field, fl, msg, ml, list_names[list], why);
        }
        if (!comma) {
            return 0;
        }
        start = comma + 1;
    }
}

static int parse_int(const char *v, long lo, long hi, long *out) {
    char *end = NULL;
    if (!*v || !isdigit((unsigned char)*v)) {
        return -1;
    }
    long x = strtol(v, &end, 10);
    if (*end || x < lo || x > hi) {
        return -1;
    }
    *out = x;
    return 0;
}

/* One name=value pair, both decoded. */
static int apply(opsc_alert_query_t *q, const char *name, const char *v, char *field, size_t fl,
                 char *msg, size_t ml) {
    for (int i = 0; i < OPSC_AQ_NLISTS; i++) {
        if (strcmp(name, list_names[i]) == 0) {
            return add_list(q, i, v, field, fl, msg, ml);
        }
    }
    if (strcmp(name, "since") == 0 || strcmp(name, "until") == 0) {
        int since = name[0] == 's';
        char *dst = since ? q->since : q->until;
        int64_t *us = since ? &q->since_us : &q->until_us;
        if (strlen(v) >= sizeof(q->since) || opsc_rfc3339_parse(v, us) != 0) {
            return fail(field, fl, msg, ml, name, "must be one RFC 3339 timestamp");
        }
        snprintf(dst, sizeof(q->since), "%s", v);
        return 0;
    }
    if (strcmp(name, "sort") == 0) {
        const char *col = v[0] == '-' ? v + 1 : v;
        for (int i = 0; sortable[i]; i++) {
            if (strcmp(col, sortable[i]) == 0) {
                q->sort = i;
                q->sort_desc = v[0] == '-';
                return 0;
            }
        }
        return fail(field, fl, msg, ml, name,
                    "must be one of occurred_at, status, severity, category, device_ip, "
                    "source_system, fingerprint, id (with '-' for descending)");
    }
    if (strcmp(name, "limit") == 0) {
        long x;
        if (parse_int(v, 1, 1000, &x) != 0) {
            return fail(field, fl, msg, ml, name, "must be an integer from 1 to 1000");
        }
        q->limit = (int)x;
        return 0;
    }
    if (strcmp(name, "offset") == 0) {
        if (parse_int(v, 0, 100000000L, &q->offset) != 0) {
            return fail(field, fl, msg, ml, name, "must be an integer from 0 to 100000000");
        }
        return 0;
    }
    if (strcmp(name, "access_token") == 0) {
        return 0; /* a credential (WebSocket clients), checked by the authenticator */
    }
    return fail(field, fl, msg, ml, name, "unknown parameter");
}

int opsc_alert_query_parse(const char *query, opsc_alert_query_t *q, char *field, size_t field_len,
                           char *msg, size_t msg_len) {
    memset(q, 0, sizeof(*q));
    q->sort_desc = 1; /* -occurred_at */
    q->limit = 100;
    const char *p = query ? query : "";
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        if (n > 0) {
            const char *eq = memchr(p, '=', n);
            size_t nl = eq ? (size_t)(eq - p) : n;
            char *name = pct_decode(p, nl);
            char *val = eq ? pct_decode(eq + 1, n - nl - 1) : opsc_strdup("");
            int rc;
            if (!name) {
                rc = fail(field, field_len, msg, msg_len, "query", "malformed percent-encoding");
            } else if (!val) {
                rc = fail(field, field_len, msg, msg_len, name, "malformed percent-encoding");
            } else {
                rc = apply(q, name, val, field, field_len, msg, msg_len);
            }
            opsc_free(name);
            opsc_free(val);
            if (rc != 0) {
                return -1;
            }
        }
        p += n + (amp ? 1 : 0);
    }
    return 0;
}

void opsc_alert_query_free(opsc_alert_query_t *q) {
    for (int i = 0; i < OPSC_AQ_NLISTS; i++) {
        for (int k = 0; k < q->n[i]; k++) {
            opsc_free(q->vals[i][k]);
        }
        q->n[i] = 0;
    }
}

/* ---- SQL ------------------------------------------------------------------------- */

/* "$3, $4, $5" for the list's values, appended to params. */
static int placeholders(const opsc_alert_query_t *q, int list, opsc_buf_t *sql, const char **params,
                        int *np) {
    int rc = 0;
    for (int k = 0; rc == 0 && k < q->n[list]; k++) {
        params[*np] = q->vals[list][k];
        rc = opsc_buf_printf(sql, "%s$%d", k ? ", " : "", ++*np);
    }
    return rc;
}

int opsc_alert_query_where(const opsc_alert_query_t *q, opsc_buf_t *sql, const char **params,
                           int *np) {
    /* Plain columns: "a.col IN (...)" uses the column's index. */
    static const struct {
        int list;
        const char *col;
    } plain[] = {{OPSC_AQ_STATUS, "status"},
                 {OPSC_AQ_SEVERITY, "severity"},
                 {OPSC_AQ_CATEGORY, "category"},
                 {OPSC_AQ_PRIORITY, "priority"},
                 {OPSC_AQ_DEVICE_IP, "device_ip"},
                 {OPSC_AQ_DEVICE_NAME, "device_name"},
                 {OPSC_AQ_SOURCE_SYSTEM, "source_system"},
                 {OPSC_AQ_ALERT_TYPE, "alert_type"}};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof(plain) / sizeof(plain[0]); i++) {
        if (q->n[plain[i].list] > 0) {
            rc = opsc_buf_printf(sql, " AND a.%s IN (", plain[i].col);
            rc = rc ? rc : placeholders(q, plain[i].list, sql, params, np);
            rc = rc ? rc : opsc_buf_appends(sql, ")");
        }
    }
    if (rc == 0 && q->n[OPSC_AQ_SITE] > 0) {
        rc = opsc_buf_appends(sql, " AND EXISTS (SELECT 1 FROM devices d WHERE d.ip_address = "
                                   "a.device_ip AND d.site IN (");
        rc = rc ? rc : placeholders(q, OPSC_AQ_SITE, sql, params, np);
        rc = rc ? rc : opsc_buf_appends(sql, "))");
    }
    if (rc == 0 && q->n[OPSC_AQ_TAG] > 0) {
        rc = opsc_buf_appends(sql, " AND a.tags && ARRAY[");
        rc = rc ? rc : placeholders(q, OPSC_AQ_TAG, sql, params, np);
        rc = rc ? rc : opsc_buf_appends(sql, "]::text[]");
    }
    /* strpos, not LIKE: the searched text may hold % and _ and must mean themselves. */
    for (int k = 0; rc == 0 && k < q->n[OPSC_AQ_Q]; k++) {
        params[*np] = q->vals[OPSC_AQ_Q][k];
        ++*np;
        rc = opsc_buf_printf(sql,
                             "%s(strpos(lower(a.title), lower($%d)) > 0 OR "
                             "strpos(lower(coalesce(a.message, '')), lower($%d)) > 0)%s",
                             k ? " OR " : " AND (", *np, *np, k + 1 == q->n[OPSC_AQ_Q] ? ")" : "");
    }
    if (rc == 0 && q->since[0]) {
        params[*np] = q->since;
        rc = opsc_buf_printf(sql, " AND a.occurred_at >= $%d::timestamptz", ++*np);
    }
    if (rc == 0 && q->until[0]) {
        params[*np] = q->until;
        rc = opsc_buf_printf(sql, " AND a.occurred_at < $%d::timestamptz", ++*np);
    }
    return rc;
}

int opsc_alert_query_order(const opsc_alert_query_t *q, opsc_buf_t *sql) {
    const char *dir = q->sort_desc ? "DESC" : "ASC";
    if (strcmp(sortable[q->sort], "id") == 0) {
        return opsc_buf_printf(sql, " ORDER BY a.id %s", dir);
    }
    return opsc_buf_printf(sql, " ORDER BY a.%s %s, a.id %s", sortable[q->sort], dir, dir);
}

/* ---- in memory --------------------------------------------------------------------- */

static int list_has(const opsc_alert_query_t *q, int list, const char *v) {
    for (int k = 0; v && k < q->n[list]; k++) {
        if (strcmp(q->vals[list][k], v) == 0) {
            return 1;
        }
    }
    return 0;
}

/* ASCII case folding only; PostgreSQL's lower() also folds other letters. */
static int contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; hay && *hay; hay++) {
        if (strncasecmp(hay, needle, n) == 0) {
            return 1;
        }
    }
    return n == 0;
}

static const char *jstr(const json_t *alert, const char *key) {
    return json_string_value(json_object_get(alert, key));
}

int opsc_alert_query_match(const opsc_alert_query_t *q, const json_t *alert, const char *site,
                           int ignore_status) {
    static const struct {
        int list;
        const char *key;
    } plain[] = {{OPSC_AQ_STATUS, "status"},
                 {OPSC_AQ_SEVERITY, "severity"},
                 {OPSC_AQ_CATEGORY, "category"},
                 {OPSC_AQ_PRIORITY, "priority"},
                 {OPSC_AQ_DEVICE_IP, "device_ip"},
                 {OPSC_AQ_DEVICE_NAME, "device_name"},
                 {OPSC_AQ_SOURCE_SYSTEM, "source_system"},
                 {OPSC_AQ_ALERT_TYPE, "alert_type"}};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        if (ignore_status && plain[i].list == OPSC_AQ_STATUS) {
            continue;
        }
        if (q->n[plain[i].list] > 0 && !list_has(q, plain[i].list, jstr(alert, plain[i].key))) {
            return 0;
        }
    }
    if (q->n[OPSC_AQ_SITE] > 0 && !list_has(q, OPSC_AQ_SITE, site)) {
        return 0;
    }
    if (q->n[OPSC_AQ_TAG] > 0) {
        const json_t *tags = json_object_get(alert, "tags");
        size_t i;
        const json_t *t;
        int any = 0;
        json_array_foreach(tags, i, t) {
            any = any || list_has(q, OPSC_AQ_TAG, json_string_value(t));
        }
        if (!any) {
            return 0;
        }
    }
    if (q->n[OPSC_AQ_Q] > 0) {
        int any = 0;
        for (int k = 0; !any && k < q->n[OPSC_AQ_Q]; k++) {
            any = contains_ci(jstr(alert, "title"), q->vals[OPSC_AQ_Q][k]) ||
                  contains_ci(jstr(alert, "message"), q->vals[OPSC_AQ_Q][k]);
        }
        if (!any) {
            return 0;
        }
    }
    if (q->since[0] || q->until[0]) {
        int64_t at;
        if (opsc_rfc3339_parse(jstr(alert, "occurred_at"), &at) != 0) {
            return 0;
        }
        if ((q->since[0] && at < q->since_us) || (q->until[0] && at >= q->until_us)) {
            return 0;
        }
    }
    return 1;
}
