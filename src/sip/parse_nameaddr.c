/* parse_nameaddr.c - name-addr / addr-spec with header parameters
 * (RFC 3261 §20.10, §20.20, §20.39, §25.1: From, To, Contact, Route, ...). */
#include <string.h>

#include "sip/parse_int.h"

static bool all_token(ims_str s)
{
    for (size_t i = 0; i < s.len; i++)
        if (!sip_is((unsigned char)s.p[i], SIP_C_TOKEN))
            return false;
    return s.len > 0;
}

int ims_sip_parse_nameaddr(ims_str s, struct sip_nameaddr *out)
{
    memset(out, 0, sizeof(*out));
    struct ims_cur c = ims_cur_of(s);
    sip_lws(&c);
    if (ims_cur_eof(&c))
        return IMS_EPROTO;

    ims_str uri;
    if (*c.p == '"') {
        /* display-name = quoted-string; RFC 4475 §3.1.2.6: unterminated fails */
        if (sip_quoted(&c, &out->display) != 0)
            return IMS_EPROTO;
        sip_lws(&c);
        if (sip_char(&c, '<') != 0)
            return IMS_EPROTO;
        out->angle = true;
    } else if (*c.p == '<') {
        c.p++;
        out->angle = true;
    } else {
        /* display-name = *(token LWS) before '<' ("caller<sip:..>", RFC 4475
         * §3.1.1.6); anything else is an addr-spec.  A comma or other
         * non-token byte in an unquoted display name (§3.1.2.15) lands in the
         * addr-spec branch and fails there. */
        struct ims_cur t = c;
        const char *de = t.p;
        ims_str tok;
        while (sip_token(&t, &tok) == 0) {
            de = t.p;
            sip_lws(&t);
        }
        if (t.p < t.end && *t.p == '<' && de > c.p) {
            out->display = sip_slice(c.p, de);
            c.p = t.p + 1;
            out->angle = true;
        }
    }

    if (out->angle) {
        /* LAQUOT = SWS "<" and RAQUOT = ">" SWS: no LWS inside the brackets
         * (RFC 4475 §3.1.2.14), which ims_sip_parse_uri() rejects. */
        const char *gt = memchr(c.p, '>', ims_cur_left(&c));
        if (!gt)
            return IMS_EPROTO;
        uri = sip_slice(c.p, gt);
        c.p = gt + 1;
    } else {
        /* §20.10: in addr-spec form the params after ';' belong to the
         * header, and a URI holding ',', '?' or ';' had to be in <>. */
        const char *s0 = c.p;
        while (c.p < c.end && *c.p != ';' && *c.p != ' ' && *c.p != '\t' && *c.p != '\r' &&
               *c.p != '\n')
            c.p++;
        uri = sip_slice(s0, c.p);
        if (ims_str_chr(uri, '?') >= 0 || ims_str_chr(uri, ',') >= 0)
            return IMS_EPROTO;
    }
    if (ims_sip_parse_uri(uri, &out->uri) != 0)
        return IMS_EPROTO;

    const char *after = c.p, *ps = NULL, *pe = NULL;
    struct sip_param p;
    int rc;
    while ((rc = sip_hparam_next(&c, &p)) == 0) {
        if (!ps)
            ps = memchr(after, ';', (size_t)(c.p - after));
        pe = c.p;
        if (SIP_TOK_EQ(p.name, "tag")) {
            /* tag-param = "tag" EQUAL token; at most one */
            if (out->tag.len || !p.has_value || p.quoted || !all_token(p.value))
                return IMS_EPROTO;
            out->tag = p.value;
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
