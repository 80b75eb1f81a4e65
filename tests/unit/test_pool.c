/* test_pool.c - resident models: shared loads, reference counts, keep-alive, unload while in
 * use, eviction order of each policy, preloads, pinning, budget admission and the
 * insufficient-memory error, charges, stats, a load that does not block the others, and failed
 * loads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/duration.h"
#include "base/file.h"
#include "pool/pool.h"
#include "testmodel.h"

#define N_MODELS 4
static const char *const names[N_MODELS] = {"a", "b", "c", "d"};
static char paths[N_MODELS][PATH_MAX + 16], broken[PATH_MAX + 16], slow[PATH_MAX + 16];
static uint64_t tiny_estimate; /* what admission counts for one tiny model at n_ctx 256 */

static struct pc_model_params test_params(void)
{
    struct pc_model_params mp = pc_model_default_params();
    mp.n_ctx = 256;
    mp.n_threads = 1;
    return mp;
}

static int setup(void **state)
{
    (void)state;
    const char *dir = test_dir("pool");
    for (int i = 0; i < N_MODELS; i++) {
        snprintf(paths[i], sizeof(paths[i]), "%s/%s.gguf", dir, names[i]);
        make_tiny_model(paths[i]);
    }
    snprintf(broken, sizeof(broken), "%s/broken.gguf", dir);
    snprintf(slow, sizeof(slow), "%s/slow.gguf", dir);
    struct pc_error err = {0};
    assert_int_equal(pc_file_write_atomic(broken, "GGUF-but-not-really", 19, &err), PC_OK);
    pc_engine_init(NULL, "none");
    struct pc_model_params mp = test_params();
    struct pc_estimate est;
    assert_int_equal(pc_model_estimate(paths[0], &mp, &est, &err), PC_OK);
    tiny_estimate = est.host_total + est.device_total;
    print_message("tiny model at n_ctx 256: estimate %.2f MiB\n", (double)tiny_estimate / 1048576);
    return 0;
}

static struct pc_pool *pool_with(size_t max_models, int64_t keep_alive_ns, uint64_t budget,
                                 enum pc_pool_policy policy)
{
    struct pc_pool_config cfg = {
        .max_models = max_models,
        .default_keep_alive_ns = keep_alive_ns,
        .model_params = test_params(),
        .budget_bytes = budget,
        .policy = policy,
    };
    struct pc_pool *p = pc_pool_new(&cfg);
    assert_non_null(p);
    return p;
}

static struct pc_pool *new_pool(size_t max_models, int64_t keep_alive_ns)
{
    return pool_with(max_models, keep_alive_ns, 0, PC_POOL_LRU);
}

static const char *path_of(const char *name)
{
    for (int i = 0; i < N_MODELS; i++)
        if (strcmp(names[i], name) == 0)
            return paths[i];
    return broken;
}

/* One use of a model: acquire and release at once. */
static void use(struct pc_pool *p, const char *name)
{
    struct pc_pool_entry *e = NULL;
    struct pc_error err = {0};
    assert_int_equal(pc_pool_acquire(p, name, path_of(name), -1, &e, NULL, &err), PC_OK);
    pc_pool_release(p, e);
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

/* The resident models as one string, most recently used first: "b,a". */
static const char *residents(struct pc_pool *p)
{
    static char buf[64];
    struct pc_pool_status *st = NULL;
    size_t n = pc_pool_list(p, &st);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strcat(buf, i ? "," : "");
        strncat(buf, st[i].name, 8);
    }
    free(st);
    return buf;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* Poll for a state the pool's timer thread reaches on its own: a bound on the wait, never an
 * assertion about how long it took. */
static bool eventually_gone(struct pc_pool *p, const char *name)
{
    for (int i = 0; i < 3000; i++) {
        if (resident(p, name) == 0)
            return true;
        pause_ms(10);
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
    assert_int_equal(pc_pool_acquire(p, "a", paths[0], -1, &e1, &loaded, &err), PC_OK);
    assert_true(loaded);
    assert_int_equal(pc_pool_acquire(p, "a", paths[0], -1, &e2, &loaded, &err), PC_OK);
    assert_false(loaded);
    assert_ptr_equal(pc_pool_entry_model(e1), pc_pool_entry_model(e2));
    pc_pool_release(p, e1);
    pc_pool_release(p, e2);
    assert_int_equal(resident(p, "a"), 1);
    /* A resident model is found without its path; a model that is not is not loaded. */
    assert_int_equal(pc_pool_acquire(p, "a", NULL, -1, &e1, &loaded, &err), PC_OK);
    pc_pool_release(p, e1);
    assert_int_equal(pc_pool_acquire(p, "b", NULL, -1, &e1, &loaded, &err), PC_ERR_NOT_FOUND);
    assert_null(e1);
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
    r->rc = pc_pool_acquire(r->p, "a", paths[0], -1, &r->e, &r->loaded, &err);
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
    struct pc_pool_stats st;
    pc_pool_stats(p, &st);
    assert_int_equal(st.hits + st.misses, 6); /* one load: its waiters are misses, the rest hits */
    assert_true(st.misses >= 1);
    assert_int_equal(st.loaded, 1);
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

    assert_int_equal(pc_pool_acquire(p, "a", paths[0], 0, &e, NULL, &err), PC_OK);
    pc_pool_release(p, e);
    assert_true(eventually_gone(p, "a"));

    assert_int_equal(pc_pool_acquire(p, "a", paths[0], 50 * 1000 * 1000, &e, NULL, &err), PC_OK);
    pc_pool_release(p, e); /* 50 ms from now */
    assert_true(eventually_gone(p, "a"));

    /* Forever stays. */
    assert_int_equal(pc_pool_acquire(p, "b", paths[1], PC_DURATION_FOREVER, &e, NULL, &err), PC_OK);
    pc_pool_release(p, e);
    struct pc_pool_status *st = NULL;
    assert_int_equal(pc_pool_list(p, &st), 1);
    assert_true(st[0].expires_wall_ns == INT64_MAX);
    free(st);

    struct pc_pool_stats stats;
    pc_pool_stats(p, &stats);
    /* 1 or 2: the second acquire may find a before the timer thread unloads it, and keep it. */
    assert_true(stats.expirations >= 1 && stats.expirations <= 2);
    assert_int_equal(stats.evictions, 0);
    pc_pool_free(p);
}

static void test_pinned_model_outlives_its_keep_alive(void **state)
{
    (void)state;
    struct pc_pool *p = new_pool(2, PC_DURATION_FOREVER);
    struct pc_error err = {0};
    /* Pinned with a keep-alive of 0: a request's keep-alive does not unload a pinned model. */
    assert_int_equal(pc_pool_preload(p, "a", paths[0], 0, 1, NULL, &err), PC_OK);
    struct pc_pool_entry *e;
    assert_int_equal(pc_pool_acquire(p, "a", paths[0], 0, &e, NULL, &err), PC_OK);
    pc_pool_release(p, e);
    struct pc_pool_status *st = NULL;
    assert_int_equal(pc_pool_list(p, &st), 1);
    assert_true(st[0].pinned);
    assert_true(st[0].expires_wall_ns == INT64_MAX);
    free(st);
    /* The reaper has had its chance: a model with keep-alive 0 would be gone by the time a
     * later one-use model expires. */
    assert_int_equal(pc_pool_acquire(p, "b", paths[1], 0, &e, NULL, &err), PC_OK);
    pc_pool_release(p, e);
    assert_true(eventually_gone(p, "b"));
    assert_int_equal(resident(p, "a"), 1);

    /* Unpinned, its keep-alive (0) runs again. */
    assert_int_equal(pc_pool_pin(p, "a", false, &err), PC_OK);
    assert_true(eventually_gone(p, "a"));
    assert_int_equal(pc_pool_pin(p, "a", true, &err), PC_ERR_NOT_FOUND);
    pc_pool_free(p);
}

static void test_unload_waits_for_the_last_user(void **state)
{
    (void)state;
    struct pc_pool *p = new_pool(2, PC_DURATION_FOREVER);
    struct pc_pool_entry *e;
    struct pc_error err = {0};
    assert_int_equal(pc_pool_acquire(p, "a", paths[0], -1, &e, NULL, &err), PC_OK);
    int in_use = 0;
    assert_int_equal(pc_pool_unload_ex(p, "a", &in_use, &err), PC_OK);
    assert_int_equal(in_use, 1);

    /* Still usable by its holder while the unload is pending. */
    int32_t *toks = NULL;
    size_t n = 0;
    assert_int_equal(pc_model_tokenize(pc_pool_entry_model(e), "Hello", &toks, &n, &err), PC_OK);
    assert_true(n > 0);
    free(toks);
    assert_int_equal(resident(p, "a"), 1);

    pc_pool_release(p, e);
    assert_true(eventually_gone(p, "a"));
    assert_int_equal(pc_pool_unload(p, "never-loaded", &err), PC_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "never-loaded"));
    struct pc_pool_stats st;
    pc_pool_stats(p, &st);
    assert_int_equal(st.expirations, 0); /* asked for, not expired */
    pc_pool_free(p);
}

struct waiter {
    struct pc_pool *p;
    const char *name;
    atomic_bool got;
    enum pc_err rc;
    struct pc_pool_entry *e;
};

static void *acquire_in_thread(void *arg)
{
    struct waiter *w = arg;
    struct pc_error err = {0};
    w->rc = pc_pool_acquire(w->p, w->name, path_of(w->name), -1, &w->e, NULL, &err);
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
    use(p, "a");
    assert_int_equal(pc_pool_acquire(p, "b", paths[1], -1, &e, NULL, &err), PC_OK);
    assert_int_equal(resident(p, "a"), 0);
    assert_int_equal(resident(p, "b"), 1);
    pc_pool_release(p, e);

    /* a is busy: b waits until a is released, as Ollama queues; no_wait fails at once. */
    struct pc_pool_entry *ea;
    assert_int_equal(pc_pool_acquire(p, "a", paths[0], -1, &ea, NULL, &err), PC_OK);
    struct pc_pool_acquire_params pr = pc_pool_acquire_default_params();
    pr.no_wait = true;
    assert_int_equal(pc_pool_acquire_with(p, "b", paths[1], &pr, &e, NULL, &err), PC_ERR_BUSY);
    assert_null(e);
    struct waiter w = {.p = p, .name = "b"};
    atomic_init(&w.got, false);
    pthread_t t;
    pthread_create(&t, NULL, acquire_in_thread, &w);
    pause_ms(100);
    assert_false(atomic_load(&w.got)); /* still waiting: a model in use is never evicted */
    pc_pool_release(p, ea);
    pthread_join(t, NULL);
    assert_int_equal(w.rc, PC_OK);
    assert_int_equal(resident(p, "a"), 0);
    pc_pool_release(p, w.e);
    pc_pool_free(p);
}

/* a b c c c a a b: a was admitted first, c was used least recently, b least often. */
static void victim_of(enum pc_pool_policy policy, const char *expected_left)
{
    struct pc_pool *p = pool_with(3, PC_DURATION_FOREVER, 0, policy);
    static const char *const seq[] = {"a", "b", "c", "c", "c", "a", "a", "b"};
    for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++)
        use(p, seq[i]);
    use(p, "d");
    assert_int_equal(resident(p, NULL), 3);
    assert_int_equal(resident(p, expected_left), 0);
    struct pc_pool_stats st;
    pc_pool_stats(p, &st);
    assert_int_equal(st.evictions, 1);
    assert_int_equal(st.misses, 4);
    assert_int_equal(st.hits, 5);
    pc_pool_free(p);
}

static void test_eviction_order_of_each_policy(void **state)
{
    (void)state;
    victim_of(PC_POOL_LRU, "c");
    victim_of(PC_POOL_LFU, "b");
    victim_of(PC_POOL_FIFO, "a");

    /* LRU, step by step: each new model evicts the least recently used. */
    struct pc_pool *p = new_pool(2, PC_DURATION_FOREVER);
    use(p, "a");
    use(p, "b");
    assert_string_equal(residents(p), "b,a");
    use(p, "a");
    assert_string_equal(residents(p), "a,b");
    use(p, "c");
    assert_string_equal(residents(p), "c,a");
    use(p, "d");
    assert_string_equal(residents(p), "d,c");
    pc_pool_free(p);
}

static void test_preload_is_not_a_use(void **state)
{
    (void)state;
    struct pc_pool *p = new_pool(2, PC_DURATION_FOREVER);
    struct pc_error err = {0};
    bool loaded = false;
    use(p, "a");
    use(p, "b");
    /* A preload of a resident model changes nothing: a stays the least recently used. */
    assert_int_equal(pc_pool_preload(p, "a", paths[0], -1, -1, &loaded, &err), PC_OK);
    assert_false(loaded);
    assert_string_equal(residents(p), "b,a");
    /* Preloading c evicts a; c, never used, is then first in line, before b. */
    assert_int_equal(pc_pool_preload(p, "c", paths[2], -1, -1, &loaded, &err), PC_OK);
    assert_true(loaded);
    assert_int_equal(resident(p, "a"), 0);
    use(p, "d");
    assert_int_equal(resident(p, "c"), 0);
    assert_int_equal(resident(p, "b"), 1);

    struct pc_pool_stats st;
    pc_pool_stats(p, &st);
    assert_int_equal(st.preloads, 1);
    assert_int_equal(st.misses, 3); /* a, b, d */
    assert_int_equal(st.hits, 0);
    assert_int_equal(st.evictions, 2);

    /* Under LFU too: a preloaded model has no uses. */
    pc_pool_free(p);
    p = pool_with(2, PC_DURATION_FOREVER, 0, PC_POOL_LFU);
    use(p, "a");
    assert_int_equal(pc_pool_preload(p, "b", paths[1], -1, -1, NULL, &err), PC_OK);
    use(p, "c"); /* evicts b (0 uses), not a (1 use) */
    assert_int_equal(resident(p, "b"), 0);
    assert_int_equal(resident(p, "a"), 1);
    pc_pool_free(p);
}

/* A look (a health check) is not a use: the expiry stays, and checks more often than the
 * keep-alive do not keep the model. */
static void test_a_look_keeps_the_expiry(void **state)
{
    (void)state;
    struct pc_pool *p = new_pool(2, PC_DURATION_FOREVER);
    struct pc_pool_entry *e;
    struct pc_error err = {0};
    assert_int_equal(pc_pool_acquire(p, "a", paths[0], 60ll * 1000000000, &e, NULL, &err), PC_OK);
    pc_pool_release(p, e);
    struct pc_pool_status *st = NULL;
    assert_int_equal(pc_pool_list(p, &st), 1);
    int64_t expires = st[0].expires_wall_ns;
    free(st);
    struct pc_pool_acquire_params look = pc_pool_acquire_default_params();
    look.preload = true;
    pause_ms(20);
    assert_int_equal(pc_pool_acquire_with(p, "a", NULL, &look, &e, NULL, &err), PC_OK);
    pc_pool_release_look(p, e);
    assert_int_equal(pc_pool_list(p, &st), 1);
    /* The wall clock of the expiry is worked out from the monotonic one: allow a little. */
    assert_true(st[0].expires_wall_ns - expires < 10 * 1000 * 1000);
    assert_int_equal(st[0].uses, 1);
    free(st);

    /* 100 ms of keep-alive, looked at every 10 ms: it still goes. */
    assert_int_equal(pc_pool_acquire(p, "b", paths[1], 100 * 1000 * 1000, &e, NULL, &err), PC_OK);
    pc_pool_release(p, e);
    bool gone = false;
    for (int i = 0; i < 3000 && !gone; i++) {
        if (pc_pool_acquire_with(p, "b", NULL, &look, &e, NULL, &err) == PC_OK)
            pc_pool_release_look(p, e);
        else
            gone = true;
        pause_ms(10);
    }
    assert_true(gone);
    pc_pool_free(p);
}

static void test_pinned_models_are_never_evicted(void **state)
{
    (void)state;
    struct pc_pool *p = new_pool(2, PC_DURATION_FOREVER);
    struct pc_error err = {0};
    struct pc_pool_entry *e = NULL;
    assert_int_equal(pc_pool_preload(p, "a", paths[0], -1, 1, NULL, &err), PC_OK);
    use(p, "b");
    use(p, "c"); /* a is the least recently used, but pinned: b goes */
    assert_int_equal(resident(p, "a"), 1);
    assert_int_equal(resident(p, "b"), 0);

    /* Everything pinned: the next load fails at once, and nothing is lost. */
    assert_int_equal(pc_pool_pin(p, "c", true, &err), PC_OK);
    assert_int_equal(pc_pool_acquire(p, "d", paths[3], -1, &e, NULL, &err), PC_ERR_NO_MEMORY);
    assert_null(e);
    assert_non_null(strstr(err.msg, "insufficient memory"));
    assert_non_null(strstr(err.msg, "2 pinned"));
    assert_string_equal(residents(p), "c,a");

    /* An explicit unload wins over a pin. */
    assert_int_equal(pc_pool_unload(p, "a", &err), PC_OK);
    assert_true(eventually_gone(p, "a"));
    use(p, "d");
    assert_string_equal(residents(p), "d,c");
    struct pc_pool_stats st;
    pc_pool_stats(p, &st);
    assert_int_equal(st.pinned, 1);
    assert_int_equal(st.rejections, 1);
    pc_pool_free(p);
}

static void test_budget_admission_and_insufficient_memory(void **state)
{
    (void)state;
    /* Room for two tiny models by bytes, not three; the count limit is not what binds. */
    uint64_t budget = tiny_estimate * 9 / 4;
    struct pc_pool *p = pool_with(8, PC_DURATION_FOREVER, budget, PC_POOL_LRU);
    struct pc_error err = {0};
    struct pc_pool_entry *e = NULL;
    use(p, "a");
    use(p, "b");
    use(p, "c"); /* evicts a by bytes */
    assert_string_equal(residents(p), "c,b");
    struct pc_pool_stats st;
    pc_pool_stats(p, &st);
    assert_int_equal(st.evictions, 1);
    assert_true(st.used_bytes <= budget);
    assert_true(st.pressure); /* two of two and a quarter */

    /* Memory figures are the real ones after load, and they add up. */
    struct pc_pool_status *list = NULL;
    size_t n = pc_pool_list(p, &list);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += list[i].memory_bytes;
        const struct pc_model_info *in = &list[i].info;
        assert_true(list[i].memory_bytes == in->weights_bytes + in->kv_bytes + in->compute_bytes);
    }
    free(list);
    assert_true(sum == st.used_bytes);

    /* b and c pinned: d cannot fit beside them and fails at once with the figures. */
    assert_int_equal(pc_pool_pin(p, "b", true, &err), PC_OK);
    assert_int_equal(pc_pool_pin(p, "c", true, &err), PC_OK);
    assert_int_equal(pc_pool_acquire(p, "d", paths[3], -1, &e, NULL, &err), PC_ERR_NO_MEMORY);
    assert_null(e);
    assert_non_null(strstr(err.msg, "insufficient memory: need "));
    assert_non_null(strstr(err.msg, ", free "));
    assert_non_null(strstr(err.msg, ", pinned "));
    assert_string_equal(residents(p), "c,b");
    pc_pool_free(p);

    /* A model larger than the whole budget fails at once, with nothing evicted. */
    p = pool_with(8, PC_DURATION_FOREVER, tiny_estimate / 2, PC_POOL_LRU);
    assert_int_equal(pc_pool_acquire(p, "a", paths[0], -1, &e, NULL, &err), PC_ERR_NO_MEMORY);
    assert_non_null(strstr(err.msg, "pinned 0.0 MiB"));
    pc_pool_stats(p, &st);
    assert_int_equal(st.rejections, 1);
    assert_int_equal(st.used_bytes, 0);
    pc_pool_free(p);
}

static void test_budget_waits_for_busy_models_not_for_pinned(void **state)
{
    (void)state;
    uint64_t budget = tiny_estimate * 5 / 2;
    struct pc_pool *p = pool_with(8, PC_DURATION_FOREVER, budget, PC_POOL_LRU);
    struct pc_error err = {0};
    struct pc_pool_entry *ea = NULL, *e = NULL;
    assert_int_equal(pc_pool_preload(p, "b", paths[1], -1, 1, NULL, &err), PC_OK);
    assert_int_equal(pc_pool_acquire(p, "a", paths[0], -1, &ea, NULL, &err), PC_OK);

    /* a is in use, b is pinned: c would fit once a is released, so it waits for that. */
    struct pc_pool_acquire_params pr = pc_pool_acquire_default_params();
    pr.no_wait = true;
    assert_int_equal(pc_pool_acquire_with(p, "c", paths[2], &pr, &e, NULL, &err), PC_ERR_BUSY);
    struct waiter w = {.p = p, .name = "c"};
    atomic_init(&w.got, false);
    pthread_t t;
    pthread_create(&t, NULL, acquire_in_thread, &w);
    pause_ms(100);
    assert_false(atomic_load(&w.got));
    pc_pool_release(p, ea);
    pthread_join(t, NULL);
    assert_int_equal(w.rc, PC_OK);
    assert_int_equal(resident(p, "a"), 0);
    assert_int_equal(resident(p, "b"), 1);
    pc_pool_release(p, w.e);
    pc_pool_free(p);
}

static atomic_int unloads;
static char last_why[16]; /* written before unloads is counted, read after */
static void count_unload(void *user, const char *name, struct pc_model *m, const char *why)
{
    (void)user;
    assert_non_null(name);
    assert_non_null(m);
    snprintf(last_why, sizeof(last_why), "%s", why);
    unloads++;
}

static void test_charges_count_in_the_budget(void **state)
{
    (void)state;
    uint64_t budget = tiny_estimate * 5 / 2;
    struct pc_pool_config cfg = {
        .max_models = 8,
        .default_keep_alive_ns = PC_DURATION_FOREVER,
        .model_params = test_params(),
        .budget_bytes = budget,
        .on_unload = count_unload,
    };
    struct pc_pool *p = pc_pool_new(&cfg);
    struct pc_error err = {0};
    struct pc_pool_entry *e = NULL;
    unloads = 0;
    assert_int_equal(pc_pool_acquire(p, "a", paths[0], -1, &e, NULL, &err), PC_OK);
    uint64_t model = pc_model_memory(pc_pool_entry_model(e));
    pc_pool_charge(p, e, 1 << 20);
    pc_pool_charge(p, e, 1 << 20);
    pc_pool_charge(p, e, -(1 << 20));
    struct pc_pool_stats st;
    pc_pool_stats(p, &st);
    assert_true(st.charged_bytes == 1 << 20);
    assert_true(st.used_bytes == model + (1 << 20));
    struct pc_pool_status *list = NULL;
    assert_int_equal(pc_pool_list(p, &list), 1);
    assert_true(list[0].memory_bytes == model + (1 << 20));
    assert_true(list[0].charged_bytes == 1 << 20);
    free(list);
    /* Giving back more than was charged stops at 0. */
    pc_pool_charge(p, e, -(8 << 20));
    pc_pool_stats(p, &st);
    assert_true(st.charged_bytes == 0 && st.used_bytes == model);

    /* A charge that fills the budget: the next load evicts a (idle) first. */
    pc_pool_charge(p, e, (int64_t)(tiny_estimate * 3 / 2));
    pc_pool_release(p, e);
    use(p, "b");
    assert_int_equal(resident(p, "a"), 0);
    assert_int_equal(unloads, 1);
    assert_string_equal(last_why, "evicted");
    pc_pool_stats(p, &st);
    assert_true(st.charged_bytes == 0);
    assert_int_equal(pc_pool_unload(p, "b", &err), PC_OK);
    assert_true(eventually_gone(p, "b"));
    for (int i = 0; i < 3000 && unloads < 2; i++)
        pause_ms(10); /* the timer thread calls back just after the model leaves the list */
    assert_int_equal(unloads, 2);
    assert_string_equal(last_why, "unloaded");
    use(p, "c");
    pc_pool_free(p);
    assert_int_equal(unloads, 3);
    assert_string_equal(last_why, "stopped");
}

static void test_stats_values(void **state)
{
    (void)state;
    uint64_t budget = tiny_estimate * 4;
    struct pc_pool *p = pool_with(2, PC_DURATION_FOREVER, budget, PC_POOL_LRU);
    struct pc_error err = {0};
    struct pc_pool_stats st;
    pc_pool_stats(p, &st);
    assert_true(st.hits == 0 && st.misses == 0 && st.hit_rate == 0.0);
    assert_false(st.pressure);
    assert_int_equal(st.max_models, 2);
    assert_true(st.budget_bytes == budget);

    use(p, "a");                                                                    /* miss */
    use(p, "a");                                                                    /* hit */
    use(p, "a");                                                                    /* hit */
    assert_int_equal(pc_pool_preload(p, "b", paths[1], -1, -1, NULL, &err), PC_OK); /* preload */
    use(p, "b");                                                                    /* hit */
    use(p, "c"); /* miss, evicts a by count */
    pc_pool_stats(p, &st);
    assert_int_equal(st.hits, 3);
    assert_int_equal(st.misses, 2);
    assert_int_equal(st.preloads, 1);
    assert_int_equal(st.evictions, 1);
    assert_true(st.hit_rate > 0.59 && st.hit_rate < 0.61);
    assert_int_equal(st.loaded, 2);
    assert_false(st.pressure); /* two of four */
    assert_true(st.used_bytes > tiny_estimate && st.used_bytes < 3 * tiny_estimate);
    assert_int_equal(st.policy, PC_POOL_LRU);

    assert_int_equal(pc_pool_pin(p, "b", true, &err), PC_OK);
    pc_pool_stats(p, &st);
    assert_int_equal(st.pinned, 1);
    assert_true(st.pinned_bytes > 0 && st.pinned_bytes < st.used_bytes);
    pc_pool_free(p);
}

struct slow_loader {
    struct pc_pool *p;
    atomic_bool done;
    enum pc_err rc;
    struct pc_error err;
};

static void *load_slow(void *arg)
{
    struct slow_loader *l = arg;
    struct pc_pool_entry *e = NULL;
    l->rc = pc_pool_acquire(l->p, "slow", slow, -1, &e, NULL, &l->err);
    if (e != NULL)
        pc_pool_release(l->p, e);
    atomic_store(&l->done, true);
    return NULL;
}

static bool misses_reach(struct pc_pool *p, uint64_t n)
{
    struct pc_pool_stats st;
    for (int i = 0; i < 3000; i++) {
        pc_pool_stats(p, &st);
        if (st.misses >= n)
            return true;
        pause_ms(10);
    }
    return false;
}

/* A model whose file is a FIFO: reading it blocks until this test writes, so that its load is
 * held open inside the pool for as long as the test wants, with no timing involved. */
static void test_loading_one_model_does_not_stop_another(void **state)
{
    (void)state;
    unlink(slow);
    assert_int_equal(mkfifo(slow, 0600), 0);
    struct pc_pool *p = new_pool(3, PC_DURATION_FOREVER);
    use(p, "a");
    struct slow_loader l[2] = {{.p = p}, {.p = p}};
    pthread_t t[2];
    atomic_init(&l[0].done, false);
    atomic_init(&l[1].done, false);
    pthread_create(&t[0], NULL, load_slow, &l[0]);
    assert_true(misses_reach(p, 2)); /* the slow load is inside the pool */
    pthread_create(&t[1], NULL, load_slow, &l[1]);
    assert_true(misses_reach(p, 3)); /* and the second caller waits for it */

    /* While "slow" loads, "a" serves, and another model loads. */
    struct pc_pool_entry *e = NULL;
    struct pc_error err = {0};
    assert_int_equal(pc_pool_acquire(p, "a", paths[0], -1, &e, NULL, &err), PC_OK);
    pc_pool_release(p, e);
    use(p, "b");
    assert_false(atomic_load(&l[0].done));
    assert_false(atomic_load(&l[1].done));

    /* The reader may give up before the bytes arrive (it cannot seek a FIFO): then the write
     * fails with EPIPE, which is fine; the signal would not be. */
    signal(SIGPIPE, SIG_IGN);
    int fd = open(slow, O_WRONLY);
    assert_true(fd >= 0);
    ssize_t wrote = write(fd, "GGUF-not-really", 15);
    (void)wrote;
    close(fd);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(l[i].rc, PC_ERR_MODEL_FORMAT);
        assert_non_null(strstr(l[i].err.msg, "slow.gguf"));
    }
    assert_string_equal(residents(p), "b,a");
    unlink(slow);
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
    struct pc_pool_stats st;
    pc_pool_stats(p, &st);
    assert_int_equal(st.loaded, 0);
    assert_true(st.used_bytes == 0);
    pc_pool_free(p);
}

static void test_default_budget_and_policy_names(void **state)
{
    (void)state;
    const uint64_t gib = 1ull << 30;
    struct pc_hw hw = {.ram_total = 64 * gib, .ram_available = 48 * gib};
    uint64_t headroom = 0;
    /* 10 % of 64 GiB is more than 1 GiB. */
    assert_true(pc_pool_default_budget(&hw, &headroom) == 48 * gib - 64 * gib / 10);
    assert_true(headroom == 64 * gib / 10);
    /* 1 GiB at least... */
    hw = (struct pc_hw){.ram_total = 8 * gib, .ram_available = 6 * gib};
    assert_true(pc_pool_default_budget(&hw, &headroom) == 5 * gib);
    /* ...but never more than half of what is available. */
    hw = (struct pc_hw){.ram_total = 2 * gib, .ram_available = gib};
    assert_true(pc_pool_default_budget(&hw, NULL) == gib / 2);
    /* The GPUs' free memory adds to it. */
    hw = (struct pc_hw){.ram_total = 8 * gib, .ram_available = 6 * gib, .n_gpus = 1};
    hw.gpus[0].free = 4 * gib;
    assert_true(pc_pool_default_budget(&hw, NULL) == 9 * gib);

    enum pc_pool_policy pol;
    assert_true(pc_pool_policy_parse("LFU", &pol) && pol == PC_POOL_LFU);
    assert_true(pc_pool_policy_parse("fifo", &pol) && pol == PC_POOL_FIFO);
    assert_true(pc_pool_policy_parse("lru", &pol) && pol == PC_POOL_LRU);
    assert_false(pc_pool_policy_parse("random", &pol));
    assert_string_equal(pc_pool_policy_name(PC_POOL_FIFO), "fifo");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_acquire_reuses_the_model),
        cmocka_unit_test(test_concurrent_acquires_share_one_load),
        cmocka_unit_test(test_keep_alive_zero_and_expiry_unload),
        cmocka_unit_test(test_pinned_model_outlives_its_keep_alive),
        cmocka_unit_test(test_unload_waits_for_the_last_user),
        cmocka_unit_test(test_full_pool_evicts_idle_and_waits_for_busy),
        cmocka_unit_test(test_eviction_order_of_each_policy),
        cmocka_unit_test(test_a_look_keeps_the_expiry),
        cmocka_unit_test(test_preload_is_not_a_use),
        cmocka_unit_test(test_pinned_models_are_never_evicted),
        cmocka_unit_test(test_budget_admission_and_insufficient_memory),
        cmocka_unit_test(test_budget_waits_for_busy_models_not_for_pinned),
        cmocka_unit_test(test_charges_count_in_the_budget),
        cmocka_unit_test(test_stats_values),
        cmocka_unit_test(test_loading_one_model_does_not_stop_another),
        cmocka_unit_test(test_failed_load_is_reported_and_not_kept),
        cmocka_unit_test(test_default_budget_and_policy_names),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
