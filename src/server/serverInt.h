/* serverInt.h - what the server's route files share. */
#ifndef PC_SERVER_INT_H
#define PC_SERVER_INT_H

#include <pthread.h>
#include <stdbool.h>

#include <jansson.h>

#include "../fleet/fleet.h"
#include "../precharge/events.h"
#include "../precharge/precharge.h"
#include "../precharge/snapshot.h"
#include "http.h"
#include "metrics_api.h"
#include "queue.h"
#include "server.h"
#include "storewatch.h"
#include "updatecheck.h"

struct pc_server {
    struct pc_server_config cfg;
    struct pc_pool *pool;
    struct pc_events *events;
    struct pc_snapstore *snapshots;
    struct pc_precharger *precharger;
    struct pc_http *http;
    struct pc_preloader *preloader; /* made at start; its threads run from pc_server_preload */
    struct pc_ollama *remote;       /* the ollama provider; NULL when OLLAMA_URL is "off" */
    struct pc_queue *queue;         /* inference requests waiting, per model */
    struct pc_server_metrics metrics;
    struct pc_precharge_provider remote_precharge; /* the precharger's way to it */
    struct pc_updatecheck *updatecheck;            /* PRECHARGE_UPDATE_CHECK; NULL: off */
    struct pc_storewatch *storewatch;              /* the models directory's comings and goings */
    struct pc_fleet_snaps *snapshare; /* the shared snapshot tier (snapshare.c); NULL: off */
    struct pc_fleet *fleet;           /* the Redis fleet; NULL when redis is off */
};

extern const struct pc_http_route pc_ollama_routes[];
extern const struct pc_http_route pc_ollama_model_routes[];
extern const struct pc_http_route pc_openai_routes[];
extern const struct pc_http_route pc_responses_routes[];
extern const struct pc_http_route pc_embed_routes[];
extern const struct pc_http_route pc_precharge_routes[];
extern const struct pc_http_route pc_preload_routes[];
extern const struct pc_http_route pc_remote_routes[];
extern const struct pc_http_route pc_metrics_routes[];
extern const struct pc_http_route pc_fleet_routes[];

/* Every table above and the pool's and the store's, in the order they are matched; NULL-ended. */
extern const struct pc_http_route *const pc_server_routes[];

/* The fleet (fleet_api.c): join it when cfg.redis_url is set, once the HTTP port is known (the
 * registry publishes the address). */
enum pc_err pc_server_fleet_start(struct pc_server *s, struct pc_error *err);

/* The fleet's bus submits a PrechargeRequested's data through the HTTP API's parse
 * (precharge_api.c): see pc_fleet_config.submit. user is the server. */
enum pc_err pc_server_fleet_submit(void *user, json_t *data, const char *correlation_id,
                                   struct pc_error *err);

/* A request's "fleet" query argument (1, true, 0, false) in *on; -1 with a 400 in reply when it
 * is something else, or when it asks for the fleet and the daemon has none. */
int pc_server_fleet_param(const struct pc_http_req *req, bool *on, struct pc_http_reply *reply);

/* The ollama provider (remote.c): start it on cfg.ollama_url. */
enum pc_err pc_server_remote_start(struct pc_server *s, struct pc_error *err);

/* Whether name is a model of the remote server and not of the local store; canon gets the
 * server's spelling. */
bool pc_server_remote_owns(struct pc_server *s, const char *name, char canon[256] /* OUT */);

/* If the request's "model" is the remote server's, proxy the request there (its status, type
 * and streamed body as they come) and return true; else false, with reply untouched. */
bool pc_server_remote_proxy(const struct pc_http_req *req, struct pc_http_reply *reply);

/* Append the remote server's models that the local store does not have to a /api/tags list,
 * with "provider": "ollama" and "available". */
void pc_server_remote_tags(struct pc_server *s, json_t *models);

/* The same models as OpenAI's model objects ({id, object, created, owned_by: "ollama",
 * provider, available}), appended to data; or the one named name (NULL when it is not one of
 * them; the caller decrefs). */
void pc_server_remote_openai_models(struct pc_server *s, json_t *data);
json_t *pc_server_remote_openai_model(struct pc_server *s, const char *name);

/* Append the models loaded on the remote server (its /api/ps, as last polled, with "provider":
 * "ollama") to a /api/ps list. */
void pc_server_remote_ps(struct pc_server *s, json_t *models);

/* If name is the remote provider's model, its lifecycle state in *state (unavailable while the
 * server is, active while a proxied request runs, precharged while its /api/ps lists it, else
 * loading or failed while the preloader's warm-up of it is under way or has failed, else
 * pretrained) and true; else false. */
bool pc_server_remote_state(struct pc_server *s, const char *name, enum pc_model_state *state);

/* PRECHARGE_UPDATE_CHECK: off, daily, weekly, or a duration. */
enum pc_err pc_server_parse_update_check(const char *s, struct pc_server_config *cfg,
                                         struct pc_error *err);
json_t *pc_server_show_update_check(const struct pc_server_config *cfg);

/* The catalog the daemon pulls from: the embedded one, <home>/catalog.json, and the store. */
struct pc_catalog;
enum pc_err pc_server_load_catalog(const char *models_dir, struct pc_catalog **out /* OUT */,
                                   struct pc_error *err);

/* Whether the remote provider's server holds name loaded, asked now (its /api/ps): 1 yes, 0 no,
 * -1 unknown (the server is down, or name is not the provider's). */
int pc_server_remote_loaded_now(struct pc_server *s, const char *name);

/* If id is the remote provider's model: ask its server to load it with keep_alive ("0"
 * unloads, "-1" keeps it, NULL: the server's default), set *rc to how that went and return
 * true; canon gets the server's spelling. False when id is not the provider's. */
bool pc_server_remote_keep(struct pc_server *s, const char *id, const char *keep_alive,
                           char canon[256] /* OUT */, enum pc_err *rc /* OUT */,
                           struct pc_error *err);

/* The precharger's hooks into the ollama provider (they find s->remote when they run). */
void pc_server_remote_precharge(struct pc_server *s, struct pc_precharge_provider *out /* OUT */);

/* A keep-alive in ns as Ollama takes it: "-1" for ever (ns < 0), else "<ms>ms". */
const char *pc_server_keep_alive_text(int64_t ns, char buf[32]);

/* This daemon's default keep-alive (PRECHARGE_KEEP_ALIVE) as Ollama takes it: what a remote
 * model that is not pinned is given, said each time, because a server may keep a model's
 * earlier keep_alive -1 when a request names none. */
const char *pc_server_remote_default_keep(const struct pc_server *s, char buf[32]);

/* The values of the settings table's custom settings (settings.c): each parse takes the text
 * of the environment, the file or a flag and changes cfg only when it is valid; each show gives
 * the value as `precharge config` prints it (a new reference). */
typedef enum pc_err (*pc_server_parse_fn)(const char *s, struct pc_server_config *cfg,
                                          struct pc_error *err);
/* A file value that is a list: one string (items separated by sep), or a list of strings, each
 * one item; each string goes to add. */
enum pc_err pc_server_list_from_json(json_t *v, char sep, struct pc_server_config *cfg,
                                     pc_server_parse_fn add, struct pc_error *err);
json_t *pc_server_show_host(const struct pc_server_config *cfg);
enum pc_err pc_server_parse_home(const char *s, struct pc_server_config *cfg, struct pc_error *err);
json_t *pc_server_show_home(const struct pc_server_config *cfg);
json_t *pc_server_show_budget(const struct pc_server_config *cfg);
enum pc_err pc_server_parse_eviction(const char *s, struct pc_server_config *cfg,
                                     struct pc_error *err);
json_t *pc_server_show_eviction(const struct pc_server_config *cfg);
enum pc_err pc_server_add_model_dir_flag(const char *dir, struct pc_server_config *cfg,
                                         struct pc_error *err);
/* The file's "model_dirs": a list of directories, or one ':'-separated list. */
enum pc_err pc_server_model_dirs_from_json(json_t *v, struct pc_server_config *cfg,
                                           struct pc_error *err);
void pc_server_clear_model_dirs(struct pc_server_config *cfg);
json_t *pc_server_show_model_dirs(const struct pc_server_config *cfg);
/* A comma list of model names, each added as pc_server_config_add_preload does. */
enum pc_err pc_server_add_preloads(const char *list, struct pc_server_config *cfg,
                                   struct pc_error *err);
/* The file's "preload": names or specs (pc_preload_spec_from_json). */
enum pc_err pc_server_preloads_from_json(json_t *v, struct pc_server_config *cfg,
                                         struct pc_error *err);
void pc_server_clear_preloads(struct pc_server_config *cfg);
json_t *pc_server_show_preloads(const struct pc_server_config *cfg);
enum pc_err pc_server_parse_keep_warm(const char *s, struct pc_server_config *cfg,
                                      struct pc_error *err);
json_t *pc_server_show_keep_warm(const struct pc_server_config *cfg);
enum pc_err pc_server_parse_log_level(const char *s, struct pc_server_config *cfg,
                                      struct pc_error *err);
json_t *pc_server_show_log_level(const struct pc_server_config *cfg);
enum pc_err pc_server_parse_llama_log(const char *s, struct pc_server_config *cfg,
                                      struct pc_error *err);
json_t *pc_server_show_llama_log(const struct pc_server_config *cfg);
enum pc_err pc_server_parse_api_key(const char *s, struct pc_server_config *cfg,
                                    struct pc_error *err);
json_t *pc_server_show_api_key(const struct pc_server_config *cfg); /* "(set)", never the key */
enum pc_err pc_server_parse_api_key_file(const char *s, struct pc_server_config *cfg,
                                         struct pc_error *err);
json_t *pc_server_show_api_key_file(const struct pc_server_config *cfg);
/* The file's "cors_origins": a list of origins, or one comma list. */
enum pc_err pc_server_cors_origins_from_json(json_t *v, struct pc_server_config *cfg,
                                             struct pc_error *err);
void pc_server_clear_cors_origins(struct pc_server_config *cfg);
json_t *pc_server_show_cors_origins(const struct pc_server_config *cfg);
json_t *pc_server_show_connection_timeout(const struct pc_server_config *cfg);
/* snapshare.c: open the shared snapshot tier when redis and redis_snapshots are set, and put it
 * behind the snapshot store's disk; PC_OK with nothing done when they are not. */
enum pc_err pc_server_snapshare_start(struct pc_server *s, struct pc_error *err);
void pc_server_snapshare_stop(struct pc_server *s);
/* A model was loaded as name: share its snapshots when it is the store's file of that name and
 * the manifest records its sha256; else say in the log why they are not shared. */
void pc_server_snapshare_model(struct pc_server *s, const char *name, struct pc_model *m);

/* config_fleet.c: "redis" is a Redis URL (checked now, so that a typo stops the start) or "",
 * "off", "none": no fleet. Shown with its password hidden. */
enum pc_err pc_server_parse_redis(const char *s, struct pc_server_config *cfg,
                                  struct pc_error *err);
json_t *pc_server_show_redis(const struct pc_server_config *cfg);

/* Rewrite the {"error": "..."} in reply, made by the shared helpers, into OpenAI's error object
 * (type from the status, code model_not_found for a 404), with param when it is known. */
void pc_openai_error(struct pc_http_reply *reply, const char *param);

/* The http layer's refusal_shape: under /v1, an unknown route (404, code "unknown_url"), a
 * wrong method (405, "method_not_allowed") and the guard's refusals (401, 403) answer OpenAI's
 * error object, as every /v1 error does. */
void pc_openai_refusal_shape(const char *path, struct pc_http_reply *reply);

/* Parse a request body as a JSON object. On failure fills reply with a 400 naming the problem
 * and returns NULL. The caller owns the result (json_decref). */
json_t *pc_req_parse_object(const struct pc_http_req *req, struct pc_http_reply *reply);

/* Read an optional field of one type; 0 on success (absent leaves *out as it was), or -1 with a
 * 400 in reply naming the field. */
int pc_req_string(json_t *obj, const char *field, const char **out, struct pc_http_reply *reply);
int pc_req_bool(json_t *obj, const char *field, bool *out, struct pc_http_reply *reply);

/* The required, non-empty string field "model" (or another name); 0, or -1 with a 400. */
int pc_req_model(json_t *obj, const char **out, struct pc_http_reply *reply);
int pc_req_model_named(json_t *obj, const char *field, const char **out,
                       struct pc_http_reply *reply);

/* Every field of obj that is not null must be one of known[0..n): another is a 400 naming it and
 * route ("field \"x\" is not a field of /api/show"), rather than dropped as Go's decoder drops it
 * in Ollama. 0, or -1 with the 400 in reply. */
int pc_req_known_fields(json_t *obj, const char *const *known, size_t n, const char *route,
                        struct pc_http_reply *reply);

/* The first field of obj, not null, that is not one of known[0..n); NULL when there is none. */
const char *pc_req_unknown_field(json_t *obj, const char *const *known, size_t n);

/* The model a request names: "model", or Ollama's older "name". NULL with a 400 in reply. */
const char *pc_req_model_or_name(json_t *obj, struct pc_http_reply *reply);

/* Append before, o serialized, and after to out (a streamed NDJSON line, an SSE event). Takes
 * ownership of o. False when o is NULL or memory ran out. */
bool pc_append_json(struct pc_buf *out, const char *before, json_t *o, const char *after);

/* Serialize, take ownership of o, and reply with it. */
void pc_reply_json_value(struct pc_http_reply *r, int status, json_t *o);

/* RFC 3339 "now", for created_at fields. buf needs 40 bytes. */
const char *pc_now_rfc3339(char *buf, size_t size);

#endif
