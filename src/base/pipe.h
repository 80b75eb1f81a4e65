/* pipe.h - a bounded byte pipe from a producer thread to a reader that never blocks.
 *
 * The producer writes (blocking while the pipe is full, so a slow reader slows the producer
 * rather than growing memory) and closes; the reader polls for what is there and, when
 * nothing is, is woken through the callback it registered. This is the shape of a streamed
 * HTTP reply (src/server/http.h): the HTTP layer is the reader, and holds no thread while the
 * producer works. */
#ifndef PC_PIPE_H
#define PC_PIPE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* What a non-blocking read of a byte stream found. */
enum pc_stream_state {
    PC_STREAM_MORE, /* bytes were appended, or may be: read again */
    PC_STREAM_WAIT, /* nothing now: the reader's waker is called when there may be more */
    PC_STREAM_END,  /* the stream is over; what was appended is its last */
};

struct pc_pipe;

/* A pipe that holds up to cap bytes before writes block (a write is taken whole once there is
 * room, so the pipe may hold up to cap plus one write). It has two ends, each released once:
 * the producer's with pc_pipe_close, the reader's with pc_pipe_release; the pipe is freed with
 * the second. NULL when memory runs out. */
struct pc_pipe *pc_pipe_new(size_t cap);

/* ---- the producer's end ---- */

/* Append n bytes, waiting while the pipe is full. False once the reader has released its end:
 * nothing more will be read, and the producer should stop (a client went away). */
bool pc_pipe_write(struct pc_pipe *p, const void *data, size_t n);

/* Whether the reader has released its end. */
bool pc_pipe_abandoned(struct pc_pipe *p);

/* End the stream and release the producer's end; p may be freed. */
void pc_pipe_close(struct pc_pipe *p);

/* ---- the reader's end (the signatures of struct pc_http_stream's poll, watch and free) ---- */

/* Move what the pipe holds to out, without blocking. END once the producer closed and all was
 * read. pipe: a struct pc_pipe. */
enum pc_stream_state pc_pipe_poll(void *pipe, struct pc_buf *out);

/* Register the waker: wake(arg) is called (under the pipe's lock, so it must not block or
 * call back into the pipe) whenever bytes arrive or the stream ends, also right away when
 * there is something already. */
void pc_pipe_watch(void *pipe, void (*wake)(void *arg), void *arg);

/* Release the reader's end: later writes fail, a blocked write returns false, and the waker
 * is never called again once this returns. pipe may be freed. */
void pc_pipe_release(void *pipe);

#endif
