/* scratch.h - scratch directories for unit tests: made under $PC_TEST_TMP, removed after. */
#ifndef PC_TEST_SCRATCH_H
#define PC_TEST_SCRATCH_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static inline void mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(buf, 0755);
        *p = '/';
    }
    mkdir(buf, 0755);
}

/* A fresh directory under $PC_TEST_TMP (or /tmp), for the running test: the result stays valid
 * until the next call. The test removes it with rm_rf. */
static inline char *make_tmpdir(const char *tag)
{
    static char path[4096];
    const char *base = getenv("PC_TEST_TMP");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    mkdir_p(base);
    snprintf(path, sizeof(path), "%s/%s.XXXXXX", base, tag);
    assert_non_null(mkdtemp(path));
    return path;
}

static inline int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static inline void rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
