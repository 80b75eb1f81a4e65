/* fleet.h - the fleet: daemons that share one Redis. Requests come over the precharge:requests
 * stream (seed 000's PrechargeRequested) and their results go to precharge:responses; each
 * daemon publishes what it can serve and what it holds warm, and mirrors its lifecycle events
 * (docs/fleet.md). The server starts it when a Redis URL is set; nothing here includes hiredis
 * or makes the HTTP path wait on Redis. */
#ifndef PC_FLEET_H
#define PC_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../base/err.h"
#include "../engine/engine.h"
#include "../pool/pool.h"
#include "../precharge/events.h"
#include "../precharge/precharge.h"
#include "../precharge/snapshot.h"

struct pc_fleet;

struct pc_fleet_config {
    const char *redis_url; /* checked by pc_redis_url_parse */
    const char *host_id;   /* this machine; NULL: gethostname */
    const char *http_url;  /* where other hosts reach this daemon ("http://10.0.0.2:11435") */
    const char *models_dir;
    struct pc_events *events;         /* mirrored onto precharge:events; results come from it */
    struct pc_precharger *precharger; /* runs the bus's requests */
    struct pc_pool *pool;             /* what is loaded; its budget bounds what is servable */
    struct pc_snapstore *snapshots;   /* the precharged contexts */
    const struct pc_model_params *model_params; /* for the memory estimate of a model */
    uint64_t budget_bytes;                      /* the pool's; 0: no byte limit */
    /* Queue the precharge of a PrechargeRequested's data (seed 000's fields: model_id,
     * category, context, priority; the HTTP API's others too) under correlation_id, as
     * POST /api/precharge does: the server's parse, so that both take the same requests.
     * PC_ERR_CONFLICT: that id is queued or running here already. err says what is wrong. */
    enum pc_err (*submit)(void *user, json_t *data, const char *correlation_id,
                          struct pc_error *err);
    void *user;
    int64_t visibility_ms; /* a request pending this long on a consumer may be taken over */
    int64_t heartbeat_ms;  /* the registry's entry is refreshed this often */
    int64_t expiry_ms;     /* and lapses this long after its last refresh */
    int64_t grace_ms;      /* a request for a model no live daemon serves is answered
                            * "unavailable" once it is this old */
    int64_t answered_ms;   /* how long a correlation id's answered marker is kept */
    long long maxlen;      /* the streams are trimmed to about this many entries */
    int max_inflight;      /* requests that one daemon runs at once from the bus */
};

/* Start the bus and registry threads (each with its own connection). Redis need not be up:
 * the threads connect, and reconnect, by themselves. PC_ERR_INVALID for a bad URL. */
enum pc_err pc_fleet_start(const struct pc_fleet_config *cfg, struct pc_fleet **out /* OUT */,
                           struct pc_error *err);

/* Leave the registry (when Redis is reachable), stop and join the threads, free. Requests
 * being run are not acknowledged: another daemon takes them over after the visibility
 * timeout. NULL does nothing. */
void pc_fleet_stop(struct pc_fleet *f);

/* This daemon's id in the fleet (its consumer name and registry key). */
const char *pc_fleet_daemon_id(const struct pc_fleet *f);

/* The fleet as the registry last read it (at most a heartbeat old; never waits on Redis):
 * {daemon_id, redis, connected, as_of, daemons: [{daemon_id, host_id, http, pid, started_at,
 * heartbeat_at, serves: [model], models: [{model_id, state}], contexts: [{model_id,
 * tokens_hash, context_tokens, tier}]}]}. The caller decrefs. */
json_t *pc_fleet_view(struct pc_fleet *f);

/* Where model (a store name) is warm in the fleet: [{daemon_id, host_id, http, loaded,
 * contexts}] for each live daemon that has it loaded or holds a precharged context of it.
 * The caller decrefs. */
json_t *pc_fleet_where(struct pc_fleet *f, const char *model);

#endif
