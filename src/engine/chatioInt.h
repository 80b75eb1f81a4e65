/* chatioInt.h - between the engine's C files and the C++ chat shim: a model's parsed chat
 * templates, made at load and used to render. C and C++ both include it. */
#ifndef PC_CHATIO_INT_H
#define PC_CHATIO_INT_H

#include "llama.h"

#include "chatio.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A model's chat templates, parsed once (Jinja), shared by every request: nothing in it changes
 * after pc_chat_tmpl_new. */
struct pc_chat_tmpl;

/* Parse model's own template (and its tool_use variant); a model without one, or with one the
 * Jinja engine cannot parse, gets ChatML, as llama-server does. *out is freed with
 * pc_chat_tmpl_free; NULL on failure. */
enum pc_err pc_chat_tmpl_new(const struct llama_model *model, struct pc_chat_tmpl **out /* OUT */,
                             struct pc_error *err);

/* pc_chat_tmpl_free(NULL) does nothing. */
void pc_chat_tmpl_free(struct pc_chat_tmpl *t);

void pc_chat_tmpl_caps(const struct pc_chat_tmpl *t, struct pc_chat_caps *out /* OUT */);

/* Render in through t. vocab turns trigger words that are one token into token triggers. *out
 * is freed with pc_chat_prompt_free; NULL on failure: PC_ERR_INVALID for a schema or tool
 * parameters that give no grammar, PC_ERR_TEMPLATE for a template that fails on these
 * messages (the template's own message said). */
enum pc_err pc_chat_tmpl_render(const struct pc_chat_tmpl *t, const struct llama_vocab *vocab,
                                const struct pc_chat_input *in,
                                struct pc_chat_prompt **out /* OUT */, struct pc_error *err);

/* g's sampler; NULL when the grammar does not parse or does not take the prefix. Freed with
 * llama_sampler_free. */
struct llama_sampler *pc_chat_grammar_sampler(const struct llama_vocab *vocab,
                                              const struct pc_chat_grammar *g);

#ifdef __cplusplus
}

#include <string>
#include <vector>

/* The rendered prompt; chatio_render.cpp makes it, chatio_parse.cpp reads how to parse. */
struct pc_chat_prompt {
    std::string text;
    std::string grammar;
    std::vector<int32_t> prefix_tokens; /* pc_chat_grammar.prefix */
    bool lazy = false;
    std::vector<std::string> patterns;
    std::vector<const char *> pattern_ptrs;
    std::vector<int32_t> trigger_tokens;
    std::vector<int32_t> preserved; /* the template's preserved tokens that are one token */
    std::vector<std::string> stops;
    std::vector<const char *> stop_ptrs;
    /* For the parser: common_chat_parser_params' parts, as common_chat_params gave them. */
    int format = 0;         /* enum common_chat_format */
    std::string parser;     /* the PEG parser, serialized (common_peg_arena::save) */
    std::string gen_prompt; /* common_chat_params.generation_prompt */
    bool parse_tool_calls = false;
    bool one_call = false; /* parallel_tool_calls off: the first call is the answer */
};
#endif

#endif
