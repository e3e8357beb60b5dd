/* role.h - the `hss` role of imscloud: builds the HSS configuration from
 * the [core], [hss] and [diameter] sections and runs it (hss.h).  Called
 * by the server (src/core/server.c) when [core] roles lists hss.
 *
 * Files: the state directory is created if missing (0700); the default
 * store is sqlite:<state_dir>/hss.db, the key repository <state_dir>/keys
 * (created on first start) and freeDiameter's generated configuration
 * <state_dir>/run/freediameter.conf. */
#ifndef IMS_HSS_ROLE_H
#define IMS_HSS_ROLE_H

#include <stddef.h>

struct ims_cfg;
struct ims_hss_role;
struct ims_hss;

/* 0, or an IMS_E* error with err filled (nothing left running).  cfg is
 * borrowed and must outlive the role. */
int ims_hss_role_start(const struct ims_cfg *cfg, struct ims_hss_role **out, char *err,
                       size_t errsz);
/* The running HSS (for admin calls). */
struct ims_hss *ims_hss_role_hss(struct ims_hss_role *r);
/* Stops and frees; returns the requests leaked.  NULL is a no-op. */
size_t ims_hss_role_stop(struct ims_hss_role *r);

#endif
