/*
 * Configuration: defaults, then one YAML file, then OPSC_* environment
 * variables, all driven by one table of keys (opsc_config_keys) whose
 * offsetof()s say where each value lives in opsc_config_t.
 *
 * Every error is one line that names the key, where the bad value came from
 * ("opsc.yaml:7", "env OPSC_DATABASE_READERS") and what was expected, because
 * the person reading it is fixing a config file at 3 a.m., not reading code.
 *
 * libfyaml's diagnostics are captured through a diag object (collect mode and
 * an output callback), so the library never prints on its own.
 */
#include "opsc/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <jansson.h>
#include <libfyaml.h>

#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/fsutil.h"

extern char **environ;

#define OPSC__MS_S INT64_C(1000)
#define OPSC__MS_M (60 * OPSC__MS_S)
#define OPSC__MS_H (60 * OPSC__MS_M)
#define OPSC__MS_D (24 * OPSC__MS_H)
#define OPSC__KIB INT64_C(1024)
#define OPSC__MIB (1024 * OPSC__KIB)
#define OPSC__GIB (1024 * OPSC__MIB)

#define OPSC__CONFIG_FILE_MAX (1024 * 1024)
#define OPSC__KEYS_MAX 64

/* clang-format off */
#define OPSC__KEY(path, type, field, def, min, max, reloadable, secret, help)                      \
    {(path), (type), offsetof(opsc_config_t, field), (def), (min), (max), (reloadable), (secret),  \
     (help)}

const opsc_config_key_t opsc_config_keys[] = {
    OPSC__KEY("data_dir", OPSC_CFG_STRING, data_dir, "./var", 0, 0, 0, 0,
              "Directory for the server's own state (lock file, embedded PostgreSQL cluster)."),
    OPSC__KEY("admin_token", OPSC_CFG_STRING, admin_token, NULL, 0, 0, 1, 1,
              "Bearer token for administrative API calls; never logged."),
    OPSC__KEY("shutdown_timeout", OPSC_CFG_DURATION, shutdown_timeout_ms, "5s",
              100, 10 * OPSC__MS_M, 1, 0,
              "How long a graceful shutdown may take before remaining work is abandoned."),
    OPSC__KEY("log.level", OPSC_CFG_LOGLEVEL, log.level, "info", 0, 0, 1, 0,
              "Least severe log level written: error, warn, info, debug or trace."),
    OPSC__KEY("log.format", OPSC_CFG_LOGFORMAT, log.format, "logfmt", 0, 0, 1, 0,
              "Log line format on stderr: logfmt or json."),
    OPSC__KEY("http.listen", OPSC_CFG_LISTEN_TCP, http.listen, "0.0.0.0:8080", 0, 0, 0, 0,
              "TCP addresses of the HTTP server (API, /health, /ready, /metrics): "
              "comma-separated HOST:PORT or [IPV6]:PORT."),
    OPSC__KEY("http.max_connections", OPSC_CFG_INT, http.max_connections, "1024", 1, 1000000, 0, 0,
              "Most HTTP client connections open at once."),
    OPSC__KEY("http.max_header_bytes", OPSC_CFG_SIZE, http.max_header_bytes, "16KiB",
              OPSC__KIB, OPSC__MIB, 0, 0,
              "Largest HTTP request head (request line and headers) accepted."),
    OPSC__KEY("http.idle_timeout", OPSC_CFG_DURATION, http.idle_timeout_ms, "60s",
              OPSC__MS_S, OPSC__MS_H, 0, 0,
              "An HTTP connection idle for this long is closed."),
    OPSC__KEY("http.header_timeout", OPSC_CFG_DURATION, http.header_timeout_ms, "10s", 100,
              10 * OPSC__MS_M, 0, 0,
              "Time from the first byte of a request until its headers are complete (the "
              "slowloris bound); a client still sending headers then gets 408 and is closed."),
    OPSC__KEY("http.body_timeout", OPSC_CFG_DURATION, http.body_timeout_ms, "30s", 100,
              OPSC__MS_H, 0, 0,
              "Longest silence while a request body arrives; then 408 and the connection closes."),
    OPSC__KEY("http.max_headers", OPSC_CFG_INT, http.max_headers, "100", 1, 1000, 0, 0,
              "Most header fields in one HTTP request; more is answered with 431."),
    OPSC__KEY("http.max_url_bytes", OPSC_CFG_SIZE, http.max_url_bytes, "8KiB", 256, OPSC__MIB,
              0, 0,
              "Longest request target (path and query) accepted; longer is answered with 414."),
    OPSC__KEY("http.max_body_bytes", OPSC_CFG_SIZE, http.max_body_bytes, "1MiB", OPSC__KIB,
              OPSC__GIB, 0, 0,
              "Largest request body accepted (413 beyond it), declared or chunked; bulk "
              "endpoints declare a larger limit of their own."),
    OPSC__KEY("http.tls.listen", OPSC_CFG_LISTEN_TCP, http.tls.listen, NULL, 0, 0, 0, 0,
              "TCP addresses of the HTTPS listener (same routes as http.listen, TLS 1.2 with "
              "ECDHE and AES-GCM or ChaCha20-Poly1305): comma-separated HOST:PORT or "
              "[IPV6]:PORT; unset: no TLS. Needs http.tls.cert and http.tls.key."),
    OPSC__KEY("http.tls.cert", OPSC_CFG_STRING, http.tls.cert, NULL, 0, 0, 0, 0,
              "PEM file with the server certificate, followed by any intermediate certificates."),
    OPSC__KEY("http.tls.key", OPSC_CFG_STRING, http.tls.key, NULL, 0, 0, 0, 0,
              "PEM file with the private key of http.tls.cert (unencrypted)."),
    OPSC__KEY("http.tls.handshake_timeout", OPSC_CFG_DURATION, http.tls.handshake_timeout_ms,
              "10s", 100, 10 * OPSC__MS_M, 0, 0,
              "A TLS client that has not completed its handshake within this time is closed."),
    OPSC__KEY("auth.pbkdf2_iterations", OPSC_CFG_INT, auth.pbkdf2_iterations, "600000", 1000,
              100000000, 0, 0,
              "PBKDF2-HMAC-SHA-256 iterations for new password hashes (OWASP's 2023 figure is "
              "600,000); stored hashes keep their own count and are re-hashed at the next login."),
    OPSC__KEY("auth.session_ttl", OPSC_CFG_DURATION, auth.session_ttl_ms, "12h", OPSC__MS_M,
              30 * OPSC__MS_D, 0, 0,
              "Lifetime of a console login session, counted from the login (absolute: use "
              "does not extend it)."),
    OPSC__KEY("auth.login_max_failures", OPSC_CFG_INT, auth.login_max_failures, "5", 1, 1000, 0,
              0,
              "Failed logins per user name within auth.login_lockout after which its logins are "
              "answered 429 (with Retry-After) for that long; a client address may fail 4 times "
              "as often."),
    OPSC__KEY("auth.login_lockout", OPSC_CFG_DURATION, auth.login_lockout_ms, "15m", OPSC__MS_S,
              OPSC__MS_D, 0, 0,
              "Window over which failed logins are counted, and how long a limited user name or "
              "address is refused."),
    OPSC__KEY("stream.max_pending", OPSC_CFG_INT, stream.max_pending, "1000", 1, 1000000, 0, 0,
              "WebSocket feed: alerts waiting for one slow client (each alert's latest state "
              "only) before it is closed with 1013."),
    OPSC__KEY("stream.max_message_bytes", OPSC_CFG_SIZE, stream.max_message_bytes, "64KiB", 125,
              OPSC__MIB, 0, 0,
              "WebSocket feed: largest message a client may send (closed with 1009 beyond)."),
    OPSC__KEY("stream.ping_interval", OPSC_CFG_DURATION, stream.ping_interval_ms, "30s", 100,
              10 * OPSC__MS_M, 0, 0,
              "WebSocket feed: ping every interval; a client that has not answered the last ping "
              "by the next is closed."),
    OPSC__KEY("webhooks.severity_map", OPSC_CFG_STRING, webhooks.severity_map, NULL, 0, 0, 0, 0,
              "Alertmanager and Grafana webhooks: JSON object from labels.severity values "
              "(case-insensitive) to our severities, e.g. {\"page\": \"critical\", \"ticket\": "
              "\"minor\"}; unset: critical, high/error/major, warning/warn, minor/medium, "
              "low/info/none, page as their obvious severities, anything else warning."),
    OPSC__KEY("webhooks.default_category", OPSC_CFG_STRING, webhooks.default_category,
              "application", 0, 0, 0, 0,
              "Category of a webhook alert whose labels name none of ours (labels.category)."),
    OPSC__KEY("snmp.listen", OPSC_CFG_LISTEN_UDP, snmp.listen, "udp:0.0.0.0:162,udp6:[::]:162",
              0, 0, 0, 0,
              "UDP addresses that receive SNMP traps and informs: comma-separated "
              "udp:HOST:PORT or udp6:[IPV6]:PORT."),
    OPSC__KEY("snmp.communities", OPSC_CFG_STRLIST, snmp.communities, NULL, 0, 0, 0, 1,
              "Community strings accepted from SNMPv1 and v2c senders: comma-separated, or a "
              "YAML sequence; unset accepts any community."),
    OPSC__KEY("snmp.engine_id", OPSC_CFG_ENGINE_ID, snmp.engine_id, NULL, 5, 32, 0, 0,
              "Our SNMPv3 engine ID in hex (with or without 0x, 5 to 32 bytes): the engine "
              "that INFORMs are sent to. Unset: generated once and kept in "
              "<data_dir>/snmp_engine_id."),
    OPSC__KEY("snmp.rcvbuf", OPSC_CFG_SIZE, snmp.rcvbuf, "16MiB", 64 * OPSC__KIB, OPSC__GIB, 0, 0,
              "Kernel receive buffer asked for on each SNMP socket (the kernel may grant less: "
              "net.core.rmem_max)."),
    OPSC__KEY("snmp.max_per_wakeup", OPSC_CFG_INT, snmp.max_per_wakeup, "40", 0, 1000000, 0, 0,
              "Most datagrams read from one SNMP socket per event-loop iteration, so HTTP and "
              "the database keep being served during a trap storm (0: libuv's own limit, about "
              "40 per wake-up; larger values behave like 40)."),
    OPSC__KEY("snmp.per_source_rate", OPSC_CFG_INT, snmp.per_source_rate, "0", 0, 1000000, 0, 0,
              "Traps per second accepted from one source address (token bucket, checked before "
              "decoding); the excess is dropped and counted, and a source being cut raises one "
              "trap_storm alert. 0 turns the limit off (dedup already makes a storm cheap)."),
    OPSC__KEY("snmp.per_source_burst", OPSC_CFG_INT, snmp.per_source_burst, "0", 0, 100000000,
              0, 0,
              "Traps one source may send at once after a quiet spell (the bucket size); 0 means "
              "twice snmp.per_source_rate."),
    OPSC__KEY("snmp.per_source_max", OPSC_CFG_INT, snmp.per_source_max, "65536", 1, 16777216, 0,
              0,
              "Source addresses the rate limit tracks at once (memory is allocated for all of "
              "them at start, about 80 bytes each); a new source in a full table replaces the "
              "one heard from least recently."),
    OPSC__KEY("snmp.storm_quiet", OPSC_CFG_DURATION, snmp.storm_quiet_ms, "60s", OPSC__MS_S,
              OPSC__MS_H, 0, 0,
              "A trap_storm alert resolves once its source has stayed within "
              "snmp.per_source_rate for this long."),
    OPSC__KEY("snmp.v3_users", OPSC_CFG_SNMP_V3_USERS, snmp.v3_users, NULL, 0, 0, 0, 1,
              "SNMPv3 USM users: a YAML sequence of {name, auth_protocol (none, MD5, SHA, "
              "SHA-224, SHA-256, SHA-384, SHA-512), auth_passphrase, priv_protocol (none, DES, "
              "AES, AES-192, AES-256), priv_passphrase, engine_id}; passphrases have 8 "
              "characters or more. engine_id (hex) is the trap sender's engine ID; omit it for "
              "a user that sends INFORMs (bound to snmp.engine_id). In the environment: a JSON "
              "array of the same objects."),
    OPSC__KEY("snmp.mib_dirs", OPSC_CFG_STRLIST, snmp.mib_dirs, NULL, 0, 0, 0, 0,
              "Directories of MIB files (comma-separated, or a YAML sequence) whose names, "
              "read with net-snmp at start, extend the built-in table of standard names in "
              "titles, templates and raw_data; a directory that does not exist stops start-up."),
    OPSC__KEY("dns.servers", OPSC_CFG_STRLIST, dns.servers, NULL, 0, 0, 0, 0,
              "DNS servers for reverse lookups of device names (HOST or HOST:PORT, "
              "comma-separated); unset: those of /etc/resolv.conf."),
    OPSC__KEY("dns.cache_ttl", OPSC_CFG_DURATION, dns.cache_ttl_ms, "5m", 0, 24 * OPSC__MS_H,
              0, 0,
              "How long a device name found by reverse DNS is kept; 0 turns reverse lookups "
              "off (alerts of devices missing from the devices table then have no name)."),
    OPSC__KEY("dns.negative_ttl", OPSC_CFG_DURATION, dns.negative_ttl_ms, "1m", 1000,
              24 * OPSC__MS_H, 0, 0,
              "How long an address without a name (or whose lookup failed) is not asked again."),
    OPSC__KEY("dns.timeout", OPSC_CFG_DURATION, dns.timeout_ms, "2s", 100, 60000, 0, 0,
              "How long one reverse lookup waits for a server (tried twice)."),
    OPSC__KEY("dns.cache_max", OPSC_CFG_INT, dns.cache_max, "65536", 16, 16777216, 0, 0,
              "Addresses whose names are cached; the least recently used go first."),
    OPSC__KEY("correlation.down_alert_types", OPSC_CFG_STRLIST, correlation.down_alert_types,
              "device_down,node_down,unreachable", 0, 0, 0, 0,
              "Alert types that mark their device as down (as does any critical alert): while "
              "one is open, new alerts from devices that depend on it (the dependencies table, "
              "transitively) are stored suppressed. Comma-separated, or a YAML sequence."),
    OPSC__KEY("correlation.flap_threshold", OPSC_CFG_INT, correlation.flap_threshold, "5", 0, 64,
              0, 0,
              "A fingerprint resolved more than this many times within correlation.flap_window "
              "is flapping: its last alert is reopened and kept, tagged flapping, until it has "
              "been quiet for a whole window. 0 turns flapping detection off."),
    OPSC__KEY("correlation.flap_window", OPSC_CFG_DURATION, correlation.flap_window_ms, "10m",
              100, 24 * OPSC__MS_H, 0, 0,
              "Window of correlation.flap_threshold, and the quiet time that ends flapping."),
    OPSC__KEY("correlation.flap_track_max", OPSC_CFG_INT, correlation.flap_track_max, "100000",
              16, 10000000, 0, 0,
              "Fingerprints whose recent resolves are remembered for flapping detection; the "
              "least recently resolved one is forgotten first (about 250 bytes each)."),
    OPSC__KEY("correlation.expire_after", OPSC_CFG_DURATION, correlation.expire_after_ms, "0",
              0, 365 * OPSC__MS_D, 0, 0,
              "An open alert with no occurrence for this long becomes expired (history action "
              "expired, rule expiry). 0 = never: an alert nobody cleared stays visible."),
    OPSC__KEY("correlation.expire_after_by_category", OPSC_CFG_STRLIST,
              correlation.expire_after_by_category, NULL, 0, 0, 0, 0,
              "Per-category overrides of correlation.expire_after: CATEGORY=DURATION items "
              "(\"environment=2h,network=0\"), comma-separated or a YAML sequence; 0 = never."),
    OPSC__KEY("database.url", OPSC_CFG_STRING, database.url, NULL, 0, 0, 0, 1,
              "PostgreSQL connection string (URI or key=value); unset runs an embedded "
              "PostgreSQL under data_dir."),
    OPSC__KEY("database.readers", OPSC_CFG_INT, database.readers, "2", 0, 32, 0, 0,
              "Read-only connections next to the single writer (0: reads use the writer)."),
    OPSC__KEY("database.queue_max", OPSC_CFG_INT, database.queue_max, "10000", 1, 10000000, 0, 0,
              "Database requests queued per role while disconnected or busy; beyond it "
              "submissions fail at once."),
    OPSC__KEY("database.connect_timeout", OPSC_CFG_DURATION, database.connect_timeout_ms, "10s",
              100, 10 * OPSC__MS_M, 0, 0,
              "Time allowed for one connection attempt to PostgreSQL."),
    OPSC__KEY("database.reconnect_min", OPSC_CFG_DURATION, database.reconnect_min_ms, "100ms",
              10, OPSC__MS_M, 0, 0,
              "First delay before reconnecting to PostgreSQL; doubles per failure."),
    OPSC__KEY("database.reconnect_max", OPSC_CFG_DURATION, database.reconnect_max_ms, "10s",
              100, 10 * OPSC__MS_M, 0, 0,
              "Longest delay between reconnection attempts."),
    OPSC__KEY("database.embedded_dir", OPSC_CFG_STRING, database.embedded_dir, NULL, 0, 0, 0, 0,
              "Cluster directory of the embedded PostgreSQL (unset: <data_dir>/pg)."),
    OPSC__KEY("database.embedded_user", OPSC_CFG_STRING, database.embedded_user, "postgres",
              0, 0, 0, 0,
              "Unprivileged user that runs the embedded PostgreSQL when the server runs as root."),
    OPSC__KEY("database.embedded_bindir", OPSC_CFG_STRING, database.embedded_bindir, NULL,
              0, 0, 0, 0,
              "Directory with initdb and postgres (unset: pg_config --bindir, then the newest "
              "/usr/lib/postgresql/N/bin)."),
    OPSC__KEY("spool.dir", OPSC_CFG_STRING, spool.dir, NULL, 0, 0, 0, 0,
              "Directory of the spool journal (changes not yet in PostgreSQL); default "
              "<data_dir>/spool."),
    OPSC__KEY("spool.max_bytes", OPSC_CFG_SIZE, spool.max_bytes, "1GiB", OPSC__MIB,
              1024 * OPSC__GIB, 0, 0,
              "Largest size of the spool journal; when full, the pipeline waits and the trap "
              "ring drops (counted)."),
    OPSC__KEY("spool.segment_bytes", OPSC_CFG_SIZE, spool.segment_bytes, "64MiB", 64 * OPSC__KIB,
              OPSC__GIB, 0, 0,
              "Size of one journal segment file; whole segments are deleted once PostgreSQL "
              "has their changes."),
    OPSC__KEY("spool.sync_interval", OPSC_CFG_DURATION, spool.sync_interval_ms, "2ms", 0, 1000, 0,
              0, "Group-commit window of the journal: appends wait this long for company before "
              "one write + fdatasync."),
};
/* clang-format on */

#define OPSC__KEYS_N (sizeof(opsc_config_keys) / sizeof(opsc_config_keys[0]))
_Static_assert(OPSC__KEYS_N <= OPSC__KEYS_MAX, "raise OPSC__KEYS_MAX");

const size_t opsc_config_keys_count = OPSC__KEYS_N;

/* ---- small helpers -------------------------------------------------------------------------- */

/* `s` in double quotes, escaped, cut after 60 bytes ("..." then). */
static void opsc__quote(const char *s, char *out, size_t outlen) {
    size_t o = 0;
    size_t shown = 0;
    if (outlen < 16) {
        if (outlen > 0) {
            out[0] = '\0';
        }
        return;
    }
    out[o++] = '"';
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        char tmp[8];
        if (shown >= 60 || o + 8 + 5 >= outlen) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (c == '"' || c == '\\') {
            snprintf(tmp, sizeof(tmp), "\\%c", c);
        } else if (c == '\n') {
            snprintf(tmp, sizeof(tmp), "\\n");
        } else if (c == '\t') {
            snprintf(tmp, sizeof(tmp), "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(tmp, sizeof(tmp), "\\x%02x", c);
        } else {
            tmp[0] = (char)c;
            tmp[1] = '\0';
        }
        size_t tl = strlen(tmp);
        memcpy(out + o, tmp, tl);
        o += tl;
        shown++;
    }
    out[o++] = '"';
    out[o] = '\0';
}

static void *opsc__field(opsc_config_t *cfg, const opsc_config_key_t *key) {
    return (char *)cfg + key->offset;
}

static const void *opsc__cfield(const opsc_config_t *cfg, const opsc_config_key_t *key) {
    return (const char *)cfg + key->offset;
}

static size_t opsc__key_index(const opsc_config_key_t *key) {
    return (size_t)(key - opsc_config_keys);
}

const opsc_config_key_t *opsc_config_find_key(const char *path) {
    for (size_t i = 0; i < OPSC__KEYS_N; i++) {
        if (strcmp(opsc_config_keys[i].path, path) == 0) {
            return &opsc_config_keys[i];
        }
    }
    return NULL;
}

/* "database" is a section when some key is "database.<something>". */
static int opsc__is_section(const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < OPSC__KEYS_N; i++) {
        const char *p = opsc_config_keys[i].path;
        if (strncmp(p, name, n) == 0 && p[n] == '.') {
            return 1;
        }
    }
    return 0;
}

void opsc_config_env_name(const char *path, char *out, size_t outlen) {
    size_t o = 0;
    if (outlen == 0) {
        return;
    }
    for (const char *p = "OPSC_"; *p != '\0' && o + 1 < outlen; p++) {
        out[o++] = *p;
    }
    for (const char *p = path; *p != '\0' && o + 1 < outlen; p++) {
        unsigned char c = (unsigned char)*p;
        out[o++] = isalnum(c) ? (char)toupper(c) : '_';
    }
    out[o] = '\0';
}

static void opsc__trim(const char *s, char *out, size_t outlen) {
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r')) {
        n--;
    }
    if (n >= outlen) {
        n = outlen - 1;
    }
    memcpy(out, s, n);
    out[n] = '\0';
}

/* ---- human-readable numbers ----------------------------------------------------------------- */

static void opsc__fmt_duration(int64_t ms, char *out, size_t outlen) {
    if (ms != 0 && ms % OPSC__MS_D == 0) {
        snprintf(out, outlen, "%" PRId64 "d", ms / OPSC__MS_D);
    } else if (ms != 0 && ms % OPSC__MS_H == 0) {
        snprintf(out, outlen, "%" PRId64 "h", ms / OPSC__MS_H);
    } else if (ms != 0 && ms % OPSC__MS_M == 0) {
        snprintf(out, outlen, "%" PRId64 "m", ms / OPSC__MS_M);
    } else if (ms % OPSC__MS_S == 0) {
        snprintf(out, outlen, "%" PRId64 "s", ms / OPSC__MS_S);
    } else {
        snprintf(out, outlen, "%" PRId64 "ms", ms);
    }
}

static void opsc__fmt_size(int64_t n, char *out, size_t outlen) {
    if (n != 0 && n % OPSC__GIB == 0) {
        snprintf(out, outlen, "%" PRId64 "GiB", n / OPSC__GIB);
    } else if (n != 0 && n % OPSC__MIB == 0) {
        snprintf(out, outlen, "%" PRId64 "MiB", n / OPSC__MIB);
    } else if (n != 0 && n % OPSC__KIB == 0) {
        snprintf(out, outlen, "%" PRId64 "KiB", n / OPSC__KIB);
    } else {
        snprintf(out, outlen, "%" PRId64, n);
    }
}

static void opsc__fmt_bound(const opsc_config_key_t *key, int64_t v, char *out, size_t outlen) {
    if (key->type == OPSC_CFG_DURATION) {
        opsc__fmt_duration(v, out, outlen);
    } else if (key->type == OPSC_CFG_SIZE) {
        opsc__fmt_size(v, out, outlen);
    } else {
        snprintf(out, outlen, "%" PRId64, v);
    }
}

/* ---- scalar parsers ------------------------------------------------------------------------- */

/* Unsigned decimal digits at *s into *out; advances *s. 0, or -1 on none/overflow. */
static int opsc__digits(const char **s, int64_t *out) {
    const char *p = *s;
    int64_t v = 0;
    if (!isdigit((unsigned char)*p)) {
        return -1;
    }
    for (; isdigit((unsigned char)*p); p++) {
        int d = *p - '0';
        if (v > (INT64_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    *s = p;
    *out = v;
    return 0;
}

static int opsc__parse_int(const char *s, int64_t *out) {
    int neg = 0;
    int64_t v;
    if (*s == '+' || *s == '-') {
        neg = *s == '-';
        s++;
    }
    if (opsc__digits(&s, &v) != 0 || *s != '\0') {
        return -1;
    }
    *out = neg ? -v : v;
    return 0;
}

/* Number with a unit from `units` (case-insensitive); "" in the table = no unit. */
typedef struct opsc__unit_s {
    const char *name;
    int64_t mult;
} opsc__unit_t;

static const opsc__unit_t opsc__duration_units[] = {
    {"", OPSC__MS_S},  {"ms", 1},         {"s", OPSC__MS_S}, {"m", OPSC__MS_M},
    {"h", OPSC__MS_H}, {"d", OPSC__MS_D}, {NULL, 0},
};

static const opsc__unit_t opsc__size_units[] = {
    {"", 1},           {"b", 1},           {"k", OPSC__KIB},
    {"kb", OPSC__KIB}, {"kib", OPSC__KIB}, {"m", OPSC__MIB},
    {"mb", OPSC__MIB}, {"mib", OPSC__MIB}, {"g", OPSC__GIB},
    {"gb", OPSC__GIB}, {"gib", OPSC__GIB}, {NULL, 0},
};

static int opsc__parse_unit(const char *s, const opsc__unit_t *units, int64_t *out) {
    int64_t v;
    if (opsc__digits(&s, &v) != 0) {
        return -1;
    }
    while (*s == ' ') {
        s++;
    }
    for (const opsc__unit_t *u = units; u->name != NULL; u++) {
        if (strcasecmp(s, u->name) == 0) {
            if (v > INT64_MAX / u->mult) {
                return -1;
            }
            *out = v * u->mult;
            return 0;
        }
    }
    return -1;
}

/* ---- listen addresses ----------------------------------------------------------------------- */

static const char *opsc__listen_expect(opsc_proto_t proto) {
    return proto == OPSC_PROTO_UDP ? "a comma-separated list of udp:HOST:PORT or udp6:[IPV6]:PORT"
                                   : "a comma-separated list of HOST:PORT or [IPV6]:PORT";
}

/* One trimmed address. On error `why` says what is wrong with it. */
static int opsc__listen_parse_one(const char *item, opsc_proto_t proto, opsc_listen_t *out,
                                  const char **why) {
    char host[128];
    const char *s = item;
    const char *port_s;
    int want6 = 0;
    unsigned char addr[16];

    if (proto == OPSC_PROTO_UDP) {
        if (strncasecmp(s, "udp6:", 5) == 0) {
            s += 5;
            want6 = 1;
        } else if (strncasecmp(s, "udp:", 4) == 0) {
            s += 4;
        } else if (strncasecmp(s, "tcp:", 4) == 0 || strncasecmp(s, "tcp6:", 5) == 0) {
            *why = "a TCP address where UDP is expected";
            return -1;
        }
    } else if (strncasecmp(s, "udp:", 4) == 0 || strncasecmp(s, "udp6:", 5) == 0) {
        *why = "a UDP address where TCP is expected";
        return -1;
    }

    memset(out, 0, sizeof(*out));
    out->proto = proto;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL) {
            *why = "missing ']' after the IPv6 address";
            return -1;
        }
        size_t hl = (size_t)(end - s - 1);
        if (hl == 0 || hl >= sizeof(host)) {
            *why = "host must be a numeric IPv6 address inside [ ]";
            return -1;
        }
        memcpy(host, s + 1, hl);
        host[hl] = '\0';
        if (end[1] != ':') {
            *why = "missing :PORT after ]";
            return -1;
        }
        port_s = end + 2;
        if (inet_pton(AF_INET6, host, addr) != 1) {
            *why = "host must be a numeric IPv6 address inside [ ]";
            return -1;
        }
        out->family = AF_INET6;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL) {
            *why = "missing :PORT";
            return -1;
        }
        size_t hl = (size_t)(colon - s);
        if (hl == 0) {
            *why = "missing host (0.0.0.0 is every IPv4 address, [::] every IPv6 one)";
            return -1;
        }
        if (hl >= sizeof(host)) {
            *why = "host must be a numeric IP address or localhost";
            return -1;
        }
        memcpy(host, s, hl);
        host[hl] = '\0';
        port_s = colon + 1;
        if (strchr(host, ':') != NULL) {
            *why = "an IPv6 address needs brackets, like [::1]:8080";
            return -1;
        }
        if (strcasecmp(host, "localhost") == 0) {
            strcpy(host, "127.0.0.1");
        }
        if (inet_pton(AF_INET, host, addr) != 1) {
            *why = "host must be a numeric IP address or localhost";
            return -1;
        }
        out->family = AF_INET;
    }
    if (want6 && out->family != AF_INET6) {
        *why = "udp6: needs an IPv6 address in brackets, like udp6:[::]:162";
        return -1;
    }

    int64_t port;
    const char *p = port_s;
    if (opsc__digits(&p, &port) != 0 || *p != '\0' || port > 65535 || p - port_s > 5) {
        *why = "port must be a number from 0 to 65535";
        return -1;
    }
    out->port = (int)port;
    /* Canonical text, so "[::0]" and "[::]" compare equal. */
    inet_ntop(out->family, addr, out->host, sizeof(out->host));
    return 0;
}

static int opsc__listen_same(const opsc_listen_t *a, const opsc_listen_t *b) {
    return a->proto == b->proto && a->family == b->family && a->port == b->port &&
           strcmp(a->host, b->host) == 0;
}

/* Append the addresses in `text` to `list`; errbuf: `"item": why`. */
static int opsc__listen_append(const char *text, opsc_proto_t proto, opsc_listen_list_t *list,
                               char *errbuf, size_t errlen) {
    char item[256];
    char q[96];
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char raw[256];
        if (n >= sizeof(raw)) {
            opsc_errbuf_printf(errbuf, errlen, "address too long (%zu bytes)", n);
            return OPSC_ECONFIG;
        }
        memcpy(raw, p, n);
        raw[n] = '\0';
        opsc__trim(raw, item, sizeof(item));
        if (item[0] == '\0') {
            opsc__quote(text, q, sizeof(q));
            opsc_errbuf_printf(errbuf, errlen, "%s: empty address in the list", q);
            return OPSC_ECONFIG;
        }
        opsc_listen_t a;
        const char *why = NULL;
        if (opsc__listen_parse_one(item, proto, &a, &why) != 0) {
            opsc__quote(item, q, sizeof(q));
            opsc_errbuf_printf(errbuf, errlen, "%s: %s", q, why);
            return OPSC_ECONFIG;
        }
        for (int i = 0; i < list->count; i++) {
            /* Port 0 (ephemeral, tests) may repeat: every bind gets its own port. */
            if (a.port != 0 && opsc__listen_same(&list->addr[i], &a)) {
                opsc__quote(item, q, sizeof(q));
                opsc_errbuf_printf(errbuf, errlen, "%s: duplicate address", q);
                return OPSC_ECONFIG;
            }
        }
        if (list->count >= OPSC_LISTEN_MAX) {
            opsc_errbuf_printf(errbuf, errlen, "too many addresses (at most %d)", OPSC_LISTEN_MAX);
            return OPSC_ECONFIG;
        }
        list->addr[list->count++] = a;
        if (comma == NULL) {
            break;
        }
        p = comma + 1;
    }
    return 0;
}

int opsc_listen_parse_list(const char *text, opsc_proto_t proto, opsc_listen_list_t *out,
                           char *errbuf, size_t errlen) {
    opsc_listen_list_t tmp;
    char trimmed[8];
    memset(&tmp, 0, sizeof(tmp));
    opsc__trim(text != NULL ? text : "", trimmed, sizeof(trimmed));
    if (trimmed[0] == '\0') {
        opsc_errbuf_printf(errbuf, errlen, "no address given");
        return OPSC_ECONFIG;
    }
    int rc = opsc__listen_append(text, proto, &tmp, errbuf, errlen);
    if (rc != 0) {
        return rc;
    }
    *out = tmp;
    return 0;
}

void opsc_listen_format_port(const opsc_listen_t *a, int port, char *out, size_t outlen) {
    const char *prefix = "";
    /* A local copy: callers may format into the struct that holds `a`. */
    char host[sizeof(a->host)];
    memcpy(host, a->host, sizeof(host));
    host[sizeof(host) - 1] = '\0';
    if (a->proto == OPSC_PROTO_UDP) {
        prefix = a->family == AF_INET6 ? "udp6:" : "udp:";
    }
    if (a->family == AF_INET6) {
        snprintf(out, outlen, "%s[%s]:%d", prefix, host, port);
    } else {
        snprintf(out, outlen, "%s%s:%d", prefix, host, port);
    }
}

void opsc_listen_format(const opsc_listen_t *a, char *out, size_t outlen) {
    opsc_listen_format_port(a, a->port, out, outlen);
}

static void opsc__listen_list_format(const opsc_listen_list_t *l, char *out, size_t outlen) {
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < l->count && o + 1 < outlen; i++) {
        char one[96];
        opsc_listen_format(&l->addr[i], one, sizeof(one));
        int n = snprintf(out + o, outlen - o, "%s%s", i > 0 ? "," : "", one);
        if (n < 0) {
            break;
        }
        o += (size_t)n;
    }
}

/* ---- one value ------------------------------------------------------------------------------ */

static void opsc__bad_value(const opsc_config_key_t *key, const char *text, char *errbuf,
                            size_t errlen, const char *expected) {
    char q[96];
    if (text == NULL || text[0] == '\0') {
        snprintf(q, sizeof(q), "an empty value");
    } else if (key->secret) {
        snprintf(q, sizeof(q), "a value (hidden: secret)");
    } else {
        opsc__quote(text, q, sizeof(q));
    }
    opsc_errbuf_printf(errbuf, errlen, "%s: expected %s, got %s", key->path, expected, q);
}

static void opsc__expected(const opsc_config_key_t *key, char *out, size_t outlen) {
    char lo[32], hi[32];
    opsc__fmt_bound(key, key->min, lo, sizeof(lo));
    opsc__fmt_bound(key, key->max, hi, sizeof(hi));
    switch (key->type) {
    case OPSC_CFG_STRING:
        snprintf(out, outlen, "a non-empty value");
        break;
    case OPSC_CFG_INT:
        snprintf(out, outlen, "an integer from %s to %s", lo, hi);
        break;
    case OPSC_CFG_DURATION:
        snprintf(out, outlen,
                 "a duration from %s to %s (like 250ms, 5s, 2m, 1h, 1d; a bare number is seconds)",
                 lo, hi);
        break;
    case OPSC_CFG_SIZE:
        snprintf(out, outlen, "a size from %s to %s (like 2048, 16KiB, 1MiB)", lo, hi);
        break;
    case OPSC_CFG_LOGLEVEL:
        snprintf(out, outlen, "one of error, warn, info, debug, trace");
        break;
    case OPSC_CFG_LOGFORMAT:
        snprintf(out, outlen, "one of logfmt, json");
        break;
    case OPSC_CFG_LISTEN_TCP:
        snprintf(out, outlen, "%s", opsc__listen_expect(OPSC_PROTO_TCP));
        break;
    case OPSC_CFG_LISTEN_UDP:
        snprintf(out, outlen, "%s", opsc__listen_expect(OPSC_PROTO_UDP));
        break;
    case OPSC_CFG_STRLIST:
        snprintf(out, outlen, "a comma-separated list or a YAML sequence of strings");
        break;
    case OPSC_CFG_ENGINE_ID:
        snprintf(out, outlen, "an engine ID of %s to %s bytes in hex, like 0x80001f8804abcdef", lo,
                 hi);
        break;
    case OPSC_CFG_SNMP_V3_USERS:
        snprintf(out, outlen,
                 "a sequence of users {name, auth_protocol, auth_passphrase, "
                 "priv_protocol, priv_passphrase, engine_id}");
        break;
    }
}

/* ---- SNMP values: community lists, engine IDs, v3 users ------------------------------------- */

static void opsc__strlist_free(opsc_strlist_t *l) {
    for (size_t i = 0; i < l->count; i++) {
        opsc_free(l->items[i]);
    }
    opsc_free(l->items);
    l->items = NULL;
    l->count = 0;
}

/* Append a copy of s[0..n). 0 or OPSC_ENOMEM. */
static int opsc__strlist_add(opsc_strlist_t *l, const char *s, size_t n) {
    char **items = opsc_realloc(l->items, (l->count + 1) * sizeof(*items));
    if (items == NULL) {
        return OPSC_ENOMEM;
    }
    l->items = items;
    char *copy = opsc_malloc(n + 1);
    if (copy == NULL) {
        return OPSC_ENOMEM;
    }
    memcpy(copy, s, n);
    copy[n] = '\0';
    l->items[l->count++] = copy;
    return 0;
}

static int opsc__strlist_copy(opsc_strlist_t *dst, const opsc_strlist_t *src) {
    opsc_strlist_t tmp = {0, NULL};
    for (size_t i = 0; i < src->count; i++) {
        if (opsc__strlist_add(&tmp, src->items[i], strlen(src->items[i])) != 0) {
            opsc__strlist_free(&tmp);
            return OPSC_ENOMEM;
        }
    }
    opsc__strlist_free(dst);
    *dst = tmp;
    return 0;
}

/* "a, b,c" -> 3 items; blank -> none. `why` on error never quotes items: they may be secret. */
static int opsc__strlist_parse(const char *text, opsc_strlist_t *out, const char **why) {
    opsc_strlist_t tmp = {0, NULL};
    const char *p = text;
    int blank = 1;
    for (const char *q = text; *q != '\0'; q++) {
        blank &= *q == ' ' || *q == '\t' || *q == '\n' || *q == '\r';
    }
    if (!blank) {
        for (;;) {
            const char *comma = strchr(p, ',');
            const char *end = comma != NULL ? comma : p + strlen(p);
            while (p < end && (*p == ' ' || *p == '\t')) {
                p++;
            }
            while (end > p &&
                   (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r')) {
                end--;
            }
            if (end == p) {
                opsc__strlist_free(&tmp);
                *why = "empty item in the list";
                return OPSC_ECONFIG;
            }
            if (opsc__strlist_add(&tmp, p, (size_t)(end - p)) != 0) {
                opsc__strlist_free(&tmp);
                *why = "out of memory";
                return OPSC_ECONFIG;
            }
            if (comma == NULL) {
                break;
            }
            p = comma + 1;
        }
    }
    opsc__strlist_free(out);
    *out = tmp;
    return 0;
}

static int opsc__hexval(int c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int opsc_engine_id_parse(const char *text, opsc_engine_id_t *out, char *errbuf, size_t errlen) {
    opsc_engine_id_t id;
    memset(&id, 0, sizeof(id));
    const char *p = text != NULL ? text : "";
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        p += 2;
    }
    size_t n = strlen(p);
    if (n % 2 != 0) {
        opsc_errbuf_printf(errbuf, errlen, "an odd number of hex digits");
        return OPSC_ECONFIG;
    }
    if (n / 2 < 5 || n / 2 > OPSC_SNMP_ENGINE_ID_MAX) {
        opsc_errbuf_printf(errbuf, errlen, "%zu bytes, an engine ID has 5 to %d", n / 2,
                           OPSC_SNMP_ENGINE_ID_MAX);
        return OPSC_ECONFIG;
    }
    for (size_t i = 0; i < n; i += 2) {
        int hi = opsc__hexval((unsigned char)p[i]);
        int lo = opsc__hexval((unsigned char)p[i + 1]);
        if (hi < 0 || lo < 0) {
            opsc_errbuf_printf(errbuf, errlen, "not a hex digit at position %zu",
                               (size_t)(p - (text != NULL ? text : "")) + i + (hi < 0 ? 1 : 2));
            return OPSC_ECONFIG;
        }
        id.bytes[id.len++] = (unsigned char)(hi << 4 | lo);
    }
    *out = id;
    return 0;
}

void opsc_engine_id_format(const opsc_engine_id_t *id, char *out, size_t outlen) {
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;
    if (outlen == 0) {
        return;
    }
    for (size_t i = 0; i < id->len && i < OPSC_SNMP_ENGINE_ID_MAX && o + 2 < outlen; i++) {
        out[o++] = digits[id->bytes[i] >> 4];
        out[o++] = digits[id->bytes[i] & 0xf];
    }
    out[o] = '\0';
}

typedef struct opsc__proto_name_s {
    const char *name;
    int value;
} opsc__proto_name_t;

/* The first spelling of each value is the canonical one. */
static const opsc__proto_name_t opsc__auth_names[] = {
    {"none", OPSC_SNMP_AUTH_NONE},     {"MD5", OPSC_SNMP_AUTH_MD5},
    {"SHA", OPSC_SNMP_AUTH_SHA},       {"SHA1", OPSC_SNMP_AUTH_SHA},
    {"SHA-1", OPSC_SNMP_AUTH_SHA},     {"SHA-224", OPSC_SNMP_AUTH_SHA224},
    {"SHA224", OPSC_SNMP_AUTH_SHA224}, {"SHA-256", OPSC_SNMP_AUTH_SHA256},
    {"SHA256", OPSC_SNMP_AUTH_SHA256}, {"SHA-384", OPSC_SNMP_AUTH_SHA384},
    {"SHA384", OPSC_SNMP_AUTH_SHA384}, {"SHA-512", OPSC_SNMP_AUTH_SHA512},
    {"SHA512", OPSC_SNMP_AUTH_SHA512}, {NULL, 0},
};

static const opsc__proto_name_t opsc__priv_names[] = {
    {"none", OPSC_SNMP_PRIV_NONE},      {"DES", OPSC_SNMP_PRIV_DES},
    {"AES-128", OPSC_SNMP_PRIV_AES128}, {"AES", OPSC_SNMP_PRIV_AES128},
    {"AES128", OPSC_SNMP_PRIV_AES128},  {"AES-192", OPSC_SNMP_PRIV_AES192},
    {"AES192", OPSC_SNMP_PRIV_AES192},  {"AES-256", OPSC_SNMP_PRIV_AES256},
    {"AES256", OPSC_SNMP_PRIV_AES256},  {NULL, 0},
};

static const char *opsc__proto_name(const opsc__proto_name_t *t, int v) {
    for (; t->name != NULL; t++) {
        if (t->value == v) {
            return t->name;
        }
    }
    return "?";
}

const char *opsc_snmp_auth_name(opsc_snmp_auth_t auth) {
    return opsc__proto_name(opsc__auth_names, (int)auth);
}

const char *opsc_snmp_priv_name(opsc_snmp_priv_t priv) {
    return opsc__proto_name(opsc__priv_names, (int)priv);
}

static int opsc__proto_lookup(const opsc__proto_name_t *t, const char *s, int *out) {
    for (; t->name != NULL; t++) {
        if (strcasecmp(t->name, s) == 0) {
            *out = t->value;
            return 0;
        }
    }
    return -1;
}

static void opsc__v3_user_free(opsc_snmp_v3_user_t *u) {
    opsc_free(u->name);
    /* Passphrases: wipe before freeing, they are the keys to the v3 traffic. */
    if (u->auth_passphrase != NULL) {
        memset(u->auth_passphrase, 0, strlen(u->auth_passphrase));
        opsc_free(u->auth_passphrase);
    }
    if (u->priv_passphrase != NULL) {
        memset(u->priv_passphrase, 0, strlen(u->priv_passphrase));
        opsc_free(u->priv_passphrase);
    }
    memset(u, 0, sizeof(*u));
}

static void opsc__v3_users_free(opsc_snmp_v3_users_t *l) {
    for (size_t i = 0; i < l->count; i++) {
        opsc__v3_user_free(&l->users[i]);
    }
    opsc_free(l->users);
    l->users = NULL;
    l->count = 0;
}

/* A new zeroed user at the end of l; NULL when out of memory. */
static opsc_snmp_v3_user_t *opsc__v3_users_push(opsc_snmp_v3_users_t *l) {
    opsc_snmp_v3_user_t *users = opsc_realloc(l->users, (l->count + 1) * sizeof(*users));
    if (users == NULL) {
        return NULL;
    }
    l->users = users;
    memset(&users[l->count], 0, sizeof(users[0]));
    return &users[l->count++];
}

static int opsc__dup_or_null(const char *s, char **out) {
    *out = NULL;
    if (s == NULL) {
        return 0;
    }
    *out = opsc_strdup(s);
    return *out == NULL ? OPSC_ENOMEM : 0;
}

static int opsc__v3_users_copy(opsc_snmp_v3_users_t *dst, const opsc_snmp_v3_users_t *src) {
    opsc_snmp_v3_users_t tmp = {0, NULL};
    for (size_t i = 0; i < src->count; i++) {
        const opsc_snmp_v3_user_t *s = &src->users[i];
        opsc_snmp_v3_user_t *d = opsc__v3_users_push(&tmp);
        if (d == NULL) {
            goto error;
        }
        *d = *s;
        d->name = d->auth_passphrase = d->priv_passphrase = NULL;
        if (opsc__dup_or_null(s->name, &d->name) != 0 ||
            opsc__dup_or_null(s->auth_passphrase, &d->auth_passphrase) != 0 ||
            opsc__dup_or_null(s->priv_passphrase, &d->priv_passphrase) != 0) {
            goto error;
        }
    }
    opsc__v3_users_free(dst);
    *dst = tmp;
    return 0;
error:
    opsc__v3_users_free(&tmp);
    return OPSC_ENOMEM;
}

#define OPSC__V3_NAME 0x01u
#define OPSC__V3_AUTH 0x02u
#define OPSC__V3_AUTH_PASS 0x04u
#define OPSC__V3_PRIV 0x08u
#define OPSC__V3_PRIV_PASS 0x10u
#define OPSC__V3_ENGINE 0x20u
#define OPSC__V3_FIELDS                                                                            \
    "name, auth_protocol, auth_passphrase, priv_protocol, priv_passphrase, engine_id"
#define OPSC__PASSPHRASE_MIN 8

/*
 * Set one field of a user from its text (NULL: a null value, same as absent).
 * On error `why` gets "<field>: <reason>"; passphrases are never quoted.
 */
static int opsc__v3_user_field(opsc_snmp_v3_user_t *u, unsigned *seen, const char *field,
                               const char *text, char *why, size_t whylen) {
    char q[96];
    unsigned bit;
    if (strcmp(field, "name") == 0) {
        bit = OPSC__V3_NAME;
    } else if (strcmp(field, "auth_protocol") == 0) {
        bit = OPSC__V3_AUTH;
    } else if (strcmp(field, "auth_passphrase") == 0) {
        bit = OPSC__V3_AUTH_PASS;
    } else if (strcmp(field, "priv_protocol") == 0) {
        bit = OPSC__V3_PRIV;
    } else if (strcmp(field, "priv_passphrase") == 0) {
        bit = OPSC__V3_PRIV_PASS;
    } else if (strcmp(field, "engine_id") == 0) {
        bit = OPSC__V3_ENGINE;
    } else {
        opsc__quote(field, q, sizeof(q));
        opsc_errbuf_printf(why, whylen, "unknown field %s, expected one of " OPSC__V3_FIELDS, q);
        return OPSC_ECONFIG;
    }
    if (*seen & bit) {
        opsc_errbuf_printf(why, whylen, "%s: given twice", field);
        return OPSC_ECONFIG;
    }
    *seen |= bit;
    if (text == NULL) {
        return 0;
    }
    switch (bit) {
    case OPSC__V3_NAME: {
        size_t n = strlen(text);
        if (n == 0 || n > 32) {
            opsc__quote(text, q, sizeof(q));
            opsc_errbuf_printf(why, whylen, "name: expected 1 to 32 characters, got %s", q);
            return OPSC_ECONFIG;
        }
        return opsc__dup_or_null(text, &u->name) == 0 ? 0 : OPSC_ECONFIG;
    }
    case OPSC__V3_AUTH:
    case OPSC__V3_PRIV: {
        int v;
        const opsc__proto_name_t *t = bit == OPSC__V3_AUTH ? opsc__auth_names : opsc__priv_names;
        char trimmed[64];
        opsc__trim(text, trimmed, sizeof(trimmed));
        if (opsc__proto_lookup(t, trimmed, &v) != 0) {
            opsc__quote(text, q, sizeof(q));
            opsc_errbuf_printf(why, whylen, "%s: expected one of %s, got %s", field,
                               bit == OPSC__V3_AUTH
                                   ? "none, MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512"
                                   : "none, DES, AES, AES-128, AES-192, AES-256",
                               q);
            return OPSC_ECONFIG;
        }
        if (bit == OPSC__V3_AUTH) {
            u->auth = (opsc_snmp_auth_t)v;
        } else {
            u->priv = (opsc_snmp_priv_t)v;
        }
        return 0;
    }
    case OPSC__V3_AUTH_PASS:
    case OPSC__V3_PRIV_PASS: {
        size_t n = strlen(text);
        if (n < OPSC__PASSPHRASE_MIN || n > 1024) {
            opsc_errbuf_printf(why, whylen, "%s: expected %d to 1024 characters, got %zu", field,
                               OPSC__PASSPHRASE_MIN, n);
            return OPSC_ECONFIG;
        }
        return opsc__dup_or_null(text, bit == OPSC__V3_AUTH_PASS ? &u->auth_passphrase
                                                                 : &u->priv_passphrase) == 0
                   ? 0
                   : OPSC_ECONFIG;
    }
    case OPSC__V3_ENGINE: {
        char reason[128];
        char trimmed[128];
        opsc__trim(text, trimmed, sizeof(trimmed));
        if (opsc_engine_id_parse(trimmed, &u->engine_id, reason, sizeof(reason)) != 0) {
            opsc__quote(text, q, sizeof(q));
            opsc_errbuf_printf(why, whylen, "engine_id: expected 5 to %d bytes in hex, got %s (%s)",
                               OPSC_SNMP_ENGINE_ID_MAX, q, reason);
            return OPSC_ECONFIG;
        }
        return 0;
    }
    default:
        return OPSC_ECONFIG;
    }
}

/* Rules between the fields of one user, once all are set. */
static int opsc__v3_user_check(const opsc_snmp_v3_user_t *u, char *why, size_t whylen) {
    if (u->name == NULL) {
        opsc_errbuf_printf(why, whylen, "name: missing");
        return OPSC_ECONFIG;
    }
    if (u->auth != OPSC_SNMP_AUTH_NONE && u->auth_passphrase == NULL) {
        opsc_errbuf_printf(why, whylen, "auth_passphrase: missing (auth_protocol is %s)",
                           opsc_snmp_auth_name(u->auth));
        return OPSC_ECONFIG;
    }
    if (u->auth == OPSC_SNMP_AUTH_NONE && u->auth_passphrase != NULL) {
        opsc_errbuf_printf(why, whylen,
                           "auth_passphrase: given, but auth_protocol is none (or missing)");
        return OPSC_ECONFIG;
    }
    if (u->priv != OPSC_SNMP_PRIV_NONE && u->auth == OPSC_SNMP_AUTH_NONE) {
        opsc_errbuf_printf(why, whylen,
                           "priv_protocol: privacy needs authentication (set auth_protocol)");
        return OPSC_ECONFIG;
    }
    if (u->priv != OPSC_SNMP_PRIV_NONE && u->priv_passphrase == NULL) {
        opsc_errbuf_printf(why, whylen, "priv_passphrase: missing (priv_protocol is %s)",
                           opsc_snmp_priv_name(u->priv));
        return OPSC_ECONFIG;
    }
    if (u->priv == OPSC_SNMP_PRIV_NONE && u->priv_passphrase != NULL) {
        opsc_errbuf_printf(why, whylen,
                           "priv_passphrase: given, but priv_protocol is none (or missing)");
        return OPSC_ECONFIG;
    }
    return 0;
}

/* Index of a user that repeats an earlier (name, engine_id), or -1. */
static long opsc__v3_users_dup(const opsc_snmp_v3_users_t *l) {
    for (size_t i = 1; i < l->count; i++) {
        for (size_t j = 0; j < i; j++) {
            const opsc_snmp_v3_user_t *a = &l->users[i], *b = &l->users[j];
            if (strcmp(a->name, b->name) == 0 && a->engine_id.len == b->engine_id.len &&
                memcmp(a->engine_id.bytes, b->engine_id.bytes, a->engine_id.len) == 0) {
                return (long)i;
            }
        }
    }
    return -1;
}

/* "user 2 (\"alice\")" for messages (1-based, as people count). */
static void opsc__v3_user_label(const opsc_snmp_v3_user_t *u, size_t index, char *out,
                                size_t outlen) {
    char q[96];
    if (u->name != NULL) {
        opsc__quote(u->name, q, sizeof(q));
        snprintf(out, outlen, "user %zu (%s)", index + 1, q);
    } else {
        snprintf(out, outlen, "user %zu", index + 1);
    }
}

/* The environment form: a JSON array of objects. errbuf gets "<key>: ..." without location. */
static int opsc__v3_users_parse_json(const opsc_config_key_t *key, const char *text,
                                     opsc_snmp_v3_users_t *out, char *errbuf, size_t errlen) {
    opsc_snmp_v3_users_t tmp = {0, NULL};
    json_error_t jerr;
    json_t *root = NULL;
    char why[256];
    char label[128];
    int rc = OPSC_ECONFIG;
    const char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
        p++;
    }
    if (*p == '\0') {
        opsc__v3_users_free(out);
        return 0;
    }
    root = json_loads(p, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        /* jansson's text quotes the input near the error: it may hold a passphrase. */
        opsc_errbuf_printf(errbuf, errlen,
                           "%s: expected a JSON array of objects {" OPSC__V3_FIELDS
                           "}, got invalid JSON (line %d, column %d)",
                           key->path, jerr.line, jerr.column);
        goto cleanup;
    }
    if (!json_is_array(root)) {
        opsc_errbuf_printf(errbuf, errlen,
                           "%s: expected a JSON array of objects {" OPSC__V3_FIELDS "}, got %s",
                           key->path, json_is_object(root) ? "an object" : "a scalar");
        goto cleanup;
    }
    for (size_t i = 0; i < json_array_size(root); i++) {
        json_t *obj = json_array_get(root, i);
        unsigned seen = 0;
        opsc_snmp_v3_user_t *u = opsc__v3_users_push(&tmp);
        if (u == NULL) {
            opsc_errbuf_printf(errbuf, errlen, "%s: out of memory", key->path);
            goto cleanup;
        }
        snprintf(u->src, sizeof(u->src), "%s[%zu]", key->path, i);
        if (!json_is_object(obj)) {
            opsc_errbuf_printf(errbuf, errlen,
                               "%s: user %zu: expected an object {" OPSC__V3_FIELDS "}", key->path,
                               i + 1);
            goto cleanup;
        }
        /* The name first, so that later messages can say whose field is wrong. */
        json_t *name = json_object_get(obj, "name");
        if (name != NULL && !json_is_string(name) && !json_is_null(name)) {
            opsc_errbuf_printf(errbuf, errlen, "%s: user %zu: name: expected a string", key->path,
                               i + 1);
            goto cleanup;
        }
        if (opsc__v3_user_field(u, &seen, "name",
                                json_is_string(name) ? json_string_value(name) : NULL, why,
                                sizeof(why)) != 0) {
            opsc_errbuf_printf(errbuf, errlen, "%s: user %zu: %s", key->path, i + 1, why);
            goto cleanup;
        }
        const char *field;
        json_t *val;
        json_object_foreach(obj, field, val) {
            if (strcmp(field, "name") == 0) {
                continue;
            }
            opsc__v3_user_label(u, i, label, sizeof(label));
            if (!json_is_string(val) && !json_is_null(val)) {
                opsc_errbuf_printf(errbuf, errlen, "%s: %s: %s: expected a string", key->path,
                                   label, field);
                goto cleanup;
            }
            if (opsc__v3_user_field(u, &seen, field,
                                    json_is_string(val) ? json_string_value(val) : NULL, why,
                                    sizeof(why)) != 0) {
                opsc_errbuf_printf(errbuf, errlen, "%s: %s: %s", key->path, label, why);
                goto cleanup;
            }
        }
        if (opsc__v3_user_check(u, why, sizeof(why)) != 0) {
            opsc__v3_user_label(u, i, label, sizeof(label));
            opsc_errbuf_printf(errbuf, errlen, "%s: %s: %s", key->path, label, why);
            goto cleanup;
        }
    }
    long dup = opsc__v3_users_dup(&tmp);
    if (dup >= 0) {
        opsc__v3_user_label(&tmp.users[dup], (size_t)dup, label, sizeof(label));
        opsc_errbuf_printf(errbuf, errlen, "%s: %s: the same name and engine_id as an earlier user",
                           key->path, label);
        goto cleanup;
    }
    opsc__v3_users_free(out);
    *out = tmp;
    tmp.count = 0;
    tmp.users = NULL;
    rc = 0;

cleanup:
    opsc__v3_users_free(&tmp);
    if (root != NULL) {
        json_decref(root);
    }
    return rc;
}

/* Users as YAML flow text with the passphrases masked. */
static void opsc__v3_users_format(const opsc_snmp_v3_users_t *l, char *out, size_t outlen) {
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < l->count && o + 1 < outlen; i++) {
        const opsc_snmp_v3_user_t *u = &l->users[i];
        char engine[2 * OPSC_SNMP_ENGINE_ID_MAX + 3] = "";
        if (u->engine_id.len > 0) {
            engine[0] = '0';
            engine[1] = 'x';
            opsc_engine_id_format(&u->engine_id, engine + 2, sizeof(engine) - 2);
        }
        int n = snprintf(
            out + o, outlen - o, "%s{name: %s, auth_protocol: %s%s, priv_protocol: %s%s%s%s}%s",
            i == 0 ? "[" : ", ", u->name != NULL ? u->name : "", opsc_snmp_auth_name(u->auth),
            u->auth_passphrase != NULL ? ", auth_passphrase: ***" : "",
            opsc_snmp_priv_name(u->priv),
            u->priv_passphrase != NULL ? ", priv_passphrase: ***" : "",
            u->engine_id.len > 0 ? ", engine_id: " : "", engine, i + 1 == l->count ? "]" : "");
        if (n < 0) {
            break;
        }
        o += (size_t)n;
    }
}

static int opsc__v3_users_equal(const opsc_snmp_v3_users_t *a, const opsc_snmp_v3_users_t *b) {
    if (a->count != b->count) {
        return 0;
    }
    for (size_t i = 0; i < a->count; i++) {
        const opsc_snmp_v3_user_t *x = &a->users[i], *y = &b->users[i];
        const char *xs[3] = {x->name, x->auth_passphrase, x->priv_passphrase};
        const char *ys[3] = {y->name, y->auth_passphrase, y->priv_passphrase};
        for (int k = 0; k < 3; k++) {
            if ((xs[k] == NULL) != (ys[k] == NULL) ||
                (xs[k] != NULL && strcmp(xs[k], ys[k]) != 0)) {
                return 0;
            }
        }
        if (x->auth != y->auth || x->priv != y->priv || x->engine_id.len != y->engine_id.len ||
            memcmp(x->engine_id.bytes, y->engine_id.bytes, x->engine_id.len) != 0) {
            return 0;
        }
    }
    return 1;
}

static int opsc__strlist_equal(const opsc_strlist_t *a, const opsc_strlist_t *b) {
    if (a->count != b->count) {
        return 0;
    }
    for (size_t i = 0; i < a->count; i++) {
        if (strcmp(a->items[i], b->items[i]) != 0) {
            return 0;
        }
    }
    return 1;
}

/* parse_value for the SNMP types: any text length, empty = unset. */
static int opsc__parse_snmp_value(const opsc_config_key_t *key, const char *text, void *dst,
                                  char *errbuf, size_t errlen) {
    char expected[160];
    opsc__expected(key, expected, sizeof(expected));
    switch (key->type) {
    case OPSC_CFG_STRLIST: {
        const char *why = NULL;
        if (opsc__strlist_parse(text, dst, &why) != 0) {
            opsc_errbuf_printf(errbuf, errlen, "%s: %s; expected %s", key->path, why, expected);
            return OPSC_ECONFIG;
        }
        return 0;
    }
    case OPSC_CFG_ENGINE_ID: {
        char t[256];
        char reason[128];
        opsc_engine_id_t id;
        if (strlen(text) >= sizeof(t)) {
            opsc__bad_value(key, text, errbuf, errlen, expected);
            return OPSC_ECONFIG;
        }
        opsc__trim(text, t, sizeof(t));
        if (t[0] == '\0') {
            memset(dst, 0, sizeof(opsc_engine_id_t));
            return 0;
        }
        if (opsc_engine_id_parse(t, &id, reason, sizeof(reason)) != 0 ||
            (int64_t)id.len < key->min || (int64_t)id.len > key->max) {
            opsc__bad_value(key, t, errbuf, errlen, expected);
            return OPSC_ECONFIG;
        }
        *(opsc_engine_id_t *)dst = id;
        return 0;
    }
    case OPSC_CFG_SNMP_V3_USERS:
        return opsc__v3_users_parse_json(key, text, dst, errbuf, errlen);
    default:
        break;
    }
    opsc_errbuf_printf(errbuf, errlen, "%s: unsupported key type", key->path);
    return OPSC_ECONFIG;
}

int opsc_config_parse_value(const opsc_config_key_t *key, const char *text, void *dst, char *errbuf,
                            size_t errlen) {
    char expected[160];
    char t[2048];
    int64_t v = 0;
    opsc__expected(key, expected, sizeof(expected));
    if (text == NULL) {
        text = "";
    }

    if (key->type == OPSC_CFG_STRING) {
        char **sp = dst;
        char *copy = NULL;
        if (text[0] == '\0') {
            if (key->def != NULL) {
                opsc__bad_value(key, text, errbuf, errlen, expected);
                return OPSC_ECONFIG;
            }
        } else {
            copy = opsc_strdup(text);
            if (copy == NULL) {
                opsc_errbuf_printf(errbuf, errlen, "%s: out of memory", key->path);
                return OPSC_ECONFIG;
            }
        }
        opsc_free(*sp);
        *sp = copy;
        return 0;
    }
    if (key->type == OPSC_CFG_STRLIST || key->type == OPSC_CFG_ENGINE_ID ||
        key->type == OPSC_CFG_SNMP_V3_USERS) {
        return opsc__parse_snmp_value(key, text, dst, errbuf, errlen);
    }

    /* Every other type is a short token: surrounding blanks are noise. */
    if (strlen(text) >= sizeof(t)) {
        opsc__bad_value(key, text, errbuf, errlen, expected);
        return OPSC_ECONFIG;
    }
    opsc__trim(text, t, sizeof(t));
    if (t[0] == '\0' && key->type == OPSC_CFG_LISTEN_TCP && key->def == NULL) {
        /* An optional listener (http.tls.listen): unset means none. */
        memset(dst, 0, sizeof(opsc_listen_list_t));
        return 0;
    }
    if (t[0] == '\0') {
        opsc__bad_value(key, t, errbuf, errlen, expected);
        return OPSC_ECONFIG;
    }

    switch (key->type) {
    case OPSC_CFG_INT:
    case OPSC_CFG_DURATION:
    case OPSC_CFG_SIZE: {
        int rc;
        if (key->type == OPSC_CFG_INT) {
            rc = opsc__parse_int(t, &v);
        } else {
            rc = opsc__parse_unit(
                t, key->type == OPSC_CFG_DURATION ? opsc__duration_units : opsc__size_units, &v);
        }
        if (rc != 0 || v < key->min || v > key->max) {
            opsc__bad_value(key, t, errbuf, errlen, expected);
            return OPSC_ECONFIG;
        }
        *(int64_t *)dst = v;
        return 0;
    }
    case OPSC_CFG_LOGLEVEL: {
        opsc_log_level_t lvl;
        if (opsc_log_level_parse(t, &lvl) != 0) {
            opsc__bad_value(key, t, errbuf, errlen, expected);
            return OPSC_ECONFIG;
        }
        *(opsc_log_level_t *)dst = lvl;
        return 0;
    }
    case OPSC_CFG_LOGFORMAT: {
        opsc_log_format_t fmt;
        if (opsc_log_format_parse(t, &fmt) != 0) {
            opsc__bad_value(key, t, errbuf, errlen, expected);
            return OPSC_ECONFIG;
        }
        *(opsc_log_format_t *)dst = fmt;
        return 0;
    }
    case OPSC_CFG_LISTEN_TCP:
    case OPSC_CFG_LISTEN_UDP: {
        char why[256];
        opsc_proto_t proto = key->type == OPSC_CFG_LISTEN_UDP ? OPSC_PROTO_UDP : OPSC_PROTO_TCP;
        if (opsc_listen_parse_list(t, proto, dst, why, sizeof(why)) != 0) {
            opsc_errbuf_printf(errbuf, errlen, "%s: %s; expected %s", key->path, why, expected);
            return OPSC_ECONFIG;
        }
        return 0;
    }
    case OPSC_CFG_STRING:
    case OPSC_CFG_STRLIST:
    case OPSC_CFG_ENGINE_ID:
    case OPSC_CFG_SNMP_V3_USERS:
        break;
    }
    opsc_errbuf_printf(errbuf, errlen, "%s: unsupported key type", key->path);
    return OPSC_ECONFIG;
}

/* ---- whole config --------------------------------------------------------------------------- */

void opsc_config_free(opsc_config_t *cfg) {
    if (cfg == NULL) {
        return;
    }
    for (size_t i = 0; i < OPSC__KEYS_N; i++) {
        const opsc_config_key_t *key = &opsc_config_keys[i];
        if (key->type == OPSC_CFG_STRING) {
            char **sp = opsc__field(cfg, key);
            opsc_free(*sp);
            *sp = NULL;
        } else if (key->type == OPSC_CFG_STRLIST) {
            opsc__strlist_free(opsc__field(cfg, key));
        } else if (key->type == OPSC_CFG_SNMP_V3_USERS) {
            opsc__v3_users_free(opsc__field(cfg, key));
        }
    }
}

static size_t opsc__type_size(opsc_config_type_t type) {
    switch (type) {
    case OPSC_CFG_STRING:
        return sizeof(char *);
    case OPSC_CFG_INT:
    case OPSC_CFG_DURATION:
    case OPSC_CFG_SIZE:
        return sizeof(int64_t);
    case OPSC_CFG_LOGLEVEL:
        return sizeof(opsc_log_level_t);
    case OPSC_CFG_LOGFORMAT:
        return sizeof(opsc_log_format_t);
    case OPSC_CFG_LISTEN_TCP:
    case OPSC_CFG_LISTEN_UDP:
        return sizeof(opsc_listen_list_t);
    case OPSC_CFG_STRLIST:
        return sizeof(opsc_strlist_t);
    case OPSC_CFG_ENGINE_ID:
        return sizeof(opsc_engine_id_t);
    case OPSC_CFG_SNMP_V3_USERS:
        return sizeof(opsc_snmp_v3_users_t);
    }
    return 0;
}

static int opsc__values_equal(const opsc_config_t *a, const opsc_config_t *b,
                              const opsc_config_key_t *key) {
    const void *pa = opsc__cfield(a, key);
    const void *pb = opsc__cfield(b, key);
    switch (key->type) {
    case OPSC_CFG_STRING: {
        const char *sa = *(const char *const *)pa;
        const char *sb = *(const char *const *)pb;
        if (sa == NULL || sb == NULL) {
            return sa == sb;
        }
        return strcmp(sa, sb) == 0;
    }
    case OPSC_CFG_LISTEN_TCP:
    case OPSC_CFG_LISTEN_UDP: {
        const opsc_listen_list_t *la = pa;
        const opsc_listen_list_t *lb = pb;
        if (la->count != lb->count) {
            return 0;
        }
        for (int i = 0; i < la->count; i++) {
            if (!opsc__listen_same(&la->addr[i], &lb->addr[i])) {
                return 0;
            }
        }
        return 1;
    }
    case OPSC_CFG_STRLIST:
        return opsc__strlist_equal(pa, pb);
    case OPSC_CFG_ENGINE_ID: {
        const opsc_engine_id_t *ea = pa;
        const opsc_engine_id_t *eb = pb;
        return ea->len == eb->len && memcmp(ea->bytes, eb->bytes, ea->len) == 0;
    }
    case OPSC_CFG_SNMP_V3_USERS:
        return opsc__v3_users_equal(pa, pb);
    default:
        return memcmp(pa, pb, opsc__type_size(key->type)) == 0;
    }
}

void opsc_config_diff(const opsc_config_t *a, const opsc_config_t *b,
                      void (*cb)(const opsc_config_key_t *key, void *arg), void *arg) {
    for (size_t i = 0; i < OPSC__KEYS_N; i++) {
        if (!opsc__values_equal(a, b, &opsc_config_keys[i])) {
            cb(&opsc_config_keys[i], arg);
        }
    }
}

void opsc_config_format_value(const opsc_config_t *cfg, const opsc_config_key_t *key, char *out,
                              size_t outlen) {
    const void *p = opsc__cfield(cfg, key);
    if (outlen == 0) {
        return;
    }
    switch (key->type) {
    case OPSC_CFG_STRING: {
        const char *s = *(const char *const *)p;
        snprintf(out, outlen, "%s", s == NULL ? "" : key->secret ? "***" : s);
        break;
    }
    case OPSC_CFG_INT:
        snprintf(out, outlen, "%" PRId64, *(const int64_t *)p);
        break;
    case OPSC_CFG_DURATION:
        opsc__fmt_duration(*(const int64_t *)p, out, outlen);
        break;
    case OPSC_CFG_SIZE:
        opsc__fmt_size(*(const int64_t *)p, out, outlen);
        break;
    case OPSC_CFG_LOGLEVEL:
        snprintf(out, outlen, "%s", opsc_log_level_name(*(const opsc_log_level_t *)p));
        break;
    case OPSC_CFG_LOGFORMAT:
        snprintf(out, outlen, "%s", opsc_log_format_name(*(const opsc_log_format_t *)p));
        break;
    case OPSC_CFG_LISTEN_TCP:
    case OPSC_CFG_LISTEN_UDP:
        opsc__listen_list_format(p, out, outlen);
        break;
    case OPSC_CFG_STRLIST: {
        const opsc_strlist_t *l = p;
        size_t o = 0;
        out[0] = '\0';
        if (l->count > 0 && key->secret) {
            snprintf(out, outlen, "***");
        }
        for (size_t i = 0; !key->secret && i < l->count && o + 1 < outlen; i++) {
            int n = snprintf(out + o, outlen - o, "%s%s", i > 0 ? "," : "", l->items[i]);
            if (n < 0) {
                break;
            }
            o += (size_t)n;
        }
        break;
    }
    case OPSC_CFG_ENGINE_ID: {
        const opsc_engine_id_t *id = p;
        if (id->len > 0 && outlen > 2) {
            out[0] = '0';
            out[1] = 'x';
            opsc_engine_id_format(id, out + 2, outlen - 2);
        } else {
            out[0] = '\0';
        }
        break;
    }
    case OPSC_CFG_SNMP_V3_USERS:
        opsc__v3_users_format(p, out, outlen);
        break;
    }
}

int opsc_config_copy_key(opsc_config_t *dst, const opsc_config_t *src,
                         const opsc_config_key_t *key) {
    void *pd = opsc__field(dst, key);
    const void *ps = opsc__cfield(src, key);
    if (key->type == OPSC_CFG_STRING) {
        const char *s = *(const char *const *)ps;
        char *copy = NULL;
        if (s != NULL && (copy = opsc_strdup(s)) == NULL) {
            return OPSC_ENOMEM;
        }
        char **sp = pd;
        opsc_free(*sp);
        *sp = copy;
        return 0;
    }
    if (key->type == OPSC_CFG_STRLIST) {
        return opsc__strlist_copy(pd, ps);
    }
    if (key->type == OPSC_CFG_SNMP_V3_USERS) {
        return opsc__v3_users_copy(pd, ps);
    }
    memcpy(pd, ps, opsc__type_size(key->type));
    return 0;
}

/* ---- loading -------------------------------------------------------------------------------- */

typedef struct opsc__load_s {
    opsc_config_t *cfg;
    const char *path;
    char *errbuf;
    size_t errlen;
    int file_line[OPSC__KEYS_MAX]; /* where the file set each key (0: not set there) */
    char src[OPSC__KEYS_MAX][64];  /* "default", "opsc.yaml:7", "env OPSC_X" (for cross-checks) */
} opsc__load_t;

/* Remember where a key's value came from; a long location keeps its tail ("...conf/opsc.yaml:7").
 */
static void opsc__set_src(opsc__load_t *ld, const opsc_config_key_t *key, const char *src) {
    char *dst = ld->src[opsc__key_index(key)];
    size_t n = strlen(src);
    if (n >= sizeof(ld->src[0])) {
        snprintf(dst, sizeof(ld->src[0]), "...%s", src + n - (sizeof(ld->src[0]) - 4));
    } else {
        memcpy(dst, src, n + 1);
    }
}

static int opsc__apply_text(opsc__load_t *ld, const opsc_config_key_t *key, const char *text,
                            const char *src) {
    char err[512];
    if (opsc_config_parse_value(key, text, opsc__field(ld->cfg, key), err, sizeof(err)) != 0) {
        opsc_errbuf_printf(ld->errbuf, ld->errlen, "%s (%s)", err, src);
        return OPSC_ECONFIG;
    }
    opsc__set_src(ld, key, src);
    return 0;
}

static size_t opsc__edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    size_t row[65];
    if (la > 64 || lb > 64) {
        return (size_t)-1;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t cost =
                tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            size_t best = prev + cost;
            if (row[j] + 1 < best) {
                best = row[j] + 1;
            }
            if (row[j - 1] + 1 < best) {
                best = row[j - 1] + 1;
            }
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

/* Closest key path or section name to a misspelt `name`, or NULL. */
static const char *opsc__suggest(const char *name) {
    const char *best = NULL;
    size_t best_d = 3; /* at most two edits away */
    for (size_t i = 0; i < OPSC__KEYS_N; i++) {
        const char *path = opsc_config_keys[i].path;
        size_t d = opsc__edit_distance(name, path);
        if (d < best_d) {
            best_d = d;
            best = path;
        }
    }
    return best;
}

static void opsc__unknown_key(opsc__load_t *ld, const char *name, int line) {
    char q[96];
    const char *alt = opsc__suggest(name);
    opsc__quote(name, q, sizeof(q));
    if (alt != NULL) {
        opsc_errbuf_printf(ld->errbuf, ld->errlen, "unknown key %s, did you mean \"%s\"? (%s:%d)",
                           q, alt, ld->path, line);
    } else {
        opsc_errbuf_printf(ld->errbuf, ld->errlen, "unknown key %s (%s:%d)", q, ld->path, line);
    }
}

/* 1-based line of a node, or `fallback` when it has no token of its own (mappings, empty). */
static int opsc__node_line(struct fy_node *n, int fallback) {
    if (n == NULL) {
        return fallback;
    }
    if (fy_node_is_scalar(n)) {
        struct fy_token *t = fy_node_get_scalar_token(n);
        const struct fy_mark *m = t != NULL ? fy_token_start_mark(t) : NULL;
        return m != NULL ? m->line + 1 : fallback;
    }
    if (fy_node_is_sequence(n)) {
        void *it = NULL;
        return opsc__node_line(fy_node_sequence_iterate(n, &it), fallback);
    }
    if (fy_node_is_mapping(n)) {
        void *it = NULL;
        struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);
        return p != NULL ? opsc__node_line(fy_node_pair_key(p), fallback) : fallback;
    }
    return fallback;
}

/* YAML null: no value at all, or a plain ~ / null. */
static int opsc__node_is_null(struct fy_node *n) {
    if (n == NULL) {
        return 1;
    }
    if (!fy_node_is_scalar(n)) {
        return 0;
    }
    size_t len;
    const char *s = fy_node_get_scalar(n, &len);
    if (s == NULL || len == 0) {
        return fy_node_get_style(n) == FYNS_PLAIN;
    }
    if (fy_node_get_style(n) != FYNS_PLAIN || fy_node_get_tag(n, NULL) != NULL) {
        return 0;
    }
    return (len == 1 && s[0] == '~') ||
           (len == 4 &&
            (memcmp(s, "null", 4) == 0 || memcmp(s, "Null", 4) == 0 || memcmp(s, "NULL", 4) == 0));
}

static const char *opsc__node_kind(struct fy_node *n) {
    if (fy_node_is_mapping(n)) {
        return "a mapping";
    }
    if (fy_node_is_sequence(n)) {
        return "a sequence";
    }
    return "a scalar";
}

/* Heap copy of a scalar's text; NULL if out of memory or it holds a NUL byte. */
static char *opsc__scalar_dup(struct fy_node *n, int *has_nul) {
    size_t len = 0;
    const char *s = fy_node_get_scalar(n, &len);
    *has_nul = 0;
    if (s == NULL) {
        s = "";
        len = 0;
    }
    if (memchr(s, '\0', len) != NULL) {
        *has_nul = 1;
        return NULL;
    }
    char *copy = opsc_malloc(len + 1);
    if (copy != NULL) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}

static int opsc__apply_listen_seq(opsc__load_t *ld, const opsc_config_key_t *key,
                                  struct fy_node *seq, int key_line) {
    opsc_listen_list_t list;
    opsc_proto_t proto = key->type == OPSC_CFG_LISTEN_UDP ? OPSC_PROTO_UDP : OPSC_PROTO_TCP;
    char why[256];
    void *it = NULL;
    struct fy_node *item;
    memset(&list, 0, sizeof(list));
    while ((item = fy_node_sequence_iterate(seq, &it)) != NULL) {
        int line = opsc__node_line(item, key_line);
        if (!fy_node_is_scalar(item) || opsc__node_is_null(item)) {
            opsc_errbuf_printf(
                ld->errbuf, ld->errlen, "%s: expected %s, got %s in the sequence (%s:%d)",
                key->path, opsc__listen_expect(proto),
                opsc__node_is_null(item) ? "an empty item" : opsc__node_kind(item), ld->path, line);
            return OPSC_ECONFIG;
        }
        int has_nul;
        char *text = opsc__scalar_dup(item, &has_nul);
        if (text == NULL) {
            opsc_errbuf_printf(ld->errbuf, ld->errlen, "%s: %s (%s:%d)", key->path,
                               has_nul ? "value contains a NUL byte" : "out of memory", ld->path,
                               line);
            return OPSC_ECONFIG;
        }
        int rc = opsc__listen_append(text, proto, &list, why, sizeof(why));
        opsc_free(text);
        if (rc != 0) {
            opsc_errbuf_printf(ld->errbuf, ld->errlen, "%s: %s; expected %s (%s:%d)", key->path,
                               why, opsc__listen_expect(proto), ld->path, line);
            return OPSC_ECONFIG;
        }
    }
    if (list.count == 0) {
        opsc_errbuf_printf(ld->errbuf, ld->errlen, "%s: expected %s, got an empty sequence (%s:%d)",
                           key->path, opsc__listen_expect(proto), ld->path, key_line);
        return OPSC_ECONFIG;
    }
    char src[1200];
    *(opsc_listen_list_t *)opsc__field(ld->cfg, key) = list;
    snprintf(src, sizeof(src), "%s:%d", ld->path, key_line);
    opsc__set_src(ld, key, src);
    return 0;
}

static int opsc__pair_name(opsc__load_t *ld, struct fy_node *k, int fallback_line, char *out,
                           size_t outlen);

/* A YAML sequence for a string list: every item one string (commas are not separators here). */
static int opsc__apply_strlist_seq(opsc__load_t *ld, const opsc_config_key_t *key,
                                   struct fy_node *seq, int key_line) {
    opsc_strlist_t list = {0, NULL};
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(seq, &it)) != NULL) {
        int line = opsc__node_line(item, key_line);
        int has_nul;
        char *text;
        if (!fy_node_is_scalar(item) || opsc__node_is_null(item)) {
            opsc_errbuf_printf(
                ld->errbuf, ld->errlen,
                "%s: expected a sequence of strings, got %s in the sequence (%s:%d)", key->path,
                opsc__node_is_null(item) ? "an empty item" : opsc__node_kind(item), ld->path, line);
            opsc__strlist_free(&list);
            return OPSC_ECONFIG;
        }
        text = opsc__scalar_dup(item, &has_nul);
        if (text == NULL || text[0] == '\0' || opsc__strlist_add(&list, text, strlen(text)) != 0) {
            opsc_errbuf_printf(ld->errbuf, ld->errlen, "%s: %s (%s:%d)", key->path,
                               text == NULL
                                   ? (has_nul ? "value contains a NUL byte" : "out of memory")
                               : text[0] == '\0' ? "empty item in the sequence"
                                                 : "out of memory",
                               ld->path, line);
            opsc_free(text);
            opsc__strlist_free(&list);
            return OPSC_ECONFIG;
        }
        opsc_free(text);
    }
    char src[1200];
    opsc_strlist_t *dst = opsc__field(ld->cfg, key);
    opsc__strlist_free(dst);
    *dst = list;
    snprintf(src, sizeof(src), "%s:%d", ld->path, key_line);
    opsc__set_src(ld, key, src);
    return 0;
}

/* snmp.v3_users in the file: a sequence of mappings, each field a scalar. */
static int opsc__apply_v3_users_seq(opsc__load_t *ld, const opsc_config_key_t *key,
                                    struct fy_node *seq, int key_line) {
    opsc_snmp_v3_users_t users = {0, NULL};
    void *it = NULL;
    struct fy_node *item;
    char why[256];
    char label[128];
    size_t index = 0;
    while ((item = fy_node_sequence_iterate(seq, &it)) != NULL) {
        int line = opsc__node_line(item, key_line);
        unsigned seen = 0;
        opsc_snmp_v3_user_t *u = opsc__v3_users_push(&users);
        if (u == NULL) {
            opsc_errbuf_printf(ld->errbuf, ld->errlen, "%s: out of memory (%s:%d)", key->path,
                               ld->path, line);
            goto error;
        }
        snprintf(why, sizeof(why), "%s:%d", ld->path, line);
        /* Keep the tail of a long path: the line number is what matters. */
        size_t wl = strlen(why);
        size_t keep = wl < sizeof(u->src) ? wl : sizeof(u->src) - 1;
        memcpy(u->src, why + wl - keep, keep);
        u->src[keep] = '\0';
        if (!fy_node_is_mapping(item)) {
            opsc_errbuf_printf(
                ld->errbuf, ld->errlen,
                "%s: user %zu: expected a mapping {" OPSC__V3_FIELDS "}, got %s (%s:%d)", key->path,
                index + 1, opsc__node_is_null(item) ? "an empty item" : opsc__node_kind(item),
                ld->path, line);
            goto error;
        }
        /* Two passes: the name first, so that every later message can name the user. */
        for (int pass = 0; pass < 2; pass++) {
            void *pit = NULL;
            struct fy_node_pair *pair;
            while ((pair = fy_node_mapping_iterate(item, &pit)) != NULL) {
                char field[64];
                struct fy_node *v = fy_node_pair_value(pair);
                if (opsc__pair_name(ld, fy_node_pair_key(pair), line, field, sizeof(field)) != 0) {
                    goto error;
                }
                if ((strcmp(field, "name") == 0) != (pass == 0)) {
                    continue;
                }
                int vline = opsc__node_line(v, opsc__node_line(fy_node_pair_key(pair), line));
                opsc__v3_user_label(u, index, label, sizeof(label));
                if (v != NULL && !fy_node_is_scalar(v)) {
                    opsc_errbuf_printf(ld->errbuf, ld->errlen,
                                       "%s: %s: %s: expected a single value, got %s (%s:%d)",
                                       key->path, label, field, opsc__node_kind(v), ld->path,
                                       vline);
                    goto error;
                }
                char *text = NULL;
                int has_nul = 0;
                if (!opsc__node_is_null(v)) {
                    text = opsc__scalar_dup(v, &has_nul);
                    if (text == NULL) {
                        opsc_errbuf_printf(ld->errbuf, ld->errlen, "%s: %s: %s: %s (%s:%d)",
                                           key->path, label, field,
                                           has_nul ? "value contains a NUL byte" : "out of memory",
                                           ld->path, vline);
                        goto error;
                    }
                }
                int rc = opsc__v3_user_field(u, &seen, field, text, why, sizeof(why));
                if (text != NULL) {
                    memset(text, 0, strlen(text));
                    opsc_free(text);
                }
                if (rc != 0) {
                    opsc_errbuf_printf(ld->errbuf, ld->errlen, "%s: %s: %s (%s:%d)", key->path,
                                       label, why, ld->path, vline);
                    goto error;
                }
            }
        }
        if (opsc__v3_user_check(u, why, sizeof(why)) != 0) {
            opsc__v3_user_label(u, index, label, sizeof(label));
            opsc_errbuf_printf(ld->errbuf, ld->errlen, "%s: %s: %s (%s:%d)", key->path, label, why,
                               ld->path, line);
            goto error;
        }
        index++;
    }
    long dup = opsc__v3_users_dup(&users);
    if (dup >= 0) {
        opsc__v3_user_label(&users.users[dup], (size_t)dup, label, sizeof(label));
        opsc_errbuf_printf(ld->errbuf, ld->errlen,
                           "%s: %s: the same name and engine_id as an earlier user (%s)", key->path,
                           label, users.users[dup].src);
        goto error;
    }
    char src[1200];
    opsc_snmp_v3_users_t *dst = opsc__field(ld->cfg, key);
    opsc__v3_users_free(dst);
    *dst = users;
    snprintf(src, sizeof(src), "%s:%d", ld->path, key_line);
    opsc__set_src(ld, key, src);
    return 0;

error:
    opsc__v3_users_free(&users);
    return OPSC_ECONFIG;
}

static int opsc__apply_node(opsc__load_t *ld, const opsc_config_key_t *key, struct fy_node *val,
                            int key_line) {
    size_t idx = opsc__key_index(key);
    int line = opsc__node_line(val, key_line);
    char src[1200];

    if (ld->file_line[idx] != 0) {
        opsc_errbuf_printf(ld->errbuf, ld->errlen,
                           "%s: set twice in the config file (%s:%d and line %d)", key->path,
                           ld->path, ld->file_line[idx], key_line);
        return OPSC_ECONFIG;
    }
    ld->file_line[idx] = key_line;

    if (val != NULL && fy_node_is_sequence(val) &&
        (key->type == OPSC_CFG_LISTEN_TCP || key->type == OPSC_CFG_LISTEN_UDP)) {
        return opsc__apply_listen_seq(ld, key, val, key_line);
    }
    if (val != NULL && fy_node_is_sequence(val) && key->type == OPSC_CFG_STRLIST) {
        return opsc__apply_strlist_seq(ld, key, val, key_line);
    }
    if (val != NULL && fy_node_is_sequence(val) && key->type == OPSC_CFG_SNMP_V3_USERS) {
        return opsc__apply_v3_users_seq(ld, key, val, key_line);
    }
    if (val != NULL && fy_node_is_mapping(val) && key->type == OPSC_CFG_SNMP_V3_USERS) {
        opsc_errbuf_printf(ld->errbuf, ld->errlen,
                           "%s: expected a sequence of users (\"- name: ...\"), got a mapping "
                           "(%s:%d)",
                           key->path, ld->path, line);
        return OPSC_ECONFIG;
    }
    if (val != NULL && !fy_node_is_scalar(val)) {
        opsc_errbuf_printf(ld->errbuf, ld->errlen, "%s: expected a single value, got %s (%s:%d)",
                           key->path, opsc__node_kind(val), ld->path, key_line);
        return OPSC_ECONFIG;
    }

    snprintf(src, sizeof(src), "%s:%d", ld->path, line);

    if (opsc__node_is_null(val)) {
        return opsc__apply_text(ld, key, "", src);
    }
    int has_nul;
    char *text = opsc__scalar_dup(val, &has_nul);
    if (text == NULL) {
        opsc_errbuf_printf(ld->errbuf, ld->errlen, "%s: %s (%s:%d)", key->path,
                           has_nul ? "value contains a NUL byte" : "out of memory", ld->path, line);
        return OPSC_ECONFIG;
    }
    int rc = opsc__apply_text(ld, key, text, src);
    opsc_free(text);
    return rc;
}

/* Key name of a pair into out; -1 (error written) if the key is not a plain scalar. */
static int opsc__pair_name(opsc__load_t *ld, struct fy_node *k, int fallback_line, char *out,
                           size_t outlen) {
    if (k == NULL || !fy_node_is_scalar(k) || opsc__node_is_null(k)) {
        opsc_errbuf_printf(ld->errbuf, ld->errlen,
                           "config keys must be plain names, got %s (%s:%d)",
                           k == NULL || opsc__node_is_null(k) ? "an empty key" : opsc__node_kind(k),
                           ld->path, opsc__node_line(k, fallback_line));
        return -1;
    }
    size_t len;
    const char *s = fy_node_get_scalar(k, &len);
    if (len >= outlen) {
        len = outlen - 1;
    }
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

static int opsc__load_section(opsc__load_t *ld, const char *section, struct fy_node *map,
                              int section_line) {
    void *it = NULL;
    struct fy_node_pair *pair;
    while ((pair = fy_node_mapping_iterate(map, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(pair);
        char name[96];
        char full[200];
        if (opsc__pair_name(ld, k, section_line, name, sizeof(name)) != 0) {
            return OPSC_ECONFIG;
        }
        int line = opsc__node_line(k, section_line);
        snprintf(full, sizeof(full), "%s.%s", section, name);
        const opsc_config_key_t *key = opsc_config_find_key(full);
        struct fy_node *v = fy_node_pair_value(pair);
        if (key == NULL && opsc__is_section(full) && v != NULL && fy_node_is_mapping(v)) {
            /* A nested section: "http:" then "tls:" then "cert: ...". */
            int rc = opsc__load_section(ld, full, v, line);
            if (rc != 0) {
                return rc;
            }
            continue;
        }
        if (key == NULL) {
            opsc__unknown_key(ld, full, line);
            return OPSC_ECONFIG;
        }
        int rc = opsc__apply_node(ld, key, v, line);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int opsc__load_root(opsc__load_t *ld, struct fy_node *root) {
    if (opsc__node_is_null(root)) {
        return 0; /* empty file or only comments: all defaults */
    }
    if (!fy_node_is_mapping(root)) {
        opsc_errbuf_printf(
            ld->errbuf, ld->errlen,
            "the config file must be a mapping of keys (key: value) at the top level, "
            "got %s (%s:%d)",
            opsc__node_kind(root), ld->path, opsc__node_line(root, 1));
        return OPSC_ECONFIG;
    }
    void *it = NULL;
    struct fy_node_pair *pair;
    while ((pair = fy_node_mapping_iterate(root, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(pair);
        struct fy_node *v = fy_node_pair_value(pair);
        char name[96];
        if (opsc__pair_name(ld, k, 1, name, sizeof(name)) != 0) {
            return OPSC_ECONFIG;
        }
        int line = opsc__node_line(k, 1);
        /* "data_dir: x", and also the flat form "log.level: debug" */
        const opsc_config_key_t *key = opsc_config_find_key(name);
        if (key != NULL) {
            int rc = opsc__apply_node(ld, key, v, line);
            if (rc != 0) {
                return rc;
            }
            continue;
        }
        if (!opsc__is_section(name)) {
            opsc__unknown_key(ld, name, line);
            return OPSC_ECONFIG;
        }
        if (opsc__node_is_null(v)) {
            continue; /* "database:" with everything below commented out */
        }
        if (!fy_node_is_mapping(v)) {
            char q[96] = "";
            if (fy_node_is_scalar(v)) {
                size_t len;
                const char *s = fy_node_get_scalar(v, &len);
                char tmp[80];
                snprintf(tmp, sizeof(tmp), "%.*s", (int)(len < 79 ? len : 79), s);
                opsc__quote(tmp, q, sizeof(q));
            }
            opsc_errbuf_printf(ld->errbuf, ld->errlen,
                               "%s: expected a mapping of %s.* keys, got %s%s%s (%s:%d)", name,
                               name, opsc__node_kind(v), q[0] ? " " : "", q, ld->path,
                               opsc__node_line(v, line));
            return OPSC_ECONFIG;
        }
        int rc = opsc__load_section(ld, name, v, line);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* libfyaml diagnostics: keep the first message instead of printing it. */
typedef struct opsc__diag_ctx_s {
    char first[256];
} opsc__diag_ctx_t;

static void opsc__diag_output(struct fy_diag *diag, void *user, const char *buf, size_t len) {
    opsc__diag_ctx_t *ctx = user;
    (void)diag;
    if (ctx->first[0] != '\0') {
        return;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' ')) {
        len--;
    }
    if (len >= sizeof(ctx->first)) {
        len = sizeof(ctx->first) - 1;
    }
    memcpy(ctx->first, buf, len);
    ctx->first[len] = '\0';
}

/* A syntax error from the collected diagnostics, as one line. */
static void opsc__yaml_error(opsc__load_t *ld, struct fy_diag *diag, const opsc__diag_ctx_t *ctx) {
    void *it = NULL;
    struct fy_diag_error *e;
    while ((e = fy_diag_errors_iterate(diag, &it)) != NULL) {
        if (e->type < FYET_ERROR) {
            continue;
        }
        opsc_errbuf_printf(ld->errbuf, ld->errlen, "invalid YAML: %s (%s:%d:%d)",
                           e->msg != NULL ? e->msg : "syntax error", ld->path, e->line, e->column);
        return;
    }
    opsc_errbuf_printf(ld->errbuf, ld->errlen, "invalid YAML: %s (%s)",
                       ctx->first[0] != '\0' ? ctx->first : "syntax error", ld->path);
}

static int opsc__load_file(opsc__load_t *ld, const char *path) {
    int rc = OPSC_ECONFIG;
    char *text = NULL;
    size_t len = 0;
    struct fy_diag *diag = NULL;
    struct fy_parser *fyp = NULL;
    struct fy_document *doc = NULL;
    struct fy_document *doc2 = NULL;
    opsc__diag_ctx_t dctx;
    memset(&dctx, 0, sizeof(dctx));

    ld->path = path;
    int err = opsc_read_file(path, &text, &len, OPSC__CONFIG_FILE_MAX);
    if (err == OPSC_ETOOBIG) {
        opsc_errbuf_printf(ld->errbuf, ld->errlen, "config file %s is larger than %d KiB", path,
                           OPSC__CONFIG_FILE_MAX / 1024);
        goto cleanup;
    }
    if (err != 0) {
        opsc_errbuf_printf(ld->errbuf, ld->errlen, "cannot read config file %s: %s", path,
                           opsc_strerror(err));
        goto cleanup;
    }

    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = opsc__diag_output;
    dcfg.user = &dctx;
    dcfg.colorize = false;
    diag = fy_diag_create(&dcfg);
    if (diag == NULL) {
        opsc_errbuf_printf(ld->errbuf, ld->errlen, "cannot parse config file %s: out of memory",
                           path);
        goto cleanup;
    }
    fy_diag_set_collect_errors(diag, true);

    struct fy_parse_cfg pcfg;
    memset(&pcfg, 0, sizeof(pcfg));
    pcfg.flags = FYPCF_QUIET | FYPCF_RESOLVE_DOCUMENT | FYPCF_JSON_NONE;
    pcfg.diag = diag;
    fyp = fy_parser_create(&pcfg);
    if (fyp == NULL || fy_parser_set_string(fyp, text, len) != 0) {
        opsc_errbuf_printf(ld->errbuf, ld->errlen, "cannot parse config file %s: out of memory",
                           path);
        goto cleanup;
    }

    doc = fy_parse_load_document(fyp);
    if (fy_diag_got_error(diag) || fy_parser_get_stream_error(fyp)) {
        opsc__yaml_error(ld, diag, &dctx);
        goto cleanup;
    }
    if (doc == NULL) {
        rc = 0; /* empty stream */
        goto cleanup;
    }
    doc2 = fy_parse_load_document(fyp);
    if (fy_diag_got_error(diag) || fy_parser_get_stream_error(fyp)) {
        opsc__yaml_error(ld, diag, &dctx);
        goto cleanup;
    }
    if (doc2 != NULL) {
        opsc_errbuf_printf(
            ld->errbuf, ld->errlen,
            "config file %s holds more than one YAML document (remove the extra '---')", path);
        goto cleanup;
    }
    rc = opsc__load_root(ld, fy_document_root(doc));

cleanup:
    if (doc2 != NULL) {
        fy_parse_document_destroy(fyp, doc2);
    }
    if (doc != NULL) {
        fy_parse_document_destroy(fyp, doc);
    }
    if (fyp != NULL) {
        fy_parser_destroy(fyp);
    }
    if (diag != NULL) {
        fy_diag_destroy(diag);
    }
    opsc_free(text);
    return rc;
}

static int opsc__load_env(opsc__load_t *ld, char *const *envp) {
    char names[OPSC__KEYS_MAX][80];
    for (size_t i = 0; i < OPSC__KEYS_N; i++) {
        opsc_config_env_name(opsc_config_keys[i].path, names[i], sizeof(names[i]));
    }
    for (char *const *e = envp; e != NULL && *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        if (strncmp(*e, "OPSC_", 5) != 0 || eq == NULL) {
            continue;
        }
        size_t nlen = (size_t)(eq - *e);
        for (size_t i = 0; i < OPSC__KEYS_N; i++) {
            if (strlen(names[i]) == nlen && memcmp(names[i], *e, nlen) == 0) {
                char src[100];
                snprintf(src, sizeof(src), "env %s", names[i]);
                int rc = opsc__apply_text(ld, &opsc_config_keys[i], eq + 1, src);
                if (rc != 0) {
                    return rc;
                }
                break;
            }
        }
    }
    return 0;
}

/* Rules between keys, checked once everything is loaded. */
static int opsc__check(opsc__load_t *ld) {
    const opsc_config_t *c = ld->cfg;
    if (c->database.reconnect_min_ms > c->database.reconnect_max_ms) {
        const opsc_config_key_t *kmin = opsc_config_find_key("database.reconnect_min");
        const opsc_config_key_t *kmax = opsc_config_find_key("database.reconnect_max");
        char vmin[32], vmax[32];
        opsc__fmt_duration(c->database.reconnect_min_ms, vmin, sizeof(vmin));
        opsc__fmt_duration(c->database.reconnect_max_ms, vmax, sizeof(vmax));
        opsc_errbuf_printf(
            ld->errbuf, ld->errlen,
            "database.reconnect_min: expected at most database.reconnect_max (%s, %s), "
            "got %s (%s)",
            vmax, ld->src[opsc__key_index(kmax)], vmin, ld->src[opsc__key_index(kmin)]);
        return OPSC_ECONFIG;
    }
    if (c->http.tls.listen.count > 0 && (c->http.tls.cert == NULL || c->http.tls.key == NULL)) {
        const opsc_config_key_t *kl = opsc_config_find_key("http.tls.listen");
        opsc_errbuf_printf(ld->errbuf, ld->errlen,
                           "http.tls.listen (%s) needs http.tls.cert and http.tls.key: the PEM "
                           "files of the server certificate and its private key",
                           ld->src[opsc__key_index(kl)]);
        return OPSC_ECONFIG;
    }
    return 0;
}

int opsc_config_load(opsc_config_t *cfg, const char *path, char *const *envp, char *errbuf,
                     size_t errlen) {
    int rc = OPSC_ECONFIG;
    opsc__load_t *ld = opsc_calloc(1, sizeof(*ld));
    memset(cfg, 0, sizeof(*cfg));
    if (errbuf != NULL && errlen > 0) {
        errbuf[0] = '\0';
    }
    if (ld == NULL) {
        opsc_errbuf_printf(errbuf, errlen, "cannot load the configuration: out of memory");
        return OPSC_ECONFIG;
    }
    ld->cfg = cfg;
    ld->errbuf = errbuf;
    ld->errlen = errlen;

    for (size_t i = 0; i < OPSC__KEYS_N; i++) {
        if (opsc__apply_text(ld, &opsc_config_keys[i], opsc_config_keys[i].def, "default") != 0) {
            goto error;
        }
    }
    if (path != NULL && opsc__load_file(ld, path) != 0) {
        goto error;
    }
    if (opsc__load_env(ld, envp != NULL ? envp : environ) != 0) {
        goto error;
    }
    if (opsc__check(ld) != 0) {
        goto error;
    }
    opsc_free(ld);
    return 0;

error:
    opsc_free(ld);
    opsc_config_free(cfg);
    return rc;
}

int opsc_config_unknown_env(char *const *envp, char *out, size_t outlen) {
    int count = 0;
    size_t o = 0;
    int cut = 0;
    char name[80];
    if (envp == NULL) {
        envp = environ;
    }
    if (outlen > 0) {
        out[0] = '\0';
    }
    for (char *const *e = envp; *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - *e) : strlen(*e);
        if (strncmp(*e, "OPSC_", 5) != 0) {
            continue;
        }
        int known = 0;
        for (size_t i = 0; i < OPSC__KEYS_N && !known; i++) {
            opsc_config_env_name(opsc_config_keys[i].path, name, sizeof(name));
            known = strlen(name) == nlen && memcmp(name, *e, nlen) == 0;
        }
        if (known) {
            continue;
        }
        count++;
        /* Names only (values may be secrets); room for ",..." is always kept. */
        size_t sep = o > 0 ? 1 : 0;
        if (cut || outlen < 5 + sep) {
            continue;
        }
        if (o + sep + nlen + 5 > outlen) {
            memcpy(out + o, sep ? ",..." : "...", sep ? 5 : 4);
            cut = 1;
            continue;
        }
        if (sep) {
            out[o++] = ',';
        }
        memcpy(out + o, *e, nlen);
        o += nlen;
        out[o] = '\0';
    }
    return count;
}

/* ---- documentation -------------------------------------------------------------------------- */

static void opsc__md_cell(FILE *out, const char *s) {
    for (; *s != '\0'; s++) {
        if (*s == '|') {
            fputs("\\|", out);
        } else {
            fputc(*s, out);
        }
    }
}

void opsc_config_print_reference(FILE *out) {
    char env[80];
    fputs("| key | environment variable | default | reloadable | description |\n", out);
    fputs("| --- | --- | --- | --- | --- |\n", out);
    for (size_t i = 0; i < OPSC__KEYS_N; i++) {
        const opsc_config_key_t *key = &opsc_config_keys[i];
        opsc_config_env_name(key->path, env, sizeof(env));
        fprintf(out, "| `%s` | `%s` | ", key->path, env);
        if (key->def != NULL) {
            fputc('`', out);
            opsc__md_cell(out, key->def);
            fputc('`', out);
        } else {
            fputs("(unset)", out);
        }
        fprintf(out, " | %s | ", key->reloadable ? "yes" : "no");
        opsc__md_cell(out, key->help);
        if (key->type == OPSC_CFG_INT || key->type == OPSC_CFG_DURATION ||
            key->type == OPSC_CFG_SIZE) {
            char lo[32], hi[32];
            opsc__fmt_bound(key, key->min, lo, sizeof(lo));
            opsc__fmt_bound(key, key->max, hi, sizeof(hi));
            fprintf(out, " Range: %s to %s.", lo, hi);
        }
        if (key->secret) {
            fputs(" Secret: never printed.", out);
        }
        fputs(" |\n", out);
    }
}

void opsc_config_print_effective(const opsc_config_t *cfg, FILE *out) {
    char value[1024];
    for (size_t i = 0; i < OPSC__KEYS_N; i++) {
        const opsc_config_key_t *key = &opsc_config_keys[i];
        if (key->type == OPSC_CFG_STRING && *(const char *const *)opsc__cfield(cfg, key) == NULL) {
            fprintf(out, "%s = (unset)\n", key->path);
            continue;
        }
        if ((key->type == OPSC_CFG_STRLIST &&
             ((const opsc_strlist_t *)opsc__cfield(cfg, key))->count == 0) ||
            (key->type == OPSC_CFG_ENGINE_ID &&
             ((const opsc_engine_id_t *)opsc__cfield(cfg, key))->len == 0) ||
            (key->type == OPSC_CFG_SNMP_V3_USERS &&
             ((const opsc_snmp_v3_users_t *)opsc__cfield(cfg, key))->count == 0) ||
            (key->type == OPSC_CFG_LISTEN_TCP &&
             ((const opsc_listen_list_t *)opsc__cfield(cfg, key))->count == 0)) {
            fprintf(out, "%s = (unset)\n", key->path);
            continue;
        }
        opsc_config_format_value(cfg, key, value, sizeof(value));
        fprintf(out, "%s = %s\n", key->path, value);
    }
}

int opsc_config_parse_duration_ms(const char *s, int64_t *out_ms) {
    return s && *s ? opsc__parse_unit(s, opsc__duration_units, out_ms) : OPSC_EPARSE;
}
