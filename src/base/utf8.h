/* utf8.h - UTF-8 text that is safe to put in JSON: whole characters, valid bytes. */
#ifndef PC_UTF8_H
#define PC_UTF8_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* Length of the longest prefix of s[0..len) that ends on a UTF-8 character boundary. */
size_t pc_utf8_complete_prefix(const char *s, size_t len);

/* Append text to b with each invalid UTF-8 byte replaced by U+FFFD, so that JSON encoders take it.
 * Returns false when memory runs out. */
bool pc_utf8_append_valid(struct pc_buf *b, const char *text, size_t n);

#endif
