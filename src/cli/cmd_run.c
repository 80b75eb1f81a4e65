/* cmd_run.c - `precharge run MODEL [PROMPT]`: load a model in this process and stream its
 * answer to the terminal, or chat with it line by line. */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/buf.h"
#include "../base/log.h"
#include "../engine/engine.h"
#include "../server/server.h"
#include "../store/store.h"
#include "cli.h"

static atomic_bool interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    atomic_store(&interrupted, true);
}

static void run_usage(FILE *f)
{
    fprintf(f, "usage: precharge run [options] MODEL [PROMPT]\n"
               "  MODEL is a path to a .gguf file or the name of a model in the store.\n"
               "  Without PROMPT, chat: one message per line; /bye or end of input quits.\n"
               "  -n, --num-predict N   tokens to generate at most (default: until the end)\n"
               "  --temperature T       0 for greedy (default 0.8)\n"
               "  --seed N              sampling seed\n"
               "  --ctx N               context window (default 4096)\n"
               "  --threads N           inference threads (default: all cores)\n"
               "  --verbose             print timings after each answer\n");
}

/* A path if it names a file; else a name in the store. */
static int resolve_model(const char *arg, char *path, size_t size)
{
    struct stat st;
    struct pc_error err = {0};
    if (strchr(arg, '/') != NULL || stat(arg, &st) == 0) {
        snprintf(path, size, "%s", arg);
        return 0;
    }
    struct pc_server_config cfg;
    if (pc_server_config_from_env(&cfg, &err) != PC_OK) {
        pc_cli_error("%s", err.msg);
        return -1;
    }
    const char *dirs[PC_SERVER_MAX_MODEL_DIRS];
    for (size_t i = 0; i < cfg.n_model_dirs; i++)
        dirs[i] = cfg.model_dirs[i];
    pc_store_allow_dirs(dirs, cfg.n_model_dirs); /* as the daemon judges store entries */
    if (pc_store_path(cfg.models_dir, arg, path, size, &err) != PC_OK) {
        pc_cli_error("%s", err.msg);
        return -1;
    }
    return 0;
}

/* Generate for one prompt and print it. The answer is appended to answer when not NULL. */
static int answer(struct pc_model *m, const char *prompt, const struct pc_sampling *s, bool verbose,
                  struct pc_buf *answer_out)
{
    struct pc_gen *g = NULL;
    struct pc_error err = {0};
    int32_t *toks = NULL;
    size_t n = 0;

    atomic_store(&interrupted, false);
    if (pc_model_tokenize(m, prompt, &toks, &n, &err) != PC_OK) {
        pc_cli_error("%s", err.msg);
        return -1;
    }
    struct pc_gen_request req = {
        .tokens = toks, .n_tokens = n, .sampling = *s, .cancel = &interrupted};
    if (pc_gen_start(m, &req, &g, &err) != PC_OK) {
        free(toks);
        pc_cli_error("%s", err.msg);
        return -1;
    }
    int rc = 0;
    for (;;) {
        const char *text;
        size_t len;
        bool done;
        if (pc_gen_next(g, &text, &len, &done, &err) != PC_OK) {
            pc_cli_error("%s", err.msg);
            rc = -1;
            break;
        }
        fwrite(text, 1, len, stdout);
        fflush(stdout);
        if (answer_out != NULL)
            pc_buf_append(answer_out, text, len);
        if (done)
            break;
    }
    fputc('\n', stdout);
    if (verbose) {
        const struct pc_gen_stats *st = pc_gen_stats(g);
        fprintf(stderr,
                "prompt: %d tokens (%d cached), %.1f ms, %.1f tokens/s\n"
                "eval:   %d tokens, %.1f ms, %.1f tokens/s\n",
                st->prompt_tokens, st->cached_tokens, (double)st->prompt_ns / 1e6,
                st->prompt_ns
                    ? (st->prompt_tokens - st->cached_tokens) * 1e9 / (double)st->prompt_ns
                    : 0.0,
                st->eval_tokens, (double)st->eval_ns / 1e6,
                st->eval_ns ? st->eval_tokens * 1e9 / (double)st->eval_ns : 0.0);
    }
    pc_gen_free(g);
    free(toks);
    return rc;
}

static int one_shot(struct pc_model *m, const char *text, const struct pc_sampling *s, bool verbose)
{
    struct pc_chat_msg msg = {.role = "user", .content = text};
    char *prompt = NULL;
    struct pc_error err = {0};
    if (pc_model_render_chat(m, &msg, 1, true, &prompt, &err) != PC_OK) {
        pc_cli_error("%s", err.msg);
        return PC_EXIT_FAIL;
    }
    int rc = answer(m, prompt, s, verbose, NULL);
    free(prompt);
    return rc == 0 ? PC_EXIT_OK : PC_EXIT_FAIL;
}

struct history {
    struct pc_chat_msg *msgs;
    size_t n, cap;
};

static bool history_add(struct history *h, const char *role, char *content /* takes */)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        struct pc_chat_msg *p = realloc(h->msgs, cap * sizeof(*p));
        if (p == NULL) {
            free(content);
            return false;
        }
        h->msgs = p;
        h->cap = cap;
    }
    h->msgs[h->n++] = (struct pc_chat_msg){.role = role, .content = content};
    return true;
}

static void history_clear(struct history *h)
{
    for (size_t i = 0; i < h->n; i++)
        free((char *)h->msgs[i].content);
    h->n = 0;
}

static int chat(struct pc_model *m, const struct pc_sampling *s, bool verbose)
{
    struct history h = {0};
    char *line = NULL;
    size_t cap = 0;
    bool tty = isatty(STDIN_FILENO);
    int rc = PC_EXIT_OK;

    for (;;) {
        if (tty) {
            fputs(">>> ", stdout);
            fflush(stdout);
        }
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0)
            break;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        if (strcmp(line, "/bye") == 0)
            break;
        if (strcmp(line, "/clear") == 0) {
            history_clear(&h);
            continue;
        }
        char *copy = strdup(line);
        if (copy == NULL || !history_add(&h, "user", copy)) {
            rc = PC_EXIT_FAIL;
            break;
        }
        char *prompt = NULL;
        struct pc_error err = {0};
        if (pc_model_render_chat(m, h.msgs, h.n, true, &prompt, &err) != PC_OK) {
            pc_cli_error("%s", err.msg);
            rc = PC_EXIT_FAIL;
            break;
        }
        struct pc_buf reply = PC_BUF_INIT;
        int arc = answer(m, prompt, s, verbose, &reply);
        free(prompt);
        if (arc != 0 || !history_add(&h, "assistant", pc_buf_steal(&reply))) {
            pc_buf_free(&reply);
            rc = PC_EXIT_FAIL;
            break;
        }
    }
    history_clear(&h);
    free(h.msgs);
    free(line);
    return rc;
}

int pc_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"num-predict", required_argument, NULL, 'n'},
        {"temperature", required_argument, NULL, 'T'},
        {"seed", required_argument, NULL, 's'},
        {"ctx", required_argument, NULL, 'c'},
        {"threads", required_argument, NULL, 't'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct pc_sampling s = pc_sampling_default();
    struct pc_model_params mp = pc_model_default_params();
    bool verbose = false;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'n':
            s.num_predict = (int32_t)strtol(optarg, &end, 10);
            break;
        case 'T':
            s.temperature = strtof(optarg, &end);
            break;
        case 's':
            s.seed = (uint32_t)strtoul(optarg, &end, 10);
            break;
        case 'c':
            mp.n_ctx = (uint32_t)strtoul(optarg, &end, 10);
            break;
        case 't':
            mp.n_threads = (int32_t)strtol(optarg, &end, 10);
            break;
        case 'v':
            verbose = true;
            break;
        case 'h':
            run_usage(stdout);
            return PC_EXIT_OK;
        default:
            run_usage(stderr);
            return PC_EXIT_USAGE;
        }
        if (end != NULL && (*end != '\0' || end == optarg)) {
            pc_cli_error("run: \"%s\" is not a number", optarg);
            return PC_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        run_usage(stderr);
        return PC_EXIT_USAGE;
    }
    char path[PATH_MAX];
    if (resolve_model(argv[optind], path, sizeof(path)) != 0)
        return PC_EXIT_FAIL;

    const char *level = getenv("PRECHARGE_LOG_LEVEL");
    pc_log_threshold = PC_LOG_WARN;
    if (level != NULL && pc_log_level_parse(level) >= 0)
        pc_log_threshold = (enum pc_log_level)pc_log_level_parse(level);
    const char *llama_log = getenv("PRECHARGE_LLAMA_LOG");
    pc_engine_init(NULL, llama_log ? llama_log : "error");

    struct pc_model *m = NULL;
    struct pc_error err = {0};
    if (pc_model_load(path, &mp, &m, &err) != PC_OK) {
        pc_cli_error("%s", err.msg);
        return PC_EXIT_FAIL;
    }
    if (verbose) {
        const struct pc_model_info *in = pc_model_info(m);
        fprintf(stderr, "loaded %s in %.0f ms: weights %.1f MiB, KV %.1f MiB, compute %.1f MiB\n",
                path, (double)in->load_ns / 1e6, (double)in->weights_bytes / 1048576.0,
                (double)in->kv_bytes / 1048576.0, (double)in->compute_bytes / 1048576.0);
    }
    struct sigaction sa = {.sa_handler = on_sigint};
    sigaction(SIGINT, &sa, NULL);

    int rc;
    if (optind + 1 < argc) {
        struct pc_buf prompt = PC_BUF_INIT;
        for (int i = optind + 1; i < argc; i++) {
            if (i > optind + 1)
                pc_buf_append(&prompt, " ", 1);
            pc_buf_appends(&prompt, argv[i]);
        }
        rc = one_shot(m, prompt.data, &s, verbose);
        pc_buf_free(&prompt);
    } else {
        rc = chat(m, &s, verbose);
    }
    pc_model_free(m);
    return rc;
}
