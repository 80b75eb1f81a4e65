/* ollama_opts.h - the names in Ollama's "options" object that no route reads as a number: the
 * load settings (num_batch, num_gpu, main_gpu, num_thread, use_mmap, ...), which the daemon's
 * configuration decides, and every other name, so that no option is silently dropped. */
#ifndef PC_OLLAMA_OPTS_H
#define PC_OLLAMA_OPTS_H

#include <stddef.h>

#include <jansson.h>

#include "../engine/engine.h"
#include "http.h"

/* Check every key of opts (an object) that is not null: one of read[0..n_read) (the options the
 * route itself reads) passes; a load setting passes when its value is the one the daemon loads
 * models with (p) or Ollama's "default" (num_gpu -1, num_thread 0, ...), else a 400 that names
 * it and the value in force; a per-request option that the route does not use (route says
 * which route and why: "/api/embed (nothing is sampled there)"), or a name Ollama does not have,
 * is a 400 naming it. 0, or -1 with the 400 in reply. */
int pc_ollama_options_check(json_t *opts, const struct pc_model_params *p, const char *const *read,
                            size_t n_read, const char *route, struct pc_http_reply *reply);

#endif
