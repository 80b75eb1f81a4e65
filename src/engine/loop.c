/* loop.c - a model's decode loop: the one thread that owns its context. Tasks wait in priority
 * order; at most n_parallel are active; each step decodes one batch holding a prompt chunk or
 * the next token of every active task (continuous batching), then samples each task's token
 * and hands its text to the task's buffer. */
#include "engineInt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../base/clock.h"
#include "../base/log.h"
#include "../base/tokens.h"

void pc_loop_kick(struct pc_model *m)
{
    pthread_mutex_lock(&m->lock);
    m->kicks++;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

void pc_loop_submit(struct pc_model *m, struct pc_gen *g)
{
    pthread_mutex_lock(&m->lock);
    g->order = m->next_order++;
    g->next = m->incoming;
    m->incoming = g;
    m->kicks++;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

static bool cancelled(const struct pc_gen *g)
{
    return atomic_load(&g->cancel) || (g->ext_cancel != NULL && atomic_load(g->ext_cancel));
}

/* Priority first (a user's request before precharges high, normal, low), then arrival. */
static bool before(const struct pc_gen *a, const struct pc_gen *b)
{
    return a->prio < b->prio || (a->prio == b->prio && a->order < b->order);
}

static void waiting_insert(struct pc_model *m, struct pc_gen *g)
{
    struct pc_gen **p = &m->waiting;
    while (*p != NULL && before(*p, g))
        p = &(*p)->next;
    g->next = *p;
    *p = g;
}

static void active_remove(struct pc_model *m, int i)
{
    memmove(&m->active[i], &m->active[i + 1], (size_t)(m->n_active - i - 1) * sizeof(*m->active));
    m->n_active--;
}

/* End a task (it is in no list any more): its sequence stays live for the next request, or is
 * emptied when what it holds is not known (a failed decode). */
static void end_task(struct pc_model *m, struct pc_gen *g, const char *reason,
                     const struct pc_error *err)
{
    int seq = g->seq;
    if (strcmp(reason, "cancel") == 0)
        m->lwork.cancelled++;
    if (err == NULL && seq >= 0 && g->want_blob && g->st.cached_tokens < (int32_t)g->n_prompt) {
        struct pc_error xerr = {0};
        if (pc_seq_export(m, seq, &g->blob, &g->blob_size, &xerr) != PC_OK)
            pc_log_warn("engine", "a precharged sequence was not serialized: %s", xerr.msg);
    }
    pc_gen_finish(g, reason, err); /* g may be gone after this */
    if (seq < 0)
        return;
    struct pc_seq *q = &m->seqs[seq];
    q->owner = NULL;
    q->last_used_ns = pc_clock_mono_ns();
    if (err != NULL)
        pc_seq_clear(m, seq);
}

static void fail_task(struct pc_model *m, struct pc_gen *g, enum pc_err code, const char *msg)
{
    struct pc_error err = {0};
    pc_error_set(&err, code, "%s", msg);
    end_task(m, g, "error", &err);
}

static bool no_owner(const struct pc_model *m)
{
    for (int i = 0; i < m->n_seqs; i++)
        if (m->seqs[i].owner != NULL)
            return false;
    return true;
}

/* Give the task its sequence and its prefix. False when it ended there: it failed, or it was a
 * precharge of a prefix that is live already. */
static bool plan(struct pc_model *m, struct pc_gen *g)
{
    struct pc_error err = {0};
    int seq = -1;
    size_t kept = 0;
    g->prefill_t0 = pc_clock_mono_ns();
    enum pc_err rc = pc_seq_plan(m, g->prompt, g->n_prompt, g->prefill_only,
                                 g->offer.blob != NULL ? &g->offer : NULL, no_owner(m), &seq, &kept,
                                 &g->restore, &err);
    if (rc != PC_OK) {
        end_task(m, g, "error", &err);
        return false;
    }
    g->planned = true;
    g->seq = seq;
    m->seqs[seq].owner = g;
    g->n_done = kept;
    g->st.cached_tokens = (int32_t)kept;
    g->state = PC_TASK_PREFILL;
    if (kept == g->n_prompt) { /* only a precharge keeps its whole prompt */
        pc_gen_publish_prompt(g);
        end_task(m, g, "prefilled", NULL);
        return false;
    }
    return true;
}

/* A user's request that finds every place taken by precharges takes the place of the lowest
 * of them: it goes back to waiting with its sequence and its progress, and resumes later. */
static void preempt(struct pc_model *m)
{
    while (m->waiting != NULL && m->waiting->prio == PC_PRIO_USER && m->n_active >= m->n_parallel) {
        int victim = -1;
        for (int i = 0; i < m->n_active; i++)
            if (m->active[i]->prio != PC_PRIO_USER &&
                (victim < 0 || before(m->active[victim], m->active[i])))
                victim = i;
        if (victim < 0)
            return;
        struct pc_gen *g = m->active[victim];
        active_remove(m, victim);
        waiting_insert(m, g);
        m->lwork.preempted++;
    }
}

/* A task whose client stopped reading: its buffer is full, and it waits for the client. */
static bool stalled(struct pc_gen *g)
{
    return g->state == PC_TASK_GENERATE && pc_gen_buffer_full(g);
}

/* The first waiting task that can run (a stalled one waits for its client, not for a place);
 * taken off the list. NULL when none can. */
static struct pc_gen *pop_runnable(struct pc_model *m)
{
    for (struct pc_gen **p = &m->waiting; *p != NULL; p = &(*p)->next) {
        struct pc_gen *g = *p;
        if (g->planned && stalled(g))
            continue;
        *p = g->next;
        g->next = NULL;
        return g;
    }
    return NULL;
}

/* Cancelled tasks end wherever they are: active, or waiting (a stalled client that left). */
static void reap(struct pc_model *m)
{
    for (int i = 0; i < m->n_active;) {
        struct pc_gen *g = m->active[i];
        if (cancelled(g)) {
            active_remove(m, i);
            end_task(m, g, "cancel", NULL);
            continue;
        }
        i++;
    }
    for (struct pc_gen **p = &m->waiting; *p != NULL;) {
        struct pc_gen *g = *p;
        if (cancelled(g)) {
            *p = g->next;
            end_task(m, g, "cancel", NULL);
            continue;
        }
        p = &g->next;
    }
}

/* Stalled tasks give their places to tasks that can run: they wait, keeping their sequences,
 * and come back once their clients read again. One stalled client never holds up the rest. */
static void yield_stalled(struct pc_model *m)
{
    bool others = false;
    for (struct pc_gen *g = m->waiting; g != NULL && !others; g = g->next)
        others = !(g->planned && stalled(g));
    if (!others || m->n_active < m->n_parallel)
        return;
    for (int i = 0; i < m->n_active;) {
        struct pc_gen *g = m->active[i];
        if (stalled(g)) {
            active_remove(m, i);
            waiting_insert(m, g);
            m->lwork.yielded++;
            continue;
        }
        i++;
    }
}

static void admit(struct pc_model *m)
{
    reap(m);
    yield_stalled(m);
    preempt(m);
    struct pc_gen *g;
    while (m->n_active < m->n_parallel && (g = pop_runnable(m)) != NULL) {
        if (g->planned || plan(m, g)) {
            /* Kept in priority order: the batch is filled from the front. */
            int i = m->n_active;
            while (i > 0 && before(g, m->active[i - 1])) {
                m->active[i] = m->active[i - 1];
                i--;
            }
            m->active[i] = g;
            m->n_active++;
        }
    }
}

static void batch_add(struct llama_batch *b, llama_token tok, llama_pos pos, int seq, bool logits)
{
    int32_t i = b->n_tokens++;
    b->token[i] = tok;
    b->pos[i] = pos;
    b->n_seq_id[i] = 1;
    b->seq_id[i][0] = seq;
    b->logits[i] = logits;
}

/* One token for each generating task whose client keeps up, then prompt chunks in priority
 * order with what is left of the batch: a long prefill never holds back the others' tokens. */
static void build(struct pc_model *m, int32_t *batch_n)
{
    struct llama_batch *b = &m->batch;
    int32_t budget = m->n_batch;
    b->n_tokens = 0;
    for (int i = 0; i < m->n_active; i++) {
        struct pc_gen *g = m->active[i];
        batch_n[i] = 0;
        g->batch_idx = -1;
        if (g->state != PC_TASK_GENERATE || budget == 0)
            continue;
        if (pc_gen_buffer_full(g)) {
            m->lwork.paused_steps++;
            continue;
        }
        const struct pc_seq *q = &m->seqs[g->seq];
        batch_add(b, g->pending, (llama_pos)q->n, g->seq, true);
        g->batch_idx = b->n_tokens - 1;
        batch_n[i] = 1;
        budget--;
    }
    for (int i = 0; i < m->n_active && budget > 0; i++) {
        struct pc_gen *g = m->active[i];
        if (g->state != PC_TASK_PREFILL)
            continue;
        const struct pc_seq *q = &m->seqs[g->seq];
        size_t left = g->n_prompt - g->n_done;
        int32_t take = left < (size_t)budget ? (int32_t)left : budget;
        for (int32_t k = 0; k < take; k++) {
            bool last = g->n_done + (size_t)k + 1 == g->n_prompt;
            batch_add(b, g->prompt[g->n_done + (size_t)k], (llama_pos)(q->n + (size_t)k), g->seq,
                      last && !g->prefill_only);
        }
        if (g->n_done + (size_t)take == g->n_prompt && !g->prefill_only)
            g->batch_idx = b->n_tokens - 1;
        batch_n[i] = take;
        budget -= take;
    }
}

/* Sample the task's next token from its row of the batch's logits, and pass its text on.
 * False when the task ended. */
/* A request that asked for them: the sampled token's log-probability and the step's best
 * alternatives, from the logits at g->batch_idx (a log-softmax over the vocabulary). */
static void record_logprobs(struct pc_model *m, struct pc_gen *g, llama_token tok,
                            size_t text_start)
{
    const float *l = llama_get_logits_ith(m->ctx, g->batch_idx);
    int32_t nv = (int32_t)m->info.n_vocab;
    if (l == NULL || nv <= 0)
        return;
    float max = l[0];
    for (int32_t i = 1; i < nv; i++)
        max = l[i] > max ? l[i] : max;
    double sum = 0;
    for (int32_t i = 0; i < nv; i++)
        sum += exp((double)(l[i] - max));
    float lse = max + (float)log(sum);
    struct pc_token_logprobs lp = {.sampled = {tok, l[tok] - lse}};
    /* The best top_logprobs, kept sorted by insertion (a handful of a whole vocabulary). */
    int32_t want = g->top_logprobs, k = 0;
    for (int32_t i = 0; i < nv && want > 0; i++) {
        if (k == want && l[i] <= lp.top[k - 1].logprob)
            continue;
        int32_t j = k < want ? k++ : k - 1;
        for (; j > 0 && lp.top[j - 1].logprob < l[i]; j--)
            lp.top[j] = lp.top[j - 1];
        lp.top[j] = (struct pc_logprob){i, l[i]};
    }
    for (int32_t i = 0; i < k; i++)
        lp.top[i].logprob -= lse;
    lp.n_top = k;
    pc_gen_publish_logprobs(g, &lp, text_start);
}

/* The task's sequence fills its window: drop the half of the tokens after the first n_keep,
 * and move the rest back over them, as llama-server's context shift does (only this sequence's
 * cells, so the other tasks and the precharged sequences stay as they are). The sequence's token
 * record follows, so that later prefix matches see what the cache holds. False when the cache
 * cannot shift (llama_memory_can_shift: e.g. a recurrent model) or nothing can be dropped: the
 * answer then ends with "length". */
static bool shift_context(struct pc_model *m, struct pc_gen *g)
{
    llama_memory_t mem = llama_get_memory(m->ctx);
    struct pc_seq *q = &m->seqs[g->seq];
    size_t keep = (size_t)g->n_keep < q->n ? (size_t)g->n_keep : q->n;
    /* A prefix copied from another sequence (pc_seq_plan's llama_memory_seq_cp) shares its
     * cells, and a cell has one position for every sequence that holds it: moving one would move
     * the other sequence's too. So the prefix this one has in common with any other stays. */
    for (int i = 0; i < m->n_seqs; i++) {
        const struct pc_seq *o = &m->seqs[i];
        size_t k =
            i != g->seq && o->used ? pc_tokens_common_prefix(o->toks, o->n, q->toks, q->n) : 0;
        keep = k > keep ? k : keep;
    }
    size_t discard = (q->n - keep) / 2;
    if (discard == 0 || !llama_memory_can_shift(mem))
        return false;
    if (!llama_memory_seq_rm(mem, g->seq, (llama_pos)keep, (llama_pos)(keep + discard)))
        return false;
    llama_memory_seq_add(mem, g->seq, (llama_pos)(keep + discard), -1, -(llama_pos)discard);
    memmove(q->toks + keep, q->toks + keep + discard, (q->n - keep - discard) * sizeof(*q->toks));
    q->n -= discard;
    m->lwork.context_shifts++;
    return true;
}

static bool sample(struct pc_model *m, struct pc_gen *g)
{
    llama_token tok = llama_sampler_sample(g->smpl, m->ctx, g->batch_idx);
    if (llama_vocab_is_eog(m->vocab, tok)) {
        end_task(m, g, "stop", NULL);
        return false;
    }
    g->st.eval_tokens++;
    bool special = false;
    for (size_t i = 0; i < g->n_keep_special && !special; i++)
        special = g->keep_special[i] == tok;
    char piece[256];
    int32_t n = llama_token_to_piece(m->vocab, tok, piece, sizeof(piece), 0, special);
    if (n < 0)
        n = 0;
    if (g->logprobs)
        record_logprobs(m, g, tok, g->text_pushed);
    g->text_pushed += (size_t)n;
    if (!pc_emit_push(&g->emit, piece, (size_t)n)) {
        fail_task(m, g, PC_ERR_NOMEM, "generation: out of memory");
        return false;
    }
    if (g->emit.out.len > 0)
        pc_gen_publish_text(g, g->emit.out.data, g->emit.out.len);
    if (g->emit.stopped) {
        end_task(m, g, "stop", NULL);
        return false;
    }
    g->pending = tok;
    g->has_pending = true;
    bool out_of_budget = g->num_predict >= 0 && g->st.eval_tokens >= g->num_predict;
    bool out_of_ctx = m->seqs[g->seq].n + 1 >= g->window && !(g->shift && shift_context(m, g));
    if (out_of_budget || out_of_ctx) {
        end_task(m, g, "length", NULL);
        return false;
    }
    return true;
}

/* The prompt is in: a precharge ends, a request gets its first token. False when it ended. */
static bool prompt_done(struct pc_model *m, struct pc_gen *g)
{
    g->st.prompt_ns = pc_clock_mono_ns() - g->prefill_t0;
    if (g->want_logits && g->batch_idx >= 0) {
        const float *l = llama_get_logits_ith(m->ctx, g->batch_idx);
        size_t nv = m->info.n_vocab;
        g->logits = l != NULL ? malloc(nv * sizeof(float)) : NULL;
        if (g->logits != NULL)
            memcpy(g->logits, l, nv * sizeof(float));
    }
    pc_gen_publish_prompt(g);
    if (g->prefill_only) {
        end_task(m, g, "prefilled", NULL);
        return false;
    }
    g->state = PC_TASK_GENERATE;
    if (g->num_predict == 0) {
        end_task(m, g, "length", NULL);
        return false;
    }
    return sample(m, g);
}

/* After a decode: the tokens are in their sequences; sample what needs sampling. */
static void advance(struct pc_model *m, const int32_t *batch_n, int64_t step_ns)
{
    int n_before = m->n_active;
    struct pc_gen *list[n_before > 0 ? n_before : 1];
    int32_t counts[n_before > 0 ? n_before : 1];
    memcpy(list, m->active, (size_t)n_before * sizeof(*list));
    memcpy(counts, batch_n, (size_t)n_before * sizeof(*counts));
    m->n_active = 0;
    for (int i = 0; i < n_before; i++) {
        struct pc_gen *g = list[i];
        bool alive = true;
        if (counts[i] > 0) {
            const llama_token *toks =
                g->state == PC_TASK_GENERATE ? &g->pending : g->prompt + g->n_done;
            if (!pc_seq_push(m, g->seq, toks, (size_t)counts[i])) {
                fail_task(m, g, PC_ERR_NOMEM, "decode: out of memory");
                continue;
            }
            m->seqs[g->seq].last_used_ns = pc_clock_mono_ns();
            if (g->state == PC_TASK_GENERATE) {
                g->has_pending = false;
                g->st.eval_ns += step_ns;
                alive = sample(m, g);
            } else {
                g->n_done += (size_t)counts[i];
                if (g->n_done == g->n_prompt)
                    alive = prompt_done(m, g);
            }
        }
        if (alive)
            m->active[m->n_active++] = g;
    }
}

/* The batch did not fit in the cache: make room by dropping an idle sequence, or end the
 * lowest task in the batch. */
static void make_room(struct pc_model *m)
{
    int victim = pc_seq_lru_idle(m, -1);
    if (victim >= 0) {
        pc_seq_evict(m, victim);
        return;
    }
    struct pc_gen *g = m->active[m->n_active - 1];
    m->n_active--;
    char msg[160];
    snprintf(msg, sizeof(msg),
             "the context is full: %u cells shared by %d sequences at work (a window of %u "
             "tokens each)",
             llama_n_ctx(m->ctx), m->n_active + 1, m->info.n_ctx);
    fail_task(m, g, PC_ERR_CTX_OVERFLOW, msg);
}

static void fail_batch(struct pc_model *m, const int32_t *batch_n, int32_t rc)
{
    char msg[64];
    snprintf(msg, sizeof(msg), "llama_decode() failed with %d", rc);
    int n = m->n_active;
    struct pc_gen *list[n > 0 ? n : 1];
    memcpy(list, m->active, (size_t)n * sizeof(*list));
    m->n_active = 0;
    for (int i = 0; i < n; i++) {
        if (batch_n[i] > 0)
            fail_task(m, list[i], PC_ERR_DECODE, msg);
        else
            m->active[m->n_active++] = list[i];
    }
}

/* One step: admit, build, decode, advance. Returns the tokens decoded (0: nothing to do). */
static int32_t step(struct pc_model *m)
{
    admit(m);
    if (m->n_active == 0)
        return 0;
    int32_t batch_n[m->n_parallel];
    for (;;) {
        build(m, batch_n);
        if (m->batch.n_tokens == 0)
            return 0;
        pc_threads_begin();
        if (m->n_threads == 0) {
            int32_t t = pc_threads_pick(m->threads);
            if (t != m->lwork.threads) {
                llama_set_n_threads(m->ctx, t, t);
                m->lwork.threads = t;
            }
        }
        int64_t t0 = pc_clock_mono_ns();
        int32_t rc = llama_decode(m->ctx, m->batch);
        int64_t dt = pc_clock_mono_ns() - t0;
        pc_threads_end();
        if (rc == 1) {
            make_room(m);
            if (m->n_active == 0)
                return 0;
            continue;
        }
        if (rc != 0) {
            fail_batch(m, batch_n, rc);
            return 0;
        }
        int tasks = 0;
        for (int i = 0; i < m->n_active; i++)
            tasks += batch_n[i] > 0;
        m->lwork.steps++;
        m->lwork.batch_tokens += (uint64_t)m->batch.n_tokens;
        m->lwork.multi_steps += tasks > 1;
        int32_t n = m->batch.n_tokens;
        advance(m, batch_n, dt);
        return n;
    }
}

static void take_incoming(struct pc_model *m)
{
    struct pc_gen *g = m->incoming;
    m->incoming = NULL;
    /* incoming is newest first; insertion keeps arrival order within a priority anyway */
    while (g != NULL) {
        struct pc_gen *next = g->next;
        waiting_insert(m, g);
        g = next;
    }
}

static void publish_stats(struct pc_model *m)
{
    int32_t waiting = 0;
    for (const struct pc_gen *g = m->waiting; g != NULL; g = g->next)
        waiting++;
    m->lstats = m->lwork;
    m->lstats.active = m->n_active;
    m->lstats.waiting = waiting;
}

/* m->lock held, let go of while each runs: the calls waiting for the loop, in order. */
static void run_calls(struct pc_model *m)
{
    while (m->calls != NULL) {
        struct pc_call *c = m->calls;
        m->calls = c->next;
        pthread_mutex_unlock(&m->lock);
        c->fn(&m->slot, c->arg);
        pthread_mutex_lock(&m->lock);
        c->done = true;
        pthread_cond_broadcast(&m->cond);
    }
}

static void *loop_main(void *arg)
{
    struct pc_model *m = arg;
    pthread_mutex_lock(&m->lock);
    for (;;) {
        run_calls(m);
        if (m->slot_waiting > 0) {
            /* Hand the context over between two steps, and wait until it comes back. */
            m->slot_granted = true;
            pthread_cond_broadcast(&m->cond);
            while (m->slot_waiting > 0)
                pthread_cond_wait(&m->cond, &m->lock);
            m->slot_granted = false;
            continue;
        }
        take_incoming(m);
        if (m->stopping)
            break;
        uint64_t kicks = m->kicks;
        pthread_mutex_unlock(&m->lock);
        int32_t n = step(m);
        pthread_mutex_lock(&m->lock);
        publish_stats(m);
        if (n == 0 && m->kicks == kicks && m->incoming == NULL && m->calls == NULL &&
            m->slot_waiting == 0 && !m->stopping)
            pthread_cond_wait(&m->cond, &m->lock);
    }
    pthread_mutex_unlock(&m->lock);
    /* Stopping: every task ends. */
    while (m->n_active > 0) {
        struct pc_gen *g = m->active[--m->n_active];
        end_task(m, g, "cancel", NULL);
    }
    while (m->waiting != NULL) {
        struct pc_gen *g = m->waiting;
        m->waiting = g->next;
        end_task(m, g, "cancel", NULL);
    }
    return NULL;
}

enum pc_err pc_loop_start(struct pc_model *m, struct pc_error *err)
{
    m->active = calloc((size_t)m->n_parallel, sizeof(*m->active));
    m->batch = llama_batch_init(m->n_batch, 0, 1);
    m->threads = m->n_threads == 0 ? pc_threads_new() : NULL;
    m->slot.m = m;
    m->lwork.threads = (int32_t)llama_n_threads(m->ctx);
    if (m->active == NULL || (m->n_threads == 0 && m->threads == NULL))
        return pc_error_set(err, PC_ERR_NOMEM, "decode loop: out of memory");
    if (pthread_create(&m->thread, NULL, loop_main, m) != 0)
        return pc_error_set(err, PC_ERR_NOMEM, "decode loop: no thread");
    m->running = true;
    return PC_OK;
}

void pc_loop_stop(struct pc_model *m)
{
    if (m->running) {
        pthread_mutex_lock(&m->lock);
        m->stopping = true;
        pthread_cond_broadcast(&m->cond);
        pthread_mutex_unlock(&m->lock);
        pthread_join(m->thread, NULL);
        m->running = false;
    }
    if (m->batch.token != NULL)
        llama_batch_free(m->batch);
    memset(&m->batch, 0, sizeof(m->batch));
    free(m->active);
    m->active = NULL;
    pc_threads_free(m->threads);
    m->threads = NULL;
}

/* ---- calls and the slot ------------------------------------------------------------------ */

void pc_model_call(struct pc_model *m, void (*fn)(struct pc_slot *s, void *arg), void *arg)
{
    struct pc_call c = {fn, arg, false, NULL};
    pthread_mutex_lock(&m->lock);
    if (!m->running) { /* no loop (it never started): nobody else has the context */
        pthread_mutex_unlock(&m->lock);
        fn(&m->slot, arg);
        return;
    }
    struct pc_call **p = &m->calls;
    while (*p != NULL)
        p = &(*p)->next;
    *p = &c;
    m->kicks++;
    pthread_cond_broadcast(&m->cond);
    while (!c.done)
        pthread_cond_wait(&m->cond, &m->lock);
    pthread_mutex_unlock(&m->lock);
}

void pc_slot_acquire(struct pc_model *m, enum pc_priority prio, struct pc_slot **out)
{
    (void)prio; /* maintenance work is short; it goes in the order it asks */
    pthread_mutex_lock(&m->lock);
    m->slot_waiting++;
    pthread_cond_broadcast(&m->cond);
    while (!(m->slot_granted || !m->running) || m->slot_taken)
        pthread_cond_wait(&m->cond, &m->lock);
    m->slot_taken = true;
    pthread_mutex_unlock(&m->lock);
    *out = &m->slot;
}

void pc_slot_release(struct pc_slot *s)
{
    if (s == NULL)
        return;
    struct pc_model *m = s->m;
    pthread_mutex_lock(&m->lock);
    m->slot_taken = false;
    m->slot_waiting--;
    m->kicks++;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

struct pc_model *pc_slot_model(const struct pc_slot *s)
{
    return s->m;
}

void pc_model_loop_stats(struct pc_model *m, struct pc_loop_stats *out)
{
    pthread_mutex_lock(&m->lock);
    *out = m->lstats;
    pthread_mutex_unlock(&m->lock);
}
