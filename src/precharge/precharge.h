/* precharge.h - precharge requests: prefill an expected context into a model's KV cache before
 * the request that needs it, by priority, merged and debounced, with a result to wait for.
 *
 * A request names a model and a context (chat messages, rendered through the model's template
 * exactly as a later chat request with the same leading messages renders them, or a raw
 * prompt). A worker loads the model if needed, restores the longest snapshot it can, prefills
 * the rest into a live sequence, and writes the snapshot through to RAM and disk. */
#ifndef PC_PRECHARGE_H
#define PC_PRECHARGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../base/err.h"
#include "../engine/engine.h"
#include "../pool/pool.h"
#include "events.h"
#include "snapshot.h"

struct pc_precharger;

/* A correlation id: the daemon's UUID, or the caller's own (1 to 64 of A-Z a-z 0-9 . _ : -),
 * and its terminating NUL. */
#define PC_PRECHARGE_ID_MAX 65

/* What a precharge that ran elsewhere reports: the tokens prefilled and the time it took. */
struct pc_precharge_remote_stats {
    int32_t context_tokens;
    int64_t load_ns;
    int64_t prefill_ns;
};

/* A provider that runs precharges of models that are not in the store (the ollama provider).
 * The precharger queues, merges, debounces and reports its jobs as it does local ones; only the
 * run of a job is the provider's. */
struct pc_precharge_provider {
    const char *category; /* the jobs' category: "ollama" */
    void *user;
    /* Whether model is the provider's (and not the store's). */
    bool (*owns)(void *user, const char *model);
    /* Prefill messages ([{role, content}]), or else prompt, into model's cache there. */
    enum pc_err (*prefill)(void *user, const char *model, json_t *messages, const char *prompt,
                           struct pc_precharge_remote_stats *out /* OUT */, struct pc_error *err);
};

struct pc_precharger_config {
    const char *models_dir;
    struct pc_pool *pool;
    struct pc_snapstore *snapshots;
    struct pc_events *events;
    int64_t debounce_ns; /* a keyed precharge waits this long, so that a newer one for the same
                          * key may replace it */
    int workers;         /* threads; at least 1 */
    const struct pc_precharge_provider
        *remote;                /* may be NULL; borrowed for the precharger's life */
    uint32_t max_prompt_tokens; /* a context longer than this (or than the model's context less
                                 * one token for the answer) fails; 0: the context alone */
    /* Messages (with their tools and thinking switch) as the tokens that every later chat that
     * starts with them renders: the chat APIs' own parse and render (the server's
     * pc_chatreq_prefix_tokens), so that a precharge and its chat cannot drift apart. Without
     * it a precharge with messages fails. *toks is malloc'd. */
    enum pc_err (*render)(const struct pc_model *m, const char *model, json_t *messages,
                          json_t *tools, enum pc_think think, int32_t **toks /* OUT */,
                          size_t *n /* OUT */, struct pc_error *err);
};

enum pc_err pc_precharger_start(const struct pc_precharger_config *cfg,
                                struct pc_precharger **out /* OUT */, struct pc_error *err);
/* Finish the running jobs, drop the queued ones, join the workers, free. */
void pc_precharger_stop(struct pc_precharger *pc);

struct pc_precharge_req {
    const char *model;
    /* "local", "mcl" (seed 000's on-device, private category: run by the local provider) or
     * the remote provider's; NULL: where the model is. Results report it as asked. */
    const char *category;
    json_t *messages;   /* a chat's messages, in either API's spelling (render), or NULL */
    json_t *tools;      /* with messages: the chat's tools ([{type, function}]), or NULL */
    const char *prompt; /* raw text, when messages is NULL */
    enum pc_priority priority;
    const char *key;            /* debounce key (a session, a form); NULL: never replaced */
    const char *correlation_id; /* the caller's id for the job; NULL: the daemon makes one */
    enum pc_think think;        /* with messages: the chat's "think" (it changes the rendering) */
    bool set_keep_alive;        /* keep_alive_ns is the model's keep-alive from now, as a request's
                                   (local models; the remote provider's keep its own) */
    int64_t keep_alive_ns;
};

/* Queue a precharge. out gets its correlation id: the caller's, else a new UUID, else (with no
 * id from the caller) that of a queued or running job doing the same work (model, category and
 * context), which this request joins. A request with the same work under an id of its own joins
 * that job too, and gets its result under its own id. A request with a key replaces the queued
 * job with the same key, model and category: that job ends "superseded" by this one.
 * A model in the store is "local"; one that is not, and that the remote provider owns, is the
 * provider's. Returns PC_ERR_NOT_FOUND / PC_ERR_BAD_PATH for a model that is in neither (or not
 * in the category asked for), PC_ERR_INVALID for an unknown category or a malformed
 * correlation id, PC_ERR_CONFLICT for the id of a job that is queued or running. */
enum pc_err pc_precharge_submit(struct pc_precharger *pc, const struct pc_precharge_req *req,
                                char out[PC_PRECHARGE_ID_MAX] /* OUT */, struct pc_error *err);

/* The job as JSON: {correlation_id, model_id, category, status, ...}: status "queued" or
 * "running", or the result: ready | failed | already_warm | superseded (with superseded_by,
 * the id of the job that replaced it), with context_tokens, load_time_ms, prefill_time_ms,
 * restored_from, snapshot_tier (where the prefilled context is kept: "disk", "ram", or "live"
 * when it is only in the model's context), shared_tier ("redis" when the shared tier holds it
 * too), snapshot_error (why it was not stored), error.
 * NULL for an unknown id. timeout_ms > 0 waits that long for a result first. The caller
 * decrefs. */
json_t *pc_precharge_get(struct pc_precharger *pc, const char *id, int timeout_ms);

/* Why the finished precharge id failed: its error's code (PC_ERR_CTX_OVERFLOW for a context over
 * the limit, ...), so that a caller who waited can answer with its status. PC_OK when it did not
 * fail, has not finished, or is not known. */
enum pc_err pc_precharge_failure(struct pc_precharger *pc, const char *id);

/* A context that a remote provider's precharge left in its server's cache. */
struct pc_precharge_remote_ctx {
    char model[256];
    char category[16];
    int32_t context_tokens;
    int64_t since_wall_ns; /* when it was prefilled */
};

/* The contexts that remote precharges made ready, newest first (one per model and context,
 * at most 64). *out is malloc'd; the caller frees it. */
size_t pc_precharge_remote_list(struct pc_precharger *pc,
                                struct pc_precharge_remote_ctx **out /* OUT */);

/* Forget the remote contexts of model: its server unloaded it, and them with it. */
void pc_precharge_remote_forget(struct pc_precharger *pc, const char *model);

/* Jobs waiting in the queue (debounced ones too) and jobs running now. */
void pc_precharge_counts(struct pc_precharger *pc, size_t *queued /* OUT */,
                         size_t *running /* OUT */);

#endif
