/*
 * opsbench: the benchmark harness. `opsbench traps` sends pre-encoded SNMPv2c
 * traps (linkDown / linkUp from simulated devices) with sendmmsg, flat out or
 * at a fixed rate, bounded by a count and a duration, and reads the server's
 * /metrics before and after to report what the server received, decoded,
 * dropped and turned into alerts.
 *
 * Self-contained on purpose: its own small BER encoder (no net-snmp) and a
 * tiny blocking HTTP/1.0 client, so that the sender costs as little CPU as
 * possible and measures the server, not itself.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/aes.h>
#include <mbedtls/md.h>

#define POOL_MAX 2097152u /* distinct datagrams: a 30 s new-alert run needs ~1M */
#define BATCH 64u
#define DGRAM_MAX 256u
#define MAX_DURATION_S 120.0
#define SETTLE_MAX_S 60.0

/* ---------------------------------------------------------------- BER */

typedef struct {
    unsigned char *p;
    size_t len, cap;
    bool overflow;
} wbuf_t;

static void wb_put(wbuf_t *w, const void *src, size_t n) {
    if (w->len + n > w->cap) {
        w->overflow = true;
        return;
    }
    memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void wb_byte(wbuf_t *w, unsigned b) {
    unsigned char c = (unsigned char)b;
    wb_put(w, &c, 1);
}

static void ber_len(wbuf_t *w, size_t n) {
    if (n < 0x80) {
        wb_byte(w, (unsigned)n);
    } else if (n < 0x100) {
        wb_byte(w, 0x81);
        wb_byte(w, (unsigned)n);
    } else {
        wb_byte(w, 0x82);
        wb_byte(w, (unsigned)(n >> 8));
        wb_byte(w, (unsigned)(n & 0xff));
    }
}

static void ber_tlv(wbuf_t *w, unsigned tag, const void *val, size_t n) {
    wb_byte(w, tag);
    ber_len(w, n);
    wb_put(w, val, n);
}

/* Two's complement, minimal length (INTEGER). */
static void ber_int(wbuf_t *w, unsigned tag, int64_t v) {
    unsigned char b[9];
    size_t n = 0;
    unsigned char tmp[8];
    for (int i = 7; i >= 0; i--) {
        tmp[7 - i] = (unsigned char)((uint64_t)v >> (i * 8));
    }
    size_t s = 0;
    while (s < 7 &&
           ((tmp[s] == 0x00 && !(tmp[s + 1] & 0x80)) || (tmp[s] == 0xff && (tmp[s + 1] & 0x80)))) {
        s++;
    }
    for (size_t i = s; i < 8; i++) {
        b[n++] = tmp[i];
    }
    ber_tlv(w, tag, b, n);
}

/* Unsigned (Counter32, Gauge32, TimeTicks): a leading 0 when the top bit is set. */
static void ber_uint(wbuf_t *w, unsigned tag, uint32_t v) {
    unsigned char b[5];
    size_t n = 0;
    int i = 3;
    while (i > 0 && ((v >> (i * 8)) & 0xff) == 0) {
        i--;
    }
    if ((v >> (i * 8)) & 0x80) {
        b[n++] = 0;
    }
    for (; i >= 0; i--) {
        b[n++] = (unsigned char)(v >> (i * 8));
    }
    ber_tlv(w, tag, b, n);
}

static void ber_oid(wbuf_t *w, const uint32_t *oid, size_t len) {
    unsigned char b[128];
    size_t n = 0;
    b[n++] = (unsigned char)(oid[0] * 40 + oid[1]);
    for (size_t i = 2; i < len && n < sizeof b - 5; i++) {
        uint32_t v = oid[i];
        unsigned char t[5];
        int k = 0;
        do {
            t[k++] = (unsigned char)(v & 0x7f);
            v >>= 7;
        } while (v);
        while (k > 0) {
            k--;
            b[n++] = (unsigned char)(t[k] | (k ? 0x80 : 0));
        }
    }
    ber_tlv(w, 0x06, b, n);
}

/* A constructed TLV around content already encoded in inner. */
static void ber_wrap(wbuf_t *w, unsigned tag, const wbuf_t *inner) {
    ber_tlv(w, tag, inner->p, inner->len);
}

static const uint32_t OID_SYSUPTIME[] = {1, 3, 6, 1, 2, 1, 1, 3, 0};
static const uint32_t OID_TRAPOID[] = {1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0};
static const uint32_t OID_LINKDOWN[] = {1, 3, 6, 1, 6, 3, 1, 1, 5, 3};
static const uint32_t OID_LINKUP[] = {1, 3, 6, 1, 6, 3, 1, 1, 5, 4};
static const uint32_t OID_TRAPADDR[] = {1, 3, 6, 1, 6, 3, 18, 1, 3, 0};
#define N(a) (sizeof(a) / sizeof((a)[0]))

/* One varbind: SEQUENCE { name, value } where the value is already encoded. */
static void vb(wbuf_t *list, const uint32_t *oid, size_t oid_len, const wbuf_t *value) {
    unsigned char tmp[160];
    wbuf_t s = {tmp, 0, sizeof tmp, false};
    ber_oid(&s, oid, oid_len);
    wb_put(&s, value->p, value->len);
    if (s.overflow) {
        list->overflow = true;
        return;
    }
    ber_wrap(list, 0x30, &s);
}

/* One interface varbind: 1.3.6.1.2.1.2.2.1.<column>.<ifIndex> INTEGER v. */
static void vb_if(wbuf_t *list, uint32_t column, uint32_t ifindex, int64_t v) {
    uint32_t oid[] = {1, 3, 6, 1, 2, 1, 2, 2, 1, column, ifindex};
    unsigned char tmp[16];
    wbuf_t val = {tmp, 0, sizeof tmp, false};
    ber_int(&val, 0x02, v);
    vb(list, oid, N(oid), &val);
}

/*
 * An SNMPv2c SNMPv2-Trap-PDU: sysUpTime.0, snmpTrapOID.0 = linkDown (linkUp
 * when clear), ifIndex/ifAdminStatus/ifOperStatus, snmpTrapAddress.0 = addr.
 * Returns the length, 0 when it does not fit.
 */
/*
 * Who the traps come from: a v2c community, or (version 3) a USM user on the
 * sender's engine ID: noAuthNoPriv, authNoPriv with HMAC-SHA-96 (RFC 3414),
 * or authPriv with AES-128-CFB (RFC 3826), keys from passphrases.
 */
typedef struct sender_s {
    const char *community; /* v2c */
    bool v3;
    const char *user;
    unsigned char engine[32];
    size_t engine_len;
    const char *auth_pass; /* NULL: noAuth */
    const char *priv_pass; /* NULL: noPriv */
    unsigned char auth_key[20];
    unsigned char priv_key[16];
} sender_t;

/* msgPrivacyParameters: a 64-bit counter, random start (RFC 3826: never reuse with a key). */
static uint64_t usm_salt;

/*
 * RFC 3414 A.2.2: a passphrase becomes a key by hashing 1 MiB of it repeated
 * (SHA-1), localized to the engine as SHA-1(Ku || engineID || Ku).
 */
static void usm_key(const char *pass, const unsigned char *engine, size_t engine_len,
                    unsigned char out[20]) {
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA1);
    mbedtls_md_context_t ctx;
    mbedtls_md_init(&ctx);
    mbedtls_md_setup(&ctx, md, 0);
    mbedtls_md_starts(&ctx);
    size_t plen = strlen(pass);
    unsigned char chunk[64];
    for (size_t done = 0, at = 0; done < 1048576; done += sizeof chunk) {
        for (size_t i = 0; i < sizeof chunk; i++) {
            chunk[i] = (unsigned char)pass[at++ % plen];
        }
        mbedtls_md_update(&ctx, chunk, sizeof chunk);
    }
    unsigned char ku[20];
    mbedtls_md_finish(&ctx, ku);
    mbedtls_md_starts(&ctx);
    mbedtls_md_update(&ctx, ku, sizeof ku);
    mbedtls_md_update(&ctx, engine, engine_len);
    mbedtls_md_update(&ctx, ku, sizeof ku);
    mbedtls_md_finish(&ctx, out);
    mbedtls_md_free(&ctx);
}

/* AES-128-CFB of a scoped PDU: key and IV as RFC 3826 (boots, time, salt). */
static void usm_encrypt(const sender_t *from, uint32_t boots, uint32_t etime, uint64_t salt,
                        const unsigned char *in, size_t len, unsigned char *out) {
    unsigned char iv[16];
    for (int i = 0; i < 4; i++) {
        iv[i] = (unsigned char)(boots >> (24 - 8 * i));
        iv[4 + i] = (unsigned char)(etime >> (24 - 8 * i));
    }
    for (int i = 0; i < 8; i++) {
        iv[8 + i] = (unsigned char)(salt >> (56 - 8 * i));
    }
    mbedtls_aes_context aes;
    mbedtls_aes_init(&aes);
    mbedtls_aes_setkey_enc(&aes, from->priv_key, 128);
    size_t off = 0;
    mbedtls_aes_crypt_cfb128(&aes, MBEDTLS_AES_ENCRYPT, len, &off, iv, in, out);
    mbedtls_aes_free(&aes);
}

static size_t encode_trap(unsigned char *out, size_t cap, const sender_t *from, int32_t reqid,
                          uint32_t uptime, bool clear, uint32_t ifindex,
                          const unsigned char addr[4]) {
    unsigned char vbuf[256], pbuf[300], tmpv[32];
    wbuf_t list = {vbuf, 0, sizeof vbuf, false};
    wbuf_t val = {tmpv, 0, sizeof tmpv, false};

    ber_uint(&val, 0x43, uptime);
    vb(&list, OID_SYSUPTIME, N(OID_SYSUPTIME), &val);
    val.len = 0;
    if (clear) {
        ber_oid(&val, OID_LINKUP, N(OID_LINKUP));
    } else {
        ber_oid(&val, OID_LINKDOWN, N(OID_LINKDOWN));
    }
    vb(&list, OID_TRAPOID, N(OID_TRAPOID), &val);
    vb_if(&list, 1, ifindex, ifindex);
    vb_if(&list, 7, ifindex, 1);             /* ifAdminStatus up */
    vb_if(&list, 8, ifindex, clear ? 1 : 2); /* ifOperStatus up / down */
    val.len = 0;
    ber_tlv(&val, 0x40, addr, 4);
    vb(&list, OID_TRAPADDR, N(OID_TRAPADDR), &val);

    wbuf_t pdu = {pbuf, 0, sizeof pbuf, false};
    ber_int(&pdu, 0x02, reqid);
    ber_int(&pdu, 0x02, 0); /* error-status */
    ber_int(&pdu, 0x02, 0); /* error-index */
    ber_wrap(&pdu, 0x30, &list);

    unsigned char mbuf[DGRAM_MAX + 64];
    wbuf_t msg = {mbuf, 0, sizeof mbuf, false};
    if (!from->v3) {
        ber_int(&msg, 0x02, 1); /* version: v2c */
        ber_tlv(&msg, 0x04, from->community, strlen(from->community));
        ber_wrap(&msg, 0xa7, &pdu);
    } else {
        bool auth = from->auth_pass != NULL, priv = auth && from->priv_pass != NULL;
        unsigned char flags = priv ? 0x03 : auth ? 0x01 : 0x00; /* not reportable */
        unsigned char saltb[8];
        uint64_t salt = usm_salt++;
        for (int i = 0; i < 8; i++) {
            saltb[i] = (unsigned char)(salt >> (56 - 8 * i));
        }
        static const unsigned char zeros[12];
        unsigned char gbuf[32], sbuf[160], spbuf[168], cbuf[DGRAM_MAX], sqbuf[DGRAM_MAX];
        unsigned char encbuf[DGRAM_MAX];
        wbuf_t global = {gbuf, 0, sizeof gbuf, false};
        ber_int(&global, 0x02, reqid); /* msgID */
        ber_int(&global, 0x02, 65507); /* msgMaxSize */
        ber_tlv(&global, 0x04, &flags, 1);
        ber_int(&global, 0x02, 3); /* msgSecurityModel: USM */
        wbuf_t sec = {sbuf, 0, sizeof sbuf, false};
        ber_tlv(&sec, 0x04, from->engine, from->engine_len);
        ber_int(&sec, 0x02, 1); /* engine boots */
        ber_int(&sec, 0x02, 0); /* engine time */
        ber_tlv(&sec, 0x04, from->user, strlen(from->user));
        ber_tlv(&sec, 0x04, zeros, auth ? 12 : 0); /* HMAC-SHA-96, filled in below */
        ber_tlv(&sec, 0x04, saltb, priv ? 8 : 0);  /* the AES salt */
        wbuf_t secseq = {spbuf, 0, sizeof spbuf, false};
        ber_wrap(&secseq, 0x30, &sec);
        wbuf_t scoped = {cbuf, 0, sizeof cbuf, false};
        ber_tlv(&scoped, 0x04, from->engine, from->engine_len); /* contextEngineID */
        ber_tlv(&scoped, 0x04, "", 0);                          /* contextName */
        ber_wrap(&scoped, 0xa7, &pdu);
        ber_int(&msg, 0x02, 3); /* version: v3 */
        ber_wrap(&msg, 0x30, &global);
        ber_wrap(&msg, 0x04, &secseq);
        if (priv) {
            wbuf_t sq = {sqbuf, 0, sizeof sqbuf, false};
            ber_wrap(&sq, 0x30, &scoped);
            if (sq.overflow) {
                return 0;
            }
            usm_encrypt(from, 1, 0, salt, sqbuf, sq.len, encbuf);
            ber_tlv(&msg, 0x04, encbuf, sq.len); /* encryptedPDU */
        } else {
            ber_wrap(&msg, 0x30, &scoped);
        }
        if (global.overflow || sec.overflow || secseq.overflow || scoped.overflow) {
            return 0;
        }
        if (auth) {
            wbuf_t top = {out, 0, cap, false};
            ber_wrap(&top, 0x30, &msg);
            if (msg.overflow || top.overflow || list.overflow || pdu.overflow || val.overflow) {
                return 0;
            }
            /* The placeholder is the first 04 0c 00*12 after the header and the engine ID. */
            size_t at = top.len - msg.len + global.len + 2;
            for (; at + 14 <= top.len; at++) {
                if (out[at] == 0x04 && out[at + 1] == 12 && memcmp(out + at + 2, zeros, 12) == 0) {
                    break;
                }
            }
            if (at + 14 > top.len) {
                return 0;
            }
            unsigned char mac[20];
            mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA1), from->auth_key, 20, out,
                            top.len, mac);
            memcpy(out + at + 2, mac, 12);
            return top.len;
        }
    }

    wbuf_t top = {out, 0, cap, false};
    ber_wrap(&top, 0x30, &msg);
    if (list.overflow || pdu.overflow || msg.overflow || top.overflow || val.overflow) {
        return 0;
    }
    return top.len;
}

/* ---------------------------------------------------------- utilities */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}
static double rng_unit(void) {
    return (double)(rng() >> 11) / 9007199254740992.0;
}

static void device_addr(uint32_t dev, unsigned char a[4]) {
    uint32_t n = dev + 1; /* 10.0.0.1 onwards */
    a[0] = 10;
    a[1] = (unsigned char)(n >> 16);
    a[2] = (unsigned char)(n >> 8);
    a[3] = (unsigned char)n;
}

/* --------------------------------------------------------- metrics GET */

typedef struct {
    char *body; /* NULL: not fetched */
} snap_t;

/* A tiny blocking HTTP/1.0 GET of http://host:port/path; the body, or NULL. */
static char *http_get(const char *url, double timeout_s) {
    if (strncmp(url, "http://", 7) != 0) {
        return NULL;
    }
    const char *h = url + 7;
    const char *slash = strchr(h, '/');
    const char *path = slash ? slash : "/";
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    char host[256], port[16] = "80";
    if (hl >= sizeof host) {
        return NULL;
    }
    memcpy(host, h, hl);
    host[hl] = 0;
    char *colon = strrchr(host, ':');
    if (colon) {
        *colon = 0;
        snprintf(port, sizeof port, "%s", colon + 1);
    }
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai) {
        return NULL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {(time_t)timeout_s,
                         (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6)};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        freeaddrinfo(ai);
        return NULL;
    }
    freeaddrinfo(ai);
    char req[512];
    int rl = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n",
                      path, host);
    if (rl < 0 || (size_t)rl >= sizeof req || write(fd, req, (size_t)rl) != rl) {
        close(fd);
        return NULL;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            close(fd);
            return NULL;
        }
        if (len + 4096 > cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                close(fd);
                return NULL;
            }
            buf = nb;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    buf[len] = 0;
    char *body = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) != 0 || !body || strncmp(buf + 9, "200", 3) != 0) {
        free(buf);
        return NULL;
    }
    memmove(buf, body + 4, len - (size_t)(body + 4 - buf) + 1);
    return buf;
}

/*
 * The sum of every sample of metric `name` whose label set contains `label`
 * (NULL: any labels). Comment lines are skipped.
 */
static double mval(const snap_t *s, const char *name, const char *label) {
    double sum = 0;
    if (!s->body) {
        return 0;
    }
    size_t nl = strlen(name);
    for (const char *p = s->body; *p;) {
        const char *e = strchr(p, '\n');
        size_t ll = e ? (size_t)(e - p) : strlen(p);
        if (*p != '#' && ll > nl && strncmp(p, name, nl) == 0 && (p[nl] == '{' || p[nl] == ' ')) {
            const char *sp = memchr(p, ' ', ll);
            const char *lb = p + nl;
            bool ok = true;
            if (label) {
                ok = false;
                if (*lb == '{') {
                    const char *close = memchr(lb, '}', ll - nl);
                    size_t ln = strlen(label);
                    for (const char *q = lb; close && q + ln <= close; q++) {
                        if (strncmp(q, label, ln) == 0) {
                            ok = true;
                            break;
                        }
                    }
                }
            }
            if (ok && sp) {
                /* the value follows the last space before the end of the label set */
                const char *v = lb;
                if (*lb == '{') {
                    const char *close = memchr(lb, '}', ll - nl);
                    v = close ? close + 1 : sp;
                }
                sum += strtod(v, NULL);
            }
        }
        p = e ? e + 1 : p + ll;
    }
    return sum;
}

static double mdelta(const snap_t *a, const snap_t *b, const char *name, const char *label) {
    return mval(b, name, label) - mval(a, name, label);
}

/* ------------------------------------------------------------- options */

typedef struct {
    const char *target;
    const char *metrics;
    double rate; /* 0: flat out */
    uint64_t count;
    double duration;
    uint32_t devices, interfaces;
    double dup_ratio, clear_ratio;
    sender_t from;
    bool dry_run;
    bool mutate;
    uint64_t seed;
} opts_t;

/* "0x8000..." or "8000...": up to cap bytes. */
static bool parse_hex(const char *s, unsigned char *out, size_t cap, size_t *n) {
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
    }
    size_t len = strlen(s);
    if (len == 0 || len % 2 || len / 2 > cap) {
        return false;
    }
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1 || !isxdigit((unsigned char)s[2 * i]) ||
            !isxdigit((unsigned char)s[2 * i + 1])) {
            return false;
        }
        out[i] = (unsigned char)v;
    }
    *n = len / 2;
    return true;
}

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: opsbench traps --target HOST:PORT [options]\n"
        "       opsbench traps --dry-run [options]   encode one trap, print it as hex\n"
        "\n"
        "Sends pre-encoded SNMPv2c linkDown/linkUp traps with sendmmsg, flat out or at a\n"
        "fixed rate, and reports what the server made of them from its /metrics.\n"
        "\n"
        "  --target HOST:PORT     where to send (UDP, IPv4 or [IPv6])\n"
        "  --metrics URL          the server's metrics, read before and after\n"
        "                         (e.g. http://127.0.0.1:8080/metrics)\n"
        "  --rate N[/s]           traps per second (default: flat out)\n"
        "  --count N              traps to send (default 1000000)\n"
        "  --duration S           stop sending after S seconds (default and max 120)\n"
        "  --devices D            simulated devices, 10.x.y.z (default 1)\n"
        "  --interfaces I         interfaces per device (default 1)\n"
        "  --dup-ratio R          share of traps that repeat an active linkDown (default 0.9)\n"
        "  --clear-ratio C        share of traps that are linkUp clears (default 0)\n"
        "  --version 2c|3         SNMP version (default 2c); 3 sends noAuthNoPriv traps\n"
        "  --community NAME       v2c community (default public)\n"
        "  --user NAME            v3 user (default opsbench)\n"
        "  --engine-id HEX        v3: the sender's engine ID, 5-32 bytes (default 8000e2f00101)\n"
        "  --auth-pass PASS       v3: authNoPriv with SHA (HMAC-SHA-96)\n"
        "  --priv-pass PASS       v3: and authPriv with AES-128 (needs --auth-pass)\n"
        "  --seed N               random seed of the traffic mix (default 1)\n"
        "  --mutate               damage every datagram (truncations, flipped bytes, bad\n"
        "                         lengths, garbage): checks that bad input is only counted\n"
        "  --dry-run              print one encoded trap as hex and exit\n"
        "  -h, --help             this text\n");
}

static bool parse_u64(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || (*end && strcmp(end, "/s") != 0) || d < 0 || d > 1e15) {
        return false;
    }
    *out = (uint64_t)d;
    return true;
}

static bool parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || (*end && strcmp(end, "/s") != 0 && strcmp(end, "s") != 0) || d < 0) {
        return false;
    }
    *out = d;
    return true;
}

/* ----------------------------------------------------------- the pool */

typedef struct {
    unsigned char *data; /* POOL entries of DGRAM_MAX bytes */
    uint16_t *len;
    uint32_t *fp; /* fingerprint index: device * interfaces + (ifIndex - 1) */
    uint8_t *clear;
    size_t n;
} pool_t;

/*
 * The traffic mix, generated once: each trap is a clear with probability C,
 * else a repeat of an active linkDown with probability R / (1 - C), else a
 * linkDown for an interface not currently down (a new alert). The state is
 * tracked while generating so that repeats and clears refer to alerts that are
 * open at that point of the sequence.
 */
/*
 * --mutate: one damage per datagram, of the kinds a broken agent or a hostile
 * sender produces. The result may still be a valid trap now and then (a flipped
 * value byte); what matters is that every datagram is decoded or counted.
 */
static size_t mutate(unsigned char *d, size_t len) {
    size_t i = len ? (size_t)(rng() % len) : 0;
    switch (rng() % 6) {
    case 0: /* truncated anywhere */
        return len ? (size_t)(rng() % len) : 0;
    case 1: /* a few flipped bits */
        for (int k = 0, n = 1 + (int)(rng() % 4); k < n && len; k++) {
            d[rng() % len] ^= (unsigned char)(1u << (rng() % 8));
        }
        return len;
    case 2: /* a byte set to a value that means something in BER lengths and tags */
        if (len) {
            static const unsigned char v[] = {0x00, 0x80, 0x81, 0x84, 0xff, 0x30, 0xa7};
            d[i] = v[rng() % sizeof(v)];
        }
        return len;
    case 3: { /* garbage after the message */
        size_t extra = 1 + (size_t)(rng() % 64);
        if (len + extra > DGRAM_MAX) {
            extra = DGRAM_MAX - len;
        }
        for (size_t k = 0; k < extra; k++) {
            d[len + k] = (unsigned char)rng();
        }
        return len + extra;
    }
    case 4: /* the outer length claims 4 GiB */
        if (len >= 6) {
            memmove(d + 6, d + 2, len - 6);
            d[1] = 0x84;
            d[2] = d[3] = d[4] = d[5] = 0xff;
        }
        return len;
    default: /* no SNMP at all */
        for (size_t k = 0; k < len; k++) {
            d[k] = (unsigned char)rng();
        }
        return len;
    }
}

static int build_pool(pool_t *p, const opts_t *o) {
    uint64_t nfp = (uint64_t)o->devices * o->interfaces;
    p->n = o->count < POOL_MAX ? (size_t)o->count : POOL_MAX;
    if (p->n == 0) {
        p->n = 1;
    }
    p->data = malloc(p->n * DGRAM_MAX);
    p->len = malloc(p->n * sizeof *p->len);
    p->fp = malloc(p->n * sizeof *p->fp);
    p->clear = malloc(p->n);
    uint32_t *active = malloc(nfp * sizeof *active); /* dense list of active fps */
    uint32_t *pos = malloc(nfp * sizeof *pos);       /* fp -> index in active, or UINT32_MAX */
    if (!p->data || !p->len || !p->fp || !p->clear || !active || !pos) {
        free(active);
        free(pos);
        return -1;
    }
    for (uint64_t i = 0; i < nfp; i++) {
        pos[i] = UINT32_MAX;
    }
    size_t nactive = 0;
    double prepeat = o->clear_ratio < 1 ? o->dup_ratio / (1 - o->clear_ratio) : 0;
    for (size_t k = 0; k < p->n; k++) {
        uint32_t fp;
        bool clear = false;
        double u = rng_unit();
        if (u < o->clear_ratio) {
            clear = true;
            if (nactive) {
                uint32_t idx = (uint32_t)(rng() % nactive);
                fp = active[idx];
                active[idx] = active[--nactive];
                pos[active[idx]] = idx;
                pos[fp] = UINT32_MAX;
            } else {
                fp = (uint32_t)(rng() % nfp);
            }
        } else if (nactive && (nactive == nfp || rng_unit() < prepeat)) {
            fp = active[rng() % nactive];
        } else {
            fp = (uint32_t)(rng() % nfp);
            for (int tries = 0; pos[fp] != UINT32_MAX && tries < 64; tries++) {
                fp = (uint32_t)(rng() % nfp);
            }
            if (pos[fp] == UINT32_MAX) {
                pos[fp] = (uint32_t)nactive;
                active[nactive++] = fp;
            }
        }
        unsigned char addr[4];
        device_addr(fp / o->interfaces, addr);
        size_t l =
            encode_trap(p->data + k * DGRAM_MAX, DGRAM_MAX, &o->from, (int32_t)(k & 0x7fffffff) + 1,
                        (uint32_t)(k * 7 + 100), clear, fp % o->interfaces + 1, addr);
        if (l == 0) {
            free(active);
            free(pos);
            return -1;
        }
        if (o->mutate) {
            l = mutate(p->data + k * DGRAM_MAX, l);
        }
        p->len[k] = (uint16_t)l;
        p->fp[k] = fp;
        p->clear[k] = clear;
    }
    free(active);
    free(pos);
    return 0;
}

/*
 * What a correct server makes of the first `sent` traps of the (cycled) pool:
 * a linkDown on a clear interface creates, on a down one deduplicates; a
 * linkUp on a down interface clears, on a clear one clears nothing.
 */
static void model(const pool_t *p, const opts_t *o, uint64_t sent, uint64_t *created,
                  uint64_t *dedup, uint64_t *cleared, uint64_t *clear_none, uint64_t *active_end) {
    uint64_t nfp = (uint64_t)o->devices * o->interfaces;
    unsigned char *down = calloc(nfp, 1);
    *created = *dedup = *cleared = *clear_none = *active_end = 0;
    if (!down) {
        return;
    }
    for (uint64_t k = 0; k < sent; k++) {
        size_t i = (size_t)(k % p->n);
        uint32_t fp = p->fp[i];
        if (p->clear[i]) {
            if (down[fp]) {
                down[fp] = 0;
                (*cleared)++;
            } else {
                (*clear_none)++;
            }
        } else if (down[fp]) {
            (*dedup)++;
        } else {
            down[fp] = 1;
            (*created)++;
        }
    }
    for (uint64_t i = 0; i < nfp; i++) {
        *active_end += down[i];
    }
    free(down);
}

/* ------------------------------------------------------------ sending */

static int open_target(const char *target, struct sockaddr_storage *ss, socklen_t *sl) {
    char host[256], port[16];
    const char *colon = strrchr(target, ':');
    if (!colon || (size_t)(colon - target) >= sizeof host) {
        return -1;
    }
    const char *hs = target;
    size_t hl = (size_t)(colon - target);
    if (hl >= 2 && hs[0] == '[' && hs[hl - 1] == ']') {
        hs++;
        hl -= 2;
    }
    memcpy(host, hs, hl);
    host[hl] = 0;
    snprintf(port, sizeof port, "%s", colon + 1);
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai) {
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *sl = ai->ai_addrlen;
    int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    freeaddrinfo(ai);
    if (fd < 0) {
        return -1;
    }
    int sb = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
    if (connect(fd, (struct sockaddr *)ss, *sl) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void ts_add(struct timespec *t, double s) {
    long ns = (long)(s * 1e9);
    t->tv_sec += ns / 1000000000L;
    t->tv_nsec += ns % 1000000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

typedef struct {
    uint64_t sent, send_errors;
    double t_start, t_end;
} send_result_t;

static void send_all(int fd, const pool_t *p, const opts_t *o, send_result_t *r) {
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    memset(msgs, 0, sizeof msgs);
    uint64_t sent = 0, errors = 0;
    size_t idx = 0;
    double duration = o->duration;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    double t0 = now_s();
    /* at a rate, batches are spaced so that pacing is smooth (~0.2 ms apart at most) */
    unsigned batch = BATCH;
    if (o->rate > 0) {
        double b = o->rate * 0.0002;
        batch = b < 1 ? 1 : (b > BATCH ? BATCH : (unsigned)b);
    }
    double batch_interval = o->rate > 0 ? (double)batch / o->rate : 0;
    uint64_t iter = 0;
    while (sent < o->count) {
        if ((iter++ & 63) == 0 && now_s() - t0 >= duration) {
            break;
        }
        unsigned n = batch;
        if (o->count - sent < n) {
            n = (unsigned)(o->count - sent);
        }
        for (unsigned i = 0; i < n; i++) {
            iov[i].iov_base = p->data + idx * DGRAM_MAX;
            iov[i].iov_len = p->len[idx];
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            if (++idx == p->n) {
                idx = 0;
            }
        }
        unsigned done = 0;
        while (done < n) {
            int k = sendmmsg(fd, msgs + done, n - done, 0);
            if (k < 0) {
                if (errno == EINTR) {
                    continue;
                }
                /* ENOBUFS/ECONNREFUSED etc.: count, skip that datagram */
                errors++;
                done++;
                continue;
            }
            done += (unsigned)k;
            sent += (uint64_t)k;
        }
        if (o->rate > 0) {
            ts_add(&next, batch_interval);
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        }
    }
    r->sent = sent;
    r->send_errors = errors;
    r->t_start = t0;
    r->t_end = now_s();
}

/* ------------------------------------------------------------ report */

static void print_num(const char *label, double v) {
    printf("  %-34s %.0f\n", label, v);
}

static const char *const TRAP_DROP_REASONS[] = {"malformed",
                                                "too_big",
                                                "unsupported_version",
                                                "unsupported_pdu",
                                                "bad_community",
                                                "unknown_user",
                                                "unknown_engine",
                                                "bad_auth",
                                                "bad_priv",
                                                "not_in_time_window",
                                                "wrong_security_level",
                                                "discovery",
                                                "internal",
                                                "unnormalizable",
                                                NULL};
static const char *const DGRAM_DROP_REASONS[] = {"no_consumer", "truncated", "closing", NULL};

static int cmd_traps(const opts_t *o) {
    if (o->dry_run) {
        unsigned char buf[DGRAM_MAX];
        unsigned char addr[4];
        device_addr(0, addr);
        size_t l = encode_trap(buf, sizeof buf, &o->from, 1, 100, o->clear_ratio >= 1, 1, addr);
        if (l == 0) {
            fprintf(stderr, "opsbench: encoding failed\n");
            return 1;
        }
        for (size_t i = 0; i < l; i++) {
            printf("%02x", buf[i]);
        }
        printf("\n");
        return 0;
    }
    if (!o->target) {
        fprintf(stderr, "opsbench: --target HOST:PORT is required\n");
        return 2;
    }
    pool_t pool = {0};
    double tb = now_s();
    if (build_pool(&pool, o) != 0) {
        fprintf(stderr, "opsbench: cannot build the datagram pool (memory or encoding)\n");
        return 1;
    }
    double tb_end = now_s();
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd = open_target(o->target, &ss, &sl);
    if (fd < 0) {
        fprintf(stderr, "opsbench: bad or unreachable target %s\n", o->target);
        return 2;
    }
    snap_t before = {NULL}, after = {NULL};
    if (o->metrics) {
        before.body = http_get(o->metrics, 5);
        if (!before.body) {
            fprintf(stderr, "opsbench: cannot GET %s\n", o->metrics);
            close(fd);
            return 2;
        }
    }

    if (o->from.v3) {
        printf("opsbench traps: target %s, SNMPv3 %s user \"%s\"\n", o->target,
               o->from.priv_pass   ? "authPriv (SHA, AES-128)"
               : o->from.auth_pass ? "authNoPriv (SHA)"
                                   : "noAuthNoPriv",
               o->from.user);
    } else {
        printf("opsbench traps: target %s, SNMPv2c community \"%s\"\n", o->target,
               o->from.community);
    }
    printf(
        "  mix: %u devices x %u interfaces, dup-ratio %.3f, clear-ratio %.3f; pool of %zu datagrams"
        " (built in %.2f s)\n",
        o->devices, o->interfaces, o->dup_ratio, o->clear_ratio, pool.n, tb_end - tb);
    if (o->rate > 0) {
        printf("  rate %.0f/s, ", o->rate);
    } else {
        printf("  rate flat out, ");
    }
    printf("count %llu, duration limit %.0f s\n", (unsigned long long)o->count, o->duration);
    fflush(stdout);

    send_result_t sr;
    send_all(fd, &pool, o, &sr);
    close(fd);
    double send_time = sr.t_end - sr.t_start;

    /* Wait for the server to settle: decoded, alerts and store writes unmoving for 300 ms. */
    double t_last_decoded = sr.t_end;
    double settle_deadline = now_s() + SETTLE_MAX_S;
    bool settled = !o->metrics;
    if (o->metrics) {
        double last_dec = -1, last_alerts = -1, last_rows = -1;
        int still = 0;
        while (now_s() < settle_deadline) {
            snap_t s = {http_get(o->metrics, 5)};
            double t = now_s();
            if (s.body) {
                double dec = mval(&s, "opsc_trap_decoded_total", NULL);
                double al = mval(&s, "opsc_alerts_total", NULL);
                double rows = mval(&s, "opsc_store_rows_written_total", NULL) +
                              mval(&s, "opsc_store_changes_coalesced_total", NULL);
                /* Changes the store had no room for wait in the journal: not settled until fed. */
                double pending = mval(&s, "opsc_store_pending_items", NULL) +
                                 mval(&s, "opsc_spool_backlog", NULL);
                if (dec != last_dec) {
                    if (last_dec >= 0) {
                        t_last_decoded = t;
                    }
                    last_dec = dec;
                    still = 0;
                } else if (al != last_alerts || rows != last_rows || pending > 0) {
                    still = 0;
                } else {
                    still++;
                }
                last_alerts = al;
                last_rows = rows;
                free(after.body);
                after = s;
                if (still >= 3) {
                    settled = true;
                    break;
                }
            }
            struct timespec ts = {0, 100000000L};
            nanosleep(&ts, NULL);
        }
        if (!after.body) {
            fprintf(stderr, "opsbench: cannot GET %s after the run\n", o->metrics);
        }
    }

    printf("\nsent\n");
    print_num("traps sent", (double)sr.sent);
    if (sr.send_errors) {
        print_num("send errors", (double)sr.send_errors);
    }
    printf("  %-34s %.2f s\n", "send time", send_time);
    printf("  %-34s %.0f/s\n", "send rate", send_time > 0 ? (double)sr.sent / send_time : 0.0);

    uint64_t e_created, e_dedup, e_cleared, e_clear_none, e_active;
    model(&pool, o, sr.sent, &e_created, &e_dedup, &e_cleared, &e_clear_none, &e_active);

    int rc = 0;
    if (o->metrics && after.body) {
        double recv = mdelta(&before, &after, "opsc_snmp_datagrams_received_total", NULL);
        double dec = mdelta(&before, &after, "opsc_trap_decoded_total", NULL);
        double ring = mdelta(&before, &after, "opsc_trap_ingest_ring_dropped_total", NULL);
        double notready = mdelta(&before, &after, "opsc_trap_not_ready_dropped_total", NULL);
        double rcvbuf = mdelta(&before, &after, "opsc_udp_kernel_rcvbuf_errors_total", NULL);
        double inerr = mdelta(&before, &after, "opsc_udp_kernel_in_errors_total", NULL);
        double rxerr = mdelta(&before, &after, "opsc_snmp_receive_errors_total", NULL);
        double refused = mdelta(&before, &after, "opsc_store_changes_refused_total", NULL);
        double rejected = mdelta(&before, &after, "opsc_store_rows_rejected_total", NULL);
        double drops = 0, decoder_drops = 0;

        printf("\nserver (from %s)\n", o->metrics);
        print_num("datagrams received", recv);
        print_num("traps decoded", dec);
        printf("  %-34s %.0f\n", "not received (sent - received)", (double)sr.sent - recv);
        for (int i = 0; TRAP_DROP_REASONS[i]; i++) {
            char l[64];
            snprintf(l, sizeof l, "reason=\"%s\"", TRAP_DROP_REASONS[i]);
            double d = mdelta(&before, &after, "opsc_trap_dropped_total", l);
            if (d != 0) {
                printf("  dropped (%s)%*s %.0f\n", TRAP_DROP_REASONS[i],
                       (int)(34 - 10 - strlen(TRAP_DROP_REASONS[i])), "", d);
                drops += d;
                decoder_drops += d;
            }
        }
        for (int i = 0; DGRAM_DROP_REASONS[i]; i++) {
            char l[64];
            snprintf(l, sizeof l, "reason=\"%s\"", DGRAM_DROP_REASONS[i]);
            double d = mdelta(&before, &after, "opsc_snmp_datagrams_dropped_total", l);
            if (d != 0) {
                printf("  datagrams dropped (%s)%*s %.0f\n", DGRAM_DROP_REASONS[i],
                       (int)(34 - 20 - strlen(DGRAM_DROP_REASONS[i])), "", d);
                drops += d;
                decoder_drops += d;
            }
        }
        print_num("ingest ring drops", ring);
        if (notready) {
            print_num("dropped (not ready)", notready);
        }
        print_num("kernel rcvbuf errors (delta)", rcvbuf);
        if (inerr != rcvbuf) {
            print_num("kernel UDP in errors (delta)", inerr);
        }
        if (rxerr) {
            print_num("receive errors", rxerr);
        }
        if (refused || rejected) {
            /* Refused by a full store, the change waited in the journal and was fed later. */
            print_num("store changes deferred to the journal", refused);
            print_num("store rows rejected", rejected);
        }
        drops += ring + notready + rxerr + rejected;
        double lost = (double)sr.sent - recv;
        if (lost < 0) {
            lost = 0; /* other senders */
        }

        double created = mdelta(&before, &after, "opsc_alerts_total", "outcome=\"created\"");
        double dedup = mdelta(&before, &after, "opsc_alerts_total", "outcome=\"deduplicated\"");
        double cleared = mdelta(&before, &after, "opsc_alerts_total", "outcome=\"cleared\"");
        double cnone =
            mdelta(&before, &after, "opsc_alerts_total", "outcome=\"clear_without_alert\"");
        printf("\nalerts                                 server   expected\n");
        printf("  %-34s %.0f %10llu\n", "created", created, (unsigned long long)e_created);
        printf("  %-34s %.0f %10llu\n", "deduplicated", dedup, (unsigned long long)e_dedup);
        printf("  %-34s %.0f %10llu\n", "cleared", cleared, (unsigned long long)e_cleared);
        printf("  %-34s %.0f %10llu\n", "clears without an alert", cnone,
               (unsigned long long)e_clear_none);
        printf("  %-34s %llu\n", "active at the end (expected delta)",
               (unsigned long long)e_active);
        printf("  %-34s %.0f\n", "store rows written",
               mdelta(&before, &after, "opsc_store_rows_written_total", NULL));
        printf("  %-34s %.0f\n", "store changes coalesced",
               mdelta(&before, &after, "opsc_store_changes_coalesced_total", NULL));
        printf("  %-34s %.0f\n", "store pending at the end",
               mval(&after, "opsc_store_pending_items", NULL));

        double e2e_time = t_last_decoded - sr.t_start;
        printf("\nrates\n");
        printf("  %-34s %.0f/s\n", "send rate", send_time > 0 ? (double)sr.sent / send_time : 0.0);
        printf("  %-34s %.0f/s (%.0f decoded in %.2f s)\n", "end-to-end rate",
               e2e_time > 0 ? dec / e2e_time : 0.0, dec, e2e_time);
        if (!settled) {
            printf("  (server still busy after %.0f s of waiting)\n", SETTLE_MAX_S);
        }
        double total = lost + drops + rcvbuf;
        printf("\nlost or dropped, total: %.0f\n", total);
        if (o->mutate) {
            /* Damaged input: every datagram must be decoded or dropped by a counted reason. */
            double unexplained = recv - dec - decoder_drops;
            printf("  %-34s %.0f\n", "received, neither decoded nor counted", unexplained);
            printf("result: %s\n", lost == 0 && ring == 0 && notready == 0 && rcvbuf == 0 &&
                                           rxerr == 0 && unexplained == 0
                                       ? "ACCOUNTED"
                                       : "UNACCOUNTED");
        } else {
            printf("result: %s\n", total == 0 && dec == (double)sr.sent ? "LOSSLESS" : "LOSS");
        }
    } else if (o->metrics) {
        rc = 0; /* still exit 0: the sending part is reported */
    } else {
        printf("\nexpected alerts: created %llu, deduplicated %llu, cleared %llu\n",
               (unsigned long long)e_created, (unsigned long long)e_dedup,
               (unsigned long long)e_cleared);
    }
    free(before.body);
    free(after.body);
    free(pool.data);
    free(pool.len);
    free(pool.fp);
    free(pool.clear);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "traps") != 0) {
        fprintf(stderr, "opsbench: unknown command %s (only: traps)\n", argv[1]);
        return 2;
    }
    opts_t o = {.target = NULL,
                .metrics = NULL,
                .rate = 0,
                .count = 1000000,
                .duration = MAX_DURATION_S,
                .devices = 1,
                .interfaces = 1,
                .dup_ratio = 0.9,
                .clear_ratio = 0,
                .from = {.community = "public", .user = "opsbench"},
                .dry_run = false,
                .seed = 1};
    enum {
        O_TARGET = 1,
        O_METRICS,
        O_RATE,
        O_COUNT,
        O_DURATION,
        O_DEVICES,
        O_IFS,
        O_DUP,
        O_CLEAR,
        O_VERSION,
        O_COMMUNITY,
        O_DRY,
        O_SEED,
        O_MUTATE,
        O_USER,
        O_ENGINE,
        O_AUTH_PASS,
        O_PRIV_PASS,
        O_HELP
    };
    static const struct option lo[] = {{"target", required_argument, NULL, O_TARGET},
                                       {"metrics", required_argument, NULL, O_METRICS},
                                       {"rate", required_argument, NULL, O_RATE},
                                       {"count", required_argument, NULL, O_COUNT},
                                       {"duration", required_argument, NULL, O_DURATION},
                                       {"devices", required_argument, NULL, O_DEVICES},
                                       {"interfaces", required_argument, NULL, O_IFS},
                                       {"dup-ratio", required_argument, NULL, O_DUP},
                                       {"clear-ratio", required_argument, NULL, O_CLEAR},
                                       {"version", required_argument, NULL, O_VERSION},
                                       {"community", required_argument, NULL, O_COMMUNITY},
                                       {"dry-run", no_argument, NULL, O_DRY},
                                       {"seed", required_argument, NULL, O_SEED},
                                       {"help", no_argument, NULL, O_HELP},
                                       {"mutate", no_argument, NULL, O_MUTATE},
                                       {"user", required_argument, NULL, O_USER},
                                       {"engine-id", required_argument, NULL, O_ENGINE},
                                       {"auth-pass", required_argument, NULL, O_AUTH_PASS},
                                       {"priv-pass", required_argument, NULL, O_PRIV_PASS},
                                       {NULL, 0, NULL, 0}};
    int c;
    uint64_t u;
    optind = 2;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case O_TARGET:
            o.target = optarg;
            break;
        case O_METRICS:
            o.metrics = optarg;
            break;
        case O_RATE:
            ok = parse_double(optarg, &o.rate);
            break;
        case O_COUNT:
            ok = parse_u64(optarg, &o.count);
            break;
        case O_DURATION:
            ok = parse_double(optarg, &o.duration) && o.duration > 0;
            break;
        case O_DEVICES:
            ok = parse_u64(optarg, &u) && u >= 1 && u <= 16000000;
            o.devices = (uint32_t)u;
            break;
        case O_IFS:
            ok = parse_u64(optarg, &u) && u >= 1 && u <= 100000;
            o.interfaces = (uint32_t)u;
            break;
        case O_DUP:
            ok = parse_double(optarg, &o.dup_ratio) && o.dup_ratio <= 1;
            break;
        case O_CLEAR:
            ok = parse_double(optarg, &o.clear_ratio) && o.clear_ratio <= 1;
            break;
        case O_VERSION:
            ok = strcmp(optarg, "2c") == 0 || strcmp(optarg, "3") == 0;
            o.from.v3 = strcmp(optarg, "3") == 0;
            break;
        case O_COMMUNITY:
            o.from.community = optarg;
            ok = strlen(optarg) < 128;
            break;
        case O_USER:
            o.from.user = optarg;
            ok = strlen(optarg) > 0 && strlen(optarg) <= 32;
            break;
        case O_ENGINE:
            ok = parse_hex(optarg, o.from.engine, sizeof(o.from.engine), &o.from.engine_len) &&
                 o.from.engine_len >= 5;
            break;
        case O_AUTH_PASS:
            o.from.auth_pass = optarg;
            ok = strlen(optarg) >= 8; /* RFC 3414: at least 8 characters */
            break;
        case O_PRIV_PASS:
            o.from.priv_pass = optarg;
            ok = strlen(optarg) >= 8;
            break;
        case O_DRY:
            o.dry_run = true;
            break;
        case O_SEED:
            ok = parse_u64(optarg, &o.seed);
            break;
        case O_MUTATE:
            o.mutate = true;
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "opsbench: bad value for %s: %s\n", argv[optind - 1], optarg);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "opsbench: unexpected argument %s\n", argv[optind]);
        return 2;
    }
    if (o.duration > MAX_DURATION_S) {
        o.duration = MAX_DURATION_S;
    }
    if ((uint64_t)o.devices * o.interfaces > 100000000ULL) {
        fprintf(stderr, "opsbench: devices x interfaces too large\n");
        return 2;
    }
    if (o.from.v3 && o.from.engine_len == 0) {
        static const unsigned char def[] = {0x80, 0x00, 0xe2, 0xf0, 0x01, 0x01};
        memcpy(o.from.engine, def, sizeof(def));
        o.from.engine_len = sizeof(def);
    }
    if (o.from.priv_pass && !o.from.auth_pass) {
        fprintf(stderr, "opsbench: --priv-pass needs --auth-pass (authPriv)\n");
        return 2;
    }
    if (o.from.v3 && o.from.auth_pass) {
        unsigned char k[20];
        usm_key(o.from.auth_pass, o.from.engine, o.from.engine_len, o.from.auth_key);
        if (o.from.priv_pass) {
            usm_key(o.from.priv_pass, o.from.engine, o.from.engine_len, k);
            memcpy(o.from.priv_key, k, sizeof o.from.priv_key);
        }
    }
    rng_state ^= o.seed * 0x9e3779b97f4a7c15ULL + 1;
    usm_salt = rng();
    return cmd_traps(&o);
}
