/* test_hss - the HSS's Cx/Sh/SLF handlers as pure functions over a real
 * SQLite store, and the User-Data/Sh-Data XML. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "base/log.h"
#include "hss/userdata.h"
#include "hss_tests.h"

/* TS 35.208 test set 1 */
const uint8_t t_k[16] = { 0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f,
                          0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc };
const uint8_t t_opc[16] = { 0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e,
                            0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf };

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void add_sub(struct ims_store *st, const char *name)
{
    struct ims_sub_rec s;
    memset(&s, 0, sizeof(s));
    snprintf(s.name, sizeof(s.name), "%s", name);
    snprintf(s.ccf[0], sizeof(s.ccf[0]), "aaa://ccf.ims.test");
    s.caps_mandatory[0] = 1;
    s.n_mandatory = 1;
    s.caps_optional[0] = 9;
    s.n_optional = 1;
    OK(st, ims_store_sub_add(st, &s));
}

static void add_impu(struct ims_store *st, const char *sub, const char *id, unsigned irs,
                     const char *profile, const char *impi)
{
    struct ims_impu_rec r;
    memset(&r, 0, sizeof(r));
    snprintf(r.identity, sizeof(r.identity), "%s", id);
    snprintf(r.subscription, sizeof(r.subscription), "%s", sub);
    snprintf(r.profile, sizeof(r.profile), "%s", profile ? profile : "");
    r.irs = irs;
    OK(st, ims_store_impu_add(st, &r));
    OK(st, ims_store_link(st, S(impi), S(id)));
}

int hfix_setup(void **state)
{
    static const uint8_t amf[2] = { 0x80, 0x00 };
    char err[IMS_KEYREPO_ERRLEN], keys[300];
    struct hfix *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/ims-hss-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(keys, sizeof(keys), "%s/keys", f->dir);
    if (ims_keyrepo_create(keys, err, sizeof(err)) ||
        ims_keyrepo_open(keys, &f->repo, err, sizeof(err)))
        return -1;
    snprintf(f->url, sizeof(f->url), "sqlite:%s/hss.db", f->dir);
    if (ims_store_open(f->url, f->repo, &f->st))
        return -1;
    struct ims_store *st = f->st;
    add_sub(st, "alice");
    OK(st, ims_store_impi_add(st, S("alice"), S("alice@ims.test"), S("ims.test"), IMS_AUTH_ALL));
    OK(st, ims_store_impi_set_password(st, S("alice@ims.test"), S("alice-secret"), false));
    add_impu(st, "alice", "sip:alice@ims.test", 0, NULL, "alice@ims.test");
    add_impu(st, "alice", "tel:+1555", 1, NULL, "alice@ims.test");

    struct ims_buf ifc;
    struct ims_spt spt = { IMS_SPT_METHOD, false, 0, IMS_S("INVITE"), IMS_STR_NULL };
    struct ims_ifc fc = { 0, true, &spt, 1, IMS_S("sip:as.ims.test"), 0, IMS_STR_NULL, -1 };
    ims_buf_init(&ifc, 65536);
    OK(st, ims_ud_ifc(&ifc, &fc, 1));
    OK(st, ims_store_profile_put(st, S("p1"), ims_buf_str(&ifc)));
    ims_buf_free(&ifc);

    add_sub(st, "bob");
    OK(st, ims_store_impi_add(st, S("bob"), S("bob@ims.test"), S("ims.test"), IMS_AUTH_ALL));
    OK(st, ims_store_impi_set_aka(st, S("bob@ims.test"), t_k, t_opc, amf));
    OK(st, ims_store_impi_set_password(st, S("bob@ims.test"), S("bob-secret"), false));
    add_impu(st, "bob", "sip:bob@ims.test", 0, "p1", "bob@ims.test");
    add_impu(st, "bob", "sip:bob2@ims.test", 0, "p1", "bob@ims.test");

    add_sub(st, "carol");
    OK(st, ims_store_impi_add(st, S("carol"), S("carol@ims.test"), S("ims.test"), IMS_AUTH_ALL));
    OK(st, ims_store_impi_set_password(st, S("carol@ims.test"), S("carol-secret"), false));
    add_impu(st, "carol", "sip:carol@ims.test", 0, NULL, "carol@ims.test");

    const uint32_t caps[] = { 1, 9 };
    OK(st, ims_store_scscf_put(st, S(SCSCF1), caps, 2));
    OK(st, ims_store_scscf_put(st, S(SCSCF2), NULL, 0));
    f->pol.realm = "ims.test";
    f->pol.visited_networks = "*.partner.example";
    *state = f;
    return 0;
}

int hfix_teardown(void **state)
{
    struct hfix *f = *state;
    ims_store_close(f->st);
    ims_keyrepo_free(f->repo);
    nftw(f->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

int main(void)
{
    int failed = 0;
    ims_log_set_level(IMS_LOG_ERR);
    xmlInitParser();
    failed += _cmocka_run_group_tests("userdata", userdata_tests, userdata_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests("cx", cx_tests, cx_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests("sh", sh_tests, sh_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests("config", config_tests, config_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests("kscreds", kscreds_tests, kscreds_ntests, NULL, NULL);
    xmlCleanupParser();
    return failed ? 1 : 0;
}
