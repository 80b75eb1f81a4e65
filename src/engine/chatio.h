/* chatio.h - conversations into and out of a model: its own Jinja chat template renders the
 * messages, tools, response schema and thinking switch into a prompt and the grammar that
 * constrains the answer; the template family's parser takes content, reasoning and tool calls
 * back out of the generated text.
 *
 * Both halves are llama.cpp's common chat library (common_chat_templates_apply,
 * common_chat_parse, json_schema_to_grammar), reached through the C++ shim in chatio_*.cpp:
 * the one place that includes its headers. This header is plain C, and needs nothing from
 * llama.cpp. */
#ifndef PC_CHATIO_H
#define PC_CHATIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "../base/err.h"

/* One call of a function that an assistant message made (or that a parse found). */
struct pc_chat_tool_call {
    const char *id;        /* may be NULL or "" */
    const char *name;      /* the function */
    const char *arguments; /* a JSON object, as text */
};

struct pc_chat_msg {
    const char *role; /* "system", "user", "assistant", "tool" */
    const char *content;
    /* The rest are optional (zero: none). */
    const char *thinking; /* assistant: its reasoning, for templates that render it */
    const struct pc_chat_tool_call *tool_calls; /* assistant: the calls it made */
    size_t n_tool_calls;
    const char *tool_name;    /* tool: the function whose result content is */
    const char *tool_call_id; /* tool: the call it answers */
};

/* A function the model may call. */
struct pc_chat_tool {
    const char *name;
    const char *description; /* may be NULL */
    const char *parameters;  /* a JSON schema object as text; NULL: no arguments */
};

enum pc_tool_choice {
    PC_TOOL_CHOICE_AUTO,     /* the model decides (a lazy grammar: free text until a call) */
    PC_TOOL_CHOICE_NONE,     /* the tools are described, never called */
    PC_TOOL_CHOICE_REQUIRED, /* the answer is one call or more */
};

enum pc_think {
    PC_THINK_DEFAULT, /* as the template does when nothing is said */
    PC_THINK_OFF,
    PC_THINK_ON,
};

/* What a chat request asks of the template. */
struct pc_chat_input {
    const struct pc_chat_msg *msgs;
    size_t n_msgs;
    const struct pc_chat_tool *tools; /* may be NULL */
    size_t n_tools;
    enum pc_tool_choice tool_choice;
    bool parallel_tool_calls; /* allow more than one call in an answer */
    const char *json_schema;  /* constrain the answer to this JSON schema (text), or NULL */
    enum pc_think think;
    bool add_assistant; /* end with the assistant's turn marker (a prompt to answer) */
};

/* A grammar that constrains sampling (a pc_sampling carries one). */
struct pc_chat_grammar {
    const char *grammar; /* GBNF, rule "root"; NULL: none */
    /* The part of the grammar that the prompt already holds (the assistant's turn marker, an
     * opened thinking block), as tokens that spell it: fed to the grammar before the answer. */
    const int32_t *prefix;
    size_t n_prefix;
    /* Lazy: the answer is free until the text matches one of the patterns (regular expressions,
     * as llama_sampler_init_grammar_lazy_patterns takes them) or one of the tokens is sampled;
     * the grammar holds from there. */
    bool lazy;
    const char *const *patterns;
    size_t n_patterns;
    const int32_t *tokens;
    size_t n_tokens;
};

/* What the model's template can do. */
struct pc_chat_caps {
    bool tools;    /* it renders tools and tool calls */
    bool thinking; /* it switches reasoning on and off (enable_thinking) */
};

/* The rendered prompt, and how to sample and parse its answer. Opaque; pc_chat_prompt_free. */
struct pc_chat_prompt;

/* The prompt's text, as the model sees it. Valid while p is. */
const char *pc_chat_prompt_text(const struct pc_chat_prompt *p);

/* The grammar that constrains the answer, into *out (pointers valid while p is). false when
 * the answer is free (*out zeroed). */
bool pc_chat_prompt_grammar(const struct pc_chat_prompt *p, struct pc_chat_grammar *out /* OUT */);

/* The template's preserved tokens (tool-call and thinking markers) that are single tokens of
 * the model: the answer keeps their text even when they are control tokens, so that the parser
 * sees them. The array is valid while p is. */
const int32_t *pc_chat_prompt_preserved(const struct pc_chat_prompt *p, size_t *n /* OUT */);

/* Stop strings that the template's format adds; the array is valid while p is. */
const char *const *pc_chat_prompt_stops(const struct pc_chat_prompt *p, size_t *n /* OUT */);

/* pc_chat_prompt_free(NULL) does nothing. */
void pc_chat_prompt_free(struct pc_chat_prompt *p);

/* ---- the answer ---------------------------------------------------------------------------- */

/* Parses an answer as it grows. Opaque; pc_chat_parser_free. */
struct pc_chat_parser;

/* A parser for the answer to p (p may be freed afterwards). *out is NULL on failure. */
enum pc_err pc_chat_parser_new(const struct pc_chat_prompt *p,
                               struct pc_chat_parser **out /* OUT */, struct pc_error *err);

/* What the text added since the last pc_chat_parser_add brought: new content and reasoning
 * text, and the tool calls that are now complete (calls first .. first + n - 1). Pointers are
 * valid until the next call on the parser. */
struct pc_chat_news {
    const char *content;
    size_t content_len;
    const char *thinking;
    size_t thinking_len;
    size_t first_call;
    size_t n_calls;
};

/* Append generated text and parse the whole answer again; final says that it is complete (a
 * call still open is then taken as it stands, a partial one dropped). Text that may still turn
 * into a tool call or a tag is held back until it is known. PC_ERR_TEMPLATE when the final text
 * does not parse (the model broke its format: without a grammar it can). */
enum pc_err pc_chat_parser_add(struct pc_chat_parser *ps, const char *text, size_t len, bool final,
                               struct pc_chat_news *news /* OUT */, struct pc_error *err);

/* Whether the answer is complete before the text ends: parallel_tool_calls was off and a second
 * call began (dropped; the first is whole). The caller may stop generating. */
bool pc_chat_parser_settled(const struct pc_chat_parser *ps);

/* The whole message as parsed so far; strings valid until the next pc_chat_parser_add. */
const char *pc_chat_parser_content(const struct pc_chat_parser *ps);
const char *pc_chat_parser_thinking(const struct pc_chat_parser *ps);
size_t pc_chat_parser_n_calls(const struct pc_chat_parser *ps);
/* Call i (< pc_chat_parser_n_calls); its id is made unique ("call_" and random) when the model
 * gave none. */
struct pc_chat_tool_call pc_chat_parser_call(const struct pc_chat_parser *ps, size_t i);

/* pc_chat_parser_free(NULL) does nothing. */
void pc_chat_parser_free(struct pc_chat_parser *ps);

#ifdef __cplusplus
}
#endif

#endif
