/* cli.h - the precharge command's subcommands. Each returns the process exit status. */
#ifndef PC_CLI_H
#define PC_CLI_H

#include <stddef.h>

/* Exit statuses: 0 success, 1 the operation failed, 2 the command line was wrong. */
#define PC_EXIT_OK 0
#define PC_EXIT_FAIL 1
#define PC_EXIT_USAGE 2

int pc_cmd_serve(int argc, char **argv);
int pc_cmd_run(int argc, char **argv);
int pc_cmd_ps(int argc, char **argv);
int pc_cmd_stop(int argc, char **argv);
int pc_cmd_model(int argc, char **argv);
int pc_cmd_precharge(int argc, char **argv);
int pc_cmd_snapshots(int argc, char **argv);
int pc_cmd_load(int argc, char **argv);
int pc_cmd_unload(int argc, char **argv);
int pc_cmd_pin(int argc, char **argv);
int pc_cmd_config(int argc, char **argv);

/* `serve`'s configuration: the environment, then the config file, then the flags, through the
 * settings table; the log level applied. Returns 0, 1 after printing the help, or -1 after
 * printing what is wrong. */
struct pc_server_config;
int pc_serve_configure(int argc, char **argv, struct pc_server_config *cfg /* OUT */);

/* The daemon's base URL ("http://127.0.0.1:11435"), from PRECHARGE_HOST as the daemon reads
 * it. Returns 0, or -1 after printing why. */
int pc_cli_daemon_url(char *out, size_t size);

/* Call the daemon's API (PRECHARGE_HOST) with an optional JSON body. Returns the parsed reply,
 * which the caller decrefs, or NULL after printing why (the daemon's own error when it sent
 * one). Needs <jansson.h>. */
struct json_t;
struct json_t *pc_cli_call(const char *method, const char *path, const char *body);

/* The headers of a request to the daemon: Content-Type: application/json, and
 * "Authorization: Bearer $PRECHARGE_API_KEY" when that is set. The caller frees them with
 * curl_slist_free_all; NULL when memory ran out. Needs <curl/curl.h>. */
struct curl_slist;
struct curl_slist *pc_cli_headers(void);

/* $PRECHARGE_HOME, or ~/.precharge. Returns 0, or -1 when it does not fit. */
int pc_cli_home(char *out, size_t size);

/* The catalog as the CLI sees it: embedded, then catalog_file or $PRECHARGE_HOME/catalog.json,
 * then $PRECHARGE_HOME/models. Warnings go to stderr; NULL after printing why. Free it with
 * pc_catalog_free. */
struct pc_catalog *pc_cli_catalog(const char *catalog_file);

/* "precharge: " + message on stderr. */
void pc_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
