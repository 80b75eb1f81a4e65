/* queue.h - inference requests waiting for a model (for its load or for its context), counted
 * per model, under a limit: the numbers behind max_queue and the queue-depth metric. */
#ifndef PC_QUEUE_H
#define PC_QUEUE_H

#include <stddef.h>

#include "../base/err.h"

struct pc_queue;

/* A queue that admits up to max waiting requests per model (0: no limit). NULL when memory
 * runs out. pc_queue_free(NULL) does nothing. */
struct pc_queue *pc_queue_new(size_t max);
void pc_queue_free(struct pc_queue *q);

size_t pc_queue_max(const struct pc_queue *q);

/* Count a request that waits for model: PC_OK, to be paired with one pc_queue_leave. When max
 * requests wait for it already, PC_ERR_BUSY and nothing is counted; PC_ERR_NOMEM when memory
 * runs out. *waiting (may be NULL) gets how many waited before this call. */
enum pc_err pc_queue_enter(struct pc_queue *q, const char *model, size_t *waiting /* OUT */);
void pc_queue_leave(struct pc_queue *q, const char *model);

/* How many requests wait for model now. */
size_t pc_queue_waiting(struct pc_queue *q, const char *model);

struct pc_queue_count {
    char model[256];
    size_t waiting;
};

/* Copy out the models that have requests waiting. *out is malloc'd (NULL when there are
 * none); the caller frees it. Returns the count. */
size_t pc_queue_list(struct pc_queue *q, struct pc_queue_count **out /* OUT */);

#endif
