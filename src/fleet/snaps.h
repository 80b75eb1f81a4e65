/* snaps.h - the shared snapshot tier on Redis (issue #18): precharged snapshots that every
 * daemon holding the same model file (the same sha256) can restore, under one byte budget for
 * the whole fleet and an expiry. It implements the snapshot store's seam, snaptier.h.
 *
 * Keys (all under "precharge:snap:"):
 *   v:<sha256>:<tokhash>  the value (snapwire.h: tokens, state, checksum), expiring
 *   idx:<sha256>          a hash tokhash -> the tokens (int32, little-endian): a daemon matches
 *                         a prompt against a model's shared contexts by prefix from it alone
 *   ver:<sha256>          raised at every change of idx:<sha256>: a daemon keeps the index it
 *                         read (snapindex.h) and reads it again only when this moved
 *   lru                   a sorted set "<sha256>:<tokhash>" by last use (Redis's clock, ms)
 *   bytes, total          what each entry counts against the budget, and their sum
 * Writes and their evictions run as one Lua script, so that daemons writing at once cannot pass
 * the budget together. */
#ifndef PC_FLEET_SNAPS_H
#define PC_FLEET_SNAPS_H

#include <stdint.h>

#include "../base/err.h"
#include "../precharge/snaptier.h"
#include "url.h"

struct pc_fleet_snaps;

struct pc_fleet_snaps_config {
    struct pc_redis_url url;
    uint64_t budget_bytes; /* for the whole fleet: values, their tokens and their keys */
    int64_t ttl_ms;        /* an entry not used (stored or restored) for this long expires */
};

/* The tier on cfg->url. Connects lazily (a Redis that is away is no error here: the tier is
 * skipped until it is back). Free with pc_fleet_snaps_close. */
enum pc_err pc_fleet_snaps_open(const struct pc_fleet_snaps_config *cfg,
                                struct pc_fleet_snaps **out /* OUT */, struct pc_error *err);
void pc_fleet_snaps_close(struct pc_fleet_snaps *fs);

/* The seam for pc_snapstore_set_tier; it lives as long as fs. */
const struct pc_snaptier *pc_fleet_snaps_tier(struct pc_fleet_snaps *fs);

#endif
