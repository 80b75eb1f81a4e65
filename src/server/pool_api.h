/* pool_api.h - the pool's lifecycle endpoints: /v1/models/{id}/load, /preload, /pin,
 * DELETE /v1/models/{id} and GET /v1/models/stats. */
#ifndef PC_POOL_API_H
#define PC_POOL_API_H

#include <stddef.h>

#include "../base/err.h"
#include "http.h"

struct pc_server;

extern const struct pc_http_route pc_pool_routes[];

/* The model that id names, as the pool knows it (*name: the store name, or the catalog id for
 * an alias) and the file to load (*path). A model is found in the store, then in the catalog
 * (its file in the store, or the file a catalog entry names). req_path (may be NULL) is a path
 * from a request body: refused (PC_ERR_INVALID) unless the daemon has an allow-list of model
 * directories, and then only a regular file inside one of them once links are resolved
 * (PC_ERR_BAD_PATH otherwise). name and path need name_size and path_size bytes. */
enum pc_err pc_pool_api_resolve(struct pc_server *srv, const char *id, const char *req_path,
                                char *name /* OUT */, size_t name_size, char *path /* OUT */,
                                size_t path_size, struct pc_error *err);

#endif
