/* openai_fields.h - OpenAI request fields that several /v1 routes share and that do not steer
 * the sampler's numbers: end-user identifiers, logit_bias, and the fields OpenAI serves from
 * features precharge does not have (stored completions, audio, web search), which are refused. */
#ifndef PC_OPENAI_FIELDS_H
#define PC_OPENAI_FIELDS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../engine/engine.h"
#include "http.h"

/* "user", "safety_identifier", "prompt_cache_key": strings that identify the caller's end user
 * or conversation. They never change an answer (at OpenAI neither: they feed abuse detection
 * and cache routing; here a prompt's cached prefix is found by its tokens alone). Each must be a
 * string of at most its limit (safety_identifier 64 characters, as OpenAI's; the others 256),
 * else a 400 with *param naming it. */
int pc_openai_identifiers(json_t *body, const char **param /* OUT */, struct pc_http_reply *reply);

/* Log the identifiers of body, if it has any, with the request's id, at info level (quoted as
 * JSON strings, so that a newline cannot forge a line). */
void pc_openai_log_identifiers(json_t *body, const char *route, const char *id);

/* "logit_bias": {"<token id>": bias} with biases -100..100; -100 bans the token (-INFINITY, as
 * OpenAI says it "should result in a ban"). *out is malloc'd (NULL when absent or empty); 0, or
 * -1 with a 400 naming the bad key or value. */
int pc_openai_logit_bias(json_t *body, struct pc_logit_bias **out /* OUT */, size_t *n /* OUT */,
                         struct pc_http_reply *reply);

/* Once the model is known: every biased token is in its vocabulary; else PC_ERR_INVALID (a
 * 400) naming the token. */
enum pc_err pc_openai_logit_bias_check(const struct pc_logit_bias *b, size_t n, uint32_t n_vocab,
                                       struct pc_error *err);

/* The chat's fields for features it does not have: "store" (false only: nothing is kept for
 * later retrieval), "metadata" (only stored completions carry it), "modalities" (["text"]
 * only), "audio", "web_search_options", "verbosity" ("medium" only: nothing maps it), and
 * "service_tier" ("auto" or "default", *tier set to "default" when given, as the answer
 * echoes it); "prediction" is type-checked and has no effect on the answer (OpenAI's predicted
 * outputs only speed up what the model would write anyway). 0, or -1 with a 400 and *param. */
int pc_openai_chat_features(json_t *body, const char **tier /* OUT */, const char **param /* OUT */,
                            struct pc_http_reply *reply);

/* Every field of body that is not null must be one of known[0..n): another is a 400, *param
 * naming it ("field \"x\" is not supported by this server's /v1/embeddings"), where OpenAI
 * answers 400 for an argument it does not recognize; never dropped. */
int pc_openai_known_fields(json_t *body, const char *const *known, size_t n, const char *route,
                           const char **param /* OUT */, struct pc_http_reply *reply);

/* "verbosity" (or text.verbosity): absent, null or "medium" is 0; anything else a 400 naming
 * prefix+"verbosity". */
int pc_openai_verbosity(json_t *obj, const char *prefix, struct pc_http_reply *reply);

/* "service_tier": "auto" or "default", *tier "default" (else unchanged); another is a 400. */
int pc_openai_service_tier(json_t *body, const char **tier /* OUT */, struct pc_http_reply *reply);

#endif
