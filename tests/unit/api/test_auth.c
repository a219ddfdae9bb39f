/* Bearer parsing and the constant-time comparison of the authenticator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "opsc/auth.h"
#include "opsc/tokens.h"

static void test_bearer(void **state) {
    (void)state;
    size_t n = 0;
    const char *t = opsc_auth_bearer("Bearer abc123", &n);
    assert_non_null(t);
    assert_int_equal(n, 6);
    assert_memory_equal(t, "abc123", 6);
    t = opsc_auth_bearer("bearer   tok  ", &n);
    assert_non_null(t);
    assert_int_equal(n, 3);
    assert_memory_equal(t, "tok", 3);
    assert_null(opsc_auth_bearer(NULL, &n));
    assert_null(opsc_auth_bearer("Basic dXNlcjpwYXNz", &n));
    assert_null(opsc_auth_bearer("Bearer", &n));
    assert_null(opsc_auth_bearer("Bearer    ", &n));
    assert_null(opsc_auth_bearer("Bearerabc", &n));
}

static void test_equal(void **state) {
    (void)state;
    assert_true(opsc_auth_equal("secret", 6, "secret", 6));
    assert_false(opsc_auth_equal("secret", 6, "secreT", 6));
    assert_false(opsc_auth_equal("secret", 6, "secret2", 7));
    assert_false(opsc_auth_equal("secret", 6, "", 0));
    assert_true(opsc_auth_equal("", 0, "", 0));
}

static void test_create(void **state) {
    (void)state;
    opsc_auth_t *a = NULL;
    assert_int_equal(opsc_auth_create(NULL, &a), 0);
    opsc_auth_destroy(a);
    assert_int_equal(opsc_auth_create("tok", &a), 0);
    opsc_auth_destroy(a);
}

static void test_token_format(void **state) {
    (void)state;
    char a[49], b[49];
    assert_int_equal(opsc_tokens_generate(a), 0);
    assert_int_equal(opsc_tokens_generate(b), 0);
    assert_int_equal(strlen(a), 48);
    assert_memory_equal(a, "opsc_", 5);
    for (size_t i = 5; i < 48; i++) {
        char c = a[i];
        assert_true((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_');
    }
    assert_string_not_equal(a, b);
    char hex[65];
    opsc_tokens_hash_hex("abc", 3, hex); /* FIPS 180-2 test vector */
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    opsc_principal_t p;
    assert_int_equal(opsc_tokens_check(NULL, a, strlen(a), 0, &p), 401);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_token_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
