/* bearer.c - RFC 8898 Bearer tokens (OpenStack Keystone) and the policy
 * (src/policy, oslo.policy rules) at the S-CSCF.  docs/keystone.md has the
 * user-facing story; scscf.c (REGISTER) and session.c (MESSAGE, INVITE)
 * call in here.
 *
 * Owns, per process (struct cscf_bearer, g->bearer):
 *   - the Keystone ctx (only when [keystone] url is set), the per-worker
 *     clients being w->ks;
 *   - the policy ([scscf] policy_file; NULL: nothing enforced), behind a
 *     reference count so that SIGHUP can swap in a new one while requests
 *     still judge with the old (cscf_bearer_reload_policy);
 *   - the default roles of Digest/AKA users ([scscf] local_roles), for
 *     subscriptions without roles in the HSS;
 *   - the tokens of Bearer registrations, by IMPI (a table.h table holding
 *     one token reference each), so that later requests of the user are
 *     judged with the token's credentials.
 *
 * Mapping a Keystone user to a subscriber (a documented convention, which
 * works the same over Diameter): IMPI = "<token user name>@<S-CSCF realm>";
 * the SAR for that IMPI and the To IMPU then has the HSS check that the
 * IMPU belongs to that IMPI (else 403 Identities Do Not Match). */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "cfg/cfg.h"
#include "cscf/cscf_audit.h"
#include "cscf/cscf_int.h"
#include "keystone/keystone.h"
#include "metrics/metrics.h"
#include "policy/holder.h"
#include "policy/policy.h"

#define LOCAL_ROLES_MAX 8

struct cscf_bearer {
    struct ims_ks_ctx *ks_ctx;
    struct ims_policy_holder *policy; /* NULL: no policy_file; reloads swap its content */
    struct cscf_table *tokens; /* IMPI -> struct ims_ks_token * (a reference) */
    char *local_buf;           /* local_roles, split in place */
    const char *local_roles[LOCAL_ROLES_MAX];
    size_t nlocal;
    char host[CSCF_URI_MAX];   /* the Warning's agent (RFC 3261 §20.43) */
    char challenge[CSCF_URI_MAX * 3];
    bool stopping;             /* clients freed: their callbacks do nothing */
};

/* ------------------------------------------------------------ setup */

static void tok_free(void *v)
{
    ims_ks_token_unref(v);
}

static int64_t tok_due(const void *v, void *ctx)
{
    (void)ctx;
    return ((const struct ims_ks_token *)v)->expires_at;
}

/* Splits the comma list in buf in place into out (blanks trimmed, empty
 * items skipped, at most cap items); returns how many. */
static size_t split_list(char *buf, const char **out, size_t cap)
{
    size_t n_out = 0;
    for (char *s = buf; *s && n_out < cap;) {
        char *e = strchr(s, ',');
        if (e)
            *e = '\0';
        while (*s == ' ')
            s++;
        size_t n = strlen(s);
        while (n && s[n - 1] == ' ')
            s[--n] = '\0';
        if (n)
            out[n_out++] = s;
        if (!e)
            break;
        s = e + 1;
    }
    return n_out;
}

static int split_roles(struct cscf_bearer *b, const char *list)
{
    if (!list)
        return 0;
    b->local_buf = ims_calloc(1, strlen(list) + 1);
    if (!b->local_buf)
        return IMS_ENOMEM;
    memcpy(b->local_buf, list, strlen(list));
    b->nlocal = split_list(b->local_buf, b->local_roles, LOCAL_ROLES_MAX);
    return 0;
}

static int ks_setup(struct ims_cscf *g, struct cscf_bearer *b, char *err, size_t errsz)
{
    struct ims_ks_opts o;
    char *secret = NULL;
    int rc = ims_ks_opts_from_cfg(g->cfg, &o, &secret, err, errsz);
    if (rc == IMS_ENOENT)
        return 0; /* no [keystone] url: Digest and AKA only */
    if (rc == 0) {
        rc = ims_ks_ctx_new(&o, &b->ks_ctx);
        if (rc)
            snprintf(err, errsz, "keystone: cannot create the client: %s", ims_strerror(rc));
    }
    if (secret) {
        memset(secret, 0, strlen(secret)); /* the ctx copied it */
        ims_free(secret);
    }
    if (rc)
        return rc;
    /* RFC 8898 §2: where the UE gets a token (authz_server) and for what */
    int n = snprintf(b->challenge, sizeof(b->challenge),
                     "WWW-Authenticate: Bearer realm=\"%s\", scope=\"%s\", authz_server=\"%s\"",
                     g->s_realm, g->cfg->scscf_bearer_scope ? g->cfg->scscf_bearer_scope : "ims",
                     g->cfg->ks_url);
    if (n <= 0 || (size_t)n >= sizeof(b->challenge) - 64) {
        snprintf(err, errsz, "keystone: url too long for the Bearer challenge");
        return IMS_EINVAL;
    }
    return 0;
}

/* ------------------------------------------------------------ the policy's lifetime */

/* Loads [scscf] policy_file into the holder (made on the first call). */
static int pol_load(struct cscf_bearer *b, const char *path, char *err, size_t errsz)
{
    char perr[256] = "out of memory";
    size_t n = 0;
    bool again = b->policy != NULL;
    int rc = again ? 0 : ims_policy_holder_new(&b->policy);
    if (rc == 0)
        rc = ims_policy_holder_load(b->policy, path, &n, perr, sizeof(perr));
    if (rc) {
        snprintf(err, errsz, "scscf: policy_file: %s", perr);
        return rc;
    }
    LOG_N("scscf", "event=%s file=%s rules=%zu", again ? "policy_reloaded" : "policy_loaded",
          path, n);
    return 0;
}

int cscf_bearer_reload_policy(struct ims_cscf *g, char *err, size_t errsz)
{
    struct cscf_bearer *b = g->bearer;
    const char *path = g->cfg->scscf_policy_file;
    if (!b || !b->policy || !path)
        return IMS_ENOENT;
    /* a new policy for new requests; those judging keep theirs (holder.h);
     * a file that does not load leaves the old one in force */
    return pol_load(b, path, err, errsz);
}

int ims_cscf_reload_policy(struct ims_cscf *g, char *err, size_t errsz)
{
    return g ? cscf_bearer_reload_policy(g, err, errsz) : IMS_ENOENT;
}

int cscf_bearer_init(struct ims_cscf *g, char *err, size_t errsz)
{
    const struct ims_cfg *cfg = g->cfg;
    struct cscf_bearer *b = ims_calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errsz, "scscf: out of memory");
        return IMS_ENOMEM;
    }
    g->bearer = b;
    struct sip_uri u;
    if (ims_sip_parse_uri(ims_str_cstr(g->s_uri), &u) == 0)
        ims_str_copy(u.host, b->host, sizeof(b->host));
    int rc = split_roles(b, cfg->scscf_local_roles);
    if (rc == 0)
        rc = cscf_table_new(CSCF_SHARDS, cfg->scscf_max_registrations, tok_free, &b->tokens);
    if (rc == 0)
        rc = cscf_table_set_due(b->tokens, tok_due, NULL);
    if (rc) {
        snprintf(err, errsz, "scscf: %s", ims_strerror(rc));
        return rc;
    }
    if (cfg->scscf_policy_file) {
        rc = pol_load(b, cfg->scscf_policy_file, err, errsz);
        if (rc)
            return rc;
    }
    rc = ks_setup(g, b, err, errsz);
    if (rc == 0 && b->ks_ctx)
        LOG_N("scscf", "event=bearer_auth authz_server=%s", cfg->ks_url);
    return rc;
}

int cscf_bearer_worker_init(struct cscf_worker *w)
{
    struct cscf_bearer *b = w->g->bearer;
    if (!b || !b->ks_ctx)
        return 0;
    return ims_ks_new(b->ks_ctx, w->loop, &w->ks);
}

void cscf_bearer_stop(struct ims_cscf *g)
{
    if (!g->bearer)
        return;
    /* the loops are stopped (their threads joined), not freed: a client may
     * be freed here; its pending validations call back from inside
     * ims_ks_free and, seeing stopping, leave their states to
     * ims_cscf_free() */
    g->bearer->stopping = true;
    for (unsigned i = 0; i < g->nworkers; i++) {
        ims_ks_free(g->w[i].ks);
        g->w[i].ks = NULL;
    }
}

void cscf_bearer_fini(struct ims_cscf *g)
{
    struct cscf_bearer *b = g->bearer;
    if (!b)
        return;
    ims_ks_ctx_free(b->ks_ctx);
    ims_policy_holder_free(b->policy);
    cscf_table_free(b->tokens);
    ims_free(b->local_buf);
    ims_free(b);
    g->bearer = NULL;
}

bool cscf_bearer_on(const struct ims_cscf *g)
{
    return g->bearer && g->bearer->ks_ctx;
}

bool cscf_bearer_stopping(const struct ims_cscf *g)
{
    return g->bearer && g->bearer->stopping;
}

/* ------------------------------------------------------------ SIP */

bool cscf_bearer_token(const struct sip_msg *m, ims_str *tok)
{
    struct sip_auth a;
    for (const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_AUTHORIZATION); h;
         h = ims_sip_hdr_next(m, h))
        if (ims_sip_parse_auth(h->value, &a) == 0 && ims_str_caseeq_lit(a.scheme, "Bearer")) {
            *tok = a.token;
            return true;
        }
    return false;
}

ims_str cscf_bearer_challenge(const struct ims_cscf *g, const char *error, char *buf, size_t cap)
{
    if (!cscf_bearer_on(g))
        return IMS_STR_NULL;
    /* RFC 6750 §3: error="invalid_token" when the token was refused */
    int n = snprintf(buf, cap, "%s%s%s%s\r\n", g->bearer->challenge, error ? ", error=\"" : "",
                     error ? error : "", error ? "\"" : "");
    return n > 0 && (size_t)n < cap ? ims_str_make(buf, (size_t)n) : IMS_STR_NULL;
}

/* ------------------------------------------------------------ policy */

void cscf_creds_token(const struct ims_ks_token *t, struct cscf_creds *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < t->nroles && c->c.n_roles < CSCF_CREDS_MAX; i++)
        c->roles[c->c.n_roles++] = t->roles[i].name;
    for (size_t i = 0; i < t->nmethods && c->c.n_methods < CSCF_CREDS_MAX; i++)
        c->methods[c->c.n_methods++] = t->methods[i];
    c->c.user_id = t->user_id;
    c->c.user_domain_id = t->user_domain_id;
    c->c.project_id = t->project_id;
    c->c.project_domain_id = t->project_domain_id;
    c->c.roles = c->roles;
    c->c.methods = c->methods;
}

/* Splits the comma list roles into c (copied to c->role_buf, blanks
 * trimmed, empty items skipped; past CSCF_CREDS_MAX roles are dropped). */
static void creds_split(struct cscf_creds *c, const char *roles)
{
    snprintf(c->role_buf, sizeof(c->role_buf), "%s", roles);
    c->c.n_roles = split_list(c->role_buf, c->roles, CSCF_CREDS_MAX);
}

void cscf_creds_local(const struct ims_cscf *g, const char *impi, const char *method,
                      const char *roles, struct cscf_creds *c)
{
    memset(c, 0, sizeof(*c));
    const struct cscf_bearer *b = g->bearer;
    if (roles && roles[0])
        creds_split(c, roles); /* the subscription's, from the HSS */
    else
        for (size_t i = 0; b && i < b->nlocal; i++)
            c->roles[c->c.n_roles++] = b->local_roles[i];
    c->methods[c->c.n_methods++] = method;
    c->c.user_id = impi; /* the HSS's name for the user */
    c->c.roles = c->roles;
    c->c.methods = c->methods;
}

bool cscf_policy_on(const struct ims_cscf *g)
{
    /* set at start-up and never cleared: a reload only replaces its content */
    return g->bearer && g->bearer->policy;
}

bool cscf_policy_allows(const struct ims_cscf *g, const struct sip_msg *m, const char *rule,
                        const struct ims_policy_creds *c, const char *impu)
{
    if (!cscf_policy_on(g))
        return true;
    struct ims_policy_ref *p = ims_policy_holder_get(g->bearer->policy);
    if (!p)
        return true; /* not reached: the holder got its policy at start-up */
    struct ims_policy_reason why = { 0 };
    bool ok = ims_policy_enforce(ims_policy_ref_policy(p), rule, c, NULL, &why);
    if (!ok) {
        /* why.rule points into the policy: used before our reference goes */
        const char *by = why.rule ? why.rule : rule;
        LOG_I("scscf", "event=policy_denied rule=%s decided_by=%s why=%d user=%s impu=%s", rule,
              by, (int)why.why, c->user_id ? c->user_id : "-", impu);
        ims_metrics_inc(IMS_M_POLICY_DENIALS); /* metrics hook */
        cscf_audit_policy(m, rule, by, c->user_id, impu); /* audit hook */
    }
    ims_policy_ref_put(p);
    return ok;
}

bool cscf_bearer_token_of(const struct ims_cscf *g, const struct ims_ks_token *t,
                          const char *impi)
{
    /* the convention of docs/keystone.md: IMPI = "<user name>@<realm>" */
    size_t n = t->user_name ? strlen(t->user_name) : 0;
    return n && strncmp(impi, t->user_name, n) == 0 && impi[n] == '@' &&
           strcmp(impi + n + 1, g->s_realm) == 0;
}

void cscf_bearer_refused(struct ims_cscf *g, struct proxy_req *r, int rc)
{
    char b[CSCF_URI_MAX * 3 + 64];
    if (rc == IMS_ENOENT || rc == IMS_EINVAL) {
        ims_proxy_reply(r, 401, NULL,
                        &(struct proxy_reply_opts){
                            .hdrs = cscf_bearer_challenge(g, "invalid_token", b, sizeof(b)) });
        return;
    }
    /* Keystone unavailable: fail closed (issue 5 part 6) */
    ims_proxy_reply(r, 503, "Identity Service Unavailable",
                    &(struct proxy_reply_opts){
                        .hdrs = cscf_retry_after(g->cfg->scscf_retry_after, b, sizeof(b)) });
}

bool cscf_policy_user_allows(struct cscf_worker *w, const struct sip_msg *m, const char *rule,
                             const char *impi, const char *impu, const struct ims_ks_token *tok,
                             const char *roles)
{
    struct ims_cscf *g = w->g;
    if (!cscf_policy_on(g))
        return true;
    struct ims_ks_token *own = tok ? NULL : cscf_bearer_of(g, impi, cscf_now_s());
    struct cscf_creds c;
    if (tok || own)
        cscf_creds_token(tok ? tok : own, &c);
    else
        cscf_creds_local(g, impi, "digest", roles, &c);
    bool ok = cscf_policy_allows(g, m, rule, &c.c, impu);
    ims_ks_token_unref(own);
    return ok;
}

ims_str cscf_policy_warning(const struct ims_cscf *g, const char *rule, char *buf, size_t cap)
{
    /* RFC 3261 §20.43: 399 miscellaneous warning, the agent being us */
    int n = snprintf(buf, cap, "Warning: 399 %s \"Denied by policy rule %s\"\r\n",
                     g->bearer && g->bearer->host[0] ? g->bearer->host : "scscf", rule);
    return n > 0 && (size_t)n < cap ? ims_str_make(buf, (size_t)n) : IMS_STR_NULL;
}

/* ------------------------------------------------------------ registrations */

struct bind_ctx {
    struct ims_ks_token *tok; /* reference handed to the table, or NULL */
    struct ims_ks_token *out; /* lookup: a new reference */
    bool get;
};

static int bind_fn(void **val, bool room, void *ctx)
{
    struct bind_ctx *x = ctx;
    (void)room;
    if (x->get) {
        x->out = *val ? ims_ks_token_ref(*val) : NULL;
        return 0;
    }
    ims_ks_token_unref(*val);
    *val = x->tok;
    return 0;
}

void cscf_bearer_bind(struct ims_cscf *g, const char *impi, struct ims_ks_token *tok)
{
    if (!g->bearer)
        return;
    struct bind_ctx x = { .tok = tok ? ims_ks_token_ref(tok) : NULL };
    int rc = cscf_table_with(g->bearer->tokens, ims_str_cstr(impi), bind_fn, &x);
    if (rc)
        LOG_W("scscf", "event=bearer_bind_failed impi=%s err=%s", impi, ims_strerror(rc));
}

struct ims_ks_token *cscf_bearer_of(struct ims_cscf *g, const char *impi, int64_t now_s)
{
    if (!g->bearer)
        return NULL;
    struct bind_ctx x = { .get = true };
    cscf_table_with(g->bearer->tokens, ims_str_cstr(impi), bind_fn, &x);
    if (x.out && x.out->expires_at <= now_s) {
        /* expired since it registered: its credentials no longer count */
        ims_ks_token_unref(x.out);
        return NULL;
    }
    return x.out;
}

static void sweep_fn(ims_str key, void **val, void *ctx)
{
    (void)key;
    const int64_t *now = ctx;
    struct ims_ks_token *t = *val;
    if (t && t->expires_at <= *now) {
        ims_ks_token_unref(t);
        *val = NULL;
    }
}

void cscf_bearer_sweep(struct cscf_worker *w, int64_t now_s)
{
    if (w->g->bearer)
        cscf_table_sweep_due(w->g->bearer->tokens, w->idx, w->g->nworkers, now_s, sweep_fn,
                             &now_s);
}
