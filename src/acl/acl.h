/* acl.h - security groups at the listeners (docs/security-groups.md): the
 * rule model of an OpenStack Neutron security group, compiled into an
 * immutable rule set that readers check without a lock, and replaced
 * atomically by a reload (SIGHUP) or, later, by another source (a Neutron
 * group read over its API) that builds a set with ims_acl_parse().
 *
 * Semantics (Neutron's): ingress is default deny; a connection or datagram
 * is allowed when any ingress rule matches its source address, protocol
 * and destination port.  Egress rules are accepted and ignored (we filter
 * what arrives at our listeners only).  Rules that name sctp, icmp or
 * another protocol are accepted but never match a listener (ours are UDP
 * and TCP).  No rule set at all (no [security] rules_file) allows
 * everything: the behaviour before security groups existed.
 *
 * Lifetime and threading rules:
 * 1. A struct ims_acl is immutable once built; it is owned by whoever built
 *    it until it is handed to ims_acl_holder_swap(), which owns it after.
 * 2. A holder publishes one set through an atomic pointer.  Readers
 *    (workers, freeDiameter's threads) enter a read section (two counters
 *    and an epoch, after SRCU), load the pointer, match, leave: no lock, no
 *    allocation.  ims_acl_holder_swap() publishes the new set, then waits
 *    until every reader that may still see the old one has left (a grace
 *    period, normally microseconds) and frees the old set.  Swaps are
 *    serialised by a mutex; only swappers ever wait.
 * 3. The process has one installed holder (like freeDiameter, listeners
 *    are process-wide): ims_acl_install() before any listener opens,
 *    ims_acl_install(NULL) after they all closed.  The holder stays the
 *    caller's. */
#ifndef IMS_ACL_ACL_H
#define IMS_ACL_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* IANA protocol numbers, as Neutron stores them. */
enum { IMS_ACL_TCP = 6, IMS_ACL_UDP = 17 };

/* The listeners we enforce at, for counters and log lines. */
enum ims_acl_listener {
    IMS_ACL_SIP_UDP = 0,
    IMS_ACL_SIP_TCP,
    IMS_ACL_SIP_TLS,
    IMS_ACL_DIAMETER,
    IMS_ACL_HTTP, /* the /metrics endpoint (src/metrics) */
    IMS_ACL_NLISTENERS
};

#define IMS_ACL_MAX_RULES 4096 /* a bigger file is an error, not a slow scan */

struct ims_acl;
struct ims_acl_holder;

/* Parses a Neutron API body: {"security_group_rules": [rule, ...]} (GET
 * /v2.0/security-group-rules) or {"security_group": {...,
 * "security_group_rules": [...]}} (GET /v2.0/security-groups/{id}).  Per
 * rule: direction (required: ingress|egress), ethertype (IPv4|IPv6,
 * default IPv4), protocol (tcp, udp, sctp, icmp, ipv6-icmp, any, a number
 * 0..255, or null = any), port_range_min/max (1..65535 or null = any; with
 * only min, the single port), remote_ip_prefix (CIDR, host bits masked;
 * null = any address of the ethertype), remote_group_id and
 * remote_address_group_id (must be null: membership cannot be resolved
 * here).  Other keys (id, description, project_id ...) are ignored.  The
 * set is all or nothing: one bad rule fails the whole text.  name is used
 * in errors only.  On success *out is the caller's (free with
 * ims_acl_free).  0, IMS_EINVAL (err: "NAME:LINE: json: ..." or "NAME:
 * rule 3: port_range_min: must be 1..65535"), IMS_ELIMIT (more than
 * IMS_ACL_MAX_RULES rules), IMS_ENOMEM. */
int ims_acl_parse(const char *name, const char *text, size_t len, struct ims_acl **out,
                  char *err, size_t errsz);
/* Reads the file at path and parses it (errors name the file); IMS_EIO
 * when it cannot be read. */
int ims_acl_load(const char *path, struct ims_acl **out, char *err, size_t errsz);
void ims_acl_free(struct ims_acl *acl); /* NULL is a no-op */

/* Rules of the set: all, and the ingress ones that can match a listener. */
size_t ims_acl_rules(const struct ims_acl *acl);
size_t ims_acl_active_rules(const struct ims_acl *acl);

/* True when an ingress rule matches a packet from src (AF_INET or
 * AF_INET6; a v4-mapped v6 address is matched as IPv4) with protocol proto
 * (IMS_ACL_TCP/UDP) to port.  explicit_port: only rules with a port range
 * count (Diameter's default deny: a rule must name the Diameter port). */
bool ims_acl_match(const struct ims_acl *acl, int proto, uint16_t port,
                   const struct sockaddr *src, bool explicit_port);

/* A holder starts empty (allow all).  0 or IMS_ENOMEM. */
int ims_acl_holder_new(struct ims_acl_holder **out);
/* Frees the holder and its set.  No reader may be inside it. */
void ims_acl_holder_free(struct ims_acl_holder *h);
/* Publishes acl (taken over; NULL = allow all) and frees the previous set
 * after the grace period.  Any thread except a reader inside the holder. */
void ims_acl_holder_swap(struct ims_acl_holder *h, struct ims_acl *acl);
/* Loads the file at path and publishes it (the SIGHUP reload); on any
 * error the published set stays as it was.  Logs event=acl_loaded with the
 * rule counts.  0 or an ims_acl_load() error (err filled). */
int ims_acl_holder_load(struct ims_acl_holder *h, const char *path, char *err, size_t errsz);
/* Diameter's default deny (configured peers, or a rule naming the port). */
void ims_acl_holder_set_dia_default_deny(struct ims_acl_holder *h, bool on);
/* Reader: ims_acl_match() on the published set; true when none is set. */
bool ims_acl_holder_allows(struct ims_acl_holder *h, int proto, uint16_t port,
                           const struct sockaddr *src, bool explicit_port);
/* True when a set is published (false: every listener is open). */
bool ims_acl_holder_active(struct ims_acl_holder *h);

/* The process-wide holder the listeners consult (rule 3). */
void ims_acl_install(struct ims_acl_holder *h);

/* The check each listener makes for a new datagram or connection from src
 * to its local port: true to go on.  A denial is counted per listener and
 * logged as event=acl_deny (at most one line a second per listener, with
 * the number suppressed).  Any thread.  SIP listeners pass their kind;
 * Diameter uses ims_acl_admit_diameter. */
bool ims_acl_admit(enum ims_acl_listener l, uint16_t port, const struct sockaddr *src);
/* Diameter (freeDiameter's peer validator): is_peer says src is the
 * address of a configured peer.  With a set published and default deny
 * on, a non-peer needs a rule naming the port; with default deny off, the
 * ordinary rule match applies. */
bool ims_acl_admit_diameter(uint16_t port, const struct sockaddr *src, bool is_peer);

/* Denials per listener since start (for /metrics). */
uint64_t ims_acl_denied(enum ims_acl_listener l);

/* ---- the dynamic deny group (docs/security.md) ----
 * Source addresses the detectors (src/detect) put out for a while.  Every
 * SIP and HTTP listener checks it before the static rules (ims_acl_admit),
 * with or without a rules file; Diameter (ims_acl_admit_diameter) does not.
 * Entries are IPs (ports ignored), expire on their own, survive a rules
 * reload, and live in a fixed table (16 shards with a mutex each; while the
 * group is empty a check is one atomic load): when a shard is full the
 * entry that expires first is replaced. */
#define IMS_ACL_DYN_MAX 4096

/* Puts src's address in h's group for ttl_ms (an address already there
 * keeps the later expiry).  Any thread.  0 or IMS_EINVAL (not AF_INET or
 * AF_INET6, or ttl_ms 0). */
int ims_acl_holder_deny(struct ims_acl_holder *h, const struct sockaddr *src, uint32_t ttl_ms);
/* True while src's address is in h's group.  Any thread. */
bool ims_acl_holder_dyn_denied(struct ims_acl_holder *h, const struct sockaddr *src);
/* Addresses in h's group now (O(IMS_ACL_DYN_MAX): for /metrics, tests). */
size_t ims_acl_holder_dyn_count(struct ims_acl_holder *h);
/* Empties h's group. */
void ims_acl_holder_dyn_clear(struct ims_acl_holder *h);

/* The same on the installed holder: IMS_ENOENT when none is installed. */
int ims_acl_deny_dynamic(const struct sockaddr *src, uint32_t ttl_ms);
size_t ims_acl_dyn_count(void);
/* Datagrams and connections refused by the dynamic group since start
 * (also counted in ims_acl_denied() of their listener). */
uint64_t ims_acl_dyn_denied(void);

#endif
