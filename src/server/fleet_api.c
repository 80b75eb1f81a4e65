/* fleet_api.c - the daemon in its fleet: joining it at start (the redis setting), GET
 * /api/fleet, and the "fleet" argument of a model's state. docs/fleet.md. */
#include "serverInt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS(ns) ((ns) / 1000000)

/* Where other hosts reach this daemon: fleet_advertise, else the listen address (a wildcard
 * one as the host's name). */
static void http_address(const struct pc_server *s, char *out, size_t size)
{
    if (s->cfg.fleet_advertise[0]) {
        snprintf(out, size, "%s", s->cfg.fleet_advertise);
        return;
    }
    char host[256];
    snprintf(host, sizeof(host), "%s", s->cfg.host);
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || host[0] == '\0') {
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
    }
    bool v6 = strchr(host, ':') != NULL;
    snprintf(out, size, "http://%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "",
             pc_http_port(s->http));
}

static enum pc_err check_positive(const char *key, int64_t ns, struct pc_error *err)
{
    if (ns > 0)
        return PC_OK;
    return pc_error_set(err, PC_ERR_INVALID, "%s must be a positive duration (the fleet needs it)",
                        key);
}

enum pc_err pc_server_fleet_start(struct pc_server *s, struct pc_error *err)
{
    const struct pc_server_config *c = &s->cfg;
    if (c->redis_url[0] == '\0')
        return PC_OK;
    enum pc_err rc = check_positive("fleet_visibility_timeout", c->fleet_visibility_ns, err);
    if (rc == PC_OK)
        rc = check_positive("fleet_heartbeat", c->fleet_heartbeat_ns, err);
    if (rc == PC_OK)
        rc = check_positive("fleet_expiry", c->fleet_expiry_ns, err);
    if (rc == PC_OK)
        rc = check_positive("fleet_unserved_grace", c->fleet_grace_ns, err);
    if (rc == PC_OK && c->fleet_expiry_ns <= c->fleet_heartbeat_ns)
        rc = pc_error_set(err, PC_ERR_INVALID,
                          "fleet_expiry must be longer than fleet_heartbeat (or a live daemon "
                          "lapses between two heartbeats)");
    if (rc != PC_OK)
        return rc;
    char http[300];
    http_address(s, http, sizeof(http));
    struct pc_fleet_config fc = {
        .redis_url = c->redis_url,
        .http_url = http,
        .models_dir = c->models_dir,
        .events = s->events,
        .precharger = s->precharger,
        .pool = s->pool,
        .snapshots = s->snapshots,
        .model_params = &c->pool.model_params,
        .budget_bytes = c->pool.budget_bytes,
        .submit = pc_server_fleet_submit,
        .user = s,
        .visibility_ms = MS(c->fleet_visibility_ns),
        .heartbeat_ms = MS(c->fleet_heartbeat_ns),
        .expiry_ms = MS(c->fleet_expiry_ns),
        .grace_ms = MS(c->fleet_grace_ns),
        .answered_ms = 24ll * 3600 * 1000,
        .maxlen = c->fleet_maxlen,
        .max_inflight = 16,
    };
    return pc_fleet_start(&fc, &s->fleet, err);
}

int pc_server_fleet_param(const struct pc_http_req *req, bool *on, struct pc_http_reply *reply)
{
    const char *v = pc_http_query(req, "fleet");
    *on = false;
    if (v == NULL || strcmp(v, "0") == 0 || strcmp(v, "false") == 0)
        return 0;
    if (strcmp(v, "1") != 0 && strcmp(v, "true") != 0) {
        pc_http_reply_error(reply, 400, "query argument \"fleet\" must be 1, true, 0 or false");
        return -1;
    }
    if (req->srv->fleet == NULL) {
        pc_http_reply_error(reply, 400,
                            "fleet=1: this daemon is in no fleet (set redis: --redis URL, "
                            "PRECHARGE_REDIS_URL)");
        return -1;
    }
    *on = true;
    return 0;
}

static void handle_fleet(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    if (req->srv->fleet == NULL) {
        pc_http_reply_error(reply, 404,
                            "this daemon is in no fleet (set redis: --redis URL, "
                            "PRECHARGE_REDIS_URL)");
        return;
    }
    pc_reply_json_value(reply, 200, pc_fleet_view(req->srv->fleet));
}

const struct pc_http_route pc_fleet_routes[] = {
    {"GET", "/api/fleet", handle_fleet},
    {NULL, NULL, NULL},
};
