/* partfile.c - a download's .part file, written in blocks and hashed on a second thread.
 *
 * The caller fills one block at a time; a full block is written with pwrite() and handed to the
 * hashing thread, and the caller goes on filling the next one. The hasher also starts the
 * kernel's writeback of what it has hashed (sync_file_range), so that the fsync at the end has
 * little left to wait for. A ring of blocks bounds the memory and makes a slow hasher slow the
 * download down rather than queue without end. */
#include "partfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#define BLOCK_SIZE (1u << 20)
#define N_BLOCKS 8u
#define WRITEBACK_EVERY (32ull << 20)

struct pc_partfile {
    char path[PATH_MAX];
    int fd;
    uint64_t size;        /* bytes appended */
    uint64_t written;     /* bytes written to the file */
    size_t fill;          /* bytes in the block being filled */
    unsigned cur;         /* the block being filled */
    unsigned char *mem;   /* N_BLOCKS blocks of BLOCK_SIZE */
    struct pc_error werr; /* the first write error, returned until truncate */

    pthread_t thread;
    bool thread_started;
    EVP_MD_CTX *md; /* used by the hasher while blocks are queued, else by the caller */

    pthread_mutex_t lock; /* guards lens, head, count, stop, hashed, synced */
    pthread_cond_t cv;
    size_t lens[N_BLOCKS];
    unsigned head;   /* the oldest block waiting to be hashed */
    unsigned count;  /* blocks written and waiting to be hashed */
    bool stop;       /* the hasher ends once the queue is empty */
    uint64_t hashed; /* bytes hashed */
    uint64_t synced; /* writeback started up to here */
};

static void *hasher(void *arg)
{
    struct pc_partfile *pf = arg;
    pthread_mutex_lock(&pf->lock);
    for (;;) {
        while (pf->count == 0 && !pf->stop)
            pthread_cond_wait(&pf->cv, &pf->lock);
        if (pf->count == 0)
            break;
        unsigned idx = pf->head;
        size_t len = pf->lens[idx];
        uint64_t from = pf->synced, to = pf->hashed + len;
        pthread_mutex_unlock(&pf->lock);

        EVP_DigestUpdate(pf->md, pf->mem + (size_t)idx * BLOCK_SIZE, len);
        bool writeback = to - from >= WRITEBACK_EVERY;
        if (writeback) /* a hint to the kernel; its failure changes nothing that we rely on */
            (void)sync_file_range(pf->fd, (off64_t)from, (off64_t)(to - from),
                                  SYNC_FILE_RANGE_WRITE);

        pthread_mutex_lock(&pf->lock);
        pf->hashed = to;
        if (writeback)
            pf->synced = to;
        pf->head = (pf->head + 1) % N_BLOCKS;
        pf->count--;
        pthread_cond_broadcast(&pf->cv);
    }
    pthread_mutex_unlock(&pf->lock);
    return NULL;
}

/* Wait until the hasher has taken in every block written. */
static void drain(struct pc_partfile *pf)
{
    pthread_mutex_lock(&pf->lock);
    while (pf->count > 0)
        pthread_cond_wait(&pf->cv, &pf->lock);
    pthread_mutex_unlock(&pf->lock);
}

static enum pc_err write_all(struct pc_partfile *pf, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = pwrite(pf->fd, p, n, (off_t)pf->written);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return pc_error_set(&pf->werr, PC_ERR_IO, "write() \"%s\" failed at byte %llu: %s",
                                pf->path, (unsigned long long)pf->written, strerror(errno));
        p += w;
        n -= (size_t)w;
        pf->written += (uint64_t)w;
    }
    return PC_OK;
}

/* Write the block being filled and queue it for the hasher. */
static enum pc_err submit(struct pc_partfile *pf)
{
    if (pf->fill == 0)
        return PC_OK;
    if (write_all(pf, pf->mem + (size_t)pf->cur * BLOCK_SIZE, pf->fill) != PC_OK)
        return pf->werr.code;
    pthread_mutex_lock(&pf->lock);
    pf->lens[pf->cur] = pf->fill;
    pf->count++;
    pthread_cond_broadcast(&pf->cv);
    while (pf->count == N_BLOCKS)
        pthread_cond_wait(&pf->cv, &pf->lock);
    pf->cur = (pf->head + pf->count) % N_BLOCKS;
    pthread_mutex_unlock(&pf->lock);
    pf->fill = 0;
    return PC_OK;
}

static void copy_error(const struct pc_partfile *pf, struct pc_error *err)
{
    if (err != NULL)
        *err = pf->werr;
}

/* Hash what the file already holds: a resumed download's hash covers the part on disk. */
static enum pc_err hash_existing(struct pc_partfile *pf, struct pc_error *err)
{
    for (;;) {
        ssize_t n = pread(pf->fd, pf->mem, BLOCK_SIZE, (off_t)pf->written);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return pc_error_set(err, PC_ERR_IO, "read() \"%s\" failed: %s", pf->path,
                                strerror(errno));
        if (n == 0)
            break;
        EVP_DigestUpdate(pf->md, pf->mem, (size_t)n);
        pf->written += (uint64_t)n;
    }
    pf->size = pf->hashed = pf->synced = pf->written;
    return PC_OK;
}

enum pc_err pc_partfile_open(const char *path, struct pc_partfile **out, struct pc_error *err)
{
    *out = NULL;
    struct pc_partfile *pf = calloc(1, sizeof(*pf));
    if (pf == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    pf->fd = -1;
    pthread_mutex_init(&pf->lock, NULL);
    pthread_cond_init(&pf->cv, NULL);
    enum pc_err rc = PC_OK;
    if ((size_t)snprintf(pf->path, sizeof(pf->path), "%s", path) >= sizeof(pf->path)) {
        rc = pc_error_set(err, PC_ERR_INVALID, "path too long: \"%s\"", path);
        goto fail;
    }
    pf->mem = malloc((size_t)N_BLOCKS * BLOCK_SIZE);
    pf->md = EVP_MD_CTX_new();
    if (pf->mem == NULL || pf->md == NULL || !EVP_DigestInit_ex(pf->md, EVP_sha256(), NULL)) {
        rc = pc_error_set(err, PC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    pf->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (pf->fd < 0) {
        rc = pc_error_set(err, PC_ERR_IO, "open() \"%s\" failed: %s", path, strerror(errno));
        goto fail;
    }
    rc = hash_existing(pf, err);
    if (rc != PC_OK)
        goto fail;
    if (pthread_create(&pf->thread, NULL, hasher, pf) != 0) {
        rc = pc_error_set(err, PC_ERR_NOMEM, "pthread_create() failed for the hashing thread");
        goto fail;
    }
    pf->thread_started = true;
    *out = pf;
    return PC_OK;
fail:
    pc_partfile_close(pf);
    return rc;
}

uint64_t pc_partfile_size(const struct pc_partfile *pf)
{
    return pf->size;
}

enum pc_err pc_partfile_append(struct pc_partfile *pf, const void *p, size_t n,
                               struct pc_error *err)
{
    const unsigned char *src = p;
    if (pf->werr.code != PC_OK) {
        copy_error(pf, err);
        return pf->werr.code;
    }
    while (n > 0) {
        size_t take = BLOCK_SIZE - pf->fill;
        if (take > n)
            take = n;
        memcpy(pf->mem + (size_t)pf->cur * BLOCK_SIZE + pf->fill, src, take);
        pf->fill += take;
        pf->size += take;
        src += take;
        n -= take;
        if (pf->fill == BLOCK_SIZE && submit(pf) != PC_OK) {
            copy_error(pf, err);
            return pf->werr.code;
        }
    }
    return PC_OK;
}

enum pc_err pc_partfile_flush(struct pc_partfile *pf, struct pc_error *err)
{
    if (pf->werr.code == PC_OK)
        submit(pf);
    drain(pf);
    if (pf->werr.code != PC_OK) {
        copy_error(pf, err);
        return pf->werr.code;
    }
    return PC_OK;
}

enum pc_err pc_partfile_truncate(struct pc_partfile *pf, struct pc_error *err)
{
    pf->fill = 0;
    drain(pf);
    if (ftruncate(pf->fd, 0) != 0)
        return pc_error_set(err, PC_ERR_IO, "ftruncate() \"%s\" failed: %s", pf->path,
                            strerror(errno));
    pc_error_clear(&pf->werr);
    pthread_mutex_lock(&pf->lock);
    pf->size = pf->written = pf->hashed = pf->synced = 0;
    pthread_mutex_unlock(&pf->lock);
    if (!EVP_DigestInit_ex(pf->md, EVP_sha256(), NULL))
        return pc_error_set(err, PC_ERR_NOMEM, "sha256: out of memory");
    return PC_OK;
}

enum pc_err pc_partfile_sync(struct pc_partfile *pf, struct pc_error *err)
{
    enum pc_err rc = pc_partfile_flush(pf, err);
    if (rc != PC_OK)
        return rc;
    if (fsync(pf->fd) != 0)
        return pc_error_set(err, PC_ERR_IO, "fsync() \"%s\" failed: %s", pf->path, strerror(errno));
    return PC_OK;
}

enum pc_err pc_partfile_digest(struct pc_partfile *pf, char hex[65], struct pc_error *err)
{
    hex[0] = '\0';
    enum pc_err rc = pc_partfile_flush(pf, err);
    if (rc != PC_OK)
        return rc;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    if (copy == NULL || !EVP_MD_CTX_copy_ex(copy, pf->md) ||
        !EVP_DigestFinal_ex(copy, digest, &dlen) || dlen != 32) {
        EVP_MD_CTX_free(copy);
        return pc_error_set(err, PC_ERR_NOMEM, "sha256: out of memory");
    }
    EVP_MD_CTX_free(copy);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    return PC_OK;
}

void pc_partfile_close(struct pc_partfile *pf)
{
    if (pf == NULL)
        return;
    if (pf->thread_started) {
        if (pf->werr.code == PC_OK)
            submit(pf);
        pthread_mutex_lock(&pf->lock);
        pf->stop = true;
        pthread_cond_broadcast(&pf->cv);
        pthread_mutex_unlock(&pf->lock);
        pthread_join(pf->thread, NULL);
    }
    if (pf->fd >= 0)
        close(pf->fd);
    EVP_MD_CTX_free(pf->md);
    free(pf->mem);
    pthread_cond_destroy(&pf->cv);
    pthread_mutex_destroy(&pf->lock);
    free(pf);
}
