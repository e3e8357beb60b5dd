/* cscf_int.h - private to src/cscf: the process-wide state of the CSCF
 * roles, the per-worker state, and the SIP helpers they share (sipx.c). */
#ifndef IMS_CSCF_INT_H
#define IMS_CSCF_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/str.h"
#include "cscf/auth.h"
#include "cscf/cscf.h"
#include "cscf/cx_client.h"
#include "cscf/registrar.h"
#include "cscf/table.h"
#include "ev/loop.h"
#include "proxy/proxy.h"
#include "sip/msg.h"

#define CSCF_URI_MAX 256
#define CSCF_SHARDS 64
#define CSCF_SWEEP_MS 1000u
#define CSCF_MAX_CAND 40 /* S-CSCF candidates of one I-CSCF request */

struct ims_cfg;
struct cscf_worker;

/* A request state that lives across loop turns (I-CSCF and S-CSCF): linked
 * in its worker so that shutdown frees what is still in progress. */
struct cscf_pend {
    struct cscf_pend *prev, *next;
    struct cscf_worker *w;
    void (*free_fn)(struct cscf_pend *p);
};

struct cscf_worker {
    struct ims_cscf *g;
    unsigned idx;
    struct ims_loop *loop;
    struct ims_proxy *p;
    struct ims_cx *icx, *scx; /* the I-CSCF's and the S-CSCF's Cx clients */
    struct ims_timer sweep;
    struct cscf_pend *pend;
    size_t npend;
    /* S-CSCF scratch copies of registrations (about 40 KiB each): one for
     * reading, one for the store's read-modify-write */
    struct ims_reg *reg_a, *reg_b;
    struct ims_ks *ks; /* Keystone client on this loop (bearer.c), or NULL */
    struct cscf_dereg *dereg; /* deregistration SARs in flight or to retry (dereg.c) */
    size_t nderegs;
};

struct ims_cscf {
    const struct ims_cfg *cfg;
    unsigned nworkers;
    struct cscf_worker *w;
    bool p_on, i_on, s_on;
    struct ims_cx_transport *cx;

    /* P-CSCF */
    struct cscf_table *flows;
    struct ims_mac *flow_key; /* flow tokens' MAC, random for this process's life */
    char p_uri[CSCF_URI_MAX];      /* sip:host:port */
    char p_hostport[CSCF_URI_MAX]; /* host:port of p_uri, for Path */
    char vnid[CSCF_URI_MAX];
    bool p_sec_agree; /* RFC 3329 on: configured and a TLS listener */

    /* I-CSCF: nothing beyond cfg */

    /* S-CSCF */
    struct ims_loc *loc;
    struct ims_buf lapsed; /* registrations that lapsed while we were down (dereg.c) */
    size_t lapsed_sent;    /* how far worker 0 got through it */
    struct ims_auth *auth;
    char s_uri[CSCF_URI_MAX];
    char s_realm[CSCF_URI_MAX];
    char s_service_route[CSCF_URI_MAX + 16];
    struct ims_reg_policy pol;
    int algs[3];                   /* enum ims_digest_alg, in preference order */
    size_t nalgs;
    proxy_request_fn s_hook;
    void *s_hook_ctx;
    struct cscf_table *re_subs;    /* reg-event subscriptions (regevent.c) */
    struct cscf_table *tp_profiles; /* kept for third-party de-registration (thirdparty.c) */
    struct cscf_bearer *bearer;     /* Keystone, policy, Bearer registrations (bearer.c) */
    struct cscf_lockout *lockout;   /* brute-force lockout (lockout.c); NULL: off */
};

/* ---- pcscf.c / icscf.c / scscf.c ---- */
int cscf_pcscf_init(struct ims_cscf *g, char *err, size_t errsz);
void cscf_pcscf_fini(struct ims_cscf *g);
void cscf_pcscf_request(void *ctx, struct proxy_req *r, const struct sip_msg *m);
void cscf_pcscf_sweep(struct cscf_worker *w, int64_t now_s);
const char *const *cscf_pcscf_proxy_require(const struct ims_cscf *g); /* for its proxy_app */
/* proxy_app.stateless_hop: an ACK for a dialog on an RFC 5626 flow goes to
 * the flow its Route's token names. */
bool cscf_pcscf_stateless_hop(void *ctx, const struct sip_msg *m, const struct sip_tp_rx *rx,
                              char *hop, size_t cap);

void cscf_icscf_request(void *ctx, struct proxy_req *r, const struct sip_msg *m);

int cscf_scscf_init(struct ims_cscf *g, char *err, size_t errsz);
void cscf_scscf_fini(struct ims_cscf *g);
void cscf_scscf_request(void *ctx, struct proxy_req *r, const struct sip_msg *m);
void cscf_scscf_sweep(struct cscf_worker *w, int64_t now_s);

/* ---- dereg.c: deregistrations the S-CSCF tells the HSS of on its own ---- */

/* A SAR of type sat (a TIMEOUT_, USER_ or ADMINISTRATIVE_DEREGISTRATION)
 * for impu and impi, retried while the HSS is unavailable (see dereg.c).
 * 0 (sent, or kept to be sent again), or the error that ended it. */
int cscf_dereg_send(struct cscf_worker *w, const char *impu, const char *impi, int sat);
/* Sends the retries that are due (from the worker's sweep). */
void cscf_dereg_sweep(struct cscf_worker *w, int64_t now_s);
/* Frees them (after ims_cx_free: no answer comes any more). */
void cscf_dereg_fini(struct cscf_worker *w);

/* ---- roles.c ---- */
void cscf_pend_add(struct cscf_worker *w, struct cscf_pend *p, void (*free_fn)(struct cscf_pend *));
void cscf_pend_del(struct cscf_pend *p);

/* ---- sipx.c: SIP helpers ---- */

/* Wall clock, seconds and milliseconds. */
int64_t cscf_now_s(void);
int64_t cscf_now_ms(void);
/* The monotonic clock in milliseconds: for state that lives only in this
 * process's memory (lockout, rate buckets), where a wall clock set back by
 * an hour would lengthen every lock and empty every bucket by that hour. */
int64_t cscf_mono_ms(void);

/* The canonical public identity of a URI, as the HSS stores it: for sip/sips
 * "sip:user@host" (host lower-cased, port kept when present, params and
 * headers dropped), for tel "tel:number" (params dropped).  0, IMS_EPROTO
 * (another scheme, no user part), IMS_ELIMIT. */
int cscf_impu_of(const struct sip_uri *u, char *out, size_t cap);
/* The private identity derived from a public one (TS 23.003 §13.3 style:
 * "user@host" of a sip URI).  0, IMS_EPROTO (tel: cannot be derived). */
int cscf_impi_of(const struct sip_uri *u, char *out, size_t cap);

/* The first Authorization header with the Digest scheme, parsed; false if
 * none (or none parses). */
bool cscf_credentials(const struct sip_msg *m, struct sip_auth *out);

/* integrity-protected (TS 24.229 §7.2A.2) is the P-CSCF's word to the
 * S-CSCF on how a REGISTER reached it; a UE or a peer outside the trust
 * domain must not say it.  Does a (parseable) Digest Authorization of m
 * carry one? */
bool cscf_auth_integrity_claimed(const struct sip_msg *m);
/* Every Authorization line of m again, for add ("Authorization: ...\r\n";
 * the caller deletes SIP_H_AUTHORIZATION): each Digest one without
 * integrity-protected and, when value is not NULL, with
 * integrity-protected="value" appended; any other as it came.  0, or
 * IMS_ENOMEM / IMS_ELIMIT. */
int cscf_auth_integrity_set(const struct sip_msg *m, const char *value, struct ims_buf *add);
/* A request from inside the trust domain: handed over in-process by one of
 * our own roles, or from a source [privacy] trusted names (address, or
 * address and port). */
bool cscf_hop_trusted(const struct ims_cscf *g, const struct sip_tp_rx *rx);
/* The UE's address as the bottom-most Via records it (received=, else the
 * sent-by host; an IPv6 reference without its brackets), a slice of m:
 * empty when m is NULL or has no parseable Via.  For lockout and audit. */
ims_str cscf_ue_addr(const struct sip_msg *m);

/* Expires header value, or -1 (absent or malformed). */
long cscf_expires_hdr(const struct sip_msg *m);

/* The Contact values of a REGISTER as bindings (slices into m), with the
 * reg-id each names (the registrar decides whether it applies).  *star for
 * "Contact: *".  0, IMS_EPROTO (a value does not parse, or a reg-id outside
 * 1 .. 2^31-1), IMS_ELIMIT (more than cap). */
int cscf_contacts(const struct sip_msg *m, struct ims_reg_binding *out, size_t cap, size_t *n,
                  bool *star);
/* RFC 5626 §4.2: does a binding ask for an outbound flow (a reg-id on a
 * Contact with +sip.instance)? */
bool cscf_outbound_asked(const struct ims_reg_binding *b, size_t n);

/* All values of every header with this id, joined with ", " into out.
 * 0, IMS_ELIMIT, IMS_ENOMEM. */
int cscf_join_values(const struct sip_msg *m, enum sip_hdr_id id, struct ims_buf *out);

/* The i-th value (over all lines) of header id, parsed as a name-addr.
 * 0, IMS_ENOENT, IMS_EPROTO. */
int cscf_nth_nameaddr(const struct sip_msg *m, enum sip_hdr_id id, size_t i,
                      struct sip_nameaddr *out);
/* The first name-addr of a comma list (a stored Path or Service-Route). */
int cscf_first_nameaddr(ims_str list, struct sip_nameaddr *out);

/* The top Route value as received, when it names us (its URI is one of
 * ours for the listener the request came in on): 0 with *uri set,
 * IMS_ENOENT otherwise. */
int cscf_top_route_self(struct proxy_req *r, const struct sip_msg *m, struct sip_uri *uri);
/* A Route value that does not name us remains (the request is routed). */
bool cscf_has_foreign_route(struct proxy_req *r, const struct sip_msg *m);

/* Is host one of the home domains ([scscf] home_domains, else the realm)? */
bool cscf_home_domain(const struct ims_cfg *cfg, ims_str host);
/* The I-CSCF that requests for home users go to (originating processing,
 * call forwarding): [scscf] icscf, else this process's I-CSCF (a listener
 * on its first port); false when there is none. */
bool cscf_icscf_uri(const struct ims_cscf *g, char *out, size_t cap);

/* "Retry-After: N\r\n" into buf (empty for 0). */
ims_str cscf_retry_after(unsigned secs, char *buf, size_t cap);

/* Hold r across a loop turn and run fn(w, r, arg) on the next one, then
 * release it (fn may reply or forward).  Used to act on a response
 * callback's outcome outside the callback (a new forward is not allowed
 * inside it).  0, IMS_ENOMEM (nothing held). */
int cscf_defer(struct cscf_worker *w, struct proxy_req *r,
               void (*fn)(struct cscf_worker *w, struct proxy_req *r, void *arg), void *arg);

/* ---- regevent.c: the reg-event package at the S-CSCF (RFC 3680,
 * TS 24.229 §5.4.2) ----
 *
 * Subscriptions live in g->re_subs (table.h), keyed by the registration's
 * key IMPU (struct ims_reg.impu), so any worker can notify; a NOTIFY goes
 * out on the worker that noticed the change (ims_proxy_uac_send).  With no
 * subscription at all the hooks below cost one counter read. */
int cscf_regevent_init(struct ims_cscf *g);
void cscf_regevent_fini(struct ims_cscf *g);
/* A SUBSCRIBE with Event: reg for a registration of ours (initial: the
 * Request-URI is a registered IMPU; in-dialog: a subscription we hold):
 * answered here, true.  false: not ours, the caller goes on. */
bool cscf_regevent_request(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m);
/* The registration of impu changed (REGISTER, de-registration, PPR) or
 * ended: NOTIFY its subscribers with the current state; contacts that went
 * are reported with gone_event (RFC 3680 §5.3: "unregistered", "expired",
 * "deactivated", "rejected").  When the registration is gone the NOTIFYs
 * carry Subscription-State: terminated and the subscriptions end.  Worker
 * loop only. */
void cscf_regevent_changed(struct cscf_worker *w, const char *impu, const char *gone_event);
/* Any thread: the same, run on a worker's loop (posted). */
void cscf_regevent_post(struct ims_cscf *g, const char *impu, const char *gone_event);
/* Subscriptions whose time is up: final NOTIFY (terminated;reason=timeout). */
void cscf_regevent_sweep(struct cscf_worker *w, int64_t now_s);

/* The reginfo document (RFC 3680 §5.3, application/reginfo+xml), full
 * state: one <registration> per non-barred IMPU of the set, each with every
 * contact.  Pure; exposed for the unit test. */
struct cscf_reginfo_contact {
    const char *uri;
    const char *call_id;  /* may be NULL */
    uint32_t cseq;
    unsigned q;           /* x 1000 */
    bool active;          /* state="active", else "terminated" */
    const char *event;    /* registered, created, refreshed, shortened, expired,
                           * deactivated, probation, unregistered, rejected */
    long expires;         /* seconds left (active contacts) */
};
struct cscf_reginfo {
    uint32_t version;
    const char (*impus)[IMS_REG_ID_MAX];
    const bool *barred;   /* may be NULL */
    size_t nimpu;
    const struct cscf_reginfo_contact *c;
    size_t nc;
};
/* Appends the document to out.  0, IMS_ELIMIT (out's cap), IMS_ENOMEM. */
int cscf_reginfo_build(const struct cscf_reginfo *ri, struct ims_buf *out);

/* ---- rtr.c: RTR and PPR from the HSS (TS 29.228 §6.1.3, §6.1.4) ---- */
/* Serves them through the Cx transport (after it started). */
void cscf_rtr_attach(struct ims_cscf *g);

/* ---- thirdparty.c: third-party REGISTER to ASes (TS 24.229 §5.4.1.7) ---- */
int cscf_tp_init(struct ims_cscf *g);  /* 0, IMS_EINVAL, IMS_ENOMEM */
void cscf_tp_fini(struct ims_cscf *g);
/* The UE's REGISTER req was committed (sat: the SAR's REGISTRATION,
 * RE_REGISTRATION or USER_DEREGISTRATION) and is about to get 200 with the
 * header lines rsp_hdrs: REGISTER to each AS whose iFC matches.  Uses
 * w->reg_a as scratch.  Worker loop only. */
void cscf_tp_register(struct cscf_worker *w, int sat, const char *impu, const char *impi,
                      const struct sip_msg *req, ims_str rsp_hdrs);
/* impu's registration expired (it is gone): the ASes get Expires: 0. */
void cscf_tp_expired(struct cscf_worker *w, const char *impu, const char *impi);


/* ---- bearer.c: RFC 8898 Bearer tokens (Keystone) and the policy at the
 * S-CSCF (docs/keystone.md) ---- */
#include "policy/policy.h"
struct ims_ks_token;
#define CSCF_CREDS_MAX 32
#define CSCF_ROLES_MAX 256 /* a subscription's roles list, with the NUL */
/* Policy credentials with their own arrays (borrowed strings, or split in
 * role_buf: a subscription's roles from the HSS). */
struct cscf_creds {
    struct ims_policy_creds c;
    const char *roles[CSCF_CREDS_MAX];
    const char *methods[CSCF_CREDS_MAX];
    char role_buf[CSCF_ROLES_MAX];
};
/* The Keystone ctx ([keystone] url set), the policy ([scscf] policy_file),
 * the local roles.  0, or an error with err filled (a bad policy file). */
int cscf_bearer_init(struct ims_cscf *g, char *err, size_t errsz);
int cscf_bearer_worker_init(struct cscf_worker *w); /* w->ks when Keystone is on */
/* With the worker loops stopped, not freed: frees the clients (their
 * pending callbacks run and, seeing cscf_bearer_stopping, do nothing). */
void cscf_bearer_stop(struct ims_cscf *g);
void cscf_bearer_fini(struct ims_cscf *g);
bool cscf_bearer_on(const struct ims_cscf *g);       /* Keystone configured */
bool cscf_bearer_stopping(const struct ims_cscf *g);
/* The token of the first "Authorization: Bearer" (a slice into m). */
bool cscf_bearer_token(const struct sip_msg *m, ims_str *tok);
/* "WWW-Authenticate: Bearer realm, scope, authz_server[, error]\r\n" in buf;
 * empty when Keystone is off. */
ims_str cscf_bearer_challenge(const struct ims_cscf *g, const char *error, char *buf, size_t cap);
/* Credentials: a token's (borrowed from t), or a Digest/AKA user's:
 * roles = the subscription's roles from the HSS (profile.h, copied), or
 * [scscf] local_roles when NULL or ""; methods = {method}. */
void cscf_creds_token(const struct ims_ks_token *t, struct cscf_creds *c);
void cscf_creds_local(const struct ims_cscf *g, const char *impi, const char *method,
                      const char *roles, struct cscf_creds *c);
bool cscf_policy_on(const struct ims_cscf *g);
/* true: allowed, or no policy configured.  A denial is logged, counted
 * (IMS_M_POLICY_DENIALS) and audited (cscf_audit_policy: the user c->user_id
 * with impu, m's Request-URI as the target).  Any thread. */
bool cscf_policy_allows(const struct ims_cscf *g, const struct sip_msg *m, const char *rule,
                        const struct ims_policy_creds *c, const char *impu);
/* SIGHUP: loads [scscf] policy_file again and swaps it in; requests being
 * judged finish with the old one (a reference count).  A file that does
 * not load leaves the old policy in force.  0, IMS_ENOENT (no policy_file),
 * or as ims_policy_load_file with err "scscf: policy_file: path:line: ...". */
int cscf_bearer_reload_policy(struct ims_cscf *g, char *err, size_t errsz);
/* rule for the user impi/impu with tok's credentials (the request's own
 * validated token, borrowed), else the token impi registered with, else
 * roles (the subscription's from the HSS, borrowed; NULL or "": [scscf]
 * local_roles).  As cscf_policy_allows (logged, counted, audited). */
bool cscf_policy_user_allows(struct cscf_worker *w, const struct sip_msg *m, const char *rule,
                             const char *impi, const char *impu, const struct ims_ks_token *tok,
                             const char *roles);
/* Is t a token of the user impi (IMPI = "<user name>@<realm>")? */
bool cscf_bearer_token_of(const struct ims_cscf *g, const struct ims_ks_token *t,
                          const char *impi);
/* A request's own token refused (rc of the Keystone lookup/validation):
 * 401 invalid_token (IMS_ENOENT, IMS_EINVAL), else 503 + Retry-After. */
void cscf_bearer_refused(struct ims_cscf *g, struct proxy_req *r, int rc);
/* "Warning: 399 <host> \"Denied by policy rule <rule>\"\r\n" in buf. */
ims_str cscf_policy_warning(const struct ims_cscf *g, const char *rule, char *buf, size_t cap);
/* The token an IMPI registered with (tok referenced; NULL: Digest/AKA). */
void cscf_bearer_bind(struct ims_cscf *g, const char *impi, struct ims_ks_token *tok);
/* A new reference to the IMPI's unexpired registration token, or NULL. */
struct ims_ks_token *cscf_bearer_of(struct ims_cscf *g, const char *impi, int64_t now_s);
void cscf_bearer_sweep(struct cscf_worker *w, int64_t now_s);

/* ---- lockout.c: brute-force lockout at the S-CSCF (docs/security.md) ----
 * Failures are counted per source address, per IMPI and per (IMPI,
 * source) pair; see lockout.c for the rules.  Thread-safe. */
struct cscf_lockout;
struct cscf_lockout_cfg {
    unsigned impi_failures;   /* failures of an IMPI in a window that lock it; 0: off */
    unsigned source_failures; /* failures from one address that lock it; 0: off */
    unsigned window_s, time_s, max_time_s;
    size_t max_entries;
    unsigned impi_rate, impi_burst; /* REGISTERs per IMPI per second; 0: off */
};
#define CSCF_LOCK_IMPI 1u
#define CSCF_LOCK_SOURCE 2u
/* 0, IMS_EINVAL, IMS_ENOMEM. */
int cscf_lockout_new(const struct cscf_lockout_cfg *cfg, struct cscf_lockout **out);
void cscf_lockout_free(struct cscf_lockout *lk); /* NULL is a no-op */
/* May a REGISTER for impi from src (empty: not known) have its credentials
 * checked?  true: locked out, answer as a wrong password would. */
bool cscf_lockout_blocked(struct cscf_lockout *lk, ims_str impi, ims_str src, int64_t now_ms);
/* A failed check: counts it; returns CSCF_LOCK_* bits of the locks it
 * started, with their durations. */
unsigned cscf_lockout_failed(struct cscf_lockout *lk, ims_str impi, ims_str src, int64_t now_ms,
                             unsigned *impi_lock_s, unsigned *src_lock_s);
/* A passed check: the IMPI's (and the pair's) count restarts; locks stay. */
void cscf_lockout_succeeded(struct cscf_lockout *lk, ims_str impi, ims_str src);
/* Forgets entries quiet for max(window, max_time) (shards first, first + step...). */
void cscf_lockout_expire(struct cscf_lockout *lk, unsigned first, unsigned step, int64_t now_ms);
/* Takes one REGISTER from impi's bucket (impi_rate per second, impi_burst
 * deep): true when it was empty.  Always false with impi_rate 0, or when
 * the table is full (the lockout's cap is logged elsewhere). */
bool cscf_lockout_rate_over(struct cscf_lockout *lk, ims_str impi, int64_t now_ms);
void cscf_lockout_stats(const struct cscf_lockout *lk, uint64_t *locks, uint64_t *blocked);
/* cscf_ue_addr (sipx.c) NUL-terminated into out.  0, IMS_ENOENT, IMS_ELIMIT. */
int cscf_ue_source(const struct sip_msg *m, char *out, size_t cap);
/* The CADF event (action authenticate, outcome failure, reason lockout) and
 * a log line for each lock in `what`. */
void cscf_lockout_audit(const char *impi, const char *impu, const char *src, unsigned what,
                        unsigned impi_s, unsigned src_s);
/* S-CSCF glue: [lockout] config -> g->lockout (NULL when off); 0 or
 * IMS_EINVAL/IMS_ENOMEM.  The glue passes cscf_mono_ms() as every now_ms
 * above. */
int cscf_lockout_init(struct ims_cscf *g);
/* Is this REGISTER's credential check locked out (logged)?  src: its UE's
 * address, cscf_ue_source() ("" when unknown: the IMPI alone counts). */
bool cscf_lockout_check(struct ims_cscf *g, const char *src, const char *impi);
/* Counts a verdict (WRONG, TOO_MANY: failure; OK: success) for impi and
 * src (as above); a new lock is audited. */
void cscf_lockout_note(struct ims_cscf *g, const char *src, const char *impi, const char *impu,
                       enum ims_auth_verdict v);
/* A challenge line ("WWW-Authenticate: ...\r\n") for an unknown IMPI, of
 * the same shape as a real one (alg: enum ims_digest_alg, or -1 for AKA),
 * recorded in g->auth so that every response to it is simply wrong (counted,
 * then 403, then lockout, as for a known IMPI).  0 or auth.c's errors. */
int cscf_decoy_challenge(struct ims_cscf *g, const char *impi, bool stale, int alg, char *line,
                         size_t cap);
/* [limits] impi_rate: a REGISTER for impi beyond its bucket is answered
 * 503 with Retry-After here (true). */
bool cscf_impi_rate_reply(struct ims_cscf *g, struct proxy_req *r, const char *impi);

#endif
