/*
 * Password hashing, the failed-login limiter, cookie parsing and the
 * in-memory session check (users.c is included to reach its cache).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "api/users.c"

static void test_passwd_hash_verify(void **state) {
    (void)state;
    char h[OPSC_PASSWD_HASH_MAX], h2[OPSC_PASSWD_HASH_MAX];
    assert_int_equal(opsc_passwd_hash("s3cret pass", 11, 1000, h), 0);
    /* The shape the users table's CHECK demands, and ours: algorithm$iterations$salt$key. */
    assert_true(strncmp(h, "pbkdf2-sha256$1000$", 19) == 0);
    assert_non_null(strchr(h + 19, '$'));
    assert_null(strstr(h, "s3cret"));
    unsigned it = 0;
    assert_int_equal(opsc_passwd_verify("s3cret pass", 11, h, &it), 1);
    assert_int_equal(it, 1000);
    assert_int_equal(opsc_passwd_verify("s3cret pasS", 11, h, NULL), 0);
    assert_int_equal(opsc_passwd_verify("s3cret pas", 10, h, NULL), 0);
    assert_int_equal(opsc_passwd_verify("", 0, h, NULL), 0);
    /* Per-hash salt: the same password hashes differently, and both verify. */
    assert_int_equal(opsc_passwd_hash("s3cret pass", 11, 1000, h2), 0);
    assert_string_not_equal(h, h2);
    assert_int_equal(opsc_passwd_verify("s3cret pass", 11, h2, NULL), 1);
    /* A different stored count is honoured (hashes made under an older setting). */
    assert_int_equal(opsc_passwd_hash("pw", 2, 1500, h2), 0);
    assert_int_equal(opsc_passwd_verify("pw", 2, h2, &it), 1);
    assert_int_equal(it, 1500);
}

static void test_passwd_known_vector(void **state) {
    (void)state;
    /* The published PBKDF2-HMAC-SHA-256 vector: P = "password", S = "salt", c = 1, dkLen = 32:
     * 120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b */
    const char stored[] = "pbkdf2-sha256$1$c2FsdA==$Eg+2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs=";
    assert_int_equal(opsc_passwd_verify("password", 8, stored, NULL), 1);
    assert_int_equal(opsc_passwd_verify("passwore", 8, stored, NULL), 0);
}

static void test_passwd_malformed(void **state) {
    (void)state;
    const char *bad[] = {
        NULL,
        "",
        "password",
        "sha1$1000$c2FsdA==$Eg+2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs=",
        "pbkdf2-sha256$0$c2FsdA==$Eg+2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs=",
        "pbkdf2-sha256$x$c2FsdA==$Eg+2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs=",
        "pbkdf2-sha256$999999999999$c2FsdA==$Eg+2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs=",
        "pbkdf2-sha256$1$c2FsdA==",
        "pbkdf2-sha256$1$c2FsdA==$Eg+2z/z4syxD5yJSVsT4",
        "pbkdf2-sha256$1$!!!$Eg+2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs="};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(opsc_passwd_verify("password", 8, bad[i], NULL), 0);
    }
}

static void test_passwd_random(void **state) {
    (void)state;
    char a[25], b[25];
    assert_int_equal(opsc_passwd_random(a), 0);
    assert_int_equal(opsc_passwd_random(b), 0);
    assert_int_equal(strlen(a), 24);
    assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     24);
    assert_string_not_equal(a, b);
}

static void test_limit_blocks_and_expires(void **state) {
    (void)state;
    opsc_login_limit_t *l = opsc_login_limit_create(64, 3, 10000);
    assert_non_null(l);
    int64_t t = 1000000;
    assert_int_equal(opsc_login_limit_check(l, "alice", t), 0);
    opsc_login_limit_fail(l, "alice", t);
    opsc_login_limit_fail(l, "alice", t + 100);
    assert_int_equal(opsc_login_limit_check(l, "alice", t + 200), 0);
    opsc_login_limit_fail(l, "alice", t + 200);
    /* Third failure: refused for the window, Retry-After rounded up to whole seconds. */
    assert_int_equal(opsc_login_limit_check(l, "alice", t + 200), 10);
    assert_int_equal(opsc_login_limit_check(l, "alice", t + 9300), 1);
    assert_int_equal(opsc_login_limit_check(l, "bob", t + 200), 0);
    assert_int_equal(opsc_login_limit_check(l, "alice", t + 10200), 0);
    /* After the window the count starts again. */
    opsc_login_limit_fail(l, "alice", t + 30000);
    assert_int_equal(opsc_login_limit_check(l, "alice", t + 30000), 0);
    /* Failures spread wider than the window never add up. */
    opsc_login_limit_fail(l, "carol", t);
    opsc_login_limit_fail(l, "carol", t + 11000);
    opsc_login_limit_fail(l, "carol", t + 22000);
    assert_int_equal(opsc_login_limit_check(l, "carol", t + 22000), 0);
    opsc_login_limit_clear(l, "alice");
    assert_int_equal(opsc_login_limit_check(l, "alice", t + 30000), 0);
    opsc_login_limit_destroy(l);
}

static void test_limit_bounded(void **state) {
    (void)state;
    opsc_login_limit_t *l = opsc_login_limit_create(32, 2, 60000);
    char key[32];
    /* A flood of names: the table never grows, the oldest are forgotten and counted. */
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "name%d", i);
        opsc_login_limit_fail(l, key, 1000 + i);
        assert_true(opsc_login_limit_used(l) <= 32);
    }
    assert_true(opsc_login_limit_evicted(l) >= 10000 - 32);
    /* The newest names are still tracked; a long key is cut, not overflowed. */
    opsc_login_limit_fail(l, "name9999", 20000);
    assert_true(opsc_login_limit_check(l, "name9999", 20000) > 0);
    char longkey[500];
    memset(longkey, 'x', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    opsc_login_limit_fail(l, longkey, 20000);
    opsc_login_limit_fail(l, longkey, 20001);
    assert_true(opsc_login_limit_check(l, longkey, 20002) > 0);
    opsc_login_limit_destroy(l);
}

static void test_cookie(void **state) {
    (void)state;
    size_t n = 0;
    const char *v = opsc_users_cookie("a=1; opsc_session=abc; b=2", "opsc_session", &n);
    assert_non_null(v);
    assert_int_equal(n, 3);
    assert_memory_equal(v, "abc", 3);
    v = opsc_users_cookie("opsc_session=\"q\"", "opsc_session", &n);
    assert_non_null(v);
    assert_int_equal(n, 1);
    assert_null(opsc_users_cookie("xopsc_session=abc", "opsc_session", &n));
    assert_null(opsc_users_cookie("opsc_sessionx=abc", "opsc_session", &n));
    assert_null(opsc_users_cookie("opsc_session=", "opsc_session", &n));
    assert_null(opsc_users_cookie(NULL, "opsc_session", &n));
    assert_null(opsc_users_cookie(";;;", "opsc_session", &n));
}

static void add_user(opsc_users_t *u, const char *id, const char *name, opsc_role_t role,
                     int active) {
    user_t x;
    memset(&x, 0, sizeof(x));
    snprintf(x.id, sizeof(x.id), "%s", id);
    snprintf(x.username, sizeof(x.username), "%s", name);
    lower_copy(x.lname, sizeof(x.lname), name);
    x.role = role;
    x.active = active;
    user_put(u, &x);
}

static void add_session(opsc_users_t *u, const char *cookie, const char *user_id, int64_t exp) {
    sess_t s;
    char hex[65];
    memset(&s, 0, sizeof(s));
    opsc_tokens_hash_hex(cookie, strlen(cookie), hex);
    opsc_api_hex_to_hash(hex, s.hash);
    snprintf(s.user_id, sizeof(s.user_id), "%s", user_id);
    s.expires_us = exp;
    session_put(u, &s);
}

static void test_session_cache(void **state) {
    (void)state;
    opsc_users_options_t o = {.pbkdf2_iterations = 1000,
                              .session_ttl_ms = 60000,
                              .login_max_failures = 5,
                              .login_lockout_ms = 60000};
    opsc_users_t *u = NULL;
    assert_int_equal(opsc_users_create(NULL, NULL, &o, &u), 0);
    const char *ida = "11111111-1111-1111-1111-111111111111";
    const char *idb = "22222222-2222-2222-2222-222222222222";
    add_user(u, ida, "Alice", OPSC_ROLE_OPERATOR, 1);
    add_user(u, idb, "bob", OPSC_ROLE_VIEWER, 1);
    add_session(u, "opsc_sessA", ida, 5000);
    add_session(u, "opsc_sessB", idb, 5000);
    add_session(u, "opsc_sessA2", ida, 5000);
    opsc_principal_t p;
    memset(&p, 0, sizeof(p));
    assert_int_equal(opsc_users_check_session(u, "x=1; opsc_session=opsc_sessA", 1000, &p), 0);
    assert_int_equal(p.role, OPSC_ROLE_OPERATOR);
    assert_string_equal(p.kind, "session");
    assert_string_equal(p.id, ida);
    assert_string_equal(p.name, "Alice");
    assert_int_equal(opsc_users_check_session(u, "opsc_session=opsc_sessB", 1000, &p), 0);
    assert_string_equal(p.name, "bob");
    /* Unknown, absent, expired. */
    assert_int_equal(opsc_users_check_session(u, "opsc_session=opsc_sessC", 1000, &p), 401);
    assert_int_equal(opsc_users_check_session(u, NULL, 1000, &p), 401);
    assert_int_equal(opsc_users_check_session(u, "opsc_session=opsc_sessA", 5000, &p), 401);
    assert_int_equal(opsc_users_check_session(NULL, "opsc_session=opsc_sessA", 1, &p), 401);
    /* A user disabled (our own write) loses every session at once. */
    add_user(u, ida, "Alice", OPSC_ROLE_OPERATOR, 0);
    assert_int_equal(opsc_users_check_session(u, "opsc_session=opsc_sessA", 1000, &p), 401);
    add_user(u, ida, "Alice", OPSC_ROLE_ADMIN, 1);
    assert_int_equal(opsc_users_check_session(u, "opsc_session=opsc_sessA2", 1000, &p), 0);
    assert_int_equal(p.role, OPSC_ROLE_ADMIN);
    /* Log-out of one session keeps the other; dropping the user ends the rest. */
    unsigned char h[32];
    char hex[65];
    opsc_tokens_hash_hex("opsc_sessA", 10, hex);
    opsc_api_hex_to_hash(hex, h);
    session_drop(u, h);
    assert_int_equal(opsc_users_check_session(u, "opsc_session=opsc_sessA", 1000, &p), 401);
    assert_int_equal(opsc_users_check_session(u, "opsc_session=opsc_sessA2", 1000, &p), 0);
    user_drop(u, ida);
    assert_int_equal(opsc_users_check_session(u, "opsc_session=opsc_sessA2", 1000, &p), 401);
    assert_int_equal(u->n_sess, 1);
    assert_int_equal(opsc_users_check_session(u, "opsc_session=opsc_sessB", 1000, &p), 0);
    /* Log-in looks names up case-insensitively. */
    assert_non_null(user_by_name(u, "BOB"));
    assert_null(user_by_name(u, "alice"));
    opsc_users_destroy(u);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passwd_hash_verify),
        cmocka_unit_test(test_passwd_known_vector),
        cmocka_unit_test(test_passwd_malformed),
        cmocka_unit_test(test_passwd_random),
        cmocka_unit_test(test_limit_blocks_and_expires),
        cmocka_unit_test(test_limit_bounded),
        cmocka_unit_test(test_cookie),
        cmocka_unit_test(test_session_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
