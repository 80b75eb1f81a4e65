/* embed_api.c - embeddings for both APIs: Ollama's /api/embed and /api/embeddings, OpenAI's
 * /v1/embeddings. One path finds the model, checks it pools, and embeds; each route only parses
 * and formats. The ollama provider's models go to its server. */
#include "serverInt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "../base/clock.h"
#include "genopts.h"
#include "infer.h"
#include "ollama_opts.h"
#include "openai_fields.h"

/* What an embedding request asked for and what it got. */
struct embed_job {
    const char *model;
    int64_t keep_alive_ns;
    bool truncate;
    const char **texts;
    size_t n;
    int64_t dimensions; /* "dimensions": keep the first this many components; 0 all */
    uint32_t num_ctx;   /* Ollama's options.num_ctx: the most tokens of a text; 0 the batch */
    /* Out: n * dim floats, the tokens embedded, and the request (for its durations). */
    float *out;
    uint32_t dim;
    size_t n_tokens;
    struct pc_infer *inf;
    enum pc_err code; /* why embed_run failed */
};

static void embed_job_free(struct embed_job *j)
{
    pc_infer_close(j->inf);
    free(j->out);
    free(j->texts);
}

/* Embed j->texts with j->model. Whether the model pools is read from the loaded model, never
 * from its file on each request: a header read holds the whole vocabulary. On failure reply
 * holds the error ({"error": ...}). */
static int embed_run(struct pc_server *srv, struct embed_job *j, struct pc_http_reply *reply)
{
    struct pc_error err = {0};
    if (pc_infer_open(srv, j->model, j->keep_alive_ns, &j->inf, &err) != PC_OK)
        goto fail;
    pc_infer_set_num_ctx(j->inf, j->num_ctx);
    j->dim = pc_model_info(pc_infer_model(j->inf))->n_embd_pooled;
    j->out = malloc((j->n ? j->n : 1) * (j->dim ? j->dim : 1) * sizeof(*j->out));
    if (j->out == NULL) {
        pc_error_set(&err, PC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (pc_infer_embed(j->inf, j->texts, j->n, j->truncate, j->out, &j->n_tokens, &err) != PC_OK)
        goto fail;
    return 0;
fail:
    j->code = err.code;
    pc_http_reply_pc_error(reply, &err);
    return -1;
}

/* "dimensions": absent or null keeps the model's width (0); else a positive integer, checked
 * against the width once the model is loaded (dimensions_apply). */
static int dimensions_of(json_t *body, int64_t *out, struct pc_http_reply *reply)
{
    json_t *v = json_object_get(body, "dimensions");
    *out = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        pc_http_reply_error(reply, 400, "field \"dimensions\" must be a positive integer");
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

/* Shorten every vector to its first j->dimensions components and scale each to length 1 again,
 * as Ollama does (a Matryoshka model's prefix is itself an embedding). Above the model's width
 * is a 400 naming it. */
static int dimensions_apply(struct embed_job *j, struct pc_http_reply *reply)
{
    if (j->dimensions == 0 || j->dimensions == j->dim)
        return 0;
    if (j->dimensions > j->dim) {
        pc_http_reply_error(reply, 400,
                            "field \"dimensions\": %lld is above the width of model \"%s\", %u",
                            (long long)j->dimensions, j->model, j->dim);
        return -1;
    }
    uint32_t n = (uint32_t)j->dimensions;
    for (size_t i = 0; i < j->n; i++) {
        /* In place: vector i moves down to i * n, never over a vector not yet read. */
        const float *from = j->out + i * j->dim;
        float *to = j->out + i * n;
        double sum = 0;
        for (uint32_t k = 0; k < n; k++)
            sum += (double)from[k] * from[k];
        double scale = sum > 0 ? 1.0 / sqrt(sum) : 0;
        for (uint32_t k = 0; k < n; k++)
            to[k] = (float)(from[k] * scale);
    }
    j->dim = n;
    return 0;
}

/* The texts: field as a string, or (when arrays) an array of strings. None (*n = 0) when it is
 * absent or empty: the model is loaded and the answer has no vectors, as in Ollama. NULL with a
 * 400 in reply. */
static const char **texts_of(json_t *body, const char *field, bool arrays, size_t *n,
                             struct pc_http_reply *reply)
{
    json_t *in = json_object_get(body, field);
    bool array = arrays && json_is_array(in);
    size_t count = array ? json_array_size(in) : 1;
    if (in == NULL || (json_is_string(in) && json_string_length(in) == 0))
        count = 0;
    else if (!array && !json_is_string(in))
        goto bad;
    const char **texts = calloc(count ? count : 1, sizeof(*texts));
    if (texts == NULL) {
        pc_http_reply_error(reply, 503, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        texts[i] = json_string_value(array ? json_array_get(in, i) : in);
        if (texts[i] == NULL) {
            free(texts);
            goto bad;
        }
    }
    *n = count;
    return texts;
bad:
    pc_http_reply_error(reply, 400, "field \"%s\" must be %s", field,
                        arrays ? "a string or an array of strings" : "a string");
    return NULL;
}

static json_t *vector(const float *v, uint32_t dim)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a != NULL && i < dim; i++)
        json_array_append_new(a, json_real(v[i]));
    return a;
}

/* ---- Ollama --------------------------------------------------------------------------------- */

/* Ollama's "options" on an embedding: num_ctx bounds each text (as the runner's context would:
 * cut, or a 400 with truncate false); a load setting passes at the daemon's value; anything
 * else (the sampling options: nothing is sampled) is a 400 naming it. */
static int embed_options(json_t *body, const struct pc_server *srv, const char *route,
                         struct embed_job *j, struct pc_http_reply *reply)
{
    static const char *const read[] = {"num_ctx"};
    json_t *opts = json_object_get(body, "options");
    double num_ctx = 0;
    if (opts == NULL || json_is_null(opts))
        return 0;
    if (!json_is_object(opts)) {
        pc_http_reply_error(reply, 400, "field \"options\" must be an object");
        return -1;
    }
    char why[64];
    snprintf(why, sizeof(why), "%s (nothing is sampled there)", route);
    if (pc_ollama_options_check(opts, &srv->cfg.pool.model_params, read, 1, why, reply) != 0 ||
        pc_genopts_number(opts, "options.", "num_ctx", 0, 1 << 22, &num_ctx, reply) != 0)
        return -1;
    j->num_ctx = (uint32_t)num_ctx;
    return 0;
}

/* /api/embed ("input": a string or strings; "embeddings", durations, prompt_eval_count) and the
 * older /api/embeddings ("prompt"; "embedding"). Both take "dimensions" (Ollama's older route has
 * none, and would drop it) and "options". Vectors are L2-normalized, as Ollama's are. */
static const char *const embed_fields[] = {"model",    "name",       "input",      "prompt",
                                           "truncate", "dimensions", "keep_alive", "options"};

static void ollama_embed(const struct pc_http_req *req, struct pc_http_reply *reply, bool legacy)
{
    if (pc_server_remote_proxy(req, reply))
        return;
    struct embed_job j = {.keep_alive_ns = -1, .truncate = true};
    json_t *body = pc_req_parse_object(req, reply);
    const char *route = legacy ? "/api/embeddings" : "/api/embed";
    /* Each route's text field; the other's is not one of its own. */
    const char *other = legacy ? "input" : "prompt";
    json_t *wrong = body ? json_object_get(body, other) : NULL;
    if (wrong != NULL && !json_is_null(wrong)) {
        pc_http_reply_error(reply, 400, "field \"%s\" is not a field of %s; send \"%s\"", other,
                            route, legacy ? "prompt" : "input");
        goto done;
    }
    if (body == NULL || (j.model = pc_req_model_or_name(body, reply)) == NULL ||
        pc_req_known_fields(body, embed_fields, sizeof(embed_fields) / sizeof(embed_fields[0]),
                            route, reply) != 0 ||
        pc_req_bool(body, "truncate", &j.truncate, reply) != 0 ||
        pc_genopts_keep_alive(body, &j.keep_alive_ns, reply) != 0 ||
        dimensions_of(body, &j.dimensions, reply) != 0 ||
        embed_options(body, req->srv, route, &j, reply) != 0 ||
        (j.texts = texts_of(body, legacy ? "prompt" : "input", !legacy, &j.n, reply)) == NULL ||
        embed_run(req->srv, &j, reply) != 0 || dimensions_apply(&j, reply) != 0)
        goto done;
    json_t *o;
    if (legacy) {
        o = json_pack("{s:o}", "embedding", vector(j.out, j.dim));
    } else {
        json_t *all = json_array();
        for (size_t i = 0; all != NULL && i < j.n; i++)
            json_array_append_new(all, vector(j.out + i * j.dim, j.dim));
        o = json_pack("{s:s, s:o, s:I, s:I, s:I}", "model", j.model, "embeddings", all,
                      "total_duration", (json_int_t)pc_infer_elapsed_ns(j.inf), "load_duration",
                      (json_int_t)pc_infer_load_ns(j.inf), "prompt_eval_count",
                      (json_int_t)j.n_tokens);
    }
    pc_reply_json_value(reply, 200, o);
done:
    embed_job_free(&j);
    json_decref(body);
}

static void handle_embed(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    ollama_embed(req, reply, false);
}

static void handle_embeddings(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    ollama_embed(req, reply, true);
}

/* ---- OpenAI --------------------------------------------------------------------------------- */

/* The vector as OpenAI's "base64" encoding: its float32 bytes (little-endian, as here). */
static json_t *vector_base64(const float *v, uint32_t dim)
{
    size_t bytes = (size_t)dim * sizeof(*v);
    char *text = malloc(4 * ((bytes + 2) / 3) + 1);
    if (text == NULL)
        return NULL;
    EVP_EncodeBlock((unsigned char *)text, (const unsigned char *)v, (int)bytes);
    json_t *s = json_string(text);
    free(text);
    return s;
}

/* POST /v1/embeddings: "input" a string or strings, "encoding_format" float or base64 (the
 * openai client asks for base64 unless told otherwise), "dimensions" as in /api/embed, "user"
 * (an identifier, logged). An input longer than one embedding can take is a 400, as OpenAI's
 * over the model's maximum: it is never cut (Ollama's routes cut it unless truncate is false). */
static void handle_openai_embeddings(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    if (pc_server_remote_proxy(req, reply)) {
        if (!pc_http_reply_streams(reply) && reply->status >= 400)
            pc_openai_error(reply, NULL);
        return;
    }
    struct embed_job j = {.keep_alive_ns = -1, .truncate = false};
    const char *format = "float", *param = NULL;
    json_t *body = pc_req_parse_object(req, reply);
    static const char *const known[] = {"model",
                                        "input",
                                        "encoding_format",
                                        "dimensions",
                                        "user",
                                        "safety_identifier",
                                        "prompt_cache_key",
                                        "keep_alive"};
    if (body == NULL ||
        pc_openai_known_fields(body, known, sizeof(known) / sizeof(known[0]), "/v1/embeddings",
                               &param, reply) != 0 ||
        (param = "model", pc_req_model(body, &j.model, reply)) != 0 ||
        (param = "keep_alive", pc_genopts_keep_alive(body, &j.keep_alive_ns, reply)) != 0 ||
        (param = "encoding_format", pc_req_string(body, "encoding_format", &format, reply)) != 0 ||
        (param = "dimensions", dimensions_of(body, &j.dimensions, reply)) != 0 ||
        pc_openai_identifiers(body, &param, reply) != 0)
        goto fail;
    if (strcmp(format, "float") != 0 && strcmp(format, "base64") != 0) {
        pc_http_reply_error(reply, 400,
                            "field \"encoding_format\" must be \"float\" or \"base64\"");
        goto fail;
    }
    param = "input";
    if ((j.texts = texts_of(body, "input", true, &j.n, reply)) == NULL)
        goto fail;
    if (j.n == 0) {
        pc_http_reply_error(reply, 400, "field \"input\" must not be empty");
        goto fail;
    }
    pc_openai_log_identifiers(body, "/v1/embeddings", j.model);
    if (embed_run(req->srv, &j, reply) != 0) {
        param = j.code == PC_ERR_CTX_OVERFLOW ? "input" : "model";
        goto fail;
    }
    if ((param = "dimensions", dimensions_apply(&j, reply)) != 0)
        goto fail;
    json_t *data = json_array();
    bool b64 = strcmp(format, "base64") == 0;
    for (size_t i = 0; data != NULL && i < j.n; i++) {
        const float *v = j.out + i * j.dim;
        json_array_append_new(data, json_pack("{s:s, s:I, s:o}", "object", "embedding", "index",
                                              (json_int_t)i, "embedding",
                                              b64 ? vector_base64(v, j.dim) : vector(v, j.dim)));
    }
    pc_reply_json_value(reply, 200,
                        json_pack("{s:s, s:o, s:s, s:{s:I, s:I}}", "object", "list", "data", data,
                                  "model", j.model, "usage", "prompt_tokens",
                                  (json_int_t)j.n_tokens, "total_tokens", (json_int_t)j.n_tokens));
    embed_job_free(&j);
    json_decref(body);
    return;
fail:
    pc_openai_error(reply, param);
    embed_job_free(&j);
    json_decref(body);
}

const struct pc_http_route pc_embed_routes[] = {
    {"POST", "/api/embed", handle_embed},
    {"POST", "/api/embeddings", handle_embeddings},
    {"POST", "/v1/embeddings", handle_openai_embeddings},
    {NULL, NULL, NULL},
};
