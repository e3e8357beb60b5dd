/* table.h - a capped hash table split into shards, one mutex each: the
 * shape of every CSCF store shared by the workers (the P-CSCF's UE flows,
 * the S-CSCF's location store, the S-CSCF's challenges).  Private to
 * src/cscf.
 *
 * Why shards with a lock and not one table per worker: a UE's REGISTER and
 * the requests that later need its registration arrive on whichever worker
 * the kernel's SO_REUSEPORT hash (UDP) or the accepting worker (TCP) picks,
 * and terminating requests come from other hosts entirely, so every worker
 * must see every registration.  A shard lock is held for one lookup or one
 * read-modify-write of one entry (microseconds, no I/O, no callback into the
 * loop), so contention stays low with a few dozen shards.
 *
 * Lifetime rules:
 * 1. The table owns its keys (copied) and its values (freed with free_val
 *    when an entry is removed or the table is freed).
 * 2. Callbacks run with the key's shard locked: they must not call the
 *    table again (deadlock) and must not block.
 * 3. A value never leaves the lock: callers copy out what they need.  That is
 *    also the contract a shared backend (Redis: one key per entry, a
 *    WATCH/MULTI or Lua read-modify-write) would keep.
 *
 * Cost: FNV-1a over the key with a per-table random seed (not SipHash: a
 * flood of colliding keys needs authenticated REGISTERs or registered
 * flows first), fixed bucket arrays sized from the cap at creation. */
#ifndef IMS_CSCF_TABLE_H
#define IMS_CSCF_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/str.h"

struct cscf_table;

#define CSCF_TABLE_KEY_MAX 512

/* Creates a table of nshards shards (1..1024) holding at most max_entries
 * values.  free_val may be NULL.  0, IMS_EINVAL, IMS_ENOMEM. */
int cscf_table_new(unsigned nshards, size_t max_entries, void (*free_val)(void *val),
                   struct cscf_table **out);
/* Frees every value.  NULL is a no-op. */
void cscf_table_free(struct cscf_table *t);

/* Read-modify-write of one entry: fn(&val, room, ctx) runs with the key's
 * shard locked; val is NULL when the key is absent.  fn may replace *val
 * (the old value is then the callback's to free or keep), set it to NULL
 * (the entry goes; fn freed or kept the value) or leave it.  room tells
 * whether a new entry fits (the key exists, or the table is under its cap):
 * a value set for a new key without room is freed by the table and the call
 * returns IMS_ELIMIT.  Otherwise returns fn's result.  A key longer than
 * CSCF_TABLE_KEY_MAX is IMS_EINVAL (fn does not run); a failed allocation of
 * a new entry frees the value and returns IMS_ENOMEM. */
typedef int (*cscf_table_fn)(void **val, bool room, void *ctx);
int cscf_table_with(struct cscf_table *t, ims_str key, cscf_table_fn fn, void *ctx);

/* Visits the shards first, first + step, ...: fn(key, &val, ctx) for each
 * entry, with its shard locked; setting *val to NULL removes the entry (fn
 * freed or kept the value).  Used by the expiry sweeps, each worker taking
 * its own subset of shards (first = worker index, step = workers). */
typedef void (*cscf_table_visit_fn)(ims_str key, void **val, void *ctx);
void cscf_table_sweep(struct cscf_table *t, unsigned first, unsigned step,
                      cscf_table_visit_fn fn, void *ctx);

/* Sweeps that look only at what is due.  due(val, ctx) returns the time
 * (the clock the sweep is given, in seconds) from which the sweep must
 * visit val, INT64_MAX for never; the table asks it, with the shard
 * locked, each time an entry's value is set and each time the sweep looks
 * at the entry.  Set once, before the first entry: 0, IMS_EINVAL (already
 * set, or entries exist), IMS_ENOMEM. */
typedef int64_t (*cscf_table_due_fn)(const void *val, void *ctx);
int cscf_table_set_due(struct cscf_table *t, cscf_table_due_fn due, void *ctx);
/* As cscf_table_sweep over the same shards, but visits only the entries
 * due at now; an entry its visitor keeps while still due is visited again
 * at the next second.  Cost: the entries due, plus one look per entry due
 * more than a few minutes ahead every few minutes.  A table without a due
 * function is swept whole. */
void cscf_table_sweep_due(struct cscf_table *t, unsigned first, unsigned step, int64_t now,
                          cscf_table_visit_fn fn, void *ctx);

size_t cscf_table_count(const struct cscf_table *t);
unsigned cscf_table_shards(const struct cscf_table *t);

#endif
