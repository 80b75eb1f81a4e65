/* chatreq.h - what the Ollama and OpenAI chat APIs share about a conversation: messages with
 * tool calls and tool results, tools, a response schema, thinking; rendered through the model's
 * template (with the 400s for a model that has no tools or cannot think), and the answer parsed
 * back into content, thinking and tool calls as it streams. The API files only format. */
#ifndef PC_CHATREQ_H
#define PC_CHATREQ_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "../base/buf.h"
#include "../engine/engine.h"
#include "genopts.h"
#include "http.h"

/* One request's conversation. Strings point into the request's JSON, or into owned. */
struct pc_chatreq {
    struct pc_chat_input in;
    struct pc_chat_msg *msgs;
    struct pc_chat_tool *tools;
    char **owned; /* strings this request made (JSON dumped as text); freed with it */
    size_t n_owned;
    struct pc_chat_prompt *prompt; /* once rendered */
    struct pc_chat_parser *parser; /* once rendered, when the answer needs parsing */
};

/* Free what c holds (not c). */
void pc_chatreq_free(struct pc_chatreq *c);

/* How a request spells its messages. */
enum pc_chatreq_shape {
    PC_CHATREQ_OLLAMA, /* tool_calls' arguments an object (or its text), thinking, tool_name */
    PC_CHATREQ_OPENAI, /* content parts, "developer", arguments as text, reasoning_content, name */
    PC_CHATREQ_ANY     /* either spelling (a precharge of either API's later chat) */
};

/* "messages" in shape; tool_call_id in every shape. In Ollama's (and ANY), a key that is not a
 * message field is a 400 naming it (openai.c checks OpenAI's own). 0, or -1 with a 400 naming
 * the field. */
int pc_chatreq_messages(struct pc_chatreq *c, json_t *arr, enum pc_chatreq_shape shape,
                        struct pc_http_reply *reply);

/* "tools": [{"type": "function", "function": {name, description, parameters}}], the same in
 * both APIs. Absent or null: none. */
int pc_chatreq_tools(struct pc_chatreq *c, json_t *arr, struct pc_http_reply *reply);

/* OpenAI's "tool_choice": "auto", "none", "required", or {"type": "function", "function":
 * {"name": ...}} (that function alone, required). */
int pc_chatreq_tool_choice(struct pc_chatreq *c, json_t *v, struct pc_http_reply *reply);

/* "think": true or false, or a level ("high", "medium", "low", which think alike). */
int pc_chatreq_think(struct pc_chatreq *c, json_t *v, struct pc_http_reply *reply);

/* The tokens that a precharge of messages (either API's spelling), tools and think leaves in the
 * context: parsed and checked as the chats do (tools or thinking that model's template has not:
 * the 400 naming it), then pc_model_prefix_tokens, the tokens that every later chat starting with
 * them renders. The precharger's render hook (pc_precharger_config);
 * the API checked the request, so a parse error here is PC_ERR_INVALID with its message.
 * *toks is malloc'd. */
enum pc_err pc_chatreq_prefix_tokens(const struct pc_model *m, const char *model, json_t *messages,
                                     json_t *tools, enum pc_think think, int32_t **toks /* OUT */,
                                     size_t *n /* OUT */, struct pc_error *err);

/* Keep s (malloc'd) until c is freed. Returns s, or NULL (s freed) when out of memory. */
char *pc_chatreq_own(struct pc_chatreq *c, char *s);

/* Render the conversation for m (model is the name the client used, for the 400s), set the
 * grammar and the template's stop strings in opts, and get the answer's parser ready. Tools on
 * a template without tool support, or thinking asked of a model that cannot think, are
 * PC_ERR_INVALID naming the model. */
enum pc_err pc_chatreq_render(struct pc_chatreq *c, struct pc_model *m, const char *model,
                              struct pc_genopts *opts, struct pc_error *err);

struct pc_infer;

/* Render the conversation (pc_chatreq_render) and start it on inf. A prompt over the context
 * with truncate drops the oldest messages after the system ones, one at a time, until it fits,
 * as Ollama does: the system messages and the newest turns stay, so a precharged system prompt
 * still leads it. *dropped (OUT) counts the messages dropped. The PC_ERR_CTX_OVERFLOW stays when
 * truncate is false, or when the system messages and the last message alone do not fit. */
enum pc_err pc_chatreq_start(struct pc_chatreq *c, struct pc_infer *inf, const char *model,
                             struct pc_genopts *opts, bool truncate, size_t *dropped /* OUT */,
                             struct pc_error *err);

/* The rendered prompt's text. */
const char *pc_chatreq_text(const struct pc_chatreq *c);

/* A piece of the answer in, what it brought out (pc_chat_parser_add). Without a parser (a plain
 * chat) the piece is content as it is. */
enum pc_err pc_chatreq_feed(struct pc_chatreq *c, const char *text, size_t len, bool final,
                            struct pc_chat_news *news /* OUT */, struct pc_error *err);

/* Whether the answer is complete before the generation ends (parallel_tool_calls off, and the
 * one call is whole): the caller stops there. */
bool pc_chatreq_settled(const struct pc_chatreq *c);

/* Generate the whole answer into full (stopping once it is settled) and parse it: *msg is the
 * whole message (content, thinking, every call), valid until c changes. */
enum pc_err pc_chatreq_collect(struct pc_chatreq *c, struct pc_infer *inf, struct pc_buf *full,
                               struct pc_chat_news *msg /* OUT */, struct pc_error *err);

/* The answer's tool calls so far, and call i. */
size_t pc_chatreq_n_calls(const struct pc_chatreq *c);
struct pc_chat_tool_call pc_chatreq_call(const struct pc_chatreq *c, size_t i);

#endif
