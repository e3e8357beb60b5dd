/* cas_int.h - the cloud AS's private parts (src/cloudas only).
 * docs/cloud-as.md is the user's side; docs/internals/cloudas.md the design. */
#ifndef IMS_CLOUDAS_CAS_INT_H
#define IMS_CLOUDAS_CAS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/str.h"
#include "cfg/cfg.h"
#include "ev/loop.h"

struct ims_proxy;
struct ims_http;
struct ims_http_req;
struct ims_policy;
struct ims_cloudas;

#define CAS_NAME_MAX 64   /* server, flavor, image names and ids */
#define CAS_IMPU_MAX 256
#define CAS_URL_MAX 256
#define CAS_ROLES_MAX 8
#define CAS_CALLID_MAX 128
#define CAS_LIST_MAX 20 /* servers or rules in one result: one MESSAGE stays small */

/* ---- the command language (cas_cmd.c, docs/cloud-as.md) ---- */

enum cas_verb {
    CAS_HELP,
    CAS_LIST,
    CAS_SHOW,
    CAS_CREATE,
    CAS_START,
    CAS_STOP,
    CAS_DELETE,
    CAS_SG_LIST,
    CAS_SG_ADD,
    CAS_SG_DELETE,
    CAS_QUOTA,
};

struct cas_cmd {
    enum cas_verb verb;
    char name[CAS_NAME_MAX];   /* show/create/start/stop/delete; secgroup delete: rule id */
    char flavor[CAS_NAME_MAX]; /* create: id or name, "" = the smallest */
    char image[CAS_NAME_MAX];  /* create: id or name, "" = the first active one */
    char proto[8];             /* secgroup add: tcp, udp, icmp */
    unsigned port_min, port_max;
    char cidr[48];
};

/* Parses a command from a MESSAGE body: content type text/plain (one line)
 * or application/json ({"command": "create", "name": ...}).  0, or
 * IMS_EPROTO with err (errsz bytes) naming the problem in words a user can
 * act on. */
int cas_cmd_parse(ims_str ctype, ims_str body, struct cas_cmd *out, char *err, size_t errsz);
/* "list", "secgroup add", ... */
const char *cas_verb_name(enum cas_verb v);
/* The policy rule checked before the command runs (etc/policy.yaml), or
 * NULL for help (nothing to check). */
const char *cas_verb_rule(enum cas_verb v);
/* The help text (static). */
const char *cas_help_text(void);

/* ---- per worker (cloudas.c) ---- */

/* A user's Keystone identity as the AS holds it: the token from their
 * delegation, and what the policy and the calls need from it.  The token
 * is a secret: never logged, wiped when freed. */
struct cas_ident {
    struct cas_ident *next;
    char impu[CAS_IMPU_MAX];
    char *token;
    char user_id[CAS_NAME_MAX], project_id[CAS_NAME_MAX], domain_id[CAS_NAME_MAX];
    char roles[CAS_ROLES_MAX][32];
    size_t nroles;
    char method[32];           /* "application_credential", "password", ... */
    char compute[CAS_URL_MAX], network[CAS_URL_MAX], image[CAS_URL_MAX]; /* catalog, public */
    int64_t expires;           /* Unix s */
    unsigned users;            /* jobs using it: freed only at 0 */
    bool stale;                /* replaced or expired: freed when users drops to 0 */
};

struct cas_job;
struct cas_sub;
struct proxy_req;
struct sip_msg;

struct cas_worker {
    struct ims_cloudas *as;
    struct ims_loop *loop;
    struct ims_proxy *proxy;
    struct ims_http *http;
    struct cas_job *jobs;      /* in progress (commands, builds) */
    size_t njobs;
    struct cas_ident *idents;  /* token cache, by IMPU */
    struct cas_sub *subs;      /* x-cloud-servers subscriptions (cas_sub.c) */
    size_t nsubs;
    uint32_t seq;              /* Call-IDs of our MESSAGEs */
};

/* One delegation ([as] delegations). */
struct cas_deleg {
    char *impu, *ac_id, *ac_secret;
};

struct ims_cloudas {
    char service_uri[CAS_IMPU_MAX];
    ims_str service_user, service_host; /* into service_uri */
    char icscf[CAS_URL_MAX];
    char keystone[CAS_URL_MAX];
    struct cas_deleg *delegs;
    size_t ndelegs;
    struct ims_policy *policy;
    unsigned poll_ms, poll_max_ms, build_timeout_s, http_timeout_ms, max_jobs;
    struct ims_cfg_ports ports;
    struct cas_worker *workers;
    unsigned nworkers;
};

/* ---- jobs (cas_job.c) ---- */

/* Runs cmd for the served user impu; every outcome ends in MESSAGEs back
 * to the user.  bearer: the request's own RFC 8898 token (copied; empty:
 * the user's delegation is used).  0, IMS_ELIMIT (max_jobs), IMS_ENOMEM. */
int cas_job_start(struct cas_worker *w, const char *impu, ims_str call_id, ims_str bearer,
                  const struct cas_cmd *cmd);
/* Ends every job of the worker without messages (shutdown). */
void cas_job_free_all(struct cas_worker *w);
/* A subscription's poll: like "list" for impu, but the outcome goes to
 * cas_sub_polled (servers: Nova's array, borrowed) or cas_sub_failed
 * instead of a MESSAGE.  0, IMS_ELIMIT, IMS_ENOMEM; *out names the job for
 * cas_job_cancel. */
int cas_job_poll(struct cas_worker *w, const char *impu, struct cas_sub *sub,
                 struct cas_job **out);
void cas_job_cancel(struct cas_job *j);
void cas_ident_free_all(struct cas_worker *w);

/* ---- subscriptions (cas_sub.c, event package x-cloud-servers) ---- */

#define CAS_EVENT "x-cloud-servers"
/* A SUBSCRIBE on an [as] port: initial (to the service URI) or in a dialog
 * of ours.  Always answers r. */
void cas_sub_request(struct cas_worker *w, struct proxy_req *r, const struct sip_msg *m,
                     const char *impu);
/* Is m in one of our subscription dialogs (Call-ID and our tag)? */
bool cas_sub_owns(struct cas_worker *w, const struct sip_msg *m);
struct json_t;
void cas_sub_polled(struct cas_sub *s, struct json_t *servers);
void cas_sub_failed(struct cas_sub *s, int code, const char *msg);
void cas_sub_free_all(struct cas_worker *w);

/* Frees what jansson allocated (json_dumps): with jansson's current free
 * function, which a process may have set (json_set_alloc_funcs). */
void cas_json_free(void *p);

/* ---- results to the user (cloudas.c) ---- */

/* Sends a MESSAGE from the service URI to impu through [as] icscf with the
 * result: a text/plain human line and an application/json document in a
 * multipart/mixed body (docs/cloud-as.md).  It carries the Call-ID of the
 * command's MESSAGE (and In-Reply-To, RFC 3261 §20.21), so that a client
 * pairs results with commands; cseq orders the results of one command.
 * json is the document's text (borrowed).  Errors are logged: a lost
 * result message is not retried. */
void cas_send(struct cas_worker *w, const char *impu, const char *call_id, uint32_t cseq,
              const char *text, const char *json);

#endif
