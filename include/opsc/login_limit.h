#ifndef OPSC_LOGIN_LIMIT_H
#define OPSC_LOGIN_LIMIT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Failed-login limits (issue 4, item 3): failures are counted per key (a
 * client address, or a lower-cased user name) over a window; once a key
 * reaches its limit it is refused until the window has passed since that
 * last failure. Memory is fixed at creation: the table holds `slots` keys,
 * and when a probe finds no free slot the key with the oldest activity is
 * forgotten (opsc_login_limit_evicted counts it). Loop thread only.
 */
typedef struct opsc_login_limit_s opsc_login_limit_t;

#define OPSC_LOGIN_KEY_MAX 112 /* longer keys are cut: a user name is at most 100 */

opsc_login_limit_t *opsc_login_limit_create(size_t slots, unsigned max_failures, int64_t window_ms);
void opsc_login_limit_destroy(opsc_login_limit_t *l);
/** 0 when `key` may try now; else the seconds until it may (at least 1). */
int opsc_login_limit_check(opsc_login_limit_t *l, const char *key, int64_t now_ms);
/** Count one failure of `key`. */
void opsc_login_limit_fail(opsc_login_limit_t *l, const char *key, int64_t now_ms);
/** Forget `key` (a user name after a successful login). */
void opsc_login_limit_clear(opsc_login_limit_t *l, const char *key);
uint64_t opsc_login_limit_evicted(const opsc_login_limit_t *l);
/** Keys currently tracked (including ones whose window has passed). */
size_t opsc_login_limit_used(const opsc_login_limit_t *l);

#endif
