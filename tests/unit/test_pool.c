/* test_pool.c - resident models: shared loads, reference counts, keep-alive, unload while in
 * use, making room, and failed loads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "base/duration.h"
#include "base/file.h"
#include "pool/pool.h"
#include "testmodel.h"

static char model_a[PATH_MAX + 16], model_b[PATH_MAX + 16], broken[PATH_MAX + 16];

static int setup(void **state)
{
    (void)state;
    const char *dir = test_dir("pool");
    snprintf(model_a, sizeof(model_a), "%s/a.gguf", dir);
    snprintf(model_b, sizeof(model_b), "%s/b.gguf", dir);
    snprintf(broken, sizeof(broken), "%s/broken.gguf", dir);
    make_tiny_model(model_a);
    make_tiny_model(model_b);
    struct pc_error err = {0};
    assert_int_equal(pc_file_write_atomic(broken, "GGUF-but-not-really", 19, &err), PC_OK);
    pc_engine_init(NULL, "none");
    return 0;
}

static struct pc_pool *new_pool(size_t max_models, int64_t keep_alive_ns)
{
    struct pc_pool_config cfg = {
        .max_models = max_models,
        .default_keep_alive_ns = keep_alive_ns,
        .model_params = pc_model_default_params(),
    };
    cfg.model_params.n_ctx = 256;
    cfg.model_params.n_threads = 1;
    struct pc_pool *p = pc_pool_new(&cfg);
    assert_non_null(p);
    return p;
}

static size_t resident(struct pc_pool *p, const char *name)
{
    struct pc_pool_status *st = NULL;
    size_t n = pc_pool_list(p, &st), found = 0;
    for (size_t i = 0; i < n; i++)
        found += name == NULL || strcmp(st[i].name, name) == 0;
    free(st);
    return found;
}

/* Poll for a state the pool's timer thread reaches on its own: a bound on the wait, never an
 * assertion about how long it took. */
static bool eventually_gone(struct pc_pool *p, const char *name)
{
    for (int i = 0; i < 3000; i++) {
        if (resident(p, name) == 0)
            return true;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

static void test_second_acquire_reuses_the_model(void **state)
{
    (void)state;
    struct pc_pool *p = new_pool(2, PC_DURATION_FOREVER);
    struct pc_pool_entry *e1, *e2;
    bool loaded;
    struct pc_error err = {0};
    assert_int_equal(pc_pool_acquire(p, "a", model_a, -1, &e1, &loaded, &err), PC_OK);
    assert_true(loaded);
    assert_int_equal(pc_pool_acquire(p, "a", model_a, -1, &e2, &loaded, &err), PC_OK);
    assert_false(loaded);
    assert_ptr_equal(pc_pool_entry_model(e1), pc_pool_entry_model(e2));
    pc_pool_release(p, e1);
    pc_pool_release(p, e2);
    assert_int_equal(resident(p, "a"), 1);
    pc_pool_free(p);
}

struct racer {
    struct pc_pool *p;
    struct pc_pool_entry *e;
    bool loaded;
    enum pc_err rc;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct pc_error err = {0};
    r->rc = pc_pool_acquire(r->p, "a", model_a, -1, &r->e, &r->loaded, &err);
    return NULL;
}

static void test_concurrent_acquires_share_one_load(void **state)
{
    (void)state;
    struct pc_pool *p = new_pool(2, PC_DURATION_FOREVER);
    struct racer r[6];
    pthread_t t[6];
    for (int i = 0; i < 6; i++) {
        r[i] = (struct racer){.p = p};
        pthread_create(&t[i], NULL, race, &r[i]);
    }
    int loads = 0;
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].rc, PC_OK);
        loads += r[i].loaded;
        assert_ptr_equal(pc_pool_entry_model(r[i].e), pc_pool_entry_model(r[0].e));
    }
    assert_int_equal(loads, 1);
    for (int i = 0; i < 6; i++)
        pc_pool_release(p, r[i].e);
    pc_pool_free(p);
}

static void test_keep_alive_zero_and_expiry_unload(void **state)
{
    (void)state;
    struct pc_pool *p = new_pool(2, PC_DURATION_FOREVER);
    struct pc_pool_entry *e;
    struct pc_error err = {0};

    assert_int_equal(pc_pool_acquire(p, "a", model_a, 0, &e, NULL, &err), PC_OK);
    pc_pool_release(p, e);
    assert_true(eventually_gone(p, "a"));

    assert_int_equal(pc_pool_acquire(p, "a", model_a, 50 * 1000 * 1000, &e, NULL, &err), PC_OK);
    pc_pool_release(p, e); /* 50 ms from now */
    assert_true(eventually_gone(p, "a"));

    /* Forever stays. */
    assert_int_equal(pc_pool_acquire(p, "b", model_b, PC_DURATION_FOREVER, &e, NULL, &err), PC_OK);
    pc_pool_release(p, e);
    struct pc_pool_status *st = NULL;
    assert_int_equal(pc_pool_list(p, &st), 1);
    assert_true(st[0].expires_wall_ns == INT64_MAX);
    free(st);
    pc_pool_free(p);
}

static void test_unload_waits_for_the_last_user(void **state)
{
    (void)state;
    struct pc_pool *p = new_pool(2, PC_DURATION_FOREVER);
    struct pc_pool_entry *e;
    struct pc_error err = {0};
    assert_int_equal(pc_pool_acquire(p, "a", model_a, -1, &e, NULL, &err), PC_OK);
    assert_int_equal(pc_pool_unload(p, "a", &err), PC_OK);

    /* Still usable by its holder while the unload is pending. */
    struct pc_gen_request req = {.prompt = "Hello", .sampling = pc_sampling_default()};
    req.sampling.num_predict = 2;
    struct pc_gen *g = NULL;
    struct pc_slot *slot = NULL;
    pc_slot_acquire(pc_pool_entry_model(e), PC_PRIO_USER, &slot);
    assert_int_equal(pc_gen_start(slot, &req, &g, &err), PC_OK);
    pc_gen_free(g);
    pc_slot_release(slot);

    pc_pool_release(p, e);
    assert_true(eventually_gone(p, "a"));
    assert_int_equal(pc_pool_unload(p, "never-loaded", &err), PC_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "never-loaded"));
    pc_pool_free(p);
}

struct waiter {
    struct pc_pool *p;
    atomic_bool got;
    struct pc_pool_entry *e;
};

static void *acquire_b(void *arg)
{
    struct waiter *w = arg;
    struct pc_error err = {0};
    if (pc_pool_acquire(w->p, "b", model_b, -1, &w->e, NULL, &err) == PC_OK)
        atomic_store(&w->got, true);
    return NULL;
}

static void test_full_pool_evicts_idle_and_waits_for_busy(void **state)
{
    (void)state;
    struct pc_pool *p = new_pool(1, PC_DURATION_FOREVER);
    struct pc_pool_entry *e;
    struct pc_error err = {0};

    /* a is idle: loading b evicts it. */
    assert_int_equal(pc_pool_acquire(p, "a", model_a, -1, &e, NULL, &err), PC_OK);
    pc_pool_release(p, e);
    assert_int_equal(pc_pool_acquire(p, "b", model_b, -1, &e, NULL, &err), PC_OK);
    assert_int_equal(resident(p, "a"), 0);
    assert_int_equal(resident(p, "b"), 1);
    pc_pool_release(p, e);

    /* a is busy: b waits until a is released. */
    struct pc_pool_entry *ea;
    assert_int_equal(pc_pool_acquire(p, "a", model_a, -1, &ea, NULL, &err), PC_OK);
    struct waiter w = {.p = p};
    atomic_init(&w.got, false);
    pthread_t t;
    pthread_create(&t, NULL, acquire_b, &w);
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_false(atomic_load(&w.got));
    pc_pool_release(p, ea);
    pthread_join(t, NULL);
    assert_true(atomic_load(&w.got));
    assert_int_equal(resident(p, "a"), 0);
    pc_pool_release(p, w.e);
    pc_pool_free(p);
}

static void test_failed_load_is_reported_and_not_kept(void **state)
{
    (void)state;
    struct pc_pool *p = new_pool(2, PC_DURATION_FOREVER);
    struct pc_pool_entry *e = (struct pc_pool_entry *)0x1;
    struct pc_error err = {0};
    assert_int_not_equal(pc_pool_acquire(p, "broken", broken, -1, &e, NULL, &err), PC_OK);
    assert_null(e);
    assert_non_null(strstr(err.msg, "broken.gguf"));
    assert_int_equal(resident(p, NULL), 0);
    /* Asked again, it is tried again (and fails again), not served from a cache of failure. */
    assert_int_not_equal(pc_pool_acquire(p, "broken", broken, -1, &e, NULL, &err), PC_OK);
    pc_pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_acquire_reuses_the_model),
        cmocka_unit_test(test_concurrent_acquires_share_one_load),
        cmocka_unit_test(test_keep_alive_zero_and_expiry_unload),
        cmocka_unit_test(test_unload_waits_for_the_last_user),
        cmocka_unit_test(test_full_pool_evicts_idle_and_waits_for_busy),
        cmocka_unit_test(test_failed_load_is_reported_and_not_kept),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
