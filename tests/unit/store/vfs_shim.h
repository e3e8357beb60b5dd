/* vfs_shim.h - counting what SQLite asks of the disk (store tests). */
#ifndef IMS_TEST_VFS_SHIM_H
#define IMS_TEST_VFS_SHIM_H
#include <pthread.h>
#include <stdint.h>

struct tfix;

/* Makes the shim the default VFS (connections opened from now on use it);
 * shim_remove() restores the real one. */
void shim_install(void);
void shim_remove(void);
/* xSync calls on WAL files since the last reset, by any thread. */
int syncs(void);
void syncs_reset(void);
/* Writes to database files since shim_watch(t) (checkpoints); with
 * *by_watched those made by thread t. */
void shim_watch(pthread_t t);
void shim_unwatch(void);
int shim_db_writes(int *by_watched);
/* WAL syncs by thread t since shim_watch(t). */
int shim_syncs_watched(void);
/* Runs fn(arg) once, at the next write to a database file (a checkpoint
 * copying pages), before that write, on the writing thread. */
void shim_on_db_write(void (*fn)(void *), void *arg);
/* The lowest offset written in a WAL file since the reset (-1: none); 0
 * when SQLite started the WAL over (a new header). */
void shim_wal_writes_reset(void);
long long shim_wal_min_write_offset(void);
/* alice@ims.test (IMPU sip:alice@ims.test, K, OPc, password "pw")
 * provisioned on f->st, which is closed; then the shim installed and a
 * store opened on f's database through it. */
struct ims_store *shim_open_alice(struct tfix *f, const uint8_t k[16], const uint8_t opc[16]);
#endif
