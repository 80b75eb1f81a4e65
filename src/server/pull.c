/* pull.c - the store over the Ollama API: POST /api/pull streams a download's progress as
 * NDJSON, DELETE /api/delete removes a model. */
#include "store_api.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/log.h"
#include "../catalog/catalog.h"
#include "../store/cache.h"
#include "../store/download.h"
#include "../store/store.h"
#include "serverInt.h"

/* Progress lines waiting for the client: bounded, because a line that only moves the counters
 * replaces the one before it. */
#define MAX_PENDING (64u << 10)

/* One streamed pull: the download runs on a thread of its own and queues what it reports; the
 * HTTP layer polls the queue, woken when a line comes, and holds no thread between lines. */
struct pull_job {
    char url[2048];
    char models_dir[1100];
    char id[256];
    char sha256[65];
    struct pc_download_opts opts;
    struct pc_cache_hooks cache_hooks; /* PRECHARGE_CACHE_MAX spares the resident models */
    atomic_bool cancel;                /* set when the client goes away */
    pthread_t thread;

    pthread_mutex_t lock;  /* guards the fields below */
    struct pc_buf pending; /* NDJSON not sent yet */
    size_t last_start;     /* where the last line in pending starts */
    bool last_is_counts;   /* it only moves the counters: the next such line replaces it */
    bool done;
    enum pc_err rc;
    struct pc_error err;
    void (*wake)(void *arg); /* the HTTP layer's waker, until the stream is freed */
    void *wake_arg;
};

/* A model that the pool holds (pinned ones included) is in use: pruning spares it. */
static bool keep_resident(void *user, const char *id)
{
    struct pc_server *srv = user;
    struct pc_pool_status *st = NULL;
    size_t n = pc_pool_list(srv->pool, &st);
    bool found = false;
    for (size_t i = 0; i < n && !found; i++)
        found = strcmp(st[i].name, id) == 0;
    free(st);
    return found;
}

static void catalog_warn(void *user, const char *msg)
{
    (void)user;
    pc_log_warn("catalog", "%s", msg);
}

enum pc_err pc_server_load_catalog(const char *models_dir, struct pc_catalog **out,
                                   struct pc_error *err)
{
    char user[PATH_MAX];
    snprintf(user, sizeof(user), "%s", models_dir);
    char *slash = strrchr(user, '/');
    if (slash != NULL && slash != user)
        snprintf(slash, sizeof(user) - (size_t)(slash - user), "/catalog.json");
    else
        snprintf(user, sizeof(user), "catalog.json");
    struct pc_catalog_opts o = {.models_dir = models_dir, .user_catalog = user};
    return pc_catalog_load(&o, catalog_warn, NULL, out, err);
}

/* The request's "model" (or Ollama's older "name"). NULL after a 400 in reply. */
static const char *model_field(json_t *body, struct pc_http_reply *reply)
{
    const char *model = NULL, *name = NULL;
    if (pc_req_string(body, "model", &model, reply) != 0 ||
        pc_req_string(body, "name", &name, reply) != 0)
        return NULL;
    if (model == NULL || model[0] == '\0')
        model = name;
    if (model == NULL || model[0] == '\0') {
        pc_http_reply_error(reply, 400, "field \"model\" is required");
        return NULL;
    }
    return model;
}

/* ---- the job ----------------------------------------------------------------------------- */

static void job_free(struct pull_job *j)
{
    pthread_mutex_destroy(&j->lock);
    pc_buf_free(&j->pending);
    free(j);
}

/* Queue one line; the caller holds the lock. */
static void queue_line(struct pull_job *j, const char *line, bool counts)
{
    if (counts && j->last_is_counts) {
        j->pending.len = j->last_start; /* newer counters replace the older ones */
        if (j->pending.data != NULL)
            j->pending.data[j->pending.len] = '\0';
    }
    if (j->pending.len > MAX_PENDING && counts)
        return;
    j->last_start = j->pending.len;
    if (pc_buf_appends(&j->pending, line) && pc_buf_append(&j->pending, "\n", 1))
        j->last_is_counts = counts;
    if (j->wake != NULL)
        j->wake(j->wake_arg);
}

static void on_progress(void *user, const struct pc_download_progress *p)
{
    struct pull_job *j = user;
    if (p->phase == PC_DL_DONE)
        return; /* the stream's last line says so */
    char *line = pc_download_progress_json(p, false);
    if (line == NULL)
        return;
    pthread_mutex_lock(&j->lock);
    /* Counters (bytes arriving, or a stored file being hashed) replace each other. */
    queue_line(j, line,
               p->phase == PC_DL_DOWNLOADING || p->phase == PC_DL_WAITING ||
                   (p->phase == PC_DL_VERIFYING && p->completed < p->total));
    pthread_mutex_unlock(&j->lock);
    free(line);
}

static void *pull_main(void *arg)
{
    struct pull_job *j = arg;
    struct pc_error err = {0};
    enum pc_err rc = pc_download(&j->opts, &err);
    if (rc != PC_OK && rc != PC_ERR_CANCELLED)
        pc_log_warn("store", "pull of %s failed: %s", j->id, err.msg);
    else if (rc == PC_OK)
        pc_log_info("store", "pulled %s", j->id);
    pthread_mutex_lock(&j->lock);
    j->rc = rc;
    j->err = err;
    j->done = true;
    if (j->wake != NULL)
        j->wake(j->wake_arg);
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

static enum pc_stream_state pull_poll(void *ctx, struct pc_buf *out)
{
    struct pull_job *j = ctx;
    enum pc_stream_state st = PC_STREAM_WAIT;
    pthread_mutex_lock(&j->lock);
    if (j->pending.len > 0) {
        pc_buf_append(out, j->pending.data, j->pending.len);
        pc_buf_reset(&j->pending);
        j->last_is_counts = false;
        st = PC_STREAM_MORE;
    } else if (j->done) {
        json_t *o = j->rc == PC_OK ? json_pack("{s:s}", "status", "success")
                                   : json_pack("{s:s}", "error", j->err.msg);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (s != NULL) {
            pc_buf_appends(out, s);
            pc_buf_append(out, "\n", 1);
        }
        free(s);
        st = PC_STREAM_END;
    }
    pthread_mutex_unlock(&j->lock);
    return st;
}

static void pull_watch(void *ctx, void (*wake)(void *arg), void *arg)
{
    struct pull_job *j = ctx;
    pthread_mutex_lock(&j->lock);
    j->wake = wake;
    j->wake_arg = arg;
    if (j->pending.len > 0 || j->done)
        wake(arg);
    pthread_mutex_unlock(&j->lock);
}

static void pull_stream_free(void *ctx)
{
    struct pull_job *j = ctx;
    pthread_mutex_lock(&j->lock);
    j->wake = NULL;
    pthread_mutex_unlock(&j->lock);
    atomic_store(&j->cancel, true); /* the client went away, or it is over anyway */
    pthread_join(j->thread, NULL);
    job_free(j);
}

/* ---- handlers ---------------------------------------------------------------------------- */

/* Fill job's url, id and checksum from the catalog. On failure reply says why. */
static int find_source(struct pc_server *srv, const char *name, struct pull_job *j, bool *present,
                       struct pc_http_reply *reply)
{
    struct pc_catalog *c = NULL;
    struct pc_error err = {0};
    *present = false;
    if (pc_server_load_catalog(srv->cfg.models_dir, &c, &err) != PC_OK) {
        pc_http_reply_pc_error(reply, &err);
        return -1;
    }
    int rc = -1;
    const struct pc_catalog_entry *e = pc_catalog_find(c, name, &err);
    char norm[256];
    struct pc_error nerr = {0};
    if (e == NULL) {
        if (pc_store_name(name, norm, sizeof(norm), &nerr) != PC_OK)
            pc_http_reply_pc_error(reply, &nerr); /* 400: it could never be a model */
        else
            pc_http_reply_error(reply, 404, "%s", err.msg);
        goto out;
    }
    snprintf(j->id, sizeof(j->id), "%s", e->id);
    snprintf(j->sha256, sizeof(j->sha256), "%s", e->sha256);
    if (pc_catalog_url(e, j->url, sizeof(j->url), &err) != PC_OK) {
        if (e->path[0] != '\0' && err.code == PC_ERR_NOT_FOUND) {
            *present = true; /* in the store, from no catalog: nothing to fetch */
            rc = 0;
        } else {
            pc_http_reply_pc_error(reply, &err);
        }
        goto out;
    }
    rc = 0;
out:
    pc_catalog_free(c);
    return rc;
}

static void reply_success(struct pc_http_reply *reply)
{
    pc_reply_json_value(reply, 200, json_pack("{s:s}", "status", "success"));
}

static const char *const pull_fields[] = {"model", "name", "stream", "insecure"};
static const char *const delete_fields[] = {"model", "name"};

static void handle_pull(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    json_t *body = pc_req_parse_object(req, reply);
    if (body == NULL)
        return;
    bool stream = true, insecure = false;
    const char *name = model_field(body, reply);
    if (name == NULL ||
        pc_req_known_fields(body, pull_fields, sizeof(pull_fields) / sizeof(pull_fields[0]),
                            "/api/pull", reply) != 0 ||
        pc_req_bool(body, "stream", &stream, reply) != 0 ||
        pc_req_bool(body, "insecure", &insecure, reply) != 0) {
        json_decref(body);
        return;
    }
    /* Ollama's registry switch (deprecated there, and ignored). A model file is code that every
     * client of this daemon runs: no request may turn TLS verification off for it. */
    if (insecure) {
        json_decref(body);
        pc_http_reply_error(reply, 400,
                            "field \"insecure\": downloads always verify TLS (and the catalog's "
                            "sha256); insecure: true is refused");
        return;
    }
    struct pull_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        json_decref(body);
        pc_http_reply_error(reply, 500, "out of memory");
        return;
    }
    pthread_mutex_init(&j->lock, NULL);
    atomic_init(&j->cancel, false);
    bool present;
    struct pc_error err = {0};
    if (find_source(req->srv, name, j, &present, reply) != 0 ||
        pc_download_opts_init(&j->opts, &err) != PC_OK) {
        if (err.code != PC_OK)
            pc_http_reply_pc_error(reply, &err);
        json_decref(body);
        job_free(j);
        return;
    }
    json_decref(body);
    snprintf(j->models_dir, sizeof(j->models_dir), "%s", req->srv->cfg.models_dir);
    j->opts.url = j->url;
    j->opts.models_dir = j->models_dir;
    j->opts.id = j->id;
    j->opts.sha256 = j->sha256;
    j->opts.cancel = &j->cancel;
    j->cache_hooks = (struct pc_cache_hooks){.keep = keep_resident, .user = req->srv};
    j->opts.cache_hooks = &j->cache_hooks;

    if (present || !stream) {
        enum pc_err rc = present ? PC_OK : pc_download(&j->opts, &err);
        job_free(j);
        if (rc == PC_OK)
            reply_success(reply);
        else
            pc_http_reply_pc_error(reply, &err);
        return;
    }
    j->opts.progress = on_progress;
    j->opts.user = j;
    queue_line(j, "{\"status\":\"pulling manifest\"}", false);
    if (pthread_create(&j->thread, NULL, pull_main, j) != 0) {
        job_free(j);
        pc_http_reply_error(reply, 500, "cannot start a thread for the download");
        return;
    }
    reply->status = 200;
    reply->content_type = "application/x-ndjson";
    reply->stream = (struct pc_http_stream){
        .ctx = j, .poll = pull_poll, .watch = pull_watch, .free = pull_stream_free};
}

/* The store name that a request's name means: an alias names the catalog's id, which is the
 * file's name. */
static enum pc_err delete_id(struct pc_server *srv, const char *name, char *norm, char *id,
                             size_t size, struct pc_error *err)
{
    enum pc_err rc = pc_store_name(name, norm, size, err);
    if (rc != PC_OK)
        return rc;
    snprintf(id, size, "%s", norm);
    struct pc_catalog *c = NULL;
    if (pc_server_load_catalog(srv->cfg.models_dir, &c, NULL) == PC_OK) {
        const struct pc_catalog_entry *e = pc_catalog_find(c, name, NULL);
        if (e != NULL && pc_store_name(e->id, id, size, NULL) != PC_OK)
            snprintf(id, size, "%s", norm);
        pc_catalog_free(c);
    }
    return PC_OK;
}

static void handle_delete(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    json_t *body = pc_req_parse_object(req, reply);
    if (body == NULL)
        return;
    struct pc_server *srv = req->srv;
    struct pc_error err = {0};
    char norm[256], id[256];
    const char *name = model_field(body, reply); /* lives as long as body */
    if (name == NULL ||
        pc_req_known_fields(body, delete_fields, sizeof(delete_fields) / sizeof(delete_fields[0]),
                            "/api/delete", reply) != 0)
        goto out;
    if (delete_id(srv, name, norm, id, sizeof(id), &err) != PC_OK) {
        pc_http_reply_pc_error(reply, &err);
        goto out;
    }
    /* Unload first (or, while a request uses it, as soon as it is done); the file goes now:
     * a loaded model keeps its mapping. */
    pc_pool_unload(srv->pool, id, NULL);
    if (strcmp(id, norm) != 0)
        pc_pool_unload(srv->pool, norm, NULL);
    if (pc_cache_remove(srv->cfg.models_dir, id, &err) != PC_OK) {
        if (err.code == PC_ERR_NOT_FOUND)
            pc_http_reply_error(reply, 404, "model '%s' not found", name);
        else
            pc_http_reply_pc_error(reply, &err);
        goto out;
    }
    pc_log_info("store", "deleted %s", id);
    /* Unavailable, and its snapshots gone, before the reply. */
    pc_storewatch_scan(srv->storewatch);
    reply->status = 200;
    reply->content_type = NULL;
    reply->body = NULL;
    reply->body_len = 0;
out:
    json_decref(body);
}

const struct pc_http_route pc_store_routes[] = {
    {"POST", "/api/pull", handle_pull},
    {"DELETE", "/api/delete", handle_delete},
    {NULL, NULL, NULL},
};
