/* emit.h - turns token pieces into text that is safe to send: whole UTF-8 characters, with
 * stop strings cut out. Pure text handling, so that it is tested without a model. */
#ifndef PC_EMIT_H
#define PC_EMIT_H

#include <stdbool.h>
#include <stddef.h>

#include "../base/buf.h"
#include "../base/utf8.h"

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

#endif
