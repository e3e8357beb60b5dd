/* holder.c - the published rule set (an atomic pointer with an SRCU-style
 * grace period), the process-wide holder, and the per-listener denial
 * counters and rate-limited log lines (acl.h). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "acl/acl.h"
#include "acl/acl_int.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"

/* Readers count themselves in one of two counters, chosen by the epoch.
 * A swap flips the epoch, so new readers use the other counter while the
 * old one drains: the writer never waits for readers that arrived after
 * the swap, however busy the listeners are.  Each counter has its own
 * cache line. */
struct reader_count {
    _Alignas(64) atomic_ulong n;
};

struct ims_acl_holder {
    _Atomic(struct ims_acl *) cur;
    atomic_uint epoch;
    struct reader_count readers[2];
    atomic_bool dia_default_deny;
    pthread_mutex_t swap_lock; /* one swapper at a time */
    struct acl_dyn *dyn;       /* the dynamic deny group (dyn.c) */
};

int ims_acl_holder_new(struct ims_acl_holder **out)
{
    struct ims_acl_holder *h = ims_calloc(1, sizeof(*h));
    if (!h)
        return IMS_ENOMEM;
    if (acl_dyn_new(&h->dyn) != 0) {
        ims_free(h);
        return IMS_ENOMEM;
    }
    atomic_init(&h->cur, NULL);
    atomic_init(&h->epoch, 0);
    atomic_init(&h->readers[0].n, 0);
    atomic_init(&h->readers[1].n, 0);
    atomic_init(&h->dia_default_deny, true);
    pthread_mutex_init(&h->swap_lock, NULL);
    *out = h;
    return 0;
}

void ims_acl_holder_free(struct ims_acl_holder *h)
{
    if (!h)
        return;
    ims_acl_free(atomic_load(&h->cur));
    acl_dyn_free(h->dyn);
    pthread_mutex_destroy(&h->swap_lock);
    ims_free(h);
}

/* Read section.  Every atomic here is seq_cst: a reader whose increment
 * comes after the writer saw the counter at zero also loads the pointer
 * after the writer stored the new one, so it cannot hold the old set. */
static unsigned read_enter(struct ims_acl_holder *h)
{
    unsigned e = atomic_load(&h->epoch) & 1u;
    atomic_fetch_add(&h->readers[e].n, 1);
    return e;
}

static void read_leave(struct ims_acl_holder *h, unsigned e)
{
    atomic_fetch_sub(&h->readers[e].n, 1);
}

static void wait_drained(struct ims_acl_holder *h, unsigned e)
{
    /* readers hold a section for a rule scan: microseconds */
    for (unsigned spins = 0; atomic_load(&h->readers[e].n) != 0; spins++) {
        if (spins < 100) {
            sched_yield();
        } else {
            struct timespec ts = { 0, 100000 };
            nanosleep(&ts, NULL);
        }
    }
}

void ims_acl_holder_swap(struct ims_acl_holder *h, struct ims_acl *acl)
{
    pthread_mutex_lock(&h->swap_lock);
    struct ims_acl *old = atomic_exchange(&h->cur, acl);
    unsigned e = atomic_load(&h->epoch) & 1u;
    /* Readers that may hold old sit in either counter: first the other one
     * (only late readers that read the epoch before an earlier flip), then
     * flip so that new readers leave the current one alone, and drain it. */
    wait_drained(h, e ^ 1u);
    atomic_store(&h->epoch, e ^ 1u);
    wait_drained(h, e);
    pthread_mutex_unlock(&h->swap_lock);
    ims_acl_free(old);
}

int ims_acl_holder_load(struct ims_acl_holder *h, const char *path, char *err, size_t errsz)
{
    struct ims_acl *acl = NULL;
    int rc = ims_acl_load(path, &acl, err, errsz);
    if (rc)
        return rc;
    size_t n = ims_acl_rules(acl), active = ims_acl_active_rules(acl);
    ims_acl_holder_swap(h, acl);
    LOG_N("acl", "event=acl_loaded file=%s rules=%zu ingress_active=%zu ignored=%zu", path, n,
          active, n - active);
    return 0;
}

void ims_acl_holder_set_dia_default_deny(struct ims_acl_holder *h, bool on)
{
    atomic_store(&h->dia_default_deny, on);
}

bool ims_acl_holder_allows(struct ims_acl_holder *h, int proto, uint16_t port,
                           const struct sockaddr *src, bool explicit_port)
{
    unsigned e = read_enter(h);
    const struct ims_acl *acl = atomic_load(&h->cur);
    bool ok = !acl || ims_acl_match(acl, proto, port, src, explicit_port);
    read_leave(h, e);
    return ok;
}

bool ims_acl_holder_active(struct ims_acl_holder *h)
{
    return atomic_load(&h->cur) != NULL;
}

/* ------------------------------------------------------------ dynamic group */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int ims_acl_holder_deny(struct ims_acl_holder *h, const struct sockaddr *src, uint32_t ttl_ms)
{
    return acl_dyn_add(h->dyn, src, ttl_ms, now_ms());
}

bool ims_acl_holder_dyn_denied(struct ims_acl_holder *h, const struct sockaddr *src)
{
    return acl_dyn_has(h->dyn, src, now_ms());
}

size_t ims_acl_holder_dyn_count(struct ims_acl_holder *h)
{
    return acl_dyn_count(h->dyn, now_ms());
}

void ims_acl_holder_dyn_clear(struct ims_acl_holder *h)
{
    acl_dyn_clear(h->dyn);
}

/* ------------------------------------------------------------ process */

static _Atomic(struct ims_acl_holder *) installed;

struct listener_state {
    atomic_ullong denied;
    atomic_ullong logged_sec;  /* second of the last acl_deny line */
    atomic_ullong logged_at;   /* `denied` when that line was written */
};

static struct listener_state lstate[IMS_ACL_NLISTENERS];
static const char *const lname[IMS_ACL_NLISTENERS] = { "sip-udp", "sip-tcp", "sip-tls",
                                                       "diameter", "http" };
static atomic_ullong dyn_denied;

void ims_acl_install(struct ims_acl_holder *h)
{
    atomic_store(&installed, h);
}

uint64_t ims_acl_denied(enum ims_acl_listener l)
{
    return l < IMS_ACL_NLISTENERS ? atomic_load(&lstate[l].denied) : 0;
}

int ims_acl_deny_dynamic(const struct sockaddr *src, uint32_t ttl_ms)
{
    struct ims_acl_holder *h = atomic_load_explicit(&installed, memory_order_acquire);
    return h ? ims_acl_holder_deny(h, src, ttl_ms) : IMS_ENOENT;
}

size_t ims_acl_dyn_count(void)
{
    struct ims_acl_holder *h = atomic_load_explicit(&installed, memory_order_acquire);
    return h ? ims_acl_holder_dyn_count(h) : 0;
}

uint64_t ims_acl_dyn_denied(void)
{
    return atomic_load(&dyn_denied);
}

static const char *src_str(const struct sockaddr *sa, char *buf, size_t bufsz)
{
    const void *a = NULL;
    if (sa->sa_family == AF_INET)
        a = &((const struct sockaddr_in *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (!a || !inet_ntop(sa->sa_family, a, buf, (socklen_t)bufsz))
        snprintf(buf, bufsz, "?");
    return buf;
}

/* Counts a denial; logs at most one line a second per listener (the
 * winner of the compare-and-swap on the second writes it). */
static void note_deny(enum ims_acl_listener l, uint16_t port, const struct sockaddr *src,
                      const char *group)
{
    struct listener_state *s = &lstate[l];
    unsigned long long n = atomic_fetch_add(&s->denied, 1) + 1;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    unsigned long long now = (unsigned long long)ts.tv_sec + 1; /* 0 = never logged */
    unsigned long long last = atomic_load(&s->logged_sec);
    if (last == now || !atomic_compare_exchange_strong(&s->logged_sec, &last, now))
        return;
    unsigned long long before = atomic_exchange(&s->logged_at, n);
    char as[INET6_ADDRSTRLEN];
    LOG_W("acl", "event=acl_deny src=%s listener=%s port=%u group=%s denied=%llu suppressed=%llu",
          src_str(src, as, sizeof(as)), lname[l], port, group, n, n - before - 1);
}

bool ims_acl_admit(enum ims_acl_listener l, uint16_t port, const struct sockaddr *src)
{
    struct ims_acl_holder *h = atomic_load_explicit(&installed, memory_order_acquire);
    if (!h || l >= IMS_ACL_NLISTENERS)
        return true;
    /* the dynamic group first: a detected scanner is out whatever the rules say */
    if (ims_acl_holder_dyn_denied(h, src)) {
        atomic_fetch_add(&dyn_denied, 1);
        note_deny(l, port, src, "dynamic");
        return false;
    }
    int proto = l == IMS_ACL_SIP_UDP ? IMS_ACL_UDP : IMS_ACL_TCP;
    if (ims_acl_holder_allows(h, proto, port, src, false))
        return true;
    note_deny(l, port, src, "static");
    return false;
}

/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family != AF_INET6)
        return false;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

bool ims_acl_admit_diameter(uint16_t port, const struct sockaddr *src, bool is_peer)
{
    struct ims_acl_holder *h = atomic_load_explicit(&installed, memory_order_acquire);
    if (!h || !ims_acl_holder_active(h)) {
        /* No rules: Diameter is still default deny for non-peers (issue:
         * the HSS hands out vectors), except from this host, so that the
         * embedded default and a one-host split work without a rules file. */
        if (!h || !atomic_load(&h->dia_default_deny) || is_peer || is_loopback(src))
            return true;
        note_deny(IMS_ACL_DIAMETER, port, src, "default");
        return false;
    }
    bool deny_default = atomic_load(&h->dia_default_deny);
    if (deny_default && is_peer)
        return true;
    if (ims_acl_holder_allows(h, IMS_ACL_TCP, port, src, deny_default))
        return true;
    note_deny(IMS_ACL_DIAMETER, port, src, "static");
    return false;
}
