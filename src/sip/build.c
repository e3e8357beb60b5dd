/* build.c - responses, the forwarding rewrite and UAC requests (RFC 3261
 * §8.1.1, §8.2.6, §9.1, §16.6, §17.1.1.3).  See build.h for the contracts. */
#include "sip/build.h"

#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "sip/parse_int.h"

/* A sticky-error writer: after the first failed append every later one is a
 * no-op, so the buffer stays empty (ims_buf frees it on failure) instead of
 * regrowing with the tail of a message. */
struct w {
    struct ims_buf *b;
    int rc;
};

static void w_add(struct w *w, const void *p, size_t n)
{
    if (w->rc == 0 && n)
        w->rc = ims_buf_add(w->b, p, n);
}

static void w_str(struct w *w, ims_str s)
{
    w_add(w, s.p, s.len);
}

static void w_cstr(struct w *w, const char *s)
{
    w_add(w, s, strlen(s));
}

static void w_u64(struct w *w, unsigned long long v)
{
    char tmp[IMS_U64_DEC_MAX];
    w_add(w, tmp, ims_u64_dec(v, tmp));
}

/* "Name: value\r\n" */
static void w_hdr(struct w *w, const char *name, ims_str value)
{
    w_cstr(w, name);
    w_add(w, ": ", 2);
    w_str(w, value);
    w_add(w, "\r\n", 2);
}

static int w_done(struct w *w)
{
    if (w->rc != 0) {
        ims_buf_reset(w->b); /* EINVAL paths: appends already emptied it */
        return w->rc;
    }
    return 0;
}

static bool crlf_lines(ims_str s)
{
    return s.len == 0 || (s.len >= 2 && s.p[s.len - 2] == '\r' && s.p[s.len - 1] == '\n');
}

static bool no_line_end(ims_str s)
{
    return ims_str_chr(s, '\r') < 0 && ims_str_chr(s, '\n') < 0;
}

const char *ims_sip_reason_phrase(int status)
{
    static const struct {
        short code;
        const char *text;
    } t[] = {
        { 100, "Trying" },
        { 180, "Ringing" },
        { 181, "Call Is Being Forwarded" },
        { 182, "Queued" },
        { 183, "Session Progress" },
        { 199, "Early Dialog Terminated" },
        { 200, "OK" },
        { 202, "Accepted" },
        { 204, "No Notification" },
        { 300, "Multiple Choices" },
        { 301, "Moved Permanently" },
        { 302, "Moved Temporarily" },
        { 305, "Use Proxy" },
        { 380, "Alternative Service" },
        { 400, "Bad Request" },
        { 401, "Unauthorized" },
        { 402, "Payment Required" },
        { 403, "Forbidden" },
        { 404, "Not Found" },
        { 405, "Method Not Allowed" },
        { 406, "Not Acceptable" },
        { 407, "Proxy Authentication Required" },
        { 408, "Request Timeout" },
        { 410, "Gone" },
        { 412, "Conditional Request Failed" },
        { 413, "Request Entity Too Large" },
        { 414, "Request-URI Too Long" },
        { 415, "Unsupported Media Type" },
        { 416, "Unsupported URI Scheme" },
        { 417, "Unknown Resource-Priority" },
        { 420, "Bad Extension" },
        { 421, "Extension Required" },
        { 422, "Session Interval Too Small" },
        { 423, "Interval Too Brief" },
        { 428, "Use Identity Header" },
        { 429, "Provide Referrer Identity" },
        { 430, "Flow Failed" },
        { 433, "Anonymity Disallowed" },
        { 436, "Bad Identity Info" },
        { 437, "Unsupported Credential" },
        { 438, "Invalid Identity Header" },
        { 439, "First Hop Lacks Outbound Support" },
        { 440, "Max-Breadth Exceeded" },
        { 469, "Bad Info Package" },
        { 470, "Consent Needed" },
        { 480, "Temporarily Unavailable" },
        { 481, "Call/Transaction Does Not Exist" },
        { 482, "Loop Detected" },
        { 483, "Too Many Hops" },
        { 484, "Address Incomplete" },
        { 485, "Ambiguous" },
        { 486, "Busy Here" },
        { 487, "Request Terminated" },
        { 488, "Not Acceptable Here" },
        { 489, "Bad Event" },
        { 491, "Request Pending" },
        { 493, "Undecipherable" },
        { 494, "Security Agreement Required" },
        { 500, "Server Internal Error" },
        { 501, "Not Implemented" },
        { 502, "Bad Gateway" },
        { 503, "Service Unavailable" },
        { 504, "Server Time-out" },
        { 505, "Version Not Supported" },
        { 513, "Message Too Large" },
        { 555, "Push Notification Service Not Supported" },
        { 580, "Precondition Failure" },
        { 600, "Busy Everywhere" },
        { 603, "Decline" },
        { 604, "Does Not Exist Anywhere" },
        { 606, "Not Acceptable" },
        { 607, "Unwanted" },
        { 608, "Rejected" },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (t[i].code == status)
            return t[i].text;
    return "Unknown";
}

/* ---- responses ---- */

static void copy_first(struct w *w, const struct sip_msg *m, enum sip_hdr_id id)
{
    const struct sip_hdr *h = ims_sip_hdr_first(m, id);
    if (h)
        w_hdr(w, ims_sip_hdr_canonical_name(id), h->value);
}

/* A response that establishes a dialog (RFC 3261 §12.1): a 101-299 to a
 * request outside any dialog (no To tag) whose method creates one. */
static bool creates_dialog(const struct sip_msg *req, int status)
{
    return status > 100 && status < 300 && req->to.tag.len == 0 &&
           ims_sip_method_creates_dialog(req->method);
}

int ims_sip_build_response(struct ims_buf *out, const struct sip_msg *req, int status,
                           const char *reason, ims_str to_tag, ims_str extra_headers,
                           ims_str content_type, ims_str body)
{
    struct w w = { out, 0 };
    ims_buf_reset(out);
    if (!reason)
        reason = ims_sip_reason_phrase(status);
    if (req->kind != SIP_MSG_REQUEST || status < 100 || status > 699 ||
        !crlf_lines(extra_headers) || !no_line_end(ims_str_cstr(reason)) ||
        !no_line_end(to_tag) || !no_line_end(content_type)) {
        w.rc = IMS_EINVAL;
        return w_done(&w);
    }
    w_cstr(&w, "SIP/2.0 ");
    w_u64(&w, (unsigned long long)status);
    w_add(&w, " ", 1);
    w_cstr(&w, reason);
    w_add(&w, "\r\n", 2);

    /* §8.2.6.2: every Via value, same order */
    for (const struct sip_hdr *h = ims_sip_hdr_first(req, SIP_H_VIA); h;
         h = ims_sip_hdr_next(req, h))
        w_hdr(&w, "Via", h->value);
    copy_first(&w, req, SIP_H_FROM);
    const struct sip_hdr *to = ims_sip_hdr_first(req, SIP_H_TO);
    if (to) {
        struct sip_nameaddr na;
        w_cstr(&w, "To: ");
        w_str(&w, to->value);
        /* §8.2.6.2: add a tag when the request had none (not to a 100) */
        if (status > 100 && to_tag.len && ims_sip_parse_nameaddr(to->value, &na) == 0 &&
            na.tag.len == 0) {
            w_add(&w, ";tag=", 5);
            w_str(&w, to_tag);
        }
        w_add(&w, "\r\n", 2);
    }
    copy_first(&w, req, SIP_H_CALL_ID);
    copy_first(&w, req, SIP_H_CSEQ);
    if (status == 100)
        copy_first(&w, req, SIP_H_TIMESTAMP); /* §8.2.6.1 */
    /* §12.1.1: every Record-Route value, same order, so that the peer's
     * in-dialog requests come back through the proxies that asked */
    if (creates_dialog(req, status))
        for (const struct sip_hdr *h = ims_sip_hdr_first(req, SIP_H_RECORD_ROUTE); h;
             h = ims_sip_hdr_next(req, h))
            w_hdr(&w, "Record-Route", h->value);
    w_str(&w, extra_headers);
    if (body.len && content_type.len)
        w_hdr(&w, "Content-Type", content_type);
    w_cstr(&w, "Content-Length: ");
    w_u64(&w, body.len);
    w_add(&w, "\r\n\r\n", 4);
    w_str(&w, body);
    return w_done(&w);
}

/* ---- rewrite ---- */

struct hdr_plan {
    enum sip_edit_op op; /* 0, DELETE, SET_VALUE or POP_VALUE */
    unsigned pops;
    ims_str text;
};

/* Writes "<name>: <rest>\r\n" for header h after `pops` leading values were
 * removed, or nothing when none is left. */
static int pop_values(struct w *w, const struct sip_hdr *h, unsigned pops)
{
    struct ims_cur c = ims_cur_of(h->value);
    ims_str e;
    for (unsigned i = 0; i < pops; i++) {
        int rc = ims_sip_list_next(&c, &e);
        if (rc == IMS_ENOENT)
            break;
        if (rc != 0)
            return IMS_EPROTO;
    }
    if (c.p < c.end && *c.p == ',')
        c.p++;
    sip_lws(&c);
    ims_str rest = sip_rtrim(sip_slice(c.p, c.end));
    if (rest.len) {
        w_str(w, h->name);
        w_add(w, ": ", 2);
        w_str(w, rest);
        w_add(w, "\r\n", 2);
    }
    return 0;
}

static void write_cl(struct w *w, const struct sip_msg *m, const struct sip_hdr *h, size_t n)
{
    if (h && m->content_length >= 0 && (size_t)m->content_length == n) {
        w_add(w, h->name.p, h->raw_len); /* unchanged: copy the line */
        return;
    }
    if (h)
        w_str(w, h->name);
    else
        w_cstr(w, "Content-Length");
    w_add(w, ": ", 2);
    w_u64(w, n);
    w_add(w, "\r\n", 2);
}

int ims_sip_rewrite(struct ims_buf *out, const struct sip_msg *msg, const struct sip_edit *edits,
                    size_t nedits)
{
    struct w w = { out, 0 };
    ims_buf_reset(out);
    const struct sip_edit *start = NULL, *ruri = NULL, *body = NULL;
    if (msg->err_status != 0 || msg->kind == SIP_MSG_NONE || nedits > SIP_EDIT_MAX ||
        (nedits && !edits)) {
        w.rc = IMS_EINVAL;
        return w_done(&w);
    }
    /* pass 1: check the edits */
    for (size_t i = 0; i < nedits && !w.rc; i++) {
        const struct sip_edit *e = &edits[i];
        switch (e->op) {
        case SIP_EDIT_INSERT:
            if (e->hdr > msg->nhdrs || e->text.len == 0 || !crlf_lines(e->text))
                w.rc = IMS_EINVAL;
            break;
        case SIP_EDIT_DELETE:
        case SIP_EDIT_SET_VALUE:
        case SIP_EDIT_POP_VALUE:
            if (e->hdr >= msg->nhdrs || msg->hdrs[e->hdr].id == SIP_H_CONTENT_LENGTH ||
                (e->op == SIP_EDIT_SET_VALUE && !no_line_end(e->text)))
                w.rc = IMS_EINVAL;
            for (size_t j = 0; j < i && !w.rc; j++) {
                const struct sip_edit *o = &edits[j];
                bool both_pop = o->op == SIP_EDIT_POP_VALUE && e->op == SIP_EDIT_POP_VALUE;
                if (o->hdr == e->hdr && o->op != SIP_EDIT_INSERT && o->op < SIP_EDIT_START_LINE &&
                    !both_pop)
                    w.rc = IMS_EINVAL; /* conflicting edits of one header */
            }
            break;
        case SIP_EDIT_START_LINE:
        case SIP_EDIT_RURI:
            if (start || ruri || !no_line_end(e->text) ||
                (e->op == SIP_EDIT_RURI && (msg->kind != SIP_MSG_REQUEST || e->text.len == 0)))
                w.rc = IMS_EINVAL;
            if (e->op == SIP_EDIT_START_LINE)
                start = e;
            else
                ruri = e;
            break;
        case SIP_EDIT_BODY:
            if (body)
                w.rc = IMS_EINVAL;
            body = e;
            break;
        default:
            w.rc = IMS_EINVAL;
        }
    }
    if (w.rc)
        return w_done(&w);

    /* pass 2: start line */
    if (start) {
        w_str(&w, start->text);
        w_add(&w, "\r\n", 2);
    } else if (ruri) {
        w_str(&w, msg->method_name);
        w_add(&w, " ", 1);
        w_str(&w, ruri->text);
        w_add(&w, " ", 1);
        w_str(&w, msg->version);
        w_add(&w, "\r\n", 2);
    } else {
        w_add(&w, msg->buf, msg->hdrs_off);
    }

    /* pass 3: headers, each with its inserts first */
    ims_str new_body = body ? body->text : msg->body;
    const struct sip_hdr *cl = ims_sip_hdr_first(msg, SIP_H_CONTENT_LENGTH);
    for (size_t i = 0; i <= msg->nhdrs && !w.rc; i++) {
        struct hdr_plan plan = { 0, 0, IMS_STR_NULL };
        for (size_t j = 0; j < nedits; j++) {
            const struct sip_edit *e = &edits[j];
            if (e->hdr != i)
                continue;
            if (e->op == SIP_EDIT_INSERT) {
                w_str(&w, e->text);
            } else if (e->op == SIP_EDIT_DELETE || e->op == SIP_EDIT_SET_VALUE ||
                       e->op == SIP_EDIT_POP_VALUE) {
                plan.op = e->op;
                plan.pops += e->op == SIP_EDIT_POP_VALUE;
                plan.text = e->text;
            }
        }
        if (i == msg->nhdrs)
            break;
        const struct sip_hdr *h = &msg->hdrs[i];
        if (h->id == SIP_H_CONTENT_LENGTH) {
            write_cl(&w, msg, h, new_body.len);
            continue;
        }
        switch (plan.op) {
        case SIP_EDIT_DELETE:
            break;
        case SIP_EDIT_SET_VALUE:
            w_str(&w, h->name);
            w_add(&w, ": ", 2);
            w_str(&w, plan.text);
            w_add(&w, "\r\n", 2);
            break;
        case SIP_EDIT_POP_VALUE:
            if (w.rc == 0 && pop_values(&w, h, plan.pops) != 0)
                w.rc = IMS_EPROTO;
            break;
        default:
            w_add(&w, h->name.p, h->raw_len);
            break;
        }
    }
    if (!cl)
        write_cl(&w, msg, NULL, new_body.len);
    w_add(&w, "\r\n", 2);
    w_str(&w, new_body);
    return w_done(&w);
}

/* ---- UAC requests ---- */

static void w_cseq(struct w *w, uint32_t num, ims_str method)
{
    w_cstr(w, "CSeq: ");
    w_u64(w, num);
    w_add(w, " ", 1);
    w_str(w, method);
    w_add(w, "\r\n", 2);
}

int ims_sip_build_request(struct ims_buf *out, const struct sip_req_spec *s)
{
    struct w w = { out, 0 };
    ims_buf_reset(out);
    ims_str method = s->method == SIP_M_UNKNOWN ? s->method_name
                                                : ims_str_cstr(ims_sip_method_name(s->method));
    if (method.len == 0 || !s->ruri.len || !s->via.len || !s->from.len || !s->to.len ||
        !s->call_id.len || s->cseq > 0x7fffffffu || !crlf_lines(s->extra_headers) ||
        !no_line_end(method) || !no_line_end(s->ruri) || !no_line_end(s->via) ||
        !no_line_end(s->route) || !no_line_end(s->from) || !no_line_end(s->to) ||
        !no_line_end(s->call_id) || !no_line_end(s->contact) || !no_line_end(s->content_type)) {
        w.rc = IMS_EINVAL;
        return w_done(&w);
    }
    w_str(&w, method);
    w_add(&w, " ", 1);
    w_str(&w, s->ruri);
    w_cstr(&w, " SIP/2.0\r\n");
    w_hdr(&w, "Via", s->via);
    w_cstr(&w, "Max-Forwards: ");
    w_u64(&w, s->max_forwards < 0 ? 70u : (unsigned)s->max_forwards);
    w_add(&w, "\r\n", 2);
    if (s->route.len)
        w_hdr(&w, "Route", s->route);
    w_hdr(&w, "From", s->from);
    w_hdr(&w, "To", s->to);
    w_hdr(&w, "Call-ID", s->call_id);
    w_cseq(&w, s->cseq, method);
    if (s->contact.len)
        w_hdr(&w, "Contact", s->contact);
    w_str(&w, s->extra_headers);
    if (s->body.len && s->content_type.len)
        w_hdr(&w, "Content-Type", s->content_type);
    w_cstr(&w, "Content-Length: ");
    w_u64(&w, s->body.len);
    w_add(&w, "\r\n\r\n", 4);
    w_str(&w, s->body);
    return w_done(&w);
}

/* CANCEL (§9.1) and non-2xx ACK (§17.1.1.3) share their shape. */
static int build_hop(struct ims_buf *out, const struct sip_msg *req, const char *method,
                     const struct sip_hdr *to, ims_str extra)
{
    struct w w = { out, 0 };
    ims_buf_reset(out);
    const struct sip_hdr *from = ims_sip_hdr_first(req, SIP_H_FROM);
    const struct sip_hdr *cid = ims_sip_hdr_first(req, SIP_H_CALL_ID);
    if (req->kind != SIP_MSG_REQUEST || req->err_status || !req->via1.raw.len || !from || !cid ||
        !to || !crlf_lines(extra)) {
        w.rc = IMS_EINVAL;
        return w_done(&w);
    }
    w_cstr(&w, method);
    w_add(&w, " ", 1);
    w_str(&w, req->ruri_raw);
    w_cstr(&w, " SIP/2.0\r\n");
    w_hdr(&w, "Via", req->via1.raw); /* the top Via value only */
    w_cstr(&w, "Max-Forwards: 70\r\n");
    for (const struct sip_hdr *h = ims_sip_hdr_first(req, SIP_H_ROUTE); h;
         h = ims_sip_hdr_next(req, h))
        w_hdr(&w, "Route", h->value);
    w_hdr(&w, "From", from->value);
    w_hdr(&w, "To", to->value);
    w_hdr(&w, "Call-ID", cid->value);
    w_cseq(&w, req->cseq.num, ims_str_cstr(method));
    w_str(&w, extra);
    w_cstr(&w, "Content-Length: 0\r\n\r\n");
    return w_done(&w);
}

int ims_sip_build_cancel(struct ims_buf *out, const struct sip_msg *req, ims_str extra_headers)
{
    return build_hop(out, req, "CANCEL", ims_sip_hdr_first(req, SIP_H_TO), extra_headers);
}

int ims_sip_build_ack(struct ims_buf *out, const struct sip_msg *invite,
                      const struct sip_msg *resp)
{
    if (resp->kind != SIP_MSG_RESPONSE || resp->status < 300) {
        ims_buf_reset(out);
        return IMS_EINVAL;
    }
    return build_hop(out, invite, "ACK", ims_sip_hdr_first(resp, SIP_H_TO), IMS_STR_NULL);
}
