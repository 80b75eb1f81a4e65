/* pool.c - resident models with reference counts, shared loads, admission under a count limit
 * and a memory budget, eviction by policy, pinning, stats and a keep-alive timer thread. */
#include "pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../base/clock.h"
#include "../base/duration.h"
#include "../base/log.h"

#define MIB (1024.0 * 1024.0)
#define GIB (1024ull * 1024 * 1024)

enum entry_state { ENTRY_LOADING, ENTRY_READY, ENTRY_FAILED };

struct pc_pool_entry {
    struct pc_pool_entry *next;
    char *name;
    char *path;
    struct pc_model *model; /* set once READY; freed only after the entry leaves the list */
    enum entry_state state;
    struct pc_error load_err; /* when FAILED */
    int refs;                 /* users, plus the waiters of a load */
    bool admitted;            /* counted in the pool's n_admitted and used_bytes */
    bool doomed;              /* unload when refs reaches 0 */
    bool unload_asked;        /* doomed by pc_pool_unload rather than by a keep-alive of 0 */
    bool pinned;
    const char *gone;       /* why it left the pool: "evicted", "expired", "unloaded", "stopped" */
    int64_t keep_alive_ns;  /* last requested */
    int64_t expires_ns;     /* monotonic; INT64_MAX: never */
    uint64_t last_used;     /* the pool's tick when its last use began; 0: never used */
    uint64_t admitted_seq;  /* the pool's tick at admission, for FIFO */
    uint64_t uses;          /* acquires that counted as a use */
    uint64_t model_bytes;   /* the estimate while loading, then pc_model_memory */
    uint64_t charged_bytes; /* pc_pool_charge */
    int64_t loaded_wall_ns;
};

struct pc_pool {
    struct pc_pool_config cfg;
    /* lock guards entries, n_admitted, used_bytes, tick, the counters and stopping, and every
     * entry's fields but name, path and model (fixed once READY). No model is estimated,
     * loaded or freed while it is held. */
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a load finished, a reference was released, a model left */
    pthread_cond_t timer;   /* wakes the reaper when an expiry moves earlier */
    struct pc_pool_entry *entries;
    size_t n_admitted;   /* entries that hold room: loading after admission, or ready */
    uint64_t used_bytes; /* their model_bytes + charged_bytes */
    uint64_t tick;       /* orders uses and admissions */
    uint64_t hits, misses, evictions, preloads, expirations, rejections;
    bool stopping;
    pthread_t reaper;
};

bool pc_pool_policy_parse(const char *s, enum pc_pool_policy *out)
{
    static const char *const names[] = {"lru", "lfu", "fifo"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = (enum pc_pool_policy)i;
            return true;
        }
    }
    return false;
}

const char *pc_pool_policy_name(enum pc_pool_policy policy)
{
    return policy == PC_POOL_LFU ? "lfu" : policy == PC_POOL_FIFO ? "fifo" : "lru";
}

uint64_t pc_pool_default_budget(const struct pc_hw *hw, uint64_t *headroom)
{
    uint64_t keep = hw->ram_total / 10 > GIB ? hw->ram_total / 10 : GIB;
    if (keep > hw->ram_available / 2)
        keep = hw->ram_available / 2;
    uint64_t budget = hw->ram_available - keep;
    for (size_t i = 0; i < hw->n_gpus; i++)
        budget += hw->gpus[i].free;
    if (headroom)
        *headroom = keep;
    return budget;
}

struct pc_pool_acquire_params pc_pool_acquire_default_params(void)
{
    return (struct pc_pool_acquire_params){.keep_alive_ns = -1, .pin = -1};
}

static uint64_t entry_bytes(const struct pc_pool_entry *e)
{
    return e->model_bytes + e->charged_bytes;
}

static void entry_free(struct pc_pool *p, struct pc_pool_entry *e)
{
    if (e == NULL)
        return;
    if (e->model != NULL && p->cfg.on_unload != NULL)
        p->cfg.on_unload(p->cfg.on_unload_user, e->name, e->model, e->gone ? e->gone : "stopped");
    pc_model_free(e->model);
    free(e->name);
    free(e->path);
    free(e);
}

/* Lock held: take e out of the list and give back the room it held. */
static void unlink_entry(struct pc_pool *p, struct pc_pool_entry *e)
{
    for (struct pc_pool_entry **pp = &p->entries; *pp; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    }
    e->next = NULL;
    if (e->admitted) {
        p->n_admitted--;
        p->used_bytes -= entry_bytes(e);
        e->admitted = false;
    }
}

static struct pc_pool_entry *find(struct pc_pool *p, const char *name)
{
    for (struct pc_pool_entry *e = p->entries; e; e = e->next)
        if (strcmp(e->name, name) == 0 && e->state != ENTRY_FAILED)
            return e;
    return NULL;
}

static int64_t expiry_from(int64_t now, int64_t keep_alive_ns)
{
    if (keep_alive_ns == PC_DURATION_FOREVER || keep_alive_ns > INT64_MAX - now)
        return INT64_MAX;
    return now + keep_alive_ns;
}

static bool idle(const struct pc_pool_entry *e)
{
    return e->state == ENTRY_READY && e->refs == 0;
}

/* Unlink, under the lock, every idle entry whose time is up; the caller frees them unlocked. */
static struct pc_pool_entry *take_expired(struct pc_pool *p, int64_t now, int64_t *next_wake)
{
    struct pc_pool_entry *dead = NULL;
    *next_wake = INT64_MAX;
    for (struct pc_pool_entry *e = p->entries, *next; e; e = next) {
        next = e->next;
        if (!idle(e) || (e->pinned && !e->doomed))
            continue;
        if (e->doomed || e->expires_ns <= now) {
            e->gone = e->unload_asked ? "unloaded" : "expired";
            if (!e->unload_asked)
                p->expirations++;
            unlink_entry(p, e);
            e->next = dead;
            dead = e;
        } else if (e->expires_ns < *next_wake) {
            *next_wake = e->expires_ns;
        }
    }
    return dead;
}

static void free_list(struct pc_pool *p, struct pc_pool_entry *dead, const char *why)
{
    while (dead) {
        struct pc_pool_entry *next = dead->next;
        pc_log_info("pool", "unloading %s (%s)", dead->name, why ? why : dead->gone);
        entry_free(p, dead);
        dead = next;
    }
}

static void *reaper_main(void *arg)
{
    struct pc_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stopping) {
        int64_t next_wake;
        struct pc_pool_entry *dead = take_expired(p, pc_clock_mono_ns(), &next_wake);
        if (dead != NULL) {
            pthread_mutex_unlock(&p->lock);
            free_list(p, dead, NULL);
            pthread_mutex_lock(&p->lock);
            pthread_cond_broadcast(&p->changed);
            continue;
        }
        if (next_wake == INT64_MAX) {
            pthread_cond_wait(&p->timer, &p->lock);
        } else {
            struct timespec ts = {.tv_sec = next_wake / 1000000000,
                                  .tv_nsec = next_wake % 1000000000};
            pthread_cond_timedwait(&p->timer, &p->lock, &ts);
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

struct pc_pool *pc_pool_new(const struct pc_pool_config *cfg)
{
    struct pc_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->cfg = *cfg;
    if (p->cfg.max_models == 0)
        p->cfg.max_models = 1;

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->changed, NULL);
    pthread_cond_init(&p->timer, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&p->reaper, NULL, reaper_main, p) != 0) {
        pthread_cond_destroy(&p->timer);
        pthread_cond_destroy(&p->changed);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    return p;
}

void pc_pool_free(struct pc_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_signal(&p->timer);
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->reaper, NULL);
    for (struct pc_pool_entry *e = p->entries, *next; e; e = next) {
        next = e->next;
        entry_free(p, e);
    }
    pthread_cond_destroy(&p->timer);
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* ---- admission and eviction --------------------------------------------------------------- */

/* Does a come before b as the policy's victim? An idle model that is to be unloaded anyway goes
 * first whatever the policy. */
static bool goes_first(enum pc_pool_policy policy, const struct pc_pool_entry *a,
                       const struct pc_pool_entry *b)
{
    if (a->doomed != b->doomed)
        return a->doomed;
    switch (policy) {
    case PC_POOL_LFU:
        if (a->uses != b->uses)
            return a->uses < b->uses;
        break;
    case PC_POOL_FIFO:
        return a->admitted_seq < b->admitted_seq;
    case PC_POOL_LRU:
        break;
    }
    if (a->last_used != b->last_used)
        return a->last_used < b->last_used;
    return a->admitted_seq < b->admitted_seq;
}

static bool evictable(const struct pc_pool_entry *e)
{
    return e->admitted && idle(e) && !e->pinned;
}

/* The policy's next victim among the idle, unpinned models; NULL when there is none. */
static struct pc_pool_entry *pick_victim(struct pc_pool *p)
{
    struct pc_pool_entry *best = NULL;
    for (struct pc_pool_entry *e = p->entries; e; e = e->next)
        if (evictable(e) && (best == NULL || goes_first(p->cfg.policy, e, best)))
            best = e;
    return best;
}

/* Lock held: unload victim to make room. Unlocks while the model is freed. */
static void evict(struct pc_pool *p, struct pc_pool_entry *victim, const char *for_name)
{
    p->evictions++;
    victim->gone = "evicted";
    unlink_entry(p, victim);
    pthread_mutex_unlock(&p->lock);
    char why[320];
    snprintf(why, sizeof(why), "evicted (%s) to make room for %s",
             pc_pool_policy_name(p->cfg.policy), for_name);
    free_list(p, victim, why);
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->changed);
}

/* What the admitted models hold, split by what could give it back. */
struct tally {
    size_t evictable_n, pinned_n;
    uint64_t evictable_bytes, pinned_bytes;
};

static struct tally count_room(struct pc_pool *p)
{
    struct tally t = {0};
    for (struct pc_pool_entry *e = p->entries; e; e = e->next) {
        if (evictable(e)) {
            t.evictable_n++;
            t.evictable_bytes += entry_bytes(e);
        } else if (e->admitted && e->pinned) {
            t.pinned_n++;
            t.pinned_bytes += entry_bytes(e);
        }
    }
    return t;
}

static enum pc_err refuse(struct pc_pool *p, const struct pc_pool_entry *e, uint64_t need,
                          const struct tally *t, struct pc_error *err)
{
    p->rejections++;
    if (t->pinned_n >= p->cfg.max_models)
        return pc_error_set(err, PC_ERR_NO_MEMORY,
                            "insufficient memory: no room for \"%s\": %zu pinned models fill the "
                            "limit of %zu resident models",
                            e->name, t->pinned_n, p->cfg.max_models);
    uint64_t budget = p->cfg.budget_bytes;
    uint64_t free_bytes = budget > p->used_bytes ? budget - p->used_bytes : 0;
    return pc_error_set(err, PC_ERR_NO_MEMORY,
                        "insufficient memory: need %.1f MiB, free %.1f MiB, pinned %.1f MiB "
                        "(budget %.1f MiB) to load \"%s\"",
                        (double)need / MIB, (double)free_bytes / MIB, (double)t->pinned_bytes / MIB,
                        (double)budget / MIB, e->name);
}

/* Lock held: find room for e, which needs need bytes, under both limits. Evicts idle models by
 * policy while that is enough; waits while models in use hold the room; fails at once when
 * pinned models leave no room. On success e is admitted: its bytes are reserved. */
static enum pc_err admit(struct pc_pool *p, struct pc_pool_entry *e, uint64_t need, bool no_wait,
                         struct pc_error *err)
{
    uint64_t budget = p->cfg.budget_bytes;
    for (;;) {
        if (p->stopping)
            return pc_error_set(err, PC_ERR_UNAVAILABLE, "loading %s: the pool is stopping",
                                e->name);
        bool count_ok = p->n_admitted < p->cfg.max_models;
        bool bytes_ok = budget == 0 || p->used_bytes + need <= budget;
        if (count_ok && bytes_ok)
            break;
        struct tally t = count_room(p);
        bool count_can = p->n_admitted - t.evictable_n < p->cfg.max_models;
        bool bytes_can = budget == 0 || p->used_bytes - t.evictable_bytes + need <= budget;
        if (count_can && bytes_can) {
            evict(p, pick_victim(p), e->name);
            continue;
        }
        if (t.pinned_n >= p->cfg.max_models || (budget != 0 && t.pinned_bytes + need > budget))
            return refuse(p, e, need, &t, err);
        if (no_wait)
            return pc_error_set(err, PC_ERR_BUSY,
                                "no room for \"%s\" now: the models in use hold it", e->name);
        pc_log_debug("pool", "%s waits for a model in use to be released", e->name);
        pthread_cond_wait(&p->changed, &p->lock);
    }
    e->admitted = true;
    e->model_bytes = need;
    e->admitted_seq = ++p->tick;
    p->n_admitted++;
    p->used_bytes += need;
    return PC_OK;
}

/* Lock held: the real size of a model can exceed its estimate; evict idle models until the
 * pool is back under its budget, or say why it cannot be. */
static void trim_to_budget(struct pc_pool *p, const char *for_name)
{
    uint64_t budget = p->cfg.budget_bytes;
    while (budget != 0 && p->used_bytes > budget) {
        struct pc_pool_entry *victim = pick_victim(p);
        if (victim == NULL) {
            pc_log_warn("pool", "over budget: %.1f of %.1f MiB used, nothing idle to evict",
                        (double)p->used_bytes / MIB, (double)budget / MIB);
            return;
        }
        evict(p, victim, for_name);
    }
}

/* Unlocked: what loading e will cost. A file that cannot load fails here, before anything is
 * evicted for it; an estimate that fails for another reason falls back on the file's size. */
static enum pc_err estimate(struct pc_pool *p, const struct pc_pool_entry *e, uint64_t *need,
                            struct pc_error *err)
{
    struct pc_estimate est;
    struct pc_error eerr = {0};
    enum pc_err rc = pc_model_estimate(e->path, &p->cfg.model_params, &est, &eerr);
    if (rc == PC_OK) {
        *need = est.host_total + est.device_total;
        return PC_OK;
    }
    struct stat st;
    if (rc == PC_ERR_NOT_FOUND || rc == PC_ERR_MODEL_FORMAT || rc == PC_ERR_IO ||
        stat(e->path, &st) != 0) {
        if (err)
            *err = eerr;
        return rc;
    }
    pc_log_warn("pool", "estimating %s: %s; counting its file size", e->name, eerr.msg);
    *need = (uint64_t)st.st_size;
    return PC_OK;
}

/* Lock held, e new and LOADING with our reference: estimate, admit, load. Unlocks for the
 * estimate and the load; returns with the lock held. */
static enum pc_err admit_and_load(struct pc_pool *p, struct pc_pool_entry *e, bool no_wait,
                                  struct pc_error *err)
{
    uint64_t need = 0;
    pthread_mutex_unlock(&p->lock);
    enum pc_err rc = estimate(p, e, &need, err);
    pthread_mutex_lock(&p->lock);
    if (rc == PC_OK)
        rc = admit(p, e, need, no_wait, err);
    if (rc != PC_OK)
        return rc;
    pthread_mutex_unlock(&p->lock);

    struct pc_model *m = NULL;
    pc_log_info("pool", "loading %s from %s (estimate %.1f MiB)", e->name, e->path,
                (double)need / MIB);
    rc = pc_model_load(e->path, &p->cfg.model_params, &m, err);
    /* Before anyone can see the model (it is not READY yet), and without the lock: what follows
     * every load, whoever asked for it, happens here once. */
    if (rc == PC_OK && p->cfg.on_load != NULL)
        p->cfg.on_load(p->cfg.on_load_user, e->name, m);

    pthread_mutex_lock(&p->lock);
    if (rc != PC_OK)
        return rc;
    e->model = m;
    e->state = ENTRY_READY;
    e->loaded_wall_ns = pc_clock_wall_ns();
    uint64_t real = pc_model_memory(m);
    p->used_bytes = p->used_bytes - e->model_bytes + real;
    e->model_bytes = real;
    const struct pc_model_info *in = pc_model_info(m);
    pc_log_info("pool",
                "loaded %s in %.0f ms (weights %.1f MiB, KV %.1f MiB, compute %.1f MiB; "
                "estimate %.1f MiB; pool %.1f MiB)",
                e->name, (double)in->load_ns / 1e6, (double)in->weights_bytes / MIB,
                (double)in->kv_bytes / MIB, (double)in->compute_bytes / MIB, (double)need / MIB,
                (double)p->used_bytes / MIB);
    trim_to_budget(p, e->name);
    return PC_OK;
}

/* ---- acquire and release ------------------------------------------------------------------ */

/* Drop one reference to a failed entry; the last one out frees it. Lock held. */
static void put_failed(struct pc_pool *p, struct pc_pool_entry *e)
{
    if (--e->refs == 0) {
        unlink_entry(p, e);
        entry_free(p, e); /* no model: nothing heavy is freed under the lock */
    }
}

static void set_pinned(struct pc_pool_entry *e, bool pinned)
{
    if (e->pinned && !pinned)
        e->expires_ns = expiry_from(pc_clock_mono_ns(), e->keep_alive_ns);
    e->pinned = pinned;
}

/* Lock held, e READY: what an acquire changes. A request's keep-alive replaces the last one,
 * as in Ollama; a pinned model is never doomed by it. */
static void apply(struct pc_pool *p, struct pc_pool_entry *e,
                  const struct pc_pool_acquire_params *pr)
{
    if (pr->keep_alive_ns != -1)
        e->keep_alive_ns = pr->keep_alive_ns;
    if (pr->pin >= 0)
        set_pinned(e, pr->pin == 1);
    e->doomed = !e->pinned && e->keep_alive_ns == 0;
    if (!e->doomed)
        e->unload_asked = false;
    if (!pr->preload) {
        e->uses++;
        e->last_used = ++p->tick;
    }
    pthread_cond_signal(&p->timer);
}

/* Lock held: take a reference to an entry that exists, waiting for its load. Unlocks. */
static enum pc_err join(struct pc_pool *p, struct pc_pool_entry *e,
                        const struct pc_pool_acquire_params *pr, struct pc_pool_entry **out,
                        struct pc_error *err)
{
    e->refs++;
    if (!pr->preload) {
        if (e->state == ENTRY_LOADING)
            p->misses++;
        else
            p->hits++;
    }
    while (e->state == ENTRY_LOADING)
        pthread_cond_wait(&p->changed, &p->lock);
    if (e->state == ENTRY_FAILED) {
        enum pc_err rc = e->load_err.code;
        if (err)
            *err = e->load_err;
        put_failed(p, e);
        pthread_mutex_unlock(&p->lock);
        return rc;
    }
    apply(p, e, pr);
    pthread_mutex_unlock(&p->lock);
    *out = e;
    return PC_OK;
}

static struct pc_pool_entry *entry_new(struct pc_pool *p, const char *name, const char *path)
{
    struct pc_pool_entry *e = calloc(1, sizeof(*e));
    if (e == NULL || (e->name = strdup(name)) == NULL || (e->path = strdup(path)) == NULL) {
        entry_free(p, e);
        return NULL;
    }
    e->state = ENTRY_LOADING;
    e->refs = 1;
    e->keep_alive_ns = p->cfg.default_keep_alive_ns;
    return e;
}

enum pc_err pc_pool_acquire_with(struct pc_pool *p, const char *name, const char *path,
                                 const struct pc_pool_acquire_params *params,
                                 struct pc_pool_entry **out, bool *loaded, struct pc_error *err)
{
    struct pc_pool_acquire_params pr = params ? *params : pc_pool_acquire_default_params();
    *out = NULL;
    if (loaded)
        *loaded = false;

    pthread_mutex_lock(&p->lock);
    struct pc_pool_entry *e = find(p, name);
    if (e != NULL)
        return join(p, e, &pr, out, err);
    if (path == NULL) {
        pthread_mutex_unlock(&p->lock);
        return pc_error_set(err, PC_ERR_NOT_FOUND, "model \"%s\" is not loaded", name);
    }
    if ((e = entry_new(p, name, path)) == NULL) {
        pthread_mutex_unlock(&p->lock);
        return pc_error_set(err, PC_ERR_NOMEM, "loading %s: out of memory", name);
    }
    /* In the list while it loads, so that callers for the same model wait for this load. */
    e->next = p->entries;
    p->entries = e;
    if (pr.preload)
        p->preloads++;
    else
        p->misses++;

    enum pc_err rc = admit_and_load(p, e, pr.no_wait, err); /* returns with the lock held */
    if (rc != PC_OK) {
        if (pr.preload)
            p->preloads--; /* a preload counts when it loads */
        e->state = ENTRY_FAILED;
        e->load_err = err ? *err : (struct pc_error){.code = rc};
        if (rc != PC_ERR_NO_MEMORY && rc != PC_ERR_BUSY)
            pc_log_warn("pool", "loading %s failed: %s", name, err ? err->msg : pc_strerror(rc));
        pthread_cond_broadcast(&p->changed);
        put_failed(p, e);
        pthread_mutex_unlock(&p->lock);
        return rc;
    }
    apply(p, e, &pr);
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    if (loaded)
        *loaded = true;
    *out = e;
    return PC_OK;
}

enum pc_err pc_pool_acquire(struct pc_pool *p, const char *name, const char *path,
                            int64_t keep_alive_ns, struct pc_pool_entry **out, bool *loaded,
                            struct pc_error *err)
{
    struct pc_pool_acquire_params pr = pc_pool_acquire_default_params();
    pr.keep_alive_ns = keep_alive_ns;
    return pc_pool_acquire_with(p, name, path, &pr, out, loaded, err);
}

struct pc_model *pc_pool_entry_model(const struct pc_pool_entry *e)
{
    return e->model;
}

void pc_pool_release(struct pc_pool *p, struct pc_pool_entry *e)
{
    pthread_mutex_lock(&p->lock);
    e->expires_ns = expiry_from(pc_clock_mono_ns(), e->keep_alive_ns);
    e->refs--;
    pthread_cond_broadcast(&p->changed);
    pthread_cond_signal(&p->timer);
    pthread_mutex_unlock(&p->lock);
}

void pc_pool_release_look(struct pc_pool *p, struct pc_pool_entry *e)
{
    pthread_mutex_lock(&p->lock);
    e->refs--;
    pthread_cond_broadcast(&p->changed);
    pthread_cond_signal(&p->timer); /* an expiry that passed meanwhile is due now */
    pthread_mutex_unlock(&p->lock);
}

enum pc_err pc_pool_preload(struct pc_pool *p, const char *name, const char *path,
                            int64_t keep_alive_ns, int pin, bool *loaded, struct pc_error *err)
{
    struct pc_pool_acquire_params pr = pc_pool_acquire_default_params();
    pr.keep_alive_ns = keep_alive_ns;
    pr.preload = true;
    pr.pin = pin;
    struct pc_pool_entry *e = NULL;
    enum pc_err rc = pc_pool_acquire_with(p, name, path, &pr, &e, loaded, err);
    if (rc == PC_OK)
        pc_pool_release(p, e);
    return rc;
}

void pc_pool_charge(struct pc_pool *p, struct pc_pool_entry *e, int64_t delta_bytes)
{
    pthread_mutex_lock(&p->lock);
    uint64_t before = e->charged_bytes;
    uint64_t mag = delta_bytes < 0 ? (uint64_t)(-(delta_bytes + 1)) + 1 : (uint64_t)delta_bytes;
    e->charged_bytes = delta_bytes >= 0 ? before + mag : mag > before ? 0 : before - mag;
    if (e->admitted)
        p->used_bytes = p->used_bytes - before + e->charged_bytes;
    if (e->charged_bytes < before)
        pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
}

enum pc_err pc_pool_unload_ex(struct pc_pool *p, const char *name, int *in_use,
                              struct pc_error *err)
{
    if (in_use)
        *in_use = 0;
    pthread_mutex_lock(&p->lock);
    struct pc_pool_entry *e = find(p, name);
    if (e == NULL || e->state != ENTRY_READY || (e->doomed && e->refs == 0)) {
        pthread_mutex_unlock(&p->lock);
        return pc_error_set(err, PC_ERR_NOT_FOUND, "model \"%s\" is not loaded", name);
    }
    e->doomed = true;
    e->unload_asked = true;
    e->pinned = false;
    e->keep_alive_ns = 0;
    if (in_use)
        *in_use = e->refs;
    pthread_cond_signal(&p->timer);
    pthread_mutex_unlock(&p->lock);
    return PC_OK;
}

enum pc_err pc_pool_unload(struct pc_pool *p, const char *name, struct pc_error *err)
{
    return pc_pool_unload_ex(p, name, NULL, err);
}

enum pc_err pc_pool_pin(struct pc_pool *p, const char *name, bool pinned, struct pc_error *err)
{
    pthread_mutex_lock(&p->lock);
    struct pc_pool_entry *e = find(p, name);
    if (e == NULL || e->state != ENTRY_READY || (e->doomed && e->refs == 0)) {
        pthread_mutex_unlock(&p->lock);
        return pc_error_set(err, PC_ERR_NOT_FOUND, "model \"%s\" is not loaded", name);
    }
    set_pinned(e, pinned);
    if (pinned)
        e->doomed = false;
    pthread_cond_signal(&p->timer);
    pthread_cond_broadcast(&p->changed); /* an unpinned model may make room for a waiter */
    pthread_mutex_unlock(&p->lock);
    return PC_OK;
}

/* ---- reports ------------------------------------------------------------------------------ */

size_t pc_pool_list(struct pc_pool *p, struct pc_pool_status **out)
{
    pthread_mutex_lock(&p->lock);
    size_t n = 0, cap = 0;
    for (struct pc_pool_entry *e = p->entries; e; e = e->next)
        cap++;
    struct pc_pool_status *st = calloc(cap ? cap : 1, sizeof(*st));
    uint64_t *order = calloc(cap ? cap : 1, sizeof(*order));
    int64_t now_mono = pc_clock_mono_ns(), now_wall = pc_clock_wall_ns();
    for (struct pc_pool_entry *e = p->entries; st && order && e; e = e->next) {
        if (e->state != ENTRY_READY || (e->doomed && e->refs == 0))
            continue; /* an idle doomed model is as good as gone */
        struct pc_pool_status *s = &st[n];
        order[n++] = e->last_used;
        snprintf(s->name, sizeof(s->name), "%s", e->name);
        snprintf(s->path, sizeof(s->path), "%s", e->path);
        s->info = *pc_model_info(e->model);
        pc_model_loop_stats(e->model, &s->loop);
        s->refs = e->refs;
        s->memory_bytes = entry_bytes(e);
        s->charged_bytes = e->charged_bytes;
        s->pinned = e->pinned;
        s->uses = e->uses;
        s->loaded_wall_ns = e->loaded_wall_ns;
        /* In use, the clock starts when the request ends. */
        int64_t exp = e->pinned     ? INT64_MAX
                      : e->refs > 0 ? expiry_from(now_mono, e->keep_alive_ns)
                                    : e->expires_ns;
        s->expires_wall_ns = exp == INT64_MAX ? INT64_MAX : now_wall + (exp - now_mono);
    }
    pthread_mutex_unlock(&p->lock);
    /* Most recently used first: an insertion sort on the use ticks, n is small. */
    for (size_t i = 1; st && order && i < n; i++) {
        for (size_t j = i; j > 0 && order[j] > order[j - 1]; j--) {
            struct pc_pool_status t = st[j];
            st[j] = st[j - 1];
            st[j - 1] = t;
            uint64_t o = order[j];
            order[j] = order[j - 1];
            order[j - 1] = o;
        }
    }
    free(order);
    *out = st;
    return st ? n : 0;
}

void pc_pool_stats(struct pc_pool *p, struct pc_pool_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&p->lock);
    out->hits = p->hits;
    out->misses = p->misses;
    out->evictions = p->evictions;
    out->preloads = p->preloads;
    out->expirations = p->expirations;
    out->rejections = p->rejections;
    out->loaded = p->n_admitted;
    out->max_models = p->cfg.max_models;
    out->used_bytes = p->used_bytes;
    out->budget_bytes = p->cfg.budget_bytes;
    out->policy = p->cfg.policy;
    for (struct pc_pool_entry *e = p->entries; e; e = e->next) {
        if (!e->admitted)
            continue;
        out->charged_bytes += e->charged_bytes;
        if (e->pinned) {
            out->pinned++;
            out->pinned_bytes += entry_bytes(e);
        }
    }
    pthread_mutex_unlock(&p->lock);
    uint64_t uses = out->hits + out->misses;
    out->hit_rate = uses ? (double)out->hits / (double)uses : 0.0;
    out->pressure = out->budget_bytes != 0 && out->used_bytes * 5 > out->budget_bytes * 4;
}
