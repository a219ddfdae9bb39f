/* WebSocket framing (src/http/ws.c): accept key, masking, fragmentation, control frames, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "opsc/ws.h"

static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};

/* A client frame: masked (unless masked == 0), payload length encoded minimally. */
static size_t client_frame(uint8_t *out, int fin, int op, const void *p, size_t n, int masked) {
    size_t h = 0;
    out[h++] = (uint8_t)((fin ? 0x80 : 0) | op);
    uint8_t m = masked ? 0x80 : 0;
    if (n < 126) {
        out[h++] = (uint8_t)(m | n);
    } else if (n <= 0xffff) {
        out[h++] = m | 126;
        out[h++] = (uint8_t)(n >> 8);
        out[h++] = (uint8_t)n;
    } else {
        out[h++] = m | 127;
        for (int i = 0; i < 8; i++) {
            out[h++] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        }
    }
    if (masked) {
        memcpy(out + h, mask, 4);
        h += 4;
    }
    for (size_t i = 0; i < n; i++) {
        out[h + i] = ((const uint8_t *)p)[i] ^ (masked ? mask[i & 3] : 0);
    }
    return h + n;
}

static void test_accept_key(void **state) {
    (void)state;
    char out[29];
    /* RFC 6455 section 1.3's example. */
    assert_int_equal(opsc_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_not_equal(opsc_ws_accept_key("short", out), 0);
    assert_int_not_equal(opsc_ws_accept_key(NULL, out), 0);
}

static void test_masked_text(void **state) {
    (void)state;
    opsc_ws_reader_t r = {.max_message = 1024};
    uint8_t buf[256];
    size_t n = client_frame(buf, 1, OPSC_WS_TEXT, "Hello", 5, 1), used;
    opsc_ws_msg_t m;
    /* Byte by byte: nothing until the frame is whole. */
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(opsc_ws_read(&r, buf, k, &used, &m), 0);
        assert_int_equal(used, 0);
    }
    assert_int_equal(opsc_ws_read(&r, buf, n, &used, &m), 1);
    assert_int_equal(used, n);
    assert_int_equal(m.opcode, OPSC_WS_TEXT);
    assert_int_equal(m.len, 5);
    assert_memory_equal(m.data, "Hello", 5);
    opsc_ws_reader_free(&r);
}

static void test_unmasked_refused(void **state) {
    (void)state;
    opsc_ws_reader_t r = {.max_message = 1024};
    uint8_t buf[64];
    size_t n = client_frame(buf, 1, OPSC_WS_TEXT, "x", 1, 0), used;
    opsc_ws_msg_t m;
    assert_int_equal(opsc_ws_read(&r, buf, n, &used, &m), -OPSC_WS_PROTOCOL_ERROR);
    opsc_ws_reader_free(&r);
}

static void test_reserved_bits_and_opcodes(void **state) {
    (void)state;
    opsc_ws_reader_t r = {.max_message = 1024};
    uint8_t buf[64];
    size_t used;
    opsc_ws_msg_t m;
    size_t n = client_frame(buf, 1, OPSC_WS_TEXT, "x", 1, 1);
    buf[0] |= 0x40; /* RSV1 without a negotiated extension */
    assert_int_equal(opsc_ws_read(&r, buf, n, &used, &m), -OPSC_WS_PROTOCOL_ERROR);
    for (int op = 3; op <= 15; op++) {
        if (op >= 8 && op <= 10) {
            continue;
        }
        n = client_frame(buf, 1, op, "x", 1, 1);
        assert_int_equal(opsc_ws_read(&r, buf, n, &used, &m), -OPSC_WS_PROTOCOL_ERROR);
    }
    opsc_ws_reader_free(&r);
}

static void test_fragments_with_control_between(void **state) {
    (void)state;
    opsc_ws_reader_t r = {.max_message = 1024};
    uint8_t buf[256];
    size_t n = 0, used;
    opsc_ws_msg_t m;
    n += client_frame(buf + n, 0, OPSC_WS_TEXT, "Hel", 3, 1);
    n += client_frame(buf + n, 1, OPSC_WS_PING, "p!", 2, 1);
    n += client_frame(buf + n, 0, OPSC_WS_CONT, "lo, ", 4, 1);
    n += client_frame(buf + n, 1, OPSC_WS_CONT, "world", 5, 1);
    size_t off = 0;
    /* The ping comes out first, in the middle of the message. */
    assert_int_equal(opsc_ws_read(&r, buf, n, &used, &m), 1);
    assert_int_equal(m.opcode, OPSC_WS_PING);
    assert_memory_equal(m.data, "p!", 2);
    off += used;
    assert_int_equal(opsc_ws_read(&r, buf + off, n - off, &used, &m), 1);
    off += used;
    assert_int_equal(off, n);
    assert_int_equal(m.opcode, OPSC_WS_TEXT);
    assert_int_equal(m.len, 12);
    assert_memory_equal(m.data, "Hello, world", 12);
    opsc_ws_reader_free(&r);
}

static void test_empty_fragments(void **state) {
    (void)state;
    opsc_ws_reader_t r = {.max_message = 1024};
    uint8_t buf[64];
    size_t used, n;
    opsc_ws_msg_t m;
    n = client_frame(buf, 0, OPSC_WS_TEXT, "", 0, 1);
    n += client_frame(buf + n, 1, OPSC_WS_CONT, "", 0, 1);
    assert_int_equal(opsc_ws_read(&r, buf, n, &used, &m), 1);
    assert_int_equal(used, n);
    assert_int_equal(m.opcode, OPSC_WS_TEXT); /* the message's opcode, not the continuation's */
    assert_int_equal(m.len, 0);
    opsc_ws_reader_free(&r);
}

static void test_bad_continuations(void **state) {
    (void)state;
    opsc_ws_reader_t r = {.max_message = 1024};
    uint8_t buf[128];
    size_t used, n;
    opsc_ws_msg_t m;
    n = client_frame(buf, 1, OPSC_WS_CONT, "x", 1, 1); /* nothing to continue */
    assert_int_equal(opsc_ws_read(&r, buf, n, &used, &m), -OPSC_WS_PROTOCOL_ERROR);
    opsc_ws_reader_free(&r);
    n = client_frame(buf, 0, OPSC_WS_TEXT, "a", 1, 1);
    n += client_frame(buf + n, 1, OPSC_WS_TEXT, "b", 1, 1); /* a new message inside one */
    assert_int_equal(opsc_ws_read(&r, buf, n, &used, &m), -OPSC_WS_PROTOCOL_ERROR);
    opsc_ws_reader_free(&r);
}

static void test_control_frame_rules(void **state) {
    (void)state;
    opsc_ws_reader_t r = {.max_message = 1024};
    uint8_t buf[512], big[200];
    size_t used, n;
    opsc_ws_msg_t m;
    memset(big, 'a', sizeof(big));
    n = client_frame(buf, 0, OPSC_WS_PING, "x", 1, 1); /* fragmented control frame */
    assert_int_equal(opsc_ws_read(&r, buf, n, &used, &m), -OPSC_WS_PROTOCOL_ERROR);
    n = client_frame(buf, 1, OPSC_WS_PING, big, 126, 1); /* over 125 bytes */
    assert_int_equal(opsc_ws_read(&r, buf, n, &used, &m), -OPSC_WS_PROTOCOL_ERROR);
    n = client_frame(buf, 1, OPSC_WS_CLOSE, "\x03", 1, 1); /* a 1-byte close body */
    assert_int_equal(opsc_ws_read(&r, buf, n, &used, &m), -OPSC_WS_PROTOCOL_ERROR);
    n = client_frame(buf, 1, OPSC_WS_CLOSE,
                     "\x03\xe8"
                     "bye",
                     5, 1);
    assert_int_equal(opsc_ws_read(&r, buf, n, &used, &m), 1);
    assert_int_equal(m.opcode, OPSC_WS_CLOSE);
    assert_int_equal((m.data[0] << 8) | m.data[1], 1000);
    opsc_ws_reader_free(&r);
}

static void test_limits(void **state) {
    (void)state;
    opsc_ws_reader_t r = {.max_message = 100};
    uint8_t buf[600], big[300];
    size_t used, n;
    opsc_ws_msg_t m;
    memset(big, 'a', sizeof(big));
    n = client_frame(buf, 1, OPSC_WS_TEXT, big, 100, 1);
    assert_int_equal(opsc_ws_read(&r, buf, n, &used, &m), 1);
    /* Too big is known from the header alone: refused before the payload arrives. */
    n = client_frame(buf, 1, OPSC_WS_BINARY, big, 101, 1);
    assert_int_equal(opsc_ws_read(&r, buf, 4, &used, &m), -OPSC_WS_TOO_BIG);
    /* ... and across fragments. */
    n = client_frame(buf, 0, OPSC_WS_TEXT, big, 60, 1);
    n += client_frame(buf + n, 1, OPSC_WS_CONT, big, 60, 1);
    assert_int_equal(opsc_ws_read(&r, buf, n, &used, &m), -OPSC_WS_TOO_BIG);
    opsc_ws_reader_free(&r);
    /* A 64-bit length with the top bit set. */
    uint8_t huge[14] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
    assert_int_equal(opsc_ws_read(&r, huge, sizeof(huge), &used, &m), -OPSC_WS_PROTOCOL_ERROR);
    /* 16- and 64-bit lengths decode. */
    opsc_ws_reader_t r2 = {.max_message = 1 << 20};
    static uint8_t b2[70000 + 14], p2[70000];
    memset(p2, 'z', sizeof(p2));
    n = client_frame(b2, 1, OPSC_WS_BINARY, p2, 300, 1);
    assert_int_equal(opsc_ws_read(&r2, b2, n, &used, &m), 1);
    assert_int_equal(m.len, 300);
    n = client_frame(b2, 1, OPSC_WS_BINARY, p2, sizeof(p2), 1);
    assert_int_equal(opsc_ws_read(&r2, b2, n, &used, &m), 1);
    assert_int_equal(m.len, sizeof(p2));
    assert_memory_equal(m.data, p2, sizeof(p2));
    opsc_ws_reader_free(&r2);
}

static void test_utf8(void **state) {
    (void)state;
    opsc_ws_reader_t r = {.max_message = 1024};
    uint8_t buf[64];
    size_t used, n;
    opsc_ws_msg_t m;
    n = client_frame(buf, 1, OPSC_WS_TEXT, "caf\xc3\xa9", 5, 1);
    assert_int_equal(opsc_ws_read(&r, buf, n, &used, &m), 1);
    n = client_frame(buf, 1, OPSC_WS_TEXT, "\xc3\x28", 2, 1);
    assert_int_equal(opsc_ws_read(&r, buf, n, &used, &m), -OPSC_WS_INVALID_DATA);
    /* A code point split across fragments is fine. */
    n = client_frame(buf, 0, OPSC_WS_TEXT, "\xe2\x82", 2, 1);
    n += client_frame(buf + n, 1, OPSC_WS_CONT, "\xac", 1, 1);
    assert_int_equal(opsc_ws_read(&r, buf, n, &used, &m), 1);
    assert_int_equal(m.len, 3);
    assert_false(opsc_ws_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3)); /* a surrogate */
    assert_false(opsc_ws_utf8_valid((const uint8_t *)"\xc0\xaf", 2));     /* overlong */
    assert_false(opsc_ws_utf8_valid((const uint8_t *)"\xe2\x82", 2));     /* truncated */
    opsc_ws_reader_free(&r);
}

static void test_server_header(void **state) {
    (void)state;
    uint8_t h[10];
    assert_int_equal(opsc_ws_header(h, OPSC_WS_TEXT, 5), 2);
    assert_int_equal(h[0], 0x81);
    assert_int_equal(h[1], 5);
    assert_int_equal(opsc_ws_header(h, OPSC_WS_TEXT, 126), 4);
    assert_int_equal(h[1], 126);
    assert_int_equal((h[2] << 8) | h[3], 126);
    assert_int_equal(opsc_ws_header(h, OPSC_WS_CLOSE, 70000), 10);
    assert_int_equal(h[0], 0x88);
    assert_int_equal(h[1], 127);
    assert_int_equal(h[7], 0x01);
    assert_int_equal(h[8], 0x11);
    assert_int_equal(h[9], 0x70);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key),
        cmocka_unit_test(test_masked_text),
        cmocka_unit_test(test_unmasked_refused),
        cmocka_unit_test(test_reserved_bits_and_opcodes),
        cmocka_unit_test(test_fragments_with_control_between),
        cmocka_unit_test(test_empty_fragments),
        cmocka_unit_test(test_bad_continuations),
        cmocka_unit_test(test_control_frame_rules),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_server_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
