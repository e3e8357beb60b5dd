/* eval.c - enforcing a compiled policy.
 *
 * A walk over the tree with three outcomes per node: true, false, or error.
 * Error is where oslo.policy raises out of Enforcer.enforce() (a rule
 * cycle's RecursionError, a TypeError from a path into a string, a bad
 * %-format); it is not false, because "not <error>" must not allow.  And
 * and or short-circuit left to right like oslo's AndCheck and OrCheck, so
 * a later error is never reached.  No allocation, no writes to the policy. */
#include <string.h>

#include "base/log.h"
#include "policy/policy_int.h"

enum { EV_ERROR = -1, EV_FALSE = 0, EV_TRUE = 1 };

struct ectx {
    const struct ims_policy *p;
    const struct ims_policy_creds *c;
    const struct ims_policy_target *t;
};

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

uint32_t pol_rule_find(const struct ims_policy *p, const char *name, size_t len)
{
    size_t lo = 0, hi = p->n_rules;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct pol_rule *r = &p->rules[mid];
        int c = name_cmp(p->strtab + r->name_off, r->name_len, name, len);
        if (c == 0)
            return (uint32_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return POL_NONE;
}

static const char *target_get(const struct ims_policy_target *t, const char *key, size_t klen)
{
    for (size_t i = 0; t && i < t->n; i++) {
        const char *k = t->kv[i].key;
        if (k && t->kv[i].value && strlen(k) == klen && memcmp(k, key, klen) == 0)
            return t->kv[i].value;
    }
    return NULL;
}

/* Substitution outcome of a template, before any comparison: a missing
 * key is false (oslo catches KeyError), PI_ERROR is an error, "%s" of the
 * whole target means nothing will compare equal (*nomatch). */
static int tmpl_check(const struct ectx *x, const struct pol_node *n, bool *nomatch)
{
    /* no items: a template without substitutions, and items may be NULL */
    const struct pol_item *it = n->b ? &x->p->items[n->a] : NULL;
    *nomatch = false;
    for (uint32_t i = 0; i < n->b; i++) {
        switch (it[i].type) {
        case PI_KEY:
        case PI_KEYCHECK:
            if (!target_get(x->t, x->p->strtab + it[i].off, it[i].len))
                return EV_FALSE;
            break;
        case PI_NOMATCH:
            *nomatch = true;
            break;
        case PI_ERROR:
            return EV_ERROR;
        default:
            break;
        }
    }
    return EV_TRUE;
}

static bool piece_eq(const char *a, const char *b, size_t len, bool icase)
{
    if (!icase)
        return memcmp(a, b, len) == 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ca = (unsigned char)a[i], cb = (unsigned char)b[i];
        ca = (unsigned char)(ca >= 'A' && ca <= 'Z' ? ca + 32 : ca);
        cb = (unsigned char)(cb >= 'A' && cb <= 'Z' ? cb + 32 : cb);
        if (ca != cb)
            return false;
    }
    return true;
}

/* Whether the substituted template equals val (vlen bytes); only after
 * tmpl_check() said EV_TRUE without nomatch. */
static bool tmpl_eq(const struct ectx *x, const struct pol_node *n, const char *val, size_t vlen,
                    bool icase)
{
    /* no items: a template without substitutions, and items may be NULL */
    const struct pol_item *it = n->b ? &x->p->items[n->a] : NULL;
    size_t pos = 0;
    for (uint32_t i = 0; i < n->b; i++) {
        const char *piece = x->p->strtab + it[i].off;
        size_t len = it[i].len;
        if (it[i].type == PI_KEY) {
            piece = target_get(x->t, piece, len);
            len = strlen(piece);
        }
        if (len > vlen - pos || !piece_eq(val + pos, piece, len, icase))
            return false;
        pos += len;
    }
    return pos == vlen;
}

static bool str_in(const struct ectx *x, const struct pol_node *n, const char *const *list,
                   size_t cnt, bool icase)
{
    for (size_t i = 0; list && i < cnt; i++)
        if (list[i] && tmpl_eq(x, n, list[i], strlen(list[i]), icase))
            return true;
    return false;
}

/* RoleCheck: match % target, lower-cased, in the lower-cased roles. */
static int eval_role(const struct ectx *x, const struct pol_node *n)
{
    bool nomatch;
    int r = tmpl_check(x, n, &nomatch);
    if (r != EV_TRUE)
        return r;
    return !nomatch && str_in(x, n, x->c->roles, x->c->n_roles, true);
}

static const char *cred_str(const struct ims_policy_creds *c, enum pol_field f)
{
    switch (f) {
    case PF_USER_ID:
        return c->user_id;
    case PF_USER_DOMAIN_ID:
        return c->user_domain_id;
    case PF_PROJECT_ID:
        return c->project_id;
    case PF_PROJECT_DOMAIN_ID:
        return c->project_domain_id;
    case PF_DOMAIN_ID:
        return c->domain_id;
    case PF_IS_ADMIN:
        return c->is_admin ? "True" : "False"; /* Python's str(bool) */
    default:
        return NULL;
    }
}

/* GenericCheck: a literal kind compares with match % target; a credential
 * kind compares with the credential, or with each element of a list
 * credential (that is how "methods:totp" means "issued with TOTP"). */
static int eval_generic(const struct ectx *x, const struct pol_node *n)
{
    bool nomatch;
    int r = tmpl_check(x, n, &nomatch);
    if (r != EV_TRUE)
        return r;
    if (n->kind == PK_ERROR)
        return EV_ERROR;
    if (n->kind == PK_NOTHING)
        return EV_FALSE;
    if (n->kind == PK_LITERAL)
        return !nomatch && tmpl_eq(x, n, x->p->strtab + n->lit_off, n->lit_len, false);
    if (n->field == PF_ROLES || n->field == PF_METHODS) {
        const char *const *list = n->field == PF_ROLES ? x->c->roles : x->c->methods;
        size_t cnt = n->field == PF_ROLES ? x->c->n_roles : x->c->n_methods;
        if (!list || cnt == 0)
            return EV_FALSE;
        if (n->deep)
            return EV_ERROR; /* "roles.x": a string indexed by a string */
        return !nomatch && str_in(x, n, list, cnt, false);
    }
    const char *v = cred_str(x->c, (enum pol_field)n->field);
    if (!v)
        return EV_FALSE; /* absent: KeyError */
    if (n->deep)
        return EV_ERROR;
    return !nomatch && tmpl_eq(x, n, v, strlen(v), false);
}

static int eval(const struct ectx *x, uint32_t idx, unsigned depth)
{
    const struct pol_node *n = &x->p->nodes[idx];
    int r;
    if (depth > IMS_POLICY_MAX_EVAL_DEPTH)
        return EV_ERROR; /* a rule cycle: oslo's RecursionError */
    switch ((enum pol_node_type)n->type) {
    case PN_TRUE:
        return EV_TRUE;
    case PN_FALSE:
        return EV_FALSE;
    case PN_ERROR:
        return EV_ERROR;
    case PN_AND:
        for (uint32_t c = n->a; c != POL_NONE; c = x->p->nodes[c].next)
            if ((r = eval(x, c, depth + 1)) != EV_TRUE)
                return r;
        return EV_TRUE;
    case PN_OR:
        for (uint32_t c = n->a; c != POL_NONE; c = x->p->nodes[c].next)
            if ((r = eval(x, c, depth + 1)) != EV_FALSE)
                return r;
        return EV_FALSE;
    case PN_NOT:
        r = eval(x, n->a, depth + 1);
        return r == EV_ERROR ? r : !r;
    case PN_RULE:
        if (n->a == POL_NONE)
            return EV_FALSE; /* no such rule and no default */
        return eval(x, x->p->rules[n->a].root, depth + 1);
    case PN_ROLE:
        return eval_role(x, n);
    case PN_GENERIC:
        return eval_generic(x, n);
    }
    return EV_ERROR;
}

bool ims_policy_enforce(const struct ims_policy *pol, const char *rule_name,
                        const struct ims_policy_creds *creds,
                        const struct ims_policy_target *target, struct ims_policy_reason *reason)
{
    static const struct ims_policy_creds nobody;
    struct ims_policy_reason res = { rule_name, IMS_POLICY_NO_RULE };
    bool allow = false;
    uint32_t idx = POL_NONE;
    if (pol && rule_name) {
        idx = pol_rule_find(pol, rule_name, strlen(rule_name));
        if (idx == POL_NONE)
            idx = pol->default_rule;
    }
    if (idx != POL_NONE) {
        struct ectx x = { pol, creds ? creds : &nobody, target };
        int r = eval(&x, pol->rules[idx].root, 1);
        res.rule = pol->strtab + pol->rules[idx].name_off;
        res.why = r == EV_ERROR ? IMS_POLICY_ERROR : IMS_POLICY_DECIDED;
        allow = r == EV_TRUE;
        if (r == EV_ERROR)
            LOG_D("policy", "event=enforce_error rule=%s verdict=deny", res.rule);
    }
    if (reason)
        *reason = res;
    return allow;
}

bool ims_policy_has_rule(const struct ims_policy *pol, const char *rule_name)
{
    return pol && rule_name && pol_rule_find(pol, rule_name, strlen(rule_name)) != POL_NONE;
}

size_t ims_policy_rule_count(const struct ims_policy *pol)
{
    return pol ? pol->n_rules : 0;
}
