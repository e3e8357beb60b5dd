/* cdiv.c - incoming barring and call forwarding unconditional at the
 * S-CSCF, from the users' Ut settings (cdiv.h, docs/ut.md).
 *
 * Why a registry filled by the Ut module and not a store read per request:
 * a terminating request must not wait for the store (SQLite on disk,
 * PostgreSQL over the network) on a SIP worker, and holding the request
 * across a store job for every call to every user costs a job per call for
 * settings that change rarely.  The registry holds only users who have
 * something active, so it stays small.  Its one limit: Sh repository data
 * written behind the Ut module's back (another AS's PUR of the
 * "imscloud-ut" service indication, another process) is seen after the
 * next restart only. */
#include "cscf/cdiv.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "cfg/cfg.h"
#include "cscf/cscf_int.h"
#include "cscf/privacy.h"
#include "net/transport.h"

/* Set by init before the workers start, cleared by fini after they were
 * joined (rule 1): the pointer itself needs no lock. */
static struct cscf_table *cdiv_tab;

static void val_free(void *v)
{
    ims_free(v);
}

int ims_cdiv_init(size_t max_entries)
{
    if (cdiv_tab)
        return IMS_EINVAL;
    return cscf_table_new(CSCF_SHARDS, max_entries, val_free, &cdiv_tab);
}

void ims_cdiv_fini(void)
{
    cscf_table_free(cdiv_tab);
    cdiv_tab = NULL;
}

struct put_ctx {
    const struct ims_cdiv *c; /* NULL: remove */
};

static int put_fn(void **val, bool room, void *ctx)
{
    struct put_ctx *p = ctx;
    if (!p->c) {
        ims_free(*val);
        *val = NULL;
        return 0;
    }
    if (*val) {
        memcpy(*val, p->c, sizeof(*p->c));
        return 0;
    }
    if (!room)
        return IMS_ELIMIT;
    struct ims_cdiv *n = ims_calloc(1, sizeof(*n));
    if (!n)
        return IMS_ENOMEM;
    memcpy(n, p->c, sizeof(*n));
    *val = n;
    return 0;
}

int ims_cdiv_put(ims_str impu, const struct ims_cdiv *c)
{
    if (!cdiv_tab)
        return IMS_ENOENT;
    bool active = c && (c->cfu[0] || c->icb_all || c->icb_anonymous);
    struct put_ctx p = { active ? c : NULL };
    return cscf_table_with(cdiv_tab, impu, put_fn, &p);
}

static int get_fn(void **val, bool room, void *ctx)
{
    (void)room;
    if (!*val)
        return IMS_ENOENT;
    memcpy(ctx, *val, sizeof(struct ims_cdiv));
    return 0;
}

int ims_cdiv_get(ims_str impu, struct ims_cdiv *out)
{
    if (!cdiv_tab)
        return IMS_ENOENT;
    return cscf_table_with(cdiv_tab, impu, get_fn, out);
}

/* ------------------------------------------------------------ S-CSCF */

/* RFC 3323 §4.1.1.3 / RFC 5079 §3: a caller is anonymous when its From is
 * the anonymous URI or it asked for identity privacy. */
static bool anonymous_caller(const struct sip_msg *m)
{
    unsigned priv = 0;
    if (ims_privacy_values(m, &priv) == 0 && (priv & (IMS_PRIV_ID | IMS_PRIV_USER)))
        return true;
    return ims_str_caseeq_lit(m->from.uri.host, "anonymous.invalid") ||
           ims_str_caseeq_lit(m->from.uri.user, "anonymous");
}

/* TS 24.604 §4.5.2.6.1 (CFU): retarget to the forwarding URI; RFC 5806
 * Diversion tells the target whose call it is.  History-Info (RFC 7044) is
 * not added. */
static void forward_cfu(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m,
                        const char *served, const char *target)
{
    struct sip_uri u;
    char hop[CSCF_URI_MAX] = "";
    char div[IMS_CDIV_URI_MAX + 64];
    if (ims_sip_parse_uri(ims_str_cstr(target), &u) != 0) {
        LOG_W("scscf", "event=cfu_bad_target impu=%s", served);
        ims_proxy_reply(r, 500, "Bad Forwarding Target", NULL);
        return;
    }
    bool home = u.scheme == SIP_URI_TEL ||
                (u.scheme != SIP_URI_OTHER && cscf_home_domain(w->g->cfg, u.host));
    if (home)
        cscf_icscf_uri(w->g, hop, sizeof(hop));
    int n = snprintf(div, sizeof(div), "Diversion: <%s>;reason=unconditional;counter=1\r\n",
                     served);
    struct proxy_fwd f = {
        .ruri = ims_str_cstr(target),
        .next_hop = ims_str_cstr(hop),
        .add_hdrs = ims_str_make(div, n > 0 && (size_t)n < sizeof(div) ? (size_t)n : 0),
    };
    int rc = ims_proxy_forward(r, &f);
    LOG_I("scscf", "event=cfu call_id=%.*s impu=%s target=%s hop=%s rc=%s", IMS_SF(m->call_id),
          served, target, hop[0] ? hop : "-", ims_strerror(rc));
    if (rc)
        ims_proxy_forward_failed(r, rc);
}

bool cscf_cdiv_term(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m,
                    const char *served)
{
    struct ims_cdiv c;
    if (m->method != SIP_M_INVITE && m->method != SIP_M_MESSAGE)
        return false;
    if (ims_cdiv_get(ims_str_cstr(served), &c) != 0)
        return false;
    if (c.icb_all) { /* TS 24.611 §4.5.2.6.2: ICB */
        LOG_I("scscf", "event=icb_barred call_id=%.*s impu=%s", IMS_SF(m->call_id), served);
        ims_proxy_reply(r, 603, "Decline", NULL);
        return true;
    }
    if (c.icb_anonymous && anonymous_caller(m)) { /* TS 24.611 §4.5.2.6.3: ACR */
        LOG_I("scscf", "event=acr_barred call_id=%.*s impu=%s", IMS_SF(m->call_id), served);
        ims_proxy_reply(r, 433, "Anonymity Disallowed", NULL);
        return true;
    }
    if (!c.cfu[0])
        return false;
    forward_cfu(w, r, m, served, c.cfu);
    return true;
}
