/* engine.h - the llama.cpp wrapper: load a GGUF, render chats, prefill and generate.
 *
 * This is the only interface through which the rest of precharge reaches llama.cpp; no other
 * module includes llama.h. A loaded model owns one inference context with several sequences
 * in one unified KV cache. Each sequence holds a token prefix (a precharged system prompt, a
 * conversation so far): a live snapshot. A request copies the longest matching sequence
 * (llama_memory_seq_cp shares the cells, it copies no data) and prefills only the rest.
 *
 * Threads: a struct pc_model may be shared. Its context belongs to one decode loop, a thread
 * of its own: requests and precharges are tasks handed to it (pc_gen_start), and each step it
 * decodes one batch holding a prompt chunk or the next token of every active task (continuous
 * batching). Answers come back through a bounded buffer per task; nobody else waits on the
 * context. Work that needs the context to itself (embeddings, dropping every sequence) is a
 * call that the loop runs between two steps (pc_model_call). Nothing else in the model changes
 * after load. */
#ifndef PC_ENGINE_H
#define PC_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"
#include "chatio.h"

/* Load the CPU/GPU backends from backend_dir (NULL: the directory compiled in) and route
 * llama.cpp's log into ours. llama_level is the least severe llama.cpp message that we pass on:
 * "debug", "info", "warn", "error" or "none". Call once, before any other pc_engine or pc_model
 * function. */
void pc_engine_init(const char *backend_dir, const char *llama_level);

/* The llama.cpp release that this build runs (e.g. "v0.5.0"). */
const char *pc_engine_version(void);

enum pc_kv_type { PC_KV_F16, PC_KV_Q8_0, PC_KV_Q4_0, PC_KV_F32 };

struct pc_model_params {
    uint32_t n_ctx;       /* context window per sequence in tokens; 0 = the model's training
                           * context. The KV cache holds n_parallel of them. */
    int32_t n_parallel;   /* tasks decoded together; more wait in priority order */
    uint32_t n_batch;     /* tokens per decode call during prefill */
    int32_t n_threads;    /* threads per decode; 0 = the CPUs that other processes leave idle */
    int32_t n_gpu_layers; /* layers to offload; -1 = all that the devices hold */
    enum pc_kv_type kv_type;
    bool use_mmap;
    bool repack; /* let llama.cpp repack weights for this CPU: faster prefill, more RAM */
};

struct pc_model_params pc_model_default_params(void);

/* "f16", "q8_0", "q4_0", "f32" -> *out. Returns false for anything else. */
bool pc_kv_type_parse(const char *s, enum pc_kv_type *out /* OUT */);

/* What loading a model with these parameters will cost, in bytes, before loading it. */
struct pc_estimate {
    uint64_t weights_host; /* includes repack_bytes */
    uint64_t repack_bytes; /* the CPU's repacked copy of some weights, beside the mapped file */
    uint64_t weights_device;
    uint64_t kv_host;
    uint64_t kv_device;
    uint64_t compute_host;
    uint64_t compute_device;
    uint64_t host_total;
    uint64_t device_total;
};

/* Estimate without loading: weights from the tensor table (plus what this CPU repacks), KV
 * from the cache layout, compute buffers from a llama.cpp dry run that allocates nothing.
 * Takes tens of milliseconds and a few MB whatever the model's size. */
enum pc_err pc_model_estimate(const char *path, const struct pc_model_params *params,
                              struct pc_estimate *out /* OUT */, struct pc_error *err);

/* What a loaded model is and what it costs. Sizes in bytes, times in nanoseconds. */
struct pc_model_info {
    char arch[32];
    char name[128];          /* general.name, or "" */
    char quantization[32];   /* "Q4_0", "F16", ... */
    char parameter_size[16]; /* "1.1B", "64.3M" */
    uint64_t n_params;
    uint32_t n_ctx;       /* the context this load uses */
    uint32_t n_ctx_train; /* what the model was trained for */
    uint64_t file_size;
    uint64_t weights_bytes; /* tensor bytes in memory, including a repacked copy */
    uint64_t kv_bytes;
    uint64_t compute_bytes;
    uint64_t device_bytes; /* the part of the above on a GPU */
    int64_t load_ns;
    uint32_t n_vocab; /* token ids run from 0 to n_vocab - 1 */
    bool has_chat_template;
    /* The width of the pooled embedding pc_slot_embed gives: the model's embedding length when
     * its GGUF names a pooling type (<arch>.pooling_type: mean, cls, last), else 0 (a
     * generation model, which gives none). */
    uint32_t n_embd_pooled;
};

struct pc_model;

/* Load the GGUF at path. A missing, truncated, corrupt or non-GGUF file gives
 * PC_ERR_MODEL_FORMAT or PC_ERR_NOT_FOUND with the file named in err; never a crash.
 * On success *out is the model, freed with pc_model_free; on failure *out is NULL. */
enum pc_err pc_model_load(const char *path, const struct pc_model_params *params,
                          struct pc_model **out /* OUT */, struct pc_error *err);

/* What pc_model_load checks before llama.cpp reads the file: that it is a whole GGUF header, and
 * that no header value is one that llama.cpp aborts the process on (a block_count of 0 or over
 * 512, a negative or NaN norm epsilon, ...). PC_ERR_NOT_FOUND, or PC_ERR_MODEL_FORMAT naming the
 * file, the key and its value. Reads the header (the vocabulary), not the weights. */
enum pc_err pc_model_check(const char *path, struct pc_error *err);

/* Free the model and its context. The caller makes sure that no generation is running.
 * pc_model_free(NULL) does nothing. */
void pc_model_free(struct pc_model *m);

const struct pc_model_info *pc_model_info(const struct pc_model *m);

/* The file the model was loaded from. */
const char *pc_model_path(const struct pc_model *m);

/* The model file's identity (the snapshot layer's key: path, size, modification time), set
 * once when the model is loaded, so that nobody recomputes it per request. "" until set. */
void pc_model_set_identity(struct pc_model *m, const char *id);
const char *pc_model_identity(const struct pc_model *m);

/* Memory that the model holds now: weights + KV + compute. */
uint64_t pc_model_memory(const struct pc_model *m);

/* Render a conversation (messages, tools, schema, thinking) through the model's own Jinja chat
 * template (chatio.h): the prompt, and the grammar and parser of its answer. A model without a
 * template gets ChatML. *out is freed with pc_chat_prompt_free; NULL on failure. */
enum pc_err pc_chat_render(const struct pc_model *m, const struct pc_chat_input *in,
                           struct pc_chat_prompt **out /* OUT */, struct pc_error *err);

/* What the model's template can do: tools, thinking. */
void pc_model_chat_caps(const struct pc_model *m, struct pc_chat_caps *out /* OUT */);

/* Render messages alone (no tools, no schema) as the model expects its prompt. add_assistant
 * ends the text with the assistant's turn marker. *out is malloc'd; the caller frees it. */
enum pc_err pc_model_render_chat(const struct pc_model *m, const struct pc_chat_msg *msgs,
                                 size_t n_msgs, bool add_assistant, char **out /* OUT */,
                                 struct pc_error *err);

/* The tokens of leading messages (with the tools, thinking switch and schema of in) as every
 * later request that starts with them will see them: the tokens of the messages followed by a
 * user turn, cut before the first token that the continuation could change (a token that
 * straddles the end of the last message, as "." and "<" merge in TinyLlama's template). What a
 * precharge prefills. in->add_assistant is ignored. *out is malloc'd. */
enum pc_err pc_model_prefix_tokens(const struct pc_model *m, const struct pc_chat_input *in,
                                   int32_t **out /* OUT */, size_t *n_out /* OUT */,
                                   struct pc_error *err);

/* A fill-in-the-middle prompt for models trained for it (code models): the text of the model's
 * prefix, suffix and middle tokens (llama_vocab_fim_pre/suf/mid) around prefix and suffix, in
 * that order, for pc_model_tokenize (which parses them back into those tokens). *out is
 * malloc'd. PC_ERR_INVALID naming model when the model lacks any of the three. */
enum pc_err pc_model_fim_prompt(const struct pc_model *m, const char *model, const char *prefix,
                                const char *suffix, char **out /* OUT */, struct pc_error *err);

/* Whether pc_model_tokenize puts a BOS first (llama_vocab_get_add_bos). */
bool pc_model_adds_bos(const struct pc_model *m);

/* Tokenize text as a prompt (BOS added as the model asks, special tokens parsed).
 * *out is malloc'd; the caller frees it. */
enum pc_err pc_model_tokenize(const struct pc_model *m, const char *text, int32_t **out /* OUT */,
                              size_t *n_out /* OUT */, struct pc_error *err);

/* Tokenize text that continues earlier tokens: as pc_model_tokenize, but never with a BOS.
 * *out is malloc'd; the caller frees it. */
enum pc_err pc_model_tokenize_more(const struct pc_model *m, const char *text,
                                   int32_t **out /* OUT */, size_t *n_out /* OUT */,
                                   struct pc_error *err);

/* ---- the slot: the context to oneself, between two steps of the decode loop ------------ */

enum pc_priority { PC_PRIO_USER, PC_PRIO_HIGH, PC_PRIO_NORMAL, PC_PRIO_LOW };

struct pc_slot;

/* Run fn(slot, arg) on the model's decode loop between two steps, and wait until it returns:
 * the work that needs the context to itself (embeddings, dropping every sequence). Every task
 * pauses meanwhile, keeping its sequence; requests and precharges go through pc_gen_start.
 * Must not be called from the loop's thread (an evict hook). */
void pc_model_call(struct pc_model *m, void (*fn)(struct pc_slot *s, void *arg), void *arg);

/* For tests and tools that drive the context step by step from their own thread: take it from
 * the decode loop once the current step ends, until pc_slot_release (the loop is parked).
 * Never fails: *out is the slot. The daemon uses pc_model_call. */
void pc_slot_acquire(struct pc_model *m, enum pc_priority prio, struct pc_slot **out /* OUT */);
void pc_slot_release(struct pc_slot *s);
struct pc_model *pc_slot_model(const struct pc_slot *s);

/* Called on the loop's thread (or with the slot held) before an idle live sequence is dropped
 * to make room: the precharge layer may save it (pc_slot_export) to a lower tier. */
typedef void (*pc_seq_evict_fn)(void *user, struct pc_slot *s, int seq, const int32_t *tokens,
                                size_t n, bool precharged);
void pc_model_set_evict_hook(struct pc_model *m, pc_seq_evict_fn fn, void *user);

/* The live sequence whose tokens share the longest prefix with toks; its length in *match.
 * Returns the sequence, or -1 when none shares a token. */
int pc_slot_best_live(const struct pc_slot *s, const int32_t *toks, size_t n,
                      size_t *match /* OUT */);

/* A live sequence's tokens (valid until the slot changes it). */
const int32_t *pc_slot_seq_tokens(const struct pc_slot *s, int seq, size_t *n /* OUT */);

/* Serialize a sequence's KV state (llama_state_seq_get_data). *blob is malloc'd; the caller
 * frees it. */
enum pc_err pc_slot_export(struct pc_slot *s, int seq, uint8_t **blob /* OUT */,
                           size_t *size /* OUT */, struct pc_error *err);

/* Restore a serialized state as a new live sequence holding toks (a free one, or the least
 * recently used idle one, evicted through the hook). On failure (another model's state, a
 * recurrent model) PC_ERR_DECODE with the reason, and nothing changes: the caller prefills
 * instead. */
enum pc_err pc_slot_import(struct pc_slot *s, const uint8_t *blob, size_t size, const int32_t *toks,
                           size_t n, bool precharged, int *seq /* OUT */, struct pc_error *err);

/* The pooled, L2-normalized embedding of text: n_embd_pooled floats written to out. The text is
 * decoded alone in a scratch sequence (no prefix is shared: pooling runs over every token) that
 * is emptied afterwards; the live sequences are left as they were. Text longer than the batch
 * (pooling sees one batch), or than limit when that is smaller (0: no limit of its own), is cut to
 * it when truncate, else PC_ERR_CTX_OVERFLOW with both counts.
 * *n_tokens (may be NULL) is the count embedded. PC_ERR_INVALID when the model gives no
 * embeddings. */
enum pc_err pc_slot_embed(struct pc_slot *s, const char *text, bool truncate, size_t limit,
                          float *out, size_t *n_tokens /* OUT */, struct pc_error *err);

struct pc_seq_info {
    size_t n_tokens;
    bool precharged;
    int64_t last_used_ns; /* monotonic */
};

/* Drop every live sequence, each offered to the evict hook first (to keep it in RAM). */
void pc_slot_drop_all(struct pc_slot *s);

/* The live sequences: writes up to max entries, returns how many there are. */
size_t pc_slot_list(const struct pc_slot *s, struct pc_seq_info *out, size_t max);

/* One token's bias (OpenAI's logit_bias: a token id and what is added to its logit). */
struct pc_logit_bias {
    int32_t token;
    float bias;
};

struct pc_sampling {
    float temperature; /* <= 0: greedy */
    int32_t top_k;     /* <= 0: off */
    float top_p;       /* >= 1: off */
    float min_p;       /* <= 0: off */
    float repeat_penalty;
    int32_t repeat_last_n;
    float presence_penalty;
    float frequency_penalty;
    float typical_p; /* locally typical sampling's mass; <= 0 or >= 1: off */
    /* 1: Mirostat, 2: Mirostat 2.0, each in place of top-k, typical, top-p and min-p, aiming
     * at mirostat_tau bits of surprise per token, learning at rate mirostat_eta; 0: off. */
    int32_t mirostat;
    float mirostat_tau;
    float mirostat_eta;
    /* Added to the logits before any other cut (-INFINITY bans a token); the array is the
     * caller's, read only by pc_gen_start (llama.cpp copies it). */
    const struct pc_logit_bias *logit_bias;
    size_t n_logit_bias;
    uint32_t seed;       /* UINT32_MAX: random */
    int32_t num_predict; /* < 0: until the context is full */
    const char *const *stop;
    size_t n_stop;
    bool json; /* constrain the answer to one JSON value (llama.cpp's JSON grammar) */
    /* A chat's grammar (pc_chat_prompt_grammar: a schema, tool calls), instead of json; its
     * strings belong to the pc_chat_prompt, which outlives the generation. */
    struct pc_chat_grammar grammar;
    /* Tokens whose text the answer keeps although they are control tokens (the template's
     * preserved tokens: pc_chat_prompt_preserved); copied at pc_gen_start. */
    const int32_t *keep_special;
    size_t n_keep_special;
};

/* Ollama's defaults. */
struct pc_sampling pc_sampling_default(void);

/* A snapshot from a lower tier (RAM, disk) that the prefix planner may restore for a task,
 * when it gives more of the prompt than any live sequence. The caller keeps blob and toks alive
 * until the task's prompt is done (pc_gen_wait_prompt). */
struct pc_restore_offer {
    const uint8_t *blob; /* NULL: no offer */
    size_t size;
    const int32_t *toks; /* the tokens the snapshot holds */
    size_t n;
    bool precharged;
};

/* What the planner did with the offer. */
struct pc_restore_result {
    bool used;                     /* restored: the prefix came from the offer */
    bool failed;                   /* tried, and failed: the prompt was prefilled instead */
    size_t tokens;                 /* prompt tokens the chosen prefix gave (live or restored) */
    int64_t restore_ns;            /* spent restoring */
    char reason[PC_ERROR_MSG_MAX]; /* why it failed */
};

/* At most this many alternatives per token in pc_gen_request.top_logprobs (OpenAI's limit). */
#define PC_TOP_LOGPROBS_MAX 20

/* A token and its log-probability under its step's logits (a log-softmax over the vocabulary,
 * before the sampler's temperature and cuts). */
struct pc_logprob {
    int32_t token;
    float logprob;
};

/* One sampled token's log-probability, and the step's most likely tokens, best first. */
struct pc_token_logprobs {
    struct pc_logprob sampled;
    struct pc_logprob top[PC_TOP_LOGPROBS_MAX];
    int32_t n_top;
};

struct pc_gen_request {
    const int32_t *tokens; /* the prompt (pc_model_tokenize) */
    size_t n_tokens;
    const char *prompt; /* or its text, when tokens is NULL */
    struct pc_sampling sampling;
    const atomic_bool *cancel; /* optional: set it from any thread to stop at the next step */
    enum pc_priority priority; /* PC_PRIO_USER (0) unless set */
    /* A precharge: make the prompt a live, precharged sequence and end; no answer. */
    bool prefill_only;
    bool want_blob;   /* keep the sequence's serialized state at the end (pc_gen_take_blob) */
    bool want_logits; /* keep the logits of the prompt's last token (pc_gen_logits) */
    /* Each sampled token's log-probability, with its step's top_logprobs (0 ..
     * PC_TOP_LOGPROBS_MAX) best tokens (pc_gen_take_logprobs). Off: nothing is computed. */
    bool logprobs;
    int32_t top_logprobs;
    /* The context this task may fill: 0 the model's window (pc_model_info's n_ctx), or a smaller
     * one (Ollama's num_ctx). When the prompt and the answer reach it, the answer ends with
     * "length", or with shift the sequence drops half of its tokens after the first n_keep (and
     * after any prefix it shares with another sequence) and goes on: llama-server's context
     * shift, llama_memory_seq_rm + llama_memory_seq_add on this sequence only. */
    uint32_t window;
    bool shift;
    int32_t n_keep;
    const struct pc_restore_offer *offer; /* optional; copied */
};

struct pc_gen_stats {
    int32_t prompt_tokens; /* the whole prompt */
    int32_t cached_tokens; /* of those, the ones a live sequence already held */
    int64_t prompt_ns;     /* prefill of the rest */
    int32_t eval_tokens;
    int64_t eval_ns;
};

struct pc_gen;

/* Hand a request to the model's decode loop. Checks what can be checked at once (an empty
 * prompt, one longer than the context window: PC_ERR_INVALID, PC_ERR_CTX_OVERFLOW) and returns
 * without waiting; the loop admits it in priority order (a user's request before any
 * precharge; high, normal, low), at most n_parallel at a time. On success *out is the task,
 * ended with pc_gen_free; on failure *out is NULL. */
enum pc_err pc_gen_start(struct pc_model *m, const struct pc_gen_request *req,
                         struct pc_gen **out /* OUT */, struct pc_error *err);

/* Wait until the prompt is in the context (restored, copied, prefilled), or the task failed:
 * its error. For a precharge this is its end. */
enum pc_err pc_gen_wait_prompt(struct pc_gen *g, struct pc_error *err);

/* Wait for the next piece of text. *text points into g and stays valid until the next call;
 * it holds everything made since the last call (maybe several tokens' worth). *done becomes
 * true on the last call, whose text is the final piece. An error ends the generation. */
enum pc_err pc_gen_next(struct pc_gen *g, const char **text /* OUT */, size_t *len /* OUT */,
                        bool *done /* OUT */, struct pc_error *err);

/* As pc_gen_next, without waiting: *len 0 and !*done when nothing is ready yet. */
enum pc_err pc_gen_poll(struct pc_gen *g, const char **text /* OUT */, size_t *len /* OUT */,
                        bool *done /* OUT */, struct pc_error *err);

/* wake(arg) is called from the loop's thread, without blocking, whenever pc_gen_poll may have
 * more (text, the end). Set it once, before the first poll; it is called at once when something
 * is already waiting. */
void pc_gen_watch(struct pc_gen *g, void (*wake)(void *arg), void *arg);

/* "stop" (end of turn or a stop string), "length" (num_predict or the context ran out),
 * "cancel", "error" or, for a precharge, "prefilled"; NULL while the generation goes on. As of
 * the consumer's last call. */
const char *pc_gen_done_reason(const struct pc_gen *g);

/* As of the consumer's last call (pc_gen_wait_prompt, _next, _poll). */
const struct pc_gen_stats *pc_gen_stats(const struct pc_gen *g);

/* Where the prompt's prefix came from; valid once pc_gen_wait_prompt has returned. */
const struct pc_restore_result *pc_gen_restore(const struct pc_gen *g);

/* The tokens of the prompt and of the answer, in order: what a later request can send back as
 * its context. Once done. *out is malloc'd; the caller frees it. */
enum pc_err pc_gen_tokens(const struct pc_gen *g, int32_t **out /* OUT */, size_t *n /* OUT */,
                          struct pc_error *err);

/* The prompt's last logits (want_logits), n_vocab of them, once the prompt is done; NULL if
 * none were kept. */
const float *pc_gen_logits(const struct pc_gen *g, int32_t *n_vocab /* OUT */);

/* With logprobs asked: the log-probabilities of the answer's tokens whose text the consumer has
 * taken (pc_gen_next, _poll), from where the last call left off, in order. *out is malloc'd
 * (NULL when none); returns the count. */
size_t pc_gen_take_logprobs(struct pc_gen *g, struct pc_token_logprobs **out /* OUT */);

/* A token's text as the answer shows it (special tokens as their text), NUL-terminated in out;
 * returns its length. */
size_t pc_model_token_text(const struct pc_model *m, int32_t token, char *out /* OUT */,
                           size_t size);

/* The sequence's serialized state (want_blob), once done: the caller takes *blob and frees it.
 * NULL when none was made (the task failed, or the prefix was already live whole). */
void pc_gen_take_blob(struct pc_gen *g, uint8_t **blob /* OUT */, size_t *size /* OUT */);

/* Let go of the task at any point (this is how a caller cancels: the loop stops it at its next
 * step). The sequence keeps the prompt and what was generated, for the next request to reuse.
 * pc_gen_free(NULL) does nothing. */
void pc_gen_free(struct pc_gen *g);

/* What the decode loop has done, for metrics. */
struct pc_loop_stats {
    uint64_t steps;          /* llama_decode calls */
    uint64_t batch_tokens;   /* tokens decoded in them */
    uint64_t multi_steps;    /* steps that decoded more than one task */
    uint64_t preempted;      /* precharges paused for a user's request */
    uint64_t paused_steps;   /* task-steps skipped because the client was not reading */
    uint64_t yielded;        /* places given up by stalled tasks to tasks that could run */
    uint64_t cancelled;      /* tasks that ended "cancel" */
    uint64_t context_shifts; /* sequences shifted at their window (pc_gen_request.shift) */
    int32_t active;          /* tasks in the batch now */
    int32_t waiting;         /* tasks waiting for room */
    int32_t threads;         /* threads of the last decode */
};

void pc_model_loop_stats(struct pc_model *m, struct pc_loop_stats *out /* OUT */);

#endif
