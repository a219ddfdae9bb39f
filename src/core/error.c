/*
 * Error codes: OpsConductor's own codes come from OPSC_ERRNO_MAP; libuv's
 * (negative errno values on Linux) are passed to libuv.
 *
 * libuv's uv_strerror()/uv_err_name() strdup() a fresh "Unknown system error
 * N" string for codes they do not know, which would leak on every call, so we
 * only hand them codes listed in UV_ERRNO_MAP and answer "unknown error"
 * ourselves for everything else.
 */
#include <stdarg.h>
#include <stdio.h>
#include "opsc/error.h"

#include <uv.h>

static int opsc__uv_known(int err) {
    switch (err) {
#define OPSC__UV_CASE(name, msg) case UV_##name:
        UV_ERRNO_MAP(OPSC__UV_CASE)
#undef OPSC__UV_CASE
        return 1;
    default:
        return 0;
    }
}

const char *opsc_strerror(int err) {
    switch (err) {
    case 0:
        return "success";
#define OPSC__ERR_STR(name, n, msg)                                                                \
    case OPSC_E##name:                                                                             \
        return msg;
        OPSC_ERRNO_MAP(OPSC__ERR_STR)
#undef OPSC__ERR_STR
    default:
        break;
    }
    if (opsc__uv_known(err)) {
        return uv_strerror(err);
    }
    return "unknown error";
}

const char *opsc_err_name(int err) {
    switch (err) {
    case 0:
        return "OK";
#define OPSC__ERR_NAME(name, n, msg)                                                               \
    case OPSC_E##name:                                                                             \
        return "OPSC_E" #name;
        OPSC_ERRNO_MAP(OPSC__ERR_NAME)
#undef OPSC__ERR_NAME
    default:
        break;
    }
    if (opsc__uv_known(err)) {
        return uv_err_name(err);
    }
    return "UNKNOWN";
}

void opsc_errbuf_printf(char *errbuf, size_t errlen, const char *fmt, ...) {
    if (errbuf == NULL || errlen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
    for (char *p = errbuf; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\r') {
            *p = ' ';
        }
    }
}
