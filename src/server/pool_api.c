/* pool_api.c - the pool's lifecycle endpoints (seed 004's, made real): load, preload, pin and
 * unload a model by id, and the pool's stats. */
#include "pool_api.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../base/clock.h"
#include "../base/file.h"
#include "../base/log.h"
#include "../catalog/catalog.h"
#include "../store/manifest.h"
#include "../store/store.h"
#include "genopts.h"
#include "serverInt.h"

#define MIB (1024.0 * 1024.0)

static void warn_log(void *user, const char *msg)
{
    (void)user;
    pc_log_debug("catalog", "%s", msg);
}

/* The catalog as the daemon sees it: embedded, $PRECHARGE_HOME/catalog.json, the models
 * directory. */
static enum pc_err load_catalog(struct pc_server *srv, struct pc_catalog **out,
                                struct pc_error *err)
{
    char user[PATH_MAX];
    const char *models = srv->cfg.models_dir;
    const char *slash = strrchr(models, '/');
    int len = slash ? (int)(slash - models) : 1;
    snprintf(user, sizeof(user), "%.*s/catalog.json", len, slash ? models : ".");
    struct pc_catalog_opts o = {.models_dir = models, .user_catalog = user};
    return pc_catalog_load(&o, warn_log, NULL, out, err);
}

/* A path from a request: only inside the allow-list, judged after realpath. The same answer
 * for a missing file as for a forbidden one, so that the API tells nothing about files
 * outside the allowed directories. */
static enum pc_err resolve_path(struct pc_server *srv, const char *req_path, char *path,
                                size_t path_size, struct pc_error *err)
{
    const struct pc_server_config *cfg = &srv->cfg;
    if (cfg->n_model_dirs == 0)
        return pc_error_set(err, PC_ERR_INVALID,
                            "field \"path\": models are not loaded by path unless the daemon is "
                            "started with --model-dir DIR (PRECHARGE_MODEL_DIRS); name a model "
                            "of the catalog or the store instead");
    char real[PATH_MAX];
    struct stat st;
    if (realpath(req_path, real) != NULL && stat(real, &st) == 0 && S_ISREG(st.st_mode)) {
        for (size_t i = 0; i < cfg->n_model_dirs; i++) {
            if (pc_file_is_inside(real, cfg->model_dirs[i])) {
                if ((size_t)snprintf(path, path_size, "%s", real) >= path_size)
                    break;
                return PC_OK;
            }
        }
    }
    return pc_error_set(err, PC_ERR_BAD_PATH,
                        "field \"path\": \"%s\" is not a model file inside the allowed model "
                        "directories",
                        req_path);
}

enum pc_err pc_pool_api_resolve(struct pc_server *srv, const char *id, const char *req_path,
                                char *name, size_t name_size, char *path, size_t path_size,
                                struct pc_error *err)
{
    enum pc_err rc = pc_store_name(id, name, name_size, err);
    if (rc != PC_OK)
        return rc;
    if (req_path != NULL)
        return resolve_path(srv, req_path, path, path_size, err);
    struct pc_error store_err = {0};
    rc = pc_store_path(srv->cfg.models_dir, name, path, path_size, &store_err);
    if (rc != PC_ERR_NOT_FOUND) {
        if (rc != PC_OK && err)
            *err = store_err;
        return rc;
    }

    struct pc_catalog *c = NULL;
    if (load_catalog(srv, &c, err) != PC_OK) {
        if (err)
            *err = store_err;
        return PC_ERR_NOT_FOUND;
    }
    const struct pc_catalog_entry *e = pc_catalog_find(c, id, err);
    if (e == NULL) {
        rc = PC_ERR_NOT_FOUND;
    } else if ((size_t)snprintf(name, name_size, "%s", e->id) >= name_size) {
        rc = pc_error_set(err, PC_ERR_INVALID, "model id \"%s\" is too long", e->id);
    } else if (e->path[0] != '\0') {
        rc = (size_t)snprintf(path, path_size, "%s", e->path) < path_size
                 ? PC_OK
                 : pc_error_set(err, PC_ERR_INVALID, "model path \"%s\" is too long", e->path);
    } else if (pc_store_path(srv->cfg.models_dir, e->id, path, path_size, NULL) == PC_OK) {
        rc = PC_OK;
    } else {
        rc = pc_error_set(err, PC_ERR_NOT_FOUND,
                          "model \"%s\" is in the catalog but not in the store: pull it first",
                          e->id);
    }
    pc_catalog_free(c);
    return rc;
}

/* ---- request bodies ----------------------------------------------------------------------- */

struct body {
    json_t *json; /* NULL when the request had no body */
    const char *path;
    int64_t keep_alive_ns; /* -1: not given */
    int pin;               /* "pinned": 1 true, 0 false, -1 not given */
};

/* An optional JSON object: path (or seed 004's model_path), keep_alive, pinned. Returns -1
 * with a 400 in reply when a field is wrong. */
static int parse_body(const struct pc_http_req *req, struct body *b, struct pc_http_reply *reply)
{
    *b = (struct body){.keep_alive_ns = -1, .pin = -1};
    if (req->body_len == 0)
        return 0;
    if ((b->json = pc_req_parse_object(req, reply)) == NULL)
        return -1;
    static const char *const fields[] = {"path", "model_path", "keep_alive", "pinned"};
    if (pc_req_known_fields(b->json, fields, sizeof(fields) / sizeof(fields[0]), req->path,
                            reply) != 0)
        return -1;
    bool pinned = false;
    if (pc_req_string(b->json, "model_path", &b->path, reply) != 0 ||
        pc_req_string(b->json, "path", &b->path, reply) != 0 ||
        pc_req_bool(b->json, "pinned", &pinned, reply) != 0 ||
        pc_genopts_keep_alive(b->json, &b->keep_alive_ns, reply) != 0)
        return -1;
    json_t *v = json_object_get(b->json, "pinned");
    if (v != NULL && !json_is_null(v))
        b->pin = pinned;
    return 0;
}

static void reply_ok(struct pc_http_reply *reply, const char *name, json_t *extra, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

static void reply_ok(struct pc_http_reply *reply, const char *name, json_t *extra, const char *fmt,
                     ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:b, s:s, s:s}", "success", 1, "message", msg, "model_id", name);
    if (o != NULL && extra != NULL)
        json_object_update(o, extra);
    json_decref(extra);
    pc_reply_json_value(reply, 200, o);
}

/* ---- handlers ----------------------------------------------------------------------------- */

/* The ollama provider's model {id}: its server loads it with keep_alive ("0" unloads), through
 * /api/generate. True when {id} was its, with reply filled. */
static bool remote(const struct pc_http_req *req, struct pc_http_reply *reply,
                   const char *keep_alive, const char *done)
{
    char canon[256];
    enum pc_err rc = PC_OK;
    struct pc_error err = {0};
    if (!pc_server_remote_keep(req->srv, req->params[0], keep_alive, canon, &rc, &err))
        return false;
    if (rc != PC_OK)
        pc_http_reply_pc_error(reply, &err);
    else
        reply_ok(reply, canon,
                 json_pack("{s:s, s:s*}", "provider", "ollama", "keep_alive", keep_alive),
                 "%s %s on ollama at %s", done, canon, req->srv->cfg.ollama_url);
    return true;
}

/* The request's keep_alive as Ollama takes it; NULL (the server's default) when not given. A
 * pinned model stays for good ("-1"): its server has no pinning. */
static const char *remote_keep_alive(const struct body *b, char buf[32])
{
    if (b->pin == 1)
        return "-1";
    return b->keep_alive_ns < 0 ? NULL : pc_server_keep_alive_text(b->keep_alive_ns, buf);
}

/* Load (a use) or preload (not a use) the model {id}, and reply once it is resident; with
 * "pinned", pinned (never evicted or expired) or unpinned once it is, as /pin does. */
static void load(const struct pc_http_req *req, struct pc_http_reply *reply, bool preload)
{
    struct body b;
    char name[256], path[PATH_MAX];
    struct pc_error err = {0};
    char keep[32];
    if (parse_body(req, &b, reply) != 0 ||
        (b.path == NULL &&
         remote(req, reply, remote_keep_alive(&b, keep), preload ? "preloaded" : "loaded")))
        goto done;
    if (pc_pool_api_resolve(req->srv, req->params[0], b.path, name, sizeof(name), path,
                            sizeof(path), &err) != PC_OK) {
        pc_http_reply_pc_error(reply, &err);
        goto done;
    }

    struct pc_pool_acquire_params pr = pc_pool_acquire_default_params();
    pr.keep_alive_ns = b.keep_alive_ns;
    pr.preload = preload;
    pr.pin = b.pin;
    struct pc_pool_entry *e = NULL;
    bool loaded = false;
    int64_t t0 = pc_clock_mono_ns();
    if (pc_pool_acquire_with(req->srv->pool, name, path, &pr, &e, &loaded, &err) != PC_OK) {
        pc_http_reply_pc_error(reply, &err);
        goto done;
    }
    int64_t took = pc_clock_mono_ns() - t0;
    struct pc_model *m = pc_pool_entry_model(e);
    uint64_t bytes = pc_model_memory(m);
    pc_pool_release(req->srv->pool, e);
    /* A load is a use (a preload is not): the manifest's last_used and use_count, which the
     * cache's LRU pruning goes by. A model loaded by path has no entry to touch. */
    if (!preload)
        pc_manifest_touch(req->srv->cfg.models_dir, name, NULL);
    json_t *extra =
        json_pack("{s:b, s:b, s:I, s:I}", "loaded", loaded, "preload", preload, "load_duration",
                  (json_int_t)(loaded ? took : 0), "size", (json_int_t)bytes);
    if (extra != NULL && b.pin >= 0)
        json_object_set_new(extra, "pinned", json_boolean(b.pin));
    if (loaded)
        reply_ok(reply, name, extra, "%s %s in %.0f ms (%.1f MiB)",
                 preload ? "preloaded" : "loaded", name, (double)took / 1e6, (double)bytes / MIB);
    else
        reply_ok(reply, name, extra, "%s was already loaded", name);
done:
    json_decref(b.json);
}

static void handle_load(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    load(req, reply, false);
}

static void handle_preload(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    load(req, reply, true);
}

/* The name under which the pool may hold {id}: the store's spelling, or the catalog id of an
 * alias when the pool does not know the store's. */
static enum pc_err run_by_name(struct pc_server *srv, const char *id,
                               enum pc_err (*op)(struct pc_server *, const char *, void *),
                               void *arg, char *name, size_t size, struct pc_error *err)
{
    enum pc_err rc = pc_store_name(id, name, size, err);
    if (rc != PC_OK)
        return rc;
    struct pc_error first = {0};
    rc = op(srv, name, arg);
    if (rc != PC_ERR_NOT_FOUND)
        return rc;
    pc_error_set(&first, PC_ERR_NOT_FOUND, "model \"%s\" is not loaded", name);
    struct pc_catalog *c = NULL;
    if (load_catalog(srv, &c, NULL) == PC_OK) {
        const struct pc_catalog_entry *e = pc_catalog_find(c, id, NULL);
        if (e != NULL && strcmp(e->id, name) != 0) {
            snprintf(name, size, "%s", e->id);
            rc = op(srv, name, arg);
        }
        pc_catalog_free(c);
    }
    if (rc == PC_ERR_NOT_FOUND && err)
        *err = first;
    return rc;
}

static enum pc_err do_unload(struct pc_server *srv, const char *name, void *arg)
{
    return pc_pool_unload_ex(srv->pool, name, arg, NULL);
}

static void handle_unload(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    char name[256];
    int in_use = 0;
    struct pc_error err = {0};
    if (remote(req, reply, "0", "unloaded"))
        return;
    if (run_by_name(req->srv, req->params[0], do_unload, &in_use, name, sizeof(name), &err) !=
        PC_OK) {
        pc_http_reply_pc_error(reply, &err);
        return;
    }
    json_t *extra = json_pack("{s:b, s:i}", "pending", in_use > 0, "in_use", in_use);
    if (in_use > 0)
        reply_ok(reply, name, extra, "%s will be unloaded when its %d user%s finish%s", name,
                 in_use, in_use == 1 ? "" : "s", in_use == 1 ? "es" : "");
    else
        reply_ok(reply, name, extra, "unloaded %s", name);
}

static enum pc_err do_unpin(struct pc_server *srv, const char *name, void *arg)
{
    (void)arg;
    return pc_pool_pin(srv->pool, name, false, NULL);
}

/* Pin (loading the model first if it is not resident, as a preload) or unpin {id}. */
static void handle_pin(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    struct body b;
    char name[256], path[PATH_MAX];
    struct pc_error err = {0};
    char keep[32];
    if (parse_body(req, &b, reply) != 0 ||
        (b.path == NULL &&
         remote(req, reply, b.pin != 0 ? "-1" : pc_server_remote_default_keep(req->srv, keep),
                b.pin != 0 ? "pinned" : "unpinned")))
        goto done;
    if (b.pin == 0) { /* absent: pin, this route's default */
        if (run_by_name(req->srv, req->params[0], do_unpin, NULL, name, sizeof(name), &err) !=
            PC_OK)
            pc_http_reply_pc_error(reply, &err);
        else
            reply_ok(reply, name, json_pack("{s:b}", "pinned", 0), "unpinned %s", name);
        goto done;
    }
    bool loaded = false;
    struct pc_pool_acquire_params pr = pc_pool_acquire_default_params();
    pr.keep_alive_ns = b.keep_alive_ns;
    pr.preload = true;
    pr.pin = 1;
    struct pc_pool_entry *e = NULL;
    if (pc_pool_api_resolve(req->srv, req->params[0], b.path, name, sizeof(name), path,
                            sizeof(path), &err) != PC_OK ||
        pc_pool_acquire_with(req->srv->pool, name, path, &pr, &e, &loaded, &err) != PC_OK) {
        pc_http_reply_pc_error(reply, &err);
        goto done;
    }
    pc_pool_release(req->srv->pool, e);
    reply_ok(reply, name, json_pack("{s:b, s:b}", "pinned", 1, "loaded", loaded), "pinned %s%s",
             name, loaded ? " (loaded it first)" : "");
done:
    json_decref(b.json);
}

static void handle_stats(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    struct pc_pool_stats st;
    struct pc_pool_status *list = NULL;
    size_t n = pc_pool_list(req->srv->pool, &list);
    pc_pool_stats(req->srv->pool, &st);
    json_t *names = json_array(), *pinned = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(names, json_string(list[i].name));
        if (list[i].pinned)
            json_array_append_new(pinned, json_string(list[i].name));
    }
    free(list);
    json_t *o = json_pack(
        "{s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:b}", "loaded_models", names,
        "total_loaded", (json_int_t)n, "estimated_memory_mb",
        (json_int_t)((st.used_bytes + (1 << 19)) >> 20), "hits", (json_int_t)st.hits, "misses",
        (json_int_t)st.misses, "evictions", (json_int_t)st.evictions, "preloads",
        (json_int_t)st.preloads, "expirations", (json_int_t)st.expirations, "rejections",
        (json_int_t)st.rejections, "hit_rate", st.hit_rate, "pressure", st.pressure);
    json_t *more = json_pack(
        "{s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "pinned_models", pinned, "memory_used_bytes",
        (json_int_t)st.used_bytes, "memory_budget_bytes", (json_int_t)st.budget_bytes, "budget_mb",
        (json_int_t)((st.budget_bytes + (1 << 19)) >> 20), "pinned_bytes",
        (json_int_t)st.pinned_bytes, "charged_bytes", (json_int_t)st.charged_bytes, "max_models",
        (json_int_t)st.max_models, "policy", pc_pool_policy_name(st.policy));
    if (o != NULL && more != NULL)
        json_object_update(o, more);
    json_decref(more);
    pc_reply_json_value(reply, 200, o);
}

/* GET /v1/models/stats comes before the routes with {} in the same place. */
const struct pc_http_route pc_pool_routes[] = {
    {"GET", "/v1/models/stats", handle_stats},         {"POST", "/v1/models/{}/load", handle_load},
    {"POST", "/v1/models/{}/preload", handle_preload}, {"POST", "/v1/models/{}/pin", handle_pin},
    {"DELETE", "/v1/models/{}", handle_unload},        {NULL, NULL, NULL},
};
