/* http.h - the HTTP layer's interface to route handlers: requests in, replies out.
 * Handlers never see libmicrohttpd; http.c and http_stream.c are the only files that include
 * microhttpd.h. */
#ifndef PC_HTTP_H
#define PC_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "../base/buf.h"
#include "../base/stream.h"
#include "../base/err.h"

struct pc_server;
struct pc_metrics;

#define PC_HTTP_MAX_PARAMS 4

struct pc_http_req {
    const char *method;
    const char *path;
    /* The path segments that matched "{}" in the route, in order (NUL-terminated copies). */
    char params[PC_HTTP_MAX_PARAMS][256];
    size_t n_params;
    /* The query string's arguments ("?stream=models"), the first few. */
    struct {
        char name[64];
        char value[256];
    } query[8];
    size_t n_query;
    const char *body; /* NUL-terminated; "" when there is none */
    size_t body_len;
    struct pc_server *srv;
    void *conn; /* the HTTP layer's own, for pc_http_header */
};

/* A request header's value (the name in any case), or NULL. */
const char *pc_http_header(const struct pc_http_req *req, const char *name);

/* A streamed body, read without blocking, so that a stream that waits holds no thread.
 *
 * poll appends what is ready to out: MORE, call again; WAIT, nothing now, and the producer
 * calls the waker given to watch when there may be more; END, out holds the last bytes (maybe
 * none). Between wakes the HTTP layer may poll again on its own (at least every
 * PC_HTTP_STREAM_TICK_S seconds while a stream waits), so that a producer can write a
 * keep-alive from the clock.
 *
 * watch is called once, before the first poll: wake(arg) may then be called from any thread,
 * any number of times, also before or during a poll; it must never block, and it is never lost
 * (a wake between a WAIT and the connection's suspension resumes it).
 *
 * free runs exactly once, on a worker (it may wait: to cancel work and join a thread, to
 * release a model): after an END, before the end of the reply goes out, so that what it
 * records is there when the client sees the end; or when the client went away (one that hangs
 * up while its stream waits is noticed at once, so the producer can cancel). Once free
 * returns, wake must not be called again: free waits out a wake in progress.
 */
struct pc_http_stream {
    void *ctx;
    enum pc_stream_state (*poll)(void *ctx, struct pc_buf *out);
    void (*watch)(void *ctx, void (*wake)(void *arg), void *arg);
    void (*free)(void *ctx);
};

#define PC_HTTP_STREAM_TICK_S 5

#define PC_HTTP_MAX_HEADERS 8

struct pc_http_reply {
    int status;
    const char *content_type;
    char *body; /* malloc'd; owned by the reply */
    size_t body_len;
    struct pc_http_stream stream; /* used when stream.poll is set */
    struct {
        char name[64];
        char value[512];
    } headers[PC_HTTP_MAX_HEADERS]; /* more response headers, set with pc_http_reply_header */
    size_t n_headers;
};

/* Whether the reply is a stream (rather than a body). */
static inline bool pc_http_reply_streams(const struct pc_http_reply *r)
{
    return r->stream.poll != NULL;
}

/* Add a response header (copied). False, with nothing added, when the reply has
 * PC_HTTP_MAX_HEADERS already or the name or value does not fit. */
bool pc_http_reply_header(struct pc_http_reply *r, const char *name, const char *value);

/* A query argument's value, or NULL. */
const char *pc_http_query(const struct pc_http_req *req, const char *name);

/* Reply helpers. They take ownership of what they are given. */
void pc_http_reply_json(struct pc_http_reply *r, int status, char *json);
void pc_http_reply_error(struct pc_http_reply *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The error's detail, with the HTTP status its code maps to; PC_ERR_BUSY adds Retry-After. */
void pc_http_reply_pc_error(struct pc_http_reply *r, const struct pc_error *err);

/* The seconds a client is told to wait (Retry-After) when the server is busy. */
#define PC_HTTP_RETRY_AFTER_S 1

/* The HTTP status for an error code: the one table from pc_err to HTTP. */
int pc_http_status_of(enum pc_err code);

typedef void (*pc_http_handler)(const struct pc_http_req *req, struct pc_http_reply *reply);

struct pc_http_route {
    const char *method;
    const char *path; /* exact, or with "{}" for one path segment: "/v1/models/{}/load" */
    pc_http_handler handler;
};

struct pc_http;

struct pc_http_options {
    size_t max_body;         /* request bodies beyond it are answered 413 */
    unsigned idle_timeout_s; /* a connection with no traffic either way for this long is closed
                              * (not while a handler or a stream is working); 0: never */
    /* Optional. Called once a request's headers are in, before its body is read, with req's
     * method, path, srv and headers (no body, no params): false refuses it with the reply that
     * it filled (a plain reply, not a stream), and the body is dropped as it arrives. */
    bool (*admit)(const struct pc_http_req *req, struct pc_http_reply *reply);
    /* Optional. Called on every reply before it goes out, to add headers. */
    void (*decorate)(const struct pc_http_req *req, struct pc_http_reply *reply);
    /* Connections at once from one client address (0: no limit), and in all (0: as many as
     * the open-file limit allows, which pc_http_start raises to its hard limit). */
    unsigned max_connections_per_ip;
    unsigned max_connections;
    /* Optional; outlives the server. Gets precharge_http_requests_total, by route pattern
     * ("other" when none matched), method and status. */
    struct pc_metrics *metrics;
    /* Optional: reshapes the errors made before any route runs (admit's refusals, the 404 or
     * 405 of a request no route takes), e.g. into the OpenAI error object under /v1; reply
     * holds the {"error": "..."} made for it. */
    void (*refusal_shape)(const char *path, struct pc_http_reply *reply);
};

/* Listen on host ("127.0.0.1", "::1", "0.0.0.0", a name) and port (0: ephemeral) and serve
 * tables: a NULL-terminated list of route tables, each ended by a NULL path, that live as long
 * as the server (one table per API family). opts is copied. srv is passed to handlers. */
enum pc_err pc_http_start(const char *host, int port, const struct pc_http_route *const *tables,
                          const struct pc_http_options *opts, struct pc_server *srv,
                          struct pc_http **out /* OUT */, struct pc_error *err);

/* The port actually bound. */
int pc_http_port(const struct pc_http *h);

/* Stop accepting, let running handlers finish, cut open connections and streams, free.
 * pc_http_stop(NULL) does nothing. */
void pc_http_stop(struct pc_http *h);

#endif
