/* remote.c - the server's side of the ollama provider: start it, publish its models' comings
 * and goings as events, proxy requests for its models, and GET /api/providers. */
#include "serverInt.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../provider/ollama.h"
#include "../store/store.h"

/* ModelsDiscovered with category "ollama": the events make removed models unavailable. */
static void on_change(void *user, json_t *models, json_t *removed)
{
    struct pc_server *s = user;
    char id[37];
    pc_uuid(id);
    pc_events_publish(s->events, PC_EV_MODELS_DISCOVERED, NULL, id,
                      json_pack("{s:O, s:O, s:s, s:s}", "models", models, "removed", removed,
                                "category", "ollama", "url", s->cfg.ollama_url));
}

enum pc_err pc_server_remote_start(struct pc_server *s, struct pc_error *err)
{
    const char *url = s->cfg.ollama_url;
    if (url[0] == '\0' || strcmp(url, "off") == 0)
        return PC_OK;
    const char *v = getenv("PRECHARGE_OLLAMA_POLL");
    int64_t poll_ms = v && *v ? strtoll(v, NULL, 10) : 10000;
    return pc_ollama_new(url, poll_ms, on_change, s, &s->remote, err);
}

bool pc_server_remote_owns(struct pc_server *s, const char *name, char canon[256])
{
    char path[PATH_MAX];
    if (s->remote == NULL || !pc_ollama_has(s->remote, name, canon))
        return false;
    /* A model that is also in the local store runs here. */
    return pc_store_path(s->cfg.models_dir, name, path, sizeof(path), NULL) != PC_OK;
}

static bool proxy_next(void *ctx, struct pc_buf *out)
{
    return pc_ollama_stream_next(ctx, out);
}

static void proxy_free(void *ctx)
{
    pc_ollama_stream_free(ctx);
}

bool pc_server_remote_proxy(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    struct pc_server *s = req->srv;
    if (s->remote == NULL || req->body_len == 0)
        return false;
    json_t *o = json_loadb(req->body, req->body_len, 0, NULL);
    const char *model = json_string_value(json_object_get(o, "model"));
    char canon[256];
    bool remote = model != NULL && pc_server_remote_owns(s, model, canon);
    json_decref(o);
    if (!remote)
        return false;
    struct pc_ollama_stream *st = NULL;
    struct pc_error err = {0};
    int status = 0;
    const char *ctype = NULL;
    if (pc_ollama_stream_open(s->remote, req->method, req->path, req->body, &st, &status, &ctype,
                              &err) != PC_OK) {
        pc_http_reply_pc_error(reply, &err);
        return true;
    }
    reply->status = status;
    reply->content_type = ctype;
    reply->stream = (struct pc_http_stream){.ctx = st, .next = proxy_next, .free = proxy_free};
    return true;
}

void pc_server_remote_tags(struct pc_server *s, json_t *models)
{
    if (s->remote == NULL)
        return;
    json_t *list = pc_ollama_models(s->remote), *m;
    size_t i;
    json_array_foreach(list, i, m)
    {
        const char *name = json_string_value(json_object_get(m, "name"));
        char canon[256];
        if (!pc_server_remote_owns(s, name, canon))
            continue;
        json_object_set_new(m, "model", json_string(name));
        json_array_append(models, m);
    }
    json_decref(list);
}

static void handle_providers(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    struct pc_server *s = req->srv;
    json_t *o = json_pack("{s:{s:s}}", "local", "models_dir", s->cfg.models_dir);
    if (s->remote != NULL)
        json_object_set_new(o, "ollama",
                            json_pack("{s:s, s:b, s:o}", "url", pc_ollama_url(s->remote),
                                      "available", pc_ollama_available(s->remote), "models",
                                      pc_ollama_models(s->remote)));
    pc_reply_json_value(reply, 200, o);
}

const struct pc_http_route pc_remote_routes[] = {
    {"GET", "/api/providers", handle_providers},
    {NULL, NULL, NULL},
};
