/* str.h - borrowed string slices and a bounded parsing cursor.
 *
 * An ims_str is a view into someone else's bytes: never NUL-terminated, never
 * written through, p == NULL only when len == 0.  Its lifetime is that of the
 * buffer it points into (for SIP, the message's receive buffer).
 *
 * Cursor functions advance only on success and never read at or past `end`,
 * because TCP stream buffers carry no terminating NUL. */
#ifndef IMS_BASE_STR_H
#define IMS_BASE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct ims_str {
    const char *p;
    size_t len;
} ims_str;

#define IMS_S(lit) ((ims_str){ (lit), sizeof(lit) - 1 })
#define IMS_SF(s) (int)(s).len, (s).p /* printf("%.*s", IMS_SF(x)) */
#define IMS_STR_NULL ((ims_str){ NULL, 0 })

struct ims_cur {
    const char *p;
    const char *end;
};

static inline ims_str ims_str_make(const char *p, size_t len)
{
    return (ims_str){ len ? p : NULL, len };
}
/* A view of a C string (may be NULL).  This and the compares below are
 * inline: given a literal the compiler folds its strlen, and a length that
 * differs answers without a call (most compares do; ~500 strlen calls a
 * registration went through these, callgrind 2026-12-03). */
static inline ims_str ims_str_cstr(const char *s)
{
    return s ? ims_str_make(s, strlen(s)) : IMS_STR_NULL;
}

/* A cursor over s (every module's, the SIP parser's too).  An empty s has a
 * NULL p (ims_str_make), and NULL + 0 is undefined in C, so never write
 * { s.p, s.p + s.len } by hand. */
static inline struct ims_cur ims_cur_of(ims_str s)
{
    return (struct ims_cur){ s.p, s.len ? s.p + s.len : s.p };
}

bool ims_str_caseeq(ims_str a, ims_str b); /* ASCII case-insensitive */

/* byte equality */
static inline bool ims_str_eq(ims_str a, ims_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static inline bool ims_str_caseeq_lit(ims_str a, const char *lit)
{
    ims_str l = ims_str_cstr(lit);
    return a.len == l.len && ims_str_caseeq(a, l);
}

static inline bool ims_str_has_caseprefix(ims_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len >= n && ims_str_caseeq(ims_str_make(s.p, n), ims_str_make(lit, n));
}
/* True when lit (not empty) occurs in s, ASCII case-insensitively: a cheap
 * "cannot be there" test before a full parse. */
bool ims_str_has_casesub(ims_str s, const char *lit);
ims_str ims_str_trim(ims_str s);              /* strip SP, HTAB, CR, LF both ends */
/* Finds byte c; returns its offset or -1. */
long ims_str_chr(ims_str s, char c);
/* Parses an unsigned decimal that fits in `max` (no sign, no spaces, >=1
 * digit).  Returns 0 or IMS_EPROTO (non-digit, empty, overflow). */
int ims_str_to_u64(ims_str s, uint64_t max, uint64_t *out);
/* True when s holds a control character (below 0x20, or 0x7f), NUL among
 * them: a copy into a C string would end at the NUL. */
bool ims_str_has_ctl(ims_str s);
/* True when s is not empty and can go between the DQUOTEs of a SIP or HTTP
 * quoted-string as it is: no control character, no '"' and no '\\'
 * (RFC 3261 §25.1 qdtext). */
bool ims_str_quotable(ims_str s);
/* Copies s into dst (size dstsz) with a NUL; truncates; returns s.len. */
size_t ims_str_copy(ims_str s, char *dst, size_t dstsz);
/* The same for a C string (NULL copies as ""): snprintf(dst, sz, "%s", src)
 * without the formatting machinery.  Returns strlen(src). */
size_t ims_cstr_copy(const char *src, char *dst, size_t dstsz);
/* dst = parts[0] parts[1] ... parts[n-1] with a NUL.  Returns the length,
 * or SIZE_MAX (dst then "") when the parts do not fit in dstsz - 1 bytes:
 * a key or a label is never silently cut. */
size_t ims_str_join(char *dst, size_t dstsz, const ims_str *parts, size_t n);
#define IMS_STR_JOIN(dst, dstsz, ...)                                                       \
    ims_str_join((dst), (dstsz), (const ims_str[]){ __VA_ARGS__ },                          \
                 sizeof((const ims_str[]){ __VA_ARGS__ }) / sizeof(ims_str))
/* v in decimal into out (no NUL); returns the digits written (1 to 20). */
#define IMS_U64_DEC_MAX 20
size_t ims_u64_dec(uint64_t v, char out[IMS_U64_DEC_MAX]);

/* ---- cursor ---- */
static inline size_t ims_cur_left(const struct ims_cur *c)
{
    return (size_t)(c->end - c->p);
}
static inline bool ims_cur_eof(const struct ims_cur *c)
{
    return c->p >= c->end;
}
/* Consumes byte ch if it is next; 0 or IMS_ENOENT. */
int ims_cur_char(struct ims_cur *c, char ch);
/* Skips SP/HTAB (and, since header values are unfolded lazily, CRLF followed
 * by SP/HTAB). Always succeeds; returns count skipped. */
size_t ims_cur_lws(struct ims_cur *c);
/* RFC 3261 token (alphanum and -.!%*_+`'~); 1..max bytes; 0 or IMS_ENOENT/ELIMIT. */
int ims_cur_token(struct ims_cur *c, ims_str *out, size_t max);
/* Bytes up to (not including) any of the stop characters, or to end.
 * Empty result allowed. Always 0. */
int ims_cur_until(struct ims_cur *c, const char *stops, ims_str *out);

/* Character classes from RFC 3261 §25.1. */
bool ims_is_token_char(unsigned char ch);
static inline bool ims_is_ws(unsigned char ch)
{
    return ch == ' ' || ch == '\t';
}

#endif
