/*
 * Names from MIB files (snmp.mib_dirs): net-snmp parses the files, and its
 * tree is copied once into our own immutable name table
 * (opsc_mibnames_install), which every thread can read without touching
 * net-snmp. Debian carries no IETF MIB files, so the built-in table stays the
 * source of the everyday names; MIB files add a vendor's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "snmp_netsnmp.h"

#include <net-snmp/library/parse.h>

#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/normalize.h"
#include "snmp_int.h"

#define OID_DEPTH 32 /* opsc_mib_name_t.oid */

typedef struct {
    opsc_mib_name_t *v;
    size_t n, cap;
    char **modules; /* interned by modid */
    size_t nmodules;
    size_t too_deep;
    int nomem;
} walk_t;

static const char *module_of(walk_t *w, int modid) {
    if (modid < 0 || modid > 100000) {
        return "";
    }
    if ((size_t)modid >= w->nmodules) {
        size_t n = (size_t)modid + 64;
        char **m = opsc_realloc(w->modules, n * sizeof(*m));
        if (!m) {
            w->nomem = 1;
            return "";
        }
        memset(m + w->nmodules, 0, (n - w->nmodules) * sizeof(*m));
        w->modules = m;
        w->nmodules = n;
    }
    if (!w->modules[modid]) {
        char buf[256];
        w->modules[modid] = opsc_strdup(module_name(modid, buf));
        if (!w->modules[modid]) {
            w->nomem = 1;
            return "";
        }
    }
    return w->modules[modid];
}

static opsc_mib_kind_t kind_of(const struct tree *tp) {
    if (tp->type == TYPE_TRAPTYPE || tp->type == TYPE_NOTIFTYPE) {
        return OPSC_MIB_NOTIFICATION;
    }
    if (tp->type == TYPE_OBJIDENTITY) {
        return OPSC_MIB_IDENTITY;
    }
    if (tp->type != TYPE_OTHER && !tp->child_list) {
        const struct tree *row = tp->parent;
        return row && (row->indexes || row->augments) ? OPSC_MIB_COLUMN : OPSC_MIB_SCALAR;
    }
    return OPSC_MIB_NODE;
}

static const opsc_mib_enum_t *enums_of(walk_t *w, const struct tree *tp) {
    size_t n = 0;
    for (const struct enum_list *e = tp->enums; e; e = e->next) {
        n++;
    }
    if (n == 0) {
        return NULL;
    }
    opsc_mib_enum_t *v = opsc_calloc(n + 1, sizeof(*v));
    if (!v) {
        w->nomem = 1;
        return NULL;
    }
    size_t i = 0;
    for (const struct enum_list *e = tp->enums; e; e = e->next, i++) {
        v[i].value = e->value;
        v[i].label = opsc_strdup(e->label ? e->label : "");
        if (!v[i].label) {
            w->nomem = 1;
            v[i].label = "";
        }
    }
    return v; /* v[n] = {0, NULL} ends it */
}

static void add(walk_t *w, const struct tree *tp, const uint32_t *oid, uint32_t len) {
    if (w->n == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 1024;
        opsc_mib_name_t *nv = opsc_realloc(w->v, ncap * sizeof(*nv));
        if (!nv) {
            w->nomem = 1;
            return;
        }
        w->v = nv;
        w->cap = ncap;
    }
    opsc_mib_name_t *e = &w->v[w->n];
    memset(e, 0, sizeof(*e));
    e->name = opsc_strdup(tp->label);
    if (!e->name) {
        w->nomem = 1;
        return;
    }
    e->module = module_of(w, tp->modid);
    e->kind = kind_of(tp);
    e->enums = enums_of(w, tp);
    e->oid_len = len;
    memcpy(e->oid, oid, len * sizeof(uint32_t));
    w->n++;
}

/* Depth-first with an explicit path; net-snmp's tree is a few levels deep, not recursive data. */
static void walk(walk_t *w, const struct tree *tp, uint32_t *oid, uint32_t depth) {
    for (; tp && !w->nomem; tp = tp->next_peer) {
        if (depth >= OID_DEPTH || tp->subid > UINT32_MAX) {
            w->too_deep++;
            continue;
        }
        oid[depth] = (uint32_t)tp->subid;
        if (tp->label && tp->label[0]) {
            add(w, tp, oid, depth + 1);
        }
        walk(w, tp->child_list, oid, depth + 1);
    }
}

int opsc__snmp_load_mibs(const char *const *dirs, size_t ndirs, const char *log_component,
                         char *err, size_t errlen) {
    if (ndirs == 0 || opsc_mibnames_extra_count() > 0) {
        return 0;
    }
    size_t files = 0;
    for (size_t i = 0; i < ndirs; i++) {
        struct stat st;
        if (stat(dirs[i], &st) != 0 || !S_ISDIR(st.st_mode)) {
            opsc_errbuf_printf(err, errlen, "snmp.mib_dirs: %s: %s", dirs[i],
                               errno ? strerror(errno) : "not a directory");
            return OPSC_ECONFIG;
        }
        int n = add_mibdir(dirs[i]);
        if (n < 0) {
            opsc_errbuf_printf(err, errlen, "snmp.mib_dirs: %s: net-snmp cannot read it",
                               dirs[i]);
            return OPSC_ECONFIG;
        }
        files += (size_t)n;
    }
    read_all_mibs();
    walk_t w;
    memset(&w, 0, sizeof(w));
    uint32_t oid[OID_DEPTH];
    walk(&w, get_tree_head(), oid, 0);
    if (w.nomem) {
        opsc_errbuf_printf(err, errlen, "snmp.mib_dirs: out of memory reading MIB names");
        return OPSC_ENOMEM; /* what was allocated stays: start-up stops anyway */
    }
    int rc = opsc_mibnames_install(w.v, w.n);
    if (rc != 0) {
        opsc_errbuf_printf(err, errlen, "snmp.mib_dirs: cannot install the MIB names: %s",
                           opsc_strerror(rc));
        return rc;
    }
    opsc_free(w.modules); /* the strings stay: names point at them */
    opsc_log_info(log_component ? log_component : "snmp",
                  "MIB files: %zu modules indexed in %zu directories, %zu names "
                  "(%zu nodes deeper than %d sub-identifiers left numeric)",
                  files, ndirs, w.n, w.too_deep, OID_DEPTH);
    return 0;
}
