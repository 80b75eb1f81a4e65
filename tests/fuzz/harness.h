/* harness.h - what the route fuzz targets share: a real server on a scratch home (loopback only,
 * no remote provider, downloads pointed at a closed local port), every POST and DELETE route's
 * handler called with the input as its body, and the checks on each reply. */
#ifndef PC_FUZZ_HARNESS_H
#define PC_FUZZ_HARNESS_H

#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "base/file.h"
#include "base/log.h"
#include "engine/engine.h"
#include "server/serverInt.h"

static struct pc_server *harness_srv;
static char harness_home[4096];

static int harness_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void harness_stop(void)
{
    pc_server_stop(harness_srv);
    nftw(harness_home, harness_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Nothing a request names may reach past loopback: downloads go to a closed local port. */
static void harness_no_network(void)
{
    static const char *const proxies[] = {"http_proxy", "https_proxy", "all_proxy", "HTTPS_PROXY",
                                          "ALL_PROXY"};
    for (size_t i = 0; i < sizeof(proxies) / sizeof(proxies[0]); i++)
        setenv(proxies[i], "http://127.0.0.1:9", 1);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    setenv("PRECHARGE_HF_ENDPOINT", "http://127.0.0.1:9", 1);
    setenv("PRECHARGE_DOWNLOAD_ATTEMPTS", "1", 1);
}

/* Start the server on a fresh home under $TMPDIR. model: a GGUF to serve as "tiny" (hard-linked
 * into the store: on the same file system as $TMPDIR), or NULL for an empty store. n_ctx: the
 * context models load with (0: default). */
static void harness_start(const char *model, uint32_t n_ctx)
{
    harness_no_network();
    const char *tmp = getenv("TMPDIR");
    snprintf(harness_home, sizeof(harness_home), "%s/fuzz.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(harness_home) == NULL) {
        perror("mkdtemp");
        abort();
    }
    pc_log_threshold = PC_LOG_ERROR;
    pc_engine_init(NULL, "none");

    struct pc_server_config cfg;
    struct pc_error err = {0};
    if (pc_server_config_from_env(&cfg, &err) != PC_OK ||
        pc_server_set_home(&cfg, harness_home, &err) != PC_OK ||
        pc_file_mkdirs(cfg.models_dir, &err) != PC_OK) {
        fprintf(stderr, "fuzz: %s\n", err.msg);
        abort();
    }
    char entry[sizeof(cfg.models_dir) + 16];
    snprintf(entry, sizeof(entry), "%s/tiny.gguf", cfg.models_dir);
    /* A hard link: a symbolic one to a file outside the store is refused as a store entry. */
    if (model != NULL && link(model, entry) != 0) {
        perror("link");
        abort();
    }
    snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
    cfg.port = 0;
    cfg.n_preload = 0;
    cfg.n_model_dirs = 0;
    cfg.budget_mode = PC_BUDGET_FIXED;
    cfg.pool.budget_bytes = 0;
    cfg.pool.model_params.n_threads = 1;
    if (n_ctx > 0)
        cfg.pool.model_params.n_ctx = n_ctx;
    cfg.snapshot_ram = 16u << 20;
    cfg.snapshot_disk = 32u << 20;
    snprintf(cfg.ollama_url, sizeof(cfg.ollama_url), "off");
    if (pc_server_start(&cfg, &harness_srv, &err) != PC_OK) {
        fprintf(stderr, "fuzz: cannot start the server: %s\n", err.msg);
        abort();
    }
    atexit(harness_stop);
}

static void harness_fail(const struct pc_http_route *rt, const struct pc_http_reply *r,
                         const char *why)
{
    fprintf(stderr, "%s %s: %s (status %d, body %.*s)\n", rt->method, rt->path, why, r->status,
            (int)(r->body ? r->body_len : 0), r->body ? r->body : "");
    abort();
}

/* A stream's waker, for a reader that blocks. */
struct harness_waiter {
    pthread_mutex_t lock; /* guards woken */
    pthread_cond_t cv;
    bool woken;
};

static void harness_wake(void *arg)
{
    struct harness_waiter *w = arg;
    pthread_mutex_lock(&w->lock);
    w->woken = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->lock);
}

/* Read a stream to its end, as the HTTP layer would (poll, and wait for a wake on WAIT), then
 * free it. A stream that never ends hangs here, and libFuzzer reports the timeout. */
static void harness_drain(struct pc_http_stream *s)
{
    struct pc_buf out = PC_BUF_INIT;
    struct harness_waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    s->watch(s->ctx, harness_wake, &w);
    for (;;) {
        pthread_mutex_lock(&w.lock);
        w.woken = false;
        pthread_mutex_unlock(&w.lock);
        pc_buf_reset(&out);
        enum pc_stream_state st = s->poll(s->ctx, &out);
        if (st == PC_STREAM_END)
            break;
        pthread_mutex_lock(&w.lock);
        while (st == PC_STREAM_WAIT && !w.woken)
            pthread_cond_wait(&w.cv, &w.lock);
        pthread_mutex_unlock(&w.lock);
    }
    if (s->free)
        s->free(s->ctx);
    pc_buf_free(&out);
}

/* A streamed reply is a 200 that ends; anything else is a status, and an error's body says what
 * went wrong in JSON ({"error": "..."}, or OpenAI's {"error": {"message": "..."}}), and never
 * "out of memory" (nothing runs out here). */
static void harness_check_and_free(const struct pc_http_route *rt, struct pc_http_reply *r)
{
    if (pc_http_reply_streams(r)) {
        if (r->status != 200)
            harness_fail(rt, r, "a stream that is not a 200");
        harness_drain(&r->stream);
        return;
    }
    if (r->status < 200 || r->status > 599)
        harness_fail(rt, r, "no HTTP status");
    if (r->status >= 400) {
        json_t *o = r->body ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
        json_t *e = json_object_get(o, "error"); /* Ollama's text, or OpenAI's object */
        const char *msg = json_is_object(e) ? json_string_value(json_object_get(e, "message"))
                                            : json_string_value(e);
        if (msg == NULL)
            harness_fail(rt, r, "an error without {\"error\": ...}");
        if (strcmp(msg, "out of memory") == 0)
            harness_fail(rt, r, "an error that blames memory");
        json_decref(o);
    }
    free(r->body);
}

/* The body's "model", when it can be a path segment: the {} of /v1/models/{}/load. */
static void harness_model_param(const char *body, size_t len, char *out, size_t size)
{
    json_t *o = json_loadb(body, len, 0, NULL);
    const char *m = json_string_value(json_object_get(o, "model"));
    if (m == NULL || m[0] == '\0' || strchr(m, '/') != NULL || strlen(m) >= size)
        m = "fuzz";
    snprintf(out, size, "%s", m);
    json_decref(o);
}

/* body (NUL-terminated, size bytes) to rt's handler, and the checks on its reply. */
static inline void harness_call(const struct pc_http_route *rt, const char *body, size_t size)
{
    struct pc_http_req req = {
        .method = rt->method, .path = rt->path, .body = body, .body_len = size, .srv = harness_srv};
    if (strstr(rt->path, "{}") != NULL) {
        harness_model_param(body, size, req.params[0], sizeof(req.params[0]));
        req.n_params = 1;
    }
    struct pc_http_reply reply = {0};
    rt->handler(&req, &reply);
    harness_check_and_free(rt, &reply);
}

/* The input as the body of every POST and DELETE route that skip (may be NULL) does not skip. */
static inline void harness_run(const uint8_t *data, size_t size,
                               bool (*skip)(const struct pc_http_route *rt))
{
    char *body = malloc(size + 1);
    if (body == NULL)
        return;
    memcpy(body, data, size);
    body[size] = '\0';
    for (const struct pc_http_route *const *t = pc_server_routes; *t != NULL; t++) {
        for (const struct pc_http_route *rt = *t; rt->path != NULL; rt++) {
            if (strcmp(rt->method, "POST") != 0 && strcmp(rt->method, "DELETE") != 0)
                continue;
            if (skip == NULL || !skip(rt))
                harness_call(rt, body, size);
        }
    }
    free(body);
}

#endif
