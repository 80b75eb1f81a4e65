/* test_http.c - the HTTP layer's replies as handlers make them: error bodies are JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "server/http.h"

/* The reply's {"error": ...} text; fails the test when the body is not that. */
static const char *error_text(struct pc_http_reply *r, json_t **keep)
{
    *keep = json_loadb(r->body, r->body_len, 0, NULL);
    const char *msg = json_string_value(json_object_get(*keep, "error"));
    if (msg == NULL)
        fail_msg("not an error body: %.*s", (int)r->body_len, r->body);
    return msg;
}

/* fuzz_routes checks this too (regressions/fuzz_routes): a long message cut inside a
 * character made the reply say "out of memory" instead. */
static void test_error_cut_inside_a_character(void **state)
{
    (void)state;
    char name[1400];
    name[0] = 'a';
    for (size_t i = 1; i + 1 < sizeof(name); i += 2)
        memcpy(name + i, "\xC3\xA9", 2); /* "é" */
    name[sizeof(name) - 1] = '\0';
    for (int shift = 0; shift < 2; shift++) {
        struct pc_http_reply r = {0};
        pc_http_reply_error(&r, 400, "%sname \"%s\" is wrong", shift ? "x" : "", name);
        json_t *o;
        const char *msg = error_text(&r, &o);
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(msg, "name \"a\xC3\xA9\xC3\xA9"));
        json_decref(o);
        free(r.body);
    }
}

static void test_error_with_invalid_bytes(void **state)
{
    (void)state;
    struct pc_http_reply r = {0};
    pc_http_reply_error(&r, 404, "no file \"%s\"", "caf\xE9.gguf"); /* Latin-1 */
    json_t *o;
    assert_string_equal(error_text(&r, &o), "no file \"caf\xEF\xBF\xBD.gguf\"");
    assert_int_equal(r.status, 404);
    json_decref(o);
    free(r.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_cut_inside_a_character),
        cmocka_unit_test(test_error_with_invalid_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
