/* client.c - `precharge ps` (with the pool's memory, pins and expiry) and `precharge stop`:
 * talk to a running daemon over its API. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "../base/buf.h"
#include "../base/fmt.h"
#include "../server/server.h"
#include "cli.h"

void pc_cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("precharge: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
    return pc_buf_append(user, p, size * n) ? size * n : 0;
}

int pc_cli_daemon_url(char *out, size_t size)
{
    struct pc_server_config cfg;
    struct pc_error err = {0};
    if (pc_server_config_from_env(&cfg, &err) != PC_OK) {
        pc_cli_error("%s", err.msg);
        return -1;
    }
    const char *host = strcmp(cfg.host, "0.0.0.0") == 0 ? "127.0.0.1"
                       : strcmp(cfg.host, "::") == 0    ? "::1"
                                                        : cfg.host;
    int n =
        snprintf(out, size, strchr(host, ':') ? "http://[%s]:%d" : "http://%s:%d", host, cfg.port);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

struct curl_slist *pc_cli_headers(void)
{
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    const char *key = getenv("PRECHARGE_API_KEY");
    char line[PC_SERVER_MAX_API_KEY + 32];
    if (h != NULL && key != NULL && *key != '\0' && strlen(key) <= PC_SERVER_MAX_API_KEY) {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", key);
        struct curl_slist *more = curl_slist_append(h, line);
        if (more == NULL) {
            curl_slist_free_all(h);
            return NULL;
        }
        h = more;
    }
    return h;
}

/* Call the API. Returns the parsed JSON reply (the caller decrefs), or NULL after printing why. */
json_t *pc_cli_call(const char *method, const char *path, const char *body)
{
    char url[512];
    if (pc_cli_daemon_url(url, sizeof(url) - strlen(path)) != 0)
        return NULL;
    strcat(url, path);

    CURL *c = curl_easy_init();
    if (c == NULL) {
        pc_cli_error("curl: out of memory");
        return NULL;
    }
    struct pc_buf resp = PC_BUF_INIT;
    struct curl_slist *hdrs = pc_cli_headers();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (body != NULL)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);

    json_t *out = NULL;
    long status = 0;
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        pc_cli_error("cannot reach the daemon at %s: %s (is `precharge serve` running?)", url,
                     curl_easy_strerror(rc));
        goto done;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    json_error_t je;
    out = json_loadb(resp.data ? resp.data : "", resp.len, 0, &je);
    if (status >= 400) {
        json_t *e = json_object_get(out, "error");
        pc_cli_error("%s", json_is_string(e) ? json_string_value(e) : "request failed");
        json_decref(out);
        out = NULL;
    } else if (out == NULL) {
        pc_cli_error("the daemon's reply to %s is not JSON: %s", path, je.text);
    }
done:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    pc_buf_free(&resp);
    return out;
}

/* "4 minutes from now", as `ollama ps` says it. */
static void until(const char *rfc3339, char *buf, size_t size)
{
    struct tm tm = {0};
    if (strptime(rfc3339, "%Y-%m-%dT%H:%M:%S", &tm) == NULL) {
        snprintf(buf, size, "%s", rfc3339);
        return;
    }
    double left = difftime(timegm(&tm), time(NULL));
    if (left > 100.0 * 365 * 86400)
        snprintf(buf, size, "Forever");
    else if (left < 1)
        snprintf(buf, size, "Stopping...");
    else if (left < 120)
        snprintf(buf, size, "%.0f seconds from now", left);
    else if (left < 7200)
        snprintf(buf, size, "%.0f minutes from now", left / 60);
    else
        snprintf(buf, size, "%.0f hours from now", left / 3600);
}

/* The pool's line under the table: memory against the budget, the count, policy and stats. */
static void print_pool_line(void)
{
    json_t *st = pc_cli_call("GET", "/v1/models/stats", NULL);
    if (st == NULL)
        return;
#define NUM(k) ((uint64_t)json_integer_value(json_object_get(st, k)))
    char used[32], budget[32];
    uint64_t b = NUM("memory_budget_bytes");
    pc_fmt_bytes(NUM("memory_used_bytes"), used, sizeof(used));
    if (b == 0)
        printf("\nmemory %s (no budget)", used);
    else
        printf("\nmemory %s of %s budget (%.0f%%%s)", used, pc_fmt_bytes(b, budget, sizeof(budget)),
               100.0 * (double)NUM("memory_used_bytes") / (double)b,
               json_is_true(json_object_get(st, "pressure")) ? ", under pressure" : "");
    const char *policy = json_string_value(json_object_get(st, "policy"));
    printf("; %llu of %llu models; %s eviction; hits %llu, misses %llu (%.0f%%); evictions %llu; "
           "preloads %llu\n",
           (unsigned long long)NUM("total_loaded"), (unsigned long long)NUM("max_models"),
           policy ? policy : "?", (unsigned long long)NUM("hits"),
           (unsigned long long)NUM("misses"),
           100.0 * json_number_value(json_object_get(st, "hit_rate")),
           (unsigned long long)NUM("evictions"), (unsigned long long)NUM("preloads"));
#undef NUM
    json_decref(st);
}

int pc_cmd_ps(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        pc_cli_error("usage: precharge ps");
        return PC_EXIT_USAGE;
    }
    json_t *r = pc_cli_call("GET", "/api/ps", NULL);
    if (r == NULL)
        return PC_EXIT_FAIL;
    printf("%-32s %-10s %-10s %-8s %-7s %-7s %s\n", "NAME", "SIZE", "PROCESSOR", "CONTEXT",
           "PINNED", "IN USE", "UNTIL");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(r, "models"), i, m)
    {
        char size[32], when[64];
        json_int_t total = json_integer_value(json_object_get(m, "size"));
        json_int_t vram = json_integer_value(json_object_get(m, "size_vram"));
        const char *exp = json_string_value(json_object_get(m, "expires_at"));
        until(exp ? exp : "", when, sizeof(when));
        char proc[16];
        if (vram <= 0)
            snprintf(proc, sizeof(proc), "100%% CPU");
        else if (vram >= total)
            snprintf(proc, sizeof(proc), "100%% GPU");
        else
            snprintf(proc, sizeof(proc), "%d%% GPU", (int)(100 * vram / total));
        printf("%-32s %-10s %-10s %-8lld %-7s %-7lld %s\n",
               json_string_value(json_object_get(m, "name")),
               pc_fmt_bytes((uint64_t)total, size, sizeof(size)), proc,
               (long long)json_integer_value(json_object_get(m, "context_length")),
               json_is_true(json_object_get(m, "pinned")) ? "yes" : "no",
               (long long)json_integer_value(json_object_get(m, "in_use")), when);
    }
    json_decref(r);
    print_pool_line();
    return PC_EXIT_OK;
}

int pc_cmd_stop(int argc, char **argv)
{
    if (argc != 2) {
        pc_cli_error("usage: precharge stop MODEL");
        return PC_EXIT_USAGE;
    }
    json_t *req = json_pack("{s:s, s:i}", "model", argv[1], "keep_alive", 0);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (body == NULL) {
        pc_cli_error("out of memory");
        return PC_EXIT_FAIL;
    }
    json_t *r = pc_cli_call("POST", "/api/generate", body);
    free(body);
    if (r == NULL)
        return PC_EXIT_FAIL;
    json_decref(r);
    return PC_EXIT_OK;
}
