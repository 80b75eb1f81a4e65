/* ollama_opts.c - Ollama's load settings and option names, checked against the daemon's. */
#include "ollama_opts.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../catalog/hw.h"

/* Ollama's per-request options (num_ctx and the sampling ones, today's and its runners' older
 * ones): known names, which a route that does not use one refuses as not applying rather than
 * as unknown. */
static const char *const sampling_names[] = {
    "num_ctx",
    "num_keep",
    "seed",
    "num_predict",
    "top_k",
    "top_p",
    "min_p",
    "typical_p",
    "repeat_last_n",
    "temperature",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
    "stop",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
    "tfs_z",
    "penalize_newline",
};

static bool listed(const char *key, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(key, names[i]) == 0)
            return true;
    return false;
}

/* A number-valued load setting: the values that mean what the daemon does, and how to say it. */
static int number_setting(const char *key, json_t *v, double in_force, double also,
                          const char *what, struct pc_http_reply *reply)
{
    if (!json_is_number(v)) {
        pc_http_reply_error(reply, 400, "options.%s must be a number", key);
        return -1;
    }
    double d = json_number_value(v);
    if (d == in_force || d == also)
        return 0;
    pc_http_reply_error(reply, 400,
                        "options.%s is %g, but %s, for every request to a model, as this daemon's "
                        "configuration sets it when the model loads; leave it out or send %g",
                        key, d, what, in_force);
    return -1;
}

/* A boolean load setting (or an older runner's switch) that must be what the daemon does. */
static int bool_setting(const char *key, json_t *v, bool in_force, const char *what,
                        struct pc_http_reply *reply)
{
    if (!json_is_boolean(v)) {
        pc_http_reply_error(reply, 400, "options.%s must be true or false", key);
        return -1;
    }
    if (json_is_true(v) == in_force)
        return 0;
    pc_http_reply_error(reply, 400,
                        "options.%s is %s, but %s (this daemon's configuration, for every model); "
                        "leave it out or send %s",
                        key, in_force ? "false" : "true", what, in_force ? "true" : "false");
    return -1;
}

/* 1: key is a load setting and v passes; 0: not a load setting; -1: the 400 is in reply. */
static int load_setting(const char *key, json_t *v, const struct pc_model_params *p,
                        struct pc_http_reply *reply)
{
    char what[160];
    int rc;
    if (strcmp(key, "num_batch") == 0) {
        snprintf(what, sizeof(what), "prompts are prefilled %u tokens per decode", p->n_batch);
        rc = number_setting(key, v, p->n_batch, p->n_batch, what, reply);
    } else if (strcmp(key, "num_gpu") == 0) {
        /* Without a GPU every layer runs on the CPU whatever the setting: 0 says just that. */
        bool cpu_only = pc_hw_gpu_count() == 0;
        if (cpu_only)
            snprintf(what, sizeof(what), "there is no GPU here: every layer runs on the CPU");
        else if (p->n_gpu_layers < 0)
            snprintf(what, sizeof(what), "every layer that the GPUs hold is offloaded (-1)");
        else
            snprintf(what, sizeof(what), "%d layers are offloaded", p->n_gpu_layers);
        rc = number_setting(key, v, p->n_gpu_layers, cpu_only ? 0 : -1, what, reply);
    } else if (strcmp(key, "main_gpu") == 0) {
        rc = number_setting(key, v, 0, 0, "the first GPU holds the model's shared buffers", reply);
    } else if (strcmp(key, "num_thread") == 0) {
        /* One decode runs every request batched on a model, so its threads cannot be one
         * request's; 0 is Ollama's "decide for me". */
        if (p->n_threads > 0)
            snprintf(what, sizeof(what), "each decode uses %d threads (PRECHARGE_THREADS)",
                     p->n_threads);
        else
            snprintf(what, sizeof(what),
                     "each decode uses the CPUs that other processes leave idle "
                     "(PRECHARGE_THREADS=0)");
        rc = number_setting(key, v, p->n_threads, 0, what, reply);
    } else if (strcmp(key, "draft_num_predict") == 0) {
        rc = number_setting(key, v, 0, 0, "there is no draft model (no speculative decoding)",
                            reply);
    } else if (strcmp(key, "use_mmap") == 0) {
        rc = bool_setting(key, v, p->use_mmap,
                          p->use_mmap ? "model files are mapped" : "model files are read", reply);
    } else if (strcmp(key, "numa") == 0) {
        rc = bool_setting(key, v, false, "llama.cpp's NUMA placement is not used", reply);
    } else if (strcmp(key, "low_vram") == 0) {
        rc = bool_setting(key, v, false, "there is no low-VRAM mode", reply);
    } else if (strcmp(key, "use_mlock") == 0) {
        rc = bool_setting(key, v, false, "model memory is not locked", reply);
    } else if (strcmp(key, "f16_kv") == 0) {
        rc = bool_setting(
            key, v, p->kv_type == PC_KV_F16,
            p->kv_type == PC_KV_F16 ? "the KV cache is f16" : "the KV cache is not f16", reply);
    } else if (strcmp(key, "vocab_only") == 0 || strcmp(key, "logits_all") == 0 ||
               strcmp(key, "embedding_only") == 0) {
        rc = bool_setting(key, v, false, "models are loaded whole, for generation", reply);
    } else {
        return 0;
    }
    return rc == 0 ? 1 : -1;
}

int pc_ollama_options_check(json_t *opts, const struct pc_model_params *p, const char *const *read,
                            size_t n_read, const char *route, struct pc_http_reply *reply)
{
    const char *key;
    json_t *v;
    json_object_foreach(opts, key, v)
    {
        if (json_is_null(v) || listed(key, read, n_read))
            continue;
        int rc = load_setting(key, v, p, reply);
        if (rc < 0)
            return -1;
        if (rc > 0)
            continue;
        if (listed(key, sampling_names, sizeof(sampling_names) / sizeof(sampling_names[0])))
            pc_http_reply_error(reply, 400, "options.%s does not apply to %s; leave it out", key,
                                route);
        else
            pc_http_reply_error(reply, 400,
                                "options.%s is not an option (Ollama's: temperature, top_k, "
                                "top_p, min_p, num_predict, stop, seed, num_ctx, ...); it would "
                                "have no effect",
                                key);
        return -1;
    }
    return 0;
}
