/* cloudas.h - the cloud application server (the `as` role, [as] section):
 * IMS users manage their OpenStack servers with SIP MESSAGEs to a service
 * URI (TS 24.229 §5.7 AS acting as a terminating UA, reached over ISC by an
 * iFC), each command acting with that user's own Keystone identity and
 * checked by the policy before any OpenStack call.  User guide:
 * docs/cloud-as.md; design: docs/internals/cloudas.md.
 *
 * Objects:
 *   struct ims_cloudas  one per process: the options, the delegations, the
 *                       policy.  Read-only once the workers run.
 *   per worker          the app on the [as] ports of that worker's proxy,
 *                       an HTTP client (src/http) on its loop, its jobs and
 *                       its token cache.
 *
 * Lifetime rules:
 * 1. ims_cloudas_new before the workers exist; ims_cloudas_worker_init for
 *    each worker before its loop runs (or on its thread).
 * 2. ims_cloudas_stop after the loops stopped and before they are freed:
 *    it frees the workers' HTTP clients, jobs and tokens (no callbacks run).
 * 3. ims_cloudas_free last. */
#ifndef IMS_CLOUDAS_CLOUDAS_H
#define IMS_CLOUDAS_CLOUDAS_H

#include <stdbool.h>
#include <stddef.h>

struct ims_cfg;
struct ims_loop;
struct ims_proxy;
struct ims_cloudas;

/* The as role is listed and [as] ports is set. */
bool ims_cloudas_configured(const struct ims_cfg *cfg);
/* Timers per worker the AS may arm (one per job). */
size_t ims_cloudas_timers(const struct ims_cfg *cfg);

/* Loads the policy and the delegations.  0, IMS_EINVAL (err says why: a
 * missing key, a bad file), IMS_EIO, IMS_ENOMEM. */
int ims_cloudas_new(const struct ims_cfg *cfg, unsigned nworkers, struct ims_cloudas **out,
                    char *err, size_t errsz);
/* Installs the app on worker idx's proxy for every [as] port.  0, IMS_ELIMIT,
 * IMS_ENOMEM, IMS_EBACKEND (libcurl). */
int ims_cloudas_worker_init(struct ims_cloudas *as, unsigned idx, struct ims_loop *loop,
                            struct ims_proxy *p, char *err, size_t errsz);
/* See rule 2.  NULL is a no-op. */
void ims_cloudas_stop(struct ims_cloudas *as);
/* NULL is a no-op. */
void ims_cloudas_free(struct ims_cloudas *as);

#endif
