/* bus.c - precharge requests over Redis Streams. The router (any daemon) moves each request of
 * precharge:requests to its model's stream, precharge:requests:<model>, which only the daemons
 * that serve that model read, or answers "unavailable" when no live daemon serves the model
 * for a grace period; the reader runs the requests of its models through the precharger; the
 * completer publishes each result to precharge:responses once per correlation id, and only
 * then acknowledges the request. Requests pending too long on a dead daemon are taken over
 * (XAUTOCLAIM). docs/fleet.md says why the work is split this way. */
#include "fleetInt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/clock.h"
#include "../base/log.h"
#include "../store/store.h"

#define BLOCK_MS 500 /* a read waits this long for requests, so that stop is seen soon */
#define CLAIM_COUNT 16
#define ENTRY_ID_MAX 48

/* A request this daemon runs: pending on its stream until its result is published. */
struct inflight {
    char stream[PC_FLEET_NAME_MAX + 32]; /* precharge:requests:<model> */
    char entry[ENTRY_ID_MAX];            /* its id there */
    char request[ENTRY_ID_MAX];          /* its id on precharge:requests */
    char cid[PC_PRECHARGE_ID_MAX];
    json_t *data;   /* the request's data (model_id, category: for a result made here) */
    json_t *result; /* once it finished: what to publish */
};

/* A request for a model that no live daemon serves yet: answered "unavailable" once the grace
 * period since it was first seen here has passed, unless a server turns up. */
struct deferred {
    char entry[ENTRY_ID_MAX];
    char model[PC_FLEET_NAME_MAX];
    char cid[PC_PRECHARGE_ID_MAX];
    json_t *data;
    json_t *metadata;
    int64_t seen_ns;
};

struct pc_fleet_bus {
    struct pc_redis *rconn; /* the reader's */
    struct pc_redis *cconn; /* the completer's */
    pthread_t reader, completer;
    bool reader_started, completer_started;
    struct pc_events_sub *sub; /* PrechargeCompleted, for the completer */

    /* Guarded by the fleet's lock: */
    struct inflight *inflight;
    size_t n_inflight, cap_inflight;
    bool events_ready; /* the subscriber has events to read */

    /* The reader's alone: */
    struct deferred *deferred;
    size_t n_deferred;
    uint64_t groups_generation, groups_version; /* the groups were made for these */
    bool groups_lost;                           /* NOGROUP: Redis forgot them */
    bool replay; /* read this consumer's own pending entries first (after a reconnection: a
                  * request whose routing or answer failed while Redis was away) */
    char (*models)[PC_FLEET_NAME_MAX]; /* the streams it reads, besides the requests */
    size_t n_models;
    int64_t next_claim_ns;
};

/* ---- entries ------------------------------------------------------------------------------ */

/* The value of field name in an entry's [field, value, ...] reply, or NULL. */
static const redisReply *field(const redisReply *fields, const char *name)
{
    if (fields == NULL || fields->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[i]->str, name) == 0)
            return fields->element[i + 1];
    return NULL;
}

static json_t *json_field(const redisReply *v)
{
    return v && v->type == REDIS_REPLY_STRING ? json_loadb(v->str, v->len, JSON_DECODE_ANY, NULL)
                                              : NULL;
}

/* A request as the application wrote it: "data" (seed 000's PrechargeRequested data, JSON)
 * and "metadata" (JSON), or the data's fields flat in the entry (context and tools as JSON
 * text), as redis-cli users write them. *data gets a correlation id: the data's, else the
 * metadata's, else the entry's id. NULL data with why on a malformed entry. */
static void parse_request(const redisReply *fields, const char *entry, json_t **data /* OUT */,
                          json_t **metadata /* OUT */, char *why, size_t size)
{
    *metadata = json_field(field(fields, "metadata"));
    if (*metadata != NULL && !json_is_object(*metadata)) {
        json_decref(*metadata);
        *metadata = NULL;
    }
    const redisReply *d = field(fields, "data");
    if (d != NULL) {
        json_error_t jerr;
        *data = d->type == REDIS_REPLY_STRING ? json_loadb(d->str, d->len, 0, &jerr) : NULL;
        if (*data == NULL || !json_is_object(*data)) {
            snprintf(why, size,
                     "field \"data\" must be a JSON object (seed 000's "
                     "PrechargeRequested data)");
            json_decref(*data);
            *data = NULL;
            return;
        }
    } else {
        *data = json_object();
        for (size_t i = 0; fields && i + 1 < fields->elements; i += 2) {
            const char *k = fields->element[i]->str;
            const redisReply *v = fields->element[i + 1];
            if (strcmp(k, "type") == 0 || strcmp(k, "metadata") == 0 ||
                strcmp(k, "request_id") == 0)
                continue;
            bool structured =
                strcmp(k, "context") == 0 || strcmp(k, "messages") == 0 || strcmp(k, "tools") == 0;
            json_t *val = structured ? json_field(v) : json_stringn(v->str, v->len);
            if (val == NULL) {
                snprintf(why, size, "field \"%s\" must be JSON (an array of messages)", k);
                json_decref(*data);
                *data = NULL;
                return;
            }
            json_object_set_new(*data, k, val);
        }
    }
    if (!json_is_string(json_object_get(*data, "correlation_id"))) {
        json_t *c = json_object_get(*metadata, "correlation_id");
        json_object_set_new(*data, "correlation_id",
                            json_is_string(c) ? json_copy(c) : json_string(entry));
    }
}

/* The data a malformed request's answer carries: only its correlation id (the metadata's, a
 * flat field's, else the entry's id), since nothing else in it could be read. The caller
 * decrefs. */
static json_t *unreadable_request(const redisReply *fields, json_t *metadata, const char *entry)
{
    const char *cid = json_string_value(json_object_get(metadata, "correlation_id"));
    const redisReply *flat = field(fields, "correlation_id");
    if (cid == NULL && flat != NULL && flat->type == REDIS_REPLY_STRING)
        cid = flat->str;
    return json_pack("{s:s}", "correlation_id", cid ? cid : entry);
}

/* The request's model as a store name, or "" (why says what is wrong). */
static void request_model(json_t *data, char model[PC_FLEET_NAME_MAX], char *why, size_t size)
{
    const char *m = json_string_value(json_object_get(data, "model_id"));
    if (m == NULL)
        m = json_string_value(json_object_get(data, "model"));
    model[0] = '\0';
    if (m == NULL || m[0] == '\0') {
        snprintf(why, size, "field \"model_id\" is required");
        return;
    }
    struct pc_error err = {0};
    if (pc_store_name(m, model, PC_FLEET_NAME_MAX, &err) != PC_OK) {
        snprintf(why, size, "model_id: %.250s", err.msg);
        model[0] = '\0';
    }
}

/* ---- answers ------------------------------------------------------------------------------ */

/* Publish a result once per correlation id, then acknowledge, in one step: a daemon that dies
 * between the two leaves neither done or both. KEYS: the marker, the responses, the stream to
 * acknowledge on. ARGV: daemon id, marker lifetime (ms), maxlen, group, entry, then the
 * response's fields. */
static const char ANSWER_LUA[] =
    "local fresh = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])\n"
    "if fresh then redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 6)) "
    "end\n"
    "redis.call('XACK', KEYS[3], ARGV[4], ARGV[5])\n"
    "if fresh then return 1 end\n"
    "return 0\n";

/* result (borrowed) as a PrechargeCompleted on the responses, once for its correlation id,
 * and the entry acknowledged on stream. PC_ERR_UNAVAILABLE when Redis is not there (try
 * again later); other errors are final. */
static enum pc_err answer(struct pc_fleet *f, struct pc_redis *c, const char *stream,
                          const char *entry, const char *request, json_t *result)
{
    const char *cid = json_string_value(json_object_get(result, "correlation_id"));
    const char *status = json_string_value(json_object_get(result, "status"));
    json_t *data = json_deep_copy(result);
    json_object_del(data, "type"); /* the event's; the entry has its own */
    json_object_set_new(data, "daemon_id", json_string(f->daemon_id));
    json_object_set_new(data, "host_id", json_string(f->host_id));
    json_t *meta = json_pack("{s:s?, s:s, s:s, s:s}", "correlation_id", cid, "request_id", request,
                             "daemon_id", f->daemon_id, "host_id", f->host_id);
    char *data_s = json_dumps(data, JSON_COMPACT), *meta_s = json_dumps(meta, JSON_COMPACT);
    json_decref(data);
    json_decref(meta);
    enum pc_err rc = PC_ERR_NOMEM;
    if (cid == NULL || data_s == NULL || meta_s == NULL)
        goto out;
    char marker[PC_PRECHARGE_ID_MAX + 32], ttl[24], maxlen[24];
    snprintf(marker, sizeof(marker), "%s%s", PC_FLEET_ANSWERED, cid);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)f->cfg.answered_ms);
    snprintf(maxlen, sizeof(maxlen), "%lld", f->cfg.maxlen);
    const char *argv[] = {"EVAL",
                          ANSWER_LUA,
                          "3",
                          marker,
                          PC_FLEET_RESPONSES,
                          stream,
                          f->daemon_id,
                          ttl,
                          maxlen,
                          PC_FLEET_GROUP,
                          entry,
                          "type",
                          "PrechargeCompleted",
                          "correlation_id",
                          cid,
                          "status",
                          status ? status : "failed",
                          "daemon_id",
                          f->daemon_id,
                          "data",
                          data_s,
                          "metadata",
                          meta_s};
    redisReply *reply;
    struct pc_error err = {0};
    rc = pc_redis_commandv(c, &reply, &err, sizeof(argv) / sizeof(argv[0]), argv, NULL);
    if (rc == PC_ERR_IO)
        pc_log_warn("fleet", "publishing the result of %s: %s", cid, err.msg);
    else if (rc == PC_OK && reply->integer == 0)
        pc_log_info("fleet", "%s was answered already; its request %s is acknowledged", cid,
                    request);
    freeReplyObject(reply);
out:
    free(data_s);
    free(meta_s);
    return rc;
}

/* A result made here (a request that could not run): seed 000's fields, status and error. */
static json_t *made_result(json_t *data, const char *status, const char *error)
{
    const char *model = json_string_value(json_object_get(data, "model_id"));
    if (model == NULL)
        model = json_string_value(json_object_get(data, "model"));
    const char *cat = json_string_value(json_object_get(data, "category"));
    return json_pack("{s:O?, s:s?, s:s, s:s, s:i, s:i, s:i, s:s}", "correlation_id",
                     json_object_get(data, "correlation_id"), "model_id", model, "category",
                     cat ? cat : "local", "status", status, "context_tokens", 0, "load_time_ms", 0,
                     "prefill_time_ms", 0, "error", error);
}

static void answer_now(struct pc_fleet *f, struct pc_redis *c, const char *stream,
                       const char *entry, const char *request, json_t *data, const char *status,
                       const char *error)
{
    json_t *r = made_result(data, status, error);
    if (answer(f, c, stream, entry, request, r) == PC_ERR_UNAVAILABLE)
        pc_log_debug("fleet", "%s stays pending: Redis went away", entry);
    json_decref(r);
}

/* Whether the correlation id was answered already (by any daemon). */
static bool answered(struct pc_fleet *f, struct pc_redis *c, const char *cid)
{
    (void)f;
    redisReply *reply;
    bool yes = pc_redis_command(c, &reply, NULL, "EXISTS %s%s", PC_FLEET_ANSWERED, cid) == PC_OK &&
               reply->integer == 1;
    freeReplyObject(reply);
    return yes;
}

/* ---- the router --------------------------------------------------------------------------- */

static const char SERVERS_LUA[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "return redis.call('ZCOUNT', KEYS[1], now, '+inf')\n";

/* Whether a live daemon (this one, or one whose registry entry is current) serves model. */
static bool served(struct pc_fleet *f, struct pc_redis *c, const char *model)
{
    if (pc_fleet_serves(f, model))
        return true;
    char key[PC_FLEET_NAME_MAX + 32];
    snprintf(key, sizeof(key), "%s%s", PC_FLEET_SERVES, model);
    redisReply *reply;
    bool yes = pc_redis_command(c, &reply, NULL, "EVAL %s 1 %s", SERVERS_LUA, key) == PC_OK &&
               reply->integer > 0;
    freeReplyObject(reply);
    return yes;
}

/* Move a request to its model's stream and acknowledge it, in one step. The group is made
 * first (from the stream's start), so that no routed request is missed by a daemon that
 * joins later. */
static const char ROUTE_LUA[] =
    "pcall(redis.call, 'XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')\n"
    "redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 4))\n"
    "return redis.call('XACK', KEYS[2], ARGV[1], ARGV[3])\n";

static void forward(struct pc_fleet *f, struct pc_redis *c, const char *entry, const char *model,
                    json_t *data, json_t *metadata)
{
    char key[PC_FLEET_NAME_MAX + 32], maxlen[24];
    snprintf(key, sizeof(key), "%s%s", PC_FLEET_MODEL_REQUESTS, model);
    snprintf(maxlen, sizeof(maxlen), "%lld", f->cfg.maxlen);
    char *data_s = json_dumps(data, JSON_COMPACT);
    char *meta_s = metadata ? json_dumps(metadata, JSON_COMPACT) : strdup("{}");
    if (data_s && meta_s) {
        const char *argv[] = {"EVAL",         ROUTE_LUA, "2",    key,    PC_FLEET_REQUESTS,
                              PC_FLEET_GROUP, maxlen,    entry,  "type", "PrechargeRequested",
                              "request_id",   entry,     "data", data_s, "metadata",
                              meta_s};
        redisReply *reply;
        struct pc_error err = {0};
        if (pc_redis_commandv(c, &reply, &err, sizeof(argv) / sizeof(argv[0]), argv, NULL) ==
            PC_ERR_IO)
            pc_log_warn("fleet", "routing %s to %s: %s", entry, key, err.msg);
        freeReplyObject(reply);
    }
    free(data_s);
    free(meta_s);
}

static bool is_deferred(struct pc_fleet_bus *b, const char *entry)
{
    for (size_t i = 0; i < b->n_deferred; i++)
        if (strcmp(b->deferred[i].entry, entry) == 0)
            return true;
    return false;
}

static void defer(struct pc_fleet_bus *b, const char *entry, const char *model, json_t *data,
                  json_t *metadata)
{
    if (is_deferred(b, entry))
        return;
    struct deferred *grown = realloc(b->deferred, (b->n_deferred + 1) * sizeof(*grown));
    if (grown == NULL)
        return; /* it stays pending: taken over later */
    b->deferred = grown;
    struct deferred *d = &b->deferred[b->n_deferred++];
    memset(d, 0, sizeof(*d));
    snprintf(d->entry, sizeof(d->entry), "%s", entry);
    snprintf(d->model, sizeof(d->model), "%s", model);
    snprintf(d->cid, sizeof(d->cid), "%s",
             json_string_value(json_object_get(data, "correlation_id")));
    d->data = json_incref(data);
    d->metadata = json_incref(metadata);
    d->seen_ns = pc_clock_mono_ns();
}

/* A request on precharge:requests: to its model's stream, or deferred, or answered. */
static void route(struct pc_fleet *f, const char *entry, const redisReply *fields)
{
    struct pc_fleet_bus *b = f->bus;
    struct pc_redis *c = b->rconn;
    char why[300] = "", model[PC_FLEET_NAME_MAX] = "";
    json_t *data, *metadata;
    parse_request(fields, entry, &data, &metadata, why, sizeof(why));
    if (data != NULL)
        request_model(data, model, why, sizeof(why));
    if (data == NULL || model[0] == '\0') {
        json_t *req = data ? json_incref(data) : unreadable_request(fields, metadata, entry);
        answer_now(f, c, PC_FLEET_REQUESTS, entry, entry, req, "failed", why);
        json_decref(req);
    } else if (answered(f, c, json_string_value(json_object_get(data, "correlation_id")))) {
        redisReply *reply; /* an old request seen again (a new group reads from the start) */
        pc_redis_command(c, &reply, NULL, "XACK %s %s %s", PC_FLEET_REQUESTS, PC_FLEET_GROUP,
                         entry);
        freeReplyObject(reply);
    } else if (served(f, c, model)) {
        forward(f, c, entry, model, data, metadata);
    } else {
        defer(b, entry, model, data, metadata);
    }
    json_decref(data);
    json_decref(metadata);
}

static void drop_deferred(struct pc_fleet_bus *b, size_t i)
{
    json_decref(b->deferred[i].data);
    json_decref(b->deferred[i].metadata);
    b->deferred[i] = b->deferred[--b->n_deferred];
}

/* The deferred requests whose model found a server, or whose grace ran out. */
static void recheck_deferred(struct pc_fleet *f)
{
    struct pc_fleet_bus *b = f->bus;
    int64_t now = pc_clock_mono_ns();
    for (size_t i = 0; i < b->n_deferred;) {
        struct deferred *d = &b->deferred[i];
        if (served(f, b->rconn, d->model)) {
            forward(f, b->rconn, d->entry, d->model, d->data, d->metadata);
        } else if (now - d->seen_ns >= f->cfg.grace_ms * 1000000) {
            char why[400];
            snprintf(why, sizeof(why),
                     "unavailable: no live daemon in the fleet serves model \"%s\" (waited %lld "
                     "ms)",
                     d->model, (long long)f->cfg.grace_ms);
            answer_now(f, b->rconn, PC_FLEET_REQUESTS, d->entry, d->entry, d->data, "unavailable",
                       why);
        } else {
            i++;
            continue;
        }
        drop_deferred(b, i);
    }
}

/* ---- the reader --------------------------------------------------------------------------- */

static bool running(struct pc_fleet_bus *b, const char *stream, const char *entry)
{
    for (size_t i = 0; i < b->n_inflight; i++)
        if (strcmp(b->inflight[i].entry, entry) == 0 && strcmp(b->inflight[i].stream, stream) == 0)
            return true;
    return false;
}

/* Lock held. */
static void drop_inflight(struct pc_fleet_bus *b, size_t i)
{
    json_decref(b->inflight[i].data);
    json_decref(b->inflight[i].result);
    b->inflight[i] = b->inflight[--b->n_inflight];
}

/* A request on a model's stream: run it here, unless it was answered already. */
static void work(struct pc_fleet *f, const char *stream, const char *entry,
                 const redisReply *fields)
{
    struct pc_fleet_bus *b = f->bus;
    struct pc_redis *c = b->rconn;
    const redisReply *req = field(fields, "request_id");
    char request[ENTRY_ID_MAX], why[300] = "";
    snprintf(request, sizeof(request), "%s",
             req && req->type == REDIS_REPLY_STRING ? req->str : entry);
    json_t *data, *metadata;
    parse_request(fields, request, &data, &metadata, why, sizeof(why));
    json_decref(metadata);
    if (data == NULL) {
        json_t *req = unreadable_request(fields, NULL, request);
        answer_now(f, c, stream, entry, request, req, "failed", why);
        json_decref(req);
        return;
    }
    const char *cid = json_string_value(json_object_get(data, "correlation_id"));
    if (answered(f, c, cid)) {
        redisReply *reply;
        pc_redis_command(c, &reply, NULL, "XACK %s %s %s", stream, PC_FLEET_GROUP, entry);
        freeReplyObject(reply);
        json_decref(data);
        return;
    }
    pthread_mutex_lock(&f->lock);
    bool dup = running(b, stream, entry);
    if (!dup && b->n_inflight == b->cap_inflight) {
        size_t cap = b->cap_inflight ? b->cap_inflight * 2 : 16;
        struct inflight *grown = realloc(b->inflight, cap * sizeof(*grown));
        if (grown == NULL)
            dup = true; /* it stays pending: taken over later */
        else {
            b->inflight = grown;
            b->cap_inflight = cap;
        }
    }
    if (!dup) {
        struct inflight *in = &b->inflight[b->n_inflight++];
        memset(in, 0, sizeof(*in));
        snprintf(in->stream, sizeof(in->stream), "%s", stream);
        snprintf(in->entry, sizeof(in->entry), "%s", entry);
        snprintf(in->request, sizeof(in->request), "%s", request);
        snprintf(in->cid, sizeof(in->cid), "%s", cid);
        in->data = json_incref(data);
    }
    pthread_mutex_unlock(&f->lock);
    if (dup) {
        json_decref(data);
        return;
    }
    /* Before the submit returns, its result may be out: the entry is there to receive it. */
    struct pc_error err = {0};
    enum pc_err rc = f->cfg.submit(f->cfg.user, data, cid, &err);
    if (rc != PC_OK && rc != PC_ERR_CONFLICT) { /* a conflict: it runs here already */
        json_t *r = made_result(data, "failed", err.msg);
        pthread_mutex_lock(&f->lock);
        for (size_t i = 0; i < b->n_inflight; i++)
            if (strcmp(b->inflight[i].entry, entry) == 0 && b->inflight[i].result == NULL)
                b->inflight[i].result = json_incref(r);
        pthread_cond_broadcast(&f->wake);
        pthread_mutex_unlock(&f->lock);
        json_decref(r); /* the completer publishes it */
    }
    json_decref(data);
}

/* Each entry of an XREADGROUP or XAUTOCLAIM list, routed or run. */
static void take_entries(struct pc_fleet *f, const char *stream, const redisReply *entries)
{
    for (size_t i = 0; entries && entries->type == REDIS_REPLY_ARRAY && i < entries->elements;
         i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        if (e->element[1]->type != REDIS_REPLY_ARRAY) { /* trimmed away while pending */
            redisReply *reply;
            pc_redis_command(f->bus->rconn, &reply, NULL, "XACK %s %s %s", stream, PC_FLEET_GROUP,
                             e->element[0]->str);
            freeReplyObject(reply);
            continue;
        }
        if (strcmp(stream, PC_FLEET_REQUESTS) == 0)
            route(f, e->element[0]->str, e->element[1]);
        else
            work(f, stream, e->element[0]->str, e->element[1]);
    }
}

static void create_group(struct pc_fleet *f, const char *stream)
{
    redisReply *reply;
    if (pc_redis_command(f->bus->rconn, &reply, NULL, "XGROUP CREATE %s %s 0 MKSTREAM", stream,
                         PC_FLEET_GROUP) == PC_ERR_IO &&
        !pc_redis_is_error(reply, "BUSYGROUP"))
        pc_log_warn("fleet", "XGROUP CREATE %s: %s", stream, reply->str);
    freeReplyObject(reply);
}

/* The groups of the streams this daemon reads, made again after a reconnection (a restarted
 * Redis may have lost them), when they were lost, and when the models it serves change. */
static void ensure_groups(struct pc_fleet *f)
{
    struct pc_fleet_bus *b = f->bus;
    uint64_t version;
    char(*models)[PC_FLEET_NAME_MAX] = NULL;
    pthread_mutex_lock(&f->lock);
    version = f->serves_version;
    pthread_mutex_unlock(&f->lock);
    if (!b->groups_lost && b->groups_generation == pc_redis_generation(b->rconn) &&
        b->groups_version == version && b->models != NULL)
        return;
    size_t n = pc_fleet_serves_copy(f, &models, &version);
    if (models == NULL)
        return;
    create_group(f, PC_FLEET_REQUESTS);
    char key[PC_FLEET_NAME_MAX + 32];
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "%s%s", PC_FLEET_MODEL_REQUESTS, models[i]);
        create_group(f, key);
    }
    free(b->models);
    b->models = models;
    b->n_models = n;
    b->replay = b->replay || (b->groups_generation != 0 &&
                              b->groups_generation != pc_redis_generation(b->rconn));
    b->groups_generation = pc_redis_generation(b->rconn);
    b->groups_version = version;
    b->groups_lost = false;
}

/* Read new requests from precharge:requests and the streams of the served models. */
static void read_once(struct pc_fleet *f, size_t room)
{
    struct pc_fleet_bus *b = f->bus;
    size_t argc = 9 + 2 * (1 + b->n_models);
    const char **argv = malloc(argc * sizeof(*argv));
    char(*keys)[PC_FLEET_NAME_MAX + 32] = malloc((b->n_models + 1) * sizeof(*keys));
    char count[24], block[16];
    if (argv == NULL || keys == NULL)
        goto out;
    snprintf(count, sizeof(count), "%zu", room);
    snprintf(block, sizeof(block), "%d", BLOCK_MS);
    size_t k = 0;
    argv[k++] = "XREADGROUP";
    argv[k++] = "GROUP";
    argv[k++] = PC_FLEET_GROUP;
    argv[k++] = f->daemon_id;
    argv[k++] = "COUNT";
    argv[k++] = count;
    argv[k++] = "BLOCK";
    argv[k++] = block;
    argv[k++] = "STREAMS";
    argv[k++] = PC_FLEET_REQUESTS;
    for (size_t i = 0; i < b->n_models; i++) {
        snprintf(keys[i], sizeof(keys[i]), "%s%s", PC_FLEET_MODEL_REQUESTS, b->models[i]);
        argv[k++] = keys[i];
    }
    bool replay = b->replay; /* "0": the pending entries of this consumer, without blocking */
    for (size_t i = 0; i <= b->n_models; i++)
        argv[k++] = replay ? "0" : ">";
    redisReply *reply;
    struct pc_error err = {0};
    enum pc_err rc = pc_redis_commandv(b->rconn, &reply, &err, (int)k, argv, NULL);
    if (rc == PC_ERR_IO && pc_redis_is_error(reply, "NOGROUP"))
        b->groups_lost = true;
    else if (rc == PC_ERR_IO)
        pc_log_warn("fleet", "%s", err.msg);
    if (rc == PC_OK)
        b->replay = false;
    for (size_t i = 0; rc == PC_OK && reply->type == REDIS_REPLY_ARRAY && i < reply->elements;
         i++) {
        const redisReply *s = reply->element[i];
        if (s->type == REDIS_REPLY_ARRAY && s->elements == 2 &&
            s->element[0]->type == REDIS_REPLY_STRING)
            take_entries(f, s->element[0]->str, s->element[1]);
    }
    freeReplyObject(reply);
out:
    free(argv);
    free(keys);
}

/* Take over the requests that have been pending on some consumer (a dead daemon) longer than
 * the visibility timeout. */
static void claim_stream(struct pc_fleet *f, const char *stream)
{
    struct pc_fleet_bus *b = f->bus;
    char idle[24], cursor[ENTRY_ID_MAX] = "0-0";
    snprintf(idle, sizeof(idle), "%lld", (long long)f->cfg.visibility_ms);
    for (int round = 0; round < 8; round++) {
        redisReply *reply;
        if (pc_redis_command(b->rconn, &reply, NULL, "XAUTOCLAIM %s %s %s %s %s COUNT %d", stream,
                             PC_FLEET_GROUP, f->daemon_id, idle, cursor, CLAIM_COUNT) != PC_OK ||
            reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
            freeReplyObject(reply);
            return;
        }
        const redisReply *entries = reply->element[1];
        if (entries->type == REDIS_REPLY_ARRAY && entries->elements > 0)
            pc_log_info("fleet", "took over %zu requests pending too long on %s", entries->elements,
                        stream);
        take_entries(f, stream, entries);
        snprintf(cursor, sizeof(cursor), "%s",
                 reply->element[0]->type == REDIS_REPLY_STRING ? reply->element[0]->str : "0-0");
        freeReplyObject(reply);
        if (strcmp(cursor, "0-0") == 0)
            return;
    }
}

static void claim(struct pc_fleet *f)
{
    struct pc_fleet_bus *b = f->bus;
    int64_t now = pc_clock_mono_ns();
    if (now < b->next_claim_ns)
        return;
    /* Often enough that a request waits about one timeout after its daemon died. */
    int64_t every = f->cfg.visibility_ms / 4 > 100 ? f->cfg.visibility_ms / 4 : 100;
    b->next_claim_ns = now + every * 1000000;
    claim_stream(f, PC_FLEET_REQUESTS);
    char key[PC_FLEET_NAME_MAX + 32];
    for (size_t i = 0; i < b->n_models; i++) {
        snprintf(key, sizeof(key), "%s%s", PC_FLEET_MODEL_REQUESTS, b->models[i]);
        claim_stream(f, key);
    }
}

/* Lock held. */
static bool has_room(struct pc_fleet *f)
{
    return f->bus->n_inflight < (size_t)f->cfg.max_inflight;
}

static void *reader_main(void *arg)
{
    struct pc_fleet *f = arg;
    struct pc_fleet_bus *b = f->bus;
    while (!atomic_load(&f->stopping)) {
        if (!pc_redis_connect(b->rconn)) {
            pc_fleet_nap(f, pc_redis_wait_ms(b->rconn));
            continue;
        }
        ensure_groups(f);
        pthread_mutex_lock(&f->lock);
        size_t busy = b->n_inflight;
        pthread_mutex_unlock(&f->lock);
        size_t max = (size_t)f->cfg.max_inflight;
        if (busy >= max) { /* the completer wakes it when one ends */
            pc_fleet_nap_unless(f, BLOCK_MS, has_room);
        } else {
            read_once(f, max - busy);
        }
        recheck_deferred(f);
        claim(f);
    }
    return NULL;
}

/* ---- the completer ------------------------------------------------------------------------ */

static bool final(const char *status)
{
    return status && strcmp(status, "queued") != 0 && strcmp(status, "running") != 0;
}

/* The result of correlation id cid (new reference), taken from the precharger when it still
 * has it, else from the event's data; NULL while it runs. */
static json_t *result_of(struct pc_fleet *f, const char *cid, json_t *event)
{
    json_t *r = pc_precharge_get(f->cfg.precharger, cid, 0);
    if (r != NULL && final(json_string_value(json_object_get(r, "status"))))
        return r;
    json_decref(r);
    if (event != NULL && final(json_string_value(json_object_get(event, "status"))))
        return json_incref(event);
    return NULL;
}

/* Give the requests of correlation id cid their result. Lock held. */
static void settle(struct pc_fleet_bus *b, const char *cid, json_t *result)
{
    for (size_t i = 0; i < b->n_inflight; i++)
        if (b->inflight[i].result == NULL && strcmp(b->inflight[i].cid, cid) == 0)
            b->inflight[i].result = json_incref(result);
}

/* The PrechargeCompleted events since the last read. */
static void read_events(struct pc_fleet *f)
{
    struct pc_fleet_bus *b = f->bus;
    struct pc_buf buf = PC_BUF_INIT;
    pc_events_read(b->sub, &buf);
    const char *p = buf.data ? buf.data : "";
    char name[64];
    json_t *frame;
    while (pc_fleet_next_frame(&p, name, sizeof(name), &frame)) {
        json_t *data = json_object_get(frame, "data"); /* the event's {type, data, metadata} */
        const char *cid = json_string_value(json_object_get(data, "correlation_id"));
        bool ours = false;
        pthread_mutex_lock(&f->lock);
        for (size_t i = 0; cid && i < b->n_inflight && !ours; i++)
            ours = strcmp(b->inflight[i].cid, cid) == 0;
        pthread_mutex_unlock(&f->lock);
        json_t *r = ours ? result_of(f, cid, data) : NULL;
        if (r != NULL) {
            pthread_mutex_lock(&f->lock);
            settle(b, cid, r);
            pthread_mutex_unlock(&f->lock);
        }
        json_decref(r);
        json_decref(frame);
    }
    pc_buf_free(&buf);
}

/* Ask the precharger about each request still running: an event that fell off the ring (a
 * burst of events) is not waited for forever. */
static void poll_running(struct pc_fleet *f)
{
    struct pc_fleet_bus *b = f->bus;
    for (size_t i = 0;; i++) {
        char cid[PC_PRECHARGE_ID_MAX];
        pthread_mutex_lock(&f->lock);
        bool more = i < b->n_inflight;
        if (more)
            snprintf(cid, sizeof(cid), "%s", b->inflight[i].result ? "" : b->inflight[i].cid);
        pthread_mutex_unlock(&f->lock);
        if (!more)
            return;
        json_t *r = cid[0] ? result_of(f, cid, NULL) : NULL;
        if (r != NULL) {
            pthread_mutex_lock(&f->lock);
            settle(b, cid, r);
            pthread_mutex_unlock(&f->lock);
            json_decref(r);
        }
    }
}

/* Publish the results that are in; those Redis did not take stay for the next round. */
static void publish(struct pc_fleet *f)
{
    struct pc_fleet_bus *b = f->bus;
    for (;;) {
        struct inflight one = {0};
        bool found = false;
        pthread_mutex_lock(&f->lock);
        for (size_t i = 0; i < b->n_inflight && !found; i++) {
            if (b->inflight[i].result == NULL || b->inflight[i].entry[0] == '\0')
                continue;
            one = b->inflight[i];
            json_incref(one.result);
            found = true;
        }
        pthread_mutex_unlock(&f->lock);
        if (!found)
            return;
        enum pc_err rc = answer(f, b->cconn, one.stream, one.entry, one.request, one.result);
        json_decref(one.result);
        if (rc == PC_ERR_UNAVAILABLE)
            return; /* Redis is away: they wait for it */
        pthread_mutex_lock(&f->lock);
        for (size_t i = 0; i < b->n_inflight; i++)
            if (strcmp(b->inflight[i].entry, one.entry) == 0 &&
                strcmp(b->inflight[i].stream, one.stream) == 0) {
                drop_inflight(b, i);
                break;
            }
        pthread_cond_broadcast(&f->wake); /* the reader has room again */
        pthread_mutex_unlock(&f->lock);
    }
}

static void on_event(void *arg)
{
    struct pc_fleet *f = arg;
    pthread_mutex_lock(&f->lock);
    f->bus->events_ready = true;
    pthread_cond_broadcast(&f->wake);
    pthread_mutex_unlock(&f->lock);
}

/* Lock held: events to read, or results to publish. */
static bool completer_ready(struct pc_fleet *f)
{
    struct pc_fleet_bus *b = f->bus;
    for (size_t i = 0; i < b->n_inflight; i++)
        if (b->inflight[i].result != NULL)
            return true;
    return b->events_ready;
}

static void *completer_main(void *arg)
{
    struct pc_fleet *f = arg;
    struct pc_fleet_bus *b = f->bus;
    int64_t next_poll = 0;
    while (!atomic_load(&f->stopping)) {
        /* Until an event or a result, a second at most (the poll below), or Redis's backoff. */
        int64_t wait = pc_redis_wait_ms(b->cconn);
        pc_fleet_nap_unless(f, wait > 0 && wait < 1000 ? wait : 1000, completer_ready);
        pthread_mutex_lock(&f->lock);
        b->events_ready = false;
        pthread_mutex_unlock(&f->lock);
        read_events(f);
        int64_t now = pc_clock_mono_ns();
        if (now >= next_poll) {
            poll_running(f);
            next_poll = now + 1000000000ll;
        }
        if (pc_redis_wait_ms(b->cconn) == 0)
            publish(f);
        else
            pc_fleet_nap(f, pc_redis_wait_ms(b->cconn));
    }
    return NULL;
}

/* ---- start and stop ----------------------------------------------------------------------- */

enum pc_err pc_fleet_bus_start(struct pc_fleet *f, struct pc_error *err)
{
    struct pc_fleet_bus *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "fleet: out of memory");
    f->bus = b;
    b->rconn = pc_fleet_connect(f, "bus", BLOCK_MS + 5000);
    b->cconn = pc_fleet_connect(f, "results", 5000);
    b->sub = pc_events_subscribe(f->cfg.events, "precharge:responses", 0);
    if (b->rconn == NULL || b->cconn == NULL || b->sub == NULL) {
        pc_fleet_bus_stop(f);
        return pc_error_set(err, PC_ERR_NOMEM, "fleet: out of memory");
    }
    pc_events_watch(b->sub, on_event, f);
    b->reader_started = pthread_create(&b->reader, NULL, reader_main, f) == 0;
    b->completer_started =
        b->reader_started && pthread_create(&b->completer, NULL, completer_main, f) == 0;
    if (!b->completer_started) {
        pc_fleet_bus_stop(f);
        return pc_error_set(err, PC_ERR_NOMEM, "fleet: cannot start the bus's threads");
    }
    return PC_OK;
}

void pc_fleet_bus_stop(struct pc_fleet *f)
{
    struct pc_fleet_bus *b = f->bus;
    if (b == NULL)
        return;
    pc_fleet_halt(f);
    if (b->reader_started)
        pthread_join(b->reader, NULL);
    if (b->completer_started)
        pthread_join(b->completer, NULL);
    pc_events_unsubscribe(b->sub);
    pc_redis_free(b->rconn);
    pc_redis_free(b->cconn);
    while (b->n_inflight > 0)
        drop_inflight(b, 0);
    free(b->inflight);
    while (b->n_deferred > 0)
        drop_deferred(b, 0);
    free(b->deferred);
    free(b->models);
    free(b);
    f->bus = NULL;
}
