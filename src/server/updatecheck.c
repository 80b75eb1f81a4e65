/* updatecheck.c - the optional background check for model updates (PRECHARGE_UPDATE_CHECK):
 * every day or week, ask each model's source whether its file changed since it was
 * downloaded, and log and publish ModelUpdateAvailable when it did. It only tells: the update
 * itself is `precharge model update`'s, when someone asks for it. */
#include "updatecheck.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/clock.h"
#include "../base/duration.h"
#include "../base/log.h"
#include "../catalog/catalog.h"
#include "../store/cache.h"
#include "../store/update.h"
#include "serverInt.h"

struct pc_updatecheck {
    struct pc_server *srv;
    int64_t interval_ns;
    /* lock guards stopping; wake is signalled when it is set. */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    pthread_t thread;
};

#define DAY_NS (24ll * 3600 * 1000000000)

enum pc_err pc_server_parse_update_check(const char *s, struct pc_server_config *cfg,
                                         struct pc_error *err)
{
    int64_t ns = 0;
    if (strcmp(s, "off") == 0)
        ns = 0;
    else if (strcmp(s, "daily") == 0)
        ns = DAY_NS;
    else if (strcmp(s, "weekly") == 0)
        ns = 7 * DAY_NS;
    else if (pc_duration_parse(s, &ns, NULL) != PC_OK || ns <= 0 || ns == PC_DURATION_FOREVER)
        return pc_error_set(err, PC_ERR_INVALID,
                            "\"%s\" is not off, daily, weekly or a duration such as 12h", s);
    cfg->update_check_ns = ns;
    return PC_OK;
}

json_t *pc_server_show_update_check(const struct pc_server_config *cfg)
{
    int64_t ns = cfg->update_check_ns;
    if (ns == 0 || ns == DAY_NS || ns == 7 * DAY_NS)
        return json_string(ns == 0 ? "off" : ns == DAY_NS ? "daily" : "weekly");
    return json_sprintf("%llds", (long long)(ns / 1000000000));
}

/* One model against its source; publishes when an update is there. */
static void check_one(struct pc_server *srv, struct pc_catalog *c, const char *id)
{
    const struct pc_catalog_entry *e = pc_catalog_find(c, id, NULL);
    char url[2048];
    if (e == NULL || pc_catalog_url(e, url, sizeof(url), NULL) != PC_OK)
        return; /* put there by hand: no source to ask */
    struct pc_update_check u;
    struct pc_error err = {0};
    if (pc_update_check(srv->cfg.models_dir, id, url, &u, &err) != PC_OK) {
        pc_log_warn("store", "update check of %s: %s", id, err.msg);
        return;
    }
    if (u.status != PC_UPDATE_AVAILABLE) {
        pc_log_debug("store", "update check of %s: %s (%s)", id, pc_update_status_name(u.status),
                     u.why);
        return;
    }
    pc_log_info("store", "an update of %s is available (%s): `precharge model update %s` gets it",
                id, u.why, id);
    char corr[37];
    pc_uuid(corr);
    pc_events_publish(srv->events, PC_EV_MODEL_UPDATE_AVAILABLE, id, corr,
                      json_pack("{s:s, s:s, s:s, s:s*}", "why", u.why, "url", url, "revision",
                                u.revision, "sha256", u.expected[0] ? u.expected : NULL));
}

static void check_all(struct pc_server *srv)
{
    struct pc_catalog *c = NULL;
    struct pc_cache_model *list = NULL;
    size_t n = 0;
    struct pc_error err = {0};
    if (pc_server_load_catalog(srv->cfg.models_dir, &c, &err) != PC_OK ||
        pc_cache_list(srv->cfg.models_dir, &list, &n, &err) != PC_OK) {
        pc_log_warn("store", "update check: %s", err.msg);
        pc_catalog_free(c);
        return;
    }
    for (size_t i = 0; i < n; i++)
        check_one(srv, c, list[i].id);
    free(list);
    pc_catalog_free(c);
}

static void *check_main(void *arg)
{
    struct pc_updatecheck *uc = arg;
    pthread_mutex_lock(&uc->lock);
    while (!uc->stopping) {
        int64_t at = pc_clock_mono_ns() + uc->interval_ns;
        struct timespec ts = {.tv_sec = at / 1000000000, .tv_nsec = at % 1000000000};
        while (!uc->stopping && pthread_cond_timedwait(&uc->wake, &uc->lock, &ts) == 0)
            ;
        if (uc->stopping)
            break;
        pthread_mutex_unlock(&uc->lock);
        check_all(uc->srv); /* requests over the network: without the lock */
        pthread_mutex_lock(&uc->lock);
    }
    pthread_mutex_unlock(&uc->lock);
    return NULL;
}

enum pc_err pc_updatecheck_start(struct pc_server *srv, int64_t interval_ns,
                                 struct pc_updatecheck **out, struct pc_error *err)
{
    *out = NULL;
    if (interval_ns <= 0)
        return PC_OK;
    struct pc_updatecheck *uc = calloc(1, sizeof(*uc));
    if (uc == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "update check: out of memory");
    uc->srv = srv;
    uc->interval_ns = interval_ns;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&uc->lock, NULL);
    pthread_cond_init(&uc->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&uc->thread, NULL, check_main, uc) != 0) {
        pthread_cond_destroy(&uc->wake);
        pthread_mutex_destroy(&uc->lock);
        free(uc);
        return pc_error_set(err, PC_ERR_NOMEM, "update check: cannot start its thread");
    }
    *out = uc;
    return PC_OK;
}

void pc_updatecheck_stop(struct pc_updatecheck *uc)
{
    if (uc == NULL)
        return;
    pthread_mutex_lock(&uc->lock);
    uc->stopping = true;
    pthread_cond_signal(&uc->wake);
    pthread_mutex_unlock(&uc->lock);
    pthread_join(uc->thread, NULL);
    pthread_cond_destroy(&uc->wake);
    pthread_mutex_destroy(&uc->lock);
    free(uc);
}
