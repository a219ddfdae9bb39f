/*
 * Failed-login counters in a fixed open-addressing table. The hash is seeded
 * per process, so a client cannot choose names that pile into one probe run
 * without seeing our seed; and a probe run is short (PROBE slots), so the
 * worst case stays cheap even then.
 */
#include "opsc/login_limit.h"

#include <string.h>

#include "opsc/buf.h"
#include "opsc/passwd.h"

#define PROBE 8

typedef struct entry_s {
    char key[OPSC_LOGIN_KEY_MAX];
    unsigned failures;
    int64_t last_ms;          /* last failure: the window counts from it */
    int64_t blocked_until_ms; /* 0: not blocked */
} entry_t;

struct opsc_login_limit_s {
    entry_t *e;
    size_t slots;
    size_t used;
    unsigned max_failures;
    int64_t window_ms;
    uint64_t seed;
    uint64_t evicted;
};

static uint64_t hash(const opsc_login_limit_t *l, const char *k) {
    uint64_t h = 1469598103934665603u ^ l->seed; /* FNV-1a, seeded */
    for (; *k; k++) {
        h ^= (unsigned char)*k;
        h *= 1099511628211u;
    }
    return h ^ (h >> 29);
}

static int expired(const opsc_login_limit_t *l, const entry_t *x, int64_t now_ms) {
    return x->key[0] && now_ms - x->last_ms >= l->window_ms && x->blocked_until_ms <= now_ms;
}

/* The entry of key; with `make`, a free, stale or the least recently active one in its run. */
static entry_t *find(opsc_login_limit_t *l, const char *key, int64_t now_ms, int make) {
    char k[OPSC_LOGIN_KEY_MAX];
    size_t n = strnlen(key, sizeof(k) - 1);
    memcpy(k, key, n);
    k[n] = '\0';
    size_t i0 = (size_t)(hash(l, k) % l->slots);
    entry_t *victim = NULL;
    for (size_t p = 0; p < PROBE && p < l->slots; p++) {
        entry_t *x = &l->e[(i0 + p) % l->slots];
        if (x->key[0] && strcmp(x->key, k) == 0) {
            return x;
        }
        if (!x->key[0]) {
            if (!victim || victim->key[0]) {
                victim = x; /* a free slot beats any taken one */
            }
        } else if (!victim || (victim->key[0] && x->last_ms < victim->last_ms)) {
            victim = x;
        }
    }
    if (!make) {
        return NULL;
    }
    if (victim->key[0]) {
        if (!expired(l, victim, now_ms)) {
            l->evicted++;
        }
    } else {
        l->used++;
    }
    memset(victim, 0, sizeof(*victim));
    memcpy(victim->key, k, n + 1);
    return victim;
}

opsc_login_limit_t *opsc_login_limit_create(size_t slots, unsigned max_failures,
                                            int64_t window_ms) {
    opsc_login_limit_t *l = opsc_calloc(1, sizeof(*l));
    if (!l || slots == 0 || !(l->e = opsc_calloc(slots, sizeof(*l->e)))) {
        opsc_free(l);
        return NULL;
    }
    l->slots = slots;
    l->max_failures = max_failures ? max_failures : 1;
    l->window_ms = window_ms;
    if (opsc_random_bytes(&l->seed, sizeof(l->seed)) != 0) {
        l->seed = (uint64_t)(uintptr_t)l; /* still differs between runs with ASLR */
    }
    return l;
}

void opsc_login_limit_destroy(opsc_login_limit_t *l) {
    if (l) {
        opsc_free(l->e);
        opsc_free(l);
    }
}

int opsc_login_limit_check(opsc_login_limit_t *l, const char *key, int64_t now_ms) {
    const entry_t *x = find(l, key, now_ms, 0);
    if (!x || x->blocked_until_ms <= now_ms) {
        return 0;
    }
    int64_t s = (x->blocked_until_ms - now_ms + 999) / 1000;
    return s < 1 ? 1 : (int)s;
}

void opsc_login_limit_fail(opsc_login_limit_t *l, const char *key, int64_t now_ms) {
    entry_t *x = find(l, key, now_ms, 1);
    if (expired(l, x, now_ms)) {
        x->failures = 0;
        x->blocked_until_ms = 0;
    }
    x->failures++;
    x->last_ms = now_ms;
    if (x->failures >= l->max_failures) {
        x->blocked_until_ms = now_ms + l->window_ms;
    }
}

void opsc_login_limit_clear(opsc_login_limit_t *l, const char *key) {
    entry_t *x = find(l, key, 0, 0);
    if (x) {
        memset(x, 0, sizeof(*x));
        l->used--;
    }
}

uint64_t opsc_login_limit_evicted(const opsc_login_limit_t *l) {
    return l->evicted;
}

size_t opsc_login_limit_used(const opsc_login_limit_t *l) {
    return l->used;
}
