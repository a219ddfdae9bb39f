#ifndef OPSC_PASSWD_H
#define OPSC_PASSWD_H

#include <stddef.h>

/*
 * Password hashes (issue 4, item 3): PBKDF2-HMAC-SHA-256 with a 16-byte
 * random salt per hash, stored self-describing as
 *   "pbkdf2-sha256$<iterations>$<salt, base64>$<32-byte key, base64>"
 * (users.password_hash), so the iteration count can be raised later while
 * older hashes still verify. Both functions are pure CPU work, safe on any
 * thread, and slow by design: call them from libuv's thread pool
 * (uv_queue_work), never on the loop.
 */
#define OPSC_PASSWD_HASH_MAX 128

/** Hash `password` into out (NUL-terminated). 0, or a negative error (randomness, mbedTLS). */
int opsc_passwd_hash(const char *password, size_t len, unsigned iterations,
                     char out[OPSC_PASSWD_HASH_MAX]);
/**
 * 1 when password matches the stored hash, 0 when not or when `stored` is
 * not a hash of ours (malformed, other algorithm). The key comparison is in
 * constant time. *iterations (may be NULL) gets the stored count, for
 * re-hashing at a new count.
 */
int opsc_passwd_verify(const char *password, size_t len, const char *stored, unsigned *iterations);
/** Random printable password (base64url of 18 bytes: 24 characters). 0 or -errno. */
int opsc_passwd_random(char out[25]);
/** Fill buf with n bytes from the OS's randomness. 0 or -errno. */
int opsc_random_bytes(void *buf, size_t n);

#endif
