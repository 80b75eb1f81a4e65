/* snapwire.c - the shared tier's value of a snapshot: encode, and check before a restore. */
#include "snapwire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/fnv.h"

#define MAGIC "PCSHARE1"
#define HEAD (8 + 4 + 4 + 8)

void pc_snapwire_tokhash(const int32_t *toks, size_t n, char out[17])
{
    snprintf(out, 17, "%016llx",
             (unsigned long long)pc_fnv1a(PC_FNV_SEED, toks, n * sizeof(int32_t)));
}

enum pc_err pc_snapwire_encode(const int32_t *toks, size_t n, const uint8_t *blob, size_t size,
                               uint8_t **out, size_t *out_size, struct pc_error *err)
{
    *out = NULL;
    *out_size = 0;
    if (n > UINT32_MAX)
        return pc_error_set(err, PC_ERR_TOO_LARGE, "a snapshot of %zu tokens cannot be shared", n);
    size_t total = HEAD + n * sizeof(int32_t) + size + 8;
    uint8_t *buf = malloc(total);
    if (buf == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "shared snapshot: out of memory");
    uint32_t n32 = (uint32_t)n, zero = 0;
    uint64_t size64 = size;
    uint8_t *p = buf;
    memcpy(p, MAGIC, 8);
    memcpy(p + 8, &n32, 4);
    memcpy(p + 12, &zero, 4);
    memcpy(p + 16, &size64, 8);
    p += HEAD;
    memcpy(p, toks, n * sizeof(int32_t));
    p += n * sizeof(int32_t);
    memcpy(p, blob, size);
    p += size;
    uint64_t sum = pc_fnv1a(PC_FNV_SEED, buf, (size_t)(p - buf));
    memcpy(p, &sum, 8);
    *out = buf;
    *out_size = total;
    return PC_OK;
}

enum pc_err pc_snapwire_decode(const uint8_t *value, size_t size, int32_t **toks, size_t *n,
                               const uint8_t **blob, size_t *blob_size, struct pc_error *err)
{
    *toks = NULL;
    *n = 0;
    *blob = NULL;
    *blob_size = 0;
    uint32_t n32;
    uint64_t bsize, sum;
    if (size < HEAD + 8 || memcmp(value, MAGIC, 8) != 0)
        goto bad;
    memcpy(&n32, value + 8, 4);
    memcpy(&bsize, value + 16, 8);
    /* Each part checked against what is left, so that no sum can wrap. */
    if ((uint64_t)n32 * sizeof(int32_t) > size - HEAD - 8 ||
        bsize != size - HEAD - 8 - (uint64_t)n32 * sizeof(int32_t))
        goto bad;
    memcpy(&sum, value + size - 8, 8);
    if (sum != pc_fnv1a(PC_FNV_SEED, value, size - 8))
        goto bad;
    int32_t *t = malloc(n32 ? n32 * sizeof(int32_t) : 1);
    if (t == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "shared snapshot: out of memory");
    memcpy(t, value + HEAD, n32 * sizeof(int32_t));
    *toks = t;
    *n = n32;
    *blob = value + HEAD + n32 * sizeof(int32_t);
    *blob_size = (size_t)bsize;
    return PC_OK;
bad:
    return pc_error_set(err, PC_ERR_CHECKSUM,
                        "a shared snapshot of %zu bytes is not whole (wrong format or checksum)",
                        size);
}
