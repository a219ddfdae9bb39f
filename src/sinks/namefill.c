/*
 * Device names from reverse DNS (see include/opsc/namefill.h).
 *
 * Each lookup in flight holds a small request (alert id, address, the title
 * with its name mark). The resolver owns it until it answers; destroying
 * the filler only detaches it (the requests see `f->detached` and free
 * themselves), because the resolver may still answer while the server shuts
 * down.
 */
#include "opsc/namefill.h"

#include <stdio.h>
#include <string.h>

#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/metrics.h"
#include "opsc/normalize.h"

#define LOG "dns"
#define TITLE_CHARS 255 /* alerts.title VARCHAR(255) */

struct opsc_namefill_s {
    opsc_dns_t *dns;
    opsc_namefill_submit_cb submit;
    void *arg;
    int detached;
    size_t requests; /* in flight; the memory goes with the last one after detach */
    uint64_t filled_at_create, updated_later, no_name, refused, update_refused;
};

typedef struct {
    opsc_namefill_t *f;
    opsc_uuid_t id;
    char *title; /* with OPSC_NAME_MARK */
} request_t;

char *opsc_namefill_title(const char *title, const char *name, size_t max_chars) {
    size_t marks = 0, tlen = strlen(title), nlen = strlen(name);
    for (const char *p = title; *p; p++) {
        marks += *p == OPSC_NAME_MARK;
    }
    opsc_buf_t b = OPSC_BUF_INIT;
    if (opsc_buf_reserve(&b, tlen + marks * nlen) != 0) {
        return NULL;
    }
    size_t chars = 0;
    for (const char *p = title; *p; p++) {
        const char *piece = p;
        size_t len = 1;
        if (*p == OPSC_NAME_MARK) {
            piece = name;
            len = nlen;
        }
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)piece[i];
            if ((c & 0xc0) != 0x80 && chars++ == max_chars) { /* a character starts here */
                return b.base;
            }
            opsc_buf_append(&b, &piece[i], 1);
        }
    }
    return b.base ? b.base : opsc_strdup("");
}

/* Names from DNS become part of titles and the device_name column: keep them printable. */
static int name_ok(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > 253) {
        return 0;
    }
    for (const char *p = name; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static void request_done(request_t *r) {
    opsc_namefill_t *f = r->f;
    opsc_free(r->title);
    opsc_free(r);
    if (--f->requests == 0 && f->detached) {
        opsc_free(f);
    }
}

static void on_name(const char *ip, const char *name, unsigned ttl_s, void *arg) {
    (void)ttl_s;
    request_t *r = arg;
    opsc_namefill_t *f = r->f;
    if (f->detached) {
        request_done(r);
        return;
    }
    if (!name || !name_ok(name)) {
        f->no_name++;
        request_done(r);
        return;
    }
    opsc_change_t *c = opsc_change_new(OPSC_CHANGE_UPDATE);
    char *title = opsc_namefill_title(r->title, name, TITLE_CHARS);
    char *dev = opsc_strdup(name);
    if (!c || !title || !dev) {
        opsc_change_free(c);
        opsc_free(title);
        opsc_free(dev);
        request_done(r);
        return;
    }
    c->id = r->id;
    c->at_us = opsc_now_us();
    snprintf(c->actor, sizeof(c->actor), "system");
    snprintf(c->action, sizeof(c->action), "updated");
    c->upd->mask = OPSC_UPD_DEVICE_NAME | OPSC_UPD_TITLE;
    c->upd->device_name = dev;
    c->upd->title = title;
    if (f->submit(c, f->arg) != 0) {
        f->update_refused++;
        opsc_log_debug(LOG, "name %s for %s not written: the store is full", name, ip);
        opsc_change_free(c);
    } else {
        f->updated_later++;
    }
    request_done(r);
}

opsc_namefill_t *opsc_namefill_create(opsc_dns_t *dns, opsc_namefill_submit_cb submit, void *arg) {
    opsc_namefill_t *f = opsc_calloc(1, sizeof(*f));
    if (f) {
        f->dns = dns;
        f->submit = submit;
        f->arg = arg;
    }
    return f;
}

void opsc_namefill_change(opsc_namefill_t *f, opsc_change_t *c) {
    if (c->kind != OPSC_CHANGE_CREATE || !c->title_for_name) {
        return;
    }
    char *tmpl = c->title_for_name;
    c->title_for_name = NULL;
    opsc_alert_t *a = c->alert;
    if (!f || !f->dns || !a || a->device_name || !a->device_ip) {
        opsc_free(tmpl);
        return;
    }
    const char *name = NULL;
    request_t *r = opsc_calloc(1, sizeof(*r));
    if (!r) {
        opsc_free(tmpl);
        return;
    }
    r->f = f;
    r->id = a->id;
    r->title = tmpl;
    f->requests++;
    int rc = opsc_dns_reverse(f->dns, a->device_ip, &name, on_name, r);
    if (rc == 0) {
        return; /* the answer comes as an UPDATE */
    }
    if (rc == 1 && name && name_ok(name)) {
        char *title = opsc_namefill_title(tmpl, name, TITLE_CHARS);
        char *dev = opsc_strdup(name);
        if (title && dev) {
            opsc_free(a->title);
            a->title = title;
            opsc_free(a->device_name);
            a->device_name = dev;
            f->filled_at_create++;
        } else {
            opsc_free(title);
            opsc_free(dev);
        }
    } else if (rc == 1) {
        f->no_name++;
    } else {
        f->refused++;
    }
    request_done(r);
}

void opsc_namefill_destroy(opsc_namefill_t *f) {
    if (!f) {
        return;
    }
    f->detached = 1;
    if (f->requests == 0) {
        opsc_free(f);
    }
}

void opsc_namefill_metrics(opsc_buf_t *out, void *arg) {
    opsc_namefill_t *f = arg;
    opsc_metrics_family(out, "opsc_alert_names_total", "counter",
                        "Device names of new alerts from reverse DNS, by how they were filled");
    opsc_metrics_sample_u64(out, "opsc_alert_names_total", "outcome=\"at_create\"",
                            f->filled_at_create);
    opsc_metrics_sample_u64(out, "opsc_alert_names_total", "outcome=\"update\"", f->updated_later);
    opsc_metrics_sample_u64(out, "opsc_alert_names_total", "outcome=\"no_name\"", f->no_name);
    opsc_metrics_sample_u64(out, "opsc_alert_names_total", "outcome=\"lookup_refused\"",
                            f->refused);
    opsc_metrics_sample_u64(out, "opsc_alert_names_total", "outcome=\"update_refused\"",
                            f->update_refused);
}
