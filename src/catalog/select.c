/* select.c - seed 002's selection: filter by RAM with a reserve, prefer recommended, take the
 * largest that fits. */
#include "select.h"

#include <stdio.h>

#define MIB (1024ull * 1024ull)

enum pc_err pc_select_model(const struct pc_catalog *c, uint64_t available,
                            const struct pc_catalog_entry **out, char *why, size_t why_size,
                            struct pc_error *err)
{
    uint64_t usable = available > PC_SELECT_RESERVE ? available - PC_SELECT_RESERVE : 0;
    const struct pc_catalog_entry *best = NULL, *best_rec = NULL, *smallest = NULL;
    size_t n_fit = 0;

    *out = NULL;
    for (size_t i = 0; i < pc_catalog_count(c); i++) {
        const struct pc_catalog_entry *e = pc_catalog_at(c, i);
        if (e->ram_required_mb == 0)
            continue;
        if (smallest == NULL || e->ram_required_mb < smallest->ram_required_mb)
            smallest = e;
        if (e->ram_required_mb * MIB > usable)
            continue;
        n_fit++;
        if (best == NULL || e->ram_required_mb > best->ram_required_mb)
            best = e;
        if (e->recommended && (best_rec == NULL || e->ram_required_mb > best_rec->ram_required_mb))
            best_rec = e;
    }
    if (best == NULL) {
        if (smallest == NULL)
            return pc_error_set(err, PC_ERR_NOT_FOUND,
                                "the catalog has no model with a RAM "
                                "requirement to choose from");
        return pc_error_set(err, PC_ERR_TOO_LARGE,
                            "insufficient memory: the smallest model, %s, needs %llu MB plus "
                            "%llu MB left to the system; %llu MB is available",
                            smallest->id, (unsigned long long)smallest->ram_required_mb,
                            (unsigned long long)(PC_SELECT_RESERVE / MIB),
                            (unsigned long long)(available / MIB));
    }
    *out = best_rec ? best_rec : best;
    if (why != NULL)
        snprintf(why, why_size,
                 "%llu MB available, %llu MB usable after %llu MB for the system; %zu models fit; "
                 "%s is the largest %sthat fits (needs %llu MB)",
                 (unsigned long long)(available / MIB), (unsigned long long)(usable / MIB),
                 (unsigned long long)(PC_SELECT_RESERVE / MIB), n_fit, (*out)->id,
                 best_rec ? "recommended model " : "model ",
                 (unsigned long long)(*out)->ram_required_mb);
    return PC_OK;
}
