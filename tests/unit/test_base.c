/* test_base.c - unit tests for src/base: errors, durations, buffers, files, clock formatting,
 * and the worker pool. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/duration.h"
#include "base/err.h"
#include "base/file.h"
#include "base/utf8.h"
#include "base/workers.h"

#include "scratch.h"

static void write_raw(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* --- err ----------------------------------------------------------------------------------- */

static void test_strerror_all_codes_distinct(void **state)
{
    (void)state;
    for (int i = 0; i < PC_ERR__COUNT; i++) {
        const char *a = pc_strerror((enum pc_err)i);
        assert_non_null(a);
        assert_true(strlen(a) > 0);
        assert_non_null(pc_errname((enum pc_err)i));
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(a, pc_strerror((enum pc_err)j));
            assert_string_not_equal(pc_errname((enum pc_err)i), pc_errname((enum pc_err)j));
        }
    }
    assert_string_equal(pc_strerror(PC_OK), "success");
    assert_string_equal(pc_errname(PC_ERR_NOT_FOUND), "PC_ERR_NOT_FOUND");
    /* Out of range still gives text. */
    assert_non_null(pc_strerror(PC_ERR__COUNT));
    assert_non_null(pc_strerror((enum pc_err)1000));
    assert_non_null(pc_errname((enum pc_err)1000));
}

static void test_error_set_formats(void **state)
{
    (void)state;
    struct pc_error e;
    pc_error_clear(&e);
    assert_int_equal(e.code, PC_OK);
    assert_string_equal(e.msg, "");

    assert_int_equal(pc_error_set(&e, PC_ERR_IO, "open \"%s\": %d", "x.gguf", 42), PC_ERR_IO);
    assert_int_equal(e.code, PC_ERR_IO);
    assert_string_equal(e.msg, "open \"x.gguf\": 42");

    pc_error_clear(&e);
    assert_int_equal(e.code, PC_OK);
    assert_string_equal(e.msg, "");
}

static void test_error_set_truncates_long_message(void **state)
{
    (void)state;
    char big[PC_ERROR_MSG_MAX * 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct pc_error e;
    assert_int_equal(pc_error_set(&e, PC_ERR_INVALID, "%s", big), PC_ERR_INVALID);
    assert_int_equal(strlen(e.msg), PC_ERROR_MSG_MAX - 1);

    /* Cut inside a two-byte character: the message ends before it, and stays UTF-8. */
    for (size_t i = 0; i + 1 < sizeof(big); i += 2)
        memcpy(big + i, "\xC3\xA9", 2); /* "é" */
    big[sizeof(big) - 1] = '\0';
    pc_error_set(&e, PC_ERR_INVALID, "%s", big); /* 511 bytes: 255 characters and a half */
    assert_int_equal(strlen(e.msg), PC_ERROR_MSG_MAX - 2);
    assert_memory_equal(e.msg + PC_ERROR_MSG_MAX - 4, "\xC3\xA9", 2);
}

static void test_error_set_null_pointer(void **state)
{
    (void)state;
    assert_int_equal(pc_error_set(NULL, PC_ERR_NOT_FOUND, "model %s", "tiny"), PC_ERR_NOT_FOUND);
    assert_int_equal(pc_error_set(NULL, PC_ERR_BUSY, "busy"), PC_ERR_BUSY);
    pc_error_clear(NULL);
}

/* --- duration ------------------------------------------------------------------------------ */

#define NS_PER_S 1000000000ll

static void test_duration_valid(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t ns;
    } cases[] = {
        {"5m", 5 * 60 * NS_PER_S},
        {"1h30m", 90 * 60 * NS_PER_S},
        {"300ms", 300000000ll},
        {"1.5s", 1500000000ll},
        {"0", 0},
        {"0s", 0},
        {"300", 300 * NS_PER_S},
        {"2.5", 2500000000ll},
        {"+5m", 5 * 60 * NS_PER_S},
        {"10ns", 10},
        {"7us", 7000},
        {"7\xC2\xB5s", 7000}, /* "7µs" */
        {"1h", 3600 * NS_PER_S},
        {"1m30s", 90 * NS_PER_S},
        {"-1", PC_DURATION_FOREVER},
        {"-1s", PC_DURATION_FOREVER},
        {"-5m", PC_DURATION_FOREVER},
        {"-0.5", PC_DURATION_FOREVER},
        /* 2^63 ns does not fit: it saturates, and is not read as "forever" (it once was). */
        {"9223372036854775808ns", INT64_MAX},
        {"9223372036.854775808", INT64_MAX},
        {"99999999999h", INT64_MAX},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pc_error e;
        pc_error_clear(&e);
        int64_t ns = 12345;
        enum pc_err rc = pc_duration_parse(cases[i].in, &ns, &e);
        if (rc != PC_OK)
            fail_msg("\"%s\": %s", cases[i].in, e.msg);
        if (ns != cases[i].ns)
            fail_msg("\"%s\": got %lld, want %lld", cases[i].in, (long long)ns,
                     (long long)cases[i].ns);
    }
}

static void test_duration_invalid(void **state)
{
    (void)state;
    static const char *const cases[] = {"",     "abc",  "5x",     "m",    "-",    "+",
                                        "s5",   "5m3",  "1.5.5s", "inf",  "nan",  "5 m",
                                        "0x10", "0x1h", " 5",     "1e3s", "5m-1s"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pc_error e;
        pc_error_clear(&e);
        int64_t ns = 12345;
        enum pc_err rc = pc_duration_parse(cases[i], &ns, &e);
        if (rc != PC_ERR_INVALID)
            fail_msg("\"%s\": got %s (ns=%lld), want PC_ERR_INVALID", cases[i], pc_errname(rc),
                     (long long)ns);
        assert_int_equal(e.code, PC_ERR_INVALID);
        char quoted[64];
        snprintf(quoted, sizeof(quoted), "\"%s\"", cases[i]);
        if (strstr(e.msg, quoted) == NULL)
            fail_msg("message for \"%s\" does not name it: %s", cases[i], e.msg);
    }
    /* A NULL error pointer is allowed. */
    int64_t ns;
    assert_int_equal(pc_duration_parse("soon", &ns, NULL), PC_ERR_INVALID);
}

static void test_duration_from_seconds(void **state)
{
    (void)state;
    assert_int_equal(pc_duration_from_seconds(0), 0);
    assert_int_equal(pc_duration_from_seconds(1), NS_PER_S);
    assert_int_equal(pc_duration_from_seconds(300), 300 * NS_PER_S);
    assert_int_equal(pc_duration_from_seconds(0.25), 250000000ll);
    assert_true(pc_duration_from_seconds(-1) == PC_DURATION_FOREVER);
    assert_true(pc_duration_from_seconds(-0.001) == PC_DURATION_FOREVER);
    assert_true(pc_duration_from_seconds(1e300) == INT64_MAX);
    /* Found by fuzz_duration: the conversion of 2^63 and of NaN to int64_t was undefined. */
    assert_true(pc_duration_from_seconds(9223372036.854775808) == INT64_MAX);
    assert_true(pc_duration_from_seconds(INFINITY) == INT64_MAX);
    assert_int_equal(pc_duration_from_seconds(NAN), 0);
}

/* --- buf ----------------------------------------------------------------------------------- */

static void test_buf_append(void **state)
{
    (void)state;
    struct pc_buf b = PC_BUF_INIT;
    assert_null(b.data);
    assert_true(pc_buf_append(&b, "", 0));
    assert_non_null(b.data);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");

    assert_true(pc_buf_append(&b, "hello", 5));
    assert_true(pc_buf_appends(&b, ", "));
    assert_true(pc_buf_append(&b, "world!!!", 5));
    assert_int_equal(b.len, 12);
    assert_string_equal(b.data, "hello, world");

    /* Embedded NUL bytes are kept; the buffer stays terminated. */
    assert_true(pc_buf_append(&b, "a\0b", 3));
    assert_int_equal(b.len, 15);
    assert_memory_equal(b.data + 12, "a\0b", 3);
    assert_int_equal(b.data[15], '\0');

    /* Growth past several doublings. */
    pc_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    for (int i = 0; i < 1000; i++)
        assert_true(pc_buf_append(&b, "0123456789", 10));
    assert_int_equal(b.len, 10000);
    assert_true(b.cap > b.len);
    assert_int_equal(strlen(b.data), 10000);
    assert_memory_equal(b.data + 9990, "0123456789", 10);
    pc_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

static void test_buf_printf(void **state)
{
    (void)state;
    struct pc_buf b = PC_BUF_INIT;
    assert_true(pc_buf_printf(&b, "%d-%s", 42, "x"));
    assert_true(pc_buf_printf(&b, "%s", ""));
    assert_true(pc_buf_printf(&b, "[%05.1f]", 3.5));
    assert_string_equal(b.data, "42-x[003.5]");
    assert_int_equal(b.len, strlen("42-x[003.5]"));

    char big[500];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_true(pc_buf_printf(&b, "<%s>", big));
    assert_int_equal(b.len, 11 + 2 + 499);
    assert_int_equal(b.data[b.len - 1], '>');
    assert_int_equal(b.data[b.len], '\0');
    pc_buf_free(&b);
}

static void test_buf_consume(void **state)
{
    (void)state;
    struct pc_buf b = PC_BUF_INIT;
    pc_buf_consume(&b, 3); /* empty buffer: nothing to drop */
    assert_int_equal(b.len, 0);

    assert_true(pc_buf_appends(&b, "abcdef"));
    pc_buf_consume(&b, 0);
    assert_string_equal(b.data, "abcdef");
    pc_buf_consume(&b, 2);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "cdef");
    pc_buf_consume(&b, 4);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_true(pc_buf_appends(&b, "xyz"));
    pc_buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_true(pc_buf_appends(&b, "again"));
    assert_string_equal(b.data, "again");
    pc_buf_free(&b);
}

static void test_buf_steal(void **state)
{
    (void)state;
    struct pc_buf b = PC_BUF_INIT;
    char *s = pc_buf_steal(&b); /* never appended: still a valid empty string */
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);

    assert_true(pc_buf_printf(&b, "id=%d", 7));
    s = pc_buf_steal(&b);
    assert_string_equal(s, "id=7");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    free(s);

    /* The emptied buffer can be used again. */
    assert_true(pc_buf_appends(&b, "more"));
    assert_string_equal(b.data, "more");
    pc_buf_free(&b);
    pc_buf_free(&b); /* freeing twice is harmless */
}

/* --- file ---------------------------------------------------------------------------------- */

static void test_file_write_read_round_trip(void **state)
{
    (void)state;
    char *dir = make_tmpdir("file_rt");
    char path[4200];
    snprintf(path, sizeof(path), "%s/data.bin", dir);

    static const char payload[] = "line one\nline two\0after nul\xff";
    struct pc_error e;
    pc_error_clear(&e);
    assert_int_equal(pc_file_write_atomic(path, payload, sizeof(payload) - 1, &e), PC_OK);

    char *data = NULL;
    size_t len = 0;
    assert_int_equal(pc_file_read(path, 1 << 20, &data, &len, &e), PC_OK);
    assert_int_equal(len, sizeof(payload) - 1);
    assert_memory_equal(data, payload, len);
    assert_int_equal(data[len], '\0');
    free(data);

    /* out_len may be NULL; a max equal to the size is fine. */
    assert_int_equal(pc_file_read(path, sizeof(payload) - 1, &data, NULL, &e), PC_OK);
    assert_memory_equal(data, payload, sizeof(payload) - 1);
    free(data);

    /* An empty file. */
    assert_int_equal(pc_file_write_atomic(path, "", 0, &e), PC_OK);
    assert_int_equal(pc_file_read(path, 10, &data, &len, &e), PC_OK);
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    free(data);

    /* Bigger than one read chunk. */
    size_t big_len = 100000;
    char *big = malloc(big_len);
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)('a' + i % 26);
    assert_int_equal(pc_file_write_atomic(path, big, big_len, NULL), PC_OK);
    assert_int_equal(pc_file_read(path, big_len, &data, &len, NULL), PC_OK);
    assert_int_equal(len, big_len);
    assert_memory_equal(data, big, big_len);
    free(data);
    free(big);
    rm_rf(dir);
}

static void test_file_overwrite_leaves_no_temp(void **state)
{
    (void)state;
    char *dir = make_tmpdir("file_ow");
    char path[4200];
    snprintf(path, sizeof(path), "%s/state.json", dir);

    assert_int_equal(pc_file_write_atomic(path, "first version", 13, NULL), PC_OK);
    assert_int_equal(pc_file_write_atomic(path, "second", 6, NULL), PC_OK);
    assert_int_equal(count_entries(dir), 1);

    char *data = NULL;
    size_t len = 0;
    assert_int_equal(pc_file_read(path, 100, &data, &len, NULL), PC_OK);
    assert_int_equal(len, 6);
    assert_string_equal(data, "second");
    free(data);
    rm_rf(dir);
}

static void test_file_write_into_missing_dir(void **state)
{
    (void)state;
    char *dir = make_tmpdir("file_nodir");
    char path[4200];
    snprintf(path, sizeof(path), "%s/no/such/dir/x", dir);
    struct pc_error e;
    pc_error_clear(&e);
    assert_int_equal(pc_file_write_atomic(path, "x", 1, &e), PC_ERR_IO);
    assert_int_equal(e.code, PC_ERR_IO);
    assert_non_null(strstr(e.msg, "no/such/dir"));
    assert_int_equal(pc_file_write_atomic(path, "x", 1, NULL), PC_ERR_IO);
    assert_int_equal(count_entries(dir), 0);
    rm_rf(dir);
}

static void test_file_read_too_large(void **state)
{
    (void)state;
    char *dir = make_tmpdir("file_big");
    char path[4200];
    snprintf(path, sizeof(path), "%s/big", dir);
    write_raw(path, "0123456789", 10);

    struct pc_error e;
    pc_error_clear(&e);
    char *data = (char *)"sentinel";
    size_t len = 99;
    assert_int_equal(pc_file_read(path, 9, &data, &len, &e), PC_ERR_TOO_LARGE);
    assert_null(data);
    assert_int_equal(len, 0);
    assert_int_equal(e.code, PC_ERR_TOO_LARGE);
    assert_non_null(strstr(e.msg, path));

    assert_int_equal(pc_file_read(path, 0, &data, NULL, NULL), PC_ERR_TOO_LARGE);
    assert_null(data);
    rm_rf(dir);
}

static void test_file_read_missing(void **state)
{
    (void)state;
    char *dir = make_tmpdir("file_missing");
    char path[4200];
    snprintf(path, sizeof(path), "%s/nope.txt", dir);
    struct pc_error e;
    pc_error_clear(&e);
    char *data = (char *)"sentinel";
    assert_int_equal(pc_file_read(path, 100, &data, NULL, &e), PC_ERR_NOT_FOUND);
    assert_null(data);
    assert_int_equal(e.code, PC_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "nope.txt"));
    rm_rf(dir);
}

static void test_file_mkdirs(void **state)
{
    (void)state;
    char *dir = make_tmpdir("file_mkdirs");
    char path[4200];
    struct stat st;

    snprintf(path, sizeof(path), "%s/a/b/c", dir);
    assert_int_equal(pc_file_mkdirs(path, NULL), PC_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* Again: it already exists. */
    assert_int_equal(pc_file_mkdirs(path, NULL), PC_OK);

    /* A trailing slash and a doubled slash. */
    snprintf(path, sizeof(path), "%s/a//d/e/", dir);
    assert_int_equal(pc_file_mkdirs(path, NULL), PC_OK);
    snprintf(path, sizeof(path), "%s/a/d/e", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* A regular file in the way of a parent. */
    snprintf(path, sizeof(path), "%s/file", dir);
    write_raw(path, "x", 1);
    snprintf(path, sizeof(path), "%s/file/sub", dir);
    struct pc_error e;
    pc_error_clear(&e);
    assert_int_equal(pc_file_mkdirs(path, &e), PC_ERR_IO);
    assert_non_null(strstr(e.msg, "file/sub"));
    rm_rf(dir);
}

static void test_file_mkdirs_refuses_regular_file(void **state)
{
    (void)state;
    /* mkdir -p on a path that is a regular file must fail, not report a directory. */
    char *dir = make_tmpdir("file_mkfile");
    char path[4200];
    snprintf(path, sizeof(path), "%s/plain", dir);
    write_raw(path, "x", 1);
    struct pc_error e;
    pc_error_clear(&e);
    assert_int_not_equal(pc_file_mkdirs(path, &e), PC_OK);
    assert_non_null(strstr(e.msg, "plain"));
    rm_rf(dir);
}

static void test_file_name_is_safe(void **state)
{
    (void)state;
    char long200[201], long201[202];
    memset(long200, 'a', 200);
    long200[200] = '\0';
    memset(long201, 'a', 201);
    long201[201] = '\0';

    static const struct {
        const char *name;
        bool safe;
    } cases[] = {
        {"ok-name_1.2", true}, {"tiny", true},       {"qwen2.5-coder:3b", true},
        {"caf\xC3\xA9", true}, /* UTF-8 is allowed */
        {"a.b.c", true},       {"", false},          {".", false},
        {"..", false},         {".hidden", false},   {"a/b", false},
        {"/abs", false},       {"trailing/", false}, {"back\\slash", false},
        {"tab\there", false},  {"new\nline", false}, {"\x01start", false},
        {"end\x1f", false},    {"del\x7f", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (pc_file_name_is_safe(cases[i].name) != cases[i].safe)
            fail_msg("pc_file_name_is_safe(\"%s\") should be %s", cases[i].name,
                     cases[i].safe ? "true" : "false");
    assert_true(pc_file_name_is_safe(long200));
    assert_false(pc_file_name_is_safe(long201));
}

static void test_file_sha256(void **state)
{
    (void)state;
    char *dir = make_tmpdir("file_sha");
    char path[4200];
    char hex[65];
    snprintf(path, sizeof(path), "%s/abc", dir);
    write_raw(path, "abc", 3);
    assert_int_equal(pc_file_sha256(path, hex, NULL), PC_OK);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    snprintf(path, sizeof(path), "%s/empty", dir);
    write_raw(path, "", 0);
    assert_int_equal(pc_file_sha256(path, hex, NULL), PC_OK);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    struct pc_error e;
    pc_error_clear(&e);
    snprintf(path, sizeof(path), "%s/missing", dir);
    assert_int_not_equal(pc_file_sha256(path, hex, &e), PC_OK);
    assert_string_equal(hex, "");
    assert_non_null(strstr(e.msg, "missing"));
    rm_rf(dir);
}

/* --- clock --------------------------------------------------------------------------------- */

static void test_clock_rfc3339(void **state)
{
    (void)state;
    char buf[64];
    assert_ptr_equal(pc_clock_rfc3339(0, buf, sizeof(buf)), buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000000000Z");
    assert_string_equal(pc_clock_rfc3339(1700000000123456789ll, buf, sizeof(buf)),
                        "2023-11-14T22:13:20.123456789Z");
    assert_string_equal(pc_clock_rfc3339(951782400000000001ll, buf, sizeof(buf)),
                        "2000-02-29T00:00:00.000000001Z");
    assert_string_equal(pc_clock_rfc3339(86399999999999ll, buf, sizeof(buf)),
                        "1970-01-01T23:59:59.999999999Z");
}

static void test_clock_sources(void **state)
{
    (void)state;
    /* Wall clock is after 2020-01-01; monotonic never goes backwards. */
    assert_true(pc_clock_wall_ns() > 1577836800ll * NS_PER_S);
    int64_t a = pc_clock_mono_ns();
    int64_t b = pc_clock_mono_ns();
    assert_true(b >= a);
}

/* ---- workers ---- */

struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int inside; /* tasks running */
    bool open;
    atomic_int done;
};

static void wait_at_gate(void *arg)
{
    struct gate *g = arg;
    pthread_mutex_lock(&g->lock);
    g->inside++;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->lock);
    pthread_mutex_unlock(&g->lock);
    atomic_fetch_add(&g->done, 1);
}

/* Tasks that block do not wait for each other: the pool grows to run them all at once, up to
 * its maximum, and freeing the pool runs the queued ones to their end. */
static void test_workers_grow_for_blocking_tasks(void **state)
{
    (void)state;
    struct gate g = {.lock = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    struct pc_workers *w = pc_workers_new(8);
    assert_non_null(w);
    for (int i = 0; i < 10; i++)
        assert_true(pc_workers_submit(w, wait_at_gate, &g));
    pthread_mutex_lock(&g.lock);
    while (g.inside < 8) /* all eight threads are inside at once */
        pthread_cond_wait(&g.cv, &g.lock);
    assert_int_equal(g.inside, 8);
    assert_int_equal(pc_workers_threads(w), 8);
    g.open = true;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.lock);
    pc_workers_free(w);
    assert_int_equal(atomic_load(&g.done), 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_all_codes_distinct),
        cmocka_unit_test(test_error_set_formats),
        cmocka_unit_test(test_error_set_truncates_long_message),
        cmocka_unit_test(test_error_set_null_pointer),
        cmocka_unit_test(test_duration_valid),
        cmocka_unit_test(test_duration_invalid),
        cmocka_unit_test(test_duration_from_seconds),
        cmocka_unit_test(test_buf_append),
        cmocka_unit_test(test_buf_printf),
        cmocka_unit_test(test_buf_consume),
        cmocka_unit_test(test_buf_steal),
        cmocka_unit_test(test_file_write_read_round_trip),
        cmocka_unit_test(test_file_overwrite_leaves_no_temp),
        cmocka_unit_test(test_file_write_into_missing_dir),
        cmocka_unit_test(test_file_read_too_large),
        cmocka_unit_test(test_file_read_missing),
        cmocka_unit_test(test_file_mkdirs),
        cmocka_unit_test(test_file_mkdirs_refuses_regular_file),
        cmocka_unit_test(test_file_name_is_safe),
        cmocka_unit_test(test_file_sha256),
        cmocka_unit_test(test_clock_rfc3339),
        cmocka_unit_test(test_clock_sources),
        cmocka_unit_test(test_workers_grow_for_blocking_tasks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
