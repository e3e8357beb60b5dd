/* store_ext.h - store calls added for the admin side (imscloudctl, the
 * admin socket, the HSS's RTR/PPR routing).  Same rules as store.h: one
 * thread at a time per struct ims_store, identities printable ASCII
 * without spaces, IMS_EINVAL before any SQL for bad input, errors
 * explained by ims_store_errmsg().
 *
 *  - S-CSCF peers: each S-CSCF's Diameter identity under its Server-Name
 *    (migration 002_scscf_peer), so the HSS knows where to send RTR/PPR
 *    after a restart.
 *  - The key repository a store encrypts with, and its replacement (the
 *    running HSS's keys.reload).
 *  - Sealing a plaintext secret exactly as the store would (same
 *    associated data), so imscloudctl can build ims_store_import() text
 *    that creates IMPIs with their secrets in one transaction. */
#ifndef IMS_STORE_STORE_EXT_H
#define IMS_STORE_STORE_EXT_H

#include <stddef.h>

#include "base/buf.h"
#include "base/str.h"
#include "store/store.h"

/* ------------------------------------------------------ S-CSCF peers */

#define IMS_STORE_DIAMID_MAX 256 /* Diameter identity / realm, with the NUL */

struct ims_scscf_peer {
    char name[IMS_STORE_ID_MAX];      /* Server-Name (SIP URI) */
    char host[IMS_STORE_DIAMID_MAX];  /* Origin-Host of its last MAR/SAR */
    char realm[IMS_STORE_DIAMID_MAX]; /* Origin-Realm */
};

/* Creates or replaces the peer of name.  0, IMS_EINVAL (bad name, empty
 * or too long host/realm), or the common store errors. */
int ims_store_scscf_peer_put(struct ims_store *st, ims_str name, ims_str host, ims_str realm);
/* 0 with *out filled, IMS_ENOENT (never learned), IMS_EINVAL. */
int ims_store_scscf_peer_get(struct ims_store *st, ims_str name, struct ims_scscf_peer *out);
/* Calls cb for each peer, by name; a non-zero return stops and is
 * returned.  cb must not call the store. */
typedef int (*ims_store_scscf_peer_cb)(void *ctx, const struct ims_scscf_peer *p);
int ims_store_scscf_peer_list(struct ims_store *st, ims_store_scscf_peer_cb cb, void *ctx);

/* ------------------------------------------------------- key repository */

/* The repository st encrypts and decrypts with (borrowed). */
struct ims_keyrepo *ims_store_keyrepo(const struct ims_store *st);
/* Makes st use repo from now on (borrowed: it must outlive st, and so
 * must the previous one while any call that started before may still use
 * it).  Only on st's own thread (see store.h: one thread at a time). */
void ims_store_set_keyrepo(struct ims_store *st, struct ims_keyrepo *repo);

/* ------------------------------------------------------------- secrets */

/* The secret columns of an IMPI (same order as the store's). */
enum ims_store_secret {
    IMS_SECRET_K = 0,
    IMS_SECRET_OPC,
    IMS_SECRET_HA1_MD5,
    IMS_SECRET_HA1_SHA256,
    IMS_SECRET_HA1_SHA512_256,
    IMS_SECRET_PASSWORD,
    IMS_SECRET__N
};

/* Encrypts pt[0..n) as the store would store secret `which` of impi
 * (associated data "impi:<identity>:<field>", under the primary key) and
 * appends the ciphertext text to out: what ims_store_import() expects in
 * its k=, opc=, ha1_*= and password= fields.  Nothing is written to the
 * database.  0, IMS_EINVAL, IMS_ENOMEM, IMS_EBACKEND, IMS_ELIMIT (out). */
int ims_store_secret_seal(struct ims_store *st, ims_str impi, enum ims_store_secret which,
                          const void *pt, size_t n, struct ims_buf *out);

#endif
