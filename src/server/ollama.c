/* ollama.c - the Ollama API: /api/generate, /api/chat, /api/tags, /api/ps, /api/version,
 * with Ollama's field names, units and streaming (NDJSON). */
#include "serverInt.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/clock.h"
#include "../catalog/details.h"
#include "../base/log.h"
#include "../store/manifest.h"
#include "../store/store.h"
#include "chatreq.h"
#include "genopts.h"
#include "infer.h"
#include "ollama_opts.h"
#include "ui.h"

/* What one /api/generate or /api/chat request asked for. */
struct ollama_req {
    json_t *json; /* the parsed body; the strings below point into it */
    bool chat;
    bool stream;
    bool raw;
    const char *model;
    const char *prompt; /* generate */
    const char *system; /* generate */
    const char *suffix; /* generate: the text after the insertion (fill in the middle) */
    int32_t *context;   /* generate: the tokens a previous answer returned */
    size_t n_context;
    int64_t keep_alive_ns;
    bool truncate; /* a prompt over the context: generate cuts it, chat drops the oldest turns */
    bool shift;    /* an answer that fills the context shifts it, rather than ends */
    int32_t top_logprobs; /* "logprobs"/"top_logprobs": alternatives per token; -1 none */
    size_t dropped;       /* chat: the messages truncate dropped */
    struct pc_genopts opts;
    struct pc_chatreq conv; /* messages (chat), tools, format schema, think */
    struct pc_buf full;     /* the whole answer, when not streamed */
};

static void ollama_req_free(struct ollama_req *q)
{
    if (q == NULL)
        return;
    pc_chatreq_free(&q->conv);
    json_decref(q->json);
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
    F("num_keep", -1, 1e9, I32, num_keep),
};
#undef F

/* The options this file reads besides option_fields: seed, stop, and the sampler's own
 * (pc_genopts_sampler_options). */
static const char *const other_options[] = {
    "seed",         "stop",         "typical_p", "mirostat",
    "mirostat_tau", "mirostat_eta", "tfs_z",     "penalize_newline",
};

/* Every name in "options" is read: the numbers, seed and stop, or a load setting that must be
 * the daemon's (pc_ollama_options_check). */
static int check_option_names(json_t *opts, const struct pc_model_params *p,
                              struct pc_http_reply *reply)
{
    enum { N_FIELDS = sizeof(option_fields) / sizeof(option_fields[0]) };
    enum { N_OTHER = sizeof(other_options) / sizeof(other_options[0]) };
    const char *names[N_FIELDS + N_OTHER];
    for (size_t i = 0; i < N_FIELDS; i++)
        names[i] = option_fields[i].name;
    memcpy(names + N_FIELDS, other_options, sizeof(other_options));
    return pc_ollama_options_check(opts, p, names, N_FIELDS + N_OTHER, "", reply);
}

static int parse_options(struct ollama_req *q, const struct pc_model_params *p,
                         struct pc_http_reply *reply)
{
    struct pc_sampling *s = &q->opts.sampling;
    pc_genopts_init(&q->opts);
    q->opts.num_keep = 4; /* Ollama's default */
    json_t *opts = json_object_get(q->json, "options");
    if (opts == NULL || json_is_null(opts))
        return 0;
    if (!json_is_object(opts))
        return bad(reply, "field \"%s\" must be an object", "options");
    if (check_option_names(opts, p, reply) != 0)
        return -1;

    if (pc_genopts_fields(opts, "options.", option_fields,
                          sizeof(option_fields) / sizeof(option_fields[0]), &q->opts, reply) != 0)
        return -1;
    if (s->num_predict == -2)
        s->num_predict = -1; /* Ollama: -2 fills the context, which is where -1 stops too */
    if (pc_genopts_seed(opts, "options.", &q->opts, reply) != 0 ||
        pc_genopts_sampler_options(opts, "options.", &q->opts, reply) != 0)
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

static int parse_messages(struct ollama_req *q, struct pc_http_reply *reply)
{
    json_t *arr = json_object_get(q->json, "messages");
    if (arr == NULL || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return bad(reply, "field \"%s\" must be an array of messages", "messages");
    q->conv.in.parallel_tool_calls = true; /* Ollama gives every call the model makes */
    /* tool_choice is OpenAI's, taken here too (Ollama has none: the model decides). */
    return pc_chatreq_messages(&q->conv, arr, PC_CHATREQ_OLLAMA, reply) != 0 ||
                   pc_chatreq_tools(&q->conv, json_object_get(q->json, "tools"), reply) != 0 ||
                   pc_chatreq_tool_choice(&q->conv, json_object_get(q->json, "tool_choice"),
                                          reply) != 0
               ? -1
               : 0;
}

/* "format": "json", or a JSON schema object that the answer must validate against. */
static int parse_format(struct ollama_req *q, struct pc_http_reply *reply)
{
    json_t *v = json_object_get(q->json, "format");
    if (!json_is_object(v))
        return pc_genopts_format(q->json, &q->opts, reply);
    q->conv.in.json_schema = pc_chatreq_own(&q->conv, json_dumps(v, JSON_COMPACT));
    if (q->conv.in.json_schema == NULL) {
        pc_http_reply_error(reply, 500, "out of memory");
        return -1;
    }
    if (q->raw)
        return bad(reply,
                   "field \"%s\": a JSON schema is applied through the chat template, which raw "
                   "mode does not use; use \"json\" or leave raw out",
                   "format");
    return 0;
}

/* "images" (base64 pictures) on generate, or on any chat message: the local models have no
 * vision encoder, so a request with pictures is refused rather than answered as if they were not
 * there. An empty list or null is no picture. */
static int check_images(struct ollama_req *q, struct pc_http_reply *reply)
{
    json_t *msgs = json_object_get(q->json, "messages");
    size_t n = q->chat ? json_array_size(msgs) : 1;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(q->chat ? json_array_get(msgs, i) : q->json, "images");
        if (v == NULL || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0))
            continue;
        char field[48];
        if (q->chat)
            snprintf(field, sizeof(field), "messages[%zu].images", i);
        else
            snprintf(field, sizeof(field), "images");
        if (!json_is_array(v))
            return bad(reply, "field \"%s\" must be an array of base64 images", field);
        pc_http_reply_error(reply, 400,
                            "field \"%s\": model \"%s\" has no vision encoder and cannot read "
                            "images; send text only",
                            field, q->model);
        return -1;
    }
    return 0;
}

/* "logprobs": true gives each answer token's log-probability, with "top_logprobs" (0..20)
 * alternatives; top_logprobs alone asks for them too. */
static int parse_logprobs(struct ollama_req *q, struct pc_http_reply *reply)
{
    bool on = false;
    double top = -1;
    if (pc_req_bool(q->json, "logprobs", &on, reply) != 0 ||
        pc_genopts_number(q->json, "", "top_logprobs", 0, PC_TOP_LOGPROBS_MAX, &top, reply) != 0)
        return -1;
    q->top_logprobs = top >= 0 ? (int32_t)top : on ? 0 : -1;
    return 0;
}

/* A field of the other route (a chat's messages on /api/generate, generate's prompt on
 * /api/chat): refused, with where it belongs, rather than dropped. A value that carries nothing
 * (null, "", []) passes. */
static int check_other_route(struct ollama_req *q, struct pc_http_reply *reply)
{
    static const struct {
        bool chat; /* refused on /api/chat (else on /api/generate) */
        const char *field, *why;
    } fields[] = {
        {true, "prompt", "a /api/generate field; send the text as a user message"},
        {true, "system", "a /api/generate field; send a system message first in \"messages\""},
        {true, "template", "a /api/generate field (and Go templates are not supported)"},
        {true, "context", "/api/generate's token array; a chat's context is its \"messages\""},
        {true, "suffix", "a /api/generate field (fill in the middle)"},
        {true, "images", "on /api/chat a message's field: messages[i].images"},
        {false, "messages", "a /api/chat field; use \"prompt\" (and \"system\") here"},
        {false, "tools", "a /api/chat field; this route calls no tools"},
        {false, "tool_choice", "a /api/chat field; this route calls no tools"},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        json_t *v = json_object_get(q->json, fields[i].field);
        if (fields[i].chat != q->chat || v == NULL || json_is_null(v) ||
            (json_is_string(v) && json_string_length(v) == 0) ||
            (json_is_array(v) && json_array_size(v) == 0))
            continue;
        pc_http_reply_error(reply, 400, "field \"%s\" is %s", fields[i].field, fields[i].why);
        return -1;
    }
    return 0;
}

/* Every top-level field of each route. The other route's fields are listed too: check_other_route
 * has refused them already when they carry anything, with where they belong. */
static const char *const generate_fields[] = {
    "model", "prompt",   "suffix",       "system",   "template", "context",     "stream",
    "raw",   "format",   "keep_alive",   "images",   "options",  "think",       "truncate",
    "shift", "logprobs", "top_logprobs", "messages", "tools",    "tool_choice",
};
static const char *const chat_fields[] = {
    "model",   "messages", "stream",   "format",   "keep_alive", "tools",    "tool_choice",
    "options", "think",    "raw",      "truncate", "shift",      "logprobs", "top_logprobs",
    "prompt",  "system",   "template", "context",  "suffix",     "images",
};

static int check_fields(struct ollama_req *q, struct pc_http_reply *reply)
{
    return q->chat ? pc_req_known_fields(q->json, chat_fields,
                                         sizeof(chat_fields) / sizeof(chat_fields[0]), "/api/chat",
                                         reply)
                   : pc_req_known_fields(q->json, generate_fields,
                                         sizeof(generate_fields) / sizeof(generate_fields[0]),
                                         "/api/generate", reply);
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
    q->truncate = true; /* Ollama's defaults */
    q->shift = true;
    q->top_logprobs = -1;
    q->json = pc_req_parse_object(req, reply);
    if (q->json == NULL)
        goto fail;
    if (pc_req_model(q->json, &q->model, reply) != 0)
        goto fail;
    if (pc_req_bool(q->json, "stream", &q->stream, reply) != 0 ||
        pc_req_bool(q->json, "raw", &q->raw, reply) != 0 ||
        pc_req_bool(q->json, "truncate", &q->truncate, reply) != 0 ||
        pc_req_bool(q->json, "shift", &q->shift, reply) != 0 || check_other_route(q, reply) != 0 ||
        check_fields(q, reply) != 0 ||
        (!chat && (pc_req_string(q->json, "prompt", &q->prompt, reply) != 0 ||
                   pc_req_string(q->json, "system", &q->system, reply) != 0 ||
                   pc_req_string(q->json, "suffix", &q->suffix, reply) != 0)) ||
        pc_genopts_keep_alive(q->json, &q->keep_alive_ns, reply) != 0 ||
        parse_options(q, &req->srv->cfg.pool.model_params, reply) != 0 ||
        parse_format(q, reply) != 0 ||
        pc_chatreq_think(&q->conv, json_object_get(q->json, "think"), reply) != 0 ||
        parse_logprobs(q, reply) != 0 ||
        (!chat && (parse_context(q, reply) != 0 || check_template(q, reply) != 0)) ||
        (chat && parse_messages(q, reply) != 0) || check_images(q, reply) != 0)
        goto fail;
    return q;
fail:
    ollama_req_free(q);
    return NULL;
}

/* ---- replies ------------------------------------------------------------------------------ */

/* Calls first .. first + n - 1 of the answer, as Ollama gives them: arguments as an object. */
static json_t *tool_calls_json(const struct ollama_req *q, size_t first, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = first; arr != NULL && i < first + n; i++) {
        struct pc_chat_tool_call c = pc_chatreq_call(&q->conv, i);
        json_t *args = json_loads(c.arguments, JSON_DECODE_ANY, NULL);
        json_array_append_new(arr, json_pack("{s:s, s:{s:i, s:s, s:o}}", "id", c.id, "function",
                                             "index", (int)i, "name", c.name, "arguments",
                                             args ? args : json_string(c.arguments)));
    }
    return arr;
}

/* A chunk (or the whole answer) with what nw brought: text, thinking, tool calls. */
static json_t *chunk_base(const struct ollama_req *q, const struct pc_chat_news *nw, bool done)
{
    char ts[40];
    const char *text = nw->content ? nw->content : "";
    json_t *o =
        json_pack("{s:s, s:s}", "model", q->model, "created_at", pc_now_rfc3339(ts, sizeof(ts)));
    if (o == NULL)
        return NULL;
    json_t *msg = o;
    if (q->chat) {
        msg = json_pack("{s:s, s:s%}", "role", "assistant", "content", text, nw->content_len);
        json_object_set_new(o, "message", msg);
    } else {
        json_object_set_new(o, "response", json_stringn(text, nw->content_len));
    }
    if (msg != NULL && nw->thinking_len > 0)
        json_object_set_new(msg, "thinking", json_stringn(nw->thinking, nw->thinking_len));
    if (msg != NULL && nw->n_calls > 0)
        json_object_set_new(msg, "tool_calls", tool_calls_json(q, nw->first_call, nw->n_calls));
    json_object_set_new(o, "done", json_boolean(done));
    return o;
}

/* /api/generate's "context": prompt and answer tokens, to send back with the next prompt. */
static void add_context(json_t *o, const struct pc_infer *inf)
{
    int32_t *toks = NULL;
    size_t n = 0;
    if (pc_infer_tokens(inf, &toks, &n, NULL) != PC_OK)
        return;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_integer(toks[i]));
    free(toks);
    json_object_set_new(o, "context", arr);
}

static void add_final_fields(json_t *o, const struct pc_infer *inf, const char *reason)
{
    /* No reason yet: the answer ended before the generation did (its one tool call is whole). */
    json_object_set_new(o, "done_reason", json_string(reason ? reason : "stop"));
    json_object_set_new(o, "total_duration", json_integer(pc_infer_elapsed_ns(inf)));
    json_object_set_new(o, "load_duration", json_integer(pc_infer_load_ns(inf)));
    const struct pc_gen_stats *st = pc_infer_stats(inf);
    if (st == NULL)
        return;
    json_object_set_new(o, "prompt_eval_count", json_integer(st->prompt_tokens));
    json_object_set_new(o, "prompt_eval_duration", json_integer(st->prompt_ns));
    /* Ollama's name; prompt_cached_count is precharge's older one, kept for one release. */
    json_object_set_new(o, "prompt_eval_cached_count", json_integer(st->cached_tokens));
    json_object_set_new(o, "prompt_cached_count", json_integer(st->cached_tokens));
    /* Where those came from when a snapshot was restored for them (precharge's own field, as
     * in a precharge's result): "ram", "disk", or "redis", the fleet's shared tier. */
    const char *tier = pc_infer_restored_from(inf);
    if (tier != NULL)
        json_object_set_new(o, "restored_from", json_string(tier));
    json_object_set_new(o, "eval_count", json_integer(st->eval_tokens));
    json_object_set_new(o, "eval_duration", json_integer(st->eval_ns));
    const struct ollama_req *q = pc_infer_api(inf);
    if (!q->chat)
        add_context(o, inf);
    else if (q->dropped > 0) /* the conversation was over the context: say so */
        json_object_set_new(o, "truncated_messages", json_integer((json_int_t)q->dropped));
}

/* "logprobs" of the tokens this chunk brings, when they were asked for. */
static void add_logprobs(json_t *o, struct pc_infer *inf)
{
    json_t *arr = pc_infer_take_logprobs(inf);
    if (o != NULL && arr != NULL)
        json_object_set_new(o, "logprobs", arr);
    else
        json_decref(arr);
}

static bool append_line(struct pc_buf *out, json_t *o)
{
    return pc_append_json(out, "", o, "\n");
}

/* One streamed step: the next chunk with something in it, or the last one. */
static enum pc_stream_state stream_poll(void *ctx, struct pc_buf *out)
{
    struct pc_infer *inf = ctx;
    struct ollama_req *q = pc_infer_api(inf);
    const char *text;
    size_t len;
    bool done = false;
    struct pc_chat_news nw = {0};
    struct pc_error err = {0};
    while (!done && nw.content_len == 0 && nw.thinking_len == 0 && nw.n_calls == 0) {
        if (pc_infer_poll(inf, &text, &len, &done, &err) == PC_OK && len == 0 && !done)
            return PC_STREAM_WAIT; /* the loop wakes the stream when there is more */
        if (err.code != PC_OK || pc_chatreq_feed(&q->conv, text, len, done, &nw, &err) != PC_OK) {
            /* The status line went out with the first chunk: report in the stream. */
            append_line(out, json_pack("{s:s}", "error", err.msg));
            return PC_STREAM_END;
        }
        done = done || pc_chatreq_settled(&q->conv); /* the one call is whole: stop there */
    }
    json_t *o = chunk_base(q, &nw, done);
    add_logprobs(o, inf);
    if (done && o != NULL)
        add_final_fields(o, inf, pc_infer_done_reason(inf));
    append_line(out, o);
    return done ? PC_STREAM_END : PC_STREAM_MORE;
}

static void reply_whole(struct pc_infer *inf, struct pc_http_reply *reply)
{
    struct ollama_req *q = pc_infer_api(inf);
    struct pc_error err = {0};
    struct pc_chat_news nw;
    if (pc_chatreq_collect(&q->conv, inf, &q->full, &nw, &err) != PC_OK) {
        pc_http_reply_pc_error(reply, &err);
        return;
    }
    json_t *o = chunk_base(q, &nw, true);
    add_logprobs(o, inf);
    if (o != NULL)
        add_final_fields(o, inf, pc_infer_done_reason(inf));
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
    json_t *o = chunk_base(q, &(struct pc_chat_news){0}, true);
    if (o != NULL && inf != NULL)
        add_final_fields(o, inf, reason);
    else if (o != NULL)
        json_object_set_new(o, "done_reason", json_string(reason));
    pc_infer_close(inf);
    pc_reply_json_value(reply, 200, o);
}

/* /api/generate's prompt text: fill in the middle (suffix), raw, or the prompt and system
 * rendered through the template with the request's schema and thinking. *out is malloc'd.
 * (/api/chat renders and starts in pc_chatreq_start, which may truncate.) */
static enum pc_err generate_prompt(struct ollama_req *q, struct pc_model *m, char **out,
                                   struct pc_error *err)
{
    if (q->suffix != NULL && q->suffix[0] != '\0') {
        /* Fill in the middle: the model's own tokens around the prompt and the suffix, no
         * template, as Ollama's code templates do. A schema needs the template. */
        if (q->conv.in.json_schema != NULL)
            return pc_error_set(err, PC_ERR_INVALID,
                                "field \"format\": a JSON schema cannot be applied to a "
                                "fill-in-the-middle prompt (\"suffix\"); use \"json\"");
        return pc_model_fim_prompt(m, q->model, q->prompt ? q->prompt : "", q->suffix, out, err);
    }
    if (q->raw) {
        *out = strdup(q->prompt);
        return *out ? PC_OK : pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    }
    struct pc_chat_msg msgs[2];
    size_t n = 0;
    if (q->system != NULL && q->system[0] != '\0')
        msgs[n++] = (struct pc_chat_msg){.role = "system", .content = q->system};
    msgs[n++] = (struct pc_chat_msg){.role = "user", .content = q->prompt};
    q->conv.in.msgs = msgs;
    q->conv.in.n_msgs = n;
    enum pc_err rc = pc_chatreq_render(&q->conv, m, q->model, &q->opts, err);
    q->conv.in.msgs = NULL; /* msgs is gone when this returns */
    q->conv.in.n_msgs = 0;
    if (rc != PC_OK)
        return rc;
    *out = strdup(pc_chatreq_text(&q->conv));
    return *out ? PC_OK : pc_error_set(err, PC_ERR_NOMEM, "out of memory");
}

static void handle_inference(const struct pc_http_req *req, struct pc_http_reply *reply, bool chat)
{
    if (pc_server_remote_proxy(req, reply))
        return; /* the ollama provider's model */
    struct ollama_req *q = parse_request(req, chat, reply);
    if (q == NULL)
        return;
    bool empty = chat ? q->conv.in.n_msgs == 0
                      : (q->prompt == NULL || q->prompt[0] == '\0') &&
                            (q->suffix == NULL || q->suffix[0] == '\0');
    if (empty) {
        load_or_unload(req->srv, q, reply);
        ollama_req_free(q);
        return;
    }

    struct pc_error err = {0};
    struct pc_infer *inf = NULL;
    char *prompt = NULL;
    if (pc_infer_open(req->srv, q->model, q->keep_alive_ns, &inf, &err) == PC_OK) {
        pc_infer_set_context(inf, q->context, q->n_context);
        pc_infer_set_num_ctx(inf, q->opts.num_ctx);
        pc_infer_set_logprobs(inf, q->top_logprobs);
        /* A chat over the context drops turns (pc_chatreq_start) rather than tokens. */
        pc_infer_set_fit(inf, !chat && q->truncate, q->shift, q->opts.num_keep);
    }
    enum pc_err rc =
        inf == NULL ? err.code
        : chat ? pc_chatreq_start(&q->conv, inf, q->model, &q->opts, q->truncate, &q->dropped, &err)
               : generate_prompt(q, pc_infer_model(inf), &prompt, &err);
    if (rc == PC_OK && !chat)
        rc = pc_infer_start(inf, prompt, &q->opts.sampling, &err);
    if (rc != PC_OK) {
        free(prompt);
        pc_infer_close(inf);
        ollama_req_free(q);
        pc_http_reply_pc_error(reply, &err);
        return;
    }
    free(prompt);
    pc_infer_reply(inf, q, api_free, q->stream, "application/x-ndjson", stream_poll, reply_whole,
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

static json_t *details(const char *family, const char *parameter_size, const char *quantization)
{
    return json_pack("{s:s, s:s, s:[s], s:s, s:s}", "format", "gguf", "family", family, "families",
                     family, "parameter_size", parameter_size, "quantization_level", quantization);
}

/* The model's sha256 as Ollama gives it (bare hex), from the manifest; "" when it is not known
 * (a file put in the store by hand, not yet verified). */
static const char *digest_of(const struct pc_manifest *m, const char *name)
{
    const struct pc_manifest_entry *e = pc_manifest_find(m, name);
    if (e == NULL || strncmp(e->checksum, "sha256:", 7) != 0)
        return "";
    return e->checksum + 7;
}

/* Each model with its details from its GGUF header (read once per file: pc_gguf_details) and
 * its digest. */
static void handle_tags(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    struct pc_store_entry *list = NULL;
    size_t n = 0;
    struct pc_error err = {0};
    struct pc_manifest man = {0};
    if (pc_store_list(req->srv->cfg.models_dir, &list, &n, &err) != PC_OK) {
        pc_http_reply_pc_error(reply, &err);
        return;
    }
    if (pc_manifest_load(req->srv->cfg.models_dir, &man, &err) != PC_OK)
        pc_log_warn("api", "/api/tags: no digests: %s", err.msg);
    json_t *models = json_array();
    for (size_t i = 0; i < n; i++) {
        char ts[40], name[300];
        struct pc_gguf_details g = {0};
        /* A file that is not a GGUF is still listed (its use says what is wrong), bare. */
        struct pc_error gerr = {0};
        pc_gguf_details(list[i].path, &g, &gerr);
        pc_store_listed_name(list[i].name, name, sizeof(name));
        json_array_append_new(
            models,
            json_pack("{s:s, s:s, s:s, s:I, s:s, s:o}", "name", name, "model", name, "modified_at",
                      pc_clock_rfc3339(list[i].mtime_ns, ts, sizeof(ts)), "size",
                      (json_int_t)list[i].size, "digest", digest_of(&man, list[i].name), "details",
                      details(g.family, g.parameter_size, g.quantization)));
    }
    free(list);
    pc_manifest_free(&man);
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
    struct pc_manifest man = {0};
    struct pc_error err = {0};
    if (n > 0 && pc_manifest_load(req->srv->cfg.models_dir, &man, &err) != PC_OK)
        pc_log_warn("api", "/api/ps: no digests: %s", err.msg);
    json_t *models = json_array();
    for (size_t i = 0; i < n; i++) {
        char ts[40], name[300];
        const struct pc_model_info *in = &st[i].info;
        pc_store_listed_name(st[i].name, name, sizeof(name));
        json_t *m = json_pack(
            "{s:s, s:s, s:I, s:s, s:o, s:s, s:I, s:I}", "name", name, "model", name, "size",
            (json_int_t)st[i].memory_bytes, "digest", digest_of(&man, st[i].name), "details",
            details(in->arch, in->parameter_size, in->quantization), "expires_at",
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
    pc_manifest_free(&man);
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
    if (pc_ui_redirect_root(req, reply))
        return; /* a browser: the dashboard; curl and Ollama's clients get the text */
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
