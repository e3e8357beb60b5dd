/* parse_msg.c - start line, header splitting, eager core headers, framing
 * (RFC 3261 §7, §8.1.1, §18.3, §20) and the full-message validation pass.
 *
 * One pass over the header block: memchr() finds each line end, folded
 * continuation lines (line end followed by SP/HTAB, §7.3.1) join the logical
 * line, the name is classified by ims_sip_hdr_id() (first letter + length),
 * and only Via, From, To, Call-ID, CSeq, Max-Forwards and Content-Length are
 * parsed now.  Nothing is allocated and nothing past buf + len is read. */
#include <string.h>

#include "sip/parse_int.h"

/* The first fault wins, except that 416 (a well-formed Request-URI with a
 * scheme we do not serve) yields to any syntax fault found after it. */
static void set_err(struct sip_msg *m, int status, const char *reason)
{
    if (m->err_status == 0 || (m->err_status == 416 && status != 416)) {
        m->err_status = status;
        m->err_reason = reason;
    }
}

static void msg_init(struct sip_msg *m, struct sip_hdr *hdrs)
{
    memset(m, 0, sizeof(*m));
    m->hdrs = hdrs;
    for (size_t i = 0; i < SIP_H__COUNT; i++)
        m->first[i] = -1;
    m->max_forwards = -1;
    m->content_length = -1;
}

/* SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT (§25.1; "SIP" matches any case) */
static bool version_syntax(ims_str v)
{
    if (v.len < 7 || !ims_str_has_caseprefix(v, "SIP/"))
        return false;
    struct ims_cur c = { v.p + 4, v.p + v.len };
    return sip_span(&c, SIP_C_DIGIT, false) > 0 && sip_char(&c, '.') == 0 &&
           sip_span(&c, SIP_C_DIGIT, false) > 0 && ims_cur_eof(&c);
}

static bool version_2_0(ims_str v)
{
    return ims_str_caseeq_lit(v, "SIP/2.0");
}

/* Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (§7.2) */
static void parse_status_line(struct sip_msg *m, ims_str line)
{
    m->kind = SIP_MSG_RESPONSE;
    const char *sp = memchr(line.p, ' ', line.len);
    if (!sp) {
        set_err(m, 400, "Bad Status-Line");
        return;
    }
    m->version = sip_slice(line.p, sp);
    const char *s = sp + 1, *end = line.p + line.len;
    /* Status-Code = 3DIGIT; RFC 4475 §3.1.2.19 (4294967301) fails here */
    if (!version_syntax(m->version) || end - s < 3 || !sip_is((unsigned char)s[0], SIP_C_DIGIT) ||
        !sip_is((unsigned char)s[1], SIP_C_DIGIT) || !sip_is((unsigned char)s[2], SIP_C_DIGIT) ||
        (end - s > 3 && s[3] != ' ')) {
        set_err(m, 400, "Bad Status-Line");
        return;
    }
    m->status = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    if (m->status < 100 || m->status > 699) {
        set_err(m, 400, "Bad Status-Line");
        return;
    }
    /* Reason-Phrase may be empty (RFC 4475 §3.1.1.13) and may hold UTF-8
     * (§3.1.1.12); a missing SP before an empty phrase is tolerated */
    if (end - s > 4)
        m->reason = sip_slice(s + 4, end);
    for (size_t i = 0; i < m->reason.len; i++) {
        unsigned char ch = (unsigned char)m->reason.p[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            set_err(m, 400, "Bad Status-Line");
            return;
        }
    }
    if (!version_2_0(m->version))
        set_err(m, 505, "Version Not Supported");
}

/* Request-Line = Method SP Request-URI SP SIP-Version CRLF (§7.1).  The line
 * counts as a request (kind set, so a 400 may be sent) once it starts with a
 * method token and SP and its last word starts with "SIP/". */
static void parse_request_line(struct sip_msg *m, ims_str line)
{
    struct ims_cur c = ims_cur_of(line);
    ims_str method;
    if (sip_token(&c, &method) != 0 || c.p >= c.end || *c.p != ' ') {
        set_err(m, 400, "Bad start line");
        return;
    }
    ims_str t = line;
    bool trailing = false;
    while (t.len && (t.p[t.len - 1] == ' ' || t.p[t.len - 1] == '\t')) {
        t.len--;
        trailing = true;
    }
    const char *lsp = t.p + t.len;
    while (lsp > c.p && lsp[-1] != ' ')
        lsp--;
    lsp--; /* the SP before the version, or c.p when there is only one SP */
    if (lsp <= c.p) {
        set_err(m, 400, "Bad start line");
        return;
    }
    ims_str version = sip_slice(lsp + 1, t.p + t.len);
    if (!ims_str_has_caseprefix(version, "SIP/")) {
        set_err(m, 400, "Bad start line");
        return;
    }
    m->kind = SIP_MSG_REQUEST;
    m->method_name = method;
    m->method = ims_sip_method_id(method);
    m->version = version;
    /* RFC 4475 §3.1.2.10: SP after the version; §3.1.2.9: several SPs */
    if (trailing)
        set_err(m, 400, "Bad Request-Line");
    if (!version_syntax(version))
        set_err(m, 400, "Bad Request-Line");
    else if (!version_2_0(version))
        set_err(m, 505, "Version Not Supported"); /* §21.5.6; RFC 4475 §3.1.2.16 */
    ims_str uri = sip_slice(c.p + 1, lsp);
    m->ruri_raw = uri;
    if (uri.len == 0 || ims_is_ws((unsigned char)uri.p[0]) ||
        ims_is_ws((unsigned char)uri.p[uri.len - 1])) {
        set_err(m, 400, "Bad Request-Line");
    } else if (ims_sip_parse_uri(uri, &m->ruri) != 0) {
        /* RFC 4475 §3.1.2.7 (<>) and §3.1.2.8 (embedded LWS) */
        set_err(m, 400, "Bad Request-URI");
    } else if ((m->ruri.scheme == SIP_URI_SIP || m->ruri.scheme == SIP_URI_SIPS) &&
               m->ruri.headers.len) {
        /* §19.1.5: headers are not allowed in a Request-URI (RFC 4475
         * §3.1.2.11, rejected rather than silently ignored) */
        set_err(m, 400, "Bad Request-URI");
    } else if (m->ruri.scheme == SIP_URI_OTHER) {
        /* §8.2.2.1 / §16.3: we serve sip, sips and tel only (RFC 4475
         * §3.3.2, §3.3.3) */
        set_err(m, 416, "Unsupported URI Scheme");
    }
}

static void parse_start_line(struct sip_msg *m, ims_str line)
{
    m->start_line = line;
    if (ims_str_has_caseprefix(line, "SIP/"))
        parse_status_line(m, line);
    else
        parse_request_line(m, line);
}

/* ---- eager header parsing ---- */

static void eager_via(struct sip_msg *m, const struct sip_hdr *h)
{
    struct ims_cur c = ims_cur_of(h->value);
    ims_str e;
    int rc;
    size_t n = 0;
    while ((rc = ims_sip_list_next(&c, &e)) == 0) {
        if (m->nvia == 0 && ims_sip_parse_via(e, &m->via1) != 0)
            set_err(m, 400, "Bad Via");
        m->nvia++;
        n++;
    }
    if (rc != IMS_ENOENT || n == 0)
        set_err(m, 400, "Bad Via");
}

static void eager(struct sip_msg *m, const struct sip_hdr *h, bool dup)
{
    uint32_t v;
    switch (h->id) {
    case SIP_H_VIA:
        eager_via(m, h);
        break;
    case SIP_H_FROM:
        /* RFC 4475 §3.3.8: several From/To/Call-ID/CSeq/Max-Forwards → 400 */
        if (dup)
            set_err(m, 400, "Duplicate From");
        else if (ims_sip_parse_nameaddr(h->value, &m->from) != 0)
            set_err(m, 400, "Bad From");
        break;
    case SIP_H_TO:
        if (dup)
            set_err(m, 400, "Duplicate To");
        else if (ims_sip_parse_nameaddr(h->value, &m->to) != 0)
            set_err(m, 400, "Bad To");
        break;
    case SIP_H_CALL_ID:
        if (dup)
            set_err(m, 400, "Duplicate Call-ID");
        else if (sip_check_callid(h->value) != 0)
            set_err(m, 400, "Bad Call-ID");
        else
            m->call_id = h->value;
        break;
    case SIP_H_CSEQ:
        if (dup)
            set_err(m, 400, "Duplicate CSeq");
        else if (ims_sip_parse_cseq(h->value, &m->cseq) != 0)
            set_err(m, 400, "Bad CSeq"); /* RFC 4475 §3.1.2.4, §3.1.2.5 */
        break;
    case SIP_H_MAX_FORWARDS:
        /* §20.22: an integer 0-255 */
        if (dup)
            set_err(m, 400, "Duplicate Max-Forwards");
        else if (sip_u32(h->value, 255, &v) != 0)
            set_err(m, 400, "Bad Max-Forwards");
        else
            m->max_forwards = (int)v;
        break;
    case SIP_H_CONTENT_LENGTH:
        /* RFC 4475 §3.3.9: several values are a framing error; §3.1.2.3:
         * negative values are not 1*DIGIT */
        if (dup)
            set_err(m, 400, "Bad Content-Length");
        else if (sip_u32(h->value, 0x7fffffffu, &v) != 0)
            set_err(m, 400, "Bad Content-Length");
        else
            m->content_length = (long)v;
        break;
    default:
        break;
    }
}

/* Adds one logical header line [line, end).  Returns 0 or IMS_ELIMIT. */
static int add_header(struct sip_msg *m, size_t max, const char *line, const char *end,
                      int16_t *last)
{
    const char *ce = end; /* content end: without the line terminator */
    if (ce > line && ce[-1] == '\n')
        ce--;
    if (ce > line && ce[-1] == '\r')
        ce--;
    struct ims_cur c = { line, ce };
    const char *ns = c.p;
    while (c.p < c.end && sip_is((unsigned char)*c.p, SIP_C_TOKEN))
        c.p++;
    ims_str name = sip_slice(ns, c.p);
    sip_lws(&c); /* "Call-ID\r\n \t:" (RFC 4475 §3.1.1.1) */
    if (name.len == 0 || sip_char(&c, ':') != 0) {
        set_err(m, 400, "Bad header line");
        return 0;
    }
    sip_lws(&c);
    /* a CR that does not start a line end could end the line for the next
     * hop's parser: refuse it rather than forward a smuggled header */
    for (const char *r = memchr(c.p, '\r', (size_t)(ce - c.p)); r;
         r = memchr(r + 1, '\r', (size_t)(ce - r - 1))) {
        if (r + 1 >= ce || r[1] != '\n') {
            set_err(m, 400, "Bad header line");
            break;
        }
    }
    if (m->nhdrs >= max)
        return IMS_ELIMIT;
    int16_t idx = (int16_t)m->nhdrs++;
    struct sip_hdr *h = &m->hdrs[idx];
    h->name = name;
    h->value = sip_rtrim(sip_slice(c.p, ce));
    h->id = (uint16_t)sip_hdr_id_token(name); /* name is all token bytes */
    h->next = -1;
    h->raw_len = (uint32_t)(end - line);
    bool dup = m->first[h->id] >= 0;
    if (!dup)
        m->first[h->id] = idx;
    else
        m->hdrs[last[h->id]].next = idx;
    last[h->id] = idx;
    eager(m, h, dup);
    return 0;
}

static int fail(struct sip_msg *m)
{
    return m->err_status == 513 ? IMS_ELIMIT : IMS_EPROTO;
}

int ims_sip_parse(const char *buf, size_t len, bool stream, struct sip_msg *msg,
                  struct sip_hdr *hdrs, size_t max_hdrs)
{
    msg_init(msg, hdrs);
    if (max_hdrs > INT16_MAX)
        max_hdrs = INT16_MAX;
    if (len == 0) {
        if (stream)
            return IMS_EAGAIN;
        set_err(msg, 400, "Empty message");
        return IMS_EPROTO;
    }

    /* RFC 5626 §4.4.1 keep-alives and stray line ends before a message */
    size_t skip = 0;
    while (skip < len && (buf[skip] == '\r' || buf[skip] == '\n'))
        skip++;
    const char *p = buf + skip, *end = buf + len;
    msg->buf = p;
    if (p == end) {
        if (stream)
            return IMS_EAGAIN;
        set_err(msg, 400, "Empty message");
        return IMS_EPROTO;
    }
    if (skip > (size_t)INT32_MAX - SIP_MAX_MSG_DEFAULT - 1) {
        set_err(msg, 513, "Message Too Large");
        return IMS_ELIMIT;
    }

    /* ---- start line ---- */
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl && stream) {
        if ((size_t)(end - p) > SIP_MAX_MSG_DEFAULT) {
            set_err(msg, 513, "Message Too Large");
            return IMS_ELIMIT;
        }
        return IMS_EAGAIN;
    }
    const char *le = nl ? nl : end;
    ims_str line = sip_slice(p, le);
    if (line.len && line.p[line.len - 1] == '\r')
        line.len--;
    parse_start_line(msg, ims_str_make(p, line.len));
    if (msg->kind == SIP_MSG_NONE)
        return IMS_EPROTO; /* not SIP: nothing may be answered */
    const char *q = nl ? nl + 1 : end;
    msg->hdrs_off = (size_t)(q - p);

    /* ---- header lines ---- */
    int16_t last[SIP_H__COUNT];
    const char *hdrs_end = NULL, *head_end = NULL;
    while (q < end) {
        if (*q == '\n' || (*q == '\r' && q + 1 < end && q[1] == '\n')) {
            hdrs_end = q;
            head_end = q + (*q == '\r' ? 2 : 1);
            break;
        }
        if (*q == '\r' && q + 1 >= end)
            break;
        /* the logical line ends at a line end not followed by SP/HTAB */
        const char *e = memchr(q, '\n', (size_t)(end - q));
        while (e && e + 1 < end && (e[1] == ' ' || e[1] == '\t'))
            e = memchr(e + 1, '\n', (size_t)(end - e - 1));
        const char *lend;
        if (e && e + 1 < end) {
            lend = e + 1;
        } else if (stream) {
            break; /* need the next byte to rule out a folded line */
        } else {
            lend = end; /* datagram: the last line runs to its end */
        }
        if (ims_is_ws((unsigned char)*q)) {
            /* a continuation of the start line */
            set_err(msg, 400, "Bad header line");
        } else if (add_header(msg, max_hdrs, q, lend, last) != 0) {
            /* a cap, not a syntax fault: it overrides any earlier fault */
            msg->err_status = 513;
            msg->err_reason = "Too many headers";
            return IMS_ELIMIT;
        }
        q = lend;
    }
    if (!head_end) {
        if (stream) {
            if ((size_t)(end - p) > SIP_MAX_MSG_DEFAULT) {
                set_err(msg, 513, "Message Too Large");
                return IMS_ELIMIT;
            }
            return IMS_EAGAIN;
        }
        /* §7: the empty line is mandatory even without a body */
        set_err(msg, 400, "Missing empty line");
        hdrs_end = head_end = end;
    }
    msg->hdrs_end = (size_t)(hdrs_end - p);
    msg->head_len = (size_t)(head_end - p);

    /* ---- mandatory headers (§8.1.1; RFC 4475 §3.3.1); Max-Forwards is
     * optional for RFC 2543 peers (RFC 4475 §3.4.1) ---- */
    if (msg->first[SIP_H_TO] < 0)
        set_err(msg, 400, "Missing To");
    if (msg->first[SIP_H_FROM] < 0)
        set_err(msg, 400, "Missing From");
    if (msg->first[SIP_H_CALL_ID] < 0)
        set_err(msg, 400, "Missing Call-ID");
    if (msg->first[SIP_H_CSEQ] < 0)
        set_err(msg, 400, "Missing CSeq");
    if (msg->first[SIP_H_VIA] < 0)
        set_err(msg, 400, "Missing Via");
    /* §8.1.1.5 / RFC 4475 §3.1.2.17-18: the CSeq method is the request's */
    if (msg->kind == SIP_MSG_REQUEST && msg->cseq.method_name.len &&
        !ims_str_eq(msg->cseq.method_name, msg->method_name))
        set_err(msg, 400, "CSeq method mismatch");

    /* ---- body (§18.3) ---- */
    size_t avail = (size_t)(end - head_end);
    if (stream) {
        if (msg->err_status)
            return fail(msg);
        if (msg->content_length < 0) {
            set_err(msg, 400, "Missing Content-Length");
            return IMS_EPROTO;
        }
        size_t cl = (size_t)msg->content_length;
        if (msg->head_len + cl > SIP_MAX_MSG_DEFAULT) {
            set_err(msg, 513, "Message Too Large");
            return IMS_ELIMIT;
        }
        if (avail < cl)
            return IMS_EAGAIN;
        msg->body = ims_str_make(head_end, cl);
    } else if (msg->content_length < 0) {
        msg->body = ims_str_make(head_end, avail); /* UDP: the rest of the datagram */
    } else if ((size_t)msg->content_length > avail) {
        set_err(msg, 400, "Bad Content-Length"); /* RFC 4475 §3.1.2.2 */
        msg->body = ims_str_make(head_end, avail);
    } else {
        /* extra octets after the body are ignored (RFC 4475 §3.1.1.8) */
        msg->body = ims_str_make(head_end, (size_t)msg->content_length);
    }
    msg->len = msg->head_len + msg->body.len;
    if (msg->len > SIP_MAX_MSG_DEFAULT)
        set_err(msg, 513, "Message Too Large");
    if (msg->err_status)
        return fail(msg);
    return (int)(skip + msg->len);
}

/* ---- stream framing ---- */

static int frame_cl(const char *line, const char *end, long *cl)
{
    struct ims_cur c = { line, end };
    const char *ns = c.p;
    while (c.p < c.end && sip_is((unsigned char)*c.p, SIP_C_TOKEN))
        c.p++;
    ims_str name = sip_slice(ns, c.p);
    if (!SIP_TOK_EQ(name, "content-length") && !SIP_TOK_EQ(name, "l"))
        return 0;
    sip_lws(&c);
    if (sip_char(&c, ':') != 0)
        return 0; /* not a header line ims_sip_parse() would keep */
    sip_lws(&c);
    uint32_t v;
    if (*cl >= 0 || sip_u32(sip_rtrim(sip_slice(c.p, c.end)), 0x7fffffffu, &v) != 0)
        return IMS_EPROTO;
    *cl = (long)v;
    return 0;
}

int ims_sip_frame(const char *buf, size_t len, size_t max, size_t *skip)
{
    size_t i = 0;
    *skip = 0;
    if (len == 0)
        return IMS_EAGAIN;
    while (i < len && (buf[i] == '\r' || buf[i] == '\n'))
        i++;
    *skip = i;
    const char *p = buf + i, *end = buf + len;
    if (p == end)
        return IMS_EAGAIN;
    if (max > (size_t)INT32_MAX)
        max = (size_t)INT32_MAX;
    const char *q = memchr(p, '\n', (size_t)(end - p));
    long cl = -1;
    if (!q)
        goto incomplete;
    q++;
    for (;;) {
        if (q >= end)
            goto incomplete;
        if (*q == '\n') {
            q++;
            break;
        }
        if (*q == '\r') {
            if (q + 1 >= end)
                goto incomplete;
            if (q[1] == '\n') {
                q += 2;
                break;
            }
        }
        const char *e = memchr(q, '\n', (size_t)(end - q));
        while (e && e + 1 < end && (e[1] == ' ' || e[1] == '\t'))
            e = memchr(e + 1, '\n', (size_t)(end - e - 1));
        if (!e || e + 1 >= end)
            goto incomplete;
        if (frame_cl(q, e, &cl) != 0)
            return IMS_EPROTO;
        q = e + 1;
    }
    size_t head = (size_t)(q - p);
    if (head > max || cl < 0 || head + (size_t)cl > max)
        return IMS_EPROTO;
    if ((size_t)(end - p) < head + (size_t)cl)
        return IMS_EAGAIN;
    return (int)(head + (size_t)cl);
incomplete:
    return (size_t)(end - p) > max ? IMS_EPROTO : IMS_EAGAIN;
}

/* ---- full validation ---- */

static int check_nameaddr_list(ims_str v, bool need_angle, bool star)
{
    struct ims_cur c = ims_cur_of(v);
    ims_str e;
    int rc;
    size_t n = 0;
    /* Contact: "*" (§10.2.2), alone */
    if (star && v.len == 1 && v.p[0] == '*')
        return 0;
    while ((rc = ims_sip_list_next(&c, &e)) == 0) {
        struct sip_nameaddr na;
        if (ims_sip_parse_nameaddr(e, &na) != 0 || (need_angle && !na.angle))
            return IMS_EPROTO;
        n++;
    }
    return (rc == IMS_ENOENT && n > 0) ? 0 : IMS_EPROTO;
}

static int check_via_list(ims_str v)
{
    struct ims_cur c = ims_cur_of(v);
    ims_str e;
    int rc;
    while ((rc = ims_sip_list_next(&c, &e)) == 0) {
        struct sip_via via;
        if (ims_sip_parse_via(e, &via) != 0)
            return IMS_EPROTO;
    }
    return rc == IMS_ENOENT ? 0 : IMS_EPROTO;
}

static int check_sec_list(ims_str v)
{
    struct ims_cur c = ims_cur_of(v);
    ims_str e;
    int rc;
    size_t n = 0;
    while ((rc = ims_sip_list_next(&c, &e)) == 0) {
        struct sip_sec_mech m;
        if (ims_sip_parse_sec_mech(e, &m) != 0)
            return IMS_EPROTO;
        n++;
    }
    return (rc == IMS_ENOENT && n > 0) ? 0 : IMS_EPROTO;
}

int ims_sip_validate(struct sip_msg *msg)
{
    if (msg->err_status)
        return fail(msg);
    for (size_t i = 0; i < msg->nhdrs; i++) {
        const struct sip_hdr *h = &msg->hdrs[i];
        struct sip_nameaddr na;
        struct sip_auth au;
        int rc = 0;
        const char *why = NULL;
        switch (h->id) {
        case SIP_H_VIA:
            rc = check_via_list(h->value);
            why = "Bad Via";
            break;
        case SIP_H_CONTACT:
            /* RFC 4475 §3.1.2.13: an addr-spec holding '?' */
            rc = check_nameaddr_list(h->value, false, true);
            why = "Bad Contact";
            break;
        case SIP_H_ROUTE:
            rc = check_nameaddr_list(h->value, true, false);
            why = "Bad Route";
            break;
        case SIP_H_RECORD_ROUTE:
            rc = check_nameaddr_list(h->value, true, false);
            why = "Bad Record-Route";
            break;
        case SIP_H_PATH:
            rc = check_nameaddr_list(h->value, true, false);
            why = "Bad Path";
            break;
        case SIP_H_SERVICE_ROUTE:
            rc = check_nameaddr_list(h->value, true, false);
            why = "Bad Service-Route";
            break;
        case SIP_H_P_ASSERTED_IDENTITY:
        case SIP_H_P_PREFERRED_IDENTITY:
            rc = check_nameaddr_list(h->value, false, false);
            why = "Bad Identity";
            break;
        case SIP_H_P_ASSOCIATED_URI:
            rc = check_nameaddr_list(h->value, false, false);
            why = "Bad P-Associated-URI";
            break;
        case SIP_H_HISTORY_INFO:
            rc = check_nameaddr_list(h->value, true, false);
            why = "Bad History-Info";
            break;
        case SIP_H_P_CALLED_PARTY_ID:
        case SIP_H_P_SERVED_USER:
        case SIP_H_REPLY_TO:
        case SIP_H_REFER_TO:
        case SIP_H_REFERRED_BY:
            rc = ims_sip_parse_nameaddr(h->value, &na);
            why = "Bad name-addr";
            break;
        case SIP_H_AUTHORIZATION:
        case SIP_H_PROXY_AUTHORIZATION:
            rc = ims_sip_parse_auth(h->value, &au);
            if (rc == 0 && !au.params.len && !au.token.len)
                rc = IMS_EPROTO; /* credentials carry something */
            why = "Bad Authorization";
            break;
        case SIP_H_WWW_AUTHENTICATE:
        case SIP_H_PROXY_AUTHENTICATE:
            rc = ims_sip_parse_auth(h->value, &au);
            why = "Bad Authenticate";
            break;
        case SIP_H_SECURITY_CLIENT:
        case SIP_H_SECURITY_SERVER:
        case SIP_H_SECURITY_VERIFY:
            rc = check_sec_list(h->value);
            why = "Bad Security mechanism";
            break;
        case SIP_H_EXPIRES:
        case SIP_H_MIN_EXPIRES:
        case SIP_H_RSEQ:
            rc = sip_check_delta(h->value, false);
            why = "Bad Expires";
            break;
        case SIP_H_RETRY_AFTER:
        case SIP_H_SESSION_EXPIRES:
        case SIP_H_MIN_SE:
            rc = sip_check_delta(h->value, true);
            why = "Bad delta-seconds";
            break;
        case SIP_H_REQUIRE:
        case SIP_H_PROXY_REQUIRE:
            rc = h->value.len ? sip_check_token_list(h->value, false) : IMS_EPROTO;
            why = "Bad option tags";
            break;
        case SIP_H_SUPPORTED:
        case SIP_H_UNSUPPORTED:
        case SIP_H_ALLOW:
        case SIP_H_ALLOW_EVENTS:
            rc = h->value.len ? sip_check_token_list(h->value, false) : 0;
            why = "Bad token list";
            break;
        case SIP_H_EVENT:
        case SIP_H_SUBSCRIPTION_STATE:
            rc = sip_check_token_list(h->value, true);
            why = "Bad Event";
            break;
        case SIP_H_CONTENT_TYPE:
            rc = sip_check_media_type(h->value);
            why = "Bad Content-Type";
            break;
        case SIP_H_DATE:
            rc = sip_check_date(h->value); /* RFC 4475 §3.1.2.12 */
            why = "Bad Date";
            break;
        default:
            break;
        }
        if (rc != 0) {
            set_err(msg, 400, why);
            return IMS_EPROTO;
        }
    }
    return 0;
}
