/* store_sqnblk.h - SQN blocks: SEQs an HSS process reserved in the
 * database ahead of need, handed out later without a write.  Not for use
 * outside src/store.
 *
 * Why: on SQLite an AKA MAR's SQN commit wrote a 4 KiB WAL frame for an
 * 8-byte value, and at 20 000 MAR/s those frames (~130 MB/s to the disk)
 * cost more CPU and tail latency than anything else in the MAR.
 *
 * How (store_cx.c, ims_store_sqn_take): when a process writes an IMPI's
 * SQN row it writes SQN_BLOCK_STEPS steps past the value it hands out and
 * records here what it wrote (the row's sqn and sqn_gen) and what it
 * handed out.  The next vectors come from the block while:
 * - the row still holds exactly what this process wrote (checked in the
 *   database on each use: any other writer, another process, a resync,
 *   imscloudctl, a deleted and re-added IMPI, changes it), and
 * - they stay within it.
 * Anything else takes the write path, which reserves a new block.  Safe
 * because the row already holds the block's end when a value from it
 * leaves: a restart continues past it, and what a power cut loses is
 * bounded as for any lazy SQN commit (store_int.h rule 3 counts the
 * block's steps).  What a crash or an eviction leaves unused is skipped,
 * which TS 33.102 Annex C.1 allows.
 *
 * Bounded: sets of a few entries; a full set drops its least recently
 * used (its block's rest is then never used). */
#ifndef IMS_STORE_SQNBLK_H
#define IMS_STORE_SQNBLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_sqnblk;

/* entries: at most this many (rounded up to a power of two); 0 is
 * IMS_EINVAL.  0 or IMS_ENOMEM. */
int store_sqnblk_new(size_t entries, struct store_sqnblk **out);
/* NULL is a no-op.  No connection may use b any more. */
void store_sqnblk_free(struct store_sqnblk *b);

/* Records that the row of IMPI id now holds (row_sqn, row_gen), written by
 * this process, and that last is the highest SQN handed out of it. */
void store_sqnblk_put(struct store_sqnblk *b, int64_t id, uint64_t row_sqn, uint64_t row_gen,
                      uint64_t last);
/* Forgets id's block (its row was written without one). */
void store_sqnblk_drop(struct store_sqnblk *b, int64_t id);

/* Computes the next SQN from the block of id: when the block is for a row
 * holding (row_sqn, row_gen) as read just now, next(last) gives *out and
 * *out's SEQ is within the block, *out becomes the block's last and this
 * returns true.  Otherwise false and nothing changes.  next runs under
 * the table's lock: it must be quick and must not call the store. */
typedef int (*store_sqnblk_next_fn)(uint64_t last, uint64_t *out, void *ctx);
bool store_sqnblk_take(struct store_sqnblk *b, int64_t id, uint64_t row_sqn, uint64_t row_gen,
                       store_sqnblk_next_fn next, void *ctx, uint64_t *out);

#endif
