/* parse_uri.c - sip/sips URIs (RFC 3261 §19.1, §25.1), tel URIs (RFC 3966)
 * and other absolute URIs, and URI equality (RFC 3261 §19.1.4). */
#include <string.h>

#include "sip/parse_int.h"

int sip_hostport(struct ims_cur *c, bool lws_colon, ims_str *host, bool *v6, uint16_t *port)
{
    const char *s = c->p;
    *v6 = false;
    *port = 0;
    if (c->p < c->end && *c->p == '[') {
        /* IPv6reference = "[" IPv6address "]": hex digits, ':' and a dotted
         * IPv4 tail; the exact RFC 4291 shape is not checked here */
        const char *q = c->p + 1;
        size_t colons = 0;
        while (q < c->end && (sip_is((unsigned char)*q, SIP_C_HEX) || *q == ':' || *q == '.')) {
            colons += *q == ':';
            q++;
        }
        if (q >= c->end || *q != ']' || colons < 2 || q - c->p > 46)
            return IMS_EPROTO;
        c->p = q + 1;
        *v6 = true;
    } else {
        if (sip_span(c, SIP_C_HOST, false) <= 0)
            return IMS_EPROTO;
        /* a label may not start with '-' or '.' */
        if (*s == '-' || *s == '.') {
            c->p = s;
            return IMS_EPROTO;
        }
    }
    *host = sip_slice(s, c->p);
    int colon = lws_colon ? sip_sep(c, ':') : sip_char(c, ':');
    if (colon == 0) {
        /* port = 1*DIGIT, at most 65535; leading zeros and up to 64 digits
         * accepted as sip_u32() does, summed while scanning */
        const char *d = c->p;
        uint32_t v = 0;
        while (c->p < c->end && sip_is((unsigned char)*c->p, SIP_C_DIGIT)) {
            if (v <= 65535)
                v = v * 10 + (uint32_t)(*c->p - '0');
            c->p++;
        }
        if (c->p == d || c->p - d > 64 || v > 65535)
            return IMS_EPROTO;
        *port = (uint16_t)v;
    }
    return 0;
}

/* uri-parameters = *( ";" uri-parameter ), pname ["=" pvalue], no LWS. */
static int sip_uri_params(struct ims_cur *c, struct sip_uri *out)
{
    const char *ps = c->p;
    while (c->p < c->end && *c->p == ';') {
        c->p++;
        const char *ns = c->p;
        if (sip_span(c, SIP_C_PARAM, true) <= 0)
            return IMS_EPROTO;
        ims_str name = sip_slice(ns, c->p), val = IMS_STR_NULL;
        bool has_val = false;
        if (sip_char(c, '=') == 0) {
            const char *vs = c->p;
            if (sip_span(c, SIP_C_PARAM, true) <= 0)
                return IMS_EPROTO;
            val = sip_slice(vs, c->p);
            has_val = true;
        }
        /* well-known params, first occurrence wins (§19.1.1 table) */
        if (SIP_TOK_EQ(name, "transport")) {
            if (!has_val)
                return IMS_EPROTO;
            if (!out->transport.len)
                out->transport = val;
        } else if (SIP_TOK_EQ(name, "maddr")) {
            if (!has_val)
                return IMS_EPROTO;
            if (!out->maddr.len)
                out->maddr = val;
        } else if (SIP_TOK_EQ(name, "user")) {
            if (!has_val)
                return IMS_EPROTO;
            if (!out->user_param.len)
                out->user_param = val;
        } else if (SIP_TOK_EQ(name, "method")) {
            if (!has_val)
                return IMS_EPROTO;
            if (!out->method.len)
                out->method = val;
        } else if (SIP_TOK_EQ(name, "ttl")) {
            uint32_t ttl;
            if (!has_val || sip_u32(val, 255, &ttl) != 0)
                return IMS_EPROTO;
            if (!out->ttl.len)
                out->ttl = val;
        } else if (SIP_TOK_EQ(name, "lr")) {
            out->lr = true;
        }
    }
    out->params = sip_slice(ps, c->p);
    return 0;
}

/* headers = "?" header *( "&" header ), header = hname "=" hvalue. */
static int sip_uri_headers(struct ims_cur *c, struct sip_uri *out)
{
    if (sip_char(c, '?') != 0)
        return 0;
    const char *hs = c->p;
    for (;;) {
        if (sip_span(c, SIP_C_HNV, true) <= 0 || sip_char(c, '=') != 0 ||
            sip_span(c, SIP_C_HNV, true) < 0)
            return IMS_EPROTO;
        if (sip_char(c, '&') != 0)
            break;
    }
    out->headers = sip_slice(hs, c->p);
    if (out->headers.len == 0)
        return IMS_EPROTO;
    return 0;
}

static int parse_sip(struct ims_cur *c, struct sip_uri *out)
{
    /* userinfo ends at the only '@': no other part of a sip URI may carry an
     * unescaped '@' (§25.1 paramchar, hnv-unreserved), while the user part
     * may hold ';' '?' ',' (RFC 4475 §3.1.1.2, §3.1.1.9). */
    const char *at = memchr(c->p, '@', ims_cur_left(c));
    if (at) {
        struct ims_cur u = { c->p, at };
        const char *us = u.p;
        if (sip_span(&u, SIP_C_USER, true) <= 0)
            return IMS_EPROTO;
        out->user = sip_slice(us, u.p);
        if (sip_char(&u, ':') == 0) {
            const char *pw = u.p;
            if (sip_span(&u, SIP_C_PASS, true) < 0)
                return IMS_EPROTO;
            out->password = sip_slice(pw, u.p);
        }
        if (u.p != at)
            return IMS_EPROTO;
        c->p = at + 1;
    }
    if (sip_hostport(c, false, &out->host, &out->host_is_ipv6, &out->port) != 0)
        return IMS_EPROTO;
    if (sip_uri_params(c, out) != 0 || sip_uri_headers(c, out) != 0)
        return IMS_EPROTO;
    return ims_cur_eof(c) ? 0 : IMS_EPROTO;
}

static int parse_tel(struct ims_cur *c, struct sip_uri *out)
{
    /* telephone-subscriber (RFC 3966 §3): the number, then ";par" params */
    const char *ns = c->p;
    if (sip_span(c, SIP_C_TEL, false) <= 0)
        return IMS_EPROTO;
    out->user = sip_slice(ns, c->p);
    bool digit = false;
    for (size_t i = 0; i < out->user.len; i++) {
        char ch = out->user.p[i];
        if (ch == '+' && i != 0)
            return IMS_EPROTO;
        digit |= sip_is((unsigned char)ch, SIP_C_HEX) || ch == '*' || ch == '#';
    }
    if (!digit)
        return IMS_EPROTO;
    const char *ps = c->p;
    while (sip_char(c, ';') == 0) {
        /* pname = 1*( alphanum / "-" ) */
        const char *p = c->p;
        while (c->p < c->end && (sip_is((unsigned char)*c->p, SIP_C_ALPHA | SIP_C_DIGIT) ||
                                 *c->p == '-'))
            c->p++;
        if (c->p == p)
            return IMS_EPROTO;
        if (sip_char(c, '=') == 0 && sip_span(c, SIP_C_PARAM, true) <= 0)
            return IMS_EPROTO;
    }
    out->params = sip_slice(ps, c->p);
    return ims_cur_eof(c) ? 0 : IMS_EPROTO;
}

int ims_sip_parse_uri(ims_str s, struct sip_uri *out)
{
    memset(out, 0, sizeof(*out));
    struct ims_cur c = ims_cur_of(s);
    if (s.len == 0 || !sip_is((unsigned char)s.p[0], SIP_C_ALPHA))
        return IMS_EPROTO;
    sip_span(&c, SIP_C_SCHEME, false);
    out->scheme_name = sip_slice(s.p, c.p);
    if (sip_char(&c, ':') != 0)
        return IMS_EPROTO;
    out->raw = s;
    int rc;
    if (SIP_TOK_EQ(out->scheme_name, "sip")) {
        out->scheme = SIP_URI_SIP;
        rc = parse_sip(&c, out);
    } else if (SIP_TOK_EQ(out->scheme_name, "sips")) {
        out->scheme = SIP_URI_SIPS;
        rc = parse_sip(&c, out);
    } else if (SIP_TOK_EQ(out->scheme_name, "tel")) {
        out->scheme = SIP_URI_TEL;
        rc = parse_tel(&c, out);
    } else {
        /* absoluteURI (§25.1): only its characters are checked */
        out->scheme = SIP_URI_OTHER;
        rc = (sip_span(&c, SIP_C_URIC, true) > 0 && ims_cur_eof(&c)) ? 0 : IMS_EPROTO;
    }
    if (rc != 0) {
        memset(out, 0, sizeof(*out));
        return IMS_EPROTO;
    }
    return 0;
}

/* ---- equality (RFC 3261 §19.1.4) ---- */

static bool is_reserved(unsigned char ch)
{
    return strchr(";/?:@&=+$,", ch) != NULL && ch != '\0';
}

/* Next decoded byte of s from *i; *esc says whether it was %HH. */
static unsigned char dec_next(ims_str s, size_t *i, bool *esc)
{
    if (s.p[*i] == '%' && *i + 2 < s.len && sip_hexval((unsigned char)s.p[*i + 1]) >= 0 &&
        sip_hexval((unsigned char)s.p[*i + 2]) >= 0) {
        unsigned char v = (unsigned char)(sip_hexval((unsigned char)s.p[*i + 1]) * 16 +
                                          sip_hexval((unsigned char)s.p[*i + 2]));
        *i += 3;
        *esc = true;
        return v;
    }
    *esc = false;
    return (unsigned char)s.p[(*i)++];
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* "Characters other than those in the reserved set are equivalent to their
 * %HEX HEX encoding" (§19.1.4). */
static bool esc_eq(ims_str a, ims_str b, bool icase)
{
    size_t i = 0, j = 0;
    while (i < a.len && j < b.len) {
        bool ea, eb;
        unsigned char ca = dec_next(a, &i, &ea), cb = dec_next(b, &j, &eb);
        if (icase) {
            ca = lower(ca);
            cb = lower(cb);
        }
        if (ca != cb || (ea != eb && is_reserved(ca)))
            return false;
    }
    return i == a.len && j == b.len;
}

/* Splits the next "name[=value]" off a ";a=b;c" (sep ';') or "a=b&c=d"
 * (sep '&') list. */
static bool kv_next(ims_str *rest, char sep, ims_str *name, ims_str *val)
{
    while (rest->len && rest->p[0] == sep) {
        rest->p++;
        rest->len--;
    }
    if (!rest->len)
        return false;
    long end = ims_str_chr(*rest, sep);
    ims_str item = ims_str_make(rest->p, end < 0 ? rest->len : (size_t)end);
    rest->p += item.len;
    rest->len -= item.len;
    long eq = ims_str_chr(item, '=');
    *name = ims_str_make(item.p, eq < 0 ? item.len : (size_t)eq);
    *val = eq < 0 ? IMS_STR_NULL : ims_str_make(item.p + eq + 1, item.len - (size_t)eq - 1);
    return true;
}

static bool kv_find(ims_str list, char sep, ims_str name, ims_str *val)
{
    ims_str n, v;
    while (kv_next(&list, sep, &n, &v)) {
        if (esc_eq(n, name, true)) {
            *val = v;
            return true;
        }
    }
    return false;
}

static bool special_param(ims_str n)
{
    static const char *const names[] = { "user", "ttl", "method", "maddr", "transport" };
    for (size_t i = 0; i < 5; i++)
        if (esc_eq(n, ims_str_cstr(names[i]), true))
            return true;
    return false;
}

/* §19.1.4: user, ttl, method, maddr, transport must be in both or neither;
 * any other param is compared only when present in both. */
static bool sip_params_eq(ims_str a, ims_str b)
{
    ims_str n, v, w, rest = a;
    while (kv_next(&rest, ';', &n, &v)) {
        if (kv_find(b, ';', n, &w)) {
            if (!esc_eq(v, w, true))
                return false;
        } else if (special_param(n)) {
            return false;
        }
    }
    rest = b;
    while (kv_next(&rest, ';', &n, &v))
        if (special_param(n) && !kv_find(a, ';', n, &w))
            return false;
    return true;
}

/* Every item of a is in b with an equal value (names case-insensitive). */
static bool kv_subset(ims_str a, ims_str b, char sep, bool icase_val)
{
    ims_str n, v, w, rest = a;
    while (kv_next(&rest, sep, &n, &v))
        if (!kv_find(b, sep, n, &w) || !esc_eq(v, w, icase_val))
            return false;
    return true;
}

static bool tel_num_eq(ims_str a, ims_str b)
{
    /* RFC 3966 §4: visual separators are ignored, hex digits compare
     * case-insensitively */
    size_t i = 0, j = 0;
    for (;;) {
        while (i < a.len && strchr("-.()", a.p[i]))
            i++;
        while (j < b.len && strchr("-.()", b.p[j]))
            j++;
        if (i == a.len || j == b.len)
            return i == a.len && j == b.len;
        if (lower((unsigned char)a.p[i++]) != lower((unsigned char)b.p[j++]))
            return false;
    }
}

bool ims_sip_uri_equal(const struct sip_uri *a, const struct sip_uri *b)
{
    if (a->scheme != b->scheme || a->scheme == SIP_URI_NONE)
        return false;
    if (ims_str_eq(a->raw, b->raw))
        return true; /* the common case, and reflexive even with odd params */
    if (a->scheme == SIP_URI_OTHER) {
        size_t sl = a->scheme_name.len;
        return ims_str_caseeq(a->scheme_name, b->scheme_name) &&
               esc_eq(ims_str_make(a->raw.p + sl, a->raw.len - sl),
                      ims_str_make(b->raw.p + sl, b->raw.len - sl), false);
    }
    if (a->scheme == SIP_URI_TEL)
        return tel_num_eq(a->user, b->user) && kv_subset(a->params, b->params, ';', true) &&
               kv_subset(b->params, a->params, ';', true);
    /* userinfo is case-sensitive; everything else is not */
    if ((a->user.len != 0) != (b->user.len != 0) || !esc_eq(a->user, b->user, false))
        return false;
    if (!esc_eq(a->password, b->password, false))
        return false;
    if (!ims_str_caseeq(a->host, b->host) || a->port != b->port)
        return false;
    if (!sip_params_eq(a->params, b->params))
        return false;
    /* header components are never ignored */
    return kv_subset(a->headers, b->headers, '&', false) &&
           kv_subset(b->headers, a->headers, '&', false);
}
