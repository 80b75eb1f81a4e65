/* settings.h - the daemon's settings, each declared once (environment variable, config-file key,
 * flag, type, range, default, help), and the walks over that table that read the environment,
 * the file and the flags, print `precharge config` and `serve --help`. */
#ifndef PC_SETTINGS_H
#define PC_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "../base/err.h"

struct pc_server_config;

/* How a setting's text becomes a value. */
enum pc_setting_kind {
    PC_SETTING_INT,      /* a whole number from min to max, in a field of width 4 or 8 */
    PC_SETTING_SIZE,     /* bytes ("2G", "800M", "1048576") from min to max (max 0: no limit) */
    PC_SETTING_DURATION, /* pc_duration_parse's nanoseconds ("5m", "250ms", "-1" forever) */
    PC_SETTING_TEXT,     /* a string, at most the field's size less one */
    PC_SETTING_BOOL,     /* 1/0, true/false, yes/no; JSON true/false in the file */
    PC_SETTING_CUSTOM,   /* parse and show do it */
};

/* One setting. The value lives in pc_server_config at offset (all kinds but CUSTOM). */
struct pc_setting {
    const char *key;          /* the config file's key, and its name in `precharge config` */
    const char *env;          /* environment variable; NULL: none */
    const char *flag;         /* serve's long option, without "--"; NULL: none */
    const char *arg;          /* the flag's argument in the help ("N"); NULL: a switch */
    const char *switch_value; /* what a switch sets, as text */
    enum pc_setting_kind kind;
    long long min, max; /* INT and SIZE */
    size_t offset, width;
    const char *dflt; /* the default, read by the same parser; NULL: none ("~/" is $HOME) */
    const char *help; /* one line for `serve --help` */
    /* A list: a value replaces the list that an earlier source gave (the flags replace the
     * file's, which replaces the environment's); repeated flags add to one another. */
    bool list;
    enum pc_err (*parse)(const char *s, struct pc_server_config *cfg, struct pc_error *err);
    /* Optional: a flag's value, where it differs from the environment's (relative paths). */
    enum pc_err (*parse_flag)(const char *s, struct pc_server_config *cfg, struct pc_error *err);
    /* Optional: a file value that is not text (a list). */
    enum pc_err (*parse_json)(json_t *v, struct pc_server_config *cfg, struct pc_error *err);
    json_t *(*show)(const struct pc_server_config *cfg); /* CUSTOM; new reference */
    void (*clear)(struct pc_server_config *cfg);         /* lists: empty it */
};

/* Where a setting's value came from. */
enum pc_setting_source {
    PC_SOURCE_DEFAULT,
    PC_SOURCE_ENV,
    PC_SOURCE_FILE,
    PC_SOURCE_FLAG,
};

/* The table, and its length (at most PC_SETTINGS_MAX). */
extern const struct pc_setting pc_settings[];
extern const size_t pc_settings_count;

/* The setting with this file key, or NULL. */
const struct pc_setting *pc_setting_find(const char *key);

/* Where the setting with this file key got its value in cfg. */
enum pc_setting_source pc_settings_source(const struct pc_server_config *cfg, const char *key);

/* cfg with every setting at its default (sources PC_SOURCE_DEFAULT). */
void pc_settings_defaults(struct pc_server_config *cfg /* OUT */);

/* Apply each set, non-empty environment variable of the table over cfg, in the table's order.
 * err names the variable and gives the value. */
enum pc_err pc_settings_from_env(struct pc_server_config *cfg, struct pc_error *err);

/* Apply one file key's value. err names the key; PC_ERR_INVALID for an unknown key. */
enum pc_err pc_settings_from_file_key(struct pc_server_config *cfg, const char *key, json_t *v,
                                      struct pc_error *err);

/* Apply setting s's flag with its value (NULL for a switch). first: the first time this flag
 * comes on the command line (a list then drops what earlier sources gave). err names the
 * flag. */
enum pc_err pc_settings_from_flag(struct pc_server_config *cfg, const struct pc_setting *s,
                                  const char *value, bool first, struct pc_error *err);

/* What the environment, file and flags leave to be worked out: the defaults of the preloads
 * named without a spec, the core count for max_parallel_preloads. Idempotent. */
void pc_settings_finish(struct pc_server_config *cfg);

/* Every setting's value, then "sources" (each setting's: default, environment, file or flag)
 * and "config_file". The API key is shown as "(set)". The caller decrefs. */
json_t *pc_settings_to_json(const struct pc_server_config *cfg);

/* `serve --help`'s lines for the settings: the flags, then the settings that have none. */
void pc_settings_print_help(FILE *f);

#endif
