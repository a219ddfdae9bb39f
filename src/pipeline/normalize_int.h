#ifndef OPSC_PIPELINE_NORMALIZE_INT_H
#define OPSC_PIPELINE_NORMALIZE_INT_H

/* Helpers shared by mibnames.c, oidmap.c and normalize.c; not part of the public API. */

#include <stddef.h>
#include <stdint.h>

/*
 * Dotted decimal "1.3.6.1" into out (truncated at outlen-1, NUL-terminated);
 * returns the length written. A local, allocation-free formatter: the hot
 * path formats discriminators with it, and it keeps this module free of a
 * link-time dependency on the decoder's trap.c.
 */
size_t opsc__oid_format(const uint32_t *oid, uint32_t len, char *out, size_t outlen);

/* Decimal digits of v into out (at least 11 bytes, NUL-terminated); returns the length. */
size_t opsc__u32_format(uint32_t v, char *out);

/*
 * Strict dotted decimal: the first slen bytes of s, an optional leading dot,
 * then one or more sub-identifiers (0..4294967295, no leading zeros) joined
 * by single dots. Returns the count written to oid (at most max) or
 * OPSC_EPARSE with a static reason in *why (when why is not NULL).
 */
int opsc__oid_parse(const char *s, size_t slen, uint32_t *oid, uint32_t max, const char **why);

/*
 * An object named the way a template or a mapping's discriminator names it:
 * a numeric OID ("1.3.6.1.2.1.2.2.1.2", leading dot allowed), a MIB name
 * ("ifDescr" or "IF-MIB::ifDescr"), optionally followed by a numeric instance
 * (".3"). The first `slen` bytes of s are read. Returns the OID length
 * written to oid, OPSC_ENOTFOUND for an unknown name, OPSC_EPARSE otherwise.
 */
int opsc__object_resolve(const char *s, size_t slen, uint32_t *oid, uint32_t max);

#endif
