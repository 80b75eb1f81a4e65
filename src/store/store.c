/* store.c - find models in the store by name, and list them. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/file.h"

enum pc_err pc_store_name(const char *name, char *out, size_t size, struct pc_error *err)
{
    size_t n = strlen(name);
    const char *tag = strrchr(name, ':');
    if (tag != NULL && strcmp(tag, ":latest") == 0)
        n = (size_t)(tag - name);
    if (n == 0)
        return pc_error_set(err, PC_ERR_INVALID, "model name is empty");
    if (n >= size)
        return pc_error_set(err, PC_ERR_INVALID, "model name is longer than %zu bytes", size - 1);
    memcpy(out, name, n);
    out[n] = '\0';
    if (!pc_file_name_is_safe(out) || strstr(out, "..") != NULL)
        return pc_error_set(err, PC_ERR_BAD_PATH,
                            "invalid model name \"%s\": names may not contain '/', '..', control "
                            "characters or start with '.'",
                            out);
    return PC_OK;
}

void pc_store_listed_name(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s%s", name, strchr(name, ':') != NULL ? "" : ":latest");
}

/* The directories besides the store where an entry's links may lead: the daemon's --model-dir
 * list, real paths. allow_lock guards both. */
static pthread_mutex_t allow_lock = PTHREAD_MUTEX_INITIALIZER;
static char allowed[PC_STORE_MAX_ALLOWED][PATH_MAX];
static size_t n_allowed;

void pc_store_allow_dirs(const char *const *dirs, size_t n)
{
    pthread_mutex_lock(&allow_lock);
    n_allowed = 0;
    for (size_t i = 0; i < n && n_allowed < PC_STORE_MAX_ALLOWED; i++)
        if (realpath(dirs[i], allowed[n_allowed]) != NULL)
            n_allowed++;
    pthread_mutex_unlock(&allow_lock);
}

static bool in_allowed_dir(const char *real)
{
    pthread_mutex_lock(&allow_lock);
    bool in = false;
    for (size_t i = 0; i < n_allowed && !in; i++)
        in = pc_file_is_inside(real, allowed[i]);
    pthread_mutex_unlock(&allow_lock);
    return in;
}

/* One rule for every use of an entry (show, load, copy, list): path, through whatever links,
 * is a regular file inside the store or inside an allowed model directory. The error names
 * what it is instead; never where an outside link leads. */
static enum pc_err check_entry(const char *models_dir, const char *name, const char *path,
                               struct pc_error *err)
{
    struct stat st;
    char real[PATH_MAX], store[PATH_MAX];
    if (lstat(path, &st) != 0)
        return pc_error_set(err, PC_ERR_NOT_FOUND, "model \"%s\" not found, try pulling it first",
                            name);
    if (realpath(path, real) == NULL || stat(real, &st) != 0)
        return pc_error_set(err, PC_ERR_NOT_FOUND,
                            "model \"%s\": \"%s\" is a symbolic link to a file that is not there",
                            name, path);
    if (S_ISDIR(st.st_mode))
        return pc_error_set(err, PC_ERR_MODEL_FORMAT,
                            "model \"%s\": \"%s\" is a directory, not a model file", name, path);
    if (!S_ISREG(st.st_mode))
        return pc_error_set(err, PC_ERR_MODEL_FORMAT, "model \"%s\": \"%s\" is not a regular file",
                            name, path);
    if ((realpath(models_dir, store) == NULL || !pc_file_is_inside(real, store)) &&
        !in_allowed_dir(real))
        return pc_error_set(err, PC_ERR_BAD_PATH,
                            "model \"%s\": \"%s\" is a symbolic link that leads outside the store "
                            "and the allowed model directories (--model-dir)",
                            name, path);
    return PC_OK;
}

enum pc_err pc_store_path(const char *models_dir, const char *name, char *out, size_t size,
                          struct pc_error *err)
{
    char norm[256];
    enum pc_err rc = pc_store_name(name, norm, sizeof(norm), err);
    if (rc != PC_OK)
        return rc;
    if ((size_t)snprintf(out, size, "%s/%s.gguf", models_dir, norm) >= size)
        return pc_error_set(err, PC_ERR_INVALID, "model path too long");
    return check_entry(models_dir, name, out, err);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct pc_store_entry *)a)->name,
                  ((const struct pc_store_entry *)b)->name);
}

enum pc_err pc_store_list(const char *models_dir, struct pc_store_entry **out, size_t *n,
                          struct pc_error *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(models_dir);
    if (d == NULL) {
        if (errno == ENOENT)
            return PC_OK;
        return pc_error_set(err, PC_ERR_IO, "opendir() \"%s\" failed: %s", models_dir,
                            strerror(errno));
    }
    struct pc_store_entry *list = NULL;
    size_t count = 0, cap = 0;
    enum pc_err rc = PC_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len <= 5 || strcmp(de->d_name + len - 5, ".gguf") != 0)
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            struct pc_store_entry *p = realloc(list, cap * sizeof(*p));
            if (p == NULL) {
                rc = pc_error_set(err, PC_ERR_NOMEM, "listing models: out of memory");
                goto out;
            }
            list = p;
        }
        struct pc_store_entry *e = &list[count];
        snprintf(e->name, sizeof(e->name), "%.*s", (int)(len - 5), de->d_name);
        /* List only what can be asked for by that name. */
        char norm[256];
        if (pc_store_name(e->name, norm, sizeof(norm), NULL) != PC_OK || strcmp(norm, e->name) != 0)
            continue;
        snprintf(e->path, sizeof(e->path), "%s/%s", models_dir, de->d_name);
        struct stat st;
        if (check_entry(models_dir, e->name, e->path, NULL) != PC_OK || stat(e->path, &st) != 0)
            continue;
        e->size = (uint64_t)st.st_size;
        e->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        count++;
    }
    if (count > 1)
        qsort(list, count, sizeof(*list), by_name);
    *out = list;
    *n = count;
    list = NULL;
out:
    free(list);
    closedir(d);
    return rc;
}

/* Copy the bytes of from into a new file at to, fsynced. */
static enum pc_err copy_file(const char *from, const char *to, struct pc_error *err)
{
    enum pc_err rc = PC_OK;
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = in < 0 ? -1 : open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (in < 0 || out < 0) {
        rc = pc_error_set(err, PC_ERR_IO, "open() \"%s\" failed: %s", in < 0 ? from : to,
                          strerror(errno));
        goto done;
    }
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = pc_error_set(err, PC_ERR_IO, "copy_file_range() \"%s\" failed: %s", to,
                              strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
    }
    if (fsync(out) != 0)
        rc = pc_error_set(err, PC_ERR_IO, "fsync() \"%s\" failed: %s", to, strerror(errno));
done:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

enum pc_err pc_store_copy(const char *models_dir, const char *src, const char *dst,
                          struct pc_error *err)
{
    char from[1024], to[1024], tmp[1100];
    enum pc_err rc = pc_store_path(models_dir, src, from, sizeof(from), err);
    if (rc != PC_OK)
        return rc;
    rc = pc_store_path(models_dir, dst, to, sizeof(to), err);
    if (rc != PC_OK && rc != PC_ERR_NOT_FOUND)
        return rc;
    if (strcmp(from, to) == 0)
        return PC_OK;
    /* The file itself, not a link to it: a hard link to a symbolic link is a second link, and
     * a relative one may lead elsewhere from its new name. */
    char real[PATH_MAX];
    if (realpath(from, real) == NULL)
        return pc_error_set(err, PC_ERR_IO, "realpath() \"%s\" failed: %s", from, strerror(errno));
    /* Not ".gguf" at the end: a listing never shows a half-made copy. */
    static atomic_uint seq;
    snprintf(tmp, sizeof(tmp), "%s.%ld-%u.copy.tmp", to, (long)getpid(), atomic_fetch_add(&seq, 1));
    unlink(tmp);
    if (link(real, tmp) != 0 && (rc = copy_file(real, tmp, err)) != PC_OK) {
        unlink(tmp);
        return rc;
    }
    if (rename(tmp, to) != 0) {
        rc = pc_error_set(err, PC_ERR_IO, "rename() \"%s\" failed: %s", to, strerror(errno));
        unlink(tmp);
        return rc;
    }
    int dir = open(models_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        fsync(dir);
        close(dir);
    }
    return PC_OK;
}
