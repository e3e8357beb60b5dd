/* ctl_profile.c - imscloudctl profile (service profiles and their iFCs)
 * and scscf (the S-CSCFs an I-CSCF may select, with their capabilities).
 *
 * A profile is the ServiceProfile content besides the identities: a
 * sequence of <InitialFilterCriteria> elements (TS 29.228 Annex B.2.2),
 * stored as XML text.  `profile put` takes it as is (well-formed only);
 * `profile ifc-add` builds one iFC from flags with ims_ud_ifc() and
 * appends it.  Every change is pushed (PPR) to the S-CSCFs holding
 * identities that use the profile. */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "cmd/ctl.h"
#include "hss/userdata.h"
#include "store/store_ext.h"

#define S(x) ims_str_cstr(x)

/* ---------------------------------------------------------- PPR fan-out */

struct users_of {
    const char *profile;
    struct ctl_nset *set;
    size_t n; /* IMPUs using it */
};

static int users_cb(void *ctx, const struct ims_impu_rec *r)
{
    struct users_of *u = ctx;
    if (strcmp(r->profile, u->profile) == 0) {
        u->n++;
        ctl_nset_add(u->set, r);
    }
    return 0;
}

/* PPR to every registered implicit set with an IMPU using profile. */
static void push_profile_users(struct ctl *c, const char *profile)
{
    struct ctl_nset *set = ims_calloc(1, sizeof(*set));
    if (!set) {
        ctl_warn(c, "out of memory: no PPR sent");
        return;
    }
    struct users_of u = { profile, set, 0 };
    int rc = ims_store_impu_list(c->st, IMS_STR_NULL, users_cb, &u);
    if (rc)
        ctl_warn(c, "cannot list the IMPUs using %s (%s): no PPR sent", profile,
                 ims_store_errmsg(c->st));
    else if (set->n == 0)
        ctl_say(c, "%zu IMPU(s) use %s, none registered: no PPR needed", u.n, profile);
    else
        ctl_nset_send(c, set, CTL_NOTIFY_PPR, 0, NULL);
    ims_free(set);
}

/* ------------------------------------------------------------- ifc-add */

static const char *const case_names[] = { "originating", "terminating-registered",
                                          "terminating-unregistered",
                                          "originating-unregistered", "originating-cdiv" };

/* SessionCase (TS 29.228 Annex B.2.2): 0..4 or its name. */
static bool session_case(const char *s, char *out, size_t cap)
{
    for (int i = 0; i < 5; i++)
        if (strcmp(s, case_names[i]) == 0 || (s[0] == '0' + i && s[1] == '\0')) {
            snprintf(out, cap, "%d", i);
            return true;
        }
    return false;
}

#define MAX_SPT 64

static int ifc_add(struct ctl *c, int argc, char **argv)
{
    static const char *const spec[] = { "priority=",     "as=",          "method=*",
                                        "session-case=*", "request-uri=*", "header=*",
                                        "sdp=*",         "default-handling=", "service-info=",
                                        "profile-part=", NULL };
    static const char *const usage =
        "NAME --priority N --as URI [--method M]... [--session-case C]... [--request-uri RE]... "
        "[--header NAME[=RE]]... [--sdp LINE[=RE]]... [--default-handling continue|terminate] "
        "[--service-info TEXT] [--profile-part registered|unregistered]";
    struct ctl_args a;
    char why[160];
    struct ims_spt spts[MAX_SPT];
    char cases[MAX_SPT][4];
    size_t nspt = 0;
    int rc = ctl_parse(c, argc, argv, spec, 1, 1, usage, &a);
    if (rc)
        return rc;
    const char *name = a.pos[0], *prio = ctl_opt(&a, "priority"), *as = ctl_opt(&a, "as");
    const char *dh = ctl_opt(&a, "default-handling"), *si = ctl_opt(&a, "service-info");
    const char *pp = ctl_opt(&a, "profile-part");
    uint64_t priority;
    if (!ctl_valid_name(name, why, sizeof(why)))
        return ctl_fail(c, CTL_USAGE, "NAME '%s': %s", name, why);
    if (!prio)
        return ctl_fail(c, CTL_USAGE, "--priority: required (lower runs first)");
    if (!ctl_uint(prio, INT32_MAX, &priority, why, sizeof(why)))
        return ctl_fail(c, CTL_USAGE, "--priority: %s", why);
    if (!as)
        return ctl_fail(c, CTL_USAGE, "--as: required (the application server's SIP URI)");
    if (!ctl_valid_id(as, why, sizeof(why)) ||
        (strncmp(as, "sip:", 4) != 0 && strncmp(as, "sips:", 5) != 0))
        return ctl_fail(c, CTL_USAGE, "--as: must be a sip: or sips: URI without spaces");
    struct ims_ifc f = { .priority = (unsigned)priority, .cnf = true, .server_name = S(as),
                         .profile_part = -1 };
    if (dh) {
        if (strcmp(dh, "continue") == 0 || strcmp(dh, "0") == 0)
            f.default_handling = 0;
        else if (strcmp(dh, "terminate") == 0 || strcmp(dh, "1") == 0)
            f.default_handling = 1;
        else
            return ctl_fail(c, CTL_USAGE, "--default-handling: must be continue (0) or "
                                          "terminate (1)");
    }
    if (si && (strlen(si) == 0 || strlen(si) > 1024))
        return ctl_fail(c, CTL_USAGE, "--service-info: must be 1 to 1024 bytes");
    f.service_info = S(si);
    if (pp) {
        if (strcmp(pp, "registered") == 0 || strcmp(pp, "0") == 0)
            f.profile_part = 0;
        else if (strcmp(pp, "unregistered") == 0 || strcmp(pp, "1") == 0)
            f.profile_part = 1;
        else
            return ctl_fail(c, CTL_USAGE, "--profile-part: must be registered or unregistered");
    }
    /* Trigger point in conjunctive normal form: the values of one option
     * are ORed (one group), different options are ANDed. */
    static const struct {
        const char *opt;
        enum ims_spt_type type;
    } kinds[] = { { "method", IMS_SPT_METHOD },
                  { "session-case", IMS_SPT_SESSION_CASE },
                  { "request-uri", IMS_SPT_REQUEST_URI },
                  { "header", IMS_SPT_SIP_HEADER },
                  { "sdp", IMS_SPT_SESSION_DESCRIPTION } };
    unsigned group = 0;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        const char *const *v;
        int n = ctl_optv(&a, kinds[k].opt, &v);
        for (int i = 0; i < n; i++) {
            if (nspt == MAX_SPT)
                return ctl_fail(c, CTL_USAGE, "more than %d trigger conditions", MAX_SPT);
            struct ims_spt *s = &spts[nspt];
            memset(s, 0, sizeof(*s));
            s->type = kinds[k].type;
            s->group = group;
            if (strlen(v[i]) == 0 || strlen(v[i]) > 1024)
                return ctl_fail(c, CTL_USAGE, "--%s: must be 1 to 1024 bytes", kinds[k].opt);
            if (s->type == IMS_SPT_SESSION_CASE) {
                if (!session_case(v[i], cases[nspt], sizeof(cases[nspt])))
                    return ctl_fail(c, CTL_USAGE, "--session-case '%s': must be 0..4 or "
                                                  "originating, terminating-registered, "
                                                  "terminating-unregistered, "
                                                  "originating-unregistered, originating-cdiv",
                                    v[i]);
                s->value = S(cases[nspt]);
            } else if (s->type == IMS_SPT_SIP_HEADER || s->type == IMS_SPT_SESSION_DESCRIPTION) {
                const char *eq = strchr(v[i], '=');
                s->value = eq ? ims_str_make(v[i], (size_t)(eq - v[i])) : S(v[i]);
                s->content = eq ? S(eq + 1) : IMS_STR_NULL;
                if (s->value.len == 0)
                    return ctl_fail(c, CTL_USAGE, "--%s: NAME[=REGEX] needs a name",
                                    kinds[k].opt);
            } else {
                s->value = S(v[i]);
            }
            nspt++;
        }
        if (n)
            group++;
    }
    f.spts = spts;
    f.nspt = nspt;
    if ((rc = ctl_open(c)) != 0)
        return rc;
    struct ims_buf xml;
    ims_buf_init(&xml, IMS_STORE_XML_MAX);
    int src = ims_store_profile_get(c->st, S(name), &xml);
    bool created = src == IMS_ENOENT;
    if (src && !created) {
        ims_buf_free(&xml);
        return ctl_store_fail(c, src, "ifc-add");
    }
    char needle[48];
    snprintf(needle, sizeof(needle), "<Priority>%u</Priority>", f.priority);
    if (xml.p && strstr(xml.p, needle)) {
        ims_buf_free(&xml);
        return ctl_fail(c, CTL_FAIL, "--priority: profile %s already has an iFC with priority %u",
                        name, f.priority);
    }
    src = ims_ud_ifc(&xml, &f, 1);
    if (src == 0)
        src = ims_store_profile_put(c->st, S(name), ims_buf_str(&xml));
    ims_buf_free(&xml);
    if (src == IMS_ELIMIT)
        return ctl_fail(c, CTL_FAIL, "profile %s would exceed %d bytes", name, IMS_STORE_XML_MAX);
    if (src)
        return ctl_store_fail(c, src, "ifc-add");
    ctl_say(c, "%s profile %s: iFC priority %u -> %s (%zu trigger condition%s)",
            created ? "created" : "updated", name, f.priority, as, nspt, nspt == 1 ? "" : "s");
    if (!created)
        push_profile_users(c, name);
    return ctl_done(c, json_pack("{s:s, s:i, s:b}", "profile", name, "priority",
                                 (int)f.priority, "created", created));
}

/* ----------------------------------------------------------- profile */

static int profile_print(void *ctx, const char *name, uint64_t impus)
{
    struct ctl *c = ctx;
    fprintf(c->out, "%-32s %llu\n", name, (unsigned long long)impus);
    return 0;
}

static int profile_json(void *ctx, const char *name, uint64_t impus)
{
    json_array_append_new(ctx, json_pack("{s:s, s:I}", "name", name, "impus", (json_int_t)impus));
    return 0;
}

int ctl_cmd_profile(struct ctl *c, int argc, char **argv)
{
    struct ctl_args a;
    char why[160];
    int rc, src;
    if (argc < 1)
        return ctl_fail(c, CTL_USAGE, "usage: imscloudctl profile put|show|list|delete|ifc-add "
                                      "...");
    const char *op = argv[0];
    ctl_set_cmd(c, "profile", op);
    argc--;
    argv++;
    if (strcmp(op, "ifc-add") == 0)
        return ifc_add(c, argc, argv);
    if (strcmp(op, "list") == 0) {
        if ((rc = ctl_parse(c, argc, argv, NULL, 0, 0, "", &a)) != 0 || (rc = ctl_open(c)) != 0)
            return rc;
        json_t *arr = json_array();
        if (!c->json)
            fprintf(c->out, "%-32s %s\n", "PROFILE", "IMPUS");
        src = ims_store_profile_list(c->st, c->json ? profile_json : profile_print,
                                     c->json ? (void *)arr : (void *)c);
        if (src) {
            json_decref(arr);
            return ctl_store_fail(c, src, "list");
        }
        return ctl_done(c, json_pack("{s:o}", "profiles", arr));
    }
    bool put = strcmp(op, "put") == 0;
    if (!put && strcmp(op, "show") != 0 && strcmp(op, "delete") != 0)
        return ctl_fail(c, CTL_USAGE, "unknown subcommand (put, show, list, delete, ifc-add)");
    if ((rc = ctl_parse(c, argc, argv, NULL, put ? 2 : 1, put ? 2 : 1,
                        put ? "NAME FILE|-" : "NAME", &a)) != 0)
        return rc;
    const char *name = a.pos[0];
    if (!ctl_valid_name(name, why, sizeof(why)))
        return ctl_fail(c, CTL_USAGE, "NAME '%s': %s", name, why);
    if (put) {
        struct ims_buf xml;
        if ((rc = ctl_read_file(c, a.pos[1], IMS_STORE_XML_MAX, &xml)) != 0) {
            ims_buf_free(&xml);
            return rc;
        }
        ims_str x = ims_str_trim(ims_buf_str(&xml));
        if (x.len && (memchr(x.p, '\0', x.len) || !ims_xml_fragment_ok(x))) {
            ims_buf_free(&xml);
            return ctl_fail(c, CTL_USAGE, "%s: not well-formed XML (a sequence of "
                                          "<InitialFilterCriteria> elements is expected)",
                            a.pos[1]);
        }
        if ((rc = ctl_open(c)) == 0) {
            src = ims_store_profile_put(c->st, S(name), x);
            rc = src ? ctl_store_fail(c, src, "put") : CTL_OK;
        }
        ims_buf_free(&xml);
        if (rc)
            return rc;
        ctl_say(c, "stored profile %s (%zu bytes)", name, x.len);
        push_profile_users(c, name);
        return ctl_done(c, json_pack("{s:s}", "profile", name));
    }
    if ((rc = ctl_open(c)) != 0)
        return rc;
    if (strcmp(op, "delete") == 0) {
        if ((src = ims_store_profile_del(c->st, S(name))) != 0)
            return ctl_store_fail(c, src, "delete");
        ctl_say(c, "deleted profile %s", name);
        return ctl_done(c, json_pack("{s:s}", "deleted", name));
    }
    struct ims_buf xml;
    ims_buf_init(&xml, IMS_STORE_XML_MAX + 1);
    src = ims_store_profile_get(c->st, S(name), &xml);
    if (src) {
        ims_buf_free(&xml);
        return ctl_store_fail(c, src, "show");
    }
    if (!c->json)
        fprintf(c->out, "%s\n", xml.p ? xml.p : "");
    json_t *o = json_pack("{s:s, s:s%}", "profile", name, "xml", xml.p ? xml.p : "", xml.len);
    ims_buf_free(&xml);
    return ctl_done(c, o);
}

/* ------------------------------------------------------------- scscf */

struct scscf_list {
    struct ctl *c;
    json_t *arr;
    json_t *peers;
};

static int peer_cb(void *ctx, const struct ims_scscf_peer *p)
{
    struct scscf_list *l = ctx;
    json_object_set_new(l->peers, p->name, json_pack("{s:s, s:s}", "host", p->host, "realm",
                                                     p->realm));
    return 0;
}

static int scscf_cb(void *ctx, const char *name, const uint32_t *caps, size_t n)
{
    struct scscf_list *l = ctx;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_integer(caps[i]));
    json_t *o = json_pack("{s:s, s:o}", "name", name, "capabilities", arr);
    json_t *p = json_object_get(l->peers, name);
    if (p)
        json_object_set(o, "diameter_host", json_object_get(p, "host"));
    json_object_del(l->peers, name);
    json_array_append_new(l->arr, o);
    return 0;
}

int ctl_cmd_scscf(struct ctl *c, int argc, char **argv)
{
    struct ctl_args a;
    char why[160];
    int rc, src;
    if (argc < 1)
        return ctl_fail(c, CTL_USAGE, "usage: imscloudctl scscf add|list|delete ...");
    const char *op = argv[0];
    ctl_set_cmd(c, "scscf", op);
    argc--;
    argv++;
    if (strcmp(op, "list") == 0) {
        if ((rc = ctl_parse(c, argc, argv, NULL, 0, 0, "", &a)) != 0 || (rc = ctl_open(c)) != 0)
            return rc;
        struct scscf_list l = { c, json_array(), json_object() };
        src = ims_store_scscf_peer_list(c->st, peer_cb, &l);
        if (src == 0)
            src = ims_store_scscf_list(c->st, scscf_cb, &l);
        if (src) {
            json_decref(l.arr);
            json_decref(l.peers);
            return ctl_store_fail(c, src, "list");
        }
        /* S-CSCFs known only as Diameter peers (not offered for selection) */
        const char *key;
        json_t *v;
        json_object_foreach(l.peers, key, v)
            json_array_append_new(l.arr, json_pack("{s:s, s:[], s:O}", "name", key,
                                                   "capabilities", "diameter_host",
                                                   json_object_get(v, "host")));
        json_decref(l.peers);
        if (!c->json) {
            size_t i;
            fprintf(c->out, "%-40s %-16s %s\n", "S-CSCF", "CAPABILITIES", "DIAMETER HOST");
            json_array_foreach(l.arr, i, v) {
                char caps[128] = "";
                size_t j;
                json_t *x;
                json_array_foreach(json_object_get(v, "capabilities"), j, x)
                    snprintf(caps + strlen(caps), sizeof(caps) - strlen(caps), "%s%lld",
                             j ? "," : "", (long long)json_integer_value(x));
                json_t *h = json_object_get(v, "diameter_host");
                fprintf(c->out, "%-40s %-16s %s\n", json_string_value(json_object_get(v, "name")),
                        caps[0] ? caps : "-", h ? json_string_value(h) : "(not learned yet)");
            }
        }
        return ctl_done(c, json_pack("{s:o}", "scscfs", l.arr));
    }
    bool add = strcmp(op, "add") == 0;
    static const char *const spec[] = { "cap=", NULL };
    if (!add && strcmp(op, "delete") != 0)
        return ctl_fail(c, CTL_USAGE, "unknown subcommand (add, list, delete)");
    if ((rc = ctl_parse(c, argc, argv, add ? spec : NULL, 1, 1, add ? "NAME [--cap N,..]" : "NAME",
                        &a)) != 0)
        return rc;
    if (!ctl_valid_id(a.pos[0], why, sizeof(why)) || strncmp(a.pos[0], "sip:", 4) != 0)
        return ctl_fail(c, CTL_USAGE, "NAME '%s': must be the S-CSCF's sip: URI (its "
                                      "Server-Name)",
                        a.pos[0]);
    uint32_t caps[IMS_STORE_MAX_CAPS];
    size_t n = 0;
    const char *cs = ctl_opt(&a, "cap");
    if (cs && !ctl_caps(cs, caps, &n, why, sizeof(why)))
        return ctl_fail(c, CTL_USAGE, "--cap: %s", why);
    if ((rc = ctl_open(c)) != 0)
        return rc;
    src = add ? ims_store_scscf_put(c->st, S(a.pos[0]), caps, n)
              : ims_store_scscf_del(c->st, S(a.pos[0]));
    if (src)
        return ctl_store_fail(c, src, op);
    ctl_say(c, "%s S-CSCF %s", add ? "stored" : "deleted", a.pos[0]);
    return ctl_done(c, json_pack("{s:s}", "scscf", a.pos[0]));
}
