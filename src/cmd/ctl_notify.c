/* ctl_notify.c - imscloudctl's side of the admin socket (src/admin): the
 * RTR/PPR a change needs, keys.reload, and `status`. */
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "base/err.h"
#include "cfg/cfg.h"
#include "cmd/ctl.h"

#define DIA_SUCCESS_CODE 2001

/* How long to wait for the server: its RTR/PPR timeout and a margin. */
static unsigned wait_ms(const struct ctl *c)
{
    return (c->cfg ? c->cfg->dia_request_timeout_ms : 10000) + 5000;
}

/* One request: 0 with *rep, or an ims_admin_call() error with err set. */
static int request(struct ctl *c, const struct ims_admin_req *r, struct ims_admin_reply *rep,
                   char *err, size_t errsz)
{
    struct ims_buf line, reply;
    int rc = ctl_load_config(c);
    if (rc) {
        snprintf(err, errsz, "no configuration");
        return IMS_EINVAL;
    }
    ims_buf_init(&line, IMS_ADMIN_LINE_MAX);
    ims_buf_init(&reply, IMS_ADMIN_LINE_MAX);
    rc = ims_admin_req_format(r, &line);
    if (rc == 0)
        rc = ims_admin_call(c->sock_path, ims_buf_str(&line), &reply, wait_ms(c), err, errsz);
    if (rc == 0 && ims_admin_reply_parse(ims_buf_str(&reply), rep) != 0) {
        snprintf(err, errsz, "%s: the reply is not an admin reply", c->sock_path);
        rc = IMS_EPROTO;
    }
    ims_buf_free(&line);
    ims_buf_free(&reply);
    return rc;
}

bool ctl_notify(struct ctl *c, enum ctl_notify_kind kind, const char *impu, int reason,
                const char *info)
{
    struct ims_admin_req r;
    struct ims_admin_reply rep;
    char err[512];
    const char *what = kind == CTL_NOTIFY_RTR ? "RTR" : "PPR";
    memset(&r, 0, sizeof(r));
    r.cmd = kind == CTL_NOTIFY_RTR ? IMS_ADMIN_HSS_DEREGISTER : IMS_ADMIN_HSS_PUSH_PROFILE;
    snprintf(r.impu, sizeof(r.impu), "%s", impu);
    r.reason = reason;
    snprintf(r.info, sizeof(r.info), "%s", info ? info : "");
    int rc = request(c, &r, &rep, err, sizeof(err));
    if (rc == IMS_ENOENT) {
        ctl_warn(c, "no imscloud is running (%s): the change is stored, but no %s was sent for "
                    "%s; its S-CSCF learns of it at the next registration",
                 c->sock_path, what, impu);
        return false;
    }
    if (rc) {
        ctl_warn(c, "cannot reach the running imscloud: %s: the change is stored, but no %s was "
                    "sent for %s",
                 err, what, impu);
        return false;
    }
    if (!rep.ok && ims_admin_errcode(rep.error) == IMS_ENOENT) {
        ctl_say(c, "%s: not assigned to an S-CSCF any more: no %s needed", impu, what);
        return false;
    }
    if (!rep.ok) {
        ctl_warn(c, "the change is stored, but the %s for %s failed: %s (%s)", what, impu,
                 rep.message, rep.error);
        return false;
    }
    if (rep.result != DIA_SUCCESS_CODE)
        ctl_warn(c, "%s for %s: the S-CSCF answered %u", what, impu, rep.result);
    else
        ctl_say(c, "%s sent for %s: the S-CSCF answered %u", what, impu, rep.result);
    return rep.result == DIA_SUCCESS_CODE;
}

int ctl_keys_reload(struct ctl *c, unsigned *primary, char *msg, size_t msgsz)
{
    struct ims_admin_req r;
    struct ims_admin_reply rep;
    memset(&r, 0, sizeof(r));
    r.cmd = IMS_ADMIN_KEYS_RELOAD;
    int rc = request(c, &r, &rep, msg, msgsz);
    if (rc)
        return rc;
    if (!rep.ok) {
        snprintf(msg, msgsz, "%s", rep.message);
        return ims_admin_errcode(rep.error);
    }
    *primary = rep.primary;
    return 0;
}

void ctl_nset_add(struct ctl_nset *s, const struct ims_impu_rec *r)
{
    /* nobody to tell: no S-CSCF, or it holds nothing of this set (a name
     * stored by MAR for a registration in progress is not a registration) */
    if (!r->scscf_name[0] || r->reg_state == IMS_REG_NOT_REGISTERED)
        return;
    for (size_t i = 0; i < s->n; i++)
        if (s->e[i].irs == r->irs && strcmp(s->e[i].sub, r->subscription) == 0)
            return;
    if (s->n == sizeof(s->e) / sizeof(s->e[0])) {
        s->truncated = true;
        return;
    }
    snprintf(s->e[s->n].sub, sizeof(s->e[s->n].sub), "%s", r->subscription);
    snprintf(s->e[s->n].impu, sizeof(s->e[s->n].impu), "%s", r->identity);
    s->e[s->n].irs = r->irs;
    s->n++;
}

void ctl_nset_send(struct ctl *c, const struct ctl_nset *s, enum ctl_notify_kind kind, int reason,
                   const char *info)
{
    for (size_t i = 0; i < s->n; i++)
        ctl_notify(c, kind, s->e[i].impu, reason, info);
    if (s->truncated)
        ctl_warn(c, "more than %zu implicit sets affected: only the first were notified",
                 sizeof(s->e) / sizeof(s->e[0]));
}

int ctl_cmd_status(struct ctl *c, int argc, char **argv)
{
    struct ctl_args a;
    struct ims_buf line, reply;
    char err[512];
    int rc = ctl_parse(c, argc, argv, NULL, 0, 0, "", &a);
    if (rc)
        return rc;
    if ((rc = ctl_load_config(c)) != 0)
        return rc;
    ims_buf_init(&line, IMS_ADMIN_LINE_MAX);
    ims_buf_init(&reply, IMS_ADMIN_LINE_MAX);
    ims_buf_add_cstr(&line, "{\"cmd\":\"status\"}\n");
    int arc = ims_admin_call(c->sock_path, ims_buf_str(&line), &reply, 5000, err, sizeof(err));
    json_t *o = arc == 0 ? json_loadb(reply.p, reply.len, 0, NULL) : NULL;
    ims_buf_free(&line);
    ims_buf_free(&reply);
    if (arc == IMS_ENOENT)
        return ctl_fail(c, CTL_FAIL, "no imscloud is running (%s)", c->sock_path);
    if (arc)
        return ctl_fail(c, CTL_FAIL, "%s", err);
    if (!json_is_object(o) || !json_is_true(json_object_get(o, "ok"))) {
        json_decref(o);
        return ctl_fail(c, CTL_FAIL, "%s: unexpected reply", c->sock_path);
    }
    json_object_del(o, "ok");
    json_object_set_new(o, "socket", json_string(c->sock_path));
    ctl_say(c, "imscloud is running");
    ctl_print_obj(c, o, 2);
    return ctl_done(c, o);
}
