/* cmd_model.c - `precharge model list|info|select`: what exists, what a model is and costs,
 * and which one fits this machine. Tables on a terminal, JSON with --json. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "../base/fmt.h"
#include "../catalog/catalog.h"
#include "../catalog/hw.h"
#include "../catalog/inspect.h"
#include "../catalog/select.h"
#include "../engine/engine.h"
#include "cli.h"
#include "cli_store.h"

#define MIB (1024.0 * 1024.0)

struct model_opts {
    const char *catalog; /* --catalog FILE */
    bool json;
    bool all, cached;
    const char *ram; /* --ram SIZE */
};

static void warn_stderr(void *user, const char *msg)
{
    (void)user;
    fprintf(stderr, "precharge: warning: %s\n", msg);
}

int pc_cli_home(char *out, size_t size)
{
    const char *home = getenv("PRECHARGE_HOME");
    const char *user = getenv("HOME");
    int n = home && *home ? snprintf(out, size, "%s", home)
                          : snprintf(out, size, "%s/.precharge", user ? user : ".");
    return n > 0 && (size_t)n < size ? 0 : -1;
}

struct pc_catalog *pc_cli_catalog(const char *catalog_file)
{
    char home[PATH_MAX], models[PATH_MAX + 8], user[PATH_MAX + 16];
    if (pc_cli_home(home, sizeof(home)) != 0) {
        pc_cli_error("PRECHARGE_HOME is too long");
        return NULL;
    }
    snprintf(models, sizeof(models), "%s/models", home);
    snprintf(user, sizeof(user), "%s/catalog.json", home);
    if (catalog_file != NULL) {
        struct stat st;
        if (stat(catalog_file, &st) != 0) {
            pc_cli_error("--catalog: cannot read \"%s\"", catalog_file);
            return NULL;
        }
    }
    struct pc_catalog_opts o = {.models_dir = models,
                                .user_catalog = catalog_file ? catalog_file : user};
    struct pc_catalog *c = NULL;
    struct pc_error err = {0};
    if (pc_catalog_load(&o, warn_stderr, NULL, &c, &err) != PC_OK) {
        pc_cli_error("%s", err.msg);
        return NULL;
    }
    return c;
}

static int parse_opts(int argc, char **argv, struct model_opts *o, int *first_arg)
{
    static const struct option opts[] = {
        {"catalog", required_argument, NULL, 'c'}, {"json", no_argument, NULL, 'j'},
        {"all", no_argument, NULL, 'a'},           {"cached", no_argument, NULL, 'C'},
        {"ram", required_argument, NULL, 'r'},     {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->catalog = optarg;
            break;
        case 'j':
            o->json = true;
            break;
        case 'a':
            o->all = true;
            break;
        case 'C':
            o->cached = true;
            break;
        case 'r':
            o->ram = optarg;
            break;
        default:
            return -1;
        }
    }
    *first_arg = optind;
    return 0;
}

static json_t *entry_json(const struct pc_catalog_entry *e, bool fits)
{
    static const char *const origins[] = {"embedded", "user", "discovered"};
    json_t *tags = json_array(), *aliases = json_array();
    for (size_t i = 0; i < e->n_tags; i++)
        json_array_append_new(tags, json_string(e->tags[i]));
    for (size_t i = 0; i < e->n_aliases; i++)
        json_array_append_new(aliases, json_string(e->aliases[i]));
    json_t *src = e->source_url[0] ? json_pack("{s:s}", "url", e->source_url)
                  : e->source_repo[0]
                      ? json_pack("{s:s, s:s}", "repo", e->source_repo, "file", e->source_file)
                      : json_null();
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:o, s:b, s:s, s:o, s:o, "
                     "s:s, s:s, s:o, s:b}",
                     "id", e->id, "name", e->name, "family", e->family, "parameters", e->parameters,
                     "quantization", e->quantization, "context_window",
                     (json_int_t)e->context_window, "file_size_mb", (json_int_t)e->file_size_mb,
                     "ram_required_mb", (json_int_t)e->ram_required_mb, "source", src, "sha256",
                     e->sha256[0] ? json_string(e->sha256) : json_null(), "recommended",
                     e->recommended, "description", e->description, "tags", tags, "aliases",
                     aliases, "provider", e->provider, "origin", origins[e->origin], "path",
                     e->path[0] ? json_string(e->path) : json_null(), "fits", fits);
}

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_INDENT(2));
    if (s != NULL)
        puts(s);
    free(s);
    json_decref(o);
}

/* Memory this process may use, from --ram or the probe. */
static int available_ram(const struct model_opts *o, uint64_t *out)
{
    if (o->ram != NULL) {
        if (pc_parse_bytes(o->ram, out) != 0) {
            pc_cli_error("--ram: \"%s\" is not a size (such as 16G or 8192M)", o->ram);
            return -1;
        }
        return 0;
    }
    struct pc_hw hw;
    struct pc_error err = {0};
    if (pc_hw_probe("", &hw, &err) != PC_OK) {
        pc_cli_error("%s", err.msg);
        return -1;
    }
    *out = hw.ram_available;
    return 0;
}

static int model_list(int argc, char **argv)
{
    struct model_opts o = {0};
    int first;
    if (parse_opts(argc, argv, &o, &first) != 0 || first != argc || (o.all && o.cached)) {
        pc_cli_error("usage: precharge model list [--all | --cached] [--json] [--catalog FILE]");
        return PC_EXIT_USAGE;
    }
    uint64_t ram = 0;
    if (available_ram(&o, &ram) != 0)
        return PC_EXIT_FAIL;
    struct pc_catalog *c = pc_cli_catalog(o.catalog);
    if (c == NULL)
        return PC_EXIT_FAIL;
    uint64_t usable = ram > PC_SELECT_RESERVE ? ram - PC_SELECT_RESERVE : 0;
    json_t *arr = json_array();
    if (!o.json)
        printf("%-24s %-7s %-8s %9s %9s %-6s %s\n", "ID", "PARAMS", "QUANT", "SIZE", "RAM",
               "CACHED", "NAME");
    for (size_t i = 0; i < pc_catalog_count(c); i++) {
        const struct pc_catalog_entry *e = pc_catalog_at(c, i);
        bool cached = e->path[0] != '\0';
        bool fits = e->ram_required_mb == 0 || e->ram_required_mb * MIB <= (double)usable;
        /* By default: what is on disk, and what this machine can run. */
        if ((o.cached && !cached) || (!o.all && !o.cached && !cached && !fits))
            continue;
        if (o.json) {
            json_array_append_new(arr, entry_json(e, fits));
            continue;
        }
        char size[16] = "-", need[16] = "-";
        if (e->file_size_mb)
            pc_fmt_bytes(e->file_size_mb * 1000000ull, size, sizeof(size));
        if (e->ram_required_mb)
            pc_fmt_bytes(e->ram_required_mb * 1048576ull, need, sizeof(need));
        printf("%-24s %-7s %-8s %9s %9s %-6s %s%s\n", e->id, e->parameters, e->quantization, size,
               need, cached ? "yes" : "-", e->name, e->recommended ? " *" : "");
    }
    if (o.json)
        print_json(arr);
    else
        json_decref(arr);
    pc_catalog_free(c);
    return PC_EXIT_OK;
}

static void print_estimate(const char *path, json_t *out)
{
    struct pc_model_params p = pc_model_default_params();
    struct pc_estimate est;
    struct pc_error err = {0};
    if (pc_model_estimate(path, &p, &est, &err) != PC_OK) {
        /* A header that llama.cpp would abort on is refused here too: say so in both forms. */
        if (out == NULL)
            printf("  %-16s %s\n", "memory", err.msg);
        else
            json_object_set_new(out, "memory_error", json_string(err.msg));
        return;
    }
    if (out != NULL) {
        json_object_set_new(
            out, "memory_estimate",
            json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "n_ctx", (json_int_t)p.n_ctx,
                      "weights", (json_int_t)(est.weights_host + est.weights_device), "repack",
                      (json_int_t)est.repack_bytes, "kv", (json_int_t)(est.kv_host + est.kv_device),
                      "compute", (json_int_t)(est.compute_host + est.compute_device), "host",
                      (json_int_t)est.host_total, "device", (json_int_t)est.device_total));
        return;
    }
    printf("  %-16s %.0f MiB host + %.0f MiB device at %u tokens of context\n", "memory",
           (double)est.host_total / MIB, (double)est.device_total / MIB, p.n_ctx);
    printf("  %-16s weights %.0f MiB (repacked copy %.0f MiB), KV %.0f MiB, compute %.0f MiB\n", "",
           (double)(est.weights_host + est.weights_device) / MIB, (double)est.repack_bytes / MIB,
           (double)(est.kv_host + est.kv_device) / MIB,
           (double)(est.compute_host + est.compute_device) / MIB);
}

static void print_gguf(const struct pc_gguf_info *g, json_t *out)
{
    if (out != NULL) {
        json_object_set_new(
            out, "gguf",
            json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "arch",
                      g->arch, "name", g->name, "quantization", g->quantization, "parameters",
                      (json_int_t)g->n_params, "tensor_bytes", (json_int_t)g->tensor_bytes,
                      "context_length", (json_int_t)g->context_length, "layers",
                      (json_int_t)g->n_layer, "heads", (json_int_t)g->n_head, "kv_heads",
                      (json_int_t)g->n_head_kv, "embedding", (json_int_t)g->n_embd, "vocab",
                      (json_int_t)g->n_vocab, "chat_template", g->has_chat_template));
        return;
    }
    char size[16];
    printf("  %-16s %s\n", "architecture", g->arch);
    printf("  %-16s %s (%llu)\n", "parameters", g->parameter_size, (unsigned long long)g->n_params);
    printf("  %-16s %s\n", "quantization", g->quantization);
    printf("  %-16s %u\n", "context length", g->context_length);
    printf("  %-16s %u layers, %u heads, %u KV heads, embedding %u, vocab %u\n", "shape",
           g->n_layer, g->n_head, g->n_head_kv, g->n_embd, g->n_vocab);
    printf("  %-16s %s\n", "chat template", g->has_chat_template ? "yes" : "no");
    printf("  %-16s %s in tensors\n", "weights", pc_fmt_bytes(g->tensor_bytes, size, sizeof(size)));
}

static int model_info(int argc, char **argv)
{
    struct model_opts o = {0};
    int first;
    if (parse_opts(argc, argv, &o, &first) != 0 || first != argc - 1) {
        pc_cli_error("usage: precharge model info ID|PATH [--json] [--catalog FILE]");
        return PC_EXIT_USAGE;
    }
    const char *arg = argv[first];
    const struct pc_catalog_entry *e = NULL;
    struct pc_catalog *c = NULL;
    const char *path = NULL;
    struct stat st;
    if (strchr(arg, '/') != NULL || (stat(arg, &st) == 0 && S_ISREG(st.st_mode))) {
        path = arg;
    } else {
        struct pc_error err = {0};
        if ((c = pc_cli_catalog(o.catalog)) == NULL)
            return PC_EXIT_FAIL;
        if ((e = pc_catalog_find(c, arg, &err)) == NULL) {
            pc_cli_error("%s", err.msg);
            pc_catalog_free(c);
            return PC_EXIT_FAIL;
        }
        path = e->path[0] ? e->path : NULL;
    }

    struct pc_gguf_info g;
    struct pc_error gerr = {0};
    bool have_file = path != NULL && pc_gguf_inspect(path, &g, &gerr) == PC_OK;
    if (path != NULL && !have_file && e == NULL) {
        pc_cli_error("%s", gerr.msg);
        return PC_EXIT_FAIL;
    }
    pc_engine_init(NULL, "none");
    json_t *out = o.json ? (e ? entry_json(e, true) : json_object()) : NULL;
    if (out != NULL) {
        json_object_del(out, "fits");
        json_object_set_new(out, "verified", json_boolean(e != NULL && e->sha256[0] != '\0'));
        if (path != NULL)
            json_object_set_new(out, "path", json_string(path));
    } else {
        printf("%s\n", e ? e->id : path);
        if (e != NULL) {
            char url[1024] = "";
            pc_catalog_url(e, url, sizeof(url), NULL);
            printf("  %-16s %s\n", "name", e->name);
            printf("  %-16s %s\n", "description", e->description[0] ? e->description : "-");
            printf("  %-16s %s\n", "source", url[0] ? url : "-");
            printf("  %-16s %s\n", "sha256",
                   e->sha256[0] ? e->sha256 : "not verified (the catalog has no checksum)");
            if (e->ram_required_mb > 0)
                printf("  %-16s %u MB download, %u MB RAM\n", "needs", (unsigned)e->file_size_mb,
                       (unsigned)e->ram_required_mb);
            for (size_t i = 0; i < e->n_aliases; i++)
                printf("  %-16s %s\n", i == 0 ? "aliases" : "", e->aliases[i]);
        }
        printf("  %-16s %s\n", "file", path ? path : "not downloaded");
    }
    if (have_file) {
        print_gguf(&g, out);
        print_estimate(path, out);
    }
    if (out != NULL)
        print_json(out);
    pc_catalog_free(c);
    return PC_EXIT_OK;
}

static int model_select(int argc, char **argv)
{
    struct model_opts o = {0};
    int first;
    if (parse_opts(argc, argv, &o, &first) != 0 || first != argc) {
        pc_cli_error("usage: precharge model select [--ram SIZE] [--json] [--catalog FILE]");
        return PC_EXIT_USAGE;
    }
    uint64_t ram = 0;
    if (o.ram == NULL)
        pc_engine_init(NULL, "none"); /* for the GPU probe */
    if (available_ram(&o, &ram) != 0)
        return PC_EXIT_FAIL;
    struct pc_catalog *c = pc_cli_catalog(o.catalog);
    if (c == NULL)
        return PC_EXIT_FAIL;
    const struct pc_catalog_entry *e = NULL;
    char why[512];
    struct pc_error err = {0};
    int rc = PC_EXIT_OK;
    if (pc_select_model(c, ram, &e, why, sizeof(why), &err) != PC_OK) {
        pc_cli_error("%s", err.msg);
        rc = PC_EXIT_FAIL;
    } else if (o.json) {
        print_json(json_pack("{s:s, s:s, s:I}", "id", e->id, "why", why, "available_bytes",
                             (json_int_t)ram));
    } else {
        printf("%s\n  %s\n", e->id, why);
    }
    pc_catalog_free(c);
    return rc;
}

int pc_cmd_model(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } subs[] = {
        {"list", model_list},
        {"info", model_info},
        {"select", model_select},
        {"download", pc_cmd_model_download},
        {"remove", pc_cmd_model_remove},
        {"cache", pc_cmd_model_cache},
        {"verify", pc_cmd_model_verify},
        {"update", pc_cmd_model_update},
    };
    if (argc < 2) {
        pc_cli_error(
            "usage: precharge model list|info|select|download|remove|cache|verify|update ...");
        return PC_EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
        if (strcmp(argv[1], subs[i].name) == 0)
            return subs[i].run(argc - 1, argv + 1);
    pc_cli_error("unknown subcommand \"model %s\"", argv[1]);
    return PC_EXIT_USAGE;
}
