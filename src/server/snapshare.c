/* snapshare.c - the daemon's side of the shared snapshot tier: open it when redis and
 * redis_snapshots are set, and tell the snapshot store which loaded models it may share (those
 * whose store file has a recorded sha256). */
#include <stdio.h>
#include <string.h>

#include "../base/fmt.h"
#include "../base/log.h"
#include "../fleet/snaps.h"
#include "../store/manifest.h"
#include "../store/store.h"
#include "serverInt.h"

enum pc_err pc_server_snapshare_start(struct pc_server *s, struct pc_error *err)
{
    if (!s->cfg.redis_snapshots)
        return PC_OK;
    if (s->cfg.redis_url[0] == '\0') {
        pc_log_warn("fleet", "redis_snapshots is on but redis is off: no snapshot is shared");
        return PC_OK;
    }
    struct pc_fleet_snaps_config fc = {
        .budget_bytes = s->cfg.redis_snapshot_budget,
        /* No expiry is a long one: the scripts always set one. */
        .ttl_ms = s->cfg.redis_snapshot_ttl_ns > 0 ? s->cfg.redis_snapshot_ttl_ns / 1000000
                                                   : 10ll * 365 * 24 * 3600 * 1000,
    };
    if (fc.ttl_ms < 1)
        fc.ttl_ms = 1;
    enum pc_err rc = pc_redis_url_parse(s->cfg.redis_url, &fc.url, err);
    if (rc == PC_OK)
        rc = pc_fleet_snaps_open(&fc, &s->snapshare, err);
    if (rc != PC_OK)
        return rc;
    pc_snapstore_set_tier(s->snapshots, pc_fleet_snaps_tier(s->snapshare));
    char budget[32];
    pc_log_info("fleet", "sharing precharged snapshots through redis: budget %s, expiry %lld s",
                pc_fmt_bytes(fc.budget_bytes, budget, sizeof(budget)),
                (long long)(fc.ttl_ms / 1000));
    return PC_OK;
}

void pc_server_snapshare_stop(struct pc_server *s)
{
    pc_fleet_snaps_close(s->snapshare);
    s->snapshare = NULL;
}

void pc_server_snapshare_model(struct pc_server *s, const char *name, struct pc_model *m)
{
    if (s->snapshare == NULL)
        return;
    /* Only the store's own file of that name: its manifest entry is about that file. */
    char path[4096], key[17];
    char sha256[65];
    struct pc_error err = {0};
    enum pc_err rc = pc_store_path(s->cfg.models_dir, name, path, sizeof(path), &err);
    if (rc == PC_OK &&
        (pc_model_key(path, key, &err) != PC_OK || strcmp(key, pc_model_identity(m)) != 0))
        rc = pc_error_set(&err, PC_ERR_NOT_FOUND, "it was not loaded from the store");
    if (rc == PC_OK)
        rc = pc_manifest_sha256(s->cfg.models_dir, name, sha256, &err);
    if (rc == PC_OK)
        rc = pc_snapstore_share_model(s->snapshots, pc_model_identity(m), sha256, name, &err);
    if (rc != PC_OK)
        pc_log_info("fleet", "%s: its snapshots are not shared through redis: %s", name, err.msg);
    else
        pc_log_info("fleet", "%s: its precharged snapshots are shared through redis (sha256 %.12s)",
                    name, sha256);
}
