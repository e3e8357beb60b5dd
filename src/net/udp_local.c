/* udp_local.c - UDP datagrams to our own listeners, handed over in-process.
 *
 * When the roles of one process talk to each other (P-CSCF -> I-CSCF ->
 * S-CSCF on loopback), every hop was a sendto(), a softirq, an epoll wake-up
 * and a recvmmsg(); and since every worker's SO_REUSEPORT socket sends from
 * the same address, the kernel hashed all of one role's traffic to another
 * onto ONE worker.  Here such a datagram is copied into a queue of the
 * sending worker and delivered to the listener's rx callback later in the
 * same loop turn (ims_loop_defer): no syscall, and each request stays on the
 * worker that received it from the UE.
 *
 * What the receiver sees is what the kernel would have given it: the source
 * is the sending listener's address (on a wildcard bind: the source address
 * asked for, else the destination's IP, as the kernel picks on loopback),
 * the local address is the destination, the listener is the one bound to
 * it, security groups and the size cap apply, and UDP may still
 * drop (a bounded queue: IMS_ELIMIT, as for a full socket buffer).
 * Ownership: queued datagrams belong to the transport; ims_sip_tp_free
 * withdraws its deferred call and frees them. */
#include <netinet/in.h>
#include <string.h>

#include "acl/acl.h"
#include "base/alloc.h"
#include "base/err.h"
#include "net/net_int.h"

/* Bytes queued per worker at most, like a socket's receive buffer. */
#define LOCAL_MAX_BYTES (8u * 1024u * 1024u)

struct local_dgram {
    struct local_dgram *next;
    struct ims_addr src, dst;
    const struct sip_listener *to;
    size_t len;
    char buf[];
};

static bool is_loopback(const struct ims_addr *a)
{
    if (a->ss.ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr) >> 24) == 127;
    if (a->ss.ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
    return false;
}

/* Our UDP listener the kernel would deliver dst to, or NULL.  A wildcard
 * bind matches loopback destinations only: other local addresses are not
 * known here, and those datagrams simply take the kernel path. */
static const struct sip_listener *own_listener(const struct sip_tp *tp,
                                               const struct ims_addr *dst)
{
    int fam = ims_addr_family(dst);
    for (size_t i = 0; i < tp->nls; i++) {
        const struct sip_listener *l = &tp->ls[i];
        if (l->proto != SIP_PROTO_UDP || ims_addr_family(&l->addr) != fam ||
            ims_addr_port(&l->addr) != ims_addr_port(dst))
            continue;
        if (ims_addr_same_ip(&l->addr, dst) || (ims_addr_is_any(&l->addr) && is_loopback(dst)))
            return l;
    }
    return NULL;
}

bool ims_sip_tp_in_process(const struct sip_tp *tp, enum sip_proto proto,
                           const struct ims_addr *dst)
{
    return proto == SIP_PROTO_UDP && !tp->no_local_delivery && own_listener(tp, dst) != NULL;
}

static void run_local(struct ims_loop *loop, void *arg)
{
    struct sip_tp *tp = arg;
    /* Datagrams queued by these deliveries wait for the next round. */
    struct local_dgram *d = tp->local_head;
    tp->local_head = tp->local_tail = NULL;
    tp->local_armed = false;
    while (d) {
        struct local_dgram *next = d->next;
        tp->local_bytes -= d->len;
        if (!ims_acl_admit(IMS_ACL_SIP_UDP, ims_addr_port(&d->to->addr),
                           (const struct sockaddr *)&d->src.ss)) {
            tp->stats.acl_denied++;
        } else {
            tp->stats.rx_bytes += d->len;
            tp->udp_queue_ms = 0; /* never waited in a socket */
            tp->udp_from_self = true;
            ims_tp_deliver(tp, d->buf, d->len, SIP_PROTO_UDP, &d->src, &d->dst, 0, NULL);
            tp->udp_from_self = false;
        }
        ims_free(d);
        d = next;
    }
}

int ims_udp_local_send(struct sip_tp *tp, const struct sip_listener *from,
                       const struct sip_tp_src *src, const struct ims_addr *dst, const char *buf,
                       size_t len)
{
    if (tp->no_local_delivery)
        return IMS_ENOENT;
    const struct sip_listener *to = own_listener(tp, dst);
    if (!to)
        return IMS_ENOENT;
    if (len > tp->max_msg || tp->local_bytes + len > LOCAL_MAX_BYTES)
        return IMS_ELIMIT; /* dropped, as the kernel would */
    struct local_dgram *d = ims_alloc(sizeof(*d) + len);
    if (!d)
        return IMS_ENOMEM;
    d->next = NULL;
    d->src = from->addr;
    if (ims_addr_is_any(&from->addr)) { /* src's address, else the kernel's choice: dst's IP */
        d->src = *dst;
        if (d->src.ss.ss_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&d->src.ss;
            sin->sin_port = htons(ims_addr_port(&from->addr));
            if (src && src->family == AF_INET)
                sin->sin_addr = src->ip.v4;
        } else {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&d->src.ss;
            sin6->sin6_port = htons(ims_addr_port(&from->addr));
            if (src && src->family == AF_INET6)
                sin6->sin6_addr = src->ip.v6;
        }
    }
    d->dst = *dst; /* what the kernel reports as the local address */
    d->to = to;
    d->len = len;
    memcpy(d->buf, buf, len);
    if (tp->local_tail)
        tp->local_tail->next = d;
    else
        tp->local_head = d;
    tp->local_tail = d;
    tp->local_bytes += len;
    if (!tp->local_armed) {
        tp->local_armed = true;
        ims_loop_defer(tp->loop, &tp->local_run, run_local, tp, NULL);
    }
    tp->stats.tx_msgs++;
    tp->stats.tx_bytes += len;
    tp->stats.local_msgs++;
    return 0;
}

void ims_udp_local_free(struct sip_tp *tp)
{
    if (tp->local_armed)
        ims_loop_defer_cancel(tp->loop, &tp->local_run);
    tp->local_armed = false;
    struct local_dgram *d = tp->local_head;
    while (d) {
        struct local_dgram *next = d->next;
        ims_free(d);
        d = next;
    }
    tp->local_head = tp->local_tail = NULL;
    tp->local_bytes = 0;
}
