#ifndef OPSC_NAMEFILL_H
#define OPSC_NAMEFILL_H

#include <stddef.h>
#include <stdint.h>

#include "opsc/buf.h"
#include "opsc/change.h"
#include "opsc/dns.h"

/*
 * Device names from reverse DNS, for alerts whose device is not in the
 * devices table. Loop thread only.
 *
 * The pipeline never waits for DNS: a new alert of an unnamed device leaves
 * it with device_name NULL, its title naming the address, and the title
 * rendered once more with OPSC_NAME_MARK where the name goes
 * (change->title_for_name). On its way to the store, such a CREATE asks the
 * resolver: a cached name is filled into the row before it is written (no
 * extra work for the database); otherwise a lookup starts and its answer
 * becomes an UPDATE of device_name and title, submitted through `submit`
 * (ordered after the CREATE, which was submitted first). No name (NXDOMAIN,
 * timeout, a refused lookup) leaves the alert as it is.
 */

typedef struct opsc_namefill_s opsc_namefill_t;

/** Submit an UPDATE change; 0 when taken, non-zero when refused (the change is then freed here). */
typedef int (*opsc_namefill_submit_cb)(opsc_change_t *c, void *arg);

/** `dns` NULL: reverse lookups off (title_for_name is just dropped). */
opsc_namefill_t *opsc_namefill_create(opsc_dns_t *dns, opsc_namefill_submit_cb submit, void *arg);

/**
 * A change on its way to the store: fills a CREATE's device name when it can,
 * frees title_for_name. Other changes pass untouched. Never fails the change.
 */
void opsc_namefill_change(opsc_namefill_t *f, opsc_change_t *c);

/**
 * Detach from the server: answers arriving later are dropped. Call before
 * closing the resolver (whose close runs the remaining callbacks); the
 * memory goes with the last of them.
 */
void opsc_namefill_destroy(opsc_namefill_t *f);

void opsc_namefill_metrics(opsc_buf_t *out, void *f);

/**
 * `title` with every OPSC_NAME_MARK replaced by `name`, cut to `max_chars`
 * characters (UTF-8); allocated, NULL when out of memory.
 */
char *opsc_namefill_title(const char *title, const char *name, size_t max_chars);

#endif
