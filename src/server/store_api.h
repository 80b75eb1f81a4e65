/* store_api.h - the store's routes in the Ollama API: POST /api/pull (NDJSON progress) and
 * DELETE /api/delete. The server lists the table with the other API families. */
#ifndef PC_STORE_API_H
#define PC_STORE_API_H

#include "http.h"

extern const struct pc_http_route pc_store_routes[];

#endif
