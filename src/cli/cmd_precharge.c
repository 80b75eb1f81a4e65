/* cmd_precharge.c - `precharge precharge MODEL --system FILE [--wait]` and `precharge
 * snapshots`: ask the daemon to warm a context, and show what it keeps warm. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../base/file.h"
#include "cli.h"

static void precharge_usage(FILE *f)
{
    fprintf(f, "usage: precharge precharge MODEL (--system FILE | --prompt TEXT) [--wait] "
               "[--timeout SECONDS] [--priority high|normal|low] [--key KEY]\n");
}

int pc_cmd_precharge(int argc, char **argv)
{
    static const struct option opts[] = {
        {"system", required_argument, NULL, 's'},   {"prompt", required_argument, NULL, 'p'},
        {"wait", no_argument, NULL, 'w'},           {"timeout", required_argument, NULL, 't'},
        {"priority", required_argument, NULL, 'P'}, {"key", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *system_file = NULL, *prompt = NULL, *priority = "normal", *key = NULL;
    double timeout = 60;
    bool wait = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            system_file = optarg;
            break;
        case 'p':
            prompt = optarg;
            break;
        case 'w':
            wait = true;
            break;
        case 't':
            timeout = strtod(optarg, NULL);
            if (timeout <= 0) {
                pc_cli_error("--timeout: \"%s\" is not a positive number of seconds", optarg);
                return PC_EXIT_USAGE;
            }
            break;
        case 'P':
            priority = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'h':
            precharge_usage(stdout);
            return PC_EXIT_OK;
        default:
            precharge_usage(stderr);
            return PC_EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || (system_file == NULL) == (prompt == NULL)) {
        precharge_usage(stderr);
        return PC_EXIT_USAGE;
    }
    json_t *req = json_pack("{s:s, s:s, s:b, s:f}", "model", argv[optind], "priority", priority,
                            "wait", wait, "timeout", timeout);
    if (key != NULL)
        json_object_set_new(req, "key", json_string(key));
    if (system_file != NULL) {
        char *text = NULL;
        struct pc_error err = {0};
        if (pc_file_read(system_file, 4u << 20, &text, NULL, &err) != PC_OK) {
            pc_cli_error("--system: %s", err.msg);
            json_decref(req);
            return PC_EXIT_FAIL;
        }
        json_object_set_new(req, "context",
                            json_pack("[{s:s, s:s}]", "role", "system", "content", text));
        free(text);
    } else {
        json_object_set_new(req, "prompt", json_string(prompt));
    }
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    json_t *r = body ? pc_cli_call("POST", "/api/precharge", body) : NULL;
    free(body);
    if (r == NULL)
        return PC_EXIT_FAIL;
    char *out = json_dumps(r, JSON_INDENT(2));
    puts(out ? out : "");
    free(out);
    const char *status = json_string_value(json_object_get(r, "status"));
    int rc = status && strcmp(status, "failed") == 0 ? PC_EXIT_FAIL : PC_EXIT_OK;
    json_decref(r);
    return rc;
}

int pc_cmd_snapshots(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        pc_cli_error("usage: precharge snapshots");
        return PC_EXIT_USAGE;
    }
    json_t *r = pc_cli_call("GET", "/api/precharged", NULL);
    if (r == NULL)
        return PC_EXIT_FAIL;
    printf("%-32s %-9s %8s %-5s %10s  %s\n", "MODEL", "CATEGORY", "TOKENS", "TIER", "SIZE",
           "SINCE");
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(r, "precharged"), i, p)
    {
        printf("%-32s %-9s %8lld %-5s %8.1f MB  %s\n",
               json_string_value(json_object_get(p, "model_id")),
               json_string_value(json_object_get(p, "category")),
               (long long)json_integer_value(json_object_get(p, "context_tokens")),
               json_string_value(json_object_get(p, "tier")),
               (double)json_integer_value(json_object_get(p, "bytes")) / 1e6,
               json_string_value(json_object_get(p, "since")));
    }
    json_decref(r);
    return PC_EXIT_OK;
}
