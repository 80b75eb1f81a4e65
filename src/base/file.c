/* file.c - files that survive a crash: atomic writes, directories, safe names. */
#include "file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

static enum pc_err fsync_dir_of(const char *path, struct pc_error *err)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return pc_error_set(err, PC_ERR_IO, "open() \"%s\" failed: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    if (rc != 0)
        return pc_error_set(err, PC_ERR_IO, "fsync() \"%s\" failed: %s", dir, strerror(saved));
    return PC_OK;
}

/* A new temp file from template (its XXXXXX replaced), locked (flock) for as long as the
 * writer lives: what pc_file_sweep_tmp tells a write in progress by. A sweep that took the
 * file between its creation and our lock has unlinked it: then make another. */
static int open_locked_tmp(char *template, struct pc_error *err)
{
    size_t len = strlen(template);
    for (int attempt = 0; attempt < 100; attempt++) {
        memcpy(template + len - 6, "XXXXXX", 6);
        /* A name of its own for every writer, threads of one process included. */
        int fd = mkostemp(template, O_CLOEXEC);
        if (fd < 0) {
            pc_error_set(err, PC_ERR_IO, "mkostemp() \"%s\" failed: %s", template, strerror(errno));
            return -1;
        }
        struct stat st;
        int rc;
        while ((rc = flock(fd, LOCK_EX)) != 0 && errno == EINTR)
            ;
        if (rc != 0 || fstat(fd, &st) != 0) {
            pc_error_set(err, PC_ERR_IO, "flock() \"%s\" failed: %s", template, strerror(errno));
            close(fd);
            unlink(template);
            return -1;
        }
        if (st.st_nlink > 0)
            return fd;
        close(fd);
    }
    pc_error_set(err, PC_ERR_IO, "\"%s\": every temp file was swept away as it was made", template);
    return -1;
}

size_t pc_file_sweep_tmp(const char *dir, const char *pattern)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (fnmatch(pattern, de->d_name, FNM_PERIOD) != 0)
            continue;
        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        if (fd < 0)
            continue;
        /* Unlinked under our lock: a writer that locks it next sees that it is gone. */
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
            unlinkat(dirfd(d), de->d_name, 0) == 0)
            n++;
        close(fd);
    }
    closedir(d);
    return n;
}

enum pc_err pc_file_write_atomic(const char *path, const void *data, size_t len,
                                 struct pc_error *err)
{
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= sizeof(tmp))
        return pc_error_set(err, PC_ERR_INVALID, "path too long: \"%s\"", path);

    int fd = open_locked_tmp(tmp, err);
    if (fd < 0)
        return err ? err->code : PC_ERR_IO;
    if (fchmod(fd, 0644) != 0) {
        pc_error_set(err, PC_ERR_IO, "fchmod() \"%s\" failed: %s", tmp, strerror(errno));
        goto fail;
    }

    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            pc_error_set(err, PC_ERR_IO, "write() \"%s\" failed: %s", tmp, strerror(errno));
            goto fail;
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) != 0) {
        pc_error_set(err, PC_ERR_IO, "fsync() \"%s\" failed: %s", tmp, strerror(errno));
        goto fail;
    }
    /* Renamed while still locked: a sweep never takes a file that is about to be in place. */
    if (rename(tmp, path) != 0) {
        pc_error_set(err, PC_ERR_IO, "rename() \"%s\" to \"%s\" failed: %s", tmp, path,
                     strerror(errno));
        goto fail;
    }
    close(fd); /* the data is fsynced: a late error of close() says nothing more */
    return fsync_dir_of(path, err);

fail:
    unlink(tmp);
    close(fd);
    return err ? err->code : PC_ERR_IO;
}

bool pc_file_is_inside(const char *real, const char *dir)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return real[0] == '/';
    return strncmp(real, dir, n) == 0 && (real[n] == '/' || real[n] == '\0');
}

enum pc_err pc_file_read(const char *path, size_t max, char **out, size_t *out_len,
                         struct pc_error *err)
{
    *out = NULL;
    if (out_len)
        *out_len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return pc_error_set(err, errno == ENOENT ? PC_ERR_NOT_FOUND : PC_ERR_IO, "open \"%s\": %s",
                            path, strerror(errno));
    char *data = NULL;
    size_t len = 0, cap = 0;
    enum pc_err rc = PC_OK;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *p = realloc(data, cap);
            if (p == NULL) {
                rc = pc_error_set(err, PC_ERR_NOMEM, "reading \"%s\": out of memory", path);
                goto out;
            }
            data = p;
        }
        size_t n = fread(data + len, 1, cap - len - 1, f);
        len += n;
        if (len > max) {
            rc = pc_error_set(err, PC_ERR_TOO_LARGE, "\"%s\" is larger than %zu bytes", path, max);
            goto out;
        }
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        rc = pc_error_set(err, PC_ERR_IO, "read \"%s\": %s", path, strerror(errno));
        goto out;
    }
    data[len] = '\0';
    *out = data;
    data = NULL;
    if (out_len)
        *out_len = len;
out:
    free(data);
    fclose(f);
    return rc;
}

enum pc_err pc_file_mkdirs(const char *path, struct pc_error *err)
{
    char buf[PATH_MAX];
    if ((size_t)snprintf(buf, sizeof(buf), "%s", path) >= sizeof(buf))
        return pc_error_set(err, PC_ERR_INVALID, "path too long: \"%s\"", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return pc_error_set(err, PC_ERR_IO, "mkdir() \"%s\" failed: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return pc_error_set(err, PC_ERR_IO, "mkdir() \"%s\" failed: %s", buf, strerror(errno));
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        return pc_error_set(err, PC_ERR_IO, "\"%s\" exists and is not a directory", buf);
    return PC_OK;
}

bool pc_file_name_is_safe(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 200 || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

enum pc_err pc_file_sha256(const char *path, char hex[65], struct pc_error *err)
{
    return pc_file_sha256_progress(path, hex, NULL, NULL, err);
}

enum pc_err pc_file_sha256_progress(const char *path, char hex[65],
                                    void (*progress)(void *user, uint64_t done, uint64_t total),
                                    void *user, struct pc_error *err)
{
    hex[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pc_error_set(err, errno == ENOENT ? PC_ERR_NOT_FOUND : PC_ERR_IO,
                            "open() \"%s\" failed: %s", path, strerror(errno));
    struct stat st;
    uint64_t total = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0, done = 0;
    if (progress != NULL)
        progress(user, 0, total);
    enum pc_err rc = PC_OK;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char *chunk = malloc(1 << 20);
    if (md == NULL || chunk == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        rc = pc_error_set(err, PC_ERR_NOMEM, "sha256 of \"%s\": out of memory", path);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, 1 << 20);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = pc_error_set(err, PC_ERR_IO, "read() \"%s\" failed: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        EVP_DigestUpdate(md, chunk, (size_t)n);
        done += (uint64_t)n;
        if (progress != NULL)
            progress(user, done, total);
    }
    unsigned char digest[32];
    unsigned int dlen = 0;
    EVP_DigestFinal_ex(md, digest, &dlen);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
out:
    free(chunk);
    EVP_MD_CTX_free(md);
    close(fd);
    return rc;
}
