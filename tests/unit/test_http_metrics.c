/* test_http_metrics.c - unit tests for what src/server/http.c counts and sends: requests by
 * route pattern (never the raw path), method and status, whether a handler, the router or the
 * admit hook answered; and Retry-After on a busy reply. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/metrics.h"
#include "server/http.h"

static void handle_ok(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    (void)req;
    pc_http_reply_json(reply, 200, strdup("{}"));
}

static void handle_busy(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    struct pc_error err = {0};
    pc_error_set(&err, PC_ERR_BUSY, "server busy: 1 requests queued for model m (max_queue 1)");
    (void)req;
    pc_http_reply_pc_error(reply, &err);
}

/* Refuse anything under /secret before its body is read. */
static bool admit(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    if (strncmp(req->path, "/secret", 7) != 0)
        return true;
    pc_http_reply_error(reply, 401, "no key");
    return false;
}

static const struct pc_http_route routes[] = {
    {"GET", "/items/{}", handle_ok},
    {"POST", "/busy", handle_busy},
    {"GET", "/secret/{}", handle_ok},
    {NULL, NULL, NULL},
};
static const struct pc_http_route *const tables[] = {routes, NULL};

/* Send one raw request and return the whole response (malloc'd). */
static char *roundtrip(int port, const char *request)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    ssize_t n;
    while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 2)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    close(fd);
    return buf;
}

static double count(struct pc_metric *c, const char *route, const char *method, const char *status)
{
    return pc_metric_value(c, (const char *[]){route, method, status});
}

static void test_requests_by_pattern_and_retry_after(void **state)
{
    (void)state;
    struct pc_metrics *reg = pc_metrics_new();
    struct pc_http_options opts = {.max_body = 1024, .admit = admit, .metrics = reg};
    struct pc_http *h = NULL;
    struct pc_error err = {0};
    assert_int_equal(pc_http_start("127.0.0.1", 0, tables, &opts, NULL, &h, &err), PC_OK);
    int port = pc_http_port(h);

    free(roundtrip(port, "GET /items/1 HTTP/1.0\r\n\r\n"));
    free(roundtrip(port, "GET /items/2 HTTP/1.0\r\n\r\n"));
    free(roundtrip(port, "HEAD /items/3 HTTP/1.0\r\n\r\n"));
    free(roundtrip(port, "DELETE /items/4 HTTP/1.0\r\n\r\n")); /* 405 */
    free(roundtrip(port, "GET /nowhere/5 HTTP/1.0\r\n\r\n"));  /* 404 */
    free(roundtrip(port, "GET /secret/6 HTTP/1.0\r\n\r\n"));   /* the admit hook's 401 */
    char *busy = roundtrip(port, "POST /busy HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
    pc_http_stop(h);

    assert_non_null(strstr(busy, "HTTP/1.1 503"));
    assert_non_null(strstr(busy, "\r\nRetry-After: 1\r\n"));
    assert_non_null(strstr(busy, "server busy: 1 requests queued for model m (max_queue 1)"));
    free(busy);

    struct pc_metric *c = pc_metrics_counter(reg, "precharge_http_requests_total", "", "");
    assert_non_null(c);
    assert_true(count(c, "/items/{}", "GET", "200") == 2);
    assert_true(count(c, "/items/{}", "HEAD", "200") == 1);
    assert_true(count(c, "other", "DELETE", "405") == 1);
    assert_true(count(c, "other", "GET", "404") == 1);
    assert_true(count(c, "/secret/{}", "GET", "401") == 1);
    assert_true(count(c, "/busy", "POST", "503") == 1);
    struct pc_buf text = PC_BUF_INIT;
    assert_true(pc_metrics_render(reg, &text));
    assert_null(strstr(text.data, "/items/1"));
    assert_null(strstr(text.data, "nowhere"));
    pc_buf_free(&text);
    pc_metrics_free(reg);
}

static void test_reply_header(void **state)
{
    (void)state;
    struct pc_http_reply r = {0};
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_true(pc_http_reply_header(&r, "X-One", "1"));
    assert_false(pc_http_reply_header(&r, "X-Big", big));
    for (size_t i = 1; i < PC_HTTP_MAX_HEADERS; i++)
        assert_true(pc_http_reply_header(&r, "X-More", "v"));
    assert_false(pc_http_reply_header(&r, "X-Full", "v"));
    assert_int_equal(r.n_headers, PC_HTTP_MAX_HEADERS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_by_pattern_and_retry_after),
        cmocka_unit_test(test_reply_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
