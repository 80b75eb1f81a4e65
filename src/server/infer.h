/* infer.h - one inference request from the server's side: find the model, take it from the
 * pool, match a snapshot, generate, give it back, and publish what happened. The API files
 * (Ollama, OpenAI) only parse and format. */
#ifndef PC_INFER_H
#define PC_INFER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../engine/engine.h"
#include "../pool/pool.h"
#include "../precharge/snapshot.h"

struct pc_server;

struct pc_infer {
    struct pc_server *srv;
    char model[256]; /* the name the client used */
    char norm[256];  /* the store's name for it */
    char key[17];    /* the model file's identity, for snapshots */
    char id[37];     /* correlation id of LlmRequested / LlmCompleted */
    struct pc_pool_entry *entry;
    struct pc_slot *slot;
    struct pc_gen *gen;
    struct pc_restore restore;
    int64_t keep_alive_ns; /* -1: the pool's default */
    int64_t start_ns;      /* monotonic, when the request arrived */
    int64_t load_ns;       /* spent loading the model for this request */
    atomic_bool cancel;
    void *api; /* the API's own per-request state */
};

/* Resolve name in the store and take the model from the pool, loading it if needed.
 * On success *out must be closed with pc_infer_close. */
enum pc_err pc_infer_open(struct pc_server *srv, const char *name, int64_t keep_alive_ns,
                          struct pc_infer **out /* OUT */, struct pc_error *err);

/* pc_infer_open with the pool's acquire parameters (a preload, a pin). resident_only: only a
 * model that is resident or loading, else PC_ERR_NOT_FOUND with nothing published. */
enum pc_err pc_infer_open_with(struct pc_server *srv, const char *name,
                               const struct pc_pool_acquire_params *params, bool resident_only,
                               struct pc_infer **out /* OUT */, struct pc_error *err);

struct pc_model *pc_infer_model(const struct pc_infer *inf);

/* Tokenize prompt, take the model's context at user priority (before any precharge), restore
 * the longest snapshot, prefill the rest, and get ready to generate. */
enum pc_err pc_infer_start(struct pc_infer *inf, const char *prompt,
                           const struct pc_sampling *sampling, struct pc_error *err);

/* Stop generating, free the context, give the model back with its keep-alive, publish
 * LlmCompleted. NULL does nothing. */
void pc_infer_close(struct pc_infer *inf);

/* Unload a model now (keep_alive 0 with nothing to do). PC_OK if it was not loaded. */
enum pc_err pc_infer_unload(struct pc_server *srv, const char *name, struct pc_error *err);

#endif
