/* precharge.c - the precharge queue and its workers: priority order, merging of identical work,
 * debounce by key, and the run of one job (load, render, restore, prefill, snapshot, result,
 * events). */
#include "precharge.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/clock.h"
#include "../base/log.h"
#include "../store/store.h"

#define MAX_WORKERS 8
#define KEEP_FINISHED 256 /* finished jobs kept for GET /api/precharge/{id} */
#define KEEP_REMOTE 64    /* contexts that remote precharges made ready, for /api/precharged */

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct job {
    struct job *next;
    char id[PC_PRECHARGE_ID_MAX];
    char model[256];
    char category[16]; /* as the caller asked: "local", "mcl", "ollama" */
    char provider[16]; /* who runs it: "local" or the remote provider's category */
    char *key;         /* the debounce key, or NULL: never replaced */
    /* Callers' own ids for the same work, each answered with this job's result. */
    char (*aliases)[PC_PRECHARGE_ID_MAX];
    size_t n_aliases;
    json_t *messages; /* owned, or NULL */
    json_t *tools;    /* owned, or NULL: the tools the template renders with messages */
    char *prompt;     /* owned, or NULL */
    char *content;    /* messages or prompt as text: what merging compares */
    enum pc_think think;
    int64_t keep_alive_ns; /* -1: the model's own */
    enum pc_priority priority;
    uint64_t order;        /* submission order, for FIFO within a priority */
    int64_t not_before_ns; /* monotonic: the debounce window */
    enum job_state state;
    json_t *result;   /* once DONE */
    enum pc_err fail; /* once DONE: why it failed, or PC_OK */
};

/* A context that a remote precharge made ready. */
struct remote_ctx {
    struct pc_precharge_remote_ctx pub;
    char *content; /* what identifies it beside the model */
};

struct pc_precharger {
    struct pc_precharger_config cfg;
    /* lock guards jobs, every job's state, result and aliases, next_order, stopping and
     * remote. */
    pthread_mutex_t lock;
    struct remote_ctx remote[KEEP_REMOTE]; /* newest first; n_remote in use */
    size_t n_remote;
    pthread_cond_t changed; /* a job was queued, changed or finished */
    struct job *jobs;       /* newest first */
    uint64_t next_order;
    bool stopping;
    pthread_t workers[MAX_WORKERS];
    int n_workers;
};

static void job_free(struct job *j)
{
    if (j == NULL)
        return;
    json_decref(j->messages);
    json_decref(j->tools);
    json_decref(j->result);
    free(j->key);
    free(j->aliases);
    free(j->prompt);
    free(j->content);
    free(j);
}

/* ---- running one job --------------------------------------------------------------------- */

struct outcome {
    const char *status; /* ready | already_warm | failed */
    int32_t context_tokens;
    int64_t load_ns;
    int64_t prefill_ns;
    struct pc_restore restore;
    const char *snapshot_tier;    /* where the context is kept; NULL: not ours (remote) */
    bool shared;                  /* the shared tier (Redis) holds it too */
    struct pc_error snapshot_err; /* why it was not stored; code PC_OK when it was */
    struct pc_error err;
};

/* The job's context as tokens: messages as every later chat request that starts with them
 * sees them (the chat's own render), or a raw prompt as it is. *toks is malloc'd. */
static enum pc_err job_tokens(const struct pc_precharger *pc, const struct job *j,
                              struct pc_model *m, int32_t **toks, size_t *n, struct pc_error *err)
{
    if (j->messages == NULL)
        return pc_model_tokenize(m, j->prompt, toks, n, err);
    if (pc->cfg.render == NULL)
        return pc_error_set(err, PC_ERR_INVALID, "no chat renderer for a precharge's messages");
    return pc->cfg.render(m, j->model, j->messages, j->tools, j->think, toks, n, err);
}

static bool resident(struct pc_pool *pool, const char *name)
{
    struct pc_pool_status *st = NULL;
    size_t n = pc_pool_list(pool, &st);
    bool found = false;
    for (size_t i = 0; i < n && !found; i++)
        found = strcmp(st[i].name, name) == 0;
    free(st);
    return found;
}

/* Write the prefilled context through to RAM and disk. Takes blob. A failure does not fail the
 * precharge (the context is live), but the result says so. */
static void store_snapshot(struct pc_precharger *pc, const struct job *j, const char *key,
                           const int32_t *toks, size_t n, uint8_t *blob, size_t size,
                           struct outcome *o)
{
    struct pc_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    snprintf(meta.model, sizeof(meta.model), "%.63s", j->model);
    snprintf(meta.category, sizeof(meta.category), "%s", j->category);
    struct pc_error serr = {0};
    if (pc_snapstore_save(pc->cfg.snapshots, key, &meta, toks, n, blob, size, true, &serr) == PC_OK)
        return;
    pc_error_set(&o->snapshot_err, serr.code, "the snapshot was not stored: %s", serr.msg);
    pc_log_warn("precharge", "%s: %s", j->id, o->snapshot_err.msg);
}

/* Prefill toks as a task of the model's decode loop, at the job's priority (batched with the
 * requests, which outrank it), and save the snapshot through. */
static void prefill(struct pc_precharger *pc, const struct job *j, struct pc_model *m,
                    const char *key, const int32_t *toks, size_t n, struct outcome *o)
{
    struct pc_gen_request req = {
        .tokens = toks,
        .n_tokens = n,
        .sampling = pc_sampling_default(),
        .priority = j->priority,
        .prefill_only = true,
        .want_blob = true,
    };
    struct pc_snap_offer offer;
    struct pc_gen *g = NULL;
    uint8_t *blob = NULL;
    size_t size = 0;

    pc_snapstore_offer(pc->cfg.snapshots, key, toks, n, &offer);
    req.offer = &offer.offer;
    enum pc_err rc = pc_gen_start(m, &req, &g, &o->err);
    if (rc == PC_OK)
        rc = pc_gen_wait_prompt(g, &o->err);
    pc_snapstore_offer_done(pc->cfg.snapshots, &offer, g != NULL ? pc_gen_restore(g) : NULL,
                            &o->restore);
    if (rc != PC_OK) {
        pc_gen_free(g);
        o->status = "failed";
        return;
    }
    /* The end of a precharge comes right after its prompt: wait for it, and its state. */
    const char *text;
    size_t len;
    bool done = false;
    while (rc == PC_OK && !done)
        rc = pc_gen_next(g, &text, &len, &done, &o->err);
    const struct pc_gen_stats *st = pc_gen_stats(g);
    pc_gen_take_blob(g, &blob, &size);
    o->context_tokens = (int32_t)n;
    o->prefill_ns = st->prompt_ns;
    o->status = rc != PC_OK ? "failed" : st->cached_tokens == (int32_t)n ? "already_warm" : "ready";
    pc_gen_free(g);
    if (blob != NULL && rc == PC_OK)
        store_snapshot(pc, j, key, toks, n, blob, size, o);
    else
        free(blob);
    if (rc == PC_OK) {
        o->snapshot_tier = pc_tier_name(pc_snapstore_tier(pc->cfg.snapshots, key, toks, n));
        o->shared = pc_snapstore_shared(pc->cfg.snapshots, key, toks, n);
    }
}

/* The remote provider's job: it prefills there, and says how it went. */
static void run_remote(struct pc_precharger *pc, const struct job *j, struct outcome *o)
{
    const struct pc_precharge_provider *r = pc->cfg.remote;
    struct pc_precharge_remote_stats st = {0};
    if (r->prefill(r->user, j->model, j->messages, j->prompt, &st, &o->err) != PC_OK)
        return;
    o->status = "ready";
    o->context_tokens = st.context_tokens;
    o->load_ns = st.load_ns;
    o->prefill_ns = st.prefill_ns;
}

/* A context must leave a cell for the answer, and keep to max_prompt_tokens, as a request's
 * prompt must: the same limit, named the same way (infer.c's prompt_limit). */
static bool within_limit(const struct pc_precharger *pc, uint32_t n_ctx, size_t n,
                         struct pc_error *err)
{
    size_t limit = n_ctx > 0 ? n_ctx - 1 : 0;
    uint32_t max = pc->cfg.max_prompt_tokens;
    if (max > 0 && max < limit) {
        if (n <= max)
            return true;
        pc_error_set(err, PC_ERR_CTX_OVERFLOW,
                     "the context is %zu tokens; the limit is %u (max_prompt_tokens)", n, max);
        return false;
    }
    if (n <= limit)
        return true;
    pc_error_set(err, PC_ERR_CTX_OVERFLOW,
                 "the context is %zu tokens; the limit is %zu (context length %u, less one token "
                 "for the answer)",
                 n, limit, n_ctx);
    return false;
}

static void run_job(struct pc_precharger *pc, const struct job *j, struct outcome *o)
{
    char path[PATH_MAX];
    struct pc_pool_entry *entry = NULL;
    int32_t *toks = NULL;
    size_t n = 0;
    bool loaded = false;

    o->status = "failed";
    if (strcmp(j->provider, "local") != 0) {
        run_remote(pc, j, o);
        return;
    }
    if (pc_store_path(pc->cfg.models_dir, j->model, path, sizeof(path), &o->err) != PC_OK)
        return;
    bool was_resident = resident(pc->cfg.pool, j->model);
    if (!was_resident)
        pc_events_publish(pc->cfg.events, PC_EV_MODEL_LOADING, j->model, j->id, NULL);
    int64_t t0 = pc_clock_mono_ns();
    /* A precharge anticipates a use; it is not one (seed 004's preload): the model's place in
     * the LRU and LFU orders stays where its requests put it. */
    struct pc_pool_acquire_params ap = pc_pool_acquire_default_params();
    ap.preload = true;
    ap.keep_alive_ns = j->keep_alive_ns;
    if (pc_pool_acquire_with(pc->cfg.pool, j->model, path, &ap, &entry, &loaded, &o->err) !=
        PC_OK) {
        pc_events_publish(pc->cfg.events, PC_EV_MODEL_FAILED, j->model, j->id,
                          json_pack("{s:s}", "error", o->err.msg));
        return;
    }
    struct pc_model *m = pc_pool_entry_model(entry);
    if (loaded)
        o->load_ns = pc_clock_mono_ns() - t0;
    if (job_tokens(pc, j, m, &toks, &n, &o->err) == PC_OK &&
        within_limit(pc, pc_model_info(m)->n_ctx, n, &o->err))
        prefill(pc, j, m, pc_model_identity(m), toks, n, o);
    free(toks);
    pc_pool_release(pc->cfg.pool, entry);
}

static json_t *result_json(const struct job *j, const struct outcome *o)
{
    json_t *r =
        json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:I}", "correlation_id", j->id, "model_id",
                  j->model, "category", j->category, "status", o->status, "context_tokens",
                  o->context_tokens, "load_time_ms", (json_int_t)(o->load_ns / 1000000),
                  "prefill_time_ms", (json_int_t)(o->prefill_ns / 1000000));
    if (r == NULL)
        return NULL;
    json_object_set_new(r, "error",
                        strcmp(o->status, "failed") == 0 ? json_string(o->err.msg) : json_null());
    json_object_set_new(
        r, "restored_from",
        o->restore.tier == PC_TIER_LIVE ? json_null() : json_string(pc_tier_name(o->restore.tier)));
    if (o->restore.failed)
        json_object_set_new(r, "restore_error", json_string(o->restore.reason));
    if (strcmp(o->status, "failed") != 0 && o->snapshot_tier != NULL)
        json_object_set_new(r, "snapshot_tier", json_string(o->snapshot_tier));
    if (strcmp(o->status, "failed") != 0 && o->shared)
        json_object_set_new(r, "shared_tier", json_string(pc_tier_name(PC_TIER_SHARED)));
    if (o->snapshot_err.code != PC_OK)
        json_object_set_new(r, "snapshot_error", json_string(o->snapshot_err.msg));
    return r;
}

/* A job replaced by a newer one for its key, before it ran. */
static json_t *superseded_json(const struct job *j, const char *by)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:n}", "correlation_id", j->id,
                     "model_id", j->model, "category", j->category, "status", "superseded",
                     "superseded_by", by, "context_tokens", 0, "load_time_ms", 0, "prefill_time_ms",
                     0, "error");
}

/* Lock held: a remote precharge of j made its context ready there. */
static void remember_remote(struct pc_precharger *pc, const struct job *j, int32_t tokens)
{
    char *content = strdup(j->content);
    if (content == NULL)
        return;
    /* The same context again replaces its entry; a new one the oldest when they are many. */
    size_t at = pc->n_remote;
    for (size_t i = 0; i < pc->n_remote; i++) {
        if (strcmp(pc->remote[i].pub.model, j->model) == 0 &&
            strcmp(pc->remote[i].content, j->content) == 0) {
            at = i;
            break;
        }
    }
    if (at == KEEP_REMOTE)
        at = KEEP_REMOTE - 1; /* full: the oldest goes */
    else if (at == pc->n_remote)
        pc->n_remote++;           /* a fresh entry at the end, moved to the front below */
    free(pc->remote[at].content); /* NULL in a fresh entry: unused ones are zeroed */
    memmove(&pc->remote[1], &pc->remote[0], at * sizeof(pc->remote[0]));
    struct remote_ctx *r = &pc->remote[0];
    memset(r, 0, sizeof(*r));
    snprintf(r->pub.model, sizeof(r->pub.model), "%s", j->model);
    snprintf(r->pub.category, sizeof(r->pub.category), "%s", j->category);
    r->pub.context_tokens = tokens;
    r->pub.since_wall_ns = pc_clock_wall_ns();
    r->content = content;
}

size_t pc_precharge_remote_list(struct pc_precharger *pc, struct pc_precharge_remote_ctx **out)
{
    pthread_mutex_lock(&pc->lock);
    size_t n = pc->n_remote;
    *out = calloc(n ? n : 1, sizeof(**out));
    for (size_t i = 0; *out && i < n; i++)
        (*out)[i] = pc->remote[i].pub;
    pthread_mutex_unlock(&pc->lock);
    return *out ? n : 0;
}

void pc_precharge_remote_forget(struct pc_precharger *pc, const char *model)
{
    pthread_mutex_lock(&pc->lock);
    size_t k = 0;
    for (size_t i = 0; i < pc->n_remote; i++) {
        if (strcmp(pc->remote[i].pub.model, model) == 0)
            free(pc->remote[i].content);
        else
            pc->remote[k++] = pc->remote[i];
    }
    memset(&pc->remote[k], 0, (pc->n_remote - k) * sizeof(pc->remote[0]));
    pc->n_remote = k;
    pthread_mutex_unlock(&pc->lock);
}

/* PrechargeCompleted for the job's id and for each caller's id that joined it. */
static void publish_completed(struct pc_precharger *pc, const struct job *j, const json_t *r)
{
    pc_events_publish(pc->cfg.events, PC_EV_PRECHARGE_COMPLETED, j->model, j->id,
                      json_deep_copy(r));
    for (size_t i = 0; i < j->n_aliases; i++) {
        json_t *copy = json_deep_copy(r);
        json_object_set_new(copy, "merged_into", json_string(j->id));
        pc_events_publish(pc->cfg.events, PC_EV_PRECHARGE_COMPLETED, j->model, j->aliases[i], copy);
    }
}

/* ---- the queue --------------------------------------------------------------------------- */

/* Lock held: the job to run now, or NULL; *wake_ns gets the next debounce deadline. */
static struct job *next_job(struct pc_precharger *pc, int64_t now, int64_t *wake_ns)
{
    struct job *best = NULL;
    *wake_ns = INT64_MAX;
    for (struct job *j = pc->jobs; j; j = j->next) {
        if (j->state != JOB_QUEUED)
            continue;
        if (j->not_before_ns > now) {
            if (j->not_before_ns < *wake_ns)
                *wake_ns = j->not_before_ns;
            continue;
        }
        if (best == NULL || j->priority < best->priority ||
            (j->priority == best->priority && j->order < best->order))
            best = j;
    }
    return best;
}

/* Lock held: forget the oldest finished jobs beyond KEEP_FINISHED. */
static void trim(struct pc_precharger *pc)
{
    size_t done = 0;
    for (struct job **pp = &pc->jobs; *pp;) {
        struct job *j = *pp;
        if (j->state == JOB_DONE && ++done > KEEP_FINISHED) {
            *pp = j->next;
            job_free(j);
            continue;
        }
        pp = &j->next;
    }
}

static void *worker_main(void *arg)
{
    struct pc_precharger *pc = arg;
    pthread_mutex_lock(&pc->lock);
    while (!pc->stopping) {
        int64_t wake;
        struct job *j = next_job(pc, pc_clock_mono_ns(), &wake);
        if (j == NULL) {
            if (wake == INT64_MAX) {
                pthread_cond_wait(&pc->changed, &pc->lock);
            } else {
                struct timespec ts = {.tv_sec = wake / 1000000000, .tv_nsec = wake % 1000000000};
                pthread_cond_timedwait(&pc->changed, &pc->lock, &ts);
            }
            continue;
        }
        j->state = JOB_RUNNING;
        pthread_mutex_unlock(&pc->lock);

        /* The job's fields but state, result and aliases do not change once it runs. */
        struct outcome o = {0};
        run_job(pc, j, &o);
        json_t *r = result_json(j, &o);
        pc_log_info("precharge", "%s %s: %s, %d tokens, load %lld ms, prefill %lld ms%s%s", j->id,
                    j->model, o.status, o.context_tokens, (long long)(o.load_ns / 1000000),
                    (long long)(o.prefill_ns / 1000000),
                    strcmp(o.status, "failed") == 0 ? ": " : "",
                    strcmp(o.status, "failed") == 0 ? o.err.msg : "");

        /* Callers join (alias) only jobs that have not finished, under the lock: each one that
         * did gets its event. */
        pthread_mutex_lock(&pc->lock);
        if (strcmp(j->provider, "local") != 0 && strcmp(o.status, "ready") == 0)
            remember_remote(pc, j, o.context_tokens);
        publish_completed(pc, j, r);
        j->result = r;
        j->fail = strcmp(o.status, "failed") == 0 ? o.err.code : PC_OK;
        j->state = JOB_DONE;
        trim(pc);
        pthread_cond_broadcast(&pc->changed);
    }
    pthread_mutex_unlock(&pc->lock);
    return NULL;
}

enum pc_err pc_precharger_start(const struct pc_precharger_config *cfg, struct pc_precharger **out,
                                struct pc_error *err)
{
    *out = NULL;
    struct pc_precharger *pc = calloc(1, sizeof(*pc));
    if (pc == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "precharge: out of memory");
    pc->cfg = *cfg;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&pc->lock, NULL);
    pthread_cond_init(&pc->changed, &ca);
    pthread_condattr_destroy(&ca);
    int want = cfg->workers < 1 ? 1 : cfg->workers > MAX_WORKERS ? MAX_WORKERS : cfg->workers;
    for (int i = 0; i < want; i++) {
        if (pthread_create(&pc->workers[i], NULL, worker_main, pc) != 0)
            break;
        pc->n_workers++;
    }
    if (pc->n_workers == 0) {
        pc_precharger_stop(pc);
        return pc_error_set(err, PC_ERR_NOMEM, "precharge: cannot start a worker thread");
    }
    *out = pc;
    return PC_OK;
}

void pc_precharger_stop(struct pc_precharger *pc)
{
    if (pc == NULL)
        return;
    pthread_mutex_lock(&pc->lock);
    pc->stopping = true;
    pthread_cond_broadcast(&pc->changed);
    pthread_mutex_unlock(&pc->lock);
    for (int i = 0; i < pc->n_workers; i++)
        pthread_join(pc->workers[i], NULL);
    for (struct job *j = pc->jobs, *next; j; j = next) {
        next = j->next;
        job_free(j);
    }
    for (size_t i = 0; i < pc->n_remote; i++)
        free(pc->remote[i].content);
    pthread_cond_destroy(&pc->changed);
    pthread_mutex_destroy(&pc->lock);
    free(pc);
}

/* Lock held: the job that id names (its own or a caller's that joined it), or NULL. */
static struct job *find_job(struct pc_precharger *pc, const char *id)
{
    for (struct job *j = pc->jobs; j; j = j->next) {
        if (strcmp(j->id, id) == 0)
            return j;
        for (size_t i = 0; i < j->n_aliases; i++)
            if (strcmp(j->aliases[i], id) == 0)
                return j;
    }
    return NULL;
}

/* Lock held: unlink j from the list (the caller frees it or keeps it). */
static void unlink_job(struct pc_precharger *pc, struct job *j)
{
    for (struct job **pp = &pc->jobs; *pp; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            return;
        }
    }
}

/* Lock held: give id back when a finished job holds it, so that a caller may reuse its ids.
 * PC_ERR_CONFLICT when a queued or running job holds it. */
static enum pc_err claim_id(struct pc_precharger *pc, const char *id, struct pc_error *err)
{
    struct job *j = find_job(pc, id);
    if (j == NULL)
        return PC_OK;
    if (j->state != JOB_DONE)
        return pc_error_set(err, PC_ERR_CONFLICT, "correlation_id \"%s\" is a precharge that is %s",
                            id, j->state == JOB_QUEUED ? "queued" : "running");
    if (strcmp(j->id, id) == 0) {
        unlink_job(pc, j);
        job_free(j);
        return PC_OK;
    }
    for (size_t i = 0; i < j->n_aliases; i++) {
        if (strcmp(j->aliases[i], id) == 0) {
            memmove(j->aliases[i], j->aliases[i + 1],
                    (j->n_aliases - i - 1) * sizeof(j->aliases[0]));
            j->n_aliases--;
            break;
        }
    }
    return PC_OK;
}

/* A caller's correlation id: it travels on buses and in URLs, so it is short and plain. */
static enum pc_err check_id(const char *id, struct pc_error *err)
{
    size_t len = strlen(id);
    if (len == 0 || len >= PC_PRECHARGE_ID_MAX)
        return pc_error_set(err, PC_ERR_INVALID,
                            "field \"correlation_id\" must be 1 to %d characters long, not %zu",
                            PC_PRECHARGE_ID_MAX - 1, len);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != ':' && c != '-')
            return pc_error_set(err, PC_ERR_INVALID,
                                "field \"correlation_id\" may hold only letters, digits and . _ : "
                                "- (character %zu is not one)",
                                i + 1);
    }
    return PC_OK;
}

static struct job *new_job(const struct pc_precharge_req *req, const char *category,
                           const char *provider, const char *content)
{
    struct job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    if (req->correlation_id != NULL)
        snprintf(j->id, sizeof(j->id), "%s", req->correlation_id);
    else
        pc_uuid(j->id);
    snprintf(j->model, sizeof(j->model), "%s", req->model);
    snprintf(j->category, sizeof(j->category), "%s", category);
    snprintf(j->provider, sizeof(j->provider), "%s", provider);
    j->priority = req->priority;
    j->think = req->think;
    j->keep_alive_ns = req->set_keep_alive ? req->keep_alive_ns : -1;
    j->content = strdup(content);
    j->key = req->key ? strdup(req->key) : NULL;
    j->messages = req->messages ? json_deep_copy(req->messages) : NULL;
    j->tools = req->messages && req->tools ? json_deep_copy(req->tools) : NULL;
    j->prompt = req->prompt ? strdup(req->prompt) : NULL;
    if (j->content == NULL || (req->key && !j->key) || (req->messages && !j->messages) ||
        (req->prompt && !j->prompt) || (req->messages && req->tools && !j->tools)) {
        job_free(j);
        return NULL;
    }
    return j;
}

/* Where req runs: "local" for a model in the store (asked as "local" or "mcl"), else the remote
 * provider's category for one of its models; a category the request names must be the one that
 * has the model. *category gets the category to report, *provider who runs it. */
static enum pc_err resolve_category(struct pc_precharger *pc, const struct pc_precharge_req *req,
                                    const char **category, const char **provider,
                                    struct pc_error *err)
{
    const struct pc_precharge_provider *r = pc->cfg.remote;
    const char *want = req->category;
    bool want_remote = r != NULL && want != NULL && strcmp(want, r->category) == 0;
    bool want_local = want != NULL && (strcmp(want, "local") == 0 || strcmp(want, "mcl") == 0);
    if (want != NULL && !want_local && !want_remote)
        return pc_error_set(err, PC_ERR_INVALID,
                            "category \"%s\" is not served here: use \"local\" or \"mcl\" (this "
                            "machine's models)%s%s%s",
                            want, r ? " or \"" : "", r ? r->category : "", r ? "\"" : "");
    if (want_remote) {
        if (r->owns(r->user, req->model)) {
            *category = *provider = r->category;
            return PC_OK;
        }
        return pc_error_set(err, PC_ERR_NOT_FOUND,
                            "model \"%s\" is not the %s provider's (not on its server, or in "
                            "the local store)",
                            req->model, r->category);
    }
    char path[PATH_MAX];
    struct pc_error store_err = {0};
    enum pc_err rc = pc_store_path(pc->cfg.models_dir, req->model, path, sizeof(path), &store_err);
    *provider = "local";
    *category = want != NULL ? want : "local";
    if (rc == PC_ERR_NOT_FOUND && want == NULL && r != NULL && r->owns(r->user, req->model)) {
        *category = *provider = r->category;
        return PC_OK;
    }
    if (rc != PC_OK && err != NULL)
        *err = store_err;
    return rc;
}

/* Lock held: the queued or running job doing req's work (model, category, context), and the
 * queued one with req's key that req replaces. */
static void find_peers(struct pc_precharger *pc, const char *model, const char *category,
                       const char *content, const char *key, struct job **same /* OUT */,
                       struct job **replaced /* OUT */)
{
    *same = *replaced = NULL;
    for (struct job *j = pc->jobs; j; j = j->next) {
        if (j->state == JOB_DONE || strcmp(j->model, model) != 0 ||
            strcmp(j->category, category) != 0)
            continue;
        if (strcmp(j->content, content) == 0)
            *same = j;
        else if (key != NULL && j->key != NULL && j->state == JOB_QUEUED &&
                 strcmp(j->key, key) == 0)
            *replaced = j;
    }
}

/* Lock held: a caller joins job j (the same work) under an id of its own. */
static enum pc_err add_alias(struct job *j, const char *id, struct pc_error *err)
{
    char(*a)[PC_PRECHARGE_ID_MAX] = realloc(j->aliases, (j->n_aliases + 1) * sizeof(*a));
    if (a == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    j->aliases = a;
    snprintf(a[j->n_aliases++], PC_PRECHARGE_ID_MAX, "%s", id);
    return PC_OK;
}

static const char *const prio_names[] = {"user", "high", "normal", "low"};

enum pc_err pc_precharge_submit(struct pc_precharger *pc, const struct pc_precharge_req *req,
                                char out[PC_PRECHARGE_ID_MAX], struct pc_error *err)
{
    const char *category = NULL, *provider = NULL;
    enum pc_err rc = PC_OK;
    if (req->correlation_id != NULL && (rc = check_id(req->correlation_id, err)) != PC_OK)
        return rc;
    if ((rc = resolve_category(pc, req, &category, &provider, err)) != PC_OK)
        return rc;
    /* The remote provider prefills through its own server's chat with its own keep-alive. */
    if (strcmp(provider, "local") != 0 && (req->set_keep_alive || req->think != PC_THINK_DEFAULT))
        return pc_error_set(err, PC_ERR_INVALID,
                            "field \"%s\" is not passed on to the %s provider's precharge",
                            req->set_keep_alive ? "keep_alive" : "think", provider);
    /* Messages with their tools and thinking switch, when there are some: two precharges merge
     * when all are the same. */
    json_t *both = req->messages && (req->tools || req->think != PC_THINK_DEFAULT)
                       ? json_pack("[O, O, i]", req->messages,
                                   req->tools ? req->tools : json_null(), (int)req->think)
                       : NULL;
    char *content = req->messages
                        ? json_dumps(both ? both : req->messages, JSON_COMPACT | JSON_SORT_KEYS)
                        : strdup(req->prompt ? req->prompt : "");
    json_decref(both);
    if (content == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "out of memory");

    /* The ids that the event names, copied under the lock: the jobs may go once it is let go. */
    char merged_into[PC_PRECHARGE_ID_MAX] = "", supersedes[PC_PRECHARGE_ID_MAX] = "";
    pthread_mutex_lock(&pc->lock);
    struct job *same = NULL, *replaced = NULL, *j = NULL;
    if (req->correlation_id != NULL && (rc = claim_id(pc, req->correlation_id, err)) != PC_OK)
        goto out;
    find_peers(pc, req->model, category, content, req->key, &same, &replaced);
    if (same != NULL) {
        /* Merged: one prefill serves both; the higher priority wins. */
        if (req->correlation_id != NULL && (rc = add_alias(same, req->correlation_id, err)))
            goto out;
        if (req->priority < same->priority)
            same->priority = req->priority;
        snprintf(out, PC_PRECHARGE_ID_MAX, "%s",
                 req->correlation_id ? req->correlation_id : same->id);
        snprintf(merged_into, sizeof(merged_into), "%s", same->id);
        goto out;
    }
    if ((j = new_job(req, category, provider, content)) == NULL) {
        rc = pc_error_set(err, PC_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (replaced != NULL) {
        /* A newer context for the same key: the queued one ends, superseded by this one. */
        if (replaced->priority < j->priority)
            j->priority = replaced->priority;
        replaced->result = superseded_json(replaced, j->id);
        publish_completed(pc, replaced, replaced->result);
        replaced->state = JOB_DONE;
        snprintf(supersedes, sizeof(supersedes), "%s", replaced->id);
        trim(pc);
    }
    j->order = pc->next_order++;
    /* Only a keyed job can be replaced, so only a keyed job waits for a replacement. */
    j->not_before_ns = pc_clock_mono_ns() + (j->key != NULL ? pc->cfg.debounce_ns : 0);
    j->next = pc->jobs;
    pc->jobs = j;
    snprintf(out, PC_PRECHARGE_ID_MAX, "%s", j->id);
    pthread_cond_broadcast(&pc->changed);
out:
    pthread_mutex_unlock(&pc->lock);
    free(content);
    if (rc != PC_OK || (j == NULL && req->correlation_id == NULL))
        return rc; /* joined under the job's own id: its PrechargeRequested went out */
    json_t *data =
        json_pack("{s:s, s:s, s:O*, s:s*}", "category", category, "priority",
                  prio_names[req->priority], "context", req->messages, "prompt", req->prompt);
    if (merged_into[0] != '\0')
        json_object_set_new(data, "merged_into", json_string(merged_into));
    if (supersedes[0] != '\0')
        json_object_set_new(data, "supersedes", json_string(supersedes));
    pc_events_publish(pc->cfg.events, PC_EV_PRECHARGE_REQUESTED, req->model, out, data);
    return PC_OK;
}

static json_t *status_json(const struct job *j, const char *id)
{
    json_t *r = j->state == JOB_DONE
                    ? json_deep_copy(j->result)
                    : json_pack("{s:s, s:s, s:s, s:s}", "correlation_id", j->id, "model_id",
                                j->model, "category", j->category, "status",
                                j->state == JOB_QUEUED ? "queued" : "running");
    if (r != NULL && strcmp(id, j->id) != 0) {
        json_object_set_new(r, "correlation_id", json_string(id));
        json_object_set_new(r, "merged_into", json_string(j->id));
    }
    return r;
}

void pc_precharge_counts(struct pc_precharger *pc, size_t *queued, size_t *running)
{
    *queued = *running = 0;
    pthread_mutex_lock(&pc->lock);
    for (const struct job *j = pc->jobs; j; j = j->next) {
        if (j->state == JOB_QUEUED)
            (*queued)++;
        else if (j->state == JOB_RUNNING)
            (*running)++;
    }
    pthread_mutex_unlock(&pc->lock);
}

enum pc_err pc_precharge_failure(struct pc_precharger *pc, const char *id)
{
    pthread_mutex_lock(&pc->lock);
    struct job *j = find_job(pc, id);
    enum pc_err rc = j != NULL && j->state == JOB_DONE ? j->fail : PC_OK;
    pthread_mutex_unlock(&pc->lock);
    return rc;
}

json_t *pc_precharge_get(struct pc_precharger *pc, const char *id, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&pc->lock);
    struct job *j = find_job(pc, id);
    while (j != NULL && j->state != JOB_DONE && timeout_ms > 0 && !pc->stopping) {
        if (pthread_cond_timedwait(&pc->changed, &pc->lock, &deadline) != 0)
            break;
        j = find_job(pc, id); /* trimmed, or its id given back, meanwhile */
    }
    json_t *r = j ? status_json(j, id) : NULL;
    pthread_mutex_unlock(&pc->lock);
    return r;
}
