/* ui.c - serves the dashboard's embedded files at /ui/ under a strict Content-Security-Policy. */
#include "ui.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ui_assets.h"

/* Only the daemon's own scripts, styles and API: no inline code, no CDN, no frames. */
#define UI_CSP                                                                                     \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "                \
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static const char *content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

static const struct pc_ui_asset *find_asset(const char *name)
{
    for (const struct pc_ui_asset *a = pc_ui_assets; a->name != NULL; a++)
        if (strcmp(a->name, name) == 0)
            return a;
    return NULL;
}

static void redirect(struct pc_http_reply *reply, const char *to)
{
    reply->status = 303;
    reply->content_type = "text/plain; charset=utf-8";
    reply->body = strdup("the dashboard is at /ui/");
    reply->body_len = reply->body ? strlen(reply->body) : 0;
    pc_http_reply_header(reply, "Location", to);
}

static void serve(const char *name, struct pc_http_reply *reply)
{
    const struct pc_ui_asset *a = find_asset(name);
    if (a == NULL) {
        pc_http_reply_error(reply, 404, "no such file in the dashboard: %s", name);
        return;
    }
    char *body = malloc(a->len + 1);
    if (body == NULL) {
        pc_http_reply_error(reply, 500, "out of memory");
        return;
    }
    memcpy(body, a->data, a->len + 1);
    reply->status = 200;
    reply->content_type = content_type(a->name);
    reply->body = body;
    reply->body_len = a->len;
    pc_http_reply_header(reply, "Content-Security-Policy", UI_CSP);
    pc_http_reply_header(reply, "X-Content-Type-Options", "nosniff");
    pc_http_reply_header(reply, "Referrer-Policy", "no-referrer");
    /* The files change with the binary: ask again each time rather than show a stale page. */
    pc_http_reply_header(reply, "Cache-Control", "no-cache");
}

static void handle_ui_bare(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    (void)req;
    redirect(reply, "/ui/");
}

static void handle_ui_index(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    (void)req;
    serve("index.html", reply);
}

static void handle_ui_file(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    serve(req->params[0], reply);
}

const struct pc_http_route pc_ui_routes[] = {
    {"GET", "/ui", handle_ui_bare},
    {"GET", "/ui/", handle_ui_index},
    {"GET", "/ui/{}", handle_ui_file},
    {NULL, NULL, NULL},
};

static bool wants_html(const struct pc_http_req *req)
{
    const char *accept = pc_http_header(req, "Accept");
    return accept != NULL && strcasestr(accept, "text/html") != NULL;
}

bool pc_ui_is_page(const struct pc_http_req *req)
{
    bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    if (!get)
        return false;
    if (strcmp(req->path, "/ui") == 0 || strncmp(req->path, "/ui/", 4) == 0)
        return true;
    return strcmp(req->path, "/") == 0 && wants_html(req);
}

bool pc_ui_redirect_root(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    if (!wants_html(req))
        return false;
    redirect(reply, "/ui/");
    return true;
}
