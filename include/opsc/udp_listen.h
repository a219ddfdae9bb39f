#ifndef OPSC_UDP_LISTEN_H
#define OPSC_UDP_LISTEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "opsc/buf.h"
#include "opsc/config.h"

/*
 * UDP listeners for SNMP notifications (snmp.listen). Binds every address
 * with recvmmsg batching; each datagram is handed to `on_datagram` on the loop
 * thread. The trap pipeline (issue 3) consumes them; until it is attached,
 * datagrams are counted and dropped under reason "no_consumer".
 *
 * Each socket asks for a 16 MiB receive buffer (SO_RCVBUFFORCE, then
 * SO_RCVBUF) and logs what the kernel granted. Listener names, used in logs
 * and in the `listener` metric label, follow snmp.listen syntax:
 * "udp:0.0.0.0:162", "udp6:[::]:162".
 */

typedef struct opsc_udp_listen_s opsc_udp_listen_t;

/**
 * One datagram. `data` is valid only during the call (it points into the
 * socket's receive batch); `from` is the sender; `recv_ns` is uv_hrtime() at
 * receipt. Called on the loop thread; it must not block. It may call
 * opsc_udp_listen_close (later datagrams of the batch are then dropped).
 */
typedef void (*opsc_udp_datagram_cb)(const void *data, size_t len, const struct sockaddr *from,
                                     uint64_t recv_ns, int listener, void *arg);

/**
 * Bind every address of `listen` (udp6 sockets are IPv6-only) and start
 * receiving. `rcvbuf` is the receive buffer to ask for (0: 16 MiB). `cb` may be NULL (datagrams counted as dropped, "no_consumer").
 * On failure returns the libuv error (or OPSC_ECONFIG / OPSC_ENOMEM), writes
 * one line naming the address into errbuf ("snmp.listen udp:0.0.0.0:162:
 * permission denied (...)"), and starts closing what it opened: run the loop
 * once more before uv_loop_close.
 */
int opsc_udp_listen_start(uv_loop_t *loop, const opsc_listen_list_t *listen, size_t rcvbuf,
                          opsc_udp_datagram_cb cb, void *arg, opsc_udp_listen_t **out, char *errbuf,
                          size_t errlen);
/**
 * Send one datagram from socket `listener` (an INFORM Response, a Report) to
 * `to`, without blocking (uv_udp_try_send). 0 or a negative error; counted.
 */
int opsc_udp_listen_send(opsc_udp_listen_t *u, int listener, const void *data, size_t len,
                         const struct sockaddr *to);
/**
 * Read at most `max` datagrams per socket per loop iteration (0: only
 * libuv's own limit, about 40 with recvmmsg). Reaching it pauses the socket
 * until just before the next poll, so timers and other handles run in
 * between; nothing is lost (the kernel keeps what was not read). Loop thread.
 */
void opsc_udp_listen_set_max_per_wakeup(opsc_udp_listen_t *u, unsigned max);
/** Times any socket paused for the cap (tests, diagnostics). */
uint64_t opsc_udp_listen_pauses(const opsc_udp_listen_t *u);
/** Close every socket; `done(arg)` (may be NULL) after all closed and memory freed. Call once. */
void opsc_udp_listen_close(opsc_udp_listen_t *u, void (*done)(void *arg), void *arg);
/**
 * Families opsc_snmp_* per listener, plus the kernel's UDP counters from
 * /proc/net/snmp{,6} (opsc_udp_kernel_*; they cover the whole network
 * namespace, not only these sockets). Signature of opsc_metrics_collect_cb.
 */
void opsc_udp_listen_metrics(opsc_buf_t *out, void *u);
/** Bound port of listen address idx (useful with port 0), or a negative error. */
int opsc_udp_listen_port(const opsc_udp_listen_t *u, int idx);
/** Receive buffer the kernel granted for socket idx, in bytes as getsockopt reports it. */
int opsc_udp_listen_rcvbuf(const opsc_udp_listen_t *u, int idx);

#endif
