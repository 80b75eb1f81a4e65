/* sdnotify.h - tell systemd (Type=notify) how the service is doing, by the sd_notify protocol:
 * one datagram to the AF_UNIX socket named by $NOTIFY_SOCKET. */
#ifndef PC_SDNOTIFY_H
#define PC_SDNOTIFY_H

/* Send state ("READY=1", "STATUS=warming 1/2 models", "STOPPING=1"; several lines allowed).
 * Returns 1 when sent, 0 when not under systemd ($NOTIFY_SOCKET unset), -1 with errno set on
 * failure. Never blocks for long: the socket is a datagram socket. */
int pc_sd_notify(const char *state);

#endif
