/* pool.h - the resident models: loaded once, shared by reference count, held under a count
 * limit and a memory budget, evicted by policy, pinned, and unloaded when their keep-alive
 * runs out. */
#ifndef PC_POOL_H
#define PC_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"
#include "../catalog/hw.h"
#include "../engine/engine.h"

/* Which idle model makes room when a load needs it. */
enum pc_pool_policy {
    PC_POOL_LRU,  /* least recently used (the default) */
    PC_POOL_LFU,  /* least frequently used; ties go to the least recently used */
    PC_POOL_FIFO, /* first loaded */
};

/* "lru", "lfu", "fifo" -> *out. Returns false for anything else. */
bool pc_pool_policy_parse(const char *s, enum pc_pool_policy *out /* OUT */);
const char *pc_pool_policy_name(enum pc_pool_policy policy);

struct pc_pool_entry;

struct pc_pool_config {
    size_t max_models;                   /* resident at once; at least 1 */
    int64_t default_keep_alive_ns;       /* PC_DURATION_FOREVER for never */
    struct pc_model_params model_params; /* how models are loaded */
    uint64_t budget_bytes;               /* host + device bytes for models; 0: no byte limit */
    enum pc_pool_policy policy;
    /* Optional: called for every model the pool frees, with no pool lock held, just before the
     * model is freed; for whoever charged memory to it (pc_pool_charge) to drop what belongs to
     * the model, and for events. why: "evicted" (room for another), "expired" (keep-alive),
     * "unloaded" (asked for), "stopped" (the pool is freed). */
    void (*on_unload)(void *user, const char *name, struct pc_model *m, const char *why);
    void *on_unload_user;
    /* Optional: called once a model has loaded, with no pool lock held, before anyone can
     * use it (the one place for what follows every load: identity, snapshots, events,
     * metrics). */
    void (*on_load)(void *user, const char *name, struct pc_model *m);
    void *on_load_user;
};

/* The budget to use when none is configured: RAM that this process may use now (a container's
 * limit wins over the host's), less a headroom for the system and the daemon of the larger of
 * 1 GiB and 10 % of the RAM total, but never more than half of what is available; plus the
 * free memory of the GPUs. *headroom (may be NULL) gets the RAM kept back. */
uint64_t pc_pool_default_budget(const struct pc_hw *hw, uint64_t *headroom /* OUT */);

struct pc_pool;

/* Start a pool and its keep-alive timer. Returns NULL when memory or threads run out.
 * Free with pc_pool_free, which unloads every model (the caller makes sure none is in use). */
struct pc_pool *pc_pool_new(const struct pc_pool_config *cfg);
void pc_pool_free(struct pc_pool *p);

/* How one acquire behaves; start from pc_pool_acquire_default_params(). */
struct pc_pool_acquire_params {
    int64_t keep_alive_ns; /* as pc_duration_parse gives it; -1: keep the model's own */
    /* A preload: load without counting as a use. It does not move the model in the LRU or LFU
     * order, counts in stats.preloads when it loads, and is neither a hit nor a miss. */
    bool preload;
    /* When the room that a load needs is held by models in use, fail at once with PC_ERR_BUSY
     * instead of waiting for them to be released. For callers that already hold a reference
     * and so might wait for themselves. */
    bool no_wait;
    int pin; /* 1: pin the model once it is ready; 0: unpin it; -1: leave it as it is */
};

struct pc_pool_acquire_params pc_pool_acquire_default_params(void);

/* Get the model called name, loading it from path if it is not resident (path NULL: only if it
 * is resident or loading; else PC_ERR_NOT_FOUND). Concurrent callers for one model share one
 * load. Admission: before a load, the pool estimates the model's memory (pc_model_estimate)
 * and, while the count limit or the budget would be exceeded, evicts idle models that are not
 * pinned, in the order of its policy. When that cannot make room:
 *   - if the pinned models (and the model itself) leave no room whatever is released, the call
 *     fails at once with PC_ERR_NO_MEMORY: "insufficient memory: need X, free Y, pinned Z";
 *   - if models in use hold the room, the call waits for them to be released, as Ollama queues
 *     a request (or, with no_wait, fails at once with PC_ERR_BUSY).
 * No lock is held while a model is estimated, loaded or freed, so other models keep serving.
 * After the load the model's real memory (pc_model_memory) replaces the estimate.
 * On success *out holds a reference to give back with pc_pool_release; *loaded (may be NULL)
 * says whether this call loaded the model. On failure *out is NULL. */
enum pc_err pc_pool_acquire_with(struct pc_pool *p, const char *name, const char *path,
                                 const struct pc_pool_acquire_params *params,
                                 struct pc_pool_entry **out /* OUT */, bool *loaded /* OUT */,
                                 struct pc_error *err);

/* pc_pool_acquire_with as a use, with keep_alive_ns (-1: the model's own, or the pool's
 * default for a new one) as the model's keep-alive, counted from the release of its last
 * user; 0 unloads it then (unless it is pinned). */
enum pc_err pc_pool_acquire(struct pc_pool *p, const char *name, const char *path,
                            int64_t keep_alive_ns, struct pc_pool_entry **out /* OUT */,
                            bool *loaded /* OUT */, struct pc_error *err);

/* Load without counting as a use, and keep no reference: see pc_pool_acquire_params.preload.
 * pin as there. *loaded (may be NULL) says whether this call loaded the model. */
enum pc_err pc_pool_preload(struct pc_pool *p, const char *name, const char *path,
                            int64_t keep_alive_ns, int pin, bool *loaded /* OUT */,
                            struct pc_error *err);

struct pc_model *pc_pool_entry_model(const struct pc_pool_entry *e);

/* Give a reference back; the model's keep-alive runs from now. */
void pc_pool_release(struct pc_pool *p, struct pc_pool_entry *e);

/* Give back a reference that only looked at a resident model (a health check, acquired as a
 * preload with no path): its keep-alive expiry stays where the last use put it, and a model
 * whose expiry passed meanwhile is unloaded now, so that checks never keep a model loaded. */
void pc_pool_release_look(struct pc_pool *p, struct pc_pool_entry *e);

/* Add delta_bytes (negative to give back) to what the resident model e costs: memory that the
 * caller keeps for this model outside llama.cpp (KV snapshots in RAM). It counts in the budget,
 * in the model's memory and in the stats, and goes away when the model is unloaded (see
 * pc_pool_config.on_unload). It never evicts: going over the budget makes the next admission
 * evict idle models first. The caller holds a reference to e. A charge never drops below 0. */
void pc_pool_charge(struct pc_pool *p, struct pc_pool_entry *e, int64_t delta_bytes);

/* Unload name now, or, while it is in use, when its last user releases it. An explicit unload
 * wins over a pin, which it removes. Returns PC_ERR_NOT_FOUND if it is not resident.
 * *in_use (may be NULL) gets the users that the unload waits for. */
enum pc_err pc_pool_unload(struct pc_pool *p, const char *name, struct pc_error *err);
enum pc_err pc_pool_unload_ex(struct pc_pool *p, const char *name, int *in_use /* OUT */,
                              struct pc_error *err);

/* Pin a resident model (kept alive forever, never evicted) or unpin it (its keep-alive runs
 * again from now). Returns PC_ERR_NOT_FOUND if it is not resident; pc_pool_preload with pin 1
 * loads and pins in one step. */
enum pc_err pc_pool_pin(struct pc_pool *p, const char *name, bool pinned, struct pc_error *err);

struct pc_pool_status {
    char name[256];
    char path[1024];
    struct pc_model_info info;
    int64_t expires_wall_ns; /* INT64_MAX: never */
    int refs;
    uint64_t memory_bytes;  /* what the model costs now: pc_model_memory + charged */
    uint64_t charged_bytes; /* of that, pc_pool_charge's */
    bool pinned;
    uint64_t uses;             /* acquires that counted as a use */
    int64_t loaded_wall_ns;    /* when it finished loading */
    struct pc_loop_stats loop; /* what its decode loop has done */
};

/* Copy out the resident models, most recently used first. *out is malloc'd; the caller
 * frees it. Returns the count. */
size_t pc_pool_list(struct pc_pool *p, struct pc_pool_status **out /* OUT */);

struct pc_pool_stats {
    uint64_t hits;        /* uses of a model that was resident, or already loading */
    uint64_t misses;      /* uses that had to load the model (failed loads too) */
    uint64_t evictions;   /* models unloaded to make room */
    uint64_t preloads;    /* preloads that loaded a model */
    uint64_t expirations; /* models unloaded when their keep-alive ran out or was 0 */
    uint64_t rejections;  /* loads refused with PC_ERR_NO_MEMORY */
    double hit_rate;      /* hits / (hits + misses); 0 before any use */
    size_t loaded;        /* resident models, loading ones included */
    size_t pinned;
    size_t max_models;
    uint64_t used_bytes; /* resident (and reserved for loading) models' memory, charges too */
    uint64_t pinned_bytes;
    uint64_t charged_bytes;
    uint64_t budget_bytes; /* 0: no byte limit */
    bool pressure;         /* used_bytes above 80 % of budget_bytes */
    enum pc_pool_policy policy;
};

void pc_pool_stats(struct pc_pool *p, struct pc_pool_stats *out /* OUT */);

#endif
