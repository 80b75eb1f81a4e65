/* catalog.h - which models exist: an embedded catalog, the user's catalog file, and the GGUF
 * files found in the models directory, looked up by id or alias. */
#ifndef PC_CATALOG_H
#define PC_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

#define PC_CATALOG_MAX_ALIASES 8
#define PC_CATALOG_MAX_TAGS 8

enum pc_catalog_origin {
    PC_CATALOG_EMBEDDED,   /* compiled in */
    PC_CATALOG_USER,       /* from a catalog file */
    PC_CATALOG_DISCOVERED, /* a GGUF in the models directory, read from the file */
};

struct pc_catalog_entry {
    char id[128];          /* "qwen2.5-coder-3b-q4": also the store's file name, <id>.gguf */
    char name[128];        /* "Qwen2.5 Coder 3B Instruct" */
    char family[32];       /* "qwen2", "llama", ... */
    char parameters[16];   /* "3B" */
    char quantization[16]; /* "Q4_K_M" */
    uint32_t context_window;
    uint64_t file_size_mb;
    uint64_t ram_required_mb;
    char source_repo[160]; /* Hugging Face "owner/repo", or "" when source_url is set */
    char source_file[160]; /* the file in that repo */
    char source_url[512];  /* a plain URL instead of a repo, or "" */
    char sha256[65];       /* lowercase hex, or "" when not known: then nothing is verified */
    bool recommended;
    char description[256];
    char tags[PC_CATALOG_MAX_TAGS][32];
    size_t n_tags;
    char aliases[PC_CATALOG_MAX_ALIASES][64]; /* "qwen2.5-coder:3b" */
    size_t n_aliases;
    char provider[16]; /* "local" */
    char path[1024];   /* the file, for discovered or registered entries; else "" */
    enum pc_catalog_origin origin;
};

struct pc_catalog;

struct pc_catalog_opts {
    const char *models_dir;   /* scanned for *.gguf; may be NULL */
    const char *user_catalog; /* a JSON catalog file; missing is fine; may be NULL */
};

/* Build the catalog: embedded entries, then the user file (which adds or overrides by id),
 * then the models directory. An invalid user entry is skipped and reported through warn (file,
 * line and field), and the rest still loads. Two entries claiming one alias fail the load with
 * both named. On success *out is freed with pc_catalog_free. */
enum pc_err pc_catalog_load(const struct pc_catalog_opts *opts,
                            void (*warn)(void *user, const char *msg), void *user,
                            struct pc_catalog **out /* OUT */, struct pc_error *err);
void pc_catalog_free(struct pc_catalog *c);

size_t pc_catalog_count(const struct pc_catalog *c);
const struct pc_catalog_entry *pc_catalog_at(const struct pc_catalog *c, size_t i);

/* By id or alias (a trailing ":latest" is ignored). NULL when unknown; then err says
 * "unknown model \"x\" (did you mean \"y\"?)" with the nearest ids. */
const struct pc_catalog_entry *pc_catalog_find(const struct pc_catalog *c, const char *id,
                                               struct pc_error *err);

/* The download URL: source_url, or <endpoint>/<repo>/resolve/main/<file> where endpoint is
 * PRECHARGE_HF_ENDPOINT or https://huggingface.co. */
enum pc_err pc_catalog_url(const struct pc_catalog_entry *e, char *out /* OUT */, size_t size,
                           struct pc_error *err);

#endif
