/* cache.h - the models in the store as a cache: list, get, remove, clear, prune to a size by
 * least recent use, clean by age, and a usage report. The manifest says when each model was
 * used; the files say what there is. */
#ifndef PC_CACHE_H
#define PC_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

struct pc_cache_model {
    char id[256];
    char path[1024]; /* <models_dir>/<id>.gguf */
    uint64_t size_bytes;
    char checksum[72];     /* "sha256:<hex>" or "" when not known */
    int64_t downloaded_at; /* Unix seconds */
    int64_t last_used;     /* Unix seconds; 0 for never */
    uint64_t use_count;
};

/* When a model was last of use: its last load, or its download when it was never loaded. */
int64_t pc_cache_last_touch(const struct pc_cache_model *m);

/* The models in the store, sorted by id. *out is malloc'd (NULL when there are none); the
 * caller frees it. */
enum pc_err pc_cache_list(const char *models_dir, struct pc_cache_model **out /* OUT */,
                          size_t *n /* OUT */, struct pc_error *err);

/* One model by store name. PC_ERR_NOT_FOUND when the store does not have it. */
enum pc_err pc_cache_get(const char *models_dir, const char *id,
                         struct pc_cache_model *out /* OUT */, struct pc_error *err);

/* Delete a model's file (and any partial download of it), then its manifest entry.
 * PC_ERR_NOT_FOUND when there is neither; PC_ERR_BUSY while it is being downloaded;
 * PC_ERR_BAD_PATH for an unsafe id. Whether a daemon has it loaded is the caller's question. */
enum pc_err pc_cache_remove(const char *models_dir, const char *id, struct pc_error *err);

/* What the bulk operations may touch, and what they tell. */
struct pc_cache_hooks {
    bool (*keep)(void *user, const char *id); /* true: leave this model alone; may be NULL */
    void (*removed)(void *user, const struct pc_cache_model *m); /* after each; may be NULL */
    void *user;
};

struct pc_cache_freed {
    size_t models;
    uint64_t model_bytes;
    size_t parts; /* partial downloads */
    uint64_t part_bytes;
    uint64_t remaining_bytes; /* in models, afterwards */
};

/* Remove every model but those kept. hooks and freed may be NULL. */
enum pc_err pc_cache_clear(const char *models_dir, const struct pc_cache_hooks *hooks,
                           struct pc_cache_freed *freed /* OUT */, struct pc_error *err);

/* Remove the least recently used models until the models take max_bytes or less. Kept models
 * count, but stay: freed->remaining_bytes may then be above max_bytes. */
enum pc_err pc_cache_prune(const char *models_dir, uint64_t max_bytes,
                           const struct pc_cache_hooks *hooks,
                           struct pc_cache_freed *freed /* OUT */, struct pc_error *err);

/* Make room for id, whose new file takes need bytes, in a store limited to max_bytes: remove
 * the least recently used models (never id, nor those the hooks keep) until the other models
 * and the new file fit. PC_ERR_CACHE_FULL ("cache full: need X for id, limit Y, held by Z")
 * when the kept models leave no room, or the file alone is larger than the limit. */
enum pc_err pc_cache_make_room(const char *models_dir, const char *id, uint64_t need,
                               uint64_t max_bytes, const struct pc_cache_hooks *hooks,
                               struct pc_error *err);

/* Remove partial downloads older than a day, and, when older_than_s > 0, the models not used
 * for that long. */
enum pc_err pc_cache_clean(const char *models_dir, int64_t older_than_s,
                           const struct pc_cache_hooks *hooks,
                           struct pc_cache_freed *freed /* OUT */, struct pc_error *err);

#define PC_CACHE_PART_MAX_AGE_S (24 * 3600)

struct pc_cache_usage {
    size_t models;
    uint64_t model_bytes;
    size_t parts;
    uint64_t part_bytes;
    uint64_t disk_free; /* bytes available on the file system of the store */
    uint64_t disk_total;
    int64_t oldest_touch; /* pc_cache_last_touch of the least recently used model; 0 if none */
    int64_t newest_touch;
    uint64_t total_uses;
};

/* Sizes and ages for `model cache --usage`. */
enum pc_err pc_cache_usage(const char *models_dir, struct pc_cache_usage *out /* OUT */,
                           struct pc_error *err);

/* Parse an age: "30d", "12h", "90m", "45s", "2w", or a bare number of days. -1 on bad input. */
int64_t pc_cache_parse_age(const char *s);

#endif
