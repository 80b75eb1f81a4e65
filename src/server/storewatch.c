/* storewatch.c - the store as the lifecycle states see it: a model file that appears in the
 * models directory is pretrained, one that goes is unavailable (ModelsDiscovered with "removed"),
 * and the snapshots of a file that went or was replaced are dropped. An inotify watch rescans
 * when the directory changes, and the routes that report models rescan before they answer. */
#include "storewatch.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "../base/log.h"
#include "../store/store.h"

struct pc_storewatch {
    char models_dir[1024];
    struct pc_events *events;
    struct pc_snapstore *snapshots;
    /* lock guards names and n_names (the store's models as the events last heard of them), and
     * serializes scans, so that each change is published once. */
    pthread_mutex_t lock;
    char (*names)[256]; /* sorted */
    size_t n_names;
    int inotify_fd; /* -1: no watch (the routes' scans still keep the states true) */
    int stop_fd;    /* an eventfd that ends the thread */
    pthread_t thread;
    bool thread_started;
};

/* Lock held: the store's names now, sorted. */
static enum pc_err list_names(struct pc_storewatch *w, char (**out)[256], size_t *n)
{
    struct pc_store_entry *list = NULL;
    struct pc_error err = {0};
    *out = NULL;
    *n = 0;
    if (pc_store_list(w->models_dir, &list, n, &err) != PC_OK) {
        pc_log_warn("store", "cannot list the models: %s", err.msg);
        return err.code;
    }
    *out = calloc(*n ? *n : 1, sizeof(**out));
    if (*out == NULL) {
        free(list);
        return PC_ERR_NOMEM;
    }
    for (size_t i = 0; i < *n; i++)
        memcpy((*out)[i], list[i].name, sizeof((*out)[i]));
    free(list);
    return PC_OK;
}

void pc_storewatch_scan(struct pc_storewatch *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    char(*now)[256] = NULL;
    size_t n = 0;
    if (list_names(w, &now, &n) != PC_OK) {
        pthread_mutex_unlock(&w->lock);
        return;
    }
    /* Both lists are sorted by name: one merge pass finds what came and what went. */
    json_t *added = json_array(), *removed = json_array();
    size_t i = 0, k = 0;
    while (i < w->n_names || k < n) {
        int c = i == w->n_names ? 1 : k == n ? -1 : strcmp(w->names[i], now[k]);
        if (c < 0)
            json_array_append_new(removed, json_string(w->names[i++]));
        else if (c > 0)
            json_array_append_new(added, json_string(now[k++]));
        else
            i++, k++;
    }
    free(w->names);
    w->names = now;
    w->n_names = n;
    if (json_array_size(added) + json_array_size(removed) > 0) {
        char id[37];
        pc_uuid(id);
        pc_log_info("store", "models directory changed: %zu added, %zu removed",
                    json_array_size(added), json_array_size(removed));
        pc_events_publish(
            w->events, PC_EV_MODELS_DISCOVERED, NULL, id,
            json_pack("{s:O, s:O, s:s}", "models", added, "removed", removed, "category", "local"));
    }
    pthread_mutex_unlock(&w->lock);
    json_decref(added);
    json_decref(removed);
    /* A replaced file keeps its name: the snapshots' keys tell. */
    pc_snapstore_drop_stale(w->snapshots, w->models_dir);
}

static void *watch_main(void *arg)
{
    struct pc_storewatch *w = arg;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        struct pollfd fds[2] = {{.fd = w->stop_fd, .events = POLLIN},
                                {.fd = w->inotify_fd, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            pc_log_warn("store", "poll() failed: %s; the models directory is no longer watched",
                        strerror(errno));
            return NULL;
        }
        if (fds[0].revents != 0)
            return NULL;
        /* Drain what came, then look once: a download's rename is several events. */
        while (read(w->inotify_fd, buf, sizeof(buf)) > 0)
            ;
        pc_storewatch_scan(w);
    }
}

enum pc_err pc_storewatch_start(const char *models_dir, struct pc_events *events,
                                struct pc_snapstore *snapshots, struct pc_storewatch **out,
                                struct pc_error *err)
{
    *out = NULL;
    struct pc_storewatch *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "store watch: out of memory");
    snprintf(w->models_dir, sizeof(w->models_dir), "%s", models_dir);
    w->events = events;
    w->snapshots = snapshots;
    w->inotify_fd = w->stop_fd = -1;
    pthread_mutex_init(&w->lock, NULL);
    /* What the store holds at start is what ModelsDiscovered said at start. */
    if (list_names(w, &w->names, &w->n_names) != PC_OK) {
        pc_storewatch_stop(w);
        return pc_error_set(err, PC_ERR_IO, "cannot list the models in \"%s\"", models_dir);
    }
    pc_snapstore_drop_stale(snapshots, models_dir);
    w->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    w->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (w->inotify_fd < 0 || w->stop_fd < 0 ||
        inotify_add_watch(w->inotify_fd, models_dir,
                          IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE |
                              IN_ATTRIB) < 0 ||
        pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        pc_log_warn("store",
                    "the models directory \"%s\" is not watched (%s): its changes are "
                    "seen when a model's state or the precharged list is asked for",
                    models_dir, strerror(errno));
    } else {
        w->thread_started = true;
    }
    *out = w;
    return PC_OK;
}

void pc_storewatch_stop(struct pc_storewatch *w)
{
    if (w == NULL)
        return;
    if (w->thread_started) {
        uint64_t one = 1;
        if (write(w->stop_fd, &one, sizeof(one)) != sizeof(one))
            pc_log_warn("store", "write() to the watch's eventfd failed: %s", strerror(errno));
        pthread_join(w->thread, NULL);
    }
    if (w->inotify_fd >= 0)
        close(w->inotify_fd);
    if (w->stop_fd >= 0)
        close(w->stop_fd);
    pthread_mutex_destroy(&w->lock);
    free(w->names);
    free(w);
}
