/* ut.c - the Ut HTTP(S) server (ut.h, docs/ut.md).
 *
 * A request's way:
 *   MHD thread: route and check the URL, collect the body (capped), take
 *     X-Auth-Token (none: 401 at once), suspend the connection, post the
 *     request to the Ut loop;
 *   Ut loop: validate the token (Keystone client: cache, single flight);
 *     invalid 401, Keystone down 503; else submit a store job;
 *   store thread: the subscription of {impu} (404), who may act (owner
 *     under ut:read / ut:write, anyone else under admin:subscriber: 403),
 *     then read or write the Sh repository data (service indication
 *     "imscloud-ut", TS 29.328 §6.1.2 sequence numbers: a lost race is 409);
 *   Ut loop: a successful write updates the S-CSCF's CDIV registry
 *     (cdiv.h); the connection is resumed and MHD sends the answer.
 *
 * Ownership: struct ut_req belongs to MHD's connection (freed in the
 * completed callback).  From the post until MHD_resume_connection() the Ut
 * loop (and its store job) use it and MHD does not; after the resume the
 * loop never touches it again.  Everything that can end a request while it
 * is suspended (Keystone callback, store done or cancel, a dropped post)
 * goes through finish(), which resumes exactly once. */
#include "ut/ut.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "acl/acl.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/thread.h"
#include "cfg/cfg.h"
#include "crypto/keyrepo.h"
#include "cscf/cdiv.h"
#include "cscf/registrar.h"
#include "ev/loop.h"
#include "keystone/keystone.h"
#include "net/transport.h"
#include "policy/holder.h" /* SIGHUP reload (policy follow-up) */
#include "policy/policy.h"
#include "store/exec.h"
#include "store/store.h"
#include "ut/ut_int.h"

#define UT_BODY_MAX (16u * 1024)
#define UT_OUT_MAX (64u * 1024)
#define UT_CONN_LIMIT 256u
#define UT_CONN_TIMEOUT 30u /* seconds of an idle connection */
#define UT_STORE_QUEUE 256u
#define UT_PEM_MAX (1u << 20)
#define UT_CDIV_MAX 100000u /* users with an active CFU/barring in the registry */
#define UT_PREFIX "/ut/v1/users/"
#define UT_ROLES_MAX 32

struct ims_ut {
    const struct ims_cfg *cfg;
    struct ims_loc *loc;
    struct MHD_Daemon *d;
    struct ims_addr addr;
    uint16_t port;
    struct ims_loop *loop;
    pthread_t thread;
    bool thread_started;
    struct ims_ks_ctx *ks_ctx;
    struct ims_ks *ks;              /* on the Ut loop */
    struct ims_policy_holder *pol;  /* NULL: owners only; SIGHUP swaps its policy */
    struct ims_keyrepo *repo;
    struct ims_store_exec *x;
    pthread_mutex_t post_mu;        /* closing, quiesced, and posts into the loop */
    pthread_cond_t quiesced_cv;
    bool closing;                   /* no more posts: the loop is going */
    bool quiesced;                  /* loop_quiesce ran: nothing submits store jobs */
    bool stopping;                  /* Ut loop only: the Keystone client is gone */
    bool cdiv_on;
    char *pem_cert, *pem_key;
    char www_auth[600];
};

enum ut_method { UT_GET = 1, UT_PUT };

struct ut_req {
    struct ims_ut *u;
    struct MHD_Connection *conn;
    enum ut_method method;
    enum ut_part part;
    char impu[IMS_STORE_ID_MAX];
    char *token;                    /* our copy, wiped once handed to Keystone */
    size_t toklen;
    struct ims_buf body;
    bool too_big, posted, done;
    struct ims_ks_token *tok;       /* a reference, from validation on */
    struct ims_store_job sj;
    /* the answer */
    unsigned status;
    bool want_auth;                 /* 401: WWW-Authenticate */
    struct ims_buf out;
    /* a successful settings write: for the CDIV registry */
    bool cdiv_set;
    struct ims_cdiv cdiv;
};

/* ------------------------------------------------------------ answers */

static void set_error(struct ut_req *q, unsigned status, const char *msg)
{
    q->status = status;
    ims_buf_reset(&q->out);
    json_t *j = json_pack("{s:{s:i, s:s}}", "error", "code", (json_int_t)status, "message", msg);
    if (!j || ut_json_out(j, &q->out) != 0)
        ims_buf_reset(&q->out);
    json_decref(j);
}

static void wipe_token(struct ut_req *q)
{
    if (q->token) {
        memset(q->token, 0, q->toklen);
        ims_free(q->token);
        q->token = NULL;
    }
}

/* The end of the loop's part: the answer is set; MHD takes the request
 * back.  Must be the last touch of q on this side. */
static void finish(struct ut_req *q)
{
    wipe_token(q);
    q->done = true;
    MHD_resume_connection(q->conn);
}

static void fail(struct ut_req *q, unsigned status, const char *msg)
{
    set_error(q, status, msg);
    finish(q);
}

static enum MHD_Result send_answer(struct ut_req *q)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(q->out.len, q->out.p, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (q->want_auth) /* as keystonemiddleware: where to get a token */
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, q->u->www_auth);
    if (q->status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW,
                                q->part == UT_PART_DEVICES ? "GET" : "GET, PUT");
    enum MHD_Result ret = MHD_queue_response(q->conn, q->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* ------------------------------------------------------------ store side */

/* Who may act on q->impu (subscription sub): its owner (the Keystone user
 * linked to the subscription) under ut:read / ut:write, anyone else under
 * admin:subscriber.  Without a policy file: owners only. */
static bool authorized(const struct ims_ut *u, const struct ut_req *q,
                       const struct ims_sub_rec *sub)
{
    const struct ims_ks_token *t = q->tok;
    bool owner = sub->keystone_user_id[0] && t->user_id &&
                 strcmp(t->user_id, sub->keystone_user_id) == 0;
    const char *rule = !owner ? "admin:subscriber" : q->method == UT_PUT ? "ut:write" : "ut:read";
    if (!u->pol) {
        if (!owner)
            LOG_I("ut", "event=ut_denied impu=%s user=%s why=not_owner", q->impu,
                  t->user_id ? t->user_id : "-");
        return owner;
    }
    const char *roles[UT_ROLES_MAX];
    size_t nroles = 0;
    for (size_t i = 0; i < t->nroles && nroles < UT_ROLES_MAX; i++)
        roles[nroles++] = t->roles[i].name;
    struct ims_policy_creds c = {
        .user_id = t->user_id, .user_domain_id = t->user_domain_id,
        .project_id = t->project_id, .project_domain_id = t->project_domain_id,
        .roles = roles, .n_roles = nroles,
        .methods = (const char *const *)t->methods, .n_methods = t->nmethods,
    };
    struct ims_policy_kv kv[] = {
        { "target.user_id", sub->keystone_user_id },
        { "target.project_id", sub->keystone_project_id },
        { "target.impu", q->impu },
    };
    struct ims_policy_target tg = { kv, 3 };
    struct ims_policy_ref *pr = ims_policy_holder_get(u->pol); /* non-NULL: loaded at start */
    bool ok = pr && ims_policy_enforce(ims_policy_ref_policy(pr), rule, &c, &tg, NULL);
    ims_policy_ref_put(pr);
    if (!ok)
        LOG_I("ut", "event=ut_denied impu=%s user=%s rule=%s", q->impu,
              t->user_id ? t->user_id : "-", rule);
    return ok;
}

static int load_settings(struct ims_store *st, const char *impu, struct ut_settings *s,
                         unsigned *seq, bool *exists)
{
    struct ims_buf b;
    ims_buf_init(&b, IMS_STORE_SH_MAX + 1);
    *seq = 0;
    *exists = false;
    ut_settings_default(s);
    int rc = ims_store_sh_get(st, ims_str_cstr(impu), ims_str_cstr(UT_SI), &b, seq);
    if (rc == 0) {
        *exists = true;
        if (ut_doc_parse(ims_buf_str(&b), s) != 0) {
            /* not ours (another writer of the SI): start over, logged */
            LOG_W("ut", "event=ut_doc_unreadable impu=%s", impu);
            ut_settings_default(s);
        }
    } else if (rc == IMS_ENOENT) {
        rc = 0;
    }
    ims_buf_free(&b);
    return rc;
}

/* GET .../devices: the S-CSCF's bindings when it runs in this process,
 * else the HSS's registration state of the IMPU. */
static json_t *devices_json(const struct ims_ut *u, struct ims_store *st, const char *impu)
{
    json_t *o = json_object();
    json_t *arr = json_array();
    if (!o || !arr) {
        json_decref(o);
        json_decref(arr);
        return NULL;
    }
    json_object_set_new(o, "devices", arr);
    if (u->loc) {
        struct ims_reg *reg = ims_calloc(1, sizeof(*reg));
        if (!reg) {
            json_decref(o);
            return NULL;
        }
        int64_t now = (int64_t)time(NULL);
        int rc = ims_loc_get(u->loc, ims_str_cstr(impu), now, reg);
        for (size_t i = 0; rc == 0 && i < reg->ncontacts; i++) {
            const struct ims_reg_contact *c = &reg->contacts[i];
            json_array_append_new(
                arr, json_pack("{s:s, s:I, s:f, s:o}", "contact", c->uri, "expires_in",
                               (json_int_t)(c->expires > now ? c->expires - now : 0),
                               "q", c->q / 1000.0, "instance",
                               c->instance[0] ? json_string(c->instance) : json_null()));
        }
        json_object_set_new(o, "source", json_string("scscf"));
        json_object_set_new(o, "registered", json_boolean(rc == 0 && reg->ncontacts > 0));
        ims_reg_clear(reg);
        ims_free(reg);
        return o;
    }
    struct ims_impu_rec rec;
    static const char *const states[] = { "not_registered", "registered", "unregistered" };
    json_object_set_new(o, "source", json_string("hss"));
    if (ims_store_impu_get(st, ims_str_cstr(impu), &rec) == 0 && (unsigned)rec.reg_state < 3)
        json_object_set_new(o, "registration_state", json_string(states[rec.reg_state]));
    return o;
}

static json_t *project_json(const struct ims_sub_rec *sub)
{
    return json_pack("{s:o}", "project_id",
                     sub->keystone_project_id[0] ? json_string(sub->keystone_project_id)
                                                 : json_null());
}

static int answer_json(struct ut_req *q, unsigned status, json_t *j)
{
    if (!j)
        return IMS_ENOMEM;
    q->status = status;
    ims_buf_reset(&q->out);
    int rc = ut_json_out(j, &q->out);
    json_decref(j);
    return rc;
}

static int do_get(struct ut_req *q, struct ims_store *st, const struct ims_sub_rec *sub)
{
    struct ut_settings s;
    unsigned seq;
    bool exists;
    if (q->part == UT_PART_DEVICES)
        return answer_json(q, 200, devices_json(q->u, st, q->impu));
    if (q->part == UT_PART_PROJECT)
        return answer_json(q, 200, project_json(sub));
    int rc = load_settings(st, q->impu, &s, &seq, &exists);
    if (rc)
        return rc;
    json_t *j = ut_json_part(&s, q->part);
    if (j && q->part == UT_PART_ALL) {
        json_object_set_new(j, "impu", json_string(q->impu));
        json_object_set_new(j, "project", project_json(sub));
        json_object_set_new(j, "devices", devices_json(q->u, st, q->impu));
    }
    return answer_json(q, 200, j);
}

/* PUT .../project: link the subscription to a Keystone project.  A user
 * may link only the project its token is scoped to (an admin any). */
static int put_project(struct ut_req *q, struct ims_store *st, struct ims_sub_rec *sub,
                       json_t *body, bool owner)
{
    json_t *v = json_is_object(body) ? json_object_get(body, "project_id") : NULL;
    const char *id = json_string_value(v);
    if (!v || (!id && !json_is_null(v)) || (id && (!id[0] || strlen(id) >= IMS_STORE_NAME_MAX))) {
        set_error(q, 400, "project must be {\"project_id\": \"<Keystone project id>\" | null}");
        return 0;
    }
    if (owner && id && (!q->tok->project_id || strcmp(id, q->tok->project_id) != 0)) {
        set_error(q, 403, "a user may link only the project its token is scoped to");
        return 0;
    }
    snprintf(sub->keystone_project_id, sizeof(sub->keystone_project_id), "%s", id ? id : "");
    int rc = ims_store_sub_update(st, sub);
    if (rc == 0)
        rc = answer_json(q, 200, project_json(sub));
    return rc;
}

static unsigned next_seq(unsigned seq, bool exists)
{
    if (!exists)
        return 0;
    return seq >= 65535 ? 1 : seq + 1; /* TS 29.328 §7.6 */
}

static int put_settings(struct ut_req *q, struct ims_store *st, json_t *body)
{
    struct ut_settings s, n;
    unsigned seq;
    bool exists;
    const char *why = "bad body";
    int rc = load_settings(st, q->impu, &s, &seq, &exists);
    if (rc)
        return rc;
    n = s;
    if (ut_json_apply(&n, q->part, body, &why) != 0) {
        set_error(q, 400, why);
        return 0;
    }
    struct ims_buf doc;
    ims_buf_init(&doc, UT_DOC_MAX + 1);
    enum ims_sh_result shr = IMS_SH_OK;
    rc = ut_doc_dump(&n, &doc);
    if (rc == 0)
        rc = ims_store_sh_put(st, ims_str_cstr(q->impu), ims_str_cstr(UT_SI),
                              next_seq(seq, exists), ims_buf_str(&doc), &shr);
    ims_buf_free(&doc);
    if (rc)
        return rc;
    if (shr == IMS_SH_OUT_OF_SYNC) { /* another writer came between our read and write */
        set_error(q, 409, "the settings changed meanwhile: read them and try again");
        return 0;
    }
    ut_settings_cdiv(&n, &q->cdiv);
    q->cdiv_set = true;
    LOG_N("ut", "event=ut_settings_written impu=%s user=%s cfu=%s icb_all=%d icb_anon=%d",
          q->impu, q->tok->user_id ? q->tok->user_id : "-", n.cfu[0] ? n.cfu : "-", n.icb_all,
          n.icb_anonymous);
    return answer_json(q, 200, ut_json_part(&n, q->part));
}

/* Store thread (exec.h rule 3): the whole decision and the data. */
static int req_work(struct ims_store *st, void *arg)
{
    struct ut_req *q = arg;
    struct ims_sub_rec sub;
    int rc = ims_store_sub_of_impu(st, ims_str_cstr(q->impu), &sub);
    if (rc == IMS_ENOENT || rc == IMS_EINVAL) {
        /* only an admin learns that an identity does not exist */
        memset(&sub, 0, sizeof(sub));
        bool admin = authorized(q->u, q, &sub);
        set_error(q, admin ? 404 : 403,
                  admin ? "no such public identity" : "not allowed for this identity");
        return 0;
    }
    if (rc)
        return rc;
    if (!authorized(q->u, q, &sub)) {
        set_error(q, 403, "not allowed for this identity");
        return 0;
    }
    if (q->method == UT_GET)
        return do_get(q, st, &sub);
    json_t *body = json_loadb(q->body.p ? q->body.p : "", q->body.len, JSON_REJECT_DUPLICATES,
                             NULL);
    if (!body) {
        set_error(q, 400, "the body is not JSON");
        return 0;
    }
    bool owner = strcmp(q->tok->user_id ? q->tok->user_id : "", sub.keystone_user_id) == 0;
    rc = q->part == UT_PART_PROJECT ? put_project(q, st, &sub, body, owner)
                                    : put_settings(q, st, body);
    json_decref(body);
    return rc;
}

static void req_done(struct ims_loop *loop, int rc, void *arg)
{
    struct ut_req *q = arg;
    (void)loop;
    if (rc) {
        LOG_W("ut", "event=ut_store_failed impu=%s err=%s", q->impu, ims_strerror(rc));
        fail(q, rc == IMS_ELIMIT ? 413 : 503, "the subscriber store failed");
        return;
    }
    if (q->cdiv_set && q->u->cdiv_on) {
        int prc = ims_cdiv_put(ims_str_cstr(q->impu), &q->cdiv);
        if (prc)
            LOG_W("ut", "event=cdiv_update_failed impu=%s err=%s", q->impu, ims_strerror(prc));
    }
    finish(q);
}

static void req_cancel(void *arg)
{
    fail(arg, 503, "shutting down");
}

/* ------------------------------------------------------------ Ut loop */

static void on_token(void *arg, int rc, struct ims_ks_token *tok)
{
    struct ut_req *q = arg;
    wipe_token(q);
    if (rc == IMS_ENOENT) {
        q->want_auth = true;
        fail(q, 401, "invalid, expired or revoked token");
        return;
    }
    if (rc) {
        fail(q, 503, "the identity service is unavailable");
        return;
    }
    q->tok = ims_ks_token_ref(tok);
    struct ims_ut *u = q->u;
    if (u->stopping || ims_store_exec_submit(u->x, u->loop, &q->sj, req_work, req_done,
                                             req_cancel, q) != 0)
        fail(q, 503, "busy");
}

static void req_start(struct ims_loop *loop, void *arg)
{
    struct ut_req *q = arg;
    (void)loop;
    if (q->u->stopping) {
        fail(q, 503, "shutting down");
        return;
    }
    int rc = ims_ks_validate(q->u->ks, q->token, q->toklen, 0, on_token, q);
    if (rc)
        fail(q, 503, rc == IMS_EINVAL ? "empty token" : "busy");
}

static void req_drop(void *arg)
{
    fail(arg, 503, "shutting down");
}

static void *loop_main(void *arg)
{
    struct ims_ut *u = arg;
    int rc = ims_loop_run(u->loop);
    if (rc)
        LOG_E("ut", "event=ut_loop_failed err=%s", ims_strerror(rc));
    return NULL;
}

/* On the loop: no more Keystone work (pending validations end with 503). */
static void loop_quiesce(struct ims_loop *loop, void *arg)
{
    struct ims_ut *u = arg;
    (void)loop;
    u->stopping = true;
    ims_ks_free(u->ks);
    u->ks = NULL;
    pthread_mutex_lock(&u->post_mu);
    u->quiesced = true;
    pthread_cond_signal(&u->quiesced_cv);
    pthread_mutex_unlock(&u->post_mu);
}

static void loop_quit(struct ims_loop *loop, void *arg)
{
    (void)arg;
    ims_loop_stop(loop);
}

/* ------------------------------------------------------------ MHD side */

/* url: /ut/v1/users/{impu}/settings[/part]; MHD has %-decoded it. */
static int route(struct ut_req *q, const char *url, const char *method)
{
    static const struct { const char *name; enum ut_part part; } parts[] = {
        { "", UT_PART_ALL }, { "/call-forwarding", UT_PART_CF },
        { "/incoming-barring", UT_PART_ICB }, { "/privacy", UT_PART_PRIVACY },
        { "/devices", UT_PART_DEVICES }, { "/project", UT_PART_PROJECT },
    };
    if (strncmp(url, UT_PREFIX, strlen(UT_PREFIX)) != 0)
        return 404;
    const char *id = url + strlen(UT_PREFIX);
    const char *set = strstr(id, "/settings");
    if (!set || set == id || (size_t)(set - id) >= sizeof(q->impu))
        return 404;
    bool found = false;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && !found; i++) {
        if (strcmp(set + 9, parts[i].name) == 0) {
            q->part = parts[i].part;
            found = true;
        }
    }
    if (!found)
        return 404;
    memcpy(q->impu, id, (size_t)(set - id));
    q->impu[set - id] = '\0';
    if (strncmp(q->impu, "sip:", 4) != 0 && strncmp(q->impu, "tel:", 4) != 0 &&
        strncmp(q->impu, "sips:", 5) != 0)
        return 404;
    if (strcmp(method, "GET") == 0)
        q->method = UT_GET;
    else if (strcmp(method, "PUT") == 0 && q->part != UT_PART_DEVICES)
        q->method = UT_PUT;
    else
        return 405;
    return 0;
}

static enum MHD_Result answer_now(struct ut_req *q, unsigned status, const char *msg)
{
    set_error(q, status, msg);
    return send_answer(q);
}

/* The complete request: checks, then off to the Ut loop. */
static enum MHD_Result dispatch(struct ut_req *q, const char *url, const char *method)
{
    struct ims_ut *u = q->u;
    int st = route(q, url, method);
    if (st == 404)
        return answer_now(q, 404, "no such resource");
    if (st == 405)
        return answer_now(q, 405, "method not allowed");
    if (q->too_big)
        return answer_now(q, 413, "body too large");
    const char *tok = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "X-Auth-Token");
    if (!tok || !tok[0]) {
        q->want_auth = true;
        return answer_now(q, 401, "X-Auth-Token required");
    }
    q->toklen = strlen(tok);
    q->token = ims_alloc(q->toklen + 1);
    if (!q->token)
        return answer_now(q, 503, "out of memory");
    memcpy(q->token, tok, q->toklen + 1);
    /* suspend first: the loop may resume before the post call returns */
    MHD_suspend_connection(q->conn);
    q->posted = true;
    pthread_mutex_lock(&u->post_mu);
    int rc = u->closing ? IMS_EINVAL : ims_loop_post(u->loop, req_start, q, req_drop);
    pthread_mutex_unlock(&u->post_mu);
    if (rc)
        fail(q, 503, "shutting down");
    return MHD_YES;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    struct ims_ut *u = cls;
    struct ut_req *q = *con_cls;
    (void)version;
    if (!q) { /* headers only: make the request, answer later */
        q = ims_calloc(1, sizeof(*q));
        if (!q)
            return MHD_NO;
        q->u = u;
        q->conn = conn;
        ims_buf_init(&q->body, UT_BODY_MAX);
        ims_buf_init(&q->out, UT_OUT_MAX);
        *con_cls = q;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!q->too_big && ims_buf_add(&q->body, upload, *upload_size) != 0)
            q->too_big = true; /* keep reading, answer 413 at the end */
        *upload_size = 0;
        return MHD_YES;
    }
    if (q->done)
        return send_answer(q);
    if (q->posted)
        return MHD_YES; /* resumed without an answer: cannot happen */
    return dispatch(q, url, method);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct ut_req *q = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (!q)
        return;
    wipe_token(q);
    ims_ks_token_unref(q->tok);
    ims_buf_free(&q->body);
    ims_buf_free(&q->out);
    ims_free(q);
    *con_cls = NULL;
}

static enum MHD_Result accept_cb(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    struct ims_ut *u = cls;
    (void)addrlen;
    return ims_acl_admit(IMS_ACL_HTTP, u->port, addr) ? MHD_YES : MHD_NO;
}

/* ------------------------------------------------------------ start/stop */

static int read_pem(const char *path, char **out, char *err, size_t errsz)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsz, "[ut] cannot read %s", path);
        return IMS_EINVAL;
    }
    char *b = ims_calloc(1, UT_PEM_MAX + 1);
    size_t n = b ? fread(b, 1, UT_PEM_MAX + 1, f) : 0;
    fclose(f);
    if (!b || n == 0 || n > UT_PEM_MAX) {
        ims_free(b);
        snprintf(err, errsz, "[ut] %s: empty, too large or out of memory", path);
        return IMS_EINVAL;
    }
    b[n] = '\0';
    *out = b;
    return 0;
}

/* The HSS's store, as src/hss/role.c names it. */
static int open_store(struct ims_ut *u, char *err, size_t errsz)
{
    const struct ims_cfg *cfg = u->cfg;
    const char *state = cfg->state_dir ? cfg->state_dir : "var";
    char url[1024], keys[1024];
    if (cfg->hss_store)
        snprintf(url, sizeof(url), "%s", cfg->hss_store);
    else
        snprintf(url, sizeof(url), "sqlite:%s/hss.db", state);
    if (cfg->hss_keys_dir)
        snprintf(keys, sizeof(keys), "%s", cfg->hss_keys_dir);
    else
        snprintf(keys, sizeof(keys), "%s/keys", state);
    if (strcmp(url, "sqlite::memory:") == 0) {
        snprintf(err, errsz, "[ut] cannot share an in-memory HSS store");
        return IMS_EINVAL;
    }
    int rc = ims_keyrepo_open(keys, &u->repo, err, errsz);
    if (rc)
        return rc;
    rc = ims_store_exec_new(url, u->repo, 1, UT_STORE_QUEUE, 0, &u->x);
    if (rc)
        snprintf(err, errsz, "[ut] cannot open the HSS store: %s", ims_strerror(rc));
    return rc;
}

struct preload {
    struct ims_buf ids; /* NUL-separated IMPUs */
};

static int preload_cb(void *ctx, const struct ims_impu_rec *rec)
{
    struct preload *p = ctx;
    return ims_buf_add(&p->ids, rec->identity, strlen(rec->identity) + 1);
}

/* Fills the CDIV registry from the stored settings: one query per IMPU,
 * once at start (100k IMPUs take about a second on SQLite). */
static int preload_cdiv(struct ims_ut *u, char *err, size_t errsz)
{
    const struct ims_cfg *cfg = u->cfg;
    const char *state = cfg->state_dir ? cfg->state_dir : "var";
    char url[1024];
    struct ims_store *st = NULL;
    struct preload p;
    size_t active = 0;
    if (cfg->hss_store)
        snprintf(url, sizeof(url), "%s", cfg->hss_store);
    else
        snprintf(url, sizeof(url), "sqlite:%s/hss.db", state);
    int rc = ims_store_open(url, u->repo, &st);
    if (rc) {
        snprintf(err, errsz, "[ut] cannot open the HSS store: %s", ims_strerror(rc));
        return rc;
    }
    ims_buf_init(&p.ids, 64u << 20);
    rc = ims_store_impu_list(st, IMS_STR_NULL, preload_cb, &p);
    for (size_t off = 0; rc == 0 && off < p.ids.len;) {
        const char *impu = p.ids.p + off;
        off += strlen(impu) + 1;
        struct ut_settings s;
        unsigned seq;
        bool exists;
        struct ims_cdiv c;
        rc = load_settings(st, impu, &s, &seq, &exists);
        if (rc || !exists)
            continue;
        ut_settings_cdiv(&s, &c);
        if (c.cfu[0] || c.icb_all || c.icb_anonymous) {
            rc = ims_cdiv_put(ims_str_cstr(impu), &c);
            active++;
        }
    }
    ims_buf_free(&p.ids);
    ims_store_close(st);
    if (rc)
        snprintf(err, errsz, "[ut] cannot load the stored settings: %s", ims_strerror(rc));
    else
        LOG_N("ut", "event=ut_settings_loaded active=%zu", active);
    return rc;
}

static int setup_identity(struct ims_ut *u, char *err, size_t errsz)
{
    struct ims_ks_opts o;
    char *secret = NULL;
    int rc = ims_ks_opts_from_cfg(u->cfg, &o, &secret, err, errsz);
    if (rc == IMS_ENOENT) {
        snprintf(err, errsz, "[ut] listen needs [keystone] url (tokens are Keystone's)");
        return IMS_EINVAL;
    }
    if (rc == 0) {
        rc = ims_ks_ctx_new(&o, &u->ks_ctx);
        if (rc)
            snprintf(err, errsz, "[ut] cannot create the Keystone client: %s", ims_strerror(rc));
    }
    if (secret) {
        memset(secret, 0, strlen(secret)); /* the ctx copied it */
        ims_free(secret);
    }
    if (rc)
        return rc;
    snprintf(u->www_auth, sizeof(u->www_auth), "Keystone uri=\"%s\"", u->cfg->ks_url);
    if (u->cfg->ut_policy_file) {
        char perr[256] = "out of memory";
        rc = ims_policy_holder_new(&u->pol);
        if (rc == 0)
            rc = ims_policy_holder_load(u->pol, u->cfg->ut_policy_file, NULL, perr, sizeof(perr));
        if (rc) {
            snprintf(err, errsz, "[ut] policy_file: %s", perr);
            return rc;
        }
    }
    rc = ims_loop_new(256, &u->loop);
    if (rc == 0)
        rc = ims_ks_new(u->ks_ctx, u->loop, &u->ks);
    if (rc)
        snprintf(err, errsz, "[ut] cannot create the Ut loop: %s", ims_strerror(rc));
    return rc;
}

static int start_http(struct ims_ut *u, char *err, size_t errsz)
{
    const struct ims_cfg *cfg = u->cfg;
    if (ims_addr_parse(ims_str_cstr(cfg->ut_listen), 8443, &u->addr) != 0) {
        snprintf(err, errsz, "[ut] listen: not a numeric address: %s", cfg->ut_listen);
        return IMS_EINVAL;
    }
    if (!cfg->ut_tls_cert != !cfg->ut_tls_key) {
        snprintf(err, errsz, "[ut] tls_cert and tls_key go together");
        return IMS_EINVAL;
    }
    bool tls = cfg->ut_tls_cert != NULL;
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(err, errsz, "[ut] this libmicrohttpd has no TLS");
        return IMS_EINVAL;
    }
    int rc = tls ? read_pem(cfg->ut_tls_cert, &u->pem_cert, err, errsz) : 0;
    if (rc == 0 && tls)
        rc = read_pem(cfg->ut_tls_key, &u->pem_key, err, errsz);
    if (rc)
        return rc;
    u->port = ims_addr_port(&u->addr);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME;
    if (ims_addr_family(&u->addr) == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem tls_opts[] = {
        { MHD_OPTION_HTTPS_MEM_CERT, 0, u->pem_cert },
        { MHD_OPTION_HTTPS_MEM_KEY, 0, u->pem_key },
        { MHD_OPTION_END, 0, NULL },
    };
    if (tls)
        flags |= MHD_USE_TLS;
    else
        tls_opts[0].option = MHD_OPTION_END;
    u->d = MHD_start_daemon(flags, u->port, accept_cb, u, handle, u, MHD_OPTION_SOCK_ADDR,
                            (const struct sockaddr *)&u->addr.ss, MHD_OPTION_CONNECTION_LIMIT,
                            UT_CONN_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT, UT_CONN_TIMEOUT,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, u, MHD_OPTION_ARRAY,
                            tls_opts, MHD_OPTION_END);
    if (!u->d) {
        char as[IMS_ADDR_STRLEN];
        snprintf(err, errsz, "[ut] listen: cannot listen on %s",
                 ims_addr_str(&u->addr, as, sizeof(as)));
        return IMS_EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(u->d, MHD_DAEMON_INFO_BIND_PORT);
    if (info && info->port)
        u->port = info->port;
    char as[IMS_ADDR_STRLEN];
    LOG_N("ut", "event=ut_listening addr=%s port=%u tls=%d policy=%s",
          ims_addr_host(&u->addr, as, sizeof(as)), u->port, tls,
          cfg->ut_policy_file ? cfg->ut_policy_file : "-");
    return 0;
}

int ims_ut_start(const struct ims_cfg *cfg, struct ims_loc *loc, struct ims_ut **out, char *err,
                 size_t errsz)
{
    struct ims_ut *u = ims_calloc(1, sizeof(*u));
    if (!u) {
        snprintf(err, errsz, "[ut] out of memory");
        return IMS_ENOMEM;
    }
    u->cfg = cfg;
    u->loc = loc;
    pthread_mutex_init(&u->post_mu, NULL);
    pthread_cond_init(&u->quiesced_cv, NULL);
    int rc = 0;
    if (!(cfg->roles & IMS_ROLE_HSS)) { /* Sh over Diameter: not yet (docs/ut.md) */
        snprintf(err, errsz, "[ut] listen needs the hss role in this process");
        rc = IMS_EINVAL;
    }
    if (rc == 0)
        rc = setup_identity(u, err, errsz);
    if (rc == 0)
        rc = open_store(u, err, errsz);
    if (rc == 0) {
        rc = ims_cdiv_init(UT_CDIV_MAX);
        u->cdiv_on = rc == 0;
        if (rc)
            snprintf(err, errsz, "[ut] cannot create the CDIV registry: %s", ims_strerror(rc));
    }
    if (rc == 0)
        rc = preload_cdiv(u, err, errsz);
    if (rc == 0 && ims_thread_start(&u->thread, "ims-ut", loop_main, u) != 0) {
        snprintf(err, errsz, "[ut] cannot start the Ut thread");
        rc = IMS_EIO;
    }
    u->thread_started = rc == 0;
    if (rc == 0)
        rc = start_http(u, err, errsz);
    if (rc) {
        ims_ut_stop(u);
        return rc;
    }
    *out = u;
    return 0;
}

uint16_t ims_ut_port(const struct ims_ut *u)
{
    return u->port;
}

/* policy follow-up: SIGHUP reloads [ut] policy_file (holder.h) */
int ims_ut_reload_policy(struct ims_ut *u, char *err, size_t errsz)
{
    if (!u || !u->pol)
        return IMS_ENOENT;
    char perr[256] = "out of memory";
    size_t n = 0;
    int rc = ims_policy_holder_load(u->pol, u->cfg->ut_policy_file, &n, perr, sizeof(perr));
    if (rc) {
        snprintf(err, errsz, "[ut] policy_file: %s", perr);
        return rc;
    }
    LOG_N("ut", "event=policy_reloaded file=%s rules=%zu", u->cfg->ut_policy_file, n);
    return 0;
}

/* Runs loop_quiesce on the loop and waits for it, so that nothing submits
 * store jobs once this returns.  Without memory for the post, the loop is
 * stopped and joined instead (the caller then finds thread_started false). */
static void quiesce(struct ims_ut *u)
{
    if (u->thread_started && ims_loop_post(u->loop, loop_quiesce, u, NULL) == 0) {
        pthread_mutex_lock(&u->post_mu);
        while (!u->quiesced)
            pthread_cond_wait(&u->quiesced_cv, &u->post_mu);
        pthread_mutex_unlock(&u->post_mu);
        return;
    }
    if (u->thread_started) {
        ims_loop_stop(u->loop);
        pthread_join(u->thread, NULL);
        u->thread_started = false;
    }
    loop_quiesce(u->loop, u); /* the loop's thread is gone: ours now */
}

void ims_ut_stop(struct ims_ut *u)
{
    if (!u)
        return;
    pthread_mutex_lock(&u->post_mu);
    u->closing = true; /* MHD's thread posts nothing more */
    pthread_mutex_unlock(&u->post_mu);
    if (u->loop) {
        /* Keystone first (its pending validations answer 503), then the
         * store jobs (their completions reach the loop), then the loop;
         * what it never ran is dropped at ims_loop_free: 503 as well. */
        quiesce(u);
        ims_store_exec_free(u->x);
        u->x = NULL;
        if (u->thread_started) {
            if (ims_loop_post(u->loop, loop_quit, u, NULL) != 0)
                ims_loop_stop(u->loop); /* no memory: stop it directly */
            pthread_join(u->thread, NULL);
        }
        ims_loop_free(u->loop);
    }
    ims_store_exec_free(u->x);
    if (u->d)
        MHD_stop_daemon(u->d); /* every request was resumed above */
    if (u->cdiv_on)
        ims_cdiv_fini();
    ims_ks_ctx_free(u->ks_ctx);
    ims_policy_holder_free(u->pol);
    ims_keyrepo_free(u->repo);
    ims_free(u->pem_cert);
    if (u->pem_key) {
        memset(u->pem_key, 0, strlen(u->pem_key));
        ims_free(u->pem_key);
    }
    pthread_cond_destroy(&u->quiesced_cv);
    pthread_mutex_destroy(&u->post_mu);
    ims_free(u);
}
