/* fleet.c - the fleet's start and stop, its ids, the set of models this daemon serves, and the
 * registry's view for the HTTP side; the bus (bus.c) and the registry (registry.c) run on
 * their own threads. */
#include "fleetInt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../base/clock.h"
#include "../base/log.h"
#include "../store/store.h"

bool pc_fleet_nap_unless(struct pc_fleet *f, int64_t ms, bool (*ready)(struct pc_fleet *f))
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    int64_t ns = until.tv_nsec + (ms % 1000) * 1000000;
    until.tv_sec += ms / 1000 + ns / 1000000000;
    until.tv_nsec = ns % 1000000000;
    pthread_mutex_lock(&f->lock);
    /* Checked under the lock that its wakers take: a wake between the check and the wait is
     * not lost. */
    if (!atomic_load(&f->stopping) && (ready == NULL || !ready(f)))
        pthread_cond_timedwait(&f->wake, &f->lock, &until);
    pthread_mutex_unlock(&f->lock);
    return !atomic_load(&f->stopping);
}

bool pc_fleet_nap(struct pc_fleet *f, int64_t ms)
{
    return pc_fleet_nap_unless(f, ms, NULL);
}

void pc_fleet_halt(struct pc_fleet *f)
{
    pthread_mutex_lock(&f->lock);
    atomic_store(&f->stopping, true);
    pthread_cond_broadcast(&f->wake);
    pthread_mutex_unlock(&f->lock);
}

struct pc_redis *pc_fleet_connect(struct pc_fleet *f, const char *what, int command_timeout_ms)
{
    struct pc_redis_params p = pc_redis_default_params();
    p.name = what;
    p.command_timeout_ms = command_timeout_ms;
    char name[300];
    snprintf(name, sizeof(name), "precharge:%s:%s", f->daemon_id, what);
    p.client_name = name;
    struct pc_redis *r = pc_redis_new(&f->url, &p);
    return r;
}

bool pc_fleet_serves(struct pc_fleet *f, const char *model)
{
    pthread_mutex_lock(&f->lock);
    bool yes = false;
    for (size_t i = 0; i < f->n_serves && !yes; i++)
        yes = strcmp(f->serves[i], model) == 0;
    pthread_mutex_unlock(&f->lock);
    return yes;
}

size_t pc_fleet_serves_copy(struct pc_fleet *f, char (**out)[PC_FLEET_NAME_MAX], uint64_t *version)
{
    pthread_mutex_lock(&f->lock);
    size_t n = f->n_serves;
    *out = malloc((n ? n : 1) * PC_FLEET_NAME_MAX);
    if (*out == NULL)
        n = 0;
    else if (n > 0)
        memcpy(*out, f->serves, n * PC_FLEET_NAME_MAX);
    *version = f->serves_version;
    pthread_mutex_unlock(&f->lock);
    return n;
}

/* Whether the model at path fits the budget when nothing else is loaded (pc_model_estimate:
 * tens of milliseconds, so each file's answer is kept while its size and time stay). */
struct pc_fleet_fit {
    char name[PC_FLEET_NAME_MAX];
    uint64_t size;
    int64_t mtime_ns;
    bool fits;
};

static bool fits_budget(struct pc_fleet *f, const struct pc_store_entry *e,
                        struct pc_fleet_fit *cache, size_t n_cache)
{
    if (f->cfg.budget_bytes == 0)
        return true;
    for (size_t i = 0; i < n_cache; i++)
        if (strcmp(cache[i].name, e->name) == 0 && cache[i].size == e->size &&
            cache[i].mtime_ns == e->mtime_ns)
            return cache[i].fits;
    struct pc_estimate est;
    if (pc_model_estimate(e->path, f->cfg.model_params, &est, NULL) != PC_OK)
        return false; /* not a model this daemon could load */
    return est.host_total + est.device_total <= f->cfg.budget_bytes;
}

void pc_fleet_serves_refresh(struct pc_fleet *f)
{
    struct pc_store_entry *list = NULL;
    size_t n = 0;
    if (pc_store_list(f->models_dir, &list, &n, NULL) != PC_OK)
        return;
    char(*serves)[PC_FLEET_NAME_MAX] = malloc((n ? n : 1) * PC_FLEET_NAME_MAX);
    struct pc_fleet_fit *fits = malloc((n ? n : 1) * sizeof(*fits));
    if (serves == NULL || fits == NULL) {
        free(serves);
        free(fits);
        free(list);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool ok = fits_budget(f, &list[i], f->fits, f->n_fits);
        fits[i] =
            (struct pc_fleet_fit){.size = list[i].size, .mtime_ns = list[i].mtime_ns, .fits = ok};
        snprintf(fits[i].name, sizeof(fits[i].name), "%s", list[i].name);
        if (ok)
            snprintf(serves[k++], PC_FLEET_NAME_MAX, "%s", list[i].name);
    }
    free(f->fits);
    f->fits = fits;
    f->n_fits = n;
    free(list);
    pthread_mutex_lock(&f->lock);
    bool same =
        k == f->n_serves && (k == 0 || memcmp(serves, f->serves, k * PC_FLEET_NAME_MAX) == 0);
    if (!same) {
        free(f->serves);
        f->serves = serves;
        f->n_serves = k;
        f->serves_version++;
        serves = NULL;
    }
    pthread_mutex_unlock(&f->lock);
    free(serves);
}

bool pc_fleet_next_frame(const char **p, char *event, size_t size, json_t **data)
{
    *data = NULL;
    while (**p) {
        const char *end = strstr(*p, "\n\n");
        size_t len = end ? (size_t)(end - *p) : strlen(*p);
        const char *frame = *p;
        *p += len + (end ? 2 : 0);
        const char *ev = NULL, *dt = NULL;
        for (const char *line = frame; line < frame + len;) {
            const char *nl = memchr(line, '\n', (size_t)(frame + len - line));
            if (nl == NULL)
                nl = frame + len;
            if (strncmp(line, "event: ", 7) == 0)
                ev = line + 7;
            else if (strncmp(line, "data: ", 6) == 0)
                dt = line;
            line = nl + 1;
        }
        if (ev == NULL || dt == NULL)
            continue;
        size_t ev_len = strcspn(ev, "\n");
        snprintf(event, size, "%.*s", (int)ev_len, ev);
        size_t dt_len = strcspn(dt + 6, "\n");
        *data = json_loadb(dt + 6, dt_len, 0, NULL);
        if (*data != NULL)
            return true;
    }
    return false;
}

int64_t pc_fleet_entry_ms(const char *id)
{
    return strtoll(id, NULL, 10);
}

static void make_ids(struct pc_fleet *f, const struct pc_fleet_config *cfg)
{
    if (cfg->host_id && cfg->host_id[0]) {
        snprintf(f->host_id, sizeof(f->host_id), "%s", cfg->host_id);
    } else if (gethostname(f->host_id, sizeof(f->host_id)) != 0) {
        snprintf(f->host_id, sizeof(f->host_id), "localhost");
    }
    f->host_id[sizeof(f->host_id) - 1] = '\0';
    for (char *c = f->host_id; *c; c++) /* a client name may not hold spaces */
        if (*c <= ' ')
            *c = '-';
    /* Unique among the daemons of a host (one a port) and across restarts (the pid): a
     * restarted daemon is a new consumer, and the old one's pending requests are taken over. */
    const char *port = strrchr(cfg->http_url ? cfg->http_url : "", ':');
    snprintf(f->daemon_id, sizeof(f->daemon_id), "%s-%s-%ld", f->host_id, port ? port + 1 : "0",
             (long)getpid());
}

/* What pc_fleet_start made, once its threads are stopped (or never started). */
static void fleet_free(struct pc_fleet *f)
{
    pthread_cond_destroy(&f->wake);
    pthread_mutex_destroy(&f->lock);
    json_decref(f->view);
    free(f->serves);
    free(f->fits);
    free(f);
}

enum pc_err pc_fleet_start(const struct pc_fleet_config *cfg, struct pc_fleet **out,
                           struct pc_error *err)
{
    *out = NULL;
    struct pc_fleet *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "fleet: out of memory");
    enum pc_err rc = pc_redis_url_parse(cfg->redis_url, &f->url, err);
    if (rc != PC_OK) {
        free(f);
        return rc;
    }
    f->cfg = *cfg;
    make_ids(f, cfg);
    snprintf(f->http_url, sizeof(f->http_url), "%s", cfg->http_url ? cfg->http_url : "");
    snprintf(f->models_dir, sizeof(f->models_dir), "%s", cfg->models_dir);
    f->cfg.redis_url = NULL; /* parsed into url; the caller's string need not outlive this */
    f->cfg.host_id = f->host_id;
    f->cfg.http_url = f->http_url;
    f->cfg.models_dir = f->models_dir;
    f->started_wall_ns = pc_clock_wall_ns();
    pthread_mutex_init(&f->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->wake, &ca);
    pthread_condattr_destroy(&ca);
    /* The set is known before the bus reads its first request. */
    pc_fleet_serves_refresh(f);
    size_t n_serves = f->n_serves; /* read before the registry's thread may change it */
    rc = pc_fleet_registry_start(f, err);
    if (rc == PC_OK && (rc = pc_fleet_bus_start(f, err)) != PC_OK)
        pc_fleet_registry_stop(f);
    if (rc != PC_OK) {
        fleet_free(f);
        return rc;
    }
    char shown[600];
    pc_log_info("fleet", "joining the fleet at %s as %s (serving %zu models)",
                pc_redis_url_show(&f->url, shown, sizeof(shown)), f->daemon_id, n_serves);
    *out = f;
    return PC_OK;
}

void pc_fleet_stop(struct pc_fleet *f)
{
    if (f == NULL)
        return;
    pc_fleet_halt(f);
    pc_fleet_bus_stop(f);
    pc_fleet_registry_stop(f);
    fleet_free(f);
}

const char *pc_fleet_daemon_id(const struct pc_fleet *f)
{
    return f->daemon_id;
}

json_t *pc_fleet_view(struct pc_fleet *f)
{
    char shown[600], ts[40];
    pthread_mutex_lock(&f->lock);
    json_t *daemons = f->view ? json_deep_copy(f->view) : json_array();
    int64_t at = f->view_ns;
    bool connected = f->connected;
    pthread_mutex_unlock(&f->lock);
    return json_pack("{s:s, s:s, s:b, s:s?, s:o}", "daemon_id", f->daemon_id, "redis",
                     pc_redis_url_show(&f->url, shown, sizeof(shown)), "connected", connected,
                     "as_of", at ? pc_clock_rfc3339(at, ts, sizeof(ts)) : NULL, "daemons", daemons);
}

static bool same_model(json_t *o, const char *model)
{
    const char *id = json_string_value(json_object_get(o, "model_id"));
    return id != NULL && strcmp(id, model) == 0;
}

json_t *pc_fleet_where(struct pc_fleet *f, const char *model)
{
    json_t *out = json_array();
    pthread_mutex_lock(&f->lock);
    size_t i;
    json_t *d;
    json_array_foreach(f->view, i, d)
    {
        bool loaded = false;
        size_t contexts = 0, k;
        json_t *m;
        json_array_foreach(json_object_get(d, "models"), k, m)
        {
            loaded = loaded || same_model(m, model);
        }
        json_array_foreach(json_object_get(d, "contexts"), k, m)
        {
            contexts += same_model(m, model);
        }
        if (!loaded && contexts == 0)
            continue;
        json_array_append_new(out, json_pack("{s:O?, s:O?, s:O?, s:b, s:I}", "daemon_id",
                                             json_object_get(d, "daemon_id"), "host_id",
                                             json_object_get(d, "host_id"), "http",
                                             json_object_get(d, "http"), "loaded", loaded,
                                             "contexts", (json_int_t)contexts));
    }
    pthread_mutex_unlock(&f->lock);
    return out;
}
