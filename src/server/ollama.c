/* ollama.c - the Ollama API: /api/generate, /api/chat, /api/tags, /api/ps, /api/version,
 * with Ollama's field names, units and streaming (NDJSON). */
#include "serverInt.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/clock.h"
#include "../store/store.h"
#include "genopts.h"
#include "infer.h"

/* What one /api/generate or /api/chat request asked for. */
struct ollama_req {
    json_t *json; /* the parsed body; the strings below point into it */
    bool chat;
    bool stream;
    bool raw;
    const char *model;
    const char *prompt; /* generate */
    const char *system; /* generate */
    int32_t *context;   /* generate: the tokens a previous answer returned */
    size_t n_context;
    int64_t keep_alive_ns;
    struct pc_genopts opts;
    struct pc_chat_msg *msgs; /* chat */
    size_t n_msgs;
    struct pc_buf full; /* the whole answer, when not streamed */
};

static void ollama_req_free(struct ollama_req *q)
{
    if (q == NULL)
        return;
    json_decref(q->json);
    free(q->msgs);
    free(q->context);
    pc_buf_free(&q->full);
    free(q);
}

static void api_free(void *q)
{
    ollama_req_free(q);
}

static int bad(struct pc_http_reply *reply, const char *fmt, const char *field)
{
    pc_http_reply_error(reply, 400, fmt, field);
    return -1;
}

#define F PC_GENOPT_FIELD
static const struct pc_genopts_field option_fields[] = {
    F("temperature", 0, 100, F32, sampling.temperature),
    F("top_k", 0, 1e9, I32, sampling.top_k),
    F("top_p", 0, 1, F32, sampling.top_p),
    F("min_p", 0, 1, F32, sampling.min_p),
    F("repeat_penalty", 0, 100, F32, sampling.repeat_penalty),
    F("repeat_last_n", -1, 1e9, I32, sampling.repeat_last_n),
    F("presence_penalty", -100, 100, F32, sampling.presence_penalty),
    F("frequency_penalty", -100, 100, F32, sampling.frequency_penalty),
    F("num_predict", -2, 1e9, I32, sampling.num_predict),
    F("num_ctx", 0, 1 << 22, U32, num_ctx),
};
#undef F

static int parse_options(struct ollama_req *q, struct pc_http_reply *reply)
{
    struct pc_sampling *s = &q->opts.sampling;
    pc_genopts_init(&q->opts);
    json_t *opts = json_object_get(q->json, "options");
    if (opts == NULL || json_is_null(opts))
        return 0;
    if (!json_is_object(opts))
        return bad(reply, "field \"%s\" must be an object", "options");

    if (pc_genopts_fields(opts, "options.", option_fields,
                          sizeof(option_fields) / sizeof(option_fields[0]), &q->opts, reply) != 0)
        return -1;
    if (s->num_predict == -2)
        s->num_predict = -1; /* Ollama: -2 fills the context, which is where -1 stops too */
    if (pc_genopts_seed(opts, "options.", &q->opts, reply) != 0)
        return -1;
    return pc_genopts_stops(opts, "options.", &q->opts, reply);
}

/* "context": the token array that a previous /api/generate answer ended with. */
static int parse_context(struct ollama_req *q, struct pc_http_reply *reply)
{
    json_t *arr = json_object_get(q->json, "context");
    if (arr == NULL || json_is_null(arr) || (json_is_array(arr) && json_array_size(arr) == 0))
        return 0;
    if (!json_is_array(arr))
        return bad(reply, "field \"%s\" must be an array of token ids", "context");
    q->n_context = json_array_size(arr);
    if ((q->context = malloc(q->n_context * sizeof(*q->context))) == NULL) {
        pc_http_reply_error(reply, 500, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < q->n_context; i++) {
        json_t *t = json_array_get(arr, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > INT32_MAX) {
            pc_http_reply_error(reply, 400, "context[%zu] must be a token id (an integer >= 0)", i);
            return -1;
        }
        q->context[i] = (int32_t)json_integer_value(t);
    }
    return 0;
}

/* "template" replaces the model's template with a Go template in Ollama. We render with the
 * model's own template (llama.cpp's), and would rather refuse than answer with a prompt laid
 * out otherwise than the client asked. raw mode uses no template, so one is harmless there. */
static int check_template(struct ollama_req *q, struct pc_http_reply *reply)
{
    const char *t = NULL;
    if (pc_req_string(q->json, "template", &t, reply) != 0)
        return -1;
    if (t == NULL || t[0] == '\0' || q->raw)
        return 0;
    return bad(reply,
               "field \"%s\": custom (Go) templates are not supported; the model's own chat "
               "template is used. Send the prompt already formatted with \"raw\": true instead",
               "template");
}

/* "tools" is accepted and not used: no tool calls are parsed out of the answer. */
static int check_tools(struct ollama_req *q, struct pc_http_reply *reply)
{
    json_t *v = json_object_get(q->json, "tools");
    if (v == NULL || json_is_null(v) || json_is_array(v))
        return 0;
    return bad(reply, "field \"%s\" must be an array", "tools");
}

static int parse_messages(struct ollama_req *q, struct pc_http_reply *reply)
{
    static const char *const roles[] = {"system", "user", "assistant", "tool"};
    json_t *arr = json_object_get(q->json, "messages");
    if (arr == NULL || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return bad(reply, "field \"%s\" must be an array of messages", "messages");
    q->n_msgs = json_array_size(arr);
    q->msgs = calloc(q->n_msgs ? q->n_msgs : 1, sizeof(*q->msgs));
    if (q->msgs == NULL) {
        pc_http_reply_error(reply, 500, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < q->n_msgs; i++) {
        json_t *m = json_array_get(arr, i);
        json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
        if (!json_is_object(m) || !json_is_string(role)) {
            pc_http_reply_error(reply, 400, "messages[%zu].role must be a string", i);
            return -1;
        }
        if (content != NULL && !json_is_null(content) && !json_is_string(content)) {
            pc_http_reply_error(reply, 400, "messages[%zu].content must be a string", i);
            return -1;
        }
        const char *r = json_string_value(role);
        bool known = false;
        for (size_t k = 0; k < sizeof(roles) / sizeof(roles[0]); k++)
            known = known || strcmp(r, roles[k]) == 0;
        if (!known) {
            pc_http_reply_error(reply, 400,
                                "messages[%zu].role \"%s\" is not one of system, user, "
                                "assistant, tool",
                                i, r);
            return -1;
        }
        q->msgs[i].role = r;
        q->msgs[i].content = json_is_string(content) ? json_string_value(content) : "";
    }
    return 0;
}

static struct ollama_req *parse_request(const struct pc_http_req *req, bool chat,
                                        struct pc_http_reply *reply)
{
    struct ollama_req *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        pc_http_reply_error(reply, 500, "out of memory");
        return NULL;
    }
    q->chat = chat;
    q->stream = true;
    q->json = pc_req_parse_object(req, reply);
    if (q->json == NULL)
        goto fail;
    if (pc_req_model(q->json, &q->model, reply) != 0)
        goto fail;
    if (pc_req_bool(q->json, "stream", &q->stream, reply) != 0 ||
        pc_req_bool(q->json, "raw", &q->raw, reply) != 0 ||
        pc_req_string(q->json, "prompt", &q->prompt, reply) != 0 ||
        pc_req_string(q->json, "system", &q->system, reply) != 0 ||
        pc_genopts_keep_alive(q->json, &q->keep_alive_ns, reply) != 0 ||
        parse_options(q, reply) != 0 || pc_genopts_format(q->json, &q->opts, reply) != 0 ||
        (!chat && (parse_context(q, reply) != 0 || check_template(q, reply) != 0)) ||
        (chat && (parse_messages(q, reply) != 0 || check_tools(q, reply) != 0)))
        goto fail;
    return q;
fail:
    ollama_req_free(q);
    return NULL;
}

/* ---- replies ------------------------------------------------------------------------------ */

static json_t *chunk_base(const struct ollama_req *q, const char *text, size_t len, bool done)
{
    char ts[40];
    json_t *o =
        json_pack("{s:s, s:s}", "model", q->model, "created_at", pc_now_rfc3339(ts, sizeof(ts)));
    if (o == NULL)
        return NULL;
    if (q->chat)
        json_object_set_new(o, "message",
                            json_pack("{s:s, s:s%}", "role", "assistant", "content", text, len));
    else
        json_object_set_new(o, "response", json_stringn(text, len));
    json_object_set_new(o, "done", json_boolean(done));
    return o;
}

/* /api/generate's "context": prompt and answer tokens, to send back with the next prompt. */
static void add_context(json_t *o, const struct pc_infer *inf)
{
    int32_t *toks = NULL;
    size_t n = 0;
    if (inf->gen == NULL || pc_gen_tokens(inf->gen, &toks, &n, NULL) != PC_OK)
        return;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_integer(toks[i]));
    free(toks);
    json_object_set_new(o, "context", arr);
}

static void add_final_fields(json_t *o, const struct pc_infer *inf, const char *reason)
{
    json_object_set_new(o, "done_reason", json_string(reason));
    json_object_set_new(o, "total_duration", json_integer(pc_clock_mono_ns() - inf->start_ns));
    json_object_set_new(o, "load_duration", json_integer(inf->load_ns));
    if (inf->gen == NULL)
        return;
    const struct pc_gen_stats *st = pc_gen_stats(inf->gen);
    json_object_set_new(o, "prompt_eval_count", json_integer(st->prompt_tokens));
    json_object_set_new(o, "prompt_eval_duration", json_integer(st->prompt_ns));
    json_object_set_new(o, "prompt_cached_count", json_integer(st->cached_tokens));
    json_object_set_new(o, "eval_count", json_integer(st->eval_tokens));
    json_object_set_new(o, "eval_duration", json_integer(st->eval_ns));
    if (!((const struct ollama_req *)inf->api)->chat)
        add_context(o, inf);
}

static bool append_line(struct pc_buf *out, json_t *o)
{
    return pc_append_json(out, "", o, "\n");
}

/* One streamed step: the next chunk with text, or the last one. */
static bool stream_next(void *ctx, struct pc_buf *out)
{
    struct pc_infer *inf = ctx;
    const char *text;
    size_t len;
    bool done;
    struct pc_error err = {0};
    if (pc_infer_next(inf, &text, &len, &done, &err) != PC_OK) {
        /* The status line went out with the first chunk: report in the stream. */
        append_line(out, json_pack("{s:s}", "error", err.msg));
        return false;
    }
    json_t *o = chunk_base(inf->api, text, len, done);
    if (done && o != NULL)
        add_final_fields(o, inf, pc_gen_done_reason(inf->gen));
    append_line(out, o);
    return !done;
}

static void reply_whole(struct pc_infer *inf, struct pc_http_reply *reply)
{
    struct ollama_req *q = inf->api;
    struct pc_error err = {0};
    if (pc_infer_collect(inf, &q->full, &err) != PC_OK) {
        pc_http_reply_pc_error(reply, &err);
        return;
    }
    json_t *o = chunk_base(q, q->full.data ? q->full.data : "", q->full.len, true);
    if (o != NULL)
        add_final_fields(o, inf, pc_gen_done_reason(inf->gen));
    pc_reply_json_value(reply, 200, o);
}

/* An empty prompt loads the model, or with keep_alive 0 unloads it, as Ollama does. */
static void load_or_unload(struct pc_server *srv, struct ollama_req *q, struct pc_http_reply *reply)
{
    struct pc_error err = {0};
    struct pc_infer *inf = NULL;
    const char *reason = "load";
    if (q->keep_alive_ns == 0) {
        reason = "unload";
        if (pc_infer_unload(srv, q->model, &err) != PC_OK) {
            pc_http_reply_pc_error(reply, &err);
            return;
        }
    } else if (pc_infer_open(srv, q->model, q->keep_alive_ns, &inf, &err) != PC_OK) {
        pc_http_reply_pc_error(reply, &err);
        return;
    }
    json_t *o = chunk_base(q, "", 0, true);
    if (o != NULL && inf != NULL)
        add_final_fields(o, inf, reason);
    else if (o != NULL)
        json_object_set_new(o, "done_reason", json_string(reason));
    pc_infer_close(inf);
    pc_reply_json_value(reply, 200, o);
}

/* The prompt text the model sees. *out is malloc'd. */
static enum pc_err build_prompt(struct ollama_req *q, struct pc_model *m, char **out,
                                struct pc_error *err)
{
    if (q->chat)
        return pc_model_render_chat(m, q->msgs, q->n_msgs, true, out, err);
    if (q->raw) {
        *out = strdup(q->prompt);
        return *out ? PC_OK : pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    }
    struct pc_chat_msg msgs[2];
    size_t n = 0;
    if (q->system != NULL && q->system[0] != '\0')
        msgs[n++] = (struct pc_chat_msg){.role = "system", .content = q->system};
    msgs[n++] = (struct pc_chat_msg){.role = "user", .content = q->prompt};
    return pc_model_render_chat(m, msgs, n, true, out, err);
}

static void handle_inference(const struct pc_http_req *req, struct pc_http_reply *reply, bool chat)
{
    if (pc_server_remote_proxy(req, reply))
        return; /* the ollama provider's model */
    struct ollama_req *q = parse_request(req, chat, reply);
    if (q == NULL)
        return;
    bool empty = chat ? q->n_msgs == 0 : q->prompt == NULL || q->prompt[0] == '\0';
    if (empty) {
        load_or_unload(req->srv, q, reply);
        ollama_req_free(q);
        return;
    }

    struct pc_error err = {0};
    struct pc_infer *inf = NULL;
    char *prompt = NULL;
    if (pc_infer_open(req->srv, q->model, q->keep_alive_ns, &inf, &err) == PC_OK) {
        inf->context = q->context;
        inf->n_context = q->n_context;
        inf->num_ctx = q->opts.num_ctx;
    }
    if (inf == NULL || build_prompt(q, pc_infer_model(inf), &prompt, &err) != PC_OK ||
        pc_infer_start(inf, prompt, &q->opts.sampling, &err) != PC_OK) {
        free(prompt);
        pc_infer_close(inf);
        ollama_req_free(q);
        pc_http_reply_pc_error(reply, &err);
        return;
    }
    free(prompt);
    pc_infer_reply(inf, q, api_free, q->stream, "application/x-ndjson", stream_next, reply_whole,
                   reply);
}

static void handle_generate(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    handle_inference(req, reply, false);
}

static void handle_chat(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    handle_inference(req, reply, true);
}

/* ---- model listings ----------------------------------------------------------------------- */

static json_t *details(const struct pc_model_info *in)
{
    const char *family = in && in->arch[0] ? in->arch : "";
    return json_pack("{s:s, s:s, s:[s], s:s, s:s}", "format", "gguf", "family", family, "families",
                     family, "parameter_size", in ? in->parameter_size : "", "quantization_level",
                     in ? in->quantization : "");
}

static void handle_tags(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    struct pc_store_entry *list = NULL;
    size_t n = 0;
    struct pc_error err = {0};
    if (pc_store_list(req->srv->cfg.models_dir, &list, &n, &err) != PC_OK) {
        pc_http_reply_pc_error(reply, &err);
        return;
    }
    json_t *models = json_array();
    for (size_t i = 0; i < n; i++) {
        char ts[40], name[300];
        snprintf(name, sizeof(name), "%s:latest", list[i].name);
        json_array_append_new(
            models, json_pack("{s:s, s:s, s:s, s:I, s:o}", "name", name, "model", name,
                              "modified_at", pc_clock_rfc3339(list[i].mtime_ns, ts, sizeof(ts)),
                              "size", (json_int_t)list[i].size, "details", details(NULL)));
    }
    free(list);
    pc_server_remote_tags(req->srv, models);
    pc_reply_json_value(reply, 200, json_pack("{s:o}", "models", models));
}

/* Ollama's fields, from the pool; beside them precharge's own: pinned, in_use (requests that
 * hold the model now), uses, the memory charged to it beyond llama.cpp's (snapshots), and the
 * provider. Then the models loaded on the ollama provider's server, as its /api/ps has them. */
static void handle_ps(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    struct pc_pool_status *st = NULL;
    size_t n = pc_pool_list(req->srv->pool, &st);
    json_t *models = json_array();
    for (size_t i = 0; i < n; i++) {
        char ts[40], name[300];
        const struct pc_model_info *in = &st[i].info;
        snprintf(name, sizeof(name), "%s:latest", st[i].name);
        json_t *m =
            json_pack("{s:s, s:s, s:I, s:o, s:s, s:I, s:I}", "name", name, "model", name, "size",
                      (json_int_t)st[i].memory_bytes, "details", details(in), "expires_at",
                      pc_clock_rfc3339(st[i].expires_wall_ns, ts, sizeof(ts)), "size_vram",
                      (json_int_t)in->device_bytes, "context_length", (json_int_t)in->n_ctx);
        if (m != NULL)
            json_object_update_new(
                m, json_pack("{s:b, s:i, s:I, s:I, s:s}", "pinned", st[i].pinned, "in_use",
                             st[i].refs, "uses", (json_int_t)st[i].uses, "charged_size",
                             (json_int_t)st[i].charged_bytes, "provider", "local"));
        json_array_append_new(models, m);
    }
    free(st);
    pc_server_remote_ps(req->srv, models);
    pc_reply_json_value(reply, 200, json_pack("{s:o}", "models", models));
}

static void handle_version(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    (void)req;
    pc_reply_json_value(
        reply, 200,
        json_pack("{s:s, s:s}", "version", PC_VERSION, "llama_cpp", pc_engine_version()));
}

static void handle_health(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    (void)req;
    pc_reply_json_value(reply, 200, json_pack("{s:s}", "status", "ok"));
}

static void handle_root(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    (void)req;
    reply->status = 200;
    reply->content_type = "text/plain; charset=utf-8";
    reply->body = strdup("precharge is running");
    reply->body_len = reply->body ? strlen(reply->body) : 0;
}

const struct pc_http_route pc_ollama_routes[] = {
    {"GET", "/", handle_root},
    {"GET", "/health", handle_health},
    {"GET", "/api/version", handle_version},
    {"GET", "/api/tags", handle_tags},
    {"GET", "/api/ps", handle_ps},
    {"POST", "/api/generate", handle_generate},
    {"POST", "/api/chat", handle_chat},
    {NULL, NULL, NULL},
};
