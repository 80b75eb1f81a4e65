/* snaps.c - the shared snapshot tier on Redis: find a model's shared context by prefix, fetch it,
 * and store new ones under the fleet's budget (a Lua script evicts least recently used entries
 * and the expired ones' index entries in the same step). */
#include "snaps.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/log.h"
#include "redis.h"
#include "snapindex.h"

/* Each entry counts its value and tokens as Redis holds them, and this for the fields and set
 * members that name it (the index's, the LRU's, the byte counts'). */
#define ENTRY_OVERHEAD 256
#define STR_(x) #x
#define STR(x) STR_(x)

struct pc_fleet_snaps {
    struct pc_snaptier tier;
    struct pc_fleet_snaps_config cfg;
    /* Two connections of their own, not the bus's, so that a large value holds up neither the
     * bus nor the other direction: read_lock guards rd (the requests' fetches), write_lock
     * guards wr (the precharge workers' stores). */
    pthread_mutex_t read_lock, write_lock;
    struct pc_redis *rd, *wr;
    struct pc_snapindex *index; /* the models' indexes as rd last read them; read_lock */
};

/* Shared by both scripts: drop(member) takes an entry out of every key; now() is Redis's clock,
 * the same for every daemon. */
#define LUA_COMMON                                                                                 \
    "local P = 'precharge:snap:'\n"                                                                \
    "local function drop(m)\n"                                                                     \
    "  local sep = string.find(m, ':', 1, true)\n"                                                 \
    "  redis.call('DEL', P .. 'v:' .. m)\n"                                                        \
    "  local sha = string.sub(m, 1, sep - 1)\n"                                                    \
    "  redis.call('HDEL', P .. 'idx:' .. sha, string.sub(m, sep + 1))\n"                           \
    "  redis.call('INCR', P .. 'ver:' .. sha)\n"                                                   \
    "  redis.call('ZREM', P .. 'lru', m)\n"                                                        \
    "  local b = tonumber(redis.call('HGET', P .. 'bytes', m) or '0')\n"                           \
    "  redis.call('HDEL', P .. 'bytes', m)\n"                                                      \
    "  redis.call('DECRBY', P .. 'total', b)\n"                                                    \
    "end\n"                                                                                        \
    "local function now()\n"                                                                       \
    "  local t = redis.call('TIME')\n"                                                             \
    "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                         \
    "end\n"

/* ARGV: sha256, tokhash, value, tokens, budget, ttl_ms. 1 when stored, 0 when larger than the
 * whole budget. An entry counts what Redis says its value takes (MEMORY USAGE: the allocator's
 * size class and the key), its tokens in the index, its members, and ENTRY_OVERHEAD for the
 * fields around them. Entries whose value expired leave the index first; then the least
 * recently used go until the new one fits. */
static const char STORE_LUA[] = LUA_COMMON
    "local sha, th, value, toks = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local budget, ttl = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "local t = now()\n"
    "for _, m in ipairs(redis.call('ZRANGEBYSCORE', P .. 'lru', '-inf', t - ttl)) do drop(m) end\n"
    "local me = sha .. ':' .. th\n"
    "if #value > budget then return 0 end\n"
    "if redis.call('HEXISTS', P .. 'bytes', me) == 1 then drop(me) end\n"
    "redis.call('SET', P .. 'v:' .. me, value, 'PX', ttl)\n"
    "local size = redis.call('MEMORY', 'USAGE', P .. 'v:' .. me) + #toks + 2 * #me + " STR(
        ENTRY_OVERHEAD) "\n"
                        "if size > budget then\n"
                        "  redis.call('DEL', P .. 'v:' .. me)\n"
                        "  return 0\n"
                        "end\n"
                        "while tonumber(redis.call('GET', P .. 'total') or '0') + size > budget "
                        "do\n"
                        "  local oldest = redis.call('ZRANGE', P .. 'lru', 0, 0)\n"
                        "  if #oldest == 0 then break end\n"
                        "  drop(oldest[1])\n"
                        "end\n"
                        "redis.call('HSET', P .. 'idx:' .. sha, th, toks)\n"
                        "redis.call('INCR', P .. 'ver:' .. sha)\n"
                        "redis.call('PEXPIRE', P .. 'idx:' .. sha, ttl)\n"
                        "redis.call('ZADD', P .. 'lru', t, me)\n"
                        "redis.call('HSET', P .. 'bytes', me, size)\n"
                        "redis.call('INCRBY', P .. 'total', size)\n"
                        "return 1\n";

/* ARGV: sha256, tokhash, ttl_ms. The value, its use recorded (expiry and LRU renewed); nil when
 * it expired, and then its index entry goes too. */
static const char FETCH_LUA[] =
    LUA_COMMON "local me = ARGV[1] .. ':' .. ARGV[2]\n"
               "local ttl = tonumber(ARGV[3])\n"
               "local v = redis.call('GET', P .. 'v:' .. me)\n"
               "if not v then\n"
               "  if redis.call('HEXISTS', P .. 'bytes', me) == 1 then drop(me) end\n"
               "  if redis.call('HDEL', P .. 'idx:' .. ARGV[1], ARGV[2]) == 1 then\n"
               "    redis.call('INCR', P .. 'ver:' .. ARGV[1])\n"
               "  end\n"
               "  return false\n"
               "end\n"
               "redis.call('PEXPIRE', P .. 'v:' .. me, ttl)\n"
               "redis.call('PEXPIRE', P .. 'idx:' .. ARGV[1], ttl)\n"
               "redis.call('ZADD', P .. 'lru', now(), me)\n"
               "return v\n";

static enum pc_err tier_fetch(void *user, const char *sha256, const int32_t *toks, size_t n,
                              size_t more_than, const char (*skip)[17], size_t n_skip,
                              uint8_t **value, size_t *size, struct pc_error *err)
{
    struct pc_fleet_snaps *fs = user;
    char tokhash[17], ttl[24];
    redisReply *r = NULL;
    *value = NULL;
    *size = 0;
    snprintf(ttl, sizeof(ttl), "%lld", (long long)fs->cfg.ttl_ms);
    pthread_mutex_lock(&fs->read_lock);
    enum pc_err rc = pc_snapindex_best(fs->index, fs->rd, sha256, toks, n, more_than, skip, n_skip,
                                       tokhash, err);
    if (rc == PC_OK)
        rc = pc_redis_command(fs->rd, &r, err, "EVAL %s 0 %s %s %s", FETCH_LUA, sha256, tokhash,
                              ttl);
    pthread_mutex_unlock(&fs->read_lock);
    if (rc == PC_OK && r->type == REDIS_REPLY_STRING) {
        if ((*value = malloc(r->len ? r->len : 1)) != NULL) {
            memcpy(*value, r->str, r->len);
            *size = r->len;
        } else {
            rc = pc_error_set(err, PC_ERR_NOMEM, "shared snapshot: out of memory");
        }
    } else if (rc == PC_OK) {
        rc = PC_ERR_NOT_FOUND; /* it expired since the index was read */
    }
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

static enum pc_err tier_store(void *user, const char *sha256, const char *tokhash,
                              const int32_t *toks, size_t n, const uint8_t *value, size_t size,
                              struct pc_error *err)
{
    struct pc_fleet_snaps *fs = user;
    char budget[24], ttl[24];
    snprintf(budget, sizeof(budget), "%llu", (unsigned long long)fs->cfg.budget_bytes);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)fs->cfg.ttl_ms);
    const char *argv[] = {
        "EVAL", STORE_LUA, "0", sha256, tokhash, (const char *)value, (const char *)toks,
        budget, ttl};
    size_t lens[] = {4,
                     strlen(STORE_LUA),
                     1,
                     strlen(sha256),
                     strlen(tokhash),
                     size,
                     n * sizeof(int32_t),
                     strlen(budget),
                     strlen(ttl)};
    redisReply *r = NULL;
    pthread_mutex_lock(&fs->write_lock);
    enum pc_err rc = pc_redis_commandv(fs->wr, &r, err, 9, argv, lens);
    pthread_mutex_unlock(&fs->write_lock);
    if (rc == PC_OK && r->type == REDIS_REPLY_INTEGER && r->integer == 0)
        rc = pc_error_set(err, PC_ERR_TOO_LARGE,
                          "%zu bytes are more than the whole shared budget (%llu bytes)", size,
                          (unsigned long long)fs->cfg.budget_bytes);
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

enum pc_err pc_fleet_snaps_open(const struct pc_fleet_snaps_config *cfg,
                                struct pc_fleet_snaps **out, struct pc_error *err)
{
    *out = NULL;
    struct pc_fleet_snaps *fs = calloc(1, sizeof(*fs));
    if (fs == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "fleet snapshots: out of memory");
    fs->cfg = *cfg;
    /* A request never waits long for a tier that is away: a short connect, and a reply that may
     * carry a large value but must come soon; after a failure the backoff skips the tier. */
    struct pc_redis_params rp = pc_redis_default_params();
    rp.name = "snapshots";
    rp.connect_timeout_ms = 250;
    rp.command_timeout_ms = 1000;
    fs->rd = pc_redis_new(&cfg->url, &rp);
    fs->index = pc_snapindex_new();
    struct pc_redis_params wp = pc_redis_default_params();
    wp.name = "snapshots";
    wp.connect_timeout_ms = 1000;
    fs->wr = pc_redis_new(&cfg->url, &wp);
    if (fs->rd == NULL || fs->wr == NULL || fs->index == NULL) {
        pc_redis_free(fs->rd);
        pc_redis_free(fs->wr);
        pc_snapindex_free(fs->index);
        free(fs);
        return pc_error_set(err, PC_ERR_NOMEM, "fleet snapshots: out of memory");
    }
    pthread_mutex_init(&fs->read_lock, NULL);
    pthread_mutex_init(&fs->write_lock, NULL);
    fs->tier =
        (struct pc_snaptier){.name = "redis", .user = fs, .fetch = tier_fetch, .store = tier_store};
    *out = fs;
    return PC_OK;
}

void pc_fleet_snaps_close(struct pc_fleet_snaps *fs)
{
    if (fs == NULL)
        return;
    pc_redis_free(fs->rd);
    pc_redis_free(fs->wr);
    pc_snapindex_free(fs->index);
    pthread_mutex_destroy(&fs->read_lock);
    pthread_mutex_destroy(&fs->write_lock);
    free(fs);
}

const struct pc_snaptier *pc_fleet_snaps_tier(struct pc_fleet_snaps *fs)
{
    return &fs->tier;
}
