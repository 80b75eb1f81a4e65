/* fuzz_gguf.c - libFuzzer target: GGUF header inspection (pc_gguf_inspect, pc_gguf_metadata,
 * pc_gguf_read with arrays), as the catalog, /api/show and `precharge model` read a model file. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "catalog/inspect.h"
#include "ggml.h"

/* One memory-backed file for all inputs: its path is /proc/self/fd/N, a regular file. */
static int fd = -1;
static char path[64];

static void quiet(enum ggml_log_level level, const char *text, void *user)
{
    (void)level;
    (void)text;
    (void)user;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ggml_log_set(quiet, NULL); /* gguf says why each header is bad, on every input */
    fd = memfd_create("fuzz.gguf", MFD_CLOEXEC);
    if (fd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    return 0;
}

static void put(const uint8_t *data, size_t size)
{
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
}

/* A file is a model, or is refused as one with its name in the message; nothing else. */
static void check_error(enum pc_err rc, const struct pc_error *err)
{
    if (rc == PC_OK)
        return;
    if (rc != PC_ERR_MODEL_FORMAT || strstr(err->msg, path) == NULL) {
        fprintf(stderr, "unexpected error %s: %s\n", pc_errname(rc), err->msg);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    put(data, size);

    struct pc_gguf_info info;
    struct pc_error err = {0};
    check_error(pc_gguf_inspect(path, &info, &err), &err);

    /* /api/show's model_info, and with verbose its arrays: it must serialize, whatever the
     * header holds. */
    for (int verbose = 0; verbose < 2; verbose++) {
        json_t *meta = NULL;
        struct pc_error merr = {0};
        enum pc_err rc = verbose ? pc_gguf_read(path, &info, &meta, true, &merr)
                                 : pc_gguf_metadata(path, &meta, &merr);
        check_error(rc, &merr);
        if (rc == PC_OK) {
            char *s = json_dumps(meta, JSON_COMPACT);
            if (s == NULL)
                abort();
            free(s);
            json_decref(meta);
        }
    }
    return 0;
}
