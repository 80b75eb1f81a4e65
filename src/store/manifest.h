/* manifest.h - models/manifest.json: what the store holds, where it came from, and how it is
 * used. It is a cache of facts about the files: when it is missing or corrupt it is rebuilt from
 * the files on disk, so that no model is ever lost because of it. */
#ifndef PC_MANIFEST_H
#define PC_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

#define PC_MANIFEST_FILE "manifest.json"
#define PC_MANIFEST_VERSION "1.0"

struct pc_manifest_entry {
    char id[256];           /* the store name: the file is <id>.gguf */
    char path[1024];        /* the file, relative to the models directory: "<id>.gguf" */
    uint64_t size_bytes;    /* as on disk */
    char checksum[72];      /* "sha256:<64 hex>", or "" when not known (a rebuilt entry) */
    int64_t downloaded_at;  /* Unix seconds: when the file came into the store */
    int64_t last_used;      /* Unix seconds of the last load; 0 for never */
    uint64_t use_count;     /* loads so far */
    char revision[160];     /* the source's revision when it was downloaded: its X-Linked-Etag
                             * (the Hub's sha256) or ETag, as sent; "" when not known */
    char last_modified[64]; /* the source's Last-Modified then, as sent; "" when not known */
};

/* The manifest in memory, in sync with the files: every <id>.gguf has one entry. */
struct pc_manifest {
    struct pc_manifest_entry *models; /* sorted by id */
    size_t n;
    size_t cap;
    void *json; /* the document as read, so that fields we do not know survive a rewrite */
};

/* Read the manifest of models_dir and reconcile it with the files there: a file without an
 * entry gets one, an entry without its file is dropped. A missing (while models exist) or
 * corrupt manifest is rebuilt from the files with a warning in the log, and a corrupt one is
 * kept beside it as manifest.json.corrupt. When anything changed, the result is written back
 * (atomically, under the manifest lock). On success the caller frees *m with
 * pc_manifest_free; on failure *m is empty. */
enum pc_err pc_manifest_load(const char *models_dir, struct pc_manifest *m /* OUT */,
                             struct pc_error *err);
void pc_manifest_free(struct pc_manifest *m);

/* The entry for id (a store name), or NULL. The pointer lives until the manifest changes. */
struct pc_manifest_entry *pc_manifest_find(const struct pc_manifest *m, const char *id);

/* Change the manifest under its lock: load (as pc_manifest_load does), call fn, and write the
 * result atomically when fn returns PC_OK. Another process that does the same waits. fn's error
 * is returned as it is, and nothing is written then. */
enum pc_err pc_manifest_update(const char *models_dir,
                               enum pc_err (*fn)(struct pc_manifest *m, void *user,
                                                 struct pc_error *err),
                               void *user, struct pc_error *err);

/* A model has just come into the store: record its size, its checksum (64 hex characters or
 * ""), and now as downloaded_at. Its use counts are kept when it replaces an older copy. */
enum pc_err pc_manifest_record(const char *models_dir, const char *id, const char *sha256_hex,
                               struct pc_error *err);

/* The same, with what the source said of the file it sent (revision: X-Linked-Etag or ETag;
 * its Last-Modified), for `model update` to compare with later. NULL or "": not known. */
enum pc_err pc_manifest_record_download(const char *models_dir, const char *id,
                                        const char *sha256_hex, const char *revision,
                                        const char *last_modified, struct pc_error *err);

/* A model has been loaded: last_used = now and use_count + 1. PC_ERR_NOT_FOUND when the store
 * has no such file. */
enum pc_err pc_manifest_touch(const char *models_dir, const char *id, struct pc_error *err);

/* The sha256 (64 hex digits) recorded for id, the name of its file on every host (the shared
 * snapshot tier keys by it). A file whose size changed since has none (pc_manifest_load forgets
 * it). PC_ERR_NOT_FOUND, saying why, when none is known: not in the store, or put there by hand
 * and never verified. */
enum pc_err pc_manifest_sha256(const char *models_dir, const char *id, char out[65] /* OUT */,
                               struct pc_error *err);

/* Remove the manifest's temp files that a killed writer left (a daemon's start). */
void pc_manifest_sweep(const char *models_dir);

/* Drop id's entry (after its file is gone). Not finding it is not an error. */
enum pc_err pc_manifest_forget(const char *models_dir, const char *id, struct pc_error *err);

#endif
