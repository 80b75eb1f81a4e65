/* cmd_serve.c - `precharge serve`: configure and run the daemon until SIGINT or SIGTERM. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/duration.h"
#include "../base/log.h"
#include "../base/sdnotify.h"
#include "../engine/engine.h"
#include "../server/server.h"
#include "cli.h"

static void serve_usage(FILE *f)
{
    fprintf(f,
            "usage: precharge serve [options]\n"
            "  --host HOST:PORT    listen address (PRECHARGE_HOST; default 127.0.0.1:11435)\n"
            "  --home DIR          state directory holding models/ (PRECHARGE_HOME; ~/.precharge)\n"
            "  --keep-alive DUR    default keep-alive (PRECHARGE_KEEP_ALIVE; 5m; -1 forever)\n"
            "  --max-models N      models resident at once (PRECHARGE_MAX_LOADED_MODELS; 3)\n"
            "  --max-queue N       inference requests that may wait for one model; more get\n"
            "                      503 (PRECHARGE_MAX_QUEUE; 512; 0 no limit)\n"
            "  --memory-budget B   bytes for resident models: 12G, 75%%, auto, none\n"
            "                      (PRECHARGE_MEMORY_BUDGET; auto: available RAM less headroom)\n"
            "  --eviction POLICY   who makes room: lru|lfu|fifo (PRECHARGE_EVICTION; lru)\n"
            "  --model-dir DIR     allow loading models by path from DIR (repeatable;\n"
            "                      PRECHARGE_MODEL_DIRS, ':'-separated; none)\n"
            "  --ctx N             context window per model (PRECHARGE_CONTEXT_LENGTH; 4096)\n"
            "  --threads N         inference threads (PRECHARGE_THREADS; all cores)\n"
            "  --config FILE       configuration file (default $PRECHARGE_HOME/config.json);\n"
            "                      flags override it, and it overrides the environment\n"
            "  --preload MODEL     warm MODEL at start (repeatable; PRECHARGE_PRELOAD=a,b)\n"
            "  --preload-timeout MS  bound on each preload attempt (MODEL_PRELOAD_TIMEOUT; 30000)\n"
            "  --health-interval MS  one-token health checks of preloaded models\n"
            "                      (HEALTH_CHECK_INTERVAL; 300000; 0 none)\n"
            "  --no-repack         keep weights as in the file (less RAM, slower prefill)\n"
            "  --api-key KEY       require \"Authorization: Bearer KEY\" (PRECHARGE_API_KEY)\n"
            "  --api-key-file F    the same, the key read from F (PRECHARGE_API_KEY_FILE)\n"
            "  --insecure          allow a non-loopback --host without an API key\n"
            "                      (PRECHARGE_INSECURE=1)\n"
            "  --cors-origin O     let browser pages from origin O call the API (repeatable;\n"
            "                      PRECHARGE_CORS_ORIGINS=a,b; * for any; none)\n"
            "  --max-body SIZE     request body limit (PRECHARGE_MAX_BODY; 8M)\n"
            "  --max-prompt-tokens N  prompt limit in tokens (PRECHARGE_MAX_PROMPT_TOKENS;\n"
            "                      0: the context)\n"
            "  --connection-timeout DUR  close connections idle this long\n"
            "                      (PRECHARGE_CONNECTION_TIMEOUT; 30s; 0 never)\n"
            "  --log-level LEVEL   error|warn|info|debug (PRECHARGE_LOG_LEVEL; info)\n"
            "  --llama-log LEVEL   llama.cpp's own messages: none|error|warn|info|debug "
            "(PRECHARGE_LLAMA_LOG; error)\n");
}

static int parse_long(const char *flag, const char *v, long min, long max, long *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < min || n > max) {
        pc_cli_error("%s: \"%s\" is not a whole number from %ld to %ld", flag, v, min, max);
        return -1;
    }
    *out = n;
    return 0;
}

static int apply_log_level(const char *v)
{
    int level = pc_log_level_parse(v);
    if (level < 0) {
        pc_cli_error("log level \"%s\": use error, warn, info or debug", v);
        return -1;
    }
    pc_log_threshold = (enum pc_log_level)level;
    return 0;
}

/* A flag's value, parsed into cfg by one of the server's parsers. 0, or -1 after printing why. */
static int flag_value(const char *flag, const char *v, struct pc_server_config *cfg,
                      enum pc_err (*parse)(const char *s, struct pc_server_config *cfg,
                                           struct pc_error *err))
{
    struct pc_error err = {0};
    if (parse(v, cfg, &err) == PC_OK)
        return 0;
    pc_cli_error("%s: %s", flag, err.msg);
    return -1;
}

static enum pc_err set_api_key(const char *v, struct pc_server_config *cfg, struct pc_error *err)
{
    return pc_server_set_api_key(cfg, v, err);
}

static enum pc_err read_api_key(const char *v, struct pc_server_config *cfg, struct pc_error *err)
{
    return pc_server_read_api_key_file(cfg, v, err);
}

/* The flags that set one value of cfg through a parser. */
static const struct {
    int c;
    const char *flag;
    enum pc_err (*parse)(const char *s, struct pc_server_config *cfg, struct pc_error *err);
} value_flags[] = {
    {'K', "--api-key", set_api_key},
    {'F', "--api-key-file", read_api_key},
    {'b', "--max-body", pc_server_parse_max_body},
    {'p', "--max-prompt-tokens", pc_server_parse_max_prompt_tokens},
    {'o', "--connection-timeout", pc_server_parse_connection_timeout},
};

static const struct option serve_opts[] = {
    {"host", required_argument, NULL, 'H'},
    {"home", required_argument, NULL, 'd'},
    {"keep-alive", required_argument, NULL, 'k'},
    {"max-models", required_argument, NULL, 'm'},
    {"ctx", required_argument, NULL, 'c'},
    {"threads", required_argument, NULL, 't'},
    {"no-repack", no_argument, NULL, 'R'},
    {"log-level", required_argument, NULL, 'l'},
    {"llama-log", required_argument, NULL, 'L'},
    {"help", no_argument, NULL, 'h'},
    {"preload", required_argument, NULL, 'P'},
    {"memory-budget", required_argument, NULL, 'B'},
    {"eviction", required_argument, NULL, 'E'},
    {"model-dir", required_argument, NULL, 'D'},
    {"config", required_argument, NULL, 'C'},
    {"preload-timeout", required_argument, NULL, 'T'},
    {"health-interval", required_argument, NULL, 'I'},
    {"max-queue", required_argument, NULL, 'Q'},
    {"api-key", required_argument, NULL, 'K'},
    {"api-key-file", required_argument, NULL, 'F'},
    {"insecure", no_argument, NULL, 'S'},
    {"cors-origin", required_argument, NULL, 'O'},
    {"max-body", required_argument, NULL, 'b'},
    {"max-prompt-tokens", required_argument, NULL, 'p'},
    {"connection-timeout", required_argument, NULL, 'o'},
    {NULL, 0, NULL, 0},
};

/* The config file: --config FILE (which must exist), else <home>/config.json if it exists,
 * where home is --home's, else the environment's. */
static int load_config_file(int argc, char **argv, struct pc_server_config *cfg)
{
    const char *file = NULL;
    struct pc_error err = {0};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", serve_opts, NULL)) != -1) {
        if (c == 'C')
            file = optarg;
        else if (c == 'd' && pc_server_set_home(cfg, optarg, &err) != PC_OK)
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

int pc_serve_configure(int argc, char **argv, struct pc_server_config *cfg, const char **llama_log)
{
    struct pc_error err = {0};
    const char *level = getenv("PRECHARGE_LOG_LEVEL");
    long n;
    bool dirs_from_flags = false, preload_from_flags = false, cors_from_flags = false;
    char dir[PATH_MAX];

    *llama_log = getenv("PRECHARGE_LLAMA_LOG");
    if (level != NULL && *level != '\0' && apply_log_level(level) != 0)
        return -1;
    if (pc_server_config_from_env(cfg, &err) != PC_OK) {
        pc_cli_error("%s", err.msg);
        return -1;
    }
    if (load_config_file(argc, argv, cfg) != 0)
        return -1;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", serve_opts, NULL)) != -1) {
        size_t v = 0;
        while (v < sizeof(value_flags) / sizeof(value_flags[0]) && value_flags[v].c != c)
            v++;
        if (v < sizeof(value_flags) / sizeof(value_flags[0])) {
            if (flag_value(value_flags[v].flag, optarg, cfg, value_flags[v].parse) != 0)
                return -1;
            continue;
        }
        switch (c) {
        case 'S':
            cfg->insecure = true;
            break;
        case 'O':
            if (!cors_from_flags)
                cfg->n_cors_origins = 0; /* the flags replace the file's and the environment's */
            cors_from_flags = true;
            if (flag_value("--cors-origin", optarg, cfg, pc_server_add_cors_origins) != 0)
                return -1;
            break;
        case 'H':
            if (pc_server_parse_hostport(optarg, cfg, &err) != PC_OK) {
                pc_cli_error("--host: %s", err.msg);
                return -1;
            }
            break;
        case 'd':
            if (pc_server_set_home(cfg, optarg, &err) != PC_OK) {
                pc_cli_error("--home: %s", err.msg);
                return -1;
            }
            break;
        case 'k':
            if (pc_duration_parse(optarg, &cfg->pool.default_keep_alive_ns, &err) != PC_OK) {
                pc_cli_error("--keep-alive: %s", err.msg);
                return -1;
            }
            break;
        case 'm':
            if (parse_long("--max-models", optarg, 1, 64, &n) != 0)
                return -1;
            cfg->pool.max_models = (size_t)n;
            break;
        case 'Q':
            if (parse_long("--max-queue", optarg, 0, PC_SERVER_MAX_QUEUE, &n) != 0)
                return -1;
            cfg->max_queue = (size_t)n;
            break;
        case 'c':
            if (parse_long("--ctx", optarg, 0, 1 << 22, &n) != 0)
                return -1;
            cfg->pool.model_params.n_ctx = (uint32_t)n;
            break;
        case 't':
            if (parse_long("--threads", optarg, 0, 1024, &n) != 0)
                return -1;
            cfg->pool.model_params.n_threads = (int32_t)n;
            break;
        case 'P':
            if (!preload_from_flags)
                cfg->n_preload = 0; /* the flags replace the file's and the environment's */
            preload_from_flags = true;
            if (pc_server_config_add_preload(cfg, optarg, &err) != PC_OK) {
                pc_cli_error("--preload: %s", err.msg);
                return -1;
            }
            break;
        case 'T':
        case 'I':
            if (parse_long(c == 'T' ? "--preload-timeout" : "--health-interval", optarg, 0,
                           7l * 24 * 3600 * 1000, &n) != 0)
                return -1;
            *(c == 'T' ? &cfg->preload_timeout_ms : &cfg->health_interval_ms) = n;
            break;
        case 'C':
            break; /* read by load_config_file */
        case 'R':
            cfg->pool.model_params.repack = false;
            break;
        case 'B':
            if (pc_server_parse_budget(optarg, cfg, &err) != PC_OK) {
                pc_cli_error("--memory-budget: %s", err.msg);
                return -1;
            }
            break;
        case 'E':
            if (!pc_pool_policy_parse(optarg, &cfg->pool.policy)) {
                pc_cli_error("--eviction: \"%s\" is not lru, lfu or fifo", optarg);
                return -1;
            }
            break;
        case 'D':
            if (!dirs_from_flags)
                cfg->n_model_dirs = 0; /* the flags replace PRECHARGE_MODEL_DIRS */
            dirs_from_flags = true;
            if (realpath(optarg, dir) == NULL) {
                pc_cli_error("--model-dir: \"%s\": %s", optarg, strerror(errno));
                return -1;
            }
            if (pc_server_add_model_dirs(dir, cfg, &err) != PC_OK) {
                pc_cli_error("--model-dir: %s", err.msg);
                return -1;
            }
            break;
        case 'l':
            if (apply_log_level(optarg) != 0)
                return -1;
            break;
        case 'L':
            *llama_log = optarg;
            break;
        case 'h':
            serve_usage(stdout);
            return 1;
        default:
            serve_usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        pc_cli_error("unexpected argument \"%s\"", argv[optind]);
        return -1;
    }
    return 0;
}

int pc_cmd_serve(int argc, char **argv)
{
    struct pc_server_config cfg;
    struct pc_error err = {0};
    const char *llama_log = NULL;
    int rc = pc_serve_configure(argc, argv, &cfg, &llama_log);
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

    pc_engine_init(NULL, llama_log ? llama_log : "error");
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
