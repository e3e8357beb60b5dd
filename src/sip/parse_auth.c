/* parse_auth.c - credentials and challenges (RFC 3261 §20.7, §20.27,
 * §20.28, §20.44, §25.1; Digest per RFC 7616 / RFC 8760, AKA per RFC 3310,
 * Bearer per RFC 8898 / RFC 6750 / RFC 7235 token68). */
#include <string.h>

#include "sip/parse_int.h"

struct auth_field {
    const char *name;
    size_t len;
    size_t off; /* offset of the ims_str in struct sip_auth */
};
#define AF(n, f) { n, sizeof(n) - 1, offsetof(struct sip_auth, f) }

static const struct auth_field fields[] = {
    AF("username", username),     AF("realm", realm),
    AF("nonce", nonce),           AF("uri", uri),
    AF("response", response),     AF("algorithm", algorithm),
    AF("cnonce", cnonce),         AF("opaque", opaque),
    AF("qop", qop),               AF("nc", nc),
    AF("auts", auts),             AF("stale", stale),
    AF("domain", domain),         AF("integrity-protected", integrity_protected),
    AF("userhash", userhash),
    AF("scope", scope),           AF("authz_server", authz_server),
    AF("error", error),
};

int ims_sip_parse_auth(ims_str s, struct sip_auth *out)
{
    memset(out, 0, sizeof(*out));
    struct ims_cur c = ims_cur_of(s);
    sip_lws(&c);
    if (sip_token(&c, &out->scheme) != 0)
        return IMS_EPROTO;
    size_t ws = sip_lws(&c);
    if (ims_cur_eof(&c))
        return 0; /* challenge = auth-scheme alone (RFC 7235 §2.1) */
    if (ws == 0)
        return IMS_EPROTO;

    if (ims_str_caseeq_lit(out->scheme, "Bearer")) {
        /* credentials = "Bearer" 1*SP b64token (RFC 6750 §2.1): a token68
         * is b64 chars then '='s, with nothing after it */
        struct ims_cur t = c;
        const char *ts = t.p;
        if (sip_span(&t, SIP_C_B64, false) > 0) {
            while (t.p < t.end && *t.p == '=')
                t.p++;
            const char *te = t.p;
            sip_lws(&t);
            if (ims_cur_eof(&t)) {
                out->token = sip_slice(ts, te);
                return 0;
            }
        }
    }

    /* auth-param *(COMMA auth-param), auth-param = token EQUAL
     * ( token / quoted-string ) */
    const char *ps = c.p;
    for (;;) {
        ims_str name, val;
        if (sip_token(&c, &name) != 0 || sip_sep(&c, '=') != 0)
            return IMS_EPROTO;
        int rc = sip_quoted(&c, &val);
        if (rc == IMS_ENOENT) {
            const char *vs = c.p;
            /* tokens, plus the b64 '/' and '=' some UAs leave unquoted */
            while (c.p < c.end && (sip_is((unsigned char)*c.p, SIP_C_TOKEN | SIP_C_B64) ||
                                   *c.p == '='))
                c.p++;
            if (c.p == vs)
                return IMS_EPROTO;
            val = sip_slice(vs, c.p);
        } else if (rc != 0) {
            return IMS_EPROTO;
        }
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
            if (name.len == fields[i].len && ims_str_caseeq(name, ims_str_make(fields[i].name,
                                                                                fields[i].len))) {
                ims_str *f = (ims_str *)((char *)out + fields[i].off);
                /* RFC 7616 §3.4: a directive appears at most once */
                if (f->p || f->len)
                    return IMS_EPROTO;
                /* keep a non-NULL view even for "" so duplicates are seen */
                *f = (ims_str){ val.len ? val.p : name.p, val.len };
                break;
            }
        }
        const char *pe = c.p;
        if (sip_sep(&c, ',') != 0) {
            sip_lws(&c);
            if (!ims_cur_eof(&c))
                return IMS_EPROTO;
            out->params = sip_slice(ps, pe);
            return 0;
        }
    }
}
