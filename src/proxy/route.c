/* route.c - who we are, where requests go: self recognition, static routes,
 * route pre-processing (RFC 3261 §16.4), loop detection (§16.3 item 4) and
 * turning a next-hop URI into transport targets (RFC 3263). */
#define _GNU_SOURCE /* memmem */
#include <string.h>
#include <sys/socket.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "proxy/proxy_int.h"

/* ---- configuration ---- */

static char *dup_cstr(const char *s)
{
    return s ? ims_strndup(s, strlen(s)) : NULL;
}

int px_route_init(struct proxy_shared *sh, const struct proxy_cfg *cfg)
{
    if (cfg->nroutes) {
        sh->routes = ims_calloc(cfg->nroutes, sizeof(*sh->routes));
        if (!sh->routes)
            return IMS_ENOMEM;
    }
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct proxy_route *r = &cfg->routes[i];
        if (!r->domain || !r->next_hop || !*r->domain) {
            LOG_E("proxy", "event=bad_route idx=%zu why=missing_field", i);
            return IMS_EINVAL;
        }
        struct proxy_route_int *ri = &sh->routes[i];
        sh->nroutes = i + 1;
        ri->domain = dup_cstr(r->domain);
        ri->next_hop = dup_cstr(r->next_hop);
        if (!ri->domain || !ri->next_hop)
            return IMS_ENOMEM;
        if (ims_sip_parse_uri(ims_str_cstr(ri->next_hop), &ri->uri) != 0 ||
            (ri->uri.scheme != SIP_URI_SIP && ri->uri.scheme != SIP_URI_SIPS) ||
            !ri->uri.host.len) {
            LOG_E("proxy", "event=bad_route domain=%s next_hop=%s why=not_a_sip_uri", ri->domain,
                  ri->next_hop);
            return IMS_EINVAL;
        }
    }
    return 0;
}

void px_route_free(struct proxy_shared *sh)
{
    for (size_t i = 0; i < sh->nroutes; i++) {
        ims_free(sh->routes[i].domain);
        ims_free(sh->routes[i].next_hop);
    }
    ims_free(sh->routes);
    sh->routes = NULL;
    sh->nroutes = 0;
}

/* ---- self ---- */

static ims_str unbracket(ims_str h)
{
    if (h.len >= 2 && h.p[0] == '[' && h.p[h.len - 1] == ']')
        return ims_str_make(h.p + 1, h.len - 2);
    return h;
}

bool px_host_is_self(const struct ims_proxy *p, ims_str host)
{
    const struct proxy_shared *sh = p->sh;
    host = unbracket(host);
    if (!host.len)
        return false;
    for (size_t i = 0; i < sh->nself; i++)
        if (ims_str_caseeq(host, unbracket(ims_str_cstr(sh->self[i]))))
            return true;
    if (sh->advertise && ims_str_caseeq(host, unbracket(ims_str_cstr(sh->advertise))))
        return true;
    for (int pr = 0; pr < 4; pr++)
        for (int f = 0; f < 2; f++)
            if (p->ifaces[pr][f].ok &&
                ims_str_caseeq(host, unbracket(ims_str_cstr(p->ifaces[pr][f].host))))
                return true;
    return false;
}

bool px_port_is_self(const struct ims_proxy *p, uint16_t port, uint16_t local_port)
{
    const struct proxy_shared *sh = p->sh;
    if (sh->nself_ports == 0)
        return port == local_port;
    for (size_t i = 0; i < sh->nself_ports; i++)
        if (sh->self_ports[i] == port)
            return true;
    return false;
}

static uint16_t uri_default_port(const struct sip_uri *u)
{
    if (u->scheme == SIP_URI_SIPS || ims_str_caseeq_lit(u->transport, "tls"))
        return 5061;
    return 5060;
}

bool ims_proxy_uri_is_self(const struct ims_proxy *p, const struct sip_uri *uri,
                           uint16_t local_port)
{
    if (uri->scheme != SIP_URI_SIP && uri->scheme != SIP_URI_SIPS)
        return false;
    if (!px_host_is_self(p, uri->host))
        return false;
    return px_port_is_self(p, uri->port ? uri->port : uri_default_port(uri), local_port);
}

const struct proxy_route_int *px_route_find(const struct ims_proxy *p, ims_str host)
{
    const struct proxy_shared *sh = p->sh;
    const struct proxy_route_int *def = NULL;
    host = unbracket(host);
    for (size_t i = 0; i < sh->nroutes; i++) {
        const struct proxy_route_int *r = &sh->routes[i];
        if (!def && r->domain[0] == '*' && r->domain[1] == '\0')
            def = r;
        else if (ims_str_caseeq(host, unbracket(ims_str_cstr(r->domain))))
            return r;
    }
    return def;
}

/* ---- interfaces ---- */

static bool is_wildcard(const char *h)
{
    return strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0;
}

const struct proxy_iface *px_iface(struct ims_proxy *p, enum sip_proto proto, int family)
{
    if (proto <= SIP_PROTO_NONE || proto > SIP_PROTO_TLS)
        return NULL;
    int f = family == AF_INET6 ? PX_FAM_V6 : PX_FAM_V4;
    struct proxy_iface *ifc = &p->ifaces[proto][f];
    if (ifc->ok)
        return ifc;
    if (!p->io.local)
        return NULL;
    struct ims_addr a;
    if (p->io.local(p->io.ctx, proto, f == PX_FAM_V6 ? AF_INET6 : AF_INET, &a) != 0)
        return NULL;
    char host[64];
    if (!ims_addr_host(&a, host, sizeof(host)))
        return NULL;
    const char *use = host;
    if (p->sh->advertise) {
        use = p->sh->advertise;
    } else if (is_wildcard(host)) {
        for (size_t i = 0; i < p->sh->nself; i++) {
            if (!is_wildcard(p->sh->self[i])) {
                use = p->sh->self[i];
                break;
            }
        }
        if (use == host)
            LOG_W("proxy", "event=no_advertised_address proto=%s why=wildcard_listener",
                  ims_proto_name(proto));
    }
    size_t n = strlen(use);
    bool v6 = memchr(use, ':', n) != NULL && use[0] != '[';
    if (n + 3 > sizeof(ifc->host))
        return NULL;
    size_t k = 0;
    if (v6)
        ifc->host[k++] = '[';
    memcpy(ifc->host + k, use, n);
    k += n;
    if (v6)
        ifc->host[k++] = ']';
    ifc->host[k] = '\0';
    ifc->port = ims_addr_port(&a);
    char port[IMS_U64_DEC_MAX];
    ifc->hostport_len = IMS_STR_JOIN(ifc->hostport, sizeof(ifc->hostport),
                                     ims_str_make(ifc->host, k), IMS_S(":"),
                                     ims_str_make(port, ims_u64_dec(ifc->port, port)));
    if (ifc->hostport_len == SIZE_MAX) /* host was checked against a smaller bound */
        return NULL;
    ifc->ok = true;
    return ifc;
}

/* ---- Route values ---- */

int px_route_value(const struct sip_msg *m, size_t idx, ims_str *value, struct sip_uri *uri)
{
    size_t k = 0;
    ims_str last = IMS_STR_NULL;
    for (const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_ROUTE); h;
         h = ims_sip_hdr_next(m, h)) {
        struct ims_cur c = ims_cur_of(h->value);
        ims_str e;
        int rc;
        while ((rc = ims_sip_list_next(&c, &e)) == 0) {
            if (k++ == idx) {
                last = e;
                goto found;
            }
            last = e;
        }
        if (rc != IMS_ENOENT)
            return IMS_EPROTO;
    }
    if (idx != SIZE_MAX || !last.len)
        return IMS_ENOENT;
found:;
    struct sip_nameaddr na;
    if (ims_sip_parse_nameaddr(last, &na) != 0)
        return IMS_EPROTO;
    if (value)
        *value = last;
    if (uri)
        *uri = na.uri;
    return 0;
}

int px_route_pre(const struct ims_proxy *p, const struct sip_msg *m, uint16_t local_port,
                 unsigned *npop, bool *strict_fix, bool *to_self)
{
    *npop = 0;
    *strict_fix = false;
    if (m->first[SIP_H_ROUTE] < 0) {
        *to_self = ims_proxy_uri_is_self(p, &m->ruri, local_port);
        return 0;
    }
    /* Count the values and check them all once. */
    size_t n = 0;
    for (const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_ROUTE); h;
         h = ims_sip_hdr_next(m, h)) {
        struct ims_cur c = ims_cur_of(h->value);
        ims_str e;
        int rc;
        while ((rc = ims_sip_list_next(&c, &e)) == 0)
            n++;
        if (rc != IMS_ENOENT)
            return IMS_EPROTO;
    }
    struct sip_uri target = m->ruri;
    size_t usable = n;
    /* §16.4: a Request-URI we put in a Record-Route (ours carry lr) means
     * the previous hop was a strict router: the real target is the last
     * Route value. */
    if (n > 0 && m->ruri.lr && ims_proxy_uri_is_self(p, &m->ruri, local_port)) {
        if (px_route_value(m, SIZE_MAX, NULL, &target) != 0)
            return IMS_EPROTO;
        *strict_fix = true;
        usable = n - 1;
    }
    /* §16.4: pop the top Route while it names us (twice with double RR). */
    unsigned k = 0;
    while (k < usable) {
        struct sip_uri u;
        if (px_route_value(m, k, NULL, &u) != 0)
            return IMS_EPROTO;
        if (!ims_proxy_uri_is_self(p, &u, local_port))
            break;
        k++;
    }
    *npop = k;
    *to_self = k == usable && ims_proxy_uri_is_self(p, &target, local_port);
    return 0;
}

/* ---- loops ---- */

uint32_t ims_proxy_loop_hash(const struct sip_msg *m)
{
    uint32_t h = 2166136261u;
#define MIX(s)                                                                                     \
    do {                                                                                           \
        for (size_t i_ = 0; i_ < (s).len; i_++) {                                                  \
            h ^= (unsigned char)(s).p[i_];                                                         \
            h *= 16777619u;                                                                        \
        }                                                                                          \
        h ^= 0xff;                                                                                 \
        h *= 16777619u;                                                                            \
    } while (0)
    MIX(m->ruri_raw);
    MIX(m->call_id);
    MIX(m->from.tag);
    MIX(m->to.tag);
    char num[4] = { (char)(m->cseq.num >> 24), (char)(m->cseq.num >> 16),
                    (char)(m->cseq.num >> 8), (char)m->cseq.num };
    ims_str ns = ims_str_make(num, 4);
    MIX(ns);
    for (const struct sip_hdr *x = ims_sip_hdr_first(m, SIP_H_ROUTE); x;
         x = ims_sip_hdr_next(m, x))
        MIX(x->value);
    for (const struct sip_hdr *x = ims_sip_hdr_first(m, SIP_H_PROXY_REQUIRE); x;
         x = ims_sip_hdr_next(m, x))
        MIX(x->value);
#undef MIX
    return h;
}

static bool has_our_branch(ims_str s)
{
    static const char pat[] = "z9hG4bKI";
    if (s.len < sizeof(pat) - 1)
        return false;
    return memmem(s.p, s.len, pat, sizeof(pat) - 1) != NULL;
}

bool px_loop_detect(const struct ims_proxy *p, const struct sip_msg *m, uint16_t local_port,
                    uint32_t hash)
{
    for (const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_VIA); h;
         h = ims_sip_hdr_next(m, h)) {
        if (!has_our_branch(h->value)) /* cheap filter: most Via lines are not ours */
            continue;
        struct ims_cur c = ims_cur_of(h->value);
        ims_str e;
        while (ims_sip_list_next(&c, &e) == 0) {
            if (!has_our_branch(e))
                continue;
            struct sip_via v;
            unsigned w;
            uint32_t lh;
            if (ims_sip_parse_via(e, &v) != 0 || !ims_sip_txn_branch_parse(v.branch, &w, &lh))
                continue;
            if (lh != hash || !px_host_is_self(p, v.host))
                continue;
            enum sip_proto pr = SIP_PROTO_UDP;
            ims_proto_parse(v.transport, &pr);
            uint16_t port = v.port ? v.port : (pr == SIP_PROTO_TLS ? 5061 : 5060);
            if (px_port_is_self(p, port, local_port))
                return true;
        }
    }
    return false;
}

/* ---- targets ---- */

static void resolved_cb(void *arg, int err, const struct ims_resolve_target *t, size_t n)
{
    struct proxy_req *r = arg;
    r->ntargets = 0;
    r->cur = 0;
    for (size_t i = 0; !err && i < n && r->ntargets < PROXY_MAX_TARGETS; i++) {
        r->targets[r->ntargets] = (struct sip_dest){ .proto = t[i].proto, .addr = t[i].addr };
        r->ntargets++;
    }
    if (err)
        LOG_I("proxy", "event=resolve_failed err=%s port=%u", ims_strerror(err),
              (unsigned)r->local_port);
    px_fwd_resolved(r, err);
}

int px_uri_dest(const struct sip_uri *uri, struct sip_dest *d, struct px_name *name)
{
    if (uri->scheme != SIP_URI_SIP && uri->scheme != SIP_URI_SIPS)
        return IMS_EINVAL;
    enum sip_proto hint = SIP_PROTO_NONE;
    if (uri->transport.len && ims_proto_parse(uri->transport, &hint) != 0)
        return IMS_EINVAL;
    bool sips = uri->scheme == SIP_URI_SIPS;
    enum sip_proto proto = hint != SIP_PROTO_NONE ? hint : sips ? SIP_PROTO_TLS : SIP_PROTO_UDP;
    ims_str host = uri->maddr.len ? uri->maddr : uri->host;
    uint16_t port = uri->port ? uri->port : (proto == SIP_PROTO_TLS ? 5061 : 5060);
    *d = (struct sip_dest){ .proto = proto };
    /* Numeric hosts need no resolver and no extra loop turn (RFC 3263 §4). */
    if (ims_addr_parse(host, port, &d->addr) == 0)
        return 0;
    *name = (struct px_name){ .host = host, .port = uri->port, .hint = hint, .sips = sips };
    return IMS_EAGAIN;
}

int px_targets(struct proxy_req *r, const struct sip_uri *uri, bool async)
{
    struct sip_dest d;
    struct px_name nm;
    int rc = px_uri_dest(uri, &d, &nm);
    if (rc == 0) {
        r->targets[0] = d;
        r->ntargets = 1;
        r->cur = 0;
        return 0;
    }
    if (rc != IMS_EAGAIN)
        return rc;
    if (!async || !r->p->res)
        return IMS_ENOENT;
    rc = ims_resolve_sip(r->p->res, nm.host, nm.port, nm.hint, nm.sips, resolved_cb, r, &r->rreq);
    if (rc)
        return rc;
    r->resolving = true;
    px_req_ref(r);
    return IMS_EAGAIN;
}
