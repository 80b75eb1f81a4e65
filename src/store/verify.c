/* verify.c - a model in the store checked against its manifest's checksum. */
#include "verify.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../base/file.h"
#include "../base/log.h"
#include "manifest.h"
#include "store.h"

const char *pc_verify_status_name(enum pc_verify_status s)
{
    return s == PC_VERIFY_OK ? "ok" : s == PC_VERIFY_MISMATCH ? "mismatch" : "recorded";
}

enum pc_err pc_store_verify(const char *models_dir, const char *id,
                            void (*progress)(void *user, uint64_t done, uint64_t total), void *user,
                            struct pc_verify_result *out, struct pc_error *err)
{
    char norm[256], path[PATH_MAX];
    memset(out, 0, sizeof(*out));
    enum pc_err rc = pc_store_name(id, norm, sizeof(norm), err);
    if (rc == PC_OK)
        rc = pc_store_path(models_dir, norm, path, sizeof(path), err);
    if (rc != PC_OK)
        return rc;
    /* What was recorded, and for which size: a checksum of another size is another file's. */
    struct pc_manifest m;
    uint64_t recorded_size = 0;
    if ((rc = pc_manifest_load(models_dir, &m, err)) != PC_OK)
        return rc;
    const struct pc_manifest_entry *e = pc_manifest_find(&m, norm);
    if (e != NULL && strncmp(e->checksum, "sha256:", 7) == 0) {
        snprintf(out->recorded, sizeof(out->recorded), "%s", e->checksum + 7);
        recorded_size = e->size_bytes;
    }
    pc_manifest_free(&m);

    if ((rc = pc_file_sha256_progress(path, out->actual, progress, user, err)) != PC_OK)
        return rc;
    struct stat st;
    out->size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (out->recorded[0] == '\0') {
        out->status = PC_VERIFY_RECORDED;
        return pc_manifest_record(models_dir, norm, out->actual, err);
    }
    bool same = strcmp(out->actual, out->recorded) == 0 && recorded_size == out->size;
    out->status = same ? PC_VERIFY_OK : PC_VERIFY_MISMATCH;
    if (!same)
        pc_log_warn("store", "%s: sha256 %s, but the manifest recorded %s: the file changed", norm,
                    out->actual, out->recorded);
    return PC_OK;
}
