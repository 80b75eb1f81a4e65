/* test_store.c - unit tests for src/store: model names, model paths, store listings and copies. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "store/store.h"

#include "scratch.h"

static void write_file(const char *dir, const char *name, size_t size)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < size; i++)
        fputc('g', f);
    assert_int_equal(fclose(f), 0);
}

/* --- pc_store_name ------------------------------------------------------------------------- */

static void test_name_normalises(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"tiny:latest", "tiny"},
        {"tiny", "tiny"},
        {"qwen2.5-coder:3b", "qwen2.5-coder:3b"},
        {"llama3.2:1b-instruct-q4_0", "llama3.2:1b-instruct-q4_0"},
        {"a:b:latest", "a:b"},
        {"latest", "latest"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[256];
        struct pc_error e;
        pc_error_clear(&e);
        enum pc_err rc = pc_store_name(cases[i].in, out, sizeof(out), &e);
        if (rc != PC_OK)
            fail_msg("\"%s\": %s: %s", cases[i].in, pc_errname(rc), e.msg);
        assert_string_equal(out, cases[i].want);
    }
}

static void test_name_refuses(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "",     ":latest", "../x",      "a/b",   ".x",       "x/..",    "..", "a..b",
        "/abs", "a\\b",    "tab\tname", "nl\nx", "bell\x07", "del\x7f", ".",  "../x:latest",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[256];
        struct pc_error e;
        pc_error_clear(&e);
        enum pc_err rc = pc_store_name(cases[i], out, sizeof(out), &e);
        if (rc != PC_ERR_BAD_PATH && rc != PC_ERR_INVALID)
            fail_msg("\"%s\": got %s, want PC_ERR_BAD_PATH or PC_ERR_INVALID", cases[i],
                     pc_errname(rc));
        assert_int_equal(e.code, rc);
        assert_true(strlen(e.msg) > 0);
    }
    /* A NULL error pointer is allowed. */
    char out[256];
    assert_int_not_equal(pc_store_name("../x", out, sizeof(out), NULL), PC_OK);
}

static void test_name_message_names_input(void **state)
{
    (void)state;
    char out[256];
    struct pc_error e;
    pc_error_clear(&e);
    assert_int_equal(pc_store_name("../evil", out, sizeof(out), &e), PC_ERR_BAD_PATH);
    assert_non_null(strstr(e.msg, "../evil"));
    pc_error_clear(&e);
    assert_int_equal(pc_store_name("", out, sizeof(out), &e), PC_ERR_INVALID);
    assert_non_null(strstr(e.msg, "empty"));
}

static void test_name_too_long_for_out(void **state)
{
    (void)state;
    char out[8];
    struct pc_error e;
    pc_error_clear(&e);
    assert_int_equal(pc_store_name("abcdefgh", out, sizeof(out), &e), PC_ERR_INVALID);
    assert_true(strlen(e.msg) > 0);
    assert_int_equal(pc_store_name("abcdefg", out, sizeof(out), &e), PC_OK);
    assert_string_equal(out, "abcdefg");
    assert_int_equal(pc_store_name("abcdefg:latest", out, sizeof(out), &e), PC_OK);
    assert_string_equal(out, "abcdefg");
}

/* --- pc_store_path ------------------------------------------------------------------------- */

static void test_path_found(void **state)
{
    (void)state;
    char *dir = make_tmpdir("store_path");
    write_file(dir, "tiny.gguf", 10);
    write_file(dir, "qwen2.5-coder:3b.gguf", 10);

    char out[4200], want[4200];
    struct pc_error e;
    pc_error_clear(&e);
    assert_int_equal(pc_store_path(dir, "tiny:latest", out, sizeof(out), &e), PC_OK);
    snprintf(want, sizeof(want), "%s/tiny.gguf", dir);
    assert_string_equal(out, want);

    assert_int_equal(pc_store_path(dir, "tiny", out, sizeof(out), &e), PC_OK);
    assert_string_equal(out, want);

    assert_int_equal(pc_store_path(dir, "qwen2.5-coder:3b", out, sizeof(out), &e), PC_OK);
    snprintf(want, sizeof(want), "%s/qwen2.5-coder:3b.gguf", dir);
    assert_string_equal(out, want);
    rm_rf(dir);
}

static void test_path_missing(void **state)
{
    (void)state;
    char *dir = make_tmpdir("store_missing");
    char out[4200];
    struct pc_error e;
    pc_error_clear(&e);
    assert_int_equal(pc_store_path(dir, "ghost:7b", out, sizeof(out), &e), PC_ERR_NOT_FOUND);
    assert_int_equal(e.code, PC_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "ghost:7b"));

    /* A directory with the model's file name is not a model, and the error says what it is. */
    char sub[4200];
    snprintf(sub, sizeof(sub), "%s/dir.gguf", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    pc_error_clear(&e);
    assert_int_equal(pc_store_path(dir, "dir", out, sizeof(out), &e), PC_ERR_MODEL_FORMAT);
    assert_non_null(strstr(e.msg, "dir.gguf\" is a directory, not a model file"));

    /* The models directory itself missing. */
    char gone[4200];
    snprintf(gone, sizeof(gone), "%s/nope", dir);
    assert_int_equal(pc_store_path(gone, "tiny", out, sizeof(out), NULL), PC_ERR_NOT_FOUND);
    rm_rf(dir);
}

/* One rule for links: an entry resolves inside the store or inside an allowed directory. */
static void test_path_links(void **state)
{
    (void)state;
    char dir[4096], other[4096]; /* make_tmpdir's buffer is its own */
    snprintf(dir, sizeof(dir), "%s", make_tmpdir("store_links"));
    snprintf(other, sizeof(other), "%s", make_tmpdir("store_links_other"));
    write_file(dir, "tiny.gguf", 10);
    write_file(other, "far.gguf", 10);
    char link_in[4200], link_out[4200], target[4200], dangling[4200], out[4200];
    snprintf(link_in, sizeof(link_in), "%s/alias.gguf", dir);
    snprintf(link_out, sizeof(link_out), "%s/far.gguf", dir);
    snprintf(target, sizeof(target), "%s/far.gguf", other);
    snprintf(dangling, sizeof(dangling), "%s/gone.gguf", dir);
    assert_int_equal(symlink("tiny.gguf", link_in), 0);
    assert_int_equal(symlink(target, link_out), 0);
    assert_int_equal(symlink("nothing-here", dangling), 0);
    struct pc_error e;

    assert_int_equal(pc_store_path(dir, "alias", out, sizeof(out), NULL), PC_OK);
    pc_error_clear(&e);
    assert_int_equal(pc_store_path(dir, "far", out, sizeof(out), &e), PC_ERR_BAD_PATH);
    assert_non_null(strstr(e.msg, "leads outside the store"));
    assert_null(strstr(e.msg, other)); /* where it leads is not told */
    pc_error_clear(&e);
    assert_int_equal(pc_store_path(dir, "gone", out, sizeof(out), &e), PC_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "a file that is not there"));

    struct pc_store_entry *list = NULL;
    size_t n = 0;
    assert_int_equal(pc_store_list(dir, &list, &n, NULL), PC_OK);
    assert_int_equal(n, 2); /* alias and tiny */
    free(list);

    const char *allow[] = {other};
    pc_store_allow_dirs(allow, 1);
    assert_int_equal(pc_store_path(dir, "far", out, sizeof(out), NULL), PC_OK);
    assert_int_equal(pc_store_list(dir, &list, &n, NULL), PC_OK);
    assert_int_equal(n, 3);
    free(list);
    pc_store_allow_dirs(NULL, 0);
    assert_int_equal(pc_store_path(dir, "far", out, sizeof(out), NULL), PC_ERR_BAD_PATH);
    rm_rf(dir);
    rm_rf(other);
}

static void test_path_refuses_bad_name(void **state)
{
    (void)state;
    char *dir = make_tmpdir("store_bad");
    /* Even when the target exists, a name that climbs out is refused. */
    write_file(dir, "secret.gguf", 1);
    char models[4200];
    snprintf(models, sizeof(models), "%s/models", dir);
    assert_int_equal(mkdir(models, 0755), 0);

    char out[4200];
    struct pc_error e;
    pc_error_clear(&e);
    enum pc_err rc = pc_store_path(models, "../secret", out, sizeof(out), &e);
    assert_true(rc == PC_ERR_BAD_PATH || rc == PC_ERR_INVALID);
    assert_true(strlen(e.msg) > 0);
    rc = pc_store_path(models, "", out, sizeof(out), &e);
    assert_true(rc == PC_ERR_BAD_PATH || rc == PC_ERR_INVALID);
    rm_rf(dir);
}

static void test_path_too_long_for_out(void **state)
{
    (void)state;
    char *dir = make_tmpdir("store_long");
    write_file(dir, "tiny.gguf", 1);
    char out[8];
    assert_int_equal(pc_store_path(dir, "tiny", out, sizeof(out), NULL), PC_ERR_INVALID);
    rm_rf(dir);
}

/* --- pc_store_list ------------------------------------------------------------------------- */

static void test_list_sorted_gguf_only(void **state)
{
    (void)state;
    char *dir = make_tmpdir("store_list");
    write_file(dir, "zeta.gguf", 3);
    write_file(dir, "alpha.gguf", 11);
    write_file(dir, "mid:7b.gguf", 0);
    write_file(dir, ".hidden.gguf", 5);
    write_file(dir, "notes.txt", 5);
    write_file(dir, "model.gguf.part", 5);
    write_file(dir, "model.GGUF", 5);
    write_file(dir, "gguf", 5);
    char sub[4200];
    snprintf(sub, sizeof(sub), "%s/subdir.gguf", dir);
    assert_int_equal(mkdir(sub, 0755), 0);

    struct pc_store_entry *list = NULL;
    size_t n = 99;
    struct pc_error e;
    pc_error_clear(&e);
    assert_int_equal(pc_store_list(dir, &list, &n, &e), PC_OK);
    assert_int_equal(n, 3);
    assert_non_null(list);
    assert_string_equal(list[0].name, "alpha");
    assert_int_equal(list[0].size, 11);
    assert_string_equal(list[1].name, "mid:7b");
    assert_int_equal(list[1].size, 0);
    assert_string_equal(list[2].name, "zeta");
    assert_int_equal(list[2].size, 3);

    char want[4200];
    snprintf(want, sizeof(want), "%s/alpha.gguf", dir);
    assert_string_equal(list[0].path, want);
    struct stat st;
    assert_int_equal(stat(want, &st), 0);
    assert_true(list[0].mtime_ns == (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
    free(list);
    rm_rf(dir);
}

static void test_list_empty_and_missing(void **state)
{
    (void)state;
    char *dir = make_tmpdir("store_empty");
    struct pc_store_entry *list = NULL;
    size_t n = 99;
    assert_int_equal(pc_store_list(dir, &list, &n, NULL), PC_OK);
    assert_int_equal(n, 0);
    free(list);

    char gone[4200];
    snprintf(gone, sizeof(gone), "%s/does/not/exist", dir);
    list = (struct pc_store_entry *)&n; /* sentinel: must be reset */
    n = 99;
    struct pc_error e;
    pc_error_clear(&e);
    assert_int_equal(pc_store_list(gone, &list, &n, &e), PC_OK);
    assert_int_equal(n, 0);
    assert_null(list);
    rm_rf(dir);
}

static void test_copy_links_and_replaces(void **state)
{
    (void)state;
    char *dir = make_tmpdir("store_copy");
    write_file(dir, "tiny.gguf", 10);
    write_file(dir, "other.gguf", 3);
    struct pc_error e;
    pc_error_clear(&e);
    assert_int_equal(pc_store_copy(dir, "tiny:latest", "copy", &e), PC_OK);
    /* An existing destination is replaced; the source to itself is a no-op. */
    assert_int_equal(pc_store_copy(dir, "tiny", "other:latest", &e), PC_OK);
    assert_int_equal(pc_store_copy(dir, "tiny", "tiny", &e), PC_OK);

    struct pc_store_entry *list = NULL;
    size_t n = 0;
    assert_int_equal(pc_store_list(dir, &list, &n, &e), PC_OK);
    assert_int_equal(n, 3); /* copy, other, tiny: no temporary file left */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(list[i].size, 10);
    free(list);
    char a[4200], b[4200];
    struct stat sa, sb;
    snprintf(a, sizeof(a), "%s/tiny.gguf", dir);
    snprintf(b, sizeof(b), "%s/copy.gguf", dir);
    assert_int_equal(stat(a, &sa), 0);
    assert_int_equal(stat(b, &sb), 0);
    assert_int_equal(sa.st_ino, sb.st_ino); /* a hard link on one file system */
    rm_rf(dir);
}

static void test_copy_refuses(void **state)
{
    (void)state;
    char *dir = make_tmpdir("store_copy_bad");
    write_file(dir, "tiny.gguf", 10);
    struct pc_error e;
    pc_error_clear(&e);
    assert_int_equal(pc_store_copy(dir, "none", "x", &e), PC_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "none"));
    assert_int_not_equal(pc_store_copy(dir, "tiny", "../x", &e), PC_OK);
    assert_int_not_equal(pc_store_copy(dir, "tiny", "", &e), PC_OK);
    struct pc_store_entry *list = NULL;
    size_t n = 0;
    assert_int_equal(pc_store_list(dir, &list, &n, &e), PC_OK);
    assert_int_equal(n, 1);
    free(list);
    rm_rf(dir);
}

static void test_list_not_a_directory(void **state)
{
    (void)state;
    char *dir = make_tmpdir("store_notdir");
    write_file(dir, "file", 1);
    char path[4200];
    snprintf(path, sizeof(path), "%s/file", dir);
    struct pc_store_entry *list = NULL;
    size_t n = 99;
    struct pc_error e;
    pc_error_clear(&e);
    assert_int_equal(pc_store_list(path, &list, &n, &e), PC_ERR_IO);
    assert_null(list);
    assert_int_equal(n, 0);
    assert_non_null(strstr(e.msg, path));
    rm_rf(dir);
}

static void test_list_many(void **state)
{
    (void)state;
    /* More entries than the first allocation holds. */
    char *dir = make_tmpdir("store_many");
    for (int i = 39; i >= 0; i--) {
        char name[32];
        snprintf(name, sizeof(name), "m%02d.gguf", i);
        write_file(dir, name, (size_t)i);
    }
    struct pc_store_entry *list = NULL;
    size_t n = 0;
    assert_int_equal(pc_store_list(dir, &list, &n, NULL), PC_OK);
    assert_int_equal(n, 40);
    for (size_t i = 0; i < n; i++) {
        char want[32];
        snprintf(want, sizeof(want), "m%02zu", i);
        assert_string_equal(list[i].name, want);
        assert_int_equal(list[i].size, i);
    }
    free(list);
    rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_normalises),
        cmocka_unit_test(test_name_refuses),
        cmocka_unit_test(test_name_message_names_input),
        cmocka_unit_test(test_name_too_long_for_out),
        cmocka_unit_test(test_path_found),
        cmocka_unit_test(test_path_missing),
        cmocka_unit_test(test_path_links),
        cmocka_unit_test(test_path_refuses_bad_name),
        cmocka_unit_test(test_path_too_long_for_out),
        cmocka_unit_test(test_list_sorted_gguf_only),
        cmocka_unit_test(test_list_empty_and_missing),
        cmocka_unit_test(test_copy_links_and_replaces),
        cmocka_unit_test(test_copy_refuses),
        cmocka_unit_test(test_list_not_a_directory),
        cmocka_unit_test(test_list_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
