/* snapindex.h - the shared snapshot tier's index of each model (token hash -> tokens) as this
 * daemon last read it from Redis, read again only when its version key says it changed: a
 * request then costs one small GET, not the whole index, while no daemon stores or drops. */
#ifndef PC_FLEET_SNAPINDEX_H
#define PC_FLEET_SNAPINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"
#include "redis.h"

struct pc_snapindex;

/* NULL when out of memory. Used under its caller's lock, with one connection. */
struct pc_snapindex *pc_snapindex_new(void);
void pc_snapindex_free(struct pc_snapindex *ix);

/* Of model sha256's shared snapshots, the token hash (not one of the n_skip in skip) whose
 * tokens share the longest prefix with toks[0..n), if longer than more_than, into tokhash.
 * Asks r for the index's version, and for the index when that changed (or r reconnected).
 * PC_ERR_NOT_FOUND when none gives more; pc_redis_command's codes when Redis could not be
 * asked. */
enum pc_err pc_snapindex_best(struct pc_snapindex *ix, struct pc_redis *r, const char *sha256,
                              const int32_t *toks, size_t n, size_t more_than,
                              const char (*skip)[17], size_t n_skip, char tokhash[17] /* OUT */,
                              struct pc_error *err);

#endif
