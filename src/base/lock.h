/* lock.h - advisory file locks (flock) on lock files that may be removed while others wait. */
#ifndef PC_LOCK_H
#define PC_LOCK_H

#include <stdbool.h>

#include "err.h"

/* How long to wait for a lock held by someone else. */
enum pc_lock_wait {
    PC_LOCK_TRY,   /* PC_ERR_BUSY at once when it is held */
    PC_LOCK_BLOCK, /* wait as long as it takes */
};

/* Take an exclusive lock on path, creating the file. A lock taken on a file that its holder
 * removed meanwhile is dropped and taken again on the new file, so that removing a lock file
 * on release is safe. Separate calls conflict even within one process (the lock belongs to the
 * open file, not to the process). On success *fd holds the lock: give it to pc_lock_release.
 * Returns PC_ERR_BUSY (with PC_LOCK_TRY) or PC_ERR_IO. */
enum pc_err pc_lock_acquire(const char *path, enum pc_lock_wait wait, int *fd /* OUT */,
                            struct pc_error *err);

/* Release a lock from pc_lock_acquire. With remove, the lock file is unlinked first, while it is
 * still held: a waiter then notices and locks a fresh file. fd < 0 does nothing. */
void pc_lock_release(int fd, const char *path, bool remove);

#endif
