/* gen.c - one generation in a sequence of the model's context: continue from the longest live
 * prefix, prefill the rest, sample and stream. */
#include "engineInt.h"

#include <stdlib.h>
#include <string.h>

#include "../base/clock.h"
#include "emit.h"

struct pc_gen {
    struct pc_model *m;
    int seq;
    struct llama_sampler *smpl;
    struct pc_emit emit;
    const atomic_bool *cancel;
    struct pc_gen_stats stats;
    int32_t num_predict;
    const char *done_reason;
    llama_token pending; /* sampled and sent, not yet decoded */
    bool has_pending;
};

struct pc_sampling pc_sampling_default(void)
{
    struct pc_sampling s = {
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.9f,
        .min_p = 0.0f,
        .repeat_penalty = 1.1f,
        .repeat_last_n = 64,
        .presence_penalty = 0.0f,
        .frequency_penalty = 0.0f,
        .seed = UINT32_MAX,
        .num_predict = -1,
        .stop = NULL,
        .n_stop = 0,
    };
    return s;
}

static enum pc_err start(struct pc_slot *s, const int32_t *toks, size_t n,
                         const struct pc_gen_request *req, struct pc_gen **out,
                         struct pc_error *err);

static bool abort_requested(void *data)
{
    const atomic_bool *cancel = data;
    return cancel != NULL && atomic_load(cancel);
}

enum pc_err pc_gen_start(struct pc_slot *s, const struct pc_gen_request *req, struct pc_gen **out,
                         struct pc_error *err)
{
    struct pc_model *m = s->m;
    const int32_t *toks = req->tokens;
    int32_t *owned = NULL;
    size_t n = req->n_tokens;
    enum pc_err rc;

    *out = NULL;
    if (toks == NULL && req->prompt != NULL) {
        rc = pc_model_tokenize(m, req->prompt, &owned, &n, err);
        if (rc != PC_OK)
            return rc;
        toks = owned;
    }
    rc = start(s, toks, n, req, out, err);
    free(owned);
    return rc;
}

static enum pc_err start(struct pc_slot *s, const int32_t *toks, size_t n,
                         const struct pc_gen_request *req, struct pc_gen **out,
                         struct pc_error *err)
{
    struct pc_model *m = s->m;
    enum pc_err rc;
    if (n == 0)
        return pc_error_set(err, PC_ERR_INVALID, "the prompt is empty");
    if (n >= m->info.n_ctx)
        return pc_error_set(err, PC_ERR_CTX_OVERFLOW,
                            "the prompt is %zu tokens, and the context window is %u tokens", n,
                            m->info.n_ctx);

    struct pc_gen *g = calloc(1, sizeof(*g));
    if (g == NULL || !pc_emit_init(&g->emit, req->sampling.stop, req->sampling.n_stop) ||
        (g->smpl = pc_sampler_make(m, &req->sampling)) == NULL) {
        if (g != NULL)
            pc_emit_free(&g->emit);
        free(g);
        return pc_error_set(err, PC_ERR_NOMEM, "generation: out of memory");
    }
    g->m = m;
    g->cancel = req->cancel;
    g->num_predict = req->sampling.num_predict;
    g->stats.prompt_tokens = (int32_t)n;

    size_t kept = 0;
    rc = pc_seq_for_prompt(m, toks, n, false, &g->seq, &kept, err);
    if (rc == PC_OK) {
        g->stats.cached_tokens = (int32_t)kept;
        llama_set_abort_callback(m->ctx, abort_requested, (void *)req->cancel);
        int64_t t0 = pc_clock_mono_ns();
        rc = pc_seq_decode(m, g->seq, toks + kept, n - kept, true, req->cancel, err);
        g->stats.prompt_ns = pc_clock_mono_ns() - t0;
    }
    if (rc != PC_OK) {
        pc_gen_free(g);
        return rc;
    }
    *out = g;
    return PC_OK;
}

static void finish(struct pc_gen *g, const char *reason, const char **text, size_t *len, bool *done)
{
    /* Text that is already in out goes first; what the flush releases follows it. */
    struct pc_buf tail = PC_BUF_INIT;
    pc_buf_append(&tail, g->emit.out.data ? g->emit.out.data : "", g->emit.out.len);
    pc_emit_flush(&g->emit);
    pc_buf_append(&tail, g->emit.out.data ? g->emit.out.data : "", g->emit.out.len);
    pc_buf_free(&g->emit.out);
    g->emit.out = tail;
    g->done_reason = reason;
    *text = g->emit.out.data ? g->emit.out.data : "";
    *len = g->emit.out.len;
    *done = true;
}

enum pc_err pc_gen_next(struct pc_gen *g, const char **text, size_t *len, bool *done,
                        struct pc_error *err)
{
    struct pc_model *m = g->m;
    *text = "";
    *len = 0;
    *done = false;
    if (g->done_reason != NULL) {
        *done = true;
        return PC_OK;
    }
    pc_buf_reset(&g->emit.out);
    if (g->cancel != NULL && atomic_load(g->cancel)) {
        finish(g, "cancel", text, len, done);
        return PC_OK;
    }
    if (g->num_predict == 0) {
        finish(g, "length", text, len, done);
        return PC_OK;
    }

    int64_t t0 = pc_clock_mono_ns();
    if (g->has_pending) {
        g->has_pending = false;
        enum pc_err rc = pc_seq_decode(m, g->seq, &g->pending, 1, true, g->cancel, err);
        if (rc != PC_OK) {
            g->done_reason = rc == PC_ERR_CANCELLED ? "cancel" : "error";
            return rc;
        }
    }
    llama_token tok = llama_sampler_sample(g->smpl, m->ctx, -1);
    g->stats.eval_ns += pc_clock_mono_ns() - t0;

    if (llama_vocab_is_eog(m->vocab, tok)) {
        finish(g, "stop", text, len, done);
        return PC_OK;
    }
    g->stats.eval_tokens++;

    char piece[256];
    int32_t n = llama_token_to_piece(m->vocab, tok, piece, sizeof(piece), 0, false);
    if (n < 0)
        n = 0;
    if (!pc_emit_push(&g->emit, piece, (size_t)n)) {
        g->done_reason = "error";
        return pc_error_set(err, PC_ERR_NOMEM, "generation: out of memory");
    }
    if (g->emit.stopped) {
        finish(g, "stop", text, len, done);
        return PC_OK;
    }
    g->pending = tok;
    g->has_pending = true;
    bool out_of_budget = g->num_predict >= 0 && g->stats.eval_tokens >= g->num_predict;
    bool out_of_ctx = m->seqs[g->seq].n + 1 >= m->info.n_ctx;
    if (out_of_budget || out_of_ctx) {
        finish(g, "length", text, len, done);
        return PC_OK;
    }
    *text = g->emit.out.data ? g->emit.out.data : "";
    *len = g->emit.out.len;
    return PC_OK;
}

const char *pc_gen_done_reason(const struct pc_gen *g)
{
    return g->done_reason;
}

const struct pc_gen_stats *pc_gen_stats(const struct pc_gen *g)
{
    return &g->stats;
}

enum pc_err pc_gen_tokens(const struct pc_gen *g, int32_t **out, size_t *n, struct pc_error *err)
{
    const struct pc_seq *q = &g->m->seqs[g->seq];
    size_t total = q->n + (g->has_pending ? 1 : 0);
    *out = malloc((total ? total : 1) * sizeof(**out));
    *n = 0;
    if (*out == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    memcpy(*out, q->toks, q->n * sizeof(**out));
    if (g->has_pending)
        (*out)[q->n] = g->pending; /* sampled and sent, not yet decoded */
    *n = total;
    return PC_OK;
}

void pc_gen_free(struct pc_gen *g)
{
    if (g == NULL)
        return;
    llama_set_abort_callback(g->m->ctx, NULL, NULL);
    llama_sampler_free(g->smpl);
    pc_emit_free(&g->emit);
    free(g);
}
