/* store.h - the HSS subscriber store (TS 23.228 / TS 29.228 data model)
 * over SQLite (embedded default) or PostgreSQL.
 *
 * What it holds: subscriptions (assigned S-CSCF, charging addresses,
 * required S-CSCF capabilities, optional Keystone user/project), private
 * identities (IMPI: allowed auth schemes, K/OPc/AMF/SQN for AKA, HA1s for
 * Digest), public identities (IMPU: sip:/tel:, implicit registration set,
 * barring, registration state, service profile), service profiles (iFCs as
 * TS 29.228 XML text), Sh repository data and S-CSCF capabilities.  See
 * docs/internals/hss-store.md.
 *
 * Secrets: K, OPc, HA1s and the (optional) password are encrypted with the
 * key repository given at open (crypto/keyrepo.h) before they reach the
 * database, bound to "impi:<identity>:<field>", and decrypted only into
 * struct ims_auth_data, which the caller wipes with ims_auth_data_clear().
 * Nothing here logs a secret.
 *
 * Shape: synchronous calls on one connection.  A struct ims_store is used
 * by one thread at a time (it owns one database connection and its
 * prepared statements).  Event-loop code does not call it directly: it
 * submits work to store/exec.h, which runs these calls on store threads
 * (one ims_store each) and completes on the loop.  Every operation is a
 * single transaction (or a single statement), so concurrent stores on the
 * same database see each other's effects atomically.
 *
 * Identities are compared byte for byte: callers normalise SIP URIs (RFC
 * 3261 §19.1.4) before they get here.  Identities and names are 1 to
 * IMS_STORE_ID_MAX-1 (names IMS_STORE_NAME_MAX-1) bytes of printable
 * ASCII without spaces, identities (realms, server names) also without
 * '<', '>', '"' or '\' (they go into SIP headers as they are); anything
 * else is IMS_EINVAL before any SQL runs.
 *
 * Errors common to every call: IMS_EINVAL (bad argument, or the database
 * refused the change: duplicate, still referenced - see
 * ims_store_errmsg()), IMS_ENOMEM, IMS_EBACKEND (database failure, or a
 * secret that does not decrypt with the repository's keys).  IMS_ENOENT
 * means the named subscription, identity or profile does not exist. */
#ifndef IMS_STORE_STORE_H
#define IMS_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/str.h"
#include "crypto/digest.h"

struct ims_keyrepo;
struct ims_store;

#define IMS_STORE_ID_MAX 256    /* identities, S-CSCF names, URIs, with the NUL */
#define IMS_STORE_NAME_MAX 128  /* subscription/profile names, Keystone ids */
#define IMS_STORE_MAX_CAPS 16   /* per list (mandatory, optional, per S-CSCF) */
#define IMS_STORE_XML_MAX (256 * 1024)
#define IMS_STORE_SH_MAX (64 * 1024)
#define IMS_STORE_PASSWORD_MAX 256

/* Authentication schemes an IMPI may use (bit set). */
enum ims_auth_scheme {
    IMS_AUTH_DIGEST_MD5 = 1u << 0,
    IMS_AUTH_DIGEST_SHA256 = 1u << 1,
    IMS_AUTH_DIGEST_SHA512_256 = 1u << 2,
    IMS_AUTH_AKAV1_MD5 = 1u << 3,
    IMS_AUTH_AKAV2_MD5 = 1u << 4,
};
#define IMS_AUTH_ALL 0x1fu

/* TS 29.228 §6.1.2: the HSS's registration state of a public identity. */
enum ims_reg_state {
    IMS_REG_NOT_REGISTERED = 0,
    IMS_REG_REGISTERED = 1,
    IMS_REG_UNREGISTERED = 2, /* not registered, but an S-CSCF keeps it (services) */
};

/* TS 29.228 §6.3.44 Identity-Type values (2 and 3 are stored, not matched yet). */
enum ims_identity_type {
    IMS_ID_PUBLIC = 0,
    IMS_ID_DISTINCT_PSI = 1,
    IMS_ID_WILDCARD_PSI = 2,
    IMS_ID_WILDCARD_IMPU = 3,
};

/* ---------------------------------------------------------------- open */

/* Opens the store at url and brings its schema up to date (numbered
 * migrations, each in its own transaction, recorded in schema_migrations;
 * safe when several processes start at once).
 *   "sqlite:<path>"             file, created 0600 if missing; WAL mode,
 *                               foreign keys, every commit on disk before
 *                               the call returns (as synchronous=FULL)
 *   "sqlite::memory:"           private in-memory database (tests)
 *   "postgresql://..." or "postgres://..."   a libpq URI
 *   "pg:<conninfo>"             a libpq keyword/value string
 * repo is borrowed: it must outlive the store.
 * 0, IMS_EINVAL (unknown scheme), IMS_EBACKEND (cannot connect or migrate:
 * the reason is logged, without the DSN's password), IMS_ENOMEM. */
int ims_store_open(const char *url, struct ims_keyrepo *repo, struct ims_store **out);
void ims_store_close(struct ims_store *st); /* NULL is a no-op */
/* "sqlite" or "postgresql". */
const char *ims_store_backend(const struct ims_store *st);
/* Whether the store can hold v as an identity or a server name (1 to
 * IMS_STORE_ID_MAX - 1 bytes of printable ASCII, no space, none of '<',
 * '>', '"', '\'): what a handler checks a peer's value against before it
 * writes it, so that a bad one is a protocol error and not a store failure. */
bool ims_store_valid_id(ims_str v);
/* The highest migration applied. */
int ims_store_schema_version(struct ims_store *st, int *version);
/* A line describing the last error of this store ("" after success), for
 * admin tools.  Valid until the next call on st.  Holds no secret. */
const char *ims_store_errmsg(const struct ims_store *st);

/* ----------------------------------------------------- records (values) */

struct ims_sub_rec {
    char name[IMS_STORE_NAME_MAX];
    char scscf_name[IMS_STORE_ID_MAX]; /* assigned S-CSCF; output only ("" = none) */
    char ccf[2][IMS_STORE_ID_MAX];     /* primary, secondary CCF; "" = none */
    char ecf[2][IMS_STORE_ID_MAX];     /* primary, secondary ECF */
    char keystone_user_id[IMS_STORE_NAME_MAX];
    char keystone_project_id[IMS_STORE_NAME_MAX];
    /* local roles for the S-CSCF policy, comma list ("member,caller");
     * "" = none kept (the S-CSCF uses [scscf] local_roles) */
    char roles[IMS_STORE_NAME_MAX];
    uint32_t caps_mandatory[IMS_STORE_MAX_CAPS];
    size_t n_mandatory;
    uint32_t caps_optional[IMS_STORE_MAX_CAPS];
    size_t n_optional;
};

/* An IMPI without its secrets (which fields are set, not their values). */
struct ims_impi_rec {
    char identity[IMS_STORE_ID_MAX];
    char subscription[IMS_STORE_NAME_MAX];
    char realm[IMS_STORE_ID_MAX];
    unsigned schemes;                /* enum ims_auth_scheme bits */
    uint8_t amf[2];
    uint64_t sqn;                    /* SQN_HE (not secret) */
    bool has_aka;                    /* K and OPc are set */
    bool has_ha1[IMS_DIGEST_NALG];   /* by enum ims_digest_alg */
    bool has_password;
};

struct ims_impu_rec {
    char identity[IMS_STORE_ID_MAX];
    char subscription[IMS_STORE_NAME_MAX];
    char profile[IMS_STORE_NAME_MAX]; /* "" = none */
    unsigned irs;                     /* implicit registration set (per subscription), >= 1 */
    enum ims_identity_type type;
    bool barred;
    enum ims_reg_state reg_state;
    char scscf_name[IMS_STORE_ID_MAX]; /* the subscription's; set by impu_get only */
};

/* Plaintext authentication data of one IMPI.  Wipe with
 * ims_auth_data_clear() as soon as it is used. */
struct ims_auth_data {
    char impi[IMS_STORE_ID_MAX];
    char realm[IMS_STORE_ID_MAX];
    unsigned schemes;
    bool has_aka;
    uint8_t k[16];
    uint8_t opc[16];
    uint8_t amf[2];
    uint64_t sqn;
    bool has_ha1[IMS_DIGEST_NALG];
    char ha1[IMS_DIGEST_NALG][IMS_DIGEST_HEX_MAX + 1]; /* lower-case hex */
};
void ims_auth_data_clear(struct ims_auth_data *a);

/* --------------------------------------------------------- Cx / Sh path */

/* The record of a public identity, with its subscription's S-CSCF.
 * 0, IMS_ENOENT. */
int ims_store_impu_get(struct ims_store *st, ims_str impu, struct ims_impu_rec *out);

enum ims_assoc {
    IMS_ASSOC_OK = 0,     /* both known, and the IMPI may use the IMPU */
    IMS_ASSOC_NO_IMPI,    /* -> DIAMETER_ERROR_USER_UNKNOWN */
    IMS_ASSOC_NO_IMPU,    /* -> DIAMETER_ERROR_USER_UNKNOWN */
    IMS_ASSOC_MISMATCH,   /* -> DIAMETER_ERROR_IDENTITIES_DONT_MATCH */
};
/* TS 29.228 §6.1.1/6.1.3 checks.  One query.  0 (result in *out). */
int ims_store_assoc_check(struct ims_store *st, ims_str impi, ims_str impu, enum ims_assoc *out);

/* ---- memos: what a caller built from provisioned data, kept ----
 *
 * A value the caller computed from provisioned rows only (identities, their
 * links, subscriptions, service profiles: never reg_state, an S-CSCF name or
 * an SQN), kept in the identity cache (store_cache.h) under key (kind, a, b).
 * It is found only while no provisioning change was made since it was
 * computed, by any process (the change counter, migrations 005 and 007).
 * kind is the caller's letter; 'A', 'I' and 'R' are the store's own.  Without an
 * identity cache (0 entries, a lone store) nothing is kept or found. */
#define IMS_STORE_MEMO_MAX 8192 /* bytes; a longer value is not kept */
struct ims_store_memo {
    uint64_t gen, epoch;
    bool usable; /* a put with it may keep the value */
};
/* true: the value is appended to *out.  false: compute it (after this call:
 * the generation is read before the rows) and hand it to ims_store_memo_put
 * with *m. */
bool ims_store_memo_get(struct ims_store *st, char kind, ims_str a, ims_str b,
                        struct ims_buf *out, struct ims_store_memo *m);
void ims_store_memo_put(struct ims_store *st, const struct ims_store_memo *m, char kind, ims_str a,
                        ims_str b, const void *val, size_t len);

/* Decrypts the IMPI's secrets into *out.  On error *out is wiped.
 * 0, IMS_ENOENT, IMS_EBACKEND (a secret fails to decrypt: tampered row,
 * or its key was removed from the repository). */
int ims_store_auth_get(struct ims_store *st, ims_str impi, struct ims_auth_data *out);
/* The same, decrypting only the secrets in fields (each one is an AES-GCM
 * decryption): IMS_AUTH_F_AKA (K and OPc), IMS_AUTH_F_HA1(alg).  A secret
 * not asked for reads as absent (has_aka / has_ha1[alg] false).  The
 * non-secret fields (realm, schemes, AMF, SQN) are always set. */
#define IMS_AUTH_F_AKA 1u
#define IMS_AUTH_F_HA1(alg) (2u << (alg))
#define IMS_AUTH_F_ALL 0xfu
/* The caller does not need SQN (out->sqn reads 0): the row may then come
 * from the executor's identity cache (store/store_cache.h) instead of the
 * database. */
#define IMS_AUTH_F_NO_SQN 0x100u
int ims_store_auth_get_fields(struct ims_store *st, ims_str impi, unsigned fields,
                              struct ims_auth_data *out);

/* An IMPI's AKA data with K and OPc still sealed (the stored ciphertexts),
 * so that the thread holding the store connection spends no time on AES:
 * ims_store_aka_get_sealed() reads it (from the identity cache when it can,
 * as IMS_AUTH_F_NO_SQN does), ims_store_aka_unseal() decrypts it later on
 * any thread.  repo is the store's key repository at the read, borrowed: the
 * caller keeps it alive until the unseal (hss.c retires a replaced one only
 * at stop). */
#define IMS_STORE_SEALED_MAX 160 /* "v1:<id>:" + base64 of a 16-byte secret's ciphertext */
struct ims_keyrepo;
struct ims_aka_sealed {
    char impi[IMS_STORE_ID_MAX];
    unsigned schemes;
    uint8_t amf[2];
    bool has_aka; /* both K and OPc stored */
    const struct ims_keyrepo *repo;
    char k[IMS_STORE_SEALED_MAX];
    char opc[IMS_STORE_SEALED_MAX];
};
/* 0, IMS_ENOENT (no such IMPI), IMS_EBACKEND (a ciphertext longer than
 * IMS_STORE_SEALED_MAX: not one this store wrote), or a store error. */
int ims_store_aka_get_sealed(struct ims_store *st, ims_str impi, struct ims_aka_sealed *out);
/* K and OPc of in (has_aka).  Thread-safe.  On error both are wiped and the
 * failure is logged (secret_undecryptable, as a read that decrypts).
 * 0, IMS_EINVAL (!has_aka), IMS_EBACKEND. */
int ims_store_aka_unseal(const struct ims_aka_sealed *in, uint8_t k[16], uint8_t opc[16]);

/* Atomic read-modify-write of SQN_HE: in one write transaction with the
 * row locked, fn(cur, &next, ctx) computes the new value from the stored
 * one; it is stored and committed before this returns, so a value handed
 * out is never handed out again, across restarts and between processes.
 * fn must not call the store.  A non-zero return of fn aborts (nothing
 * is written) and is returned.  *sqn_out (may be NULL) gets the stored
 * value.  0, IMS_ENOENT, fn's error, or the common errors. */
typedef int (*ims_store_sqn_fn)(uint64_t cur, uint64_t *next, void *ctx);
int ims_store_sqn_update(struct ims_store *st, ims_str impi, ims_store_sqn_fn fn, void *ctx,
                         uint64_t *sqn_out);
/* As ims_store_sqn_update, for an fn that moves SEQ ahead by a few steps
 * (new vectors): on a connection of a store executor over SQLite, the
 * value may come from a block this process reserved in the row earlier,
 * without a write (store/store_sqnblk.h); the write it makes otherwise
 * reserves such a block.  The stored value is then the block's end, at
 * or past the one returned.  The same guarantees: never handed out again,
 * across restarts and between processes. */
int ims_store_sqn_take(struct ims_store *st, ims_str impi, ims_store_sqn_fn fn, void *ctx,
                       uint64_t *sqn_out);

enum ims_scscf_op { IMS_SCSCF_KEEP = 0, IMS_SCSCF_SET, IMS_SCSCF_CLEAR };
/* Sets the registration state of every IMPU in impu's implicit
 * registration set (TS 29.228 §6.1.2: the set changes state together) and,
 * per op, sets or clears the subscription's S-CSCF name (scscf is used
 * with IMS_SCSCF_SET only).  One transaction; rows that hold those values
 * already are not written (a re-registration changes nothing).  *changed
 * (may be NULL) gets the number of IMPUs whose state changed.  0,
 * IMS_ENOENT. */
int ims_store_reg_set(struct ims_store *st, ims_str impu, enum ims_reg_state state,
                      enum ims_scscf_op op, ims_str scscf, size_t *changed);
/* The Server-Name a MAR stores (TS 29.228 §6.1.8: the S-CSCF of a
 * registration in progress) for impu's subscription, the registration
 * state left as it is (rewriting it unchanged cost a page write), committed
 * without waiting for the disk: a crash of the process keeps it, a power
 * cut may lose it until the next write that is flushed (anything else).
 * Losing it is harmless: the SAR that completes the registration stores it
 * again.  0, IMS_ENOENT (no such IMPU), IMS_EINVAL or the common errors. */
int ims_store_scscf_name_set_lazy(struct ims_store *st, ims_str impu, ims_str scscf);

/* The service profile of impu: its name (into name, IMS_STORE_NAME_MAX
 * bytes; "" when the IMPU has none) and XML appended to xml (nothing
 * appended when none).  0, IMS_ENOENT (no such IMPU), IMS_ELIMIT (xml's
 * cap). */
int ims_store_profile_of_impu(struct ims_store *st, ims_str impu, char *name,
                              struct ims_buf *xml);

/* IMPU lists, ordered by implicit set then identity: at most cap records
 * are written to arr and *n gets how many there are in total; more than
 * cap returns IMS_ELIMIT (arr holds the first cap).  0 (an IMPI with no
 * IMPU gives *n = 0), IMS_ENOENT (no such IMPI / IMPU), IMS_ELIMIT. */
int ims_store_impus_of_impi(struct ims_store *st, ims_str impi, struct ims_impu_rec *arr,
                            size_t cap, size_t *n);
int ims_store_impus_of_irs(struct ims_store *st, ims_str impu, struct ims_impu_rec *arr,
                           size_t cap, size_t *n);
/* *any: is an IMPU of impu's subscription registered or unregistered
 * (kept by an S-CSCF)?  No such IMPU: false. */
int ims_store_sub_in_use(struct ims_store *st, ims_str impu, bool *any);
/* The IMPIs of subscription sub, by identity; same cap rules (a
 * subscription without IMPIs, or none of that name: 0 with *n = 0). */
int ims_store_impis_of_sub(struct ims_store *st, ims_str sub, char (*arr)[IMS_STORE_ID_MAX],
                           size_t cap, size_t *n);
/* The IMPIs that may use impu (a shared IMPU has several), identities of
 * IMS_STORE_ID_MAX bytes each; same cap rules. */
int ims_store_impis_of_impu(struct ims_store *st, ims_str impu, char (*arr)[IMS_STORE_ID_MAX],
                            size_t cap, size_t *n);

/* The subscription that owns impu (S-CSCF name, charging addresses,
 * capabilities).  0, IMS_ENOENT. */
int ims_store_sub_of_impu(struct ims_store *st, ims_str impu, struct ims_sub_rec *out);
/* The same without the capabilities (out's lists left empty): one query
 * less, for callers that do not look at them (the SAR's User-Data). */
int ims_store_sub_of_impu_nocaps(struct ims_store *st, ims_str impu, struct ims_sub_rec *out);

/* Sh repository data (TS 29.328 §6.1.1, §6.1.2, §7.6).  get: appends the
 * data to out and sets *seq; IMS_ENOENT when the IMPU has none for si
 * (or the IMPU is unknown: check with impu_get first when it matters).
 * put: stores data under seq when seq is the stored sequence number + 1
 * (65535 is followed by 1) or, for new data, when seq is 0; an empty data
 * deletes the entry (seq must still follow).  A wrong seq (or a concurrent
 * writer that won) sets *res to IMS_SH_OUT_OF_SYNC and changes nothing
 * (DIAMETER_ERROR_TRANSPARENT_DATA_OUT_OF_SYNC).  0, IMS_ENOENT (IMPU). */
enum ims_sh_result { IMS_SH_OK = 0, IMS_SH_OUT_OF_SYNC };
int ims_store_sh_get(struct ims_store *st, ims_str impu, ims_str si, struct ims_buf *out,
                     unsigned *seq);
int ims_store_sh_put(struct ims_store *st, ims_str impu, ims_str si, unsigned seq, ims_str data,
                     enum ims_sh_result *res);

/* S-CSCFs and their capabilities.  put replaces the capability list. */
int ims_store_scscf_put(struct ims_store *st, ims_str name, const uint32_t *caps, size_t n);
int ims_store_scscf_del(struct ims_store *st, ims_str name); /* 0, IMS_ENOENT */
typedef int (*ims_store_scscf_cb)(void *ctx, const char *name, const uint32_t *caps, size_t n);
/* Calls cb for each S-CSCF (by name); a non-zero return stops and is returned. */
int ims_store_scscf_list(struct ims_store *st, ims_store_scscf_cb cb, void *ctx);

/* ------------------------------------------------- admin (imscloudctl) */

/* Subscriptions.  add: name must be new (else IMS_EINVAL); scscf_name is
 * ignored.  update: replaces charging, Keystone ids and capabilities of
 * the named subscription (IMS_ENOENT if none).  del removes its IMPIs,
 * IMPUs and Sh data too. */
int ims_store_sub_add(struct ims_store *st, const struct ims_sub_rec *sub);
int ims_store_sub_get(struct ims_store *st, ims_str name, struct ims_sub_rec *out);
int ims_store_sub_update(struct ims_store *st, const struct ims_sub_rec *sub);
int ims_store_sub_del(struct ims_store *st, ims_str name);
typedef int (*ims_store_sub_cb)(void *ctx, const struct ims_sub_rec *rec);
int ims_store_sub_list(struct ims_store *st, ims_store_sub_cb cb, void *ctx);

/* IMPIs.  add: in subscription sub (IMS_ENOENT if none), with no secrets
 * yet, SQN 0, AMF 0x8000.  The realm is the Digest realm the HA1s are
 * computed for; it is fixed at creation. */
int ims_store_impi_add(struct ims_store *st, ims_str sub, ims_str impi, ims_str realm,
                       unsigned schemes);
int ims_store_impi_get(struct ims_store *st, ims_str impi, struct ims_impi_rec *out);
int ims_store_impi_set_schemes(struct ims_store *st, ims_str impi, unsigned schemes);
/* K, OPc (derive OPc from OP with ims_milenage_opc) and AMF, encrypted. */
int ims_store_impi_set_aka(struct ims_store *st, ims_str impi, const uint8_t k[16],
                           const uint8_t opc[16], const uint8_t amf[2]);
/* Computes HA1 = H(impi ":" realm ":" password) for MD5, SHA-256 and
 * SHA-512/256 and stores them encrypted; the password itself is stored
 * (encrypted) only when keep_password.  The caller wipes password. */
int ims_store_impi_set_password(struct ims_store *st, ims_str impi, ims_str password,
                                bool keep_password);
int ims_store_impi_del(struct ims_store *st, ims_str impi);
typedef int (*ims_store_impi_cb)(void *ctx, const struct ims_impi_rec *rec);
/* sub.len == 0 lists every IMPI. */
int ims_store_impi_list(struct ims_store *st, ims_str sub, ims_store_impi_cb cb, void *ctx);

/* IMPUs.  add: rec->identity in subscription rec->subscription, with
 * rec->irs (0 = a new implicit set), rec->profile ("" = none; else it must
 * exist), rec->barred and rec->type; registration state NOT_REGISTERED.
 * update: irs, profile, barred and type of rec->identity. */
int ims_store_impu_add(struct ims_store *st, const struct ims_impu_rec *rec);
int ims_store_impu_update(struct ims_store *st, const struct ims_impu_rec *rec);
int ims_store_impu_bar(struct ims_store *st, ims_str impu, bool barred);
int ims_store_impu_set_profile(struct ims_store *st, ims_str impu, ims_str profile);
int ims_store_impu_del(struct ims_store *st, ims_str impu);
typedef int (*ims_store_impu_cb)(void *ctx, const struct ims_impu_rec *rec);
/* sub.len == 0 lists every IMPU. */
int ims_store_impu_list(struct ims_store *st, ims_str sub, ims_store_impu_cb cb, void *ctx);

/* IMPI <-> IMPU association; both must be in the same subscription
 * (IMS_EINVAL otherwise).  link of an existing pair and unlink of a
 * missing one succeed. */
int ims_store_link(struct ims_store *st, ims_str impi, ims_str impu);
int ims_store_unlink(struct ims_store *st, ims_str impi, ims_str impu);

/* Service profiles: put creates or replaces; del refuses (IMS_EINVAL)
 * while an IMPU uses the profile. */
int ims_store_profile_put(struct ims_store *st, ims_str name, ims_str xml);
int ims_store_profile_get(struct ims_store *st, ims_str name, struct ims_buf *xml);
int ims_store_profile_del(struct ims_store *st, ims_str name);
typedef int (*ims_store_profile_cb)(void *ctx, const char *name, uint64_t impus);
int ims_store_profile_list(struct ims_store *st, ims_store_profile_cb cb, void *ctx);

/* Export: appends every record as text (format in docs/internals/hss-store.md;
 * secrets stay ciphertexts, so the target needs the same key files).
 * Import: applies such a text in one transaction (all or nothing); records
 * must not exist yet.  *count (may be NULL) gets the records imported.
 * Import: 0, IMS_EPROTO (malformed line: ims_store_errmsg() names it),
 * IMS_EINVAL (a duplicate). */
int ims_store_export(struct ims_store *st, struct ims_buf *out);
int ims_store_import(struct ims_store *st, ims_str text, size_t *count);

/* Key rotation support: how many secrets are encrypted under key id, and
 * re-encrypting every secret not under the repository's primary key
 * (batches of 100 IMPIs per transaction; *changed gets the number of
 * secrets rewritten).  The rotation procedure: keyrepo rotate, reopen,
 * reencrypt, check usage of the old key is 0, keyrepo remove. */
int ims_store_key_usage(struct ims_store *st, unsigned keyid, uint64_t *count);
int ims_store_reencrypt(struct ims_store *st, uint64_t *changed);

#endif
