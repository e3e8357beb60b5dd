/* ks_creds.h - subscribers whose Digest secrets live in Keystone (issue 5
 * part 5; docs/keystone.md "Provisioning with the openstack CLI",
 * docs/internals/hss.md).
 *
 * An IMPI <name>@<realm> the store does not hold is looked up in Keystone:
 * the user <name> of one domain (GET /v3/users?name=..&domain_id=..) and
 * its credential of type "ims-digest" (GET /v3/credentials?user_id=..&
 * type=ims-digest), whose blob is a JSON object:
 *   {"ha1_md5": "<32 hex>", "ha1_sha256": "<64 hex>", "ha1_sha512_256":
 *    "<64 hex>", "realm": "ims.test"}   (any subset of the HA1s), or
 *   {"password": "...", "realm": "ims.test"}   (the HSS computes the HA1s)
 * "realm" defaults to the IMPI's domain part; "ha1" is read as "ha1_md5";
 * an "impi" member, if present, must name this IMPI.
 * Found, the subscription "ks-<name>" is created in the store with the IMPI
 * (no secrets: has_ha1 false), the IMPU sip:<impi>, and the Keystone user
 * and project ids: a "Keystone-backed" subscription.  Its HA1s are never
 * written to the store; they are kept in memory for ttl_s (0: not at all)
 * and fetched again after that, at the next MAR.  An IMPI with local
 * secrets is never looked up in Keystone.
 *
 * Threads: hss_ks_prepare runs on store threads; the fetch runs on the HSS
 * loop (its ims_ks client); the in-memory cache has one mutex.
 *
 * Lifetime: hss_ks_new after the HSS loop exists; hss_ks_stop while it
 * still runs (frees the client on the loop: fetches in flight complete as
 * failed); hss_ks_free after the loop thread is joined. */
#ifndef IMS_HSS_KS_CREDS_H
#define IMS_HSS_KS_CREDS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/str.h"
#include "crypto/digest.h"
#include "store/store.h"

struct hss_ks;
struct ims_ks_ctx;
struct ims_loop;

enum hss_ks_state {
    HSS_KS_NONE = 0, /* not looked at yet */
    HSS_KS_NEED,     /* the store job stopped: fetch from Keystone, then run it again */
    HSS_KS_FOUND,    /* a user with a usable ims-digest credential */
    HSS_KS_ABSENT,   /* no such user, disabled, or no usable credential */
    HSS_KS_FAILED,   /* Keystone unavailable: DIAMETER_UNABLE_TO_COMPLY */
};

/* One IMPI's Keystone secrets (plaintext HA1s: wipe with hss_ks_secret_clear). */
struct hss_ks_secret {
    enum hss_ks_state state;
    char user_id[IMS_STORE_NAME_MAX];
    char project_id[IMS_STORE_NAME_MAX];
    char realm[IMS_STORE_ID_MAX];
    bool has_ha1[IMS_DIGEST_NALG];
    char ha1[IMS_DIGEST_NALG][IMS_DIGEST_HEX_MAX + 1];
};

void hss_ks_secret_clear(struct hss_ks_secret *s);

/* ctx borrowed (outlives the hss_ks), loop is the HSS loop, domain_id
 * copied.  0, IMS_ENOMEM. */
int hss_ks_new(struct ims_ks_ctx *ctx, struct ims_loop *loop, unsigned ttl_s,
               const char *domain_id, struct hss_ks **out);
/* Frees the Keystone client on the loop and waits for it (fetches in
 * flight complete with HSS_KS_FAILED); later fetches fail at once.  Call
 * from another thread while the loop runs.  NULL is a no-op. */
void hss_ks_stop(struct hss_ks *k);
/* Wipes the cache and frees k (after the loop thread ended).  NULL: no-op. */
void hss_ks_free(struct hss_ks *k);

enum hss_ks_route {
    HSS_KS_ROUTE_LOCAL, /* not Keystone's: run the ordinary handler */
    HSS_KS_ROUTE_FETCH, /* stop here: sec->state is HSS_KS_NEED */
    HSS_KS_ROUTE_EXT,   /* MAR: run ims_hss_mar_ext with sec */
};

/* Store thread, before a UAR (cmd DIA_CMD_UAR) or MAR (DIA_CMD_MAR) of
 * impi: decides whether Keystone is involved, using sec (HSS_KS_NONE the
 * first time; the fetch result when run again) or the cache, and creates
 * the Keystone-backed subscription once the user is found.  sec is
 * caller-owned.  0 (see *route), IMS_EBACKEND (sec says Keystone failed),
 * or a store error. */
int hss_ks_prepare(struct hss_ks *k, struct ims_store *st, unsigned cmd, ims_str impi,
                   struct hss_ks_secret *sec, enum hss_ks_route *route);

/* res is borrowed for the call; it is the caller's to wipe afterwards. */
typedef void (*hss_ks_done_fn)(void *arg, const struct hss_ks_secret *res);
/* Fetches impi's user and credential from Keystone (or the cache filled
 * meanwhile by another request).  Thread-safe.  0: done runs exactly once,
 * on the HSS loop (or, if the loop is freed first, on the thread freeing
 * it, with HSS_KS_FAILED).  IMS_ENOMEM, IMS_EINVAL (stopping, or not an
 * IMPI of the form name@realm): done never runs. */
int hss_ks_fetch(struct hss_ks *k, ims_str impi, hss_ks_done_fn done, void *arg);

/* Parses an ims-digest blob for impi (exposed for tests).  0 with
 * sec->realm and the HA1s set, IMS_EPROTO (not a usable blob), IMS_ENOMEM. */
int hss_ks_parse_blob(const char *blob, ims_str impi, struct hss_ks_secret *sec);

#endif
