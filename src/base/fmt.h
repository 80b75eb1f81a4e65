/* fmt.h - numbers for people: parameter counts and byte sizes. */
#ifndef PC_FMT_H
#define PC_FMT_H

#include <stddef.h>
#include <stdint.h>

/* "1.1B", "64.3M", "512K", as Ollama shows parameter sizes. Returns buf. */
const char *pc_fmt_params(uint64_t n, char *buf, size_t size);

/* Decimal units as Ollama shows sizes: "637 MB", "1.9 GB", "12 KB". Returns buf. */
const char *pc_fmt_bytes(uint64_t bytes, char *buf, size_t size);

/* The same with `extra` more decimals on GB and MB ("636.7 MB", "1.82 GB"), for progress. */
const char *pc_fmt_bytes_fine(uint64_t bytes, int extra, char *buf, size_t size);

/* Parse "24G", "16GiB", "512M", "1.5GB", "1048576" (bytes). Binary multiples (K=1024).
 * Returns 0 on success, -1 on bad input. */
int pc_parse_bytes(const char *s, uint64_t *out /* OUT */);

#endif
