/* ollama.h - the remote provider: models that run on an Ollama-compatible server, driven over
 * HTTP. Discovery by /api/tags, load and unload by /api/generate with keep_alive, status by
 * /api/ps, and requests proxied with their streaming intact. An unreachable server makes its
 * models unavailable, and they come back when it does. */
#ifndef PC_OLLAMA_PROVIDER_H
#define PC_OLLAMA_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../base/stream.h"

#include "../base/buf.h"
#include "../base/err.h"

struct pc_ollama;

/* Watch the server at url ("http://host:port"), polling /api/tags every poll_ms on a thread of
 * its own; the first poll runs before this returns. on_change (may be NULL) is called from that
 * thread when the server goes away or comes back, or its models change, with the models now
 * available (a JSON array of names, borrowed) and the ones that went (borrowed). On success
 * *out is freed with pc_ollama_free. */
enum pc_err pc_ollama_new(const char *url, int64_t poll_ms,
                          void (*on_change)(void *user, json_t *models, json_t *removed),
                          void *user, struct pc_ollama **out /* OUT */, struct pc_error *err);
void pc_ollama_free(struct pc_ollama *o);

/* Whether the server answered the last poll, and its URL. */
bool pc_ollama_available(struct pc_ollama *o);
const char *pc_ollama_url(const struct pc_ollama *o);

/* Whether name ("m", "m:latest") is one of the server's models; canon (may be NULL, 256 bytes)
 * gets the server's own spelling. */
bool pc_ollama_has(struct pc_ollama *o, const char *name, char canon[256] /* OUT */);

/* The discovered models as the server's /api/tags has them (name, model, modified_at, size,
 * details, ...), with "provider": "ollama" and "available" added. The caller decrefs. */
json_t *pc_ollama_models(struct pc_ollama *o);

/* What one /api/generate or /api/chat told of its prompt: Ollama's counts and durations (ns). */
struct pc_ollama_gen_stats {
    int64_t prompt_eval_count;
    int64_t load_duration;
    int64_t prompt_eval_duration;
};

/* Load (keep_alive as Ollama takes it: "5m", "-1", "0" unloads; NULL: the server's default) with
 * prompt as the context to prefill ("" only loads), through /api/generate. Waits up to timeout_ms.
 */
enum pc_err pc_ollama_load(struct pc_ollama *o, const char *model, const char *keep_alive,
                           const char *prompt, int64_t timeout_ms, struct pc_error *err);

/* Prefill a context into the server's KV cache and keep the model loaded for keep_alive (NULL:
 * the server's default): messages ([{role, content}], borrowed) through /api/chat, or else
 * prompt as raw text through /api/generate. One token is generated: Ollama reads num_predict 0
 * as "no limit". stats (may be NULL) gets the server's figures. Waits up to timeout_ms. */
enum pc_err pc_ollama_prefill(struct pc_ollama *o, const char *model, json_t *messages,
                              const char *prompt, const char *keep_alive, int64_t timeout_ms,
                              struct pc_ollama_gen_stats *stats /* OUT */, struct pc_error *err);

/* Whether model is resident on the server, by /api/ps (asked now). */
enum pc_err pc_ollama_loaded(struct pc_ollama *o, const char *model, bool *loaded /* OUT */,
                             struct pc_error *err);

/* What the last poll and the requests in flight say of one model. */
struct pc_ollama_model_status {
    bool available; /* the server answered the last poll */
    bool known;     /* in its /api/tags */
    bool loaded;    /* in its /api/ps */
    int in_flight;  /* proxied requests for it that have not finished */
};

void pc_ollama_status(struct pc_ollama *o, const char *model,
                      struct pc_ollama_model_status *st /* OUT */);

/* The server's /api/ps models as of the last poll, as Ollama's objects with "provider":
 * "ollama" added; [] while the server is unavailable. The caller decrefs. */
json_t *pc_ollama_ps(struct pc_ollama *o);

/* Poll now rather than at the next interval (what is loaded there has changed). */
void pc_ollama_refresh(struct pc_ollama *o);

/* ---- proxying ------------------------------------------------------------------------------ */

struct pc_ollama_stream;

/* Send method path (with body, a JSON text, or NULL) to the server and wait for its response's
 * status. model (may be NULL) is counted as in flight until the stream is freed. *status and
 * *content_type (owned by the stream) describe the response, whose body comes through
 * pc_ollama_stream_poll as the server sends it. On a network failure returns PC_ERR_UNAVAILABLE
 * naming the server, and has the poller look at it at once. Every stream's transfer runs on one
 * thread of the provider's (started with the first), not on the caller's. */
enum pc_err pc_ollama_stream_open(struct pc_ollama *o, const char *method, const char *path,
                                  const char *body, const char *model,
                                  struct pc_ollama_stream **out /* OUT */, int *status /* OUT */,
                                  const char **content_type /* OUT */, struct pc_error *err);

/* The body, read without blocking (the shape of struct pc_http_stream; stream: a struct
 * pc_ollama_stream): poll appends what has come (END once the transfer is over and all was
 * read); watch registers a waker, called under the stream's lock when bytes come or the
 * transfer ends; free lets go of the stream (its transfer is cut if not over; freed later by
 * the provider's thread). A reader more than 64 KiB behind pauses the transfer. */
enum pc_stream_state pc_ollama_stream_poll(void *stream, struct pc_buf *out);
void pc_ollama_stream_watch(void *stream, void (*wake)(void *arg), void *arg);
void pc_ollama_stream_free(void *stream);

#endif
