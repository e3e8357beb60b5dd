/* admin_proto.c - the admin socket's JSON lines (see admin.h), shared by
 * the server and the imscloudctl client.  jansson parses; every field is
 * checked for type and length before it is copied. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "admin/admin.h"
#include "base/alloc.h"
#include "base/err.h"

static const struct {
    enum ims_admin_cmd cmd;
    const char *name;
} cmds[] = {
    { IMS_ADMIN_STATUS, "status" },
    { IMS_ADMIN_HSS_DEREGISTER, "hss.deregister" },
    { IMS_ADMIN_HSS_PUSH_PROFILE, "hss.push-profile" },
    { IMS_ADMIN_KEYS_RELOAD, "keys.reload" },
};

static const char *cmd_name(enum ims_admin_cmd c)
{
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (cmds[i].cmd == c)
            return cmds[i].name;
    return NULL;
}

/* Printable ASCII without spaces, 1..cap-1 bytes (store identities). */
static bool id_ok(const char *s, size_t len, size_t cap)
{
    if (len == 0 || len >= cap)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* Printable ASCII (spaces allowed), < cap bytes. */
static bool text_ok(const char *s, size_t len, size_t cap)
{
    if (len >= cap)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

int ims_admin_req_parse(ims_str line, struct ims_admin_req *out, char *err, size_t errsz)
{
    json_error_t jerr;
    memset(out, 0, sizeof(*out));
    if (line.len && line.p[line.len - 1] == '\n')
        line.len--;
    if (line.len == 0 || line.len > IMS_ADMIN_LINE_MAX) {
        snprintf(err, errsz, "request: empty or longer than %d bytes", IMS_ADMIN_LINE_MAX);
        return IMS_EPROTO;
    }
    json_t *root = json_loadb(line.p, line.len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = IMS_EPROTO;
    if (!root) {
        snprintf(err, errsz, "request: not JSON (%s)", jerr.text);
        return IMS_EPROTO;
    }
    if (!json_is_object(root)) {
        snprintf(err, errsz, "request: not a JSON object");
        goto out;
    }
    json_t *c = json_object_get(root, "cmd");
    if (!json_is_string(c)) {
        snprintf(err, errsz, "cmd: missing or not a string");
        goto out;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]) && !out->cmd; i++)
        if (strcmp(json_string_value(c), cmds[i].name) == 0)
            out->cmd = cmds[i].cmd;
    if (!out->cmd) {
        snprintf(err, errsz, "cmd: unknown command (status, hss.deregister, hss.push-profile, "
                             "keys.reload)");
        goto out;
    }
    if (out->cmd == IMS_ADMIN_HSS_DEREGISTER || out->cmd == IMS_ADMIN_HSS_PUSH_PROFILE) {
        json_t *u = json_object_get(root, "impu");
        if (!json_is_string(u) ||
            !id_ok(json_string_value(u), json_string_length(u), sizeof(out->impu))) {
            snprintf(err, errsz, "impu: missing, or not an identity (printable, no spaces, "
                                 "< %d bytes)",
                     IMS_STORE_ID_MAX);
            goto out;
        }
        memcpy(out->impu, json_string_value(u), json_string_length(u) + 1);
    }
    if (out->cmd == IMS_ADMIN_HSS_DEREGISTER) {
        json_t *r = json_object_get(root, "reason");
        json_t *info = json_object_get(root, "info");
        if (r && (!json_is_integer(r) || json_integer_value(r) < 0 ||
                  json_integer_value(r) > 3)) {
            snprintf(err, errsz, "reason: must be an integer 0..3 (TS 29.228 Reason-Code)");
            goto out;
        }
        out->reason = r ? (int)json_integer_value(r) : 0;
        if (info && (!json_is_string(info) || !text_ok(json_string_value(info),
                                                       json_string_length(info),
                                                       sizeof(out->info)))) {
            snprintf(err, errsz, "info: must be printable text under %d bytes",
                     IMS_ADMIN_INFO_MAX);
            goto out;
        }
        if (info)
            memcpy(out->info, json_string_value(info), json_string_length(info) + 1);
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int ims_admin_req_format(const struct ims_admin_req *r, struct ims_buf *out)
{
    const char *name = cmd_name(r->cmd);
    if (!name)
        return IMS_EINVAL;
    json_t *o = json_object();
    if (!o)
        return IMS_ENOMEM;
    int rc = json_object_set_new(o, "cmd", json_string(name));
    if (rc == 0 && (r->cmd == IMS_ADMIN_HSS_DEREGISTER || r->cmd == IMS_ADMIN_HSS_PUSH_PROFILE)) {
        if (!id_ok(r->impu, strlen(r->impu), sizeof(r->impu))) {
            json_decref(o);
            return IMS_EINVAL;
        }
        rc = json_object_set_new(o, "impu", json_string(r->impu));
    }
    if (rc == 0 && r->cmd == IMS_ADMIN_HSS_DEREGISTER) {
        if (r->reason < 0 || r->reason > 3 || !text_ok(r->info, strlen(r->info), sizeof(r->info))) {
            json_decref(o);
            return IMS_EINVAL;
        }
        rc = json_object_set_new(o, "reason", json_integer(r->reason));
        if (rc == 0 && r->info[0])
            rc = json_object_set_new(o, "info", json_string(r->info));
    }
    char *s = rc == 0 ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        return IMS_ENOMEM;
    rc = ims_buf_add_cstr(out, s);
    if (rc == 0)
        rc = ims_buf_add_cstr(out, "\n");
    ims_free(s); /* jansson allocates with ims_alloc (admin_srv.c, imscloudctl) or malloc */
    return rc;
}

int ims_admin_reply_parse(ims_str line, struct ims_admin_reply *out)
{
    json_error_t jerr;
    memset(out, 0, sizeof(*out));
    json_t *root = json_loadb(line.p, line.len, 0, &jerr);
    if (!root)
        return IMS_EPROTO;
    int rc = IMS_EPROTO;
    json_t *ok = json_object_get(root, "ok");
    if (json_is_object(root) && json_is_boolean(ok)) {
        out->ok = json_is_true(ok);
        json_t *v = json_object_get(root, "result");
        if (json_is_integer(v) && json_integer_value(v) >= 0 &&
            json_integer_value(v) <= UINT32_MAX)
            out->result = (uint32_t)json_integer_value(v);
        v = json_object_get(root, "primary");
        if (json_is_integer(v) && json_integer_value(v) >= 0 &&
            json_integer_value(v) <= UINT32_MAX)
            out->primary = (unsigned)json_integer_value(v);
        v = json_object_get(root, "error");
        if (json_is_string(v))
            snprintf(out->error, sizeof(out->error), "%s", json_string_value(v));
        v = json_object_get(root, "message");
        if (json_is_string(v))
            snprintf(out->message, sizeof(out->message), "%s", json_string_value(v));
        rc = 0;
    }
    json_decref(root);
    return rc;
}

int ims_admin_errcode(const char *name)
{
    static const int codes[] = { IMS_EAGAIN, IMS_EPROTO,    IMS_ENOENT,   IMS_ELIMIT, IMS_ENOMEM,
                                 IMS_EINVAL, IMS_ETIMEDOUT, IMS_EBACKEND, IMS_EIO };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strcmp(name, ims_strerror(codes[i])) == 0)
            return codes[i];
    return IMS_EBACKEND;
}
