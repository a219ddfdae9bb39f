/* Webhook payload mappers (src/sources/webhook/webhook.c): Alertmanager, Grafana, generic, HMAC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "opsc/error.h"
#include "opsc/webhook.h"

/* Alertmanager v4 as it POSTs a group: two alerts firing, then the same two resolved. */
static const char am_firing[] =
    "{\"receiver\":\"opsconductor\",\"status\":\"firing\",\"alerts\":["
    "{\"status\":\"firing\",\"labels\":{\"alertname\":\"NodeDown\",\"instance\":\"10.0.0.5:9100\","
    "\"job\":\"node\",\"severity\":\"critical\",\"category\":\"compute\"},"
    "\"annotations\":{\"summary\":\"Node 10.0.0.5 is down\",\"description\":\"No scrape for 5m\"},"
    "\"startsAt\":\"2024-03-01T10:00:00.123Z\",\"endsAt\":\"0001-01-01T00:00:00Z\","
    "\"generatorURL\":\"http://prom:9090/graph?g0.expr=up+%3D%3D+0\",\"fingerprint\":"
    "\"1a30ba71cca2921f\"},"
    "{\"status\":\"firing\",\"labels\":{\"alertname\":\"DiskFull\",\"instance\":\"db1.example:"
    "9100\","
    "\"job\":\"node\",\"severity\":\"high\",\"mountpoint\":\"/var\"},"
    "\"annotations\":{\"description\":\"/var is 97% full\"},"
    "\"startsAt\":\"2024-03-01T10:02:00Z\",\"endsAt\":\"0001-01-01T00:00:00Z\","
    "\"generatorURL\":\"http://prom:9090/"
    "graph?g0.expr=disk\",\"fingerprint\":\"bc97ff14869b13e3\"}],"
    "\"groupLabels\":{\"job\":\"node\"},\"commonLabels\":{\"job\":\"node\"},"
    "\"commonAnnotations\":{},\"externalURL\":\"http://alertmanager:9093\",\"version\":\"4\","
    "\"groupKey\":\"{}:{job=\\\"node\\\"}\",\"truncatedAlerts\":0}";

static const char am_resolved[] =
    "{\"receiver\":\"opsconductor\",\"status\":\"resolved\",\"alerts\":["
    "{\"status\":\"resolved\",\"labels\":{\"alertname\":\"NodeDown\",\"instance\":\"10.0.0.5:"
    "9100\","
    "\"job\":\"node\",\"severity\":\"critical\",\"category\":\"compute\"},"
    "\"annotations\":{\"summary\":\"Node 10.0.0.5 is down\",\"description\":\"No scrape for 5m\"},"
    "\"startsAt\":\"2024-03-01T10:00:00.123Z\",\"endsAt\":\"2024-03-01T10:20:00Z\","
    "\"generatorURL\":\"http://prom:9090/graph?g0.expr=up+%3D%3D+0\",\"fingerprint\":"
    "\"1a30ba71cca2921f\"},"
    "{\"status\":\"resolved\",\"labels\":{\"alertname\":\"DiskFull\",\"instance\":"
    "\"db1.example:9100\",\"job\":\"node\",\"severity\":\"high\",\"mountpoint\":\"/var\"},"
    "\"annotations\":{\"description\":\"/var is 97% full\"},"
    "\"startsAt\":\"2024-03-01T10:02:00Z\",\"endsAt\":\"2024-03-01T10:30:00Z\","
    "\"generatorURL\":\"http://prom:9090/"
    "graph?g0.expr=disk\",\"fingerprint\":\"bc97ff14869b13e3\"}],"
    "\"groupLabels\":{\"job\":\"node\"},\"commonLabels\":{\"job\":\"node\"},"
    "\"commonAnnotations\":{},\"externalURL\":\"http://alertmanager:9093\",\"version\":\"4\","
    "\"groupKey\":\"{}:{job=\\\"node\\\"}\",\"truncatedAlerts\":0}";

/* Grafana's webhook contact point. */
static const char grafana[] =
    "{\"receiver\":\"ops\",\"status\":\"firing\",\"orgId\":1,\"alerts\":["
    "{\"status\":\"firing\",\"labels\":{\"alertname\":\"High memory usage\",\"team\":\"blue\","
    "\"grafana_folder\":\"Infra\",\"severity\":\"warning\"},"
    "\"annotations\":{\"summary\":\"Memory above 90%\",\"runbook_url\":\"https://rb/1\"},"
    "\"startsAt\":\"2024-03-01T09:51:03.157076+02:00\",\"endsAt\":\"0001-01-01T00:00:00Z\","
    "\"generatorURL\":\"https://grafana/alerting/1/edit\",\"fingerprint\":\"c6eadffa33fcdf37\","
    "\"silenceURL\":\"https://grafana/alerting/silence/new\",\"dashboardURL\":\"https://grafana/d/"
    "x\","
    "\"panelURL\":\"\",\"values\":{\"B\":44.2,\"C\":1},"
    "\"valueString\":\"[ var='B' labels={} value=44.2 ]\"}],"
    "\"groupLabels\":{\"alertname\":\"High memory usage\"},\"commonLabels\":{\"team\":\"blue\"},"
    "\"commonAnnotations\":{},\"externalURL\":\"https://grafana/\",\"version\":\"1\","
    "\"groupKey\":\"{}:{alertname=\\\"High memory usage\\\"}\",\"truncatedAlerts\":0,"
    "\"title\":\"[FIRING:1] High memory usage\",\"state\":\"alerting\",\"message\":\"...\"}";

/* What *events holds before a call that must set it to NULL. */
static json_t unset_value;
#define UNSET (&unset_value)

static json_t *load(const char *text) {
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j) {
        fail_msg("bad test JSON at %d: %s", e.position, e.text);
    }
    return j;
}

static const char *str(const json_t *obj, const char *key) {
    return json_string_value(json_object_get(obj, key));
}

/* The events of a payload that must map; the array is the caller's. */
static json_t *map_ok(int (*fn)(const json_t *, const opsc_webhook_opts_t *, json_t **, char *,
                                size_t),
                      const char *text, const opsc_webhook_opts_t *o) {
    json_t *body = load(text), *events = NULL;
    char err[128] = "";
    int rc = fn(body, o, &events, err, sizeof(err));
    if (rc != 0) {
        fail_msg("%s: %s", err, text);
    }
    json_decref(body);
    assert_true(json_is_array(events));
    return events;
}

static json_t *am_one(const char *alert) {
    char text[2048];
    snprintf(text, sizeof(text), "{\"status\":\"firing\",\"alerts\":[%s]}", alert);
    json_t *events = map_ok(opsc_webhook_alertmanager, text, NULL);
    assert_int_equal(json_array_size(events), 1);
    json_t *ev = json_incref(json_array_get(events, 0));
    json_decref(events);
    return ev;
}

/* A refused call: OPSC_EPARSE, *events set to NULL, and this message. */
static void assert_refused(int rc, const json_t *events, const char *err, const char *want) {
    assert_int_equal(rc, OPSC_EPARSE);
    assert_null(events);
    assert_string_equal(err, want);
}

static void assert_tags(const json_t *tags, const char *const *want, size_t n) {
    assert_int_equal(json_array_size(tags), n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(json_string_value(json_array_get(tags, i)), want[i]);
    }
}

static void test_alertmanager_firing(void **state) {
    (void)state;
    json_t *events = map_ok(opsc_webhook_alertmanager, am_firing, NULL);
    assert_int_equal(json_array_size(events), 2);
    json_t *a = json_array_get(events, 0), *b = json_array_get(events, 1);

    assert_string_equal(str(a, "source_system"), "alertmanager");
    assert_string_equal(str(a, "source_alert_id"), "1a30ba71cca2921f");
    assert_string_equal(str(a, "device_ip"), "10.0.0.5");
    assert_null(json_object_get(a, "device_name"));
    assert_string_equal(str(a, "severity"), "critical");
    assert_string_equal(str(a, "category"), "compute");
    assert_string_equal(str(a, "alert_type"), "NodeDown");
    assert_string_equal(str(a, "title"), "Node 10.0.0.5 is down");
    assert_string_equal(str(a, "message"), "No scrape for 5m");
    assert_string_equal(str(a, "occurred_at"), "2024-03-01T10:00:00.123Z");
    assert_true(json_is_false(json_object_get(a, "is_clear")));
    static const char *const tags_a[] = {"alertname=NodeDown", "category=compute",
                                         "instance=10.0.0.5:9100", "job=node", "severity=critical"};
    assert_tags(json_object_get(a, "tags"), tags_a, 5);
    json_t *cf = json_object_get(a, "custom_fields");
    assert_string_equal(str(json_object_get(cf, "labels"), "job"), "node");
    assert_string_equal(str(json_object_get(cf, "annotations"), "description"), "No scrape for 5m");
    assert_string_equal(str(cf, "generatorURL"), "http://prom:9090/graph?g0.expr=up+%3D%3D+0");
    assert_string_equal(str(cf, "receiver"), "opsconductor");
    assert_null(json_object_get(cf, "endsAt"));
    assert_int_equal(json_object_size(cf), 4);
    json_t *raw = json_object_get(a, "raw_data");
    assert_string_equal(str(raw, "fingerprint"), "1a30ba71cca2921f");
    assert_string_equal(str(raw, "endsAt"), "0001-01-01T00:00:00Z");

    /* a host name with a port, "high" -> major, no summary: alertname on instance */
    assert_string_equal(str(b, "device_name"), "db1.example");
    assert_null(json_object_get(b, "device_ip"));
    assert_string_equal(str(b, "severity"), "major");
    assert_string_equal(str(b, "category"), "application");
    assert_string_equal(str(b, "title"), "DiskFull on db1.example:9100");
    assert_string_equal(str(b, "message"), "/var is 97% full");
    static const char *const tags_b[] = {"alertname=DiskFull", "instance=db1.example:9100",
                                         "job=node", "mountpoint=/var", "severity=high"};
    assert_tags(json_object_get(b, "tags"), tags_b, 5);
    json_decref(events);
}

static void test_alertmanager_resolved(void **state) {
    (void)state;
    json_t *firing = map_ok(opsc_webhook_alertmanager, am_firing, NULL);
    json_t *events = map_ok(opsc_webhook_alertmanager, am_resolved, NULL);
    assert_int_equal(json_array_size(events), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *f = json_array_get(firing, i), *r = json_array_get(events, i);
        assert_true(json_is_true(json_object_get(r, "is_clear")));
        /* the same alert: same id and severity (not forced to "clear") */
        assert_string_equal(str(r, "source_alert_id"), str(f, "source_alert_id"));
        assert_string_equal(str(r, "severity"), str(f, "severity"));
        assert_string_equal(str(r, "occurred_at"), str(f, "occurred_at"));
    }
    json_t *cf = json_object_get(json_array_get(events, 0), "custom_fields");
    assert_string_equal(str(cf, "endsAt"), "2024-03-01T10:20:00Z");
    assert_string_equal(str(json_array_get(events, 0), "severity"), "critical");
    json_decref(events);
    json_decref(firing);
}

static void test_instance_and_device(void **state) {
    (void)state;
    static const struct {
        const char *instance, *ip, *name;
    } cases[] = {
        {"10.0.0.5:9100", "10.0.0.5", NULL},
        {"[2001:db8::1]:9100", "2001:db8::1", NULL},
        {"host.example:9100", NULL, "host.example"},
        {"2001:db8::2", "2001:db8::2", NULL},
        {"192.168.1.1", "192.168.1.1", NULL},
        {"https://server.example.org", NULL, "server.example.org"},
        {"https://probe@10.1.1.1:8443/health?x=1", "10.1.1.1", NULL},
        {"[fe80::1]", "fe80::1", NULL},
        {"node-a", NULL, "node-a"},
        {"host:metrics", NULL, "host:metrics"},
        {"router1.example:", NULL, "router1.example:"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char alert[256];
        snprintf(alert, sizeof(alert), "{\"labels\":{\"alertname\":\"X\",\"instance\":\"%s\"}}",
                 cases[i].instance);
        json_t *ev = am_one(alert);
        if (cases[i].ip) {
            assert_string_equal(str(ev, "device_ip"), cases[i].ip);
            assert_null(json_object_get(ev, "device_name"));
        } else {
            assert_string_equal(str(ev, "device_name"), cases[i].name);
            assert_null(json_object_get(ev, "device_ip"));
        }
        char title[128];
        snprintf(title, sizeof(title), "X on %s", cases[i].instance);
        assert_string_equal(str(ev, "title"), title);
        json_decref(ev);
    }
    /* Without an instance: host, node, hostname, job, then the source's name; always a name. */
    static const struct {
        const char *labels, *name;
    } fallbacks[] = {
        {"\"host\":\"10.9.9.9\",\"node\":\"n1\",\"job\":\"j\"", "10.9.9.9"},
        {"\"node\":\"n1\",\"hostname\":\"h1\",\"job\":\"j\"", "n1"},
        {"\"hostname\":\"h1\",\"job\":\"j\"", "h1"},
        {"\"host\":\"\",\"job\":\"j\"", "j"},
        {"\"instance\":\":9100\",\"zone\":\"z\"", "alertmanager"},
        {"\"zone\":\"z\"", "alertmanager"},
    };
    for (size_t i = 0; i < sizeof(fallbacks) / sizeof(fallbacks[0]); i++) {
        char alert[256];
        snprintf(alert, sizeof(alert), "{\"labels\":{\"alertname\":\"X\",%s}}",
                 fallbacks[i].labels);
        json_t *ev = am_one(alert);
        assert_string_equal(str(ev, "device_name"), fallbacks[i].name);
        assert_null(json_object_get(ev, "device_ip"));
        json_decref(ev);
    }
}

static void test_severity_map(void **state) {
    (void)state;
    static const struct {
        const char *label, *severity;
    } defaults[] = {
        {"critical", "critical"}, {"high", "major"},      {"error", "major"},
        {"major", "major"},       {"warning", "warning"}, {"warn", "warning"},
        {"minor", "minor"},       {"medium", "minor"},    {"low", "info"},
        {"info", "info"},         {"none", "info"},       {"page", "critical"},
        {"CRITICAL", "critical"}, {"Warn", "warning"},    {"disaster", "warning"},
        {"", "warning"},
    };
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        char alert[128];
        snprintf(alert, sizeof(alert), "{\"labels\":{\"severity\":\"%s\"}}", defaults[i].label);
        json_t *ev = am_one(alert);
        assert_string_equal(str(ev, "severity"), defaults[i].severity);
        json_decref(ev);
    }
    json_t *ev = am_one("{\"labels\":{\"alertname\":\"NoSeverity\"}}");
    assert_string_equal(str(ev, "severity"), "warning");
    json_decref(ev);

    /* A custom map replaces the default one; its labels match case-insensitively. */
    json_t *map = load("{\"P1\":\"critical\",\"p2\":\"Major\",\"p5\":\"clear\"}");
    opsc_webhook_opts_t o = {.severity_map = map, .default_category = "Network"};
    json_t *events =
        map_ok(opsc_webhook_alertmanager,
               "{\"status\":\"firing\",\"alerts\":["
               "{\"labels\":{\"severity\":\"p1\"}},{\"labels\":{\"severity\":\"P2\"}},"
               "{\"labels\":{\"severity\":\"p5\"}},{\"labels\":{\"severity\":\"high\"}},"
               "{\"labels\":{\"severity\":\"p1\",\"category\":\"Power\"}},"
               "{\"labels\":{\"category\":\"plumbing\"}}]}",
               &o);
    static const char *const want[] = {"critical", "major",    "clear",
                                       "warning",  "critical", "warning"};
    static const char *const cats[] = {"network", "network", "network",
                                       "network", "power",   "network"};
    assert_int_equal(json_array_size(events), 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(str(json_array_get(events, i), "severity"), want[i]);
        assert_string_equal(str(json_array_get(events, i), "category"), cats[i]);
    }
    json_decref(events);
    json_decref(map);
}

static void test_bad_options(void **state) {
    (void)state;
    static const struct {
        const char *map, *category, *err;
    } bad[] = {
        {"{\"P1\":\"urgent\"}", NULL, "severity_map.P1: not a severity"},
        {"{\"P1\":3}", NULL, "severity_map.P1: not a severity"},
        {"[\"critical\"]", NULL, "severity_map: not an object"},
        {NULL, "plumbing", "default_category: not a category"},
    };
    json_t *body = load(am_firing);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *map = bad[i].map ? load(bad[i].map) : NULL, *events = UNSET;
        opsc_webhook_opts_t o = {.severity_map = map, .default_category = bad[i].category};
        char err[128] = "";
        int rc = opsc_webhook_alertmanager(body, &o, &events, err, sizeof(err));
        assert_refused(rc, events, err, bad[i].err);
        json_decref(map);
    }
    json_decref(body);
}

static void test_fingerprint_from_labels(void **state) {
    (void)state;
    /* The same labels in another order, another status and other annotations: the same id. */
    json_t *events =
        map_ok(opsc_webhook_alertmanager,
               "{\"status\":\"firing\",\"alerts\":["
               "{\"status\":\"firing\",\"labels\":{\"job\":\"node\",\"alertname\":\"DiskFull\","
               "\"instance\":\"10.0.0.7:9100\"},\"annotations\":{\"summary\":\"97%\"}},"
               "{\"status\":\"resolved\",\"labels\":{\"alertname\":\"DiskFull\",\"instance\":"
               "\"10.0.0.7:9100\",\"job\":\"node\"},\"annotations\":{\"summary\":\"80%\"},"
               "\"fingerprint\":\"\"},"
               "{\"status\":\"firing\",\"labels\":{\"alertname\":\"DiskFull\",\"instance\":"
               "\"10.0.0.8:9100\",\"job\":\"node\"}}]}",
               NULL);
    const char *a = str(json_array_get(events, 0), "source_alert_id");
    const char *b = str(json_array_get(events, 1), "source_alert_id");
    const char *c = str(json_array_get(events, 2), "source_alert_id");
    /* sha256 of "alertname=DiskFull\ninstance=10.0.0.7:9100\njob=node\n" */
    assert_string_equal(a, "231c252a00fb05707475341cf1674056799dd12438ec747be484b721951fc8f4");
    assert_string_equal(b, a);
    assert_string_not_equal(c, a);
    assert_int_equal(strlen(c), 64);
    json_decref(events);
}

static void test_alert_details(void **state) {
    (void)state;
    /* Non-string labels as JSON text, tags sorted by name. */
    json_t *ev = am_one("{\"labels\":{\"zone\":\"b\",\"alertname\":\"A\",\"count\":3,"
                        "\"flag\":true,\"nested\":{\"a\":[1,null]},\"empty\":\"\"}}");
    static const char *const tags[] = {
        "alertname=A", "count=3", "empty=", "flag=true", "nested={\"a\":[1,null]}", "zone=b"};
    assert_tags(json_object_get(ev, "tags"), tags, 6);
    assert_string_equal(
        str(json_object_get(json_object_get(ev, "custom_fields"), "labels"), "count"), "3");
    /* no summary, alertname, instance: alert_type itself; no annotations: no message */
    assert_string_equal(str(ev, "title"), "A");
    assert_null(json_object_get(ev, "message"));
    assert_null(json_object_get(ev, "occurred_at"));
    json_decref(ev);

    ev = am_one("{\"labels\":{},\"annotations\":{\"title\":\"T\",\"message\":\"M\"},"
                "\"startsAt\":\"0001-01-01T00:00:00Z\",\"generatorURL\":7}");
    assert_string_equal(str(ev, "alert_type"), "alertmanager_alert");
    assert_string_equal(str(ev, "title"), "T");
    assert_string_equal(str(ev, "message"), "M");
    assert_null(json_object_get(ev, "occurred_at"));
    assert_int_equal(json_array_size(json_object_get(ev, "tags")), 0);
    assert_null(json_object_get(json_object_get(ev, "custom_fields"), "generatorURL"));
    assert_string_equal(str(ev, "device_name"), "alertmanager");
    json_decref(ev);

    /* summary wins over title, description over message; "" counts as none */
    ev = am_one("{\"labels\":{\"alertname\":\"A\"},\"annotations\":{\"summary\":\"\",\"title\":"
                "\"T\",\"description\":\"D\",\"message\":\"M\"}}");
    assert_string_equal(str(ev, "title"), "T");
    assert_string_equal(str(ev, "message"), "D");
    json_decref(ev);

    /* An alert without status takes the payload's; no alerts at all is no events. */
    json_t *events =
        map_ok(opsc_webhook_alertmanager, "{\"status\":\"resolved\",\"alerts\":[{}]}", NULL);
    assert_true(json_is_true(json_object_get(json_array_get(events, 0), "is_clear")));
    json_decref(events);
    events = map_ok(opsc_webhook_alertmanager, "{\"alerts\":[]}", NULL);
    assert_int_equal(json_array_size(events), 0);
    json_decref(events);
}

static void test_grafana(void **state) {
    (void)state;
    json_t *events = map_ok(opsc_webhook_grafana, grafana, NULL);
    assert_int_equal(json_array_size(events), 1);
    json_t *ev = json_array_get(events, 0);
    assert_string_equal(str(ev, "source_system"), "grafana");
    assert_string_equal(str(ev, "source_alert_id"), "c6eadffa33fcdf37");
    assert_string_equal(str(ev, "alert_type"), "High memory usage");
    assert_string_equal(str(ev, "title"), "Memory above 90%");
    assert_string_equal(str(ev, "severity"), "warning");
    assert_string_equal(str(ev, "occurred_at"), "2024-03-01T09:51:03.157076+02:00");
    /* grafana_folder is not a device: no instance, host or job -> the source's name */
    assert_string_equal(str(ev, "device_name"), "grafana");
    assert_false(json_is_true(json_object_get(ev, "is_clear")));
    static const char *const tags[] = {"alertname=High memory usage", "grafana_folder=Infra",
                                       "severity=warning", "team=blue"};
    assert_tags(json_object_get(ev, "tags"), tags, 4);
    json_t *cf = json_object_get(ev, "custom_fields");
    assert_string_equal(str(cf, "dashboardURL"), "https://grafana/d/x");
    assert_string_equal(str(cf, "silenceURL"), "https://grafana/alerting/silence/new");
    assert_string_equal(str(cf, "valueString"), "[ var='B' labels={} value=44.2 ]");
    assert_null(json_object_get(cf, "panelURL")); /* "" */
    assert_string_equal(str(cf, "receiver"), "ops");
    assert_true(json_is_object(json_object_get(json_object_get(ev, "raw_data"), "values")));
    json_decref(events);

    json_t *am = map_ok(opsc_webhook_alertmanager, grafana, NULL);
    ev = json_array_get(am, 0);
    assert_string_equal(str(ev, "source_system"), "alertmanager");
    assert_null(json_object_get(json_object_get(ev, "custom_fields"), "dashboardURL"));
    json_decref(am);

    ev = NULL;
    events = map_ok(opsc_webhook_grafana, "{\"alerts\":[{\"status\":\"resolved\"}]}", NULL);
    ev = json_array_get(events, 0);
    assert_string_equal(str(ev, "alert_type"), "grafana_alert");
    assert_string_equal(str(ev, "title"), "grafana_alert");
    assert_true(json_is_true(json_object_get(ev, "is_clear")));
    json_decref(events);
}

static void test_bad_payloads(void **state) {
    (void)state;
    static const struct {
        const char *body, *err;
    } bad[] = {
        {"[]", "body: not an object"},
        {"\"alerts\"", "body: not an object"},
        {"{}", "alerts: missing or not an array"},
        {"{\"alerts\":{}}", "alerts: missing or not an array"},
        {"{\"alerts\":null}", "alerts: missing or not an array"},
        {"{\"status\":\"firing\",\"alerts\":[{},1]}", "alerts[1]: not an object"},
        {"{\"alerts\":[{\"status\":\"firing\"},{\"status\":\"firing\"},{\"status\":\"firing\"},"
         "{\"status\":\"firing\",\"labels\":[]}]}",
         "alerts[3].labels: not an object"},
        {"{\"alerts\":[{\"status\":\"firing\",\"annotations\":\"x\"}]}",
         "alerts[0].annotations: not an object"},
        {"{\"status\":\"firing\",\"alerts\":[{\"status\":\"pending\"}]}",
         "alerts[0].status: not firing or resolved"},
        {"{\"status\":\"firing\",\"alerts\":[{\"status\":1}]}",
         "alerts[0].status: not firing or resolved"},
        {"{\"alerts\":[{}]}", "alerts[0].status: not firing or resolved"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *body = load(bad[i].body);
        for (int g = 0; g < 2; g++) {
            json_t *events = UNSET; /* overwritten with NULL */
            char err[128] = "";
            int rc = g ? opsc_webhook_grafana(body, NULL, &events, err, sizeof(err))
                       : opsc_webhook_alertmanager(body, NULL, &events, err, sizeof(err));
            assert_refused(rc, events, err, bad[i].err);
        }
        json_decref(body);
    }
    json_t *events = UNSET;
    char err[64];
    int rc = opsc_webhook_alertmanager(NULL, NULL, &events, err, sizeof(err));
    assert_refused(rc, events, err, "body: not an object");
}

/* ---- generic ---------------------------------------------------------------------------- */

static json_t *generic_ok(const char *config, const char *body) {
    json_t *c = load(config), *b = load(body), *events = NULL;
    char err[128] = "";
    int rc = opsc_webhook_generic(b, c, &events, err, sizeof(err));
    if (rc != 0) {
        fail_msg("%s", err);
    }
    json_decref(c);
    json_decref(b);
    return events;
}

static void test_generic_items(void **state) {
    (void)state;
    static const char config[] =
        "{\"items\":\"/data/incidents\",\"source_system\":\"nms\",\"category\":\"network\","
        "\"fields\":{\"source_alert_id\":\"/id\",\"device_ip\":\"/target/addr\","
        "\"device_name\":\"/target/name\",\"severity\":\"/level\",\"category\":\"/kind\","
        "\"alert_type\":\"/meta/a~1b\",\"title\":\"/meta/t~0x\",\"message\":\"/lines/1\","
        "\"occurred_at\":\"/at\",\"tags\":\"/tags\",\"custom_fields\":\"/extra\"},"
        "\"severity_map\":{\"1\":\"critical\",\"2\":\"major\",\"true\":\"info\"},"
        "\"clear\":{\"pointer\":\"/state\",\"equals\":[\"resolved\",\"OK\"]},"
        "\"secret_header\":\"X-Sig\"}";
    static const char body[] =
        "{\"data\":{\"incidents\":["
        "{\"id\":17,\"target\":{\"addr\":\"10.1.2.3\",\"name\":\"core-sw1\"},\"level\":1,"
        "\"kind\":\"Power\",\"meta\":{\"a/b\":\"psu_fail\",\"t~x\":\"PSU 2 failed\"},"
        "\"lines\":[\"first\",\"second\"],\"at\":\"2024-03-01T10:00:00Z\",\"tags\":[\"dc1\",5,null]"
        ","
        "\"extra\":{\"rack\":\"R4\"},\"state\":\"ok\"},"
        "{\"id\":\"b-2\",\"target\":{\"addr\":\"edge-rtr\"},\"level\":true,\"kind\":\"plumbing\","
        "\"tags\":\"solo\",\"extra\":[1],\"state\":\"open\"},"
        "{\"id\":0.1,\"level\":2,\"tags\":{\"z\":1,\"a\":\"x\"},\"state\":null}]}}";
    json_t *events = generic_ok(config, body);
    assert_int_equal(json_array_size(events), 3);
    json_t *a = json_array_get(events, 0), *b = json_array_get(events, 1),
           *c = json_array_get(events, 2);

    assert_string_equal(str(a, "source_system"), "nms");
    assert_string_equal(str(a, "source_alert_id"), "17");
    assert_string_equal(str(a, "device_ip"), "10.1.2.3");
    assert_string_equal(str(a, "device_name"), "core-sw1");
    assert_string_equal(str(a, "severity"), "critical");
    assert_string_equal(str(a, "category"), "power");
    assert_string_equal(str(a, "alert_type"), "psu_fail");
    assert_string_equal(str(a, "title"), "PSU 2 failed");
    assert_string_equal(str(a, "message"), "second");
    assert_string_equal(str(a, "occurred_at"), "2024-03-01T10:00:00Z");
    assert_true(json_is_true(json_object_get(a, "is_clear")));
    static const char *const tags_a[] = {"dc1", "5"};
    assert_tags(json_object_get(a, "tags"), tags_a, 2);
    assert_string_equal(str(json_object_get(a, "custom_fields"), "rack"), "R4");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "raw_data"), "id")), 17);

    /* not an address: a name; a bool stringified then mapped; an unknown kind: the static one */
    assert_string_equal(str(b, "source_alert_id"), "b-2");
    assert_null(json_object_get(b, "device_ip"));
    assert_string_equal(str(b, "device_name"), "edge-rtr");
    assert_string_equal(str(b, "severity"), "info");
    assert_string_equal(str(b, "category"), "network");
    assert_true(json_is_false(json_object_get(b, "is_clear")));
    static const char *const tags_b[] = {"solo"};
    assert_tags(json_object_get(b, "tags"), tags_b, 1);
    assert_null(json_object_get(b, "custom_fields")); /* not an object */
    assert_null(json_object_get(b, "title"));
    assert_null(json_object_get(b, "message"));

    assert_string_equal(str(c, "source_alert_id"), "0.1"); /* not 0.10000000000000001 */
    assert_string_equal(str(c, "severity"), "major");
    assert_null(json_object_get(c, "device_ip"));
    assert_null(json_object_get(c, "device_name"));
    assert_true(json_is_false(json_object_get(c, "is_clear")));
    static const char *const tags_c[] = {"a=x", "z=1"};
    assert_tags(json_object_get(c, "tags"), tags_c, 2);
    json_decref(events);
}

static void test_generic_body_shapes(void **state) {
    (void)state;
    /* No items pointer: one object is one item, an array is the items. Defaults. */
    static const char config[] = "{\"fields\":{\"title\":\"/\",\"severity\":\"/sev\","
                                 "\"device_ip\":\"/ip\",\"alert_type\":\"/list/0/type\"}}";
    json_t *events = generic_ok(config, "{\"\":\"empty key\",\"sev\":\"HIGH\",\"ip\":\"::1\","
                                        "\"list\":[{\"type\":\"t0\"}]}");
    assert_int_equal(json_array_size(events), 1);
    json_t *ev = json_array_get(events, 0);
    assert_string_equal(str(ev, "source_system"), "webhook");
    assert_string_equal(str(ev, "title"), "empty key");
    assert_string_equal(str(ev, "severity"), "major");
    assert_string_equal(str(ev, "category"), "application");
    assert_string_equal(str(ev, "device_ip"), "::1");
    assert_string_equal(str(ev, "alert_type"), "t0");
    assert_null(json_object_get(ev, "is_clear"));
    assert_null(json_object_get(ev, "tags"));
    assert_int_equal(json_object_size(ev), 7); /* + source_system, category, raw_data */
    json_decref(events);

    events = generic_ok(config, "[{\"sev\":\"low\"},{\"list\":[]},{\"list\":{\"0\":{\"type\":"
                                "\"obj\"}}}]");
    assert_int_equal(json_array_size(events), 3);
    assert_string_equal(str(json_array_get(events, 0), "severity"), "info");
    assert_string_equal(str(json_array_get(events, 1), "severity"), "warning");
    assert_null(json_object_get(json_array_get(events, 1), "alert_type"));
    /* "0" names a member of an object, an index of an array */
    assert_string_equal(str(json_array_get(events, 2), "alert_type"), "obj");
    json_decref(events);

    /* Pointer details: "-", leading zeros, out of range and through scalars are all missing. */
    events = generic_ok("{\"fields\":{\"title\":\"/a/-\",\"message\":\"/a/01\",\"alert_type\":"
                        "\"/a/9\",\"device_name\":\"/s/x\",\"source_alert_id\":\"/a/1\"}}",
                        "{\"a\":[\"zero\",\"one\"],\"s\":\"str\"}");
    ev = json_array_get(events, 0);
    assert_string_equal(str(ev, "source_alert_id"), "one");
    assert_null(json_object_get(ev, "title"));
    assert_null(json_object_get(ev, "message"));
    assert_null(json_object_get(ev, "alert_type"));
    assert_null(json_object_get(ev, "device_name"));
    json_decref(events);

    events = generic_ok("{\"items\":\"/x\"}", "{\"x\":[]}");
    assert_int_equal(json_array_size(events), 0);
    json_decref(events);
}

static void test_generic_bad(void **state) {
    (void)state;
    static const struct {
        const char *config, *body, *err;
    } bad[] = {
        {"[]", "{}", "config: not an object"},
        {"{\"items\":5}", "{}", "items: not a JSON pointer"},
        {"{\"items\":\"alerts\"}", "{}", "items: not a JSON pointer"},
        {"{\"fields\":[]}", "{}", "fields: not an object"},
        {"{\"fields\":{\"colour\":\"/c\"}}", "{}", "fields.colour: not an event field"},
        {"{\"fields\":{\"raw_data\":\"/c\"}}", "{}", "fields.raw_data: not an event field"},
        {"{\"fields\":{\"title\":\"/a~2\"}}", "{}", "fields.title: not a JSON pointer"},
        {"{\"fields\":{\"title\":\"/a~\"}}", "{}", "fields.title: not a JSON pointer"},
        {"{\"fields\":{\"title\":true}}", "{}", "fields.title: not a JSON pointer"},
        {"{\"severity_map\":{\"e\":\"bad\"}}", "{}", "severity_map.e: not a severity"},
        {"{\"category\":\"kitchen\"}", "{}", "category: not a category"},
        {"{\"source_system\":\"\"}", "{}", "source_system: not a non-empty string"},
        {"{\"source_system\":1}", "{}", "source_system: not a non-empty string"},
        {"{\"clear\":\"/status\"}", "{}", "clear: not an object"},
        {"{\"clear\":{\"equals\":[\"ok\"]}}", "{}", "clear.pointer: not a JSON pointer"},
        {"{\"clear\":{\"pointer\":\"/s\"}}", "{}", "clear.equals: not an array of strings"},
        {"{\"clear\":{\"pointer\":\"/s\",\"equals\":[]}}", "{}",
         "clear.equals: not an array of strings"},
        {"{\"clear\":{\"pointer\":\"/s\",\"equals\":[\"ok\",1]}}", "{}",
         "clear.equals: not an array of strings"},
        /* the payload */
        {"{\"items\":\"/alerts\"}", "{}", "items: /alerts is not an array"},
        {"{\"items\":\"/alerts\"}", "{\"alerts\":{}}", "items: /alerts is not an array"},
        {"{\"items\":\"/alerts\"}", "{\"alerts\":[{},[]]}", "items[1]: not an object"},
        {"{}", "[{},{},\"x\"]", "items[2]: not an object"},
        {"{}", "42", "body: not an object or an array"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *c = load(bad[i].config), *b = load(bad[i].body), *events = UNSET;
        char err[128] = "";
        int rc = opsc_webhook_generic(b, c, &events, err, sizeof(err));
        assert_refused(rc, events, err, bad[i].err);
        json_decref(c);
        json_decref(b);
    }
    /* null reads as absent */
    json_t *events = generic_ok("{\"items\":null,\"category\":null,\"clear\":null}", "{}");
    assert_int_equal(json_array_size(events), 1);
    json_decref(events);
}

/* ---- HMAC ------------------------------------------------------------------------------- */

static void test_hmac(void **state) {
    (void)state;
    /* RFC 4231 test case 2 */
    static const char msg[] = "what do ya want for nothing?";
    static const char hex[] = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    size_t len = strlen(msg);
    assert_int_equal(opsc_webhook_hmac_ok("Jefe", msg, len, hex), 1);
    assert_int_equal(opsc_webhook_hmac_ok("Jefe", msg, len,
                                          "sha256="
                                          "5BDCC146BF60754E6A042426"
                                          "089575C75A003F089D2739839DEC58B964EC3843"),
                     1);
    char h[128];
    snprintf(h, sizeof(h), "SHA256=%s", hex);
    assert_int_equal(opsc_webhook_hmac_ok("Jefe", msg, len, h), 1);
    snprintf(h, sizeof(h), " sha256=%s \t", hex);
    assert_int_equal(opsc_webhook_hmac_ok("Jefe", msg, len, h), 1);

    assert_int_equal(opsc_webhook_hmac_ok("jefe", msg, len, hex), 0);     /* other secret */
    assert_int_equal(opsc_webhook_hmac_ok("Jefe", msg, len - 1, hex), 0); /* other body */
    snprintf(h, sizeof(h), "%s", hex);
    h[63] = h[63] == '3' ? '4' : '3';
    assert_int_equal(opsc_webhook_hmac_ok("Jefe", msg, len, h), 0); /* last digit */
    snprintf(h, sizeof(h), "%.63s", hex);
    assert_int_equal(opsc_webhook_hmac_ok("Jefe", msg, len, h), 0); /* too short */
    snprintf(h, sizeof(h), "%s00", hex);
    assert_int_equal(opsc_webhook_hmac_ok("Jefe", msg, len, h), 0); /* too long */
    snprintf(h, sizeof(h), "%s", hex);
    h[0] = 'g';
    assert_int_equal(opsc_webhook_hmac_ok("Jefe", msg, len, h), 0); /* not hex */
    snprintf(h, sizeof(h), "sha1=%s", hex);
    assert_int_equal(opsc_webhook_hmac_ok("Jefe", msg, len, h), 0); /* other scheme */
    assert_int_equal(opsc_webhook_hmac_ok("Jefe", msg, len, ""), 0);
    assert_int_equal(opsc_webhook_hmac_ok("Jefe", msg, len, "sha256="), 0);
    assert_int_equal(opsc_webhook_hmac_ok("Jefe", msg, len, NULL), 0);
    assert_int_equal(opsc_webhook_hmac_ok(NULL, msg, len, hex), 0);
    assert_int_equal(opsc_webhook_hmac_ok("", msg, len, hex), 0);

    /* A JSON body as a sender signs it (openssl dgst -sha256 -hmac s3cret). */
    assert_int_equal(opsc_webhook_hmac_ok(
                         "s3cret", "{\"id\":1}", 8,
                         "sha256=63ddab34da5838e383545e9c90b40f74a4e3daabc5dd9a8d49a51875ad4b2418"),
                     1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alertmanager_firing),
        cmocka_unit_test(test_alertmanager_resolved),
        cmocka_unit_test(test_instance_and_device),
        cmocka_unit_test(test_severity_map),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_fingerprint_from_labels),
        cmocka_unit_test(test_alert_details),
        cmocka_unit_test(test_grafana),
        cmocka_unit_test(test_bad_payloads),
        cmocka_unit_test(test_generic_items),
        cmocka_unit_test(test_generic_body_shapes),
        cmocka_unit_test(test_generic_bad),
        cmocka_unit_test(test_hmac),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
