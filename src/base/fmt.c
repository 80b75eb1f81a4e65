/* fmt.c - numbers for people: parameter counts and byte sizes. */
#include "fmt.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

const char *pc_fmt_params(uint64_t n, char *buf, size_t size)
{
    if (n >= 1000000000ull)
        snprintf(buf, size, "%.1fB", (double)n / 1e9);
    else if (n >= 1000000ull)
        snprintf(buf, size, "%.1fM", (double)n / 1e6);
    else
        snprintf(buf, size, "%.0fK", (double)n / 1e3);
    return buf;
}

const char *pc_fmt_bytes_fine(uint64_t bytes, int extra, char *buf, size_t size)
{
    if (bytes >= 1000000000ull)
        snprintf(buf, size, "%.*f GB", 1 + extra, (double)bytes / 1e9);
    else if (bytes >= 1000000ull)
        snprintf(buf, size, "%.*f MB", extra, (double)bytes / 1e6);
    else
        snprintf(buf, size, "%.0f KB", (double)bytes / 1e3);
    return buf;
}

const char *pc_fmt_bytes(uint64_t bytes, char *buf, size_t size)
{
    return pc_fmt_bytes_fine(bytes, 0, buf, size);
}

int pc_parse_bytes(const char *s, uint64_t *out)
{
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"k", 1024.0},
        {"kb", 1024.0},
        {"kib", 1024.0},
        {"m", 1048576.0},
        {"mb", 1048576.0},
        {"mib", 1048576.0},
        {"g", 1073741824.0},
        {"gb", 1073741824.0},
        {"gib", 1073741824.0},
        {"t", 1099511627776.0},
        {"tb", 1099511627776.0},
        {"tib", 1099511627776.0},
    };
    char *end;
    if (!isdigit((unsigned char)*s))
        return -1;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v) || v < 0)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(end, units[i].suffix) == 0) {
            double b = v * units[i].mult;
            if (b > 1.8e19)
                return -1;
            *out = (uint64_t)b;
            return 0;
        }
    }
    return -1;
}
