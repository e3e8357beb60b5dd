/* codec.c - the table-driven AVP <-> struct codec (see codec.h). */
#include "dia/codec.h"

#include <string.h>

#include "base/err.h"
#include "base/log.h"

/* RFC 3629 UTF-8, without overlongs and surrogates. */
static bool utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

static int fail_at(struct dia_fail *f, uint32_t result, const struct dia_field *fd,
                   struct avp *avp, const char *why)
{
    f->result = result;
    f->code = fd->code;
    f->vendor = fd->vendor;
    f->avp = avp;
    f->field = fd->name;
    f->why = why;
    return IMS_EPROTO;
}

static const struct dia_field *find_field(const struct dia_table *t, uint32_t code,
                                          uint32_t vendor, size_t *idx)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->f[i].code == code && t->f[i].vendor == vendor) {
            *idx = i;
            return &t->f[i];
        }
    }
    return NULL;
}

static int decode_value(struct avp *avp, struct avp_hdr *h, const struct dia_field *fd,
                        char *slot, struct dia_fail *fail)
{
    if (fd->type == DT_GROUP)
        return dia_decode(avp, fd->sub, slot, fail);
    if (!h->avp_value)
        return fail_at(fail, DIA_INVALID_AVP_VALUE, fd, avp, "value not understood");
    switch (fd->type) {
    case DT_U32: {
        uint32_t v = h->avp_value->u32;
        if (fd->max > fd->min && (v < fd->min || v > fd->max))
            return fail_at(fail, DIA_INVALID_AVP_VALUE, fd, avp, "out of range");
        memcpy(slot, &v, sizeof(v));
        return 0;
    }
    case DT_I32: {
        int32_t v = h->avp_value->i32;
        if (fd->max > fd->min && (v < (int32_t)fd->min || v > (int32_t)fd->max))
            return fail_at(fail, DIA_INVALID_AVP_VALUE, fd, avp, "unknown value");
        memcpy(slot, &v, sizeof(v));
        return 0;
    }
    case DT_OS:
    case DT_UTF8: {
        size_t len = h->avp_value->os.len;
        const uint8_t *p = h->avp_value->os.data;
        if (len < fd->min || len > fd->max)
            return fail_at(fail, DIA_INVALID_AVP_VALUE, fd, avp, "length out of bounds");
        if (fd->type == DT_UTF8 && !utf8_valid(p, len))
            return fail_at(fail, DIA_INVALID_AVP_VALUE, fd, avp, "not UTF-8");
        ims_str s = ims_str_make((const char *)p, len);
        memcpy(slot, &s, sizeof(s));
        return 0;
    }
    }
    return fail_at(fail, DIA_INVALID_AVP_VALUE, fd, avp, "bad table type");
}

int dia_decode(msg_or_avp *parent, const struct dia_table *t, void *out, struct dia_fail *fail)
{
    char *base = out;
    uint64_t *present = out;
    struct avp *avp = NULL;
    memset(fail, 0, sizeof(*fail));
    *present = 0;
    for (size_t i = 0; i < t->n; i++) /* fields are read only when present; counts always */
        if (t->f[i].flags & DF_MULTI)
            memset(base + t->f[i].n_off, 0, sizeof(size_t));
    if (fd_msg_browse(parent, MSG_BRW_FIRST_CHILD, &avp, NULL) != 0)
        return IMS_EBACKEND;
    for (; avp; ) {
        struct avp_hdr *h;
        size_t idx;
        if (fd_msg_avp_hdr(avp, &h) != 0)
            return IMS_EBACKEND;
        uint32_t vendor = (h->avp_flags & AVP_FLAG_VENDOR) ? h->avp_vendor : 0;
        const struct dia_field *fd = find_field(t, h->avp_code, vendor, &idx);
        if (fd) {
            char *slot;
            if (fd->flags & DF_MULTI) {
                size_t *n = (size_t *)(base + fd->n_off);
                if (*n >= fd->max_n)
                    return fail_at(fail, DIA_AVP_OCCURS_TOO_MANY_TIMES, fd, avp,
                                   "more than we accept");
                slot = base + fd->off + *n * fd->stride;
                int rc = decode_value(avp, h, fd, slot, fail);
                if (rc)
                    return rc;
                (*n)++;
            } else {
                if ((*present >> idx) & 1u)
                    return fail_at(fail, DIA_AVP_OCCURS_TOO_MANY_TIMES, fd, avp,
                                   "occurs more than once");
                slot = base + fd->off;
                int rc = decode_value(avp, h, fd, slot, fail);
                if (rc)
                    return rc;
            }
            *present |= UINT64_C(1) << idx;
        }
        if (fd_msg_browse(avp, MSG_BRW_NEXT, &avp, NULL) != 0)
            return IMS_EBACKEND;
    }
    for (size_t i = 0; i < t->n; i++)
        if ((t->f[i].flags & DF_REQ) && !((*present >> i) & 1u))
            return fail_at(fail, DIA_MISSING_AVP, &t->f[i], NULL, "missing");
    return 0;
}

/* Why freeDiameter 1.2.1 could not take a top-level Session-Id a, or NULL
 * when it can.  A value is decoded here for the check (parsing one AVP
 * against the dictionary; the message's own parse later keeps that model). */
static const char *session_id_flaw(struct avp *a, struct avp_hdr *h)
{
    if (h->avp_flags & AVP_FLAG_VENDOR)
        return "V flag set"; /* no model, no value: assert in fd_msg_sess_get() */
    if (fd_msg_parse_dict(a, fd_g_config->cnf_dict, NULL) != 0 || fd_msg_avp_hdr(a, &h) != 0 ||
        !h->avp_value)
        return "undecodable";
    /* fd_sess_new() takes an empty value for a C string (strlen past the
     * AVP) and refuses one with a NUL, which stops the whole node */
    if (h->avp_value->os.len == 0)
        return "empty";
    if (memchr(h->avp_value->os.data, '\0', h->avp_value->os.len))
        return "NUL byte";
    return NULL;
}

/* Removes every top-level AVP of this code that flaw() finds a reason
 * against; *why (may be NULL) gets the last reason.  Returns how many. */
static size_t drop_flawed(struct msg *m, uint32_t code,
                          const char *(*flaw)(struct avp *a, struct avp_hdr *h), const char **why)
{
    struct avp *a = NULL;
    size_t n = 0;
    if (why)
        *why = NULL;
    if (!m || fd_msg_browse(m, MSG_BRW_FIRST_CHILD, &a, NULL) != 0)
        return 0;
    while (a) {
        struct avp *next = NULL;
        struct avp_hdr *h;
        if (fd_msg_browse(a, MSG_BRW_NEXT, &next, NULL) != 0)
            next = NULL;
        const char *reason = fd_msg_avp_hdr(a, &h) == 0 && h->avp_code == code ? flaw(a, h) : NULL;
        if (reason && fd_msg_free(a) == 0) { /* unlinks it */
            n++;
            if (why)
                *why = reason;
        }
        a = next;
    }
    return n;
}

size_t dia_drop_bad_session_id(struct msg *m, const char **why)
{
    return drop_flawed(m, 263, session_id_flaw, why);
}

/* Why freeDiameter 1.2.1 could not copy a top-level Proxy-Info into an
 * answer, or NULL.  With the V flag (which RFC 6733 4.5 forbids on it) it
 * finds no model for vendor 0's AVP 284 and keeps the raw bytes; an empty
 * one then has none, fd_msg_new_answer_from_req() fails with EINVAL and
 * leaks the answer it had begun (its Session-Id AVP). */
static const char *proxy_info_flaw(struct avp *a, struct avp_hdr *h)
{
    (void)a;
    return (h->avp_flags & AVP_FLAG_VENDOR) ? "V flag set" : NULL;
}

size_t dia_drop_bad_proxy_info(struct msg *m, const char **why)
{
    return drop_flawed(m, 284, proxy_info_flaw, why);
}

static struct dict_object *model_of(const struct dia_field *fd)
{
    struct dict_object *m = dia_dict_avp(fd->code, fd->vendor);
    if (!m)
        LOG_E("dia", "event=dict_missing avp=%s code=%u vendor=%u", fd->name, fd->code,
              fd->vendor);
    return m;
}

static int encode_one(msg_or_avp *parent, const struct dia_field *fd, const char *slot)
{
    struct dict_object *model = model_of(fd);
    struct avp *avp = NULL;
    union avp_value v;
    if (!model)
        return IMS_EBACKEND;
    if (fd_msg_avp_new(model, 0, &avp) != 0)
        return IMS_ENOMEM;
    int rc = 0;
    switch (fd->type) {
    case DT_GROUP:
        rc = dia_encode(avp, fd->sub, slot);
        break;
    case DT_U32:
        memcpy(&v.u32, slot, sizeof(v.u32));
        rc = fd_msg_avp_setvalue(avp, &v) ? IMS_EBACKEND : 0;
        break;
    case DT_I32:
        memcpy(&v.i32, slot, sizeof(v.i32));
        rc = fd_msg_avp_setvalue(avp, &v) ? IMS_EBACKEND : 0;
        break;
    case DT_OS:
    case DT_UTF8: {
        ims_str s;
        memcpy(&s, slot, sizeof(s));
        /* setvalue copies the bytes; it never writes through data */
        v.os.data = (uint8_t *)(uintptr_t)(s.p ? s.p : "");
        v.os.len = s.len;
        rc = fd_msg_avp_setvalue(avp, &v) ? IMS_EBACKEND : 0;
        break;
    }
    default:
        rc = IMS_EINVAL;
    }
    if (rc == 0 && fd_msg_avp_add(parent, MSG_BRW_LAST_CHILD, avp) != 0)
        rc = IMS_EBACKEND;
    if (rc)
        fd_msg_free(avp);
    return rc;
}

int dia_encode(msg_or_avp *parent, const struct dia_table *t, const void *in)
{
    const char *base = in;
    uint64_t present;
    memcpy(&present, in, sizeof(present));
    for (size_t i = 0; i < t->n; i++) {
        const struct dia_field *fd = &t->f[i];
        if (!((present >> i) & 1u))
            continue;
        if (fd->flags & DF_MULTI) {
            size_t n;
            memcpy(&n, base + fd->n_off, sizeof(n));
            if (n > fd->max_n)
                n = fd->max_n;
            for (size_t k = 0; k < n; k++) {
                int rc = encode_one(parent, fd, base + fd->off + k * fd->stride);
                if (rc)
                    return rc;
            }
        } else {
            int rc = encode_one(parent, fd, base + fd->off);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int new_avp(uint32_t code, uint32_t vendor, struct avp **out)
{
    struct dict_object *m = dia_dict_avp(code, vendor);
    if (!m)
        return IMS_EBACKEND;
    return fd_msg_avp_new(m, 0, out) ? IMS_ENOMEM : 0;
}

int dia_add_u32(msg_or_avp *parent, uint32_t code, uint32_t vendor, uint32_t v)
{
    struct avp *avp;
    union avp_value val = { .u32 = v };
    int rc = new_avp(code, vendor, &avp);
    if (rc)
        return rc;
    if (fd_msg_avp_setvalue(avp, &val) || fd_msg_avp_add(parent, MSG_BRW_LAST_CHILD, avp)) {
        fd_msg_free(avp);
        return IMS_EBACKEND;
    }
    return 0;
}

int dia_add_str(msg_or_avp *parent, uint32_t code, uint32_t vendor, ims_str s)
{
    struct avp *avp;
    union avp_value val;
    val.os.data = (uint8_t *)(uintptr_t)(s.p ? s.p : "");
    val.os.len = s.len;
    int rc = new_avp(code, vendor, &avp);
    if (rc)
        return rc;
    if (fd_msg_avp_setvalue(avp, &val) || fd_msg_avp_add(parent, MSG_BRW_LAST_CHILD, avp)) {
        fd_msg_free(avp);
        return IMS_EBACKEND;
    }
    return 0;
}

int dia_add_app_avps(msg_or_avp *parent, uint32_t app, int auth_state)
{
    struct avp *vsai;
    int rc = new_avp(260, 0, &vsai); /* Vendor-Specific-Application-Id */
    if (rc)
        return rc;
    rc = dia_add_u32(vsai, 266, 0, DIA_VENDOR_3GPP); /* Vendor-Id */
    if (rc == 0)
        rc = dia_add_u32(vsai, 258, 0, app); /* Auth-Application-Id */
    if (rc == 0 && fd_msg_avp_add(parent, MSG_BRW_LAST_CHILD, vsai) != 0)
        rc = IMS_EBACKEND;
    if (rc) {
        fd_msg_free(vsai);
        return rc;
    }
    if (auth_state >= 0)
        rc = dia_add_u32(parent, 277, 0, (uint32_t)auth_state); /* Auth-Session-State */
    return rc;
}

int dia_add_failed_avp(struct msg *ans, const struct dia_fail *f)
{
    struct avp *failed, *inner = NULL;
    struct dict_object *model = NULL;
    union avp_value v;
    int rc = new_avp(279, 0, &failed); /* Failed-AVP */
    if (rc)
        return rc;
    /* RFC 6733 §7.5: the offending AVP, or for a missing one an AVP with its
     * code and vendor and a minimal zero-filled value. */
    if (f->avp && fd_msg_model(f->avp, &model) == 0 && model) {
        struct avp_hdr *h;
        if (fd_msg_avp_new(model, 0, &inner) == 0 && fd_msg_avp_hdr(f->avp, &h) == 0 &&
            h->avp_value)
            (void)fd_msg_avp_setvalue(inner, h->avp_value);
    } else {
        model = dia_dict_avp(f->code, f->vendor);
        if (model && fd_msg_avp_new(model, 0, &inner) == 0) {
            struct dict_avp_data d;
            if (fd_dict_getval(model, &d) == 0 && d.avp_basetype != AVP_TYPE_GROUPED) {
                memset(&v, 0, sizeof(v));
                if (d.avp_basetype == AVP_TYPE_OCTETSTRING)
                    v.os.data = (uint8_t *)(uintptr_t)"";
                (void)fd_msg_avp_setvalue(inner, &v);
            }
        }
    }
    if (inner && fd_msg_avp_add(failed, MSG_BRW_LAST_CHILD, inner) != 0) {
        fd_msg_free(inner);
        inner = NULL;
    }
    if (fd_msg_avp_add(ans, MSG_BRW_LAST_CHILD, failed) != 0) {
        fd_msg_free(failed);
        return IMS_EBACKEND;
    }
    return 0;
}
