/* server.c - the daemon's life cycle: start its parts in order, hook them together, stop them. */
#include "serverInt.h"

#include "chatreq.h"

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
#include "../store/manifest.h"
#include "../store/store.h"
#include "../provider/ollama.h"
#include "guard.h"
#include "infer.h"
#include "store_api.h"
#include "pool_api.h"
#include "settings.h"
#include "ui.h"

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
    pc_responses_routes,
    pc_metrics_routes,
    pc_ui_routes,
    pc_fleet_routes,
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

static void drop_all(struct pc_slot *s, void *arg)
{
    (void)arg;
    pc_slot_drop_all(s);
}

/* The pool's unloads: the model's live sequences go down to the RAM tier (live -> RAM), and
 * ModelEvicted goes out with why (evicted, expired, unloaded). */
static void on_model_unload(void *user, const char *name, struct pc_model *m, const char *why)
{
    struct pc_server *s = user;
    pc_server_metrics_unloaded(&s->metrics, name, why);
    pc_preloader_on_unload(s->preloader, name, why); /* its status first: then the event */
    pc_model_call(m, drop_all, NULL);
    char id[37];
    pc_uuid(id);
    pc_events_publish(s->events, PC_EV_MODEL_EVICTED, name, id, json_pack("{s:s}", "reason", why));
}

/* What follows every load, whoever asked for it (a request, a preload, a precharge, the
 * lifecycle API), before the model is shared: its identity and its evictions go to the snapshot
 * store, its load to the metrics, and ModelLoaded to the event stream. */
static void on_model_load(void *user, const char *name, struct pc_model *m)
{
    struct pc_server *s = user;
    struct pc_error err = {0};
    if (pc_snapstore_attach(s->snapshots, m, &err) != PC_OK)
        pc_log_warn("serve", "%s: its snapshots are not kept: %s", name, err.msg);
    else
        pc_server_snapshare_model(s, name, m);
    pc_server_metrics_loaded(&s->metrics, name, m);
    pc_preloader_on_load(s->preloader, name);
    char id[37];
    pc_uuid(id);
    pc_events_publish(
        s->events, PC_EV_MODEL_LOADED, name, id,
        json_pack("{s:I}", "load_time_ms", (json_int_t)(pc_model_info(m)->load_ns / 1000000)));
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
    /* Once: the Host check of a loopback daemon (guard.c) asks it on every request. */
    s->cfg.listen_loopback = pc_guard_listens_on_loopback(cfg->host, NULL, 0);
    pc_settings_finish(&s->cfg);
    rc = pc_server_metrics_init(&s->metrics, err);
    if (rc != PC_OK) {
        free(s);
        return rc;
    }
    if ((rc = pc_file_mkdirs(cfg->models_dir, err)) != PC_OK)
        goto fail;
    pc_manifest_sweep(cfg->models_dir);
    if ((rc = resolve_model_dirs(&s->cfg, err)) != PC_OK)
        goto fail;
    const char *dirs[PC_SERVER_MAX_MODEL_DIRS];
    for (size_t i = 0; i < s->cfg.n_model_dirs; i++)
        dirs[i] = s->cfg.model_dirs[i];
    pc_store_allow_dirs(dirs, s->cfg.n_model_dirs); /* store entries may link into them */
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
    if ((rc = pc_server_snapshare_start(s, err)) != PC_OK)
        goto fail;
    struct pc_precharger_config pcfg = {
        .models_dir = cfg->models_dir,
        .pool = s->pool,
        .snapshots = s->snapshots,
        .events = s->events,
        .debounce_ns = cfg->debounce_ns,
        .workers = 2,
        .remote = &s->remote_precharge,
        .max_prompt_tokens = cfg->max_prompt_tokens,
        .render = pc_chatreq_prefix_tokens,
    };
    pc_server_remote_precharge(s, &s->remote_precharge);
    rc = pc_precharger_start(&pcfg, &s->precharger, err);
    if (rc != PC_OK)
        goto fail;
    discover(s);
    rc = pc_storewatch_start(cfg->models_dir, s->events, s->snapshots, &s->storewatch, err);
    if (rc == PC_OK)
        rc = pc_updatecheck_start(s, cfg->update_check_ns, &s->updatecheck, err);
    if (rc != PC_OK)
        goto fail;
    /* Its first poll runs now (2 s at most), so that preloads and requests find its models. */
    rc = pc_server_remote_start(s, err);
    if (rc != PC_OK)
        goto fail;
    struct pc_preloader_config plcfg = {
        .specs = s->cfg.preload, /* with the defaults that pc_settings_finish gave them */
        .n_specs = s->cfg.n_preload,
        .timeout_ms = cfg->preload_timeout_ms,
        .health_interval_ms = cfg->health_interval_ms,
        .retry_max_ms = s->cfg.preload_retry_max_ms,
        .max_parallel = s->cfg.max_parallel_preloads,
    };
    rc = pc_preloader_new(s, &plcfg, &s->preloader, err);
    if (rc != PC_OK)
        goto fail;
    struct pc_http_options hopts = {
        .max_body = cfg->max_body,
        .idle_timeout_s = cfg->connection_timeout_s,
        .max_connections_per_ip = cfg->max_connections_per_ip,
        .admit = pc_guard_admit,
        .decorate = pc_guard_decorate,
        .metrics = s->metrics.reg,
        .refusal_shape = pc_openai_refusal_shape,
    };
    rc = pc_http_start(cfg->host, cfg->port, pc_server_routes, &hopts, s, &s->http, err);
    if (rc == PC_OK && (rc = pc_server_fleet_start(s, err)) != PC_OK)
        pc_http_stop(s->http);
    if (rc != PC_OK)
        goto fail;
    *out = s;
    return PC_OK;
fail:
    pc_preloader_stop(s->preloader);
    pc_updatecheck_stop(s->updatecheck);
    pc_storewatch_stop(s->storewatch);
    pc_ollama_free(s->remote);
    pc_precharger_stop(s->precharger);
    pc_pool_free(s->pool); /* its hooks may still call the preloader */
    pc_preloader_free(s->preloader);
    pc_snapstore_close(s->snapshots);
    pc_server_snapshare_stop(s);
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
    pc_fleet_stop(s->fleet); /* first: it submits precharges and reads the events */
    pc_preloader_stop(s->preloader);
    pc_events_close(s->events); /* event streams end, so that their connections close */
    pc_http_stop(s->http);      /* waits for the connections, and so for their models */
    pc_updatecheck_stop(s->updatecheck);
    pc_storewatch_stop(s->storewatch);
    pc_ollama_free(s->remote);
    pc_precharger_stop(s->precharger);
    pc_pool_free(s->pool); /* its hooks may still call the preloader */
    pc_preloader_free(s->preloader);
    pc_snapstore_close(s->snapshots);
    pc_server_snapshare_stop(s);
    pc_events_free(s->events);
    pc_queue_free(s->queue);
    pc_server_metrics_free(&s->metrics);
    free(s);
}
