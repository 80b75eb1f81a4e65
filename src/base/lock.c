/* lock.c - advisory file locks (flock) on lock files that may be removed while others wait. */
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* True when fd is still the file that path names: nobody removed or replaced it. */
static bool still_linked(int fd, const char *path)
{
    struct stat a, b;
    if (fstat(fd, &a) != 0 || stat(path, &b) != 0)
        return false;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

enum pc_err pc_lock_acquire(const char *path, enum pc_lock_wait wait, int *fd, struct pc_error *err)
{
    *fd = -1;
    for (;;) {
        int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (f < 0)
            return pc_error_set(err, PC_ERR_IO, "open() \"%s\" failed: %s", path, strerror(errno));
        int rc;
        do
            rc = flock(f, LOCK_EX | (wait == PC_LOCK_TRY ? LOCK_NB : 0));
        while (rc != 0 && errno == EINTR);
        if (rc != 0) {
            int saved = errno;
            close(f);
            if (saved == EWOULDBLOCK)
                return pc_error_set(err, PC_ERR_BUSY, "\"%s\" is locked by another process", path);
            return pc_error_set(err, PC_ERR_IO, "flock() \"%s\" failed: %s", path, strerror(saved));
        }
        if (still_linked(f, path)) {
            *fd = f;
            return PC_OK;
        }
        close(f); /* its holder removed it on release: lock the new one */
    }
}

void pc_lock_release(int fd, const char *path, bool remove)
{
    if (fd < 0)
        return;
    if (remove && path != NULL)
        unlink(path);
    close(fd);
}
