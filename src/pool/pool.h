/* pool.h - the resident models: loaded once, shared by reference count, unloaded when their
 * keep-alive runs out or room is needed. */
#ifndef PC_POOL_H
#define PC_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"
#include "../engine/engine.h"

struct pc_pool_config {
    size_t max_models;                   /* resident at once; at least 1 */
    int64_t default_keep_alive_ns;       /* PC_DURATION_FOREVER for never */
    struct pc_model_params model_params; /* how models are loaded */
};

struct pc_pool;
struct pc_pool_entry;

/* Start a pool and its keep-alive timer. Returns NULL when memory or threads run out.
 * Free with pc_pool_free, which unloads every model (the caller makes sure none is in use). */
struct pc_pool *pc_pool_new(const struct pc_pool_config *cfg);
void pc_pool_free(struct pc_pool *p);

/* Get the model called name, loading it from path if it is not resident. Concurrent callers
 * for one model share one load. When the pool is full, the least recently used idle model is
 * unloaded first; if every resident model is in use, the call waits for one to be released.
 * keep_alive_ns (as pc_duration_parse gives it, or -1 for the pool's default) becomes the
 * model's keep-alive, counted from the release of its last user; 0 unloads it then.
 * On success *out holds a reference to give back with pc_pool_release; *loaded (may be NULL)
 * says whether this call loaded the model. */
enum pc_err pc_pool_acquire(struct pc_pool *p, const char *name, const char *path,
                            int64_t keep_alive_ns, struct pc_pool_entry **out /* OUT */,
                            bool *loaded /* OUT */, struct pc_error *err);

struct pc_model *pc_pool_entry_model(const struct pc_pool_entry *e);

/* Give a reference back; the model's keep-alive runs from now. */
void pc_pool_release(struct pc_pool *p, struct pc_pool_entry *e);

/* Unload name now, or, while it is in use, when its last user releases it.
 * Returns PC_ERR_NOT_FOUND if it is not resident. */
enum pc_err pc_pool_unload(struct pc_pool *p, const char *name, struct pc_error *err);

struct pc_pool_status {
    char name[256];
    char path[1024];
    struct pc_model_info info;
    int64_t expires_wall_ns; /* INT64_MAX: never */
    int refs;
};

/* Copy out the resident models, most recently used first. *out is malloc'd; the caller
 * frees it. Returns the count. */
size_t pc_pool_list(struct pc_pool *p, struct pc_pool_status **out /* OUT */);

#endif
