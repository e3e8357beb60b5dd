#include "crypto/encode.h"

#include "base/err.h"

static const char hexdig[] = "0123456789abcdef";

size_t ims_hex_encode(const void *p, size_t n, char *out)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[b[i] >> 4];
        out[2 * i + 1] = hexdig[b[i] & 15];
    }
    out[2 * n] = '\0';
    return 2 * n;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ims_hex_decode(ims_str hex, void *out, size_t outlen)
{
    uint8_t *o = out;
    if (hex.len != 2 * outlen)
        return IMS_EPROTO;
    for (size_t i = 0; i < outlen; i++) {
        int hi = hexval((unsigned char)hex.p[2 * i]);
        int lo = hexval((unsigned char)hex.p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return IMS_EPROTO;
        o[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static const char b64dig[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t ims_b64_encode(const void *p, size_t n, char *out)
{
    const uint8_t *b = p;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
        out[o++] = b64dig[v >> 18];
        out[o++] = b64dig[(v >> 12) & 63];
        out[o++] = b64dig[(v >> 6) & 63];
        out[o++] = b64dig[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)b[i] << 16;
        out[o++] = b64dig[v >> 18];
        out[o++] = b64dig[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8;
        out[o++] = b64dig[v >> 18];
        out[o++] = b64dig[(v >> 12) & 63];
        out[o++] = b64dig[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int ims_b64_decode(ims_str s, void *out, size_t cap, size_t *outlen)
{
    uint8_t *o = out;
    size_t n = 0;
    if (s.len % 4)
        return IMS_EPROTO;
    for (size_t i = 0; i < s.len; i += 4) {
        int v[4];
        size_t pad = 0;
        for (int j = 0; j < 4; j++) {
            unsigned char c = (unsigned char)s.p[i + j];
            if (c == '=' && i + 4 == s.len && j >= 2) {
                v[j] = 0;
                pad++;
                continue;
            }
            if (pad) /* data after '=' */
                return IMS_EPROTO;
            v[j] = b64val(c);
            if (v[j] < 0)
                return IMS_EPROTO;
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        size_t take = 3 - pad;
        /* Canonical form only: the bits dropped by padding must be zero. */
        if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
            return IMS_EPROTO;
        if (n + take > cap)
            return IMS_ELIMIT;
        o[n++] = (uint8_t)(w >> 16);
        if (take > 1)
            o[n++] = (uint8_t)(w >> 8);
        if (take > 2)
            o[n++] = (uint8_t)w;
    }
    *outlen = n;
    return 0;
}
