#include "opsc/api_util.h"

#include <string.h>

#include "opsc/error.h"
#include "opsc/log.h"

static const char *const role_names[] = {"none", "ingest", "viewer", "operator", "admin"};

opsc_role_t opsc_api_role_parse(const char *s) {
    for (int r = OPSC_ROLE_INGEST; s && r <= OPSC_ROLE_ADMIN; r++) {
        if (strcmp(s, role_names[r]) == 0) {
            return (opsc_role_t)r;
        }
    }
    return OPSC_ROLE_NONE;
}

const char *opsc_api_role_name(opsc_role_t r) {
    return r >= OPSC_ROLE_NONE && r <= OPSC_ROLE_ADMIN ? role_names[r] : "none";
}

int opsc_api_hex_to_hash(const char *hex, unsigned char out[32]) {
    if (!hex || strlen(hex) != 64) {
        return -1;
    }
    for (int i = 0; i < 64; i++) {
        char c = hex[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0) {
            return -1;
        }
        out[i / 2] = (unsigned char)(i % 2 ? out[i / 2] | v : v << 4);
    }
    return 0;
}

json_t *opsc_api_json_str(const char *s) {
    return s ? json_string(s) : json_null();
}

void opsc_api_db_error(opsc_http_conn_t *c, const char *what, int err, const opsc_pg_res_t *res) {
    if (err == OPSC_EDB_QUERY) {
        opsc_log_err("api", "%s: SQLSTATE %s: %s", what, opsc_pg_res_sqlstate(res),
                     opsc_pg_res_message(res));
        opsc_http_error(c, 500, "internal", "the database refused the request", NULL);
    } else {
        opsc_http_error_retry(c, 503, "unavailable", "the database is not reachable", 5);
    }
}
