// mkmodel: writes synthetic GGUF models (random weights) that llama.cpp can load and run.

#ifndef _GNU_SOURCE
#define _GNU_SOURCE // getopt_long, strcasestr, fsync, fdopen, strdup
#endif

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ggml.h"
#include "ggufset.h"
#include "gguf.h"

#ifndef MKMODEL_VOCAB_DIR
#define MKMODEL_VOCAB_DIR "deps/llama/vocab"
#endif
#ifndef MKMODEL_TEMPLATE_DIR
#define MKMODEL_TEMPLATE_DIR "deps/llama/templates"
#endif
#define MAX_TEMPLATE_BYTES (1 << 20)

#define MAX_THREADS 256
#define CHUNK_ELEMS ((int64_t)1 << 20) // floats generated per task (4 MiB of scratch)
#define WEIGHT_STD 0.02f
#define UNSET (-1)

// Chat templates copied verbatim from the upstream models' tokenizer_config.json.
static const char TINYLLAMA_TEMPLATE[] =
    "{% for message in messages %}\n"
    "{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n"
    "{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n"
    "{{ '<|assistant|>' }}\n"
    "{% endif %}\n"
    "{% endfor %}";

static const char QWEN25_TEMPLATE[] =
    "{%- if tools %}\n"
    "    {{- '<|im_start|>system\\n' }}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- messages[0]['content'] }}\n"
    "    {%- else %}\n"
    "        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n"
    "    {%- endif %}\n"
    "    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user "
    "query.\\n\\nYou are provided with function signatures within <tools></tools> XML "
    "tags:\\n<tools>\" }}\n"
    "    {%- for tool in tools %}\n"
    "        {{- \"\\n\" }}\n"
    "        {{- tool | tojson }}\n"
    "    {%- endfor %}\n"
    "    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function "
    "name and arguments within <tool_call></tool_call> XML "
    "tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": "
    "<args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n"
    "{%- else %}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "    {%- else %}\n"
    "        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a "
    "helpful assistant.<|im_end|>\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not "
    "loop.first) or (message.role == \"assistant\" and not message.tool_calls) %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + "
    "'\\n' }}\n"
    "    {%- elif message.role == \"assistant\" %}\n"
    "        {{- '<|im_start|>' + message.role }}\n"
    "        {%- if message.content %}\n"
    "            {{- '\\n' + message.content }}\n"
    "        {%- endif %}\n"
    "        {%- for tool_call in message.tool_calls %}\n"
    "            {%- if tool_call.function is defined %}\n"
    "                {%- set tool_call = tool_call.function %}\n"
    "            {%- endif %}\n"
    "            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n"
    "            {{- tool_call.name }}\n"
    "            {{- '\", \"arguments\": ' }}\n"
    "            {{- tool_call.arguments | tojson }}\n"
    "            {{- '}\\n</tool_call>' }}\n"
    "        {%- endfor %}\n"
    "        {{- '<|im_end|>\\n' }}\n"
    "    {%- elif message.role == \"tool\" %}\n"
    "        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n"
    "            {{- '<|im_start|>user' }}\n"
    "        {%- endif %}\n"
    "        {{- '\\n<tool_response>\\n' }}\n"
    "        {{- message.content }}\n"
    "        {{- '\\n</tool_response>' }}\n"
    "        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n"
    "            {{- '<|im_end|>\\n' }}\n"
    "        {%- endif %}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}";

enum arch_id { ARCH_LLAMA, ARCH_QWEN2, ARCH_COUNT };

struct arch_info {
    const char *name;
    const char *vocab_file; // default vocabulary, looked up in the vocab directories
    float rms_eps;
    float rope_base;
    bool tied_output; // no output.weight: llama.cpp reuses token_embd.weight for the logits
    bool qkv_bias;
};

static const struct arch_info ARCHS[ARCH_COUNT] = {
    [ARCH_LLAMA] = {"llama", "ggml-vocab-llama-spm.gguf", 1e-5f, 10000.0f, false, false},
    [ARCH_QWEN2] = {"qwen2", "ggml-vocab-qwen2.gguf", 1e-6f, 1000000.0f, true, true},
};

enum wtype_id { WTYPE_F16, WTYPE_Q8_0, WTYPE_Q4_0, WTYPE_COUNT };

struct wtype_info {
    const char *name;
    enum ggml_type type;
    uint32_t ftype; // enum llama_ftype, stored as general.file_type
};

static const struct wtype_info WTYPES[WTYPE_COUNT] = {
    [WTYPE_F16] = {"f16", GGML_TYPE_F16, 1},
    [WTYPE_Q8_0] = {"q8_0", GGML_TYPE_Q8_0, 7},
    [WTYPE_Q4_0] = {"q4_0", GGML_TYPE_Q4_0, 2},
};

struct shape {
    int64_t arch;  // enum arch_id
    int64_t wtype; // enum wtype_id
    int64_t n_embd;
    int64_t n_layer;
    int64_t n_head;
    int64_t n_head_kv;
    int64_t n_ff;
    int64_t n_ctx;
};

struct preset {
    const char *name;
    struct shape shape;
};

static const struct preset PRESETS[] = {
    {"tiny", {ARCH_LLAMA, WTYPE_Q8_0, 64, 2, 4, 2, 128, 2048}},
    {"tinyllama", {ARCH_LLAMA, WTYPE_Q4_0, 2048, 22, 32, 4, 5632, 4096}},
    {"qwen3b", {ARCH_QWEN2, WTYPE_Q4_0, 2048, 36, 16, 2, 11008, 32768}},
};

#define N_PRESETS ((int)(sizeof(PRESETS) / sizeof(PRESETS[0])))

struct options {
    const struct preset *preset;
    struct shape shape;
    const char *vocab;
    const char *tmpl; // --template: a .jinja file or a name in the template directories
    const char *name;
    const char *out;
    uint64_t seed;
    int threads;
    int pooling; // <arch>.pooling_type (llama_pooling_type); -1: not written (a generation model)
    bool quiet;
    bool fim;             // --fim: add fill-in-the-middle tokens to the vocabulary
    const char *sets[16]; // --set KEY=TYPE:VALUE, applied last
    int n_sets;
};

static const char *const POOLINGS[] = {"none", "mean", "cls", "last"}; // llama_pooling_type's order

enum parse_result { PARSE_OK, PARSE_HELP, PARSE_USAGE };

enum fill { FILL_RANDOM, FILL_ONES };

struct tensor_spec {
    char name[GGML_MAX_NAME];
    int64_t ne0; // elements per row
    int64_t ne1; // rows
    enum ggml_type type;
    enum fill fill;
    uint64_t key; // RNG key derived from --seed and the tensor name
};

struct plan {
    struct tensor_spec *t;
    int n;
    int cap;
    int64_t n_params;
};

// One slice of rows of one tensor, generated and quantized by one thread.
struct task {
    const struct tensor_spec *t;
    int64_t row0;
    int64_t nrows;
    float *scratch;
    uint8_t *dst;
};

struct pool {
    int n_threads;
    size_t task_elems; // scratch floats per task
    float *scratch;    // n_threads * task_elems
    uint8_t *buf;      // quantized output of one batch of n_threads tasks
    struct task *tasks;
    pthread_t *tids;
};

struct out {
    FILE *f;
    const char *path;
    uint64_t pos;
};

__attribute__((format(printf, 2, 3))) static int fail(const char *what, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "mkmodel: %s: ", what);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return -1;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mkmodel --preset NAME -o FILE [options]\n"
            "       mkmodel --arch A --n-embd N --n-layer N --n-head N --n-ff N -o FILE [options]\n"
            "\n"
            "Writes a synthetic GGUF model with seeded random weights (not a trained model)\n"
            "that llama.cpp can load and run. Explicit flags override the preset.\n"
            "\n"
            "presets:\n"
            "  tiny        llama, n_embd 64, 2 layers, 4/2 heads, ffn 128, ctx 2048, q8_0\n"
            "  tinyllama   llama, n_embd 2048, 22 layers, 32/4 heads, ffn 5632, ctx 4096, q4_0\n"
            "  qwen3b      qwen2, n_embd 2048, 36 layers, 16/2 heads, ffn 11008, ctx 32768, q4_0\n"
            "\n"
            "options:\n"
            "  --preset NAME     tiny | tinyllama | qwen3b\n"
            "  --arch A          llama | qwen2\n"
            "  --n-embd N        embedding width\n"
            "  --n-layer N       number of blocks\n"
            "  --n-head N        attention heads\n"
            "  --n-head-kv N     KV heads (default: n-head)\n"
            "  --n-ff N          feed-forward width\n"
            "  --n-ctx N         training context length (default: preset's, else 2048)\n"
            "  --type T          f16 | q8_0 | q4_0 (default: preset's, else q8_0); with q4_0\n"
            "                    the logits tensor is q6_K, as llama-quantize does\n"
            "  --vocab FILE      ggml-vocab-*.gguf to copy tokenizer.* from (default: per arch,\n"
            "                    from $PRECHARGE_VOCAB_DIR, then " MKMODEL_VOCAB_DIR ")\n"
            "  --template T      chat template: a .jinja file, or the name of one of llama.cpp's\n"
            "                    models/templates (e.g. Qwen-Qwen3-0.6B, found in\n"
            "                    $PRECHARGE_TEMPLATE_DIR or " MKMODEL_TEMPLATE_DIR ");\n"
            "                    default: Qwen 2.5's for ChatML vocabularies, else TinyLlama's\n"
            "  --seed N          RNG seed (default 42)\n"
            "  --name STR        general.name (\" (random weights)\" is appended if missing)\n"
            "  --pooling P       none | mean | cls | last: write <arch>.pooling_type, which makes\n"
            "                    an embedding model (default: not written, a generation model)\n"
            "  --fim             add fill-in-the-middle control tokens (<|fim_prefix|>,\n"
            "                    <|fim_suffix|>, <|fim_middle|>) to the vocabulary and name them\n"
            "                    in tokenizer.ggml.fim_*_token_id, as code models have\n"
            "  --threads N       worker threads (default: online CPUs)\n"
            "  --set KEY=TYPE:VALUE  set a header key last, whatever it breaks (tests of bad\n"
            "                    headers); TYPE: u8 i8 u16 i16 u32 i32 u64 i64 f32 f64 bool str;\n"
            "                    up to 16 times\n"
            "  -o, --output FILE output path (written atomically)\n"
            "  -q, --quiet       no summary line\n"
            "  -h, --help        this help\n");
}

static int usage_hint(void)
{
    fputs("usage: mkmodel --preset NAME -o FILE [options] (see --help)\n", stderr);
    return PARSE_USAGE;
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("mkmodel: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return usage_hint();
}

static int parse_i64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end = NULL;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "mkmodel: invalid value for %s: '%s' (expected %" PRId64 "..%" PRId64 ")\n",
                opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_u64(const char *opt, const char *s, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-') {
        fprintf(stderr, "mkmodel: invalid value for %s: '%s'\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int64_t find_arch(const char *s)
{
    for (int i = 0; i < ARCH_COUNT; i++) {
        if (strcmp(s, ARCHS[i].name) == 0) {
            return i;
        }
    }
    return UNSET;
}

static int64_t find_wtype(const char *s)
{
    for (int i = 0; i < WTYPE_COUNT; i++) {
        if (strcmp(s, WTYPES[i].name) == 0) {
            return i;
        }
    }
    return UNSET;
}

static const struct preset *find_preset(const char *s)
{
    for (int i = 0; i < N_PRESETS; i++) {
        if (strcmp(s, PRESETS[i].name) == 0) {
            return &PRESETS[i];
        }
    }
    return NULL;
}

// One option a line.
// clang-format off
static const struct option LONG_OPTS[] = {
    {"preset", required_argument, NULL, 'P'},
    {"arch", required_argument, NULL, 'A'},
    {"n-embd", required_argument, NULL, 'E'},
    {"n-layer", required_argument, NULL, 'L'},
    {"n-head", required_argument, NULL, 'H'},
    {"n-head-kv", required_argument, NULL, 'K'},
    {"n-ff", required_argument, NULL, 'F'},
    {"n-ctx", required_argument, NULL, 'C'},
    {"type", required_argument, NULL, 'T'},
    {"vocab", required_argument, NULL, 'V'},
    {"template", required_argument, NULL, 't'},
    {"seed", required_argument, NULL, 'S'},
    {"name", required_argument, NULL, 'N'},
    {"pooling", required_argument, NULL, 'p'},
    {"threads", required_argument, NULL, 'j'},
    {"set", required_argument, NULL, 'X'},
    {"output", required_argument, NULL, 'o'},
    {"quiet", no_argument, NULL, 'q'},
    {"fim", no_argument, NULL, 'F'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};
// clang-format on

// Stores one shape flag (arch, type or a size); returns -1 on a bad value.
static int parse_shape_flag(int c, const char *arg, struct shape *s)
{
    switch (c) {
    case 'A':
        s->arch = find_arch(arg);
        if (s->arch == UNSET) {
            fprintf(stderr, "mkmodel: unknown arch '%s' (llama, qwen2)\n", arg);
            return -1;
        }
        return 0;
    case 'T':
        s->wtype = find_wtype(arg);
        if (s->wtype == UNSET) {
            fprintf(stderr, "mkmodel: unknown type '%s' (f16, q8_0, q4_0)\n", arg);
            return -1;
        }
        return 0;
    case 'E':
        return parse_i64("--n-embd", arg, 1, 1 << 16, &s->n_embd);
    case 'L':
        return parse_i64("--n-layer", arg, 1, 512, &s->n_layer);
    case 'H':
        return parse_i64("--n-head", arg, 1, 1 << 12, &s->n_head);
    case 'K':
        return parse_i64("--n-head-kv", arg, 1, 1 << 12, &s->n_head_kv);
    case 'F':
        return parse_i64("--n-ff", arg, 1, 1 << 20, &s->n_ff);
    case 'C':
        return parse_i64("--n-ctx", arg, 1, 1 << 24, &s->n_ctx);
    default:
        return -1;
    }
}

static void override(int64_t *field, int64_t flag)
{
    if (flag != UNSET) {
        *field = flag;
    }
}

// Applies explicit flags over the preset, fills defaults and checks the shape is loadable.
static int resolve_shape(struct options *o, const struct shape *flags)
{
    struct shape s = {UNSET, WTYPE_Q8_0, UNSET, UNSET, UNSET, UNSET, UNSET, 2048};
    enum ggml_type wt;

    if (o->preset) {
        s = o->preset->shape;
    }
    override(&s.arch, flags->arch);
    override(&s.wtype, flags->wtype);
    override(&s.n_embd, flags->n_embd);
    override(&s.n_layer, flags->n_layer);
    override(&s.n_head, flags->n_head);
    override(&s.n_head_kv, flags->n_head_kv);
    override(&s.n_ff, flags->n_ff);
    override(&s.n_ctx, flags->n_ctx);
    if (s.n_head_kv == UNSET) {
        s.n_head_kv = s.n_head;
    }
    if (s.arch == UNSET || s.n_embd == UNSET || s.n_layer == UNSET || s.n_head == UNSET ||
        s.n_ff == UNSET) {
        return usage_error("without --preset, --arch, --n-embd, --n-layer, --n-head and --n-ff "
                           "are required");
    }
    if (s.n_embd % s.n_head != 0 || (s.n_embd / s.n_head) % 2 != 0) {
        return usage_error("invalid shape: n_embd must be n_head times an even head size");
    }
    if (s.n_head_kv > s.n_head || s.n_head % s.n_head_kv != 0) {
        return usage_error("invalid shape: n_head must be a multiple of n_head_kv");
    }
    wt = WTYPES[s.wtype].type;
    if (s.n_embd % ggml_blck_size(wt) != 0 || s.n_ff % ggml_blck_size(wt) != 0) {
        return usage_error("invalid shape: n_embd and n_ff must be multiples of %" PRId64 " for %s",
                           ggml_blck_size(wt), WTYPES[s.wtype].name);
    }
    o->shape = s;
    return PARSE_OK;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    struct shape flags = {UNSET, UNSET, UNSET, UNSET, UNSET, UNSET, UNSET, UNSET};
    int64_t threads = sysconf(_SC_NPROCESSORS_ONLN);
    int c;

    memset(o, 0, sizeof(*o));
    o->seed = 42;
    o->pooling = -1;
    o->threads = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : (int)threads;
    while ((c = getopt_long(argc, argv, "o:qh", LONG_OPTS, NULL)) != -1) {
        switch (c) {
        case 'F':
            o->fim = true;
            break;
        case 'P':
            o->preset = find_preset(optarg);
            if (!o->preset) {
                return usage_error("unknown preset '%s'", optarg);
            }
            break;
        case 'V':
            o->vocab = optarg;
            break;
        case 't':
            o->tmpl = optarg;
            break;
        case 'N':
            if (strlen(optarg) > 200) {
                return usage_error("--name is longer than 200 characters");
            }
            o->name = optarg;
            break;
        case 'p':
            for (int i = 0; i < (int)(sizeof(POOLINGS) / sizeof(POOLINGS[0])); i++) {
                if (strcmp(optarg, POOLINGS[i]) == 0) {
                    o->pooling = i;
                }
            }
            if (o->pooling < 0) {
                return usage_error("unknown pooling '%s' (none, mean, cls, last)", optarg);
            }
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'X':
            if (o->n_sets == (int)(sizeof(o->sets) / sizeof(o->sets[0]))) {
                return usage_error("more than 16 --set");
            }
            o->sets[o->n_sets++] = optarg;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'h':
            usage(stdout);
            return PARSE_HELP;
        case 'S':
            if (parse_u64("--seed", optarg, &o->seed) != 0) {
                return usage_hint();
            }
            break;
        case 'j':
            if (parse_i64("--threads", optarg, 1, MAX_THREADS, &threads) != 0) {
                return usage_hint();
            }
            o->threads = (int)threads;
            break;
        case '?':
            usage(stderr);
            return PARSE_USAGE;
        default:
            if (parse_shape_flag(c, optarg, &flags) != 0) {
                return usage_hint();
            }
            break;
        }
    }
    if (optind < argc) {
        return usage_error("unexpected argument '%s'", argv[optind]);
    }
    if (!o->out || !*o->out) {
        return usage_error("missing -o FILE");
    }
    return resolve_shape(o, &flags);
}

// splitmix64 finaliser: a strong 64-bit mixer, used as a counter-based RNG.
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (; *s; s++) {
        h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
    }
    return h;
}

// Two roughly normal values from one hash: each is a sum of four uniform bytes (mean 510,
// std sqrt(4 * (256^2 - 1) / 12) = 147.80), scaled to std WEIGHT_STD.
static void normal_pair(uint64_t h, float *a, float *b)
{
    const float scale = WEIGHT_STD / 147.80f;
    const uint64_t t = (h & 0x00ff00ff00ff00ffULL) + ((h >> 8) & 0x00ff00ff00ff00ffULL);
    const uint32_t lo = (uint32_t)(t & 0xffff) + (uint32_t)((t >> 16) & 0xffff);
    const uint32_t hi = (uint32_t)((t >> 32) & 0xffff) + (uint32_t)(t >> 48);

    *a = ((float)lo - 510.0f) * scale;
    *b = ((float)hi - 510.0f) * scale;
}

// Fills one row with random values. Each value depends only on (tensor key, row, column), so the
// output does not depend on how rows are split between threads.
static void fill_row(float *x, int64_t n, uint64_t tensor_key, int64_t row)
{
    const uint64_t row_key = mix64(tensor_key ^ mix64((uint64_t)row));
    float spare;

    for (int64_t i = 0; i < n; i += 2) {
        const uint64_t h = mix64(row_key + (uint64_t)(i / 2 + 1) * 0x9e3779b97f4a7c15ULL);

        normal_pair(h, &x[i], i + 1 < n ? &x[i + 1] : &spare);
    }
}

// Like llama-quantize: with a 4-bit type, the tensor producing the logits (output.weight, or
// token_embd.weight when tied) is stored as Q6_K, or Q8_0 when rows are not a multiple of 256.
static enum ggml_type logits_type(enum ggml_type wt, int64_t n_embd)
{
    if (wt != GGML_TYPE_Q4_0) {
        return wt;
    }
    return n_embd % ggml_blck_size(GGML_TYPE_Q6_K) == 0 ? GGML_TYPE_Q6_K : GGML_TYPE_Q8_0;
}

__attribute__((format(printf, 7, 8))) static void plan_add(struct plan *p, uint64_t seed,
                                                           enum ggml_type type, enum fill fill,
                                                           int64_t ne0, int64_t ne1,
                                                           const char *fmt, ...)
{
    struct tensor_spec *t = &p->t[p->n++];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(t->name, sizeof(t->name), fmt, ap);
    va_end(ap);
    t->ne0 = ne0;
    t->ne1 = ne1;
    t->type = type;
    t->fill = fill;
    t->key = mix64(seed ^ fnv1a(t->name));
    p->n_params += ne0 * ne1;
}

// Lists every tensor, in file order, with the shapes llama.cpp's loader expects (ggml ne order).
static int build_plan(const struct options *o, int64_t n_vocab, struct plan *p)
{
    const struct shape *s = &o->shape;
    const struct arch_info *a = &ARCHS[s->arch];
    const enum ggml_type wt = WTYPES[s->wtype].type;
    const enum ggml_type lt = logits_type(wt, s->n_embd);
    const int64_t n_embd = s->n_embd;
    const int64_t n_embd_gqa = n_embd / s->n_head * s->n_head_kv;
    const uint64_t seed = o->seed;

    p->cap = 3 + 12 * (int)s->n_layer;
    p->t = calloc((size_t)p->cap, sizeof(*p->t));
    if (!p->t) {
        return fail("alloc", "tensor list: %s", strerror(errno));
    }
    plan_add(p, seed, a->tied_output ? lt : wt, FILL_RANDOM, n_embd, n_vocab, "token_embd.weight");
    plan_add(p, seed, GGML_TYPE_F32, FILL_ONES, n_embd, 1, "output_norm.weight");
    if (!a->tied_output) {
        plan_add(p, seed, lt, FILL_RANDOM, n_embd, n_vocab, "output.weight");
    }
    for (int il = 0; il < (int)s->n_layer; il++) {
        plan_add(p, seed, GGML_TYPE_F32, FILL_ONES, n_embd, 1, "blk.%d.attn_norm.weight", il);
        plan_add(p, seed, wt, FILL_RANDOM, n_embd, n_embd, "blk.%d.attn_q.weight", il);
        plan_add(p, seed, wt, FILL_RANDOM, n_embd, n_embd_gqa, "blk.%d.attn_k.weight", il);
        plan_add(p, seed, wt, FILL_RANDOM, n_embd, n_embd_gqa, "blk.%d.attn_v.weight", il);
        if (a->qkv_bias) {
            plan_add(p, seed, GGML_TYPE_F32, FILL_RANDOM, n_embd, 1, "blk.%d.attn_q.bias", il);
            plan_add(p, seed, GGML_TYPE_F32, FILL_RANDOM, n_embd_gqa, 1, "blk.%d.attn_k.bias", il);
            plan_add(p, seed, GGML_TYPE_F32, FILL_RANDOM, n_embd_gqa, 1, "blk.%d.attn_v.bias", il);
        }
        plan_add(p, seed, wt, FILL_RANDOM, n_embd, n_embd, "blk.%d.attn_output.weight", il);
        plan_add(p, seed, GGML_TYPE_F32, FILL_ONES, n_embd, 1, "blk.%d.ffn_norm.weight", il);
        plan_add(p, seed, wt, FILL_RANDOM, n_embd, s->n_ff, "blk.%d.ffn_gate.weight", il);
        plan_add(p, seed, wt, FILL_RANDOM, n_embd, s->n_ff, "blk.%d.ffn_up.weight", il);
        plan_add(p, seed, wt, FILL_RANDOM, s->n_ff, n_embd, "blk.%d.ffn_down.weight", il);
    }
    return 0;
}

static bool readable(const char *path)
{
    return access(path, R_OK) == 0;
}

// Resolves a data file: given as a path that exists, else file (then file + ext) in
// $<env_name>, then in dflt_dir. 0 with the path, or -1 after saying what was looked for.
static int find_file(const char *what, const char *file, const char *ext, const char *env_name,
                     const char *dflt_dir, char *path, size_t size)
{
    const char *env = getenv(env_name);
    const char *dirs[2] = {env && *env ? env : NULL, dflt_dir};

    if (strchr(file, '/') != NULL && readable(file) &&
        (size_t)snprintf(path, size, "%s", file) < size) {
        return 0;
    }
    for (int i = 0; i < 2; i++) {
        if (dirs[i] && (size_t)snprintf(path, size, "%s/%s", dirs[i], file) < size &&
            readable(path)) {
            return 0;
        }
        if (dirs[i] && (size_t)snprintf(path, size, "%s/%s%s", dirs[i], file, ext) < size &&
            readable(path)) {
            return 0;
        }
    }
    return fail(what, "%s not found (as a path, in $%s (%s) or in %s)", file, env_name,
                env && *env ? env : "unset", dflt_dir);
}

// The vocab file: --vocab, else the arch's default, each as find_file looks.
static int find_vocab(const struct options *o, char *path, size_t size)
{
    return find_file("vocab", o->vocab ? o->vocab : ARCHS[o->shape.arch].vocab_file, ".gguf",
                     "PRECHARGE_VOCAB_DIR", MKMODEL_VOCAB_DIR, path, size);
}

// --template's text, malloc'd; NULL after saying why.
static char *read_template(const char *name)
{
    char path[4096];
    if (find_file("template", name, ".jinja", "PRECHARGE_TEMPLATE_DIR", MKMODEL_TEMPLATE_DIR, path,
                  sizeof(path)) != 0) {
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    char *buf = malloc(MAX_TEMPLATE_BYTES + 1);
    size_t n = 0;
    if (f && buf) {
        n = fread(buf, 1, MAX_TEMPLATE_BYTES + 1, f);
    }
    bool bad = !f || !buf || ferror(f) || n > MAX_TEMPLATE_BYTES;
    if (f) {
        fclose(f);
    }
    if (bad) {
        free(buf);
        fail("template", "%s: %s", path,
             n > MAX_TEMPLATE_BYTES ? "larger than 1 MiB" : "unreadable");
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static bool has_token(const struct gguf_context *v, int64_t id, const char *text)
{
    const size_t n = gguf_get_arr_n(v, id);

    for (size_t i = 0; i < n; i++) {
        if (strcmp(gguf_get_arr_str(v, id, i), text) == 0) {
            return true;
        }
    }
    return false;
}

// Opens a vocab GGUF (metadata only); returns its token count and whether it speaks ChatML.
static struct gguf_context *load_vocab(const char *path, int64_t *n_vocab, bool *chatml)
{
    const struct gguf_init_params ip = {.no_alloc = true, .ctx = NULL};
    struct gguf_context *v = gguf_init_from_file(path, ip);
    int64_t id;

    if (!v) {
        fail("vocab", "%s: cannot read GGUF file", path);
        return NULL;
    }
    id = gguf_find_key(v, "tokenizer.ggml.tokens");
    if (id < 0 || gguf_get_kv_type(v, id) != GGUF_TYPE_ARRAY ||
        gguf_get_arr_type(v, id) != GGUF_TYPE_STRING || gguf_get_arr_n(v, id) == 0 ||
        gguf_get_arr_n(v, id) > INT32_MAX || gguf_find_key(v, "tokenizer.ggml.model") < 0) {
        fail("vocab", "%s: no tokenizer.ggml.model / tokenizer.ggml.tokens", path);
        gguf_free(v);
        return NULL;
    }
    *n_vocab = (int64_t)gguf_get_arr_n(v, id);
    *chatml = has_token(v, id, "<|im_start|>");
    return v;
}

// --fim: appends <|fim_prefix|>, <|fim_suffix|> and <|fim_middle|> to the vocabulary as control
// tokens (with a score of 0 where the vocabulary has scores) and names them in the header, so
// that llama_vocab_fim_pre/suf/mid give them. The vocabulary grows by 3: *n_vocab follows.
static int add_fim_tokens(struct gguf_context *v, int64_t *n_vocab)
{
    static const char *const FIM[] = {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"};
    static const char *const KEYS[] = {"tokenizer.ggml.fim_pre_token_id",
                                       "tokenizer.ggml.fim_suf_token_id",
                                       "tokenizer.ggml.fim_mid_token_id"};
    const size_t n = (size_t)*n_vocab, m = n + 3;
    const int64_t tok = gguf_find_key(v, "tokenizer.ggml.tokens");
    const int64_t typ = gguf_find_key(v, "tokenizer.ggml.token_type");
    const int64_t sco = gguf_find_key(v, "tokenizer.ggml.scores");
    const char **texts = malloc(m * sizeof(*texts));
    int32_t *types = malloc(m * sizeof(*types));
    float *scores = malloc(m * sizeof(*scores));
    int rc = -1;

    if (!texts || !types || !scores) {
        fail("alloc", "fim tokens: %s", strerror(errno));
        goto done;
    }
    if (typ < 0 || gguf_get_arr_type(v, typ) != GGUF_TYPE_INT32 || gguf_get_arr_n(v, typ) != n ||
        (sco >= 0 &&
         (gguf_get_arr_type(v, sco) != GGUF_TYPE_FLOAT32 || gguf_get_arr_n(v, sco) != n))) {
        fail("vocab", "--fim: the vocabulary's token_type/scores do not match its tokens");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        texts[i] = gguf_get_arr_str(v, tok, i);
        types[i] = ((const int32_t *)gguf_get_arr_data(v, typ))[i];
        scores[i] = sco >= 0 ? ((const float *)gguf_get_arr_data(v, sco))[i] : 0.0f;
    }
    for (size_t k = 0; k < 3; k++) {
        texts[n + k] = FIM[k];
        types[n + k] = 3; // LLAMA_TOKEN_TYPE_CONTROL
        scores[n + k] = 0.0f;
    }
    // The set functions copy: the old arrays (which texts points into) go only after.
    struct gguf_context *tmp = gguf_init_empty();
    if (!tmp) {
        fail("gguf", "gguf_init_empty failed");
        goto done;
    }
    gguf_set_arr_str(tmp, "tokenizer.ggml.tokens", texts, m);
    gguf_set_arr_data(tmp, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, m);
    if (sco >= 0) {
        gguf_set_arr_data(tmp, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, m);
    }
    for (size_t k = 0; k < 3; k++) {
        gguf_set_val_u32(tmp, KEYS[k], (uint32_t)(n + k));
    }
    gguf_set_kv(v, tmp);
    gguf_free(tmp);
    *n_vocab = (int64_t)m;
    rc = 0;
done:
    free(texts);
    free(types);
    free(scores);
    return rc;
}

// Copies every tokenizer.* key/value of the vocab file into dst (and nothing else).
static int copy_tokenizer_kv(struct gguf_context *dst, const struct gguf_context *vocab)
{
    struct gguf_context *tmp = gguf_init_empty();

    if (!tmp) {
        return fail("gguf", "gguf_init_empty failed");
    }
    gguf_set_kv(tmp, vocab);
    for (int64_t i = gguf_get_n_kv(tmp) - 1; i >= 0; i--) {
        char *key = strdup(gguf_get_key(tmp, i));

        if (!key) {
            gguf_free(tmp);
            return fail("alloc", "key: %s", strerror(errno));
        }
        if (strncmp(key, "tokenizer.", 10) != 0) {
            gguf_remove_key(tmp, key);
        }
        free(key);
    }
    gguf_set_kv(dst, tmp);
    gguf_free(tmp);
    return 0;
}

static void set_arch_u32(struct gguf_context *g, const char *arch, const char *suffix, int64_t v)
{
    char key[128];

    snprintf(key, sizeof(key), "%s.%s", arch, suffix);
    gguf_set_val_u32(g, key, (uint32_t)v);
}

static void set_arch_f32(struct gguf_context *g, const char *arch, const char *suffix, float v)
{
    char key[128];

    snprintf(key, sizeof(key), "%s.%s", arch, suffix);
    gguf_set_val_f32(g, key, v);
}

static void model_name(const struct options *o, char *buf, size_t size)
{
    if (o->name && strcasestr(o->name, "random")) {
        snprintf(buf, size, "%s", o->name);
    } else if (o->name) {
        snprintf(buf, size, "%s (random weights)", o->name);
    } else {
        snprintf(buf, size, "%s-synthetic (random weights)",
                 o->preset ? o->preset->name : ARCHS[o->shape.arch].name);
    }
}

static int set_metadata(struct gguf_context *g, const struct options *o,
                        const struct gguf_context *vocab, int64_t n_vocab, bool chatml,
                        const char *tmpl)
{
    const struct shape *s = &o->shape;
    const char *arch = ARCHS[s->arch].name;
    char text[320];
    int64_t id;

    gguf_set_val_str(g, "general.architecture", arch);
    model_name(o, text, sizeof(text));
    gguf_set_val_str(g, "general.name", text);
    snprintf(text, sizeof(text),
             "Synthetic model written by mkmodel: random weights (seed %" PRIu64
             "), not a trained model; output is meaningless.",
             o->seed);
    gguf_set_val_str(g, "general.description", text);
    gguf_set_val_u32(g, "general.file_type", WTYPES[s->wtype].ftype);
    gguf_set_val_u32(g, "general.quantization_version", GGML_QNT_VERSION);

    set_arch_u32(g, arch, "context_length", s->n_ctx);
    set_arch_u32(g, arch, "embedding_length", s->n_embd);
    set_arch_u32(g, arch, "block_count", s->n_layer);
    set_arch_u32(g, arch, "feed_forward_length", s->n_ff);
    set_arch_u32(g, arch, "attention.head_count", s->n_head);
    set_arch_u32(g, arch, "attention.head_count_kv", s->n_head_kv);
    set_arch_f32(g, arch, "attention.layer_norm_rms_epsilon", ARCHS[s->arch].rms_eps);
    set_arch_f32(g, arch, "rope.freq_base", ARCHS[s->arch].rope_base);
    set_arch_u32(g, arch, "rope.dimension_count", s->n_embd / s->n_head);
    if (s->arch == ARCH_LLAMA) {
        set_arch_u32(g, arch, "vocab_size", n_vocab);
    }
    if (o->pooling >= 0) {
        set_arch_u32(g, arch, "pooling_type", (uint32_t)o->pooling);
    }

    if (copy_tokenizer_kv(g, vocab) != 0) {
        return -1;
    }
    id = gguf_find_key(g, "tokenizer.ggml.model");
    if (gguf_get_kv_type(g, id) == GGUF_TYPE_STRING &&
        strcmp(gguf_get_val_str(g, id), "llama") == 0 &&
        gguf_find_key(g, "tokenizer.ggml.add_bos_token") < 0) {
        gguf_set_val_bool(g, "tokenizer.ggml.add_bos_token", true);
    }
    if (!tmpl) {
        tmpl = chatml ? QWEN25_TEMPLATE : TINYLLAMA_TEMPLATE;
    }
    gguf_set_val_str(g, "tokenizer.chat_template", tmpl);
    return 0;
}

// Registers the tensor infos (no data) so the metadata can be serialised up front.
static int add_tensor_infos(struct gguf_context *g, const struct plan *p)
{
    const struct ggml_init_params ip = {
        .mem_size = (size_t)p->n * ggml_tensor_overhead(),
        .mem_buffer = NULL,
        .no_alloc = true,
    };
    struct ggml_context *ctx = ggml_init(ip);

    if (!ctx) {
        return fail("ggml", "ggml_init failed");
    }
    for (int i = 0; i < p->n; i++) {
        const struct tensor_spec *t = &p->t[i];
        const int64_t ne[2] = {t->ne0, t->ne1};
        struct ggml_tensor *gt = ggml_new_tensor(ctx, t->type, t->ne1 > 1 ? 2 : 1, ne);

        ggml_set_name(gt, t->name);
        gguf_add_tensor(g, gt);
    }
    ggml_free(ctx);
    return 0;
}

static int64_t rows_per_task(const struct tensor_spec *t)
{
    const int64_t r = CHUNK_ELEMS / t->ne0;

    return r < 1 ? 1 : r;
}

static int pool_init(struct pool *pl, const struct plan *p, int n_threads)
{
    size_t out_bytes = 0;

    pl->n_threads = n_threads;
    pl->task_elems = 0;
    for (int i = 0; i < p->n; i++) {
        const int64_t rows = rows_per_task(&p->t[i]);
        const size_t elems = (size_t)(rows * p->t[i].ne0);
        const size_t bytes = (size_t)rows * ggml_row_size(p->t[i].type, p->t[i].ne0);

        pl->task_elems = elems > pl->task_elems ? elems : pl->task_elems;
        out_bytes = bytes > out_bytes ? bytes : out_bytes;
    }
    pl->scratch = malloc(pl->task_elems * sizeof(float) * (size_t)n_threads);
    pl->buf = malloc(out_bytes * (size_t)n_threads);
    pl->tasks = calloc((size_t)n_threads, sizeof(*pl->tasks));
    pl->tids = calloc((size_t)n_threads, sizeof(*pl->tids));
    if (!pl->scratch || !pl->buf || !pl->tasks || !pl->tids) {
        return fail("alloc", "work buffers: %s", strerror(errno));
    }
    return 0;
}

static void pool_free(struct pool *pl)
{
    free(pl->scratch);
    free(pl->buf);
    free(pl->tasks);
    free(pl->tids);
}

static void *run_task(void *arg)
{
    const struct task *k = arg;
    const struct tensor_spec *t = k->t;

    for (int64_t r = 0; r < k->nrows; r++) {
        float *x = k->scratch + r * t->ne0;

        if (t->fill == FILL_ONES) {
            for (int64_t i = 0; i < t->ne0; i++) {
                x[i] = 1.0f;
            }
        } else {
            fill_row(x, t->ne0, t->key, k->row0 + r);
        }
    }
    ggml_quantize_chunk(t->type, k->scratch, k->dst, 0, k->nrows, t->ne0, NULL);
    return NULL;
}

// Runs tasks[0..n) in parallel: task 0 on this thread; a task whose thread cannot start runs here.
static void run_tasks(struct pool *pl, int n)
{
    bool started[MAX_THREADS] = {false};

    for (int i = 1; i < n; i++) {
        started[i] = pthread_create(&pl->tids[i], NULL, run_task, &pl->tasks[i]) == 0;
    }
    run_task(&pl->tasks[0]);
    for (int i = 1; i < n; i++) {
        if (started[i]) {
            pthread_join(pl->tids[i], NULL);
        } else {
            run_task(&pl->tasks[i]);
        }
    }
}

static int out_write(struct out *w, const void *buf, size_t n)
{
    if (n > 0 && fwrite(buf, 1, n, w->f) != n) {
        return fail("write", "%s: %s", w->path, strerror(errno));
    }
    w->pos += n;
    return 0;
}

static int out_pad(struct out *w, size_t align)
{
    static const uint8_t zeros[64];
    size_t pad = (size_t)((align - w->pos % align) % align);

    while (pad > 0) {
        const size_t n = pad < sizeof(zeros) ? pad : sizeof(zeros);

        if (out_write(w, zeros, n) != 0) {
            return -1;
        }
        pad -= n;
    }
    return 0;
}

// Generates, quantizes and appends one tensor, a batch of n_threads row slices at a time.
static int write_tensor(struct out *w, struct pool *pl, const struct tensor_spec *t)
{
    const int64_t rpt = rows_per_task(t);
    const size_t row_size = ggml_row_size(t->type, t->ne0);

    for (int64_t row = 0; row < t->ne1;) {
        uint8_t *dst = pl->buf;
        int n = 0;

        for (; n < pl->n_threads && row < t->ne1; n++) {
            const int64_t nrows = t->ne1 - row < rpt ? t->ne1 - row : rpt;

            pl->tasks[n] = (struct task){
                .t = t,
                .row0 = row,
                .nrows = nrows,
                .scratch = pl->scratch + (size_t)n * pl->task_elems,
                .dst = dst,
            };
            dst += (size_t)nrows * row_size;
            row += nrows;
        }
        run_tasks(pl, n);
        if (out_write(w, pl->buf, (size_t)(dst - pl->buf)) != 0) {
            return -1;
        }
    }
    return 0;
}

static int write_meta(struct out *w, const struct gguf_context *g)
{
    const size_t size = gguf_get_meta_size(g);
    void *meta = malloc(size);
    int rc;

    if (!meta) {
        return fail("alloc", "metadata (%zu bytes): %s", size, strerror(errno));
    }
    gguf_get_meta_data(g, meta);
    rc = out_write(w, meta, size);
    free(meta);
    return rc;
}

static int write_data(struct out *w, struct pool *pl, const struct gguf_context *g,
                      const struct plan *p)
{
    const uint64_t data_start = w->pos;
    const size_t align = gguf_get_alignment(g);

    for (int i = 0; i < p->n; i++) {
        if (w->pos - data_start != gguf_get_tensor_offset(g, i)) {
            return fail("internal", "%s: data offset %" PRIu64 " != %zu", p->t[i].name,
                        w->pos - data_start, gguf_get_tensor_offset(g, i));
        }
        if (write_tensor(w, pl, &p->t[i]) != 0 || out_pad(w, align) != 0) {
            return -1;
        }
    }
    return 0;
}

static int out_open(struct out *w, const char *path)
{
    const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    w->path = path;
    w->pos = 0;
    if (fd < 0) {
        return fail("open", "%s: %s", path, strerror(errno));
    }
    w->f = fdopen(fd, "wb");
    if (!w->f) {
        close(fd);
        unlink(path);
        return fail("open", "%s: %s", path, strerror(errno));
    }
    return 0;
}

// Flushes, fsyncs and closes the temp file, then renames it over the final path.
static int out_commit(struct out *w, const char *final_path)
{
    FILE *f = w->f;
    int rc = 0;

    w->f = NULL;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        rc = fail("write", "%s: %s", w->path, strerror(errno));
    }
    if (fclose(f) != 0 && rc == 0) {
        rc = fail("write", "%s: %s", w->path, strerror(errno));
    }
    if (rc == 0 && rename(w->path, final_path) != 0) {
        rc = fail("rename", "%s -> %s: %s", w->path, final_path, strerror(errno));
    }
    return rc;
}

static void report(const struct options *o, const struct plan *p, uint64_t bytes, double secs)
{
    const struct shape *s = &o->shape;
    const double params = (double)p->n_params;

    printf("mkmodel: wrote %s (arch %s, %" PRId64 " layers, n_embd %" PRId64 ", %s, %.1f MB, "
           "%.2f %s params) in %.1f s\n",
           o->out, ARCHS[s->arch].name, s->n_layer, s->n_embd, WTYPES[s->wtype].name,
           (double)bytes / 1e6, params >= 1e9 ? params / 1e9 : params / 1e6,
           params >= 1e9 ? "B" : "M", secs);
}

static int generate(const struct options *o)
{
    const double t0 = now_s();
    struct gguf_context *vocab = NULL;
    struct gguf_context *g = NULL;
    struct plan p = {0};
    struct pool pl = {0};
    struct out w = {0};
    char vocab_path[4096];
    char *tmp = NULL;
    char *tmpl = NULL;
    int64_t n_vocab = 0;
    bool chatml = false;
    bool created = false;
    int rc = -1;

    if (find_vocab(o, vocab_path, sizeof(vocab_path)) != 0) {
        goto done;
    }
    if (o->tmpl && !(tmpl = read_template(o->tmpl))) {
        goto done;
    }
    vocab = load_vocab(vocab_path, &n_vocab, &chatml);
    if (!vocab || (o->fim && add_fim_tokens(vocab, &n_vocab) != 0) ||
        build_plan(o, n_vocab, &p) != 0) {
        goto done;
    }
    g = gguf_init_empty();
    if (!g) {
        fail("gguf", "gguf_init_empty failed");
        goto done;
    }
    if (set_metadata(g, o, vocab, n_vocab, chatml, tmpl) != 0 || add_tensor_infos(g, &p) != 0 ||
        pool_init(&pl, &p, o->threads) != 0) {
        goto done;
    }
    for (int i = 0; i < o->n_sets; i++) {
        char why[256];
        if (ggufset_apply(g, o->sets[i], why, sizeof(why)) != 0) {
            fail("--set", "%s", why);
            goto done;
        }
    }
    tmp = malloc(strlen(o->out) + 32);
    if (!tmp) {
        fail("alloc", "path: %s", strerror(errno));
        goto done;
    }
    snprintf(tmp, strlen(o->out) + 32, "%s.tmp.%ld", o->out, (long)getpid());
    if (out_open(&w, tmp) != 0) {
        goto done;
    }
    created = true;
    if (write_meta(&w, g) != 0 || write_data(&w, &pl, g, &p) != 0 || out_commit(&w, o->out) != 0) {
        goto done;
    }
    created = false;
    rc = 0;
    if (!o->quiet) {
        report(o, &p, w.pos, now_s() - t0);
    }
done:
    if (w.f) {
        fclose(w.f);
    }
    if (created) {
        unlink(tmp);
    }
    free(tmp);
    free(tmpl);
    pool_free(&pl);
    free(p.t);
    if (g) {
        gguf_free(g);
    }
    if (vocab) {
        gguf_free(vocab);
    }
    ggml_quantize_free();
    return rc;
}

int main(int argc, char **argv)
{
    struct options o;

    switch (parse_args(argc, argv, &o)) {
    case PARSE_HELP:
        return 0;
    case PARSE_USAGE:
        return 2;
    default:
        return generate(&o) == 0 ? 0 : 1;
    }
}
