/* privacy.c - the privacy service at the trust-domain boundary (privacy.h,
 * docs/privacy.md): RFC 3323 Privacy values and RFC 3325 P-Asserted-Identity
 * applied where a request or response leaves the trust domain.
 *
 * Where that is (TS 24.229 §4.4: the UE is outside; this network's CSCFs
 * and ASes are inside):
 *   P-CSCF -> UE      terminating requests (cscf_privacy_forward_to_ue) and
 *                     the responses to the UE's own requests
 *                     (cscf_privacy_on_ue_responses);
 *   S-CSCF -> other   originating requests routed out of the home domains
 *   network           to a next hop [privacy] trusted does not name
 *                     (cscf_privacy_route_out).
 * Requests to ASes (ISC), to the I-CSCF and between our roles keep PAI and
 * Privacy: inside the trust domain they pass (RFC 3325 §5). */
#include "cscf/privacy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "cfg/cfg.h"
#include "cscf/cscf_int.h"

/* RFC 3323 §4.1.1.3: the anonymous identity a From should carry. */
#define ANON_FROM "\"Anonymous\" <sip:anonymous@anonymous.invalid>"

/* ------------------------------------------------------------ values */

static unsigned value_bit(ims_str tok)
{
    static const struct {
        const char *name;
        unsigned bit;
    } k[] = {
        { "none", IMS_PRIV_NONE },       { "header", IMS_PRIV_HEADER },
        { "session", IMS_PRIV_SESSION }, { "user", IMS_PRIV_USER },
        { "id", IMS_PRIV_ID },           { "critical", IMS_PRIV_CRITICAL },
    };
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
        if (ims_str_caseeq_lit(tok, k[i].name))
            return k[i].bit;
    return IMS_PRIV_OTHER;
}

/* RFC 3323 §4.2: Privacy = priv-value *(";" priv-value); several headers
 * (or commas, which some UAs send) add up. */
static int values_of(ims_str v, unsigned *bits)
{
    struct ims_cur c = ims_cur_of(v);
    for (;;) {
        ims_str tok;
        ims_cur_lws(&c);
        if (ims_cur_token(&c, &tok, 64) != 0)
            return IMS_EPROTO;
        *bits |= value_bit(tok);
        ims_cur_lws(&c);
        if (ims_cur_eof(&c))
            return 0;
        if (ims_cur_char(&c, ';') != 0 && ims_cur_char(&c, ',') != 0)
            return IMS_EPROTO;
    }
}

int ims_privacy_values(const struct sip_msg *m, unsigned *out)
{
    *out = 0;
    for (const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_PRIVACY); h;
         h = ims_sip_hdr_next(m, h))
        if (values_of(h->value, out) != 0)
            return IMS_EPROTO;
    return 0;
}

/* "id;user" for logs. */
static const char *values_str(unsigned v, char *buf, size_t cap)
{
    static const char *const names[] = { "none", "header", "session", "user",
                                         "id",   "critical", "other" };
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!(v & (1u << i)))
            continue;
        int n = snprintf(buf + k, cap - k, "%s%s", k ? ";" : "", names[i]);
        if (n < 0 || (size_t)n >= cap - k)
            break;
        k += (size_t)n;
    }
    return buf;
}

/* ------------------------------------------------------------ edits */

static int del(struct ims_priv_edits *e, uint16_t id)
{
    if (e->ndel >= IMS_PRIV_MAX_DEL)
        return IMS_ELIMIT;
    e->del[e->ndel++] = id;
    return 0;
}

/* RFC 3323 §4.1 and §5.1: headers that say who or where the user is and
 * that a proxy can drop without breaking anything. */
static const uint16_t req_identifying[] = { SIP_H_SUBJECT,  SIP_H_CALL_INFO, SIP_H_ORGANIZATION,
                                            SIP_H_USER_AGENT, SIP_H_REPLY_TO, SIP_H_IN_REPLY_TO };
static const uint16_t rsp_identifying[] = { SIP_H_SUBJECT,    SIP_H_CALL_INFO, SIP_H_ORGANIZATION,
                                            SIP_H_USER_AGENT, SIP_H_SERVER,   SIP_H_REPLY_TO,
                                            SIP_H_IN_REPLY_TO };

/* The anonymous From with the original tag: dialogs are matched by tags
 * (RFC 3261 §12), so the dialog survives the new URI. */
static int anon_from(const struct sip_msg *m, struct ims_buf *add)
{
    if (m->from.tag.len)
        return ims_buf_printf(add, "From: " ANON_FROM ";tag=%.*s\r\n", IMS_SF(m->from.tag));
    return ims_buf_add_cstr(add, "From: " ANON_FROM "\r\n");
}

static int apply(const struct sip_msg *m, bool response, struct ims_buf *add,
                 struct ims_priv_edits *e)
{
    unsigned v = e->values;
    int rc = 0;
    if (v & IMS_PRIV_ID)
        rc = del(e, SIP_H_P_ASSERTED_IDENTITY); /* RFC 3325 §9.3 */
    if (v & (IMS_PRIV_HEADER | IMS_PRIV_USER)) {
        const uint16_t *ids = response ? rsp_identifying : req_identifying;
        size_t n = response ? sizeof(rsp_identifying) / sizeof(rsp_identifying[0])
                            : sizeof(req_identifying) / sizeof(req_identifying[0]);
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = del(e, ids[i]);
    }
    /* RFC 3323 §5.3: user-level privacy anonymises the originator; in a
     * response From is the caller's own and stays */
    if (rc == 0 && (v & IMS_PRIV_USER) && !response) {
        rc = del(e, SIP_H_FROM);
        if (rc == 0)
            rc = anon_from(m, add);
    }
    if (rc == 0)
        rc = del(e, SIP_H_PRIVACY); /* RFC 3323 §5: consumed here */
    return rc;
}

int ims_privacy_request(const struct sip_msg *m, struct ims_buf *add, struct ims_priv_edits *e)
{
    memset(e, 0, sizeof(*e));
    int rc = ims_privacy_values(m, &e->values);
    if (rc || !e->values || (e->values & IMS_PRIV_NONE))
        return rc; /* RFC 3323 §4.2: 'none' - no privacy function at all */
    /* RFC 3323 §4.2, §5: what we cannot give ('session' needs an SDP and
     * media anonymiser, unknown values) is fatal only when critical */
    if ((e->values & IMS_PRIV_CRITICAL) && (e->values & (IMS_PRIV_SESSION | IMS_PRIV_OTHER))) {
        e->reject = 500;
        e->reason = "Privacy Not Available";
        return 0;
    }
    return apply(m, false, add, e);
}

int ims_privacy_response(const struct sip_msg *rsp, struct ims_buf *add,
                         struct ims_priv_edits *e)
{
    memset(e, 0, sizeof(*e));
    int rc = ims_privacy_values(rsp, &e->values);
    if (rc || !e->values || (e->values & IMS_PRIV_NONE))
        return rc;
    return apply(rsp, true, add, e);
}

/* ------------------------------------------------------------ trust list */

struct trust_entry {
    int family;      /* AF_INET, AF_INET6, or 0 for a name */
    uint8_t ip[16];
    unsigned plen;   /* prefix length in bits */
    ims_str name;    /* family 0 */
    uint16_t port;   /* 0: any */
};

static bool name_ok(ims_str s)
{
    if (!s.len || s.len > 253)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '.';
        if (!ok)
            return false;
    }
    return true;
}

/* An address (no brackets) into e; false when it is none. */
static bool parse_ip(ims_str s, struct trust_entry *e)
{
    char tmp[64];
    if (!s.len || s.len >= sizeof(tmp))
        return false;
    memcpy(tmp, s.p, s.len);
    tmp[s.len] = '\0';
    if (inet_pton(AF_INET, tmp, e->ip) == 1) {
        e->family = AF_INET;
        e->plen = 32;
        return true;
    }
    if (inet_pton(AF_INET6, tmp, e->ip) == 1) {
        e->family = AF_INET6;
        e->plen = 128;
        return true;
    }
    return false;
}

static int parse_port(ims_str s, uint16_t *port)
{
    uint64_t v;
    if (ims_str_to_u64(s, 65535, &v) != 0 || v == 0)
        return IMS_EINVAL;
    *port = (uint16_t)v;
    return 0;
}

/* "10.0.0.0/8", "::1", "[::1]:5060", "127.0.0.1:5070", "scscf.ims.test". */
static int parse_entry(ims_str s, struct trust_entry *e)
{
    memset(e, 0, sizeof(*e));
    long slash = ims_str_chr(s, '/');
    if (slash >= 0) {
        uint64_t plen;
        if (!parse_ip(ims_str_make(s.p, (size_t)slash), e) ||
            ims_str_to_u64(ims_str_make(s.p + slash + 1, s.len - (size_t)slash - 1), e->plen,
                           &plen) != 0)
            return IMS_EINVAL;
        e->plen = (unsigned)plen;
        return 0;
    }
    if (s.len && s.p[0] == '[') {
        long close = ims_str_chr(s, ']');
        if (close < 0 || !parse_ip(ims_str_make(s.p + 1, (size_t)close - 1), e) ||
            e->family != AF_INET6)
            return IMS_EINVAL;
        ims_str rest = ims_str_make(s.p + close + 1, s.len - (size_t)close - 1);
        if (!rest.len)
            return 0;
        return rest.p[0] == ':' ? parse_port(ims_str_make(rest.p + 1, rest.len - 1), &e->port)
                                : IMS_EINVAL;
    }
    if (parse_ip(s, e))
        return 0; /* plain v4 or v6 */
    long colon = ims_str_chr(s, ':');
    ims_str host = colon >= 0 ? ims_str_make(s.p, (size_t)colon) : s;
    if (colon >= 0 &&
        parse_port(ims_str_make(s.p + colon + 1, s.len - (size_t)colon - 1), &e->port) != 0)
        return IMS_EINVAL;
    if (parse_ip(host, e))
        return 0;
    if (!name_ok(host))
        return IMS_EINVAL;
    e->name = host;
    return 0;
}

/* Calls fn on each entry; stops at the first nonzero return.  Returns that
 * value, IMS_EINVAL (with the entry in *bad) or 0. */
static int each_entry(const char *list, int (*fn)(const struct trust_entry *e, void *ctx),
                      void *ctx, ims_str *bad)
{
    if (!list)
        return 0;
    struct ims_cur c = { list, list + strlen(list) };
    while (!ims_cur_eof(&c)) {
        ims_str item;
        ims_cur_until(&c, ",", &item);
        ims_cur_char(&c, ',');
        item = ims_str_trim(item);
        if (!item.len)
            continue;
        struct trust_entry e;
        if (parse_entry(item, &e) != 0) {
            *bad = item;
            return IMS_EINVAL;
        }
        int rc = fn(&e, ctx);
        if (rc)
            return rc;
    }
    return 0;
}

static int accept_entry(const struct trust_entry *e, void *ctx)
{
    (void)e;
    (void)ctx;
    return 0;
}

int ims_privacy_trust_check(const char *list, char *err, size_t errsz)
{
    ims_str bad = IMS_STR_NULL;
    int rc = each_entry(list, accept_entry, NULL, &bad);
    if (rc)
        snprintf(err, errsz, "'%.*s' is not an address, CIDR prefix, ip:port or host name",
                 (int)(bad.len > 80 ? 80 : bad.len), bad.p ? bad.p : "");
    return rc;
}

struct hop {
    struct trust_entry a; /* family 0: the host is a name */
    ims_str host;
    uint16_t port;
};

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned plen)
{
    unsigned full = plen / 8, rest = plen % 8;
    if (memcmp(a, b, full) != 0)
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

static int match_entry(const struct trust_entry *e, void *ctx)
{
    const struct hop *h = ctx;
    if (e->port && e->port != h->port)
        return 0;
    if (e->family == 0)
        return h->a.family == 0 && ims_str_caseeq(e->name, h->host);
    return e->family == h->a.family && prefix_match(e->ip, h->a.ip, e->plen);
}

bool ims_privacy_trusted(const char *list, ims_str host, uint16_t port)
{
    struct hop h = { .port = port };
    if (host.len >= 2 && host.p[0] == '[' && host.p[host.len - 1] == ']')
        host = ims_str_make(host.p + 1, host.len - 2);
    if (!host.len)
        return false;
    h.host = host;
    if (!parse_ip(host, &h.a))
        h.a.family = 0;
    ims_str bad;
    return each_entry(list, match_entry, &h, &bad) == 1;
}

/* ------------------------------------------------------------ CSCF hooks */

static void log_applied(const char *where, const struct sip_msg *m, const struct ims_priv_edits *e)
{
    char v[64];
    if (e->reject)
        LOG_I("privacy", "event=rejected where=%s values=%s status=%d call_id=%.*s", where,
              values_str(e->values, v, sizeof(v)), e->reject, IMS_SF(m->call_id));
    else if (e->ndel)
        LOG_I("privacy", "event=applied where=%s values=%s removed=%zu call_id=%.*s", where,
              values_str(e->values, v, sizeof(v)), e->ndel, IMS_SF(m->call_id));
}

/* Responses to a request whose From we anonymised get the original From
 * back on their way upstream (RFC 3261 §8.1.3.3: the UAC expects its own). */
static enum proxy_rsp_action restore_from(struct proxy_req *r, int status,
                                          const struct sip_msg *rsp, void *ud)
{
    (void)status;
    (void)ud;
    const struct sip_msg *req = rsp ? ims_proxy_req_msg(r) : NULL;
    const struct sip_hdr *h = req ? ims_sip_hdr_first(req, SIP_H_FROM) : NULL;
    if (!h)
        return PROXY_RSP_RELAY;
    struct ims_buf add;
    ims_buf_init(&add, 2048);
    static const uint16_t from[] = { SIP_H_FROM };
    int rc = ims_buf_printf(&add, "From: %.*s\r\n", IMS_SF(h->value));
    if (rc == 0)
        rc = ims_proxy_relay(r, rsp, ims_buf_str(&add), from, 1);
    ims_buf_free(&add);
    return rc && !ims_proxy_req_final_sent(r) ? PROXY_RSP_RELAY : PROXY_RSP_TAKEN;
}

/* The request's edits into f, or the request answered.  true: forward f. */
static bool edits_for(struct proxy_req *r, const struct sip_msg *m, const char *where,
                      struct ims_buf *add, struct ims_priv_edits *e, struct proxy_fwd *f)
{
    int rc = ims_privacy_request(m, add, e);
    if (rc) {
        ims_proxy_reply(r, rc == IMS_EPROTO ? 400 : 500, rc == IMS_EPROTO ? "Bad Privacy" : NULL,
                        NULL);
        return false;
    }
    log_applied(where, m, e);
    if (e->reject) {
        ims_proxy_reply(r, e->reject, e->reason, NULL);
        return false;
    }
    f->add_hdrs = ims_buf_str(add);
    f->del_hdrs = e->del;
    f->ndel = e->ndel;
    for (size_t i = 0; i < e->ndel; i++)
        if (e->del[i] == SIP_H_FROM)
            f->on_response = restore_from;
    return true;
}

/* ---- Bearer tokens stay inside (policy follow-up, docs/keystone.md) ----
 * An RFC 8898 token was for our S-CSCF: a request leaving the trust domain
 * (to a UE, to another network) must not carry it, or the receiver could
 * replay it.  Does a header `id` of m hold a Bearer credential?  Judged by
 * its first token, so that a value that does not parse goes too. */
static bool bearer_in(const struct sip_msg *m, uint16_t id)
{
    for (const struct sip_hdr *h = ims_sip_hdr_first(m, id); h; h = ims_sip_hdr_next(m, h)) {
        ims_str v = ims_str_trim(h->value);
        if (v.len >= 6 && ims_str_caseeq_lit(ims_str_make(v.p, 6), "Bearer") &&
            (v.len == 6 || v.p[6] == ' ' || v.p[6] == '\t'))
            return true;
    }
    return false;
}

/* Adds Authorization / Proxy-Authorization to e's removals (whole headers:
 * other credentials in them go too) when they carry a Bearer token, and
 * points f at the list.  IMS_ELIMIT: no room; the caller refuses to send. */
static int strip_bearer(const struct sip_msg *m, const char *where, struct ims_priv_edits *e,
                        struct proxy_fwd *f)
{
    static const uint16_t ids[] = { SIP_H_AUTHORIZATION, SIP_H_PROXY_AUTHORIZATION };
    size_t n0 = e->ndel;
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        if (!bearer_in(m, ids[i]))
            continue;
        if (e->ndel >= IMS_PRIV_MAX_DEL)
            return IMS_ELIMIT;
        e->del[e->ndel++] = ids[i];
    }
    if (e->ndel == n0)
        return 0;
    LOG_I("privacy", "event=bearer_stripped where=%s call_id=%.*s", where, IMS_SF(m->call_id));
    f->del_hdrs = e->del;
    f->ndel = e->ndel;
    return 0;
}

void cscf_privacy_forward_to_ue(struct cscf_worker *w, struct proxy_req *r,
                                const struct sip_msg *m, struct proxy_fwd *f)
{
    struct ims_buf add;
    ims_buf_init(&add, 1024);
    struct ims_priv_edits e;
    memset(&e, 0, sizeof(e));
    /* TS 24.229 §4.4: the UE is outside the trust domain */
    bool go = !w->g->cfg->privacy_enabled || edits_for(r, m, "pcscf_to_ue", &add, &e, f);
    if (go && f->ndel && f->del_hdrs != e.del) /* the caller's own removals: keep them */
        for (size_t i = 0; i < f->ndel && e.ndel < IMS_PRIV_MAX_DEL; i++)
            e.del[e.ndel++] = f->del_hdrs[i];
    if (go && strip_bearer(m, "pcscf_to_ue", &e, f) != 0) {
        ims_proxy_reply(r, 500, "Too Many Header Edits", NULL);
        go = false;
    }
    int rc = go ? ims_proxy_forward(r, f) : 0;
    if (rc)
        ims_proxy_forward_failed(r, rc);
    ims_buf_free(&add);
}

static enum proxy_rsp_action to_ue_response(struct proxy_req *r, int status,
                                            const struct sip_msg *rsp, void *ud)
{
    (void)status;
    (void)ud;
    if (!rsp || !ims_sip_hdr_first(rsp, SIP_H_PRIVACY))
        return PROXY_RSP_RELAY;
    struct ims_buf add;
    ims_buf_init(&add, 1024);
    struct ims_priv_edits e;
    int rc = ims_privacy_response(rsp, &add, &e);
    if (rc || !e.ndel) {
        /* a broken Privacy in a response: it cannot be refused; drop what
         * it might have protected rather than pass it on */
        static const uint16_t safe[] = { SIP_H_P_ASSERTED_IDENTITY, SIP_H_PRIVACY };
        memset(&e, 0, sizeof(e));
        ims_buf_reset(&add);
        if (rc) {
            memcpy(e.del, safe, sizeof(safe));
            e.ndel = 2;
        }
    }
    enum proxy_rsp_action act = PROXY_RSP_RELAY;
    if (e.ndel) {
        log_applied("pcscf_rsp_to_ue", rsp, &e);
        rc = ims_proxy_relay(r, rsp, ims_buf_str(&add), e.del, e.ndel);
        act = rc && !ims_proxy_req_final_sent(r) ? PROXY_RSP_RELAY : PROXY_RSP_TAKEN;
    }
    ims_buf_free(&add);
    return act;
}

void cscf_privacy_on_ue_responses(struct cscf_worker *w, struct proxy_fwd *f)
{
    if (w->g->cfg->privacy_enabled) {
        f->on_response = to_ue_response;
        f->ud = w;
    }
}

/* The first Route value that is not us (the core pops ours when it
 * forwards), or IMS_ENOENT. */
static int foreign_route(struct proxy_req *r, const struct sip_msg *m, struct sip_uri *out)
{
    uint16_t lport = ims_addr_port(&ims_proxy_req_rx(r)->local);
    struct sip_nameaddr na;
    for (size_t i = 0; cscf_nth_nameaddr(m, SIP_H_ROUTE, i, &na) == 0; i++) {
        if (!ims_proxy_uri_is_self(ims_proxy_req_proxy(r), &na.uri, lport)) {
            *out = na.uri;
            return 0;
        }
    }
    return IMS_ENOENT;
}

/* The static route for the Request-URI's domain (then "*"), as the static
 * router picks it (proxy.h), or NULL. */
static const char *static_route(const struct ims_cfg *cfg, const struct sip_msg *m)
{
    const char *any = NULL;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        if (strcmp(cfg->routes[i].domain, "*") == 0)
            any = any ? any : cfg->routes[i].next_hop;
        else if (m->ruri.host.len && ims_str_caseeq_lit(m->ruri.host, cfg->routes[i].domain))
            return cfg->routes[i].next_hop;
    }
    return any;
}

bool cscf_privacy_route_out(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m)
{
    const struct ims_cfg *cfg = w->g->cfg;
    unsigned v;
    if (!cfg->privacy_enabled || !ims_sip_hdr_first(m, SIP_H_PRIVACY) ||
        (ims_privacy_values(m, &v) == 0 && (v & IMS_PRIV_NONE)))
        return false;
    struct sip_uri hop;
    const char *via_static = NULL;
    if (foreign_route(r, m, &hop) != 0) {
        via_static = static_route(cfg, m);
        if (!via_static)
            hop = m->ruri;
        else if (ims_sip_parse_uri(ims_str_cstr(via_static), &hop) != 0)
            return false; /* the static router reports it */
    }
    uint16_t lport = ims_addr_port(&ims_proxy_req_rx(r)->local);
    /* RFC 3261 §19.1.2: no port in a sip: URI means 5060 (sips: 5061) */
    uint16_t port = hop.port ? hop.port : hop.scheme == SIP_URI_SIPS ? 5061 : 5060;
    if (ims_proxy_uri_is_self(ims_proxy_req_proxy(r), &hop, lport) ||
        ims_privacy_trusted(cfg->privacy_trusted, hop.host, port))
        return false; /* inside the trust domain: PAI and Privacy pass */
    struct ims_buf add;
    ims_buf_init(&add, 1024);
    struct ims_priv_edits e;
    struct proxy_fwd f = { .next_hop = ims_str_cstr(via_static) };
    bool go = edits_for(r, m, "scscf_out", &add, &e, &f);
    if (go && strip_bearer(m, "scscf_out", &e, &f) != 0) { /* the token stays here */
        ims_proxy_reply(r, 500, "Too Many Header Edits", NULL);
        go = false;
    }
    int rc = go ? ims_proxy_forward(r, &f) : 0;
    if (rc)
        ims_proxy_forward_failed(r, rc);
    ims_buf_free(&add);
    return true;
}
