/* tokens.h - what token sequences share: how many leading tokens two prompts, or a prompt and a
 * snapshot, have in common (the snapshot tiers, the shared index and the prefix planner ask). */
#ifndef PC_TOKENS_H
#define PC_TOKENS_H

#include <stddef.h>
#include <stdint.h>

static inline size_t pc_tokens_common_prefix(const int32_t *a, size_t na, const int32_t *b,
                                             size_t nb)
{
    size_t n = 0;
    while (n < na && n < nb && a[n] == b[n])
        n++;
    return n;
}

#endif
