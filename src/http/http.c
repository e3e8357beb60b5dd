/* http.c - libcurl multi on an imscloud loop (see http.h).  The loop glue
 * is the one keystone.c uses (curl docs/examples/ephiperfifo.c): curl says
 * which sockets it wants watched (CURLMOPT_SOCKETFUNCTION) and when to call
 * it back (CURLMOPT_TIMERFUNCTION); finished transfers are collected after
 * every curl_multi_socket_action. */
#include "http/http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "ev/loop.h"

#define HTTP_DEFAULT_TIMEOUT_MS 5000u
#define HTTP_DEFAULT_MAX_BODY (1u << 20)
#define HTTP_MAX_HEADER 1024 /* a wanted header value (a Keystone token is ~200) */

struct http_sock {
    struct ims_io io;
    struct ims_http *h;
    struct http_sock *prev, *next;
};

struct ims_http_req {
    struct ims_http_req *prev, *next; /* h->reqs */
    struct ims_http *h;
    CURL *easy;
    struct curl_slist *hdrs;
    char *post;                       /* owned copy of the body */
    struct ims_buf body;
    char *want;                       /* header name wanted, owned */
    char header[HTTP_MAX_HEADER];
    bool have_header, too_big;
    ims_http_cb cb;
    void *arg;
};

struct ims_http {
    struct ims_loop *loop;
    CURLM *multi;
    struct ims_timer timer;
    struct http_sock *socks;
    struct ims_http_req *reqs;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void check_done(struct ims_http *h);

/* ---- libcurl on the loop ---- */

static void sock_io_cb(struct ims_loop *loop, struct ims_io *io, unsigned events)
{
    struct http_sock *so = io->data;
    struct ims_http *h = so->h; /* so may be freed by the call below */
    int action = ((events & IMS_IO_READ) ? CURL_CSELECT_IN : 0) |
                 ((events & IMS_IO_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(h->multi, io->fd, action, &running);
    check_done(h);
}

static void sock_free(struct ims_http *h, struct http_sock *so)
{
    ims_io_stop(h->loop, &so->io);
    if (so->prev)
        so->prev->next = so->next;
    else
        h->socks = so->next;
    if (so->next)
        so->next->prev = so->prev;
    ims_free(so);
}

/* CURLMOPT_SOCKETFUNCTION.  Never -1: that marks the whole multi handle
 * dead; a socket we cannot watch leaves its transfer to its timeout. */
static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct ims_http *h = userp;
    struct http_sock *so = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (so)
            sock_free(h, so);
        return 0;
    }
    if (!so) {
        so = ims_calloc(1, sizeof(*so));
        if (!so) {
            LOG_W("http", "event=socket_unwatched err=ENOMEM");
            return 0;
        }
        so->h = h;
        ims_io_init(&so->io, s, sock_io_cb, so);
        so->next = h->socks;
        if (h->socks)
            h->socks->prev = so;
        h->socks = so;
        curl_multi_assign(h->multi, s, so);
    }
    unsigned ev = ((what & CURL_POLL_IN) ? IMS_IO_READ : 0) |
                  ((what & CURL_POLL_OUT) ? IMS_IO_WRITE : 0);
    if (ims_io_start(h->loop, &so->io, ev) != 0)
        LOG_W("http", "event=socket_unwatched err=EIO");
    return 0;
}

static int timer_fn(CURLM *m, long timeout_ms, void *userp)
{
    struct ims_http *h = userp;
    if (timeout_ms < 0) {
        ims_timer_stop(h->loop, &h->timer);
        return 0;
    }
    if (ims_timer_start(h->loop, &h->timer, (uint64_t)timeout_ms) != 0)
        LOG_W("http", "event=timer_unavailable err=ELIMIT");
    return 0;
}

static void timer_cb(struct ims_loop *loop, struct ims_timer *t)
{
    struct ims_http *h = t->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

int ims_http_new(struct ims_loop *loop, struct ims_http **out)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return IMS_EBACKEND;
    struct ims_http *h = ims_calloc(1, sizeof(*h));
    if (!h)
        return IMS_ENOMEM;
    h->loop = loop;
    ims_timer_init(&h->timer, timer_cb, h);
    h->multi = curl_multi_init();
    if (!h->multi) {
        ims_free(h);
        return IMS_ENOMEM;
    }
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    *out = h;
    return 0;
}

/* ---- requests ---- */

static void req_free(struct ims_http *h, struct ims_http_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        h->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    if (r->easy) {
        curl_multi_remove_handle(h->multi, r->easy);
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->hdrs);
    ims_free(r->post);
    ims_free(r->want);
    ims_buf_free(&r->body);
    ims_free(r);
}

static size_t write_cb(char *p, size_t sz, size_t n, void *ud)
{
    struct ims_http_req *r = ud;
    if (ims_buf_add(&r->body, p, sz * n) != 0) {
        r->too_big = true;
        return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
    }
    return sz * n;
}

/* Keeps the value of the one header the caller wants (case-insensitive
 * name; the last one wins, as after a redirect). */
static size_t header_cb(char *p, size_t sz, size_t n, void *ud)
{
    struct ims_http_req *r = ud;
    size_t len = sz * n, nl = strlen(r->want);
    if (len > nl + 1 && p[nl] == ':' && strncasecmp(p, r->want, nl) == 0) {
        const char *v = p + nl + 1, *end = p + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            end--;
        size_t vl = (size_t)(end - v);
        if (vl < sizeof(r->header)) {
            memcpy(r->header, v, vl);
            r->header[vl] = '\0';
            r->have_header = true;
        }
    }
    return len;
}

static const char *curl_err_name(CURLcode c)
{
    switch (c) {
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_COULDNT_CONNECT:
        return "connection refused";
    case CURLE_COULDNT_RESOLVE_HOST:
        return "host not found";
    case CURLE_GOT_NOTHING:
        return "empty reply";
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        return "connection broken";
    default:
        return curl_easy_strerror(c);
    }
}

static void req_done(struct ims_http *h, struct ims_http_req *r, CURLcode res)
{
    struct ims_http_rsp rsp = { 0 };
    int rc = 0;
    const char *err = NULL;
    if (r->too_big) {
        rc = IMS_ELIMIT;
        err = "response too large";
    } else if (res != CURLE_OK) {
        rc = res == CURLE_OPERATION_TIMEDOUT ? IMS_ETIMEDOUT : IMS_EBACKEND;
        err = curl_err_name(res);
    } else {
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &rsp.status);
        rsp.body = r->body.p ? r->body.p : "";
        rsp.len = r->body.len;
        rsp.header = r->have_header ? r->header : NULL;
    }
    ims_http_cb cb = r->cb;
    void *arg = r->arg;
    cb(arg, rc, rc ? NULL : &rsp, err);
    req_free(h, r);
}

static void check_done(struct ims_http *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct ims_http_req *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        req_done(h, r, m->data.result);
    }
}

static int req_setup(struct ims_http_req *r, const struct ims_http_opts *o)
{
    for (const char *const *l = o->headers; l && *l; l++) {
        struct curl_slist *n = curl_slist_append(r->hdrs, *l);
        if (!n)
            return IMS_ENOMEM;
        r->hdrs = n;
    }
    if (o->want_header) {
        size_t wl = strlen(o->want_header);
        if (!(r->want = ims_alloc(wl + 1)))
            return IMS_ENOMEM;
        memcpy(r->want, o->want_header, wl + 1);
    }
    if (o->body) {
        if (!(r->post = ims_alloc(o->body_len + 1)))
            return IMS_ENOMEM;
        memcpy(r->post, o->body, o->body_len);
        r->post[o->body_len] = '\0';
    }
    if (!(r->easy = curl_easy_init()))
        return IMS_ENOMEM;
    CURL *e = r->easy;
    unsigned tmo = o->timeout_ms ? o->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
    curl_easy_setopt(e, CURLOPT_URL, o->url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, o->method);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)tmo);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)tmo);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (r->want) {
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    }
    if (r->post) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->post);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)o->body_len);
    }
    return 0;
}

int ims_http_send(struct ims_http *h, const struct ims_http_opts *o, ims_http_cb cb, void *arg,
                  struct ims_http_req **out)
{
    if (!o->method || !o->url || !cb)
        return IMS_EINVAL;
    struct ims_http_req *r = ims_calloc(1, sizeof(*r));
    if (!r)
        return IMS_ENOMEM;
    r->h = h;
    r->cb = cb;
    r->arg = arg;
    ims_buf_init(&r->body, o->max_body ? o->max_body : HTTP_DEFAULT_MAX_BODY);
    r->next = h->reqs;
    if (h->reqs)
        h->reqs->prev = r;
    h->reqs = r;
    int rc = req_setup(r, o);
    if (rc == 0 && curl_multi_add_handle(h->multi, r->easy) != CURLM_OK)
        rc = IMS_EBACKEND;
    if (rc) {
        CURL *e = r->easy;
        r->easy = NULL; /* not in the multi handle */
        if (e)
            curl_easy_cleanup(e);
        req_free(h, r);
        return rc;
    }
    if (out)
        *out = r;
    return 0;
}

void ims_http_cancel(struct ims_http *h, struct ims_http_req *r)
{
    if (r)
        req_free(h, r);
}

void ims_http_free(struct ims_http *h)
{
    if (!h)
        return;
    while (h->reqs)
        req_free(h, h->reqs);
    ims_timer_stop(h->loop, &h->timer);
    curl_multi_cleanup(h->multi);
    while (h->socks) /* curl_multi_cleanup closed them (CURL_POLL_REMOVE may not run) */
        sock_free(h, h->socks);
    ims_free(h);
}
