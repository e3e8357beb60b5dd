/* hss_rawload - a cheap Cx load generator for the HSS benchmark
 * (bench/hss/run.sh --client raw): hss_load's scenarios, modes, options and
 * result line, but speaking Diameter itself (RFC 6733 framing, hand-encoded
 * MAR/SAR) over plain TCP sockets from one thread with epoll, instead of a
 * freeDiameter node per connection.
 *
 *   hss_rawload -H HSS_ID -p PORT -s SCENARIO -N SUBS
 *               [-d RUN_DIR] [-a ADDR] [-F FIRST] [-c CONNS] [-w WINDOW]
 *               [-t SECONDS] [-W WARMUP] [-r|--rate RATE] [-P TICK_US]
 *               [-n ITEMS] [-T TIMEOUT_MS] [-R RECORD_FILE] [-V] [-e]
 *               [-i PREFIX] [-x RESULT_CODE] [-B] [-v]
 *
 * Why: hss_load costs 20-40 us of CPU per request (freeDiameter's receiving,
 * routing, dispatch and sending threads, a wake-up each), 31-55% of a core
 * at 10 000-20 000/s, on the two cores the server needs.  Here a request is
 * a few hundred bytes written into the connection's output buffer; every
 * pass of the event loop flushes each connection with one write() and
 * reads up to IN_CAP bytes (many answers) per read().
 *
 * The scenarios, -c, -w, -r, -P, -t, -W, -n, -T, -V, -R, -e, -i, -x are
 * those of hss_load (see its header comment); -d is accepted and ignored
 * (no freeDiameter files here).  Differences:
 * - one process: CONNS TCP connections, each with its own Diameter identity
 *   PREFIX<k>.ims.bench (k from 1), each with WINDOW/CONNS of the window;
 * - open loop: one global schedule, request n due at t0 + n/RATE on
 *   connection n % CONNS (the same interleaving as hss_load's per-connection
 *   schedules); a timerfd on a grid of TICK_US wakes the loop, at most once a
 *   tick, later if nothing is due sooner;
 * - send_slow counts requests queued while their connection's socket had
 *   refused output (EAGAIN) for over 1 ms: TCP pushing back because the
 *   server reads too slowly (there is no sending thread to block here);
 * - an answer counts as answered only with Result-Code 2001 (or -x) and,
 *   for a MAR with 2001, at least one SIP-Auth-Data-Item (AKA: as many as
 *   asked at most); a 2001 MAA without one counts in bad_vectors; an answer
 *   that does not parse (bounds-checked: header, AVP lengths, grouped AVPs)
 *   counts in errors and "malformed", and drops nothing else;
 * - the answer's receive time is taken once per read();
 * - -B: one write() per request, right when it is due (or answered, in
 *   the closed loop), instead of one per connection and loop pass: the
 *   server then sees requests arrive one by one, as from a client that
 *   does not batch (hss_load's freeDiameter sends each message with its own
 *   send()), at the cost of a system call per request here.
 *
 * Diameter: a CER (Origin-Host/Realm, Host-IP-Address, Vendor-Id,
 * Product-Name, Supported-Vendor-Id, Vendor-Specific-Application-Id for Cx
 * 16777216 / 10415), a CEA with 2001 expected; DWR from the server answered
 * with DWA, a DPR answered with DPA; at the end a DPR (DO_NOT_WANT_TO_TALK_TO_
 * YOU) and up to a second for the DPA.  Requests carry what ims_dia_send()
 * puts in them (src/dia/node.c, tables.c): Session-Id (unique per request),
 * Vendor-Specific-Application-Id, Auth-Session-State NO_STATE_MAINTAINED,
 * Origin-Host/Realm, Destination-Realm, then the TS 29.229 §6.1 AVPs.
 *
 * Exit: 0 when every counted request was answered (2001, or -x) and
 * verified; with -e 0 when at least one was; 1 otherwise; 2 on usage
 * errors. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "base/str.h"
#include "crypto/aka.h"
#include "crypto/digest.h"

#include "hss_bench.h"
#include "load_stats.h"

#define S(x) ims_str_cstr(x)
#define MAX_ITEMS 16 /* SIP-Number-Auth-Items asked at most (CX_MAX_ITEMS in src/dia) */
#define IN_CAP (512u * 1024u)   /* read buffer per connection: the largest answer accepted */
#define OUT_RESERVE 2048u       /* room made before encoding one request */

/* RFC 6733 §3, §4.1 and TS 29.229 §6 numbers */
#define HDR_LEN 20u
#define FL_REQ 0x80u
#define FL_PXY 0x40u
#define FL_ERR 0x20u
#define AVP_V 0x80u
#define AVP_M 0x40u
#define VENDOR_3GPP 10415u
#define APP_CX 16777216u
#define CMD_CE 257u
#define CMD_DW 280u
#define CMD_DP 282u
#define CMD_SAR 301u
#define CMD_MAR 303u
#define RC_SUCCESS 2001u
#define RC_TOO_BUSY 3004u
#define RC_UNSUPPORTED 3001u


static struct load_opts opt = LOAD_OPTS_DEFAULT;
static bool opt_debug, opt_unbatched; /* -v, -B: this tool's own */

struct slot {
    uint64_t t0_ns;   /* latency origin: send time (closed) or schedule (open) */
    uint64_t sent_ns; /* for the timeout */
    uint32_t hbh;     /* Hop-by-Hop Identifier of the outstanding request */
    uint32_t sub;
    bool busy, counted;
};

struct buf {
    uint8_t *p;
    size_t len, off, cap; /* bytes [off, len) not yet written */
};

enum cstate { C_CER, C_OPEN, C_DPR, C_CLOSED };

struct conn {
    int fd;
    unsigned idx;
    char id[HB_ID_MAX + 16];
    enum cstate st;
    struct buf out;
    uint8_t *in;
    size_t in_len;
    unsigned base, nslots; /* its slots: [base, base + nslots) */
    unsigned *free_slots, nfree;
    uint64_t blocked_since; /* output refused (EAGAIN) since, 0: not */
    bool pollout, active;   /* EPOLLOUT armed; closed loop: window still running */
};

static struct {
    struct conn conns[MAX_CONNS];
    struct slot *slots;
    struct ls_result *res;
    uint64_t warm_end_ns, end_ns, rng, seq;
    uint32_t gen, boot;
    int ep, tfd, record_fd;
    unsigned active; /* closed loop: slots still sending */
} g = { .ep = -1, .tfd = -1, .record_fd = -1 };

static uint32_t next_sub(void)
{
    return ls_next_sub(&g.rng, opt.first, opt.subs);
}

/* ------------------------------------------------------------ encoding */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t get24(const uint8_t *p)
{
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

/* A writer into caller storage; over is set (and nothing written) past cap. */
struct w {
    uint8_t *p;
    size_t len, cap;
    bool over;
};

static void w_bytes(struct w *w, const void *d, size_t n)
{
    if (w->over || n > w->cap - w->len) {
        w->over = true;
        return;
    }
    memcpy(w->p + w->len, d, n);
    w->len += n;
}

static void w_u32(struct w *w, uint32_t v)
{
    uint8_t b[4];
    put32(b, v);
    w_bytes(w, b, 4);
}

/* RFC 6733 §4.1: code, flags + 24-bit length, Vendor-ID when V is set.
 * Returns where the AVP starts, for avp_end(). */
static size_t avp_begin(struct w *w, uint32_t code, uint32_t vendor, bool m)
{
    size_t at = w->len;
    w_u32(w, code);
    w_u32(w, (uint32_t)((vendor ? AVP_V : 0) | (m ? AVP_M : 0)) << 24);
    if (vendor)
        w_u32(w, vendor);
    return at;
}

/* The length excludes the padding, which follows to a 4-byte boundary. */
static void avp_end(struct w *w, size_t at)
{
    static const uint8_t zero[4];
    if (w->over)
        return;
    size_t n = w->len - at;
    w->p[at + 5] = (uint8_t)(n >> 16);
    w->p[at + 6] = (uint8_t)(n >> 8);
    w->p[at + 7] = (uint8_t)n;
    w_bytes(w, zero, (4 - (n & 3)) & 3);
}

static void avp_os(struct w *w, uint32_t code, uint32_t vendor, bool m, const void *d, size_t n)
{
    size_t at = avp_begin(w, code, vendor, m);
    w_bytes(w, d, n);
    avp_end(w, at);
}

static void avp_str(struct w *w, uint32_t code, uint32_t vendor, bool m, const char *s)
{
    avp_os(w, code, vendor, m, s, strlen(s));
}

static void avp_u32(struct w *w, uint32_t code, uint32_t vendor, bool m, uint32_t v)
{
    size_t at = avp_begin(w, code, vendor, m);
    w_u32(w, v);
    avp_end(w, at);
}

static void msg_begin(struct w *w, uint8_t flags, uint32_t cmd, uint32_t app, uint32_t hbh,
                      uint32_t e2e)
{
    w_u32(w, 1u << 24); /* version 1, length patched by msg_end() */
    w_u32(w, (uint32_t)flags << 24 | cmd);
    w_u32(w, app);
    w_u32(w, hbh);
    w_u32(w, e2e);
}

static void msg_end(struct w *w)
{
    if (!w->over)
        put32(w->p, 1u << 24 | (uint32_t)w->len);
}

/* Makes room for one message at the end of c->out. */
static int out_reserve(struct conn *c, size_t n)
{
    struct buf *b = &c->out;
    if (b->off == b->len)
        b->off = b->len = 0;
    if (b->cap - b->len >= n)
        return 0;
    if (b->off > 0) { /* drop what was written */
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->cap - b->len >= n)
            return 0;
    }
    size_t cap = b->cap ? b->cap * 2 : 65536;
    while (cap - b->len < n)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static struct w out_writer(struct conn *c)
{
    struct w w = { c->out.p + c->out.len, 0, c->out.cap - c->out.len, false };
    return w;
}

static void origin(struct w *w, const struct conn *c)
{
    avp_str(w, 264, 0, true, c->id);      /* Origin-Host */
    avp_str(w, 296, 0, true, HB_REALM);   /* Origin-Realm */
}

/* Vendor-Specific-Application-Id { Vendor-Id 10415, Auth-Application-Id Cx } */
static void cx_app(struct w *w)
{
    size_t at = avp_begin(w, 260, 0, true);
    avp_u32(w, 266, 0, true, VENDOR_3GPP);
    avp_u32(w, 258, 0, true, APP_CX);
    avp_end(w, at);
}

/* Queues a base-protocol message (CER, DWA, DPR, DPA, or the answer to a
 * request we do not handle) on c.  result: the Result-Code of an answer, 0
 * for a request; a 3xxx one sets the E bit (RFC 6733 §3). */
static int queue_base(struct conn *c, uint32_t cmd, uint32_t app, bool request, uint32_t hbh,
                      uint32_t e2e, uint32_t result)
{
    if (out_reserve(c, OUT_RESERVE) != 0)
        return -1;
    struct w w = out_writer(c);
    msg_begin(&w, request ? FL_REQ : result / 1000 == 3 ? FL_ERR : 0, cmd, app, hbh, e2e);
    if (!request)
        avp_u32(&w, 268, 0, true, result); /* Result-Code */
    origin(&w, c);
    if (cmd == CMD_CE) {
        /* RFC 6733 §5.3.1: Host-IP-Address (Address: family 1, IPv4), Vendor-Id,
         * Product-Name (M must not be set), the application we speak */
        uint8_t addr[6] = { 0, 1, 127, 0, 0, 1 };
        struct in_addr ia;
        if (inet_pton(AF_INET, opt.addr, &ia) == 1)
            memcpy(addr + 2, &ia, 4);
        avp_os(&w, 257, 0, true, addr, sizeof(addr));
        avp_u32(&w, 266, 0, true, 0);
        avp_str(&w, 269, 0, false, "imscloud hss_rawload");
        avp_u32(&w, 265, 0, true, VENDOR_3GPP); /* Supported-Vendor-Id */
        cx_app(&w);
    } else if (cmd == CMD_DP && request) {
        avp_u32(&w, 273, 0, true, 2); /* Disconnect-Cause DO_NOT_WANT_TO_TALK_TO_YOU */
    }
    msg_end(&w);
    if (w.over)
        return -1;
    c->out.len += w.len;
    return 0;
}

/* Queues the scenario's request for slot s (subscriber s->sub) on c, as
 * ims_dia_send() builds it (TS 29.229 §6.1.7 MAR, §6.1.3 SAR). */
static int queue_request(struct conn *c, struct slot *s)
{
    char impi[HB_ID_MAX], impu[HB_ID_MAX], sid[HB_ID_MAX + 64];
    if (out_reserve(c, OUT_RESERVE) != 0)
        return -1;
    hb_impi(s->sub, impi);
    hb_impu(s->sub, impu);
    g.seq++;
    int n = snprintf(sid, sizeof(sid), "%s;%u;%llu", c->id, g.boot, (unsigned long long)g.seq);
    bool mar = opt.sc == SC_MAR_DIGEST || opt.sc == SC_MAR_AKA;
    struct w w = out_writer(c);
    msg_begin(&w, FL_REQ | FL_PXY, mar ? CMD_MAR : CMD_SAR, APP_CX, s->hbh,
              (uint32_t)(g.boot << 20) ^ (uint32_t)g.seq);
    avp_os(&w, 263, 0, true, sid, (size_t)n); /* Session-Id */
    cx_app(&w);
    avp_u32(&w, 277, 0, true, 1); /* Auth-Session-State NO_STATE_MAINTAINED */
    origin(&w, c);
    avp_str(&w, 283, 0, true, HB_REALM);    /* Destination-Realm */
    avp_str(&w, 1, 0, true, impi);          /* User-Name */
    avp_str(&w, 601, VENDOR_3GPP, true, impu); /* Public-Identity */
    avp_str(&w, 602, VENDOR_3GPP, true, HB_SCSCF); /* Server-Name */
    if (mar) {
        avp_u32(&w, 607, VENDOR_3GPP, true, opt.sc == SC_MAR_AKA ? opt.items : 1);
        size_t at = avp_begin(&w, 612, VENDOR_3GPP, true); /* SIP-Auth-Data-Item */
        avp_str(&w, 608, VENDOR_3GPP, true,                  /* SIP-Authentication-Scheme */
                opt.sc == SC_MAR_AKA ? "Digest-AKAv1-MD5" : "Digest-MD5");
        avp_end(&w, at);
    } else {
        /* Server-Assignment-Type REGISTRATION (1) / RE_REGISTRATION (2),
         * User-Data-Already-Available USER_DATA_NOT_AVAILABLE (0) / ALREADY (1) */
        avp_u32(&w, 614, VENDOR_3GPP, true, opt.sc == SC_SAR_REG ? 1 : 2);
        avp_u32(&w, 624, VENDOR_3GPP, true, opt.sc == SC_SAR_REG ? 0 : 1);
    }
    msg_end(&w);
    if (w.over)
        return -1;
    c->out.len += w.len;
    return 0;
}

/* ------------------------------------------------------------ parsing */

struct avp {
    uint32_t code, vendor;
    const uint8_t *d;
    size_t len;
};

/* The next AVP of [*p, end): 1, 0 at the end, -1 malformed (RFC 6733 §4.1). */
static int avp_next(const uint8_t **p, const uint8_t *end, struct avp *a)
{
    size_t left = (size_t)(end - *p);
    if (left == 0)
        return 0;
    if (left < 8)
        return -1;
    const uint8_t *q = *p;
    uint32_t len = get24(q + 5);
    bool v = q[4] & AVP_V;
    size_t hl = v ? 12 : 8;
    if (len < hl || len > left)
        return -1;
    a->code = get32(q);
    a->vendor = v ? get32(q + 8) : 0;
    a->d = q + hl;
    a->len = len - hl;
    size_t padded = ((size_t)len + 3) & ~(size_t)3;
    *p = q + (padded < left ? padded : left);
    return 1;
}

static bool avp_get_u32(const struct avp *a, uint32_t *v)
{
    if (a->len != 4)
        return false;
    *v = get32(a->d);
    return true;
}

/* What -V needs of a SIP-Auth-Data-Item */
struct item {
    const uint8_t *authenticate, *authorization, *ck, *ik, *ha1;
    size_t authenticate_len, authorization_len, ck_len, ik_len, ha1_len;
};

static int parse_item(const struct avp *grp, struct item *it)
{
    const uint8_t *p = grp->d, *end = grp->d + grp->len;
    struct avp a;
    int rc;
    memset(it, 0, sizeof(*it));
    while ((rc = avp_next(&p, end, &a)) == 1) {
        if (a.vendor == VENDOR_3GPP && a.code == 609) {
            it->authenticate = a.d;
            it->authenticate_len = a.len;
        } else if (a.vendor == VENDOR_3GPP && a.code == 610) {
            it->authorization = a.d;
            it->authorization_len = a.len;
        } else if (a.vendor == VENDOR_3GPP && a.code == 625) {
            it->ck = a.d;
            it->ck_len = a.len;
        } else if (a.vendor == VENDOR_3GPP && a.code == 626) {
            it->ik = a.d;
            it->ik_len = a.len;
        } else if (a.vendor == VENDOR_3GPP && a.code == 635) { /* SIP-Digest-Authenticate */
            const uint8_t *q = a.d, *qe = a.d + a.len;
            struct avp b;
            int r2;
            while ((r2 = avp_next(&q, qe, &b)) == 1)
                if (b.vendor == 0 && b.code == 121) { /* Digest-HA1 */
                    it->ha1 = b.d;
                    it->ha1_len = b.len;
                }
            if (r2 < 0)
                return -1;
        }
    }
    return rc;
}

struct answer {
    uint32_t code; /* Result-Code or Experimental-Result-Code, 0: none */
    unsigned nitems;
    struct item items[MAX_ITEMS];
};

/* The AVPs of an answer after its header; -1 when malformed. */
static int parse_answer(const uint8_t *p, const uint8_t *end, struct answer *an)
{
    struct avp a;
    int rc;
    an->code = 0;
    an->nitems = 0;
    while ((rc = avp_next(&p, end, &a)) == 1) {
        if (a.vendor == 0 && a.code == 268) { /* Result-Code */
            if (!avp_get_u32(&a, &an->code))
                return -1;
        } else if (a.vendor == 0 && a.code == 297) { /* Experimental-Result */
            const uint8_t *q = a.d, *qe = a.d + a.len;
            struct avp b;
            int r2;
            while ((r2 = avp_next(&q, qe, &b)) == 1)
                if (b.vendor == 0 && b.code == 298 && !avp_get_u32(&b, &an->code))
                    return -1;
            if (r2 < 0)
                return -1;
        } else if (a.vendor == VENDOR_3GPP && a.code == 612) {
            if (an->nitems < MAX_ITEMS && parse_item(&a, &an->items[an->nitems]) < 0)
                return -1;
            an->nitems++;
        }
    }
    return rc;
}

/* ------------------------------------------------------------ answers */

/* Checks an MAA as the UE would (hss_load -V); appends SQNs to -R's file. */
static bool verify(uint32_t sub, const struct answer *an)
{
    char impi[HB_ID_MAX];
    hb_impi(sub, impi);
    if (opt.sc == SC_MAR_DIGEST) {
        char pw[HB_ID_MAX], ha1[IMS_DIGEST_HEX_MAX + 1];
        hb_password(sub, pw);
        if (ims_digest_ha1(IMS_DIGEST_MD5, S(impi), S(HB_REALM), S(pw), ha1) != 0)
            return false;
        return an->nitems == 1 && an->items[0].ha1 && an->items[0].ha1_len == strlen(ha1) &&
               memcmp(an->items[0].ha1, ha1, an->items[0].ha1_len) == 0;
    }
    if (opt.sc != SC_MAR_AKA)
        return true;
    uint8_t k[16], opc[16];
    char line[64 * MAX_ITEMS];
    size_t len = 0;
    bool ok = an->nitems >= 1 && an->nitems <= opt.items;
    hb_keys(sub, k, opc);
    for (unsigned i = 0; ok && i < an->nitems; i++) {
        const struct item *it = &an->items[i];
        uint8_t res[8], ck[16], ik[16], amf[2];
        uint64_t sqn = 0;
        ok = it->authenticate_len == 32 && it->authorization_len == 8 && it->ck_len == 16 &&
             it->ik_len == 16 &&
             ims_aka_ue_check(k, opc, it->authenticate, it->authenticate + 16, &sqn, amf, res,
                              ck, ik) == 0 &&
             memcmp(res, it->authorization, 8) == 0 && memcmp(ck, it->ck, 16) == 0 &&
             memcmp(ik, it->ik, 16) == 0;
        if (ok && len < sizeof(line))
            len += (size_t)snprintf(line + len, sizeof(line) - len, "%u %llu\n", sub,
                                    (unsigned long long)sqn);
    }
    if (len > sizeof(line))
        len = sizeof(line);
    if (ok && g.record_fd >= 0 && write(g.record_fd, line, len) != (ssize_t)len)
        ok = false;
    return ok;
}

static int send_on_slot(struct conn *c, struct slot *s, uint64_t t_sched, uint64_t now);
static int conn_flush(struct conn *c, uint64_t now);

static void free_slot(struct conn *c, struct slot *s)
{
    s->busy = false;
    c->free_slots[c->nfree++] = (unsigned)(s - g.slots);
}

/* A request is done (answered, failed or timed out): counts it; the closed
 * loop sends the next on the same slot. */
static void complete(struct conn *c, struct slot *s, uint64_t t, bool good, uint32_t code,
                     bool timeout)
{
    struct ls_result *r = g.res;
    if (s->counted)
        ls_tally(r, good, t > s->t0_ns ? (t - s->t0_ns) / 1000 : 0, timeout, code == RC_TOO_BUSY,
                 code);
    if (opt.rate > 0) {
        free_slot(c, s);
        return;
    }
    /* closed loop: the next request on the same slot; -e: a slot stops at
     * its first failure (send_on_slot() frees the slot when it fails) */
    if ((!good && opt.errors_ok) || t >= g.end_ns || c->st != C_OPEN) {
        free_slot(c, s);
        g.active--;
    } else if (send_on_slot(c, s, 0, t) != 0) {
        g.active--;
    }
}

static void on_answer(struct conn *c, const uint8_t *m, size_t len, uint64_t t)
{
    uint32_t hbh = get32(m + 12);
    unsigned idx = hbh & (MAX_WINDOW - 1);
    if (idx < c->base || idx >= c->base + c->nslots || !g.slots[idx].busy ||
        g.slots[idx].hbh != hbh)
        return; /* timed out already, or not ours */
    struct slot *s = &g.slots[idx];
    struct answer an;
    if (parse_answer(m + HDR_LEN, m + len, &an) != 0) {
        if (s->counted)
            g.res->malformed++;
        complete(c, s, t, false, 0, false);
        return;
    }
    bool good = an.code == opt.expect;
    bool mar = opt.sc == SC_MAR_DIGEST || opt.sc == SC_MAR_AKA;
    if (good && opt.expect == RC_SUCCESS && mar &&
        (an.nitems == 0 || an.nitems > opt.items || (opt.verify && !verify(s->sub, &an)))) {
        if (s->counted)
            g.res->bad_vectors++;
        complete(c, s, t, false, 0, false);
        return;
    }
    complete(c, s, t, good, an.code, false);
}

/* A message from the server: the base protocol's, or an answer of ours.
 * -1: the connection is to be closed. */
static int on_message(struct conn *c, const uint8_t *m, size_t len, uint64_t t)
{
    uint8_t flags = m[4];
    uint32_t cmd = get24(m + 5), app = get32(m + 8), hbh = get32(m + 12), e2e = get32(m + 16);
    if (flags & FL_REQ) {
        if (cmd == CMD_DW)
            return queue_base(c, CMD_DW, 0, false, hbh, e2e, RC_SUCCESS);
        if (cmd == CMD_DP) {
            queue_base(c, CMD_DP, 0, false, hbh, e2e, RC_SUCCESS);
            c->st = C_DPR;
            return 0;
        }
        /* e.g. an RTR or PPR: not part of the benchmark */
        return queue_base(c, cmd, app, false, hbh, e2e, RC_UNSUPPORTED);
    }
    if (cmd == CMD_CE) {
        struct answer an;
        if (parse_answer(m + HDR_LEN, m + len, &an) != 0 || an.code != RC_SUCCESS) {
            fprintf(stderr, "hss_rawload: %s: CEA with Result-Code %u\n", c->id, an.code);
            return -1;
        }
        c->st = C_OPEN;
        return 0;
    }
    if (cmd == CMD_DP)
        return -1;
    if (cmd == CMD_MAR || cmd == CMD_SAR)
        on_answer(c, m, len, t);
    return 0;
}

/* Reads what is there and handles every whole message; -1: closed/broken. */
static int conn_read(struct conn *c)
{
    ssize_t n = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (n == 0)
        return -1;
    c->in_len += (size_t)n;
    uint64_t t = now_ns(); /* one time stamp per read: these answers arrived together */
    size_t at = 0;
    while (c->in_len - at >= HDR_LEN) {
        const uint8_t *m = c->in + at;
        uint32_t len = get24(m + 1);
        if (m[0] != 1 || len < HDR_LEN || (len & 3) || len > IN_CAP) {
            fprintf(stderr, "hss_rawload: %s: bad Diameter header (version %u, length %u)\n",
                    c->id, m[0], len);
            g.res->malformed++;
            return -1;
        }
        if (c->in_len - at < len)
            break;
        if (on_message(c, m, len, t) != 0)
            return -1;
        at += len;
    }
    memmove(c->in, c->in + at, c->in_len - at);
    c->in_len -= at;
    return 0;
}

static void set_pollout(struct conn *c, bool on)
{
    if (c->pollout == on)
        return;
    struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
    epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->pollout = on;
}

/* One write() of everything queued; what TCP refuses waits for EPOLLOUT. */
static int conn_flush(struct conn *c, uint64_t now)
{
    struct buf *b = &c->out;
    while (b->off < b->len) {
        ssize_t n = write(c->fd, b->p + b->off, b->len - b->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (!c->blocked_since)
                c->blocked_since = now;
            set_pollout(c, true);
            return 0;
        }
        if (n <= 0)
            return -1;
        b->off += (size_t)n;
    }
    b->off = b->len = 0;
    if (c->blocked_since) {
        uint64_t us = (now - c->blocked_since) / 1000;
        if (us > g.res->send_max_us)
            g.res->send_max_us = us;
        c->blocked_since = 0;
    }
    set_pollout(c, false);
    return 0;
}

/* Queues the next request on slot s (taken from c's free list); t_sched: the
 * open loop's schedule, 0 in the closed loop.  0, or -1 (counted, slot freed). */
static int send_on_slot(struct conn *c, struct slot *s, uint64_t t_sched, uint64_t now)
{
    struct ls_result *r = g.res;
    s->sub = next_sub();
    s->t0_ns = t_sched ? t_sched : now;
    s->sent_ns = now;
    s->counted = s->t0_ns >= g.warm_end_ns;
    g.gen++;
    s->hbh = (g.gen << 12) | (uint32_t)(s - g.slots);
    s->busy = true;
    if (s->counted) {
        r->sent++;
        if (c->blocked_since && now - c->blocked_since > LATE_NS)
            r->send_slow++;
    }
    if (queue_request(c, s) == 0) {
        /* -B: a failed write shows at the next flush of the loop */
        if (opt_unbatched)
            conn_flush(c, now);
        return 0;
    }
    r->send_failed++;
    if (s->counted)
        r->errors++;
    free_slot(c, s);
    return -1;
}

/* ------------------------------------------------------------ loop */

static struct {
    uint64_t t0, n, tick, next_tick;
    double interval;
} pace;

/* Open loop: every request due by now, then the timer at the next due time,
 * no sooner than the next tick of the grid. */
static void pace_run(uint64_t now)
{
    struct ls_result *r = g.res;
    for (;;) {
        uint64_t due = pace.t0 + (uint64_t)((double)pace.n * pace.interval);
        if (due >= g.end_ns)
            return; /* schedule over: the timer stays disarmed */
        if (due > now) {
            uint64_t next = pace.t0 + ((now - pace.t0) / pace.tick + 1) * pace.tick;
            uint64_t at = due > next ? due : next;
            struct itimerspec its = { { 0, 0 },
                                      { (time_t)(at / 1000000000u), (long)(at % 1000000000u) } };
            timerfd_settime(g.tfd, TFD_TIMER_ABSTIME, &its, NULL);
            return;
        }
        struct conn *c = &g.conns[pace.n % opt.conns];
        pace.n++;
        uint64_t lag = now - due;
        bool counted = due >= g.warm_end_ns;
        if (counted) {
            r->scheduled++;
            r->lag_hist[ls_bucket(lag / 1000)]++;
            if (lag / 1000 > r->lag_max_us)
                r->lag_max_us = lag / 1000;
        }
        if (c->nfree == 0 || c->st != C_OPEN) {
            if (counted) {
                r->skipped++;
                r->errors++;
            }
            continue;
        }
        if (counted && lag > LATE_NS + pace.tick)
            r->late++;
        send_on_slot(c, &g.slots[c->free_slots[--c->nfree]], due, now);
    }
}

/* Requests outstanding longer than -T fail as timeouts. */
static void expire(uint64_t now)
{
    uint64_t limit = (uint64_t)opt.timeout_ms * 1000000u;
    for (unsigned i = 0; i < opt.conns; i++) {
        struct conn *c = &g.conns[i];
        for (unsigned k = c->base; k < c->base + c->nslots; k++)
            if (g.slots[k].busy && now - g.slots[k].sent_ns > limit)
                complete(c, &g.slots[k], now, false, 0, true);
    }
}

static unsigned outstanding(void)
{
    unsigned n = 0;
    for (unsigned i = 0; i < opt.conns; i++)
        n += g.conns[i].nslots - g.conns[i].nfree;
    return n;
}

/* A broken connection: its outstanding requests fail now. */
static void conn_fail(struct conn *c, uint64_t now)
{
    if (c->st == C_CLOSED)
        return;
    if (c->st == C_OPEN)
        fprintf(stderr, "hss_rawload: %s: connection lost\n", c->id);
    c->st = C_CLOSED;
    epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
    for (unsigned k = c->base; k < c->base + c->nslots; k++)
        if (g.slots[k].busy) {
            g.res->send_failed++;
            complete(c, &g.slots[k], now, false, 0, false);
        }
}

/* One pass: waits for events (at most timeout_ms), handles them, flushes. */
static void loop_once(int timeout_ms)
{
    struct epoll_event ev[MAX_CONNS + 1];
    int n = epoll_wait(g.ep, ev, MAX_CONNS + 1, timeout_ms);
    uint64_t now = now_ns();
    for (int i = 0; i < n; i++) {
        if (ev[i].data.ptr == NULL) { /* the pacing timer */
            uint64_t exp;
            if (read(g.tfd, &exp, sizeof(exp)) < 0 && errno != EAGAIN)
                continue;
            pace_run(now_ns());
            continue;
        }
        struct conn *c = ev[i].data.ptr;
        if (c->st == C_CLOSED)
            continue;
        if ((ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && conn_read(c) != 0)
            conn_fail(c, now);
    }
    now = now_ns();
    for (unsigned i = 0; i < opt.conns; i++) {
        struct conn *c = &g.conns[i];
        if (c->st != C_CLOSED && c->out.len > c->out.off && conn_flush(c, now) != 0)
            conn_fail(c, now);
    }
}

static int conn_open(struct conn *c)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port) };
    if (inet_pton(AF_INET, opt.addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "hss_rawload: -a %s: not an IPv4 address\n", opt.addr);
        return -1;
    }
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "hss_rawload: connect to %s:%u: %s\n", opt.addr, opt.port,
                strerror(errno));
        return -1;
    }
    /* requests are batched by the loop: Nagle would only delay them */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
    if (epoll_ctl(g.ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        return -1;
    c->st = C_CER;
    return queue_base(c, CMD_CE, 0, true, 0x43455200u + c->idx, 0x43455200u + c->idx, 0);
}

static int setup(void)
{
    g.res = calloc(1, sizeof(*g.res));
    g.slots = calloc(MAX_WINDOW, sizeof(*g.slots));
    g.ep = epoll_create1(EPOLL_CLOEXEC);
    g.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (!g.res || !g.slots || g.ep < 0 || g.tfd < 0)
        return -1;
    struct epoll_event tev = { .events = EPOLLIN, .data.ptr = NULL };
    if (epoll_ctl(g.ep, EPOLL_CTL_ADD, g.tfd, &tev) != 0)
        return -1;
    g.boot = (uint32_t)time(NULL);
    g.rng = now_ns() ^ ((uint64_t)getpid() << 32);
    if (g.rng == 0)
        g.rng = 1;
    if (opt.record) {
        g.record_fd = open(opt.record, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (g.record_fd < 0) {
            fprintf(stderr, "hss_rawload: %s: %s\n", opt.record, strerror(errno));
            return -1;
        }
    }
    unsigned base = 0;
    for (unsigned i = 0; i < opt.conns; i++) {
        struct conn *c = &g.conns[i];
        c->fd = -1;
        c->idx = i;
        snprintf(c->id, sizeof(c->id), "%s%u.ims.bench", opt.prefix, i + 1);
        c->base = base;
        c->nslots = opt.window / opt.conns + (i < opt.window % opt.conns ? 1 : 0);
        base += c->nslots;
        c->in = malloc(IN_CAP);
        c->free_slots = calloc(c->nslots, sizeof(*c->free_slots));
        if (!c->in || !c->free_slots)
            return -1;
        for (unsigned k = 0; k < c->nslots; k++)
            c->free_slots[c->nfree++] = c->base + c->nslots - 1 - k;
        if (conn_open(c) != 0)
            return -1;
    }
    /* capabilities exchange: every connection open within 10 s */
    uint64_t give_up = now_ns() + 10000000000u;
    for (;;) {
        unsigned open_ = 0;
        for (unsigned i = 0; i < opt.conns; i++) {
            if (g.conns[i].st == C_CLOSED)
                return -1;
            open_ += g.conns[i].st == C_OPEN;
        }
        if (open_ == opt.conns)
            return 0;
        if (now_ns() >= give_up) {
            fprintf(stderr, "hss_rawload: no CEA from %s within 10 s\n", opt.hss);
            return -1;
        }
        loop_once(100);
    }
}

/* Runs the load: until end_ns, then until every request is done. */
static void run(void)
{
    uint64_t t0 = now_ns();
    g.warm_end_ns = t0 + (uint64_t)(opt.warmup * 1e9);
    g.end_ns = g.warm_end_ns + (uint64_t)(opt.seconds * 1e9);
    if (opt.rate > 0) {
        pace.t0 = t0;
        pace.interval = 1e9 / opt.rate;
        pace.tick = (uint64_t)opt.tick_us * 1000u;
        pace_run(now_ns());
    } else {
        for (unsigned i = 0; i < opt.conns; i++) {
            struct conn *c = &g.conns[i];
            while (c->nfree > 0)
                if (send_on_slot(c, &g.slots[c->free_slots[--c->nfree]], 0, now_ns()) == 0)
                    g.active++;
        }
    }
    uint64_t give_up = g.end_ns + (uint64_t)opt.timeout_ms * 1000000u + 2000000000u;
    uint64_t next_expire = 0;
    for (;;) {
        uint64_t now = now_ns();
        if (now >= g.end_ns && outstanding() == 0)
            break;
        if (now >= give_up) {
            fprintf(stderr, "hss_rawload: %u requests never completed\n", outstanding());
            break;
        }
        if (now >= next_expire) {
            expire(now);
            next_expire = now + 50000000u;
        }
        loop_once(opt.rate > 0 ? 50 : 20);
    }
}

/* DPR on every open connection, up to a second for the DPAs, then close. */
static void finish(void)
{
    for (unsigned i = 0; i < opt.conns; i++) {
        struct conn *c = &g.conns[i];
        if (c->st == C_OPEN && queue_base(c, CMD_DP, 0, true, 0x44505200u + i, 0x44505200u + i,
                                          0) == 0)
            c->st = C_DPR;
    }
    uint64_t give_up = now_ns() + 1000000000u;
    for (;;) {
        bool pending = false;
        for (unsigned i = 0; i < opt.conns; i++)
            pending |= g.conns[i].st == C_DPR;
        if (!pending || now_ns() >= give_up)
            break;
        loop_once(50);
    }
    for (unsigned i = 0; i < opt.conns; i++) {
        struct conn *c = &g.conns[i];
        if (c->fd >= 0)
            close(c->fd);
        free(c->in);
        free(c->out.p);
        free(c->free_slots);
    }
}

/* ------------------------------------------------------------ report */

static unsigned long long pct(const struct ls_result *r, double p)
{
    return (unsigned long long)ls_pct(r, p);
}

static unsigned long long lag_pct(const struct ls_result *r, double p)
{
    return (unsigned long long)ls_lag_pct(r, p);
}

typedef unsigned long long ull;

static void report(const struct ls_result *r)
{
    double rate = (double)r->ok / opt.seconds;
    printf("hss_rawload: sent %llu, answered %u: %llu (%.0f/s), errors %llu (busy %llu, "
           "timeouts %llu, bad vectors %llu, malformed %llu, send failures %llu)\n",
           (ull)r->sent, opt.expect, (ull)r->ok, rate, (ull)r->errors, (ull)r->busy,
           (ull)r->timeouts, (ull)r->bad_vectors, (ull)r->malformed, (ull)r->send_failed);
    if (opt.rate > 0)
        printf("hss_rawload: open loop, offered %.0f/s: scheduled %llu, sent %llu, skipped "
               "(cap of %u reached) %llu, late (> tick + 1 ms behind the schedule) %llu; "
               "send lag us: p50 %llu p99 %llu max %llu; sends queued behind a socket full "
               "> 1 ms %llu (longest %llu us)\n",
               opt.rate, (ull)r->scheduled, (ull)r->sent, opt.window, (ull)r->skipped,
               (ull)r->late, lag_pct(r, 0.5), lag_pct(r, 0.99), (ull)r->lag_max_us,
               (ull)r->send_slow, (ull)r->send_max_us);
    for (int i = 0; i < MAX_CODES && r->ncode[i]; i++)
        printf("hss_rawload: result code %u: %llu\n", r->code[i], (ull)r->ncode[i]);
    printf("hss_rawload: latency us: mean %.0f p50 %llu p90 %llu p99 %llu p99.9 %llu max %llu\n",
           r->ok ? (double)r->lat_sum_us / (double)r->ok : 0.0, pct(r, 0.50), pct(r, 0.90),
           pct(r, 0.99), pct(r, 0.999), (ull)r->lat_max_us);
    printf("result scenario=%s conns=%u window=%u seconds=%.1f sent=%llu ok=%llu errors=%llu "
           "busy=%llu timeouts=%llu bad_vectors=%llu rate=%.0f p50_us=%llu p90_us=%llu "
           "p99_us=%llu p999_us=%llu max_us=%llu client_cpu_s=%.2f mode=%s offered=%.0f "
           "scheduled=%llu skipped=%llu late=%llu lag_p99_us=%llu lag_max_us=%llu "
           "send_slow=%llu malformed=%llu client=raw%s\n",
           scenario_name[opt.sc], opt.conns, opt.window, opt.seconds, (ull)r->sent, (ull)r->ok,
           (ull)r->errors, (ull)r->busy, (ull)r->timeouts, (ull)r->bad_vectors, rate,
           pct(r, 0.50), pct(r, 0.90), pct(r, 0.99), pct(r, 0.999), (ull)r->lat_max_us,
           r->cpu_s, opt.rate > 0 ? "open" : "closed", opt.rate, (ull)r->scheduled,
           (ull)r->skipped, (ull)r->late, lag_pct(r, 0.99), (ull)r->lag_max_us,
           (ull)r->send_slow, (ull)r->malformed, opt_unbatched ? "-unbatched" : "");
}

static int usage(void)
{
    fprintf(stderr,
            "usage: hss_rawload -H HSS_ID -p PORT -s mar-digest|mar-aka|sar-reg|sar-rereg\n"
            "                   -N SUBS [-d RUN_DIR] [-a ADDR] [-F FIRST] [-c CONNS] [-w WINDOW]\n"
            "                   [-t SECONDS] [-W WARMUP] [-r|--rate RATE] [-P TICK_US]\n"
            "                   [-n ITEMS] [-T TIMEOUT_MS] [-R FILE] [-V] [-e] [-i PREFIX]\n"
            "                   [-x RESULT_CODE] [-v]\n"
            "  hss_load's options and result line, over plain TCP from one thread:\n"
            "  -H, -p, -a     the HSS's Diameter identity, port, IPv4 address (127.0.0.1)\n"
            "  -d RUN_DIR     accepted for hss_load's command line, not used\n"
            "  -N, -F         SUBS subscribers of hss_bench.h from number FIRST (0)\n"
            "  -c CONNS       TCP connections (Diameter identities), 1..%d (1)\n"
            "  -w WINDOW      outstanding requests over all connections, 1..%d (64):\n"
            "                 closed loop: always that many; open loop: a cap, a request\n"
            "                 due while its connection's share is reached is skipped (an error)\n"
            "  -r, --rate R   open loop: R requests/s over all connections on a fixed\n"
            "                 schedule, latency from the scheduled time (default: closed loop)\n"
            "  -P TICK_US     open loop: the loop wakes at most this often to send (1000)\n"
            "  -t, -W         measured seconds (10) after warm-up seconds (0)\n"
            "  -n ITEMS       SIP-Number-Auth-Items of mar-aka, 1..%d (1)\n"
            "  -T TIMEOUT_MS  request timeout (5000)\n"
            "  -V             check every answer as the UE would; -R FILE also records SQNs\n"
            "  -e             errors expected (closed loop): a slot stops at its first failure\n"
            "  -i PREFIX      Diameter identities PREFIX<k>.ims.bench (bench)\n"
            "  -x CODE        the Result-Code that counts as answered (2001)\n"
            "  -B             one write() per request (default: one per connection and\n"
            "                 loop pass, i.e. per pacing tick or per read of answers)\n"
            "  -v             say what happens on stderr\n",
            MAX_CONNS, MAX_WINDOW, MAX_ITEMS);
    return 2;
}

static int parse_args(int argc, char **argv)
{
    int o;
    const char *sc = NULL;
    static const struct option lopts[] = { { "rate", required_argument, NULL, 'r' },
                                           { NULL, 0, NULL, 0 } };
    while ((o = getopt_long(argc, argv, LOAD_OPTSTRING "Bv", lopts, NULL)) != -1) {
        if (ls_opt(&opt, o, optarg, &sc))
            continue; /* -d (hss_load's freeDiameter directory) is taken and unused */
        if (o == 'B')
            opt_unbatched = true;
        else if (o == 'v')
            opt_debug = true;
        else
            return -1;
    }
    if (optind != argc || ls_opts_check(&opt, sc, MAX_ITEMS) != 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) != 0)
        return usage();
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); /* 1 us: the default 50 us blurs -P */
    if (setup() != 0) {
        fprintf(stderr, "hss_rawload: a connection failed (see above)\n");
        return 1;
    }
    if (opt_debug)
        fprintf(stderr, "hss_rawload: %u connection(s) open to %s\n", opt.conns, opt.hss);
    if (opt.rate > 0)
        printf("hss_rawload: %s, %u subscribers from u%07u, %u connection(s), open loop at "
               "%.0f/s (cap %u outstanding, tick %u us), %.0f s warm-up + %.0f s\n",
               scenario_name[opt.sc], opt.subs, opt.first, opt.conns, opt.rate, opt.window,
               opt.tick_us, opt.warmup, opt.seconds);
    else
        printf("hss_rawload: %s, %u subscribers from u%07u, %u connection(s), window %u, "
               "%.0f s warm-up + %.0f s\n",
               scenario_name[opt.sc], opt.subs, opt.first, opt.conns, opt.window, opt.warmup,
               opt.seconds);
    fflush(stdout);
    run();
    finish();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    struct ls_result *r = g.res;
    r->cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    report(r);
    bool pass = r->ok > 0 && (opt.errors_ok || (r->errors == 0 && r->bad_vectors == 0));
    if (g.record_fd >= 0)
        close(g.record_fd);
    close(g.tfd);
    close(g.ep);
    free(g.slots);
    free(g.res);
    return pass ? 0 : 1;
}
