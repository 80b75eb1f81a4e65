/* cmd_pool.c - `precharge load`, `precharge unload` and `precharge pin`: the daemon's pool,
 * through its /v1/models API. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli.h"

/* "/v1/models/<id, escaped><suffix>". Returns 0, or -1 after saying why. */
static int model_path(const char *id, const char *suffix, char *out, size_t size)
{
    char *esc = curl_easy_escape(NULL, id, 0);
    if (esc == NULL) {
        pc_cli_error("out of memory");
        return -1;
    }
    int n = snprintf(out, size, "/v1/models/%s%s", esc, suffix);
    curl_free(esc);
    if (n < 0 || (size_t)n >= size) {
        pc_cli_error("model name \"%s\" is too long", id);
        return -1;
    }
    return 0;
}

/* Send body (taken; may be NULL) and print the reply's message. */
static int call_model(const char *method, const char *id, const char *suffix, json_t *body)
{
    char path[1024];
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (model_path(id, suffix, path, sizeof(path)) != 0) {
        free(text);
        return PC_EXIT_FAIL;
    }
    json_t *r = pc_cli_call(method, path, text);
    free(text);
    if (r == NULL)
        return PC_EXIT_FAIL;
    const char *msg = json_string_value(json_object_get(r, "message"));
    if (msg != NULL)
        printf("%s\n", msg);
    json_decref(r);
    return PC_EXIT_OK;
}

static void load_usage(FILE *f)
{
    fprintf(f,
            "usage: precharge load MODEL [--preload] [--keep-alive DURATION] [--path FILE]\n"
            "  --preload            load without counting as a use (LRU/LFU order unchanged)\n"
            "  --keep-alive DUR     how long it stays idle before it is unloaded (-1 forever)\n"
            "  --path FILE          a GGUF inside a directory the daemon allows (--model-dir)\n");
}

int pc_cmd_load(int argc, char **argv)
{
    static const struct option opts[] = {
        {"preload", no_argument, NULL, 'p'},
        {"keep-alive", required_argument, NULL, 'k'},
        {"path", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool preload = false;
    const char *keep_alive = NULL, *file = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            preload = true;
            break;
        case 'k':
            keep_alive = optarg;
            break;
        case 'f':
            file = optarg;
            break;
        case 'h':
            load_usage(stdout);
            return PC_EXIT_OK;
        default:
            load_usage(stderr);
            return PC_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        load_usage(stderr);
        return PC_EXIT_USAGE;
    }
    json_t *body = json_object();
    if (keep_alive != NULL)
        json_object_set_new(body, "keep_alive", json_string(keep_alive));
    if (file != NULL) {
        char *real = realpath(file, NULL); /* the daemon's directory is not ours */
        json_object_set_new(body, "path", json_string(real ? real : file));
        free(real);
    }
    return call_model("POST", argv[optind], preload ? "/preload" : "/load", body);
}

int pc_cmd_unload(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        bool help = argc == 2 && strcmp(argv[1], "--help") == 0;
        fprintf(help ? stdout : stderr,
                "usage: precharge unload MODEL   (now, or when its last request ends)\n");
        return help ? PC_EXIT_OK : PC_EXIT_USAGE;
    }
    return call_model("DELETE", argv[1], "", NULL);
}

int pc_cmd_pin(int argc, char **argv)
{
    bool off = false, help = false, bad = false;
    const char *model = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--off") == 0 || strcmp(argv[i], "--unpin") == 0)
            off = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            help = true;
        else if (argv[i][0] != '-' && model == NULL)
            model = argv[i];
        else
            bad = true; /* a second model or an unknown flag */
    }
    if (help || bad || model == NULL) {
        fprintf(help ? stdout : stderr,
                "usage: precharge pin MODEL [--off]\n"
                "  pin: load MODEL if needed, keep it forever and never evict it\n"
                "  --off: unpin; its keep-alive runs again from now\n");
        return help ? PC_EXIT_OK : PC_EXIT_USAGE;
    }
    return call_model("POST", model, "/pin", json_pack("{s:b}", "pinned", !off));
}
