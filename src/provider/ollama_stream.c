/* ollama_stream.c - proxying to the remote Ollama: every proxied request is a transfer on one
 * curl multi handle that one thread per provider drives, and its body is read without blocking
 * (poll/watch), so a proxied stream holds no thread while the server thinks. A reader that
 * falls behind pauses its transfer (CURL_WRITEFUNC_PAUSE) until it has read. */
#include "ollamaInt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/log.h"

/* What a stream holds for its reader before its transfer is paused. */
#define STREAM_CAP (64u << 10)

struct pc_ollama_stream {
    struct pc_ollama *o;
    CURL *easy; /* touched by the pump thread alone once handed to it */
    struct curl_slist *hdrs;
    char *body;
    char model[256]; /* counted in o->busy while the stream lives; "" : not counted */
    char content_type[128];
    struct pc_ollama_stream *next; /* in o->streams */

    /* o->pump_lock guards the fields below. */
    struct pc_buf data; /* received, not read yet */
    int status;         /* the response's, once its headers are in; 0 before */
    bool done;          /* the transfer ended (result says how) */
    CURLcode result;
    bool added;    /* in the multi handle */
    bool paused;   /* the write callback paused the transfer: the reader was behind */
    bool unpause;  /* the reader caught up: the pump thread resumes the transfer */
    bool released; /* the reader let go (or the open failed): the pump thread frees it */
    void (*wake)(void *arg);
    void *wake_arg;
};

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

/* pump_lock held. */
static void wake_reader(struct pc_ollama_stream *s)
{
    if (s->wake != NULL)
        s->wake(s->wake_arg);
}

/* ---- the pump thread's callbacks ------------------------------------------------------------ */

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
    struct pc_ollama_stream *s = user;
    struct pc_ollama *o = s->o;
    size_t len = size * n;
    pthread_mutex_lock(&o->pump_lock);
    size_t took = len;
    if (s->released)
        took = 0; /* curl ends the transfer: nobody reads it */
    else if (s->data.len >= STREAM_CAP) {
        s->paused = true;
        took = CURL_WRITEFUNC_PAUSE; /* curl keeps these bytes and gives them again */
    } else if (!pc_buf_append(&s->data, p, len))
        took = 0;
    else
        wake_reader(s);
    pthread_mutex_unlock(&o->pump_lock);
    return took;
}

/* The end of the headers (an empty line) of a final response (not 1xx): the status is known. */
static size_t on_header(char *p, size_t size, size_t n, void *user)
{
    struct pc_ollama_stream *s = user;
    size_t len = size * n;
    if (!(len == 2 && p[0] == '\r' && p[1] == '\n') && !(len == 1 && p[0] == '\n'))
        return len;
    long code = 0;
    char *ct = NULL;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(s->easy, CURLINFO_CONTENT_TYPE, &ct);
    if (code < 200)
        return len;
    pthread_mutex_lock(&s->o->pump_lock);
    snprintf(s->content_type, sizeof(s->content_type), "%s", ct ? ct : "application/json");
    s->status = (int)code;
    pthread_cond_broadcast(&s->o->pump_cond);
    pthread_mutex_unlock(&s->o->pump_lock);
    return len;
}

/* ---- the pump thread ---------------------------------------------------------------------- */

/* Free a stream that its reader let go (it was counted out of busy then); the pump thread, no
 * lock held. */
static void destroy(struct pc_ollama_stream *s)
{
    struct pc_ollama *o = s->o;
    if (s->added)
        curl_multi_remove_handle(o->multi, s->easy);
    curl_easy_cleanup(s->easy);
    curl_slist_free_all(s->hdrs);
    pc_buf_free(&s->data);
    free(s->body);
    free(s);
}

/* pump_lock held: add the new transfers; move out the released streams (to gone) and the ones
 * to resume (to cont, through their next pointers they keep). */
static void take_work(struct pc_ollama *o, struct pc_ollama_stream **gone, CURL **cont,
                      size_t *n_cont, size_t max_cont)
{
    struct pc_ollama_stream **link = &o->streams;
    while (*link != NULL) {
        struct pc_ollama_stream *s = *link;
        if (s->released) {
            *link = s->next;
            s->next = *gone;
            *gone = s;
            continue;
        }
        if (!s->added) {
            s->added = true;
            if (curl_multi_add_handle(o->multi, s->easy) != CURLM_OK) {
                s->done = true;
                s->result = CURLE_OUT_OF_MEMORY;
                pthread_cond_broadcast(&o->pump_cond);
                wake_reader(s);
            }
        }
        if (s->unpause && *n_cont < max_cont) {
            s->unpause = false;
            s->paused = false;
            cont[(*n_cont)++] = s->easy;
        }
        link = &s->next;
    }
}

static void *pump_main(void *arg)
{
    struct pc_ollama *o = arg;
    pthread_mutex_lock(&o->pump_lock);
    for (;;) {
        struct pc_ollama_stream *gone = NULL;
        CURL *cont[64];
        size_t n_cont = 0;
        take_work(o, &gone, cont, &n_cont, sizeof(cont) / sizeof(cont[0]));
        bool stop = o->pump_stopping && o->streams == NULL;
        pthread_mutex_unlock(&o->pump_lock);
        while (gone != NULL) {
            struct pc_ollama_stream *next = gone->next;
            destroy(gone);
            gone = next;
        }
        if (stop)
            return NULL;
        /* Outside the lock: a resumed transfer delivers what curl kept, through on_data. */
        for (size_t i = 0; i < n_cont; i++)
            curl_easy_pause(cont[i], CURLPAUSE_CONT);
        int running = 0;
        curl_multi_perform(o->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(o->multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct pc_ollama_stream *s = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            pthread_mutex_lock(&o->pump_lock);
            s->done = true;
            s->result = msg->data.result;
            pthread_cond_broadcast(&o->pump_cond);
            wake_reader(s);
            pthread_mutex_unlock(&o->pump_lock);
        }
        curl_multi_poll(o->multi, NULL, 0, 1000, NULL);
        pthread_mutex_lock(&o->pump_lock);
    }
}

enum pc_err pc_ollama_pump_init(struct pc_ollama *o)
{
    pthread_mutex_init(&o->pump_lock, NULL);
    pthread_cond_init(&o->pump_cond, NULL);
    o->multi = curl_multi_init();
    return o->multi != NULL ? PC_OK : PC_ERR_NOMEM;
}

void pc_ollama_pump_stop(struct pc_ollama *o)
{
    pthread_mutex_lock(&o->pump_lock);
    o->pump_stopping = true;
    bool started = o->pump_started;
    pthread_mutex_unlock(&o->pump_lock);
    if (started) {
        curl_multi_wakeup(o->multi);
        pthread_join(o->pump, NULL);
    }
    curl_multi_cleanup(o->multi);
    pthread_cond_destroy(&o->pump_cond);
    pthread_mutex_destroy(&o->pump_lock);
}

/* ---- the reader --------------------------------------------------------------------------- */

/* Hand s to the pump thread (started on first use) and wait for its status or its end: 1 when
 * the server answered; 0 when it did not, and s is then the pump thread's to free, with *res
 * saying why; -1 when no thread could start (s is still the caller's). */
static int hand_over(struct pc_ollama *o, struct pc_ollama_stream *s, CURLcode *res)
{
    pthread_mutex_lock(&o->pump_lock);
    if (!o->pump_started && pthread_create(&o->pump, NULL, pump_main, o) != 0) {
        pthread_mutex_unlock(&o->pump_lock);
        return -1;
    }
    o->pump_started = true;
    s->next = o->streams;
    o->streams = s;
    curl_multi_wakeup(o->multi);
    while (s->status == 0 && !s->done)
        pthread_cond_wait(&o->pump_cond, &o->pump_lock);
    bool answered = s->status != 0;
    if (!answered) {
        *res = s->result != CURLE_OK ? s->result : CURLE_GOT_NOTHING;
        s->released = true;
        curl_multi_wakeup(o->multi);
    }
    pthread_mutex_unlock(&o->pump_lock);
    return answered ? 1 : 0;
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
    s->easy = pc_ollama_easy(o, method, path, s->body, &s->hdrs, 0);
    if (s->easy == NULL) {
        free(s->body);
        free(s);
        return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    }
    if (model != NULL) {
        snprintf(s->model, sizeof(s->model), "%s", model);
        count_busy(o, s->model, +1);
    }
    curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(s->easy, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
    CURLcode res = CURLE_OK;
    int answered = hand_over(o, s, &res);
    if (answered <= 0 && model != NULL)
        count_busy(o, model, -1);
    if (answered < 0) {
        destroy(s);
        return pc_error_set(err, PC_ERR_NOMEM, "cannot start a thread for the proxy");
    }
    if (answered == 0) {
        /* The poller says it once; a server already known to be down waits for the next poll,
         * so that requests that keep coming do not make a poll each. */
        if (pc_ollama_available(o))
            pc_ollama_refresh(o);
        return pc_error_set(err, PC_ERR_UNAVAILABLE, "ollama at %s is unavailable: %s", o->url,
                            curl_easy_strerror(res));
    }
    *status = s->status;
    *content_type = s->content_type;
    *out = s;
    return PC_OK;
}

enum pc_stream_state pc_ollama_stream_poll(void *stream, struct pc_buf *out)
{
    struct pc_ollama_stream *s = stream;
    struct pc_ollama *o = s->o;
    pthread_mutex_lock(&o->pump_lock);
    bool moved = s->data.len > 0 && pc_buf_append(out, s->data.data, s->data.len);
    if (moved)
        pc_buf_reset(&s->data);
    bool resume = s->paused && !s->unpause && s->data.len == 0;
    if (resume)
        s->unpause = true;
    enum pc_stream_state st = s->done && s->data.len == 0 ? PC_STREAM_END
                              : moved                     ? PC_STREAM_MORE
                                                          : PC_STREAM_WAIT;
    pthread_mutex_unlock(&o->pump_lock);
    if (resume)
        curl_multi_wakeup(o->multi);
    return st;
}

void pc_ollama_stream_watch(void *stream, void (*wake)(void *arg), void *arg)
{
    struct pc_ollama_stream *s = stream;
    pthread_mutex_lock(&s->o->pump_lock);
    s->wake = wake;
    s->wake_arg = arg;
    if (s->data.len > 0 || s->done)
        wake(arg);
    pthread_mutex_unlock(&s->o->pump_lock);
}

void pc_ollama_stream_free(void *stream)
{
    struct pc_ollama_stream *s = stream;
    if (s == NULL)
        return;
    struct pc_ollama *o = s->o;
    /* Out of busy now, not when the pump thread gets to it: the model's state follows. */
    if (s->model[0] != '\0')
        count_busy(o, s->model, -1);
    pc_ollama_refresh(o); /* a proxied request may have loaded or unloaded the model */
    pthread_mutex_lock(&o->pump_lock);
    s->released = true;
    s->wake = NULL;
    pthread_mutex_unlock(&o->pump_lock);
    curl_multi_wakeup(o->multi); /* the pump thread ends the transfer and frees s */
}
