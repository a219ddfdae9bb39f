/*
 * bench_pg: how fast the asynchronous database layer writes alert rows.
 *
 *   bench_pg CONNINFO [ROWS]
 *
 * Migrates the database, then inserts ROWS rows into `alerts` (the real table,
 * with the seed's indexes and trigger) four ways, truncating in between:
 *
 *   serial     one INSERT, wait for it, the next (a naive client)
 *   pipelined  every INSERT submitted at once; the pool keeps 64 in flight,
 *              each its own transaction
 *   batch      prepared INSERTs in batches of 1,000, one transaction each
 *   multirow   one INSERT ... SELECT FROM unnest($arrays) per 1,000 rows
 *
 * Prints rows/s per mode. Whole-run timing is uv_hrtime around each mode.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/migrate.h"
#include "opsc/pg.h"

#define BATCH 1000

static uv_loop_t *loop;
static opsc_pg_pool_t *pool;
static long rows_total;
static long done_rows;
static long submitted;
static int failed;
static int finished;

static const char *INSERT_SQL =
    "INSERT INTO alerts (source_system, source_alert_id, device_ip, severity, category, "
    "alert_type, title, occurred_at, fingerprint, raw_data) VALUES ('bench', $1, $2, 'major', "
    "'network', 'link_down', $3, now(), $4, '{}')";

static const char *MULTI_SQL =
    "INSERT INTO alerts (source_system, source_alert_id, device_ip, severity, category, "
    "alert_type, title, occurred_at, fingerprint, raw_data) SELECT 'bench', s, d, 'major', "
    "'network', 'link_down', t, now(), f, '{}' FROM unnest($1::text[], $2::text[], $3::text[], "
    "$4::text[]) AS u(s, d, t, f)";

static void row_values(long i, char *id, char *ip, char *title, char *fp) {
    snprintf(id, 32, "bench-%ld", i);
    snprintf(ip, 32, "10.%ld.%ld.%ld", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    snprintf(title, 96, "Interface Down - router-%ld ifIndex %ld", i % 5000, i % 48);
    snprintf(fp, 72, "%064lx", (unsigned long)i * 2654435761ul);
}

static void on_done(int err, const opsc_pg_res_t *res, void *arg) {
    long n = (long)(intptr_t)arg;
    if (err) {
        if (!failed) {
            fprintf(stderr, "bench_pg: %s: %s %s\n", opsc_strerror(err),
                    opsc_pg_res_sqlstate(res), opsc_pg_res_message(res));
        }
        failed = 1;
    }
    done_rows += n;
    if (done_rows >= rows_total) {
        finished = 1;
    }
}

static void run_until_finished(void) {
    while (!finished && !failed) {
        uv_run(loop, UV_RUN_ONCE);
    }
}

static void wait_result(int *flag) {
    while (!*flag) {
        uv_run(loop, UV_RUN_ONCE);
    }
}

static void on_flag(int err, const opsc_pg_res_t *res, void *arg) {
    if (err) {
        fprintf(stderr, "bench_pg: %s\n", opsc_pg_res_message(res));
        exit(1);
    }
    *(int *)arg = 1;
}

static void truncate_alerts(void) {
    int f = 0;
    opsc_pg_script(pool, OPSC_PG_WRITER, "TRUNCATE alerts CASCADE; CHECKPOINT", on_flag, &f);
    wait_result(&f);
}

static void reset(void) {
    done_rows = 0;
    submitted = 0;
    failed = 0;
    finished = 0;
}

static void mode_serial(void) {
    char id[32], ip[32], title[96], fp[72];
    for (long i = 0; i < rows_total && !failed; i++) {
        row_values(i, id, ip, title, fp);
        const char *p[] = {id, ip, title, fp};
        long before = done_rows;
        opsc_pg_query(pool, OPSC_PG_WRITER, INSERT_SQL, 4, p, on_done, (void *)(intptr_t)1);
        while (done_rows == before && !failed) {
            uv_run(loop, UV_RUN_ONCE);
        }
    }
}

static void mode_pipelined(void) {
    char id[32], ip[32], title[96], fp[72];
    opsc_pg_stmt_t *st = opsc_pg_stmt_register(pool, "bench_ins", INSERT_SQL, 4);
    for (long i = 0; i < rows_total; i++) {
        row_values(i, id, ip, title, fp);
        const char *p[] = {id, ip, title, fp};
        if (opsc_pg_exec(pool, OPSC_PG_WRITER, st, 4, p, on_done, (void *)(intptr_t)1) != 0) {
            fprintf(stderr, "bench_pg: submit refused\n");
            exit(1);
        }
    }
    run_until_finished();
}

static void mode_batch(void) {
    char id[32], ip[32], title[96], fp[72];
    opsc_pg_stmt_t *st = opsc_pg_stmt_register(pool, "bench_ins", INSERT_SQL, 4);
    for (long i = 0; i < rows_total; i += BATCH) {
        opsc_pg_batch_t *b = opsc_pg_batch_create(pool);
        long n = 0;
        for (long j = i; j < i + BATCH && j < rows_total; j++, n++) {
            row_values(j, id, ip, title, fp);
            const char *p[] = {id, ip, title, fp};
            opsc_pg_batch_add_exec(b, st, 4, p);
        }
        opsc_pg_batch_submit(b, OPSC_PG_WRITER, on_done, (void *)(intptr_t)n);
    }
    run_until_finished();
}

static void mode_multirow(void) {
    char id[32], ip[32], title[96], fp[72];
    for (long i = 0; i < rows_total; i += BATCH) {
        opsc_buf_t a[4] = {OPSC_BUF_INIT, OPSC_BUF_INIT, OPSC_BUF_INIT, OPSC_BUF_INIT};
        long n = 0;
        for (long j = i; j < i + BATCH && j < rows_total; j++, n++) {
            row_values(j, id, ip, title, fp);
            const char *v[] = {id, ip, title, fp};
            for (int k = 0; k < 4; k++) {
                /* Array literal; the generated values need no escaping but quotes. */
                opsc_buf_printf(&a[k], "%s\"%s\"", n ? "," : "{", v[k]);
            }
        }
        for (int k = 0; k < 4; k++) {
            opsc_buf_appends(&a[k], "}");
        }
        const char *p[] = {a[0].base, a[1].base, a[2].base, a[3].base};
        opsc_pg_query(pool, OPSC_PG_WRITER, MULTI_SQL, 4, p, on_done, (void *)(intptr_t)n);
        for (int k = 0; k < 4; k++) {
            opsc_buf_free(&a[k]);
        }
    }
    run_until_finished();
}

static void on_migrated(int err, int applied, const char *message, void *arg) {
    (void)applied;
    if (err) {
        fprintf(stderr, "bench_pg: migrations: %s\n", message);
        exit(1);
    }
    *(int *)arg = 1;
}

static void on_closed(void *arg) {
    *(int *)arg = 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_pg CONNINFO [ROWS]\n");
        return 2;
    }
    rows_total = argc > 2 ? atol(argv[2]) : 100000;
    opsc_log_set_level(OPSC_LOG_WARN);
    loop = uv_default_loop();
    opsc_pg_options_t o = {.conninfo = argv[1], .readers = 0, .queue_max = 10000000};
    if (opsc_pg_pool_create(loop, &o, &pool) != 0) {
        return 1;
    }
    opsc_pg_pool_start(pool);
    int migrated = 0;
    opsc_migrate_run(pool, opsc_migrations, opsc_migrations_count, on_migrated, &migrated);
    wait_result(&migrated);

    static const struct {
        const char *name;
        void (*fn)(void);
        long max_rows;
    } modes[] = {
        {"serial", mode_serial, 20000},
        {"pipelined", mode_pipelined, 0},
        {"batch", mode_batch, 0},
        {"multirow", mode_multirow, 0},
    };
    long requested = rows_total;
    printf("%-10s %10s %10s %12s\n", "mode", "rows", "seconds", "rows/s");
    for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
        rows_total = modes[m].max_rows && requested > modes[m].max_rows ? modes[m].max_rows
                                                                         : requested;
        truncate_alerts();
        reset();
        uint64_t t0 = uv_hrtime();
        modes[m].fn();
        double s = (double)(uv_hrtime() - t0) / 1e9;
        if (failed) {
            return 1;
        }
        printf("%-10s %10ld %10.3f %12.0f\n", modes[m].name, rows_total, s,
               (double)rows_total / s);
        fflush(stdout);
    }
    int closed = 0;
    opsc_pg_pool_close(pool, on_closed, &closed);
    wait_result(&closed);
    uv_loop_close(loop);
    return 0;
}
