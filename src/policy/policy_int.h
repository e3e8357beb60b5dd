/* policy_int.h - the compiled form of a policy, shared by the loader
 * (load.c), the rule compiler (compile.c) and the evaluator (eval.c).
 *
 * Everything lives in four arrays owned by struct ims_policy and refers to
 * other entries by uint32 index, so growing an array while compiling never
 * leaves a dangling pointer and the finished policy is position-free. */
#ifndef IMS_POLICY_INT_H
#define IMS_POLICY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

#define POL_NONE UINT32_MAX

enum pol_node_type {
    PN_TRUE,    /* "@", "" */
    PN_FALSE,   /* "!", a rule that does not parse, a check without ':' */
    PN_ERROR,   /* where oslo raises during enforce: the whole enforce denies */
    PN_AND,     /* a = first child, children chained by next */
    PN_OR,      /* likewise */
    PN_NOT,     /* a = child */
    PN_RULE,    /* a = rule index (already resolved to "default" if absent), or POL_NONE */
    PN_ROLE,    /* a, b = template items; case-insensitive membership in roles */
    PN_GENERIC, /* a, b = template items; kind/field/lit say what to compare with */
};

/* What the left side of a generic check ("kind:match") is, decided at
 * compile time the way oslo's ast.literal_eval(kind) would decide it. */
enum pol_kind {
    PK_LITERAL, /* True, False, None, an int, a plain quoted string: compare with lit */
    PK_FIELD,   /* a credential: compare with (each element of) it */
    PK_NOTHING, /* a name oslo looks up and never finds: false */
    PK_ERROR,   /* oslo raises (SyntaxError) or we do not support it: error */
};

enum pol_field {
    PF_USER_ID,
    PF_USER_DOMAIN_ID,
    PF_PROJECT_ID,
    PF_PROJECT_DOMAIN_ID,
    PF_DOMAIN_ID,
    PF_ROLES,
    PF_METHODS,
    PF_IS_ADMIN,
};

struct pol_node {
    uint8_t type;  /* enum pol_node_type */
    uint8_t kind;  /* PN_GENERIC: enum pol_kind */
    uint8_t field; /* PK_FIELD: enum pol_field */
    uint8_t deep;  /* PK_FIELD: the kind has more path segments (oslo: TypeError) */
    uint16_t depth; /* tree height, saturating; bounds evaluation recursion */
    uint32_t a, b;
    uint32_t next;            /* next sibling in an AND/OR */
    uint32_t lit_off, lit_len; /* PK_LITERAL text in strtab */
};

/* The right side of a check is a Python %-format with the target as the
 * mapping: text and %(key)s pieces, compiled once. */
enum pol_item_type {
    PI_TEXT,     /* off/len: literal text */
    PI_KEY,      /* off/len: target key, substituted */
    PI_KEYCHECK, /* off/len: target key looked up (missing -> false), not used */
    PI_NOMATCH,  /* "%s" of the whole mapping: the result never compares equal */
    PI_ERROR,    /* malformed or unsupported format: evaluation error (stops here) */
};

struct pol_item {
    uint32_t type; /* enum pol_item_type */
    uint32_t off, len;
};

struct pol_rule {
    uint32_t name_off, name_len; /* NUL-terminated in strtab */
    uint32_t root;               /* node index */
};

struct ims_policy {
    struct pol_rule *rules; /* sorted by name (bytewise) */
    size_t n_rules;
    uint32_t default_rule; /* index of "default", or POL_NONE */
    struct pol_node *nodes;
    size_t n_nodes, cap_nodes;
    struct pol_item *items;
    size_t n_items, cap_items;
    char *strtab;
    size_t str_len, str_cap;
};

/* One rule as read from the file, before compiling. */
struct pol_src {
    const char *name;
    size_t name_len;
    const char *text; /* NULL for a YAML/JSON null (oslo: always allow) */
    size_t text_len;
};

/* Builds a policy from n sources (later duplicates win, like a Python
 * dict).  0, IMS_ELIMIT or IMS_ENOMEM. */
int pol_build(const struct pol_src *src, size_t n, const char *file, struct ims_policy **out,
              char *err, size_t errsz);

/* Compiles one rule's text into *root (compile.c); name (nlen bytes) is for
 * log lines and must not point into p->strtab, which may move.  Language errors never
 * fail: they compile to PN_FALSE / PN_ERROR as oslo would evaluate them.
 * 0 or IMS_ENOMEM / IMS_ELIMIT. */
int pol_compile_rule(struct ims_policy *p, const char *name, size_t nlen, const char *s,
                     size_t len, uint32_t *root);

/* Appends len bytes plus a NUL to strtab; *off gets their offset. */
int pol_str_add(struct ims_policy *p, const char *s, size_t len, uint32_t *off);
/* Index of rule name (len bytes) or POL_NONE. */
uint32_t pol_rule_find(const struct ims_policy *p, const char *name, size_t len);

#endif
