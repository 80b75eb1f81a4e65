/* chatio_grammar.cpp - the grammar sampler of a rendered chat: lazy with its triggers, or
 * advanced past the part of it that the prompt already holds, as common_sampler_init does. */
#include "chatioInt.h"

#include <exception>
#include <vector>

extern "C" {
#include "../base/log.h"
}

extern "C" struct llama_sampler *pc_chat_grammar_sampler(const struct llama_vocab *vocab,
                                                         const struct pc_chat_grammar *g)
{
    struct llama_sampler *s = nullptr;
    try {
        if (g->lazy) {
            std::vector<llama_token> toks(g->tokens, g->tokens + g->n_tokens);
            return llama_sampler_init_grammar_lazy_patterns(
                vocab, g->grammar, "root", (const char **)g->patterns, g->n_patterns, toks.data(),
                toks.size());
        }
        s = llama_sampler_init_grammar(vocab, g->grammar, "root");
        /* The grammar begins where the assistant's turn does, and the prompt holds that
         * beginning: feed it its tokens. */
        for (size_t i = 0; s != nullptr && i < g->n_prefix; i++)
            llama_sampler_accept(s, g->prefix[i]);
        return s;
    } catch (const std::exception &e) {
        pc_log_warn("engine", "the grammar sampler could not start: %s", e.what());
        if (s != nullptr)
            llama_sampler_free(s);
        return nullptr;
    }
}
