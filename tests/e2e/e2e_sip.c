/*
 * e2e_sip.c - see e2e_sip.h. Test tooling, not product code: it trusts its
 * own inputs, aborts on OOM, and keeps parsing to "find a line that starts
 * with X".
 */
#include "e2e_sip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void e2e_text_free(struct e2e_text *t)
{
    free(t->p);
    t->p = NULL;
    t->len = t->cap = 0;
}

void e2e_text_add(struct e2e_text *t, const void *p, size_t len)
{
    if (t->len + len + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->len + len + 1)
            cap *= 2;
        char *np = realloc(t->p, cap);
        if (!np) {
            fprintf(stderr, "out of memory\n");
            abort();
        }
        t->p = np;
        t->cap = cap;
    }
    if (len)
        memcpy(t->p + t->len, p, len);
    t->len += len;
    t->p[t->len] = '\0';
}

void e2e_text_adds(struct e2e_text *t, const char *s)
{
    e2e_text_add(t, s, strlen(s));
}

static const struct e2e_subst *match_subst(const char *p, size_t left, const struct e2e_subst *subs,
                                           size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(subs[i].name);
        if (l <= left && memcmp(p, subs[i].name, l) == 0)
            return &subs[i];
    }
    return NULL;
}

void e2e_substitute(struct e2e_text *out, const char *in, size_t len, const struct e2e_subst *subs,
                    size_t n, int content_length)
{
    static const char cl_name[] = "<Content-Length>";
    struct e2e_text tmp = {0};
    size_t i = 0;

    while (i < len) {
        const struct e2e_subst *s = in[i] == '<' ? match_subst(in + i, len - i, subs, n) : NULL;
        if (s) {
            e2e_text_adds(&tmp, s->value);
            i += strlen(s->name);
        } else {
            e2e_text_add(&tmp, in + i, 1);
            i++;
        }
    }
    if (!content_length) {
        e2e_text_add(out, tmp.p, tmp.len);
        e2e_text_free(&tmp);
        return;
    }

    /* The body follows the first empty line; placeholders before it do not move it. */
    size_t body = 0;
    for (size_t k = 0; k + 4 <= tmp.len; k++) {
        if (memcmp(tmp.p + k, "\r\n\r\n", 4) == 0) {
            body = tmp.len - (k + 4);
            break;
        }
    }
    char num[32];
    snprintf(num, sizeof(num), "%zu", body);
    struct e2e_subst cl = {cl_name, num};
    e2e_substitute(out, tmp.p, tmp.len, &cl, 1, 0);
    e2e_text_free(&tmp);
}

char *e2e_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct e2e_text t = {0};
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        e2e_text_add(&t, buf, n);
    int err = ferror(f);
    fclose(f);
    if (err) {
        e2e_text_free(&t);
        errno = EIO;
        return NULL;
    }
    if (!t.p)
        e2e_text_add(&t, "", 0);
    *len_out = t.len;
    return t.p;
}

int e2e_addr(const char *ip, uint16_t port, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        return 0;
    }
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        return 0;
    }
    fprintf(stderr, "bad IP address: %s\n", ip);
    return -1;
}

static socklen_t sa_len(const struct sockaddr_storage *a)
{
    return a->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

const char *e2e_loopback_of(const struct sockaddr_storage *a)
{
    return a->ss_family == AF_INET6 ? "::1" : "127.0.0.1";
}

uint16_t e2e_port(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
    return ntohs(((const struct sockaddr_in *)a)->sin_port);
}

int e2e_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family || e2e_port(a) != e2e_port(b))
        return 0;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
           ((const struct sockaddr_in *)b)->sin_addr.s_addr;
}

int e2e_udp_open(const char *ip, uint16_t port, struct sockaddr_storage *bound)
{
    struct sockaddr_storage a;
    if (e2e_addr(ip, port, &a) < 0)
        return -1;
    int fd = socket(a.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("socket");
        return -1;
    }
    /* Large buffers: PROTOS sends up to 64 KiB datagrams back to back. */
    int sz = 4 << 20;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    if (bind(fd, (struct sockaddr *)&a, sa_len(&a)) < 0) {
        fprintf(stderr, "bind %s:%u: %s\n", ip, port, strerror(errno));
        close(fd);
        return -1;
    }
    socklen_t sl = sizeof(*bound);
    if (getsockname(fd, (struct sockaddr *)bound, &sl) < 0) {
        perror("getsockname");
        close(fd);
        return -1;
    }
    return fd;
}

int e2e_send(int fd, const struct sockaddr_storage *to, const void *p, size_t len)
{
    for (;;) {
        ssize_t n = sendto(fd, p, len, 0, (const struct sockaddr *)to, sa_len(to));
        if (n == (ssize_t)len)
            return 0;
        /* ECONNREFUSED is an ICMP error from an earlier datagram: not ours to judge. */
        if (n < 0 && (errno == EINTR || errno == ECONNREFUSED))
            continue;
        fprintf(stderr, "sendto: %s\n", n < 0 ? strerror(errno) : "short write");
        return -1;
    }
}

int64_t e2e_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long e2e_recv(int fd, char *buf, int timeout_ms, struct sockaddr_storage *from)
{
    int64_t end = e2e_now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(end - e2e_now_ms());
        if (left < 0)
            left = 0;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            perror("poll");
            return -1;
        }
        if (r == 0)
            return 0;
        socklen_t sl = sizeof(*from);
        ssize_t n = recvfrom(fd, buf, E2E_MAX_DGRAM, 0, (struct sockaddr *)from, &sl);
        if (n < 0 && (errno == EINTR || errno == ECONNREFUSED || errno == EAGAIN))
            continue;
        if (n < 0) {
            perror("recvfrom");
            return -1;
        }
        buf[n] = '\0';
        if (n == 0)
            continue; /* empty datagram: keep waiting */
        return (long)n;
    }
}

int e2e_status(const char *buf, size_t len)
{
    if (len < 12 || strncasecmp(buf, "SIP/2.0 ", 8) != 0)
        return 0;
    int code = 0;
    for (int i = 8; i < 11; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return 0;
        code = code * 10 + (buf[i] - '0');
    }
    return code;
}

/* Does the line at p (length n) start with "name" then optional blanks then ':'? */
static const char *header_value(const char *p, size_t n, const char *name)
{
    size_t l = strlen(name);
    if (n <= l || strncasecmp(p, name, l) != 0)
        return NULL;
    size_t i = l;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    if (i >= n || p[i] != ':')
        return NULL;
    i++;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    return p + i;
}

int e2e_header(const char *buf, size_t len, const char *name, const char *compact, char *out,
               size_t outsz)
{
    const char *p = buf, *end = buf + len;
    /* skip the start line */
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
        return -1;
    p = nl + 1;
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        size_t n = (size_t)(le - p);
        if (n && p[n - 1] == '\r')
            n--;
        if (n == 0)
            break; /* end of headers */
        const char *v = header_value(p, n, name);
        if (!v && compact)
            v = header_value(p, n, compact);
        if (v) {
            size_t vl = (size_t)(p + n - v);
            if (vl >= outsz)
                vl = outsz - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 0;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    return -1;
}

const char *e2e_ip(const struct sockaddr_storage *a)
{
    static char s[E2E_HOST_MAX];
    if (a->ss_family == AF_INET6) {
        s[0] = '[';
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)a)->sin6_addr, s + 1, sizeof(s) - 2);
        strcat(s, "]");
    } else {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, s, sizeof(s));
    }
    return s;
}

int e2e_options_probe(int fd, const struct sockaddr_storage *server,
                      const struct sockaddr_storage *local, const char *tag, int timeout_ms,
                      int tries, void (*other)(int status, const char *buf, size_t len, void *arg),
                      void *arg)
{
    static unsigned seq;
    static char buf[E2E_MAX_DGRAM + 1];
    char sip[E2E_HOST_MAX], lip[E2E_HOST_MAX];
    char callid[160], msg[1024];
    int got_other_final = 0;

    seq++;
    snprintf(sip, sizeof(sip), "%s", e2e_ip(server));
    snprintf(lip, sizeof(lip), "%s", e2e_ip(local));
    snprintf(callid, sizeof(callid), "probe-%s-%u@%s", tag, seq, lip);
    int n = snprintf(msg, sizeof(msg),
                     "OPTIONS sip:%s:%u SIP/2.0\r\n"
                     "Via: SIP/2.0/UDP %s:%u;branch=z9hG4bK-probe-%s-%u\r\n"
                     "Max-Forwards: 70\r\n"
                     "From: <sip:probe@%s:%u>;tag=probe-%s\r\n"
                     "To: <sip:%s:%u>\r\n"
                     "Call-ID: %s\r\n"
                     "CSeq: %u OPTIONS\r\n"
                     "Content-Length: 0\r\n\r\n",
                     sip, e2e_port(server), lip, e2e_port(local), tag, seq, lip, e2e_port(local),
                     tag, sip, e2e_port(server), callid, seq);

    for (int t = 0; t < tries; t++) {
        if (e2e_send(fd, server, msg, (size_t)n) < 0)
            return -1;
        int64_t end = e2e_now_ms() + timeout_ms;
        for (;;) {
            int left = (int)(end - e2e_now_ms());
            if (left <= 0)
                break;
            struct sockaddr_storage from;
            long r = e2e_recv(fd, buf, left, &from);
            if (r < 0)
                return -1;
            if (r == 0)
                break;
            int st = e2e_status(buf, (size_t)r);
            char cid[160];
            if (st && e2e_header(buf, (size_t)r, "Call-ID", "i", cid, sizeof(cid)) == 0 &&
                strcmp(cid, callid) == 0) {
                if (st == 200)
                    return 0;
                if (st >= 200)
                    got_other_final = st;
                continue;
            }
            if (other)
                other(st, buf, (size_t)r, arg);
        }
    }
    if (got_other_final) {
        fprintf(stderr, "OPTIONS probe got %d instead of 200\n", got_other_final);
        return 1;
    }
    return -1;
}
