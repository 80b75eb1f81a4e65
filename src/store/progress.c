/* progress.c - download progress as Ollama-style JSON lines, for the CLI and the API alike. */
#include <jansson.h>

#include "download.h"

char *pc_download_progress_json(const struct pc_download_progress *p, bool with_speed)
{
    json_t *o = json_pack("{s:s}", "status", p->status);
    if (o == NULL)
        return NULL;
    if (p->digest != NULL && p->digest[0] != '\0')
        json_object_set_new(o, "digest", json_string(p->digest));
    bool counts = p->phase == PC_DL_DOWNLOADING || p->phase == PC_DL_WAITING ||
                  p->phase == PC_DL_RESUMING || p->phase == PC_DL_RETRYING || p->total > 0;
    if (counts && p->phase != PC_DL_DONE) {
        if (p->total > 0)
            json_object_set_new(o, "total", json_integer((json_int_t)p->total));
        json_object_set_new(o, "completed", json_integer((json_int_t)p->completed));
    }
    if (with_speed && p->phase == PC_DL_DOWNLOADING && p->bytes_per_sec > 0)
        json_object_set_new(o, "bytes_per_sec", json_integer((json_int_t)p->bytes_per_sec));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}
