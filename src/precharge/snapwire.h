/* snapwire.h - a snapshot as one value for a shared tier: its tokens and llama.cpp's sequence
 * state, checked by a checksum, so that a daemon restores only what another wrote whole. */
#ifndef PC_SNAPWIRE_H
#define PC_SNAPWIRE_H

#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

/* The hash that names a token sequence on every host: FNV-1a of the int32 tokens, 16 hex digits
 * (the same as the local tiers' file names carry). */
void pc_snapwire_tokhash(const int32_t *toks, size_t n, char out[17] /* OUT */);

/* Encode toks and blob as one value: "PCSHARE1" | u32 n | u32 0 | u64 blob size | int32 tokens |
 * blob | u64 FNV-1a of everything before it. *out is malloc'd; the caller frees it. */
enum pc_err pc_snapwire_encode(const int32_t *toks, size_t n, const uint8_t *blob, size_t size,
                               uint8_t **out /* OUT */, size_t *out_size /* OUT */,
                               struct pc_error *err);

/* Check a value and find its parts: *toks (copied, malloc'd: the caller frees it) and *blob
 * (pointing into value). PC_ERR_CHECKSUM for a value that is not whole or not ours. */
enum pc_err pc_snapwire_decode(const uint8_t *value, size_t size, int32_t **toks /* OUT */,
                               size_t *n /* OUT */, const uint8_t **blob /* OUT */,
                               size_t *blob_size /* OUT */, struct pc_error *err);

#endif
