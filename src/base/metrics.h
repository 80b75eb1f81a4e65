/* metrics.h - counters, gauges and histograms with labels, rendered in Prometheus's text
 * exposition format (version 0.0.4).
 *
 * A registry holds metric families; a family has a name, a help text, label names and, for a
 * histogram, bucket bounds. A series (one set of label values) is made the first time it is
 * touched and lives as long as the registry, so that an update allocates only then. Every
 * function is thread-safe: each family has a short lock, held only while a value changes or
 * the family is rendered. Label values are bounded by the caller (route patterns, model names,
 * tiers): a raw path or a client's text never becomes one. */
#ifndef PC_METRICS_H
#define PC_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define PC_METRIC_MAX_LABELS 4
#define PC_METRIC_MAX_BUCKETS 32

/* The text format's Content-Type. */
#define PC_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Bucket bounds for latencies in seconds, 5 ms to 60 s. */
extern const double pc_metrics_latency_buckets[];
extern const size_t pc_metrics_n_latency_buckets;

struct pc_metrics;
struct pc_metric;

/* A registry; free with pc_metrics_free (NULL does nothing). NULL when memory runs out. */
struct pc_metrics *pc_metrics_new(void);
void pc_metrics_free(struct pc_metrics *r);

/* Register a family, kept and rendered in the order of registration. name is a Prometheus
 * metric name; labels are label names separated by commas ("route,method,status"), or "" or
 * NULL for none. A histogram takes its bucket bounds in increasing order (the +Inf bucket is
 * implied) and may not have a label called "le". Registering a name again returns the family
 * that has it. The family belongs to the registry. NULL for an invalid name, label or bounds,
 * or when memory runs out: every update of a NULL family does nothing. */
struct pc_metric *pc_metrics_counter(struct pc_metrics *r, const char *name, const char *help,
                                     const char *labels);
struct pc_metric *pc_metrics_gauge(struct pc_metrics *r, const char *name, const char *help,
                                   const char *labels);
struct pc_metric *pc_metrics_histogram(struct pc_metrics *r, const char *name, const char *help,
                                       const char *labels, const double *bounds, size_t n_bounds);

/* values: one per label name, in their order (NULL for a family without labels); copied.
 * Add to a counter (delta >= 0) or a gauge. */
void pc_metric_add(struct pc_metric *m, const char *const *values, double delta);
/* Set a gauge. */
void pc_metric_set(struct pc_metric *m, const char *const *values, double value);

/* A counter's value, read from a source that counts by itself (a model's decode loop): for
 * collectors that copy a total at scrape time. The source's restart is a counter reset. */
void pc_metric_set_total(struct pc_metric *m, const char *const *values, double value);
/* Count one observation in a histogram. */
void pc_metric_observe(struct pc_metric *m, const char *const *values, double value);
/* Forget every series of a family: for gauges that are set afresh from their source at each
 * scrape, so that a model that left leaves no stale series. */
void pc_metric_clear(struct pc_metric *m);

/* The series' value (a histogram's count); 0 when the series does not exist. For tests and
 * for callers that report a value elsewhere too. */
double pc_metric_value(struct pc_metric *m, const char *const *values);

/* Append every family in text format: "# HELP", "# TYPE", then its samples. A family with
 * no labels shows 0 before its first update. Returns false when memory ran out. */
bool pc_metrics_render(struct pc_metrics *r, struct pc_buf *out);

#endif
