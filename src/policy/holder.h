/* holder.h - a policy that can be replaced while it is in use (SIGHUP
 * reload of [scscf] / [ut] policy_file; docs/policy.md "Reload").
 *
 * A compiled policy (policy.h) is immutable; reloading means compiling the
 * new file into a new policy and swapping it in.  The holder does the swap
 * and keeps each policy alive while someone judges with it: a caller takes
 * a reference (ims_policy_holder_get), enforces with it, and puts it back;
 * the policy a reload replaced is freed by whoever drops its last
 * reference, the reload itself or the last request still using it.
 *
 * Threads: every function may run on any thread.  get/put take a mutex
 * only to read the pointer and count (never while enforcing), so a reload
 * never waits for a request and a request never sees a freed policy.
 *
 * Lifetime: the holder is its creator's (ims_policy_holder_free, with no
 * reference outstanding); a reference is its taker's until put. */
#ifndef IMS_POLICY_HOLDER_H
#define IMS_POLICY_HOLDER_H

#include <stdbool.h>
#include <stddef.h>

struct ims_policy;
struct ims_policy_holder;
struct ims_policy_ref;

/* An empty holder (get returns NULL until a load succeeds).  0, IMS_ENOMEM. */
int ims_policy_holder_new(struct ims_policy_holder **out);
/* Frees the holder and its current policy.  NULL is a no-op. */
void ims_policy_holder_free(struct ims_policy_holder *h);

/* Loads and compiles path (ims_policy_load_file) and makes it current.  On
 * failure the current policy stays and err gets "path:line: message".
 * Returns as ims_policy_load_file (0, IMS_EIO, IMS_EPROTO, IMS_ELIMIT,
 * IMS_ENOMEM).  *nrules (may be NULL) gets the new policy's rule count. */
int ims_policy_holder_load(struct ims_policy_holder *h, const char *path, size_t *nrules,
                           char *err, size_t errsz);

/* A reference to the current policy, or NULL when none was loaded. */
struct ims_policy_ref *ims_policy_holder_get(struct ims_policy_holder *h);
/* The policy of a reference (never NULL for a non-NULL ref). */
const struct ims_policy *ims_policy_ref_policy(const struct ims_policy_ref *r);
/* Drops a reference; NULL is a no-op. */
void ims_policy_ref_put(struct ims_policy_ref *r);

#endif
