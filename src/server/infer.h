/* infer.h - one inference request from the server's side: find the model, take it from the
 * pool, match a snapshot, generate, give it back, and publish what happened. The API files
 * (Ollama, OpenAI) only parse and format. */
#ifndef PC_INFER_H
#define PC_INFER_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/buf.h"
#include <jansson.h>

#include "../engine/engine.h"
#include "../pool/pool.h"
#include "../precharge/snapshot.h"
#include "http.h"

struct pc_server;

/* One request, opaque to the API files: they reach it through the functions below. */
struct pc_infer;

/* Resolve name in the store and take the model from the pool, loading it if needed. The
 * request counts as waiting for the model (the server's queue, its metric) until
 * pc_infer_start has the model's context. On success *out must be closed with
 * pc_infer_close. */
enum pc_err pc_infer_open(struct pc_server *srv, const char *name, int64_t keep_alive_ns,
                          struct pc_infer **out /* OUT */, struct pc_error *err);

/* pc_infer_open with the pool's acquire parameters (a preload, a pin). resident_only: only a
 * model that is resident or loading, else PC_ERR_NOT_FOUND with nothing published. */
enum pc_err pc_infer_open_with(struct pc_server *srv, const char *name,
                               const struct pc_pool_acquire_params *params, bool resident_only,
                               struct pc_infer **out /* OUT */, struct pc_error *err);

struct pc_model *pc_infer_model(const struct pc_infer *inf);

/* Tokenize prompt (after inf->context when set), hand it to the model's decode loop at user
 * priority (before any precharge) with the snapshot tiers' best offer, and wait until the
 * prompt is in the context (restored, copied or prefilled, batched with the other tasks).
 * PC_ERR_INVALID for a context token the model does not have, PC_ERR_CTX_OVERFLOW (the count and
 * the limit named) for a prompt over the limit: the context it uses (the model's, or a smaller
 * num_ctx) less one token for the answer, or max_prompt_tokens. */
enum pc_err pc_infer_start(struct pc_infer *inf, const char *prompt,
                           const struct pc_sampling *sampling, struct pc_error *err);

/* Pooled embeddings of texts[0..n), written to out (n * the model's n_embd_pooled floats), at
 * user priority; a num_ctx set (pc_infer_set_num_ctx) bounds each text too. *n_tokens is the total
 * embedded. PC_ERR_INVALID, the model named, for a model that gives no embeddings;
 * PC_ERR_CTX_OVERFLOW for a text over the limit when !truncate. */
enum pc_err pc_infer_embed(struct pc_infer *inf, const char *const *texts, size_t n, bool truncate,
                           float *out, size_t *n_tokens /* OUT */, struct pc_error *err);

/* The next piece of the answer that has text, or the last one (*done). text is valid until the
 * next call. */
enum pc_err pc_infer_next(struct pc_infer *inf, const char **text /* OUT */, size_t *len /* OUT */,
                          bool *done /* OUT */, struct pc_error *err);

/* As pc_infer_next, without waiting: *len 0 and !*done when nothing is ready yet; the gen's
 * watcher (pc_gen_watch on inf->gen) is told when there is. */
enum pc_err pc_infer_poll(struct pc_infer *inf, const char **text /* OUT */, size_t *len /* OUT */,
                          bool *done /* OUT */, struct pc_error *err);

/* Generate the whole answer, appending it to out. */
enum pc_err pc_infer_collect(struct pc_infer *inf, struct pc_buf *out, struct pc_error *err);

/* Hand the answer to reply; inf takes api, freed with api_free when inf closes. Streamed:
 * reply becomes a 200 stream of content_type that poll(inf, out) writes without blocking
 * (PC_STREAM_WAIT until the decode loop makes more), and it closes inf when the reply is done. Not
 * streamed: whole(inf, reply) fills reply, and inf is closed. */
void pc_infer_reply(struct pc_infer *inf, void *api, void (*api_free)(void *api), bool stream,
                    const char *content_type,
                    enum pc_stream_state (*poll)(void *inf, struct pc_buf *out),
                    void (*whole)(struct pc_infer *inf, struct pc_http_reply *reply),
                    struct pc_http_reply *reply);

/* Stop generating, free the context, give the model back with its keep-alive, publish
 * LlmCompleted, free inf->api. NULL does nothing. */
void pc_infer_close(struct pc_infer *inf);

/* The API's own state, as pc_infer_reply was given it. */
void *pc_infer_api(const struct pc_infer *inf);

/* Set before pc_infer_start, both optional: the tokens of the conversation so far (the prompt
 * continues them; toks stays the caller's until pc_infer_start returns), and a smaller context
 * than the loaded one (it caps prompt and answer). */
void pc_infer_set_context(struct pc_infer *inf, const int32_t *toks, size_t n);
void pc_infer_set_num_ctx(struct pc_infer *inf, uint32_t num_ctx);

/* Also set before pc_infer_start, for Ollama's generate (both off unless set): with truncate a
 * prompt over the window is cut as Ollama cuts it instead of refused (its first num_keep tokens
 * after the BOS, then the newest, so that half of what follows num_keep is left for the answer);
 * with shift, an answer that fills the window shifts the context (pc_gen_request.shift) instead
 * of ending with "length". num_keep -1 keeps the whole prompt. */
void pc_infer_set_fit(struct pc_infer *inf, bool truncate, bool shift, int32_t num_keep);

/* Also set before pc_infer_start: ask for each answer token's log-probability with top (0 ..
 * PC_TOP_LOGPROBS_MAX) alternatives; top < 0 (the default) asks for none. */
void pc_infer_set_logprobs(struct pc_infer *inf, int32_t top);

/* The log-probabilities of the answer's tokens read since the last call, as OpenAI's chat
 * (logprobs.content) and Ollama's "logprobs" have them: [{token, logprob, bytes,
 * top_logprobs: [{token, logprob, bytes}]}]. An empty array when none; NULL when out of memory
 * or when none was asked for. */
json_t *pc_infer_take_logprobs(struct pc_infer *inf);

/* The generation's figures and end, as of the last piece read; NULL before pc_infer_start has
 * started one (an embedding, a failed start). */
const struct pc_gen_stats *pc_infer_stats(const struct pc_infer *inf);
const char *pc_infer_done_reason(const struct pc_infer *inf);

/* The prompt's and the answer's tokens, once done (pc_gen_tokens). */
enum pc_err pc_infer_tokens(const struct pc_infer *inf, int32_t **out /* OUT */,
                            size_t *n /* OUT */, struct pc_error *err);

/* The tier that the prompt's prefix was restored from ("ram", "disk", "redis"), once
 * pc_infer_start returned; NULL when none was (a live prefix, or nothing cached). */
const char *pc_infer_restored_from(const struct pc_infer *inf);

/* Since the request arrived, and of that, loading the model for it; nanoseconds. */
int64_t pc_infer_elapsed_ns(const struct pc_infer *inf);
int64_t pc_infer_load_ns(const struct pc_infer *inf);

/* Unload a model now (keep_alive 0 with nothing to do). PC_OK if it was not loaded. */
enum pc_err pc_infer_unload(struct pc_server *srv, const char *name, struct pc_error *err);

#endif
