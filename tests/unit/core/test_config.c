/* Configuration: defaults, YAML, environment, every error path, listen lists, diff. */
/* cmocka.h needs these first, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "opsc/config.h"
#include "opsc/error.h"

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        const char *h_ = (hay);                                                                    \
        const char *n_ = (needle);                                                                 \
        if (strstr(h_, n_) == NULL) {                                                              \
            fail_msg("\"%s\" does not contain \"%s\"", h_, n_);                                    \
        }                                                                                          \
    } while (0)

#define assert_not_contains(hay, needle)                                                           \
    do {                                                                                           \
        const char *h_ = (hay);                                                                    \
        const char *n_ = (needle);                                                                 \
        if (strstr(h_, n_) != NULL) {                                                              \
            fail_msg("\"%s\" contains \"%s\"", h_, n_);                                            \
        }                                                                                          \
    } while (0)

/* envp entries are char * (as in main()); the literals are never written. */
#define E(s) ((char *)(s))

static char *const no_env[] = {NULL};

/* Temp YAML files written by a test; removed after each test. */
static char tmp_paths[8][64];
static int tmp_count;

static const char *write_yaml(const char *content) {
    assert_true(tmp_count < 8);
    char *path = tmp_paths[tmp_count++];
    snprintf(path, 64, "/tmp/opsc_test_cfg_XXXXXX.yaml");
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    size_t len = strlen(content);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    close(fd);
    return path;
}

static int teardown(void **state) {
    (void)state;
    for (int i = 0; i < tmp_count; i++) {
        unlink(tmp_paths[i]);
    }
    tmp_count = 0;
    return 0;
}

/* Load expecting failure; returns the error line. Checks cfg was freed. */
static const char *load_fail(const char *path, char *const *envp) {
    static char err[1024];
    opsc_config_t cfg;
    memset(err, 'x', sizeof(err));
    int rc = opsc_config_load(&cfg, path, envp, err, sizeof(err));
    if (rc != OPSC_ECONFIG) {
        fail_msg("expected OPSC_ECONFIG, got %d", rc);
    }
    assert_null(cfg.data_dir);
    assert_null(cfg.database.embedded_user);
    assert_null(strchr(err, '\n'));
    assert_true(strlen(err) > 0);
    return err;
}

static void load_ok(opsc_config_t *cfg, const char *path, char *const *envp) {
    char err[1024] = "";
    int rc = opsc_config_load(cfg, path, envp, err, sizeof(err));
    if (rc != 0) {
        fail_msg("load failed (%d): %s", rc, err);
    }
}

static const char *loc(const char *path, int line) {
    static char buf[128];
    snprintf(buf, sizeof(buf), "(%s:%d)", path, line);
    return buf;
}

/* ---- defaults and the key table ------------------------------------------------------------- */

static void test_defaults(void **state) {
    (void)state;
    opsc_config_t cfg;
    load_ok(&cfg, NULL, no_env);
    assert_string_equal(cfg.data_dir, "./var");
    assert_null(cfg.admin_token);
    assert_int_equal(cfg.shutdown_timeout_ms, 5000);
    assert_int_equal(cfg.log.level, OPSC_LOG_INFO);
    assert_int_equal(cfg.log.format, OPSC_LOG_LOGFMT);
    assert_int_equal(cfg.http.listen.count, 1);
    assert_int_equal(cfg.http.listen.addr[0].proto, OPSC_PROTO_TCP);
    assert_int_equal(cfg.http.listen.addr[0].family, AF_INET);
    assert_string_equal(cfg.http.listen.addr[0].host, "0.0.0.0");
    assert_int_equal(cfg.http.listen.addr[0].port, 8080);
    assert_int_equal(cfg.http.max_connections, 1024);
    assert_int_equal(cfg.http.max_header_bytes, 16384);
    assert_int_equal(cfg.http.idle_timeout_ms, 60000);
    assert_int_equal(cfg.http.header_timeout_ms, 10000);
    assert_int_equal(cfg.http.body_timeout_ms, 30000);
    assert_int_equal(cfg.http.max_headers, 100);
    assert_int_equal(cfg.http.max_url_bytes, 8192);
    assert_int_equal(cfg.http.max_body_bytes, 1048576);
    assert_int_equal(cfg.http.tls.listen.count, 0);
    assert_null(cfg.http.tls.cert);
    assert_null(cfg.http.tls.key);
    assert_int_equal(cfg.http.tls.handshake_timeout_ms, 10000);
    assert_int_equal(cfg.snmp.listen.count, 2);
    assert_int_equal(cfg.snmp.listen.addr[0].proto, OPSC_PROTO_UDP);
    assert_int_equal(cfg.snmp.listen.addr[0].family, AF_INET);
    assert_string_equal(cfg.snmp.listen.addr[0].host, "0.0.0.0");
    assert_int_equal(cfg.snmp.listen.addr[0].port, 162);
    assert_int_equal(cfg.snmp.listen.addr[1].proto, OPSC_PROTO_UDP);
    assert_int_equal(cfg.snmp.listen.addr[1].family, AF_INET6);
    assert_string_equal(cfg.snmp.listen.addr[1].host, "::");
    assert_int_equal(cfg.snmp.listen.addr[1].port, 162);
    assert_null(cfg.database.url);
    assert_int_equal(cfg.database.readers, 2);
    assert_int_equal(cfg.database.queue_max, 10000);
    assert_int_equal(cfg.database.connect_timeout_ms, 10000);
    assert_int_equal(cfg.database.reconnect_min_ms, 100);
    assert_int_equal(cfg.database.reconnect_max_ms, 10000);
    assert_null(cfg.database.embedded_dir);
    assert_string_equal(cfg.database.embedded_user, "postgres");
    assert_null(cfg.database.embedded_bindir);
    opsc_config_free(&cfg);
    assert_null(cfg.data_dir);
    opsc_config_free(&cfg); /* safe twice */
}

static void test_key_table(void **state) {
    (void)state;
    static const char *const expected[] = {"data_dir",
                                           "admin_token",
                                           "shutdown_timeout",
                                           "log.level",
                                           "log.format",
                                           "http.listen",
                                           "http.max_connections",
                                           "http.max_header_bytes",
                                           "http.idle_timeout",
                                           "http.header_timeout",
                                           "http.body_timeout",
                                           "http.max_headers",
                                           "http.max_url_bytes",
                                           "http.max_body_bytes",
                                           "http.tls.listen",
                                           "http.tls.cert",
                                           "http.tls.key",
                                           "http.tls.handshake_timeout",
                                           "auth.pbkdf2_iterations",
                                           "auth.session_ttl",
                                           "auth.login_max_failures",
                                           "auth.login_lockout",
                                           "stream.max_pending",
                                           "stream.max_message_bytes",
                                           "stream.ping_interval",
                                           "webhooks.severity_map",
                                           "webhooks.default_category",
                                           "snmp.listen",
                                           "snmp.communities",
                                           "snmp.engine_id",
                                           "snmp.rcvbuf",
                                           "snmp.max_per_wakeup",
                                           "snmp.per_source_rate",
                                           "snmp.per_source_burst",
                                           "snmp.per_source_max",
                                           "snmp.storm_quiet",
                                           "snmp.v3_users",
                                           "snmp.mib_dirs",
                                           "dns.servers",
                                           "dns.cache_ttl",
                                           "dns.negative_ttl",
                                           "dns.timeout",
                                           "dns.cache_max",
                                           "correlation.down_alert_types",
                                           "correlation.flap_threshold",
                                           "correlation.flap_window",
                                           "correlation.flap_track_max",
                                           "correlation.expire_after",
                                           "correlation.expire_after_by_category",
                                           "database.url",
                                           "database.readers",
                                           "database.queue_max",
                                           "database.connect_timeout",
                                           "database.reconnect_min",
                                           "database.reconnect_max",
                                           "database.embedded_dir",
                                           "database.embedded_user",
                                           "database.embedded_bindir",
                                           "spool.dir",
                                           "spool.max_bytes",
                                           "spool.segment_bytes",
                                           "spool.sync_interval"};
    assert_int_equal(opsc_config_keys_count, sizeof(expected) / sizeof(expected[0]));
    for (size_t i = 0; i < opsc_config_keys_count; i++) {
        const opsc_config_key_t *k = &opsc_config_keys[i];
        assert_string_equal(k->path, expected[i]);
        assert_non_null(k->help);
        assert_true(strlen(k->help) > 10);
        assert_null(strchr(k->help, '\n'));
        assert_ptr_equal(opsc_config_find_key(k->path), k);
    }
    assert_null(opsc_config_find_key("database"));
    assert_null(opsc_config_find_key("nope"));

    const opsc_config_key_t *url = opsc_config_find_key("database.url");
    assert_true(url->secret);
    assert_false(url->reloadable);
    assert_true(opsc_config_find_key("admin_token")->secret);
    assert_true(opsc_config_find_key("admin_token")->reloadable);
    assert_true(opsc_config_find_key("log.level")->reloadable);
    assert_true(opsc_config_find_key("log.format")->reloadable);
    assert_true(opsc_config_find_key("shutdown_timeout")->reloadable);
    assert_false(opsc_config_find_key("data_dir")->reloadable);
    assert_false(opsc_config_find_key("http.listen")->reloadable);

    char env[64];
    opsc_config_env_name("database.url", env, sizeof(env));
    assert_string_equal(env, "OPSC_DATABASE_URL");
    opsc_config_env_name("data_dir", env, sizeof(env));
    assert_string_equal(env, "OPSC_DATA_DIR");
    opsc_config_env_name("admin_token", env, sizeof(env));
    assert_string_equal(env, "OPSC_ADMIN_TOKEN");
    opsc_config_env_name("log.level", env, sizeof(env));
    assert_string_equal(env, "OPSC_LOG_LEVEL");
    opsc_config_env_name("snmp.listen", env, sizeof(env));
    assert_string_equal(env, "OPSC_SNMP_LISTEN");
    opsc_config_env_name("http.max_header_bytes", env, 10); /* truncates safely */
    assert_string_equal(env, "OPSC_HTTP");
}

/* ---- YAML and environment ------------------------------------------------------------------- */

static void test_yaml_overrides(void **state) {
    (void)state;
    const char *path = write_yaml("# OpsConductor\n"
                                  "data_dir: /srv/opsc\n"
                                  "admin_token: \"s3cret\"\n"
                                  "shutdown_timeout: 250ms\n"
                                  "log:\n"
                                  "  level: DEBUG\n"
                                  "  format: json\n"
                                  "http:\n"
                                  "  listen: [\"127.0.0.1:0\", \"[::1]:9090\"]\n"
                                  "  max_connections: 10\n"
                                  "  max_header_bytes: 32k\n"
                                  "  idle_timeout: 2m\n"
                                  "snmp:\n"
                                  "  listen:\n"
                                  "    - udp:127.0.0.1:1162\n"
                                  "    - udp6:[::1]:1162\n"
                                  "database:\n"
                                  "  url: postgres://u:p@db/opsc\n"
                                  "  readers: 0\n"
                                  "  queue_max: 5\n"
                                  "  connect_timeout: 3   # bare number = seconds\n"
                                  "  reconnect_min: 50ms\n"
                                  "  reconnect_max: 1m\n"
                                  "  embedded_dir: /var/lib/x\n"
                                  "  embedded_user: pgsvc\n"
                                  "  embedded_bindir: /usr/lib/postgresql/15/bin\n");
    opsc_config_t cfg;
    load_ok(&cfg, path, no_env);
    assert_string_equal(cfg.data_dir, "/srv/opsc");
    assert_string_equal(cfg.admin_token, "s3cret");
    assert_int_equal(cfg.shutdown_timeout_ms, 250);
    assert_int_equal(cfg.log.level, OPSC_LOG_DEBUG);
    assert_int_equal(cfg.log.format, OPSC_LOG_JSON);
    assert_int_equal(cfg.http.listen.count, 2);
    assert_string_equal(cfg.http.listen.addr[0].host, "127.0.0.1");
    assert_int_equal(cfg.http.listen.addr[0].port, 0);
    assert_int_equal(cfg.http.listen.addr[1].family, AF_INET6);
    assert_string_equal(cfg.http.listen.addr[1].host, "::1");
    assert_int_equal(cfg.http.listen.addr[1].port, 9090);
    assert_int_equal(cfg.http.max_connections, 10);
    assert_int_equal(cfg.http.max_header_bytes, 32768);
    assert_int_equal(cfg.http.idle_timeout_ms, 120000);
    assert_int_equal(cfg.snmp.listen.count, 2);
    assert_int_equal(cfg.snmp.listen.addr[0].port, 1162);
    assert_int_equal(cfg.snmp.listen.addr[1].family, AF_INET6);
    assert_string_equal(cfg.database.url, "postgres://u:p@db/opsc");
    assert_int_equal(cfg.database.readers, 0);
    assert_int_equal(cfg.database.queue_max, 5);
    assert_int_equal(cfg.database.connect_timeout_ms, 3000);
    assert_int_equal(cfg.database.reconnect_min_ms, 50);
    assert_int_equal(cfg.database.reconnect_max_ms, 60000);
    assert_string_equal(cfg.database.embedded_dir, "/var/lib/x");
    assert_string_equal(cfg.database.embedded_user, "pgsvc");
    assert_string_equal(cfg.database.embedded_bindir, "/usr/lib/postgresql/15/bin");
    opsc_config_free(&cfg);
}

/* http.tls.* nests one level deeper than other sections: "http:" / "tls:" / "cert:". */
static void test_http_keys(void **state) {
    (void)state;
    const char *path = write_yaml("http:\n"
                                  "  header_timeout: 2s\n"
                                  "  body_timeout: 500ms\n"
                                  "  max_headers: 20\n"
                                  "  max_url_bytes: 1KiB\n"
                                  "  max_body_bytes: 4MiB\n"
                                  "  tls:\n"
                                  "    listen: 127.0.0.1:8443,[::1]:8443\n"
                                  "    cert: /etc/opsc/cert.pem\n"
                                  "    key: /etc/opsc/key.pem\n"
                                  "    handshake_timeout: 3s\n");
    char *const env[] = {E("OPSC_HTTP_TLS_HANDSHAKE_TIMEOUT=4s"), E("OPSC_HTTP_MAX_HEADERS=30"),
                         NULL};
    opsc_config_t cfg;
    const char *err;

    load_ok(&cfg, path, env);
    assert_int_equal(cfg.http.header_timeout_ms, 2000);
    assert_int_equal(cfg.http.body_timeout_ms, 500);
    assert_int_equal(cfg.http.max_headers, 30);
    assert_int_equal(cfg.http.max_url_bytes, 1024);
    assert_int_equal(cfg.http.max_body_bytes, 4 * 1048576);
    assert_int_equal(cfg.http.tls.listen.count, 2);
    assert_string_equal(cfg.http.tls.listen.addr[0].host, "127.0.0.1");
    assert_int_equal(cfg.http.tls.listen.addr[1].port, 8443);
    assert_string_equal(cfg.http.tls.cert, "/etc/opsc/cert.pem");
    assert_string_equal(cfg.http.tls.key, "/etc/opsc/key.pem");
    assert_int_equal(cfg.http.tls.handshake_timeout_ms, 4000);
    opsc_config_free(&cfg);

    /* An unknown key inside the nested section is named in full. */
    path = write_yaml("http:\n  tls:\n    crt: /x.pem\n");
    err = load_fail(path, no_env);
    assert_non_null(strstr(err, "http.tls.crt"));
    /* Limits are checked like every other key. */
    path = write_yaml("http:\n  max_headers: 0\n");
    err = load_fail(path, no_env);
    assert_non_null(strstr(err, "http.max_headers"));
    path = write_yaml("http:\n  tls:\n    listen: nowhere\n");
    err = load_fail(path, no_env);
    assert_non_null(strstr(err, "http.tls.listen"));
    /* A TLS listener without its certificate is refused before start. */
    path = write_yaml("http:\n  tls:\n    listen: 127.0.0.1:8443\n    cert: /c.pem\n");
    err = load_fail(path, no_env);
    assert_non_null(strstr(err, "http.tls.listen"));
    assert_non_null(strstr(err, "http.tls.key"));
}

static void test_yaml_flat_keys_and_empty_values(void **state) {
    (void)state;
    /* flat dotted keys; null / empty for NULL-default keys means unset; empty sections ok */
    const char *path = write_yaml("log.level: warn\n"
                                  "database.readers: 5\n"
                                  "admin_token: ~\n"
                                  "database:\n"
                                  "  url:\n"
                                  "  embedded_dir: ''\n"
                                  "  embedded_bindir: null\n"
                                  "snmp:\n"
                                  "  # listen: udp:0.0.0.0:162\n"
                                  "http:\n"
                                  "  listen: 127.0.0.1:8081, [::1]:8081\n");
    opsc_config_t cfg;
    load_ok(&cfg, path, no_env);
    assert_int_equal(cfg.log.level, OPSC_LOG_WARN);
    assert_int_equal(cfg.database.readers, 5);
    assert_null(cfg.admin_token);
    assert_null(cfg.database.url);
    assert_null(cfg.database.embedded_dir);
    assert_null(cfg.database.embedded_bindir);
    assert_int_equal(cfg.snmp.listen.count, 2);
    assert_int_equal(cfg.http.listen.count, 2);
    assert_int_equal(cfg.http.listen.addr[1].port, 8081);
    opsc_config_free(&cfg);

    /* empty file and comment-only file: all defaults */
    load_ok(&cfg, write_yaml(""), no_env);
    assert_string_equal(cfg.data_dir, "./var");
    opsc_config_free(&cfg);
    load_ok(&cfg, write_yaml("# nothing here\n---\n"), no_env);
    assert_int_equal(cfg.database.readers, 2);
    opsc_config_free(&cfg);

    /* anchors and aliases resolve */
    load_ok(&cfg, write_yaml("shutdown_timeout: &t 7s\nhttp:\n  idle_timeout: *t\n"), no_env);
    assert_int_equal(cfg.http.idle_timeout_ms, 7000);
    opsc_config_free(&cfg);
}

/* Correlation keys: defaults, and the overrides the integration test uses. */
static void test_correlation_keys(void **state) {
    (void)state;
    opsc_config_t cfg;
    char *none[] = {NULL};
    load_ok(&cfg, NULL, none);
    assert_int_equal(cfg.correlation.flap_threshold, 5);
    assert_int_equal(cfg.correlation.flap_window_ms, 600000);
    assert_int_equal(cfg.correlation.flap_track_max, 100000);
    assert_int_equal(cfg.correlation.expire_after_ms, 0);
    assert_int_equal(cfg.correlation.expire_after_by_category.count, 0);
    opsc_config_free(&cfg);
    char *env[] = {E("OPSC_CORRELATION_FLAP_THRESHOLD=0"), E("OPSC_CORRELATION_FLAP_WINDOW=4s"),
                   E("OPSC_CORRELATION_EXPIRE_AFTER=1d"),
                   E("OPSC_CORRELATION_EXPIRE_AFTER_BY_CATEGORY=environment=3s,network=0"), NULL};
    load_ok(&cfg, NULL, env);
    assert_int_equal(cfg.correlation.flap_threshold, 0);
    assert_int_equal(cfg.correlation.flap_window_ms, 4000);
    assert_int_equal(cfg.correlation.expire_after_ms, 86400000);
    assert_int_equal(cfg.correlation.expire_after_by_category.count, 2);
    assert_string_equal(cfg.correlation.expire_after_by_category.items[0], "environment=3s");
    opsc_config_free(&cfg);
}

static void test_env_overrides_file(void **state) {
    (void)state;
    const char *path = write_yaml("database:\n"
                                  "  url: postgres://file/db\n"
                                  "  readers: 4\n"
                                  "log:\n"
                                  "  level: info\n"
                                  "data_dir: /from/file\n");
    char *env[] = {E("PATH=/usr/bin"),
                   E("OPSC_DATABASE_READERS=8"),
                   E("OPSC_LOG_LEVEL=trace"),
                   E("OPSC_DATABASE_URL="), /* empty: unset, even though the file set it */
                   E("OPSC_SNMP_LISTEN=udp:127.0.0.1:0, udp6:[::1]:0"),
                   E("OPSC_HTTP_MAX_HEADER_BYTES= 1MiB "),
                   E("OPSC_TOTALLY_UNKNOWN=1"), /* ignored by load */
                   E("OPSC_ADMIN_TOKEN=tok"),
                   E("NOT_OPSC_DATA_DIR=/nope"),
                   E("OPSC_NO_EQUALS_SIGN"),
                   NULL};
    opsc_config_t cfg;
    load_ok(&cfg, path, env);
    assert_int_equal(cfg.database.readers, 8);
    assert_int_equal(cfg.log.level, OPSC_LOG_TRACE);
    assert_null(cfg.database.url);
    assert_string_equal(cfg.data_dir, "/from/file");
    assert_string_equal(cfg.admin_token, "tok");
    assert_int_equal(cfg.snmp.listen.count, 2);
    assert_int_equal(cfg.snmp.listen.addr[1].family, AF_INET6);
    assert_int_equal(cfg.http.max_header_bytes, 1048576);
    opsc_config_free(&cfg);

    /* envp NULL reads environ */
    setenv("OPSC_LOG_FORMAT", "json", 1);
    load_ok(&cfg, NULL, NULL);
    assert_int_equal(cfg.log.format, OPSC_LOG_JSON);
    opsc_config_free(&cfg);
    unsetenv("OPSC_LOG_FORMAT");
}

static void test_env_errors(void **state) {
    (void)state;
    char *env1[] = {E("OPSC_DATABASE_READERS=abc"), NULL};
    const char *err = load_fail(NULL, env1);
    assert_string_equal(err, "database.readers: expected an integer from 0 to 32, got \"abc\" "
                             "(env OPSC_DATABASE_READERS)");

    char *env2[] = {E("OPSC_DATA_DIR="), NULL};
    err = load_fail(NULL, env2);
    assert_contains(err, "data_dir: expected a non-empty value, got an empty value");
    assert_contains(err, "(env OPSC_DATA_DIR)");

    char *env3[] = {E("OPSC_HTTP_LISTEN=localhost:99999"), NULL};
    err = load_fail(NULL, env3);
    assert_contains(err, "http.listen:");
    assert_contains(err, "\"localhost:99999\": port must be a number from 0 to 65535");
    assert_contains(err, "(env OPSC_HTTP_LISTEN)");

    /* the environment is applied after the file: its errors win even when the file is fine */
    const char *path = write_yaml("log:\n  level: debug\n");
    char *env4[] = {E("OPSC_LOG_LEVEL=verbose"), NULL};
    err = load_fail(path, env4);
    assert_string_equal(err, "log.level: expected one of error, warn, info, debug, trace, got "
                             "\"verbose\" (env OPSC_LOG_LEVEL)");
}

static void test_unknown_env(void **state) {
    (void)state;
    char *env[] = {E("OPSC_DATABASE_URL=postgres://secret@x/db"),
                   E("OPSC_DATABSE_URL=oops-secret"),
                   E("HOME=/root"),
                   E("OPSC_FOO"),
                   E("OPSC_LOG_LEVEL=info"),
                   NULL};
    char out[256];
    assert_int_equal(opsc_config_unknown_env(env, out, sizeof(out)), 2);
    assert_string_equal(out, "OPSC_DATABSE_URL,OPSC_FOO");
    assert_not_contains(out, "secret");

    /* load ignores them */
    opsc_config_t cfg;
    load_ok(&cfg, NULL, env);
    assert_string_equal(cfg.database.url, "postgres://secret@x/db");
    opsc_config_free(&cfg);

    /* truncation keeps room for a marker */
    char small[24];
    assert_int_equal(opsc_config_unknown_env(env, small, sizeof(small)), 2);
    assert_string_equal(small, "OPSC_DATABSE_URL,...");

    assert_int_equal(opsc_config_unknown_env(no_env, out, sizeof(out)), 0);
    assert_string_equal(out, "");
}

/* ---- file errors ---------------------------------------------------------------------------- */

static void test_error_example_line(void **state) {
    (void)state;
    const char *path = write_yaml("# line 1\n"
                                  "data_dir: ./var\n"
                                  "log:\n"
                                  "  level: info\n"
                                  "database:\n"
                                  "  url: postgres://x/y\n"
                                  "  readers: abc\n");
    char want[256];
    snprintf(want, sizeof(want),
             "database.readers: expected an integer from 0 to 32, got \"abc\" (%s:7)", path);
    assert_string_equal(load_fail(path, no_env), want);
}

static void test_error_syntax(void **state) {
    (void)state;
    int saved = dup(STDERR_FILENO);
    FILE *cap = tmpfile();
    assert_non_null(cap);
    dup2(fileno(cap), STDERR_FILENO);

    const char *path = write_yaml("data_dir: x\nhttp:\n  listen: [1,\nlog: 2\n");
    const char *err = load_fail(path, no_env);
    char stderr_text[256] = "";
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(cap);
    size_t n = fread(stderr_text, 1, sizeof(stderr_text) - 1, cap);
    stderr_text[n] = '\0';
    fclose(cap);

    assert_contains(err, "invalid YAML");
    char want[128];
    snprintf(want, sizeof(want), "%s:4", path);
    assert_contains(err, want);
    /* libfyaml's diagnostics are captured, never printed by the library */
    assert_string_equal(stderr_text, "");

    err = load_fail(write_yaml("a: \"unterminated\n"), no_env);
    assert_contains(err, "invalid YAML");
    assert_contains(err, "closing quote");

    path = write_yaml("log:\n  level: info\n  level: debug\n");
    err = load_fail(path, no_env);
    assert_contains(err, "duplicate key");
    snprintf(want, sizeof(want), "%s:3", path);
    assert_contains(err, want);

    path = write_yaml("data_dir: a\n---\ndata_dir: b\n");
    err = load_fail(path, no_env);
    assert_contains(err, "more than one YAML document");
    assert_contains(err, path);
}

static void test_error_file_unreadable(void **state) {
    (void)state;
    const char *err = load_fail("/nonexistent/dir/opsc.yaml", no_env);
    assert_contains(err, "cannot read config file /nonexistent/dir/opsc.yaml");
    assert_contains(err, "no such file or directory");

    err = load_fail("/tmp", no_env);
    assert_contains(err, "cannot read config file /tmp");
    assert_contains(err, "illegal operation on a directory");
}

static void test_error_top_level(void **state) {
    (void)state;
    const char *path = write_yaml("- data_dir\n- x\n");
    const char *err = load_fail(path, no_env);
    assert_contains(err, "must be a mapping");
    assert_contains(err, "got a sequence");
    assert_contains(err, loc(path, 1));

    path = write_yaml("\n\njust a string\n");
    err = load_fail(path, no_env);
    assert_contains(err, "got a scalar");
    assert_contains(err, loc(path, 3));
}

static void test_error_unknown_keys(void **state) {
    (void)state;
    const char *path = write_yaml("data_dir: x\nfrobnicate: 1\n");
    const char *err = load_fail(path, no_env);
    assert_contains(err, "unknown key \"frobnicate\"");
    assert_contains(err, loc(path, 2));
    assert_not_contains(err, "did you mean");

    path = write_yaml("database:\n  url: x\n  reader: 3\n");
    err = load_fail(path, no_env);
    assert_contains(err, "unknown key \"database.reader\", did you mean \"database.readers\"?");
    assert_contains(err, loc(path, 3));

    path = write_yaml("datadir: x\n");
    err = load_fail(path, no_env);
    assert_contains(err, "did you mean \"data_dir\"?");

    path = write_yaml("log:\n  level: info\n? [a, b]\n: c\n");
    err = load_fail(path, no_env);
    assert_contains(err, "config keys must be plain names, got a sequence");
    assert_contains(err, loc(path, 3));
}

static void test_error_shapes(void **state) {
    (void)state;
    /* mapping where a value is expected */
    const char *path = write_yaml("data_dir: x\nlog:\n  level:\n    nested: 1\n");
    const char *err = load_fail(path, no_env);
    assert_contains(err, "log.level: expected a single value, got a mapping");
    assert_contains(err, loc(path, 3));

    /* sequence where a single value is expected */
    path = write_yaml("database:\n  readers: [1, 2]\n");
    err = load_fail(path, no_env);
    assert_contains(err, "database.readers: expected a single value, got a sequence");
    assert_contains(err, loc(path, 2));

    /* scalar where a section is expected */
    path = write_yaml("data_dir: x\ndatabase: postgres://db/x\n");
    err = load_fail(path, no_env);
    assert_contains(err, "database: expected a mapping of database.* keys, got a scalar "
                         "\"postgres://db/x\"");
    assert_contains(err, loc(path, 2));

    path = write_yaml("http:\n  - listen\n");
    err = load_fail(path, no_env);
    assert_contains(err, "http: expected a mapping of http.* keys, got a sequence");

    /* the same key twice through the nested and the flat form */
    path = write_yaml("log.level: debug\nlog:\n  level: info\n");
    err = load_fail(path, no_env);
    assert_contains(err, "log.level: set twice in the config file");
    assert_contains(err, "1 and line 3");

    /* listen sequence holding a mapping */
    path = write_yaml("http:\n  listen:\n    - 127.0.0.1:1\n    - {a: b}\n");
    err = load_fail(path, no_env);
    assert_contains(err, "http.listen: expected");
    assert_contains(err, "got a mapping in the sequence");
    assert_contains(err, loc(path, 4));

    path = write_yaml("http:\n  listen: []\n");
    err = load_fail(path, no_env);
    assert_contains(err, "http.listen: expected");
    assert_contains(err, "got an empty sequence");
}

static void test_error_values(void **state) {
    (void)state;
    static const struct {
        const char *yaml;
        int line;
        const char *want;
    } cases[] = {
        {"database:\n  readers: 33\n", 2,
         "database.readers: expected an integer from 0 to 32, got \"33\""},
        {"database:\n  readers: -1\n", 2, "expected an integer from 0 to 32, got \"-1\""},
        {"database:\n  readers: 2.5\n", 2, "got \"2.5\""},
        {"database:\n  queue_max: 99999999999999999999999\n", 2,
         "database.queue_max: expected an integer from 1 to 10000000"},
        {"http:\n  max_connections: 0\n", 2,
         "http.max_connections: expected an integer from 1 to 1000000, got \"0\""},
        {"shutdown_timeout: 5x\n", 1,
         "shutdown_timeout: expected a duration from 100ms to 10m (like 250ms, 5s, 2m, 1h, 1d; "
         "a bare number is seconds), got \"5x\""},
        {"shutdown_timeout: 11m\n", 1, "shutdown_timeout: expected a duration from 100ms to 10m"},
        {"shutdown_timeout: 50ms\n", 1, "got \"50ms\""},
        {"shutdown_timeout: -5s\n", 1, "got \"-5s\""},
        {"http:\n  idle_timeout: 1.5s\n", 2,
         "http.idle_timeout: expected a duration from 1s to 1h"},
        {"http:\n  idle_timeout: 2d\n", 2, "got \"2d\""},
        {"http:\n  max_header_bytes: 16QB\n", 2,
         "http.max_header_bytes: expected a size from 1KiB to 1MiB (like 2048, 16KiB, 1MiB), got "
         "\"16QB\""},
        {"http:\n  max_header_bytes: 512\n", 2, "got \"512\""},
        {"http:\n  max_header_bytes: 2MiB\n", 2, "got \"2MiB\""},
        {"log:\n  level: loud\n", 2,
         "log.level: expected one of error, warn, info, debug, trace, got \"loud\""},
        {"log:\n  format: xml\n", 2, "log.format: expected one of logfmt, json, got \"xml\""},
        {"http:\n  listen: foo:80\n", 2,
         "http.listen: \"foo:80\": host must be a numeric IP address or localhost; expected a "
         "comma-separated list of HOST:PORT or [IPV6]:PORT"},
        {"snmp:\n  listen: udp:1.2.3.4\n", 2, "snmp.listen: \"udp:1.2.3.4\": missing :PORT"},
        {"snmp:\n  listen:\n    - udp:1.2.3.4:162\n    - udp:1.2.3.4:162\n", 4,
         "snmp.listen: \"udp:1.2.3.4:162\": duplicate address"},
        {"data_dir:\n", 1, "data_dir: expected a non-empty value, got an empty value"},
        {"data_dir: ''\n", 1, "data_dir: expected a non-empty value, got an empty value"},
        {"database:\n  embedded_user: ~\n", 2, "database.embedded_user: expected a non-empty"},
        {"database:\n  readers:\n", 2,
         "database.readers: expected an integer from 0 to 32, got an "
         "empty value"},
        {"log:\n  level: \"bad\\nline\"\n", 2, "got \"bad\\nline\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *path = write_yaml(cases[i].yaml);
        const char *err = load_fail(path, no_env);
        assert_contains(err, cases[i].want);
        assert_contains(err, loc(path, cases[i].line));
        teardown(NULL);
    }
}

static void test_error_cross_check(void **state) {
    (void)state;
    const char *path = write_yaml("database:\n  reconnect_min: 20s\n");
    const char *err = load_fail(path, no_env);
    char want[256];
    snprintf(want, sizeof(want),
             "database.reconnect_min: expected at most database.reconnect_max (10s, default), "
             "got 20s (%s:2)",
             path);
    assert_string_equal(err, want);
}

static void test_errbuf_small_and_null(void **state) {
    (void)state;
    char *env[] = {E("OPSC_DATABASE_READERS=abc"), NULL};
    opsc_config_t cfg;
    char tiny[12];
    assert_int_equal(opsc_config_load(&cfg, NULL, env, tiny, sizeof(tiny)), OPSC_ECONFIG);
    assert_string_equal(tiny, "database.re"); /* truncated, terminated */
    assert_int_equal(opsc_config_load(&cfg, NULL, env, NULL, 0), OPSC_ECONFIG);
}

/* ---- single values -------------------------------------------------------------------------- */

static void test_durations_and_sizes(void **state) {
    (void)state;
    opsc_config_key_t dur = {"t.d", OPSC_CFG_DURATION, 0, "1s", 0, INT64_MAX, 0, 0, "test"};
    opsc_config_key_t size = {"t.s", OPSC_CFG_SIZE, 0, "1", 0, INT64_MAX, 0, 0, "test"};
    static const struct {
        const char *text;
        int64_t ms;
    } durs[] = {{"250ms", 250}, {"5s", 5000}, {"2m", 120000}, {"1h", 3600000}, {"1d", 86400000},
                {"7", 7000},    {"0", 0},     {" 3s ", 3000}, {"10MS", 10},    {"1 h", 3600000}};
    for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
        int64_t v = -1;
        char err[256];
        if (opsc_config_parse_value(&dur, durs[i].text, &v, err, sizeof(err)) != 0) {
            fail_msg("%s: %s", durs[i].text, err);
        }
        assert_int_equal(v, durs[i].ms);
    }
    static const char *const bad_durs[] = {"",
                                           "s",
                                           "5x",
                                           "1.5s",
                                           "-1s",
                                           "5 s s",
                                           "1w",
                                           "0x10",
                                           "99999999999999999999d",
                                           "9223372036854775807d"};
    for (size_t i = 0; i < sizeof(bad_durs) / sizeof(bad_durs[0]); i++) {
        int64_t v = 42;
        char err[256];
        assert_int_equal(opsc_config_parse_value(&dur, bad_durs[i], &v, err, sizeof(err)),
                         OPSC_ECONFIG);
        assert_int_equal(v, 42); /* untouched on error */
        assert_contains(err, "t.d: expected a duration");
    }

    static const struct {
        const char *text;
        int64_t bytes;
    } sizes[] = {{"512", 512},         {"16KiB", 16384},     {"16K", 16384},  {"16kib", 16384},
                 {"16kb", 16384},      {"1MiB", 1048576},    {"1M", 1048576}, {"1mb", 1048576},
                 {"1GiB", 1073741824}, {"2g", 2147483648LL}, {"100B", 100},   {"4 KiB", 4096}};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        int64_t v = -1;
        char err[256];
        if (opsc_config_parse_value(&size, sizes[i].text, &v, err, sizeof(err)) != 0) {
            fail_msg("%s: %s", sizes[i].text, err);
        }
        assert_int_equal(v, sizes[i].bytes);
    }
    static const char *const bad_sizes[] = {"KiB", "1TiB", "1.5M", "-1", "12 34", "1Mi"};
    for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
        int64_t v = 0;
        char err[256];
        assert_int_equal(opsc_config_parse_value(&size, bad_sizes[i], &v, err, sizeof(err)),
                         OPSC_ECONFIG);
        assert_contains(err, "t.s: expected a size");
    }
}

static void test_parse_value_strings_and_enums(void **state) {
    (void)state;
    const opsc_config_key_t *url = opsc_config_find_key("database.url");
    const opsc_config_key_t *user = opsc_config_find_key("database.embedded_user");
    const opsc_config_key_t *lvl = opsc_config_find_key("log.level");
    char err[256];
    char *s = NULL;
    assert_int_equal(opsc_config_parse_value(url, "postgres://a", &s, err, sizeof(err)), 0);
    assert_string_equal(s, "postgres://a");
    assert_int_equal(opsc_config_parse_value(url, "postgres://b", &s, err, sizeof(err)), 0);
    assert_string_equal(s, "postgres://b"); /* old one freed (ASan would tell) */
    assert_int_equal(opsc_config_parse_value(url, "", &s, err, sizeof(err)), 0);
    assert_null(s);
    assert_int_equal(opsc_config_parse_value(url, NULL, &s, err, sizeof(err)), 0);
    assert_null(s);
    assert_int_equal(opsc_config_parse_value(user, "", &s, err, sizeof(err)), OPSC_ECONFIG);
    assert_string_equal(err, "database.embedded_user: expected a non-empty value, got an empty "
                             "value");
    assert_int_equal(opsc_config_parse_value(user, " keep spaces ", &s, err, sizeof(err)), 0);
    assert_string_equal(s, " keep spaces ");
    free(s);

    opsc_log_level_t l = OPSC_LOG_INFO;
    static const char *const names[] = {"error", "WARN", "warning", "Info", "debug", "trace"};
    static const opsc_log_level_t want[] = {OPSC_LOG_ERROR, OPSC_LOG_WARN,  OPSC_LOG_WARN,
                                            OPSC_LOG_INFO,  OPSC_LOG_DEBUG, OPSC_LOG_TRACE};
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(opsc_config_parse_value(lvl, names[i], &l, err, sizeof(err)), 0);
        assert_int_equal(l, want[i]);
    }
}

/* ---- listen lists --------------------------------------------------------------------------- */

static void test_listen_parse(void **state) {
    (void)state;
    opsc_listen_list_t l;
    char err[256];

    assert_int_equal(opsc_listen_parse_list(" 127.0.0.1:80 , [::1]:443,0.0.0.0:0,[::]:0",
                                            OPSC_PROTO_TCP, &l, err, sizeof(err)),
                     0);
    assert_int_equal(l.count, 4);
    assert_int_equal(l.addr[0].family, AF_INET);
    assert_string_equal(l.addr[0].host, "127.0.0.1");
    assert_int_equal(l.addr[0].port, 80);
    assert_int_equal(l.addr[1].family, AF_INET6);
    assert_string_equal(l.addr[1].host, "::1");
    assert_int_equal(l.addr[1].port, 443);
    assert_int_equal(l.addr[2].port, 0);
    assert_string_equal(l.addr[3].host, "::");

    assert_int_equal(opsc_listen_parse_list("localhost:8080", OPSC_PROTO_TCP, &l, err, sizeof(err)),
                     0);
    assert_string_equal(l.addr[0].host, "127.0.0.1");
    assert_int_equal(l.addr[0].family, AF_INET);

    /* canonical form: [::0] and [0:0::0] are the same address */
    assert_int_equal(opsc_listen_parse_list("[0:0::0]:1", OPSC_PROTO_TCP, &l, err, sizeof(err)), 0);
    assert_string_equal(l.addr[0].host, "::");

    /* UDP forms */
    assert_int_equal(opsc_listen_parse_list("udp:0.0.0.0:162,udp6:[::]:162,udp:[::1]:1162,"
                                            "10.0.0.1:5162,UDP:1.2.3.4:1",
                                            OPSC_PROTO_UDP, &l, err, sizeof(err)),
                     0);
    assert_int_equal(l.count, 5);
    for (int i = 0; i < l.count; i++) {
        assert_int_equal(l.addr[i].proto, OPSC_PROTO_UDP);
    }
    assert_int_equal(l.addr[0].family, AF_INET);
    assert_int_equal(l.addr[1].family, AF_INET6);
    assert_int_equal(l.addr[2].family, AF_INET6);
    assert_string_equal(l.addr[2].host, "::1");
    assert_int_equal(l.addr[3].family, AF_INET);

    /* ephemeral ports may repeat */
    assert_int_equal(
        opsc_listen_parse_list("127.0.0.1:0,127.0.0.1:0", OPSC_PROTO_TCP, &l, err, sizeof(err)), 0);
    assert_int_equal(l.count, 2);

    /* exactly OPSC_LISTEN_MAX is fine, one more is not */
    char many[1024] = "";
    for (int i = 0; i < OPSC_LISTEN_MAX; i++) {
        char one[32];
        snprintf(one, sizeof(one), "%s127.0.0.1:%d", i ? "," : "", 1000 + i);
        strcat(many, one);
    }
    assert_int_equal(opsc_listen_parse_list(many, OPSC_PROTO_TCP, &l, err, sizeof(err)), 0);
    assert_int_equal(l.count, OPSC_LISTEN_MAX);
    strcat(many, ",127.0.0.1:2000");
    assert_int_equal(opsc_listen_parse_list(many, OPSC_PROTO_TCP, &l, err, sizeof(err)),
                     OPSC_ECONFIG);
    assert_contains(err, "too many addresses (at most 16)");
}

static void test_listen_errors(void **state) {
    (void)state;
    static const struct {
        const char *text;
        opsc_proto_t proto;
        const char *want;
    } cases[] = {
        {"", OPSC_PROTO_TCP, "no address given"},
        {"   ", OPSC_PROTO_TCP, "no address given"},
        {"127.0.0.1", OPSC_PROTO_TCP, "\"127.0.0.1\": missing :PORT"},
        {"example.com:80", OPSC_PROTO_TCP, "host must be a numeric IP address or localhost"},
        {"1.2.3:80", OPSC_PROTO_TCP, "host must be a numeric IP address"},
        {":80", OPSC_PROTO_TCP, "missing host"},
        {"::1:80", OPSC_PROTO_TCP, "an IPv6 address needs brackets, like [::1]:8080"},
        {"[::1]80", OPSC_PROTO_TCP, "missing :PORT after ]"},
        {"[::1:80", OPSC_PROTO_TCP, "missing ']'"},
        {"[1.2.3.4]:80", OPSC_PROTO_TCP, "host must be a numeric IPv6 address"},
        {"[zz::1]:80", OPSC_PROTO_TCP, "host must be a numeric IPv6 address"},
        {"1.2.3.4:65536", OPSC_PROTO_TCP, "port must be a number from 0 to 65535"},
        {"1.2.3.4:-1", OPSC_PROTO_TCP, "port must be a number"},
        {"1.2.3.4:", OPSC_PROTO_TCP, "port must be a number"},
        {"1.2.3.4:80x", OPSC_PROTO_TCP, "port must be a number"},
        {"1.2.3.4:000080", OPSC_PROTO_TCP, "port must be a number"},
        {"1.2.3.4:80,,1.2.3.4:81", OPSC_PROTO_TCP, "empty address in the list"},
        {"1.2.3.4:80,", OPSC_PROTO_TCP, "empty address in the list"},
        {"1.2.3.4:80, 1.2.3.4:80", OPSC_PROTO_TCP, "\"1.2.3.4:80\": duplicate address"},
        {"[::]:80,[0::0]:80", OPSC_PROTO_TCP, "\"[0::0]:80\": duplicate address"},
        {"udp:1.2.3.4:80", OPSC_PROTO_TCP, "a UDP address where TCP is expected"},
        {"tcp:1.2.3.4:80", OPSC_PROTO_UDP, "a TCP address where UDP is expected"},
        {"udp6:1.2.3.4:162", OPSC_PROTO_UDP, "udp6: needs an IPv6 address"},
        {"udp:localhostx:162", OPSC_PROTO_UDP, "host must be a numeric IP address"},
        {"[fe80::1%eth0]:80", OPSC_PROTO_TCP, "host must be a numeric IPv6 address"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        opsc_listen_list_t l;
        char err[256] = "";
        l.count = 99;
        int rc = opsc_listen_parse_list(cases[i].text, cases[i].proto, &l, err, sizeof(err));
        if (rc != OPSC_ECONFIG) {
            fail_msg("\"%s\" was accepted", cases[i].text);
        }
        assert_int_equal(l.count, 99); /* out untouched on error */
        assert_contains(err, cases[i].want);
    }
}

static void test_listen_format(void **state) {
    (void)state;
    opsc_listen_list_t l;
    char err[128], out[128];
    assert_int_equal(opsc_listen_parse_list("udp:0.0.0.0:162, udp6:[::]:162 ,udp:[::1]:5",
                                            OPSC_PROTO_UDP, &l, err, sizeof(err)),
                     0);
    opsc_listen_format(&l.addr[0], out, sizeof(out));
    assert_string_equal(out, "udp:0.0.0.0:162");
    opsc_listen_format(&l.addr[1], out, sizeof(out));
    assert_string_equal(out, "udp6:[::]:162");
    opsc_listen_format(&l.addr[2], out, sizeof(out));
    assert_string_equal(out, "udp6:[::1]:5");
}

/* ---- diff, format, copy, printing ----------------------------------------------------------- */

typedef struct diff_ctx_s {
    const opsc_config_t *old_cfg;
    const opsc_config_t *new_cfg;
    char lines[16][256];
    int n;
} diff_ctx_t;

static void on_diff(const opsc_config_key_t *key, void *arg) {
    diff_ctx_t *d = arg;
    char a[96], b[96];
    opsc_config_format_value(d->old_cfg, key, a, sizeof(a));
    opsc_config_format_value(d->new_cfg, key, b, sizeof(b));
    assert_true(d->n < 16);
    snprintf(d->lines[d->n++], sizeof(d->lines[0]), "%s (%s -> %s)%s", key->path, a, b,
             key->reloadable ? "" : " restart");
}

static void test_diff(void **state) {
    (void)state;
    opsc_config_t a, b;
    load_ok(&a, write_yaml("admin_token: old-secret\ndatabase:\n  url: postgres://a/x\n"), no_env);
    load_ok(&b,
            write_yaml("admin_token: new-secret\n"
                       "log:\n  level: debug\n"
                       "http:\n  listen: 0.0.0.0:8080, [::]:8080\n"
                       "database:\n  url: postgres://b/x\n  reconnect_max: 1m\n"),
            no_env);
    diff_ctx_t d = {&a, &b, {{0}}, 0};
    opsc_config_diff(&a, &a, on_diff, &d);
    assert_int_equal(d.n, 0);
    opsc_config_diff(&a, &b, on_diff, &d);
    assert_int_equal(d.n, 5);
    assert_string_equal(d.lines[0], "admin_token (*** -> ***)");
    assert_string_equal(d.lines[1], "log.level (info -> debug)");
    assert_string_equal(d.lines[2], "http.listen (0.0.0.0:8080 -> 0.0.0.0:8080,[::]:8080) restart");
    assert_string_equal(d.lines[3], "database.url (*** -> ***) restart");
    assert_string_equal(d.lines[4], "database.reconnect_max (10s -> 1m) restart");
    for (int i = 0; i < d.n; i++) {
        assert_not_contains(d.lines[i], "secret");
        assert_not_contains(d.lines[i], "postgres://");
    }

    /* copy the reloadable keys over: then only restart-needing keys differ */
    for (size_t i = 0; i < opsc_config_keys_count; i++) {
        if (opsc_config_keys[i].reloadable) {
            assert_int_equal(opsc_config_copy_key(&a, &b, &opsc_config_keys[i]), 0);
        }
    }
    assert_string_equal(a.admin_token, "new-secret");
    assert_int_equal(a.log.level, OPSC_LOG_DEBUG);
    d.n = 0;
    opsc_config_diff(&a, &b, on_diff, &d);
    assert_int_equal(d.n, 3);
    assert_contains(d.lines[0], "http.listen");

    /* copying NULL over a string frees it */
    opsc_config_t c;
    load_ok(&c, NULL, no_env);
    assert_int_equal(opsc_config_copy_key(&a, &c, opsc_config_find_key("database.url")), 0);
    assert_null(a.database.url);
    assert_int_equal(opsc_config_copy_key(&a, &c, opsc_config_find_key("http.listen")), 0);
    assert_int_equal(a.http.listen.count, 1);
    opsc_config_free(&a);
    opsc_config_free(&b);
    opsc_config_free(&c);
}

static void test_format_roundtrip(void **state) {
    (void)state;
    opsc_config_t cfg;
    char *env[] = {E("OPSC_ADMIN_TOKEN=t"), E("OPSC_DATABASE_URL=postgres://x"), NULL};
    load_ok(&cfg, write_yaml("shutdown_timeout: 1500ms\nhttp:\n  max_header_bytes: 2000\n"), env);
    char out[512];
    opsc_config_format_value(&cfg, opsc_config_find_key("shutdown_timeout"), out, sizeof(out));
    assert_string_equal(out, "1500ms");
    opsc_config_format_value(&cfg, opsc_config_find_key("http.max_header_bytes"), out, sizeof(out));
    assert_string_equal(out, "2000");
    opsc_config_format_value(&cfg, opsc_config_find_key("snmp.listen"), out, sizeof(out));
    assert_string_equal(out, "udp:0.0.0.0:162,udp6:[::]:162");
    opsc_config_format_value(&cfg, opsc_config_find_key("database.embedded_dir"), out, sizeof(out));
    assert_string_equal(out, "");

    /* every non-secret value reads back to the same value */
    for (size_t i = 0; i < opsc_config_keys_count; i++) {
        const opsc_config_key_t *k = &opsc_config_keys[i];
        if (k->secret) {
            continue;
        }
        opsc_config_t copy;
        char err[256];
        load_ok(&copy, NULL, no_env);
        opsc_config_format_value(&cfg, k, out, sizeof(out));
        void *dst = (char *)&copy + k->offset;
        if (opsc_config_parse_value(k, out, dst, err, sizeof(err)) != 0) {
            fail_msg("%s: \"%s\" does not parse back: %s", k->path, out, err);
        }
        assert_int_equal(opsc_config_copy_key(&copy, &copy, k), 0);
        char again[512];
        opsc_config_format_value(&copy, k, again, sizeof(again));
        assert_string_equal(out, again);
        opsc_config_free(&copy);
    }
    opsc_config_free(&cfg);
}

static char *capture(void (*fn)(const opsc_config_t *, FILE *), const opsc_config_t *cfg) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    fn(cfg, f);
    fclose(f);
    return text;
}

static void print_reference_adapter(const opsc_config_t *cfg, FILE *out) {
    (void)cfg;
    opsc_config_print_reference(out);
}

static void test_print(void **state) {
    (void)state;
    char *ref = capture(print_reference_adapter, NULL);
    static const char head[] =
        "| key | environment variable | default | reloadable | description |\n"
        "| --- | --- | --- | --- | --- |\n";
    assert_int_equal(strncmp(ref, head, strlen(head)), 0);
    int lines = 0;
    for (char *p = ref; *p != '\0'; p++) {
        lines += *p == '\n';
    }
    assert_int_equal(lines, (int)opsc_config_keys_count + 2);
    assert_contains(ref, "| `database.url` | `OPSC_DATABASE_URL` | (unset) | no | ");
    assert_contains(ref, "| `log.level` | `OPSC_LOG_LEVEL` | `info` | yes | ");
    assert_contains(ref,
                    "| `http.max_header_bytes` | `OPSC_HTTP_MAX_HEADER_BYTES` | `16KiB` | no |");
    assert_contains(ref, "Range: 1KiB to 1MiB.");
    assert_contains(ref, "Range: 0 to 32.");
    free(ref);

    opsc_config_t cfg;
    char *env[] = {E("OPSC_ADMIN_TOKEN=hunter2"), E("OPSC_DATABASE_URL=postgres://u:pw@h/db"),
                   NULL};
    load_ok(&cfg, NULL, env);
    char *eff = capture(opsc_config_print_effective, &cfg);
    assert_contains(eff, "data_dir = ./var\n");
    assert_contains(eff, "admin_token = ***\n");
    assert_contains(eff, "database.url = ***\n");
    assert_contains(eff, "database.embedded_dir = (unset)\n");
    assert_contains(eff, "http.listen = 0.0.0.0:8080\n");
    assert_contains(eff, "shutdown_timeout = 5s\n");
    assert_not_contains(eff, "hunter2");
    assert_not_contains(eff, "pw@");
    free(eff);
    opsc_config_free(&cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_defaults, teardown),
        cmocka_unit_test_teardown(test_key_table, teardown),
        cmocka_unit_test_teardown(test_yaml_overrides, teardown),
        cmocka_unit_test_teardown(test_http_keys, teardown),
        cmocka_unit_test_teardown(test_yaml_flat_keys_and_empty_values, teardown),
        cmocka_unit_test_teardown(test_env_overrides_file, teardown),
        cmocka_unit_test(test_correlation_keys),
        cmocka_unit_test_teardown(test_env_errors, teardown),
        cmocka_unit_test_teardown(test_unknown_env, teardown),
        cmocka_unit_test_teardown(test_error_example_line, teardown),
        cmocka_unit_test_teardown(test_error_syntax, teardown),
        cmocka_unit_test_teardown(test_error_file_unreadable, teardown),
        cmocka_unit_test_teardown(test_error_top_level, teardown),
        cmocka_unit_test_teardown(test_error_unknown_keys, teardown),
        cmocka_unit_test_teardown(test_error_shapes, teardown),
        cmocka_unit_test_teardown(test_error_values, teardown),
        cmocka_unit_test_teardown(test_error_cross_check, teardown),
        cmocka_unit_test_teardown(test_errbuf_small_and_null, teardown),
        cmocka_unit_test_teardown(test_durations_and_sizes, teardown),
        cmocka_unit_test_teardown(test_parse_value_strings_and_enums, teardown),
        cmocka_unit_test_teardown(test_listen_parse, teardown),
        cmocka_unit_test_teardown(test_listen_errors, teardown),
        cmocka_unit_test_teardown(test_listen_format, teardown),
        cmocka_unit_test_teardown(test_diff, teardown),
        cmocka_unit_test_teardown(test_format_roundtrip, teardown),
        cmocka_unit_test_teardown(test_print, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
