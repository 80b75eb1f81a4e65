/* test_metrics.c - unit tests for src/base/metrics: the text format, label escaping, histogram
 * buckets, invalid registrations, and updates from several threads. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "base/metrics.h"

/* Render r into a NUL-terminated string that the caller frees. */
static char *render(struct pc_metrics *r)
{
    struct pc_buf b = PC_BUF_INIT;
    assert_true(pc_metrics_render(r, &b));
    return pc_buf_steal(&b);
}

/* Every line is a comment or a sample of the text format's grammar. */
static void assert_parses(const char *text)
{
    regex_t sample, comment;
    assert_int_equal(regcomp(&sample,
                             "^[a-zA-Z_:][a-zA-Z0-9_:]*"
                             "(\\{([a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\n]|\\\\[\\\\\"n])*\",?)*\\})?"
                             " (NaN|[+-]Inf|[-+]?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?)$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    assert_int_equal(
        regcomp(&comment, "^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*$", REG_EXTENDED | REG_NOSUB),
        0);
    char *copy = strdup(text);
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        regex_t *re = line[0] == '#' ? &comment : &sample;
        if (regexec(re, line, 0, NULL, 0) != 0)
            fail_msg("line does not parse: %s", line);
    }
    free(copy);
    regfree(&sample);
    regfree(&comment);
}

static void test_counter_and_gauge_format(void **state)
{
    (void)state;
    struct pc_metrics *r = pc_metrics_new();
    struct pc_metric *c =
        pc_metrics_counter(r, "pc_requests_total", "Requests answered.", "route,status");
    struct pc_metric *g = pc_metrics_gauge(r, "pc_up", "One while up.", NULL);
    assert_non_null(c);
    assert_non_null(g);
    pc_metric_add(c, (const char *[]){"/api/chat", "200"}, 1);
    pc_metric_add(c, (const char *[]){"/api/chat", "200"}, 2);
    pc_metric_add(c, (const char *[]){"other", "404"}, 1);
    pc_metric_add(c, (const char *[]){"other", "404"}, -5); /* a counter never goes down */
    pc_metric_set(g, NULL, 1.5);
    char *text = render(r);
    assert_string_equal(text, "# HELP pc_requests_total Requests answered.\n"
                              "# TYPE pc_requests_total counter\n"
                              "pc_requests_total{route=\"/api/chat\",status=\"200\"} 3\n"
                              "pc_requests_total{route=\"other\",status=\"404\"} 1\n"
                              "# HELP pc_up One while up.\n"
                              "# TYPE pc_up gauge\n"
                              "pc_up 1.5\n");
    assert_parses(text);
    free(text);
    assert_true(pc_metric_value(c, (const char *[]){"/api/chat", "200"}) == 3);
    assert_true(pc_metric_value(c, (const char *[]){"/api/chat", "500"}) == 0);
    pc_metrics_free(r);
}

static void test_unlabelled_family_shows_zero(void **state)
{
    (void)state;
    struct pc_metrics *r = pc_metrics_new();
    struct pc_metric *g = pc_metrics_gauge(r, "pc_pending", "Queued.", "");
    pc_metric_set(g, NULL, 7);
    pc_metric_clear(g);
    char *text = render(r);
    assert_string_equal(text, "# HELP pc_pending Queued.\n# TYPE pc_pending gauge\npc_pending 0\n");
    free(text);
    pc_metrics_free(r);
}

static void test_escaping(void **state)
{
    (void)state;
    struct pc_metrics *r = pc_metrics_new();
    struct pc_metric *g = pc_metrics_gauge(r, "pc_x", "Back\\slash and\nnewline \"kept\".", "m");
    pc_metric_set(g, (const char *[]){"a\"b\\c\nd"}, -2);
    char *text = render(r);
    assert_string_equal(text, "# HELP pc_x Back\\\\slash and\\nnewline \"kept\".\n"
                              "# TYPE pc_x gauge\n"
                              "pc_x{m=\"a\\\"b\\\\c\\nd\"} -2\n");
    assert_parses(text);
    free(text);
    pc_metrics_free(r);
}

static void test_histogram_buckets(void **state)
{
    (void)state;
    struct pc_metrics *r = pc_metrics_new();
    const double bounds[] = {0.005, 0.1, 1};
    struct pc_metric *h = pc_metrics_histogram(r, "pc_ttft_seconds", "TTFT.", "model", bounds, 3);
    assert_non_null(h);
    const char *tiny[] = {"tiny"};
    pc_metric_observe(h, tiny, 0.005); /* on a bound: counts in it (le is <=) */
    pc_metric_observe(h, tiny, 0.05);
    pc_metric_observe(h, tiny, 0.1);
    pc_metric_observe(h, tiny, 3);
    char *text = render(r);
    assert_string_equal(text, "# HELP pc_ttft_seconds TTFT.\n"
                              "# TYPE pc_ttft_seconds histogram\n"
                              "pc_ttft_seconds_bucket{model=\"tiny\",le=\"0.005\"} 1\n"
                              "pc_ttft_seconds_bucket{model=\"tiny\",le=\"0.1\"} 3\n"
                              "pc_ttft_seconds_bucket{model=\"tiny\",le=\"1\"} 3\n"
                              "pc_ttft_seconds_bucket{model=\"tiny\",le=\"+Inf\"} 4\n"
                              "pc_ttft_seconds_sum{model=\"tiny\"} 3.155\n"
                              "pc_ttft_seconds_count{model=\"tiny\"} 4\n");
    assert_parses(text);
    free(text);
    assert_true(pc_metric_value(h, tiny) == 4);
    pc_metrics_free(r);
}

static void test_unlabelled_histogram_and_latency_buckets(void **state)
{
    (void)state;
    struct pc_metrics *r = pc_metrics_new();
    struct pc_metric *h =
        pc_metrics_histogram(r, "pc_load_seconds", "Loads.", NULL, pc_metrics_latency_buckets,
                             pc_metrics_n_latency_buckets);
    assert_non_null(h);
    char *text = render(r);
    assert_non_null(strstr(text, "pc_load_seconds_bucket{le=\"0.005\"} 0\n"));
    assert_non_null(strstr(text, "pc_load_seconds_bucket{le=\"60\"} 0\n"));
    assert_non_null(strstr(text, "pc_load_seconds_bucket{le=\"+Inf\"} 0\n"));
    assert_non_null(strstr(text, "pc_load_seconds_count 0\n"));
    assert_parses(text);
    free(text);
    pc_metric_observe(h, NULL, 120);
    text = render(r);
    assert_non_null(strstr(text, "pc_load_seconds_bucket{le=\"60\"} 0\n"));
    assert_non_null(strstr(text, "pc_load_seconds_bucket{le=\"+Inf\"} 1\n"));
    assert_non_null(strstr(text, "pc_load_seconds_sum 120\n"));
    free(text);
    pc_metrics_free(r);
}

static void test_invalid_registrations(void **state)
{
    (void)state;
    struct pc_metrics *r = pc_metrics_new();
    const double bad[] = {1, 0.5};
    assert_null(pc_metrics_counter(r, "9lives", "", NULL));
    assert_null(pc_metrics_counter(r, "pc-dash", "", NULL));
    assert_null(pc_metrics_counter(r, "pc_a", "", "__reserved"));
    assert_null(pc_metrics_counter(r, "pc_b", "", "a,"));
    assert_null(pc_metrics_counter(r, "pc_c", "", "a,b,c,d,e"));
    assert_null(pc_metrics_histogram(r, "pc_d", "", "le", NULL, 0));
    assert_null(pc_metrics_histogram(r, "pc_e", "", NULL, bad, 2));
    /* The same name again: the same family, unless the type differs. */
    struct pc_metric *c = pc_metrics_counter(r, "pc_f_total", "", "x");
    assert_ptr_equal(pc_metrics_counter(r, "pc_f_total", "", "x"), c);
    assert_null(pc_metrics_gauge(r, "pc_f_total", "", "x"));
    /* NULL families and wrong updates do nothing. */
    pc_metric_add(NULL, NULL, 1);
    pc_metric_observe(c, (const char *[]){"v"}, 1);
    pc_metric_add(c, NULL, 1);
    char *text = render(r);
    assert_string_equal(text, "# HELP pc_f_total \n# TYPE pc_f_total counter\n");
    free(text);
    pc_metrics_free(r);
}

static void test_value_formats(void **state)
{
    (void)state;
    struct pc_metrics *r = pc_metrics_new();
    struct pc_metric *g = pc_metrics_gauge(r, "pc_v", "", "k");
    pc_metric_set(g, (const char *[]){"big"}, 123456789012.0);
    pc_metric_set(g, (const char *[]){"tenth"}, 0.1);
    pc_metric_set(g, (const char *[]){"huge"}, 1e300);
    char *text = render(r);
    assert_non_null(strstr(text, "pc_v{k=\"big\"} 123456789012\n"));
    assert_non_null(strstr(text, "pc_v{k=\"tenth\"} 0.1\n"));
    assert_non_null(strstr(text, "pc_v{k=\"huge\"} 1e+300\n"));
    assert_parses(text);
    free(text);
    pc_metrics_free(r);
}

struct worker {
    struct pc_metric *c, *h;
};

static void *bump(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 10000; i++) {
        pc_metric_add(w->c, (const char *[]){i % 2 ? "odd" : "even"}, 1);
        pc_metric_observe(w->h, NULL, 0.01);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct pc_metrics *r = pc_metrics_new();
    struct worker w = {
        pc_metrics_counter(r, "pc_n_total", "", "parity"),
        pc_metrics_histogram(r, "pc_h", "", NULL, pc_metrics_latency_buckets, 3),
    };
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, bump, &w), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_true(pc_metric_value(w.c, (const char *[]){"odd"}) == 20000);
    assert_true(pc_metric_value(w.c, (const char *[]){"even"}) == 20000);
    assert_true(pc_metric_value(w.h, NULL) == 40000);
    pc_metrics_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_and_gauge_format),
        cmocka_unit_test(test_unlabelled_family_shows_zero),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_histogram_buckets),
        cmocka_unit_test(test_unlabelled_histogram_and_latency_buckets),
        cmocka_unit_test(test_invalid_registrations),
        cmocka_unit_test(test_value_formats),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
