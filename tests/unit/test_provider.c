/* test_provider.c - unit tests for the ollama provider against the real thing: a precharge
 * server started in this process (our API is Ollama's) is the remote server. Discovery, the
 * cached /api/ps, load and unload by keep_alive, prefill, a proxied stream and its count in
 * flight, an outage and the recovery on the same port, by the poller and by requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "provider/ollamaInt.h"
#include "server/server.h"
#include "scratch.h"
#include "testmodel.h"

/* What on_change was told, from the poller's thread. */
struct record {
    pthread_mutex_t lock;
    int calls;
    size_t models, removed; /* of the last call */
};

static void on_change(void *user, json_t *models, json_t *removed)
{
    struct record *r = user;
    pthread_mutex_lock(&r->lock);
    r->calls++;
    r->models = json_array_size(models);
    r->removed = json_array_size(removed);
    pthread_mutex_unlock(&r->lock);
}

static struct pc_server *serve(const char *home, int port)
{
    struct pc_server_config cfg;
    struct pc_error err = {0};
    assert_int_equal(pc_server_config_from_env(&cfg, &err), PC_OK);
    assert_int_equal(pc_server_set_home(&cfg, home, &err), PC_OK);
    snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
    cfg.port = port;
    snprintf(cfg.ollama_url, sizeof(cfg.ollama_url), "off");
    cfg.pool.model_params.n_threads = 1;
    cfg.pool.model_params.n_ctx = 512;
    struct pc_server *s = NULL;
    if (pc_server_start(&cfg, &s, &err) != PC_OK)
        fail_msg("cannot start the server: %s", err.msg);
    return s;
}

/* Wait (bounded) for what the poller finds by itself. */
static bool loaded_becomes(struct pc_ollama *o, const char *model, bool want)
{
    struct pc_ollama_model_status st;
    for (int i = 0; i < 3000; i++) {
        pc_ollama_status(o, model, &st);
        if (st.loaded == want)
            return true;
        nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
    }
    return false;
}

static bool available_becomes(struct pc_ollama *o, bool want)
{
    for (int i = 0; i < 3000 && pc_ollama_available(o) != want; i++)
        nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
    return pc_ollama_available(o) == want;
}

/* on_change runs after the poller has published the new availability: wait for its call. */
static bool calls_become(struct record *r, int n)
{
    for (int i = 0; i < 3000; i++) {
        pthread_mutex_lock(&r->lock);
        int calls = r->calls;
        pthread_mutex_unlock(&r->lock);
        if (calls >= n)
            return calls == n;
        nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
    }
    return false;
}

static void test_same(void **state)
{
    (void)state;
    assert_true(pc_ollama_same("m:latest", "m"));
    assert_true(pc_ollama_same("m:latest", "m:latest"));
    assert_true(pc_ollama_same("m:7b", "m:7b"));
    assert_false(pc_ollama_same("m:7b", "m"));
    assert_false(pc_ollama_same("mm:latest", "m"));
    assert_false(pc_ollama_same("m", "m:latest"));
}

static void count_wake(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* The body of a proxied stream, pulled to its end; *in_flight_seen gets the count meanwhile. */
static void pull_stream(struct pc_ollama *o, struct pc_buf *body, int *in_flight_seen)
{
    struct pc_ollama_stream *s = NULL;
    struct pc_error err = {0};
    int status = 0;
    const char *ctype = NULL;
    assert_int_equal(pc_ollama_stream_open(o, "POST", "/api/generate",
                                           "{\"model\":\"m\",\"prompt\":\"hi\",\"options\":"
                                           "{\"num_predict\":3}}",
                                           "m:latest", &s, &status, &ctype, &err),
                     PC_OK);
    assert_int_equal(status, 200);
    assert_non_null(strstr(ctype, "ndjson"));
    struct pc_ollama_model_status st;
    pc_ollama_status(o, "m", &st);
    *in_flight_seen = st.in_flight;
    atomic_int wakes = 0;
    pc_ollama_stream_watch(s, count_wake, &wakes);
    while (pc_ollama_stream_poll(s, body) != PC_STREAM_END)
        usleep(1000); /* the provider's thread moves the body meanwhile */
    assert_true(atomic_load(&wakes) > 0);
    pc_ollama_stream_free(s);
}

static void test_provider(void **state)
{
    (void)state;
    char home[4096], models[4200], path[4300], url[64];
    snprintf(home, sizeof(home), "%s", make_tmpdir("provider"));
    snprintf(models, sizeof(models), "%s/models", home);
    mkdir(models, 0755);
    snprintf(path, sizeof(path), "%s/m.gguf", models);
    make_tiny_model(path);
    struct pc_server *srv = serve(home, 0);
    int port = pc_server_port(srv);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);

    struct record rec = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct pc_ollama *o = NULL;
    struct pc_error err = {0};
    assert_int_equal(pc_ollama_new(url, 50, on_change, &rec, &o, &err), PC_OK);
    /* Discovery: the first poll ran before pc_ollama_new returned. */
    assert_true(pc_ollama_available(o));
    assert_int_equal(rec.calls, 1);
    url[strlen(url) - 1] = '\0';
    assert_string_equal(pc_ollama_url(o), url); /* without its trailing slash */
    char canon[256];
    assert_true(pc_ollama_has(o, "m", canon));
    assert_string_equal(canon, "m:latest");
    assert_false(pc_ollama_has(o, "other", NULL));
    json_t *list = pc_ollama_models(o);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "provider")),
                        "ollama");
    assert_true(json_integer_value(json_object_get(json_array_get(list, 0), "size")) > 0);
    json_decref(list);
    struct pc_ollama_model_status st;
    pc_ollama_status(o, "m", &st);
    assert_true(st.available && st.known && !st.loaded);
    assert_int_equal(st.in_flight, 0);

    /* Load with keep_alive -1: /api/ps lists it, with the server's expiry. */
    assert_int_equal(pc_ollama_load(o, canon, "-1", "", 30000, &err), PC_OK);
    assert_true(loaded_becomes(o, "m", true));
    json_t *ps = pc_ollama_ps(o);
    assert_int_equal(json_array_size(ps), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ps, 0), "provider")),
                        "ollama");
    assert_non_null(json_object_get(json_array_get(ps, 0), "expires_at"));
    json_decref(ps);

    /* Prefill: messages through /api/chat, a prompt as raw text; the server's own counts. */
    struct pc_ollama_gen_stats gs = {0};
    json_t *msgs = json_pack("[{s:s, s:s}]", "role", "system", "content",
                             "You fill in forms: name, email, phone.");
    assert_int_equal(pc_ollama_prefill(o, canon, msgs, NULL, "5m", 30000, &gs, &err), PC_OK);
    json_decref(msgs);
    assert_true(gs.prompt_eval_count > 5);
    assert_true(gs.prompt_eval_duration > 0);
    memset(&gs, 0, sizeof(gs));
    assert_int_equal(pc_ollama_prefill(o, canon, NULL, "Once upon a time", NULL, 30000, &gs, &err),
                     PC_OK);
    assert_true(gs.prompt_eval_count > 0);
    assert_int_equal(pc_ollama_prefill(o, "nope", NULL, "x", NULL, 30000, NULL, &err),
                     PC_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "127.0.0.1"));
    /* The server's 400 stays the client's, with its text. */
    msgs = json_pack("[{s:s, s:s}]", "role", "narrator", "content", "x");
    assert_int_equal(pc_ollama_prefill(o, canon, msgs, NULL, NULL, 30000, NULL, &err),
                     PC_ERR_INVALID);
    json_decref(msgs);
    assert_non_null(strstr(err.msg, "narrator"));

    /* A proxied stream counts as in flight while it lives, and comes through whole. */
    struct pc_buf body = PC_BUF_INIT;
    int in_flight = 0;
    pull_stream(o, &body, &in_flight);
    assert_int_equal(in_flight, 1);
    assert_non_null(strstr(body.data, "\"done\":true"));
    assert_true(strchr(body.data, '\n') < body.data + body.len - 1); /* several lines */
    pc_buf_free(&body);
    pc_ollama_status(o, "m", &st);
    assert_int_equal(st.in_flight, 0);

    /* keep_alive 0 unloads. */
    assert_int_equal(pc_ollama_load(o, canon, "0", "", 30000, &err), PC_OK);
    assert_true(loaded_becomes(o, "m", false));
    bool loaded = true;
    assert_int_equal(pc_ollama_loaded(o, "m", &loaded, &err), PC_OK);
    assert_false(loaded);

    /* The server goes away: a request fails at once naming it; the models stay known, and
     * unavailable; on_change says they went. */
    pc_server_stop(srv);
    struct pc_ollama_stream *s = NULL;
    int status = 0;
    const char *ctype = NULL;
    assert_int_equal(pc_ollama_stream_open(o, "POST", "/api/generate", "{\"model\":\"m\"}",
                                           "m:latest", &s, &status, &ctype, &err),
                     PC_ERR_UNAVAILABLE);
    assert_null(s);
    assert_non_null(strstr(err.msg, pc_ollama_url(o)));
    assert_true(available_becomes(o, false));
    assert_true(calls_become(&rec, 2));
    pthread_mutex_lock(&rec.lock);
    assert_int_equal(rec.removed, 1);
    assert_int_equal(rec.models, 0);
    pthread_mutex_unlock(&rec.lock);
    assert_true(pc_ollama_has(o, "m", NULL));
    pc_ollama_status(o, "m", &st);
    assert_false(st.available);
    assert_int_equal(st.in_flight, 0);
    ps = pc_ollama_ps(o);
    assert_int_equal(json_array_size(ps), 0);
    json_decref(ps);

    /* Back on the same port: it recovers by itself. */
    srv = serve(home, port);
    assert_true(available_becomes(o, true));
    assert_true(calls_become(&rec, 3));
    pthread_mutex_lock(&rec.lock);
    assert_int_equal(rec.models, 1);
    pthread_mutex_unlock(&rec.lock);

    pc_ollama_free(o);

    /* With a poll ten minutes away, what a request finds is what moves the provider: a failed
     * one has the poller see the server gone, a successful one has it see it back. */
    assert_int_equal(pc_ollama_new(url, 600000, NULL, NULL, &o, &err), PC_OK);
    assert_true(pc_ollama_available(o));
    pc_server_stop(srv);
    assert_int_equal(pc_ollama_stream_open(o, "POST", "/api/generate", "{\"model\":\"m\"}",
                                           "m:latest", &s, &status, &ctype, &err),
                     PC_ERR_UNAVAILABLE);
    assert_true(available_becomes(o, false));
    srv = serve(home, port);
    assert_int_equal(pc_ollama_load(o, canon, "0", "", 30000, &err), PC_OK);
    assert_true(available_becomes(o, true));
    pc_ollama_free(o);

    pc_server_stop(srv);
    rm_rf(home);
}

int main(void)
{
    pc_engine_init(NULL, "none");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same),
        cmocka_unit_test(test_provider),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
