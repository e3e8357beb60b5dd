/* pcscf.c - the P-CSCF (TS 24.229 §5.2): the UE-facing proxy.
 *
 *   REGISTER      -> adds Path (its own URI with a flow token and ;lr,
 *                    RFC 3327) and P-Visited-Network-ID (RFC 7315), forwards
 *                    to the I-CSCF; on the 200 keeps, per UE flow (transport,
 *                    source address and port: what NAT leaves us), the
 *                    Service-Route (RFC 3608) and P-Associated-URI.
 *   from a UE     -> only from a registered flow (else 403); P-Asserted-
 *                    Identity from the registered set (P-Preferred-Identity
 *                    honoured only inside it, RFC 3325 §6), identity headers
 *                    from the UE removed; initial requests get the stored
 *                    Service-Route as their route.
 *   terminating   -> a request whose top Route is our Path URI goes to the
 *                    flow its token names (the UE's source address, so NAT
 *                    bindings and TCP connections are reused).
 *   outbound      -> RFC 5626: ";ob" on the Path of a REGISTER with reg-id,
 *                    Flow-Timer on its 200, 430 for a gone flow; a dialog on
 *                    a flow is record-routed with its token, and the far
 *                    end's in-dialog requests go to that flow.
 *
 *   sec-agree     -> RFC 3329 with "tls" as the only mechanism (TS 24.229
 *                    §5.2.2, TS 33.203): an unprotected REGISTER offering
 *                    tls in Security-Client gets our Security-Server in the
 *                    401; later requests come over TLS and echo it in
 *                    Security-Verify (else 494); the sec-agree headers and
 *                    option tags stop here.  On only with [pcscf] sec_agree
 *                    and a TLS listener on a P-CSCF port.
 *
 * The flow token: "term-" hex(flow key) "-" hex(HMAC-SHA-256(process key,
 * flow key)[0..7]).  The MAC keeps a UE from sending to arbitrary addresses
 * through us with a forged Route; the flow must also still be registered.
 * Flows live in a table shared by the workers (table.h), expired by the
 * workers' sweeps. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "cfg/cfg.h"
#include "crypto/encode.h"
#include "crypto/mac.h"
#include "cscf/cscf_int.h"
#include "cscf/privacy.h"

#define FLOW_KEY_MAX 80
#define TOKEN_MAX (5 + 2 * FLOW_KEY_MAX + 1 + 16 + 1)

struct pc_flow {
    int64_t expires;     /* wall-clock seconds */
    char *assoc;         /* P-Associated-URI values, ", "-joined */
    char *service_route; /* Service-Route values, or NULL */
    bool sec_agree;      /* registered with a verified sec-agree (RFC 3329):
                          * every later request must carry Security-Verify */
    uint64_t tls_conn;   /* registered over TLS: that connection, else 0 */
    char *impi;          /* ... and the private identity it authenticated,
                          * or NULL: together what "tls-yes" means */
};

static void flow_free(void *v)
{
    struct pc_flow *f = v;
    if (!f)
        return;
    ims_free(f->assoc);
    ims_free(f->service_route);
    ims_free(f->impi);
    ims_free(f);
}

static int64_t flow_due(const void *v, void *ctx)
{
    (void)ctx;
    return ((const struct pc_flow *)v)->expires;
}

/* A TLS listener on one of the P-CSCF's ports: what sec-agree offers. */
static bool has_tls_port(const struct ims_cfg *cfg)
{
    for (size_t i = 0; i < cfg->nlisten; i++) {
        if (cfg->listen[i].proto != SIP_PROTO_TLS)
            continue;
        uint16_t port = ims_addr_port(&cfg->listen[i].addr);
        for (size_t k = 0; k < cfg->pcscf_ports.n; k++)
            if (cfg->pcscf_ports.port[k] == port)
                return true;
    }
    return false;
}

int cscf_pcscf_init(struct ims_cscf *g, char *err, size_t errsz)
{
    g->p_sec_agree = g->cfg->pcscf_sec_agree && has_tls_port(g->cfg);
    if (g->cfg->pcscf_sec_agree && !g->p_sec_agree)
        LOG_N("pcscf", "event=sec_agree_off reason=\"no tls listener on a pcscf port\"");
    uint8_t key[32];
    int rc = RAND_bytes(key, sizeof(key)) == 1 ? ims_mac_new(key, sizeof(key), &g->flow_key)
                                               : IMS_EBACKEND;
    ims_wipe(key, sizeof(key));
    if (rc) {
        snprintf(err, errsz, "pcscf: no flow key (%s)", ims_strerror(rc));
        return rc;
    }
    rc = cscf_table_new(CSCF_SHARDS, g->cfg->pcscf_max_ues, flow_free, &g->flows);
    if (rc == 0 && (rc = cscf_table_set_due(g->flows, flow_due, NULL)) != 0) {
        cscf_table_free(g->flows);
        g->flows = NULL;
    }
    if (rc) {
        snprintf(err, errsz, "pcscf: out of memory");
        ims_mac_free(g->flow_key); /* fini runs only for a P-CSCF with its table */
        g->flow_key = NULL;
    }
    return rc;
}

void cscf_pcscf_fini(struct ims_cscf *g)
{
    cscf_table_free(g->flows);
    g->flows = NULL;
    ims_mac_free(g->flow_key);
    g->flow_key = NULL;
}

/* "udp:127.0.0.1:5090" */
static void flow_key_of(const struct sip_tp_rx *rx, char *out, size_t cap)
{
    char a[IMS_ADDR_STRLEN];
    static const char *const lc[] = { "none", "udp", "tcp", "tls" };
    IMS_STR_JOIN(out, cap, ims_str_cstr(lc[rx->proto <= SIP_PROTO_TLS ? rx->proto : 0]),
                 IMS_S(":"), ims_str_cstr(ims_addr_str(&rx->src, a, sizeof(a))));
}

static void flow_mac(const struct ims_cscf *g, ims_str key, char hex[17])
{
    uint8_t mac[IMS_MAC_LEN];
    ims_mac_sha256(g->flow_key, key.p, key.len, mac); /* zeroes on failure */
    ims_hex_encode(mac, 8, hex);
}

/* term-<hex key>-<hex mac> */
static void flow_token(const struct ims_cscf *g, const char *key, char *out, size_t cap)
{
    char hk[2 * FLOW_KEY_MAX + 1], mac[17];
    size_t n = strlen(key);
    if (n > FLOW_KEY_MAX)
        n = FLOW_KEY_MAX;
    ims_hex_encode(key, n, hk);
    flow_mac(g, ims_str_make(key, n), mac);
    IMS_STR_JOIN(out, cap, IMS_S("term-"), ims_str_cstr(hk), IMS_S("-"), ims_str_cstr(mac));
}

/* The flow key a token names, if its MAC is ours.  0 or IMS_ENOENT. */
static int flow_of_token(const struct ims_cscf *g, ims_str user, char *key, size_t cap)
{
    if (!ims_str_has_caseprefix(user, "term-") || user.len < 5 + 2 + 1 + 16)
        return IMS_ENOENT;
    ims_str hk = ims_str_make(user.p + 5, user.len - 5 - 17);
    ims_str mac = ims_str_make(user.p + user.len - 16, 16);
    if (user.p[user.len - 17] != '-' || hk.len % 2 || hk.len / 2 >= cap ||
        hk.len / 2 > FLOW_KEY_MAX || ims_hex_decode(hk, key, hk.len / 2) != 0)
        return IMS_ENOENT;
    key[hk.len / 2] = '\0';
    char want[17];
    flow_mac(g, ims_str_make(key, hk.len / 2), want);
    return CRYPTO_memcmp(want, mac.p, 16) == 0 ? 0 : IMS_ENOENT;
}

/* ------------------------------------------------------------ flow table */

struct flow_get {
    int64_t now;
    struct ims_buf *assoc, *sr; /* copies out; may be NULL */
    bool found, sec_agree;
};

static int get_fn(void **val, bool room, void *ctx)
{
    struct flow_get *x = ctx;
    struct pc_flow *f = *val;
    if (!f || f->expires <= x->now)
        return 0;
    x->found = true;
    x->sec_agree = f->sec_agree;
    int rc = 0;
    if (x->assoc && f->assoc)
        rc = ims_buf_add_cstr(x->assoc, f->assoc);
    if (rc == 0 && x->sr && f->service_route)
        rc = ims_buf_add_cstr(x->sr, f->service_route);
    return rc;
}

/* Is the flow registered?  Copies its values out (assoc, sr may be NULL)
 * and says whether it agreed on sec-agree (sec_agree may be NULL). */
static bool flow_get(struct ims_cscf *g, const char *key, struct ims_buf *assoc,
                     struct ims_buf *sr, bool *sec_agree)
{
    struct flow_get x = { .now = cscf_now_s(), .assoc = assoc, .sr = sr };
    bool ok = cscf_table_with(g->flows, ims_str_cstr(key), get_fn, &x) == 0 && x.found;
    if (sec_agree)
        *sec_agree = ok && x.sec_agree;
    return ok;
}

struct flow_bound {
    int64_t now;
    uint64_t conn;
    ims_str impi;
    bool yes;
};

static int bound_fn(void **val, bool room, void *ctx)
{
    (void)room;
    struct flow_bound *x = ctx;
    const struct pc_flow *f = *val;
    x->yes = f && f->expires > x->now && f->tls_conn && f->tls_conn == x->conn && f->impi &&
             ims_str_eq(x->impi, ims_str_cstr(f->impi));
    return 0;
}

/* Is this TLS connection bound to impi by an earlier registration through
 * it (TS 33.203 Annex H: the P-CSCF then marks the REGISTER "tls-yes")? */
static bool flow_tls_bound(struct ims_cscf *g, const char *key, uint64_t conn, ims_str impi)
{
    struct flow_bound x = { .now = cscf_now_s(), .conn = conn, .impi = impi };
    return conn && impi.len && cscf_table_with(g->flows, ims_str_cstr(key), bound_fn, &x) == 0 &&
           x.yes;
}

struct flow_put {
    struct pc_flow *nf; /* NULL: remove */
};

static int put_fn(void **val, bool room, void *ctx)
{
    struct flow_put *x = ctx;
    flow_free(*val);
    *val = x->nf;
    x->nf = NULL; /* the table owns it now (or freed it when full) */
    return 0;
}

static int flow_put(struct ims_cscf *g, const char *key, struct pc_flow *nf)
{
    struct flow_put x = { nf };
    return cscf_table_with(g->flows, ims_str_cstr(key), put_fn, &x);
}

struct flow_room {
    bool ok;
};

static int room_fn(void **val, bool room, void *ctx)
{
    ((struct flow_room *)ctx)->ok = room;
    return 0;
}

static void sweep_visit(ims_str key, void **val, void *ctx)
{
    struct pc_flow *f = *val;
    if (f->expires <= *(int64_t *)ctx) {
        flow_free(f);
        *val = NULL;
    }
}

void cscf_pcscf_sweep(struct cscf_worker *w, int64_t now_s)
{
    cscf_table_sweep_due(w->g->flows, w->idx, w->g->nworkers, now_s, sweep_visit, &now_s);
}

/* ------------------------------------------------------------ sec-agree */

/* Our static list (RFC 3329 §2.3.1: the same whatever the client offered,
 * so that Security-Verify can be checked against it without state). */
#define SA_MECH "tls"
#define SA_Q_MILLI 100
#define SA_SERVER_HDR "Security-Server: " SA_MECH ";q=0.1\r\n"

static const char *const sa_tags[] = { "sec-agree", NULL };

const char *const *cscf_pcscf_proxy_require(const struct ims_cscf *g)
{
    return g->p_sec_agree ? sa_tags : NULL;
}

enum sa_state {
    SA_NONE,     /* the UE does not use sec-agree */
    SA_OFFER,    /* unprotected REGISTER offering tls: the 401 gets our list */
    SA_VERIFIED, /* over TLS with a Security-Verify equal to our list */
};

/* "0.1" -> 100; the parser has checked the qvalue syntax (RFC 3261 §25.1). */
static unsigned q_milli(ims_str q)
{
    unsigned v = q.len && q.p[0] == '1' ? 1000 : 0, scale = 100;
    for (size_t i = 2; i < q.len && scale; i++, scale /= 10)
        v += (unsigned)(q.p[i] - '0') * scale;
    return v;
}

/* Calls fn on every mechanism of every header with id; false as soon as a
 * value does not parse or fn says so. */
static bool each_mech(const struct sip_msg *m, enum sip_hdr_id id,
                      bool (*fn)(const struct sip_sec_mech *mech, void *ctx), void *ctx)
{
    for (const struct sip_hdr *h = ims_sip_hdr_first(m, id); h; h = ims_sip_hdr_next(m, h)) {
        struct ims_cur c = ims_cur_of(h->value);
        ims_str e;
        int rc;
        struct sip_sec_mech mech;
        while ((rc = ims_sip_list_next(&c, &e)) == 0)
            if (ims_sip_parse_sec_mech(e, &mech) != 0 || !fn(&mech, ctx))
                return false;
        if (rc != IMS_ENOENT)
            return false;
    }
    return true;
}

static bool not_tls(const struct sip_sec_mech *mech, void *ctx)
{
    (void)ctx;
    return !ims_str_caseeq_lit(mech->mechanism, SA_MECH);
}

/* The client can use our mechanism (it is in its Security-Client list). */
static bool sa_client_offers_tls(const struct sip_msg *m)
{
    return ims_sip_hdr_first(m, SIP_H_SECURITY_CLIENT) &&
           !each_mech(m, SIP_H_SECURITY_CLIENT, not_tls, NULL);
}

static bool is_ours(const struct sip_sec_mech *mech, void *ctx)
{
    size_t *n = ctx;
    ims_str rest = mech->params; /* ";q=0.1": only q is ours */
    bool only_q = rest.len > 1 && memchr(rest.p + 1, ';', rest.len - 1) == NULL;
    return ++*n == 1 && ims_str_caseeq_lit(mech->mechanism, SA_MECH) && mech->q.len &&
           only_q && q_milli(mech->q) == SA_Q_MILLI;
}

/* RFC 3329 §2.3.1 step 4 (downgrade protection): Security-Verify must be
 * exactly the list we sent in Security-Server. */
static bool sa_verify_matches(const struct sip_msg *m)
{
    size_t n = 0;
    return each_mech(m, SIP_H_SECURITY_VERIFY, is_ours, &n) && n == 1;
}

static bool sa_used(const struct sip_msg *m)
{
    return ims_sip_hdr_has_token(m, SIP_H_REQUIRE, "sec-agree") ||
           ims_sip_hdr_has_token(m, SIP_H_PROXY_REQUIRE, "sec-agree");
}

/* What sec-agree says about a request from a UE (no state needed: our list
 * is static).  Without sec-agree in the configuration: SA_NONE (the proxy
 * core has already refused Proxy-Require: sec-agree with 420). */
static enum sa_state sa_state_of(const struct ims_cscf *g, const struct sip_tp_rx *rx,
                                 const struct sip_msg *m, const char **why)
{
    *why = NULL;
    if (!g->p_sec_agree)
        return SA_NONE;
    if (ims_sip_hdr_first(m, SIP_H_SECURITY_VERIFY)) {
        if (!sa_verify_matches(m))
            *why = "security_verify_mismatch";
        else if (rx->proto != SIP_PROTO_TLS)
            *why = "not_protected"; /* the agreed mechanism was not used */
        return SA_VERIFIED;
    }
    if (!sa_used(m))
        return SA_NONE;
    /* RFC 3329 §2.3.1 step 2: the client starts; TS 24.229 §5.2.2.1: the
     * REGISTER goes on and the 401 carries the list, anything else gets 494 */
    if (m->method == SIP_M_REGISTER && sa_client_offers_tls(m))
        return SA_OFFER;
    *why = ims_sip_hdr_first(m, SIP_H_SECURITY_CLIENT) ? "no_common_mechanism"
                                                       : "no_security_client";
    return SA_NONE;
}

/* 494 with our list (RFC 3329 §2.3.1: even when nothing is in common). */
static void sa_reject(struct proxy_req *r, const struct sip_msg *m, const char *key,
                      const char *why)
{
    LOG_I("pcscf", "event=sec_agree_rejected flow=%s why=%s method=%.*s call_id=%.*s", key, why,
          IMS_SF(m->method_name), IMS_SF(m->call_id));
    ims_proxy_reply(r, 494, NULL, &(struct proxy_reply_opts){ .hdrs = IMS_S(SA_SERVER_HDR) });
}

/* Our state of a request: false when it was answered with 494.  A flow
 * that registered with sec-agree must keep using it (RFC 3329 §2.3.1 step
 * 5: every later request carries Security-Verify). */
static bool sa_check(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m,
                     const char *key, bool flow_sec, enum sa_state *st)
{
    const char *why;
    *st = sa_state_of(w->g, ims_proxy_req_rx(r), m, &why);
    if (!why && flow_sec && *st != SA_VERIFIED)
        why = "security_verify_missing";
    if (why) {
        sa_reject(r, m, key, why);
        return false;
    }
    return true;
}

/* The option tags of header id but sec-agree, as one header line.
 * 0, IMS_EPROTO (a value is not a list), IMS_ENOMEM. */
static int tags_without_sec_agree(const struct sip_msg *m, enum sip_hdr_id id,
                                  struct ims_buf *add)
{
    size_t n = 0;
    int rc = 0;
    for (const struct sip_hdr *h = ims_sip_hdr_first(m, id); h && !rc;
         h = ims_sip_hdr_next(m, h)) {
        struct ims_cur c = ims_cur_of(h->value);
        ims_str tag;
        int lr = IMS_ENOENT;
        while (!rc && (lr = ims_sip_list_next(&c, &tag)) == 0) {
            if (ims_str_caseeq_lit(tag, "sec-agree"))
                continue;
            if (n++)
                rc = IMS_BUF_CAT(add, IMS_S(", "), tag);
            else
                rc = IMS_BUF_CAT(add, ims_str_cstr(ims_sip_hdr_canonical_name(id)), IMS_S(": "),
                                 tag);
        }
        if (!rc && lr != IMS_ENOENT)
            rc = IMS_EPROTO;
    }
    if (!rc && n)
        rc = ims_buf_add_cstr(add, "\r\n");
    return rc;
}

/* The reply when the edits of a request could not be made. */
static void edit_failed(struct proxy_req *r, int rc)
{
    if (rc == IMS_EPROTO)
        ims_proxy_reply(r, 400, "Bad Option Tags", NULL);
    else
        ims_proxy_reply(r, 500, NULL, NULL);
}

/* The edits that keep sec-agree between the UE and us (TS 24.229 §5.2.2:
 * the P-CSCF removes Security-Client and Security-Verify and the sec-agree
 * option tags before forwarding): header ids into del (room for 4 more),
 * the Require/Proxy-Require lines without sec-agree into add. */
static int sa_strip(const struct sip_msg *m, enum sa_state st, struct ims_buf *add,
                    uint16_t *del, size_t *ndel)
{
    if (st == SA_NONE)
        return 0;
    static const uint16_t ids[] = { SIP_H_SECURITY_CLIENT, SIP_H_SECURITY_VERIFY, SIP_H_REQUIRE,
                                    SIP_H_PROXY_REQUIRE };
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        del[(*ndel)++] = ids[i];
    int rc = tags_without_sec_agree(m, SIP_H_REQUIRE, add);
    return rc ? rc : tags_without_sec_agree(m, SIP_H_PROXY_REQUIRE, add);
}

/* ------------------------------------------------------------ REGISTER */

/* The longest expiry the 200 grants to a Contact the UE sent (RFC 3261
 * §10.2.4: the 200 lists every binding of the AOR, ours among them), or -1
 * when none of the UE's contacts is left. */
static long granted_expires(const struct sip_msg *req, const struct sip_msg *rsp)
{
    long best = -1, hdr = cscf_expires_hdr(rsp);
    struct sip_nameaddr q, c;
    for (size_t i = 0; cscf_nth_nameaddr(req, SIP_H_CONTACT, i, &q) == 0; i++) {
        for (size_t k = 0; cscf_nth_nameaddr(rsp, SIP_H_CONTACT, k, &c) == 0; k++) {
            if (!ims_sip_uri_equal(&q.uri, &c.uri))
                continue;
            ims_str ev;
            uint64_t v;
            long e = hdr;
            if (ims_sip_param_get(c.params, "expires", &ev) == 0 &&
                ims_str_to_u64(ev, UINT32_MAX, &v) == 0)
                e = (long)v;
            if (e > best)
                best = e;
        }
    }
    return best;
}

/* RFC 5626 §5.1: the UE asks for outbound with a reg-id (and its
 * +sip.instance) on a Contact; the edge proxy then marks its Path URI "ob". */
static bool asks_outbound(const struct sip_msg *m)
{
    struct ims_reg_binding b[IMS_REG_MAX_CONTACTS];
    size_t n = 0;
    bool star = false;
    /* a Contact that does not parse: the registrar answers 400 */
    return cscf_contacts(m, b, IMS_REG_MAX_CONTACTS, &n, &star) == 0 &&
           cscf_outbound_asked(b, n);
}

static void reg_ok(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *rsp)
{
    struct ims_cscf *g = w->g;
    const struct sip_msg *req = ims_proxy_req_msg(r);
    char key[FLOW_KEY_MAX];
    flow_key_of(ims_proxy_req_rx(r), key, sizeof(key));
    long e = req ? granted_expires(req, rsp) : -1;
    if (e <= 0) {
        flow_put(g, key, NULL);
        LOG_I("pcscf", "event=deregistered flow=%s call_id=%.*s", key, IMS_SF(rsp->call_id));
        return;
    }
    struct ims_buf assoc, sr;
    ims_buf_init(&assoc, 8192);
    ims_buf_init(&sr, 4096);
    struct pc_flow *f = ims_calloc(1, sizeof(*f));
    int rc = f ? 0 : IMS_ENOMEM;
    if (rc == 0)
        rc = cscf_join_values(rsp, SIP_H_P_ASSOCIATED_URI, &assoc);
    if (rc == 0)
        rc = cscf_join_values(rsp, SIP_H_SERVICE_ROUTE, &sr);
    if (rc == 0 && assoc.len == 0) {
        /* no identity to assert: the UE could not send anything anyway */
        rc = IMS_EPROTO;
    }
    if (rc == 0) {
        const char *why;
        f->sec_agree = sa_state_of(g, ims_proxy_req_rx(r), req, &why) == SA_VERIFIED && !why;
        f->expires = cscf_now_s() + e;
        f->assoc = ims_strndup(assoc.p, assoc.len);
        f->service_route = sr.len ? ims_strndup(sr.p, sr.len) : NULL;
        if (!f->assoc || (sr.len && !f->service_route))
            rc = IMS_ENOMEM;
    }
    struct sip_auth cred;
    if (rc == 0 && ims_proxy_req_rx(r)->proto == SIP_PROTO_TLS && cscf_credentials(req, &cred) &&
        cred.username.len) {
        f->tls_conn = ims_proxy_req_rx(r)->conn_id;
        f->impi = ims_strndup(cred.username.p, cred.username.len);
        if (!f->impi)
            rc = IMS_ENOMEM;
    }
    if (rc == 0) {
        rc = flow_put(g, key, f);
        f = NULL;
    }
    flow_free(f);
    if (rc)
        LOG_W("pcscf", "event=flow_not_stored flow=%s err=%s", key, ims_strerror(rc));
    else
        LOG_I("pcscf", "event=registered flow=%s expires=%ld assoc=\"%.*s\"", key, e,
              (int)(assoc.len > 200 ? 200 : assoc.len), assoc.p ? assoc.p : "");
    ims_buf_free(&assoc);
    ims_buf_free(&sr);
}

static enum proxy_rsp_action reg_response(struct proxy_req *r, int status,
                                          const struct sip_msg *rsp, void *ud)
{
    struct cscf_worker *w = ud;
    if (status >= 200 && status < 300 && rsp) {
        reg_ok(w, r, rsp);
        unsigned ft = w->g->cfg->pcscf_flow_timer;
        if (ft && ims_sip_hdr_has_token(rsp, SIP_H_REQUIRE, "outbound") &&
            !ims_sip_hdr_first(rsp, SIP_H_FLOW_TIMER)) {
            /* RFC 5626 §4.4.1: the keep-alive interval the flow needs */
            char v[IMS_U64_DEC_MAX], line[48];
            size_t n = IMS_STR_JOIN(line, sizeof(line), IMS_S("Flow-Timer: "),
                                    ims_str_make(v, ims_u64_dec(ft, v)), IMS_S("\r\n"));
            if (ims_proxy_relay(r, rsp, ims_str_make(line, n), NULL, 0) == 0)
                return PROXY_RSP_TAKEN;
        }
        return PROXY_RSP_RELAY;
    }
    const struct sip_msg *req = status == 401 && rsp && w->g->p_sec_agree ? ims_proxy_req_msg(r)
                                                                          : NULL;
    const char *why;
    if (req && sa_state_of(w->g, ims_proxy_req_rx(r), req, &why) == SA_OFFER) {
        /* TS 24.229 §5.2.2.1: the challenge carries our list; the UE
         * answers it over TLS with Security-Verify */
        int rc = ims_proxy_relay(r, rsp, IMS_S(SA_SERVER_HDR), NULL, 0);
        return rc && !ims_proxy_req_final_sent(r) ? PROXY_RSP_RELAY : PROXY_RSP_TAKEN;
    }
    if (status == 503 && rsp) {
        /* the home network is busy (HSS down, ...): pass its 503 and
         * Retry-After on, instead of the core's "500 Next Hop Unavailable" */
        ims_proxy_relay(r, rsp, IMS_STR_NULL, NULL, 0);
        return PROXY_RSP_TAKEN;
    }
    return PROXY_RSP_RELAY;
}

/* TS 24.229 §5.2.2.1, TS 33.203 Annex H: over TLS the credentials say
 * whether this connection was already bound to their IMPI by a registration
 * ("tls-yes": the S-CSCF may skip the challenge) or not ("tls-pending");
 * over anything else a UE's own integrity-protected is removed. */
static int mark_integrity(struct ims_cscf *g, const struct sip_tp_rx *rx, const struct sip_msg *m,
                          const char *key, struct ims_buf *add, uint16_t *del, size_t *ndel)
{
    struct sip_auth cred;
    const char *mark = NULL;
    if (rx->proto == SIP_PROTO_TLS && cscf_credentials(m, &cred))
        mark = flow_tls_bound(g, key, rx->conn_id, cred.username) ? "tls-yes" : "tls-pending";
    else if (!cscf_auth_integrity_claimed(m))
        return 0;
    else
        LOG_I("pcscf", "event=integrity_protected_removed flow=%s call_id=%.*s", key,
              IMS_SF(m->call_id));
    del[(*ndel)++] = SIP_H_AUTHORIZATION;
    return cscf_auth_integrity_set(m, mark, add);
}

static void pc_register(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m)
{
    struct ims_cscf *g = w->g;
    char key[FLOW_KEY_MAX], token[TOKEN_MAX];
    flow_key_of(ims_proxy_req_rx(r), key, sizeof(key));
    bool flow_sec = false;
    if (g->p_sec_agree)
        (void)flow_get(g, key, NULL, NULL, &flow_sec);
    enum sa_state st;
    if (!sa_check(w, r, m, key, flow_sec, &st))
        return;
    struct flow_room room = { false };
    cscf_table_with(g->flows, ims_str_cstr(key), room_fn, &room);
    if (!room.ok) {
        char ra[32];
        ims_proxy_reply(r, 503, "Too Many Registrations",
                        &(struct proxy_reply_opts){ .hdrs = cscf_retry_after(60, ra, sizeof(ra)) });
        return;
    }
    flow_token(g, key, token, sizeof(token));
    struct ims_buf add;
    ims_buf_init(&add, 4096);
    int rc = IMS_BUF_CAT(&add, IMS_S("Path: <sip:"), ims_str_cstr(token), IMS_S("@"),
                         ims_str_cstr(g->p_hostport),
                         asks_outbound(m) ? IMS_S(";lr;ob>\r\n") : IMS_S(";lr>\r\n"),
                         IMS_S("P-Visited-Network-ID: \""), ims_str_cstr(g->vnid),
                         IMS_S("\"\r\n"));
    /* what only the network may say is removed from the UE's request */
    uint16_t del[10] = { SIP_H_PATH, SIP_H_P_VISITED_NETWORK_ID, SIP_H_P_ASSERTED_IDENTITY,
                         SIP_H_P_PREFERRED_IDENTITY };
    size_t ndel = 4;
    if (rc == 0)
        rc = sa_strip(m, st, &add, del, &ndel);
    if (rc == 0)
        rc = mark_integrity(g, ims_proxy_req_rx(r), m, key, &add, del, &ndel);
    if (rc) {
        edit_failed(r, rc);
        ims_buf_free(&add);
        return;
    }
    struct proxy_fwd f = {
        .next_hop = ims_str_cstr(g->cfg->pcscf_icscf),
        .add_hdrs = ims_buf_str(&add),
        .del_hdrs = del,
        .ndel = ndel,
        .on_response = reg_response,
        .ud = w,
    };
    rc = ims_proxy_forward(r, &f);
    ims_buf_free(&add);
    if (rc) {
        /* the target is what this line adds; the proxy logs the failure */
        LOG_I("pcscf", "event=forward_failed to=%s err=%s", g->cfg->pcscf_icscf,
              ims_strerror(rc));
        ims_proxy_forward_failed(r, rc);
    }
}

/* ------------------------------------------------------------ terminating */

/* A flow key (flow_key_of) split into its transport ("udp") and address
 * ("1.2.3.4:5").  False for a malformed key. */
static bool flow_key_split(const char *key, ims_str *proto, ims_str *addr)
{
    const char *colon = strchr(key, ':');
    if (!colon)
        return false;
    *proto = ims_str_make(key, (size_t)(colon - key));
    *addr = ims_str_cstr(colon + 1);
    return true;
}

/* A stream flow ("tcp:..."/"tls:...") still has its connection; true for
 * UDP flows. */
static bool flow_conn_open(struct cscf_worker *w, const char *key)
{
    ims_str ps, as;
    enum sip_proto proto;
    struct ims_addr a;
    if (!flow_key_split(key, &ps, &as) || ims_proto_parse(ps, &proto) != 0 ||
        proto == SIP_PROTO_UDP || ims_addr_parse(as, 0, &a) != 0)
        return true;
    return ims_proxy_conn_open(w->p, proto, &a);
}

/* The flow's address as a next hop: "udp:1.2.3.4:5" ->
 * "sip:1.2.3.4:5;transport=udp".  Its length, 0 for a malformed key. */
#define FLOW_HOP_MAX (FLOW_KEY_MAX + 32)
static size_t flow_hop(const char *key, char *out, size_t cap)
{
    ims_str ps, as;
    if (!flow_key_split(key, &ps, &as))
        return 0;
    size_t n = IMS_STR_JOIN(out, cap, IMS_S("sip:"), as, IMS_S(";transport="), ps);
    return n == SIZE_MAX ? 0 : n;
}

/* RFC 5626 §5.3: our Record-Route names the flow (token and ";ob"), so the
 * far end's in-dialog requests reach the UE through NAT.  token is the
 * caller's TOKEN_MAX buffer that f then points into. */
static void flow_record_route(const struct ims_cscf *g, const char *key, char *token,
                              struct proxy_fwd *f)
{
    flow_token(g, key, token, TOKEN_MAX);
    f->rr_user = ims_str_cstr(token);
    f->rr_params = IMS_S(";ob");
}

/* ob: the Route was our Path URI of an RFC 5626 outbound registration. */
static void pc_terminating(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m,
                           const char *key, bool ob)
{
    if (!flow_get(w->g, key, NULL, NULL, NULL)) {
        LOG_I("pcscf", "event=term_unregistered flow=%s outbound=%d", key, ob);
        /* RFC 5626 §5.3: 430 tells the registrar to try the UE's other flows */
        if (ob)
            ims_proxy_reply(r, 430, "Flow Failed", NULL);
        else
            ims_proxy_reply(r, 480, "Not Registered Here", NULL);
        return;
    }
    if (ob && !flow_conn_open(w, key)) {
        /* RFC 5626 §5.3: an outbound flow over TCP/TLS is its connection;
         * opening a new one towards a UE behind NAT would not reach it */
        flow_put(w->g, key, NULL);
        LOG_I("pcscf", "event=flow_failed flow=%s why=connection_closed", key);
        ims_proxy_reply(r, 430, "Flow Failed", NULL);
        return;
    }
    char hop[FLOW_HOP_MAX];
    size_t n = flow_hop(key, hop, sizeof(hop));
    if (!n) {
        ims_proxy_reply(r, 500, NULL, NULL);
        return;
    }
    struct proxy_fwd f = { .next_hop = ims_str_make(hop, n) };
    char token[TOKEN_MAX];
    if (ob) /* a dialog it starts keeps to the flow as well */
        flow_record_route(w->g, key, token, &f);
    cscf_privacy_forward_to_ue(w, r, m, &f); /* privacy: the UE is outside the trust domain */
}

/* ------------------------------------------------------------ originating */

/* RFC 5626 §4.3: a UE keeping a dialog on its flow puts "ob" on its Contact. */
static bool contact_ob(const struct sip_msg *m)
{
    struct sip_nameaddr na;
    ims_str v;
    return cscf_nth_nameaddr(m, SIP_H_CONTACT, 0, &na) == 0 &&
           ims_sip_param_get(na.uri.params, "ob", &v) == 0;
}

/* RFC 3325 §6: the asserted identity is the preferred one if the UE may use
 * it, else the default (the first associated URI, TS 24.229 §5.2.6.3.3). */
static int pick_identity(const struct sip_msg *m, ims_str assoc, char *out, size_t cap)
{
    struct sip_nameaddr first, pref, a;
    if (cscf_first_nameaddr(assoc, &first) != 0)
        return IMS_EPROTO;
    ims_str_copy(first.uri.raw, out, cap);
    if (cscf_nth_nameaddr(m, SIP_H_P_PREFERRED_IDENTITY, 0, &pref) != 0)
        return 0;
    struct ims_cur c = ims_cur_of(assoc);
    ims_str e;
    while (ims_sip_list_next(&c, &e) == 0) {
        if (ims_sip_parse_nameaddr(e, &a) == 0 && ims_sip_uri_equal(&a.uri, &pref.uri)) {
            ims_str_copy(a.uri.raw, out, cap);
            return 0;
        }
    }
    return 0;
}

static void pc_originating(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m,
                           const char *key)
{
    struct ims_buf assoc, sr, add;
    ims_buf_init(&assoc, 8192);
    ims_buf_init(&sr, 4096);
    ims_buf_init(&add, 16384);
    bool flow_sec = false;
    bool found = flow_get(w->g, key, &assoc, &sr, &flow_sec);
    enum sa_state st;
    if (!sa_check(w, r, m, key, flow_sec, &st))
        goto out;
    if (!found) {
        LOG_I("pcscf", "event=not_registered flow=%s method=%.*s call_id=%.*s", key,
              IMS_SF(m->method_name), IMS_SF(m->call_id));
        ims_proxy_reply(r, 403, "Not Registered", NULL);
        goto out;
    }
    char id[IMS_REG_URI_MAX];
    if (pick_identity(m, ims_buf_str(&assoc), id, sizeof(id)) != 0) {
        ims_proxy_reply(r, 500, NULL, NULL);
        goto out;
    }
    int rc = IMS_BUF_CAT(&add, IMS_S("P-Asserted-Identity: <"), ims_str_cstr(id), IMS_S(">\r\n"));
    struct sip_nameaddr hop;
    ims_str next = IMS_STR_NULL;
    if (rc == 0 && sr.len) {
        rc = IMS_BUF_CAT(&add, IMS_S("Route: "), ims_buf_str(&sr), IMS_S("\r\n"));
        if (rc == 0 && cscf_first_nameaddr(ims_buf_str(&sr), &hop) == 0)
            next = hop.uri.raw;
    }
    /* RFC 3325: identities from outside the trust domain go; RFC 3608: the
     * Service-Route replaces whatever route the UE put (ours was popped) */
    uint16_t del[8] = { SIP_H_P_ASSERTED_IDENTITY, SIP_H_P_PREFERRED_IDENTITY };
    size_t ndel = 2;
    if (sr.len)
        del[ndel++] = SIP_H_ROUTE;
    if (rc == 0)
        rc = sa_strip(m, st, &add, del, &ndel);
    if (rc) {
        edit_failed(r, rc);
        goto out;
    }
    struct proxy_fwd f = {
        .next_hop = next,
        .add_hdrs = ims_buf_str(&add),
        .del_hdrs = del,
        .ndel = ndel,
    };
    char token[TOKEN_MAX];
    if (contact_ob(m)) /* the UE keeps this dialog on its flow */
        flow_record_route(w->g, key, token, &f);
    cscf_privacy_on_ue_responses(w, &f); /* privacy: responses going down to the UE */
    rc = ims_proxy_forward(r, &f);
    if (rc)
        ims_proxy_forward_failed(r, rc);
out:
    ims_buf_free(&assoc);
    ims_buf_free(&sr);
    ims_buf_free(&add);
}

/* ------------------------------------------------------------ in-dialog */

/* Record-Route/Route decide; a sec-agree UE's headers stop here too.
 * via_us: the top Route names us.  A request with a To tag but no Route
 * to us (and not addressed to us) is in no dialog we are in: we
 * record-route every dialog we take part in (unless told not to).
 * TS 24.229 §5.2.6.3.5 answers a request outside its sender's dialogs
 * with 403, registered or not: relaying it by its Request-URI would let
 * anyone have us resolve and reach any host (seen: sipp's BYEs after a
 * failed REGISTER, each a DNS query for the home domain that held a
 * transaction until the resolver's deadline; from a flow whose port an
 * earlier, registered UE had used, they still went out). */
static void pc_in_dialog(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m,
                         const char *key, bool via_us)
{
    bool stray = !via_us && !ims_proxy_req_to_self(r);
    bool flow_sec = false, registered = false;
    if (w->g->p_sec_agree || stray) /* a table lookup: only when it decides something */
        registered = flow_get(w->g, key, NULL, NULL, &flow_sec);
    enum sa_state st;
    if (!sa_check(w, r, m, key, flow_sec, &st))
        return;
    /* with [proxy] record_route = no a registered UE's dialogs do not name
     * us, and its requests go by their Route */
    if (stray && (!registered || w->g->cfg->record_route)) {
        LOG_I("pcscf", "event=%s flow=%s method=%.*s call_id=%.*s in_dialog=1",
              registered ? "not_in_dialog" : "not_registered", key, IMS_SF(m->method_name),
              IMS_SF(m->call_id));
        ims_proxy_reply(r, 403, registered ? "Not In Our Dialogs" : "Not Registered", NULL);
        return;
    }
    if (st == SA_NONE || ims_proxy_req_to_self(r)) {
        ims_proxy_route_static(NULL, r, m);
        return;
    }
    struct ims_buf add;
    ims_buf_init(&add, 1024);
    uint16_t del[4];
    size_t ndel = 0;
    int rc = sa_strip(m, st, &add, del, &ndel);
    struct proxy_fwd f = { .add_hdrs = ims_buf_str(&add), .del_hdrs = del, .ndel = ndel };
    if (rc)
        edit_failed(r, rc);
    else if ((rc = ims_proxy_forward(r, &f)) != 0)
        ims_proxy_forward_failed(r, rc);
    ims_buf_free(&add);
}

/* ------------------------------------------------------------ the app */

/* The flow a request's top Route names with our token, when the request
 * does not come from a UE (a registered flow): 0 with key set. */
static int token_flow(struct cscf_worker *w, const struct sip_msg *m, const struct sip_tp_rx *rx,
                      const struct sip_uri *top, char *key, size_t cap)
{
    char own[FLOW_KEY_MAX];
    if (flow_of_token(w->g, top->user, key, cap) != 0)
        return IMS_ENOENT;
    flow_key_of(rx, own, sizeof(own));
    /* an in-dialog request from a UE takes the normal route */
    if (m->to.tag.len && flow_get(w->g, own, NULL, NULL, NULL))
        return IMS_ENOENT;
    return 0;
}

bool cscf_pcscf_stateless_hop(void *ctx, const struct sip_msg *m, const struct sip_tp_rx *rx,
                              char *hop, size_t cap)
{
    struct cscf_worker *w = ctx;
    struct sip_nameaddr na;
    char key[FLOW_KEY_MAX + 1];
    if (cscf_nth_nameaddr(m, SIP_H_ROUTE, 0, &na) != 0 ||
        !ims_proxy_uri_is_self(w->p, &na.uri, ims_addr_port(&rx->local)) ||
        token_flow(w, m, rx, &na.uri, key, sizeof(key)) != 0)
        return false;
    /* RFC 5626 §5.3: the ACK of a dialog on a flow goes to the flow; a flow
     * that is gone leaves it to the Request-URI (an ACK gets no answer) */
    if (!flow_get(w->g, key, NULL, NULL, NULL) || !flow_conn_open(w, key))
        return false;
    return flow_hop(key, hop, cap) > 0;
}

void cscf_pcscf_request(void *ctx, struct proxy_req *r, const struct sip_msg *m)
{
    struct cscf_worker *w = ctx;
    if (m->method == SIP_M_REGISTER) {
        pc_register(w, r, m);
        return;
    }
    /* terminating: the S-CSCF routed it along our Path */
    struct sip_uri top;
    char key[FLOW_KEY_MAX + 1];
    bool via_us = cscf_top_route_self(r, m, &top) == 0;
    if (via_us && token_flow(w, m, ims_proxy_req_rx(r), &top, key, sizeof(key)) == 0) {
        /* along our Path, or in a dialog our flow-token Record-Route
         * started: to the UE's flow */
        ims_str ob;
        pc_terminating(w, r, m, key, ims_sip_param_get(top.params, "ob", &ob) == 0);
        return;
    }
    flow_key_of(ims_proxy_req_rx(r), key, sizeof(key));
    if (m->to.tag.len || ims_proxy_req_to_self(r)) {
        /* in-dialog (Record-Route/Route decide) or for us: 404/405 */
        pc_in_dialog(w, r, m, key, via_us);
        return;
    }
    pc_originating(w, r, m, key);
}
