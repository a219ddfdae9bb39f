#ifndef OPSC_CONFIG_H
#define OPSC_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "opsc/log.h"

/*
 * Configuration: defaults, then one YAML file, then environment variables.
 * Every key `section.key` (or top-level `key`) is overridable by the variable
 * OPSC_<SECTION>_<KEY> (upper case, dots become underscores): database.url is
 * OPSC_DATABASE_URL, data_dir is OPSC_DATA_DIR.
 *
 * The keys are one static table (opsc_config_keys) that drives parsing,
 * validation, --help and the configuration reference in the README.
 */

#define OPSC_LISTEN_MAX 16

typedef enum { OPSC_PROTO_TCP = 0, OPSC_PROTO_UDP = 1 } opsc_proto_t;

/** One parsed listen address: host is a numeric IPv4/IPv6 address (no brackets). */
typedef struct opsc_listen_s {
    opsc_proto_t proto;
    int family; /* AF_INET or AF_INET6 */
    char host[64];
    int port;
} opsc_listen_t;

typedef struct opsc_listen_list_s {
    int count;
    opsc_listen_t addr[OPSC_LISTEN_MAX];
} opsc_listen_list_t;

/* A list of strings: "a,b,c" in the environment, "a,b" or a YAML sequence in the file. */
typedef struct opsc_strlist_s {
    size_t count;
    char **items;
} opsc_strlist_t;

/* An SNMP engine ID (RFC 3411: 5 to 32 bytes); written in hex, with or without 0x. */
#define OPSC_SNMP_ENGINE_ID_MAX 32
typedef struct opsc_engine_id_s {
    size_t len; /* 0: unset */
    unsigned char bytes[OPSC_SNMP_ENGINE_ID_MAX];
} opsc_engine_id_t;

typedef enum {
    OPSC_SNMP_AUTH_NONE = 0,
    OPSC_SNMP_AUTH_MD5,
    OPSC_SNMP_AUTH_SHA, /* SHA-1 */
    OPSC_SNMP_AUTH_SHA224,
    OPSC_SNMP_AUTH_SHA256,
    OPSC_SNMP_AUTH_SHA384,
    OPSC_SNMP_AUTH_SHA512,
} opsc_snmp_auth_t;

typedef enum {
    OPSC_SNMP_PRIV_NONE = 0,
    OPSC_SNMP_PRIV_DES,
    OPSC_SNMP_PRIV_AES128, /* "AES" or "AES-128" */
    OPSC_SNMP_PRIV_AES192,
    OPSC_SNMP_PRIV_AES256,
} opsc_snmp_priv_t;

/** One SNMPv3 USM user (snmp.v3_users). Passphrases are secrets: never printed. */
typedef struct opsc_snmp_v3_user_s {
    char *name;
    opsc_snmp_auth_t auth;
    char *auth_passphrase; /* NULL when auth is none */
    opsc_snmp_priv_t priv;
    char *priv_passphrase;      /* NULL when priv is none */
    opsc_engine_id_t engine_id; /* the trap sender's; len 0: ours (a user that sends INFORMs) */
    char src[64];               /* where it was defined: "opsc.yaml:12", "env OPSC_SNMP_V3_USERS" */
} opsc_snmp_v3_user_t;

typedef struct opsc_snmp_v3_users_s {
    size_t count;
    opsc_snmp_v3_user_t *users;
} opsc_snmp_v3_users_t;

/** "none", "MD5", "SHA", "SHA-224", ... and "none", "DES", "AES-128", ... Static. */
const char *opsc_snmp_auth_name(opsc_snmp_auth_t auth);
const char *opsc_snmp_priv_name(opsc_snmp_priv_t priv);

/**
 * Parse an engine ID in hex ("0x8000..." or "8000...", 5..32 bytes). 0 or
 * OPSC_ECONFIG with the reason (no key name) in errbuf.
 */
int opsc_engine_id_parse(const char *text, opsc_engine_id_t *out, char *errbuf, size_t errlen);
/** Lower-case hex without 0x into out (at least 2 * len + 1 bytes, else cut). */
void opsc_engine_id_format(const opsc_engine_id_t *id, char *out, size_t outlen);

typedef struct opsc_config_s {
    char *data_dir;
    char *admin_token; /* NULL when unset */
    int64_t shutdown_timeout_ms;

    struct {
        opsc_log_level_t level;
        opsc_log_format_t format;
    } log;

    struct {
        opsc_listen_list_t listen;
        int64_t max_connections;
        int64_t max_header_bytes;
        int64_t idle_timeout_ms;
        int64_t header_timeout_ms;
        int64_t body_timeout_ms;
        int64_t max_headers;
        int64_t max_url_bytes;
        int64_t max_body_bytes;
        struct {
            opsc_listen_list_t listen; /* count 0: no TLS listener */
            char *cert;                /* PEM paths; NULL when unset */
            char *key;
            int64_t handshake_timeout_ms;
        } tls;
    } http;

    struct {
        int64_t pbkdf2_iterations;
        int64_t session_ttl_ms;     /* absolute, from login */
        int64_t login_max_failures; /* per user name; 4x per client address */
        int64_t login_lockout_ms;
    } auth;

    struct {
        int64_t max_pending;       /* distinct alerts queued per feed client before 1013 */
        int64_t max_message_bytes; /* largest client message (1009 beyond) */
        int64_t ping_interval_ms;
    } stream;

    struct {
        char *severity_map;     /* JSON object text: label value -> severity; NULL: built-in */
        char *default_category; /* NULL: "application" */
    } webhooks;

    struct {
        opsc_listen_list_t listen;
        opsc_strlist_t communities; /* empty: any community */
        opsc_engine_id_t engine_id; /* len 0: generated, kept in the data dir */
        int64_t rcvbuf;
        opsc_snmp_v3_users_t v3_users;
        opsc_strlist_t mib_dirs;
        int64_t max_per_wakeup;   /* 0: libuv's own limit */
        int64_t per_source_rate;  /* traps/s per source address; 0: off */
        int64_t per_source_burst; /* 0: 2 x rate */
        int64_t per_source_max;   /* sources tracked */
        int64_t storm_quiet_ms;   /* trap_storm resolves after this long within the rate */
    } snmp;

    struct {
        opsc_strlist_t servers; /* empty: /etc/resolv.conf */
        int64_t cache_ttl_ms;   /* 0: reverse lookups off */
        int64_t negative_ttl_ms;
        int64_t timeout_ms;
        int64_t cache_max;
    } dns;

    struct {
        opsc_strlist_t down_alert_types; /* device-down alert types (plus any critical alert) */
        int64_t flap_threshold;          /* 0: flapping detection off */
        int64_t flap_window_ms;
        int64_t flap_track_max;
        int64_t expire_after_ms;                 /* 0: never */
        opsc_strlist_t expire_after_by_category; /* "category=duration" items */
    } correlation;

    struct {
        char *url; /* NULL: embedded PostgreSQL */
        int64_t readers;
        int64_t queue_max;
        int64_t connect_timeout_ms;
        int64_t reconnect_min_ms;
        int64_t reconnect_max_ms;
        char *embedded_dir;    /* NULL: <data_dir>/pg (see embedded_pg.h for root) */
        char *embedded_user;   /* user the child runs as when we are root */
        char *embedded_bindir; /* NULL: pg_config --bindir, then /usr/lib/postgresql/N/bin */
    } database;

    struct {
        char *dir; /* NULL: <data_dir>/spool */
        int64_t max_bytes;
        int64_t segment_bytes;
        int64_t sync_interval_ms; /* group-commit window */
    } spool;
} opsc_config_t;

typedef enum {
    OPSC_CFG_STRING,    /* char *, NULL allowed when default is NULL */
    OPSC_CFG_INT,       /* int64_t within [min, max] */
    OPSC_CFG_DURATION,  /* int64_t milliseconds: "250ms", "5s", "2m", "1h", bare number = seconds */
    OPSC_CFG_SIZE,      /* int64_t bytes: "16KiB", "1MiB", "512", "1GiB" */
    OPSC_CFG_LOGLEVEL,  /* opsc_log_level_t */
    OPSC_CFG_LOGFORMAT, /* opsc_log_format_t */
    OPSC_CFG_LISTEN_TCP,    /* opsc_listen_list_t: "HOST:PORT,[V6]:PORT" */
    OPSC_CFG_LISTEN_UDP,    /* opsc_listen_list_t: "udp:HOST:PORT,udp6:[V6]:PORT" */
    OPSC_CFG_STRLIST,       /* opsc_strlist_t: "a,b" or a YAML sequence; empty = none */
    OPSC_CFG_ENGINE_ID,     /* opsc_engine_id_t: hex, min..max bytes; empty = unset */
    OPSC_CFG_SNMP_V3_USERS, /* opsc_snmp_v3_users_t: YAML sequence of mappings; env: JSON array */
} opsc_config_type_t;

typedef struct opsc_config_key_s {
    const char *path; /* "database.url" */
    opsc_config_type_t type;
    size_t offset;    /* into opsc_config_t */
    const char *def;  /* default as text; NULL = unset */
    int64_t min, max; /* for INT/DURATION/SIZE */
    int reloadable;   /* applied on SIGHUP */
    int secret;       /* never printed */
    const char *help;
} opsc_config_key_t;

extern const opsc_config_key_t opsc_config_keys[];
extern const size_t opsc_config_keys_count;

/**
 * Load: defaults, then `path` (may be NULL), then the environment `envp`
 * (NULL-terminated "NAME=value" array; NULL = environ).
 * On error returns OPSC_ECONFIG and writes one line into errbuf naming the key,
 * the file and line when known, and what was expected. `cfg` is then freed.
 *
 * `cfg` is overwritten (zeroed first): it must not hold a loaded config (free
 * that first, or load into a fresh struct and diff, as on SIGHUP).
 * An empty value (YAML null or "", empty env var) unsets a key whose default
 * is NULL and is an error for any other key. Unknown OPSC_* variables are
 * ignored here (see opsc_config_unknown_env); unknown file keys are errors.
 * Sections may be nested (`database:\n  url: x`) or flat (`database.url: x`).
 */
int opsc_config_load(opsc_config_t *cfg, const char *path, char *const *envp, char *errbuf,
                     size_t errlen);

/** Free every string the config owns. Safe on a zeroed or freed config. */
void opsc_config_free(opsc_config_t *cfg);

/** Environment variable name of a key path ("database.url" -> "OPSC_DATABASE_URL"). */
void opsc_config_env_name(const char *path, char *out, size_t outlen);

/**
 * Parse a single value of `key->type` into dst (the key's field type). Used by
 * the loader and tests. 0 or OPSC_ECONFIG with "<key>: expected X, got "text""
 * in errbuf (no location: the caller appends it).
 * For OPSC_CFG_STRING, dst is a `char **` holding NULL or an owned string,
 * which is freed and replaced (by NULL for an empty text when def is NULL).
 * Surrounding blanks are trimmed for every type except strings.
 */
int opsc_config_parse_value(const opsc_config_key_t *key, const char *text, void *dst, char *errbuf,
                            size_t errlen);

/**
 * Compare two configs; for each key that differs call `cb(key, arg)`, in
 * table order. The callback gets the texts with opsc_config_format_value()
 * on each config (secrets come out as "***").
 */
void opsc_config_diff(const opsc_config_t *a, const opsc_config_t *b,
                      void (*cb)(const opsc_config_key_t *key, void *arg), void *arg);

/** Render a key's current value as text into out (secrets masked). */
void opsc_config_format_value(const opsc_config_t *cfg, const opsc_config_key_t *key, char *out,
                              size_t outlen);

/** Deep copy of one key's value from src to dst (both valid configs). */
int opsc_config_copy_key(opsc_config_t *dst, const opsc_config_t *src,
                         const opsc_config_key_t *key);

/**
 * Parse "host:port" / "[v6]:port" / "udp:host:port" / "udp6:[v6]:port" lists
 * (comma-separated, blanks trimmed). Hosts are numeric or "localhost"
 * (127.0.0.1); ports 0..65535 (0 = ephemeral, may repeat); other duplicates
 * and more than OPSC_LISTEN_MAX entries are rejected. For UDP the "udp:" prefix
 * is optional and "udp:[v6]:port" is IPv6. `out` is written only on success;
 * errbuf gets `"item": reason`.
 */
int opsc_listen_parse_list(const char *text, opsc_proto_t proto, opsc_listen_list_t *out,
                           char *errbuf, size_t errlen);

/** One address as text: "1.2.3.4:80", "[::1]:80", "udp:0.0.0.0:162", "udp6:[::]:162". */
void opsc_listen_format(const opsc_listen_t *addr, char *out, size_t outlen);
/** The same with another port (the one actually bound when the configured port is 0). */
void opsc_listen_format_port(const opsc_listen_t *addr, int port, char *out, size_t outlen);

/** The key with this path ("log.level"), or NULL. */
const opsc_config_key_t *opsc_config_find_key(const char *path);

/**
 * OPSC_* variables in envp (NULL = environ) that are not configuration keys:
 * their names (never values) comma-separated into out ("..." when cut).
 * Returns how many there are, so the server can warn about typos.
 */
int opsc_config_unknown_env(char *const *envp, char *out, size_t outlen);

/** Markdown table `| key | environment variable | default | reloadable | description |`. */
void opsc_config_print_reference(FILE *out);

/** `key = value` lines for --check-config; secrets as ***, unset strings as (unset). */
void opsc_config_print_effective(const opsc_config_t *cfg, FILE *out);

/** A duration as the config writes it ("90s", "2h", "500ms", "1d") into milliseconds. 0 or
 * non-zero. */
int opsc_config_parse_duration_ms(const char *s, int64_t *out_ms);

#endif
