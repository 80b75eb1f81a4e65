/* redis.h - one connection to Redis for one thread (the bus, the registry, the snapshot tier
 * each own one, so that a blocking read holds up no one else): connecting with timeouts, AUTH
 * and SELECT, commands, and the reconnect policy (capped exponential backoff; Redis going away
 * is logged once for the process, and its return once). Only src/fleet includes this header:
 * hiredis's types stay here. */
#ifndef PC_FLEET_REDIS_H
#define PC_FLEET_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "../base/err.h"
#include "url.h"

/* What a connection is for and how patient it is. Copy pc_redis_default_params and override. */
struct pc_redis_params {
    const char *name;        /* who uses it ("bus", "registry"), for the logs; not copied */
    const char *client_name; /* CLIENT SETNAME after connecting (no spaces), or NULL; copied */
    int connect_timeout_ms;  /* TCP connect, then AUTH/SELECT/PING */
    int command_timeout_ms;  /* each command's reply; a blocking read's BLOCK must be shorter */
    int backoff_min_ms;      /* the first retry after a failure, doubled after each failure */
    int backoff_max_ms;      /* the cap of the doubling */
};

/* 2 s to connect, 5 s per command, retries from 100 ms doubling up to 5 s. */
struct pc_redis_params pc_redis_default_params(void);

/* A connection, not yet made. Used by one thread at a time; it has no lock. */
struct pc_redis;

/* A connection to url with params (copied, but params->name must outlive it). Connects lazily, on
 * the first command or pc_redis_connect. Returns NULL when out of memory. The caller frees it
 * with pc_redis_free. */
struct pc_redis *pc_redis_new(const struct pc_redis_url *url, const struct pc_redis_params *params);

/* Close and free; NULL is a no-op. */
void pc_redis_free(struct pc_redis *r);

/* Connected, or connected now: true. Tries only when the backoff allows (see pc_redis_wait_ms);
 * a failed try lengthens the backoff. */
bool pc_redis_connect(struct pc_redis *r);

/* Milliseconds until the next connection attempt is due; 0 when connected or due now. A thread
 * whose connection is down sleeps this long (interruptibly) rather than spinning. */
int64_t pc_redis_wait_ms(const struct pc_redis *r);

/* How many connections r has made: a user that sets up state on the server (consumer groups,
 * registry entries) does it again when this changes, since a restarted Redis may have lost it. */
uint64_t pc_redis_generation(const struct pc_redis *r);

/* Send one command (hiredis's printf-like format: %s a C string, %b a pointer and a length) and
 * read its reply. Connects first if needed (pc_redis_connect).
 * - PC_OK: *reply is the reply (the caller frees it with freeReplyObject).
 * - PC_ERR_IO: Redis answered with an error; *reply is that error reply (the caller frees it;
 *   pc_redis_is_error tells which), err has its text.
 * - PC_ERR_UNAVAILABLE: no connection, or it broke (then it is closed and the backoff starts);
 *   *reply is NULL. */
enum pc_err pc_redis_command(struct pc_redis *r, redisReply **reply /* OUT */, struct pc_error *err,
                             const char *fmt, ...);

/* The same with argc arguments of the given lengths (binary-safe). */
enum pc_err pc_redis_commandv(struct pc_redis *r, redisReply **reply /* OUT */,
                              struct pc_error *err, int argc, const char **argv,
                              const size_t *argvlen);

/* reply is an error reply whose text starts with code ("NOGROUP", "BUSYGROUP"). */
bool pc_redis_is_error(const redisReply *reply, const char *code);

#endif
