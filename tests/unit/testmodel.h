/* testmodel.h - for unit tests that need a real model: make the tiny preset with mkmodel. */
#ifndef PC_TESTMODEL_H
#define PC_TESTMODEL_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* A scratch directory for this test binary under $PC_TEST_TMP. Returns a static buffer. */
static inline const char *test_dir(const char *name)
{
    static char dir[PATH_MAX];
    const char *tmp = getenv("PC_TEST_TMP");
    snprintf(dir, sizeof(dir), "%s/%s", tmp ? tmp : "/tmp", name);
    char cmd[2 * PATH_MAX + 64];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0)
        abort();
    return dir;
}

/* Write the tiny preset (llama arch, a real tokenizer, random weights) to path. */
static inline void make_tiny_model(const char *path)
{
    const char *mk = getenv("PC_TEST_MKMODEL");
    char cmd[PATH_MAX * 2];
    snprintf(cmd, sizeof(cmd), "'%s' --preset tiny -q -o '%s'", mk ? mk : "mkmodel", path);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot make the test model: %s\n", cmd);
        abort();
    }
}

#include <math.h>

#include "engine/engine.h"

/* The largest difference between two rows of logits. */
static inline float test_max_diff(const float *a, const float *b, int32_t n)
{
    float d = 0;
    for (int32_t i = 0; i < n; i++)
        d = fmaxf(d, fabsf(a[i] - b[i]));
    return d;
}

/* Load path with a small context on one thread; fails the test when it does not load. */
static inline struct pc_model *load_test_model(const char *path, uint32_t n_ctx)
{
    struct pc_model *m = NULL;
    struct pc_error err = {0};
    struct pc_model_params p = pc_model_default_params();
    p.n_ctx = n_ctx;
    p.n_threads = 1;
    if (pc_model_load(path, &p, &m, &err) != PC_OK) {
        fprintf(stderr, "cannot load the test model: %s\n", err.msg);
        abort();
    }
    return m;
}

#endif
