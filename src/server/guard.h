/* guard.h - who may talk to the daemon: loopback addresses, the API key, and the CORS
 * allow-list, with the request hooks that the HTTP layer runs before and after each handler. */
#ifndef PC_GUARD_H
#define PC_GUARD_H

#include <stdbool.h>
#include <stddef.h>

struct pc_http_req;
struct pc_http_reply;

/* Whether a name or address is loopback by itself: 127.0.0.0/8, ::1, ::ffff:127.x.x.x,
 * "localhost" or a name under .localhost. Any other name, and the wildcards 0.0.0.0 and ::,
 * are not. What a Host header is judged by; a listen address is judged by what it resolves to
 * (pc_guard_listens_on_loopback). */
bool pc_guard_is_loopback(const char *host);

/* Whether the daemon, told to listen on host, listens on loopback only: every address that
 * host resolves to (as pc_http_start resolves it) is loopback. A name is judged by its
 * addresses, not by how it looks: "evil.localhost" that resolves to 0.0.0.0 is not loopback.
 * False when host does not resolve. When false, why (may be NULL) says which address is not
 * loopback, or why it does not resolve. */
bool pc_guard_listens_on_loopback(const char *host, char *why /* OUT */, size_t size);

/* The token of an Authorization header's value "Bearer TOKEN" (the scheme in any case), with
 * its length in *len; NULL when the value is NULL or not of that form. */
const char *pc_guard_bearer(const char *authorization, size_t *len /* OUT */);

/* Whether given[0..len) is key, in a time that depends on key's length alone. */
bool pc_guard_key_equal(const char *key, const char *given, size_t len);

/* Whether origin is one of n origins (compared without case), or the list holds "*". */
bool pc_guard_origin_listed(const char (*origins)[256], size_t n, const char *origin);

/* pc_http_options.admit: answers a CORS preflight (204 for a listed origin, 403 for another),
 * refuses a request from an origin that is not listed (403), and, when an API key is set,
 * one without it (401 with WWW-Authenticate: Bearer), except GET or HEAD of /health and
 * /ready and the dashboard's static files (pc_ui_is_page). Reads req->srv's configuration. */
bool pc_guard_admit(const struct pc_http_req *req, struct pc_http_reply *reply);

/* pc_http_options.decorate: Access-Control-Allow-Origin and Vary: Origin for a listed
 * origin. */
void pc_guard_decorate(const struct pc_http_req *req, struct pc_http_reply *reply);

#endif
