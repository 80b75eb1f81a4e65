/* test_estimate.c - the memory estimate against what llama.cpp allocates in a real load, on the
 * tiny, tinyllama and qwen3b presets at several context sizes: within 10 %. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "testmodel.h"

/* Big presets are deterministic, so they are made once and kept between runs. */
static const char *preset(const char *name)
{
    static char path[PATH_MAX + 64];
    const char *tmp = getenv("PC_TEST_TMP");
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/presets", tmp ? tmp : "/tmp");
    snprintf(path, sizeof(path), "%s/%s.gguf", dir, name);
    if (access(path, R_OK) == 0)
        return path;
    const char *mk = getenv("PC_TEST_MKMODEL");
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && '%s' --preset %s -q -o '%s'", dir,
             mk ? mk : "mkmodel", name, path);
    if (system(cmd) != 0)
        fail_msg("cannot make the %s preset: %s", name, cmd);
    return path;
}

static void check(const char *path, uint32_t n_ctx, bool repack)
{
    struct pc_model_params p = pc_model_default_params();
    p.n_ctx = n_ctx;
    p.repack = repack;
    p.n_threads = 1;
    struct pc_estimate est;
    struct pc_error err = {0};
    assert_int_equal(pc_model_estimate(path, &p, &est, &err), PC_OK);

    struct pc_model *m = NULL;
    assert_int_equal(pc_model_load(path, &p, &m, &err), PC_OK);
    const struct pc_model_info *in = pc_model_info(m);
    double real = (double)(in->weights_bytes + in->kv_bytes + in->compute_bytes);
    double guess = (double)(est.host_total + est.device_total);
    double off = (guess - real) / real;
    print_message("%s ctx %u repack %d: estimate %.1f MiB, real %.1f MiB (%+.2f%%)\n", path, n_ctx,
                  repack, guess / 1048576.0, real / 1048576.0, off * 100);
    assert_true(off < 0.10 && off > -0.10);
    /* The parts, too: KV to the 0.01 MiB that llama.cpp's report carries, weights within the
     * same bound as the whole. */
    double kv_off = (double)(est.kv_host + est.kv_device) - (double)in->kv_bytes;
    assert_true(kv_off < 0.01 * 1048576 && kv_off > -0.01 * 1048576);
    double w = (double)(est.weights_host + est.weights_device);
    assert_true(w > 0.9 * (double)in->weights_bytes && w < 1.1 * (double)in->weights_bytes);
    pc_model_free(m);
}

static void test_tiny(void **state)
{
    (void)state;
    const char *dir = test_dir("estimate");
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/tiny.gguf", dir);
    make_tiny_model(path);
    check(path, 256, true);
    check(path, 2048, true);
}

static void test_tinyllama(void **state)
{
    (void)state;
    const char *path = preset("tinyllama");
    check(path, 512, true);
    check(path, 2048, true);
    check(path, 4096, true);
    check(path, 4096, false); /* without the repacked copy */
}

static void test_qwen3b(void **state)
{
    (void)state;
    const char *path = preset("qwen3b");
    check(path, 1024, true);
    check(path, 8192, true);
}

static void test_bad_file(void **state)
{
    (void)state;
    struct pc_model_params p = pc_model_default_params();
    struct pc_estimate est;
    struct pc_error err = {0};
    assert_int_equal(pc_model_estimate("/nonexistent/x.gguf", &p, &est, &err), PC_ERR_MODEL_FORMAT);
    assert_non_null(strstr(err.msg, "/nonexistent/x.gguf"));
}

int main(void)
{
    pc_engine_init(NULL, "none");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_file),
        cmocka_unit_test(test_tiny),
        cmocka_unit_test(test_tinyllama),
        cmocka_unit_test(test_qwen3b),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
