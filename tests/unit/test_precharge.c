/* test_precharge.c - snapshots and the precharge queue on a real (tiny) model: the logits after
 * a restore from each tier against a recompute, priority order, merging, debounce, the event
 * sequence, and the failures a caller must see. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/duration.h"
#include "precharge/events.h"
#include "precharge/precharge.h"
#include "precharge/snapshot.h"
#include "precharge/snapwire.h"
#include "testmodel.h"

static char dir[PATH_MAX], models[PATH_MAX + 16], model_path[PATH_MAX + 32];

static const char *SYSTEM = "You are a form assistant. The form has the fields name (text), "
                            "social security number (9 digits) and date of birth (YYYY-MM-DD).";
static const char *QUESTION = "What goes in the second field?";

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s", test_dir("precharge"));
    snprintf(models, sizeof(models), "%s/models", dir);
    snprintf(model_path, sizeof(model_path), "%s/tiny.gguf", models);
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", models);
    assert_int_equal(system(cmd), 0);
    make_tiny_model(model_path);
    pc_engine_init(NULL, "none");
    return 0;
}

static struct pc_model *load(void)
{
    return load_test_model(model_path, 512);
}

/* Tokens of SYSTEM (as a precharge sees them) and of SYSTEM + QUESTION (as a request does). */
static void conversation(struct pc_model *m, int32_t **pre, size_t *npre, int32_t **full,
                         size_t *nfull)
{
    struct pc_chat_msg msgs[] = {{.role = "system", .content = SYSTEM},
                                 {.role = "user", .content = QUESTION}};
    struct pc_error err = {0};
    char *text = NULL;
    struct pc_chat_input in = {.msgs = msgs, .n_msgs = 1};
    assert_int_equal(pc_model_prefix_tokens(m, &in, pre, npre, &err), PC_OK);
    assert_int_equal(pc_model_render_chat(m, msgs, 2, true, &text, &err), PC_OK);
    assert_int_equal(pc_model_tokenize(m, text, full, nfull, &err), PC_OK);
    free(text);
    /* The precharged tokens are a prefix of the request's. */
    assert_true(*npre > 10 && *npre < *nfull);
    assert_memory_equal(*pre, *full, *npre * sizeof(int32_t));
}

/* Hand toks to the model's decode loop (with offer, may be NULL) and copy the prompt's last
 * logits into out. No token is generated: the sequence holds the prompt only. */
static void logits_for(struct pc_model *m, const int32_t *toks, size_t n,
                       const struct pc_restore_offer *offer, float *out, int32_t *n_vocab,
                       int32_t *cached, struct pc_restore_result *restore)
{
    struct pc_gen_request req = {.tokens = toks,
                                 .n_tokens = n,
                                 .sampling = pc_sampling_default(),
                                 .want_logits = true,
                                 .offer = offer};
    req.sampling.num_predict = 0;
    struct pc_gen *g = NULL;
    struct pc_error err = {0};
    assert_int_equal(pc_gen_start(m, &req, &g, &err), PC_OK);
    assert_int_equal(pc_gen_wait_prompt(g, &err), PC_OK);
    const float *l = pc_gen_logits(g, n_vocab);
    assert_non_null(l);
    memcpy(out, l, (size_t)*n_vocab * sizeof(float));
    *cached = pc_gen_stats(g)->cached_tokens;
    if (restore != NULL)
        *restore = *pc_gen_restore(g);
    pc_gen_free(g);
}

/* The same next-token logits whether the prefix is recomputed, copied from a live sequence,
 * restored from RAM, or restored from a disk file by a new store (a restart). The prefix is
 * decoded in one batch and the question in another in every case, so the sums run in the same
 * order and the comparison can be exact. */
/* Precharge toks as the daemon does: a prefill-only task of the decode loop; its serialized
 * state in *blob when blob is not NULL (the caller frees it). */
static void precharge(struct pc_model *m, const int32_t *toks, size_t n, uint8_t **blob,
                      size_t *size)
{
    struct pc_gen_request req = {.tokens = toks,
                                 .n_tokens = n,
                                 .sampling = pc_sampling_default(),
                                 .priority = PC_PRIO_NORMAL,
                                 .prefill_only = true,
                                 .want_blob = blob != NULL};
    struct pc_gen *g = NULL;
    struct pc_error err = {0};
    assert_int_equal(pc_gen_start(m, &req, &g, &err), PC_OK);
    const char *t;
    size_t len;
    bool done = false;
    while (!done)
        assert_int_equal(pc_gen_next(g, &t, &len, &done, &err), PC_OK);
    assert_string_equal(pc_gen_done_reason(g), "prefilled");
    if (blob != NULL) {
        pc_gen_take_blob(g, blob, size);
        assert_non_null(*blob);
    }
    pc_gen_free(g);
}

static void test_tiers_give_the_same_logits(void **state)
{
    (void)state;
    struct pc_error err = {0};
    struct pc_slot *slot;
    struct pc_model *fresh = load();
    int32_t *pre, *full, n_vocab = 0, cached = 0;
    size_t npre, nfull;
    conversation(fresh, &pre, &npre, &full, &nfull);
    float *base = malloc(32000 * sizeof(float)), *got = malloc(32000 * sizeof(float));

    /* Recompute: prefix, then the rest, on a fresh context. */
    logits_for(fresh, pre, npre, NULL, got, &n_vocab, &cached, NULL); /* decodes the prefix */
    logits_for(fresh, full, nfull, NULL, base, &n_vocab, &cached, NULL);
    assert_int_equal(cached, (int32_t)npre);

    /* Live: a precharged sequence, copied into the request's. */
    struct pc_model *m = load();
    int seq = -1;
    uint8_t *blob = NULL;
    size_t size = 0;
    precharge(m, pre, npre, &blob, &size);
    logits_for(m, full, nfull, NULL, got, &n_vocab, &cached, NULL);
    assert_int_equal(cached, (int32_t)npre);
    assert_true(test_max_diff(base, got, n_vocab) == 0.0f);

    /* RAM: the precharged sequence serialized, restored into another context. */
    struct pc_model *m2 = load();
    pc_slot_acquire(m2, PC_PRIO_USER, &slot);
    assert_int_equal(pc_slot_import(slot, blob, size, pre, npre, true, &seq, &err), PC_OK);
    pc_slot_release(slot);
    logits_for(m2, full, nfull, NULL, got, &n_vocab, &cached, NULL);
    assert_int_equal(cached, (int32_t)npre);
    assert_true(test_max_diff(base, got, n_vocab) == 0.0f);

    /* The same, offered to the prefix planner of a fresh model: it restores it. */
    struct pc_model *m6 = load();
    struct pc_restore_offer offer = {blob, size, pre, npre, true};
    struct pc_restore_result rr;
    logits_for(m6, full, nfull, &offer, got, &n_vocab, &cached, &rr);
    assert_true(rr.used);
    assert_int_equal(cached, (int32_t)npre);
    assert_true(test_max_diff(base, got, n_vocab) == 0.0f);
    /* Asked again, the live sequence gives as much: the offer is not restored twice. */
    logits_for(m6, full, nfull, &offer, got, &n_vocab, &cached, &rr);
    assert_false(rr.used);
    assert_int_equal(cached, (int32_t)nfull - 1);
    pc_model_free(m6);

    /* Disk: saved by one store, indexed and restored by another, as after a restart. */
    char snapdir[PATH_MAX + 16], key[17];
    snprintf(snapdir, sizeof(snapdir), "%s/snapshots", dir);
    assert_int_equal(pc_model_key(model_path, key, &err), PC_OK);
    struct pc_snapstore *st1 = NULL, *st2 = NULL;
    assert_int_equal(pc_snapstore_open(snapdir, 1 << 30, 1 << 30, &st1, &err), PC_OK);
    struct pc_snapshot_meta meta = {"tiny", "local"};
    uint8_t *kept = malloc(size); /* the store takes blob */
    memcpy(kept, blob, size);
    assert_int_equal(pc_snapstore_save(st1, key, &meta, pre, npre, blob, size, true, &err), PC_OK);
    blob = kept;
    pc_snapstore_close(st1);
    assert_int_equal(pc_snapstore_open(snapdir, 1 << 30, 1 << 30, &st2, &err), PC_OK);
    struct pc_snapshot_info *list = NULL;
    assert_int_equal(pc_snapstore_list(st2, &list), 1);
    assert_int_equal(list[0].tier, PC_TIER_DISK);
    assert_int_equal(list[0].n_tokens, npre);
    assert_string_equal(list[0].meta.model, "tiny");
    free(list);
    struct pc_model *m3 = load();
    struct pc_restore r;
    struct pc_snap_offer so;
    struct pc_restore_result rr3;
    pc_snapstore_offer(st2, key, full, nfull, &so);
    assert_non_null(so.offer.blob);
    logits_for(m3, full, nfull, &so.offer, got, &n_vocab, &cached, &rr3);
    pc_snapstore_offer_done(st2, &so, &rr3, &r);
    assert_int_equal(r.tier, PC_TIER_DISK);
    assert_false(r.failed);
    assert_int_equal(r.tokens, npre);
    assert_int_equal(cached, (int32_t)npre);
    assert_true(test_max_diff(base, got, n_vocab) == 0.0f);

    /* Compacted: an unrelated sequence below the prefix is sent away and the prefix moved to
     * the start of the cache before the question is decoded; the logits do not change. */
    struct pc_model *m5 = load();
    struct pc_buf other = PC_BUF_INIT;
    for (int i = 0; i < 70; i++)
        pc_buf_printf(&other, "unrelated %d ", i);
    int32_t *otoks;
    size_t no;
    assert_int_equal(pc_model_tokenize(m5, other.data, &otoks, &no, &err), PC_OK);
    assert_true(no > 256);
    precharge(m5, otoks, no, NULL, NULL);
    pc_slot_acquire(m5, PC_PRIO_USER, &slot);
    /* Restored above the unrelated cells: the request must move it down. */
    assert_int_equal(pc_slot_import(slot, blob, size, pre, npre, true, &seq, &err), PC_OK);
    pc_slot_release(slot);
    logits_for(m5, full, nfull, NULL, got, &n_vocab, &cached, NULL);
    assert_int_equal(cached, (int32_t)npre);
    assert_true(test_max_diff(base, got, n_vocab) == 0.0f);
    struct pc_seq_info infos[8];
    pc_slot_acquire(m5, PC_PRIO_USER, &slot);
    assert_int_equal(pc_slot_list(slot, infos, 8), 2); /* the prefix and the request, no more */
    pc_slot_release(slot);
    pc_model_free(m5);
    free(blob);
    pc_buf_free(&other);
    free(otoks);

    /* A snapshot from another model file is refused, and the caller prefills. */
    struct pc_model *m4 = load();
    pc_slot_acquire(m4, PC_PRIO_USER, &slot);
    assert_int_equal(pc_slot_import(slot, (const uint8_t *)"junk", 4, pre, npre, true, NULL, &err),
                     PC_ERR_DECODE);
    pc_slot_release(slot);

    pc_snapstore_close(st2);
    pc_model_free(fresh);
    pc_model_free(m);
    pc_model_free(m2);
    pc_model_free(m3);
    pc_model_free(m4);
    free(base);
    free(got);
    free(pre);
    free(full);
}

/* ---- the queue --------------------------------------------------------------------------- */

struct rig {
    struct pc_pool *pool;
    struct pc_snapstore *snaps;
    struct pc_events *events;
    struct pc_precharger *pc;
};

/* The pool's load hook, as the server's: the model's identity and evictions go to the store. */
static void rig_on_load(void *user, const char *name, struct pc_model *m)
{
    struct rig *r = user;
    struct pc_error err = {0};
    (void)name;
    assert_int_equal(pc_snapstore_attach(r->snaps, m, &err), PC_OK);
}

static void rig_start(struct rig *r, int64_t debounce_ns)
{
    struct pc_error err = {0};
    char snapdir[PATH_MAX + 16];
    snprintf(snapdir, sizeof(snapdir), "%s/rig-snapshots", dir);
    assert_int_equal(pc_snapstore_open(snapdir, 1 << 30, 1 << 30, &r->snaps, &err), PC_OK);
    struct pc_pool_config pcfg = {.max_models = 2,
                                  .default_keep_alive_ns = PC_DURATION_FOREVER,
                                  .model_params = pc_model_default_params(),
                                  .on_load = rig_on_load,
                                  .on_load_user = r};
    pcfg.model_params.n_ctx = 256;
    pcfg.model_params.n_threads = 1;
    r->pool = pc_pool_new(&pcfg);
    r->events = pc_events_new(256);
    struct pc_precharger_config cfg = {.models_dir = models,
                                       .pool = r->pool,
                                       .snapshots = r->snaps,
                                       .events = r->events,
                                       .debounce_ns = debounce_ns,
                                       .workers = 1};
    assert_int_equal(pc_precharger_start(&cfg, &r->pc, &err), PC_OK);
}

static void rig_stop(struct rig *r)
{
    pc_precharger_stop(r->pc);
    pc_pool_free(r->pool);
    pc_snapstore_close(r->snaps);
    pc_events_free(r->events);
}

static char *submit(struct rig *r, const char *prompt, enum pc_priority prio, const char *key,
                    char id[PC_PRECHARGE_ID_MAX])
{
    struct pc_precharge_req req = {.model = "tiny", .prompt = prompt, .priority = prio, .key = key};
    struct pc_error err = {0};
    assert_int_equal(pc_precharge_submit(r->pc, &req, id, &err), PC_OK);
    return id;
}

static const char *status_of(struct rig *r, const char *id, int timeout_ms, json_t **keep)
{
    json_t *j = pc_precharge_get(r->pc, id, timeout_ms);
    assert_non_null(j);
    *keep = j;
    return json_string_value(json_object_get(j, "status"));
}

/* The correlation ids of PrechargeCompleted events, in the order they were published. */
static size_t completed_order(struct rig *r, char ids[][37], size_t max)
{
    uint64_t cursor = 0;
    char *frames = NULL;
    size_t n = 0;
    assert_true(pc_events_wait(r->events, &cursor, "precharge:responses", 10, &frames));
    for (char *p = frames; p && (p = strstr(p, "\"correlation_id\":\"")) && n < max; n++) {
        p += strlen("\"correlation_id\":\"");
        memcpy(ids[n], p, 36);
        ids[n][36] = '\0';
        p = strstr(p, "event:"); /* one id per frame */
        if (p == NULL) {
            n++;
            break;
        }
    }
    free(frames);
    return n;
}

static void test_priority_merge_debounce_and_events(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, 0);
    struct pc_error err = {0};
    char first[PC_PRECHARGE_ID_MAX], low[PC_PRECHARGE_ID_MAX], normal[PC_PRECHARGE_ID_MAX],
        high[PC_PRECHARGE_ID_MAX], merged[PC_PRECHARGE_ID_MAX];
    json_t *j;

    /* Hold the model's context so that the first job blocks and the others queue. */
    struct pc_pool_entry *e;
    assert_int_equal(pc_pool_acquire(r.pool, "tiny", model_path, -1, &e, NULL, &err), PC_OK);
    struct pc_slot *slot;
    pc_slot_acquire(pc_pool_entry_model(e), PC_PRIO_USER, &slot);
    submit(&r, "first context", PC_PRIO_NORMAL, "a", first);
    for (int i = 0; i < 500 && strcmp(status_of(&r, first, 0, &j), "running") != 0; i++) {
        json_decref(j);
        usleep(10000);
    }
    json_decref(j);
    submit(&r, "low context", PC_PRIO_LOW, "b", low);
    submit(&r, "normal context", PC_PRIO_NORMAL, "c", normal);
    submit(&r, "high context", PC_PRIO_HIGH, "d", high);
    /* The same model and context while queued: one job. */
    submit(&r, "low context", PC_PRIO_LOW, "e", merged);
    assert_string_equal(merged, low);
    assert_string_equal(status_of(&r, low, 0, &j), "queued");
    json_decref(j);
    pc_slot_release(slot);
    pc_pool_release(r.pool, e);

    const char *ids[] = {first, low, normal, high};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(status_of(&r, ids[i], 30000, &j), "ready");
        json_decref(j);
    }
    char order[8][37];
    size_t n = completed_order(&r, order, 8);
    assert_int_equal(n, 4);
    assert_string_equal(order[0], first);
    assert_string_equal(order[1], high);
    assert_string_equal(order[2], normal);
    assert_string_equal(order[3], low);
    rig_stop(&r);
}

/* The tokens of text, as a precharge of the raw prompt prefills them. */
static size_t tokens_of(const char *text)
{
    struct pc_model *m = load();
    int32_t *toks;
    size_t n;
    struct pc_error err = {0};
    assert_int_equal(pc_model_tokenize(m, text, &toks, &n, &err), PC_OK);
    free(toks);
    pc_model_free(m);
    return n;
}

static void test_debounce_supersedes_only_for_a_key(void **state)
{
    (void)state;
    struct rig r;
    const char *one = "form with one field", *two = "form with one field and another field";
    char a[PC_PRECHARGE_ID_MAX], b[PC_PRECHARGE_ID_MAX];
    json_t *j, *k;

    /* The same key: the newer context replaces the queued one, which ends superseded by it. */
    rig_start(&r, 200ll * 1000 * 1000);
    submit(&r, one, PC_PRIO_NORMAL, "form-7", a);
    submit(&r, two, PC_PRIO_NORMAL, "form-7", b);
    assert_string_not_equal(a, b);
    assert_string_equal(status_of(&r, a, 30000, &j), "superseded");
    assert_string_equal(json_string_value(json_object_get(j, "superseded_by")), b);
    assert_string_equal(json_string_value(json_object_get(j, "correlation_id")), a);
    json_decref(j);
    assert_string_equal(status_of(&r, b, 30000, &j), "ready");
    assert_int_equal(json_integer_value(json_object_get(j, "context_tokens")),
                     (json_int_t)tokens_of(two));
    json_decref(j);
    rig_stop(&r);

    /* No key (issue #14's Alice and Bob): two contexts of one model are two precharges, and
     * each caller gets its own context's result. */
    const char *alice = "Alice's form: name, email", *bob = "Bob's form: ssn and date of birth";
    rig_start(&r, 200ll * 1000 * 1000);
    submit(&r, alice, PC_PRIO_NORMAL, NULL, a);
    submit(&r, bob, PC_PRIO_NORMAL, NULL, b);
    assert_string_not_equal(a, b);
    assert_string_equal(status_of(&r, a, 30000, &j), "ready");
    assert_string_equal(status_of(&r, b, 30000, &k), "ready");
    assert_int_equal(json_integer_value(json_object_get(j, "context_tokens")),
                     (json_int_t)tokens_of(alice));
    assert_int_equal(json_integer_value(json_object_get(k, "context_tokens")),
                     (json_int_t)tokens_of(bob));
    json_decref(j);
    json_decref(k);
    rig_stop(&r);

    /* Different keys, the same work: merged, whatever the keys. */
    rig_start(&r, 60ll * 1000 * 1000 * 1000);
    submit(&r, one, PC_PRIO_NORMAL, "form-1", a);
    submit(&r, one, PC_PRIO_NORMAL, "form-2", b);
    assert_string_equal(a, b);
    /* The same key on another model's work does not replace it. */
    struct pc_precharge_req other = {.model = "tiny",
                                     .category = "mcl",
                                     .prompt = two,
                                     .priority = PC_PRIO_NORMAL,
                                     .key = "form-1"};
    struct pc_error err = {0};
    assert_int_equal(pc_precharge_submit(r.pc, &other, b, &err), PC_OK);
    assert_string_equal(status_of(&r, a, 0, &j), "queued");
    json_decref(j);
    rig_stop(&r);
}

static void test_caller_correlation_ids_and_categories(void **state)
{
    (void)state;
    struct rig r;
    struct pc_error err = {0};
    char id[PC_PRECHARGE_ID_MAX], id2[PC_PRECHARGE_ID_MAX];
    json_t *j;
    rig_start(&r, 60ll * 1000 * 1000 * 1000);

    /* The caller's id is the job's id. */
    struct pc_precharge_req req = {.model = "tiny",
                                   .prompt = "the caller's context",
                                   .priority = PC_PRIO_NORMAL,
                                   .key = "k",
                                   .correlation_id = "form-42.alice:1"};
    assert_int_equal(pc_precharge_submit(r.pc, &req, id, &err), PC_OK);
    assert_string_equal(id, "form-42.alice:1");
    /* The same id again while that job is live: a conflict, whatever the body. */
    req.prompt = "another context";
    req.key = NULL;
    assert_int_equal(pc_precharge_submit(r.pc, &req, id2, &err), PC_ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "form-42.alice:1"));
    /* Ids that cannot be one. */
    const char *bad[] = {"", "a b", "x/y", "\xc3\xa9t\xc3\xa9",
                         "0123456789012345678901234567890123456789012345678901234567890123x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        req.correlation_id = bad[i];
        assert_int_equal(pc_precharge_submit(r.pc, &req, id2, &err), PC_ERR_INVALID);
        assert_non_null(strstr(err.msg, "correlation_id"));
    }
    /* The same work under another caller's id: merged, and each id gets its result. */
    req.correlation_id = "bob-1";
    req.prompt = "the caller's context";
    assert_int_equal(pc_precharge_submit(r.pc, &req, id2, &err), PC_OK);
    assert_string_equal(id2, "bob-1");
    assert_string_equal(status_of(&r, "bob-1", 0, &j), "queued");
    assert_string_equal(json_string_value(json_object_get(j, "correlation_id")), "bob-1");
    json_decref(j);
    rig_stop(&r);

    /* Category mcl: on-device and private, run by the local provider, reported as asked. */
    rig_start(&r, 0);
    struct pc_precharge_req mcl = {.model = "tiny",
                                   .category = "mcl",
                                   .prompt = "a private context",
                                   .priority = PC_PRIO_NORMAL,
                                   .correlation_id = "mcl-1"};
    assert_int_equal(pc_precharge_submit(r.pc, &mcl, id, &err), PC_OK);
    assert_string_equal(status_of(&r, "mcl-1", 30000, &j), "ready");
    assert_string_equal(json_string_value(json_object_get(j, "category")), "mcl");
    assert_string_equal(json_string_value(json_object_get(j, "snapshot_tier")), "disk");
    json_decref(j);
    /* A finished job's id may be used again. */
    assert_int_equal(pc_precharge_submit(r.pc, &mcl, id, &err), PC_OK);
    assert_string_equal(status_of(&r, "mcl-1", 30000, &j), "already_warm");
    json_decref(j);
    mcl.category = "webgpu";
    mcl.correlation_id = NULL;
    assert_int_equal(pc_precharge_submit(r.pc, &mcl, id, &err), PC_ERR_INVALID);
    assert_non_null(strstr(err.msg, "\"mcl\""));
    rig_stop(&r);
}

/* A snapshot that cannot be written to disk: the result says where the context really is. */
static void test_a_snapshot_that_was_not_stored(void **state)
{
    (void)state;
    struct rig r;
    json_t *j;
    char id[PC_PRECHARGE_ID_MAX], snapdir[PATH_MAX + 16], cmd[3 * PATH_MAX];
    rig_start(&r, 0);
    /* The directory goes, and a file takes its place: every write in it fails. */
    snprintf(snapdir, sizeof(snapdir), "%s/rig-snapshots", dir);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && touch '%s'", snapdir, snapdir);
    assert_int_equal(system(cmd), 0);
    submit(&r, "a context that stays in RAM", PC_PRIO_NORMAL, NULL, id);
    assert_string_equal(status_of(&r, id, 30000, &j), "ready");
    assert_string_equal(json_string_value(json_object_get(j, "snapshot_tier")), "ram");
    assert_non_null(strstr(json_string_value(json_object_get(j, "snapshot_error")), "snapshot"));
    assert_true(json_is_null(json_object_get(j, "error")));
    json_decref(j);
    rig_stop(&r);
    snprintf(cmd, sizeof(cmd), "rm -f '%s'", snapdir);
    assert_int_equal(system(cmd), 0);

    /* With no RAM for snapshots either, it is only live in the model's context. */
    struct pc_snapstore *st = NULL;
    struct pc_error err = {0};
    assert_int_equal(pc_snapstore_open(snapdir, 0, 1 << 30, &st, &err), PC_OK);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && touch '%s'", snapdir, snapdir);
    assert_int_equal(system(cmd), 0);
    int32_t toks[] = {1, 2, 3};
    uint8_t *blob = malloc(16);
    memset(blob, 0, 16);
    struct pc_snapshot_meta meta = {"tiny", "local"};
    assert_int_equal(
        pc_snapstore_save(st, "0123456789abcdef", &meta, toks, 3, blob, 16, true, &err), PC_ERR_IO);
    assert_int_equal(pc_snapstore_tier(st, "0123456789abcdef", toks, 3), PC_TIER_LIVE);
    pc_snapstore_close(st);
    snprintf(cmd, sizeof(cmd), "rm -f '%s'", snapdir);
    assert_int_equal(system(cmd), 0);
}

/* Snapshots belong to their model file: a file that changed (another key now) or went takes its
 * snapshots with it; snapshots of names that are not the store's stay. */
static void test_snapshots_of_a_changed_or_deleted_file_are_dropped(void **state)
{
    (void)state;
    char snapdir[PATH_MAX + 16], other[PATH_MAX + 32], key[17];
    struct pc_error err = {0};
    snprintf(snapdir, sizeof(snapdir), "%s/stale-snapshots", dir);
    snprintf(other, sizeof(other), "%s/other.gguf", models);
    make_tiny_model(other);
    assert_int_equal(pc_model_key(other, key, &err), PC_OK);
    struct pc_snapstore *st = NULL;
    assert_int_equal(pc_snapstore_open(snapdir, 1 << 30, 1 << 30, &st, &err), PC_OK);
    int32_t toks[] = {1, 2, 3, 4};
    struct pc_snapshot_meta now = {"other", "local"}, by_path = {"/elsewhere/x.gguf", "local"};
    const struct {
        const char *key;
        const struct pc_snapshot_meta *meta;
        size_t n;
    } saves[] = {{key, &now, 4}, {"0123456789abcdef", &now, 3}, {"fedcba9876543210", &by_path, 2}};
    for (size_t i = 0; i < 3; i++) {
        uint8_t *blob = calloc(1, 16);
        assert_int_equal(pc_snapstore_save(st, saves[i].key, saves[i].meta, toks, saves[i].n, blob,
                                           16, true, &err),
                         PC_OK);
    }
    /* The one of another key (the file as it was before) goes. */
    assert_int_equal(pc_snapstore_drop_stale(st, models), 1);
    assert_int_equal(pc_snapstore_tier(st, key, toks, 4), PC_TIER_DISK);
    assert_int_equal(pc_snapstore_tier(st, "0123456789abcdef", toks, 3), PC_TIER_LIVE);
    /* The file goes: so does its snapshot, from RAM and disk. The path's stays. */
    assert_int_equal(unlink(other), 0);
    assert_int_equal(pc_snapstore_drop_stale(st, models), 1);
    assert_int_equal(pc_snapstore_tier(st, key, toks, 4), PC_TIER_LIVE);
    assert_int_equal(pc_snapstore_tier(st, "fedcba9876543210", toks, 2), PC_TIER_DISK);
    assert_int_equal(pc_snapstore_disk_bytes(st) > 0, true);
    pc_snapstore_close(st);
    /* Nothing of them is indexed again after a restart. */
    assert_int_equal(pc_snapstore_open(snapdir, 1 << 30, 1 << 30, &st, &err), PC_OK);
    struct pc_snapshot_info *list = NULL;
    assert_int_equal(pc_snapstore_list(st, &list), 1);
    assert_string_equal(list[0].meta.model, "/elsewhere/x.gguf");
    free(list);
    pc_snapstore_close(st);
}

static void test_events_and_failures(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, 0);
    struct pc_error err = {0};
    char id[PC_PRECHARGE_ID_MAX];
    json_t *j;

    struct pc_precharge_req bad = {.model = "nope", .prompt = "x", .priority = PC_PRIO_NORMAL};
    assert_int_equal(pc_precharge_submit(r.pc, &bad, id, &err), PC_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "nope"));

    /* Longer than the context window: a result that names the limit, and an error code that
     * the HTTP side answers 400 with. */
    struct pc_buf big = PC_BUF_INIT;
    for (int i = 0; i < 400; i++)
        pc_buf_appends(&big, "word ");
    submit(&r, big.data, PC_PRIO_NORMAL, NULL, id);
    assert_string_equal(status_of(&r, id, 30000, &j), "failed");
    assert_non_null(strstr(json_string_value(json_object_get(j, "error")),
                           "the limit is 255 (context length 256, less one token for the answer)"));
    assert_int_equal(pc_precharge_failure(r.pc, id), PC_ERR_CTX_OVERFLOW);
    json_decref(j);
    pc_buf_free(&big);

    uint64_t cursor = pc_events_last(r.events);
    submit(&r, "a short context", PC_PRIO_NORMAL, NULL, id);
    assert_string_equal(status_of(&r, id, 30000, &j), "ready");
    json_decref(j);
    char *frames = NULL;
    assert_true(pc_events_wait(r.events, &cursor, NULL, 10, &frames));
    const char *p = strstr(frames, "event: PrechargeRequested");
    assert_non_null(p);
    assert_non_null(strstr(p, "event: PrechargeCompleted"));
    assert_non_null(strstr(frames, id));
    free(frames);
    assert_int_equal(pc_events_state(r.events, "tiny", NULL, NULL), PC_STATE_PRECHARGED);
    assert_int_equal(pc_events_state(r.events, "other", NULL, NULL), PC_STATE_UNAVAILABLE);

    /* The same context again: already warm. */
    submit(&r, "a short context", PC_PRIO_NORMAL, NULL, id);
    assert_string_equal(status_of(&r, id, 30000, &j), "already_warm");
    json_decref(j);
    rig_stop(&r);
}

/* A shared tier's value: what was encoded comes back, and a value that is cut short, longer,
 * changed in any byte, or claims more tokens than it holds is refused before any restore. */
static void test_snapwire_values_are_checked(void **state)
{
    (void)state;
    int32_t toks[5] = {1, 450, 29871, 13, 32000};
    uint8_t blob[37];
    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (uint8_t)(i * 7 + 3);
    uint8_t *v = NULL;
    size_t size = 0;
    struct pc_error err = {0};
    assert_int_equal(pc_snapwire_encode(toks, 5, blob, sizeof(blob), &v, &size, &err), PC_OK);
    int32_t *out = NULL;
    size_t n = 0, bsize = 0;
    const uint8_t *b = NULL;
    assert_int_equal(pc_snapwire_decode(v, size, &out, &n, &b, &bsize, &err), PC_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(out, toks, sizeof(toks));
    assert_int_equal(bsize, sizeof(blob));
    assert_memory_equal(b, blob, sizeof(blob));
    free(out);
    for (size_t i = 0; i < size; i++) {
        v[i] ^= 0x10;
        assert_int_equal(pc_snapwire_decode(v, size, &out, &n, &b, &bsize, &err), PC_ERR_CHECKSUM);
        assert_null(out);
        assert_non_null(strstr(err.msg, "not whole"));
        v[i] ^= 0x10;
    }
    for (size_t cut = 0; cut < size; cut++)
        assert_int_equal(pc_snapwire_decode(v, cut, &out, &n, &b, &bsize, &err), PC_ERR_CHECKSUM);
    uint8_t *longer = calloc(1, size + 4);
    memcpy(longer, v, size);
    assert_int_equal(pc_snapwire_decode(longer, size + 4, &out, &n, &b, &bsize, &err),
                     PC_ERR_CHECKSUM);
    free(longer);
    free(v);
    /* The hash that names tokens on every host is the local tiers' (their file names carry it). */
    char h1[17], h2[17];
    pc_snapwire_tokhash(toks, 5, h1);
    pc_snapwire_tokhash(toks, 4, h2);
    assert_int_equal(strlen(h1), 16);
    assert_string_not_equal(h1, h2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiers_give_the_same_logits),
        cmocka_unit_test(test_priority_merge_debounce_and_events),
        cmocka_unit_test(test_debounce_supersedes_only_for_a_key),
        cmocka_unit_test(test_caller_correlation_ids_and_categories),
        cmocka_unit_test(test_a_snapshot_that_was_not_stored),
        cmocka_unit_test(test_snapshots_of_a_changed_or_deleted_file_are_dropped),
        cmocka_unit_test(test_events_and_failures),
        cmocka_unit_test(test_snapwire_values_are_checked),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
