/* server.h - the daemon: configuration, the HTTP APIs, and the pool they serve from. */
#ifndef PC_SERVER_H
#define PC_SERVER_H

#include <stdint.h>

#include "../base/err.h"
#include "../pool/pool.h"

struct pc_server_config {
    char host[256];         /* listen address; 127.0.0.1 by default */
    int port;               /* 11435 by default; 0 = ephemeral */
    char home[1024];        /* $PRECHARGE_HOME: models/, snapshots/ */
    char models_dir[1100];  /* $PRECHARGE_HOME/models */
    uint64_t snapshot_ram;  /* RAM tier budget, bytes */
    uint64_t snapshot_disk; /* disk tier budget, bytes */
    int64_t debounce_ns;    /* precharge debounce window */
    size_t max_body;        /* request body limit in bytes */
    struct pc_pool_config pool;
};

/* Defaults, then PRECHARGE_HOST ("host:port", "host", ":port", "[::1]:port"), PRECHARGE_HOME,
 * PRECHARGE_KEEP_ALIVE, PRECHARGE_MAX_LOADED_MODELS, PRECHARGE_CONTEXT_LENGTH,
 * PRECHARGE_THREADS, PRECHARGE_SNAPSHOT_RAM, PRECHARGE_SNAPSHOT_DISK, PRECHARGE_DEBOUNCE.
 * Fails with the variable named when one is malformed. */
enum pc_err pc_server_config_from_env(struct pc_server_config *cfg /* OUT */, struct pc_error *err);

/* Set cfg->home and the directories under it. */
enum pc_err pc_server_set_home(struct pc_server_config *cfg, const char *home,
                               struct pc_error *err);

/* Parse "host:port" forms into cfg->host and cfg->port. */
enum pc_err pc_server_parse_hostport(const char *s, struct pc_server_config *cfg,
                                     struct pc_error *err);

struct pc_server;

/* Start serving. The server owns its pool. */
enum pc_err pc_server_start(const struct pc_server_config *cfg, struct pc_server **out /* OUT */,
                            struct pc_error *err);
int pc_server_port(const struct pc_server *s);

/* Load these models in the background, one after the other, while the server already serves.
 * names is copied. A failure is logged and does not stop the daemon. Call at most once. */
enum pc_err pc_server_preload(struct pc_server *s, const char *const *names, size_t n,
                              struct pc_error *err);
void pc_server_stop(struct pc_server *s);

#endif
