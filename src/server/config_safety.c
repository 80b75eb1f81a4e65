/* config_safety.c - the values of the daemon's safety settings (API key, CORS origins,
 * connection timeout) for the settings table, and the check that a non-loopback address is
 * guarded. */
#include "serverInt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../base/duration.h"
#include "../base/file.h"
#include "../base/fmt.h"
#include "guard.h"

#define MAX_CONNECTION_TIMEOUT_S (24 * 3600)

enum pc_err pc_server_set_api_key(struct pc_server_config *cfg, const char *key,
                                  struct pc_error *err)
{
    size_t n = strlen(key);
    if (n == 0 || n > PC_SERVER_MAX_API_KEY)
        return pc_error_set(err, PC_ERR_INVALID, "an API key must have 1 to %d characters",
                            PC_SERVER_MAX_API_KEY);
    for (size_t i = 0; i < n; i++)
        if (key[i] <= ' ' || key[i] > '~')
            return pc_error_set(err, PC_ERR_INVALID,
                                "an API key must be printable ASCII without spaces (character "
                                "%zu is not)",
                                i + 1);
    memcpy(cfg->api_key, key, n + 1);
    return PC_OK;
}

enum pc_err pc_server_read_api_key_file(struct pc_server_config *cfg, const char *path,
                                        struct pc_error *err)
{
    char *text = NULL;
    size_t len = 0;
    struct pc_error inner = {0};
    if (pc_file_read(path, 4096, &text, &len, &inner) != PC_OK)
        return pc_error_set(err, PC_ERR_INVALID, "API key file \"%s\": %s", path, inner.msg);
    char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    size_t n = strcspn(p, "\r\n");
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    p[n] = '\0';
    enum pc_err rc = pc_server_set_api_key(cfg, p, &inner);
    free(text);
    if (rc != PC_OK)
        return pc_error_set(err, rc, "API key file \"%s\": %s", path, inner.msg);
    return PC_OK;
}

enum pc_err pc_server_add_cors_origins(const char *list, struct pc_server_config *cfg,
                                       struct pc_error *err)
{
    for (const char *p = list; *p != '\0';) {
        size_t len = strcspn(p, ",");
        const char *o = p;
        size_t n = len;
        while (n > 0 && (*o == ' ' || *o == '\t'))
            o++, n--;
        while (n > 0 && (o[n - 1] == ' ' || o[n - 1] == '\t' || o[n - 1] == '/'))
            n--;
        if (n > 0) {
            if (cfg->n_cors_origins == PC_SERVER_MAX_CORS_ORIGINS)
                return pc_error_set(err, PC_ERR_INVALID, "more than %d CORS origins",
                                    PC_SERVER_MAX_CORS_ORIGINS);
            if (n >= sizeof(cfg->cors_origins[0]))
                return pc_error_set(err, PC_ERR_INVALID, "a CORS origin is too long");
            if (!(n == 1 && o[0] == '*') && strncmp(o, "http://", 7) != 0 &&
                strncmp(o, "https://", 8) != 0 && !(n == 4 && strncmp(o, "null", 4) == 0))
                return pc_error_set(err, PC_ERR_INVALID,
                                    "CORS origin \"%.*s\": expected scheme://host[:port] (such "
                                    "as https://app.example), \"null\" or \"*\"",
                                    (int)n, o);
            memcpy(cfg->cors_origins[cfg->n_cors_origins], o, n);
            cfg->cors_origins[cfg->n_cors_origins++][n] = '\0';
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return PC_OK;
}

enum pc_err pc_server_parse_connection_timeout(const char *s, struct pc_server_config *cfg,
                                               struct pc_error *err)
{
    int64_t ns = 0;
    struct pc_error inner = {0};
    const int64_t second = 1000000000;
    if (pc_duration_parse(s, &ns, &inner) != PC_OK || ns < 0 || ns % second != 0 ||
        ns / second > MAX_CONNECTION_TIMEOUT_S)
        return pc_error_set(err, PC_ERR_INVALID,
                            "invalid connection timeout \"%s\": expected whole seconds up to a "
                            "day, such as 30s, 2m or 45 (0: none)",
                            s);
    cfg->connection_timeout_s = (unsigned)(ns / second);
    return PC_OK;
}

enum pc_err pc_server_parse_api_key(const char *s, struct pc_server_config *cfg,
                                    struct pc_error *err)
{
    return pc_server_set_api_key(cfg, s, err);
}

json_t *pc_server_show_api_key(const struct pc_server_config *cfg)
{
    return cfg->api_key[0] ? json_string("(set)") : json_null();
}

enum pc_err pc_server_parse_api_key_file(const char *s, struct pc_server_config *cfg,
                                         struct pc_error *err)
{
    if (strlen(s) >= sizeof(cfg->api_key_file))
        return pc_error_set(err, PC_ERR_INVALID, "the API key file's path is too long");
    enum pc_err rc = pc_server_read_api_key_file(cfg, s, err);
    if (rc == PC_OK)
        snprintf(cfg->api_key_file, sizeof(cfg->api_key_file), "%s", s);
    return rc;
}

json_t *pc_server_show_api_key_file(const struct pc_server_config *cfg)
{
    return cfg->api_key_file[0] ? json_string(cfg->api_key_file) : json_null();
}

enum pc_err pc_server_cors_origins_from_json(json_t *v, struct pc_server_config *cfg,
                                             struct pc_error *err)
{
    return pc_server_list_from_json(v, ',', cfg, pc_server_add_cors_origins, err);
}

void pc_server_clear_cors_origins(struct pc_server_config *cfg)
{
    cfg->n_cors_origins = 0;
}

json_t *pc_server_show_cors_origins(const struct pc_server_config *cfg)
{
    json_t *origins = json_array();
    for (size_t i = 0; i < cfg->n_cors_origins; i++)
        json_array_append_new(origins, json_string(cfg->cors_origins[i]));
    return origins;
}

json_t *pc_server_show_connection_timeout(const struct pc_server_config *cfg)
{
    char timeout[32];
    snprintf(timeout, sizeof(timeout), "%us", cfg->connection_timeout_s);
    return json_string(timeout);
}

enum pc_err pc_server_config_check_exposure(const struct pc_server_config *cfg,
                                            struct pc_error *err)
{
    char why[128] = "";
    if (cfg->api_key[0] != '\0' || cfg->insecure ||
        pc_guard_listens_on_loopback(cfg->host, why, sizeof(why)))
        return PC_OK;
    /* A name is judged by what it resolves to, where the daemon would listen: say what that is.
     * An address needs no such note. */
    unsigned char addr[sizeof(struct in6_addr)];
    bool numeric =
        inet_pton(AF_INET, cfg->host, addr) == 1 || inet_pton(AF_INET6, cfg->host, addr) == 1;
    return pc_error_set(err, PC_ERR_INVALID,
                        "refusing to listen on %s%s%s%s, which is not a loopback address, without "
                        "an API key: set one with --api-key KEY, --api-key-file FILE or "
                        "PRECHARGE_API_KEY, or pass --insecure to serve anyone who can reach it",
                        cfg->host, numeric ? "" : " (", numeric ? "" : why, numeric ? "" : ")");
}
