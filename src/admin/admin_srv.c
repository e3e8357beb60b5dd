/* admin_srv.c - the admin control socket's server (see admin.h).
 *
 * One event loop on its own thread owns the listening socket and up to
 * IMS_ADMIN_MAX_CONNS connections.  A connection reads one request line,
 * handles it, writes one reply line, then reads the next.  HSS requests
 * go to the HSS's thread-safe admin calls; their callbacks run on the HSS
 * loop and post the result back here (struct call), so every connection
 * is touched by this loop only.
 *
 * Lifetime rules:
 * 1. A connection slot is free, open, or closing.  A closing slot waits
 *    for its HSS call (busy) to come back before it is reused.
 * 2. `outstanding` counts HSS calls whose callback has not been handled
 *    here yet; ims_admin_stop() waits for it to reach 0 (bounded), so no
 *    callback can post to a freed loop. */
#define _GNU_SOURCE /* accept4, struct ucred */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "admin/admin.h"
#include "admin/admin_audit.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/thread.h"
#include "ev/loop.h"
#include "hss/hss.h"

#define IDLE_MS 60000u   /* a silent, idle connection is closed */
#define SWEEP_MS 5000u

struct conn {
    struct ims_admin *a;
    struct ims_io io;
    int fd;               /* -1: slot free */
    bool busy;            /* an HSS call is in flight */
    bool closing;         /* peer gone / server stopping: free when !busy */
    bool processing;      /* inside conn_process (no re-entry) */
    char in[IMS_ADMIN_LINE_MAX + 1];
    size_t inlen;
    struct ims_buf out;
    uint64_t last_ms;
    unsigned id;          /* for logs */
};

/* An HSS request on its way; completes on the admin loop. */
struct call {
    struct ims_admin *a;
    struct conn *c;
    enum ims_admin_cmd cmd;
    int rc;
    uint32_t result;
    char impu[IMS_STORE_ID_MAX]; /* audit: the target */
    long uid;                    /* audit: the operator */
};

struct ims_admin {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char roles[128];
    struct ims_hss *hss;
    unsigned hss_timeout_ms;
    struct ims_loop *loop;
    pthread_t thread;
    bool thread_started;
    int lfd;
    struct ims_io lio;
    struct ims_timer sweep;
    struct conn conns[IMS_ADMIN_MAX_CONNS];
    unsigned next_id;
    atomic_uint outstanding;
    atomic_bool shut;      /* set by the loop once the socket is closed */
    uint64_t start_ms;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------ connections */

static void conn_free(struct conn *c)
{
    if (c->fd >= 0) {
        ims_io_stop(c->a->loop, &c->io);
        close(c->fd);
    }
    c->fd = -1;
    ims_buf_free(&c->out);
    c->busy = c->closing = false;
    c->inlen = 0;
}

/* Closes now, or (busy) once the HSS call comes back. */
static void conn_close(struct conn *c)
{
    if (c->fd < 0)
        return;
    if (!c->busy) {
        conn_free(c);
        return;
    }
    c->closing = true;
    ims_io_stop(c->a->loop, &c->io);
}

static void conn_io(struct ims_loop *loop, struct ims_io *io, unsigned events);
static void conn_process(struct conn *c);

/* Writes what is pending; then handles a request already buffered, or
 * reads again (or waits for writability). */
static void conn_flush(struct conn *c)
{
    while (c->out.len) {
        ssize_t n = send(c->fd, c->out.p, c->out.len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (ims_io_start(c->a->loop, &c->io, IMS_IO_WRITE) != 0)
                conn_close(c);
            return;
        }
        if (n <= 0) {
            conn_close(c);
            return;
        }
        ims_buf_consume(&c->out, (size_t)n);
    }
    if (c->closing) {
        conn_close(c);
        return;
    }
    if (ims_io_start(c->a->loop, &c->io, IMS_IO_READ) != 0) {
        conn_close(c);
        return;
    }
    if (!c->processing)
        conn_process(c); /* a pipelined request may be waiting in c->in */
}

/* Queues one reply object (consumed) and flushes. */
static void reply_json(struct conn *c, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s || ims_buf_add_cstr(&c->out, s) != 0 || ims_buf_add_cstr(&c->out, "\n") != 0) {
        ims_free(s);
        LOG_W("admin", "event=reply_failed conn=%u err=ENOMEM", c->id);
        conn_close(c);
        return;
    }
    ims_free(s);
    conn_flush(c);
}

static const char *why(enum ims_admin_cmd cmd, int rc)
{
    switch (rc) {
    case IMS_ENOENT:
        return cmd == IMS_ADMIN_KEYS_RELOAD
                   ? "the key repository has no keys (see the server log)"
                   : "the identity is unknown or not assigned to an S-CSCF: nothing to send";
    case IMS_EAGAIN:
        return "the S-CSCF's Diameter identity is not known yet (learned from its MAR/SAR)";
    case IMS_ETIMEDOUT: return "the S-CSCF did not answer in time";
    case IMS_EINVAL:
        return cmd == IMS_ADMIN_KEYS_RELOAD
                   ? "the key repository was refused (permissions?) or the HSS is stopping: see "
                     "the server log"
                   : "the HSS is stopping";
    case IMS_ELIMIT: return "too many reloads in this run: restart imscloud";
    case IMS_ENOMEM: return "out of memory";
    case IMS_EPROTO: return "the S-CSCF's answer could not be decoded";
    default: return "store or Diameter failure: see the server log";
    }
}

static void reply_error(struct conn *c, int rc, const char *msg)
{
    reply_json(c, json_pack("{s:b, s:s, s:s}", "ok", 0, "error", ims_strerror(rc), "message",
                            msg));
}

/* ------------------------------------------------------- HSS calls */

static void call_done(struct ims_loop *loop, void *arg)
{
    struct call *k = arg;
    struct conn *c = k->c;
    struct ims_admin *a = k->a;
    c->busy = false;
    LOG_N("admin", "event=done conn=%u cmd=%d rc=%s result=%u", c->id, (int)k->cmd,
          ims_strerror(k->rc), k->result);
    admin_audit(k->cmd, k->impu, k->uid, k->rc, k->result); /* audit: admin change */
    if (c->closing) {
        conn_free(c);
    } else if (k->rc) {
        reply_error(c, k->rc, why(k->cmd, k->rc));
    } else if (k->cmd == IMS_ADMIN_KEYS_RELOAD) {
        reply_json(c, json_pack("{s:b, s:I}", "ok", 1, "primary", (json_int_t)k->result));
    } else {
        reply_json(c, json_pack("{s:b, s:I}", "ok", 1, "result", (json_int_t)k->result));
    }
    ims_free(k);
    atomic_fetch_sub(&a->outstanding, 1);
}

static void call_drop(void *arg)
{
    struct call *k = arg;
    atomic_fetch_sub(&k->a->outstanding, 1);
    ims_free(k);
}

/* On the HSS loop: hand the result to our loop.  Posting allocates; the
 * completion must arrive (the connection waits for it), so retry, as
 * store/exec.c does. */
static void on_hss(int rc, uint32_t result, void *arg)
{
    struct call *k = arg;
    k->rc = rc;
    k->result = result;
    unsigned tries = 0;
    while (ims_loop_post(k->a->loop, call_done, k, call_drop) != 0) {
        if (tries++ == 0)
            LOG_E("admin", "event=completion_post_failed retrying=yes");
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
}

static void start_hss_call(struct conn *c, const struct ims_admin_req *r)
{
    struct ims_admin *a = c->a;
    if (!a->hss) {
        reply_error(c, IMS_ENOENT, "this imscloud does not run the hss role");
        return;
    }
    struct call *k = ims_calloc(1, sizeof(*k));
    if (!k) {
        reply_error(c, IMS_ENOMEM, "out of memory");
        return;
    }
    k->a = a;
    k->c = c;
    k->cmd = r->cmd;
    snprintf(k->impu, sizeof(k->impu), "%s", r->impu); /* audit */
    k->uid = admin_audit_peer_uid(c->fd);               /* audit */
    atomic_fetch_add(&a->outstanding, 1);
    c->busy = true;
    ims_io_stop(a->loop, &c->io); /* one request at a time */
    int rc;
    switch (r->cmd) {
    case IMS_ADMIN_HSS_DEREGISTER:
        rc = ims_hss_admin_deregister(a->hss, r->impu, r->reason, r->info, on_hss, k);
        break;
    case IMS_ADMIN_HSS_PUSH_PROFILE:
        rc = ims_hss_admin_push_profile(a->hss, r->impu, on_hss, k);
        break;
    default:
        rc = ims_hss_keys_reload(a->hss, on_hss, k);
        break;
    }
    if (rc) { /* callback rule: on_hss will not run */
        atomic_fetch_sub(&a->outstanding, 1);
        ims_free(k);
        c->busy = false;
        reply_error(c, rc, why(r->cmd, rc));
    }
}

static void handle_line(struct conn *c, ims_str line)
{
    struct ims_admin_req r;
    char err[256];
    if (ims_admin_req_parse(line, &r, err, sizeof(err)) != 0) {
        LOG_N("admin", "event=bad_request conn=%u why=\"%s\"", c->id, err);
        reply_error(c, IMS_EPROTO, err);
        return;
    }
    LOG_N("admin", "event=request conn=%u cmd=%d impu=%s", c->id, (int)r.cmd, r.impu);
    if (r.cmd == IMS_ADMIN_STATUS) {
        struct ims_admin *a = c->a;
        reply_json(c, json_pack("{s:b, s:I, s:s, s:s, s:I, s:b}", "ok", 1, "pid",
                                (json_int_t)getpid(), "version", "0.1.0", "roles", a->roles,
                                "uptime_s", (json_int_t)((mono_ms() - a->start_ms) / 1000u),
                                "hss", a->hss != NULL));
        return;
    }
    start_hss_call(c, &r);
}

/* Handles the complete lines in c->in, one at a time: stops while a
 * request is in flight or its reply is not written yet. */
static void conn_process(struct conn *c)
{
    c->processing = true;
    while (c->fd >= 0 && !c->busy && !c->closing && c->out.len == 0) {
        char *nl = memchr(c->in, '\n', c->inlen);
        if (!nl)
            break;
        size_t len = (size_t)(nl - c->in);
        char line[IMS_ADMIN_LINE_MAX + 1];
        memcpy(line, c->in, len); /* c->in moves on before the reply is built */
        memmove(c->in, nl + 1, c->inlen - len - 1);
        c->inlen -= len + 1;
        handle_line(c, ims_str_make(line, len));
    }
    c->processing = false;
}

static void conn_read(struct conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            conn_close(c);
            return;
        }
        c->inlen += (size_t)n;
        c->last_ms = ims_loop_now(c->a->loop);
        if (!memchr(c->in, '\n', c->inlen) && c->inlen == sizeof(c->in) - 1) {
            c->closing = true; /* after the reply */
            reply_error(c, IMS_ELIMIT, "request line too long");
            return;
        }
        conn_process(c);
        if (c->fd < 0 || c->busy || c->out.len || c->closing)
            return;
    }
}

static void conn_io(struct ims_loop *loop, struct ims_io *io, unsigned events)
{
    struct conn *c = io->data;
    if (events & IMS_IO_WRITE) {
        conn_flush(c);
        return;
    }
    if (events & IMS_IO_READ)
        conn_read(c);
}

/* Same user as us, or root (SO_PEERCRED). */
static bool peer_allowed(int fd)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
        return false;
    return cr.uid == 0 || cr.uid == geteuid();
}

static void on_accept(struct ims_loop *loop, struct ims_io *io, unsigned events)
{
    struct ims_admin *a = io->data;
    for (;;) {
        int fd = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                LOG_W("admin", "event=accept_failed errno=%d", errno);
            if (errno == EINTR)
                continue;
            return;
        }
        if (!peer_allowed(fd)) {
            LOG_W("admin", "event=refused why=\"peer uid differs\"");
            close(fd);
            continue;
        }
        struct conn *c = NULL;
        for (size_t i = 0; i < IMS_ADMIN_MAX_CONNS && !c; i++)
            if (a->conns[i].fd < 0)
                c = &a->conns[i];
        if (!c) { /* a cap: the client sees the connection close */
            LOG_W("admin", "event=refused why=\"%d connections\"", IMS_ADMIN_MAX_CONNS);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->inlen = 0;
        c->busy = c->closing = false;
        c->id = ++a->next_id;
        c->last_ms = ims_loop_now(loop);
        ims_buf_init(&c->out, 2 * IMS_ADMIN_LINE_MAX);
        ims_io_init(&c->io, fd, conn_io, c);
        if (ims_io_start(loop, &c->io, IMS_IO_READ) != 0)
            conn_free(c);
    }
}

static void on_sweep(struct ims_loop *loop, struct ims_timer *t)
{
    struct ims_admin *a = t->data;
    uint64_t now = ims_loop_now(loop);
    for (size_t i = 0; i < IMS_ADMIN_MAX_CONNS; i++) {
        struct conn *c = &a->conns[i];
        if (c->fd >= 0 && !c->busy && now - c->last_ms > IDLE_MS)
            conn_close(c);
    }
    ims_timer_start(loop, &a->sweep, SWEEP_MS);
}

/* ---------------------------------------------------- start / stop */

static void *loop_main(void *arg)
{
    struct ims_admin *a = arg;
    int rc = ims_loop_run(a->loop);
    if (rc)
        LOG_E("admin", "event=loop_failed err=%s", ims_strerror(rc));
    return NULL;
}

/* 0 if nobody answers on path (absent or stale), IMS_EINVAL if a server does. */
static int check_stale(const char *path, char *err, size_t errsz)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return 0;
    if (!S_ISSOCK(sb.st_mode)) {
        snprintf(err, errsz, "admin: %s exists and is not a socket", path);
        return IMS_EINVAL;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    if (rc == 0) {
        snprintf(err, errsz, "admin: another imscloud answers on %s", path);
        return IMS_EINVAL;
    }
    unlink(path); /* stale: its server is gone */
    return 0;
}

static int listen_on(struct ims_admin *a, char *err, size_t errsz)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", a->path);
    a->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (a->lfd < 0) {
        snprintf(err, errsz, "admin: socket: %s", strerror(errno));
        return IMS_EIO;
    }
    /* The socket file is created with the umask's mode and chmod'ed right
     * after; the state directory is 0700, so nobody else can reach it in
     * between (and SO_PEERCRED refuses other users anyway). */
    if (bind(a->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || chmod(a->path, 0600) != 0 ||
        listen(a->lfd, 16) != 0) {
        snprintf(err, errsz, "admin: cannot listen on %s: %s", a->path, strerror(errno));
        close(a->lfd);
        a->lfd = -1;
        return IMS_EIO;
    }
    return 0;
}

int ims_admin_start(const struct ims_admin_cfg *cfg, struct ims_admin **out, char *err,
                    size_t errsz)
{
    /* jansson's allocations count for fault injection like ours */
    json_set_alloc_funcs(ims_alloc, ims_free);
    if (!cfg->path || strlen(cfg->path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        snprintf(err, errsz, "admin: socket path longer than %zu bytes (use a shorter "
                             "[core] state_dir): %s",
                 sizeof(((struct sockaddr_un *)0)->sun_path) - 1,
                 cfg->path ? cfg->path : "(none)");
        return IMS_EINVAL;
    }
    struct ims_admin *a = ims_calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errsz, "admin: out of memory");
        return IMS_ENOMEM;
    }
    snprintf(a->path, sizeof(a->path), "%s", cfg->path);
    snprintf(a->roles, sizeof(a->roles), "%s", cfg->roles ? cfg->roles : "");
    a->hss = cfg->hss;
    a->hss_timeout_ms = cfg->hss_timeout_ms ? cfg->hss_timeout_ms : 10000;
    a->lfd = -1;
    a->start_ms = mono_ms();
    for (size_t i = 0; i < IMS_ADMIN_MAX_CONNS; i++) {
        a->conns[i].a = a;
        a->conns[i].fd = -1;
    }
    int rc = check_stale(a->path, err, errsz);
    if (rc == 0)
        rc = listen_on(a, err, errsz);
    if (rc)
        goto fail;
    rc = ims_loop_new(64, &a->loop);
    if (rc) {
        snprintf(err, errsz, "admin: cannot create the event loop");
        goto fail;
    }
    ims_io_init(&a->lio, a->lfd, on_accept, a);
    ims_timer_init(&a->sweep, on_sweep, a);
    if (ims_io_start(a->loop, &a->lio, IMS_IO_READ) != 0 ||
        ims_timer_start(a->loop, &a->sweep, SWEEP_MS) != 0) {
        rc = IMS_EIO;
        snprintf(err, errsz, "admin: cannot watch the socket");
        goto fail;
    }
    if (ims_thread_start(&a->thread, "ims-admin", loop_main, a) != 0) {
        rc = IMS_EIO;
        snprintf(err, errsz, "admin: cannot start the thread");
        goto fail;
    }
    a->thread_started = true;
    LOG_N("admin", "event=listening path=%s", a->path);
    *out = a;
    return 0;
fail:
    if (a->loop) {
        ims_io_stop(a->loop, &a->lio);
        ims_loop_free(a->loop);
    }
    if (a->lfd >= 0) {
        close(a->lfd);
        unlink(a->path);
    }
    ims_free(a);
    return rc;
}

/* On the loop: no new connections or requests; busy ones wait for their
 * HSS call (lifetime rule 1). */
static void shutdown_on_loop(struct ims_loop *loop, void *arg)
{
    struct ims_admin *a = arg;
    ims_io_stop(loop, &a->lio);
    ims_timer_stop(loop, &a->sweep);
    close(a->lfd);
    a->lfd = -1;
    unlink(a->path);
    for (size_t i = 0; i < IMS_ADMIN_MAX_CONNS; i++)
        conn_close(&a->conns[i]);
    atomic_store(&a->shut, true);
}

size_t ims_admin_stop(struct ims_admin *a)
{
    if (!a)
        return 0;
    if (ims_loop_post(a->loop, shutdown_on_loop, a, NULL) != 0)
        LOG_E("admin", "event=stop_post_failed"); /* then only the deadline below helps */
    /* rule 2: every HSS callback must have been handled here (the HSS
     * answers or times out within its request timeout) */
    uint64_t deadline = mono_ms() + a->hss_timeout_ms + 5000u;
    while ((!atomic_load(&a->shut) || atomic_load(&a->outstanding)) && mono_ms() < deadline) {
        struct timespec ts = { 0, 10000000 };
        nanosleep(&ts, NULL);
    }
    size_t left = atomic_load(&a->outstanding);
    ims_loop_stop(a->loop);
    pthread_join(a->thread, NULL);
    if (left) {
        /* a late callback would post to this loop: keep everything */
        LOG_E("admin", "event=stop_incomplete hss_requests=%zu", left);
        return left;
    }
    for (size_t i = 0; i < IMS_ADMIN_MAX_CONNS; i++)
        if (a->conns[i].fd >= 0)
            conn_free(&a->conns[i]);
    if (a->lfd >= 0) {
        ims_io_stop(a->loop, &a->lio);
        close(a->lfd);
        unlink(a->path);
    }
    ims_loop_free(a->loop);
    LOG_N("admin", "event=stopped");
    ims_free(a);
    return 0;
}
