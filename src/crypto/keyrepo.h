/* keyrepo.h - encryption of secrets at rest (AES-256-GCM) with a key
 * repository on disk, after Keystone's fernet and credential key
 * repositories.
 *
 * Repository: a directory (not writable by group or others) of key files
 * named by number, "0", "1", ...  Each file holds 32 random bytes in
 * base64 (one line), is owned by the user running imscloud and has no
 * group/other permission bits (0600 or 0400); anything looser is refused
 * with a message naming the file.  The highest number is the primary key:
 * new ciphertexts use it, every key present can decrypt.  Other names in
 * the directory (dot files, README) are ignored.
 *
 * Ciphertext (text, fits a TEXT column):
 *
 *     v1:<keyid>:<base64(nonce[12] || ciphertext || tag[16])>
 *
 * The GCM associated data is "v1:<keyid>:" followed by the caller's ad,
 * a string naming the row and field the secret belongs to (for example
 * "impi:alice@ims.test:k"), so a ciphertext copied to another row or
 * field, or edited in any byte, fails to decrypt.  Nonces are random
 * (96 bits); rotate the primary long before 2^32 encryptions per key.
 *
 * Lifetime and threads:
 * 1. A repository object is owned by whoever opened it and freed with
 *    ims_keyrepo_free(), which wipes the keys (ims_wipe).
 * 2. encrypt/decrypt/reencrypt only read it and may run concurrently from
 *    several threads; rotate and remove modify it and the directory, and
 *    must not run concurrently with anything else on the same object
 *    (they are admin operations: imscloudctl).
 * 3. Other processes see a rotation when they reopen the repository.
 *
 * Errors fill the optional caller buffer err (see IMS_KEYREPO_ERRLEN) with
 * one line for an operator, and are logged without any key material. */
#ifndef IMS_CRYPTO_KEYREPO_H
#define IMS_CRYPTO_KEYREPO_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/str.h"

#define IMS_KEYREPO_KEY_LEN 32
#define IMS_KEYREPO_MAX_KEYS 64
#define IMS_KEYREPO_MAX_ID 999999u
#define IMS_KEYREPO_PT_MAX 65536 /* largest secret encrypt() takes */
#define IMS_KEYREPO_ERRLEN 256

struct ims_keyrepo;

/* Creates dir (mode 0700) if missing and writes key "0" into it.
 * 0, IMS_EINVAL (dir already holds keys, or has unsafe permissions),
 * IMS_EIO, IMS_EBACKEND (RNG). */
int ims_keyrepo_create(const char *dir, char *err, size_t errlen);

/* Loads every key file of dir.
 * 0, IMS_ENOENT (no directory or no key in it), IMS_EINVAL (a key file or
 * the directory has unsafe permissions or owner, or a key file is not 32
 * bytes of base64), IMS_ELIMIT (more than IMS_KEYREPO_MAX_KEYS keys),
 * IMS_EIO, IMS_ENOMEM. */
int ims_keyrepo_open(const char *dir, struct ims_keyrepo **out, char *err, size_t errlen);
void ims_keyrepo_free(struct ims_keyrepo *r); /* NULL is a no-op */

/* The primary key's id, and the ids of all keys in ascending order
 * (returns how many there are; at most cap are written). */
unsigned ims_keyrepo_primary(const struct ims_keyrepo *r);
size_t ims_keyrepo_ids(const struct ims_keyrepo *r, unsigned *ids, size_t cap);
bool ims_keyrepo_has(const struct ims_keyrepo *r, unsigned id);

/* Writes a new key file max+1 (created 0600 under a temporary name, synced,
 * then renamed) and makes it the primary.
 * 0, IMS_ELIMIT (too many keys or ids), IMS_EIO, IMS_EBACKEND (RNG). */
int ims_keyrepo_rotate(struct ims_keyrepo *r, unsigned *new_id, char *err, size_t errlen);

/* Deletes key id from the object and the directory.  The primary cannot be
 * removed (rotate first).  This does NOT know whether data still uses the
 * key: the caller checks (ims_store_key_usage()) and re-encrypts first.
 * 0, IMS_ENOENT (no such key), IMS_EINVAL (the primary), IMS_EIO. */
int ims_keyrepo_remove(struct ims_keyrepo *r, unsigned id, char *err, size_t errlen);

/* Encrypts pt[0..ptlen) under the primary key and appends the ciphertext
 * text to out (nothing else is appended; on error out is left as
 * ims_buf leaves it on failure: empty).
 * 0, IMS_ELIMIT (ptlen > IMS_KEYREPO_PT_MAX, or out's cap), IMS_ENOMEM,
 * IMS_EBACKEND (OpenSSL or RNG). */
int ims_keyrepo_encrypt(const struct ims_keyrepo *r, ims_str ad, const void *pt, size_t ptlen,
                        struct ims_buf *out);

/* Decrypts ct, which must have been encrypted with the same ad, into
 * pt[0..ptcap); *ptlen gets the length.  On any error pt is wiped.
 * 0, IMS_EPROTO (malformed, tampered with, or ad differs), IMS_ENOENT (its
 * key id is not in the repository), IMS_ELIMIT (ptcap too small),
 * IMS_ENOMEM, IMS_EBACKEND. */
int ims_keyrepo_decrypt(const struct ims_keyrepo *r, ims_str ad, ims_str ct, void *pt,
                        size_t ptcap, size_t *ptlen);

/* The key id a ciphertext names (header only, no decryption).
 * 0 or IMS_EPROTO. */
int ims_keyrepo_ct_keyid(ims_str ct, unsigned *id);

/* Derives outlen (1..64) bytes for another purpose from key id with HKDF-SHA-256
 * (RFC 5869; no salt, info = label), so a repository key never leaves this
 * module and one key never serves two purposes (the audit trail's HMAC key:
 * label "imscloud-audit-v1", src/audit/audit.h).  On error out is wiped.
 * 0, IMS_ENOENT (no key id), IMS_EINVAL (outlen), IMS_EBACKEND (OpenSSL). */
int ims_keyrepo_derive(const struct ims_keyrepo *r, unsigned id, ims_str label, void *out,
                       size_t outlen);

/* If ct is not under the primary key, decrypts it and appends a fresh
 * ciphertext under the primary to out and sets *changed; otherwise leaves
 * out alone and clears *changed.  Errors as decrypt and encrypt. */
int ims_keyrepo_reencrypt(const struct ims_keyrepo *r, ims_str ad, ims_str ct,
                          struct ims_buf *out, bool *changed);

#endif
