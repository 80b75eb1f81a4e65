/* ollama_stream.c - proxying to the remote Ollama: one request whose response body is pulled
 * chunk by chunk (curl multi, pumped by the reader), so that streaming passes through intact and
 * nothing waits for the whole body. */
#include "ollamaInt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pc_ollama_stream {
    struct pc_ollama *o;
    CURLM *multi;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    struct pc_buf head;  /* what came with the status, before the first pull */
    struct pc_buf *sink; /* where curl writes: head, then the reader's buffer */
    bool done;
    bool answered;   /* the server sent a status: the request reached it */
    char model[256]; /* counted in o->busy while the stream lives; "" : not counted */
    char content_type[128];
};

static size_t to_sink(char *p, size_t size, size_t n, void *user)
{
    struct pc_ollama_stream *s = user;
    return pc_ollama_collect(p, size, n, s->sink);
}

static bool have_status(struct pc_ollama_stream *s)
{
    long code = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    return code != 0;
}

/* Run the transfer until the sink has grown past len (or, with headers, the status is known)
 * or the transfer ends. */
static void pump(struct pc_ollama_stream *s, size_t len, bool headers)
{
    while (s->sink->len == len && !s->done && !(headers && have_status(s))) {
        int running = 0;
        curl_multi_perform(s->multi, &running);
        if (running == 0) {
            s->done = true;
            break;
        }
        if (s->sink->len == len && !(headers && have_status(s)))
            curl_multi_poll(s->multi, NULL, 0, 1000, NULL);
    }
}

/* Count model's requests in flight (delta +1 or -1). */
static void count_busy(struct pc_ollama *o, const char *model, int delta)
{
    pthread_mutex_lock(&o->lock);
    json_int_t n = json_integer_value(json_object_get(o->busy, model)) + delta;
    if (n > 0)
        json_object_set_new(o->busy, model, json_integer(n));
    else
        json_object_del(o->busy, model);
    pthread_mutex_unlock(&o->lock);
}

enum pc_err pc_ollama_stream_open(struct pc_ollama *o, const char *method, const char *path,
                                  const char *body, const char *model,
                                  struct pc_ollama_stream **out, int *status,
                                  const char **content_type, struct pc_error *err)
{
    *out = NULL;
    struct pc_ollama_stream *s = calloc(1, sizeof(*s));
    if (s == NULL || (body && (s->body = strdup(body)) == NULL)) {
        free(s);
        return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    }
    s->o = o;
    s->sink = &s->head;
    s->easy = pc_ollama_easy(o, method, path, s->body, &s->hdrs, 0);
    s->multi = curl_multi_init();
    if (s->easy == NULL || s->multi == NULL) {
        pc_ollama_stream_free(s);
        return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    }
    if (model != NULL) {
        snprintf(s->model, sizeof(s->model), "%s", model);
        count_busy(o, s->model, +1);
    }
    curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, to_sink);
    curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
    curl_multi_add_handle(s->multi, s->easy);
    pump(s, 0, true);
    long code = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code == 0) {
        int left;
        CURLMsg *msg = curl_multi_info_read(s->multi, &left);
        CURLcode res = msg ? msg->data.result : CURLE_COULDNT_CONNECT;
        pc_ollama_stream_free(s);
        /* The poller says it once; a server already known to be down waits for the next poll,
         * so that requests that keep coming do not make a poll each. */
        if (pc_ollama_available(o))
            pc_ollama_refresh(o);
        return pc_error_set(err, PC_ERR_UNAVAILABLE, "ollama at %s is unavailable: %s", o->url,
                            curl_easy_strerror(res));
    }
    s->answered = true;
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
    size_t start = out->len;
    if (s->head.len > 0) {
        pc_buf_append(out, s->head.data, s->head.len);
        pc_buf_free(&s->head);
    }
    s->sink = out;
    pump(s, start, false);
    s->sink = &s->head; /* out is the reader's: nothing may write there after this returns */
    return !(s->done && s->head.len == 0);
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
    pc_buf_free(&s->head);
    free(s->body);
    if (s->model[0] != '\0')
        count_busy(s->o, s->model, -1);
    if (s->answered)
        pc_ollama_refresh(s->o); /* a proxied request may have loaded or unloaded the model */
    free(s);
}
