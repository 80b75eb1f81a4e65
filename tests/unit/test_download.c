/* test_download.c - unit tests for src/store/download.c against a real nginx on loopback: fresh,
 * resumed and shared downloads, checksums, HTTP errors, retries with backoff, stalls, a killed
 * downloader, unsafe ids, and the cleanup of stale parts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/file.h"
#include "base/lock.h"
#include "store/cache.h"
#include "store/download.h"
#include "store/manifest.h"
#include "store/update.h"
#include "nginx.h"
#include "testmodel.h"

#define MODEL "m.gguf"
#define MIB (1024 * 1024)

static struct test_nginx ngx;
static char base[PATH_MAX];
static char model_sha[65];
static uint64_t model_size;
static int dir_seq;

/* ---- fixtures ---------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    (void)test_dir; /* a fixed name: a second run of this suite at once would remove ours */
    const char *tmp = getenv("PC_TEST_TMP");
    NGX_FMT(base, "%s/test_download.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    mkdir(tmp && *tmp ? tmp : "/tmp", 0755);
    if (mkdtemp(base) == NULL || chmod(base, 0755) != 0) /* nginx's worker reads below it */
        return -1;
    if (nginx_start(&ngx, base) != 0) {
        fprintf(stderr, "cannot start %s\n", NGINX_BIN);
        return -1;
    }
    char path[PATH_MAX];
    NGX_FMT(path, "%s/%s", ngx.www, MODEL);
    make_tiny_model(path);
    struct stat st;
    if (stat(path, &st) != 0 || pc_file_sha256(path, model_sha, NULL) != PC_OK)
        return -1;
    model_size = (uint64_t)st.st_size;
    return model_size > 2 * MIB ? 0 : -1; /* the slow tests cut it after 1 MiB */
}

static int group_teardown(void **state)
{
    (void)state;
    nginx_stop(&ngx);
    char cmd[PATH_MAX + 16];
    NGX_FMT(cmd, "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : -1;
}

/* A fresh, empty models directory. Returns a static buffer. */
static const char *fresh_models(void)
{
    static char dir[PATH_MAX];
    if ((size_t)snprintf(dir, sizeof(dir), "%s/models-%d", base, ++dir_seq) >= sizeof(dir))
        abort();
    mkdir(dir, 0755);
    return dir;
}

/* The URL of file at location, tagged with this test's number so that its requests can be told
 * apart in the access log. */
static void url_of(char *out, size_t size, const char *location, const char *file)
{
    snprintf(out, size, "%s%s%s?t=%d", ngx.url, location, file, dir_seq);
}

static struct pc_download_opts opts_for(const char *url, const char *models, const char *sha)
{
    struct pc_download_opts o;
    assert_int_equal(pc_download_opts_init(&o, NULL), PC_OK);
    o.url = url;
    o.models_dir = models;
    o.id = "m";
    o.sha256 = sha;
    o.backoff_ns = 50 * 1000000LL;
    o.stall_ns = 1000000000LL;
    return o;
}

static uint64_t size_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void path_in(char *out, size_t size, const char *models, const char *name)
{
    if ((size_t)snprintf(out, size, "%s/%s", models, name) >= size)
        abort();
}

/* The model arrived whole: right bytes, recorded, no part or lock left. */
static void assert_installed(const char *models)
{
    char path[PATH_MAX], hex[65];
    path_in(path, sizeof(path), models, "m.gguf");
    assert_int_equal(pc_file_sha256(path, hex, NULL), PC_OK);
    assert_string_equal(hex, model_sha);
    path_in(path, sizeof(path), models, ".downloading/m.gguf.part");
    assert_false(exists(path));
    path_in(path, sizeof(path), models, ".downloading/m.gguf.lock");
    assert_false(exists(path));

    struct pc_manifest m;
    assert_int_equal(pc_manifest_load(models, &m, NULL), PC_OK);
    const struct pc_manifest_entry *e = pc_manifest_find(&m, "m");
    assert_non_null(e);
    assert_string_equal(e->checksum + 7, model_sha);
    assert_int_equal(e->size_bytes, model_size);
    assert_true(e->downloaded_at > 0);
    pc_manifest_free(&m);
}

/* This test's requests for path (as "/slow/m.gguf") that answered status (as " 206 "), once
 * there are at least want of them (or a bounded wait has passed). */
static int requests(const char *path, const char *status, int want)
{
    char what[256];
    snprintf(what, sizeof(what), "GET %s?t=%d ", path, dir_seq);
    return nginx_count_at_least(&ngx, (const char *[]){what, status, NULL}, want);
}

/* Progress seen by a test, and what it does at given points. */
struct watch {
    int phases[8];       /* how often each phase was reported */
    char retry_msg[512]; /* the first "retrying" status */
    uint64_t max_completed;
    uint64_t total;
    bool bad_order; /* completed went backwards within one attempt */
    int last_attempt;
    uint64_t last_completed;
    /* actions */
    int kill_worker_at;    /* SIGKILL nginx's worker once this many bytes are in; 0: never */
    int stop_worker_at;    /* SIGSTOP it (a stall); SIGCONT on the retry */
    bool restart_on_retry; /* start nginx again when a retry is announced */
    int cancel_at;
    atomic_bool cancel;
    pid_t stopped;
};

static void on_progress(void *user, const struct pc_download_progress *p)
{
    struct watch *w = user;
    w->phases[p->phase]++;
    if (p->completed > w->max_completed)
        w->max_completed = p->completed;
    if (p->total)
        w->total = p->total;
    if (p->phase == PC_DL_DOWNLOADING) {
        if (p->attempt == w->last_attempt && p->completed < w->last_completed)
            w->bad_order = true;
        w->last_attempt = p->attempt;
        w->last_completed = p->completed;
    }
    if (p->phase == PC_DL_RETRYING && w->retry_msg[0] == '\0')
        snprintf(w->retry_msg, sizeof(w->retry_msg), "%s", p->status);
    if (w->kill_worker_at && p->completed >= (uint64_t)w->kill_worker_at) {
        w->kill_worker_at = 0;
        kill(nginx_worker(&ngx), SIGKILL);
    }
    if (w->stop_worker_at && p->completed >= (uint64_t)w->stop_worker_at) {
        w->stop_worker_at = 0;
        w->stopped = nginx_worker(&ngx);
        kill(w->stopped, SIGSTOP);
    }
    if (p->phase == PC_DL_RETRYING && w->stopped > 0) {
        kill(w->stopped, SIGCONT);
        w->stopped = 0;
    }
    if (p->phase == PC_DL_RETRYING && w->restart_on_retry) {
        w->restart_on_retry = false;
        assert_int_equal(nginx_launch(&ngx), 0);
    }
    if (w->cancel_at && p->completed >= (uint64_t)w->cancel_at)
        atomic_store(&w->cancel, true);
}

static void watch_opts(struct pc_download_opts *o, struct watch *w)
{
    atomic_init(&w->cancel, false);
    o->progress = on_progress;
    o->user = w;
    o->cancel = &w->cancel;
}

/* ---- plain downloads --------------------------------------------------------------------- */

static void test_download_verified(void **state)
{
    (void)state;
    const char *models = fresh_models();
    char url[256];
    url_of(url, sizeof(url), "/", MODEL);
    struct watch w = {0};
    struct pc_download_opts o = opts_for(url, models, model_sha);
    watch_opts(&o, &w);
    struct pc_error err = {0};
    assert_int_equal(pc_download(&o, &err), PC_OK);
    assert_installed(models);
    assert_int_equal(w.phases[PC_DL_DONE], 1);
    assert_int_equal(w.phases[PC_DL_VERIFYING], 1);
    assert_int_equal(w.phases[PC_DL_RETRYING], 0);
    assert_int_equal(w.total, model_size);
    assert_false(w.bad_order);

    /* Once there, it is not fetched again. */
    assert_int_equal(requests("/m.gguf", " 200 ", 1), 1);
    memset(&w, 0, sizeof(w));
    watch_opts(&o, &w);
    assert_int_equal(pc_download(&o, &err), PC_OK);
    assert_int_equal(requests("/m.gguf", " 200 ", 1), 1);
    assert_int_equal(w.phases[PC_DL_DONE], 1);
}

static void test_unknown_checksum_is_recorded(void **state)
{
    (void)state;
    const char *models = fresh_models();
    char url[256];
    url_of(url, sizeof(url), "/", MODEL);
    struct pc_download_opts o = opts_for(url, models, "");
    struct pc_error err = {0};
    assert_int_equal(pc_download(&o, &err), PC_OK);
    assert_installed(models);
}

static void test_present_with_other_checksum_is_replaced(void **state)
{
    (void)state;
    const char *models = fresh_models();
    char path[PATH_MAX], url[256];
    path_in(path, sizeof(path), models, "m.gguf");
    assert_int_equal(pc_file_write_atomic(path, "old bytes", 9, NULL), PC_OK);
    url_of(url, sizeof(url), "/", MODEL);
    struct pc_download_opts o = opts_for(url, models, model_sha);
    struct pc_error err = {0};
    assert_int_equal(pc_download(&o, &err), PC_OK);
    assert_installed(models);
}

/* Flip one byte in the middle of path: the same size, other contents. */
static void corrupt(const char *path)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, (long)(model_size / 2), SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, (long)(model_size / 2), SEEK_SET), 0);
    fputc(c ^ 0xff, f);
    assert_int_equal(fclose(f), 0);
}

/* Seed 002's step 1: a model in the store is read and checked against the manifest before it is
 * used, with progress, and downloaded again when it differs, whether the catalog knows its
 * checksum or not. */
static void test_cached_model_is_verified_and_replaced_when_corrupt(void **state)
{
    (void)state;
    const char *shas[] = {"", NULL};
    shas[1] = model_sha;
    for (int k = 0; k < 2; k++) {
        const char *models = fresh_models();
        char url[256], path[PATH_MAX];
        url_of(url, sizeof(url), "/", MODEL);
        struct pc_download_opts o = opts_for(url, models, shas[k]);
        struct pc_error err = {0};
        assert_int_equal(pc_download(&o, &err), PC_OK);
        assert_installed(models);

        /* Intact: read through with progress, not fetched again. */
        struct watch w = {0};
        watch_opts(&o, &w);
        assert_int_equal(pc_download(&o, &err), PC_OK);
        assert_true(w.phases[PC_DL_VERIFYING] >= 2);
        assert_int_equal(w.max_completed, model_size);
        assert_int_equal(requests("/m.gguf", " 200 ", 1), 1);

        /* Corrupt: found, and downloaded again. */
        path_in(path, sizeof(path), models, "m.gguf");
        corrupt(path);
        memset(&w, 0, sizeof(w));
        watch_opts(&o, &w);
        assert_int_equal(pc_download(&o, &err), PC_OK);
        assert_int_equal(requests("/m.gguf", " 200 ", 2), 2);
        assert_true(w.phases[PC_DL_VERIFYING] >= 2);
        assert_installed(models);
    }
}

/* Set a model's last use in the manifest (Unix seconds), so that the LRU order is the test's. */
struct used_at {
    const char *id;
    int64_t when;
};

static enum pc_err set_used(struct pc_manifest *m, void *user, struct pc_error *err)
{
    (void)err;
    const struct used_at *u = user;
    struct pc_manifest_entry *e = pc_manifest_find(m, u->id);
    assert_non_null(e);
    e->last_used = u->when;
    return PC_OK;
}

static bool keep_listed(void *user, const char *id)
{
    for (const char *const *k = user; *k; k++)
        if (strcmp(*k, id) == 0)
            return true;
    return false;
}

static void download_as(const char *models, const char *id, uint64_t cache_max,
                        const struct pc_cache_hooks *hooks, enum pc_err want, struct pc_error *err)
{
    char url[256];
    url_of(url, sizeof(url), "/", MODEL);
    struct pc_download_opts o = opts_for(url, models, model_sha);
    o.id = id;
    o.cache_max = cache_max;
    o.cache_hooks = hooks;
    assert_int_equal(pc_download(&o, err), want);
}

/* PRECHARGE_CACHE_MAX (seed 002's cache policy): after each download the least recently used
 * models go until the store fits; models in use stay, and when they leave no room the download
 * fails with PC_ERR_CACHE_FULL naming what it needs, the limit and who holds the space. */
static void test_cache_limit_prunes_lru_or_fails_when_held(void **state)
{
    (void)state;
    const char *models = fresh_models();
    struct pc_error err = {0};
    uint64_t limit = model_size * 2 + model_size / 2; /* two models fit, not three */
    char path[PATH_MAX];
    download_as(models, "a", limit, NULL, PC_OK, &err);
    download_as(models, "b", limit, NULL, PC_OK, &err);
    struct used_at ua = {"a", 2000000000}, ub = {"b", 1000000000};
    assert_int_equal(pc_manifest_update(models, set_used, &ua, &err), PC_OK);
    assert_int_equal(pc_manifest_update(models, set_used, &ub, &err), PC_OK);

    /* b was used longest ago: it goes for c. */
    download_as(models, "c", limit, NULL, PC_OK, &err);
    path_in(path, sizeof(path), models, "a.gguf");
    assert_true(exists(path));
    path_in(path, sizeof(path), models, "b.gguf");
    assert_false(exists(path));
    path_in(path, sizeof(path), models, "c.gguf");
    assert_true(exists(path));

    /* a and c in use: d cannot come in, and the error says why. */
    const char *held[] = {"a", "c", NULL};
    struct pc_cache_hooks hooks = {.keep = keep_listed, .user = held};
    download_as(models, "d", limit, &hooks, PC_ERR_CACHE_FULL, &err);
    assert_non_null(strstr(err.msg, "cache full: need"));
    assert_non_null(strstr(err.msg, "limit"));
    assert_non_null(strstr(err.msg, "held by a ("));
    assert_non_null(strstr(err.msg, "c ("));
    path_in(path, sizeof(path), models, "d.gguf");
    assert_false(exists(path));
    path_in(path, sizeof(path), models, "a.gguf");
    assert_true(exists(path));

    /* A model larger than the limit never fits. */
    download_as(models, "e", model_size / 2, NULL, PC_ERR_CACHE_FULL, &err);
    assert_non_null(strstr(err.msg, "cache full"));
    /* Without a limit, anything goes. */
    download_as(models, "d", 0, &hooks, PC_OK, &err);
}

/* Copy the served model to www/name, with extra bytes appended (another revision). */
static void serve_revision(const char *name, const char *extra)
{
    char src[PATH_MAX], dst[PATH_MAX], cmd[3 * PATH_MAX];
    NGX_FMT(src, "%s/%s", ngx.www, MODEL);
    NGX_FMT(dst, "%s/%s", ngx.www, name);
    NGX_FMT(cmd, "cp '%s' '%s.tmp' && printf '%s' >> '%s.tmp' && mv '%s.tmp' '%s'", src, dst, extra,
            dst, dst, dst);
    assert_int_equal(system(cmd), 0);
}

static void manifest_entry(const char *models, const char *id, struct pc_manifest_entry *out)
{
    struct pc_manifest m;
    assert_int_equal(pc_manifest_load(models, &m, NULL), PC_OK);
    const struct pc_manifest_entry *e = pc_manifest_find(&m, id);
    assert_non_null(e);
    *out = *e;
    pc_manifest_free(&m);
}

/* Seed 002's model updates: HEAD tells whether the source changed since the download (nginx's
 * ETag here); the new revision is downloaded beside the old file and switched to once
 * verified; a failed update leaves the old file and its record as they were. */
static void test_update_check_and_apply(void **state)
{
    (void)state;
    const char *models = fresh_models();
    char url[256], path[PATH_MAX], hex[65];
    struct pc_error err = {0};
    serve_revision("u.gguf", "");
    url_of(url, sizeof(url), "/", "u.gguf");
    struct pc_download_opts o = opts_for(url, models, "");
    o.id = "u";
    assert_int_equal(pc_download(&o, &err), PC_OK);
    struct pc_manifest_entry before;
    manifest_entry(models, "u", &before);
    assert_true(before.revision[0] != '\0'); /* nginx's ETag */
    assert_true(before.last_modified[0] != '\0');

    struct pc_update_check u;
    assert_int_equal(pc_update_check(models, "u", url, &u, &err), PC_OK);
    assert_int_equal(u.status, PC_UPDATE_CURRENT);
    assert_string_equal(u.revision, before.revision);

    serve_revision("u.gguf", "a newer revision");
    assert_int_equal(pc_update_check(models, "u", url, &u, &err), PC_OK);
    assert_int_equal(u.status, PC_UPDATE_AVAILABLE);
    assert_non_null(strstr(u.why, "revision"));
    assert_int_equal(u.head.size, model_size + strlen("a newer revision"));

    /* The source goes away between the check and the download: the old file stays. */
    char served[PATH_MAX];
    NGX_FMT(served, "%s/u.gguf", ngx.www);
    char moved[PATH_MAX + 8];
    NGX_FMT(moved, "%s.away", served);
    assert_int_equal(rename(served, moved), 0);
    assert_int_equal(pc_update_apply(&o, &u, &err), PC_ERR_NOT_FOUND);
    path_in(path, sizeof(path), models, "u.gguf");
    assert_int_equal(pc_file_sha256(path, hex, NULL), PC_OK);
    assert_string_equal(hex, model_sha);
    struct pc_manifest_entry same;
    manifest_entry(models, "u", &same);
    assert_string_equal(same.revision, before.revision);
    assert_int_equal(rename(moved, served), 0);

    /* Applied: the new bytes, checksum and revision. */
    assert_int_equal(pc_update_apply(&o, &u, &err), PC_OK);
    char served_sha[65];
    assert_int_equal(pc_file_sha256(served, served_sha, NULL), PC_OK);
    assert_int_equal(pc_file_sha256(path, hex, NULL), PC_OK);
    assert_string_equal(hex, served_sha);
    struct pc_manifest_entry after;
    manifest_entry(models, "u", &after);
    assert_string_equal(after.checksum + 7, served_sha);
    assert_string_equal(after.revision, u.revision);
    assert_string_not_equal(after.revision, before.revision);
    assert_int_equal(pc_update_check(models, "u", url, &u, &err), PC_OK);
    assert_int_equal(u.status, PC_UPDATE_CURRENT);

    /* A model the store does not have, and a source that is not there. */
    assert_int_equal(pc_update_check(models, "nope", url, &u, &err), PC_ERR_NOT_FOUND);
    url_of(url, sizeof(url), "/", "missing.gguf");
    assert_int_equal(pc_update_check(models, "u", url, &u, &err), PC_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "missing.gguf"));
}

/* ---- resumes ----------------------------------------------------------------------------- */

static void test_connection_cut_resumes(void **state)
{
    (void)state;
    const char *models = fresh_models();
    char url[256];
    url_of(url, sizeof(url), "/slow/", MODEL);
    struct watch w = {.kill_worker_at = MIB};
    struct pc_download_opts o = opts_for(url, models, model_sha);
    watch_opts(&o, &w);
    struct pc_error err = {0};
    assert_int_equal(pc_download(&o, &err), PC_OK);
    assert_installed(models);
    assert_true(w.phases[PC_DL_RETRYING] >= 1);
    assert_true(requests("/slow/m.gguf", " 206 bytes=", 1) >= 1); /* resumed, not restarted */
}

static void test_stall_is_retried(void **state)
{
    (void)state;
    const char *models = fresh_models();
    char url[256];
    url_of(url, sizeof(url), "/slow/", MODEL);
    struct watch w = {.stop_worker_at = MIB};
    struct pc_download_opts o = opts_for(url, models, model_sha);
    watch_opts(&o, &w);
    struct pc_error err = {0};
    assert_int_equal(pc_download(&o, &err), PC_OK);
    assert_installed(models);
    assert_non_null(strstr(w.retry_msg, "no data from"));
}

static void test_server_down_then_up(void **state)
{
    (void)state;
    const char *models = fresh_models();
    char url[256];
    url_of(url, sizeof(url), "/", MODEL);
    nginx_stop(&ngx);
    struct watch w = {.restart_on_retry = true};
    struct pc_download_opts o = opts_for(url, models, model_sha);
    o.attempts = 5;
    watch_opts(&o, &w);
    struct pc_error err = {0};
    assert_int_equal(pc_download(&o, &err), PC_OK);
    assert_installed(models);
    assert_true(w.phases[PC_DL_RETRYING] >= 1);
    assert_non_null(strstr(w.retry_msg, "attempt 2 of 5"));
}

static void test_server_down_gives_up(void **state)
{
    (void)state;
    const char *models = fresh_models();
    char url[256];
    url_of(url, sizeof(url), "/", MODEL);
    nginx_stop(&ngx);
    struct watch w = {0};
    struct pc_download_opts o = opts_for(url, models, model_sha);
    watch_opts(&o, &w);
    struct pc_error err = {0};
    enum pc_err rc = pc_download(&o, &err);
    assert_int_equal(nginx_launch(&ngx), 0);
    assert_int_equal(rc, PC_ERR_NETWORK);
    assert_non_null(strstr(err.msg, "after 3 attempts"));
    assert_non_null(strstr(err.msg, url));
    assert_int_equal(w.phases[PC_DL_RETRYING], 2);
    char path[PATH_MAX];
    path_in(path, sizeof(path), models, ".downloading/m.gguf.part");
    assert_false(exists(path)); /* nothing came: no empty part is left */
}

/* The downloader itself dies: a child process killed with SIGKILL in the middle. */
static void test_killed_downloader_resumes(void **state)
{
    (void)state;
    const char *models = fresh_models();
    char url[256], part[PATH_MAX];
    url_of(url, sizeof(url), "/slow/", MODEL);
    path_in(part, sizeof(part), models, ".downloading/m.gguf.part");
    pid_t child = fork();
    if (child == 0) {
        struct pc_download_opts o = opts_for(url, models, model_sha);
        _exit(pc_download(&o, NULL) == PC_OK ? 0 : 1);
    }
    /* Past the fast first MiB, the slow location gives us all the time we need. */
    int i;
    for (i = 0; i < 3000 && size_of(part) < MIB; i++)
        nginx_sleep_ms(10);
    assert_true(size_of(part) >= MIB);
    kill(child, SIGKILL);
    int st;
    waitpid(child, &st, 0);
    assert_true(WIFSIGNALED(st));
    uint64_t have = size_of(part);
    assert_true(have > 0 && have < model_size);

    char range[64];
    snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)have);
    struct watch w = {0};
    struct pc_download_opts o = opts_for(url, models, model_sha);
    watch_opts(&o, &w);
    struct pc_error err = {0};
    assert_int_equal(pc_download(&o, &err), PC_OK);
    assert_installed(models);
    assert_int_equal(w.phases[PC_DL_RESUMING], 1);
    assert_int_equal(requests("/slow/m.gguf", range, 1), 1);
}

static void write_part(const char *models, uint64_t len, bool junk_after)
{
    char src[PATH_MAX], dst[PATH_MAX], dir[PATH_MAX];
    NGX_FMT(src, "%s/%s", ngx.www, MODEL);
    path_in(dir, sizeof(dir), models, ".downloading");
    mkdir(dir, 0755);
    path_in(dst, sizeof(dst), models, ".downloading/m.gguf.part");
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    assert_non_null(in);
    assert_non_null(out);
    for (uint64_t i = 0; i < len; i++) {
        int c = fgetc(in);
        fputc(c == EOF ? 'x' : c, out);
    }
    if (junk_after)
        fputs("junk beyond the end", out);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

static void test_server_without_ranges_restarts(void **state)
{
    (void)state;
    const char *models = fresh_models();
    write_part(models, MIB, false);
    char url[256];
    url_of(url, sizeof(url), "/norange/", MODEL);
    struct pc_download_opts o = opts_for(url, models, model_sha);
    struct pc_error err = {0};
    assert_int_equal(pc_download(&o, &err), PC_OK);
    assert_installed(models);
    assert_int_equal(requests("/norange/m.gguf", " 200 bytes=", 1), 1);
}

static void test_complete_part_is_finished(void **state)
{
    (void)state;
    const char *models = fresh_models();
    write_part(models, model_size, false); /* killed between the last byte and the rename */
    char url[256];
    url_of(url, sizeof(url), "/", MODEL);
    struct pc_download_opts o = opts_for(url, models, model_sha);
    struct pc_error err = {0};
    assert_int_equal(pc_download(&o, &err), PC_OK);
    assert_installed(models);
}

static void test_part_longer_than_file_restarts(void **state)
{
    (void)state;
    const char *models = fresh_models();
    write_part(models, model_size, true);
    char url[256];
    url_of(url, sizeof(url), "/", MODEL);
    struct pc_download_opts o = opts_for(url, models, model_sha);
    struct pc_error err = {0};
    assert_int_equal(pc_download(&o, &err), PC_OK);
    assert_installed(models);
}

/* ---- failures ---------------------------------------------------------------------------- */

static void test_wrong_checksum_fails_after_one_more_download(void **state)
{
    (void)state;
    const char *models = fresh_models();
    char url[256], path[PATH_MAX];
    url_of(url, sizeof(url), "/", MODEL);
    const char *wrong = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    struct watch w = {0};
    struct pc_download_opts o = opts_for(url, models, wrong);
    watch_opts(&o, &w);
    struct pc_error err = {0};
    assert_int_equal(pc_download(&o, &err), PC_ERR_CHECKSUM);
    assert_non_null(strstr(err.msg, wrong));
    assert_non_null(strstr(err.msg, model_sha));
    assert_int_equal(requests("/m.gguf", " 200 ", 2), 2);
    path_in(path, sizeof(path), models, "m.gguf");
    assert_false(exists(path));
    path_in(path, sizeof(path), models, ".downloading/m.gguf.part");
    assert_false(exists(path));
    assert_int_equal(w.phases[PC_DL_DONE], 0);
}

static void test_404_fails_at_once(void **state)
{
    (void)state;
    const char *models = fresh_models();
    char url[256];
    url_of(url, sizeof(url), "/", "missing.gguf");
    struct watch w = {0};
    struct pc_download_opts o = opts_for(url, models, "");
    watch_opts(&o, &w);
    struct pc_error err = {0};
    assert_int_equal(pc_download(&o, &err), PC_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, url));
    assert_non_null(strstr(err.msg, "404"));
    assert_int_equal(requests("/missing.gguf", " 404 ", 1), 1);
    assert_int_equal(w.phases[PC_DL_RETRYING], 0);
}

static void test_401_fails_at_once(void **state)
{
    (void)state;
    const char *models = fresh_models();
    char url[256];
    url_of(url, sizeof(url), "/private/", MODEL);
    struct pc_download_opts o = opts_for(url, models, "");
    struct pc_error err = {0};
    assert_int_equal(pc_download(&o, &err), PC_ERR_NETWORK);
    assert_non_null(strstr(err.msg, url));
    assert_non_null(strstr(err.msg, "HTTP 401"));
    assert_int_equal(requests("/private/m.gguf", " 401 ", 1), 1);
}

static void test_5xx_is_retried_then_fails(void **state)
{
    (void)state;
    const char *models = fresh_models();
    char url[256];
    url_of(url, sizeof(url), "/fail/", MODEL);
    struct pc_download_opts o = opts_for(url, models, "");
    struct pc_error err = {0};
    assert_int_equal(pc_download(&o, &err), PC_ERR_NETWORK);
    assert_non_null(strstr(err.msg, "HTTP 500"));
    assert_int_equal(requests("/fail/m.gguf", " 500 ", 3), 3);
}

static void test_unsafe_ids_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {"../evil", "a/b", "/etc/passwd", "..", ".hidden",
                                      "x/../y",  ""};
    const char *models = fresh_models();
    char url[256];
    url_of(url, sizeof(url), "/", MODEL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct pc_download_opts o = opts_for(url, models, "");
        o.id = bad[i];
        struct pc_error err = {0};
        enum pc_err rc = pc_download(&o, &err);
        assert_true(rc == PC_ERR_BAD_PATH || rc == PC_ERR_INVALID);
        assert_true(err.msg[0] != '\0');
    }
    char path[PATH_MAX];
    NGX_FMT(path, "%s/evil.gguf", base);
    assert_false(exists(path));
    path_in(path, sizeof(path), models, ".downloading");
    assert_false(exists(path)); /* refused before anything was made */
}

static void test_cancel_keeps_part(void **state)
{
    (void)state;
    const char *models = fresh_models();
    char url[256], part[PATH_MAX];
    url_of(url, sizeof(url), "/slow/", MODEL);
    struct watch w = {.cancel_at = MIB};
    struct pc_download_opts o = opts_for(url, models, model_sha);
    watch_opts(&o, &w);
    struct pc_error err = {0};
    assert_int_equal(pc_download(&o, &err), PC_ERR_CANCELLED);
    path_in(part, sizeof(part), models, ".downloading/m.gguf.part");
    assert_true(size_of(part) >= MIB);
}

/* ---- sharing ----------------------------------------------------------------------------- */

struct pull_thread {
    const char *url, *models;
    struct watch w;
    enum pc_err rc;
};

static void *pull_main(void *arg)
{
    struct pull_thread *t = arg;
    struct pc_download_opts o = opts_for(t->url, t->models, model_sha);
    watch_opts(&o, &t->w);
    t->rc = pc_download(&o, NULL);
    return NULL;
}

static void test_concurrent_threads_share_one_download(void **state)
{
    (void)state;
    const char *models = fresh_models();
    char url[256], part[PATH_MAX];
    url_of(url, sizeof(url), "/medium/", MODEL);
    path_in(part, sizeof(part), models, ".downloading/m.gguf.part");
    struct pull_thread a = {.url = url, .models = models}, b = a;
    pthread_t ta, tb;
    pthread_create(&ta, NULL, pull_main, &a);
    for (int i = 0; i < 3000 && size_of(part) == 0; i++)
        nginx_sleep_ms(5);
    pthread_create(&tb, NULL, pull_main, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.rc, PC_OK);
    assert_int_equal(b.rc, PC_OK);
    assert_installed(models);
    assert_int_equal(requests("/medium/m.gguf", " 200 ", 1), 1);
    assert_true(b.w.phases[PC_DL_WAITING] >= 1);
    assert_int_equal(b.w.phases[PC_DL_DONE], 1);
}

static void test_concurrent_processes_share_one_download(void **state)
{
    (void)state;
    const char *models = fresh_models();
    char url[256], part[PATH_MAX];
    url_of(url, sizeof(url), "/medium/", MODEL);
    path_in(part, sizeof(part), models, ".downloading/m.gguf.part");
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            struct watch w = {0};
            struct pc_download_opts o = opts_for(url, models, model_sha);
            watch_opts(&o, &w);
            enum pc_err rc = pc_download(&o, NULL);
            _exit(rc != PC_OK ? 1 : w.phases[PC_DL_WAITING] > 0 ? 10 : 0);
        }
        for (int i = 0; k == 0 && i < 3000 && size_of(part) == 0; i++)
            nginx_sleep_ms(5);
    }
    int st0, st1;
    waitpid(kids[0], &st0, 0);
    waitpid(kids[1], &st1, 0);
    assert_true(WIFEXITED(st0) && WIFEXITED(st1));
    assert_int_equal(WEXITSTATUS(st0), 0);  /* the first downloaded */
    assert_int_equal(WEXITSTATUS(st1), 10); /* the second waited for it */
    assert_installed(models);
    assert_int_equal(requests("/medium/m.gguf", " 200 ", 1), 1);
}

/* ---- litter ------------------------------------------------------------------------------ */

static void age(const char *path, long secs)
{
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= secs;
    tv[1] = tv[0];
    assert_int_equal(utimes(path, tv), 0);
}

static void test_stale_parts_are_cleaned(void **state)
{
    (void)state;
    const char *models = fresh_models();
    char dir[PATH_MAX], old[PATH_MAX], young[PATH_MAX], busy[PATH_MAX], busy_lock[PATH_MAX];
    path_in(dir, sizeof(dir), models, ".downloading");
    mkdir(dir, 0755);
    path_in(old, sizeof(old), models, ".downloading/old.gguf.part");
    path_in(young, sizeof(young), models, ".downloading/young.gguf.part");
    path_in(busy, sizeof(busy), models, ".downloading/busy.gguf.part");
    path_in(busy_lock, sizeof(busy_lock), models, ".downloading/busy.gguf.lock");
    assert_int_equal(pc_file_write_atomic(old, "1234", 4, NULL), PC_OK);
    assert_int_equal(pc_file_write_atomic(young, "12", 2, NULL), PC_OK);
    assert_int_equal(pc_file_write_atomic(busy, "123", 3, NULL), PC_OK);
    age(old, 25 * 3600);
    age(busy, 25 * 3600);
    int fd;
    assert_int_equal(pc_lock_acquire(busy_lock, PC_LOCK_TRY, &fd, NULL), PC_OK);

    uint64_t bytes;
    size_t count;
    assert_int_equal(pc_download_clean_parts(models, 24 * 3600, &bytes, &count, NULL), PC_OK);
    assert_int_equal(count, 1);
    assert_int_equal(bytes, 4);
    assert_false(exists(old));
    assert_true(exists(young));
    assert_true(exists(busy)); /* being downloaded: left alone */
    pc_lock_release(fd, busy_lock, true);
}

static void test_opts_from_env(void **state)
{
    (void)state;
    struct pc_download_opts o;
    setenv("PRECHARGE_DOWNLOAD_ATTEMPTS", "5", 1);
    setenv("PRECHARGE_DOWNLOAD_STALL_TIMEOUT", "2s", 1);
    setenv("PRECHARGE_DOWNLOAD_BACKOFF", "250ms", 1);
    assert_int_equal(pc_download_opts_init(&o, NULL), PC_OK);
    assert_int_equal(o.attempts, 5);
    assert_int_equal(o.stall_ns, 2000000000LL);
    assert_int_equal(o.backoff_ns, 250000000LL);
    setenv("PRECHARGE_DOWNLOAD_ATTEMPTS", "lots", 1);
    struct pc_error err = {0};
    assert_int_equal(pc_download_opts_init(&o, &err), PC_ERR_INVALID);
    assert_non_null(strstr(err.msg, "PRECHARGE_DOWNLOAD_ATTEMPTS"));
    assert_int_equal(o.attempts, 3);
    unsetenv("PRECHARGE_DOWNLOAD_ATTEMPTS");
    unsetenv("PRECHARGE_DOWNLOAD_STALL_TIMEOUT");
    unsetenv("PRECHARGE_DOWNLOAD_BACKOFF");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_download_verified),
        cmocka_unit_test(test_unknown_checksum_is_recorded),
        cmocka_unit_test(test_present_with_other_checksum_is_replaced),
        cmocka_unit_test(test_cached_model_is_verified_and_replaced_when_corrupt),
        cmocka_unit_test(test_cache_limit_prunes_lru_or_fails_when_held),
        cmocka_unit_test(test_update_check_and_apply),
        cmocka_unit_test(test_connection_cut_resumes),
        cmocka_unit_test(test_stall_is_retried),
        cmocka_unit_test(test_server_down_then_up),
        cmocka_unit_test(test_server_down_gives_up),
        cmocka_unit_test(test_killed_downloader_resumes),
        cmocka_unit_test(test_server_without_ranges_restarts),
        cmocka_unit_test(test_complete_part_is_finished),
        cmocka_unit_test(test_part_longer_than_file_restarts),
        cmocka_unit_test(test_wrong_checksum_fails_after_one_more_download),
        cmocka_unit_test(test_404_fails_at_once),
        cmocka_unit_test(test_401_fails_at_once),
        cmocka_unit_test(test_5xx_is_retried_then_fails),
        cmocka_unit_test(test_unsafe_ids_refused),
        cmocka_unit_test(test_cancel_keeps_part),
        cmocka_unit_test(test_concurrent_threads_share_one_download),
        cmocka_unit_test(test_concurrent_processes_share_one_download),
        cmocka_unit_test(test_stale_parts_are_cleaned),
        cmocka_unit_test(test_opts_from_env),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
