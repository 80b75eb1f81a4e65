/* fnv.h - FNV-1a, 64 bits: the checksum of snapshot files and values, and the hash of a token
 * sequence that names a snapshot on every host (the same tokens give the same hash anywhere). */
#ifndef PC_FNV_H
#define PC_FNV_H

#include <stddef.h>
#include <stdint.h>

#define PC_FNV_SEED 14695981039346656037ull

/* Continue hash h over n bytes at p; start with PC_FNV_SEED. */
static inline uint64_t pc_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

#endif
