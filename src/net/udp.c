/* udp.c - SIP over UDP (RFC 3261 §18.1.1, §18.2.1): one datagram, one
 * message.  The listener sockets also send: a response leaves from the
 * listener its request came to and, behind a wildcard bind, with the
 * address the request was sent to as its source (IP_PKTINFO), so it comes
 * from where the request went (RFC 3261 §18.2.2, RFC 3581 §4). */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "acl/acl.h"
#include "base/err.h"
#include "base/log.h"
#include "metrics/metrics.h"
#include "net/net_int.h"
#include "net/stun.h"

static bool only_crlf(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\r' && p[i] != '\n' && p[i] != ' ' && p[i] != '\t' && p[i] != '\0')
            return false;
    }
    return true;
}

/* Milliseconds between the kernel's receive timestamp (SO_TIMESTAMPNS,
 * CLOCK_REALTIME) and now; -1 without one. */
static int32_t queue_ms(const struct msghdr *h, const struct timespec *now)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR((struct msghdr *)h, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS)
            continue;
        struct timespec ts;
        memcpy(&ts, CMSG_DATA(c), sizeof(ts));
        int64_t ms = (int64_t)(now->tv_sec - ts.tv_sec) * 1000 +
                     (now->tv_nsec - ts.tv_nsec) / 1000000;
        return ms < 0 ? 0 : ms > INT32_MAX ? INT32_MAX : (int32_t)ms;
    }
    return -1;
}

/* The address a datagram was sent to: the listener's, with the IP from
 * IP_PKTINFO / IPV6_PKTINFO behind a wildcard bind. */
static void dgram_local(const struct msghdr *h, const struct sip_listener *l,
                        struct ims_addr *out)
{
    *out = l->addr;
    if (!ims_addr_is_any(&l->addr))
        return;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR((struct msghdr *)h, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
            out->ss.ss_family == AF_INET) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            ((struct sockaddr_in *)&out->ss)->sin_addr = pi.ipi_addr;
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
                   out->ss.ss_family == AF_INET6) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            ((struct sockaddr_in6 *)&out->ss)->sin6_addr = pi.ipi6_addr;
        }
    }
}

/* sendto() from l; behind a wildcard bind with src's address as the
 * source (IP_PKTINFO), where the kernel would pick one by route. */
static ssize_t send_from(const struct sip_listener *l, const struct sip_tp_src *src,
                         const struct ims_addr *dst, const void *buf, size_t len)
{
    int fam = ims_addr_family(&l->addr);
    if (!src || src->family != fam || !ims_addr_is_any(&l->addr))
        return sendto(l->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL,
                      (const struct sockaddr *)&dst->ss, dst->len);
    union {
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr h = {
        .msg_name = (void *)&dst->ss,
        .msg_namelen = dst->len,
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = ctl.buf,
        .msg_controllen = fam == AF_INET ? CMSG_SPACE(sizeof(struct in_pktinfo))
                                         : CMSG_SPACE(sizeof(struct in6_pktinfo)),
    };
    struct cmsghdr *c = CMSG_FIRSTHDR(&h);
    if (fam == AF_INET) {
        struct in_pktinfo pi = { .ipi_spec_dst = src->ip.v4 };
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(c), &pi, sizeof(pi));
    } else {
        struct in6_pktinfo pi = { .ipi6_addr = src->ip.v6 };
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(c), &pi, sizeof(pi));
    }
    return sendmsg(l->fd, &h, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* RFC 5626 §8: a STUN Binding request on a SIP UDP port is a UE's
 * keep-alive; the answer leaves from the socket and address it came to,
 * so it takes the NAT binding the UE is keeping open. */
static void stun_answer(struct sip_listener *l, const uint8_t *p, size_t len,
                        const struct ims_addr *src, const struct ims_addr *local)
{
    uint8_t out[IMS_STUN_RSP_MAX];
    size_t n = ims_stun_answer(p, len, src, out);
    if (n == 0)
        return;
    struct sip_tp_src from;
    ims_sip_tp_src_of(local, true, &from);
    if (send_from(l, &from, src, out, n) == (ssize_t)n) {
        l->tp->stats.tx_bytes += n;
        l->tp->stats.stun_answered++;
        ims_metrics_inc(IMS_M_STUN_ANSWERED);
    }
}

static void read_batches(struct sip_listener *l);

void ims_udp_read_cb(struct ims_loop *loop, struct ims_io *io, unsigned events)
{
    struct sip_listener *l = io->data;
    read_batches(l);
    if (l->tp->spread_pending)
        ims_udp_spread_flush(l->tp);
}

static void read_batches(struct sip_listener *l)
{
    struct sip_tp *tp = l->tp;
    size_t bufsz = tp->max_msg + 1;
    struct mmsghdr msgs[TP_UDP_BATCH];
    struct iovec iov[TP_UDP_BATCH];
    struct sockaddr_storage from[TP_UDP_BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec)) + CMSG_SPACE(sizeof(struct in6_pktinfo))];
        struct cmsghdr align;
    } ctl[TP_UDP_BATCH];

    /* Bounded per turn so one busy socket cannot starve the others; epoll is
     * level-triggered, so what is left wakes us again. */
    for (int call = 0; call < TP_UDP_CALLS; call++) {
        memset(msgs, 0, sizeof(msgs));
        for (int i = 0; i < TP_UDP_BATCH; i++) {
            /* max_msg + 1 bytes: a datagram that fills the buffer is too big */
            iov[i].iov_base = tp->udp_bufs + (size_t)i * bufsz;
            iov[i].iov_len = bufsz;
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &from[i];
            msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
            msgs[i].msg_hdr.msg_control = ctl[i].buf;
            msgs[i].msg_hdr.msg_controllen = sizeof(ctl[i].buf);
        }
        int n = recvmmsg(l->fd, msgs, TP_UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                LOG_D("net", "event=udp_recv_error worker=%u errno=%d", tp->idx, errno);
            return;
        }
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        for (int i = 0; i < n; i++) {
            tp->udp_queue_ms = queue_ms(&msgs[i].msg_hdr, &now);
            struct ims_addr src, local;
            size_t len = msgs[i].msg_len;
            const char *p = iov[i].iov_base;
            if (ims_addr_set(&src, (struct sockaddr *)&from[i], msgs[i].msg_hdr.msg_namelen))
                continue;
            /* security groups (src/acl): a denied source is never parsed */
            if (!ims_acl_admit(IMS_ACL_SIP_UDP, ims_addr_port(&l->addr),
                               (const struct sockaddr *)&src.ss)) {
                tp->stats.acl_denied++;
                continue;
            }
            if (len > tp->max_msg || (msgs[i].msg_hdr.msg_flags & MSG_TRUNC)) {
                unsigned sup;
                tp->stats.rx_dropped++;
                if (ims_tp_log_ok(tp, &sup)) {
                    char as[IMS_ADDR_STRLEN];
                    LOG_W("net", "event=udp_oversize src=%s max=%zu suppressed=%u",
                          ims_addr_str(&src, as, sizeof(as)), tp->max_msg, sup);
                }
                continue;
            }
            tp->stats.rx_bytes += len;
            if (len == 0 || only_crlf(p, len))
                continue; /* keep-alive */
            dgram_local(&msgs[i].msg_hdr, l, &local);
            if (ims_stun_looks_like((const uint8_t *)p, len)) {
                stun_answer(l, (const uint8_t *)p, len, &src, &local); /* RFC 5626 keep-alive */
                continue;
            }
            unsigned owner = ims_udp_spread_owner(tp, p, len);
            int qrc = owner == tp->idx ? IMS_ENOENT
                                       : ims_udp_spread_queue(tp, owner, l, p, len, &src, &local,
                                                              tp->udp_queue_ms);
            if (qrc == 0)
                continue;
            if (qrc == IMS_ELIMIT) { /* its worker is that far behind already */
                unsigned sup;
                tp->stats.rx_dropped++;
                if (ims_tp_log_ok(tp, &sup)) {
                    char as[IMS_ADDR_STRLEN];
                    LOG_W("net", "event=udp_spread_full src=%s worker=%u max_bytes=%zu "
                          "suppressed=%u",
                          ims_addr_str(&src, as, sizeof(as)), owner, tp->sh->spread_max, sup);
                }
                continue;
            }
            ims_tp_deliver(tp, p, len, SIP_PROTO_UDP, &src, &local, 0, NULL);
        }
        if (n < TP_UDP_BATCH)
            return;
    }
}

/* The UDP listener of family fam on port src_port, else the first of fam. */
static const struct sip_listener *send_listener(const struct sip_tp *tp, int fam,
                                                uint16_t src_port)
{
    const struct sip_listener *first = NULL;
    for (size_t i = 0; i < tp->nls; i++) {
        const struct sip_listener *l = &tp->ls[i];
        if (l->proto != SIP_PROTO_UDP || ims_addr_family(&l->addr) != fam)
            continue;
        if (src_port && ims_addr_port(&l->addr) == src_port)
            return l;
        if (!first)
            first = l;
    }
    return first;
}

int ims_udp_send(struct sip_tp *tp, const struct ims_addr *dst, const struct sip_tp_src *src,
                 const char *buf, size_t len)
{
    const struct sip_listener *l = send_listener(tp, ims_addr_family(dst), src ? src->port : 0);
    if (!l)
        return IMS_ENOENT;
    int rc = ims_udp_local_send(tp, l, src, dst, buf, len);
    if (rc != IMS_ENOENT)
        return rc;
    ssize_t n = send_from(l, src, dst, buf, len);
    if (n < 0) {
        int e = errno;
        unsigned sup;
        if (ims_tp_log_ok(tp, &sup)) {
            char as[IMS_ADDR_STRLEN];
            LOG_W("net", "event=udp_send_failed dst=%s len=%zu errno=%d suppressed=%u",
                  ims_addr_str(dst, as, sizeof(as)), len, e, sup);
        }
        return e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS ? IMS_ELIMIT : IMS_EIO;
    }
    tp->stats.tx_msgs++;
    tp->stats.tx_bytes += (uint64_t)n;
    return 0;
}
