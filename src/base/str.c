#include "base/str.h"

#include <string.h>

#include "base/err.h"

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

bool ims_str_caseeq(ims_str a, ims_str b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++)
        if (lower((unsigned char)a.p[i]) != lower((unsigned char)b.p[i]))
            return false;
    return true;
}

bool ims_str_has_casesub(ims_str s, const char *lit)
{
    size_t n = strlen(lit);
    if (n == 0 || s.len < n)
        return false;
    /* A byte of lit that has no case ('-' in "integrity-protected") is
     * found with memchr; the window around each hit is then compared. */
    size_t k = 0;
    while (k < n && lower((unsigned char)lit[k]) >= 'a' && lower((unsigned char)lit[k]) <= 'z')
        k++;
    if (k == n) { /* letters only: the byte by byte walk */
        unsigned char first = lower((unsigned char)lit[0]);
        for (size_t i = 0; i + n <= s.len; i++)
            if (lower((unsigned char)s.p[i]) == first &&
                ims_str_caseeq(ims_str_make(s.p + i, n), ims_str_make(lit, n)))
                return true;
        return false;
    }
    const char *end = s.p + s.len;
    for (const char *q = s.p + k; q < end; q++) {
        q = memchr(q, lit[k], (size_t)(end - q));
        if (!q)
            return false;
        const char *w = q - k;
        if ((size_t)(end - w) < n)
            return false;
        if (ims_str_caseeq(ims_str_make(w, n), ims_str_make(lit, n)))
            return true;
    }
    return false;
}

static bool is_trim(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

ims_str ims_str_trim(ims_str s)
{
    while (s.len && is_trim(s.p[0])) {
        s.p++;
        s.len--;
    }
    while (s.len && is_trim(s.p[s.len - 1]))
        s.len--;
    return ims_str_make(s.p, s.len);
}

long ims_str_chr(ims_str s, char c)
{
    const char *f = s.len ? memchr(s.p, c, s.len) : NULL;
    return f ? (long)(f - s.p) : -1;
}

int ims_str_to_u64(ims_str s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (s.len == 0)
        return IMS_EPROTO;
    for (size_t i = 0; i < s.len; i++) {
        unsigned d = (unsigned char)s.p[i] - '0';
        if (d > 9)
            return IMS_EPROTO;
        if (d > max || v > (max - d) / 10) /* d > max first: max - d would wrap */
            return IMS_EPROTO;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

bool ims_str_has_ctl(ims_str s)
{
    for (size_t i = 0; i < s.len; i++)
        if ((unsigned char)s.p[i] < 0x20 || s.p[i] == 0x7f)
            return true;
    return false;
}

bool ims_str_quotable(ims_str s)
{
    return s.len > 0 && !ims_str_has_ctl(s) && !memchr(s.p, '"', s.len) &&
           !memchr(s.p, '\\', s.len);
}

size_t ims_str_copy(ims_str s, char *dst, size_t dstsz)
{
    if (dstsz) {
        size_t n = s.len < dstsz - 1 ? s.len : dstsz - 1;
        if (n)
            memcpy(dst, s.p, n);
        dst[n] = '\0';
    }
    return s.len;
}

size_t ims_cstr_copy(const char *src, char *dst, size_t dstsz)
{
    return ims_str_copy(ims_str_cstr(src), dst, dstsz);
}

size_t ims_str_join(char *dst, size_t dstsz, const ims_str *parts, size_t n)
{
    size_t len = 0;
    if (dstsz == 0)
        return SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len >= dstsz - len) {
            dst[0] = '\0';
            return SIZE_MAX;
        }
        if (parts[i].len)
            memcpy(dst + len, parts[i].p, parts[i].len);
        len += parts[i].len;
    }
    dst[len] = '\0';
    return len;
}

size_t ims_u64_dec(uint64_t v, char out[IMS_U64_DEC_MAX])
{
    char tmp[IMS_U64_DEC_MAX];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

int ims_cur_char(struct ims_cur *c, char ch)
{
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 0;
    }
    return IMS_ENOENT;
}

size_t ims_cur_lws(struct ims_cur *c)
{
    const char *start = c->p;
    for (;;) {
        while (c->p < c->end && ims_is_ws((unsigned char)*c->p))
            c->p++;
        /* folded line: CRLF (or bare LF) followed by whitespace */
        const char *q = c->p;
        if (q < c->end && *q == '\r')
            q++;
        if (q < c->end && *q == '\n' && q + 1 < c->end && ims_is_ws((unsigned char)q[1])) {
            c->p = q + 1;
            continue;
        }
        break;
    }
    return (size_t)(c->p - start);
}

bool ims_is_token_char(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return true;
    switch (ch) {
    case '-': case '.': case '!': case '%': case '*':
    case '_': case '+': case '`': case '\'': case '~':
        return true;
    }
    return false;
}

int ims_cur_token(struct ims_cur *c, ims_str *out, size_t max)
{
    const char *s = c->p;
    while (c->p < c->end && ims_is_token_char((unsigned char)*c->p))
        c->p++;
    size_t n = (size_t)(c->p - s);
    if (n == 0 || n > max) {
        c->p = s;
        return n ? IMS_ELIMIT : IMS_ENOENT;
    }
    *out = ims_str_make(s, n);
    return 0;
}

int ims_cur_until(struct ims_cur *c, const char *stops, ims_str *out)
{
    const char *s = c->p;
    /* strchr() also matches the terminating NUL: a NUL byte is never a stop */
    while (c->p < c->end && (*c->p == '\0' || !strchr(stops, *c->p)))
        c->p++;
    *out = ims_str_make(s, (size_t)(c->p - s));
    return 0;
}

