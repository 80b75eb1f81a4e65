/* fuzz_infer.c - libFuzzer target: the same bodies as fuzz_routes, to a server whose store holds
 * the tiny model ("tiny", from $PC_FUZZ_MODEL) with a 64-token context, so that what a parser
 * let through reaches the model: generation options, stops, context tokens, num_ctx, formats,
 * loads, pins and unloads. Answers are held to 4 tokens (the body's num_predict and max_tokens
 * are set so), for speed; fuzz_routes sees those fields as they come. The routes that change
 * the store (pull, delete, copy) are left to fuzz_routes, so that every input meets the same
 * store. */
#include "harness.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool changes_the_store(const struct pc_http_route *rt)
{
    return strcmp(rt->path, "/api/pull") == 0 || strcmp(rt->path, "/api/delete") == 0 ||
           strcmp(rt->path, "/api/copy") == 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *model = getenv("PC_FUZZ_MODEL");
    if (model == NULL || *model == '\0') {
        fprintf(stderr, "fuzz_infer: set PC_FUZZ_MODEL to a model file (mkmodel --preset tiny); "
                        "tests/fuzz/run.sh makes one\n");
        abort();
    }
    harness_start(model, 64);
    return 0;
}

/* The body with its answer held to 4 tokens, as a new string; NULL when it is not an object. */
static char *short_answers(const uint8_t *data, size_t size)
{
    json_t *o = json_loadb((const char *)data, size, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    json_t *opts = json_object_get(o, "options");
    if (opts == NULL)
        json_object_set_new(o, "options", opts = json_object());
    if (json_is_object(opts))
        json_object_set_new(opts, "num_predict", json_integer(4));
    json_object_set_new(o, "max_tokens", json_integer(4));
    if (json_object_get(o, "max_completion_tokens") != NULL)
        json_object_set_new(o, "max_completion_tokens", json_integer(4));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = short_answers(data, size);
    if (body != NULL)
        harness_run((const uint8_t *)body, strlen(body), changes_the_store);
    else
        harness_run(data, size, changes_the_store);
    free(body);
    return 0;
}
