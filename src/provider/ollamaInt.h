/* ollamaInt.h - what the ollama provider's files share: the provider's state and its curl
 * handles. */
#ifndef PC_OLLAMA_INT_H
#define PC_OLLAMA_INT_H

#include <curl/curl.h>
#include <pthread.h>

#include "ollama.h"

struct pc_ollama {
    char url[512];
    int64_t poll_ms;
    void (*on_change)(void *user, json_t *models, json_t *removed);
    void *user;
    pthread_t thread;
    bool started;
    /* lock guards everything below; cond wakes the poller (to stop, or to poll at once). It is
     * held only to copy what a poll or a request found, never across a transfer. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    json_t *models; /* names, as the server spells them */
    json_t *tags;   /* the last /api/tags "models" (Ollama's objects), kept while unavailable */
    json_t *ps;     /* the last /api/ps "models" (Ollama's objects); [] while unavailable */
    json_t *busy;   /* {name: proxied requests in flight} */
    bool available;
    bool poke; /* poll now: a request saw the server fail, or changed what it has loaded */
    bool stopping;

    /* The proxy (ollama_stream.c). The pump thread alone drives multi and the easy handles in
     * it. pump_lock guards the fields below and the streams' state; pump_cond wakes an opener
     * when its stream's status is known or its transfer ended. */
    CURLM *multi;
    pthread_t pump;
    pthread_mutex_t pump_lock;
    pthread_cond_t pump_cond;
    bool pump_started;
    bool pump_stopping;
    struct pc_ollama_stream *streams;
};

/* Set up the proxy's state (PC_ERR_NOMEM when curl has no multi handle for it), and stop it:
 * its thread ends once every stream was freed. */
enum pc_err pc_ollama_pump_init(struct pc_ollama *o);
void pc_ollama_pump_stop(struct pc_ollama *o);

/* A handle for method url+path with body (a JSON text, or NULL; borrowed until the transfer
 * ends). *hdrs gets the headers to free after it. timeout_ms 0: none. NULL when out of memory. */
CURL *pc_ollama_easy(const struct pc_ollama *o, const char *method, const char *path,
                     const char *body, struct curl_slist **hdrs /* OUT */, long timeout_ms);

/* curl's write callback into a struct pc_buf. */
size_t pc_ollama_collect(char *p, size_t size, size_t n, void *buf);

/* Whether a (the server's spelling, "m:latest") names b ("m" or "m:latest"). */
bool pc_ollama_same(const char *a, const char *b);

#endif
