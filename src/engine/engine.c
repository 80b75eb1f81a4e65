/* engine.c - llama.cpp set-up, its log, and loading models with their memory figures. */
#include "engineInt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/clock.h"
#include "../base/fmt.h"
#include "../base/log.h"

#ifndef PC_LLAMA_BACKEND_DIR
#define PC_LLAMA_BACKEND_DIR ""
#endif

static enum ggml_log_level llama_min_level = GGML_LOG_LEVEL_ERROR;
static int llama_silent;

/* What one load learns from llama.cpp's log: the buffer sizes it allocated, and its last error.
 * llama.cpp logs from the loading thread, so a thread-local pointer ties the two together. */
struct load_capture {
    double weights_mib;
    double kv_mib;
    double compute_mib;
    double device_mib;
    char last_error[256];
};

static _Thread_local struct load_capture *capture;
static _Thread_local enum ggml_log_level last_level;

static void capture_sizes(struct load_capture *c, const char *text)
{
    const char *eq = strstr(text, " buffer size = ");
    if (eq == NULL)
        return;
    double mib = strtod(eq + strlen(" buffer size = "), NULL);
    /* "load_tensors:   CPU_Mapped model buffer size =   636.18 MiB" */
    /* Host buffer types: CPU, CPU_Mapped, CPU_REPACK, and AMX (the repacked weights of CPUs
     * with Advanced Matrix Extensions). */
    bool on_host = strstr(text, "CPU") != NULL || strstr(text, "AMX") != NULL;
    if (strstr(text, " model buffer size") != NULL)
        c->weights_mib += mib;
    else if (strstr(text, " KV buffer size") != NULL)
        c->kv_mib += mib;
    else if (strstr(text, " compute buffer size") != NULL || strstr(text, " output buffer size"))
        c->compute_mib += mib;
    else
        return;
    if (!on_host)
        c->device_mib += mib;
}

static void on_llama_log(enum ggml_log_level level, const char *text, void *user)
{
    (void)user;
    if (level == GGML_LOG_LEVEL_CONT)
        level = last_level;
    else
        last_level = level;

    if (capture != NULL) {
        capture_sizes(capture, text);
        if (level == GGML_LOG_LEVEL_ERROR) {
            size_t n = strcspn(text, "\n");
            if (n >= sizeof(capture->last_error))
                n = sizeof(capture->last_error) - 1;
            memcpy(capture->last_error, text, n);
            capture->last_error[n] = '\0';
        }
    }
    if (llama_silent || level < llama_min_level)
        return;
    enum pc_log_level ours = level == GGML_LOG_LEVEL_ERROR  ? PC_LOG_ERROR
                             : level == GGML_LOG_LEVEL_WARN ? PC_LOG_WARN
                             : level == GGML_LOG_LEVEL_INFO ? PC_LOG_INFO
                                                            : PC_LOG_DEBUG;
    /* Asked for explicitly, so shown whatever our own threshold. */
    pc_log_write(ours, "llama", "%s", text);
}

void pc_engine_init(const char *backend_dir, const char *llama_level)
{
    static const struct {
        const char *name;
        enum ggml_log_level level;
    } levels[] = {{"debug", GGML_LOG_LEVEL_DEBUG},
                  {"info", GGML_LOG_LEVEL_INFO},
                  {"warn", GGML_LOG_LEVEL_WARN},
                  {"error", GGML_LOG_LEVEL_ERROR}};

    llama_silent = llama_level != NULL && strcmp(llama_level, "none") == 0;
    for (size_t i = 0; llama_level && i < sizeof(levels) / sizeof(levels[0]); i++)
        if (strcmp(llama_level, levels[i].name) == 0)
            llama_min_level = levels[i].level;

    llama_log_set(on_llama_log, NULL);
    const char *dir = backend_dir ? backend_dir : PC_LLAMA_BACKEND_DIR;
    if (dir[0] != '\0')
        ggml_backend_load_all_from_path(dir);
    else
        ggml_backend_load_all();
    llama_backend_init();
    if (ggml_backend_dev_count() == 0)
        pc_log_error("engine", "no llama.cpp backend could be loaded from \"%s\"", dir);
}

const char *pc_engine_version(void)
{
    return PC_LLAMA_VERSION;
}

struct pc_model_params pc_model_default_params(void)
{
    struct pc_model_params p = {
        .n_ctx = 4096,
        .n_parallel = 4,
        .n_batch = 512,
        .n_threads = 0,
        .n_gpu_layers = -1,
        .kv_type = PC_KV_F16,
        .use_mmap = true,
        .repack = true,
    };
    return p;
}

bool pc_kv_type_parse(const char *s, enum pc_kv_type *out)
{
    static const struct {
        const char *name;
        enum pc_kv_type type;
    } types[] = {
        {"f16", PC_KV_F16}, {"q8_0", PC_KV_Q8_0}, {"q4_0", PC_KV_Q4_0}, {"f32", PC_KV_F32}};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(s, types[i].name) == 0) {
            *out = types[i].type;
            return true;
        }
    }
    return false;
}

static enum ggml_type ggml_kv_type(enum pc_kv_type t)
{
    return t == PC_KV_Q8_0   ? GGML_TYPE_Q8_0
           : t == PC_KV_Q4_0 ? GGML_TYPE_Q4_0
           : t == PC_KV_F32  ? GGML_TYPE_F32
                             : GGML_TYPE_F16;
}

/* One place turns our parameters into llama.cpp's, for real loads and dry runs alike. */
static struct llama_model_params model_params(const struct pc_model_params *p)
{
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = p->n_gpu_layers;
    mp.load_mode = p->use_mmap ? LLAMA_LOAD_MODE_MMAP : LLAMA_LOAD_MODE_NONE;
    mp.use_extra_bufts = p->repack;
    return mp;
}

/* The window of one sequence: what was asked, capped at what the model was trained for. */
static uint32_t seq_window(const struct llama_model *model, const struct pc_model_params *p)
{
    uint32_t n_ctx_train = (uint32_t)llama_model_n_ctx_train(model);
    return p->n_ctx == 0 || p->n_ctx > n_ctx_train ? n_ctx_train : p->n_ctx;
}

static int32_t parallel_of(const struct pc_model_params *p)
{
    return p->n_parallel > 0 ? p->n_parallel : 1;
}

static struct llama_context_params context_params(const struct llama_model *model,
                                                  const struct pc_model_params *p)
{
    struct llama_context_params cp = llama_context_default_params();
    /* As Ollama's OLLAMA_NUM_PARALLEL: the cache holds a full window for each task that may be
     * active, so that n_parallel long conversations fit at once. */
    cp.n_ctx = seq_window(model, p) * (uint32_t)parallel_of(p);
    /* llama.cpp asserts n_seq_max <= n_batch <= n_ctx at the first decode (a --ctx 3 aborted). */
    if (cp.n_ctx < (uint32_t)(parallel_of(p) + PC_SPARE_SEQS))
        cp.n_ctx = (uint32_t)(parallel_of(p) + PC_SPARE_SEQS);
    cp.n_batch = p->n_batch;
    cp.n_ubatch = p->n_batch;
    /* Sequences are snapshots that share cells: one unified cache for them all. A task works
     * in its own sequence; the spare ones hold precharged prefixes to copy from. */
    cp.n_seq_max = (uint32_t)(parallel_of(p) + PC_SPARE_SEQS);
    cp.kv_unified = true;
    cp.n_threads = p->n_threads > 0 ? p->n_threads : pc_threads_available();
    cp.n_threads_batch = cp.n_threads;
    cp.type_k = ggml_kv_type(p->kv_type);
    cp.type_v = ggml_kv_type(p->kv_type);
    cp.no_perf = true;
    return cp;
}

enum pc_err pc_engine_dry_run(const char *path, const struct pc_model_params *params,
                              uint64_t *compute_host, uint64_t *compute_device,
                              struct pc_error *err)
{
    struct load_capture cap = {0};
    *compute_host = *compute_device = 0;
    struct llama_model_params mp = model_params(params);
    mp.no_alloc = true;
    mp.load_mode = LLAMA_LOAD_MODE_NONE; /* no_alloc maps nothing */
    capture = &cap;
    struct llama_model *model = llama_model_load_from_file(path, mp);
    struct llama_context *ctx =
        model ? llama_init_from_model(model, context_params(model, params)) : NULL;
    capture = NULL;
    if (ctx)
        llama_free(ctx);
    if (model)
        llama_model_free(model);
    if (ctx == NULL)
        return pc_error_set(err, PC_ERR_MODEL_LOAD, "\"%s\": llama.cpp could not plan a load: %s",
                            path, cap.last_error[0] ? cap.last_error : "unknown error");
    const double mib = 1024.0 * 1024.0;
    *compute_device = (uint64_t)(cap.device_mib * mib);
    *compute_host = (uint64_t)(cap.compute_mib * mib) - *compute_device;
    return PC_OK;
}

static void meta_str(const struct llama_model *model, const char *key, char *buf, size_t size)
{
    if (llama_model_meta_val_str(model, key, buf, size) < 0)
        buf[0] = '\0';
}

/* gguf.h reads only the header and tensor table: a cheap, clear check before llama.cpp
 * maps the file, so that a non-GGUF or truncated header is named as such. */
static enum pc_err check_gguf(const char *path, uint64_t *size, struct pc_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return pc_error_set(err, errno == ENOENT ? PC_ERR_NOT_FOUND : PC_ERR_IO,
                            "model file \"%s\": %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return pc_error_set(err, PC_ERR_MODEL_FORMAT, "model file \"%s\" is not a regular file",
                            path);
    *size = (uint64_t)st.st_size;

    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return pc_error_set(err, PC_ERR_IO, "model file \"%s\": %s", path, strerror(errno));
    char magic[4] = {0};
    size_t n = fread(magic, 1, 4, f);
    fclose(f);
    if (n != 4 || memcmp(magic, "GGUF", 4) != 0)
        return pc_error_set(err, PC_ERR_MODEL_FORMAT,
                            "\"%s\" is not a GGUF file (no GGUF magic at byte 0)", path);

    struct gguf_init_params gp = {.no_alloc = true, .ctx = NULL};
    int saved = llama_silent;
    llama_silent = 1;
    struct gguf_context *g = gguf_init_from_file(path, gp);
    llama_silent = saved;
    if (g == NULL)
        return pc_error_set(err, PC_ERR_MODEL_FORMAT,
                            "\"%s\" has a corrupt or truncated GGUF header", path);
    enum pc_err rc = pc_hparams_check(g, path, err);
    gguf_free(g);
    return rc;
}

enum pc_err pc_model_check(const char *path, struct pc_error *err)
{
    uint64_t size;
    return check_gguf(path, &size, err);
}

static void fill_info(struct pc_model *m, const struct pc_model_params *params,
                      const struct load_capture *c, uint64_t file_size)
{
    struct pc_model_info *info = &m->info;
    char ftype[64];

    meta_str(m->model, "general.architecture", info->arch, sizeof(info->arch));
    meta_str(m->model, "general.name", info->name, sizeof(info->name));
    snprintf(ftype, sizeof(ftype), "%s", llama_ftype_name(llama_model_ftype(m->model)));
    /* "MOSTLY_Q4_0" -> "Q4_0", as Ollama shows quantization levels. */
    const char *q = strncmp(ftype, "MOSTLY_", 7) == 0 ? ftype + 7 : ftype;
    snprintf(info->quantization, sizeof(info->quantization), "%.31s", q);
    info->n_params = llama_model_n_params(m->model);
    pc_fmt_params(info->n_params, info->parameter_size, sizeof(info->parameter_size));
    info->n_ctx = seq_window(m->model, params);
    info->n_ctx_train = (uint32_t)llama_model_n_ctx_train(m->model);
    info->file_size = file_size;
    info->has_chat_template = m->chat_template != NULL;
    info->n_vocab = (uint32_t)llama_vocab_n_tokens(m->vocab);
    enum llama_pooling_type pooling = llama_pooling_type(m->ctx);
    info->n_embd_pooled = pooling == LLAMA_POOLING_TYPE_MEAN || pooling == LLAMA_POOLING_TYPE_CLS ||
                                  pooling == LLAMA_POOLING_TYPE_LAST
                              ? (uint32_t)llama_model_n_embd(m->model)
                              : 0;

    const double mib = 1024.0 * 1024.0;
    info->weights_bytes =
        c->weights_mib > 0 ? (uint64_t)(c->weights_mib * mib) : llama_model_size(m->model);
    if (c->kv_mib > 0) {
        info->kv_bytes = (uint64_t)(c->kv_mib * mib);
    } else {
        /* K and V, F16, for every layer and every cell. */
        uint64_t n_embd_kv = (uint64_t)llama_model_n_embd(m->model) /
                             (uint64_t)llama_model_n_head(m->model) *
                             (uint64_t)llama_model_n_head_kv(m->model);
        info->kv_bytes =
            2ull * 2ull * n_embd_kv * llama_n_ctx(m->ctx) * (uint64_t)llama_model_n_layer(m->model);
    }
    info->compute_bytes = (uint64_t)(c->compute_mib * mib);
    info->device_bytes = (uint64_t)(c->device_mib * mib);
}

enum pc_err pc_model_load(const char *path, const struct pc_model_params *params,
                          struct pc_model **out, struct pc_error *err)
{
    struct load_capture cap = {0};
    uint64_t file_size = 0;
    enum pc_err rc;

    *out = NULL;
    rc = check_gguf(path, &file_size, err);
    if (rc != PC_OK)
        return rc;

    struct pc_model *m = calloc(1, sizeof(*m));
    if (m == NULL || (m->path = strdup(path)) == NULL) {
        free(m);
        return pc_error_set(err, PC_ERR_NOMEM, "loading \"%s\": out of memory", path);
    }
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    m->n_parallel = parallel_of(params);
    m->n_threads = params->n_threads > 0 ? params->n_threads : 0;

    int64_t t0 = pc_clock_mono_ns();
    capture = &cap;

    m->model = llama_model_load_from_file(path, model_params(params));
    if (m->model == NULL) {
        rc = pc_error_set(err, PC_ERR_MODEL_LOAD, "\"%s\" could not be loaded: %s", path,
                          cap.last_error[0] ? cap.last_error : "corrupt or truncated tensor data");
        goto fail;
    }
    m->vocab = llama_model_get_vocab(m->model);

    struct llama_context_params cp = context_params(m->model, params);
    m->ctx = llama_init_from_model(m->model, cp);
    if (m->ctx == NULL) {
        rc = pc_error_set(err, PC_ERR_CONTEXT, "\"%s\": no context of %u tokens: %s", path,
                          cp.n_ctx, cap.last_error[0] ? cap.last_error : "out of memory?");
        goto fail;
    }
    m->n_batch = (int32_t)llama_n_batch(m->ctx);
    if (!pc_seqs_init(m, (int)llama_n_seq_max(m->ctx))) {
        rc = pc_error_set(err, PC_ERR_NOMEM, "loading \"%s\": out of memory", path);
        goto fail;
    }

    const char *tmpl = llama_model_chat_template(m->model, NULL);
    if (tmpl != NULL && (m->chat_template = strdup(tmpl)) == NULL) {
        rc = pc_error_set(err, PC_ERR_NOMEM, "loading \"%s\": out of memory", path);
        goto fail;
    }
    if ((rc = pc_chat_tmpl_new(m->model, &m->chat, err)) != PC_OK)
        goto fail;
    capture = NULL;
    fill_info(m, params, &cap, file_size);
    m->info.load_ns = pc_clock_mono_ns() - t0;
    rc = pc_loop_start(m, err);
    if (rc != PC_OK)
        goto fail;
    *out = m;
    return PC_OK;

fail:
    capture = NULL;
    pc_model_free(m);
    return rc;
}

void pc_model_free(struct pc_model *m)
{
    if (m == NULL)
        return;
    pc_loop_stop(m);
    if (m->ctx)
        llama_free(m->ctx);
    if (m->model)
        llama_model_free(m->model);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->lock);
    pc_seqs_free(m);
    pc_chat_tmpl_free(m->chat);
    free(m->chat_template);
    free(m->path);
    free(m);
}

const struct pc_model_info *pc_model_info(const struct pc_model *m)
{
    return &m->info;
}

const char *pc_model_path(const struct pc_model *m)
{
    return m->path;
}

void pc_model_set_identity(struct pc_model *m, const char *id)
{
    snprintf(m->identity, sizeof(m->identity), "%s", id);
}

const char *pc_model_identity(const struct pc_model *m)
{
    return m->identity;
}

uint64_t pc_model_memory(const struct pc_model *m)
{
    return m->info.weights_bytes + m->info.kv_bytes + m->info.compute_bytes;
}
