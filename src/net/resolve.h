/* resolve.h - locating SIP servers (RFC 3263) without blocking: SRV, then
 * A/AAAA, through c-ares driven by the worker's loop.
 *
 * Lifetime rules:
 * 1. A struct ims_resolver belongs to one loop and is used only on its
 *    thread; its c-ares sockets are ims_io and its timeouts one ims_timer on
 *    that loop.  Free it before the loop.
 * 2. struct ims_resolve_req is a small handle embedded by the caller (a
 *    transaction, say).  The request's working state is allocated by
 *    ims_resolve_sip() and freed by the resolver; the caller only has to
 *    keep the handle alive until the callback ran or it cancelled.
 * 3. Callback rule: if ims_resolve_sip() fails, the callback never runs; if
 *    it succeeds, the callback runs exactly once, on a later loop turn,
 *    never inside ims_resolve_sip() (even for a numeric address), unless
 *    ims_resolve_cancel() is called first.
 * 4. The targets passed to the callback are valid during the callback only.
 *    Inside it the handle is already idle: it may be reused for a new
 *    request, and cancelling it is a no-op. */
#ifndef IMS_NET_RESOLVE_H
#define IMS_NET_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/str.h"
#include "net/transport.h"

struct ims_loop;
struct ims_resolver;
struct ims_resolve_state;

#define IMS_RESOLVE_MAX_TARGETS 16 /* addresses returned, at most */
#define IMS_RESOLVE_MAX_SRV 8      /* SRV records followed, at most */

struct ims_resolver_cfg {
    /* "127.0.0.1:5353,[::1]:53" (c-ares servers-ports CSV); NULL or "":
     * the system's /etc/resolv.conf.  /etc/hosts is read first for A/AAAA
     * lookups either way. */
    const char *servers;
    unsigned timeout_ms; /* per try, 0 = 2000 */
    unsigned tries;      /* 0 = 2 */
    size_t max_pending;  /* requests in flight, 0 = 1024 */
};

struct ims_resolve_target {
    enum sip_proto proto;
    struct ims_addr addr; /* IP and port */
};

/* err is 0 with n >= 1 targets in the order to try them, or IMS_ENOENT
 * (no such name, no usable records), IMS_ETIMEDOUT (no answer),
 * IMS_EBACKEND (server failure, refused, bad answer), IMS_ENOMEM, with
 * n == 0. */
typedef void (*ims_resolve_cb)(void *arg, int err, const struct ims_resolve_target *t, size_t n);

/* Zero-initialise before first use ({0} or memset), or let a previous
 * request finish or be cancelled. */
struct ims_resolve_req {
    struct ims_resolve_state *st; /* private; NULL when idle */
};

/* Creates a resolver on loop.  0, IMS_EINVAL (bad servers string: *err
 * says why), IMS_ENOMEM, IMS_EBACKEND (c-ares failed to initialise). */
int ims_resolver_new(struct ims_loop *loop, const struct ims_resolver_cfg *cfg,
                     struct ims_resolver **out, char *err, size_t errsz);
/* Cancels every pending request (their callbacks never run) and frees the
 * resolver.  Not from inside one of its callbacks.  NULL is a no-op. */
void ims_resolver_free(struct ims_resolver *r);

/* Resolves a SIP URI's host part into transport targets (RFC 3263 §4):
 *   host   a name, an IPv4 address, or an IPv6 reference with or without
 *          brackets; borrowed for the call only.
 *   port   the URI's port, 0 if absent.
 *   proto_hint  the URI's transport param, SIP_PROTO_NONE if absent.
 *   sips   a sips: URI (TLS only).
 * Numeric host: one target, proto = hint, else TLS for sips, else UDP;
 * port = port, else 5061 for TLS, else 5060.  A port given: A/AAAA only
 * (§4.2).  Otherwise SRV (§4.2; no NAPTR): _sips._tcp for sips, else the
 * hint's service or _sip._udp and _sip._tcp, ordered by priority and
 * weight (RFC 2782), UDP records before TCP, each target's A/AAAA in
 * turn; no SRV records: A/AAAA of host with the default proto and port.
 * A "." target (service not offered) is skipped.
 * 0 (cb will run), IMS_EINVAL (empty or too long host, req busy, bad
 * hint), IMS_ELIMIT (max_pending, or the loop's timer cap), IMS_ENOMEM. */
int ims_resolve_sip(struct ims_resolver *r, ims_str host, uint16_t port,
                    enum sip_proto proto_hint, bool sips, ims_resolve_cb cb, void *arg,
                    struct ims_resolve_req *req);
/* The callback of req will not run.  No-op on an idle handle. */
void ims_resolve_cancel(struct ims_resolve_req *req);
static inline bool ims_resolve_busy(const struct ims_resolve_req *req)
{
    return req->st != NULL;
}

#endif
