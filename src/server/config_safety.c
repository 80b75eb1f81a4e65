/* config_safety.c - the daemon's safety settings (API key, listening beyond loopback, CORS
 * origins, body, prompt and connection limits) from the environment, the file and the flags. */
#include "serverInt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../base/duration.h"
#include "../base/file.h"
#include "../base/fmt.h"
#include "guard.h"

#define DEFAULT_CONNECTION_TIMEOUT_S 30
#define MAX_CONNECTION_TIMEOUT_S (24 * 3600)
#define MIN_MAX_BODY 1024ull
#define MAX_MAX_BODY (1ull << 30)
#define MAX_PROMPT_TOKENS (1l << 22)

enum pc_err pc_server_set_api_key(struct pc_server_config *cfg, const char *key,
                                  struct pc_error *err)
{
    size_t n = strlen(key);
    if (n == 0 || n > PC_SERVER_MAX_API_KEY)
        return pc_error_set(err, PC_ERR_INVALID, "an API key must have 1 to %d characters",
                            PC_SERVER_MAX_API_KEY);
    for (size_t i = 0; i < n; i++)
        if (key[i] <= ' ' || key[i] > '~')
            return pc_error_set(err, PC_ERR_INVALID,
                                "an API key must be printable ASCII without spaces (character "
                                "%zu is not)",
                                i + 1);
    memcpy(cfg->api_key, key, n + 1);
    return PC_OK;
}

enum pc_err pc_server_read_api_key_file(struct pc_server_config *cfg, const char *path,
                                        struct pc_error *err)
{
    char *text = NULL;
    size_t len = 0;
    struct pc_error inner = {0};
    if (pc_file_read(path, 4096, &text, &len, &inner) != PC_OK)
        return pc_error_set(err, PC_ERR_INVALID, "API key file \"%s\": %s", path, inner.msg);
    char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    size_t n = strcspn(p, "\r\n");
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    p[n] = '\0';
    enum pc_err rc = pc_server_set_api_key(cfg, p, &inner);
    free(text);
    if (rc != PC_OK)
        return pc_error_set(err, rc, "API key file \"%s\": %s", path, inner.msg);
    return PC_OK;
}

enum pc_err pc_server_add_cors_origins(const char *list, struct pc_server_config *cfg,
                                       struct pc_error *err)
{
    for (const char *p = list; *p != '\0';) {
        size_t len = strcspn(p, ",");
        const char *o = p;
        size_t n = len;
        while (n > 0 && (*o == ' ' || *o == '\t'))
            o++, n--;
        while (n > 0 && (o[n - 1] == ' ' || o[n - 1] == '\t' || o[n - 1] == '/'))
            n--;
        if (n > 0) {
            if (cfg->n_cors_origins == PC_SERVER_MAX_CORS_ORIGINS)
                return pc_error_set(err, PC_ERR_INVALID, "more than %d CORS origins",
                                    PC_SERVER_MAX_CORS_ORIGINS);
            if (n >= sizeof(cfg->cors_origins[0]))
                return pc_error_set(err, PC_ERR_INVALID, "a CORS origin is too long");
            if (!(n == 1 && o[0] == '*') && strncmp(o, "http://", 7) != 0 &&
                strncmp(o, "https://", 8) != 0 && !(n == 4 && strncmp(o, "null", 4) == 0))
                return pc_error_set(err, PC_ERR_INVALID,
                                    "CORS origin \"%.*s\": expected scheme://host[:port] (such "
                                    "as https://app.example), \"null\" or \"*\"",
                                    (int)n, o);
            memcpy(cfg->cors_origins[cfg->n_cors_origins], o, n);
            cfg->cors_origins[cfg->n_cors_origins++][n] = '\0';
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return PC_OK;
}

enum pc_err pc_server_parse_max_body(const char *s, struct pc_server_config *cfg,
                                     struct pc_error *err)
{
    uint64_t n;
    if (pc_parse_bytes(s, &n) != 0 || n < MIN_MAX_BODY || n > MAX_MAX_BODY)
        return pc_error_set(err, PC_ERR_INVALID,
                            "invalid body limit \"%s\": expected a size from 1K to 1G, such as 8M",
                            s);
    cfg->max_body = (size_t)n;
    return PC_OK;
}

enum pc_err pc_server_parse_max_prompt_tokens(const char *s, struct pc_server_config *cfg,
                                              struct pc_error *err)
{
    char *end;
    errno = 0;
    long n = strtol(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || n > MAX_PROMPT_TOKENS)
        return pc_error_set(err, PC_ERR_INVALID,
                            "invalid prompt-token limit \"%s\": expected a whole number from 0 "
                            "(the context) to %ld",
                            s, MAX_PROMPT_TOKENS);
    cfg->max_prompt_tokens = (uint32_t)n;
    return PC_OK;
}

enum pc_err pc_server_parse_connection_timeout(const char *s, struct pc_server_config *cfg,
                                               struct pc_error *err)
{
    int64_t ns = 0;
    struct pc_error inner = {0};
    const int64_t second = 1000000000;
    if (pc_duration_parse(s, &ns, &inner) != PC_OK || ns < 0 || ns % second != 0 ||
        ns / second > MAX_CONNECTION_TIMEOUT_S)
        return pc_error_set(err, PC_ERR_INVALID,
                            "invalid connection timeout \"%s\": expected whole seconds up to a "
                            "day, such as 30s, 2m or 45 (0: none)",
                            s);
    cfg->connection_timeout_s = (unsigned)(ns / second);
    return PC_OK;
}

static enum pc_err parse_bool(const char *name, const char *v, bool *out, struct pc_error *err)
{
    if (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0)
        *out = true;
    else if (strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0)
        *out = false;
    else
        return pc_error_set(err, PC_ERR_INVALID, "%s=\"%s\": expected 1 or 0 (true or false)", name,
                            v);
    return PC_OK;
}

enum pc_err pc_server_config_env_safety(struct pc_server_config *cfg, struct pc_error *err)
{
    static const struct {
        const char *name;
        enum pc_err (*parse)(const char *s, struct pc_server_config *cfg, struct pc_error *err);
    } parsers[] = {
        {"PRECHARGE_MAX_BODY", pc_server_parse_max_body},
        {"PRECHARGE_MAX_PROMPT_TOKENS", pc_server_parse_max_prompt_tokens},
        {"PRECHARGE_CONNECTION_TIMEOUT", pc_server_parse_connection_timeout},
        {"PRECHARGE_CORS_ORIGINS", pc_server_add_cors_origins},
    };
    struct pc_error inner = {0};
    cfg->connection_timeout_s = DEFAULT_CONNECTION_TIMEOUT_S;
    for (size_t i = 0; i < sizeof(parsers) / sizeof(parsers[0]); i++) {
        const char *v = getenv(parsers[i].name);
        if (v != NULL && *v != '\0' && parsers[i].parse(v, cfg, &inner) != PC_OK)
            return pc_error_set(err, PC_ERR_INVALID, "%s: %s", parsers[i].name, inner.msg);
    }
    const char *v = getenv("PRECHARGE_INSECURE");
    if (v != NULL && *v != '\0' && parse_bool("PRECHARGE_INSECURE", v, &cfg->insecure, err))
        return PC_ERR_INVALID;
    v = getenv("PRECHARGE_API_KEY_FILE");
    if (v != NULL && *v != '\0' && pc_server_read_api_key_file(cfg, v, &inner) != PC_OK)
        return pc_error_set(err, PC_ERR_INVALID, "PRECHARGE_API_KEY_FILE: %s", inner.msg);
    v = getenv("PRECHARGE_API_KEY");
    if (v != NULL && *v != '\0' && pc_server_set_api_key(cfg, v, &inner) != PC_OK)
        return pc_error_set(err, PC_ERR_INVALID, "PRECHARGE_API_KEY: %s", inner.msg);
    return PC_OK;
}

/* "cors_origins": a list of strings, or one comma list. It replaces the environment's. */
static enum pc_err file_cors(struct pc_server_config *cfg, json_t *v, struct pc_error *err)
{
    cfg->n_cors_origins = 0;
    if (json_is_string(v))
        return pc_server_add_cors_origins(json_string_value(v), cfg, err);
    if (!json_is_array(v))
        return pc_error_set(err, PC_ERR_INVALID, "expected a list of origins");
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e) || strchr(json_string_value(e), ',') != NULL)
            return pc_error_set(err, PC_ERR_INVALID, "[%zu] must be one origin, a string", i);
        if (pc_server_add_cors_origins(json_string_value(e), cfg, err) != PC_OK)
            return PC_ERR_INVALID;
    }
    return PC_OK;
}

enum pc_err pc_server_config_file_safety(struct pc_server_config *cfg, const char *key, json_t *v,
                                         struct pc_error *err)
{
    static const struct {
        const char *key;
        enum pc_err (*parse)(const char *s, struct pc_server_config *cfg, struct pc_error *err);
    } parsers[] = {
        {"max_body", pc_server_parse_max_body},
        {"max_prompt_tokens", pc_server_parse_max_prompt_tokens},
        {"connection_timeout", pc_server_parse_connection_timeout},
    };
    char num[32];
    if (strcmp(key, "cors_origins") == 0)
        return file_cors(cfg, v, err);
    if (strcmp(key, "insecure") == 0) {
        if (!json_is_boolean(v))
            return pc_error_set(err, PC_ERR_INVALID, "expected true or false");
        cfg->insecure = json_is_true(v);
        return PC_OK;
    }
    if (strcmp(key, "api_key") == 0 || strcmp(key, "api_key_file") == 0) {
        if (!json_is_string(v))
            return pc_error_set(err, PC_ERR_INVALID, "expected a string");
        return key[7] == '\0' ? pc_server_set_api_key(cfg, json_string_value(v), err)
                              : pc_server_read_api_key_file(cfg, json_string_value(v), err);
    }
    for (size_t i = 0; i < sizeof(parsers) / sizeof(parsers[0]); i++) {
        if (strcmp(key, parsers[i].key) != 0)
            continue;
        const char *s = json_string_value(v);
        if (json_is_integer(v)) {
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
            s = num;
        }
        if (s == NULL)
            return pc_error_set(err, PC_ERR_INVALID, "expected a string or a whole number");
        return parsers[i].parse(s, cfg, err);
    }
    return PC_ERR_NOT_FOUND;
}

void pc_server_config_safety_to_json(const struct pc_server_config *cfg, json_t *o)
{
    char timeout[32];
    snprintf(timeout, sizeof(timeout), "%us", cfg->connection_timeout_s);
    json_t *origins = json_array();
    for (size_t i = 0; i < cfg->n_cors_origins; i++)
        json_array_append_new(origins, json_string(cfg->cors_origins[i]));
    json_object_set_new(o, "api_key", cfg->api_key[0] ? json_string("(set)") : json_null());
    json_object_set_new(o, "insecure", json_boolean(cfg->insecure));
    json_object_set_new(o, "max_body", json_integer((json_int_t)cfg->max_body));
    json_object_set_new(o, "max_prompt_tokens", json_integer(cfg->max_prompt_tokens));
    json_object_set_new(o, "connection_timeout", json_string(timeout));
    json_object_set_new(o, "cors_origins", origins);
}

enum pc_err pc_server_config_check_exposure(const struct pc_server_config *cfg,
                                            struct pc_error *err)
{
    if (pc_guard_is_loopback(cfg->host) || cfg->api_key[0] != '\0' || cfg->insecure)
        return PC_OK;
    return pc_error_set(err, PC_ERR_INVALID,
                        "refusing to listen on %s, which is not a loopback address, without an "
                        "API key: set one with --api-key KEY, --api-key-file FILE or "
                        "PRECHARGE_API_KEY, or pass --insecure to serve anyone who can reach it",
                        cfg->host);
}
