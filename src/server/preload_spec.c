/* preload_spec.c - what to preload: keep-warm schedules and per-model specs, to and from JSON. */
#include "preload.h"

#include <stdio.h>
#include <string.h>

/* "HH:MM" or "HH:MM:SS" as seconds of the day (24:00 is the day's end). */
static int parse_hhmm(const char *s, int *seconds, const char **end)
{
    int h = 0, m = 0, sec = 0, n = 0, n2 = 0;
    if (sscanf(s, "%2d:%2d%n", &h, &m, &n) != 2 || s[0] < '0' || s[0] > '9')
        return -1;
    if (s[n] == ':' && sscanf(s + n, ":%2d%n", &sec, &n2) == 1)
        n += n2;
    if (h < 0 || h > 24 || m < 0 || m > 59 || sec < 0 || sec > 59 || (h == 24 && (m || sec)))
        return -1;
    *seconds = h * 3600 + m * 60 + sec;
    *end = s + n;
    return 0;
}

enum pc_err pc_keep_warm_parse(const char *s, struct pc_keep_warm *out, struct pc_error *err)
{
    memset(out, 0, sizeof(*out));
    if (s == NULL || s[0] == '\0' || strcmp(s, "none") == 0)
        return PC_OK;
    if (strcmp(s, "always") == 0) {
        out->kind = PC_KEEP_WARM_ALWAYS;
        return PC_OK;
    }
    const char *p;
    if (parse_hhmm(s, &out->start_s, &p) != 0)
        goto bad;
    if (*p == '-')
        p++;
    else if (strncmp(p, "\xe2\x80\x93", 3) == 0) /* an en dash, as the issue writes it */
        p += 3;
    else
        goto bad;
    if (parse_hhmm(p, &out->end_s, &p) != 0 || *p != '\0' || out->start_s == out->end_s)
        goto bad;
    out->kind = PC_KEEP_WARM_WINDOW;
    return PC_OK;
bad:
    memset(out, 0, sizeof(*out));
    return pc_error_set(err, PC_ERR_INVALID,
                        "keep-warm \"%s\": use \"always\", \"none\" or a daily window in local "
                        "time such as \"08:00-18:00\"",
                        s);
}

static int format_hhmm(int s, bool seconds, char *buf, size_t size)
{
    if (!seconds)
        return snprintf(buf, size, "%02d:%02d", s / 3600, s / 60 % 60);
    return snprintf(buf, size, "%02d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
}

const char *pc_keep_warm_format(const struct pc_keep_warm *kw, char *buf, size_t size)
{
    if (kw->kind == PC_KEEP_WARM_ALWAYS) {
        snprintf(buf, size, "always");
    } else if (kw->kind == PC_KEEP_WARM_WINDOW) {
        /* Both edges to the second when either needs it: "10:12:56-10:13:00", not "-10:13". */
        bool seconds = kw->start_s % 60 != 0 || kw->end_s % 60 != 0;
        int n = format_hhmm(kw->start_s, seconds, buf, size);
        if (n > 0 && (size_t)n + 1 < size) {
            buf[n] = '-';
            format_hhmm(kw->end_s, seconds, buf + n + 1, size - (size_t)n - 1);
        }
    } else {
        snprintf(buf, size, "none");
    }
    return buf;
}

bool pc_keep_warm_active(const struct pc_keep_warm *kw, int second_of_day)
{
    switch (kw->kind) {
    case PC_KEEP_WARM_ALWAYS:
        return true;
    case PC_KEEP_WARM_WINDOW:
        if (kw->start_s < kw->end_s)
            return second_of_day >= kw->start_s && second_of_day < kw->end_s;
        return second_of_day >= kw->start_s || second_of_day < kw->end_s;
    case PC_KEEP_WARM_NONE:
        break;
    }
    return false;
}

int pc_keep_warm_next_edge(const struct pc_keep_warm *kw, int second_of_day)
{
    if (kw->kind != PC_KEEP_WARM_WINDOW)
        return -1;
    int to_start = ((kw->start_s - second_of_day) % 86400 + 86400) % 86400;
    int to_end = ((kw->end_s - second_of_day) % 86400 + 86400) % 86400;
    to_start = to_start ? to_start : 86400;
    to_end = to_end ? to_end : 86400;
    return to_start < to_end ? to_start : to_end;
}

void pc_preload_spec_default(struct pc_preload_spec *spec, const char *model)
{
    memset(spec, 0, sizeof(*spec));
    snprintf(spec->model, sizeof(spec->model), "%s", model);
    spec->max_retries = 3; /* seed 001 */
    spec->retry_delay_ms = 2000;
    spec->required = true;
    spec->named = true;
}

static enum pc_err get_string(json_t *o, const char *field, char *out, size_t size,
                              struct pc_error *err)
{
    json_t *v = json_object_get(o, field);
    if (v == NULL || json_is_null(v))
        return PC_OK;
    if (!json_is_string(v))
        return pc_error_set(err, PC_ERR_INVALID, "preload field \"%s\" must be a string", field);
    if (json_string_length(v) >= size)
        return pc_error_set(err, PC_ERR_TOO_LARGE, "preload field \"%s\" is longer than %zu bytes",
                            field, size - 1);
    snprintf(out, size, "%s", json_string_value(v));
    return PC_OK;
}

static enum pc_err get_int(json_t *o, const char *field, long long max, long long *out,
                           struct pc_error *err)
{
    json_t *v = json_object_get(o, field);
    if (v == NULL || json_is_null(v))
        return PC_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
        return pc_error_set(err, PC_ERR_INVALID,
                            "preload field \"%s\" must be a whole number from 0 to %lld", field,
                            max);
    *out = json_integer_value(v);
    return PC_OK;
}

enum pc_err pc_preload_spec_from_json(json_t *o, struct pc_preload_spec *spec, struct pc_error *err)
{
    static const char *const known[] = {"model",  "displayName", "maxRetries", "retryDelayMs",
                                        "warmup", "context",     "keepWarm",   "required"};
    if (json_is_string(o)) {
        pc_preload_spec_default(spec, json_string_value(o));
        return PC_OK;
    }
    if (!json_is_object(o))
        return pc_error_set(err, PC_ERR_INVALID,
                            "a preload entry must be a model name or an "
                            "object with a \"model\" field");
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        size_t i = 0;
        while (i < sizeof(known) / sizeof(known[0]) && strcmp(known[i], key) != 0)
            i++;
        if (i == sizeof(known) / sizeof(known[0]))
            return pc_error_set(err, PC_ERR_INVALID, "unknown preload field \"%s\"", key);
    }
    const char *model = json_string_value(json_object_get(o, "model"));
    if (model == NULL || model[0] == '\0')
        return pc_error_set(err, PC_ERR_INVALID, "preload field \"model\" is required");
    pc_preload_spec_default(spec, model);
    spec->named = false;
    long long retries = spec->max_retries, delay = spec->retry_delay_ms;
    char kw[64] = "";
    enum pc_err rc;
    if ((rc = get_string(o, "model", spec->model, sizeof(spec->model), err)) != PC_OK ||
        (rc = get_string(o, "displayName", spec->display_name, sizeof(spec->display_name), err)) !=
            PC_OK ||
        (rc = get_string(o, "warmup", spec->warmup, sizeof(spec->warmup), err)) != PC_OK ||
        (rc = get_string(o, "context", spec->context, sizeof(spec->context), err)) != PC_OK ||
        (rc = get_string(o, "keepWarm", kw, sizeof(kw), err)) != PC_OK ||
        (rc = get_int(o, "maxRetries", 1000, &retries, err)) != PC_OK ||
        (rc = get_int(o, "retryDelayMs", 86400000, &delay, err)) != PC_OK ||
        (rc = pc_keep_warm_parse(kw, &spec->keep_warm, err)) != PC_OK)
        return rc;
    spec->max_retries = (int)retries;
    spec->retry_delay_ms = delay;
    json_t *req = json_object_get(o, "required");
    if (req != NULL && !json_is_null(req)) {
        if (!json_is_boolean(req))
            return pc_error_set(err, PC_ERR_INVALID,
                                "preload field \"required\" must be true or "
                                "false");
        spec->required = json_is_true(req);
    }
    return PC_OK;
}

json_t *pc_preload_spec_to_json(const struct pc_preload_spec *spec)
{
    char kw[24];
    return json_pack(
        "{s:s, s:s, s:i, s:I, s:s, s:s, s:s, s:b}", "model", spec->model, "displayName",
        spec->display_name[0] ? spec->display_name : spec->model, "maxRetries", spec->max_retries,
        "retryDelayMs", (json_int_t)spec->retry_delay_ms, "warmup", spec->warmup, "context",
        spec->context, "keepWarm", pc_keep_warm_format(&spec->keep_warm, kw, sizeof(kw)),
        "required", spec->required);
}
