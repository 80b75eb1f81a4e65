/* seq.c - a model's live sequences: prefix matching, the prefix planner, copy-on-write from
 * precharged prefixes, eviction, export and import of KV state. Run by the decode loop's
 * thread, or by a slot holder while the loop is parked. */
#include "engineInt.h"

#include <stdlib.h>
#include <string.h>

#include "../base/clock.h"
#include "../base/tokens.h"

void pc_model_set_evict_hook(struct pc_model *m, pc_seq_evict_fn fn, void *user)
{
    m->evict_hook = fn;
    m->evict_user = user;
}

bool pc_seqs_init(struct pc_model *m, int n_seq)
{
    m->seqs = calloc((size_t)n_seq, sizeof(*m->seqs));
    m->n_seqs = m->seqs ? n_seq : 0;
    return m->seqs != NULL;
}

void pc_seqs_free(struct pc_model *m)
{
    for (int i = 0; i < m->n_seqs; i++)
        free(m->seqs[i].toks);
    free(m->seqs);
    m->seqs = NULL;
    m->n_seqs = 0;
}

/* ---- sequences ------------------------------------------------------------------------- */

bool pc_seq_push(struct pc_model *m, int seq, const llama_token *toks, size_t n)
{
    struct pc_seq *q = &m->seqs[seq];
    if (q->n + n > q->cap) {
        size_t cap = q->cap ? q->cap : 256;
        while (cap < q->n + n)
            cap *= 2;
        llama_token *p = realloc(q->toks, cap * sizeof(*p));
        if (p == NULL)
            return false;
        q->toks = p;
        q->cap = cap;
    }
    memcpy(q->toks + q->n, toks, n * sizeof(*toks));
    q->n += n;
    return true;
}

void pc_seq_clear(struct pc_model *m, int seq)
{
    llama_memory_seq_rm(llama_get_memory(m->ctx), seq, -1, -1);
    m->seqs[seq].n = 0;
    m->seqs[seq].used = false;
    m->seqs[seq].precharged = false;
}

void pc_seq_evict(struct pc_model *m, int seq)
{
    struct pc_seq *q = &m->seqs[seq];
    if (m->evict_hook != NULL && q->n > 0)
        m->evict_hook(m->evict_user, &m->slot, seq, q->toks, q->n, q->precharged);
    pc_seq_clear(m, seq);
}

int pc_seq_lru_idle(const struct pc_model *m, int keep)
{
    int best = -1;
    for (int i = 0; i < m->n_seqs; i++) {
        const struct pc_seq *q = &m->seqs[i];
        if (!q->used || q->owner != NULL || i == keep)
            continue;
        if (best < 0 || q->last_used_ns < m->seqs[best].last_used_ns)
            best = i;
    }
    return best;
}

int pc_seq_alloc(struct pc_model *m, int keep)
{
    for (int i = 0; i < m->n_seqs; i++)
        if (!m->seqs[i].used && m->seqs[i].owner == NULL)
            return i;
    int victim = pc_seq_lru_idle(m, keep);
    if (victim >= 0)
        pc_seq_evict(m, victim);
    return victim;
}

int pc_slot_best_live(const struct pc_slot *s, const int32_t *toks, size_t n, size_t *match)
{
    const struct pc_model *m = s->m;
    int best = -1;
    size_t best_n = 0;
    for (int i = 0; i < m->n_seqs; i++) {
        const struct pc_seq *q = &m->seqs[i];
        if (!q->used)
            continue;
        size_t c = pc_tokens_common_prefix(q->toks, q->n, toks, n);
        /* Ties go to the sequence that the prompt extends whole: no cut needed. */
        if (c > best_n || (c == best_n && c > 0 && c == q->n)) {
            best = i;
            best_n = c;
        }
    }
    *match = best_n;
    return best;
}

const int32_t *pc_slot_seq_tokens(const struct pc_slot *s, int seq, size_t *n)
{
    const struct pc_seq *q = &s->m->seqs[seq];
    *n = q->used ? q->n : 0;
    return q->toks;
}

void pc_slot_drop_all(struct pc_slot *s)
{
    for (int i = 0; i < s->m->n_seqs; i++)
        if (s->m->seqs[i].used && s->m->seqs[i].owner == NULL)
            pc_seq_evict(s->m, i);
}

size_t pc_slot_list(const struct pc_slot *s, struct pc_seq_info *out, size_t max)
{
    const struct pc_model *m = s->m;
    size_t n = 0;
    for (int i = 0; i < m->n_seqs; i++) {
        const struct pc_seq *q = &m->seqs[i];
        if (!q->used)
            continue;
        if (n < max)
            out[n] = (struct pc_seq_info){q->n, q->precharged, q->last_used_ns};
        n++;
    }
    return n;
}

/* Every decoded token attends over the cache up to its highest used cell, whoever owns the
 * cells. Idle sequences unrelated to the prompt would slow each token of it (on a CPU, several
 * times over for a few thousand cells), so they go down to RAM first, where a restore is a
 * memcpy. When that leaves holes below the prompt's prefix, the prefix is moved to the start of
 * the cache by a serialize-and-restore, so that the cells in use are the cells attended to.
 * Only when no other task is working: their cells must stay where they are. */
static void focus(struct pc_model *m, const llama_token *toks, size_t n)
{
    size_t freed = 0;
    for (int i = 0; i < m->n_seqs; i++) {
        struct pc_seq *q = &m->seqs[i];
        if (!q->used || q->owner != NULL)
            continue;
        size_t c = pc_tokens_common_prefix(q->toks, q->n, toks, n);
        if (c * 2 < q->n) {
            freed += q->n - c;
            pc_seq_evict(m, i);
        }
    }
    if (freed < 256)
        return;
    size_t match = 0;
    int keep = pc_slot_best_live(&m->slot, toks, n, &match);
    for (int i = 0; i < m->n_seqs; i++)
        if (m->seqs[i].used && i != keep)
            pc_seq_evict(m, i);
    if (keep < 0) {
        /* Nothing is left: start the cache over, so that new cells are placed from the
         * bottom again rather than above the freed ones. */
        llama_memory_clear(llama_get_memory(m->ctx), false);
        return;
    }
    struct pc_seq *q = &m->seqs[keep];
    size_t size = llama_state_seq_get_size(m->ctx, keep);
    uint8_t *blob = size ? malloc(size) : NULL;
    bool ok = blob != NULL && llama_state_seq_get_data(m->ctx, blob, size, keep) == size;
    llama_memory_clear(llama_get_memory(m->ctx), false);
    if (ok && llama_state_seq_set_data(m->ctx, blob, size, keep) == 0)
        ok = false;
    if (!ok) /* nothing is lost: the prefix is prefilled again */
        q->n = 0;
    free(blob);
}

/* Restore the offer when it gives more of the prompt than live sequences do (match) and its
 * cells fit beside the prompt's window. Returns the sequence it went into, or -1. */
static int try_offer(struct pc_model *m, const llama_token *toks, size_t n,
                     const struct pc_restore_offer *offer, size_t match,
                     struct pc_restore_result *r)
{
    if (offer == NULL || offer->blob == NULL)
        return -1;
    size_t c = pc_tokens_common_prefix(offer->toks, offer->n, toks, n);
    /* Not worth it, or it cannot fit: a restore is never attempted then. */
    if (c <= match || offer->n >= m->info.n_ctx)
        return -1;
    int64_t t0 = pc_clock_mono_ns();
    struct pc_error err = {0};
    int seq = -1;
    enum pc_err rc = pc_seq_import(m, offer->blob, offer->size, offer->toks, offer->n,
                                   offer->precharged, &seq, &err);
    r->restore_ns = pc_clock_mono_ns() - t0;
    if (rc != PC_OK) {
        r->failed = true;
        snprintf(r->reason, sizeof(r->reason), "%s", err.msg);
        return -1;
    }
    r->used = true;
    return seq;
}

enum pc_err pc_seq_plan(struct pc_model *m, const llama_token *toks, size_t n, bool for_precharge,
                        const struct pc_restore_offer *offer, bool alone, int *seq, size_t *kept,
                        struct pc_restore_result *r, struct pc_error *err)
{
    llama_memory_t mem = llama_get_memory(m->ctx);
    size_t match = 0;
    memset(r, 0, sizeof(*r));
    if (alone)
        focus(m, toks, n);
    int src = pc_slot_best_live(&m->slot, toks, n, &match);
    int restored = try_offer(m, toks, n, offer, match, r);
    if (restored >= 0) {
        src = restored;
        match = pc_tokens_common_prefix(m->seqs[src].toks, m->seqs[src].n, toks, n);
    }
    /* A precharge of a prefix that is live whole: nothing to do. */
    if (for_precharge && src >= 0 && match == n && m->seqs[src].n == n &&
        m->seqs[src].owner == NULL) {
        m->seqs[src].precharged = true;
        m->seqs[src].last_used_ns = pc_clock_mono_ns();
        r->tokens = n;
        *seq = src;
        *kept = n;
        return PC_OK;
    }
    /* Leave at least the last token to decode: a request needs its logits. */
    if (match == n && n > 0)
        match = n - 1;

    int dst;
    if (src >= 0 && match > 0 && !m->seqs[src].precharged && m->seqs[src].owner == NULL &&
        !for_precharge) {
        dst = src; /* a conversation goes on in place */
    } else {
        dst = pc_seq_alloc(m, src);
        if (dst < 0)
            return pc_error_set(err, PC_ERR_CONTEXT,
                                "no sequence is free in the context (%d, all working)", m->n_seqs);
        pc_seq_clear(m, dst);
        if (src >= 0 && match > 0) {
            /* Shares the cells of the prefix: no KV data moves. */
            llama_memory_seq_cp(mem, src, dst, 0, (llama_pos)match);
            if (!pc_seq_push(m, dst, m->seqs[src].toks, match))
                return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
            m->seqs[src].last_used_ns = pc_clock_mono_ns();
        }
        m->seqs[dst].used = true;
    }
    struct pc_seq *q = &m->seqs[dst];
    if (q->n > match) {
        if (!llama_memory_seq_rm(mem, dst, (llama_pos)match, -1)) {
            /* A recurrent state cannot be cut: start this sequence over. */
            llama_memory_seq_rm(mem, dst, -1, -1);
            match = 0;
        }
        q->n = match;
    }
    q->precharged = for_precharge;
    q->last_used_ns = pc_clock_mono_ns();
    r->tokens = match;
    *seq = dst;
    *kept = match;
    return PC_OK;
}

static enum pc_err decode_batch(struct pc_model *m, int seq, const llama_token *toks, int32_t n,
                                bool want_logits, const atomic_bool *cancel, struct pc_error *err)
{
    struct pc_seq *q = &m->seqs[seq];
    for (;;) {
        struct llama_batch batch = llama_batch_init(n, 0, 1);
        for (int32_t i = 0; i < n; i++) {
            batch.token[i] = toks[i];
            batch.pos[i] = (llama_pos)(q->n + (size_t)i);
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = seq;
            batch.logits[i] = want_logits && i == n - 1;
        }
        batch.n_tokens = n;
        int32_t rc = llama_decode(m->ctx, batch);
        llama_batch_free(batch);
        if (rc == 0)
            break;
        if (rc == 1) {
            /* No room in the cache: drop the least recently used other sequence, try again. */
            int victim = pc_seq_lru_idle(m, seq);
            if (victim >= 0) {
                pc_seq_evict(m, victim);
                continue;
            }
            return pc_error_set(err, PC_ERR_CTX_OVERFLOW, "the context window (%u tokens) is full",
                                m->info.n_ctx);
        }
        pc_seq_clear(m, seq); /* what it holds after a failed decode is not known */
        if (cancel != NULL && atomic_load(cancel))
            return pc_error_set(err, PC_ERR_CANCELLED, "the request was cancelled");
        return pc_error_set(err, PC_ERR_DECODE, "llama_decode() failed with %d", rc);
    }
    if (!pc_seq_push(m, seq, toks, (size_t)n))
        return pc_error_set(err, PC_ERR_NOMEM, "decode: out of memory");
    return PC_OK;
}

enum pc_err pc_seq_decode(struct pc_model *m, int seq, const llama_token *toks, size_t n,
                          bool want_logits, const atomic_bool *cancel, struct pc_error *err)
{
    for (size_t i = 0; i < n;) {
        if (cancel != NULL && atomic_load(cancel))
            return pc_error_set(err, PC_ERR_CANCELLED, "the request was cancelled");
        size_t chunk = n - i < (size_t)m->n_batch ? n - i : (size_t)m->n_batch;
        enum pc_err rc = decode_batch(m, seq, toks + i, (int32_t)chunk,
                                      want_logits && i + chunk == n, cancel, err);
        if (rc != PC_OK)
            return rc;
        i += chunk;
    }
    m->seqs[seq].last_used_ns = pc_clock_mono_ns();
    return PC_OK;
}

enum pc_err pc_seq_export(struct pc_model *m, int seq, uint8_t **blob, size_t *size,
                          struct pc_error *err)
{
    *blob = NULL;
    *size = 0;
    size_t need = llama_state_seq_get_size(m->ctx, seq);
    uint8_t *buf = need ? malloc(need) : NULL;
    if (buf == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "cannot hold a %zu-byte snapshot", need);
    size_t got = llama_state_seq_get_data(m->ctx, buf, need, seq);
    if (got == 0) {
        free(buf);
        return pc_error_set(err, PC_ERR_DECODE, "llama.cpp could not serialize sequence %d", seq);
    }
    *blob = buf;
    *size = got;
    return PC_OK;
}

enum pc_err pc_slot_export(struct pc_slot *s, int seq, uint8_t **blob, size_t *size,
                           struct pc_error *err)
{
    return pc_seq_export(s->m, seq, blob, size, err);
}

enum pc_err pc_seq_import(struct pc_model *m, const uint8_t *blob, size_t size, const int32_t *toks,
                          size_t n, bool precharged, int *seq_out, struct pc_error *err)
{
    if (llama_model_is_recurrent(m->model) || llama_model_is_hybrid(m->model))
        return pc_error_set(err, PC_ERR_DECODE,
                            "snapshots of recurrent or hybrid models are not restored");
    int seq = pc_seq_alloc(m, -1);
    if (seq < 0)
        return pc_error_set(err, PC_ERR_CONTEXT, "no sequence is free in the context");
    llama_memory_seq_rm(llama_get_memory(m->ctx), seq, -1, -1);
    size_t got = llama_state_seq_set_data(m->ctx, blob, size, seq);
    /* Trust it only when the cells it brought back are the tokens it claims. */
    llama_pos max = llama_memory_seq_pos_max(llama_get_memory(m->ctx), seq);
    if (got == 0 || max + 1 != (llama_pos)n) {
        pc_seq_clear(m, seq);
        return pc_error_set(err, PC_ERR_DECODE,
                            "the snapshot does not fit this model's context (a different model "
                            "file, or no room)");
    }
    struct pc_seq *q = &m->seqs[seq];
    q->n = 0;
    if (!pc_seq_push(m, seq, toks, n)) {
        pc_seq_clear(m, seq);
        return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    }
    q->used = true;
    q->precharged = precharged;
    q->last_used_ns = pc_clock_mono_ns();
    if (seq_out != NULL)
        *seq_out = seq;
    return PC_OK;
}

enum pc_err pc_slot_import(struct pc_slot *s, const uint8_t *blob, size_t size, const int32_t *toks,
                           size_t n, bool precharged, int *seq_out, struct pc_error *err)
{
    return pc_seq_import(s->m, blob, size, toks, n, precharged, seq_out, err);
}
