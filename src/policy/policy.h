/* policy.h - an oslo.policy-compatible rule engine (issue 5, part 3).
 *
 * A policy file (YAML or JSON, a mapping of rule name -> rule text) is
 * compiled once into an immutable struct ims_policy; enforcing a rule walks
 * the compiled tree with no allocation and no locks, so one policy may be
 * shared by every worker thread.  Reloading (SIGHUP) means loading a new
 * policy and swapping the pointer; that swap, and freeing the old policy
 * once no thread uses it, is the caller's job.
 *
 * The rule language and its semantics follow oslo.policy 4.x
 * (oslo_policy/_parser.py, _checks.py), quirks included, because operators
 * bring policy files written for OpenStack: docs/policy.md has the summary
 * and lists the few places where this engine deliberately differs (they
 * all deny).  tests/diff/policy checks every verdict against the real
 * oslo.policy.
 *
 * Lifetime rules:
 * 1. A policy owns all its strings; ims_policy_free() releases it.
 * 2. Credentials and targets are borrowed for the duration of one
 *    ims_policy_enforce() call only.
 * 3. The rule name returned in struct ims_policy_reason points into the
 *    policy (or is the caller's rule argument) and lives as long as both. */
#ifndef IMS_POLICY_POLICY_H
#define IMS_POLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>

struct ims_policy;

/* Caps: a file beyond them is refused at load time (IMS_ELIMIT). */
#define IMS_POLICY_MAX_FILE (4u << 20) /* bytes of policy text */
#define IMS_POLICY_MAX_RULES 10000u
#define IMS_POLICY_MAX_RULE_LEN 65536u /* bytes of one rule's text */
/* A rule whose tree is deeper than this compiles to "deny". */
#define IMS_POLICY_MAX_TREE_DEPTH 64
/* Nested evaluation (rule: references plus tree levels) deeper than this
 * denies: it is how a rule cycle (a: "rule:b", b: "rule:a") ends. */
#define IMS_POLICY_MAX_EVAL_DEPTH 256

/* Who is asking (oslo's "creds").  Strings are NUL-terminated; a NULL id
 * is absent (a check on it is false), "" is present and empty. */
struct ims_policy_creds {
    const char *user_id;
    const char *user_domain_id;
    const char *project_id;
    const char *project_domain_id;
    const char *domain_id;
    const char *const *roles; /* role names, e.g. {"member", "reader"} */
    size_t n_roles;
    const char *const *methods; /* Keystone token auth methods, e.g. {"password", "totp"} */
    size_t n_methods;
    bool is_admin;
};

/* What is acted on (oslo's "target"), flattened the way oslopolicy-checker
 * flattens nested JSON: {"target": {"project_id": "p1"}} is the key
 * "target.project_id".  Looked up by %(key)s in rule text.  Linear search:
 * keep it small (a handful of keys). */
struct ims_policy_kv {
    const char *key;
    const char *value;
};
struct ims_policy_target {
    const struct ims_policy_kv *kv;
    size_t n;
};

enum ims_policy_why {
    IMS_POLICY_DECIDED = 0, /* the rule evaluated to allow or deny */
    IMS_POLICY_NO_RULE,     /* neither the rule nor "default" exists: deny */
    IMS_POLICY_ERROR,       /* evaluation failed (where oslo raises): deny */
};
struct ims_policy_reason {
    const char *rule; /* the rule that decided: the one asked for, or "default" */
    enum ims_policy_why why;
};

/* Loads and compiles the policy file at path (YAML, or JSON: JSON is tried
 * first, as oslo does).  On success *out owns a new policy.  On failure
 * *out is untouched and err (errsz bytes, may be 0) gets
 * "path:line: message".  Returns 0, IMS_EIO (cannot read), IMS_EPROTO
 * (syntax error, not a mapping of strings), IMS_ELIMIT (a cap above) or
 * IMS_ENOMEM. */
int ims_policy_load_file(const char *path, struct ims_policy **out, char *err, size_t errsz);

/* The same over a buffer (len bytes, no NUL needed); name is used in error
 * messages only. */
int ims_policy_load_mem(const char *data, size_t len, const char *name, struct ims_policy **out,
                        char *err, size_t errsz);

void ims_policy_free(struct ims_policy *pol);

/* Enforces rule_name (oslo Enforcer.enforce(rule, target, creds,
 * do_raise=False)): a rule not in the policy falls back to the rule
 * "default" if there is one; an empty policy denies everything.  target
 * may be NULL (empty).  reason may be NULL.  Returns true to allow.
 * Thread-safe on a shared policy; never allocates. */
bool ims_policy_enforce(const struct ims_policy *pol, const char *rule_name,
                        const struct ims_policy_creds *creds,
                        const struct ims_policy_target *target, struct ims_policy_reason *reason);

/* Whether rule_name is defined (no "default" fallback). */
bool ims_policy_has_rule(const struct ims_policy *pol, const char *rule_name);
size_t ims_policy_rule_count(const struct ims_policy *pol);

#endif
