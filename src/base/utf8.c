/* utf8.c - UTF-8 text that is safe to put in JSON: whole characters, valid bytes. */
#include "utf8.h"

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
