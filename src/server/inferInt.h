/* inferInt.h - the inference request's fields, for infer.c and the metrics it feeds only; the
 * API files see struct pc_infer through infer.h's functions. */
#ifndef PC_INFER_INT_H
#define PC_INFER_INT_H

#include <stdatomic.h>

#include "infer.h"

struct pc_infer {
    struct pc_server *srv;
    char model[256]; /* the name the client used */
    char norm[256];  /* the store's name for it */
    char id[37];     /* correlation id of LlmRequested / LlmCompleted */
    struct pc_pool_entry *entry;
    bool embedded; /* pc_infer_embed ran */
    struct pc_gen *gen;
    struct pc_restore restore;
    int64_t keep_alive_ns; /* -1: the pool's default */
    int64_t start_ns;      /* monotonic, when the request arrived */
    int64_t load_ns;       /* spent loading the model for this request */
    atomic_bool cancel;
    bool queued;      /* counted in the server's queue: waiting for the model or its context */
    bool first_token; /* the first piece of answer is out (time to first token measured) */
    void *api;        /* the API's own per-request state */
    void (*api_free)(void *api); /* frees api when inf closes; may be NULL */
    /* Set before pc_infer_start, optional (pc_infer_set_context, pc_infer_set_num_ctx): */
    const int32_t *context; /* tokens of the conversation so far; the prompt continues them */
    size_t n_context;
    uint32_t num_ctx;     /* a smaller context than the loaded one: caps prompt + answer */
    int32_t top_logprobs; /* pc_infer_set_logprobs: -1 none, else alternatives per token */
    bool truncate;        /* pc_infer_set_fit: cut a prompt over the window, keeping num_keep */
    bool shift;           /* ... and shift the context when the answer reaches it */
    int32_t num_keep;     /* Ollama's: tokens after the BOS kept at the start; -1 the prompt */
};

#endif
