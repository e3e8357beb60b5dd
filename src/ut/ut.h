/* ut.h - the Ut interface (TS 24.623 in spirit, a JSON API): users read and
 * change their own IMS settings over HTTP(S) with a Keystone token
 * (X-Auth-Token).  docs/ut.md, docs/ut-openapi.yaml.
 *
 * Threads: libmicrohttpd's internal thread parses HTTP and never blocks: a
 * complete request is suspended (MHD_suspend_connection) and posted to the
 * Ut loop, a thread of its own that owns a Keystone client (validation,
 * cache).  The store work (subscription, Sh repository data) runs on a
 * store thread of the Ut's own executor (store/exec.h) over the HSS's
 * store; its completion resumes the connection with the answer.
 *
 * Lifetime: cfg and the location store (may be NULL: devices then come from
 * the HSS registration state) are borrowed and must outlive the server.
 * ims_ut_start() also initialises the S-CSCF's CDIV registry (cdiv.h) from
 * the stored settings; ims_ut_stop() frees it, so stop only after the SIP
 * workers were joined. */
#ifndef IMS_UT_UT_H
#define IMS_UT_UT_H

#include <stddef.h>
#include <stdint.h>

struct ims_cfg;
struct ims_loc;
struct ims_ut;

/* Starts the Ut interface on [ut] listen.  Needs [keystone] url and the
 * hss role in this process (the store is opened as the HSS's).  0, or
 * IMS_EINVAL / IMS_EIO / IMS_ENOMEM / IMS_EBACKEND with err filled
 * (nothing left running). */
int ims_ut_start(const struct ims_cfg *cfg, struct ims_loc *loc, struct ims_ut **out, char *err,
                 size_t errsz);
/* The bound TCP port (useful with port 0). */
uint16_t ims_ut_port(const struct ims_ut *u);
/* SIGHUP: [ut] policy_file again; requests being judged keep the old
 * policy, and a file that does not load leaves it in force.  Any thread.
 * 0, IMS_ENOENT (no [ut] policy_file), else err: "[ut] policy_file: path:line: ...". */
int ims_ut_reload_policy(struct ims_ut *u, char *err, size_t errsz);
/* Answers what is in flight (503 at worst), stops the threads, frees.
 * NULL is a no-op. */
void ims_ut_stop(struct ims_ut *u);

#endif
