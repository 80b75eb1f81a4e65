/* catalog.c - the merged catalog: embedded, user file, discovered files; lookup by id or
 * alias, with "did you mean" for the ones that are not there. */
#include "catalogInt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/fmt.h"
#include "../store/store.h"
#include "inspect.h"

static const char *origin_name(enum pc_catalog_origin o)
{
    return o == PC_CATALOG_EMBEDDED ? "the embedded catalog"
           : o == PC_CATALOG_USER   ? "the user catalog"
                                    : "the models directory";
}

static struct pc_catalog_entry *by_id(struct pc_catalog *c, const char *id)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->entries[i].id, id) == 0)
            return &c->entries[i];
    return NULL;
}

/* The entry other than self that answers to name (as id or alias), or NULL. */
static const struct pc_catalog_entry *claimant(const struct pc_catalog *c, const char *name,
                                               const char *self_id)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct pc_catalog_entry *e = &c->entries[i];
        if (strcmp(e->id, self_id) == 0)
            continue;
        if (strcmp(e->id, name) == 0)
            return e;
        for (size_t k = 0; k < e->n_aliases; k++)
            if (strcmp(e->aliases[k], name) == 0)
                return e;
    }
    return NULL;
}

enum pc_err pc_catalog_put(struct pc_catalog *c, const struct pc_catalog_entry *e,
                           struct pc_error *err)
{
    /* One name, one model: an alias (or id) that another entry answers to is refused. */
    const struct pc_catalog_entry *other = claimant(c, e->id, e->id);
    for (size_t k = 0; other == NULL && k < e->n_aliases; k++) {
        other = claimant(c, e->aliases[k], e->id);
        if (other != NULL)
            return pc_error_set(err, PC_ERR_INVALID,
                                "alias \"%s\" of \"%s\" is already claimed by \"%s\" (from %s)",
                                e->aliases[k], e->id, other->id, origin_name(other->origin));
    }
    if (other != NULL)
        return pc_error_set(err, PC_ERR_INVALID,
                            "id \"%s\" is already an alias of \"%s\" (from %s)", e->id, other->id,
                            origin_name(other->origin));

    struct pc_catalog_entry *slot = by_id(c, e->id);
    if (slot != NULL) {
        *slot = *e;
        return PC_OK;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        struct pc_catalog_entry *p = realloc(c->entries, cap * sizeof(*p));
        if (p == NULL)
            return pc_error_set(err, PC_ERR_NOMEM, "catalog: out of memory");
        c->entries = p;
        c->cap = cap;
    }
    c->entries[c->n++] = *e;
    return PC_OK;
}

static void say(void (*warn)(void *, const char *), void *user, const char *msg)
{
    if (warn != NULL)
        warn(user, msg);
}

/* Files in the models directory: a catalog entry's download gets its path; any other GGUF
 * becomes an entry of its own, described by its header. */
static enum pc_err discover(struct pc_catalog *c, const char *models_dir,
                            void (*warn)(void *, const char *), void *user, struct pc_error *err)
{
    struct pc_store_entry *files = NULL;
    size_t n = 0;
    enum pc_err rc = pc_store_list(models_dir, &files, &n, err);
    if (rc != PC_OK)
        return rc;
    for (size_t i = 0; i < n && rc == PC_OK; i++) {
        struct pc_catalog_entry *known = by_id(c, files[i].name);
        if (known != NULL) {
            snprintf(known->path, sizeof(known->path), "%s", files[i].path);
            continue;
        }
        struct pc_gguf_info g;
        struct pc_error ierr = {0};
        if (pc_gguf_inspect(files[i].path, &g, &ierr) != PC_OK) {
            say(warn, user, ierr.msg);
            continue;
        }
        struct pc_catalog_entry e = {.origin = PC_CATALOG_DISCOVERED};
        if (strlen(files[i].name) >= sizeof(e.id)) {
            say(warn, user, "a model file name in the models directory is too long to be an id");
            continue;
        }
        snprintf(e.id, sizeof(e.id), "%.127s", files[i].name);
        snprintf(e.name, sizeof(e.name), "%.127s", g.name[0] ? g.name : files[i].name);
        snprintf(e.family, sizeof(e.family), "%s", g.arch);
        snprintf(e.parameters, sizeof(e.parameters), "%s", g.parameter_size);
        snprintf(e.quantization, sizeof(e.quantization), "%s", g.quantization);
        snprintf(e.provider, sizeof(e.provider), "local");
        snprintf(e.path, sizeof(e.path), "%s", files[i].path);
        snprintf(e.description, sizeof(e.description), "found in %s", models_dir);
        e.context_window = g.context_length;
        e.file_size_mb = (g.file_size + 999999) / 1000000;
        struct pc_error perr = {0};
        if (pc_catalog_put(c, &e, &perr) != PC_OK)
            say(warn, user, perr.msg);
    }
    free(files);
    return rc;
}

enum pc_err pc_catalog_load(const struct pc_catalog_opts *opts,
                            void (*warn)(void *user, const char *msg), void *user,
                            struct pc_catalog **out, struct pc_error *err)
{
    *out = NULL;
    struct pc_catalog *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "catalog: out of memory");
    enum pc_err rc = PC_OK;
    for (size_t i = 0; i < pc_catalog_n_embedded && rc == PC_OK; i++)
        rc = pc_catalog_put(c, &pc_catalog_embedded[i], err);
    if (rc == PC_OK && opts->user_catalog != NULL)
        rc = pc_catalog_parse_file(c, opts->user_catalog, warn, user, err);
    if (rc == PC_OK && opts->models_dir != NULL)
        rc = discover(c, opts->models_dir, warn, user, err);
    if (rc != PC_OK) {
        pc_catalog_free(c);
        return rc;
    }
    *out = c;
    return PC_OK;
}

void pc_catalog_free(struct pc_catalog *c)
{
    if (c == NULL)
        return;
    free(c->entries);
    free(c);
}

size_t pc_catalog_count(const struct pc_catalog *c)
{
    return c->n;
}

const struct pc_catalog_entry *pc_catalog_at(const struct pc_catalog *c, size_t i)
{
    return i < c->n ? &c->entries[i] : NULL;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return la > lb ? la : lb;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The distance from name to an entry: its id, or its nearest alias. */
static size_t distance_to(const struct pc_catalog_entry *e, const char *name)
{
    size_t d = edit_distance(name, e->id);
    for (size_t k = 0; k < e->n_aliases; k++) {
        size_t da = edit_distance(name, e->aliases[k]);
        if (da < d)
            d = da;
    }
    /* A name that an id starts with ("qwen2.5-coder") is near whatever its length. */
    if (strncmp(e->id, name, strlen(name)) == 0 && d > 1)
        d = 1;
    return d;
}

static void suggest(const struct pc_catalog *c, const char *name, struct pc_error *err)
{
    enum { MAX_SUGGEST = 3 };
    const struct pc_catalog_entry *best[MAX_SUGGEST] = {0};
    size_t best_d[MAX_SUGGEST] = {0}, n = 0;
    size_t limit = strlen(name) / 3 + 2;
    for (size_t i = 0; i < c->n; i++) {
        size_t d = distance_to(&c->entries[i], name);
        if (d > limit)
            continue;
        size_t pos = n < MAX_SUGGEST ? n++ : MAX_SUGGEST;
        while (pos > 0 && best_d[pos - 1] > d) {
            if (pos < MAX_SUGGEST) {
                best[pos] = best[pos - 1];
                best_d[pos] = best_d[pos - 1];
            }
            pos--;
        }
        if (pos < MAX_SUGGEST) {
            best[pos] = &c->entries[i];
            best_d[pos] = d;
        }
    }
    if (n == 0) {
        pc_error_set(err, PC_ERR_NOT_FOUND,
                     "unknown model \"%s\" ('precharge model list --all' shows the catalog)", name);
        return;
    }
    char list[256] = "";
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(list);
        snprintf(list + len, sizeof(list) - len, "%s\"%s\"",
                 i == 0       ? ""
                 : i + 1 == n ? " or "
                              : ", ",
                 best[i]->id);
    }
    pc_error_set(err, PC_ERR_NOT_FOUND, "unknown model \"%s\" (did you mean %s?)", name, list);
}

const struct pc_catalog_entry *pc_catalog_find(const struct pc_catalog *c, const char *id,
                                               struct pc_error *err)
{
    char name[256];
    snprintf(name, sizeof(name), "%s", id);
    size_t len = strlen(name);
    if (len > 7 && strcmp(name + len - 7, ":latest") == 0)
        name[len - 7] = '\0';
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->entries[i].id, name) == 0)
            return &c->entries[i];
    for (size_t i = 0; i < c->n; i++)
        for (size_t k = 0; k < c->entries[i].n_aliases; k++)
            if (strcmp(c->entries[i].aliases[k], name) == 0)
                return &c->entries[i];
    suggest(c, name, err);
    return NULL;
}

enum pc_err pc_catalog_url(const struct pc_catalog_entry *e, char *out, size_t size,
                           struct pc_error *err)
{
    int n;
    if (e->source_url[0] != '\0') {
        n = snprintf(out, size, "%s", e->source_url);
    } else if (e->source_repo[0] != '\0' && e->source_file[0] != '\0') {
        const char *base = getenv("PRECHARGE_HF_ENDPOINT");
        if (base == NULL || *base == '\0')
            base = "https://huggingface.co";
        size_t blen = strlen(base);
        while (blen > 0 && base[blen - 1] == '/')
            blen--;
        n = snprintf(out, size, "%.*s/%s/resolve/main/%s", (int)blen, base, e->source_repo,
                     e->source_file);
    } else {
        return pc_error_set(err, PC_ERR_NOT_FOUND,
                            "model \"%s\" has no download source in the catalog", e->id);
    }
    if (n < 0 || (size_t)n >= size)
        return pc_error_set(err, PC_ERR_INVALID, "the URL of \"%s\" is too long", e->id);
    return PC_OK;
}
