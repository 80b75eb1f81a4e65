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
            "  --memory-budget B   bytes for resident models: 12G, 75%%, auto, none\n"
            "                      (PRECHARGE_MEMORY_BUDGET; auto: available RAM less headroom)\n"
            "  --eviction POLICY   who makes room: lru|lfu|fifo (PRECHARGE_EVICTION; lru)\n"
            "  --model-dir DIR     allow loading models by path from DIR (repeatable;\n"
            "                      PRECHARGE_MODEL_DIRS, ':'-separated; none)\n"
            "  --ctx N             context window per model (PRECHARGE_CONTEXT_LENGTH; 4096)\n"
            "  --threads N         inference threads (PRECHARGE_THREADS; all cores)\n"
            "  --preload MODEL     load MODEL at start (repeatable)\n"
            "  --no-repack         keep weights as in the file (less RAM, slower prefill)\n"
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

int pc_cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
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
        {NULL, 0, NULL, 0},
    };
    struct pc_server_config cfg;
    struct pc_error err = {0};
    const char *llama_log = getenv("PRECHARGE_LLAMA_LOG");
    const char *level = getenv("PRECHARGE_LOG_LEVEL");
    long n;
    const char *preload[16];
    size_t n_preload = 0;
    bool dirs_from_flags = false;
    char dir[PATH_MAX];

    if (level != NULL && *level != '\0' && apply_log_level(level) != 0)
        return PC_EXIT_USAGE;
    if (pc_server_config_from_env(&cfg, &err) != PC_OK) {
        pc_cli_error("%s", err.msg);
        return PC_EXIT_USAGE;
    }
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'H':
            if (pc_server_parse_hostport(optarg, &cfg, &err) != PC_OK) {
                pc_cli_error("--host: %s", err.msg);
                return PC_EXIT_USAGE;
            }
            break;
        case 'd':
            if (pc_server_set_home(&cfg, optarg, &err) != PC_OK) {
                pc_cli_error("--home: %s", err.msg);
                return PC_EXIT_USAGE;
            }
            break;
        case 'k':
            if (pc_duration_parse(optarg, &cfg.pool.default_keep_alive_ns, &err) != PC_OK) {
                pc_cli_error("--keep-alive: %s", err.msg);
                return PC_EXIT_USAGE;
            }
            break;
        case 'm':
            if (parse_long("--max-models", optarg, 1, 64, &n) != 0)
                return PC_EXIT_USAGE;
            cfg.pool.max_models = (size_t)n;
            break;
        case 'c':
            if (parse_long("--ctx", optarg, 0, 1 << 22, &n) != 0)
                return PC_EXIT_USAGE;
            cfg.pool.model_params.n_ctx = (uint32_t)n;
            break;
        case 't':
            if (parse_long("--threads", optarg, 0, 1024, &n) != 0)
                return PC_EXIT_USAGE;
            cfg.pool.model_params.n_threads = (int32_t)n;
            break;
        case 'P':
            if (n_preload == sizeof(preload) / sizeof(preload[0])) {
                pc_cli_error("--preload: at most 16 models");
                return PC_EXIT_USAGE;
            }
            preload[n_preload++] = optarg;
            break;
        case 'R':
            cfg.pool.model_params.repack = false;
            break;
        case 'B':
            if (pc_server_parse_budget(optarg, &cfg, &err) != PC_OK) {
                pc_cli_error("--memory-budget: %s", err.msg);
                return PC_EXIT_USAGE;
            }
            break;
        case 'E':
            if (!pc_pool_policy_parse(optarg, &cfg.pool.policy)) {
                pc_cli_error("--eviction: \"%s\" is not lru, lfu or fifo", optarg);
                return PC_EXIT_USAGE;
            }
            break;
        case 'D':
            if (!dirs_from_flags)
                cfg.n_model_dirs = 0; /* the flags replace PRECHARGE_MODEL_DIRS */
            dirs_from_flags = true;
            if (realpath(optarg, dir) == NULL) {
                pc_cli_error("--model-dir: \"%s\": %s", optarg, strerror(errno));
                return PC_EXIT_USAGE;
            }
            if (pc_server_add_model_dirs(dir, &cfg, &err) != PC_OK) {
                pc_cli_error("--model-dir: %s", err.msg);
                return PC_EXIT_USAGE;
            }
            break;
        case 'l':
            if (apply_log_level(optarg) != 0)
                return PC_EXIT_USAGE;
            break;
        case 'L':
            llama_log = optarg;
            break;
        case 'h':
            serve_usage(stdout);
            return PC_EXIT_OK;
        default:
            serve_usage(stderr);
            return PC_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        pc_cli_error("serve: unexpected argument \"%s\"", argv[optind]);
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
    if (pc_server_preload(srv, preload, n_preload, &err) != PC_OK)
        pc_log_error("serve", "%s", err.msg);

    int sig = 0;
    sigwait(&set, &sig);
    pc_log_info("serve", "%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    pc_server_stop(srv);
    return PC_EXIT_OK;
}
