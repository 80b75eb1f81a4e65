/* userfile.c - the user's catalog file: JSON entries that add to or override the embedded
 * ones. A bad entry is reported with its file, line and field, and the others still load. */
#include "catalogInt.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../base/file.h"
#include "../store/store.h"

#define MAX_CATALOG_FILE (4u << 20)

/* The line on which each element of the top-level "models" array starts. jansson keeps no
 * positions for values, so a small scanner finds them: depth 1 is the top object, depth 2 the
 * array's elements. */
static size_t entry_lines(const char *text, size_t *lines, size_t max)
{
    size_t n = 0, line = 1;
    int depth = 0;
    bool in_str = false, in_models = false, key_models = false, want_elem = false;
    const char *key_start = NULL;
    for (const char *p = text; *p; p++) {
        char ch = *p;
        if (ch == '\n')
            line++;
        if (in_str) {
            if (ch == '\\' && p[1] != '\0')
                p++;
            else if (ch == '"') {
                in_str = false;
                if (depth == 1 && key_start != NULL)
                    key_models = (size_t)(p - key_start) == 6 && !strncmp(key_start, "models", 6);
            }
            continue;
        }
        /* An element starts at the first character after '[' or ',' that is not blank: an
         * object, or a string or number that parse_entry will refuse. */
        if (want_elem && in_models && depth == 2 && !isspace((unsigned char)ch) && ch != ']') {
            if (n < max)
                lines[n++] = line;
            want_elem = false;
        }
        if (ch == '"') {
            in_str = true;
            key_start = p + 1;
            continue;
        }
        if (ch == '{' || ch == '[') {
            if (depth == 1 && ch == '[' && key_models)
                in_models = want_elem = true;
            depth++;
        } else if (ch == '}' || ch == ']') {
            depth--;
            if (depth == 1)
                in_models = false;
        } else if (ch == ',' && depth == 1) {
            key_models = false;
        } else if (ch == ',' && depth == 2 && in_models) {
            want_elem = true;
        }
    }
    return n;
}

struct ctx {
    const char *path;
    size_t line;
    size_t index;
    char msg[2 * PC_ERROR_MSG_MAX];
};

static int bad(struct ctx *x, const char *field, const char *why)
{
    snprintf(x->msg, sizeof(x->msg), "%s:%zu: models[%zu]%s%s %s; entry skipped", x->path, x->line,
             x->index, field[0] ? "." : "", field, why);
    return -1;
}

static int get_str(struct ctx *x, json_t *o, const char *field, char *dst, size_t size,
                   bool required)
{
    json_t *v = json_object_get(o, field);
    if (v == NULL || json_is_null(v))
        return required ? bad(x, field, "is required") : 0;
    if (!json_is_string(v))
        return bad(x, field, "must be a string");
    if (json_string_length(v) >= size)
        return bad(x, field, "is too long");
    snprintf(dst, size, "%s", json_string_value(v));
    return 0;
}

static int get_uint(struct ctx *x, json_t *o, const char *field, uint64_t max, uint64_t *dst)
{
    json_t *v = json_object_get(o, field);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
        return bad(x, field, "must be a whole number, not negative");
    *dst = (uint64_t)json_integer_value(v);
    return 0;
}

static int get_list(struct ctx *x, json_t *o, const char *field, char (*dst)[64], size_t width,
                    size_t max, size_t *n)
{
    json_t *v = json_object_get(o, field);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_array(v) || json_array_size(v) > max)
        return bad(x, field, "must be an array of at most 8 strings");
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *s = json_array_get(v, i);
        if (!json_is_string(s) || json_string_length(s) == 0 || json_string_length(s) >= width)
            return bad(x, field, "must hold non-empty strings that fit the field");
        snprintf((char *)dst + i * width, width, "%s", json_string_value(s));
    }
    *n = json_array_size(v);
    return 0;
}

static int get_source(struct ctx *x, json_t *o, struct pc_catalog_entry *e)
{
    json_t *src = json_object_get(o, "source");
    if (src == NULL || json_is_null(src))
        return 0; /* a local-only entry */
    if (!json_is_object(src))
        return bad(x, "source", "must be an object with \"repo\" and \"file\", or \"url\"");
    if (get_str(x, src, "url", e->source_url, sizeof(e->source_url), false) != 0 ||
        get_str(x, src, "repo", e->source_repo, sizeof(e->source_repo), false) != 0 ||
        get_str(x, src, "file", e->source_file, sizeof(e->source_file), false) != 0)
        return -1;
    if (e->source_url[0] != '\0') {
        if (strncmp(e->source_url, "http://", 7) != 0 && strncmp(e->source_url, "https://", 8))
            return bad(x, "source.url", "must start with http:// or https://");
        return 0;
    }
    if (e->source_repo[0] == '\0' || e->source_file[0] == '\0')
        return bad(x, "source", "needs both \"repo\" and \"file\", or a \"url\"");
    if (strstr(e->source_repo, "..") || strchr(e->source_file, '/') || strstr(e->source_file, ".."))
        return bad(x, "source", "has a repo or file name that leads elsewhere");
    return 0;
}

static int parse_entry(struct ctx *x, json_t *o, struct pc_catalog_entry *e)
{
    memset(e, 0, sizeof(*e));
    e->origin = PC_CATALOG_USER;
    snprintf(e->provider, sizeof(e->provider), "local");
    if (!json_is_object(o))
        return bad(x, "", "must be an object");
    uint64_t ctxw = 0, size = 0, ram = 0;
    if (get_str(x, o, "id", e->id, sizeof(e->id), true) != 0 ||
        get_str(x, o, "name", e->name, sizeof(e->name), false) != 0 ||
        get_str(x, o, "family", e->family, sizeof(e->family), false) != 0 ||
        get_str(x, o, "parameters", e->parameters, sizeof(e->parameters), false) != 0 ||
        get_str(x, o, "quantization", e->quantization, sizeof(e->quantization), false) != 0 ||
        get_str(x, o, "description", e->description, sizeof(e->description), false) != 0 ||
        get_str(x, o, "sha256", e->sha256, sizeof(e->sha256), false) != 0 ||
        get_str(x, o, "provider", e->provider, sizeof(e->provider), false) != 0 ||
        get_uint(x, o, "context_window", UINT32_MAX, &ctxw) != 0 ||
        get_uint(x, o, "file_size_mb", UINT32_MAX, &size) != 0 ||
        get_uint(x, o, "ram_required_mb", UINT32_MAX, &ram) != 0 ||
        get_list(x, o, "tags", (char(*)[64])e->tags, sizeof(e->tags[0]), PC_CATALOG_MAX_TAGS,
                 &e->n_tags) != 0 ||
        get_list(x, o, "aliases", e->aliases, sizeof(e->aliases[0]), PC_CATALOG_MAX_ALIASES,
                 &e->n_aliases) != 0 ||
        get_source(x, o, e) != 0)
        return -1;
    e->context_window = (uint32_t)ctxw;
    e->file_size_mb = size;
    e->ram_required_mb = ram;
    json_t *rec = json_object_get(o, "recommended");
    if (rec != NULL && !json_is_boolean(rec))
        return bad(x, "recommended", "must be true or false");
    e->recommended = json_is_true(rec);

    char norm[256];
    if (pc_store_name(e->id, norm, sizeof(norm), NULL) != PC_OK || strcmp(norm, e->id) != 0)
        return bad(x, "id", "must be a plain file name: no '/', '..', ':latest' or leading '.'");
    size_t hl = strlen(e->sha256);
    for (size_t i = 0; i < hl; i++)
        e->sha256[i] = (char)tolower((unsigned char)e->sha256[i]);
    if (hl != 0 && (hl != 64 || strspn(e->sha256, "0123456789abcdef") != 64))
        return bad(x, "sha256", "must be 64 hexadecimal digits");
    if (strcmp(e->provider, "local") != 0 && strcmp(e->provider, "ollama") != 0)
        return bad(x, "provider", "must be \"local\" or \"ollama\"");
    if (e->name[0] == '\0')
        snprintf(e->name, sizeof(e->name), "%s", e->id);
    return 0;
}

enum pc_err pc_catalog_parse_file(struct pc_catalog *c, const char *path,
                                  void (*warn)(void *user, const char *msg), void *user,
                                  struct pc_error *err)
{
    char *text = NULL;
    size_t len = 0;
    enum pc_err rc = pc_file_read(path, MAX_CATALOG_FILE, &text, &len, err);
    if (rc == PC_ERR_NOT_FOUND)
        return PC_OK; /* no user catalog: nothing to add */
    if (rc != PC_OK)
        return rc;

    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    if (root == NULL) {
        free(text);
        return pc_error_set(err, PC_ERR_INVALID, "%s:%d:%d: invalid JSON: %s", path, je.line,
                            je.column, je.text);
    }
    json_t *models = json_object_get(root, "models");
    if (!json_is_array(models)) {
        json_decref(root);
        free(text);
        return pc_error_set(err, PC_ERR_INVALID, "%s: expected {\"models\": [...]}", path);
    }
    size_t lines[1024];
    size_t n_lines = entry_lines(text, lines, sizeof(lines) / sizeof(lines[0]));
    for (size_t i = 0; i < json_array_size(models); i++) {
        struct ctx x = {.path = path, .line = i < n_lines ? lines[i] : 0, .index = i};
        struct pc_catalog_entry e;
        if (parse_entry(&x, json_array_get(models, i), &e) != 0) {
            if (warn != NULL)
                warn(user, x.msg);
            continue;
        }
        struct pc_error perr = {0};
        if (pc_catalog_put(c, &e, &perr) != PC_OK && warn != NULL) {
            snprintf(x.msg, sizeof(x.msg), "%.256s:%zu: models[%zu]: %s; entry skipped", path,
                     x.line, i, perr.msg);
            warn(user, x.msg);
        }
    }
    json_decref(root);
    free(text);
    return PC_OK;
}
