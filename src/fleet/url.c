/* url.c - parse and show Redis URLs (redis://[[user]:password@]host[:port][/db],
 * unix:///path[?db=N]), the form redis-cli and the client libraries take. */
#include "url.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode [s, s+n) into out (a password may hold '@', ':' or '/' only encoded). */
static enum pc_err decode(const char *s, size_t n, char *out, size_t size, const char *what,
                          struct pc_error *err)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = hi >= 0 ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return pc_error_set(err, PC_ERR_INVALID,
                                    "the Redis URL's %s has a '%%' not followed by two hex digits",
                                    what);
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0')
            return pc_error_set(err, PC_ERR_INVALID, "the Redis URL's %s holds a NUL (%%00)", what);
        if (o + 1 >= size)
            return pc_error_set(err, PC_ERR_INVALID, "the Redis URL's %s is too long", what);
        out[o++] = c;
    }
    out[o] = '\0';
    return PC_OK;
}

/* A whole number in [lo, hi] made of digits alone. */
static bool parse_int(const char *s, size_t n, long lo, long hi, int *out)
{
    if (n == 0 || n > 9)
        return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

/* "db=N" is the one query parameter (for a socket, whose path leaves no room for "/N"). */
static enum pc_err parse_query(const char *q, struct pc_redis_url *url, struct pc_error *err)
{
    if (strncmp(q, "db=", 3) != 0)
        return pc_error_set(err, PC_ERR_INVALID,
                            "the Redis URL's query \"%s\" is not understood (only db=N is)", q);
    if (!parse_int(q + 3, strlen(q + 3), 0, 1 << 20, &url->db))
        return pc_error_set(err, PC_ERR_INVALID,
                            "the Redis URL's database \"%s\" is not a number from 0", q + 3);
    return PC_OK;
}

static enum pc_err parse_userinfo(const char *s, size_t n, struct pc_redis_url *url,
                                  struct pc_error *err)
{
    const char *colon = memchr(s, ':', n);
    if (colon == NULL)
        return pc_error_set(err, PC_ERR_INVALID,
                            "the Redis URL names a user but no password (user:password@host)");
    enum pc_err rc = decode(s, (size_t)(colon - s), url->user, sizeof(url->user), "user", err);
    if (rc == PC_OK)
        rc = decode(colon + 1, n - (size_t)(colon - s) - 1, url->password, sizeof(url->password),
                    "password", err);
    return rc;
}

static enum pc_err parse_hostport(const char *s, size_t n, struct pc_redis_url *url,
                                  struct pc_error *err)
{
    const char *host = s, *port = NULL;
    size_t host_len;
    if (n > 0 && s[0] == '[') { /* [IPv6]:port */
        const char *close = memchr(s, ']', n);
        if (close == NULL)
            return pc_error_set(err, PC_ERR_INVALID, "the Redis URL's host has no closing ']'");
        host = s + 1;
        host_len = (size_t)(close - host);
        size_t rest = n - (size_t)(close + 1 - s);
        if (rest > 0 && close[1] != ':')
            return pc_error_set(err, PC_ERR_INVALID,
                                "the Redis URL has \"%.*s\" after its host's ']'", (int)rest,
                                close + 1);
        if (rest > 0)
            port = close + 2;
    } else {
        const char *colon = memchr(s, ':', n);
        host_len = colon ? (size_t)(colon - s) : n;
        if (colon)
            port = colon + 1;
    }
    if (host_len == 0)
        return pc_error_set(err, PC_ERR_INVALID, "the Redis URL has no host");
    if (host_len >= sizeof(url->host))
        return pc_error_set(err, PC_ERR_INVALID, "the Redis URL's host is too long");
    memcpy(url->host, host, host_len);
    url->host[host_len] = '\0';
    if (port && !parse_int(port, n - (size_t)(port - s), 1, 65535, &url->port))
        return pc_error_set(err, PC_ERR_INVALID,
                            "the Redis URL's port \"%.*s\" is not a number from 1 to 65535",
                            (int)(n - (size_t)(port - s)), port);
    return PC_OK;
}

/* redis://[[user]:password@]host[:port][/db][?db=N] */
static enum pc_err parse_tcp(const char *s, struct pc_redis_url *url, struct pc_error *err)
{
    size_t auth_len = strcspn(s, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < auth_len; i++)
        if (s[i] == '@')
            at = s + i; /* the last '@': the host has none */
    enum pc_err rc = PC_OK;
    const char *hp = s;
    if (at) {
        rc = parse_userinfo(s, (size_t)(at - s), url, err);
        hp = at + 1;
    }
    if (rc == PC_OK)
        rc = parse_hostport(hp, auth_len - (size_t)(hp - s), url, err);
    if (rc != PC_OK)
        return rc;
    const char *rest = s + auth_len;
    if (*rest == '#')
        return pc_error_set(err, PC_ERR_INVALID, "the Redis URL has a fragment (\"%s\")", rest);
    if (*rest == '/') {
        rest++;
        size_t n = strcspn(rest, "?#");
        if (n > 0 && !parse_int(rest, n, 0, 1 << 20, &url->db))
            return pc_error_set(err, PC_ERR_INVALID,
                                "the Redis URL's database \"%.*s\" is not a number from 0", (int)n,
                                rest);
        rest += n;
    }
    if (*rest == '#')
        return pc_error_set(err, PC_ERR_INVALID, "the Redis URL has a fragment (\"%s\")", rest);
    return *rest == '?' ? parse_query(rest + 1, url, err) : PC_OK;
}

/* unix:///path[?db=N] */
static enum pc_err parse_unix(const char *s, struct pc_redis_url *url, struct pc_error *err)
{
    if (s[0] != '/')
        return pc_error_set(err, PC_ERR_INVALID,
                            "a unix:// Redis URL needs an absolute socket path (unix:///path)");
    size_t n = strcspn(s, "?");
    if (n >= sizeof(url->socket))
        return pc_error_set(err, PC_ERR_INVALID, "the Redis URL's socket path is too long");
    memcpy(url->socket, s, n);
    url->socket[n] = '\0';
    return s[n] == '?' ? parse_query(s + n + 1, url, err) : PC_OK;
}

enum pc_err pc_redis_url_parse(const char *text, struct pc_redis_url *url, struct pc_error *err)
{
    memset(url, 0, sizeof(*url));
    url->port = PC_REDIS_DEFAULT_PORT;
    enum pc_err rc;
    if (strncmp(text, "redis://", 8) == 0)
        rc = parse_tcp(text + 8, url, err);
    else if (strncmp(text, "unix://", 7) == 0)
        rc = parse_unix(text + 7, url, err);
    else if (strncmp(text, "rediss://", 9) == 0)
        rc = pc_error_set(err, PC_ERR_INVALID,
                          "rediss:// (Redis over TLS) is not supported; use redis:// or unix://");
    else
        rc = pc_error_set(err, PC_ERR_INVALID,
                          "\"%s\" is not a Redis URL (redis://[[user]:password@]host[:port][/db] "
                          "or unix:///path)",
                          text);
    if (rc != PC_OK) {
        memset(url, 0, sizeof(*url));
        return rc;
    }
    return PC_OK;
}

char *pc_redis_url_show(const struct pc_redis_url *url, char *buf, size_t size)
{
    const char *auth = url->password[0] ? "***@" : "";
    if (url->socket[0]) {
        snprintf(buf, size, "unix://%s%s%.0d", url->socket, url->db ? "?db=" : "", url->db);
        return buf;
    }
    bool v6 = strchr(url->host, ':') != NULL;
    snprintf(buf, size, "redis://%s%s%s%s%s%s:%d/%d", url->user, url->password[0] ? ":" : "", auth,
             v6 ? "[" : "", url->host, v6 ? "]" : "", url->port, url->db);
    return buf;
}
