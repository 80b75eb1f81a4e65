/* cmd_update.c - `precharge model update [--check] (ID... | --all)`: ask each model's source
 * whether its file changed since it was downloaded, and download the new revision beside the
 * old one, switching only once it verifies. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../catalog/catalog.h"
#include "../store/cache.h"
#include "../store/update.h"
#include "cli.h"
#include "cli_store.h"
#include "progress.h"

static void update_usage(void)
{
    fprintf(stderr,
            "usage: precharge model update [--check] [--json] (MODEL... | --all)\n"
            "  asks each model's source (HTTP HEAD: X-Linked-Etag, ETag, size, Last-Modified)\n"
            "  whether the file changed since it was downloaded, and downloads the new revision\n"
            "  beside the old one, switching once it verifies; --check only reports\n");
}

static void print_line(bool json, json_t *o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One outcome: a JSON line (o taken) or a line of text. */
static void print_line(bool json, json_t *o, const char *fmt, ...)
{
    if (json) {
        char *s = json_dumps(o, JSON_COMPACT);
        puts(s ? s : "{}");
        free(s);
    } else {
        va_list ap;
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
    }
    json_decref(o);
    fflush(stdout);
}

static void show(void *user, const struct pc_download_progress *p)
{
    struct pc_bar *bar = user;
    if (p->phase == PC_DL_DOWNLOADING && (p->total > 0 || p->completed > 0))
        pc_bar_update(bar, p->completed, p->total, p->bytes_per_sec, false);
}

/* Check (and unless check_only, apply) one model. Returns 0, or 1 when it failed. */
static int update_one(const char *models, struct pc_catalog *c, const char *name, bool check_only,
                      bool json)
{
    char id[256], url[2048];
    struct pc_error err = {0};
    if (pc_cli_store_id(c, name, id, sizeof(id)) != 0)
        return 1;
    const struct pc_catalog_entry *e = c ? pc_catalog_find(c, id, NULL) : NULL;
    if (e == NULL || pc_catalog_url(e, url, sizeof(url), &err) != PC_OK) {
        print_line(json, json_pack("{s:s, s:s}", "model", id, "status", "no_source"),
                   "%s: no source in the catalog to ask", id);
        return 0;
    }
    struct pc_update_check u;
    if (pc_update_check(models, id, url, &u, &err) != PC_OK) {
        print_line(json, json_pack("{s:s, s:s}", "model", id, "error", err.msg), "%s: %s", id,
                   err.msg);
        return 1;
    }
    const char *status = pc_update_status_name(u.status);
    if (u.status != PC_UPDATE_AVAILABLE || check_only) {
        print_line(json,
                   json_pack("{s:s, s:s, s:s, s:s}", "model", id, "status", status, "why", u.why,
                             "revision", u.revision),
                   "%s: %s (%s)", id,
                   u.status == PC_UPDATE_CURRENT     ? "up to date"
                   : u.status == PC_UPDATE_AVAILABLE ? "an update is available"
                                                     : "cannot tell",
                   u.why);
        return 0;
    }
    if (!json)
        printf("%s: an update is available (%s); downloading it beside the current file\n", id,
               u.why);
    struct pc_download_opts o;
    if (pc_download_opts_init(&o, &err) != PC_OK) {
        pc_cli_error("%s", err.msg);
        return 1;
    }
    struct pc_bar bar;
    char label[300];
    snprintf(label, sizeof(label), "updating %s", id);
    pc_bar_init(&bar, stdout, label);
    o.url = url;
    o.models_dir = models;
    o.id = id;
    o.progress = json ? NULL : show;
    o.user = &bar;
    enum pc_err rc = pc_update_apply(&o, &u, &err);
    pc_bar_end(&bar);
    if (rc != PC_OK) {
        print_line(json, json_pack("{s:s, s:s}", "model", id, "error", err.msg),
                   "%s: the update failed, and the current file stays: %s", id, err.msg);
        return 1;
    }
    print_line(json,
               json_pack("{s:s, s:s, s:s, s:s}", "model", id, "status", "updated", "why", u.why,
                         "revision", u.revision),
               "%s: updated to revision %s", id, u.revision[0] ? u.revision : "(none given)");
    return 0;
}

static int update_each(const struct pc_cli_per_model *r, const char *id)
{
    return update_one(r->models, r->catalog, id, r->check, r->json);
}

int pc_cmd_model_update(int argc, char **argv)
{
    return pc_cli_run_per_model(argc, argv, true, true, update_usage, update_each);
}
