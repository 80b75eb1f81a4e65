/* embed.c - pooled embeddings from a model whose GGUF names a pooling type. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engineInt.h"

enum pc_err pc_slot_embed(struct pc_slot *s, const char *text, bool truncate, size_t limit,
                          float *out, size_t *n_tokens, struct pc_error *err)
{
    struct pc_model *m = s->m;
    uint32_t n_embd = m->info.n_embd_pooled;
    if (n_embd == 0)
        return pc_error_set(err, PC_ERR_INVALID,
                            "the model gives no embeddings: its GGUF names no pooling type (a "
                            "generation model)");
    int32_t *toks = NULL;
    size_t n = 0;
    enum pc_err rc = pc_model_tokenize(m, text, &toks, &n, err);
    if (rc != PC_OK)
        return rc;
    /* Pooling runs over one batch: the whole input must fit in it. */
    size_t max = (size_t)m->n_batch < m->info.n_ctx ? (size_t)m->n_batch : m->info.n_ctx;
    if (limit > 0 && limit < max)
        max = limit; /* the request's own context (Ollama's num_ctx) */
    if (n > max && !truncate) {
        free(toks);
        return pc_error_set(err, PC_ERR_CTX_OVERFLOW,
                            "the input is %zu tokens; the limit for an embedding is %zu", n, max);
    }
    if (n > max)
        n = max;
    if (n == 0) {
        free(toks);
        return pc_error_set(err, PC_ERR_INVALID, "the input is empty");
    }

    int seq = pc_seq_alloc(m, -1);
    if (seq < 0) {
        free(toks);
        return pc_error_set(err, PC_ERR_CONTEXT, "no sequence is free in the context");
    }
    /* With embeddings on, llama.cpp outputs every token and pools them per sequence. The
     * scratch sequence is never marked used: nothing matches it as a prefix, and it is emptied
     * below. pc_seq_decode makes room by evicting idle sequences if the cache is full. */
    llama_memory_t mem = llama_get_memory(m->ctx);
    llama_memory_seq_rm(mem, seq, -1, -1);
    m->seqs[seq].n = 0;
    llama_set_embeddings(m->ctx, true);
    rc = pc_seq_decode(m, seq, toks, n, false, NULL, err);
    free(toks);
    const float *e = rc == PC_OK ? llama_get_embeddings_seq(m->ctx, seq) : NULL;
    if (e != NULL) {
        double norm = 0;
        for (uint32_t i = 0; i < n_embd; i++)
            norm += (double)e[i] * e[i];
        norm = sqrt(norm);
        for (uint32_t i = 0; i < n_embd; i++)
            out[i] = norm > 0 ? (float)(e[i] / norm) : 0.0f;
    }
    llama_set_embeddings(m->ctx, false);
    llama_memory_seq_rm(mem, seq, -1, -1);
    m->seqs[seq].n = 0;
    if (rc != PC_OK)
        return rc;
    if (e == NULL)
        return pc_error_set(err, PC_ERR_DECODE, "the model gave no pooled embedding");
    if (n_tokens != NULL)
        *n_tokens = n;
    return PC_OK;
}
