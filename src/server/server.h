/* server.h - the daemon: configuration, the HTTP APIs, and the pool they serve from. */
#ifndef PC_SERVER_H
#define PC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../base/err.h"
#include "../pool/pool.h"
#include "preload.h"

/* How the pool's memory budget is found when the server starts. */
enum pc_budget_mode {
    PC_BUDGET_AUTO,    /* the hardware probe, less headroom: pc_pool_default_budget */
    PC_BUDGET_PERCENT, /* budget_percent of the RAM available at start */
    PC_BUDGET_FIXED,   /* pool.budget_bytes as it is; 0: no byte limit */
};

#define PC_SERVER_MAX_MODEL_DIRS 16
#define PC_SERVER_MAX_QUEUE 1000000 /* the largest max_queue */
#define PC_SERVER_MAX_PARALLEL 64   /* the largest parallel: sequences decoded together */
#define PC_SERVER_MAX_CORS_ORIGINS 16
#define PC_SERVER_MAX_API_KEY 256

/* Where each setting's value came from, by its index in pc_settings (settings.h). */
#define PC_SETTINGS_MAX 64

/* The daemon's configuration. Each field is a setting of the table in settings.c (environment
 * variable, file key, flag, range, default), or worked out from one. */
struct pc_server_config {
    char host[256];          /* listen address; 127.0.0.1 by default */
    bool listen_loopback;    /* worked out at start: every address host resolves to is loopback */
    int port;                /* 11435 by default; 0 = ephemeral */
    char home[1024];         /* $PRECHARGE_HOME: models/, snapshots/ */
    char models_dir[1100];   /* $PRECHARGE_HOME/models */
    uint64_t snapshot_ram;   /* RAM tier budget, bytes */
    uint64_t snapshot_disk;  /* disk tier budget, bytes */
    int64_t debounce_ns;     /* precharge debounce window */
    int64_t update_check_ns; /* PRECHARGE_UPDATE_CHECK: between background checks; 0: off */
    size_t max_body;         /* request body limit in bytes */
    size_t max_queue;        /* inference requests that may wait for one model; 0: no limit */
    struct pc_pool_config pool;
    enum pc_budget_mode budget_mode;
    double budget_percent;
    /* The allow-list: directories whose models a request may name by path (/v1/models/{id}/load
     * with "path"). Empty: paths are refused. Made absolute (realpath) when the server starts. */
    char model_dirs[PC_SERVER_MAX_MODEL_DIRS][1024];
    size_t n_model_dirs;
    struct pc_preload_spec preload[PC_PRELOAD_MAX]; /* models to warm at start */
    size_t n_preload;
    int64_t preload_timeout_ms; /* MODEL_PRELOAD_TIMEOUT: per attempt and per health check */
    int64_t health_interval_ms; /* HEALTH_CHECK_INTERVAL; 0: no health checks */
    /* The defaults of the preloads named without a spec (pc_settings_finish applies them): */
    int preload_retries;
    int64_t preload_retry_delay_ms;
    struct pc_keep_warm keep_warm;
    int64_t preload_retry_max_ms; /* the longest wait between two attempts of a preload */
    size_t max_parallel_preloads; /* attempts that load at once; 0 until finished: the cores */
    char ollama_url[512];         /* OLLAMA_URL: the remote Ollama server */
    int64_t ollama_poll_ms;       /* how often its models are polled */
    char config_file[1100];       /* the file that was read, or "" */
    char log_level[8];            /* error, warn, info, debug */
    char llama_log[8];            /* llama.cpp's: none, or a level */
    /* Safety (config_safety.c, guard.c): */
    char api_key[PC_SERVER_MAX_API_KEY + 1]; /* "": none; else every request but the probes
                                              * must carry "Authorization: Bearer <key>" */
    char api_key_file[1024];                 /* where api_key was read from, or "" */
    bool insecure;                           /* listen beyond loopback without an API key */
    uint32_t max_prompt_tokens;              /* 0: the context the request uses */
    unsigned connection_timeout_s;           /* idle connections close; 0: never */
    uint32_t max_connections_per_ip;         /* connections at once from one address; 0: no limit */
    uint32_t max_event_streams;              /* /api/events subscribers at once; more get 503 */
    char cors_origins[PC_SERVER_MAX_CORS_ORIGINS][256]; /* origins allowed by CORS; "*": all */
    size_t n_cors_origins;
    /* The fleet (config_fleet.c, src/fleet/): */
    char redis_url[512];  /* PRECHARGE_REDIS_URL, checked by pc_redis_url_parse; "": off */
    bool redis_snapshots; /* share precharged snapshots through redis (fleet/snaps.h) */
    uint64_t redis_snapshot_budget; /* bytes, for the whole fleet */
    int64_t redis_snapshot_ttl_ns;  /* an unused shared snapshot's life; <= 0: no expiry */
    char fleet_advertise[256];   /* the HTTP address the registry publishes; "": the listen one */
    int64_t fleet_visibility_ns; /* a request pending this long on a daemon is taken over */
    int64_t fleet_heartbeat_ns;  /* the registry entry's refresh */
    int64_t fleet_expiry_ns;     /* and its lifetime without one */
    int64_t fleet_grace_ns;      /* a request no live daemon can serve is answered after it */
    int64_t fleet_maxlen;        /* the streams' MAXLEN ~ */
    unsigned char source[PC_SETTINGS_MAX]; /* enum pc_setting_source, by setting */
};

/* Every setting at its default, then every environment variable of the settings table
 * (settings.c: PRECHARGE_HOST, PRECHARGE_HOME, ..., and the seed's OLLAMA_URL,
 * MODEL_PRELOAD_TIMEOUT, HEALTH_CHECK_INTERVAL). Fails with the variable and its value named
 * when one is malformed. */
enum pc_err pc_server_config_from_env(struct pc_server_config *cfg /* OUT */, struct pc_error *err);

/* Apply a JSON config file over cfg (the file overrides the environment; flags override the
 * file). A missing file is fine unless must_exist. err names the file and the key, or the
 * line and column of a syntax error. The keys are the settings table's. */
enum pc_err pc_server_config_load_file(struct pc_server_config *cfg, const char *path,
                                       bool must_exist, struct pc_error *err);

/* The effective configuration: every setting, and where each came from (see
 * pc_settings_to_json). The caller decrefs. */
json_t *pc_server_config_to_json(const struct pc_server_config *cfg);

/* Append a preload of model with the defaults that PRECHARGE_PRELOAD_RETRIES,
 * PRECHARGE_PRELOAD_RETRY_DELAY and PRECHARGE_KEEP_WARM set (pc_settings_finish). */
enum pc_err pc_server_config_add_preload(struct pc_server_config *cfg, const char *model,
                                         struct pc_error *err);

/* Set cfg->home and the directories under it; a leading "~/" is $HOME. */
enum pc_err pc_server_set_home(struct pc_server_config *cfg, const char *home,
                               struct pc_error *err);

/* Parse "host:port" forms into cfg->host and cfg->port. */
enum pc_err pc_server_parse_hostport(const char *s, struct pc_server_config *cfg,
                                     struct pc_error *err);

/* Parse a memory budget into cfg: "auto", a size ("12G", "800MiB", "1073741824"), a share of
 * the available RAM ("75%"), or "0" / "none" for no byte limit. Only a valid value changes
 * cfg. */
enum pc_err pc_server_parse_budget(const char *s, struct pc_server_config *cfg,
                                   struct pc_error *err);

/* Append the directories of a ':'-separated list to cfg's allow-list. */
enum pc_err pc_server_add_model_dirs(const char *list, struct pc_server_config *cfg,
                                     struct pc_error *err);

/* Set the API key: 1 to PC_SERVER_MAX_API_KEY printable ASCII characters, no spaces. */
enum pc_err pc_server_set_api_key(struct pc_server_config *cfg, const char *key,
                                  struct pc_error *err);

/* Set the API key from a file's first line (surrounding white space ignored). */
enum pc_err pc_server_read_api_key_file(struct pc_server_config *cfg, const char *path,
                                        struct pc_error *err);

/* Append the origins of a comma list ("https://app.example, http://localhost:3000", "*") to
 * the CORS allow-list. A trailing '/' is dropped. */
enum pc_err pc_server_add_cors_origins(const char *list, struct pc_server_config *cfg,
                                       struct pc_error *err);

/* Parse the idle connection timeout ("30s", "2m", "45"; whole seconds up to a day; "0": none)
 * into cfg. */
enum pc_err pc_server_parse_connection_timeout(const char *s, struct pc_server_config *cfg,
                                               struct pc_error *err);

/* PC_OK when cfg may listen where it says: a loopback address, or any address with an API key
 * or insecure set. Else PC_ERR_INVALID naming the address and the options. */
enum pc_err pc_server_config_check_exposure(const struct pc_server_config *cfg,
                                            struct pc_error *err);

struct pc_server;

/* Start serving (after pc_server_config_check_exposure). The server owns its pool. */
enum pc_err pc_server_start(const struct pc_server_config *cfg, struct pc_server **out /* OUT */,
                            struct pc_error *err);
int pc_server_port(const struct pc_server *s);

/* Start the preloader on the configured models, in the background, while the server already
 * serves: see preload.h. A failed preload is logged and retried; it never stops the daemon.
 * Call at most once. */
enum pc_err pc_server_preload(struct pc_server *s, struct pc_error *err);
void pc_server_stop(struct pc_server *s);

#endif
