/* infer.h - one inference request from the server's side: find the model, take it from the
 * pool, generate, give it back. The API files (Ollama, later OpenAI) only format. */
#ifndef PC_INFER_H
#define PC_INFER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../engine/engine.h"
#include "../pool/pool.h"

struct pc_server;

struct pc_infer {
    struct pc_server *srv;
    char model[256]; /* the name the client used */
    struct pc_pool_entry *entry;
    struct pc_gen *gen;
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

struct pc_model *pc_infer_model(const struct pc_infer *inf);

/* Prefill prompt (only what the model's cache lacks) and get ready to generate. */
enum pc_err pc_infer_start(struct pc_infer *inf, const char *prompt,
                           const struct pc_sampling *sampling, struct pc_error *err);

/* Stop generating, give the model back with its keep-alive, free. NULL does nothing. */
void pc_infer_close(struct pc_infer *inf);

/* Unload a model now (keep_alive 0 with nothing to do). PC_OK if it was not loaded. */
enum pc_err pc_infer_unload(struct pc_server *srv, const char *name, struct pc_error *err);

#endif
