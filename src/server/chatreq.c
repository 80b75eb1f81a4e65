/* chatreq.c - a chat request's conversation, shared by the Ollama and OpenAI APIs: parsed from
 * JSON, rendered through the model's template, its answer parsed back. */
#include "chatreq.h"

#include <stdlib.h>
#include <string.h>

#include "../base/buf.h"
#include "infer.h"

void pc_chatreq_free(struct pc_chatreq *c)
{
    if (c == NULL)
        return;
    pc_chat_parser_free(c->parser);
    pc_chat_prompt_free(c->prompt);
    for (size_t i = 0; i < c->n_owned; i++)
        free(c->owned[i]);
    free(c->owned);
    for (size_t i = 0; c->msgs != NULL && i < c->in.n_msgs; i++)
        free((void *)c->msgs[i].tool_calls);
    free(c->msgs);
    free(c->tools);
    memset(c, 0, sizeof(*c));
}

char *pc_chatreq_own(struct pc_chatreq *c, char *s)
{
    if (s == NULL)
        return NULL;
    char **more = realloc(c->owned, (c->n_owned + 1) * sizeof(*more));
    if (more == NULL) {
        free(s);
        return NULL;
    }
    c->owned = more;
    c->owned[c->n_owned++] = s;
    return s;
}

static int nomem(struct pc_http_reply *reply)
{
    pc_http_reply_error(reply, 500, "out of memory");
    return -1;
}

/* An optional string field of obj, named path for the 400. */
static int opt_string(json_t *obj, const char *key, const char **out, const char *path, size_t i,
                      struct pc_http_reply *reply)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        pc_http_reply_error(reply, 400, path, i);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* OpenAI content: a string, or an array of text parts (joined). */
static int content_of(struct pc_chatreq *c, size_t i, json_t *content, bool openai,
                      struct pc_http_reply *reply)
{
    struct pc_chat_msg *m = &c->msgs[i];
    m->content = "";
    if (content == NULL || json_is_null(content))
        return 0;
    if (json_is_string(content)) {
        m->content = json_string_value(content);
        return 0;
    }
    if (!openai || !json_is_array(content)) {
        pc_http_reply_error(reply, 400, "messages[%zu].content must be a string%s", i,
                            openai ? " or an array" : "");
        return -1;
    }
    struct pc_buf b = PC_BUF_INIT;
    for (size_t k = 0; k < json_array_size(content); k++) {
        json_t *part = json_array_get(content, k);
        const char *type = json_string_value(json_object_get(part, "type"));
        const char *text = json_string_value(json_object_get(part, "text"));
        if (type == NULL || strcmp(type, "text") != 0 || text == NULL) {
            pc_buf_free(&b);
            pc_http_reply_error(reply, 400,
                                "messages[%zu].content[%zu]: only parts of type \"text\" are "
                                "supported",
                                i, k);
            return -1;
        }
        if (!pc_buf_appends(&b, text)) {
            pc_buf_free(&b);
            return nomem(reply);
        }
    }
    if (!pc_buf_append(&b, "", 1)) { /* NUL-terminate, also when empty */
        pc_buf_free(&b);
        return nomem(reply);
    }
    if (pc_chatreq_own(c, b.data) == NULL)
        return nomem(reply);
    m->content = b.data;
    return 0;
}

/* An assistant message's "tool_calls": arguments a JSON object (Ollama) or its text (OpenAI). */
static int tool_calls_of(struct pc_chatreq *c, size_t i, json_t *arr, struct pc_http_reply *reply)
{
    if (arr == NULL || json_is_null(arr))
        return 0;
    if (!json_is_array(arr)) {
        pc_http_reply_error(reply, 400, "messages[%zu].tool_calls must be an array", i);
        return -1;
    }
    size_t n = json_array_size(arr);
    struct pc_chat_tool_call *calls = calloc(n ? n : 1, sizeof(*calls));
    if (calls == NULL)
        return nomem(reply);
    c->msgs[i].tool_calls = calls;
    c->msgs[i].n_tool_calls = n;
    for (size_t k = 0; k < n; k++) {
        json_t *call = json_array_get(arr, k);
        json_t *fn = json_object_get(call, "function");
        json_t *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments");
        if (!json_is_object(fn) || !json_is_string(name)) {
            pc_http_reply_error(
                reply, 400, "messages[%zu].tool_calls[%zu].function.name must be a string", i, k);
            return -1;
        }
        /* Ollama's function.index (the call's place in the list, as its answers number them):
         * llama.cpp's templates render calls in the list's order and have no place for it. */
        json_t *index = json_object_get(fn, "index");
        if (index != NULL && !json_is_null(index) &&
            (!json_is_integer(index) || json_integer_value(index) < 0)) {
            pc_http_reply_error(
                reply, 400, "messages[%zu].tool_calls[%zu].function.index must be an integer >= 0",
                i, k);
            return -1;
        }
        calls[k].name = json_string_value(name);
        calls[k].id = json_string_value(json_object_get(call, "id"));
        if (json_is_string(args)) {
            calls[k].arguments = json_string_value(args);
        } else if (json_is_object(args)) {
            calls[k].arguments = pc_chatreq_own(c, json_dumps(args, JSON_COMPACT));
            if (calls[k].arguments == NULL)
                return nomem(reply);
        } else if (args == NULL || json_is_null(args)) {
            calls[k].arguments = "{}";
        } else {
            pc_http_reply_error(reply, 400,
                                "messages[%zu].tool_calls[%zu].function.arguments must be an "
                                "object or its JSON text",
                                i, k);
            return -1;
        }
    }
    return 0;
}

/* The fields of an Ollama message (api.Message); any other key is a 400 rather than dropped. */
static const char *const ollama_fields[] = {"role",      "content",      "thinking", "tool_calls",
                                            "tool_name", "tool_call_id", "images"};
/* And OpenAI's, for PC_CHATREQ_ANY (openai.c checks its own). */
static const char *const openai_fields[] = {"name", "reasoning_content"};

static bool known_field(const char *key, bool openai)
{
    for (size_t k = 0; k < sizeof(ollama_fields) / sizeof(ollama_fields[0]); k++)
        if (strcmp(key, ollama_fields[k]) == 0)
            return true;
    for (size_t k = 0; openai && k < sizeof(openai_fields) / sizeof(openai_fields[0]); k++)
        if (strcmp(key, openai_fields[k]) == 0)
            return true;
    return false;
}

/* A message's reasoning, the function a tool result answers and the call it answers, in the
 * shape's spelling (PC_CHATREQ_ANY takes either). */
static int message_extras(json_t *m, size_t i, enum pc_chatreq_shape shape, struct pc_chat_msg *msg,
                          struct pc_http_reply *reply)
{
    const char *thinking = NULL, *reasoning = NULL, *tool_name = NULL, *name = NULL;
    bool openai = shape != PC_CHATREQ_OLLAMA, ollama = shape != PC_CHATREQ_OPENAI;
    if (opt_string(m, "tool_call_id", &msg->tool_call_id,
                   "messages[%zu].tool_call_id must be a string", i, reply) ||
        (ollama && (opt_string(m, "thinking", &thinking, "messages[%zu].thinking must be a string",
                               i, reply) ||
                    opt_string(m, "tool_name", &tool_name,
                               "messages[%zu].tool_name must be a string", i, reply))) ||
        (openai && (opt_string(m, "reasoning_content", &reasoning,
                               "messages[%zu].reasoning_content must be a string", i, reply) ||
                    opt_string(m, "name", &name, "messages[%zu].name must be a string", i, reply))))
        return -1;
    msg->thinking = thinking ? thinking : reasoning;
    /* OpenAI's "name" is also a participant's name on user and system messages: only a tool
     * message's names the function. */
    msg->tool_name = strcmp(msg->role, "tool") != 0 ? NULL : tool_name ? tool_name : name;
    if (shape == PC_CHATREQ_OPENAI)
        return 0;
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v)
    {
        if (!json_is_null(v) && !known_field(key, openai)) {
            pc_http_reply_error(reply, 400,
                                "messages[%zu].%s is not a message field (%s); it would not be "
                                "rendered",
                                i, key,
                                openai ? "role, content, thinking, reasoning_content, "
                                         "tool_calls, tool_name, name, tool_call_id"
                                       : "role, content, thinking, tool_calls, tool_name, "
                                         "tool_call_id, images");
            return -1;
        }
    }
    return 0;
}

int pc_chatreq_messages(struct pc_chatreq *c, json_t *arr, enum pc_chatreq_shape shape,
                        struct pc_http_reply *reply)
{
    static const char *const roles[] = {"system", "user", "assistant", "tool"};
    bool openai = shape != PC_CHATREQ_OLLAMA;
    size_t n = json_array_size(arr);
    c->msgs = calloc(n ? n : 1, sizeof(*c->msgs));
    if (c->msgs == NULL)
        return nomem(reply);
    c->in.msgs = c->msgs;
    c->in.n_msgs = n;
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(arr, i);
        const char *r = json_string_value(json_object_get(m, "role"));
        if (!json_is_object(m) || r == NULL) {
            pc_http_reply_error(reply, 400, "messages[%zu].role must be a string", i);
            return -1;
        }
        /* "developer" is what newer OpenAI models call the system prompt. */
        if (openai && strcmp(r, "developer") == 0)
            r = "system";
        bool known = false;
        for (size_t k = 0; k < sizeof(roles) / sizeof(roles[0]); k++)
            known = known || strcmp(r, roles[k]) == 0;
        if (!known) {
            pc_http_reply_error(
                reply, 400,
                "messages[%zu].role \"%s\" is not one of system, %suser, assistant, tool", i, r,
                openai ? "developer, " : "");
            return -1;
        }
        struct pc_chat_msg *msg = &c->msgs[i];
        msg->role = r;
        if (content_of(c, i, json_object_get(m, "content"), openai, reply) != 0 ||
            tool_calls_of(c, i, json_object_get(m, "tool_calls"), reply) != 0 ||
            message_extras(m, i, shape, msg, reply) != 0)
            return -1;
    }
    return 0;
}

int pc_chatreq_tools(struct pc_chatreq *c, json_t *arr, struct pc_http_reply *reply)
{
    if (arr == NULL || json_is_null(arr))
        return 0;
    if (!json_is_array(arr)) {
        pc_http_reply_error(reply, 400, "field \"tools\" must be an array");
        return -1;
    }
    size_t n = json_array_size(arr);
    if (n == 0)
        return 0;
    if ((c->tools = calloc(n, sizeof(*c->tools))) == NULL)
        return nomem(reply);
    c->in.tools = c->tools;
    c->in.n_tools = n;
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(arr, i);
        const char *type = json_string_value(json_object_get(t, "type"));
        json_t *fn = json_object_get(t, "function");
        const char *name = json_string_value(json_object_get(fn, "name"));
        json_t *desc = json_object_get(fn, "description");
        json_t *params = json_object_get(fn, "parameters");
        if (!json_is_object(t) || (type != NULL && strcmp(type, "function") != 0)) {
            pc_http_reply_error(reply, 400, "tools[%zu].type must be \"function\"", i);
            return -1;
        }
        if (!json_is_object(fn) || name == NULL || name[0] == '\0') {
            pc_http_reply_error(reply, 400, "tools[%zu].function.name must be a non-empty string",
                                i);
            return -1;
        }
        if (desc != NULL && !json_is_null(desc) && !json_is_string(desc)) {
            pc_http_reply_error(reply, 400, "tools[%zu].function.description must be a string", i);
            return -1;
        }
        json_t *strict = json_object_get(fn, "strict");
        if (strict != NULL && !json_is_null(strict) && !json_is_boolean(strict)) {
            pc_http_reply_error(reply, 400, "tools[%zu].function.strict must be true or false", i);
            return -1;
        }
        if (params != NULL && !json_is_null(params) && !json_is_object(params)) {
            pc_http_reply_error(reply, 400,
                                "tools[%zu].function.parameters must be a JSON schema object", i);
            return -1;
        }
        c->tools[i].name = name;
        c->tools[i].description = json_string_value(desc);
        if (json_is_object(params) &&
            (c->tools[i].parameters = pc_chatreq_own(c, json_dumps(params, JSON_COMPACT))) == NULL)
            return nomem(reply);
    }
    return 0;
}

int pc_chatreq_tool_choice(struct pc_chatreq *c, json_t *v, struct pc_http_reply *reply)
{
    static const char *const names[] = {"auto", "none", "required"};
    static const enum pc_tool_choice choices[] = {PC_TOOL_CHOICE_AUTO, PC_TOOL_CHOICE_NONE,
                                                  PC_TOOL_CHOICE_REQUIRED};
    if (v == NULL || json_is_null(v))
        return 0;
    for (size_t k = 0; json_is_string(v) && k < 3; k++)
        if (strcmp(json_string_value(v), names[k]) == 0) {
            c->in.tool_choice = choices[k];
            return 0;
        }
    const char *name = json_string_value(json_object_get(json_object_get(v, "function"), "name"));
    if (!json_is_object(v) || name == NULL) {
        pc_http_reply_error(reply, 400,
                            "tool_choice must be \"auto\", \"none\", \"required\" or "
                            "{\"type\": \"function\", \"function\": {\"name\": ...}}");
        return -1;
    }
    for (size_t i = 0; i < c->in.n_tools; i++)
        if (strcmp(c->tools[i].name, name) == 0) {
            /* That function alone, and a call to it. */
            c->in.tools = &c->tools[i];
            c->in.n_tools = 1;
            c->in.tool_choice = PC_TOOL_CHOICE_REQUIRED;
            return 0;
        }
    pc_http_reply_error(reply, 400, "tool_choice names function \"%s\", which is not in tools",
                        name);
    return -1;
}

/* Tools on a template without tool support, or thinking asked of a model that cannot think: the
 * 400 naming the model. */
static enum pc_err check_caps(const struct pc_chat_input *in, const struct pc_model *m,
                              const char *model, struct pc_chat_caps *caps /* OUT */,
                              struct pc_error *err)
{
    pc_model_chat_caps(m, caps);
    if (in->n_tools > 0 && !caps->tools)
        return pc_error_set(err, PC_ERR_INVALID,
                            "model \"%s\" does not support tools (its chat template has none)",
                            model);
    if (in->think == PC_THINK_ON && !caps->thinking)
        return pc_error_set(err, PC_ERR_INVALID,
                            "model \"%s\" does not support thinking (its chat template has no "
                            "reasoning switch)",
                            model);
    return PC_OK;
}

int pc_chatreq_think(struct pc_chatreq *c, json_t *v, struct pc_http_reply *reply)
{
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_boolean(v)) {
        c->in.think = json_is_true(v) ? PC_THINK_ON : PC_THINK_OFF;
        return 0;
    }
    const char *level = json_string_value(v);
    if (level != NULL &&
        (strcmp(level, "high") == 0 || strcmp(level, "medium") == 0 || strcmp(level, "low") == 0)) {
        c->in.think = PC_THINK_ON;
        return 0;
    }
    pc_http_reply_error(reply, 400,
                        "field \"think\" must be true, false, \"high\", \"medium\" or \"low\"");
    return -1;
}

enum pc_err pc_chatreq_prefix_tokens(const struct pc_model *m, const char *model, json_t *messages,
                                     json_t *tools, enum pc_think think, int32_t **toks, size_t *n,
                                     struct pc_error *err)
{
    struct pc_chat_caps caps;
    struct pc_chatreq c = {0};
    struct pc_http_reply reply = {0};
    enum pc_err rc = PC_OK;
    if (pc_chatreq_messages(&c, messages, PC_CHATREQ_ANY, &reply) != 0 ||
        pc_chatreq_tools(&c, tools, &reply) != 0) {
        json_t *body = json_loadb(reply.body ? reply.body : "", reply.body_len, 0, NULL);
        const char *msg = json_string_value(json_object_get(body, "error"));
        rc = pc_error_set(err, reply.status == 500 ? PC_ERR_NOMEM : PC_ERR_INVALID, "%s",
                          msg ? msg : "the messages could not be read");
        json_decref(body);
    } else {
        /* As both chat APIs ask by default: every call the model makes, the model's choice. */
        c.in.parallel_tool_calls = true;
        c.in.think = think;
        rc = check_caps(&c.in, m, model, &caps, err);
        if (rc == PC_OK)
            rc = pc_model_prefix_tokens(m, &c.in, toks, n, err);
    }
    free(reply.body);
    pc_chatreq_free(&c);
    return rc;
}

enum pc_err pc_chatreq_render(struct pc_chatreq *c, struct pc_model *m, const char *model,
                              struct pc_genopts *opts, struct pc_error *err)
{
    struct pc_chat_caps caps;
    if (check_caps(&c->in, m, model, &caps, err) != PC_OK)
        return err->code;
    c->in.add_assistant = true;
    enum pc_err rc = pc_chat_render(m, &c->in, &c->prompt, err);
    if (rc != PC_OK)
        return rc;
    struct pc_sampling *s = &opts->sampling;
    if (pc_chat_prompt_grammar(c->prompt, &s->grammar))
        s->json = false;
    s->keep_special = pc_chat_prompt_preserved(c->prompt, &s->n_keep_special);
    size_t n = 0;
    const char *const *stops = pc_chat_prompt_stops(c->prompt, &n);
    for (size_t i = 0; i < n && s->n_stop < PC_GENOPTS_MAX_STOPS; i++)
        opts->stops[s->n_stop++] = stops[i];
    s->stop = opts->stops;
    /* Plain chats pass the text through as it comes; calls, reasoning and a schema's JSON (which
     * the grammar lets come fenced in ```json) are parsed out. */
    bool calls = c->in.n_tools > 0 && c->in.tool_choice != PC_TOOL_CHOICE_NONE;
    bool thinks = caps.thinking && c->in.think != PC_THINK_OFF;
    if (calls || thinks || c->in.json_schema != NULL)
        return pc_chat_parser_new(c->prompt, &c->parser, err);
    return PC_OK;
}

/* Drop the oldest message after the system ones; false when only the last one is left. */
static bool drop_oldest_turn(struct pc_chatreq *c)
{
    size_t i = 0;
    while (i < c->in.n_msgs && strcmp(c->msgs[i].role, "system") == 0)
        i++;
    if (i + 1 >= c->in.n_msgs)
        return false;
    free((void *)c->msgs[i].tool_calls);
    memmove(&c->msgs[i], &c->msgs[i + 1], (c->in.n_msgs - i - 1) * sizeof(*c->msgs));
    c->in.n_msgs--;
    return true;
}

enum pc_err pc_chatreq_start(struct pc_chatreq *c, struct pc_infer *inf, const char *model,
                             struct pc_genopts *opts, bool truncate, size_t *dropped,
                             struct pc_error *err)
{
    /* Rendering adds the prompt's grammar and stops to opts: each try starts from these. */
    const struct pc_genopts given = *opts;
    *dropped = 0;
    for (;;) {
        enum pc_err rc = pc_chatreq_render(c, pc_infer_model(inf), model, opts, err);
        if (rc == PC_OK)
            rc = pc_infer_start(inf, pc_chatreq_text(c), &opts->sampling, err);
        if (rc != PC_ERR_CTX_OVERFLOW || !truncate || !drop_oldest_turn(c))
            return rc;
        (*dropped)++;
        pc_chat_parser_free(c->parser);
        pc_chat_prompt_free(c->prompt);
        c->parser = NULL;
        c->prompt = NULL;
        *opts = given;
        *err = (struct pc_error){0};
    }
}

const char *pc_chatreq_text(const struct pc_chatreq *c)
{
    return pc_chat_prompt_text(c->prompt);
}

enum pc_err pc_chatreq_feed(struct pc_chatreq *c, const char *text, size_t len, bool final,
                            struct pc_chat_news *news, struct pc_error *err)
{
    if (c->parser != NULL)
        return pc_chat_parser_add(c->parser, text, len, final, news, err);
    *news = (struct pc_chat_news){.content = text, .content_len = len};
    return PC_OK;
}

bool pc_chatreq_settled(const struct pc_chatreq *c)
{
    return c->parser != NULL && pc_chat_parser_settled(c->parser);
}

enum pc_err pc_chatreq_collect(struct pc_chatreq *c, struct pc_infer *inf, struct pc_buf *full,
                               struct pc_chat_news *msg, struct pc_error *err)
{
    struct pc_chat_news nw;
    enum pc_err rc = PC_OK;
    if (!c->in.parallel_tool_calls && c->parser != NULL) {
        /* Parsed as it comes, to stop at the one call. */
        bool done = false;
        while (rc == PC_OK && !done && !pc_chatreq_settled(c)) {
            const char *text;
            size_t len;
            rc = pc_infer_next(inf, &text, &len, &done, err);
            if (rc == PC_OK && !pc_buf_append(full, text, len))
                rc = pc_error_set(err, PC_ERR_NOMEM, "out of memory");
            if (rc == PC_OK)
                rc = pc_chatreq_feed(c, text, len, done, &nw, err);
        }
    } else {
        rc = pc_infer_collect(inf, full, err);
        if (rc == PC_OK)
            rc = pc_chatreq_feed(c, full->data ? full->data : "", full->len, true, &nw, err);
    }
    if (rc != PC_OK)
        return rc;
    if (c->parser == NULL) {
        *msg = (struct pc_chat_news){.content = full->data, .content_len = full->len};
        return PC_OK;
    }
    const char *content = pc_chat_parser_content(c->parser);
    const char *thinking = pc_chat_parser_thinking(c->parser);
    *msg = (struct pc_chat_news){.content = content,
                                 .content_len = strlen(content),
                                 .thinking = thinking,
                                 .thinking_len = strlen(thinking),
                                 .n_calls = pc_chat_parser_n_calls(c->parser)};
    return PC_OK;
}

size_t pc_chatreq_n_calls(const struct pc_chatreq *c)
{
    return c->parser ? pc_chat_parser_n_calls(c->parser) : 0;
}

struct pc_chat_tool_call pc_chatreq_call(const struct pc_chatreq *c, size_t i)
{
    return pc_chat_parser_call(c->parser, i);
}
