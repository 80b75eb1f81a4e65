/* select.h - pick the model for the memory at hand (seed 002): leave 2 GiB for the system,
 * prefer recommended entries, take the largest that fits. */
#ifndef PC_SELECT_H
#define PC_SELECT_H

#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"
#include "catalog.h"

#define PC_SELECT_RESERVE (2ull << 30) /* left to the operating system */

/* Choose from c for available bytes of RAM. why (may be NULL) gets one sentence on the choice.
 * When nothing fits: PC_ERR_TOO_LARGE, and err says what the smallest model needs and what is
 * available. Entries without ram_required_mb (discovered files) are not candidates. */
enum pc_err pc_select_model(const struct pc_catalog *c, uint64_t available,
                            const struct pc_catalog_entry **out /* OUT */, char *why,
                            size_t why_size, struct pc_error *err);

#endif
