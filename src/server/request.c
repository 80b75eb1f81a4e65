/* request.c - the helpers that the route files share to read request bodies and write JSON
 * replies. */
#include "serverInt.h"

#include <stdlib.h>
#include <string.h>

#include "../base/clock.h"

json_t *pc_req_parse_object(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    json_error_t je;
    if (req->body_len == 0) {
        pc_http_reply_error(reply, 400, "missing request body: expected a JSON object");
        return NULL;
    }
    json_t *o = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (o == NULL) {
        pc_http_reply_error(reply, 400, "invalid JSON at line %d, column %d: %s", je.line,
                            je.column, je.text);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        pc_http_reply_error(reply, 400, "the request body must be a JSON object");
        return NULL;
    }
    return o;
}

int pc_req_string(json_t *obj, const char *field, const char **out, struct pc_http_reply *reply)
{
    json_t *v = json_object_get(obj, field);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        pc_http_reply_error(reply, 400, "field \"%s\" must be a string", field);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

int pc_req_model_named(json_t *obj, const char *field, const char **out,
                       struct pc_http_reply *reply)
{
    *out = NULL;
    if (pc_req_string(obj, field, out, reply) != 0)
        return -1;
    if (*out == NULL || (*out)[0] == '\0') {
        pc_http_reply_error(reply, 400, "field \"%s\" is required", field);
        return -1;
    }
    return 0;
}

const char *pc_req_unknown_field(json_t *obj, const char *const *known, size_t n)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = json_is_null(v);
        for (size_t i = 0; i < n && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        if (!ok)
            return key;
    }
    return NULL;
}

int pc_req_known_fields(json_t *obj, const char *const *known, size_t n, const char *route,
                        struct pc_http_reply *reply)
{
    const char *key = pc_req_unknown_field(obj, known, n);
    if (key == NULL)
        return 0;
    pc_http_reply_error(reply, 400, "field \"%s\" is not a field of %s; it would have no effect",
                        key, route);
    return -1;
}

const char *pc_req_model_or_name(json_t *obj, struct pc_http_reply *reply)
{
    const char *model = NULL, *name = NULL;
    if (pc_req_string(obj, "model", &model, reply) != 0 ||
        pc_req_string(obj, "name", &name, reply) != 0)
        return NULL;
    bool old = (model == NULL || model[0] == '\0') && name != NULL && name[0] != '\0';
    return pc_req_model_named(obj, old ? "name" : "model", &model, reply) == 0 ? model : NULL;
}

int pc_req_model(json_t *obj, const char **out, struct pc_http_reply *reply)
{
    return pc_req_model_named(obj, "model", out, reply);
}

int pc_req_bool(json_t *obj, const char *field, bool *out, struct pc_http_reply *reply)
{
    json_t *v = json_object_get(obj, field);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_boolean(v)) {
        pc_http_reply_error(reply, 400, "field \"%s\" must be true or false", field);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

bool pc_append_json(struct pc_buf *out, const char *before, json_t *o, const char *after)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s == NULL)
        return false;
    bool ok = pc_buf_appends(out, before) && pc_buf_appends(out, s) && pc_buf_appends(out, after);
    free(s);
    return ok;
}

void pc_reply_json_value(struct pc_http_reply *r, int status, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s == NULL) {
        pc_http_reply_error(r, 500, "out of memory");
        return;
    }
    pc_http_reply_json(r, status, s);
}

const char *pc_now_rfc3339(char *buf, size_t size)
{
    return pc_clock_rfc3339(pc_clock_wall_ns(), buf, size);
}
