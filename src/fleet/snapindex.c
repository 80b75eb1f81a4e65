/* snapindex.c - each model's shared index, kept between requests and read again only when its
 * version in Redis (precharge:snap:ver:<sha256>, raised by every write to the index) changed. */
#include "snapindex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/clock.h"
#include "../base/tokens.h"

#define MODELS_MAX 16 /* models whose index is kept; the least recently asked goes first */

struct entry {
    char tokhash[17];
    int32_t *toks;
    size_t n;
};

struct model_index {
    char sha256[65]; /* "" when the slot is free */
    long long version;
    uint64_t generation; /* the connection's, when read: a restarted Redis restarts versions */
    struct entry *entries;
    size_t n;
    int64_t used_ns;
};

struct pc_snapindex {
    struct model_index models[MODELS_MAX];
};

struct pc_snapindex *pc_snapindex_new(void)
{
    return calloc(1, sizeof(struct pc_snapindex));
}

static void clear(struct model_index *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->entries[i].toks);
    free(m->entries);
    memset(m, 0, sizeof(*m));
}

void pc_snapindex_free(struct pc_snapindex *ix)
{
    if (ix == NULL)
        return;
    for (size_t i = 0; i < MODELS_MAX; i++)
        clear(&ix->models[i]);
    free(ix);
}

/* The slot of sha256, or the least recently used one, emptied, for it. */
static struct model_index *slot(struct pc_snapindex *ix, const char *sha256)
{
    struct model_index *oldest = &ix->models[0];
    for (size_t i = 0; i < MODELS_MAX; i++) {
        struct model_index *m = &ix->models[i];
        if (strcmp(m->sha256, sha256) == 0)
            return m;
        if (m->used_ns < oldest->used_ns)
            oldest = m;
    }
    clear(oldest);
    return oldest;
}

/* Replace m's entries with the index in reply (HGETALL's); false when out of memory (m is
 * then empty). */
static bool load(struct model_index *m, const redisReply *reply)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->entries[i].toks);
    free(m->entries);
    m->entries = NULL;
    m->n = 0;
    size_t cap = reply->type == REDIS_REPLY_ARRAY ? reply->elements / 2 : 0;
    if (cap == 0)
        return true;
    if ((m->entries = calloc(cap, sizeof(*m->entries))) == NULL)
        return false;
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *f = reply->element[i], *v = reply->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || f->len != 16 || v->type != REDIS_REPLY_STRING ||
            v->len % sizeof(int32_t) != 0)
            continue;
        struct entry *e = &m->entries[m->n];
        if ((e->toks = malloc(v->len ? v->len : 1)) == NULL)
            return false;
        memcpy(e->toks, v->str, v->len); /* the reply's bytes need not be aligned */
        e->n = v->len / sizeof(int32_t);
        memcpy(e->tokhash, f->str, 16);
        e->tokhash[16] = '\0';
        m->n++;
    }
    return true;
}

/* m, up to date with Redis's index of m->sha256. */
static enum pc_err refresh(struct model_index *m, struct pc_redis *r, const char *sha256,
                           struct pc_error *err)
{
    redisReply *reply = NULL;
    enum pc_err rc = pc_redis_command(r, &reply, err, "GET precharge:snap:ver:%s", sha256);
    long long version = 0;
    if (rc == PC_OK && reply->type == REDIS_REPLY_STRING)
        version = strtoll(reply->str, NULL, 10);
    if (reply != NULL)
        freeReplyObject(reply);
    if (rc != PC_OK)
        return rc;
    uint64_t generation = pc_redis_generation(r);
    if (strcmp(m->sha256, sha256) == 0 && m->version == version && m->generation == generation)
        return PC_OK;
    /* The version first, then the index: a change in between is seen at the next request. */
    reply = NULL;
    rc = pc_redis_command(r, &reply, err, "HGETALL precharge:snap:idx:%s", sha256);
    if (rc == PC_OK && !load(m, reply))
        rc = pc_error_set(err, PC_ERR_NOMEM, "shared snapshots' index: out of memory");
    if (reply != NULL)
        freeReplyObject(reply);
    if (rc != PC_OK) {
        clear(m);
        return rc;
    }
    snprintf(m->sha256, sizeof(m->sha256), "%s", sha256);
    m->version = version;
    m->generation = generation;
    return PC_OK;
}

static bool skipped(const char *tokhash, const char (*skip)[17], size_t n_skip)
{
    for (size_t i = 0; i < n_skip; i++)
        if (strcmp(tokhash, skip[i]) == 0)
            return true;
    return false;
}

enum pc_err pc_snapindex_best(struct pc_snapindex *ix, struct pc_redis *r, const char *sha256,
                              const int32_t *toks, size_t n, size_t more_than,
                              const char (*skip)[17], size_t n_skip, char tokhash[17],
                              struct pc_error *err)
{
    tokhash[0] = '\0';
    struct model_index *m = slot(ix, sha256);
    enum pc_err rc = refresh(m, r, sha256, err);
    if (rc != PC_OK)
        return rc;
    m->used_ns = pc_clock_mono_ns();
    size_t best = more_than;
    for (size_t i = 0; i < m->n; i++) {
        const struct entry *e = &m->entries[i];
        size_t c =
            skipped(e->tokhash, skip, n_skip) ? 0 : pc_tokens_common_prefix(e->toks, e->n, toks, n);
        if (c > best) {
            best = c;
            memcpy(tokhash, e->tokhash, 17);
        }
    }
    return tokhash[0] != '\0' ? PC_OK : PC_ERR_NOT_FOUND;
}
