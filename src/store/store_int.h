/* store_int.h - inside the store: the SQL driver interface that the SQLite
 * and PostgreSQL backends implement, the query table, and helpers shared
 * by store*.c.  Not for use outside src/store.
 *
 * Why the interface sits at the SQL level: every operation, transaction
 * and encryption step is written once (store*.c), against one small
 * driver (prepare/bind/step/column, begin/commit).  A backend is only a
 * driver plus its migrations; queries are portable SQL with '?'
 * placeholders (rewritten to $n for PostgreSQL), with a per-backend
 * override where the dialects differ (row locks). */
#ifndef IMS_STORE_INT_H
#define IMS_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/str.h"
#include "store/store.h"

/* ---- queries (store_sql.c) ---- */
enum store_q {
    Q_MIG_VERSION,
    Q_MIG_INSERT,

    Q_SUB_INSERT,
    Q_SUB_UPDATE,
    Q_SUB_GET,
    Q_SUB_LIST,
    Q_SUB_DELETE,
    Q_SUB_OF_IMPU,
    Q_SUB_SET_SCSCF,
    Q_SUB_CHANGE_SCSCF,
    Q_SUB_SET_SCSCF_ID,
    Q_SUB_CHANGE_SCSCF_ID,
    Q_SUBCAP_DELETE,
    Q_SUBCAP_INSERT,
    Q_SUBCAP_LIST,

    Q_IMPI_INSERT,
    Q_IMPI_IMPORT,
    Q_IMPI_GET,
    Q_IMPI_LIST_SUB,
    Q_IMPI_LIST_ALL,
    Q_IMPI_BATCH,
    Q_IMPI_SET_SCHEMES,
    Q_IMPI_SET_AKA,
    Q_IMPI_SET_DIGEST,
    Q_IMPI_SET_SECRETS,
    Q_IMPI_DELETE,
    Q_IMPI_SQN_INSERT,
    Q_IMPI_SQN_LOCK,
    Q_IMPI_SQN_LOCK_ID,
    Q_IMPI_SQN_SET,
    Q_SQN_GEN_BUMP,
    Q_KEY_USAGE,

    Q_IMPU_INSERT,
    Q_IMPU_IMPORT,
    Q_IMPU_NEXT_IRS,
    Q_IMPU_GET,
    Q_IMPU_STATE,
    Q_SUB_OF_IMPU_ID,
    Q_IMPU_LIST_SET,
    Q_SUB_IN_USE_ID,
    Q_IMPU_UPDATE,
    Q_IMPU_BAR,
    Q_IMPU_SET_PROFILE,
    Q_IMPU_DELETE,
    Q_IMPU_LIST_SUB,
    Q_IMPU_LIST_ALL,
    Q_IMPU_LIST_IMPI,
    Q_IMPU_LIST_IRS,
    Q_IMPU_REG_SET,
    Q_IMPU_REG_SET_ID,
    Q_IMPU_EXISTS,

    Q_LINK,
    Q_UNLINK,
    Q_LINK_LIST_ALL,
    Q_ASSOC,
    Q_ASSOC_BATCH,
    Q_IMPIS_OF_IMPU,
    Q_IMPIS_OF_SUB,
    Q_SUB_IN_USE,

    Q_PROFILE_UPSERT,
    Q_PROFILE_INSERT,
    Q_PROFILE_GET,
    Q_PROFILE_DELETE,
    Q_PROFILE_LIST,
    Q_PROFILE_OF_IMPU,

    Q_SH_GET,
    Q_SH_LOCK,
    Q_SH_INSERT,
    Q_SH_UPDATE,
    Q_SH_DELETE,
    Q_SH_LIST_ALL,

    Q_SCSCF_UPSERT,
    Q_SCSCF_INSERT,
    Q_SCSCF_DELETE,
    Q_SCSCF_CAP_DELETE,
    Q_SCSCF_CAP_INSERT,
    Q_SCSCF_LIST,

    /* store_ext.c (imscloudctl / admin): S-CSCF Diameter peers, migration 002 */
    Q_SCSCF_PEER_PUT,
    Q_SCSCF_PEER_GET,
    Q_SCSCF_PEER_LIST,

    /* store_cache.h: the change counter of migration 005 */
    Q_CACHE_GEN,

    Q__N
};

struct store_sql {
    const char *sql; /* portable, '?' placeholders */
    const char *pg;  /* PostgreSQL text when it differs, else NULL */
};
extern const struct store_sql store_sql[Q__N];

/* ---- migrations (generated from schema/<backend>/NNN_name.sql) ---- */
struct store_migration {
    int version;
    const char *name;
    const char *sql;
};
extern const struct store_migration store_migrations_sqlite[];
extern const size_t store_nmigrations_sqlite;
extern const struct store_migration store_migrations_pg[];
extern const size_t store_nmigrations_pg;

/* ---- the driver ---- */
struct store_db;
struct store_stmt;

enum { STORE_DONE = 0, STORE_ROW = 1 };
/* Driver-only result: a unique, foreign-key or check constraint refused
 * the statement.  The front end maps it to IMS_EINVAL with a message. */
#define STORE_ECONSTRAINT (-100)
#define STORE_MAX_PARAMS 16

/* Lifetime rules:
 * 1. A store_db is one connection, used by one thread at a time.
 * 2. prepare() returns the connection's cached statement for q, reset and
 *    with no bindings; it stays valid until the next prepare() of the same
 *    q or close().  One statement per q may be active at a time.
 * 3. Text bound with bind_text() is borrowed until the statement is reset
 *    or prepared again; col_text() slices live until the next step() or
 *    reset() of that statement.
 * 4. step() returns STORE_ROW, STORE_DONE, STORE_ECONSTRAINT, IMS_ENOMEM
 *    or IMS_EBACKEND; after an error the caller rolls back any
 *    transaction (PostgreSQL refuses further statements until then). */
struct store_driver {
    const char *name;
    /* A write transaction shuts out every other writer from its begin
     * (SQLite's BEGIN IMMEDIATE), so what it reads after begin stays
     * current until its COMMIT: a cached row read under the generation
     * read then may key its writes (store_cx.c). */
    bool serial_writes;
    const struct store_migration *migrations;
    const size_t *nmigrations;
    /* SQL run first inside the migration transaction ("" if none). */
    const char *migration_lock;
    int (*open)(const char *conninfo, struct store_db **out, char *err, size_t errlen);
    void (*close)(struct store_db *db);
    int (*exec)(struct store_db *db, const char *script); /* DDL: no parameters, no rows */
    int (*begin)(struct store_db *db);                    /* a write transaction */
    int (*commit)(struct store_db *db);
    void (*rollback)(struct store_db *db);
    int (*prepare)(struct store_db *db, enum store_q q, struct store_stmt **out);
    /* idx from 1; bind_text with null_if_empty binds SQL NULL for len 0. */
    int (*bind_int)(struct store_stmt *s, int idx, int64_t v);
    int (*bind_text)(struct store_stmt *s, int idx, ims_str v, bool null_if_empty);
    int (*step)(struct store_stmt *s);
    int64_t (*col_int)(struct store_stmt *s, int col);
    ims_str (*col_text)(struct store_stmt *s, int col); /* SQL NULL -> empty */
    bool (*col_null)(struct store_stmt *s, int col);
    int64_t (*changes)(struct store_stmt *s); /* rows changed by the last step */
    void (*reset)(struct store_stmt *s);
    const char *(*errmsg)(struct store_db *db); /* last driver error, no parameters */
    /* Optional (NULL: store.c runs the text through exec): one of
     * "SAVEPOINT ims_sp", "RELEASE ims_sp", "ROLLBACK TO ims_sp" as a
     * cached statement (sp 0, 1, 2). */
    int (*savepoint)(struct store_db *db, int op);
    /* Optional.  set_lazy: while true, writes need not be on disk when
     * their commit returns (st_lazy).  idle: the connection is between
     * batches, outside any transaction (st_idle); true when the WAL is due
     * a checkpoint, which it runs itself only with may_checkpoint. */
    void (*set_lazy)(struct store_db *db, bool lazy);
    bool (*idle)(struct store_db *db, bool may_checkpoint);
    /* Optional, for store/exec.c's background flush.  take_unflushed: true
     * when a lazy write was committed on db since the last call and no
     * flush of db covered it (clears it).  flush: makes every commit of
     * the file so far durable (SQLite: fdatasync of the WAL, which any
     * connection's commits append to), then, with checkpoint, copies the
     * WAL into the database (passive: never waits for readers). */
    bool (*take_unflushed)(struct store_db *db);
    int (*flush)(struct store_db *db, bool checkpoint);
    /* Optional (NULL: st_req_begin reads outside any transaction).
     * begin_read: a read transaction (SQLite: BEGIN DEFERRED, no write
     * lock).  end_read: ends it, 0 when none is open (SQLite rolled it back
     * after an error); a write made in it anyway is committed (and
     * flushed) as commit would. */
    int (*begin_read)(struct store_db *db);
    int (*end_read)(struct store_db *db);
    /* Optional (NULL: unknown).  A number that changes whenever the file
     * changed, by this connection or any other, as of this connection's
     * last transaction start (SQLite: SQLITE_FCNTL_DATA_VERSION); false
     * when it cannot tell. */
    bool (*data_version)(struct store_db *db, uint32_t *out);
    /* Optional (NULL: never).  sqn_lazy: inside a write transaction, may
     * an SQN write that moves SEQs steps ahead commit without a flush?
     * Yes while the SEQ steps of lazy commits not yet covered by a flush,
     * in this process, on this file, stay within SQN_LAZY_MAX with these
     * (counted from then on; the transaction's COMMIT adds them). */
    bool (*sqn_lazy)(struct store_db *db, uint64_t steps);
};
extern const struct store_driver store_sqlite_driver;
extern const struct store_driver store_pg_driver;

struct ims_store {
    const struct store_driver *drv;
    struct store_db *db;
    struct ims_keyrepo *repo; /* borrowed */
    char errmsg[256];
    /* Transaction nesting (st_begin/st_commit/st_rollback): levels open.
     * Outside a batch the first level is the driver's transaction and
     * deeper ones are savepoints; inside a batch (st_batch_begin) every
     * level is a savepoint in the batch's one transaction. */
    int depth;
    bool batch;        /* between st_batch_begin and st_batch_end */
    bool batch_open;   /* the batch's transaction has begun (lazily) */
    bool batch_broken; /* a savepoint failed: the batch can only roll back */
    bool req_read;     /* st_req_begin's read transaction is open */
    /* The SQN generation of this process (st_sqn_generation_start), set
     * by store/exec.c on each connection it opens; 0: SQN writes are
     * flushed at their commit and never moved ahead (ims_store_open
     * alone, imscloudctl, PostgreSQL). */
    uint64_t sqn_gen;
    /* The executor's identity cache (store_cache.h), borrowed; NULL: none.
     * cache_gen/cache_epoch: the tag this request read (st_cache_tag),
     * kept while cache_gen_ok (st_batch_begin/st_batch_end clear it). */
    struct store_cache *cache;
    /* The executor's SQN blocks (store_sqnblk.h), borrowed; NULL: every
     * SQN is written (ims_store_sqn_take is ims_store_sqn_update). */
    struct store_sqnblk *sqnblk;
    uint64_t cache_gen, cache_epoch;
    bool cache_gen_ok;
    /* the driver's data_version when cache_gen was read (cache_dv_ok):
     * unchanged at a later write transaction's start, nothing was
     * committed in between and cache_gen still holds */
    uint32_t cache_dv;
    bool cache_dv_ok;
    /* the open transaction (or batch) ran a statement that may move the
     * counter: its rollback makes the cache forget (store_cache.h rule 2) */
    bool cache_wrote;
    /* The IMPI row id the last tagged auth read found (store_cx.c): the
     * SQN update that follows it in an AKA MAR needs no lookup. */
    struct {
        char impi[IMS_STORE_ID_MAX];
        int64_t id;
        uint64_t gen, epoch;
    } last_impi;
};

/* ---- helpers (store.c) ---- */

/* Prepares q and binds arguments described by fmt, one character each:
 *   't' ims_str text (must be non-empty unless the column allows '')
 *   'o' ims_str optional text: empty binds NULL
 *   'i' int64_t
 * Callers must pass int64_t for 'i' (cast): varargs do not convert. */
int st_query(struct ims_store *s, enum store_q q, struct store_stmt **out, const char *fmt, ...);
/* st_query + one step + reset, for statements without rows.  *changes
 * (may be NULL) gets the rows changed. */
int st_exec(struct ims_store *s, enum store_q q, int64_t *changes, const char *fmt, ...);
/* Maps a driver result to an IMS_E* code and records errmsg: STORE_ECONSTRAINT
 * becomes IMS_EINVAL ("<what>: refused by the database (duplicate or still
 * referenced)"), IMS_EBACKEND keeps the driver's text. */
int st_fail(struct ims_store *s, int rc, const char *what);
/* errmsg formatting (also for IMS_ENOENT etc.). */
int st_err(struct ims_store *s, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Transactions nest: an st_begin inside an open level (or inside a batch)
 * is a SAVEPOINT, its st_commit a RELEASE, its st_rollback a ROLLBACK TO
 * (undoing that level only), so every store operation keeps its own
 * all-or-nothing behaviour whatever encloses it.  After a failed
 * st_commit the level is still open: the caller st_rollback()s it (every
 * caller does). */
int st_begin(struct ims_store *s);
int st_commit(struct ims_store *s);
void st_rollback(struct ims_store *s);

/* Group commit (store/exec.c): between st_batch_begin and st_batch_end
 * every store call on s runs inside ONE write transaction, begun by the
 * first st_begin (a batch of reads never takes the write lock), each
 * operation in its own savepoint.  st_batch_end commits it: 0 once the
 * COMMIT returned (everything the batch wrote is durable), or an error
 * (IMS_EBACKEND, IMS_ENOMEM) after rolling the whole batch back (a
 * savepoint failed, an operation left a level open, or COMMIT failed):
 * then nothing of the batch was stored, whatever the operations
 * returned. */
void st_batch_begin(struct ims_store *s);
int st_batch_end(struct ims_store *s);

/* One request, one transaction (store/exec.c, ims_store_exec_run): a
 * batch (above) that begins with a read transaction, so the request's
 * reads share one snapshot and one round of locks instead of taking them
 * per statement.  Its first write ends that read transaction and begins
 * the batch's write transaction (SQLite: BEGIN IMMEDIATE under the write
 * mutex), as a request's separate store calls did before: upgrading the
 * read transaction in place could fail (SQLITE_BUSY_SNAPSHOT) after the
 * work acted on what it read.  st_req_end: as st_batch_end (0, or an
 * error after nothing of the request was stored). */
void st_req_begin(struct ims_store *s);
int st_req_end(struct ims_store *s);

/* Lazy writes: between st_lazy(s, true) and st_lazy(s, false) (they nest:
 * the writes are lazy while any level is) the writes
 * of s are committed without waiting for the disk (SQLite: no fdatasync
 * at their COMMIT; a crash of the process does not lose them, a power cut
 * may, until the next flushed commit or store/exec.c's background flush
 * [hss] flush_ms later).  Only for data whose loss is harmless (the Server-Name
 * a MAR stores, the registration state a SAR stores: the S-CSCF stores
 * them again at the next (re-)registration), and an SQN under the rules
 * below (st_sqn_lazy).  A transaction or batch that also writes anything
 * else is flushed as a whole.  A no-op where the backend has no such mode. */
void st_lazy(struct ims_store *s, bool lazy);

/* ---- SQNs committed without a flush (docs/internals/hss-store.md) ----
 *
 * A vector may leave before its SQN is on disk.  A power cut can then
 * lose the last SQNs handed out; they must never be handed out again.
 * 1. Each start of an HSS process on a SQLite file takes a new
 *    generation G (st_sqn_generation_start: a flushed commit, which also
 *    makes everything earlier processes committed durable).
 * 2. An SQN write records G in the row (impi_sqn.sqn_gen).  One that reads a
 *    row last written under g < G first moves its SEQ ahead by
 *    SQN_GEN_SKIP * (G - g) (TS 33.102 Annex C.1: the HE may skip SEQs;
 *    the USIM accepts any jump up to Δ).
 * 3. A process's SQN writes commit without a flush only while the SEQ
 *    steps of its lazy commits that no flush covers yet stay within
 *    SQN_LAZY_MAX (driver sqn_lazy); otherwise the commit flushes.
 * So what a power cut loses of a row is at most SQN_LAZY_MAX steps past
 * its durable SEQ S (written under g), all issued under generations <= the
 * last one G'; the next start's skip is SQN_GEN_SKIP * (G' + 1 - g), more
 * than SQN_GEN_SKIP * (G' - g) + SQN_LAZY_MAX, the largest SEQ any of them
 * could reach. */
#define SQN_LAZY_MAX (UINT64_C(1) << 12)
#define SQN_GEN_SKIP (UINT64_C(1) << 13)
_Static_assert(SQN_GEN_SKIP > SQN_LAZY_MAX, "a generation's skip covers what a power cut loses");
/* The steps an SQN block (store_sqnblk.h) reserves past the value handed
 * out.  Its commit counts them under rule 3: small, so that a burst of
 * first MARs (each reserving one) stays within SQN_LAZY_MAX per flush. */
#define SQN_BLOCK_STEPS 8
_Static_assert(SQN_BLOCK_STEPS * 64 < SQN_LAZY_MAX, "a flush covers many reservations");

/* Takes the next generation for this process (a flushed commit) into *gen.
 * 0 or an st_fail() error. */
int st_sqn_generation_start(struct ims_store *s, uint64_t *gen);
static inline void st_set_sqn_generation(struct ims_store *s, uint64_t gen)
{
    s->sqn_gen = gen;
}
static inline bool st_sqn_lazy(struct ims_store *s, uint64_t steps)
{
    return s->sqn_gen && s->drv->sqn_lazy && s->drv->sqn_lazy(s->db, steps);
}

/* ---- the identity cache (store_cache.h) ----
 *
 * st_use_cache: s reads through c from now on (store/exec.c, for each
 * connection it opens; c outlives them).  st_cache_tag: the (gen, epoch)
 * to get and put with, read before the data it tags (store_cache.h, rule
 * 1); read once per request (batch), and again after any statement of the
 * request that may have moved gen (every write but the Cx path's own: SQN,
 * registration state, S-CSCF name); outside a request, per call.  false: no cache, or gen
 * could not be read (then the caller reads the database, as without). */
struct store_cache;
void st_use_cache(struct ims_store *s, struct store_cache *c);
bool st_cache_tag(struct ims_store *s, uint64_t *gen, uint64_t *epoch);
/* Fills s's cache with what the Cx path reads of each IMPI (its
 * authentication row, its OK associations), at most max entries, so that
 * the first requests after a start find it (store/exec.c).  *loaded: the
 * entries kept.  0 (also without a cache) or the common errors. */
int st_cache_preload(struct ims_store *s, size_t max, size_t *loaded);

/* s hands out SQNs from the blocks in b from now on (store/exec.c, for
 * each connection of a SQLite file; b outlives them). */
struct store_sqnblk;
static inline void st_use_sqnblk(struct ims_store *s, struct store_sqnblk *b)
{
    s->sqnblk = b;
}

/* store/exec.c, after a batch's completions were posted: housekeeping
 * (SQLite's WAL checkpoints) off the path of any answer.  With
 * may_checkpoint false the connection leaves a due checkpoint to another
 * thread (exec.c's flusher) and says so: true when one is due. */
bool st_idle(struct ims_store *s, bool may_checkpoint);
/* store/exec.c's background flush (the driver ops above); where the
 * backend has none: false, and 0 (its commits are durable already). */
static inline bool st_take_unflushed(struct ims_store *s)
{
    return s->drv->take_unflushed && s->drv->take_unflushed(s->db);
}
/* SQLite: WAL frames past which the flusher's checkpoint makes sure the
 * WAL starts over (store_sqlite.c, checkpoint_and_restart); tests lower
 * it. */
extern int st_wal_restart_frames;
static inline int st_flush(struct ims_store *s, bool checkpoint)
{
    return s->drv->flush ? s->drv->flush(s->db, checkpoint) : 0;
}

/* Validation: identities (1..IMS_STORE_ID_MAX-1 printable ASCII, no
 * space, none of '<', '>', '"', '\'), names (.. IMS_STORE_NAME_MAX-1),
 * optional variants accept "". */
bool st_valid_id(ims_str s);
/* What an identity row may hold from before st_valid_id refused '<', '>',
 * '"' and '\': the deletes take it, so such a row can still be removed. */
bool st_valid_stored_id(ims_str s);
bool st_valid_name(ims_str s);
bool st_valid_opt(ims_str s, size_t max);
/* Text without NUL bytes (PostgreSQL TEXT cannot hold them), <= max. */
bool st_valid_text(ims_str s, size_t max);
/* Copies a column into a fixed char array (truncating to the array). */
void st_col_copy(struct ims_store *s, struct store_stmt *stmt, int col, char *dst, size_t cap);
#define ST_COPY(s, stmt, col, arr) st_col_copy((s), (stmt), (col), (arr), sizeof(arr))

/* Secrets: AD "impi:<identity>:<field>". */
int st_encrypt(struct ims_store *s, ims_str impi, const char *field, const void *pt, size_t n,
               struct ims_buf *out);
/* st_decrypt without a store (any thread): logs an undecryptable secret;
 * returns ims_keyrepo_decrypt's code (IMS_ENOENT too when repo is NULL). */
int st_decrypt_with(const struct ims_keyrepo *repo, ims_str impi, const char *field, ims_str ct,
                    void *pt, size_t cap, size_t *n);
int st_decrypt(struct ims_store *s, ims_str impi, const char *field, ims_str ct, void *pt,
               size_t cap, size_t *n);

/* Secret columns of the impi table, in Q_IMPI_SET_SECRETS order. */
enum { SEC_K, SEC_OPC, SEC_HA1_MD5, SEC_HA1_SHA256, SEC_HA1_SHA512_256, SEC_PASSWORD, SEC__N };
extern const char *const st_secret_field[SEC__N];

/* The IMPI row as Q_IMPI_GET/LIST/BATCH return it (same column order). */
enum {
    IMPI_COL_ID,
    IMPI_COL_IDENTITY,
    IMPI_COL_SUB,
    IMPI_COL_REALM,
    IMPI_COL_SCHEMES,
    IMPI_COL_AMF,
    IMPI_COL_SQN,
    IMPI_COL_SECRET0, /* SEC_K .. SEC_PASSWORD follow */
};
void st_impi_row(struct ims_store *s, struct store_stmt *stmt, struct ims_impi_rec *out);
/* The IMPU row as Q_IMPU_GET and the lists return it; after the columns
 * st_impu_row reads, the row ids of the IMPU and its subscription. */
enum { IMPU_COL_ID = 8, IMPU_COL_SUB_ID };
void st_impu_row(struct ims_store *s, struct store_stmt *stmt, struct ims_impu_rec *out);
/* A subscription row (SUB_COLS order: id first); returns the id. */
int64_t st_sub_row(struct ims_store *s, struct store_stmt *stmt, struct ims_sub_rec *out);
/* Fills the capability arrays of sub from Q_SUBCAP_LIST. */
int st_sub_caps(struct ims_store *s, int64_t sub_id, struct ims_sub_rec *sub);
/* What ORDER BY ... LIMIT cap would keep of a sequence of items: puts item
 * into arr[0..*n) (ordered by cmp, after the equal ones) unless the list
 * holds cap items already and item sorts after all of them; then the last
 * one makes room.  For the short lists of the Cx path, sorted here rather
 * than by the database: an ORDER BY that no index gives made SQLite build
 * a sorter on every call (about 5 000 instructions and several
 * allocations, measured on the bench's database), and byte order is the
 * same on both backends (PostgreSQL's would follow its collation). */
void st_keep_sorted(void *arr, size_t *n, size_t cap, size_t size, const void *item,
                    int (*cmp)(const void *, const void *));
/* Writes the capability rows of sub (deleting the old ones first). */
int st_sub_caps_put(struct ims_store *s, int64_t sub_id, const struct ims_sub_rec *sub);

#endif
