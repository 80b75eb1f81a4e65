/* test_preload.c - unit tests for the preloader's parts that need no model: keep-warm
 * schedules, preload specs from JSON, the config file, and the sd_notify datagram. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/sdnotify.h"
#include "server/preload.h"
#include "server/server.h"

static void test_keep_warm_parse(void **state)
{
    (void)state;
    struct pc_keep_warm kw;
    struct pc_error err = {0};
    char buf[24];
    assert_int_equal(pc_keep_warm_parse("always", &kw, &err), PC_OK);
    assert_int_equal(kw.kind, PC_KEEP_WARM_ALWAYS);
    assert_int_equal(pc_keep_warm_parse(NULL, &kw, &err), PC_OK);
    assert_int_equal(kw.kind, PC_KEEP_WARM_NONE);
    assert_int_equal(pc_keep_warm_parse("none", &kw, &err), PC_OK);
    assert_string_equal(pc_keep_warm_format(&kw, buf, sizeof(buf)), "none");
    assert_int_equal(pc_keep_warm_parse("08:00-18:30", &kw, &err), PC_OK);
    assert_int_equal(kw.kind, PC_KEEP_WARM_WINDOW);
    assert_int_equal(kw.start_s, 480 * 60);
    assert_int_equal(kw.end_s, 1110 * 60);
    assert_string_equal(pc_keep_warm_format(&kw, buf, sizeof(buf)), "08:00-18:30");
    assert_int_equal(pc_keep_warm_parse("08:00\xe2\x80\x93"
                                        "18:00",
                                        &kw, &err),
                     PC_OK); /* the en dash */
    assert_int_equal(kw.end_s, 1080 * 60);
    /* Seconds, for a window that opens at a precise moment. */
    assert_int_equal(pc_keep_warm_parse("08:00:30-23:59:59", &kw, &err), PC_OK);
    assert_int_equal(kw.start_s, 8 * 3600 + 30);
    assert_int_equal(kw.end_s, 86399);
    assert_string_equal(pc_keep_warm_format(&kw, buf, sizeof(buf)), "08:00:30-23:59:59");
    /* An edge on a whole minute is written to the second too when the other needs it. */
    assert_int_equal(pc_keep_warm_parse("10:12:56-10:13:00", &kw, &err), PC_OK);
    assert_string_equal(pc_keep_warm_format(&kw, buf, sizeof(buf)), "10:12:56-10:13:00");
    assert_int_equal(pc_keep_warm_parse("00:00-24:00", &kw, &err), PC_OK);
    const char *bad[] = {"sometimes",    "8-18",          "25:00-26:00", "08:00-08:00",
                         "08:00-18:00x", "08:60-09:00",   "08:00",       "08:00:60-09:00",
                         "08:00:-09:00", "24:00:01-08:00"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(pc_keep_warm_parse(bad[i], &kw, &err), PC_ERR_INVALID);
        assert_non_null(strstr(err.msg, bad[i]));
        assert_int_equal(kw.kind, PC_KEEP_WARM_NONE);
    }
}

static void test_keep_warm_active(void **state)
{
    (void)state;
    struct pc_keep_warm kw;
    assert_int_equal(pc_keep_warm_parse("08:00-18:00", &kw, NULL), PC_OK);
    assert_false(pc_keep_warm_active(&kw, (7 * 60 + 59) * 60));
    assert_true(pc_keep_warm_active(&kw, (8 * 60) * 60));
    assert_true(pc_keep_warm_active(&kw, (17 * 60 + 59) * 60));
    assert_false(pc_keep_warm_active(&kw, (18 * 60) * 60));
    /* A night window wraps past midnight. */
    assert_int_equal(pc_keep_warm_parse("22:00-06:00", &kw, NULL), PC_OK);
    assert_true(pc_keep_warm_active(&kw, (23 * 60) * 60));
    assert_true(pc_keep_warm_active(&kw, (0) * 60));
    assert_true(pc_keep_warm_active(&kw, (5 * 60 + 59) * 60));
    assert_false(pc_keep_warm_active(&kw, (6 * 60) * 60));
    assert_false(pc_keep_warm_active(&kw, (12 * 60) * 60));
    assert_int_equal(pc_keep_warm_parse("always", &kw, NULL), PC_OK);
    assert_true(pc_keep_warm_active(&kw, (12 * 60) * 60));
    assert_int_equal(pc_keep_warm_parse("none", &kw, NULL), PC_OK);
    assert_false(pc_keep_warm_active(&kw, (12 * 60) * 60));
}

/* The thread sleeps until the schedule's next edge: it opens and closes on time. */
static void test_keep_warm_next_edge(void **state)
{
    (void)state;
    struct pc_keep_warm kw;
    assert_int_equal(pc_keep_warm_parse("08:00-18:00", &kw, NULL), PC_OK);
    assert_int_equal(pc_keep_warm_next_edge(&kw, 8 * 3600 - 1), 1);
    assert_int_equal(pc_keep_warm_next_edge(&kw, 8 * 3600), 10 * 3600);
    assert_int_equal(pc_keep_warm_next_edge(&kw, 18 * 3600), 14 * 3600);
    assert_int_equal(pc_keep_warm_next_edge(&kw, 23 * 3600), 9 * 3600); /* past midnight */
    assert_int_equal(pc_keep_warm_parse("22:00-06:00:05", &kw, NULL), PC_OK);
    assert_int_equal(pc_keep_warm_next_edge(&kw, 6 * 3600), 5);
    assert_int_equal(pc_keep_warm_parse("always", &kw, NULL), PC_OK);
    assert_int_equal(pc_keep_warm_next_edge(&kw, 0), -1);
    assert_int_equal(pc_keep_warm_parse("none", &kw, NULL), PC_OK);
    assert_int_equal(pc_keep_warm_next_edge(&kw, 0), -1);
}

static void test_spec_json(void **state)
{
    (void)state;
    struct pc_preload_spec spec;
    struct pc_error err = {0};
    json_t *o = json_string("tinyllama:latest");
    assert_int_equal(pc_preload_spec_from_json(o, &spec, &err), PC_OK);
    json_decref(o);
    assert_string_equal(spec.model, "tinyllama:latest");
    assert_int_equal(spec.max_retries, 3);
    assert_int_equal(spec.retry_delay_ms, 2000);
    assert_true(spec.required);

    o = json_pack("{s:s, s:s, s:i, s:i, s:s, s:s, s:b}", "model", "qwen2.5-coder:3b", "displayName",
                  "Qwen 2.5 Coder 3B", "maxRetries", 5, "retryDelayMs", 100, "warmup", "Bonjour",
                  "keepWarm", "08:00-18:00", "required", 0);
    assert_int_equal(pc_preload_spec_from_json(o, &spec, &err), PC_OK);
    json_decref(o);
    assert_string_equal(spec.display_name, "Qwen 2.5 Coder 3B");
    assert_int_equal(spec.max_retries, 5);
    assert_int_equal(spec.retry_delay_ms, 100);
    assert_string_equal(spec.warmup, "Bonjour");
    assert_int_equal(spec.keep_warm.kind, PC_KEEP_WARM_WINDOW);
    assert_false(spec.required);
    json_t *back = pc_preload_spec_to_json(&spec);
    assert_string_equal(json_string_value(json_object_get(back, "keepWarm")), "08:00-18:00");
    json_decref(back);

    static const struct {
        const char *json, *want;
    } bad[] = {
        {"{\"displayName\": \"x\"}", "\"model\" is required"},
        {"{\"model\": \"m\", \"maxRetries\": -1}", "\"maxRetries\""},
        {"{\"model\": \"m\", \"retries\": 1}", "unknown preload field \"retries\""},
        {"{\"model\": \"m\", \"required\": \"yes\"}", "\"required\""},
        {"{\"model\": \"m\", \"warmup\": 7}", "\"warmup\" must be a string"},
        {"42", "a model name or an object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o = json_loads(bad[i].json, JSON_DECODE_ANY, NULL);
        assert_non_null(o);
        assert_int_not_equal(pc_preload_spec_from_json(o, &spec, &err), PC_OK);
        assert_non_null(strstr(err.msg, bad[i].want));
        json_decref(o);
    }
}

static void test_config_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/pc-config-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/config.json", dir);
    unsetenv("PRECHARGE_PRELOAD");
    setenv("MODEL_PRELOAD_TIMEOUT", "1500", 1);
    struct pc_server_config cfg;
    struct pc_error err = {0};
    assert_int_equal(pc_server_config_from_env(&cfg, &err), PC_OK);
    assert_int_equal(cfg.preload_timeout_ms, 1500);
    assert_int_equal(cfg.health_interval_ms, 300000);
    assert_string_equal(cfg.ollama_url, "http://localhost:11434");
    /* A missing file is fine unless it was asked for. */
    assert_int_equal(pc_server_config_load_file(&cfg, path, false, &err), PC_OK);
    assert_int_equal(pc_server_config_load_file(&cfg, path, true, &err), PC_ERR_NOT_FOUND);

    FILE *f = fopen(path, "w");
    fputs("{\"preload\": [\"a\", {\"model\": \"b\", \"keepWarm\": \"always\"}], \"max_models\": 2, "
          "\"keep_alive\": \"10m\", \"health_check_interval_ms\": 50, \"max_queue\": 7}",
          f);
    fclose(f);
    assert_int_equal(pc_server_config_load_file(&cfg, path, true, &err), PC_OK);
    assert_int_equal(cfg.n_preload, 2);
    assert_string_equal(cfg.preload[1].model, "b");
    assert_int_equal(cfg.preload[1].keep_warm.kind, PC_KEEP_WARM_ALWAYS);
    assert_int_equal(cfg.pool.max_models, 2);
    assert_int_equal(cfg.max_queue, 7);
    assert_int_equal(cfg.health_interval_ms, 50);
    assert_int_equal(cfg.preload_timeout_ms, 1500); /* the environment's, not in the file */
    assert_string_equal(cfg.config_file, path);

    static const char *const bad[][2] = {
        {"{\"max_models\": 0}", "\"max_models\""},
        {"{\"max_queue\": -1}", "\"max_queue\""},
        {"{\"max_queue\": \"lots\"}", "\"max_queue\""},
        {"{\"colour\": \"red\"}", "unknown key \"colour\""},
        {"{\"preload\": [\"a\", \"a\"]}", "listed twice"},
        {"{\"keep_alive\": \"soon\"}", "\"keep_alive\""},
        {"[1]", "expected a JSON object"},
        {"{\"host\": ", "line 1"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        f = fopen(path, "w");
        fputs(bad[i][0], f);
        fclose(f);
        assert_int_equal(pc_server_config_load_file(&cfg, path, true, &err), PC_ERR_INVALID);
        assert_non_null(strstr(err.msg, bad[i][1]));
        assert_non_null(strstr(err.msg, path));
    }
    unlink(path);
    rmdir(dir);
    unsetenv("MODEL_PRELOAD_TIMEOUT");
}

static void test_sd_notify(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(pc_sd_notify("READY=1"), 0);

    char dir[] = "/tmp/pc-notify-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/notify", dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(pc_sd_notify("READY=1\nSTATUS=2 of 2 required models warm"), 1);
    char buf[256] = {0};
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    assert_true(n > 0);
    assert_string_equal(buf, "READY=1\nSTATUS=2 of 2 required models warm");

    /* An abstract socket ("@name"). */
    int afd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un aaddr = {.sun_family = AF_UNIX};
    char name[32];
    snprintf(name, sizeof(name), "@pc-notify-%d", (int)getpid());
    memcpy(aaddr.sun_path + 1, name + 1, strlen(name) - 1);
    assert_int_equal(bind(afd, (struct sockaddr *)&aaddr,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name))),
                     0);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(pc_sd_notify("STOPPING=1"), 1);
    memset(buf, 0, sizeof(buf));
    assert_true(recv(afd, buf, sizeof(buf) - 1, 0) > 0);
    assert_string_equal(buf, "STOPPING=1");

    setenv("NOTIFY_SOCKET", "relative/path", 1);
    assert_int_equal(pc_sd_notify("READY=1"), -1);
    unsetenv("NOTIFY_SOCKET");
    close(fd);
    close(afd);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_warm_parse),     cmocka_unit_test(test_keep_warm_active),
        cmocka_unit_test(test_keep_warm_next_edge), cmocka_unit_test(test_spec_json),
        cmocka_unit_test(test_config_file),         cmocka_unit_test(test_sd_notify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
