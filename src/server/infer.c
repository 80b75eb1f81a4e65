/* infer.c - one inference request: store lookup, pool reference, generation, release. */
#include "infer.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/clock.h"
#include "../store/store.h"
#include "serverInt.h"

enum pc_err pc_infer_open(struct pc_server *srv, const char *name, int64_t keep_alive_ns,
                          struct pc_infer **out, struct pc_error *err)
{
    char path[PATH_MAX], norm[256];
    int64_t t0 = pc_clock_mono_ns();

    *out = NULL;
    enum pc_err rc = pc_store_name(name, norm, sizeof(norm), err);
    if (rc != PC_OK)
        return rc;
    rc = pc_store_path(srv->cfg.models_dir, name, path, sizeof(path), err);
    if (rc != PC_OK)
        return rc;

    struct pc_infer *inf = calloc(1, sizeof(*inf));
    if (inf == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    inf->srv = srv;
    inf->start_ns = t0;
    inf->keep_alive_ns = keep_alive_ns;
    snprintf(inf->model, sizeof(inf->model), "%s", name);
    atomic_init(&inf->cancel, false);

    bool loaded = false;
    rc = pc_pool_acquire(srv->pool, norm, path, keep_alive_ns, &inf->entry, &loaded, err);
    if (rc != PC_OK) {
        free(inf);
        return rc;
    }
    if (loaded)
        inf->load_ns = pc_clock_mono_ns() - t0;
    *out = inf;
    return PC_OK;
}

struct pc_model *pc_infer_model(const struct pc_infer *inf)
{
    return pc_pool_entry_model(inf->entry);
}

enum pc_err pc_infer_start(struct pc_infer *inf, const char *prompt,
                           const struct pc_sampling *sampling, struct pc_error *err)
{
    struct pc_gen_request req = {.prompt = prompt, .sampling = *sampling, .cancel = &inf->cancel};
    return pc_gen_start(pc_infer_model(inf), &req, &inf->gen, err);
}

void pc_infer_close(struct pc_infer *inf)
{
    if (inf == NULL)
        return;
    atomic_store(&inf->cancel, true);
    pc_gen_free(inf->gen); /* the model's slot first, then the model */
    pc_pool_release(inf->srv->pool, inf->entry);
    free(inf);
}

enum pc_err pc_infer_unload(struct pc_server *srv, const char *name, struct pc_error *err)
{
    char norm[256];
    enum pc_err rc = pc_store_name(name, norm, sizeof(norm), err);
    if (rc != PC_OK)
        return rc;
    rc = pc_pool_unload(srv->pool, norm, err);
    return rc == PC_ERR_NOT_FOUND ? PC_OK : rc;
}
