/*
 * Migration runner. Runs on the pool's writer connection as a chain of
 * asynchronous steps:
 *
 *   lock      SELECT pg_advisory_lock(K)      serializes concurrent starters
 *   table     CREATE TABLE IF NOT EXISTS schema_migrations
 *   read      SELECT version, name, checksum  what is applied
 *   apply N   BEGIN; <file>; INSERT INTO schema_migrations ...; COMMIT;
 *   unlock    SELECT pg_advisory_unlock(K)    also after an error
 *
 * A session advisory lock dies with its connection, so a runner that loses
 * its connection never leaves the lock behind.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/sha256.h>

#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/migrate.h"

/* 'opsc' as an integer: the advisory lock key for schema changes. */
#define OPSC__MIGRATE_LOCK_KEY "1869640547"
#define OPSC__MIGRATE_LOG "migrate"

typedef struct migrate_run_s {
    opsc_pg_pool_t *pool;
    const opsc_migration_t *list;
    size_t count;
    size_t next; /* next migration to apply */
    int applied;
    int err;
    char message[512];
    uint64_t started_ns;
    opsc_migrate_cb cb;
    void *arg;
} migrate_run_t;

static void step_unlock(migrate_run_t *m);

void opsc_migrate_checksum(const char *sql, char out[65]) {
    unsigned char digest[32];
    mbedtls_sha256_ret((const unsigned char *)sql, strlen(sql), digest, 0);
    for (int i = 0; i < 32; i++) {
        snprintf(out + i * 2, 3, "%02x", digest[i]);
    }
    out[64] = '\0';
}

static void finish(migrate_run_t *m) {
    m->cb(m->err, m->applied, m->err ? m->message : "", m->arg);
    opsc_free(m);
}

static void fail(migrate_run_t *m, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(migrate_run_t *m, int err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->message, sizeof(m->message), fmt, ap);
    va_end(ap);
    m->err = err;
    opsc_log_err(OPSC__MIGRATE_LOG, "%s", m->message);
}

/* Describe a database failure: "SQLSTATE 42P07: relation ... already exists". */
static void db_fail(migrate_run_t *m, int err, const opsc_pg_res_t *res, const char *what) {
    fail(m, err == OPSC_EDB_CONN_LOST ? err : OPSC_EMIGRATION, "%s: SQLSTATE %s: %s", what,
         opsc_pg_res_sqlstate(res), opsc_pg_res_message(res));
}

static void on_unlock(int err, const opsc_pg_res_t *res, void *arg) {
    migrate_run_t *m = arg;
    if (err && !m->err) {
        db_fail(m, err, res, "releasing the migration lock");
    }
    finish(m);
}

static void step_unlock(migrate_run_t *m) {
    if (m->err == OPSC_EDB_CONN_LOST || m->err == OPSC_ESHUTDOWN) {
        finish(m); /* the lock went with the connection */
        return;
    }
    int rc = opsc_pg_query(m->pool, OPSC_PG_WRITER,
                           "SELECT pg_advisory_unlock(" OPSC__MIGRATE_LOCK_KEY ")", 0, NULL,
                           on_unlock, m);
    if (rc != 0) {
        if (!m->err) {
            fail(m, rc, "cannot release the migration lock: %s", opsc_strerror(rc));
        }
        finish(m);
    }
}

static void step_apply(migrate_run_t *m);

static void on_applied(int err, const opsc_pg_res_t *res, void *arg) {
    migrate_run_t *m = arg;
    const opsc_migration_t *mg = &m->list[m->next];
    if (err) {
        char what[160];
        snprintf(what, sizeof(what), "migration %s failed (rolled back)", mg->name);
        db_fail(m, err, res, what);
        step_unlock(m);
        return;
    }
    opsc_log_info(OPSC__MIGRATE_LOG, "applied migration %s in %.1f ms", mg->name,
                  (double)(uv_hrtime() - m->started_ns) / 1e6);
    m->applied++;
    m->next++;
    step_apply(m);
}

static int valid_name(const char *name) {
    for (const char *p = name; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
            return 0;
        }
    }
    return *name != '\0';
}

static void step_apply(migrate_run_t *m) {
    if (m->next >= m->count) {
        if (m->applied == 0) {
            opsc_log_info(OPSC__MIGRATE_LOG, "schema is current (%zu migrations)", m->count);
        }
        step_unlock(m);
        return;
    }
    const opsc_migration_t *mg = &m->list[m->next];
    char sum[65];
    opsc_migrate_checksum(mg->sql, sum);
    opsc_buf_t sql = OPSC_BUF_INIT;
    /* Names and checksums are [a-z0-9_]: checked, so no quoting is needed. */
    int rc = opsc_buf_printf(&sql,
                             "BEGIN;\n%s\n;\nINSERT INTO schema_migrations (version, name, checksum)"
                             " VALUES (%d, '%s', '%s');\nCOMMIT;",
                             mg->sql, mg->version, mg->name, sum);
    if (rc != 0) {
        fail(m, rc, "out of memory building migration %s", mg->name);
        step_unlock(m);
        return;
    }
    opsc_log_info(OPSC__MIGRATE_LOG, "applying migration %s", mg->name);
    m->started_ns = uv_hrtime();
    rc = opsc_pg_script(m->pool, OPSC_PG_WRITER, sql.base, on_applied, m);
    opsc_buf_free(&sql);
    if (rc != 0) {
        fail(m, rc, "cannot submit migration %s: %s", mg->name, opsc_strerror(rc));
        step_unlock(m);
    }
}

static const opsc_migration_t *find(const migrate_run_t *m, int version) {
    for (size_t i = 0; i < m->count; i++) {
        if (m->list[i].version == version) {
            return &m->list[i];
        }
    }
    return NULL;
}

static void on_read(int err, const opsc_pg_res_t *res, void *arg) {
    migrate_run_t *m = arg;
    if (err) {
        db_fail(m, err, res, "reading schema_migrations");
        step_unlock(m);
        return;
    }
    int max_known = m->count ? m->list[m->count - 1].version : 0;
    int rows = opsc_pg_res_ntuples(res);
    for (int i = 0; i < rows; i++) {
        const char *v = opsc_pg_res_value(res, i, 0);
        const char *name = opsc_pg_res_value(res, i, 1);
        const char *sum = opsc_pg_res_value(res, i, 2);
        int version = v ? atoi(v) : -1;
        const opsc_migration_t *mg = find(m, version);
        if (!mg) {
            fail(m, OPSC_EMIGRATION,
                 "database has migration %d (%s) that this server does not know (newest known: "
                 "%d): the database belongs to a newer version",
                 version, name ? name : "?", max_known);
            step_unlock(m);
            return;
        }
        char expect[65];
        opsc_migrate_checksum(mg->sql, expect);
        if (!sum || strcmp(sum, expect) != 0) {
            fail(m, OPSC_ECHECKSUM,
                 "migration %s was changed after it was applied (recorded checksum %.12s, file "
                 "%.12s): restore the original file and add a new migration instead",
                 mg->name, sum ? sum : "none", expect);
            step_unlock(m);
            return;
        }
    }
    /* Pending: every known migration not in the table, in order. */
    m->next = 0;
    while (m->next < m->count) {
        int applied = 0;
        for (int i = 0; i < rows; i++) {
            const char *v = opsc_pg_res_value(res, i, 0);
            if (v && atoi(v) == m->list[m->next].version) {
                applied = 1;
                break;
            }
        }
        if (!applied) {
            break;
        }
        m->next++;
    }
    /* A gap (an older migration missing while a newer one is applied) is an error. */
    for (size_t j = m->next; j < m->count; j++) {
        for (int i = 0; i < rows; i++) {
            const char *v = opsc_pg_res_value(res, i, 0);
            if (v && atoi(v) == m->list[j].version && j > m->next) {
                fail(m, OPSC_EMIGRATION,
                     "migration %s is applied but the older %s is not: refusing to apply out of "
                     "order",
                     m->list[j].name, m->list[m->next].name);
                step_unlock(m);
                return;
            }
        }
    }
    step_apply(m);
}

static void on_table(int err, const opsc_pg_res_t *res, void *arg) {
    migrate_run_t *m = arg;
    if (err) {
        db_fail(m, err, res, "creating schema_migrations");
        step_unlock(m);
        return;
    }
    int rc = opsc_pg_query(m->pool, OPSC_PG_WRITER,
                           "SELECT version, name, checksum FROM schema_migrations ORDER BY version",
                           0, NULL, on_read, m);
    if (rc != 0) {
        fail(m, rc, "cannot read schema_migrations: %s", opsc_strerror(rc));
        step_unlock(m);
    }
}

static void on_lock(int err, const opsc_pg_res_t *res, void *arg) {
    migrate_run_t *m = arg;
    if (err) {
        db_fail(m, err, res, "taking the migration lock");
        finish(m);
        return;
    }
    int rc = opsc_pg_script(m->pool, OPSC_PG_WRITER,
                            "CREATE TABLE IF NOT EXISTS schema_migrations ("
                            " version integer PRIMARY KEY,"
                            " name varchar(100) NOT NULL,"
                            " checksum char(64) NOT NULL,"
                            " applied_at timestamptz NOT NULL DEFAULT now())",
                            on_table, m);
    if (rc != 0) {
        fail(m, rc, "cannot create schema_migrations: %s", opsc_strerror(rc));
        step_unlock(m);
    }
}

int opsc_migrate_run(opsc_pg_pool_t *pool, const opsc_migration_t *list, size_t count,
                     opsc_migrate_cb cb, void *arg) {
    for (size_t i = 0; i < count; i++) {
        if (!valid_name(list[i].name) || list[i].version <= 0 ||
            (i > 0 && list[i].version <= list[i - 1].version)) {
            opsc_log_err(OPSC__MIGRATE_LOG,
                         "migration list invalid at %s: versions must increase, names [a-z0-9_]",
                         list[i].name ? list[i].name : "?");
            return OPSC_EMIGRATION;
        }
    }
    migrate_run_t *m = opsc_calloc(1, sizeof(*m));
    if (!m) {
        return OPSC_ENOMEM;
    }
    m->pool = pool;
    m->list = list;
    m->count = count;
    m->cb = cb;
    m->arg = arg;
    int rc = opsc_pg_query(pool, OPSC_PG_WRITER,
                           "SELECT pg_advisory_lock(" OPSC__MIGRATE_LOCK_KEY ")", 0, NULL, on_lock,
                           m);
    if (rc != 0) {
        opsc_free(m);
    }
    return rc;
}
