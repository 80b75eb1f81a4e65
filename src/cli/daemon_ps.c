/* daemon_ps.c - what the store's commands ask a running daemon: which models it has loaded,
 * and to unload one. No daemon is fine: then nothing is loaded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "../base/buf.h"
#include "../server/server.h"
#include "../store/store.h"
#include "cli.h"
#include "cli_store.h"

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
    return pc_buf_append(user, p, size * n) ? size * n : 0;
}

/* One short request. Returns the HTTP status, or 0 when nothing answers. */
static long request(const char *method, const char *url, const char *body, struct pc_buf *resp)
{
    CURL *c = curl_easy_init();
    if (c == NULL)
        return 0;
    struct curl_slist *hdrs = pc_cli_headers();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    if (body != NULL)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return status;
}

void pc_cli_names_free(char **names, size_t n)
{
    for (size_t i = 0; names != NULL && i < n; i++)
        free(names[i]);
    free(names);
}

int pc_cli_daemon_loaded(char ***names, size_t *n, char *url_out, size_t size)
{
    *names = NULL;
    *n = 0;
    char base[300], url[320];
    if (pc_cli_daemon_url(base, sizeof(base)) != 0)
        return -1;
    if (url_out != NULL)
        snprintf(url_out, size, "%s", base);
    snprintf(url, sizeof(url), "%s/api/ps", base);
    struct pc_buf resp = PC_BUF_INIT;
    long status = request("GET", url, NULL, &resp);
    if (status == 0) {
        pc_buf_free(&resp);
        return 0;
    }
    json_error_t je;
    json_t *o = json_loadb(resp.data ? resp.data : "", resp.len, 0, &je);
    pc_buf_free(&resp);
    json_t *models = json_object_get(o, "models");
    if (status != 200 || !json_is_array(models)) {
        pc_cli_error("the daemon at %s did not say which models it has loaded (HTTP %ld)", base,
                     status);
        json_decref(o);
        return -1;
    }
    char **list = calloc(json_array_size(models) + 1, sizeof(*list));
    size_t count = 0, i;
    json_t *m;
    json_array_foreach(models, i, m)
    {
        const char *name = json_string_value(json_object_get(m, "name"));
        char norm[256];
        if (list == NULL || name == NULL || pc_store_name(name, norm, sizeof(norm), NULL) != PC_OK)
            continue;
        list[count] = strdup(norm);
        if (list[count] != NULL)
            count++;
    }
    json_decref(o);
    *names = list;
    *n = count;
    return 1;
}

int pc_cli_daemon_unload(const char *name)
{
    char base[300], url[320];
    if (pc_cli_daemon_url(base, sizeof(base)) != 0)
        return -1;
    snprintf(url, sizeof(url), "%s/api/generate", base);
    json_t *req = json_pack("{s:s, s:i}", "model", name, "keep_alive", 0);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (body == NULL)
        return -1;
    struct pc_buf resp = PC_BUF_INIT;
    long status = request("POST", url, body, &resp);
    free(body);
    pc_buf_free(&resp);
    return status == 200 ? 0 : -1;
}
