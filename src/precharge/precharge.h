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

struct pc_precharger_config {
    const char *models_dir;
    struct pc_pool *pool;
    struct pc_snapstore *snapshots;
    struct pc_events *events;
    int64_t
        debounce_ns; /* a newer precharge for the same key within this replaces the queued one */
    int workers;     /* threads; at least 1 */
};

enum pc_err pc_precharger_start(const struct pc_precharger_config *cfg,
                                struct pc_precharger **out /* OUT */, struct pc_error *err);
/* Finish the running jobs, drop the queued ones, join the workers, free. */
void pc_precharger_stop(struct pc_precharger *pc);

struct pc_precharge_req {
    const char *model;
    const char *category; /* "local" (the default) */
    json_t *messages;     /* [{role, content}], or NULL */
    const char *prompt;   /* raw text, when messages is NULL */
    enum pc_priority priority;
    const char *key; /* debounce key; NULL: the model and category */
};

/* Queue a precharge. out gets its correlation id: the id of a queued or running job with the
 * same model and context when there is one (merged), or of the queued job with the same key
 * that this request replaces (debounced). Returns PC_ERR_NOT_FOUND / PC_ERR_BAD_PATH for a
 * model that is not in the store. */
enum pc_err pc_precharge_submit(struct pc_precharger *pc, const struct pc_precharge_req *req,
                                char out[37] /* OUT */, struct pc_error *err);

/* The job as JSON: {correlation_id, model_id, category, status, ...}: status "queued" or
 * "running", or the result: ready | failed | already_warm, with context_tokens, load_time_ms,
 * prefill_time_ms, restored_from, error. NULL for an unknown id. timeout_ms > 0 waits that
 * long for a result first. The caller decrefs. */
json_t *pc_precharge_get(struct pc_precharger *pc, const char *id, int timeout_ms);

/* Jobs waiting in the queue (debounced ones too) and jobs running now. */
void pc_precharge_counts(struct pc_precharger *pc, size_t *queued /* OUT */,
                         size_t *running /* OUT */);

#endif
