/* url.h - where a Redis server is, as a URL: redis://[[user]:password@]host[:port][/db] or
 * unix:///path/to/socket[?db=N]. */
#ifndef PC_FLEET_URL_H
#define PC_FLEET_URL_H

#include <stddef.h>

#include "../base/err.h"

#define PC_REDIS_DEFAULT_PORT 6379

/* A parsed URL. Plain data: copy it freely. */
struct pc_redis_url {
    char host[256];     /* a name or an address (IPv6 without its brackets); "" for a socket */
    int port;           /* PC_REDIS_DEFAULT_PORT unless the URL names one */
    char socket[256];   /* a unix socket's path, or "" for TCP */
    char user[128];     /* percent-decoded; "": the default user */
    char password[256]; /* percent-decoded; "": no AUTH */
    int db;             /* the database SELECTed after connecting; 0 by default */
};

/* Parse text into *url. Fails with PC_ERR_INVALID and a detail that says which part is wrong
 * (scheme, host, port, database, an unknown query parameter); *url is then zeroed. */
enum pc_err pc_redis_url_parse(const char *text, struct pc_redis_url *url /* OUT */,
                               struct pc_error *err);

/* url as a URL again with the password hidden ("redis://:***@10.0.0.2:6379/1"), for logs and
 * `precharge config`. Writes at most size bytes, always NUL-terminated. Returns buf. */
char *pc_redis_url_show(const struct pc_redis_url *url, char *buf, size_t size);

#endif
