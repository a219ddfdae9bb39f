/*
 * Our SNMP engine identity on disk: the engine ID (generated once, so INFORM
 * senders that learnt it keep working across restarts) and snmpEngineBoots
 * (RFC 3414 2.2.2: incremented on every start so that a Report or Response
 * from a previous life cannot be replayed into the time window).
 *
 * Blocking file I/O, start-up only. Files are replaced atomically (write a
 * temporary, fsync, rename), so a crash leaves the old or the new value.
 * No net-snmp here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "opsc/config.h"
#include "opsc/error.h"
#include "opsc/fsutil.h"
#include "opsc/snmp_decode.h"

#define OPSC__ENGINE_ID_FILE "snmp_engine_id"
#define OPSC__ENGINE_BOOTS_FILE "snmp_engine_boots"
#define OPSC__BOOTS_MAX 2147483647u

/* Write `text` to dir/name through dir/name.tmp + rename. 0 or negative errno. */
static int opsc__write_atomic(const char *dir, const char *name, const char *text) {
    char path[4096], tmp[4200];
    size_t len = strlen(text);
    int fd;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
        return -ENAMETOOLONG;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -errno;
    }
    ssize_t w = write(fd, text, len);
    int err = w == (ssize_t)len ? 0 : (w < 0 ? -errno : -EIO);
    if (err == 0 && fsync(fd) != 0) {
        err = -errno;
    }
    if (close(fd) != 0 && err == 0) {
        err = -errno;
    }
    if (err == 0 && rename(tmp, path) != 0) {
        err = -errno;
    }
    if (err != 0) {
        unlink(tmp);
        return err;
    }
    /* The rename itself is durable once the directory is synced. */
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    return 0;
}

/* Read dir/name (small) into a heap string; *missing = 1 when it does not exist. */
static int opsc__read_small(const char *dir, const char *name, char **out, int *missing) {
    char path[4096];
    size_t len;
    *out = NULL;
    *missing = 0;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
        return -ENAMETOOLONG;
    }
    int rc = opsc_read_file(path, out, &len, 4096);
    if (rc == -ENOENT) {
        *missing = 1;
        return 0;
    }
    return rc;
}

int opsc_snmp_engine_id_load_or_create(const char *data_dir, unsigned char *out, size_t *len,
                                       char *err, size_t errlen) {
    char *text = NULL;
    int missing;
    int rc = opsc__read_small(data_dir, OPSC__ENGINE_ID_FILE, &text, &missing);
    if (rc != 0) {
        opsc_errbuf_printf(err, errlen, "cannot read %s/%s: %s", data_dir, OPSC__ENGINE_ID_FILE,
                           opsc_strerror(rc));
        return rc;
    }
    if (!missing) {
        opsc_engine_id_t id;
        char reason[128];
        char *p = text;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        size_t n = strlen(p);
        while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' ')) {
            p[--n] = '\0';
        }
        rc = opsc_engine_id_parse(p, &id, reason, sizeof(reason));
        opsc_free(text);
        if (rc != 0) {
            /* Never replace it silently: INFORM senders know it and would stop working. */
            opsc_errbuf_printf(err, errlen,
                               "%s/%s: expected an engine ID in hex (5 to %d bytes), got %s; fix "
                               "or remove the file (a new ID is then generated)",
                               data_dir, OPSC__ENGINE_ID_FILE, OPSC_SNMP_ENGINE_ID_MAX, reason);
            return OPSC_ECONFIG;
        }
        memcpy(out, id.bytes, id.len);
        *len = id.len;
        return 0;
    }

    /* RFC 3411 SnmpEngineID: 1 + enterprise 8072 (net-snmp), format 5 = octets. */
    opsc_engine_id_t id;
    memset(&id, 0, sizeof(id));
    static const unsigned char prefix[] = {0x80, 0x00, 0x1f, 0x88, 0x05};
    memcpy(id.bytes, prefix, sizeof(prefix));
    id.len = sizeof(prefix) + 12;
    if (getrandom(id.bytes + sizeof(prefix), 12, 0) != 12) {
        rc = -errno;
        opsc_errbuf_printf(err, errlen, "cannot generate an engine ID: getrandom: %s",
                           opsc_strerror(rc));
        return rc;
    }
    char line[2 * OPSC_SNMP_ENGINE_ID_MAX + 8] = "0x";
    opsc_engine_id_format(&id, line + 2, sizeof(line) - 3);
    strcat(line, "\n");
    rc = opsc__write_atomic(data_dir, OPSC__ENGINE_ID_FILE, line);
    if (rc != 0) {
        opsc_errbuf_printf(err, errlen, "cannot write %s/%s: %s", data_dir, OPSC__ENGINE_ID_FILE,
                           opsc_strerror(rc));
        return rc;
    }
    memcpy(out, id.bytes, id.len);
    *len = id.len;
    return 0;
}

int opsc_snmp_engine_boots_next(const char *data_dir, uint32_t *boots, char *err, size_t errlen) {
    char *text = NULL;
    int missing;
    unsigned long prev = 0;
    int rc = opsc__read_small(data_dir, OPSC__ENGINE_BOOTS_FILE, &text, &missing);
    if (rc != 0) {
        opsc_errbuf_printf(err, errlen, "cannot read %s/%s: %s", data_dir, OPSC__ENGINE_BOOTS_FILE,
                           opsc_strerror(rc));
        return rc;
    }
    if (!missing) {
        char *end = NULL;
        errno = 0;
        prev = strtoul(text, &end, 10);
        while (end != NULL && (*end == '\n' || *end == '\r' || *end == ' ')) {
            end++;
        }
        int bad = errno != 0 || end == text || end == NULL || *end != '\0' || text[0] == '-' ||
                  prev > OPSC__BOOTS_MAX;
        opsc_free(text);
        if (bad) {
            opsc_errbuf_printf(err, errlen,
                               "%s/%s: expected a number from 0 to %u; fix or remove the file",
                               data_dir, OPSC__ENGINE_BOOTS_FILE, OPSC__BOOTS_MAX);
            return OPSC_ECONFIG;
        }
    }
    /* RFC 3414 2.2.2: at the maximum it stays there (the engine then needs a new ID). */
    uint32_t next = prev >= OPSC__BOOTS_MAX ? OPSC__BOOTS_MAX : (uint32_t)prev + 1;
    char line[16];
    snprintf(line, sizeof(line), "%u\n", (unsigned)next);
    rc = opsc__write_atomic(data_dir, OPSC__ENGINE_BOOTS_FILE, line);
    if (rc != 0) {
        opsc_errbuf_printf(err, errlen, "cannot write %s/%s: %s", data_dir, OPSC__ENGINE_BOOTS_FILE,
                           opsc_strerror(rc));
        return rc;
    }
    *boots = next;
    return 0;
}
