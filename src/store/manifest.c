/* manifest.c - models/manifest.json: read, reconciled with the files, rewritten atomically
 * under a lock that all processes share. */
#include "manifest.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "../base/file.h"
#include "../base/lock.h"
#include "../base/log.h"
#include "store.h"

#define MAX_MANIFEST (16u << 20)
#define LOCK_FILE ".manifest.lock"

static bool dir_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- time stamps ------------------------------------------------------------------------- */

static void format_time(int64_t secs, char *buf, size_t size)
{
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* RFC 3339 ("2026-01-30T21:00:00Z", fractions and offsets tolerated) or Unix seconds. */
static int64_t parse_time(json_t *v)
{
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (!json_is_string(v))
        return 0;
    struct tm tm = {0};
    const char *rest = strptime(json_string_value(v), "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest == NULL)
        return 0;
    int64_t t = (int64_t)timegm(&tm);
    if (*rest == '.')
        while (*++rest >= '0' && *rest <= '9')
            ;
    int sign = *rest == '+' ? 1 : *rest == '-' ? -1 : 0;
    int hh = 0, mm = 0;
    if (sign != 0 && sscanf(rest + 1, "%2d:%2d", &hh, &mm) == 2)
        t -= sign * (hh * 3600 + mm * 60);
    return t;
}

/* ---- the in-memory list -------------------------------------------------------------------- */

void pc_manifest_free(struct pc_manifest *m)
{
    if (m == NULL)
        return;
    free(m->models);
    json_decref(m->json);
    memset(m, 0, sizeof(*m));
}

struct pc_manifest_entry *pc_manifest_find(const struct pc_manifest *m, const char *id)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->models[i].id, id) == 0)
            return &m->models[i];
    return NULL;
}

static struct pc_manifest_entry *add_entry(struct pc_manifest *m, const char *id)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        struct pc_manifest_entry *p = realloc(m->models, cap * sizeof(*p));
        if (p == NULL)
            return NULL;
        m->models = p;
        m->cap = cap;
    }
    struct pc_manifest_entry *e = &m->models[m->n++];
    memset(e, 0, sizeof(*e));
    snprintf(e->id, sizeof(e->id), "%s", id);
    snprintf(e->path, sizeof(e->path), "%s.gguf", id);
    return e;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct pc_manifest_entry *)a)->id,
                  ((const struct pc_manifest_entry *)b)->id);
}

/* ---- reading ----------------------------------------------------------------------------- */

static void set_checksum(struct pc_manifest_entry *e, const char *s)
{
    if (strncmp(s, "sha256:", 7) == 0)
        s += 7;
    if (strlen(s) == 64 && strspn(s, "0123456789abcdefABCDEF") == 64) {
        snprintf(e->checksum, sizeof(e->checksum), "sha256:%s", s);
        for (char *p = e->checksum + 7; *p; p++)
            if (*p >= 'A' && *p <= 'F')
                *p = (char)(*p - 'A' + 'a');
    } else {
        e->checksum[0] = '\0';
    }
}

/* Entries from a parsed document. Returns false when an entry was skipped. */
static bool parse_entries(json_t *models, struct pc_manifest *m, const char *path,
                          struct pc_error *err)
{
    bool clean = true;
    size_t i;
    json_t *o;
    json_array_foreach(models, i, o)
    {
        json_t *id = json_object_get(o, "id");
        char norm[256];
        if (!json_is_string(id) ||
            pc_store_name(json_string_value(id), norm, sizeof(norm), NULL) != PC_OK ||
            strcmp(norm, json_string_value(id)) != 0 || pc_manifest_find(m, norm) != NULL) {
            pc_log_warn("store", "%s: models[%zu] has a missing, unsafe or repeated id; dropped",
                        path, i);
            clean = false;
            continue;
        }
        struct pc_manifest_entry *e = add_entry(m, norm);
        if (e == NULL) {
            pc_error_set(err, PC_ERR_NOMEM, "reading \"%s\": out of memory", path);
            return false;
        }
        json_t *v = json_object_get(o, "size_bytes");
        e->size_bytes =
            json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
        v = json_object_get(o, "checksum");
        set_checksum(e, json_is_string(v) ? json_string_value(v) : "");
        e->downloaded_at = parse_time(json_object_get(o, "downloaded_at"));
        e->last_used = parse_time(json_object_get(o, "last_used"));
        v = json_object_get(o, "use_count");
        e->use_count =
            json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
        v = json_object_get(o, "revision");
        snprintf(e->revision, sizeof(e->revision), "%s",
                 json_is_string(v) ? json_string_value(v) : "");
        v = json_object_get(o, "last_modified");
        snprintf(e->last_modified, sizeof(e->last_modified), "%s",
                 json_is_string(v) ? json_string_value(v) : "");
    }
    return clean;
}

/* Read manifest.json into m. *dirty says that it must be written back: it was corrupt or had
 * bad entries. *missing says there was none. */
static enum pc_err read_manifest(const char *models_dir, struct pc_manifest *m, bool *dirty,
                                 bool *missing, struct pc_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", models_dir, PC_MANIFEST_FILE);
    *dirty = *missing = false;
    char *text = NULL;
    size_t len = 0;
    struct pc_error rerr = {0};
    enum pc_err rc = pc_file_read(path, MAX_MANIFEST, &text, &len, &rerr);
    if (rc == PC_ERR_NOT_FOUND) {
        *missing = true;
        return PC_OK;
    }
    const char *why = rerr.msg;
    json_error_t je;
    char reason[300];
    json_t *doc = NULL;
    if (rc == PC_OK) {
        doc = json_loadb(text, len, 0, &je);
        free(text);
        why = reason;
        if (doc == NULL)
            snprintf(reason, sizeof(reason), "line %d: %s", je.line, je.text);
        else if (!json_is_object(doc) || !json_is_array(json_object_get(doc, "models")))
            snprintf(reason, sizeof(reason), "no \"models\" array");
        else
            why = NULL;
    } else if (rc == PC_ERR_NOMEM) {
        return pc_error_set(err, rc, "%s", rerr.msg);
    }
    if (why != NULL) {
        char keep[PATH_MAX + 16];
        snprintf(keep, sizeof(keep), "%s.corrupt", path);
        pc_log_warn("store",
                    "%s is corrupt (%s): rebuilding it from the models on disk; the old "
                    "file is kept as %s",
                    path, why, keep);
        if (rename(path, keep) != 0)
            pc_log_warn("store", "rename() \"%s\" failed: %s", path, strerror(errno));
        json_decref(doc);
        *dirty = true;
        return PC_OK;
    }
    m->json = doc;
    if (!parse_entries(json_object_get(doc, "models"), m, path, err)) {
        if (err != NULL && err->code == PC_ERR_NOMEM)
            return PC_ERR_NOMEM;
        *dirty = true;
    }
    return PC_OK;
}

/* Make the entries match the files: add what is on disk, drop what is not. *added counts the
 * files added, other than new_id (one that is coming into the store now; may be NULL). */
static enum pc_err reconcile(const char *models_dir, struct pc_manifest *m, const char *new_id,
                             bool *dirty, size_t *added, struct pc_error *err)
{
    struct pc_store_entry *files = NULL;
    size_t n = 0;
    *added = 0;
    enum pc_err rc = pc_store_list(models_dir, &files, &n, err);
    if (rc != PC_OK)
        return rc;
    for (size_t i = 0; i < m->n;) {
        bool found = false;
        for (size_t k = 0; k < n && !found; k++)
            found = strcmp(files[k].name, m->models[i].id) == 0;
        if (found) {
            i++;
            continue;
        }
        m->models[i] = m->models[--m->n];
        *dirty = true;
    }
    for (size_t k = 0; k < n; k++) {
        struct pc_manifest_entry *e = pc_manifest_find(m, files[k].name);
        if (e == NULL) {
            e = add_entry(m, files[k].name);
            if (e == NULL) {
                free(files);
                return pc_error_set(err, PC_ERR_NOMEM, "manifest: out of memory");
            }
            e->downloaded_at = files[k].mtime_ns / 1000000000;
            if (new_id == NULL || strcmp(new_id, files[k].name) != 0)
                (*added)++;
        } else if (e->size_bytes == files[k].size) {
            continue;
        } else if (e->size_bytes != 0) {
            e->checksum[0] = '\0'; /* the file changed under us: its checksum is unknown */
        }
        e->size_bytes = files[k].size;
        *dirty = true;
    }
    free(files);
    if (m->n > 1)
        qsort(m->models, m->n, sizeof(*m->models), by_id);
    return PC_OK;
}

/* ---- writing ----------------------------------------------------------------------------- */

/* The entry object that was read for id, to keep its unknown fields. */
static json_t *original(json_t *doc, const char *id)
{
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(doc, "models"), i, o)
    {
        json_t *v = json_object_get(o, "id");
        if (json_is_object(o) && json_is_string(v) && strcmp(json_string_value(v), id) == 0)
            return o;
    }
    return NULL;
}

/* o[key] = value, or no key at all when value is "". 0, or -1 when memory ran out. */
static int set_or_drop(json_t *o, const char *key, const char *value)
{
    if (value[0] == '\0') {
        json_object_del(o, key);
        return 0;
    }
    return json_object_set_new(o, key, json_string(value));
}

static enum pc_err write_manifest(const char *models_dir, const struct pc_manifest *m,
                                  struct pc_error *err)
{
    json_t *doc = json_is_object((json_t *)m->json) ? json_deep_copy(m->json) : json_object();
    json_t *models = json_array();
    if (doc == NULL || models == NULL)
        goto nomem;
    for (size_t i = 0; i < m->n; i++) {
        const struct pc_manifest_entry *e = &m->models[i];
        json_t *base = original(m->json, e->id);
        json_t *o = base ? json_deep_copy(base) : json_object();
        char down[32], used[32];
        format_time(e->downloaded_at, down, sizeof(down));
        format_time(e->last_used, used, sizeof(used));
        if (o == NULL || json_object_set_new(o, "id", json_string(e->id)) != 0 ||
            json_object_set_new(o, "path", json_string(e->path)) != 0 ||
            json_object_set_new(o, "size_bytes", json_integer((json_int_t)e->size_bytes)) != 0 ||
            json_object_set_new(o, "checksum", json_string(e->checksum)) != 0 ||
            json_object_set_new(o, "downloaded_at", json_string(down)) != 0 ||
            json_object_set_new(o, "last_used", e->last_used ? json_string(used) : json_null()) !=
                0 ||
            json_object_set_new(o, "use_count", json_integer((json_int_t)e->use_count)) != 0 ||
            set_or_drop(o, "revision", e->revision) != 0 ||
            set_or_drop(o, "last_modified", e->last_modified) != 0) {
            json_decref(o);
            goto nomem;
        }
        if (json_array_append_new(models, o) != 0) /* it took o, even so */
            goto nomem;
    }
    json_object_set_new(doc, "version", json_string(PC_MANIFEST_VERSION));
    if (json_object_set_new(doc, "models", models) != 0) {
        models = NULL;
        goto nomem;
    }
    models = NULL;
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (text == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "manifest: out of memory");
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", models_dir, PC_MANIFEST_FILE);
    size_t len = strlen(text);
    text[len] = '\n'; /* json_dumps's NUL becomes the final newline */
    enum pc_err rc = pc_file_write_atomic(path, text, len + 1, err);
    free(text);
    return rc;
nomem:
    json_decref(models);
    json_decref(doc);
    return pc_error_set(err, PC_ERR_NOMEM, "manifest: out of memory");
}

/* ---- under the lock ---------------------------------------------------------------------- */

static enum pc_err lock_dir(const char *models_dir, int *fd, struct pc_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", models_dir, LOCK_FILE);
    return pc_lock_acquire(path, PC_LOCK_BLOCK, fd, err);
}

/* Load and reconcile; the caller holds the lock. *dirty: it should be written back. new_id: as
 * for reconcile. */
static enum pc_err load_locked(const char *models_dir, const char *new_id, struct pc_manifest *m,
                               bool *dirty, struct pc_error *err)
{
    bool missing;
    size_t added;
    memset(m, 0, sizeof(*m));
    enum pc_err rc = read_manifest(models_dir, m, dirty, &missing, err);
    if (rc == PC_OK)
        rc = reconcile(models_dir, m, new_id, dirty, &added, err);
    if (rc != PC_OK) {
        pc_manifest_free(m);
        return rc;
    }
    if (missing && added > 0)
        pc_log_warn("store", "%s/%s is missing: rebuilt it from the %zu models on disk", models_dir,
                    PC_MANIFEST_FILE, added);
    return PC_OK;
}

enum pc_err pc_manifest_load(const char *models_dir, struct pc_manifest *m, struct pc_error *err)
{
    memset(m, 0, sizeof(*m));
    if (!dir_exists(models_dir))
        return PC_OK;
    int fd;
    enum pc_err rc = lock_dir(models_dir, &fd, err);
    if (rc != PC_OK)
        return rc;
    bool dirty = false;
    rc = load_locked(models_dir, NULL, m, &dirty, err);
    if (rc == PC_OK && dirty) {
        struct pc_error werr = {0};
        /* A read still answers when the write-back fails (a read-only store, a full disk). */
        if (write_manifest(models_dir, m, &werr) != PC_OK)
            pc_log_warn("store", "%s", werr.msg);
    }
    pc_lock_release(fd, NULL, false);
    return rc;
}

typedef enum pc_err (*update_fn)(struct pc_manifest *m, void *user, struct pc_error *err);

static enum pc_err update(const char *models_dir, const char *new_id, update_fn fn, void *user,
                          struct pc_error *err)
{
    int fd;
    enum pc_err rc = lock_dir(models_dir, &fd, err);
    if (rc != PC_OK)
        return rc;
    struct pc_manifest m;
    bool dirty = false;
    rc = load_locked(models_dir, new_id, &m, &dirty, err);
    if (rc == PC_OK)
        rc = fn(&m, user, err);
    if (rc == PC_OK)
        rc = write_manifest(models_dir, &m, err);
    pc_manifest_free(&m);
    pc_lock_release(fd, NULL, false);
    return rc;
}

enum pc_err pc_manifest_update(const char *models_dir, update_fn fn, void *user,
                               struct pc_error *err)
{
    return update(models_dir, NULL, fn, user, err);
}

/* ---- the common changes ------------------------------------------------------------------ */

struct record_args {
    const char *id;
    const char *sha256;
    const char *revision;      /* NULL: leave it as it is */
    const char *last_modified; /* NULL: leave it as it is */
};

static enum pc_err do_record(struct pc_manifest *m, void *user, struct pc_error *err)
{
    struct record_args *a = user;
    struct pc_manifest_entry *e = pc_manifest_find(m, a->id);
    if (e == NULL) /* reconcile adds every file on disk: no entry means no file */
        return pc_error_set(err, PC_ERR_NOT_FOUND, "model \"%s\" is not in the store", a->id);
    set_checksum(e, a->sha256 ? a->sha256 : "");
    e->downloaded_at = (int64_t)time(NULL);
    if (a->revision != NULL)
        snprintf(e->revision, sizeof(e->revision), "%s", a->revision);
    if (a->last_modified != NULL)
        snprintf(e->last_modified, sizeof(e->last_modified), "%s", a->last_modified);
    return PC_OK;
}

enum pc_err pc_manifest_record(const char *models_dir, const char *id, const char *sha256_hex,
                               struct pc_error *err)
{
    struct record_args a = {id, sha256_hex, NULL, NULL};
    return update(models_dir, id, do_record, &a, err);
}

enum pc_err pc_manifest_record_download(const char *models_dir, const char *id,
                                        const char *sha256_hex, const char *revision,
                                        const char *last_modified, struct pc_error *err)
{
    struct record_args a = {id, sha256_hex, revision ? revision : "",
                            last_modified ? last_modified : ""};
    return update(models_dir, id, do_record, &a, err);
}

static enum pc_err do_touch(struct pc_manifest *m, void *user, struct pc_error *err)
{
    const char *id = user;
    struct pc_manifest_entry *e = pc_manifest_find(m, id);
    if (e == NULL)
        return pc_error_set(err, PC_ERR_NOT_FOUND, "model \"%s\" is not in the store", id);
    e->last_used = (int64_t)time(NULL);
    /* JSON integers stop at 2^63 - 1: the count stays there rather than wrap negative. */
    if (e->use_count < INT64_MAX)
        e->use_count++;
    return PC_OK;
}

enum pc_err pc_manifest_touch(const char *models_dir, const char *id, struct pc_error *err)
{
    char norm[256];
    enum pc_err rc = pc_store_name(id, norm, sizeof(norm), err);
    if (rc != PC_OK)
        return rc;
    return pc_manifest_update(models_dir, do_touch, norm, err);
}

static enum pc_err do_forget(struct pc_manifest *m, void *user, struct pc_error *err)
{
    (void)err;
    struct pc_manifest_entry *e = pc_manifest_find(m, user);
    if (e != NULL)
        *e = m->models[--m->n];
    if (m->n > 1)
        qsort(m->models, m->n, sizeof(*m->models), by_id);
    return PC_OK;
}

enum pc_err pc_manifest_forget(const char *models_dir, const char *id, struct pc_error *err)
{
    return pc_manifest_update(models_dir, do_forget, (void *)id, err);
}

void pc_manifest_sweep(const char *models_dir)
{
    size_t n = pc_file_sweep_tmp(models_dir, PC_MANIFEST_FILE ".tmp.??????");
    if (n > 0)
        pc_log_info("store", "removed %zu unfinished manifest files in %s", n, models_dir);
}

enum pc_err pc_manifest_sha256(const char *models_dir, const char *id, char out[65],
                               struct pc_error *err)
{
    out[0] = '\0';
    struct pc_manifest m;
    enum pc_err rc = pc_manifest_load(models_dir, &m, err);
    if (rc != PC_OK)
        return rc;
    const struct pc_manifest_entry *e = pc_manifest_find(&m, id);
    const char *prefix = "sha256:";
    if (e != NULL && strncmp(e->checksum, prefix, strlen(prefix)) == 0 &&
        strlen(e->checksum) == strlen(prefix) + 64)
        snprintf(out, 65, "%s", e->checksum + strlen(prefix));
    else
        rc = pc_error_set(err, PC_ERR_NOT_FOUND,
                          e == NULL ? "model \"%s\" is not in the store's manifest"
                                    : "the manifest records no sha256 for model \"%s\" (a file put "
                                      "in the store by hand: `precharge model verify %s` records "
                                      "it)",
                          id, id);
    pc_manifest_free(&m);
    return rc;
}
