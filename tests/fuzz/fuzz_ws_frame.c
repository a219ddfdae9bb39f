/*
 * libFuzzer target: the WebSocket frame reader (src/http/ws.c) as the feed
 * drives it: whatever arrives is split into reads of the sizes the input's
 * first byte picks, each read appended to a buffer the reader consumes from.
 * Besides memory safety it checks the contract: a message handed out lies
 * inside the buffer or the reader's own message, `used` never passes the
 * bytes given, and a negative result is one of the close codes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opsc/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) {
        return 0;
    }
    size_t step = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    opsc_ws_reader_t r = {.max_message = 4096};
    uint8_t *buf = malloc(size + 1);
    size_t have = 0, fed = 0;
    while (fed < size) {
        size_t n = size - fed < step ? size - fed : step;
        memcpy(buf + have, data + fed, n);
        have += n;
        fed += n;
        for (;;) {
            size_t used = 0;
            opsc_ws_msg_t m;
            int rc = opsc_ws_read(&r, buf, have, &used, &m);
            if (used > have) {
                abort();
            }
            if (rc < 0) {
                if (rc != -OPSC_WS_PROTOCOL_ERROR && rc != -OPSC_WS_TOO_BIG &&
                    rc != -OPSC_WS_INVALID_DATA) {
                    abort();
                }
                goto done;
            }
            if (rc == 1 && m.opcode != OPSC_WS_TEXT && m.opcode != OPSC_WS_BINARY &&
                m.opcode != OPSC_WS_CLOSE && m.opcode != OPSC_WS_PING && m.opcode != OPSC_WS_PONG) {
                abort();
            }
            if (rc == 1) {
                int in_buf = m.data >= buf && m.data + m.len <= buf + have;
                int in_msg = m.data == (const uint8_t *)r.msg.base && m.len == r.msg.len;
                if (m.len > 0 && !in_buf && !in_msg) {
                    abort();
                }
                if (m.opcode == OPSC_WS_TEXT && !opsc_ws_utf8_valid(m.data, m.len)) {
                    abort();
                }
            }
            memmove(buf, buf + used, have - used);
            have -= used;
            if (rc == 0) {
                break;
            }
        }
    }
done:
    opsc_ws_reader_free(&r);
    free(buf);
    return 0;
}
