/* details.c - the listings' details of GGUF files, each header read once per file identity. */
#include "details.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "inspect.h"

/* A file as it was when its header was read: a change to any of these reads it again. */
struct seen {
    char path[1024];
    uint64_t dev, ino, size;
    int64_t mtime_ns;
    struct pc_gguf_details details;
};

/* Enough for any store; past it the oldest slot is reused (a read again, never a wrong answer). */
#define SEEN_MAX 256

/* cache_lock guards seen, n_seen and next. The header is read outside it. */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct seen seen[SEEN_MAX];
static size_t n_seen;
static size_t next; /* the slot to reuse once all are taken */

static bool same_file(const struct seen *s, const char *path, const struct stat *st)
{
    return s->dev == (uint64_t)st->st_dev && s->ino == (uint64_t)st->st_ino &&
           s->size == (uint64_t)st->st_size &&
           s->mtime_ns == (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec &&
           strcmp(s->path, path) == 0;
}

enum pc_err pc_gguf_details(const char *path, struct pc_gguf_details *out, struct pc_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return pc_error_set(err, PC_ERR_NOT_FOUND, "model file \"%s\" not found", path);
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < n_seen; i++) {
        if (same_file(&seen[i], path, &st)) {
            *out = seen[i].details;
            pthread_mutex_unlock(&cache_lock);
            return PC_OK;
        }
    }
    pthread_mutex_unlock(&cache_lock);

    struct pc_gguf_info g;
    enum pc_err rc = pc_gguf_inspect(path, &g, err);
    if (rc != PC_OK)
        return rc;
    *out = (struct pc_gguf_details){0};
    snprintf(out->family, sizeof(out->family), "%s", g.arch);
    snprintf(out->parameter_size, sizeof(out->parameter_size), "%s", g.parameter_size);
    snprintf(out->quantization, sizeof(out->quantization), "%s", g.quantization);

    pthread_mutex_lock(&cache_lock);
    /* The same path seen before with another identity: its slot is replaced. */
    size_t slot = n_seen;
    for (size_t i = 0; i < n_seen; i++)
        if (strcmp(seen[i].path, path) == 0)
            slot = i;
    if (slot == SEEN_MAX) {
        slot = next;
        next = (next + 1) % SEEN_MAX;
    } else if (slot == n_seen) {
        n_seen++;
    }
    struct seen *s = &seen[slot];
    snprintf(s->path, sizeof(s->path), "%s", path);
    s->dev = (uint64_t)st.st_dev;
    s->ino = (uint64_t)st.st_ino;
    s->size = (uint64_t)st.st_size;
    s->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    s->details = *out;
    pthread_mutex_unlock(&cache_lock);
    return PC_OK;
}
