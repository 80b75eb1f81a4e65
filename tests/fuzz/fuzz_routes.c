/* fuzz_routes.c - libFuzzer target: every POST and DELETE route's request body, through the
 * real handlers of a real server (scratch home, empty store, loopback only, no remote). */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/log.h"
#include "engine/engine.h"
#include "server/serverInt.h"

static struct pc_server *srv;
static char home[4096];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void stop(void)
{
    pc_server_stop(srv);
    nftw(home, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Nothing a request names may reach past loopback: downloads go to a closed local port. */
static void no_network(void)
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

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    no_network();
    const char *tmp = getenv("TMPDIR");
    snprintf(home, sizeof(home), "%s/fuzz_routes.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(home) == NULL) {
        perror("mkdtemp");
        abort();
    }
    pc_log_threshold = PC_LOG_ERROR;
    pc_engine_init(NULL, "none");

    struct pc_server_config cfg;
    struct pc_error err = {0};
    if (pc_server_config_from_env(&cfg, &err) != PC_OK ||
        pc_server_set_home(&cfg, home, &err) != PC_OK) {
        fprintf(stderr, "fuzz_routes: %s\n", err.msg);
        abort();
    }
    snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
    cfg.port = 0;
    cfg.n_preload = 0;
    cfg.n_model_dirs = 0;
    cfg.budget_mode = PC_BUDGET_FIXED;
    cfg.pool.budget_bytes = 0;
    snprintf(cfg.ollama_url, sizeof(cfg.ollama_url), "off");
    if (pc_server_start(&cfg, &srv, &err) != PC_OK) {
        fprintf(stderr, "fuzz_routes: cannot start the server: %s\n", err.msg);
        abort();
    }
    atexit(stop);
    return 0;
}

static void fail(const struct pc_http_route *rt, const struct pc_http_reply *r, const char *why)
{
    fprintf(stderr, "%s %s: %s (status %d, body %.*s)\n", rt->method, rt->path, why, r->status,
            (int)(r->body ? r->body_len : 0), r->body ? r->body : "");
    abort();
}

/* A streamed reply is a 200 that ends; anything else is a status, and an error's body says what
 * went wrong in JSON ({"error": "..."}, or OpenAI's {"error": {"message": "..."}}), and never
 * "out of memory" (nothing runs out here). */
static void check_and_free(const struct pc_http_route *rt, struct pc_http_reply *r)
{
    if (r->stream.next != NULL) {
        if (r->status != 200)
            fail(rt, r, "a stream that is not a 200");
        struct pc_buf out = PC_BUF_INIT;
        while (r->stream.next(r->stream.ctx, &out))
            pc_buf_reset(&out);
        if (r->stream.free)
            r->stream.free(r->stream.ctx);
        pc_buf_free(&out);
        return;
    }
    if (r->status < 200 || r->status > 599)
        fail(rt, r, "no HTTP status");
    if (r->status >= 400) {
        json_t *o = r->body ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
        json_t *e = json_object_get(o, "error"); /* Ollama's text, or OpenAI's object */
        const char *msg = json_is_object(e) ? json_string_value(json_object_get(e, "message"))
                                            : json_string_value(e);
        if (msg == NULL)
            fail(rt, r, "an error without {\"error\": ...}");
        if (strcmp(msg, "out of memory") == 0)
            fail(rt, r, "an error that blames memory");
        json_decref(o);
    }
    free(r->body);
}

/* The body's "model", when it can be a path segment: the {} of /v1/models/{}/load. */
static void model_param(const char *body, size_t len, char *out, size_t size)
{
    json_t *o = json_loadb(body, len, 0, NULL);
    const char *m = json_string_value(json_object_get(o, "model"));
    if (m == NULL || m[0] == '\0' || strchr(m, '/') != NULL || strlen(m) >= size)
        m = "fuzz";
    snprintf(out, size, "%s", m);
    json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = malloc(size + 1);
    if (body == NULL)
        return 0;
    memcpy(body, data, size);
    body[size] = '\0';
    for (const struct pc_http_route *const *t = pc_server_routes; *t != NULL; t++) {
        for (const struct pc_http_route *rt = *t; rt->path != NULL; rt++) {
            if (strcmp(rt->method, "POST") != 0 && strcmp(rt->method, "DELETE") != 0)
                continue;
            struct pc_http_req req = {
                .method = rt->method, .path = rt->path, .body = body, .body_len = size, .srv = srv};
            if (strstr(rt->path, "{}") != NULL) {
                model_param(body, size, req.params[0], sizeof(req.params[0]));
                req.n_params = 1;
            }
            struct pc_http_reply reply = {0};
            rt->handler(&req, &reply);
            check_and_free(rt, &reply);
        }
    }
    free(body);
    return 0;
}
