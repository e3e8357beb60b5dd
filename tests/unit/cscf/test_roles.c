/* test_roles - the I-CSCF and S-CSCF apps on a real proxy over the fake
 * transport and clock, with Cx answered by a scripted fake HSS
 * (ims_cscf_new_fake_cx):
 *   I-CSCF: UAR fields (type, IMPI, visited network), Server-Name,
 *   capabilities ranking, failover to the next S-CSCF on 503, a new UAR with
 *   REGISTRATION_AND_CAPABILITIES when the named S-CSCF fails, HSS errors and
 *   the deadline (503 Retry-After / 480), LIR (404, 480, forward);
 *   S-CSCF: MAR scheme from the hint or the default, one challenge per
 *   algorithm, SAR types (registration, re-registration, de-registration),
 *   the 200's headers, AKA re-synchronisation, the wrong-password limit, HSS
 *   errors and the deadline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/err.h"
#include "cfg/cfg.h"
#include "crypto/digest.h"
#include "crypto/encode.h"
#include "cscf/cscf.h"
#include "cscf/registrar.h"
#include "base/alloc.h"
#include "ev/loop.h"
#include "fake_tp_net.h"
#include "proxy/proxy.h"
#include "sip/build.h"
#include "cscf_tests.h"

#define ME_I "192.0.2.1:5070"
#define ME_S "192.0.2.1:6060"
#define PCSCF "192.0.2.4:5060"
#define S7 "192.0.2.7:6060"
#define S8 "192.0.2.8:6060"

static const char conf[] =
    "[core]\nworkers = 1\nroles = icscf,scscf\n"
    "[sip]\nlisten = udp:192.0.2.1:5070\nlisten = udp:192.0.2.1:6060\n"
    "[icscf]\nports = 5070\nscscf = sip:" S7 " 1\nscscf = sip:" S8 " 1,2\n"
    "hss_timeout_ms = 1000\nretry_after = 17\n"
    "[diameter]\nrealm = ims.test\npeer = hss.test 127.0.0.1:3868\n"
    /* last: setup_with() adds to it */
    "[scscf]\nports = 6060\nuri = sip:192.0.2.1:6060\nauth_max_failures = 3\n"
    "hss_timeout_ms = 1000\nretry_after = 19\n";

static const char *const self_names[] = { "192.0.2.1" };

static const char user_data[] =
    "<IMSSubscription><PrivateID>alice@ims.test</PrivateID><ServiceProfile>"
    "<PublicIdentity><Identity>sip:alice@ims.test</Identity></PublicIdentity>"
    "<PublicIdentity><Identity>tel:+15550001</Identity></PublicIdentity>"
    "<PublicIdentity><BarringIndication>1</BarringIndication>"
    "<Identity>sip:alice-barred@ims.test</Identity></PublicIdentity>"
    "<InitialFilterCriteria><Priority>1</Priority><ApplicationServer>"
    "<ServerName>sip:as.ims.test</ServerName></ApplicationServer></InitialFilterCriteria>"
    "</ServiceProfile></IMSSubscription>";

/* The scripted HSS. */
struct fake {
    unsigned n[8];        /* requests by cmd - 300 */
    /* what the next answer of each command says */
    uint32_t code[8];     /* 0: success */
    bool exp[8];
    bool silent[8];       /* never answer */
    bool fail_dereg;      /* deregistration SARs answered UNABLE_TO_COMPLY */
    const char *server_name;
    struct cx_caps caps;
    bool with_caps;
    unsigned digest_algs; /* bits of enum ims_digest_alg the user has HA1s for */
    int default_alg;      /* -1: AKA is the default */
    /* recorded from the last request of each kind */
    int uar_type;
    char uar_impi[64], uar_visited[64];
    char mar_scheme[8][32]; /* every MAR's scheme, in order */
    size_t mar_auth_len;
    uint8_t mar_auth[32];
    int sar_type;
    char sar_impu[64];
    bool own_profiles;    /* SAR: a profile of its IMPU alone, not alice's */
    char lir_impu[64];
    /* answer storage */
    char ha1[IMS_DIGEST_HEX_MAX + 1];
    char user_data[512];
    uint8_t aka_auth[32], aka_xres[8];
};

static struct fake F;

static int fake_cx(void *ctx, unsigned cmd, const void *req, struct dia_ans *a)
{
    struct fake *f = ctx;
    unsigned i = cmd - 300;
    f->n[i]++;
    memset(a, 0, sizeof(*a));
    switch (cmd) {
    case DIA_CMD_UAR: {
        const struct cx_uar *q = req;
        f->uar_type = q->auth_type;
        ims_str_copy(q->impi, f->uar_impi, sizeof(f->uar_impi));
        ims_str_copy(q->visited, f->uar_visited, sizeof(f->uar_visited));
        break;
    }
    case DIA_CMD_MAR: {
        const struct cx_mar *q = req;
        if (f->n[i] <= 8)
            ims_str_copy(q->item.scheme, f->mar_scheme[f->n[i] - 1], 32);
        f->mar_auth_len = q->item.authorization.len;
        if (f->mar_auth_len && f->mar_auth_len <= sizeof(f->mar_auth))
            memcpy(f->mar_auth, q->item.authorization.p, f->mar_auth_len);
        break;
    }
    case DIA_CMD_SAR: {
        const struct cx_sar *q = req;
        f->sar_type = q->sat;
        ims_str_copy(q->n_impu ? q->impu[0] : IMS_STR_NULL, f->sar_impu, sizeof(f->sar_impu));
        break;
    }
    case DIA_CMD_LIR:
        ims_str_copy(((const struct cx_lir *)req)->impu, f->lir_impu, sizeof(f->lir_impu));
        break;
    }
    if (f->silent[i])
        return IMS_ETIMEDOUT;
    if (cmd == DIA_CMD_SAR && f->fail_dereg && f->sar_type != CX_SAT_REGISTRATION &&
        f->sar_type != CX_SAT_RE_REGISTRATION) {
        dia_ans_result(a, DIA_UNABLE_TO_COMPLY);
        return 0;
    }
    if (f->code[i]) {
        if (f->exp[i])
            dia_ans_exp(a, f->code[i]);
        else
            dia_ans_result(a, f->code[i]);
        return 0;
    }
    switch (cmd) {
    case DIA_CMD_UAR:
    case DIA_CMD_LIR:
        dia_ans_exp(a, DIA_FIRST_REGISTRATION);
        if (f->server_name) {
            a->server_name = ims_str_cstr(f->server_name);
            DIA_SET(a, DIA_ANS_SERVER);
        }
        if (f->with_caps) {
            a->caps = f->caps;
            DIA_SET(a, DIA_ANS_CAPS);
        }
        return 0;
    case DIA_CMD_SAR:
        dia_ans_result(a, DIA_SUCCESS);
        a->user_data = IMS_S(user_data);
        if (f->own_profiles) {
            int n = snprintf(f->user_data, sizeof(f->user_data),
                             "<IMSSubscription><PrivateID>alice@ims.test</PrivateID>"
                             "<ServiceProfile><PublicIdentity><Identity>%s</Identity>"
                             "</PublicIdentity></ServiceProfile></IMSSubscription>",
                             f->sar_impu);
            a->user_data = ims_str_make(f->user_data, (size_t)n);
        }
        DIA_SET(a, DIA_ANS_USER_DATA);
        return 0;
    default:
        break;
    }
    /* MAR */
    const struct cx_mar *q = req;
    ims_str s = q->item.scheme;
    struct cx_auth_item *it = &a->items[0];
    enum ims_digest_alg alg = IMS_DIGEST_MD5;
    bool aka = ims_str_eq(s, IMS_S("Digest-AKAv1-MD5")) ||
               (ims_str_eq(s, IMS_S("Unknown")) && f->default_alg < 0);
    if (aka) {
        for (int k = 0; k < 32; k++)
            f->aka_auth[k] = (uint8_t)(k * 7 + f->n[i]);
        for (int k = 0; k < 8; k++)
            f->aka_xres[k] = (uint8_t)(0x40 + k + f->n[i]);
        it->scheme = IMS_S("Digest-AKAv1-MD5");
        it->authenticate = ims_str_make((const char *)f->aka_auth, 32);
        it->authorization = ims_str_make((const char *)f->aka_xres, 8);
        it->present = 1u << CX_ITEM_SCHEME | 1u << CX_ITEM_AUTHENTICATE |
                      1u << CX_ITEM_AUTHORIZATION;
    } else {
        bool sess;
        if (ims_str_eq(s, IMS_S("Unknown")))
            alg = (enum ims_digest_alg)f->default_alg;
        else if (!ims_str_has_caseprefix(s, "Digest-") ||
                 ims_digest_alg_parse(ims_str_make(s.p + 7, s.len - 7), &alg, &sess) != 0)
            alg = IMS_DIGEST_NALG;
        if (alg >= IMS_DIGEST_NALG || !(f->digest_algs & (1u << alg))) {
            dia_ans_exp(a, DIA_ERROR_AUTH_SCHEME_NOT_SUPPORTED);
            return 0;
        }
        ims_digest_ha1(alg, IMS_S("alice@ims.test"), IMS_S("ims.test"), IMS_S("secret"), f->ha1);
        it->scheme = IMS_S("SIP Digest");
        it->digest.realm = IMS_S("ims.test");
        it->digest.algorithm = ims_str_cstr(ims_digest_alg_name(alg));
        it->digest.qop = IMS_S("auth");
        it->digest.ha1 = ims_str_cstr(f->ha1);
        it->digest.present = 0xf;
        it->present = 1u << CX_ITEM_SCHEME | 1u << CX_ITEM_DIGEST;
    }
    a->n_item = 1;
    a->n_items = 1;
    DIA_SET(a, DIA_ANS_ITEMS);
    DIA_SET(a, DIA_ANS_NITEMS);
    dia_ans_result(a, DIA_SUCCESS);
    return 0;
}

/* ------------------------------------------------------------ environment */

static void turn(void);

static struct {
    struct ims_cfg *cfg;
    struct ims_loop *loop;
    struct proxy_shared *sh;
    struct ims_proxy *p;
    struct ims_cscf *c;
    struct fake_tp tp;
} E;

/* The I- and S-CSCF of conf: scscf goes on its [scscf] section, extra
 * after it. */
static int setup_with(const char *scscf, const char *extra)
{
    char err[256], text[sizeof(conf) + 256];
    memset(&E, 0, sizeof(E));
    memset(&F, 0, sizeof(F));
    F.digest_algs = 1u << IMS_DIGEST_MD5 | 1u << IMS_DIGEST_SHA256;
    F.default_alg = IMS_DIGEST_MD5;
    F.server_name = "sip:" S7;
    assert_true((size_t)snprintf(text, sizeof(text), "%s%s%s", conf, scscf, extra) <
                sizeof(text));
    assert_int_equal(ims_cfg_load_string("test", text, &E.cfg, err, sizeof(err)), 0);
    assert_int_equal(ims_loop_new(8192, &E.loop), 0);
    fake_tp_init(&E.tp, E.loop);
    fake_tp_set_local(&E.tp, SIP_PROTO_UDP, ME_I);
    struct proxy_cfg pc = { .max_transactions = 64, .self_names = self_names, .nself = 1 };
    assert_int_equal(ims_proxy_shared_new(1, &pc, &E.sh), 0);
    assert_int_equal(ims_proxy_new(E.sh, 0, E.loop, NULL, &E.p), 0);
    struct proxy_io io = { fake_tp_send, fake_tp_local, &E.tp, NULL };
    ims_proxy_set_io(E.p, &io);
    assert_int_equal(ims_cscf_new_fake_cx(E.cfg, 1, fake_cx, &F, &E.c, err, sizeof(err)), 0);
    assert_int_equal(ims_cscf_worker_init(E.c, 0, E.loop, E.p, err, sizeof(err)), 0);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    return setup_with("min_expires = 1\n", "");
}

/* [limits] impi_rate: one REGISTER a second per IMPI, two at once */
static int setup_rate(void **state)
{
    (void)state;
    return setup_with("min_expires = 1\n",
                      "[limits]\nimpi_rate = 1\nimpi_burst = 2\nretry_after = 23\n");
}

/* registrations of at least 100 s */
static int setup_min100(void **state)
{
    (void)state;
    return setup_with("min_expires = 100\n", "");
}

static int teardown(void **state)
{
    if (getenv("DUMP"))
        for (size_t i = 0; i < E.tp.n; i++)
            fprintf(stderr, "---- to %s\n%s", fake_tp_dst(&E.tp.msgs[i]), E.tp.msgs[i].buf);
    /* let every transaction, deadline and deferred retry play out, posts
     * included, as the running loop would */
    for (int i = 0; i < 80; i++) {
        fake_tp_clock_advance(E.loop, 500);
        turn();
    }
    struct proxy_stats st;
    ims_proxy_stats(E.p, &st);
    ims_cscf_stop(E.c);
    size_t leaked = ims_proxy_free(E.p);
    ims_proxy_shared_free(E.sh);
    fake_tp_free(&E.tp);
    ims_loop_free(E.loop);
    assert_int_equal(ims_cscf_free(E.c), 0);
    ims_cfg_free(E.cfg);
    assert_int_equal(st.reqs_live, 0);
    assert_int_equal(leaked, 0);
    return 0;
}

/* Runs what was posted to the loop (the Cx answers, deferred work) like a
 * loop turn would, reaching into src/ev's private struct as the fake clock
 * does (tests may; nothing in src/ may), then lets 1 ms pass. */
static void turn(void)
{
    fake_tp_run_posts(E.loop);
    fake_tp_clock_advance(E.loop, 1);
}

static void feed(const char *local, const char *src, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void feed(const char *local, const char *src, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    struct sip_tp_rx rx = fake_tp_rx(buf, SIP_PROTO_UDP, src, local);
    ims_proxy_rx(E.p, &rx);
    turn();
    turn();
}

static const struct fake_tp_msg *sent_to(const char *dst, const char *prefix, size_t from)
{
    for (size_t i = from; i < E.tp.n; i++) {
        const struct fake_tp_msg *m = &E.tp.msgs[i];
        if (strcmp(fake_tp_dst(m), dst) == 0 && strncmp(m->buf, prefix, strlen(prefix)) == 0)
            return m;
    }
    return NULL;
}

static void respond(const struct fake_tp_msg *fwd, const char *from, int status, const char *hdrs)
{
    struct sip_msg m;
    struct sip_hdr h[64];
    assert_true(ims_sip_parse(fwd->buf, fwd->len, false, &m, h, 64) > 0);
    struct ims_buf b;
    ims_buf_init(&b, 65536);
    assert_int_equal(ims_sip_build_response(&b, &m, status, NULL, IMS_S("t9"), ims_str_cstr(hdrs),
                                            IMS_STR_NULL, IMS_STR_NULL),
                     0);
    struct sip_tp_rx rx = fake_tp_rx(b.p, SIP_PROTO_UDP, from, ME_I);
    ims_proxy_rx(E.p, &rx);
    ims_buf_free(&b);
    turn();
    turn();
}

#define REGISTER_FMT                                                                               \
    "REGISTER sip:ims.test SIP/2.0\r\n"                                                            \
    "Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK%s\r\n"                                         \
    "Via: SIP/2.0/UDP 10.0.0.9:5099;branch=z9hG4bKue%s;received=192.0.2.10;rport=5099\r\n"         \
    "Max-Forwards: 69\r\n"                                                                         \
    "From: <sip:alice@ims.test>;tag=r1\r\n"                                                        \
    "To: <sip:alice@ims.test>\r\n"                                                                 \
    "Call-ID: reg-1\r\n"                                                                           \
    "CSeq: %d REGISTER\r\n"                                                                        \
    "Contact: <sip:alice@10.0.0.9:5099>\r\n"                                                       \
    "Path: <sip:term-abc@192.0.2.4:5060;lr>\r\n"                                                   \
    "P-Visited-Network-ID: \"visited.test\"\r\n"                                                   \
    "%s"                                                                                           \
    "Expires: %d\r\n"                                                                              \
    "Content-Length: 0\r\n\r\n"

static void reg(const char *local, const char *branch, int cseq, const char *auth, int expires)
{
    feed(local, PCSCF, REGISTER_FMT, branch, branch, cseq, auth, expires);
}

/* ------------------------------------------------------------ I-CSCF */

static void test_icscf_server_name(void **state)
{
    reg(ME_I, "i1", 1, "", 600);
    assert_int_equal(F.n[0], 1);
    assert_int_equal(F.uar_type, CX_UAT_REGISTRATION);
    assert_string_equal(F.uar_impi, "alice@ims.test"); /* derived from To */
    assert_string_equal(F.uar_visited, "visited.test"); /* unquoted */
    const struct fake_tp_msg *fwd = sent_to(S7, "REGISTER ", 0);
    assert_non_null(fwd);
    respond(fwd, S7, 200, "Contact: <sip:alice@10.0.0.9:5099>;expires=600\r\n");
    assert_non_null(sent_to(PCSCF, "SIP/2.0 200", 0));
    /* Expires: 0 everywhere: DE_REGISTRATION; the username is the IMPI */
    size_t from = E.tp.n;
    reg(ME_I, "i2", 2, "Authorization: Digest username=\"a1@ims.test\", realm=\"ims.test\", "
                       "nonce=\"\", uri=\"sip:ims.test\", response=\"\"\r\n", 0);
    assert_int_equal(F.uar_type, CX_UAT_DE_REGISTRATION);
    assert_string_equal(F.uar_impi, "a1@ims.test");
    fwd = sent_to(S7, "REGISTER ", from);
    assert_non_null(fwd);
    respond(fwd, S7, 200, "");
}

static void test_icscf_errors(void **state)
{
    static const struct {
        uint32_t code;
        bool exp;
        const char *want;
    } k[] = {
        { DIA_ERROR_ROAMING_NOT_ALLOWED, true, "SIP/2.0 403" },
        { DIA_AUTHORIZATION_REJECTED, false, "SIP/2.0 403 Forbidden By HSS" },
        { DIA_ERROR_IDENTITY_NOT_REGISTERED, true, "SIP/2.0 403 Not Registered" },
        { DIA_UNABLE_TO_COMPLY, false, "SIP/2.0 503" },
        { DIA_TOO_BUSY, false, "SIP/2.0 503" },
    };
    char b[16];
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
        F.code[0] = k[i].code;
        F.exp[0] = k[i].exp;
        size_t from = E.tp.n;
        snprintf(b, sizeof(b), "e%zu", i);
        reg(ME_I, b, 1, "", 600);
        const struct fake_tp_msg *r = sent_to(PCSCF, k[i].want, from);
        if (!r)
            fail_msg("code %u: no '%s'", k[i].code, k[i].want);
        if (k[i].want[8] == '5')
            assert_non_null(strstr(r->buf, "\r\nRetry-After: 17\r\n"));
        assert_null(sent_to(S7, "REGISTER ", from));
    }
    /* unknown user (or IMPI/IMPU mismatch): no 403 that would tell it from a
     * known one, the REGISTER goes to an [icscf] scscf for its decoy
     * challenge (docs/security.md) */
    static const uint32_t unknown[] = { DIA_ERROR_USER_UNKNOWN, DIA_ERROR_IDENTITIES_DONT_MATCH };
    for (size_t i = 0; i < 2; i++) {
        F.code[0] = unknown[i];
        F.exp[0] = true;
        size_t from = E.tp.n;
        snprintf(b, sizeof(b), "u%zu", i);
        reg(ME_I, b, 1, "", 600);
        assert_null(sent_to(PCSCF, "SIP/2.0 403", from));
        const char *to = S7; /* by a hash of the IMPI: S7 or S8 */
        const struct fake_tp_msg *fwd = sent_to(S7, "REGISTER ", from);
        if (!fwd) {
            to = S8;
            fwd = sent_to(S8, "REGISTER ", from);
        }
        assert_non_null(fwd);
        respond(fwd, to, 401, "");
    }
    /* no answer: the deadline (1 s) answers 503, and nothing stays */
    F.code[0] = 0;
    F.silent[0] = true;
    size_t from = E.tp.n;
    reg(ME_I, "e9", 1, "", 600);
    assert_null(sent_to(PCSCF, "SIP/2.0 5", from));
    fake_tp_clock_advance(E.loop, 990); /* (the feed let 2 ms pass) */
    assert_null(sent_to(PCSCF, "SIP/2.0 5", from));
    fake_tp_clock_advance(E.loop, 10);
    turn();
    assert_non_null(sent_to(PCSCF, "SIP/2.0 503", from));
}

static void test_icscf_caps_failover(void **state)
{
    /* capabilities: mandatory 1, optional 2: S8 (1,2) ranks before S7 (1) */
    F.server_name = NULL;
    F.with_caps = true;
    F.caps.mand[0] = 1;
    F.caps.n_mand = 1;
    F.caps.opt[0] = 2;
    F.caps.n_opt = 1;
    F.caps.present = 3;
    reg(ME_I, "c1", 1, "", 600);
    const struct fake_tp_msg *fwd = sent_to(S8, "REGISTER ", 0);
    assert_non_null(fwd);
    assert_null(sent_to(S7, "REGISTER ", 0));
    /* S8 is unavailable: the next one */
    size_t from = E.tp.n;
    respond(fwd, S8, 503, "");
    fwd = sent_to(S7, "REGISTER ", from);
    assert_non_null(fwd);
    respond(fwd, S7, 200, "");
    assert_non_null(sent_to(PCSCF, "SIP/2.0 200", 0));
    assert_int_equal(F.n[0], 1);
}

/* TS 24.229 §5.3.1.3: an S-CSCF that sends nothing back (not even 100)
 * within [icscf] scscf_timeout_ms (default 4 s) counts as failed: the next
 * one gets the REGISTER long before Timer F (32 s). */
static void test_icscf_noanswer_failover(void **state)
{
    F.server_name = NULL;
    F.with_caps = true;
    F.caps.mand[0] = 1;
    F.caps.n_mand = 1;
    F.caps.opt[0] = 2;
    F.caps.n_opt = 1;
    F.caps.present = 3;
    reg(ME_I, "na1", 1, "", 600);
    assert_non_null(sent_to(S8, "REGISTER ", 0));
    size_t from = E.tp.n;
    fake_tp_clock_advance(E.loop, 3900);
    turn();
    assert_null(sent_to(S7, "REGISTER ", from));
    fake_tp_clock_advance(E.loop, 200);
    turn();
    const struct fake_tp_msg *fwd = sent_to(S7, "REGISTER ", from);
    assert_non_null(fwd);
    respond(fwd, S7, 200, "");
    assert_non_null(sent_to(PCSCF, "SIP/2.0 200", 0));
}

/* The named S-CSCF answers 503 (its HSS or Keystone is down) and no other
 * S-CSCF has the capabilities: the UE gets a 503 with that Retry-After, not
 * 600 "No S-CSCF Available". */
static void test_icscf_busy_scscf(void **state)
{
    reg(ME_I, "b1", 1, "", 600);
    const struct fake_tp_msg *fwd = sent_to(S7, "REGISTER ", 0);
    assert_non_null(fwd);
    F.server_name = NULL;
    F.with_caps = true;
    F.caps.mand[0] = 99; /* nobody has it */
    F.caps.n_mand = 1;
    F.caps.present = 1;
    size_t from = E.tp.n;
    respond(fwd, S7, 503, "Retry-After: 9\r\n");
    const struct fake_tp_msg *r = sent_to(PCSCF, "SIP/2.0 503", from);
    assert_non_null(r);
    assert_non_null(strstr(r->buf, "Retry-After: 9"));
    assert_null(sent_to(PCSCF, "SIP/2.0 600", from));
}

/* TS 24.229 §5.3.1.3: the S-CSCF the HSS named does not answer: a UAR with
 * REGISTRATION_AND_CAPABILITIES, and another S-CSCF. */
static void test_icscf_reuar(void **state)
{
    reg(ME_I, "u1", 1, "", 600);
    const struct fake_tp_msg *fwd = sent_to(S7, "REGISTER ", 0);
    assert_non_null(fwd);
    F.server_name = NULL;
    F.with_caps = true;
    F.caps.mand[0] = 1;
    F.caps.n_mand = 1;
    F.caps.present = 1;
    size_t from = E.tp.n;
    respond(fwd, S7, 503, "Retry-After: 5\r\n");
    assert_int_equal(F.n[0], 2);
    assert_int_equal(F.uar_type, CX_UAT_REG_AND_CAPABILITIES);
    fwd = sent_to(S8, "REGISTER ", from); /* S7 failed: not again */
    assert_non_null(fwd);
    /* the last one fails too: its 503 goes back as it is */
    from = E.tp.n;
    respond(fwd, S8, 503, "Retry-After: 7\r\n");
    const struct fake_tp_msg *r = sent_to(PCSCF, "SIP/2.0 503", from);
    assert_non_null(r);
    assert_non_null(strstr(r->buf, "Retry-After: 7"));
}

#define MESSAGE_FMT                                                                                \
    "MESSAGE %s SIP/2.0\r\n"                                                                       \
    "Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK%s\r\n"                                      \
    "Max-Forwards: 70\r\n"                                                                         \
    "From: <sip:peer@other.test>;tag=m1\r\n"                                                       \
    "To: <%s>\r\n"                                                                                 \
    "Call-ID: msg-%s\r\n"                                                                          \
    "CSeq: 1 MESSAGE\r\n"                                                                          \
    "Content-Length: 0\r\n\r\n"

/* A MESSAGE from peer to alice at the I-CSCF (an LIR first): where the
 * messages it makes start in E.tp. */
static size_t message_to_alice(const char *peer, const char *branch)
{
    size_t from = E.tp.n;
    feed(ME_I, peer, MESSAGE_FMT, "sip:alice@ims.test", branch, "sip:alice@ims.test", branch);
    return from;
}

static void test_icscf_lir(void **state)
{
    const char *peer = "198.51.100.1:5060";
    F.code[2] = DIA_ERROR_USER_UNKNOWN;
    F.exp[2] = true;
    feed(ME_I, peer, MESSAGE_FMT, "sip:nobody@ims.test", "l1", "sip:nobody@ims.test", "l1");
    assert_string_equal(F.lir_impu, "sip:nobody@ims.test");
    assert_non_null(sent_to(peer, "SIP/2.0 404", 0));
    F.code[2] = DIA_ERROR_IDENTITY_NOT_REGISTERED;
    size_t from = E.tp.n;
    feed(ME_I, peer, MESSAGE_FMT, "tel:+15550001;phone-context=x", "l2", "tel:+15550001", "l2");
    assert_string_equal(F.lir_impu, "tel:+15550001");
    assert_non_null(sent_to(peer, "SIP/2.0 480", from));
    /* the HSS refuses: 403; the HSS cannot answer: 503 with Retry-After */
    F.code[2] = DIA_AUTHORIZATION_REJECTED;
    F.exp[2] = false;
    from = message_to_alice(peer, "l4");
    assert_non_null(sent_to(peer, "SIP/2.0 403 Forbidden By HSS", from));
    assert_null(sent_to(S7, "MESSAGE ", from));
    F.code[2] = DIA_UNABLE_TO_COMPLY;
    from = message_to_alice(peer, "l5");
    const struct fake_tp_msg *r = sent_to(peer, "SIP/2.0 503 HSS Unavailable", from);
    assert_non_null(r);
    assert_non_null(strstr(r->buf, "\r\nRetry-After: 17\r\n"));
    assert_null(sent_to(S7, "MESSAGE ", from));
    /* no LIA within hss_timeout_ms: the same 503 */
    F.code[2] = 0;
    F.silent[2] = true;
    from = message_to_alice(peer, "l6");
    assert_null(sent_to(peer, "SIP/2.0 5", from));
    fake_tp_clock_advance(E.loop, 1001);
    turn();
    assert_non_null(sent_to(peer, "SIP/2.0 503 HSS Unavailable", from));
    F.silent[2] = false;
    from = message_to_alice(peer, "l3");
    const struct fake_tp_msg *fwd = sent_to(S7, "MESSAGE sip:alice@ims.test", from);
    assert_non_null(fwd);
    respond(fwd, S7, 200, "");
    assert_non_null(sent_to(peer, "SIP/2.0 200", from));
}

/* ------------------------------------------------------------ S-CSCF */

/* The i-th WWW-Authenticate of a response, parsed (slices into m's buffer). */
static bool challenge_of(const char *rsp, int i, char *nonce, size_t nn, char *alg, size_t an)
{
    const char *p = rsp;
    for (int k = 0; k <= i; k++) {
        p = strstr(p, "\r\nWWW-Authenticate: ");
        if (!p)
            return false;
        p += 2;
    }
    const char *n = strstr(p, "nonce=\"") + 7, *e = strchr(n, '"');
    snprintf(nonce, nn, "%.*s", (int)(e - n), n);
    const char *a = strstr(p, "algorithm=") + 10;
    snprintf(alg, an, "%.*s", (int)strcspn(a, ",\r"), a);
    return true;
}

static void digest_auth(const char *nonce, enum ims_digest_alg alg, const char *pw, unsigned nc,
                        char *out, size_t cap)
{
    char ha1[IMS_DIGEST_HEX_MAX + 1], ha2[IMS_DIGEST_HEX_MAX + 1], resp[IMS_DIGEST_HEX_MAX + 1];
    char ncs[9];
    snprintf(ncs, sizeof(ncs), "%08x", nc);
    ims_digest_ha1(alg, IMS_S("alice@ims.test"), IMS_S("ims.test"), ims_str_cstr(pw), ha1);
    ims_digest_ha2(alg, IMS_S("REGISTER"), IMS_S("sip:ims.test"), NULL, ha2);
    ims_digest_response(alg, ims_str_cstr(ha1), ims_str_cstr(nonce), ims_str_cstr(ncs),
                        IMS_S("c0ffee"), IMS_S("auth"), ims_str_cstr(ha2), resp);
    snprintf(out, cap,
             "Authorization: Digest username=\"alice@ims.test\", realm=\"ims.test\", "
             "nonce=\"%s\", uri=\"sip:ims.test\", response=\"%s\", algorithm=%s, qop=auth, "
             "nc=%s, cnonce=\"c0ffee\"\r\n",
             nonce, resp, ims_digest_alg_name(alg), ncs);
}

static void test_scscf_register(void **state)
{
    char nonce[128], alg[32], auth[1024];
    /* no hint: the IMPI's default (MD5 here), then SHA-256: two challenges,
     * SHA-256 first ([scscf] digest_algorithms default SHA-256,MD5) */
    reg(ME_S, "s1", 1, "", 600);
    assert_int_equal(F.n[3], 2);
    assert_string_equal(F.mar_scheme[0], "Unknown");
    assert_string_equal(F.mar_scheme[1], "Digest-SHA-256");
    const struct fake_tp_msg *r = sent_to(PCSCF, "SIP/2.0 401", 0);
    assert_non_null(r);
    assert_true(challenge_of(r->buf, 0, nonce, sizeof(nonce), alg, sizeof(alg)));
    assert_string_equal(alg, "SHA-256");
    assert_true(challenge_of(r->buf, 1, nonce, sizeof(nonce), alg, sizeof(alg)));
    assert_string_equal(alg, "MD5");
    assert_false(challenge_of(r->buf, 2, nonce, sizeof(nonce), alg, sizeof(alg)));
    /* the MD5 one answered: SAR REGISTRATION, 200 */
    digest_auth(nonce, IMS_DIGEST_MD5, "secret", 1, auth, sizeof(auth));
    size_t from = E.tp.n;
    reg(ME_S, "s2", 2, auth, 600);
    assert_int_equal(F.sar_type, CX_SAT_REGISTRATION);
    r = sent_to(PCSCF, "SIP/2.0 200", from);
    assert_non_null(r);
    assert_non_null(strstr(r->buf, "\r\nContact: <sip:alice@10.0.0.9:5099>;expires=600\r\n"));
    assert_non_null(strstr(r->buf, "\r\nService-Route: <sip:192.0.2.1:6060;lr;orig>\r\n"));
    assert_non_null(strstr(r->buf, "\r\nPath: <sip:term-abc@192.0.2.4:5060;lr>\r\n"));
    /* the implicit set from the User-Data, registered one first, barred left out */
    assert_non_null(
        strstr(r->buf, "\r\nP-Associated-URI: <sip:alice@ims.test>, <tel:+15550001>\r\n"));
    /* found by any identity of the set, with the parsed iFCs */
    struct ims_reg *loc = calloc(1, sizeof(*loc));
    assert_int_equal(ims_loc_get(ims_cscf_loc(E.c), IMS_S("tel:+15550001"), (int64_t)time(NULL), loc),
                     0);
    assert_string_equal(loc->impu, "sip:alice@ims.test");
    assert_non_null(loc->profile);
    assert_int_equal(loc->profile->sps[0].nifc, 1);
    assert_string_equal(loc->contacts[0].path, "<sip:term-abc@192.0.2.4:5060;lr>");
    ims_reg_clear(loc);
    free(loc);
    /* the same nonce again with the next nc: RE_REGISTRATION, no new MAR */
    unsigned mars = F.n[3];
    digest_auth(nonce, IMS_DIGEST_MD5, "secret", 2, auth, sizeof(auth));
    from = E.tp.n;
    reg(ME_S, "s3", 3, auth, 300);
    assert_int_equal(F.n[3], mars);
    assert_int_equal(F.sar_type, CX_SAT_RE_REGISTRATION);
    r = sent_to(PCSCF, "SIP/2.0 200", from);
    assert_non_null(r);
    assert_non_null(strstr(r->buf, "expires=300"));
    /* and Expires: 0: USER_DEREGISTRATION, no Contact in the 200 */
    digest_auth(nonce, IMS_DIGEST_MD5, "secret", 3, auth, sizeof(auth));
    from = E.tp.n;
    reg(ME_S, "s4", 4, auth, 0);
    assert_int_equal(F.sar_type, CX_SAT_USER_DEREGISTRATION);
    r = sent_to(PCSCF, "SIP/2.0 200", from);
    assert_non_null(r);
    assert_null(strstr(r->buf, "Contact:"));
    assert_int_equal(ims_loc_count(ims_cscf_loc(E.c)), 0);
}

/* An authenticated REGISTER with the Contact and Expires lines given ("":
 * none). */
static void reg_auth(const char *branch, int cseq, const char *contact, const char *auth,
                     const char *expires)
{
    feed(ME_S, PCSCF,
         "REGISTER sip:ims.test SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK%s\r\n"
         "Via: SIP/2.0/UDP 10.0.0.9:5099;branch=z9hG4bKue%s;received=192.0.2.10;rport=5099\r\n"
         "Max-Forwards: 69\r\n"
         "From: <sip:alice@ims.test>;tag=r1\r\n"
         "To: <sip:alice@ims.test>\r\n"
         "Call-ID: reg-1\r\n"
         "CSeq: %d REGISTER\r\n"
         "%s"
         "Path: <sip:term-abc@192.0.2.4:5060;lr>\r\n"
         "%s%s"
         "Content-Length: 0\r\n\r\n",
         branch, branch, cseq, contact, auth, expires);
}

/* alice's REGISTER answering the MD5 challenge nonce with count nc (CSeq
 * nc + 1), with the Contact and Expires lines given: the response to the
 * P-CSCF that starts with want, or NULL. */
static const struct fake_tp_msg *authed(const char *nonce, unsigned nc, const char *contact,
                                        const char *expires, const char *want)
{
    char auth[1024], branch[16];
    digest_auth(nonce, IMS_DIGEST_MD5, "secret", nc, auth, sizeof(auth));
    snprintf(branch, sizeof(branch), "m%u", nc);
    size_t from = E.tp.n;
    reg_auth(branch, (int)nc + 1, contact, auth, expires);
    return sent_to(PCSCF, want, from);
}

/* RFC 3261 §10.3 at the S-CSCF, after authentication: 423 with Min-Expires
 * (step 7), a query without Contact (step 8), "Contact: *" only with
 * Expires: 0 (step 6); none of them reaches the HSS with a SAR. */
static void test_scscf_registrar_rules(void **state)
{
    (void)state;
    char nonce[128], alg[32];
    reg(ME_S, "m0", 1, "", 600);
    const struct fake_tp_msg *r = sent_to(PCSCF, "SIP/2.0 401", 0);
    assert_non_null(r);
    assert_true(challenge_of(r->buf, 1, nonce, sizeof(nonce), alg, sizeof(alg)));
    assert_string_equal(alg, "MD5");
    const char *contact = "Contact: <sip:alice@10.0.0.9:5099>\r\n";
    /* too brief */
    r = authed(nonce, 1, contact, "Expires: 50\r\n", "SIP/2.0 423");
    assert_non_null(r);
    assert_non_null(strstr(r->buf, "\r\nMin-Expires: 100\r\n"));
    /* a query before any registration: 200 without Contact */
    r = authed(nonce, 2, "", "", "SIP/2.0 200");
    assert_non_null(r);
    assert_null(strstr(r->buf, "Contact:"));
    assert_int_equal(F.n[DIA_CMD_SAR - 300], 0);
    /* registered for 600 s, then a query lists the binding, nothing changes */
    assert_non_null(authed(nonce, 3, contact, "Expires: 600\r\n", "SIP/2.0 200"));
    assert_int_equal(F.n[DIA_CMD_SAR - 300], 1);
    r = authed(nonce, 4, "", "", "SIP/2.0 200");
    assert_non_null(r);
    assert_non_null(strstr(r->buf, "\r\nContact: <sip:alice@10.0.0.9:5099>;expires="));
    size_t kept = ims_loc_count(ims_cscf_loc(E.c)); /* (its implicit set's entries) */
    assert_true(kept > 0);
    /* "*" with a non-zero Expires: 400, the binding stays */
    assert_non_null(authed(nonce, 5, "Contact: *\r\n", "Expires: 600\r\n", "SIP/2.0 400"));
    assert_int_equal(F.n[DIA_CMD_SAR - 300], 1);
    assert_int_equal(ims_loc_count(ims_cscf_loc(E.c)), kept);
    /* "*" with Expires: 0 removes it (USER_DEREGISTRATION) */
    assert_non_null(authed(nonce, 6, "Contact: *\r\n", "Expires: 0\r\n", "SIP/2.0 200"));
    assert_int_equal(F.sar_type, CX_SAT_USER_DEREGISTRATION);
    assert_int_equal(ims_loc_count(ims_cscf_loc(E.c)), 0);
}

static void test_scscf_hint_and_wrong(void **state)
{
    char nonce[128], alg[32], auth[1024];
    const char *hint = "Authorization: Digest username=\"alice@ims.test\", realm=\"ims.test\", "
                       "nonce=\"\", uri=\"sip:ims.test\", response=\"\", algorithm=SHA-256\r\n";
    reg(ME_S, "w1", 1, hint, 600);
    assert_int_equal(F.n[3], 1);
    assert_string_equal(F.mar_scheme[0], "Digest-SHA-256");
    const struct fake_tp_msg *r = sent_to(PCSCF, "SIP/2.0 401", 0);
    assert_non_null(r);
    assert_true(challenge_of(r->buf, 0, nonce, sizeof(nonce), alg, sizeof(alg)));
    assert_false(challenge_of(r->buf, 1, nonce, sizeof(nonce), alg, sizeof(alg)));
    /* wrong: 401, 401, then 403 */
    for (int i = 0; i < 3; i++) {
        size_t from = E.tp.n;
        char b[8];
        snprintf(b, sizeof(b), "w%d", i + 2);
        digest_auth(nonce, IMS_DIGEST_SHA256, "wrong", 1, auth, sizeof(auth));
        reg(ME_S, b, i + 2, auth, 600);
        r = sent_to(PCSCF, i < 2 ? "SIP/2.0 401" : "SIP/2.0 403", from);
        assert_non_null(r);
        if (i < 2)
            assert_true(challenge_of(r->buf, 0, nonce, sizeof(nonce), alg, sizeof(alg)));
    }
    assert_int_equal(F.n[DIA_CMD_SAR - 300], 0); /* no SAR */
}

/* A username with a control byte is refused before any MAR: a NUL in it
 * made the copy the S-CSCF works with "" (fuzz_cscf). */
static void test_scscf_username_ctl(void **state)
{
    const char *ctl = "Authorization: Digest username=\"ali\x01" "ce@ims.test\", "
                      "realm=\"ims.test\", nonce=\"\", uri=\"sip:ims.test\", response=\"\"\r\n";
    reg(ME_S, "u1", 1, ctl, 600);
    assert_non_null(sent_to(PCSCF, "SIP/2.0 400 Bad Authorization", 0));
    assert_int_equal(F.n[DIA_CMD_MAR - 300], 0);
}

static void test_scscf_aka_resync(void **state)
{
    const char *hint = "Authorization: Digest username=\"alice@ims.test\", realm=\"ims.test\", "
                       "nonce=\"\", uri=\"sip:ims.test\", response=\"\", algorithm=AKAv1-MD5\r\n";
    reg(ME_S, "a1", 1, hint, 600);
    assert_string_equal(F.mar_scheme[0], "Digest-AKAv1-MD5");
    const struct fake_tp_msg *r = sent_to(PCSCF, "SIP/2.0 401", 0);
    assert_non_null(r);
    char nonce[128], alg[32], auth[1024], auts[32];
    assert_true(challenge_of(r->buf, 0, nonce, sizeof(nonce), alg, sizeof(alg)));
    assert_string_equal(alg, "AKAv1-MD5");
    uint8_t rand[16], a14[14];
    memcpy(rand, F.aka_auth, 16);
    for (int i = 0; i < 14; i++)
        a14[i] = (uint8_t)(0x90 + i);
    ims_b64_encode(a14, sizeof(a14), auts);
    snprintf(auth, sizeof(auth),
             "Authorization: Digest username=\"alice@ims.test\", realm=\"ims.test\", "
             "nonce=\"%s\", uri=\"sip:ims.test\", response=\"00\", algorithm=AKAv1-MD5, "
             "auts=\"%s\", qop=auth, nc=00000001, cnonce=\"x\"\r\n",
             nonce, auts);
    size_t from = E.tp.n;
    reg(ME_S, "a2", 2, auth, 600);
    /* MAR with SIP-Authorization = RAND || AUTS, then a fresh challenge */
    assert_int_equal(F.n[3], 2);
    assert_int_equal(F.mar_auth_len, 30);
    assert_memory_equal(F.mar_auth, rand, 16);
    assert_memory_equal(F.mar_auth + 16, a14, 14);
    assert_non_null(sent_to(PCSCF, "SIP/2.0 401", from));
}

static void test_scscf_hss_errors(void **state)
{
    /* an unknown user gets a 401 like a known one (docs/security.md) */
    F.code[3] = DIA_ERROR_USER_UNKNOWN;
    F.exp[3] = true;
    reg(ME_S, "h1", 1, "", 600);
    assert_null(sent_to(PCSCF, "SIP/2.0 403", 0));
    assert_non_null(sent_to(PCSCF, "SIP/2.0 401", 0));
    /* the user has no HA1 for the hinted algorithm */
    F.code[3] = DIA_ERROR_AUTH_SCHEME_NOT_SUPPORTED;
    size_t from = E.tp.n;
    reg(ME_S, "h2", 2, "", 600);
    assert_non_null(sent_to(PCSCF, "SIP/2.0 403", from));
    /* no answer in hss_timeout_ms: 503 with Retry-After */
    F.code[3] = 0;
    F.silent[3] = true;
    from = E.tp.n;
    reg(ME_S, "h3", 3, "", 600);
    fake_tp_clock_advance(E.loop, 1001);
    turn();
    const struct fake_tp_msg *r = sent_to(PCSCF, "SIP/2.0 503", from);
    assert_non_null(r);
    assert_non_null(strstr(r->buf, "\r\nRetry-After: 19\r\n"));
}

/* [limits] impi_rate at the S-CSCF: past its bucket an IMPI's REGISTER gets
 * 503 with Retry-After before any MAR; another IMPI has its own bucket.
 * (The refill, on explicit clocks: test_lockout.c.) */
static void test_scscf_impi_rate(void **state)
{
    (void)state;
    for (int i = 1; i <= 2; i++) {
        size_t from = E.tp.n;
        char b[8];
        snprintf(b, sizeof(b), "q%d", i);
        reg(ME_S, b, i, "", 600);
        assert_non_null(sent_to(PCSCF, "SIP/2.0 401", from));
    }
    unsigned mars = F.n[DIA_CMD_MAR - 300]; /* (one per Digest algorithm offered) */
    assert_true(mars >= 2);
    size_t from = E.tp.n;
    reg(ME_S, "q3", 3, "", 600);
    const struct fake_tp_msg *r = sent_to(PCSCF, "SIP/2.0 503 Rate Limited", from);
    assert_non_null(r);
    assert_non_null(strstr(r->buf, "\r\nRetry-After: 23\r\n"));
    assert_null(sent_to(PCSCF, "SIP/2.0 401", from));
    assert_int_equal(F.n[DIA_CMD_MAR - 300], mars);
    /* bob (the Authorization's username) is another IMPI: not limited */
    from = E.tp.n;
    reg(ME_S, "q4", 4,
        "Authorization: Digest username=\"bob@ims.test\", realm=\"ims.test\", nonce=\"\", "
        "uri=\"sip:ims.test\", response=\"\"\r\n",
        600);
    assert_non_null(sent_to(PCSCF, "SIP/2.0 401", from));
    assert_true(F.n[DIA_CMD_MAR - 300] > mars);
}

/* A REGISTER of impu by alice's IMPI straight to the S-CSCF, its Call-ID
 * and branch made of tag, with the Authorization line auth. */
static void reg_as(const char *impu, const char *tag, int cseq, const char *auth)
{
    feed(ME_S, PCSCF,
         "REGISTER sip:ims.test SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK%s-%d\r\n"
         "Max-Forwards: 69\r\n"
         "From: <%s>;tag=r1\r\n"
         "To: <%s>\r\n"
         "Call-ID: reg-%s\r\n"
         "CSeq: %d REGISTER\r\n"
         "Contact: <sip:ue@10.0.0.9:5099>\r\n"
         "Path: <sip:term-abc@192.0.2.4:5060;lr>\r\n"
         "%sExpires: 600\r\n"
         "Content-Length: 0\r\n\r\n",
         tag, cseq, impu, impu, tag, cseq, auth);
}

/* impu registered by alice: challenged (MD5 asked for), then the answer;
 * the S-CSCF's final response to it. */
static const struct fake_tp_msg *register_as(const char *impu, const char *tag)
{
    char nonce[128], alg[32], auth[1024];
    size_t from = E.tp.n;
    /* the IMPI named (TS 24.229 §5.1.1.2.1), else the S-CSCF derives one
     * from the IMPU */
    reg_as(impu, tag, 1,
           "Authorization: Digest username=\"alice@ims.test\", realm=\"ims.test\", "
           "nonce=\"\", uri=\"sip:ims.test\", response=\"\", algorithm=MD5\r\n");
    const struct fake_tp_msg *r = sent_to(PCSCF, "SIP/2.0 401", from);
    assert_non_null(r);
    assert_true(challenge_of(r->buf, 0, nonce, sizeof(nonce), alg, sizeof(alg)));
    assert_string_equal(alg, "MD5");
    digest_auth(nonce, IMS_DIGEST_MD5, "secret", 1, auth, sizeof(auth));
    from = E.tp.n;
    reg_as(impu, tag, 2, auth);
    assert_true(E.tp.n > from);
    return &E.tp.msgs[E.tp.n - 1];
}

/* TS 24.229 §5.4.1.2.1: a barred IMPU of a set with unbarred ones passes
 * the HSS but not the S-CSCF: 403, and the registration the SAR made at
 * the HSS is taken back with a USER_DEREGISTRATION. */
static void test_scscf_barred_identity(void **state)
{
    (void)state;
    const struct fake_tp_msg *r = register_as("sip:alice-barred@ims.test", "b");
    assert_memory_equal(r->buf, "SIP/2.0 403 Identity Barred\r\n", 29);
    assert_int_equal(F.n[DIA_CMD_SAR - 300], 2);
    assert_int_equal(F.sar_type, CX_SAT_USER_DEREGISTRATION);
    assert_string_equal(F.sar_impu, "sip:alice-barred@ims.test");
    assert_int_equal(ims_loc_count(ims_cscf_loc(E.c)), 0);
    /* alice's own IMPU of the set registers */
    r = register_as("sip:alice@ims.test", "a");
    assert_memory_equal(r->buf, "SIP/2.0 200", 11);
    assert_int_equal(F.sar_type, CX_SAT_REGISTRATION);
    assert_true(ims_loc_count(ims_cscf_loc(E.c)) > 0);
}

/* Lets ms of the fake clock pass, a loop turn every 100 ms (the sweep runs
 * every second). */
static void pass_ms(unsigned ms)
{
    for (unsigned t = 0; t < ms; t += 100) {
        fake_tp_clock_advance(E.loop, 100);
        turn();
    }
}

/* A deregistration SAR the HSS does not take (it would keep the user
 * registered here, TS 29.228 §6.1.2) is sent again from the sweep, 1 s and
 * then 2 s later, until an answer comes, and never after that; one whose
 * identity is registered here again by then is dropped (a late one would
 * take the new registration's implicit set back at the HSS). */
static void test_scscf_dereg_retry(void **state)
{
    (void)state;
    const unsigned SAR = DIA_CMD_SAR - 300;
    /* two registrations the HSS takes and the S-CSCF refuses; neither undoing
     * reaches the HSS */
    F.fail_dereg = true;
    const struct fake_tp_msg *r = register_as("sip:alice-barred@ims.test", "b");
    assert_memory_equal(r->buf, "SIP/2.0 403 Identity Barred\r\n", 29);
    r = register_as("sip:alice-barred@ims.test", "b0");
    assert_memory_equal(r->buf, "SIP/2.0 403 Identity Barred\r\n", 29);
    assert_int_equal(F.n[SAR], 4);
    F.sar_type = -1;
    pass_ms(900); /* not yet due */
    assert_int_equal(F.n[SAR], 4);
    pass_ms(1200); /* a sweep after 1 s: both sent again, refused again */
    assert_int_equal(F.n[SAR], 6);
    assert_int_equal(F.sar_type, CX_SAT_USER_DEREGISTRATION);
    assert_string_equal(F.sar_impu, "sip:alice-barred@ims.test");
    pass_ms(900); /* the next ones wait 2 s */
    assert_int_equal(F.n[SAR], 6);
    F.fail_dereg = false; /* the HSS is back */
    pass_ms(2200);
    assert_int_equal(F.n[SAR], 8);
    assert_int_equal(F.sar_type, CX_SAT_USER_DEREGISTRATION);
    pass_ms(70000); /* answered: done */
    assert_int_equal(F.n[SAR], 8);

    /* lost again, and alice registers her set meanwhile: the retry goes */
    F.fail_dereg = true;
    r = register_as("sip:alice-barred@ims.test", "b2");
    assert_memory_equal(r->buf, "SIP/2.0 403 Identity Barred\r\n", 29);
    assert_int_equal(F.n[SAR], 10);
    F.fail_dereg = false;
    r = register_as("sip:alice@ims.test", "a");
    assert_memory_equal(r->buf, "SIP/2.0 200", 11);
    assert_int_equal(F.n[SAR], 11);
    assert_int_equal(F.sar_type, CX_SAT_REGISTRATION);
    pass_ms(70000);
    assert_int_equal(F.n[SAR], 11);
    assert_int_equal(F.sar_type, CX_SAT_REGISTRATION);
}

/* [scscf] max_registrations: past it a first registration gets 503 with
 * Retry-After after its SAR, which is taken back; the registered stay. */
static int setup_max16(void **state)
{
    (void)state;
    setup_with("min_expires = 1\nmax_registrations = 16\n", "");
    F.own_profiles = true;
    return 0;
}

static void test_scscf_too_many_registrations(void **state)
{
    (void)state;
    char impu[64], tag[16];
    const struct fake_tp_msg *r = NULL;
    int i;
    for (i = 0; i < 64; i++) {
        snprintf(impu, sizeof(impu), "sip:u%d@ims.test", i);
        snprintf(tag, sizeof(tag), "u%d", i);
        r = register_as(impu, tag);
        if (strncmp(r->buf, "SIP/2.0 200", 11) != 0)
            break;
        assert_int_equal(F.sar_type, CX_SAT_REGISTRATION);
    }
    assert_true(i >= 16 && i < 64);
    assert_memory_equal(r->buf, "SIP/2.0 503 Too Many Registrations\r\n", 36);
    assert_non_null(strstr(r->buf, "\r\nRetry-After: 60\r\n"));
    assert_int_equal(F.n[DIA_CMD_SAR - 300], (unsigned)i + 2);
    assert_int_equal(F.sar_type, CX_SAT_USER_DEREGISTRATION);
    assert_string_equal(F.sar_impu, impu);
    assert_int_equal(ims_loc_count(ims_cscf_loc(E.c)), (size_t)i);
    /* one of the registered re-registers: room for what it has */
    r = register_as("sip:u0@ims.test", "again");
    assert_memory_equal(r->buf, "SIP/2.0 200", 11);
    assert_int_equal(F.sar_type, CX_SAT_RE_REGISTRATION);
}

/* The first final response to the P-CSCF since from, or NULL. */
static const struct fake_tp_msg *final_since(size_t from)
{
    for (size_t i = from; i < E.tp.n; i++) {
        const struct fake_tp_msg *m = &E.tp.msgs[i];
        if (strcmp(fake_tp_dst(m), PCSCF) == 0 && strncmp(m->buf, "SIP/2.0 1", 9) != 0 &&
            strncmp(m->buf, "SIP/2.0 ", 8) == 0)
            return m;
    }
    return NULL;
}

/* The answer to an authenticated REGISTER tells the truth about the store:
 * whichever one allocation fails, a 200 means the binding is kept and an
 * error answer means it is not, and a registration the HSS took (an SAA
 * the S-CSCF saw) is then taken back there (RFC 3261 10.3: the registrar
 * answers once the bindings are updated).  The proxy's last resort, "500
 * Request Not Handled" when not even the S-CSCF's answer could be built,
 * is out of the S-CSCF's hands. */
static void test_scscf_answer_matches_store(void **state)
{
    unsigned long n;
    unsigned errors = 0, oks = 0;
    for (n = 1; n < 4000; n++) {
        setup(state);
        char nonce[128], alg[32], auth[1024];
        size_t from = E.tp.n;
        reg_as("sip:alice@ims.test", "m", 1,
               "Authorization: Digest username=\"alice@ims.test\", realm=\"ims.test\", "
               "nonce=\"\", uri=\"sip:ims.test\", response=\"\", algorithm=MD5\r\n");
        const struct fake_tp_msg *r = sent_to(PCSCF, "SIP/2.0 401", from);
        assert_non_null(r);
        assert_true(challenge_of(r->buf, 0, nonce, sizeof(nonce), alg, sizeof(alg)));
        digest_auth(nonce, IMS_DIGEST_MD5, "secret", 1, auth, sizeof(auth));
        unsigned sars = F.n[DIA_CMD_SAR - 300];
        from = E.tp.n;
        ims_alloc_fail_at(n, 0);
        reg_as("sip:alice@ims.test", "m", 2, auth);
        unsigned long used = ims_alloc_count();
        ims_alloc_fail_at(0, 0);
        const struct fake_tp_msg *fin = final_since(from);
        size_t stored = ims_loc_count(ims_cscf_loc(E.c));
        if (fin && strncmp(fin->buf, "SIP/2.0 200", 11) == 0) {
            assert_true(stored > 0);
            oks++;
        } else if (fin && strncmp(fin->buf, "SIP/2.0 500 Request Not Handled", 31) != 0) {
            if (stored)
                fail_msg("allocation %lu: %.40s with the binding stored", n, fin->buf);
            /* (503 HSS Unavailable: the S-CSCF never saw an SAA) */
            bool saa_seen = strncmp(fin->buf, "SIP/2.0 503 HSS Unavailable", 27) != 0;
            if (saa_seen && F.n[DIA_CMD_SAR - 300] > sars &&
                F.sar_type != CX_SAT_USER_DEREGISTRATION)
                fail_msg("allocation %lu: %.40s after SAR type %d, not taken back", n, fin->buf,
                         F.sar_type);
            errors++;
        }
        teardown(state);
        if (used < n)
            break;
    }
    print_message("answer/store runs: %lu (%u answered 200, %u refused)\n", n, oks, errors);
    assert_true(n > 10 && n < 4000);
    assert_true(oks > 0 && errors > 0);
}

/* I-CSCF and S-CSCF flows with nothing asserted: the allocation-failure runs. */
static void scenario(void)
{
    char nonce[128] = "", alg[32], auth[1024];
    size_t from = E.tp.n;
    reg(ME_I, "f1", 1, "", 600);
    const struct fake_tp_msg *fwd = sent_to(S7, "REGISTER ", from);
    if (fwd) {
        struct sip_msg m;
        struct sip_hdr h[64];
        struct ims_buf b;
        ims_buf_init(&b, 65536);
        if (ims_sip_parse(fwd->buf, fwd->len, false, &m, h, 64) > 0 &&
            ims_sip_build_response(&b, &m, 200, NULL, IMS_S("t9"), IMS_STR_NULL, IMS_STR_NULL,
                                   IMS_STR_NULL) == 0) {
            struct sip_tp_rx rx = fake_tp_rx(b.p, SIP_PROTO_UDP, S7, ME_I);
            ims_proxy_rx(E.p, &rx);
        }
        ims_buf_free(&b);
        turn();
    }
    from = E.tp.n;
    reg(ME_S, "f2", 2, "", 600);
    const struct fake_tp_msg *r = sent_to(PCSCF, "SIP/2.0 401", from);
    if (r && challenge_of(r->buf, 1, nonce, sizeof(nonce), alg, sizeof(alg))) {
        digest_auth(nonce, IMS_DIGEST_MD5, "secret", 1, auth, sizeof(auth));
        reg(ME_S, "f3", 3, auth, 600);
        digest_auth(nonce, IMS_DIGEST_MD5, "secret", 2, auth, sizeof(auth));
        reg(ME_S, "f4", 4, auth, 0);
    }
}

static void test_roles_alloc_failures(void **state)
{
    unsigned long n;
    unsigned long only = getenv("FAILN") ? strtoul(getenv("FAILN"), NULL, 10) : 0;
    for (n = only ? only : 2; n < 8000; n++) {
        setup(state);
        if (only)
            ims_log_set_level(IMS_LOG_DEBUG);
        ims_alloc_fail_at(n / 2, (int)(n % 2 == 0));
        scenario();
        unsigned long used = ims_alloc_count();
        ims_alloc_fail_at(0, 0);
        if (getenv("FAILN_TRACE"))
            fprintf(stderr, "run %lu\n", n);
        teardown(state);
        if (used < n / 2)
            break;
    }
    print_message("allocation failure runs: %lu\n", n);
    assert_true(n > 10 && n < 8000);
}

int run_roles_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_icscf_server_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_icscf_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_icscf_caps_failover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_icscf_noanswer_failover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_icscf_busy_scscf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_icscf_reuar, setup, teardown),
        cmocka_unit_test_setup_teardown(test_icscf_lir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scscf_register, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scscf_hint_and_wrong, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scscf_username_ctl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scscf_aka_resync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scscf_hss_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scscf_impi_rate, setup_rate, teardown),
        cmocka_unit_test_setup_teardown(test_scscf_registrar_rules, setup_min100, teardown),
        cmocka_unit_test_setup_teardown(test_scscf_barred_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scscf_dereg_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scscf_too_many_registrations, setup_max16, teardown),
        cmocka_unit_test(test_scscf_answer_matches_store),
        cmocka_unit_test(test_roles_alloc_failures),
    };
    return cmocka_run_group_tests_name("roles", tests, NULL, NULL);
}
