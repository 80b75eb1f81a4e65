/* httpInt.h - what the HTTP layer's files share: the server's state (http.c), its streamed
 * replies (http_stream.c) and its framing checks (http_strict.c). Nothing else includes it. */
#ifndef PC_HTTP_INT_H
#define PC_HTTP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

#include "../base/workers.h"
#include "deadline.h"
#include "http.h"

struct stream_state;

struct pc_http {
    struct MHD_Daemon *daemon;
    const struct pc_http_route *const *tables;
    struct pc_http_options opts;
    struct pc_server *srv;
    struct pc_metric *requests;   /* precharge_http_requests_total, or NULL */
    struct pc_deadline *deadline; /* requests that do not arrive in time; NULL: no timeout */
    struct pc_workers *workers;   /* run handlers, and the producers' frees */
    int port;

    /* lock guards the fields below, and the wait fields of every stream (http_stream.c). It is
     * taken around MHD_suspend_connection and MHD_resume_connection, never the other way. */
    pthread_mutex_t lock;
    pthread_cond_t idle;          /* running fell to 0 */
    size_t running;               /* handlers in flight, their connections suspended */
    bool stopping;                /* no connection suspends again; new requests are closed */
    struct stream_state *waiting; /* streams suspended until their producer wakes them */
    uint64_t next_stream_id;

    int epoll_fd; /* the waiting streams' sockets, watched for a client hanging up */
    int stop_fd;  /* an eventfd that stops the watcher */
    pthread_t watcher;
    bool watcher_started;
};

/* A body over the limit by at most this much is read and dropped before its 413; one that
 * announces more gets the 413 at once, and the connection closed. */
#define PC_HTTP_MAX_DRAIN (64ull << 20)

/* Query parameters a request may carry. */
#define PC_HTTP_MAX_QUERY_ARGS 100

/* libmicrohttpd's memory per connection (its default is 32 KiB): what a request's head, its
 * parsed query and a chunk's header line must fit in. At 32 KiB, 1,000 query parameters ran
 * it out (the connection was dropped with no status line) and a 50 KB chunk extension got its
 * 500; libmicrohttpd touches the pages only as a request fills them. */
#define PC_HTTP_CONNECTION_MEMORY (256u << 10)

/* http_strict.c: whether a request's framing, its headers in, is one that every reader agrees
 * on: one Host, Content-Length values that agree and fit max_body, chunked as the only transfer
 * coding and never beside a Content-Length, few query parameters, and no body that could never
 * be drained (over max_body by more than PC_HTTP_MAX_DRAIN). When not, reply is the 400 or 413
 * that says why, with Connection: close. */
bool pc_http_framing_ok(struct MHD_Connection *mc, size_t max_body, struct pc_http_reply *reply);

/* Start and stop the thread that watches waiting streams (http_stream.c). */
enum pc_err pc_http_watcher_start(struct pc_http *h, struct pc_error *err);
void pc_http_watcher_stop(struct pc_http *h);

/* Resume every waiting stream, for good: h->stopping must be set. */
void pc_http_streams_resume_all(struct pc_http *h);

/* The response for a streamed reply on connection mc; it takes the stream (freed on failure,
 * with NULL returned). */
struct MHD_Response *pc_http_stream_response(struct pc_http *h, struct MHD_Connection *mc,
                                             const struct pc_http_stream *s);

#endif
