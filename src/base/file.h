/* file.h - files that survive a crash: atomic writes, directories, safe names. */
#ifndef PC_FILE_H
#define PC_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Write data to path atomically: a temp file beside it, fsync, rename, fsync of the directory.
 * A reader sees the old file or the new one, never a mix, whenever the process dies. */
enum pc_err pc_file_write_atomic(const char *path, const void *data, size_t len,
                                 struct pc_error *err);

/* Remove the temp files that pc_file_write_atomic left in dir when its process died: those
 * whose name matches pattern (fnmatch, e.g. "*.snap.tmp.??????") and that no live writer holds
 * (each writer locks its temp file until the rename). Returns how many it removed. */
size_t pc_file_sweep_tmp(const char *dir, const char *pattern);

/* Read a whole file (at most max bytes). *out is NUL-terminated; the caller frees it. */
enum pc_err pc_file_read(const char *path, size_t max, char **out /* OUT */,
                         size_t *out_len /* OUT, may be NULL */, struct pc_error *err);

/* mkdir -p with mode 0755. */
enum pc_err pc_file_mkdirs(const char *path, struct pc_error *err);

/* True when name can be one path component inside a directory that we own: non-empty, at most
 * 200 bytes, no '/', no NUL, not "." or "..", not starting with '.', no control characters. */
bool pc_file_name_is_safe(const char *name);

/* Whether real (a path from realpath) is dir (a real directory) or lies below it. */
bool pc_file_is_inside(const char *real, const char *dir);

/* Hex SHA-256 of a file's contents into hex[65]. */
enum pc_err pc_file_sha256(const char *path, char hex[65] /* OUT */, struct pc_error *err);

/* The same, calling progress (may be NULL) with the bytes read so far and the file's size after
 * each chunk, and once at 0 before the first. */
enum pc_err pc_file_sha256_progress(const char *path, char hex[65] /* OUT */,
                                    void (*progress)(void *user, uint64_t done, uint64_t total),
                                    void *user, struct pc_error *err);

#endif
