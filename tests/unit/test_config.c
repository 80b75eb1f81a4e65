/* test_config.c - unit tests for src/server configuration: listen addresses, the environment,
 * and the pool's budget, policy and model-directory allow-list. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/duration.h"
#include "base/err.h"
#include "server/server.h"

#define NS_PER_S 1000000000ll

static const char *const env_vars[] = {
    "PRECHARGE_HOST",           "PRECHARGE_HOME",
    "PRECHARGE_KEEP_ALIVE",     "PRECHARGE_MAX_LOADED_MODELS",
    "PRECHARGE_CONTEXT_LENGTH", "PRECHARGE_THREADS",
    "PRECHARGE_MEMORY_BUDGET",  "PRECHARGE_EVICTION",
    "PRECHARGE_MODEL_DIRS",     "PRECHARGE_MAX_QUEUE",
};

static char *saved_home;

static int clean_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
        unsetenv(env_vars[i]);
    return 0;
}

static int save_home(void **state)
{
    (void)state;
    const char *h = getenv("HOME");
    saved_home = h ? strdup(h) : NULL;
    return clean_env(state);
}

static int restore_home(void **state)
{
    (void)state;
    if (saved_home) {
        setenv("HOME", saved_home, 1);
        free(saved_home);
        saved_home = NULL;
    } else {
        unsetenv("HOME");
    }
    return clean_env(state);
}

/* A config with recognisable values, to see what parsing changes and what it keeps. */
static struct pc_server_config sample(void)
{
    struct pc_server_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.host, sizeof(cfg.host), "keep.me");
    cfg.port = 4242;
    return cfg;
}

/* --- pc_server_parse_hostport -------------------------------------------------------------- */

static void test_hostport_valid(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *host;
        int port;
    } cases[] = {
        {"127.0.0.1:8080", "127.0.0.1", 8080},
        {"0.0.0.0", "0.0.0.0", 4242},
        {":9000", "keep.me", 9000},
        {"[::1]:11435", "::1", 11435},
        {"[::1]", "::1", 4242},
        {"[fe80::1%eth0]:80", "fe80::1%eth0", 80},
        {"http://localhost:1234", "localhost", 1234},
        {"http://example.com", "example.com", 4242},
        {"localhost:0", "localhost", 0},
        {"h:65535", "h", 65535},
        {"::1", "::1", 4242},
        {"fe80::2", "fe80::2", 4242},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pc_server_config cfg = sample();
        struct pc_error e;
        pc_error_clear(&e);
        enum pc_err rc = pc_server_parse_hostport(cases[i].in, &cfg, &e);
        if (rc != PC_OK)
            fail_msg("\"%s\": %s", cases[i].in, e.msg);
        if (strcmp(cfg.host, cases[i].host) != 0 || cfg.port != cases[i].port)
            fail_msg("\"%s\": got host \"%s\" port %d, want \"%s\" %d", cases[i].in, cfg.host,
                     cfg.port, cases[i].host, cases[i].port);
    }
}

static void test_hostport_invalid(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "host:port",   "host:70000", "[::1",
        "host:",       "host:-1",    "host:80x",
        "[::1]x",      "[::1]:",     "h:99999999999999999999",
        "newhost:bad", "h:+80",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pc_server_config cfg = sample();
        struct pc_error e;
        pc_error_clear(&e);
        enum pc_err rc = pc_server_parse_hostport(cases[i], &cfg, &e);
        if (rc != PC_ERR_INVALID)
            fail_msg("\"%s\": got %s, want PC_ERR_INVALID", cases[i], pc_errname(rc));
        assert_int_equal(e.code, PC_ERR_INVALID);
        char quoted[64];
        snprintf(quoted, sizeof(quoted), "\"%s\"", cases[i]);
        if (strstr(e.msg, quoted) == NULL)
            fail_msg("message for \"%s\" does not name it: %s", cases[i], e.msg);
        assert_int_equal(cfg.port, 4242);
        assert_string_equal(cfg.host, "keep.me"); /* a failed parse changes nothing */
    }
    /* A host too long for the config. */
    char longhost[400];
    memset(longhost, 'h', 300);
    snprintf(longhost + 300, sizeof(longhost) - 300, ":80");
    struct pc_server_config cfg = sample();
    assert_int_equal(pc_server_parse_hostport(longhost, &cfg, NULL), PC_ERR_INVALID);
    assert_string_equal(cfg.host, "keep.me");
}

/* --- pc_server_config_from_env ------------------------------------------------------------- */

static void test_env_defaults(void **state)
{
    (void)state;
    setenv("HOME", "/home/tester", 1);
    struct pc_server_config cfg;
    struct pc_error e;
    pc_error_clear(&e);
    assert_int_equal(pc_server_config_from_env(&cfg, &e), PC_OK);
    assert_string_equal(cfg.host, "127.0.0.1");
    assert_int_equal(cfg.port, 11435);
    assert_true(cfg.pool.default_keep_alive_ns == 5 * 60 * NS_PER_S);
    assert_int_equal(cfg.pool.max_models, 3);
    assert_int_equal(cfg.max_queue, 512);
    assert_int_equal(cfg.budget_mode, PC_BUDGET_AUTO);
    assert_int_equal(cfg.pool.policy, PC_POOL_LRU);
    assert_int_equal(cfg.n_model_dirs, 0);
    assert_string_equal(cfg.models_dir, "/home/tester/.precharge/models");
    assert_true(cfg.max_body > 0);
    assert_int_equal(cfg.pool.model_params.n_ctx, 4096);
    assert_int_equal(cfg.pool.model_params.n_threads, 0);
}

static void test_env_home(void **state)
{
    (void)state;
    setenv("PRECHARGE_HOME", "/srv/precharge", 1);
    struct pc_server_config cfg;
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_string_equal(cfg.models_dir, "/srv/precharge/models");

    /* Empty counts as unset. */
    setenv("HOME", "/home/other", 1);
    setenv("PRECHARGE_HOME", "", 1);
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_string_equal(cfg.models_dir, "/home/other/.precharge/models");

    /* Too long for the config. */
    char longhome[2000];
    memset(longhome, 'd', sizeof(longhome) - 1);
    longhome[0] = '/';
    longhome[sizeof(longhome) - 1] = '\0';
    setenv("PRECHARGE_HOME", longhome, 1);
    struct pc_error e;
    pc_error_clear(&e);
    assert_int_equal(pc_server_config_from_env(&cfg, &e), PC_ERR_INVALID);
    assert_non_null(strstr(e.msg, "PRECHARGE_HOME"));
}

static void test_env_host(void **state)
{
    (void)state;
    struct pc_server_config cfg;
    setenv("PRECHARGE_HOST", "0.0.0.0:9999", 1);
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_string_equal(cfg.host, "0.0.0.0");
    assert_int_equal(cfg.port, 9999);

    setenv("PRECHARGE_HOST", ":1234", 1);
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_string_equal(cfg.host, "127.0.0.1");
    assert_int_equal(cfg.port, 1234);

    setenv("PRECHARGE_HOST", "[::1]:8000", 1);
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_string_equal(cfg.host, "::1");
    assert_int_equal(cfg.port, 8000);

    setenv("PRECHARGE_HOST", "", 1);
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_string_equal(cfg.host, "127.0.0.1");
    assert_int_equal(cfg.port, 11435);
}

static void test_env_keep_alive(void **state)
{
    (void)state;
    struct pc_server_config cfg;
    setenv("PRECHARGE_KEEP_ALIVE", "10m", 1);
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_true(cfg.pool.default_keep_alive_ns == 10 * 60 * NS_PER_S);

    setenv("PRECHARGE_KEEP_ALIVE", "-1", 1);
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_true(cfg.pool.default_keep_alive_ns == PC_DURATION_FOREVER);

    setenv("PRECHARGE_KEEP_ALIVE", "0", 1);
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_true(cfg.pool.default_keep_alive_ns == 0);

    setenv("PRECHARGE_KEEP_ALIVE", "90", 1);
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_true(cfg.pool.default_keep_alive_ns == 90 * NS_PER_S);
}

static void test_env_max_loaded_models(void **state)
{
    (void)state;
    struct pc_server_config cfg;
    setenv("PRECHARGE_MAX_LOADED_MODELS", "5", 1);
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_int_equal(cfg.pool.max_models, 5);

    setenv("PRECHARGE_CONTEXT_LENGTH", "8192", 1);
    setenv("PRECHARGE_THREADS", "6", 1);
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_int_equal(cfg.pool.max_models, 5);
    assert_int_equal(cfg.pool.model_params.n_ctx, 8192);
    assert_int_equal(cfg.pool.model_params.n_threads, 6);

    setenv("PRECHARGE_MAX_QUEUE", "2", 1);
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_int_equal(cfg.max_queue, 2);
    setenv("PRECHARGE_MAX_QUEUE", "0", 1); /* no limit */
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_int_equal(cfg.max_queue, 0);
}

static void test_env_pool(void **state)
{
    (void)state;
    struct pc_server_config cfg;
    setenv("PRECHARGE_MEMORY_BUDGET", "12G", 1);
    setenv("PRECHARGE_EVICTION", "LFU", 1);
    setenv("PRECHARGE_MODEL_DIRS", "/srv/models::/opt/gguf", 1);
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_int_equal(cfg.budget_mode, PC_BUDGET_FIXED);
    assert_true(cfg.pool.budget_bytes == 12ull << 30);
    assert_int_equal(cfg.pool.policy, PC_POOL_LFU);
    assert_int_equal(cfg.n_model_dirs, 2);
    assert_string_equal(cfg.model_dirs[0], "/srv/models");
    assert_string_equal(cfg.model_dirs[1], "/opt/gguf");

    setenv("PRECHARGE_MEMORY_BUDGET", "75%", 1);
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_int_equal(cfg.budget_mode, PC_BUDGET_PERCENT);
    assert_true(cfg.budget_percent == 75.0);
    setenv("PRECHARGE_MEMORY_BUDGET", "none", 1);
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_int_equal(cfg.budget_mode, PC_BUDGET_FIXED);
    assert_true(cfg.pool.budget_bytes == 0);

    /* A flag's value goes through the same parser; a bad one leaves cfg as it was. */
    assert_int_equal(pc_server_parse_budget("800MiB", &cfg, NULL), PC_OK);
    assert_true(cfg.pool.budget_bytes == 800ull << 20);
    assert_int_equal(pc_server_parse_budget("auto", &cfg, NULL), PC_OK);
    assert_int_equal(cfg.budget_mode, PC_BUDGET_AUTO);
    assert_int_equal(pc_server_parse_budget("0%", &cfg, NULL), PC_ERR_INVALID);
    assert_int_equal(pc_server_parse_budget("-1G", &cfg, NULL), PC_ERR_INVALID);
    assert_int_equal(cfg.budget_mode, PC_BUDGET_AUTO);
}

struct env_case {
    const char *var, *value;
};

static const struct env_case bad_cases[] = {
    {"PRECHARGE_KEEP_ALIVE", "soon"},
    {"PRECHARGE_KEEP_ALIVE", "5x"},
    {"PRECHARGE_HOST", "host:70000"},
    {"PRECHARGE_HOST", "[::1"},
    {"PRECHARGE_MAX_LOADED_MODELS", "0"},
    {"PRECHARGE_MAX_LOADED_MODELS", "65"},
    {"PRECHARGE_MAX_LOADED_MODELS", "three"},
    {"PRECHARGE_MAX_LOADED_MODELS", "3x"},
    {"PRECHARGE_MAX_LOADED_MODELS", "-2"},
    {"PRECHARGE_CONTEXT_LENGTH", "big"},
    {"PRECHARGE_MAX_QUEUE", "-1"},
    {"PRECHARGE_MAX_QUEUE", "many"},
    {"PRECHARGE_MAX_QUEUE", "1000001"},
    {"PRECHARGE_THREADS", "1025"},
    {"PRECHARGE_MEMORY_BUDGET", "lots"},
    {"PRECHARGE_MEMORY_BUDGET", "150%"},
    {"PRECHARGE_MEMORY_BUDGET", "12Q"},
    {"PRECHARGE_EVICTION", "random"},
    {"PRECHARGE_MODEL_DIRS", "relative/dir"},
};

static void from_env_bad(const struct env_case *c, struct pc_error *e)
{
    clean_env(NULL);
    setenv(c->var, c->value, 1);
    struct pc_server_config cfg;
    pc_error_clear(e);
    enum pc_err rc = pc_server_config_from_env(&cfg, e);
    if (rc != PC_ERR_INVALID)
        fail_msg("%s=\"%s\": got %s, want PC_ERR_INVALID", c->var, c->value, pc_errname(rc));
    assert_int_equal(e->code, PC_ERR_INVALID);
}

/* Each malformed variable fails with PC_ERR_INVALID and a message naming it. */
static void test_env_bad_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        struct pc_error e;
        from_env_bad(&bad_cases[i], &e);
        if (strstr(e.msg, bad_cases[i].var) == NULL)
            fail_msg("%s=\"%s\": message does not name the variable: %s", bad_cases[i].var,
                     bad_cases[i].value, e.msg);
    }
    /* A NULL error pointer is allowed. */
    clean_env(NULL);
    setenv("PRECHARGE_KEEP_ALIVE", "soon", 1);
    struct pc_server_config cfg;
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_ERR_INVALID);
}

/* The message also gives the value, and names the variable once: the detail from the inner
 * parser is not garbled when the variable's name is put in front of it. */
static void test_env_bad_value_message_intact(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        struct pc_error e;
        from_env_bad(&bad_cases[i], &e);
        if (strstr(e.msg, bad_cases[i].value) == NULL)
            fail_msg("%s=\"%s\": message does not give the value: %s", bad_cases[i].var,
                     bad_cases[i].value, e.msg);
        const char *first = strstr(e.msg, bad_cases[i].var);
        assert_non_null(first);
        if (strstr(first + 1, bad_cases[i].var) != NULL)
            fail_msg("%s=\"%s\": message repeats the variable: %s", bad_cases[i].var,
                     bad_cases[i].value, e.msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostport_valid),
        cmocka_unit_test(test_hostport_invalid),
        cmocka_unit_test_setup_teardown(test_env_defaults, save_home, restore_home),
        cmocka_unit_test_setup_teardown(test_env_home, save_home, restore_home),
        cmocka_unit_test_setup_teardown(test_env_host, save_home, restore_home),
        cmocka_unit_test_setup_teardown(test_env_keep_alive, save_home, restore_home),
        cmocka_unit_test_setup_teardown(test_env_max_loaded_models, save_home, restore_home),
        cmocka_unit_test_setup_teardown(test_env_pool, save_home, restore_home),
        cmocka_unit_test_setup_teardown(test_env_bad_values, save_home, restore_home),
        cmocka_unit_test_setup_teardown(test_env_bad_value_message_intact, save_home, restore_home),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
