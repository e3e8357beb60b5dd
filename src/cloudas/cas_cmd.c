/* cas_cmd.c - the cloud AS's command language (docs/cloud-as.md): one line
 * of text/plain, or an application/json object.  Pure functions: no I/O. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "cloudas/cas_int.h"

#define CAS_MAX_BODY 4096 /* a command is one short line */
#define CAS_MAX_WORDS 8

static const struct {
    enum cas_verb verb;
    const char *name, *rule;
} verbs[] = {
    { CAS_HELP, "help", NULL },
    { CAS_LIST, "list", "cloud:compute:list" },
    { CAS_SHOW, "show", "cloud:compute:show" },
    { CAS_CREATE, "create", "cloud:compute:create" },
    { CAS_START, "start", "cloud:compute:start" },
    { CAS_STOP, "stop", "cloud:compute:stop" },
    { CAS_DELETE, "delete", "cloud:compute:delete" },
    { CAS_SG_LIST, "secgroup list", "cloud:secgroup:list" },
    { CAS_SG_ADD, "secgroup add", "cloud:secgroup:manage" },
    { CAS_SG_DELETE, "secgroup delete", "cloud:secgroup:manage" },
    { CAS_QUOTA, "quota", "cloud:quota:show" },
};

const char *cas_verb_name(enum cas_verb v)
{
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (verbs[i].verb == v)
            return verbs[i].name;
    return "?";
}

const char *cas_verb_rule(enum cas_verb v)
{
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (verbs[i].verb == v)
            return verbs[i].rule;
    return NULL;
}

const char *cas_help_text(void)
{
    return "commands: list | show <name|id> | create <name> [flavor=<id|name>] "
           "[image=<id|name>] | start <name> | stop <name> | delete <name> | secgroup list | "
           "secgroup add <tcp|udp|icmp> <port[-port]> <cidr> | secgroup delete <rule-id> | "
           "quota | help";
}

static int bad(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
    return IMS_EPROTO;
}

/* Names and ids: letters, digits, '.', '_', '-' (Nova allows more; this
 * keeps every name safe in a URL query and in our text answers). */
static int copy_name(const char *what, const char *s, char *out, size_t cap, char *err,
                     size_t errsz)
{
    size_t n = strlen(s);
    if (n == 0)
        return bad(err, errsz, "missing %s", what);
    if (n >= cap)
        return bad(err, errsz, "%s too long (at most 63 characters)", what);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return bad(err, errsz, "bad character in %s (allowed: letters, digits, . _ -)",
                       what);
    }
    memcpy(out, s, n + 1);
    return 0;
}

static int parse_port(const char *s, unsigned *out)
{
    unsigned long v = 0;
    if (!*s || strlen(s) > 5)
        return IMS_EPROTO;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return IMS_EPROTO;
        v = v * 10 + (unsigned long)(*s - '0');
    }
    if (v < 1 || v > 65535)
        return IMS_EPROTO;
    *out = (unsigned)v;
    return 0;
}

/* "22" or "5060-5061" */
static int parse_range(const char *s, struct cas_cmd *c, char *err, size_t errsz)
{
    char a[8] = "", b[8] = "";
    const char *dash = strchr(s, '-');
    size_t la = dash ? (size_t)(dash - s) : strlen(s);
    if (la >= sizeof(a) || (dash && strlen(dash + 1) >= sizeof(b)))
        return bad(err, errsz, "bad port range '%s'", s);
    memcpy(a, s, la);
    if (dash)
        memcpy(b, dash + 1, strlen(dash + 1) + 1);
    if (parse_port(a, &c->port_min) || parse_port(dash ? b : a, &c->port_max) ||
        c->port_min > c->port_max)
        return bad(err, errsz, "bad port range '%s' (1-65535, low-high)", s);
    return 0;
}

/* IPv4 or IPv6 prefix: the characters only; Neutron judges the rest (its
 * 400 is passed on). */
static int copy_cidr(const char *s, struct cas_cmd *c, char *err, size_t errsz)
{
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(c->cidr) || !strchr(s, '/'))
        return bad(err, errsz, "bad CIDR '%s' (e.g. 192.0.2.0/24)", s);
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789abcdefABCDEF.:/", s[i]))
            return bad(err, errsz, "bad CIDR '%s' (e.g. 192.0.2.0/24)", s);
    memcpy(c->cidr, s, n + 1);
    return 0;
}

static int sg_add(const char *proto, const char *ports, const char *cidr, struct cas_cmd *c,
                  char *err, size_t errsz)
{
    if (!proto || !ports || !cidr)
        return bad(err, errsz, "%s", "usage: secgroup add <tcp|udp|icmp> <port[-port]> <cidr>");
    if (strcmp(proto, "tcp") && strcmp(proto, "udp") && strcmp(proto, "icmp"))
        return bad(err, errsz, "bad protocol '%s' (tcp, udp or icmp)", proto);
    memcpy(c->proto, proto, strlen(proto) + 1);
    int rc = parse_range(ports, c, err, errsz);
    return rc ? rc : copy_cidr(cidr, c, err, errsz);
}

/* create's options: flavor=... image=... */
static int create_opt(const char *w, struct cas_cmd *c, char *err, size_t errsz)
{
    if (strncmp(w, "flavor=", 7) == 0)
        return copy_name("flavor", w + 7, c->flavor, sizeof(c->flavor), err, errsz);
    if (strncmp(w, "image=", 6) == 0)
        return copy_name("image", w + 6, c->image, sizeof(c->image), err, errsz);
    return bad(err, errsz, "unknown option '%s' (flavor=<id|name>, image=<id|name>)", w);
}

static int words_to_cmd(char **w, size_t n, struct cas_cmd *c, char *err, size_t errsz)
{
    if (n == 0)
        return bad(err, errsz, "%s", "empty command; try 'help'");
    const char *v = w[0];
    if (strcmp(v, "secgroup") == 0) {
        const char *sub = n > 1 ? w[1] : "";
        if (strcmp(sub, "list") == 0 && n == 2) {
            c->verb = CAS_SG_LIST;
            return 0;
        }
        if (strcmp(sub, "add") == 0) {
            c->verb = CAS_SG_ADD;
            if (n != 5)
                return sg_add(NULL, NULL, NULL, c, err, errsz);
            return sg_add(w[2], w[3], w[4], c, err, errsz);
        }
        if (strcmp(sub, "delete") == 0 && n == 3) {
            c->verb = CAS_SG_DELETE;
            return copy_name("rule id", w[2], c->name, sizeof(c->name), err, errsz);
        }
        return bad(err, errsz, "%s",
                   "usage: secgroup list | secgroup add <proto> <port[-port]> <cidr> | "
                   "secgroup delete <rule-id>");
    }
    static const enum cas_verb simple[] = { CAS_HELP, CAS_LIST, CAS_QUOTA };
    for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
        if (strcmp(v, cas_verb_name(simple[i])) == 0) {
            if (n != 1)
                return bad(err, errsz, "'%s' takes no argument", v);
            c->verb = simple[i];
            return 0;
        }
    static const enum cas_verb named[] = { CAS_SHOW, CAS_CREATE, CAS_START, CAS_STOP,
                                           CAS_DELETE };
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        if (strcmp(v, cas_verb_name(named[i])) != 0)
            continue;
        c->verb = named[i];
        if (n < 2)
            return bad(err, errsz, "'%s' needs a server name", v);
        if (n > 2 && named[i] != CAS_CREATE)
            return bad(err, errsz, "'%s' takes one server name", v);
        int rc = copy_name("server name", w[1], c->name, sizeof(c->name), err, errsz);
        for (size_t k = 2; rc == 0 && k < n; k++)
            rc = create_opt(w[k], c, err, errsz);
        return rc;
    }
    return bad(err, errsz, "unknown command '%.40s'; try 'help'", v);
}

static int parse_text(ims_str body, struct cas_cmd *c, char *err, size_t errsz)
{
    char line[CAS_MAX_BODY + 1];
    ims_str t = ims_str_trim(body);
    if (t.len > CAS_MAX_BODY)
        return bad(err, errsz, "%s", "command too long");
    memcpy(line, t.p ? t.p : "", t.len);
    line[t.len] = '\0';
    if (strpbrk(line, "\r\n"))
        return bad(err, errsz, "%s", "one command per MESSAGE (one line)");
    char *w[CAS_MAX_WORDS];
    size_t n = 0;
    for (char *s = line; *s;) {
        while (*s == ' ' || *s == '\t')
            *s++ = '\0';
        if (!*s)
            break;
        if (n == CAS_MAX_WORDS)
            return bad(err, errsz, "%s", "too many words");
        w[n++] = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
    }
    return words_to_cmd(w, n, c, err, errsz);
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* {"command": "...", "name"|"flavor"|"image"|"protocol"|"port"|"cidr"|"rule_id"}:
 * mapped onto the words of the text form, so both share every check. */
static int parse_json(ims_str body, struct cas_cmd *c, char *err, size_t errsz)
{
    json_error_t je;
    json_t *o = json_loadb(body.p ? body.p : "", body.len, 0, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return bad(err, errsz, "%s", "the JSON body is not an object");
    }
    int rc;
    const char *cmd = jstr(o, "command");
    char opt_f[CAS_NAME_MAX + 8], opt_i[CAS_NAME_MAX + 8], port[32];
    char *w[CAS_MAX_WORDS];
    size_t n = 0;
    if (!cmd) {
        rc = bad(err, errsz, "%s", "the JSON body has no \"command\" string");
        goto out;
    }
    char verb[32];
    snprintf(verb, sizeof(verb), "%s", cmd);
    char *sp = strchr(verb, ' ');
    if (sp)
        *sp = '\0';
    w[n++] = verb;
    if (sp)
        w[n++] = sp + 1;
    if (strcmp(verb, "secgroup") == 0 && sp && strcmp(sp + 1, "add") == 0) {
        json_t *pv = json_object_get(o, "port");
        if (json_is_integer(pv))
            snprintf(port, sizeof(port), "%lld", (long long)json_integer_value(pv));
        else
            snprintf(port, sizeof(port), "%s", jstr(o, "port") ? jstr(o, "port") : "");
        rc = sg_add(jstr(o, "protocol"), port[0] ? port : NULL, jstr(o, "cidr"), c, err, errsz);
        if (rc == 0)
            c->verb = CAS_SG_ADD;
        goto out;
    }
    const char *name = jstr(o, "name") ? jstr(o, "name") : jstr(o, "rule_id");
    if (name)
        w[n++] = (char *)name;
    if (jstr(o, "flavor")) {
        snprintf(opt_f, sizeof(opt_f), "flavor=%s", jstr(o, "flavor"));
        w[n++] = opt_f;
    }
    if (jstr(o, "image")) {
        snprintf(opt_i, sizeof(opt_i), "image=%s", jstr(o, "image"));
        w[n++] = opt_i;
    }
    rc = words_to_cmd(w, n, c, err, errsz);
out:
    json_decref(o);
    return rc;
}

void cas_json_free(void *p)
{
    json_malloc_t m;
    json_free_t f;
    json_get_alloc_funcs(&m, &f);
    if (p)
        f(p);
}

int cas_cmd_parse(ims_str ctype, ims_str body, struct cas_cmd *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof(*out));
    if (body.len > CAS_MAX_BODY)
        return bad(err, errsz, "%s", "command too long");
    ims_str ct = ims_str_trim(ctype);
    long semi = ims_str_chr(ct, ';');
    if (semi >= 0)
        ct = ims_str_trim(ims_str_make(ct.p, (size_t)semi));
    if (ct.len == 0 || ims_str_caseeq_lit(ct, "text/plain"))
        return parse_text(body, out, err, errsz);
    if (ims_str_caseeq_lit(ct, "application/json"))
        return parse_json(body, out, err, errsz);
    snprintf(err, errsz, "unsupported content type '%.*s' (text/plain or application/json)",
             (int)(ct.len > 60 ? 60 : ct.len), ct.p);
    return IMS_EPROTO;
}
