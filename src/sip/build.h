/* build.h - SIP message builder: responses (RFC 3261 §8.2.6), a one-pass
 * rewrite for forwarding (§16.6, §16.7), and UAC requests (§8.1.1, §9.1,
 * §17.1.1.3).
 *
 * Ownership: every function writes into a caller-owned struct ims_buf (its
 * cap bounds the output).  `out` is reset first (its allocation is reused, so
 * a per-worker buffer costs no allocation per message), then filled.  On any
 * error `out` is left empty and valid (ims_buf semantics), never half-built.
 * Input messages and slices are only read; nothing is kept after the call.
 *
 * Returns: 0, IMS_ENOMEM (allocation failed), IMS_ELIMIT (out->cap reached),
 * IMS_EINVAL (bad arguments: status out of range, extra_headers not
 * CRLF-terminated, edit out of range or conflicting), IMS_EPROTO (an edit had
 * to parse a malformed peer value: POP of a broken list). */
#ifndef IMS_SIP_BUILD_H
#define IMS_SIP_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/str.h"
#include "sip/msg.h"

/* Default reason phrase of a status code (RFC 3261 §21 and extensions);
 * "Unknown" when none is known.  Static string. */
const char *ims_sip_reason_phrase(int status);

/* Builds a response to `req` (RFC 3261 §8.2.6): the status line, every Via
 * line in order, then From, To, Call-ID, CSeq (the first of each, as
 * received; To gets ";tag=<to_tag>" when it has no tag, to_tag is non-empty
 * and status > 100), Timestamp for a 100 (§8.2.6.1), every Record-Route
 * line in order when the response establishes a dialog (§12.1.1: a 101-299
 * without a To tag in the request, ims_sip_method_creates_dialog),
 * extra_headers (whole lines, each CRLF-terminated, or empty), Content-Type
 * when body is non-empty and content_type given, and Content-Length.
 *   req     parsed request; it may be one ims_sip_parse() rejected (kind ==
 *           SIP_MSG_REQUEST): what is present is copied, so a 400 can be sent.
 *   reason  NULL for ims_sip_reason_phrase(status).
 * Header values are copied byte for byte (names are written in long form),
 * so Via values, tags and CSeq match the request exactly. */
int ims_sip_build_response(struct ims_buf *out, const struct sip_msg *req, int status,
                           const char *reason, ims_str to_tag, ims_str extra_headers,
                           ims_str content_type, ims_str body);

/* ---- forwarding: one-pass rewrite ----
 *
 * ims_sip_rewrite() copies a parsed message to `out` while applying a small
 * list of edits, in one pass over the start line and the header lines:
 * unchanged lines are copied as spans, byte for byte (compact names, folding
 * and all).  Header indexes refer to msg->hdrs.  Several edits may target one
 * header only as: any number of INSERTs before it plus either one DELETE, one
 * SET_VALUE, or one or more POP_VALUEs (each removes one more leading value).
 * INSERTs before the same index come out in the order given.
 *
 * Content-Length is owned by the rewrite: the output always carries exactly
 * one, equal to the output body length.  The message's own Content-Length
 * line stays where it was (copied as is when the number does not change);
 * when there was none (UDP), "Content-Length: N" is added after the last
 * header.  Edits targeting the Content-Length header are IMS_EINVAL.
 *
 * Typical proxy use (RFC 3261 §16.6):
 *   Via push          INSERT hdr 0, "Via: SIP/2.0/UDP me;branch=z9hG4bK..\r\n"
 *   Via pop (resp.)   POP_VALUE on ims_sip_hdr_first(msg, SIP_H_VIA)'s index
 *   Max-Forwards      SET_VALUE on the Max-Forwards index, "69"
 *                     (or INSERT "Max-Forwards: 70\r\n" when absent)
 *   Route pop         POP_VALUE on the first Route index
 *   Record-Route      INSERT hdr 0 (or before the first Record-Route),
 *                     "Record-Route: <sip:me;lr>\r\n"
 *   Request-URI       RURI, "sip:bob@192.0.2.4:5060"
 */
enum sip_edit_op {
    SIP_EDIT_INSERT = 1, /* insert text (whole CRLF-terminated header lines) before
                          * header `hdr`; hdr == msg->nhdrs appends after the last */
    SIP_EDIT_DELETE,     /* drop header line `hdr` */
    SIP_EDIT_SET_VALUE,  /* write header `hdr` as "<name as received>: <text>\r\n" */
    SIP_EDIT_POP_VALUE,  /* remove the first comma-separated value of header `hdr`
                          * (the line goes when no value is left) */
    SIP_EDIT_START_LINE, /* replace the start line with text (no line end) */
    SIP_EDIT_RURI,       /* replace the Request-URI (requests only) with text */
    SIP_EDIT_BODY,       /* replace the body with text */
};

struct sip_edit {
    enum sip_edit_op op;
    size_t hdr;   /* header index for INSERT, DELETE, SET_VALUE, POP_VALUE */
    ims_str text; /* borrowed for the duration of the call */
};

#define SIP_EDIT_MAX 64

/* Applies up to SIP_EDIT_MAX edits (any order) to a message ims_sip_parse()
 * accepted (msg->err_status == 0; IMS_EINVAL otherwise). */
int ims_sip_rewrite(struct ims_buf *out, const struct sip_msg *msg, const struct sip_edit *edits,
                    size_t nedits);

/* ---- UAC requests ---- */

/* A request generated here (RFC 3261 §8.1.1).  Every ims_str is a complete
 * header value as it goes on the wire (with tags and params); empty optional
 * fields are left out. */
struct sip_req_spec {
    enum sip_method method; /* SIP_M_UNKNOWN: method_name is used */
    ims_str method_name;
    ims_str ruri;
    ims_str via;            /* required: "SIP/2.0/UDP host:port;branch=z9hG4bK..." */
    ims_str route;          /* optional: one Route line's value(s) */
    ims_str from, to;       /* required */
    ims_str call_id;        /* required */
    uint32_t cseq;          /* < 2^31 */
    int max_forwards;       /* < 0: 70 (§8.1.1.6) */
    ims_str contact;        /* optional */
    ims_str extra_headers;  /* optional whole lines, each CRLF-terminated */
    ims_str content_type, body;
};

/* Writes Request-Line, Via, Max-Forwards, Route, From, To, Call-ID, CSeq,
 * Contact, extra headers, Content-Type, Content-Length and body. */
int ims_sip_build_request(struct ims_buf *out, const struct sip_req_spec *spec);

/* CANCEL for a request we sent (§9.1): same Request-URI, Call-ID, From, To
 * and CSeq number, method CANCEL, only the top Via value of `req`, its Route
 * lines, Max-Forwards 70, extra_headers (e.g. Reason), no body.
 * `req` is our own outgoing request, parsed. */
int ims_sip_build_cancel(struct ims_buf *out, const struct sip_msg *req, ims_str extra_headers);

/* ACK for a non-2xx final response to an INVITE we sent (§17.1.1.3):
 * Request-URI, Call-ID, From and the CSeq number of `invite`, To of `resp`
 * (with its tag), only the top Via value of `invite`, its Route lines. */
int ims_sip_build_ack(struct ims_buf *out, const struct sip_msg *invite,
                      const struct sip_msg *resp);

#endif
