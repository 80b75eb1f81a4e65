/* engineInt.h - the engine's private structures, shared by its .c files only. */
#ifndef PC_ENGINE_INT_H
#define PC_ENGINE_INT_H

#include <pthread.h>

#include "llama.h"

#include "engine.h"

struct pc_model {
    struct llama_model *model;
    struct llama_context *ctx;
    const struct llama_vocab *vocab;
    char *path;
    char *chat_template; /* owned copy, or NULL */
    struct pc_model_info info;
    int32_t n_batch;

    /* slot_lock guards the context and the fields below; one generation holds it at a time. */
    pthread_mutex_t slot_lock;
    llama_token *kv_tokens; /* the tokens that sequence 0 of the KV cache holds, in order */
    size_t n_kv_tokens;
    size_t kv_cap;
};

/* Load path with no_alloc: llama.cpp plans every buffer and allocates none. Gives the compute
 * buffers (which depend on the graph) on the host and on devices. */
enum pc_err pc_engine_dry_run(const char *path, const struct pc_model_params *params,
                              uint64_t *compute_host /* OUT */, uint64_t *compute_device /* OUT */,
                              struct pc_error *err);

/* Keep kv_tokens in step with what was decoded. Returns false when memory runs out. */
bool pc_model_kv_push(struct pc_model *m, const llama_token *toks, size_t n);

#endif
