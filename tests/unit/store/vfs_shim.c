/* vfs_shim.c - a SQLite VFS for the store tests that forwards everything
 * to the default VFS and counts xSync calls on WAL files and writes to the
 * database file (in WAL mode only a checkpoint writes there). */
#include <pthread.h>
#include <stdbool.h>

#include <sqlite3.h>

#include "store_tests.h"
#include "vfs_shim.h"

struct sfile {
    sqlite3_file base;
    sqlite3_file *real; /* follows this struct in the same block */
    bool wal;
    bool main_db;
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs shim_vfs;
static sqlite3_io_methods shim_io;
static int wal_syncs; /* __atomic: store threads sync too */
/* writes to the database file (checkpoints), in all and by one thread */
static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_t watched;
static bool watching;
static int db_writes, db_writes_watched; /* under watch_mu */
static int wal_syncs_watched;            /* under watch_mu */

#define REAL(f) (((struct sfile *)(f))->real)

static int s_close(sqlite3_file *f)
{
    int rc = REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
    return rc;
}
static int s_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xRead(REAL(f), p, n, off);
}
/* shim_on_db_write: run once at the next write to a database file */
static void (*db_write_hook)(void *);
static void *db_write_hook_arg;
static long long wal_min_off = -1; /* lowest WAL write offset since the reset */

static int s_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    if (((struct sfile *)f)->main_db) {
        pthread_mutex_lock(&watch_mu);
        db_writes++;
        if (watching && pthread_equal(pthread_self(), watched))
            db_writes_watched++;
        void (*hook)(void *) = db_write_hook;
        db_write_hook = NULL;
        pthread_mutex_unlock(&watch_mu);
        if (hook)
            hook(db_write_hook_arg);
    }
    if (((struct sfile *)f)->wal) {
        pthread_mutex_lock(&watch_mu);
        if (wal_min_off < 0 || off < wal_min_off)
            wal_min_off = off;
        pthread_mutex_unlock(&watch_mu);
    }
    return REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
}
static int s_truncate(sqlite3_file *f, sqlite3_int64 n)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), n);
}
static int s_sync(sqlite3_file *f, int flags)
{
    if (((struct sfile *)f)->wal) {
        __atomic_add_fetch(&wal_syncs, 1, __ATOMIC_SEQ_CST);
        pthread_mutex_lock(&watch_mu);
        if (watching && pthread_equal(pthread_self(), watched))
            wal_syncs_watched++;
        pthread_mutex_unlock(&watch_mu);
    }
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int s_size(sqlite3_file *f, sqlite3_int64 *n)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), n);
}
static int s_lock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int s_unlock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int s_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int s_fcntl(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int s_sector(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int s_devchar(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int s_shmmap(sqlite3_file *f, int i, int sz, int ext, void volatile **pp)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), i, sz, ext, pp);
}
static int s_shmlock(sqlite3_file *f, int off, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void s_shmbarrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int s_shmunmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int s_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
    return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}
static int s_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static int s_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out)
{
    struct sfile *s = (struct sfile *)f;
    s->real = (sqlite3_file *)(s + 1);
    s->wal = (flags & SQLITE_OPEN_WAL) != 0;
    s->main_db = (flags & SQLITE_OPEN_MAIN_DB) != 0;
    int rc = real_vfs->xOpen(real_vfs, name, s->real, flags, out);
    /* a file whose open failed is never closed: pMethods NULL says so */
    f->pMethods = s->real->pMethods ? &shim_io : NULL;
    return rc;
}

void shim_install(void)
{
    sqlite3_vfs *cur = sqlite3_vfs_find(NULL);
    if (cur != &shim_vfs) /* still installed after a failed test: keep its real one */
        real_vfs = cur;
    assert_non_null(real_vfs);
    shim_vfs = *real_vfs;
    shim_vfs.zName = "ims-test-shim";
    shim_vfs.szOsFile = (int)sizeof(struct sfile) + real_vfs->szOsFile;
    shim_vfs.xOpen = s_open;
    shim_vfs.pNext = NULL;
    shim_io = (sqlite3_io_methods){ 3,          s_close,    s_read,       s_write,   s_truncate,
                                    s_sync,     s_size,     s_lock,       s_unlock,  s_reserved,
                                    s_fcntl,    s_sector,   s_devchar,    s_shmmap,  s_shmlock,
                                    s_shmbarrier, s_shmunmap, s_fetch,    s_unfetch };
    assert_int_equal(sqlite3_vfs_register(&shim_vfs, 1), SQLITE_OK);
}

void shim_remove(void)
{
    sqlite3_vfs_unregister(&shim_vfs);
    sqlite3_vfs_register(real_vfs, 1);
}

int syncs(void)
{
    return __atomic_load_n(&wal_syncs, __ATOMIC_SEQ_CST);
}

void syncs_reset(void)
{
    __atomic_store_n(&wal_syncs, 0, __ATOMIC_SEQ_CST);
}

int shim_db_writes(int *by_watched)
{
    pthread_mutex_lock(&watch_mu);
    int n = db_writes;
    *by_watched = db_writes_watched;
    pthread_mutex_unlock(&watch_mu);
    return n;
}

void shim_watch(pthread_t t)
{
    pthread_mutex_lock(&watch_mu);
    watched = t;
    watching = true;
    db_writes = db_writes_watched = wal_syncs_watched = 0;
    pthread_mutex_unlock(&watch_mu);
}

int shim_syncs_watched(void)
{
    pthread_mutex_lock(&watch_mu);
    int n = wal_syncs_watched;
    pthread_mutex_unlock(&watch_mu);
    return n;
}

void shim_unwatch(void)
{
    pthread_mutex_lock(&watch_mu);
    watching = false;
    pthread_mutex_unlock(&watch_mu);
}

void shim_on_db_write(void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&watch_mu);
    db_write_hook = fn;
    db_write_hook_arg = arg;
    pthread_mutex_unlock(&watch_mu);
}

void shim_wal_writes_reset(void)
{
    pthread_mutex_lock(&watch_mu);
    wal_min_off = -1;
    pthread_mutex_unlock(&watch_mu);
}

long long shim_wal_min_write_offset(void)
{
    pthread_mutex_lock(&watch_mu);
    long long off = wal_min_off;
    pthread_mutex_unlock(&watch_mu);
    return off;
}

struct ims_store *shim_open_alice(struct tfix *f, const uint8_t k[16], const uint8_t opc[16])
{
    const char *impus[] = { "sip:alice@ims.test", NULL };
    struct ims_store *st = NULL;
    provision(f->st, "alice", "alice@ims.test", k, opc, "pw", impus);
    ims_store_close(f->st);
    f->st = NULL;
    shim_install();
    assert_int_equal(ims_store_open(f->url, f->repo, &st), 0);
    return st;
}
