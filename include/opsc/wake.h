#ifndef OPSC_WAKE_H
#define OPSC_WAKE_H

#include <uv.h>

/*
 * A cross-thread wake-up for a libuv loop: an eventfd watched by a uv_poll_t.
 * Any thread calls opsc_wake_send; the loop runs `cb` once for however many
 * sends came since it last ran (the eventfd counter coalesces them).
 *
 * Why not uv_async_t: libuv 1.44's uv_async_send marks the handle "busy"
 * around its write(2), and the receiving loop spins (up to ~1,000 pause
 * instructions per wake-up) while a sender is in that window. With the sender
 * and the loop sharing two cores, the sender is often preempted inside it, and
 * a profile of the loop thread writing 8,000 new alerts/s showed 35% of its
 * time in that spin (docs/performance.md). A bare eventfd write has no such
 * window: the wake-ups our rings already coalesce cost one syscall each side.
 */

typedef struct opsc_wake_s opsc_wake_t;
typedef void (*opsc_wake_cb)(opsc_wake_t *w);

struct opsc_wake_s {
    uv_poll_t poll;
    int fd;
    opsc_wake_cb cb;
    void (*done)(opsc_wake_t *w);
    void *data; /* the user's */
};

/** On the loop's thread. 0 or a negative errno. */
int opsc_wake_init(uv_loop_t *loop, opsc_wake_t *w, opsc_wake_cb cb);
/** Any thread, any time between init and close. Never blocks. */
void opsc_wake_send(opsc_wake_t *w);
/** On the loop's thread: stop, then `done` (may be NULL) once the handle closed and the fd is shut. */
void opsc_wake_close(opsc_wake_t *w, void (*done)(opsc_wake_t *w));
int opsc_wake_is_closing(const opsc_wake_t *w);

#endif
