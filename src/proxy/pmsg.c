/* pmsg.c - the proxy's messages, on top of sip/build.h: local responses
 * (ims_sip_build_response), forwarded requests and relayed responses (one
 * ims_sip_rewrite() each, with the edit list planned here).
 *
 * What the plans add to the shared builder: the received/rport edit of the
 * old top Via (RFC 3261 §18.2.1, RFC 3581 §4) as a SET_VALUE, Route pops that
 * span several Route lines and the strict-router fix-up (§16.4) as
 * POP/DELETE/SET edits, double Record-Route (RFC 5658) as inserts.  The
 * edit texts live in a stack arena for the duration of the call.
 *
 * Cost: the output buffer is reserved once from the input size, so building
 * a message is one allocation at most (none for the per-worker scratch). */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "proxy/proxy_int.h"
#include "sip/build.h"

int px_buf_reserve(struct ims_buf *b, size_t n)
{
    size_t need = b->len + n + 1;
    if (need <= b->alloc)
        return 0;
    if (need > b->cap + 1)
        need = b->cap + 1; /* appends past the cap fail with IMS_ELIMIT */
    char *np = ims_realloc(b->p, need);
    if (!np) {
        ims_buf_free(b);
        return IMS_ENOMEM;
    }
    b->p = np;
    b->alloc = need;
    return 0;
}

/* ---- a bump arena for edit texts ---- */

#define ARENA_SIZE 8192

struct arena {
    char buf[ARENA_SIZE];
    size_t used, mark;
    bool full;
};

static void ar_begin(struct arena *a)
{
    a->mark = a->used;
}

static void ar_put(struct arena *a, const void *p, size_t n)
{
    if (a->full || n > ARENA_SIZE - a->used) {
        a->full = true;
        return;
    }
    memcpy(a->buf + a->used, p, n);
    a->used += n;
}

static void ar_str(struct arena *a, ims_str s)
{
    ar_put(a, s.p, s.len);
}

static void ar_cstr(struct arena *a, const char *s)
{
    ar_put(a, s, strlen(s));
}

static void ar_u(struct arena *a, unsigned long v)
{
    char tmp[IMS_U64_DEC_MAX];
    ar_put(a, tmp, ims_u64_dec(v, tmp));
}

static ims_str ar_end(struct arena *a)
{
    return a->full ? IMS_STR_NULL : ims_str_make(a->buf + a->mark, a->used - a->mark);
}

/* ---- edit lists ---- */

struct plan {
    struct sip_edit e[SIP_EDIT_MAX];
    size_t n;
    bool over;
};

static void push(struct plan *pl, enum sip_edit_op op, size_t hdr, ims_str text)
{
    if (pl->n == SIP_EDIT_MAX) {
        pl->over = true;
        return;
    }
    pl->e[pl->n++] = (struct sip_edit){ .op = op, .hdr = hdr, .text = text };
}

static bool deleted(uint16_t id, const uint16_t *del, size_t ndel)
{
    if (id == SIP_H_OTHER || id == SIP_H_CONTENT_LENGTH)
        return false;
    for (size_t i = 0; i < ndel; i++)
        if (del[i] == id)
            return true;
    return false;
}

/* ---- local responses ---- */

static const char hexd[] = "0123456789abcdef";
static ims_str top_via_value(const struct sip_msg *m, const struct sip_hdr *h,
                             const struct sip_tp_rx *rx, struct arena *ar);

void px_to_tag(const struct sip_msg *req, uint32_t salt, char tag[8])
{
    /* §8.2.6.2: the same To tag for every retransmission of the request */
    uint32_t x = 2166136261u ^ salt;
    ims_str keys[3] = { req->call_id, req->from.tag, req->via1.branch };
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < keys[k].len; i++)
            x = (x ^ (unsigned char)keys[k].p[i]) * 16777619u;
    for (int k = 0; k < 8; k++)
        tag[k] = hexd[(x >> (28 - 4 * k)) & 15];
}

int px_build_response(const struct sip_msg *req, const struct px_rsp_args *a,
                      struct ims_buf *out)
{
    char tag[8];
    px_to_tag(req, a->tag_salt, tag);
    int rc = px_buf_reserve(out, req->head_len + 128 + a->hdrs.len + a->body.len +
                                     a->content_type.len);
    if (rc)
        return rc;
    /* RFC 3581 §4 / RFC 3261 §18.2.1: the top Via of the response carries
     * received and rport.  The builder copies Via values as they are, so it
     * gets a shallow copy of the message whose first Via line's value is the
     * patched one (the header array is small: a few hundred bytes). */
    int fv = req->first[SIP_H_VIA];
    if (a->rx && fv >= 0 && req->nhdrs <= SIP_MAX_HEADERS_DEFAULT && req->err_status == 0) {
        struct arena ar;
        ar.used = 0;
        ar.full = false;
        ims_str v = top_via_value(req, &req->hdrs[fv], a->rx, &ar);
        if (v.len) {
            struct sip_hdr hdrs[SIP_MAX_HEADERS_DEFAULT];
            struct sip_msg m2 = *req;
            memcpy(hdrs, req->hdrs, req->nhdrs * sizeof(hdrs[0]));
            hdrs[fv].value = v;
            m2.hdrs = hdrs;
            return ims_sip_build_response(out, &m2, a->status, a->reason, ims_str_make(tag, 8),
                                          a->hdrs, a->content_type, a->body);
        }
    }
    return ims_sip_build_response(out, req, a->status, a->reason, ims_str_make(tag, 8), a->hdrs,
                                  a->content_type, a->body);
}

/* ---- forwarded requests ---- */

/* Finds a valueless "rport" param in a Via's params; returns the offset (in
 * params) just after the name, or -1. */
static long rport_insert_pos(ims_str params)
{
    size_t i = 0;
    while (i < params.len) {
        if (params.p[i] != ';') {
            i++;
            continue;
        }
        i++;
        while (i < params.len && (params.p[i] == ' ' || params.p[i] == '\t'))
            i++;
        size_t n0 = i;
        while (i < params.len && ims_is_token_char((unsigned char)params.p[i]))
            i++;
        ims_str name = ims_str_make(params.p + n0, i - n0);
        size_t end = i;
        while (i < params.len && (params.p[i] == ' ' || params.p[i] == '\t'))
            i++;
        if (ims_str_caseeq_lit(name, "rport") && (i >= params.len || params.p[i] != '='))
            return (long)end;
    }
    return -1;
}

/* The first Via line's value with received= and rport=<port> for the packet
 * source (RFC 3261 §18.2.1, RFC 3581 §4), or empty when nothing changes. */
static ims_str top_via_value(const struct sip_msg *m, const struct sip_hdr *h,
                             const struct sip_tp_rx *rx, struct arena *ar)
{
    const struct sip_via *v = &m->via1;
    ims_str val = h->value, raw = v->raw;
    if (!rx || !raw.len || raw.p < val.p || raw.p + raw.len > val.p + val.len)
        return IMS_STR_NULL;
    char ip[64];
    if (!ims_addr_host(&rx->src, ip, sizeof(ip)))
        return IMS_STR_NULL;
    ims_str ips = ims_str_cstr(ip);
    ims_str host = v->host; /* an IPv6 sent-by keeps its brackets */
    if (host.len >= 2 && host.p[0] == '[')
        host = ims_str_make(host.p + 1, host.len - 2);
    bool need_received = v->received.len == 0 && (v->rport || !ims_str_caseeq(host, ips));
    long rp = -1;
    if (v->rport && v->rport_value == 0 && v->params.len && v->params.p >= raw.p &&
        v->params.p + v->params.len <= raw.p + raw.len)
        rp = rport_insert_pos(v->params);
    if (!need_received && rp < 0)
        return IMS_STR_NULL;
    const char *raw_end = raw.p + raw.len;
    ar_begin(ar);
    if (rp >= 0) {
        const char *at = v->params.p + rp;
        ar_put(ar, val.p, (size_t)(at - val.p));
        ar_cstr(ar, "=");
        ar_u(ar, ims_addr_port(&rx->src));
        ar_put(ar, at, (size_t)(raw_end - at));
    } else {
        ar_put(ar, val.p, (size_t)(raw_end - val.p));
    }
    if (need_received) {
        ar_cstr(ar, ";received=");
        ar_str(ar, ips);
    }
    ar_put(ar, raw_end, (size_t)(val.p + val.len - raw_end));
    return ar_end(ar);
}

#define MAX_ROUTE_VALUES 64

/* Route edits: pop the first npop values (over all Route lines) and, with
 * the strict fix, drop the last value too. */
static int plan_routes(const struct sip_msg *m, const struct px_fwd_args *a, const bool *gone,
                       struct plan *pl, struct arena *ar)
{
    struct {
        size_t hdr;
        ims_str v;
    } vals[MAX_ROUTE_VALUES];
    size_t n = 0;
    for (const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_ROUTE); h;
         h = ims_sip_hdr_next(m, h)) {
        struct ims_cur c = ims_cur_of(h->value);
        ims_str e;
        int rc;
        while ((rc = ims_sip_list_next(&c, &e)) == 0) {
            if (n == MAX_ROUTE_VALUES)
                return IMS_ELIMIT;
            vals[n].hdr = (size_t)(h - m->hdrs);
            vals[n++].v = e;
        }
        if (rc != IMS_ENOENT)
            return IMS_EPROTO;
    }
    size_t last = a->strict_fix && n ? n - 1 : SIZE_MAX;
    for (size_t i = 0; i < n;) {
        size_t hdr = vals[i].hdr, j = i, kept = 0, popped = 0;
        bool prefix = true;
        for (; j < n && vals[j].hdr == hdr; j++) {
            bool keep = j >= a->npop && j != last;
            if (keep)
                kept++;
            else if (kept)
                prefix = false; /* a value after a kept one goes */
            else
                popped++;
        }
        if (gone[hdr] || kept == j - i) {
            /* deleted anyway, or unchanged */
        } else if (kept == 0) {
            push(pl, SIP_EDIT_DELETE, hdr, IMS_STR_NULL);
        } else if (prefix) {
            for (size_t k = 0; k < popped; k++)
                push(pl, SIP_EDIT_POP_VALUE, hdr, IMS_STR_NULL);
        } else {
            ar_begin(ar);
            bool any = false;
            for (size_t k = i; k < j; k++) {
                if (k < a->npop || k == last)
                    continue;
                if (any)
                    ar_cstr(ar, ", ");
                ar_str(ar, vals[k].v);
                any = true;
            }
            push(pl, SIP_EDIT_SET_VALUE, hdr, ar_end(ar));
        }
        i = j;
    }
    return ar->full ? IMS_ELIMIT : 0;
}

int px_build_request(const struct sip_msg *m, const struct px_fwd_args *a, struct ims_buf *out)
{
    struct plan pl;
    struct arena ar;
    pl.n = 0;
    pl.over = false;
    ar.used = 0;
    ar.full = false;
    bool gone[SIP_MAX_HEADERS_DEFAULT] = { false };
    if (m->nhdrs > SIP_MAX_HEADERS_DEFAULT)
        return IMS_ELIMIT;

    if (a->ruri.len)
        push(&pl, SIP_EDIT_RURI, 0, a->ruri);
    /* §16.6 item 8: our Via on top; item 4: Record-Route above the others */
    ar_begin(&ar);
    ar_cstr(&ar, "Via: SIP/2.0/");
    ar_str(&ar, a->via_proto);
    ar_cstr(&ar, " ");
    ar_str(&ar, a->via_host);
    ar_cstr(&ar, ";branch=");
    ar_str(&ar, a->branch);
    if (a->rport)
        ar_cstr(&ar, ";rport");
    ar_cstr(&ar, "\r\n");
    push(&pl, SIP_EDIT_INSERT, 0, ar_end(&ar));
    for (int i = 0; i < 2; i++) {
        if (!a->rr[i].len)
            continue;
        ar_begin(&ar);
        ar_cstr(&ar, "Record-Route: ");
        ar_str(&ar, a->rr[i]);
        ar_cstr(&ar, "\r\n");
        push(&pl, SIP_EDIT_INSERT, 0, ar_end(&ar));
    }
    for (size_t i = 0; i < m->nhdrs; i++) {
        if (deleted(m->hdrs[i].id, a->del, a->ndel)) {
            gone[i] = true;
            push(&pl, SIP_EDIT_DELETE, i, IMS_STR_NULL);
        }
    }
    int fv = m->first[SIP_H_VIA];
    if (fv >= 0 && !gone[fv]) {
        ims_str v = top_via_value(m, &m->hdrs[fv], a->rx, &ar);
        if (v.len)
            push(&pl, SIP_EDIT_SET_VALUE, (size_t)fv, v);
    }
    /* §16.6 item 3 */
    int mf = m->first[SIP_H_MAX_FORWARDS];
    if (mf >= 0 && !gone[mf]) {
        ar_begin(&ar);
        ar_u(&ar, m->max_forwards > 0 ? (unsigned long)(m->max_forwards - 1) : 0);
        push(&pl, SIP_EDIT_SET_VALUE, (size_t)mf, ar_end(&ar));
    } else {
        push(&pl, SIP_EDIT_INSERT, m->nhdrs, IMS_S("Max-Forwards: 70\r\n"));
    }
    if (a->npop || a->strict_fix) {
        int rc = plan_routes(m, a, gone, &pl, &ar);
        if (rc)
            return rc;
    }
    if (a->add_hdrs.len)
        push(&pl, SIP_EDIT_INSERT, m->nhdrs, a->add_hdrs);
    if (pl.over || ar.full)
        return IMS_ELIMIT;
    int rc = px_buf_reserve(out, m->len + ar.used + a->add_hdrs.len + a->ruri.len + 64);
    if (rc)
        return rc;
    return ims_sip_rewrite(out, m, pl.e, pl.n);
}

/* ---- relayed responses ---- */

int px_build_relay(const struct sip_msg *rsp, ims_str add_hdrs, const uint16_t *del, size_t ndel,
                   struct ims_buf *out)
{
    struct plan pl;
    pl.n = 0;
    pl.over = false;
    int fv = rsp->first[SIP_H_VIA];
    if (fv < 0)
        return IMS_EPROTO;
    /* §16.7 step 9: remove the topmost Via value (ours) */
    push(&pl, SIP_EDIT_POP_VALUE, (size_t)fv, IMS_STR_NULL);
    for (size_t i = 0; i < rsp->nhdrs; i++)
        if ((int)i != fv && deleted(rsp->hdrs[i].id, del, ndel))
            push(&pl, SIP_EDIT_DELETE, i, IMS_STR_NULL);
    if (add_hdrs.len)
        push(&pl, SIP_EDIT_INSERT, rsp->nhdrs, add_hdrs);
    if (pl.over)
        return IMS_ELIMIT;
    int rc = px_buf_reserve(out, rsp->len + add_hdrs.len + 32);
    if (rc)
        return rc;
    return ims_sip_rewrite(out, rsp, pl.e, pl.n);
}

/* The text of the first Via line after its first value, or empty. */
static ims_str via_rest(const struct sip_msg *m, const struct sip_hdr *h)
{
    ims_str val = h->value, raw = m->via1.raw;
    if (!raw.len || raw.p < val.p || raw.p + raw.len > val.p + val.len) {
        struct ims_cur c = ims_cur_of(val);
        ims_str e;
        if (ims_sip_list_next(&c, &e) != 0)
            return IMS_STR_NULL;
        raw = e;
    }
    const char *p = raw.p + raw.len, *end = val.p + val.len;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == ','))
        p++;
    return ims_str_make(p, (size_t)(end - p));
}

int px_second_via(const struct sip_msg *m, struct sip_via *out)
{
    int first = m->first[SIP_H_VIA];
    if (first < 0)
        return IMS_ENOENT;
    const struct sip_hdr *h = &m->hdrs[first];
    ims_str rest = via_rest(m, h);
    if (!rest.len) {
        h = ims_sip_hdr_next(m, h);
        if (!h)
            return IMS_ENOENT;
        rest = h->value;
    }
    if (!out)
        return 0; /* there is one; no parse asked for */
    struct ims_cur c = ims_cur_of(rest);
    ims_str e;
    if (ims_sip_list_next(&c, &e) != 0)
        return IMS_EPROTO;
    return ims_sip_parse_via(e, out) == 0 ? 0 : IMS_EPROTO;
}

size_t px_rr_value(const struct proxy_iface *ifc, enum sip_proto proto, ims_str user,
                   ims_str params, char *out, size_t outsz)
{
    const char *tp = proto == SIP_PROTO_TCP ? ";transport=tcp"
                     : proto == SIP_PROTO_TLS ? ";transport=tls"
                                              : "";
    /* host and port, not ifc->hostport: callers pass copies with the port
     * the request arrived on */
    char port[IMS_U64_DEC_MAX];
    size_t n = IMS_STR_JOIN(out, outsz, IMS_S("<sip:"), user, user.len ? IMS_S("@") : IMS_S(""),
                            ims_str_cstr(ifc->host), IMS_S(":"),
                            ims_str_make(port, ims_u64_dec(ifc->port, port)), ims_str_cstr(tp),
                            IMS_S(";lr"), params, IMS_S(">"));
    return n == SIZE_MAX ? 0 : n;
}
