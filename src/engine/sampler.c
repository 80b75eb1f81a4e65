/* sampler.c - a request's sampling chain: grammar, logit bias, penalties, top-k, typical, top-p,
 * min-p or Mirostat, temperature. */
#include "engineInt.h"

#include <stdlib.h>

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

/* The bias of s as llama.cpp takes it, added to chain. False when out of memory. */
static bool add_logit_bias(struct llama_sampler *chain, const struct pc_model *m,
                           const struct pc_sampling *s)
{
    if (s->n_logit_bias == 0)
        return true;
    llama_logit_bias *b = malloc(s->n_logit_bias * sizeof(*b));
    if (b == NULL)
        return false;
    for (size_t i = 0; i < s->n_logit_bias; i++)
        b[i] = (llama_logit_bias){.token = s->logit_bias[i].token, .bias = s->logit_bias[i].bias};
    struct llama_sampler *lb =
        llama_sampler_init_logit_bias(llama_vocab_n_tokens(m->vocab), (int32_t)s->n_logit_bias, b);
    free(b); /* copied by the sampler */
    if (lb == NULL)
        return false;
    llama_sampler_chain_add(chain, lb);
    return true;
}

/* The grammar, when there is one. False when it cannot be made. */
static bool add_grammar(struct llama_sampler *chain, const struct pc_model *m,
                        const struct pc_sampling *s)
{
    struct llama_sampler *g = NULL;
    if (s->grammar.grammar != NULL)
        g = pc_chat_grammar_sampler(m->vocab, &s->grammar);
    else if (s->json)
        g = llama_sampler_init_grammar(m->vocab, json_grammar, "root");
    else
        return true;
    if (g == NULL)
        return false;
    llama_sampler_chain_add(chain, g);
    return true;
}

struct llama_sampler *pc_sampler_make(const struct pc_model *m, const struct pc_sampling *s)
{
    struct llama_sampler_chain_params cp = llama_sampler_chain_default_params();
    cp.no_perf = true;
    struct llama_sampler *chain = llama_sampler_chain_init(cp);
    if (chain == NULL)
        return NULL;
    /* The grammar goes first: it sees every candidate, so a later cut cannot leave only tokens
     * that break the JSON. The bias comes next, before any cut, as in llama.cpp's
     * common_sampler. */
    if (!add_grammar(chain, m, s) || !add_logit_bias(chain, m, s)) {
        llama_sampler_free(chain);
        return NULL;
    }
    bool mirostat = s->temperature > 0 && (s->mirostat == 1 || s->mirostat == 2);
    /* Cheap samplers first: the penalties scan every candidate that is left. Mirostat makes its
     * own cut, so top-k is not applied with it (llama.cpp's order). */
    if (s->temperature > 0 && s->top_k > 0 && !mirostat)
        llama_sampler_chain_add(chain, llama_sampler_init_top_k(s->top_k));
    /* repeat_last_n -1 is the whole context (Ollama's meaning, and OpenAI's penalties, which
     * count the whole answer); llama.cpp takes a negative count as 0, which turns them off. */
    int32_t last_n = s->repeat_last_n < 0 ? (int32_t)m->info.n_ctx : s->repeat_last_n;
    if (s->repeat_penalty != 1.0f || s->presence_penalty != 0 || s->frequency_penalty != 0)
        llama_sampler_chain_add(chain, llama_sampler_init_penalties(llama_vocab_n_tokens(m->vocab),
                                                                    last_n, s->repeat_penalty,
                                                                    s->frequency_penalty,
                                                                    s->presence_penalty));
    if (s->temperature <= 0) {
        llama_sampler_chain_add(chain, llama_sampler_init_greedy());
        return chain;
    }
    if (mirostat) {
        /* llama.cpp's common_sampler: the temperature, then Mirostat samples (m = 100, its
         * paper's count of tokens to estimate the distribution's shape from). */
        llama_sampler_chain_add(chain, llama_sampler_init_temp(s->temperature));
        llama_sampler_chain_add(
            chain, s->mirostat == 1
                       ? llama_sampler_init_mirostat(llama_vocab_n_tokens(m->vocab), s->seed,
                                                     s->mirostat_tau, s->mirostat_eta, 100)
                       : llama_sampler_init_mirostat_v2(s->seed, s->mirostat_tau, s->mirostat_eta));
        return chain;
    }
    if (s->typical_p > 0 && s->typical_p < 1.0f)
        llama_sampler_chain_add(chain, llama_sampler_init_typical(s->typical_p, 1));
    if (s->top_p < 1.0f)
        llama_sampler_chain_add(chain, llama_sampler_init_top_p(s->top_p, 1));
    if (s->min_p > 0)
        llama_sampler_chain_add(chain, llama_sampler_init_min_p(s->min_p, 1));
    llama_sampler_chain_add(chain, llama_sampler_init_temp(s->temperature));
    llama_sampler_chain_add(chain, llama_sampler_init_dist(s->seed));
    return chain;
}
