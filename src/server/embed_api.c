/* embed_api.c - embeddings for both APIs: Ollama's /api/embed and /api/embeddings, OpenAI's
 * /v1/embeddings. One path finds the model, checks it pools, and embeds; each route only parses
 * and formats. The ollama provider's models go to its server. */
#include "serverInt.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "../base/clock.h"
#include "genopts.h"
#include "infer.h"

/* What an embedding request asked for and what it got. */
struct embed_job {
    const char *model;
    int64_t keep_alive_ns;
    bool truncate;
    const char **texts;
    size_t n;
    /* Out: n * dim floats, the tokens embedded, and the request (for its durations). */
    float *out;
    uint32_t dim;
    size_t n_tokens;
    struct pc_infer *inf;
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
    pc_http_reply_pc_error(reply, &err);
    return -1;
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

/* /api/embed ("input": a string or strings; "embeddings", durations, prompt_eval_count) and the
 * older /api/embeddings ("prompt"; "embedding"). Vectors are L2-normalized, as Ollama's are. */
static void ollama_embed(const struct pc_http_req *req, struct pc_http_reply *reply, bool legacy)
{
    if (pc_server_remote_proxy(req, reply))
        return;
    struct embed_job j = {.keep_alive_ns = -1, .truncate = true};
    json_t *body = pc_req_parse_object(req, reply);
    if (body == NULL || (j.model = pc_req_model_or_name(body, reply)) == NULL ||
        pc_req_bool(body, "truncate", &j.truncate, reply) != 0 ||
        pc_genopts_keep_alive(body, &j.keep_alive_ns, reply) != 0 ||
        (j.texts = texts_of(body, legacy ? "prompt" : "input", !legacy, &j.n, reply)) == NULL ||
        embed_run(req->srv, &j, reply) != 0)
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
 * openai client asks for base64 unless told otherwise), "dimensions" only as the model's own. */
static void handle_openai_embeddings(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    if (pc_server_remote_proxy(req, reply)) {
        if (!pc_http_reply_streams(reply) && reply->status >= 400)
            pc_openai_error(reply, NULL);
        return;
    }
    struct embed_job j = {.keep_alive_ns = -1, .truncate = true};
    const char *format = "float", *param = NULL;
    json_t *body = pc_req_parse_object(req, reply);
    json_t *dims = body ? json_object_get(body, "dimensions") : NULL;
    if (body == NULL || (param = "model", pc_req_model(body, &j.model, reply)) != 0 ||
        (param = "encoding_format", pc_req_string(body, "encoding_format", &format, reply)) != 0)
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
    param = "model";
    if (embed_run(req->srv, &j, reply) != 0)
        goto fail;
    if (dims != NULL && (!json_is_integer(dims) || json_integer_value(dims) != j.dim)) {
        pc_http_reply_error(reply, 400,
                            "field \"dimensions\" must be the model's own, %u: vectors are not "
                            "shortened",
                            j.dim);
        param = "dimensions";
        goto fail;
    }
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
