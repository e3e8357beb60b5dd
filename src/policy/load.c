/* load.c - policy files: JSON (jansson) or YAML (libyaml) -> struct pol_src
 * list -> compiled policy.
 *
 * Like oslo's parse_file_contents(), JSON is tried first and YAML second
 * (JSON is nearly YAML, but jansson gives better errors for JSON).  Only
 * the subset policy files use is accepted: one mapping of rule name to
 * rule text.  A YAML plain scalar is typed the way PyYAML's safe_load
 * (YAML 1.1) types it, because that decides what oslo sees: "key:" (null)
 * is the empty rule, "key: yes" is a bool and oslo fails to load the file,
 * so we refuse it too, naming the line. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "policy/policy_int.h"

/* The rules read from a file, owned copies (parser events are transient). */
struct srcvec {
    struct pol_src *v;
    size_t n, cap;
};

static void srcvec_free(struct srcvec *sv)
{
    for (size_t i = 0; i < sv->n; i++) {
        ims_free((char *)sv->v[i].name);
        ims_free((char *)sv->v[i].text);
    }
    ims_free(sv->v);
    sv->v = NULL;
    sv->n = sv->cap = 0;
}

/* Takes copies; text NULL is a null rule. */
static int srcvec_add(struct srcvec *sv, const char *name, size_t nlen, const char *text,
                      size_t tlen)
{
    if (sv->n >= IMS_POLICY_MAX_RULES)
        return IMS_ELIMIT;
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 32;
        struct pol_src *n = ims_realloc(sv->v, cap * sizeof(*n));
        if (!n)
            return IMS_ENOMEM;
        sv->v = n;
        sv->cap = cap;
    }
    struct pol_src *s = &sv->v[sv->n];
    s->name = ims_strndup(name, nlen);
    s->name_len = nlen;
    s->text = text ? ims_strndup(text, tlen) : NULL;
    s->text_len = text ? tlen : 0;
    if (!s->name || (text && !s->text)) {
        ims_free((char *)s->name);
        ims_free((char *)s->text);
        return IMS_ENOMEM;
    }
    sv->n++;
    return 0;
}

static void errf(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errsz, const char *fmt, ...)
{
    if (!err || errsz == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

/* ---- JSON ---- */

/* 0 with sv filled; IMS_EPROTO with jerr set when it is not JSON (try
 * YAML); IMS_EINVAL when it is JSON but not a policy (err set). */
static int json_read(const char *data, size_t len, const char *file, struct srcvec *sv,
                     json_error_t *jerr, char *err, size_t errsz)
{
    json_t *root = json_loadb(data, len, JSON_DECODE_ANY, jerr);
    if (!root)
        return IMS_EPROTO;
    int rc = 0;
    if (json_is_object(root)) {
        const char *key;
        json_t *val;
        json_object_foreach(root, key, val) {
            if (json_is_string(val))
                rc = srcvec_add(sv, key, strlen(key), json_string_value(val),
                                json_string_length(val));
            else if (json_is_null(val))
                rc = srcvec_add(sv, key, strlen(key), NULL, 0);
            else {
                errf(err, errsz, "%s: rule \"%.100s\": the value is not a string", file, key);
                rc = IMS_EINVAL;
            }
            if (rc)
                break;
        }
    } else if (!(json_is_null(root) || json_is_false(root) ||
                 (json_is_array(root) && json_array_size(root) == 0) ||
                 (json_is_string(root) && json_string_length(root) == 0) ||
                 (json_is_integer(root) && json_integer_value(root) == 0))) {
        /* oslo reads a falsy document as no rules, anything else fails */
        errf(err, errsz, "%s:1: the policy is not a mapping of rule names to rules", file);
        rc = IMS_EINVAL;
    }
    json_decref(root);
    return rc;
}

/* ---- YAML ---- */

/* PyYAML's implicit resolvers (yaml/resolver.py, YAML 1.1) for plain
 * scalars, as POSIX EREs. */
enum ytype {
    Y_STR,
    Y_NULL,
    Y_BOOL,
    Y_INT,
    Y_FLOAT,
    Y_TIMESTAMP,
    Y_MERGE,
    Y_VALUE,
    Y_NRE, /* the ones with a resolver regex end here */
    Y_TAGGED = Y_NRE,
};
static const char *const yaml_re[Y_NRE] = {
    [Y_NULL] = "^(~|null|Null|NULL|)$",
    [Y_BOOL] = "^(yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$",
    [Y_INT] = "^([-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|"
              "[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+)$",
    [Y_FLOAT] = "^([-+]?([0-9][0-9_]*)\\.[0-9_]*([eE][-+][0-9]+)?|\\.[0-9][0-9_]*([eE][-+][0-9]+)?"
                "|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\\.[0-9_]*|[-+]?\\.(inf|Inf|INF)|"
                "\\.(nan|NaN|NAN))$",
    [Y_TIMESTAMP] = "^([0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?"
                    "-[0-9][0-9]?([Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](\\.[0-9]*)?"
                    "([ \t]*(Z|[-+][0-9][0-9]?(:[0-9][0-9])?))?)$",
    [Y_MERGE] = "^<<$",
    [Y_VALUE] = "^=$",
};
static const char *const ytype_name[] = { "string", "null",  "bool",  "int",   "float",
                                          "timestamp", "merge", "value", "tagged value" };

struct yctx {
    yaml_parser_t parser;
    regex_t re[Y_NRE];
    bool re_ok;
    const char *file;
    char *err;
    size_t errsz;
};

static int yre_init(struct yctx *y)
{
    for (int t = Y_NULL; t < Y_NRE; t++) {
        if (regcomp(&y->re[t], yaml_re[t], REG_EXTENDED | REG_NOSUB) != 0) {
            for (int k = Y_NULL; k < t; k++)
                regfree(&y->re[k]);
            return IMS_ENOMEM;
        }
    }
    y->re_ok = true;
    return 0;
}

static void yre_free(struct yctx *y)
{
    if (!y->re_ok)
        return;
    for (int t = Y_NULL; t < Y_NRE; t++)
        regfree(&y->re[t]);
}

static enum ytype yscalar_type(struct yctx *y, const yaml_event_t *ev)
{
    const char *tag = (const char *)ev->data.scalar.tag;
    if (tag) {
        /* "!" is the non-specific tag: a string; !!null is null whatever
         * the text; other tags (!!int, !!binary, ...) are refused */
        if (strcmp(tag, "tag:yaml.org,2002:str") == 0 || strcmp(tag, "!") == 0)
            return Y_STR;
        return strcmp(tag, "tag:yaml.org,2002:null") == 0 ? Y_NULL : Y_TAGGED;
    }
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return Y_STR;
    const char *v = (const char *)ev->data.scalar.value;
    if (memchr(v, '\0', ev->data.scalar.length))
        return Y_STR;
    for (int t = Y_NULL; t < Y_NRE; t++)
        if (regexec(&y->re[t], v, 0, NULL, 0) == 0)
            return (enum ytype)t;
    return Y_STR;
}

static int yfail(struct yctx *y, const yaml_event_t *ev, const char *what);

/* The next event; anchors and aliases are refused here, once for all (a
 * policy has no use for them, and PyYAML and libyaml differ on reuse). */
static int ynext(struct yctx *y, yaml_event_t *ev)
{
    if (yaml_parser_parse(&y->parser, ev)) {
        const yaml_char_t *anchor = ev->type == YAML_SCALAR_EVENT ? ev->data.scalar.anchor
                                    : ev->type == YAML_MAPPING_START_EVENT
                                        ? ev->data.mapping_start.anchor
                                    : ev->type == YAML_SEQUENCE_START_EVENT
                                        ? ev->data.sequence_start.anchor
                                        : NULL;
        if (!anchor && ev->type != YAML_ALIAS_EVENT)
            return 0;
        int rc = yfail(y, ev, "YAML anchors and aliases are not supported");
        yaml_event_delete(ev);
        return rc;
    }
    const yaml_parser_t *ps = &y->parser;
    if (ps->error == YAML_MEMORY_ERROR)
        return IMS_ENOMEM;
    if (ps->context) /* e.g. "while scanning a quoted scalar": where it began */
        errf(y->err, y->errsz, "%s:%zu: %s (%s started at line %zu)", y->file,
             ps->problem_mark.line + 1, ps->problem ? ps->problem : "YAML syntax error",
             ps->context, ps->context_mark.line + 1);
    else
        errf(y->err, y->errsz, "%s:%zu: %s", y->file, ps->problem_mark.line + 1,
             ps->problem ? ps->problem : "YAML syntax error");
    return IMS_EPROTO;
}

static int yfail(struct yctx *y, const yaml_event_t *ev, const char *what)
{
    errf(y->err, y->errsz, "%s:%zu: %s", y->file, ev->start_mark.line + 1, what);
    return IMS_EINVAL;
}

/* One "name: rule" pair; kev is the key's scalar event. */
static int ypair(struct yctx *y, struct srcvec *sv, const yaml_event_t *kev)
{
    yaml_event_t ev;
    int rc = ynext(y, &ev);
    if (rc)
        return rc;
    const char *key = (const char *)kev->data.scalar.value;
    size_t klen = kev->data.scalar.length;
    enum ytype kt = yscalar_type(y, kev);
    if (ev.type != YAML_SCALAR_EVENT) {
        rc = yfail(y, &ev, "a rule must be a string (list rules are not supported)");
        yaml_event_delete(&ev);
        return rc;
    }
    enum ytype vt = yscalar_type(y, &ev);
    if (kt == Y_MERGE) {
        rc = yfail(y, kev, "merge keys are not supported");
    } else if (vt != Y_STR && vt != Y_NULL) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "rule \"%.80s\": the value is a YAML %s, not a string (quote it)", key,
                 ytype_name[vt]);
        rc = yfail(y, &ev, msg);
    } else if (kt != Y_STR && kt != Y_VALUE) {
        /* oslo keeps it under a non-string key no rule name can reach */
        LOG_W("policy", "event=rule_unreachable file=%s line=%zu key_type=%s", y->file,
              kev->start_mark.line + 1, ytype_name[kt]);
    } else {
        rc = srcvec_add(sv, key, klen, vt == Y_NULL ? NULL : (const char *)ev.data.scalar.value,
                        ev.data.scalar.length);
    }
    yaml_event_delete(&ev);
    return rc;
}

static int ymapping(struct yctx *y, struct srcvec *sv)
{
    for (;;) {
        yaml_event_t ev;
        int rc = ynext(y, &ev);
        if (rc)
            return rc;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        if (ev.type != YAML_SCALAR_EVENT)
            rc = yfail(y, &ev, "a rule name must be a string");
        else
            rc = ypair(y, sv, &ev);
        yaml_event_delete(&ev);
        if (rc)
            return rc;
    }
}

/* The document's root: a mapping, or nothing at all. */
static int ydocument(struct yctx *y, struct srcvec *sv)
{
    yaml_event_t ev;
    int rc = ynext(y, &ev);
    if (rc)
        return rc;
    if (ev.type == YAML_MAPPING_START_EVENT)
        rc = ymapping(y, sv);
    else if (ev.type == YAML_SCALAR_EVENT && yscalar_type(y, &ev) == Y_NULL)
        rc = 0; /* an empty file: no rules */
    else
        rc = yfail(y, &ev, "the policy is not a mapping of rule names to rules");
    yaml_event_delete(&ev);
    if (rc)
        return rc;
    if ((rc = ynext(y, &ev)))
        return rc;
    yaml_event_delete(&ev); /* DOCUMENT-END */
    if ((rc = ynext(y, &ev)))
        return rc;
    if (ev.type != YAML_STREAM_END_EVENT)
        rc = yfail(y, &ev, "expected a single document");
    yaml_event_delete(&ev);
    return rc;
}

static int yaml_read(const char *data, size_t len, const char *file, struct srcvec *sv, char *err,
                     size_t errsz)
{
    struct yctx y = { .file = file, .err = err, .errsz = errsz };
    yaml_event_t ev;
    int rc;
    if (!yaml_parser_initialize(&y.parser))
        return IMS_ENOMEM;
    if ((rc = yre_init(&y)))
        goto out;
    yaml_parser_set_input_string(&y.parser, (const unsigned char *)data, len);
    if ((rc = ynext(&y, &ev)))
        goto out; /* STREAM-START */
    yaml_event_delete(&ev);
    if ((rc = ynext(&y, &ev)))
        goto out;
    if (ev.type == YAML_DOCUMENT_START_EVENT)
        rc = ydocument(&y, sv); /* else STREAM-END: an empty file */
    yaml_event_delete(&ev);
out:
    yre_free(&y);
    yaml_parser_delete(&y.parser);
    return rc;
}

/* ---- building ---- */

struct ent {
    const struct pol_src *s;
    size_t i;
};

static int ent_cmp(const void *a, const void *b)
{
    const struct ent *x = a, *y = b;
    size_t n = x->s->name_len < y->s->name_len ? x->s->name_len : y->s->name_len;
    int c = memcmp(x->s->name, y->s->name, n);
    if (c)
        return c;
    if (x->s->name_len != y->s->name_len)
        return x->s->name_len < y->s->name_len ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

void ims_policy_free(struct ims_policy *pol)
{
    if (!pol)
        return;
    ims_free(pol->rules);
    ims_free(pol->nodes);
    ims_free(pol->items);
    ims_free(pol->strtab);
    ims_free(pol);
}

/* Sorted, duplicate names dropped (the last one wins, as in a dict). */
static int build_names(struct ims_policy *p, const struct pol_src *src, size_t n,
                       const struct pol_src **text)
{
    struct ent *e = ims_calloc(n ? n : 1, sizeof(*e));
    if (!e)
        return IMS_ENOMEM;
    for (size_t i = 0; i < n; i++)
        e[i] = (struct ent){ &src[i], i };
    qsort(e, n, sizeof(*e), ent_cmp);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i + 1 < n && e[i + 1].s->name_len == e[i].s->name_len &&
            memcmp(e[i + 1].s->name, e[i].s->name, e[i].s->name_len) == 0)
            continue;
        struct pol_rule *r = &p->rules[p->n_rules];
        rc = pol_str_add(p, e[i].s->name, e[i].s->name_len, &r->name_off);
        r->name_len = (uint32_t)e[i].s->name_len;
        r->root = POL_NONE;
        text[p->n_rules++] = e[i].s;
    }
    ims_free(e);
    return rc;
}

int pol_build(const struct pol_src *src, size_t n, const char *file, struct ims_policy **out,
              char *err, size_t errsz)
{
    if (n > IMS_POLICY_MAX_RULES) {
        errf(err, errsz, "%s: more than %u rules", file, IMS_POLICY_MAX_RULES);
        return IMS_ELIMIT;
    }
    int rc = IMS_ENOMEM;
    const struct pol_src **text = ims_calloc(n ? n : 1, sizeof(*text));
    struct ims_policy *p = ims_calloc(1, sizeof(*p));
    if (!text || !p || !(p->rules = ims_calloc(n ? n : 1, sizeof(*p->rules))))
        goto out_fail;
    if ((rc = build_names(p, src, n, text)))
        goto out_fail;
    p->default_rule = pol_rule_find(p, "default", 7);
    for (size_t i = 0; i < p->n_rules; i++) {
        const struct pol_src *s = text[i];
        uint32_t root;
        /* a null rule is oslo's empty list rule: always allow */
        rc = pol_compile_rule(p, s->name, s->name_len, s->text ? s->text : "", s->text_len, &root);
        if (rc) {
            if (rc == IMS_ELIMIT)
                errf(err, errsz, "%s: rule \"%.100s\" is too long or the policy too large", file,
                     s->name);
            goto out_fail;
        }
        p->rules[i].root = root;
    }
    ims_free(text);
    *out = p;
    return 0;
out_fail:
    if (rc == IMS_ENOMEM)
        errf(err, errsz, "%s: out of memory", file);
    ims_free(text);
    ims_policy_free(p);
    return rc;
}

int ims_policy_load_mem(const char *data, size_t len, const char *name, struct ims_policy **out,
                        char *err, size_t errsz)
{
    struct srcvec sv = { 0 };
    json_error_t jerr;
    int rc;
    if (!name)
        name = "(policy)";
    if (len > IMS_POLICY_MAX_FILE) {
        errf(err, errsz, "%s: larger than %u bytes", name, IMS_POLICY_MAX_FILE);
        return IMS_ELIMIT;
    }
    rc = json_read(data, len, name, &sv, &jerr, err, errsz);
    if (rc == IMS_EPROTO) {
        srcvec_free(&sv);
        rc = yaml_read(data, len, name, &sv, err, errsz);
        size_t i = 0;
        while (i < len && strchr(" \t\r\n", data[i]) && data[i])
            i++;
        if (rc == IMS_EPROTO && i < len && data[i] == '{')
            errf(err, errsz, "%s:%d: %s", name, jerr.line, jerr.text); /* meant as JSON */
    }
    if (rc == IMS_EINVAL)
        rc = IMS_EPROTO; /* well-formed but not a policy: still the file's fault */
    if (rc == IMS_ELIMIT)
        errf(err, errsz, "%s: more than %u rules", name, IMS_POLICY_MAX_RULES);
    if (rc == 0)
        rc = pol_build(sv.v, sv.n, name, out, err, errsz);
    else if (rc == IMS_ENOMEM)
        errf(err, errsz, "%s: out of memory", name);
    srcvec_free(&sv);
    return rc;
}

int ims_policy_load_file(const char *path, struct ims_policy **out, char *err, size_t errsz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        errf(err, errsz, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return IMS_EIO;
    }
    if (st.st_size > (off_t)IMS_POLICY_MAX_FILE) {
        close(fd);
        errf(err, errsz, "%s: larger than %u bytes", path, IMS_POLICY_MAX_FILE);
        return IMS_ELIMIT;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = ims_alloc(cap);
    int rc = 0;
    if (!buf) {
        close(fd);
        errf(err, errsz, "%s: out of memory", path);
        return IMS_ENOMEM;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            errf(err, errsz, "%s: %s", path, strerror(errno));
            rc = IMS_EIO;
            break;
        }
        len += (size_t)r;
        if (r == 0 || len == cap)
            break;
    }
    close(fd);
    if (rc == 0 && len == cap) { /* more than fstat() said: it is being rewritten */
        errf(err, errsz, "%s: changed while being read", path);
        rc = IMS_EIO;
    }
    if (rc == 0)
        rc = ims_policy_load_mem(buf, len, path, out, err, errsz);
    ims_free(buf);
    return rc;
}
