/* reg_persist.c - the S-CSCF's registrations written behind to SQLite and
 * read back at start (reg_persist.h says what is kept, what a crash or a
 * power cut can lose, and what is not kept).
 *
 * File: <state_dir>/scscf-reg.db, WAL, synchronous=NORMAL, one table
 *   reg(impu TEXT PRIMARY KEY, expires INTEGER, rec BLOB)
 * where rec is
 *   "IMSR" | version (REG_PACKED_FORMAT; 1 is still read) | 0 | nimpu u16 |
 *   ncontacts u16 | 0 u16 |
 *   data_len u32 | xml_len u32 | registered_at i64 |
 *   data (registrar.c's packed record) | xml (the profile, canonical
 *   IMSSubscription; reg_profile_xml)
 * integers little-endian; the fixed part of a packed contact is in the
 * host's byte order (the file does not move between architectures).
 * Storing the profile as a document and parsing it at load keeps
 * profile.c's structs private to profile.c.
 *
 * The writer thread owns the connection after reg_persist_start(); before
 * it, the caller's thread (open, load).  A process-wide advisory lock
 * (<path>.lock, flock) keeps a second S-CSCF on the same state_dir from
 * loading and overwriting the first one's registrations. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/thread.h"
#include "base/xml.h"
#include "cfg/cfg.h"
#include "cscf/cscf_int.h"
#include "cscf/reg_persist.h"

#define BLOB_MAGIC "IMSR"
#define BLOB_HDR 28
#define QUEUE_MAX_ITEMS 65536u            /* changes waiting for the writer */
#define QUEUE_MAX_BYTES (64u << 20)       /* and their bytes */
#define RETRY_MS 1000                     /* after a failed batch */
#define DB_PATH_MAX 1024

struct pq_item {
    struct pq_item *next;
    bool del;
    struct reg_packed v;          /* key and data point into buf */
    size_t bytes;
    char buf[];
};

struct reg_persist {
    sqlite3 *db;
    sqlite3_stmt *ins, *del;
    int lock_fd;
    char path[DB_PATH_MAX];

    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    pthread_t thread;
    bool started, stop;
    struct pq_item *head, **tail;
    size_t nitems, nbytes;
    bool resync;                  /* the file misses changes: rewrite it from the table */
    bool overflow_logged;
    uint64_t queued_seq, done_seq; /* flush: changes queued / written (or failed) */
    int last_rc;

    reg_persist_snapshot_fn snapshot;
    void *snapshot_ctx;
    int batch_rc;                 /* writer thread: the open batch's first error */
    struct ims_buf xml;           /* writer thread: scratch for profile documents */
};

/* ------------------------------------------------------------ profile -> XML */

/* <name>text</name>, nothing when text is NULL */
static int x_elem(struct ims_buf *b, const char *name, const char *text)
{
    if (!text)
        return 0;
    int rc = ims_buf_printf(b, "<%s>", name);
    if (rc == 0)
        rc = ims_xml_escape(b, ims_str_cstr(text));
    if (rc == 0)
        rc = ims_buf_printf(b, "</%s>", name);
    return rc;
}

static int x_num(struct ims_buf *b, const char *name, unsigned long v)
{
    return ims_buf_printf(b, "<%s>%lu</%s>", name, v, name);
}

static int x_spt(struct ims_buf *b, const struct ims_prof_spt *s)
{
    int rc = ims_buf_add_cstr(b, "<SPT>");
    if (rc == 0)
        rc = x_num(b, "ConditionNegated", s->negated);
    for (size_t g = 0; g < s->ngroups && rc == 0; g++)
        rc = x_num(b, "Group", s->groups[g]);
    if (rc)
        return rc;
    switch (s->kind) {
    case IMS_SPTK_METHOD: rc = x_elem(b, "Method", s->value); break;
    case IMS_SPTK_REQUEST_URI: rc = x_elem(b, "RequestURI", s->value); break;
    case IMS_SPTK_SESSION_CASE: rc = x_num(b, "SessionCase", (unsigned long)s->session_case); break;
    case IMS_SPTK_SIP_HEADER:
    case IMS_SPTK_SESSION_DESCRIPTION: {
        bool hdr = s->kind == IMS_SPTK_SIP_HEADER;
        rc = ims_buf_add_cstr(b, hdr ? "<SIPHeader>" : "<SessionDescription>");
        if (rc == 0)
            rc = x_elem(b, hdr ? "Header" : "Line", s->value);
        if (rc == 0)
            rc = x_elem(b, "Content", s->content);
        if (rc == 0)
            rc = ims_buf_add_cstr(b, hdr ? "</SIPHeader>" : "</SessionDescription>");
        break;
    }
    }
    if (rc == 0 && s->reg_types) {
        rc = ims_buf_add_cstr(b, "<Extension>");
        for (unsigned t = 0; t < 3 && rc == 0; t++)
            if (s->reg_types & (1u << t))
                rc = x_num(b, "RegistrationType", t);
        if (rc == 0)
            rc = ims_buf_add_cstr(b, "</Extension>");
    }
    if (rc == 0)
        rc = ims_buf_add_cstr(b, "</SPT>");
    return rc;
}

static int x_ifc(struct ims_buf *b, const struct ims_prof_ifc *f)
{
    int rc = ims_buf_add_cstr(b, "<InitialFilterCriteria>");
    if (rc == 0)
        rc = x_num(b, "Priority", f->priority);
    if (rc == 0 && f->has_trigger) {
        rc = ims_buf_add_cstr(b, "<TriggerPoint>");
        if (rc == 0)
            rc = x_num(b, "ConditionTypeCNF", f->cnf);
        for (size_t i = 0; i < f->nspt && rc == 0; i++)
            rc = x_spt(b, &f->spts[i]);
        if (rc == 0)
            rc = ims_buf_add_cstr(b, "</TriggerPoint>");
    }
    if (rc == 0)
        rc = ims_buf_add_cstr(b, "<ApplicationServer>");
    if (rc == 0)
        rc = x_elem(b, "ServerName", f->server_name);
    if (rc == 0)
        rc = x_num(b, "DefaultHandling", (unsigned long)f->default_handling);
    if (rc == 0)
        rc = x_elem(b, "ServiceInfo", f->service_info);
    if (rc == 0 && (f->include_register_request || f->include_register_response))
        rc = ims_buf_printf(b, "<Extension>%s%s</Extension>",
                            f->include_register_request ? "<IncludeRegisterRequest/>" : "",
                            f->include_register_response ? "<IncludeRegisterResponse/>" : "");
    if (rc == 0)
        rc = ims_buf_add_cstr(b, "</ApplicationServer>");
    if (rc == 0 && f->profile_part >= 0)
        rc = x_num(b, "ProfilePartIndicator", (unsigned long)f->profile_part);
    if (rc == 0)
        rc = ims_buf_add_cstr(b, "</InitialFilterCriteria>");
    return rc;
}

static int x_id(struct ims_buf *b, const struct ims_pub_id *id)
{
    int rc = ims_buf_add_cstr(b, "<PublicIdentity>");
    if (rc == 0)
        rc = x_num(b, "BarringIndication", id->barred);
    if (rc == 0)
        rc = x_elem(b, "Identity", id->identity);
    if (rc == 0)
        rc = ims_buf_add_cstr(b, "<Extension>");
    if (rc == 0)
        rc = x_num(b, "IdentityType", (unsigned long)id->identity_type);
    if (rc == 0 && id->display_name) {
        rc = ims_buf_add_cstr(b, "<Extension>");
        if (rc == 0)
            rc = x_elem(b, "DisplayName", id->display_name);
        if (rc == 0)
            rc = ims_buf_add_cstr(b, "</Extension>");
    }
    if (rc == 0)
        rc = ims_buf_add_cstr(b, "</Extension></PublicIdentity>");
    return rc;
}

int reg_profile_xml(const struct ims_profile *p, struct ims_buf *b)
{
    ims_buf_reset(b);
    int rc = ims_buf_add_cstr(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><IMSSubscription>");
    if (rc == 0)
        rc = x_elem(b, "PrivateID", p->impi);
    for (size_t i = 0; i < p->nsp && rc == 0; i++) {
        const struct ims_service_profile *sp = &p->sps[i];
        rc = ims_buf_add_cstr(b, "<ServiceProfile>");
        for (size_t k = 0; k < sp->nids && rc == 0; k++)
            rc = x_id(b, &sp->ids[k]);
        for (size_t k = 0; k < sp->nifc && rc == 0; k++)
            rc = x_ifc(b, &sp->ifcs[k]);
        if (rc == 0)
            rc = ims_buf_add_cstr(b, "</ServiceProfile>");
    }
    if (rc == 0)
        rc = ims_buf_add_cstr(b, "</IMSSubscription>");
    return rc;
}

/* ------------------------------------------------------------ the blob */

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* The blob of v with profile document xml (may be empty) into b. */
static int blob_build(const struct reg_packed *v, ims_str xml, struct ims_buf *b)
{
    uint8_t h[BLOB_HDR] = { 0 };
    memcpy(h, BLOB_MAGIC, 4);
    h[4] = REG_PACKED_FORMAT; /* what registrar.c packs */
    put_le(h + 6, v->nimpu, 2);
    put_le(h + 8, v->ncontacts, 2);
    put_le(h + 12, v->len, 4);
    put_le(h + 16, xml.len, 4);
    put_le(h + 20, (uint64_t)v->registered_at, 8);
    ims_buf_reset(b);
    int rc = ims_buf_add(b, h, sizeof(h));
    if (rc == 0)
        rc = ims_buf_add(b, v->data, v->len);
    if (rc == 0 && xml.len)
        rc = ims_buf_add(b, xml.p, xml.len);
    return rc;
}

/* blob -> v (pointing into blob) and the profile document.  0 or
 * IMS_EPROTO. */
static int blob_parse(const uint8_t *p, size_t n, struct reg_packed *v, ims_str *xml)
{
    if (n < BLOB_HDR || memcmp(p, BLOB_MAGIC, 4) != 0 || p[4] < 1 || p[4] > REG_PACKED_FORMAT)
        return IMS_EPROTO;
    v->format = p[4];
    uint64_t dlen = get_le(p + 12, 4), xlen = get_le(p + 16, 4);
    if (dlen + xlen != n - BLOB_HDR)
        return IMS_EPROTO;
    v->nimpu = (uint16_t)get_le(p + 6, 2);
    v->ncontacts = (uint16_t)get_le(p + 8, 2);
    v->registered_at = (int64_t)get_le(p + 20, 8);
    v->data = (const char *)p + BLOB_HDR;
    v->len = (size_t)dlen;
    *xml = ims_str_make((const char *)p + BLOB_HDR + dlen, (size_t)xlen);
    return 0;
}

/* ------------------------------------------------------------ the file */

static bool corrupt_rc(int rc)
{
    return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
}

static int db_exec(struct reg_persist *p, const char *sql)
{
    return sqlite3_exec(p->db, sql, NULL, NULL, NULL);
}

static void db_close(struct reg_persist *p)
{
    sqlite3_finalize(p->ins);
    sqlite3_finalize(p->del);
    sqlite3_close(p->db);
    p->ins = p->del = NULL;
    p->db = NULL;
}

/* PRAGMA quick_check says "ok" (O(size of the file), once at start). */
static int db_check(struct reg_persist *p)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(p->db, "PRAGMA quick_check", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            rc = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0 ? SQLITE_OK
                                                                              : SQLITE_CORRUPT;
    }
    sqlite3_finalize(st);
    return rc;
}

/* One attempt: open, WAL, schema, check, statements.  An SQLite code. */
static int db_open_once(struct reg_persist *p)
{
    int rc = sqlite3_open_v2(p->path, &p->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(p->db, 2000);
    if (rc == SQLITE_OK)
        rc = db_exec(p, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                        "CREATE TABLE IF NOT EXISTS reg (impu TEXT PRIMARY KEY,"
                        " expires INTEGER NOT NULL, rec BLOB NOT NULL) WITHOUT ROWID;");
    if (rc == SQLITE_OK)
        rc = db_check(p);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(p->db,
                                "INSERT OR REPLACE INTO reg (impu, expires, rec) VALUES (?,?,?)",
                                -1, &p->ins, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(p->db, "DELETE FROM reg WHERE impu = ?", -1, &p->del, NULL);
    return rc;
}

/* The unreadable file goes aside (kept for a post-mortem), with its WAL. */
static void move_aside(struct reg_persist *p)
{
    static const char *const sfx[] = { "", "-wal", "-shm" };
    for (size_t i = 0; i < 3; i++) {
        char from[DB_PATH_MAX + 8], to[DB_PATH_MAX + 16];
        snprintf(from, sizeof(from), "%s%s", p->path, sfx[i]);
        snprintf(to, sizeof(to), "%s.corrupt%s", p->path, sfx[i]);
        if (rename(from, to) != 0 && errno != ENOENT)
            unlink(from);
    }
}

static int db_open(struct reg_persist *p, char *err, size_t errsz)
{
    int rc = db_open_once(p);
    if (corrupt_rc(rc)) {
        LOG_W("scscf", "event=registrations_file_unreadable path=%s err=\"%s\" action=\"moved "
                       "to %s.corrupt, starting with no registrations\"",
              p->path, p->db ? sqlite3_errmsg(p->db) : sqlite3_errstr(rc), p->path);
        db_close(p);
        move_aside(p);
        rc = db_open_once(p);
    }
    if (rc != SQLITE_OK) {
        snprintf(err, errsz, "scscf: cannot open %s: %s", p->path,
                 p->db ? sqlite3_errmsg(p->db) : sqlite3_errstr(rc));
        db_close(p);
        return (rc & 0xff) == SQLITE_NOMEM ? IMS_ENOMEM : IMS_EBACKEND;
    }
    return 0;
}

static int take_lock(struct reg_persist *p, char *err, size_t errsz)
{
    char lp[DB_PATH_MAX + 8];
    snprintf(lp, sizeof(lp), "%s.lock", p->path);
    p->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (p->lock_fd < 0) {
        snprintf(err, errsz, "scscf: cannot open %s: %s", lp, strerror(errno));
        return IMS_EBACKEND;
    }
    if (flock(p->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errsz, "scscf: %s is in use by another process (two S-CSCFs on one "
                             "state_dir?)", p->path);
        return IMS_EBACKEND;
    }
    return 0;
}

static void persist_free(struct reg_persist *p)
{
    db_close(p);
    if (p->lock_fd >= 0)
        close(p->lock_fd); /* releases the flock */
    ims_buf_free(&p->xml);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    ims_free(p);
}

int reg_persist_open(const char *path, struct reg_persist **out, char *err, size_t errsz)
{
    if (strlen(path) >= DB_PATH_MAX) {
        snprintf(err, errsz, "scscf: path too long: %s", path);
        return IMS_EINVAL;
    }
    struct reg_persist *p = ims_calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errsz, "scscf: out of memory");
        return IMS_ENOMEM;
    }
    snprintf(p->path, sizeof(p->path), "%s", path);
    p->lock_fd = -1;
    p->tail = &p->head;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    ims_buf_init(&p->xml, IMS_PROFILE_DOC_MAX);
    int rc = take_lock(p, err, errsz);
    if (rc == 0)
        rc = db_open(p, err, errsz);
    if (rc) {
        persist_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* ------------------------------------------------------------ load */

static int bind_key(sqlite3_stmt *st, const char *key)
{
    return sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
}

static int del_row(struct reg_persist *p, const char *key)
{
    sqlite3_reset(p->del);
    int rc = bind_key(p->del, key);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(p->del);
    sqlite3_clear_bindings(p->del);
    sqlite3_reset(p->del);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* One row to fn: 0 (restored), 1 (to delete: expired or bad), or an error
 * that keeps the row (no room, no memory). */
static int load_row(sqlite3_stmt *st, int64_t now,
                    int (*fn)(const struct reg_packed *rec, void *ctx), void *ctx)
{
    const char *key = (const char *)sqlite3_column_text(st, 0);
    int64_t expires = sqlite3_column_int64(st, 1);
    const uint8_t *blob = sqlite3_column_blob(st, 2);
    size_t n = (size_t)sqlite3_column_bytes(st, 2);
    if (!key)
        return 1;
    /* a lapsed one goes to fn too (it owes the HSS a SAR), without its profile */
    bool lapsed = expires <= now;
    struct reg_packed v = { .key = key, .expires = expires };
    ims_str xml;
    int rc = blob && blob_parse(blob, n, &v, &xml) == 0 ? 0 : IMS_EPROTO;
    if (rc == 0 && xml.len && !lapsed) {
        rc = ims_profile_parse(xml, &v.profile);
        if (rc == IMS_ELIMIT)
            rc = IMS_EPROTO; /* we never wrote one that big */
    }
    if (rc == 0)
        rc = fn(&v, ctx);
    ims_profile_unref(v.profile);
    if (rc == IMS_EPROTO)
        LOG_W("scscf", "event=registration_unreadable impu=%s action=dropped", key);
    if (rc == IMS_EPROTO || rc == IMS_ENOENT)
        return 1;
    return rc;
}

int reg_persist_load(struct reg_persist *p, int64_t now,
                     int (*fn)(const struct reg_packed *rec, void *ctx), void *ctx,
                     size_t *loaded, size_t *dropped)
{
    *loaded = *dropped = 0;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(p->db, "SELECT impu, expires, rec FROM reg", -1, &st, NULL);
    /* the keys to delete, collected first: no writes under a running SELECT */
    struct ims_buf gone;
    ims_buf_init(&gone, 64u << 20);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int r = load_row(st, now, fn, ctx);
        if (r == 0) {
            (*loaded)++;
            rc = SQLITE_OK;
            continue;
        }
        (*dropped)++;
        const char *key = (const char *)sqlite3_column_text(st, 0);
        if (r == 1 && key && ims_buf_add(&gone, key, strlen(key) + 1) != 0)
            LOG_W("scscf", "event=registrations_cleanup_skipped why=memory");
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    if (corrupt_rc(rc)) {
        /* found only now: what was read stays in the table; a fresh file
         * gets it at the writer's first resync */
        LOG_W("scscf", "event=registrations_file_unreadable path=%s err=\"%s\" action=\"moved "
                       "to %s.corrupt, keeping the %zu registrations read\"",
              p->path, sqlite3_errmsg(p->db), p->path, *loaded);
        db_close(p);
        move_aside(p);
        char err[256];
        ims_buf_free(&gone);
        if (db_open(p, err, sizeof(err)) != 0) {
            LOG_E("scscf", "event=registrations_file_failed err=\"%s\"", err);
            return IMS_EBACKEND;
        }
        p->resync = true;
        p->queued_seq++;
        return 0;
    }
    if (rc == SQLITE_OK && gone.len) {
        rc = db_exec(p, "BEGIN");
        for (const char *k = gone.p; rc == SQLITE_OK && k < gone.p + gone.len; k += strlen(k) + 1)
            rc = del_row(p, k);
        rc = db_exec(p, rc == SQLITE_OK ? "COMMIT" : "ROLLBACK") == SQLITE_OK ? rc : SQLITE_ERROR;
    }
    ims_buf_free(&gone);
    if (rc != SQLITE_OK) {
        LOG_E("scscf", "event=registrations_load_failed path=%s err=\"%s\"", p->path,
              sqlite3_errmsg(p->db));
        return (rc & 0xff) == SQLITE_NOMEM ? IMS_ENOMEM : IMS_EBACKEND;
    }
    return 0;
}

/* ------------------------------------------------------------ queue */

static void item_free(struct pq_item *it)
{
    if (it)
        ims_profile_unref(it->v.profile);
    ims_free(it);
}

static void free_list(struct pq_item *it)
{
    while (it) {
        struct pq_item *n = it->next;
        item_free(it);
        it = n;
    }
}

/* Appends it, or drops it and schedules a resync when the queue is full
 * (NULL: the copy failed).  Never waits for the writer. */
static void enqueue(struct reg_persist *p, struct pq_item *it)
{
    pthread_mutex_lock(&p->mu);
    p->queued_seq++;
    if (!it || p->nitems >= QUEUE_MAX_ITEMS || p->nbytes + it->bytes > QUEUE_MAX_BYTES) {
        if (!p->overflow_logged)
            LOG_W("scscf", "event=registrations_change_dropped why=%s items=%zu bytes=%zu "
                           "action=resync", it ? "queue_full" : "memory", p->nitems, p->nbytes);
        p->overflow_logged = true;
        p->resync = true;
        item_free(it);
    } else {
        it->next = NULL;
        *p->tail = it;
        p->tail = &it->next;
        p->nitems++;
        p->nbytes += it->bytes;
    }
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
}

static struct pq_item *item_new(const char *key, size_t data_len)
{
    size_t kl = strlen(key) + 1;
    struct pq_item *it = ims_calloc(1, sizeof(*it) + kl + data_len);
    if (!it)
        return NULL;
    memcpy(it->buf, key, kl);
    it->v.key = it->buf;
    it->bytes = sizeof(*it) + kl + data_len;
    return it;
}

void reg_persist_put(struct reg_persist *p, const struct reg_packed *rec)
{
    struct pq_item *it = item_new(rec->key, rec->len);
    if (it) {
        char *d = it->buf + strlen(rec->key) + 1;
        memcpy(d, rec->data, rec->len);
        it->v = *rec;
        it->v.key = it->buf;
        it->v.data = d;
        it->v.profile = ims_profile_ref(rec->profile);
    }
    enqueue(p, it);
}

void reg_persist_del(struct reg_persist *p, const char *key)
{
    struct pq_item *it = item_new(key, 0);
    if (it)
        it->del = true;
    enqueue(p, it);
}

void reg_persist_resync(struct reg_persist *p)
{
    pthread_mutex_lock(&p->mu);
    p->queued_seq++;
    p->resync = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
}

/* ------------------------------------------------------------ writer */

static void write_put(struct reg_persist *p, const struct reg_packed *v)
{
    if (p->batch_rc != SQLITE_OK)
        return;
    ims_str xml = IMS_STR_NULL;
    if (v->profile) {
        int xrc = reg_profile_xml(v->profile, &p->xml);
        if (xrc)
            LOG_W("scscf", "event=profile_not_saved impu=%s err=%s", v->key, ims_strerror(xrc));
        else
            xml = ims_buf_str(&p->xml);
    }
    struct ims_buf b;
    ims_buf_init(&b, (size_t)BLOB_HDR + v->len + xml.len + 1);
    int rc = blob_build(v, xml, &b);
    if (rc) {
        ims_buf_free(&b);
        p->batch_rc = rc == IMS_ENOMEM ? SQLITE_NOMEM : SQLITE_TOOBIG;
        return;
    }
    sqlite3_reset(p->ins);
    rc = bind_key(p->ins, v->key);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(p->ins, 2, v->expires);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(p->ins, 3, b.p, (int)b.len, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(p->ins);
    sqlite3_clear_bindings(p->ins);
    sqlite3_reset(p->ins);
    ims_buf_free(&b);
    p->batch_rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void emit(struct reg_persist *p, const struct reg_packed *v)
{
    write_put(p, v);
}

/* One transaction: the resync (everything from the table) or the batch. */
static int write_batch(struct reg_persist *p, struct pq_item *batch, bool resync)
{
    p->batch_rc = db_exec(p, "BEGIN IMMEDIATE");
    if (resync && p->batch_rc == SQLITE_OK) {
        p->batch_rc = db_exec(p, "DELETE FROM reg");
        if (p->batch_rc == SQLITE_OK)
            p->snapshot(emit, p, p->snapshot_ctx);
    }
    for (struct pq_item *it = batch; it && p->batch_rc == SQLITE_OK; it = it->next) {
        if (it->del)
            p->batch_rc = del_row(p, it->v.key);
        else
            write_put(p, &it->v);
    }
    int rc = p->batch_rc;
    if (rc == SQLITE_OK)
        rc = db_exec(p, "COMMIT");
    if (rc != SQLITE_OK)
        db_exec(p, "ROLLBACK");
    return rc;
}

static void wait_ms(struct reg_persist *p, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&p->wake, &p->mu, &ts);
}

static void *writer_main(void *arg)
{
    struct reg_persist *p = arg;
    bool failing = false;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->resync && !p->stop)
            pthread_cond_wait(&p->wake, &p->mu);
        if (!p->head && !p->resync)
            break; /* stopping, nothing left */
        struct pq_item *batch = p->head;
        bool resync = p->resync;
        uint64_t seq = p->queued_seq;
        p->head = NULL;
        p->tail = &p->head;
        p->nitems = p->nbytes = 0;
        p->resync = false;
        p->overflow_logged = false;
        pthread_mutex_unlock(&p->mu);
        if (resync) {
            /* the snapshot is newer than anything queued before it */
            free_list(batch);
            batch = NULL;
        }
        int rc = write_batch(p, batch, resync);
        free_list(batch);
        if (rc != SQLITE_OK && !failing)
            LOG_W("scscf", "event=registrations_write_failed path=%s err=\"%s\" action=\"retry "
                           "with a full rewrite\"",
                  p->path, sqlite3_errstr(rc));
        else if (rc == SQLITE_OK && failing)
            LOG_N("scscf", "event=registrations_write_recovered path=%s", p->path);
        failing = rc != SQLITE_OK;
        pthread_mutex_lock(&p->mu);
        p->done_seq = seq;
        p->last_rc = failing ? IMS_EBACKEND : 0;
        pthread_cond_broadcast(&p->done);
        if (failing) {
            p->resync = true;
            if (p->stop)
                break; /* the file stays as it was; the log says so */
            wait_ms(p, RETRY_MS);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int reg_persist_start(struct reg_persist *p, reg_persist_snapshot_fn snapshot, void *ctx)
{
    p->snapshot = snapshot;
    p->snapshot_ctx = ctx;
    if (ims_thread_start(&p->thread, "ims-reg-persist", writer_main, p) != 0)
        return IMS_ENOMEM;
    p->started = true;
    return 0;
}

int reg_persist_flush(struct reg_persist *p)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10; /* a failing disk: the writer retries every RETRY_MS */
    pthread_mutex_lock(&p->mu);
    uint64_t want = p->queued_seq;
    int rc = 0;
    while (p->started && !p->stop && (p->done_seq < want || p->resync) && rc == 0)
        rc = pthread_cond_timedwait(&p->done, &p->mu, &until);
    rc = rc ? IMS_ETIMEDOUT : p->last_rc;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void reg_persist_close(struct reg_persist *p)
{
    if (!p)
        return;
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
        LOG_I("scscf", "event=registrations_writer_stopped path=%s", p->path);
    }
    free_list(p->head);
    persist_free(p);
}

/* ------------------------------------------------------------ S-CSCF */

int cscf_scscf_persist(struct ims_cscf *g, char *err, size_t errsz)
{
    const struct ims_cfg *cfg = g->cfg;
    if (!cfg->scscf_persist) {
        LOG_N("scscf", "event=registrations_not_persisted why=\"[scscf] persist = no\"");
        return 0;
    }
    const char *dir = cfg->state_dir ? cfg->state_dir : "var";
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errsz, "scscf: cannot create state_dir %s: %s", dir, strerror(errno));
        return IMS_EBACKEND;
    }
    char path[DB_PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/scscf-reg.db", dir);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        snprintf(err, errsz, "scscf: state_dir too long");
        return IMS_EINVAL;
    }
    ims_buf_init(&g->lapsed, 64u << 20); /* ~500 000 lapsed; past that logged, not told */
    return ims_loc_persist(g->loc, path, cscf_now_s(), &g->lapsed, err, errsz);
}
