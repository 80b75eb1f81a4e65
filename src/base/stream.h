/* stream.h - what a non-blocking read of a byte stream finds: the contract between a producer
 * that is polled and woken (an answer, an event stream, a download's progress, a proxied body)
 * and the reader that polls it (the HTTP layer, src/server/http.h). */
#ifndef PC_STREAM_H
#define PC_STREAM_H

enum pc_stream_state {
    PC_STREAM_MORE, /* bytes were appended, or may be: read again */
    PC_STREAM_WAIT, /* nothing now: the reader's waker is called when there may be more */
    PC_STREAM_END,  /* the stream is over; what was appended is its last */
};

#endif
