/* parse_misc.c - character classes, header and method ids, lists, parameters,
 * CSeq, Security-* mechanisms and header access (RFC 3261 §7.3, §20, §25;
 * RFC 3329 §2.2). */
#include <string.h>

#include "sip/parse_int.h"

/* ---- character classes (RFC 3261 §25.1), built at compile time ---- */

#define CH_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define CH_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define CH_ALNUM(c) (CH_ALPHA(c) || CH_DIGIT(c))
#define CH_HEX(c) (CH_DIGIT(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))
#define CH_MARK(c)                                                                                 \
    ((c) == '-' || (c) == '_' || (c) == '.' || (c) == '!' || (c) == '~' || (c) == '*' ||           \
     (c) == '\'' || (c) == '(' || (c) == ')')
#define CH_UNRES(c) (CH_ALNUM(c) || CH_MARK(c))
#define CH_TOKEN(c)                                                                                \
    (CH_ALNUM(c) || (c) == '-' || (c) == '.' || (c) == '!' || (c) == '%' || (c) == '*' ||          \
     (c) == '_' || (c) == '+' || (c) == '`' || (c) == '\'' || (c) == '~')
#define CH_USER(c)                                                                                 \
    (CH_UNRES(c) || (c) == '&' || (c) == '=' || (c) == '+' || (c) == '$' || (c) == ',' ||          \
     (c) == ';' || (c) == '?' || (c) == '/')
#define CH_PASS(c)                                                                                 \
    (CH_UNRES(c) || (c) == '&' || (c) == '=' || (c) == '+' || (c) == '$' || (c) == ',')
#define CH_PARAM(c)                                                                                \
    (CH_UNRES(c) || (c) == '[' || (c) == ']' || (c) == '/' || (c) == ':' || (c) == '&' ||          \
     (c) == '+' || (c) == '$')
#define CH_HNV(c)                                                                                  \
    (CH_UNRES(c) || (c) == '[' || (c) == ']' || (c) == '/' || (c) == '?' || (c) == ':' ||          \
     (c) == '+' || (c) == '$')
#define CH_WORD(c)                                                                                 \
    (CH_TOKEN(c) || (c) == '(' || (c) == ')' || (c) == '<' || (c) == '>' || (c) == ':' ||          \
     (c) == '\\' || (c) == '"' || (c) == '/' || (c) == '[' || (c) == ']' || (c) == '?' ||          \
     (c) == '{' || (c) == '}')
#define CH_HOST(c) (CH_ALNUM(c) || (c) == '-' || (c) == '.' || (c) == '_')
#define CH_RESERVED(c)                                                                             \
    ((c) == ';' || (c) == '/' || (c) == '?' || (c) == ':' || (c) == '@' || (c) == '&' ||           \
     (c) == '=' || (c) == '+' || (c) == '$' || (c) == ',')
#define CH_URIC(c) (CH_RESERVED(c) || CH_UNRES(c))
#define CH_SCHEME(c) (CH_ALNUM(c) || (c) == '+' || (c) == '-' || (c) == '.')
#define CH_B64(c)                                                                                  \
    (CH_ALNUM(c) || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~' || (c) == '+' ||          \
     (c) == '/')
#define CH_TEL(c)                                                                                  \
    (CH_HEX(c) || (c) == '*' || (c) == '#' || (c) == '-' || (c) == '.' || (c) == '(' ||            \
     (c) == ')' || (c) == '+')
#define CH_GVAL(c) (CH_TOKEN(c) || (c) == '[' || (c) == ']' || (c) == ':')

#define CLS(c)                                                                                     \
    (uint16_t)((CH_TOKEN(c) ? SIP_C_TOKEN : 0) | (CH_UNRES(c) ? SIP_C_UNRES : 0) |                 \
               (CH_USER(c) ? SIP_C_USER : 0) | (CH_PASS(c) ? SIP_C_PASS : 0) |                     \
               (CH_PARAM(c) ? SIP_C_PARAM : 0) | (CH_HNV(c) ? SIP_C_HNV : 0) |                     \
               (CH_WORD(c) ? SIP_C_WORD : 0) | (CH_HOST(c) ? SIP_C_HOST : 0) |                     \
               (CH_URIC(c) ? SIP_C_URIC : 0) | (CH_HEX(c) ? SIP_C_HEX : 0) |                       \
               (CH_DIGIT(c) ? SIP_C_DIGIT : 0) | (CH_ALPHA(c) ? SIP_C_ALPHA : 0) |                 \
               (CH_SCHEME(c) ? SIP_C_SCHEME : 0) | (CH_B64(c) ? SIP_C_B64 : 0) |                   \
               (CH_TEL(c) ? SIP_C_TEL : 0) | (CH_GVAL(c) ? SIP_C_GVAL : 0))
#define R4(n) CLS(n), CLS((n) + 1), CLS((n) + 2), CLS((n) + 3)
#define R16(n) R4(n), R4((n) + 4), R4((n) + 8), R4((n) + 12)
#define R64(n) R16(n), R16((n) + 16), R16((n) + 32), R16((n) + 48)

const uint16_t ims_sip_cls[256] = { R64(0), R64(64), R64(128), R64(192) };

/* ---- header names (RFC 3261 §7.3.3 compact forms, §20) ---- */

struct hdr_name {
    const char *name;
    uint8_t len;
};
#define HN(s) { s, sizeof(s) - 1 }

static const struct hdr_name hdr_names[SIP_H__COUNT] = {
    [SIP_H_OTHER] = { "", 0 },
    [SIP_H_VIA] = HN("Via"),
    [SIP_H_FROM] = HN("From"),
    [SIP_H_TO] = HN("To"),
    [SIP_H_CALL_ID] = HN("Call-ID"),
    [SIP_H_CSEQ] = HN("CSeq"),
    [SIP_H_CONTACT] = HN("Contact"),
    [SIP_H_MAX_FORWARDS] = HN("Max-Forwards"),
    [SIP_H_CONTENT_LENGTH] = HN("Content-Length"),
    [SIP_H_CONTENT_TYPE] = HN("Content-Type"),
    [SIP_H_CONTENT_ENCODING] = HN("Content-Encoding"),
    [SIP_H_ROUTE] = HN("Route"),
    [SIP_H_RECORD_ROUTE] = HN("Record-Route"),
    [SIP_H_EXPIRES] = HN("Expires"),
    [SIP_H_MIN_EXPIRES] = HN("Min-Expires"),
    [SIP_H_AUTHORIZATION] = HN("Authorization"),
    [SIP_H_PROXY_AUTHORIZATION] = HN("Proxy-Authorization"),
    [SIP_H_WWW_AUTHENTICATE] = HN("WWW-Authenticate"),
    [SIP_H_PROXY_AUTHENTICATE] = HN("Proxy-Authenticate"),
    [SIP_H_AUTHENTICATION_INFO] = HN("Authentication-Info"),
    [SIP_H_SUPPORTED] = HN("Supported"),
    [SIP_H_REQUIRE] = HN("Require"),
    [SIP_H_PROXY_REQUIRE] = HN("Proxy-Require"),
    [SIP_H_UNSUPPORTED] = HN("Unsupported"),
    [SIP_H_ALLOW] = HN("Allow"),
    [SIP_H_ACCEPT] = HN("Accept"),
    [SIP_H_EVENT] = HN("Event"),
    [SIP_H_SUBSCRIPTION_STATE] = HN("Subscription-State"),
    [SIP_H_USER_AGENT] = HN("User-Agent"),
    [SIP_H_SERVER] = HN("Server"),
    [SIP_H_WARNING] = HN("Warning"),
    [SIP_H_RETRY_AFTER] = HN("Retry-After"),
    [SIP_H_REASON] = HN("Reason"),
    [SIP_H_DATE] = HN("Date"),
    [SIP_H_SUBJECT] = HN("Subject"),
    [SIP_H_PATH] = HN("Path"),
    [SIP_H_SERVICE_ROUTE] = HN("Service-Route"),
    [SIP_H_P_ASSERTED_IDENTITY] = HN("P-Asserted-Identity"),
    [SIP_H_P_PREFERRED_IDENTITY] = HN("P-Preferred-Identity"),
    [SIP_H_PRIVACY] = HN("Privacy"),
    [SIP_H_P_ASSOCIATED_URI] = HN("P-Associated-URI"),
    [SIP_H_P_VISITED_NETWORK_ID] = HN("P-Visited-Network-ID"),
    [SIP_H_P_CHARGING_VECTOR] = HN("P-Charging-Vector"),
    [SIP_H_P_CHARGING_FUNCTION_ADDRESSES] = HN("P-Charging-Function-Addresses"),
    [SIP_H_P_ACCESS_NETWORK_INFO] = HN("P-Access-Network-Info"),
    [SIP_H_P_CALLED_PARTY_ID] = HN("P-Called-Party-ID"),
    [SIP_H_SECURITY_CLIENT] = HN("Security-Client"),
    [SIP_H_SECURITY_SERVER] = HN("Security-Server"),
    [SIP_H_SECURITY_VERIFY] = HN("Security-Verify"),
    [SIP_H_ALLOW_EVENTS] = HN("Allow-Events"),
    [SIP_H_REFER_TO] = HN("Refer-To"),
    [SIP_H_REFERRED_BY] = HN("Referred-By"),
    [SIP_H_ACCEPT_CONTACT] = HN("Accept-Contact"),
    [SIP_H_REJECT_CONTACT] = HN("Reject-Contact"),
    [SIP_H_REQUEST_DISPOSITION] = HN("Request-Disposition"),
    [SIP_H_SESSION_EXPIRES] = HN("Session-Expires"),
    [SIP_H_MIN_SE] = HN("Min-SE"),
    [SIP_H_IDENTITY] = HN("Identity"),
    [SIP_H_RSEQ] = HN("RSeq"),
    [SIP_H_RACK] = HN("RAck"),
    [SIP_H_CONTENT_DISPOSITION] = HN("Content-Disposition"),
    [SIP_H_CONTENT_LANGUAGE] = HN("Content-Language"),
    [SIP_H_ACCEPT_ENCODING] = HN("Accept-Encoding"),
    [SIP_H_ACCEPT_LANGUAGE] = HN("Accept-Language"),
    [SIP_H_MIME_VERSION] = HN("MIME-Version"),
    [SIP_H_TIMESTAMP] = HN("Timestamp"),
    [SIP_H_ORGANIZATION] = HN("Organization"),
    [SIP_H_PRIORITY] = HN("Priority"),
    [SIP_H_CALL_INFO] = HN("Call-Info"),
    [SIP_H_ALERT_INFO] = HN("Alert-Info"),
    [SIP_H_ERROR_INFO] = HN("Error-Info"),
    [SIP_H_REPLY_TO] = HN("Reply-To"),
    [SIP_H_IN_REPLY_TO] = HN("In-Reply-To"),
    [SIP_H_HISTORY_INFO] = HN("History-Info"),
    [SIP_H_REPLACES] = HN("Replaces"),
    [SIP_H_TARGET_DIALOG] = HN("Target-Dialog"),
    [SIP_H_SIP_ETAG] = HN("SIP-ETag"),
    [SIP_H_SIP_IF_MATCH] = HN("SIP-If-Match"),
    [SIP_H_FLOW_TIMER] = HN("Flow-Timer"),
    [SIP_H_FEATURE_CAPS] = HN("Feature-Caps"),
    [SIP_H_P_SERVED_USER] = HN("P-Served-User"),
    [SIP_H_P_PROFILE_KEY] = HN("P-Profile-Key"),
    [SIP_H_P_USER_DATABASE] = HN("P-User-Database"),
    [SIP_H_P_ASSERTED_SERVICE] = HN("P-Asserted-Service"),
    [SIP_H_P_PREFERRED_SERVICE] = HN("P-Preferred-Service"),
    [SIP_H_P_EARLY_MEDIA] = HN("P-Early-Media"),
};

/* Compact forms: RFC 3261 §7.3.3 (i m e l c f s k t v), RFC 6665 (o u),
 * RFC 3515 (r), RFC 3892 (b), RFC 3841 (a j d), RFC 4028 (x), RFC 8224 (y). */
static const uint8_t compact[26] = {
    ['a' - 'a'] = SIP_H_ACCEPT_CONTACT,   ['b' - 'a'] = SIP_H_REFERRED_BY,
    ['c' - 'a'] = SIP_H_CONTENT_TYPE,     ['d' - 'a'] = SIP_H_REQUEST_DISPOSITION,
    ['e' - 'a'] = SIP_H_CONTENT_ENCODING, ['f' - 'a'] = SIP_H_FROM,
    ['i' - 'a'] = SIP_H_CALL_ID,          ['j' - 'a'] = SIP_H_REJECT_CONTACT,
    ['k' - 'a'] = SIP_H_SUPPORTED,        ['l' - 'a'] = SIP_H_CONTENT_LENGTH,
    ['m' - 'a'] = SIP_H_CONTACT,          ['o' - 'a'] = SIP_H_EVENT,
    ['r' - 'a'] = SIP_H_REFER_TO,         ['s' - 'a'] = SIP_H_SUBJECT,
    ['t' - 'a'] = SIP_H_TO,               ['u' - 'a'] = SIP_H_ALLOW_EVENTS,
    ['v' - 'a'] = SIP_H_VIA,              ['x' - 'a'] = SIP_H_SESSION_EXPIRES,
    ['y' - 'a'] = SIP_H_IDENTITY,
};

/* Long names grouped by first letter, most frequent first. */
static const uint8_t names_a[] = { SIP_H_ALLOW, SIP_H_AUTHORIZATION, SIP_H_ACCEPT,
                                   SIP_H_ALLOW_EVENTS, SIP_H_ACCEPT_CONTACT,
                                   SIP_H_ACCEPT_ENCODING, SIP_H_ACCEPT_LANGUAGE,
                                   SIP_H_ALERT_INFO, SIP_H_AUTHENTICATION_INFO, 0 };
static const uint8_t names_c[] = { SIP_H_CALL_ID, SIP_H_CSEQ, SIP_H_CONTACT,
                                   SIP_H_CONTENT_LENGTH, SIP_H_CONTENT_TYPE,
                                   SIP_H_CONTENT_ENCODING, SIP_H_CONTENT_DISPOSITION,
                                   SIP_H_CONTENT_LANGUAGE, SIP_H_CALL_INFO, 0 };
static const uint8_t names_d[] = { SIP_H_DATE, 0 };
static const uint8_t names_e[] = { SIP_H_EXPIRES, SIP_H_EVENT, SIP_H_ERROR_INFO, 0 };
static const uint8_t names_f[] = { SIP_H_FROM, SIP_H_FEATURE_CAPS, SIP_H_FLOW_TIMER, 0 };
static const uint8_t names_h[] = { SIP_H_HISTORY_INFO, 0 };
static const uint8_t names_i[] = { SIP_H_IDENTITY, SIP_H_IN_REPLY_TO, 0 };
static const uint8_t names_m[] = { SIP_H_MAX_FORWARDS, SIP_H_MIN_EXPIRES, SIP_H_MIN_SE,
                                   SIP_H_MIME_VERSION, 0 };
static const uint8_t names_o[] = { SIP_H_ORGANIZATION, 0 };
static const uint8_t names_p[] = { SIP_H_PATH, SIP_H_P_ASSERTED_IDENTITY,
                                   SIP_H_P_PREFERRED_IDENTITY, SIP_H_P_ACCESS_NETWORK_INFO,
                                   SIP_H_P_CHARGING_VECTOR, SIP_H_P_VISITED_NETWORK_ID,
                                   SIP_H_P_ASSOCIATED_URI, SIP_H_P_CALLED_PARTY_ID,
                                   SIP_H_P_CHARGING_FUNCTION_ADDRESSES, SIP_H_PRIVACY,
                                   SIP_H_PROXY_AUTHORIZATION, SIP_H_PROXY_AUTHENTICATE,
                                   SIP_H_PROXY_REQUIRE, SIP_H_PRIORITY, SIP_H_P_SERVED_USER,
                                   SIP_H_P_PROFILE_KEY, SIP_H_P_USER_DATABASE,
                                   SIP_H_P_ASSERTED_SERVICE, SIP_H_P_PREFERRED_SERVICE,
                                   SIP_H_P_EARLY_MEDIA, 0 };
static const uint8_t names_r[] = { SIP_H_ROUTE, SIP_H_RECORD_ROUTE, SIP_H_REQUIRE,
                                   SIP_H_REASON, SIP_H_RETRY_AFTER, SIP_H_RSEQ, SIP_H_RACK,
                                   SIP_H_REFER_TO, SIP_H_REFERRED_BY, SIP_H_REJECT_CONTACT,
                                   SIP_H_REPLACES, SIP_H_REPLY_TO, SIP_H_REQUEST_DISPOSITION, 0 };
static const uint8_t names_s[] = { SIP_H_SUPPORTED, SIP_H_SERVER, SIP_H_SERVICE_ROUTE,
                                   SIP_H_SECURITY_CLIENT, SIP_H_SECURITY_SERVER,
                                   SIP_H_SECURITY_VERIFY, SIP_H_SUBJECT,
                                   SIP_H_SUBSCRIPTION_STATE, SIP_H_SESSION_EXPIRES,
                                   SIP_H_SIP_ETAG, SIP_H_SIP_IF_MATCH, 0 };
static const uint8_t names_t[] = { SIP_H_TO, SIP_H_TIMESTAMP, SIP_H_TARGET_DIALOG, 0 };
static const uint8_t names_u[] = { SIP_H_USER_AGENT, SIP_H_UNSUPPORTED, 0 };
static const uint8_t names_v[] = { SIP_H_VIA, 0 };
static const uint8_t names_w[] = { SIP_H_WWW_AUTHENTICATE, SIP_H_WARNING, 0 };

/* Case-insensitive equality against a canonical name made of letters and
 * '-' (OR 0x20 folds letters and leaves '-' alone). */
static bool name_eq(ims_str s, const struct hdr_name *n)
{
    if (s.len != n->len)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (((unsigned char)s.p[i] | 0x20) != ((unsigned char)n->name[i] | 0x20))
            return false;
    return true;
}

enum sip_hdr_id ims_sip_hdr_id(ims_str name)
{
    /* the OR-0x20 comparison is only sound on token bytes */
    for (size_t i = 0; i < name.len; i++)
        if (!sip_is((unsigned char)name.p[i], SIP_C_TOKEN))
            return SIP_H_OTHER;
    return sip_hdr_id_token(name);
}

enum sip_hdr_id sip_hdr_id_token(ims_str name)
{
    if (name.len == 0)
        return SIP_H_OTHER;
    unsigned char c = (unsigned char)name.p[0] | 0x20;
    if (c < 'a' || c > 'z')
        return SIP_H_OTHER;
    if (name.len == 1)
        return (enum sip_hdr_id)compact[c - 'a'];
    const uint8_t *list;
    switch (c) {
    case 'a': list = names_a; break;
    case 'c': list = names_c; break;
    case 'd': list = names_d; break;
    case 'e': list = names_e; break;
    case 'f': list = names_f; break;
    case 'h': list = names_h; break;
    case 'i': list = names_i; break;
    case 'm': list = names_m; break;
    case 'o': list = names_o; break;
    case 'p': list = names_p; break;
    case 'r': list = names_r; break;
    case 's': list = names_s; break;
    case 't': list = names_t; break;
    case 'u': list = names_u; break;
    case 'v': list = names_v; break;
    case 'w': list = names_w; break;
    default: return SIP_H_OTHER;
    }
    for (; *list; list++)
        if (name_eq(name, &hdr_names[*list]))
            return (enum sip_hdr_id)*list;
    return SIP_H_OTHER;
}

const char *ims_sip_hdr_canonical_name(enum sip_hdr_id id)
{
    if ((unsigned)id >= SIP_H__COUNT || id == SIP_H_OTHER)
        return NULL;
    return hdr_names[id].name;
}

/* ---- methods (RFC 3261 §7.1: method names are case-sensitive) ---- */

static const struct hdr_name method_names[] = {
    [SIP_M_UNKNOWN] = { NULL, 0 },       [SIP_M_INVITE] = HN("INVITE"),
    [SIP_M_ACK] = HN("ACK"),             [SIP_M_BYE] = HN("BYE"),
    [SIP_M_CANCEL] = HN("CANCEL"),       [SIP_M_OPTIONS] = HN("OPTIONS"),
    [SIP_M_REGISTER] = HN("REGISTER"),   [SIP_M_PRACK] = HN("PRACK"),
    [SIP_M_SUBSCRIBE] = HN("SUBSCRIBE"), [SIP_M_NOTIFY] = HN("NOTIFY"),
    [SIP_M_PUBLISH] = HN("PUBLISH"),     [SIP_M_INFO] = HN("INFO"),
    [SIP_M_REFER] = HN("REFER"),         [SIP_M_MESSAGE] = HN("MESSAGE"),
    [SIP_M_UPDATE] = HN("UPDATE"),
};

enum sip_method ims_sip_method_id(ims_str name)
{
    if (name.len < 3 || name.len > 9)
        return SIP_M_UNKNOWN;
    for (size_t m = SIP_M_INVITE; m <= SIP_M_UPDATE; m++)
        if (method_names[m].len == name.len && name.p[0] == method_names[m].name[0] &&
            memcmp(name.p, method_names[m].name, name.len) == 0)
            return (enum sip_method)m;
    return SIP_M_UNKNOWN;
}

const char *ims_sip_method_name(enum sip_method m)
{
    if ((unsigned)m > SIP_M_UPDATE)
        return NULL;
    return method_names[m].name;
}

bool ims_sip_method_creates_dialog(enum sip_method m)
{
    return m == SIP_M_INVITE || m == SIP_M_SUBSCRIBE || m == SIP_M_REFER || m == SIP_M_NOTIFY;
}

/* ---- numbers ---- */

int sip_u32(ims_str s, uint32_t max, uint32_t *out)
{
    uint64_t v;
    /* leading zeros are legal ("Max-Forwards: 0068", RFC 4475 §3.1.1.1) */
    if (s.len > 64 || ims_str_to_u64(s, max, &v) != 0)
        return IMS_EPROTO;
    *out = (uint32_t)v;
    return 0;
}

/* ---- lists (RFC 3261 §7.3.1: "#" rule, values separated by commas) ---- */

/* Bytes that end a plain run inside a list element: the comma between
 * elements and the openers of the two constructs that may hide one. */
static const bool list_stop[256] = { [','] = true, ['"'] = true, ['<'] = true };

/* The first list_stop byte in [q, end), or end.  Eight bytes at a time
 * while eight remain: a Via value is ~100 bytes without a stop, and the
 * parser walks every Via value of every message to count them.  SWAR "has
 * a zero byte" test on v XOR each stop byte; it can be wrong about which
 * byte matched, never about whether one did, so the byte loop finds it. */
static const char *list_scan(const char *q, const char *end)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    while (end - q >= 8) {
        uint64_t v;
        memcpy(&v, q, sizeof(v));
        uint64_t a = v ^ (ones * ','), b = v ^ (ones * '"'), d = v ^ (ones * '<');
        if ((((a - ones) & ~a) | ((b - ones) & ~b) | ((d - ones) & ~d)) & highs)
            break;
        q += 8;
    }
    while (q < end && !list_stop[(unsigned char)*q])
        q++;
    return q;
}

int ims_sip_list_next(struct ims_cur *c, ims_str *elem)
{
    struct ims_cur t = *c;
    sip_lws(&t);
    if (t.p >= t.end)
        return IMS_ENOENT;
    const char *s = t.p;
    const char *q = t.p;
    for (;;) {
        q = list_scan(q, t.end);
        if (q >= t.end || *q == ',')
            break;
        if (*q == '"') {
            /* quoted-string: skip quoted-pairs, find the closing quote */
            q = sip_quote_end(q + 1, t.end);
        } else {
            /* '<' ... '>' (name-addr): a URI may hold ',' unescaped */
            q = memchr(q, '>', (size_t)(t.end - q));
        }
        if (!q)
            return IMS_EPROTO;
        q++;
    }
    ims_str e = sip_rtrim(sip_slice(s, q));
    if (e.len == 0)
        return IMS_EPROTO;
    if (q < t.end) {
        /* consume the comma; an empty element must follow-check now, since
         * the next call cannot tell "a," from "a" */
        struct ims_cur u = { q + 1, t.end };
        sip_lws(&u);
        if (u.p >= u.end || *u.p == ',')
            return IMS_EPROTO;
        q++;
    }
    c->p = q;
    *elem = e;
    return 0;
}

/* ---- parameters ---- */

int sip_hparam_next(struct ims_cur *c, struct sip_param *p)
{
    struct ims_cur t = *c;
    if (sip_sep(&t, ';') != 0)
        return IMS_ENOENT;
    memset(p, 0, sizeof(*p));
    if (sip_token(&t, &p->name) != 0)
        return IMS_EPROTO;
    if (sip_sep(&t, '=') == 0) {
        p->has_value = true;
        int rc = sip_quoted(&t, &p->value);
        if (rc == 0) {
            p->quoted = true;
        } else if (rc == IMS_ENOENT) {
            const char *s = t.p;
            if (sip_span(&t, SIP_C_GVAL, false) <= 0)
                return IMS_EPROTO;
            p->value = sip_slice(s, t.p);
        } else {
            return IMS_EPROTO;
        }
    }
    *c = t;
    return 0;
}

/* ims_sip_param_get()'s stops: PG_VAL ends a value, PG_NAME a name. */
enum { PG_VAL = 1, PG_NAME = 2 };
static const uint8_t pg_stop[256] = {
    [';'] = PG_VAL | PG_NAME,  [' '] = PG_VAL | PG_NAME, ['\t'] = PG_VAL | PG_NAME,
    ['\r'] = PG_VAL | PG_NAME, ['\n'] = PG_VAL | PG_NAME, [','] = PG_VAL | PG_NAME,
    ['?'] = PG_VAL | PG_NAME,  ['>'] = PG_VAL | PG_NAME, ['='] = PG_NAME,
};

static ims_str pg_until(struct ims_cur *c, uint8_t stop)
{
    const char *s = c->p;
    while (c->p < c->end && !(pg_stop[(unsigned char)*c->p] & stop))
        c->p++;
    return sip_slice(s, c->p);
}

int ims_sip_param_get(ims_str params, const char *name, ims_str *val)
{
    /* Tolerant scan that works on URI params (";a=b", no LWS) and header
     * params (LWS around ';' and '='): names end at '=', ';', LWS, ',', '?'
     * or '>'; values are a quoted-string or run to the next such byte. */
    struct ims_cur c = ims_cur_of(params);
    size_t nlen = strlen(name);
    for (;;) {
        sip_lws(&c);
        if (sip_char(&c, ';') != 0)
            return IMS_ENOENT;
        sip_lws(&c);
        ims_str n = pg_until(&c, PG_NAME), v = IMS_STR_NULL;
        struct ims_cur t = c;
        sip_lws(&t);
        if (sip_char(&t, '=') == 0) {
            sip_lws(&t);
            if (sip_quoted(&t, &v) != 0)
                v = pg_until(&t, PG_VAL);
            c = t;
        }
        if (n.len == nlen && ims_str_caseeq(n, ims_str_make(name, nlen))) {
            *val = v;
            return 0;
        }
        if (c.p < c.end && *c.p != ';' && *c.p != ' ' && *c.p != '\t' && *c.p != '\r' &&
            *c.p != '\n')
            return IMS_ENOENT; /* ',', '?', '>' or a broken quote: end of the params */
    }
}

/* ---- CSeq (RFC 3261 §20.16) ---- */

int ims_sip_parse_cseq(ims_str s, struct sip_cseq *out)
{
    struct ims_cur c = ims_cur_of(s);
    memset(out, 0, sizeof(*out));
    sip_lws(&c);
    const char *d = c.p;
    if (sip_span(&c, SIP_C_DIGIT, false) <= 0)
        return IMS_EPROTO;
    uint32_t num;
    /* §8.1.1.5: the sequence number MUST be less than 2**31 */
    if (sip_u32(sip_slice(d, c.p), 0x7fffffffu, &num) != 0)
        return IMS_EPROTO;
    if (sip_lws(&c) == 0)
        return IMS_EPROTO;
    if (sip_token(&c, &out->method_name) != 0)
        return IMS_EPROTO;
    sip_lws(&c);
    if (!ims_cur_eof(&c))
        return IMS_EPROTO;
    out->num = num;
    out->method = ims_sip_method_id(out->method_name);
    return 0;
}

/* ---- Security-Client/-Server/-Verify (RFC 3329 §2.2) ---- */

static bool qvalue_ok(ims_str q)
{
    /* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) */
    if (q.len == 0 || q.len > 5 || (q.p[0] != '0' && q.p[0] != '1'))
        return false;
    if (q.len == 1)
        return true;
    if (q.p[1] != '.')
        return false;
    for (size_t i = 2; i < q.len; i++) {
        if (q.p[i] < '0' || q.p[i] > '9')
            return false;
        if (q.p[0] == '1' && q.p[i] != '0')
            return false;
    }
    return true;
}

int ims_sip_parse_sec_mech(ims_str s, struct sip_sec_mech *out)
{
    struct ims_cur c = ims_cur_of(s);
    memset(out, 0, sizeof(*out));
    sip_lws(&c);
    if (sip_token(&c, &out->mechanism) != 0)
        return IMS_EPROTO;
    const char *after = c.p, *ps = NULL, *pe = NULL;
    struct sip_param p;
    int rc;
    bool have_q = false;
    while ((rc = sip_hparam_next(&c, &p)) == 0) {
        if (!ps)
            ps = memchr(after, ';', (size_t)(c.p - after)); /* the first SEMI */
        pe = c.p;
        if (SIP_TOK_EQ(p.name, "q")) {
            if (have_q || !p.has_value || p.quoted || !qvalue_ok(p.value))
                return IMS_EPROTO;
            have_q = true;
            out->q = p.value;
        }
    }
    if (rc != IMS_ENOENT)
        return IMS_EPROTO;
    sip_lws(&c);
    if (!ims_cur_eof(&c))
        return IMS_EPROTO;
    if (ps)
        out->params = sip_slice(ps, pe);
    return 0;
}

/* ---- header access ---- */

const struct sip_hdr *ims_sip_hdr_first(const struct sip_msg *msg, enum sip_hdr_id id)
{
    if ((unsigned)id >= SIP_H__COUNT || msg->first[id] < 0)
        return NULL;
    return &msg->hdrs[msg->first[id]];
}

const struct sip_hdr *ims_sip_hdr_next(const struct sip_msg *msg, const struct sip_hdr *h)
{
    return h->next >= 0 ? &msg->hdrs[h->next] : NULL;
}

const struct sip_hdr *ims_sip_hdr_next_same(const struct sip_msg *msg, const struct sip_hdr *h)
{
    for (const struct sip_hdr *n = ims_sip_hdr_next(msg, h); n; n = ims_sip_hdr_next(msg, n))
        if (h->id != SIP_H_OTHER || ims_str_caseeq(n->name, h->name))
            return n;
    return NULL;
}

const struct sip_hdr *ims_sip_hdr_by_name(const struct sip_msg *msg, ims_str name)
{
    enum sip_hdr_id id = ims_sip_hdr_id(name);
    if (id != SIP_H_OTHER)
        return ims_sip_hdr_first(msg, id);
    for (const struct sip_hdr *h = ims_sip_hdr_first(msg, SIP_H_OTHER); h;
         h = ims_sip_hdr_next(msg, h))
        if (ims_str_caseeq(h->name, name))
            return h;
    return NULL;
}

bool ims_sip_hdr_has_token(const struct sip_msg *msg, enum sip_hdr_id id, const char *token)
{
    ims_str want = ims_str_cstr(token);
    for (const struct sip_hdr *h = ims_sip_hdr_first(msg, id); h; h = ims_sip_hdr_next(msg, h)) {
        struct ims_cur c = ims_cur_of(h->value);
        ims_str e;
        while (ims_sip_list_next(&c, &e) == 0) {
            /* compare the option-tag before any ";param" */
            long semi = ims_str_chr(e, ';');
            if (semi >= 0)
                e = sip_rtrim(ims_str_make(e.p, (size_t)semi));
            if (ims_str_caseeq(e, want))
                return true;
        }
    }
    return false;
}

/* ---- single-value checks used by ims_sip_validate() ---- */

int sip_check_callid(ims_str v)
{
    /* callid = word [ "@" word ] (RFC 3261 §25.1) */
    struct ims_cur c = ims_cur_of(v);
    if (sip_span(&c, SIP_C_WORD, false) <= 0)
        return IMS_EPROTO;
    if (sip_char(&c, '@') == 0 && sip_span(&c, SIP_C_WORD, false) <= 0)
        return IMS_EPROTO;
    return ims_cur_eof(&c) ? 0 : IMS_EPROTO;
}

int sip_check_token_list(ims_str v, bool allow_params)
{
    struct ims_cur c = ims_cur_of(v);
    ims_str e;
    int rc;
    while ((rc = ims_sip_list_next(&c, &e)) == 0) {
        struct ims_cur t = ims_cur_of(e);
        ims_str tok;
        if (sip_token(&t, &tok) != 0)
            return IMS_EPROTO;
        struct sip_param p;
        while (allow_params && (rc = sip_hparam_next(&t, &p)) == 0)
            ;
        if (allow_params && rc != IMS_ENOENT)
            return IMS_EPROTO;
        if (!ims_cur_eof(&t))
            return IMS_EPROTO;
    }
    return rc == IMS_ENOENT ? 0 : IMS_EPROTO;
}

int sip_check_media_type(ims_str v)
{
    /* media-type = m-type SLASH m-subtype *(SEMI m-parameter) (§20.15) */
    struct ims_cur c = ims_cur_of(v);
    ims_str t;
    struct sip_param p;
    int rc;
    if (sip_token(&c, &t) != 0 || sip_sep(&c, '/') != 0 || sip_token(&c, &t) != 0)
        return IMS_EPROTO;
    while ((rc = sip_hparam_next(&c, &p)) == 0)
        if (!p.has_value)
            return IMS_EPROTO;
    if (rc != IMS_ENOENT)
        return IMS_EPROTO;
    sip_lws(&c);
    return ims_cur_eof(&c) ? 0 : IMS_EPROTO;
}

int sip_check_delta(ims_str v, bool allow_params)
{
    /* delta-seconds = 1*DIGIT; overlarge values are legal syntax (RFC 4475
     * §3.1.2.4 lets the element treat them as the default) */
    struct ims_cur c = ims_cur_of(v);
    struct sip_param p;
    int rc = IMS_ENOENT;
    if (sip_span(&c, SIP_C_DIGIT, false) <= 0)
        return IMS_EPROTO;
    if (allow_params) {
        /* Retry-After may carry a comment: "18000 (in a meeting)" */
        struct ims_cur t = c;
        sip_lws(&t);
        if (t.p < t.end && *t.p == '(') {
            const char *cp = memchr(t.p, ')', (size_t)(t.end - t.p));
            if (!cp)
                return IMS_EPROTO;
            c.p = cp + 1;
        }
        while ((rc = sip_hparam_next(&c, &p)) == 0)
            ;
        if (rc != IMS_ENOENT)
            return IMS_EPROTO;
    }
    sip_lws(&c);
    return ims_cur_eof(&c) ? 0 : IMS_EPROTO;
}

static bool lit_at(struct ims_cur *c, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(set[i]);
        if (ims_cur_left(c) >= l && memcmp(c->p, set[i], l) == 0) {
            c->p += l;
            return true;
        }
    }
    return false;
}

static bool digits_at(struct ims_cur *c, size_t n)
{
    if (ims_cur_left(c) < n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (c->p[i] < '0' || c->p[i] > '9')
            return false;
    c->p += n;
    return true;
}

int sip_check_date(ims_str v)
{
    /* SIP-date = rfc1123-date = wkday "," SP date1 SP time SP "GMT"
     * (RFC 3261 §20.17; RFC 2616 §3.3.1).  RFC 4475 §3.1.2.12 (EST) fails. */
    static const char *const wkday[] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
    static const char *const month[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    struct ims_cur c = ims_cur_of(v);
    if (!lit_at(&c, wkday, 7) || sip_char(&c, ',') || sip_char(&c, ' ') ||
        !digits_at(&c, 2) || sip_char(&c, ' ') || !lit_at(&c, month, 12) ||
        sip_char(&c, ' ') || !digits_at(&c, 4) || sip_char(&c, ' ') ||
        !digits_at(&c, 2) || sip_char(&c, ':') || !digits_at(&c, 2) ||
        sip_char(&c, ':') || !digits_at(&c, 2) || sip_char(&c, ' '))
        return IMS_EPROTO;
    static const char *const gmt[] = { "GMT" };
    if (!lit_at(&c, gmt, 1) || !ims_cur_eof(&c))
        return IMS_EPROTO;
    return 0;
}
