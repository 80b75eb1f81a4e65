/* fuzz_redis_url.c - libFuzzer target: Redis URLs as the redis setting (--redis,
 * PRECHARGE_REDIS_URL, config redis) takes them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    struct pc_redis_url url;
    struct pc_error err = {0};
    enum pc_err rc = pc_redis_url_parse(s, &url, &err);
    if (rc != PC_OK) {
        if (rc != PC_ERR_INVALID || err.msg[0] == '\0' || url.host[0] != '\0')
            abort(); /* a bad URL is refused with a reason, and nothing is left set */
    } else {
        /* Somewhere to connect to, in range; the password never shown. */
        if ((url.host[0] == '\0') == (url.socket[0] == '\0') || url.port < 1 || url.port > 65535 ||
            url.db < 0)
            abort();
        char shown[600];
        pc_redis_url_show(&url, shown, sizeof(shown));
        if (url.password[0] != '\0' && url.socket[0] == '\0' && strstr(shown, ":***@") == NULL)
            abort();
    }
    free(s);
    return 0;
}
