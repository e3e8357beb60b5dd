/* msg.h - the SIP message model and the zero-copy parser (RFC 3261 §7, §20, §25).
 *
 * Ownership: the caller owns the raw bytes, the struct sip_msg and the header
 * array; the parser allocates nothing.  Every ims_str in the result points into
 * the raw bytes and lives as long as they do.  Anything that outlives the
 * message (a transaction, a registration) copies what it keeps.
 *
 * Eager vs lazy: ims_sip_parse() splits the start line and every header line,
 * classifies header names (long and compact forms), and fully parses the
 * fields every layer needs (top Via, From, To, Call-ID, CSeq, Max-Forwards,
 * Content-Length, the Request-URI).  Everything else is parsed on demand with
 * the ims_sip_parse_* helpers into caller-owned structs. */
#ifndef IMS_SIP_MSG_H
#define IMS_SIP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/str.h"

/* Caps: everything that grows has one. */
#define SIP_MAX_HEADERS_DEFAULT 128
#define SIP_MAX_MSG_DEFAULT 65535

enum sip_method {
    SIP_M_UNKNOWN = 0, /* an extension method: see msg->method_name */
    SIP_M_INVITE,
    SIP_M_ACK,
    SIP_M_BYE,
    SIP_M_CANCEL,
    SIP_M_OPTIONS,
    SIP_M_REGISTER,
    SIP_M_PRACK,
    SIP_M_SUBSCRIBE,
    SIP_M_NOTIFY,
    SIP_M_PUBLISH,
    SIP_M_INFO,
    SIP_M_REFER,
    SIP_M_MESSAGE,
    SIP_M_UPDATE,
};

/* Header ids.  SIP_H_OTHER are kept by name only. */
enum sip_hdr_id {
    SIP_H_OTHER = 0,
    SIP_H_VIA,               /* v */
    SIP_H_FROM,              /* f */
    SIP_H_TO,                /* t */
    SIP_H_CALL_ID,           /* i */
    SIP_H_CSEQ,
    SIP_H_CONTACT,           /* m */
    SIP_H_MAX_FORWARDS,
    SIP_H_CONTENT_LENGTH,    /* l */
    SIP_H_CONTENT_TYPE,      /* c */
    SIP_H_CONTENT_ENCODING,  /* e */
    SIP_H_ROUTE,
    SIP_H_RECORD_ROUTE,
    SIP_H_EXPIRES,
    SIP_H_MIN_EXPIRES,
    SIP_H_AUTHORIZATION,
    SIP_H_PROXY_AUTHORIZATION,
    SIP_H_WWW_AUTHENTICATE,
    SIP_H_PROXY_AUTHENTICATE,
    SIP_H_AUTHENTICATION_INFO,
    SIP_H_SUPPORTED,         /* k */
    SIP_H_REQUIRE,
    SIP_H_PROXY_REQUIRE,
    SIP_H_UNSUPPORTED,
    SIP_H_ALLOW,
    SIP_H_ACCEPT,
    SIP_H_EVENT,             /* o */
    SIP_H_SUBSCRIPTION_STATE,
    SIP_H_USER_AGENT,
    SIP_H_SERVER,
    SIP_H_WARNING,
    SIP_H_RETRY_AFTER,
    SIP_H_REASON,
    SIP_H_DATE,
    SIP_H_SUBJECT,           /* s */
    SIP_H_PATH,                    /* RFC 3327 */
    SIP_H_SERVICE_ROUTE,           /* RFC 3608 */
    SIP_H_P_ASSERTED_IDENTITY,     /* RFC 3325 */
    SIP_H_P_PREFERRED_IDENTITY,    /* RFC 3325 */
    SIP_H_PRIVACY,                 /* RFC 3323 */
    SIP_H_P_ASSOCIATED_URI,        /* RFC 7315 */
    SIP_H_P_VISITED_NETWORK_ID,    /* RFC 7315 */
    SIP_H_P_CHARGING_VECTOR,       /* RFC 7315 */
    SIP_H_P_CHARGING_FUNCTION_ADDRESSES, /* RFC 7315 */
    SIP_H_P_ACCESS_NETWORK_INFO,   /* RFC 7315 */
    SIP_H_P_CALLED_PARTY_ID,       /* RFC 7315 */
    SIP_H_SECURITY_CLIENT,         /* RFC 3329 */
    SIP_H_SECURITY_SERVER,         /* RFC 3329 */
    SIP_H_SECURITY_VERIFY,         /* RFC 3329 */
    /* added with the parser (ids are not wire values; code uses the names) */
    SIP_H_ALLOW_EVENTS,            /* u, RFC 6665 */
    SIP_H_REFER_TO,                /* r, RFC 3515 */
    SIP_H_REFERRED_BY,             /* b, RFC 3892 */
    SIP_H_ACCEPT_CONTACT,          /* a, RFC 3841 */
    SIP_H_REJECT_CONTACT,          /* j, RFC 3841 */
    SIP_H_REQUEST_DISPOSITION,     /* d, RFC 3841 */
    SIP_H_SESSION_EXPIRES,         /* x, RFC 4028 */
    SIP_H_MIN_SE,                  /* RFC 4028 */
    SIP_H_IDENTITY,                /* y, RFC 8224 */
    SIP_H_RSEQ,                    /* RFC 3262 */
    SIP_H_RACK,                    /* RFC 3262 */
    SIP_H_CONTENT_DISPOSITION,
    SIP_H_CONTENT_LANGUAGE,
    SIP_H_ACCEPT_ENCODING,
    SIP_H_ACCEPT_LANGUAGE,
    SIP_H_MIME_VERSION,
    SIP_H_TIMESTAMP,
    SIP_H_ORGANIZATION,
    SIP_H_PRIORITY,
    SIP_H_CALL_INFO,
    SIP_H_ALERT_INFO,
    SIP_H_ERROR_INFO,
    SIP_H_REPLY_TO,
    SIP_H_IN_REPLY_TO,
    SIP_H_HISTORY_INFO,            /* RFC 7044 */
    SIP_H_REPLACES,                /* RFC 3891 */
    SIP_H_TARGET_DIALOG,           /* RFC 4538 */
    SIP_H_SIP_ETAG,                /* RFC 3903 */
    SIP_H_SIP_IF_MATCH,            /* RFC 3903 */
    SIP_H_FLOW_TIMER,              /* RFC 5626 */
    SIP_H_FEATURE_CAPS,            /* RFC 6809 */
    SIP_H_P_SERVED_USER,           /* RFC 5502 */
    SIP_H_P_PROFILE_KEY,           /* RFC 5002 */
    SIP_H_P_USER_DATABASE,         /* RFC 4457 */
    SIP_H_P_ASSERTED_SERVICE,      /* RFC 6050 */
    SIP_H_P_PREFERRED_SERVICE,     /* RFC 6050 */
    SIP_H_P_EARLY_MEDIA,           /* RFC 5009 */
    SIP_H__COUNT
};

/* One header line.  `value` is trimmed of leading/trailing LWS but may still
 * contain folded line breaks (CRLF followed by SP/HTAB); the ims_cur helpers
 * and ims_sip_parse_* helpers treat those as whitespace.  An empty value
 * ("Subject:") has value.len == 0 and value.p == NULL. */
struct sip_hdr {
    ims_str name;   /* as received (may be the compact form); name.p is the line start */
    ims_str value;
    uint16_t id;    /* enum sip_hdr_id */
    int16_t next;   /* index of the next header with the same id, or -1; for
                     * SIP_H_OTHER the chain links every unknown header (use
                     * ims_sip_hdr_next_same() to follow one name) */
    uint32_t raw_len; /* bytes of the whole line from name.p, folds and line end included */
};

enum sip_uri_scheme { SIP_URI_NONE = 0, SIP_URI_SIP, SIP_URI_SIPS, SIP_URI_TEL, SIP_URI_OTHER };

/* RFC 3261 §19.1 (sip/sips) and RFC 3966 (tel).  For tel: `user` is the
 * telephone-subscriber number, host is empty.  For other schemes only
 * `scheme_name` and `raw` are set. */
struct sip_uri {
    enum sip_uri_scheme scheme;
    ims_str raw;          /* the whole URI */
    ims_str scheme_name;
    ims_str user;         /* still %-escaped */
    ims_str password;
    ims_str host;         /* IPv6 references keep their brackets */
    uint16_t port;        /* 0 when absent */
    bool host_is_ipv6;
    ims_str params;       /* ";a=b;c" including the leading ';', or empty */
    ims_str headers;      /* "?a=b&c=d" without the '?', or empty */
    /* well-known params, pulled out of `params` */
    ims_str transport, maddr, user_param, method, ttl;
    bool lr;
};

/* name-addr / addr-spec with its header params (From, To, Contact, Route...). */
struct sip_nameaddr {
    ims_str display;      /* unquoted token(s) or quoted-string contents; may be empty */
    bool angle;           /* URI was in <> */
    struct sip_uri uri;
    ims_str params;       /* header params after the URI, ";tag=x;expires=3" */
    ims_str tag;          /* From/To tag param, or empty */
};

/* One Via value (RFC 3261 §20.42, RFC 3581 rport). */
struct sip_via {
    ims_str raw;
    ims_str proto_name;   /* "SIP" */
    ims_str proto_version;/* "2.0" */
    ims_str transport;    /* "UDP", "TCP", "TLS", "SCTP", "WS"... */
    ims_str host;         /* IPv6 keeps its brackets */
    uint16_t port;        /* 0 when absent */
    bool host_is_ipv6;
    ims_str params;
    ims_str branch, received, maddr, ttl;
    bool rport;           /* rport param present */
    uint16_t rport_value; /* 0 when present without a value */
};

struct sip_cseq {
    uint32_t num;
    enum sip_method method;
    ims_str method_name;
};

/* Credentials (Authorization, Proxy-Authorization) and challenges
 * (WWW-/Proxy-Authenticate).  Digest params per RFC 7616/8760, AKA auts per
 * RFC 3310, Bearer per RFC 8898 / RFC 6750.  Quoted values are unquoted
 * views (escapes left as received).  A directive that is present with an
 * empty value ("opaque=\"\"") has len 0 but p != NULL; absent ones are
 * IMS_STR_NULL.  Other directives (ik, ck, charset...) are only in the raw,
 * comma-separated `params`. */
struct sip_auth {
    ims_str scheme;       /* "Digest" or "Bearer" (case kept) */
    ims_str token;        /* Bearer credentials: the token68 */
    ims_str username, realm, nonce, uri, response, algorithm, cnonce, opaque, qop, nc;
    ims_str auts, stale, domain, integrity_protected, userhash;
    ims_str scope, authz_server, error; /* Bearer challenges */
    ims_str params;       /* the raw auth-params */
};

/* One Security-Client/-Server/-Verify value (RFC 3329 §2.2). */
struct sip_sec_mech {
    ims_str mechanism;    /* "tls", "ipsec-3gpp", "digest"... */
    ims_str params;       /* ";q=0.1;alg=hmac-sha-1-96" */
    ims_str q;
};

enum sip_msg_kind { SIP_MSG_NONE = 0, SIP_MSG_REQUEST, SIP_MSG_RESPONSE };

struct sip_msg {
    const char *buf;      /* borrowed: the whole message */
    size_t len;           /* bytes of this message (head + body) */
    size_t head_len;      /* start line + headers + blank line */
    enum sip_msg_kind kind;

    /* start line */
    ims_str start_line;   /* without its line end */
    size_t hdrs_off;      /* offset of the first header line (= end of the start line) */
    size_t hdrs_end;      /* offset of the empty line that ends the header block */
    enum sip_method method;
    ims_str method_name;
    ims_str ruri_raw;
    struct sip_uri ruri;
    int status;           /* responses: 100..699 */
    ims_str reason;
    ims_str version;      /* "SIP/2.0" */

    /* headers: caller-owned array, in message order */
    struct sip_hdr *hdrs;
    size_t nhdrs;
    int16_t first[SIP_H__COUNT]; /* index of the first header of each id, -1 */

    /* core fields, parsed eagerly */
    struct sip_via via1;       /* the top-most Via value */
    size_t nvia;               /* Via values counted over all Via lines */
    struct sip_nameaddr from, to;
    ims_str call_id;
    struct sip_cseq cseq;
    int max_forwards;          /* -1 when absent */
    long content_length;       /* -1 when absent */
    ims_str body;

    /* on IMS_EPROTO (and IMS_ELIMIT): what to answer and why (the reason
     * phrase names the fault, e.g. "Bad CSeq").  kind is set when the start
     * line was read, so the caller knows whether a response may be sent at
     * all (never answer a response, never answer an ACK).  The parser keeps
     * splitting header lines after the first fault, so hdrs[0..nhdrs) holds
     * every well-formed header line and ims_sip_build_response() can answer
     * with the request's own Via/From/To/Call-ID/CSeq. */
    int err_status;            /* 400, 416, 505, 513 */
    const char *err_reason;    /* static string, or NULL when err_status == 0 */
};

/* Parses one message.
 *   buf, len   bytes received; for a datagram, exactly one datagram.  Not
 *              NUL-terminated; nothing at or past buf + len is read.
 *   stream     true on TCP/TLS: Content-Length is mandatory and the body is
 *              the next Content-Length bytes; returns IMS_EAGAIN until head
 *              and body are complete.  false on UDP: the body is the rest of
 *              the datagram (truncated to Content-Length if smaller, so extra
 *              octets are ignored; a larger Content-Length is an error,
 *              RFC 3261 §18.3).
 *   msg        filled in; msg->buf points at the start line (after skipped
 *              CR/LF bytes) and msg->len counts the message from there.
 *   hdrs, max  caller-owned header array (at most 32767 entries are used).
 * Returns the number of bytes consumed (skipped CR/LF + msg->len, > 0),
 * IMS_EAGAIN (need more bytes; stream only), IMS_ELIMIT (more than max_hdrs
 * headers, or larger than SIP_MAX_MSG_DEFAULT: err_status 513) or IMS_EPROTO
 * (malformed: err_status/err_reason say what to answer).
 *
 * Faults and their status (the first fault found wins, except 416):
 *   400  syntax of the start line, of a header line, of Via (top value),
 *        From, To, Call-ID, CSeq, Max-Forwards (0-255), Content-Length;
 *        duplicates of those single-valued headers; a missing To, From,
 *        Call-ID, CSeq or Via (requests and responses); a request CSeq
 *        method that differs from the Request-Line method ("CSeq method
 *        mismatch"); a Content-Length larger than the datagram, or none on a
 *        stream; headers in a sip/sips Request-URI; no empty line.
 *   505  a well-formed SIP-Version other than 2.0.
 *   416  a well-formed Request-URI whose scheme is not sip, sips or tel;
 *        reported only when nothing else is wrong, and every other field is
 *        parsed, so the caller can answer 416 or choose to go on.
 *   513  (with IMS_ELIMIT) the caps above.
 * msg->kind is set as soon as the start line has the shape of a request or a
 * response; with SIP_MSG_NONE the bytes are not SIP and must be dropped.
 * Max-Forwards is optional (RFC 2543 peers).  Headers other than the eager
 * ones are not checked: call ims_sip_validate() for that. */
int ims_sip_parse(const char *buf, size_t len, bool stream, struct sip_msg *msg,
                  struct sip_hdr *hdrs, size_t max_hdrs);

/* Points msg, the result of a successful ims_sip_parse(), and its header
 * array (msg->hdrs, nhdrs entries) at copy, which holds the msg->len bytes
 * at msg->buf: a request kept with its transaction's copy is not parsed
 * again.  Slices that do not point into those bytes (empty ones, static
 * strings) stay as they are. */
void ims_sip_msg_rebase(struct sip_msg *msg, const char *copy);

/* Full validation of a message ims_sip_parse() accepted: every Via value,
 * Contact (or "*"), Route, Record-Route, Path, Service-Route (name-addr
 * form), P-Asserted/Preferred-Identity, P-Associated-URI, History-Info,
 * single name-addr headers, credentials and challenges, Security-*, Expires
 * and other delta-seconds, option-tag and token lists, Event,
 * Content-Type, Date (RFC 1123, GMT).  For endpoints (registrar, UAS) that
 * must answer 400 to anything malformed; a proxy need not call it.
 * 0, or IMS_EPROTO with err_status 400 and err_reason naming the header
 * ("Bad Contact", "Bad Date", ...).  Returns at once with the parse result
 * when msg->err_status is already set. */
int ims_sip_validate(struct sip_msg *msg);

/* Stream framing without a full parse, for the TCP/TLS transport.
 * *skip gets the number of leading CR/LF bytes (RFC 5626 §4.4.1 keep-alives;
 * the transport discards them and answers a "\r\n\r\n" ping with "\r\n").
 * Returns the length of the message that follows the skipped bytes,
 * IMS_EAGAIN (incomplete, or nothing but CR/LF so far), or IMS_EPROTO (no or
 * bad or repeated Content-Length, or a head or message larger than max).
 * Agrees with ims_sip_parse(stream = true) on every message that parses:
 * same length, same EAGAIN prefixes (max = SIP_MAX_MSG_DEFAULT).  On broken
 * input it may say IMS_EPROTO earlier (a bad Content-Length line before the
 * head is complete) where the parser still waits for the whole head. */
int ims_sip_frame(const char *buf, size_t len, size_t max, size_t *skip);

/* ---- header access ---- */
/* First header with this id, or NULL.  SIP_H_OTHER gives the first unknown. */
const struct sip_hdr *ims_sip_hdr_first(const struct sip_msg *msg, enum sip_hdr_id id);
/* Next header with the same id, or NULL. */
const struct sip_hdr *ims_sip_hdr_next(const struct sip_msg *msg, const struct sip_hdr *h);
/* Like ims_sip_hdr_next(), but for SIP_H_OTHER only headers of the same
 * name (case-insensitive). */
const struct sip_hdr *ims_sip_hdr_next_same(const struct sip_msg *msg, const struct sip_hdr *h);
/* First header whose name matches (case-insensitively, compact forms too). */
const struct sip_hdr *ims_sip_hdr_by_name(const struct sip_msg *msg, ims_str name);
/* Header id of a name, long or compact form, any case; SIP_H_OTHER if unknown. */
enum sip_hdr_id ims_sip_hdr_id(ims_str name);
/* "Via"; NULL for SIP_H_OTHER or out of range. */
const char *ims_sip_hdr_canonical_name(enum sip_hdr_id id);
/* Method id of a name (case-sensitive, RFC 3261 §7.1): "RE%47IST%45R" and
 * "register" are SIP_M_UNKNOWN. */
enum sip_method ims_sip_method_id(ims_str name);
/* "INVITE"; NULL for SIP_M_UNKNOWN (use msg->method_name). */
const char *ims_sip_method_name(enum sip_method m);
/* A method whose request outside a dialog can create one: INVITE (RFC 3261
 * §12), SUBSCRIBE and REFER (RFC 6665 §4.1.2.1, RFC 3515), and NOTIFY, which
 * may arrive before the 2xx that would have (RFC 6665 §4.4.1). */
bool ims_sip_method_creates_dialog(enum sip_method m);

/* Iterates the comma-separated values of a header value, honouring quoted
 * strings and <...>.  Set c to the value first; each call yields the next
 * trimmed element.  0, IMS_ENOENT at the end, IMS_EPROTO (unbalanced quote
 * or bracket, or an empty element).  Not for the auth headers, whose commas
 * separate parameters. */
int ims_sip_list_next(struct ims_cur *c, ims_str *elem);

/* ---- on-demand parsers: caller-owned outputs, 0 or IMS_EPROTO ----
 * Slices point into s.  On IMS_EPROTO the output is zeroed or partial and
 * must not be used. */
/* sip/sips/tel or any absoluteURI (scheme SIP_URI_OTHER).  No LWS allowed. */
int ims_sip_parse_uri(ims_str s, struct sip_uri *out);
/* One name-addr or addr-spec with its header params.  In addr-spec form the
 * params after the URI are the header's (RFC 3261 §20.10) and a URI holding
 * '?' or ',' is an error.  "*" (Contact) is an error here. */
int ims_sip_parse_nameaddr(ims_str s, struct sip_nameaddr *out);  /* one element */
int ims_sip_parse_via(ims_str s, struct sip_via *out);            /* one element */
/* CSeq: num < 2^31 (RFC 3261 §8.1.1.5), LWS, method token. */
int ims_sip_parse_cseq(ims_str s, struct sip_cseq *out);
/* The whole value of an Authorization/Proxy-Authorization/WWW-/
 * Proxy-Authenticate header.  A known directive repeated is an error. */
int ims_sip_parse_auth(ims_str s, struct sip_auth *out);
struct ims_buf;
/* Appends the credentials or challenge s to out without its auth-param
 * named drop (case-insensitive; every occurrence): the scheme, a space, the
 * other params as received, ", "-separated.  IMS_EPROTO when s has no
 * auth-params (a Bearer token68, a scheme alone) or does not parse (out may
 * then hold part of it); IMS_ENOMEM / IMS_ELIMIT from out. */
int ims_sip_auth_without(ims_str s, const char *drop, struct ims_buf *out);
int ims_sip_parse_sec_mech(ims_str s, struct sip_sec_mech *out);   /* one element */
/* Finds param `name` in ";a=b;c;d="x"" (case-insensitive name; URI or
 * header params).  *val is the value (quotes removed) or empty for a flag.
 * 0 or IMS_ENOENT. */
int ims_sip_param_get(ims_str params, const char *name, ims_str *val);
/* RFC 3261 §19.1.4 URI equality (sip/sips; tel compares numbers ignoring
 * visual separators and params as sets, RFC 3966 §4; other schemes compare
 * byte-wise after %-decoding).  IPv6 hosts compare textually. */
bool ims_sip_uri_equal(const struct sip_uri *a, const struct sip_uri *b);
/* Is `token` in the comma list of every header with id (Supported, Require)?
 * Case-insensitive; ";params" after a token are ignored. */
bool ims_sip_hdr_has_token(const struct sip_msg *msg, enum sip_hdr_id id, const char *token);

#endif
