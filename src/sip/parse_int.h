/* parse_int.h - private helpers shared by the SIP parser files (src/sip only).
 *
 * Character classes are one 16-bit mask per byte, built at compile time from
 * the RFC 3261 §25.1 definitions, so every "is this byte allowed here" test is
 * one table load.  Cursor helpers follow base/str.h: they never read at or
 * past `end` and only advance on success. */
#ifndef IMS_SIP_PARSE_INT_H
#define IMS_SIP_PARSE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/str.h"
#include "sip/msg.h"

enum {
    SIP_C_TOKEN = 1 << 0,  /* token (RFC 3261 §25.1) */
    SIP_C_UNRES = 1 << 1,  /* unreserved = alphanum / mark */
    SIP_C_USER = 1 << 2,   /* unreserved / user-unreserved (escaped apart) */
    SIP_C_PASS = 1 << 3,   /* password chars (escaped apart) */
    SIP_C_PARAM = 1 << 4,  /* paramchar (escaped apart) */
    SIP_C_HNV = 1 << 5,    /* hname / hvalue chars (escaped apart) */
    SIP_C_WORD = 1 << 6,   /* word (Call-ID) */
    SIP_C_HOST = 1 << 7,   /* hostname / IPv4 chars: alphanum "-" "." (and "_", tolerated) */
    SIP_C_URIC = 1 << 8,   /* uric = reserved / unreserved (escaped apart) */
    SIP_C_HEX = 1 << 9,
    SIP_C_DIGIT = 1 << 10,
    SIP_C_ALPHA = 1 << 11,
    SIP_C_SCHEME = 1 << 12, /* ALPHA / DIGIT / "+" / "-" / "." */
    SIP_C_B64 = 1 << 13,   /* token68 / b64token (RFC 7235, RFC 6750), '=' apart */
    SIP_C_TEL = 1 << 14,   /* RFC 3966 phonedigit-hex plus "+" */
    SIP_C_GVAL = 1 << 15,  /* gen-value without quotes: token / host ("[" "]" ":") */
};

extern const uint16_t ims_sip_cls[256];

static inline bool sip_is(unsigned char ch, uint16_t mask)
{
    return (ims_sip_cls[ch] & mask) != 0;
}

static inline int sip_hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Advances over bytes of class `mask`, plus %HH escapes when `esc`.
 * Returns the number of bytes consumed, or -1 on a broken escape (cursor
 * left at the '%'). */
static inline long sip_span(struct ims_cur *c, uint16_t mask, bool esc)
{
    const char *s = c->p;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p;
        if (ims_sip_cls[ch] & mask) {
            c->p++;
        } else if (esc && ch == '%') {
            if (c->end - c->p < 3 || sip_hexval((unsigned char)c->p[1]) < 0 ||
                sip_hexval((unsigned char)c->p[2]) < 0)
                return -1;
            c->p += 3;
        } else {
            break;
        }
    }
    return (long)(c->p - s);
}

/* ims_cur_char() inlined: consumes byte ch if it is next; 0 or IMS_ENOENT. */
static inline int sip_char(struct ims_cur *c, char ch)
{
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 0;
    }
    return IMS_ENOENT;
}

/* ims_cur_token() without the length cap, inlined on the class table: the
 * parser reads a token at nearly every header and parameter.  On failure the
 * cursor is unchanged.  0 or IMS_ENOENT (no token byte here). */
static inline int sip_token(struct ims_cur *c, ims_str *out)
{
    const char *s = c->p;
    while (c->p < c->end && (ims_sip_cls[(unsigned char)*c->p] & SIP_C_TOKEN))
        c->p++;
    if (c->p == s)
        return IMS_ENOENT;
    *out = ims_str_make(s, (size_t)(c->p - s));
    return 0;
}

/* A byte a quoted-string may not hold as it is (RFC 3261 §25.1): qdtext is
 * LWS, %x21-7E but DQUOTE and "\\", or UTF8-NONASCII, so the control bytes
 * other than HTAB, CR and LF (folding; the header's end is already found)
 * are out.  A NUL here would cut the value short for whatever reads it as a
 * C string further on. */
static inline bool sip_qd_ctl(unsigned char ch)
{
    return (ch < 0x20 && ch != '\t' && ch != '\r' && ch != '\n') || ch == 0x7f;
}

/* The end of a quoted-string body starting at p (just after the opening
 * DQUOTE): the closing DQUOTE, skipping quoted-pairs (RFC 3261 §25.1).
 * NULL when it is unterminated, ends in a lone backslash, holds a control
 * byte (sip_qd_ctl) or escapes CR or LF (quoted-pair excludes them). */
static inline const char *sip_quote_end(const char *p, const char *end)
{
    while (p < end) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"')
            return p;
        if (ch == '\\') {
            if (end - p < 2 || p[1] == '\r' || p[1] == '\n')
                return NULL;
            p += 2;
            continue;
        }
        if (sip_qd_ctl(ch))
            return NULL;
        p++;
    }
    return NULL;
}

/* The RFC 3261 quoted-string at the cursor: the body without the quotes,
 * escapes kept.  0, IMS_ENOENT (no DQUOTE here; cursor unchanged) or
 * IMS_EPROTO (unterminated, or a byte sip_quote_end refuses). */
static inline int sip_quoted(struct ims_cur *c, ims_str *out)
{
    if (c->p >= c->end || *c->p != '"')
        return IMS_ENOENT;
    const char *q = sip_quote_end(c->p + 1, c->end);
    if (!q)
        return IMS_EPROTO;
    *out = ims_str_make(c->p + 1, (size_t)(q - c->p - 1));
    c->p = q + 1;
    return 0;
}

/* ims_cur_lws() with the common "no whitespace here" case inlined: most
 * separators in real traffic have no LWS around them. */
static inline size_t sip_lws(struct ims_cur *c)
{
    if (c->p >= c->end)
        return 0;
    unsigned char ch = (unsigned char)*c->p;
    if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n')
        return 0;
    return ims_cur_lws(c);
}

/* SWS "ch" SWS (RFC 3261 §25.1 SEMI, COLON, EQUAL, SLASH, COMMA).  On failure
 * the cursor is unchanged.  0 or IMS_ENOENT. */
static inline int sip_sep(struct ims_cur *c, char ch)
{
    struct ims_cur t = *c;
    sip_lws(&t);
    if (t.p >= t.end || *t.p != ch)
        return IMS_ENOENT;
    t.p++;
    sip_lws(&t);
    *c = t;
    return 0;
}

/* Lower-case ASCII comparison of s against a lower-case literal that holds
 * only letters, digits and '-': one OR per byte.  Only valid when s is known
 * to hold token characters (CR | 0x20 would match '-'). */
static inline bool sip_tok_eq(ims_str s, const char *lit, size_t n)
{
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s.p[i] | 0x20) != (unsigned char)lit[i])
            return false;
    return true;
}
#define SIP_TOK_EQ(s, lit) sip_tok_eq((s), (lit), sizeof(lit) - 1)

static inline ims_str sip_slice(const char *a, const char *b)
{
    return ims_str_make(a, (size_t)(b - a));
}

/* Trims SP/HTAB/CR/LF on the right only. */
static inline ims_str sip_rtrim(ims_str s)
{
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t' || s.p[s.len - 1] == '\r' ||
                     s.p[s.len - 1] == '\n'))
        s.len--;
    return ims_str_make(s.p, s.len);
}

/* One header parameter: SEMI token [ EQUAL ( token / host / quoted-string ) ].
 * The value is unquoted (escapes kept) and quoted is set. */
struct sip_param {
    ims_str name;
    ims_str value;
    bool has_value;
    bool quoted;
};

/* Reads the next ";name[=value]" of a header (generic-param, RFC 3261 §25.1),
 * LWS allowed around ';' and '='.  0, IMS_ENOENT (no ';' next; cursor
 * unchanged) or IMS_EPROTO (empty or malformed parameter). */
int sip_hparam_next(struct ims_cur *c, struct sip_param *p);

/* Parses the host[:port] of a sip URI or a Via sent-by.  `lws_colon` allows
 * SWS around the ':' (Via).  IPv6 references keep their brackets.
 * 0 or IMS_EPROTO. */
int sip_hostport(struct ims_cur *c, bool lws_colon, ims_str *host, bool *v6, uint16_t *port);

/* ims_sip_hdr_id() for a name already known to be all token bytes. */
enum sip_hdr_id sip_hdr_id_token(ims_str name);

/* 1*DIGIT no larger than max; 0 or IMS_EPROTO. */
int sip_u32(ims_str s, uint32_t max, uint32_t *out);

/* Validation of single header values, used by ims_sip_validate(). */
int sip_check_callid(ims_str v);
int sip_check_token_list(ims_str v, bool allow_params);
int sip_check_media_type(ims_str v);
int sip_check_date(ims_str v);
int sip_check_delta(ims_str v, bool allow_params);

#endif
