/* emit.c - releases generated text in whole UTF-8 characters and cuts it at stop strings. */
#include "emit.h"

#include <stdlib.h>
#include <string.h>

bool pc_emit_init(struct pc_emit *e, const char *const *stops, size_t n_stops)
{
    memset(e, 0, sizeof(*e));
    if (n_stops == 0)
        return true;
    e->stops = calloc(n_stops, sizeof(char *));
    if (e->stops == NULL)
        return false;
    for (size_t i = 0; i < n_stops; i++) {
        if (stops[i][0] == '\0')
            continue;
        e->stops[e->n_stops] = strdup(stops[i]);
        if (e->stops[e->n_stops] == NULL) {
            pc_emit_free(e);
            return false;
        }
        e->n_stops++;
    }
    return true;
}

void pc_emit_free(struct pc_emit *e)
{
    for (size_t i = 0; i < e->n_stops; i++)
        free(e->stops[i]);
    free(e->stops);
    pc_buf_free(&e->pending);
    pc_buf_free(&e->out);
    memset(e, 0, sizeof(*e));
}

/* Length of the longest suffix of text that is a proper prefix of some stop string. */
static size_t stop_prefix_suffix(const struct pc_emit *e, const char *text, size_t len)
{
    size_t best = 0;
    for (size_t i = 0; i < e->n_stops; i++) {
        size_t slen = strlen(e->stops[i]);
        size_t max = slen - 1 < len ? slen - 1 : len;
        for (size_t k = max; k > best; k--) {
            if (memcmp(text + len - k, e->stops[i], k) == 0) {
                best = k;
                break;
            }
        }
    }
    return best;
}

bool pc_emit_push(struct pc_emit *e, const char *piece, size_t len)
{
    pc_buf_reset(&e->out);
    if (e->stopped)
        return true;
    if (!pc_buf_append(&e->pending, piece, len))
        return false;

    const char *text = e->pending.data;
    size_t n = e->pending.len;

    /* Earliest stop string in what is pending. */
    const char *cut = NULL;
    for (size_t i = 0; i < e->n_stops; i++) {
        const char *hit = memmem(text, n, e->stops[i], strlen(e->stops[i]));
        if (hit != NULL && (cut == NULL || hit < cut))
            cut = hit;
    }
    if (cut != NULL) {
        size_t keep = (size_t)(cut - text);
        if (!pc_utf8_append_valid(&e->out, text, keep))
            return false;
        pc_buf_reset(&e->pending);
        e->stopped = true;
        return true;
    }

    size_t release = n - stop_prefix_suffix(e, text, n);
    release = pc_utf8_complete_prefix(text, release);
    if (!pc_utf8_append_valid(&e->out, text, release))
        return false;
    pc_buf_consume(&e->pending, release);
    return true;
}

void pc_emit_flush(struct pc_emit *e)
{
    pc_buf_reset(&e->out);
    if (!e->stopped && e->pending.len > 0) {
        size_t n = pc_utf8_complete_prefix(e->pending.data, e->pending.len);
        pc_utf8_append_valid(&e->out, e->pending.data, n);
    }
    pc_buf_reset(&e->pending);
}
