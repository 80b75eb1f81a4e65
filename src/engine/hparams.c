/* hparams.c - the GGUF header values that llama.cpp v0.5.0 asserts on (GGML_ASSERT aborts the
 * whole process), refused before its loader sees them. Each rule cites the assert it stands
 * for; a llama.cpp upgrade re-reads those places (src/llama-model.cpp load_hparams,
 * src/llama-context.cpp, ggml-cpu/ops.cpp). */
#include "engineInt.h"

#include <stdio.h>
#include <string.h>

#include "gguf.h"

/* src/llama-hparams.h */
#define LLAMA_MAX_LAYERS 512
#define LLAMA_MAX_EXPERTS 1024

struct hp_ctx {
    const struct gguf_context *g;
    const char *arch;
    const char *path;
    char key[160]; /* the key of the last lookup */
};

static void hp_key(struct hp_ctx *c, const char *suffix)
{
    snprintf(c->key, sizeof(c->key), "%s.%s", c->arch, suffix);
}

/* <arch>.suffix as llama.cpp reads a uint32_t: present and of type UINT32, else absent (any
 * other type is llama.cpp's own clean "wrong type" error). */
static bool hp_u32(struct hp_ctx *c, const char *suffix, uint32_t *out)
{
    hp_key(c, suffix);
    int64_t id = gguf_find_key(c->g, c->key);
    if (id < 0 || gguf_get_kv_type(c->g, id) != GGUF_TYPE_UINT32)
        return false;
    *out = gguf_get_val_u32(c->g, id);
    return true;
}

/* A per-layer value that may be one number or an array (get_key_or_arr): its largest entry. */
static bool hp_u32_max(struct hp_ctx *c, const char *suffix, uint32_t *out)
{
    if (hp_u32(c, suffix, out))
        return true;
    int64_t id = gguf_find_key(c->g, c->key);
    if (id < 0 || gguf_get_kv_type(c->g, id) != GGUF_TYPE_ARRAY)
        return false;
    enum gguf_type t = gguf_get_arr_type(c->g, id);
    if (t != GGUF_TYPE_UINT32 && t != GGUF_TYPE_INT32)
        return false;
    const uint32_t *v = gguf_get_arr_data(c->g, id);
    *out = 0;
    for (size_t i = 0; i < gguf_get_arr_n(c->g, id); i++)
        if (v[i] > *out)
            *out = v[i];
    return true;
}

static enum pc_err hp_refuse(const struct hp_ctx *c, struct pc_error *err, const char *value,
                             const char *rule)
{
    return pc_error_set(err, PC_ERR_MODEL_FORMAT,
                        "\"%s\": header key %s is %s; llama.cpp needs %s, and would abort on it",
                        c->path, c->key, value, rule);
}

static enum pc_err hp_refuse_u32(const struct hp_ctx *c, struct pc_error *err, uint32_t v,
                                 const char *rule)
{
    char text[16];
    snprintf(text, sizeof(text), "%u", v);
    return hp_refuse(c, err, text, rule);
}

/* load_hparams: block counts. */
static enum pc_err check_layers(struct hp_ctx *c, uint32_t *n_layer, struct pc_error *err)
{
    static const char *const within[] = {"nextn_predict_layers", "posnet.block_count",
                                         "convnext.block_count"};
    if (!hp_u32(c, "block_count", n_layer))
        return PC_OK; /* required: llama.cpp says "key not found" itself */
    if (*n_layer == 0 || *n_layer > LLAMA_MAX_LAYERS)
        return hp_refuse_u32(c, err, *n_layer, "1 to 512 (LLAMA_MAX_LAYERS)");
    for (size_t i = 0; i < sizeof(within) / sizeof(within[0]); i++) {
        uint32_t v;
        if (hp_u32(c, within[i], &v) && v > *n_layer)
            return hp_refuse_u32(c, err, v, "at most block_count");
    }
    return PC_OK;
}

/* load_hparams: experts and expert groups (absent keys are 0, as llama.cpp reads them). */
static enum pc_err check_experts(struct hp_ctx *c, struct pc_error *err)
{
    uint32_t n_expert = 0, used = 0, groups = 0, group_used = 0;
    hp_u32(c, "expert_count", &n_expert);
    hp_u32_max(c, "expert_used_count", &used);
    hp_u32(c, "expert_group_count", &groups);
    hp_u32(c, "expert_group_used_count", &group_used);
    hp_key(c, "expert_count");
    if (n_expert > LLAMA_MAX_EXPERTS)
        return hp_refuse_u32(c, err, n_expert, "at most 1024 (LLAMA_MAX_EXPERTS)");
    hp_key(c, "expert_used_count");
    if (used > n_expert)
        return hp_refuse_u32(c, err, used, "at most expert_count");
    if (n_expert > 0 && used == 0)
        return hp_refuse_u32(c, err, used, "at least 1 when expert_count is set");
    hp_key(c, "expert_group_count");
    if (n_expert == 0 && groups != 0)
        return hp_refuse_u32(c, err, groups, "0 without experts");
    if (n_expert > 0 && groups >= n_expert)
        return hp_refuse_u32(c, err, groups, "fewer than expert_count");
    if (n_expert > 0 && groups > 1 && n_expert % groups != 0)
        return hp_refuse_u32(c, err, groups, "a divisor of expert_count");
    hp_key(c, "expert_group_used_count");
    if (n_expert > 0 && groups > 1 && (group_used == 0 || group_used >= groups))
        return hp_refuse_u32(c, err, group_used, "1 to expert_group_count - 1");
    return PC_OK;
}

/* load_hparams: llama_rope_scaling_type_from_string must know the name. */
static enum pc_err check_rope(struct hp_ctx *c, struct pc_error *err)
{
    static const char *const known[] = {"none", "linear", "yarn", "longrope"};
    hp_key(c, "rope.scaling.type");
    int64_t id = gguf_find_key(c->g, c->key);
    if (id < 0 || gguf_get_kv_type(c->g, id) != GGUF_TYPE_STRING)
        return PC_OK;
    const char *s = gguf_get_val_str(c->g, id);
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(s, known[i]) == 0)
            return PC_OK;
    char text[48];
    snprintf(text, sizeof(text), "\"%.32s\"", s);
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?'; /* the message is JSON and a log line: no control or partial UTF-8 */
    return hp_refuse(c, err, text, "none, linear, yarn or longrope");
}

/* ggml-cpu/ops.cpp: GGML_ASSERT(eps >= 0.0f) in every norm, at the first decode (NaN fails it
 * too). */
static enum pc_err check_eps(struct hp_ctx *c, struct pc_error *err)
{
    static const char *const eps[] = {"attention.layer_norm_epsilon",
                                      "attention.layer_norm_rms_epsilon",
                                      "attention.group_norm_epsilon"};
    for (size_t i = 0; i < sizeof(eps) / sizeof(eps[0]); i++) {
        hp_key(c, eps[i]);
        int64_t id = gguf_find_key(c->g, c->key);
        if (id < 0 || gguf_get_kv_type(c->g, id) != GGUF_TYPE_FLOAT32)
            continue;
        float v = gguf_get_val_f32(c->g, id);
        if (!(v >= 0.0f)) {
            char text[32];
            snprintf(text, sizeof(text), "%g", (double)v);
            return hp_refuse(c, err, text, "a number >= 0");
        }
    }
    return PC_OK;
}

/* llama-context.cpp: GGML_ASSERT(n_outputs_max <= cparams.n_outputs_max), where the first is at
 * least n_seq_max and the second at most n_ctx: a context smaller than its sequences. engine.c's
 * context_params never asks for fewer cells than sequences, but a trained context this small
 * holds no prompt and answer: refused as the damage it is. */
#define MIN_CONTEXT 8

static enum pc_err check_context(struct hp_ctx *c, struct pc_error *err)
{
    uint32_t n_ctx;
    if (hp_u32(c, "context_length", &n_ctx) && n_ctx < MIN_CONTEXT) {
        char rule[64];
        snprintf(rule, sizeof(rule), "at least %d (one cell per sequence)", MIN_CONTEXT);
        return hp_refuse_u32(c, err, n_ctx, rule);
    }
    return PC_OK;
}

enum pc_err pc_hparams_check(const struct gguf_context *g, const char *path, struct pc_error *err)
{
    struct hp_ctx c = {.g = g, .path = path};
    int64_t id = gguf_find_key(g, "general.architecture");
    if (id < 0 || gguf_get_kv_type(g, id) != GGUF_TYPE_STRING)
        return PC_OK; /* llama.cpp refuses it cleanly */
    c.arch = gguf_get_val_str(g, id);
    uint32_t n_layer = 0;
    enum pc_err rc = check_layers(&c, &n_layer, err);
    if (rc == PC_OK)
        rc = check_experts(&c, err);
    if (rc == PC_OK)
        rc = check_rope(&c, err);
    if (rc == PC_OK)
        rc = check_eps(&c, err);
    if (rc == PC_OK)
        rc = check_context(&c, err);
    return rc;
}
