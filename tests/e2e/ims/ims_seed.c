/* ims_seed - provisions the HSS store of the IMS registration e2e tests
 * (tests/e2e/ims) through the store API (src/store/store.h).
 *
 *   ims_seed STORE_URL KEYS_DIR SCSCF_URI [CROWD]
 *
 * Creates the key repository if missing, then, in realm ims.test (every
 * subscription requires S-CSCF capability 1, and SCSCF_URI is the one S-CSCF
 * of the store with that capability: the UAA names it in
 * Server-Capabilities):
 *   alice@ims.test  Digest (MD5, SHA-256; password "alice-secret"),
 *                   sip:alice@ims.test + tel:+15550001 (one implicit set),
 *                   service profile "p1" (one iFC, INVITE in session case
 *                   ORIGINATING_CDIV, which the S-CSCF never evaluates: parsed
 *                   and kept, never fired, so alice's calls stay deterministic)
 *   bob@ims.test    AKAv1-MD5 (K, OPc = OPc(K, OP) of TS 35.208 test set 1,
 *                   AMF 8000), sip:bob@ims.test
 *   rita@ims.test   AKAv1-MD5 like bob: the re-synchronisation test
 *                   (t_aka.sh; its SQN is that test's alone)
 *   carol@ims.test  Digest SHA-256 only ("carol-secret"), sip:carol@ims.test
 *   dave@ims.test   Digest ("dave-secret"): the wrong-password test
 *   erin@ims.test   Digest ("erin-secret"): the stale-nonce test
 *   frank@ims.test  Digest ("frank-secret"), sip:frank@ims.test barred
 *   greta@ims.test  Digest ("greta-secret"), sip:greta@ims.test and, barred,
 *                   sip:greta-barred@ims.test (one implicit set)
 * and for the session tests (t_sessions.sh), Digest ("<name>-secret"):
 *   sessa@ims.test  no profile: the tests give it iFCs (imscloudctl) first
 *   sessu@ims.test  profile "p1", never registers: LIR says unregistered
 *                   service, the S-CSCF finds no registration (480)
 *   sessn@ims.test  no profile, never registers: the I-CSCF answers 480
 * and for the RFC 5626 outbound tests (t_outbound.sh), Digest ("<name>-secret"):
 *   olga@ims.test   registers flows (reg-id) through the P-CSCF
 *   oleg@ims.test   registers straight at the I-CSCF (no edge proxy)
 * and, each registered by no other test (a de-registration or a count of
 * contacts then sees only that test's bindings), Digest ("<name>-secret"):
 *   maxc@ims.test   the max_contacts test (its contacts are counted)
 *   nora@ims.test   the not_registered test (from a port of its own)
 *   vera@ims.test   the IPv4 UE of the dual-stack tests (t_ipv6.sh)
 *   forka@ims.test  two devices, one busy (sess_next_contact, t_sessions.sh)
 * and with CROWD, that many more for the batch test (local_batch):
 *   u0000@ims.test .. Digest ("pw-<n>"), profile "p1", sip:u0000@ims.test ..
 * Exit 0, or 1 with a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"
#include "crypto/keyrepo.h"
#include "crypto/milenage.h"
#include "hss/userdata.h"
#include "store/store.h"

#define REALM "ims.test"

/* TS 35.208 test set 1 (test data only); the sipp scenario has the same K/OP */
static const uint8_t k1[16] = { 0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f,
                                0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc };
static const uint8_t op1[16] = { 0xcd, 0xc2, 0x02, 0xd5, 0x12, 0x3e, 0x20, 0xf6,
                                 0x2b, 0x6d, 0x67, 0x6a, 0xc7, 0x2c, 0xb3, 0x18 };
static const uint8_t amf[2] = { 0x80, 0x00 };

static struct ims_store *st;

static void must(int rc, const char *what)
{
    if (rc) {
        fprintf(stderr, "ims_seed: %s: %s (%s)\n", what, ims_strerror(rc),
                st ? ims_store_errmsg(st) : "");
        exit(1);
    }
}

static void impu(const char *sub, const char *impi, const char *id, unsigned irs,
                 const char *profile, bool barred)
{
    struct ims_impu_rec r;
    memset(&r, 0, sizeof(r));
    snprintf(r.identity, sizeof(r.identity), "%s", id);
    snprintf(r.subscription, sizeof(r.subscription), "%s", sub);
    snprintf(r.profile, sizeof(r.profile), "%s", profile ? profile : "");
    r.irs = irs;
    r.barred = barred;
    must(ims_store_impu_add(st, &r), id);
    must(ims_store_link(st, ims_str_cstr(impi), ims_str_cstr(id)), "link");
}

static long n_users; /* subscriptions made: one per user() */

/* A subscription with one IMPI and its first IMPU sip:<user>@ims.test. */
static void user(const char *name, unsigned schemes, const char *password, bool aka,
                 const char *profile, bool barred)
{
    n_users++;
    char impi[IMS_STORE_ID_MAX], id[IMS_STORE_ID_MAX];
    snprintf(impi, sizeof(impi), "%s@" REALM, name);
    snprintf(id, sizeof(id), "sip:%s@" REALM, name);
    struct ims_sub_rec s;
    memset(&s, 0, sizeof(s));
    snprintf(s.name, sizeof(s.name), "%s", name);
    s.caps_mandatory[0] = 1;
    s.n_mandatory = 1;
    must(ims_store_sub_add(st, &s), "sub add");
    must(ims_store_impi_add(st, ims_str_cstr(name), ims_str_cstr(impi), IMS_S(REALM), schemes),
         impi);
    if (password)
        must(ims_store_impi_set_password(st, ims_str_cstr(impi), ims_str_cstr(password), false),
             "password");
    if (aka) {
        uint8_t opc[16];
        must(ims_milenage_opc(k1, op1, opc), "opc");
        must(ims_store_impi_set_aka(st, ims_str_cstr(impi), k1, opc, amf), "aka");
    }
    impu(name, impi, id, 0, profile, barred);
}

int main(int argc, char **argv)
{
    char err[IMS_KEYREPO_ERRLEN];
    struct ims_keyrepo *repo = NULL;
    long crowd = argc == 5 ? strtol(argv[4], NULL, 10) : 0;
    if ((argc != 4 && argc != 5) || crowd < 0 || crowd > 10000) {
        fprintf(stderr, "usage: ims_seed STORE_URL KEYS_DIR SCSCF_URI [CROWD (0..10000)]\n");
        return 2;
    }
    int rc = ims_keyrepo_open(argv[2], &repo, err, sizeof(err));
    if (rc == IMS_ENOENT) {
        rc = ims_keyrepo_create(argv[2], err, sizeof(err));
        if (rc == 0)
            rc = ims_keyrepo_open(argv[2], &repo, err, sizeof(err));
    }
    if (rc) {
        fprintf(stderr, "ims_seed: keys: %s\n", err);
        return 1;
    }
    must(ims_store_open(argv[1], repo, &st), "open");

    /* one iFC, so that the S-CSCF has something to parse and keep; its
     * session case (4, ORIGINATING_CDIV) is never evaluated, so it never
     * sends alice's requests to an AS that does not exist */
    struct ims_buf ifc;
    struct ims_spt spt[] = {
        { IMS_SPT_METHOD, false, 0, IMS_S("INVITE"), IMS_STR_NULL },
        { IMS_SPT_SESSION_CASE, false, 1, IMS_S("4"), IMS_STR_NULL },
    };
    struct ims_ifc f = { 0, true, spt, 2, IMS_S("sip:as.ims.test:5090"), 0, IMS_STR_NULL, 0 };
    ims_buf_init(&ifc, 65536);
    must(ims_ud_ifc(&ifc, &f, 1), "ifc");
    must(ims_store_profile_put(st, IMS_S("p1"), ims_buf_str(&ifc)), "profile");
    ims_buf_free(&ifc);

    const unsigned digest = IMS_AUTH_DIGEST_MD5 | IMS_AUTH_DIGEST_SHA256;
    user("alice", digest, "alice-secret", false, "p1", false);
    impu("alice", "alice@" REALM, "tel:+15550001", 1, "p1", false);
    user("bob", IMS_AUTH_AKAV1_MD5, NULL, true, NULL, false);
    user("rita", IMS_AUTH_AKAV1_MD5, NULL, true, NULL, false);
    user("carol", IMS_AUTH_DIGEST_SHA256, "carol-secret", false, NULL, false);
    user("dave", digest, "dave-secret", false, NULL, false);
    user("erin", digest, "erin-secret", false, NULL, false);
    user("frank", digest, "frank-secret", false, NULL, true);
    user("greta", digest, "greta-secret", false, NULL, false);
    impu("greta", "greta@" REALM, "sip:greta-barred@" REALM, 1, NULL, true);
    user("sessa", digest, "sessa-secret", false, NULL, false);
    user("sessu", digest, "sessu-secret", false, "p1", false);
    user("sessn", digest, "sessn-secret", false, NULL, false);
    user("olga", digest, "olga-secret", false, NULL, false);
    user("oleg", digest, "oleg-secret", false, NULL, false);
    user("maxc", digest, "maxc-secret", false, NULL, false);
    user("nora", digest, "nora-secret", false, NULL, false);
    user("vera", digest, "vera-secret", false, NULL, false);
    /* a user each for sess_next_contact and sess_ring_out: the devices one
     * registers stay registered and would be tried by the other */
    user("forka", digest, "forka-secret", false, NULL, false);
    user("forkb", digest, "forkb-secret", false, NULL, false);
    for (long i = 0; i < crowd; i++) {
        char name[16], pw[24];
        snprintf(name, sizeof(name), "u%04ld", i);
        snprintf(pw, sizeof(pw), "pw-%ld", i);
        user(name, IMS_AUTH_DIGEST_MD5, pw, false, "p1", false);
    }

    const uint32_t caps[] = { 1 };
    must(ims_store_scscf_put(st, ims_str_cstr(argv[3]), caps, 1), "scscf");

    ims_store_close(st);
    ims_keyrepo_free(repo);
    printf("ims_seed: %ld subscriptions, S-CSCF %s\n", n_users, argv[3]);
    return 0;
}
