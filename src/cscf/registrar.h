/* registrar.h - the S-CSCF's location store and the registrar's binding
 * rules (RFC 3261 §10.3, RFC 3327 Path, TS 24.229 §5.4.1, TS 23.228 §4.3.3
 * implicit registration sets).
 *
 * One registration per implicit registration set, keyed by the public
 * identity (IMPU) it was registered with; every other IMPU of the set gets
 * an alias entry that names that key, so a look-up by any identity of the
 * set (sip:alice@..., tel:+1555...) finds the same bindings.  A
 * registration holds: the private identity (IMPI), the set's IMPUs (the
 * registered one first, barring flags), the contacts (URI, Path, Call-ID,
 * CSeq, absolute expiry, q, +sip.instance), the Service-Route we handed out
 * and the parsed User-Data from the SAA (profile.h: the iFCs), shared by
 * reference.
 *
 * Storage is the sharded table (table.h) shared by every worker: a
 * terminating request on any worker finds a registration made on another.
 * Expiry is by sweep: each worker sweeps its share of the shards once a
 * second (ims_loc_expire), dropping expired contacts and reporting the
 * registrations left without any (the S-CSCF sends SAR
 * TIMEOUT_DEREGISTRATION for them).  Expiry times are wall-clock seconds,
 * so a shared backend (Redis: one hash per key, the update as a Lua
 * script or WATCH/MULTI) could hold the same records across S-CSCFs; the
 * functions below are the whole contract such a backend would implement.
 *
 * Lifetime rules:
 * 1. struct ims_reg is a caller-owned copy (about 40 KiB: allocate it, do
 *    not put it on a worker's stack) with one reference to its profile:
 *    ims_reg_clear() drops it.
 * 2. The store keeps its own copies; nothing returned points into it.
 * 3. Update callbacks run with a shard locked (table.h rule 2). */
#ifndef IMS_CSCF_REGISTRAR_H
#define IMS_CSCF_REGISTRAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/str.h"
#include "cscf/profile.h"

#define IMS_REG_MAX_CONTACTS 16
#define IMS_REG_MAX_IMPUS 32
#define IMS_REG_ID_MAX 256
#define IMS_REG_URI_MAX 512
#define IMS_REG_PATH_MAX 1024
#define IMS_REG_CALLID_MAX 256
#define IMS_REG_INSTANCE_MAX 160
#define IMS_REG_ROUTE_MAX 512

struct ims_reg_contact {
    char uri[IMS_REG_URI_MAX];          /* the Contact URI (no header params) */
    char path[IMS_REG_PATH_MAX];        /* the REGISTER's Path values ("<..;lr>, <..>"), or "" */
    char call_id[IMS_REG_CALLID_MAX];
    uint32_t cseq;
    int64_t expires;                    /* absolute, wall-clock seconds */
    unsigned q;                         /* q-value x 1000 (1000 when absent) */
    char instance[IMS_REG_INSTANCE_MAX]; /* +sip.instance value (RFC 5627), or "" */
    uint32_t reg_id;                    /* RFC 5626 outbound flow: the reg-id the binding
                                         * is keyed by with instance; 0: none */
};

struct ims_reg {
    char impu[IMS_REG_ID_MAX];          /* the key: the IMPU the set registered with */
    char impi[IMS_REG_ID_MAX];
    size_t nimpu;                       /* the implicit set, impu first (>= 1 once stored) */
    char impus[IMS_REG_MAX_IMPUS][IMS_REG_ID_MAX];
    bool barred[IMS_REG_MAX_IMPUS];
    size_t ncontacts;                   /* 0: not registered */
    struct ims_reg_contact contacts[IMS_REG_MAX_CONTACTS];
    char service_route[IMS_REG_ROUTE_MAX]; /* the Service-Route value we returned */
    struct ims_profile *profile;        /* a reference, or NULL */
    int64_t registered_at;              /* wall-clock seconds of the initial registration */
};

/* Drops r's profile reference and empties it (keeps nothing). */
void ims_reg_clear(struct ims_reg *r);
/* The contact a terminating request goes to: the highest q, then the
 * latest expiry, then the most recently registered (contacts are kept in
 * registration order).  NULL when there is none. */
const struct ims_reg_contact *ims_reg_contact_pick(const struct ims_reg *r);
/* The next contact of a sequential search (RFC 3261 §16.6): the best one,
 * in ims_reg_contact_pick's order, for which skip(c, ctx) is false (skip
 * may be NULL).  NULL when none is left. */
typedef bool (*ims_reg_skip_fn)(const struct ims_reg_contact *c, void *ctx);
const struct ims_reg_contact *ims_reg_contact_pick_next(const struct ims_reg *r,
                                                        ims_reg_skip_fn skip, void *ctx);
/* RFC 5626 §5.3: after a flow failed (430), the next flow of the same
 * instance to try: the contacts with that +sip.instance and a reg-id not in
 * skip, ordered as ims_reg_contact_pick orders them.  NULL when none is left. */
const struct ims_reg_contact *ims_reg_flow_pick(const struct ims_reg *r, const char *instance,
                                                const uint32_t *skip, size_t nskip);

/* ---- the binding rules (pure: unit-tested without a store) ---- */

struct ims_reg_policy {
    unsigned default_expires, min_expires, max_expires; /* seconds */
    unsigned max_contacts;                              /* <= IMS_REG_MAX_CONTACTS */
};

/* One Contact of a REGISTER, already parsed. */
struct ims_reg_binding {
    ims_str uri;
    long expires;       /* the contact's expires param, or -1 */
    unsigned q;         /* x 1000; 1000 when absent */
    ims_str instance;   /* +sip.instance value, or empty */
    uint32_t reg_id;    /* reg-id (RFC 5626 §4.2) when outbound applies, else 0 */
};

/* The outcome of a REGISTER's bindings. */
struct ims_reg_req {
    const struct ims_reg_binding *b;
    size_t n;           /* 0 with !star: a query (§10.3 step 8: just list) */
    bool star;          /* "Contact: *" */
    long hdr_expires;   /* Expires header, or -1 */
    ims_str call_id;
    uint32_t cseq;
    ims_str path;       /* the request's Path values, or empty */
    bool outbound;      /* RFC 5626 applies: the 200 carries Require: outbound */
};

/* Applies a REGISTER's bindings to r (RFC 3261 §10.3 steps 6-8; RFC 5626
 * §6 and RFC 5627: a binding with +sip.instance and reg-id names the stored
 * contact with both equal (one flow of that instance), one with only
 * +sip.instance the instance's contact without a reg-id, any other the
 * contact with an equal URI): expired contacts go first; a binding with
 * expires 0 removes the matching contact; others refresh or add one, with expires
 * clamped to max_expires; beyond max_contacts the contact expiring first
 * is replaced.  On success r holds the new bindings.
 * Returns 0, or the SIP status to answer with r unchanged: 400 ("*" with
 * other contacts, or with a non-zero Expires), 423 (an expires below
 * min_expires but not 0: *min_out gets min_expires for Min-Expires), 500
 * (same Call-ID with a CSeq not higher than the stored one, §10.3 step 7). */
int ims_reg_apply(struct ims_reg *r, const struct ims_reg_req *rq, const struct ims_reg_policy *pol,
                  int64_t now, unsigned *min_out);

/* Drops the contacts whose expiry is <= now.  Returns how many are left. */
size_t ims_reg_expire_contacts(struct ims_reg *r, int64_t now);

/* ---- the store ---- */

struct ims_loc;

/* max_entries counts registrations and aliases.  0, IMS_EINVAL, IMS_ENOMEM. */
int ims_loc_new(size_t max_entries, unsigned nshards, struct ims_loc **out);
void ims_loc_free(struct ims_loc *l); /* NULL is a no-op */
size_t ims_loc_count(const struct ims_loc *l);

/* Looks impu up (a key or an alias) and copies the registration into *out
 * without its expired contacts.  0, IMS_ENOENT (unknown, or no live contact
 * left), IMS_ENOMEM. */
int ims_loc_get(struct ims_loc *l, ims_str impu, int64_t now, struct ims_reg *out);
/* The profile of the registration impu names (a key or an alias): a new
 * reference (ims_profile_unref it), or NULL (none, or no such registration).
 * Copies nothing else. */
struct ims_profile *ims_loc_profile(struct ims_loc *l, ims_str impu);

/* Read-modify-write of the registration impu belongs to (a key, an alias,
 * or a new registration keyed by impu).  fn(r, ctx) gets the current state
 * (expired contacts dropped; r->ncontacts == 0 when there is none) and
 * edits it; r->impu is already set.  Returning 0 stores r (its aliases made
 * for r->impus), or, when r has no contact left, removes the registration
 * and its aliases; a non-zero return changes nothing and is returned.  fn
 * runs with a shard lock held.  scratch is caller storage for the copy
 * (fn's r); it is cleared before return.
 * 0, fn's error, IMS_ELIMIT (store full), IMS_ENOMEM, IMS_EINVAL (impu too
 * long). */
typedef int (*ims_loc_update_fn)(struct ims_reg *r, void *ctx);
int ims_loc_update(struct ims_loc *l, ims_str impu, int64_t now, struct ims_reg *scratch,
                   ims_loc_update_fn fn, void *ctx);

/* Removes the registration impu belongs to, and its aliases.  0, IMS_ENOENT. */
int ims_loc_remove(struct ims_loc *l, ims_str impu);

/* Sweeps shards first, first + step, ...: drops expired contacts, removes
 * registrations left without any (and their aliases), and calls
 * gone(impu, impi, ctx) for each removed one after the locks are released
 * (at most 256 per call; the rest go on the next sweep).  Returns the
 * number removed. */
size_t ims_loc_expire(struct ims_loc *l, unsigned first, unsigned step, int64_t now,
                      void (*gone)(const char *impu, const char *impi, void *ctx), void *ctx);

#endif
