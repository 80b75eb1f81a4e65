/* engineInt.h - the engine's private structures, shared by its .c files only. */
#ifndef PC_ENGINE_INT_H
#define PC_ENGINE_INT_H

#include <pthread.h>

#include "llama.h"

#include "chatioInt.h"
#include "emit.h"
#include "engine.h"

/* Live sequences kept beyond the ones that tasks work in: precharged prefixes and finished
 * conversations, ready to be copied from. With a unified KV cache a copied prefix shares its
 * cells, so more sequences cost metadata, not memory. */
#define PC_SPARE_SEQS 4

struct gguf_context;

/* The header values that llama.cpp asserts on (hparams.c): PC_OK, or PC_ERR_MODEL_FORMAT
 * naming path, the key, its value and what llama.cpp needs. */
enum pc_err pc_hparams_check(const struct gguf_context *g, const char *path, struct pc_error *err);

/* Text a request's buffer holds before its sequence pauses: the client is not reading. */
#define PC_GEN_BUF_MAX 1024

/* A live sequence: the tokens its KV cells hold, in order. Owned by the decode loop. */
struct pc_seq {
    llama_token *toks;
    size_t n, cap;
    bool used;
    bool precharged;      /* a precharge made it: copied from, never extended in place */
    struct pc_gen *owner; /* the task working in it: never evicted, cut or extended by another */
    int64_t last_used_ns;
};

struct pc_slot {
    struct pc_model *m;
};

/* A function to run on the loop's thread between two steps (pc_model_call). */
struct pc_call {
    void (*fn)(struct pc_slot *s, void *arg);
    void *arg;
    bool done;
    struct pc_call *next;
};

enum pc_task_state { PC_TASK_WAITING, PC_TASK_PREFILL, PC_TASK_GENERATE, PC_TASK_DONE };

/* One request or precharge: a task of the model's decode loop, and the bounded buffer through
 * which its answer reaches the consumer. Two references: the loop's (until the task is done)
 * and the consumer's (until pc_gen_free). */
struct pc_gen {
    struct pc_model *m;

    /* Set at submission, read-only afterwards. */
    llama_token *prompt;
    size_t n_prompt;
    enum pc_priority prio;
    uint64_t order;
    bool prefill_only; /* a precharge: no answer, the sequence stays live as precharged */
    bool want_blob;
    bool want_logits;
    bool logprobs;                 /* record each sampled token's (pc_gen_publish_logprobs) */
    int32_t top_logprobs;          /* with this many alternatives */
    struct pc_restore_offer offer; /* .blob NULL: none */
    int32_t num_predict;
    uint32_t window; /* the context it may fill (<= the model's) */
    bool shift;      /* at the window: shift the context (keeping n_keep) rather than end */
    int32_t n_keep;
    llama_token *keep_special; /* rendered with their text (pc_sampling.keep_special) */
    size_t n_keep_special;
    const atomic_bool *ext_cancel;
    atomic_bool cancel; /* the consumer let go */

    /* The loop's own: nobody else touches these. */
    struct pc_gen *next; /* in the loop's waiting list */
    enum pc_task_state state;
    bool planned; /* it has a sequence (a preempted task keeps it) */
    int seq;
    size_t n_done; /* prompt tokens in the sequence */
    int32_t batch_idx;
    struct llama_sampler *smpl;
    struct pc_emit emit;
    size_t text_pushed;  /* bytes of answer text given to emit */
    llama_token pending; /* sampled and sent, not yet decoded */
    bool has_pending;
    int64_t prefill_t0;
    struct pc_gen_stats st;

    /* lock guards everything below: what passes from the loop to the consumer. */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* text, the end of the prompt, or the end */
    int refs;
    struct pc_buf out; /* text made and not yet taken */
    size_t *cuts;      /* where each piece in out ends */
    size_t n_cuts, cap_cuts;
    struct pc_token_logprobs *lps; /* with logprobs: one per sampled token */
    size_t *lp_start;              /* where each one's text starts in the answer (cap_lps) */
    size_t n_lps, cap_lps;
    size_t published;    /* bytes of answer text in pieces (push_piece) */
    size_t lp_covered;   /* lps whose text starts before published: a stop string ate the rest */
    size_t *lp_cuts;     /* n_lps when each piece of cuts was made (cap_cuts of them) */
    size_t lp_released;  /* lps whose piece the consumer took */
    size_t lp_given;     /* of those, the ones pc_gen_take_logprobs gave */
    bool prompt_done;    /* the prompt is in the context (or the task ended first) */
    bool finished;       /* no more text will come */
    const char *reason;  /* once finished */
    struct pc_error err; /* err.code != PC_OK: the task failed */
    struct pc_gen_stats shared_st;
    struct pc_restore_result restore;
    llama_token *tokens; /* prompt and answer, once finished */
    size_t n_tokens;
    uint8_t *blob; /* the sequence's state, once finished, when want_blob */
    size_t blob_size;
    float *logits; /* the prompt's last logits, when want_logits */
    void (*wake)(void *arg);
    void *wake_arg;
    int waking; /* wake calls under way, made without the lock */

    /* The consumer's own. */
    struct pc_buf taken;
    struct pc_gen_stats cst;
    const char *creason;
};

struct pc_model {
    struct llama_model *model;
    struct llama_context *ctx;
    const struct llama_vocab *vocab;
    char *path;
    char identity[17];         /* pc_model_set_identity's, set before the model is shared */
    char *chat_template;       /* owned copy, or NULL */
    struct pc_chat_tmpl *chat; /* the parsed Jinja templates; owned */
    struct pc_model_info info;
    int32_t n_batch;
    int32_t n_parallel;
    int32_t n_threads; /* fixed by the caller; 0: the loop picks (threads.c) */

    /* lock guards incoming, next_order, kicks, stopping and the slot hand-over fields. */
    pthread_mutex_t lock;
    pthread_cond_t cond;     /* the loop waits here for work; slot takers for the hand-over */
    struct pc_gen *incoming; /* submitted, not yet seen by the loop */
    uint64_t next_order;
    uint64_t kicks; /* bumped by anything the loop may have to act on */
    bool stopping;
    struct pc_call *calls; /* pc_model_call's, waiting for the loop to run them */
    unsigned slot_waiting; /* callers that asked for the context */
    bool slot_granted;     /* the loop is parked until slot_waiting drops to 0 */
    bool slot_taken;       /* one caller holds it */
    pthread_t thread;
    bool running;
    struct pc_loop_stats lstats; /* the loop's counters as of its last step */

    /* Owned by the loop thread (or by a slot holder while the loop is parked). */
    struct pc_slot slot;
    struct pc_seq *seqs;
    int n_seqs;
    struct pc_gen *waiting; /* by priority, then order */
    struct pc_gen **active; /* n_parallel of them */
    int n_active;
    struct llama_batch batch;
    pc_seq_evict_fn evict_hook;
    void *evict_user;
    struct pc_loop_stats lwork; /* the loop's counters, copied to lstats after each step */
    struct pc_threads *threads;
};

/* Load path with no_alloc: llama.cpp plans every buffer and allocates none. Gives the compute
 * buffers (which depend on the graph) on the host and on devices. The caller has passed path's
 * header through pc_hparams_check: llama.cpp's loader asserts on what that refuses. */
enum pc_err pc_engine_dry_run(const char *path, const struct pc_model_params *params,
                              uint64_t *compute_host /* OUT */, uint64_t *compute_device /* OUT */,
                              struct pc_error *err);

/* ---- seq.c: live sequences and the prefix planner ---------------------------------------- */

/* Allocate the sequence table (n_seq entries). */
bool pc_seqs_init(struct pc_model *m, int n_seq);

/* Free the sequences' token arrays (the model is being freed). */
void pc_seqs_free(struct pc_model *m);

/* A free sequence, the least recently used idle one evicted when all are taken (never keep;
 * -1: none to keep); -1 when there is none. The caller marks it used, or leaves it empty. */
int pc_seq_alloc(struct pc_model *m, int keep);

/* Drop a live sequence, offering it to the evict hook first. */
void pc_seq_evict(struct pc_model *m, int seq);

/* Empty a sequence without offering it anywhere. */
void pc_seq_clear(struct pc_model *m, int seq);

/* Append toks to what seq holds (after a decode put them in its cells). */
bool pc_seq_push(struct pc_model *m, int seq, const llama_token *toks, size_t n);

/* The least recently used idle sequence (no owner) other than keep; -1 when there is none. */
int pc_seq_lru_idle(const struct pc_model *m, int keep);

/* The prefix planner: where the prompt toks[0..n) starts from. It compares the live
 * sequences with the offered snapshot (restored only when it gives more and fits), then picks
 * the sequence to work in: a conversation continued in place, or a fresh sequence that shares
 * the cells of a precharged prefix (llama_memory_seq_cp). At least the last prompt token is
 * left to decode for a request (it needs logits); a precharge of a prefix that is already live
 * whole keeps it all. alone: no other task is active, so idle sequences that the prompt does
 * not extend may be moved out of the way (each token attends over every cell below the highest
 * one in use). Fills *seq, *kept and *restore. */
enum pc_err pc_seq_plan(struct pc_model *m, const llama_token *toks, size_t n, bool for_precharge,
                        const struct pc_restore_offer *offer, bool alone, int *seq /* OUT */,
                        size_t *kept /* OUT */, struct pc_restore_result *restore /* OUT */,
                        struct pc_error *err);

/* Decode toks into seq at the positions after what it holds, alone in batches (a slot holder's
 * work: embeddings, tests); logits for the last token when want_logits. Makes room by evicting
 * idle sequences when the cache is full. */
enum pc_err pc_seq_decode(struct pc_model *m, int seq, const llama_token *toks, size_t n,
                          bool want_logits, const atomic_bool *cancel, struct pc_error *err);

/* Serialize / restore a sequence's KV state (on the loop thread or under the slot). */
enum pc_err pc_seq_export(struct pc_model *m, int seq, uint8_t **blob /* OUT */,
                          size_t *size /* OUT */, struct pc_error *err);
enum pc_err pc_seq_import(struct pc_model *m, const uint8_t *blob, size_t size, const int32_t *toks,
                          size_t n, bool precharged, int *seq /* OUT */, struct pc_error *err);

/* ---- loop.c: the decode loop ------------------------------------------------------------ */

/* Start / stop the model's decode loop thread. Stopping ends every task ("cancel"). */
enum pc_err pc_loop_start(struct pc_model *m, struct pc_error *err);
void pc_loop_stop(struct pc_model *m);

/* Hand a task to the loop (takes the loop's reference). */
void pc_loop_submit(struct pc_model *m, struct pc_gen *g);

/* Tell the loop that something changed: a cancel, a buffer drained. */
void pc_loop_kick(struct pc_model *m);

/* ---- gen.c: a task's buffer, as the loop fills it ----------------------------------------- */

/* The loop's: a sampled token's log-probabilities, before its text (pc_gen_publish_text), so that
 * the piece that brings the text releases them. */
void pc_gen_publish_logprobs(struct pc_gen *g, const struct pc_token_logprobs *lp,
                             size_t text_start);

/* The loop's side. Each takes g->lock itself and wakes the consumer. */
void pc_gen_publish_text(struct pc_gen *g, const char *text, size_t len);
void pc_gen_publish_prompt(struct pc_gen *g);
/* Ends the task: what is pending in emit goes out, the tokens are copied; drops the loop's
 * reference (g may be freed on return). err NULL: no error. */
void pc_gen_finish(struct pc_gen *g, const char *reason, const struct pc_error *err);
/* The consumer's buffer is full: the loop leaves this task out of the batch. */
bool pc_gen_buffer_full(struct pc_gen *g);
/* Drop a reference; the last one frees. */
void pc_gen_unref(struct pc_gen *g);

/* ---- sampler.c -------------------------------------------------------------------------- */

/* The sampling chain for s, in llama.cpp's order of use (grammar first). NULL when out of
 * memory or the grammar does not parse. Freed with llama_sampler_free. */
struct llama_sampler *pc_sampler_make(const struct pc_model *m, const struct pc_sampling *s);

/* ---- threads.c: how many threads a decode uses ------------------------------------------- */

struct pc_threads;

/* The CPUs this process may really use: its affinity mask, capped by a cgroup CPU quota. */
int32_t pc_threads_available(void);

/* The policy: as many threads as the available CPUs that other processes leave idle, shared
 * among the process's loops that decode at the same moment, at least one; the idle CPUs are
 * re-measured once a second. pc_threads_pick returns the count for the next decode, made
 * between pc_threads_begin and pc_threads_end. */
struct pc_threads *pc_threads_new(void);
int32_t pc_threads_pick(struct pc_threads *t);
void pc_threads_begin(void);
void pc_threads_end(void);
void pc_threads_free(struct pc_threads *t);

#endif
