/* redis.c - a Redis connection with its reconnect policy: connect with timeouts, AUTH, SELECT,
 * commands, capped exponential backoff, and one log line when Redis goes away and one when it
 * is back, however many connections notice. */
#include "redis.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "../base/clock.h"
#include "../base/log.h"

struct pc_redis {
    struct pc_redis_url url;
    struct pc_redis_params params;
    char shown[600]; /* the URL with its password hidden, for the logs */
    char client_name[256];
    redisContext *ctx;   /* NULL while down */
    bool down;           /* counted in down_count (a failed attempt or a broken connection) */
    int64_t next_try_ns; /* monotonic: no attempt before this */
    int backoff_ms;      /* the wait after the next failure */
    uint64_t generation; /* connections made */
};

/* Connections that are down, in the whole process: the first to go down logs that Redis is
 * unreachable, the last to come back logs that it is back, so an outage is two lines however
 * many threads hold connections. */
static atomic_int down_count;

struct pc_redis_params pc_redis_default_params(void)
{
    return (struct pc_redis_params){.name = "redis",
                                    .connect_timeout_ms = 2000,
                                    .command_timeout_ms = 5000,
                                    .backoff_min_ms = 100,
                                    .backoff_max_ms = 5000};
}

struct pc_redis *pc_redis_new(const struct pc_redis_url *url, const struct pc_redis_params *params)
{
    struct pc_redis *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->url = *url;
    r->params = *params;
    r->backoff_ms = params->backoff_min_ms;
    if (params->client_name) {
        snprintf(r->client_name, sizeof(r->client_name), "%s", params->client_name);
        r->params.client_name = r->client_name;
    }
    pc_redis_url_show(url, r->shown, sizeof(r->shown));
    return r;
}

static void close_ctx(struct pc_redis *r)
{
    if (r->ctx)
        redisFree(r->ctx);
    r->ctx = NULL;
}

void pc_redis_free(struct pc_redis *r)
{
    if (r == NULL)
        return;
    close_ctx(r);
    if (r->down)
        atomic_fetch_sub(&down_count, 1);
    free(r);
}

static struct timeval tv_ms(int ms)
{
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

/* The connection failed (why says how): close it, push the next attempt out, and say so if it
 * is the process's first connection to go down. */
static void went_down(struct pc_redis *r, const char *why)
{
    close_ctx(r);
    int wait_ms = r->backoff_ms;
    r->next_try_ns = pc_clock_mono_ns() + (int64_t)wait_ms * 1000000;
    r->backoff_ms =
        r->backoff_ms * 2 > r->params.backoff_max_ms ? r->params.backoff_max_ms : r->backoff_ms * 2;
    if (r->down) {
        pc_log_debug("fleet", "redis (%s): %s; next try in %d ms", r->params.name, why, wait_ms);
        return;
    }
    r->down = true;
    if (atomic_fetch_add(&down_count, 1) == 0)
        pc_log_warn("fleet",
                    "Redis at %s is unreachable (%s: %s); HTTP goes on, the fleet retries with "
                    "backoff up to %d ms",
                    r->shown, r->params.name, why, r->params.backoff_max_ms);
}

static void came_up(struct pc_redis *r)
{
    r->generation++;
    r->backoff_ms = r->params.backoff_min_ms;
    r->next_try_ns = 0;
    if (!r->down) {
        pc_log_debug("fleet", "redis (%s): connected to %s", r->params.name, r->shown);
        return;
    }
    r->down = false;
    if (atomic_fetch_sub(&down_count, 1) == 1)
        pc_log_info("fleet", "Redis at %s is back; the fleet resumes", r->shown);
}

/* One command on a fresh connection, during the handshake; false (with why) unless its reply is
 * not an error. */
static bool handshake(struct pc_redis *r, char *why, size_t size, int argc, const char **argv)
{
    redisReply *reply = redisCommandArgv(r->ctx, argc, argv, NULL);
    if (reply == NULL) {
        snprintf(why, size, "%s: %s", argv[0], r->ctx->errstr);
        return false;
    }
    bool ok = reply->type != REDIS_REPLY_ERROR;
    if (!ok)
        snprintf(why, size, "%s: %s", argv[0], reply->str);
    freeReplyObject(reply);
    return ok;
}

static bool open_ctx(struct pc_redis *r, char *why, size_t size)
{
    struct timeval tv = tv_ms(r->params.connect_timeout_ms);
    r->ctx = r->url.socket[0] ? redisConnectUnixWithTimeout(r->url.socket, tv)
                              : redisConnectWithTimeout(r->url.host, r->url.port, tv);
    if (r->ctx == NULL) {
        snprintf(why, size, "out of memory");
        return false;
    }
    if (r->ctx->err) {
        snprintf(why, size, "connect: %s", r->ctx->errstr);
        return false;
    }
    if (redisSetTimeout(r->ctx, tv) != REDIS_OK) {
        snprintf(why, size, "setting the timeout: %s", r->ctx->errstr);
        return false;
    }
    if (!r->url.socket[0])
        redisEnableKeepAlive(r->ctx);
    if (r->url.password[0]) {
        const char *auth_user[] = {"AUTH", r->url.user, r->url.password};
        const char *auth[] = {"AUTH", r->url.password};
        bool ok = r->url.user[0] ? handshake(r, why, size, 3, auth_user)
                                 : handshake(r, why, size, 2, auth);
        if (!ok)
            return false;
    }
    char db[16];
    snprintf(db, sizeof(db), "%d", r->url.db);
    const char *select[] = {"SELECT", db};
    const char *ping[] = {"PING"};
    if (r->url.db != 0 ? !handshake(r, why, size, 2, select) : !handshake(r, why, size, 1, ping))
        return false;
    /* Named, so that CLIENT LIST shows whose connection it is (and the tests can find it). */
    const char *setname[] = {"CLIENT", "SETNAME", r->params.client_name};
    if (r->params.client_name && !handshake(r, why, size, 3, setname))
        return false;
    /* From here on each command waits at most its own timeout. */
    if (redisSetTimeout(r->ctx, tv_ms(r->params.command_timeout_ms)) != REDIS_OK) {
        snprintf(why, size, "setting the timeout: %s", r->ctx->errstr);
        return false;
    }
    return true;
}

bool pc_redis_connect(struct pc_redis *r)
{
    if (r->ctx)
        return true;
    if (pc_clock_mono_ns() < r->next_try_ns)
        return false;
    char why[256];
    if (!open_ctx(r, why, sizeof(why))) {
        went_down(r, why);
        return false;
    }
    came_up(r);
    return true;
}

int64_t pc_redis_wait_ms(const struct pc_redis *r)
{
    if (r->ctx)
        return 0;
    int64_t left = r->next_try_ns - pc_clock_mono_ns();
    return left > 0 ? (left + 999999) / 1000000 : 0;
}

uint64_t pc_redis_generation(const struct pc_redis *r)
{
    return r->generation;
}

/* The reply that hiredis gave (NULL: the connection broke) as this module's return. */
static enum pc_err take_reply(struct pc_redis *r, redisReply *reply, const char *cmd,
                              redisReply **out, struct pc_error *err)
{
    if (reply == NULL) {
        char why[300], again[256];
        snprintf(why, sizeof(why), "%s: %s", cmd, r->ctx->errstr);
        enum pc_err rc = pc_error_set(err, PC_ERR_UNAVAILABLE, "Redis at %s: %s", r->shown, why);
        /* A connection that broke while Redis is there again (it restarted while this one was
         * idle) is made again at once, quietly; only when that fails is Redis away. The
         * command is not sent again: it may have run. */
        close_ctx(r);
        if (!r->down && open_ctx(r, again, sizeof(again))) {
            pc_log_debug("fleet", "redis (%s): %s; connected again", r->params.name, why);
            came_up(r);
            return rc;
        }
        went_down(r, why);
        return rc;
    }
    *out = reply;
    if (reply->type == REDIS_REPLY_ERROR)
        return pc_error_set(err, PC_ERR_IO, "Redis at %s: %s: %s", r->shown, cmd, reply->str);
    return PC_OK;
}

static enum pc_err not_connected(struct pc_redis *r, struct pc_error *err)
{
    return pc_error_set(err, PC_ERR_UNAVAILABLE, "Redis at %s is unreachable; retrying", r->shown);
}

enum pc_err pc_redis_command(struct pc_redis *r, redisReply **reply, struct pc_error *err,
                             const char *fmt, ...)
{
    *reply = NULL;
    if (!pc_redis_connect(r))
        return not_connected(r, err);
    va_list ap;
    va_start(ap, fmt);
    redisReply *got = redisvCommand(r->ctx, fmt, ap);
    va_end(ap);
    char cmd[32];
    snprintf(cmd, sizeof(cmd), "%.*s", (int)strcspn(fmt, " "), fmt);
    return take_reply(r, got, cmd, reply, err);
}

enum pc_err pc_redis_commandv(struct pc_redis *r, redisReply **reply, struct pc_error *err,
                              int argc, const char **argv, const size_t *argvlen)
{
    *reply = NULL;
    if (!pc_redis_connect(r))
        return not_connected(r, err);
    redisReply *got = redisCommandArgv(r->ctx, argc, argv, argvlen);
    char cmd[32];
    snprintf(cmd, sizeof(cmd), "%.*s", argc > 0 ? (int)(argvlen ? argvlen[0] : strlen(argv[0])) : 0,
             argc > 0 ? argv[0] : "");
    return take_reply(r, got, cmd, reply, err);
}

bool pc_redis_is_error(const redisReply *reply, const char *code)
{
    return reply && reply->type == REDIS_REPLY_ERROR &&
           strncmp(reply->str, code, strlen(code)) == 0;
}
