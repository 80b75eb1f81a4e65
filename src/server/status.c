/* status.c - the one table from precharge's error codes to HTTP statuses. */
#include "http.h"

int pc_http_status_of(enum pc_err code)
{
    switch (code) {
    case PC_OK:
        return 200;
    case PC_ERR_INVALID:
    case PC_ERR_BAD_PATH:
    case PC_ERR_TEMPLATE:
    case PC_ERR_TOKENIZE:
    case PC_ERR_CTX_OVERFLOW:
        return 400;
    case PC_ERR_NOT_FOUND:
        return 404;
    case PC_ERR_CONFLICT:
        return 409;
    case PC_ERR_TOO_LARGE:
        return 413;
    case PC_ERR_CANCELLED:
        return 499;
    case PC_ERR_MODEL_FORMAT:
    case PC_ERR_MODEL_LOAD:
    case PC_ERR_CONTEXT:
    case PC_ERR_DECODE:
    case PC_ERR_IO:
    case PC_ERR_NOMEM:
        return 500;
    case PC_ERR_NETWORK:
    case PC_ERR_CHECKSUM: /* the server upstream sent other bytes than the catalog promised */
        return 502;
    case PC_ERR_BUSY:
    case PC_ERR_UNAVAILABLE:
    case PC_ERR_NO_MEMORY: /* the model does not fit beside the pinned ones: 503, as llama-server
                            * answers when it cannot take a request, which clients retry later */
        return 503;
    case PC_ERR_TIMEOUT:
        return 504;
    case PC_ERR_CACHE_FULL: /* the models in use hold the store's room */
        return 507;
    case PC_ERR__COUNT:
        break;
    }
    return 500;
}
