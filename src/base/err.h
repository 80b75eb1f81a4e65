/* err.h - precharge's one error enum, its messages, and error details. */
#ifndef PC_ERR_H
#define PC_ERR_H

#include <stdarg.h>

/* Append-only: codes are stable across releases. X(name, message). */
#define PC_ERRORS(X)                                                                               \
    X(PC_OK, "success")                                                                            \
    X(PC_ERR_NOMEM, "out of memory")                                                               \
    X(PC_ERR_INVALID, "invalid argument")                                                          \
    X(PC_ERR_IO, "input/output error")                                                             \
    X(PC_ERR_NOT_FOUND, "not found")                                                               \
    X(PC_ERR_MODEL_FORMAT, "not a valid GGUF model")                                               \
    X(PC_ERR_MODEL_LOAD, "model failed to load")                                                   \
    X(PC_ERR_CONTEXT, "inference context could not be created")                                    \
    X(PC_ERR_TEMPLATE, "chat template could not be applied")                                       \
    X(PC_ERR_TOKENIZE, "tokenization failed")                                                      \
    X(PC_ERR_CTX_OVERFLOW, "prompt does not fit in the context window")                            \
    X(PC_ERR_DECODE, "decode failed")                                                              \
    X(PC_ERR_CANCELLED, "cancelled")                                                               \
    X(PC_ERR_BUSY, "busy")                                                                         \
    X(PC_ERR_TOO_LARGE, "too large")                                                               \
    X(PC_ERR_UNAVAILABLE, "service unavailable")                                                   \
    X(PC_ERR_NETWORK, "network error")                                                             \
    X(PC_ERR_BAD_PATH, "path leads outside its directory")                                         \
    X(PC_ERR_CHECKSUM, "checksum mismatch")                                                        \
    X(PC_ERR_NO_MEMORY, "insufficient memory")                                                     \
    X(PC_ERR_TIMEOUT, "timed out")                                                                 \
    X(PC_ERR_CONFLICT, "conflicts with one that exists")                                           \
    X(PC_ERR_CACHE_FULL, "cache size limit reached")

enum pc_err {
#define PC_ERR_ENUM(name, msg) name,
    PC_ERRORS(PC_ERR_ENUM)
#undef PC_ERR_ENUM
        PC_ERR__COUNT
};

/* Text for a code; never NULL. */
const char *pc_strerror(enum pc_err code);

/* The code's symbolic name ("PC_ERR_NOT_FOUND"); never NULL. */
const char *pc_errname(enum pc_err code);

#define PC_ERROR_MSG_MAX 512

/* An error with its detail: which file, field or offset. Callers own it (usually on the stack). */
struct pc_error {
    enum pc_err code;
    char msg[PC_ERROR_MSG_MAX]; /* a full sentence for the user; "" when code is PC_OK */
};

/* Set *e (which may be NULL) to code with a printf-style detail. Returns code, so that callers
 * can write `return pc_error_set(err, PC_ERR_IO, "open \"%s\": %s", path, strerror(errno));`. */
enum pc_err pc_error_set(struct pc_error *e, enum pc_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reset *e to PC_OK. */
void pc_error_clear(struct pc_error *e);

#endif
