/* guard.c - who may talk to the daemon: loopback addresses, the API key, and the CORS
 * allow-list, as hooks that the HTTP layer runs around each request. */
#include "guard.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "serverInt.h"
#include "ui.h"

bool pc_guard_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    size_t len = strlen(host);
    if (strcasecmp(host, "localhost") == 0 ||
        (len > 10 && strcasecmp(host + len - 10, ".localhost") == 0))
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) != 1)
        return false;
    if (IN6_IS_ADDR_LOOPBACK(&a6))
        return true;
    return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}

static bool addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family != AF_INET6)
        return false;
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a6) || (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
}

bool pc_guard_listens_on_loopback(const char *host, char *why, size_t size)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host, "0", &hints, &ai);
    if (gai != 0) {
        if (why != NULL)
            snprintf(why, size, "it does not resolve: %s", gai_strerror(gai));
        return false;
    }
    bool loopback = ai != NULL;
    for (const struct addrinfo *a = ai; a != NULL && loopback; a = a->ai_next) {
        if (addr_is_loopback(a->ai_addr))
            continue;
        loopback = false;
        char text[INET6_ADDRSTRLEN] = "?";
        if (why != NULL &&
            getnameinfo(a->ai_addr, a->ai_addrlen, text, sizeof(text), NULL, 0, NI_NUMERICHOST))
            snprintf(text, sizeof(text), "?");
        if (why != NULL)
            snprintf(why, size, "it resolves to %s", text);
    }
    freeaddrinfo(ai);
    return loopback;
}

const char *pc_guard_bearer(const char *authorization, size_t *len)
{
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return NULL;
    const char *p = authorization + 7;
    while (*p == ' ')
        p++;
    size_t n = strcspn(p, " \t");
    if (n == 0 || p[n] != '\0')
        return NULL;
    *len = n;
    return p;
}

bool pc_guard_key_equal(const char *key, const char *given, size_t len)
{
    size_t key_len = strlen(key);
    /* Every byte of the key is looked at, whatever matched before and whatever len is. */
    unsigned diff = key_len != len;
    for (size_t i = 0; i < key_len; i++)
        diff |= (unsigned char)key[i] ^ (unsigned char)(i < len ? given[i] : 0);
    return diff == 0;
}

bool pc_guard_origin_listed(const char (*origins)[256], size_t n, const char *origin)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(origins[i], "*") == 0 || strcasecmp(origins[i], origin) == 0)
            return true;
    return false;
}

/* The host name of a Host header ("127.0.0.1:11435", "[::1]:11435", "localhost"), into buf. */
static const char *host_name(const char *host, char *buf, size_t size)
{
    size_t n;
    if (host[0] == '[') {
        host++;
        n = strcspn(host, "]");
    } else {
        n = strcspn(host, ":");
    }
    if (n >= size)
        n = size - 1;
    memcpy(buf, host, n);
    buf[n] = '\0';
    return buf;
}

/* A loopback daemon answers only to loopback names: a page whose own name was made to resolve
 * to 127.0.0.1 (DNS rebinding) is same-origin in the browser, and this is what stops it. */
static bool host_allowed(const struct pc_server_config *cfg, const char *host)
{
    char name[256];
    if (host == NULL || !cfg->listen_loopback)
        return true;
    host_name(host, name, sizeof(name));
    return pc_guard_is_loopback(name) || strcasecmp(name, cfg->host) == 0;
}

/* A browser's request from a page of the daemon itself: Origin is http://<Host>. */
static bool same_origin(const char *origin, const char *host)
{
    return host != NULL && strncasecmp(origin, "http://", 7) == 0 &&
           strcasecmp(origin + 7, host) == 0;
}

static bool origin_allowed(const struct pc_http_req *req, const char *origin)
{
    const struct pc_server_config *cfg = &req->srv->cfg;
    return pc_guard_origin_listed(cfg->cors_origins, cfg->n_cors_origins, origin) ||
           same_origin(origin, pc_http_header(req, "Host"));
}

static bool is_probe(const struct pc_http_req *req)
{
    return (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0) &&
           (strcmp(req->path, "/health") == 0 || strcmp(req->path, "/ready") == 0);
}

static void preflight(const struct pc_http_req *req, const char *origin,
                      struct pc_http_reply *reply)
{
    if (!origin_allowed(req, origin)) {
        pc_http_reply_error(reply, 403,
                            "origin \"%s\" is not allowed (start the daemon with --cors-origin "
                            "%s to allow it)",
                            origin, origin);
        return;
    }
    pc_http_reply_json(reply, 204, NULL);
    reply->content_type = NULL;
    pc_http_reply_header(reply, "Access-Control-Allow-Methods", "GET, HEAD, POST, DELETE");
    pc_http_reply_header(reply, "Access-Control-Allow-Headers", "Authorization, Content-Type");
    pc_http_reply_header(reply, "Access-Control-Max-Age", "600");
}

bool pc_guard_admit(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    const struct pc_server_config *cfg = &req->srv->cfg;
    const char *origin = pc_http_header(req, "Origin");
    const char *host = pc_http_header(req, "Host");
    if (!host_allowed(cfg, host)) {
        pc_http_reply_error(reply, 403,
                            "host \"%s\" is not allowed: the daemon listens on a loopback "
                            "address and answers to localhost, 127.0.0.1 or [::1]",
                            host);
        return false;
    }
    if (origin != NULL && strcmp(req->method, "OPTIONS") == 0) {
        preflight(req, origin, reply);
        return false;
    }
    if (origin != NULL && !origin_allowed(req, origin)) {
        pc_http_reply_error(reply, 403,
                            "origin \"%s\" is not allowed (start the daemon with --cors-origin "
                            "%s to allow it)",
                            origin, origin);
        return false;
    }
    if (cfg->api_key[0] == '\0' || is_probe(req) || pc_ui_is_page(req))
        return true;
    size_t len = 0;
    const char *token = pc_guard_bearer(pc_http_header(req, "Authorization"), &len);
    if (token != NULL && pc_guard_key_equal(cfg->api_key, token, len))
        return true;
    pc_http_reply_error(reply, 401, "%s",
                        token == NULL ? "missing API key: send \"Authorization: Bearer <key>\""
                                      : "invalid API key");
    pc_http_reply_header(reply, "WWW-Authenticate", "Bearer");
    return false;
}

void pc_guard_decorate(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    const char *origin = pc_http_header(req, "Origin");
    if (origin == NULL || !origin_allowed(req, origin))
        return;
    pc_http_reply_header(reply, "Access-Control-Allow-Origin", origin);
    pc_http_reply_header(reply, "Vary", "Origin");
}
