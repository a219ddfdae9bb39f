/*
 * Request authentication: bearer tokens checked in memory, in constant time,
 * so the loop never waits and a timing probe learns nothing.
 */
#include "opsc/auth.h"

#include <string.h>
#include <strings.h>

#include "opsc/alert.h"
#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/tokens.h"
#include "opsc/users.h"

struct opsc_auth_s {
    char *admin_token; /* NULL: none */
    size_t admin_len;
    opsc_tokens_t *tokens;
    opsc_users_t *users;
};

void opsc_auth_set_users(opsc_auth_t *a, opsc_users_t *users) {
    a->users = users;
}

void opsc_auth_set_tokens(opsc_auth_t *a, opsc_tokens_t *tokens) {
    a->tokens = tokens;
}

int opsc_auth_create(const char *admin_token, opsc_auth_t **out) {
    opsc_auth_t *a = opsc_calloc(1, sizeof(*a));
    if (!a) {
        return OPSC_ENOMEM;
    }
    if (admin_token && admin_token[0]) {
        a->admin_token = opsc_strdup(admin_token);
        if (!a->admin_token) {
            opsc_free(a);
            return OPSC_ENOMEM;
        }
        a->admin_len = strlen(admin_token);
    }
    *out = a;
    return 0;
}

void opsc_auth_destroy(opsc_auth_t *a) {
    if (!a) {
        return;
    }
    if (a->admin_token) {
        memset(a->admin_token, 0, a->admin_len);
        opsc_free(a->admin_token);
    }
    opsc_free(a);
}

const char *opsc_auth_bearer(const char *authorization, size_t *len) {
    if (!authorization || strncasecmp(authorization, "Bearer", 6) != 0 ||
        (authorization[6] != ' ' && authorization[6] != '\t')) {
        return NULL;
    }
    const char *t = authorization + 6;
    while (*t == ' ' || *t == '\t') {
        t++;
    }
    size_t n = strlen(t);
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t')) {
        n--;
    }
    if (n == 0) {
        return NULL;
    }
    *len = n;
    return t;
}

int opsc_auth_equal(const void *a, size_t alen, const void *b, size_t blen) {
    const unsigned char *x = a, *y = b;
    size_t n = alen > blen ? alen : blen;
    unsigned diff = alen != blen;
    for (size_t i = 0; i < n; i++) {
        /* index within each, so the loop's length is max(alen, blen) whatever the content */
        unsigned cx = i < alen ? x[i] : 0, cy = i < blen ? y[i] : 0;
        diff |= cx ^ cy;
    }
    return diff == 0;
}

const char *opsc_auth_query_token(const char *query, size_t *len) {
    const char *p = query;
    while (p && *p) {
        size_t n = strcspn(p, "&");
        if (n > 13 && strncmp(p, "access_token=", 13) == 0) {
            *len = n - 13; /* tokens are URL-safe: taken as they are, not percent-decoded */
            return p + 13;
        }
        p += n + (p[n] == '&');
    }
    return NULL;
}

int opsc_auth_http(void *arg, opsc_http_conn_t *c, const opsc_http_req_t *req,
                   opsc_principal_t *out) {
    (void)c;
    opsc_auth_t *a = arg;
    size_t len = 0;
    const char *authz = opsc_http_req_header(req, "Authorization");
    const char *tok = opsc_auth_bearer(authz, &len);
    if (!tok && !authz && strcmp(opsc_http_req_path(req), "/api/v1/stream") == 0) {
        /* Browsers cannot set headers on a WebSocket: the feed also takes ?access_token=. */
        tok = opsc_auth_query_token(opsc_http_req_query(req), &len);
    }
    if (!tok) {
        /* A console request: its session cookie, unless it sent other credentials. */
        return authz ? 401
                     : opsc_users_check_session(a->users, opsc_http_req_header(req, "Cookie"),
                                                opsc_now_us(), out);
    }
    if (!a->admin_token || !opsc_auth_equal(tok, len, a->admin_token, a->admin_len)) {
        return opsc_tokens_check(a->tokens, tok, len, opsc_now_us(), out);
    }
    out->role = OPSC_ROLE_ADMIN;
    strcpy(out->kind, "bootstrap");
    out->id[0] = '\0';
    strcpy(out->name, "admin-token");
    return 0;
}
