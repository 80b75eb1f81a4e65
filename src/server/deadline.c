/* deadline.c - the watchdog that shuts down connections whose request did not arrive in time. */
#include "deadline.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../base/clock.h"
#include "../base/log.h"

#define NS_PER_S 1000000000ll

struct pc_deadline_conn {
    int fd;
    int64_t due_ns; /* monotonic; 0: disarmed */
    struct pc_deadline_conn *prev, *next;
};

struct pc_deadline {
    int64_t timeout_ns;
    pthread_t thread;
    pthread_mutex_t lock; /* guards conns, due_ns of each, and stopping */
    pthread_cond_t wake;  /* signalled to stop */
    struct pc_deadline_conn *conns;
    bool stopping;
};

/* Shut down the sockets whose deadline passed. Called with the lock held. */
static void cut_late(struct pc_deadline *d, int64_t now)
{
    for (struct pc_deadline_conn *c = d->conns; c != NULL; c = c->next) {
        if (c->due_ns == 0 || c->due_ns > now)
            continue;
        c->due_ns = 0;
        /* The server's own thread sees the end of the stream and closes the connection. */
        shutdown(c->fd, SHUT_RDWR);
        pc_log_info("http", "closed a connection whose request did not arrive within %llds",
                    (long long)(d->timeout_ns / NS_PER_S));
    }
}

static void *watch(void *arg)
{
    struct pc_deadline *d = arg;
    /* Checked twice per timeout: a late connection goes at most half a timeout after its due. */
    int64_t period = d->timeout_ns / 2;
    pthread_mutex_lock(&d->lock);
    while (!d->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t at = (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec + period;
        ts.tv_sec = at / NS_PER_S;
        ts.tv_nsec = at % NS_PER_S;
        pthread_cond_timedwait(&d->wake, &d->lock, &ts);
        if (!d->stopping)
            cut_late(d, pc_clock_mono_ns());
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

enum pc_err pc_deadline_start(unsigned timeout_s, struct pc_deadline **out, struct pc_error *err)
{
    *out = NULL;
    struct pc_deadline *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "http: out of memory");
    d->timeout_ns = (int64_t)timeout_s * NS_PER_S;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&d->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&d->lock, NULL);
    int rc = pthread_create(&d->thread, NULL, watch, d);
    if (rc != 0) {
        pthread_cond_destroy(&d->wake);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return pc_error_set(err, PC_ERR_NOMEM, "http: pthread_create() failed: %s", strerror(rc));
    }
    *out = d;
    return PC_OK;
}

struct pc_deadline_conn *pc_deadline_add(struct pc_deadline *d, int fd)
{
    if (d == NULL)
        return NULL;
    struct pc_deadline_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->fd = fd;
    pthread_mutex_lock(&d->lock);
    c->due_ns = pc_clock_mono_ns() + d->timeout_ns;
    c->next = d->conns;
    if (d->conns != NULL)
        d->conns->prev = c;
    d->conns = c;
    pthread_mutex_unlock(&d->lock);
    return c;
}

static void set_due(struct pc_deadline *d, struct pc_deadline_conn *c, bool armed)
{
    if (d == NULL || c == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    c->due_ns = armed ? pc_clock_mono_ns() + d->timeout_ns : 0;
    pthread_mutex_unlock(&d->lock);
}

void pc_deadline_arm(struct pc_deadline *d, struct pc_deadline_conn *c)
{
    set_due(d, c, true);
}

void pc_deadline_disarm(struct pc_deadline *d, struct pc_deadline_conn *c)
{
    set_due(d, c, false);
}

void pc_deadline_remove(struct pc_deadline *d, struct pc_deadline_conn *c)
{
    if (d == NULL || c == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        d->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&d->lock);
    free(c);
}

void pc_deadline_stop(struct pc_deadline *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    d->stopping = true;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    pthread_cond_destroy(&d->wake);
    pthread_mutex_destroy(&d->lock);
    free(d);
}
