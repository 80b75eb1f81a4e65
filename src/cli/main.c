/* main.c - the precharge command: dispatch to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_store.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"serve", pc_cmd_serve, "start the daemon (Ollama-compatible API on 127.0.0.1:11435)"},
    {"run", pc_cmd_run, "run a model in this process: answer PROMPT, or chat"},
    {"ps", pc_cmd_ps, "list the models that the daemon holds in memory"},
    {"stop", pc_cmd_stop, "unload a model from the daemon"},
    {"load", pc_cmd_load, "load (or --preload) a model into the daemon's pool"},
    {"unload", pc_cmd_unload, "unload a model now, or when its last request ends"},
    {"pin", pc_cmd_pin, "keep a model loaded and never evict it (--off to unpin)"},
    {"precharge", pc_cmd_precharge, "prefill a model with a context before it is needed"},
    {"snapshots", pc_cmd_snapshots, "list the precharged contexts the daemon keeps"},
    {"config", pc_cmd_config, "print the effective configuration (environment, file, flags)"},
    {"pull", pc_cmd_pull, "download a model of the catalog into the store, verified"},
    {"model", pc_cmd_model, "the catalog: list, info, select (and the store's commands)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: precharge COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'precharge COMMAND --help' tells more. precharge %s\n", PC_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return PC_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return PC_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("precharge %s\n", PC_VERSION);
        return PC_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    pc_cli_error("unknown command \"%s\"", cmd);
    usage(stderr);
    return PC_EXIT_USAGE;
}
