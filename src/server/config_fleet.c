/* config_fleet.c - the values of the fleet's settings for the settings table: the Redis URL
 * that turns the fleet on (docs/fleet.md). */
#include "serverInt.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../fleet/url.h"

enum pc_err pc_server_parse_redis(const char *s, struct pc_server_config *cfg, struct pc_error *err)
{
    if (s[0] == '\0' || strcasecmp(s, "off") == 0 || strcasecmp(s, "none") == 0) {
        cfg->redis_url[0] = '\0';
        return PC_OK;
    }
    if (strlen(s) >= sizeof(cfg->redis_url))
        return pc_error_set(err, PC_ERR_INVALID, "the Redis URL is longer than %zu bytes",
                            sizeof(cfg->redis_url) - 1);
    struct pc_redis_url url;
    enum pc_err rc = pc_redis_url_parse(s, &url, err);
    if (rc == PC_OK)
        snprintf(cfg->redis_url, sizeof(cfg->redis_url), "%s", s);
    return rc;
}

json_t *pc_server_show_redis(const struct pc_server_config *cfg)
{
    struct pc_redis_url url;
    if (cfg->redis_url[0] == '\0' || pc_redis_url_parse(cfg->redis_url, &url, NULL) != PC_OK)
        return json_string("off");
    char shown[600];
    return json_string(pc_redis_url_show(&url, shown, sizeof(shown)));
}
