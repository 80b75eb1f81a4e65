/* verify.h - check a model in the store against the checksum its manifest recorded when it came
 * in: the whole file read and hashed again (seed 002's "exists: verify checksum"). */
#ifndef PC_VERIFY_H
#define PC_VERIFY_H

#include <stdint.h>

#include "../base/err.h"

enum pc_verify_status {
    PC_VERIFY_OK,       /* the file's sha256 is the one recorded */
    PC_VERIFY_MISMATCH, /* it is not (or its size is not): the file changed since it came in */
    PC_VERIFY_RECORDED, /* no checksum was recorded (a file put there by hand): recorded now */
};

struct pc_verify_result {
    enum pc_verify_status status;
    char actual[65];   /* the file's sha256 now, hex */
    char recorded[65]; /* the manifest's, hex; "" when it had none */
    uint64_t size;     /* bytes read */
};

/* Hash <models_dir>/<id>.gguf (calling progress, which may be NULL, with the bytes read and the
 * size) and compare it with the manifest. PC_ERR_NOT_FOUND when the store has no such model,
 * PC_ERR_BAD_PATH / PC_ERR_INVALID for an unsafe id, PC_ERR_IO for a read that failed. A
 * mismatch is not an error: out->status says so. */
enum pc_err pc_store_verify(const char *models_dir, const char *id,
                            void (*progress)(void *user, uint64_t done, uint64_t total), void *user,
                            struct pc_verify_result *out /* OUT */, struct pc_error *err);

const char *pc_verify_status_name(enum pc_verify_status s);

#endif
