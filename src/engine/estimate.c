/* estimate.c - what a model will cost before it is loaded: weights (with the CPU's repacked
 * copy), KV cache and compute buffers, on the host and on devices.
 *
 * Each part comes from the place that knows it best: the tensor table for the weights, ggml's
 * own CPU buffer types for the repacked copy, llama.cpp's cache layout for the KV cache, and a
 * dry run of llama.cpp itself (no_alloc: it plans every buffer and allocates none) for the
 * compute buffers, which depend on the graph. */
#include "engineInt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-backend.h"

typedef ggml_backend_buffer_type_t *(*get_extra_bufts_fn)(ggml_backend_dev_t dev);

/* The CPU's extra buffer types (the repacking ones), NULL-terminated; NULL if none. */
static ggml_backend_buffer_type_t *cpu_extra_bufts(ggml_backend_dev_t *cpu)
{
    *cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (*cpu == NULL)
        return NULL;
    ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(*cpu);
    get_extra_bufts_fn fn = (get_extra_bufts_fn)ggml_backend_reg_get_proc_address(
        reg, "ggml_backend_dev_get_extra_bufts");
    return fn ? fn(*cpu) : NULL;
}

/* The bytes a weight takes in a repacking buffer type, or 0 when none of them takes it. This
 * asks ggml the question llama.cpp's loader asks: does the CPU run this tensor's MUL_MAT from
 * that buffer type? */
static uint64_t repacked_size(ggml_backend_dev_t cpu, ggml_backend_buffer_type_t *bufts,
                              enum ggml_type type, const int64_t ne[4])
{
    struct ggml_init_params ip = {.mem_size = ggml_tensor_overhead() * 8, .no_alloc = true};
    struct ggml_context *ctx = ggml_init(ip);
    if (ctx == NULL)
        return 0;
    struct ggml_tensor *w = ggml_new_tensor_4d(ctx, type, ne[0], ne[1], ne[2], ne[3]);
    struct ggml_tensor *b = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, ne[0], 512, ne[2], ne[3]);
    struct ggml_tensor *op = ggml_mul_mat(ctx, w, b);
    uint64_t size = 0;
    for (ggml_backend_buffer_type_t *bt = bufts; bt && *bt && size == 0; bt++) {
        ggml_backend_buffer_t dummy = ggml_backend_buft_alloc_buffer(*bt, 0);
        w->buffer = dummy;
        if (ggml_backend_dev_supports_op(cpu, op))
            size = ggml_backend_buft_get_alloc_size(*bt, w);
        w->buffer = NULL;
        ggml_backend_buffer_free(dummy);
    }
    ggml_free(ctx);
    return size;
}

/* The layer a tensor belongs to ("blk.12.attn_q.weight" -> 12), or -1. */
static int tensor_layer(const char *name)
{
    if (strncmp(name, "blk.", 4) != 0)
        return -1;
    return atoi(name + 4);
}

static bool has_gpu(void)
{
    for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
        enum ggml_backend_dev_type t = ggml_backend_dev_type(ggml_backend_dev_get(i));
        if (t == GGML_BACKEND_DEVICE_TYPE_GPU || t == GGML_BACKEND_DEVICE_TYPE_IGPU)
            return true;
    }
    return false;
}

static uint32_t kv_u32(const struct gguf_context *g, const char *arch, const char *suffix,
                       uint32_t fallback)
{
    char key[128];
    snprintf(key, sizeof(key), "%s.%s", arch, suffix);
    int64_t id = gguf_find_key(g, key);
    if (id < 0)
        return fallback;
    enum gguf_type t = gguf_get_kv_type(g, id);
    if (t == GGUF_TYPE_UINT32)
        return gguf_get_val_u32(g, id);
    if (t == GGUF_TYPE_INT32)
        return (uint32_t)gguf_get_val_i32(g, id);
    if (t == GGUF_TYPE_ARRAY && gguf_get_arr_n(g, id) > 0 &&
        (gguf_get_arr_type(g, id) == GGUF_TYPE_UINT32 ||
         gguf_get_arr_type(g, id) == GGUF_TYPE_INT32))
        return ((const uint32_t *)gguf_get_arr_data(g, id))[0];
    return fallback;
}

static enum ggml_type kv_ggml_type(enum pc_kv_type t)
{
    switch (t) {
    case PC_KV_Q8_0:
        return GGML_TYPE_Q8_0;
    case PC_KV_Q4_0:
        return GGML_TYPE_Q4_0;
    case PC_KV_F32:
        return GGML_TYPE_F32;
    case PC_KV_F16:
        break;
    }
    return GGML_TYPE_F16;
}

/* Weights, from the tensor table: each tensor on the host or on a device by its layer, and
 * the host's repacked copies on top. */
static void estimate_weights(const struct gguf_context *g, struct ggml_context *meta,
                             uint32_t n_layer, int32_t gpu_layers, bool repack,
                             struct pc_estimate *est)
{
    ggml_backend_dev_t cpu = NULL;
    ggml_backend_buffer_type_t *bufts = repack ? cpu_extra_bufts(&cpu) : NULL;
    if (gpu_layers < 0 || gpu_layers > (int32_t)n_layer + 1)
        gpu_layers = (int32_t)n_layer + 1;
    if (!has_gpu())
        gpu_layers = 0;
    int64_t first_gpu_layer = (int64_t)n_layer - gpu_layers;
    bool output_on_gpu = gpu_layers > (int32_t)n_layer;

    for (int64_t i = 0; i < gguf_get_n_tensors(g); i++) {
        const char *name = gguf_get_tensor_name(g, i);
        uint64_t size = gguf_get_tensor_size(g, i);
        int layer = tensor_layer(name);
        bool on_gpu = layer >= 0 ? layer >= first_gpu_layer
                                 : output_on_gpu && strncmp(name, "token_embd", 10) != 0;
        if (on_gpu) {
            est->weights_device += size;
            continue;
        }
        est->weights_host += size;
        /* The embedding table is read by row (GET_ROWS), and vectors are not multiplied. */
        struct ggml_tensor *t = ggml_get_tensor(meta, name);
        if (bufts == NULL || t == NULL || strncmp(name, "token_embd", 10) == 0 || t->ne[1] <= 1)
            continue;
        est->repack_bytes += repacked_size(cpu, bufts, t->type, t->ne);
    }
    est->weights_host += est->repack_bytes;
}

/* K and V for every layer and cell, as llama.cpp lays its cache out (cells padded to 256). */
static void estimate_kv(const struct gguf_context *g, const char *arch, uint32_t n_ctx,
                        int32_t gpu_layers, enum pc_kv_type kv_type, struct pc_estimate *est)
{
    uint32_t n_layer = kv_u32(g, arch, "block_count", 0);
    uint32_t n_head = kv_u32(g, arch, "attention.head_count", 1);
    uint32_t n_head_kv = kv_u32(g, arch, "attention.head_count_kv", n_head);
    uint32_t n_embd = kv_u32(g, arch, "embedding_length", 0);
    uint32_t head_k = kv_u32(g, arch, "attention.key_length", n_head ? n_embd / n_head : 0);
    uint32_t head_v = kv_u32(g, arch, "attention.value_length", head_k);
    uint64_t cells = ((uint64_t)n_ctx + 255) / 256 * 256;
    enum ggml_type t = kv_ggml_type(kv_type);
    uint64_t per_layer = (uint64_t)ggml_row_size(t, (int64_t)head_k * n_head_kv) * cells +
                         (uint64_t)ggml_row_size(t, (int64_t)head_v * n_head_kv) * cells;
    uint32_t dev_layers = 0;
    if (has_gpu() && gpu_layers != 0)
        dev_layers =
            gpu_layers < 0 || (uint32_t)gpu_layers > n_layer ? n_layer : (uint32_t)gpu_layers;
    est->kv_device = per_layer * dev_layers;
    est->kv_host = per_layer * (n_layer - dev_layers);
}

enum pc_err pc_model_estimate(const char *path, const struct pc_model_params *params,
                              struct pc_estimate *out, struct pc_error *err)
{
    memset(out, 0, sizeof(*out));
    struct ggml_context *meta = NULL;
    struct gguf_init_params gp = {.no_alloc = true, .ctx = &meta};
    struct gguf_context *g = gguf_init_from_file(path, gp);
    if (g == NULL)
        return pc_error_set(err, PC_ERR_MODEL_FORMAT,
                            "\"%s\" is not a GGUF file, or its header is corrupt or cut short",
                            path);
    /* The dry run below is llama.cpp's loader: what it would abort on stops here. */
    enum pc_err rc = pc_hparams_check(g, path, err);
    if (rc != PC_OK) {
        gguf_free(g);
        ggml_free(meta);
        return rc;
    }
    char arch[32] = "";
    int64_t id = gguf_find_key(g, "general.architecture");
    if (id >= 0)
        snprintf(arch, sizeof(arch), "%s", gguf_get_val_str(g, id));
    uint32_t n_ctx_train = kv_u32(g, arch, "context_length", 0);
    uint32_t n_ctx = params->n_ctx == 0 || (n_ctx_train && params->n_ctx > n_ctx_train)
                         ? n_ctx_train
                         : params->n_ctx;
    estimate_weights(g, meta, kv_u32(g, arch, "block_count", 0), params->n_gpu_layers,
                     params->repack, out);
    /* The cache holds a window for each task that may be active (engine.c: context_params). */
    uint32_t n_par = params->n_parallel > 0 ? (uint32_t)params->n_parallel : 1;
    estimate_kv(g, arch, n_ctx * n_par, params->n_gpu_layers, params->kv_type, out);
    gguf_free(g);
    ggml_free(meta);

    rc = pc_engine_dry_run(path, params, &out->compute_host, &out->compute_device, err);
    if (rc != PC_OK)
        return rc;
    out->host_total = out->weights_host + out->kv_host + out->compute_host;
    out->device_total = out->weights_device + out->kv_device + out->compute_device;
    return PC_OK;
}
