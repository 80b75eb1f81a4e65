/* ui_assets.h - the dashboard's files (src/server/ui/), embedded in the binary at build time by
 * cmake/embed.cmake. */
#ifndef PC_UI_ASSETS_H
#define PC_UI_ASSETS_H

#include <stddef.h>

struct pc_ui_asset {
    const char *name;          /* the file's name in src/server/ui/: "index.html" */
    const unsigned char *data; /* its bytes (and a NUL after them) */
    size_t len;                /* without that NUL */
};

/* Every file, ended by an entry whose name is NULL. */
extern const struct pc_ui_asset pc_ui_assets[];

#endif
