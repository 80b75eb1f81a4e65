/* emit.c - releases generated text in whole UTF-8 characters and cuts it at stop strings. */
#include "emit.h"

#include <stdlib.h>
#include <string.h>

size_t pc_utf8_complete_prefix(const char *s, size_t len)
{
    /* Look back at most 3 bytes for the lead byte of a character that is still incomplete. */
    for (size_t back = 1; back <= 4 && back <= len; back++) {
        unsigned char c = (unsigned char)s[len - back];
        if ((c & 0xC0) == 0x80)
            continue; /* continuation byte */
        size_t need = c < 0x80             ? 1
                      : (c & 0xE0) == 0xC0 ? 2
                      : (c & 0xF0) == 0xE0 ? 3
                      : (c & 0xF8) == 0xF0 ? 4
                                           : 1;
        return back < need ? len - back : len;
    }
    return len;
}

/* Length of the valid UTF-8 character at s (1-4), or 0 when the bytes there are not one. */
static size_t utf8_char_len(const unsigned char *s, size_t n)
{
    size_t need;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xE0) == 0xC0 && s[0] >= 0xC2)
        need = 2;
    else if ((s[0] & 0xF0) == 0xE0)
        need = 3;
    else if ((s[0] & 0xF8) == 0xF0 && s[0] <= 0xF4)
        need = 4;
    else
        return 0;
    if (need > n)
        return 0;
    for (size_t i = 1; i < need; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if (need == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0)))
        return 0; /* overlong, or a UTF-16 surrogate */
    if (need == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90)))
        return 0;
    return need;
}

bool pc_utf8_append_valid(struct pc_buf *b, const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, run = 0;
    while (i < n) {
        size_t k = utf8_char_len(s + i, n - i);
        if (k > 0) {
            i += k;
            continue;
        }
        if (!pc_buf_append(b, text + run, i - run) || !pc_buf_append(b, "\xEF\xBF\xBD", 3))
            return false;
        run = ++i;
    }
    return pc_buf_append(b, text + run, n - run);
}

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
