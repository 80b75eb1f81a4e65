/* update.c - has a model's source changed since it was downloaded, and the switch to the new
 * revision once it is verified. The requests are download.c's (the one file that speaks HTTP
 * for the store). */
#include "update.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "../base/log.h"
#include "manifest.h"
#include "store.h"

const char *pc_update_status_name(enum pc_update_status s)
{
    return s == PC_UPDATE_CURRENT ? "current" : s == PC_UPDATE_AVAILABLE ? "available" : "unknown";
}

/* The sha256 in an X-Linked-Etag ("\"<64 hex>\"", maybe W/), lowercase into out; false when it
 * is not one (a git blob's sha1, for a small file). */
static bool linked_sha256(const char *etag, char out[65])
{
    const char *p = etag;
    if (strncmp(p, "W/", 2) == 0)
        p += 2;
    if (*p == '"')
        p++;
    size_t n = strspn(p, "0123456789abcdefABCDEF");
    if (n != 64 || (p[n] != '"' && p[n] != '\0'))
        return false;
    for (size_t i = 0; i < 64; i++)
        out[i] = (char)tolower((unsigned char)p[i]);
    out[64] = '\0';
    return true;
}

enum pc_err pc_update_check(const char *models_dir, const char *id, const char *url,
                            struct pc_update_check *out, struct pc_error *err)
{
    memset(out, 0, sizeof(*out));
    char norm[256];
    enum pc_err rc = pc_store_name(id, norm, sizeof(norm), err);
    if (rc != PC_OK)
        return rc;
    struct pc_manifest m;
    if ((rc = pc_manifest_load(models_dir, &m, err)) != PC_OK)
        return rc;
    struct pc_manifest_entry e;
    const struct pc_manifest_entry *found = pc_manifest_find(&m, norm);
    if (found != NULL)
        e = *found;
    pc_manifest_free(&m);
    if (found == NULL)
        return pc_error_set(err, PC_ERR_NOT_FOUND, "model \"%s\" is not in the store", norm);
    if ((rc = pc_download_head(url, &out->head, err)) != PC_OK)
        return rc;

    const struct pc_download_head *h = &out->head;
    const char *have = strncmp(e.checksum, "sha256:", 7) == 0 ? e.checksum + 7 : "";
    snprintf(out->revision, sizeof(out->revision), "%s",
             h->linked_etag[0] ? h->linked_etag : h->etag);
    if (linked_sha256(h->linked_etag, out->expected) && have[0] != '\0') {
        out->status = strcmp(out->expected, have) == 0 ? PC_UPDATE_CURRENT : PC_UPDATE_AVAILABLE;
        snprintf(out->why, sizeof(out->why), "the source's sha256 is %s, the store's %s",
                 out->expected, have);
    } else if (out->revision[0] != '\0' && e.revision[0] != '\0') {
        out->status =
            strcmp(out->revision, e.revision) == 0 ? PC_UPDATE_CURRENT : PC_UPDATE_AVAILABLE;
        snprintf(out->why, sizeof(out->why), "the source's revision is %s, the store's %s",
                 out->revision, e.revision);
    } else if (h->size > 0 && h->size != e.size_bytes) {
        out->status = PC_UPDATE_AVAILABLE;
        snprintf(out->why, sizeof(out->why), "the source's file is %llu bytes, the store's %llu",
                 (unsigned long long)h->size, (unsigned long long)e.size_bytes);
    } else if (h->last_modified_s > 0 && e.downloaded_at > 0) {
        out->status =
            h->last_modified_s > e.downloaded_at ? PC_UPDATE_AVAILABLE : PC_UPDATE_CURRENT;
        snprintf(out->why, sizeof(out->why), "the source's file was modified %s, %s the download",
                 h->last_modified, out->status == PC_UPDATE_AVAILABLE ? "after" : "before");
    } else {
        out->status = PC_UPDATE_UNKNOWN;
        snprintf(out->why, sizeof(out->why), "the source gives no ETag, size or date to tell by");
    }
    return PC_OK;
}

enum pc_err pc_update_apply(const struct pc_download_opts *o, const struct pc_update_check *check,
                            struct pc_error *err)
{
    struct pc_download_opts mine = *o;
    mine.sha256 = check->expected[0] ? check->expected : NULL;
    mine.replace = true;
    pc_log_info("store", "updating %s: %s", o->id, check->why);
    return pc_download(&mine, err);
}
