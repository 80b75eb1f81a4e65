/* details.h - what the model listings (/api/tags, /api/ps) say of a GGUF file: its family,
 * parameter size and quantization, read from its header once per file identity and kept, so
 * that a listing never re-reads a vocabulary. */
#ifndef PC_DETAILS_H
#define PC_DETAILS_H

#include "../base/err.h"

struct pc_gguf_details {
    char family[32];         /* general.architecture: "llama", "qwen2" */
    char parameter_size[16]; /* "1.1B" */
    char quantization[16];   /* "Q4_0", "F16" */
};

/* path's details. Kept by the file's identity (device, inode, size, modification time): a file
 * that has not changed is not read again; one that has is. Errors as pc_gguf_inspect. */
enum pc_err pc_gguf_details(const char *path, struct pc_gguf_details *out /* OUT */,
                            struct pc_error *err);

#endif
