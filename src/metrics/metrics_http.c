/* metrics_http.c - the Prometheus endpoint: GET /metrics over HTTP/1.1
 * (libmicrohttpd, one internal thread; a scrape is a few kilobytes of
 * text built from atomics, so one thread is plenty).  Every new
 * connection passes the security groups first (listener "http"), like the
 * SIP and Diameter listeners. */
#include <stdio.h>
#include <string.h>

#include <microhttpd.h>

#include "acl/acl.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "metrics/metrics.h"
#include "net/transport.h"

#define METRICS_BODY_MAX (1u << 20)
#define METRICS_CONN_LIMIT 16u  /* scrapers are few; an open endpoint is not a free pool */
#define METRICS_CONN_TIMEOUT 10u /* seconds */

struct ims_metrics_srv {
    struct MHD_Daemon *d;
    struct ims_addr addr;
    uint16_t port;
};

static enum MHD_Result accept_cb(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    struct ims_metrics_srv *s = cls;
    (void)addrlen;
    return ims_acl_admit(IMS_ACL_HTTP, s->port, addr) ? MHD_YES : MHD_NO;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *ctype,
                             const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    (void)upload;
    static const char text[] = "text/plain; charset=utf-8";
    if (*upload_size) /* a body we do not want: drop it */
        *upload_size = 0;
    if (!*con_cls) { /* first call: headers only; answer on the next */
        *con_cls = conn;
        return MHD_YES;
    }
    if (strcmp(url, "/metrics") != 0)
        return reply(conn, MHD_HTTP_NOT_FOUND, text, "not found\n", 10);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, text, "method not allowed\n", 19);
    struct ims_buf b;
    ims_buf_init(&b, METRICS_BODY_MAX);
    enum MHD_Result ret;
    if (ims_metrics_render(&b) != 0) {
        LOG_W("metrics", "event=render_failed");
        ret = reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, text, "render failed\n", 14);
    } else {
        ret = reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
    }
    ims_buf_free(&b);
    return ret;
}

int ims_metrics_srv_start(const char *listen, struct ims_metrics_srv **out, char *err,
                          size_t errsz)
{
    struct ims_metrics_srv *s = ims_calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errsz, "out of memory");
        return IMS_ENOMEM;
    }
    if (ims_addr_parse(ims_str_cstr(listen), 9090, &s->addr) != 0) {
        snprintf(err, errsz, "[metrics] listen: not a numeric address: %s", listen);
        ims_free(s);
        return IMS_EINVAL;
    }
    s->port = ims_addr_port(&s->addr);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
    if (ims_addr_family(&s->addr) == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(flags, s->port, accept_cb, s, handle, NULL, MHD_OPTION_SOCK_ADDR,
                            (const struct sockaddr *)&s->addr.ss, MHD_OPTION_CONNECTION_LIMIT,
                            METRICS_CONN_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
                            METRICS_CONN_TIMEOUT, MHD_OPTION_END);
    if (!s->d) {
        char as[IMS_ADDR_STRLEN];
        snprintf(err, errsz, "[metrics] listen: cannot listen on %s",
                 ims_addr_str(&s->addr, as, sizeof(as)));
        ims_free(s);
        return IMS_EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    if (info && info->port)
        s->port = info->port; /* port 0: the one the kernel picked */
    char as[IMS_ADDR_STRLEN];
    LOG_N("metrics", "event=metrics_listening addr=%s port=%u",
          ims_addr_host(&s->addr, as, sizeof(as)), s->port);
    *out = s;
    return 0;
}

uint16_t ims_metrics_srv_port(const struct ims_metrics_srv *s)
{
    return s->port;
}

void ims_metrics_srv_stop(struct ims_metrics_srv *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d);
    ims_free(s);
}
