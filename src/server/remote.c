/* remote.c - the server's side of the ollama provider: start it, publish its models' comings
 * and goings as events, run precharges there, answer for its models' states and listings,
 * proxy requests for them, and GET /api/providers. */
#include "serverInt.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../provider/ollama.h"
#include "../store/store.h"

#define PRECHARGE_TIMEOUT_MS (10 * 60 * 1000)

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
    return pc_ollama_new(url, s->cfg.ollama_poll_ms, on_change, s, &s->remote, err);
}

bool pc_server_remote_owns(struct pc_server *s, const char *name, char canon[256])
{
    char path[PATH_MAX];
    if (s->remote == NULL || !pc_ollama_has(s->remote, name, canon))
        return false;
    /* A model that is also in the local store runs here. */
    return pc_store_path(s->cfg.models_dir, name, path, sizeof(path), NULL) != PC_OK;
}

const char *pc_server_keep_alive_text(int64_t ns, char buf[32])
{
    if (ns < 0)
        return "-1";
    snprintf(buf, 32, "%lldms", (long long)(ns / 1000000));
    return buf;
}

const char *pc_server_remote_default_keep(const struct pc_server *s, char buf[32])
{
    return pc_server_keep_alive_text(s->cfg.pool.default_keep_alive_ns, buf);
}

/* ---- precharge ---------------------------------------------------------------------------- */

static bool precharge_owns(void *user, const char *model)
{
    char canon[256];
    return pc_server_remote_owns(user, model, canon);
}

/* The context goes to the server as the prompt, with this daemon's default keep-alive, as a
 * local precharge leaves its model loaded. */
static enum pc_err precharge_prefill(void *user, const char *model, json_t *messages,
                                     const char *prompt, struct pc_precharge_remote_stats *out,
                                     struct pc_error *err)
{
    struct pc_server *s = user;
    char canon[256], keep[32];
    if (!pc_server_remote_owns(s, model, canon))
        return pc_error_set(err, PC_ERR_NOT_FOUND, "model \"%s\" is no longer on ollama at %s",
                            model, s->cfg.ollama_url);
    struct pc_ollama_gen_stats st = {0};
    enum pc_err rc =
        pc_ollama_prefill(s->remote, canon, messages, prompt,
                          pc_server_remote_default_keep(s, keep), PRECHARGE_TIMEOUT_MS, &st, err);
    out->context_tokens = (int32_t)st.prompt_eval_count;
    out->load_ns = st.load_duration;
    out->prefill_ns = st.prompt_eval_duration;
    return rc;
}

void pc_server_remote_precharge(struct pc_server *s, struct pc_precharge_provider *out)
{
    *out = (struct pc_precharge_provider){
        .category = "ollama", .user = s, .owns = precharge_owns, .prefill = precharge_prefill};
}

/* ---- states and listings ------------------------------------------------------------------ */

bool pc_server_remote_state(struct pc_server *s, const char *name, enum pc_model_state *state)
{
    char canon[256];
    if (!pc_server_remote_owns(s, name, canon))
        return false;
    struct pc_ollama_model_status st;
    pc_ollama_status(s->remote, canon, &st);
    /* The preloader's events say what the server cannot: a warm-up under way, or one that
     * failed (the server answers, and has not loaded it). */
    char norm[256];
    enum pc_model_state ev = PC_STATE_UNAVAILABLE;
    if (pc_store_name(name, norm, sizeof(norm), NULL) == PC_OK)
        ev = pc_events_state(s->events, norm, NULL, NULL);
    if (!st.available || !st.known)
        *state = PC_STATE_UNAVAILABLE;
    else if (st.in_flight > 0)
        *state = PC_STATE_ACTIVE;
    else if (st.loaded)
        *state = PC_STATE_PRECHARGED;
    else if (ev == PC_STATE_LOADING || ev == PC_STATE_FAILED)
        *state = ev;
    else
        *state = PC_STATE_PRETRAINED;
    return true;
}

void pc_server_remote_ps(struct pc_server *s, json_t *models)
{
    if (s->remote == NULL)
        return;
    json_t *list = pc_ollama_ps(s->remote);
    json_array_extend(models, list);
    json_decref(list);
}

/* The remote models that run there (the local store has none of the same name). */
static json_t *owned_models(struct pc_server *s)
{
    json_t *out = json_array();
    if (s->remote == NULL)
        return out;
    json_t *list = pc_ollama_models(s->remote), *m;
    size_t i;
    json_array_foreach(list, i, m)
    {
        const char *name = json_string_value(json_object_get(m, "name"));
        char canon[256];
        if (name != NULL && pc_server_remote_owns(s, name, canon))
            json_array_append(out, m);
    }
    json_decref(list);
    return out;
}

void pc_server_remote_tags(struct pc_server *s, json_t *models)
{
    json_t *list = owned_models(s), *m;
    size_t i;
    json_array_foreach(list, i, m) if (json_object_get(m, "model") == NULL)
        json_object_set(m, "model", json_object_get(m, "name"));
    json_array_extend(models, list);
    json_decref(list);
}

/* Unix seconds of Ollama's "modified_at" (RFC 3339); 0 when it has none. */
static int64_t unix_seconds(const char *rfc3339)
{
    struct tm tm = {0};
    int off_h = 0, off_m = 0;
    char sign = 'Z';
    if (rfc3339 == NULL || sscanf(rfc3339, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon,
                                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    const char *zone = strpbrk(rfc3339 + 19, "Z+-");
    if (zone != NULL && *zone != 'Z' && sscanf(zone, "%c%d:%d", &sign, &off_h, &off_m) == 3)
        off_m += off_h * 60;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t t = (int64_t)timegm(&tm);
    return sign == '+' ? t - off_m * 60 : sign == '-' ? t + off_m * 60 : t;
}

static json_t *openai_object(json_t *m)
{
    return json_pack(
        "{s:O, s:s, s:I, s:s, s:s, s:O}", "id", json_object_get(m, "name"), "object", "model",
        "created", (json_int_t)unix_seconds(json_string_value(json_object_get(m, "modified_at"))),
        "owned_by", "ollama", "provider", "ollama", "available", json_object_get(m, "available"));
}

void pc_server_remote_openai_models(struct pc_server *s, json_t *data)
{
    json_t *list = owned_models(s), *m;
    size_t i;
    json_array_foreach(list, i, m) json_array_append_new(data, openai_object(m));
    json_decref(list);
}

json_t *pc_server_remote_openai_model(struct pc_server *s, const char *name)
{
    char canon[256];
    if (!pc_server_remote_owns(s, name, canon))
        return NULL;
    json_t *list = owned_models(s), *m, *found = NULL;
    size_t i;
    json_array_foreach(list, i, m)
    {
        if (found == NULL && strcmp(json_string_value(json_object_get(m, "name")), canon) == 0)
            found = openai_object(m);
    }
    json_decref(list);
    return found;
}

/* ---- load, unload, pin -------------------------------------------------------------------- */

bool pc_server_remote_keep(struct pc_server *s, const char *id, const char *keep_alive,
                           char canon[256], enum pc_err *rc, struct pc_error *err)
{
    if (!pc_server_remote_owns(s, id, canon))
        return false;
    int64_t timeout = s->cfg.preload_timeout_ms > 0 ? s->cfg.preload_timeout_ms : 30000;
    *rc = pc_ollama_load(s->remote, canon, keep_alive, "", timeout, err);
    return true;
}

/* ---- proxying ----------------------------------------------------------------------------- */

bool pc_server_remote_proxy(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    struct pc_server *s = req->srv;
    if (s->remote == NULL || req->body_len == 0)
        return false;
    json_t *o = json_loadb(req->body, req->body_len, 0, NULL);
    const char *model = json_string_value(json_object_get(o, "model"));
    if (model == NULL || model[0] == '\0')
        model = json_string_value(json_object_get(o, "name")); /* Ollama's older field */
    char canon[256];
    bool remote = model != NULL && pc_server_remote_owns(s, model, canon);
    json_decref(o);
    if (!remote)
        return false;
    struct pc_ollama_stream *st = NULL;
    struct pc_error err = {0};
    int status = 0;
    const char *ctype = NULL;
    if (pc_ollama_stream_open(s->remote, req->method, req->path, req->body, canon, &st, &status,
                              &ctype, &err) != PC_OK) {
        pc_http_reply_pc_error(reply, &err);
        return true;
    }
    reply->status = status;
    reply->content_type = ctype;
    /* The provider's one thread moves every proxied body: a stream waiting for the server's
     * next line holds no thread here. */
    reply->stream = (struct pc_http_stream){.ctx = st,
                                            .poll = pc_ollama_stream_poll,
                                            .watch = pc_ollama_stream_watch,
                                            .free = pc_ollama_stream_free};
    return true;
}

static void handle_providers(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    struct pc_server *s = req->srv;
    json_t *o = json_pack("{s:{s:s}}", "local", "models_dir", s->cfg.models_dir);
    if (s->remote != NULL)
        json_object_set_new(o, "ollama",
                            json_pack("{s:s, s:b, s:o, s:o}", "url", pc_ollama_url(s->remote),
                                      "available", pc_ollama_available(s->remote), "models",
                                      pc_ollama_models(s->remote), "loaded",
                                      pc_ollama_ps(s->remote)));
    pc_reply_json_value(reply, 200, o);
}

const struct pc_http_route pc_remote_routes[] = {
    {"GET", "/api/providers", handle_providers},
    {NULL, NULL, NULL},
};

int pc_server_remote_loaded_now(struct pc_server *s, const char *name)
{
    char canon[256];
    if (!pc_server_remote_owns(s, name, canon))
        return -1;
    struct pc_ollama_model_status st;
    pc_ollama_status(s->remote, canon, &st);
    bool loaded = false;
    if (!st.available || pc_ollama_loaded(s->remote, canon, &loaded, NULL) != PC_OK)
        return -1;
    return loaded ? 1 : 0;
}
