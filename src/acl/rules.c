/* rules.c - Neutron security group rules: parsing (jansson) and the
 * compiled, immutable rule set (acl.h).
 *
 * Compiled form: only the ingress rules that can match a listener (tcp, udp
 * or any protocol), per family, each with its network and mask precomputed,
 * scanned linearly.  A check is a few compares per rule, no allocation
 * (tests/unit/acl measures it); a prefix trie would pay off only for
 * thousands of rules, which IMS_ACL_MAX_RULES keeps away. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "acl/acl.h"
#include "base/alloc.h"
#include "base/err.h"

#define ACL_MAX_FILE (4u << 20) /* a rules file larger than 4 MiB is a mistake */

/* One compiled ingress rule.  Addresses are kept as 16 bytes (IPv4 in the
 * first 4), pre-masked, so a match is AND and compare. */
struct acl_rule {
    uint64_t net[2];  /* the 16 address bytes as two words (IPv4: 4 bytes, rest 0) */
    uint64_t mask[2];
    uint8_t proto;   /* 0 = any */
    bool any_port;   /* port range null */
    uint16_t pmin, pmax;
};

struct ims_acl {
    size_t nrules;            /* every rule of the text */
    struct acl_rule *v4, *v6; /* the active ingress rules per family */
    size_t n4, n6;
};

void ims_acl_free(struct ims_acl *acl)
{
    if (!acl)
        return;
    ims_free(acl->v4);
    ims_free(acl->v6);
    ims_free(acl);
}

size_t ims_acl_rules(const struct ims_acl *acl)
{
    return acl ? acl->nrules : 0;
}

size_t ims_acl_active_rules(const struct ims_acl *acl)
{
    return acl ? acl->n4 + acl->n6 : 0;
}

/* ------------------------------------------------------------ parsing */

/* A rule as parsed, before it is compiled. */
struct raw_rule {
    bool ingress;
    int family;      /* AF_INET / AF_INET6 */
    int proto;       /* -1 = any, else 0..255 */
    bool any_port;
    uint16_t pmin, pmax;
    uint8_t net[16];
    unsigned plen;   /* prefix length; 0 with no remote_ip_prefix */
};

static int rule_fail(char *err, size_t errsz, const char *name, size_t idx, const char *field,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int rule_fail(char *err, size_t errsz, const char *name, size_t idx, const char *field,
                     const char *fmt, ...)
{
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(err, errsz, "%s: rule %zu: %s: %s", name, idx, field, why);
    return IMS_EINVAL;
}

/* Neutron's protocol names (neutron_lib constants.IP_PROTOCOL_MAP, the
 * ones an operator writes). */
static int proto_by_name(const char *s)
{
    static const struct {
        const char *name;
        int num;
    } map[] = {
        { "tcp", 6 },         { "udp", 17 },       { "sctp", 132 }, { "icmp", 1 },
        { "ipv6-icmp", 58 },  { "icmpv6", 58 },    { "any", -1 },   { "ah", 51 },
        { "esp", 50 },        { "gre", 47 },       { "udplite", 136 },
        { "dccp", 33 },       { "egp", 8 },        { "igmp", 2 },   { "ospf", 89 },
        { "pgm", 113 },       { "rsvp", 46 },      { "vrrp", 112 },
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcasecmp(s, map[i].name) == 0)
            return map[i].num;
    /* a number as text, like the API accepts ("6") */
    if (s[0] >= '0' && s[0] <= '9' && strlen(s) <= 3) {
        int n = 0;
        for (const char *p = s; *p; p++) {
            if (*p < '0' || *p > '9')
                return -2;
            n = n * 10 + (*p - '0');
        }
        return n <= 255 ? n : -2;
    }
    return -2;
}

static int parse_direction(json_t *r, struct raw_rule *out, const char *name, size_t idx,
                           char *err, size_t errsz)
{
    json_t *v = json_object_get(r, "direction");
    if (!json_is_string(v))
        return rule_fail(err, errsz, name, idx, "direction", "required: ingress or egress");
    const char *s = json_string_value(v);
    if (strcmp(s, "ingress") != 0 && strcmp(s, "egress") != 0)
        return rule_fail(err, errsz, name, idx, "direction", "'%.40s' is not ingress or egress",
                         s);
    out->ingress = s[0] == 'i';
    return 0;
}

static int parse_ethertype(json_t *r, struct raw_rule *out, const char *name, size_t idx,
                           char *err, size_t errsz)
{
    json_t *v = json_object_get(r, "ethertype");
    out->family = AF_INET; /* Neutron's default */
    if (!v || json_is_null(v))
        return 0;
    const char *s = json_string_value(v);
    if (s && strcmp(s, "IPv4") == 0)
        return 0;
    if (s && strcmp(s, "IPv6") == 0) {
        out->family = AF_INET6;
        return 0;
    }
    return rule_fail(err, errsz, name, idx, "ethertype", "must be IPv4 or IPv6");
}

static int parse_protocol(json_t *r, struct raw_rule *out, const char *name, size_t idx,
                          char *err, size_t errsz)
{
    json_t *v = json_object_get(r, "protocol");
    out->proto = -1;
    if (!v || json_is_null(v))
        return 0;
    int p = -2;
    if (json_is_string(v))
        p = proto_by_name(json_string_value(v));
    else if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 255)
        p = (int)json_integer_value(v);
    if (p == -2)
        return rule_fail(err, errsz, name, idx, "protocol",
                         "must be tcp, udp, sctp, icmp, ipv6-icmp, any, 0..255 or null");
    out->proto = p;
    return 0;
}

/* port_range_min/max: null = any; 1..65535.  The API spells them as
 * numbers; a number as a string is accepted too. */
static int port_value(json_t *v, long *out)
{
    if (!v || json_is_null(v)) {
        *out = -1;
        return 0;
    }
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        *out = n >= 1 && n <= 65535 ? (long)n : 0;
        return *out ? 0 : -1;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        long n = 0;
        if (!*s || strlen(s) > 5)
            return -1;
        for (; *s; s++) {
            if (*s < '0' || *s > '9')
                return -1;
            n = n * 10 + (*s - '0');
        }
        *out = n;
        return n >= 1 && n <= 65535 ? 0 : -1;
    }
    return -1;
}

static int parse_ports(json_t *r, struct raw_rule *out, const char *name, size_t idx,
                       char *err, size_t errsz)
{
    long lo, hi;
    if (port_value(json_object_get(r, "port_range_min"), &lo))
        return rule_fail(err, errsz, name, idx, "port_range_min", "must be 1..65535 or null");
    if (port_value(json_object_get(r, "port_range_max"), &hi))
        return rule_fail(err, errsz, name, idx, "port_range_max", "must be 1..65535 or null");
    if (lo < 0 && hi >= 0)
        return rule_fail(err, errsz, name, idx, "port_range_min",
                         "required with port_range_max");
    out->any_port = lo < 0;
    if (out->any_port)
        return 0;
    if (hi < 0)
        hi = lo; /* only min: that one port */
    if (hi < lo)
        return rule_fail(err, errsz, name, idx, "port_range_max",
                         "%ld is less than port_range_min %ld", hi, lo);
    /* Neutron: a port range needs a protocol that has ports */
    if (out->proto == -1)
        return rule_fail(err, errsz, name, idx, "protocol",
                         "a port range needs a protocol (tcp, udp, ...)");
    out->pmin = (uint16_t)lo;
    out->pmax = (uint16_t)hi;
    return 0;
}

static int parse_prefix(json_t *r, struct raw_rule *out, const char *name, size_t idx,
                        char *err, size_t errsz)
{
    json_t *v = json_object_get(r, "remote_ip_prefix");
    memset(out->net, 0, sizeof(out->net));
    out->plen = 0;
    if (!v || json_is_null(v))
        return 0;
    const char *s = json_string_value(v);
    char host[INET6_ADDRSTRLEN + 1];
    if (!s || strlen(s) >= sizeof(host) + 4)
        return rule_fail(err, errsz, name, idx, "remote_ip_prefix", "must be a CIDR or null");
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : strlen(s);
    if (hl >= sizeof(host))
        return rule_fail(err, errsz, name, idx, "remote_ip_prefix", "'%.60s' is not a CIDR", s);
    memcpy(host, s, hl);
    host[hl] = '\0';
    int fam = strchr(host, ':') ? AF_INET6 : AF_INET;
    unsigned max = fam == AF_INET ? 32 : 128;
    if (inet_pton(fam, host, out->net) != 1)
        return rule_fail(err, errsz, name, idx, "remote_ip_prefix", "'%.60s' is not a CIDR", s);
    unsigned plen = max;
    if (slash) {
        const char *p = slash + 1;
        if (!*p || strlen(p) > 3)
            return rule_fail(err, errsz, name, idx, "remote_ip_prefix", "bad prefix length");
        plen = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return rule_fail(err, errsz, name, idx, "remote_ip_prefix",
                                 "bad prefix length");
            plen = plen * 10 + (unsigned)(*p - '0');
        }
        if (plen > max)
            return rule_fail(err, errsz, name, idx, "remote_ip_prefix",
                             "prefix length %u is more than %u", plen, max);
    }
    if (fam != out->family)
        return rule_fail(err, errsz, name, idx, "remote_ip_prefix",
                         "'%.60s' conflicts with ethertype %s", s,
                         out->family == AF_INET ? "IPv4" : "IPv6");
    out->plen = plen;
    return 0;
}

static int parse_groups(json_t *r, const char *name, size_t idx, char *err, size_t errsz)
{
    static const char *const fields[] = { "remote_group_id", "remote_address_group_id" };
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(r, fields[i]);
        if (v && !json_is_null(v))
            return rule_fail(err, errsz, name, idx, fields[i],
                             "not supported (group membership cannot be resolved here): "
                             "use remote_ip_prefix");
    }
    return 0;
}

static int parse_rule(json_t *r, struct raw_rule *out, const char *name, size_t idx, char *err,
                      size_t errsz)
{
    if (!json_is_object(r))
        return rule_fail(err, errsz, name, idx, "(rule)", "must be an object");
    int rc = parse_direction(r, out, name, idx, err, errsz);
    if (!rc)
        rc = parse_ethertype(r, out, name, idx, err, errsz);
    if (!rc)
        rc = parse_protocol(r, out, name, idx, err, errsz);
    if (!rc)
        rc = parse_ports(r, out, name, idx, err, errsz);
    if (!rc)
        rc = parse_prefix(r, out, name, idx, err, errsz);
    if (!rc)
        rc = parse_groups(r, name, idx, err, errsz);
    return rc;
}

/* ------------------------------------------------------------ compiling */

static void compile_rule(const struct raw_rule *raw, struct acl_rule *out)
{
    uint8_t net[16], mask[16];
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < 16; i++) {
        unsigned bits = raw->plen > i * 8 ? raw->plen - i * 8 : 0;
        mask[i] = bits >= 8 ? 0xff : (uint8_t)(0xff00u >> bits);
        net[i] = raw->net[i] & mask[i]; /* host bits masked, as Neutron does */
    }
    memcpy(out->net, net, sizeof(net));
    memcpy(out->mask, mask, sizeof(mask));
    out->proto = raw->proto < 0 ? 0 : (uint8_t)raw->proto;
    out->any_port = raw->any_port;
    out->pmin = raw->pmin;
    out->pmax = raw->pmax;
}

/* Only ingress rules for tcp, udp or any protocol can ever match. */
static bool rule_active(const struct raw_rule *r)
{
    return r->ingress && (r->proto == -1 || r->proto == IMS_ACL_TCP || r->proto == IMS_ACL_UDP);
}

static json_t *rules_array(json_t *root)
{
    json_t *a = json_object_get(root, "security_group_rules");
    if (!a) {
        json_t *g = json_object_get(root, "security_group");
        if (json_is_object(g))
            a = json_object_get(g, "security_group_rules");
    }
    return json_is_array(a) ? a : NULL;
}

static int build(json_t *arr, const char *name, struct ims_acl **out, char *err, size_t errsz)
{
    size_t n = json_array_size(arr);
    if (n > IMS_ACL_MAX_RULES) {
        snprintf(err, errsz, "%s: %zu rules, more than %d", name, n, IMS_ACL_MAX_RULES);
        return IMS_ELIMIT;
    }
    struct raw_rule *raw = ims_calloc(n ? n : 1, sizeof(*raw));
    struct ims_acl *acl = ims_calloc(1, sizeof(*acl));
    int rc = raw && acl ? 0 : IMS_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = parse_rule(json_array_get(arr, i), &raw[i], name, i, err, errsz);
    size_t n4 = 0, n6 = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (rule_active(&raw[i]) && raw[i].family == AF_INET)
            n4++;
        else if (rule_active(&raw[i]))
            n6++;
    }
    if (rc == 0) {
        acl->nrules = n;
        acl->v4 = n4 ? ims_calloc(n4, sizeof(*acl->v4)) : NULL;
        acl->v6 = n6 ? ims_calloc(n6, sizeof(*acl->v6)) : NULL;
        if ((n4 && !acl->v4) || (n6 && !acl->v6))
            rc = IMS_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!rule_active(&raw[i]))
            continue;
        if (raw[i].family == AF_INET)
            compile_rule(&raw[i], &acl->v4[acl->n4++]);
        else
            compile_rule(&raw[i], &acl->v6[acl->n6++]);
    }
    ims_free(raw);
    if (rc == IMS_ENOMEM)
        snprintf(err, errsz, "%s: out of memory", name);
    if (rc) {
        ims_acl_free(acl);
        return rc;
    }
    *out = acl;
    return 0;
}

int ims_acl_parse(const char *name, const char *text, size_t len, struct ims_acl **out,
                  char *err, size_t errsz)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errsz, "%s:%d: json: %s", name, jerr.line, jerr.text);
        return IMS_EINVAL;
    }
    json_t *arr = rules_array(root);
    int rc;
    if (!arr) {
        snprintf(err, errsz, "%s:1: security_group_rules: missing, or not a list", name);
        rc = IMS_EINVAL;
    } else {
        rc = build(arr, name, out, err, errsz);
    }
    json_decref(root);
    return rc;
}

int ims_acl_load(const char *path, struct ims_acl **out, char *err, size_t errsz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errsz, "%s: cannot read: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return IMS_EIO;
    }
    if (st.st_size > ACL_MAX_FILE) {
        close(fd);
        snprintf(err, errsz, "%s: larger than %u bytes", path, ACL_MAX_FILE);
        return IMS_ELIMIT;
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *buf = ims_alloc(size + 1);
    if (!buf) {
        close(fd);
        snprintf(err, errsz, "%s: out of memory", path);
        return IMS_ENOMEM;
    }
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    int rc;
    if (got != size) {
        snprintf(err, errsz, "%s: short read", path);
        rc = IMS_EIO;
    } else {
        rc = ims_acl_parse(path, buf, size, out, err, errsz);
    }
    ims_free(buf);
    return rc;
}

/* ------------------------------------------------------------ matching */

static bool scan(const struct acl_rule *r, size_t n, const uint8_t *addr, size_t alen,
                 int proto, uint16_t port, bool explicit_port)
{
    uint8_t b[16] = { 0 };
    uint64_t a[2];
    memcpy(b, addr, alen);
    memcpy(a, b, sizeof(a));
    for (size_t i = 0; i < n; i++, r++) {
        if (r->proto && r->proto != proto)
            continue;
        if (r->any_port ? explicit_port : (port < r->pmin || port > r->pmax))
            continue;
        if ((a[0] & r->mask[0]) == r->net[0] && (a[1] & r->mask[1]) == r->net[1])
            return true;
    }
    return false;
}

bool ims_acl_match(const struct ims_acl *acl, int proto, uint16_t port,
                   const struct sockaddr *src, bool explicit_port)
{
    if (src->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)src;
        return scan(acl->v4, acl->n4, (const uint8_t *)&sin->sin_addr, 4, proto, port,
                    explicit_port);
    }
    if (src->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)src;
        const uint8_t *a = s6->sin6_addr.s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
            return scan(acl->v4, acl->n4, a + 12, 4, proto, port, explicit_port);
        return scan(acl->v6, acl->n6, a, 16, proto, port, explicit_port);
    }
    return false; /* unknown family: default deny */
}
