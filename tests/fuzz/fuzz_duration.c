/* fuzz_duration.c - libFuzzer target: keep_alive durations, as Go duration strings and as the
 * JSON values a request body carries. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/duration.h"
#include "server/genopts.h"

/* What any duration must come out as: nanoseconds >= 0, or "forever". */
static void check_ns(int64_t ns)
{
    if (ns < 0 && ns != PC_DURATION_FOREVER)
        abort();
}

/* The text as PRECHARGE_KEEP_ALIVE or a "keep_alive" string gives it. */
static void parse_text(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return;
    memcpy(s, data, size);
    s[size] = '\0';
    int64_t ns = 0;
    struct pc_error err = {0};
    enum pc_err rc = pc_duration_parse(s, &ns, &err);
    if (rc == PC_OK)
        check_ns(ns);
    else if (rc != PC_ERR_INVALID || err.msg[0] == '\0')
        abort(); /* bad text is a 400 that says why, and nothing else */
    free(s);
}

/* The bytes as a JSON value in a body's "keep_alive": a number, a string, or anything else. */
static void parse_json(const uint8_t *data, size_t size)
{
    json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (v == NULL)
        return;
    json_t *body = json_pack("{s:o}", "keep_alive", v);
    if (body == NULL)
        return;
    struct pc_http_reply reply = {0};
    int64_t ns = 0;
    if (pc_genopts_keep_alive(body, &ns, &reply) == 0) {
        if (ns != -1) /* -1: the pool's default */
            check_ns(ns);
        if (reply.status != 0)
            abort();
    } else if (reply.status != 400 || reply.body == NULL) {
        abort();
    }
    free(reply.body);
    json_decref(body);
}

/* Any double, as seconds: JSON never gives NaN or infinities, but the conversion must not
 * depend on that. */
static void from_seconds(const uint8_t *data, size_t size)
{
    double secs;
    if (size < sizeof(secs))
        return;
    memcpy(&secs, data, sizeof(secs));
    check_ns(pc_duration_from_seconds(secs));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_text(data, size);
    parse_json(data, size);
    from_seconds(data, size);
    return 0;
}
