/* parse_auth.c - credentials and challenges (RFC 3261 §20.7, §20.27,
 * §20.28, §20.44, §25.1; Digest per RFC 7616 / RFC 8760, AKA per RFC 3310,
 * Bearer per RFC 8898 / RFC 6750 / RFC 7235 token68). */
#include <string.h>

#include "base/buf.h"

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

/* The value of an auth-param: token or quoted-string (quotes removed). */
static int auth_value(struct ims_cur *c, ims_str *val)
{
    int rc = sip_quoted(c, val);
    if (rc == IMS_ENOENT) {
        const char *vs = c->p;
        /* tokens, plus the b64 '/' and '=' some UAs leave unquoted */
        while (c->p < c->end &&
               (sip_is((unsigned char)*c->p, SIP_C_TOKEN | SIP_C_B64) || *c->p == '='))
            c->p++;
        if (c->p == vs)
            return IMS_EPROTO;
        *val = sip_slice(vs, c->p);
        return 0;
    }
    return rc == 0 ? 0 : IMS_EPROTO;
}

/* One auth-param = token EQUAL ( token / quoted-string ) at c; *val is the
 * value (quotes removed), *raw as received (quotes kept); c is left after it. */
static int auth_param(struct ims_cur *c, ims_str *name, ims_str *val, ims_str *raw)
{
    if (sip_token(c, name) != 0 || sip_sep(c, '=') != 0)
        return IMS_EPROTO;
    const char *rs = c->p;
    int rc = auth_value(c, val);
    *raw = sip_slice(rs, c->p);
    return rc;
}

/* After an auth-param: 1 when a COMMA follows (consumed), 0 at the end of
 * the value, IMS_EPROTO for anything else. */
static int auth_param_more(struct ims_cur *c)
{
    if (sip_sep(c, ',') == 0)
        return 1;
    sip_lws(c);
    return ims_cur_eof(c) ? 0 : IMS_EPROTO;
}

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

    /* auth-param *(COMMA auth-param) */
    const char *ps = c.p;
    for (;;) {
        ims_str name, val, raw;
        if (auth_param(&c, &name, &val, &raw) != 0)
            return IMS_EPROTO;
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
        int more = auth_param_more(&c);
        if (more < 0)
            return IMS_EPROTO;
        if (!more) {
            out->params = sip_slice(ps, pe);
            return 0;
        }
    }
}

int ims_sip_auth_without(ims_str s, const char *drop, struct ims_buf *out)
{
    struct ims_cur c = ims_cur_of(s);
    ims_str scheme;
    sip_lws(&c);
    if (sip_token(&c, &scheme) != 0 || sip_lws(&c) == 0 || ims_cur_eof(&c))
        return IMS_EPROTO;
    int rc = ims_buf_add_str(out, scheme);
    bool first = true;
    for (int more = 1; more == 1 && rc == 0;) {
        ims_str name, val, raw;
        if (auth_param(&c, &name, &val, &raw) != 0)
            return IMS_EPROTO;
        more = auth_param_more(&c);
        if (more < 0)
            return IMS_EPROTO;
        if (ims_str_caseeq_lit(name, drop))
            continue;
        /* name=value without the LWS (and folds) that may have been around '=' */
        rc = IMS_BUF_CAT(out, first ? IMS_S(" ") : IMS_S(", "), name, IMS_S("="), raw);
        first = false;
    }
    return rc;
}
