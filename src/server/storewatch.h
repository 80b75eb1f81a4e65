/* storewatch.h - keep the models' lifecycle states and snapshots true to the models directory:
 * files that come (pretrained), go (unavailable) or are replaced (their snapshots dropped). */
#ifndef PC_STOREWATCH_H
#define PC_STOREWATCH_H

#include "../base/err.h"
#include "../precharge/events.h"
#include "../precharge/snapshot.h"

struct pc_storewatch;

/* Start watching models_dir (inotify, with a thread of its own). The store as it is now is the
 * baseline (what ModelsDiscovered said at start); snapshots of files that changed while the
 * daemon was down are dropped now. events and snapshots are borrowed for the watch's life. A
 * directory that cannot be watched is logged, and the scans of pc_storewatch_scan remain. */
enum pc_err pc_storewatch_start(const char *models_dir, struct pc_events *events,
                                struct pc_snapstore *snapshots,
                                struct pc_storewatch **out /* OUT */, struct pc_error *err);

/* Look at the directory now: publish ModelsDiscovered for models that came or went since the
 * last look (once per change), and drop the snapshots of files that went or changed. Callers
 * that report models call it first, so that an answer never trails the disk. NULL: nothing. */
void pc_storewatch_scan(struct pc_storewatch *w);

/* Stop the thread and free. NULL: nothing. */
void pc_storewatch_stop(struct pc_storewatch *w);

#endif
