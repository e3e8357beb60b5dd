#include "crypto/keyrepo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "crypto/encode.h"

#define NONCE_LEN 12
#define TAG_LEN 16
#define HDR_MAX 24 /* "v1:" + 10 digits + ":" + slack */
#define KEYFILE_MAX 128

struct key {
    unsigned id;
    uint8_t k[IMS_KEYREPO_KEY_LEN];
};

struct ims_keyrepo {
    char *dir;
    size_t n;                              /* keys[0..n), ascending id */
    struct key keys[IMS_KEYREPO_MAX_KEYS];
};

/* Fills the caller's error line, and logs the same event. */
static int fail(int rc, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(int rc, char *err, size_t errlen, const char *fmt, ...)
{
    char line[IMS_KEYREPO_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (err && errlen)
        snprintf(err, errlen, "%s", line);
    /* the caller owns the verdict (a missing repository is normal on a first
     * start) and reports err; here it is only a debugging trail */
    LOG_D("keyrepo", "event=error rc=%s msg=\"%s\"", ims_strerror(rc), line);
    return rc;
}

/* "0", or digits without a leading zero, <= IMS_KEYREPO_MAX_ID. */
static bool parse_id(const char *name, unsigned *id)
{
    uint64_t v;
    ims_str s = ims_str_cstr(name);
    if (s.len == 0 || s.len > 6 || (s.len > 1 && s.p[0] == '0'))
        return false;
    if (ims_str_to_u64(s, IMS_KEYREPO_MAX_ID, &v))
        return false;
    *id = (unsigned)v;
    return true;
}

static int check_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT)
            return fail(IMS_ENOENT, err, errlen, "key repository %s does not exist", dir);
        return fail(IMS_EIO, err, errlen, "key repository %s: %s", dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return fail(IMS_EINVAL, err, errlen, "key repository %s is not a directory", dir);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return fail(IMS_EINVAL, err, errlen,
                    "key repository %s is writable by group or others (mode %04o); chmod 700",
                    dir, (unsigned)(st.st_mode & 07777));
    return 0;
}

static int load_key(const char *dir, unsigned id, struct key *key, char *err, size_t errlen)
{
    char path[4096], raw[KEYFILE_MAX + 1];
    struct stat st;
    size_t got = 0, klen = 0;
    int rc = 0;
    snprintf(path, sizeof(path), "%s/%u", dir, id);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(IMS_EIO, err, errlen, "key file %s: %s", path, strerror(errno));
    /* Check the file we actually opened (a symlink's target, too). */
    if (fstat(fd, &st) != 0) {
        rc = fail(IMS_EIO, err, errlen, "key file %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = fail(IMS_EINVAL, err, errlen, "key file %s is not a regular file", path);
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        rc = fail(IMS_EINVAL, err, errlen,
                  "key file %s is accessible to group or others (mode %04o); refusing to use "
                  "it: chmod 600 it (and consider the key compromised if others could read it)",
                  path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if (st.st_uid != geteuid()) {
        rc = fail(IMS_EINVAL, err, errlen, "key file %s is owned by uid %u, not by uid %u", path,
                  (unsigned)st.st_uid, (unsigned)geteuid());
        goto out;
    }
    while (got < KEYFILE_MAX + 1) {
        ssize_t r = read(fd, raw + got, KEYFILE_MAX + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = fail(IMS_EIO, err, errlen, "key file %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    /* Keystone writes url-safe base64; accept both alphabets. */
    for (size_t i = 0; i < got; i++) {
        if (raw[i] == '-')
            raw[i] = '+';
        else if (raw[i] == '_')
            raw[i] = '/';
    }
    ims_str s = ims_str_trim(ims_str_make(raw, got));
    if (got > KEYFILE_MAX || ims_b64_decode(s, key->k, sizeof(key->k), &klen) != 0 ||
        klen != IMS_KEYREPO_KEY_LEN) {
        rc = fail(IMS_EINVAL, err, errlen, "key file %s does not hold 32 bytes of base64", path);
        goto out;
    }
    key->id = id;
out:
    ims_wipe(raw, sizeof(raw));
    if (rc)
        ims_wipe(key->k, sizeof(key->k));
    close(fd);
    return rc;
}

static int cmp_key(const void *a, const void *b)
{
    unsigned x = ((const struct key *)a)->id, y = ((const struct key *)b)->id;
    return x < y ? -1 : x > y;
}

int ims_keyrepo_open(const char *dir, struct ims_keyrepo **out, char *err, size_t errlen)
{
    struct ims_keyrepo *r;
    int rc = check_dir(dir, err, errlen);
    if (rc)
        return rc;
    r = ims_calloc(1, sizeof(*r));
    if (!r)
        return fail(IMS_ENOMEM, err, errlen, "out of memory");
    r->dir = ims_strndup(dir, strlen(dir));
    if (!r->dir) {
        ims_free(r);
        return fail(IMS_ENOMEM, err, errlen, "out of memory");
    }
    DIR *d = opendir(dir);
    if (!d) {
        rc = fail(IMS_EIO, err, errlen, "key repository %s: %s", dir, strerror(errno));
        goto fail_free;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        unsigned id;
        if (!parse_id(de->d_name, &id))
            continue;
        if (r->n == IMS_KEYREPO_MAX_KEYS) {
            rc = fail(IMS_ELIMIT, err, errlen, "key repository %s holds more than %d keys", dir,
                      IMS_KEYREPO_MAX_KEYS);
            break;
        }
        rc = load_key(dir, id, &r->keys[r->n], err, errlen);
        if (rc)
            break;
        r->n++;
    }
    closedir(d);
    if (rc)
        goto fail_free;
    if (r->n == 0) {
        rc = fail(IMS_ENOENT, err, errlen,
                  "key repository %s holds no key; create one with imscloudctl keys init", dir);
        goto fail_free;
    }
    qsort(r->keys, r->n, sizeof(r->keys[0]), cmp_key);
    LOG_I("keyrepo", "event=open dir=%s keys=%zu primary=%u", dir, r->n, r->keys[r->n - 1].id);
    *out = r;
    return 0;
fail_free:
    ims_keyrepo_free(r);
    return rc;
}

void ims_keyrepo_free(struct ims_keyrepo *r)
{
    if (!r)
        return;
    ims_free(r->dir);
    ims_wipe(r, sizeof(*r));
    ims_free(r);
}

unsigned ims_keyrepo_primary(const struct ims_keyrepo *r)
{
    return r->keys[r->n - 1].id;
}

size_t ims_keyrepo_ids(const struct ims_keyrepo *r, unsigned *ids, size_t cap)
{
    for (size_t i = 0; i < r->n && i < cap; i++)
        ids[i] = r->keys[i].id;
    return r->n;
}

static const struct key *find_key(const struct ims_keyrepo *r, unsigned id)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->keys[i].id == id)
            return &r->keys[i];
    return NULL;
}

bool ims_keyrepo_has(const struct ims_keyrepo *r, unsigned id)
{
    return find_key(r, id) != NULL;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Writes key file <dir>/<id> atomically: temp file, 0600, fsync, rename. */
static int write_key(const char *dir, unsigned id, const uint8_t k[IMS_KEYREPO_KEY_LEN],
                     char *err, size_t errlen)
{
    char tmp[4096], path[4096], text[IMS_B64_LEN(IMS_KEYREPO_KEY_LEN) + 2];
    int rc = 0;
    snprintf(tmp, sizeof(tmp), "%s/.tmp-%u", dir, id);
    snprintf(path, sizeof(path), "%s/%u", dir, id);
    size_t n = ims_b64_encode(k, IMS_KEYREPO_KEY_LEN, text);
    text[n++] = '\n';
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = fail(IMS_EIO, err, errlen, "key file %s: %s", tmp, strerror(errno));
        goto out;
    }
    /* The umask may have removed bits, never added any; make it exact. */
    if (fchmod(fd, 0600) != 0 || write(fd, text, n) != (ssize_t)n || fsync(fd) != 0) {
        rc = fail(IMS_EIO, err, errlen, "key file %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    close(fd);
    if (link(tmp, path) != 0) { /* link, not rename: never replace an existing key */
        rc = fail(IMS_EIO, err, errlen, "key file %s: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    unlink(tmp);
    fsync_dir(dir);
out:
    ims_wipe(text, sizeof(text));
    return rc;
}

int ims_keyrepo_create(const char *dir, char *err, size_t errlen)
{
    uint8_t k[IMS_KEYREPO_KEY_LEN];
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return fail(IMS_EIO, err, errlen, "key repository %s: %s", dir, strerror(errno));
    int rc = check_dir(dir, err, errlen);
    if (rc)
        return rc;
    DIR *d = opendir(dir);
    if (!d)
        return fail(IMS_EIO, err, errlen, "key repository %s: %s", dir, strerror(errno));
    struct dirent *de;
    unsigned id;
    while ((de = readdir(d)) != NULL)
        if (parse_id(de->d_name, &id))
            rc = IMS_EINVAL;
    closedir(d);
    if (rc)
        return fail(rc, err, errlen, "key repository %s already holds keys", dir);
    if (RAND_bytes(k, sizeof(k)) != 1)
        return fail(IMS_EBACKEND, err, errlen, "random number generator failed");
    rc = write_key(dir, 0, k, err, errlen);
    ims_wipe(k, sizeof(k));
    if (rc == 0)
        LOG_N("keyrepo", "event=create dir=%s key=0", dir);
    return rc;
}

int ims_keyrepo_rotate(struct ims_keyrepo *r, unsigned *new_id, char *err, size_t errlen)
{
    unsigned id = ims_keyrepo_primary(r) + 1;
    if (r->n == IMS_KEYREPO_MAX_KEYS || id > IMS_KEYREPO_MAX_ID)
        return fail(IMS_ELIMIT, err, errlen,
                    "key repository %s is full; remove unused keys first", r->dir);
    struct key *k = &r->keys[r->n];
    if (RAND_bytes(k->k, sizeof(k->k)) != 1)
        return fail(IMS_EBACKEND, err, errlen, "random number generator failed");
    int rc = write_key(r->dir, id, k->k, err, errlen);
    if (rc) {
        ims_wipe(k->k, sizeof(k->k));
        return rc;
    }
    k->id = id;
    r->n++;
    *new_id = id;
    LOG_N("keyrepo", "event=rotate dir=%s primary=%u", r->dir, id);
    return 0;
}

int ims_keyrepo_remove(struct ims_keyrepo *r, unsigned id, char *err, size_t errlen)
{
    char path[4096];
    size_t i;
    for (i = 0; i < r->n && r->keys[i].id != id; i++)
        ;
    if (i == r->n)
        return fail(IMS_ENOENT, err, errlen, "key %u is not in %s", id, r->dir);
    if (i == r->n - 1)
        return fail(IMS_EINVAL, err, errlen, "key %u is the primary key; rotate first", id);
    snprintf(path, sizeof(path), "%s/%u", r->dir, id);
    if (unlink(path) != 0)
        return fail(IMS_EIO, err, errlen, "key file %s: %s", path, strerror(errno));
    fsync_dir(r->dir);
    ims_wipe(&r->keys[i], sizeof(r->keys[i]));
    memmove(&r->keys[i], &r->keys[i + 1], (r->n - i - 1) * sizeof(r->keys[0]));
    r->n--;
    ims_wipe(&r->keys[r->n], sizeof(r->keys[0]));
    LOG_N("keyrepo", "event=remove dir=%s key=%u", r->dir, id);
    return 0;
}

/* AES-256-GCM fetched once, as digest.c does with its digests: an init
 * from EVP_aes_256_gcm() looks the algorithm up in OpenSSL 3's locked store
 * each time (a 32-byte secret: 1.9 -> 1.0 us a decryption, measured), and
 * the HSS decrypts a secret on every MAR.  Kept for the process's life; a
 * failed fetch falls back to the legacy getter. */
static EVP_CIPHER *gcm_fetched;
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;

static void gcm_fetch(void)
{
    gcm_fetched = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static const EVP_CIPHER *gcm_cipher(void)
{
    pthread_once(&gcm_once, gcm_fetch);
    return gcm_fetched ? gcm_fetched : EVP_aes_256_gcm();
}

/* GCM over aad = hdr || ad.  enc: in -> out and tag written; dec: tag checked. */
static int gcm(bool enc, const uint8_t key[32], const uint8_t nonce[NONCE_LEN], ims_str hdr,
               ims_str ad, const uint8_t *in, size_t n, uint8_t *out, uint8_t tag[TAG_LEN])
{
    int len = 0, rc = IMS_EBACKEND;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return IMS_ENOMEM;
    if (EVP_CipherInit_ex(ctx, gcm_cipher(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) != 1)
        goto out;
    if (EVP_CipherUpdate(ctx, NULL, &len, (const uint8_t *)hdr.p, (int)hdr.len) != 1)
        goto out;
    if (ad.len && EVP_CipherUpdate(ctx, NULL, &len, (const uint8_t *)ad.p, (int)ad.len) != 1)
        goto out;
    if (n && EVP_CipherUpdate(ctx, out, &len, in, (int)n) != 1)
        goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1)
        goto out;
    if (EVP_CipherFinal_ex(ctx, out + n, &len) != 1) {
        rc = enc ? IMS_EBACKEND : IMS_EPROTO; /* decrypt: tag mismatch */
        goto out;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
        goto out;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

static size_t make_hdr(unsigned id, char *hdr)
{
    return (size_t)snprintf(hdr, HDR_MAX, "v1:%u:", id);
}

static int encrypt_with(const struct key *k, ims_str ad, const void *pt, size_t ptlen,
                        struct ims_buf *out)
{
    char hdr[HDR_MAX];
    if (ptlen > IMS_KEYREPO_PT_MAX)
        return IMS_ELIMIT;
    size_t rawlen = NONCE_LEN + ptlen + TAG_LEN;
    size_t b64len = IMS_B64_LEN(rawlen);
    uint8_t *raw = ims_alloc(rawlen + b64len + 1);
    if (!raw)
        return IMS_ENOMEM;
    char *b64 = (char *)raw + rawlen;
    ims_str h = ims_str_make(hdr, make_hdr(k->id, hdr));
    int rc = 0;
    if (RAND_bytes(raw, NONCE_LEN) != 1)
        rc = IMS_EBACKEND;
    if (rc == 0)
        rc = gcm(true, k->k, raw, h, ad, pt, ptlen, raw + NONCE_LEN,
                 raw + NONCE_LEN + ptlen);
    if (rc == 0) {
        ims_b64_encode(raw, rawlen, b64);
        rc = ims_buf_add_str(out, h);
        if (rc == 0)
            rc = ims_buf_add(out, b64, b64len);
    }
    ims_wipe(raw, rawlen + b64len + 1);
    ims_free(raw);
    return rc;
}

int ims_keyrepo_encrypt(const struct ims_keyrepo *r, ims_str ad, const void *pt, size_t ptlen,
                        struct ims_buf *out)
{
    return encrypt_with(&r->keys[r->n - 1], ad, pt, ptlen, out);
}

/* Splits "v1:<id>:<b64>". */
static int parse_ct(ims_str ct, unsigned *id, ims_str *hdr, ims_str *body)
{
    uint64_t v;
    if (ct.len < 5 || memcmp(ct.p, "v1:", 3) != 0)
        return IMS_EPROTO;
    ims_str rest = ims_str_make(ct.p + 3, ct.len - 3);
    long colon = ims_str_chr(rest, ':');
    if (colon < 1 || colon > 6)
        return IMS_EPROTO;
    ims_str num = ims_str_make(rest.p, (size_t)colon);
    if ((num.len > 1 && num.p[0] == '0') || ims_str_to_u64(num, IMS_KEYREPO_MAX_ID, &v))
        return IMS_EPROTO;
    *id = (unsigned)v;
    *hdr = ims_str_make(ct.p, 3 + (size_t)colon + 1);
    *body = ims_str_make(ct.p + hdr->len, ct.len - hdr->len);
    return 0;
}

int ims_keyrepo_ct_keyid(ims_str ct, unsigned *id)
{
    ims_str hdr, body;
    return parse_ct(ct, id, &hdr, &body);
}

int ims_keyrepo_decrypt(const struct ims_keyrepo *r, ims_str ad, ims_str ct, void *pt,
                        size_t ptcap, size_t *ptlen)
{
    unsigned id;
    ims_str hdr, body;
    size_t rawlen = 0;
    int rc = parse_ct(ct, &id, &hdr, &body);
    if (rc)
        goto out_wipe;
    const struct key *k = find_key(r, id);
    if (!k) {
        rc = IMS_ENOENT;
        goto out_wipe;
    }
    if (body.len % 4 || body.len < IMS_B64_LEN(NONCE_LEN + TAG_LEN) ||
        body.len > IMS_B64_LEN(NONCE_LEN + IMS_KEYREPO_PT_MAX + TAG_LEN)) {
        rc = IMS_EPROTO;
        goto out_wipe;
    }
    size_t cap = body.len / 4 * 3;
    uint8_t *raw = ims_alloc(cap * 2); /* decoded bytes, then the plaintext */
    if (!raw) {
        rc = IMS_ENOMEM;
        goto out_wipe;
    }
    rc = ims_b64_decode(body, raw, cap, &rawlen);
    if (rc || rawlen < NONCE_LEN + TAG_LEN) {
        rc = IMS_EPROTO;
        goto out_free;
    }
    size_t n = rawlen - NONCE_LEN - TAG_LEN;
    if (n > ptcap) {
        rc = IMS_ELIMIT;
        goto out_free;
    }
    uint8_t *plain = raw + cap;
    rc = gcm(false, k->k, raw, hdr, ad, raw + NONCE_LEN, n, plain, raw + NONCE_LEN + n);
    if (rc == 0) {
        memcpy(pt, plain, n);
        *ptlen = n;
    }
out_free:
    ims_wipe(raw, cap * 2);
    ims_free(raw);
out_wipe:
    if (rc && ptcap)
        ims_wipe(pt, ptcap);
    return rc;
}

int ims_keyrepo_reencrypt(const struct ims_keyrepo *r, ims_str ad, ims_str ct,
                          struct ims_buf *out, bool *changed)
{
    unsigned id;
    size_t n = 0;
    int rc = ims_keyrepo_ct_keyid(ct, &id);
    if (rc)
        return rc;
    *changed = false;
    if (id == ims_keyrepo_primary(r))
        return 0;
    uint8_t *pt = ims_alloc(IMS_KEYREPO_PT_MAX);
    if (!pt)
        return IMS_ENOMEM;
    rc = ims_keyrepo_decrypt(r, ad, ct, pt, IMS_KEYREPO_PT_MAX, &n);
    if (rc == 0)
        rc = ims_keyrepo_encrypt(r, ad, pt, n, out);
    if (rc == 0)
        *changed = true;
    ims_wipe(pt, n);
    ims_free(pt);
    return rc;
}

int ims_keyrepo_derive(const struct ims_keyrepo *r, unsigned id, ims_str label, void *out,
                       size_t outlen)
{
    const struct key *k = find_key(r, id);
    if (!k)
        return IMS_ENOENT;
    if (outlen == 0 || outlen > 64)
        return IMS_EINVAL;
    int rc = IMS_EBACKEND;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    if (kctx) {
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)k->k, sizeof(k->k)),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)label.p, label.len),
            OSSL_PARAM_construct_end(),
        };
        if (EVP_KDF_derive(kctx, out, outlen, params) == 1)
            rc = 0;
    }
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    if (rc)
        ims_wipe(out, outlen);
    return rc;
}
