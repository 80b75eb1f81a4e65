/* test_manifest.c - unit tests for src/store/manifest.c: records and uses, unknown fields, a
 * corrupt or missing manifest rebuilt from the files, unsafe entries, and concurrent writers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "base/file.h"
#include "store/manifest.h"

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

#define FMT(buf, ...)                                                                              \
    do {                                                                                           \
        if ((size_t)snprintf(buf, sizeof(buf), __VA_ARGS__) >= sizeof(buf))                        \
            abort();                                                                               \
    } while (0)

static int seq;

/* This run's scratch directory: a name of its own, so that two runs at once do not meet. */
static char base[PATH_MAX - 400];

static int remove_base(void **state)
{
    (void)state;
    char cmd[PATH_MAX];
    if (base[0] == '\0')
        return 0;
    FMT(cmd, "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : -1;
}

/* A fresh models directory holding the given files (name, size) ... NULL. Static buffer. */
static const char *models_with(const char *first, ...)
{
    static char dir[PATH_MAX - 300];
    if (seq++ == 0) {
        const char *tmp = getenv("PC_TEST_TMP");
        FMT(base, "%s/test_manifest.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        mkdir(tmp && *tmp ? tmp : "/tmp", 0755);
        assert_non_null(mkdtemp(base));
    }
    FMT(dir, "%s/models-%d", base, seq);
    mkdir(dir, 0755);
    va_list ap;
    va_start(ap, first);
    for (const char *name = first; name != NULL; name = va_arg(ap, const char *)) {
        int size = va_arg(ap, int);
        char path[PATH_MAX];
        FMT(path, "%s/%s", dir, name);
        char *buf = calloc(1, (size_t)size + 1);
        memset(buf, 'g', (size_t)size);
        assert_int_equal(pc_file_write_atomic(path, buf, (size_t)size, NULL), PC_OK);
        free(buf);
    }
    va_end(ap);
    return dir;
}

static json_t *read_json(const char *dir)
{
    char path[PATH_MAX];
    FMT(path, "%s/%s", dir, PC_MANIFEST_FILE);
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    assert_non_null(o);
    return o;
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX];
    FMT(path, "%s/%s", dir, name);
    assert_int_equal(pc_file_write_atomic(path, text, strlen(text), NULL), PC_OK);
}

/* Run fn with stderr going to a buffer: the log's warnings. */
static void capture_stderr(void (*fn)(const char *), const char *arg, char *out, size_t size)
{
    char path[PATH_MAX];
    FMT(path, "%s/stderr.txt", arg);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    fn(arg);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, out, size - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
}

static void load_and_free(const char *dir)
{
    struct pc_manifest m;
    assert_int_equal(pc_manifest_load(dir, &m, NULL), PC_OK);
    pc_manifest_free(&m);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_record_and_touch(void **state)
{
    (void)state;
    const char *dir = models_with("a.gguf", 10, "b.gguf", 20, NULL);
    assert_int_equal(pc_manifest_record(dir, "a", HEX_A, NULL), PC_OK);
    assert_int_equal(pc_manifest_touch(dir, "a", NULL), PC_OK);
    assert_int_equal(pc_manifest_touch(dir, "a:latest", NULL), PC_OK);

    struct pc_manifest m;
    assert_int_equal(pc_manifest_load(dir, &m, NULL), PC_OK);
    assert_int_equal(m.n, 2);
    const struct pc_manifest_entry *a = pc_manifest_find(&m, "a");
    assert_non_null(a);
    assert_string_equal(a->checksum, "sha256:" HEX_A);
    assert_string_equal(a->path, "a.gguf");
    assert_int_equal(a->size_bytes, 10);
    assert_int_equal(a->use_count, 2);
    assert_true(a->last_used >= time(NULL) - 60);
    assert_true(a->downloaded_at >= time(NULL) - 60);
    const struct pc_manifest_entry *b = pc_manifest_find(&m, "b");
    assert_non_null(b);
    assert_string_equal(b->checksum, ""); /* never verified */
    assert_int_equal(b->use_count, 0);
    assert_int_equal(b->last_used, 0);
    pc_manifest_free(&m);

    /* The file on disk has the documented shape. */
    json_t *doc = read_json(dir);
    assert_string_equal(json_string_value(json_object_get(doc, "version")), "1.0");
    json_t *e = json_array_get(json_object_get(doc, "models"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "id")), "a");
    assert_string_equal(json_string_value(json_object_get(e, "checksum")), "sha256:" HEX_A);
    const char *ts = json_string_value(json_object_get(e, "last_used"));
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 20); /* 2026-01-30T21:30:00Z */
    assert_int_equal(ts[19], 'Z');
    assert_int_equal(json_integer_value(json_object_get(e, "use_count")), 2);
    json_decref(doc);
}

static void test_touch_errors(void **state)
{
    (void)state;
    const char *dir = models_with("a.gguf", 10, NULL);
    struct pc_error err = {0};
    assert_int_equal(pc_manifest_touch(dir, "nope", &err), PC_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "nope"));
    assert_int_equal(pc_manifest_touch(dir, "../a", &err), PC_ERR_BAD_PATH);
}

static void test_unknown_fields_survive(void **state)
{
    (void)state;
    const char *dir = models_with("a.gguf", 10, NULL);
    write_text(dir, PC_MANIFEST_FILE,
               "{\"version\":\"1.0\",\"future\":{\"x\":1},\"models\":[{\"id\":\"a\",\"path\":"
               "\"a.gguf\",\"size_bytes\":10,\"checksum\":\"sha256:" HEX_B "\","
               "\"downloaded_at\":\"2026-01-30T21:00:00Z\",\"last_used\":\"2026-01-30T21:30:00."
               "5+01:00\",\"use_count\":15,\"pinned\":true}]}");
    struct pc_manifest m;
    assert_int_equal(pc_manifest_load(dir, &m, NULL), PC_OK);
    const struct pc_manifest_entry *a = pc_manifest_find(&m, "a");
    assert_non_null(a);
    assert_int_equal(a->use_count, 15);
    assert_int_equal(a->downloaded_at, 1769806800);           /* 2026-01-30T21:00:00Z */
    assert_int_equal(a->last_used, 1769806800 + 1800 - 3600); /* an hour ahead of UTC */
    assert_string_equal(a->checksum, "sha256:" HEX_B);
    pc_manifest_free(&m);

    assert_int_equal(pc_manifest_touch(dir, "a", NULL), PC_OK);
    json_t *doc = read_json(dir);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "future"), "x")), 1);
    json_t *e = json_array_get(json_object_get(doc, "models"), 0);
    assert_true(json_is_true(json_object_get(e, "pinned")));
    assert_int_equal(json_integer_value(json_object_get(e, "use_count")), 16);
    json_decref(doc);
}

/* A count at the top of JSON's integers stays there: it wrapped to a negative number. */
static void test_use_count_saturates(void **state)
{
    (void)state;
    const char *dir = models_with("a.gguf", 10, NULL);
    write_text(dir, PC_MANIFEST_FILE,
               "{\"version\":\"1.0\",\"models\":[{\"id\":\"a\",\"path\":\"a.gguf\","
               "\"size_bytes\":10,\"use_count\":9223372036854775806}]}");
    for (int i = 0; i < 3; i++)
        assert_int_equal(pc_manifest_touch(dir, "a", NULL), PC_OK);
    json_t *doc = read_json(dir);
    json_t *e = json_array_get(json_object_get(doc, "models"), 0);
    assert_int_equal(json_integer_value(json_object_get(e, "use_count")), INT64_MAX);
    json_decref(doc);
    struct pc_manifest m;
    assert_int_equal(pc_manifest_load(dir, &m, NULL), PC_OK);
    assert_int_equal(pc_manifest_find(&m, "a")->use_count, INT64_MAX);
    pc_manifest_free(&m);
}

static void test_corrupt_manifest_is_rebuilt(void **state)
{
    (void)state;
    const char *dir = models_with("a.gguf", 10, "b.gguf", 20, NULL);
    write_text(dir, PC_MANIFEST_FILE, "{\"version\":\"1.0\",\"models\":[{\"id\":\"a\",");
    char log[4096];
    capture_stderr(load_and_free, dir, log, sizeof(log));
    assert_non_null(strstr(log, "warn"));
    assert_non_null(strstr(log, "is corrupt"));

    json_t *doc = read_json(dir); /* valid again, with both models */
    assert_int_equal(json_array_size(json_object_get(doc, "models")), 2);
    json_decref(doc);
    char keep[PATH_MAX];
    FMT(keep, "%s/%s.corrupt", dir, PC_MANIFEST_FILE);
    struct stat st;
    assert_int_equal(stat(keep, &st), 0);

    /* Not an object at all, or models of the wrong type: the same. */
    write_text(dir, PC_MANIFEST_FILE, "[1,2,3]");
    capture_stderr(load_and_free, dir, log, sizeof(log));
    assert_non_null(strstr(log, "is corrupt"));
    write_text(dir, PC_MANIFEST_FILE, "{\"models\":\"many\"}");
    capture_stderr(load_and_free, dir, log, sizeof(log));
    assert_non_null(strstr(log, "is corrupt"));
    struct pc_manifest m;
    assert_int_equal(pc_manifest_load(dir, &m, NULL), PC_OK);
    assert_int_equal(m.n, 2);
    pc_manifest_free(&m);
}

static void test_missing_manifest_is_rebuilt(void **state)
{
    (void)state;
    const char *dir = models_with("a.gguf", 10, NULL);
    char log[4096];
    capture_stderr(load_and_free, dir, log, sizeof(log));
    assert_non_null(strstr(log, "is missing"));
    json_t *doc = read_json(dir);
    assert_int_equal(json_array_size(json_object_get(doc, "models")), 1);
    json_decref(doc);

    /* An empty store with no manifest is not worth a warning. */
    const char *empty = models_with(NULL);
    capture_stderr(load_and_free, empty, log, sizeof(log));
    assert_string_equal(log, "");
}

static void test_entries_follow_the_files(void **state)
{
    (void)state;
    const char *dir = models_with("a.gguf", 10, NULL);
    write_text(dir, PC_MANIFEST_FILE,
               "{\"version\":\"1.0\",\"models\":[{\"id\":\"gone\",\"size_bytes\":5},"
               "{\"id\":\"../../etc/passwd\"},{\"id\":\"a\",\"size_bytes\":9,\"checksum\":\"" HEX_A
               "\"},{\"id\":\"a\"},{\"no_id\":1}]}");
    struct pc_manifest m;
    char log[4096];
    capture_stderr(load_and_free, dir, log, sizeof(log));
    assert_non_null(strstr(log, "unsafe or repeated id"));
    assert_int_equal(pc_manifest_load(dir, &m, NULL), PC_OK);
    assert_int_equal(m.n, 1);
    assert_string_equal(m.models[0].id, "a");
    assert_int_equal(m.models[0].size_bytes, 10);
    assert_string_equal(m.models[0].checksum, ""); /* the size changed: the checksum is stale */
    pc_manifest_free(&m);

    assert_int_equal(pc_manifest_forget(dir, "a", NULL), PC_OK); /* still on disk: comes back */
    assert_int_equal(pc_manifest_load(dir, &m, NULL), PC_OK);
    assert_int_equal(m.n, 1);
    pc_manifest_free(&m);
}

static void test_missing_dir_is_empty(void **state)
{
    (void)state;
    struct pc_manifest m;
    assert_int_equal(pc_manifest_load("/nonexistent/precharge/models", &m, NULL), PC_OK);
    assert_int_equal(m.n, 0);
    pc_manifest_free(&m);
}

static void test_concurrent_writers_lose_nothing(void **state)
{
    (void)state;
    const char *dir = models_with("a.gguf", 10, "b.gguf", 10, NULL);
    enum { KIDS = 4, TOUCHES = 25 };
    pid_t kids[KIDS];
    for (int k = 0; k < KIDS; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            for (int i = 0; i < TOUCHES; i++)
                if (pc_manifest_touch(dir, k % 2 ? "a" : "b", NULL) != PC_OK)
                    _exit(1);
            _exit(0);
        }
    }
    for (int k = 0; k < KIDS; k++) {
        int st;
        waitpid(kids[k], &st, 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    struct pc_manifest m;
    assert_int_equal(pc_manifest_load(dir, &m, NULL), PC_OK);
    assert_int_equal(pc_manifest_find(&m, "a")->use_count, KIDS / 2 * TOUCHES);
    assert_int_equal(pc_manifest_find(&m, "b")->use_count, KIDS / 2 * TOUCHES);
    pc_manifest_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_and_touch),
        cmocka_unit_test(test_touch_errors),
        cmocka_unit_test(test_unknown_fields_survive),
        cmocka_unit_test(test_use_count_saturates),
        cmocka_unit_test(test_corrupt_manifest_is_rebuilt),
        cmocka_unit_test(test_missing_manifest_is_rebuilt),
        cmocka_unit_test(test_entries_follow_the_files),
        cmocka_unit_test(test_missing_dir_is_empty),
        cmocka_unit_test(test_concurrent_writers_lose_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, remove_base);
}
