/* cache.c - the models in the store as a cache: list, remove, prune by least recent use, clean
 * by age, and report usage. */
#include "cache.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "../base/file.h"
#include "../base/fmt.h"
#include "../base/lock.h"
#include "../base/log.h"
#include "download.h"
#include "manifest.h"
#include "store.h"

int64_t pc_cache_last_touch(const struct pc_cache_model *m)
{
    return m->last_used > 0 ? m->last_used : m->downloaded_at;
}

static void from_entry(const char *models_dir, const struct pc_manifest_entry *e,
                       struct pc_cache_model *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->id, sizeof(out->id), "%s", e->id);
    snprintf(out->path, sizeof(out->path), "%s/%s.gguf", models_dir, e->id);
    out->size_bytes = e->size_bytes;
    snprintf(out->checksum, sizeof(out->checksum), "%s", e->checksum);
    out->downloaded_at = e->downloaded_at;
    out->last_used = e->last_used;
    out->use_count = e->use_count;
}

enum pc_err pc_cache_list(const char *models_dir, struct pc_cache_model **out, size_t *n,
                          struct pc_error *err)
{
    *out = NULL;
    *n = 0;
    struct pc_manifest m;
    enum pc_err rc = pc_manifest_load(models_dir, &m, err);
    if (rc != PC_OK)
        return rc;
    if (m.n > 0) {
        *out = calloc(m.n, sizeof(**out));
        if (*out == NULL) {
            pc_manifest_free(&m);
            return pc_error_set(err, PC_ERR_NOMEM, "listing models: out of memory");
        }
    }
    for (size_t i = 0; i < m.n; i++) /* the manifest keeps them sorted by id */
        from_entry(models_dir, &m.models[i], &(*out)[i]);
    *n = m.n;
    pc_manifest_free(&m);
    return PC_OK;
}

enum pc_err pc_cache_get(const char *models_dir, const char *id, struct pc_cache_model *out,
                         struct pc_error *err)
{
    char norm[256];
    enum pc_err rc = pc_store_name(id, norm, sizeof(norm), err);
    if (rc != PC_OK)
        return rc;
    struct pc_manifest m;
    rc = pc_manifest_load(models_dir, &m, err);
    if (rc != PC_OK)
        return rc;
    const struct pc_manifest_entry *e = pc_manifest_find(&m, norm);
    if (e != NULL)
        from_entry(models_dir, e, out);
    else
        rc = pc_error_set(err, PC_ERR_NOT_FOUND, "model \"%s\" is not in the store", id);
    pc_manifest_free(&m);
    return rc;
}

/* ---- removal ----------------------------------------------------------------------------- */

static bool unlink_counted(const char *path, uint64_t *bytes, struct pc_error *err)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return false;
    if (unlink(path) != 0) {
        pc_error_set(err, PC_ERR_IO, "unlink() \"%s\" failed: %s", path, strerror(errno));
        return false;
    }
    if (bytes != NULL)
        *bytes += (uint64_t)st.st_size;
    return true;
}

/* Remove id's file and part under its download lock. *bytes grows by what went. */
static enum pc_err remove_files(const char *models_dir, const char *id, uint64_t *bytes,
                                struct pc_error *err)
{
    char dir[PATH_MAX], lock[PATH_MAX + 300], file[PATH_MAX + 300], part[PATH_MAX + 300];
    snprintf(dir, sizeof(dir), "%s/%s", models_dir, PC_DOWNLOAD_DIR);
    snprintf(lock, sizeof(lock), "%s/%s.gguf.lock", dir, id);
    snprintf(part, sizeof(part), "%s/%s.gguf.part", dir, id);
    snprintf(file, sizeof(file), "%s/%s.gguf", models_dir, id);

    struct stat st;
    if (stat(models_dir, &st) != 0)
        return pc_error_set(err, PC_ERR_NOT_FOUND, "model \"%s\" is not in the store", id);
    /* Under the download lock, so that a pull of the same model does not find a file that is
     * about to go, or lose its part. */
    enum pc_err rc = pc_file_mkdirs(dir, err);
    int fd = -1;
    struct pc_error lerr = {0};
    if (rc == PC_OK && pc_lock_acquire(lock, PC_LOCK_TRY, &fd, &lerr) != PC_OK) {
        if (lerr.code == PC_ERR_BUSY)
            return pc_error_set(err, PC_ERR_BUSY,
                                "model \"%s\" is being downloaded; try again when it is done", id);
        if (err != NULL)
            *err = lerr;
        return lerr.code;
    }
    if (rc != PC_OK)
        return rc;
    uint64_t before = bytes ? *bytes : 0;
    struct pc_error uerr = {0};
    bool had_file = unlink_counted(file, bytes, &uerr);
    bool had_part = uerr.code == PC_OK && unlink_counted(part, bytes, &uerr);
    pc_lock_release(fd, lock, true);
    if (uerr.code != PC_OK) {
        if (err != NULL)
            *err = uerr;
        return uerr.code;
    }
    if (!had_file && !had_part)
        return pc_error_set(err, PC_ERR_NOT_FOUND, "model \"%s\" is not in the store", id);
    pc_log_info("store", "removed %s (%llu bytes)", id,
                (unsigned long long)((bytes ? *bytes : 0) - before));
    return pc_manifest_forget(models_dir, id, err);
}

enum pc_err pc_cache_remove(const char *models_dir, const char *id, struct pc_error *err)
{
    char norm[256];
    enum pc_err rc = pc_store_name(id, norm, sizeof(norm), err);
    if (rc != PC_OK)
        return rc;
    uint64_t bytes = 0;
    return remove_files(models_dir, norm, &bytes, err);
}

/* ---- bulk operations --------------------------------------------------------------------- */

typedef bool (*select_fn)(const struct pc_cache_model *m, void *arg, uint64_t remaining);

static int by_last_touch(const void *a, const void *b)
{
    const struct pc_cache_model *x = a, *y = b;
    int64_t tx = pc_cache_last_touch(x), ty = pc_cache_last_touch(y);
    if (tx != ty)
        return tx < ty ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* Walk the models from least to most recently used; remove those that sel picks and the
 * hooks do not keep. */
static enum pc_err remove_where(const char *models_dir, select_fn sel, void *arg,
                                const struct pc_cache_hooks *hooks, struct pc_cache_freed *freed,
                                struct pc_error *err)
{
    struct pc_cache_freed local = {0};
    if (freed == NULL)
        freed = &local;
    struct pc_cache_model *list = NULL;
    size_t n = 0;
    enum pc_err rc = pc_cache_list(models_dir, &list, &n, err);
    if (rc != PC_OK)
        return rc;
    if (n > 1)
        qsort(list, n, sizeof(*list), by_last_touch);
    uint64_t remaining = 0;
    for (size_t i = 0; i < n; i++)
        remaining += list[i].size_bytes;
    for (size_t i = 0; i < n && rc == PC_OK; i++) {
        if (!sel(&list[i], arg, remaining))
            continue;
        if (hooks != NULL && hooks->keep != NULL && hooks->keep(hooks->user, list[i].id)) {
            pc_log_info("store", "keeping %s: it is in use", list[i].id);
            continue;
        }
        uint64_t bytes = 0;
        struct pc_error rerr = {0};
        enum pc_err r = remove_files(models_dir, list[i].id, &bytes, &rerr);
        if (r == PC_ERR_BUSY || r == PC_ERR_NOT_FOUND) { /* a download or someone else's */
            pc_log_info("store", "skipping %s: %s", list[i].id, rerr.msg);
            continue;
        }
        if (r != PC_OK) {
            rc = r;
            if (err != NULL)
                *err = rerr;
            break;
        }
        remaining -= list[i].size_bytes < remaining ? list[i].size_bytes : remaining;
        freed->models++;
        freed->model_bytes += bytes;
        if (hooks != NULL && hooks->removed != NULL)
            hooks->removed(hooks->user, &list[i]);
    }
    freed->remaining_bytes = remaining;
    free(list);
    return rc;
}

static bool select_all(const struct pc_cache_model *m, void *arg, uint64_t remaining)
{
    (void)m;
    (void)arg;
    (void)remaining;
    return true;
}

static bool select_over(const struct pc_cache_model *m, void *arg, uint64_t remaining)
{
    (void)m;
    return remaining > *(uint64_t *)arg;
}

static bool select_older(const struct pc_cache_model *m, void *arg, uint64_t remaining)
{
    (void)remaining;
    return pc_cache_last_touch(m) < *(int64_t *)arg;
}

enum pc_err pc_cache_clear(const char *models_dir, const struct pc_cache_hooks *hooks,
                           struct pc_cache_freed *freed, struct pc_error *err)
{
    if (freed != NULL)
        memset(freed, 0, sizeof(*freed));
    return remove_where(models_dir, select_all, NULL, hooks, freed, err);
}

enum pc_err pc_cache_prune(const char *models_dir, uint64_t max_bytes,
                           const struct pc_cache_hooks *hooks, struct pc_cache_freed *freed,
                           struct pc_error *err)
{
    if (freed != NULL)
        memset(freed, 0, sizeof(*freed));
    return remove_where(models_dir, select_over, &max_bytes, hooks, freed, err);
}

/* The hooks of make_room: the caller's, and id is kept too. */
struct room {
    const char *id;
    const struct pc_cache_hooks *hooks;
};

static bool room_keeps(void *user, const char *id)
{
    const struct room *r = user;
    return strcmp(id, r->id) == 0 ||
           (r->hooks != NULL && r->hooks->keep != NULL && r->hooks->keep(r->hooks->user, id));
}

static void room_removed(void *user, const struct pc_cache_model *m)
{
    const struct room *r = user;
    pc_log_info("store", "removed %s (least recently used) to make room for %s", m->id, r->id);
    if (r->hooks != NULL && r->hooks->removed != NULL)
        r->hooks->removed(r->hooks->user, m);
}

/* "a (74 MB), b (1.9 GB)": the models that room keeps, but id. */
static void held_by(const char *models_dir, const struct room *r, char *out, size_t size)
{
    struct pc_cache_model *list = NULL;
    size_t n = 0, len = 0;
    out[0] = '\0';
    if (pc_cache_list(models_dir, &list, &n, NULL) != PC_OK)
        return;
    for (size_t i = 0; i < n && len < size; i++) {
        if (strcmp(list[i].id, r->id) == 0 || !room_keeps((void *)r, list[i].id))
            continue;
        char b[32];
        int w = snprintf(out + len, size - len, "%s%s (%s)", len ? ", " : "", list[i].id,
                         pc_fmt_bytes(list[i].size_bytes, b, sizeof(b)));
        len += w > 0 ? (size_t)w : 0;
    }
    free(list);
}

enum pc_err pc_cache_make_room(const char *models_dir, const char *id, uint64_t need,
                               uint64_t max_bytes, const struct pc_cache_hooks *hooks,
                               struct pc_error *err)
{
    char a[32], b[32], held[PC_ERROR_MSG_MAX / 2];
    struct room r = {.id = id, .hooks = hooks};
    if (need > max_bytes)
        return pc_error_set(err, PC_ERR_CACHE_FULL,
                            "cache full: need %s for %s, limit %s (PRECHARGE_CACHE_MAX): the "
                            "model alone is larger",
                            pc_fmt_bytes(need, a, sizeof(a)), id,
                            pc_fmt_bytes(max_bytes, b, sizeof(b)));
    /* id's older copy, if any, is replaced: its bytes are not counted against the new file. */
    struct pc_cache_model old;
    uint64_t old_bytes = pc_cache_get(models_dir, id, &old, NULL) == PC_OK ? old.size_bytes : 0;
    uint64_t target = max_bytes - need + old_bytes;
    struct pc_cache_hooks mine = {.keep = room_keeps, .removed = room_removed, .user = &r};
    struct pc_cache_freed freed;
    enum pc_err rc = pc_cache_prune(models_dir, target, &mine, &freed, err);
    if (rc != PC_OK || freed.remaining_bytes <= target)
        return rc;
    held_by(models_dir, &r, held, sizeof(held));
    return pc_error_set(err, PC_ERR_CACHE_FULL, "cache full: need %s for %s, limit %s, held by %s",
                        pc_fmt_bytes(need, a, sizeof(a)), id, pc_fmt_bytes(max_bytes, b, sizeof(b)),
                        held[0] ? held : "models being downloaded");
}

enum pc_err pc_cache_clean(const char *models_dir, int64_t older_than_s,
                           const struct pc_cache_hooks *hooks, struct pc_cache_freed *freed,
                           struct pc_error *err)
{
    struct pc_cache_freed local = {0};
    if (freed == NULL)
        freed = &local;
    memset(freed, 0, sizeof(*freed));
    enum pc_err rc = pc_download_clean_parts(models_dir, PC_CACHE_PART_MAX_AGE_S,
                                             &freed->part_bytes, &freed->parts, err);
    if (rc != PC_OK)
        return rc;
    if (older_than_s > 0) {
        int64_t cutoff = (int64_t)time(NULL) - older_than_s;
        return remove_where(models_dir, select_older, &cutoff, hooks, freed, err);
    }
    struct pc_cache_usage u;
    rc = pc_cache_usage(models_dir, &u, err);
    freed->remaining_bytes = u.model_bytes;
    return rc;
}

/* ---- usage ------------------------------------------------------------------------------- */

static void count_parts(const char *models_dir, struct pc_cache_usage *u)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/%s", models_dir, PC_DOWNLOAD_DIR);
    DIR *dp = opendir(dir);
    if (dp == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len <= 10 || strcmp(de->d_name + len - 10, ".gguf.part") != 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(dp), de->d_name, &st, 0) == 0 && S_ISREG(st.st_mode)) {
            u->parts++;
            u->part_bytes += (uint64_t)st.st_size;
        }
    }
    closedir(dp);
}

enum pc_err pc_cache_usage(const char *models_dir, struct pc_cache_usage *out, struct pc_error *err)
{
    memset(out, 0, sizeof(*out));
    struct pc_cache_model *list = NULL;
    size_t n = 0;
    enum pc_err rc = pc_cache_list(models_dir, &list, &n, err);
    if (rc != PC_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        int64_t t = pc_cache_last_touch(&list[i]);
        out->models++;
        out->model_bytes += list[i].size_bytes;
        /* Saturated as each count is (JSON's integers stop at 2^63 - 1). */
        out->total_uses = list[i].use_count > INT64_MAX - out->total_uses
                              ? INT64_MAX
                              : out->total_uses + list[i].use_count;
        if (out->oldest_touch == 0 || t < out->oldest_touch)
            out->oldest_touch = t;
        if (t > out->newest_touch)
            out->newest_touch = t;
    }
    free(list);
    count_parts(models_dir, out);
    struct statvfs vfs;
    if (statvfs(models_dir, &vfs) == 0) {
        out->disk_free = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        out->disk_total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
    }
    return PC_OK;
}

int64_t pc_cache_parse_age(const char *s)
{
    char *end;
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    double v = strtod(s, &end);
    int64_t unit;
    if (*end == '\0' || strcmp(end, "d") == 0)
        unit = 86400;
    else if (strcmp(end, "w") == 0)
        unit = 7 * 86400;
    else if (strcmp(end, "h") == 0)
        unit = 3600;
    else if (strcmp(end, "m") == 0)
        unit = 60;
    else if (strcmp(end, "s") == 0)
        unit = 1;
    else
        return -1;
    if (v < 0 || v * (double)unit > 1e12)
        return -1;
    return (int64_t)(v * (double)unit);
}
