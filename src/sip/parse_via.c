/* parse_via.c - one Via value (RFC 3261 §20.42, §25.1 via-parm; RFC 3581
 * rport). */
#include <string.h>

#include "sip/parse_int.h"

int ims_sip_parse_via(ims_str s, struct sip_via *out)
{
    memset(out, 0, sizeof(*out));
    struct ims_cur c = ims_cur_of(s);
    sip_lws(&c);
    const char *start = c.p;

    /* sent-protocol = protocol-name SLASH protocol-version SLASH transport,
     * SLASH = SWS "/" SWS (RFC 4475 §3.1.1.1 folds inside it) */
    if (sip_token(&c, &out->proto_name) != 0 || sip_sep(&c, '/') != 0 ||
        sip_token(&c, &out->proto_version) != 0 || sip_sep(&c, '/') != 0 ||
        sip_token(&c, &out->transport) != 0)
        return IMS_EPROTO;
    if (sip_lws(&c) == 0) /* sent-protocol LWS sent-by */
        return IMS_EPROTO;
    if (sip_hostport(&c, true, &out->host, &out->host_is_ipv6, &out->port) != 0)
        return IMS_EPROTO;

    const char *after = c.p, *ps = NULL, *pe = NULL;
    struct sip_param p;
    int rc;
    while ((rc = sip_hparam_next(&c, &p)) == 0) {
        if (!ps)
            ps = memchr(after, ';', (size_t)(c.p - after));
        pe = c.p;
        if (SIP_TOK_EQ(p.name, "branch")) {
            /* via-branch = "branch" EQUAL token */
            if (out->branch.len || !p.has_value || p.quoted)
                return IMS_EPROTO;
            for (size_t i = 0; i < p.value.len; i++)
                if (!sip_is((unsigned char)p.value.p[i], SIP_C_TOKEN))
                    return IMS_EPROTO;
            out->branch = p.value;
        } else if (SIP_TOK_EQ(p.name, "received")) {
            /* IPv4address / IPv6address; brackets tolerated (RFC 5118 §4.5) */
            if (out->received.len || !p.has_value || p.quoted)
                return IMS_EPROTO;
            out->received = p.value;
        } else if (SIP_TOK_EQ(p.name, "maddr")) {
            if (out->maddr.len || !p.has_value || p.quoted)
                return IMS_EPROTO;
            out->maddr = p.value;
        } else if (SIP_TOK_EQ(p.name, "ttl")) {
            uint32_t ttl;
            if (out->ttl.len || !p.has_value || p.quoted || sip_u32(p.value, 255, &ttl) != 0)
                return IMS_EPROTO;
            out->ttl = p.value;
        } else if (SIP_TOK_EQ(p.name, "rport")) {
            /* response-port = "rport" [EQUAL 1*DIGIT] (RFC 3581 §3) */
            uint32_t port = 0;
            if (out->rport || p.quoted || (p.has_value && sip_u32(p.value, 65535, &port) != 0))
                return IMS_EPROTO;
            out->rport = true;
            out->rport_value = (uint16_t)port;
        }
    }
    if (rc != IMS_ENOENT)
        return IMS_EPROTO; /* ";;" and friends: RFC 4475 §3.1.2.1 */
    sip_lws(&c);
    if (!ims_cur_eof(&c))
        return IMS_EPROTO;
    out->raw = sip_slice(start, c.p);
    out->raw = sip_rtrim(out->raw);
    if (ps)
        out->params = sip_slice(ps, pe);
    return 0;
}
