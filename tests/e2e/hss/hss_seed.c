/* hss_seed - provisions the e2e HSS store through the store API.
 *
 *   hss_seed STORE_URL KEYS_DIR
 *
 * Creates the key repository if missing, then the subscribers every
 * e2e/hss test (and the Kamailio interop test) relies on, in realm
 * ims.test:
 *   alice@ims.test  Digest (password "alice-secret"), sip:alice@ims.test and
 *                   tel:+15550001 (one implicit set), no service profile
 *   bob@ims.test    AKA (K/OPc below, also Digest "bob-secret"),
 *                   sip:bob@ims.test with profile "p1" (one iFC)
 *   carol@ims.test  Digest, sip:carol@ims.test (for IMPI/IMPU mismatches)
 *   S-CSCF sip:scscf.ims.test:6060 with capability 1.
 * Exit 0, or 1 with a message. */
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/str.h"
#include "crypto/keyrepo.h"
#include "hss/userdata.h"
#include "store/store.h"
#include "e2e_hss.h"

#define S(x) ims_str_cstr(x)

static struct ims_store *st;

static void must(int rc, const char *what)
{
    if (rc) {
        fprintf(stderr, "hss_seed: %s: %s (%s)\n", what, ims_strerror(rc),
                ims_store_errmsg(st));
        exit(1);
    }
}

static void sub(const char *name)
{
    struct ims_sub_rec s;
    memset(&s, 0, sizeof(s));
    snprintf(s.name, sizeof(s.name), "%s", name);
    snprintf(s.ccf[0], sizeof(s.ccf[0]), "aaa://ccf.ims.test");
    s.caps_mandatory[0] = 1;
    s.n_mandatory = 1;
    must(ims_store_sub_add(st, &s), "sub add");
}

static void impu(const char *sub_name, const char *id, unsigned irs, const char *profile)
{
    struct ims_impu_rec r;
    memset(&r, 0, sizeof(r));
    snprintf(r.identity, sizeof(r.identity), "%s", id);
    snprintf(r.subscription, sizeof(r.subscription), "%s", sub_name);
    snprintf(r.profile, sizeof(r.profile), "%s", profile ? profile : "");
    r.irs = irs;
    must(ims_store_impu_add(st, &r), id);
}

int main(int argc, char **argv)
{
    char err[IMS_KEYREPO_ERRLEN];
    struct ims_keyrepo *repo = NULL;
    if (argc != 3) {
        fprintf(stderr, "usage: hss_seed STORE_URL KEYS_DIR\n");
        return 2;
    }
    int rc = ims_keyrepo_open(argv[2], &repo, err, sizeof(err));
    if (rc == IMS_ENOENT) {
        rc = ims_keyrepo_create(argv[2], err, sizeof(err));
        if (rc == 0)
            rc = ims_keyrepo_open(argv[2], &repo, err, sizeof(err));
    }
    if (rc) {
        fprintf(stderr, "hss_seed: keys: %s\n", err);
        return 1;
    }
    must(ims_store_open(argv[1], repo, &st), "open");

    static const uint8_t amf[2] = { 0x80, 0x00 };
    sub("alice");
    must(ims_store_impi_add(st, S("alice"), S(E2E_ALICE_IMPI), S(E2E_REALM), IMS_AUTH_ALL),
         "impi alice");
    must(ims_store_impi_set_password(st, S(E2E_ALICE_IMPI), S(E2E_ALICE_PW), false), "pw alice");
    impu("alice", E2E_ALICE_IMPU, 0, NULL);
    impu("alice", E2E_ALICE_TEL, 1, NULL);
    must(ims_store_link(st, S(E2E_ALICE_IMPI), S(E2E_ALICE_IMPU)), "link");
    must(ims_store_link(st, S(E2E_ALICE_IMPI), S(E2E_ALICE_TEL)), "link");

    /* one iFC: INVITEs to the AS */
    struct ims_buf ifc;
    struct ims_spt spt = { IMS_SPT_METHOD, false, 0, IMS_S("INVITE"), IMS_STR_NULL };
    struct ims_ifc f = { 0, true, &spt, 1, IMS_S("sip:as.ims.test:5070"), 0, IMS_STR_NULL, -1 };
    ims_buf_init(&ifc, 65536);
    must(ims_ud_ifc(&ifc, &f, 1), "ifc");
    must(ims_store_profile_put(st, S("p1"), ims_buf_str(&ifc)), "profile");
    ims_buf_free(&ifc);

    sub("bob");
    must(ims_store_impi_add(st, S("bob"), S(E2E_BOB_IMPI), S(E2E_REALM), IMS_AUTH_ALL),
         "impi bob");
    must(ims_store_impi_set_aka(st, S(E2E_BOB_IMPI), e2e_k, e2e_opc, amf), "aka bob");
    must(ims_store_impi_set_password(st, S(E2E_BOB_IMPI), S("bob-secret"), false), "pw bob");
    impu("bob", E2E_BOB_IMPU, 0, "p1");
    must(ims_store_link(st, S(E2E_BOB_IMPI), S(E2E_BOB_IMPU)), "link");

    sub("carol");
    must(ims_store_impi_add(st, S("carol"), S(E2E_CAROL_IMPI), S(E2E_REALM), IMS_AUTH_ALL),
         "impi carol");
    must(ims_store_impi_set_password(st, S(E2E_CAROL_IMPI), S("carol-secret"), false), "pw");
    impu("carol", E2E_CAROL_IMPU, 0, NULL);
    must(ims_store_link(st, S(E2E_CAROL_IMPI), S(E2E_CAROL_IMPU)), "link");

    const uint32_t caps[] = { 1 };
    must(ims_store_scscf_put(st, S(E2E_SCSCF), caps, 1), "scscf");

    ims_store_close(st);
    ims_keyrepo_free(repo);
    printf("hss_seed: 3 subscriptions\n");
    return 0;
}
