/* workers.c - the growing thread pool: a queue of tasks, idle threads waiting on a condition,
 * detached threads that count themselves out. */
#include "workers.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"

/* How long a thread waits for a task before it exits. */
#define IDLE_EXIT_S 5

struct task {
    void (*fn)(void *arg);
    void *arg;
    struct task *next;
};

struct pc_workers {
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t work;  /* a task was queued, or the pool stops */
    pthread_cond_t gone;  /* a thread exited */
    struct task *head, *tail;
    size_t queued; /* tasks in the queue */
    size_t max;
    size_t threads; /* running, busy or idle */
    size_t idle;    /* waiting on work */
    bool stopping;
};

struct pc_workers *pc_workers_new(size_t max)
{
    struct pc_workers *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->work, &attr);
    pthread_condattr_destroy(&attr);
    pthread_cond_init(&w->gone, NULL);
    w->max = max > 0 ? max : 1;
    return w;
}

/* Lock held: wait up to IDLE_EXIT_S for a task; NULL when the thread should exit. */
static struct task *next_task(struct pc_workers *w)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += IDLE_EXIT_S;
    while (w->head == NULL && !w->stopping) {
        w->idle++;
        int rc = pthread_cond_timedwait(&w->work, &w->lock, &until);
        w->idle--;
        if (rc != 0 && w->head == NULL)
            return NULL;
    }
    struct task *t = w->head;
    if (t != NULL) {
        w->head = t->next;
        w->queued--;
        if (w->head == NULL)
            w->tail = NULL;
    }
    return t;
}

static void *run(void *arg)
{
    struct pc_workers *w = arg;
    pthread_mutex_lock(&w->lock);
    struct task *t;
    while ((t = next_task(w)) != NULL) {
        pthread_mutex_unlock(&w->lock);
        t->fn(t->arg);
        free(t);
        pthread_mutex_lock(&w->lock);
    }
    w->threads--;
    pthread_cond_broadcast(&w->gone);
    /* Nothing touches w after this: pc_workers_free may free it as soon as the lock is free. */
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Lock held. */
static bool start_thread(struct pc_workers *w)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t tid;
    int rc = pthread_create(&tid, &attr, run, w);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pc_log_warn("workers", "pthread_create() failed (%d threads running): error %d",
                    (int)w->threads, rc);
        return false;
    }
    w->threads++;
    return true;
}

bool pc_workers_submit(struct pc_workers *w, void (*fn)(void *arg), void *arg)
{
    struct task *t = malloc(sizeof(*t));
    if (t == NULL)
        return false;
    *t = (struct task){.fn = fn, .arg = arg};
    pthread_mutex_lock(&w->lock);
    /* An idle thread takes one queued task: start a thread unless enough of them wait. */
    if (w->queued + 1 > w->idle && w->threads < w->max && !start_thread(w) && w->threads == 0) {
        pthread_mutex_unlock(&w->lock);
        free(t);
        return false;
    }
    if (w->tail != NULL)
        w->tail->next = t;
    else
        w->head = t;
    w->tail = t;
    w->queued++;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->lock);
    return true;
}

size_t pc_workers_threads(struct pc_workers *w)
{
    pthread_mutex_lock(&w->lock);
    size_t n = w->threads;
    pthread_mutex_unlock(&w->lock);
    return n;
}

void pc_workers_free(struct pc_workers *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_broadcast(&w->work);
    while (w->threads > 0)
        pthread_cond_wait(&w->gone, &w->lock);
    pthread_mutex_unlock(&w->lock);
    pthread_cond_destroy(&w->gone);
    pthread_cond_destroy(&w->work);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
