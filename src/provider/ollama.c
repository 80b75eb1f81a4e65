/* ollama.c - the remote Ollama provider over libcurl: a poller thread for /api/tags, blocking
 * calls for load, unload and /api/ps, and a pull-driven stream (curl multi) for proxying. */
#include "ollama.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/log.h"

#define CONNECT_TIMEOUT_MS 2000L
#define TAGS_TIMEOUT_MS 5000L

struct pc_ollama {
    char url[512];
    int64_t poll_ms;
    void (*on_change)(void *user, json_t *models, json_t *removed);
    void *user;
    pthread_t thread;
    bool started;
    /* lock guards models, available and stopping; cond wakes the poller to stop. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    json_t *models; /* names, as the server spells them */
    bool available;
    bool stopping;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t collect(char *p, size_t size, size_t n, void *user)
{
    return pc_buf_append(user, p, size * n) ? size * n : 0;
}

static CURL *easy_for(const struct pc_ollama *o, const char *method, const char *path,
                      const char *body, struct curl_slist **hdrs, long timeout_ms)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", o->url, path);
    CURL *c = curl_easy_init();
    if (c == NULL)
        return NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    if (timeout_ms > 0)
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    return c;
}

/* One whole request. *reply is the parsed body (the caller decrefs); a status >= 400 is an
 * error that carries the server's own "error" text. */
static enum pc_err call(struct pc_ollama *o, const char *method, const char *path, json_t *body,
                        long timeout_ms, json_t **reply, struct pc_error *err)
{
    struct curl_slist *hdrs = NULL;
    struct pc_buf buf = PC_BUF_INIT;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    *reply = NULL;
    CURL *c = easy_for(o, method, path, text, &hdrs, timeout_ms);
    enum pc_err rc = PC_OK;
    if (c == NULL) {
        rc = pc_error_set(err, PC_ERR_NOMEM, "out of memory");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
    CURLcode res = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (res != CURLE_OK) {
        rc =
            pc_error_set(err, res == CURLE_OPERATION_TIMEDOUT ? PC_ERR_TIMEOUT : PC_ERR_UNAVAILABLE,
                         "ollama at %s: %s", o->url, curl_easy_strerror(res));
        goto out;
    }
    *reply = buf.len ? json_loadb(buf.data, buf.len, 0, NULL) : NULL;
    if (status >= 400) {
        const char *e = json_string_value(json_object_get(*reply, "error"));
        rc = pc_error_set(err, status == 404 ? PC_ERR_NOT_FOUND : PC_ERR_UNAVAILABLE,
                          "ollama at %s: %s %s: %ld %s", o->url, method, path, status, e ? e : "");
        json_decref(*reply);
        *reply = NULL;
    }
out:
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    pc_buf_free(&buf);
    free(text);
    return rc;
}

/* Names in a /api/tags or /api/ps reply. */
static json_t *names_of(json_t *reply)
{
    json_t *names = json_array(), *m;
    size_t i;
    json_array_foreach(json_object_get(reply, "models"), i, m)
    {
        const char *n = json_string_value(json_object_get(m, "name"));
        if (n != NULL)
            json_array_append_new(names, json_string(n));
    }
    return names;
}

static bool contains(json_t *names, const char *name)
{
    json_t *v;
    size_t i;
    json_array_foreach(names, i, v) if (strcmp(json_string_value(v), name) == 0) return true;
    return false;
}

/* One poll of /api/tags: log and report only what changed, so that a server that is down is
 * one line, not one per poll. While it is down its models stay known, and unavailable. */
static void poll_once(struct pc_ollama *o)
{
    json_t *reply = NULL;
    struct pc_error err = {0};
    enum pc_err rc = call(o, "GET", "/api/tags", NULL, TAGS_TIMEOUT_MS, &reply, &err);
    if (rc != PC_OK) {
        pthread_mutex_lock(&o->lock);
        bool was = o->available;
        o->available = false;
        json_t *gone = json_copy(o->models);
        pthread_mutex_unlock(&o->lock);
        if (was) {
            pc_log_warn("ollama", "%s: its models are unavailable until it answers", err.msg);
            if (o->on_change != NULL) {
                json_t *none = json_array();
                o->on_change(o->user, none, gone);
                json_decref(none);
            }
        }
        json_decref(gone);
        return;
    }
    json_t *now = names_of(reply);
    json_decref(reply);

    pthread_mutex_lock(&o->lock);
    bool was = o->available;
    json_t *before = o->models;
    o->models = json_incref(now);
    o->available = true;
    pthread_mutex_unlock(&o->lock);

    json_t *removed = json_array(), *v;
    size_t i;
    json_array_foreach(before, i, v) if (!contains(now, json_string_value(v)))
        json_array_append(removed, v);
    bool changed =
        !was || json_array_size(removed) > 0 || json_array_size(now) != json_array_size(before);
    if (!was)
        pc_log_info("ollama", "%s is available: %zu models", o->url, json_array_size(now));
    if (changed && o->on_change != NULL)
        o->on_change(o->user, now, removed);
    json_decref(now);
    json_decref(before);
    json_decref(removed);
}

static void *poll_main(void *arg)
{
    struct pc_ollama *o = arg;
    pthread_mutex_lock(&o->lock);
    while (!o->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + (o->poll_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(o->poll_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        while (!o->stopping && pthread_cond_timedwait(&o->cond, &o->lock, &ts) == 0)
            ;
        if (o->stopping)
            break;
        pthread_mutex_unlock(&o->lock);
        poll_once(o);
        pthread_mutex_lock(&o->lock);
    }
    pthread_mutex_unlock(&o->lock);
    return NULL;
}

enum pc_err pc_ollama_new(const char *url, int64_t poll_ms,
                          void (*on_change)(void *user, json_t *models, json_t *removed),
                          void *user, struct pc_ollama **out, struct pc_error *err)
{
    *out = NULL;
    pthread_once(&curl_once, curl_init_once);
    struct pc_ollama *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    snprintf(o->url, sizeof(o->url), "%s", url);
    size_t len = strlen(o->url);
    while (len > 0 && o->url[len - 1] == '/')
        o->url[--len] = '\0';
    o->poll_ms = poll_ms > 0 ? poll_ms : 10000;
    o->on_change = on_change;
    o->user = user;
    o->models = json_array();
    pthread_mutex_init(&o->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&o->cond, &ca);
    pthread_condattr_destroy(&ca);
    poll_once(o);
    /* Not having an Ollama is common: say so once, quietly; a server that goes away warns. */
    if (!o->available)
        pc_log_info("ollama", "no server answers at %s yet; its models appear when one does",
                    o->url);
    if (pthread_create(&o->thread, NULL, poll_main, o) != 0) {
        pc_ollama_free(o);
        return pc_error_set(err, PC_ERR_NOMEM, "cannot start a thread");
    }
    o->started = true;
    *out = o;
    return PC_OK;
}

void pc_ollama_free(struct pc_ollama *o)
{
    if (o == NULL)
        return;
    pthread_mutex_lock(&o->lock);
    o->stopping = true;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
    if (o->started)
        pthread_join(o->thread, NULL);
    json_decref(o->models);
    pthread_cond_destroy(&o->cond);
    pthread_mutex_destroy(&o->lock);
    free(o);
}

bool pc_ollama_available(struct pc_ollama *o)
{
    pthread_mutex_lock(&o->lock);
    bool a = o->available;
    pthread_mutex_unlock(&o->lock);
    return a;
}

const char *pc_ollama_url(const struct pc_ollama *o)
{
    return o->url;
}

bool pc_ollama_has(struct pc_ollama *o, const char *name, char canon[256])
{
    if (o == NULL)
        return false;
    char latest[300];
    snprintf(latest, sizeof(latest), "%s:latest", name);
    bool found = false;
    pthread_mutex_lock(&o->lock);
    json_t *v;
    size_t i;
    json_array_foreach(o->models, i, v)
    {
        const char *n = json_string_value(v);
        if (strcmp(n, name) == 0 || strcmp(n, latest) == 0) {
            found = true;
            if (canon)
                snprintf(canon, 256, "%s", n);
            break;
        }
    }
    pthread_mutex_unlock(&o->lock);
    return found;
}

json_t *pc_ollama_models(struct pc_ollama *o)
{
    json_t *out = json_array(), *v;
    size_t i;
    pthread_mutex_lock(&o->lock);
    json_array_foreach(o->models, i, v)
        json_array_append_new(out, json_pack("{s:O, s:s, s:b}", "name", v, "provider", "ollama",
                                             "available", o->available));
    pthread_mutex_unlock(&o->lock);
    return out;
}

enum pc_err pc_ollama_load(struct pc_ollama *o, const char *model, const char *keep_alive,
                           const char *prompt, int64_t timeout_ms, struct pc_error *err)
{
    json_t *body =
        json_pack("{s:s, s:s, s:b}", "model", model, "prompt", prompt ? prompt : "", "stream", 0);
    if (keep_alive != NULL)
        json_object_set_new(body, "keep_alive", json_string(keep_alive));
    if (prompt != NULL && prompt[0] != '\0')
        json_object_set_new(body, "options", json_pack("{s:i}", "num_predict", 1));
    json_t *reply = NULL;
    enum pc_err rc = call(o, "POST", "/api/generate", body, (long)timeout_ms, &reply, err);
    json_decref(body);
    json_decref(reply);
    return rc;
}

enum pc_err pc_ollama_loaded(struct pc_ollama *o, const char *model, bool *loaded,
                             struct pc_error *err)
{
    json_t *reply = NULL;
    *loaded = false;
    enum pc_err rc = call(o, "GET", "/api/ps", NULL, TAGS_TIMEOUT_MS, &reply, err);
    if (rc != PC_OK)
        return rc;
    json_t *names = names_of(reply);
    char latest[300];
    snprintf(latest, sizeof(latest), "%s:latest", model);
    *loaded = contains(names, model) || contains(names, latest);
    json_decref(names);
    json_decref(reply);
    return PC_OK;
}

/* ---- proxying ------------------------------------------------------------------------------ */

struct pc_ollama_stream {
    CURLM *multi;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    struct pc_buf buf; /* received, not yet handed out */
    bool done;
    char content_type[128];
};

static bool have_status(struct pc_ollama_stream *s)
{
    long code = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    return code != 0;
}

/* Run the transfer until data is buffered (or, with headers, the status is known) or it ends. */
static void pump(struct pc_ollama_stream *s, bool headers)
{
    while (s->buf.len == 0 && !s->done && !(headers && have_status(s))) {
        int running = 0;
        curl_multi_perform(s->multi, &running);
        if (running == 0) {
            s->done = true;
            break;
        }
        if (s->buf.len == 0 && !(headers && have_status(s)))
            curl_multi_poll(s->multi, NULL, 0, 1000, NULL);
    }
}

enum pc_err pc_ollama_stream_open(struct pc_ollama *o, const char *method, const char *path,
                                  const char *body, struct pc_ollama_stream **out, int *status,
                                  const char **content_type, struct pc_error *err)
{
    *out = NULL;
    struct pc_ollama_stream *s = calloc(1, sizeof(*s));
    if (s == NULL || (body && (s->body = strdup(body)) == NULL)) {
        free(s);
        return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    }
    s->easy = easy_for(o, method, path, s->body, &s->hdrs, 0);
    s->multi = curl_multi_init();
    if (s->easy == NULL || s->multi == NULL) {
        pc_ollama_stream_free(s);
        return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    }
    curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, &s->buf);
    curl_multi_add_handle(s->multi, s->easy);
    pump(s, true);
    long code = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code == 0) {
        int left;
        CURLMsg *msg = curl_multi_info_read(s->multi, &left);
        CURLcode res = msg ? msg->data.result : CURLE_COULDNT_CONNECT;
        pc_ollama_stream_free(s);
        pthread_mutex_lock(&o->lock);
        o->available = false; /* the poller logs it, once, and brings it back */
        pthread_mutex_unlock(&o->lock);
        return pc_error_set(err, PC_ERR_UNAVAILABLE, "ollama at %s is unavailable: %s", o->url,
                            curl_easy_strerror(res));
    }
    char *ct = NULL;
    curl_easy_getinfo(s->easy, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(s->content_type, sizeof(s->content_type), "%s", ct ? ct : "application/json");
    *status = (int)code;
    *content_type = s->content_type;
    *out = s;
    return PC_OK;
}

bool pc_ollama_stream_next(struct pc_ollama_stream *s, struct pc_buf *out)
{
    pump(s, false);
    if (s->buf.len > 0) {
        pc_buf_append(out, s->buf.data, s->buf.len);
        pc_buf_reset(&s->buf);
    }
    return !(s->done && s->buf.len == 0);
}

void pc_ollama_stream_free(struct pc_ollama_stream *s)
{
    if (s == NULL)
        return;
    if (s->multi && s->easy)
        curl_multi_remove_handle(s->multi, s->easy);
    curl_easy_cleanup(s->easy);
    curl_multi_cleanup(s->multi);
    curl_slist_free_all(s->hdrs);
    pc_buf_free(&s->buf);
    free(s->body);
    free(s);
}
