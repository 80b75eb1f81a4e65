/* metrics_api.h - the daemon's metrics: the families that requests, loads and unloads update
 * as they happen, and GET /metrics, which sets the gauges that it reads from the pool, the
 * queues and the snapshot store when it is scraped, then renders the registry. */
#ifndef PC_METRICS_API_H
#define PC_METRICS_API_H

#include <pthread.h>

#include "../base/err.h"
#include "../base/metrics.h"
#include "http.h"

struct pc_server_metrics {
    struct pc_metrics *reg;
    /* Updated as things happen. */
    struct pc_metric *prompt_tokens, *reused_tokens, *prefilled_tokens, *generated_tokens;
    struct pc_metric *ttft, *prefill;
    struct pc_metric *snapshot_hits, *snapshot_misses;
    struct pc_metric *loads, *load_seconds, *unloads;
    struct pc_metric *rejected;
    /* Set from their source at each scrape. */
    struct pc_metric *queue_waiting, *queue_max, *precharge_queued, *precharge_running;
    struct pc_metric *models_loaded, *memory_budget, *memory_used, *model_memory;
    struct pc_metric *snapshot_bytes, *snapshot_budget;
    struct pc_metric *event_streams;
    /* Read from each resident model's decode loop at scrape time. */
    struct pc_metric *decode_steps, *decode_tokens, *decode_batched, *decode_preempted;
    struct pc_metric *decode_yielded, *decode_cancelled, *decode_shifts;
    struct pc_metric *decode_active, *decode_waiting, *decode_threads;
    /* scrape_lock: one scrape at a time clears, sets and renders the gauges. */
    pthread_mutex_t scrape_lock;
};

/* Make the registry and its families. PC_ERR_NOMEM when memory runs out. */
enum pc_err pc_server_metrics_init(struct pc_server_metrics *m, struct pc_error *err);
void pc_server_metrics_free(struct pc_server_metrics *m);

struct pc_infer;
struct pc_model;

/* A request's prompt is in the context: its prefill time, and where its prefix came from
 * (a tier of snapshots, or none). */
void pc_server_metrics_started(struct pc_server_metrics *m, const struct pc_infer *inf);
/* Its first piece of answer is out: time to first token, from the request's arrival. */
void pc_server_metrics_first_token(struct pc_server_metrics *m, const struct pc_infer *inf);
/* It has ended: its prompt and generated tokens. */
void pc_server_metrics_finished(struct pc_server_metrics *m, const struct pc_infer *inf);
/* A request was refused because max_queue requests wait for its model. */
void pc_server_metrics_rejected(struct pc_server_metrics *m, const char *model);

/* The pool loaded or unloaded a model (why: evicted, expired, unloaded, stopped). */
void pc_server_metrics_loaded(struct pc_server_metrics *m, const char *name,
                              const struct pc_model *model);
void pc_server_metrics_unloaded(struct pc_server_metrics *m, const char *name, const char *why);

/* GET /metrics. */
extern const struct pc_http_route pc_metrics_routes[];

#endif
