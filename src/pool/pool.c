/* pool.c - resident models with reference counts, shared loads, LRU room-making and a
 * keep-alive timer thread. */
#include "pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/clock.h"
#include "../base/duration.h"
#include "../base/log.h"

enum entry_state { ENTRY_LOADING, ENTRY_READY, ENTRY_FAILED };

struct pc_pool_entry {
    struct pc_pool_entry *next;
    char *name;
    char *path;
    struct pc_model *model; /* set once READY; freed only after the entry leaves the list */
    enum entry_state state;
    struct pc_error load_err; /* when FAILED */
    int refs;                 /* users, plus the waiters of a load */
    bool doomed;              /* unload when refs reaches 0 */
    int64_t keep_alive_ns;    /* last requested */
    int64_t expires_ns;       /* monotonic; INT64_MAX: never */
    int64_t last_used_ns;     /* monotonic */
};

struct pc_pool {
    struct pc_pool_config cfg;
    /* lock guards entries and every entry's state, refs, doomed and times. No model is loaded
     * or freed while it is held. */
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a load finished or a reference was released */
    pthread_cond_t timer;   /* wakes the reaper when an expiry moves earlier */
    struct pc_pool_entry *entries;
    size_t n_entries;
    bool stopping;
    pthread_t reaper;
};

static void entry_free(struct pc_pool_entry *e)
{
    if (e == NULL)
        return;
    pc_model_free(e->model);
    free(e->name);
    free(e->path);
    free(e);
}

static void unlink_entry(struct pc_pool *p, struct pc_pool_entry *e)
{
    for (struct pc_pool_entry **pp = &p->entries; *pp; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            p->n_entries--;
            return;
        }
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

/* Unlink, under the lock, every idle entry whose time is up; the caller frees them unlocked. */
static struct pc_pool_entry *take_expired(struct pc_pool *p, int64_t now, int64_t *next_wake)
{
    struct pc_pool_entry *dead = NULL;
    *next_wake = INT64_MAX;
    for (struct pc_pool_entry *e = p->entries, *next; e; e = next) {
        next = e->next;
        if (e->state != ENTRY_READY || e->refs > 0)
            continue;
        if (e->doomed || e->expires_ns <= now) {
            unlink_entry(p, e);
            e->next = dead;
            dead = e;
        } else if (e->expires_ns < *next_wake) {
            *next_wake = e->expires_ns;
        }
    }
    return dead;
}

static void free_list(struct pc_pool_entry *dead, const char *why)
{
    while (dead) {
        struct pc_pool_entry *next = dead->next;
        pc_log_info("pool", "unloading %s (%s)", dead->name, why);
        entry_free(dead);
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
            free_list(dead, "keep-alive expired");
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
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->reaper, NULL);
    for (struct pc_pool_entry *e = p->entries, *next; e; e = next) {
        next = e->next;
        entry_free(e);
    }
    pthread_cond_destroy(&p->timer);
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* The least recently used idle model, or NULL when every resident model is busy. */
static struct pc_pool_entry *lru_idle(struct pc_pool *p)
{
    struct pc_pool_entry *best = NULL;
    for (struct pc_pool_entry *e = p->entries; e; e = e->next)
        if (e->state == ENTRY_READY && e->refs == 0 &&
            (best == NULL || e->last_used_ns < best->last_used_ns))
            best = e;
    return best;
}

/* With the lock held: make room for one more model. May unlock while it frees or waits. */
static void make_room(struct pc_pool *p)
{
    while (p->n_entries >= p->cfg.max_models) {
        struct pc_pool_entry *victim = lru_idle(p);
        if (victim == NULL) {
            pthread_cond_wait(&p->changed, &p->lock);
            continue;
        }
        unlink_entry(p, victim);
        pthread_mutex_unlock(&p->lock);
        victim->next = NULL;
        free_list(victim, "room for another model");
        pthread_mutex_lock(&p->lock);
    }
}

static enum pc_err load_entry(struct pc_pool *p, struct pc_pool_entry *e, struct pc_error *err)
{
    struct pc_model *m = NULL;
    pc_log_info("pool", "loading %s from %s", e->name, e->path);
    enum pc_err rc = pc_model_load(e->path, &p->cfg.model_params, &m, err);

    pthread_mutex_lock(&p->lock);
    if (rc == PC_OK) {
        e->model = m;
        e->state = ENTRY_READY;
        const struct pc_model_info *in = pc_model_info(m);
        pc_log_info("pool",
                    "loaded %s in %.0f ms (weights %.1f MiB, KV %.1f MiB, compute %.1f MiB)",
                    e->name, (double)in->load_ns / 1e6, (double)in->weights_bytes / 1048576.0,
                    (double)in->kv_bytes / 1048576.0, (double)in->compute_bytes / 1048576.0);
    } else {
        e->state = ENTRY_FAILED;
        e->load_err = err ? *err : (struct pc_error){.code = rc};
        pc_log_warn("pool", "loading %s failed: %s", e->name, err ? err->msg : pc_strerror(rc));
    }
    pthread_cond_broadcast(&p->changed);
    return rc;
}

/* Drop one reference to a failed entry; the last one out frees it. Lock held. */
static void put_failed(struct pc_pool *p, struct pc_pool_entry *e)
{
    if (--e->refs == 0) {
        unlink_entry(p, e);
        entry_free(e);
    }
}

/* Lock held: a request's keep-alive replaces the last one, as in Ollama. */
static void set_keep_alive(struct pc_pool_entry *e, int64_t keep_alive_ns)
{
    if (keep_alive_ns != -1)
        e->keep_alive_ns = keep_alive_ns;
    e->doomed = e->keep_alive_ns == 0;
}

enum pc_err pc_pool_acquire(struct pc_pool *p, const char *name, const char *path,
                            int64_t keep_alive_ns, struct pc_pool_entry **out, bool *loaded,
                            struct pc_error *err)
{
    *out = NULL;
    if (loaded)
        *loaded = false;

    pthread_mutex_lock(&p->lock);
    struct pc_pool_entry *e = find(p, name);
    if (e == NULL) {
        make_room(p);
        e = find(p, name); /* another caller may have started it while we waited */
    }
    if (e != NULL) {
        e->refs++;
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
        set_keep_alive(e, keep_alive_ns);
        e->last_used_ns = pc_clock_mono_ns();
        pthread_mutex_unlock(&p->lock);
        *out = e;
        return PC_OK;
    }

    e = calloc(1, sizeof(*e));
    if (e == NULL || (e->name = strdup(name)) == NULL || (e->path = strdup(path)) == NULL) {
        pthread_mutex_unlock(&p->lock);
        entry_free(e);
        return pc_error_set(err, PC_ERR_NOMEM, "loading %s: out of memory", name);
    }
    e->state = ENTRY_LOADING;
    e->refs = 1;
    e->keep_alive_ns = p->cfg.default_keep_alive_ns;
    e->next = p->entries;
    p->entries = e;
    p->n_entries++;
    pthread_mutex_unlock(&p->lock);

    enum pc_err rc = load_entry(p, e, err); /* returns with the lock held */
    if (rc != PC_OK) {
        put_failed(p, e);
        pthread_mutex_unlock(&p->lock);
        return rc;
    }
    set_keep_alive(e, keep_alive_ns);
    e->last_used_ns = pc_clock_mono_ns();
    pthread_mutex_unlock(&p->lock);
    if (loaded)
        *loaded = true;
    *out = e;
    return PC_OK;
}

struct pc_model *pc_pool_entry_model(const struct pc_pool_entry *e)
{
    return e->model;
}

void pc_pool_release(struct pc_pool *p, struct pc_pool_entry *e)
{
    pthread_mutex_lock(&p->lock);
    int64_t now = pc_clock_mono_ns();
    e->expires_ns = expiry_from(now, e->keep_alive_ns);
    e->last_used_ns = now;
    e->refs--;
    pthread_cond_broadcast(&p->changed);
    pthread_cond_signal(&p->timer);
    pthread_mutex_unlock(&p->lock);
}

enum pc_err pc_pool_unload(struct pc_pool *p, const char *name, struct pc_error *err)
{
    pthread_mutex_lock(&p->lock);
    struct pc_pool_entry *e = find(p, name);
    if (e == NULL || e->state != ENTRY_READY) {
        pthread_mutex_unlock(&p->lock);
        return pc_error_set(err, PC_ERR_NOT_FOUND, "model \"%s\" is not loaded", name);
    }
    e->doomed = true;
    e->keep_alive_ns = 0;
    pthread_cond_signal(&p->timer);
    pthread_mutex_unlock(&p->lock);
    return PC_OK;
}

size_t pc_pool_list(struct pc_pool *p, struct pc_pool_status **out)
{
    pthread_mutex_lock(&p->lock);
    size_t n = 0;
    struct pc_pool_status *st = calloc(p->n_entries ? p->n_entries : 1, sizeof(*st));
    int64_t now_mono = pc_clock_mono_ns(), now_wall = pc_clock_wall_ns();
    for (struct pc_pool_entry *e = p->entries; st && e; e = e->next) {
        if (e->state != ENTRY_READY || (e->doomed && e->refs == 0))
            continue; /* an idle doomed model is as good as gone */
        struct pc_pool_status *s = &st[n++];
        snprintf(s->name, sizeof(s->name), "%s", e->name);
        snprintf(s->path, sizeof(s->path), "%s", e->path);
        s->info = *pc_model_info(e->model);
        s->refs = e->refs;
        /* In use, the clock starts when the request ends. */
        int64_t exp = e->refs > 0 ? expiry_from(now_mono, e->keep_alive_ns) : e->expires_ns;
        s->expires_wall_ns = exp == INT64_MAX ? INT64_MAX : now_wall + (exp - now_mono);
    }
    pthread_mutex_unlock(&p->lock);
    *out = st;
    return n;
}
