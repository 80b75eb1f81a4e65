/* precharge_api.c - the precharge API: POST /api/precharge (seed 000's body), its results,
 * model states, the precharged contexts, and the live event stream (SSE). */
#include "serverInt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/clock.h"
#include "../store/store.h"
#include "chatreq.h"
#include "genopts.h"
#include "ollama_opts.h"

#define MAX_WAIT_MS (10 * 60 * 1000)

static int parse_priority(json_t *body, enum pc_priority *out, struct pc_http_reply *reply)
{
    const char *p = "normal";
    if (pc_req_string(body, "priority", &p, reply) != 0)
        return -1;
    if (strcmp(p, "high") == 0)
        *out = PC_PRIO_HIGH;
    else if (strcmp(p, "normal") == 0)
        *out = PC_PRIO_NORMAL;
    else if (strcmp(p, "low") == 0)
        *out = PC_PRIO_LOW;
    else {
        pc_http_reply_error(reply, 400, "priority \"%s\" is not one of high, normal, low", p);
        return -1;
    }
    return 0;
}

/* The context: "context" (seed 000) or "messages", a chat's messages in either API's spelling
 * (tool calls, tool results, thinking), with "tools" and "think", or "prompt". Checked here as
 * the chats check them; the job renders them the same way (pc_chatreq_prefix_tokens). */
static int parse_context(json_t *body, struct pc_precharge_req *r, struct pc_http_reply *reply)
{
    json_t *msgs = json_object_get(body, "context");
    const char *field = "context";
    if (msgs == NULL) {
        msgs = json_object_get(body, "messages");
        field = "messages";
    }
    if (pc_req_string(body, "prompt", &r->prompt, reply) != 0)
        return -1;
    if (msgs == NULL || json_is_null(msgs)) {
        if (r->prompt == NULL || r->prompt[0] == '\0') {
            pc_http_reply_error(reply, 400,
                                "a precharge needs \"context\" (messages) or a \"prompt\"");
            return -1;
        }
        return 0;
    }
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        pc_http_reply_error(reply, 400, "field \"%s\" must be a non-empty array of messages",
                            field);
        return -1;
    }
    r->messages = msgs;
    struct pc_chatreq check = {0};
    int rc = pc_chatreq_messages(&check, msgs, PC_CHATREQ_ANY, reply) != 0 ||
                     pc_chatreq_tools(&check, json_object_get(body, "tools"), reply) != 0 ||
                     pc_chatreq_think(&check, json_object_get(body, "think"), reply) != 0
                 ? -1
                 : 0;
    if (check.in.n_tools > 0)
        r->tools = json_object_get(body, "tools");
    r->think = check.in.think;
    pc_chatreq_free(&check);
    return rc;
}

/* "options": a precharge samples nothing and fills the loaded context, so only the load settings
 * at the daemon's values pass (as on the chats); any other option is a 400 naming it. */
static int check_options(json_t *body, const struct pc_server *srv, struct pc_http_reply *reply)
{
    json_t *opts = json_object_get(body, "options");
    if (opts == NULL || json_is_null(opts))
        return 0;
    if (!json_is_object(opts)) {
        pc_http_reply_error(reply, 400, "field \"options\" must be an object");
        return -1;
    }
    return pc_ollama_options_check(opts, &srv->cfg.pool.model_params, NULL, 0,
                                   "/api/precharge (nothing is sampled, and the context is the "
                                   "loaded one: send it with the chat)",
                                   reply);
}

static const char *const precharge_fields[] = {
    "model",          "model_id", "context",    "messages", "tools",
    "prompt",         "category", "priority",   "key",      "wait",
    "correlation_id", "timeout",  "keep_alive", "think",    "options",
};

/* A precharge's fields, from POST /api/precharge's body or a PrechargeRequested's data on the
 * fleet's bus (r borrows body's strings): model_id (or model), category, key, correlation_id,
 * priority, the context, keep_alive and options. On failure, a 400 naming the field in reply. */
static int parse_request(json_t *body, const struct pc_server *srv, struct pc_precharge_req *r,
                         struct pc_http_reply *reply)
{
    if (pc_req_string(body, "model_id", &r->model, reply) != 0 ||
        pc_req_string(body, "model", &r->model, reply) != 0 ||
        pc_req_string(body, "category", &r->category, reply) != 0 ||
        pc_req_string(body, "key", &r->key, reply) != 0 ||
        pc_req_string(body, "correlation_id", &r->correlation_id, reply) != 0 ||
        parse_priority(body, &r->priority, reply) != 0 || parse_context(body, r, reply) != 0 ||
        pc_genopts_keep_alive(body, &r->keep_alive_ns, reply) != 0 ||
        check_options(body, srv, reply) != 0)
        return -1;
    r->set_keep_alive = r->keep_alive_ns != -1; /* -1: absent (pc_genopts_keep_alive) */
    if (r->model == NULL || r->model[0] == '\0') {
        pc_http_reply_error(reply, 400, "field \"model\" is required");
        return -1;
    }
    return 0;
}

enum pc_err pc_server_fleet_submit(void *user, json_t *data, const char *correlation_id,
                                   struct pc_error *err)
{
    struct pc_server *srv = user;
    struct pc_precharge_req r = {0};
    struct pc_http_reply reply = {0};
    if (pc_req_known_fields(data, precharge_fields,
                            sizeof(precharge_fields) / sizeof(precharge_fields[0]),
                            "a PrechargeRequested", &reply) != 0 ||
        parse_request(data, srv, &r, &reply) != 0) {
        /* The same words as the HTTP API's 400. */
        json_t *body = json_loads(reply.body ? reply.body : "{}", 0, NULL);
        const char *why = json_string_value(json_object_get(body, "error"));
        pc_error_set(err, PC_ERR_INVALID, "%s", why ? why : "invalid precharge request");
        json_decref(body);
        free(reply.body);
        return PC_ERR_INVALID;
    }
    free(reply.body);
    r.correlation_id = correlation_id;
    char id[PC_PRECHARGE_ID_MAX];
    return pc_precharge_submit(srv->precharger, &r, id, err);
}

static void handle_precharge(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    json_t *body = pc_req_parse_object(req, reply);
    if (body == NULL)
        return;
    struct pc_precharge_req r = {0};
    bool wait = false;
    json_t *timeout = json_object_get(body, "timeout");
    if (pc_req_known_fields(body, precharge_fields,
                            sizeof(precharge_fields) / sizeof(precharge_fields[0]),
                            "/api/precharge", reply) != 0 ||
        parse_request(body, req->srv, &r, reply) != 0 || pc_req_bool(body, "wait", &wait, reply))
        goto out;
    if (timeout != NULL && (!json_is_number(timeout) || json_number_value(timeout) <= 0)) {
        pc_http_reply_error(reply, 400, "field \"timeout\" must be a positive number of seconds");
        goto out;
    }
    char id[PC_PRECHARGE_ID_MAX];
    struct pc_error err = {0};
    if (pc_precharge_submit(req->srv->precharger, &r, id, &err) != PC_OK) {
        pc_http_reply_pc_error(reply, &err);
        goto out;
    }
    if (!wait) {
        /* Its state now: queued or running, or, for work that it joined, even its result. */
        json_t *now = pc_precharge_get(req->srv->precharger, id, 0);
        if (now == NULL) /* finished and forgotten at once: it was accepted all the same */
            now = json_pack("{s:s, s:s}", "correlation_id", id, "model_id", r.model);
        pc_reply_json_value(reply, 202, now);
        goto out;
    }
    double secs = timeout ? json_number_value(timeout) : 30.0;
    int ms = secs * 1000 > MAX_WAIT_MS ? MAX_WAIT_MS : (int)(secs * 1000);
    json_t *result = pc_precharge_get(req->srv->precharger, id, ms);
    const char *status = json_string_value(json_object_get(result, "status"));
    if (status != NULL && (strcmp(status, "queued") == 0 || strcmp(status, "running") == 0)) {
        json_object_set_new(result, "error",
                            json_sprintf("the precharge did not finish within %g s", secs));
        pc_reply_json_value(reply, 504, result);
        goto out;
    }
    /* A context over the limit is the caller's to fix, as a prompt over it is: a 4xx. */
    int code = pc_http_status_of(pc_precharge_failure(req->srv->precharger, id));
    pc_reply_json_value(reply, code >= 400 && code < 500 ? code : 200, result);
out:
    json_decref(body);
}

static void handle_precharge_get(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    json_t *r = pc_precharge_get(req->srv->precharger, req->params[0], 0);
    if (r == NULL) {
        pc_http_reply_error(reply, 404, "no precharge with correlation_id \"%s\"", req->params[0]);
        return;
    }
    pc_reply_json_value(reply, 200, r);
}

static void handle_state(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    char norm[256], path[1200], corr[40], ts[40];
    struct pc_error err = {0};
    bool fleet = false;
    if (pc_server_fleet_param(req, &fleet, reply) != 0)
        return;
    if (pc_store_name(req->params[0], norm, sizeof(norm), &err) != PC_OK) {
        pc_http_reply_pc_error(reply, &err);
        return;
    }
    int64_t since = 0;
    enum pc_model_state st;
    /* The ollama provider's model: what its server's /api/ps and our proxy say now. */
    bool remote = pc_server_remote_state(req->srv, req->params[0], &st);
    corr[0] = '\0';
    if (!remote) {
        pc_storewatch_scan(req->srv->storewatch);
        st = pc_events_state(req->srv->events, norm, &since, corr);
        /* Not loaded: pretrained when it is on disk (the events may never have named it), else
         * unavailable (an unload after its file went says pretrained). */
        bool on_disk =
            pc_store_path(req->srv->cfg.models_dir, norm, path, sizeof(path), NULL) == PC_OK;
        if (st == PC_STATE_UNAVAILABLE && on_disk)
            st = PC_STATE_PRETRAINED;
        else if (st == PC_STATE_PRETRAINED && !on_disk)
            st = PC_STATE_UNAVAILABLE;
    }
    bool warm = st == PC_STATE_PRECHARGED || st == PC_STATE_ACTIVE;
    char why[320] = "";
    bool failed = !remote && pc_events_failure(req->srv->events, norm, why, sizeof(why));
    json_t *out =
        json_pack("{s:s, s:s, s:b, s:s, s:s?, s:s?, s:s?}", "model_id", norm, "state",
                  pc_state_name(st), "warm", warm, "provider", remote ? "ollama" : "local", "since",
                  since ? pc_clock_rfc3339(since, ts, sizeof(ts)) : NULL, "correlation_id",
                  corr[0] ? corr : NULL, "error", failed ? why : NULL);
    if (fleet) /* where else it is warm: the registry's last view, never a wait on Redis */
        json_object_set_new(out, "fleet", pc_fleet_where(req->srv->fleet, norm));
    pc_reply_json_value(reply, 200, out);
}

/* The contexts that remote precharges left on the ollama provider's server, while it keeps
 * their model loaded. */
static void append_remote(struct pc_server *srv, json_t *arr)
{
    struct pc_precharge_remote_ctx *list = NULL;
    size_t n = pc_precharge_remote_list(srv->precharger, &list);
    for (size_t i = 0; i < n; i++) {
        int loaded = pc_server_remote_loaded_now(srv, list[i].model);
        if (loaded == 0) /* unloaded there: a later load starts with an empty cache */
            pc_precharge_remote_forget(srv->precharger, list[i].model);
        if (loaded != 1) /* down, or unloaded: not warm */
            continue;
        char ts[40];
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "model_id", list[i].model, "category",
                           list[i].category, "context_tokens", list[i].context_tokens, "since",
                           pc_clock_rfc3339(list[i].since_wall_ns, ts, sizeof(ts)), "tier",
                           "remote", "provider", "ollama"));
    }
    free(list);
}

static void handle_precharged(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    /* Snapshots of a model file that went or was replaced are dropped first. */
    pc_storewatch_scan(req->srv->storewatch);
    struct pc_snapshot_info *list = NULL;
    size_t n = pc_snapstore_list(req->srv->snapshots, &list);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (!list[i].precharged)
            continue;
        char ts[40];
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:I, s:s, s:s, s:I, s:s}", "model_id", list[i].meta.model,
                           "category", list[i].meta.category[0] ? list[i].meta.category : "local",
                           "context_tokens", (json_int_t)list[i].n_tokens, "since",
                           pc_clock_rfc3339(list[i].created_wall_ns, ts, sizeof(ts)), "tier",
                           pc_tier_name(list[i].tier), "bytes", (json_int_t)list[i].bytes,
                           "provider", "local"));
    }
    free(list);
    append_remote(req->srv, arr);
    pc_reply_json_value(reply, 200, json_pack("{s:o}", "precharged", arr));
}

/* A comment line this often keeps proxies from closing a quiet stream. */
#define SSE_KEEP_ALIVE_NS (15ll * 1000000000)

struct sse {
    struct pc_events_sub *sub;
    bool started;
    int64_t wrote_ns; /* when it last wrote */
};

static enum pc_stream_state sse_poll(void *ctx, struct pc_buf *out)
{
    struct sse *s = ctx;
    int64_t now = pc_clock_mono_ns();
    size_t before = out->len;
    if (!s->started) {
        s->started = true;
        s->wrote_ns = now;
        pc_buf_appends(out, ": precharge event stream\n\n");
        return PC_STREAM_MORE;
    }
    if (!pc_events_read(s->sub, out))
        return PC_STREAM_END; /* the daemon stops */
    if (out->len == before && now - s->wrote_ns >= SSE_KEEP_ALIVE_NS)
        pc_buf_appends(out, ": keep-alive\n\n");
    if (out->len == before)
        return PC_STREAM_WAIT;
    s->wrote_ns = now;
    return PC_STREAM_MORE;
}

static void sse_watch(void *ctx, void (*wake)(void *arg), void *arg)
{
    struct sse *s = ctx;
    pc_events_watch(s->sub, wake, arg);
}

static void sse_free(void *ctx)
{
    struct sse *s = ctx;
    pc_events_unsubscribe(s->sub);
    free(s);
}

static void handle_events(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    static const char *const known[] = {"precharge:requests", "precharge:responses", "models"};
    const char *streams = pc_http_query(req, "stream");
    if (streams == NULL)
        streams = "";
    for (const char *p = streams; *p;) {
        size_t len = strcspn(p, ",");
        bool ok = false;
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
            ok = ok || (strlen(known[k]) == len && strncmp(p, known[k], len) == 0);
        if (!ok) {
            pc_http_reply_error(reply, 400,
                                "unknown stream \"%.*s\": use precharge:requests, "
                                "precharge:responses or models",
                                (int)len, p);
            return;
        }
        p += len + (p[len] == ',');
    }
    unsigned max = req->srv->cfg.max_event_streams;
    struct sse *s = calloc(1, sizeof(*s));
    if (s != NULL && (s->sub = pc_events_subscribe(req->srv->events, streams, max)) == NULL) {
        free(s);
        s = NULL;
        if (max > 0 && pc_events_subscribers(req->srv->events) >= max) {
            /* Each stream costs no thread, but the cap keeps a client from opening them
             * without end; the other routes, /health among them, still answer. */
            struct pc_error err;
            pc_error_set(&err, PC_ERR_BUSY,
                         "too many event streams: the limit is %u (max_event_streams)", max);
            pc_http_reply_pc_error(reply, &err);
            return;
        }
    }
    if (s == NULL) {
        pc_http_reply_error(reply, 500, "out of memory");
        return;
    }
    reply->status = 200;
    reply->content_type = "text/event-stream";
    reply->stream =
        (struct pc_http_stream){.ctx = s, .poll = sse_poll, .watch = sse_watch, .free = sse_free};
}

const struct pc_http_route pc_precharge_routes[] = {
    {"POST", "/api/precharge", handle_precharge},
    {"GET", "/api/precharge/{}", handle_precharge_get},
    {"GET", "/api/models/{}/state", handle_state},
    {"GET", "/api/precharged", handle_precharged},
    {"GET", "/api/events", handle_events},
    {NULL, NULL, NULL},
};
