/* download.h - fetch a model into the store: resumable (HTTP Range), verified (SHA-256 while
 * streaming), retried with backoff, moved into place atomically, recorded in the manifest, and
 * shared between processes that pull the same model at once. */
#ifndef PC_DOWNLOAD_H
#define PC_DOWNLOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

struct pc_cache_hooks;

/* Partial downloads and their locks: <models_dir>/.downloading/<id>.gguf.part and .lock. */
#define PC_DOWNLOAD_DIR ".downloading"

/* Where a download stands, as its progress callback sees it. */
enum pc_download_phase {
    PC_DL_WAITING,     /* another process or thread is downloading this model: waiting for it */
    PC_DL_RESUMING,    /* hashing the part already on disk before resuming */
    PC_DL_DOWNLOADING, /* bytes are arriving */
    PC_DL_RETRYING,    /* an attempt failed; the next one starts after a backoff */
    PC_DL_VERIFYING,   /* all bytes are in; comparing the checksum */
    PC_DL_DONE,        /* the model is in the store */
};

struct pc_download_progress {
    enum pc_download_phase phase;
    const char *status;   /* a line for people: "downloading", "retrying in 2 s: ..." */
    const char *digest;   /* "sha256:<hex>" when known (expected, or computed at the end), or "" */
    uint64_t total;       /* bytes in the file; 0 while unknown */
    uint64_t completed;   /* bytes on disk, resumed ones included */
    double bytes_per_sec; /* recent speed; 0 while unknown */
    int attempt;          /* 1 for the first request of this call */
};

struct pc_download_opts {
    const char *url;        /* http(s) URL of the GGUF file */
    const char *models_dir; /* the store: $PRECHARGE_HOME/models */
    const char *id;         /* the store name: the file becomes <models_dir>/<id>.gguf */
    const char *sha256;     /* expected, 64 hex digits; NULL or "": not known, then recorded */
    int attempts;           /* tries in a row that may fail before giving up; 3 */
    int64_t stall_ns;       /* no byte for this long counts as a failure; 30 s */
    int64_t backoff_ns;     /* wait before the second try, doubled for each further one; 1 s */
    /* Called from the downloading thread, at most about 10 times a second while bytes arrive
     * and at once when the phase changes. May be NULL. */
    void (*progress)(void *user, const struct pc_download_progress *p);
    void *user;
    atomic_bool
        *cancel; /* set it to stop soon with PC_ERR_CANCELLED; the part stays. May be NULL */
    /* The store's size limit (PRECHARGE_CACHE_MAX); 0: none. Before the new file goes in, the
     * least recently used models are removed until it fits, but those that cache_hooks keeps
     * (models in use; may be NULL). */
    uint64_t cache_max;
    const struct pc_cache_hooks *cache_hooks;
    /* Download even when the store has a good copy, and replace it once the new file verifies
     * (a model update). A partial download left before is discarded: it may be of the old
     * revision. */
    bool replace;
};

/* The defaults above, then PRECHARGE_DOWNLOAD_ATTEMPTS, PRECHARGE_DOWNLOAD_STALL_TIMEOUT and
 * PRECHARGE_DOWNLOAD_BACKOFF (durations: "30s", "500ms"; a bare number is seconds), and
 * PRECHARGE_CACHE_MAX (a size: "20G", "500M"; "0" or "none": no limit). Fails with
 * PC_ERR_INVALID naming the variable when one is malformed; *o then holds the defaults. */
enum pc_err pc_download_opts_init(struct pc_download_opts *o /* OUT */, struct pc_error *err);

/* Put the model in the store. Files: <models_dir>/<id>.gguf, <models_dir>/manifest.json, and
 * while it runs <models_dir>/.downloading/<id>.gguf.part (kept on failure, for a resume).
 *
 * A model already in the store with the expected checksum (or any, when none is expected) is
 * not downloaded again. Returns PC_OK; PC_ERR_BAD_PATH or PC_ERR_INVALID for an unsafe id or a
 * bad option; PC_ERR_NOT_FOUND (404, 410) or PC_ERR_NETWORK (401, 403, other 4xx, or the
 * attempts ran out) with the URL in the detail; PC_ERR_CHECKSUM with both hashes after a second
 * full download also mismatched; PC_ERR_CACHE_FULL when the models in use leave no room under
 * cache_max (the verified part stays, and a later call installs it without a download);
 * PC_ERR_CANCELLED; PC_ERR_IO. */
enum pc_err pc_download(const struct pc_download_opts *o, struct pc_error *err);

/* What a source says of a file without sending it. */
struct pc_download_head {
    char etag[160];          /* the final response's ETag, as sent; "" when none */
    char linked_etag[160];   /* X-Linked-Etag from any response on the way (the Hub sends the
                              * sha256 of a large file in it, before its redirect); "" when none */
    char last_modified[64];  /* the final response's Last-Modified, as sent; "" when none */
    int64_t last_modified_s; /* the same in Unix seconds; 0 when none */
    uint64_t size;           /* X-Linked-Size, else the final Content-Length; 0 when unknown */
};

/* HEAD url, following redirects (http and https). PC_ERR_NOT_FOUND for 404 and 410,
 * PC_ERR_NETWORK for another failure, with the URL in the detail. */
enum pc_err pc_download_head(const char *url, struct pc_download_head *out /* OUT */,
                             struct pc_error *err);

/* Remove the partial downloads (.downloading/<id>.gguf.part) that were not written to for
 * max_age_s seconds and that nobody is downloading now. *bytes and *count (each may be NULL)
 * say how much went. */
enum pc_err pc_download_clean_parts(const char *models_dir, int64_t max_age_s,
                                    uint64_t *bytes /* OUT */, size_t *count /* OUT */,
                                    struct pc_error *err);

/* A progress report as one line of Ollama-style JSON (no newline): {"status", "digest",
 * "total", "completed"} with "bytes_per_sec" when with_speed is set, and only what is known.
 * The caller frees the result; NULL when memory runs out. */
char *pc_download_progress_json(const struct pc_download_progress *p, bool with_speed);

/* The status text of a phase: "waiting for another download", "downloading", ... */
const char *pc_download_phase_name(enum pc_download_phase phase);

#endif
