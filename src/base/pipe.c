/* pipe.c - the bounded byte pipe: one lock, a condition for the blocked producer, a waker for
 * the reader. */
#include "pipe.h"

#include <pthread.h>
#include <stdlib.h>

struct pc_pipe {
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t room;  /* signalled when the reader took bytes or left */
    struct pc_buf data;   /* written, not read yet */
    size_t cap;
    bool closed;   /* the producer ended the stream */
    bool released; /* the reader left */
    void (*wake)(void *arg);
    void *wake_arg;
};

struct pc_pipe *pc_pipe_new(size_t cap)
{
    struct pc_pipe *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->room, NULL);
    p->cap = cap;
    return p;
}

static void destroy(struct pc_pipe *p)
{
    pc_buf_free(&p->data);
    pthread_cond_destroy(&p->room);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* Lock held. */
static void wake_reader(struct pc_pipe *p)
{
    if (p->wake != NULL)
        p->wake(p->wake_arg);
}

bool pc_pipe_write(struct pc_pipe *p, const void *data, size_t n)
{
    pthread_mutex_lock(&p->lock);
    while (!p->released && p->data.len >= p->cap)
        pthread_cond_wait(&p->room, &p->lock);
    bool ok = !p->released && pc_buf_append(&p->data, data, n);
    if (ok && n > 0)
        wake_reader(p);
    pthread_mutex_unlock(&p->lock);
    return ok;
}

bool pc_pipe_abandoned(struct pc_pipe *p)
{
    pthread_mutex_lock(&p->lock);
    bool gone = p->released;
    pthread_mutex_unlock(&p->lock);
    return gone;
}

void pc_pipe_close(struct pc_pipe *p)
{
    pthread_mutex_lock(&p->lock);
    p->closed = true;
    bool last = p->released;
    if (!last)
        wake_reader(p);
    pthread_mutex_unlock(&p->lock);
    if (last)
        destroy(p);
}

enum pc_stream_state pc_pipe_poll(void *pipe, struct pc_buf *out)
{
    struct pc_pipe *p = pipe;
    pthread_mutex_lock(&p->lock);
    enum pc_stream_state st = PC_STREAM_WAIT;
    if (p->data.len > 0 && pc_buf_append(out, p->data.data, p->data.len)) {
        pc_buf_reset(&p->data);
        pthread_cond_signal(&p->room);
        st = PC_STREAM_MORE;
    }
    if (p->closed && p->data.len == 0)
        st = PC_STREAM_END;
    pthread_mutex_unlock(&p->lock);
    return st;
}

void pc_pipe_watch(void *pipe, void (*wake)(void *arg), void *arg)
{
    struct pc_pipe *p = pipe;
    pthread_mutex_lock(&p->lock);
    p->wake = wake;
    p->wake_arg = arg;
    if (p->data.len > 0 || p->closed)
        wake_reader(p);
    pthread_mutex_unlock(&p->lock);
}

void pc_pipe_release(void *pipe)
{
    struct pc_pipe *p = pipe;
    pthread_mutex_lock(&p->lock);
    p->released = true;
    p->wake = NULL;
    pthread_cond_signal(&p->room);
    bool last = p->closed;
    pthread_mutex_unlock(&p->lock);
    if (last)
        destroy(p);
}
