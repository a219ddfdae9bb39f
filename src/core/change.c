/*
 * Change records (include/opsc/change.h) and the UPDATE patch arithmetic the
 * store needs to coalesce several UPDATEs of one alert, or fold them into its
 * CREATE, before anything reaches the database.
 *
 * custom_patch is JSON text merged with jansson: UPDATEs are rare (a flapping
 * mark, a reverse-DNS name), so parsing them costs nothing that matters.
 */
#include "opsc/change.h"

#include <string.h>

#include <jansson.h>

#include "opsc/buf.h"
#include "opsc/error.h"

opsc_change_t *opsc_change_new(opsc_change_kind_t kind) {
    opsc_change_t *c = opsc_calloc(1, sizeof(*c));
    if (c) {
        c->kind = kind;
        if (kind == OPSC_CHANGE_UPDATE && !(c->upd = opsc_calloc(1, sizeof(*c->upd)))) {
            opsc_free(c);
            return NULL;
        }
    }
    return c;
}

void opsc_change_free(opsc_change_t *c) {
    if (c) {
        opsc_alert_free(c->alert);
        opsc_free(c->title_for_name);
        opsc_free(c->reply);
        opsc_alert_update_free(c->upd);
        opsc_free(c->notes);
        opsc_action_batch_free(c->actions);
        opsc_free(c);
    }
}

static const char *const action_names[OPSC_ACT_COUNT] = {
    "acknowledge", "unacknowledge", "resolve", "suppress", "reopen",
};

const char *opsc_action_name(opsc_action_kind_t k) {
    return k < OPSC_ACT_COUNT ? action_names[k] : "?";
}

int opsc_action_parse(const char *s, opsc_action_kind_t *out) {
    for (int i = 0; i < OPSC_ACT_COUNT; i++) {
        if (s && strcmp(s, action_names[i]) == 0) {
            *out = (opsc_action_kind_t)i;
            return 0;
        }
    }
    return OPSC_EPARSE;
}

void opsc_action_batch_free(opsc_action_batch_t *b) {
    if (!b) {
        return;
    }
    for (size_t i = 0; i < b->n; i++) {
        opsc_alert_free(b->items[i].row);
    }
    opsc_free(b->items);
    opsc_free(b->notes);
    opsc_free(b);
}

static void strv_free(char **v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        opsc_free(v[i]);
    }
    opsc_free(v);
}

void opsc_alert_update_free(opsc_alert_update_t *u) {
    if (!u) {
        return;
    }
    strv_free(u->tags_add, u->ntags_add);
    strv_free(u->tags_del, u->ntags_del);
    opsc_free(u->custom_patch);
    opsc_free(u->device_name);
    opsc_free(u->old_device_name);
    opsc_free(u->title);
    opsc_free(u->old_title);
    opsc_free(u);
}

static ptrdiff_t strv_find(char *const *v, size_t n, const char *s) {
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i], s) == 0) {
            return (ptrdiff_t)i;
        }
    }
    return -1;
}

static void strv_drop(char **v, size_t *n, const char *s) {
    ptrdiff_t i = strv_find(v, *n, s);
    if (i >= 0) {
        opsc_free(v[i]);
        memmove(&v[i], &v[i + 1], (*n - (size_t)i - 1) * sizeof(*v));
        (*n)--;
    }
}

static int strv_add(char ***v, size_t *n, const char *s) {
    if (strv_find(*v, *n, s) >= 0) {
        return 0;
    }
    char **nv = opsc_realloc(*v, (*n + 1) * sizeof(**v));
    if (!nv) {
        return OPSC_ENOMEM;
    }
    *v = nv;
    if (!(nv[*n] = opsc_strdup(s))) {
        return OPSC_ENOMEM;
    }
    (*n)++;
    return 0;
}

int opsc_alert_update_tag(opsc_alert_update_t *u, const char *tag, int add) {
    u->mask |= OPSC_UPD_TAGS;
    if (add) {
        strv_drop(u->tags_del, &u->ntags_del, tag);
        return strv_add(&u->tags_add, &u->ntags_add, tag);
    }
    strv_drop(u->tags_add, &u->ntags_add, tag);
    return strv_add(&u->tags_del, &u->ntags_del, tag);
}

/* `base` (object text or NULL) with the top-level keys of `patch` set; null deletes when `drop`. */
static int json_merge_text(const char *base, const char *patch, int drop_nulls, char **out) {
    json_t *p = json_loads(patch, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(p)) {
        json_decref(p);
        return OPSC_EPARSE;
    }
    json_t *b = base ? json_loads(base, 0, NULL) : NULL;
    if (!json_is_object(b)) {
        json_decref(b);
        b = json_object(); /* a broken base is replaced, as the store replaces invalid JSON */
    }
    const char *k;
    json_t *v;
    json_object_foreach(p, k, v) {
        if (drop_nulls && json_is_null(v)) {
            json_object_del(b, k);
        } else {
            json_object_set(b, k, v);
        }
    }
    char *text = json_dumps(b, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(p);
    json_decref(b);
    if (!text) {
        return OPSC_ENOMEM;
    }
    *out = opsc_strdup(text);
    free(text);
    return *out ? 0 : OPSC_ENOMEM;
}

int opsc_alert_update_custom(opsc_alert_update_t *u, const char *patch) {
    char *merged = NULL;
    /* Keep nulls: within a patch a null is an instruction (delete), not an absence. */
    int rc = json_merge_text(u->custom_patch, patch, 0, &merged);
    if (rc == 0) {
        opsc_free(u->custom_patch);
        u->custom_patch = merged;
        u->mask |= OPSC_UPD_CUSTOM_FIELDS;
    }
    return rc;
}

static int set_str(char **dst, const char *src) {
    char *c = src ? opsc_strdup(src) : NULL;
    if (src && !c) {
        return OPSC_ENOMEM;
    }
    opsc_free(*dst);
    *dst = c;
    return 0;
}

int opsc_alert_update_merge(opsc_alert_update_t *u, const opsc_alert_update_t *l) {
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l->ntags_add; i++) {
        rc = opsc_alert_update_tag(u, l->tags_add[i], 1);
    }
    for (size_t i = 0; rc == 0 && i < l->ntags_del; i++) {
        rc = opsc_alert_update_tag(u, l->tags_del[i], 0);
    }
    if (rc == 0 && (l->mask & OPSC_UPD_CUSTOM_FIELDS) && l->custom_patch) {
        rc = opsc_alert_update_custom(u, l->custom_patch);
    }
    if (rc != 0) {
        return rc;
    }
    /* Scalars: the later value wins; an old value known only later is still worth keeping. */
#define TAKE(bit, f)                                                                               \
    if (l->mask & (bit)) {                                                                         \
        u->f = l->f;                                                                               \
    }                                                                                              \
    if ((l->old_mask & (bit)) && !(u->old_mask & (bit))) {                                         \
        u->old_##f = l->old_##f;                                                                   \
    }
    TAKE(OPSC_UPD_IMPACT, impact)
    TAKE(OPSC_UPD_URGENCY, urgency)
    TAKE(OPSC_UPD_PRIORITY, priority)
    TAKE(OPSC_UPD_SEVERITY, severity)
#undef TAKE
    if ((l->mask & OPSC_UPD_DEVICE_NAME) && (rc = set_str(&u->device_name, l->device_name))) {
        return rc;
    }
    if ((l->mask & OPSC_UPD_TITLE) && (rc = set_str(&u->title, l->title))) {
        return rc;
    }
    if ((l->old_mask & OPSC_UPD_DEVICE_NAME) && !(u->old_mask & OPSC_UPD_DEVICE_NAME) &&
        (rc = set_str(&u->old_device_name, l->old_device_name))) {
        return rc;
    }
    if ((l->old_mask & OPSC_UPD_TITLE) && !(u->old_mask & OPSC_UPD_TITLE) &&
        (rc = set_str(&u->old_title, l->old_title))) {
        return rc;
    }
    u->mask |= l->mask;
    u->old_mask |= l->old_mask;
    return 0;
}

static int apply_tags(const opsc_alert_update_t *u, opsc_alert_t *a) {
    for (size_t i = 0; i < u->ntags_del; i++) {
        strv_drop(a->tags, &a->ntags, u->tags_del[i]);
    }
    for (size_t i = 0; i < u->ntags_add; i++) {
        int rc = strv_add(&a->tags, &a->ntags, u->tags_add[i]);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int opsc_alert_update_apply(const opsc_alert_update_t *u, opsc_alert_t *a) {
    int rc = 0;
    if ((u->mask & OPSC_UPD_TAGS) && (rc = apply_tags(u, a)) != 0) {
        return rc;
    }
    if ((u->mask & OPSC_UPD_CUSTOM_FIELDS) && u->custom_patch) {
        char *merged = NULL;
        if ((rc = json_merge_text(a->custom_fields_json, u->custom_patch, 1, &merged)) != 0) {
            return rc;
        }
        opsc_free(a->custom_fields_json);
        a->custom_fields_json = merged;
    }
    if ((u->mask & OPSC_UPD_DEVICE_NAME) && (rc = set_str(&a->device_name, u->device_name))) {
        return rc;
    }
    if ((u->mask & OPSC_UPD_TITLE) && (rc = set_str(&a->title, u->title))) {
        return rc;
    }
    if (u->mask & OPSC_UPD_IMPACT) {
        a->impact = u->impact;
    }
    if (u->mask & OPSC_UPD_URGENCY) {
        a->urgency = u->urgency;
    }
    if (u->mask & OPSC_UPD_PRIORITY) {
        a->priority = u->priority;
    }
    if (u->mask & OPSC_UPD_SEVERITY) {
        a->severity = u->severity;
    }
    return 0;
}
