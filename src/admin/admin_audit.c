/* admin_audit.c - CADF events for admin socket commands (admin_audit.h). */
#define _GNU_SOURCE /* struct ucred */
#include "admin/admin_audit.h"

#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "audit/audit.h"
#include "base/err.h"

long admin_audit_peer_uid(int fd)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);
    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
        return -1;
    return (long)cr.uid;
}

void admin_audit(enum ims_admin_cmd cmd, const char *impu, long uid, int rc, uint32_t result)
{
    char who[32], code[32], kid[32], detail[96];
    snprintf(who, sizeof(who), "uid:%ld", uid);
    struct ims_audit_event ev = {
        .initiator_type = "service/security/account/user",
        .initiator_id = ims_str_cstr(who),
        .initiator_name = IMS_S("imscloudctl"),
        .initiator_addr = IMS_S("local"),
        .observer = "admin",
    };
    /* RFC 6733 §7.1: 2xxx is success */
    bool ok = rc == 0 && (cmd == IMS_ADMIN_KEYS_RELOAD || (result >= 2000 && result < 3000));
    ev.outcome = ok ? "success" : "failure";
    if (rc) {
        ev.reason_type = "imscloud";
        ev.reason_code = ims_str_cstr(ims_strerror(rc));
    } else if (cmd != IMS_ADMIN_KEYS_RELOAD) {
        snprintf(code, sizeof(code), "%u", result);
        ev.reason_type = "Diameter";
        ev.reason_code = ims_str_cstr(code);
    }
    switch (cmd) {
    case IMS_ADMIN_HSS_DEREGISTER: /* TS 29.228 §6.1.3: RTR */
        ev.action = "delete";
        ev.target_type = "data/ims/registration";
        ev.target_id = ev.target_name = ims_str_cstr(impu);
        ev.detail = IMS_S("hss.deregister (RTR)");
        break;
    case IMS_ADMIN_HSS_PUSH_PROFILE: /* TS 29.228 §6.2.2: PPR */
        ev.action = "update";
        ev.target_type = "data/ims/profile";
        ev.target_id = ev.target_name = ims_str_cstr(impu);
        ev.detail = IMS_S("hss.push-profile (PPR)");
        break;
    case IMS_ADMIN_KEYS_RELOAD:
        if (ok)
            ims_audit_rekey_default(); /* a rotation: new lines under the new primary */
        snprintf(kid, sizeof(kid), "k%u", result);
        snprintf(detail, sizeof(detail), "keys.reload: key repository re-read, primary k%u",
                 result);
        ev.action = "update";
        ev.target_type = "data/security/keys";
        ev.target_id = ok ? ims_str_cstr(kid) : IMS_S("keys");
        ev.target_name = IMS_S("key repository");
        ev.detail = ims_str_cstr(detail);
        break;
    default:
        return; /* status: reads nothing to audit */
    }
    ims_audit_emit(&ev);
}
