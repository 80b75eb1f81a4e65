/* cmd_serve.c - `precharge serve`: configure and run the daemon until SIGINT or SIGTERM. */
#include <getopt.h>
#include <stdbool.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/log.h"
#include "../base/sdnotify.h"
#include "../engine/engine.h"
#include "../server/server.h"
#include "../server/settings.h"
#include "cli.h"

static void serve_usage(FILE *f)
{
    fprintf(f, "usage: precharge serve [options]\n"
               "  --config FILE         configuration file (default $PRECHARGE_HOME/config.json);\n"
               "                        flags override it, and it overrides the environment\n");
    pc_settings_print_help(f);
}

#define OPT_CONFIG 'C'
#define OPT_HELP 'h'
#define OPT_SETTING 1000 /* + the setting's index in pc_settings */

/* serve's long options: --config, --help, and each setting's flag. */
static void make_options(struct option *opts /* OUT: PC_SETTINGS_MAX + 3 */)
{
    size_t n = 0;
    opts[n++] = (struct option){"config", required_argument, NULL, OPT_CONFIG};
    opts[n++] = (struct option){"help", no_argument, NULL, OPT_HELP};
    for (size_t i = 0; i < pc_settings_count; i++)
        if (pc_settings[i].flag != NULL)
            opts[n++] = (struct option){pc_settings[i].flag,
                                        pc_settings[i].arg ? required_argument : no_argument, NULL,
                                        OPT_SETTING + (int)i};
    opts[n] = (struct option){NULL, 0, NULL, 0};
}

/* The config file: --config FILE (which must exist), else <home>/config.json if it exists,
 * where home is --home's, else the environment's. */
static int load_config_file(int argc, char **argv, const struct option *opts,
                            struct pc_server_config *cfg)
{
    const char *file = NULL;
    struct pc_error err = {0};
    const struct pc_setting *home = pc_setting_find("home");
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == OPT_CONFIG)
            file = optarg;
        else if (c == OPT_SETTING + (int)(home - pc_settings) &&
                 pc_settings_from_flag(cfg, home, optarg, true, &err) != PC_OK)
            break; /* the second pass reports it */
    }
    opterr = 1;
    char dflt[1100];
    snprintf(dflt, sizeof(dflt), "%s/config.json", cfg->home);
    if (pc_server_config_load_file(cfg, file ? file : dflt, file != NULL, &err) != PC_OK) {
        pc_cli_error("%s", err.msg);
        return -1;
    }
    return 0;
}

int pc_serve_configure(int argc, char **argv, struct pc_server_config *cfg)
{
    struct pc_error err = {0};
    struct option opts[PC_SETTINGS_MAX + 3];
    bool seen[PC_SETTINGS_MAX] = {false};

    make_options(opts);
    if (pc_server_config_from_env(cfg, &err) != PC_OK) {
        pc_cli_error("%s", err.msg);
        return -1;
    }
    if (load_config_file(argc, argv, opts, cfg) != 0)
        return -1;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c >= OPT_SETTING && c < OPT_SETTING + (int)pc_settings_count) {
            size_t i = (size_t)(c - OPT_SETTING);
            if (pc_settings_from_flag(cfg, &pc_settings[i], optarg, !seen[i], &err) != PC_OK) {
                pc_cli_error("%s", err.msg);
                return -1;
            }
            seen[i] = true;
        } else if (c == OPT_HELP) {
            serve_usage(stdout);
            return 1;
        } else if (c != OPT_CONFIG) {
            serve_usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        pc_cli_error("unexpected argument \"%s\"", argv[optind]);
        return -1;
    }
    pc_settings_finish(cfg);
    pc_log_threshold = (enum pc_log_level)pc_log_level_parse(cfg->log_level);
    return 0;
}

int pc_cmd_serve(int argc, char **argv)
{
    struct pc_server_config cfg;
    struct pc_error err = {0};
    int rc = pc_serve_configure(argc, argv, &cfg);
    if (rc != 0)
        return rc > 0 ? PC_EXIT_OK : PC_EXIT_USAGE;
    if (pc_server_config_check_exposure(&cfg, &err) != PC_OK) {
        pc_cli_error("%s", err.msg);
        return PC_EXIT_USAGE;
    }

    /* Signals are taken by sigwait below, so every other thread must block them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    pc_engine_init(NULL, cfg.llama_log);
    struct pc_server *srv = NULL;
    if (pc_server_start(&cfg, &srv, &err) != PC_OK) {
        pc_log_error("serve", "%s", err.msg);
        return PC_EXIT_FAIL;
    }
    const char *fmt = strchr(cfg.host, ':') ? "listening on http://[%s]:%d (models in %s)"
                                            : "listening on http://%s:%d (models in %s)";
    pc_log_info("serve", fmt, cfg.host, pc_server_port(srv), cfg.models_dir);
    if (pc_server_preload(srv, &err) != PC_OK)
        pc_log_error("serve", "%s", err.msg);

    int sig = 0;
    sigwait(&set, &sig);
    pc_log_info("serve", "%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    pc_sd_notify("STOPPING=1");
    pc_server_stop(srv);
    return PC_EXIT_OK;
}
