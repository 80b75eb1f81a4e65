/* http.c - libmicrohttpd underneath: bodies in, routing, JSON replies out; handlers on workers.
 *
 * One thread runs libmicrohttpd's epoll loop for every connection. Once a request's body is
 * in, its connection is suspended and its handler runs on a worker (it may block: a model
 * load, a whole answer); the worker resumes the connection to send the reply. An idle
 * connection holds no thread, nor does a stream that waits (http_stream.c). A suspended
 * connection does not time out: the daemon's own work never cuts a connection, and
 * libmicrohttpd counts the idle timeout afresh from each resume. */
#include "httpInt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <jansson.h>

#include "../base/log.h"
#include "../base/metrics.h"
#include "../base/utf8.h"

/* Handlers that may run at once; more wait in order. Each holds a thread while it runs. */
#define MAX_WORKERS 512

/* Descriptors kept back from the connection limit for model files, snapshots, downloads and
 * the remote provider's sockets. */
#define RESERVED_FDS 256

enum conn_phase {
    PHASE_BODY,    /* the request is arriving */
    PHASE_RUNNING, /* its handler runs on a worker; the connection is suspended */
    PHASE_DONE,    /* the handler made its reply; the connection was resumed to send it */
};

/* Per request: the body as it arrives, then the request and reply handed to a worker. */
struct conn {
    struct pc_http *h;
    struct MHD_Connection *mc;
    struct pc_buf body;
    bool too_large;
    struct pc_http_reply *refused; /* admit's answer, sent once the body (discarded) is in */
    enum conn_phase phase;
    struct pc_http_req req;
    struct pc_http_reply reply;
    const char *pattern; /* the route's, for the requests metric */
};

bool pc_http_reply_header(struct pc_http_reply *r, const char *name, const char *value)
{
    if (r->n_headers == PC_HTTP_MAX_HEADERS || strlen(name) >= sizeof(r->headers[0].name) ||
        strlen(value) >= sizeof(r->headers[0].value))
        return false;
    snprintf(r->headers[r->n_headers].name, sizeof(r->headers[0].name), "%s", name);
    snprintf(r->headers[r->n_headers].value, sizeof(r->headers[0].value), "%s", value);
    r->n_headers++;
    return true;
}

const char *pc_http_header(const struct pc_http_req *req, const char *name)
{
    return req->conn ? MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name) : NULL;
}

void pc_http_reply_json(struct pc_http_reply *r, int status, char *json)
{
    r->status = status;
    r->content_type = "application/json; charset=utf-8";
    r->body = json;
    r->body_len = json ? strlen(json) : 0;
}

static void reply_error_text(struct pc_http_reply *r, int status, const char *msg)
{
    /* A message is cut at its buffer's size, maybe inside a character, and may name a file in
     * another encoding: JSON takes only whole, valid UTF-8. */
    struct pc_buf text = PC_BUF_INIT;
    json_t *o = NULL;
    if (pc_utf8_append_valid(&text, msg, pc_utf8_complete_prefix(msg, strlen(msg))) &&
        pc_buf_append(&text, "", 0))
        o = json_pack("{s:s}", "error", text.data);
    pc_buf_free(&text);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s == NULL)
        s = strdup("{\"error\":\"out of memory\"}");
    pc_http_reply_json(r, status, s);
}

void pc_http_reply_error(struct pc_http_reply *r, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply_error_text(r, status, msg);
}

void pc_http_reply_pc_error(struct pc_http_reply *r, const struct pc_error *err)
{
    reply_error_text(r, pc_http_status_of(err->code),
                     err->msg[0] ? err->msg : pc_strerror(err->code));
    if (err->code == PC_ERR_BUSY) {
        char secs[16];
        snprintf(secs, sizeof(secs), "%d", PC_HTTP_RETRY_AFTER_S);
        pc_http_reply_header(r, "Retry-After", secs);
    }
}

static struct MHD_Response *make_response(struct pc_http *h, struct MHD_Connection *mc,
                                          struct pc_http_reply *r)
{
    struct MHD_Response *resp;
    if (pc_http_reply_streams(r)) {
        struct pc_http_stream s = r->stream;
        r->stream = (struct pc_http_stream){0};
        return pc_http_stream_response(h, mc, &s);
    }
    resp = MHD_create_response_from_buffer(r->body_len, r->body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL)
        free(r->body);
    r->body = NULL;
    return resp;
}

/* Match path against a route pattern; "{}" takes one non-empty segment into params. */
static bool path_matches(const char *pattern, const char *path, struct pc_http_req *req)
{
    size_t n = 0;
    while (*pattern != '\0') {
        if (pattern[0] == '{' && pattern[1] == '}') {
            size_t len = strcspn(path, "/");
            if (len == 0 || len >= sizeof(req->params[0]) || n == PC_HTTP_MAX_PARAMS)
                return false;
            if (req != NULL) {
                memcpy(req->params[n], path, len);
                req->params[n][len] = '\0';
            }
            n++;
            path += len;
            pattern += 2;
            continue;
        }
        if (*pattern++ != *path++)
            return false;
    }
    if (*path != '\0')
        return false;
    if (req != NULL)
        req->n_params = n;
    return true;
}

static const struct pc_http_route *route(const struct pc_http *h, const char *method,
                                         const char *path, bool *path_known,
                                         struct pc_http_req *req)
{
    *path_known = false;
    for (const struct pc_http_route *const *t = h->tables; *t != NULL; t++) {
        for (const struct pc_http_route *rt = *t; rt->path != NULL; rt++) {
            if (!path_matches(rt->path, path, req))
                continue;
            *path_known = true;
            if (strcmp(rt->method, method) == 0)
                return rt;
        }
    }
    return NULL;
}

const char *pc_http_query(const struct pc_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->n_query; i++)
        if (strcmp(req->query[i].name, name) == 0)
            return req->query[i].value;
    return NULL;
}

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct pc_http_req *req = cls;
    (void)kind;
    if (req->n_query == sizeof(req->query) / sizeof(req->query[0]))
        return MHD_NO;
    snprintf(req->query[req->n_query].name, sizeof(req->query[0].name), "%s", key);
    snprintf(req->query[req->n_query].value, sizeof(req->query[0].value), "%s", value ? value : "");
    req->n_query++;
    return MHD_YES;
}

/* Route and run the request. Returns the route's pattern, or "other" when none matched: what
 * the requests metric is labelled with, never a raw path. */
static const char *dispatch(struct pc_http *h, struct pc_http_req *req, struct pc_http_reply *reply)
{
    bool known;
    const char *method = req->method, *url = req->path;
    const struct pc_http_route *rt = route(h, method, url, &known, req);
    if (rt == NULL && strcmp(method, "HEAD") == 0)
        rt = route(h, "GET", url, &known, req);
    if (rt == NULL) {
        if (known)
            pc_http_reply_error(reply, 405, "method %s is not allowed on %s", method, url);
        else
            pc_http_reply_error(reply, 404, "no such endpoint: %s %s", method, url);
        if (h->opts.refusal_shape != NULL)
            h->opts.refusal_shape(url, reply);
        return "other";
    }
    rt->handler(req, reply);
    return rt->path;
}

/* The pattern of the route that a request refused before dispatch would have taken. */
static const char *pattern_of(const struct pc_http *h, const char *method, const char *path)
{
    bool known;
    const struct pc_http_route *rt = route(h, method, path, &known, NULL);
    if (rt == NULL && strcmp(method, "HEAD") == 0)
        rt = route(h, "GET", path, &known, NULL);
    return rt ? rt->path : "other";
}

/* The method as a label: a standard one, else "other" (the client chooses it). */
static const char *method_label(const char *method)
{
    static const char *const known[] = {"GET",    "HEAD",    "POST",  "PUT",
                                        "DELETE", "OPTIONS", "PATCH", NULL};
    for (size_t i = 0; known[i] != NULL; i++)
        if (strcmp(method, known[i]) == 0)
            return known[i];
    return "other";
}

static struct pc_deadline_conn *conn_deadline(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

static enum MHD_Result send_reply(struct pc_http *h, struct MHD_Connection *mc,
                                  const struct pc_http_req *req, const char *pattern,
                                  struct pc_http_reply *reply)
{
    if (h->opts.decorate != NULL)
        h->opts.decorate(req, reply);
    int status = reply->status ? reply->status : 500;
    /* Copied first: a stream's content type may live in its producer's state, which a
     * blocking producer's worker can free as soon as make_response has started it. */
    char type[256];
    bool typed = reply->content_type != NULL;
    if (typed)
        snprintf(type, sizeof(type), "%s", reply->content_type);
    struct MHD_Response *resp = make_response(h, mc, reply);
    if (resp == NULL)
        return MHD_NO;
    if (typed)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    for (size_t i = 0; i < reply->n_headers; i++)
        MHD_add_response_header(resp, reply->headers[i].name, reply->headers[i].value);
    char code[8];
    snprintf(code, sizeof(code), "%d", status);
    pc_metric_add(h->requests, (const char *[]){pattern, method_label(req->method), code}, 1);
    pc_log_debug("http", "%s %s -> %d", req->method, req->path, status);
    enum MHD_Result ret = MHD_queue_response(mc, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* On a worker: run the handler, then resume the connection to send its reply. */
static void run_handler(void *arg)
{
    struct conn *c = arg;
    struct pc_http *h = c->h;
    c->pattern = dispatch(h, &c->req, &c->reply);
    c->phase = PHASE_DONE;
    /* c may be gone once the connection is resumed; h is not, until running falls to 0. */
    pthread_mutex_lock(&h->lock);
    MHD_resume_connection(c->mc);
    if (--h->running == 0)
        pthread_cond_broadcast(&h->idle);
    pthread_mutex_unlock(&h->lock);
}

/* The request is in: suspend the connection and hand the request to a worker. False when the
 * daemon stops (the connection is then closed). */
static bool start_handler(struct pc_http *h, struct MHD_Connection *mc, struct conn *c,
                          const char *url, const char *method)
{
    c->req = (struct pc_http_req){.method = method,
                                  .path = url,
                                  .body = c->body.data ? c->body.data : "",
                                  .body_len = c->body.len,
                                  .srv = h->srv,
                                  .conn = mc};
    MHD_get_connection_values(mc, MHD_GET_ARGUMENT_KIND, collect_query, &c->req);
    pthread_mutex_lock(&h->lock);
    if (h->stopping) {
        pthread_mutex_unlock(&h->lock);
        return false;
    }
    h->running++;
    c->phase = PHASE_RUNNING;
    /* Suspended before the worker can resume it. */
    MHD_suspend_connection(mc);
    pthread_mutex_unlock(&h->lock);
    if (!pc_workers_submit(h->workers, run_handler, c)) {
        pc_http_reply_error(&c->reply, 503, "the server cannot start a thread for the request");
        c->pattern = "other";
        c->phase = PHASE_DONE;
        pthread_mutex_lock(&h->lock);
        MHD_resume_connection(mc);
        if (--h->running == 0)
            pthread_cond_broadcast(&h->idle);
        pthread_mutex_unlock(&h->lock);
    }
    return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    struct pc_http *h = cls;
    struct conn *c = *con_cls;
    struct pc_http_req req = {.method = method, .path = url, .body = "", .srv = h->srv, .conn = mc};
    struct pc_http_reply reply = {0};
    (void)version;

    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL)
            return MHD_NO;
        c->h = h;
        c->mc = mc;
        *con_cls = c;
        /* Framing in doubt is answered at once, and the connection closed: its body cannot be
         * told from the next request. */
        if (!pc_http_framing_ok(mc, h->opts.max_body, &reply))
            return send_reply(h, mc, &req, pattern_of(h, method, url), &reply);
        /* A refused request's body is read and dropped, never buffered: a client may not read
         * an answer that comes before it has sent its body. */
        if (h->opts.admit != NULL && !h->opts.admit(&req, &reply)) {
            if (h->opts.refusal_shape != NULL)
                h->opts.refusal_shape(url, &reply);
            c->refused = malloc(sizeof(*c->refused));
            if (c->refused == NULL) {
                free(reply.body);
                return MHD_NO;
            }
            *c->refused = reply;
        }
        return MHD_YES;
    }
    if (c->phase == PHASE_RUNNING)
        return MHD_YES; /* not expected: the connection is suspended meanwhile */
    if (c->phase == PHASE_DONE) {
        reply = c->reply;
        c->reply = (struct pc_http_reply){0};
        return send_reply(h, mc, &c->req, c->pattern, &reply);
    }
    if (*upload_size > 0) {
        if (c->refused == NULL && !c->too_large && c->body.len + *upload_size <= h->opts.max_body)
            c->too_large = !pc_buf_append(&c->body, upload_data, *upload_size);
        else
            c->too_large = true;
        *upload_size = 0;
        return MHD_YES;
    }
    /* The request is in: from here the time is the daemon's (a load, a prefill, a whole
     * answer), and only the idle timeout applies. */
    pc_deadline_disarm(h->deadline, conn_deadline(mc));
    if (c->refused != NULL) {
        reply = *c->refused;
        free(c->refused);
        c->refused = NULL;
        return send_reply(h, mc, &req, pattern_of(h, method, url), &reply);
    }
    if (c->too_large) {
        pc_http_reply_error(&reply, 413, "request body is larger than %zu bytes", h->opts.max_body);
        return send_reply(h, mc, &req, pattern_of(h, method, url), &reply);
    }
    return start_handler(h, mc, c, url, method) ? MHD_YES : MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct pc_http *h = cls;
    struct conn *c = *con_cls;
    (void)toe;
    pc_deadline_arm(h->deadline, conn_deadline(mc)); /* the next request on this connection */
    if (c == NULL)
        return;
    pc_buf_free(&c->body);
    free(c->reply.body); /* a reply that was made but never sent: the client went away */
    if (c->reply.stream.free != NULL)
        c->reply.stream.free(c->reply.stream.ctx);
    if (c->refused != NULL)
        free(c->refused->body);
    free(c->refused);
    free(c);
    *con_cls = NULL;
}

/* Each connection is watched from its start: its first request must arrive in time. */
static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct pc_http *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = info ? pc_deadline_add(h->deadline, info->connect_fd) : NULL;
    } else {
        pc_deadline_remove(h->deadline, *socket_context);
        *socket_context = NULL;
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    pc_log_debug("http", "%s", msg);
}

/* The connection limit the open-file limit allows, after raising its soft limit to the hard
 * one (a daemon that serves thousands of idle connections needs a descriptor for each). */
static unsigned connection_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024 - RESERVED_FDS;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit raised = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl = raised;
        else
            pc_log_warn("http", "setrlimit(RLIMIT_NOFILE, %llu) failed: %s",
                        (unsigned long long)rl.rlim_max, strerror(errno));
    }
    rlim_t n = rl.rlim_cur == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_cur;
    if (n > (rlim_t)1 << 20)
        n = (rlim_t)1 << 20;
    return n > 2 * RESERVED_FDS ? (unsigned)(n - RESERVED_FDS) : (unsigned)(n / 2);
}

static void http_free(struct pc_http *h)
{
    pc_http_watcher_stop(h);
    pc_workers_free(h->workers);
    pc_deadline_stop(h->deadline); /* after the daemon: every connection is gone */
    pthread_cond_destroy(&h->idle);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

enum pc_err pc_http_start(const char *host, int port, const struct pc_http_route *const *tables,
                          const struct pc_http_options *opts, struct pc_server *srv,
                          struct pc_http **out, struct pc_error *err)
{
    *out = NULL;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host, portstr, &hints, &ai);
    if (gai != 0)
        return pc_error_set(err, PC_ERR_INVALID, "cannot resolve listen address \"%s\": %s", host,
                            gai_strerror(gai));

    struct pc_http *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        freeaddrinfo(ai);
        return pc_error_set(err, PC_ERR_NOMEM, "http: out of memory");
    }
    h->tables = tables;
    h->opts = *opts;
    h->srv = srv;
    h->epoll_fd = h->stop_fd = -1;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->idle, NULL);
    h->requests = pc_metrics_counter(opts->metrics, "precharge_http_requests_total",
                                     "HTTP requests answered, by route pattern (\"other\" for "
                                     "none), method and status (a stream's, as it started).",
                                     "route,method,status");
    unsigned limit = connection_limit();
    if (h->opts.max_connections == 0 || h->opts.max_connections > limit)
        h->opts.max_connections = limit;
    enum pc_err rc = PC_OK;
    if ((h->workers = pc_workers_new(MAX_WORKERS)) == NULL) {
        rc = pc_error_set(err, PC_ERR_NOMEM, "http: out of memory");
        goto fail;
    }
    if ((opts->idle_timeout_s > 0 &&
         (rc = pc_deadline_start(opts->idle_timeout_s, &h->deadline, err)) != PC_OK) ||
        (rc = pc_http_watcher_start(h, err)) != PC_OK)
        goto fail;

    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        h, MHD_OPTION_CONNECTION_LIMIT, h->opts.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        h->opts.max_connections_per_ip, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_CONNECTION_TIMEOUT,
        opts->idle_timeout_s, MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)PC_HTTP_CONNECTION_MEMORY, MHD_OPTION_END);
    if (h->daemon == NULL) {
        rc = pc_error_set(err, PC_ERR_IO,
                          "cannot listen on %s:%d (is the port in use, or the address not "
                          "local?)",
                          host, port);
        goto fail;
    }
    freeaddrinfo(ai);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    if (h->opts.max_connections_per_ip > 0)
        pc_log_info("http",
                    "up to %u connections (the open-file limit allows), %u per client "
                    "address",
                    h->opts.max_connections, h->opts.max_connections_per_ip);
    else
        pc_log_info("http", "up to %u connections (the open-file limit allows)",
                    h->opts.max_connections);
    *out = h;
    return PC_OK;
fail:
    freeaddrinfo(ai);
    http_free(h);
    return rc;
}

int pc_http_port(const struct pc_http *h)
{
    return h->port;
}

void pc_http_stop(struct pc_http *h)
{
    if (h == NULL)
        return;
    /* libmicrohttpd may not stop with a connection suspended: let the handlers finish (each
     * resumes its connection), then resume the waiting streams; none suspends again. */
    pthread_mutex_lock(&h->lock);
    h->stopping = true;
    while (h->running > 0)
        pthread_cond_wait(&h->idle, &h->lock);
    pthread_mutex_unlock(&h->lock);
    pc_http_streams_resume_all(h);
    MHD_stop_daemon(h->daemon);
    /* The streams it cut are freed on workers: freeing the pool waits for them. */
    http_free(h);
}
