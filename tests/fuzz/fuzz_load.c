/* fuzz_load.c - libFuzzer target: model files with hostile header values through the real load
 * path. Each input is up to 8 lines of KEY=TYPE:VALUE (ggufset.h) applied to the tiny model
 * ($PC_FUZZ_MODEL); the file goes into a real server's store under a new name, and /api/generate
 * (estimate, load, context, a one-token answer, keep_alive 0) and /api/show run on it. A value
 * that llama.cpp asserts on aborts the target: the next such assert is found here, not by a
 * user. Replies are checked as fuzz_routes checks them. */
#include "../../tools/mkmodel/ggufset.h"
#include "harness.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SPECS 8

static const char *model;
static unsigned long n_inputs;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    model = getenv("PC_FUZZ_MODEL");
    if (model == NULL || *model == '\0') {
        fprintf(stderr, "fuzz_load: set PC_FUZZ_MODEL to a model file (mkmodel --preset tiny); "
                        "tests/fuzz/run.sh makes one\n");
        abort();
    }
    harness_start(NULL, 64);
    return 0;
}

static const struct pc_http_route *route(const char *method, const char *path)
{
    for (const struct pc_http_route *const *t = pc_server_routes; *t != NULL; t++)
        for (const struct pc_http_route *rt = *t; rt->path != NULL; rt++)
            if (strcmp(rt->method, method) == 0 && strcmp(rt->path, path) == 0)
                return rt;
    fprintf(stderr, "fuzz_load: no route %s %s\n", method, path);
    abort();
}

static void call(const char *path, const char *body)
{
    harness_call(route("POST", path), body, strlen(body));
}

/* The input's lines, NUL-terminated in text; the count, or -1 when it is no list of specs. */
static int split(char *text, const char **specs)
{
    int n = 0;
    for (char *line = text, *next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (*line == '\0')
            continue;
        if (n == MAX_SPECS)
            return -1;
        specs[n++] = line;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096 || memchr(data, '\0', size) != NULL)
        return 0;
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    const char *specs[MAX_SPECS];
    int n = split(text, specs);
    char name[32], path[sizeof(harness_srv->cfg.models_dir) + 48], why[512];
    snprintf(name, sizeof(name), "f%lu", n_inputs++);
    snprintf(path, sizeof(path), "%s/%s.gguf", harness_srv->cfg.models_dir, name);
    /* A spec that does not parse is the fuzzer's noise, not a finding. */
    if (n < 0 || ggufset_copy(model, path, specs, (size_t)n, why, sizeof(why)) != 0) {
        unlink(path);
        free(text);
        return 0;
    }
    char body[256];
    snprintf(body, sizeof(body),
             "{\"model\":\"%s\",\"prompt\":\"hi\",\"stream\":false,\"keep_alive\":0,"
             "\"options\":{\"num_predict\":1,\"temperature\":0}}",
             name);
    call("/api/generate", body);
    snprintf(body, sizeof(body), "{\"model\":\"%s\"}", name);
    call("/api/show", body);
    unlink(path);
    free(text);
    return 0;
}
