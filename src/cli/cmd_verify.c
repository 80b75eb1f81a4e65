/* cmd_verify.c - `precharge model verify [ID... | --all]`: read each model in the store again and
 * compare its sha256 with what the manifest recorded when it came in, and with the catalog's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../catalog/catalog.h"
#include "../store/cache.h"
#include "../store/store.h"
#include "../store/verify.h"
#include "cli.h"
#include "cli_store.h"
#include "progress.h"

static void verify_usage(void)
{
    fprintf(stderr, "usage: precharge model verify [--json] (MODEL... | --all)\n"
                    "  reads each model in the store and checks its sha256 against the manifest\n"
                    "  (recorded when it was downloaded) and the catalog; exit status 1 when one\n"
                    "  differs: `precharge model download MODEL` fetches it again\n");
}

static void on_hashed(void *user, uint64_t done, uint64_t total)
{
    struct pc_bar *bar = user;
    if (bar != NULL)
        pc_bar_update(bar, done, total, 0, done == total);
}

/* Check one model; prints the outcome. Returns 0 when it is intact, 1 when not (or unreadable). */
static int verify_one(const char *models, struct pc_catalog *c, const char *name, bool json)
{
    char id[256];
    if (pc_cli_store_id(c, name, id, sizeof(id)) != 0)
        return 1;
    struct pc_bar bar;
    char label[300];
    snprintf(label, sizeof(label), "verifying %s", id);
    pc_bar_init(&bar, stdout, label);
    struct pc_verify_result v;
    struct pc_error err = {0};
    enum pc_err rc = pc_store_verify(models, id, on_hashed, json ? NULL : &bar, &v, &err);
    pc_bar_end(&bar);
    if (rc != PC_OK) {
        if (json) {
            char *s = json_dumps(json_pack("{s:s, s:s}", "model", id, "error", err.msg),
                                 JSON_COMPACT | JSON_ENCODE_ANY);
            puts(s ? s : "{}");
            free(s);
        }
        pc_cli_error("%s", err.msg);
        return 1;
    }
    const struct pc_catalog_entry *e = c ? pc_catalog_find(c, id, NULL) : NULL;
    const char *catalog = e != NULL && e->sha256[0] ? e->sha256 : NULL;
    bool catalog_differs = catalog != NULL && strcmp(catalog, v.actual) != 0;
    bool bad = v.status == PC_VERIFY_MISMATCH || catalog_differs;
    if (json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s*, s:s*, s:I}", "model", id, "status",
                              bad ? "mismatch" : pc_verify_status_name(v.status), "sha256",
                              v.actual, "recorded", v.recorded[0] ? v.recorded : NULL, "catalog",
                              catalog, "size", (json_int_t)v.size);
        char *s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        puts(s ? s : "{}");
        free(s);
    } else if (v.status == PC_VERIFY_MISMATCH) {
        printf("%s: MISMATCH: sha256 %s, but %s was recorded when it was downloaded: the file "
               "changed on disk; `precharge model download %s` fetches it again\n",
               id, v.actual, v.recorded, id);
    } else if (catalog_differs) {
        printf("%s: MISMATCH: sha256 %s, but the catalog says %s; `precharge model download %s` "
               "fetches the catalog's file\n",
               id, v.actual, catalog, id);
    } else if (v.status == PC_VERIFY_RECORDED) {
        printf("%s: no checksum was recorded; recorded sha256 %s now%s\n", id, v.actual,
               catalog ? " (the catalog's)" : "");
    } else {
        printf("%s: ok (sha256 %s)\n", id, v.actual);
    }
    fflush(stdout);
    return bad ? 1 : 0;
}

static int verify_each(const struct pc_cli_per_model *r, const char *id)
{
    return verify_one(r->models, r->catalog, id, r->json);
}

int pc_cmd_model_verify(int argc, char **argv)
{
    return pc_cli_run_per_model(argc, argv, false, false, verify_usage, verify_each);
}
