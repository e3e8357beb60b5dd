/* compile.c - the oslo.policy rule language, text -> tree.
 *
 * This mirrors oslo_policy/_parser.py on purpose, not a textbook grammar:
 * tokens are split on white space, parentheses are peeled off the ends of
 * a token, and a greedy shift-reduce parser applies oslo's reductions in
 * oslo's order.  That gives oslo's precedence ("not" binds tightest, then
 * "and", then "or") and oslo's quirks: a rule that does not reduce to one
 * check denies; a quoted token ('x') makes the rule fail; a lone keyword or
 * parenthesis is an error at evaluation.  Checks ("kind:match") are
 * classified here so enforce does no parsing. */
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/str.h"
#include "policy/policy_int.h"

#define POL_MAX_NODES (1u << 22)
#define POL_MAX_STR (16u << 20)

/* ---- arrays ---- */

int pol_str_add(struct ims_policy *p, const char *s, size_t len, uint32_t *off)
{
    if (len >= POL_MAX_STR || p->str_len + len + 1 > POL_MAX_STR)
        return IMS_ELIMIT;
    if (p->str_len + len + 1 > p->str_cap) {
        size_t cap = p->str_cap ? p->str_cap : 1024;
        while (cap < p->str_len + len + 1)
            cap *= 2;
        char *n = ims_realloc(p->strtab, cap);
        if (!n)
            return IMS_ENOMEM;
        p->strtab = n;
        p->str_cap = cap;
    }
    if (len)
        memcpy(p->strtab + p->str_len, s, len);
    p->strtab[p->str_len + len] = '\0';
    *off = (uint32_t)p->str_len;
    p->str_len += len + 1;
    return 0;
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    if (need > POL_MAX_NODES)
        return IMS_ELIMIT;
    size_t ncap = *cap ? *cap * 2 : 64;
    while (ncap < need)
        ncap *= 2;
    void *n = ims_realloc(*arr, ncap * elem);
    if (!n)
        return IMS_ENOMEM;
    *arr = n;
    *cap = ncap;
    return 0;
}

static int node_new(struct ims_policy *p, enum pol_node_type type, uint32_t *idx)
{
    int rc = grow((void **)&p->nodes, &p->cap_nodes, p->n_nodes + 1, sizeof(*p->nodes));
    if (rc)
        return rc;
    struct pol_node *n = &p->nodes[p->n_nodes];
    memset(n, 0, sizeof(*n));
    n->type = (uint8_t)type;
    n->depth = 1;
    n->a = n->b = n->next = POL_NONE;
    *idx = (uint32_t)p->n_nodes++;
    return 0;
}

static int item_add(struct ims_policy *p, enum pol_item_type type, const char *s, size_t len)
{
    int rc = grow((void **)&p->items, &p->cap_items, p->n_items + 1, sizeof(*p->items));
    if (rc)
        return rc;
    struct pol_item *it = &p->items[p->n_items];
    it->type = type;
    it->off = it->len = 0;
    if (type == PI_TEXT || type == PI_KEY || type == PI_KEYCHECK) {
        rc = pol_str_add(p, s, len, &it->off);
        if (rc)
            return rc;
        it->len = (uint32_t)len;
    }
    p->n_items++;
    return 0;
}

/* ---- AND / OR children (a sibling chain; oslo mutates its lists) ---- */

static void bump_depth(struct ims_policy *p, uint32_t parent, uint32_t child)
{
    unsigned d = p->nodes[child].depth + 1u;
    if (d > UINT16_MAX)
        d = UINT16_MAX;
    if (d > p->nodes[parent].depth)
        p->nodes[parent].depth = (uint16_t)d;
}

static void child_append(struct ims_policy *p, uint32_t parent, uint32_t child)
{
    struct pol_node *n = &p->nodes[parent];
    p->nodes[child].next = POL_NONE;
    if (n->a == POL_NONE)
        n->a = child;
    else
        p->nodes[n->b].next = child;
    n->b = child;
    bump_depth(p, parent, child);
}

/* OrCheck.pop_check(): detach the last child. */
static uint32_t child_pop(struct ims_policy *p, uint32_t parent)
{
    struct pol_node *n = &p->nodes[parent];
    uint32_t last = n->b, prev = POL_NONE;
    for (uint32_t c = n->a; c != last; c = p->nodes[c].next)
        prev = c;
    if (prev == POL_NONE)
        n->a = n->b = POL_NONE;
    else {
        p->nodes[prev].next = POL_NONE;
        n->b = prev;
    }
    return last;
}

static int node_pair(struct ims_policy *p, enum pol_node_type type, uint32_t l, uint32_t r,
                     uint32_t *out)
{
    int rc = node_new(p, type, out);
    if (rc)
        return rc;
    child_append(p, *out, l);
    child_append(p, *out, r);
    return 0;
}

/* ---- the right side: a Python %-format over the target mapping ---- */

/* Compiles match into items, as CPython's PyUnicode_Format would run it
 * with a dict argument: "%(key)s" substitutes (a missing key is false,
 * oslo catches KeyError), "%%" is '%', "%s" formats the whole dict (never
 * equal to anything real), anything else raises.  The key of "%(k)..." is
 * looked up before the rest of the spec is read, so a missing key wins over
 * a malformed spec after it.  Compilation stops at the first error. */
static int template_compile(struct ims_policy *p, const char *s, size_t len, uint32_t *first,
                            uint32_t *count)
{
    size_t i = 0, start = 0;
    int rc = 0;
    *first = (uint32_t)p->n_items;
    while (i < len && rc == 0) {
        if (s[i] != '%') {
            i++;
            continue;
        }
        if (i > start && (rc = item_add(p, PI_TEXT, s + start, i - start)))
            break;
        i++;
        const char *key = NULL;
        size_t klen = 0;
        if (i < len && s[i] == '(') {
            /* the key runs to the matching ')' (CPython counts nesting) */
            size_t depth = 1, k = ++i;
            while (i < len && depth) {
                depth += s[i] == '(';
                depth -= s[i] == ')';
                i++;
            }
            if (depth) {
                rc = item_add(p, PI_ERROR, NULL, 0); /* incomplete format key */
                break;
            }
            key = s + k;
            klen = i - 1 - k;
        }
        size_t spec = i;
        while (i < len && s[i] && strchr("-+ #0123456789.*hlL", s[i]))
            i++;
        char conv = i < len ? s[i] : '\0';
        bool plain = i == spec;
        if (i < len)
            i++;
        if (key && conv == 's' && plain)
            rc = item_add(p, PI_KEY, key, klen);
        else if (!key && conv == '%' && plain)
            rc = item_add(p, PI_TEXT, "%", 1);
        else if (!key && plain && (conv == 's' || conv == 'r' || conv == 'a'))
            rc = item_add(p, PI_NOMATCH, NULL, 0);
        else {
            /* %(k)r, %(k)d, widths, a bad conversion, or the end of the
             * string: oslo raises; we do not reproduce repr() either */
            if (key && (rc = item_add(p, PI_KEYCHECK, key, klen)))
                break;
            rc = item_add(p, PI_ERROR, NULL, 0);
            break;
        }
        start = i;
    }
    bool stopped = p->n_items > *first && p->items[p->n_items - 1].type == PI_ERROR;
    if (rc == 0 && start < len && !stopped)
        rc = item_add(p, PI_TEXT, s + start, len - start);
    *count = (uint32_t)(p->n_items - *first);
    return rc;
}

/* ---- the left side of a generic check ---- */

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ident(const char *s, size_t len)
{
    if (len == 0 || !is_ident_start(s[0]))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!is_ident_start(s[i]) && !is_digit(s[i]))
            return false;
    return true;
}

static bool all_name_chars(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_ident_start(s[i]) && !is_digit(s[i]) && s[i] != '.')
            return false;
    return true;
}

static bool seg_is(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(s, word, len) == 0;
}

/* Python 3 hard keywords: a dotted name containing one is a SyntaxError. */
static bool is_py_keyword(const char *s, size_t len)
{
    static const char *const kw[] = {
        "False", "None",   "True",    "and",      "as",       "assert", "async",
        "await", "break",  "class",   "continue", "def",      "del",    "elif",
        "else",  "except", "finally", "for",      "from",     "global", "if",
        "import", "in",    "is",      "lambda",   "nonlocal", "not",    "or",
        "pass",  "raise",  "return",  "try",      "while",    "with",   "yield",
    };
    for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
        if (seg_is(s, len, kw[i]))
            return true;
    return false;
}

/* A Python int literal ([+-]? then 0(_?0)* or [1-9](_?[0-9])*) normalised
 * to str(int(...)) into out (cap bytes).  false if it is not one. */
static bool py_int(const char *s, size_t len, char *out, size_t cap, size_t *olen)
{
    size_t i = 0, n = 0;
    bool neg = false;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i >= len || !is_digit(s[i]))
        return false;
    bool zero = s[i] == '0';
    if (neg)
        out[n++] = '-';
    for (; i < len; i++) {
        if (s[i] == '_') {
            if (i + 1 >= len || !is_digit(s[i + 1]) || !is_digit(s[i - 1]))
                return false;
            continue;
        }
        if (!is_digit(s[i]) || (zero && s[i] != '0'))
            return false;
        if (zero)
            continue;
        if (n + 1 >= cap)
            return false;
        out[n++] = s[i];
    }
    if (zero)
        n = 0, out[n++] = '0'; /* "-0", "00" -> "0" */
    *olen = n;
    return true;
}

static const struct {
    const char *name;
    enum pol_field f;
} fields[] = {
    { "user_id", PF_USER_ID },       { "user_domain_id", PF_USER_DOMAIN_ID },
    { "project_id", PF_PROJECT_ID }, { "project_domain_id", PF_PROJECT_DOMAIN_ID },
    { "domain_id", PF_DOMAIN_ID },   { "roles", PF_ROLES },
    { "methods", PF_METHODS },       { "is_admin", PF_IS_ADMIN },
};

/* A dotted name: oslo's literal_eval raises ValueError (a Name or an
 * Attribute) and it looks kind.split('.') up in the credentials. */
static int kind_dotted(struct pol_node *n, const char *s, size_t len)
{
    size_t nseg = 0, first_len = 0;
    for (size_t i = 0; i <= len;) {
        size_t j = i;
        while (j < len && s[j] != '.')
            j++;
        if (!is_ident(s + i, j - i))
            return PK_ERROR; /* "a..b", "a.", "a.1": SyntaxError */
        bool kw = is_py_keyword(s + i, j - i);
        bool constant = seg_is(s + i, j - i, "True") || seg_is(s + i, j - i, "False") ||
                        seg_is(s + i, j - i, "None");
        /* True.x parses (attribute of a constant); x.True and if.x do not */
        if (kw && !(nseg == 0 && constant && j < len))
            return PK_ERROR;
        if (nseg++ == 0)
            first_len = j - i;
        i = j + 1;
    }
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (seg_is(s, first_len, fields[i].name)) {
            n->field = (uint8_t)fields[i].f;
            n->deep = nseg > 1;
            return PK_FIELD;
        }
    }
    return PK_NOTHING;
}

/* Characters that make Python's parser fail outright (SyntaxError), where
 * oslo's enforce raises: quotes out of place, $ ? ` \ ; a lone !, control
 * bytes, and (erring towards deny) anything non-ASCII, although Python
 * would take a Unicode letter as part of a name. */
static bool py_syntax_error(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || strchr("'\"$?`\\;", c) ||
            (c == '!' && (i + 1 >= len || s[i + 1] != '=')))
            return true;
    }
    return false;
}

static int kind_classify(struct ims_policy *p, uint32_t idx, const char *s, size_t len)
{
    struct pol_node *n = &p->nodes[idx];
    char num[64];
    size_t nlen = 0;
    const char *lit = NULL;
    size_t llen = 0;

    if (len == 0) {
        n->kind = PK_ERROR; /* literal_eval("") is a SyntaxError */
    } else if (seg_is(s, len, "True") || seg_is(s, len, "False") || seg_is(s, len, "None")) {
        n->kind = PK_LITERAL, lit = s, llen = len;
    } else if (py_int(s, len, num, sizeof(num), &nlen)) {
        n->kind = PK_LITERAL, lit = num, llen = nlen;
    } else if (len >= 2 && (s[0] == '\'' || s[0] == '"') && s[len - 1] == s[0] &&
               !memchr(s + 1, s[0], len - 2) && !memchr(s + 1, '\\', len - 2)) {
        n->kind = PK_LITERAL, lit = s + 1, llen = len - 2;
    } else if (is_digit(s[0]) || s[0] == '.' || s[0] == '\'' || s[0] == '"' ||
               ((s[0] == '+' || s[0] == '-') && len > 1 && (is_digit(s[1]) || s[1] == '.'))) {
        /* floats, hex, escapes, string concatenation, 1a: oslo either
         * raises or compares with a repr we do not reproduce */
        n->kind = PK_ERROR;
    } else if (is_ident_start(s[0]) && all_name_chars(s, len)) {
        n->kind = (uint8_t)kind_dotted(n, s, len);
    } else if (py_syntax_error(s, len)) {
        n->kind = PK_ERROR;
    } else {
        /* "a-b", "a[0]", "-x": an expression, not a literal (ValueError in
         * literal_eval), so oslo looks the text up in the credentials and
         * never finds it */
        n->kind = PK_NOTHING;
    }
    if (n->kind == PK_LITERAL) {
        uint32_t off;
        int rc = pol_str_add(p, lit, llen, &off);
        if (rc)
            return rc;
        p->nodes[idx].lit_off = off;
        p->nodes[idx].lit_len = (uint32_t)llen;
    }
    return 0;
}

/* ---- one check: _parse_check() ---- */

static int check_compile(struct ims_policy *p, ims_str rname, const char *s, size_t len,
                         uint32_t *out)
{
    int rc;
    if (len == 1 && (s[0] == '!' || s[0] == '@'))
        return node_new(p, s[0] == '@' ? PN_TRUE : PN_FALSE, out);
    const char *colon = memchr(s, ':', len);
    if (!colon) {
        LOG_W("policy", "event=check_without_kind rule=%.*s check=%.*s verdict=false",
              IMS_SF(rname), (int)(len > 100 ? 100 : len), s);
        return node_new(p, PN_FALSE, out);
    }
    size_t klen = (size_t)(colon - s);
    const char *m = colon + 1;
    size_t mlen = len - klen - 1;
    if (seg_is(s, klen, "http") || seg_is(s, klen, "https")) {
        /* oslo's HttpCheck POSTs to a URL: not on our request path */
        LOG_W("policy", "event=http_check_unsupported rule=%.*s verdict=deny",
              IMS_SF(rname));
        return node_new(p, PN_ERROR, out);
    }
    if (seg_is(s, klen, "rule")) {
        if ((rc = node_new(p, PN_RULE, out)))
            return rc;
        uint32_t r = pol_rule_find(p, m, mlen);
        /* Rules.__missing__: an unknown name is the default rule, if any */
        p->nodes[*out].a = r != POL_NONE ? r : p->default_rule;
        return 0;
    }
    bool role = seg_is(s, klen, "role");
    if ((rc = node_new(p, role ? PN_ROLE : PN_GENERIC, out)))
        return rc;
    uint32_t first, count;
    if ((rc = template_compile(p, m, mlen, &first, &count)))
        return rc;
    p->nodes[*out].a = first;
    p->nodes[*out].b = count;
    return role ? 0 : kind_classify(p, *out, s, klen);
}

/* ---- the token stream and the shift-reduce parser ---- */

enum tok {
    T_LP,
    T_RP,
    T_AND,
    T_OR,
    T_NOT,
    T_CHECK,
    T_AND_EXPR,
    T_OR_EXPR,
    T_STRING,
};

struct pstack {
    uint8_t *tok;
    uint32_t *val;
    size_t n;
};

/* Length of the white space at s (len bytes left), 0 if none: Python's \s
 * on str, i.e. ASCII \t\n\v\f\r, space and \x1c-\x1f, and the Unicode
 * spaces in UTF-8 (NEL, NBSP, U+1680, U+2000-200A, U+2028/9, U+202F, U+205F,
 * U+3000), because oslo splits the decoded text on them. */
static size_t py_space(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    if (u[0] == ' ' || (u[0] >= '\t' && u[0] <= '\r') || (u[0] >= 0x1c && u[0] <= 0x1f))
        return 1;
    if (len >= 2 && u[0] == 0xc2 && (u[1] == 0x85 || u[1] == 0xa0))
        return 2;
    if (len < 3)
        return 0;
    if (u[0] == 0xe1 && u[1] == 0x9a && u[2] == 0x80)
        return 3; /* U+1680 */
    if (u[0] == 0xe2 && u[1] == 0x80 &&
        (u[2] <= 0x8a || u[2] == 0xa8 || u[2] == 0xa9 || u[2] == 0xaf))
        return 3; /* U+2000-200A, U+2028, U+2029, U+202F */
    if (u[0] == 0xe2 && u[1] == 0x81 && u[2] == 0x9f)
        return 3; /* U+205F */
    if (u[0] == 0xe3 && u[1] == 0x80 && u[2] == 0x80)
        return 3; /* U+3000 */
    return 0;
}

static bool suffix3(const struct pstack *st, uint8_t a, uint8_t b, uint8_t c)
{
    size_t n = st->n;
    return n >= 3 && st->tok[n - 3] == a && st->tok[n - 2] == b && st->tok[n - 1] == c;
}

/* ParseState.reduce(): apply the first matching reduction, repeat. */
static int reduce(struct ims_policy *p, struct pstack *st)
{
    int rc;
    for (;;) {
        size_t n = st->n;
        uint8_t *t = st->tok;
        uint32_t *v = st->val, node;
        if (n >= 3 && t[n - 3] == T_LP && t[n - 1] == T_RP &&
            (t[n - 2] == T_OR_EXPR || t[n - 2] == T_AND_EXPR || t[n - 2] == T_CHECK)) {
            t[n - 3] = T_CHECK, v[n - 3] = v[n - 2]; /* _wrap_check */
        } else if (suffix3(st, T_CHECK, T_AND, T_CHECK)) {
            if ((rc = node_pair(p, PN_AND, v[n - 3], v[n - 1], &node)))
                return rc;
            t[n - 3] = T_AND_EXPR, v[n - 3] = node; /* _make_and_expr */
        } else if (suffix3(st, T_OR_EXPR, T_AND, T_CHECK)) {
            /* _mix_or_and_expr: "a or b and c" is a or (b and c) */
            uint32_t last = child_pop(p, v[n - 3]);
            if (p->nodes[last].type == PN_AND)
                child_append(p, last, v[n - 1]), node = last;
            else if ((rc = node_pair(p, PN_AND, last, v[n - 1], &node)))
                return rc;
            child_append(p, v[n - 3], node);
        } else if (suffix3(st, T_AND_EXPR, T_AND, T_CHECK)) {
            child_append(p, v[n - 3], v[n - 1]); /* _extend_and_expr */
        } else if (suffix3(st, T_AND_EXPR, T_OR, T_CHECK) || suffix3(st, T_CHECK, T_OR, T_CHECK)) {
            if ((rc = node_pair(p, PN_OR, v[n - 3], v[n - 1], &node)))
                return rc;
            t[n - 3] = T_OR_EXPR, v[n - 3] = node; /* _make_or_expr */
        } else if (suffix3(st, T_OR_EXPR, T_OR, T_CHECK)) {
            child_append(p, v[n - 3], v[n - 1]); /* _extend_or_expr */
        } else if (n >= 2 && t[n - 2] == T_NOT && t[n - 1] == T_CHECK) {
            if ((rc = node_new(p, PN_NOT, &node)))
                return rc;
            p->nodes[node].a = v[n - 1];
            bump_depth(p, node, v[n - 1]);
            t[n - 2] = T_CHECK, v[n - 2] = node; /* _make_not_expr */
            st->n = n - 1;
            continue;
        } else {
            return 0;
        }
        st->n = n - 2; /* every 3-token reduction leaves one token */
    }
}

static int shift(struct ims_policy *p, struct pstack *st, enum tok t, uint32_t val)
{
    st->tok[st->n] = (uint8_t)t;
    st->val[st->n] = val;
    st->n++;
    return reduce(p, st);
}

static bool word_ci(const char *s, size_t len, const char *w)
{
    if (strlen(w) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((s[i] | 0x20) != w[i])
            return false;
    return true;
}

/* _parse_tokenize() for one white-space separated token. */
static int token(struct ims_policy *p, ims_str rname, struct pstack *st, const char *s,
                 size_t len)
{
    int rc = 0;
    size_t lp = 0, rp = 0;
    while (lp < len && s[lp] == '(')
        lp++;
    for (size_t i = 0; i < lp && rc == 0; i++)
        rc = shift(p, st, T_LP, POL_NONE);
    if (rc || lp == len)
        return rc;
    const char *tok = s + lp; /* leading parens gone, trailing ones kept */
    size_t tlen = len - lp;
    while (rp < tlen && tok[tlen - 1 - rp] == ')')
        rp++;
    size_t clen = tlen - rp;
    if (word_ci(tok, clen, "and"))
        rc = shift(p, st, T_AND, POL_NONE);
    else if (word_ci(tok, clen, "or"))
        rc = shift(p, st, T_OR, POL_NONE);
    else if (word_ci(tok, clen, "not"))
        rc = shift(p, st, T_NOT, POL_NONE);
    else if (clen) {
        uint32_t node;
        /* oslo tests the quotes on the token with its trailing parens */
        if (tlen >= 2 && (tok[0] == '"' || tok[0] == '\'') && tok[tlen - 1] == tok[0])
            rc = shift(p, st, T_STRING, POL_NONE);
        else if ((rc = check_compile(p, rname, tok, clen, &node)) == 0)
            rc = shift(p, st, T_CHECK, node);
    }
    for (size_t i = 0; i < rp && rc == 0; i++)
        rc = shift(p, st, T_RP, POL_NONE);
    return rc;
}

int pol_compile_rule(struct ims_policy *p, const char *name, size_t nlen, const char *s,
                     size_t len, uint32_t *root)
{
    if (len == 0)
        return node_new(p, PN_TRUE, root); /* "" always allows */
    if (len > IMS_POLICY_MAX_RULE_LEN)
        return IMS_ELIMIT;
    struct pstack st = { 0 };
    ims_str rn = ims_str_make(name, nlen > 100 ? 100 : nlen); /* for log lines */
    /* a byte yields at most one token, plus one for the shift before reduce */
    st.tok = ims_alloc(len + 1);
    st.val = ims_calloc(len + 1, sizeof(*st.val));
    int rc = IMS_ENOMEM;
    if (!st.tok || !st.val)
        goto out_free;
    rc = 0;
    for (size_t i = 0; i < len && rc == 0;) {
        size_t w;
        while (i < len && (w = py_space(s + i, len - i)) > 0)
            i += w;
        size_t j = i;
        while (j < len && py_space(s + j, len - j) == 0)
            j++;
        if (j > i)
            rc = token(p, rn, &st, s + i, j - i);
        i = j;
    }
    if (rc)
        goto out_free;
    if (st.n == 1 && (st.tok[0] == T_CHECK || st.tok[0] == T_AND_EXPR || st.tok[0] == T_OR_EXPR)) {
        *root = st.val[0];
        if (p->nodes[*root].depth > IMS_POLICY_MAX_TREE_DEPTH) {
            LOG_W("policy", "event=rule_too_deep rule=%.*s verdict=deny", IMS_SF(rn));
            rc = node_new(p, PN_ERROR, root);
        }
    } else if (st.n == 1) {
        /* oslo's result is then the bare token text, which raises when
         * called: an error wherever the rule is used */
        LOG_W("policy", "event=rule_unparsable rule=%.*s verdict=deny", IMS_SF(rn));
        rc = node_new(p, PN_ERROR, root);
    } else {
        LOG_W("policy", "event=rule_unparsable rule=%.*s verdict=false", IMS_SF(rn));
        rc = node_new(p, PN_FALSE, root); /* "Failed to understand rule": fail closed */
    }
out_free:
    ims_free(st.tok);
    ims_free(st.val);
    return rc;
}
