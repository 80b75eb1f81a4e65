/* deadline.h - a watchdog that cuts connections whose request does not arrive whole in time.
 *
 * An idle timeout cannot stop a client that trickles a request a byte at a time (slowloris):
 * every byte is activity. So each connection carries a deadline, armed while the server waits
 * for a request (its headers and its body) and disarmed once the request is in; a thread shuts
 * down the socket of a connection whose armed deadline has passed. Free of libmicrohttpd: it
 * knows connections by their socket. */
#ifndef PC_DEADLINE_H
#define PC_DEADLINE_H

#include "../base/err.h"

struct pc_deadline;
struct pc_deadline_conn;

/* Start the watchdog: a request has timeout_s seconds to arrive. */
enum pc_err pc_deadline_start(unsigned timeout_s, struct pc_deadline **out /* OUT */,
                              struct pc_error *err);

/* Watch a new connection's socket, armed from now. NULL when d is NULL or memory ran out (the
 * connection is then not watched). Remove it before the socket closes. */
struct pc_deadline_conn *pc_deadline_add(struct pc_deadline *d, int fd);

/* Arm (from now) or disarm a connection's deadline. A NULL d or c does nothing. */
void pc_deadline_arm(struct pc_deadline *d, struct pc_deadline_conn *c);
void pc_deadline_disarm(struct pc_deadline *d, struct pc_deadline_conn *c);

/* Stop watching a connection, and free c. A NULL d or c does nothing. */
void pc_deadline_remove(struct pc_deadline *d, struct pc_deadline_conn *c);

/* Stop the thread and free d; every connection must have been removed. NULL does nothing. */
void pc_deadline_stop(struct pc_deadline *d);

#endif
