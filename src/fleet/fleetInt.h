/* fleetInt.h - what the fleet's parts share: the keys and streams in Redis, the fleet's state
 * (ids, the set of models this daemon serves, the registry's last view), and the threads'
 * entry points. */
#ifndef PC_FLEET_INT_H
#define PC_FLEET_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "../base/buf.h"
#include "fleet.h"
#include "redis.h"

/* Redis's names (docs/fleet.md, "Streams and keys"). */
#define PC_FLEET_REQUESTS "precharge:requests"        /* the application's requests */
#define PC_FLEET_MODEL_REQUESTS "precharge:requests:" /* + model: requests routed to it */
#define PC_FLEET_RESPONSES "precharge:responses"      /* the results */
#define PC_FLEET_EVENTS "precharge:events"            /* every daemon's lifecycle events */
#define PC_FLEET_GROUP "precharge"                    /* the consumer group of each stream */
#define PC_FLEET_ANSWERED "precharge:answered:"       /* + correlation id: answered once */
#define PC_FLEET_DAEMONS "precharge:fleet:daemons"    /* sorted set: id by expiry (ms) */
#define PC_FLEET_DAEMON "precharge:fleet:daemon:"     /* + id: its registry entry (JSON) */
#define PC_FLEET_SERVES "precharge:fleet:serves:"     /* + model: sorted set of its servers */

#define PC_FLEET_NAME_MAX 256 /* a model's store name, with its NUL */

struct pc_fleet_bus;
struct pc_fleet_fit;
struct pc_fleet_registry;

struct pc_fleet {
    struct pc_fleet_config cfg; /* its strings point into the fields below */
    struct pc_redis_url url;
    char daemon_id[160];
    char host_id[128];
    char http_url[256];
    char models_dir[1100];
    int64_t started_wall_ns;
    atomic_bool stopping;

    pthread_mutex_t lock; /* guards the fields below, and the sleeps of the threads */
    pthread_cond_t wake;  /* stopping, or the set below changed */
    /* The models this daemon serves (store names in its store that fit its budget), sorted;
     * the registry recomputes it on each heartbeat, and serves_version counts the changes. */
    char (*serves)[PC_FLEET_NAME_MAX];
    size_t n_serves;
    uint64_t serves_version;
    struct pc_fleet_fit *fits; /* the registry thread's: each model's fit, kept by file */
    size_t n_fits;
    json_t *view;    /* the registry's last read of the fleet (pc_fleet_view's daemons) */
    int64_t view_ns; /* when (wall) */
    bool connected;  /* the registry's connection was up at its last heartbeat */

    struct pc_fleet_bus *bus;
    struct pc_fleet_registry *registry;
};

/* Tell the threads to stop, and wake them. */
void pc_fleet_halt(struct pc_fleet *f);

/* Sleep up to ms on f->wake, unless stopping. Returns false once stopping. */
bool pc_fleet_nap(struct pc_fleet *f, int64_t ms);

/* The same, unless ready(f) (called with f->lock held) says there is work already. */
bool pc_fleet_nap_unless(struct pc_fleet *f, int64_t ms, bool (*ready)(struct pc_fleet *f));

/* A connection for one thread, named for Redis's CLIENT LIST ("precharge:<daemon id>:<what>")
 * and its logs. NULL when out of memory. */
struct pc_redis *pc_fleet_connect(struct pc_fleet *f, const char *what, int command_timeout_ms);

/* Whether this daemon serves model (a store name) now. */
bool pc_fleet_serves(struct pc_fleet *f, const char *model);

/* The set of models served, copied (*out malloc'd, the caller frees it), and its version. */
size_t pc_fleet_serves_copy(struct pc_fleet *f, char (**out)[PC_FLEET_NAME_MAX],
                            uint64_t *version /* OUT */);

/* Work out the set again (the store, each model's memory estimate against the budget) and
 * publish it to the fleet's state; the registry thread calls it on each heartbeat. */
void pc_fleet_serves_refresh(struct pc_fleet *f);

/* The next SSE frame ("event: NAME\ndata: JSON\n\n") of an events read at *p: its name in
 * event and its JSON ({type, stream, at, data, metadata}: a new reference, the caller
 * decrefs). Moves *p past it; false at the
 * end. Frames whose data is not JSON are skipped. */
bool pc_fleet_next_frame(const char **p, char *event, size_t size, json_t **data /* OUT */);

/* The milliseconds since the epoch in an entry id ("1712345678901-0"); 0 if it has none. */
int64_t pc_fleet_entry_ms(const char *id);

enum pc_err pc_fleet_bus_start(struct pc_fleet *f, struct pc_error *err);
void pc_fleet_bus_stop(struct pc_fleet *f);
enum pc_err pc_fleet_registry_start(struct pc_fleet *f, struct pc_error *err);
void pc_fleet_registry_stop(struct pc_fleet *f);

#endif
