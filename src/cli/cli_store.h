/* cli_store.h - the store's commands: `precharge pull`, `precharge model download|remove|cache`.
 * Each takes argv[0] as its own name and returns the process exit status (cli.h). */
#ifndef PC_CLI_STORE_H
#define PC_CLI_STORE_H

#include <stdbool.h>
#include <stddef.h>

/* `precharge pull ID` and `precharge model download ID`: the same command. */
int pc_cmd_pull(int argc, char **argv);
int pc_cmd_model_download(int argc, char **argv);

/* `precharge model remove ID... [--force]`: refuses a model that the running daemon has loaded,
 * unless --force (which asks the daemon to unload it first). */
int pc_cmd_model_remove(int argc, char **argv);

/* `precharge model verify [--json] (ID... | --all)`: hash each model again and compare with the
 * manifest and the catalog; 1 when one differs. */
int pc_cmd_model_verify(int argc, char **argv);

/* `precharge model update [--check] [--json] (ID... | --all)`: ask each source whether the file
 * changed, and download the new revision beside the old one (--check: only say). */
int pc_cmd_model_update(int argc, char **argv);

/* `precharge model cache [--usage]`, `cache clean [--older-than 30d]`,
 * `cache prune --max-size 10G`, `cache clear`. */
int pc_cmd_model_cache(int argc, char **argv);

/* $PRECHARGE_HOME/models into out; -1 (after printing why) when it does not fit. */
int pc_cli_models_dir(char *out, size_t size);

/* The store logs what a daemon's log should say; on the command line the progress says it:
 * warnings and worse, unless PRECHARGE_LOG_LEVEL says otherwise. */
void pc_cli_quiet_log(void);

struct pc_catalog;

/* `model verify` and `model update`: MODEL... or --all, --json (the default off a terminal),
 * and --check when with_check. */
struct pc_cli_per_model {
    const char *models;         /* the store */
    struct pc_catalog *catalog; /* NULL when it could not be read (and need_catalog is false) */
    bool all, json, check;
};

/* Parse the arguments (usage printed for a bad one), then call fn with each model named, or
 * with every model in the store for --all. Returns the exit status: 1 when a call returned
 * non-zero or the store could not be listed. */
int pc_cli_run_per_model(int argc, char **argv, bool with_check, bool need_catalog,
                         void (*usage)(void),
                         int (*fn)(const struct pc_cli_per_model *r, const char *id));

/* The store name for a command-line name: the catalog's id (c may be NULL), or the name itself.
 * -1 after printing why it can be neither. */
int pc_cli_store_id(struct pc_catalog *c, const char *name, char *out, size_t size);

/* The models that the daemon at PRECHARGE_HOST has loaded, as store names. Returns 1 with
 * *names (free with pc_cli_names_free) when a daemon answered, 0 when none answers there, -1
 * (after printing why) when its answer made no sense. url (may be NULL) gets its address. */
int pc_cli_daemon_loaded(char ***names /* OUT */, size_t *n /* OUT */, char *url, size_t size);
void pc_cli_names_free(char **names, size_t n);

/* Ask the daemon to unload a model now. Best effort: 0 when it said yes, else -1. */
int pc_cli_daemon_unload(const char *name);

#endif
