/* test_hparams.c - a model file whose header holds a value that llama.cpp asserts on is refused
 * with the key and the value named, by every load path, and no one-field change to a valid
 * header kills the process that loads and runs it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libgen.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../tools/mkmodel/ggufset.h"
#include "engine/engine.h"
#include "testmodel.h"

static char dir[PATH_MAX];
static char tiny[PATH_MAX + 32];
static char bad[PATH_MAX + 32];
static char precharge[PATH_MAX];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s", test_dir("hparams"));
    snprintf(tiny, sizeof(tiny), "%s/tiny.gguf", dir);
    snprintf(bad, sizeof(bad), "%s/bad.gguf", dir);
    make_tiny_model(tiny);
    /* The CLI beside mkmodel in the build's bin/. */
    char mk[PATH_MAX];
    snprintf(mk, sizeof(mk), "%s", getenv("PC_TEST_MKMODEL") ? getenv("PC_TEST_MKMODEL") : "");
    snprintf(precharge, sizeof(precharge), "%s/precharge", dirname(mk));
    pc_engine_init(NULL, "none");
    return 0;
}

/* bad.gguf: the tiny model with spec applied to its header. */
static void write_bad(const char *spec)
{
    char why[256];
    if (ggufset_copy(tiny, bad, &spec, 1, why, sizeof(why)) != 0)
        fail_msg("ggufset_copy %s: %s", spec, why);
}

/* Each load path refuses bad.gguf with PC_ERR_MODEL_FORMAT naming the file, key and value. */
static void expect_refused(const char *key, const char *value)
{
    char want_key[128], want_value[64];
    snprintf(want_key, sizeof(want_key), "key %s is ", key);
    snprintf(want_value, sizeof(want_value), " is %s;", value);
    struct pc_model_params p = pc_model_default_params();
    p.n_threads = 1;
    struct pc_error err[3] = {{0}};
    struct pc_model *m = NULL;
    struct pc_estimate est;
    enum pc_err rc[3] = {
        pc_model_check(bad, &err[0]),
        pc_model_load(bad, &p, &m, &err[1]),
        pc_model_estimate(bad, &p, &est, &err[2]),
    };
    for (int i = 0; i < 3; i++) {
        if (rc[i] != PC_ERR_MODEL_FORMAT || strstr(err[i].msg, bad) == NULL ||
            strstr(err[i].msg, want_key) == NULL || strstr(err[i].msg, want_value) == NULL)
            fail_msg("path %d: %s=%s gave %s: %s", i, key, value, pc_errname(rc[i]), err[i].msg);
    }
    assert_null(m);
}

/* The seven one-field changes that aborted the daemon (issue 13). */
static void test_asserting_values_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *key, *value;
    } cases[] = {
        {"llama.block_count=u32:0", "llama.block_count", "0"},
        {"llama.block_count=u32:513", "llama.block_count", "513"},
        {"llama.block_count=u32:2147483647", "llama.block_count", "2147483647"},
        {"llama.block_count=u32:4294967295", "llama.block_count", "4294967295"},
        {"llama.context_length=u32:1", "llama.context_length", "1"},
        {"llama.attention.layer_norm_rms_epsilon=f32:-1", "llama.attention.layer_norm_rms_epsilon",
         "-1"},
        {"llama.attention.layer_norm_rms_epsilon=f32:nan", "llama.attention.layer_norm_rms_epsilon",
         "nan"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_bad(cases[i].spec);
        expect_refused(cases[i].key, cases[i].value);
    }
}

/* The rest of load_hparams' asserts, each with a value it fails on. */
static void test_the_family_is_refused(void **state)
{
    (void)state;
    static const struct {
        const char *specs[3], *key, *value;
    } cases[] = {
        {{"llama.nextn_predict_layers=u32:3"}, "llama.nextn_predict_layers", "3"},
        {{"llama.expert_count=u32:1025"}, "llama.expert_count", "1025"},
        {{"llama.expert_used_count=u32:2"}, "llama.expert_used_count", "2"},
        {{"llama.expert_count=u32:4", "llama.expert_used_count=u32:5"},
         "llama.expert_used_count",
         "5"},
        {{"llama.expert_count=u32:4", "llama.expert_used_count=u32:0"},
         "llama.expert_used_count",
         "0"},
        {{"llama.expert_group_count=u32:2"}, "llama.expert_group_count", "2"},
        {{"llama.expert_count=u32:4", "llama.expert_used_count=u32:2",
          "llama.expert_group_count=u32:3"},
         "llama.expert_group_count",
         "3"},
        {{"llama.expert_count=u32:4", "llama.expert_used_count=u32:2",
          "llama.expert_group_count=u32:2"},
         "llama.expert_group_used_count",
         "0"},
        {{"llama.posnet.block_count=u32:9"}, "llama.posnet.block_count", "9"},
        {{"llama.rope.scaling.type=str:bogus"}, "llama.rope.scaling.type", "\"bogus\""},
        {{"llama.attention.layer_norm_epsilon=f32:-0.5"},
         "llama.attention.layer_norm_epsilon",
         "-0.5"},
        {{"llama.attention.group_norm_epsilon=f32:nan"},
         "llama.attention.group_norm_epsilon",
         "nan"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = 0;
        while (n < 3 && cases[i].specs[n] != NULL)
            n++;
        char why[256];
        if (ggufset_copy(tiny, bad, cases[i].specs, n, why, sizeof(why)) != 0)
            fail_msg("ggufset_copy: %s", why);
        expect_refused(cases[i].key, cases[i].value);
    }
}

/* The valid neighbours still load: the rules are llama.cpp's, not narrower. */
static void test_valid_values_load(void **state)
{
    (void)state;
    static const char *const specs[] = {
        "llama.context_length=u32:8",
        "llama.attention.layer_norm_rms_epsilon=f32:0",
        "llama.rope.scaling.type=str:yarn",
        "llama.nextn_predict_layers=u32:0",
    };
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        write_bad(specs[i]);
        struct pc_model *m = load_test_model(bad, 64);
        pc_model_free(m);
    }
}

/* `precharge run FILE hi` on bad.gguf: it may refuse the file, never die of a signal. */
static void run_survives(const char *what, const char *ctx)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (freopen("/dev/null", "w", stdout) == NULL || freopen("/dev/null", "w", stderr) == NULL)
            _exit(100);
        execl(precharge, "precharge", "run", "--threads", "1", "-n", "2", "--temperature", "0",
              "--ctx", ctx, bad, "hi", (char *)NULL);
        _exit(101);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
        fail_msg("precharge run on %s (--ctx %s): %s %d", what, ctx,
                 WIFSIGNALED(status) ? "killed by signal" : "exit",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

/* The probe that found the seven: every numeric key of the tiny model's header set in turn to
 * the values that break assumptions, each file loaded and run by the CLI in a process of its own.
 * A context asked for below the sequences' count is raised to it (`--ctx 3` aborted too). */
static void test_no_one_field_change_kills(void **state)
{
    (void)state;
    static const char *const u32s[] = {"0", "1", "3", "513", "2147483647", "4294967295"};
    static const char *const f32s[] = {"-1", "nan", "inf", "0", "1e30"};
    struct gguf_init_params gp = {.no_alloc = true, .ctx = NULL};
    struct gguf_context *g = gguf_init_from_file(tiny, gp);
    assert_non_null(g);
    int runs = 0;
    for (int64_t i = 0; i < gguf_get_n_kv(g); i++) {
        enum gguf_type t = gguf_get_kv_type(g, i);
        const char *const *vals = t == GGUF_TYPE_UINT32 ? u32s : f32s;
        size_t n = t == GGUF_TYPE_UINT32 ? 6 : t == GGUF_TYPE_FLOAT32 ? 5 : 0;
        for (size_t j = 0; j < n; j++) {
            char spec[256];
            snprintf(spec, sizeof(spec), "%s=%s:%s", gguf_get_key(g, i),
                     t == GGUF_TYPE_UINT32 ? "u32" : "f32", vals[j]);
            write_bad(spec);
            run_survives(spec, "64");
            runs++;
        }
    }
    gguf_free(g);
    assert_true(runs >= 60); /* the tiny header has 13 such keys */
    snprintf(bad, sizeof(bad), "%s", tiny);
    run_survives("tiny.gguf", "3");
    snprintf(bad, sizeof(bad), "%s/bad.gguf", dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_asserting_values_are_refused),
        cmocka_unit_test(test_the_family_is_refused),
        cmocka_unit_test(test_valid_values_load),
        cmocka_unit_test(test_no_one_field_change_kills),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
