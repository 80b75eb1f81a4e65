/* http_stream.c - streamed replies: polled without blocking, their connections suspended while
 * they wait, resumed by their producer's wake, a clock tick, or the client hanging up.
 *
 * libmicrohttpd does not watch a suspended connection, so a thread of ours does: the sockets of
 * waiting streams are in an epoll set of their own, for EPOLLRDHUP (the client closed), and the
 * same thread resumes streams that waited PC_HTTP_STREAM_TICK_S, so that producers may write
 * keep-alives. */
#include "httpInt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../base/clock.h"
#include "../base/log.h"

#define NS_PER_S 1000000000ll

struct stream_state {
    struct pc_http *h;
    struct pc_http_stream s;
    struct MHD_Connection *mc;
    int fd;
    uint64_t id;
    struct pc_buf buf; /* made by the producer, sent from off */
    size_t off;
    bool ended;    /* poll said END */
    bool watching; /* watch was called */
    bool freed;    /* the producer's free ran (on a worker, before the end went out) */

    /* Guarded by h->lock. */
    bool woken;     /* a wake came since the last poll began */
    bool suspended; /* in h->waiting, its connection suspended */
    bool hung_up;   /* the client closed while the stream waited */
    int64_t since_ns;
    struct stream_state *prev, *next;
};

/* ---- waiting ------------------------------------------------------------------------------ */

/* h->lock held; called on libmicrohttpd's thread, from the stream's reader. */
static void suspend_locked(struct stream_state *st)
{
    struct pc_http *h = st->h;
    st->suspended = true;
    st->since_ns = pc_clock_mono_ns();
    st->prev = NULL;
    st->next = h->waiting;
    if (h->waiting != NULL)
        h->waiting->prev = st;
    h->waiting = st;
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.u64 = st->id};
    if (st->fd >= 0 && epoll_ctl(h->epoll_fd, EPOLL_CTL_ADD, st->fd, &ev) != 0)
        pc_log_debug("http", "epoll_ctl(ADD) failed: a hang-up is noticed at the next tick");
    MHD_suspend_connection(st->mc);
}

/* h->lock held: out of the waiting list and the epoll set. */
static void unlink_locked(struct stream_state *st)
{
    struct pc_http *h = st->h;
    st->suspended = false;
    if (st->prev != NULL)
        st->prev->next = st->next;
    else
        h->waiting = st->next;
    if (st->next != NULL)
        st->next->prev = st->prev;
    st->prev = st->next = NULL;
    if (st->fd >= 0)
        epoll_ctl(h->epoll_fd, EPOLL_CTL_DEL, st->fd, NULL);
}

/* h->lock held; any thread. */
static void resume_locked(struct stream_state *st)
{
    unlink_locked(st);
    MHD_resume_connection(st->mc);
}

/* The waker given to the producer. */
static void stream_wake(void *arg)
{
    struct stream_state *st = arg;
    pthread_mutex_lock(&st->h->lock);
    st->woken = true;
    if (st->suspended)
        resume_locked(st);
    pthread_mutex_unlock(&st->h->lock);
}

void pc_http_streams_resume_all(struct pc_http *h)
{
    pthread_mutex_lock(&h->lock);
    while (h->waiting != NULL)
        resume_locked(h->waiting);
    pthread_mutex_unlock(&h->lock);
}

/* h->lock held: the waiting stream with this id, or NULL (it was resumed meanwhile). */
static struct stream_state *find_waiting(struct pc_http *h, uint64_t id)
{
    for (struct stream_state *st = h->waiting; st != NULL; st = st->next)
        if (st->id == id)
            return st;
    return NULL;
}

static void *watch_main(void *arg)
{
    struct pc_http *h = arg;
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(h->epoll_fd, evs, 64, 1000);
        pthread_mutex_lock(&h->lock);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == 0) {
                pthread_mutex_unlock(&h->lock);
                return NULL;
            }
            struct stream_state *st = find_waiting(h, evs[i].data.u64);
            if (st != NULL) {
                st->hung_up = true;
                resume_locked(st);
            }
        }
        int64_t now = pc_clock_mono_ns();
        for (struct stream_state *st = h->waiting, *next; st != NULL; st = next) {
            next = st->next;
            if (now - st->since_ns >= PC_HTTP_STREAM_TICK_S * NS_PER_S)
                resume_locked(st);
        }
        pthread_mutex_unlock(&h->lock);
    }
}

enum pc_err pc_http_watcher_start(struct pc_http *h, struct pc_error *err)
{
    h->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    h->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
    if (h->epoll_fd < 0 || h->stop_fd < 0 ||
        epoll_ctl(h->epoll_fd, EPOLL_CTL_ADD, h->stop_fd, &ev) != 0 ||
        pthread_create(&h->watcher, NULL, watch_main, h) != 0) {
        pc_http_watcher_stop(h);
        return pc_error_set(err, PC_ERR_IO, "http: cannot start the stream watcher: %s",
                            strerror(errno));
    }
    h->watcher_started = true;
    return PC_OK;
}

void pc_http_watcher_stop(struct pc_http *h)
{
    if (h->watcher_started) {
        uint64_t one = 1;
        if (write(h->stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
            pc_log_warn("http", "write() to the stream watcher failed: %s", strerror(errno));
        pthread_join(h->watcher, NULL);
        h->watcher_started = false;
    }
    if (h->stop_fd >= 0)
        close(h->stop_fd);
    if (h->epoll_fd >= 0)
        close(h->epoll_fd);
    h->stop_fd = h->epoll_fd = -1;
}

/* ---- the reader --------------------------------------------------------------------------- */

/* On a worker: the producer's free, then the connection resumed to send the end. */
static void free_ended(void *arg)
{
    struct stream_state *st = arg;
    struct pc_http *h = st->h;
    if (st->s.free)
        st->s.free(st->s.ctx);
    pthread_mutex_lock(&h->lock);
    st->freed = true;
    MHD_resume_connection(st->mc);
    if (--h->running == 0)
        pthread_cond_broadcast(&h->idle);
    pthread_mutex_unlock(&h->lock);
}

/* The producer's last bytes are out. Its free may wait (a model released, a manifest written
 * and synced), which the loop that serves every connection must not do: it runs on a worker,
 * the connection suspended, and the end goes out after it, so that what free records (events,
 * metrics) is there when the client sees the end. */
static ssize_t finish(struct stream_state *st)
{
    struct pc_http *h = st->h;
    if (st->freed)
        return MHD_CONTENT_READER_END_OF_STREAM;
    pthread_mutex_lock(&h->lock);
    if (h->stopping) {
        pthread_mutex_unlock(&h->lock);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    h->running++;
    MHD_suspend_connection(st->mc);
    pthread_mutex_unlock(&h->lock);
    if (!pc_workers_submit(h->workers, free_ended, st))
        free_ended(st);
    return 0;
}

/* libmicrohttpd's content reader, on its thread: what the producer has, else suspend. */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct stream_state *st = cls;
    struct pc_http *h = st->h;
    (void)pos;
    for (;;) {
        if (st->off < st->buf.len) {
            size_t n = st->buf.len - st->off;
            if (n > max)
                n = max;
            memcpy(out, st->buf.data + st->off, n);
            st->off += n;
            return (ssize_t)n;
        }
        if (st->ended)
            return finish(st);
        pc_buf_reset(&st->buf);
        st->off = 0;
        pthread_mutex_lock(&h->lock);
        bool cut = h->stopping || st->hung_up;
        st->woken = false;
        pthread_mutex_unlock(&h->lock);
        if (cut)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (!st->watching) {
            st->watching = true;
            st->s.watch(st->s.ctx, stream_wake, st);
        }
        enum pc_stream_state ps = st->s.poll(st->s.ctx, &st->buf);
        if (ps == PC_STREAM_END)
            st->ended = true;
        if (ps != PC_STREAM_WAIT || st->buf.len > 0)
            continue;
        /* A wake that came during the poll means there may be more: poll again rather than
         * sleep through it. */
        pthread_mutex_lock(&h->lock);
        bool again = st->woken || h->stopping;
        if (!again)
            suspend_locked(st);
        pthread_mutex_unlock(&h->lock);
        if (!again)
            return 0;
    }
}

/* The stream's end, after libmicrohttpd is done with it. */
static void release_stream(void *arg)
{
    struct stream_state *st = arg;
    if (!st->freed && st->s.free)
        st->s.free(st->s.ctx);
    pc_buf_free(&st->buf);
    free(st);
}

static void stream_free(void *cls)
{
    struct stream_state *st = cls;
    pthread_mutex_lock(&st->h->lock);
    if (st->suspended) /* never expected: the daemon resumes every stream before it stops */
        unlink_locked(st);
    pthread_mutex_unlock(&st->h->lock);
    /* A stream cut short (the client went away, a HEAD, the daemon stops) has its producer
     * freed on a worker: it may cancel work and wait for it. */
    if (st->freed || !pc_workers_submit(st->h->workers, release_stream, st))
        release_stream(st);
}

struct MHD_Response *pc_http_stream_response(struct pc_http *h, struct MHD_Connection *mc,
                                             const struct pc_http_stream *s)
{
    struct stream_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        if (s->free)
            s->free(s->ctx);
        return NULL;
    }
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    st->h = h;
    st->s = *s;
    st->mc = mc;
    st->fd = info ? info->connect_fd : -1;
    pthread_mutex_lock(&h->lock);
    st->id = ++h->next_stream_id;
    pthread_mutex_unlock(&h->lock);
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024,
                                                                  stream_read, st, stream_free);
    if (resp == NULL)
        stream_free(st);
    return resp;
}
