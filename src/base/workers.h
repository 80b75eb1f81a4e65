/* workers.h - a pool of threads that grows with the work in flight and shrinks when idle.
 *
 * For work that may block for long (an HTTP handler that loads a model): a task never waits
 * for another task to finish, so the pool starts a thread whenever none is idle, up to its
 * maximum; beyond it tasks wait in order. Threads idle for a while exit. */
#ifndef PC_WORKERS_H
#define PC_WORKERS_H

#include <stdbool.h>
#include <stddef.h>

struct pc_workers;

/* A pool of at most max threads (none started yet). NULL when memory runs out. */
struct pc_workers *pc_workers_new(size_t max);

/* Run fn(arg) on a pool thread. False (and fn is not called) when memory runs out or no thread
 * can be started while none runs. */
bool pc_workers_submit(struct pc_workers *w, void (*fn)(void *arg), void *arg);

/* The threads the pool has now, busy or idle. */
size_t pc_workers_threads(struct pc_workers *w);

/* Run the tasks already submitted to their end, stop the threads and free w. NULL does
 * nothing. */
void pc_workers_free(struct pc_workers *w);

#endif
