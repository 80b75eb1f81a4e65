/* updatecheck.h - the daemon's optional background check for model updates. */
#ifndef PC_UPDATECHECK_H
#define PC_UPDATECHECK_H

#include <stdint.h>

#include "../base/err.h"

struct pc_server;
struct pc_updatecheck;

/* Check every interval_ns (the first time one interval after the start); 0 or less: no check,
 * and *out is NULL. srv is borrowed for the check's life. */
enum pc_err pc_updatecheck_start(struct pc_server *srv, int64_t interval_ns,
                                 struct pc_updatecheck **out /* OUT */, struct pc_error *err);

/* Stop (a check under way finishes first) and free. NULL: nothing. */
void pc_updatecheck_stop(struct pc_updatecheck *uc);

#endif
