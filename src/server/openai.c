/* openai.c - the OpenAI API: /v1/models, /v1/chat/completions and /v1/completions, with
 * OpenAI's object shapes, server-sent events for streams, and OpenAI's error object. */
#include "serverInt.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/clock.h"
#include "../store/store.h"
#include "chatreq.h"
#include "genopts.h"
#include "infer.h"
#include "openai_fields.h"
#include "openai_functions.h"

/* What one completion request asked for. */
struct openai_req {
    json_t *json; /* the parsed body; the strings below point into it */
    bool chat;
    bool stream;
    bool include_usage;
    int32_t top_logprobs; /* logprobs asked: alternatives per token; -1 none */
    size_t text_offset;   /* completions' logprobs: bytes of answer before the next token */
    const char *model;
    const char *prompt; /* completions: the first (or only) prompt */
    json_t *prompts;    /* completions: the array of several prompts, else NULL */
    const char *suffix; /* completions: fill in the middle before it; NULL: none */
    bool echo;          /* completions: each choice's text starts with its prompt */
    bool functions; /* chat: the deprecated "functions" asked: answer in function_call's shape */
    struct pc_chatreq conv; /* chat: messages, tools, tool_choice, response schema */
    struct pc_genopts opts;
    struct pc_logit_bias *bias; /* logit_bias, owned; opts.sampling points at it */
    size_t n_bias;
    int64_t keep_alive_ns;    /* Ollama's keep_alive, taken here too; -1: the default */
    const char *service_tier; /* echoed when asked for */
    char id[48];
    int64_t created; /* Unix seconds */
    /* streaming progress */
    bool sent_role, sent_finish, sent_usage, sent_echo;
    struct pc_buf full; /* the whole answer, when not streamed */
};

static void openai_req_free(struct openai_req *q)
{
    if (q == NULL)
        return;
    pc_chatreq_free(&q->conv);
    free(q->bias);
    json_decref(q->json);
    pc_buf_free(&q->full);
    free(q);
}

static void api_free(void *q)
{
    openai_req_free(q);
}

/* ---- errors ------------------------------------------------------------------------------- */

/* Rewrite the {"error": "..."} that the shared helpers made into OpenAI's error object with
 * param and code. */
static void openai_error(struct pc_http_reply *reply, const char *param, const char *code)
{
    json_t *old = reply->body ? json_loadb(reply->body, reply->body_len, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(old, "error"));
    const char *type = reply->status >= 500 ? "server_error" : "invalid_request_error";
    if (reply->status == 401)
        type = "authentication_error";
    json_t *o = json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", msg ? msg : "error",
                          "type", type, "param", param, "code", code);
    json_decref(old);
    free(reply->body);
    reply->body = NULL;
    reply->body_len = 0;
    pc_reply_json_value(reply, reply->status, o);
}

void pc_openai_error(struct pc_http_reply *reply, const char *param)
{
    bool model = param == NULL || strcmp(param, "model") == 0;
    openai_error(reply, param, reply->status == 404 && model ? "model_not_found" : NULL);
}

void pc_openai_refusal_shape(const char *path, struct pc_http_reply *reply)
{
    /* Only errors: a refusal may also be a preflight's 204. */
    if (reply->status >= 400 && (strcmp(path, "/v1") == 0 || strncmp(path, "/v1/", 4) == 0))
        openai_error(reply, NULL,
                     reply->status == 405   ? "method_not_allowed"
                     : reply->status == 404 ? "unknown_url"
                                            : NULL);
}

/* ---- request parsing ---------------------------------------------------------------------- */

/* "messages", and what goes with them: tools, tool_choice, parallel_tool_calls, and
 * reasoning_effort ("none" turns thinking off, a level turns it on). */
static int parse_messages(struct openai_req *q, struct pc_http_reply *reply, const char **param)
{
    json_t *arr = json_object_get(q->json, "messages");
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        pc_http_reply_error(reply, 400, "field \"messages\" must be a non-empty array");
        return -1;
    }
    /* The deprecated function-calling shape, in the tools form from here on. */
    int fn = pc_openai_functions_map(q->json, param, reply);
    if (fn < 0)
        return -1;
    q->functions = fn == 1;
    *param = "messages";
    /* OpenAI's message fields that have no place here: refused rather than dropped, so that
     * a conversation is never rendered without a part of itself. */
    static const char *const unsupported[][2] = {
        {"audio", "a previous audio answer cannot be replayed (no audio)"},
        {"refusal", "a refusal is not rendered; send its text as content"},
    };
    /* Any other message field is refused too, as OpenAI refuses a property it does not know. */
    static const char *const message_fields[] = {"role",       "content",      "name",
                                                 "tool_calls", "tool_call_id", "reasoning_content",
                                                 "audio",      "refusal"};
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *m = json_array_get(arr, i);
        const char *unknown =
            json_is_object(m)
                ? pc_req_unknown_field(m, message_fields,
                                       sizeof(message_fields) / sizeof(message_fields[0]))
                : NULL;
        if (unknown != NULL) {
            pc_http_reply_error(reply, 400,
                                "messages[%zu].%s is not a field of a message this server takes", i,
                                unknown);
            return -1;
        }
        for (size_t k = 0; k < sizeof(unsupported) / sizeof(unsupported[0]); k++) {
            json_t *v = json_object_get(m, unsupported[k][0]);
            if (v != NULL && !json_is_null(v)) {
                pc_http_reply_error(reply, 400, "messages[%zu].%s is not supported: %s", i,
                                    unsupported[k][0], unsupported[k][1]);
                return -1;
            }
        }
    }
    struct pc_chat_input *in = &q->conv.in;
    in->parallel_tool_calls = true; /* OpenAI's default */
    const char *effort = NULL;
    /* With the deprecated functions, their fields are what the client named. */
    if (pc_chatreq_messages(&q->conv, arr, PC_CHATREQ_OPENAI, reply) != 0 ||
        (*param = q->functions ? "functions" : "tools",
         pc_chatreq_tools(&q->conv, json_object_get(q->json, "tools"), reply)) != 0 ||
        (*param = q->functions ? "function_call" : "tool_choice",
         pc_chatreq_tool_choice(&q->conv, json_object_get(q->json, "tool_choice"), reply)) != 0 ||
        (*param = "parallel_tool_calls",
         pc_req_bool(q->json, "parallel_tool_calls", &in->parallel_tool_calls, reply)) != 0 ||
        (*param = "reasoning_effort", pc_req_string(q->json, "reasoning_effort", &effort, reply)) !=
            0)
        return -1;
    if (effort != NULL)
        in->think = strcmp(effort, "none") == 0 ? PC_THINK_OFF : PC_THINK_ON;
    return 0;
}

/* "prompt": a string, or an array of strings (LangChain's generate sends one), each answered
 * as its own choice. Token arrays are not taken. */
static int parse_prompt(struct openai_req *q, struct pc_http_reply *reply)
{
    json_t *v = json_object_get(q->json, "prompt");
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    for (size_t i = 0; i < n; i++) {
        if (!json_is_string(json_is_array(v) ? json_array_get(v, i) : v)) {
            pc_http_reply_error(reply, 400,
                                "field \"prompt\" must be a string or a non-empty array of "
                                "strings");
            return -1;
        }
    }
    if (n == 0) {
        pc_http_reply_error(reply, 400, "field \"prompt\" must not be an empty array");
        return -1;
    }
    q->prompt = json_string_value(json_is_array(v) ? json_array_get(v, 0) : v);
    q->prompts = n > 1 ? v : NULL;
    return 0;
}

/* response_format: {"type": "text"}, {"type": "json_object"} or {"type": "json_schema",
 * "json_schema": {"name", "schema", "strict"}} (the schema constrains the answer whether strict
 * or not). A schema needs the chat template: /v1/completions takes none. */
static int parse_response_format(struct openai_req *q, struct pc_http_reply *reply)
{
    json_t *v = json_object_get(q->json, "response_format");
    if (v == NULL || json_is_null(v))
        return 0;
    const char *type = json_string_value(json_object_get(v, "type"));
    if (type != NULL && strcmp(type, "text") == 0)
        return 0;
    if (type != NULL && strcmp(type, "json_object") == 0) {
        q->opts.sampling.json = true;
        return 0;
    }
    if (type == NULL || strcmp(type, "json_schema") != 0 || !q->chat) {
        pc_http_reply_error(reply, 400,
                            q->chat ? "response_format.type must be \"text\", \"json_object\" or "
                                      "\"json_schema\""
                                    : "response_format.type must be \"text\" or \"json_object\"");
        return -1;
    }
    json_t *schema = json_object_get(json_object_get(v, "json_schema"), "schema");
    if (!json_is_object(schema)) {
        pc_http_reply_error(reply, 400, "response_format.json_schema.schema must be an object");
        return -1;
    }
    q->conv.in.json_schema = pc_chatreq_own(&q->conv, json_dumps(schema, JSON_COMPACT));
    if (q->conv.in.json_schema == NULL) {
        pc_http_reply_error(reply, 500, "out of memory");
        return -1;
    }
    return 0;
}

#define F PC_GENOPT_FIELD
static const struct pc_genopts_field sampling_fields[] = {
    F("temperature", 0, 2, F32, sampling.temperature),
    F("top_p", 0, 1, F32, sampling.top_p),
    F("presence_penalty", -2, 2, F32, sampling.presence_penalty),
    F("frequency_penalty", -2, 2, F32, sampling.frequency_penalty),
    F("max_tokens", 0, 1e9, I32, sampling.num_predict),
    F("max_completion_tokens", 0, 1e9, I32, sampling.num_predict),
    /* llama-server's extensions of OpenAI's sampling, served as it serves them */
    F("top_k", 0, 1e9, I32, sampling.top_k),
    F("min_p", 0, 1, F32, sampling.min_p),
    F("repeat_penalty", 0, 100, F32, sampling.repeat_penalty),
    F("repeat_last_n", -1, 1e9, I32, sampling.repeat_last_n),
};
#undef F

/* llama-server's sampler options beyond those (typical_p, mirostat, ...: genopts.h). */
static const char *const sampler_options[] = {"typical_p",    "mirostat", "mirostat_tau",
                                              "mirostat_eta", "tfs_z",    "penalize_newline"};

/* The fields each route takes; any other is refused (pc_openai_known_fields). */
static const char *const common_fields[] = {
    "model", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature",
    "top_p", "presence_penalty", "frequency_penalty", "seed", "stop", "n", "logprobs",
    "response_format", "logit_bias", "user", "safety_identifier", "prompt_cache_key", "keep_alive",
    "top_k", "min_p", "repeat_penalty", "repeat_last_n", "typical_p", "mirostat", "mirostat_tau",
    "mirostat_eta", "tfs_z", "penalize_newline",
    /* the chat's own; /v1/completions refuses them by name (parse_extras) */
    "messages", "tools", "tool_choice", "parallel_tool_calls", "reasoning_effort"};
static const char *const chat_fields[] = {
    "top_logprobs", "functions",          "function_call", "store",
    "metadata",     "service_tier",       "modalities",    "audio",
    "prediction",   "web_search_options", "verbosity"};
static const char *const completion_fields[] = {"prompt", "suffix", "echo", "best_of"};

static int check_known(struct openai_req *q, struct pc_http_reply *reply, const char **param)
{
    const char *const *own = q->chat ? chat_fields : completion_fields;
    size_t n_common = sizeof(common_fields) / sizeof(common_fields[0]);
    size_t n_own = q->chat ? sizeof(chat_fields) / sizeof(chat_fields[0])
                           : sizeof(completion_fields) / sizeof(completion_fields[0]);
    const char *all[sizeof(common_fields) / sizeof(common_fields[0]) +
                    sizeof(chat_fields) / sizeof(chat_fields[0])];
    memcpy(all, common_fields, sizeof(common_fields));
    memcpy(all + n_common, own, n_own * sizeof(*own));
    return pc_openai_known_fields(q->json, all, n_common + n_own,
                                  q->chat ? "/v1/chat/completions" : "/v1/completions", param,
                                  reply);
}

/* The sampling parameters; on a 400 *param names the field, as OpenAI's error does. */
static int parse_sampling(struct openai_req *q, struct pc_http_reply *reply, const char **param)
{
    struct pc_sampling *s = &q->opts.sampling;
    /* OpenAI's own defaults where it has them: no top-p cut, no repeat penalty. */
    s->temperature = 1.0f;
    s->top_p = 1.0f;
    s->top_k = 0;
    s->repeat_penalty = 1.0f;
    /* One field at a time, so that the one refused is known. */
    for (size_t i = 0; i < sizeof(sampling_fields) / sizeof(sampling_fields[0]); i++) {
        *param = sampling_fields[i].name;
        if (pc_genopts_fields(q->json, "", &sampling_fields[i], 1, &q->opts, reply) != 0)
            return -1;
    }
    for (size_t i = 0; i < sizeof(sampler_options) / sizeof(sampler_options[0]); i++) {
        json_t *v = json_object_get(q->json, sampler_options[i]);
        if (v == NULL)
            continue;
        /* One at a time, so that the one refused is param. */
        json_t *one = json_pack("{s:O}", sampler_options[i], v);
        *param = sampler_options[i];
        int rc = pc_genopts_sampler_options(one, "", &q->opts, reply);
        json_decref(one);
        if (rc != 0)
            return -1;
    }
    *param = "n";
    json_t *n = json_object_get(q->json, "n");
    if (n != NULL && !json_is_null(n) && !(json_is_number(n) && json_number_value(n) == 1)) {
        pc_http_reply_error(reply, 400, "n must be 1: one answer per request is supported");
        return -1;
    }
    json_t *last_n = json_object_get(q->json, "repeat_last_n");
    if ((s->presence_penalty != 0 || s->frequency_penalty != 0) &&
        (last_n == NULL || json_is_null(last_n)))
        s->repeat_last_n = -1; /* OpenAI's penalties count the whole answer */
    *param = "seed";
    if (pc_genopts_seed(q->json, "", &q->opts, reply) != 0)
        return -1;
    *param = "stop";
    return pc_genopts_stops(q->json, "", &q->opts, reply);
}

/* Chat: "logprobs" true with "top_logprobs" 0..20 (which needs logprobs, as in OpenAI).
 * Completions: "logprobs" an integer 0..5, the alternatives per token. *param names the
 * field refused. */
static int parse_logprobs(struct openai_req *q, struct pc_http_reply *reply, const char **param)
{
    q->top_logprobs = -1;
    json_t *v = json_object_get(q->json, "logprobs");
    *param = "logprobs";
    if (!q->chat) {
        double n = -1;
        if (pc_genopts_number(q->json, "", "logprobs", 0, 5, &n, reply) != 0)
            return -1;
        q->top_logprobs = (int32_t)n;
        return 0;
    }
    bool on = false;
    double top = 0;
    if (pc_req_bool(q->json, "logprobs", &on, reply) != 0)
        return -1;
    *param = "top_logprobs";
    json_t *t = json_object_get(q->json, "top_logprobs");
    if (pc_genopts_number(q->json, "", "top_logprobs", 0, PC_TOP_LOGPROBS_MAX, &top, reply) != 0)
        return -1;
    if (t != NULL && !json_is_null(t) && !on) {
        pc_http_reply_error(reply, 400, "field \"top_logprobs\" needs \"logprobs\": true");
        return -1;
    }
    (void)v;
    q->top_logprobs = on ? (int32_t)top : -1;
    return 0;
}

static int parse_stream(struct openai_req *q, struct pc_http_reply *reply, const char **param)
{
    *param = "stream";
    if (pc_req_bool(q->json, "stream", &q->stream, reply) != 0)
        return -1;
    *param = "stream_options";
    json_t *so = json_object_get(q->json, "stream_options");
    if (so == NULL || json_is_null(so))
        return 0;
    if (!json_is_object(so)) {
        pc_http_reply_error(reply, 400, "field \"stream_options\" must be an object");
        return -1;
    }
    /* include_obfuscation pads streamed deltas against length side channels on the network;
     * it is type-checked and sends no padding. Any other key is refused. */
    bool obfuscation = false;
    const char *key;
    json_t *v;
    json_object_foreach(so, key, v)
    {
        if (strcmp(key, "include_usage") != 0 && strcmp(key, "include_obfuscation") != 0) {
            pc_http_reply_error(reply, 400, "stream_options.%s is not supported", key);
            return -1;
        }
    }
    return pc_req_bool(so, "include_usage", &q->include_usage, reply) != 0 ||
                   pc_req_bool(so, "include_obfuscation", &obfuscation, reply) != 0
               ? -1
               : 0;
}

/* /v1/completions' own fields: suffix (fill in the middle, through the model's FIM tokens),
 * echo (not with logprobs: the prompt's own log-probabilities are not computed), best_of (one
 * answer: 1, which is n). */
static int parse_completion_fields(struct openai_req *q, struct pc_http_reply *reply,
                                   const char **param)
{
    *param = "suffix";
    if (pc_req_string(q->json, "suffix", &q->suffix, reply) != 0)
        return -1;
    if (q->suffix != NULL && q->suffix[0] == '\0')
        q->suffix = NULL; /* no suffix, as Ollama takes "" */
    *param = "echo";
    if (pc_req_bool(q->json, "echo", &q->echo, reply) != 0)
        return -1;
    if (q->echo && q->top_logprobs >= 0) {
        pc_http_reply_error(reply, 400,
                            "field \"echo\" with \"logprobs\": the prompt's log-probabilities "
                            "are not computed; ask for one or the other");
        return -1;
    }
    *param = "best_of";
    double best_of = 1;
    if (pc_genopts_number(q->json, "", "best_of", 0, 20, &best_of, reply) != 0)
        return -1;
    if (best_of != 1) {
        pc_http_reply_error(reply, 400,
                            "best_of must be 1, which is n: one answer per request is generated");
        return -1;
    }
    return 0;
}

/* Fields beside the sampling numbers: identifiers, logit_bias, keep_alive, the chat's fields
 * for features precharge does not have; and on /v1/completions the chat's own fields, which a
 * prompt cannot use. */
static int parse_extras(struct openai_req *q, struct pc_http_reply *reply, const char **param)
{
    static const char *const chat_only[] = {"messages", "tools", "tool_choice",
                                            "parallel_tool_calls", "reasoning_effort"};
    for (size_t i = 0; !q->chat && i < sizeof(chat_only) / sizeof(chat_only[0]); i++) {
        json_t *v = json_object_get(q->json, chat_only[i]);
        if (v != NULL && !json_is_null(v)) {
            *param = chat_only[i];
            pc_http_reply_error(reply, 400,
                                "field \"%s\" belongs to /v1/chat/completions; /v1/completions "
                                "completes a prompt",
                                chat_only[i]);
            return -1;
        }
    }
    if (pc_openai_identifiers(q->json, param, reply) != 0)
        return -1;
    *param = "logit_bias";
    if (pc_openai_logit_bias(q->json, &q->bias, &q->n_bias, reply) != 0)
        return -1;
    q->opts.sampling.logit_bias = q->bias;
    q->opts.sampling.n_logit_bias = q->n_bias;
    *param = "keep_alive";
    if (pc_genopts_keep_alive(q->json, &q->keep_alive_ns, reply) != 0)
        return -1;
    return q->chat ? pc_openai_chat_features(q->json, &q->service_tier, param, reply) : 0;
}

/* On failure *body is the parsed body (or NULL), which *param may point into (an unknown
 * field's name): the caller frees it once the error is written. */
static struct openai_req *parse_request(const struct pc_http_req *req, bool chat,
                                        struct pc_http_reply *reply, const char **param,
                                        json_t **body)
{
    *body = NULL;
    struct openai_req *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        pc_http_reply_error(reply, 500, "out of memory");
        return NULL;
    }
    q->chat = chat;
    pc_genopts_init(&q->opts);
    q->json = pc_req_parse_object(req, reply);
    if (q->json == NULL)
        goto fail;
    if (check_known(q, reply, param) != 0)
        goto fail;
    *param = "model";
    if (pc_req_model(q->json, &q->model, reply) != 0)
        goto fail;
    *param = chat ? "messages" : "prompt";
    if (chat ? parse_messages(q, reply, param) != 0 : parse_prompt(q, reply) != 0)
        goto fail;
    if (parse_stream(q, reply, param) != 0 || parse_sampling(q, reply, param) != 0 ||
        parse_logprobs(q, reply, param) != 0 ||
        (*param = "response_format", parse_response_format(q, reply)) != 0 ||
        parse_extras(q, reply, param) != 0 ||
        (!chat && parse_completion_fields(q, reply, param) != 0))
        goto fail;
    *param = NULL;
    if (q->prompts != NULL && q->stream) {
        /* Each prompt is its own generation, one after the other: a stream would wait on the
         * later ones while holding the HTTP layer's thread. */
        *param = "stream";
        pc_http_reply_error(reply, 400,
                            "field \"stream\": an array of several prompts is answered whole; "
                            "stream one prompt per request instead");
        goto fail;
    }
    char uuid[37];
    pc_uuid(uuid);
    size_t k = (size_t)snprintf(q->id, sizeof(q->id), "%s-", chat ? "chatcmpl" : "cmpl");
    for (const char *c = uuid; *c != '\0' && k + 1 < sizeof(q->id); c++)
        if (*c != '-')
            q->id[k++] = *c;
    q->id[k] = '\0';
    q->created = (int64_t)time(NULL);
    pc_openai_log_identifiers(q->json, chat ? "/v1/chat/completions" : "/v1/completions", q->id);
    return q;
fail:
    *body = q->json;
    q->json = NULL;
    openai_req_free(q);
    return NULL;
}

/* ---- replies ------------------------------------------------------------------------------ */

/* OpenAI's finish_reason for a generation that ended with done_reason and made n_calls calls. */
static const char *finish_of(const char *done_reason, size_t n_calls)
{
    if (n_calls > 0)
        return "tool_calls";
    return done_reason != NULL && strcmp(done_reason, "length") == 0 ? "length" : "stop";
}

static const char *finish_reason(const struct pc_infer *inf)
{
    const struct openai_req *q = pc_infer_api(inf);
    size_t n_calls = pc_chatreq_n_calls(&q->conv);
    return q->functions && n_calls > 0 ? "function_call"
                                       : finish_of(pc_infer_done_reason(inf), n_calls);
}

/* The deprecated shape's one call: {"name", "arguments"}. */
static json_t *function_call_json(const struct openai_req *q)
{
    struct pc_chat_tool_call c = pc_chatreq_call(&q->conv, 0);
    return json_pack("{s:s, s:s}", "name", c.name, "arguments", c.arguments);
}

/* Calls first .. first + n - 1 in OpenAI's shape: arguments as JSON text; index when streamed. */
static json_t *tool_calls_json(const struct openai_req *q, size_t first, size_t n, bool stream)
{
    json_t *arr = json_array();
    for (size_t i = first; arr != NULL && i < first + n; i++) {
        struct pc_chat_tool_call c = pc_chatreq_call(&q->conv, i);
        json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", c.id, "type", "function",
                              "function", "name", c.name, "arguments", c.arguments);
        if (o != NULL && stream)
            json_object_set_new(o, "index", json_integer((json_int_t)i));
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *usage_of(const struct pc_gen_stats *st)
{
    return json_pack("{s:i, s:i, s:i, s:{s:i}}", "prompt_tokens", st->prompt_tokens,
                     "completion_tokens", st->eval_tokens, "total_tokens",
                     st->prompt_tokens + st->eval_tokens, "prompt_tokens_details", "cached_tokens",
                     st->cached_tokens);
}

static json_t *usage(const struct pc_infer *inf)
{
    return usage_of(pc_infer_stats(inf));
}

static json_t *envelope(const struct openai_req *q, const char *object)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:s*}", "id", q->id, "object", object, "created",
                     (json_int_t)q->created, "model", q->model, "system_fingerprint",
                     "precharge-" PC_VERSION, "service_tier", q->service_tier);
}

/* After the model is open: the biased tokens are in its vocabulary (a 400 naming logit_bias:
 * *param). */
static enum pc_err check_bias(const struct openai_req *q, struct pc_infer *inf, const char **param,
                              struct pc_error *err)
{
    const struct pc_model_info *mi = pc_model_info(pc_infer_model(inf));
    enum pc_err rc = pc_openai_logit_bias_check(q->bias, q->n_bias, mi->n_vocab, err);
    if (rc != PC_OK)
        *param = "logit_bias";
    return rc;
}

/* choice.logprobs of the tokens read since the last call: chat's {"content": [...]}, or the
 * legacy completions shape (tokens, token_logprobs, top_logprobs as {token: logprob},
 * text_offset); null when not asked for. */
static json_t *choice_logprobs(struct openai_req *q, struct pc_infer *inf)
{
    json_t *arr = pc_infer_take_logprobs(inf);
    if (arr == NULL)
        return json_null();
    if (q->chat)
        return json_pack("{s:o}", "content", arr);
    json_t *toks = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    size_t i, k;
    json_t *e, *a;
    json_array_foreach(arr, i, e)
    {
        json_array_append(toks, json_object_get(e, "token"));
        json_array_append(lps, json_object_get(e, "logprob"));
        json_t *top = json_object();
        json_array_foreach(json_object_get(e, "top_logprobs"), k, a) json_object_set(
            top, json_string_value(json_object_get(a, "token")), json_object_get(a, "logprob"));
        json_array_append_new(tops, top);
        json_array_append_new(offs, json_integer((json_int_t)q->text_offset));
        q->text_offset += json_array_size(json_object_get(e, "bytes"));
    }
    json_decref(arr);
    return json_pack("{s:o, s:o, s:o, s:o}", "tokens", toks, "token_logprobs", lps, "top_logprobs",
                     tops, "text_offset", offs);
}

/* Set the one choice's logprobs in a chunk or reply o. */
static void set_logprobs(json_t *o, struct openai_req *q, struct pc_infer *inf)
{
    json_t *choice = json_array_get(json_object_get(o, "choices"), 0);
    json_t *lp = choice_logprobs(q, inf);
    if (choice != NULL)
        json_object_set_new(choice, "logprobs", lp);
    else
        json_decref(lp);
}

/* One streamed choice: a delta (chat: content, reasoning, whole tool calls) or text
 * (completions); finish is NULL until the end. */
static json_t *stream_chunk(struct openai_req *q, const struct pc_chat_news *nw, const char *finish)
{
    const char *text = nw->content ? nw->content : "";
    size_t len = nw->content_len;
    json_t *o = envelope(q, q->chat ? "chat.completion.chunk" : "text_completion");
    json_t *choice = json_pack("{s:i, s:s?}", "index", 0, "finish_reason", finish);
    if (o == NULL || choice == NULL) {
        json_decref(o);
        json_decref(choice);
        return NULL;
    }
    if (json_object_get(choice, "finish_reason") == NULL)
        json_object_set_new(choice, "finish_reason", json_null());
    if (q->chat) {
        json_t *delta = json_object();
        if (!q->sent_role)
            json_object_set_new(delta, "role", json_string("assistant"));
        if (len > 0 || !q->sent_role)
            json_object_set_new(delta, "content", json_stringn(text, len));
        if (nw->thinking_len > 0)
            json_object_set_new(delta, "reasoning_content",
                                json_stringn(nw->thinking, nw->thinking_len));
        if (nw->n_calls > 0 && q->functions && nw->first_call == 0)
            json_object_set_new(delta, "function_call", function_call_json(q));
        else if (nw->n_calls > 0 && !q->functions)
            json_object_set_new(delta, "tool_calls",
                                tool_calls_json(q, nw->first_call, nw->n_calls, true));
        q->sent_role = true;
        json_object_set_new(choice, "delta", delta);
    } else {
        json_object_set_new(choice, "text", json_stringn(text, len));
        json_object_set_new(choice, "logprobs", json_null());
    }
    json_object_set_new(o, "choices", json_pack("[o]", choice));
    return o;
}

static bool append_event(struct pc_buf *out, json_t *o)
{
    return pc_append_json(out, "data: ", o, "\n\n");
}

/* After the last token: the chunk with finish_reason, the usage chunk if asked, [DONE]. */
static enum pc_stream_state stream_end(struct pc_infer *inf, struct openai_req *q,
                                       struct pc_buf *out)
{
    json_t *last = stream_chunk(q, &(struct pc_chat_news){0}, finish_reason(inf));
    set_logprobs(last, q, inf);
    append_event(out, last);
    if (q->include_usage) {
        json_t *o = envelope(q, q->chat ? "chat.completion.chunk" : "text_completion");
        if (o != NULL) {
            json_object_set_new(o, "choices", json_array());
            json_object_set_new(o, "usage", usage(inf));
        }
        append_event(out, o);
    }
    pc_buf_appends(out, "data: [DONE]\n\n");
    return PC_STREAM_END;
}

static enum pc_stream_state stream_poll(void *ctx, struct pc_buf *out)
{
    struct pc_infer *inf = ctx;
    struct openai_req *q = pc_infer_api(inf);
    const char *text;
    size_t len;
    bool done = false;
    struct pc_chat_news nw = {0};
    struct pc_error err = {0};
    if (q->echo && !q->sent_echo) {
        /* echo: the prompt comes first, as its own chunk */
        q->sent_echo = true;
        struct pc_chat_news pr = {.content = q->prompt, .content_len = strlen(q->prompt)};
        if (pr.content_len > 0 && !append_event(out, stream_chunk(q, &pr, NULL)))
            return PC_STREAM_END;
    }
    while (!done && nw.content_len == 0 && nw.thinking_len == 0 && nw.n_calls == 0) {
        if (pc_infer_poll(inf, &text, &len, &done, &err) == PC_OK && len == 0 && !done)
            return PC_STREAM_WAIT; /* the loop wakes the stream when there is more */
        if (err.code != PC_OK || pc_chatreq_feed(&q->conv, text, len, done, &nw, &err) != PC_OK) {
            /* The status line is out: the error goes in the stream, as OpenAI's does. */
            append_event(out, json_pack("{s:{s:s, s:s}}", "error", "message", err.msg, "type",
                                        "server_error"));
            pc_buf_appends(out, "data: [DONE]\n\n");
            return PC_STREAM_END;
        }
        done = done || pc_chatreq_settled(&q->conv); /* the one call is whole: stop there */
    }
    if (nw.content_len > 0 || nw.thinking_len > 0 || nw.n_calls > 0) {
        json_t *chunk = stream_chunk(q, &nw, NULL);
        set_logprobs(chunk, q, inf);
        if (!append_event(out, chunk))
            return PC_STREAM_END;
    }
    return done ? stream_end(inf, q, out) : PC_STREAM_MORE;
}

/* The chat's message: content (null when the answer is only calls), reasoning, tool calls. */
static json_t *message_json(const struct openai_req *q, const struct pc_chat_news *nw)
{
    json_t *m = json_pack("{s:s}", "role", "assistant");
    if (m == NULL)
        return NULL;
    json_object_set_new(m, "content",
                        nw->content_len == 0 && nw->n_calls > 0
                            ? json_null()
                            : json_stringn(nw->content ? nw->content : "", nw->content_len));
    if (nw->thinking_len > 0)
        json_object_set_new(m, "reasoning_content", json_stringn(nw->thinking, nw->thinking_len));
    if (nw->n_calls > 0)
        json_object_set_new(m, q->functions ? "function_call" : "tool_calls",
                            q->functions ? function_call_json(q)
                                         : tool_calls_json(q, 0, nw->n_calls, false));
    return m;
}

/* The text that goes to the model for a completion's prompt: the prompt, or with a suffix the
 * model's fill-in-the-middle prompt around both (a 400 naming suffix for a model without FIM
 * tokens: *param). *out is malloc'd. */
static enum pc_err completion_prompt(const struct openai_req *q, struct pc_infer *inf,
                                     const char *prompt, char **out, const char **param,
                                     struct pc_error *err)
{
    if (q->suffix == NULL) {
        *out = strdup(prompt);
        return *out ? PC_OK : pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    }
    enum pc_err rc =
        pc_model_fim_prompt(pc_infer_model(inf), q->model, prompt, q->suffix, out, err);
    if (rc != PC_OK)
        *param = "suffix";
    return rc;
}

/* A completion's text as answered: with echo, its prompt first. NULL when out of memory. */
static json_t *completion_text(const struct openai_req *q, const char *prompt, const char *text,
                               size_t len)
{
    struct pc_buf b = PC_BUF_INIT;
    if ((q->echo && !pc_buf_appends(&b, prompt)) || !pc_buf_append(&b, text, len)) {
        pc_buf_free(&b);
        return NULL;
    }
    json_t *o = json_stringn(b.data ? b.data : "", b.len);
    pc_buf_free(&b);
    return o;
}

static void reply_whole(struct pc_infer *inf, struct pc_http_reply *reply)
{
    struct openai_req *q = pc_infer_api(inf);
    struct pc_error err = {0};
    struct pc_chat_news nw;
    if (pc_chatreq_collect(&q->conv, inf, &q->full, &nw, &err) != PC_OK) {
        pc_http_reply_pc_error(reply, &err);
        pc_openai_error(reply, NULL);
        return;
    }
    const char *text = q->full.data ? q->full.data : "";
    json_t *o = envelope(q, q->chat ? "chat.completion" : "text_completion");
    json_t *choice;
    if (q->chat)
        choice = json_pack("{s:i, s:o, s:n, s:s}", "index", 0, "message", message_json(q, &nw),
                           "logprobs", "finish_reason", finish_reason(inf));
    else
        choice = json_pack("{s:i, s:o, s:n, s:s}", "index", 0, "text",
                           completion_text(q, q->prompt, text, q->full.len), "logprobs",
                           "finish_reason", finish_reason(inf));
    if (o != NULL) {
        json_object_set_new(o, "choices", json_pack("[o]", choice));
        json_object_set_new(o, "usage", usage(inf));
        set_logprobs(o, q, inf);
    }
    pc_reply_json_value(reply, 200, o);
}

/* /v1/completions with several prompts: each generated in turn, as its own request, and
 * answered as choice i; usage counts them all. Not streamed (parse_request). */
static void reply_prompts(struct pc_server *srv, struct openai_req *q, struct pc_http_reply *reply)
{
    json_t *choices = json_array();
    const char *param = NULL;
    struct pc_gen_stats sum = {0};
    struct pc_error err = {0};
    enum pc_err rc = choices ? PC_OK : pc_error_set(&err, PC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; rc == PC_OK && i < json_array_size(q->prompts); i++) {
        struct pc_infer *inf = NULL;
        struct pc_buf text = PC_BUF_INIT;
        rc = pc_infer_open(srv, q->model, q->keep_alive_ns, &inf, &err);
        if (rc == PC_OK)
            rc = check_bias(q, inf, &param, &err);
        const char *p = json_string_value(json_array_get(q->prompts, i));
        char *text_in = NULL;
        if (rc == PC_OK)
            rc = completion_prompt(q, inf, p, &text_in, &param, &err);
        if (rc == PC_OK) {
            pc_infer_set_logprobs(inf, q->top_logprobs);
            rc = pc_infer_start(inf, text_in, &q->opts.sampling, &err);
        }
        free(text_in);
        if (rc == PC_OK)
            rc = pc_infer_collect(inf, &text, &err);
        if (rc == PC_OK) {
            const struct pc_gen_stats *st = pc_infer_stats(inf);
            sum.prompt_tokens += st->prompt_tokens;
            sum.cached_tokens += st->cached_tokens;
            sum.eval_tokens += st->eval_tokens;
            q->text_offset = 0;
            json_array_append_new(
                choices, json_pack("{s:I, s:o, s:o, s:s}", "index", (json_int_t)i, "text",
                                   completion_text(q, p, text.data ? text.data : "", text.len),
                                   "logprobs", choice_logprobs(q, inf), "finish_reason",
                                   finish_of(pc_infer_done_reason(inf), 0)));
        }
        pc_buf_free(&text);
        pc_infer_close(inf);
    }
    if (rc != PC_OK) {
        json_decref(choices);
        pc_http_reply_pc_error(reply, &err);
        pc_openai_error(reply, param                             ? param
                               : err.code == PC_ERR_NOT_FOUND    ? "model"
                               : err.code == PC_ERR_CTX_OVERFLOW ? "prompt"
                                                                 : NULL);
        return;
    }
    json_t *o = envelope(q, "text_completion");
    if (o != NULL) {
        json_object_set_new(o, "choices", choices);
        json_object_set_new(o, "usage", usage_of(&sum));
    } else {
        json_decref(choices);
    }
    pc_reply_json_value(reply, 200, o);
}

static void handle_completion(const struct pc_http_req *req, struct pc_http_reply *reply, bool chat)
{
    if (pc_server_remote_proxy(req, reply)) { /* the ollama provider's model: its own /v1 */
        if (!pc_http_reply_streams(reply))
            pc_openai_error(reply, NULL);
        return;
    }
    const char *param = NULL;
    json_t *body = NULL;
    struct openai_req *q = parse_request(req, chat, reply, &param, &body);
    if (q == NULL) {
        pc_openai_error(reply, param);
        json_decref(body);
        return;
    }
    if (q->prompts != NULL) {
        reply_prompts(req->srv, q, reply);
        openai_req_free(q);
        return;
    }
    struct pc_error err = {0};
    struct pc_infer *inf = NULL;
    char *prompt = NULL;
    enum pc_err rc = pc_infer_open(req->srv, q->model, q->keep_alive_ns, &inf, &err);
    if (rc == PC_OK)
        rc = check_bias(q, inf, &param, &err);
    /* Completions are plain text completion, as OpenAI's legacy endpoint is: no template. */
    if (rc == PC_OK && chat)
        rc = pc_chatreq_render(&q->conv, pc_infer_model(inf), q->model, &q->opts, &err);
    if (rc == PC_OK && chat && (prompt = strdup(pc_chatreq_text(&q->conv))) == NULL)
        rc = pc_error_set(&err, PC_ERR_NOMEM, "out of memory");
    if (rc == PC_OK && !chat)
        rc = completion_prompt(q, inf, q->prompt, &prompt, &param, &err);
    if (rc == PC_OK) {
        pc_infer_set_logprobs(inf, q->top_logprobs);
        rc = pc_infer_start(inf, prompt, &q->opts.sampling, &err);
    }
    free(prompt);
    if (rc != PC_OK) {
        pc_infer_close(inf);
        pc_http_reply_pc_error(reply, &err);
        pc_openai_error(reply, param                             ? param
                               : err.code == PC_ERR_NOT_FOUND    ? "model"
                               : err.code == PC_ERR_CTX_OVERFLOW ? (chat ? "messages" : "prompt")
                                                                 : NULL);
        openai_req_free(q);
        return;
    }
    pc_infer_reply(inf, q, api_free, q->stream, "text/event-stream", stream_poll, reply_whole,
                   reply);
}

static void handle_chat(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    handle_completion(req, reply, true);
}

static void handle_completions(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    handle_completion(req, reply, false);
}

/* ---- models ------------------------------------------------------------------------------- */

/* The id is the name /api/tags lists ("tiny:latest"), as in Ollama; "tiny" names it too. */
static json_t *model_object(const struct pc_store_entry *e)
{
    char id[300];
    pc_store_listed_name(e->name, id, sizeof(id));
    return json_pack("{s:s, s:s, s:I, s:s}", "id", id, "object", "model", "created",
                     (json_int_t)(e->mtime_ns / 1000000000), "owned_by", "library");
}

static void handle_models(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    struct pc_store_entry *list = NULL;
    size_t n = 0;
    struct pc_error err = {0};
    if (pc_store_list(req->srv->cfg.models_dir, &list, &n, &err) != PC_OK) {
        pc_http_reply_pc_error(reply, &err);
        pc_openai_error(reply, NULL);
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, model_object(&list[i]));
    free(list);
    pc_server_remote_openai_models(req->srv, data);
    pc_reply_json_value(reply, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

static void handle_model(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    struct pc_store_entry *list = NULL;
    size_t n = 0;
    struct pc_error err = {0};
    char norm[256];
    if (pc_store_name(req->params[0], norm, sizeof(norm), &err) != PC_OK ||
        pc_store_list(req->srv->cfg.models_dir, &list, &n, &err) != PC_OK) {
        pc_http_reply_pc_error(reply, &err);
        pc_openai_error(reply, "model");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].name, norm) == 0) {
            pc_reply_json_value(reply, 200, model_object(&list[i]));
            free(list);
            return;
        }
    }
    free(list);
    json_t *remote = pc_server_remote_openai_model(req->srv, req->params[0]);
    if (remote != NULL) {
        pc_reply_json_value(reply, 200, remote);
        return;
    }
    pc_http_reply_error(reply, 404, "model \"%s\" not found", req->params[0]);
    pc_openai_error(reply, "model");
}

const struct pc_http_route pc_openai_routes[] = {
    {"GET", "/v1/models", handle_models},
    {"GET", "/v1/models/{}", handle_model},
    {"POST", "/v1/chat/completions", handle_chat},
    {"POST", "/v1/completions", handle_completions},
    {NULL, NULL, NULL},
};
