#ifndef OPSC_SERVER_H
#define OPSC_SERVER_H

#include <uv.h>

#include "opsc/config.h"

/*
 * The server: wires configuration, listeners, the database (embedded or by
 * URL), migrations, readiness and metrics onto one loop, and owns the
 * process lifecycle (SIGTERM/SIGINT drain, SIGHUP reload).
 */

typedef struct opsc_server_s opsc_server_t;

/**
 * Create a server from a loaded configuration (ownership of *cfg's contents
 * moves to the server; cfg is zeroed). `config_path` is re-read on SIGHUP.
 */
int opsc_server_create(uv_loop_t *loop, opsc_config_t *cfg, const char *config_path,
                       opsc_server_t **out);

/**
 * Start: lock the data dir, bind every listener, start the database. On
 * failure returns an error and errbuf says what (one line); nothing stays
 * running, call opsc_server_destroy.
 */
int opsc_server_start(opsc_server_t *srv, char *errbuf, size_t errlen);

/** Begin a graceful shutdown (what SIGTERM does). */
void opsc_server_shutdown(opsc_server_t *srv, int exit_code);

/** Reload what can be reloaded (what SIGHUP does). */
void opsc_server_reload(opsc_server_t *srv);

/** After uv_run returned: the exit status (0 clean, 1 fatal error). */
int opsc_server_exit_code(const opsc_server_t *srv);

void opsc_server_destroy(opsc_server_t *srv);

#endif
