/* cscf.h - the CSCF roles (TS 24.229): P-CSCF, I-CSCF and S-CSCF as proxy
 * apps (proxy/proxy.h) on their own listener ports, in one process or
 * alone, with the HSS reached in-process or over Diameter (cx_client.h).
 * docs/internals/cscf.md explains the whole.
 *
 * What the server (src/core/server.c) does with it:
 *   ims_cscf_new()          once, after the HSS role started (or not) and
 *                           before the workers: shared stores, Cx transport;
 *   ims_cscf_worker_init()  per worker, after its proxy got its transport:
 *                           sets the apps on the proxy per listener port,
 *                           the worker's Cx clients and its expiry sweep;
 *   ims_cscf_stop()         after the worker loops stopped: Diameter stops;
 *   (the HSS role stops, the worker loops are freed)
 *   ims_cscf_free()         last.
 *
 * Lifetime: cfg and hss are borrowed and must outlive the object. */
#ifndef IMS_CSCF_CSCF_H
#define IMS_CSCF_CSCF_H

#include <stdbool.h>
#include <stddef.h>

#include "cscf/cx_client.h"
#include "proxy/proxy.h"

struct ims_cfg;
struct ims_hss;
struct ims_loop;
struct ims_cscf;
struct ims_loc;
struct ims_auth;

/* True if cfg makes any CSCF role active (listed in [core] roles and given
 * ports in its section). */
bool ims_cscf_configured(const struct ims_cfg *cfg);
/* Loop timers one worker needs for the CSCF roles (Cx deadlines, sweep). */
size_t ims_cscf_timers(const struct ims_cfg *cfg);

/* hss: the HSS role of this process, or NULL (Cx over Diameter, started
 * here as a client of [diameter] peer).  Logs one line per active role with
 * its ports and URI.  0, or an IMS_E* error with err filled. */
int ims_cscf_new(const struct ims_cfg *cfg, struct ims_hss *hss, unsigned nworkers,
                 struct ims_cscf **out, char *err, size_t errsz);
/* Test seam: the same with Cx answered by fake (cx_client.h). */
int ims_cscf_new_fake_cx(const struct ims_cfg *cfg, unsigned nworkers, ims_cx_fake_fn fake,
                         void *fake_ctx, struct ims_cscf **out, char *err, size_t errsz);
/* Before worker idx's loop runs.  0, or an error with err filled. */
int ims_cscf_worker_init(struct ims_cscf *c, unsigned idx, struct ims_loop *loop,
                         struct ims_proxy *p, char *err, size_t errsz);
/* With the worker loops stopped (not yet freed).  NULL is a no-op. */
void ims_cscf_stop(struct ims_cscf *c);
/* With the worker loops freed.  Returns the number of request states that
 * were still alive (requests in progress at shutdown; not leaks: they are
 * freed here).  NULL returns 0. */
size_t ims_cscf_free(struct ims_cscf *c);
/* SIGHUP: [scscf] policy_file again, swapped in for new requests (policy
 * follow-up, docs/keystone.md).  Any thread.  0; IMS_ENOENT (no S-CSCF
 * policy); else the old policy stays and err says "...: path:line: why". */
int ims_cscf_reload_policy(struct ims_cscf *c, char *err, size_t errsz);

/* ---- for the sessions (S-CSCF non-REGISTER requests) ----
 *
 * The S-CSCF app answers REGISTER itself and hands every other request to
 * a hook: by default ims_cscf_scscf_default() (session.c), the session
 * processing of TS 24.229 §5.4.3: originating (top Route ours with ";orig",
 * served user = P-Asserted-Identity) and terminating (served user = the
 * Request-URI) cases, the served user's iFCs with ISC to application servers
 * and back (";odi="), default handling, then the I-CSCF (originating) or the
 * registered contact (terminating); docs/internals/cscf.md "Sessions".  Set
 * another hook before the workers run.  In a hook, ims_cscf_scscf_orig() tells the session case,
 * ims_cscf_loc() gives the location store (registrar.h: ims_loc_get() by
 * any identity of an implicit set, with its contacts, Path and the parsed
 * iFCs) and ims_cscf_scscf_route_term() forwards to a registration's best
 * contact along its Path. */
void ims_cscf_set_scscf_hook(struct ims_cscf *c, proxy_request_fn fn, void *ctx);
void ims_cscf_scscf_default(void *c, struct proxy_req *r, const struct sip_msg *m);
/* The top Route value named this S-CSCF and carried "orig" (RFC 3608 /
 * TS 24.229 §5.4.3.2: the Service-Route we handed out). */
bool ims_cscf_scscf_orig(struct proxy_req *r, const struct sip_msg *m);
struct ims_loc *ims_cscf_loc(struct ims_cscf *c);
struct ims_auth *ims_cscf_auth(struct ims_cscf *c);
/* Forwards r to the registered contact of impu with the highest q (then the
 * latest expiry), with the contact as Request-URI and its Path as Route; if
 * that contact is an RFC 5626 flow and its edge answers 430, to the next
 * flow of the same instance (480 when none is left).
 * 0 (forwarded), IMS_ENOENT (not registered: answer 480 or do unregistered
 * processing), or a forwarding error. */
int ims_cscf_scscf_route_term(struct ims_cscf *c, struct proxy_req *r, ims_str impu);

#endif
