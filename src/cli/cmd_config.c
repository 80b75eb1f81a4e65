/* cmd_config.c - `precharge config [serve's flags]`: the configuration that `serve` would run
 * with, after the environment, the config file and the flags, as JSON. */
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "../server/server.h"
#include "cli.h"

int pc_cmd_config(int argc, char **argv)
{
    struct pc_server_config cfg;
    int rc = pc_serve_configure(argc, argv, &cfg);
    if (rc != 0)
        return rc > 0 ? PC_EXIT_OK : PC_EXIT_USAGE;
    json_t *o = pc_server_config_to_json(&cfg);
    char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (text == NULL) {
        pc_cli_error("config: out of memory");
        return PC_EXIT_FAIL;
    }
    printf("%s\n", text);
    free(text);
    return PC_EXIT_OK;
}
