/* emit.h - turns token pieces into text that is safe to send: whole UTF-8 characters, with
 * stop strings cut out. Pure text handling, so that it is tested without a model. */
#ifndef PC_EMIT_H
#define PC_EMIT_H

#include <stdbool.h>
#include <stddef.h>

#include "../base/buf.h"

struct pc_emit {
    struct pc_buf pending; /* text not yet released: a partial character or a stop's prefix */
    struct pc_buf out;     /* text released by the last call */
    char **stops;          /* owned copies */
    size_t n_stops;
    bool stopped;
};

/* stops may be NULL when n_stops is 0. Returns false when memory runs out. */
bool pc_emit_init(struct pc_emit *e, const char *const *stops, size_t n_stops);
void pc_emit_free(struct pc_emit *e);

/* Add a piece. Afterwards e->out holds the text that can be released now (maybe empty).
 * When a stop string appears, out holds the text before it, and e->stopped is set. */
bool pc_emit_push(struct pc_emit *e, const char *piece, size_t len);

/* End of generation: release what is pending (a dangling partial character is dropped). */
void pc_emit_flush(struct pc_emit *e);

/* Length of the longest prefix of s[0..len) that ends on a UTF-8 character boundary. */
size_t pc_utf8_complete_prefix(const char *s, size_t len);

/* Append text to b with each invalid UTF-8 byte replaced by U+FFFD, so that JSON encoders take it.
 */
bool pc_utf8_append_valid(struct pc_buf *b, const char *text, size_t n);

#endif
