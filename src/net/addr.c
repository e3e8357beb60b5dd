/* addr.c - numeric socket addresses and transport names. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "net/transport.h"

int ims_addr_set(struct ims_addr *out, const struct sockaddr *sa, socklen_t len)
{
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        memcpy(&out->ss, sa, sizeof(struct sockaddr_in));
        out->len = sizeof(struct sockaddr_in);
        return 0;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        memcpy(&out->ss, sa, sizeof(struct sockaddr_in6));
        out->len = sizeof(struct sockaddr_in6);
        return 0;
    }
    return IMS_EINVAL;
}

int ims_addr_family(const struct ims_addr *a)
{
    if (a->len == sizeof(struct sockaddr_in) && a->ss.ss_family == AF_INET)
        return AF_INET;
    if (a->len == sizeof(struct sockaddr_in6) && a->ss.ss_family == AF_INET6)
        return AF_INET6;
    return AF_UNSPEC;
}

static int parse_port(ims_str s, uint16_t *out)
{
    uint64_t v;
    if (ims_str_to_u64(s, 65535, &v) != 0)
        return IMS_EPROTO;
    *out = (uint16_t)v;
    return 0;
}

int ims_addr_parse(ims_str s, uint16_t default_port, struct ims_addr *out)
{
    char host[INET6_ADDRSTRLEN + 1];
    ims_str h = s, port = IMS_STR_NULL;
    bool v6 = false, has_port = false;

    if (s.len > 0 && s.p[0] == '[') {
        long rb = ims_str_chr(s, ']');
        if (rb < 0)
            return IMS_EPROTO;
        h = ims_str_make(s.p + 1, (size_t)rb - 1);
        v6 = true;
        size_t rest = (size_t)rb + 1;
        if (rest < s.len) {
            if (s.p[rest] != ':')
                return IMS_EPROTO;
            port = ims_str_make(s.p + rest + 1, s.len - rest - 1);
            has_port = true;
        }
    } else {
        long c = ims_str_chr(s, ':');
        if (c >= 0 && ims_str_chr(ims_str_make(s.p + c + 1, s.len - (size_t)c - 1), ':') >= 0) {
            v6 = true; /* bare IPv6 literal: no port */
        } else if (c >= 0) {
            h = ims_str_make(s.p, (size_t)c);
            port = ims_str_make(s.p + c + 1, s.len - (size_t)c - 1);
            has_port = true;
        }
    }
    if (h.len == 0 || h.len >= sizeof(host))
        return IMS_EPROTO;
    uint16_t pnum = default_port;
    if (has_port && parse_port(port, &pnum) != 0)
        return IMS_EPROTO;
    memcpy(host, h.p, h.len);
    host[h.len] = '\0';

    memset(out, 0, sizeof(*out));
    if (!v6) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            return IMS_EPROTO;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(pnum);
        out->len = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return IMS_EPROTO;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(pnum);
        out->len = sizeof(*sin6);
    }
    return 0;
}

/* v (at most 65535) in decimal at out, no NUL: its length */
static size_t put_dec(unsigned v, char *out)
{
    char d[IMS_U64_DEC_MAX];
    size_t n = ims_u64_dec(v, d);
    memcpy(out, d, n);
    return n;
}

/* "a.b.c.d" of an IPv4 address (network order) into out: its length.  By
 * hand: inet_ntop's and snprintf's formatting showed in the profile of a
 * registration (bench/ims), which prints the UE's address several times. */
static size_t put_ipv4(const struct in_addr *in, char out[INET_ADDRSTRLEN])
{
    const uint8_t *b = (const uint8_t *)&in->s_addr;
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        if (i)
            out[n++] = '.';
        n += put_dec(b[i], out + n);
    }
    out[n] = '\0';
    return n;
}

const char *ims_addr_host(const struct ims_addr *a, char *buf, size_t bufsz)
{
    const void *src;
    int fam = ims_addr_family(a);
    if (fam == AF_INET && bufsz >= INET_ADDRSTRLEN) {
        put_ipv4(&((const struct sockaddr_in *)&a->ss)->sin_addr, buf);
        return buf;
    }
    if (fam == AF_INET)
        src = &((const struct sockaddr_in *)&a->ss)->sin_addr;
    else if (fam == AF_INET6)
        src = &((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
    else
        src = NULL;
    if (!src || !inet_ntop(fam, src, buf, (socklen_t)bufsz))
        snprintf(buf, bufsz, "?");
    return buf;
}

uint16_t ims_addr_port(const struct ims_addr *a)
{
    switch (ims_addr_family(a)) {
    case AF_INET:
        return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    case AF_INET6:
        return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    default:
        return 0;
    }
}

const char *ims_addr_str(const struct ims_addr *a, char *buf, size_t bufsz)
{
    char host[INET6_ADDRSTRLEN];
    int fam = ims_addr_family(a);
    if (fam == AF_UNSPEC) {
        snprintf(buf, bufsz, "?");
        return buf;
    }
    if (fam == AF_INET) {
        char s[INET_ADDRSTRLEN + 6];
        size_t n = put_ipv4(&((const struct sockaddr_in *)&a->ss)->sin_addr, s);
        s[n++] = ':';
        n += put_dec(ims_addr_port(a), s + n);
        ims_str_copy(ims_str_make(s, n), buf, bufsz);
        return buf;
    }
    ims_addr_host(a, host, sizeof(host));
    if (fam == AF_INET6)
        snprintf(buf, bufsz, "[%s]:%u", host, (unsigned)ims_addr_port(a));
    else
        snprintf(buf, bufsz, "%s:%u", host, (unsigned)ims_addr_port(a));
    return buf;
}

bool ims_addr_same_ip(const struct ims_addr *a, const struct ims_addr *b)
{
    int fam = ims_addr_family(a);
    if (fam != ims_addr_family(b))
        return false;
    if (fam == AF_INET)
        return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)&b->ss)->sin_addr.s_addr;
    if (fam == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr,
                      &((const struct sockaddr_in6 *)&b->ss)->sin6_addr,
                      sizeof(struct in6_addr)) == 0;
    return false;
}

bool ims_addr_is_any(const struct ims_addr *a)
{
    if (a->ss.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (a->ss.ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
    return false;
}

bool ims_addr_equal(const struct ims_addr *a, const struct ims_addr *b)
{
    return ims_addr_same_ip(a, b) && ims_addr_port(a) == ims_addr_port(b);
}

const char *ims_proto_name(enum sip_proto p)
{
    switch (p) {
    case SIP_PROTO_UDP:
        return "UDP";
    case SIP_PROTO_TCP:
        return "TCP";
    case SIP_PROTO_TLS:
        return "TLS";
    default:
        return "NONE";
    }
}

int ims_proto_parse(ims_str s, enum sip_proto *out)
{
    if (ims_str_caseeq_lit(s, "UDP"))
        *out = SIP_PROTO_UDP;
    else if (ims_str_caseeq_lit(s, "TCP"))
        *out = SIP_PROTO_TCP;
    else if (ims_str_caseeq_lit(s, "TLS"))
        *out = SIP_PROTO_TLS;
    else
        return IMS_ENOENT;
    return 0;
}

int ims_sockaddr_ip_key(const struct sockaddr *sa, uint8_t ip[16], uint8_t *v6)
{
    memset(ip, 0, 16);
    *v6 = 0;
    if (sa->sa_family == AF_INET) {
        memcpy(ip, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family != AF_INET6)
        return IMS_EINVAL;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a)) {
        memcpy(ip, &a->s6_addr[12], 4);
        return 0;
    }
    memcpy(ip, a->s6_addr, 16);
    *v6 = 1;
    return 0;
}
