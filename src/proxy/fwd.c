/* fwd.c - stateful forwarding (RFC 3261 §16.6), response handling (§16.7),
 * Timer C, CANCEL (§16.10), requests of our own (UAC), and the stateless
 * paths (ACK for 2xx, responses without a transaction: §16.11).
 *
 * Forking is serial: one branch at a time, over the targets the next hop
 * resolved to, failing over on 503, 408 and transport errors.  A forward
 * holds one reference on its request context from ims_proxy_forward() until
 * the final outcome was relayed or handed to the app ("fwd_active"). */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "proxy/proxy_int.h"
#include "sip/build.h"

static void timer_c_cb(struct ims_loop *loop, struct ims_timer *t);
static void ct_cb(struct sip_txn *t, void *ud, const struct sip_txn_ev *ev);

void px_req_timers_init(struct proxy_req *r)
{
    ims_timer_init(&r->tm_c, timer_c_cb, r);
}

static ims_str spec_str(const struct proxy_req *r, size_t off, size_t len)
{
    if (!r->spec.p) /* nothing added yet: NULL + 0 is undefined (UBSan) */
        return IMS_STR_NULL;
    return ims_str_make(r->spec.p + off, len);
}

static int spec_add(struct proxy_req *r, ims_str s, size_t *off, size_t *len)
{
    *off = r->spec.len;
    *len = s.len;
    return s.len ? ims_buf_add(&r->spec, s.p, s.len) : 0;
}

static void fwd_done(struct proxy_req *r)
{
    if (!r->fwd_active)
        return;
    r->fwd_active = false;
    ims_timer_stop(r->p->loop, &r->tm_c);
    px_req_unref(r);
}

static int family_of(const struct sip_dest *d)
{
    return ims_addr_family(&d->addr);
}

/* §16.6 item 4: stay on the path of dialogs this request creates. */
static bool wants_rr(const struct proxy_req *r, const struct sip_msg *m)
{
    return r->p->sh->record_route && !r->uac && !r->no_rr && m->to.tag.len == 0 &&
           ims_sip_method_creates_dialog(m->method);
}

/* ------------------------------------------------------------ targets */

/* Number of Route values left after ours were popped (and, with the strict
 * fix, after the last one became the Request-URI). */
static size_t routes_left(const struct proxy_req *r, const struct sip_msg *m)
{
    if (m->first[SIP_H_ROUTE] < 0)
        return 0;
    size_t n = 0;
    for (const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_ROUTE); h;
         h = ims_sip_hdr_next(m, h)) {
        struct ims_cur c = ims_cur_of(h->value);
        ims_str e;
        while (ims_sip_list_next(&c, &e) == 0)
            n++;
    }
    size_t used = r->npop + (r->strict_fix ? 1 : 0);
    return n > used ? n - used : 0;
}

/* Picks the next hop (§16.5/§16.6 item 6 with loose routing) and fills the
 * targets.  0 (targets ready), IMS_EAGAIN (resolving), or an error. */
static int start_targets(struct proxy_req *r)
{
    struct sip_uri hop;
    if (r->uac) {
        ims_str s = r->l_hop ? spec_str(r, r->s_hop, r->l_hop)
                             : spec_str(r, r->s_ruri, r->l_ruri);
        struct sip_nameaddr na;
        if (r->l_hop == 0 && r->l_route) {
            struct ims_cur c = { r->spec.p + r->s_route, r->spec.p + r->s_route + r->l_route };
            ims_str e;
            if (ims_sip_list_next(&c, &e) != 0 || ims_sip_parse_nameaddr(e, &na) != 0)
                return IMS_EINVAL;
            hop = na.uri;
        } else if (ims_sip_parse_uri(s, &hop) != 0) {
            return IMS_EINVAL;
        }
        return px_targets(r, &hop, true);
    }
    const struct sip_msg *m = ims_proxy_req_msg(r);
    if (!m)
        return IMS_EPROTO;
    if (r->l_hop) {
        if (ims_sip_parse_uri(spec_str(r, r->s_hop, r->l_hop), &hop) != 0)
            return IMS_EINVAL;
    } else if (routes_left(r, m) > 0) {
        if (px_route_value(m, r->npop, NULL, &hop) != 0)
            return IMS_EINVAL;
    } else if (r->l_ruri) {
        if (ims_sip_parse_uri(spec_str(r, r->s_ruri, r->l_ruri), &hop) != 0)
            return IMS_EINVAL;
    } else if (r->strict_fix) {
        if (px_route_value(m, SIZE_MAX, NULL, &hop) != 0)
            return IMS_EINVAL;
    } else {
        hop = m->ruri;
    }
    return px_targets(r, &hop, true);
}

/* ------------------------------------------------------------ building */

static int build_uac(struct proxy_req *r, const struct proxy_iface *ifc,
                     const struct sip_dest *d, ims_str branch, struct ims_buf *b)
{
    char via[PROXY_HOSTPORT_MAX + SIP_BRANCH_MAX + 64];
    size_t vn = IMS_STR_JOIN(via, sizeof(via), IMS_S("SIP/2.0/"),
                             ims_str_cstr(ims_proto_name(d->proto)), IMS_S(" "),
                             ims_str_make(ifc->hostport, ifc->hostport_len), IMS_S(";branch="),
                             branch, d->proto == SIP_PROTO_UDP ? IMS_S(";rport") : IMS_STR_NULL);
    if (vn == SIZE_MAX)
        return IMS_ELIMIT;
    struct sip_req_spec s = {
        .method = r->method,
        .method_name = spec_str(r, r->s_method, r->l_method),
        .ruri = spec_str(r, r->s_ruri, r->l_ruri),
        .via = ims_str_make(via, (size_t)vn),
        .route = spec_str(r, r->s_route, r->l_route),
        .from = spec_str(r, r->s_from, r->l_from),
        .to = spec_str(r, r->s_to, r->l_to),
        .call_id = spec_str(r, r->s_cid, r->l_cid),
        .cseq = r->uac_cseq,
        .max_forwards = -1,
        .extra_headers = spec_str(r, r->s_hdrs, r->l_hdrs),
        .content_type = spec_str(r, r->s_ctype, r->l_ctype),
        .body = spec_str(r, r->s_body, r->l_body),
    };
    int rc = px_buf_reserve(b, r->spec.len + 400);
    return rc ? rc : ims_sip_build_request(b, &s);
}

/* Builds and sends the request to one target in a new client transaction. */
static int send_to_target(struct proxy_req *r, const struct sip_dest *d)
{
    struct ims_proxy *p = r->p;
    const struct proxy_iface *ifc = px_iface(p, d->proto, family_of(d));
    if (!ifc)
        return IMS_ENOENT;
    char branch[SIP_BRANCH_MAX];
    size_t bl = ims_sip_txn_branch_new(p->txns, r->loop_hash, branch);
    ims_str br = ims_str_make(branch, bl);
    struct ims_buf b;
    ims_buf_init(&b, PROXY_OUT_CAP);
    int rc;
    enum sip_method method = r->method;
    ims_str mname = IMS_STR_NULL;
    if (r->uac) {
        rc = build_uac(r, ifc, d, br, &b);
        mname = spec_str(r, r->s_method, r->l_method);
    } else {
        const struct sip_msg *m = ims_proxy_req_msg(r);
        if (!m) {
            ims_buf_free(&b);
            return IMS_EPROTO;
        }
        mname = m->method_name;
        /* room for a flow token (proxy_fwd.rr_user) and ;ob */
        char rr0[PROXY_HOSTPORT_MAX + 320], rr1[PROXY_HOSTPORT_MAX + 320];
        struct px_fwd_args a = {
            .ruri = spec_str(r, r->s_ruri, r->l_ruri),
            .npop = r->npop,
            .strict_fix = r->strict_fix,
            .via_proto = ims_str_cstr(ims_proto_name(d->proto)),
            .via_host = ims_str_make(ifc->hostport, ifc->hostport_len),
            .branch = br,
            .rport = d->proto == SIP_PROTO_UDP,
            .rx = &r->rx,
            .add_hdrs = spec_str(r, r->s_add, r->l_add),
            .del = r->del,
            .ndel = r->ndel,
        };
        if (!a.ruri.len && r->strict_fix) {
            struct sip_uri last;
            if (px_route_value(m, SIZE_MAX, NULL, &last) == 0)
                a.ruri = last.raw;
        }
        if (wants_rr(r, m)) {
            /* RFC 5658 double Record-Route when the transport or the address
             * family changes: the top value faces the next hop, the second
             * the previous one. */
            /* The port is the listener's the request arrived on, not the
             * one we send from: in one process several roles (P-, S-CSCF)
             * share the sending socket, and an in-dialog request must come
             * back to the role that record-routed. */
            uint16_t in_port = ims_addr_port(&r->rx.local);
            ims_str rru = spec_str(r, r->s_rru, r->l_rru), rrp = spec_str(r, r->s_rrp, r->l_rrp);
            int in_fam = ims_addr_family(&r->rx.local);
            if (r->rx.proto != d->proto || in_fam != family_of(d)) {
                a.rr[0] = ims_str_make(rr0, px_rr_value(ifc, d->proto, rru, rrp, rr0, sizeof(rr0)));
                const struct proxy_iface *in = px_iface(p, r->rx.proto, in_fam);
                if (in) {
                    struct proxy_iface back = *in;
                    if (in_port)
                        back.port = in_port;
                    a.rr[1] = ims_str_make(
                        rr1, px_rr_value(&back, r->rx.proto, rru, rrp, rr1, sizeof(rr1)));
                }
            } else {
                struct proxy_iface here = *ifc;
                if (in_port)
                    here.port = in_port;
                a.rr[0] =
                    ims_str_make(rr0, px_rr_value(&here, d->proto, rru, rrp, rr0, sizeof(rr0)));
            }
        }
        rc = px_build_request(m, &a, &b);
    }
    if (rc) {
        ims_buf_free(&b);
        return rc;
    }
    struct sip_txn_client_args ca = {
        .method = method,
        .method_name = mname,
        .branch = br,
        .dest = *d,
        .req = &b,
        .cb = ct_cb,
        .ud = r,
    };
    /* A forwarded request leaves from the port it came in on: a P-CSCF that
     * is not our first UDP listener reaches a UE through the NAT binding the
     * UE opened to it (the Path that brought the request names that port).
     * The source address stays the kernel's: the next hop may be on another
     * network than the previous one. */
    if (!r->uac)
        ims_sip_tp_src_of(&r->rx.local, false, &ca.dest.src);
    struct sip_txn *ct;
    rc = ims_sip_txn_client_new(p->txns, &ca, &ct);
    ims_buf_free(&b);
    if (rc)
        return rc;
    r->ct = ct;
    r->got_prov = false;
    r->got_any = false;
    p->st.forwarded++;
    /* tm_c first waits for any response (noanswer_ms), then, for an
     * INVITE, runs as Timer C */
    if (r->noanswer_ms && !r->uac)
        ims_timer_start(p->loop, &r->tm_c,
                        method == SIP_M_INVITE && r->timer_c_ms < r->noanswer_ms
                            ? r->timer_c_ms
                            : r->noanswer_ms);
    else if (method == SIP_M_INVITE && !r->uac)
        ims_timer_start(p->loop, &r->tm_c, r->timer_c_ms);
    return 0;
}

/* Sends to the current target, then the next ones, until one send works.
 * 0, or the last error (every remaining target failed at once). */
static int attempt(struct proxy_req *r)
{
    int rc = IMS_ENOENT;
    while (r->cur < r->ntargets) {
        rc = send_to_target(r, &r->targets[r->cur]);
        if (rc == 0)
            return 0;
        char a[IMS_ADDR_STRLEN];
        LOG_I("proxy", "event=target_failed target=%s proto=%s err=%s",
              ims_addr_str(&r->targets[r->cur].addr, a, sizeof(a)),
              ims_proto_name(r->targets[r->cur].proto), ims_strerror(rc));
        if (r->best_status == 0)
            r->best_status = 503;
        r->cur++;
    }
    return rc;
}

/* ------------------------------------------------------------ §16.7 */

/* Is status a better final than b (§16.7 step 6: 6xx first, then the lowest
 * class; the first of equals stays)? */
static bool better(int a, int b)
{
    if (a == 0)
        return false;
    if (b == 0)
        return true;
    int ca = a / 100, cb = b / 100;
    if (ca == 6 || cb == 6)
        return ca == 6 && cb != 6;
    return ca < cb;
}

static void remember(struct proxy_req *r, int status, const struct sip_msg *rsp)
{
    if (!better(status, r->best_status))
        return;
    r->best_status = status;
    ims_buf_reset(&r->best);
    if (rsp && ims_buf_add(&r->best, rsp->buf, rsp->len) != 0)
        ims_buf_free(&r->best); /* fall back to a synthesized response */
}

static void relay_or_reply(struct proxy_req *r, int status, const struct sip_msg *rsp)
{
    if (r->final_sent)
        return;
    if (!rsp && status == 408 && r->method != SIP_M_INVITE) {
        /* RFC 4320 §4.2: never a 408 to a non-INVITE.  After Timer F the
         * client's own transaction has ended too: nothing at all then (the
         * server transaction goes quietly); a next hop given up on earlier
         * (proxy_fwd.noanswer_ms) is a 504, the downstream server's time-out. */
        if (!r->nit_expired) {
            ims_proxy_reply(r, 504, NULL, NULL);
            return;
        }
        const char *mn = ims_sip_method_name(r->method);
        LOG_I("proxy", "event=no_final method=%s why=timer_f", mn ? mn : "?");
        px_final_reached(r);
        return;
    }
    if (rsp && status != 503) {
        ims_proxy_relay(r, rsp, IMS_STR_NULL, NULL, 0);
        return;
    }
    /* §16.7 step 6: only a 503 -> answer 500 (a 503 upstream would mean we
     * are unavailable, not the target). */
    if (status == 503)
        ims_proxy_reply(r, 500, "Next Hop Unavailable", NULL);
    else
        ims_proxy_reply(r, status, NULL, NULL);
}

/* The forward is over with (status, rsp) unless the stored best is better. */
static void conclude(struct proxy_req *r, int status, const struct sip_msg *rsp)
{
    struct ims_proxy *p = r->p;
    if (status == 0 || better(r->best_status, status)) {
        status = r->best_status ? r->best_status : 503;
        rsp = NULL;
        if (r->best.len &&
            ims_sip_parse(r->best.p, r->best.len, false, &p->bmsg, p->bhdrs,
                          SIP_MAX_HEADERS_DEFAULT) > 0)
            rsp = &p->bmsg;
    }
    if (r->cancelled && status == 408 && !rsp)
        status = 487;
    if (r->uac) {
        proxy_uac_fn cb = r->uac_cb;
        r->uac_cb = NULL;
        if (cb)
            cb(p, status, rsp, r->uac_ud);
        fwd_done(r);
        return;
    }
    enum proxy_rsp_action act = PROXY_RSP_RELAY;
    if (r->on_rsp)
        act = r->on_rsp(r, status, rsp, r->rsp_ud);
    if (act == PROXY_RSP_RELAY)
        relay_or_reply(r, status, rsp);
    fwd_done(r);
    px_check_unanswered(r); /* TAKEN without an answer or a new forward */
}

/* A branch ended without 2xx (a final >= 300, a timeout, a send failure). */
static void branch_final(struct proxy_req *r, int status, const struct sip_msg *rsp)
{
    /* (not after a non-INVITE's Timer F: its client is gone) */
    bool failover = !r->cancelled && !r->final_sent && (status == 503 || status == 408) &&
                    !r->nit_expired && r->cur + 1 < r->ntargets;
    if (failover) {
        remember(r, status, rsp);
        r->cur++;
        if (attempt(r) == 0)
            return;
        conclude(r, 0, NULL);
        return;
    }
    conclude(r, status, rsp);
}

static void detach_ct(struct proxy_req *r)
{
    if (!r->ct)
        return;
    ims_sip_txn_detach(r->ct);
    r->ct = NULL;
}

static void branch_response(struct proxy_req *r, const struct sip_msg *rsp)
{
    struct ims_proxy *p = r->p;
    int s = rsp->status;
    /* §16.7 step 3: a response with no Via below ours was meant for us (a
     * UAS that answered an INVITE from its CANCEL's Via): its bytes go no
     * further; a final one still ends the branch, as if we had made it */
    bool relayable = r->uac || px_second_via(rsp, NULL) == 0;
    if (!relayable)
        LOG_I("proxy", "event=response_for_us status=%d call_id=%.*s", s, IMS_SF(rsp->call_id));
    if (!r->got_any) {
        r->got_any = true;
        if (r->noanswer_ms && ims_timer_armed(&r->tm_c)) {
            if (r->method == SIP_M_INVITE)
                ims_timer_start(p->loop, &r->tm_c, r->timer_c_ms);
            else
                ims_timer_stop(p->loop, &r->tm_c);
        }
    }
    if (s < 200) {
        if (s == 100)
            return; /* §16.7 step 3: a 100 is not forwarded */
        r->got_prov = true;
        if (r->method == SIP_M_INVITE && ims_timer_armed(&r->tm_c))
            ims_timer_start(p->loop, &r->tm_c, r->timer_c_ms); /* §16.7 step 2 */
        if (r->uac || r->final_sent)
            return;
        enum proxy_rsp_action act = PROXY_RSP_RELAY;
        if (r->on_rsp)
            act = r->on_rsp(r, s, rsp, r->rsp_ud);
        /* RFC 4320 §4.1: no provisional but 100 to a non-INVITE, relayed
         * ones included (our own 100 still goes at Timer E's T2) */
        if (act == PROXY_RSP_RELAY && !r->final_sent && r->method == SIP_M_INVITE && relayable)
            ims_proxy_relay(r, rsp, IMS_STR_NULL, NULL, 0);
        return;
    }
    ims_timer_stop(p->loop, &r->tm_c);
    /* Later 2xx (retransmissions, other forks) find the detached client
     * transaction in Accepted and are relayed statelessly (RFC 6026). */
    detach_ct(r);
    if (s >= 300) {
        branch_final(r, s, relayable ? rsp : NULL);
        return;
    }
    /* §16.7 step 5: a 2xx goes upstream at once */
    if (r->uac) {
        conclude(r, s, rsp);
        return;
    }
    enum proxy_rsp_action act = PROXY_RSP_RELAY;
    if (r->on_rsp)
        act = r->on_rsp(r, s, rsp, r->rsp_ud);
    if (act == PROXY_RSP_RELAY && relayable) {
        if (!r->final_sent)
            ims_proxy_relay(r, rsp, IMS_STR_NULL, NULL, 0);
        else
            px_stateless_response(p, rsp); /* a 2xx after our 487: still relay */
    }
    fwd_done(r);
    /* The relay could fail (no memory): the request still gets a final
     * answer; the 2xx retransmissions then pass statelessly. */
    px_check_unanswered(r);
}

static void ct_cb(struct sip_txn *t, void *ud, const struct sip_txn_ev *ev)
{
    struct proxy_req *r = ud;
    if (r->ct != t) {
        ims_sip_txn_detach(t);
        return;
    }
    px_req_ref(r);
    switch (ev->kind) {
    case SIP_TXN_EV_RESPONSE:
        branch_response(r, ev->msg);
        break;
    case SIP_TXN_EV_TIMEOUT:
        detach_ct(r);
        if (r->method != SIP_M_INVITE)
            r->nit_expired = true;
        branch_final(r, 408, NULL); /* §16.7 step 1: treated as a 408 */
        break;
    case SIP_TXN_EV_TRANSPORT_ERROR:
        detach_ct(r);
        branch_final(r, 503, NULL); /* §16.9: treated as a 503 */
        break;
    case SIP_TXN_EV_TERMINATED:
        r->ct = NULL;
        branch_final(r, 408, NULL);
        break;
    }
    px_req_unref(r);
}

/* §16.8 Timer C: the branch took too long. */
static void timer_c_cb(struct ims_loop *loop, struct ims_timer *t)
{
    struct proxy_req *r = t->data;
    if (!r->ct)
        return;
    px_req_ref(r);
    if (r->noanswer_ms && !r->got_any) {
        /* nothing came back: no CANCEL before a provisional (RFC 3261
         * §9.1); the detached transaction dies on its own timers */
        LOG_I("proxy", "event=no_answer branch=%.*s ms=%u", IMS_SF(ims_sip_txn_branch(r->ct)),
              r->noanswer_ms);
        detach_ct(r);
        branch_final(r, 408, NULL);
        px_req_unref(r);
        return;
    }
    LOG_I("proxy", "event=timer_c branch=%.*s", IMS_SF(ims_sip_txn_branch(r->ct)));
    ims_sip_txn_cancel(r->ct);
    if (!r->got_prov) {
        /* no provisional: nothing to wait for, it counts as a 408 */
        detach_ct(r);
        branch_final(r, 408, NULL);
    }
    /* else the branch ends with the 487 to our CANCEL, or times out */
    px_req_unref(r);
}

/* ------------------------------------------------------------ public API */

int ims_proxy_forward(struct proxy_req *r, const struct proxy_fwd *f)
{
    if (r->uac || !r->st || r->final_sent || r->fwd_active || r->cancelled ||
        f->ndel > PROXY_MAX_DEL)
        return IMS_EINVAL;
    ims_buf_reset(&r->spec);
    int rc = spec_add(r, f->ruri, &r->s_ruri, &r->l_ruri);
    if (!rc)
        rc = spec_add(r, f->next_hop, &r->s_hop, &r->l_hop);
    if (!rc)
        rc = spec_add(r, f->add_hdrs, &r->s_add, &r->l_add);
    if (!rc)
        rc = spec_add(r, f->rr_user, &r->s_rru, &r->l_rru);
    if (!rc)
        rc = spec_add(r, f->rr_params, &r->s_rrp, &r->l_rrp);
    if (rc)
        return rc;
    if (f->ndel)
        memcpy(r->del, f->del_hdrs, f->ndel * sizeof(uint16_t));
    r->ndel = f->ndel;
    r->on_rsp = f->on_response;
    r->rsp_ud = f->ud;
    r->noanswer_ms = f->noanswer_ms;
    unsigned tc = r->p->sh->timer_c;
    r->timer_c_ms = f->ring_ms && f->ring_ms < tc ? f->ring_ms : tc;
    r->no_rr = f->no_rr;
    r->best_status = 0;
    ims_buf_reset(&r->best);
    r->ntargets = r->cur = 0;
    px_req_ref(r);
    r->fwd_active = true;
    rc = start_targets(r);
    if (rc == IMS_EAGAIN)
        return 0; /* px_fwd_resolved() continues */
    if (rc == 0)
        rc = attempt(r);
    if (rc) {
        r->fwd_active = false;
        px_req_unref(r);
    }
    return rc;
}

/* True when a 503 line may be logged now: under overload every request
 * fails the same way, so at most 5 lines a second, the rest counted. */
static bool fwd_fail_log_ok(struct ims_proxy *p, unsigned *suppressed)
{
    struct log_slot *s = &p->fwd_fail_log;
    uint64_t now = ims_loop_now(p->loop);
    *suppressed = 0;
    if (now - s->window_ms >= 1000) {
        *suppressed = s->count > 5 ? s->count - 5 : 0;
        s->window_ms = now;
        s->count = 0;
    }
    return ++s->count <= 5;
}

int ims_proxy_forward_failed(struct proxy_req *r, int err)
{
    struct ims_proxy *p = r->p;
    const struct sip_msg *m = ims_proxy_req_msg(r);
    ims_str cid = m ? m->call_id : IMS_STR_NULL;
    if (err == IMS_EINVAL || err == IMS_EPROTO) {
        /* our bug or a request we cannot rebuild: a retry would not help */
        LOG_W("proxy", "event=forward_failed err=%s status=500 call_id=%.*s", ims_strerror(err),
              IMS_SF(cid));
        int rc = ims_proxy_reply(r, 500, "Forwarding Failed", NULL);
        return rc ? rc : 500;
    }
    /* RFC 3261 §21.5.4: temporary overload, try again after Retry-After;
     * §16.7 step 6 / §16.9: no target reachable counts as a 503 too */
    unsigned sup;
    if (fwd_fail_log_ok(p, &sup))
        LOG_W("proxy", "event=forward_failed err=%s status=503 call_id=%.*s suppressed=%u",
              ims_strerror(err), IMS_SF(cid), sup);
    char ra[32];
    int n = snprintf(ra, sizeof(ra), "Retry-After: %u\r\n", p->sh->retry_after);
    struct proxy_reply_opts o = { .hdrs = ims_str_make(ra, n > 0 ? (size_t)n : 0) };
    const char *why = err == IMS_ENOENT ? "No Route To Destination" : "Service Unavailable";
    int rc = ims_proxy_reply(r, 503, why, &o);
    return rc ? rc : 503;
}

int ims_proxy_relay(struct proxy_req *r, const struct sip_msg *rsp, ims_str add_hdrs,
                    const uint16_t *del_hdrs, size_t ndel)
{
    struct ims_proxy *p = r->p;
    if (r->uac || r->final_sent || rsp->kind != SIP_MSG_RESPONSE)
        return IMS_EINVAL;
    struct ims_buf b;
    ims_buf_init(&b, PROXY_OUT_CAP);
    int rc = px_build_relay(rsp, add_hdrs, del_hdrs, ndel, &b);
    if (rc) {
        ims_buf_free(&b);
        return rc;
    }
    p->st.relayed++;
    int s = rsp->status;
    if (r->st) {
        rc = ims_sip_txn_respond(r->st, s, &b);
    } else {
        rc = px_send(p, &r->updest, b.p, b.len);
        ims_buf_free(&b);
    }
    if (s >= 200) {
        px_req_ref(r);
        px_final_reached(r);
        px_req_unref(r);
    } else {
        ims_timer_stop(p->loop, &r->tm_trying);
    }
    return rc;
}

void px_fwd_resolved(struct proxy_req *r, int err)
{
    r->resolving = false;
    if (r->fwd_active) {
        if (r->cancelled) {
            conclude(r, 487, NULL);
        } else if (err || r->ntargets == 0 || attempt(r) != 0) {
            if (r->best_status == 0)
                r->best_status = 503;
            conclude(r, 0, NULL);
        }
    }
    px_req_unref(r); /* the resolver's reference */
}

int ims_proxy_uac_send(struct ims_proxy *p, const struct proxy_uac_req *rq, proxy_uac_fn cb,
                       void *ud)
{
    struct ims_cur c = ims_cur_of(rq->method);
    ims_str tok;
    if (!cb || ims_cur_token(&c, &tok, 32) != 0 || !ims_cur_eof(&c) || !rq->ruri.len ||
        !rq->from.len || !rq->to.len || !rq->call_id.len || rq->body.len > PROXY_OUT_CAP)
        return IMS_EINVAL;
    enum sip_method m = ims_sip_method_id(rq->method);
    if (m == SIP_M_ACK || m == SIP_M_CANCEL)
        return IMS_EINVAL;
    struct proxy_req *r = px_req_new(p);
    if (!r)
        return IMS_ELIMIT;
    px_req_ref(r);
    r->uac = true;
    r->method = m;
    r->uac_cseq = rq->cseq;
    int rc = spec_add(r, rq->method, &r->s_method, &r->l_method);
    if (!rc)
        rc = spec_add(r, rq->ruri, &r->s_ruri, &r->l_ruri);
    if (!rc)
        rc = spec_add(r, rq->from, &r->s_from, &r->l_from);
    if (!rc)
        rc = spec_add(r, rq->to, &r->s_to, &r->l_to);
    if (!rc)
        rc = spec_add(r, rq->call_id, &r->s_cid, &r->l_cid);
    if (!rc)
        rc = spec_add(r, rq->route, &r->s_route, &r->l_route);
    if (!rc)
        rc = spec_add(r, rq->next_hop, &r->s_hop, &r->l_hop);
    if (!rc)
        rc = spec_add(r, rq->hdrs, &r->s_hdrs, &r->l_hdrs);
    if (!rc)
        rc = spec_add(r, rq->content_type, &r->s_ctype, &r->l_ctype);
    if (!rc)
        rc = spec_add(r, rq->body, &r->s_body, &r->l_body);
    if (rc)
        goto out;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < rq->call_id.len; i++)
        h = (h ^ (unsigned char)rq->call_id.p[i]) * 16777619u;
    r->loop_hash = h ^ rq->cseq;
    r->uac_cb = cb;
    r->uac_ud = ud;
    r->fwd_active = true;
    px_req_ref(r);
    rc = start_targets(r);
    if (rc == 0)
        rc = attempt(r);
    else if (rc == IMS_EAGAIN)
        rc = 0;
    if (rc) {
        r->uac_cb = NULL;
        r->fwd_active = false;
        px_req_unref(r);
    }
out:
    px_req_unref(r);
    return rc;
}

/* ------------------------------------------------------------ CANCEL */

void px_cancel_rx(struct ims_proxy *p, const struct sip_msg *m, const struct sip_tp_rx *rx)
{
    struct sip_txn *inv = ims_sip_txn_find_cancelled(p->txns, m);
    if (!inv) {
        /* §16.10: no context: forward it statelessly */
        px_stateless_forward(p, m, rx);
        return;
    }
    /* §16.10: 200 to the CANCEL, in a server transaction of its own so that
     * retransmissions are absorbed. */
    struct sip_txn *cst;
    if (ims_sip_txn_server_new(p->txns, m, rx, NULL, NULL, &cst) == 0) {
        struct ims_buf b;
        ims_buf_init(&b, PROXY_OUT_CAP);
        struct px_rsp_args a = { .status = 200, .tag_salt = p->tag_salt, .rx = rx };
        if (px_build_response(m, &a, &b) == 0)
            ims_sip_txn_respond(cst, 200, &b);
        ims_buf_free(&b);
        ims_sip_txn_detach(cst);
    } else {
        px_reply_stateless(p, m, rx, 200, NULL, IMS_STR_NULL);
    }
    struct proxy_req *r = ims_sip_txn_user(inv);
    if (!r || r->uac || r->final_sent || r->cancelled)
        return;
    px_req_ref(r);
    r->cancelled = true;
    LOG_D("proxy", "event=cancelled call_id=%.*s", IMS_SF(m->call_id));
    if (r->ct) {
        /* the branch answers 487 (relayed as the final) */
        ims_sip_txn_cancel(r->ct);
    } else {
        /* nothing pending downstream (app suspended, resolving): §9.2 */
        ims_proxy_reply(r, 487, NULL, NULL);
    }
    if (r->on_cancel && !r->cancel_cb_done) {
        r->cancel_cb_done = true;
        r->on_cancel(r, r->cancel_ud);
    }
    px_req_unref(r);
}

/* ------------------------------------------------------------ stateless */

static const char hexd[] = "0123456789abcdef";

/* A stateless forward whose next hop is a name (an ACK for a 2xx along a
 * route set that names a proxy by its host name, RFC 3263): its bytes and
 * arrival are kept until the resolver answers, then it is forwarded as if
 * it had just come (parsed again, the same next hop).  At most
 * PROXY_SL_WAIT_MAX per worker, so that a flood towards names that do not
 * resolve costs no more than that. */
struct px_sl_wait {
    struct px_sl_wait *prev, *next; /* p->sl_wait */
    struct ims_proxy *p;
    struct ims_resolve_req rreq;
    struct sip_tp_rx rx;            /* rx.buf = buf */
    char buf[];
};

static void sl_forward(struct ims_proxy *p, const struct sip_msg *m, const struct sip_tp_rx *rx,
                       const struct sip_dest *resolved);

static void sl_unlink_free(struct px_sl_wait *w)
{
    struct ims_proxy *p = w->p;
    if (w->prev)
        w->prev->next = w->next;
    else
        p->sl_wait = w->next;
    if (w->next)
        w->next->prev = w->prev;
    p->sl_nwait--;
    ims_free(w);
}

static void sl_resolved(void *arg, int err, const struct ims_resolve_target *t, size_t n)
{
    struct px_sl_wait *w = arg;
    struct ims_proxy *p = w->p;
    struct sip_msg m;
    struct sip_hdr hdrs[SIP_MAX_HEADERS_DEFAULT];
    if (err || n == 0) {
        p->st.stateless_unroutable++;
        LOG_I("proxy", "event=stateless_unroutable why=resolve err=%s",
              ims_strerror(err ? err : IMS_ENOENT));
    } else if (ims_sip_parse(w->rx.buf, w->rx.len, w->rx.proto != SIP_PROTO_UDP, &m, hdrs,
                             SIP_MAX_HEADERS_DEFAULT) >= 0) {
        struct sip_dest d = { .proto = t[0].proto, .addr = t[0].addr };
        sl_forward(p, &m, &w->rx, &d);
    }
    sl_unlink_free(w);
}

static void sl_wait(struct ims_proxy *p, const struct sip_msg *m, const struct sip_tp_rx *rx,
                    const struct px_name *nm)
{
    struct px_sl_wait *w = NULL;
    const char *why = !p->res                         ? "no_resolver"
                      : p->sl_nwait >= PROXY_SL_WAIT_MAX ? "wait_full"
                                                         : NULL;
    if (!why) {
        w = ims_alloc(sizeof(*w) + rx->len);
        why = w ? NULL : "no_memory";
    }
    if (w) {
        memset(w, 0, sizeof(*w));
        memcpy(w->buf, rx->buf, rx->len);
        w->p = p;
        w->rx = *rx;
        w->rx.buf = w->buf;
        w->rx.tls_peer_cn = NULL; /* not kept: a stateless hop does not look at it */
        int rc = ims_resolve_sip(p->res, nm->host, nm->port, nm->hint, nm->sips, sl_resolved, w,
                                 &w->rreq);
        if (rc == 0) {
            w->next = p->sl_wait;
            if (w->next)
                w->next->prev = w;
            p->sl_wait = w;
            p->sl_nwait++;
            return;
        }
        ims_free(w);
        why = "resolver_refused";
    }
    p->st.stateless_unroutable++;
    LOG_I("proxy", "event=stateless_unroutable why=%s method=%.*s call_id=%.*s", why,
          IMS_SF(m->method_name), IMS_SF(m->call_id));
}

void px_stateless_wait_free(struct ims_proxy *p)
{
    while (p->sl_wait) {
        ims_resolve_cancel(&p->sl_wait->rreq);
        sl_unlink_free(p->sl_wait);
    }
}

void px_stateless_forward(struct ims_proxy *p, const struct sip_msg *m,
                          const struct sip_tp_rx *rx)
{
    sl_forward(p, m, rx, NULL);
}

/* resolved: the next hop's address when it was a name (sl_resolved) */
static void sl_forward(struct ims_proxy *p, const struct sip_msg *m, const struct sip_tp_rx *rx,
                       const struct sip_dest *resolved)
{
    uint16_t lport = ims_addr_port(&rx->local);
    if (m->max_forwards == 0)
        return;
    unsigned npop;
    bool strict_fix, to_self;
    if (px_route_pre(p, m, lport, &npop, &strict_fix, &to_self) != 0 || to_self)
        return; /* an ACK or CANCEL for us ends here */
    /* Next hop: the app's if it names one (proxy_app.stateless_hop), else
     * like the static router */
    struct proxy_req tmp = { .p = p, .npop = npop, .strict_fix = strict_fix };
    struct sip_uri hop;
    const struct proxy_app *app = px_find_app(p, lport);
    char app_hop[PROXY_HOSTPORT_MAX + 64];
    if (app->stateless_hop && app->stateless_hop(app->ctx, m, rx, app_hop, sizeof(app_hop))) {
        if (ims_sip_parse_uri(ims_str_cstr(app_hop), &hop) != 0)
            return;
    } else if (routes_left(&tmp, m) > 0) {
        if (px_route_value(m, npop, NULL, &hop) != 0)
            return;
    } else if (strict_fix) {
        if (px_route_value(m, SIZE_MAX, NULL, &hop) != 0)
            return;
    } else {
        hop = m->ruri;
        const struct proxy_route_int *rt = m->to.tag.len ? NULL : px_route_find(p, m->ruri.host);
        if (rt)
            hop = rt->uri;
    }
    struct sip_dest dest;
    if (resolved) {
        dest = *resolved;
    } else {
        struct px_name nm;
        int rc = px_uri_dest(&hop, &dest, &nm);
        if (rc == IMS_EAGAIN) {
            sl_wait(p, m, rx, &nm);
            return;
        }
        if (rc) {
            p->st.stateless_unroutable++;
            LOG_I("proxy", "event=stateless_unroutable why=bad_uri method=%.*s call_id=%.*s",
                  IMS_SF(m->method_name), IMS_SF(m->call_id));
            return;
        }
    }
    const struct sip_dest *d = &dest;
    const struct proxy_iface *ifc = px_iface(p, d->proto, family_of(d));
    if (!ifc)
        return;
    /* §16.11: the same branch for retransmissions of the same request */
    uint32_t h = 2166136261u;
    ims_str keys[3] = { m->via1.branch, m->via1.host, m->method_name };
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < keys[k].len; i++)
            h = (h ^ (unsigned char)keys[k].p[i]) * 16777619u;
    if (!m->via1.branch.len)
        for (size_t i = 0; i < m->call_id.len; i++)
            h = (h ^ (unsigned char)m->call_id.p[i]) * 16777619u;
    char branch[24] = "z9hG4bKS";
    for (int k = 0; k < 8; k++)
        branch[8 + k] = hexd[(h >> (28 - 4 * k)) & 15];
    struct px_fwd_args a = {
        .npop = npop,
        .strict_fix = strict_fix,
        .via_proto = ims_str_cstr(ims_proto_name(d->proto)),
        .via_host = ims_str_make(ifc->hostport, ifc->hostport_len),
        .branch = ims_str_make(branch, 16),
        .rport = d->proto == SIP_PROTO_UDP,
        .rx = rx,
    };
    struct sip_uri last;
    if (strict_fix && px_route_value(m, SIZE_MAX, NULL, &last) == 0)
        a.ruri = last.raw;
    ims_buf_reset(&p->scratch);
    if (px_build_request(m, &a, &p->scratch) != 0)
        return;
    if (px_send(p, d, p->scratch.p, p->scratch.len) == 0)
        p->st.stateless_forwards++;
}

void px_stateless_response(struct ims_proxy *p, const struct sip_msg *m)
{
    /* §16.11 / §18.2.2: only a response whose top Via is ours */
    ims_str b = m->via1.branch;
    if (b.len < 8 || memcmp(b.p, "z9hG4bK", 7) != 0 || (b.p[7] != 'I' && b.p[7] != 'S') ||
        !px_host_is_self(p, m->via1.host)) {
        LOG_D("proxy", "event=stray_response_dropped call_id=%.*s", IMS_SF(m->call_id));
        return;
    }
    struct sip_via v;
    struct sip_dest d;
    if (px_second_via(m, &v) != 0 || ims_sip_via_dest(&v, &d) != 0) {
        LOG_D("proxy", "event=response_unroutable call_id=%.*s", IMS_SF(m->call_id));
        return;
    }
    ims_buf_reset(&p->scratch);
    if (px_build_relay(m, IMS_STR_NULL, NULL, 0, &p->scratch) != 0)
        return;
    if (px_send(p, &d, p->scratch.p, p->scratch.len) == 0)
        p->st.stateless_forwards++;
}
