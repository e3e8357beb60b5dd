/* keystone.c - the Keystone v3 client: libcurl's multi-socket API on an
 * imscloud loop (after curl's docs/examples/ephiperfifo.c), the service
 * token, and the requests (see keystone.h, docs/internals/keystone.md). */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "crypto/digest.h"
#include "keystone/ks_int.h"

#define KS_MAX_BODY (4u << 20) /* a catalog can be large; anything bigger is an error */

enum ks_kind { R_AUTH, R_VALIDATE, R_ASSIGN, R_CREDS, R_USERS, R_WAIT /* ims_ks_authenticate */ };

struct ks_sock {
    struct ims_io io;
    struct ims_ks *ks;
    struct ks_sock *prev, *next;
};

struct ks_req {
    struct ks_req *prev, *next; /* ks->running or ks->wait_auth */
    struct ims_ks *ks;
    enum ks_kind kind;
    CURL *easy;
    struct curl_slist *hdrs;
    struct ims_buf body;
    char *path;                 /* after the base URL, with the query */
    char *subject;              /* validation: the token (wiped) */
    size_t subject_len;
    struct ims_buf post;        /* auth: the JSON body, with a secret (wiped) */
    char *new_token;            /* auth: X-Subject-Token of the answer */
    uint64_t token_gen;         /* which service token the request carried */
    bool retried;               /* already re-authenticated once after a 401 */
    bool too_big;
    int local_err;              /* ENOMEM/EIO on our side while it ran */
    /* completion */
    struct ks_entry *entry;     /* validation owning a cache entry */
    struct ks_waiter *own;      /* validation without an entry (cache full) */
    unsigned flags;
    union {
        ims_ks_assign_cb asg;
        ims_ks_cred_cb cred;
        ims_ks_user_cb usr;
        ims_ks_token_cb tok;
    } cb;
    void *arg;
    char hash[KS_LOGHASH + 1];
};

struct ims_ks {
    struct ims_ks_ctx *ctx;
    struct ims_loop *loop;
    CURLM *multi;
    struct ims_timer timer;
    int efd;
    struct ims_io efd_io;
    struct ks_waiter *inbox_head, *inbox_tail; /* under ctx->mu */
    struct ks_waiter *outstanding;             /* undelivered waiters; this thread */
    struct ks_sock *socks;
    struct ks_req *running, *wait_auth, *auth;
    char *token;                               /* service token (wiped) */
    int64_t tok_expires, tok_renew;            /* local wall seconds */
    uint64_t tok_gen;
    unsigned npending;
    struct ims_ks_stats st;
};

static void check_done(struct ims_ks *ks);
static int start_auth(struct ims_ks *ks);

/* ---- small helpers ---- */

int64_t ks_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_s(void)
{
    return ks_now_ms() / 1000;
}

void ks_wipe_free(char *s)
{
    if (!s)
        return;
    ims_wipe(s, strlen(s));
    ims_free(s);
}

static void buf_wipe_free(struct ims_buf *b)
{
    if (b->p)
        ims_wipe(b->p, b->alloc);
    ims_buf_free(b);
}

static char *dup_opt(const char *s, bool *ok)
{
    if (!s || !*s)
        return NULL;
    char *d = ims_strndup(s, strlen(s));
    if (!d)
        *ok = false;
    return d;
}

static void token_key(const char *tok, size_t len, unsigned flags, uint8_t *key, char *hex,
                      size_t hexsz)
{
    _Static_assert(IMS_KS_HASH_LEN == IMS_SHA256_LEN, "the key is a SHA-256");
    if (ims_sha256(tok, len, key) != 0) /* never seen; no token matches zeros */
        memset(key, 0, IMS_KS_HASH_LEN);
    key[IMS_KS_HASH_LEN] = (uint8_t)flags;
    static const char d[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < IMS_KS_HASH_LEN && 2 * i + 2 < hexsz; i++) {
        hex[2 * i] = d[key[i] >> 4];
        hex[2 * i + 1] = d[key[i] & 15];
    }
    hex[2 * i] = '\0';
}

/* JSON string literal of s into b (RFC 8259 §7). */
static int json_str(struct ims_buf *b, const char *s)
{
    int rc = ims_buf_add(b, "\"", 1);
    for (; rc == 0 && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            rc = ims_buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            rc = ims_buf_printf(b, "\\u%04x", c);
        else
            rc = ims_buf_add(b, s, 1);
    }
    return rc ? rc : ims_buf_add(b, "\"", 1);
}

void ks_log_unavailable(struct ims_ks_ctx *ctx, const char *err)
{
    pthread_mutex_lock(&ctx->mu);
    bool was = ctx->down;
    ctx->down = true;
    pthread_mutex_unlock(&ctx->mu);
    /* once per state change (issue 5 §6), the rest at debug */
    if (!was)
        LOG_W("keystone", "event=keystone_unavailable url=%s err=%s", ctx->url, err);
    else
        LOG_D("keystone", "event=keystone_unavailable url=%s err=%s", ctx->url, err);
}

void ks_log_available(struct ims_ks_ctx *ctx)
{
    pthread_mutex_lock(&ctx->mu);
    bool was = ctx->down;
    ctx->down = false;
    pthread_mutex_unlock(&ctx->mu);
    if (was)
        LOG_N("keystone", "event=keystone_available url=%s", ctx->url);
}

/* ---- context ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int ims_ks_ctx_new(const struct ims_ks_opts *o, struct ims_ks_ctx **out)
{
    bool app = o->app_cred_id && *o->app_cred_id;
    if (!o->url || !*o->url || (app && !o->app_cred_secret) ||
        (!app && (!o->user || !o->password)) || o->timeout_ms == 0)
        return IMS_EINVAL;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return IMS_EBACKEND;
    struct ims_ks_ctx *c = ims_calloc(1, sizeof(*c));
    if (!c)
        return IMS_ENOMEM;
    bool ok = true;
    c->url = dup_opt(o->url, &ok);
    if (c->url && c->url[strlen(c->url) - 1] == '/')
        c->url[strlen(c->url) - 1] = '\0';
    c->user = dup_opt(o->user, &ok);
    c->password = dup_opt(o->password, &ok);
    c->user_domain = dup_opt(o->user_domain ? o->user_domain : "Default", &ok);
    c->project = dup_opt(o->project, &ok);
    c->project_domain = dup_opt(o->project_domain ? o->project_domain : "Default", &ok);
    c->app_cred_id = dup_opt(o->app_cred_id, &ok);
    c->app_cred_secret = dup_opt(o->app_cred_secret, &ok);
    c->ca_file = dup_opt(o->ca_file, &ok);
    c->cache_ttl_s = o->cache_ttl_s;
    c->negative_ttl_s = o->negative_ttl_s;
    c->timeout_ms = o->timeout_ms;
    c->max_pending = o->max_pending ? o->max_pending : 1024;
    if (!ok || ks_cache_init(&c->cache, o->cache_size ? o->cache_size : 65536) != 0) {
        ims_ks_ctx_free(c);
        return IMS_ENOMEM;
    }
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return 0;
}

void ims_ks_ctx_free(struct ims_ks_ctx *c)
{
    if (!c)
        return;
    if (c->cache.bucket) {
        ks_cache_destroy(&c->cache);
        pthread_mutex_destroy(&c->mu);
    }
    ims_free(c->url);
    ims_free(c->user);
    ks_wipe_free(c->password);
    ims_free(c->user_domain);
    ims_free(c->project);
    ims_free(c->project_domain);
    ims_free(c->app_cred_id);
    ks_wipe_free(c->app_cred_secret);
    ims_free(c->ca_file);
    ks_wipe_free(c->svc_token);
    ims_free(c);
}

/* ---- inbox: results handed to a client's loop (from any thread) ---- */

void ks_inbox_push_locked(struct ks_waiter *w)
{
    struct ims_ks *ks = w->ks;
    w->next = NULL;
    if (ks->inbox_tail)
        ks->inbox_tail->next = w;
    else
        ks->inbox_head = w;
    ks->inbox_tail = w;
    uint64_t one = 1;
    /* eventfd writes only fail when the counter would overflow: then it is
     * already readable, which is all we need */
    ssize_t n = write(ks->efd, &one, sizeof(one));
    (void)n;
}

static void track(struct ims_ks *ks, struct ks_waiter *w)
{
    w->cl_prev = NULL;
    w->cl_next = ks->outstanding;
    if (ks->outstanding)
        ks->outstanding->cl_prev = w;
    ks->outstanding = w;
    ks->npending++;
}

static void untrack(struct ims_ks *ks, struct ks_waiter *w)
{
    if (w->cl_prev)
        w->cl_prev->cl_next = w->cl_next;
    else
        ks->outstanding = w->cl_next;
    if (w->cl_next)
        w->cl_next->cl_prev = w->cl_prev;
    ks->npending--;
}

static void deliver_inbox(struct ims_ks *ks)
{
    pthread_mutex_lock(&ks->ctx->mu);
    struct ks_waiter *w = ks->inbox_head, *next;
    ks->inbox_head = ks->inbox_tail = NULL;
    pthread_mutex_unlock(&ks->ctx->mu);
    for (; w; w = next) {
        next = w->next;
        untrack(ks, w);
        w->cb(w->arg, w->rc, w->tok);
        ims_ks_token_unref(w->tok);
        ims_free(w);
    }
}

static void efd_cb(struct ims_loop *loop, struct ims_io *io, unsigned events)
{
    struct ims_ks *ks = io->data;
    uint64_t v;
    ssize_t n = read(ks->efd, &v, sizeof(v));
    (void)n;
    deliver_inbox(ks);
}

/* ---- libcurl on the loop ---- */

static void sock_io_cb(struct ims_loop *loop, struct ims_io *io, unsigned events)
{
    struct ks_sock *so = io->data;
    struct ims_ks *ks = so->ks; /* so may be freed by the call below */
    int action = ((events & IMS_IO_READ) ? CURL_CSELECT_IN : 0) |
                 ((events & IMS_IO_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(ks->multi, io->fd, action, &running);
    check_done(ks);
}

static void sock_free(struct ims_ks *ks, struct ks_sock *so)
{
    ims_io_stop(ks->loop, &so->io);
    if (so->prev)
        so->prev->next = so->next;
    else
        ks->socks = so->next;
    if (so->next)
        so->next->prev = so->prev;
    ims_free(so);
}

/* A socket we could not watch.  Returning -1 to libcurl would mark the
 * whole multi handle dead (7.88 multi.c: multi->dead), failing every other
 * transfer; instead the transfer is left to its own timeout (timeout_ms)
 * and then reports err. */
static int sock_unwatched(CURL *e, int err)
{
    struct ks_req *r = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
    if (r)
        r->local_err = err;
    LOG_W("keystone", "event=socket_unwatched err=%s", ims_strerror(err));
    return 0;
}

/* CURLMOPT_SOCKETFUNCTION: curl tells which socket wants what. */
static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct ims_ks *ks = userp;
    struct ks_sock *so = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (so)
            sock_free(ks, so);
        return 0;
    }
    if (!so) {
        so = ims_calloc(1, sizeof(*so));
        if (!so)
            return sock_unwatched(e, IMS_ENOMEM);
        so->ks = ks;
        ims_io_init(&so->io, s, sock_io_cb, so);
        so->next = ks->socks;
        if (ks->socks)
            ks->socks->prev = so;
        ks->socks = so;
        curl_multi_assign(ks->multi, s, so);
    }
    unsigned ev = ((what & CURL_POLL_IN) ? IMS_IO_READ : 0) |
                  ((what & CURL_POLL_OUT) ? IMS_IO_WRITE : 0);
    return ims_io_start(ks->loop, &so->io, ev) == 0 ? 0 : sock_unwatched(e, IMS_EIO);
}

/* CURLMOPT_TIMERFUNCTION: one loop timer per client. */
static int timer_fn(CURLM *m, long timeout_ms, void *userp)
{
    struct ims_ks *ks = userp;
    if (timeout_ms < 0) {
        ims_timer_stop(ks->loop, &ks->timer);
        return 0;
    }
    /* never -1 (see sock_unwatched); a full timer heap is logged */
    if (ims_timer_start(ks->loop, &ks->timer, (uint64_t)timeout_ms) != 0)
        LOG_W("keystone", "event=timer_unavailable err=ELIMIT");
    return 0;
}

static void timer_cb(struct ims_loop *loop, struct ims_timer *t)
{
    struct ims_ks *ks = t->data;
    int running;
    curl_multi_socket_action(ks->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(ks);
}

int ims_ks_new(struct ims_ks_ctx *ctx, struct ims_loop *loop, struct ims_ks **out)
{
    struct ims_ks *ks = ims_calloc(1, sizeof(*ks));
    if (!ks)
        return IMS_ENOMEM;
    ks->ctx = ctx;
    ks->loop = loop;
    ims_timer_init(&ks->timer, timer_cb, ks);
    ks->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ks->efd < 0) {
        ims_free(ks);
        return IMS_EIO;
    }
    ims_io_init(&ks->efd_io, ks->efd, efd_cb, ks);
    ks->multi = curl_multi_init();
    if (!ks->multi || ims_io_start(loop, &ks->efd_io, IMS_IO_READ) != 0) {
        if (ks->multi)
            curl_multi_cleanup(ks->multi);
        close(ks->efd);
        ims_free(ks);
        return ks->multi ? IMS_EIO : IMS_ENOMEM;
    }
    curl_multi_setopt(ks->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(ks->multi, CURLMOPT_SOCKETDATA, ks);
    curl_multi_setopt(ks->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
    curl_multi_setopt(ks->multi, CURLMOPT_TIMERDATA, ks);
    *out = ks;
    return 0;
}

/* ---- requests ---- */

static void list_add(struct ks_req **head, struct ks_req *r)
{
    r->prev = NULL;
    r->next = *head;
    if (*head)
        (*head)->prev = r;
    *head = r;
}

static void list_del(struct ks_req **head, struct ks_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        *head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static struct ks_req *req_new(struct ims_ks *ks, enum ks_kind kind)
{
    struct ks_req *r = ims_calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->ks = ks;
    r->kind = kind;
    ims_buf_init(&r->body, KS_MAX_BODY);
    ims_buf_init(&r->post, 64 * 1024);
    return r;
}

static void req_reset_http(struct ks_req *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    r->easy = NULL;
    curl_slist_free_all(r->hdrs);
    r->hdrs = NULL;
    buf_wipe_free(&r->body);
    r->too_big = false;
    r->local_err = 0;
}

static void req_free(struct ks_req *r)
{
    req_reset_http(r);
    ims_free(r->path);
    if (r->subject) {
        ims_wipe(r->subject, r->subject_len);
        ims_free(r->subject);
    }
    buf_wipe_free(&r->post);
    ks_wipe_free(r->new_token);
    ims_free(r);
}

static size_t write_cb(char *p, size_t size, size_t n, void *data)
{
    struct ks_req *r = data;
    int rc = ims_buf_add(&r->body, p, size * n);
    if (rc != 0) {
        if (rc == IMS_ENOMEM)
            r->local_err = IMS_ENOMEM;
        else
            r->too_big = true;
        return 0; /* aborts the transfer */
    }
    return size * n;
}

/* Captures X-Subject-Token (the new token of POST /v3/auth/tokens). */
static size_t header_cb(char *p, size_t size, size_t n, void *data)
{
    struct ks_req *r = data;
    size_t len = size * n;
    static const char name[] = "x-subject-token:";
    if (len > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
        ims_str v = ims_str_trim(ims_str_make(p + sizeof(name) - 1, len - (sizeof(name) - 1)));
        ks_wipe_free(r->new_token);
        r->new_token = ims_strndup(v.p ? v.p : "", v.len);
        if (!r->new_token)
            r->local_err = IMS_ENOMEM;
    }
    return len;
}

static int add_header(struct ks_req *r, const char *name, const char *val, size_t len)
{
    char line[8192];
    int n = snprintf(line, sizeof(line), "%s: %.*s", name, (int)len, val);
    if (n < 0 || (size_t)n >= sizeof(line))
        return IMS_ELIMIT;
    struct curl_slist *l = curl_slist_append(r->hdrs, line);
    ims_wipe(line, sizeof(line));
    if (!l)
        return IMS_ENOMEM;
    r->hdrs = l;
    return 0;
}

/* Builds the easy handle and adds it to the multi handle. */
static int start_http(struct ims_ks *ks, struct ks_req *r)
{
    struct ims_ks_ctx *c = ks->ctx;
    char url[4096];
    int n = snprintf(url, sizeof(url), "%s%s", c->url, r->path);
    if (n < 0 || (size_t)n >= sizeof(url))
        return IMS_ELIMIT;
    req_reset_http(r);
    if (!(r->easy = curl_easy_init()))
        return IMS_ENOMEM;
    int rc = add_header(r, "Accept", "application/json", 16);
    if (rc == 0 && r->kind == R_AUTH)
        rc = add_header(r, "Content-Type", "application/json", 16);
    if (rc == 0 && r->kind != R_AUTH)
        rc = add_header(r, "X-Auth-Token", ks->token, strlen(ks->token));
    if (rc == 0 && r->kind == R_VALIDATE)
        rc = add_header(r, "X-Subject-Token", r->subject, r->subject_len);
    if (rc != 0)
        return rc;
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    if (r->kind == R_AUTH) {
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->post.p);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)r->post.len);
    }
    r->token_gen = ks->tok_gen;
    if (curl_multi_add_handle(ks->multi, e) != CURLM_OK)
        return IMS_ENOMEM;
    list_add(&ks->running, r);
    ks->st.requests++;
    if (r->kind == R_VALIDATE)
        ks->st.validate_requests++;
    if (r->kind == R_AUTH)
        ks->st.auth_requests++;
    return 0;
}

/* Adopts the ctx's service token if another client renewed it. */
static void adopt_ctx_token(struct ims_ks *ks)
{
    struct ims_ks_ctx *c = ks->ctx;
    pthread_mutex_lock(&c->mu);
    if (c->svc_token && c->svc_expires > ks->tok_expires) {
        char *t = ims_strndup(c->svc_token, strlen(c->svc_token));
        if (t) {
            ks_wipe_free(ks->token);
            ks->token = t;
            ks->tok_expires = c->svc_expires;
            ks->tok_renew = c->svc_renew;
            ks->tok_gen++;
        }
    }
    pthread_mutex_unlock(&c->mu);
}

static bool token_usable(const struct ims_ks *ks, int64_t now)
{
    /* a token that expires within the request timeout is not worth sending */
    int64_t margin = ks->ctx->timeout_ms / 1000 + 1;
    return ks->token && now + margin < ks->tok_expires;
}

/* Sends r now if a service token is at hand, else queues it behind the
 * authentication (started if needed).  0, or an error with r untouched. */
static int submit(struct ims_ks *ks, struct ks_req *r)
{
    int64_t now = now_s();
    if (!token_usable(ks, now) || now >= ks->tok_renew)
        adopt_ctx_token(ks);
    if (token_usable(ks, now)) {
        /* renew in the background; the current token still serves meanwhile */
        if (now >= ks->tok_renew && !ks->auth)
            (void)start_auth(ks);
        return start_http(ks, r);
    }
    if (!ks->auth) {
        int rc = start_auth(ks);
        if (rc != 0)
            return rc;
    }
    list_add(&ks->wait_auth, r);
    return 0;
}

static int start_auth(struct ims_ks *ks)
{
    struct ims_ks_ctx *c = ks->ctx;
    struct ks_req *r = req_new(ks, R_AUTH);
    if (!r)
        return IMS_ENOMEM;
    struct ims_buf *b = &r->post;
    /* Reserve the worst case (every byte escaped as \u00XX) first, so that
     * growing never realloc()s and leaves a copy of the secret behind. */
    size_t est = 512;
    const char *fields[] = { c->app_cred_id, c->app_cred_secret, c->user, c->user_domain,
                             c->password, c->project, c->project_domain };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        est += fields[i] ? 6 * strlen(fields[i]) : 0;
    int rc = ims_buf_printf(b, "%*s", (int)est, "");
    ims_buf_reset(b);
    if (rc == 0 && c->app_cred_id) {
        /* an application credential carries its own project scope: sending
         * one is refused (401) */
        rc = ims_buf_add_cstr(b, "{\"auth\":{\"identity\":{"
                                 "\"methods\":[\"application_credential\"],"
                                 "\"application_credential\":{\"id\":");
        rc = rc ? rc : json_str(b, c->app_cred_id);
        rc = rc ? rc : ims_buf_add_cstr(b, ",\"secret\":");
        rc = rc ? rc : json_str(b, c->app_cred_secret);
        rc = rc ? rc : ims_buf_add_cstr(b, "}}}}");
    } else if (rc == 0) {
        rc = ims_buf_add_cstr(b, "{\"auth\":{\"identity\":{\"methods\":[\"password\"],"
                                 "\"password\":{\"user\":{\"name\":");
        rc = rc ? rc : json_str(b, c->user);
        rc = rc ? rc : ims_buf_add_cstr(b, ",\"domain\":{\"name\":");
        rc = rc ? rc : json_str(b, c->user_domain);
        rc = rc ? rc : ims_buf_add_cstr(b, "},\"password\":");
        rc = rc ? rc : json_str(b, c->password);
        if (c->project) {
            rc = rc ? rc : ims_buf_add_cstr(b, "}}},\"scope\":{\"project\":{\"name\":");
            rc = rc ? rc : json_str(b, c->project);
            rc = rc ? rc : ims_buf_add_cstr(b, ",\"domain\":{\"name\":");
            rc = rc ? rc : json_str(b, c->project_domain);
            rc = rc ? rc : ims_buf_add_cstr(b, "}}}}}");
        } else {
            rc = rc ? rc : ims_buf_add_cstr(b, "}}},\"scope\":{\"system\":{\"all\":true}}}}");
        }
    }
    r->path = ims_strndup("/auth/tokens", 12);
    if (rc == 0 && !r->path)
        rc = IMS_ENOMEM;
    if (rc == 0)
        rc = start_http(ks, r);
    if (rc != 0) {
        req_free(r);
        return rc;
    }
    ks->auth = r;
    return 0;
}

/* ---- completion ---- */

/* Ends r with rc (and its result), calls or queues its callback, frees r. */
static void finish(struct ims_ks *ks, struct ks_req *r, int rc, struct ims_ks_token *tok,
                   void *list, size_t n)
{
    struct ims_ks_ctx *c = ks->ctx;
    if (rc == IMS_EBACKEND)
        ks->st.failures++;
    switch (r->kind) {
    case R_VALIDATE: {
        int64_t now = ks_now_ms();
        int64_t until = 0;
        if (rc == 0 && c->cache_ttl_s) {
            until = now + (int64_t)c->cache_ttl_s * 1000;
            if (until > tok->expires_at * 1000) /* never beyond the token's life */
                until = tok->expires_at * 1000;
        } else if (rc == IMS_ENOENT && c->negative_ttl_s) {
            until = now + (int64_t)c->negative_ttl_s * 1000;
        }
        pthread_mutex_lock(&c->mu);
        if (r->entry) {
            ks_cache_complete(&c->cache, r->entry, rc, tok, until, now);
        } else if (r->own) {
            r->own->rc = rc;
            r->own->tok = rc == 0 ? ims_ks_token_ref(tok) : NULL;
            ks_inbox_push_locked(r->own);
        }
        pthread_mutex_unlock(&c->mu);
        LOG_D("keystone", "event=validated tok=%s rc=%s", r->hash, ims_strerror(rc));
        break;
    }
    case R_ASSIGN:
        ks->npending--;
        r->cb.asg(r->arg, rc, list, n);
        break;
    case R_CREDS:
        ks->npending--;
        r->cb.cred(r->arg, rc, list, n);
        break;
    case R_USERS:
        ks->npending--;
        r->cb.usr(r->arg, rc, list, n);
        break;
    case R_WAIT:
        ks->npending--;
        r->cb.tok(r->arg, rc, NULL);
        break;
    case R_AUTH:
        break;
    }
    req_free(r);
}

static void invalidate_token(struct ims_ks *ks)
{
    struct ims_ks_ctx *c = ks->ctx;
    pthread_mutex_lock(&c->mu);
    if (c->svc_token && ks->token && strcmp(c->svc_token, ks->token) == 0) {
        ks_wipe_free(c->svc_token);
        c->svc_token = NULL;
        c->svc_expires = c->svc_renew = 0;
    }
    pthread_mutex_unlock(&c->mu);
    ks_wipe_free(ks->token);
    ks->token = NULL;
    ks->tok_expires = ks->tok_renew = 0;
    ks->tok_gen++;
}

/* The service token was refused (401): authenticate again, retry once. */
static void retry_after_401(struct ims_ks *ks, struct ks_req *r)
{
    if (r->retried) {
        LOG_W("keystone", "event=keystone_unavailable url=%s err=service_token_refused",
              ks->ctx->url);
        finish(ks, r, IMS_EBACKEND, NULL, NULL, 0);
        return;
    }
    r->retried = true;
    ks->st.reauth++;
    LOG_N("keystone", "event=service_token_refused action=reauthenticate");
    if (r->token_gen == ks->tok_gen)
        invalidate_token(ks);
    int rc = submit(ks, r);
    if (rc != 0)
        finish(ks, r, rc, NULL, NULL, 0);
}

static void auth_done(struct ims_ks *ks, struct ks_req *r, long status)
{
    struct ims_ks_ctx *c = ks->ctx;
    struct ims_ks_token *t = NULL;
    int rc = r->local_err ? r->local_err : IMS_EBACKEND;
    ks->auth = NULL;
    if (status == 201 && r->new_token && *r->new_token &&
        (rc = ks_parse_token(r->body.p, r->body.len, &t)) == 0) {
        /* Lifetime from Keystone's own two stamps, applied to our clock, so
         * clock skew between the hosts does not matter.  Renew 5 min before
         * expiry, but never within the first 80% of the lifetime. */
        int64_t life = t->expires_at - t->issued_at, now = now_s();
        if (life <= 0 || t->issued_at == 0)
            life = t->expires_at - now;
        int64_t renew = life - 300 > life * 8 / 10 ? life - 300 : life * 8 / 10;
        ks_wipe_free(ks->token);
        ks->token = r->new_token;
        r->new_token = NULL;
        ks->tok_expires = now + life;
        ks->tok_renew = now + renew;
        ks->tok_gen++;
        pthread_mutex_lock(&c->mu);
        if (ks->tok_expires > c->svc_expires) {
            char *copy = ims_strndup(ks->token, strlen(ks->token));
            if (copy) {
                ks_wipe_free(c->svc_token);
                c->svc_token = copy;
                c->svc_expires = ks->tok_expires;
                c->svc_renew = ks->tok_renew;
            }
        }
        pthread_mutex_unlock(&c->mu);
        LOG_I("keystone", "event=service_authenticated user=%s lifetime_s=%lld",
              t->user_name ? t->user_name : "?", (long long)life);
        ims_ks_token_unref(t);
    } else if (status == 401 || status == 400 || status == 403) {
        /* the account or its secret is wrong: a configuration error, but to
         * a caller it means Keystone cannot be used */
        LOG_W("keystone", "event=keystone_unavailable url=%s err=service_auth_refused status=%ld",
              c->url, status);
        rc = IMS_EBACKEND;
    }
    if (rc == IMS_ENOMEM || rc == IMS_EPROTO)
        LOG_W("keystone", "event=service_auth_failed status=%ld err=%s", status, ims_strerror(rc));
    req_free(r);

    /* release the queue: with a token (new, or an old one still valid) they
     * go out, else they fail closed */
    struct ks_req *q = ks->wait_auth;
    ks->wait_auth = NULL;
    while (q) {
        struct ks_req *next = q->next;
        q->prev = q->next = NULL;
        int qrc = token_usable(ks, now_s()) ? 0 : (rc ? rc : IMS_EBACKEND);
        if (qrc == 0 && q->kind != R_WAIT)
            qrc = start_http(ks, q);
        if (qrc != 0 || q->kind == R_WAIT) /* a marker is done once a token is there */
            finish(ks, q, qrc, NULL, NULL, 0);
        q = next;
    }
}

/* A one-word reason for the log (curl's own strings have spaces). */
static const char *curl_err_name(CURLcode c)
{
    switch (c) {
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_COULDNT_CONNECT:
        return "connect_failed";
    case CURLE_COULDNT_RESOLVE_HOST:
        return "dns_failed";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        return "tls_failed";
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        return "connection_lost";
    default:
        return "http_client_error";
    }
}

static void http_done(struct ims_ks *ks, struct ks_req *r, CURLcode cres)
{
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (r->local_err) { /* our failure, not Keystone's */
        if (r->kind == R_AUTH)
            auth_done(ks, r, 0);
        else
            finish(ks, r, r->local_err, NULL, NULL, 0);
        return;
    }
    if (cres != CURLE_OK && !r->too_big) {
        ks_log_unavailable(ks->ctx, curl_err_name(cres));
        if (r->kind == R_AUTH)
            auth_done(ks, r, 0);
        else
            finish(ks, r, IMS_EBACKEND, NULL, NULL, 0);
        return;
    }
    if (r->too_big || status >= 500) {
        char err[32];
        snprintf(err, sizeof(err), r->too_big ? "body_too_large" : "http_%ld", status);
        ks_log_unavailable(ks->ctx, err);
        if (r->kind == R_AUTH)
            auth_done(ks, r, 0);
        else
            finish(ks, r, IMS_EBACKEND, NULL, NULL, 0);
        return;
    }
    ks_log_available(ks->ctx);
    if (r->kind == R_AUTH) {
        auth_done(ks, r, status);
        return;
    }
    if (status == 401) {
        retry_after_401(ks, r);
        return;
    }
    if (status == 403) {
        LOG_W("keystone", "event=keystone_forbidden url=%s%s err=service_account_lacks_role",
              ks->ctx->url, r->kind == R_VALIDATE ? "/auth/tokens" : r->path);
        finish(ks, r, IMS_EBACKEND, NULL, NULL, 0);
        return;
    }
    int rc = IMS_EPROTO;
    if (r->kind == R_VALIDATE) {
        struct ims_ks_token *t = NULL;
        if (status == 404) {
            rc = IMS_ENOENT; /* RFC: unknown, expired or revoked subject token */
        } else if (status == 200) {
            rc = ks_parse_token(r->body.p, r->body.len, &t);
            if (rc == 0) {
                memcpy(t->hash_hex, r->hash, KS_LOGHASH);
                t->hash_hex[KS_LOGHASH] = '\0';
                t->has_catalog = t->has_catalog || (r->flags & IMS_KS_CATALOG);
            }
        }
        finish(ks, r, rc, t, NULL, 0);
        ims_ks_token_unref(t);
        return;
    }
    void *list = NULL;
    size_t n = 0;
    if (status == 200 && r->kind == R_ASSIGN)
        rc = ks_parse_assignments(r->body.p, r->body.len, (struct ims_ks_assignment **)&list, &n);
    else if (status == 200 && r->kind == R_CREDS)
        rc = ks_parse_credentials(r->body.p, r->body.len, (struct ims_ks_credential **)&list, &n);
    else if (status == 200 && r->kind == R_USERS)
        rc = ks_parse_users(r->body.p, r->body.len, (struct ims_ks_user **)&list, &n);
    enum ks_kind kind = r->kind;
    finish(ks, r, rc, NULL, list, n);
    if (kind == R_ASSIGN)
        ks_free_assignments(list, n);
    else if (kind == R_USERS)
        ks_free_users(list, n);
    else
        ks_free_credentials(list, n);
}

static void check_done(struct ims_ks *ks)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(ks->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *e = m->easy_handle;
        CURLcode res = m->data.result;
        struct ks_req *r = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
        curl_multi_remove_handle(ks->multi, e);
        list_del(&ks->running, r);
        http_done(ks, r, res);
    }
}

/* ---- public requests ---- */

int ims_ks_lookup(struct ims_ks *ks, const char *token, size_t len, unsigned flags,
                  struct ims_ks_token **out)
{
    uint8_t key[KS_KEY_LEN];
    char hex[KS_LOGHASH + 1];
    if (len == 0)
        return IMS_EINVAL;
    token_key(token, len, flags & IMS_KS_CATALOG, key, hex, sizeof(hex));
    struct ims_ks_ctx *c = ks->ctx;
    int rc = IMS_EAGAIN;
    pthread_mutex_lock(&c->mu);
    struct ks_entry *e = ks_cache_find(&c->cache, key, ks_now_ms());
    if (e && e->state == KS_E_VALID) {
        *out = ims_ks_token_ref(e->tok);
        rc = 0;
    } else if (e && e->state == KS_E_INVALID) {
        rc = IMS_ENOENT;
    }
    pthread_mutex_unlock(&c->mu);
    if (rc != IMS_EAGAIN)
        ks->st.cache_hits++;
    return rc;
}

static void entry_drop_waiter(struct ks_entry *e, struct ks_waiter *w)
{
    struct ks_waiter **pp = &e->waiters;
    while (*pp && *pp != w)
        pp = &(*pp)->next;
    if (*pp)
        *pp = w->next;
    w->entry = NULL;
}

int ims_ks_validate(struct ims_ks *ks, const char *token, size_t len, unsigned flags,
                    ims_ks_token_cb cb, void *arg)
{
    struct ims_ks_ctx *c = ks->ctx;
    if (len == 0)
        return IMS_EINVAL;
    if (ks->npending >= c->max_pending)
        return IMS_ELIMIT;
    struct ks_waiter *w = ims_calloc(1, sizeof(*w));
    if (!w)
        return IMS_ENOMEM;
    w->ks = ks;
    w->cb = cb;
    w->arg = arg;
    uint8_t key[KS_KEY_LEN];
    char hex[KS_LOGHASH + 1];
    token_key(token, len, flags & IMS_KS_CATALOG, key, hex, sizeof(hex));
    int64_t now = ks_now_ms();

    pthread_mutex_lock(&c->mu);
    struct ks_entry *e = ks_cache_find(&c->cache, key, now);
    if (e && e->state != KS_E_PENDING) {
        /* hit: still delivered on a later loop turn (the callback rule) */
        w->rc = e->state == KS_E_VALID ? 0 : IMS_ENOENT;
        w->tok = w->rc == 0 ? ims_ks_token_ref(e->tok) : NULL;
        track(ks, w);
        ks_inbox_push_locked(w);
        pthread_mutex_unlock(&c->mu);
        ks->st.cache_hits++;
        return 0;
    }
    if (e) { /* single flight: someone's request is running */
        w->next = e->waiters;
        e->waiters = w;
        w->entry = e;
        track(ks, w);
        pthread_mutex_unlock(&c->mu);
        ks->st.joined++;
        return 0;
    }
    e = ks_cache_add_pending(&c->cache, key, now);
    if (e) {
        e->waiters = w;
        w->entry = e;
    }
    pthread_mutex_unlock(&c->mu);

    int rc = IMS_ENOMEM;
    struct ks_req *r = req_new(ks, R_VALIDATE);
    if (r) {
        r->entry = e;
        r->own = e ? NULL : w;
        r->flags = flags & IMS_KS_CATALOG;
        memcpy(r->hash, hex, sizeof(r->hash));
        r->subject = ims_alloc(len);
        r->path = ims_strndup((flags & IMS_KS_CATALOG) ? "/auth/tokens" : "/auth/tokens?nocatalog",
                              (flags & IMS_KS_CATALOG) ? 12 : 22);
        if (r->subject && r->path) {
            memcpy(r->subject, token, len);
            r->subject_len = len;
            rc = submit(ks, r);
        }
    }
    if (rc != 0) {
        pthread_mutex_lock(&c->mu);
        if (e) { /* others may have joined meanwhile: they fail as unavailable */
            entry_drop_waiter(e, w);
            ks_cache_complete(&c->cache, e, IMS_EBACKEND, NULL, 0, now);
        }
        pthread_mutex_unlock(&c->mu);
        if (r)
            req_free(r);
        ims_free(w);
        return rc;
    }
    track(ks, w);
    LOG_D("keystone", "event=validate tok=%s", hex);
    return 0;
}

static int escape(const char *s, char *out, size_t outsz)
{
    char *e = curl_easy_escape(NULL, s, 0);
    if (!e)
        return IMS_ENOMEM;
    size_t n = strlen(e);
    int rc = n < outsz ? 0 : IMS_ELIMIT;
    if (rc == 0)
        memcpy(out, e, n + 1);
    curl_free(e);
    return rc;
}

static int start_list(struct ims_ks *ks, enum ks_kind kind, const char *path, void *cb, void *arg)
{
    if (ks->npending >= ks->ctx->max_pending)
        return IMS_ELIMIT;
    struct ks_req *r = req_new(ks, kind);
    if (!r)
        return IMS_ENOMEM;
    if (kind == R_ASSIGN)
        r->cb.asg = (ims_ks_assign_cb)cb;
    else if (kind == R_USERS)
        r->cb.usr = (ims_ks_user_cb)cb;
    else
        r->cb.cred = (ims_ks_cred_cb)cb;
    r->arg = arg;
    r->path = ims_strndup(path, strlen(path));
    int rc = r->path ? submit(ks, r) : IMS_ENOMEM;
    if (rc != 0) {
        req_free(r);
        return rc;
    }
    ks->npending++;
    return 0;
}

/* GET <base><sep>k1=v1[&k2=v2] as a list request: v1 required, v2 optional,
 * both URL-escaped; sep is '?' unless base has a query already. */
static int start_query(struct ims_ks *ks, enum ks_kind kind, const char *base, const char *k1,
                       const char *v1, const char *k2, const char *v2, void *cb, void *arg)
{
    char e1[512], e2[512], path[1200];
    if (!v1 || !*v1)
        return IMS_EINVAL;
    int rc = escape(v1, e1, sizeof(e1));
    if (rc == 0 && v2)
        rc = escape(v2, e2, sizeof(e2));
    if (rc != 0)
        return rc;
    snprintf(path, sizeof(path), "%s%c%s=%s%s%s%s%s", base, strchr(base, '?') ? '&' : '?', k1,
             e1, v2 ? "&" : "", v2 ? k2 : "", v2 ? "=" : "", v2 ? e2 : "");
    return start_list(ks, kind, path, cb, arg);
}

int ims_ks_role_assignments(struct ims_ks *ks, const char *user_id, const char *project_id,
                            ims_ks_assign_cb cb, void *arg)
{
    /* effective: implied roles and group memberships expanded */
    return start_query(ks, R_ASSIGN, "/role_assignments?effective&include_names=true", "user.id",
                       user_id, "scope.project.id", project_id, (void *)cb, arg);
}

int ims_ks_credentials(struct ims_ks *ks, const char *user_id, const char *type,
                       ims_ks_cred_cb cb, void *arg)
{
    return start_query(ks, R_CREDS, "/credentials", "user_id", user_id, "type", type,
                       (void *)cb, arg);
}

int ims_ks_users_by_name(struct ims_ks *ks, const char *name, const char *domain_id,
                         ims_ks_user_cb cb, void *arg)
{
    return start_query(ks, R_USERS, "/users", "name", name, "domain_id", domain_id, (void *)cb,
                       arg);
}

int ims_ks_authenticate(struct ims_ks *ks, ims_ks_token_cb cb, void *arg)
{
    int64_t now = now_s();
    if (ks->npending >= ks->ctx->max_pending)
        return IMS_ELIMIT;
    adopt_ctx_token(ks);
    if (token_usable(ks, now) && now < ks->tok_renew) {
        /* already there: answer on the next loop turn through the inbox */
        struct ks_waiter *w = ims_calloc(1, sizeof(*w));
        if (!w)
            return IMS_ENOMEM;
        w->ks = ks;
        w->cb = cb;
        w->arg = arg;
        pthread_mutex_lock(&ks->ctx->mu);
        track(ks, w);
        ks_inbox_push_locked(w);
        pthread_mutex_unlock(&ks->ctx->mu);
        return 0;
    }
    /* a marker queued behind a (new or running) authentication, no HTTP */
    struct ks_req *r = req_new(ks, R_WAIT);
    if (!r)
        return IMS_ENOMEM;
    r->cb.tok = cb;
    r->arg = arg;
    if (!ks->auth) {
        int rc = start_auth(ks);
        if (rc != 0) {
            req_free(r);
            return rc;
        }
    }
    list_add(&ks->wait_auth, r);
    ks->npending++;
    return 0;
}

/* ---- stats and teardown ---- */

void ims_ks_get_stats(const struct ims_ks *ks, struct ims_ks_stats *out)
{
    *out = ks->st;
}

int64_t ims_ks_service_token_expiry(const struct ims_ks *ks)
{
    return ks->token ? ks->tok_expires : 0;
}

void ims_ks_free(struct ims_ks *ks)
{
    if (!ks)
        return;
    struct ims_ks_ctx *c = ks->ctx;
    /* 1. abort what runs and what waits for a token */
    while (ks->running) {
        struct ks_req *r = ks->running;
        curl_multi_remove_handle(ks->multi, r->easy);
        list_del(&ks->running, r);
        if (r == ks->auth) {
            ks->auth = NULL;
            req_free(r);
        } else {
            finish(ks, r, IMS_EBACKEND, NULL, NULL, 0);
        }
    }
    while (ks->wait_auth) {
        struct ks_req *r = ks->wait_auth;
        list_del(&ks->wait_auth, r);
        finish(ks, r, IMS_EBACKEND, NULL, NULL, 0);
    }
    /* 2. our waiters on other clients' requests */
    pthread_mutex_lock(&c->mu);
    for (struct ks_waiter *w = ks->outstanding; w; w = w->cl_next) {
        if (w->entry) {
            entry_drop_waiter(w->entry, w);
            w->rc = IMS_EBACKEND;
            ks_inbox_push_locked(w);
        }
    }
    pthread_mutex_unlock(&c->mu);
    /* 3. everything is in the inbox now */
    deliver_inbox(ks);
    curl_multi_cleanup(ks->multi);
    while (ks->socks)
        sock_free(ks, ks->socks);
    ims_timer_stop(ks->loop, &ks->timer);
    ims_io_stop(ks->loop, &ks->efd_io);
    close(ks->efd);
    ks_wipe_free(ks->token);
    ims_free(ks);
}
