/* ks_creds.c - Digest secrets from Keystone's credentials API (ks_creds.h). */
#include "hss/ks_creds.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "dia/msgs.h"
#include "ev/loop.h"
#include "keystone/keystone.h"

#define CACHE_CAP 1024 /* IMPIs remembered; the oldest entry makes room */
#define CRED_TYPE "ims-digest"
#define SUB_PREFIX "ks-"

struct cache_entry {
    char impi[IMS_STORE_ID_MAX]; /* "" = free */
    long long until_ms;
    struct hss_ks_secret sec;
};

struct hss_ks {
    struct ims_ks_ctx *ctx;     /* borrowed */
    struct ims_loop *loop;      /* the HSS loop, borrowed */
    struct ims_ks *ks;          /* made on the loop at the first fetch; loop thread only */
    unsigned ttl_s;
    char *domain_id;
    pthread_mutex_t mu;         /* cache, stopped, stop_done */
    pthread_cond_t cv;          /* hss_ks_stop waiting for the loop */
    bool stopped, stop_done;
    struct cache_entry *cache;  /* CACHE_CAP entries */
};

/* One fetch in flight (on the loop). */
struct fetch {
    struct hss_ks *k;
    char impi[IMS_STORE_ID_MAX];
    char name[IMS_STORE_NAME_MAX];
    struct hss_ks_secret res;
    hss_ks_done_fn done;
    void *arg;
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void hss_ks_secret_clear(struct hss_ks_secret *s)
{
    ims_wipe(s, sizeof(*s));
}

/* "name@realm" -> name, realm (borrowed slices of impi). */
static bool split_impi(ims_str impi, ims_str *name, ims_str *realm)
{
    const char *at = impi.len ? memchr(impi.p, '@', impi.len) : NULL;
    if (!at || at == impi.p || at == impi.p + impi.len - 1)
        return false;
    *name = ims_str_make(impi.p, (size_t)(at - impi.p));
    *realm = ims_str_make(at + 1, impi.len - (size_t)(at - impi.p) - 1);
    return name->len < IMS_STORE_NAME_MAX - sizeof(SUB_PREFIX) && impi.len < IMS_STORE_ID_MAX;
}

/* ------------------------------------------------------------ the blob */

/* Copies a hex HA1 of exactly want digits, lower-cased. */
static bool take_hex(const char *v, size_t want, char out[IMS_DIGEST_HEX_MAX + 1])
{
    if (!v || strlen(v) != want)
        return false;
    for (size_t i = 0; i < want; i++) {
        if (!isxdigit((unsigned char)v[i]))
            return false;
        out[i] = (char)tolower((unsigned char)v[i]);
    }
    out[want] = '\0';
    return true;
}

static const char *jget(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int blob_password(const char *pw, ims_str impi, struct hss_ks_secret *sec)
{
    for (int a = 0; a < IMS_DIGEST_NALG; a++) {
        /* RFC 7616 §3.4.2: A1 = username ":" realm ":" passwd, username = the IMPI */
        int rc = ims_digest_ha1((enum ims_digest_alg)a, impi, ims_str_cstr(sec->realm),
                                ims_str_cstr(pw), sec->ha1[a]);
        if (rc)
            return rc;
        sec->has_ha1[a] = true;
    }
    return 0;
}

int hss_ks_parse_blob(const char *blob, ims_str impi, struct hss_ks_secret *sec)
{
    static const char *const keys[IMS_DIGEST_NALG] = { "ha1_md5", "ha1_sha256",
                                                       "ha1_sha512_256" };
    ims_str name, realm;
    json_error_t jerr;
    if (!blob || !split_impi(impi, &name, &realm))
        return IMS_EPROTO;
    json_t *root = json_loads(blob, JSON_REJECT_DUPLICATES, &jerr);
    int rc = json_is_object(root) ? 0 : IMS_EPROTO;
    const char *bi = rc == 0 ? jget(root, "impi") : NULL;
    if (bi && !ims_str_eq(impi, ims_str_cstr(bi)))
        rc = IMS_EPROTO; /* a credential written for another identity */
    const char *r = rc == 0 ? jget(root, "realm") : NULL;
    if (r && !ims_str_quotable(ims_str_cstr(r)))
        rc = IMS_EPROTO; /* the S-CSCF quotes it in its challenge as it is (auth.c) */
    if (rc == 0 && r && strlen(r) < sizeof(sec->realm))
        snprintf(sec->realm, sizeof(sec->realm), "%s", r);
    else if (rc == 0)
        ims_str_copy(realm, sec->realm, sizeof(sec->realm));
    bool any = false;
    for (int a = 0; rc == 0 && a < IMS_DIGEST_NALG; a++) {
        const char *v = jget(root, keys[a]);
        if (!v && a == IMS_DIGEST_MD5)
            v = jget(root, "ha1");
        sec->has_ha1[a] = take_hex(v, ims_digest_hex_len((enum ims_digest_alg)a), sec->ha1[a]);
        any |= sec->has_ha1[a];
    }
    const char *pw = rc == 0 && !any ? jget(root, "password") : NULL;
    if (pw && *pw) {
        rc = blob_password(pw, impi, sec);
        any = rc == 0;
    }
    if (rc == 0 && !any)
        rc = IMS_EPROTO;
    /* jansson's copy of the blob is freed here but not wiped: a known
     * cost (the Keystone client's body buffer is wiped) */
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------ the cache */

static struct cache_entry *cache_find(struct hss_ks *k, ims_str impi)
{
    for (size_t i = 0; i < CACHE_CAP; i++) /* O(n): small, and only on Keystone users */
        if (k->cache[i].impi[0] && ims_str_eq(impi, ims_str_cstr(k->cache[i].impi)))
            return &k->cache[i];
    return NULL;
}

static bool cache_get(struct hss_ks *k, ims_str impi, struct hss_ks_secret *out)
{
    bool hit = false;
    if (k->ttl_s == 0)
        return false;
    pthread_mutex_lock(&k->mu);
    struct cache_entry *e = cache_find(k, impi);
    if (e && e->until_ms > mono_ms()) {
        *out = e->sec;
        hit = true;
    }
    pthread_mutex_unlock(&k->mu);
    return hit;
}

static void cache_put(struct hss_ks *k, const char *impi, const struct hss_ks_secret *sec)
{
    if (k->ttl_s == 0 || sec->state == HSS_KS_FAILED)
        return; /* an outage is not remembered: the next request asks again */
    long long now = mono_ms();
    pthread_mutex_lock(&k->mu);
    struct cache_entry *e = cache_find(k, ims_str_cstr(impi));
    for (size_t i = 0; !e && i < CACHE_CAP; i++)
        if (!k->cache[i].impi[0] || k->cache[i].until_ms <= now)
            e = &k->cache[i];
    if (!e) { /* full of live entries: replace the one expiring first */
        e = &k->cache[0];
        for (size_t i = 1; i < CACHE_CAP; i++)
            if (k->cache[i].until_ms < e->until_ms)
                e = &k->cache[i];
    }
    hss_ks_secret_clear(&e->sec);
    snprintf(e->impi, sizeof(e->impi), "%s", impi);
    e->sec = *sec;
    e->until_ms = now + (long long)k->ttl_s * 1000;
    pthread_mutex_unlock(&k->mu);
}

/* ------------------------------------------------------------ store side */

/* Creates the Keystone-backed subscription of impi (no secrets).  A
 * concurrent request may have created it first: that is success. */
static int provision(struct ims_store *st, ims_str impi, const struct hss_ks_secret *sec)
{
    ims_str name, realm;
    struct ims_sub_rec sub;
    struct ims_impu_rec pu;
    char impu[IMS_STORE_ID_MAX];
    if (!split_impi(impi, &name, &realm) || impi.len + 5 > sizeof(impu))
        return IMS_EINVAL;
    memset(&sub, 0, sizeof(sub));
    snprintf(sub.name, sizeof(sub.name), SUB_PREFIX "%.*s", IMS_SF(name));
    snprintf(sub.keystone_user_id, sizeof(sub.keystone_user_id), "%s", sec->user_id);
    snprintf(sub.keystone_project_id, sizeof(sub.keystone_project_id), "%s", sec->project_id);
    int rc = ims_store_sub_add(st, &sub);
    if (rc == IMS_EINVAL) { /* exists: a Keystone-backed one of ours, or a name clash */
        struct ims_sub_rec old;
        rc = ims_store_sub_get(st, ims_str_cstr(sub.name), &old);
        if (rc == 0 && !old.keystone_user_id[0])
            rc = IMS_EINVAL; /* a local subscription of that name: leave it alone */
    }
    if (rc == 0)
        rc = ims_store_impi_add(st, ims_str_cstr(sub.name), impi, ims_str_cstr(sec->realm),
                                IMS_AUTH_DIGEST_MD5 | IMS_AUTH_DIGEST_SHA256 |
                                    IMS_AUTH_DIGEST_SHA512_256);
    snprintf(impu, sizeof(impu), "sip:%.*s", IMS_SF(impi));
    memset(&pu, 0, sizeof(pu));
    snprintf(pu.identity, sizeof(pu.identity), "%s", impu);
    snprintf(pu.subscription, sizeof(pu.subscription), "%s", sub.name);
    pu.type = IMS_ID_PUBLIC;
    if (rc == 0)
        rc = ims_store_impu_add(st, &pu);
    if (rc == 0 || rc == IMS_EINVAL) /* IMS_EINVAL: the IMPU exists (a concurrent provision) */
        rc = ims_store_link(st, impi, ims_str_cstr(impu));
    if (rc == 0)
        LOG_N("hss", "event=ks_subscription_created impi=%.*s sub=%s ks_user=%s", IMS_SF(impi),
              sub.name, sec->user_id);
    else
        LOG_W("hss", "event=ks_subscription_failed impi=%.*s sub=%s err=%s", IMS_SF(impi),
              sub.name, ims_strerror(rc));
    return rc;
}

/* A Keystone-backed IMPI: in a subscription linked to a Keystone user and
 * without secrets of its own (a local subscriber with a Bearer link keeps
 * its own secrets and never asks Keystone). */
static int classify(struct ims_store *st, ims_str impi, bool *present, bool *backed)
{
    struct ims_impi_rec rec;
    struct ims_sub_rec sub;
    *present = *backed = false;
    int rc = ims_store_impi_get(st, impi, &rec);
    if (rc == IMS_ENOENT || rc == IMS_EINVAL)
        return 0;
    if (rc)
        return rc;
    *present = true;
    if (rec.has_aka || rec.has_password)
        return 0;
    for (int a = 0; a < IMS_DIGEST_NALG; a++)
        if (rec.has_ha1[a])
            return 0;
    rc = ims_store_sub_get(st, ims_str_cstr(rec.subscription), &sub);
    if (rc)
        return rc == IMS_ENOENT ? 0 : rc;
    *backed = sub.keystone_user_id[0] != '\0';
    return 0;
}

int hss_ks_prepare(struct hss_ks *k, struct ims_store *st, unsigned cmd, ims_str impi,
                   struct hss_ks_secret *sec, enum hss_ks_route *route)
{
    ims_str name, realm;
    bool present, backed;
    *route = HSS_KS_ROUTE_LOCAL;
    if (sec->state == HSS_KS_FAILED)
        return IMS_EBACKEND;
    if (!split_impi(impi, &name, &realm))
        return 0;
    int rc = classify(st, impi, &present, &backed);
    if (rc || (present && !backed))
        return rc;
    /* UAR: the identity exists; its secrets matter only to the MAR */
    if (present && cmd == DIA_CMD_UAR)
        return 0;
    if (sec->state == HSS_KS_NONE && !cache_get(k, impi, sec)) {
        sec->state = HSS_KS_NEED;
        *route = HSS_KS_ROUTE_FETCH;
        return 0;
    }
    if (sec->state == HSS_KS_FOUND && !present) {
        rc = provision(st, impi, sec);
        if (rc)
            return rc;
    }
    /* ABSENT and not in the store: the ordinary handler's "user unknown" */
    if (cmd == DIA_CMD_MAR && (present || sec->state == HSS_KS_FOUND))
        *route = HSS_KS_ROUTE_EXT;
    return 0;
}

/* ------------------------------------------------------------ the fetch (loop) */

static void fetch_finish(struct fetch *f, enum hss_ks_state state)
{
    f->res.state = state;
    if (state != HSS_KS_FOUND) { /* keep nothing half-filled */
        ims_wipe(f->res.ha1, sizeof(f->res.ha1));
        memset(f->res.has_ha1, 0, sizeof(f->res.has_ha1));
    }
    cache_put(f->k, f->impi, &f->res);
    LOG_I("hss", "event=ks_credentials impi=%s result=%s", f->impi,
          state == HSS_KS_FOUND ? "found" : state == HSS_KS_ABSENT ? "absent" : "failed");
    f->done(f->arg, &f->res);
    hss_ks_secret_clear(&f->res);
    ims_free(f);
}

static void on_creds(void *arg, int rc, const struct ims_ks_credential *c, size_t n)
{
    struct fetch *f = arg;
    if (rc) {
        fetch_finish(f, HSS_KS_FAILED);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!c[i].type || strcmp(c[i].type, CRED_TYPE) != 0)
            continue;
        if (hss_ks_parse_blob(c[i].blob, ims_str_cstr(f->impi), &f->res) == 0) {
            snprintf(f->res.project_id, sizeof(f->res.project_id), "%s",
                     c[i].project_id ? c[i].project_id : "");
            fetch_finish(f, HSS_KS_FOUND);
            return;
        }
        LOG_W("hss", "event=ks_credential_unusable impi=%s cred=%s", f->impi,
              c[i].id ? c[i].id : "?");
    }
    fetch_finish(f, HSS_KS_ABSENT);
}

static void on_users(void *arg, int rc, const struct ims_ks_user *u, size_t n)
{
    struct fetch *f = arg;
    const struct ims_ks_user *found = NULL;
    if (rc) {
        fetch_finish(f, HSS_KS_FAILED);
        return;
    }
    for (size_t i = 0; i < n && !found; i++)
        if (u[i].id && u[i].name && strcmp(u[i].name, f->name) == 0 && u[i].enabled)
            found = &u[i];
    if (!found || strlen(found->id) >= sizeof(f->res.user_id)) {
        fetch_finish(f, HSS_KS_ABSENT);
        return;
    }
    snprintf(f->res.user_id, sizeof(f->res.user_id), "%s", found->id);
    rc = ims_ks_credentials(f->k->ks, found->id, CRED_TYPE, on_creds, f);
    if (rc)
        fetch_finish(f, HSS_KS_FAILED);
}

static void fetch_run(struct ims_loop *loop, void *arg)
{
    struct fetch *f = arg;
    struct hss_ks *k = f->k;
    pthread_mutex_lock(&k->mu);
    bool stopped = k->stopped;
    pthread_mutex_unlock(&k->mu);
    /* another request may have filled the cache since this one was posted */
    if (!stopped && cache_get(k, ims_str_cstr(f->impi), &f->res)) {
        f->done(f->arg, &f->res);
        hss_ks_secret_clear(&f->res);
        ims_free(f);
        return;
    }
    int rc = stopped ? IMS_EINVAL : 0;
    if (rc == 0 && !k->ks)
        rc = ims_ks_new(k->ctx, loop, &k->ks);
    if (rc == 0)
        rc = ims_ks_users_by_name(k->ks, f->name, k->domain_id, on_users, f);
    if (rc)
        fetch_finish(f, HSS_KS_FAILED);
}

static void fetch_drop(void *arg)
{
    struct fetch *f = arg;
    f->res.state = HSS_KS_FAILED;
    f->done(f->arg, &f->res);
    hss_ks_secret_clear(&f->res);
    ims_free(f);
}

int hss_ks_fetch(struct hss_ks *k, ims_str impi, hss_ks_done_fn done, void *arg)
{
    ims_str name, realm;
    if (!split_impi(impi, &name, &realm))
        return IMS_EINVAL;
    pthread_mutex_lock(&k->mu);
    bool stopped = k->stopped;
    pthread_mutex_unlock(&k->mu);
    if (stopped)
        return IMS_EINVAL;
    struct fetch *f = ims_calloc(1, sizeof(*f));
    if (!f)
        return IMS_ENOMEM;
    f->k = k;
    ims_str_copy(impi, f->impi, sizeof(f->impi));
    ims_str_copy(name, f->name, sizeof(f->name));
    f->done = done;
    f->arg = arg;
    int rc = ims_loop_post(k->loop, fetch_run, f, fetch_drop);
    if (rc)
        ims_free(f);
    return rc;
}

/* ------------------------------------------------------------ lifetime */

int hss_ks_new(struct ims_ks_ctx *ctx, struct ims_loop *loop, unsigned ttl_s,
               const char *domain_id, struct hss_ks **out)
{
    struct hss_ks *k = ims_calloc(1, sizeof(*k));
    if (!k)
        return IMS_ENOMEM;
    k->cache = ims_calloc(CACHE_CAP, sizeof(*k->cache));
    k->domain_id = domain_id ? ims_strndup(domain_id, strlen(domain_id)) : NULL;
    if (!k->cache || (domain_id && !k->domain_id)) {
        ims_free(k->cache);
        ims_free(k->domain_id);
        ims_free(k);
        return IMS_ENOMEM;
    }
    k->ctx = ctx;
    k->loop = loop;
    k->ttl_s = ttl_s;
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    *out = k;
    return 0;
}

static void stop_run(struct ims_loop *loop, void *arg)
{
    struct hss_ks *k = arg;
    (void)loop;
    ims_ks_free(k->ks); /* fetches in flight: their callbacks run, failed */
    k->ks = NULL;
    pthread_mutex_lock(&k->mu);
    k->stop_done = true;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

void hss_ks_stop(struct hss_ks *k)
{
    if (!k)
        return;
    pthread_mutex_lock(&k->mu);
    k->stopped = true;
    pthread_mutex_unlock(&k->mu);
    if (ims_loop_post(k->loop, stop_run, k, NULL) != 0)
        return; /* hss_ks_free frees the client */
    pthread_mutex_lock(&k->mu);
    while (!k->stop_done)
        pthread_cond_wait(&k->cv, &k->mu);
    pthread_mutex_unlock(&k->mu);
}

void hss_ks_free(struct hss_ks *k)
{
    if (!k)
        return;
    ims_ks_free(k->ks);
    ims_wipe(k->cache, CACHE_CAP * sizeof(*k->cache));
    ims_free(k->cache);
    ims_free(k->domain_id);
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
    ims_free(k);
}
