/* fuzz_cscf.c - libFuzzer harness for the CSCFs past the parser: what the
 * P-, I- and S-CSCF do with requests and responses that parse.
 *
 * One input is one scenario on a fresh environment: the three roles of one
 * worker on a real proxy over the fake transport and clock
 * (tests/helpers/fake_tp_net), with Cx answered by a scripted HSS.  Messages
 * the roles send to one another are delivered back, as udp_local does in a
 * one-process deployment; requests to anyone else (the UE, an AS) are
 * answered as the input's mode says.  Then the clock runs past every timer.
 *
 * Input: a mode byte, then messages separated by "\n--\n", each starting
 * with a letter that names who sends it to whom (routes[] below).  Mode:
 *   bit 0     alice registers through P, I and S first (a real Digest
 *             registration the harness answers), so requests from her
 *             address are a registered UE's, with her Service-Route
 *   bits 1-2  peers answer requests: not at all, 200, 486, 180 then 200
 *   bits 3-4  the HSS for anyone but alice: unknown user, no answer,
 *             a user like alice (bob's profile), unable to comply
 *   bit 5     the AS proxies what it gets back to the S-CSCF instead of
 *             answering it
 *   bits 6-7  alice registers over UDP, TCP, TLS (as an RFC 5626 client:
 *             +sip.instance, reg-id), UDP
 *
 * What must hold for any input (CHECK traps, with the input):
 *   - every request the roles send, and every response but an error answer
 *     to an incomplete request (which copies no more of it than it has),
 *     parses: they never emit what their own parser refuses;
 *   - once the clock has run past every timer, no request state is left and
 *     the proxy frees no live transaction: nothing leaks (ASan/LSan report
 *     memory, this reports state);
 *   - and ASan/UBSan find nothing on the way.
 * Built without libFuzzer, fuzz_cscf_replay runs the corpus in every build;
 * with FUZZ_CSCF_DUMP set it prints every message sent after the
 * registration (to write a corpus file, or read what one does). */
#define _GNU_SOURCE /* memmem */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "cfg/cfg.h"
#include "crypto/digest.h"
#include "cscf/cscf.h"
#include "ev/loop.h"
#include "fake_tp_net.h"
#include "proxy/proxy.h"
#include "sip/build.h"
#include "sip/msg.h"

#include "fuzz.h"

#define ME "192.0.2.1"
#define P_PORT 5060
#define P_TLS_PORT 5061
#define I_PORT 5070
#define S_PORT 6060
#define UE "10.0.0.9:5099"
#define AS "192.0.2.20:5080"

static const char conf[] =
    "[core]\nworkers = 1\nroles = pcscf,icscf,scscf\n"
    "[sip]\nlisten = udp:" ME ":5060\nlisten = udp:" ME ":5070\nlisten = udp:" ME ":6060\n"
    "listen = tcp:" ME ":5060\nlisten = tls:" ME ":5061\n"
    /* the key files are not read: nothing listens */
    "tls_cert = /dev/null\ntls_key = /dev/null\n"
    "[pcscf]\nports = 5060,5061\nicscf = sip:" ME ":5070\nmax_ues = 64\n"
    "[icscf]\nports = 5070\nscscf = sip:" ME ":6060 1\nhss_timeout_ms = 1000\n"
    "[scscf]\nports = 6060\nuri = sip:" ME ":6060\nicscf = sip:" ME ":5070\n"
    "max_registrations = 64\nmin_expires = 1\nauth_max_failures = 3\n"
    "hss_timeout_ms = 1000\nas_timeout_ms = 500\n"
    "[lockout]\nmax_entries = 64\n"
    "[diameter]\nrealm = ims.test\npeer = hss.test 127.0.0.1:3868\n";

static const char *const self_names[] = { ME };

#define IFC(prio, method, sc, as, dh)                                                              \
    "<InitialFilterCriteria><Priority>" #prio "</Priority><TriggerPoint>"                          \
    "<ConditionTypeCNF>1</ConditionTypeCNF>"                                                       \
    "<SPT><ConditionNegated>0</ConditionNegated><Group>0</Group><Method>" method                   \
    "</Method></SPT><SPT><ConditionNegated>0</ConditionNegated><Group>1</Group>"                   \
    "<SessionCase>" #sc "</SessionCase></SPT></TriggerPoint><ApplicationServer><ServerName>"       \
    "sip:" as "</ServerName><DefaultHandling>" #dh "</DefaultHandling></ApplicationServer>"        \
    "</InitialFilterCriteria>"

/* Every path the S-CSCF has for a profile: originating and terminating
 * iFCs (continue and terminate on AS failure), a third-party REGISTER, an
 * alias and a barred identity in the implicit set. */
static const char alice_data[] =
    "<IMSSubscription><PrivateID>alice@ims.test</PrivateID><ServiceProfile>"
    "<PublicIdentity><Identity>sip:alice@ims.test</Identity></PublicIdentity>"
    "<PublicIdentity><Identity>tel:+15550001</Identity></PublicIdentity>"
    "<PublicIdentity><BarringIndication>1</BarringIndication>"
    "<Identity>sip:alice-barred@ims.test</Identity></PublicIdentity>"
    IFC(0, "INVITE", 0, AS, 0) IFC(1, "MESSAGE", 0, AS, 1) IFC(2, "INVITE", 1, AS, 0)
    IFC(3, "REGISTER", 0, AS, 0)
    "</ServiceProfile></IMSSubscription>";

static const char bob_data[] =
    "<IMSSubscription><PrivateID>bob@ims.test</PrivateID><ServiceProfile>"
    "<PublicIdentity><Identity>sip:bob@ims.test</Identity></PublicIdentity>"
    IFC(0, "INVITE", 2, AS, 0)
    "</ServiceProfile></IMSSubscription>";

/* Who sends a message to whom: the first letter of each message. */
static const struct route {
    char letter;
    const char *src;
    unsigned dport;
    enum sip_proto proto;
} routes[] = {
    { 'A', UE, P_PORT, SIP_PROTO_UDP },               /* alice's UE to the P-CSCF */
    { 'B', "10.0.0.66:5099", P_PORT, SIP_PROTO_UDP }, /* a UE that never registered */
    { 'C', ME ":5060", I_PORT, SIP_PROTO_UDP },       /* our P-CSCF to our I-CSCF */
    { 'D', "192.0.2.4:5060", I_PORT, SIP_PROTO_UDP }, /* another network's P-CSCF */
    { 'E', ME ":5070", S_PORT, SIP_PROTO_UDP },       /* our I-CSCF to our S-CSCF */
    { 'F', "192.0.2.5:5070", S_PORT, SIP_PROTO_UDP }, /* another I-CSCF */
    { 'G', AS, S_PORT, SIP_PROTO_UDP },               /* an application server */
    { 'H', UE, P_PORT, SIP_PROTO_TCP },               /* alice's UE over TCP */
    { 'T', UE, P_TLS_PORT, SIP_PROTO_TLS },           /* alice's UE over TLS */
};

enum { HSS_UNKNOWN, HSS_SILENT, HSS_LIKE_ALICE, HSS_UNABLE };

static struct {
    struct ims_cfg *cfg;
    struct ims_loop *loop;
    struct proxy_shared *sh;
    struct ims_proxy *p;
    struct ims_cscf *c;
    struct fake_tp tp;
    size_t seen;     /* tp messages handled */
    unsigned answer; /* mode bits 1-2 */
    unsigned hss;    /* mode bits 3-4 */
    char ha1[IMS_DIGEST_HEX_MAX + 1];
    unsigned deliveries;
    bool as_relays;  /* mode bit 5 */
    enum sip_proto reg_proto; /* mode bits 6-7 */
    bool dump; /* FUZZ_CSCF_DUMP set: every message sent, on stderr */
} E;

/* ------------------------------------------------------------ the HSS */

static bool is_alice(ims_str id)
{
    return ims_str_eq(id, IMS_S("alice@ims.test")) || ims_str_eq(id, IMS_S("sip:alice@ims.test")) ||
           ims_str_eq(id, IMS_S("tel:+15550001"));
}

static int fake_cx(void *ctx, unsigned cmd, const void *req, struct dia_ans *a)
{
    (void)ctx;
    memset(a, 0, sizeof(*a));
    ims_str who = IMS_STR_NULL;
    switch (cmd) {
    case DIA_CMD_UAR: who = ((const struct cx_uar *)req)->impi; break;
    case DIA_CMD_MAR: who = ((const struct cx_mar *)req)->impi; break;
    case DIA_CMD_SAR: {
        const struct cx_sar *q = req;
        who = q->n_impu ? q->impu[0] : q->impi;
        break;
    }
    case DIA_CMD_LIR: who = ((const struct cx_lir *)req)->impu; break;
    default: return IMS_ETIMEDOUT;
    }
    bool alice = is_alice(who);
    if (!alice) {
        switch (E.hss) {
        case HSS_SILENT: return IMS_ETIMEDOUT;
        case HSS_UNKNOWN: dia_ans_exp(a, DIA_ERROR_USER_UNKNOWN); return 0;
        case HSS_UNABLE: dia_ans_result(a, DIA_UNABLE_TO_COMPLY); return 0;
        default: break;
        }
    }
    switch (cmd) {
    case DIA_CMD_UAR:
    case DIA_CMD_LIR:
        dia_ans_exp(a, DIA_FIRST_REGISTRATION);
        a->server_name = IMS_S("sip:" ME ":6060");
        DIA_SET(a, DIA_ANS_SERVER);
        return 0;
    case DIA_CMD_SAR:
        dia_ans_result(a, DIA_SUCCESS);
        a->user_data = alice ? IMS_S(alice_data) : IMS_S(bob_data);
        DIA_SET(a, DIA_ANS_USER_DATA);
        return 0;
    default:
        break;
    }
    /* MAR: Digest MD5 with the password "secret" for whoever asks */
    const struct cx_mar *q = req;
    struct cx_auth_item *it = &a->items[0];
    ims_digest_ha1(IMS_DIGEST_MD5, q->impi, IMS_S("ims.test"), IMS_S("secret"), E.ha1);
    it->scheme = IMS_S("SIP Digest");
    it->digest.realm = IMS_S("ims.test");
    it->digest.algorithm = IMS_S("MD5");
    it->digest.qop = IMS_S("auth");
    it->digest.ha1 = ims_str_cstr(E.ha1);
    it->digest.present = 0xf;
    it->present = 1u << CX_ITEM_SCHEME | 1u << CX_ITEM_DIGEST;
    a->n_item = 1;
    a->n_items = 1;
    DIA_SET(a, DIA_ANS_ITEMS);
    DIA_SET(a, DIA_ANS_NITEMS);
    dia_ans_result(a, DIA_SUCCESS);
    return 0;
}

/* ------------------------------------------------------------ delivery */

/* Hands len bytes from src to our port: copied into a buffer of exactly
 * that size, so ASan sees any read past the message. */
static void deliver(const char *buf, size_t len, const char *src, unsigned port,
                    enum sip_proto proto)
{
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return;
    memcpy(copy, buf, len);
    char local[32];
    snprintf(local, sizeof(local), ME ":%u", port);
    struct sip_tp_rx rx = fake_tp_rx("", proto, src, local);
    rx.buf = copy;
    rx.len = len;
    E.deliveries++;
    ims_proxy_rx(E.p, &rx);
    free(copy);
}

/* The port a datagram the roles send leaves from: the UDP listener on the
 * port sip_dest.src names, else the first one (net/udp.c, send_listener:
 * a request that came in over TLS on 5061 is forwarded over UDP from
 * 5060). */
static unsigned udp_port(unsigned src_port)
{
    return src_port == I_PORT || src_port == S_PORT ? src_port : P_PORT;
}

/* The listener a message the roles sent left from: for TCP and TLS, the
 * P-CSCF's (the UE's connection). */
static unsigned from_port(const struct fake_tp_msg *m)
{
    if (m->proto == SIP_PROTO_TLS)
        return P_TLS_PORT;
    return m->proto == SIP_PROTO_TCP ? P_PORT : udp_port(m->src.port);
}

/* What was posted to the loop (Cx answers, deferred work), as a loop turn
 * runs it. */
static void run_posts(void)
{
    fake_tp_run_posts(E.loop);
}

/* A peer (UE, AS) answers req, sent to it from our port `back`, as the
 * mode says: nothing, 200, 486, or 180 then 200. */
static void peer_answer(const struct sip_msg *req, const char *peer, unsigned back,
                        enum sip_proto proto)
{
    static const int first[] = { 0, 200, 486, 180 };
    char local[32];
    snprintf(local, sizeof(local), ME ":%u", back);
    struct ims_buf b;
    ims_buf_init(&b, 65536);
    for (int st = first[E.answer]; st; st = st == 180 ? 200 : 0) {
        b.len = 0;
        if (ims_sip_build_response(&b, req, st, NULL, IMS_S("peer1"), IMS_STR_NULL,
                                   IMS_STR_NULL, IMS_STR_NULL) == 0) {
            struct sip_tp_rx rx = fake_tp_rx("", proto, peer, local);
            rx.buf = b.p;
            rx.len = b.len;
            E.deliveries++;
            ims_proxy_rx(E.p, &rx);
        }
    }
    ims_buf_free(&b);
}

/* The AS as a stateless proxy (RFC 3261 16.6, 16.11): its own entry off
 * the top Route, its Via on top, back to the S-CSCF, which the ODI Route it
 * was given brings the request home to (3GPP TS 24.229 5.4.3.3).  Its
 * branch is derived from the top Via's, so a retransmission it relays is
 * the same transaction again, not a new one.  Textual: the first Route
 * line's first element ends at its first comma. */
static void as_relay(const char *buf, size_t len, ims_str top_branch)
{
    const char *end = buf + len;
    const char *eol = memmem(buf, len, "\r\n", 2);
    const char *r = memmem(buf, len, "\r\nRoute:", 8);
    if (!eol || !r)
        return;
    r += 2;
    const char *rend = memmem(r, (size_t)(end - r), "\r\n", 2);
    if (!rend)
        return;
    const char *comma = memchr(r, ',', (size_t)(rend - r));
    struct ims_buf b;
    ims_buf_init(&b, 65536);
    ims_buf_add(&b, buf, (size_t)(eol + 2 - buf));
    ims_buf_printf(&b, "Via: SIP/2.0/UDP " AS ";branch=z9hG4bKas-%.*s\r\n", (int)top_branch.len,
                   top_branch.p);
    ims_buf_add(&b, eol + 2, (size_t)(r - (eol + 2)));
    if (comma) {
        ims_buf_add_cstr(&b, "Route:");
        ims_buf_add(&b, comma + 1, (size_t)(rend + 2 - (comma + 1)));
    }
    ims_buf_add(&b, rend + 2, (size_t)(end - (rend + 2)));
    deliver(b.p, b.len, AS, S_PORT, SIP_PROTO_UDP);
    ims_buf_free(&b);
}

/* Handles what the roles sent since the last look: to one of our ports it
 * is delivered there; a request to anyone else is answered as the mode
 * says, to the listener it left from (or proxied back by the AS). */
static void pump(void)
{
    for (int guard = 0; guard < 64; guard++) {
        run_posts();
        if (E.seen == E.tp.n) {
            fake_tp_clear(&E.tp);
            E.seen = 0;
            return;
        }
        while (E.seen < E.tp.n && E.deliveries < 512) {
            /* a copy: delivering may send, and a full fake_tp is cleared */
            struct fake_tp_msg m = E.tp.msgs[E.seen++];
            char *buf = malloc(m.len + 1);
            if (!buf)
                return;
            memcpy(buf, m.buf, m.len + 1);
            if (E.dump)
                fprintf(stderr, "---- to %s from port %u (proto %d)\n%s", fake_tp_dst(&m),
                        m.src.port, (int)m.proto, buf);
            struct sip_msg msg;
            struct sip_hdr h[128];
            if (ims_sip_parse(buf, m.len, false, &msg, h, 128) <= 0) {
                /* only an error answer to a request that was itself
                 * incomplete (no From, a bad one, SIP/1.0: 400, 505) copies
                 * no more of it than it has (RFC 3261 8.2.6.2) */
                CHECK(m.len > 12 && strncmp(buf, "SIP/2.0 ", 8) == 0 && buf[8] >= '4' &&
                      buf[8] <= '6');
                free(buf);
                continue;
            }
            char dst[IMS_ADDR_STRLEN], src[48];
            ims_addr_str(&m.dst, dst, sizeof(dst));
            unsigned port = ims_addr_port(&m.dst);
            bool ours = strncmp(dst, ME ":", sizeof(ME ":") - 1) == 0 &&
                        (port == P_PORT || port == I_PORT || port == S_PORT);
            if (ours) {
                snprintf(src, sizeof(src), ME ":%u", udp_port(m.src.port));
                deliver(buf, m.len, src, port, SIP_PROTO_UDP);
            } else if (msg.kind == SIP_MSG_REQUEST && msg.method != SIP_M_ACK) {
                if (E.as_relays && strcmp(dst, AS) == 0)
                    as_relay(buf, m.len, msg.via1.branch);
                else
                    peer_answer(&msg, dst, from_port(&m), m.proto);
            }
            free(buf);
            if (E.tp.n == FAKE_TP_MAX && E.seen == E.tp.n) {
                fake_tp_clear(&E.tp);
                E.seen = 0;
            }
        }
        if (E.deliveries >= 512) { /* a loop between the roles: Max-Forwards ends it */
            E.seen = E.tp.n;
        }
    }
}

/* ------------------------------------------------------------ environment */

static bool env_new(void)
{
    char err[256];
    memset(&E, 0, sizeof(E));
    if (ims_cfg_load_string("fuzz", conf, &E.cfg, err, sizeof(err)) != 0)
        return false;
    CHECK(ims_loop_new(256, &E.loop) == 0);
    fake_tp_init(&E.tp, E.loop);
    fake_tp_set_local(&E.tp, SIP_PROTO_UDP, ME ":5060");
    fake_tp_set_local(&E.tp, SIP_PROTO_TCP, ME ":5060");
    fake_tp_set_local(&E.tp, SIP_PROTO_TLS, ME ":5061");
    struct proxy_cfg pc = {
        .max_transactions = 256, .self_names = self_names, .nself = 1, .timer_c_ms = 5000
    };
    CHECK(ims_proxy_shared_new(1, &pc, &E.sh) == 0);
    CHECK(ims_proxy_new(E.sh, 0, E.loop, NULL, &E.p) == 0);
    struct proxy_io io = { fake_tp_send, fake_tp_local, &E.tp, NULL };
    ims_proxy_set_io(E.p, &io);
    CHECK(ims_cscf_new_fake_cx(E.cfg, 1, fake_cx, NULL, &E.c, err, sizeof(err)) == 0);
    CHECK(ims_cscf_worker_init(E.c, 0, E.loop, E.p, err, sizeof(err)) == 0);
    return true;
}

/* Past every timer (Timer C 5 s, Timer J/F 32 s, AS and HSS deadlines,
 * flow timers), then the invariants, then everything freed. */
static void env_free(void)
{
    for (int i = 0; i < 80; i++) {
        fake_tp_clock_advance(E.loop, 500);
        pump();
    }
    struct proxy_stats st;
    ims_proxy_stats(E.p, &st);
    ims_cscf_stop(E.c);
    size_t leaked = ims_proxy_free(E.p);
    ims_proxy_shared_free(E.sh);
    fake_tp_free(&E.tp);
    ims_loop_free(E.loop);
    size_t live = ims_cscf_free(E.c);
    ims_cfg_free(E.cfg);
    CHECK(st.reqs_live == 0);
    CHECK(leaked == 0);
    CHECK(live == 0);
}

#define REGISTER_FMT                                                                               \
    "REGISTER sip:ims.test SIP/2.0\r\n"                                                            \
    "Via: SIP/2.0/%s 10.0.0.9:5099;branch=z9hG4bKreg%d;rport\r\n"                                  \
    "Max-Forwards: 70\r\n"                                                                         \
    "From: <sip:alice@ims.test>;tag=r1\r\n"                                                        \
    "To: <sip:alice@ims.test>\r\n"                                                                 \
    "Call-ID: reg-1@10.0.0.9\r\n"                                                                  \
    "CSeq: %d REGISTER\r\n"                                                                        \
    "Contact: <sip:alice@10.0.0.9:5099%s>%s\r\n"                                                   \
    "%s"                                                                                           \
    "Expires: 600\r\n"                                                                             \
    "Content-Length: 0\r\n\r\n"

/* The last response sent to alice's UE starting with prefix, copied into
 * out; false if there is none. */
static bool to_ue(const char *prefix, char *out, size_t cap)
{
    for (size_t i = E.tp.n; i-- > 0;) {
        const struct fake_tp_msg *m = &E.tp.msgs[i];
        if (strcmp(fake_tp_dst(m), UE) == 0 && strncmp(m->buf, prefix, strlen(prefix)) == 0) {
            snprintf(out, cap, "%s", m->buf);
            return true;
        }
    }
    return false;
}

/* Sends a REGISTER from alice's UE and runs the hops, without clearing
 * what was sent (the answer is looked up in it). */
static void ue_register(int cseq, const char *auth)
{
    static const char *const names[] = { "UDP", "TCP", "TLS" };
    char buf[2048];
    bool udp = E.reg_proto == SIP_PROTO_UDP;
    /* over TCP and TLS as an RFC 5626 client: a flow of its own */
    int n = snprintf(buf, sizeof(buf), REGISTER_FMT, names[E.reg_proto - SIP_PROTO_UDP], cseq,
                     cseq, udp ? "" : ";transport=tcp",
                     udp ? "" : ";+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>\""
                                ";reg-id=1",
                     auth);
    deliver(buf, (size_t)n, UE, E.reg_proto == SIP_PROTO_TLS ? P_TLS_PORT : P_PORT, E.reg_proto);
    for (int k = 0; k < 8; k++) {
        run_posts();
        while (E.seen < E.tp.n) {
            const struct fake_tp_msg *m = &E.tp.msgs[E.seen++];
            unsigned port = ims_addr_port(&m->dst);
            if (strncmp(fake_tp_dst(m), ME ":", sizeof(ME ":") - 1) == 0 &&
                (port == P_PORT || port == I_PORT || port == S_PORT)) {
                char src[32];
                snprintf(src, sizeof(src), ME ":%u", udp_port(m->src.port));
                deliver(m->buf, m->len, src, port, SIP_PROTO_UDP);
            }
        }
    }
}

/* alice registers through P, I and S (Digest MD5, qop=auth): 401, then
 * 200.  The harness's own scenario: it must work. */
static void register_alice(void)
{
    char rsp[4096], auth[1024];
    ue_register(1, "");
    CHECK(to_ue("SIP/2.0 401", rsp, sizeof(rsp)));
    const char *n = strstr(rsp, "nonce=\"");
    CHECK(n);
    n += 7;
    const char *e = strchr(n, '"');
    CHECK(e);
    char nonce[256];
    snprintf(nonce, sizeof(nonce), "%.*s", (int)(e - n), n);
    char ha1[IMS_DIGEST_HEX_MAX + 1], ha2[IMS_DIGEST_HEX_MAX + 1], resp[IMS_DIGEST_HEX_MAX + 1];
    ims_digest_ha1(IMS_DIGEST_MD5, IMS_S("alice@ims.test"), IMS_S("ims.test"), IMS_S("secret"),
                   ha1);
    ims_digest_ha2(IMS_DIGEST_MD5, IMS_S("REGISTER"), IMS_S("sip:ims.test"), NULL, ha2);
    ims_digest_response(IMS_DIGEST_MD5, ims_str_cstr(ha1), ims_str_cstr(nonce),
                        IMS_S("00000001"), IMS_S("c0ffee"), IMS_S("auth"), ims_str_cstr(ha2),
                        resp);
    snprintf(auth, sizeof(auth),
             "Authorization: Digest username=\"alice@ims.test\", realm=\"ims.test\", "
             "nonce=\"%s\", uri=\"sip:ims.test\", response=\"%s\", algorithm=MD5, qop=auth, "
             "nc=00000001, cnonce=\"c0ffee\"\r\n",
             nonce, resp);
    ue_register(2, auth);
    CHECK(to_ue("SIP/2.0 200", rsp, sizeof(rsp)));
    fake_tp_clear(&E.tp);
    E.seen = 0;
}

/* ------------------------------------------------------------ entry */

static const struct route *route_of(char letter)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (routes[i].letter == letter)
            return &routes[i];
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode;
    const char *p;
    size_t len;
    if (!fuzz_mode(data, size, &mode, &p, &len))
        return 0;
    fuzz_quiet();
    if (!env_new())
        return 0;
    E.dump = getenv("FUZZ_CSCF_DUMP") != NULL;
    E.hss = (mode >> 3) & 3u;
    static const enum sip_proto reg_protos[] = { SIP_PROTO_UDP, SIP_PROTO_TCP, SIP_PROTO_TLS,
                                                 SIP_PROTO_UDP };
    E.reg_proto = reg_protos[(mode >> 6) & 3u];
    if (mode & 1u)
        register_alice();
    E.answer = (mode >> 1) & 3u;
    E.as_relays = mode & 0x20u;
    static const char sep[] = "\n--\n";
    const char *end = p + len;
    for (int k = 0; k < 8 && p < end; k++) {
        const char *next = memmem(p, (size_t)(end - p), sep, sizeof(sep) - 1);
        const char *stop = next ? next : end;
        const struct route *r = route_of(*p);
        if (r && stop > p + 1)
            deliver(p + 1, (size_t)(stop - p - 1), r->src, r->dport, r->proto);
        pump();
        fake_tp_clock_advance(E.loop, 1);
        p = next ? next + sizeof(sep) - 1 : end;
    }
    env_free();
    return 0;
}
