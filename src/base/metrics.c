/* metrics.c - a registry of labelled counters, gauges and histograms, and its rendering in
 * Prometheus's text format. */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double pc_metrics_latency_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                             1,     2.5,  5,     10,   30,  60};
const size_t pc_metrics_n_latency_buckets =
    sizeof(pc_metrics_latency_buckets) / sizeof(pc_metrics_latency_buckets[0]);

enum kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

#define N_SLOTS 64 /* hash slots per family: a lookup compares about n_series / 64 */

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

/* One set of label values. */
struct series {
    struct series *next;  /* in the order made: the order rendered */
    struct series *chain; /* in the same hash slot */
    uint64_t hash;
    char *values[PC_METRIC_MAX_LABELS]; /* in the same allocation */
    double value;                       /* a counter's or a gauge's */
    double sum;                         /* a histogram's: the sum of its observations */
    uint64_t count;                     /* and their number (the +Inf bucket) */
    uint64_t buckets[];                 /* per bound: observations <= it and > the one before */
};

struct pc_metric {
    struct pc_metric *next;
    enum kind kind;
    char name[128];
    char *help;
    char labels[PC_METRIC_MAX_LABELS][64];
    size_t n_labels;
    double bounds[PC_METRIC_MAX_BUCKETS];
    size_t n_bounds;
    /* lock guards series, slots and every series' numbers. */
    pthread_mutex_t lock;
    struct series *series, **tail;
    struct series *slots[N_SLOTS];
};

struct pc_metrics {
    /* lock guards families (the list; a family is never removed before the registry goes). */
    pthread_mutex_t lock;
    struct pc_metric *families, **tail;
};

struct pc_metrics *pc_metrics_new(void)
{
    struct pc_metrics *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    r->tail = &r->families;
    return r;
}

static void series_free_all(struct pc_metric *m)
{
    for (struct series *s = m->series, *next; s; s = next) {
        next = s->next;
        free(s);
    }
    m->series = NULL;
    m->tail = &m->series;
    memset(m->slots, 0, sizeof(m->slots));
}

void pc_metrics_free(struct pc_metrics *r)
{
    if (r == NULL)
        return;
    for (struct pc_metric *m = r->families, *next; m; m = next) {
        next = m->next;
        series_free_all(m);
        pthread_mutex_destroy(&m->lock);
        free(m->help);
        free(m);
    }
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* ---- registration ------------------------------------------------------------------------ */

static bool name_char(char c, bool first, bool colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':'))
        return true;
    return !first && c >= '0' && c <= '9';
}

/* A metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or a label name ([a-zA-Z_][a-zA-Z0-9_]*, not
 * reserved by a leading "__"). */
static bool valid_name(const char *s, size_t len, bool metric)
{
    if (len == 0 || (!metric && len >= 2 && s[0] == '_' && s[1] == '_'))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!name_char(s[i], i == 0, metric))
            return false;
    return true;
}

/* Split "a,b,c" into m->labels. */
static bool parse_labels(struct pc_metric *m, const char *labels)
{
    for (const char *p = labels ? labels : ""; *p != '\0';) {
        size_t len = strcspn(p, ",");
        if (m->n_labels == PC_METRIC_MAX_LABELS || len >= sizeof(m->labels[0]) ||
            !valid_name(p, len, false))
            return false;
        memcpy(m->labels[m->n_labels], p, len);
        m->labels[m->n_labels][len] = '\0';
        if (m->kind == KIND_HISTOGRAM && strcmp(m->labels[m->n_labels], "le") == 0)
            return false;
        m->n_labels++;
        p += len;
        if (*p == ',' && *++p == '\0')
            return false;
    }
    return true;
}

static bool valid_bounds(const double *bounds, size_t n)
{
    if (n > PC_METRIC_MAX_BUCKETS)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
            return false;
    return true;
}

static struct pc_metric *family_new(enum kind kind, const char *name, const char *help,
                                    const char *labels, const double *bounds, size_t n_bounds)
{
    size_t len = strlen(name);
    if (!valid_name(name, len, true) || len >= sizeof(((struct pc_metric *)0)->name) ||
        !valid_bounds(bounds, n_bounds))
        return NULL;
    struct pc_metric *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->kind = kind;
    memcpy(m->name, name, len + 1);
    m->help = strdup(help ? help : "");
    if (m->help == NULL || !parse_labels(m, labels)) {
        free(m->help);
        free(m);
        return NULL;
    }
    if (n_bounds > 0)
        memcpy(m->bounds, bounds, n_bounds * sizeof(*bounds));
    m->n_bounds = n_bounds;
    pthread_mutex_init(&m->lock, NULL);
    m->tail = &m->series;
    return m;
}

static struct series *series_get(struct pc_metric *m, const char *const *values, bool make);

static struct pc_metric *reg(struct pc_metrics *r, enum kind kind, const char *name,
                             const char *help, const char *labels, const double *bounds,
                             size_t n_bounds)
{
    if (r == NULL)
        return NULL;
    pthread_mutex_lock(&r->lock);
    struct pc_metric *m = r->families;
    while (m != NULL && strcmp(m->name, name) != 0)
        m = m->next;
    if (m == NULL && (m = family_new(kind, name, help, labels, bounds, n_bounds)) != NULL) {
        *r->tail = m;
        r->tail = &m->next;
        if (m->n_labels == 0) /* its one series shows 0 before the first update */
            series_get(m, NULL, true);
    }
    pthread_mutex_unlock(&r->lock);
    return m != NULL && m->kind == kind ? m : NULL;
}

struct pc_metric *pc_metrics_counter(struct pc_metrics *r, const char *name, const char *help,
                                     const char *labels)
{
    return reg(r, KIND_COUNTER, name, help, labels, NULL, 0);
}

struct pc_metric *pc_metrics_gauge(struct pc_metrics *r, const char *name, const char *help,
                                   const char *labels)
{
    return reg(r, KIND_GAUGE, name, help, labels, NULL, 0);
}

struct pc_metric *pc_metrics_histogram(struct pc_metrics *r, const char *name, const char *help,
                                       const char *labels, const double *bounds, size_t n_bounds)
{
    return reg(r, KIND_HISTOGRAM, name, help, labels, bounds, n_bounds);
}

/* ---- updates ----------------------------------------------------------------------------- */

static uint64_t hash_values(const struct pc_metric *m, const char *const *values)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a, with a separator byte between values */
    for (size_t i = 0; i < m->n_labels; i++) {
        for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++)
            h = (h ^ *p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;
    }
    return h;
}

static bool same_values(const struct pc_metric *m, const struct series *s, const char *const *v)
{
    for (size_t i = 0; i < m->n_labels; i++)
        if (strcmp(s->values[i], v[i]) != 0)
            return false;
    return true;
}

/* Lock held (or the family not yet shared): the series for values, made when it is new; NULL when
 * memory runs out. */
static struct series *series_get(struct pc_metric *m, const char *const *values, bool make)
{
    uint64_t h = hash_values(m, values);
    struct series **slot = &m->slots[h % N_SLOTS];
    for (struct series *s = *slot; s; s = s->chain)
        if (s->hash == h && same_values(m, s, values))
            return s;
    if (!make)
        return NULL;
    size_t head = sizeof(struct series) + m->n_bounds * sizeof(uint64_t), text = 0;
    for (size_t i = 0; i < m->n_labels; i++)
        text += strlen(values[i]) + 1;
    struct series *s = calloc(1, head + text);
    if (s == NULL)
        return NULL;
    char *p = (char *)s + head;
    for (size_t i = 0; i < m->n_labels; i++) {
        size_t len = strlen(values[i]) + 1;
        memcpy(p, values[i], len);
        s->values[i] = p;
        p += len;
    }
    s->hash = h;
    s->chain = *slot;
    *slot = s;
    *m->tail = s;
    m->tail = &s->next;
    return s;
}

static void update(struct pc_metric *m, enum kind kind, const char *const *values, double v,
                   bool set)
{
    if (m == NULL || m->kind != kind || (values == NULL && m->n_labels > 0) ||
        (kind == KIND_COUNTER && !(v >= 0)))
        return;
    pthread_mutex_lock(&m->lock);
    struct series *s = series_get(m, values, true);
    if (s != NULL && kind == KIND_HISTOGRAM) {
        size_t i = 0;
        while (i < m->n_bounds && v > m->bounds[i])
            i++;
        if (i < m->n_bounds)
            s->buckets[i]++;
        s->count++;
        s->sum += v;
    } else if (s != NULL) {
        s->value = set ? v : s->value + v;
    }
    pthread_mutex_unlock(&m->lock);
}

void pc_metric_add(struct pc_metric *m, const char *const *values, double delta)
{
    update(m, m != NULL && m->kind == KIND_GAUGE ? KIND_GAUGE : KIND_COUNTER, values, delta, false);
}

void pc_metric_set(struct pc_metric *m, const char *const *values, double value)
{
    update(m, KIND_GAUGE, values, value, true);
}

void pc_metric_set_total(struct pc_metric *m, const char *const *values, double value)
{
    update(m, KIND_COUNTER, values, value, true);
}

void pc_metric_observe(struct pc_metric *m, const char *const *values, double value)
{
    update(m, KIND_HISTOGRAM, values, value, false);
}

void pc_metric_clear(struct pc_metric *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    series_free_all(m);
    if (m->n_labels == 0)
        series_get(m, NULL, true);
    pthread_mutex_unlock(&m->lock);
}

double pc_metric_value(struct pc_metric *m, const char *const *values)
{
    if (m == NULL || (values == NULL && m->n_labels > 0))
        return 0;
    pthread_mutex_lock(&m->lock);
    struct series *s = series_get(m, values, false);
    double v = s == NULL ? 0 : m->kind == KIND_HISTOGRAM ? (double)s->count : s->value;
    pthread_mutex_unlock(&m->lock);
    return v;
}

/* ---- rendering --------------------------------------------------------------------------- */

/* A sample value as Go's strconv formats it for Prometheus: "+Inf", "NaN", integers without
 * a fraction, others in the shortest form that reads back exactly. */
static const char *fmt_value(double v, char *buf, size_t size)
{
    if (isnan(v))
        return "NaN";
    if (isinf(v))
        return v > 0 ? "+Inf" : "-Inf";
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, size, "%.0f", v);
        return buf;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

/* Escape for a label value (quote too) or a HELP text: backslash, newline, and quote. */
static bool append_escaped(struct pc_buf *out, const char *s, bool quote)
{
    for (const char *p = s; *p != '\0';) {
        size_t n = strcspn(p, quote ? "\\\"\n" : "\\\n");
        if (n > 0 && !pc_buf_append(out, p, n))
            return false;
        p += n;
        if (*p == '\0')
            break;
        const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : "\\n";
        if (!pc_buf_appends(out, esc))
            return false;
        p++;
    }
    return true;
}

/* name{labels,le="..."} value */
static bool append_sample(struct pc_buf *out, const struct pc_metric *m, const char *suffix,
                          const struct series *s, const char *le, double value)
{
    char num[40];
    bool ok = pc_buf_appends(out, m->name) && pc_buf_appends(out, suffix);
    size_t n = s != NULL ? m->n_labels : 0;
    if (ok && (n > 0 || le != NULL))
        ok = pc_buf_appends(out, "{");
    for (size_t i = 0; ok && i < n; i++)
        ok = pc_buf_printf(out, "%s%s=\"", i ? "," : "", m->labels[i]) &&
             append_escaped(out, s->values[i], true) && pc_buf_appends(out, "\"");
    if (ok && le != NULL)
        ok = pc_buf_printf(out, "%sle=\"%s\"", n ? "," : "", le);
    if (ok && (n > 0 || le != NULL))
        ok = pc_buf_appends(out, "}");
    return ok && pc_buf_printf(out, " %s\n", fmt_value(value, num, sizeof(num)));
}

static bool append_histogram(struct pc_buf *out, const struct pc_metric *m, const struct series *s)
{
    char le[40];
    uint64_t cum = 0;
    for (size_t i = 0; i < m->n_bounds; i++) {
        cum += s->buckets[i];
        if (!append_sample(out, m, "_bucket", s, fmt_value(m->bounds[i], le, sizeof(le)),
                           (double)cum))
            return false;
    }
    return append_sample(out, m, "_bucket", s, "+Inf", (double)s->count) &&
           append_sample(out, m, "_sum", s, NULL, s->sum) &&
           append_sample(out, m, "_count", s, NULL, (double)s->count);
}

/* Lock held. */
static bool append_family(struct pc_buf *out, const struct pc_metric *m)
{
    bool ok = pc_buf_printf(out, "# HELP %s ", m->name) && append_escaped(out, m->help, false) &&
              pc_buf_printf(out, "\n# TYPE %s %s\n", m->name, kind_names[m->kind]);
    for (const struct series *s = m->series; ok && s; s = s->next)
        ok = m->kind == KIND_HISTOGRAM ? append_histogram(out, m, s)
                                       : append_sample(out, m, "", s, NULL, s->value);
    return ok;
}

bool pc_metrics_render(struct pc_metrics *r, struct pc_buf *out)
{
    bool ok = true;
    pthread_mutex_lock(&r->lock);
    for (struct pc_metric *m = r->families; ok && m; m = m->next) {
        pthread_mutex_lock(&m->lock);
        ok = append_family(out, m);
        pthread_mutex_unlock(&m->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return ok;
}
