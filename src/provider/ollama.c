/* ollama.c - the remote Ollama provider over libcurl: a poller thread for /api/tags and /api/ps
 * whose findings are cached, and blocking calls for load, prefill and /api/ps. */
#include "ollamaInt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/log.h"

#define CONNECT_TIMEOUT_MS 2000L
#define TAGS_TIMEOUT_MS 5000L

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

size_t pc_ollama_collect(char *p, size_t size, size_t n, void *buf)
{
    return pc_buf_append(buf, p, size * n) ? size * n : 0;
}

bool pc_ollama_same(const char *a, const char *b)
{
    size_t n = strlen(b);
    return strcmp(a, b) == 0 || (strncmp(a, b, n) == 0 && strcmp(a + n, ":latest") == 0);
}

CURL *pc_ollama_easy(const struct pc_ollama *o, const char *method, const char *path,
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

/* What the server's error status means here: its client errors are the client's, a busy
 * server is unavailable, and any other failure there is a bad gateway (502). */
static enum pc_err error_of(long status)
{
    switch (status) {
    case 400:
        return PC_ERR_INVALID;
    case 404:
        return PC_ERR_NOT_FOUND;
    case 503:
        return PC_ERR_UNAVAILABLE;
    default:
        return PC_ERR_NETWORK;
    }
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
    CURL *c = pc_ollama_easy(o, method, path, text, &hdrs, timeout_ms);
    enum pc_err rc = PC_OK;
    if (c == NULL) {
        rc = pc_error_set(err, PC_ERR_NOMEM, "out of memory");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, pc_ollama_collect);
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
        rc = pc_error_set(err, error_of(status), "ollama at %s: %s %s: %ld %s", o->url, method,
                          path, status, e ? e : "");
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
    json_array_foreach(names, i, v) if (pc_ollama_same(json_string_value(v), name)) return true;
    return false;
}

/* The server stopped answering: log and report it once, on the transition, so that a server
 * that is down is one line, not one per poll. Its models stay known, and unavailable. */
static void went_away(struct pc_ollama *o, const struct pc_error *err)
{
    pthread_mutex_lock(&o->lock);
    bool was = o->available;
    o->available = false;
    json_decref(o->ps);
    o->ps = json_array();
    json_t *gone = json_copy(o->models);
    pthread_mutex_unlock(&o->lock);
    if (was) {
        pc_log_warn("ollama", "%s: its models are unavailable until it answers", err->msg);
        if (o->on_change != NULL) {
            json_t *none = json_array();
            o->on_change(o->user, none, gone);
            json_decref(none);
        }
    }
    json_decref(gone);
}

/* One poll: /api/tags for the models, /api/ps for the loaded ones. Only changes are reported. */
static void poll_once(struct pc_ollama *o)
{
    json_t *reply = NULL, *ps = NULL;
    struct pc_error err = {0};
    if (call(o, "GET", "/api/tags", NULL, TAGS_TIMEOUT_MS, &reply, &err) != PC_OK) {
        went_away(o, &err);
        return;
    }
    json_t *now = names_of(reply);
    json_t *tags = json_object_get(reply, "models");
    struct pc_error ps_err = {0};
    if (call(o, "GET", "/api/ps", NULL, TAGS_TIMEOUT_MS, &ps, &ps_err) != PC_OK)
        pc_log_debug("ollama", "%s", ps_err.msg); /* the last list stands until the next poll */

    pthread_mutex_lock(&o->lock);
    bool was = o->available;
    json_t *before = o->models;
    o->models = json_incref(now);
    json_decref(o->tags);
    o->tags = json_is_array(tags) ? json_incref(tags) : json_array();
    o->available = true;
    json_t *loaded = json_object_get(ps, "models");
    if (json_is_array(loaded)) {
        json_decref(o->ps);
        o->ps = json_incref(loaded);
    }
    pthread_mutex_unlock(&o->lock);
    json_decref(ps);
    json_decref(reply);

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
        while (!o->stopping && !o->poke && pthread_cond_timedwait(&o->cond, &o->lock, &ts) == 0)
            ;
        if (o->stopping)
            break;
        o->poke = false;
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
    o->tags = json_array();
    o->ps = json_array();
    o->busy = json_object();
    pthread_mutex_init(&o->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&o->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pc_ollama_pump_init(o) != PC_OK) {
        pc_ollama_free(o);
        return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    }
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
    pc_ollama_pump_stop(o); /* first: freeing a stream counts it out of busy */
    pthread_mutex_lock(&o->lock);
    o->stopping = true;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
    if (o->started)
        pthread_join(o->thread, NULL);
    json_decref(o->models);
    json_decref(o->tags);
    json_decref(o->ps);
    json_decref(o->busy);
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

void pc_ollama_refresh(struct pc_ollama *o)
{
    pthread_mutex_lock(&o->lock);
    o->poke = true;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

bool pc_ollama_has(struct pc_ollama *o, const char *name, char canon[256])
{
    if (o == NULL)
        return false;
    bool found = false;
    pthread_mutex_lock(&o->lock);
    json_t *v;
    size_t i;
    json_array_foreach(o->models, i, v)
    {
        const char *n = json_string_value(v);
        if (pc_ollama_same(n, name)) {
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
    pthread_mutex_lock(&o->lock);
    json_t *out = json_deep_copy(o->tags), *m;
    bool available = o->available;
    pthread_mutex_unlock(&o->lock);
    size_t i;
    json_array_foreach(out, i, m)
    {
        json_object_set_new(m, "provider", json_string("ollama"));
        json_object_set_new(m, "available", json_boolean(available));
    }
    return out;
}

void pc_ollama_status(struct pc_ollama *o, const char *model, struct pc_ollama_model_status *st)
{
    memset(st, 0, sizeof(*st));
    json_t *m, *count;
    const char *name;
    size_t i;
    pthread_mutex_lock(&o->lock);
    st->available = o->available;
    st->known = contains(o->models, model);
    json_array_foreach(o->ps, i, m)
    {
        name = json_string_value(json_object_get(m, "name"));
        st->loaded = st->loaded || (name != NULL && pc_ollama_same(name, model));
    }
    json_object_foreach(o->busy, name, count) if (pc_ollama_same(name, model)) st->in_flight +=
        (int)json_integer_value(count);
    pthread_mutex_unlock(&o->lock);
}

json_t *pc_ollama_ps(struct pc_ollama *o)
{
    pthread_mutex_lock(&o->lock);
    json_t *out = json_deep_copy(o->ps), *m;
    pthread_mutex_unlock(&o->lock);
    size_t i;
    json_array_foreach(out, i, m) json_object_set_new(m, "provider", json_string("ollama"));
    return out;
}

/* /api/generate or /api/chat, not streamed; stats (may be NULL) from its answer. What the
 * server has loaded may have changed, or it may have gone: the poller looks at once. */
static enum pc_err generate(struct pc_ollama *o, const char *path, json_t *body, int64_t timeout_ms,
                            struct pc_ollama_gen_stats *stats, struct pc_error *err)
{
    json_t *reply = NULL;
    enum pc_err rc = call(o, "POST", path, body, (long)timeout_ms, &reply, err);
    if (rc == PC_OK && stats != NULL) {
        stats->prompt_eval_count = json_integer_value(json_object_get(reply, "prompt_eval_count"));
        stats->load_duration = json_integer_value(json_object_get(reply, "load_duration"));
        stats->prompt_eval_duration =
            json_integer_value(json_object_get(reply, "prompt_eval_duration"));
    }
    json_decref(reply);
    if (rc == PC_OK || pc_ollama_available(o))
        pc_ollama_refresh(o); /* not one poll per failed call while the server is down */
    return rc;
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
    enum pc_err rc = generate(o, "/api/generate", body, timeout_ms, NULL, err);
    json_decref(body);
    return rc;
}

enum pc_err pc_ollama_prefill(struct pc_ollama *o, const char *model, json_t *messages,
                              const char *prompt, const char *keep_alive, int64_t timeout_ms,
                              struct pc_ollama_gen_stats *stats, struct pc_error *err)
{
    json_t *body =
        json_pack("{s:s, s:b, s:{s:i}}", "model", model, "stream", 0, "options", "num_predict", 1);
    if (messages != NULL) {
        json_object_set(body, "messages", messages);
    } else {
        json_object_set_new(body, "prompt", json_string(prompt ? prompt : ""));
        json_object_set_new(body, "raw", json_true()); /* as a local precharge: no template */
    }
    if (keep_alive != NULL)
        json_object_set_new(body, "keep_alive", json_string(keep_alive));
    enum pc_err rc =
        generate(o, messages ? "/api/chat" : "/api/generate", body, timeout_ms, stats, err);
    json_decref(body);
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
    *loaded = contains(names, model);
    json_decref(names);
    json_decref(reply);
    return PC_OK;
}
