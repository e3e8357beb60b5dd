/*
 * protos_send - runs the PROTOS c07-sip test cases against a SIP server over UDP.
 *
 *   protos_send [options] CASE_DIR
 *     --host IP          server address, IPv4 or IPv6 without brackets (127.0.0.1)
 *     --port N           server port (5060)
 *     --local IP         local address to send from (the loopback of --host's family)
 *     --to USER@HOST     what <To> becomes (default protos@HOST: not the server itself,
 *                        so a proxy forwards the INVITE along its routes)
 *     --first N --last M case range (0 .. 4526)
 *     --sink PORT        also listen on LOCAL:PORT and answer every request that arrives
 *                        there (what the server forwarded) with 404 (CANCEL: 481), so the
 *                        server's client transactions end quickly
 *     --no-teardown      do not send the CANCEL and ACK teardown after each INVITE
 *     --probe-every K    OPTIONS liveness probe after every K-th case (1)
 *     --timeout-ms T     wait per probe try (1000)
 *     --tries N          probe sends per case before giving up (5)
 *     --loopback-guard   rewrite valid non-127/8 IPv4 addresses in Via lines to
 *                        127.0.0.1 (use when not inside a private network namespace,
 *                        so no reply can ever leave this host)
 *
 * Case file format (tests/e2e/data/protos-c07-sip-r2.tar.xz, README.md there):
 * "<decimal length> <bytes>" twice: the INVITE, then the teardown template in
 * which <Teardown-Method> is CANCEL, then ACK. Placeholders are filled as the
 * suite's own injector did; everything else in a case is fuzz data and sent
 * unchanged. Datagrams are capped at 65507 bytes.
 *
 * Exit: 0 if the server answered every probe; 1 naming the first case after
 * which it did not; 2 on usage or setup errors. The last line reads
 * "N passed, M failed".
 */
#define _GNU_SOURCE /* memmem */
#include "e2e_sip.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define NCASES 4527

struct opts {
    const char *host, *local, *to, *dir;
    unsigned port, sink_port;
    long first, last;
    int teardown, probe_every, timeout_ms, tries, loopback_guard;
};

/* ---- the sink: the server's next hop for forwarded requests ---- */

struct sink {
    int fd;
    atomic_int stop;
    atomic_long requests, answered;
};

/* Appends every header line of req named name/compact to out, verbatim. */
static void copy_headers(struct e2e_text *out, const char *req, size_t len, const char *name,
                         const char *compact, int add_tag)
{
    const char *p = memchr(req, '\n', len);
    const char *end = req + len;
    if (!p)
        return;
    p++;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        size_t n = (size_t)(le - p);
        if (n && p[n - 1] == '\r')
            n--;
        if (n == 0)
            break;
        size_t l = strlen(name), c = compact ? strlen(compact) : 0;
        int hit = (n > l && strncasecmp(p, name, l) == 0 && (p[l] == ':' || p[l] == ' ')) ||
                  (c && n > c && strncasecmp(p, compact, c) == 0 && (p[c] == ':' || p[c] == ' '));
        if (hit) {
            e2e_text_add(out, p, n);
            if (add_tag && !memmem(p, n, "tag=", 4))
                e2e_text_adds(out, ";tag=protos-sink");
            e2e_text_adds(out, "\r\n");
        }
        if (!nl)
            break;
        p = nl + 1;
    }
}

static void *sink_main(void *arg)
{
    struct sink *s = arg;
    static char buf[E2E_MAX_DGRAM + 1];

    while (!atomic_load(&s->stop)) {
        struct sockaddr_storage from;
        long n = e2e_recv(s->fd, buf, 100, &from);
        if (n <= 0)
            continue;
        if (e2e_status(buf, (size_t)n))
            continue; /* a response: nothing to do */
        atomic_fetch_add(&s->requests, 1);
        const char *sp = memchr(buf, ' ', (size_t)n);
        size_t mlen = sp ? (size_t)(sp - buf) : 0;
        if (mlen == 3 && memcmp(buf, "ACK", 3) == 0)
            continue;
        struct e2e_text r = {0};
        e2e_text_adds(&r, mlen == 6 && memcmp(buf, "CANCEL", 6) == 0
                              ? "SIP/2.0 481 Call/Transaction Does Not Exist\r\n"
                              : "SIP/2.0 404 Not Found\r\n");
        size_t start = r.len;
        copy_headers(&r, buf, (size_t)n, "Via", "v", 0);
        if (r.len == start) { /* no Via: cannot answer */
            e2e_text_free(&r);
            continue;
        }
        copy_headers(&r, buf, (size_t)n, "From", "f", 0);
        copy_headers(&r, buf, (size_t)n, "To", "t", 1);
        copy_headers(&r, buf, (size_t)n, "Call-ID", "i", 0);
        copy_headers(&r, buf, (size_t)n, "CSeq", NULL, 0);
        e2e_text_adds(&r, "Content-Length: 0\r\n\r\n");
        /* Answer where it came from (the server), whatever the Via says. */
        if (r.len <= E2E_MAX_DGRAM && e2e_send(s->fd, &from, r.p, r.len) == 0)
            atomic_fetch_add(&s->answered, 1);
        e2e_text_free(&r);
    }
    return NULL;
}

/* ---- response tally ---- */

struct tally {
    long by_code[700];
    long non_sip;
};

static void tally_other(int status, const char *buf, size_t len, void *arg)
{
    struct tally *t = arg;
    (void)buf;
    (void)len;
    if (status > 0 && status < 700)
        t->by_code[status]++;
    else
        t->non_sip++;
}

/* ---- case files ---- */

/* Parses "<len> <bytes>" at *p; 0 and the slice, or -1. */
static int take_block(const char **p, const char *end, const char **out, size_t *outlen)
{
    const char *q = *p;
    size_t n = 0;
    if (q >= end || !isdigit((unsigned char)*q))
        return -1;
    while (q < end && isdigit((unsigned char)*q)) {
        n = n * 10 + (size_t)(*q - '0');
        if (n > 10 * 1024 * 1024)
            return -1;
        q++;
    }
    if (q >= end || *q != ' ')
        return -1;
    q++;
    if ((size_t)(end - q) < n)
        return -1;
    *out = q;
    *outlen = n;
    *p = q + n;
    return 0;
}

static int valid_octet(const char *p, size_t n)
{
    if (n == 0 || n > 3)
        return 0;
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (p[i] - '0');
    return v <= 255;
}

/* --loopback-guard: in Via lines, a valid IPv4 address outside 127/8 becomes 127.0.0.1. */
static int guard_vias(struct e2e_text *m)
{
    int changed = 0;
    struct e2e_text out = {0};
    const char *p = m->p, *end = m->p + m->len;
    int in_headers = 1, line_start = 1, in_via = 0;

    while (p < end) {
        if (line_start) {
            in_via = in_headers && (strncasecmp(p, "Via", 3) == 0 || strncasecmp(p, "v:", 2) == 0 ||
                                    strncasecmp(p, "v ", 2) == 0);
            if (*p == '\r' || *p == '\n')
                in_headers = 0;
            line_start = 0;
        }
        if (in_via && isdigit((unsigned char)*p) && (p == m->p || !isdigit((unsigned char)p[-1]))) {
            /* try to read a.b.c.d */
            const char *q = p, *oct[4];
            size_t len[4];
            int ok = 1;
            for (int k = 0; k < 4 && ok; k++) {
                oct[k] = q;
                while (q < end && isdigit((unsigned char)*q))
                    q++;
                len[k] = (size_t)(q - oct[k]);
                ok = valid_octet(oct[k], len[k]);
                if (k < 3) {
                    if (ok && q < end && *q == '.')
                        q++;
                    else
                        ok = 0;
                }
            }
            if (ok && !(q < end && (isdigit((unsigned char)*q) || *q == '.')) &&
                !(len[0] == 3 && memcmp(oct[0], "127", 3) == 0)) {
                e2e_text_adds(&out, "127.0.0.1");
                p = q;
                changed = 1;
                continue;
            }
        }
        if (*p == '\n')
            line_start = 1;
        e2e_text_add(&out, p, 1);
        p++;
    }
    e2e_text_free(m);
    *m = out;
    return changed;
}

static void usage(void)
{
    fprintf(stderr, "usage: protos_send [--host IP] [--port N] [--local IP] [--to USER@HOST]\n"
                    "       [--first N] [--last M] [--sink PORT] [--no-teardown]\n"
                    "       [--probe-every K] [--timeout-ms T] [--tries N] [--loopback-guard]"
                    " CASE_DIR\n");
    exit(2);
}

static long num_arg(const char *s)
{
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (errno || *e || v < 0)
        usage();
    return v;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.host = "127.0.0.1",
                       .local = NULL,
                       .port = 5060,
                       .first = 0,
                       .last = NCASES - 1,
                       .teardown = 1,
                       .probe_every = 1,
                       .timeout_ms = 1000,
                       .tries = 5};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-teardown")) {
            o->teardown = 0;
        } else if (!strcmp(a, "--loopback-guard")) {
            o->loopback_guard = 1;
        } else if (a[0] == '-' && a[1] == '-') {
            if (!v)
                usage();
            i++;
            if (!strcmp(a, "--host"))
                o->host = v;
            else if (!strcmp(a, "--local"))
                o->local = v;
            else if (!strcmp(a, "--to"))
                o->to = v;
            else if (!strcmp(a, "--port"))
                o->port = (unsigned)num_arg(v);
            else if (!strcmp(a, "--sink"))
                o->sink_port = (unsigned)num_arg(v);
            else if (!strcmp(a, "--first"))
                o->first = num_arg(v);
            else if (!strcmp(a, "--last"))
                o->last = num_arg(v);
            else if (!strcmp(a, "--probe-every"))
                o->probe_every = (int)num_arg(v);
            else if (!strcmp(a, "--timeout-ms"))
                o->timeout_ms = (int)num_arg(v);
            else if (!strcmp(a, "--tries"))
                o->tries = (int)num_arg(v);
            else
                usage();
        } else if (!o->dir) {
            o->dir = a;
        } else {
            usage();
        }
    }
    if (!o->dir || o->port == 0 || o->port > 65535 || o->sink_port > 65535 ||
        o->last >= NCASES || o->first > o->last || o->probe_every < 1 || o->tries < 1)
        usage();
}

int main(int argc, char **argv)
{
    struct opts o;
    parse_args(argc, argv, &o);

    struct sockaddr_storage server, local;
    if (e2e_addr(o.host, (uint16_t)o.port, &server) < 0)
        return 2;
    if (!o.local)
        o.local = e2e_loopback_of(&server);
    int fd = e2e_udp_open(o.local, 0, &local);
    if (fd < 0)
        return 2;

    struct sink sink = {.fd = -1};
    pthread_t sink_thread;
    if (o.sink_port) {
        struct sockaddr_storage sa;
        sink.fd = e2e_udp_open(o.local, (uint16_t)o.sink_port, &sa);
        if (sink.fd < 0)
            return 2;
        if (pthread_create(&sink_thread, NULL, sink_main, &sink) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 2;
        }
    }

    char lip[E2E_HOST_MAX], shost[E2E_HOST_MAX], lport[8], to[256], from[256], nonce[32];
    snprintf(lip, sizeof(lip), "%s", e2e_ip(&local));
    snprintf(shost, sizeof(shost), "%s", e2e_ip(&server));
    snprintf(lport, sizeof(lport), "%u", e2e_port(&local));
    if (o.to)
        snprintf(to, sizeof(to), "%s", o.to);
    else
        snprintf(to, sizeof(to), "protos@%s", shost);
    snprintf(from, sizeof(from), "protos@%s", lip);
    snprintf(nonce, sizeof(nonce), "%ld", (long)getpid());

    struct tally tally;
    memset(&tally, 0, sizeof(tally));
    long passed = 0, failed = 0, guarded = 0;
    int rc = 0;

    fprintf(stderr, "protos_send: cases %ld..%ld to %s:%u from %s:%s%s\n", o.first, o.last, shost,
            o.port, lip, lport, o.teardown ? ", with CANCEL/ACK teardown" : "");

    for (long c = o.first; c <= o.last; c++) {
        char path[4096], callid[64], cseq[24], branch[48], ptag[64];
        snprintf(path, sizeof(path), "%s/%07ld", o.dir, c);
        size_t flen;
        char *file = e2e_read_file(path, &flen);
        if (!file) {
            fprintf(stderr, "case %07ld: cannot read %s: %s\n", c, path, strerror(errno));
            rc = 2;
            break;
        }
        const char *p = file, *end = file + flen, *inv, *td;
        size_t inv_len, td_len;
        if (take_block(&p, end, &inv, &inv_len) < 0 || take_block(&p, end, &td, &td_len) < 0) {
            fprintf(stderr, "case %07ld: %s is not two <len> <bytes> blocks\n", c, path);
            free(file);
            rc = 2;
            break;
        }
        snprintf(callid, sizeof(callid), "%ld-%s", c, nonce);
        snprintf(cseq, sizeof(cseq), "%ld", c + 1);
        snprintf(branch, sizeof(branch), "-%s", nonce);
        struct e2e_subst subs[] = {
            {"<To>", to},          {"<From>", from},         {"<From-Address>", lip},
            {"<From-IP>", lip},    {"<Local-Port>", lport},  {"<Call-ID>", callid},
            {"<CSeq>", cseq},      {"<Branch-ID>", branch},  {"<Teardown-Method>", NULL},
        };
        size_t nsubs = sizeof(subs) / sizeof(subs[0]);

        struct e2e_text msg = {0};
        e2e_substitute(&msg, inv, inv_len, subs, nsubs - 1, 1);
        if (o.loopback_guard && guard_vias(&msg))
            guarded++;
        int bad = e2e_send(fd, &server, msg.p, msg.len > E2E_MAX_DGRAM ? E2E_MAX_DGRAM : msg.len);
        e2e_text_free(&msg);

        static const char *const teardown[] = {"CANCEL", "ACK"};
        for (int k = 0; o.teardown && !bad && k < 2; k++) {
            subs[nsubs - 1].value = teardown[k];
            e2e_substitute(&msg, td, td_len, subs, nsubs, 1);
            if (o.loopback_guard)
                guard_vias(&msg);
            bad = e2e_send(fd, &server, msg.p, msg.len > E2E_MAX_DGRAM ? E2E_MAX_DGRAM : msg.len);
            e2e_text_free(&msg);
        }
        free(file);
        if (bad) {
            rc = 2;
            break;
        }

        if ((c - o.first + 1) % o.probe_every != 0 && c != o.last) {
            passed++;
            continue;
        }
        snprintf(ptag, sizeof(ptag), "%ld-%s", c, nonce);
        int pr = e2e_options_probe(fd, &server, &local, ptag, o.timeout_ms, o.tries, tally_other,
                                   &tally);
        if (pr != 0) {
            failed++;
            fprintf(stderr, "FAIL: case %07ld (%s): %s after %d OPTIONS probes of %d ms\n", c,
                    path, pr > 0 ? "no 200" : "no answer", o.tries, o.timeout_ms);
            rc = 1;
            break;
        }
        passed++;
        if ((c - o.first + 1) % 1000 == 0)
            fprintf(stderr, "protos_send: %ld cases done\n", c - o.first + 1);
    }

    /* Late answers to the last cases: collect briefly, for the tally only. */
    static char buf[E2E_MAX_DGRAM + 1];
    struct sockaddr_storage fromaddr;
    long n;
    while ((n = e2e_recv(fd, buf, 300, &fromaddr)) > 0)
        tally_other(e2e_status(buf, (size_t)n), buf, (size_t)n, &tally);

    if (o.sink_port) {
        atomic_store(&sink.stop, 1);
        pthread_join(sink_thread, NULL);
        close(sink.fd);
        fprintf(stderr, "sink: %ld requests forwarded by the server, %ld answered\n",
                atomic_load(&sink.requests), atomic_load(&sink.answered));
    }
    if (guarded)
        fprintf(stderr, "loopback guard rewrote Via addresses in %ld cases\n", guarded);
    fprintf(stderr, "responses to the cases:");
    for (int s = 0; s < 700; s++)
        if (tally.by_code[s])
            fprintf(stderr, " %d x%ld", s, tally.by_code[s]);
    if (tally.non_sip)
        fprintf(stderr, " non-SIP x%ld", tally.non_sip);
    fprintf(stderr, "\n");
    close(fd);
    fflush(stderr);
    printf("%ld passed, %ld failed\n", passed, failed);
    return rc;
}
