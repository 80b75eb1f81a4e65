/* genopts.h - the generation options that the Ollama and OpenAI APIs share: one parser for the
 * numbers, stop strings, output format and keep-alive, with 400s that name the field. */
#ifndef PC_GENOPTS_H
#define PC_GENOPTS_H

#include <stddef.h>

#include <stdint.h>

#include <jansson.h>

#include "../engine/engine.h"
#include "http.h"

#define PC_GENOPTS_MAX_STOPS 16

/* What a request asked of the generation. The strings point into the request's JSON. */
struct pc_genopts {
    struct pc_sampling sampling;
    const char *stops[PC_GENOPTS_MAX_STOPS];
    uint32_t num_ctx; /* 0: the context the model is loaded with */
    int32_t num_keep; /* Ollama's: tokens kept at the start when the prompt is cut or the context
                         shifts (pc_infer_set_fit); -1 the whole prompt */
};

/* pc_sampling_default(), no stops, the loaded context. */
void pc_genopts_init(struct pc_genopts *g);

/* An optional number field of obj within [min, max]. 0 on success (absent leaves *out as it
 * was), or -1 with a 400 in reply naming prefix+field ("options.top_k"). */
int pc_genopts_number(json_t *obj, const char *prefix, const char *field, double min, double max,
                      double *out /* OUT */, struct pc_http_reply *reply);

/* One numeric field of a request and where it goes in struct pc_genopts. */
struct pc_genopts_field {
    const char *name;
    double min, max;
    enum { PC_GENOPT_F32, PC_GENOPT_I32, PC_GENOPT_U32 } type;
    size_t offset; /* offsetof(struct pc_genopts, ...) */
};

/* Read each of fields[0..n) that obj has into g. 0, or -1 with a 400 naming the first wrong
 * one. */
/* One entry of a field table: name, range, type (F32, I32, U32) and where it goes. */
#define PC_GENOPT_FIELD(name, min, max, type, field)                                               \
    {                                                                                              \
        name, min, max, PC_GENOPT_##type, offsetof(struct pc_genopts, field)                       \
    }

int pc_genopts_fields(json_t *obj, const char *prefix, const struct pc_genopts_field *fields,
                      size_t n, struct pc_genopts *g, struct pc_http_reply *reply);

/* obj's field "stop" (prefix as above): a string or an array of strings, into g. */
int pc_genopts_stops(json_t *obj, const char *prefix, struct pc_genopts *g,
                     struct pc_http_reply *reply);

/* obj's field "seed": a number, negative for random. */
int pc_genopts_seed(json_t *obj, const char *prefix, struct pc_genopts *g,
                    struct pc_http_reply *reply);

/* The sampling options beyond OpenAI's: typical_p, mirostat (0, 1 or 2), mirostat_tau,
 * mirostat_eta; and tfs_z and penalize_newline, whose samplers llama.cpp (and Ollama) no longer
 * have: their neutral values (1.0, false) are taken, any other is a 400 naming the option. */
int pc_genopts_sampler_options(json_t *obj, const char *prefix, struct pc_genopts *g,
                               struct pc_http_reply *reply);

/* Ollama's "format" when it is not an object: absent, "" or "json" (a JSON schema object goes
 * through the chat template: chatreq.h). */
int pc_genopts_format(json_t *obj, struct pc_genopts *g, struct pc_http_reply *reply);

/* Ollama's "keep_alive": a duration string or a number of seconds; -1 when absent. */
int pc_genopts_keep_alive(json_t *obj, int64_t *out /* OUT */, struct pc_http_reply *reply);

#endif
