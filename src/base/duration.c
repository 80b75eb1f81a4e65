/* duration.c - parse Go-style durations as Ollama's keep_alive accepts them. */
#include "duration.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *suffix;
    double ns;
} units[] = {
    /* Longest suffixes first so that "ms" is not read as "m". */
    {"ns", 1.0}, {"us", 1e3}, {"µs", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9},
};

/* Nanoseconds to int64_t, saturating: (double)INT64_MAX rounds up to 2^63, which does not fit,
 * so the comparison is >=. */
static int64_t saturate_ns(double ns)
{
    return ns >= (double)INT64_MAX ? INT64_MAX : (int64_t)ns;
}

int64_t pc_duration_from_seconds(double secs)
{
    if (isnan(secs))
        return 0; /* JSON has no NaN, but a caller's arithmetic may make one */
    if (secs < 0)
        return PC_DURATION_FOREVER;
    return saturate_ns(secs * 1e9);
}

static int match_unit(const char *p, double *ns, size_t *len)
{
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        size_t n = strlen(units[i].suffix);
        if (strncmp(p, units[i].suffix, n) == 0) {
            *ns = units[i].ns;
            *len = n;
            return 1;
        }
    }
    return 0;
}

enum pc_err pc_duration_parse(const char *s, int64_t *out_ns, struct pc_error *err)
{
    const char *p = s;
    int neg = 0;
    double total = 0;

    *out_ns = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (*p == '\0')
        goto bad;

    /* Digits, dots and unit letters only: no hex, exponents, spaces or signs inside. */
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q) && *q != '.' && strchr("nsuµmh", *q) == NULL &&
            (unsigned char)*q < 0x80)
            goto bad;
    char *end;
    double bare = strtod(p, &end);
    if (end != p && *end == '\0') {
        if (!isfinite(bare))
            goto bad;
        *out_ns = pc_duration_from_seconds(neg ? -bare : bare);
        return PC_OK;
    }
    while (*p != '\0') {
        if (!isdigit((unsigned char)*p) && *p != '.')
            goto bad;
        double v = strtod(p, &end);
        if (end == p)
            goto bad;
        p = end;
        double unit;
        size_t ulen;
        if (!match_unit(p, &unit, &ulen))
            goto bad;
        p += ulen;
        total += v * unit;
    }
    if (neg && total > 0) {
        *out_ns = PC_DURATION_FOREVER;
        return PC_OK;
    }
    *out_ns = saturate_ns(total);
    return PC_OK;

bad:
    return pc_error_set(err, PC_ERR_INVALID,
                        "invalid duration \"%s\": use a number of seconds or a duration such as "
                        "\"5m\", \"1h30m\" or \"-1\"",
                        s);
}
