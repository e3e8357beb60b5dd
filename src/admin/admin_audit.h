/* admin_audit.h - audit events for the admin socket's mutating commands
 * (src/audit/audit.h): RTR, PPR and key reloads, with the operator's uid
 * (SO_PEERCRED) as the initiator.  Called on the admin loop. */
#ifndef IMS_ADMIN_ADMIN_AUDIT_H
#define IMS_ADMIN_ADMIN_AUDIT_H

#include <stdint.h>

#include "admin/admin.h"

/* The peer's uid on a Unix socket, or -1. */
long admin_audit_peer_uid(int fd);
/* One event for a finished command: rc (IMS_E*) and the Diameter result
 * (hss.*) or the new primary key (keys.reload).  A successful keys.reload
 * also moves the audit trail to the new primary first. */
void admin_audit(enum ims_admin_cmd cmd, const char *impu, long uid, int rc, uint32_t result);

#endif
