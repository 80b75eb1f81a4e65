/* events.c - the event bus: a ring of serialized events, subscribers woken by a condition
 * variable, and the lifecycle state each event leaves its model in. */
#include "events.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../base/buf.h"
#include "../base/clock.h"
#include "../base/utf8.h"

struct event {
    uint64_t seq;
    enum pc_event_type type;
    char *json;
};

struct model_state {
    char name[128];
    enum pc_model_state state;
    int64_t since_ns;
    char corr[40];
    char error[320]; /* why it is failed; "" in every other state */
};

struct pc_events_sub {
    struct pc_events *ev;
    char *streams;
    uint64_t cursor; /* the last event it was given or skipped */
    void (*wake)(void *arg);
    void *wake_arg;
    struct pc_events_sub *prev, *next; /* in ev->subs, under ev->lock, as the fields above */
};

struct pc_events {
    /* lock guards everything below; publish and wait hold it only to copy strings. */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct event *ring;
    size_t ring_size;
    uint64_t next_seq; /* the seq the next event gets; events [next_seq - ring_size, next_seq) */
    bool closed;
    struct model_state *states;
    size_t n_states, cap_states;
    struct pc_events_sub *subs;
    size_t n_subs;
};

static const struct {
    const char *name;
    const char *stream;
} types[] = {
    [PC_EV_MODELS_DISCOVERED] = {"ModelsDiscovered", "models"},
    [PC_EV_PRECHARGE_REQUESTED] = {"PrechargeRequested", "precharge:requests"},
    [PC_EV_PRECHARGE_COMPLETED] = {"PrechargeCompleted", "precharge:responses"},
    [PC_EV_LLM_REQUESTED] = {"LlmRequested", "models"},
    [PC_EV_LLM_COMPLETED] = {"LlmCompleted", "models"},
    [PC_EV_MODEL_LOADED] = {"ModelLoaded", "models"},
    [PC_EV_MODEL_EVICTED] = {"ModelEvicted", "models"},
    [PC_EV_MODEL_LOADING] = {"ModelLoading", "models"},
    [PC_EV_MODEL_FAILED] = {"ModelFailed", "models"},
    [PC_EV_MODEL_PRELOADED] = {"ModelPreloaded", "models"},
    [PC_EV_MODEL_HEALTH_CHECKED] = {"ModelHealthChecked", "models"},
    [PC_EV_MODEL_UPDATE_AVAILABLE] = {"ModelUpdateAvailable", "models"},
};

const char *pc_event_name(enum pc_event_type t)
{
    return types[t].name;
}

const char *pc_event_stream(enum pc_event_type t)
{
    return types[t].stream;
}

const char *pc_state_name(enum pc_model_state s)
{
    static const char *const names[] = {"unavailable", "pretrained", "loading",
                                        "precharged",  "active",     "failed"};
    return names[s];
}

void pc_uuid(char out[37])
{
    unsigned char b[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, b, sizeof(b)) : -1;
    if (fd >= 0)
        close(fd);
    if (got != (ssize_t)sizeof(b)) {
        uint64_t t = (uint64_t)pc_clock_wall_ns() ^ (uint64_t)pc_clock_mono_ns() << 17;
        for (size_t i = 0; i < sizeof(b);
             i++, t = t * 6364136223846793005ull + 1442695040888963407ull)
            b[i] = (unsigned char)(t >> 56);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static bool wanted(const char *streams, const char *stream)
{
    if (streams == NULL || *streams == '\0')
        return true;
    size_t n = strlen(stream);
    for (const char *p = streams; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, stream, n) == 0)
            return true;
        p += len + (p[len] == ',');
    }
    return false;
}

/* Lock held: wake the subscribers that want an event of this stream (NULL: all). */
static void wake_subs(struct pc_events *ev, const char *stream)
{
    for (struct pc_events_sub *sub = ev->subs; sub != NULL; sub = sub->next)
        if (sub->wake != NULL && (stream == NULL || wanted(sub->streams, stream)))
            sub->wake(sub->wake_arg);
}

struct pc_events *pc_events_new(size_t ring_size)
{
    struct pc_events *ev = calloc(1, sizeof(*ev));
    if (ev == NULL || (ev->ring = calloc(ring_size, sizeof(*ev->ring))) == NULL) {
        free(ev);
        return NULL;
    }
    ev->ring_size = ring_size;
    ev->next_seq = 1;
    pthread_mutex_init(&ev->lock, NULL);
    pthread_cond_init(&ev->changed, NULL);
    return ev;
}

void pc_events_close(struct pc_events *ev)
{
    pthread_mutex_lock(&ev->lock);
    ev->closed = true;
    pthread_cond_broadcast(&ev->changed);
    wake_subs(ev, NULL);
    pthread_mutex_unlock(&ev->lock);
}

void pc_events_free(struct pc_events *ev)
{
    if (ev == NULL)
        return;
    for (size_t i = 0; i < ev->ring_size; i++)
        free(ev->ring[i].json);
    free(ev->ring);
    free(ev->states);
    pthread_cond_destroy(&ev->changed);
    pthread_mutex_destroy(&ev->lock);
    free(ev);
}

static struct model_state *state_of(struct pc_events *ev, const char *name, bool create)
{
    for (size_t i = 0; i < ev->n_states; i++)
        if (strcmp(ev->states[i].name, name) == 0)
            return &ev->states[i];
    if (!create)
        return NULL;
    if (ev->n_states == ev->cap_states) {
        size_t cap = ev->cap_states ? ev->cap_states * 2 : 16;
        struct model_state *p = realloc(ev->states, cap * sizeof(*p));
        if (p == NULL)
            return NULL;
        ev->states = p;
        ev->cap_states = cap;
    }
    struct model_state *s = &ev->states[ev->n_states++];
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", name);
    return s;
}

static void set_state(struct pc_events *ev, const char *model, enum pc_model_state st,
                      const char *corr)
{
    struct model_state *s = state_of(ev, model, true);
    if (s == NULL)
        return;
    if (s->state != st)
        s->since_ns = pc_clock_wall_ns();
    s->state = st;
    snprintf(s->corr, sizeof(s->corr), "%s", corr ? corr : "");
    s->error[0] = '\0';
}

/* Lock held: the state machine of seed 000, extended with loading and failure. */
static void apply(struct pc_events *ev, enum pc_event_type type, const char *model,
                  const char *corr, json_t *data)
{
    if (type == PC_EV_MODELS_DISCOVERED) {
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(data, "models"), i, m)
        {
            const char *name = json_string_value(m);
            struct model_state *s = name ? state_of(ev, name, false) : NULL;
            if (name && (s == NULL || s->state == PC_STATE_UNAVAILABLE))
                set_state(ev, name, PC_STATE_PRETRAINED, corr);
        }
        json_array_foreach(json_object_get(data, "removed"), i, m)
        {
            if (json_is_string(m))
                set_state(ev, json_string_value(m), PC_STATE_UNAVAILABLE, corr);
        }
        return;
    }
    if (model == NULL)
        return;
    switch (type) {
    case PC_EV_MODEL_LOADING:
        set_state(ev, model, PC_STATE_LOADING, corr);
        break;
    case PC_EV_MODEL_FAILED: {
        set_state(ev, model, PC_STATE_FAILED, corr);
        struct model_state *s = state_of(ev, model, false);
        const char *why = json_string_value(json_object_get(data, "error"));
        if (s != NULL && why != NULL) {
            snprintf(s->error, sizeof(s->error), "%s", why);
            s->error[pc_utf8_complete_prefix(s->error, strlen(s->error))] = '\0';
        }
        break;
    }
    case PC_EV_MODEL_LOADED:
    case PC_EV_MODEL_PRELOADED:
        set_state(ev, model, PC_STATE_PRECHARGED, corr);
        break;
    case PC_EV_MODEL_EVICTED:
        set_state(ev, model, PC_STATE_PRETRAINED, corr);
        break;
    case PC_EV_PRECHARGE_COMPLETED: {
        /* A failed or superseded precharge leaves the model as it was. */
        const char *status = json_string_value(json_object_get(data, "status"));
        if (status != NULL && (strcmp(status, "ready") == 0 || strcmp(status, "already_warm") == 0))
            set_state(ev, model, PC_STATE_PRECHARGED, corr);
        break;
    }
    case PC_EV_LLM_REQUESTED:
        set_state(ev, model, PC_STATE_ACTIVE, corr);
        break;
    case PC_EV_LLM_COMPLETED:
        /* Back to warm, with the conversation as its context. */
        set_state(ev, model, PC_STATE_PRECHARGED, corr);
        break;
    default:
        break;
    }
}

uint64_t pc_events_publish(struct pc_events *ev, enum pc_event_type type, const char *model_id,
                           const char *correlation_id, json_t *data)
{
    char ts[40];
    if (data == NULL)
        data = json_object();
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:o}", "type", types[type].name, "stream", types[type].stream,
                  "at", pc_clock_rfc3339(pc_clock_wall_ns(), ts, sizeof(ts)), "data", data);
    if (o == NULL)
        return 0;
    if (correlation_id != NULL) {
        json_object_set_new(data, "correlation_id", json_string(correlation_id));
        json_object_set_new(o, "metadata", json_pack("{s:s}", "correlation_id", correlation_id));
    }
    if (model_id != NULL)
        json_object_set_new(data, "model_id", json_string(model_id));
    char *text = json_dumps(o, JSON_COMPACT);

    pthread_mutex_lock(&ev->lock);
    apply(ev, type, model_id, correlation_id, data);
    uint64_t seq = ev->next_seq++;
    struct event *slot = &ev->ring[seq % ev->ring_size];
    free(slot->json);
    slot->seq = seq;
    slot->type = type;
    slot->json = text;
    pthread_cond_broadcast(&ev->changed);
    wake_subs(ev, types[type].stream);
    pthread_mutex_unlock(&ev->lock);
    json_decref(o);
    return seq;
}

uint64_t pc_events_last(struct pc_events *ev)
{
    pthread_mutex_lock(&ev->lock);
    uint64_t last = ev->next_seq - 1;
    pthread_mutex_unlock(&ev->lock);
    return last;
}

/* Lock held: append the frames after *cursor that streams wants, and move *cursor. */
static void collect(struct pc_events *ev, uint64_t *cursor, const char *streams, struct pc_buf *b)
{
    uint64_t first = ev->next_seq > ev->ring_size ? ev->next_seq - ev->ring_size : 1;
    if (*cursor + 1 < first)
        *cursor = first - 1;
    for (uint64_t s = *cursor + 1; s < ev->next_seq; s++) {
        const struct event *e = &ev->ring[s % ev->ring_size];
        if (e->json != NULL && wanted(streams, types[e->type].stream))
            pc_buf_printf(b, "id: %llu\nevent: %s\ndata: %s\n\n", (unsigned long long)s,
                          types[e->type].name, e->json);
        *cursor = s;
    }
}

bool pc_events_wait(struct pc_events *ev, uint64_t *cursor, const char *streams, int timeout_ms,
                    char **out)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    struct pc_buf b = PC_BUF_INIT;
    *out = NULL;

    pthread_mutex_lock(&ev->lock);
    for (;;) {
        if (ev->closed) {
            pthread_mutex_unlock(&ev->lock);
            pc_buf_free(&b);
            return false;
        }
        collect(ev, cursor, streams, &b);
        if (b.len > 0)
            break;
        if (pthread_cond_timedwait(&ev->changed, &ev->lock, &deadline) != 0)
            break;
    }
    pthread_mutex_unlock(&ev->lock);
    *out = b.len > 0 ? pc_buf_steal(&b) : NULL;
    pc_buf_free(&b);
    return true;
}

struct pc_events_sub *pc_events_subscribe(struct pc_events *ev, const char *streams, size_t max)
{
    struct pc_events_sub *sub = calloc(1, sizeof(*sub));
    if (sub == NULL || (sub->streams = strdup(streams ? streams : "")) == NULL) {
        free(sub);
        return NULL;
    }
    sub->ev = ev;
    pthread_mutex_lock(&ev->lock);
    if (max > 0 && ev->n_subs >= max) {
        pthread_mutex_unlock(&ev->lock);
        free(sub->streams);
        free(sub);
        return NULL;
    }
    sub->cursor = ev->next_seq - 1;
    sub->next = ev->subs;
    if (ev->subs != NULL)
        ev->subs->prev = sub;
    ev->subs = sub;
    ev->n_subs++;
    pthread_mutex_unlock(&ev->lock);
    return sub;
}

bool pc_events_read(struct pc_events_sub *sub, struct pc_buf *out)
{
    struct pc_events *ev = sub->ev;
    pthread_mutex_lock(&ev->lock);
    bool open = !ev->closed;
    if (open)
        collect(ev, &sub->cursor, sub->streams, out);
    pthread_mutex_unlock(&ev->lock);
    return open;
}

void pc_events_watch(struct pc_events_sub *sub, void (*wake)(void *arg), void *arg)
{
    struct pc_events *ev = sub->ev;
    pthread_mutex_lock(&ev->lock);
    sub->wake = wake;
    sub->wake_arg = arg;
    if (ev->closed || sub->cursor + 1 < ev->next_seq)
        wake(arg);
    pthread_mutex_unlock(&ev->lock);
}

void pc_events_unsubscribe(struct pc_events_sub *sub)
{
    if (sub == NULL)
        return;
    struct pc_events *ev = sub->ev;
    pthread_mutex_lock(&ev->lock);
    if (sub->prev != NULL)
        sub->prev->next = sub->next;
    else
        ev->subs = sub->next;
    if (sub->next != NULL)
        sub->next->prev = sub->prev;
    ev->n_subs--;
    pthread_mutex_unlock(&ev->lock);
    free(sub->streams);
    free(sub);
}

size_t pc_events_subscribers(struct pc_events *ev)
{
    pthread_mutex_lock(&ev->lock);
    size_t n = ev->n_subs;
    pthread_mutex_unlock(&ev->lock);
    return n;
}

enum pc_model_state pc_events_state(struct pc_events *ev, const char *model_id, int64_t *since_ns,
                                    char corr[40])
{
    pthread_mutex_lock(&ev->lock);
    struct model_state *s = state_of(ev, model_id, false);
    enum pc_model_state st = s ? s->state : PC_STATE_UNAVAILABLE;
    if (since_ns != NULL)
        *since_ns = s ? s->since_ns : 0;
    if (corr != NULL)
        snprintf(corr, 40, "%s", s ? s->corr : "");
    pthread_mutex_unlock(&ev->lock);
    return st;
}

bool pc_events_failure(struct pc_events *ev, const char *model_id, char *buf, size_t size)
{
    pthread_mutex_lock(&ev->lock);
    struct model_state *s = state_of(ev, model_id, false);
    bool failed = s != NULL && s->state == PC_STATE_FAILED;
    snprintf(buf, size, "%s", failed ? s->error : "");
    pthread_mutex_unlock(&ev->lock);
    return failed;
}
