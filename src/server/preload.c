/* preload.c - the preloader: a thread per model that warms it with retries, backoff and a
 * timeout, then checks it every health interval and warms it again when its keep-warm schedule
 * says so. Each warm-up and check runs on a thread of its own, so that a load that llama.cpp
 * cannot interrupt still ends the attempt at its timeout. */
#include "preload.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/clock.h"
#include "../base/log.h"
#include "../base/sdnotify.h"
#include "../provider/ollama.h"
#include "../store/store.h"
#include "infer.h"
#include "serverInt.h"
#include "settings.h"

#define NS_PER_MS 1000000ll

enum pl_status { PL_LOADING, PL_READY, PL_RETRYING, PL_FAILED, PL_UNLOADED };

static const char *const status_names[] = {"loading", "ready", "retrying", "failed", "unloaded"};

struct pl_model;

/* One warm-up or health check. The model's thread owns it and joins it. */
struct attempt {
    struct pl_model *m;
    pthread_t thread;
    bool check; /* a health check: only a model that is resident */
    bool pin;   /* pin the model once it is loaded */
    /* Written by the attempt's thread before done is set (under the preloader's lock). */
    bool done;
    bool remote; /* the ollama provider's model */
    bool gone;   /* the check found the model not resident */
    struct pc_error err;
};

struct pl_model {
    struct pc_preloader *pl;
    struct pc_preload_spec spec;
    char norm[256]; /* the store's name, for the pool */
    pthread_t thread;
    bool started;
    struct attempt *running; /* an attempt that outlived its timeout; joined before the next */
    bool pinned;             /* what this thread last asked of the pool */
    bool remote;             /* the latest attempt went to the ollama provider */
    /* Guarded by the preloader's lock: what /api/models/status reports. */
    enum pl_status status;
    int64_t preloaded_at_ns, last_checked_ns; /* wall; 0: never */
    int attempts;                             /* in the latest warm-up */
    int warmups;                              /* warm-ups that succeeded */
    int checks_failed;
    char error[PC_ERROR_MSG_MAX];
    bool poked; /* the pool unloaded it: the thread looks at once */
};

struct pc_preloader {
    struct pc_server *srv;
    int64_t timeout_ms, health_ms, retry_max_ms;
    size_t max_parallel;
    /* lock guards every model's status fields, stopping, notified and loading; cond signals
     * stop, finished attempts, a free place to load, and the pool's loads and unloads. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping;
    bool notified;  /* READY=1 went out */
    size_t loading; /* warm-ups under way, at most max_parallel */
    atomic_bool cancel;
    size_t n;
    struct pl_model models[];
};

/* ---- the work of one attempt, on its own thread ------------------------------------------- */

/* Decode the prompt and one token at low priority: the model answers, and its first request
 * pays nothing for the compute graph. */
static enum pc_err decode_one(struct pc_model *model, const char *prompt, const atomic_bool *cancel,
                              struct pc_error *err)
{
    struct pc_chat_msg msg = {.role = "user", .content = prompt[0] ? prompt : "Hi"};
    char *text = NULL;
    enum pc_err rc = pc_model_render_chat(model, &msg, 1, true, &text, err);
    if (rc != PC_OK)
        return rc;
    struct pc_gen *gen = NULL;
    struct pc_gen_request req = {.prompt = text,
                                 .sampling = pc_sampling_default(),
                                 .cancel = cancel,
                                 .priority = PC_PRIO_LOW};
    req.sampling.num_predict = 1;
    req.sampling.temperature = 0;
    rc = pc_gen_start(model, &req, &gen, err);
    for (bool done = false; rc == PC_OK && !done;) {
        const char *piece;
        size_t len;
        rc = pc_gen_next(gen, &piece, &len, &done, err);
    }
    pc_gen_free(gen);
    free(text);
    return rc;
}

/* Prefill the spec's context through the precharger, and wait for it. */
static enum pc_err precharge_context(struct pc_preloader *pl, const struct pc_preload_spec *spec,
                                     struct pc_error *err)
{
    struct pc_precharge_req req = {
        .model = spec->model,
        .priority = PC_PRIO_NORMAL,
        .messages = json_pack("[{s:s, s:s}]", "role", "system", "content", spec->context),
    };
    char id[PC_PRECHARGE_ID_MAX];
    enum pc_err rc = pc_precharge_submit(pl->srv->precharger, &req, id, err);
    json_decref(req.messages);
    if (rc != PC_OK)
        return rc;
    /* Short waits, so that a stop does not wait out the timeout. */
    while (!atomic_load(&pl->cancel)) {
        json_t *job = pc_precharge_get(pl->srv->precharger, id, 200);
        const char *status = json_string_value(json_object_get(job, "status"));
        if (status == NULL || strcmp(status, "failed") == 0) {
            const char *e = json_string_value(json_object_get(job, "error"));
            rc = pc_error_set(err, PC_ERR_UNAVAILABLE, "precharge of the context failed: %s",
                              e ? e : "the job is gone");
            json_decref(job);
            return rc;
        }
        bool finished = strcmp(status, "queued") != 0 && strcmp(status, "running") != 0;
        json_decref(job);
        if (finished)
            return PC_OK;
    }
    return pc_error_set(err, PC_ERR_CANCELLED, "the daemon is stopping");
}

/* The ollama provider's model: /api/generate with keep_alive and the context as the prompt to
 * warm it, /api/ps to check it. */
static void remote_work(struct attempt *a, const char *model)
{
    struct pl_model *m = a->m;
    struct pc_ollama *r = m->pl->srv->remote;
    a->remote = true;
    if (a->check) {
        bool loaded = false;
        if (pc_ollama_loaded(r, model, &loaded, &a->err) == PC_OK && !loaded)
            a->gone = true;
        return;
    }
    const char *prompt = m->spec.context[0] ? m->spec.context : m->spec.warmup;
    char keep[32];
    pc_ollama_load(r, model, a->pin ? "-1" : pc_server_remote_default_keep(m->pl->srv, keep),
                   prompt, m->pl->timeout_ms, &a->err);
}

/* A model in neither the local store nor the remote server's list while a server that the
 * configuration names (not the default URL, which may have no server at all) does not answer:
 * that server is where it may be, so say that, not "pull it". */
static bool remote_unavailable(struct attempt *a)
{
    struct pl_model *m = a->m;
    struct pc_server *srv = m->pl->srv;
    struct pc_ollama *r = srv->remote;
    char path[PATH_MAX];
    if (r == NULL || pc_ollama_available(r) ||
        pc_settings_source(&srv->cfg, "ollama_url") == PC_SOURCE_DEFAULT ||
        pc_store_path(m->pl->srv->cfg.models_dir, m->spec.model, path, sizeof(path), NULL) !=
            PC_ERR_NOT_FOUND)
        return false;
    a->remote = true;
    pc_error_set(&a->err, PC_ERR_UNAVAILABLE,
                 "the ollama provider at %s is unavailable, and \"%s\" is not in the local store "
                 "(it may be on that server)",
                 pc_ollama_url(r), m->spec.model);
    return true;
}

/* A health check looks at the model where it is resident, and never loads it; its reference
 * is given back as a look, so that it does not push back the keep-alive expiry. */
static void check_work(struct attempt *a)
{
    struct pl_model *m = a->m;
    struct pc_pool *pool = m->pl->srv->pool;
    struct pc_pool_acquire_params params = pc_pool_acquire_default_params();
    params.preload = true;
    struct pc_pool_entry *e = NULL;
    enum pc_err rc = pc_pool_acquire_with(pool, m->norm, NULL, &params, &e, NULL, &a->err);
    if (rc == PC_ERR_NOT_FOUND) {
        a->gone = true;
        return;
    }
    if (rc == PC_OK) {
        decode_one(pc_pool_entry_model(e), m->spec.warmup, &m->pl->cancel, &a->err);
        pc_pool_release_look(pool, e);
    }
}

static void attempt_work(struct attempt *a)
{
    struct pl_model *m = a->m;
    struct pc_preloader *pl = m->pl;
    char canon[256];
    if (pc_server_remote_owns(pl->srv, m->spec.model, canon)) {
        remote_work(a, canon);
        return;
    }
    if (a->check) {
        check_work(a);
        return;
    }
    if (remote_unavailable(a))
        return;
    struct pc_pool_acquire_params params = pc_pool_acquire_default_params();
    params.preload = true; /* a warm-up is not a use: it leaves the LRU/LFU order alone */
    params.pin = a->pin ? 1 : -1;
    struct pc_infer *inf = NULL;
    enum pc_err rc = pc_infer_open_with(pl->srv, m->spec.model, &params, false, &inf, &a->err);
    if (rc == PC_OK)
        rc = decode_one(pc_infer_model(inf), m->spec.warmup, &pl->cancel, &a->err);
    pc_infer_close(inf);
    if (rc == PC_OK && m->spec.context[0] != '\0')
        precharge_context(pl, &m->spec, &a->err);
}

static void *attempt_main(void *arg)
{
    struct attempt *a = arg;
    attempt_work(a);
    pthread_mutex_lock(&a->m->pl->lock);
    a->done = true;
    pthread_cond_broadcast(&a->m->pl->cond);
    pthread_mutex_unlock(&a->m->pl->lock);
    return NULL;
}

/* ---- the model's thread ------------------------------------------------------------------- */

static void deadline_after(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    int64_t ns = ts->tv_nsec + (ms % 1000) * NS_PER_MS;
    ts->tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
    ts->tv_nsec = (long)(ns % 1000000000);
}

/* Lock held: wait until the deadline, a stop, or (poked not NULL) until *poked is set, which it
 * clears. Returns false once stopping. */
static bool sleep_locked(struct pc_preloader *pl, int64_t ms, bool *poked)
{
    struct timespec ts;
    deadline_after(&ts, ms);
    while (!pl->stopping && !(poked && *poked) &&
           pthread_cond_timedwait(&pl->cond, &pl->lock, &ts) == 0)
        ;
    if (poked)
        *poked = false;
    return !pl->stopping;
}

/* Lock held: wait for an attempt that outlived its timeout, then free it. */
static void reap_locked(struct pl_model *m)
{
    if (m->running == NULL)
        return;
    while (!m->running->done)
        pthread_cond_wait(&m->pl->cond, &m->pl->lock);
    pthread_mutex_unlock(&m->pl->lock);
    pthread_join(m->running->thread, NULL);
    pthread_mutex_lock(&m->pl->lock);
    free(m->running);
    m->running = NULL;
}

/* Run one attempt, bounded by the timeout. Lock held on entry and exit. */
static enum pc_err run_attempt(struct pl_model *m, bool check, bool pin, bool *gone,
                               struct pc_error *err)
{
    struct pc_preloader *pl = m->pl;
    *gone = false;
    reap_locked(m);
    struct attempt *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    a->m = m;
    a->check = check;
    a->pin = pin;
    if (pthread_create(&a->thread, NULL, attempt_main, a) != 0) {
        free(a);
        return pc_error_set(err, PC_ERR_NOMEM, "cannot start a thread");
    }
    m->running = a;
    struct timespec ts;
    deadline_after(&ts, pl->timeout_ms);
    while (!a->done && !pl->stopping && pthread_cond_timedwait(&pl->cond, &pl->lock, &ts) == 0)
        ;
    if (!a->done) {
        if (pl->stopping)
            return pc_error_set(err, PC_ERR_CANCELLED, "the daemon is stopping");
        return pc_error_set(err, PC_ERR_TIMEOUT, "%s timeout after %lld ms",
                            check ? "Health check" : "Preload", (long long)pl->timeout_ms);
    }
    *gone = a->gone;
    *err = a->err;
    m->remote = a->remote;
    reap_locked(m);
    return err->code;
}

/* The second of the local day, and the milliseconds into it. */
static int second_now(int *ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    if (ms)
        *ms = (int)(ts.tv_nsec / 1000000);
    return tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
}

static bool keep_warm_now(const struct pl_model *m)
{
    return pc_keep_warm_active(&m->spec.keep_warm, second_now(NULL));
}

/* Milliseconds until the model's schedule next opens or closes (-1: it never changes), so that
 * the thread wakes at the edge itself rather than at its next check. */
static int64_t ms_to_schedule_edge(const struct pl_model *m)
{
    int ms;
    int s = second_now(&ms);
    int64_t secs = pc_keep_warm_next_edge(&m->spec.keep_warm, s);
    return secs < 0 ? -1 : secs * 1000 - ms;
}

/* Lock held: tell systemd and the log once every required model is warm. */
static void update_ready_locked(struct pc_preloader *pl)
{
    size_t ready = 0, required = 0;
    for (size_t i = 0; i < pl->n; i++) {
        if (!pl->models[i].spec.required)
            continue;
        required++;
        ready += pl->models[i].status == PL_READY || pl->models[i].status == PL_UNLOADED;
    }
    char state[128];
    if (ready == required && !pl->notified) {
        pl->notified = true;
        snprintf(state, sizeof(state), "READY=1\nSTATUS=%zu of %zu required models warm", ready,
                 required);
        if (pl->n > 0)
            pc_log_info("preload", "ready: %zu of %zu required models warm", ready, required);
    } else {
        snprintf(state, sizeof(state), "STATUS=%zu of %zu required models warm", ready, required);
    }
    pc_sd_notify(state);
}

static void publish(struct pl_model *m, enum pc_event_type type, json_t *data)
{
    char id[37];
    pc_uuid(id);
    pc_events_publish(m->pl->srv->events, type, m->norm, id, data);
}

/* Whether the model is the ollama provider's and its server is down: the provider has said so
 * once, and the retries that wait for it say nothing more. */
static bool remote_down(const struct pl_model *m)
{
    struct pc_ollama *r = m->pl->srv->remote;
    return m->remote && r != NULL && !pc_ollama_available(r);
}

/* Lock held: wait for a place among the warm-ups that may load at once. False once stopping. */
static bool take_place_locked(struct pc_preloader *pl)
{
    while (!pl->stopping && pl->loading >= pl->max_parallel)
        pthread_cond_wait(&pl->cond, &pl->lock);
    if (pl->stopping)
        return false;
    pl->loading++;
    return true;
}

static void give_place_locked(struct pc_preloader *pl)
{
    pl->loading--;
    pthread_cond_broadcast(&pl->cond);
}

/* Warm the model by its retry policy: maxRetries quick retries, the delay doubling up to the
 * cap; then an optional model is failed, and a required one is failed (so /ready says so) and
 * retried at the capped backoff until it is warm. Lock held on entry and exit. */
static void warm(struct pl_model *m)
{
    struct pc_preloader *pl = m->pl;
    int64_t delay =
        m->spec.retry_delay_ms < pl->retry_max_ms ? m->spec.retry_delay_ms : pl->retry_max_ms;
    int quick = m->spec.max_retries + 1;
    for (int attempt = 1; !pl->stopping; attempt++) {
        bool late = attempt > quick; /* past the quick retries: failed, still retried */
        if (!take_place_locked(pl))
            return;
        m->attempts = attempt;
        m->status = attempt == 1 ? PL_LOADING : late ? PL_FAILED : PL_RETRYING;
        if (pl->max_parallel < pl->n) /* the order in which they take turns */
            pc_log_info("preload", "%s: attempt %d starts", m->spec.model, attempt);
        publish(m, PC_EV_MODEL_LOADING, json_pack("{s:b, s:i}", "preload", 1, "attempt", attempt));
        struct pc_error err = {0};
        bool gone, pin = keep_warm_now(m);
        int64_t t0 = pc_clock_mono_ns();
        enum pc_err rc = run_attempt(m, false, pin, &gone, &err);
        give_place_locked(pl);
        if (pl->stopping)
            return;
        if (rc == PC_OK) {
            int64_t ms = (pc_clock_mono_ns() - t0) / NS_PER_MS;
            m->pinned = pin;
            m->status = PL_READY;
            m->preloaded_at_ns = m->last_checked_ns = pc_clock_wall_ns();
            m->error[0] = '\0';
            m->warmups++;
            pc_log_info("preload", "%s is warm (attempt %d, %lld ms)", m->spec.model, attempt,
                        (long long)ms);
            publish(m, PC_EV_MODEL_PRELOADED,
                    json_pack("{s:i, s:I, s:b}", "attempt", attempt, "time_ms", (json_int_t)ms,
                              "pinned", pin));
            update_ready_locked(pl);
            return;
        }
        snprintf(m->error, sizeof(m->error), "%s", err.msg);
        bool give_up = attempt >= quick && !m->spec.required;
        publish(m, PC_EV_MODEL_FAILED,
                json_pack("{s:s, s:b, s:i, s:I}", "error", err.msg, "preload", 1, "attempt",
                          attempt, "retry_in_ms", (json_int_t)(give_up ? -1 : delay)));
        enum pc_log_level level = remote_down(m) ? PC_LOG_DEBUG : PC_LOG_WARN;
        if (give_up) {
            pc_log_error("preload", "%s: attempt %d of %d failed: %s; giving up", m->spec.model,
                         attempt, quick, err.msg);
            break;
        }
        if (late)
            pc_log(level, "preload", "%s: attempt %d failed: %s; retrying in %lld ms",
                   m->spec.model, attempt, err.msg, (long long)delay);
        else if (attempt == quick)
            pc_log(remote_down(m) ? PC_LOG_WARN : PC_LOG_ERROR, "preload",
                   "%s: attempt %d of %d failed: %s; required: retrying in %lld ms until warm",
                   m->spec.model, attempt, quick, err.msg, (long long)delay);
        else
            pc_log(level, "preload", "%s: attempt %d of %d failed: %s; retrying in %lld ms",
                   m->spec.model, attempt, quick, err.msg, (long long)delay);
        m->status = attempt >= quick ? PL_FAILED : PL_RETRYING;
        if (!sleep_locked(pl, delay, NULL))
            return;
        delay = delay > pl->retry_max_ms / 2 ? pl->retry_max_ms : delay * 2;
    }
    if (!pl->stopping)
        m->status = PL_FAILED;
    update_ready_locked(pl);
}

/* The one-token decode of a model that should be resident. Lock held. */
static void health_check(struct pl_model *m)
{
    struct pc_error err = {0};
    bool gone;
    int64_t t0 = pc_clock_mono_ns();
    enum pc_err rc = run_attempt(m, true, false, &gone, &err);
    if (m->pl->stopping)
        return;
    int64_t ms = (pc_clock_mono_ns() - t0) / NS_PER_MS;
    m->last_checked_ns = pc_clock_wall_ns();
    if (gone) {
        m->status = PL_UNLOADED;
        m->pinned = false;
        pc_log_info("preload", "%s is no longer loaded", m->spec.model);
        publish(m, PC_EV_MODEL_HEALTH_CHECKED,
                json_pack("{s:b, s:b, s:I}", "ok", 0, "loaded", 0, "time_ms", (json_int_t)ms));
        return;
    }
    publish(m, PC_EV_MODEL_HEALTH_CHECKED,
            rc == PC_OK
                ? json_pack("{s:b, s:b, s:I}", "ok", 1, "loaded", 1, "time_ms", (json_int_t)ms)
                : json_pack("{s:b, s:b, s:I, s:s}", "ok", 0, "loaded", 1, "time_ms", (json_int_t)ms,
                            "error", err.msg));
    /* The pool let it go while the check ran (its look does not hold the keep-alive):
     * pc_preloader_on_unload has said so, and what the check saw is no longer true. */
    if (m->status == PL_UNLOADED)
        return;
    if (rc == PC_OK) {
        m->status = PL_READY;
        m->error[0] = '\0';
        return;
    }
    pc_log(remote_down(m) ? PC_LOG_DEBUG : PC_LOG_WARN, "preload", "%s: health check failed: %s",
           m->spec.model, err.msg);
    snprintf(m->error, sizeof(m->error), "%s", err.msg);
    m->status = PL_FAILED;
    m->checks_failed++;
}

/* Follow the window: pin inside it, unpin outside, so that the model may expire. A remote
 * model is warmed again with keep_alive -1, or this daemon's default, on the attempt's thread
 * (no network under the lock). Lock held. */
static void follow_schedule(struct pl_model *m, bool active)
{
    if (m->pinned == active || m->status != PL_READY)
        return;
    struct pc_error err = {0};
    bool gone;
    enum pc_err rc = m->remote ? run_attempt(m, false, active, &gone, &err)
                               : pc_pool_pin(m->pl->srv->pool, m->norm, active, &err);
    if (rc == PC_OK) {
        m->pinned = active;
        pc_log_info("preload", "%s: keep-warm window %s", m->spec.model,
                    active ? "opens: pinned" : "closes: it may expire");
    }
}

/* How long the model's thread may sleep: until the next health check or the schedule's next
 * edge, whichever comes first, and an hour at most (a clock that jumps is seen within it). */
static int64_t sleep_ms(const struct pl_model *m, int64_t next_check)
{
    int64_t wait = 3600 * 1000;
    if (m->pl->health_ms > 0) {
        int64_t to_check = (next_check - pc_clock_mono_ns()) / NS_PER_MS;
        wait = to_check < wait ? to_check : wait;
    }
    int64_t edge = ms_to_schedule_edge(m);
    if (edge >= 0 && edge < wait)
        wait = edge;
    return wait;
}

static void *model_main(void *arg)
{
    struct pl_model *m = arg;
    struct pc_preloader *pl = m->pl;
    pthread_mutex_lock(&pl->lock);
    warm(m);
    int64_t next_check = pc_clock_mono_ns() + pl->health_ms * NS_PER_MS;
    while (!pl->stopping) {
        /* Wakes early for a stop and for the pool's unloads (pc_preloader_on_unload). */
        int64_t wait_ms = sleep_ms(m, next_check);
        if (wait_ms > 0 && !sleep_locked(pl, wait_ms, &m->poked))
            break;
        bool active = keep_warm_now(m);
        follow_schedule(m, active);
        bool due = pl->health_ms > 0 && pc_clock_mono_ns() >= next_check;
        if (due) {
            next_check = pc_clock_mono_ns() + pl->health_ms * NS_PER_MS;
            if (m->status == PL_READY)
                health_check(m);
        }
        /* Gone (expired, evicted, unloaded) and meant to be warm: warm it again now; failed (a
         * health check), at the next check, so that a broken model is not hammered. */
        if (active && (m->status == PL_UNLOADED || (m->status == PL_FAILED && due))) {
            pc_log_info("preload", "%s: warming again (keep-warm %s)", m->spec.model,
                        m->spec.keep_warm.kind == PC_KEEP_WARM_ALWAYS ? "always" : "window");
            warm(m);
        }
        update_ready_locked(pl);
    }
    reap_locked(m);
    pthread_mutex_unlock(&pl->lock);
    return NULL;
}

/* ---- the preloader ------------------------------------------------------------------------ */

enum pc_err pc_preloader_new(struct pc_server *srv, const struct pc_preloader_config *cfg,
                             struct pc_preloader **out, struct pc_error *err)
{
    *out = NULL;
    struct pc_preloader *pl = calloc(1, sizeof(*pl) + cfg->n_specs * sizeof(pl->models[0]));
    if (pl == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "preload: out of memory");
    pl->srv = srv;
    pl->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
    pl->health_ms = cfg->health_interval_ms;
    pl->retry_max_ms = cfg->retry_max_ms > 0 ? cfg->retry_max_ms : 300000;
    pl->max_parallel = cfg->max_parallel > 0 ? cfg->max_parallel : 1;
    pl->n = cfg->n_specs;
    atomic_init(&pl->cancel, false);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pl->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&pl->lock, NULL);
    for (size_t i = 0; i < pl->n; i++) {
        struct pl_model *m = &pl->models[i];
        m->pl = pl;
        m->spec = cfg->specs[i];
        if (pc_store_name(m->spec.model, m->norm, sizeof(m->norm), NULL) != PC_OK) {
            size_t len = strnlen(m->spec.model, sizeof(m->norm) - 1);
            memcpy(m->norm, m->spec.model, len);
            m->norm[len] = '\0';
        }
        m->status = PL_LOADING;
    }
    *out = pl;
    return PC_OK;
}

enum pc_err pc_preloader_run(struct pc_preloader *pl, struct pc_error *err)
{
    pthread_mutex_lock(&pl->lock);
    for (size_t i = 0; i < pl->n; i++) {
        if (pthread_create(&pl->models[i].thread, NULL, model_main, &pl->models[i]) != 0) {
            pthread_mutex_unlock(&pl->lock);
            return pc_error_set(err, PC_ERR_NOMEM, "preload: cannot start a thread");
        }
        pl->models[i].started = true;
    }
    if (pl->n > 0)
        pc_log_info("preload", "warming %zu model%s (timeout %lld ms, health check every %lld ms)",
                    pl->n, pl->n == 1 ? "" : "s", (long long)pl->timeout_ms,
                    (long long)pl->health_ms);
    update_ready_locked(pl);
    pthread_mutex_unlock(&pl->lock);
    return PC_OK;
}

void pc_preloader_stop(struct pc_preloader *pl)
{
    if (pl == NULL)
        return;
    pthread_mutex_lock(&pl->lock);
    pl->stopping = true;
    atomic_store(&pl->cancel, true);
    pthread_cond_broadcast(&pl->cond);
    pthread_mutex_unlock(&pl->lock);
    for (size_t i = 0; i < pl->n; i++)
        if (pl->models[i].started)
            pthread_join(pl->models[i].thread, NULL);
    for (size_t i = 0; i < pl->n; i++)
        pl->models[i].started = false;
}

void pc_preloader_free(struct pc_preloader *pl)
{
    if (pl == NULL)
        return;
    pc_preloader_stop(pl);
    pthread_cond_destroy(&pl->cond);
    pthread_mutex_destroy(&pl->lock);
    free(pl);
}

/* The preloaded models called name (the pool's name), under the lock. */
#define FOR_MODELS_NAMED(pl, name, m)                                                              \
    for (struct pl_model *m = (pl)->models; m < (pl)->models + (pl)->n; m++)                       \
        if (strcmp(m->norm, (name)) == 0)

void pc_preloader_on_unload(struct pc_preloader *pl, const char *name, const char *why)
{
    if (pl == NULL || strcmp(why, "stopped") == 0)
        return;
    pthread_mutex_lock(&pl->lock);
    FOR_MODELS_NAMED(pl, name, m)
    {
        if (m->status != PL_READY || pl->stopping)
            continue;
        m->status = PL_UNLOADED;
        m->pinned = false;
        m->poked = true;
        pc_log_info("preload", "%s is no longer loaded (%s)", m->spec.model, why);
    }
    pthread_cond_broadcast(&pl->cond);
    pthread_mutex_unlock(&pl->lock);
}

void pc_preloader_on_load(struct pc_preloader *pl, const char *name)
{
    if (pl == NULL)
        return;
    pthread_mutex_lock(&pl->lock);
    FOR_MODELS_NAMED(pl, name, m)
    {
        if (m->status == PL_UNLOADED)
            m->status = PL_READY;
    }
    pthread_mutex_unlock(&pl->lock);
}

static json_t *time_or_null(int64_t wall_ns)
{
    char ts[40];
    return wall_ns ? json_string(pc_clock_rfc3339(wall_ns, ts, sizeof(ts))) : json_null();
}

json_t *pc_preloader_status(struct pc_preloader *pl)
{
    json_t *o = json_object();
    if (pl == NULL)
        return o;
    pthread_mutex_lock(&pl->lock);
    for (size_t i = 0; i < pl->n; i++) {
        const struct pl_model *m = &pl->models[i];
        char kw[24];
        json_object_set_new(
            o, m->spec.model,
            json_pack(
                "{s:s, s:s, s:s, s:o, s:o, s:i, s:o, s:b, s:s, s:b, s:i, s:i}", "status",
                status_names[m->status], "displayName",
                m->spec.display_name[0] ? m->spec.display_name : m->spec.model, "provider",
                m->remote ? "ollama" : "local", "preloadedAt", time_or_null(m->preloaded_at_ns),
                "lastChecked", time_or_null(m->last_checked_ns), "attempts", m->attempts, "error",
                m->error[0] ? json_string(m->error) : json_null(), "required", m->spec.required,
                "keepWarm", pc_keep_warm_format(&m->spec.keep_warm, kw, sizeof(kw)), "pinned",
                m->pinned, "warmups", m->warmups, "failedChecks", m->checks_failed));
    }
    pthread_mutex_unlock(&pl->lock);
    return o;
}

bool pc_preloader_ready(struct pc_preloader *pl, json_t **pending, json_t **failed)
{
    if (pending)
        *pending = json_array();
    if (failed)
        *failed = json_array();
    if (pl == NULL)
        return true;
    bool ready = true;
    pthread_mutex_lock(&pl->lock);
    for (size_t i = 0; i < pl->n; i++) {
        const struct pl_model *m = &pl->models[i];
        /* Unloaded means its own schedule let it expire, not that it is missing. */
        if (!m->spec.required || m->status == PL_READY || m->status == PL_UNLOADED)
            continue;
        ready = false;
        if (pending)
            json_array_append_new(*pending, json_string(m->spec.model));
        if (failed && m->status == PL_FAILED)
            json_array_append_new(*failed, json_string(m->spec.model));
    }
    pthread_mutex_unlock(&pl->lock);
    return ready;
}
