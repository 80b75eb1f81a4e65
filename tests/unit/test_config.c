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
#include <sys/stat.h>
#include <unistd.h>

#include "base/duration.h"
#include "base/err.h"
#include "server/server.h"
#include "server/settings.h"
#include "scratch.h"

#define NS_PER_S 1000000000ll

static const char *const env_vars[] = {
    "PRECHARGE_HOST",
    "PRECHARGE_HOME",
    "PRECHARGE_KEEP_ALIVE",
    "PRECHARGE_MAX_LOADED_MODELS",
    "PRECHARGE_CONTEXT_LENGTH",
    "PRECHARGE_THREADS",
    "PRECHARGE_MEMORY_BUDGET",
    "PRECHARGE_EVICTION",
    "PRECHARGE_MODEL_DIRS",
    "PRECHARGE_MAX_QUEUE",
    "PRECHARGE_LOG_LEVEL",
    "PRECHARGE_PRELOAD",
    "PRECHARGE_PRELOAD_RETRIES",
    "PRECHARGE_CORS_ORIGINS",
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

/* One setting's value as `precharge config` shows it. */
static json_t *show_one(const struct pc_server_config *cfg, const char *key)
{
    json_t *o = pc_server_config_to_json(cfg);
    json_t *v = json_incref(json_object_get(o, key));
    json_decref(o);
    return v;
}

/* --- the settings table -------------------------------------------------------------------- */

/* Each setting has a file key, help, and a kind's worth of parser; no key, variable or flag is
 * declared twice. */
static void test_settings_table(void **state)
{
    (void)state;
    assert_true(pc_settings_count > 30);
    assert_true(pc_settings_count <= PC_SETTINGS_MAX);
    for (size_t i = 0; i < pc_settings_count; i++) {
        const struct pc_setting *s = &pc_settings[i];
        assert_non_null(s->key);
        assert_non_null(s->help);
        assert_true(s->env != NULL || s->flag != NULL);
        if (s->kind == PC_SETTING_CUSTOM) {
            assert_non_null(s->parse);
            assert_non_null(s->show);
        }
        if (s->list)
            assert_non_null(s->clear);
        if (s->flag != NULL && s->arg == NULL)
            assert_non_null(s->switch_value);
        assert_ptr_equal(pc_setting_find(s->key), s);
        for (size_t j = 0; j < i; j++) {
            const struct pc_setting *t = &pc_settings[j];
            assert_string_not_equal(s->key, t->key);
            if (s->env && t->env)
                assert_string_not_equal(s->env, t->env);
            if (s->flag && t->flag)
                assert_string_not_equal(s->flag, t->flag);
        }
    }
    /* What `precharge config` used to leave out is in the table. */
    static const char *const keys[] = {
        "memory_budget", "eviction", "model_dirs",     "log_level",
        "llama_log",     "repack",   "ollama_poll_ms", "max_parallel_preloads"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (pc_setting_find(keys[i]) == NULL)
            fail_msg("no setting \"%s\"", keys[i]);
}

/* Each value as `precharge config` prints it reads back, through the file, as the same value:
 * one parser and one printer per setting, which cannot drift apart. */
static void test_settings_round_trip(void **state)
{
    (void)state;
    setenv("PRECHARGE_MEMORY_BUDGET", "75%", 1);
    setenv("PRECHARGE_MODEL_DIRS", "/srv/a:/srv/b", 1);
    setenv("PRECHARGE_KEEP_ALIVE", "90s", 1);
    setenv("PRECHARGE_PRELOAD", "a, b", 1);
    setenv("PRECHARGE_CORS_ORIGINS", "https://a.example,*", 1);
    struct pc_server_config cfg;
    struct pc_error e = {0};
    assert_int_equal(pc_server_config_from_env(&cfg, &e), PC_OK);
    json_t *shown = pc_server_config_to_json(&cfg);
    for (size_t i = 0; i < pc_settings_count; i++) {
        const struct pc_setting *s = &pc_settings[i];
        json_t *v = json_object_get(shown, s->key);
        if (v == NULL)
            fail_msg("`precharge config` leaves out \"%s\"", s->key);
        if (json_is_null(v) || strcmp(s->key, "api_key") == 0)
            continue; /* unset; or never shown */
        struct pc_server_config back;
        pc_settings_defaults(&back);
        pc_error_clear(&e);
        if (pc_settings_from_file_key(&back, s->key, v, &e) != PC_OK)
            fail_msg("\"%s\": its shown value does not read back: %s", s->key, e.msg);
        json_t *again = show_one(&back, s->key);
        if (!json_equal(again, v)) {
            char *a = json_dumps(v, JSON_ENCODE_ANY), *b = json_dumps(again, JSON_ENCODE_ANY);
            fail_msg("\"%s\": shown %s, read back as %s", s->key, a, b);
        }
        json_decref(again);
    }
    assert_string_equal(json_string_value(json_object_get(shown, "memory_budget")), "75%");
    assert_int_equal(json_array_size(json_object_get(shown, "model_dirs")), 2);
    assert_int_equal(json_array_size(json_object_get(shown, "preload")), 2);
    json_decref(shown);
}

/* Where each value came from: default, environment, file, flag. */
static void test_settings_sources(void **state)
{
    (void)state;
    char dir[4096], path[4200];
    snprintf(dir, sizeof(dir), "%s", make_tmpdir("config"));
    snprintf(path, sizeof(path), "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"threads\": 2, \"log_level\": \"debug\", \"max_models\": 4}", f);
    fclose(f);
    setenv("PRECHARGE_MAX_LOADED_MODELS", "5", 1);
    setenv("PRECHARGE_LOG_LEVEL", "warn", 1);
    setenv("PRECHARGE_PRELOAD", "x", 1);
    setenv("PRECHARGE_PRELOAD_RETRIES", "7", 1);
    struct pc_server_config cfg;
    struct pc_error e = {0};
    assert_int_equal(pc_server_config_from_env(&cfg, &e), PC_OK);
    assert_int_equal(pc_server_config_load_file(&cfg, path, true, &e), PC_OK);
    assert_int_equal(
        pc_settings_from_flag(&cfg, pc_setting_find("context_length"), "1024", true, &e), PC_OK);
    assert_int_equal(pc_settings_from_flag(&cfg, pc_setting_find("repack"), NULL, true, &e), PC_OK);
    pc_settings_finish(&cfg);
    assert_int_equal(cfg.pool.max_models, 4);
    assert_int_equal(cfg.pool.model_params.n_threads, 2);
    assert_int_equal(cfg.pool.model_params.n_ctx, 1024);
    assert_false(cfg.pool.model_params.repack);
    assert_string_equal(cfg.log_level, "debug");
    assert_int_equal(cfg.preload[0].max_retries, 7); /* the environment's default for a name */
    assert_true(cfg.max_parallel_preloads >= 1);     /* the core count */
    json_t *o = pc_server_config_to_json(&cfg);
    json_t *src = json_object_get(o, "sources");
    static const struct {
        const char *key, *source;
    } want[] = {
        {"max_models", "file"},  {"threads", "file"},
        {"log_level", "file"},   {"context_length", "flag"},
        {"repack", "flag"},      {"preload", "environment"},
        {"eviction", "default"}, {"preload_retries", "environment"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const char *got = json_string_value(json_object_get(src, want[i].key));
        if (got == NULL || strcmp(got, want[i].source) != 0)
            fail_msg("\"%s\" came from %s, not %s", want[i].key, got ? got : "(nothing)",
                     want[i].source);
    }
    json_decref(o);
    rm_rf(dir);
}

/* A range is declared once: the environment, the file and the flag give the same one. */
static void test_settings_one_range(void **state)
{
    (void)state;
    struct pc_server_config cfg;
    struct pc_error e = {0};
    setenv("PRECHARGE_MAX_LOADED_MODELS", "65", 1);
    assert_int_equal(pc_server_config_from_env(&cfg, &e), PC_ERR_INVALID);
    assert_non_null(strstr(e.msg, "from 1 to 64"));
    unsetenv("PRECHARGE_MAX_LOADED_MODELS");
    assert_int_equal(pc_server_config_from_env(&cfg, &e), PC_OK);
    json_t *v = json_integer(65);
    assert_int_equal(pc_settings_from_file_key(&cfg, "max_models", v, &e), PC_ERR_INVALID);
    assert_non_null(strstr(e.msg, "from 1 to 64"));
    assert_non_null(strstr(e.msg, "\"max_models\""));
    json_decref(v);
    assert_int_equal(pc_settings_from_flag(&cfg, pc_setting_find("max_models"), "65", true, &e),
                     PC_ERR_INVALID);
    assert_non_null(strstr(e.msg, "from 1 to 64"));
    assert_non_null(strstr(e.msg, "--max-models"));
    assert_int_equal(cfg.pool.max_models, 3); /* a refused value changes nothing */
    assert_int_equal(pc_settings_from_file_key(&cfg, "no_such_key", v, &e), PC_ERR_INVALID);
    assert_non_null(strstr(e.msg, "no_such_key"));
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
        cmocka_unit_test(test_settings_table),
        cmocka_unit_test_setup_teardown(test_settings_round_trip, save_home, restore_home),
        cmocka_unit_test_setup_teardown(test_settings_sources, save_home, restore_home),
        cmocka_unit_test_setup_teardown(test_settings_one_range, save_home, restore_home),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
