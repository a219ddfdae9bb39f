/*
 * net-snmp as a library on our own socket: the one-time set-up, USM users
 * created in code, and the two kinds of answer we build (Reports and INFORM
 * Responses). The order of calls follows what was verified on net-snmp 5.9.3
 * (shared notes "net-snmp on our own socket"); the comments say why each step
 * is there.
 *
 * Everything here touches process-wide net-snmp state: one thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "snmp_netsnmp.h"

#include "opsc/error.h"
#include "opsc/log.h"
#include "snmp_int.h"

static int opsc__lib_inited;
static unsigned char opsc__lib_engine[OPSC_SNMP_ENGINE_ID_MAX];
static size_t opsc__lib_engine_len;
static const char *opsc__lib_log_component;
/*
 * init_snmp loads net-snmp's default MIB list; on a stock Debian machine most of those files
 * are missing and it says so. We decode without MIBs, so that is debug, not a warning.
 */
static int opsc__lib_initializing;
/* USM logs every failed authentication: hostile traffic must not flood our log. */
static opsc_log_ratelimit_t opsc__lib_log_rl = OPSC_LOG_RATELIMIT_INIT(10000, 5);

/* net-snmp's log lines into ours: rate-limited, never above warn (they are caused by input). */
static int opsc__lib_log_handler(netsnmp_log_handler *h, int pri, const char *str) {
    unsigned long long suppressed = 0;
    opsc_log_level_t level;
    (void)h;
    if (opsc__lib_log_component == NULL || str == NULL) {
        return 1;
    }
    if (opsc__lib_initializing) {
        level = OPSC_LOG_DEBUG;
    } else if (pri <= LOG_WARNING) {
        level = OPSC_LOG_WARN;
    } else if (pri <= LOG_INFO) {
        level = OPSC_LOG_INFO;
    } else {
        level = OPSC_LOG_DEBUG;
    }
    size_t n = strlen(str);
    while (n > 0 && (str[n - 1] == '\n' || str[n - 1] == '\r' || str[n - 1] == ' ')) {
        n--;
    }
    if (n == 0 || !opsc_log_enabled(level) ||
        !opsc_log_ratelimit_ok(&opsc__lib_log_rl, &suppressed)) {
        return 1;
    }
    if (n > 300) {
        n = 300;
    }
    if (suppressed > 0) {
        opsc_log_write(level, opsc__lib_log_component,
                       "net-snmp: %.*s (%llu earlier lines suppressed)", (int)n, str, suppressed);
    } else {
        opsc_log_write(level, opsc__lib_log_component, "net-snmp: %.*s", (int)n, str);
    }
    return 1;
}

void opsc__snmp_lib_set_log(const char *component) {
    opsc__lib_log_component = component;
}

int opsc__snmp_lib_init(const unsigned char *engine_id, size_t engine_id_len, uint32_t boots,
                        char *err, size_t errlen) {
    char text[24];
    if (engine_id == NULL || engine_id_len < 5 || engine_id_len > OPSC_SNMP_ENGINE_ID_MAX) {
        opsc_errbuf_printf(err, errlen, "snmp: the engine ID must have 5 to %d bytes, got %zu",
                           OPSC_SNMP_ENGINE_ID_MAX, engine_id_len);
        return OPSC_ECONFIG;
    }
    if (boots == 0) {
        boots = 1;
    }
    if (boots > INT32_MAX) {
        boots = INT32_MAX;
    }
    if (!opsc__lib_inited) {
        /* Before init_snmp, so that its own messages (MIB loading) come to us too. */
        netsnmp_log_handler *lh =
            netsnmp_register_loghandler(NETSNMP_LOGHANDLER_CALLBACK, LOG_DEBUG);
        if (lh == NULL) {
            opsc_errbuf_printf(err, errlen, "snmp: cannot install the net-snmp log handler");
            return OPSC_ENOMEM;
        }
        lh->handler = opsc__lib_log_handler;
        /* No files: no /etc/snmp, no /var/lib/snmp, no engineBoots or users written on exit. */
        netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
        netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_PERSIST_STATE, 1);
        netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
        netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
        /* Before init_snmp: it records our engine as known, which INFORMs to us need. */
        if (set_exact_engineID(engine_id, engine_id_len) != SNMPERR_SUCCESS) {
            opsc_errbuf_printf(err, errlen, "snmp: net-snmp refused the engine ID");
            return OPSC_ECONFIG;
        }
        opsc__lib_initializing = 1;
        init_snmp("opsconductor");
        opsc__lib_initializing = 0;
        memcpy(opsc__lib_engine, engine_id, engine_id_len);
        opsc__lib_engine_len = engine_id_len;
        opsc__lib_inited = 1;
    } else if (engine_id_len != opsc__lib_engine_len ||
               memcmp(engine_id, opsc__lib_engine, engine_id_len) != 0) {
        opsc_errbuf_printf(err, errlen,
                           "snmp: the engine ID cannot change while the process runs "
                           "(net-snmp keeps one per process); restart to change snmp.engine_id");
        return OPSC_ECONFIG;
    }
    /*
     * init_snmp starts boots at 1; engineBoots_conf stores its argument + 1 (it reads the
     * previous run's value). Then refresh our engine's time record, which Reports and
     * Responses take boots/time from.
     */
    snprintf(text, sizeof(text), "%lu", (unsigned long)boots - 1);
    engineBoots_conf("engineBoots", text);
    if (snmpv3_local_snmpEngineBoots() != boots ||
        set_enginetime(engine_id, (u_int)engine_id_len, snmpv3_local_snmpEngineBoots(),
                       snmpv3_local_snmpEngineTime(), TRUE) != SNMPERR_SUCCESS) {
        opsc_errbuf_printf(err, errlen, "snmp: cannot set the engine boots/time in net-snmp");
        return OPSC_ECONFIG;
    }
    return 0;
}

static int opsc__auth_type(opsc_snmp_auth_t a) {
    switch (a) {
    case OPSC_SNMP_AUTH_NONE:
        return NETSNMP_USMAUTH_NOAUTH;
    case OPSC_SNMP_AUTH_MD5:
        return NETSNMP_USMAUTH_HMACMD5;
    case OPSC_SNMP_AUTH_SHA:
        return NETSNMP_USMAUTH_HMACSHA1;
    case OPSC_SNMP_AUTH_SHA224:
        return NETSNMP_USMAUTH_HMAC128SHA224;
    case OPSC_SNMP_AUTH_SHA256:
        return NETSNMP_USMAUTH_HMAC192SHA256;
    case OPSC_SNMP_AUTH_SHA384:
        return NETSNMP_USMAUTH_HMAC256SHA384;
    case OPSC_SNMP_AUTH_SHA512:
        return NETSNMP_USMAUTH_HMAC384SHA512;
    }
    return -1;
}

static int opsc__priv_type(opsc_snmp_priv_t p) {
    switch (p) {
    case OPSC_SNMP_PRIV_NONE:
        return USM_CREATE_USER_PRIV_NONE;
    case OPSC_SNMP_PRIV_DES:
        return USM_CREATE_USER_PRIV_DES;
    case OPSC_SNMP_PRIV_AES128:
        return USM_CREATE_USER_PRIV_AES;
    case OPSC_SNMP_PRIV_AES192:
        return USM_CREATE_USER_PRIV_AES192;
    case OPSC_SNMP_PRIV_AES256:
        return USM_CREATE_USER_PRIV_AES256;
    }
    return -1;
}

int opsc_snmp_check_users(const opsc_snmp_v3_user_t *users, size_t nusers, char *err,
                          size_t errlen) {
    for (size_t i = 0; i < nusers; i++) {
        const opsc_snmp_v3_user_t *u = &users[i];
        const char *where = u->src[0] != '\0' ? u->src : "snmp.v3_users";
        size_t oid_len = 0;
        int at = opsc__auth_type(u->auth);
        int pt = opsc__priv_type(u->priv);
        /* Static tables in net-snmp: no initialisation needed, nothing changed. */
        if (u->auth != OPSC_SNMP_AUTH_NONE && (at < 0 || sc_get_auth_oid(at, &oid_len) == NULL ||
                                               sc_get_proper_auth_length_bytype(at) <= 0)) {
            opsc_errbuf_printf(err, errlen,
                               "snmp.v3_users: user %zu (\"%.32s\"): auth_protocol %s is not "
                               "supported by this net-snmp build (%s)",
                               i + 1, u->name != NULL ? u->name : "", opsc_snmp_auth_name(u->auth),
                               where);
            return OPSC_ECONFIG;
        }
        if (u->priv != OPSC_SNMP_PRIV_NONE &&
            (pt < 0 || sc_get_priv_alg_bytype((u_int)pt) == NULL)) {
            opsc_errbuf_printf(err, errlen,
                               "snmp.v3_users: user %zu (\"%.32s\"): priv_protocol %s is not "
                               "supported by this net-snmp build (%s)",
                               i + 1, u->name != NULL ? u->name : "", opsc_snmp_priv_name(u->priv),
                               where);
            return OPSC_ECONFIG;
        }
    }
    return 0;
}

/* Replace a net-snmp-allocated OID with a copy of `src`. */
static int opsc__set_oid(oid **dst, size_t *dst_len, const oid *src, size_t len) {
    oid *copy = snmp_duplicate_objid(src, len);
    if (copy == NULL) {
        return -1;
    }
    free(*dst);
    *dst = copy;
    *dst_len = len;
    return 0;
}

int opsc__snmp_usm_add(const opsc_snmp_v3_user_t *cfg, const char *label,
                       const unsigned char *engine_id, size_t engine_id_len, void **handle,
                       char *err, size_t errlen) {
    struct usmUser *u = NULL;
    u_char ku[SNMP_MAXBUF_SMALL];
    size_t ku_len;
    int rc = OPSC_ECONFIG;
    const char *where = cfg->src[0] != '\0' ? cfg->src : "snmp.v3_users";

    *handle = NULL;
    u = usm_create_user();
    if (u == NULL) {
        rc = OPSC_ENOMEM;
        goto nomem;
    }
    u->engineID = malloc(engine_id_len);
    u->name = strdup(cfg->name);
    u->secName = strdup(cfg->name);
    if (u->engineID == NULL || u->name == NULL || u->secName == NULL) {
        rc = OPSC_ENOMEM;
        goto nomem;
    }
    memcpy(u->engineID, engine_id, engine_id_len);
    u->engineIDLen = engine_id_len;

    if (cfg->auth != OPSC_SNMP_AUTH_NONE) {
        int at = opsc__auth_type(cfg->auth);
        size_t oid_len = 0;
        const oid *aoid = at >= 0 ? sc_get_auth_oid(at, &oid_len) : NULL;
        int proper = at >= 0 ? sc_get_proper_auth_length_bytype(at) : -1;
        if (aoid == NULL || proper <= 0) {
            opsc_errbuf_printf(err, errlen,
                               "snmp.v3_users: %s: auth_protocol %s is not supported by this "
                               "net-snmp build (%s)",
                               label, opsc_snmp_auth_name(cfg->auth), where);
            goto error;
        }
        if (opsc__set_oid(&u->authProtocol, &u->authProtocolLen, aoid, oid_len) != 0) {
            rc = OPSC_ENOMEM;
            goto nomem;
        }
        ku_len = sizeof(ku);
        if (generate_Ku(u->authProtocol, (u_int)u->authProtocolLen,
                        (const u_char *)cfg->auth_passphrase, strlen(cfg->auth_passphrase), ku,
                        &ku_len) != SNMPERR_SUCCESS) {
            opsc_errbuf_printf(err, errlen,
                               "snmp.v3_users: %s: cannot derive the authentication key (%s)",
                               label, where);
            goto error;
        }
        u->authKey = malloc((size_t)proper);
        if (u->authKey == NULL) {
            rc = OPSC_ENOMEM;
            goto nomem;
        }
        u->authKeyLen = (size_t)proper;
        if (generate_kul(u->authProtocol, (u_int)u->authProtocolLen, u->engineID, u->engineIDLen,
                         ku, ku_len, u->authKey, &u->authKeyLen) != SNMPERR_SUCCESS) {
            opsc_errbuf_printf(err, errlen,
                               "snmp.v3_users: %s: cannot localize the authentication key (%s)",
                               label, where);
            goto error;
        }

        if (cfg->priv != OPSC_SNMP_PRIV_NONE) {
            int pt = opsc__priv_type(cfg->priv);
            const netsnmp_priv_alg_info *pai = pt >= 0 ? sc_get_priv_alg_bytype((u_int)pt) : NULL;
            if (pai == NULL) {
                opsc_errbuf_printf(err, errlen,
                                   "snmp.v3_users: %s: priv_protocol %s is not supported by this "
                                   "net-snmp build (%s)",
                                   label, opsc_snmp_priv_name(cfg->priv), where);
                goto error;
            }
            if (opsc__set_oid(&u->privProtocol, &u->privProtocolLen, pai->alg_oid,
                              (size_t)pai->oid_len) != 0) {
                rc = OPSC_ENOMEM;
                goto nomem;
            }
            size_t proper_priv = (size_t)pai->proper_length;
            if (pai->type == USM_CREATE_USER_PRIV_DES) {
                proper_priv *= 2; /* net-snmp keeps the DES pre-IV after the key */
            }
            /* The priv key comes from the priv passphrase through the AUTH hash (RFC 3826). */
            ku_len = sizeof(ku);
            if (generate_Ku(u->authProtocol, (u_int)u->authProtocolLen,
                            (const u_char *)cfg->priv_passphrase, strlen(cfg->priv_passphrase), ku,
                            &ku_len) != SNMPERR_SUCCESS) {
                opsc_errbuf_printf(err, errlen,
                                   "snmp.v3_users: %s: cannot derive the privacy key (%s)", label,
                                   where);
                goto error;
            }
            size_t size = proper_priv > (size_t)proper ? proper_priv : (size_t)proper;
            u->privKey = malloc(size);
            if (u->privKey == NULL) {
                rc = OPSC_ENOMEM;
                goto nomem;
            }
            u->privKeyLen = size;
            if (generate_kul(u->authProtocol, (u_int)u->authProtocolLen, u->engineID,
                             u->engineIDLen, ku, ku_len, u->privKey,
                             &u->privKeyLen) != SNMPERR_SUCCESS) {
                opsc_errbuf_printf(err, errlen,
                                   "snmp.v3_users: %s: cannot localize the privacy key (%s)", label,
                                   where);
                goto error;
            }
            /* SHA-1 (20 bytes) is too short for AES-192/256: Blumenthal key extension. */
            if (u->privKeyLen < proper_priv &&
                usm_extend_user_kul(u, (u_int)size) != SNMPERR_SUCCESS) {
                opsc_errbuf_printf(err, errlen,
                                   "snmp.v3_users: %s: cannot extend the privacy key to %zu "
                                   "bytes for %s (%s)",
                                   label, proper_priv, opsc_snmp_priv_name(cfg->priv), where);
                goto error;
            }
            if (u->privKeyLen < proper_priv) {
                opsc_errbuf_printf(err, errlen,
                                   "snmp.v3_users: %s: the privacy key is too short for %s (%s)",
                                   label, opsc_snmp_priv_name(cfg->priv), where);
                goto error;
            }
            u->privKeyLen = proper_priv;
        }
    }
    explicit_bzero(ku, sizeof(ku));
    u->userStatus = RS_ACTIVE;
    u->userStorageType = ST_READONLY;
    usm_add_user(u); /* takes ownership */
    *handle = u;
    return 0;

nomem:
    opsc_errbuf_printf(err, errlen, "snmp.v3_users: %s: out of memory", label);
error:
    explicit_bzero(ku, sizeof(ku));
    if (u != NULL) {
        usm_free_user(u);
    }
    return rc;
}

void opsc__snmp_usm_remove(void *handle) {
    struct usmUser *u = handle;
    if (u == NULL) {
        return;
    }
    usm_remove_user(u);
    usm_free_user(u);
}

int opsc__snmp_build(struct snmp_session *sess, struct snmp_pdu *pdu, opsc_buf_t *reply) {
    /* snmp_build encodes backwards from the end of the buffer and may realloc it. */
    size_t cap = 1500;
    size_t offset = 0;
    u_char *pkt = malloc(cap);
    int rc = OPSC_SNMP_INTERNAL;
    if (pkt == NULL) {
        return rc;
    }
    if (snmp_build(&pkt, &cap, &offset, sess, pdu) == SNMPERR_SUCCESS && offset > 0 &&
        offset <= cap) {
        opsc_buf_reset(reply);
        if (opsc_buf_append(reply, pkt + cap - offset, offset) == 0) {
            rc = 0;
        }
    }
    free(pkt);
    return rc;
}

int opsc__snmp_report(struct snmp_session *sess, struct snmp_pdu *pdu, int snmp_err,
                      opsc_buf_t *reply) {
    /*
     * As net-snmp's usm_handle_report: drop the incoming message's security state first,
     * so the Report is built from the user list at the level snmpv3_make_report chooses
     * (noAuthNoPriv; authNoPriv for notInTimeWindow), not with the request's keys.
     */
    struct snmp_secmod_def *sm = find_sec_mod(pdu->securityModel);
    if (pdu->securityStateRef != NULL && sm != NULL && sm->pdu_free_state_ref != NULL) {
        sm->pdu_free_state_ref(pdu->securityStateRef);
        pdu->securityStateRef = NULL;
    }
    u_long flags = pdu->flags;
    pdu->flags |= UCD_MSG_FLAG_FORCE_PDU_COPY; /* copy even without varbinds */
    netsnmp_pdu *r = snmp_clone_pdu(pdu);
    pdu->flags = flags;
    if (r == NULL) {
        return OPSC_SNMP_INTERNAL;
    }
    r->flags = flags;
    int rc = OPSC_SNMP_INTERNAL;
    if (snmpv3_make_report(r, snmp_err) == SNMPERR_SUCCESS) {
        rc = opsc__snmp_build(sess, r, reply);
    }
    snmp_free_pdu(r);
    return rc;
}

int opsc__snmp_inform_response(struct snmp_session *sess, struct snmp_pdu *pdu, opsc_buf_t *reply) {
    u_long flags = pdu->flags;
    pdu->flags |= UCD_MSG_FLAG_FORCE_PDU_COPY; /* an INFORM may carry no varbinds we kept */
    netsnmp_pdu *r = snmp_clone_pdu(pdu);      /* shares the v3 keys (reference-counted) */
    pdu->flags = flags;
    if (r == NULL) {
        return OPSC_SNMP_INTERNAL;
    }
    r->flags = flags & ~(u_long)UCD_MSG_FLAG_EXPECT_RESPONSE;
    r->command = SNMP_MSG_RESPONSE;
    r->errstat = 0;
    r->errindex = 0;
    int rc = opsc__snmp_build(sess, r, reply);
    snmp_free_pdu(r);
    return rc;
}

int opsc__snmp_engine_known(const unsigned char *engine_id, size_t engine_id_len) {
    return search_enginetime_list(engine_id, (u_int)engine_id_len) != NULL;
}
