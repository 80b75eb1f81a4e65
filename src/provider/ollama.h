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

/* The discovered models as {name, provider: "ollama", available}. The caller decrefs. */
json_t *pc_ollama_models(struct pc_ollama *o);

/* Load (keep_alive as Ollama takes it: "5m", "-1", "0" unloads; NULL: the server's default) with
 * prompt as the context to prefill ("" only loads), through /api/generate. Waits up to timeout_ms.
 */
enum pc_err pc_ollama_load(struct pc_ollama *o, const char *model, const char *keep_alive,
                           const char *prompt, int64_t timeout_ms, struct pc_error *err);

/* Whether model is resident on the server, by /api/ps. */
enum pc_err pc_ollama_loaded(struct pc_ollama *o, const char *model, bool *loaded /* OUT */,
                             struct pc_error *err);

/* ---- proxying ------------------------------------------------------------------------------ */

struct pc_ollama_stream;

/* Send method path (with body, a JSON text, or NULL) to the server and wait for its response's
 * status. *status and *content_type (static or owned by the stream) describe the response, whose
 * body comes through pc_ollama_stream_next as the server sends it. On a network failure returns
 * PC_ERR_UNAVAILABLE and marks the server unavailable. */
enum pc_err pc_ollama_stream_open(struct pc_ollama *o, const char *method, const char *path,
                                  const char *body, struct pc_ollama_stream **out /* OUT */,
                                  int *status /* OUT */, const char **content_type /* OUT */,
                                  struct pc_error *err);

/* Append what has come since (waiting for some). Returns false once the body is complete. */
bool pc_ollama_stream_next(struct pc_ollama_stream *s, struct pc_buf *out);
void pc_ollama_stream_free(struct pc_ollama_stream *s);

#endif
