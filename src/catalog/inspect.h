/* inspect.h - what a GGUF file is, read from its header without loading any weights. */
#ifndef PC_INSPECT_H
#define PC_INSPECT_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/err.h"

struct pc_gguf_info {
    char arch[32];
    char name[128];
    char quantization[16];   /* from general.file_type, else the most common tensor type */
    char parameter_size[16]; /* "1.1B" */
    uint64_t n_params;       /* elements in all tensors */
    uint64_t tensor_bytes;
    uint64_t file_size;
    uint32_t context_length;
    uint32_t n_layer;
    uint32_t n_head;
    uint32_t n_head_kv;
    uint32_t n_embd;
    uint32_t n_ff;
    uint32_t n_vocab;
    bool has_chat_template;
    uint32_t pooling_type; /* <arch>.pooling_type (llama_pooling_type); 0: none, a generation
                              model, which gives no embeddings */
};

/* Read path's header and tensor table. PC_ERR_NOT_FOUND, or PC_ERR_MODEL_FORMAT naming the
 * file when it is not a GGUF or is cut short. */
enum pc_err pc_gguf_inspect(const char *path, struct pc_gguf_info *out /* OUT */,
                            struct pc_error *err);

struct json_t;

/* Every key of path's GGUF header as a JSON object, as Ollama's /api/show "model_info" shows
 * it: numbers, strings and booleans as they are, arrays (the vocabulary, merges) as null.
 * *out is a new reference; the caller json_decref()s it. Errors as pc_gguf_inspect. */
enum pc_err pc_gguf_metadata(const char *path, struct json_t **out /* OUT */, struct pc_error *err);

/* Both from one read of the header (it holds the vocabulary: the read is most of the cost).
 * meta may be NULL. With arrays, meta holds the arrays' elements too (Ollama's verbose show)
 * instead of null. */
enum pc_err pc_gguf_read(const char *path, struct pc_gguf_info *info /* OUT */,
                         struct json_t **meta /* OUT */, bool arrays, struct pc_error *err);

#endif
