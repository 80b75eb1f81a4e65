/* catalogInt.h - the catalog's private parts. */
#ifndef PC_CATALOG_INT_H
#define PC_CATALOG_INT_H

#include "catalog.h"

extern const struct pc_catalog_entry pc_catalog_embedded[];
extern const size_t pc_catalog_n_embedded;

struct pc_catalog {
    struct pc_catalog_entry *entries;
    size_t n, cap;
};

/* Parse a user catalog file into c (adding, or replacing by id). Invalid entries are reported
 * through warn with file, line and field, and skipped. Fails only when the file as a whole
 * cannot be read or is not JSON. */
enum pc_err pc_catalog_parse_file(struct pc_catalog *c, const char *path,
                                  void (*warn)(void *user, const char *msg), void *user,
                                  struct pc_error *err);

/* Add e, or replace the entry with its id. */
enum pc_err pc_catalog_put(struct pc_catalog *c, const struct pc_catalog_entry *e,
                           struct pc_error *err);

#endif
