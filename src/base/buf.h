/* buf.h - a growable byte buffer that stays NUL-terminated. */
#ifndef PC_BUF_H
#define PC_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct pc_buf {
    char *data; /* NUL-terminated; NULL until the first append */
    size_t len;
    size_t cap;
};

#define PC_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Append n bytes. Returns false (and leaves the buffer as it was) when memory runs out. */
bool pc_buf_append(struct pc_buf *b, const void *p, size_t n);
bool pc_buf_appends(struct pc_buf *b, const char *s);
bool pc_buf_printf(struct pc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Drop the first n bytes. */
void pc_buf_consume(struct pc_buf *b, size_t n);
void pc_buf_reset(struct pc_buf *b);

/* Take the buffer's memory: the caller frees it. The buffer is left empty. */
char *pc_buf_steal(struct pc_buf *b);
void pc_buf_free(struct pc_buf *b);

#endif
