/* inspect.c - GGUF metadata through gguf.h: no weights are read or mapped. */
#include "inspect.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "../base/buf.h"
#include "../base/fmt.h"
#include "../base/utf8.h"
#include "ggml.h"
#include "gguf.h"

/* llama_ftype values, as general.file_type stores them. */
static const char *ftype_name(uint32_t t)
{
    static const char *const names[] = {
        [0] = "F32",      [1] = "F16",      [2] = "Q4_0",    [3] = "Q4_1",    [7] = "Q8_0",
        [8] = "Q5_0",     [9] = "Q5_1",     [10] = "Q2_K",   [11] = "Q3_K_S", [12] = "Q3_K_M",
        [13] = "Q3_K_L",  [14] = "Q4_K_S",  [15] = "Q4_K_M", [16] = "Q5_K_S", [17] = "Q5_K_M",
        [18] = "Q6_K",    [19] = "IQ2_XXS", [20] = "IQ2_XS", [21] = "Q2_K_S", [22] = "IQ3_XS",
        [23] = "IQ3_XXS", [24] = "IQ1_S",   [25] = "IQ4_NL", [26] = "IQ3_S",  [27] = "IQ3_M",
        [28] = "IQ2_S",   [29] = "IQ2_M",   [30] = "IQ4_XS", [31] = "IQ1_M",  [32] = "BF16",
    };
    if (t < sizeof(names) / sizeof(names[0]) && names[t] != NULL)
        return names[t];
    return NULL;
}

static uint32_t get_u32(const struct gguf_context *g, const char *arch, const char *suffix)
{
    char key[128];
    snprintf(key, sizeof(key), "%s.%s", arch, suffix);
    int64_t id = gguf_find_key(g, key);
    if (id < 0)
        return 0;
    switch (gguf_get_kv_type(g, id)) {
    case GGUF_TYPE_UINT32:
        return gguf_get_val_u32(g, id);
    case GGUF_TYPE_INT32:
        return (uint32_t)gguf_get_val_i32(g, id);
    case GGUF_TYPE_UINT64:
        return (uint32_t)gguf_get_val_u64(g, id);
    case GGUF_TYPE_ARRAY: /* per-layer values (e.g. head_count_kv): take the first */
        if (gguf_get_arr_type(g, id) == GGUF_TYPE_UINT32 && gguf_get_arr_n(g, id) > 0)
            return ((const uint32_t *)gguf_get_arr_data(g, id))[0];
        if (gguf_get_arr_type(g, id) == GGUF_TYPE_INT32 && gguf_get_arr_n(g, id) > 0)
            return (uint32_t)((const int32_t *)gguf_get_arr_data(g, id))[0];
        return 0;
    default:
        return 0;
    }
}

/* A header is not bound to hold UTF-8, and what it holds goes out in JSON: text with each
 * invalid byte replaced by U+FFFD. b is reset first; false when out of memory. */
static bool valid_utf8(struct pc_buf *b, const char *text)
{
    pc_buf_reset(b);
    return pc_utf8_append_valid(b, text, strlen(text)) && pc_buf_append(b, "", 0);
}

/* The string value of key, as UTF-8, cut to size on a character boundary; "" if it has none. */
static void get_str(const struct gguf_context *g, const char *key, char *buf, size_t size)
{
    int64_t id = gguf_find_key(g, key);
    struct pc_buf b = PC_BUF_INIT;
    buf[0] = '\0';
    if (id >= 0 && gguf_get_kv_type(g, id) == GGUF_TYPE_STRING &&
        valid_utf8(&b, gguf_get_val_str(g, id)) && b.len > 0) {
        size_t n = pc_utf8_complete_prefix(b.data, b.len < size ? b.len : size - 1);
        memcpy(buf, b.data, n);
        buf[n] = '\0';
    }
    pc_buf_free(&b);
}

/* Tensors: count, bytes, and the most common type as a fallback for the quantization. */
static void scan_tensors(const struct gguf_context *g, struct pc_gguf_info *out)
{
    uint64_t bytes_by_type[GGML_TYPE_COUNT] = {0};
    int64_t n = gguf_get_n_tensors(g);
    for (int64_t i = 0; i < n; i++) {
        enum ggml_type t = gguf_get_tensor_type(g, i);
        size_t sz = gguf_get_tensor_size(g, i);
        out->tensor_bytes += sz;
        int64_t blck = ggml_blck_size(t);
        size_t per_block = ggml_type_size(t);
        if (per_block > 0)
            out->n_params += (uint64_t)(sz / per_block) * (uint64_t)blck;
        if ((unsigned)t < GGML_TYPE_COUNT)
            bytes_by_type[t] += sz;
    }
    if (out->quantization[0] != '\0')
        return;
    int best = 0;
    for (int t = 1; t < GGML_TYPE_COUNT; t++)
        if (bytes_by_type[t] > bytes_by_type[best])
            best = t;
    snprintf(out->quantization, sizeof(out->quantization), "%s", ggml_type_name(best));
}

static enum pc_err metadata_of(const struct gguf_context *g, bool arrays, json_t **out);

enum pc_err pc_gguf_read(const char *path, struct pc_gguf_info *out, json_t **meta, bool arrays,
                         struct pc_error *err)
{
    memset(out, 0, sizeof(*out));
    if (meta != NULL)
        *meta = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return pc_error_set(err, errno == ENOENT ? PC_ERR_NOT_FOUND : PC_ERR_IO,
                            "model file \"%s\": %s", path, strerror(errno));
    out->file_size = (uint64_t)st.st_size;

    struct gguf_init_params gp = {.no_alloc = true, .ctx = NULL};
    struct gguf_context *g = S_ISREG(st.st_mode) ? gguf_init_from_file(path, gp) : NULL;
    if (g == NULL)
        return pc_error_set(err, PC_ERR_MODEL_FORMAT,
                            "\"%s\" is not a GGUF file, or its header is corrupt or cut short",
                            path);

    /* The header can be whole while the weights are not (an interrupted download). */
    uint64_t end = 0;
    for (int64_t i = 0; i < gguf_get_n_tensors(g); i++) {
        uint64_t e = gguf_get_tensor_offset(g, i) + gguf_get_tensor_size(g, i);
        if (e > end)
            end = e;
    }
    end += gguf_get_data_offset(g);
    if (end > out->file_size) {
        gguf_free(g);
        return pc_error_set(err, PC_ERR_MODEL_FORMAT,
                            "\"%s\" is cut short: its tensors end at byte %llu, the file has %llu",
                            path, (unsigned long long)end, (unsigned long long)out->file_size);
    }

    get_str(g, "general.architecture", out->arch, sizeof(out->arch));
    get_str(g, "general.name", out->name, sizeof(out->name));
    int64_t ft = gguf_find_key(g, "general.file_type");
    if (ft >= 0 && gguf_get_kv_type(g, ft) == GGUF_TYPE_UINT32) {
        const char *q = ftype_name(gguf_get_val_u32(g, ft));
        if (q != NULL)
            snprintf(out->quantization, sizeof(out->quantization), "%s", q);
    }
    out->context_length = get_u32(g, out->arch, "context_length");
    out->n_layer = get_u32(g, out->arch, "block_count");
    out->n_head = get_u32(g, out->arch, "attention.head_count");
    out->n_head_kv = get_u32(g, out->arch, "attention.head_count_kv");
    if (out->n_head_kv == 0)
        out->n_head_kv = out->n_head;
    out->n_embd = get_u32(g, out->arch, "embedding_length");
    out->n_ff = get_u32(g, out->arch, "feed_forward_length");
    out->pooling_type = get_u32(g, out->arch, "pooling_type");
    int64_t tok = gguf_find_key(g, "tokenizer.ggml.tokens");
    if (tok >= 0)
        out->n_vocab = (uint32_t)gguf_get_arr_n(g, tok);
    out->has_chat_template = gguf_find_key(g, "tokenizer.chat_template") >= 0;
    scan_tensors(g, out);
    pc_fmt_params(out->n_params, out->parameter_size, sizeof(out->parameter_size));
    enum pc_err rc = meta != NULL ? metadata_of(g, arrays, meta) : PC_OK;
    gguf_free(g);
    return rc == PC_OK ? PC_OK : pc_error_set(err, rc, "out of memory");
}

enum pc_err pc_gguf_inspect(const char *path, struct pc_gguf_info *out, struct pc_error *err)
{
    return pc_gguf_read(path, out, NULL, false, err);
}

/* A JSON number, or null for the NaN and infinities that JSON has no spelling for. */
static json_t *real_value(double d)
{
    json_t *v = json_real(d);
    return v != NULL ? v : json_null();
}

/* One number or boolean of GGUF type t at p, as JSON; null for a type JSON has no spelling for
 * (strings and arrays are read apart). *size gets its width in bytes (0 for those). */
static json_t *scalar_json(enum gguf_type t, const void *p, size_t *size)
{
    switch (t) {
    case GGUF_TYPE_UINT8:
        return *size = 1, json_integer(*(const uint8_t *)p);
    case GGUF_TYPE_INT8:
        return *size = 1, json_integer(*(const int8_t *)p);
    case GGUF_TYPE_UINT16:
        return *size = 2, json_integer(*(const uint16_t *)p);
    case GGUF_TYPE_INT16:
        return *size = 2, json_integer(*(const int16_t *)p);
    case GGUF_TYPE_UINT32:
        return *size = 4, json_integer(*(const uint32_t *)p);
    case GGUF_TYPE_INT32:
        return *size = 4, json_integer(*(const int32_t *)p);
    case GGUF_TYPE_UINT64:
        return *size = 8, json_integer((json_int_t) * (const uint64_t *)p);
    case GGUF_TYPE_INT64:
        return *size = 8, json_integer(*(const int64_t *)p);
    case GGUF_TYPE_FLOAT32:
        return *size = 4, real_value(*(const float *)p);
    case GGUF_TYPE_FLOAT64:
        return *size = 8, real_value(*(const double *)p);
    case GGUF_TYPE_BOOL:
        return *size = 1, json_boolean(*(const int8_t *)p != 0);
    default:
        return *size = 0, json_null();
    }
}

/* An array's elements as JSON (the vocabulary, merges, token types: Ollama's verbose show). A
 * string that is not UTF-8 is mended (U+FFFD), as a value's is. NULL when out of memory. */
static json_t *array_value(const struct gguf_context *g, int64_t id, struct pc_buf *b)
{
    enum gguf_type t = gguf_get_arr_type(g, id);
    size_t n = gguf_get_arr_n(g, id), off = 0, size = 0;
    const char *data =
        t == GGUF_TYPE_STRING || t == GGUF_TYPE_ARRAY ? NULL : gguf_get_arr_data(g, id);
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++) {
        json_t *v;
        if (t == GGUF_TYPE_STRING)
            v = valid_utf8(b, gguf_get_arr_str(g, id, i)) ? json_stringn(b->data, b->len) : NULL;
        else if (data == NULL)
            v = json_null(); /* an array of arrays, which GGUF readers do not take */
        else
            v = scalar_json(t, data + off, &size), off += size;
        if (v == NULL || json_array_append_new(a, v) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}

static json_t *kv_value(const struct gguf_context *g, int64_t id, bool arrays, struct pc_buf *b)
{
    size_t size;
    switch (gguf_get_kv_type(g, id)) {
    case GGUF_TYPE_STRING:
        return valid_utf8(b, gguf_get_val_str(g, id)) ? json_stringn(b->data, b->len) : NULL;
    case GGUF_TYPE_ARRAY: /* vocabularies of tens of thousands of entries: only when asked */
        return arrays ? array_value(g, id, b) : json_null();
    default:
        return scalar_json(gguf_get_kv_type(g, id), gguf_get_val_data(g, id), &size);
    }
}

static enum pc_err metadata_of(const struct gguf_context *g, bool arrays, json_t **out)
{
    json_t *o = json_object();
    struct pc_buf key = PC_BUF_INIT, text = PC_BUF_INIT;
    for (int64_t i = 0; o != NULL && i < gguf_get_n_kv(g); i++) {
        json_t *v = kv_value(g, i, arrays, &text);
        if (v == NULL || !valid_utf8(&key, gguf_get_key(g, i)) ||
            json_object_set_new(o, key.data, v) != 0) {
            json_decref(v);
            json_decref(o);
            o = NULL;
        }
    }
    pc_buf_free(&key);
    pc_buf_free(&text);
    *out = o;
    return o != NULL ? PC_OK : PC_ERR_NOMEM;
}

enum pc_err pc_gguf_metadata(const char *path, json_t **out, struct pc_error *err)
{
    struct pc_gguf_info info;
    return pc_gguf_read(path, &info, out, false, err);
}
