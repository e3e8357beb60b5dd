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
    SIP_H__COUNT
};

/* One header line.  `value` is trimmed of leading/trailing LWS but may still
 * contain folded line breaks (CRLF followed by SP/HTAB); the ims_cur helpers
 * and ims_sip_parse_* helpers treat those as whitespace. */
struct sip_hdr {
    ims_str name;   /* as received (may be the compact form) */
    ims_str value;
    uint16_t id;    /* enum sip_hdr_id */
    int16_t next;   /* index of the next header with the same id, or -1 */
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
 * views (escapes left as received). */
struct sip_auth {
    ims_str scheme;       /* "Digest" or "Bearer" (case kept) */
    ims_str token;        /* Bearer credentials: the token68 */
    ims_str username, realm, nonce, uri, response, algorithm, cnonce, opaque, qop, nc;
    ims_str auts, stale, domain, integrity_protected;
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

    /* on IMS_EPROTO: what to answer and why (the reason phrase names the
     * fault, e.g. "Bad CSeq").  kind is set when the start line was read,
     * so the caller knows whether a response may be sent at all. */
    int err_status;            /* 400, 505, 416, 420, 483, 513... */
    const char *err_reason;
};

/* Parses one message.
 *   buf, len   bytes received; for a datagram, exactly one datagram.
 *   stream     true on TCP/TLS: Content-Length is mandatory and the body is
 *              the next Content-Length bytes; returns IMS_EAGAIN until head
 *              and body are complete.  false on UDP: the body is the rest of
 *              the datagram (truncated to Content-Length if smaller; a larger
 *              Content-Length is an error, RFC 3261 §18.3).
 *   hdrs, max  caller-owned header array.
 * Returns the number of bytes the message occupies (> 0), IMS_EAGAIN (need
 * more bytes; stream only), IMS_ELIMIT (more than max headers or larger than
 * the cap) or IMS_EPROTO (malformed; msg->err_status and err_reason set).
 * Leading CRLFs before a message (keep-alives, RFC 5626 §4.4.1) are skipped
 * and counted in the returned length.  Never reads past buf + len. */
int ims_sip_parse(const char *buf, size_t len, bool stream, struct sip_msg *msg,
                  struct sip_hdr *hdrs, size_t max_hdrs);

/* Stream framing without a full parse, for the TCP/TLS transport.
 * *skip gets the number of leading CR/LF bytes (RFC 5626 §4.4.1 keep-alives;
 * the transport discards them and answers a "\r\n\r\n" ping with "\r\n").
 * Returns the length of the message that follows the skipped bytes,
 * IMS_EAGAIN (incomplete, or nothing but CR/LF so far), or IMS_EPROTO (no or
 * bad Content-Length, or a head or message larger than max). */
int ims_sip_frame(const char *buf, size_t len, size_t max, size_t *skip);

/* ---- header access ---- */
const struct sip_hdr *ims_sip_hdr_first(const struct sip_msg *msg, enum sip_hdr_id id);
const struct sip_hdr *ims_sip_hdr_next(const struct sip_msg *msg, const struct sip_hdr *h);
/* First header whose name matches (case-insensitively, compact forms too). */
const struct sip_hdr *ims_sip_hdr_by_name(const struct sip_msg *msg, ims_str name);
enum sip_hdr_id ims_sip_hdr_id(ims_str name);
const char *ims_sip_hdr_canonical_name(enum sip_hdr_id id); /* "Via" */
enum sip_method ims_sip_method_id(ims_str name);
const char *ims_sip_method_name(enum sip_method m);

/* Iterates the comma-separated values of a header value, honouring quoted
 * strings and <...>.  Set c to the value first; each call yields the next
 * trimmed element.  0, IMS_ENOENT at the end, IMS_EPROTO (unbalanced quote
 * or bracket, or an empty element). */
int ims_sip_list_next(struct ims_cur *c, ims_str *elem);

/* ---- on-demand parsers: caller-owned outputs, 0 or IMS_EPROTO ---- */
int ims_sip_parse_uri(ims_str s, struct sip_uri *out);
int ims_sip_parse_nameaddr(ims_str s, struct sip_nameaddr *out);  /* one element */
int ims_sip_parse_via(ims_str s, struct sip_via *out);            /* one element */
int ims_sip_parse_cseq(ims_str s, struct sip_cseq *out);
int ims_sip_parse_auth(ims_str s, struct sip_auth *out);
int ims_sip_parse_sec_mech(ims_str s, struct sip_sec_mech *out);   /* one element */
/* Finds param `name` in ";a=b;c;d="x"" (case-insensitive name).  *val is the
 * value (quotes removed) or empty for a flag.  0 or IMS_ENOENT. */
int ims_sip_param_get(ims_str params, const char *name, ims_str *val);
/* RFC 3261 §19.1.4 URI equality (sip/sips; tel compares numbers). */
bool ims_sip_uri_equal(const struct sip_uri *a, const struct sip_uri *b);
/* Is `token` in the comma list of every header with id (Supported, Require)? */
bool ims_sip_hdr_has_token(const struct sip_msg *msg, enum sip_hdr_id id, const char *token);

#endif
