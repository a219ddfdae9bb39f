/*
 * docs/openapi.json describes every route the server registers: the real
 * server is started (its database need not be reachable: the API routes are
 * registered when the pool is created) and its route tables are walked; each
 * route's path and every method it allows must be in the document. A route
 * added without documenting it fails here. Also: the document is valid JSON,
 * OpenAPI 3, and the roles it states for the configuration resources are the
 * ones the routes enforce.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../../src/server.c"
#include "http/ops_server_int.h"
#include "opsc/openapi.h"

static const char *const method_names[] = {
    [OPSC_HTTP_DELETE] = "delete", [OPSC_HTTP_GET] = "get",     [OPSC_HTTP_HEAD] = "head",
    [OPSC_HTTP_POST] = "post",     [OPSC_HTTP_PUT] = "put",     [OPSC_HTTP_OPTIONS] = "options",
    [OPSC_HTTP_PATCH] = "patch",
};

static json_t *load_doc(void) {
    json_error_t e;
    json_t *doc = json_loadb((const char *)opsc_openapi_json, opsc_openapi_json_len, 0, &e);
    if (!doc) {
        print_error("docs/openapi.json: %s at %d:%d\n", e.text, e.line, e.column);
    }
    return doc;
}

/* A documented path for the route: itself, or for a prefix route one below it ("/x/{id}"). */
static int documented(json_t *paths, const opsc_http_route_t *r, const char *method) {
    const char *p;
    json_t *ops;
    json_object_foreach(paths, p, ops) {
        int match = r->prefix ? strncmp(p, r->path, strlen(r->path)) == 0 && strlen(p) > strlen(r->path)
                              : strcmp(p, r->path) == 0;
        if (match && json_object_get(ops, method)) {
            return 1;
        }
    }
    return 0;
}

static void test_every_route_documented(void **state) {
    (void)state;
    char dir[] = "/tmp/opsc-openapi-XXXXXX", path[256], yaml[1024], err[512] = "";
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/opsc.yaml", dir);
    /* Port 0 everywhere; the database URL points nowhere (the pool keeps trying). */
    snprintf(yaml, sizeof(yaml),
             "data_dir: %s/data\nhttp:\n  listen: 127.0.0.1:0\nsnmp:\n  listen: udp:127.0.0.1:0\n"
             "database:\n  url: host=%s/nosocket dbname=none connect_timeout=1\n",
             dir, dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(yaml, f);
    fclose(f);
    opsc_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    char *envp[] = {NULL};
    assert_int_equal(opsc_config_load(&cfg, path, envp, err, sizeof(err)), 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    opsc_server_t *srv = NULL;
    assert_int_equal(opsc_server_create(&loop, &cfg, path, &srv), 0);
    int rc = opsc_server_start(srv, err, sizeof(err));
    if (rc != 0) {
        print_error("start: %s\n", err);
    }
    assert_int_equal(rc, 0);

    json_t *doc = load_doc();
    assert_non_null(doc);
    json_t *paths = json_object_get(doc, "paths");
    assert_true(json_is_object(paths));
    size_t routes = 0, missing = 0;
    opsc_ops_server_t *http = srv->http;
    for (int t = 0; t < http->ntables; t++) {
        const opsc__http_route_table_t *tb = &http->tables[t];
        for (size_t i = 0; i < tb->n; i++) {
            const opsc_http_route_t *r = &tb->routes[i];
            for (int m = 0; m < 64; m++) {
                if (!(r->methods & OPSC_HTTP_M(m))) {
                    continue;
                }
                const char *name = (size_t)m < sizeof(method_names) / sizeof(method_names[0]) &&
                                           method_names[m]
                                       ? method_names[m]
                                       : "?";
                routes++;
                if (!documented(paths, r, name)) {
                    print_error("not in docs/openapi.json: %s %s%s\n", name, r->path,
                                r->prefix ? "{...}" : "");
                    missing++;
                }
            }
        }
    }
    /* tokens (3) and this engineer's resources (6 x 7 + bulk) at least */
    assert_true(routes >= 45);
    assert_int_equal(missing, 0);
    /* The operations endpoints are the server's own (no table): documented too. */
    assert_non_null(json_object_get(paths, "/health"));
    assert_non_null(json_object_get(paths, "/ready"));
    assert_non_null(json_object_get(paths, "/metrics"));
    json_decref(doc);

    opsc_server_shutdown(srv, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    opsc_server_destroy(srv);
    assert_int_equal(uv_loop_close(&loop), 0);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* The roles the document states are the roles the routes enforce. */
static void test_roles_match(void **state) {
    (void)state;
    json_t *doc = load_doc();
    assert_non_null(doc);
    json_t *paths = json_object_get(doc, "paths");
    static const struct {
        const char *path, *method;
        unsigned roles;
    } want[] = {
        {"/api/v1/devices", "get", OPSC_ROLES_READ},
        {"/api/v1/devices", "post", OPSC_ROLES_ADMIN},
        {"/api/v1/devices/bulk", "post", OPSC_ROLES_ADMIN},
        {"/api/v1/dependencies/{id}", "delete", OPSC_ROLES_ADMIN},
        {"/api/v1/maintenance-windows", "post", OPSC_ROLES_OPERATE},
        {"/api/v1/maintenance-windows/{id}", "patch", OPSC_ROLES_OPERATE},
        {"/api/v1/connectors/{id}", "get", OPSC_ROLES_READ},
        {"/api/v1/notification-rules", "post", OPSC_ROLES_ADMIN},
    };
    static const char *const role_names[] = {"none", "ingest", "viewer", "operator", "admin"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        json_t *roles = json_object_get(
            json_object_get(json_object_get(paths, want[i].path), want[i].method), "x-roles");
        assert_true(json_is_array(roles));
        unsigned got = 0;
        size_t k;
        json_t *v;
        json_array_foreach(roles, k, v) {
            for (unsigned r = 0; r < 5; r++) {
                if (strcmp(json_string_value(v), role_names[r]) == 0) {
                    got |= OPSC_ROLE_BIT(r);
                }
            }
        }
        if (got != want[i].roles) {
            print_error("%s %s: x-roles %#x, routes enforce %#x\n", want[i].method, want[i].path,
                        got, want[i].roles);
        }
        assert_int_equal(got, want[i].roles);
    }
    assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.0.3");
    json_decref(doc);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_route_documented),
        cmocka_unit_test(test_roles_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
