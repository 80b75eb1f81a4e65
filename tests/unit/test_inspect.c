/* test_inspect.c - reading a GGUF's header without loading it: the tiny model's shape, its
 * parameter count against llama.cpp's, and the errors for files that are not models. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "base/file.h"
#include "catalog/details.h"
#include "catalog/inspect.h"
#include "engine/engine.h"
#include "gguf.h"
#include "testmodel.h"

static char dir[PATH_MAX];
static char model_path[PATH_MAX + 32];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s", test_dir("inspect"));
    snprintf(model_path, sizeof(model_path), "%s/tiny.gguf", dir);
    make_tiny_model(model_path);
    pc_engine_init(NULL, "none");
    return 0;
}

static void inspect_ok(const char *path, struct pc_gguf_info *g)
{
    struct pc_error err = {0};
    enum pc_err rc = pc_gguf_inspect(path, g, &err);
    if (rc != PC_OK)
        fail_msg("pc_gguf_inspect: %s", err.msg);
}

static void test_tiny_model_header(void **state)
{
    (void)state;
    struct pc_gguf_info g;
    inspect_ok(model_path, &g);
    assert_string_equal(g.arch, "llama");
    assert_int_equal(g.n_layer, 2);
    assert_int_equal(g.n_embd, 64);
    assert_int_equal(g.n_head, 4);
    assert_int_equal(g.n_head_kv, 2);
    assert_int_equal(g.n_ff, 128);
    assert_int_equal(g.context_length, 2048);
    assert_int_equal(g.n_vocab, 32000);
    assert_true(g.has_chat_template);
    assert_string_equal(g.quantization, "Q8_0");
    assert_true(g.tensor_bytes > 0);
    assert_true(g.tensor_bytes <= g.file_size);
    assert_true(g.parameter_size[0] != '\0');

    struct pc_error err = {0};
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(pc_file_read(model_path, 64u << 20, &data, &len, &err), PC_OK);
    free(data);
    assert_int_equal(g.file_size, len);
}

static void test_params_match_the_engine(void **state)
{
    (void)state;
    struct pc_gguf_info g;
    inspect_ok(model_path, &g);

    struct pc_model *m = NULL;
    struct pc_error err = {0};
    struct pc_model_params p = pc_model_default_params();
    p.n_ctx = 256;
    p.n_threads = 1;
    if (pc_model_load(model_path, &p, &m, &err) != PC_OK)
        fail_msg("pc_model_load: %s", err.msg);
    const struct pc_model_info *in = pc_model_info(m);
    assert_int_equal(g.n_params, in->n_params);
    assert_string_equal(g.parameter_size, in->parameter_size);
    pc_model_free(m);
}

static void test_f16_model(void **state)
{
    (void)state;
    char path[PATH_MAX + 32], cmd[3 * PATH_MAX];
    const char *mk = getenv("PC_TEST_MKMODEL");
    snprintf(path, sizeof(path), "%s/tiny-f16.gguf", dir);
    snprintf(cmd, sizeof(cmd), "'%s' --preset tiny --type f16 -q -o '%s'", mk ? mk : "mkmodel",
             path);
    assert_int_equal(system(cmd), 0);

    struct pc_gguf_info g, q8;
    inspect_ok(path, &g);
    inspect_ok(model_path, &q8);
    assert_string_equal(g.quantization, "F16");
    /* The same shape, in more bytes. */
    assert_int_equal(g.n_params, q8.n_params);
    assert_true(g.tensor_bytes > q8.tensor_bytes);
}

static void expect_error(const char *path, enum pc_err code)
{
    struct pc_gguf_info g;
    struct pc_error err = {0};
    assert_int_equal(pc_gguf_inspect(path, &g, &err), code);
    assert_int_equal(err.code, code);
    if (strstr(err.msg, path) == NULL)
        fail_msg("want the path \"%s\" in \"%s\"", path, err.msg);
}

static void test_bad_files(void **state)
{
    (void)state;
    char path[PATH_MAX + 32];
    struct pc_error err = {0};

    snprintf(path, sizeof(path), "%s/text.gguf", dir);
    assert_int_equal(pc_file_write_atomic(path, "hello, world\n", 13, &err), PC_OK);
    expect_error(path, PC_ERR_MODEL_FORMAT);

    snprintf(path, sizeof(path), "%s/empty.gguf", dir);
    assert_int_equal(pc_file_write_atomic(path, "", 0, &err), PC_OK);
    expect_error(path, PC_ERR_MODEL_FORMAT);

    /* The right magic, cut short in the header. */
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(pc_file_read(model_path, 64u << 20, &data, &len, &err), PC_OK);
    snprintf(path, sizeof(path), "%s/cut.gguf", dir);
    assert_int_equal(pc_file_write_atomic(path, data, 64, &err), PC_OK);
    expect_error(path, PC_ERR_MODEL_FORMAT);

    /* A whole header with half the weights, as an interrupted download leaves it. */
    snprintf(path, sizeof(path), "%s/half.gguf", dir);
    assert_int_equal(pc_file_write_atomic(path, data, len / 2, &err), PC_OK);
    free(data);
    expect_error(path, PC_ERR_MODEL_FORMAT);

    /* A directory is not a model either. */
    expect_error(dir, PC_ERR_MODEL_FORMAT);

    snprintf(path, sizeof(path), "%s/missing.gguf", dir);
    expect_error(path, PC_ERR_NOT_FOUND);
}

/* Found by fuzz_gguf: a header that is not UTF-8, or holds a NaN, made /api/show answer "out of
 * memory"; a long name was cut inside a character. Each comes out as valid JSON now. */
static void test_header_text_is_valid_json(void **state)
{
    (void)state;
    char path[PATH_MAX + 32], name[200];
    snprintf(path, sizeof(path), "%s/odd.gguf", dir);
    memset(name, 'a', 126);
    snprintf(name + 126, sizeof(name) - 126, "\xC3\xA9tail"); /* "é" across byte 127 */
    struct gguf_context *g = gguf_init_empty();
    gguf_set_val_str(g, "general.architecture", "llama");
    gguf_set_val_str(g, "general.name", name);
    gguf_set_val_str(g, "odd.\xE7key", "value");
    gguf_set_val_str(g, "odd.text", "bad \xFF byte");
    gguf_set_val_f32(g, "odd.nan", NAN);
    gguf_set_val_f32(g, "odd.inf", INFINITY);
    assert_true(gguf_write_to_file(g, path, true));
    gguf_free(g);

    struct pc_gguf_info info;
    inspect_ok(path, &info);
    assert_int_equal(strlen(info.name), 126);
    assert_true(strspn(info.name, "a") == 126);

    json_t *meta = NULL;
    struct pc_error err = {0};
    if (pc_gguf_metadata(path, &meta, &err) != PC_OK)
        fail_msg("pc_gguf_metadata: %s", err.msg);
    assert_string_equal(json_string_value(json_object_get(meta, "odd.\xEF\xBF\xBDkey")), "value");
    assert_string_equal(json_string_value(json_object_get(meta, "odd.text")),
                        "bad \xEF\xBF\xBD byte");
    assert_true(json_is_null(json_object_get(meta, "odd.nan")));
    assert_true(json_is_null(json_object_get(meta, "odd.inf")));
    char *s = json_dumps(meta, JSON_COMPACT);
    assert_non_null(s);
    free(s);
    json_decref(meta);
}

/* The listings' details come from the header once per file identity: a file whose bytes change
 * while its size and modification time stay is not read again (the listing never re-reads a
 * vocabulary); a new modification time reads it again. */
static void test_details_read_once_per_identity(void **state)
{
    (void)state;
    char path[PATH_MAX + 48];
    snprintf(path, sizeof(path), "%s/details.gguf", dir);
    make_tiny_model(path);
    struct pc_gguf_details d = {0}, again = {0};
    struct pc_error err = {0};
    assert_int_equal(pc_gguf_details(path, &d, &err), PC_OK);
    assert_string_equal(d.family, "llama");
    assert_true(d.parameter_size[0] != '\0');
    assert_true(d.quantization[0] != '\0');

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    /* Spoil the magic in place, then give the file back its modification time. */
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "JUNK", 4, 0), 4);
    close(fd);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    assert_int_equal(pc_gguf_details(path, &again, &err), PC_OK);
    assert_memory_equal(&again, &d, sizeof(d));

    times[1].tv_sec -= 10;
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    assert_int_equal(pc_gguf_details(path, &again, &err), PC_ERR_MODEL_FORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_model_header),
        cmocka_unit_test(test_params_match_the_engine),
        cmocka_unit_test(test_f16_model),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_header_text_is_valid_json),
        cmocka_unit_test(test_details_read_once_per_identity),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
