/* genopts.c - generation options shared by the Ollama and OpenAI APIs. */
#include "genopts.h"

#include <math.h>
#include <string.h>

#include "../base/duration.h"

void pc_genopts_init(struct pc_genopts *g)
{
    memset(g, 0, sizeof(*g));
    g->sampling = pc_sampling_default();
}

int pc_genopts_number(json_t *obj, const char *prefix, const char *field, double min, double max,
                      double *out, struct pc_http_reply *reply)
{
    json_t *v = json_object_get(obj, field);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_number(v)) {
        pc_http_reply_error(reply, 400, "%s%s must be a number", prefix, field);
        return -1;
    }
    double d = json_number_value(v);
    if (!isfinite(d) || d < min || d > max) {
        pc_http_reply_error(reply, 400, "%s%s must be between %g and %g", prefix, field, min, max);
        return -1;
    }
    *out = d;
    return 0;
}

int pc_genopts_fields(json_t *obj, const char *prefix, const struct pc_genopts_field *fields,
                      size_t n, struct pc_genopts *g, struct pc_http_reply *reply)
{
    for (size_t i = 0; i < n; i++) {
        const struct pc_genopts_field *f = &fields[i];
        void *dst = (char *)g + f->offset;
        double d = NAN;
        if (pc_genopts_number(obj, prefix, f->name, f->min, f->max, &d, reply) != 0)
            return -1;
        if (isnan(d))
            continue; /* absent */
        if (f->type == PC_GENOPT_F32)
            *(float *)dst = (float)d;
        else if (f->type == PC_GENOPT_I32)
            *(int32_t *)dst = (int32_t)d;
        else
            *(uint32_t *)dst = (uint32_t)d;
    }
    return 0;
}

int pc_genopts_stops(json_t *obj, const char *prefix, struct pc_genopts *g,
                     struct pc_http_reply *reply)
{
    json_t *v = json_object_get(obj, "stop");
    struct pc_sampling *s = &g->sampling;
    s->n_stop = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_string(v)) {
        g->stops[s->n_stop++] = json_string_value(v);
    } else if (json_is_array(v)) {
        if (json_array_size(v) > PC_GENOPTS_MAX_STOPS) {
            pc_http_reply_error(reply, 400, "%sstop has more than %d strings", prefix,
                                PC_GENOPTS_MAX_STOPS);
            return -1;
        }
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *e = json_array_get(v, i);
            if (!json_is_string(e))
                goto bad;
            g->stops[s->n_stop++] = json_string_value(e);
        }
    } else {
        goto bad;
    }
    s->stop = g->stops;
    return 0;
bad:
    s->n_stop = 0;
    pc_http_reply_error(reply, 400, "%sstop must be a string or an array of strings", prefix);
    return -1;
}

int pc_genopts_seed(json_t *obj, const char *prefix, struct pc_genopts *g,
                    struct pc_http_reply *reply)
{
    double d = -1;
    if (pc_genopts_number(obj, prefix, "seed", -9.3e18, 9.3e18, &d, reply) != 0)
        return -1;
    /* Negative: random, as Ollama's -1. Larger seeds wrap to llama.cpp's 32 bits. */
    g->sampling.seed = d < 0 ? UINT32_MAX : (uint32_t)((uint64_t)d & 0xffffffffu);
    if (g->sampling.seed == UINT32_MAX && d >= 0)
        g->sampling.seed = 0;
    return 0;
}

#define F PC_GENOPT_FIELD
static const struct pc_genopts_field sampler_fields[] = {
    F("typical_p", 0, 1, F32, sampling.typical_p),
    F("mirostat_tau", 0, 100, F32, sampling.mirostat_tau),
    F("mirostat_eta", 0, 100, F32, sampling.mirostat_eta),
};
#undef F

int pc_genopts_sampler_options(json_t *obj, const char *prefix, struct pc_genopts *g,
                               struct pc_http_reply *reply)
{
    if (pc_genopts_fields(obj, prefix, sampler_fields,
                          sizeof(sampler_fields) / sizeof(sampler_fields[0]), g, reply) != 0)
        return -1;
    double mirostat = g->sampling.mirostat;
    if (pc_genopts_number(obj, prefix, "mirostat", 0, 2, &mirostat, reply) != 0)
        return -1;
    if (mirostat != floor(mirostat)) {
        pc_http_reply_error(reply, 400, "%smirostat must be 0, 1 or 2", prefix);
        return -1;
    }
    g->sampling.mirostat = (int32_t)mirostat;
    /* Gone from llama.cpp's samplers: a value that would change nothing is taken, so that
     * clients which send every option with its default keep working. */
    double tfs_z = 1.0;
    if (pc_genopts_number(obj, prefix, "tfs_z", -1e9, 1e9, &tfs_z, reply) != 0)
        return -1;
    if (tfs_z != 1.0) {
        pc_http_reply_error(reply, 400,
                            "%stfs_z: tail-free sampling is not supported (llama.cpp removed it); "
                            "only 1.0, which changes nothing, is accepted",
                            prefix);
        return -1;
    }
    json_t *pn = json_object_get(obj, "penalize_newline");
    if (pn != NULL && !json_is_null(pn) && !json_is_boolean(pn)) {
        pc_http_reply_error(reply, 400, "%spenalize_newline must be true or false", prefix);
        return -1;
    }
    if (json_is_true(pn)) {
        pc_http_reply_error(reply, 400,
                            "%spenalize_newline: not supported (llama.cpp removed it); only "
                            "false is accepted",
                            prefix);
        return -1;
    }
    return 0;
}

int pc_genopts_format(json_t *obj, struct pc_genopts *g, struct pc_http_reply *reply)
{
    json_t *v = json_object_get(obj, "format");
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_string(v) && json_string_value(v)[0] == '\0')
        return 0;
    if (json_is_string(v) && strcmp(json_string_value(v), "json") == 0) {
        g->sampling.json = true;
        return 0;
    }
    pc_http_reply_error(reply, 400, "field \"format\" must be \"json\" or a JSON schema object");
    return -1;
}

int pc_genopts_keep_alive(json_t *obj, int64_t *out, struct pc_http_reply *reply)
{
    json_t *v = json_object_get(obj, "keep_alive");
    struct pc_error err;
    *out = -1;
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_number(v)) {
        *out = pc_duration_from_seconds(json_number_value(v));
        return 0;
    }
    if (!json_is_string(v)) {
        pc_http_reply_error(reply, 400,
                            "field \"keep_alive\" must be a duration string or a number of "
                            "seconds");
        return -1;
    }
    if (pc_duration_parse(json_string_value(v), out, &err) != PC_OK) {
        pc_http_reply_error(reply, 400, "keep_alive: %s", err.msg);
        return -1;
    }
    return 0;
}
