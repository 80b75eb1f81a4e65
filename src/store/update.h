/* update.h - a model in the store against its source now: has the file there changed since it
 * was downloaded (HTTP HEAD: the Hub's X-Linked-Etag, ETag, size, Last-Modified), and the new
 * revision downloaded beside the old one, switched to only once it verifies. */
#ifndef PC_UPDATE_H
#define PC_UPDATE_H

#include <stdint.h>

#include "../base/err.h"
#include "download.h"

enum pc_update_status {
    PC_UPDATE_CURRENT,   /* the source has the file the store has */
    PC_UPDATE_AVAILABLE, /* it has another one */
    PC_UPDATE_UNKNOWN,   /* it says nothing to tell by (no ETag, size or date) */
};

struct pc_update_check {
    enum pc_update_status status;
    char why[512];                /* what told: "the source's sha256 is ..., the store's ..." */
    char expected[65];            /* the new file's sha256 when the source says it, else "" */
    char revision[160];           /* the source's revision now: X-Linked-Etag, else ETag */
    struct pc_download_head head; /* what the source answered */
};

/* Ask url about the store's model id (HEAD, redirects followed) and compare with what the
 * manifest recorded when it was downloaded: first the sha256 that the Hub sends as
 * X-Linked-Etag, then the recorded revision (ETag), then the size and Last-Modified.
 * PC_ERR_NOT_FOUND when the store has no such model; the network's errors as pc_download's. */
enum pc_err pc_update_check(const char *models_dir, const char *id, const char *url,
                            struct pc_update_check *out /* OUT */, struct pc_error *err);

const char *pc_update_status_name(enum pc_update_status s);

/* Download the revision that check found (o names the model, its URL and the progress), beside
 * the model's file, which stays in place and in use until the new one is verified (against
 * the source's sha256 when it gave one) and renamed over it; the manifest then records the new
 * checksum and revision. */
enum pc_err pc_update_apply(const struct pc_download_opts *o, const struct pc_update_check *check,
                            struct pc_error *err);

#endif
