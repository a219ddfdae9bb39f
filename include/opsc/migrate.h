#ifndef OPSC_MIGRATE_H
#define OPSC_MIGRATE_H

#include <stddef.h>

#include "opsc/pg.h"

/*
 * Schema migrations: migrations/NNN_name.sql, embedded in the binary at build
 * time, applied in order, each in its own transaction, recorded in
 * schema_migrations(version, name, checksum, applied_at). Concurrent starters
 * are serialized by a session advisory lock. An applied migration whose
 * checksum (SHA-256 of the file) changed stops start-up with an error naming it.
 */

typedef struct opsc_migration_s {
    int version;
    const char *name; /* "001_core_schema" */
    const char *sql;
} opsc_migration_t;

extern const opsc_migration_t opsc_migrations[];
extern const size_t opsc_migrations_count;

/** err: 0 when the schema is current. applied: how many were applied by this run. */
typedef void (*opsc_migrate_cb)(int err, int applied, const char *message, void *arg);

/**
 * Run the migrations on the pool's writer connection. `list` must be sorted by
 * version (the embedded list is). The callback runs once, on the loop thread.
 * A connection lost midway ends the run with OPSC_EDB_CONN_LOST; run it again
 * when the writer is back (each migration is transactional and recorded, so
 * nothing is applied twice).
 */
int opsc_migrate_run(opsc_pg_pool_t *pool, const opsc_migration_t *list, size_t count,
                     opsc_migrate_cb cb, void *arg);

/** Hex SHA-256 of a migration's text (65 bytes with NUL). */
void opsc_migrate_checksum(const char *sql, char out[65]);

#endif
