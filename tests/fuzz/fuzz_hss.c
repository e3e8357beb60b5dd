/* fuzz_hss.c - libFuzzer harness for the HSS past the codec: what the Cx
 * and Sh handlers (src/hss/cx.c, sh.c) do with any request a peer's bytes
 * decode to, over a real SQLite store.
 *
 * The input is fuzz_dia's (tests/corpus/dia serves as seeds): one byte for
 * the command (byte % 8 = UAR, SAR, LIR, MAR, RTR, PPR, UDR, PUR; RTR and
 * PPR are the HSS's own requests and are skipped; the top bit, an answer,
 * too), then the AVPs.  They go through freeDiameter's parser and
 * dictionary and our codec as in node.c; a request that decodes goes to
 * its handler, the AKA vectors are made (ims_hss_result_finish), and the
 * answer is encoded and decoded again.  The store is made once per process
 * (a temporary directory: key repository, SQLite file) with alice (Digest),
 * bob (AKA and Digest, an iFC profile, two identities) and two S-CSCFs, and
 * keeps what the inputs write (registrations, Server-Names, SQNs, Sh data):
 * later inputs meet the state earlier ones left.
 *
 * What must hold for any input (CHECK traps, with the input):
 *   - a handler returns 0 with a Result-Code or an Experimental-Result, or
 *     a store error (which node.c answers DIAMETER_UNABLE_TO_COMPLY);
 *   - the answer encodes, and our decoder takes it back (an S-CSCF or AS
 *     of ours would read it);
 *   - ASan/UBSan/LSan find nothing.
 * FUZZ_HSS_DUMP set: each request's command and outcome on stderr. */
#define _GNU_SOURCE /* nftw */
#include "dia/codec.h" /* first: it replaces freeDiameter's LOG_* macros */

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "crypto/keyrepo.h"
#include "hss/cx.h"
#include "hss/userdata.h"
#include "store/store.h"

#include "fuzz.h"
#include "fuzz_dia_in.h"

#define SCSCF1 "sip:scscf.ims.test:5060"
#define SCSCF2 "sip:scscf2.ims.test:5060"

union any_req {
    struct cx_uar uar;
    struct cx_sar sar;
    struct cx_lir lir;
    struct cx_mar mar;
    struct sh_udr udr;
    struct sh_pur pur;
};

static struct {
    char dir[256];
    struct ims_keyrepo *repo;
    struct ims_store *st;
    struct hss_policy pol;
} H;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    ims_store_close(H.st);
    ims_keyrepo_free(H.repo);
    if (H.dir[0])
        nftw(H.dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

#define MUST(x) CHECK((x) == 0)

static void add_impu(const char *sub, const char *id, unsigned irs, const char *profile,
                     const char *impi)
{
    struct ims_impu_rec r;
    memset(&r, 0, sizeof(r));
    snprintf(r.identity, sizeof(r.identity), "%s", id);
    snprintf(r.subscription, sizeof(r.subscription), "%s", sub);
    snprintf(r.profile, sizeof(r.profile), "%s", profile);
    r.irs = irs;
    MUST(ims_store_impu_add(H.st, &r));
    MUST(ims_store_link(H.st, ims_str_cstr(impi), ims_str_cstr(id)));
}

static void add_sub(const char *name)
{
    struct ims_sub_rec s;
    memset(&s, 0, sizeof(s));
    snprintf(s.name, sizeof(s.name), "%s", name);
    snprintf(s.ccf[0], sizeof(s.ccf[0]), "aaa://ccf.ims.test");
    s.caps_mandatory[0] = 1;
    s.n_mandatory = 1;
    MUST(ims_store_sub_add(H.st, &s));
}

/* The store every input runs against (once per process). */
static void setup(void)
{
    static const uint8_t k[16] = { 0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f,
                                   0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc };
    static const uint8_t opc[16] = { 0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e,
                                     0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf };
    static const uint8_t amf[2] = { 0x80, 0x00 };
    char err[IMS_KEYREPO_ERRLEN], path[400];
    const char *tmp = getenv("TMPDIR");
    snprintf(H.dir, sizeof(H.dir), "%s/fuzz-hss-XXXXXX", tmp ? tmp : "/tmp");
    CHECK(mkdtemp(H.dir) != NULL);
    atexit(cleanup);
    snprintf(path, sizeof(path), "%s/keys", H.dir);
    MUST(ims_keyrepo_create(path, err, sizeof(err)));
    MUST(ims_keyrepo_open(path, &H.repo, err, sizeof(err)));
    snprintf(path, sizeof(path), "sqlite:%s/hss.db", H.dir);
    MUST(ims_store_open(path, H.repo, &H.st));

    add_sub("alice");
    MUST(ims_store_impi_add(H.st, IMS_S("alice"), IMS_S("alice@ims.test"), IMS_S("ims.test"),
                            IMS_AUTH_ALL));
    MUST(ims_store_impi_set_password(H.st, IMS_S("alice@ims.test"), IMS_S("alice-secret"), false));
    add_impu("alice", "sip:alice@ims.test", 0, "", "alice@ims.test");
    add_impu("alice", "tel:+15551234", 1, "", "alice@ims.test");

    struct ims_buf ifc;
    struct ims_spt spt = { IMS_SPT_METHOD, false, 0, IMS_S("INVITE"), IMS_STR_NULL };
    struct ims_ifc fc = { 0, true, &spt, 1, IMS_S("sip:as.ims.test"), 0, IMS_STR_NULL, -1 };
    ims_buf_init(&ifc, 65536);
    MUST(ims_ud_ifc(&ifc, &fc, 1));
    MUST(ims_store_profile_put(H.st, IMS_S("p1"), ims_buf_str(&ifc)));
    ims_buf_free(&ifc);

    add_sub("bob");
    MUST(ims_store_impi_add(H.st, IMS_S("bob"), IMS_S("bob@ims.test"), IMS_S("ims.test"),
                            IMS_AUTH_ALL));
    MUST(ims_store_impi_set_aka(H.st, IMS_S("bob@ims.test"), k, opc, amf));
    MUST(ims_store_impi_set_password(H.st, IMS_S("bob@ims.test"), IMS_S("bob-secret"), false));
    add_impu("bob", "sip:bob@ims.test", 0, "p1", "bob@ims.test");
    add_impu("bob", "sip:bob2@ims.test", 0, "p1", "bob@ims.test");

    const uint32_t caps[] = { 1, 9 };
    MUST(ims_store_scscf_put(H.st, IMS_S(SCSCF1), caps, 2));
    MUST(ims_store_scscf_put(H.st, IMS_S(SCSCF2), NULL, 0));
    H.pol.realm = "ims.test";
    H.pol.visited_networks = "*.partner.example";
}

/* The answer as node.c sends it, read back by our decoder. */
static void answer_roundtrip(unsigned cmd, const struct dia_ans *ans)
{
    struct msg *m = NULL;
    CHECK(fd_msg_new(dia_dict_cmd(cmd, false), MSGFL_ALLOC_ETEID, &m) == 0);
    CHECK(dia_encode(m, &dia_t_ans, ans) == 0);
    m = fuzz_dia_wire(m);
    struct dia_ans back;
    struct dia_fail fail;
    CHECK(dia_decode(m, &dia_t_ans, &back, &fail) == 0);
    CHECK(back.present == ans->present);
    fd_msg_free(m);
}

static int handle(unsigned cmd, const union any_req *q, struct hss_result *res)
{
    switch (cmd) {
    case DIA_CMD_UAR: return ims_hss_uar(H.st, &H.pol, &q->uar, res);
    case DIA_CMD_SAR: return ims_hss_sar(H.st, &H.pol, &q->sar, res);
    case DIA_CMD_LIR: return ims_hss_lir(H.st, &H.pol, &q->lir, res);
    case DIA_CMD_MAR: return ims_hss_mar(H.st, &H.pol, &q->mar, res);
    case DIA_CMD_UDR: return ims_hss_udr(H.st, &q->udr, res);
    case DIA_CMD_PUR: return ims_hss_pur(H.st, &q->pur, res);
    default: return IMS_EINVAL;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct dia_table *const tables[8] = { &dia_t_uar, &dia_t_sar, &dia_t_lir,
                                                       &dia_t_mar, NULL,       NULL,
                                                       &dia_t_udr, &dia_t_pur };
    static bool ready;
    if (!ready) {
        fuzz_dia_init();
        setup();
        ready = true;
    }
    if (size == 0 || (data[0] & 0x80) || !tables[data[0] % 8u]) /* answers, RTR, PPR */
        return 0;
    unsigned cmd;
    bool request;
    struct msg *m = fuzz_dia_received(data, size, &cmd, &request);
    if (!m)
        return 0;
    struct fd_pei pei;
    memset(&pei, 0, sizeof(pei));
    union any_req q;
    struct dia_fail fail;
    if (fd_msg_parse_dict(m, fd_g_config->cnf_dict, &pei) != 0 ||
        dia_decode(m, tables[data[0] % 8u], &q, &fail) != 0) {
        fd_msg_free(m); /* refused before any handler: fuzz_dia's part */
        return 0;
    }
    struct hss_result *res = malloc(sizeof(*res));
    CHECK(res != NULL);
    ims_hss_result_init(res);
    int rc = handle(cmd, &q, res);
    if (getenv("FUZZ_HSS_DUMP"))
        fprintf(stderr, "cmd %u: rc %d result %u exp %u\n", cmd, rc, res->ans.result_code,
                res->ans.exp.code);
    if (rc == 0) {
        ims_hss_result_finish(res);
        CHECK(DIA_HAS(&res->ans, DIA_ANS_RESULT) || DIA_HAS(&res->ans, DIA_ANS_EXP));
        answer_roundtrip(cmd, &res->ans); /* before m goes: q's slices point into it */
    } else {
        CHECK(rc == IMS_EBACKEND || rc == IMS_EIO || rc == IMS_ENOMEM || rc == IMS_ELIMIT);
    }
    ims_hss_result_clear(res);
    free(res);
    fd_msg_free(m);
    return 0;
}
