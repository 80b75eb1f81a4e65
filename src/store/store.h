/* store.h - the model store: GGUF files under $PRECHARGE_HOME/models, found by name. */
#ifndef PC_STORE_H
#define PC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

/* Normalise an Ollama-style model name: "tiny:latest" -> "tiny". Other tags are kept
 * ("qwen2.5-coder:3b"). out needs size bytes. Returns PC_ERR_INVALID for an empty name or one
 * that could lead outside the store ("..", "/", control characters). */
enum pc_err pc_store_name(const char *name, char *out /* OUT */, size_t size, struct pc_error *err);

/* The name a listing shows for the store's name: Ollama's spelling, with the tag, "tiny" ->
 * "tiny:latest" ("qwen2.5-coder:3b" as it is), the same in /api/tags, /api/ps and /v1/models.
 * Both spellings name the model in every request (pc_store_name). */
void pc_store_listed_name(const char *name, char *out /* OUT */, size_t size);

/* The file of a model in the store: <models_dir>/<name>.gguf. PC_ERR_NOT_FOUND when absent (or
 * a link to nothing), PC_ERR_MODEL_FORMAT when it is a directory or not a regular file, and
 * PC_ERR_BAD_PATH when it is a link that leads outside the store and the directories of
 * pc_store_allow_dirs. */
enum pc_err pc_store_path(const char *models_dir, const char *name, char *out /* OUT */,
                          size_t size, struct pc_error *err);

struct pc_store_entry {
    char name[256];
    char path[1024];
    uint64_t size;
    int64_t mtime_ns; /* wall clock */
};

#define PC_STORE_MAX_ALLOWED 16

/* The directories (besides the store) where the links of store entries may lead: the daemon's
 * model directories (--model-dir), as the "path" of a load may. Replaces the previous list;
 * directories that do not resolve are left out. At most PC_STORE_MAX_ALLOWED. */
void pc_store_allow_dirs(const char *const *dirs, size_t n);

/* The models in the store (entries that pc_store_path would give), sorted by name. *out is
 * malloc'd; the caller frees it. */
enum pc_err pc_store_list(const char *models_dir, struct pc_store_entry **out /* OUT */,
                          size_t *n /* OUT */, struct pc_error *err);

/* Give the model src a second name dst: a hard link to the same file when the file system
 * allows it, else a copy; either way made under a temporary name and renamed into place, so
 * that dst is whole or absent whatever happens. An existing dst is replaced. PC_ERR_NOT_FOUND
 * when src is absent, PC_ERR_INVALID/PC_ERR_BAD_PATH for a bad name, PC_ERR_IO naming the call
 * that failed. */
enum pc_err pc_store_copy(const char *models_dir, const char *src, const char *dst,
                          struct pc_error *err);

#endif
