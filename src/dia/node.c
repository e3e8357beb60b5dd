/* node.c - freeDiameter glue: configuration, start/stop, the request
 * hand-off to the owning loop, answers, outgoing requests, peer
 * allow-list and logging (see dia.h and docs/internals/diameter.md). */
#define _GNU_SOURCE
#include "dia/codec.h"
#include "dia/fd_guard.h"
#include "dia/dia.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "acl/acl.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "dia/codec.h"
#include "ev/loop.h"
#include "metrics/metrics.h"

/* A received request while it is handled: a slot of the pool. */
struct pending {
    struct ims_dia_req req; /* first: container_of by cast */
    struct msg *msg;        /* the request, owned until answered */
    uint32_t app;
    struct pending *next_free;
    bool used;
};

struct cmd_entry {
    unsigned cmd;
    uint32_t app;
    const struct dia_table *t;
};

static const struct cmd_entry cmd_table[] = {
    { DIA_CMD_UAR, DIA_APP_CX, &dia_t_uar }, { DIA_CMD_SAR, DIA_APP_CX, &dia_t_sar },
    { DIA_CMD_LIR, DIA_APP_CX, &dia_t_lir }, { DIA_CMD_MAR, DIA_APP_CX, &dia_t_mar },
    { DIA_CMD_RTR, DIA_APP_CX, &dia_t_rtr }, { DIA_CMD_PPR, DIA_APP_CX, &dia_t_ppr },
    { DIA_CMD_UDR, DIA_APP_SH, &dia_t_udr }, { DIA_CMD_PUR, DIA_APP_SH, &dia_t_pur },
};
#define NCMD (sizeof(cmd_table) / sizeof(cmd_table[0]))

static struct node {
    bool started, stopped;
    struct ims_loop *loop;
    ims_dia_req_fn fn;
    void *arg;
    char identity[256], realm[256];
    char *allow_hosts, *allow_realms;
    bool tls_required;
    unsigned timeout_ms;
    /* the pool */
    pthread_mutex_t lock;
    struct pending *slots;
    size_t nslots;
    struct pending *free_list;
    size_t in_use;
    struct disp_hdl *disp[NCMD];
    struct fd_hook_hdl *hook;
    bool draining;
    struct outreq *out; /* requests we sent, not yet completed */
    /* security groups (src/acl): configured peers' addresses, our port */
    struct sockaddr_storage peer_ip[IMS_DIA_MAX_PEERS];
    size_t npeer_ip;
    unsigned port;
} node = { .lock = PTHREAD_MUTEX_INITIALIZER };

static const struct cmd_entry *cmd_by_code(unsigned cmd)
{
    for (size_t i = 0; i < NCMD; i++)
        if (cmd_table[i].cmd == cmd)
            return &cmd_table[i];
    return NULL;
}

/* ------------------------------------------------------------ globs */

bool ims_dia_glob(ims_str pat, ims_str s)
{
    size_t pi = 0, si = 0, star = SIZE_MAX, mark = 0;
    while (si < s.len) {
        if (pi < pat.len && pat.p[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (pi < pat.len && (pat.p[pi] | 0x20) == (s.p[si] | 0x20) &&
                   ((pat.p[pi] >= 'A' && pat.p[pi] <= 'Z') || (pat.p[pi] >= 'a' && pat.p[pi] <= 'z')
                        ? true
                        : pat.p[pi] == s.p[si])) {
            pi++;
            si++;
        } else if (star != SIZE_MAX) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < pat.len && pat.p[pi] == '*')
        pi++;
    return pi == pat.len;
}

bool ims_dia_glob_list(const char *list, ims_str s)
{
    struct ims_cur c = { list, list + strlen(list) };
    while (!ims_cur_eof(&c)) {
        ims_str item;
        ims_cur_until(&c, ",", &item);
        ims_cur_char(&c, ',');
        item = ims_str_trim(item);
        if (item.len && ims_dia_glob(item, s))
            return true;
    }
    return false;
}

/* ------------------------------------------------------------ logging */

/* freeDiameter's log lines go to ours, as one event each. */
static void fd_logger(int lvl, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void fd_logger(int lvl, const char *fmt, va_list ap)
{
    enum ims_log_level l = lvl >= FD_LOG_ERROR ? IMS_LOG_ERR
                           : lvl >= FD_LOG_NOTICE ? IMS_LOG_INFO
                                                  : IMS_LOG_DEBUG;
    if ((int)l > ims_log_level)
        return;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '"')
            *p = ' ';
    ims_log_write(l, "fd", "msg=\"%s\"", line);
}

/* ------------------------------------------------------------ security groups */

static bool same_ip(const struct sockaddr *a, const struct sockaddr_storage *b);

/* The socket of a connection not yet bound to a peer, from freeDiameter's
 * connection id: "{----} TCP from [ADDR]:PORT (SERVER_FD<-CLIENT_FD)"
 * (cnxctx.c fd_cnx_serv_accept, 1.2.1 to today).  Its public API exposes
 * neither the socket nor the address of a connection before its CER. */
static int cnx_fd(const char *id)
{
    const char *p = id ? strstr(id, "<-") : NULL;
    if (!p || !strstr(id, " from ["))
        return -1;
    int fd = 0;
    for (p += 2; *p >= '0' && *p <= '9' && fd < 1000000; p++)
        fd = fd * 10 + (*p - '0');
    return *p == ')' ? fd : -1;
}

/* ::ffff:a.b.c.d (a dual-stack listener) as the IPv4 address it is, so
 * that it compares equal to a peer line's IPv4 address. */
static void unmap_v4(struct sockaddr_storage *ss)
{
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
        return;
    struct sockaddr_in v4 = { .sin_family = AF_INET, .sin_port = s6->sin6_port };
    memcpy(&v4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &v4, sizeof(v4));
}

/* Security groups (src/acl) on the first message of a new connection (the
 * CER), called from freeDiameter's accepting thread before it looks at the
 * message.  freeDiameter has no hook at accept, and its peer validator
 * runs only for identities that are not configured peers and does not see
 * loopback addresses (fd_ep_add_merge drops them): this is the earliest
 * point that sees every connection.  A denied connection's CER gets command
 * code 0, which no dictionary knows: freeDiameter aborts the connection
 * without answering ("Error parsing CER ... connection aborted").  (Clearing
 * the R bit instead reaches a path in 1.2.1 that leaks the Failed-AVP it
 * builds for the CEA's missing Result-Code.) */
static void acl_first_message(struct msg_hdr *h, const char *cnx_id)
{
    int fd = cnx_fd(cnx_id);
    struct sockaddr_storage rem, loc;
    socklen_t rl = sizeof(rem), ll = sizeof(loc);
    bool ok;
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&rem, &rl) != 0 ||
        getsockname(fd, (struct sockaddr *)&loc, &ll) != 0) {
        /* cannot tell who it is: open without rules, closed with them */
        static const struct sockaddr unknown = { .sa_family = AF_UNSPEC };
        ok = ims_acl_admit_diameter((uint16_t)node.port, &unknown, false);
    } else {
        unmap_v4(&rem);
        bool is_peer = false;
        for (size_t i = 0; i < node.npeer_ip && !is_peer; i++)
            is_peer = same_ip((struct sockaddr *)&rem, &node.peer_ip[i]);
        uint16_t port = ntohs(loc.ss_family == AF_INET6
                                  ? ((struct sockaddr_in6 *)&loc)->sin6_port
                                  : ((struct sockaddr_in *)&loc)->sin_port);
        ok = ims_acl_admit_diameter(port, (struct sockaddr *)&rem, is_peer);
    }
    if (!ok)
        h->msg_code = 0;
}

/* freeDiameter's default hooks dump whole messages (with HA1, XRES, CK and
 * IK) on errors; ours logs who and what, never the content. */
static void fd_hook(enum fd_hook_type type, struct msg *msg, struct peer_hdr *peer, void *other,
                    struct fd_hook_permsgdata *pmd, void *regdata)
{
    struct msg_hdr *h = NULL;
    const char *pid = peer ? peer->info.pi_diamid : "-";
    unsigned code = 0;
    if (msg && fd_msg_hdr(msg, &h) == 0 && h)
        code = h->msg_code;
    switch (type) {
    case HOOK_MESSAGE_RECEIVED: {
        const char *why = NULL;
        if (dia_drop_bad_session_id(msg, &why)) /* before freeDiameter's dispatcher: codec.h */
            LOG_W("dia", "event=bad_session_id peer=%s cmd=%u why=\"%s: removed\"", pid, code,
                  why);
        if (dia_drop_bad_proxy_info(msg, &why))
            LOG_W("dia", "event=bad_proxy_info peer=%s cmd=%u why=\"%s: removed\"", pid, code,
                  why);
        if (!peer && h && (h->msg_flags & CMD_FLAG_REQUEST) && code == CC_CAPABILITIES_EXCHANGE)
            acl_first_message(h, other); /* a new connection's CER */
        LOG_D("dia", "event=hook type=%d peer=%s cmd=%u", (int)type, pid, code);
        break;
    }
    case HOOK_PEER_CONNECT_SUCCESS:
        LOG_N("dia", "event=peer_open peer=%s", pid);
        break;
    case HOOK_PEER_CONNECT_FAILED:
        LOG_W("dia", "event=peer_failed peer=%s why=\"%s\"", pid, other ? (const char *)other : "");
        break;
    case HOOK_MESSAGE_PARSING_ERROR:
    case HOOK_MESSAGE_PARSING_ERROR2:
        LOG_W("dia", "event=parse_error peer=%s cmd=%u", pid, code);
        break;
    case HOOK_MESSAGE_ROUTING_ERROR:
        LOG_W("dia", "event=routing_error cmd=%u why=\"%s\"", code,
              other ? (const char *)other : "");
        break;
    case HOOK_MESSAGE_DROPPED:
        LOG_W("dia", "event=dropped peer=%s cmd=%u why=\"%s\"", pid, code,
              other ? (const char *)other : "");
        break;
    default:
        LOG_D("dia", "event=hook type=%d peer=%s cmd=%u", (int)type, pid, code);
        break;
    }
}

/* ------------------------------------------------------------ config */

/* A value we write between quotes into freeDiameter's file. */
static bool conf_safe(const char *s)
{
    for (; s && *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            return false;
    return true;
}

static int write_conf(const struct ims_dia_cfg *c, char *path, size_t pathsz, char *err,
                      size_t errsz)
{
    struct ims_buf b;
    int rc = 0;
    const char *strs[] = { c->identity, c->realm, c->listen, c->tls_cert, c->tls_key, c->tls_ca,
                           c->tls_dh };
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        if (!conf_safe(strs[i])) {
            snprintf(err, errsz, "diameter: a value contains a quote, backslash or control byte");
            return IMS_EINVAL;
        }
    ims_buf_init(&b, 65536);
    rc |= ims_buf_printf(&b,
                         "# Generated by imscloud from its [diameter] section; do not edit.\n"
                         "Identity = \"%s\";\nRealm = \"%s\";\n",
                         c->identity, c->realm);
    rc |= ims_buf_printf(&b, "Port = %u;\nSecPort = %u;\nNo_SCTP;\nPrefer_TCP;\nNoRelay;\n",
                         c->port, c->tls_port);
    if (c->listen) {
        rc |= ims_buf_printf(&b, "ListenOn = \"%s\";\n", c->listen);
        if (!strchr(c->listen, ':'))
            rc |= ims_buf_add_cstr(&b, "No_IPv6;\n");
    }
    rc |= ims_buf_printf(&b, "AppServThreads = %u;\n", c->app_threads ? c->app_threads : 4);
    if (c->tc_timer)
        rc |= ims_buf_printf(&b, "TcTimer = %u;\n", c->tc_timer);
    if (c->tw_timer)
        rc |= ims_buf_printf(&b, "TwTimer = %u;\n", c->tw_timer);
    if (c->tls_cert && c->tls_key) {
        rc |= ims_buf_printf(&b, "TLS_Cred = \"%s\", \"%s\";\n", c->tls_cert, c->tls_key);
        /* several CA files may be given, separated by ',' (freeDiameter wants
         * the certificates of one file sorted as a chain, so unrelated CAs go
         * in separate TLS_CA lines) */
        for (const char *ca = c->tls_ca; ca && *ca;) {
            const char *end = strchr(ca, ',');
            size_t len = end ? (size_t)(end - ca) : strlen(ca);
            rc |= ims_buf_printf(&b, "TLS_CA = \"%.*s\";\n", (int)len, ca);
            ca = end ? end + 1 : ca + len;
        }
        if (c->tls_dh)
            rc |= ims_buf_printf(&b, "TLS_DH_File = \"%s\";\n", c->tls_dh);
    }
    for (size_t i = 0; i < c->npeers; i++) {
        const struct ims_dia_peer *p = &c->peers[i];
        if (!conf_safe(p->id) || !conf_safe(p->addr)) {
            ims_buf_free(&b);
            snprintf(err, errsz, "diameter: peer %zu has a quote or control byte", i);
            return IMS_EINVAL;
        }
        unsigned port = p->port ? p->port : p->tls ? 5868 : 3868;
        rc |= ims_buf_printf(&b,
                             "ConnectPeer = \"%s\" { ConnectTo = \"%s\"; Port = %u; No_SCTP; "
                             "%s};\n",
                             p->id, p->addr, port, p->tls ? "" : "No_TLS; ");
    }
    if (rc || b.len == 0) {
        ims_buf_free(&b);
        snprintf(err, errsz, "diameter: configuration too large");
        return IMS_ELIMIT;
    }
    if (mkdir(c->run_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errsz, "diameter: cannot create %s: %s", c->run_dir, strerror(errno));
        ims_buf_free(&b);
        return IMS_EIO;
    }
    snprintf(path, pathsz, "%s/freediameter.conf", c->run_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, b.p, b.len) != (ssize_t)b.len) {
        snprintf(err, errsz, "diameter: cannot write %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        ims_buf_free(&b);
        return IMS_EIO;
    }
    close(fd);
    ims_buf_free(&b);
    return 0;
}

/* ------------------------------------------------------------ peers */

static bool peer_has_app(struct peer_info *info)
{
    if (info->runtime.pir_relay)
        return true;
    for (struct fd_list *li = info->runtime.pir_apps.next; li != &info->runtime.pir_apps;
         li = li->next) {
        struct fd_app *a = (struct fd_app *)li;
        if (a->appid == DIA_APP_CX || a->appid == DIA_APP_SH)
            return true;
    }
    return false;
}

static bool same_ip(const struct sockaddr *a, const struct sockaddr_storage *b)
{
    if (a->sa_family != b->ss_family)
        return false;
    if (a->sa_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

/* Remembers the configured peers' addresses for acl_first_message(). */
static void acl_note_peers(const struct ims_dia_cfg *cfg)
{
    node.port = cfg->port;
    node.npeer_ip = 0;
    for (size_t i = 0; i < cfg->npeers && i < IMS_DIA_MAX_PEERS; i++) {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
        if (!cfg->peers[i].addr || getaddrinfo(cfg->peers[i].addr, NULL, &hints, &res) != 0)
            continue;
        for (struct addrinfo *ai = res; ai && node.npeer_ip < IMS_DIA_MAX_PEERS; ai = ai->ai_next)
            memcpy(&node.peer_ip[node.npeer_ip++], ai->ai_addr, ai->ai_addrlen);
        freeaddrinfo(res);
    }
}

/* Called by freeDiameter for a CER from a peer that is not configured. */
static int validate_peer(struct peer_info *info, int *auth, int (**cb2)(struct peer_info *))
{
    ims_str host = ims_str_make(info->pi_diamid, info->pi_diamidlen);
    ims_str realm = ims_str_make(info->runtime.pir_realm, info->runtime.pir_realmlen);
    bool tls = info->runtime.pir_cert_list != NULL;
    const char *why = NULL;
    if (!ims_dia_glob_list(node.allow_hosts, host))
        why = "origin_host";
    else if (!ims_dia_glob_list(node.allow_realms, realm))
        why = "realm";
    else if (!peer_has_app(info))
        why = "application";
    else if (node.tls_required && !tls)
        why = "tls_required";
    if (why) {
        LOG_W("dia", "event=peer_refused peer=%.*s realm=%.*s why=%s", IMS_SF(host),
              IMS_SF(realm), why);
        *auth = -1;
        return 0;
    }
    if (!tls)
        info->config.pic_flags.sec |= PI_SEC_NONE;
    LOG_N("dia", "event=peer_accepted peer=%.*s realm=%.*s tls=%d", IMS_SF(host), IMS_SF(realm),
          tls);
    *auth = 1;
    return 0;
}

/* ------------------------------------------------------------ pool */

static struct pending *pool_get(void)
{
    pthread_mutex_lock(&node.lock);
    struct pending *p = node.free_list;
    if (p) {
        node.free_list = p->next_free;
        p->used = true;
        node.in_use++;
    }
    pthread_mutex_unlock(&node.lock);
    return p;
}

static void pool_put(struct pending *p)
{
    memset(&p->req, 0, sizeof(p->req));
    p->msg = NULL;
    pthread_mutex_lock(&node.lock);
    p->used = false;
    p->next_free = node.free_list;
    node.free_list = p;
    node.in_use--;
    pthread_mutex_unlock(&node.lock);
}

/* ------------------------------------------------------------ answers */

static ims_str avp_os(struct msg *m, uint32_t code)
{
    struct avp *a = NULL;
    struct avp_hdr *h;
    struct dict_object *model = dia_dict_avp(code, 0);
    if (model && fd_msg_search_avp(m, model, &a) == 0 && a && fd_msg_avp_hdr(a, &h) == 0 &&
        h->avp_value)
        return ims_str_make((const char *)h->avp_value->os.data, h->avp_value->os.len);
    return IMS_STR_NULL;
}

/* Turns *m (a request) into the answer for ans and sends it. */
static int send_answer(struct msg **m, uint32_t app, const struct dia_ans *ans,
                       const struct dia_fail *fail)
{
    uint32_t rc_code = DIA_HAS(ans, DIA_ANS_RESULT) ? ans->result_code : 0;
    bool proto_err = rc_code >= 3000 && rc_code < 4000;
    int rc = IMS_EBACKEND;
    if (node.stopped) { /* freeDiameter's queues are gone */
        fd_msg_free(*m);
        *m = NULL;
        return IMS_EINVAL;
    }
    if (fd_msg_new_answer_from_req(fd_g_config->cnf_dict, m, proto_err ? MSGFL_ANSW_ERROR : 0))
        goto out_free;
    if (dia_add_app_avps(*m, app, 1) || fd_msg_add_origin(*m, 0))
        goto out_free;
    rc = dia_encode(*m, &dia_t_ans, ans);
    if (rc == 0 && fail)
        rc = dia_add_failed_avp(*m, fail);
    if (rc == 0 && !fail && ans->failed_code) {
        struct dia_fail f = { .result = rc_code, .code = ans->failed_code,
                              .vendor = ans->failed_vendor };
        rc = dia_add_failed_avp(*m, &f);
    }
    if (rc)
        goto out_free;
    if (fd_msg_send(m, NULL, NULL) != 0) {
        rc = IMS_EBACKEND;
        goto out_free;
    }
    return 0;
out_free:
    LOG_E("dia", "event=answer_failed err=%s", ims_strerror(rc));
    if (*m) {
        fd_msg_free(*m);
        *m = NULL;
    }
    return rc;
}

int ims_dia_answer(struct ims_dia_req *req, const struct dia_ans *ans)
{
    struct pending *p = (struct pending *)req;
    struct msg *m = p->msg;
    int rc = send_answer(&m, p->app, ans, NULL);
    pool_put(p);
    return rc;
}

/* An answer built on freeDiameter's thread, for requests that never reach
 * the handler. */
static int answer_now(struct msg **m, uint32_t app, uint32_t result, ims_str user, ims_str impu,
                      const struct dia_fail *fail)
{
    struct dia_ans a;
    memset(&a, 0, sizeof(a));
    dia_ans_result(&a, result);
    /* Kamailio's MAA handler reads these before the result code. */
    if (user.len) {
        a.user_name = user;
        DIA_SET(&a, DIA_ANS_USER_NAME);
    }
    if (impu.len) {
        a.impu[0] = impu;
        a.n_impu = 1;
        DIA_SET(&a, DIA_ANS_IMPU);
    }
    return send_answer(m, app, &a, fail);
}

/* ------------------------------------------------------------ requests */

/* ims_dia_requests_inline(): asked for the next start (inline_next), taken
 * by the start that succeeds in claiming the node (requests_inline), so a
 * role whose start fails (a second one) changes nothing for the node. */
static bool inline_next, requests_inline;

void ims_dia_requests_inline(bool on)
{
    inline_next = on;
}

static void deliver(struct ims_loop *loop, void *arg)
{
    struct pending *p = arg;
    node.fn(&p->req, node.arg);
}

/* The loop was freed with the request still queued. */
static void drop_pending(void *arg)
{
    struct pending *p = arg;
    if (p->msg)
        fd_msg_free(p->msg);
    pool_put(p);
}

/* Peer-caused log lines: at most 20 a second (a misbehaving peer must not
 * flood the log); the number suppressed is reported with the next one. */
static bool peer_log_allowed(unsigned *suppressed)
{
    static pthread_mutex_t lk = PTHREAD_MUTEX_INITIALIZER;
    static time_t window;
    static unsigned n, dropped;
    time_t now = time(NULL);
    bool ok;
    pthread_mutex_lock(&lk);
    if (now != window) {
        window = now;
        n = 0;
    }
    ok = n++ < 20;
    *suppressed = ok ? dropped : 0;
    if (ok)
        dropped = 0;
    else
        dropped++;
    pthread_mutex_unlock(&lk);
    return ok;
}

static void identities_of(const struct pending *p, ims_str *user, ims_str *impu)
{
    const struct ims_dia_req *r = &p->req;
    *user = *impu = IMS_STR_NULL;
    switch (r->cmd) {
    case DIA_CMD_UAR: *user = r->u.uar.impi; *impu = r->u.uar.impu; break;
    case DIA_CMD_MAR: *user = r->u.mar.impi; *impu = r->u.mar.impu; break;
    case DIA_CMD_SAR: *user = r->u.sar.impi; *impu = r->u.sar.n_impu ? r->u.sar.impu[0] : *impu;
        break;
    case DIA_CMD_LIR: *impu = r->u.lir.impu; break;
    default: break;
    }
}

/* RFC 6733 §7.1.5: DIAMETER_MISSING_AVP, with a Session-Id in Failed-AVP. */
static int session_id_missing(struct dia_fail *f)
{
    *f = (struct dia_fail){ .result = DIA_MISSING_AVP, .code = 263, .field = "Session-Id",
                            .why = "missing" };
    return IMS_EPROTO;
}

static int on_request(struct msg **msg, struct avp *avp, struct session *sess, void *opaque,
                      enum disp_action *act)
{
    const struct cmd_entry *ce = opaque;
    struct dia_fail fail;
    *act = DISP_ACT_CONT;
    ims_metrics_inc(IMS_M_DIA_REQUESTS_RECV); /* metrics hook */
    struct pending *p = node.draining ? NULL : pool_get();
    if (!p) {
        LOG_W("dia", "event=busy cmd=%u pending=%zu", ce->cmd, node.nslots);
        answer_now(msg, ce->app, DIA_TOO_BUSY, IMS_STR_NULL, IMS_STR_NULL, NULL);
        return 0; /* *msg is NULL now: freeDiameter has nothing left to do */
    }
    p->app = ce->app;
    p->req.cmd = ce->cmd;
    p->req.session_id = avp_os(*msg, 263);
    p->req.origin_host = avp_os(*msg, 264);
    p->req.origin_realm = avp_os(*msg, 296);
    int rc = dia_decode(*msg, ce->t, &p->req.u, &fail);
    if (rc == 0 && !p->req.session_id.len) /* every Cx/Sh request starts with one; the
                                            * receive hook may have removed it (codec.h) */
        rc = session_id_missing(&fail);
    if (rc) {
        ims_str user, impu;
        identities_of(p, &user, &impu);
        unsigned suppressed;
        if (rc == IMS_EPROTO) {
            if (peer_log_allowed(&suppressed)) {
                char sid[420];
                ims_log_peer_bytes(p->req.session_id.p, p->req.session_id.len, sid,
                                   sizeof(sid));
                LOG_N("dia", "event=bad_request cmd=%u peer=%.*s sess=\"%s\" result=%u avp=%s "
                             "why=%s suppressed=%u",
                      ce->cmd, IMS_SF(p->req.origin_host), sid, fail.result, fail.field,
                      fail.why, suppressed);
            }
            answer_now(msg, ce->app, fail.result, user, impu, &fail);
        } else {
            answer_now(msg, ce->app, DIA_UNABLE_TO_COMPLY, user, impu, NULL);
        }
        pool_put(p);
        return 0;
    }
    p->msg = *msg;
    *msg = NULL;
    if (!node.loop || requests_inline) { /* the handler runs here (dia.h: ims_dia_start) */
        node.fn(&p->req, node.arg);
        return 0;
    }
    if (ims_loop_post(node.loop, deliver, p, drop_pending) != 0) {
        *msg = p->msg;
        pool_put(p);
        answer_now(msg, ce->app, DIA_TOO_BUSY, IMS_STR_NULL, IMS_STR_NULL, NULL);
    }
    return 0;
}

/* ------------------------------------------------------------ outgoing */

struct outreq {
    struct outreq *prev, *next; /* node.out list: freed at release if never answered */
    ims_dia_ans_fn cb;
    void *arg;
    struct ims_loop *loop;
    int rc;
    struct msg *ans_msg;
    struct dia_ans ans;
};

static void out_link(struct outreq *o)
{
    pthread_mutex_lock(&node.lock);
    o->prev = NULL;
    o->next = node.out;
    if (node.out)
        node.out->prev = o;
    node.out = o;
    pthread_mutex_unlock(&node.lock);
}

static void out_unlink(struct outreq *o)
{
    pthread_mutex_lock(&node.lock);
    if (o->prev)
        o->prev->next = o->next;
    else if (node.out == o)
        node.out = o->next;
    if (o->next)
        o->next->prev = o->prev;
    o->prev = o->next = NULL;
    pthread_mutex_unlock(&node.lock);
}

static void out_deliver(struct ims_loop *loop, void *arg)
{
    struct outreq *o = arg;
    o->cb(loop, o->rc, o->rc == 0 ? &o->ans : NULL, o->arg);
    if (o->ans_msg)
        fd_msg_free(o->ans_msg);
    ims_free(o);
}

static void out_drop(void *arg)
{
    struct outreq *o = arg;
    if (o->ans_msg)
        fd_msg_free(o->ans_msg);
    ims_free(o);
}

static void out_finish(struct outreq *o)
{
    if (o->loop) {
        if (ims_loop_post(o->loop, out_deliver, o, out_drop) == 0)
            return;
        o->rc = IMS_ENOMEM; /* the callback must still run exactly once */
    }
    out_deliver(o->loop, o);
}

static void on_answer(void *data, struct msg **ans)
{
    struct outreq *o = data;
    struct dia_fail fail;
    out_unlink(o);
    int rc = dia_decode(*ans, &dia_t_ans, &o->ans, &fail);
    o->rc = rc == 0 ? 0 : IMS_EPROTO;
    o->ans_msg = *ans;
    *ans = NULL;
    out_finish(o);
}

static void on_expire(void *data, DiamId_t id, size_t len, struct msg **req)
{
    struct outreq *o = data;
    out_unlink(o);
    if (*req) {
        fd_msg_free(*req);
        *req = NULL;
    }
    o->rc = IMS_ETIMEDOUT;
    out_finish(o);
}

int ims_dia_send(unsigned cmd, const void *req, ims_dia_ans_fn cb, void *arg)
{
    const struct cmd_entry *ce = cmd_by_code(cmd);
    struct msg *m = NULL;
    if (!node.started || node.stopped || !ce || !cb)
        return IMS_EINVAL;
    struct outreq *o = ims_calloc(1, sizeof(*o));
    if (!o)
        return IMS_ENOMEM;
    o->cb = cb;
    o->arg = arg;
    o->loop = node.loop;
    int rc = IMS_EBACKEND;
    if (fd_msg_new(dia_dict_cmd(cmd, true), MSGFL_ALLOC_ETEID, &m) != 0)
        goto fail;
    if (fd_msg_new_session(m, NULL, 0) || dia_add_app_avps(m, ce->app, 1) ||
        fd_msg_add_origin(m, 0))
        goto fail;
    rc = dia_encode(m, ce->t, req);
    if (rc)
        goto fail;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += node.timeout_ms / 1000;
    ts.tv_nsec += (long)(node.timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    out_link(o);
    if (fd_msg_send_timeout(&m, on_answer, o, on_expire, &ts) != 0) {
        out_unlink(o);
        rc = IMS_EBACKEND;
        goto fail;
    }
    ims_metrics_inc(IMS_M_DIA_REQUESTS_SENT); /* metrics hook */
    return 0;
fail:
    if (m)
        fd_msg_free(m);
    ims_free(o);
    return rc;
}

bool ims_dia_peer_open(const char *id)
{
    struct peer_hdr *peer = NULL;
    if (!node.started || node.stopped)
        return false;
    if (fd_peer_getbyid((DiamId_t)(uintptr_t)id, strlen(id), 1, &peer) != 0 || !peer)
        return false;
    return fd_peer_get_state(peer) == STATE_OPEN;
}

ims_str ims_dia_identity(void)
{
    return ims_str_cstr(node.identity);
}

ims_str ims_dia_realm(void)
{
    return ims_str_cstr(node.realm);
}

/* ------------------------------------------------------------ start/stop */

static int fd_level(int ours)
{
    switch (ours) {
    case IMS_LOG_DEBUG: return FD_LOG_DEBUG;
    case IMS_LOG_INFO: return FD_LOG_NOTICE;
    default: return FD_LOG_ERROR;
    }
}

static int check_cfg(const struct ims_dia_cfg *c, char *err, size_t errsz)
{
    if (!c->fd_conf && (!c->identity || !strchr(c->identity, '.') || !c->realm || !c->run_dir)) {
        snprintf(err, errsz, "diameter: identity (an FQDN), realm and a run directory are needed");
        return IMS_EINVAL;
    }
    if (c->tls_port && (!c->tls_cert || !c->tls_key)) {
        snprintf(err, errsz, "diameter: tls_port needs tls_cert and tls_key");
        return IMS_EINVAL;
    }
    if (c->max_pending == 0 || c->npeers > IMS_DIA_MAX_PEERS) {
        snprintf(err, errsz, "diameter: max_pending must be > 0 and at most %d peers",
                 IMS_DIA_MAX_PEERS);
        return IMS_EINVAL;
    }
    return 0;
}

/* freeDiameter 1.2.1 drops a loopback ListenOn address (endpoints.c filters
 * loopback unless EP_ACCEPTALL), and would then listen on every address:
 * add ours with EP_ACCEPTALL so that "127.0.0.1" means loopback only. */
/* The peers of the configuration get their state machine threads in
 * fd_core_parseconf(); each reads, first thing, whether the core has
 * started, and one that finds it started waits 0-4 s before its first
 * connection (freeDiameter's p_psm.c: random() % 4, and random() is not
 * seeded, so the same 3.85 s in every process that loses the race).
 * Letting those threads get past that line (STATE_NEW -> STATE_CLOSED)
 * before fd_core_start() makes the first CER go out at once.  Bounded:
 * a thread that never runs costs at most WAIT_PSM_MS, then the old delay. */
#define WAIT_PSM_MS 1000

static void wait_psm_threads(void)
{
    struct timespec nap = { 0, 1000000 };
    for (int ms = 0; ms < WAIT_PSM_MS; ms++) {
        bool waiting = false;
        pthread_rwlock_rdlock(&fd_g_peers_rw);
        for (struct fd_list *li = fd_g_peers.next; li != &fd_g_peers && !waiting; li = li->next)
            waiting = fd_peer_get_state((struct peer_hdr *)li) == STATE_NEW; /* chain is first */
        pthread_rwlock_unlock(&fd_g_peers_rw);
        if (!waiting)
            return;
        nanosleep(&nap, NULL);
    }
    LOG_W("dia", "event=psm_start_slow why=\"a peer's state machine did not start within %d ms: "
                 "its first connection may wait up to 4 s\"",
          WAIT_PSM_MS);
}

static int listen_on(const char *addr)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    if (getaddrinfo(addr, NULL, &hints, &ai) != 0 || !ai)
        return IMS_EINVAL;
    int rc = fd_ep_add_merge(&fd_g_config->cnf_endpoints, ai->ai_addr, ai->ai_addrlen,
                             EP_FL_CONF | EP_ACCEPTALL)
                 ? IMS_EBACKEND
                 : 0;
    freeaddrinfo(ai);
    return rc;
}

static int setup_pool(size_t n)
{
    node.slots = ims_calloc(n, sizeof(*node.slots));
    if (!node.slots)
        return IMS_ENOMEM;
    node.nslots = n;
    for (size_t i = n; i-- > 0;) {
        node.slots[i].next_free = node.free_list;
        node.free_list = &node.slots[i];
    }
    return 0;
}

static int register_apps(unsigned apps, bool scscf_side)
{
    struct dict_object *vendor = dia_dict_vendor();
    if ((apps & IMS_DIA_APP_CX) && fd_disp_app_support(dia_dict_app(DIA_APP_CX), vendor, 1, 0))
        return IMS_EBACKEND;
    if ((apps & IMS_DIA_APP_SH) && fd_disp_app_support(dia_dict_app(DIA_APP_SH), vendor, 1, 0))
        return IMS_EBACKEND;
    if (!node.fn)
        return 0;
    for (size_t i = 0; i < NCMD; i++) {
        const struct cmd_entry *ce = &cmd_table[i];
        bool hss_initiated = ce->cmd == DIA_CMD_RTR || ce->cmd == DIA_CMD_PPR;
        if (hss_initiated != scscf_side)
            continue; /* an HSS sends RTR/PPR and serves the rest; an S-CSCF the reverse */
        if ((ce->app == DIA_APP_CX && !(apps & IMS_DIA_APP_CX)) ||
            (ce->app == DIA_APP_SH && !(apps & IMS_DIA_APP_SH)))
            continue;
        struct disp_when when;
        memset(&when, 0, sizeof(when));
        when.app = dia_dict_app(ce->app);
        when.command = dia_dict_cmd(ce->cmd, true);
        if (fd_disp_register(on_request, DISP_HOW_CC, &when, (void *)(uintptr_t)ce,
                             &node.disp[i]))
            return IMS_EBACKEND;
    }
    return 0;
}

int ims_dia_start(const struct ims_dia_cfg *cfg, struct ims_loop *loop, ims_dia_req_fn fn,
                  void *arg, char *err, size_t errsz)
{
    char path[512];
    const char *conf;
    if (node.started) {
        snprintf(err, errsz, "diameter: freeDiameter can be started once per process");
        return IMS_EINVAL;
    }
    int rc = check_cfg(cfg, err, errsz);
    if (rc)
        return rc;
    node.started = true; /* from here on, even a failure uses up the singleton */
    node.loop = loop;
    requests_inline = inline_next;
    node.fn = fn;
    node.arg = arg;
    node.tls_required = cfg->tls_required;
    acl_note_peers(cfg);
    node.timeout_ms = cfg->request_timeout_ms ? cfg->request_timeout_ms : 10000;
    snprintf(node.identity, sizeof(node.identity), "%s", cfg->identity ? cfg->identity : "");
    snprintf(node.realm, sizeof(node.realm), "%s", cfg->realm ? cfg->realm : "");
    const char *hosts = cfg->allow_hosts ? cfg->allow_hosts : "*";
    const char *realms = cfg->allow_realms ? cfg->allow_realms : node.realm;
    node.allow_hosts = ims_strndup(hosts, strlen(hosts));
    node.allow_realms = ims_strndup(realms, strlen(realms));
    if (!node.allow_hosts || !node.allow_realms || setup_pool(cfg->max_pending)) {
        snprintf(err, errsz, "diameter: out of memory");
        return IMS_ENOMEM;
    }
    if (cfg->fd_conf) {
        conf = cfg->fd_conf;
    } else {
        rc = write_conf(cfg, path, sizeof(path), err, errsz);
        if (rc)
            return rc;
        conf = path;
    }
    if (fd_core_initialize() != 0) {
        snprintf(err, errsz, "diameter: freeDiameter failed to initialise");
        return IMS_EBACKEND;
    }
    fd_g_debug_lvl = fd_level(cfg->log_level);
    fd_log_handler_register(fd_logger);
    if (!dia_fd_guard_active())
        LOG_W("dia", "event=fd_guard_inactive why=\"fd_out_send is not exported: a peer that "
                     "closes at once can stop the node (dia/fd_guard.h)\"");
    rc = dia_dict_load();
    if (rc == 0 && fd_core_parseconf(conf) != 0)
        rc = IMS_EBACKEND;
    if (rc == 0 && cfg->fd_conf) {
        snprintf(node.identity, sizeof(node.identity), "%.*s", (int)fd_g_config->cnf_diamid_len,
                 fd_g_config->cnf_diamid);
        snprintf(node.realm, sizeof(node.realm), "%.*s", (int)fd_g_config->cnf_diamrlm_len,
                 fd_g_config->cnf_diamrlm);
    }
    if (rc == 0 && !cfg->fd_conf && cfg->listen)
        rc = listen_on(cfg->listen);
    if (rc == 0)
        rc = register_apps(cfg->apps, cfg->scscf_side);
    if (rc == 0 && fd_peer_validate_register(validate_peer) != 0)
        rc = IMS_EBACKEND;
    if (rc == 0 &&
        fd_hook_register(HOOK_MASK(HOOK_MESSAGE_PARSING_ERROR, HOOK_MESSAGE_PARSING_ERROR2,
                                   HOOK_MESSAGE_ROUTING_ERROR, HOOK_MESSAGE_DROPPED,
                                   HOOK_PEER_CONNECT_FAILED, HOOK_PEER_CONNECT_SUCCESS,
                                   HOOK_MESSAGE_RECEIVED, HOOK_MESSAGE_SENT,
                                   HOOK_MESSAGE_LOCAL, HOOK_MESSAGE_ROUTING_FORWARD,
                                   HOOK_MESSAGE_ROUTING_LOCAL, HOOK_MESSAGE_FAILOVER),
                         fd_hook, NULL, NULL, &node.hook) != 0)
        rc = IMS_EBACKEND;
    if (rc == 0)
        wait_psm_threads();
    if (rc == 0 && (fd_core_start() != 0 || fd_core_waitstartcomplete() != 0))
        rc = IMS_EBACKEND;
    if (rc) {
        snprintf(err, errsz, "diameter: freeDiameter refused to start (see its log lines; "
                             "configuration %s)", conf);
        fd_core_shutdown();
        fd_core_wait_shutdown_complete();
        node.stopped = true;
        return rc;
    }
    LOG_N("dia", "event=started identity=%s realm=%s port=%u tls_port=%u conf=%s", node.identity,
          node.realm, cfg->port, cfg->tls_port, conf);
    return 0;
}

void ims_dia_drain(unsigned timeout_ms)
{
    if (!node.started || node.stopped)
        return;
    node.draining = true;
    for (unsigned waited = 0; waited < timeout_ms; waited += 10) {
        pthread_mutex_lock(&node.lock);
        size_t n = node.in_use;
        pthread_mutex_unlock(&node.lock);
        if (n == 0)
            return;
        usleep(10000);
    }
    LOG_W("dia", "event=drain_timeout pending=%zu", node.in_use);
}

void ims_dia_stop(void)
{
    if (!node.started || node.stopped)
        return;
    node.draining = true;
    fd_core_shutdown();
    fd_core_wait_shutdown_complete();
    node.stopped = true;
}

size_t ims_dia_release(void)
{
    size_t leaked = 0;
    if (!node.started)
        return 0;
    ims_dia_stop();
    pthread_mutex_lock(&node.lock);
    for (size_t i = 0; node.slots && i < node.nslots; i++) {
        if (node.slots[i].used) {
            leaked++;
            if (node.slots[i].msg)
                fd_msg_free(node.slots[i].msg);
            node.slots[i].msg = NULL;
        }
    }
    /* requests we sent that freeDiameter dropped at shutdown */
    while (node.out) {
        struct outreq *o = node.out;
        node.out = o->next;
        ims_free(o);
    }
    pthread_mutex_unlock(&node.lock);
    if (leaked)
        LOG_E("dia", "event=unanswered_requests n=%zu", leaked);
    ims_free(node.slots);
    node.slots = NULL;
    node.free_list = NULL;
    node.nslots = 0;
    ims_free(node.allow_hosts);
    ims_free(node.allow_realms);
    node.allow_hosts = node.allow_realms = NULL;
    return leaked;
}
