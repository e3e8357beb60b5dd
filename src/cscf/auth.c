/* auth.c - S-CSCF challenges and credential checks (auth.h). */
#include "cscf/auth.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "base/alloc.h"
#include "base/err.h"
#include "crypto/aka.h"
#include "crypto/encode.h"
#include "crypto/mac.h"
#include "cscf/table.h"

#define NONCE_RAW 40 /* 8 expiry + 16 unique + 16 MAC */

/* One outstanding challenge: the vector without its fixed realm buffer
 * (struct ims_auth_vector is ~400 bytes, 256 of them the realm), so that an
 * IMPI with one challenge costs ~250 bytes, not the ~2 KiB of a fixed array
 * of IMS_AUTH_MAX_CHALLENGES vectors: every user who registered in the
 * last nonce_ttl seconds has one (bench/ims). */
struct chal {
    char nonce[IMS_AUTH_NONCE_MAX + 1];
    char ha1[IMS_DIGEST_HEX_MAX + 1]; /* digest, lower-case hex */
    uint8_t rand[16], autn[16], xres[16];
    uint8_t xres_len;
    bool used_without_qop;
    enum ims_auth_kind kind;
    enum ims_digest_alg alg;
    uint32_t last_nc;
    int64_t expires_ms;
    char *realm; /* exact-size copy, owned */
};

struct auth_entry {
    unsigned failures;
    size_t n;
    struct chal *ch; /* n of them, exact-size array; wiped before it is freed */
};

struct ims_auth {
    struct ims_auth_cfg cfg;
    struct cscf_table *t;
    struct ims_mac *nonce_key; /* random, for this process's life */
};

void ims_auth_vector_clear(struct ims_auth_vector *v)
{
    ims_wipe(v, sizeof(*v));
}

static void chal_wipe(struct chal *c)
{
    ims_free(c->realm);
    ims_wipe(c, sizeof(*c));
}

/* The vector a challenge was made from (caller storage: wipe it after use). */
static void chal_vector(const struct chal *c, struct ims_auth_vector *v)
{
    memset(v, 0, sizeof(*v));
    v->kind = c->kind;
    v->alg = c->alg;
    ims_cstr_copy(c->realm, v->realm, sizeof(v->realm));
    memcpy(v->ha1, c->ha1, sizeof(v->ha1));
    memcpy(v->rand, c->rand, sizeof(v->rand));
    memcpy(v->autn, c->autn, sizeof(v->autn));
    memcpy(v->xres, c->xres, sizeof(v->xres));
    v->xres_len = c->xres_len;
}

static void drop_all(struct auth_entry *e)
{
    for (size_t i = 0; i < e->n; i++)
        chal_wipe(&e->ch[i]);
    ims_free(e->ch);
    e->ch = NULL;
    e->n = 0;
}

static void entry_free(void *p)
{
    if (!p)
        return;
    drop_all(p);
    ims_wipe(p, sizeof(struct auth_entry));
    ims_free(p);
}

/* The sweep's due time (seconds, rounded up): when the first challenge is
 * dropped (ims_auth_expire: nonce_ttl after it expired); an entry left
 * without challenges goes at the next sweep. */
static int64_t entry_due(const void *v, void *ctx)
{
    const struct auth_entry *e = v;
    const struct ims_auth *a = ctx;
    if (e->n == 0)
        return 0;
    int64_t first = INT64_MAX;
    for (size_t i = 0; i < e->n; i++)
        if (e->ch[i].expires_ms < first)
            first = e->ch[i].expires_ms;
    int64_t ms = first + (int64_t)a->cfg.nonce_ttl_s * 1000 + 1;
    return ms / 1000 + (ms % 1000 > 0);
}

int ims_auth_new(const struct ims_auth_cfg *cfg, struct ims_auth **out)
{
    if (!cfg->nonce_ttl_s || !cfg->max_failures || !cfg->max_entries)
        return IMS_EINVAL;
    struct ims_auth *a = ims_calloc(1, sizeof(*a));
    if (!a)
        return IMS_ENOMEM;
    a->cfg = *cfg;
    uint8_t key[32];
    int rc = RAND_bytes(key, sizeof(key)) == 1 ? ims_mac_new(key, sizeof(key), &a->nonce_key)
                                               : IMS_EBACKEND;
    ims_wipe(key, sizeof(key));
    if (rc == 0)
        rc = cscf_table_new(cfg->nshards ? cfg->nshards : 16, cfg->max_entries, entry_free,
                            &a->t);
    if (rc == 0 && (rc = cscf_table_set_due(a->t, entry_due, a)) != 0)
        cscf_table_free(a->t);
    if (rc) {
        ims_mac_free(a->nonce_key);
        ims_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void ims_auth_free(struct ims_auth *a)
{
    if (!a)
        return;
    cscf_table_free(a->t);
    ims_mac_free(a->nonce_key);
    ims_free(a);
}

size_t ims_auth_count(const struct ims_auth *a)
{
    return cscf_table_count(a->t);
}

/* ------------------------------------------------------------ nonces */

static void nonce_mac(struct ims_mac *key, const uint8_t *head, ims_str impi, uint8_t mac[16])
{
    uint8_t buf[24 + 256], full[IMS_MAC_LEN];
    size_t n = impi.len > 256 ? 256 : impi.len;
    memcpy(buf, head, 24);
    if (n)
        memcpy(buf + 24, impi.p, n);
    ims_mac_sha256(key, buf, 24 + n, full); /* zeroes on failure: never matches a real MAC */
    memcpy(mac, full, 16);
}

/* A nonce's unique part: 8 random bytes drawn once per process, then a
 * 64-bit count (from a random start).  RFC 7616 §3.3 asks for a nonce
 * unique per 401; the count makes it so within a process, the random half
 * across restarts, and the MAC after them keeps it unforgeable: a nonce
 * that was never issued fails the check whatever its first 24 bytes.  A
 * RAND_bytes per nonce cost more than the MAC (perf, bench/ims). */
static pthread_once_t nonce_once = PTHREAD_ONCE_INIT;
static uint8_t nonce_salt[8];
static _Atomic uint64_t nonce_seq;
static bool nonce_seeded; /* written in nonce_seed only: pthread_once orders it */

static void nonce_seed(void)
{
    uint64_t start;
    if (RAND_bytes(nonce_salt, sizeof(nonce_salt)) != 1 ||
        RAND_bytes((uint8_t *)&start, sizeof(start)) != 1)
        return; /* nonce_seeded stays false: every make fails */
    atomic_store(&nonce_seq, start);
    nonce_seeded = true;
}

int ims_auth_nonce_make(struct ims_mac *key, ims_str impi, int64_t expires_s,
                        char out[IMS_AUTH_NONCE_MAX + 1])
{
    uint8_t raw[NONCE_RAW];
    uint64_t e = (uint64_t)expires_s;
    pthread_once(&nonce_once, nonce_seed);
    if (!nonce_seeded)
        return IMS_EBACKEND;
    uint64_t seq = atomic_fetch_add(&nonce_seq, 1);
    for (int i = 0; i < 8; i++) {
        raw[i] = (uint8_t)(e >> (56 - 8 * i));
        raw[16 + i] = (uint8_t)(seq >> (56 - 8 * i));
    }
    memcpy(raw + 8, nonce_salt, sizeof(nonce_salt));
    nonce_mac(key, raw, impi, raw + 24);
    ims_b64_encode(raw, sizeof(raw), out);
    return 0;
}

int ims_auth_nonce_check(struct ims_mac *key, ims_str impi, ims_str nonce, int64_t *expires_s)
{
    uint8_t raw[NONCE_RAW + 4], mac[16];
    size_t n = 0;
    if (ims_b64_decode(nonce, raw, sizeof(raw), &n) != 0 || n != NONCE_RAW)
        return IMS_ENOENT;
    nonce_mac(key, raw, impi, mac);
    if (CRYPTO_memcmp(mac, raw + 24, 16) != 0)
        return IMS_ENOENT;
    uint64_t e = 0;
    for (int i = 0; i < 8; i++)
        e = e << 8 | raw[i];
    *expires_s = (int64_t)e;
    return 0;
}

/* ------------------------------------------------------------ challenge */

struct add_ctx {
    const struct chal *c;
    bool taken; /* the entry owns c's realm now */
};

/* Appends x->c to the entry, in a new array one longer (at most
 * IMS_AUTH_MAX_CHALLENGES: the oldest makes room). */
static int add_fn(void **val, bool room, void *ctx)
{
    struct add_ctx *x = ctx;
    struct auth_entry *e = *val, *fresh = NULL;
    if (!e) {
        if (!room)
            return IMS_ELIMIT;
        e = fresh = ims_calloc(1, sizeof(*e));
        if (!e)
            return IMS_ENOMEM;
    }
    size_t drop = e->n == IMS_AUTH_MAX_CHALLENGES ? 1 : 0;
    struct chal *ch = ims_calloc(e->n - drop + 1, sizeof(*ch));
    if (!ch) {
        ims_free(fresh);
        return IMS_ENOMEM;
    }
    if (drop)
        chal_wipe(&e->ch[0]);
    if (e->n > drop)
        memcpy(ch, e->ch + drop, (e->n - drop) * sizeof(*ch));
    if (e->ch)
        ims_wipe(e->ch, e->n * sizeof(*ch));
    ims_free(e->ch);
    e->n -= drop;
    ch[e->n++] = *x->c;
    e->ch = ch;
    x->taken = true;
    *val = e;
    return 0;
}

int ims_auth_challenge(struct ims_auth *a, ims_str impi, const struct ims_auth_vector *v,
                       bool stale, int64_t now_ms, struct ims_buf *out)
{
    /* The realm goes into a quoted-string as it is: one that could end it
     * (or the header line) is not used.  It comes from the HSS, which may
     * have it from a credential a user wrote (src/hss/ks_creds.c). */
    if (!ims_str_quotable(ims_str_make(v->realm, strnlen(v->realm, sizeof(v->realm)))))
        return IMS_EINVAL;
    struct chal c;
    memset(&c, 0, sizeof(c));
    c.kind = v->kind;
    c.alg = v->alg;
    memcpy(c.ha1, v->ha1, sizeof(c.ha1));
    memcpy(c.rand, v->rand, sizeof(c.rand));
    memcpy(c.autn, v->autn, sizeof(c.autn));
    memcpy(c.xres, v->xres, sizeof(c.xres));
    c.xres_len = (uint8_t)(v->xres_len < sizeof(c.xres) ? v->xres_len : sizeof(c.xres));
    c.expires_ms = now_ms + (int64_t)a->cfg.nonce_ttl_s * 1000;
    const char *alg;
    if (v->kind == IMS_AUTHK_AKAV1) {
        uint8_t ra[32];
        memcpy(ra, v->rand, 16);
        memcpy(ra + 16, v->autn, 16);
        ims_b64_encode(ra, sizeof(ra), c.nonce);
        alg = "AKAv1-MD5";
    } else {
        int rc = ims_auth_nonce_make(a->nonce_key, impi, (c.expires_ms + 999) / 1000, c.nonce);
        if (rc) {
            ims_wipe(&c, sizeof(c));
            return rc;
        }
        alg = ims_digest_alg_name(v->alg);
    }
    c.realm = ims_strndup(v->realm, strnlen(v->realm, sizeof(v->realm)));
    if (!c.realm) {
        ims_wipe(&c, sizeof(c));
        return IMS_ENOMEM;
    }
    struct add_ctx x = { &c, false };
    int rc = cscf_table_with(a->t, impi, add_fn, &x);
    if (rc == 0)
        rc = IMS_BUF_CAT(out, IMS_S("WWW-Authenticate: Digest realm=\""), ims_str_cstr(v->realm),
                         IMS_S("\", nonce=\""), ims_str_cstr(c.nonce), IMS_S("\", algorithm="),
                         ims_str_cstr(alg), IMS_S(", qop=\"auth\""),
                         stale ? IMS_S(", stale=true") : IMS_STR_NULL, IMS_S("\r\n"));
    if (!x.taken)
        ims_free(c.realm);
    ims_wipe(&c, sizeof(c));
    return rc;
}

/* ------------------------------------------------------------ verify */

int ims_auth_expected(const struct ims_auth_vector *v, ims_str username, ims_str method,
                      ims_str uri, ims_str nonce, ims_str nc, ims_str cnonce, ims_str qop,
                      char out[IMS_DIGEST_HEX_MAX + 1])
{
    char ha1[IMS_DIGEST_HEX_MAX + 1], ha2[IMS_DIGEST_HEX_MAX + 1];
    enum ims_digest_alg alg = v->kind == IMS_AUTHK_AKAV1 ? IMS_DIGEST_MD5 : v->alg;
    int rc;
    if (v->kind == IMS_AUTHK_AKAV1)
        rc = ims_digest_ha1(IMS_DIGEST_MD5, username, ims_str_cstr(v->realm),
                            ims_str_make((const char *)v->xres, v->xres_len), ha1);
    else
        rc = ims_cstr_copy(v->ha1, ha1, sizeof(ha1)) > 0 ? 0 : IMS_EINVAL;
    if (rc == 0)
        rc = ims_digest_ha2(alg, method, uri, NULL, ha2);
    if (rc == 0)
        rc = ims_digest_response(alg, ims_str_cstr(ha1), nonce, nc, cnonce, qop,
                                 ims_str_cstr(ha2), out);
    ims_wipe(ha1, sizeof(ha1));
    return rc;
}

static bool nc_parse(ims_str s, uint32_t *out)
{
    /* RFC 7616 §3.4: exactly 8 hex digits */
    if (s.len != 8)
        return false;
    uint32_t v = 0;
    for (size_t i = 0; i < 8; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        unsigned d = ch >= '0' && ch <= '9'   ? (unsigned)(ch - '0')
                     : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10u
                     : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10u
                                              : 16u;
        if (d > 15)
            return false;
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

/* Does the credential's algorithm name the challenge's?  Absent means MD5
 * (RFC 7616 §3.3). */
static bool alg_matches(const struct chal *c, ims_str alg)
{
    if (c->kind == IMS_AUTHK_AKAV1)
        return ims_str_caseeq_lit(alg, "AKAv1-MD5");
    if (alg.p == NULL)
        return c->alg == IMS_DIGEST_MD5;
    enum ims_digest_alg a;
    bool sess;
    return ims_digest_alg_parse(alg, &a, &sess) == 0 && !sess && a == c->alg;
}

struct ver_ctx {
    struct ims_auth *a;
    const struct sip_auth *cred;
    ims_str method;
    int64_t now_ms;
    enum ims_auth_verdict v;
    struct ims_auth_resync *rs;
    enum ims_auth_kind kind;
    bool found;
    int err;
};

static int ver_fn(void **val, bool room, void *ctx)
{
    struct ver_ctx *x = ctx;
    struct auth_entry *e = *val;
    const struct sip_auth *cr = x->cred;
    x->v = IMS_AUTH_NO_CHALLENGE;
    if (!e)
        return 0;
    struct chal *c = NULL;
    size_t ci = 0;
    for (size_t i = 0; i < e->n && !c; i++)
        if (ims_str_eq(cr->nonce, ims_str_cstr(e->ch[i].nonce))) {
            c = &e->ch[i];
            ci = i;
        }
    if (!c)
        return 0;
    x->found = true;
    x->kind = c->kind;
    if (cr->realm.p && !ims_str_eq(cr->realm, ims_str_cstr(c->realm ? c->realm : "")))
        return 0; /* a nonce for another realm: not this challenge */
    if (!alg_matches(c, cr->algorithm))
        return 0;
    if (x->now_ms >= c->expires_ms) {
        x->v = IMS_AUTH_STALE;
        return 0;
    }
    /* RFC 3310 §3.3: auts= asks for re-synchronisation (the response is
     * computed with an empty password and proves nothing) */
    if (c->kind == IMS_AUTHK_AKAV1 && cr->auts.p) {
        uint8_t buf[32];
        size_t n = 0;
        if (ims_b64_decode(cr->auts, buf, sizeof(buf), &n) != 0 || n != 14) {
            x->v = IMS_AUTH_MALFORMED;
            return 0;
        }
        memcpy(x->rs->rand, c->rand, 16);
        memcpy(x->rs->auts, buf, 14);
        drop_all(e);
        x->v = IMS_AUTH_RESYNC;
        return 0;
    }
    uint32_t nc = 0;
    bool with_qop = cr->qop.len > 0;
    if (with_qop) {
        if (!ims_str_caseeq_lit(cr->qop, "auth") || !nc_parse(cr->nc, &nc) || nc == 0 ||
            cr->cnonce.len == 0) {
            x->v = IMS_AUTH_MALFORMED;
            return 0;
        }
        if (nc <= c->last_nc) {
            x->v = IMS_AUTH_REPLAY;
            return 0;
        }
    } else if (c->used_without_qop) {
        x->v = IMS_AUTH_REPLAY;
        return 0;
    }
    char want[IMS_DIGEST_HEX_MAX + 1];
    struct ims_auth_vector v;
    chal_vector(c, &v);
    int rc = ims_auth_expected(&v, cr->username, x->method, cr->uri, cr->nonce,
                               with_qop ? cr->nc : IMS_STR_NULL,
                               with_qop ? cr->cnonce : IMS_STR_NULL,
                               with_qop ? cr->qop : IMS_STR_NULL, want);
    ims_auth_vector_clear(&v);
    if (rc) {
        x->err = rc;
        return 0;
    }
    bool ok = ims_digest_equal(ims_str_cstr(want), cr->response);
    ims_wipe(want, sizeof(want));
    if (ok) {
        if (with_qop)
            c->last_nc = nc;
        else
            c->used_without_qop = true;
        e->failures = 0;
        x->v = IMS_AUTH_OK;
        return 0;
    }
    e->failures++;
    if (e->failures >= x->a->cfg.max_failures) {
        e->failures = 0;
        drop_all(e);
        x->v = IMS_AUTH_TOO_MANY;
        return 0;
    }
    /* the wrong response does not burn other challenges; this one stays
     * too (its nc moves on) */
    if (with_qop)
        c->last_nc = nc;
    (void)ci;
    x->v = IMS_AUTH_WRONG;
    return 0;
}

int ims_auth_verify(struct ims_auth *a, const struct sip_auth *cred, ims_str method,
                    int64_t now_ms, enum ims_auth_verdict *v, struct ims_auth_resync *rs,
                    enum ims_auth_kind *kind)
{
    struct ims_auth_resync tmp;
    struct ims_auth_resync *rsp = rs ? rs : &tmp;
    if (!cred->username.len || !cred->nonce.len || !cred->response.p) {
        *v = IMS_AUTH_NO_CHALLENGE;
        return 0;
    }
    struct ver_ctx x = { .a = a, .cred = cred, .method = method, .now_ms = now_ms, .rs = rsp };
    int rc = cscf_table_with(a->t, cred->username, ver_fn, &x);
    if (rc == IMS_EINVAL) {
        *v = IMS_AUTH_NO_CHALLENGE; /* a username too long to be ours */
        return 0;
    }
    if (rc)
        return rc;
    if (x.err)
        return x.err;
    if (!x.found) {
        /* not stored (any more): one of our digest nonces that expired is
         * stale (RFC 7616 §3.3), anything else is simply unknown */
        int64_t exp_s;
        if (ims_auth_nonce_check(a->nonce_key, cred->username, cred->nonce, &exp_s) == 0 &&
            exp_s * 1000 <= now_ms)
            x.v = IMS_AUTH_STALE;
    }
    *v = x.v;
    if (kind)
        *kind = x.kind;
    if (rsp == &tmp)
        ims_wipe(&tmp, sizeof(tmp));
    return 0;
}

static int forget_fn(void **val, bool room, void *ctx)
{
    entry_free(*val);
    *val = NULL;
    return 0;
}

void ims_auth_forget(struct ims_auth *a, ims_str impi)
{
    cscf_table_with(a->t, impi, forget_fn, NULL);
}

struct exp_ctx {
    int64_t cutoff_ms; /* challenges that expired before this go */
};

static void exp_visit(ims_str key, void **val, void *ctx)
{
    struct exp_ctx *x = ctx;
    struct auth_entry *e = *val;
    size_t k = 0;
    for (size_t i = 0; i < e->n; i++) {
        if (e->ch[i].expires_ms < x->cutoff_ms) {
            chal_wipe(&e->ch[i]);
            continue;
        }
        if (k != i)
            e->ch[k] = e->ch[i];
        k++;
    }
    /* the moved-from slots still hold copies of the secrets (their realm
     * pointers are owned by the slots they moved to) */
    if (k < e->n)
        ims_wipe(&e->ch[k], (e->n - k) * sizeof(e->ch[0]));
    e->n = k;
    if (k == 0) {
        /* nothing outstanding: the failure count goes too */
        entry_free(e);
        *val = NULL;
    }
}

void ims_auth_expire(struct ims_auth *a, unsigned first, unsigned step, int64_t now_ms)
{
    struct exp_ctx x = { now_ms - (int64_t)a->cfg.nonce_ttl_s * 1000 };
    cscf_table_sweep_due(a->t, first, step, now_ms / 1000, exp_visit, &x);
}
