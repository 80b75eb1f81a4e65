/* sdnotify.c - the sd_notify protocol without libsystemd: it is one sendto() on an AF_UNIX
 * datagram socket (a path, or an abstract name when it starts with '@'), documented as stable
 * in sd_notify(3), and not worth a new library for the rest of the build. */
#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int pc_sd_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0')
        return 0;
    size_t len = strlen(path);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(addr.sun_path)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(addr.sun_path, path, len);
    if (path[0] == '@')
        addr.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, alen);
    int saved = errno;
    close(fd);
    errno = saved;
    return n < 0 ? -1 : 1;
}
