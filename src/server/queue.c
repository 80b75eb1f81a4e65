/* queue.c - per-model counts of waiting inference requests, with the max_queue limit. */
#include "queue.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct pc_queue {
    size_t max;
    /* lock guards counts and n: one entry per model with requests waiting, none at 0. */
    pthread_mutex_t lock;
    struct pc_queue_count *counts;
    size_t n, cap;
};

struct pc_queue *pc_queue_new(size_t max)
{
    struct pc_queue *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->max = max;
    pthread_mutex_init(&q->lock, NULL);
    return q;
}

void pc_queue_free(struct pc_queue *q)
{
    if (q == NULL)
        return;
    pthread_mutex_destroy(&q->lock);
    free(q->counts);
    free(q);
}

size_t pc_queue_max(const struct pc_queue *q)
{
    return q->max;
}

/* Lock held: the model's entry, or NULL. */
static struct pc_queue_count *find(struct pc_queue *q, const char *model)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->counts[i].model, model) == 0)
            return &q->counts[i];
    return NULL;
}

/* Lock held: a new entry at 0, or NULL when memory runs out or the name does not fit. */
static struct pc_queue_count *add(struct pc_queue *q, const char *model)
{
    if (strlen(model) >= sizeof(q->counts[0].model))
        return NULL;
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 8;
        struct pc_queue_count *c = realloc(q->counts, cap * sizeof(*c));
        if (c == NULL)
            return NULL;
        q->counts = c;
        q->cap = cap;
    }
    struct pc_queue_count *c = &q->counts[q->n++];
    strcpy(c->model, model);
    c->waiting = 0;
    return c;
}

enum pc_err pc_queue_enter(struct pc_queue *q, const char *model, size_t *waiting)
{
    enum pc_err rc = PC_OK;
    pthread_mutex_lock(&q->lock);
    struct pc_queue_count *c = find(q, model);
    size_t before = c ? c->waiting : 0;
    if (q->max > 0 && before >= q->max)
        rc = PC_ERR_BUSY;
    else if (c == NULL && (c = add(q, model)) == NULL)
        rc = PC_ERR_NOMEM;
    else
        c->waiting++;
    pthread_mutex_unlock(&q->lock);
    if (waiting != NULL)
        *waiting = before;
    return rc;
}

void pc_queue_leave(struct pc_queue *q, const char *model)
{
    pthread_mutex_lock(&q->lock);
    struct pc_queue_count *c = find(q, model);
    if (c != NULL && --c->waiting == 0)
        *c = q->counts[--q->n];
    pthread_mutex_unlock(&q->lock);
}

size_t pc_queue_waiting(struct pc_queue *q, const char *model)
{
    pthread_mutex_lock(&q->lock);
    struct pc_queue_count *c = find(q, model);
    size_t n = c ? c->waiting : 0;
    pthread_mutex_unlock(&q->lock);
    return n;
}

size_t pc_queue_list(struct pc_queue *q, struct pc_queue_count **out)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->n;
    *out = n ? malloc(n * sizeof(**out)) : NULL;
    if (*out != NULL)
        memcpy(*out, q->counts, n * sizeof(**out));
    else
        n = 0;
    pthread_mutex_unlock(&q->lock);
    return n;
}
