/* test_guard.c - unit tests for the daemon's safety: loopback addresses, the bearer token and
 * its comparison, CORS origins, and the safety settings from the environment and the file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "server/guard.h"
#include "server/server.h"
#include "scratch.h"

static const char *const env_vars[] = {
    "PRECHARGE_API_KEY",           "PRECHARGE_API_KEY_FILE",
    "PRECHARGE_INSECURE",          "PRECHARGE_MAX_BODY",
    "PRECHARGE_MAX_PROMPT_TOKENS", "PRECHARGE_CONNECTION_TIMEOUT",
    "PRECHARGE_CORS_ORIGINS",      "PRECHARGE_HOST",
};

static int clean_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
        unsetenv(env_vars[i]);
    setenv("PRECHARGE_HOME", "/nonexistent/precharge-test", 1);
    return 0;
}

/* A listen address is judged by what it resolves to (issue 13: evil.localhost resolving to
 * 0.0.0.0 listened on every interface without a key). The same in a private mount namespace
 * with another /etc/hosts: integration/hardening. */
static void test_listens_on_loopback(void **state)
{
    (void)state;
    static const char *const yes[] = {"127.0.0.1", "127.9.9.9", "::1", "localhost",
                                      "::ffff:127.0.0.1"};
    static const char *const no[] = {"0.0.0.0", "::", "192.168.1.5", "::ffff:10.0.0.1"};
    char why[128];
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!pc_guard_listens_on_loopback(yes[i], why, sizeof(why)))
            fail_msg("%s should listen on loopback: %s", yes[i], why);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (pc_guard_listens_on_loopback(no[i], why, sizeof(why)))
            fail_msg("%s should not listen on loopback", no[i]);
    assert_false(pc_guard_listens_on_loopback("0.0.0.0", why, sizeof(why)));
    assert_string_equal(why, "it resolves to 0.0.0.0");
    /* A name under .localhost is loopback only when it resolves there; one that does not resolve
     * at all is not (RFC 2606's .invalid never does). */
    assert_false(pc_guard_listens_on_loopback("nothing.invalid", why, sizeof(why)));
    assert_non_null(strstr(why, "it does not resolve"));
    assert_true(pc_guard_is_loopback("nothing.localhost")); /* as a Host header: by its name */
}

static void test_loopback(void **state)
{
    (void)state;
    static const char *const yes[] = {"127.0.0.1",     "127.1.2.3",      "::1",
                                      "localhost",     "LocalHost",      "::ffff:127.0.0.1",
                                      "app.localhost", "0:0:0:0:0:0:0:1"};
    static const char *const no[] = {"0.0.0.0",
                                     "::",
                                     "192.168.1.5",
                                     "10.0.0.1",
                                     "128.0.0.1",
                                     "example.com",
                                     "localhost.example.com",
                                     "::ffff:10.0.0.1",
                                     "",
                                     "fe80::1",
                                     "1.127.0.0"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (!pc_guard_is_loopback(yes[i]))
            fail_msg("%s should be loopback", yes[i]);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        if (pc_guard_is_loopback(no[i]))
            fail_msg("%s should not be loopback", no[i]);
    }
}

static void test_bearer(void **state)
{
    (void)state;
    size_t len = 0;
    const char *t = pc_guard_bearer("Bearer abc123", &len);
    assert_non_null(t);
    assert_int_equal(len, 6);
    assert_memory_equal(t, "abc123", 6);
    t = pc_guard_bearer("bearer   k-1", &len);
    assert_non_null(t);
    assert_int_equal(len, 3);
    assert_null(pc_guard_bearer(NULL, &len));
    assert_null(pc_guard_bearer("Basic dXNlcjpwdw==", &len));
    assert_null(pc_guard_bearer("Bearer ", &len));
    assert_null(pc_guard_bearer("Bearer a b", &len));
    assert_null(pc_guard_bearer("Bearerabc", &len));
}

static void test_key_equal(void **state)
{
    (void)state;
    assert_true(pc_guard_key_equal("sekrit", "sekrit", 6));
    assert_false(pc_guard_key_equal("sekrit", "sekriT", 6));
    assert_false(pc_guard_key_equal("sekrit", "sekri", 5));
    assert_false(pc_guard_key_equal("sekrit", "sekrit2", 7));
    /* A prefix of the given token is not the key. */
    assert_false(pc_guard_key_equal("sekrit", "sekrit", 7));
    assert_false(pc_guard_key_equal("sekrit", "", 0));
}

static void test_origin_listed(void **state)
{
    (void)state;
    static const char list[2][256] = {"https://app.example", "http://localhost:3000"};
    static const char star[1][256] = {"*"};
    assert_true(pc_guard_origin_listed(list, 2, "https://app.example"));
    assert_true(pc_guard_origin_listed(list, 2, "HTTPS://APP.EXAMPLE"));
    assert_true(pc_guard_origin_listed(list, 2, "http://localhost:3000"));
    assert_false(pc_guard_origin_listed(list, 2, "http://localhost:3001"));
    assert_false(pc_guard_origin_listed(list, 2, "https://app.example.evil"));
    assert_false(pc_guard_origin_listed(list, 0, "https://app.example"));
    assert_true(pc_guard_origin_listed(star, 1, "https://anything.example"));
}

static void test_defaults(void **state)
{
    (void)state;
    struct pc_server_config cfg;
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_int_equal(cfg.max_body, 8u << 20);
    assert_int_equal(cfg.max_prompt_tokens, 0);
    assert_int_equal(cfg.connection_timeout_s, 30);
    assert_string_equal(cfg.api_key, "");
    assert_false(cfg.insecure);
    assert_int_equal(cfg.n_cors_origins, 0);
    assert_int_equal(pc_server_config_check_exposure(&cfg, NULL), PC_OK);
}

static void test_env(void **state)
{
    (void)state;
    struct pc_server_config cfg;
    setenv("PRECHARGE_API_KEY", "k-123", 1);
    setenv("PRECHARGE_INSECURE", "true", 1);
    setenv("PRECHARGE_MAX_BODY", "2M", 1);
    setenv("PRECHARGE_MAX_PROMPT_TOKENS", "1000", 1);
    setenv("PRECHARGE_CONNECTION_TIMEOUT", "2m", 1);
    setenv("PRECHARGE_CORS_ORIGINS", " https://a.example/ ,http://localhost:3000,,*", 1);
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_string_equal(cfg.api_key, "k-123");
    assert_true(cfg.insecure);
    assert_int_equal(cfg.max_body, 2u << 20);
    assert_int_equal(cfg.max_prompt_tokens, 1000);
    assert_int_equal(cfg.connection_timeout_s, 120);
    assert_int_equal(cfg.n_cors_origins, 3);
    assert_string_equal(cfg.cors_origins[0], "https://a.example");
    assert_string_equal(cfg.cors_origins[1], "http://localhost:3000");
    assert_string_equal(cfg.cors_origins[2], "*");

    setenv("PRECHARGE_CONNECTION_TIMEOUT", "45", 1);
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_int_equal(cfg.connection_timeout_s, 45);
}

static void test_env_bad(void **state)
{
    (void)state;
    static const struct {
        const char *name, *value;
    } bad[] = {
        {"PRECHARGE_API_KEY", "has space"},
        {"PRECHARGE_INSECURE", "maybe"},
        {"PRECHARGE_MAX_BODY", "12"},
        {"PRECHARGE_MAX_BODY", "2T"},
        {"PRECHARGE_MAX_BODY", "lots"},
        {"PRECHARGE_MAX_PROMPT_TOKENS", "-1"},
        {"PRECHARGE_MAX_PROMPT_TOKENS", "1e3"},
        {"PRECHARGE_CONNECTION_TIMEOUT", "1.5s"},
        {"PRECHARGE_CONNECTION_TIMEOUT", "-1"},
        {"PRECHARGE_CONNECTION_TIMEOUT", "2d"},
        {"PRECHARGE_CORS_ORIGINS", "app.example"},
        {"PRECHARGE_API_KEY_FILE", "/nonexistent/key"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct pc_server_config cfg;
        struct pc_error e = {0};
        clean_env(NULL);
        setenv(bad[i].name, bad[i].value, 1);
        if (pc_server_config_from_env(&cfg, &e) != PC_ERR_INVALID)
            fail_msg("%s=%s was accepted", bad[i].name, bad[i].value);
        if (strstr(e.msg, bad[i].name) == NULL)
            fail_msg("the error does not name %s: %s", bad[i].name, e.msg);
    }
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_key_file(void **state)
{
    (void)state;
    char dir[4096], path[4200];
    snprintf(dir, sizeof(dir), "%s", make_tmpdir("guard"));
    snprintf(path, sizeof(path), "%s/key", dir);
    write_text(path, "  file-key-42 \n\n");
    struct pc_server_config cfg;
    setenv("PRECHARGE_API_KEY_FILE", path, 1);
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_string_equal(cfg.api_key, "file-key-42");
    /* The key itself, when both are set, wins. */
    setenv("PRECHARGE_API_KEY", "env-key", 1);
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_string_equal(cfg.api_key, "env-key");

    write_text(path, "");
    struct pc_error e = {0};
    assert_int_equal(pc_server_read_api_key_file(&cfg, path, &e), PC_ERR_INVALID);
    assert_non_null(strstr(e.msg, path));
    rm_rf(dir);
}

static void test_file_keys(void **state)
{
    (void)state;
    char dir[4096], path[4200];
    snprintf(dir, sizeof(dir), "%s", make_tmpdir("guard"));
    snprintf(path, sizeof(path), "%s/config.json", dir);
    write_text(path, "{\"api_key\": \"from-file\", \"insecure\": true, \"max_body\": \"64K\", "
                     "\"max_prompt_tokens\": 512, \"connection_timeout\": \"10s\", "
                     "\"cors_origins\": [\"https://a.example\", \"https://b.example/\"]}");
    struct pc_server_config cfg;
    setenv("PRECHARGE_CORS_ORIGINS", "https://env.example", 1);
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_int_equal(pc_server_config_load_file(&cfg, path, true, NULL), PC_OK);
    assert_string_equal(cfg.api_key, "from-file");
    assert_true(cfg.insecure);
    assert_int_equal(cfg.max_body, 64 << 10);
    assert_int_equal(cfg.max_prompt_tokens, 512);
    assert_int_equal(cfg.connection_timeout_s, 10);
    assert_int_equal(cfg.n_cors_origins, 2); /* the file's list replaces the environment's */
    assert_string_equal(cfg.cors_origins[1], "https://b.example");

    /* The effective configuration shows that a key is set, never the key. */
    json_t *o = pc_server_config_to_json(&cfg);
    char *text = json_dumps(o, 0);
    assert_null(strstr(text, "from-file"));
    assert_non_null(strstr(text, "\"api_key\": \"(set)\""));
    free(text);
    json_decref(o);

    write_text(path, "{\"insecure\": \"yes\"}");
    struct pc_error e = {0};
    assert_int_equal(pc_server_config_load_file(&cfg, path, true, &e), PC_ERR_INVALID);
    assert_non_null(strstr(e.msg, "\"insecure\""));
    rm_rf(dir);
}

static void test_exposure(void **state)
{
    (void)state;
    struct pc_server_config cfg;
    struct pc_error e = {0};
    assert_int_equal(pc_server_config_from_env(&cfg, NULL), PC_OK);
    assert_int_equal(pc_server_parse_hostport("0.0.0.0:8080", &cfg, NULL), PC_OK);
    assert_int_equal(pc_server_config_check_exposure(&cfg, &e), PC_ERR_INVALID);
    assert_non_null(strstr(e.msg, "0.0.0.0"));
    assert_non_null(strstr(e.msg, "--api-key"));
    assert_non_null(strstr(e.msg, "--insecure"));
    cfg.insecure = true;
    assert_int_equal(pc_server_config_check_exposure(&cfg, NULL), PC_OK);
    cfg.insecure = false;
    assert_int_equal(pc_server_set_api_key(&cfg, "k", NULL), PC_OK);
    assert_int_equal(pc_server_config_check_exposure(&cfg, NULL), PC_OK);
    cfg.api_key[0] = '\0';
    assert_int_equal(pc_server_parse_hostport("[::1]:8080", &cfg, NULL), PC_OK);
    assert_int_equal(pc_server_config_check_exposure(&cfg, NULL), PC_OK);
    assert_int_equal(pc_server_parse_hostport("localhost:8080", &cfg, NULL), PC_OK);
    assert_int_equal(pc_server_config_check_exposure(&cfg, NULL), PC_OK);
    assert_int_equal(pc_server_parse_hostport("[::]:8080", &cfg, NULL), PC_OK);
    assert_int_equal(pc_server_config_check_exposure(&cfg, NULL), PC_ERR_INVALID);
    /* A name is refused by what it resolves to, and the error says what that is. */
    assert_int_equal(pc_server_parse_hostport("nothing.invalid:8080", &cfg, NULL), PC_OK);
    pc_error_clear(&e);
    assert_int_equal(pc_server_config_check_exposure(&cfg, &e), PC_ERR_INVALID);
    assert_non_null(strstr(e.msg, "refusing to listen on nothing.invalid (it does not resolve"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_listens_on_loopback),
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_key_equal),
        cmocka_unit_test(test_origin_listed),
        cmocka_unit_test_setup(test_defaults, clean_env),
        cmocka_unit_test_setup(test_env, clean_env),
        cmocka_unit_test_setup(test_env_bad, clean_env),
        cmocka_unit_test_setup(test_key_file, clean_env),
        cmocka_unit_test_setup(test_file_keys, clean_env),
        cmocka_unit_test_setup(test_exposure, clean_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
