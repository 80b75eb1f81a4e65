/* err.c - messages for precharge's error codes, and error details. */
#include "err.h"

#include <stdio.h>
#include <string.h>

#include "utf8.h"

static const char *const messages[] = {
#define PC_ERR_MSG(name, msg) msg,
    PC_ERRORS(PC_ERR_MSG)
#undef PC_ERR_MSG
};

static const char *const names[] = {
#define PC_ERR_NAME(name, msg) #name,
    PC_ERRORS(PC_ERR_NAME)
#undef PC_ERR_NAME
};

const char *pc_strerror(enum pc_err code)
{
    if ((unsigned)code >= PC_ERR__COUNT)
        return "unknown error";
    return messages[code];
}

const char *pc_errname(enum pc_err code)
{
    if ((unsigned)code >= PC_ERR__COUNT)
        return "PC_ERR_UNKNOWN";
    return names[code];
}

enum pc_err pc_error_set(struct pc_error *e, enum pc_err code, const char *fmt, ...)
{
    if (e == NULL)
        return code;
    e->code = code;
    if (fmt == NULL) {
        snprintf(e->msg, sizeof(e->msg), "%s", pc_strerror(code));
        return code;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    /* A message cut at the buffer's end ends on a whole character, so that JSON takes it. */
    e->msg[pc_utf8_complete_prefix(e->msg, strlen(e->msg))] = '\0';
    return code;
}

void pc_error_clear(struct pc_error *e)
{
    if (e == NULL)
        return;
    e->code = PC_OK;
    e->msg[0] = '\0';
}
