/* responses.c - OpenAI's Responses API, POST /v1/responses: input as text or items, instructions,
 * sampling, text.format, function tools, previous_response_id from responses kept in memory
 * (unless store is false), usage with cached tokens, a reasoning item when the model thinks, and
 * streaming as typed events. A field it does not serve is a 400 naming it. */
#include "serverInt.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/clock.h"
#include "../precharge/events.h"
#include "chatreq.h"
#include "genopts.h"
#include "infer.h"
#include "openai_fields.h"

/* ---- responses kept for previous_response_id --------------------------------------------- */

/* Each response's conversation (chat messages in OpenAI's shape, without its instructions,
 * which OpenAI does not carry over), for an hour; past KEPT_MAX the oldest goes first. */
#define KEPT_MAX 256
#define KEPT_NS (3600LL * 1000000000LL)

struct kept {
    char id[48];
    int64_t at_ns;
    json_t *messages;
};

/* kept_lock guards kept and next_kept. */
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kept kept[KEPT_MAX];
static size_t next_kept;

/* Keep a copy of messages under id. */
static void keep(const char *id, json_t *messages)
{
    json_t *copy = json_deep_copy(messages);
    if (copy == NULL)
        return;
    pthread_mutex_lock(&kept_lock);
    struct kept *k = &kept[next_kept];
    next_kept = (next_kept + 1) % KEPT_MAX;
    json_decref(k->messages);
    snprintf(k->id, sizeof(k->id), "%s", id);
    k->at_ns = pc_clock_mono_ns();
    k->messages = copy;
    pthread_mutex_unlock(&kept_lock);
}

/* A copy of the conversation kept under id, or NULL when unknown or expired. */
static json_t *kept_messages(const char *id)
{
    json_t *out = NULL;
    pthread_mutex_lock(&kept_lock);
    for (size_t i = 0; i < KEPT_MAX && out == NULL; i++)
        if (kept[i].messages != NULL && strcmp(kept[i].id, id) == 0 &&
            pc_clock_mono_ns() - kept[i].at_ns < KEPT_NS)
            out = json_deep_copy(kept[i].messages);
    pthread_mutex_unlock(&kept_lock);
    return out;
}

/* ---- the request ------------------------------------------------------------------------- */

struct resp_req {
    json_t *json; /* the parsed body */
    const char *model;
    bool stream;
    json_t *history;  /* the conversation: previous response's, then input (chat messages) */
    json_t *messages; /* what is rendered: instructions first, then history */
    json_t *tools;    /* tools in the chat shape */
    struct pc_chatreq conv;
    struct pc_genopts opts;
    bool store; /* keep the conversation for a later previous_response_id (OpenAI's default) */
    char id[48], msg_id[48], rs_id[48];
    int64_t created;
    struct pc_buf full;     /* the answer's text */
    struct pc_buf thinking; /* the model's reasoning, when it thinks */
    /* streaming: the output items opened so far, in order (reasoning, message, calls) */
    bool started;
    int seq;
    int n_items;
    int rs_index, msg_index; /* -1 until opened */
    bool rs_done;
};

static void resp_req_free(struct resp_req *q)
{
    if (q == NULL)
        return;
    pc_chatreq_free(&q->conv);
    json_decref(q->json);
    json_decref(q->history);
    json_decref(q->messages);
    json_decref(q->tools);
    pc_buf_free(&q->full);
    pc_buf_free(&q->thinking);
    free(q);
}

static void api_free(void *q)
{
    resp_req_free(q);
}

static int bad(struct pc_http_reply *reply, const char **param, const char *field, const char *why)
{
    *param = field;
    pc_http_reply_error(reply, 400, "field \"%s\" %s", field, why);
    return -1;
}

/* Fields served; any other is refused by name. */
static const char *const known[] = {
    "model", "input",    "instructions",         "max_output_tokens",   "temperature",     "top_p",
    "text",  "tools",    "tool_choice",          "parallel_tool_calls", "stream",          "store",
    "user",  "metadata", "previous_response_id", "safety_identifier",   "prompt_cache_key"};

/* A message item's content: a string, or input_text/output_text parts (joined). */
static json_t *content_text(json_t *c, size_t i, struct pc_http_reply *reply, const char **param)
{
    if (json_is_string(c))
        return json_incref(c);
    if (!json_is_array(c)) {
        bad(reply, param, "input", "items' content must be a string or an array of parts");
        return NULL;
    }
    struct pc_buf b = PC_BUF_INIT;
    for (size_t k = 0; k < json_array_size(c); k++) {
        json_t *part = json_array_get(c, k);
        const char *type = json_string_value(json_object_get(part, "type"));
        const char *text = json_string_value(json_object_get(part, "text"));
        if (type == NULL || text == NULL ||
            (strcmp(type, "input_text") != 0 && strcmp(type, "output_text") != 0)) {
            pc_buf_free(&b);
            *param = "input";
            pc_http_reply_error(reply, 400,
                                "input[%zu].content[%zu]: only parts of type \"input_text\" and "
                                "\"output_text\" are supported (the local models read no images "
                                "or files)",
                                i, k);
            return NULL;
        }
        pc_buf_appends(&b, text);
    }
    json_t *s = json_stringn(b.data ? b.data : "", b.len);
    pc_buf_free(&b);
    return s;
}

/* One input item as a chat message: a message, a function_call (the assistant's call) or a
 * function_call_output (the tool's answer). */
static json_t *item_message(json_t *it, size_t i, struct pc_http_reply *reply, const char **param)
{
    const char *type = json_string_value(json_object_get(it, "type"));
    /* An item sent back from an earlier output carries its id and status: OpenAI uses the id
     * only to find stored items (item_reference) and reads no status from input. Here the
     * item's own content is what is rendered: both are type-checked, and not needed. */
    json_t *id = json_object_get(it, "id"), *status = json_object_get(it, "status");
    const char *st = json_string_value(status);
    if ((id != NULL && !json_is_null(id) && !json_is_string(id)) ||
        (status != NULL && !json_is_null(status) &&
         (st == NULL || (strcmp(st, "in_progress") != 0 && strcmp(st, "completed") != 0 &&
                         strcmp(st, "incomplete") != 0)))) {
        *param = "input";
        pc_http_reply_error(reply, 400,
                            "input[%zu]: id must be a string and status \"in_progress\", "
                            "\"completed\" or \"incomplete\"",
                            i);
        return NULL;
    }
    if (type == NULL || strcmp(type, "message") == 0) {
        const char *role = json_string_value(json_object_get(it, "role"));
        json_t *text = role ? content_text(json_object_get(it, "content"), i, reply, param) : NULL;
        if (role == NULL && text == NULL)
            bad(reply, param, "input", "items need a role");
        return text ? json_pack("{s:s, s:o}", "role", role, "content", text) : NULL;
    }
    if (strcmp(type, "function_call") == 0) {
        const char *id = json_string_value(json_object_get(it, "call_id"));
        const char *name = json_string_value(json_object_get(it, "name"));
        const char *args = json_string_value(json_object_get(it, "arguments"));
        if (id == NULL || name == NULL || args == NULL) {
            bad(reply, param, "input", "function_call items need call_id, name and arguments");
            return NULL;
        }
        return json_pack("{s:s, s:n, s:[{s:s, s:s, s:{s:s, s:s}}]}", "role", "assistant", "content",
                         "tool_calls", "id", id, "type", "function", "function", "name", name,
                         "arguments", args);
    }
    if (strcmp(type, "function_call_output") == 0) {
        const char *id = json_string_value(json_object_get(it, "call_id"));
        const char *out = json_string_value(json_object_get(it, "output"));
        if (id == NULL || out == NULL) {
            bad(reply, param, "input", "function_call_output items need call_id and output");
            return NULL;
        }
        return json_pack("{s:s, s:s, s:s}", "role", "tool", "tool_call_id", id, "content", out);
    }
    *param = "input";
    pc_http_reply_error(reply, 400, "input[%zu].type \"%s\" is not supported", i, type);
    return NULL;
}

/* A reasoning item sent back from an earlier output: its reasoning_text parts (or, without
 * them, its summary's summary_text parts), joined. NULL with a 400. */
static json_t *reasoning_of(json_t *it, size_t i, struct pc_http_reply *reply, const char **param)
{
    json_t *parts = json_object_get(it, "content");
    const char *want = "reasoning_text";
    if (parts == NULL || json_is_null(parts) || json_array_size(parts) == 0) {
        parts = json_object_get(it, "summary");
        want = "summary_text";
    }
    struct pc_buf b = PC_BUF_INIT;
    for (size_t k = 0; k < json_array_size(parts); k++) {
        json_t *part = json_array_get(parts, k);
        const char *type = json_string_value(json_object_get(part, "type"));
        const char *text = json_string_value(json_object_get(part, "text"));
        if (type == NULL || text == NULL || strcmp(type, want) != 0) {
            pc_buf_free(&b);
            *param = "input";
            pc_http_reply_error(reply, 400, "input[%zu]: a reasoning item's parts must be %s", i,
                                want);
            return NULL;
        }
        pc_buf_appends(&b, text);
    }
    json_t *s = json_stringn(b.data ? b.data : "", b.len);
    pc_buf_free(&b);
    return s;
}

/* An assistant turn that only thought (takes reasoning). */
static json_t *thought_only(json_t *reasoning)
{
    return json_pack("{s:s, s:s, s:o}", "role", "assistant", "content", "", "reasoning_content",
                     reasoning);
}

/* history: the previous response's conversation, then input (a string or items). A reasoning
 * item goes with the assistant message that follows it, as its reasoning (which the template
 * may drop from earlier turns, as it drops a chat's); with none after it, it was an answer
 * that only thought, and is rendered as such: an assistant turn with no text. */
static int parse_input(struct resp_req *q, struct pc_http_reply *reply, const char **param)
{
    const char *prev = NULL;
    *param = "previous_response_id";
    if (pc_req_string(q->json, "previous_response_id", &prev, reply) != 0)
        return -1;
    q->history = prev ? kept_messages(prev) : json_array();
    if (q->history == NULL) {
        pc_http_reply_error(reply, 404,
                            "previous response \"%s\" not found (responses are kept in memory "
                            "for an hour)",
                            prev);
        return -1;
    }
    json_t *in = json_object_get(q->json, "input");
    if (json_is_string(in))
        return json_array_append_new(q->history,
                                     json_pack("{s:s, s:O}", "role", "user", "content", in));
    if (!json_is_array(in) || json_array_size(in) == 0)
        return bad(reply, param, "input", "must be a string or a non-empty array of items");
    json_t *reasoning = NULL;
    for (size_t i = 0; i < json_array_size(in); i++) {
        json_t *it = json_array_get(in, i);
        const char *type = json_string_value(json_object_get(it, "type"));
        if (type != NULL && strcmp(type, "reasoning") == 0) {
            json_decref(reasoning);
            if ((reasoning = reasoning_of(it, i, reply, param)) == NULL)
                return -1;
            continue;
        }
        json_t *m = item_message(it, i, reply, param);
        if (m == NULL) {
            json_decref(reasoning);
            return -1;
        }
        const char *role = json_string_value(json_object_get(m, "role"));
        bool answer = role != NULL && strcmp(role, "assistant") == 0;
        if (reasoning != NULL && !answer)
            json_array_append_new(q->history, thought_only(reasoning));
        else if (reasoning != NULL)
            json_object_set_new(m, "reasoning_content", reasoning);
        reasoning = NULL;
        json_array_append_new(q->history, m);
    }
    if (reasoning != NULL)
        json_array_append_new(q->history, thought_only(reasoning));
    return 0;
}

/* tools: [{"type": "function", "name", "description", "parameters"}] (flat, unlike chat's). */
static int parse_tools(struct resp_req *q, struct pc_http_reply *reply, const char **param)
{
    json_t *tools = json_object_get(q->json, "tools");
    *param = "tools";
    if (tools == NULL || json_is_null(tools))
        return 0;
    if (!json_is_array(tools))
        return bad(reply, param, "tools", "must be an array");
    q->tools = json_array();
    for (size_t i = 0; i < json_array_size(tools); i++) {
        json_t *t = json_array_get(tools, i);
        const char *type = json_string_value(json_object_get(t, "type"));
        if (type == NULL || strcmp(type, "function") != 0) {
            pc_http_reply_error(reply, 400,
                                "tools[%zu].type \"%s\" is not supported: only \"function\"", i,
                                type ? type : "");
            return -1;
        }
        json_t *fn = json_deep_copy(t);
        json_object_del(fn, "type"); /* strict stays: chat's tools check it */
        json_array_append_new(q->tools,
                              json_pack("{s:s, s:o}", "type", "function", "function", fn));
    }
    if (pc_chatreq_tools(&q->conv, q->tools, reply) != 0)
        return -1;
    json_t *tc = json_object_get(q->json, "tool_choice");
    *param = "tool_choice";
    json_t *chat_tc = NULL;
    if (json_is_object(tc) && json_string_value(json_object_get(tc, "name")) != NULL)
        chat_tc = json_pack("{s:s, s:{s:O}}", "type", "function", "function", "name",
                            json_object_get(tc, "name"));
    int rc = pc_chatreq_tool_choice(&q->conv, chat_tc ? chat_tc : tc, reply);
    json_decref(chat_tc);
    return rc;
}

/* text.format: text, json_object, or json_schema ({"name", "schema", "strict"}). */
static int parse_text(struct resp_req *q, struct pc_http_reply *reply, const char **param)
{
    json_t *t = json_object_get(q->json, "text");
    json_t *f = json_object_get(t, "format");
    *param = "text";
    if (t != NULL && !json_is_null(t) && !json_is_object(t))
        return bad(reply, param, "text", "must be an object");
    if (pc_openai_verbosity(t, "text.", reply) != 0)
        return -1;
    if (f == NULL || json_is_null(f))
        return 0;
    const char *type = json_string_value(json_object_get(f, "type"));
    if (type != NULL && strcmp(type, "text") == 0)
        return 0;
    if (type != NULL && strcmp(type, "json_object") == 0) {
        q->opts.sampling.json = true;
        return 0;
    }
    json_t *schema = json_object_get(f, "schema");
    if (type == NULL || strcmp(type, "json_schema") != 0 || !json_is_object(schema))
        return bad(reply, param, "text.format",
                   "must be {\"type\": \"text\"}, {\"type\": \"json_object\"} or {\"type\": "
                   "\"json_schema\", \"schema\": {...}}");
    q->conv.in.json_schema = pc_chatreq_own(&q->conv, json_dumps(schema, JSON_COMPACT));
    return q->conv.in.json_schema ? 0 : bad(reply, param, "text.format", "(out of memory)");
}

#define F PC_GENOPT_FIELD
static const struct pc_genopts_field sampling_fields[] = {
    F("temperature", 0, 2, F32, sampling.temperature),
    F("top_p", 0, 1, F32, sampling.top_p),
    F("max_output_tokens", 1, 1e9, I32, sampling.num_predict),
};
#undef F

/* On failure *body is the parsed body (or NULL), which *param may point into: the caller frees
 * it once the error is written. */
static struct resp_req *parse_request(const struct pc_http_req *req, struct pc_http_reply *reply,
                                      const char **param, json_t **body)
{
    *body = NULL;
    struct resp_req *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        pc_http_reply_error(reply, 500, "out of memory");
        return NULL;
    }
    pc_genopts_init(&q->opts);
    struct pc_sampling *s = &q->opts.sampling;
    s->temperature = 1.0f; /* OpenAI's defaults */
    s->top_p = 1.0f;
    s->top_k = 0;
    s->repeat_penalty = 1.0f;
    q->store = true; /* OpenAI's default */
    const char *instructions = NULL;
    q->json = pc_req_parse_object(req, reply);
    if (q->json == NULL ||
        pc_openai_known_fields(q->json, known, sizeof(known) / sizeof(known[0]), "/v1/responses",
                               param, reply) != 0 ||
        (*param = "model", pc_req_model(q->json, &q->model, reply)) != 0 ||
        (*param = "stream", pc_req_bool(q->json, "stream", &q->stream, reply)) != 0 ||
        (*param = "store", pc_req_bool(q->json, "store", &q->store, reply)) != 0 ||
        pc_openai_identifiers(q->json, param, reply) != 0 ||
        (*param = "instructions", pc_req_string(q->json, "instructions", &instructions, reply)) !=
            0 ||
        parse_input(q, reply, param) != 0)
        goto fail;
    for (size_t i = 0; i < sizeof(sampling_fields) / sizeof(sampling_fields[0]); i++) {
        *param = sampling_fields[i].name;
        if (pc_genopts_fields(q->json, "", &sampling_fields[i], 1, &q->opts, reply) != 0)
            goto fail;
    }
    q->messages = json_array();
    if (instructions != NULL)
        json_array_append_new(q->messages,
                              json_pack("{s:s, s:s}", "role", "system", "content", instructions));
    json_array_extend(q->messages, q->history);
    q->conv.in.parallel_tool_calls = true;
    *param = "input";
    if (pc_chatreq_messages(&q->conv, q->messages, PC_CHATREQ_OPENAI, reply) != 0 ||
        parse_tools(q, reply, param) != 0 ||
        (*param = "parallel_tool_calls",
         pc_req_bool(q->json, "parallel_tool_calls", &q->conv.in.parallel_tool_calls, reply)) !=
            0 ||
        parse_text(q, reply, param) != 0)
        goto fail;
    char uuid[37];
    pc_uuid(uuid);
    size_t k = 0;
    for (const char *c = uuid; *c != '\0' && k < 32; c++)
        if (*c != '-')
            uuid[k++] = *c;
    uuid[k] = '\0';
    snprintf(q->id, sizeof(q->id), "resp_%s", uuid);
    snprintf(q->msg_id, sizeof(q->msg_id), "msg_%s", uuid);
    snprintf(q->rs_id, sizeof(q->rs_id), "rs_%s", uuid);
    q->created = (int64_t)time(NULL);
    q->rs_index = q->msg_index = -1;
    pc_openai_log_identifiers(q->json, "/v1/responses", q->id);
    *param = NULL;
    return q;
fail:
    *body = q->json;
    q->json = NULL;
    resp_req_free(q);
    return NULL;
}

/* ---- the response ------------------------------------------------------------------------ */

static json_t *message_item(const struct resp_req *q, const char *text, size_t len,
                            const char *status)
{
    json_t *content = json_array();
    if (text != NULL)
        json_array_append_new(content, json_pack("{s:s, s:s%, s:[]}", "type", "output_text", "text",
                                                 text, len, "annotations"));
    return json_pack("{s:s, s:s, s:s, s:s, s:o}", "type", "message", "id", q->msg_id, "status",
                     status, "role", "assistant", "content", content);
}

static json_t *call_item(const struct resp_req *q, size_t i)
{
    struct pc_chat_tool_call c = pc_chatreq_call(&q->conv, i);
    char id[64];
    snprintf(id, sizeof(id), "fc_%s_%zu", q->id + 5, i);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", "function_call", "id", id, "call_id",
                     c.id && c.id[0] ? c.id : id, "name", c.name, "arguments", c.arguments,
                     "status", "completed");
}

/* The model's thinking as OpenAI's reasoning item: its text as one reasoning_text part (no
 * summary is written, and nothing is encrypted: the text is the model's own). */
static json_t *reasoning_item(const struct resp_req *q, const char *status, bool with_text)
{
    json_t *content = json_array();
    if (with_text)
        json_array_append_new(content,
                              json_pack("{s:s, s:s%}", "type", "reasoning_text", "text",
                                        q->thinking.data ? q->thinking.data : "", q->thinking.len));
    return json_pack("{s:s, s:s, s:[], s:o, s:s}", "type", "reasoning", "id", q->rs_id, "summary",
                     "content", content, "status", status);
}

/* The output items: the reasoning when the model thought, the message (when it has text, or
 * there is no call), then each call. */
static json_t *output_items(const struct resp_req *q)
{
    json_t *out = json_array();
    size_t n = pc_chatreq_n_calls(&q->conv);
    if (q->thinking.len > 0)
        json_array_append_new(out, reasoning_item(q, "completed", true));
    if (q->full.len > 0 || n == 0)
        json_array_append_new(
            out, message_item(q, q->full.data ? q->full.data : "", q->full.len, "completed"));
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, call_item(q, i));
    return out;
}

/* The response object; inf NULL while it is only starting (no output, no usage yet). */
static json_t *response_json(const struct resp_req *q, struct pc_infer *inf, const char *status)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:I, s:s, s:s, s:o, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:b, s:n, s:o}",
        "id", q->id, "object", "response", "created_at", (json_int_t)q->created, "status", status,
        "model", q->model, "output", inf ? output_items(q) : json_array(), "instructions",
        json_object_get(q->json, "instructions"), "max_output_tokens",
        json_object_get(q->json, "max_output_tokens"), "temperature",
        json_object_get(q->json, "temperature"), "top_p", json_object_get(q->json, "top_p"),
        "previous_response_id", json_object_get(q->json, "previous_response_id"), "tools",
        json_object_get(q->json, "tools"), "metadata", json_object_get(q->json, "metadata"),
        "parallel_tool_calls", q->conv.in.parallel_tool_calls, "error", "incomplete_details",
        json_null());
    if (o != NULL) {
        json_object_set_new(o, "store", json_boolean(q->store));
        json_t *user = json_object_get(q->json, "user");
        json_object_set_new(o, "user", user != NULL ? json_incref(user) : json_null());
    }
    if (o == NULL || inf == NULL)
        return o;
    const char *reason = pc_infer_done_reason(inf);
    if (reason != NULL && strcmp(reason, "length") == 0) {
        json_object_set_new(o, "status", json_string("incomplete"));
        json_object_set_new(o, "incomplete_details",
                            json_pack("{s:s}", "reason", "max_output_tokens"));
    }
    const struct pc_gen_stats *st = pc_infer_stats(inf);
    if (st != NULL)
        json_object_set_new(o, "usage",
                            json_pack("{s:i, s:{s:i}, s:i, s:{s:i}, s:i}", "input_tokens",
                                      st->prompt_tokens, "input_tokens_details", "cached_tokens",
                                      st->cached_tokens, "output_tokens", st->eval_tokens,
                                      "output_tokens_details", "reasoning_tokens", 0,
                                      "total_tokens", st->prompt_tokens + st->eval_tokens));
    return o;
}

/* Keep the conversation with this answer, for a later previous_response_id. */
static void keep_conversation(struct resp_req *q)
{
    json_t *m = json_pack("{s:s, s:s%}", "role", "assistant", "content",
                          q->full.data ? q->full.data : "", q->full.len);
    size_t n = pc_chatreq_n_calls(&q->conv);
    if (m != NULL && n > 0) {
        json_t *calls = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *it = call_item(q, i);
            json_array_append_new(calls,
                                  json_pack("{s:O, s:s, s:{s:O, s:O}}", "id",
                                            json_object_get(it, "call_id"), "type", "function",
                                            "function", "name", json_object_get(it, "name"),
                                            "arguments", json_object_get(it, "arguments")));
            json_decref(it);
        }
        json_object_set_new(m, "tool_calls", calls);
    }
    json_array_append_new(q->history, m);
    if (q->store) /* store: false: not kept, so a later previous_response_id cannot find it */
        keep(q->id, q->history);
}

static void reply_whole(struct pc_infer *inf, struct pc_http_reply *reply)
{
    struct resp_req *q = pc_infer_api(inf);
    struct pc_error err = {0};
    struct pc_chat_news msg;
    struct pc_buf all = PC_BUF_INIT;
    if (pc_chatreq_collect(&q->conv, inf, &all, &msg, &err) != PC_OK) {
        pc_buf_free(&all);
        pc_http_reply_pc_error(reply, &err);
        pc_openai_error(reply, NULL);
        return;
    }
    pc_buf_append(&q->full, msg.content ? msg.content : "", msg.content_len);
    pc_buf_append(&q->thinking, msg.thinking ? msg.thinking : "", msg.thinking_len);
    pc_buf_free(&all);
    keep_conversation(q);
    pc_reply_json_value(reply, 200, response_json(q, inf, "completed"));
}

/* "event: type" and the data, with its sequence_number. */
static void event(struct resp_req *q, struct pc_buf *out, const char *type, json_t *o)
{
    if (o == NULL)
        return;
    json_object_set_new(o, "type", json_string(type));
    json_object_set_new(o, "sequence_number", json_integer(q->seq++));
    pc_buf_appends(out, "event: ");
    pc_buf_appends(out, type);
    pc_append_json(out, "\ndata: ", o, "\n\n");
}

static json_t *text_part(const char *text, size_t len)
{
    return json_pack("{s:s, s:s%, s:[]}", "type", "output_text", "text", text, len, "annotations");
}

/* Open the reasoning item (the model began to think before any answer). */
static void open_reasoning(struct resp_req *q, struct pc_buf *out)
{
    q->rs_index = q->n_items++;
    event(q, out, "response.output_item.added",
          json_pack("{s:i, s:o}", "output_index", q->rs_index, "item",
                    reasoning_item(q, "in_progress", false)));
}

/* Close the reasoning item, if open: its whole text, then the item. */
static void close_reasoning(struct resp_req *q, struct pc_buf *out)
{
    if (q->rs_index < 0 || q->rs_done)
        return;
    q->rs_done = true;
    event(q, out, "response.reasoning_text.done",
          json_pack("{s:s, s:i, s:i, s:s%}", "item_id", q->rs_id, "output_index", q->rs_index,
                    "content_index", 0, "text", q->thinking.data ? q->thinking.data : "",
                    q->thinking.len));
    event(q, out, "response.output_item.done",
          json_pack("{s:i, s:o}", "output_index", q->rs_index, "item",
                    reasoning_item(q, "completed", true)));
}

/* Open the message item and its text part (after any reasoning, which it closes). */
static void open_message(struct resp_req *q, struct pc_buf *out)
{
    close_reasoning(q, out);
    q->msg_index = q->n_items++;
    event(q, out, "response.output_item.added",
          json_pack("{s:i, s:o}", "output_index", q->msg_index, "item",
                    message_item(q, NULL, 0, "in_progress")));
    event(q, out, "response.content_part.added",
          json_pack("{s:s, s:i, s:i, s:o}", "item_id", q->msg_id, "output_index", q->msg_index,
                    "content_index", 0, "part", text_part("", 0)));
}

/* The end: the items still open are closed (the message is opened first when the answer has
 * no call, as the whole reply has it), then each call, then response.completed. */
static enum pc_stream_state stream_end(struct resp_req *q, struct pc_infer *inf, struct pc_buf *out)
{
    size_t n_calls = pc_chatreq_n_calls(&q->conv);
    close_reasoning(q, out);
    if (q->msg_index < 0 && n_calls == 0)
        open_message(q, out);
    if (q->msg_index >= 0) {
        const char *full = q->full.data ? q->full.data : "";
        event(q, out, "response.output_text.done",
              json_pack("{s:s, s:i, s:i, s:s%, s:[]}", "item_id", q->msg_id, "output_index",
                        q->msg_index, "content_index", 0, "text", full, q->full.len, "logprobs"));
        event(q, out, "response.content_part.done",
              json_pack("{s:s, s:i, s:i, s:o}", "item_id", q->msg_id, "output_index", q->msg_index,
                        "content_index", 0, "part", text_part(full, q->full.len)));
        event(q, out, "response.output_item.done",
              json_pack("{s:i, s:o}", "output_index", q->msg_index, "item",
                        message_item(q, full, q->full.len, "completed")));
    }
    for (size_t i = 0; i < n_calls; i++) {
        int at = q->n_items++;
        event(q, out, "response.output_item.added",
              json_pack("{s:i, s:o}", "output_index", at, "item", call_item(q, i)));
        event(q, out, "response.output_item.done",
              json_pack("{s:i, s:o}", "output_index", at, "item", call_item(q, i)));
    }
    keep_conversation(q);
    event(q, out, "response.completed",
          json_pack("{s:o}", "response", response_json(q, inf, "completed")));
    return PC_STREAM_END;
}

static enum pc_stream_state stream_poll(void *ctx, struct pc_buf *out)
{
    struct pc_infer *inf = ctx;
    struct resp_req *q = pc_infer_api(inf);
    if (!q->started) {
        q->started = true;
        event(q, out, "response.created",
              json_pack("{s:o}", "response", response_json(q, NULL, "in_progress")));
        event(q, out, "response.in_progress",
              json_pack("{s:o}", "response", response_json(q, NULL, "in_progress")));
        return PC_STREAM_MORE;
    }
    const char *text;
    size_t len;
    bool done = false;
    struct pc_chat_news nw = {0};
    struct pc_error err = {0};
    while (!done && nw.content_len == 0 && nw.thinking_len == 0) {
        if (pc_infer_poll(inf, &text, &len, &done, &err) == PC_OK && len == 0 && !done)
            return PC_STREAM_WAIT;
        if (err.code != PC_OK || pc_chatreq_feed(&q->conv, text, len, done, &nw, &err) != PC_OK) {
            json_t *r = response_json(q, NULL, "failed");
            json_object_set_new(
                r, "error", json_pack("{s:s, s:s}", "code", "server_error", "message", err.msg));
            event(q, out, "response.failed", json_pack("{s:o}", "response", r));
            return PC_STREAM_END;
        }
        done = done || pc_chatreq_settled(&q->conv);
    }
    if (nw.thinking_len > 0)
        pc_buf_append(&q->thinking, nw.thinking, nw.thinking_len);
    if (nw.thinking_len > 0 && q->msg_index < 0) { /* reasoning after the answer began: in the
                                                       final item only */
        if (q->rs_index < 0)
            open_reasoning(q, out);
        event(q, out, "response.reasoning_text.delta",
              json_pack("{s:s, s:i, s:i, s:s%}", "item_id", q->rs_id, "output_index", q->rs_index,
                        "content_index", 0, "delta", nw.thinking, nw.thinking_len));
    }
    if (nw.content_len > 0) {
        if (q->msg_index < 0)
            open_message(q, out);
        pc_buf_append(&q->full, nw.content, nw.content_len);
        event(q, out, "response.output_text.delta",
              json_pack("{s:s, s:i, s:i, s:s%, s:[]}", "item_id", q->msg_id, "output_index",
                        q->msg_index, "content_index", 0, "delta", nw.content, nw.content_len,
                        "logprobs"));
    }
    return done ? stream_end(q, inf, out) : PC_STREAM_MORE;
}

static void handle_responses(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    const char *param = NULL;
    json_t *body = NULL;
    struct resp_req *q = parse_request(req, reply, &param, &body);
    if (q == NULL) {
        pc_openai_error(reply, param);
        json_decref(body);
        return;
    }
    struct pc_error err = {0};
    struct pc_infer *inf = NULL;
    size_t dropped = 0;
    enum pc_err rc = pc_infer_open(req->srv, q->model, -1, &inf, &err);
    if (rc == PC_OK) /* OpenAI's truncation "disabled": a conversation over the context is a 400 */
        rc = pc_chatreq_start(&q->conv, inf, q->model, &q->opts, false, &dropped, &err);
    if (rc != PC_OK) {
        pc_infer_close(inf);
        pc_http_reply_pc_error(reply, &err);
        pc_openai_error(reply, err.code == PC_ERR_NOT_FOUND      ? "model"
                               : err.code == PC_ERR_CTX_OVERFLOW ? "input"
                                                                 : NULL);
        resp_req_free(q);
        return;
    }
    pc_infer_reply(inf, q, api_free, q->stream, "text/event-stream", stream_poll, reply_whole,
                   reply);
}

const struct pc_http_route pc_responses_routes[] = {
    {"POST", "/v1/responses", handle_responses},
    {NULL, NULL, NULL},
};
