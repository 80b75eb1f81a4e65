/* http_strict.c - request framing that a proxy in front could read otherwise than we do,
 * refused as soon as the headers are in: where request smuggling starts. */
#include "httpInt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What one pass over the headers counts. */
struct framing {
    unsigned hosts;
    unsigned lengths;
    const char *length;   /* the first Content-Length */
    bool lengths_differ;  /* another Content-Length with another value */
    const char *encoding; /* the first Transfer-Encoding */
    unsigned encodings;
    unsigned args;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    struct framing *f = cls;
    (void)kind;
    if (value == NULL)
        value = "";
    if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
        f->hosts++;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (f->lengths++ == 0)
            f->length = value;
        else if (strcmp(value, f->length) != 0)
            f->lengths_differ = true;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        if (f->encodings++ == 0)
            f->encoding = value;
    }
    return MHD_YES;
}

static enum MHD_Result count_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    (void)key;
    (void)value;
    ((struct framing *)cls)->args++;
    return MHD_YES;
}

/* A Content-Length is digits only, and fits 64 bits. */
static bool parse_length(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

bool pc_http_framing_ok(struct MHD_Connection *mc, size_t max_body, struct pc_http_reply *reply)
{
    struct framing f = {0};
    MHD_get_connection_values(mc, MHD_HEADER_KIND, count_header, &f);
    MHD_get_connection_values(mc, MHD_GET_ARGUMENT_KIND, count_arg, &f);
    uint64_t length = 0;
    if (f.hosts > 1)
        pc_http_reply_error(reply, 400, "more than one Host header");
    else if (f.lengths_differ)
        pc_http_reply_error(reply, 400, "Content-Length headers that disagree");
    else if (f.lengths > 0 && f.encodings > 0)
        pc_http_reply_error(reply, 400, "both Transfer-Encoding and Content-Length");
    else if (f.encodings > 1 || (f.encodings == 1 && strcasecmp(f.encoding, "chunked") != 0))
        pc_http_reply_error(reply, 400,
                            "Transfer-Encoding \"%.64s\" is not supported: only chunked is",
                            f.encodings > 1 ? "(several)" : f.encoding);
    else if (f.lengths > 0 && !parse_length(f.length, &length))
        pc_http_reply_error(reply, 400, "Content-Length \"%.32s\" is not a number of bytes",
                            f.length);
    else if (length > max_body && length - max_body > PC_HTTP_MAX_DRAIN)
        /* Over the limit by less, the body is read and dropped before the 413 (http.c), as a
         * client may not read an answer before it has sent its body; this one never ends. */
        pc_http_reply_error(reply, 413, "request body is larger than %zu bytes", max_body);
    else if (f.args > PC_HTTP_MAX_QUERY_ARGS)
        pc_http_reply_error(reply, 400, "%u query parameters; the limit is %d", f.args,
                            PC_HTTP_MAX_QUERY_ARGS);
    else
        return true;
    /* The body's framing is in doubt: nothing after this reply on the connection is trusted. */
    pc_http_reply_header(reply, MHD_HTTP_HEADER_CONNECTION, "close");
    return false;
}
