/* http.c - libmicrohttpd underneath: bodies in, routing, JSON and streamed replies out.
 *
 * One thread per connection, so that a handler or a stream may block on a model (a load, a
 * prefill, a token) without holding up other clients. */
#include "http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>
#include <microhttpd.h>

#include "../base/log.h"
#include "../base/metrics.h"
#include "../base/utf8.h"
#include "deadline.h"

#define MAX_CONNECTIONS 256

struct pc_http {
    struct MHD_Daemon *daemon;
    const struct pc_http_route *const *tables;
    struct pc_http_options opts;
    struct pc_server *srv;
    struct pc_metric *requests;   /* precharge_http_requests_total, or NULL */
    struct pc_deadline *deadline; /* requests that do not arrive in time; NULL: no timeout */
    int port;
};

/* Per request: the body as it arrives. */
struct conn {
    struct pc_buf body;
    bool too_large;
    struct pc_http_reply *refused; /* admit's answer, sent once the body (discarded) is in */
};

struct stream_state {
    struct pc_http_stream s;
    struct pc_buf buf;
    size_t off;
    bool ended;
    struct MHD_Connection *mc;
    unsigned idle_timeout_s;
};

/* The idle timeout counts from the last byte sent or received, and libmicrohttpd checks it
 * when a stream's callback returns, before it sends what the callback made: a stream that took
 * longer than the timeout to make its next piece (a long prefill, a quiet event stream) would
 * be cut. Setting the timeout anew (through 0) starts its count again: the daemon's own work
 * counts as activity, and a client that stops reading still times out. */
static void touch(struct stream_state *st)
{
    if (st->idle_timeout_s == 0)
        return;
    MHD_set_connection_option(st->mc, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    MHD_set_connection_option(st->mc, MHD_CONNECTION_OPTION_TIMEOUT, st->idle_timeout_s);
}

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

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct stream_state *st = cls;
    (void)pos;
    while (st->off == st->buf.len) {
        if (st->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        pc_buf_reset(&st->buf);
        st->off = 0;
        st->ended = !st->s.next(st->s.ctx, &st->buf);
        touch(st);
    }
    size_t n = st->buf.len - st->off;
    if (n > max)
        n = max;
    memcpy(out, st->buf.data + st->off, n);
    st->off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct stream_state *st = cls;
    if (st->s.free)
        st->s.free(st->s.ctx);
    pc_buf_free(&st->buf);
    free(st);
}

static struct MHD_Response *make_response(struct pc_http *h, struct MHD_Connection *mc,
                                          struct pc_http_reply *r)
{
    struct MHD_Response *resp;
    if (r->stream.next != NULL) {
        struct stream_state *st = calloc(1, sizeof(*st));
        if (st == NULL) {
            if (r->stream.free)
                r->stream.free(r->stream.ctx);
            return NULL;
        }
        st->s = r->stream;
        st->mc = mc;
        st->idle_timeout_s = h->opts.idle_timeout_s;
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, st,
                                                 stream_free);
        if (resp == NULL)
            stream_free(st);
        return resp;
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
static const char *dispatch(struct pc_http *h, struct MHD_Connection *mc, struct conn *c,
                            struct pc_http_req *req, struct pc_http_reply *reply)
{
    bool known;
    const char *method = req->method, *url = req->path;
    req->body = c->body.data ? c->body.data : "";
    req->body_len = c->body.len;
    MHD_get_connection_values(mc, MHD_GET_ARGUMENT_KIND, collect_query, req);
    const struct pc_http_route *rt = route(h, method, url, &known, req);
    if (c->too_large) {
        pc_http_reply_error(reply, 413, "request body is larger than %zu bytes", h->opts.max_body);
        return rt ? rt->path : "other";
    }
    if (rt == NULL && strcmp(method, "HEAD") == 0)
        rt = route(h, "GET", url, &known, req);
    if (rt == NULL) {
        if (known)
            pc_http_reply_error(reply, 405, "method %s is not allowed on %s", method, url);
        else
            pc_http_reply_error(reply, 404, "no such endpoint: %s %s", method, url);
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
    const char *type = reply->content_type;
    struct MHD_Response *resp = make_response(h, mc, reply);
    if (resp == NULL)
        return MHD_NO;
    if (type != NULL)
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
        *con_cls = c;
        /* A refused request's body is read and dropped, never buffered: a client may not read
         * an answer that comes before it has sent its body. */
        if (h->opts.admit != NULL && !h->opts.admit(&req, &reply)) {
            c->refused = malloc(sizeof(*c->refused));
            if (c->refused == NULL) {
                free(reply.body);
                return MHD_NO;
            }
            *c->refused = reply;
        }
        return MHD_YES;
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
    const char *pattern = dispatch(h, mc, c, &req, &reply);
    return send_reply(h, mc, &req, pattern, &reply);
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
    h->requests = pc_metrics_counter(opts->metrics, "precharge_http_requests_total",
                                     "HTTP requests answered, by route pattern (\"other\" for "
                                     "none), method and status (a stream's, as it started).",
                                     "route,method,status");
    enum pc_err rc = PC_OK;
    if (opts->idle_timeout_s > 0 &&
        (rc = pc_deadline_start(opts->idle_timeout_s, &h->deadline, err)) != PC_OK) {
        freeaddrinfo(ai);
        free(h);
        return rc;
    }

    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ERROR_LOG | MHD_USE_POLL;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        h, MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, h, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
        MHD_OPTION_CONNECTION_TIMEOUT, opts->idle_timeout_s, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (h->daemon == NULL) {
        pc_deadline_stop(h->deadline);
        free(h);
        return pc_error_set(err, PC_ERR_IO,
                            "cannot listen on %s:%d (is the port in use, or the address not "
                            "local?)",
                            host, port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    *out = h;
    return PC_OK;
}

int pc_http_port(const struct pc_http *h)
{
    return h->port;
}

void pc_http_stop(struct pc_http *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->daemon);
    pc_deadline_stop(h->deadline); /* after the daemon: every connection is gone */
    free(h);
}
