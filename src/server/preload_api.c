/* preload_api.c - the preloader's routes: GET /api/models/status (seed 001) and GET /ready. */
#include "serverInt.h"

#include "preload.h"

static void handle_status(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    pc_reply_json_value(reply, 200, pc_preloader_status(req->srv->preloader));
}

/* 200 once every required preload is warm; 503 before, with the ones still pending and those
 * of them whose preload gave up ("failed" once nothing is left warming). */
static void handle_ready(const struct pc_http_req *req, struct pc_http_reply *reply)
{
    json_t *pending = NULL, *failed = NULL;
    bool ready = pc_preloader_ready(req->srv->preloader, &pending, &failed);
    size_t n_pending = json_array_size(pending), n_failed = json_array_size(failed);
    const char *status = ready                                   ? "ready"
                         : n_failed > 0 && n_failed == n_pending ? "failed"
                                                                 : "warming";
    pc_reply_json_value(reply, ready ? 200 : 503,
                        json_pack("{s:s, s:o, s:o}", "status", status, "pending",
                                  pending ? pending : json_array(), "failed",
                                  failed ? failed : json_array()));
}

const struct pc_http_route pc_preload_routes[] = {
    {"GET", "/api/models/status", handle_status},
    {"GET", "/ready", handle_ready},
    {NULL, NULL, NULL},
};
