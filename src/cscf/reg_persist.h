/* reg_persist.h - private to src/cscf: the S-CSCF's registrations on disk
 * (reg_persist.c), so that a restart loses none ("no state is lost on
 * restart"; [scscf] persist, default yes).
 *
 * Every committed change of a registration in the location store
 * (registrar.c: a record stored, replaced or removed) is queued, under the
 * shard lock that made it, as a copy of its packed form; a writer thread
 * writes the queue to SQLite (<state_dir>/scscf-reg.db, WAL, one row per
 * registration: key -> blob + latest expiry) in one transaction per batch.
 * The SIP workers never wait for the disk: the queue is bounded, and a
 * change that does not fit (or cannot be copied) marks the file stale, after
 * which the writer rewrites it from the table (a resync).  At start the rows
 * come back into the table (expired contacts and registrations dropped;
 * expiry goes on through the normal sweep), with their parsed profile.
 *
 * Durability (synchronous=NORMAL in WAL mode): a change is on disk once the
 * writer committed its batch (milliseconds after the 200 OK).  A crash or
 * kill -9 of the process loses only what was still queued; a power cut or
 * kernel crash can also lose the batches committed since the last WAL sync
 * (a checkpoint), at most seconds of changes, never the file's consistency.
 *
 * What is not kept (each comes back by itself):
 * - reg-event subscriptions (regevent.c): after a restart a refresh gets
 *   481 and the subscriber SUBSCRIBEs again (RFC 6665 §4.1.2.2; RFC 3680
 *   lets the notifier end a subscription at any time);
 * - the profiles kept for third-party de-registration (thirdparty.c): a
 *   registration restored and then ending sends no third-party REGISTER
 *   with Expires: 0 to the ASes;
 * - a contact that expired while another of the set lives stays in the row
 *   until the next change (dropped again at load);
 * - the fake-Cx test seam (ims_cscf_new_fake_cx) never persists: unit tests
 *   would share ./var between cases.
 *
 * Lifetime rules:
 * 1. struct reg_persist is owned by the location store it is attached to
 *    (ims_loc_free() drains the queue, stops the writer and closes it).
 * 2. reg_persist_put/del copy what they keep (the profile by reference) and
 *    may be called from any thread, with a shard lock held (the queue's
 *    mutex nests inside shard locks, never the reverse). */
#ifndef IMS_CSCF_REG_PERSIST_H
#define IMS_CSCF_REG_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "cscf/profile.h"
#include "cscf/registrar.h"

struct ims_cscf;
struct reg_persist;

/* The packed form's version, also the file's record version: 2 added each
 * contact's RFC 5626 reg-id.  A record of format 1 read back from an older
 * file is widened by registrar.c. */
#define REG_PACKED_FORMAT 2

/* One registration in registrar.c's packed form (the loc_rec data). */
struct reg_packed {
    const char *key;              /* the IMPU the set registered with */
    const char *data;             /* impi, service_route, impus, contacts */
    size_t len;
    uint8_t format;               /* REG_PACKED_FORMAT (0 reads as it), or 1 when loaded */
    uint16_t nimpu, ncontacts;
    int64_t registered_at;
    int64_t expires;              /* the latest contact expiry */
    struct ims_profile *profile;  /* borrowed, or NULL */
};

/* ---- reg_persist.c ---- */

/* Opens (creates) the database at path.  A file SQLite cannot read (not a
 * database, corrupt) is logged at WARN, renamed to <path>.corrupt and
 * replaced by an empty one.  0, IMS_EBACKEND (err says why: the directory is
 * not writable...), IMS_ENOMEM. */
int reg_persist_open(const char *path, struct reg_persist **out, char *err, size_t errsz);

/* Reads every row: rows that do not decode are deleted with a WARN, the
 * others go to fn(rec, ctx) (its profile parsed again, fn takes its own
 * reference; or, for a registration that expired by now, rec->expires <= now,
 * NULL).  fn answering IMS_ENOENT or IMS_EPROTO deletes the row, another
 * error skips it.  *loaded / *dropped count them.  0, or IMS_EBACKEND /
 * IMS_ENOMEM (the file is then left as it was). */
int reg_persist_load(struct reg_persist *p, int64_t now,
                     int (*fn)(const struct reg_packed *rec, void *ctx), void *ctx,
                     size_t *loaded, size_t *dropped);

/* Starts the writer thread.  snapshot(emit, p, ctx) is its resync: it calls
 * emit(p, rec) for every registration in the store (from the writer thread,
 * a shard at a time).  0, IMS_ENOMEM, IMS_EBACKEND. */
typedef void (*reg_persist_emit_fn)(struct reg_persist *p, const struct reg_packed *rec);
typedef void (*reg_persist_snapshot_fn)(reg_persist_emit_fn emit, struct reg_persist *p,
                                        void *ctx);
int reg_persist_start(struct reg_persist *p, reg_persist_snapshot_fn snapshot, void *ctx);

/* Queue a change; never blocks on the disk.  On a full queue or a failed
 * copy the change is dropped and a resync scheduled. */
void reg_persist_put(struct reg_persist *p, const struct reg_packed *rec);
void reg_persist_del(struct reg_persist *p, const char *key);
void reg_persist_resync(struct reg_persist *p);

/* Waits (at most 10 s) until everything queued before the call is
 * committed and no resync is pending (tests; shutdown drains by itself).
 * 0, IMS_ETIMEDOUT (the writer keeps failing), or IMS_EBACKEND when the
 * last batch failed. */
int reg_persist_flush(struct reg_persist *p);

/* Drains the queue, stops the writer, closes the file.  NULL is a no-op. */
void reg_persist_close(struct reg_persist *p);

/* The canonical IMSSubscription document (TS 29.228 Annex E) of a parsed
 * profile: ims_profile_parse() of it gives back an equal profile.  0,
 * IMS_ELIMIT (over IMS_PROFILE_DOC_MAX), IMS_ENOMEM; b is emptied on error. */
int reg_profile_xml(const struct ims_profile *p, struct ims_buf *b);

/* ---- registrar.c ---- */

/* Opens path, loads its registrations into l (at time now) and attaches the
 * writer: from then on every change of l is written behind.  Registrations
 * that lapsed while the process was down are deleted, and each is added to
 * lapsed (unless NULL) as "impu\0impi\0", for the SAR the HSS is owed.  0, or
 * an error with err filled (IMS_EBACKEND, IMS_ENOMEM). */
int ims_loc_persist(struct ims_loc *l, const char *path, int64_t now, struct ims_buf *lapsed,
                    char *err, size_t errsz);
/* The attached writer, or NULL (tests: reg_persist_flush). */
struct reg_persist *ims_loc_persister(struct ims_loc *l);

/* ---- the S-CSCF wiring (reg_persist.c) ---- */

/* [scscf] persist: <state_dir>/scscf-reg.db for g->loc.  0 (also when
 * persist = no), or an error with err filled. */
int cscf_scscf_persist(struct ims_cscf *g, char *err, size_t errsz);

#endif
