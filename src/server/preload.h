/* preload.h - the startup preloader: warm the configured models in parallel with retries,
 * backoff and a timeout, report their status and readiness, check their health by a one-token
 * decode, and keep them warm on a schedule. */
#ifndef PC_PRELOAD_H
#define PC_PRELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../base/err.h"

#define PC_PRELOAD_MAX 16

/* When a preloaded model must stay resident. */
enum pc_keep_warm_kind {
    PC_KEEP_WARM_NONE,   /* warm at start, then it may expire like any model */
    PC_KEEP_WARM_ALWAYS, /* pinned; warmed again whenever it is gone */
    PC_KEEP_WARM_WINDOW, /* as ALWAYS inside a daily window in local time, NONE outside */
};

struct pc_keep_warm {
    enum pc_keep_warm_kind kind;
    int start_s, end_s; /* seconds after local midnight; end < start wraps past midnight */
};

/* "" or "none", "always", or "HH:MM-HH:MM" ("08:00-18:00"; an en dash works too; either end
 * may give seconds, "08:00:30"). */
enum pc_err pc_keep_warm_parse(const char *s, struct pc_keep_warm *out /* OUT */,
                               struct pc_error *err);

/* The schedule as pc_keep_warm_parse reads it. buf needs 24 bytes. */
const char *pc_keep_warm_format(const struct pc_keep_warm *kw, char *buf, size_t size);

/* Whether the model must be warm at this second of the local day (0..86399). */
bool pc_keep_warm_active(const struct pc_keep_warm *kw, int second_of_day);

/* Seconds from second_of_day to the schedule's next edge (the window opens or closes), 1 to
 * 86400; -1 for a schedule that never changes. */
int pc_keep_warm_next_edge(const struct pc_keep_warm *kw, int second_of_day);

/* One model to preload (seed 001's PreloadConfig, with seed 003's warm-up prompt). */
struct pc_preload_spec {
    char model[256];
    char display_name[128]; /* "" : the model's name */
    int max_retries;        /* attempts after the first */
    int64_t retry_delay_ms; /* before the first retry; doubles for each one after */
    char warmup[512];       /* the one-token decode's prompt; "" : "Hi" */
    char context[4096];     /* a system prompt to precharge, or "" */
    struct pc_keep_warm keep_warm;
    bool required; /* /ready waits for it */
    bool named;    /* named without a spec: the configured defaults apply (pc_settings_finish) */
};

/* The defaults for a model named in PRECHARGE_PRELOAD or --preload. */
void pc_preload_spec_default(struct pc_preload_spec *spec /* OUT */, const char *model);

/* Read {model, displayName, maxRetries, retryDelayMs, warmup, context, keepWarm, required}
 * (or a bare string: the model) over spec's defaults. err names the field. */
enum pc_err pc_preload_spec_from_json(json_t *o, struct pc_preload_spec *spec /* OUT */,
                                      struct pc_error *err);

/* The spec as pc_preload_spec_from_json reads it. The caller decrefs. */
json_t *pc_preload_spec_to_json(const struct pc_preload_spec *spec);

struct pc_server;
struct pc_preloader;

struct pc_preloader_config {
    const struct pc_preload_spec *specs; /* copied */
    size_t n_specs;
    int64_t timeout_ms;         /* per attempt and per health check */
    int64_t health_interval_ms; /* between health checks; <= 0: none */
    int64_t retry_max_ms;       /* the longest wait between two attempts */
    size_t max_parallel;        /* warm-ups that load at once */
};

/* Make the preloader: every model "loading", nothing started, so that the status and /ready
 * are right from the server's first request. On success *out is freed with pc_preloader_stop. */
enum pc_err pc_preloader_new(struct pc_server *srv, const struct pc_preloader_config *cfg,
                             struct pc_preloader **out /* OUT */, struct pc_error *err);

/* Start one thread per model, at once: the server keeps serving meanwhile. With no required
 * model, readiness (and sd_notify READY=1) comes at once. Call once. */
enum pc_err pc_preloader_run(struct pc_preloader *pl, struct pc_error *err);

/* Stop retrying and checking, and wait for attempts in flight. The preloader stays, so that the
 * pool's hooks may still call it while the pool is freed. NULL does nothing. */
void pc_preloader_stop(struct pc_preloader *pl);

/* Stop if not stopped, and free (also one that never ran). NULL does nothing. */
void pc_preloader_free(struct pc_preloader *pl);

/* The pool's hooks: a model that the pool unloaded (why as pc_pool_config.on_unload says; not
 * "stopped") is "unloaded" at once, and its thread looks at once whether its schedule wants it
 * warm again; a model that a request loads again is "ready" again. */
void pc_preloader_on_unload(struct pc_preloader *pl, const char *name, const char *why);
void pc_preloader_on_load(struct pc_preloader *pl, const char *name);

/* {model: {status, displayName, preloadedAt, lastChecked, attempts, error, ...}} as seed 001's
 * /api/models/status. The caller decrefs. */
json_t *pc_preloader_status(struct pc_preloader *pl);

/* Whether every required model is warm; *pending (may be NULL) gets the names of those that
 * are not, as a new JSON array, and *failed (may be NULL) those of them whose preload gave up.
 * NULL pl: ready, nothing pending. */
bool pc_preloader_ready(struct pc_preloader *pl, json_t **pending /* OUT */,
                        json_t **failed /* OUT */);

#endif
