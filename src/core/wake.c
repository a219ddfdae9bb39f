/* Cross-thread wake-ups on an eventfd (see include/opsc/wake.h). */
#include "opsc/wake.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void on_readable(uv_poll_t *h, int status, int events) {
    opsc_wake_t *w = h->data;
    (void)status;
    (void)events;
    uint64_t n;
    /* Reset the counter; EAGAIN (nothing pending) is fine too. */
    while (read(w->fd, &n, sizeof(n)) < 0 && errno == EINTR) {
    }
    w->cb(w);
}

int opsc_wake_init(uv_loop_t *loop, opsc_wake_t *w, opsc_wake_cb cb) {
    w->cb = cb;
    w->done = NULL;
    w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->fd < 0) {
        return -errno;
    }
    int rc = uv_poll_init(loop, &w->poll, w->fd);
    if (rc == 0) {
        w->poll.data = w;
        rc = uv_poll_start(&w->poll, UV_READABLE, on_readable);
    }
    if (rc != 0) {
        close(w->fd);
        w->fd = -1;
    }
    return rc;
}

void opsc_wake_send(opsc_wake_t *w) {
    uint64_t one = 1;
    /* EAGAIN only when the counter is at 2^64-2: the loop is already due to wake. */
    while (write(w->fd, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
}

static void on_closed(uv_handle_t *h) {
    opsc_wake_t *w = h->data;
    close(w->fd);
    w->fd = -1;
    if (w->done) {
        w->done(w);
    }
}

void opsc_wake_close(opsc_wake_t *w, void (*done)(opsc_wake_t *w)) {
    w->done = done;
    uv_close((uv_handle_t *)&w->poll, on_closed);
}

int opsc_wake_is_closing(const opsc_wake_t *w) {
    return uv_is_closing((const uv_handle_t *)&w->poll);
}
