#ifndef OPSC_WS_H
#define OPSC_WS_H

/*
 * WebSocket framing (RFC 6455, version 13), server side, with no I/O: the
 * handshake's accept key, the reader that turns client bytes into whole
 * messages (fragments joined, control frames interleaved, masking enforced)
 * and the writer's frame header. The feed (src/api/feed.c) does the I/O over
 * the connection's transport, so TLS works the same.
 */

#include <stddef.h>
#include <stdint.h>

#include "opsc/buf.h"

enum {
    OPSC_WS_CONT = 0x0,
    OPSC_WS_TEXT = 0x1,
    OPSC_WS_BINARY = 0x2,
    OPSC_WS_CLOSE = 0x8,
    OPSC_WS_PING = 0x9,
    OPSC_WS_PONG = 0xA,
};

/* Close codes we send. */
enum {
    OPSC_WS_NORMAL = 1000,
    OPSC_WS_GOING_AWAY = 1001,
    OPSC_WS_PROTOCOL_ERROR = 1002,
    OPSC_WS_INVALID_DATA = 1007,
    OPSC_WS_POLICY = 1008,
    OPSC_WS_TOO_BIG = 1009,
    OPSC_WS_TRY_AGAIN_LATER = 1013,
};

/** Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: 28 characters + NUL. */
int opsc_ws_accept_key(const char *key, char out[29]);

typedef struct opsc_ws_reader_s {
    size_t max_message; /* a message (all its fragments) longer than this: 1009 */
    opsc_buf_t msg;     /* the data message being assembled */
    int msg_opcode;     /* its opcode; 0 when none is open */
} opsc_ws_reader_t;

typedef struct opsc_ws_msg_s {
    int opcode;          /* TEXT, BINARY, CLOSE, PING or PONG */
    const uint8_t *data; /* unmasked; valid until the next call */
    size_t len;
} opsc_ws_msg_t;

/**
 * Take the next complete message from buf[0, len) (unmasked in place): 1
 * with *msg filled and *used bytes consumed; 0 when more bytes are needed
 * (*used may be > 0: fragments were taken in); or a negative close code
 * (-1002 protocol error: unmasked frame, reserved bits or opcodes, bad
 * control frame, bad continuation; -1007 text not UTF-8; -1009 too big).
 */
int opsc_ws_read(opsc_ws_reader_t *r, uint8_t *buf, size_t len, size_t *used, opsc_ws_msg_t *msg);
void opsc_ws_reader_free(opsc_ws_reader_t *r);

/** A server frame's header (never masked, FIN set) for a payload of len bytes: its size (2-10). */
size_t opsc_ws_header(uint8_t out[10], int opcode, uint64_t len);

/** 1 when s[0, n) is valid UTF-8. */
int opsc_ws_utf8_valid(const uint8_t *s, size_t n);

#endif
