/* cmd_store.c - `precharge pull`, `precharge model download|remove|cache`: the store from the
 * command line. Progress is a bar on a terminal and JSON lines otherwise (or with --json). */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "../base/duration.h"
#include "../base/fmt.h"
#include "../base/log.h"
#include "../catalog/catalog.h"
#include "../store/cache.h"
#include "../store/download.h"
#include "../store/store.h"
#include "cli.h"
#include "cli_store.h"
#include "progress.h"

#define EXIT_INTERRUPTED 130

int pc_cli_models_dir(char *out, size_t size)
{
    char home[PATH_MAX];
    if (pc_cli_home(home, sizeof(home)) != 0 ||
        (size_t)snprintf(out, size, "%s/models", home) >= size) {
        pc_cli_error("PRECHARGE_HOME is too long");
        return -1;
    }
    return 0;
}

static void print_json(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s != NULL)
        puts(s);
    free(s);
    fflush(stdout);
}

/* The catalog entry that a name means: an id or an alias. NULL after printing why. */
static const struct pc_catalog_entry *resolve(struct pc_catalog *c, const char *name)
{
    struct pc_error err = {0}, nerr = {0};
    const struct pc_catalog_entry *e = pc_catalog_find(c, name, &err);
    if (e != NULL)
        return e;
    char norm[256];
    if (pc_store_name(name, norm, sizeof(norm), &nerr) != PC_OK) /* say why it can never be */
        pc_cli_error("%s", nerr.msg);
    else
        pc_cli_error("%s", err.msg);
    return NULL;
}

/* ---- pull -------------------------------------------------------------------------------- */

static atomic_bool interrupted;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&interrupted, true);
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

struct pull_ui {
    bool json;
    const char *id;
    struct pc_bar bar;
    double bar_bps; /* the last speed shown */
    bool said_waiting;
    bool verifying; /* a VERIFYING report came since the last download or retry */
};

static void show_progress(void *user, const struct pc_download_progress *p)
{
    struct pull_ui *ui = user;
    char a[32];
    if (ui->json) {
        char *line = pc_download_progress_json(p, true);
        if (line != NULL)
            puts(line);
        free(line);
        fflush(stdout);
        return;
    }
    switch (p->phase) {
    case PC_DL_WAITING:
        if (!ui->said_waiting)
            pc_bar_say(&ui->bar, "%s is being downloaded by another precharge; waiting for it",
                       ui->id);
        ui->said_waiting = true;
        pc_bar_update(&ui->bar, p->completed, p->total, 0, false);
        break;
    case PC_DL_RESUMING:
        pc_bar_say(&ui->bar, "resuming %s from %s", ui->id,
                   pc_bar_bytes(p->completed, a, sizeof(a)));
        break;
    case PC_DL_DOWNLOADING:
        ui->verifying = false;
        if (p->bytes_per_sec > 0)
            ui->bar_bps = p->bytes_per_sec;
        if (p->total > 0 || p->completed > 0) /* not before the server has answered */
            pc_bar_update(&ui->bar, p->completed, p->total, p->bytes_per_sec, false);
        break;
    case PC_DL_RETRYING:
        ui->verifying = false;
        pc_bar_say(&ui->bar, "%s", p->status);
        break;
    case PC_DL_VERIFYING:
        if (!ui->verifying) {
            if (ui->bar.drawn) { /* the finished download's bar stays on screen */
                pc_bar_update(&ui->bar, p->completed, p->total, ui->bar_bps, true);
                pc_bar_end(&ui->bar);
            }
            pc_bar_say(&ui->bar, "%s", p->status);
            ui->verifying = true;
            if (p->completed == p->total)
                break; /* the bytes just downloaded, hashed as they came */
        }
        /* A file in the store, read and hashed again: a bar of its own, kept when done. */
        pc_bar_update(&ui->bar, p->completed, p->total, 0, p->completed == p->total);
        if (p->completed == p->total)
            pc_bar_end(&ui->bar);
        break;
    case PC_DL_DONE:
        pc_bar_say(&ui->bar, "success: %s is in the store (%s)", ui->id,
                   pc_bar_bytes(p->total, a, sizeof(a)));
        break;
    }
}

static void pull_usage(const char *cmd)
{
    fprintf(stderr,
            "usage: precharge %s [options] MODEL\n"
            "  --json               progress as JSON lines (the default when stdout is not a "
            "terminal)\n"
            "  --catalog FILE       a catalog file (default $PRECHARGE_HOME/catalog.json)\n"
            "  --attempts N         tries in a row that may fail (PRECHARGE_DOWNLOAD_ATTEMPTS; "
            "3)\n"
            "  --stall-timeout DUR  no byte for this long is a failure "
            "(PRECHARGE_DOWNLOAD_STALL_TIMEOUT; 30s)\n"
            "  --backoff DUR        wait before the second try, doubled after "
            "(PRECHARGE_DOWNLOAD_BACKOFF; 1s)\n",
            strcmp(cmd, "download") == 0 ? "model download" : cmd);
}

static int duration_flag(const char *flag, const char *v, int64_t *out)
{
    struct pc_error err = {0};
    if (pc_duration_parse(v, out, &err) != PC_OK || *out <= 0) {
        pc_cli_error("%s: \"%s\" is not a duration such as 30s or 500ms", flag, v);
        return -1;
    }
    return 0;
}

static int parse_pull(int argc, char **argv, struct pc_download_opts *o, bool *json,
                      const char **catalog)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"catalog", required_argument, NULL, 'c'},
        {"attempts", required_argument, NULL, 'a'},
        {"stall-timeout", required_argument, NULL, 's'},
        {"backoff", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            *json = true;
            break;
        case 'c':
            *catalog = optarg;
            break;
        case 'a':
            o->attempts = (int)strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || o->attempts < 1 || o->attempts > 100) {
                pc_cli_error("--attempts: \"%s\" is not a number from 1 to 100", optarg);
                return -1;
            }
            break;
        case 's':
            if (duration_flag("--stall-timeout", optarg, &o->stall_ns) != 0)
                return -1;
            break;
        case 'b':
            if (duration_flag("--backoff", optarg, &o->backoff_ns) != 0)
                return -1;
            break;
        default:
            return -1;
        }
    }
    if (optind != argc - 1)
        return -1;
    return 0;
}

void pc_cli_quiet_log(void)
{
    const char *level = getenv("PRECHARGE_LOG_LEVEL");
    int l = level ? pc_log_level_parse(level) : -1;
    pc_log_threshold = l >= 0 ? (enum pc_log_level)l : PC_LOG_WARN;
}

/* The arguments of pc_cli_run_per_model into r; -1 when they are good, else the exit status. */
static int per_model_args(int argc, char **argv, bool with_check, void (*usage)(void),
                          struct pc_cli_per_model *r, int *first)
{
    static const struct option opts[] = {
        {"all", no_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"check", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    r->json = !isatty(STDOUT_FILENO);
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ch == 'a')
            r->all = true;
        else if (ch == 'j')
            r->json = true;
        else if (ch == 'c' && with_check)
            r->check = true;
        else {
            usage();
            return ch == 'h' ? PC_EXIT_OK : PC_EXIT_USAGE;
        }
    }
    *first = optind;
    if (r->all == (optind < argc)) {
        usage();
        return PC_EXIT_USAGE;
    }
    return -1;
}

int pc_cli_run_per_model(int argc, char **argv, bool with_check, bool need_catalog,
                         void (*usage)(void),
                         int (*fn)(const struct pc_cli_per_model *r, const char *id))
{
    struct pc_cli_per_model r = {0};
    char models[PATH_MAX];
    int first = 0, rc = per_model_args(argc, argv, with_check, usage, &r, &first);
    if (rc >= 0)
        return rc;
    pc_cli_quiet_log();
    if (pc_cli_models_dir(models, sizeof(models)) != 0)
        return PC_EXIT_FAIL;
    r.models = models;
    r.catalog = pc_cli_catalog(NULL);
    if (r.catalog == NULL && need_catalog)
        return PC_EXIT_FAIL;
    int bad = 0;
    if (!r.all) {
        for (int i = first; i < argc; i++)
            bad += fn(&r, argv[i]) != 0;
    } else {
        struct pc_cache_model *list = NULL;
        size_t n = 0;
        struct pc_error err = {0};
        if (pc_cache_list(models, &list, &n, &err) != PC_OK) {
            pc_cli_error("%s", err.msg);
            bad = 1;
        }
        for (size_t i = 0; i < n; i++)
            bad += fn(&r, list[i].id) != 0;
        free(list);
    }
    pc_catalog_free(r.catalog);
    return bad ? PC_EXIT_FAIL : PC_EXIT_OK;
}

static bool listed(char **names, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], id) == 0)
            return true;
    return false;
}

struct bulk {
    char **loaded;
    size_t n_loaded;
    bool json;
};

static bool keep_loaded(void *user, const char *id)
{
    struct bulk *b = user;
    bool keep = listed(b->loaded, b->n_loaded, id);
    if (keep && !b->json)
        printf("kept %s: the daemon has it loaded\n", id);
    return keep;
}

int pc_cmd_pull(int argc, char **argv)
{
    pc_cli_quiet_log();
    struct pc_download_opts o;
    struct pc_error err = {0};
    if (pc_download_opts_init(&o, &err) != PC_OK) {
        pc_cli_error("%s", err.msg);
        return PC_EXIT_USAGE;
    }
    bool json = !isatty(STDOUT_FILENO);
    const char *catalog_file = NULL;
    if (parse_pull(argc, argv, &o, &json, &catalog_file) != 0) {
        pull_usage(argv[0]);
        return PC_EXIT_USAGE;
    }
    const char *name = argv[argc - 1];
    char models[PATH_MAX], url[2048];
    if (pc_cli_models_dir(models, sizeof(models)) != 0)
        return PC_EXIT_FAIL;
    struct pc_catalog *c = pc_cli_catalog(catalog_file);
    if (c == NULL)
        return PC_EXIT_FAIL;
    int rc = PC_EXIT_FAIL;
    const struct pc_catalog_entry *e = resolve(c, name);
    if (e == NULL)
        goto out;
    if (pc_catalog_url(e, url, sizeof(url), &err) != PC_OK) {
        if (e->path[0] != '\0' && err.code == PC_ERR_NOT_FOUND) { /* found on disk, no source */
            if (json)
                print_json(json_pack("{s:s}", "status", "success"));
            else
                printf("%s is in the store already: %s\n", e->id, e->path);
            rc = PC_EXIT_OK;
        } else {
            pc_cli_error("%s", err.msg);
        }
        goto out;
    }

    struct pull_ui ui = {.json = json, .id = e->id};
    char label[200];
    snprintf(label, sizeof(label), "pulling %s", e->id);
    pc_bar_init(&ui.bar, stdout, label);
    o.url = url;
    o.models_dir = models;
    o.id = e->id;
    o.sha256 = e->sha256;
    o.progress = show_progress;
    o.user = &ui;
    o.cancel = &interrupted;
    /* PRECHARGE_CACHE_MAX spares what the running daemon has loaded (none when it is down). */
    struct bulk b = {.json = true};
    struct pc_cache_hooks hooks = {keep_loaded, NULL, &b};
    if (o.cache_max > 0 && pc_cli_daemon_loaded(&b.loaded, &b.n_loaded, NULL, 0) < 0) {
        pc_cli_error("PRECHARGE_CACHE_MAX: cannot tell which models the daemon has loaded");
        goto out;
    }
    o.cache_hooks = &hooks;
    catch_signals();
    enum pc_err code = pc_download(&o, &err);
    pc_cli_names_free(b.loaded, b.n_loaded);
    pc_bar_end(&ui.bar);
    if (code == PC_OK) {
        rc = PC_EXIT_OK;
    } else if (code == PC_ERR_CANCELLED) {
        pc_cli_error("interrupted: what arrived is kept, and the same command resumes it");
        rc = EXIT_INTERRUPTED;
    } else {
        if (json)
            print_json(json_pack("{s:s}", "error", err.msg));
        pc_cli_error("%s", err.msg);
    }
out:
    pc_catalog_free(c);
    return rc;
}

int pc_cmd_model_download(int argc, char **argv)
{
    return pc_cmd_pull(argc, argv);
}

/* ---- remove ------------------------------------------------------------------------------ */

int pc_cli_store_id(struct pc_catalog *c, const char *name, char *out, size_t size)
{
    const struct pc_catalog_entry *e = c ? pc_catalog_find(c, name, NULL) : NULL;
    struct pc_error err = {0};
    if (pc_store_name(e ? e->id : name, out, size, &err) != PC_OK) {
        pc_cli_error("%s", err.msg);
        return -1;
    }
    return 0;
}

int pc_cmd_model_remove(int argc, char **argv)
{
    pc_cli_quiet_log();
    static const struct option opts[] = {
        {"force", no_argument, NULL, 'f'},
        {"catalog", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    bool force = false;
    const char *catalog_file = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
        if (ch == 'f')
            force = true;
        else if (ch == 'c')
            catalog_file = optarg;
        else
            optind = argc + 1;
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: precharge model remove [--force] [--catalog FILE] MODEL...\n");
        return PC_EXIT_USAGE;
    }
    char models[PATH_MAX], url[320] = "";
    if (pc_cli_models_dir(models, sizeof(models)) != 0)
        return PC_EXIT_FAIL;
    struct pc_catalog *c = pc_cli_catalog(catalog_file);
    char **loaded = NULL;
    size_t n_loaded = 0;
    int rc = PC_EXIT_OK;
    if (pc_cli_daemon_loaded(&loaded, &n_loaded, url, sizeof(url)) < 0 && !force) {
        pc_cli_error("use --force to remove models all the same");
        rc = PC_EXIT_FAIL;
        goto out;
    }
    for (int i = optind; i < argc; i++) {
        char id[256];
        if (pc_cli_store_id(c, argv[i], id, sizeof(id)) != 0) {
            rc = PC_EXIT_FAIL;
            continue;
        }
        if (listed(loaded, n_loaded, id)) {
            if (!force) {
                pc_cli_error("%s is loaded in the daemon at %s: unload it first (precharge stop "
                             "%s), or use --force",
                             id, url, id);
                rc = PC_EXIT_FAIL;
                continue;
            }
            if (pc_cli_daemon_unload(id) != 0)
                fprintf(stderr, "precharge: warning: the daemon at %s did not unload %s\n", url,
                        id);
        }
        struct pc_error err = {0};
        if (pc_cache_remove(models, id, &err) != PC_OK) {
            pc_cli_error("%s", err.msg);
            rc = PC_EXIT_FAIL;
            continue;
        }
        printf("deleted '%s'\n", id);
    }
out:
    pc_cli_names_free(loaded, n_loaded);
    pc_catalog_free(c);
    return rc;
}

/* ---- cache ------------------------------------------------------------------------------- */

struct cache_opts {
    bool usage, json, force;
    const char *older_than;
    const char *max_size;
};

static void ago(int64_t when, char *buf, size_t size)
{
    if (when <= 0) {
        snprintf(buf, size, "never");
        return;
    }
    double d = difftime(time(NULL), (time_t)when);
    if (d < 120)
        snprintf(buf, size, "just now");
    else if (d < 7200)
        snprintf(buf, size, "%.0f minutes ago", d / 60);
    else if (d < 2 * 86400)
        snprintf(buf, size, "%.0f hours ago", d / 3600);
    else
        snprintf(buf, size, "%.0f days ago", d / 86400);
}

static json_t *model_json(const struct pc_cache_model *m)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:I, s:I, s:I}", "id", m->id, "path", m->path,
                     "size_bytes", (json_int_t)m->size_bytes, "checksum", m->checksum,
                     "downloaded_at", (json_int_t)m->downloaded_at, "last_used",
                     (json_int_t)m->last_used, "use_count", (json_int_t)m->use_count);
}

static int cache_list(const char *models, const struct cache_opts *o)
{
    struct pc_cache_model *list = NULL;
    size_t n = 0;
    struct pc_error err = {0};
    if (pc_cache_list(models, &list, &n, &err) != PC_OK) {
        pc_cli_error("%s", err.msg);
        return PC_EXIT_FAIL;
    }
    uint64_t total = 0;
    json_t *arr = o->json ? json_array() : NULL;
    if (!o->json)
        printf("%-36s %10s  %-16s %6s  %s\n", "ID", "SIZE", "LAST USED", "USES", "CHECKSUM");
    for (size_t i = 0; i < n; i++) {
        total += list[i].size_bytes;
        if (o->json) {
            json_array_append_new(arr, model_json(&list[i]));
            continue;
        }
        char size[32], used[32];
        ago(list[i].last_used, used, sizeof(used));
        printf("%-36s %10s  %-16s %6" PRIu64 "  %.19s\n", list[i].id,
               pc_fmt_bytes(list[i].size_bytes, size, sizeof(size)), used, list[i].use_count,
               list[i].checksum[0] ? list[i].checksum : "not verified");
    }
    if (o->json) {
        print_json(json_pack("{s:s, s:o, s:I}", "models_dir", models, "models", arr, "total_bytes",
                             (json_int_t)total));
    } else {
        char size[32];
        printf("%zu model%s, %s in %s\n", n, n == 1 ? "" : "s",
               pc_fmt_bytes(total, size, sizeof(size)), models);
    }
    free(list);
    return PC_EXIT_OK;
}

static int cache_usage(const char *models, const struct cache_opts *o)
{
    struct pc_cache_usage u;
    struct pc_error err = {0};
    if (pc_cache_usage(models, &u, &err) != PC_OK) {
        pc_cli_error("%s", err.msg);
        return PC_EXIT_FAIL;
    }
    if (o->json) {
        print_json(json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "models_dir",
                             models, "models", (json_int_t)u.models, "model_bytes",
                             (json_int_t)u.model_bytes, "partial_downloads", (json_int_t)u.parts,
                             "partial_bytes", (json_int_t)u.part_bytes, "disk_free_bytes",
                             (json_int_t)u.disk_free, "disk_total_bytes", (json_int_t)u.disk_total,
                             "total_uses", (json_int_t)u.total_uses, "oldest_use",
                             (json_int_t)u.oldest_touch, "newest_use", (json_int_t)u.newest_touch));
        return PC_EXIT_OK;
    }
    char a[32], b[32], c[32], d[32];
    printf("%-20s %s\n", "store", models);
    printf("%-20s %zu (%s)\n", "models", u.models, pc_fmt_bytes(u.model_bytes, a, sizeof(a)));
    printf("%-20s %zu (%s)\n", "partial downloads", u.parts,
           pc_fmt_bytes(u.part_bytes, b, sizeof(b)));
    printf("%-20s %s free of %s", "disk", pc_fmt_bytes(u.disk_free, c, sizeof(c)),
           pc_fmt_bytes(u.disk_total, d, sizeof(d)));
    if (u.disk_total > 0)
        printf(" (the store takes %.1f%%)",
               100.0 * (double)(u.model_bytes + u.part_bytes) / (double)u.disk_total);
    printf("\n%-20s %" PRIu64 "\n", "loads recorded", u.total_uses);
    ago(u.oldest_touch, a, sizeof(a));
    ago(u.newest_touch, b, sizeof(b));
    if (u.models > 0)
        printf("%-20s %s\n%-20s %s\n", "least recent use", a, "most recent use", b);
    return PC_EXIT_OK;
}

static void said_removed(void *user, const struct pc_cache_model *m)
{
    struct bulk *b = user;
    char size[32];
    if (b->json)
        print_json(json_pack("{s:s, s:s, s:I}", "status", "removed", "id", m->id, "size_bytes",
                             (json_int_t)m->size_bytes));
    else
        printf("removed %s (%s)\n", m->id, pc_fmt_bytes(m->size_bytes, size, sizeof(size)));
}

static int cache_bulk(const char *what, const char *models, const struct cache_opts *o)
{
    int64_t age = 0;
    uint64_t max = 0;
    if (strcmp(what, "clean") == 0 && o->older_than != NULL &&
        (age = pc_cache_parse_age(o->older_than)) <= 0) {
        pc_cli_error("--older-than: \"%s\" is not an age such as 30d, 12h or 2w", o->older_than);
        return PC_EXIT_USAGE;
    }
    if (strcmp(what, "prune") == 0 &&
        (o->max_size == NULL || pc_parse_bytes(o->max_size, &max) != 0)) {
        pc_cli_error("prune needs --max-size SIZE, such as 10G or 500M");
        return PC_EXIT_USAGE;
    }
    struct bulk b = {.json = o->json};
    if (!o->force && pc_cli_daemon_loaded(&b.loaded, &b.n_loaded, NULL, 0) < 0) {
        pc_cli_error("use --force to go on without knowing which models are loaded");
        return PC_EXIT_FAIL;
    }
    struct pc_cache_hooks hooks = {keep_loaded, said_removed, &b};
    struct pc_cache_freed f = {0};
    struct pc_error err = {0};
    enum pc_err rc;
    if (strcmp(what, "clean") == 0)
        rc = pc_cache_clean(models, age, &hooks, &f, &err);
    else if (strcmp(what, "prune") == 0)
        rc = pc_cache_prune(models, max, &hooks, &f, &err);
    else
        rc = pc_cache_clear(models, &hooks, &f, &err);
    pc_cli_names_free(b.loaded, b.n_loaded);
    if (rc != PC_OK) {
        pc_cli_error("%s", err.msg);
        return PC_EXIT_FAIL;
    }
    char a[32], p[32], r[32];
    if (o->json)
        print_json(json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "status", "done", "models_removed",
                             (json_int_t)f.models, "model_bytes_freed", (json_int_t)f.model_bytes,
                             "partial_downloads_removed", (json_int_t)f.parts,
                             "partial_bytes_freed", (json_int_t)f.part_bytes, "remaining_bytes",
                             (json_int_t)f.remaining_bytes));
    else
        printf("%s: removed %zu model%s (%s) and %zu partial download%s (%s); %s left\n", what,
               f.models, f.models == 1 ? "" : "s", pc_fmt_bytes(f.model_bytes, a, sizeof(a)),
               f.parts, f.parts == 1 ? "" : "s", pc_fmt_bytes(f.part_bytes, p, sizeof(p)),
               pc_fmt_bytes(f.remaining_bytes, r, sizeof(r)));
    if (strcmp(what, "prune") == 0 && f.remaining_bytes > max)
        fprintf(stderr, "precharge: warning: still above %s: the rest is loaded or in use\n",
                o->max_size);
    return PC_EXIT_OK;
}

static void cache_usage_text(void)
{
    fprintf(stderr, "usage: precharge model cache [--usage] [--json]\n"
                    "       precharge model cache clean [--older-than AGE] [--force] [--json]\n"
                    "       precharge model cache prune --max-size SIZE [--force] [--json]\n"
                    "       precharge model cache clear [--force] [--json]\n"
                    "  clean removes partial downloads older than a day and, with --older-than "
                    "(30d, 12h, 2w),\n"
                    "  the models not used for that long. Models the daemon has loaded stay, "
                    "unless --force.\n");
}

int pc_cmd_model_cache(int argc, char **argv)
{
    static const struct option opts[] = {
        {"usage", no_argument, NULL, 'u'},
        {"json", no_argument, NULL, 'j'},
        {"force", no_argument, NULL, 'f'},
        {"older-than", required_argument, NULL, 'o'},
        {"max-size", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cache_opts o = {0};
    int ch;
    pc_cli_quiet_log();
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'u':
            o.usage = true;
            break;
        case 'j':
            o.json = true;
            break;
        case 'f':
            o.force = true;
            break;
        case 'o':
            o.older_than = optarg;
            break;
        case 'm':
            o.max_size = optarg;
            break;
        default:
            cache_usage_text();
            return PC_EXIT_USAGE;
        }
    }
    const char *what = optind < argc ? argv[optind] : "list";
    bool known = strcmp(what, "list") == 0 || strcmp(what, "clean") == 0 ||
                 strcmp(what, "prune") == 0 || strcmp(what, "clear") == 0;
    bool misplaced = (o.older_than && strcmp(what, "clean") != 0) ||
                     (o.max_size && strcmp(what, "prune") != 0) ||
                     (o.usage && strcmp(what, "list") != 0);
    if (!known || misplaced || optind + 1 < argc) {
        cache_usage_text();
        return PC_EXIT_USAGE;
    }
    char models[PATH_MAX];
    if (pc_cli_models_dir(models, sizeof(models)) != 0)
        return PC_EXIT_FAIL;
    if (strcmp(what, "list") == 0)
        return o.usage ? cache_usage(models, &o) : cache_list(models, &o);
    return cache_bulk(what, models, &o);
}
