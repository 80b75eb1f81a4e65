/* settings.c - the table of the daemon's settings, and the walks over it for the environment,
 * the config file, the flags, `precharge config` and `serve --help`. */
#include "settings.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../base/duration.h"
#include "../base/fmt.h"
#include "serverInt.h"

#define MAX_MS (7ll * 24 * 3600 * 1000) /* a week, the longest interval in milliseconds */

#define FIELD(f)                                                                                   \
    .offset = offsetof(struct pc_server_config, f),                                                \
    .width = sizeof(((struct pc_server_config *)0)->f)

#define INT(f, lo, hi) .kind = PC_SETTING_INT, .min = (lo), .max = (hi), FIELD(f)
#define SIZE(f, lo, hi) .kind = PC_SETTING_SIZE, .min = (lo), .max = (hi), FIELD(f)
#define CUSTOM(p, s) .kind = PC_SETTING_CUSTOM, .parse = (p), .show = (s)

/* Every setting, in the order the environment is read (an API key file before the key, so
 * that the key itself wins) and `precharge config` prints them. */
const struct pc_setting pc_settings[] = {
    {.key = "host",
     .env = "PRECHARGE_HOST",
     .flag = "host",
     .arg = "HOST:PORT",
     CUSTOM(pc_server_parse_hostport, pc_server_show_host),
     .dflt = "127.0.0.1:11435",
     .help = "listen address, as OLLAMA_HOST: host, host:port, :port, [::1]:port"},
    {.key = "home",
     .env = "PRECHARGE_HOME",
     .flag = "home",
     .arg = "DIR",
     CUSTOM(pc_server_parse_home, pc_server_show_home),
     .dflt = "~/.precharge",
     .help = "state directory: models/, snapshots/, config.json"},
    {.key = "keep_alive",
     .env = "PRECHARGE_KEEP_ALIVE",
     .flag = "keep-alive",
     .arg = "DUR",
     .kind = PC_SETTING_DURATION,
     FIELD(pool.default_keep_alive_ns),
     .dflt = "5m",
     .help = "a model's keep-alive after its last use (-1: forever, 0: at once)"},
    {.key = "max_models",
     .env = "PRECHARGE_MAX_LOADED_MODELS",
     .flag = "max-models",
     .arg = "N",
     INT(pool.max_models, 1, 64),
     .dflt = "3",
     .help = "models resident at once"},
    {.key = "max_queue",
     .env = "PRECHARGE_MAX_QUEUE",
     .flag = "max-queue",
     .arg = "N",
     INT(max_queue, 0, PC_SERVER_MAX_QUEUE),
     .dflt = "512",
     .help = "requests that may wait for one model; more get 503 (0: no limit)"},
    {.key = "memory_budget",
     .env = "PRECHARGE_MEMORY_BUDGET",
     .flag = "memory-budget",
     .arg = "SIZE",
     CUSTOM(pc_server_parse_budget, pc_server_show_budget),
     .dflt = "auto",
     .help = "bytes for resident models: 12G, 75%, auto (free RAM less headroom), none"},
    {.key = "eviction",
     .env = "PRECHARGE_EVICTION",
     .flag = "eviction",
     .arg = "POLICY",
     CUSTOM(pc_server_parse_eviction, pc_server_show_eviction),
     .dflt = "lru",
     .help = "which idle model makes room: lru, lfu or fifo"},
    {.key = "model_dirs",
     .env = "PRECHARGE_MODEL_DIRS",
     .flag = "model-dir",
     .arg = "DIR",
     CUSTOM(pc_server_add_model_dirs, pc_server_show_model_dirs),
     .list = true,
     .parse_flag = pc_server_add_model_dir_flag,
     .parse_json = pc_server_model_dirs_from_json,
     .clear = pc_server_clear_model_dirs,
     .help = "where /v1/models/{id}/load may name models by path (':' list; repeatable)"},
    {.key = "context_length",
     .env = "PRECHARGE_CONTEXT_LENGTH",
     .flag = "ctx",
     .arg = "N",
     INT(pool.model_params.n_ctx, 0, 1 << 22),
     .dflt = "4096",
     .help = "context window per request, capped at the model's own (0: its own)"},
    {.key = "parallel",
     .env = "PRECHARGE_PARALLEL",
     .flag = "parallel",
     .arg = "N",
     INT(pool.model_params.n_parallel, 1, PC_SERVER_MAX_PARALLEL),
     .dflt = "4",
     .help = "requests decoded together per model; more wait (KV cache: N windows)"},
    {.key = "threads",
     .env = "PRECHARGE_THREADS",
     .flag = "threads",
     .arg = "N",
     INT(pool.model_params.n_threads, 0, 1024),
     .dflt = "0",
     .help = "threads per decode (0: the CPUs that other processes leave idle)"},
    {.key = "repack",
     .env = "PRECHARGE_REPACK",
     .flag = "no-repack",
     .switch_value = "false",
     .kind = PC_SETTING_BOOL,
     FIELD(pool.model_params.repack),
     .dflt = "true",
     .help = "repack weights for this CPU (faster prefill, more RAM); the flag: off"},
    {.key = "snapshot_ram",
     .env = "PRECHARGE_SNAPSHOT_RAM",
     SIZE(snapshot_ram, 0, 0),
     .dflt = "1G",
     .help = "budget of the RAM snapshot tier"},
    {.key = "snapshot_disk",
     .env = "PRECHARGE_SNAPSHOT_DISK",
     SIZE(snapshot_disk, 0, 0),
     .dflt = "8G",
     .help = "budget of the disk snapshot tier ($PRECHARGE_HOME/snapshots)"},
    {.key = "debounce",
     .env = "PRECHARGE_DEBOUNCE",
     .kind = PC_SETTING_DURATION,
     FIELD(debounce_ns),
     .dflt = "250ms",
     .help = "a newer precharge with the same key within this replaces the queued one"},
    {.key = "update_check",
     .env = "PRECHARGE_UPDATE_CHECK",
     CUSTOM(pc_server_parse_update_check, pc_server_show_update_check),
     .dflt = "off",
     .help = "look for model updates: off, daily, weekly or a duration (log and event)"},
    {.key = "preload",
     .env = "PRECHARGE_PRELOAD",
     .flag = "preload",
     .arg = "MODEL",
     CUSTOM(pc_server_add_preloads, pc_server_show_preloads),
     .list = true,
     .parse_json = pc_server_preloads_from_json,
     .clear = pc_server_clear_preloads,
     .help = "models to warm at start (a comma list; repeatable)"},
    {.key = "preload_timeout_ms",
     .env = "MODEL_PRELOAD_TIMEOUT",
     .flag = "preload-timeout",
     .arg = "MS",
     INT(preload_timeout_ms, 0, MAX_MS),
     .dflt = "30000",
     .help = "bound on each preload attempt and health check, in ms"},
    {.key = "health_check_interval_ms",
     .env = "HEALTH_CHECK_INTERVAL",
     .flag = "health-interval",
     .arg = "MS",
     INT(health_interval_ms, 0, MAX_MS),
     .dflt = "300000",
     .help = "one-token health check of each preloaded model, every MS (0: none)"},
    {.key = "preload_retries",
     .env = "PRECHARGE_PRELOAD_RETRIES",
     INT(preload_retries, 0, 1000),
     .dflt = "3",
     .help = "quick retries of a preload named without a spec, before it is failed"},
    {.key = "preload_retry_delay_ms",
     .env = "PRECHARGE_PRELOAD_RETRY_DELAY",
     INT(preload_retry_delay_ms, 0, 86400000),
     .dflt = "2000",
     .help = "the first retry's delay in ms, doubled for each one after"},
    {.key = "preload_retry_max_ms",
     .env = "PRECHARGE_PRELOAD_RETRY_MAX",
     INT(preload_retry_max_ms, 1, MAX_MS),
     .dflt = "300000",
     .help = "the longest wait between retries (a required preload retries until warm)"},
    {.key = "keep_warm",
     .env = "PRECHARGE_KEEP_WARM",
     CUSTOM(pc_server_parse_keep_warm, pc_server_show_keep_warm),
     .dflt = "none",
     .help = "schedule of the preloads named without a spec: always, none, 08:00-18:00"},
    {.key = "max_parallel_preloads",
     .env = "PRECHARGE_MAX_PARALLEL_PRELOADS",
     .flag = "max-parallel-preloads",
     .arg = "N",
     INT(max_parallel_preloads, 0, 1024),
     .dflt = "0",
     .help = "preloads that load at once (0: the core count)"},
    {.key = "ollama_url",
     .env = "OLLAMA_URL",
     .kind = PC_SETTING_TEXT,
     FIELD(ollama_url),
     .dflt = "http://localhost:11434",
     .help = "the remote provider's Ollama-compatible server (off: none)"},
    {.key = "ollama_poll_ms",
     .env = "PRECHARGE_OLLAMA_POLL",
     INT(ollama_poll_ms, 1, MAX_MS),
     .dflt = "10000",
     .help = "how often the remote server's models are polled, in ms"},
    {.key = "api_key_file",
     .env = "PRECHARGE_API_KEY_FILE",
     .flag = "api-key-file",
     .arg = "FILE",
     CUSTOM(pc_server_parse_api_key_file, pc_server_show_api_key_file),
     .help = "require \"Authorization: Bearer KEY\", the key read from FILE"},
    {.key = "api_key",
     .env = "PRECHARGE_API_KEY",
     .flag = "api-key",
     .arg = "KEY",
     CUSTOM(pc_server_parse_api_key, pc_server_show_api_key),
     .help = "require \"Authorization: Bearer KEY\" on all but /health and /ready"},
    {.key = "insecure",
     .env = "PRECHARGE_INSECURE",
     .flag = "insecure",
     .switch_value = "true",
     .kind = PC_SETTING_BOOL,
     FIELD(insecure),
     .dflt = "false",
     .help = "allow a non-loopback host without an API key"},
    {.key = "cors_origins",
     .env = "PRECHARGE_CORS_ORIGINS",
     .flag = "cors-origin",
     .arg = "ORIGIN",
     CUSTOM(pc_server_add_cors_origins, pc_server_show_cors_origins),
     .list = true,
     .parse_json = pc_server_cors_origins_from_json,
     .clear = pc_server_clear_cors_origins,
     .help = "origins whose pages may call the API (a comma list; * any; repeatable)"},
    {.key = "max_body",
     .env = "PRECHARGE_MAX_BODY",
     .flag = "max-body",
     .arg = "SIZE",
     SIZE(max_body, 1024, 1 << 30),
     .dflt = "8M",
     .help = "request body limit"},
    {.key = "max_prompt_tokens",
     .env = "PRECHARGE_MAX_PROMPT_TOKENS",
     .flag = "max-prompt-tokens",
     .arg = "N",
     INT(max_prompt_tokens, 0, 1 << 22),
     .dflt = "0",
     .help = "prompt limit in tokens (0: the context)"},
    {.key = "connection_timeout",
     .env = "PRECHARGE_CONNECTION_TIMEOUT",
     .flag = "connection-timeout",
     .arg = "DUR",
     CUSTOM(pc_server_parse_connection_timeout, pc_server_show_connection_timeout),
     .dflt = "30s",
     .help = "idle connections close after this, whole seconds (0: never)"},
    /* A browser opens six connections to a host, and a NAT or a proxy carries many users: the
     * per-address cap only keeps one client from taking every connection. */
    {.key = "max_connections_per_ip",
     .env = "PRECHARGE_MAX_CONNECTIONS_PER_IP",
     .flag = "max-connections-per-ip",
     .arg = "N",
     INT(max_connections_per_ip, 0, 1 << 20),
     .dflt = "1024",
     .help = "connections at once from one client address; more are closed (0: no limit)"},
    {.key = "max_event_streams",
     .env = "PRECHARGE_MAX_EVENT_STREAMS",
     .flag = "max-event-streams",
     .arg = "N",
     INT(max_event_streams, 1, 1 << 20),
     .dflt = "256",
     .help = "/api/events streams at once; more get 503"},
    {.key = "redis",
     .env = "PRECHARGE_REDIS_URL",
     .flag = "redis",
     .arg = "URL",
     CUSTOM(pc_server_parse_redis, pc_server_show_redis),
     .dflt = "off",
     .help = "join a fleet: redis://[[user]:password@]host[:port][/db] or unix:///path"},
    {.key = "redis_snapshots",
     .env = "PRECHARGE_REDIS_SNAPSHOTS",
     .flag = "redis-snapshots",
     .switch_value = "true",
     .kind = PC_SETTING_BOOL,
     FIELD(redis_snapshots),
     .dflt = "false",
     .help = "share precharged snapshots through redis, by model sha256 (docs/fleet.md)"},
    {.key = "redis_snapshot_budget",
     .env = "PRECHARGE_REDIS_SNAPSHOT_BUDGET",
     SIZE(redis_snapshot_budget, 0, 0),
     .dflt = "1G",
     .help = "bytes that the fleet's shared snapshots may take in redis"},
    {.key = "redis_snapshot_ttl",
     .env = "PRECHARGE_REDIS_SNAPSHOT_TTL",
     .kind = PC_SETTING_DURATION,
     FIELD(redis_snapshot_ttl_ns),
     .dflt = "24h",
     .help = "an unused shared snapshot expires after this (-1: never)"},
    {.key = "fleet_advertise",
     .env = "PRECHARGE_FLEET_ADVERTISE",
     .kind = PC_SETTING_TEXT,
     FIELD(fleet_advertise),
     .dflt = "",
     .help = "the HTTP address the fleet's registry publishes (\"\": the listen address)"},
    {.key = "fleet_visibility_timeout",
     .env = "PRECHARGE_FLEET_VISIBILITY_TIMEOUT",
     .kind = PC_SETTING_DURATION,
     FIELD(fleet_visibility_ns),
     .dflt = "60s",
     .help = "a bus request pending this long on a daemon is taken over by another"},
    {.key = "fleet_heartbeat",
     .env = "PRECHARGE_FLEET_HEARTBEAT",
     .kind = PC_SETTING_DURATION,
     FIELD(fleet_heartbeat_ns),
     .dflt = "2s",
     .help = "how often a daemon refreshes its registry entry"},
    {.key = "fleet_expiry",
     .env = "PRECHARGE_FLEET_EXPIRY",
     .kind = PC_SETTING_DURATION,
     FIELD(fleet_expiry_ns),
     .dflt = "10s",
     .help = "a registry entry not refreshed for this long is gone (a dead daemon)"},
    {.key = "fleet_unserved_grace",
     .env = "PRECHARGE_FLEET_UNSERVED_GRACE",
     .kind = PC_SETTING_DURATION,
     FIELD(fleet_grace_ns),
     .dflt = "30s",
     .help = "wait before a bus request no live daemon can serve is answered unavailable"},
    {.key = "fleet_stream_maxlen",
     .env = "PRECHARGE_FLEET_STREAM_MAXLEN",
     INT(fleet_maxlen, 100, 1ll << 40),
     .dflt = "100000",
     .help = "the fleet's streams are trimmed to about this many entries (MAXLEN ~)"},
    {.key = "log_level",
     .env = "PRECHARGE_LOG_LEVEL",
     .flag = "log-level",
     .arg = "LEVEL",
     CUSTOM(pc_server_parse_log_level, pc_server_show_log_level),
     .dflt = "info",
     .help = "error, warn, info or debug"},
    {.key = "llama_log",
     .env = "PRECHARGE_LLAMA_LOG",
     .flag = "llama-log",
     .arg = "LEVEL",
     CUSTOM(pc_server_parse_llama_log, pc_server_show_llama_log),
     .dflt = "error",
     .help = "llama.cpp's own messages: none, error, warn, info or debug"},
};

const size_t pc_settings_count = sizeof(pc_settings) / sizeof(pc_settings[0]);

_Static_assert(sizeof(pc_settings) / sizeof(pc_settings[0]) <= PC_SETTINGS_MAX,
               "pc_server_config.source has room for every setting");

static const char *const source_names[] = {"default", "environment", "file", "flag"};

const struct pc_setting *pc_setting_find(const char *key)
{
    for (size_t i = 0; i < pc_settings_count; i++)
        if (strcmp(pc_settings[i].key, key) == 0)
            return &pc_settings[i];
    return NULL;
}

enum pc_setting_source pc_settings_source(const struct pc_server_config *cfg, const char *key)
{
    const struct pc_setting *s = pc_setting_find(key);
    return s ? (enum pc_setting_source)cfg->source[s - pc_settings] : PC_SOURCE_DEFAULT;
}

/* ---- values by kind ----------------------------------------------------------------------- */

static void *field(struct pc_server_config *cfg, const struct pc_setting *s)
{
    return (char *)cfg + s->offset;
}

static const void *field_c(const struct pc_server_config *cfg, const struct pc_setting *s)
{
    return (const char *)cfg + s->offset;
}

/* The table's whole numbers are never negative, so a field of either signedness holds them. */
static void store_uint(void *f, size_t width, uint64_t v)
{
    if (width == sizeof(uint32_t)) {
        uint32_t n = (uint32_t)v;
        memcpy(f, &n, sizeof(n));
    } else {
        memcpy(f, &v, sizeof(v));
    }
}

static uint64_t load_uint(const void *f, size_t width)
{
    if (width == sizeof(uint32_t)) {
        uint32_t n;
        memcpy(&n, f, sizeof(n));
        return n;
    }
    uint64_t v;
    memcpy(&v, f, sizeof(v));
    return v;
}

static enum pc_err parse_int(const struct pc_setting *s, const char *v, void *f,
                             struct pc_error *err)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (*v < '0' || *v > '9' || *end != '\0' || errno != 0 || n < s->min || n > s->max)
        return pc_error_set(err, PC_ERR_INVALID, "\"%s\" is not a whole number from %lld to %lld",
                            v, s->min, s->max);
    store_uint(f, s->width, (uint64_t)n);
    return PC_OK;
}

static enum pc_err parse_size(const struct pc_setting *s, const char *v, void *f,
                              struct pc_error *err)
{
    uint64_t n;
    char lo[32], hi[32];
    if (pc_parse_bytes(v, &n) == 0 && n >= (uint64_t)s->min &&
        (s->max == 0 || n <= (uint64_t)s->max)) {
        store_uint(f, s->width, n);
        return PC_OK;
    }
    if (s->max == 0)
        return pc_error_set(err, PC_ERR_INVALID, "\"%s\" is not a size, such as 2G", v);
    return pc_error_set(err, PC_ERR_INVALID, "\"%s\" is not a size from %s to %s, such as 8M", v,
                        pc_fmt_bytes((uint64_t)s->min, lo, sizeof(lo)),
                        pc_fmt_bytes((uint64_t)s->max, hi, sizeof(hi)));
}

static enum pc_err parse_bool(const char *v, bool *out, struct pc_error *err)
{
    if (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0)
        *out = true;
    else if (strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0)
        *out = false;
    else
        return pc_error_set(err, PC_ERR_INVALID, "\"%s\": expected 1 or 0 (true or false)", v);
    return PC_OK;
}

/* Parse text into cfg by the setting's kind; only a valid value changes cfg. */
static enum pc_err parse_text(const struct pc_setting *s, const char *v, bool from_flag,
                              struct pc_server_config *cfg, struct pc_error *err)
{
    switch (s->kind) {
    case PC_SETTING_INT:
        return parse_int(s, v, field(cfg, s), err);
    case PC_SETTING_SIZE:
        return parse_size(s, v, field(cfg, s), err);
    case PC_SETTING_DURATION: {
        int64_t ns;
        enum pc_err rc = pc_duration_parse(v, &ns, err);
        if (rc == PC_OK)
            memcpy(field(cfg, s), &ns, sizeof(ns));
        return rc;
    }
    case PC_SETTING_TEXT:
        if (strlen(v) >= s->width)
            return pc_error_set(err, PC_ERR_INVALID, "longer than %zu bytes", s->width - 1);
        memcpy(field(cfg, s), v, strlen(v) + 1);
        return PC_OK;
    case PC_SETTING_BOOL: {
        bool b = false;
        enum pc_err rc = parse_bool(v, &b, err);
        if (rc == PC_OK)
            *(bool *)field(cfg, s) = b;
        return rc;
    }
    case PC_SETTING_CUSTOM:
        break;
    }
    return from_flag && s->parse_flag ? s->parse_flag(v, cfg, err) : s->parse(v, cfg, err);
}

/* A duration as the parser reads it back: "-1" for ever, else whole seconds or milliseconds. */
static json_t *show_duration(int64_t ns)
{
    char buf[32];
    if (ns == PC_DURATION_FOREVER)
        snprintf(buf, sizeof(buf), "-1");
    else if (ns % 1000000000 == 0)
        snprintf(buf, sizeof(buf), "%llds", (long long)(ns / 1000000000));
    else
        snprintf(buf, sizeof(buf), "%lldms", (long long)(ns / 1000000));
    return json_string(buf);
}

static json_t *show(const struct pc_setting *s, const struct pc_server_config *cfg)
{
    switch (s->kind) {
    case PC_SETTING_INT:
    case PC_SETTING_SIZE:
        return json_integer((json_int_t)load_uint(field_c(cfg, s), s->width));
    case PC_SETTING_DURATION: {
        int64_t ns;
        memcpy(&ns, field_c(cfg, s), sizeof(ns));
        return show_duration(ns);
    }
    case PC_SETTING_TEXT:
        return json_string(field_c(cfg, s));
    case PC_SETTING_BOOL:
        return json_boolean(*(const bool *)field_c(cfg, s));
    case PC_SETTING_CUSTOM:
        break;
    }
    return s->show(cfg);
}

static size_t index_of(const struct pc_setting *s)
{
    return (size_t)(s - pc_settings);
}

/* ---- the walks ---------------------------------------------------------------------------- */

void pc_settings_defaults(struct pc_server_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->pool.model_params = pc_model_default_params();
    for (size_t i = 0; i < pc_settings_count; i++) {
        const struct pc_setting *s = &pc_settings[i];
        struct pc_error err = {0};
        if (s->dflt != NULL && parse_text(s, s->dflt, false, cfg, &err) != PC_OK)
            abort(); /* a default the table's own parser refuses: a bug in the table */
    }
}

enum pc_err pc_settings_from_env(struct pc_server_config *cfg, struct pc_error *err)
{
    for (size_t i = 0; i < pc_settings_count; i++) {
        const struct pc_setting *s = &pc_settings[i];
        const char *v = s->env ? getenv(s->env) : NULL;
        if (v == NULL || *v == '\0')
            continue;
        struct pc_error inner = {0};
        if (s->list)
            s->clear(cfg);
        if (parse_text(s, v, false, cfg, &inner) != PC_OK)
            return pc_error_set(err, PC_ERR_INVALID, "%s: %s", s->env, inner.msg);
        cfg->source[i] = PC_SOURCE_ENV;
    }
    return PC_OK;
}

enum pc_err pc_settings_from_file_key(struct pc_server_config *cfg, const char *key, json_t *v,
                                      struct pc_error *err)
{
    const struct pc_setting *s = pc_setting_find(key);
    if (s == NULL)
        return pc_error_set(err, PC_ERR_INVALID, "unknown key \"%s\"", key);
    struct pc_error inner = {0};
    enum pc_err rc;
    char num[32];
    if (s->list)
        s->clear(cfg);
    if (s->parse_json != NULL) {
        rc = s->parse_json(v, cfg, &inner);
    } else if (s->kind == PC_SETTING_BOOL) {
        rc = json_is_boolean(v) ? PC_OK
                                : pc_error_set(&inner, PC_ERR_INVALID, "expected true or false");
        if (rc == PC_OK)
            *(bool *)field(cfg, s) = json_is_true(v);
    } else if (json_is_string(v) || json_is_integer(v)) {
        const char *text = json_string_value(v);
        if (text == NULL) {
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
            text = num;
        }
        rc = parse_text(s, text, false, cfg, &inner);
    } else {
        rc = pc_error_set(&inner, PC_ERR_INVALID,
                          s->kind == PC_SETTING_INT ? "expected a whole number"
                                                    : "expected a string");
    }
    if (rc != PC_OK)
        return pc_error_set(err, rc, "\"%s\": %s", key, inner.msg);
    cfg->source[index_of(s)] = PC_SOURCE_FILE;
    return PC_OK;
}

enum pc_err pc_settings_from_flag(struct pc_server_config *cfg, const struct pc_setting *s,
                                  const char *value, bool first, struct pc_error *err)
{
    struct pc_error inner = {0};
    if (s->list && first)
        s->clear(cfg);
    if (parse_text(s, value ? value : s->switch_value, true, cfg, &inner) != PC_OK)
        return pc_error_set(err, PC_ERR_INVALID, "--%s: %s", s->flag, inner.msg);
    cfg->source[index_of(s)] = PC_SOURCE_FLAG;
    return PC_OK;
}

void pc_settings_finish(struct pc_server_config *cfg)
{
    for (size_t i = 0; i < cfg->n_preload; i++) {
        struct pc_preload_spec *spec = &cfg->preload[i];
        if (!spec->named)
            continue;
        spec->max_retries = cfg->preload_retries;
        spec->retry_delay_ms = cfg->preload_retry_delay_ms;
        spec->keep_warm = cfg->keep_warm;
    }
    if (cfg->max_parallel_preloads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->max_parallel_preloads = cores > 0 ? (size_t)cores : 1;
    }
}

json_t *pc_settings_to_json(const struct pc_server_config *cfg)
{
    json_t *o = json_object(), *sources = json_object();
    for (size_t i = 0; i < pc_settings_count; i++) {
        json_object_set_new(o, pc_settings[i].key, show(&pc_settings[i], cfg));
        json_object_set_new(sources, pc_settings[i].key, json_string(source_names[cfg->source[i]]));
    }
    json_object_set_new(o, "sources", sources);
    json_object_set_new(o, "config_file",
                        cfg->config_file[0] ? json_string(cfg->config_file) : json_null());
    return o;
}

/* "PRECHARGE_X, file: x, default: d", the default on a line of its own when the line would
 * pass 100 columns. */
static void print_where(FILE *f, const struct pc_setting *s)
{
    const char *dflt = s->dflt && s->dflt[0] ? s->dflt : "none";
    size_t width = 24 + (s->env ? strlen(s->env) + 2 : 0) + strlen("file: , default: ") +
                   strlen(s->key) + strlen(dflt);
    fprintf(f, "%*s", 24, "");
    if (s->env)
        fprintf(f, "%s, ", s->env);
    if (width > 100)
        fprintf(f, "file: %s,\n%*sdefault: %s\n", s->key, 24, "", dflt);
    else
        fprintf(f, "file: %s, default: %s\n", s->key, dflt);
}

void pc_settings_print_help(FILE *f)
{
    for (size_t i = 0; i < pc_settings_count; i++) {
        const struct pc_setting *s = &pc_settings[i];
        if (s->flag == NULL)
            continue;
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", s->flag, s->arg ? " " : "", s->arg ? s->arg : "");
        if (strlen(left) > 20)
            fprintf(f, "  %s\n%*s%s\n", left, 24, "", s->help);
        else
            fprintf(f, "  %-21s %s\n", left, s->help);
        print_where(f, s);
    }
    fprintf(f, "settings without a flag (environment, or the config file's key):\n");
    for (size_t i = 0; i < pc_settings_count; i++) {
        const struct pc_setting *s = &pc_settings[i];
        if (s->flag != NULL)
            continue;
        fprintf(f, "  %s\n%*s%s\n", s->env ? s->env : s->key, 24, "", s->help);
        print_where(f, s);
    }
}
