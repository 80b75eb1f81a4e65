/* config.c - the daemon's configuration file (JSON), the preloader's environment variables,
 * and the effective configuration as JSON for `precharge config`. */
#include "serverInt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/duration.h"
#include "../base/fmt.h"

#define DEFAULT_PRELOAD_TIMEOUT_MS 30000  /* seed 001's MODEL_PRELOAD_TIMEOUT */
#define DEFAULT_HEALTH_INTERVAL_MS 300000 /* seed 001's HEALTH_CHECK_INTERVAL */
#define DEFAULT_OLLAMA_URL "http://localhost:11434"
#define MAX_MS (7ll * 24 * 3600 * 1000)

static enum pc_err parse_ms(const char *name, const char *v, int64_t *out, struct pc_error *err)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (*v == '\0' || *end != '\0' || errno != 0 || n < 0 || n > MAX_MS)
        return pc_error_set(err, PC_ERR_INVALID,
                            "%s=\"%s\": expected milliseconds, a whole number from 0 to %lld", name,
                            v, MAX_MS);
    *out = n;
    return PC_OK;
}

enum pc_err pc_server_config_add_preload(struct pc_server_config *cfg, const char *model,
                                         struct pc_error *err)
{
    if (cfg->n_preload == PC_PRELOAD_MAX)
        return pc_error_set(err, PC_ERR_TOO_LARGE, "at most %d models can be preloaded",
                            PC_PRELOAD_MAX);
    for (size_t i = 0; i < cfg->n_preload; i++)
        if (strcmp(cfg->preload[i].model, model) == 0)
            return PC_OK;
    struct pc_preload_spec *spec = &cfg->preload[cfg->n_preload];
    pc_preload_spec_default(spec, model);
    const char *v = getenv("PRECHARGE_PRELOAD_RETRIES");
    int64_t n;
    if (v != NULL && *v != '\0') {
        if (parse_ms("PRECHARGE_PRELOAD_RETRIES", v, &n, err) != PC_OK || n > 1000)
            return pc_error_set(err, PC_ERR_INVALID,
                                "PRECHARGE_PRELOAD_RETRIES=\"%s\": expected 0 to 1000", v);
        spec->max_retries = (int)n;
    }
    v = getenv("PRECHARGE_PRELOAD_RETRY_DELAY");
    if (v != NULL && *v != '\0' &&
        parse_ms("PRECHARGE_PRELOAD_RETRY_DELAY", v, &spec->retry_delay_ms, err) != PC_OK)
        return PC_ERR_INVALID;
    struct pc_error inner = {0};
    v = getenv("PRECHARGE_KEEP_WARM");
    if (pc_keep_warm_parse(v, &spec->keep_warm, &inner) != PC_OK)
        return pc_error_set(err, PC_ERR_INVALID, "PRECHARGE_KEEP_WARM: %s", inner.msg);
    cfg->n_preload++;
    return PC_OK;
}

/* Replace the list with a comma-separated one. */
static enum pc_err set_preload_list(struct pc_server_config *cfg, const char *list,
                                    struct pc_error *err)
{
    cfg->n_preload = 0;
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
            return pc_error_set(err, PC_ERR_INVALID, "PRECHARGE_PRELOAD: a name is too long");
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

enum pc_err pc_server_config_env_preload(struct pc_server_config *cfg, struct pc_error *err)
{
    cfg->preload_timeout_ms = DEFAULT_PRELOAD_TIMEOUT_MS;
    cfg->health_interval_ms = DEFAULT_HEALTH_INTERVAL_MS;
    snprintf(cfg->ollama_url, sizeof(cfg->ollama_url), "%s", DEFAULT_OLLAMA_URL);
    const char *v = getenv("MODEL_PRELOAD_TIMEOUT");
    if (v != NULL && *v != '\0' &&
        parse_ms("MODEL_PRELOAD_TIMEOUT", v, &cfg->preload_timeout_ms, err) != PC_OK)
        return PC_ERR_INVALID;
    v = getenv("HEALTH_CHECK_INTERVAL");
    if (v != NULL && *v != '\0' &&
        parse_ms("HEALTH_CHECK_INTERVAL", v, &cfg->health_interval_ms, err) != PC_OK)
        return PC_ERR_INVALID;
    v = getenv("OLLAMA_URL");
    if (v != NULL && *v != '\0') {
        if (strlen(v) >= sizeof(cfg->ollama_url))
            return pc_error_set(err, PC_ERR_INVALID, "OLLAMA_URL is too long");
        snprintf(cfg->ollama_url, sizeof(cfg->ollama_url), "%s", v);
    }
    v = getenv("PRECHARGE_PRELOAD");
    if (v != NULL && set_preload_list(cfg, v, err) != PC_OK)
        return PC_ERR_INVALID;
    return PC_OK;
}

/* ---- the file ----------------------------------------------------------------------------- */

/* A key's value as text: strings as they are, whole numbers printed. NULL for other types. */
static const char *text_of(json_t *v, char *buf, size_t size)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, size, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    return NULL;
}

static enum pc_err file_long(json_t *v, const char *key, long min, long max, long *out,
                             struct pc_error *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return pc_error_set(err, PC_ERR_INVALID, "\"%s\" must be a whole number from %ld to %ld",
                            key, min, max);
    *out = (long)json_integer_value(v);
    return PC_OK;
}

static enum pc_err file_preload(struct pc_server_config *cfg, json_t *v, struct pc_error *err)
{
    if (!json_is_array(v))
        return pc_error_set(err, PC_ERR_INVALID, "\"preload\" must be a list");
    if (json_array_size(v) > PC_PRELOAD_MAX)
        return pc_error_set(err, PC_ERR_TOO_LARGE, "\"preload\": at most %d models",
                            PC_PRELOAD_MAX);
    cfg->n_preload = 0;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        struct pc_error inner = {0};
        struct pc_preload_spec *spec = &cfg->preload[cfg->n_preload];
        if (pc_preload_spec_from_json(e, spec, &inner) != PC_OK)
            return pc_error_set(err, inner.code, "\"preload\"[%zu]: %s", i, inner.msg);
        for (size_t j = 0; j < cfg->n_preload; j++)
            if (strcmp(cfg->preload[j].model, spec->model) == 0)
                return pc_error_set(err, PC_ERR_INVALID, "\"preload\"[%zu]: \"%s\" is listed twice",
                                    i, spec->model);
        cfg->n_preload++;
    }
    return PC_OK;
}

/* One key of the file. */
static enum pc_err file_key(struct pc_server_config *cfg, const char *key, json_t *v,
                            struct pc_error *err)
{
    char num[32];
    const char *s = text_of(v, num, sizeof(num));
    struct pc_error inner = {0};
    long n;
    enum pc_err rc = PC_OK;
    if (strcmp(key, "preload") == 0)
        return file_preload(cfg, v, err);
    rc = pc_server_config_file_safety(cfg, key, v, &inner);
    if (rc != PC_ERR_NOT_FOUND)
        return rc == PC_OK ? PC_OK : pc_error_set(err, rc, "\"%s\": %s", key, inner.msg);
    rc = PC_OK;
    if (strcmp(key, "max_models") == 0) {
        if ((rc = file_long(v, key, 1, 64, &n, err)) == PC_OK)
            cfg->pool.max_models = (size_t)n;
        return rc;
    }
    if (strcmp(key, "max_queue") == 0) {
        if ((rc = file_long(v, key, 0, PC_SERVER_MAX_QUEUE, &n, err)) == PC_OK)
            cfg->max_queue = (size_t)n;
        return rc;
    }
    if (strcmp(key, "context_length") == 0) {
        if ((rc = file_long(v, key, 0, 1 << 22, &n, err)) == PC_OK)
            cfg->pool.model_params.n_ctx = (uint32_t)n;
        return rc;
    }
    if (strcmp(key, "threads") == 0) {
        if ((rc = file_long(v, key, 0, 1024, &n, err)) == PC_OK)
            cfg->pool.model_params.n_threads = (int32_t)n;
        return rc;
    }
    if (s == NULL)
        return pc_error_set(err, PC_ERR_INVALID, "\"%s\" must be a string", key);
    if (strcmp(key, "host") == 0)
        rc = pc_server_parse_hostport(s, cfg, &inner);
    else if (strcmp(key, "home") == 0)
        rc = pc_server_set_home(cfg, s, &inner);
    else if (strcmp(key, "keep_alive") == 0)
        rc = pc_duration_parse(s, &cfg->pool.default_keep_alive_ns, &inner);
    else if (strcmp(key, "debounce") == 0)
        rc = pc_duration_parse(s, &cfg->debounce_ns, &inner);
    else if (strcmp(key, "snapshot_ram") == 0 || strcmp(key, "snapshot_disk") == 0)
        rc = pc_parse_bytes(s, key[9] == 'r' ? &cfg->snapshot_ram : &cfg->snapshot_disk) == 0
                 ? PC_OK
                 : pc_error_set(&inner, PC_ERR_INVALID, "expected a size such as 2G");
    else if (strcmp(key, "memory_budget") == 0)
        rc = pc_server_parse_budget(s, cfg, &inner);
    else if (strcmp(key, "eviction") == 0)
        rc = pc_pool_policy_parse(s, &cfg->pool.policy)
                 ? PC_OK
                 : pc_error_set(&inner, PC_ERR_INVALID, "expected lru, lfu or fifo");
    else if (strcmp(key, "model_dirs") == 0)
        rc = (cfg->n_model_dirs = 0, pc_server_add_model_dirs(s, cfg, &inner));
    else if (strcmp(key, "preload_timeout_ms") == 0)
        rc = parse_ms(key, s, &cfg->preload_timeout_ms, &inner);
    else if (strcmp(key, "health_check_interval_ms") == 0)
        rc = parse_ms(key, s, &cfg->health_interval_ms, &inner);
    else if (strcmp(key, "ollama_url") == 0)
        rc = strlen(s) < sizeof(cfg->ollama_url)
                 ? (snprintf(cfg->ollama_url, sizeof(cfg->ollama_url), "%s", s), PC_OK)
                 : pc_error_set(&inner, PC_ERR_INVALID, "too long");
    else
        return pc_error_set(err, PC_ERR_INVALID, "unknown key \"%s\"", key);
    if (rc != PC_OK)
        return pc_error_set(err, rc, "\"%s\": %s", key, inner.msg);
    return PC_OK;
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
        if ((rc = file_key(cfg, key, v, &inner)) != PC_OK)
            pc_error_set(err, rc, "config file \"%s\": %s", path, inner.msg);
    }
    json_decref(o);
    if (rc == PC_OK)
        snprintf(cfg->config_file, sizeof(cfg->config_file), "%s", path);
    return rc;
}

json_t *pc_server_config_to_json(const struct pc_server_config *cfg)
{
    char host[300], ka[32], ram[32], disk[32];
    snprintf(host, sizeof(host), strchr(cfg->host, ':') ? "[%s]:%d" : "%s:%d", cfg->host,
             cfg->port);
    if (cfg->pool.default_keep_alive_ns == PC_DURATION_FOREVER)
        snprintf(ka, sizeof(ka), "-1");
    else
        snprintf(ka, sizeof(ka), "%llds",
                 (long long)(cfg->pool.default_keep_alive_ns / 1000000000));
    snprintf(ram, sizeof(ram), "%llu", (unsigned long long)cfg->snapshot_ram);
    snprintf(disk, sizeof(disk), "%llu", (unsigned long long)cfg->snapshot_disk);
    json_t *preload = json_array();
    for (size_t i = 0; i < cfg->n_preload; i++)
        json_array_append_new(preload, pc_preload_spec_to_json(&cfg->preload[i]));
    char deb[32];
    snprintf(deb, sizeof(deb), "%lldms", (long long)(cfg->debounce_ns / 1000000));
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:s, s:s, s:o, s:I, s:I, s:s, s:o}",
                  "host", host, "home", cfg->home, "keep_alive", ka, "max_models",
                  (json_int_t)cfg->pool.max_models, "max_queue", (json_int_t)cfg->max_queue,
                  "context_length", (json_int_t)cfg->pool.model_params.n_ctx, "threads",
                  (json_int_t)cfg->pool.model_params.n_threads, "snapshot_ram", ram,
                  "snapshot_disk", disk, "debounce", deb, "preload", preload, "preload_timeout_ms",
                  (json_int_t)cfg->preload_timeout_ms, "health_check_interval_ms",
                  (json_int_t)cfg->health_interval_ms, "ollama_url", cfg->ollama_url, "config_file",
                  cfg->config_file[0] ? json_string(cfg->config_file) : json_null());
    if (o != NULL)
        pc_server_config_safety_to_json(cfg, o);
    return o;
}
