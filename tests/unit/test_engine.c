/* test_engine.c - the llama.cpp wrapper on a real (tiny, random) model: loading, bad files,
 * chat templates, greedy determinism, prefix reuse, stop strings, cancellation, the JSON grammar
 * and the tokens a generation hands back as context; the sampling chain each setting makes;
 * pooled embeddings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "engine/engine.h"
#include "engine/engineInt.h"
#include "testmodel.h"

static char model_path[PATH_MAX + 16];
static char dir[PATH_MAX];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s", test_dir("engine"));
    snprintf(model_path, sizeof(model_path), "%s/tiny.gguf", dir);
    make_tiny_model(model_path);
    pc_engine_init(NULL, "none");
    return 0;
}

static struct pc_model *load(void)
{
    return load_test_model(model_path, 512);
}

static void test_load_reports_info(void **state)
{
    (void)state;
    struct pc_model *m = load();
    const struct pc_model_info *in = pc_model_info(m);
    assert_string_equal(in->arch, "llama");
    assert_int_equal(in->n_ctx, 512);
    assert_true(in->n_params > 1000000);
    assert_true(in->weights_bytes > 0);
    assert_true(in->kv_bytes > 0);
    assert_true(in->has_chat_template);
    assert_true(pc_model_memory(m) >= in->weights_bytes + in->kv_bytes);
    pc_model_free(m);
    pc_model_free(NULL);
}

static void expect_load_error(const char *path, enum pc_err code, const char *needle)
{
    struct pc_model *m = (struct pc_model *)0x1;
    struct pc_error err = {0};
    struct pc_model_params p = pc_model_default_params();
    assert_int_equal(pc_model_load(path, &p, &m, &err), code);
    assert_null(m);
    assert_non_null(strstr(err.msg, needle));
}

static void test_bad_files_give_clear_errors(void **state)
{
    (void)state;
    char path[PATH_MAX + 32];
    struct pc_error err = {0};

    snprintf(path, sizeof(path), "%s/missing.gguf", dir);
    expect_load_error(path, PC_ERR_NOT_FOUND, "missing.gguf");

    snprintf(path, sizeof(path), "%s/text.gguf", dir);
    assert_int_equal(pc_file_write_atomic(path, "hello, world\n", 13, &err), PC_OK);
    expect_load_error(path, PC_ERR_MODEL_FORMAT, "not a GGUF file");

    snprintf(path, sizeof(path), "%s/empty.gguf", dir);
    assert_int_equal(pc_file_write_atomic(path, "", 0, &err), PC_OK);
    expect_load_error(path, PC_ERR_MODEL_FORMAT, "empty.gguf");

    /* A real model cut short: first in its header, then in its tensor data. */
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(pc_file_read(model_path, 64u << 20, &data, &len, &err), PC_OK);
    snprintf(path, sizeof(path), "%s/header-cut.gguf", dir);
    assert_int_equal(pc_file_write_atomic(path, data, 100, &err), PC_OK);
    expect_load_error(path, PC_ERR_MODEL_FORMAT, "header-cut.gguf");
    snprintf(path, sizeof(path), "%s/data-cut.gguf", dir);
    assert_int_equal(pc_file_write_atomic(path, data, len / 2, &err), PC_OK);
    expect_load_error(path, PC_ERR_MODEL_LOAD, "data-cut.gguf");
    free(data);

    expect_load_error(dir, PC_ERR_MODEL_FORMAT, "not a regular file");
}

static void test_chat_template_renders_roles(void **state)
{
    (void)state;
    struct pc_model *m = load();
    struct pc_chat_msg msgs[] = {{.role = "system", .content = "Be brief."},
                                 {.role = "user", .content = "Hello"}};
    char *out = NULL;
    struct pc_error err = {0};
    assert_int_equal(pc_model_render_chat(m, msgs, 2, true, &out, &err), PC_OK);
    assert_non_null(strstr(out, "Be brief."));
    assert_non_null(strstr(out, "Hello"));
    /* The tiny preset carries TinyLlama's (zephyr) template. */
    assert_non_null(strstr(out, "<|user|>"));
    assert_non_null(strstr(out, "<|assistant|>"));

    /* Rendering the first message alone gives a prefix of rendering both: what precharge relies
     * on to reuse a system prompt's KV cache. */
    char *first = NULL;
    assert_int_equal(pc_model_render_chat(m, msgs, 1, false, &first, &err), PC_OK);
    assert_memory_equal(out, first, strlen(first));
    free(first);
    free(out);
    pc_model_free(m);
}

static bool json_mode;

/* Generate greedily; returns the text (caller frees) and fills *st. */
static char *generate(struct pc_model *m, const char *prompt, int n, const char *const *stops,
                      size_t n_stops, struct pc_gen_stats *st, char *reason, size_t rsize)
{
    struct pc_gen_request req = {.prompt = prompt, .sampling = pc_sampling_default()};
    req.sampling.json = json_mode;
    req.sampling.temperature = 0;
    req.sampling.num_predict = n;
    req.sampling.stop = stops;
    req.sampling.n_stop = n_stops;
    struct pc_gen *g = NULL;
    struct pc_error err = {0};
    assert_int_equal(pc_gen_start(m, &req, &g, &err), PC_OK);
    struct pc_buf text = PC_BUF_INIT;
    for (;;) {
        const char *t;
        size_t len;
        bool done;
        assert_int_equal(pc_gen_next(g, &t, &len, &done, &err), PC_OK);
        pc_buf_append(&text, t, len);
        if (done)
            break;
    }
    if (st)
        *st = *pc_gen_stats(g);
    if (reason)
        snprintf(reason, rsize, "%s", pc_gen_done_reason(g));
    pc_gen_free(g);
    return pc_buf_steal(&text);
}

static void test_greedy_is_deterministic_and_prefix_is_reused(void **state)
{
    (void)state;
    struct pc_model *m = load();
    struct pc_gen_stats a, b, c;
    char reason[16];
    const char *prompt = "The quick brown fox jumps over the lazy dog. Then";
    char *t1 = generate(m, prompt, 12, NULL, 0, &a, reason, sizeof(reason));
    assert_string_equal(reason, "length");
    assert_int_equal(a.eval_tokens, 12);
    assert_int_equal(a.cached_tokens, 0);
    assert_true(a.prompt_tokens > 5);

    /* Same prompt again: all but the last prompt token come from the KV cache, and the
     * answer is the same. */
    char *t2 = generate(m, prompt, 12, NULL, 0, &b, NULL, 0);
    assert_string_equal(t1, t2);
    assert_int_equal(b.cached_tokens, b.prompt_tokens - 1);

    /* A longer prompt that starts the same pays only for its new tokens. */
    char *t3 = generate(m, "The quick brown fox jumps over the lazy dog. Then it slept.", 4, NULL,
                        0, &c, NULL, 0);
    assert_true(c.cached_tokens >= a.prompt_tokens - 2);
    assert_true(c.cached_tokens < c.prompt_tokens);
    free(t1);
    free(t2);
    free(t3);
    pc_model_free(m);
}

static void test_stop_string_ends_generation(void **state)
{
    (void)state;
    struct pc_model *m = load();
    char *full = generate(m, "Once upon a time", 24, NULL, 0, NULL, NULL, 0);
    assert_true(strlen(full) > 8);
    /* Stop at a piece of text that the unstopped run produced. */
    char stop[4];
    memcpy(stop, full + strlen(full) / 2, 3);
    stop[3] = '\0';
    const char *stops[] = {stop};
    char reason[16];
    char *cut = generate(m, "Once upon a time", 24, stops, 1, NULL, reason, sizeof(reason));
    assert_string_equal(reason, "stop");
    assert_null(strstr(cut, stop));
    assert_true(strncmp(full, cut, strlen(cut)) == 0);
    free(full);
    free(cut);
    pc_model_free(m);
}

static void test_json_format_gives_json(void **state)
{
    (void)state;
    struct pc_model *m = load();
    char reason[16];
    json_mode = true;
    char *t = generate(m, "Answer in JSON", 40, NULL, 0, NULL, reason, sizeof(reason));
    json_mode = false;
    /* Every token kept the text a prefix of some JSON object. */
    size_t i = 0;
    while (t[i] == ' ' || t[i] == '\n')
        i++;
    assert_int_equal(t[i], '{');
    int depth = 0;
    bool in_str = false;
    for (; t[i] != '\0'; i++) {
        if (in_str && t[i] == '\\' && t[i + 1] != '\0')
            i++;
        else if (t[i] == '"')
            in_str = !in_str;
        else if (!in_str && (t[i] == '{' || t[i] == '['))
            depth++;
        else if (!in_str && (t[i] == '}' || t[i] == ']'))
            depth--;
        assert_true(depth >= 0);
    }
    if (strcmp(reason, "stop") == 0)
        assert_int_equal(depth, 0); /* the grammar let the model end only when it was whole */
    free(t);
    pc_model_free(m);
}

/* The names of the chain's samplers, space-separated, as llama.cpp calls them. */
static void expect_chain(struct pc_model *m, const struct pc_sampling *s, const char *want)
{
    struct llama_sampler *c = pc_sampler_make(m, s);
    assert_non_null(c);
    char got[256] = "";
    for (int i = 0; i < llama_sampler_chain_n(c); i++) {
        size_t len = strlen(got);
        snprintf(got + len, sizeof(got) - len, "%s%s", i ? " " : "",
                 llama_sampler_name(llama_sampler_chain_get(c, i)));
    }
    llama_sampler_free(c);
    assert_string_equal(got, want);
}

/* A seeded answer of 16 tokens under s (the caller's seed and temperature). */
static char *sample_with(struct pc_model *m, const struct pc_sampling *s)
{
    struct pc_gen_request req = {.prompt = "Once upon a time", .sampling = *s};
    req.sampling.num_predict = 16;
    struct pc_gen *g = NULL;
    struct pc_error err = {0};
    assert_int_equal(pc_gen_start(m, &req, &g, &err), PC_OK);
    struct pc_buf text = PC_BUF_INIT;
    for (bool done = false; !done;) {
        const char *t;
        size_t len;
        assert_int_equal(pc_gen_next(g, &t, &len, &done, &err), PC_OK);
        pc_buf_append(&text, t, len);
    }
    pc_gen_free(g);
    return pc_buf_steal(&text);
}

static void test_sampler_chain_follows_the_settings(void **state)
{
    (void)state;
    struct pc_model *m = load();
    struct pc_sampling s = pc_sampling_default();
    s.seed = 7;
    s.temperature = 1.5f;
    expect_chain(m, &s, "top-k penalties top-p temp dist");
    s.typical_p = 0.5f;
    s.min_p = 0.05f;
    struct pc_logit_bias ban = {.token = 5, .bias = -INFINITY};
    s.logit_bias = &ban;
    s.n_logit_bias = 1;
    /* llama.cpp's common_sampler order: the bias before any cut, typical before top-p. */
    expect_chain(m, &s, "logit-bias top-k penalties typical top-p min-p temp dist");
    /* Mirostat replaces the cuts (top-k, typical, top-p, min-p), after the temperature. */
    s.mirostat = 1;
    expect_chain(m, &s, "logit-bias penalties temp mirostat");
    s.mirostat = 2;
    expect_chain(m, &s, "logit-bias penalties temp mirostat-v2");
    s.temperature = 0; /* greedy wins over Mirostat */
    expect_chain(m, &s, "logit-bias penalties greedy");

    /* Each setting changes a seeded answer, and the same settings give the same answer. */
    struct pc_sampling base = pc_sampling_default();
    base.seed = 7;
    base.temperature = 1.5f;
    base.top_k = 0;
    base.top_p = 1.0f;
    char *plain = sample_with(m, &base);
    char *again = sample_with(m, &base);
    assert_string_equal(plain, again);
    struct pc_sampling v[3] = {base, base, base};
    v[0].typical_p = 0.2f;
    v[1].mirostat = 1;
    v[1].mirostat_tau = 0.5f;
    v[2].mirostat = 2;
    v[2].mirostat_tau = 0.5f;
    for (int i = 0; i < 3; i++) {
        char *t = sample_with(m, &v[i]);
        assert_string_not_equal(t, plain);
        char *t2 = sample_with(m, &v[i]);
        assert_string_equal(t, t2);
        free(t);
        free(t2);
    }
    free(plain);
    free(again);

    /* repeat_last_n -1 is the whole context, never "off": a penalty on it changes the greedy
     * answer, which repeats itself. */
    struct pc_sampling greedy = pc_sampling_default();
    greedy.temperature = 0;
    greedy.repeat_penalty = 1.0f;
    char *g = sample_with(m, &greedy);
    greedy.repeat_penalty = 100.0f;
    greedy.repeat_last_n = -1;
    char *penalized = sample_with(m, &greedy);
    assert_string_not_equal(g, penalized);
    greedy.repeat_penalty = 1.0f;
    greedy.presence_penalty = 2.0f;
    char *present = sample_with(m, &greedy);
    assert_string_not_equal(g, present);
    free(g);
    free(penalized);
    free(present);
    pc_model_free(m);
}

static void test_gen_tokens_continue_a_conversation(void **state)
{
    (void)state;
    struct pc_model *m = load();
    struct pc_error err = {0};
    int32_t *prompt = NULL, *more = NULL, *ctx = NULL;
    size_t n_prompt = 0, n_more = 0, n_ctx = 0;
    assert_int_equal(pc_model_tokenize(m, "Hello there", &prompt, &n_prompt, &err), PC_OK);
    assert_int_equal(pc_model_tokenize_more(m, "Hello there", &more, &n_more, &err), PC_OK);
    assert_int_equal(n_more, n_prompt - 1); /* the same, without the BOS */
    assert_memory_equal(more, prompt + 1, n_more * sizeof(*more));
    assert_true(pc_model_info(m)->n_vocab > 0 && (uint32_t)prompt[0] < pc_model_info(m)->n_vocab);

    struct pc_gen_request req = {
        .tokens = prompt, .n_tokens = n_prompt, .sampling = pc_sampling_default()};
    req.sampling.temperature = 0;
    req.sampling.num_predict = 5;
    struct pc_gen *g = NULL;
    assert_int_equal(pc_gen_start(m, &req, &g, &err), PC_OK);
    bool done = false;
    while (!done) {
        const char *t;
        size_t len;
        assert_int_equal(pc_gen_next(g, &t, &len, &done, &err), PC_OK);
    }
    assert_int_equal(pc_gen_tokens(g, &ctx, &n_ctx, &err), PC_OK);
    assert_int_equal(n_ctx, n_prompt + (size_t)pc_gen_stats(g)->eval_tokens);
    assert_memory_equal(ctx, prompt, n_prompt * sizeof(*ctx));
    pc_gen_free(g);

    /* Sent back with more text, the whole conversation comes from the live sequence. */
    int32_t *next = malloc((n_ctx + n_more) * sizeof(*next));
    memcpy(next, ctx, n_ctx * sizeof(*next));
    memcpy(next + n_ctx, more, n_more * sizeof(*next));
    req.tokens = next;
    req.n_tokens = n_ctx + n_more;
    assert_int_equal(pc_gen_start(m, &req, &g, &err), PC_OK);
    assert_int_equal(pc_gen_wait_prompt(g, &err), PC_OK);
    assert_true(pc_gen_stats(g)->cached_tokens >= (int32_t)n_ctx - 1);
    pc_gen_free(g);
    free(next);
    free(prompt);
    free(more);
    free(ctx);
    pc_model_free(m);
}

static void test_cancel_stops_at_next_token(void **state)
{
    (void)state;
    struct pc_model *m = load();
    atomic_bool cancel;
    atomic_init(&cancel, false);
    struct pc_gen_request req = {
        .prompt = "Hello", .sampling = pc_sampling_default(), .cancel = &cancel};
    struct pc_gen *g = NULL;
    struct pc_error err = {0};
    assert_int_equal(pc_gen_start(m, &req, &g, &err), PC_OK);
    const char *t;
    size_t len;
    bool done;
    assert_int_equal(pc_gen_next(g, &t, &len, &done, &err), PC_OK);
    atomic_store(&cancel, true);
    /* What was made before the cancel may still come out; then the end. */
    do
        assert_int_equal(pc_gen_next(g, &t, &len, &done, &err), PC_OK);
    while (!done);
    assert_string_equal(pc_gen_done_reason(g), "cancel");
    pc_gen_free(g);

    /* The model serves the next request. */
    char *t2 = generate(m, "Hello", 2, NULL, 0, NULL, NULL, 0);
    free(t2);
    pc_model_free(m);
}

static void test_prompt_longer_than_context_is_refused(void **state)
{
    (void)state;
    struct pc_model *m = load();
    struct pc_buf long_prompt = PC_BUF_INIT;
    for (int i = 0; i < 600; i++)
        pc_buf_appends(&long_prompt, "word ");
    struct pc_gen_request req = {.prompt = long_prompt.data, .sampling = pc_sampling_default()};
    struct pc_gen *g = NULL;
    struct pc_error err = {0};
    assert_int_equal(pc_gen_start(m, &req, &g, &err), PC_ERR_CTX_OVERFLOW);
    assert_null(g);
    assert_non_null(strstr(err.msg, "context window is 512 tokens"));
    pc_buf_free(&long_prompt);

    /* Generation that reaches the end of the context stops with "length". */
    char reason[16];
    char *t = generate(m, "Hi", -1, NULL, 0, NULL, reason, sizeof(reason));
    assert_string_equal(reason, "length");
    free(t);
    pc_model_free(m);
}

static float norm2(const float *v, uint32_t n)
{
    double s = 0;
    for (uint32_t i = 0; i < n; i++)
        s += (double)v[i] * v[i];
    return (float)s;
}

static void test_embeddings(void **state)
{
    (void)state;
    struct pc_error err = {0};
    struct pc_slot *slot = NULL;
    float v[64];

    /* A generation model gives none, and says so. */
    struct pc_model *gen = load();
    assert_int_equal(pc_model_info(gen)->n_embd_pooled, 0);
    pc_slot_acquire(gen, PC_PRIO_USER, &slot);
    assert_int_equal(pc_slot_embed(slot, "hello", true, 0, v, NULL, &err), PC_ERR_INVALID);
    assert_non_null(strstr(err.msg, "no pooling type"));
    pc_slot_release(slot);
    pc_model_free(gen);

    /* The same shape with mean pooling named in its GGUF. */
    char path[PATH_MAX + 32], cmd[3 * PATH_MAX];
    snprintf(path, sizeof(path), "%s/embed.gguf", dir);
    const char *mk = getenv("PC_TEST_MKMODEL");
    snprintf(cmd, sizeof(cmd), "'%s' --preset tiny --pooling mean -q -o '%s'", mk ? mk : "mkmodel",
             path);
    assert_int_equal(system(cmd), 0);
    struct pc_model *m = load_test_model(path, 1024); /* room for a conversation and a batch */
    uint32_t dim = pc_model_info(m)->n_embd_pooled;
    assert_int_equal(dim, 64);

    /* A live conversation first: embeddings must leave it as it was. */
    const char *prompt = "The quick brown fox jumps over the lazy dog. Then";
    struct pc_gen_stats a, b;
    char *t1 = generate(m, prompt, 4, NULL, 0, &a, NULL, 0);

    float w[64], x[64];
    size_t n = 0;
    pc_slot_acquire(m, PC_PRIO_USER, &slot);
    assert_int_equal(pc_slot_embed(slot, "A form with a date field.", true, 0, v, &n, &err), PC_OK);
    assert_true(n > 3);
    assert_true(fabsf(norm2(v, dim) - 1.0f) < 1e-5f);
    assert_int_equal(pc_slot_embed(slot, "A form with a date field.", true, 0, w, NULL, &err),
                     PC_OK);
    assert_memory_equal(v, w, sizeof(v)); /* the same text, the same vector */
    assert_int_equal(pc_slot_embed(slot, "Something else.", true, 0, x, NULL, &err), PC_OK);
    assert_memory_not_equal(v, x, sizeof(v));

    /* Over the batch (512 here): cut when asked, else refused with both counts. */
    struct pc_buf big = PC_BUF_INIT;
    for (int i = 0; i < 700; i++)
        pc_buf_appends(&big, " word");
    assert_int_equal(pc_slot_embed(slot, big.data, true, 0, v, &n, &err), PC_OK);
    assert_int_equal(n, 512);
    assert_int_equal(pc_slot_embed(slot, big.data, false, 0, v, &n, &err), PC_ERR_CTX_OVERFLOW);
    assert_non_null(strstr(err.msg, "the limit for an embedding is 512"));
    /* A smaller limit of the request's own (num_ctx) bounds it the same way. */
    assert_int_equal(pc_slot_embed(slot, big.data, true, 16, v, &n, &err), PC_OK);
    assert_int_equal(n, 16);
    assert_int_equal(pc_slot_embed(slot, big.data, false, 16, v, &n, &err), PC_ERR_CTX_OVERFLOW);
    assert_non_null(strstr(err.msg, "the limit for an embedding is 16"));
    pc_buf_free(&big);
    pc_slot_release(slot);

    /* The conversation is still live: the same prompt reuses all but its last token. */
    char *t2 = generate(m, prompt, 4, NULL, 0, &b, NULL, 0);
    assert_string_equal(t1, t2);
    assert_int_equal(b.cached_tokens, b.prompt_tokens - 1);
    free(t1);
    free(t2);
    pc_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_reports_info),
        cmocka_unit_test(test_bad_files_give_clear_errors),
        cmocka_unit_test(test_chat_template_renders_roles),
        cmocka_unit_test(test_greedy_is_deterministic_and_prefix_is_reused),
        cmocka_unit_test(test_stop_string_ends_generation),
        cmocka_unit_test(test_json_format_gives_json),
        cmocka_unit_test(test_sampler_chain_follows_the_settings),
        cmocka_unit_test(test_gen_tokens_continue_a_conversation),
        cmocka_unit_test(test_cancel_stops_at_next_token),
        cmocka_unit_test(test_prompt_longer_than_context_is_refused),
        cmocka_unit_test(test_embeddings),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
