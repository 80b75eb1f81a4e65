/* infer.c - one inference request: store lookup, pool reference, snapshot match, generation,
 * release, events. */
#include "inferInt.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/clock.h"
#include "../store/manifest.h"
#include "../store/store.h"
#include "serverInt.h"

enum pc_err pc_infer_open(struct pc_server *srv, const char *name, int64_t keep_alive_ns,
                          struct pc_infer **out, struct pc_error *err)
{
    struct pc_pool_acquire_params params = pc_pool_acquire_default_params();
    params.keep_alive_ns = keep_alive_ns;
    char norm[256];
    *out = NULL;
    enum pc_err rc = pc_store_name(name, norm, sizeof(norm), err);
    if (rc != PC_OK)
        return rc;
    size_t waiting = 0;
    rc = pc_queue_enter(srv->queue, norm, &waiting);
    if (rc == PC_ERR_BUSY) {
        pc_server_metrics_rejected(&srv->metrics, norm);
        return pc_error_set(err, PC_ERR_BUSY,
                            "server busy: %zu requests queued for model %s (max_queue %zu); "
                            "retry later",
                            waiting, norm, pc_queue_max(srv->queue));
    }
    if (rc != PC_OK)
        return pc_error_set(err, rc, "out of memory");
    rc = pc_infer_open_with(srv, name, &params, false, out, err);
    if (rc != PC_OK)
        pc_queue_leave(srv->queue, norm);
    else
        (*out)->queued = true;
    return rc;
}

/* The request has the model's context: it waits no more. */
static void leave_queue(struct pc_infer *inf)
{
    if (inf->queued)
        pc_queue_leave(inf->srv->queue, inf->norm);
    inf->queued = false;
}

enum pc_err pc_infer_open_with(struct pc_server *srv, const char *name,
                               const struct pc_pool_acquire_params *params, bool resident_only,
                               struct pc_infer **out, struct pc_error *err)
{
    char path[PATH_MAX];
    int64_t t0 = pc_clock_mono_ns();

    *out = NULL;
    struct pc_infer *inf = calloc(1, sizeof(*inf));
    if (inf == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    inf->top_logprobs = -1;
    struct pc_error store_err = {0};
    enum pc_err rc = pc_store_name(name, inf->norm, sizeof(inf->norm), err);
    if (rc == PC_OK)
        rc = pc_store_path(srv->cfg.models_dir, name, path, sizeof(path), &store_err);
    /* Not in the store: a model that /v1/models loaded from the catalog or a path is served
     * while it is resident (the pool is asked without a path, below). */
    bool in_store = rc == PC_OK;
    if (rc == PC_ERR_NOT_FOUND)
        rc = PC_OK;
    else if (rc != PC_OK && store_err.code != PC_OK && err)
        *err = store_err;
    if (rc != PC_OK) {
        free(inf);
        return rc;
    }
    inf->srv = srv;
    inf->start_ns = t0;
    inf->keep_alive_ns = params->keep_alive_ns;
    snprintf(inf->model, sizeof(inf->model), "%s", name);
    atomic_init(&inf->cancel, false);
    pc_uuid(inf->id);

    bool loaded = false;
    rc = pc_pool_acquire_with(srv->pool, inf->norm, in_store && !resident_only ? path : NULL,
                              params, &inf->entry, &loaded, err);
    if ((!in_store || resident_only) && rc == PC_ERR_NOT_FOUND) {
        if (err && !in_store)
            *err = store_err;
        free(inf);
        return rc;
    }
    if (rc != PC_OK) {
        pc_events_publish(srv->events, PC_EV_MODEL_FAILED, inf->norm, inf->id,
                          json_pack("{s:s}", "error", err ? err->msg : ""));
        free(inf);
        return rc;
    }
    /* What follows the load (identity, snapshots, ModelLoaded) happened in the pool's hook. */
    if (loaded)
        inf->load_ns = pc_clock_mono_ns() - t0;
    *out = inf;
    return PC_OK;
}

struct pc_model *pc_infer_model(const struct pc_infer *inf)
{
    return pc_pool_entry_model(inf->entry);
}

/* inf->context followed by the prompt's tokens. *out is malloc'd. */
static enum pc_err prompt_tokens(const struct pc_infer *inf, const char *prompt, int32_t **out,
                                 size_t *n, struct pc_error *err)
{
    struct pc_model *m = pc_infer_model(inf);
    if (inf->n_context == 0)
        return pc_model_tokenize(m, prompt, out, n, err);
    uint32_t n_vocab = pc_model_info(m)->n_vocab;
    for (size_t i = 0; i < inf->n_context; i++)
        if (inf->context[i] < 0 || (uint32_t)inf->context[i] >= n_vocab)
            return pc_error_set(err, PC_ERR_INVALID,
                                "context[%zu] = %d is not a token of this model (0 to %u)", i,
                                inf->context[i], n_vocab - 1);
    int32_t *more = NULL;
    size_t n_more = 0;
    enum pc_err rc = pc_model_tokenize_more(m, prompt, &more, &n_more, err);
    if (rc != PC_OK)
        return rc;
    int32_t *all = malloc((inf->n_context + n_more) * sizeof(*all));
    if (all == NULL) {
        free(more);
        return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    }
    memcpy(all, inf->context, inf->n_context * sizeof(*all));
    memcpy(all + inf->n_context, more, n_more * sizeof(*all));
    free(more);
    *out = all;
    *n = inf->n_context + n_more;
    return PC_OK;
}

/* The most prompt tokens a request may have, and what sets it (for the 400 that names it): the
 * context it uses (the model's, or a smaller num_ctx) less one cell for the answer, or
 * max_prompt_tokens when that is smaller. */
static size_t prompt_limit(const struct pc_infer *inf, uint32_t n_ctx, char *why, size_t size)
{
    bool own = inf->num_ctx > 0 && inf->num_ctx < n_ctx;
    uint32_t window = own ? inf->num_ctx : n_ctx;
    size_t limit = window > 0 ? window - 1 : 0;
    uint32_t max = inf->srv->cfg.max_prompt_tokens;
    if (max > 0 && max < limit) {
        snprintf(why, size, "max_prompt_tokens");
        return max;
    }
    snprintf(why, size, "%s %u, less one token for the answer", own ? "num_ctx" : "context length",
             window);
    return limit;
}

/* The tokens at the start that truncation and the context shift keep: num_keep after the BOS
 * (the whole prompt for -1), at most all but one of the window. */
static size_t keep_count(const struct pc_infer *inf, const struct pc_model *m, size_t n,
                         uint32_t window)
{
    size_t keep = inf->num_keep < 0 ? n : (size_t)inf->num_keep;
    if (keep < n && pc_model_adds_bos(m))
        keep++;
    return keep < window - 1 ? keep : window - 1;
}

/* Cut toks[0..n) to fit window as Ollama does: the first keep tokens, then the newest, leaving
 * half of the window after keep for the answer (llama_server.go's contextShiftPromptLimit).
 * Returns the new count. */
static size_t cut_prompt(int32_t *toks, size_t n, size_t keep, uint32_t window)
{
    size_t half = (window - keep) / 2;
    size_t limit = window - (half > 1 ? half : 1);
    size_t discard = n - limit;
    memmove(toks + keep, toks + keep + discard, (n - keep - discard) * sizeof(*toks));
    return limit;
}

enum pc_err pc_infer_start(struct pc_infer *inf, const char *prompt,
                           const struct pc_sampling *sampling, struct pc_error *err)
{
    struct pc_model *m = pc_infer_model(inf);
    int32_t *toks = NULL;
    size_t n = 0;
    enum pc_err rc = prompt_tokens(inf, prompt, &toks, &n, err);
    if (rc != PC_OK)
        return rc;
    struct pc_gen_request req = {.tokens = toks,
                                 .n_tokens = n,
                                 .sampling = *sampling,
                                 .cancel = &inf->cancel,
                                 .priority = PC_PRIO_USER,
                                 .logprobs = inf->top_logprobs >= 0,
                                 .top_logprobs = inf->top_logprobs};
    /* A smaller num_ctx than the loaded context bounds prompt + answer, as that window would
     * (the decode loop ends or shifts the answer there). */
    char why[96];
    uint32_t n_ctx = pc_model_info(m)->n_ctx;
    uint32_t window = inf->num_ctx > 0 && inf->num_ctx < n_ctx ? inf->num_ctx : n_ctx;
    size_t keep = keep_count(inf, m, n, window);
    req.window = window;
    req.shift = inf->shift;
    req.n_keep = (int32_t)keep;
    if (inf->truncate && n + 1 > window)
        n = cut_prompt(toks, n, keep, window);
    size_t limit = prompt_limit(inf, n_ctx, why, sizeof(why));
    if (n > limit) {
        free(toks);
        return pc_error_set(err, PC_ERR_CTX_OVERFLOW,
                            "the prompt is %zu tokens; the limit is %zu (%s)", n, limit, why);
    }
    req.n_tokens = n;
    pc_events_publish(inf->srv->events, PC_EV_LLM_REQUESTED, inf->norm, inf->id,
                      json_pack("{s:I}", "prompt_tokens", (json_int_t)n));
    /* The snapshot tiers offer their best prefix; the model's decode loop decides whether it
     * beats the live sequences, and batches the rest of the prompt with the other tasks. */
    struct pc_snap_offer offer;
    pc_snapstore_offer(inf->srv->snapshots, pc_model_identity(m), toks, n, &offer);
    req.offer = &offer.offer;
    rc = pc_gen_start(m, &req, &inf->gen, err);
    free(toks);
    if (rc == PC_OK)
        rc = pc_gen_wait_prompt(inf->gen, err);
    pc_snapstore_offer_done(inf->srv->snapshots, &offer,
                            inf->gen != NULL ? pc_gen_restore(inf->gen) : NULL, &inf->restore);
    leave_queue(inf);
    if (rc == PC_OK)
        pc_server_metrics_started(&inf->srv->metrics, inf);
    return rc;
}

/* The embeddings of a request, computed on the model's decode loop between two steps. */
struct embed_call {
    const char *const *texts;
    size_t n;
    bool truncate;
    size_t limit;
    float *out;
    uint32_t dim;
    size_t n_tokens;
    enum pc_err rc;
    struct pc_error *err;
};

static void embed_on_loop(struct pc_slot *s, void *arg)
{
    struct embed_call *c = arg;
    for (size_t i = 0; i < c->n && c->rc == PC_OK; i++) {
        size_t k = 0;
        c->rc =
            pc_slot_embed(s, c->texts[i], c->truncate, c->limit, c->out + i * c->dim, &k, c->err);
        c->n_tokens += k;
    }
}

enum pc_err pc_infer_embed(struct pc_infer *inf, const char *const *texts, size_t n, bool truncate,
                           float *out, size_t *n_tokens, struct pc_error *err)
{
    struct pc_model *m = pc_infer_model(inf);
    uint32_t dim = pc_model_info(m)->n_embd_pooled;
    *n_tokens = 0;
    if (dim == 0)
        return pc_error_set(err, PC_ERR_INVALID,
                            "model \"%s\" does not support embeddings: its GGUF names no pooling "
                            "type (it is a generation model)",
                            inf->model);
    pc_events_publish(inf->srv->events, PC_EV_LLM_REQUESTED, inf->norm, inf->id,
                      json_pack("{s:I}", "inputs", (json_int_t)n));
    struct embed_call c = {texts, n, truncate, inf->num_ctx, out, dim, 0, PC_OK, err};
    pc_model_call(m, embed_on_loop, &c);
    leave_queue(inf);
    inf->embedded = true;
    *n_tokens = c.n_tokens;
    return c.rc;
}

static void first_token(struct pc_infer *inf, size_t len, bool done)
{
    if ((len > 0 || done) && !inf->first_token) {
        inf->first_token = true;
        pc_server_metrics_first_token(&inf->srv->metrics, inf);
    }
}

enum pc_err pc_infer_next(struct pc_infer *inf, const char **text, size_t *len, bool *done,
                          struct pc_error *err)
{
    for (;;) {
        enum pc_err rc = pc_gen_next(inf->gen, text, len, done, err);
        if (rc == PC_OK)
            first_token(inf, *len, *done);
        if (rc != PC_OK || *len > 0 || *done)
            return rc;
    }
}

enum pc_err pc_infer_poll(struct pc_infer *inf, const char **text, size_t *len, bool *done,
                          struct pc_error *err)
{
    enum pc_err rc = pc_gen_poll(inf->gen, text, len, done, err);
    if (rc == PC_OK)
        first_token(inf, *len, *done);
    return rc;
}

enum pc_err pc_infer_collect(struct pc_infer *inf, struct pc_buf *out, struct pc_error *err)
{
    bool done = false;
    while (!done) {
        const char *text;
        size_t len;
        enum pc_err rc = pc_infer_next(inf, &text, &len, &done, err);
        if (rc != PC_OK)
            return rc;
        if (!pc_buf_append(out, text, len))
            return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    }
    return PC_OK;
}

static void stream_free(void *ctx)
{
    pc_infer_close(ctx);
}

static void stream_watch(void *ctx, void (*wake)(void *arg), void *arg)
{
    struct pc_infer *inf = ctx;
    pc_gen_watch(inf->gen, wake, arg);
}

void pc_infer_reply(struct pc_infer *inf, void *api, void (*api_free)(void *api), bool stream,
                    const char *content_type,
                    enum pc_stream_state (*poll)(void *inf, struct pc_buf *out),
                    void (*whole)(struct pc_infer *inf, struct pc_http_reply *reply),
                    struct pc_http_reply *reply)
{
    inf->api = api;
    inf->api_free = api_free;
    if (!stream) {
        whole(inf, reply);
        pc_infer_close(inf);
        return;
    }
    reply->status = 200;
    reply->content_type = content_type;
    /* Polled from the HTTP layer's thread: a stream waiting for its next token holds no thread,
     * and the model's decode loop wakes it (pc_gen_watch). */
    reply->stream = (struct pc_http_stream){
        .ctx = inf, .poll = poll, .watch = stream_watch, .free = stream_free};
}

void pc_infer_close(struct pc_infer *inf)
{
    if (inf == NULL)
        return;
    atomic_store(&inf->cancel, true);
    leave_queue(inf);
    json_t *data = json_object();
    if (inf->gen != NULL) {
        pc_server_metrics_finished(&inf->srv->metrics, inf);
        const struct pc_gen_stats *st = pc_gen_stats(inf->gen);
        const char *reason = pc_gen_done_reason(inf->gen);
        json_object_set_new(data, "prompt_tokens", json_integer(st->prompt_tokens));
        json_object_set_new(data, "cached_tokens", json_integer(st->cached_tokens));
        json_object_set_new(data, "eval_tokens", json_integer(st->eval_tokens));
        json_object_set_new(data, "done_reason", json_string(reason ? reason : "cancel"));
    }
    /* The task first (the loop ends it at its next step; its sequence stays live), then the
     * model. */
    bool served = inf->gen != NULL || inf->embedded;
    pc_gen_free(inf->gen);
    pc_pool_release(inf->srv->pool, inf->entry);
    if (served) {
        pc_events_publish(inf->srv->events, PC_EV_LLM_COMPLETED, inf->norm, inf->id, data);
        /* A use, for the manifest's last_used and use_count (and so for pruning). Written
         * after the answer is out, so that its fsync never delays a first token. A model that
         * is not a file of the store (loaded by path) has no entry to touch. */
        pc_manifest_touch(inf->srv->cfg.models_dir, inf->norm, NULL);
    } else {
        json_decref(data);
    }
    if (inf->api_free != NULL)
        inf->api_free(inf->api);
    free(inf);
}

enum pc_err pc_infer_unload(struct pc_server *srv, const char *name, struct pc_error *err)
{
    char norm[256];
    enum pc_err rc = pc_store_name(name, norm, sizeof(norm), err);
    if (rc != PC_OK)
        return rc;
    rc = pc_pool_unload(srv->pool, norm, err);
    return rc == PC_ERR_NOT_FOUND ? PC_OK : rc;
}

const char *pc_infer_restored_from(const struct pc_infer *inf)
{
    return inf->restore.tier == PC_TIER_LIVE ? NULL : pc_tier_name(inf->restore.tier);
}

void *pc_infer_api(const struct pc_infer *inf)
{
    return inf->api;
}

void pc_infer_set_context(struct pc_infer *inf, const int32_t *toks, size_t n)
{
    inf->context = toks;
    inf->n_context = n;
}

void pc_infer_set_num_ctx(struct pc_infer *inf, uint32_t num_ctx)
{
    inf->num_ctx = num_ctx;
}

void pc_infer_set_fit(struct pc_infer *inf, bool truncate, bool shift, int32_t num_keep)
{
    inf->truncate = truncate;
    inf->shift = shift;
    inf->num_keep = num_keep;
}

void pc_infer_set_logprobs(struct pc_infer *inf, int32_t top)
{
    inf->top_logprobs = top;
}

/* {token, logprob, bytes}: bytes are the token's own, which may be part of a character. */
static json_t *logprob_json(const struct pc_model *m, struct pc_logprob lp)
{
    char text[256];
    size_t n = pc_model_token_text(m, lp.token, text, sizeof(text));
    json_t *bytes = json_array();
    for (size_t i = 0; bytes != NULL && i < n; i++)
        json_array_append_new(bytes, json_integer((unsigned char)text[i]));
    /* JSON strings are whole UTF-8: a token that is part of a character shows what it can. */
    json_t *tok = json_stringn(text, n);
    if (tok == NULL)
        tok = json_string("");
    return json_pack("{s:o, s:f, s:o}", "token", tok, "logprob", (double)lp.logprob, "bytes",
                     bytes);
}

json_t *pc_infer_take_logprobs(struct pc_infer *inf)
{
    if (inf->top_logprobs < 0 || inf->gen == NULL)
        return NULL;
    struct pc_token_logprobs *lps = NULL;
    size_t n = pc_gen_take_logprobs(inf->gen, &lps);
    const struct pc_model *m = pc_infer_model(inf);
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        json_t *o = logprob_json(m, lps[i].sampled);
        json_t *top = json_array();
        for (int32_t k = 0; top != NULL && k < lps[i].n_top; k++)
            json_array_append_new(top, logprob_json(m, lps[i].top[k]));
        if (o != NULL)
            json_object_set_new(o, "top_logprobs", top);
        else
            json_decref(top);
        json_array_append_new(arr, o);
    }
    free(lps);
    return arr;
}

const struct pc_gen_stats *pc_infer_stats(const struct pc_infer *inf)
{
    return inf->gen != NULL ? pc_gen_stats(inf->gen) : NULL;
}

const char *pc_infer_done_reason(const struct pc_infer *inf)
{
    return inf->gen != NULL ? pc_gen_done_reason(inf->gen) : NULL;
}

enum pc_err pc_infer_tokens(const struct pc_infer *inf, int32_t **out, size_t *n,
                            struct pc_error *err)
{
    *out = NULL;
    *n = 0;
    if (inf->gen == NULL)
        return pc_error_set(err, PC_ERR_INVALID, "no generation");
    return pc_gen_tokens(inf->gen, out, n, err);
}

int64_t pc_infer_elapsed_ns(const struct pc_infer *inf)
{
    return pc_clock_mono_ns() - inf->start_ns;
}

int64_t pc_infer_load_ns(const struct pc_infer *inf)
{
    return inf->load_ns;
}
