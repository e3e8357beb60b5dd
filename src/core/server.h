/* server.h - the imscloud process: N workers, each with its own event loop,
 * transports and SIP core, built from one validated configuration.
 *
 * Threads: ims_server_new() builds every worker on the calling thread and
 * opens every socket (so bind errors are reported before anything runs);
 * ims_server_run() starts one thread per worker and returns after
 * ims_server_stop() (async-signal-unsafe: call it from a normal thread, e.g.
 * the main thread after sigwait()).  Ownership: the server borrows cfg, which
 * must outlive it. */
#ifndef IMS_CORE_SERVER_H
#define IMS_CORE_SERVER_H

#include <stddef.h>

struct ims_cfg;
struct ims_server;

/* 0, IMS_EINVAL/IMS_EIO (err says what: a TLS file, a bind), IMS_ENOMEM. */
int ims_server_new(const struct ims_cfg *cfg, struct ims_server **out, char *err, size_t errsz);
/* Starts the worker threads. 0 or IMS_EIO. */
int ims_server_start(struct ims_server *s);
/* Stops the workers and joins them. Idempotent. */
void ims_server_stop(struct ims_server *s);
/* SIGHUP: reloads the SIP TLS certificates, keys and CA for new
 * handshakes (established connections keep theirs).  Any thread.
 * 0, IMS_ENOENT (no SIP transport), or as ims_sip_tp_shared_reload_tls. */
int ims_server_reload_tls(struct ims_server *s, char *err, size_t errsz);
/* SIGHUP: the S-CSCF's and the Ut's policy files again
 * (ims_cscf_reload_policy, ims_ut_reload_policy); a file that does not
 * load keeps its old policy.  0, IMS_ENOENT (neither has a policy), or the
 * first load error (err: "... path:line: why"). */
int ims_server_reload_policy(struct ims_server *s, char *err, size_t errsz);
/* Frees everything; returns the number of objects leaked by the workers
 * (transactions still alive), which tests treat as a failure. */
size_t ims_server_free(struct ims_server *s);

#endif
