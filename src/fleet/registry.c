/* registry.c - the fleet's registry: each daemon publishes, on every heartbeat and with an
 * expiry, what it serves and what it holds warm (models, precharged contexts by their tokens'
 * hash, its HTTP address), reads back the live daemons' entries for GET /api/fleet, and
 * mirrors its lifecycle events onto precharge:events. */
#include "fleetInt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../base/clock.h"
#include "../base/log.h"

struct pc_fleet_registry {
    struct pc_redis *conn;
    pthread_t thread;
    bool started;
    struct pc_events_sub *sub;              /* every event, to mirror */
    struct pc_buf backlog;                  /* SSE frames read, not yet mirrored */
    char (*listed)[PC_FLEET_NAME_MAX + 32]; /* the serves keys of the last heartbeat */
    size_t n_listed;
};

/* Refresh this daemon's entry and its place in the served models' sets, drop it from the
 * models it no longer serves, and return the live daemons' entries. KEYS: the daemons' set,
 * this daemon's entry, the served models' sets (ARGV[4] of them), then the sets to leave.
 * ARGV: id, entry, expiry (ms), the number of served models. Times are Redis's, so that the
 * hosts' clocks need not agree. */
static const char BEAT_LUA[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local exp = now + tonumber(ARGV[3])\n"
    "redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])\n"
    "redis.call('ZADD', KEYS[1], exp, ARGV[1])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "local n = tonumber(ARGV[4])\n"
    "for i = 3, 2 + n do\n"
    "  redis.call('ZADD', KEYS[i], exp, ARGV[1])\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)\n"
    "  redis.call('PEXPIRE', KEYS[i], ARGV[3])\n"
    "end\n"
    "for i = 3 + n, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end\n"
    "local out = {}\n"
    "for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do\n"
    "  local v = redis.call('GET', '" PC_FLEET_DAEMON "' .. id)\n"
    "  if v then table.insert(out, v) end\n"
    "end\n"
    "return out\n";

/* This daemon's registry entry. The caller decrefs. */
static json_t *entry_json(struct pc_fleet *f)
{
    char ts[40], now_ts[40];
    json_t *serves = json_array(), *models = json_array(), *contexts = json_array();
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->n_serves; i++)
        json_array_append_new(serves, json_string(f->serves[i]));
    pthread_mutex_unlock(&f->lock);
    struct pc_pool_status *loaded = NULL;
    size_t n = pc_pool_list(f->cfg.pool, &loaded);
    for (size_t i = 0; i < n; i++) {
        enum pc_model_state st = pc_events_state(f->cfg.events, loaded[i].name, NULL, NULL);
        json_array_append_new(models, json_pack("{s:s, s:s}", "model_id", loaded[i].name, "state",
                                                pc_state_name(st)));
    }
    free(loaded);
    struct pc_snapshot_info *snaps = NULL;
    n = pc_snapstore_list(f->cfg.snapshots, &snaps);
    for (size_t i = 0; i < n; i++) {
        /* A snapshot saved without its model's name (the loop's write-back of a live
         * sequence) cannot be asked for by model: it is left out. */
        if (!snaps[i].precharged || snaps[i].meta.model[0] == '\0')
            continue;
        char hash[17];
        snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)snaps[i].tokens_hash);
        json_array_append_new(contexts, json_pack("{s:s, s:s, s:I, s:s}", "model_id",
                                                  snaps[i].meta.model, "tokens_hash", hash,
                                                  "context_tokens", (json_int_t)snaps[i].n_tokens,
                                                  "tier", pc_tier_name(snaps[i].tier)));
    }
    free(snaps);
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:o, s:o}", "daemon_id", f->daemon_id,
                     "host_id", f->host_id, "http", f->http_url, "pid", (json_int_t)getpid(),
                     "started_at", pc_clock_rfc3339(f->started_wall_ns, ts, sizeof(ts)),
                     "heartbeat_at", pc_clock_rfc3339(pc_clock_wall_ns(), now_ts, sizeof(now_ts)),
                     "serves", serves, "models", models, "contexts", contexts);
}

static void set_view(struct pc_fleet *f, json_t *view, bool connected)
{
    pthread_mutex_lock(&f->lock);
    if (view != NULL) {
        json_decref(f->view);
        f->view = view;
        f->view_ns = pc_clock_wall_ns();
    }
    f->connected = connected;
    pthread_mutex_unlock(&f->lock);
}

static void beat(struct pc_fleet *f)
{
    struct pc_fleet_registry *g = f->registry;
    pc_fleet_serves_refresh(f);
    char(*serves)[PC_FLEET_NAME_MAX] = NULL;
    uint64_t version;
    size_t n = pc_fleet_serves_copy(f, &serves, &version);
    json_t *entry = entry_json(f);
    char *entry_s = json_dumps(entry, JSON_COMPACT);
    json_decref(entry);
    size_t argc = 3 + 2 + n + g->n_listed + 4;
    const char **argv = malloc(argc * sizeof(*argv));
    char(*keys)[PC_FLEET_NAME_MAX + 32] = malloc((n ? n : 1) * sizeof(*keys));
    char daemon_key[256], expiry[24], count[24];
    if (serves == NULL || entry_s == NULL || argv == NULL || keys == NULL)
        goto out;
    snprintf(daemon_key, sizeof(daemon_key), "%s%s", PC_FLEET_DAEMON, f->daemon_id);
    snprintf(expiry, sizeof(expiry), "%lld", (long long)f->cfg.expiry_ms);
    snprintf(count, sizeof(count), "%zu", n);
    size_t k = 0, n_keys = 2 + n;
    argv[k++] = "EVAL";
    argv[k++] = BEAT_LUA;
    argv[k++] = NULL; /* the key count, below */
    argv[k++] = PC_FLEET_DAEMONS;
    argv[k++] = daemon_key;
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], sizeof(keys[i]), "%s%s", PC_FLEET_SERVES, serves[i]);
        argv[k++] = keys[i];
    }
    for (size_t i = 0; i < g->n_listed; i++) { /* served before, not now */
        bool still = false;
        for (size_t j = 0; j < n && !still; j++)
            still = strcmp(keys[j], g->listed[i]) == 0;
        if (!still) {
            argv[k++] = g->listed[i];
            n_keys++;
        }
    }
    char n_keys_s[24];
    snprintf(n_keys_s, sizeof(n_keys_s), "%zu", n_keys);
    argv[2] = n_keys_s;
    argv[k++] = f->daemon_id;
    argv[k++] = entry_s;
    argv[k++] = expiry;
    argv[k++] = count;
    redisReply *reply;
    struct pc_error err = {0};
    enum pc_err rc = pc_redis_commandv(g->conn, &reply, &err, (int)k, argv, NULL);
    if (rc == PC_ERR_IO)
        pc_log_warn("fleet", "registry: %s", err.msg);
    if (rc != PC_OK || reply->type != REDIS_REPLY_ARRAY) {
        set_view(f, NULL, rc != PC_ERR_UNAVAILABLE);
        freeReplyObject(reply);
        goto out;
    }
    json_t *view = json_array();
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *v = reply->element[i];
        json_t *d = v->type == REDIS_REPLY_STRING ? json_loadb(v->str, v->len, 0, NULL) : NULL;
        if (json_is_object(d))
            json_array_append(view, d);
        json_decref(d);
    }
    freeReplyObject(reply);
    set_view(f, view, true);
    /* What this heartbeat listed is what the next one drops when it is gone. */
    free(g->listed);
    g->listed = keys;
    g->n_listed = n;
    keys = NULL;
out:
    free(serves);
    free(entry_s);
    free(argv);
    free(keys);
}

/* Mirror the events published since the last call onto precharge:events, in order. Those
 * that Redis could not take wait in the backlog for its return, up to BACKLOG_MAX bytes (then
 * the oldest are dropped: the stream is a feed, the registry's entries are the state). */
#define BACKLOG_MAX (4u << 20)

static void mirror(struct pc_fleet *f)
{
    struct pc_fleet_registry *g = f->registry;
    struct pc_buf *q = &g->backlog;
    pc_events_read(g->sub, q);
    if (q->len > BACKLOG_MAX) {
        const char *keep = strstr(q->data + (q->len - BACKLOG_MAX), "\n\n");
        pc_buf_consume(q, keep ? (size_t)(keep + 2 - q->data) : q->len);
    }
    if (q->len == 0 || !pc_redis_connect(g->conn))
        return;
    char name[64], maxlen[24];
    snprintf(maxlen, sizeof(maxlen), "%lld", f->cfg.maxlen);
    const char *p = q->data, *sent = q->data;
    json_t *frame;
    while (pc_fleet_next_frame(&p, name, sizeof(name), &frame)) {
        /* The event as /api/events has it: {type, stream, at, data, metadata}. */
        char *data = json_dumps(json_object_get(frame, "data"), JSON_COMPACT);
        char *meta = json_dumps(json_object_get(frame, "metadata"), JSON_COMPACT);
        const char *at = json_string_value(json_object_get(frame, "at"));
        enum pc_err rc = PC_OK;
        if (data != NULL) {
            const char *argv[] = {"XADD",      PC_FLEET_EVENTS,
                                  "MAXLEN",    "~",
                                  maxlen,      "*",
                                  "type",      name,
                                  "daemon_id", f->daemon_id,
                                  "host_id",   f->host_id,
                                  "at",        at ? at : "",
                                  "data",      data,
                                  "metadata",  meta ? meta : "{}"};
            redisReply *reply;
            rc = pc_redis_commandv(g->conn, &reply, NULL, sizeof(argv) / sizeof(argv[0]), argv,
                                   NULL);
            freeReplyObject(reply);
        }
        free(data);
        free(meta);
        json_decref(frame);
        if (rc == PC_ERR_UNAVAILABLE)
            break; /* this one and the rest wait */
        sent = p;
    }
    pc_buf_consume(q, (size_t)(sent - q->data));
}

/* Leave the registry at a clean stop, so that the fleet need not wait for the expiry. */
static void leave(struct pc_fleet *f)
{
    struct pc_fleet_registry *g = f->registry;
    if (pc_redis_wait_ms(g->conn) > 0)
        return;
    redisReply *reply;
    pc_redis_command(g->conn, &reply, NULL, "DEL %s%s", PC_FLEET_DAEMON, f->daemon_id);
    freeReplyObject(reply);
    pc_redis_command(g->conn, &reply, NULL, "ZREM %s %s", PC_FLEET_DAEMONS, f->daemon_id);
    freeReplyObject(reply);
    for (size_t i = 0; i < g->n_listed; i++) {
        pc_redis_command(g->conn, &reply, NULL, "ZREM %s %s", g->listed[i], f->daemon_id);
        freeReplyObject(reply);
    }
}

static void *registry_main(void *arg)
{
    struct pc_fleet *f = arg;
    struct pc_fleet_registry *g = f->registry;
    int64_t next_beat = 0;
    while (!atomic_load(&f->stopping)) {
        int64_t now = pc_clock_mono_ns();
        if (now >= next_beat && pc_redis_connect(g->conn)) {
            beat(f);
            next_beat = now + f->cfg.heartbeat_ms * 1000000;
        } else if (now >= next_beat) {
            set_view(f, NULL, false);
        }
        mirror(f);
        int64_t wait = (next_beat - pc_clock_mono_ns()) / 1000000;
        int64_t retry = pc_redis_wait_ms(g->conn);
        if (retry > 0 && retry < wait)
            wait = retry;
        if (wait > 0)
            pc_fleet_nap(f, wait);
    }
    leave(f);
    return NULL;
}

static void on_event(void *arg)
{
    struct pc_fleet *f = arg;
    pthread_mutex_lock(&f->lock);
    pthread_cond_broadcast(&f->wake);
    pthread_mutex_unlock(&f->lock);
}

enum pc_err pc_fleet_registry_start(struct pc_fleet *f, struct pc_error *err)
{
    struct pc_fleet_registry *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "fleet: out of memory");
    f->registry = g;
    g->conn = pc_fleet_connect(f, "registry", 5000);
    g->sub = pc_events_subscribe(f->cfg.events, NULL, 0);
    if (g->conn == NULL || g->sub == NULL) {
        pc_fleet_registry_stop(f);
        return pc_error_set(err, PC_ERR_NOMEM, "fleet: out of memory");
    }
    pc_events_watch(g->sub, on_event, f);
    g->started = pthread_create(&g->thread, NULL, registry_main, f) == 0;
    if (!g->started) {
        pc_fleet_registry_stop(f);
        return pc_error_set(err, PC_ERR_NOMEM, "fleet: cannot start the registry's thread");
    }
    return PC_OK;
}

void pc_fleet_registry_stop(struct pc_fleet *f)
{
    struct pc_fleet_registry *g = f->registry;
    if (g == NULL)
        return;
    pc_fleet_halt(f);
    if (g->started)
        pthread_join(g->thread, NULL);
    pc_events_unsubscribe(g->sub);
    pc_redis_free(g->conn);
    pc_buf_free(&g->backlog);
    free(g->listed);
    free(g);
    f->registry = NULL;
}
