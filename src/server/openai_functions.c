/* openai_functions.c - OpenAI's deprecated function calling, rewritten into the tools form. */
#include "openai_functions.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The messages with "function_call" and role "function" in the tools form. */
static int map_messages(json_t *body, const char **param, struct pc_http_reply *reply)
{
    json_t *arr = json_object_get(body, "messages");
    char last_id[32] = "";
    *param = "messages";
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *m = json_array_get(arr, i);
        json_t *fc = json_object_get(m, "function_call");
        const char *role = json_string_value(json_object_get(m, "role"));
        if (fc != NULL && !json_is_null(fc)) {
            json_t *name = json_object_get(fc, "name"), *args = json_object_get(fc, "arguments");
            if (!json_is_string(name) || (args != NULL && !json_is_string(args))) {
                pc_http_reply_error(reply, 400,
                                    "messages[%zu].function_call must be {\"name\", "
                                    "\"arguments\"} with strings",
                                    i);
                return -1;
            }
            /* The old shape has no ids: the call and the function message after it share one. */
            snprintf(last_id, sizeof(last_id), "call_fn%zu", i);
            json_object_set_new(m, "tool_calls",
                                json_pack("[{s:s, s:s, s:{s:O, s:s}}]", "id", last_id, "type",
                                          "function", "function", "name", name, "arguments",
                                          args ? json_string_value(args) : "{}"));
            json_object_del(m, "function_call");
        }
        if (role != NULL && strcmp(role, "function") == 0) {
            json_object_set_new(m, "role", json_string("tool"));
            if (json_object_get(m, "tool_call_id") == NULL)
                json_object_set_new(m, "tool_call_id",
                                    json_string(last_id[0] ? last_id : "call_fn"));
        }
    }
    return 0;
}

/* "function_call": "none", "auto" or {"name"}, as tool_choice. */
static int map_choice(json_t *body, const char **param, struct pc_http_reply *reply)
{
    json_t *fc = json_object_get(body, "function_call");
    *param = "function_call";
    if (fc == NULL || json_is_null(fc))
        return 0;
    json_t *choice = NULL;
    const char *s = json_string_value(fc);
    if (s != NULL && (strcmp(s, "none") == 0 || strcmp(s, "auto") == 0))
        choice = json_string(s);
    else if (json_is_string(json_object_get(fc, "name")))
        choice = json_pack("{s:s, s:{s:O}}", "type", "function", "function", "name",
                           json_object_get(fc, "name"));
    if (choice == NULL) {
        pc_http_reply_error(reply, 400,
                            "field \"function_call\" must be \"none\", \"auto\" or {\"name\": "
                            "...}");
        return -1;
    }
    json_object_set_new(body, "tool_choice", choice);
    json_object_del(body, "function_call");
    return 0;
}

int pc_openai_functions_map(json_t *body, const char **param, struct pc_http_reply *reply)
{
    if (map_messages(body, param, reply) != 0)
        return -1;
    json_t *fns = json_object_get(body, "functions");
    json_t *fc = json_object_get(body, "function_call");
    bool declared = fns != NULL && !json_is_null(fns);
    *param = declared ? "functions" : "function_call";
    if (!declared && fc != NULL && !json_is_null(fc)) {
        pc_http_reply_error(reply, 400, "field \"function_call\" needs \"functions\"");
        return -1;
    }
    if (!declared)
        return 0;
    json_t *tools = json_object_get(body, "tools");
    if (tools != NULL && !json_is_null(tools)) {
        pc_http_reply_error(reply, 400,
                            "field \"functions\" with \"tools\": send one of them (functions is "
                            "the deprecated form of tools)");
        return -1;
    }
    if (!json_is_array(fns) || json_array_size(fns) == 0) {
        pc_http_reply_error(reply, 400, "field \"functions\" must be a non-empty array");
        return -1;
    }
    json_t *mapped = json_array();
    for (size_t i = 0; i < json_array_size(fns); i++) {
        json_t *f = json_array_get(fns, i);
        const char *name = json_string_value(json_object_get(f, "name"));
        if (!json_is_object(f) || name == NULL || name[0] == '\0') {
            json_decref(mapped);
            pc_http_reply_error(reply, 400, "functions[%zu].name must be a non-empty string", i);
            return -1;
        }
        json_array_append_new(mapped, json_pack("{s:s, s:O}", "type", "function", "function", f));
    }
    json_object_set_new(body, "tools", mapped);
    json_object_set_new(body, "parallel_tool_calls", json_false());
    json_object_del(body, "functions");
    if (map_choice(body, param, reply) != 0)
        return -1;
    return 1;
}
