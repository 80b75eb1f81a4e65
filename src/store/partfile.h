/* partfile.h - a download's .part file: bytes appended in order, written in large blocks, hashed
 * (SHA-256) on a second thread while the next block arrives, and handed to the disk as they go,
 * so that neither hashing nor the final fsync waits for the whole file at the end. */
#ifndef PC_PARTFILE_H
#define PC_PARTFILE_H

#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

struct pc_partfile;

/* Open (or create) path and hash what it already holds, so that appends resume it. On success
 * *out is closed with pc_partfile_close. */
enum pc_err pc_partfile_open(const char *path, struct pc_partfile **out /* OUT */,
                             struct pc_error *err);

/* Bytes in the file, counting those not yet written. */
uint64_t pc_partfile_size(const struct pc_partfile *pf);

/* Append n bytes. A write error is returned here or by a later call. */
enum pc_err pc_partfile_append(struct pc_partfile *pf, const void *p, size_t n,
                               struct pc_error *err);

/* Write out what is buffered, so that the file on disk holds every byte appended. */
enum pc_err pc_partfile_flush(struct pc_partfile *pf, struct pc_error *err);

/* Empty the file and start its hash again. */
enum pc_err pc_partfile_truncate(struct pc_partfile *pf, struct pc_error *err);

/* Flush and give the SHA-256 of everything appended, as 64 lowercase hex digits. Appends may
 * follow (the hash goes on from there). */
enum pc_err pc_partfile_digest(struct pc_partfile *pf, char hex[65] /* OUT */,
                               struct pc_error *err);

/* Flush and fsync: every byte appended is on disk. */
enum pc_err pc_partfile_sync(struct pc_partfile *pf, struct pc_error *err);

/* Stop the hashing thread and close; what was appended stays on disk, flushed. NULL does
 * nothing. */
void pc_partfile_close(struct pc_partfile *pf);

#endif
