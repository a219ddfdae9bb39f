/*
 * The SNMP decoder: one datagram in, one opsc_trap_t (or a reason) out.
 *
 * Per datagram, cheapest check first:
 *   1. size cap, then a strict BER look at the header (snmp_ber.c): version,
 *      community, PDU type, v3 engine ID and user name;
 *   2. v1/v2c: the PDU must be a notification and the community allowed;
 *      v3: (engine ID, user) must be a configured user, or the empty-engine
 *      discovery probe. net-snmp keeps a time record for every engine ID it
 *      meets, before checking the user, and never forgets it: unknown engines
 *      must never reach it;
 *   3. v1/v2c: the fast path (snmp_fast.c), a copy-free decoder of the
 *      canonical encoding; what it declines goes on to net-snmp unchanged;
 *      v3 (and the declined): net-snmp's snmp_parse (authentication,
 *      decryption, PDU);
 *   4. v3: the security level, which net-snmp does not enforce against the
 *      user's configuration;
 *   5. copy what the pipeline needs into the decoder's arena, so the net-snmp
 *      PDU is freed before we return.
 * Answers (INFORM Responses, Reports) are encoded into the caller's buffer;
 * the caller owns the socket and the timing.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snmp_netsnmp.h"

#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/snmp_decode.h"
#include "snmp_int.h"

typedef struct opsc__snmp_user_s {
    unsigned char engine_id[OPSC_SNMP_ENGINE_ID_MAX];
    size_t engine_id_len;
    char name[33];
    size_t name_len;
    int level; /* SNMP_SEC_LEVEL_*: the least a message from this user must have */
    void *usm; /* net-snmp's struct usmUser, owned by its user list */
} opsc__snmp_user_t;

struct opsc_snmp_decoder_s {
    netsnmp_session sess; /* parse/build template; never opened */
    char **communities;
    size_t *community_lens;
    size_t ncommunities;
    opsc__snmp_user_t *users;
    size_t nusers;
    int inform_users; /* users bound to our engine ID: only then is discovery answered */
    unsigned char engine_id[OPSC_SNMP_ENGINE_ID_MAX];
    size_t engine_id_len;
    /* Scratch for the decoded trap: valid until the next decode. */
    opsc__snmp_arena_t arena;
    opsc__snmp_path_t path;
    uint64_t n_fast, n_declined;
    char log_component[32];
    opsc_log_ratelimit_t drop_rl;
    pthread_t owner;
};

static opsc_snmp_decoder_t *opsc__snmp_active;

/* Well-known OIDs (RFC 3416, RFC 3584). */
static const oid opsc__oid_sysuptime[] = {1, 3, 6, 1, 2, 1, 1, 3, 0};
static const oid opsc__oid_trapoid[] = {1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0};
static const oid opsc__oid_trapenterprise[] = {1, 3, 6, 1, 6, 3, 1, 1, 4, 3, 0};
static const oid opsc__oid_trapaddress[] = {1, 3, 6, 1, 6, 3, 18, 1, 3, 0};
static const uint32_t opsc__oid_snmptraps[] = {1, 3, 6, 1, 6, 3, 1, 1, 5};

#define OPSC__OID_IS(vp, o)                                                                        \
    ((vp)->name_length == sizeof(o) / sizeof((o)[0]) && memcmp((vp)->name, (o), sizeof(o)) == 0)

const char *opsc_snmp_reason_name(int reason) {
    switch (reason) {
    case 0:
        return "ok";
#define OPSC__SNMP_REASON_CASE(name, n, label)                                                     \
    case OPSC_SNMP_##name:                                                                         \
        return label;
        OPSC_SNMP_REASON_MAP(OPSC__SNMP_REASON_CASE)
#undef OPSC__SNMP_REASON_CASE
    default:
        return "unknown";
    }
}

static void opsc__hex(const unsigned char *b, size_t n, char *out, size_t outlen);

/* ---- lifecycle ------------------------------------------------------------------------------ */

static int opsc__level_of(const opsc_snmp_v3_user_t *u) {
    if (u->auth == OPSC_SNMP_AUTH_NONE) {
        return SNMP_SEC_LEVEL_NOAUTH;
    }
    return u->priv == OPSC_SNMP_PRIV_NONE ? SNMP_SEC_LEVEL_AUTHNOPRIV : SNMP_SEC_LEVEL_AUTHPRIV;
}

static void opsc__user_label(const opsc_snmp_v3_user_t *u, size_t i, char *out, size_t outlen) {
    snprintf(out, outlen, "user %zu (\"%.32s\")", i + 1, u->name != NULL ? u->name : "");
}

int opsc_snmp_decoder_create(const opsc_snmp_decoder_options_t *o, opsc_snmp_decoder_t **out,
                             char *err, size_t errlen) {
    opsc_snmp_decoder_t *d = NULL;
    int rc = OPSC_ENOMEM;
    char label[64];

    *out = NULL;
    if (opsc__snmp_active != NULL) {
        opsc_errbuf_printf(err, errlen,
                           "snmp: a decoder already exists (net-snmp state is per process)");
        return OPSC_ECONFIG;
    }
    d = opsc_calloc(1, sizeof(*d));
    if (d == NULL) {
        goto nomem;
    }
    d->owner = pthread_self();
    d->drop_rl = (opsc_log_ratelimit_t)OPSC_LOG_RATELIMIT_INIT(10000, 5);
    snprintf(d->log_component, sizeof(d->log_component), "%s",
             o->log_component != NULL ? o->log_component : "snmp");
    if (o->engine_id == NULL || o->engine_id_len < 5 ||
        o->engine_id_len > OPSC_SNMP_ENGINE_ID_MAX) {
        opsc_errbuf_printf(err, errlen, "snmp: the engine ID must have 5 to %d bytes, got %zu",
                           OPSC_SNMP_ENGINE_ID_MAX, o->engine_id != NULL ? o->engine_id_len : 0);
        rc = OPSC_ECONFIG;
        goto error;
    }
    memcpy(d->engine_id, o->engine_id, o->engine_id_len);
    d->engine_id_len = o->engine_id_len;

    /* Communities: copies with their lengths (a community may hold any byte but NUL here). */
    if (o->ncommunities > 0) {
        d->communities = opsc_calloc(o->ncommunities, sizeof(*d->communities));
        d->community_lens = opsc_calloc(o->ncommunities, sizeof(*d->community_lens));
        if (d->communities == NULL || d->community_lens == NULL) {
            goto nomem;
        }
        for (size_t i = 0; i < o->ncommunities; i++) {
            d->communities[i] = opsc_strdup(o->communities[i]);
            if (d->communities[i] == NULL) {
                goto nomem;
            }
            d->community_lens[i] = strlen(o->communities[i]);
            d->ncommunities++;
        }
    }

    rc = opsc_snmp_check_users(o->users, o->nusers, err, errlen);
    if (rc != 0) {
        goto error;
    }
    opsc__snmp_lib_set_log(d->log_component);
    rc = opsc__snmp_lib_init(o->engine_id, o->engine_id_len, o->engine_boots, err, errlen);
    if (rc == 0) {
        rc = opsc__snmp_load_mibs(o->mib_dirs, o->nmib_dirs, d->log_component, err, errlen);
    }
    if (rc != 0) {
        goto error;
    }

    if (o->nusers > 0) {
        d->users = opsc_calloc(o->nusers, sizeof(*d->users));
        if (d->users == NULL) {
            rc = OPSC_ENOMEM;
            goto nomem;
        }
    }
    for (size_t i = 0; i < o->nusers; i++) {
        const opsc_snmp_v3_user_t *cu = &o->users[i];
        opsc__snmp_user_t *u = &d->users[i];
        opsc__user_label(cu, i, label, sizeof(label));
        size_t nlen = cu->name != NULL ? strlen(cu->name) : 0;
        if (nlen == 0 || nlen > 32) {
            opsc_errbuf_printf(err, errlen, "snmp.v3_users: %s: the name must have 1 to 32 bytes",
                               label);
            rc = OPSC_ECONFIG;
            goto error;
        }
        memcpy(u->name, cu->name, nlen + 1);
        u->name_len = nlen;
        if (cu->engine_id.len > 0) {
            memcpy(u->engine_id, cu->engine_id.bytes, cu->engine_id.len);
            u->engine_id_len = cu->engine_id.len;
        } else {
            memcpy(u->engine_id, d->engine_id, d->engine_id_len);
            u->engine_id_len = d->engine_id_len;
        }
        u->level = opsc__level_of(cu);
        if (u->engine_id_len == d->engine_id_len &&
            memcmp(u->engine_id, d->engine_id, d->engine_id_len) == 0) {
            d->inform_users++;
        }
        for (size_t j = 0; j < i; j++) {
            if (d->users[j].name_len == nlen && memcmp(d->users[j].name, u->name, nlen) == 0 &&
                d->users[j].engine_id_len == u->engine_id_len &&
                memcmp(d->users[j].engine_id, u->engine_id, u->engine_id_len) == 0) {
                opsc_errbuf_printf(err, errlen,
                                   "snmp.v3_users: %s: the same name and engine ID as user %zu "
                                   "(a user without engine_id is bound to our engine ID) (%s)",
                                   label, j + 1, cu->src);
                rc = OPSC_ECONFIG;
                goto error;
            }
        }
        rc = opsc__snmp_usm_add(cu, label, u->engine_id, u->engine_id_len, &u->usm, err, errlen);
        if (rc != 0) {
            goto error;
        }
        d->nusers++;
    }

    /* After init_snmp: snmp_sess_init would otherwise initialise net-snmp its own way. */
    snmp_sess_init(&d->sess);
    /* 0 makes discovery probes parse as GETs (no Report); 1 fails every v3 trap. */
    d->sess.isAuthoritative = SNMP_SESS_UNKNOWNAUTH;

    opsc__snmp_active = d;
    *out = d;
    char engine[2 * OPSC_SNMP_ENGINE_ID_MAX + 1];
    opsc__hex(d->engine_id, d->engine_id_len, engine, sizeof(engine));
    opsc_log_info(d->log_component,
                  "SNMP decoder ready: engine ID 0x%s, boots %u, %zu v3 users (%d for INFORMs), %s",
                  engine, o->engine_boots > 0 ? (unsigned)o->engine_boots : 1u, d->nusers,
                  d->inform_users,
                  d->ncommunities > 0 ? "community allow-list" : "any community accepted");
    return 0;

nomem:
    opsc_errbuf_printf(err, errlen, "snmp: out of memory creating the decoder");
    rc = OPSC_ENOMEM;
error:
    if (opsc__snmp_active == NULL) {
        opsc__snmp_lib_set_log(NULL); /* it pointed into d */
    }
    opsc_snmp_decoder_destroy(d);
    return rc;
}

void opsc_snmp_decoder_destroy(opsc_snmp_decoder_t *d) {
    if (d == NULL) {
        return;
    }
    for (size_t i = 0; i < d->nusers; i++) {
        opsc__snmp_usm_remove(d->users[i].usm);
    }
    opsc_free(d->users);
    for (size_t i = 0; i < d->ncommunities; i++) {
        explicit_bzero(d->communities[i], d->community_lens[i]);
        opsc_free(d->communities[i]);
    }
    opsc_free(d->communities);
    opsc_free(d->community_lens);
    opsc__snmp_arena_free(&d->arena);
    if (opsc__snmp_active == d) {
        opsc__snmp_active = NULL;
        opsc__snmp_lib_set_log(NULL);
    }
    opsc_free(d);
}

/* ---- checks before net-snmp ----------------------------------------------------------------- */

/* Equal without an early exit: the time taken says nothing about how much matched. */
static int opsc__same_bytes(const unsigned char *a, size_t alen, const unsigned char *b,
                            size_t blen) {
    if (alen != blen) {
        return 0;
    }
    unsigned char diff = 0;
    for (size_t i = 0; i < alen; i++) {
        diff |= a[i] ^ b[i];
    }
    return diff == 0;
}

static int opsc__community_ok(const opsc_snmp_decoder_t *d, const opsc__snmp_peek_t *pk) {
    if (d->ncommunities == 0) {
        return 1;
    }
    int ok = 0;
    for (size_t i = 0; i < d->ncommunities; i++) {
        ok |= opsc__same_bytes(pk->community, pk->community_len,
                               (const unsigned char *)d->communities[i], d->community_lens[i]);
    }
    return ok;
}

static const opsc__snmp_user_t *opsc__find_user(const opsc_snmp_decoder_t *d,
                                                const unsigned char *engine, size_t engine_len,
                                                const unsigned char *name, size_t name_len) {
    for (size_t i = 0; i < d->nusers; i++) {
        const opsc__snmp_user_t *u = &d->users[i];
        if (u->name_len == name_len && memcmp(u->name, name, name_len) == 0 &&
            u->engine_id_len == engine_len && memcmp(u->engine_id, engine, engine_len) == 0) {
            return u;
        }
    }
    return NULL;
}

static int opsc__user_name_known(const opsc_snmp_decoder_t *d, const unsigned char *name,
                                 size_t name_len) {
    for (size_t i = 0; i < d->nusers; i++) {
        if (d->users[i].name_len == name_len && memcmp(d->users[i].name, name, name_len) == 0) {
            return 1;
        }
    }
    return 0;
}

/*
 * v3 before net-snmp: only configured (engine, user) pairs, and the discovery
 * probe (empty engine ID, reportable) that an INFORM sender starts with.
 */
static int opsc__v3_prefilter(const opsc_snmp_decoder_t *d, const opsc__snmp_peek_t *pk) {
    if (pk->engine_id_len == 0) {
        /* Nobody waits for an answer, or nobody may send INFORMs anyway: no Report. */
        if (!(pk->msg_flags & OPSC__SNMP_FLAG_REPORTABLE) || d->inform_users == 0) {
            return OPSC_SNMP_UNKNOWN_ENGINE;
        }
        if (pk->user_len > 0 && !opsc__user_name_known(d, pk->user, pk->user_len)) {
            return OPSC_SNMP_UNKNOWN_USER;
        }
        return 0;
    }
    if (opsc__find_user(d, pk->engine_id, pk->engine_id_len, pk->user, pk->user_len) != NULL) {
        return 0;
    }
    return opsc__user_name_known(d, pk->user, pk->user_len) ? OPSC_SNMP_UNKNOWN_ENGINE
                                                            : OPSC_SNMP_UNKNOWN_USER;
}

/* ---- logging drops -------------------------------------------------------------------------- */

static void opsc__format_addr(const struct sockaddr *sa, char *out, size_t outlen) {
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa == NULL) {
        snprintf(out, outlen, "?");
    } else if (sa->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof(sin));
        inet_ntop(AF_INET, &sin.sin_addr, host, sizeof(host));
        snprintf(out, outlen, "%s:%u", host, (unsigned)ntohs(sin.sin_port));
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof(sin6));
        inet_ntop(AF_INET6, &sin6.sin6_addr, host, sizeof(host));
        snprintf(out, outlen, "[%s]:%u", host, (unsigned)ntohs(sin6.sin6_port));
    } else {
        snprintf(out, outlen, "?");
    }
}

/* Printable ASCII only: names from the wire go into a log line. */
static void opsc__sanitize(const unsigned char *s, size_t n, char *out, size_t outlen) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < outlen; i++) {
        out[o++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\') ? (char)s[i] : '?';
    }
    out[o] = '\0';
}

static void opsc__hex(const unsigned char *b, size_t n, char *out, size_t outlen) {
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 2 < outlen; i++) {
        out[o++] = digits[b[i] >> 4];
        out[o++] = digits[b[i] & 0xf];
    }
    out[o] = '\0';
}

static int opsc__drop(opsc_snmp_decoder_t *d, int reason, const struct sockaddr *from,
                      const opsc__snmp_peek_t *pk) {
    unsigned long long suppressed = 0;
    char addr[64], who[160] = "";
    if (reason == OPSC_SNMP_DISCOVERY || !opsc_log_enabled(OPSC_LOG_WARN) ||
        !opsc_log_ratelimit_ok(&d->drop_rl, &suppressed)) {
        return reason;
    }
    opsc__format_addr(from, addr, sizeof(addr));
    if (pk != NULL && pk->version == 3 && pk->security_model == 3) {
        char user[40], engine[2 * OPSC_SNMP_ENGINE_ID_MAX + 1];
        opsc__sanitize(pk->user, pk->user_len, user, sizeof(user));
        opsc__hex(pk->engine_id, pk->engine_id_len, engine, sizeof(engine));
        snprintf(who, sizeof(who), " (v3 user \"%s\", engine %s)", user, engine);
    } else if (pk != NULL && pk->version >= 0 && pk->version <= 1) {
        snprintf(who, sizeof(who), " (%s)", pk->version == 0 ? "v1" : "v2c");
    }
    if (suppressed > 0) {
        opsc_log_warn(d->log_component,
                      "dropped an SNMP datagram from %s: %s%s (%llu more dropped before)", addr,
                      opsc_snmp_reason_name(reason), who, suppressed);
    } else {
        opsc_log_warn(d->log_component, "dropped an SNMP datagram from %s: %s%s", addr,
                      opsc_snmp_reason_name(reason), who);
    }
    return reason;
}

/* ---- net-snmp result -> opsc_trap_t ---------------------------------------------------------- */

/* Bump allocation in three regions sized beforehand: varbinds, sub-ids, bytes. */
typedef struct opsc__fill_s {
    opsc_varbind_t *vb;
    uint32_t *ids;
    unsigned char *bytes;
} opsc__fill_t;

static size_t opsc__value_bytes(const netsnmp_variable_list *vp) {
    switch (vp->type) {
    case ASN_OCTET_STR:
    case ASN_IPADDRESS:
    case ASN_OPAQUE:
    case ASN_BIT_STR:
    case ASN_NSAP:
        return vp->val.string != NULL ? vp->val_len : 0;
    default:
        return 0;
    }
}

static size_t opsc__value_ids(const netsnmp_variable_list *vp) {
    return vp->type == ASN_OBJECT_ID && vp->val.objid != NULL ? vp->val_len / sizeof(oid) : 0;
}

/* Copy n sub-ids (net-snmp's oid is an unsigned long) as uint32; -1 if one does not fit. */
static int opsc__copy_ids(opsc__fill_t *f, const oid *src, size_t n, const uint32_t **out,
                          uint32_t *out_len) {
    uint32_t *dst = f->ids;
    for (size_t i = 0; i < n; i++) {
        if (src[i] > UINT32_MAX) {
            return -1;
        }
        dst[i] = (uint32_t)src[i];
    }
    f->ids += n;
    *out = dst;
    *out_len = (uint32_t)n;
    return 0;
}

static const unsigned char *opsc__copy_bytes(opsc__fill_t *f, const void *src, size_t n) {
    unsigned char *dst = f->bytes;
    if (n > 0) {
        memcpy(dst, src, n);
    }
    f->bytes += n;
    return dst;
}

static int opsc__convert_varbind(opsc__fill_t *f, const netsnmp_variable_list *vp,
                                 opsc_varbind_t *vb) {
    memset(vb, 0, sizeof(*vb));
    if (vp->name == NULL ||
        opsc__copy_ids(f, vp->name, vp->name_length, &vb->oid, &vb->oid_len) != 0) {
        return -1;
    }
    /* val is a union: read it as a long only for the integer types, and only if it is one. */
    long iv = 0;
    if ((vp->type == ASN_INTEGER || vp->type == ASN_COUNTER || vp->type == ASN_GAUGE ||
         vp->type == ASN_TIMETICKS || vp->type == ASN_UINTEGER) &&
        vp->val.integer != NULL && vp->val_len >= sizeof(long)) {
        iv = *vp->val.integer;
    }
    switch (vp->type) {
    case ASN_INTEGER:
        vb->type = OPSC_VB_INTEGER;
        vb->i = iv;
        break;
    case ASN_OCTET_STR:
    case ASN_OPAQUE:
    case ASN_IPADDRESS:
        vb->type = vp->type == ASN_OCTET_STR ? OPSC_VB_OCTETS
                   : vp->type == ASN_OPAQUE  ? OPSC_VB_OPAQUE
                                             : OPSC_VB_IPADDR;
        vb->bytes_len = (uint32_t)opsc__value_bytes(vp);
        vb->bytes = opsc__copy_bytes(f, vp->val.string, vb->bytes_len);
        break;
    case ASN_NULL:
        vb->type = OPSC_VB_NULL;
        break;
    case ASN_OBJECT_ID:
        vb->type = OPSC_VB_OID;
        if (opsc__copy_ids(f, vp->val.objid, opsc__value_ids(vp), &vb->oid_value,
                           &vb->oid_value_len) != 0) {
            return -1;
        }
        break;
    case ASN_COUNTER:
    case ASN_GAUGE: /* also ASN_UNSIGNED */
    case ASN_TIMETICKS:
        vb->type = vp->type == ASN_COUNTER ? OPSC_VB_COUNTER32
                   : vp->type == ASN_GAUGE ? OPSC_VB_GAUGE32
                                           : OPSC_VB_TIMETICKS;
        vb->u = (uint32_t)(unsigned long)iv;
        break;
    case ASN_COUNTER64:
        vb->type = OPSC_VB_COUNTER64;
        if (vp->val.counter64 != NULL && vp->val_len >= sizeof(*vp->val.counter64)) {
            vb->u = (uint64_t)(vp->val.counter64->high & 0xffffffffUL) << 32 |
                    (vp->val.counter64->low & 0xffffffffUL);
        }
        break;
    case SNMP_NOSUCHOBJECT:
        vb->type = OPSC_VB_NOSUCHOBJECT;
        break;
    case SNMP_NOSUCHINSTANCE:
        vb->type = OPSC_VB_NOSUCHINSTANCE;
        break;
    case SNMP_ENDOFMIBVIEW:
        vb->type = OPSC_VB_ENDOFMIBVIEW;
        break;
    default:
        /* Obsolete or opaque-wrapped types (UInteger32, NsapAddress, float, ...). */
        vb->type = OPSC_VB_OTHER;
        vb->u = (uint32_t)(unsigned long)iv; /* UInteger32 */
        vb->bytes_len = (uint32_t)opsc__value_bytes(vp);
        vb->bytes = opsc__copy_bytes(f, vp->val.string, vb->bytes_len);
        break;
    }
    return 0;
}

static void opsc__copy_from(opsc_trap_t *out, const struct sockaddr *from) {
    memset(&out->from, 0, sizeof(out->from));
    if (from == NULL) {
        return;
    }
    if (from->sa_family == AF_INET6) {
        memcpy(&out->from, from, sizeof(struct sockaddr_in6));
    } else if (from->sa_family == AF_INET) {
        memcpy(&out->from, from, sizeof(struct sockaddr_in));
    }
}

/* What every decode starts from: the source address, no v1 trap numbers, nothing else. */
static void opsc__reset_out(opsc_trap_t *out, const struct sockaddr *from) {
    memset(out, 0, sizeof(*out));
    opsc__copy_from(out, from);
    out->generic_trap = -1;
    out->specific_trap = -1;
}

static int opsc__fill(opsc_snmp_decoder_t *d, const netsnmp_pdu *pdu, opsc_trap_t *out) {
    size_t nvars = 0, nids = 0, nbytes = 0;
    const netsnmp_variable_list *vp;
    for (vp = pdu->variables; vp != NULL; vp = vp->next_variable) {
        nvars++;
        nids += vp->name_length + opsc__value_ids(vp);
        nbytes += opsc__value_bytes(vp);
    }
    if (pdu->command == SNMP_MSG_TRAP) {
        /* the enterprise, and the trap OID: enterprise.0.specific or snmpTraps.N */
        nids += pdu->enterprise_length +
                (pdu->enterprise_length + 2 > 10 ? pdu->enterprise_length + 2 : 10);
    }
    if (nvars > UINT32_MAX || nids > UINT32_MAX) {
        return OPSC_SNMP_MALFORMED;
    }
    size_t vb_size = nvars * sizeof(opsc_varbind_t);
    size_t ids_off = (vb_size + 7) & ~(size_t)7;
    size_t bytes_off = ids_off + nids * sizeof(uint32_t);
    if (opsc__snmp_arena_reserve(&d->arena, bytes_off + nbytes + 1) != 0) {
        return OPSC_SNMP_INTERNAL;
    }
    opsc__fill_t f;
    f.vb = (opsc_varbind_t *)(void *)d->arena.base;
    f.ids = (uint32_t *)(void *)(d->arena.base + ids_off);
    f.bytes = d->arena.base + bytes_off;

    out->generic_trap = -1;
    out->specific_trap = -1;
    out->request_id = (int32_t)pdu->reqid;
    out->nvarbinds = 0;
    out->varbinds = f.vb;

    if (pdu->command == SNMP_MSG_TRAP) {
        /* RFC 3584 3.1: generic 0..5 -> snmpTraps.(g+1); 6 -> enterprise.0.specific */
        out->pdu = OPSC_PDU_TRAP_V1;
        out->request_id = 0;
        if (pdu->enterprise == NULL || pdu->trap_type < 0 || pdu->trap_type > 6 ||
            pdu->specific_type < 0 || pdu->specific_type > (long)UINT32_MAX) {
            return OPSC_SNMP_MALFORMED;
        }
        if (opsc__copy_ids(&f, pdu->enterprise, pdu->enterprise_length, &out->enterprise,
                           &out->enterprise_len) != 0) {
            return OPSC_SNMP_MALFORMED;
        }
        uint32_t *t = f.ids;
        if (pdu->trap_type == 6) {
            memcpy(t, out->enterprise, out->enterprise_len * sizeof(uint32_t));
            t[out->enterprise_len] = 0;
            t[out->enterprise_len + 1] = (uint32_t)pdu->specific_type;
            out->trap_oid_len = out->enterprise_len + 2;
        } else {
            memcpy(t, opsc__oid_snmptraps, sizeof(opsc__oid_snmptraps));
            t[9] = (uint32_t)pdu->trap_type + 1;
            out->trap_oid_len = 10;
        }
        f.ids += out->trap_oid_len;
        out->trap_oid = t;
        out->generic_trap = (int)pdu->trap_type;
        out->specific_trap = (int)pdu->specific_type;
        out->uptime_ticks = (uint32_t)pdu->time;
        memcpy(out->agent_addr, pdu->agent_addr, 4);
        out->has_agent_addr = 1;
        for (vp = pdu->variables; vp != NULL; vp = vp->next_variable) {
            if (opsc__convert_varbind(&f, vp, &f.vb[out->nvarbinds]) != 0) {
                return OPSC_SNMP_MALFORMED;
            }
            out->nvarbinds++;
        }
        return 0;
    }

    out->pdu = pdu->command == SNMP_MSG_INFORM ? OPSC_PDU_INFORM : OPSC_PDU_TRAP_V2;
    int have_uptime = 0, have_trapoid = 0;
    for (vp = pdu->variables; vp != NULL; vp = vp->next_variable) {
        opsc_varbind_t *vb = &f.vb[out->nvarbinds];
        if (opsc__convert_varbind(&f, vp, vb) != 0) {
            return OPSC_SNMP_MALFORMED;
        }
        /* RFC 3416 puts these two first; accept them anywhere, once, and keep them out. */
        if (!have_uptime && OPSC__OID_IS(vp, opsc__oid_sysuptime) &&
            vb->type == OPSC_VB_TIMETICKS) {
            have_uptime = 1;
            out->uptime_ticks = vb->u;
            continue;
        }
        if (!have_trapoid && OPSC__OID_IS(vp, opsc__oid_trapoid)) {
            if (vb->type != OPSC_VB_OID || vb->oid_value_len == 0) {
                return OPSC_SNMP_MALFORMED;
            }
            have_trapoid = 1;
            out->trap_oid = vb->oid_value;
            out->trap_oid_len = vb->oid_value_len;
            continue;
        }
        if (out->enterprise_len == 0 && OPSC__OID_IS(vp, opsc__oid_trapenterprise) &&
            vb->type == OPSC_VB_OID) {
            out->enterprise = vb->oid_value;
            out->enterprise_len = vb->oid_value_len;
        }
        if (!out->has_agent_addr && OPSC__OID_IS(vp, opsc__oid_trapaddress) &&
            vb->type == OPSC_VB_IPADDR && vb->bytes_len == 4) {
            memcpy(out->agent_addr, vb->bytes, 4);
            out->has_agent_addr = 1;
        }
        out->nvarbinds++;
    }
    if (!have_trapoid) {
        return OPSC_SNMP_MALFORMED; /* a notification without snmpTrapOID.0 says nothing */
    }
    return 0;
}

/* ---- decode --------------------------------------------------------------------------------- */

/* net-snmp's parse failure -> our reason; *report says whether a Report answers it. */
static int opsc__map_parse_error(int snmp_err, const opsc__snmp_peek_t *pk, int *report_err) {
    *report_err = 0;
    switch (snmp_err) {
    case SNMPERR_USM_AUTHENTICATIONFAILURE:
        *report_err = snmp_err;
        return OPSC_SNMP_BAD_AUTH;
    case SNMPERR_USM_UNKNOWNENGINEID:
        *report_err = snmp_err;
        return pk->engine_id_len == 0 ? OPSC_SNMP_DISCOVERY : OPSC_SNMP_UNKNOWN_ENGINE;
    case SNMPERR_USM_UNKNOWNSECURITYNAME:
        *report_err = snmp_err;
        return OPSC_SNMP_UNKNOWN_USER;
    case SNMPERR_USM_UNSUPPORTEDSECURITYLEVEL:
        *report_err = snmp_err;
        return OPSC_SNMP_WRONG_SECURITY_LEVEL;
    case SNMPERR_USM_NOTINTIMEWINDOW:
        *report_err = snmp_err;
        return OPSC_SNMP_NOT_IN_TIME_WINDOW;
    case SNMPERR_USM_DECRYPTIONERROR:
        *report_err = snmp_err;
        return OPSC_SNMP_BAD_PRIV;
    case SNMPERR_ASN_PARSE_ERR:
        /*
         * authPriv, and the header was well-formed (our walk checked it), so the digest over
         * the whole message was verified before decryption: the ciphertext is the sender's
         * and only the plaintext fails to parse. AES-CFB has no integrity check of its own,
         * so a wrong priv passphrase ends exactly here.
         */
        if (pk->version == 3 && (pk->msg_flags & OPSC__SNMP_FLAG_PRIV)) {
            *report_err = SNMPERR_USM_DECRYPTIONERROR;
            return OPSC_SNMP_BAD_PRIV;
        }
        return OPSC_SNMP_MALFORMED;
    case SNMPERR_BAD_VERSION:
        return OPSC_SNMP_UNSUPPORTED_VERSION;
    default:
        return OPSC_SNMP_MALFORMED;
    }
}

static int opsc__wants_report(const netsnmp_pdu *pdu, const opsc__snmp_peek_t *pk) {
    return pk->version == 3 &&
           ((pk->msg_flags & OPSC__SNMP_FLAG_REPORTABLE) || SNMP_CMD_CONFIRMED(pdu->command));
}

int opsc_snmp_decode(opsc_snmp_decoder_t *d, unsigned char *buf, size_t len,
                     const struct sockaddr *from, opsc_trap_t *out, opsc_buf_t *reply) {
    opsc__snmp_peek_t pk;
    netsnmp_pdu *pdu = NULL;
    int rc;

    if (reply != NULL) {
        opsc_buf_reset(reply);
    }
    opsc__reset_out(out, from);
    if (!pthread_equal(d->owner, pthread_self())) {
        opsc_log_err(d->log_component, "opsc_snmp_decode called off the decoder's thread");
        return OPSC_SNMP_INTERNAL;
    }
    if (len > OPSC_SNMP_DATAGRAM_MAX) {
        return opsc__drop(d, OPSC_SNMP_TOO_BIG, from, NULL);
    }

    rc = opsc__snmp_peek(buf, len, &pk);
    if (rc != 0) {
        return opsc__drop(d, rc, from, &pk);
    }
    if (pk.version == 0 || pk.version == 1) {
        int want = pk.version == 0 ? (pk.pdu_tag == OPSC__SNMP_TAG_TRAP_V1)
                                   : (pk.pdu_tag == OPSC__SNMP_TAG_TRAP_V2 ||
                                      pk.pdu_tag == OPSC__SNMP_TAG_INFORM);
        if (!want) {
            return opsc__drop(d, OPSC_SNMP_UNSUPPORTED_PDU, from, &pk);
        }
        if (!opsc__community_ok(d, &pk)) {
            return opsc__drop(d, OPSC_SNMP_BAD_COMMUNITY, from, &pk);
        }
        if (d->path == OPSC__SNMP_PATH_AUTO) {
            rc = opsc__snmp_fast_decode(&d->arena, buf, len, &pk, out, reply);
            if (rc != OPSC__SNMP_DECLINED) {
                d->n_fast++;
                if (rc != 0) {
                    out->nvarbinds = 0;
                    out->varbinds = NULL;
                    return opsc__drop(d, rc, from, &pk);
                }
                return 0;
            }
            /* Not canonical, or a type it leaves to net-snmp: start again from a clean slate. */
            d->n_declined++;
            opsc__reset_out(out, from);
            if (reply != NULL) {
                opsc_buf_reset(reply);
            }
        }
    } else {
        rc = opsc__v3_prefilter(d, &pk);
        if (rc != 0) {
            return opsc__drop(d, rc, from, &pk);
        }
        /* A plaintext PDU that is not a notification (the discovery probe is a GET). */
        if (pk.engine_id_len > 0 && pk.pdu_tag >= 0 && pk.pdu_tag != OPSC__SNMP_TAG_TRAP_V2 &&
            pk.pdu_tag != OPSC__SNMP_TAG_INFORM) {
            return opsc__drop(d, OPSC_SNMP_UNSUPPORTED_PDU, from, &pk);
        }
    }

    /* calloc, not opsc_calloc: snmp_free_pdu releases it with free(). */
    pdu = calloc(1, sizeof(*pdu));
    if (pdu == NULL) {
        return opsc__drop(d, OPSC_SNMP_INTERNAL, from, &pk);
    }
    int perr = snmp_parse(NULL, &d->sess, pdu, buf, len);
    if (perr != SNMPERR_SUCCESS) {
        int report_err;
        rc = opsc__map_parse_error(perr, &pk, &report_err);
        if (report_err != 0 && reply != NULL && opsc__wants_report(pdu, &pk)) {
            (void)opsc__snmp_report(&d->sess, pdu, report_err, reply);
        }
        goto done;
    }

    /* What net-snmp decoded must agree with what the header said. */
    if (pdu->version != pk.version) {
        rc = OPSC_SNMP_MALFORMED;
        goto done;
    }
    if (!(pdu->command == SNMP_MSG_TRAP && pk.version == 0) &&
        !((pdu->command == SNMP_MSG_TRAP2 || pdu->command == SNMP_MSG_INFORM) && pk.version != 0)) {
        rc = OPSC_SNMP_UNSUPPORTED_PDU;
        goto done;
    }

    if (pk.version == 3) {
        const opsc__snmp_user_t *u =
            opsc__find_user(d, pdu->securityEngineID, pdu->securityEngineIDLen,
                            (const unsigned char *)pdu->securityName, pdu->securityNameLen);
        if (u == NULL) {
            rc = OPSC_SNMP_UNKNOWN_USER;
            goto done;
        }
        /* net-snmp accepts any level the user's keys allow; the configured one is the floor. */
        if (pdu->securityLevel < u->level) {
            rc = OPSC_SNMP_WRONG_SECURITY_LEVEL;
            if (reply != NULL && opsc__wants_report(pdu, &pk)) {
                (void)opsc__snmp_report(&d->sess, pdu, SNMPERR_USM_UNSUPPORTEDSECURITYLEVEL, reply);
            }
            goto done;
        }
        size_t n = pdu->securityNameLen < sizeof(out->user) - 1 ? pdu->securityNameLen
                                                                : sizeof(out->user) - 1;
        memcpy(out->user, pdu->securityName, n);
        out->user[n] = '\0';
        opsc__hex(pdu->securityEngineID, pdu->securityEngineIDLen, out->engine_id_hex,
                  sizeof(out->engine_id_hex));
        out->security_level = pdu->securityLevel;
    } else {
        size_t n = pdu->community_len < sizeof(out->community) - 1 ? pdu->community_len
                                                                   : sizeof(out->community) - 1;
        if (n > 0 && pdu->community != NULL) {
            memcpy(out->community, pdu->community, n);
        }
        out->community[n] = '\0';
    }
    out->version = pk.version;

    rc = opsc__fill(d, pdu, out);
    if (rc != 0) {
        goto done;
    }
    if (out->pdu == OPSC_PDU_INFORM && reply != NULL &&
        opsc__snmp_inform_response(&d->sess, pdu, reply) != 0) {
        rc = OPSC_SNMP_INTERNAL;
        opsc_buf_reset(reply);
        goto done;
    }

done:
    snmp_free_pdu(pdu);
    if (rc != 0) {
        out->nvarbinds = 0;
        out->varbinds = NULL;
        return opsc__drop(d, rc, from, &pk);
    }
    return 0;
}

void opsc__snmp_set_path(opsc_snmp_decoder_t *d, opsc__snmp_path_t path) {
    d->path = path;
}

void opsc__snmp_path_stats(const opsc_snmp_decoder_t *d, uint64_t *fast, uint64_t *declined) {
    *fast = d->n_fast;
    *declined = d->n_declined;
}

int opsc__snmp_raw_parse(opsc_snmp_decoder_t *d, unsigned char *buf, size_t len) {
    netsnmp_pdu *pdu = calloc(1, sizeof(*pdu));
    if (pdu == NULL) {
        return OPSC_SNMP_INTERNAL;
    }
    int rc = snmp_parse(NULL, &d->sess, pdu, buf, len);
    snmp_free_pdu(pdu);
    return rc;
}
