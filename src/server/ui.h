/* ui.h - the dashboard: its page and assets at /ui/, and the redirect of a browser from /. */
#ifndef PC_UI_H
#define PC_UI_H

#include <stdbool.h>

#include "http.h"

/* The dashboard's routes: GET /ui, /ui/ and /ui/{file}. */
extern const struct pc_http_route pc_ui_routes[];

/* Whether the request is for the dashboard's static files (GET or HEAD of /ui or under it), or
 * a browser's GET of / (Accept names text/html), which is sent there. These hold no data (the
 * page reads the API itself, with the key), so the API key does not guard them: a browser
 * cannot send it with a navigation. */
bool pc_ui_is_page(const struct pc_http_req *req);

/* Whether the request for / comes from a browser (Accept names text/html); if so, reply is a
 * 303 to /ui/ and true is returned; else reply is untouched. */
bool pc_ui_redirect_root(const struct pc_http_req *req, struct pc_http_reply *reply);

#endif
