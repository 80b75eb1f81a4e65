/* test_cache.c - unit tests for src/store/cache.c: list, get, remove, clear, prune by least
 * recent use, clean by age, stale parts, usage, and ages on the command line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/file.h"
#include "base/lock.h"
#include "store/cache.h"
#include "store/manifest.h"

#define FMT(buf, ...)                                                                              \
    do {                                                                                           \
        if ((size_t)snprintf(buf, sizeof(buf), __VA_ARGS__) >= sizeof(buf))                        \
            abort();                                                                               \
    } while (0)

#define DAY 86400

static int seq;

static void put(const char *dir, const char *name, size_t size)
{
    char path[PATH_MAX];
    FMT(path, "%s/%s", dir, name);
    char *buf = calloc(1, size + 1);
    memset(buf, 'g', size);
    assert_int_equal(pc_file_write_atomic(path, buf, size, NULL), PC_OK);
    free(buf);
}

static bool exists(const char *dir, const char *name)
{
    char path[PATH_MAX];
    FMT(path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0;
}

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

static const char *fresh_models(void)
{
    static char dir[PATH_MAX - 300];
    if (seq++ == 0) {
        const char *tmp = getenv("PC_TEST_TMP");
        FMT(base, "%s/test_cache.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        mkdir(tmp && *tmp ? tmp : "/tmp", 0755);
        assert_non_null(mkdtemp(base));
    }
    FMT(dir, "%s/models-%d", base, seq);
    mkdir(dir, 0755);
    char sub[PATH_MAX];
    FMT(sub, "%s/.downloading", dir);
    mkdir(sub, 0755);
    return dir;
}

/* Models a (10 bytes, used 3 days ago), b (20, used 1 day ago), c (30, used 2 days ago) and
 * d (40, downloaded 40 days ago and never used). */
struct when {
    const char *id;
    int64_t downloaded_ago, used_ago; /* days; -1: never used */
};
static const struct when four[] = {{"a", 50, 3}, {"b", 50, 1}, {"c", 50, 2}, {"d", 40, -1}};

static enum pc_err set_times(struct pc_manifest *m, void *user, struct pc_error *err)
{
    (void)user;
    (void)err;
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < sizeof(four) / sizeof(four[0]); i++) {
        struct pc_manifest_entry *e = pc_manifest_find(m, four[i].id);
        assert_non_null(e);
        e->downloaded_at = now - four[i].downloaded_ago * DAY;
        e->last_used = four[i].used_ago < 0 ? 0 : now - four[i].used_ago * DAY;
        e->use_count = four[i].used_ago < 0 ? 0 : 1;
    }
    return PC_OK;
}

static const char *four_models(void)
{
    const char *dir = fresh_models();
    put(dir, "a.gguf", 10);
    put(dir, "b.gguf", 20);
    put(dir, "c.gguf", 30);
    put(dir, "d.gguf", 40);
    assert_int_equal(pc_manifest_update(dir, set_times, NULL, NULL), PC_OK);
    return dir;
}

struct seen {
    char order[16];
    const char *keep;
};

static bool keep_one(void *user, const char *id)
{
    struct seen *s = user;
    return s->keep != NULL && strcmp(id, s->keep) == 0;
}

static void note_removed(void *user, const struct pc_cache_model *m)
{
    struct seen *s = user;
    size_t len = strlen(s->order);
    if (len + 1 < sizeof(s->order)) { /* the ids here are one letter */
        s->order[len] = m->id[0];
        s->order[len + 1] = '\0';
    }
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_list_and_get(void **state)
{
    (void)state;
    const char *dir = four_models();
    struct pc_cache_model *list;
    size_t n;
    assert_int_equal(pc_cache_list(dir, &list, &n, NULL), PC_OK);
    assert_int_equal(n, 4);
    assert_string_equal(list[0].id, "a");
    assert_string_equal(list[3].id, "d");
    assert_int_equal(list[1].size_bytes, 20);
    assert_non_null(strstr(list[2].path, "/c.gguf"));
    free(list);

    struct pc_cache_model m;
    assert_int_equal(pc_cache_get(dir, "d:latest", &m, NULL), PC_OK);
    assert_int_equal(m.last_used, 0);
    assert_int_equal(pc_cache_last_touch(&m), m.downloaded_at);
    struct pc_error err = {0};
    assert_int_equal(pc_cache_get(dir, "zzz", &m, &err), PC_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "zzz"));
    assert_int_equal(pc_cache_get(dir, "../a", &m, &err), PC_ERR_BAD_PATH);

    assert_int_equal(pc_cache_list("/nonexistent/models", &list, &n, NULL), PC_OK);
    assert_int_equal(n, 0);
    assert_null(list);
}

static void test_remove(void **state)
{
    (void)state;
    const char *dir = four_models();
    put(dir, ".downloading/a.gguf.part", 5);
    assert_int_equal(pc_cache_remove(dir, "a", NULL), PC_OK);
    assert_false(exists(dir, "a.gguf"));
    assert_false(exists(dir, ".downloading/a.gguf.part"));
    struct pc_manifest m;
    assert_int_equal(pc_manifest_load(dir, &m, NULL), PC_OK);
    assert_null(pc_manifest_find(&m, "a"));
    assert_int_equal(m.n, 3);
    pc_manifest_free(&m);

    struct pc_error err = {0};
    assert_int_equal(pc_cache_remove(dir, "a", &err), PC_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "\"a\""));
    assert_int_equal(pc_cache_remove(dir, "../b", &err), PC_ERR_BAD_PATH);
    assert_int_equal(pc_cache_remove(dir, "/etc/passwd", &err), PC_ERR_BAD_PATH);
    assert_true(exists(dir, "b.gguf"));

    /* Being downloaded: refused, and nothing goes. */
    char lock[PATH_MAX];
    FMT(lock, "%s/.downloading/b.gguf.lock", dir);
    int fd;
    assert_int_equal(pc_lock_acquire(lock, PC_LOCK_TRY, &fd, NULL), PC_OK);
    assert_int_equal(pc_cache_remove(dir, "b", &err), PC_ERR_BUSY);
    assert_non_null(strstr(err.msg, "being downloaded"));
    assert_true(exists(dir, "b.gguf"));
    pc_lock_release(fd, lock, true);
    assert_int_equal(pc_cache_remove(dir, "b", NULL), PC_OK);
}

static void test_prune_by_least_recent_use(void **state)
{
    (void)state;
    const char *dir = four_models(); /* 100 bytes; least recent first: d a c b */
    struct seen s = {0};
    struct pc_cache_hooks hooks = {keep_one, note_removed, &s};
    struct pc_cache_freed f;
    assert_int_equal(pc_cache_prune(dir, 60, &hooks, &f, NULL), PC_OK);
    assert_string_equal(s.order, "d");
    assert_int_equal(f.models, 1);
    assert_int_equal(f.model_bytes, 40);
    assert_int_equal(f.remaining_bytes, 60);
    assert_int_equal(pc_cache_prune(dir, 25, &hooks, &f, NULL), PC_OK);
    assert_string_equal(s.order, "dac");
    assert_int_equal(f.remaining_bytes, 20);
    assert_true(exists(dir, "b.gguf"));

    /* A kept model stays even when the size cannot be met. */
    const char *dir2 = four_models();
    struct seen s2 = {.keep = "c"};
    hooks.user = &s2;
    assert_int_equal(pc_cache_prune(dir2, 0, &hooks, &f, NULL), PC_OK);
    assert_string_equal(s2.order, "dab");
    assert_int_equal(f.remaining_bytes, 30);
    assert_true(exists(dir2, "c.gguf"));
}

static void test_clean_by_age(void **state)
{
    (void)state;
    const char *dir = four_models();
    put(dir, ".downloading/old.gguf.part", 7);
    put(dir, ".downloading/new.gguf.part", 3);
    char old[PATH_MAX];
    FMT(old, "%s/.downloading/old.gguf.part", dir);
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= 2 * DAY;
    tv[1] = tv[0];
    assert_int_equal(utimes(old, tv), 0);

    /* Without an age: only the stale part. */
    struct pc_cache_freed f;
    assert_int_equal(pc_cache_clean(dir, 0, NULL, &f, NULL), PC_OK);
    assert_int_equal(f.parts, 1);
    assert_int_equal(f.part_bytes, 7);
    assert_int_equal(f.models, 0);
    assert_int_equal(f.remaining_bytes, 100);
    assert_true(exists(dir, ".downloading/new.gguf.part"));

    /* Unused for 30 days: d (downloaded 40 days ago, never used). */
    struct seen s = {0};
    struct pc_cache_hooks hooks = {NULL, note_removed, &s};
    assert_int_equal(pc_cache_clean(dir, 30 * DAY, &hooks, &f, NULL), PC_OK);
    assert_string_equal(s.order, "d");
    assert_int_equal(pc_cache_clean(dir, (int64_t)(2.5 * DAY), &hooks, &f, NULL), PC_OK);
    assert_string_equal(s.order, "da");
    assert_int_equal(f.remaining_bytes, 50);
}

static void test_clear(void **state)
{
    (void)state;
    const char *dir = four_models();
    struct seen s = {.keep = "b"};
    struct pc_cache_hooks hooks = {keep_one, note_removed, &s};
    struct pc_cache_freed f;
    assert_int_equal(pc_cache_clear(dir, &hooks, &f, NULL), PC_OK);
    assert_int_equal(f.models, 3);
    assert_int_equal(f.model_bytes, 80);
    assert_int_equal(f.remaining_bytes, 20);
    assert_true(exists(dir, "b.gguf"));
    assert_int_equal(pc_cache_clear(dir, NULL, NULL, NULL), PC_OK);
    assert_false(exists(dir, "b.gguf"));
}

static void test_usage(void **state)
{
    (void)state;
    const char *dir = four_models();
    put(dir, ".downloading/x.gguf.part", 5);
    struct pc_cache_usage u;
    assert_int_equal(pc_cache_usage(dir, &u, NULL), PC_OK);
    assert_int_equal(u.models, 4);
    assert_int_equal(u.model_bytes, 100);
    assert_int_equal(u.parts, 1);
    assert_int_equal(u.part_bytes, 5);
    assert_int_equal(u.total_uses, 3);
    assert_true(u.disk_total > 0 && u.disk_free <= u.disk_total);
    assert_true(u.oldest_touch < u.newest_touch);
    assert_true(u.oldest_touch <= (int64_t)time(NULL) - 39 * DAY);
}

static enum pc_err max_counts(struct pc_manifest *m, void *user, struct pc_error *err)
{
    (void)user;
    (void)err;
    for (size_t i = 0; i < m->n; i++)
        m->models[i].use_count = INT64_MAX;
    return PC_OK;
}

/* Counts at the top of JSON's integers add up to that top, not to a wrapped number. */
static void test_usage_saturates(void **state)
{
    (void)state;
    const char *dir = four_models();
    assert_int_equal(pc_manifest_update(dir, max_counts, NULL, NULL), PC_OK);
    struct pc_cache_usage u;
    assert_int_equal(pc_cache_usage(dir, &u, NULL), PC_OK);
    assert_true(u.total_uses == INT64_MAX);
}

static void test_parse_age(void **state)
{
    (void)state;
    assert_int_equal(pc_cache_parse_age("30d"), 30 * DAY);
    assert_int_equal(pc_cache_parse_age("30"), 30 * DAY);
    assert_int_equal(pc_cache_parse_age("2w"), 14 * DAY);
    assert_int_equal(pc_cache_parse_age("12h"), 12 * 3600);
    assert_int_equal(pc_cache_parse_age("90m"), 90 * 60);
    assert_int_equal(pc_cache_parse_age("45s"), 45);
    assert_int_equal(pc_cache_parse_age("1.5d"), 36 * 3600);
    assert_int_equal(pc_cache_parse_age("-1d"), -1);
    assert_int_equal(pc_cache_parse_age("d"), -1);
    assert_int_equal(pc_cache_parse_age("3 days"), -1);
    assert_int_equal(pc_cache_parse_age(""), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_and_get),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_prune_by_least_recent_use),
        cmocka_unit_test(test_clean_by_age),
        cmocka_unit_test(test_clear),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_usage_saturates),
        cmocka_unit_test(test_parse_age),
    };
    return cmocka_run_group_tests(tests, NULL, remove_base);
}
