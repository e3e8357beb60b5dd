/* sqlite_pcache.h - SQLite's own page cache (pcache1) behind a truncation
 * that is skipped when no cached page can be at or past its limit.  Not
 * for use outside src/store (and its tests).
 *
 * Why: SQLite ends every COMMIT with xTruncate(database size + 1)
 * (pager_end_transaction).  pcache1 remembers the largest key it ever held
 * (iMaxKey) and, when that is past the limit, walks every hash bucket of
 * the cache to drop the pages beyond it.  B-tree balancing (btree.c
 * balance_nonroot, SQLite 3.39 and later) swaps two pages' numbers through
 * a temporary key, the pending-byte page (2^30 / page size + 1: 262 145
 * for 4 KiB pages), so after any split that reordered pages pcache1's
 * iMaxKey is that key and the next COMMIT walks the whole cache although
 * no page is left there: 16 384 buckets and as many page headers of a
 * 64 MiB cache, a cache miss each, about a millisecond; 3% of the
 * server's CPU while fresh users register (bench/README.md).
 *
 * The wrapper keeps its own largest key, leaving out the temporary key
 * while it counts every page rekeyed there as rekeyed away again, and
 * passes a truncation to pcache1 only when a page may be at or past the
 * limit.  Everything else goes straight to pcache1. */
#ifndef IMS_STORE_SQLITE_PCACHE_H
#define IMS_STORE_SQLITE_PCACHE_H

#include <stdint.h>

/* Installs the wrapper for this process (SQLITE_CONFIG_PCACHE2).  Call
 * before SQLite initialises, once (store_sqlite.c's one-time setup does).
 * 0, or IMS_EBACKEND when SQLite refused (initialised already): its own
 * cache then stays, which is correct, only slower. */
int ims_sqlite_pcache_install(void);

/* Counts since the start, over every connection of the process. */
struct ims_sqlite_pcache_stats {
    uint64_t temp_rekeys;       /* pages rekeyed to the temporary key */
    uint64_t truncates_skipped; /* no page at or past the limit: pcache1 not called */
    uint64_t truncates_passed;  /* passed on to pcache1 */
};
void ims_sqlite_pcache_stats(struct ims_sqlite_pcache_stats *out);

#endif
