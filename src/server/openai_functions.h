/* openai_functions.h - OpenAI's deprecated function calling (functions, function_call, an
 * assistant's function_call and "function" messages) rewritten into the tools form that the
 * chat path serves. */
#ifndef PC_OPENAI_FUNCTIONS_H
#define PC_OPENAI_FUNCTIONS_H

#include <jansson.h>

#include "http.h"

/* Rewrite body in place: "functions" becomes "tools" (with parallel_tool_calls false: that API
 * answers one call), "function_call" becomes "tool_choice", an assistant message's
 * "function_call" becomes its "tool_calls" (ids made up by position) and a "function" message a
 * "tool" message answering the call before it. Returns 1 when the request declared functions
 * (the answer is then given in the deprecated shape), 0 when it did not, -1 with a 400 in reply
 * and *param naming the field. */
int pc_openai_functions_map(json_t *body, const char **param /* OUT */,
                            struct pc_http_reply *reply);

#endif
