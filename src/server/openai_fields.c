/* openai_fields.c - the OpenAI request fields beyond sampling numbers that /v1 routes share:
 * identifiers, logit_bias, and the fields of features precharge does not have. */
#include "openai_fields.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../base/log.h"
#include "serverInt.h"

static const struct {
    const char *name;
    size_t max; /* characters (bytes here: a longer UTF-8 string is refused sooner) */
} identifiers[] = {
    {"user", 256},
    {"safety_identifier", 64}, /* OpenAI's maxLength */
    {"prompt_cache_key", 256},
};

int pc_openai_identifiers(json_t *body, const char **param, struct pc_http_reply *reply)
{
    for (size_t i = 0; i < sizeof(identifiers) / sizeof(identifiers[0]); i++) {
        json_t *v = json_object_get(body, identifiers[i].name);
        *param = identifiers[i].name;
        if (v == NULL || json_is_null(v))
            continue;
        if (!json_is_string(v)) {
            pc_http_reply_error(reply, 400, "field \"%s\" must be a string", identifiers[i].name);
            return -1;
        }
        if (json_string_length(v) > identifiers[i].max) {
            pc_http_reply_error(reply, 400, "field \"%s\" is longer than %zu characters",
                                identifiers[i].name, identifiers[i].max);
            return -1;
        }
    }
    *param = NULL;
    return 0;
}

void pc_openai_log_identifiers(json_t *body, const char *route, const char *id)
{
    char line[1024] = "";
    size_t len = 0;
    for (size_t i = 0; i < sizeof(identifiers) / sizeof(identifiers[0]); i++) {
        json_t *v = json_object_get(body, identifiers[i].name);
        if (!json_is_string(v))
            continue;
        char *quoted = json_dumps(v, JSON_ENCODE_ANY);
        if (quoted != NULL && len < sizeof(line))
            len += (size_t)snprintf(line + len, sizeof(line) - len, " %s=%s", identifiers[i].name,
                                    quoted);
        free(quoted);
    }
    if (len > 0)
        pc_log_info("openai", "%s %s:%s", route, id, line);
}

int pc_openai_logit_bias(json_t *body, struct pc_logit_bias **out, size_t *n,
                         struct pc_http_reply *reply)
{
    *out = NULL;
    *n = 0;
    json_t *v = json_object_get(body, "logit_bias");
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_object(v)) {
        pc_http_reply_error(reply, 400,
                            "field \"logit_bias\" must be an object of token ids and biases");
        return -1;
    }
    if (json_object_size(v) == 0)
        return 0;
    struct pc_logit_bias *b = calloc(json_object_size(v), sizeof(*b));
    if (b == NULL) {
        pc_http_reply_error(reply, 500, "out of memory");
        return -1;
    }
    const char *key;
    json_t *val;
    size_t k = 0;
    json_object_foreach(v, key, val)
    {
        char *end = NULL;
        errno = 0;
        long tok = strtol(key, &end, 10);
        if (key[0] < '0' || key[0] > '9' || *end != '\0' || errno != 0 || tok > INT32_MAX) {
            pc_http_reply_error(reply, 400,
                                "logit_bias: key \"%s\" is not a token id (a non-negative "
                                "integer)",
                                key);
            free(b);
            return -1;
        }
        double d = json_is_number(val) ? json_number_value(val) : NAN;
        if (!isfinite(d) || d < -100 || d > 100) {
            pc_http_reply_error(reply, 400, "logit_bias[\"%s\"] must be a number from -100 to 100",
                                key);
            free(b);
            return -1;
        }
        b[k++] =
            (struct pc_logit_bias){.token = (int32_t)tok, .bias = d <= -100 ? -INFINITY : (float)d};
    }
    *out = b;
    *n = k;
    return 0;
}

enum pc_err pc_openai_logit_bias_check(const struct pc_logit_bias *b, size_t n, uint32_t n_vocab,
                                       struct pc_error *err)
{
    for (size_t i = 0; i < n; i++)
        if ((uint32_t)b[i].token >= n_vocab)
            return pc_error_set(err, PC_ERR_INVALID,
                                "logit_bias: token %d is not in the model's vocabulary (0 to %u)",
                                b[i].token, n_vocab - 1);
    return PC_OK;
}

int pc_openai_known_fields(json_t *body, const char *const *known, size_t n, const char *route,
                           const char **param, struct pc_http_reply *reply)
{
    const char *key = pc_req_unknown_field(body, known, n);
    if (key == NULL)
        return 0;
    *param = key;
    pc_http_reply_error(reply, 400, "field \"%s\" is not supported by this server's %s", key,
                        route);
    return -1;
}

int pc_openai_verbosity(json_t *obj, const char *prefix, struct pc_http_reply *reply)
{
    json_t *v = json_object_get(obj, "verbosity");
    if (v == NULL || json_is_null(v) ||
        (json_is_string(v) && strcmp(json_string_value(v), "medium") == 0))
        return 0;
    pc_http_reply_error(reply, 400,
                        "%sverbosity: only \"medium\" is supported (nothing in a local model's "
                        "sampling maps \"low\" or \"high\")",
                        prefix);
    return -1;
}

int pc_openai_service_tier(json_t *body, const char **tier, struct pc_http_reply *reply)
{
    json_t *v = json_object_get(body, "service_tier");
    if (v == NULL || json_is_null(v))
        return 0;
    const char *s = json_string_value(v);
    if (s == NULL || (strcmp(s, "auto") != 0 && strcmp(s, "default") != 0)) {
        pc_http_reply_error(reply, 400,
                            "field \"service_tier\" must be \"auto\" or \"default\": a local "
                            "daemon has one tier");
        return -1;
    }
    *tier = "default";
    return 0;
}

/* "prediction": {"type": "content", "content": a string or an array of text parts}. */
static int check_prediction(json_t *v, struct pc_http_reply *reply)
{
    json_t *c = json_object_get(v, "content");
    const char *type = json_string_value(json_object_get(v, "type"));
    bool ok = json_is_object(v) && type != NULL && strcmp(type, "content") == 0 &&
              (json_is_string(c) || json_is_array(c));
    size_t i;
    json_t *part;
    json_array_foreach(json_is_array(c) ? c : NULL, i, part) ok =
        ok && json_is_string(json_object_get(part, "text"));
    if (!ok)
        pc_http_reply_error(reply, 400,
                            "field \"prediction\" must be {\"type\": \"content\", \"content\": a "
                            "string or an array of text parts}");
    return ok ? 0 : -1;
}

/* A field that is refused unless absent or null. */
static int refuse_set(json_t *body, const char *field, const char *why, struct pc_http_reply *reply)
{
    json_t *v = json_object_get(body, field);
    if (v == NULL || json_is_null(v))
        return 0;
    pc_http_reply_error(reply, 400, "field \"%s\" is not supported: %s", field, why);
    return -1;
}

int pc_openai_chat_features(json_t *body, const char **tier, const char **param,
                            struct pc_http_reply *reply)
{
    json_t *store = json_object_get(body, "store");
    *param = "store";
    if (store != NULL && !json_is_null(store) && !json_is_false(store)) {
        pc_http_reply_error(reply, 400,
                            json_is_true(store) ? "field \"store\": completions are not stored "
                                                  "for later retrieval here; only false is "
                                                  "supported"
                                                : "field \"store\" must be true or false");
        return -1;
    }
    json_t *md = json_object_get(body, "modalities");
    *param = "modalities";
    if (md != NULL && !json_is_null(md) &&
        !(json_is_array(md) && json_array_size(md) == 1 && json_is_string(json_array_get(md, 0)) &&
          strcmp(json_string_value(json_array_get(md, 0)), "text") == 0)) {
        pc_http_reply_error(reply, 400, "field \"modalities\": only [\"text\"] is supported");
        return -1;
    }
    json_t *meta = json_object_get(body, "metadata");
    *param = "metadata";
    if (meta != NULL && !json_is_null(meta) &&
        !(json_is_object(meta) && json_object_size(meta) == 0)) {
        pc_http_reply_error(reply, 400,
                            "field \"metadata\" is not supported: it is kept only with a stored "
                            "completion (store: true), which is not");
        return -1;
    }
    if ((*param = "audio", refuse_set(body, "audio", "no audio output", reply)) != 0 ||
        (*param = "web_search_options",
         refuse_set(body, "web_search_options", "no web search", reply)) != 0 ||
        (*param = "verbosity", pc_openai_verbosity(body, "", reply)) != 0 ||
        (*param = "service_tier", pc_openai_service_tier(body, tier, reply)) != 0)
        return -1;
    json_t *pred = json_object_get(body, "prediction");
    *param = "prediction";
    if (pred != NULL && !json_is_null(pred) && check_prediction(pred, reply) != 0)
        return -1;
    *param = NULL;
    return 0;
}
