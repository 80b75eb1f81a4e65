/* server.c - the daemon's configuration and life cycle, and request-parsing helpers. */
#include "serverInt.h"

#include <errno.h>
#include <stddef.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../base/clock.h"
#include "../base/duration.h"
#include "../base/file.h"
#include "../base/fmt.h"
#include "../base/log.h"
#include "../catalog/hw.h"
#include "../store/store.h"
#include "../provider/ollama.h"
#include "guard.h"
#include "infer.h"
#include "store_api.h"
#include "pool_api.h"

#define DEFAULT_PORT 11435
#define DEFAULT_MAX_BODY (8u << 20)
#define DEFAULT_MAX_MODELS 3  /* Ollama's OLLAMA_MAX_LOADED_MODELS on a CPU */
#define DEFAULT_MAX_QUEUE 512 /* Ollama's OLLAMA_MAX_QUEUE */

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

static enum pc_err env_uint(const char *name, long min, long max, long *out, struct pc_error *err)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return PC_OK;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (*end != '\0' || errno != 0 || n < min || n > max)
        return pc_error_set(err, PC_ERR_INVALID,
                            "%s=\"%s\": expected a whole number from %ld to %ld", name, v, min,
                            max);
    *out = n;
    return PC_OK;
}

enum pc_err pc_server_set_home(struct pc_server_config *cfg, const char *home, struct pc_error *err)
{
    if (strlen(home) + 16 >= sizeof(cfg->home))
        return pc_error_set(err, PC_ERR_INVALID, "\"%s\" is too long", home);
    snprintf(cfg->home, sizeof(cfg->home), "%s", home);
    snprintf(cfg->models_dir, sizeof(cfg->models_dir), "%s/models", home);
    return PC_OK;
}

enum pc_err pc_server_config_from_env(struct pc_server_config *cfg, struct pc_error *err)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->host, sizeof(cfg->host), "127.0.0.1");
    cfg->port = DEFAULT_PORT;
    cfg->max_body = DEFAULT_MAX_BODY;
    cfg->max_queue = DEFAULT_MAX_QUEUE;
    cfg->pool.max_models = DEFAULT_MAX_MODELS;
    cfg->pool.policy = PC_POOL_LRU;
    cfg->budget_mode = PC_BUDGET_AUTO;
    cfg->pool.default_keep_alive_ns = 5ll * 60 * 1000000000;
    cfg->pool.model_params = pc_model_default_params();

    struct pc_error inner = {0};
    const char *v = getenv("PRECHARGE_HOST");
    if (v != NULL && *v != '\0' && pc_server_parse_hostport(v, cfg, &inner) != PC_OK)
        return pc_error_set(err, PC_ERR_INVALID, "PRECHARGE_HOST: %s", inner.msg);

    const char *home = getenv("PRECHARGE_HOME");
    const char *user_home = getenv("HOME");
    char dflt[1024];
    if (home == NULL || *home == '\0') {
        snprintf(dflt, sizeof(dflt), "%.1000s/.precharge", user_home ? user_home : ".");
        home = dflt;
    }
    if (pc_server_set_home(cfg, home, &inner) != PC_OK)
        return pc_error_set(err, PC_ERR_INVALID, "PRECHARGE_HOME: %s", inner.msg);
    cfg->snapshot_ram = 1ull << 30;
    cfg->snapshot_disk = 8ull << 30;
    cfg->debounce_ns = 250ll * 1000000;
    static const struct {
        const char *name;
        size_t offset;
    } sizes[] = {
        {"PRECHARGE_SNAPSHOT_RAM", offsetof(struct pc_server_config, snapshot_ram)},
        {"PRECHARGE_SNAPSHOT_DISK", offsetof(struct pc_server_config, snapshot_disk)},
    };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        v = getenv(sizes[i].name);
        if (v != NULL && *v != '\0' &&
            pc_parse_bytes(v, (uint64_t *)((char *)cfg + sizes[i].offset)) != 0)
            return pc_error_set(err, PC_ERR_INVALID, "%s=\"%s\": expected a size such as 2G",
                                sizes[i].name, v);
    }
    v = getenv("PRECHARGE_DEBOUNCE");
    if (v != NULL && *v != '\0' && pc_duration_parse(v, &cfg->debounce_ns, &inner) != PC_OK)
        return pc_error_set(err, PC_ERR_INVALID, "PRECHARGE_DEBOUNCE: %s", inner.msg);

    v = getenv("PRECHARGE_KEEP_ALIVE");
    if (v != NULL && *v != '\0' &&
        pc_duration_parse(v, &cfg->pool.default_keep_alive_ns, &inner) != PC_OK)
        return pc_error_set(err, PC_ERR_INVALID, "PRECHARGE_KEEP_ALIVE: %s", inner.msg);

    long num = (long)cfg->pool.max_models;
    if (env_uint("PRECHARGE_MAX_LOADED_MODELS", 1, 64, &num, err) != PC_OK)
        return PC_ERR_INVALID;
    cfg->pool.max_models = (size_t)num;
    num = cfg->pool.model_params.n_ctx;
    if (env_uint("PRECHARGE_CONTEXT_LENGTH", 0, 1 << 22, &num, err) != PC_OK)
        return PC_ERR_INVALID;
    cfg->pool.model_params.n_ctx = (uint32_t)num;
    num = cfg->pool.model_params.n_threads;
    if (env_uint("PRECHARGE_THREADS", 0, 1024, &num, err) != PC_OK)
        return PC_ERR_INVALID;
    cfg->pool.model_params.n_threads = (int32_t)num;
    num = (long)cfg->max_queue;
    if (env_uint("PRECHARGE_MAX_QUEUE", 0, PC_SERVER_MAX_QUEUE, &num, err) != PC_OK)
        return PC_ERR_INVALID;
    cfg->max_queue = (size_t)num;

    v = getenv("PRECHARGE_MEMORY_BUDGET");
    if (v != NULL && *v != '\0' && pc_server_parse_budget(v, cfg, &inner) != PC_OK)
        return pc_error_set(err, PC_ERR_INVALID, "PRECHARGE_MEMORY_BUDGET: %s", inner.msg);
    v = getenv("PRECHARGE_EVICTION");
    if (v != NULL && *v != '\0' && !pc_pool_policy_parse(v, &cfg->pool.policy))
        return pc_error_set(err, PC_ERR_INVALID,
                            "PRECHARGE_EVICTION=\"%s\": expected lru, lfu or fifo", v);
    v = getenv("PRECHARGE_MODEL_DIRS");
    if (v != NULL && *v != '\0' && pc_server_add_model_dirs(v, cfg, &inner) != PC_OK)
        return pc_error_set(err, PC_ERR_INVALID, "PRECHARGE_MODEL_DIRS: %s", inner.msg);
    if (pc_server_config_env_safety(cfg, err) != PC_OK)
        return PC_ERR_INVALID;
    return pc_server_config_env_preload(cfg, err);
}

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

/* Turn the budget setting into bytes, now that the daemon starts. */
static void resolve_budget(struct pc_server_config *cfg)
{
    char a[32], b[32], c[32];
    if (cfg->budget_mode == PC_BUDGET_FIXED) {
        if (cfg->pool.budget_bytes == 0)
            pc_log_info("pool", "no memory budget: at most %zu models", cfg->pool.max_models);
        else
            pc_log_info("pool", "memory budget %s (configured)",
                        pc_fmt_bytes(cfg->pool.budget_bytes, a, sizeof(a)));
        return;
    }
    struct pc_hw hw;
    struct pc_error err = {0};
    if (pc_hw_probe("", &hw, &err) != PC_OK) {
        pc_log_warn("pool", "no memory budget: %s", err.msg);
        cfg->pool.budget_bytes = 0;
        return;
    }
    if (cfg->budget_mode == PC_BUDGET_PERCENT) {
        cfg->pool.budget_bytes = (uint64_t)((double)hw.ram_available * cfg->budget_percent / 100);
        pc_log_info("pool", "memory budget %s (%g%% of %s available)",
                    pc_fmt_bytes(cfg->pool.budget_bytes, a, sizeof(a)), cfg->budget_percent,
                    pc_fmt_bytes(hw.ram_available, b, sizeof(b)));
        return;
    }
    uint64_t headroom = 0;
    cfg->pool.budget_bytes = pc_pool_default_budget(&hw, &headroom);
    pc_log_info("pool", "memory budget %s (%s available%s, less %s headroom)",
                pc_fmt_bytes(cfg->pool.budget_bytes, a, sizeof(a)),
                pc_fmt_bytes(hw.ram_available, b, sizeof(b)),
                hw.n_gpus ? " with the GPUs' free memory" : "",
                pc_fmt_bytes(headroom, c, sizeof(c)));
}

/* Make the allow-list absolute and real, so that a path is judged after its links resolve. */
static enum pc_err resolve_model_dirs(struct pc_server_config *cfg, struct pc_error *err)
{
    for (size_t i = 0; i < cfg->n_model_dirs; i++) {
        char real[PATH_MAX];
        if (realpath(cfg->model_dirs[i], real) == NULL)
            return pc_error_set(err, PC_ERR_INVALID, "model directory \"%s\": %s",
                                cfg->model_dirs[i], strerror(errno));
        size_t n = strlen(real);
        if (n >= sizeof(cfg->model_dirs[i]))
            return pc_error_set(err, PC_ERR_INVALID, "model directory \"%s\" is too long", real);
        memcpy(cfg->model_dirs[i], real, n + 1);
    }
    return PC_OK;
}

/* Every API family's routes. */
const struct pc_http_route *const pc_server_routes[] = {
    pc_ollama_routes,
    pc_ollama_model_routes,
    pc_precharge_routes,
    pc_pool_routes, /* before the OpenAI table: /v1/models/stats is not a model's id */
    pc_preload_routes,
    pc_store_routes,
    pc_remote_routes,
    pc_embed_routes,
    pc_openai_routes,
    pc_metrics_routes,
    NULL,
};

/* ModelsDiscovered: what the store holds at start. */
static void discover(struct pc_server *s)
{
    struct pc_store_entry *list = NULL;
    size_t n = 0;
    if (pc_store_list(s->cfg.models_dir, &list, &n, NULL) != PC_OK)
        return;
    json_t *names = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(names, json_string(list[i].name));
    free(list);
    char id[37];
    pc_uuid(id);
    pc_events_publish(s->events, PC_EV_MODELS_DISCOVERED, NULL, id,
                      json_pack("{s:o, s:s}", "models", names, "category", "local"));
}

/* The pool's unloads: the model's live sequences go down to the RAM tier (live -> RAM), and
 * ModelEvicted goes out with why (evicted, expired, unloaded). */
static void on_model_unload(void *user, const char *name, struct pc_model *m, const char *why)
{
    struct pc_server *s = user;
    struct pc_slot *slot = NULL;
    pc_server_metrics_unloaded(&s->metrics, name, why);
    pc_snapstore_attach(s->snapshots, m);
    pc_slot_acquire(m, PC_PRIO_LOW, &slot);
    pc_slot_drop_all(slot);
    pc_slot_release(slot);
    char id[37];
    pc_uuid(id);
    pc_events_publish(s->events, PC_EV_MODEL_EVICTED, name, id, json_pack("{s:s}", "reason", why));
}

static void on_model_load(void *user, const char *name, struct pc_model *m)
{
    struct pc_server *s = user;
    pc_server_metrics_loaded(&s->metrics, name, m);
}

enum pc_err pc_server_start(const struct pc_server_config *cfg, struct pc_server **out,
                            struct pc_error *err)
{
    *out = NULL;
    enum pc_err rc = pc_server_config_check_exposure(cfg, err);
    if (rc != PC_OK)
        return rc;
    struct pc_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "server: out of memory");
    s->cfg = *cfg;
    rc = pc_server_metrics_init(&s->metrics, err);
    if (rc != PC_OK) {
        free(s);
        return rc;
    }
    if ((rc = pc_file_mkdirs(cfg->models_dir, err)) != PC_OK)
        goto fail;
    if ((rc = resolve_model_dirs(&s->cfg, err)) != PC_OK)
        goto fail;
    resolve_budget(&s->cfg);
    /* The snapshots' RAM tier lives in the same memory: when the pool's budget is worked out
     * from the machine, the tier's budget comes out of it. A configured budget is the models'. */
    if (s->cfg.pool.budget_bytes > 0 && s->cfg.budget_mode != PC_BUDGET_FIXED) {
        uint64_t quarter = s->cfg.pool.budget_bytes / 4;
        if (s->cfg.snapshot_ram > quarter)
            s->cfg.snapshot_ram = quarter;
        s->cfg.pool.budget_bytes -= s->cfg.snapshot_ram;
    }
    s->cfg.pool.on_unload = on_model_unload;
    s->cfg.pool.on_unload_user = s;
    s->cfg.pool.on_load = on_model_load;
    s->cfg.pool.on_load_user = s;
    s->pool = pc_pool_new(&s->cfg.pool);
    s->events = pc_events_new(1024);
    s->queue = pc_queue_new(cfg->max_queue);
    if (s->pool == NULL || s->events == NULL || s->queue == NULL) {
        rc = pc_error_set(err, PC_ERR_NOMEM, "server: cannot start the model pool");
        goto fail;
    }
    char snapdir[1100];
    snprintf(snapdir, sizeof(snapdir), "%s/snapshots", cfg->home);
    rc = pc_snapstore_open(snapdir, s->cfg.snapshot_ram, cfg->snapshot_disk, &s->snapshots, err);
    if (rc != PC_OK)
        goto fail;
    struct pc_precharger_config pcfg = {
        .models_dir = cfg->models_dir,
        .pool = s->pool,
        .snapshots = s->snapshots,
        .events = s->events,
        .debounce_ns = cfg->debounce_ns,
        .workers = 2,
        .remote = &s->remote_precharge,
    };
    pc_server_remote_precharge(s, &s->remote_precharge);
    rc = pc_precharger_start(&pcfg, &s->precharger, err);
    if (rc != PC_OK)
        goto fail;
    discover(s);
    /* Its first poll runs now (2 s at most), so that preloads and requests find its models. */
    rc = pc_server_remote_start(s, err);
    if (rc != PC_OK)
        goto fail;
    struct pc_preloader_config plcfg = {
        .specs = cfg->preload,
        .n_specs = cfg->n_preload,
        .timeout_ms = cfg->preload_timeout_ms,
        .health_interval_ms = cfg->health_interval_ms,
    };
    rc = pc_preloader_new(s, &plcfg, &s->preloader, err);
    if (rc != PC_OK)
        goto fail;
    struct pc_http_options hopts = {
        .max_body = cfg->max_body,
        .idle_timeout_s = cfg->connection_timeout_s,
        .admit = pc_guard_admit,
        .decorate = pc_guard_decorate,
        .metrics = s->metrics.reg,
    };
    rc = pc_http_start(cfg->host, cfg->port, pc_server_routes, &hopts, s, &s->http, err);
    if (rc != PC_OK)
        goto fail;
    *out = s;
    return PC_OK;
fail:
    pc_preloader_stop(s->preloader);
    pc_ollama_free(s->remote);
    pc_precharger_stop(s->precharger);
    pc_pool_free(s->pool);
    pc_snapstore_close(s->snapshots);
    pc_events_free(s->events);
    pc_queue_free(s->queue);
    pc_server_metrics_free(&s->metrics);
    free(s);
    return rc;
}

int pc_server_port(const struct pc_server *s)
{
    return pc_http_port(s->http);
}

enum pc_err pc_server_preload(struct pc_server *s, struct pc_error *err)
{
    return pc_preloader_run(s->preloader, err);
}

void pc_server_stop(struct pc_server *s)
{
    if (s == NULL)
        return;
    pc_preloader_stop(s->preloader);
    pc_events_close(s->events); /* event streams end, so that their connections close */
    pc_http_stop(s->http);      /* waits for the connections, and so for their models */
    pc_ollama_free(s->remote);
    pc_precharger_stop(s->precharger);
    pc_pool_free(s->pool);
    pc_snapstore_close(s->snapshots);
    pc_events_free(s->events);
    pc_queue_free(s->queue);
    pc_server_metrics_free(&s->metrics);
    free(s);
}

json_t *pc_req_parse_object(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    json_error_t je;
    if (req->body_len == 0) {
        pc_http_reply_error(reply, 400, "missing request body: expected a JSON object");
        return NULL;
    }
    json_t *o = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (o == NULL) {
        pc_http_reply_error(reply, 400, "invalid JSON at line %d, column %d: %s", je.line,
                            je.column, je.text);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        pc_http_reply_error(reply, 400, "the request body must be a JSON object");
        return NULL;
    }
    return o;
}

int pc_req_string(json_t *obj, const char *field, const char **out, struct pc_http_reply *reply)
{
    json_t *v = json_object_get(obj, field);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        pc_http_reply_error(reply, 400, "field \"%s\" must be a string", field);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

int pc_req_model_named(json_t *obj, const char *field, const char **out,
                       struct pc_http_reply *reply)
{
    *out = NULL;
    if (pc_req_string(obj, field, out, reply) != 0)
        return -1;
    if (*out == NULL || (*out)[0] == '\0') {
        pc_http_reply_error(reply, 400, "field \"%s\" is required", field);
        return -1;
    }
    return 0;
}

const char *pc_req_model_or_name(json_t *obj, struct pc_http_reply *reply)
{
    const char *model = NULL, *name = NULL;
    if (pc_req_string(obj, "model", &model, reply) != 0 ||
        pc_req_string(obj, "name", &name, reply) != 0)
        return NULL;
    bool old = (model == NULL || model[0] == '\0') && name != NULL && name[0] != '\0';
    return pc_req_model_named(obj, old ? "name" : "model", &model, reply) == 0 ? model : NULL;
}

int pc_req_model(json_t *obj, const char **out, struct pc_http_reply *reply)
{
    return pc_req_model_named(obj, "model", out, reply);
}

int pc_req_bool(json_t *obj, const char *field, bool *out, struct pc_http_reply *reply)
{
    json_t *v = json_object_get(obj, field);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_boolean(v)) {
        pc_http_reply_error(reply, 400, "field \"%s\" must be true or false", field);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

bool pc_append_json(struct pc_buf *out, const char *before, json_t *o, const char *after)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s == NULL)
        return false;
    bool ok = pc_buf_appends(out, before) && pc_buf_appends(out, s) && pc_buf_appends(out, after);
    free(s);
    return ok;
}

void pc_reply_json_value(struct pc_http_reply *r, int status, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s == NULL) {
        pc_http_reply_error(r, 500, "out of memory");
        return;
    }
    pc_http_reply_json(r, status, s);
}

const char *pc_now_rfc3339(char *buf, size_t size)
{
    return pc_clock_rfc3339(pc_clock_wall_ns(), buf, size);
}
