/* gen.c - one task of a model's decode loop as its consumer sees it: submission, and the
 * bounded buffer through which the answer, the stats and the end pass from the loop's thread
 * to the consumer's. */
#include "engineInt.h"

#include <stdlib.h>
#include <string.h>

#include "../base/clock.h"

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
        .typical_p = 1.0f,
        .mirostat = 0,
        .mirostat_tau = 5.0f,
        .mirostat_eta = 0.1f,
        .seed = UINT32_MAX,
        .num_predict = -1,
        .stop = NULL,
        .n_stop = 0,
    };
    return s;
}

static void gen_destroy(struct pc_gen *g)
{
    if (g->smpl != NULL)
        llama_sampler_free(g->smpl);
    pc_emit_free(&g->emit);
    pc_buf_free(&g->out);
    pc_buf_free(&g->taken);
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
    free(g->prompt);
    free((void *)g->offer.toks);
    free(g->tokens);
    free(g->blob);
    free(g->logits);
    free(g->cuts);
    free(g->lps);
    free(g->lp_start);
    free(g->lp_cuts);
    free(g->keep_special);
    free(g);
}

void pc_gen_unref(struct pc_gen *g)
{
    pthread_mutex_lock(&g->lock);
    bool last = --g->refs == 0;
    pthread_mutex_unlock(&g->lock);
    if (last)
        gen_destroy(g);
}

static enum pc_err copy_prompt(struct pc_gen *g, const struct pc_gen_request *req,
                               struct pc_error *err)
{
    struct pc_model *m = g->m;
    if (req->tokens == NULL && req->prompt != NULL)
        return pc_model_tokenize(m, req->prompt, &g->prompt, &g->n_prompt, err);
    g->n_prompt = req->n_tokens;
    g->prompt = malloc((req->n_tokens ? req->n_tokens : 1) * sizeof(*g->prompt));
    if (g->prompt == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "generation: out of memory");
    if (req->n_tokens > 0)
        memcpy(g->prompt, req->tokens, req->n_tokens * sizeof(*g->prompt));
    return PC_OK;
}

/* The offer's tokens are copied: the planner reads them on the loop's thread. Its blob stays
 * the caller's, alive until the prompt is done. */
static bool copy_offer(struct pc_gen *g, const struct pc_restore_offer *offer)
{
    if (offer == NULL || offer->blob == NULL)
        return true;
    int32_t *toks = malloc((offer->n ? offer->n : 1) * sizeof(*toks));
    if (toks == NULL)
        return false;
    memcpy(toks, offer->toks, offer->n * sizeof(*toks));
    g->offer = *offer;
    g->offer.toks = toks;
    return true;
}

enum pc_err pc_gen_start(struct pc_model *m, const struct pc_gen_request *req, struct pc_gen **out,
                         struct pc_error *err)
{
    *out = NULL;
    struct pc_gen *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "generation: out of memory");
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->m = m;
    g->refs = 2; /* the loop's and the consumer's */
    atomic_init(&g->cancel, false);
    enum pc_err rc = copy_prompt(g, req, err);
    if (rc == PC_OK && g->n_prompt == 0)
        rc = pc_error_set(err, PC_ERR_INVALID, "the prompt is empty");
    if (rc == PC_OK && g->n_prompt >= m->info.n_ctx)
        rc = pc_error_set(err, PC_ERR_CTX_OVERFLOW,
                          "the prompt is %zu tokens, and the context window is %u tokens",
                          g->n_prompt, m->info.n_ctx);
    if (rc == PC_OK &&
        (!pc_emit_init(&g->emit, req->sampling.stop, req->sampling.n_stop) ||
         (!req->prefill_only && (g->smpl = pc_sampler_make(m, &req->sampling)) == NULL) ||
         !copy_offer(g, req->offer)))
        rc = pc_error_set(err, PC_ERR_NOMEM, "generation: out of memory");
    if (rc != PC_OK) {
        gen_destroy(g);
        return rc;
    }
    if (req->sampling.n_keep_special > 0) {
        size_t bytes = req->sampling.n_keep_special * sizeof(*g->keep_special);
        if ((g->keep_special = malloc(bytes)) == NULL) {
            gen_destroy(g);
            return pc_error_set(err, PC_ERR_NOMEM, "generation: out of memory");
        }
        memcpy(g->keep_special, req->sampling.keep_special, bytes);
        g->n_keep_special = req->sampling.n_keep_special;
    }
    g->prio = req->priority;
    g->prefill_only = req->prefill_only;
    g->want_blob = req->want_blob;
    g->want_logits = req->want_logits;
    g->logprobs = req->logprobs;
    g->top_logprobs = req->top_logprobs < 0                     ? 0
                      : req->top_logprobs > PC_TOP_LOGPROBS_MAX ? PC_TOP_LOGPROBS_MAX
                                                                : req->top_logprobs;
    g->num_predict = req->sampling.num_predict;
    g->window = req->window > 0 && req->window < m->info.n_ctx ? req->window : m->info.n_ctx;
    g->shift = req->shift;
    g->n_keep = req->n_keep < 0 ? 0 : req->n_keep;
    g->ext_cancel = req->cancel;
    g->seq = -1;
    g->st.prompt_tokens = (int32_t)g->n_prompt;
    g->shared_st = g->st;
    g->cst = g->st;
    pc_loop_submit(m, g);
    *out = g;
    return PC_OK;
}

/* ---- the loop's side ---------------------------------------------------------------------- */

/* With g->lock held, which it releases: wake the consumer, blocked in a wait or watching. The
 * watcher's wake runs without the lock (it may take locks of its own that are held around a
 * poll); pc_gen_free waits for a wake under way before it lets go. */
static void wake_unlock(struct pc_gen *g)
{
    pthread_cond_broadcast(&g->cond);
    void (*wake)(void *) = g->wake;
    void *arg = g->wake_arg;
    if (wake != NULL)
        g->waking++;
    pthread_mutex_unlock(&g->lock);
    if (wake == NULL)
        return;
    wake(arg);
    pthread_mutex_lock(&g->lock);
    if (--g->waking == 0)
        pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* With g->lock held: one piece more, its end remembered so that the consumer gets the pieces
 * one by one (a streamed chunk per token, as Ollama and OpenAI send them). */
static bool push_piece(struct pc_gen *g, const char *text, size_t len)
{
    if (g->n_cuts == g->cap_cuts) {
        size_t cap = g->cap_cuts ? g->cap_cuts * 2 : 16;
        size_t *p = realloc(g->cuts, cap * sizeof(*p));
        if (p == NULL)
            return false;
        g->cuts = p;
        if (g->logprobs) {
            size_t *l = realloc(g->lp_cuts, cap * sizeof(*l));
            if (l == NULL)
                return false;
            g->lp_cuts = l;
        }
        g->cap_cuts = cap;
    }
    if (!pc_buf_append(&g->out, text, len))
        return false;
    /* A piece releases the tokens whose text starts in what is published so far; one held back
     * whole (a stop string's possible start) waits, and is never released if the stop eats it. */
    g->published += len;
    while (g->lp_covered < g->n_lps && g->lp_start[g->lp_covered] < g->published)
        g->lp_covered++;
    if (g->logprobs)
        g->lp_cuts[g->n_cuts] = g->lp_covered;
    g->cuts[g->n_cuts++] = g->out.len;
    return true;
}

void pc_gen_publish_text(struct pc_gen *g, const char *text, size_t len)
{
    pthread_mutex_lock(&g->lock);
    bool ok = push_piece(g, text, len);
    g->shared_st = g->st;
    if (!ok && g->err.code == PC_OK)
        pc_error_set(&g->err, PC_ERR_NOMEM, "generation: out of memory");
    wake_unlock(g);
}

void pc_gen_publish_logprobs(struct pc_gen *g, const struct pc_token_logprobs *lp,
                             size_t text_start)
{
    pthread_mutex_lock(&g->lock);
    if (g->n_lps == g->cap_lps) {
        size_t cap = g->cap_lps ? g->cap_lps * 2 : 16;
        struct pc_token_logprobs *p = realloc(g->lps, cap * sizeof(*p));
        if (p != NULL)
            g->lps = p;
        size_t *st = p != NULL ? realloc(g->lp_start, cap * sizeof(*st)) : NULL;
        if (st == NULL) {
            if (g->err.code == PC_OK)
                pc_error_set(&g->err, PC_ERR_NOMEM, "generation: out of memory");
            pthread_mutex_unlock(&g->lock);
            return;
        }
        g->lp_start = st;
        g->cap_lps = cap;
    }
    g->lp_start[g->n_lps] = text_start;
    g->lps[g->n_lps++] = *lp;
    pthread_mutex_unlock(&g->lock);
}

void pc_gen_publish_prompt(struct pc_gen *g)
{
    pthread_mutex_lock(&g->lock);
    g->prompt_done = true;
    g->shared_st = g->st;
    wake_unlock(g);
}

bool pc_gen_buffer_full(struct pc_gen *g)
{
    pthread_mutex_lock(&g->lock);
    bool full = g->out.len >= PC_GEN_BUF_MAX;
    pthread_mutex_unlock(&g->lock);
    return full;
}

/* The sequence's tokens and the one sampled but not decoded: the answer as it was sent. */
static void copy_tokens(struct pc_gen *g, llama_token **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (g->seq < 0)
        return;
    const struct pc_seq *q = &g->m->seqs[g->seq];
    size_t total = q->n + (g->has_pending ? 1 : 0);
    llama_token *t = malloc((total ? total : 1) * sizeof(*t));
    if (t == NULL)
        return;
    memcpy(t, q->toks, q->n * sizeof(*t));
    if (g->has_pending)
        t[q->n] = g->pending;
    *out = t;
    *n = total;
}

void pc_gen_finish(struct pc_gen *g, const char *reason, const struct pc_error *err)
{
    llama_token *toks = NULL;
    size_t n = 0;
    pc_emit_flush(&g->emit);
    if (err == NULL)
        copy_tokens(g, &toks, &n);
    pthread_mutex_lock(&g->lock);
    if (g->emit.out.len > 0 && !push_piece(g, g->emit.out.data, g->emit.out.len) &&
        g->err.code == PC_OK)
        pc_error_set(&g->err, PC_ERR_NOMEM, "generation: out of memory");
    if (err != NULL && g->err.code == PC_OK)
        g->err = *err;
    g->tokens = toks;
    g->n_tokens = n;
    g->reason = g->err.code != PC_OK && strcmp(reason, "cancel") != 0 ? "error" : reason;
    /* The last tokens' log-probabilities: all, unless a stop string ate some tokens' text. */
    if (!g->emit.stopped)
        g->lp_covered = g->n_lps;
    g->shared_st = g->st;
    g->prompt_done = true;
    g->finished = true;
    g->state = PC_TASK_DONE;
    wake_unlock(g);
    pc_gen_unref(g);
}

/* ---- the consumer's side ----------------------------------------------------------------- */

enum pc_err pc_gen_wait_prompt(struct pc_gen *g, struct pc_error *err)
{
    pthread_mutex_lock(&g->lock);
    while (!g->prompt_done)
        pthread_cond_wait(&g->cond, &g->lock);
    g->cst = g->shared_st;
    enum pc_err rc = g->err.code;
    if (rc != PC_OK && err != NULL)
        *err = g->err;
    if (g->finished)
        g->creason = g->reason;
    pthread_mutex_unlock(&g->lock);
    return rc;
}

/* With g->lock held: hand the first piece the loop made to the consumer's side. */
static enum pc_err take(struct pc_gen *g, const char **text, size_t *len, bool *done,
                        struct pc_error *err)
{
    bool was_full = g->out.len >= PC_GEN_BUF_MAX;
    pc_buf_reset(&g->taken);
    if (g->n_cuts > 0) {
        size_t n = g->cuts[0];
        if (!pc_buf_append(&g->taken, g->out.data, n) && g->err.code == PC_OK)
            pc_error_set(&g->err, PC_ERR_NOMEM, "generation: out of memory");
        memmove(g->out.data, g->out.data + n, g->out.len - n);
        g->out.len -= n;
        g->out.data[g->out.len] = '\0';
        g->n_cuts--;
        for (size_t i = 0; i < g->n_cuts; i++)
            g->cuts[i] = g->cuts[i + 1] - n;
        if (g->logprobs) {
            g->lp_released = g->lp_cuts[0];
            memmove(g->lp_cuts, g->lp_cuts + 1, g->n_cuts * sizeof(*g->lp_cuts));
        }
    }
    if (g->finished && g->n_cuts == 0)
        g->lp_released = g->lp_covered; /* not those whose text a stop string ate */
    g->cst = g->shared_st;
    *text = g->taken.data ? g->taken.data : "";
    *len = g->taken.len;
    *done = g->finished && g->n_cuts == 0;
    if (*done)
        g->creason = g->reason;
    enum pc_err rc = *done ? g->err.code : PC_OK;
    if (rc != PC_OK && err != NULL)
        *err = g->err;
    if (was_full && g->out.len < PC_GEN_BUF_MAX && !g->finished)
        pc_loop_kick(g->m); /* its sequence was paused for this buffer */
    return rc;
}

enum pc_err pc_gen_next(struct pc_gen *g, const char **text, size_t *len, bool *done,
                        struct pc_error *err)
{
    pthread_mutex_lock(&g->lock);
    while (g->n_cuts == 0 && !g->finished)
        pthread_cond_wait(&g->cond, &g->lock);
    enum pc_err rc = take(g, text, len, done, err);
    pthread_mutex_unlock(&g->lock);
    return rc;
}

enum pc_err pc_gen_poll(struct pc_gen *g, const char **text, size_t *len, bool *done,
                        struct pc_error *err)
{
    pthread_mutex_lock(&g->lock);
    enum pc_err rc = take(g, text, len, done, err);
    pthread_mutex_unlock(&g->lock);
    return rc;
}

size_t pc_gen_take_logprobs(struct pc_gen *g, struct pc_token_logprobs **out)
{
    *out = NULL;
    pthread_mutex_lock(&g->lock);
    size_t n = g->lp_released - g->lp_given;
    if (n > 0 && (*out = malloc(n * sizeof(**out))) != NULL) {
        memcpy(*out, g->lps + g->lp_given, n * sizeof(**out));
        g->lp_given = g->lp_released;
    }
    pthread_mutex_unlock(&g->lock);
    return *out != NULL ? n : 0;
}

void pc_gen_watch(struct pc_gen *g, void (*wake)(void *arg), void *arg)
{
    pthread_mutex_lock(&g->lock);
    g->wake = wake;
    g->wake_arg = arg;
    bool ready = g->n_cuts > 0 || g->finished;
    pthread_mutex_unlock(&g->lock);
    if (ready)
        wake(arg);
}

const char *pc_gen_done_reason(const struct pc_gen *g)
{
    return g->creason;
}

const struct pc_gen_stats *pc_gen_stats(const struct pc_gen *g)
{
    return &g->cst;
}

const struct pc_restore_result *pc_gen_restore(const struct pc_gen *g)
{
    return &g->restore;
}

enum pc_err pc_gen_tokens(const struct pc_gen *g, int32_t **out, size_t *n, struct pc_error *err)
{
    struct pc_gen *mg = (struct pc_gen *)g;
    *n = 0;
    pthread_mutex_lock(&mg->lock);
    size_t total = g->finished ? g->n_tokens : 0;
    *out = malloc((total ? total : 1) * sizeof(**out));
    if (*out != NULL && total > 0)
        memcpy(*out, g->tokens, total * sizeof(**out));
    pthread_mutex_unlock(&mg->lock);
    if (*out == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    *n = total;
    return PC_OK;
}

const float *pc_gen_logits(const struct pc_gen *g, int32_t *n_vocab)
{
    *n_vocab = (int32_t)g->m->info.n_vocab;
    return g->prompt_done ? g->logits : NULL;
}

void pc_gen_take_blob(struct pc_gen *g, uint8_t **blob, size_t *size)
{
    pthread_mutex_lock(&g->lock);
    *blob = g->finished ? g->blob : NULL;
    *size = g->finished ? g->blob_size : 0;
    if (g->finished) {
        g->blob = NULL;
        g->blob_size = 0;
    }
    pthread_mutex_unlock(&g->lock);
}

void pc_gen_free(struct pc_gen *g)
{
    if (g == NULL)
        return;
    struct pc_model *m = g->m;
    pthread_mutex_lock(&g->lock);
    bool finished = g->finished;
    g->wake = NULL;
    while (g->waking > 0)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
    atomic_store(&g->cancel, true);
    if (!finished)
        pc_loop_kick(m);
    pc_gen_unref(g);
}
