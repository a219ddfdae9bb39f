/*
 * PBKDF2-HMAC-SHA-256 password hashes in a self-describing text form, so a
 * stored hash carries everything needed to check it again.
 */
#include "opsc/passwd.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>

#include "opsc/auth.h"

#define ALGO "pbkdf2-sha256"
#define SALT_BYTES 16
#define KEY_BYTES 32
#define MAX_ITERATIONS 100000000u /* a stored count beyond this is a broken row, not a policy */

int opsc_random_bytes(void *buf, size_t n) {
    unsigned char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        got += (size_t)r;
    }
    return 0;
}

static int derive(const char *password, size_t len, const unsigned char *salt, size_t slen,
                  unsigned iterations, unsigned char key[KEY_BYTES]) {
    mbedtls_md_context_t md;
    mbedtls_md_init(&md);
    int rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
    if (rc == 0) {
        rc = mbedtls_pkcs5_pbkdf2_hmac(&md, (const unsigned char *)password, len, salt, slen,
                                       iterations, KEY_BYTES, key);
    }
    mbedtls_md_free(&md);
    return rc == 0 ? 0 : -EIO;
}

int opsc_passwd_hash(const char *password, size_t len, unsigned iterations,
                     char out[OPSC_PASSWD_HASH_MAX]) {
    unsigned char salt[SALT_BYTES], key[KEY_BYTES];
    char s64[32], k64[64];
    size_t sl = 0, kl = 0;
    int rc = opsc_random_bytes(salt, sizeof(salt));
    if (rc == 0) {
        rc = derive(password, len, salt, sizeof(salt), iterations, key);
    }
    if (rc == 0 &&
        (mbedtls_base64_encode((unsigned char *)s64, sizeof(s64), &sl, salt, sizeof(salt)) != 0 ||
         mbedtls_base64_encode((unsigned char *)k64, sizeof(k64), &kl, key, sizeof(key)) != 0)) {
        rc = -EIO;
    }
    if (rc == 0) {
        snprintf(out, OPSC_PASSWD_HASH_MAX, ALGO "$%u$%s$%s", iterations, s64, k64);
    }
    memset(key, 0, sizeof(key));
    return rc;
}

int opsc_passwd_verify(const char *password, size_t len, const char *stored, unsigned *iterations) {
    char copy[OPSC_PASSWD_HASH_MAX];
    if (!stored || strlen(stored) >= sizeof(copy) || strncmp(stored, ALGO "$", 14) != 0) {
        return 0;
    }
    memcpy(copy, stored, strlen(stored) + 1);
    char *it = copy + 14, *salt = strchr(it, '$');
    char *hash = salt ? strchr(salt + 1, '$') : NULL;
    if (!hash) {
        return 0;
    }
    *salt++ = '\0';
    *hash++ = '\0';
    char *end = NULL;
    unsigned long n = strtoul(it, &end, 10);
    unsigned char s[64], want[64], got[KEY_BYTES];
    size_t sl = 0, wl = 0;
    if (*it == '\0' || *end != '\0' || n == 0 || n > MAX_ITERATIONS ||
        mbedtls_base64_decode(s, sizeof(s), &sl, (unsigned char *)salt, strlen(salt)) != 0 ||
        mbedtls_base64_decode(want, sizeof(want), &wl, (unsigned char *)hash, strlen(hash)) != 0 ||
        wl != KEY_BYTES || derive(password, len, s, sl, (unsigned)n, got) != 0) {
        return 0;
    }
    if (iterations) {
        *iterations = (unsigned)n;
    }
    int ok = opsc_auth_equal(got, KEY_BYTES, want, KEY_BYTES);
    memset(got, 0, sizeof(got));
    return ok;
}

int opsc_passwd_random(char out[25]) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char r[18];
    int rc = opsc_random_bytes(r, sizeof(r));
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0, o = 0; i < sizeof(r); i += 3) {
        uint32_t v = (uint32_t)r[i] << 16 | (uint32_t)r[i + 1] << 8 | r[i + 2];
        for (int j = 0; j < 4; j++) {
            out[o++] = b64[(v >> (18 - 6 * j)) & 63];
        }
    }
    out[24] = '\0';
    memset(r, 0, sizeof(r));
    return 0;
}
