/* config.c - the daemon's configuration: the values of the settings that need a parser of their
 * own (listen address, home, budget, eviction, model directories, preloads, log levels), and
 * the environment, the config file and the effective configuration through the settings
 * table. */
#include "serverInt.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../base/fmt.h"
#include "../base/log.h"
#include "settings.h"

/* ---- listen address and home -------------------------------------------------------------- */

enum pc_err pc_server_parse_hostport(const char *s, struct pc_server_config *cfg,
                                     struct pc_error *err)
{
    const char *host = s, *port = NULL;
    size_t host_len;
    long port_num = cfg->port;

    /* Accept what OLLAMA_HOST accepts, minus the scheme: "host", "host:port", ":port",
     * "[v6]:port", with an optional "http://" in front. */
    if (strncmp(host, "http://", 7) == 0)
        host += 7;
    if (host[0] == '[') {
        const char *close = strchr(host, ']');
        if (close == NULL)
            goto bad;
        host_len = (size_t)(close - host - 1);
        host++;
        if (close[1] == ':')
            port = close + 2;
        else if (close[1] != '\0')
            goto bad;
    } else if (strchr(host, ':') != strrchr(host, ':')) {
        host_len = strlen(host); /* a bare IPv6 address: "::1" */
    } else {
        const char *colon = strrchr(host, ':');
        host_len = colon ? (size_t)(colon - host) : strlen(host);
        if (colon)
            port = colon + 1;
    }
    if (host_len >= sizeof(cfg->host))
        goto bad;
    if (port != NULL) {
        char *end;
        errno = 0;
        port_num = strtol(port, &end, 10);
        if (*port < '0' || *port > '9' || *end != '\0' || errno != 0 || port_num > 65535)
            goto bad;
    }
    /* Only a valid address changes cfg. */
    if (host_len > 0) {
        memcpy(cfg->host, host, host_len);
        cfg->host[host_len] = '\0';
    }
    cfg->port = (int)port_num;
    return PC_OK;
bad:
    return pc_error_set(err, PC_ERR_INVALID,
                        "invalid listen address \"%s\": use host:port, such as 127.0.0.1:11435", s);
}

json_t *pc_server_show_host(const struct pc_server_config *cfg)
{
    char host[300];
    snprintf(host, sizeof(host), strchr(cfg->host, ':') ? "[%s]:%d" : "%s:%d", cfg->host,
             cfg->port);
    return json_string(host);
}

enum pc_err pc_server_set_home(struct pc_server_config *cfg, const char *home, struct pc_error *err)
{
    char expanded[1100];
    if (strncmp(home, "~/", 2) == 0) {
        const char *user = getenv("HOME");
        snprintf(expanded, sizeof(expanded), "%.1000s/%.90s", user && *user ? user : ".", home + 2);
        home = expanded;
    }
    size_t n = strlen(home);
    if (n + 16 >= sizeof(cfg->home))
        return pc_error_set(err, PC_ERR_INVALID, "\"%.64s...\" is too long", home);
    memcpy(cfg->home, home, n + 1);
    memcpy(cfg->models_dir, home, n);
    memcpy(cfg->models_dir + n, "/models", sizeof("/models"));
    return PC_OK;
}

enum pc_err pc_server_parse_home(const char *s, struct pc_server_config *cfg, struct pc_error *err)
{
    return pc_server_set_home(cfg, s, err);
}

json_t *pc_server_show_home(const struct pc_server_config *cfg)
{
    return json_string(cfg->home);
}

/* ---- the pool ----------------------------------------------------------------------------- */

enum pc_err pc_server_parse_budget(const char *s, struct pc_server_config *cfg,
                                   struct pc_error *err)
{
    uint64_t bytes;
    size_t len = strlen(s);
    if (strcasecmp(s, "auto") == 0) {
        cfg->budget_mode = PC_BUDGET_AUTO;
        return PC_OK;
    }
    if (strcasecmp(s, "none") == 0) {
        cfg->budget_mode = PC_BUDGET_FIXED;
        cfg->pool.budget_bytes = 0;
        return PC_OK;
    }
    if (len > 1 && s[len - 1] == '%') {
        char *end;
        double pct = strtod(s, &end);
        if (s[0] >= '0' && s[0] <= '9' && end == s + len - 1 && pct > 0 && pct <= 100) {
            cfg->budget_mode = PC_BUDGET_PERCENT;
            cfg->budget_percent = pct;
            return PC_OK;
        }
    } else if (pc_parse_bytes(s, &bytes) == 0) {
        cfg->budget_mode = PC_BUDGET_FIXED;
        cfg->pool.budget_bytes = bytes;
        return PC_OK;
    }
    return pc_error_set(err, PC_ERR_INVALID,
                        "invalid memory budget \"%s\": use a size (\"12G\", \"800M\"), a share "
                        "of the available RAM (\"75%%\"), \"auto\" or \"none\"",
                        s);
}

json_t *pc_server_show_budget(const struct pc_server_config *cfg)
{
    char buf[32];
    switch (cfg->budget_mode) {
    case PC_BUDGET_AUTO:
        return json_string("auto");
    case PC_BUDGET_PERCENT:
        snprintf(buf, sizeof(buf), "%g%%", cfg->budget_percent);
        return json_string(buf);
    case PC_BUDGET_FIXED:
        break;
    }
    if (cfg->pool.budget_bytes == 0)
        return json_string("none");
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)cfg->pool.budget_bytes);
    return json_string(buf);
}

enum pc_err pc_server_parse_eviction(const char *s, struct pc_server_config *cfg,
                                     struct pc_error *err)
{
    if (pc_pool_policy_parse(s, &cfg->pool.policy))
        return PC_OK;
    return pc_error_set(err, PC_ERR_INVALID, "\"%s\" is not lru, lfu or fifo", s);
}

json_t *pc_server_show_eviction(const struct pc_server_config *cfg)
{
    return json_string(pc_pool_policy_name(cfg->pool.policy));
}

enum pc_err pc_server_add_model_dirs(const char *list, struct pc_server_config *cfg,
                                     struct pc_error *err)
{
    for (const char *p = list; *p != '\0';) {
        size_t len = strcspn(p, ":");
        if (len > 0) {
            if (cfg->n_model_dirs == PC_SERVER_MAX_MODEL_DIRS)
                return pc_error_set(err, PC_ERR_INVALID, "more than %d model directories",
                                    PC_SERVER_MAX_MODEL_DIRS);
            if (len >= sizeof(cfg->model_dirs[0]))
                return pc_error_set(err, PC_ERR_INVALID, "a model directory is too long");
            if (p[0] != '/')
                return pc_error_set(err, PC_ERR_INVALID,
                                    "model directory \"%.*s\" is not an absolute path", (int)len,
                                    p);
            memcpy(cfg->model_dirs[cfg->n_model_dirs], p, len);
            cfg->model_dirs[cfg->n_model_dirs++][len] = '\0';
        }
        p += len;
        if (*p == ':')
            p++;
    }
    return PC_OK;
}

/* A flag names one directory, relative to where serve runs. */
enum pc_err pc_server_add_model_dir_flag(const char *dir, struct pc_server_config *cfg,
                                         struct pc_error *err)
{
    char real[PATH_MAX];
    if (realpath(dir, real) == NULL)
        return pc_error_set(err, PC_ERR_INVALID, "\"%s\": %s", dir, strerror(errno));
    return pc_server_add_model_dirs(real, cfg, err);
}

enum pc_err pc_server_list_from_json(json_t *v, char sep, struct pc_server_config *cfg,
                                     pc_server_parse_fn add, struct pc_error *err)
{
    if (json_is_string(v))
        return add(json_string_value(v), cfg, err);
    if (!json_is_array(v))
        return pc_error_set(err, PC_ERR_INVALID, "expected a list of strings");
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e) || strchr(json_string_value(e), sep) != NULL)
            return pc_error_set(err, PC_ERR_INVALID, "[%zu] must be one item, a string", i);
        if (add(json_string_value(e), cfg, err) != PC_OK)
            return PC_ERR_INVALID;
    }
    return PC_OK;
}

enum pc_err pc_server_model_dirs_from_json(json_t *v, struct pc_server_config *cfg,
                                           struct pc_error *err)
{
    return pc_server_list_from_json(v, ':', cfg, pc_server_add_model_dirs, err);
}

void pc_server_clear_model_dirs(struct pc_server_config *cfg)
{
    cfg->n_model_dirs = 0;
}

json_t *pc_server_show_model_dirs(const struct pc_server_config *cfg)
{
    json_t *a = json_array();
    for (size_t i = 0; i < cfg->n_model_dirs; i++)
        json_array_append_new(a, json_string(cfg->model_dirs[i]));
    return a;
}

/* ---- preloads ----------------------------------------------------------------------------- */

enum pc_err pc_server_config_add_preload(struct pc_server_config *cfg, const char *model,
                                         struct pc_error *err)
{
    if (cfg->n_preload == PC_PRELOAD_MAX)
        return pc_error_set(err, PC_ERR_TOO_LARGE, "at most %d models can be preloaded",
                            PC_PRELOAD_MAX);
    for (size_t i = 0; i < cfg->n_preload; i++)
        if (strcmp(cfg->preload[i].model, model) == 0)
            return PC_OK;
    pc_preload_spec_default(&cfg->preload[cfg->n_preload++], model);
    return PC_OK;
}

enum pc_err pc_server_add_preloads(const char *list, struct pc_server_config *cfg,
                                   struct pc_error *err)
{
    const char *p = list;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        char name[256];
        while (len > 0 && (*p == ' ' || *p == '\t'))
            p++, len--;
        size_t trim = len;
        while (trim > 0 && (p[trim - 1] == ' ' || p[trim - 1] == '\t'))
            trim--;
        if (trim >= sizeof(name))
            return pc_error_set(err, PC_ERR_INVALID, "a model name is too long");
        memcpy(name, p, trim);
        name[trim] = '\0';
        if (trim > 0 && pc_server_config_add_preload(cfg, name, err) != PC_OK)
            return err ? err->code : PC_ERR_INVALID;
        p += len;
        if (*p == ',')
            p++;
    }
    return PC_OK;
}

enum pc_err pc_server_preloads_from_json(json_t *v, struct pc_server_config *cfg,
                                         struct pc_error *err)
{
    if (!json_is_array(v))
        return pc_error_set(err, PC_ERR_INVALID, "must be a list");
    if (json_array_size(v) > PC_PRELOAD_MAX)
        return pc_error_set(err, PC_ERR_TOO_LARGE, "at most %d models", PC_PRELOAD_MAX);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        struct pc_error inner = {0};
        struct pc_preload_spec *spec = &cfg->preload[cfg->n_preload];
        if (pc_preload_spec_from_json(e, spec, &inner) != PC_OK)
            return pc_error_set(err, inner.code, "[%zu]: %s", i, inner.msg);
        for (size_t j = 0; j < cfg->n_preload; j++)
            if (strcmp(cfg->preload[j].model, spec->model) == 0)
                return pc_error_set(err, PC_ERR_INVALID, "[%zu]: \"%s\" is listed twice", i,
                                    spec->model);
        cfg->n_preload++;
    }
    return PC_OK;
}

void pc_server_clear_preloads(struct pc_server_config *cfg)
{
    cfg->n_preload = 0;
}

json_t *pc_server_show_preloads(const struct pc_server_config *cfg)
{
    json_t *a = json_array();
    for (size_t i = 0; i < cfg->n_preload; i++)
        json_array_append_new(a, pc_preload_spec_to_json(&cfg->preload[i]));
    return a;
}

enum pc_err pc_server_parse_keep_warm(const char *s, struct pc_server_config *cfg,
                                      struct pc_error *err)
{
    struct pc_keep_warm kw;
    enum pc_err rc = pc_keep_warm_parse(s, &kw, err);
    if (rc == PC_OK)
        cfg->keep_warm = kw;
    return rc;
}

json_t *pc_server_show_keep_warm(const struct pc_server_config *cfg)
{
    char buf[32];
    return json_string(pc_keep_warm_format(&cfg->keep_warm, buf, sizeof(buf)));
}

/* ---- logs --------------------------------------------------------------------------------- */

enum pc_err pc_server_parse_log_level(const char *s, struct pc_server_config *cfg,
                                      struct pc_error *err)
{
    if (pc_log_level_parse(s) < 0)
        return pc_error_set(err, PC_ERR_INVALID, "\"%s\" is not error, warn, info or debug", s);
    snprintf(cfg->log_level, sizeof(cfg->log_level), "%s", s);
    return PC_OK;
}

json_t *pc_server_show_log_level(const struct pc_server_config *cfg)
{
    return json_string(cfg->log_level);
}

enum pc_err pc_server_parse_llama_log(const char *s, struct pc_server_config *cfg,
                                      struct pc_error *err)
{
    if (strcmp(s, "none") != 0 && pc_log_level_parse(s) < 0)
        return pc_error_set(err, PC_ERR_INVALID, "\"%s\" is not none, error, warn, info or debug",
                            s);
    snprintf(cfg->llama_log, sizeof(cfg->llama_log), "%s", s);
    return PC_OK;
}

json_t *pc_server_show_llama_log(const struct pc_server_config *cfg)
{
    return json_string(cfg->llama_log);
}

/* ---- the sources -------------------------------------------------------------------------- */

enum pc_err pc_server_config_from_env(struct pc_server_config *cfg, struct pc_error *err)
{
    pc_settings_defaults(cfg);
    return pc_settings_from_env(cfg, err);
}

enum pc_err pc_server_config_load_file(struct pc_server_config *cfg, const char *path,
                                       bool must_exist, struct pc_error *err)
{
    json_error_t je;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT && !must_exist)
            return PC_OK;
        return pc_error_set(err, errno == ENOENT ? PC_ERR_NOT_FOUND : PC_ERR_IO,
                            "config file \"%s\": %s", path, strerror(errno));
    }
    json_t *o = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (o == NULL)
        return pc_error_set(err, PC_ERR_INVALID, "config file \"%s\", line %d, column %d: %s", path,
                            je.line, je.column, je.text);
    enum pc_err rc = PC_OK;
    if (!json_is_object(o))
        rc = pc_error_set(err, PC_ERR_INVALID, "config file \"%s\": expected a JSON object", path);
    const char *key;
    json_t *v;
    struct pc_error inner = {0};
    json_object_foreach(o, key, v)
    {
        if (rc != PC_OK)
            break;
        if ((rc = pc_settings_from_file_key(cfg, key, v, &inner)) != PC_OK)
            pc_error_set(err, rc, "config file \"%s\": %s", path, inner.msg);
    }
    json_decref(o);
    if (rc == PC_OK)
        snprintf(cfg->config_file, sizeof(cfg->config_file), "%s", path);
    return rc;
}

json_t *pc_server_config_to_json(const struct pc_server_config *cfg)
{
    return pc_settings_to_json(cfg);
}
