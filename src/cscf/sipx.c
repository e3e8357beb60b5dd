/* sipx.c - SIP helpers shared by the CSCF roles (cscf_int.h). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "cfg/cfg.h"
#include "cscf/cscf_int.h"
#include "cscf/privacy.h"
#include "net/transport.h"

int64_t cscf_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

int64_t cscf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cscf_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int put(char *out, size_t cap, size_t *k, ims_str s, bool lower)
{
    if (*k + s.len >= cap)
        return IMS_ELIMIT;
    for (size_t i = 0; i < s.len; i++)
        out[(*k)++] = lower ? (char)tolower((unsigned char)s.p[i]) : s.p[i];
    out[*k] = '\0';
    return 0;
}

int cscf_impu_of(const struct sip_uri *u, char *out, size_t cap)
{
    size_t k = 0;
    char port[8];
    if (cap)
        out[0] = '\0';
    switch (u->scheme) {
    case SIP_URI_SIP:
    case SIP_URI_SIPS:
        if (!u->host.len)
            return IMS_EPROTO;
        /* TS 23.003 §13.4: IMPUs are sip: URIs; sips: names the same user */
        if (put(out, cap, &k, IMS_S("sip:"), false))
            return IMS_ELIMIT;
        if (u->user.len &&
            (put(out, cap, &k, u->user, false) || put(out, cap, &k, IMS_S("@"), false)))
            return IMS_ELIMIT;
        if (put(out, cap, &k, u->host, true))
            return IMS_ELIMIT;
        if (u->port) {
            snprintf(port, sizeof(port), ":%u", (unsigned)u->port);
            if (put(out, cap, &k, ims_str_cstr(port), false))
                return IMS_ELIMIT;
        }
        return 0;
    case SIP_URI_TEL:
        if (!u->user.len)
            return IMS_EPROTO;
        return put(out, cap, &k, IMS_S("tel:"), false) || put(out, cap, &k, u->user, false)
                   ? IMS_ELIMIT
                   : 0;
    default:
        return IMS_EPROTO;
    }
}

int cscf_impi_of(const struct sip_uri *u, char *out, size_t cap)
{
    size_t k = 0;
    if (cap)
        out[0] = '\0';
    if ((u->scheme != SIP_URI_SIP && u->scheme != SIP_URI_SIPS) || !u->user.len || !u->host.len)
        return IMS_EPROTO;
    return put(out, cap, &k, u->user, false) || put(out, cap, &k, IMS_S("@"), false) ||
                   put(out, cap, &k, u->host, true)
               ? IMS_ELIMIT
               : 0;
}

bool cscf_credentials(const struct sip_msg *m, struct sip_auth *out)
{
    for (const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_AUTHORIZATION); h;
         h = ims_sip_hdr_next(m, h))
        if (ims_sip_parse_auth(h->value, out) == 0 && ims_str_caseeq_lit(out->scheme, "Digest"))
            return true;
    return false;
}

ims_str cscf_ue_addr(const struct sip_msg *m)
{
    ims_str last = IMS_STR_NULL, e;
    for (const struct sip_hdr *h = m ? ims_sip_hdr_first(m, SIP_H_VIA) : NULL; h;
         h = ims_sip_hdr_next(m, h)) {
        struct ims_cur c = ims_cur_of(h->value);
        while (ims_sip_list_next(&c, &e) == 0)
            last = e;
    }
    struct sip_via v;
    if (!last.len || ims_sip_parse_via(last, &v) != 0)
        return IMS_STR_NULL;
    ims_str host = v.received.len ? v.received : v.host;
    if (host.len > 2 && host.p[0] == '[') /* an address, not a URI: no brackets */
        host = ims_str_make(host.p + 1, host.len - 2);
    return host;
}

bool cscf_auth_integrity_claimed(const struct sip_msg *m)
{
    struct sip_auth a;
    /* The name has to be in the bytes for the param to be: the full parse
     * (~4 000 instructions a line) only for lines that might claim it. */
    for (const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_AUTHORIZATION); h;
         h = ims_sip_hdr_next(m, h))
        if (ims_str_has_casesub(h->value, "integrity-protected") &&
            ims_sip_parse_auth(h->value, &a) == 0 && a.integrity_protected.p &&
            ims_str_caseeq_lit(a.scheme, "Digest"))
            return true;
    return false;
}

int cscf_auth_integrity_set(const struct sip_msg *m, const char *value, struct ims_buf *add)
{
    int rc = 0;
    for (const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_AUTHORIZATION); h && rc == 0;
         h = ims_sip_hdr_next(m, h)) {
        struct sip_auth a;
        size_t mark = add->len;
        rc = ims_buf_add_cstr(add, "Authorization: ");
        bool digest = ims_sip_parse_auth(h->value, &a) == 0 &&
                      ims_str_caseeq_lit(a.scheme, "Digest");
        size_t start = add->len;
        int wr = rc ? rc : digest ? ims_sip_auth_without(h->value, "integrity-protected", add)
                                  : IMS_EPROTO;
        if (wr == IMS_EPROTO) {
            /* Bearer, or one nobody downstream can parse (and so trust):
             * passed on as it came */
            add->len = mark;
            rc = IMS_BUF_CAT(add, IMS_S("Authorization: "), h->value);
        } else {
            rc = wr;
            if (rc == 0 && value)
                rc = IMS_BUF_CAT(add, add->len - start > a.scheme.len ? IMS_S(", ") : IMS_S(" "),
                                 IMS_S("integrity-protected=\""), ims_str_cstr(value),
                                 IMS_S("\""));
        }
        if (rc == 0)
            rc = ims_buf_add_cstr(add, "\r\n");
    }
    return rc;
}

bool cscf_hop_trusted(const struct ims_cscf *g, const struct sip_tp_rx *rx)
{
    if (rx->from_self)
        return true;
    char host[64];
    return ims_privacy_trusted(g->cfg->privacy_trusted,
                               ims_str_cstr(ims_addr_host(&rx->src, host, sizeof(host))),
                               ims_addr_port(&rx->src));
}

long cscf_expires_hdr(const struct sip_msg *m)
{
    const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_EXPIRES);
    uint64_t v;
    if (!h || ims_str_to_u64(ims_str_trim(h->value), UINT32_MAX, &v) != 0)
        return -1;
    return (long)v;
}

/* "0.5" -> 500; absent or malformed: 1000. */
static unsigned q_of(ims_str params)
{
    ims_str v;
    if (ims_sip_param_get(params, "q", &v) != 0 || v.len == 0)
        return 1000;
    unsigned q = 0, scale = 1000;
    size_t i = 0;
    if (v.p[0] == '1')
        return 1000;
    if (v.p[0] != '0')
        return 1000;
    i = 1;
    if (i < v.len && v.p[i] == '.')
        for (i++; i < v.len && scale > 1 && isdigit((unsigned char)v.p[i]); i++) {
            scale /= 10;
            q += (unsigned)(v.p[i] - '0') * scale;
        }
    return q;
}

int cscf_contacts(const struct sip_msg *m, struct ims_reg_binding *out, size_t cap, size_t *n,
                  bool *star)
{
    *n = 0;
    *star = false;
    for (const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_CONTACT); h;
         h = ims_sip_hdr_next(m, h)) {
        ims_str v = ims_str_trim(h->value);
        if (v.len == 1 && v.p[0] == '*') {
            *star = true;
            continue;
        }
        struct ims_cur c = ims_cur_of(v);
        ims_str e;
        int rc;
        while ((rc = ims_sip_list_next(&c, &e)) == 0) {
            struct sip_nameaddr na;
            if (ims_sip_parse_nameaddr(e, &na) != 0)
                return IMS_EPROTO;
            if (*n == cap)
                return IMS_ELIMIT;
            struct ims_reg_binding *b = &out[(*n)++];
            b->uri = na.uri.raw;
            b->expires = -1;
            ims_str ev;
            uint64_t ex;
            if (ims_sip_param_get(na.params, "expires", &ev) == 0) {
                if (ims_str_to_u64(ev, UINT32_MAX, &ex) != 0)
                    return IMS_EPROTO;
                b->expires = (long)ex;
            }
            b->q = q_of(na.params);
            b->instance = IMS_STR_NULL;
            ims_str inst;
            if (ims_sip_param_get(na.params, "+sip.instance", &inst) == 0)
                b->instance = inst;
            /* RFC 5626 §4.2: reg-id is 1 .. 2^31-1; whether it applies is
             * the registrar's call (the first hop must support outbound) */
            b->reg_id = 0;
            ims_str rid;
            if (ims_sip_param_get(na.params, "reg-id", &rid) == 0) {
                uint64_t id;
                if (ims_str_to_u64(rid, INT32_MAX, &id) != 0 || id == 0)
                    return IMS_EPROTO;
                b->reg_id = (uint32_t)id;
            }
        }
        if (rc != IMS_ENOENT)
            return IMS_EPROTO;
    }
    return 0;
}

bool cscf_outbound_asked(const struct ims_reg_binding *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i].reg_id && b[i].instance.len)
            return true;
    return false;
}

int cscf_join_values(const struct sip_msg *m, enum sip_hdr_id id, struct ims_buf *out)
{
    int rc = 0;
    for (const struct sip_hdr *h = ims_sip_hdr_first(m, id); h && rc == 0;
         h = ims_sip_hdr_next(m, h)) {
        struct ims_cur c = ims_cur_of(h->value);
        ims_str e;
        while (rc == 0 && ims_sip_list_next(&c, &e) == 0) {
            if (out->len)
                rc = ims_buf_add_cstr(out, ", ");
            if (rc == 0)
                rc = ims_buf_add_str(out, e);
        }
    }
    return rc;
}

int cscf_nth_nameaddr(const struct sip_msg *m, enum sip_hdr_id id, size_t i,
                      struct sip_nameaddr *out)
{
    size_t k = 0;
    for (const struct sip_hdr *h = ims_sip_hdr_first(m, id); h; h = ims_sip_hdr_next(m, h)) {
        struct ims_cur c = ims_cur_of(h->value);
        ims_str e;
        int rc;
        while ((rc = ims_sip_list_next(&c, &e)) == 0) {
            if (k++ == i)
                return ims_sip_parse_nameaddr(e, out) == 0 ? 0 : IMS_EPROTO;
        }
        if (rc != IMS_ENOENT)
            return IMS_EPROTO;
    }
    return IMS_ENOENT;
}

int cscf_first_nameaddr(ims_str list, struct sip_nameaddr *out)
{
    struct ims_cur c = ims_cur_of(list);
    ims_str e;
    if (ims_sip_list_next(&c, &e) != 0)
        return IMS_ENOENT;
    return ims_sip_parse_nameaddr(e, out) == 0 ? 0 : IMS_EPROTO;
}

int cscf_top_route_self(struct proxy_req *r, const struct sip_msg *m, struct sip_uri *uri)
{
    struct sip_nameaddr na;
    if (cscf_nth_nameaddr(m, SIP_H_ROUTE, 0, &na) != 0)
        return IMS_ENOENT;
    uint16_t lport = ims_addr_port(&ims_proxy_req_rx(r)->local);
    if (!ims_proxy_uri_is_self(ims_proxy_req_proxy(r), &na.uri, lport))
        return IMS_ENOENT;
    *uri = na.uri;
    return 0;
}

bool cscf_has_foreign_route(struct proxy_req *r, const struct sip_msg *m)
{
    uint16_t lport = ims_addr_port(&ims_proxy_req_rx(r)->local);
    struct sip_nameaddr na;
    for (size_t i = 0; cscf_nth_nameaddr(m, SIP_H_ROUTE, i, &na) == 0; i++)
        if (!ims_proxy_uri_is_self(ims_proxy_req_proxy(r), &na.uri, lport))
            return true;
    return false;
}

ims_str cscf_retry_after(unsigned secs, char *buf, size_t cap)
{
    if (!secs)
        return IMS_STR_NULL;
    int n = snprintf(buf, cap, "Retry-After: %u\r\n", secs);
    return n > 0 && (size_t)n < cap ? ims_str_make(buf, (size_t)n) : IMS_STR_NULL;
}

/* ---- deferring to the next loop turn ---- */

struct defer {
    struct cscf_worker *w;
    struct proxy_req *r;
    void (*fn)(struct cscf_worker *w, struct proxy_req *r, void *arg);
    void *arg;
};

static void defer_run(struct ims_loop *loop, void *arg)
{
    struct defer *d = arg;
    d->fn(d->w, d->r, d->arg);
    ims_proxy_req_release(d->r);
    ims_free(d);
}

static void defer_drop(void *arg)
{
    /* the loop is being freed: the proxy (and r) are gone already */
    ims_free(arg);
}

int cscf_defer(struct cscf_worker *w, struct proxy_req *r,
               void (*fn)(struct cscf_worker *w, struct proxy_req *r, void *arg), void *arg)
{
    struct defer *d = ims_calloc(1, sizeof(*d));
    if (!d)
        return IMS_ENOMEM;
    *d = (struct defer){ w, r, fn, arg };
    ims_proxy_req_hold(r);
    if (ims_loop_post(w->loop, defer_run, d, defer_drop) != 0) {
        ims_proxy_req_release(r);
        ims_free(d);
        return IMS_ENOMEM;
    }
    return 0;
}

/* Is host one of the home domains ([scscf] home_domains, else the realm)? */
bool cscf_home_domain(const struct ims_cfg *cfg, ims_str host)
{
    const char *list = cfg->scscf_home_domains ? cfg->scscf_home_domains : cfg->dia_realm;
    if (!list || !host.len)
        return false;
    struct ims_cur c = { list, list + strlen(list) };
    while (!ims_cur_eof(&c)) {
        ims_str d;
        ims_cur_until(&c, ",", &d);
        ims_cur_char(&c, ',');
        if (ims_str_caseeq(ims_str_trim(d), host))
            return true;
    }
    return false;
}

/* The I-CSCF that originating requests for home users go to: [scscf] icscf,
 * else this process's I-CSCF (a listener on its first port), else none. */
bool cscf_icscf_uri(const struct ims_cscf *g, char *out, size_t cap)
{
    const struct ims_cfg *cfg = g->cfg;
    if (cfg->scscf_icscf) {
        snprintf(out, cap, "%s", cfg->scscf_icscf);
        return true;
    }
    if (!g->i_on)
        return false;
    uint16_t port = cfg->icscf_ports.port[0];
    for (size_t i = 0; i < cfg->nlisten; i++) {
        const struct ims_cfg_listen *l = &cfg->listen[i];
        if (ims_addr_port(&l->addr) != port)
            continue;
        char host[64];
        ims_addr_host(&l->addr, host, sizeof(host));
        bool any = strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
        bool v6 = !any && ims_addr_family(&l->addr) == AF_INET6;
        snprintf(out, cap, "sip:%s%s%s:%u", v6 ? "[" : "", any ? "127.0.0.1" : host,
                 v6 ? "]" : "", (unsigned)port);
        return true;
    }
    return false;
}
