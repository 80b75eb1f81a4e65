/* snapshot.c - the RAM and disk tiers of KV snapshots: save, demote, index, restore.
 *
 * A file on disk is one snapshot, written to a temp file, fsynced and renamed:
 *   "PCSNAP01" | key[16] | u32 n_tokens | u32 flags | u64 blob_size | u64 created_ns |
 *   model[64] | category[16] |
 *   int32 tokens[n_tokens] | blob[blob_size] | u64 FNV-1a of everything before it
 * The blob is llama.cpp's serialized sequence state. */
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/clock.h"
#include "../base/file.h"
#include "../base/fnv.h"
#include "../base/log.h"
#include "../base/tokens.h"
#include "../store/store.h"
#include "snapwire.h"

#define MAGIC "PCSNAP01"
#define FLAG_PRECHARGED 1u

struct header {
    char magic[8];
    char key[16];
    uint32_t n_tokens;
    uint32_t flags;
    uint64_t blob_size;
    int64_t created_ns;
    struct pc_snapshot_meta meta;
};

struct snap {
    struct snap *next;
    char key[17];
    uint64_t hash;
    int32_t *toks;
    size_t n;
    uint8_t *blob; /* the RAM copy, or NULL; immutable once set */
    size_t size;
    char *path; /* the disk copy, or NULL */
    uint64_t disk_bytes;
    int64_t last_used_ns;
    int64_t created_wall_ns;
    struct pc_snapshot_meta meta;
    bool precharged;
    bool shared; /* the shared tier has it: it came from there, or went there */
    int refs;    /* users outside the lock */
    bool dead;   /* unlinked from the list: freed by the last user */
};

#define REFUSED_MAX 16

/* A model file that the shared tier knows by its sha256. */
struct shared_model {
    struct shared_model *next;
    char key[17];    /* its identity here (pc_model_key) */
    char sha256[65]; /* its identity everywhere */
    char model[64];  /* its name here, for the snapshots that come from the tier */
    /* The token hashes of shared snapshots that failed to restore here (another host's state
     * that does not suit this one): never fetched again. The last REFUSED_MAX, in a ring. */
    char refused[REFUSED_MAX][17];
    size_t n_refused;
};

struct pc_snapstore {
    char *dir;
    uint64_t ram_budget, disk_budget;
    const struct pc_snaptier *tier; /* the shared tier behind disk, or NULL; set before use */
    /* lock guards the list, the byte counts, shared_models, and every snap's fields but toks
     * (immutable). */
    pthread_mutex_t lock;
    struct snap *list;
    struct shared_model *shared_models;
    uint64_t ram_bytes, disk_bytes;
    /* The demoter thread brings the tiers under budget for the decode loops' evictions, which
     * must never write a file themselves; lock also guards demote and stopping. */
    pthread_t demoter;
    pthread_cond_t demote_cond;
    bool demote, stopping, demoter_running;
};

const char *pc_tier_name(enum pc_tier t)
{
    /* The one shared tier there is, src/fleet's, is Redis: users see it by that name. */
    return t == PC_TIER_LIVE   ? "live"
           : t == PC_TIER_RAM  ? "ram"
           : t == PC_TIER_DISK ? "disk"
                               : "redis";
}

enum pc_err pc_model_key(const char *path, char key[17], struct pc_error *err)
{
    struct stat st;
    char real[4096];
    if (realpath(path, real) == NULL || stat(real, &st) != 0)
        return pc_error_set(err, PC_ERR_NOT_FOUND, "model file \"%s\": %s", path, strerror(errno));
    uint64_t h = pc_fnv1a(PC_FNV_SEED, real, strlen(real));
    h = pc_fnv1a(h, &st.st_size, sizeof(st.st_size));
    h = pc_fnv1a(h, &st.st_mtim, sizeof(st.st_mtim));
    snprintf(key, 17, "%016llx", (unsigned long long)h);
    return PC_OK;
}

static void snap_free(struct snap *s)
{
    free(s->toks);
    free(s->blob);
    free(s->path);
    free(s);
}

static void unref(struct snap *s)
{
    if (--s->refs == 0 && s->dead)
        snap_free(s);
}

/* Take s off the list; its last user frees it. */
static void detach(struct pc_snapstore *st, struct snap *s)
{
    for (struct snap **pp = &st->list; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    s->dead = true;
}

static void unlink_snap(struct pc_snapstore *st, struct snap *s)
{
    detach(st, s);
    if (s->refs == 0)
        snap_free(s);
}

static struct snap *find(struct pc_snapstore *st, const char *key, uint64_t hash, size_t n)
{
    for (struct snap *s = st->list; s; s = s->next)
        if (s->hash == hash && s->n == n && strcmp(s->key, key) == 0)
            return s;
    return NULL;
}

/* ---- files ------------------------------------------------------------------------------- */

static enum pc_err write_file(const char *path, const struct snap *s, struct pc_error *err)
{
    struct header h = {.n_tokens = (uint32_t)s->n,
                       .flags = s->precharged ? FLAG_PRECHARGED : 0,
                       .blob_size = s->size,
                       .created_ns = s->created_wall_ns,
                       .meta = s->meta};
    memcpy(h.magic, MAGIC, 8);
    memcpy(h.key, s->key, 16);
    size_t total = sizeof(h) + s->n * sizeof(int32_t) + s->size + sizeof(uint64_t);
    uint8_t *buf = malloc(total);
    if (buf == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "snapshot: out of memory");
    uint8_t *p = buf;
    memcpy(p, &h, sizeof(h));
    p += sizeof(h);
    memcpy(p, s->toks, s->n * sizeof(int32_t));
    p += s->n * sizeof(int32_t);
    memcpy(p, s->blob, s->size);
    p += s->size;
    uint64_t sum = pc_fnv1a(PC_FNV_SEED, buf, (size_t)(p - buf));
    memcpy(p, &sum, sizeof(sum));
    enum pc_err rc = pc_file_write_atomic(path, buf, total, err);
    free(buf);
    return rc;
}

/* Read a whole snapshot file and check it. *blob points into *buf, which the caller frees. */
static enum pc_err read_file(const char *path, uint8_t **buf, const uint8_t **blob, size_t *size,
                             struct pc_error *err)
{
    char *data = NULL;
    size_t len = 0;
    *buf = NULL;
    enum pc_err rc = pc_file_read(path, (size_t)1 << 36, &data, &len, err);
    if (rc != PC_OK)
        return rc;
    struct header h;
    if (len < sizeof(h) + 8)
        goto bad;
    memcpy(&h, data, sizeof(h));
    size_t expect = sizeof(h) + (size_t)h.n_tokens * sizeof(int32_t) + h.blob_size + 8;
    if (memcmp(h.magic, MAGIC, 8) != 0 || expect != len)
        goto bad;
    uint64_t sum;
    memcpy(&sum, data + len - 8, 8);
    if (sum != pc_fnv1a(PC_FNV_SEED, data, len - 8))
        goto bad;
    *buf = (uint8_t *)data;
    *blob = (uint8_t *)data + sizeof(h) + (size_t)h.n_tokens * sizeof(int32_t);
    *size = h.blob_size;
    return PC_OK;
bad:
    free(data);
    return pc_error_set(err, PC_ERR_IO, "snapshot \"%s\" is corrupt", path);
}

/* Index one file: its header and tokens, not its blob. */
static struct snap *index_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct header h;
    struct stat sb;
    struct snap *s = NULL;
    if (fstat(fd, &sb) != 0 || read(fd, &h, sizeof(h)) != (ssize_t)sizeof(h) ||
        memcmp(h.magic, MAGIC, 8) != 0 ||
        (uint64_t)sb.st_size !=
            sizeof(h) + (uint64_t)h.n_tokens * sizeof(int32_t) + h.blob_size + 8)
        goto out;
    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->toks = malloc((h.n_tokens ? h.n_tokens : 1) * sizeof(int32_t))) == NULL)
        goto fail;
    ssize_t want = (ssize_t)(h.n_tokens * sizeof(int32_t));
    if (read(fd, s->toks, (size_t)want) != want || (s->path = strdup(path)) == NULL)
        goto fail;
    memcpy(s->key, h.key, 16);
    s->key[16] = '\0';
    s->n = h.n_tokens;
    s->hash = pc_fnv1a(PC_FNV_SEED, s->toks, s->n * sizeof(int32_t));
    s->disk_bytes = (uint64_t)sb.st_size;
    s->precharged = (h.flags & FLAG_PRECHARGED) != 0;
    s->created_wall_ns = h.created_ns;
    s->meta = h.meta;
    s->meta.model[sizeof(s->meta.model) - 1] = '\0';
    s->meta.category[sizeof(s->meta.category) - 1] = '\0';
    /* Older files go first when the disk budget presses. */
    s->last_used_ns = pc_clock_mono_ns() - (pc_clock_wall_ns() - h.created_ns);
    goto out;
fail:
    if (s != NULL)
        snap_free(s);
    s = NULL;
out:
    close(fd);
    return s;
}

static void index_dir(struct pc_snapstore *st)
{
    DIR *d = opendir(st->dir);
    if (d == NULL)
        return;
    struct dirent *de;
    size_t n = 0;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".snap") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", st->dir, de->d_name);
        struct snap *s = index_file(path);
        if (s == NULL) {
            pc_log_warn("snapshot", "ignoring \"%s\": not a precharge snapshot", path);
            continue;
        }
        s->next = st->list;
        st->list = s;
        st->disk_bytes += s->disk_bytes;
        n++;
    }
    closedir(d);
    pc_log_info("snapshot", "indexed %zu snapshots in %s (%.1f MiB)", n, st->dir,
                (double)st->disk_bytes / 1048576.0);
}

static void enforce(struct pc_snapstore *st);

static void *demoter_main(void *arg)
{
    struct pc_snapstore *st = arg;
    pthread_mutex_lock(&st->lock);
    while (!st->stopping) {
        if (!st->demote) {
            pthread_cond_wait(&st->demote_cond, &st->lock);
            continue;
        }
        st->demote = false;
        enforce(st); /* writes with the lock let go, as every persist does */
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

enum pc_err pc_snapstore_open(const char *dir, uint64_t ram_budget, uint64_t disk_budget,
                              struct pc_snapstore **out, struct pc_error *err)
{
    *out = NULL;
    enum pc_err rc = pc_file_mkdirs(dir, err);
    if (rc != PC_OK)
        return rc;
    struct pc_snapstore *st = calloc(1, sizeof(*st));
    if (st == NULL || (st->dir = strdup(dir)) == NULL) {
        free(st);
        return pc_error_set(err, PC_ERR_NOMEM, "snapshots: out of memory");
    }
    st->ram_budget = ram_budget;
    st->disk_budget = disk_budget;
    pthread_mutex_init(&st->lock, NULL);
    pthread_cond_init(&st->demote_cond, NULL);
    /* Writes that a crash cut short: nothing else would ever remove them. */
    size_t swept = pc_file_sweep_tmp(dir, "*.snap.tmp.??????");
    if (swept > 0)
        pc_log_info("snapshot", "removed %zu unfinished snapshot files in %s", swept, dir);
    index_dir(st);
    pthread_mutex_lock(&st->lock);
    enforce(st); /* the budget may have shrunk since the files were written */
    pthread_mutex_unlock(&st->lock);
    st->demoter_running = pthread_create(&st->demoter, NULL, demoter_main, st) == 0;
    *out = st;
    return PC_OK;
}

void pc_snapstore_close(struct pc_snapstore *st)
{
    if (st == NULL)
        return;
    if (st->demoter_running) {
        pthread_mutex_lock(&st->lock);
        st->stopping = true;
        pthread_cond_signal(&st->demote_cond);
        pthread_mutex_unlock(&st->lock);
        pthread_join(st->demoter, NULL);
    }
    pthread_cond_destroy(&st->demote_cond);
    for (struct snap *s = st->list, *next; s; s = next) {
        next = s->next;
        snap_free(s);
    }
    for (struct shared_model *m = st->shared_models, *next; m; m = next) {
        next = m->next;
        free(m);
    }
    pthread_mutex_destroy(&st->lock);
    free(st->dir);
    free(st);
}

/* ---- budgets ----------------------------------------------------------------------------- */

static struct snap *lru_where(struct pc_snapstore *st, bool ram)
{
    struct snap *best = NULL;
    for (struct snap *s = st->list; s; s = s->next) {
        bool here = ram ? s->blob != NULL : s->path != NULL;
        if (here && s->refs == 0 && (best == NULL || s->last_used_ns < best->last_used_ns))
            best = s;
    }
    return best;
}

/* Delete s's file; an entry left in no tier leaves the list. Returns whether it did. */
static bool drop_file(struct pc_snapstore *st, struct snap *s)
{
    unlink(s->path);
    free(s->path);
    s->path = NULL;
    st->disk_bytes -= s->disk_bytes;
    s->disk_bytes = 0;
    if (s->blob != NULL)
        return false;
    detach(st, s);
    return true;
}

static void drop_disk(struct pc_snapstore *st, struct snap *s)
{
    if (drop_file(st, s) && s->refs == 0)
        snap_free(s);
}

static void snap_path(const struct pc_snapstore *st, const struct snap *s, char *out, size_t size)
{
    snprintf(out, size, "%s/%s-%016llx-%zu.snap", st->dir, s->key, (unsigned long long)s->hash,
             s->n);
}

/* Lock held: make room for bytes more on disk, dropping the least recently used files first.
 * The bytes are counted at once (a write in progress is on disk already), so that the directory
 * never holds more than the budget, whenever the process dies. False, nothing counted, when
 * they cannot fit (the files in use cannot be dropped). */
static bool reserve_disk(struct pc_snapstore *st, uint64_t bytes)
{
    if (bytes > st->disk_budget)
        return false;
    while (st->disk_bytes + bytes > st->disk_budget) {
        struct snap *s = lru_where(st, false);
        if (s == NULL)
            return false;
        drop_disk(st, s);
    }
    st->disk_bytes += bytes;
    return true;
}

/* Lock held (released during the write): write s to disk; s is referenced by the caller. A
 * snapshot that the budget cannot take is not written, and that is no error. */
static enum pc_err persist(struct pc_snapstore *st, struct snap *s, struct pc_error *err)
{
    char path[4096];
    snap_path(st, s, path, sizeof(path));
    uint64_t bytes = sizeof(struct header) + s->n * sizeof(int32_t) + s->size + 8;
    if (!reserve_disk(st, bytes)) {
        pc_log_debug("snapshot", "%s: %llu bytes do not fit the disk budget", path,
                     (unsigned long long)bytes);
        return PC_OK;
    }
    pthread_mutex_unlock(&st->lock);
    enum pc_err rc = write_file(path, s, err);
    pthread_mutex_lock(&st->lock);
    if (rc != PC_OK || s->path != NULL || s->dead) {
        st->disk_bytes -= bytes;
        if (rc != PC_OK)
            pc_log_warn("snapshot", "%s", err->msg);
        else if (s->path == NULL || strcmp(s->path, path) != 0)
            unlink(path);
        return rc;
    }
    if ((s->path = strdup(path)) == NULL) {
        st->disk_bytes -= bytes;
        unlink(path);
        return pc_error_set(err, PC_ERR_NOMEM, "snapshot: out of memory");
    }
    s->disk_bytes = bytes;
    return PC_OK;
}

/* Lock held: bring RAM and disk under their budgets. RAM demotes to disk; disk drops. */
static void enforce(struct pc_snapstore *st)
{
    while (st->ram_bytes > st->ram_budget) {
        struct snap *s = lru_where(st, true);
        if (s == NULL)
            break;
        if (s->path == NULL && st->disk_budget > 0) {
            struct pc_error err = {0}; /* logged; the snapshot is dropped below */
            s->refs++;
            persist(st, s, &err);
            bool dead = s->dead;
            unref(s);
            if (dead)
                continue;
        }
        free(s->blob);
        s->blob = NULL;
        st->ram_bytes -= s->size;
        if (s->path == NULL)
            unlink_snap(st, s);
    }
    while (st->disk_bytes > st->disk_budget) {
        struct snap *s = lru_where(st, false);
        if (s == NULL)
            break;
        drop_disk(st, s);
    }
}

/* ---- save and restore -------------------------------------------------------------------- */

/* Lock held: the entry for (key, toks), made if missing, with the blob when it has none. Takes
 * blob. Returns it referenced, or NULL when memory runs out. */
static struct snap *upsert(struct pc_snapstore *st, const char *key,
                           const struct pc_snapshot_meta *meta, const int32_t *toks, size_t n,
                           uint8_t *blob, size_t size, bool precharged)
{
    uint64_t hash = pc_fnv1a(PC_FNV_SEED, toks, n * sizeof(int32_t));
    struct snap *s = find(st, key, hash, n);
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL || (s->toks = malloc(n * sizeof(int32_t))) == NULL) {
            free(s);
            free(blob);
            return NULL;
        }
        memcpy(s->toks, toks, n * sizeof(int32_t));
        snprintf(s->key, sizeof(s->key), "%s", key);
        s->hash = hash;
        s->n = n;
        s->created_wall_ns = pc_clock_wall_ns();
        if (meta != NULL)
            s->meta = *meta;
        s->next = st->list;
        st->list = s;
    }
    if (s->blob == NULL) {
        s->blob = blob;
        s->size = size;
        st->ram_bytes += size;
    } else {
        free(blob);
    }
    s->precharged = s->precharged || precharged;
    s->last_used_ns = pc_clock_mono_ns();
    s->refs++;
    return s;
}

/* ---- the shared tier --------------------------------------------------------------------- */

void pc_snapstore_set_tier(struct pc_snapstore *st, const struct pc_snaptier *tier)
{
    st->tier = tier;
}

static bool is_sha256(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0' && strchr("0123456789abcdef", s[n]) != NULL)
        n++;
    return n == 64 && s[n] == '\0';
}

enum pc_err pc_snapstore_share_model(struct pc_snapstore *st, const char *key, const char *sha256,
                                     const char *model, struct pc_error *err)
{
    if (!is_sha256(sha256))
        return pc_error_set(err, PC_ERR_INVALID, "\"%s\" is not a sha256 (64 lowercase hex digits)",
                            sha256);
    pthread_mutex_lock(&st->lock);
    struct shared_model *m = st->shared_models;
    while (m != NULL && strcmp(m->key, key) != 0)
        m = m->next;
    if (m == NULL && (m = calloc(1, sizeof(*m))) != NULL) {
        m->next = st->shared_models;
        st->shared_models = m;
    }
    if (m != NULL) {
        snprintf(m->key, sizeof(m->key), "%s", key);
        snprintf(m->sha256, sizeof(m->sha256), "%s", sha256);
        snprintf(m->model, sizeof(m->model), "%.63s", model);
    }
    pthread_mutex_unlock(&st->lock);
    return m != NULL ? PC_OK : pc_error_set(err, PC_ERR_NOMEM, "snapshots: out of memory");
}

/* Lock held: the shared model of identity key, or NULL when the tier is off or the model is not
 * shared. */
static struct shared_model *shared_model(const struct pc_snapstore *st, const char *key)
{
    if (st->tier == NULL)
        return NULL;
    for (struct shared_model *m = st->shared_models; m; m = m->next)
        if (strcmp(m->key, key) == 0)
            return m;
    return NULL;
}

/* Without the lock: write s (referenced by the caller, so its blob stays) to the shared tier. */
static bool share(struct pc_snapstore *st, const char *sha256, const struct snap *s)
{
    struct pc_error err = {0};
    uint8_t *value = NULL;
    size_t size = 0;
    char tokhash[17];
    pc_snapwire_tokhash(s->toks, s->n, tokhash);
    enum pc_err rc = pc_snapwire_encode(s->toks, s->n, s->blob, s->size, &value, &size, &err);
    if (rc == PC_OK)
        rc = st->tier->store(st->tier->user, sha256, tokhash, s->toks, s->n, value, size, &err);
    free(value);
    if (rc != PC_OK)
        pc_log_warn("snapshot", "a %zu-token snapshot of %s was not shared through %s: %s", s->n,
                    s->meta.model, st->tier->name, err.msg);
    return rc == PC_OK;
}

/* ---- save and restore, continued --------------------------------------------------------- */

enum pc_err pc_snapstore_save(struct pc_snapstore *st, const char *key,
                              const struct pc_snapshot_meta *meta, const int32_t *toks, size_t n,
                              uint8_t *blob, size_t size, bool persist_it, struct pc_error *err)
{
    if (n == 0) {
        free(blob);
        return PC_OK;
    }
    pthread_mutex_lock(&st->lock);
    struct snap *s = upsert(st, key, meta, toks, n, blob, size, persist_it);
    if (s == NULL) {
        pthread_mutex_unlock(&st->lock);
        return pc_error_set(err, PC_ERR_NOMEM, "snapshot: out of memory");
    }
    enum pc_err rc = PC_OK;
    if (persist_it && s->path == NULL && st->disk_budget > 0)
        rc = persist(st, s, err);
    const struct shared_model *m = persist_it && !s->shared ? shared_model(st, key) : NULL;
    char sha256[65];
    if (m != NULL) {
        snprintf(sha256, sizeof(sha256), "%s", m->sha256);
        pthread_mutex_unlock(&st->lock);
        bool ok = share(st, sha256, s);
        pthread_mutex_lock(&st->lock);
        s->shared = s->shared || ok;
    }
    unref(s);
    enforce(st);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

bool pc_snapstore_shared(struct pc_snapstore *st, const char *key, const int32_t *toks, size_t n)
{
    uint64_t hash = pc_fnv1a(PC_FNV_SEED, toks, n * sizeof(int32_t));
    pthread_mutex_lock(&st->lock);
    struct snap *s = find(st, key, hash, n);
    bool shared = s != NULL && s->shared;
    pthread_mutex_unlock(&st->lock);
    return shared;
}

enum pc_tier pc_snapstore_tier(struct pc_snapstore *st, const char *key, const int32_t *toks,
                               size_t n)
{
    uint64_t hash = pc_fnv1a(PC_FNV_SEED, toks, n * sizeof(int32_t));
    pthread_mutex_lock(&st->lock);
    struct snap *s = find(st, key, hash, n);
    enum pc_tier t = s == NULL || s->dead ? PC_TIER_LIVE
                     : s->path != NULL    ? PC_TIER_DISK
                     : s->blob != NULL    ? PC_TIER_RAM
                                          : PC_TIER_LIVE;
    pthread_mutex_unlock(&st->lock);
    return t;
}

/* The context drops a sequence: keep it in RAM (the next tier down). */
static void on_evict(void *user, struct pc_slot *slot, int seq, const int32_t *toks, size_t n,
                     bool precharged)
{
    struct pc_snapstore *st = user;
    char key[17];
    struct pc_error err = {0};
    uint8_t *blob = NULL;
    size_t size = 0;
    snprintf(key, sizeof(key), "%s", pc_model_identity(pc_slot_model(slot)));
    if (pc_slot_export(slot, seq, &blob, &size, &err) != PC_OK) {
        pc_log_warn("snapshot", "a %s sequence was dropped unsaved: %s",
                    precharged ? "precharged" : "conversation", err.msg);
        return;
    }
    /* On the decode loop's thread: into RAM, and the demoter does any disk work. */
    pthread_mutex_lock(&st->lock);
    struct snap *s = upsert(st, key, NULL, toks, n, blob, size, false);
    if (s != NULL)
        unref(s);
    else
        pc_log_warn("snapshot", "a %s sequence was dropped unsaved: out of memory",
                    precharged ? "precharged" : "conversation");
    if (st->ram_bytes > st->ram_budget || st->disk_bytes > st->disk_budget) {
        st->demote = true;
        pthread_cond_signal(&st->demote_cond);
    }
    pthread_mutex_unlock(&st->lock);
}

enum pc_err pc_snapstore_attach(struct pc_snapstore *st, struct pc_model *m, struct pc_error *err)
{
    char key[17];
    enum pc_err rc = pc_model_key(pc_model_path(m), key, err);
    if (rc != PC_OK)
        return rc;
    pc_model_set_identity(m, key);
    pc_model_set_evict_hook(m, on_evict, st);
    return PC_OK;
}

/* Without the lock: the shared tier's snapshot of model sha256 for toks when it gives more than
 * have tokens, as an offer in *out. False when it has none (or cannot be asked, or sent a value
 * that is not whole: logged). */
static bool offer_shared(struct pc_snapstore *st, const char *sha256, const int32_t *toks, size_t n,
                         size_t have, const char (*skip)[17], size_t n_skip,
                         struct pc_snap_offer *out)
{
    struct pc_error err = {0};
    uint8_t *value = NULL;
    size_t size = 0;
    int64_t t0 = pc_clock_mono_ns();
    enum pc_err rc =
        st->tier->fetch(st->tier->user, sha256, toks, n, have, skip, n_skip, &value, &size, &err);
    if (rc == PC_ERR_NOT_FOUND)
        return false;
    int32_t *stoks = NULL;
    size_t sn = 0;
    const uint8_t *blob = NULL;
    size_t bsize = 0;
    if (rc == PC_OK)
        rc = pc_snapwire_decode(value, size, &stoks, &sn, &blob, &bsize, &err);
    if (rc == PC_OK && pc_tokens_common_prefix(stoks, sn, toks, n) <= have)
        rc = pc_error_set(&err, PC_ERR_CHECKSUM, "its tokens are not those of its index");
    if (rc != PC_OK) {
        /* The tier logs its own failures to reach it (once); a bad value is worth a line. */
        if (rc != PC_ERR_UNAVAILABLE)
            pc_log_warn("snapshot", "the %s tier's snapshot was not used: %s", st->tier->name,
                        err.msg);
        free(stoks);
        free(value);
        return false;
    }
    out->tier = PC_TIER_SHARED;
    out->file = value;
    out->shared_toks = stoks;
    out->read_ns = pc_clock_mono_ns() - t0;
    out->offer = (struct pc_restore_offer){
        .blob = blob, .size = bsize, .toks = stoks, .n = sn, .precharged = true};
    return true;
}

void pc_snapstore_offer(struct pc_snapstore *st, const char *key, const int32_t *toks, size_t n,
                        struct pc_snap_offer *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->key, sizeof(out->key), "%s", key);
    pthread_mutex_lock(&st->lock);
    struct snap *best = NULL;
    size_t best_n = 0;
    for (struct snap *s = st->list; s; s = s->next) {
        if (strcmp(s->key, key) != 0)
            continue;
        size_t c = pc_tokens_common_prefix(s->toks, s->n, toks, n);
        if (c > best_n) {
            best = s;
            best_n = c;
        }
    }
    const struct shared_model *m = best_n < n ? shared_model(st, key) : NULL;
    char sha256[65];
    char skip[REFUSED_MAX][17];
    size_t n_skip = 0;
    if (m != NULL) {
        snprintf(sha256, sizeof(sha256), "%s", m->sha256);
        n_skip = m->n_refused < REFUSED_MAX ? m->n_refused : REFUSED_MAX;
        memcpy(skip, m->refused, sizeof(skip));
    }
    if (best != NULL)
        best->refs++; /* kept while the shared tier is asked */
    pthread_mutex_unlock(&st->lock);

    /* The shared tier is asked here, on the request's thread, as the disk is read below. */
    if (m != NULL && offer_shared(st, sha256, toks, n, best_n, skip, n_skip, out)) {
        if (best != NULL) {
            pthread_mutex_lock(&st->lock);
            unref(best);
            pthread_mutex_unlock(&st->lock);
        }
        return;
    }
    if (best == NULL)
        return;
    pthread_mutex_lock(&st->lock);
    best->last_used_ns = pc_clock_mono_ns();
    const uint8_t *blob = best->blob;
    size_t size = best->size;
    char *path = best->path ? strdup(best->path) : NULL;
    out->tier = blob ? PC_TIER_RAM : PC_TIER_DISK;
    pthread_mutex_unlock(&st->lock);

    /* A disk read happens here, on the request's thread: never in the decode loop. */
    struct pc_error err = {0};
    int64_t t0 = pc_clock_mono_ns();
    enum pc_err rc = PC_OK;
    if (blob == NULL)
        rc = path ? read_file(path, &out->file, &blob, &size, &err)
                  : pc_error_set(&err, PC_ERR_IO, "the snapshot left every tier");
    out->read_ns = pc_clock_mono_ns() - t0;
    free(path);
    out->snap = best;
    if (rc != PC_OK) {
        out->read_failed = true;
        snprintf(out->reason, sizeof(out->reason), "%s", err.msg);
        return;
    }
    out->offer = (struct pc_restore_offer){.blob = blob,
                                           .size = size,
                                           .toks = best->toks,
                                           .n = best->n,
                                           .precharged = best->precharged};
}

/* Keep the snapshot fetched from the shared tier in RAM, marked shared so that it is never sent
 * back: the next request for it finds it here. */
static void keep_shared(struct pc_snapstore *st, const struct pc_snap_offer *o)
{
    uint8_t *copy = malloc(o->offer.size ? o->offer.size : 1);
    if (copy == NULL)
        return;
    memcpy(copy, o->offer.blob, o->offer.size);
    pthread_mutex_lock(&st->lock);
    const struct shared_model *m = shared_model(st, o->key);
    struct pc_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    snprintf(meta.model, sizeof(meta.model), "%s", m != NULL ? m->model : "");
    snprintf(meta.category, sizeof(meta.category), "local");
    struct snap *s =
        upsert(st, o->key, &meta, o->offer.toks, o->offer.n, copy, o->offer.size, true);
    if (s != NULL) {
        s->shared = true;
        unref(s);
    }
    enforce(st);
    pthread_mutex_unlock(&st->lock);
}

/* Never fetch o's snapshot again: it failed to restore here. */
static void refuse(struct pc_snapstore *st, const struct pc_snap_offer *o)
{
    char tokhash[17];
    pc_snapwire_tokhash(o->offer.toks, o->offer.n, tokhash);
    pthread_mutex_lock(&st->lock);
    struct shared_model *m = shared_model(st, o->key);
    if (m != NULL)
        memcpy(m->refused[m->n_refused++ % REFUSED_MAX], tokhash, sizeof(tokhash));
    pthread_mutex_unlock(&st->lock);
}

/* A snapshot fetched from the shared tier: one that failed to restore is logged and refused
 * (another host's state may not suit this one; others may restore it, so it stays in Redis); any
 * other is kept, used or not. One the planner passed over (a live sequence gave more) would
 * otherwise be fetched again by every request like it. */
static void shared_done(struct pc_snapstore *st, struct pc_snap_offer *o,
                        const struct pc_restore_result *r, struct pc_restore *out)
{
    if (r != NULL && r->failed) {
        out->failed = true;
        snprintf(out->reason, sizeof(out->reason), "%s", r->reason);
        pc_log_warn("snapshot",
                    "restore from %s failed, prefilling instead (not fetched again): %s",
                    pc_tier_name(o->tier), r->reason);
        refuse(st, o);
    } else {
        if (r != NULL && r->used) {
            out->tier = PC_TIER_SHARED;
            out->restore_ns = r->restore_ns + o->read_ns;
        }
        keep_shared(st, o);
    }
    free(o->file);
    free(o->shared_toks);
    memset(o, 0, sizeof(*o));
}

void pc_snapstore_offer_done(struct pc_snapstore *st, struct pc_snap_offer *o,
                             const struct pc_restore_result *r, struct pc_restore *out)
{
    memset(out, 0, sizeof(*out));
    out->tier = PC_TIER_LIVE;
    out->tokens = r ? r->tokens : 0;
    if (o->tier == PC_TIER_SHARED) {
        shared_done(st, o, r, out);
        return;
    }
    struct snap *best = o->snap;
    if (best == NULL)
        return;
    bool failed = o->read_failed || (r != NULL && r->failed);
    const char *reason = o->read_failed ? o->reason : r != NULL ? r->reason : "";
    pthread_mutex_lock(&st->lock);
    if (r != NULL && r->used) {
        out->tier = o->tier;
        out->restore_ns = r->restore_ns + o->read_ns;
        /* A snapshot read from disk is kept in RAM: it is in use again. */
        if (o->tier == PC_TIER_DISK && best->blob == NULL && o->file != NULL) {
            uint8_t *copy = malloc(o->offer.size);
            if (copy != NULL) {
                memcpy(copy, o->offer.blob, o->offer.size);
                best->blob = copy;
                best->size = o->offer.size;
                st->ram_bytes += o->offer.size;
            }
        }
    } else if (failed) {
        out->failed = true;
        snprintf(out->reason, sizeof(out->reason), "%s", reason);
        pc_log_warn("snapshot", "restore from %s failed, prefilling instead: %s",
                    pc_tier_name(o->tier), reason);
        /* It would fail the same way for every request that matches it: out of every tier
         * (its blob goes with its last user, who may still be reading it). */
        if (!best->dead) {
            if (best->path != NULL)
                drop_file(st, best);
            if (!best->dead) {
                st->ram_bytes -= best->size;
                detach(st, best);
            }
        }
    }
    unref(best);
    enforce(st);
    pthread_mutex_unlock(&st->lock);
    free(o->file);
    memset(o, 0, sizeof(*o));
}

/* Lock held: take s out of every tier now (its file too); its last user frees it. */
static void forget(struct pc_snapstore *st, struct snap *s)
{
    if (s->blob != NULL)
        st->ram_bytes -= s->size;
    if (s->path != NULL) {
        unlink(s->path);
        st->disk_bytes -= s->disk_bytes;
        s->disk_bytes = 0;
    }
    unlink_snap(st, s);
}

/* The key of model name's file in models_dir now, or "" when the store has no such file.
 * False when name is not a store name (a path, say): such snapshots are not the store's. */
static bool current_key(const char *models_dir, const char *name, char key[17])
{
    char norm[256], path[4096];
    key[0] = '\0';
    if (pc_store_name(name, norm, sizeof(norm), NULL) != PC_OK)
        return false;
    if (pc_store_path(models_dir, norm, path, sizeof(path), NULL) == PC_OK &&
        pc_model_key(path, key, NULL) != PC_OK)
        key[0] = '\0';
    return true;
}

size_t pc_snapstore_drop_stale(struct pc_snapstore *st, const char *models_dir)
{
    /* The names, copied out: looking at the files happens without the lock. */
    pthread_mutex_lock(&st->lock);
    size_t n = 0;
    for (struct snap *s = st->list; s; s = s->next)
        n++;
    struct stale {
        char model[sizeof(((struct pc_snapshot_meta *)0)->model)];
        char key[17];
        bool store; /* the model is a store name */
    } *names = calloc(n ? n : 1, sizeof(*names));
    size_t k = 0;
    for (struct snap *s = st->list; names && s; s = s->next) {
        if (s->meta.model[0] == '\0')
            continue;
        bool seen = false;
        for (size_t i = 0; i < k && !seen; i++)
            seen = strcmp(names[i].model, s->meta.model) == 0;
        if (!seen)
            snprintf(names[k++].model, sizeof(names[0].model), "%s", s->meta.model);
    }
    pthread_mutex_unlock(&st->lock);
    if (names == NULL)
        return 0;
    for (size_t i = 0; i < k; i++)
        names[i].store = current_key(models_dir, names[i].model, names[i].key);

    size_t dropped = 0;
    pthread_mutex_lock(&st->lock);
    for (struct snap *s = st->list, *next; s; s = next) {
        next = s->next;
        for (size_t i = 0; i < k; i++) {
            if (!names[i].store || strcmp(names[i].model, s->meta.model) != 0)
                continue;
            if (strcmp(names[i].key, s->key) != 0 && s->refs == 0) {
                pc_log_info("snapshot", "dropped a %zu-token snapshot of %s: its model file %s",
                            s->n, s->meta.model, names[i].key[0] ? "changed" : "is gone");
                forget(st, s);
                dropped++;
            }
            break;
        }
    }
    pthread_mutex_unlock(&st->lock);
    free(names);
    return dropped;
}

size_t pc_snapstore_list(struct pc_snapstore *st, struct pc_snapshot_info **out)
{
    pthread_mutex_lock(&st->lock);
    size_t n = 0;
    for (struct snap *s = st->list; s; s = s->next)
        n++;
    struct pc_snapshot_info *arr = calloc(n ? n : 1, sizeof(*arr));
    size_t i = 0;
    for (struct snap *s = st->list; arr && s; s = s->next, i++) {
        snprintf(arr[i].key, sizeof(arr[i].key), "%s", s->key);
        arr[i].tier = s->blob ? PC_TIER_RAM : PC_TIER_DISK;
        arr[i].n_tokens = s->n;
        arr[i].tokens_hash = s->hash;
        arr[i].bytes = s->blob ? s->size : s->disk_bytes;
        arr[i].created_wall_ns = s->created_wall_ns;
        arr[i].precharged = s->precharged;
        arr[i].meta = s->meta;
    }
    pthread_mutex_unlock(&st->lock);
    *out = arr;
    return arr ? n : 0;
}

uint64_t pc_snapstore_ram_bytes(struct pc_snapstore *st)
{
    pthread_mutex_lock(&st->lock);
    uint64_t b = st->ram_bytes;
    pthread_mutex_unlock(&st->lock);
    return b;
}

uint64_t pc_snapstore_disk_bytes(struct pc_snapstore *st)
{
    pthread_mutex_lock(&st->lock);
    uint64_t b = st->disk_bytes;
    pthread_mutex_unlock(&st->lock);
    return b;
}
