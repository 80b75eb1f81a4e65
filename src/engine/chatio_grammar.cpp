/* chatio_grammar.cpp - the grammar sampler of a rendered chat: lazy with its triggers, or
 * advanced past the part of it that the prompt already holds, as common_sampler_init does. */
#include "chatioInt.h"

#include <cctype>
#include <exception>
#include <string>
#include <vector>

#include "common.h"

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
        if (s == nullptr || g->prefix == nullptr || g->prefix[0] == '\0')
            return s;
        /* The grammar begins where the assistant's turn does, and the prompt holds that
         * beginning: feed it its tokens. A tokenizer may put a space before the first special
         * token; that one is not the grammar's. */
        std::vector<llama_token> toks = common_tokenize(vocab, g->prefix, false, true);
        for (size_t i = 0; i < toks.size(); i++) {
            std::string piece = common_token_to_piece(vocab, toks[i], true);
            if (i == 0 && !piece.empty() && std::isspace((unsigned char)piece[0]) &&
                !std::isspace((unsigned char)g->prefix[0]))
                continue;
            llama_sampler_accept(s, toks[i]);
        }
        return s;
    } catch (const std::exception &e) {
        pc_log_warn("engine", "the grammar sampler could not start: %s", e.what());
        if (s != nullptr)
            llama_sampler_free(s);
        return nullptr;
    }
}
