/* test_loop.c - a model's decode loop on a real (tiny, random) model: a sequence decoded in a
 * batch with others gives the logits and the answer it gives alone; a consumer that stops
 * reading gives its place to one that reads; a user's request outranks a storm of precharges;
 * a consumer that lets go cancels its task and leaves its sequence for the next; a call runs on
 * the loop's thread between two steps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "engine/engine.h"
#include "testmodel.h"

static char model_path[PATH_MAX + 16];

static int setup(void **state)
{
    (void)state;
    snprintf(model_path, sizeof(model_path), "%s/tiny.gguf", test_dir("loop"));
    make_tiny_model(model_path);
    pc_engine_init(NULL, "none");
    return 0;
}

static struct pc_model *load(uint32_t n_ctx, int32_t n_parallel)
{
    struct pc_model *m = NULL;
    struct pc_error err = {0};
    struct pc_model_params p = pc_model_default_params();
    p.n_ctx = n_ctx;
    p.n_parallel = n_parallel;
    p.n_threads = 1;
    assert_int_equal(pc_model_load(model_path, &p, &m, &err), PC_OK);
    return m;
}

static int32_t *tokens(struct pc_model *m, const char *text, size_t *n)
{
    int32_t *t = NULL;
    struct pc_error err = {0};
    assert_int_equal(pc_model_tokenize(m, text, &t, n, &err), PC_OK);
    return t;
}

/* A prompt of about words words, different for each seed. */
static char *prompt_text(int seed, int words)
{
    struct pc_buf b = PC_BUF_INIT;
    for (int i = 0; i < words; i++)
        pc_buf_printf(&b, "w%d_%d ", seed, i * 7 % 13);
    return pc_buf_steal(&b);
}

static struct pc_gen *start(struct pc_model *m, const char *text, int32_t num_predict,
                            enum pc_priority prio, bool prefill_only, bool want_logits)
{
    struct pc_gen_request req = {.prompt = text,
                                 .sampling = pc_sampling_default(),
                                 .priority = prio,
                                 .prefill_only = prefill_only,
                                 .want_logits = want_logits};
    req.sampling.temperature = 0;
    req.sampling.num_predict = num_predict;
    struct pc_gen *g = NULL;
    struct pc_error err = {0};
    assert_int_equal(pc_gen_start(m, &req, &g, &err), PC_OK);
    return g;
}

static void drain(struct pc_gen *g)
{
    bool done = false;
    struct pc_error err = {0};
    while (!done) {
        const char *t;
        size_t len;
        assert_int_equal(pc_gen_next(g, &t, &len, &done, &err), PC_OK);
    }
}

/* Four prompts handed over while the loop is parked go into one batch. The first one's logits
 * and its greedy answer are those it gets decoded alone. Each row of a batch is computed by the
 * same kernels over the same cells of its own sequence (the others' cells are masked out), so
 * the figures may differ only in the order of a sum; the test allows 1e-4 for that and reports
 * what it saw. */
static void test_batch_gives_what_alone_gives(void **state)
{
    (void)state;
    char *texts[4];
    for (int i = 0; i < 4; i++)
        texts[i] = prompt_text(i, 20 + 9 * i);
    int32_t n_vocab = 0;

    struct pc_model *alone = load(512, 4);
    struct pc_gen *g = start(alone, texts[0], 16, PC_PRIO_USER, false, true);
    struct pc_error err = {0};
    assert_int_equal(pc_gen_wait_prompt(g, &err), PC_OK);
    const float *l = pc_gen_logits(g, &n_vocab);
    assert_non_null(l);
    float *base = malloc((size_t)n_vocab * sizeof(float));
    memcpy(base, l, (size_t)n_vocab * sizeof(float));
    drain(g);
    int32_t *want = NULL;
    size_t n_want = 0;
    assert_int_equal(pc_gen_tokens(g, &want, &n_want, &err), PC_OK);
    pc_gen_free(g);
    pc_model_free(alone);

    struct pc_model *m = load(512, 4);
    struct pc_slot *slot;
    struct pc_gen *gs[4];
    pc_slot_acquire(m, PC_PRIO_USER, &slot); /* the loop waits: all four arrive at once */
    for (int i = 0; i < 4; i++)
        gs[i] = start(m, texts[i], 16, PC_PRIO_USER, false, i == 0);
    pc_slot_release(slot);
    assert_int_equal(pc_gen_wait_prompt(gs[0], &err), PC_OK);
    float diff = test_max_diff(base, pc_gen_logits(gs[0], &n_vocab), n_vocab);
    print_message("batched vs alone: largest logit difference %g\n", (double)diff);
    assert_true(diff <= 1e-4f);
    for (int i = 0; i < 4; i++)
        drain(gs[i]);
    int32_t *got = NULL;
    size_t n_got = 0;
    assert_int_equal(pc_gen_tokens(gs[0], &got, &n_got, &err), PC_OK);
    assert_int_equal(n_got, n_want);
    assert_memory_equal(got, want, n_want * sizeof(*got));

    struct pc_loop_stats st;
    pc_model_loop_stats(m, &st);
    assert_true(st.multi_steps >= 1); /* they did share batches */
    for (int i = 0; i < 4; i++) {
        pc_gen_free(gs[i]);
        free(texts[i]);
    }
    free(got);
    free(want);
    free(base);
    pc_model_free(m);
}

/* One place, and a consumer that never reads: once its buffer is full its task waits for it,
 * and a second request runs to its end meanwhile. */
static void test_a_stalled_consumer_does_not_hold_the_model(void **state)
{
    (void)state;
    struct pc_model *m = load(2048, 1);
    struct pc_gen *stalled = start(m, "Tell me everything.", 1800, PC_PRIO_USER, false, false);
    struct pc_gen *other = start(m, "Hello", 4, PC_PRIO_USER, false, false);
    drain(other);
    assert_string_equal(pc_gen_done_reason(other), "length");
    /* The first is still there, unfinished: its end has not come. */
    const char *t;
    size_t len;
    bool done = true;
    struct pc_error err = {0};
    assert_int_equal(pc_gen_poll(stalled, &t, &len, &done, &err), PC_OK);
    assert_false(done);
    struct pc_loop_stats st;
    pc_model_loop_stats(m, &st);
    assert_true(st.yielded >= 1);
    pc_gen_free(other);
    pc_gen_free(stalled);
    pc_model_free(m);
}

/* Two places filled by a storm of precharges: a user's request takes a precharge's place and
 * its prompt goes into the next batch; it is done at most two batches after it arrived (the one
 * under way, then its own), long before the storm is over. */
static void test_users_outrank_a_storm_of_precharges(void **state)
{
    (void)state;
    struct pc_model *m = load(1024, 2);
    enum { STORM = 8 };
    struct pc_gen *pre[STORM];
    char *texts[STORM];
    for (int i = 0; i < STORM; i++) {
        texts[i] = prompt_text(100 + i, 120);
        pre[i] = start(m, texts[i], 0, PC_PRIO_LOW, true, false);
    }
    struct pc_loop_stats st;
    do {
        usleep(1000);
        pc_model_loop_stats(m, &st);
    } while (st.steps == 0);

    uint64_t arrived = st.steps;
    struct pc_gen *user = start(m, "A question from a user.", 1, PC_PRIO_USER, false, false);
    struct pc_error err = {0};
    assert_int_equal(pc_gen_wait_prompt(user, &err), PC_OK);
    pc_model_loop_stats(m, &st);
    print_message("the user's prompt was done %llu batches after it arrived\n",
                  (unsigned long long)(st.steps - arrived));
    assert_true(st.steps - arrived <= 2);
    /* The storm goes on after it: the last precharge is not done. */
    const char *t;
    size_t len;
    bool done = true;
    assert_int_equal(pc_gen_poll(pre[STORM - 1], &t, &len, &done, &err), PC_OK);
    assert_false(done);

    drain(user);
    pc_gen_free(user);
    for (int i = 0; i < STORM; i++) {
        drain(pre[i]);
        assert_string_equal(pc_gen_done_reason(pre[i]), "prefilled");
        pc_gen_free(pre[i]);
        free(texts[i]);
    }
    pc_model_free(m);
}

/* A consumer that lets go mid-answer cancels its task at the next step; what the sequence holds
 * is kept, and the next request with the same prompt reuses it. */
static void test_letting_go_cancels_and_keeps_the_sequence(void **state)
{
    (void)state;
    struct pc_model *m = load(1024, 4);
    const char *text = "Once upon a time, in a land far away,";
    struct pc_gen *g = start(m, text, 500, PC_PRIO_USER, false, false);
    const char *t;
    size_t len;
    bool done;
    struct pc_error err = {0};
    assert_int_equal(pc_gen_next(g, &t, &len, &done, &err), PC_OK);
    pc_gen_free(g);
    struct pc_loop_stats st;
    for (int i = 0; i < 5000; i++) {
        pc_model_loop_stats(m, &st);
        if (st.cancelled >= 1)
            break;
        usleep(1000);
    }
    assert_int_equal(st.cancelled, 1);
    assert_int_equal(st.active, 0);

    size_t n = 0;
    int32_t *toks = tokens(m, text, &n);
    g = start(m, text, 1, PC_PRIO_USER, false, false);
    assert_int_equal(pc_gen_wait_prompt(g, &err), PC_OK);
    assert_int_equal(pc_gen_stats(g)->cached_tokens, (int32_t)n - 1);
    drain(g);
    pc_gen_free(g);
    free(toks);
    pc_model_free(m);
}

struct call_seen {
    pthread_t caller;
    bool on_other_thread;
    size_t live;
};

static void look(struct pc_slot *s, void *arg)
{
    struct call_seen *c = arg;
    c->on_other_thread = !pthread_equal(pthread_self(), c->caller);
    c->live = pc_slot_list(s, NULL, 0);
}

/* A call runs on the loop's own thread between two steps, while a generation is under way;
 * the generation goes on after it. */
static void test_a_call_runs_on_the_loop_between_steps(void **state)
{
    (void)state;
    struct pc_model *m = load(1024, 4);
    struct pc_gen *g = start(m, "Hello there", 200, PC_PRIO_USER, false, false);
    struct pc_error err = {0};
    assert_int_equal(pc_gen_wait_prompt(g, &err), PC_OK);
    struct call_seen c = {.caller = pthread_self()};
    pc_model_call(m, look, &c);
    assert_true(c.on_other_thread);
    assert_int_equal(c.live, 1); /* the generation's sequence, paused */
    drain(g);
    assert_string_equal(pc_gen_done_reason(g), "length");
    assert_int_equal(pc_gen_stats(g)->eval_tokens, 200);
    pc_gen_free(g);
    pc_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_gives_what_alone_gives),
        cmocka_unit_test(test_a_stalled_consumer_does_not_hold_the_model),
        cmocka_unit_test(test_users_outrank_a_storm_of_precharges),
        cmocka_unit_test(test_letting_go_cancels_and_keeps_the_sequence),
        cmocka_unit_test(test_a_call_runs_on_the_loop_between_steps),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
