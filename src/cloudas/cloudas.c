/* cloudas.c - the cloud AS's SIP side (see cloudas.h): setup, the app on
 * the [as] ports, the served user, and the result MESSAGEs. */
#include "cloudas/cloudas.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "cfg/cfg.h"
#include "cloudas/cas_int.h"
#include "http/http.h"
#include "net/transport.h"
#include "policy/policy.h"
#include "proxy/proxy.h"
#include "sip/msg.h"

#define CAS_BOUNDARY "cloudas-result"
#define CAS_MAX_DELEGS 100000

bool ims_cloudas_configured(const struct ims_cfg *cfg)
{
    return (cfg->roles & IMS_ROLE_AS) && cfg->as_ports.n > 0;
}

size_t ims_cloudas_timers(const struct ims_cfg *cfg)
{
    /* a timer per job, two per subscription (poll, expiry) */
    return ims_cloudas_configured(cfg) ? (size_t)cfg->as_max_jobs * 3 + 8 : 0;
}

/* ---------------------------------------------------------------- setup */

static char *dup_cstr(const char *s, size_t n)
{
    char *d = ims_alloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void delegs_free(struct ims_cloudas *as)
{
    for (size_t i = 0; i < as->ndelegs; i++) {
        ims_free(as->delegs[i].impu);
        ims_free(as->delegs[i].ac_id);
        if (as->delegs[i].ac_secret) {
            ims_wipe(as->delegs[i].ac_secret, strlen(as->delegs[i].ac_secret));
            ims_free(as->delegs[i].ac_secret);
        }
    }
    ims_free(as->delegs);
    as->delegs = NULL;
    as->ndelegs = 0;
}

/* One line "<IMPU> <app cred id> <secret>"; '#' comments and blank lines
 * are skipped.  0, IMS_EPROTO, IMS_ENOMEM, IMS_ELIMIT. */
static int deleg_line(struct ims_cloudas *as, char *line)
{
    char *f[3];
    size_t n = 0;
    for (char *s = line; *s && n < 4;) {
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
            *s++ = '\0';
        if (!*s || *s == '#')
            break;
        if (n == 3)
            return IMS_EPROTO;
        f[n++] = s;
        while (*s && *s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            s++;
    }
    if (n == 0)
        return 0;
    if (n != 3 || strncmp(f[0], "sip:", 4) != 0)
        return IMS_EPROTO;
    if (as->ndelegs == CAS_MAX_DELEGS)
        return IMS_ELIMIT;
    struct cas_deleg *d = ims_realloc(as->delegs, (as->ndelegs + 1) * sizeof(*d));
    if (!d)
        return IMS_ENOMEM;
    as->delegs = d;
    d = &as->delegs[as->ndelegs];
    d->impu = dup_cstr(f[0], strlen(f[0]));
    d->ac_id = dup_cstr(f[1], strlen(f[1]));
    d->ac_secret = dup_cstr(f[2], strlen(f[2]));
    as->ndelegs++;
    return d->impu && d->ac_id && d->ac_secret ? 0 : IMS_ENOMEM;
}

/* The delegations file holds secrets: refused unless only its owner may
 * read it (like ssh's private keys). */
static int load_delegs(struct ims_cloudas *as, const char *path, char *err, size_t errsz)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errsz, "[as] delegations: cannot open %s", path);
        return IMS_EIO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || (st.st_mode & 077)) {
        fclose(f);
        snprintf(err, errsz, "[as] delegations: %s must not be readable by group or others "
                 "(chmod 600)", path);
        return IMS_EINVAL;
    }
    char line[1024];
    unsigned no = 0;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        no++;
        rc = deleg_line(as, line);
        if (rc)
            snprintf(err, errsz, "%s:%u: expected '<sip:IMPU> <app cred id> <secret>'", path,
                     no);
    }
    ims_wipe(line, sizeof(line));
    fclose(f);
    return rc;
}

static int set_service(struct ims_cloudas *as, const struct ims_cfg *cfg, char *err, size_t errsz)
{
    if (cfg->as_service_uri)
        snprintf(as->service_uri, sizeof(as->service_uri), "%s", cfg->as_service_uri);
    else
        snprintf(as->service_uri, sizeof(as->service_uri), "sip:cloud@%s",
                 cfg->dia_realm ? cfg->dia_realm : "localhost");
    struct sip_uri u;
    if (ims_sip_parse_uri(ims_str_cstr(as->service_uri), &u) != 0 || !u.user.len) {
        snprintf(err, errsz, "[as] service_uri: '%s' is not a sip:user@host URI",
                 as->service_uri);
        return IMS_EINVAL;
    }
    as->service_user = u.user;
    as->service_host = u.host;
    return 0;
}

/* Every [as] port is a [sip] listen port that no CSCF role of this
 * process serves (a port has one app). */
static int check_ports(const struct ims_cfg *cfg, char *err, size_t errsz)
{
    const struct ims_cfg_ports *other[3] = { &cfg->pcscf_ports, &cfg->icscf_ports,
                                             &cfg->scscf_ports };
    static const unsigned bit[3] = { IMS_ROLE_PCSCF, IMS_ROLE_ICSCF, IMS_ROLE_SCSCF };
    static const char *const sec[3] = { "pcscf", "icscf", "scscf" };
    for (size_t i = 0; i < cfg->as_ports.n; i++) {
        uint16_t port = cfg->as_ports.port[i];
        bool listened = false;
        for (size_t j = 0; j < cfg->nlisten && !listened; j++)
            listened = ims_addr_port(&cfg->listen[j].addr) == port;
        if (!listened) {
            snprintf(err, errsz, "[as] port %u has no [sip] listen", (unsigned)port);
            return IMS_EINVAL;
        }
        for (int r = 0; r < 3; r++)
            for (size_t j = 0; (cfg->roles & bit[r]) && j < other[r]->n; j++)
                if (other[r]->port[j] == port) {
                    snprintf(err, errsz, "port %u is in [%s] and [as]", (unsigned)port, sec[r]);
                    return IMS_EINVAL;
                }
    }
    return 0;
}

int ims_cloudas_new(const struct ims_cfg *cfg, unsigned nworkers, struct ims_cloudas **out,
                    char *err, size_t errsz)
{
    int prc = check_ports(cfg, err, errsz);
    if (prc)
        return prc;
    const char *ks = cfg->as_keystone_url ? cfg->as_keystone_url : cfg->ks_url;
    if (!cfg->as_icscf || !ks || !cfg->as_policy_file) {
        snprintf(err, errsz, "[as] needs icscf, policy_file and a Keystone url "
                 "([as] keystone_url or [keystone] url)");
        return IMS_EINVAL;
    }
    struct ims_cloudas *as = ims_calloc(1, sizeof(*as));
    if (!as)
        return IMS_ENOMEM;
    as->workers = ims_calloc(nworkers ? nworkers : 1, sizeof(*as->workers));
    as->nworkers = nworkers;
    int rc = as->workers ? 0 : IMS_ENOMEM;
    snprintf(as->icscf, sizeof(as->icscf), "%s", cfg->as_icscf);
    snprintf(as->keystone, sizeof(as->keystone), "%s", ks);
    as->poll_ms = cfg->as_poll_ms;
    as->poll_max_ms = cfg->as_poll_max_ms;
    as->build_timeout_s = cfg->as_build_timeout;
    as->http_timeout_ms = cfg->as_http_timeout_ms;
    as->max_jobs = cfg->as_max_jobs;
    as->ports = cfg->as_ports;
    if (rc == 0)
        rc = set_service(as, cfg, err, errsz);
    if (rc == 0) {
        char perr[256];
        rc = ims_policy_load_file(cfg->as_policy_file, &as->policy, perr, sizeof(perr));
        if (rc)
            snprintf(err, errsz, "[as] policy_file: %s", perr);
    }
    if (rc == 0 && cfg->as_delegations)
        rc = load_delegs(as, cfg->as_delegations, err, errsz);
    if (rc) {
        if (rc == IMS_ENOMEM)
            snprintf(err, errsz, "[as]: out of memory");
        ims_cloudas_free(as);
        return rc;
    }
    LOG_N("cloudas", "event=started service=%s delegations=%zu icscf=%s", as->service_uri,
          as->ndelegs, as->icscf);
    *out = as;
    return 0;
}

void ims_cloudas_stop(struct ims_cloudas *as)
{
    for (unsigned i = 0; as && i < as->nworkers; i++) {
        struct cas_worker *w = &as->workers[i];
        cas_sub_free_all(w); /* before the jobs: a poll in flight is the sub's */
        cas_job_free_all(w);
        cas_ident_free_all(w);
        ims_http_free(w->http);
        w->http = NULL;
    }
}

void ims_cloudas_free(struct ims_cloudas *as)
{
    if (!as)
        return;
    ims_cloudas_stop(as);
    delegs_free(as);
    ims_policy_free(as->policy);
    ims_free(as->workers);
    ims_free(as);
}

/* ---------------------------------------------------------------- SIP */

static bool for_service(const struct ims_cloudas *as, const struct sip_msg *m)
{
    return (m->ruri.scheme == SIP_URI_SIP || m->ruri.scheme == SIP_URI_SIPS) &&
           ims_str_eq(m->ruri.user, as->service_user) &&
           ims_str_caseeq(m->ruri.host, as->service_host);
}

/* The served user: the first sip: P-Asserted-Identity (RFC 3325), set by
 * the S-CSCF on ISC.  The AS trusts it because only the S-CSCF reaches the
 * [as] ports (docs/cloud-as.md: keep them closed to everyone else).  As
 * "sip:user@host" (TS 23.003 §13.4), no parameters. */
static int served_user(const struct sip_msg *m, char *out, size_t cap)
{
    for (const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_P_ASSERTED_IDENTITY); h;
         h = ims_sip_hdr_next_same(m, h)) {
        struct ims_cur c = ims_cur_of(h->value);
        ims_str el;
        while (ims_sip_list_next(&c, &el) == 0) {
            struct sip_nameaddr na;
            if (ims_sip_parse_nameaddr(el, &na) != 0 || na.uri.scheme == SIP_URI_TEL ||
                !na.uri.user.len || !na.uri.host.len)
                continue;
            int n = snprintf(out, cap, "sip:%.*s@%.*s", IMS_SF(na.uri.user), IMS_SF(na.uri.host));
            if (n <= 0 || (size_t)n >= cap)
                return IMS_ELIMIT;
            for (char *p = strchr(out, '@'); p && *p; p++) /* host names compare caseless */
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
            return 0;
        }
    }
    return IMS_ENOENT;
}

static void reply(struct proxy_req *r, int status, const char *reason, const char *hdrs)
{
    struct proxy_reply_opts o = { .hdrs = ims_str_cstr(hdrs) };
    int rc = ims_proxy_reply(r, status, reason, hdrs ? &o : NULL);
    if (rc)
        LOG_W("cloudas", "event=reply_failed status=%d err=%s", status, ims_strerror(rc));
}

/* A JSON string value's characters (no quotes), escaped. */
static void json_esc(struct ims_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            ims_buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            ims_buf_printf(b, "\\u%04x", c);
        else
            ims_buf_add(b, s, 1);
    }
}

/* The request's own RFC 8898 token ("Authorization: Bearer"), which the
 * S-CSCF validated and forwarded on ISC (session.c), or empty. */
static ims_str bearer_of(const struct sip_msg *m)
{
    struct sip_auth a;
    for (const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_AUTHORIZATION); h;
         h = ims_sip_hdr_next_same(m, h))
        if (ims_sip_parse_auth(h->value, &a) == 0 && ims_str_caseeq_lit(a.scheme, "Bearer"))
            return a.token;
    return ims_str_cstr(NULL);
}

static void on_message(struct cas_worker *w, struct proxy_req *r, const struct sip_msg *m)
{
    char impu[CAS_IMPU_MAX];
    if (served_user(m, impu, sizeof(impu)) != 0) {
        /* not from the S-CSCF: nobody to act for */
        reply(r, 403, "No Served User", NULL);
        return;
    }
    const struct sip_hdr *ct = ims_sip_hdr_first(m, SIP_H_CONTENT_TYPE);
    struct cas_cmd cmd;
    char perr[256];
    int rc = cas_cmd_parse(ct ? ct->value : ims_str_cstr(NULL), m->body, &cmd, perr,
                           sizeof(perr));
    if (rc == 0) {
        rc = cas_job_start(w, impu, m->call_id, bearer_of(m), &cmd);
        if (rc == IMS_ELIMIT || rc == IMS_ENOMEM) {
            LOG_W("cloudas", "event=busy impu=%s err=%s", impu, ims_strerror(rc));
            reply(r, 503, NULL, "Retry-After: 5\r\n");
            return;
        }
        reply(r, 200, NULL, NULL);
        return;
    }
    LOG_I("cloudas", "event=bad_command impu=%s why=\"%s\"", impu, perr);
    reply(r, 200, NULL, NULL); /* delivered; the answer says what was wrong */
    struct ims_buf j;
    ims_buf_init(&j, 1024);
    ims_buf_add_cstr(&j, "{\"ok\":false,\"final\":true,\"error\":{\"code\":400,\"message\":\"");
    json_esc(&j, perr);
    ims_buf_add_cstr(&j, "\"}}");
    char text[320], callid[CAS_CALLID_MAX];
    snprintf(text, sizeof(text), "error 400: %s", perr);
    ims_str_copy(m->call_id, callid, sizeof(callid));
    cas_send(w, impu, callid, 1, text, j.p ? j.p : "{\"ok\":false}");
    ims_buf_free(&j);
}

static void on_request(void *ctx, struct proxy_req *r, const struct sip_msg *m)
{
    struct cas_worker *w = ctx;
    if (m->method == SIP_M_SUBSCRIBE && cas_sub_owns(w, m)) { /* refresh, unsubscribe */
        cas_sub_request(w, r, m, NULL);
        return;
    }
    if (!for_service(w->as, m)) {
        /* not ours (e.g. an AS port reached by mistake): the proxy's rules */
        ims_proxy_route_static(NULL, r, m);
        return;
    }
    if (m->method == SIP_M_MESSAGE) {
        on_message(w, r, m);
        return;
    }
    if (m->method == SIP_M_SUBSCRIBE) {
        char impu[CAS_IMPU_MAX];
        bool have = served_user(m, impu, sizeof(impu)) == 0;
        cas_sub_request(w, r, m, have ? impu : NULL);
        return;
    }
    reply(r, 405, NULL, "Allow: MESSAGE, SUBSCRIBE, OPTIONS\r\n");
}

int ims_cloudas_worker_init(struct ims_cloudas *as, unsigned idx, struct ims_loop *loop,
                            struct ims_proxy *p, char *err, size_t errsz)
{
    if (idx >= as->nworkers) {
        snprintf(err, errsz, "cloudas: worker %u out of range", idx);
        return IMS_EINVAL;
    }
    struct cas_worker *w = &as->workers[idx];
    w->as = as;
    w->loop = loop;
    w->proxy = p;
    int rc = ims_http_new(loop, &w->http);
    if (rc) {
        snprintf(err, errsz, "cloudas: HTTP client: %s", ims_strerror(rc));
        return rc;
    }
    /* one app per [as] port on this worker's proxy */
    struct proxy_app app = { .name = "as", .on_request = on_request, .ctx = w };
    for (size_t i = 0; i < as->ports.n; i++) {
        rc = ims_proxy_set_app(p, as->ports.port[i], &app);
        if (rc) {
            snprintf(err, errsz, "cloudas: port %u: %s", (unsigned)as->ports.port[i],
                     ims_strerror(rc));
            return rc;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- results */

static void sent_cb(struct ims_proxy *p, int status, const struct sip_msg *rsp, void *ud)
{
    if (status >= 300)
        LOG_W("cloudas", "event=result_not_delivered status=%d", status);
}

void cas_send(struct cas_worker *w, const char *impu, const char *call_id, uint32_t cseq,
              const char *text, const char *json)
{
    struct ims_buf body, hdrs;
    char from[CAS_IMPU_MAX + 32], to[CAS_IMPU_MAX + 4];
    uint32_t rnd = 0;
    RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
    snprintf(from, sizeof(from), "<%s>;tag=%08x", w->as->service_uri, (unsigned)rnd);
    snprintf(to, sizeof(to), "<%s>", impu);
    ims_buf_init(&body, 65536);
    ims_buf_printf(&body,
                   "--" CAS_BOUNDARY "\r\nContent-Type: text/plain;charset=utf-8\r\n\r\n%s\r\n"
                   "--" CAS_BOUNDARY "\r\nContent-Type: application/json\r\n\r\n%s\r\n"
                   "--" CAS_BOUNDARY "--\r\n",
                   text, json);
    ims_buf_init(&hdrs, 512);
    ims_buf_printf(&hdrs, "P-Asserted-Identity: <%s>\r\nIn-Reply-To: %s\r\n",
                   w->as->service_uri, call_id);
    if (!body.p || !hdrs.p) {
        LOG_W("cloudas", "event=result_too_large impu=%s", impu);
        goto out;
    }
    struct proxy_uac_req rq = {
        .method = IMS_S("MESSAGE"),
        .ruri = ims_str_cstr(impu),
        .from = ims_str_cstr(from),
        .to = ims_str_cstr(to),
        .call_id = ims_str_cstr(call_id),
        .cseq = cseq,
        .next_hop = ims_str_cstr(w->as->icscf),
        .hdrs = ims_buf_str(&hdrs),
        .content_type = IMS_S("multipart/mixed;boundary=" CAS_BOUNDARY),
        .body = ims_buf_str(&body),
    };
    int rc = ims_proxy_uac_send(w->proxy, &rq, sent_cb, NULL);
    if (rc)
        LOG_W("cloudas", "event=result_send_failed impu=%s err=%s", impu, ims_strerror(rc));
    else
        LOG_I("cloudas", "event=result_sent impu=%s call_id=%s cseq=%u", impu, call_id,
              (unsigned)cseq);
out:
    ims_buf_free(&body);
    ims_buf_free(&hdrs);
}
