/* test_ui.c - unit tests for the dashboard's embedding: every file of src/server/ui/ is in the
 * binary, byte for byte, the page names only those, and which requests are the page's. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http.h"
#include "server/ui.h"
#include "server/ui_assets.h"

#ifndef PC_UI_DIR
#error "PC_UI_DIR names src/server/ui"
#endif

static const struct pc_ui_asset *find(const char *name)
{
    for (const struct pc_ui_asset *a = pc_ui_assets; a->name != NULL; a++)
        if (strcmp(a->name, name) == 0)
            return a;
    return NULL;
}

/* The generated table holds each source file as it is on disk, with a NUL after it. */
static void test_assets_match_sources(void **state)
{
    (void)state;
    const char *names[] = {"index.html", "app.css", "app.js"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const struct pc_ui_asset *a = find(names[i]);
        assert_non_null(a);
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", PC_UI_DIR, names[i]);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        rewind(f);
        char *want = malloc((size_t)n);
        assert_non_null(want);
        assert_int_equal(fread(want, 1, (size_t)n, f), (size_t)n);
        fclose(f);
        assert_int_equal(a->len, (size_t)n);
        assert_memory_equal(a->data, want, (size_t)n);
        assert_int_equal(a->data[a->len], 0);
        free(want);
    }
}

/* The page loads only files of its own (the CSP would refuse any other), and no inline code. */
static void test_page_names_only_embedded_files(void **state)
{
    (void)state;
    const char *html = (const char *)find("index.html")->data;
    assert_null(strstr(html, "http://"));
    assert_null(strstr(html, "https://"));
    assert_null(strstr(html, "style=\""));
    assert_null(strstr(html, "onclick"));
    size_t n = 0;
    for (const char *p = strstr(html, "src=\""); p != NULL; p = strstr(p + 1, "src=\"")) {
        char name[64];
        assert_int_equal(sscanf(p + 5, "%63[^\"]", name), 1);
        assert_non_null(find(name));
        n++;
    }
    assert_int_equal(n, 1); /* app.js; the stylesheet is a link */
    assert_non_null(strstr(html, "href=\"app.css\""));
    assert_null(strstr(html, "<script>"));
}

static struct pc_http_req req_for(const char *method, const char *path)
{
    return (struct pc_http_req){.method = method, .path = path, .body = ""};
}

/* The API key does not guard the page's files; it guards everything else, / for a client that
 * is not a browser included (with no Accept header here). */
static void test_is_page(void **state)
{
    (void)state;
    struct pc_http_req r;
    r = req_for("GET", "/ui/");
    assert_true(pc_ui_is_page(&r));
    r = req_for("HEAD", "/ui/app.js");
    assert_true(pc_ui_is_page(&r));
    r = req_for("GET", "/ui");
    assert_true(pc_ui_is_page(&r));
    r = req_for("POST", "/ui/");
    assert_false(pc_ui_is_page(&r));
    r = req_for("GET", "/uix");
    assert_false(pc_ui_is_page(&r));
    r = req_for("GET", "/api/ps");
    assert_false(pc_ui_is_page(&r));
    r = req_for("GET", "/");
    assert_false(pc_ui_is_page(&r));
    struct pc_http_reply reply = {0};
    assert_false(pc_ui_redirect_root(&r, &reply));
    assert_int_equal(reply.status, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assets_match_sources),
        cmocka_unit_test(test_page_names_only_embedded_files),
        cmocka_unit_test(test_is_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
