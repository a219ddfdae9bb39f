/*
 * RFC 6455 framing. The reader works on whatever bytes arrived: a frame
 * split across reads waits in the caller's buffer until whole, so the only
 * state kept here is the data message being assembled from fragments.
 */
#include "opsc/ws.h"

#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>

#include <uv.h>

#include "opsc/error.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

int opsc_ws_accept_key(const char *key, char out[29]) {
    unsigned char sha[20];
    char in[128];
    size_t olen = 0;
    size_t klen = key ? strlen(key) : 0;
    /* The key is 16 random bytes in base64: 24 characters. */
    if (klen != 24) {
        return UV_EINVAL;
    }
    memcpy(in, key, klen);
    memcpy(in + klen, WS_GUID, sizeof(WS_GUID));
    if (mbedtls_sha1_ret((const unsigned char *)in, klen + sizeof(WS_GUID) - 1, sha) != 0 ||
        mbedtls_base64_encode((unsigned char *)out, 29, &olen, sha, sizeof(sha)) != 0 ||
        olen != 28) {
        return UV_EINVAL;
    }
    return 0;
}

int opsc_ws_utf8_valid(const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i];
        int k = b < 0x80             ? 0
                : (b & 0xE0) == 0xC0 ? 1
                : (b & 0xF0) == 0xE0 ? 2
                : (b & 0xF8) == 0xF0 ? 3
                                     : -1;
        if (k < 0 || (k == 1 && b < 0xC2) || (k == 3 && b > 0xF4) || n - i <= (size_t)k) {
            return 0;
        }
        uint32_t cp = k == 0 ? b : (uint32_t)(b & (0x3F >> k));
        for (int j = 1; j <= k; j++) {
            if ((p[i + (size_t)j] & 0xC0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (p[i + (size_t)j] & 0x3F);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10FFFF))) {
            return 0;
        }
        i += (size_t)k + 1;
    }
    return 1;
}

/* One frame's header: 0 need more, 1 parsed, or a negative close code. */
static int frame_header(const uint8_t *b, size_t len, int *fin, int *op, uint64_t *plen,
                        size_t *hlen) {
    if (len < 2) {
        return 0;
    }
    *fin = (b[0] & 0x80) != 0;
    *op = b[0] & 0x0F;
    if ((b[0] & 0x70) != 0 || !(b[1] & 0x80)) {
        return -OPSC_WS_PROTOCOL_ERROR; /* no extension negotiated; clients must mask */
    }
    uint64_t n = b[1] & 0x7F;
    size_t h = 2;
    if (n == 126) {
        if (len < 4) {
            return 0;
        }
        n = ((uint64_t)b[2] << 8) | b[3];
        h = 4;
    } else if (n == 127) {
        if (len < 10) {
            return 0;
        }
        n = 0;
        for (int i = 0; i < 8; i++) {
            n = (n << 8) | b[2 + i];
        }
        if (n >> 63) {
            return -OPSC_WS_PROTOCOL_ERROR;
        }
        h = 10;
    }
    *plen = n;
    *hlen = h + 4; /* the mask */
    return 1;
}

static int check_opcode(const opsc_ws_reader_t *r, int fin, int op, uint64_t plen) {
    switch (op) {
    case OPSC_WS_CLOSE:
    case OPSC_WS_PING:
    case OPSC_WS_PONG:
        return !fin || plen > 125 ? -OPSC_WS_PROTOCOL_ERROR : 0;
    case OPSC_WS_TEXT:
    case OPSC_WS_BINARY:
        return r->msg_opcode != 0 ? -OPSC_WS_PROTOCOL_ERROR : 0; /* the last one unfinished */
    case OPSC_WS_CONT:
        return r->msg_opcode == 0 ? -OPSC_WS_PROTOCOL_ERROR : 0; /* nothing to continue */
    default:
        return -OPSC_WS_PROTOCOL_ERROR;
    }
}

int opsc_ws_read(opsc_ws_reader_t *r, uint8_t *buf, size_t len, size_t *used, opsc_ws_msg_t *msg) {
    *used = 0;
    for (;;) {
        uint8_t *b = buf + *used;
        size_t avail = len - *used;
        int fin, op;
        uint64_t plen;
        size_t hlen;
        int rc = frame_header(b, avail, &fin, &op, &plen, &hlen);
        if (rc <= 0) {
            return rc;
        }
        if ((rc = check_opcode(r, fin, op, plen)) != 0) {
            return rc;
        }
        /* Refuse what can never fit before waiting for it. */
        if (op < OPSC_WS_CLOSE && plen > r->max_message - (op == OPSC_WS_CONT ? r->msg.len : 0)) {
            return -OPSC_WS_TOO_BIG;
        }
        if (avail < hlen || avail - hlen < plen) {
            return 0;
        }
        uint8_t *mask = b + hlen - 4, *p = b + hlen;
        for (uint64_t i = 0; i < plen; i++) {
            p[i] ^= mask[i & 3];
        }
        *used += hlen + (size_t)plen;
        if (op >= OPSC_WS_CLOSE) {
            if (op == OPSC_WS_CLOSE &&
                (plen == 1 || (plen > 2 && !opsc_ws_utf8_valid(p + 2, plen - 2)))) {
                return plen == 1 ? -OPSC_WS_PROTOCOL_ERROR : -OPSC_WS_INVALID_DATA;
            }
            *msg = (opsc_ws_msg_t){.opcode = op, .data = p, .len = (size_t)plen};
            return 1;
        }
        if (op != OPSC_WS_CONT) {
            r->msg_opcode = op;
            r->msg.len = 0;
        }
        if (fin && op != OPSC_WS_CONT) {
            /* Unfragmented: hand out the bytes where they are. */
            r->msg_opcode = 0;
            if (op == OPSC_WS_TEXT && !opsc_ws_utf8_valid(p, (size_t)plen)) {
                return -OPSC_WS_INVALID_DATA;
            }
            *msg = (opsc_ws_msg_t){.opcode = op, .data = p, .len = (size_t)plen};
            return 1;
        }
        if (opsc_buf_append(&r->msg, p, (size_t)plen) != 0) {
            return -OPSC_WS_TOO_BIG;
        }
        if (fin) {
            int mop = r->msg_opcode;
            r->msg_opcode = 0;
            if (mop == OPSC_WS_TEXT && !opsc_ws_utf8_valid((uint8_t *)r->msg.base, r->msg.len)) {
                return -OPSC_WS_INVALID_DATA;
            }
            *msg =
                (opsc_ws_msg_t){.opcode = mop, .data = (uint8_t *)r->msg.base, .len = r->msg.len};
            return 1;
        }
    }
}

void opsc_ws_reader_free(opsc_ws_reader_t *r) {
    opsc_buf_free(&r->msg);
    r->msg_opcode = 0;
}

size_t opsc_ws_header(uint8_t out[10], int opcode, uint64_t len) {
    out[0] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++) {
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    }
    return 10;
}
