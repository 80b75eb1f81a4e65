/* events.h - the event bus: every lifecycle event, with its correlation id, kept in a ring
 * for late readers and handed to waiting subscribers (the SSE stream). Publishing an event
 * also moves the model's lifecycle state: events drive the states. */
#ifndef PC_EVENTS_H
#define PC_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../base/buf.h"

enum pc_event_type {
    PC_EV_MODELS_DISCOVERED,
    PC_EV_PRECHARGE_REQUESTED,
    PC_EV_PRECHARGE_COMPLETED,
    PC_EV_LLM_REQUESTED,
    PC_EV_LLM_COMPLETED,
    PC_EV_MODEL_LOADED,
    PC_EV_MODEL_EVICTED,
    PC_EV_MODEL_LOADING,
    PC_EV_MODEL_FAILED,
    PC_EV_MODEL_PRELOADED,        /* the preloader warmed it: loaded, decoded, precharged */
    PC_EV_MODEL_HEALTH_CHECKED,   /* the preloader's one-token decode: {ok, time_ms, error} */
    PC_EV_MODEL_UPDATE_AVAILABLE, /* the source has a newer file: {why, url, revision, sha256} */
};

/* Seed 000's names ("PrechargeRequested") and streams ("precharge:requests"). */
const char *pc_event_name(enum pc_event_type t);
const char *pc_event_stream(enum pc_event_type t);

enum pc_model_state {
    PC_STATE_UNAVAILABLE,
    PC_STATE_PRETRAINED, /* known and on disk, not loaded */
    PC_STATE_LOADING,
    PC_STATE_PRECHARGED, /* loaded, with its context ready */
    PC_STATE_ACTIVE,     /* serving a request */
    PC_STATE_FAILED,
};

const char *pc_state_name(enum pc_model_state s);

struct pc_events;

struct pc_events *pc_events_new(size_t ring_size);
/* Wake every subscriber for good (the daemon stops), then free with pc_events_free. */
void pc_events_close(struct pc_events *ev);
void pc_events_free(struct pc_events *ev);

/* Publish: data (taken) gets "type", "correlation_id" (when not NULL) and "model_id" (when not
 * NULL) added. Returns the event's sequence number. */
uint64_t pc_events_publish(struct pc_events *ev, enum pc_event_type type, const char *model_id,
                           const char *correlation_id, json_t *data);

/* Wait up to timeout_ms for events after *cursor whose stream is in streams (a comma list;
 * NULL or "" for all). Appends each as an SSE frame ("id:", "event:", "data:") to out and moves
 * *cursor. Returns false once the bus is closed. An event that fell off the ring is lost to a
 * slow reader, and the "id:" numbers show the gap. */
bool pc_events_wait(struct pc_events *ev, uint64_t *cursor, const char *streams, int timeout_ms,
                    char **out /* OUT, malloc'd or NULL */);

/* A subscriber that reads without blocking and is woken when events come: the SSE stream.
 * Publishing never waits for a subscriber; one that reads too slowly loses the events that
 * fell off the ring, and the "id:" numbers show the gap. */
struct pc_events_sub;

/* Subscribe to the events published from now on whose stream is in streams (a comma list;
 * NULL or "" for all; copied). NULL when max subscribers (0: no limit) are there already, or
 * memory runs out. Free with pc_events_unsubscribe. */
struct pc_events_sub *pc_events_subscribe(struct pc_events *ev, const char *streams, size_t max);

/* Append the subscriber's new events to out as SSE frames, without waiting. False once the bus
 * is closed (the daemon stops). */
bool pc_events_read(struct pc_events_sub *sub, struct pc_buf *out);

/* wake(arg) is called, under the bus's lock (it must not block or call into the bus), when an
 * event the subscriber wants is published, and when the bus closes; also at once when one is
 * waiting already. */
void pc_events_watch(struct pc_events_sub *sub, void (*wake)(void *arg), void *arg);

/* Unsubscribe and free sub; once this returns, its waker is not called again. NULL does
 * nothing. */
void pc_events_unsubscribe(struct pc_events_sub *sub);

/* Subscribers now. */
size_t pc_events_subscribers(struct pc_events *ev);

/* The last sequence number published (a new subscriber's starting cursor). */
uint64_t pc_events_last(struct pc_events *ev);

/* A model's state, as the events left it; PC_STATE_UNAVAILABLE for names never seen. Also the
 * time it entered that state (wall ns) and the correlation id of the event that set it. */
enum pc_model_state pc_events_state(struct pc_events *ev, const char *model_id,
                                    int64_t *since_ns /* OUT, may be NULL */,
                                    char corr[40] /* OUT, may be NULL */);

/* Whether the model is failed, and why (the error of the ModelFailed event that made it so; a
 * UTF-8 prefix of it when longer than the state keeps) in buf. */
bool pc_events_failure(struct pc_events *ev, const char *model_id, char *buf /* OUT */,
                       size_t size);

/* A fresh UUID v4 in out. */
void pc_uuid(char out[37]);

#endif
