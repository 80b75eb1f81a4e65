/* snaptier.h - the seam between the snapshot store and a shared tier behind its disk: snapshots
 * that any daemon holding the same model file made, found by the file's sha256 and by tokens.
 *
 * src/fleet implements it on Redis (fleet_snaps.c). The store calls it only off the decode loops
 * (a request's thread before its task starts, a precharge worker after its prefill), never with
 * its lock held, and takes any error as "not shared": the request prefills as it would without
 * the tier. Values are opaque to the tier; their format is snapwire.h's. */
#ifndef PC_SNAPTIER_H
#define PC_SNAPTIER_H

#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

struct pc_snaptier {
    const char *name; /* the tier as responses and metrics name it: "redis" */
    void *user;
    /* Of model sha256's shared snapshots (64 hex digits), the one whose tokens share the longest
     * prefix with toks[0..n), if that prefix is longer than more_than tokens, leaving out the
     * n_skip token hashes in skip (they failed to restore here): its value, malloc'd into *value
     * (the caller frees). PC_ERR_NOT_FOUND when no snapshot gives more; any other code when the
     * tier could not be asked (err says why). */
    enum pc_err (*fetch)(void *user, const char *sha256, const int32_t *toks, size_t n,
                         size_t more_than, const char (*skip)[17], size_t n_skip,
                         uint8_t **value /* OUT */, size_t *size /* OUT */, struct pc_error *err);
    /* Share value, the snapshot of toks[0..n) whose hash is tokhash (16 hex digits,
     * pc_snapwire_tokhash), under the tier's budget and expiry. The tier borrows value. */
    enum pc_err (*store)(void *user, const char *sha256, const char *tokhash, const int32_t *toks,
                         size_t n, const uint8_t *value, size_t size, struct pc_error *err);
};

#endif
