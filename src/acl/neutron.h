/* neutron.h - an OpenStack Neutron security group as the source of the
 * listeners' rules (issue 7 part 4; docs/security-groups.md "Neutron as the
 * source").
 *
 * A thread of its own reads the group named by [security] neutron_group
 * every neutron_refresh seconds (and at once on ims_acl_neutron_refresh,
 * i.e. SIGHUP) with a token of the [keystone] service account, at the
 * "network" endpoint of that token's catalog.  Each good read is compiled
 * with ims_acl_parse() (the union with [security] rules_file when that is
 * set too) and published with ims_acl_holder_swap(): all or nothing.
 *
 * - Neutron or Keystone unreachable, timing out, 5xx, a refused service
 *   account: the rules in force stay; logged once per change of state
 *   (event=neutron_unavailable, then event=neutron_available).
 * - A rule that cannot be applied (remote_group_id, a bad port range, ...),
 *   a group that no longer exists or a name that matches several groups:
 *   the whole update is refused, the rules in force stay, and the reason is
 *   logged with the rule's index and Neutron id (event=neutron_refused).
 * - Before the first good read the holder has the rules file's set, or,
 *   without a file, an empty set: default deny ("no rule, no entry").
 *
 * The thread does blocking HTTP (libcurl easy, bounded by [keystone]
 * timeout_ms per request) and touches nothing but the holder: SIP workers
 * never wait for it.  Ownership: the struct and its thread are the caller
 * of ims_acl_neutron_start's; the holder is borrowed and must outlive
 * ims_acl_neutron_stop(). */
#ifndef IMS_ACL_NEUTRON_H
#define IMS_ACL_NEUTRON_H

#include <stdbool.h>
#include <stddef.h>

struct ims_cfg;
struct ims_acl;
struct ims_acl_holder;
struct ims_acl_neutron;

/* Starts the source when cfg has [security] neutron_group (else 0 with
 * *out NULL).  Publishes the deny-all set first when there is no rules
 * file, then waits for the first read (at most about three request
 * timeouts) so that the listeners open with the group's rules when Neutron
 * answers.  cfg and h are borrowed.  0, IMS_EINVAL (err: the [keystone]
 * options or the rules file), IMS_ENOMEM, IMS_EBACKEND (libcurl or the
 * thread could not start). */
int ims_acl_neutron_start(const struct ims_cfg *cfg, struct ims_acl_holder *h,
                          struct ims_acl_neutron **out, char *err, size_t errsz);
/* Asks the thread for a read now (SIGHUP); reread_file: also read the rules
 * file again (a bad file keeps its previous rules).  Returns at once.  NULL
 * is a no-op. */
void ims_acl_neutron_refresh(struct ims_acl_neutron *n, bool reread_file);
/* Stops the thread (waits for a request in flight, bounded by its timeout)
 * and frees n.  The published rules stay.  NULL is a no-op. */
void ims_acl_neutron_stop(struct ims_acl_neutron *n);

/* ---- the pure parts (unit tests) ---- */

/* The rule set from a Neutron body: GET /v2.0/security-groups/{id}
 * ({"security_group": {...}}) or GET /v2.0/security-groups?name=NAME
 * ({"security_groups": [...]}, exactly one group must match).  extra is a
 * rules-file text in the same API shape whose rules are added (the union),
 * or NULL.  group names the group in errors; *group_id (optional) gets the
 * id of the group read (the caller frees it with ims_free).  0 (*out the
 * caller's), IMS_ENOENT (no such group), IMS_EINVAL (err: "neutron group
 * NAME: rule 2 (id ...): remote_group_id: must be null", several groups of
 * that name, a body that is not Neutron's), IMS_ELIMIT, IMS_ENOMEM. */
int ims_acl_neutron_build(const char *group, const char *body, size_t len, const char *extra,
                          size_t extra_len, struct ims_acl **out, char **group_id, char *err,
                          size_t errsz);
/* The URL of service `type` (interface public, else internal, else the
 * first) in a Keystone POST /v3/auth/tokens body, without a trailing '/'.
 * 0, IMS_ENOENT (no such service), IMS_EPROTO (not a token body),
 * IMS_ELIMIT (outsz too small). */
int ims_acl_neutron_catalog_url(const char *body, size_t len, const char *type, char *out,
                                size_t outsz);

#endif
