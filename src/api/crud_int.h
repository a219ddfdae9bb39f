#ifndef OPSC_CRUD_INT_H
#define OPSC_CRUD_INT_H

/*
 * The resources of the configuration API as data: each one is a table, its
 * columns with their JSON type and validation, its list filters and the
 * constraint names that map a database refusal back to a field. The engine
 * (crud.c) turns a descriptor into SQL once, at start.
 */
#include <stddef.h>

typedef enum {
    CRUD_TEXT,
    CRUD_INT,
    CRUD_BOOL,
    CRUD_NUM,
    CRUD_TS,       /* RFC 3339 in and out (UTC) */
    CRUD_CIDR,     /* PostgreSQL cidr */
    CRUD_TIME,     /* HH:MM[:SS] */
    CRUD_INTERVAL, /* PostgreSQL interval text ("2 hours", "01:30:00") */
    CRUD_OBJ,      /* jsonb holding an object */
    CRUD_ARR,      /* jsonb holding an array */
    CRUD_TEXT_ARR, /* text[] from an array of strings */
    CRUD_INT_ARR,  /* integer[] from an array of integers */
} crud_type_t;

enum {
    CRUD_REQ = 1,     /* required on POST and PUT, never null */
    CRUD_NN = 2,      /* optional, but not null */
    CRUD_RO = 4,      /* answered, never written by the client */
    CRUD_SECRET = 8,  /* written, never answered (masked) */
    CRUD_ACTOR = 16,  /* set from the principal on POST */
    CRUD_UNIQUE = 32, /* the upsert key of /bulk */
};

typedef struct crud_field_s {
    const char *name;
    crud_type_t type;
    unsigned flags;
    int maxlen;                 /* characters, strings only; 0: unbounded */
    const char *const *enums;   /* NULL-terminated allowed values, or NULL */
    long long min, max;         /* integers (and each element of CRUD_INT_ARR) when min < max */
    const char *dflt;           /* SQL for an absent value on PUT and /bulk; NULL: NULL */
    /* Extra check of a string value: NULL when fine, else why not (static). */
    const char *(*check)(const char *s);
} crud_field_t;

typedef enum { CRUD_F_LIST, CRUD_F_CONTAINS, CRUD_F_BOOL } crud_filter_kind_t;

typedef struct crud_filter_s {
    const char *param;  /* query parameter */
    const char *column; /* its column */
    crud_filter_kind_t kind;
} crud_filter_t;

typedef struct crud_constraint_s {
    const char *name; /* constraint name as it appears in the server's message */
    const char *field;
    const char *message;
} crud_constraint_t;

typedef struct crud_resource_s {
    const char *name;  /* "devices": the path segment after /api/v1/ */
    const char *table; /* "devices" */
    const crud_field_t *fields;
    size_t nfields;
    const crud_filter_t *filters;
    size_t nfilters;
    const crud_constraint_t *constraints;
    size_t nconstraints;
    const char *order; /* ORDER BY of lists */
    int bulk;          /* POST /{name}/bulk upserts by the CRUD_UNIQUE field */
} crud_resource_t;

extern const crud_resource_t opsc_crud_resources[];
extern const size_t opsc_crud_resources_count;

/* Checks shared with the tests. NULL when fine, else why not. */
const char *opsc_crud_check_ip(const char *s);
const char *opsc_crud_check_cidr(const char *s);
const char *opsc_crud_check_oid(const char *s);
const char *opsc_crud_check_glob(const char *s);
const char *opsc_crud_check_time(const char *s);
const char *opsc_crud_check_ts(const char *s);
const char *opsc_crud_check_url(const char *s);

#endif
