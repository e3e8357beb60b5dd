/* store_cache.h - identity data the Cx path reads on every request, kept
 * in memory and shared by the connections of one store executor.  Not for
 * use outside src/store.
 *
 * Why: on SQLite an AKA MAR spent more on finding its rows again (B-tree
 * searches, page reads) than on anything else, for data that changes only
 * when an operator provisions.  What is kept never includes a secret in
 * clear: an IMPI's entry holds its ciphertexts, decrypted on each use as
 * before.
 *
 * When an entry may be used (nothing else keeps it coherent):
 * 1. The database counts changes to what the cache holds in
 *    cache_generation.gen (triggers, migration 005), in the writer's
 *    transaction, whichever process writes.  A request reads gen (st_cache_gen)
 *    BEFORE it reads the rows it caches, and tags what it puts with that gen;
 *    an entry is used only under the gen it was read under.  So data older
 *    than a change is never used once that change is seen; data newer than
 *    its tag is only ever too new, which is harmless.
 * 2. A rollback of a transaction that wrote may undo a change whose data an
 *    entry was read from (its trigger's gen update is undone too): the
 *    rollback of a transaction that ran such a write moves the cache's
 *    epoch (store_cache_forget; store.c), and an entry is used only while
 *    the epoch is the one it was read under.
 * Keys and values are bytes; the callers (store_cx.c) pack them.  Memory
 * is bounded: a fixed number of sets of a few entries each; a full set
 * drops its least recently used entry. */
#ifndef IMS_STORE_CACHE_H
#define IMS_STORE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_cache;

/* entries: at most this many (rounded up to a power of two); 0 is
 * IMS_EINVAL.  0 or IMS_ENOMEM. */
int store_cache_new(size_t entries, struct store_cache **out);
/* NULL is a no-op.  No connection may use c any more. */
void store_cache_free(struct store_cache *c);

/* The epoch to pass to put: read it BEFORE the data (rule 2). */
uint64_t store_cache_epoch(const struct store_cache *c);
/* Rule 2: every entry becomes unusable. */
void store_cache_forget(struct store_cache *c);

/* Copies the value of key into val (cap bytes) when an entry read under
 * gen, and in the current epoch, holds it: true and *vlen.  A value
 * longer than cap is a miss. */
bool store_cache_get(struct store_cache *c, uint64_t gen, const void *key, size_t klen, void *val,
                     size_t cap, size_t *vlen);
/* Keeps a copy of val under key, read under (gen, epoch).  Nothing is kept
 * when the epoch has moved since (the data may be undone).  0 or
 * IMS_ENOMEM (then nothing is kept; the caller goes on without). */
int store_cache_put(struct store_cache *c, uint64_t gen, uint64_t epoch, const void *key,
                    size_t klen, const void *val, size_t vlen);

/* Its counters (the struct is exec.h's: ims_store_exec_cache_stats). */
struct ims_store_cache_stats;
void store_cache_stats(struct store_cache *c, struct ims_store_cache_stats *out);

#endif
