/* sampler.c - a request's sampling chain: grammar, penalties, top-k/p, min-p, temperature. */
#include "engineInt.h"

/* llama.cpp's grammars/json.gbnf: one JSON object, as Ollama's format "json" asks for. */
static const char json_grammar[] =
    "root   ::= object\n"
    "value  ::= object | array | string | number | (\"true\" | \"false\" | \"null\") ws\n"
    "object ::= \"{\" ws ( string \":\" ws value (\",\" ws string \":\" ws value)* )? \"}\" ws\n"
    "array  ::= \"[\" ws ( value (\",\" ws value)* )? \"]\" ws\n"
    "string ::= \"\\\"\" ( [^\"\\\\\\x7F\\x00-\\x1F] | \"\\\\\" ([\"\\\\bfnrt] | "
    "\"u\" [0-9a-fA-F]{4}) )* \"\\\"\" ws\n"
    "number ::= (\"-\"? ([0-9] | [1-9] [0-9]{0,15})) (\".\" [0-9]+)? ([eE] [-+]? [0-9] "
    "[1-9]{0,15})? ws\n"
    "ws ::= | \" \" | \"\\n\" [ \\t]{0,20}\n";

struct llama_sampler *pc_sampler_make(const struct pc_model *m, const struct pc_sampling *s)
{
    struct llama_sampler_chain_params cp = llama_sampler_chain_default_params();
    cp.no_perf = true;
    struct llama_sampler *chain = llama_sampler_chain_init(cp);
    if (chain == NULL)
        return NULL;
    /* The grammar goes first: it sees every candidate, so a later cut cannot leave only tokens
     * that break the JSON. */
    if (s->grammar.grammar != NULL) {
        struct llama_sampler *g = pc_chat_grammar_sampler(m->vocab, &s->grammar);
        if (g == NULL) {
            llama_sampler_free(chain);
            return NULL;
        }
        llama_sampler_chain_add(chain, g);
    } else if (s->json) {
        struct llama_sampler *g = llama_sampler_init_grammar(m->vocab, json_grammar, "root");
        if (g == NULL) {
            llama_sampler_free(chain);
            return NULL;
        }
        llama_sampler_chain_add(chain, g);
    }
    /* Cheap samplers first: the penalties scan every candidate that is left. */
    if (s->temperature > 0 && s->top_k > 0)
        llama_sampler_chain_add(chain, llama_sampler_init_top_k(s->top_k));
    if (s->repeat_penalty != 1.0f || s->presence_penalty != 0 || s->frequency_penalty != 0)
        llama_sampler_chain_add(
            chain, llama_sampler_init_penalties(llama_vocab_n_tokens(m->vocab), s->repeat_last_n,
                                                s->repeat_penalty, s->frequency_penalty,
                                                s->presence_penalty));
    if (s->temperature <= 0) {
        llama_sampler_chain_add(chain, llama_sampler_init_greedy());
        return chain;
    }
    if (s->top_p < 1.0f)
        llama_sampler_chain_add(chain, llama_sampler_init_top_p(s->top_p, 1));
    if (s->min_p > 0)
        llama_sampler_chain_add(chain, llama_sampler_init_min_p(s->min_p, 1));
    llama_sampler_chain_add(chain, llama_sampler_init_temp(s->temperature));
    llama_sampler_chain_add(chain, llama_sampler_init_dist(s->seed));
    return chain;
}
