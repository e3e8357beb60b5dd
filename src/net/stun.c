/* stun.c - the STUN Binding answer for RFC 5626 keep-alives (stun.h). */
#include "net/stun.h"

#include <netinet/in.h>
#include <string.h>

#define COOKIE 0x2112A442u
#define FP_XOR 0x5354554eu /* RFC 8489 §14.7 */

enum {
    T_BINDING_REQUEST = 0x0001,
    T_BINDING_SUCCESS = 0x0101,
    T_BINDING_ERROR = 0x0111,
    A_MAPPED_ADDRESS = 0x0001,
    A_CHANGE_REQUEST = 0x0003, /* RFC 5780 §7.2 (RFC 3489 before it) */
    A_USERNAME = 0x0006,
    A_MESSAGE_INTEGRITY = 0x0008,
    A_ERROR_CODE = 0x0009,
    A_UNKNOWN_ATTRIBUTES = 0x000A,
    A_REALM = 0x0014,
    A_NONCE = 0x0015,
    A_MESSAGE_INTEGRITY_SHA256 = 0x001C,
    A_PASSWORD_ALGORITHM = 0x001D,
    A_USERHASH = 0x001E,
    A_XOR_MAPPED_ADDRESS = 0x0020,
    A_FINGERPRINT = 0x8028,
};

#define MAX_UNKNOWN 8

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

/* CRC-32 (ISO 3309, the one FINGERPRINT uses), bitwise: keep-alives are a
 * few dozen bytes, a table would cost more cache than it saves. */
static uint32_t crc32_iso(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

bool ims_stun_looks_like(const uint8_t *p, size_t n)
{
    return n >= IMS_STUN_HDR && (p[0] & 0xC0) == 0 && get16(p + 2) % 4 == 0 &&
           (size_t)get16(p + 2) + IMS_STUN_HDR == n;
}

/* Attributes we understand or may ignore without authentication. */
static bool known(uint16_t t)
{
    switch (t) {
    case A_USERNAME:
    case A_MESSAGE_INTEGRITY:
    case A_REALM:
    case A_NONCE:
    case A_MESSAGE_INTEGRITY_SHA256:
    case A_PASSWORD_ALGORITHM:
    case A_USERHASH: return true;
    default: return false;
    }
}

/* Appends an attribute header and returns where its value goes. */
static uint8_t *attr(uint8_t *out, size_t *len, uint16_t type, uint16_t vlen)
{
    uint8_t *a = out + *len;
    put16(a, type);
    put16(a + 2, vlen);
    memset(a + 4, 0, (size_t)(vlen + 3) & ~(size_t)3);
    *len += 4 + ((size_t)(vlen + 3) & ~(size_t)3);
    return a + 4;
}

/* (XOR-)MAPPED-ADDRESS of src.  False for a family STUN cannot carry. */
static bool put_address(uint8_t *out, size_t *len, const struct ims_addr *src, bool xor_)
{
    const void *ip;
    size_t iplen;
    uint8_t family;
    if (ims_addr_family(src) == AF_INET) {
        ip = &((const struct sockaddr_in *)&src->ss)->sin_addr;
        iplen = 4;
        family = 0x01;
    } else if (ims_addr_family(src) == AF_INET6) {
        ip = &((const struct sockaddr_in6 *)&src->ss)->sin6_addr;
        iplen = 16;
        family = 0x02;
    } else {
        return false;
    }
    uint16_t port = ims_addr_port(src);
    uint8_t *v = attr(out, len, xor_ ? A_XOR_MAPPED_ADDRESS : A_MAPPED_ADDRESS,
                      (uint16_t)(4 + iplen));
    v[1] = family;
    put16(v + 2, xor_ ? (uint16_t)(port ^ (COOKIE >> 16)) : port);
    memcpy(v + 4, ip, iplen);
    if (xor_) /* §14.2: with the cookie (IPv4), cookie || transaction id (IPv6) */
        for (size_t i = 0; i < iplen; i++)
            v[4 + i] ^= out[4 + i];
    return true;
}

size_t ims_stun_answer(const uint8_t *p, size_t n, const struct ims_addr *src,
                       uint8_t out[IMS_STUN_RSP_MAX])
{
    if (!ims_stun_looks_like(p, n) || get16(p) != T_BINDING_REQUEST)
        return 0; /* indications (keep-alives that want no answer), responses, junk */
    bool modern = get32(p + 4) == COOKIE; /* else RFC 3489: a 16-byte transaction id */
    uint16_t unknown[MAX_UNKNOWN];
    size_t nunknown = 0;
    bool fingerprint = false;
    for (size_t off = IMS_STUN_HDR; off < n;) {
        if (n - off < 4 || fingerprint)
            return 0; /* a cut attribute, or one after FINGERPRINT */
        uint16_t t = get16(p + off), vlen = get16(p + off + 2);
        size_t padded = ((size_t)vlen + 3) & ~(size_t)3;
        if (padded > n - off - 4)
            return 0;
        if (t == A_FINGERPRINT) {
            if (vlen != 4 || get32(p + off + 4) != (crc32_iso(p, off) ^ FP_XOR))
                return 0; /* §7.3: not a STUN message after all */
            fingerprint = true;
        } else if (t == A_CHANGE_REQUEST && vlen == 4 && get32(p + off + 4) == 0) {
            /* "change nothing": what an RFC 3489 client's first test sends;
             * asking for another address or port is what we cannot do (420) */
        } else if (t < 0x8000 && !known(t) && nunknown < MAX_UNKNOWN) {
            unknown[nunknown++] = t;
        }
        off += 4 + padded;
    }
    memcpy(out, p, IMS_STUN_HDR); /* type, length (set below), cookie, transaction id */
    size_t len = IMS_STUN_HDR;
    if (nunknown) {
        /* §6.3.1.1: 420 Unknown Attribute, naming them */
        put16(out, T_BINDING_ERROR);
        static const char reason[] = "Unknown Attribute";
        uint8_t *v = attr(out, &len, A_ERROR_CODE, (uint16_t)(4 + sizeof(reason) - 1));
        v[2] = 4;
        v[3] = 20;
        memcpy(v + 4, reason, sizeof(reason) - 1);
        v = attr(out, &len, A_UNKNOWN_ATTRIBUTES, (uint16_t)(2 * nunknown));
        for (size_t i = 0; i < nunknown; i++)
            put16(v + 2 * i, unknown[i]);
    } else {
        put16(out, T_BINDING_SUCCESS);
        if (!put_address(out, &len, src, modern))
            return 0;
    }
    if (fingerprint && modern) {
        put16(out + 2, (uint16_t)(len + 8 - IMS_STUN_HDR));
        uint32_t crc = crc32_iso(out, len) ^ FP_XOR;
        put32(attr(out, &len, A_FINGERPRINT, 4), crc);
    }
    put16(out + 2, (uint16_t)(len - IMS_STUN_HDR));
    return len;
}
