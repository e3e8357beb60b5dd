/* udp_spread.c - UDP requests spread over the workers by Call-ID.
 *
 * Every worker has its own SO_REUSEPORT socket per listener and the kernel
 * picks the socket by the 4-tuple: all datagrams of one flow reach ONE
 * worker.  A UE is one flow, which is fine, but a peer proxy (the P-CSCF in
 * front of an I-CSCF, a UAC that sends every call from one socket) is one
 * flow too, and then one worker carries all of it while the others idle.
 * So a request that arrives on worker i but whose Call-ID hashes to worker j
 * is handed to j.  The same Call-ID always lands on the same worker, so
 * retransmissions still meet their server transaction (RFC 3261 §17.2.3)
 * and a dialog's requests (ACK, BYE, re-INVITE) stay together.  Responses
 * are not spread: their branch names the worker that owns their client
 * transaction (sip/txn.c does that hand-off).  Nor is a REGISTER straight
 * from its UE (one Via): its flow is the UE's own (ims_udp_spread_owner).
 *
 * Cost of a hand-off: a copy and, per receive batch and target worker, one
 * ims_loop_post (a lock, and an eventfd write if the target's queue was
 * empty).  The time a datagram waits in the target's post queue is added
 * to its queue_ms, so the overload control still sees how far behind the
 * worker that processes it is.
 *
 * Memory: a worker that falls behind would otherwise collect every other
 * worker's hand-offs without limit (its own socket stops at its receive
 * buffer; the post queue has none).  So the bytes waiting for each worker
 * are counted (sh->spread_bytes, from the hand-off until the target ran or
 * dropped them) and a request that would go past spread_max is dropped,
 * like a datagram meeting a full socket buffer: its sender retransmits. */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/err.h"
#include "net/net_int.h"

struct spread_msg {
    struct spread_msg *next;
    struct ims_addr src;
    struct ims_addr local; /* where it was sent to (sip_tp_rx.local) */
    size_t listener; /* index: the same listener on every worker */
    int32_t queue_ms;
    uint64_t queued_ms; /* sender's loop clock (monotonic, shared by all loops) */
    size_t len;
    char data[];
};

struct spread_batch {
    struct sip_tp_shared *sh;
    unsigned worker;
    struct spread_msg *head;
};

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static const char *skip_blanks(const char *q, const char *end)
{
    while (q < end && (*q == ' ' || *q == '\t'))
        q++;
    return q;
}

/* A header line's name is NAME (case-insensitive), or its compact form C,
 * followed by optional blanks and the colon: the value's start, else NULL. */
static const char *hdr_value(const char *q, const char *end, const char *name, char c)
{
    size_t n = strlen(name);
    if ((size_t)(end - q) > n && strncasecmp(q, name, n) == 0)
        q += n;
    else if (q < end && lower(*q) == c)
        q += 1;
    else
        return NULL;
    q = skip_blanks(q, end);
    return q < end && *q == ':' ? q + 1 : NULL;
}

/* One pass over the header lines: the Call-ID value (RFC 3261 §20.8,
 * compact form "i"), or len 0; and, when vias is not NULL, how many Via
 * values there are (a comma counts as a second value; folded lines are
 * not followed, which can only count too few commas, never too many Via
 * lines). */
static ims_str scan(const char *p, size_t n, unsigned *vias)
{
    const char *end = p + n;
    const char *line = memchr(p, '\n', n);
    ims_str cid = IMS_STR_NULL;
    while (line && ++line < end) {
        if (*line == '\r' || *line == '\n')
            break; /* end of the headers */
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        const char *stop = eol ? eol : end;
        const char *v;
        if (!cid.len && (v = hdr_value(line, stop, "call-id", 'i')) != NULL) {
            v = skip_blanks(v, stop);
            const char *q = v;
            while (q < stop && *q != '\r' && *q != ' ' && *q != '\t')
                q++;
            cid = ims_str_make(v, (size_t)(q - v));
            if (!vias)
                return cid;
        } else if (vias && (v = hdr_value(line, stop, "via", 'v')) != NULL) {
            (*vias)++;
            *vias += (unsigned)(memchr(v, ',', (size_t)(stop - v)) != NULL);
        }
        line = eol;
    }
    return cid;
}

static uint32_t fnv1a(ims_str s)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < s.len; i++) {
        h ^= (uint8_t)s.p[i];
        h *= 16777619u;
    }
    return h;
}

unsigned ims_udp_spread_owner(const struct sip_tp *tp, const char *p, size_t len)
{
    if (tp->spread_workers < 2 || (len >= 8 && memcmp(p, "SIP/2.0 ", 8) == 0))
        return tp->idx; /* one worker, or a response */
    /* A REGISTER with one Via came straight from its UE: a flow of its own,
     * which the kernel's flow hash already spread, that carries one user's
     * registrations and their retransmissions (the same flow, so the same
     * worker).  It starts no dialog, and what it touches (the registrar,
     * nonces, flows) is shared by all workers, so it stays here: a hand-off
     * costs a copy and, often, waking the other worker.  Through a proxy
     * (two Vias or more) one flow carries many users, and those are spread. */
    bool reg = len > 9 && memcmp(p, "REGISTER ", 9) == 0;
    unsigned vias = 0;
    ims_str cid = scan(p, len, reg ? &vias : NULL);
    if (!cid.len || (reg && vias == 1))
        return tp->idx; /* malformed: this worker answers it; or a UE's REGISTER */
    return fnv1a(cid) % tp->spread_workers;
}

/* What a queued message counts against the target's spread_max. */
static size_t msg_size(const struct spread_msg *m)
{
    return sizeof(*m) + m->len;
}

int ims_udp_spread_queue(struct sip_tp *tp, unsigned owner, const struct sip_listener *l,
                         const char *p, size_t len, const struct ims_addr *src,
                         const struct ims_addr *local, int32_t queue_ms)
{
    atomic_size_t *waiting = &tp->sh->spread_bytes[owner];
    size_t size = sizeof(struct spread_msg) + len;
    /* counted at once, so the requests of one read batch see each other */
    if (atomic_fetch_add(waiting, size) + size > tp->sh->spread_max) {
        atomic_fetch_sub(waiting, size);
        return IMS_ELIMIT;
    }
    struct spread_msg *m = ims_alloc(size);
    if (!m) {
        atomic_fetch_sub(waiting, size);
        return IMS_ENOMEM;
    }
    m->src = *src;
    m->local = *local;
    m->listener = (size_t)(l - tp->ls);
    m->queue_ms = queue_ms;
    m->queued_ms = ims_loop_now(tp->loop);
    m->len = len;
    memcpy(m->data, p, len);
    /* kept in arrival order per target */
    m->next = NULL;
    if (tp->spread_tail[owner])
        tp->spread_tail[owner]->next = m;
    else
        tp->spread_head[owner] = m;
    tp->spread_tail[owner] = m;
    tp->spread_pending = true;
    tp->stats.spread_out++;
    return 0;
}

/* Frees messages handed over to worker w: they no longer wait for it. */
static void free_msgs(struct sip_tp_shared *sh, unsigned w, struct spread_msg *m)
{
    size_t size = 0;
    while (m) {
        struct spread_msg *next = m->next;
        size += msg_size(m);
        ims_free(m);
        m = next;
    }
    atomic_fetch_sub(&sh->spread_bytes[w], size);
}

static void batch_drop(void *arg)
{
    struct spread_batch *b = arg;
    free_msgs(b->sh, b->worker, b->head);
    ims_free(b);
}

static void batch_run(struct ims_loop *loop, void *arg)
{
    struct spread_batch *b = arg;
    pthread_mutex_lock(&b->sh->lock);
    struct sip_tp *tp = b->sh->workers[b->worker];
    pthread_mutex_unlock(&b->sh->lock);
    /* tp can only be freed on this thread, so it stays valid below */
    if (tp && tp->loop == loop) {
        uint64_t now = ims_loop_now(loop);
        for (struct spread_msg *m = b->head; m; m = m->next) {
            if (m->listener >= tp->nls)
                continue;
            int64_t waited = now > m->queued_ms ? (int64_t)(now - m->queued_ms) : 0;
            int64_t q = (m->queue_ms < 0 ? 0 : m->queue_ms) + waited;
            tp->udp_queue_ms = q > INT32_MAX ? INT32_MAX : (int32_t)q;
            ims_tp_deliver(tp, m->data, m->len, SIP_PROTO_UDP, &m->src, &m->local, 0, NULL);
        }
    }
    batch_drop(b);
}

/* Delivers the queued messages here after all (the target is gone). */
static void deliver_here(struct sip_tp *tp, struct spread_msg *m)
{
    for (; m; m = m->next) {
        tp->udp_queue_ms = m->queue_ms;
        ims_tp_deliver(tp, m->data, m->len, SIP_PROTO_UDP, &m->src, &m->local, 0, NULL);
    }
}

void ims_udp_spread_flush(struct sip_tp *tp)
{
    for (unsigned w = 0; w < tp->spread_workers && tp->spread_pending; w++) {
        struct spread_msg *head = tp->spread_head[w];
        if (!head)
            continue;
        tp->spread_head[w] = tp->spread_tail[w] = NULL;
        struct spread_batch *b = ims_alloc(sizeof(*b));
        int rc = IMS_ENOMEM;
        if (b) {
            *b = (struct spread_batch){ tp->sh, w, head };
            /* posting under the lock keeps the target loop alive (tp.c) */
            pthread_mutex_lock(&tp->sh->lock);
            struct sip_tp *target = tp->sh->workers[w];
            rc = target ? ims_loop_post(target->loop, batch_run, b, batch_drop) : IMS_ENOENT;
            pthread_mutex_unlock(&tp->sh->lock);
        }
        if (rc != 0) {
            ims_free(b);
            deliver_here(tp, head);
            free_msgs(tp->sh, w, head);
        }
    }
    tp->spread_pending = false;
}
