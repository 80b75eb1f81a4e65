/* engineInt.h - the engine's private structures, shared by its .c files only. */
#ifndef PC_ENGINE_INT_H
#define PC_ENGINE_INT_H

#include <pthread.h>

#include "llama.h"

#include "chatioInt.h"
#include "engine.h"

/* Sequences per context. With a unified KV cache a copied prefix shares its cells, so more
 * sequences cost metadata, not memory. */
#define PC_MAX_SEQS 8

struct gguf_context;

/* The header values that llama.cpp asserts on (hparams.c): PC_OK, or PC_ERR_MODEL_FORMAT
 * naming path, the key, its value and what llama.cpp needs. */
enum pc_err pc_hparams_check(const struct gguf_context *g, const char *path, struct pc_error *err);

/* A live sequence: the tokens its KV cells hold, in order. */
struct pc_seq {
    llama_token *toks;
    size_t n, cap;
    bool used;
    bool precharged; /* a precharge made it: copied from, never extended in place */
    int64_t last_used_ns;
};

struct pc_slot {
    struct pc_model *m;
};

struct pc_model {
    struct llama_model *model;
    struct llama_context *ctx;
    const struct llama_vocab *vocab;
    char *path;
    char *chat_template;       /* owned copy, or NULL */
    struct pc_chat_tmpl *chat; /* the parsed Jinja templates; owned */
    struct pc_model_info info;
    int32_t n_batch;

    /* lock guards owned and waiting: who holds the slot, and who waits at each priority. */
    pthread_mutex_t lock;
    pthread_cond_t released;
    bool owned;
    unsigned waiting[PC_PRIO_LOW + 1];

    /* Owned by whoever holds the slot: the context and everything below. */
    struct pc_slot slot;
    struct pc_seq seqs[PC_MAX_SEQS];
    pc_seq_evict_fn evict_hook;
    void *evict_user;
};

/* Load path with no_alloc: llama.cpp plans every buffer and allocates none. Gives the compute
 * buffers (which depend on the graph) on the host and on devices. The caller has passed path's
 * header through pc_hparams_check: llama.cpp's loader asserts on what that refuses. */
enum pc_err pc_engine_dry_run(const char *path, const struct pc_model_params *params,
                              uint64_t *compute_host /* OUT */, uint64_t *compute_device /* OUT */,
                              struct pc_error *err);

/* A free sequence, the least recently used one evicted when all are taken (never keep; -1:
 * none to keep); -1 when there is none. The caller marks it used, or leaves it empty. */
int pc_seq_alloc(struct pc_model *m, int keep);

/* Free the sequences' token arrays (the model is being freed). */
void pc_seqs_free(struct pc_model *m);

/* Decode toks into seq at the positions after what it holds, in batches; logits for the last
 * token when want_logits. Makes room by evicting idle sequences when the cache is full. */
enum pc_err pc_seq_decode(struct pc_model *m, int seq, const llama_token *toks, size_t n,
                          bool want_logits, const atomic_bool *cancel, struct pc_error *err);

/* A sequence to work in for toks: the longest live prefix, copied into a fresh sequence when it
 * is precharged (or extended in place when it is a conversation), cut where it differs. The
 * last prompt token is always left to decode, for its logits. *kept is the reused length. */
enum pc_err pc_seq_for_prompt(struct pc_model *m, const llama_token *toks, size_t n,
                              bool for_precharge, int *seq /* OUT */, size_t *kept /* OUT */,
                              struct pc_error *err);

/* The sampling chain for s, in llama.cpp's order of use (grammar first). NULL when out of
 * memory or the grammar does not parse. Freed with llama_sampler_free. */
struct llama_sampler *pc_sampler_make(const struct pc_model *m, const struct pc_sampling *s);

#endif
