/*
 * opsconductord: the OpsConductor server.
 *
 * Exit status: 0 clean shutdown, 1 runtime failure (cannot bind, database
 * cannot start, migration refused), 2 bad command line or configuration.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "opsc/config.h"
#include "opsc/error.h"
#include "opsc/log.h"
#include "opsc/pipeline.h"
#include "opsc/server.h"
#include "opsc/version.h"

static void usage(FILE *out) {
    fprintf(out,
            "Usage: opsconductord [--config FILE] [--check-config]\n"
            "       opsconductord --help | --help-config | --version\n"
            "\n"
            "OpsConductor: SNMP traps, webhooks and REST events in; one deduplicated,\n"
            "correlated, live list of what is wrong out.\n"
            "\n"
            "  -c, --config FILE    YAML configuration file (every key can also be set by an\n"
            "                       environment variable OPSC_<SECTION>_<KEY>)\n"
            "      --check-config   load and validate the configuration, print the effective\n"
            "                       values (secrets masked) and exit: 0 valid, 2 invalid\n"
            "      --help-config    print every configuration key as a Markdown table\n"
            "  -h, --help           this text\n"
            "  -V, --version        print the version\n"
            "\n"
            "Without database.url (OPSC_DATABASE_URL) the server runs its own PostgreSQL\n"
            "under data_dir. Signals: SIGTERM/SIGINT drain and stop, SIGHUP reloads.\n");
}

int main(int argc, char **argv) {
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'C'},
        {"help-config", no_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL;
    int check_only = 0;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'C':
            check_only = 1;
            break;
        case 'R':
            opsc_config_print_reference(stdout);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("opsconductord %s (%s)\n", OPSC_VERSION, OPSC_BUILD_TYPE);
            return 0;
        default:
            fprintf(stderr, "opsconductord: unknown or incomplete option '%s' (try --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "opsconductord: unexpected argument '%s' (try --help)\n", argv[optind]);
        return 2;
    }

    opsc_config_t cfg;
    char err[1024];
    memset(&cfg, 0, sizeof(cfg));
    if (opsc_config_load(&cfg, config_path, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "opsconductord: config error: %s\n", err);
        return 2;
    }
    /* Values whose syntax is richer than the key table's types, checked before anything starts. */
    opsc_pipeline_options_t probe;
    memset(&probe, 0, sizeof(probe));
    const opsc_strlist_t *xc = &cfg.correlation.expire_after_by_category;
    if (opsc_pipeline_parse_expiry_overrides((const char *const *)xc->items, xc->count, &probe, err,
                                             sizeof(err)) != 0) {
        fprintf(stderr, "opsconductord: config error: %s\n", err);
        opsc_config_free(&cfg);
        return 2;
    }
    if (check_only) {
        opsc_config_print_effective(&cfg, stdout);
        printf("configuration OK\n");
        opsc_config_free(&cfg);
        return 0;
    }
    opsc_log_set_level(cfg.log.level);
    opsc_log_set_format(cfg.log.format);
    char unknown[512];
    if (opsc_config_unknown_env(NULL, unknown, sizeof(unknown)) > 0) {
        opsc_log_warn("config", "ignoring unknown environment variables: %s", unknown);
    }

    uv_loop_t *loop = uv_default_loop();
    opsc_server_t *srv = NULL;
    int rc = opsc_server_create(loop, &cfg, config_path, &srv);
    if (rc != 0) {
        fprintf(stderr, "opsconductord: %s\n", opsc_strerror(rc));
        opsc_config_free(&cfg);
        return 1;
    }
    err[0] = '\0';
    rc = opsc_server_start(srv, err, sizeof(err));
    if (rc != 0) {
        opsc_log_err("server", "cannot start: %s", err[0] ? err : opsc_strerror(rc));
    }
    uv_run(loop, UV_RUN_DEFAULT);
    int status = opsc_server_exit_code(srv);
    opsc_server_destroy(srv);
    uv_loop_close(loop);
    return status;
}
