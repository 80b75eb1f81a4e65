/* snapshot.h - KV snapshots below the live tier: serialized in RAM, and on disk where they
 * outlive the process. Keyed by the model file's identity and the hash of their tokens.
 *
 * The live tier is the model's context (engine.h: sequences). This store takes what the
 * context lets go: a precharged prefix is written through to RAM and disk when it is made,
 * and a conversation is saved to RAM when the context drops it. Each tier has a budget, and
 * demotion is least recently used: RAM -> disk -> dropped. Behind disk there may be a shared
 * tier (snaptier.h: Redis), which precharged prefixes are written through to as well, and which
 * a request asks when its model's file has a known sha256 and the local tiers give less. */
#ifndef PC_SNAPSHOT_H
#define PC_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"
#include "../engine/engine.h"
#include "snaptier.h"

/* PC_TIER_SHARED: the shared tier behind disk (pc_snapstore_set_tier), named "redis". */
enum pc_tier { PC_TIER_LIVE, PC_TIER_RAM, PC_TIER_DISK, PC_TIER_SHARED };

const char *pc_tier_name(enum pc_tier t);

struct pc_snapstore;

/* Open the store in dir (created if missing) and index the snapshots on disk.
 * ram_budget and disk_budget are in bytes. Free with pc_snapstore_close. */
enum pc_err pc_snapstore_open(const char *dir, uint64_t ram_budget, uint64_t disk_budget,
                              struct pc_snapstore **out /* OUT */, struct pc_error *err);
void pc_snapstore_close(struct pc_snapstore *st);

/* A model file's identity: a hash of its path, size and modification time, in hex.
 * A changed file gets a new key, so its old snapshots are never offered for it. */
enum pc_err pc_model_key(const char *path, char key[17] /* OUT */, struct pc_error *err);

/* Once, when the model is loaded and before it is shared: give it its identity (pc_model_key of
 * its file, pc_model_identity) and route its context's evictions into this store (as RAM
 * snapshots). Fails only when the file cannot be read (stat). */
enum pc_err pc_snapstore_attach(struct pc_snapstore *st, struct pc_model *m, struct pc_error *err);

/* Before any model is attached: put tier (borrowed for the store's life) behind the disk tier. */
void pc_snapstore_set_tier(struct pc_snapstore *st, const struct pc_snaptier *tier);

/* After pc_snapstore_attach: the model file of identity key is the file whose sha256 (64 hex
 * digits) is sha256 on every host, and model is its name here. Its precharged snapshots are then
 * shared through the tier, and its requests look there. A model never named here (its sha256 is
 * not known) is not shared. PC_ERR_INVALID for a sha256 that is not 64 hex digits. */
enum pc_err pc_snapstore_share_model(struct pc_snapstore *st, const char *key, const char *sha256,
                                     const char *model, struct pc_error *err);

/* Whether the shared tier holds the snapshot of exactly toks (it was shared from here, or came
 * from there), as far as this store knows. */
bool pc_snapstore_shared(struct pc_snapstore *st, const char *key, const int32_t *toks, size_t n);

/* Who a snapshot is for, as /api/precharged shows it. */
struct pc_snapshot_meta {
    char model[64];    /* the model's name */
    char category[16]; /* "local", "ollama" */
};

/* Save a serialized sequence (pc_slot_export) holding toks: to RAM, and to disk too when
 * persist (a precharge, so that it outlives the process), and then to the shared tier when the
 * model is shared (a failure there is logged, not returned). Takes blob. Call it without the
 * slot: the disk and tier writes happen here. PC_ERR_IO naming the file when the disk write failed
 * (the RAM copy is kept while the RAM budget allows: pc_snapstore_tier says where it is). */
enum pc_err pc_snapstore_save(struct pc_snapstore *st, const char *key,
                              const struct pc_snapshot_meta *meta, const int32_t *toks, size_t n,
                              uint8_t *blob, size_t size, bool persist, struct pc_error *err);

/* Where the snapshot of exactly toks for the model key is kept: PC_TIER_DISK when it has a file
 * (and maybe a RAM copy too), PC_TIER_RAM, or PC_TIER_LIVE when no tier holds it. */
enum pc_tier pc_snapstore_tier(struct pc_snapstore *st, const char *key, const int32_t *toks,
                               size_t n);

struct pc_restore {
    enum pc_tier tier;             /* where the prefix came from: LIVE when nothing was restored */
    size_t tokens;                 /* prompt tokens the chosen prefix gave */
    int64_t restore_ns;            /* time spent restoring (reading and importing) */
    bool failed;                   /* a restore was tried and failed: the prompt was prefilled */
    char reason[PC_ERROR_MSG_MAX]; /* why it failed */
};

/* The stored snapshot that shares the longest prefix with a prompt, offered to the model's
 * prefix planner (engine.h: pc_restore_offer), which restores it only when it gives more than
 * the live sequences do. */
struct pc_snap_offer {
    struct pc_restore_offer offer; /* .blob NULL: nothing to offer */
    char key[17];                  /* the model's identity */
    enum pc_tier tier;
    void *snap;           /* the store's entry, referenced until pc_snapstore_offer_done; NULL
                           * for the shared tier's */
    uint8_t *file;        /* the bytes read from disk or fetched from the shared tier, or NULL */
    int32_t *shared_toks; /* the shared tier's snapshot's tokens, or NULL */
    int64_t read_ns;
    bool read_failed;
    char reason[PC_ERROR_MSG_MAX];
};

/* Before a request or precharge: the best snapshot of the model (key) for toks, its blob read
 * from disk here when it is not in RAM (never on the decode loop's thread). When the shared
 * tier has one that gives more than RAM and disk, it is fetched here instead. Never fails; an
 * offer with no blob offers nothing. End it with pc_snapstore_offer_done. */
void pc_snapstore_offer(struct pc_snapstore *st, const char *key, const int32_t *toks, size_t n,
                        struct pc_snap_offer *out /* OUT */);

/* Once the task's prompt is done: what the planner did with the offer (r: pc_gen_restore, or
 * NULL when the task never got that far) becomes *out. A snapshot read from disk and used stays
 * in RAM, and so does one fetched from the shared tier unless it failed to restore; a local one
 * that failed to restore leaves every tier (it would fail again). */
void pc_snapstore_offer_done(struct pc_snapstore *st, struct pc_snap_offer *o,
                             const struct pc_restore_result *r, struct pc_restore *out /* OUT */);

struct pc_snapshot_info {
    char key[17];
    struct pc_snapshot_meta meta;
    enum pc_tier tier; /* RAM or DISK; a snapshot in both is listed as RAM */
    size_t n_tokens;
    uint64_t tokens_hash; /* FNV-1a of the tokens, as the disk file's name has it */
    uint64_t bytes;
    int64_t created_wall_ns;
    bool precharged;
};

/* Drop the snapshots of models whose file in models_dir went or changed (deleted, replaced by
 * a pull or a copy): every snapshot whose model is a store name and whose key is not that
 * file's key now. Snapshots in use this instant (a restore) are left to the next call.
 * Returns how many went. */
size_t pc_snapstore_drop_stale(struct pc_snapstore *st, const char *models_dir);

/* Copy out the stored snapshots; *out is malloc'd, the caller frees it. */
size_t pc_snapstore_list(struct pc_snapstore *st, struct pc_snapshot_info **out /* OUT */);

/* Bytes held in RAM, for the pool's accounting. */
uint64_t pc_snapstore_ram_bytes(struct pc_snapstore *st);

/* Bytes of the snapshot files on disk. */
uint64_t pc_snapstore_disk_bytes(struct pc_snapstore *st);

#endif
