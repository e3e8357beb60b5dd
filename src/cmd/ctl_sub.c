/* ctl_sub.c - imscloudctl user add, sub, impi, impu (docs/admin.md).
 *
 * Multi-record creations (user add, impi add, impu add) build a
 * struct ctl_doc and apply it in one store transaction; single-record
 * changes are one store call each (each its own transaction).  Barring and
 * deleting tell the serving S-CSCF with an RTR, other changes of what it
 * holds with a PPR (ctl_notify.c). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "cmd/ctl.h"
#include "crypto/milenage.h"
#include "dia/msgs.h"

#define S(x) ims_str_cstr(x)
#define DEFAULT_PROFILE "default"

/* Wipes a secret option's value in argv (it shows in /proc/PID/cmdline). */
static void wipe_opt(const struct ctl_args *a, const char *name)
{
    const char *const *v;
    int n = ctl_optv(a, name, &v);
    for (int i = 0; i < n; i++)
        ims_wipe((char *)v[i], strlen(v[i]));
}

static void wipe_secrets(const struct ctl_args *a)
{
    wipe_opt(a, "password");
    wipe_opt(a, "k");
    wipe_opt(a, "op");
    wipe_opt(a, "opc");
}

/* --k/--op/--opc/--amf into m.  0 none given, 1 set, or -CTL_USAGE. */
static int aka_opts(struct ctl *c, const struct ctl_args *a, struct ctl_doc_impi *m)
{
    char why[160];
    const char *k = ctl_opt(a, "k"), *op = ctl_opt(a, "op"), *opc = ctl_opt(a, "opc");
    const char *amf = ctl_opt(a, "amf");
    uint8_t opb[16];
    m->amf[0] = 0x80;
    m->amf[1] = 0x00;
    if (amf && !ctl_hex(amf, m->amf, 2, why, sizeof(why)))
        return -ctl_fail(c, CTL_USAGE, "--amf: %s", why);
    if (!k && !op && !opc) {
        if (amf)
            return -ctl_fail(c, CTL_USAGE, "--amf: needs --k and --op or --opc");
        return 0;
    }
    if (!k)
        return -ctl_fail(c, CTL_USAGE, "--%s: needs --k", op ? "op" : "opc");
    if (!ctl_hex(k, m->k, 16, why, sizeof(why)))
        return -ctl_fail(c, CTL_USAGE, "--k: %s", why);
    if (op && opc)
        return -ctl_fail(c, CTL_USAGE, "--op and --opc: give one");
    if (!op && !opc)
        return -ctl_fail(c, CTL_USAGE, "--k: needs --op or --opc");
    if (opc && !ctl_hex(opc, m->opc, 16, why, sizeof(why)))
        return -ctl_fail(c, CTL_USAGE, "--opc: %s", why);
    if (op) {
        if (!ctl_hex(op, opb, 16, why, sizeof(why)))
            return -ctl_fail(c, CTL_USAGE, "--op: %s", why);
        int rc = ims_milenage_opc(m->k, opb, m->opc); /* TS 35.206 §4.1 */
        ims_wipe(opb, sizeof(opb));
        if (rc)
            return -ctl_fail(c, CTL_FAIL, "--op: cannot derive OPc");
    }
    m->has_aka = true;
    return 1;
}

/* --scheme (repeatable lists) into *out, or the default for the secrets. */
static int scheme_opts(struct ctl *c, const struct ctl_args *a, const struct ctl_doc_impi *m,
                       bool check_secrets, unsigned *out)
{
    const char *const *v;
    char why[160];
    int n = ctl_optv(a, "scheme", &v);
    if (n == 0) {
        *out = (m->has_password ? IMS_AUTH_DIGEST_MD5 | IMS_AUTH_DIGEST_SHA256 |
                                      IMS_AUTH_DIGEST_SHA512_256
                                : 0) |
               (m->has_aka ? IMS_AUTH_AKAV1_MD5 | IMS_AUTH_AKAV2_MD5 : 0);
        return 0;
    }
    if (!ctl_schemes(v, n, out, why, sizeof(why)))
        return ctl_fail(c, CTL_USAGE, "--scheme: %s", why);
    if (!check_secrets)
        return 0;
    if ((*out & (IMS_AUTH_AKAV1_MD5 | IMS_AUTH_AKAV2_MD5)) && !m->has_aka)
        return ctl_fail(c, CTL_USAGE, "--scheme: AKA needs --k and --op or --opc");
    if ((*out & (IMS_AUTH_DIGEST_MD5 | IMS_AUTH_DIGEST_SHA256 | IMS_AUTH_DIGEST_SHA512_256)) &&
        !m->has_password)
        return ctl_fail(c, CTL_USAGE, "--scheme: Digest needs --password");
    if (*out == 0)
        return ctl_fail(c, CTL_USAGE, "--scheme: no scheme left");
    return 0;
}

static int realm_opt(struct ctl *c, const struct ctl_args *a, struct ctl_doc_impi *m)
{
    char why[160];
    const char *realm = ctl_opt(a, "realm");
    if (realm) {
        if (!ctl_valid_id(realm, why, sizeof(why)))
            return ctl_fail(c, CTL_USAGE, "--realm: %s", why);
        snprintf(m->realm, sizeof(m->realm), "%s", realm);
        return 0;
    }
    const char *at = strchr(m->identity, '@');
    if (!at || !at[1])
        return ctl_fail(c, CTL_USAGE, "--realm: required (%s has no @domain to take it from)",
                        m->identity);
    snprintf(m->realm, sizeof(m->realm), "%s", at + 1);
    return 0;
}

/* A check message without its document path ("subscribers[0].name: "):
 * these commands took options, not a document. */
static const char *no_path(const char *m)
{
    const char *sep = strstr(m, ": ");
    return sep && (strncmp(m, "subscribers[", 12) == 0 || strncmp(m, "profiles[", 9) == 0 ||
                   strncmp(m, "link: ", 6) == 0)
               ? sep + 2
               : m;
}

/* Prints a document's check errors and returns the code. */
static int check_failed(struct ctl *c, int rc, const struct ctl_errs *e)
{
    for (size_t i = 0; i + 1 < e->n; i++)
        fprintf(c->err, "imscloudctl: %s: %s\n", c->cmd, no_path(e->msg[i]));
    return ctl_fail(c, rc, "%s%s", e->n ? no_path(e->msg[e->n - 1]) : "invalid",
                    e->total > e->n ? " (and more)" : "");
}

/* Applies d in one transaction, after checking it against the store. */
static int apply_doc(struct ctl *c, const struct ctl_doc *d)
{
    struct ctl_errs e;
    memset(&e, 0, sizeof(e));
    int rc = ctl_doc_check(c->st, d, &e);
    if (rc)
        return check_failed(c, rc, &e);
    rc = ctl_doc_apply(c->st, d, NULL);
    if (rc)
        return ctl_fail(c, CTL_FAIL, "%s; nothing was changed",
                        ims_store_errmsg(c->st)[0] ? ims_store_errmsg(c->st) : ims_strerror(rc));
    return CTL_OK;
}

/* --------------------------------------------------------------- user add */

static int user_add(struct ctl *c, int argc, char **argv)
{
    static const char *const spec[] = {
        "password=", "password-file=", "keep-password", "impu=*",    "realm=", "scheme=*", "k=",
        "op=",       "opc=",           "amf=",          "sub=",      "profile=", "no-profile",
        NULL
    };
    static const char *const usage =
        "IMPI (--password P | --password-file FILE|- | --k HEX (--op HEX | --opc HEX) "
        "[--amf HEX]) [--impu URI]... [--realm R] [--scheme LIST]... [--sub NAME] "
        "[--profile NAME | --no-profile] [--keep-password]";
    struct ctl_args a;
    struct ctl_doc d;
    struct ctl_doc_sub sub;
    struct ctl_doc_impi impi;
    struct ctl_doc_impu impus[CTL_MAX_MULTI];
    struct ctl_doc_profile prof;
    char why[160];
    int rc = ctl_parse(c, argc, argv, spec, 1, 1, usage, &a);
    if (rc)
        return rc;
    memset(&d, 0, sizeof(d));
    memset(&sub, 0, sizeof(sub));
    memset(&impi, 0, sizeof(impi));
    memset(impus, 0, sizeof(impus));
    memset(&prof, 0, sizeof(prof));
    const char *id = a.pos[0];
    if (!ctl_valid_id(id, why, sizeof(why))) {
        rc = ctl_fail(c, CTL_USAGE, "IMPI '%s': %s", id, why);
        goto out;
    }
    snprintf(impi.identity, sizeof(impi.identity), "%s", id);
    if ((rc = realm_opt(c, &a, &impi)) != 0)
        goto out;
    int prc = ctl_password(c, &a, impi.password, sizeof(impi.password));
    if (prc < 0) {
        rc = -prc;
        goto out;
    }
    impi.has_password = prc == 1;
    impi.keep_password = ctl_flag(&a, "keep-password");
    int arc = aka_opts(c, &a, &impi);
    if (arc < 0) {
        rc = -arc;
        goto out;
    }
    if (!impi.has_password && !impi.has_aka) {
        rc = ctl_fail(c, CTL_USAGE, "--password or --k: the user needs a credential");
        goto out;
    }
    if (impi.keep_password && !impi.has_password) {
        rc = ctl_fail(c, CTL_USAGE, "--keep-password: needs --password");
        goto out;
    }
    if ((rc = scheme_opts(c, &a, &impi, true, &impi.schemes)) != 0)
        goto out;
    /* public identities: one implicit registration set */
    const char *const *uv;
    int nu = ctl_optv(&a, "impu", &uv);
    char def_impu[IMS_STORE_ID_MAX + 8];
    snprintf(def_impu, sizeof(def_impu), "sip:%s", id);
    const char *def[1] = { def_impu };
    if (nu == 0) {
        uv = def;
        nu = 1;
    }
    const char *profile = ctl_flag(&a, "no-profile") ? "" : ctl_opt(&a, "profile");
    if (ctl_flag(&a, "no-profile") && ctl_opt(&a, "profile")) {
        rc = ctl_fail(c, CTL_USAGE, "--profile and --no-profile: give one");
        goto out;
    }
    if (!profile)
        profile = DEFAULT_PROFILE;
    if (profile[0] && !ctl_valid_name(profile, why, sizeof(why))) {
        rc = ctl_fail(c, CTL_USAGE, "--profile: %s", why);
        goto out;
    }
    for (int i = 0; i < nu; i++) {
        if (!ctl_valid_impu(uv[i], why, sizeof(why))) {
            rc = ctl_fail(c, CTL_USAGE, "--impu '%s': %s", uv[i], why);
            goto out;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(uv[i], uv[j]) == 0) {
                rc = ctl_fail(c, CTL_USAGE, "--impu '%s': given twice", uv[i]);
                goto out;
            }
        snprintf(impus[i].identity, sizeof(impus[i].identity), "%s", uv[i]);
        impus[i].irs = 1;
        snprintf(impus[i].profile, sizeof(impus[i].profile), "%s", profile);
    }
    const char *subname = ctl_opt(&a, "sub") ? ctl_opt(&a, "sub") : id;
    if (!ctl_valid_name(subname, why, sizeof(why))) {
        rc = ctl_fail(c, CTL_USAGE, "%s '%s': %s%s", ctl_opt(&a, "sub") ? "--sub" : "subscription",
                      subname, why, ctl_opt(&a, "sub") ? "" : " (give --sub NAME)");
        goto out;
    }
    snprintf(sub.rec.name, sizeof(sub.rec.name), "%s", subname);
    impi.links_all = true;
    sub.impis = &impi;
    sub.nimpis = 1;
    sub.impus = impus;
    sub.nimpus = (size_t)nu;
    d.subs = &sub;
    d.nsubs = 1;

    c->create_keys = true; /* provisioning before the server's first start */
    if ((rc = ctl_open(c)) != 0)
        goto out;
    /* the default profile: created (empty, no iFCs) unless it exists */
    bool prof_created = false;
    if (profile[0]) {
        struct ims_buf x;
        ims_buf_init(&x, IMS_STORE_XML_MAX + 1);
        int grc = ims_store_profile_get(c->st, S(profile), &x);
        ims_buf_free(&x);
        if (grc == IMS_ENOENT && strcmp(profile, DEFAULT_PROFILE) == 0) {
            snprintf(prof.name, sizeof(prof.name), "%s", profile);
            prof.xml = NULL;
            d.profiles = &prof;
            d.nprofiles = 1;
            prof_created = true;
        } else if (grc == IMS_ENOENT) {
            rc = ctl_fail(c, CTL_FAIL, "--profile: no profile %s (create it with `profile put` "
                                       "or `profile ifc-add`)",
                          profile);
            goto out;
        } else if (grc) {
            rc = ctl_store_fail(c, grc, "profile");
            goto out;
        }
    }
    if ((rc = apply_doc(c, &d)) != 0)
        goto out;
    char sch[96];
    ctl_say(c, "created subscription %s", sub.rec.name);
    ctl_say(c, "created IMPI %s (realm %s, schemes %s%s%s)", impi.identity, impi.realm,
            ctl_schemes_str(impi.schemes, sch, sizeof(sch)),
            impi.has_password ? ", Digest password" : "", impi.has_aka ? ", AKA K/OPc" : "");
    json_t *ju = json_array();
    for (int i = 0; i < nu; i++) {
        ctl_say(c, "created IMPU %s (implicit set 1%s%s), linked to %s", impus[i].identity,
                profile[0] ? ", profile " : ", no profile", profile, impi.identity);
        json_array_append_new(ju, json_string(impus[i].identity));
    }
    if (prof_created)
        ctl_say(c, "created service profile %s (no iFCs yet: `imscloudctl profile ifc-add`)",
                profile);
    rc = ctl_done(c, json_pack("{s:s, s:s, s:s, s:o, s:s, s:b}", "subscription", sub.rec.name,
                               "impi", impi.identity, "realm", impi.realm, "impus", ju,
                               "profile", profile, "profile_created", prof_created));
out:
    wipe_secrets(&a);
    ims_wipe(&impi, sizeof(impi));
    return rc;
}

int ctl_cmd_user(struct ctl *c, int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "add") != 0)
        return ctl_fail(c, CTL_USAGE, "usage: imscloudctl user add IMPI --password P ... "
                                      "(see imscloudctl help)");
    ctl_set_cmd(c, "user", argv[0]);
    return user_add(c, argc - 1, argv + 1);
}

/* -------------------------------------------------------------------- sub */

static const char *const sub_spec[] = { "ccf=*",          "ecf=*",         "keystone-user=",
                                        "keystone-project=", "cap-mandatory=", "cap-optional=",
                                        "roles=", NULL };
#define SUB_OPTS                                                                                   \
    "[--ccf URI]... [--ecf URI]... [--keystone-user ID] [--keystone-project ID] "                 \
    "[--cap-mandatory N,..] [--cap-optional N,..] [--roles ROLE,..]"

/* --roles: a comma list of policy role names ([A-Za-z0-9_.:-], no empty
 * item), or "" to clear (the S-CSCF then uses [scscf] local_roles). */
bool ctl_valid_roles(const char *s, char *why, size_t whysz)
{
    size_t len = strlen(s), item = 0;
    if (len >= IMS_STORE_NAME_MAX) {
        snprintf(why, whysz, "longer than %d bytes", IMS_STORE_NAME_MAX - 1);
        return false;
    }
    for (size_t i = 0; i <= len; i++) {
        char ch = s[i];
        if (ch == ',' || ch == '\0') {
            if (len && item == 0) {
                snprintf(why, whysz, "an empty role");
                return false;
            }
            item = 0;
        } else if (isalnum((unsigned char)ch) || strchr("_.:-", ch)) {
            item++;
        } else {
            snprintf(why, whysz, "'%c' in a role name (letters, digits, _ . : -)", ch);
            return false;
        }
    }
    return true;
}

/* Applies the given options to r (add: onto an empty record). */
static int sub_opts(struct ctl *c, const struct ctl_args *a, struct ims_sub_rec *r)
{
    char why[160];
    const char *const *v;
    static const char *const lists[2] = { "ccf", "ecf" };
    for (int l = 0; l < 2; l++) {
        int n = ctl_optv(a, lists[l], &v);
        if (n > 2)
            return ctl_fail(c, CTL_USAGE, "--%s: at most 2 (primary, secondary)", lists[l]);
        if (n == 0)
            continue;
        char (*dst)[IMS_STORE_ID_MAX] = l == 0 ? r->ccf : r->ecf;
        dst[0][0] = dst[1][0] = '\0';
        for (int i = 0; i < n; i++) {
            if (v[i][0] && !ctl_valid_id(v[i], why, sizeof(why)))
                return ctl_fail(c, CTL_USAGE, "--%s '%s': %s", lists[l], v[i], why);
            snprintf(dst[i], IMS_STORE_ID_MAX, "%s", v[i]);
        }
    }
    const char *ku = ctl_opt(a, "keystone-user"), *kp = ctl_opt(a, "keystone-project");
    if (ku && ku[0] && !ctl_valid_name(ku, why, sizeof(why)))
        return ctl_fail(c, CTL_USAGE, "--keystone-user: %s", why);
    if (kp && kp[0] && !ctl_valid_name(kp, why, sizeof(why)))
        return ctl_fail(c, CTL_USAGE, "--keystone-project: %s", why);
    if (ku)
        snprintf(r->keystone_user_id, sizeof(r->keystone_user_id), "%s", ku);
    if (kp)
        snprintf(r->keystone_project_id, sizeof(r->keystone_project_id), "%s", kp);
    const char *cm = ctl_opt(a, "cap-mandatory"), *co = ctl_opt(a, "cap-optional");
    if (cm && !ctl_caps(cm, r->caps_mandatory, &r->n_mandatory, why, sizeof(why)))
        return ctl_fail(c, CTL_USAGE, "--cap-mandatory: %s", why);
    if (co && !ctl_caps(co, r->caps_optional, &r->n_optional, why, sizeof(why)))
        return ctl_fail(c, CTL_USAGE, "--cap-optional: %s", why);
    const char *ro = ctl_opt(a, "roles");
    if (ro && !ctl_valid_roles(ro, why, sizeof(why)))
        return ctl_fail(c, CTL_USAGE, "--roles '%s': %s", ro, why);
    if (ro)
        snprintf(r->roles, sizeof(r->roles), "%s", ro);
    return 0;
}

struct collect_impus {
    struct ctl_nset *set;
    json_t *arr;
};

static int collect_impu(void *ctx, const struct ims_impu_rec *r)
{
    struct collect_impus *x = ctx;
    if (x->set)
        ctl_nset_add(x->set, r);
    if (x->arr)
        json_array_append_new(x->arr, ctl_json_impu(r));
    return 0;
}

struct collect_impis {
    json_t *arr;
};

static int collect_impi(void *ctx, const struct ims_impi_rec *r)
{
    struct collect_impis *x = ctx;
    json_array_append_new(x->arr, json_string(r->identity));
    return 0;
}

static int sub_print(void *ctx, const struct ims_sub_rec *r)
{
    struct ctl *c = ctx;
    if (c->json)
        return 0;
    fprintf(c->out, "%-32s %s\n", r->name, r->scscf_name[0] ? r->scscf_name : "-");
    return 0;
}

static int sub_json(void *ctx, const struct ims_sub_rec *r)
{
    json_array_append_new(ctx, ctl_json_sub(r));
    return 0;
}

int ctl_cmd_sub(struct ctl *c, int argc, char **argv)
{
    struct ctl_args a;
    char why[160];
    int rc;
    if (argc < 1)
        return ctl_fail(c, CTL_USAGE, "usage: imscloudctl sub add|show|list|modify|delete ...");
    const char *op = argv[0];
    ctl_set_cmd(c, "sub", op);
    argc--;
    argv++;
    if (strcmp(op, "list") == 0) {
        if ((rc = ctl_parse(c, argc, argv, NULL, 0, 0, "", &a)) != 0 || (rc = ctl_open(c)) != 0)
            return rc;
        json_t *arr = json_array();
        if (!c->json)
            fprintf(c->out, "%-32s %s\n", "SUBSCRIPTION", "ASSIGNED S-CSCF");
        int src = ims_store_sub_list(c->st, c->json ? sub_json : sub_print,
                                     c->json ? (void *)arr : (void *)c);
        if (src) {
            json_decref(arr);
            return ctl_store_fail(c, src, "list");
        }
        return ctl_done(c, json_pack("{s:o}", "subscriptions", arr));
    }
    bool add = strcmp(op, "add") == 0, modify = strcmp(op, "modify") == 0;
    bool show = strcmp(op, "show") == 0, del = strcmp(op, "delete") == 0;
    if (!add && !modify && !show && !del)
        return ctl_fail(c, CTL_USAGE, "unknown subcommand (add, show, list, modify, delete)");
    rc = ctl_parse(c, argc, argv, add || modify ? sub_spec : NULL, 1, 1,
                   add || modify ? "NAME " SUB_OPTS : "NAME", &a);
    if (rc)
        return rc;
    const char *name = a.pos[0];
    if (!ctl_valid_name(name, why, sizeof(why)))
        return ctl_fail(c, CTL_USAGE, "NAME '%s': %s", name, why);
    struct ims_sub_rec r;
    memset(&r, 0, sizeof(r));
    if (add) {
        snprintf(r.name, sizeof(r.name), "%s", name);
        if ((rc = sub_opts(c, &a, &r)) != 0 || (rc = ctl_open(c)) != 0)
            return rc;
        int src = ims_store_sub_add(c->st, &r);
        if (src)
            return ctl_store_fail(c, src, "add");
        ctl_say(c, "created subscription %s", name);
        return ctl_done(c, json_pack("{s:o}", "subscription", ctl_json_sub(&r)));
    }
    if ((rc = ctl_open(c)) != 0)
        return rc;
    int src = ims_store_sub_get(c->st, S(name), &r);
    if (src)
        return ctl_store_fail(c, src, op);
    if (modify) {
        if ((rc = sub_opts(c, &a, &r)) != 0)
            return rc;
        if ((src = ims_store_sub_update(c->st, &r)) != 0)
            return ctl_store_fail(c, src, "modify");
        ctl_say(c, "modified subscription %s", name);
        return ctl_done(c, json_pack("{s:o}", "subscription", ctl_json_sub(&r)));
    }
    if (show) {
        json_t *o = ctl_json_sub(&r), *impis = json_array(), *impus = json_array();
        struct collect_impis ci = { impis };
        struct collect_impus cu = { NULL, impus };
        src = ims_store_impi_list(c->st, S(name), collect_impi, &ci);
        if (src == 0)
            src = ims_store_impu_list(c->st, S(name), collect_impu, &cu);
        json_object_set_new(o, "impis", impis);
        json_object_set_new(o, "impus", impus);
        if (src) {
            json_decref(o);
            return ctl_store_fail(c, src, "show");
        }
        ctl_print_obj(c, o, 0);
        return ctl_done(c, json_pack("{s:o}", "subscription", o));
    }
    /* delete: RTR for each registered set first (the HSS still knows
     * where they are), then the rows (IMPIs, IMPUs, Sh data go too) */
    struct ctl_nset *set = ims_calloc(1, sizeof(*set));
    if (!set)
        return ctl_fail(c, CTL_FAIL, "out of memory");
    struct collect_impus cu = { set, NULL };
    src = ims_store_impu_list(c->st, S(name), collect_impu, &cu);
    if (src == 0)
        ctl_nset_send(c, set, CTL_NOTIFY_RTR, CX_REASON_PERMANENT_TERMINATION,
                      "subscription deleted by the operator");
    ims_free(set);
    if (src == 0)
        src = ims_store_sub_del(c->st, S(name));
    if (src)
        return ctl_store_fail(c, src, "delete");
    ctl_say(c, "deleted subscription %s with its IMPIs and IMPUs", name);
    return ctl_done(c, json_pack("{s:s}", "deleted", name));
}

/* ------------------------------------------------------------------- impi */

static int impi_print(void *ctx, const struct ims_impi_rec *r)
{
    struct ctl *c = ctx;
    char sch[96];
    fprintf(c->out, "%-40s %-24s %-14s %s%s%s\n", r->identity, r->subscription, r->realm,
            ctl_schemes_str(r->schemes, sch, sizeof(sch)), r->has_aka ? " [aka]" : "",
            r->has_ha1[0] ? " [digest]" : "");
    return 0;
}

static int impi_json(void *ctx, const struct ims_impi_rec *r)
{
    json_array_append_new(ctx, json_pack("{s:s, s:s, s:s}", "identity", r->identity,
                                         "subscription", r->subscription, "realm", r->realm));
    return 0;
}

static int impi_add(struct ctl *c, int argc, char **argv)
{
    static const char *const spec[] = { "sub=",  "realm=", "scheme=*", "impu=*", "password=",
                                        "password-file=", "keep-password", "k=", "op=", "opc=",
                                        "amf=", NULL };
    struct ctl_args a;
    struct ctl_doc d;
    struct ctl_doc_sub sub;
    struct ctl_doc_impi impi;
    char why[160];
    int rc = ctl_parse(c, argc, argv, spec, 1, 1,
                       "IMPI --sub NAME [--realm R] [--scheme LIST]... [--impu URI]... "
                       "[--password P | --k HEX (--op|--opc) HEX [--amf HEX]]",
                       &a);
    if (rc)
        return rc;
    memset(&d, 0, sizeof(d));
    memset(&sub, 0, sizeof(sub));
    memset(&impi, 0, sizeof(impi));
    const char *subname = ctl_opt(&a, "sub");
    if (!ctl_valid_id(a.pos[0], why, sizeof(why))) {
        rc = ctl_fail(c, CTL_USAGE, "IMPI '%s': %s", a.pos[0], why);
        goto out;
    }
    if (!subname) {
        rc = ctl_fail(c, CTL_USAGE, "--sub: required (the subscription the IMPI belongs to)");
        goto out;
    }
    if (!ctl_valid_name(subname, why, sizeof(why))) {
        rc = ctl_fail(c, CTL_USAGE, "--sub: %s", why);
        goto out;
    }
    snprintf(impi.identity, sizeof(impi.identity), "%s", a.pos[0]);
    if ((rc = realm_opt(c, &a, &impi)) != 0)
        goto out;
    int prc = ctl_password(c, &a, impi.password, sizeof(impi.password));
    if (prc < 0) {
        rc = -prc;
        goto out;
    }
    impi.has_password = prc == 1;
    impi.keep_password = ctl_flag(&a, "keep-password");
    int arc = aka_opts(c, &a, &impi);
    if (arc < 0) {
        rc = -arc;
        goto out;
    }
    if ((rc = scheme_opts(c, &a, &impi, false, &impi.schemes)) != 0)
        goto out;
    const char *const *uv;
    int nu = ctl_optv(&a, "impu", &uv);
    char links[CTL_MAX_MULTI][IMS_STORE_ID_MAX];
    for (int i = 0; i < nu; i++) {
        if (!ctl_valid_impu(uv[i], why, sizeof(why))) {
            rc = ctl_fail(c, CTL_USAGE, "--impu '%s': %s", uv[i], why);
            goto out;
        }
        snprintf(links[i], IMS_STORE_ID_MAX, "%s", uv[i]);
    }
    impi.links = links;
    impi.nlinks = (size_t)nu;
    snprintf(sub.rec.name, sizeof(sub.rec.name), "%s", subname);
    sub.existing = true;
    sub.impis = &impi;
    sub.nimpis = 1;
    d.subs = &sub;
    d.nsubs = 1;
    c->create_keys = true;
    if ((rc = ctl_open(c)) != 0 || (rc = apply_doc(c, &d)) != 0)
        goto out;
    char sch[96];
    ctl_say(c, "created IMPI %s in %s (realm %s, schemes %s)", impi.identity, subname, impi.realm,
            ctl_schemes_str(impi.schemes, sch, sizeof(sch)));
    for (int i = 0; i < nu; i++)
        ctl_say(c, "linked %s to %s", impi.identity, links[i]);
    rc = ctl_done(c, json_pack("{s:s, s:s}", "impi", impi.identity, "subscription", subname));
out:
    wipe_secrets(&a);
    ims_wipe(&impi, sizeof(impi));
    return rc;
}

int ctl_cmd_impi(struct ctl *c, int argc, char **argv)
{
    struct ctl_args a;
    char why[160];
    int rc, src;
    if (argc < 1)
        return ctl_fail(c, CTL_USAGE, "usage: imscloudctl impi add|show|list|set-password|"
                                      "set-aka|set-schemes|link|unlink|delete ...");
    const char *op = argv[0];
    ctl_set_cmd(c, "impi", op);
    argc--;
    argv++;
    if (strcmp(op, "add") == 0)
        return impi_add(c, argc, argv);
    if (strcmp(op, "list") == 0) {
        static const char *const spec[] = { "sub=", NULL };
        if ((rc = ctl_parse(c, argc, argv, spec, 0, 0, "[--sub NAME]", &a)) != 0 ||
            (rc = ctl_open(c)) != 0)
            return rc;
        json_t *arr = json_array();
        const char *sub = ctl_opt(&a, "sub");
        src = ims_store_impi_list(c->st, S(sub), c->json ? impi_json : impi_print,
                                  c->json ? (void *)arr : (void *)c);
        if (src) {
            json_decref(arr);
            return ctl_store_fail(c, src, "list");
        }
        return ctl_done(c, json_pack("{s:o}", "impis", arr));
    }
    if (strcmp(op, "set-password") == 0) {
        static const char *const spec[] = { "password=", "password-file=", "keep-password",
                                            NULL };
        char pw[IMS_STORE_PASSWORD_MAX + 1];
        rc = ctl_parse(c, argc, argv, spec, 1, 1,
                       "IMPI (--password P | --password-file FILE|-) [--keep-password]", &a);
        if (rc)
            return rc;
        int prc = ctl_password(c, &a, pw, sizeof(pw));
        wipe_secrets(&a);
        if (prc == 0)
            return ctl_fail(c, CTL_USAGE, "--password or --password-file: required");
        if (prc < 0)
            return -prc;
        if ((rc = ctl_open(c)) == 0) {
            src = ims_store_impi_set_password(c->st, S(a.pos[0]), S(pw),
                                              ctl_flag(&a, "keep-password"));
            rc = src ? ctl_store_fail(c, src, "set-password") : CTL_OK;
        }
        ims_wipe(pw, sizeof(pw));
        if (rc)
            return rc;
        ctl_say(c, "password of %s set (HA1 for MD5, SHA-256, SHA-512-256)", a.pos[0]);
        return ctl_done(c, json_pack("{s:s}", "impi", a.pos[0]));
    }
    if (strcmp(op, "set-aka") == 0) {
        static const char *const spec[] = { "k=", "op=", "opc=", "amf=", NULL };
        struct ctl_doc_impi m;
        memset(&m, 0, sizeof(m));
        rc = ctl_parse(c, argc, argv, spec, 1, 1, "IMPI --k HEX (--op HEX | --opc HEX) [--amf HEX]",
                       &a);
        if (rc)
            return rc;
        int arc = aka_opts(c, &a, &m);
        wipe_secrets(&a);
        if (arc == 0)
            return ctl_fail(c, CTL_USAGE, "--k: required");
        if (arc < 0)
            return -arc;
        if ((rc = ctl_open(c)) == 0) {
            src = ims_store_impi_set_aka(c->st, S(a.pos[0]), m.k, m.opc, m.amf);
            rc = src ? ctl_store_fail(c, src, "set-aka") : CTL_OK;
        }
        ims_wipe(&m, sizeof(m));
        if (rc)
            return rc;
        ctl_say(c, "AKA K/OPc of %s set", a.pos[0]);
        return ctl_done(c, json_pack("{s:s}", "impi", a.pos[0]));
    }
    if (strcmp(op, "set-schemes") == 0) {
        static const char *const spec[] = { "scheme=*", NULL };
        unsigned schemes;
        const char *const *v;
        char sch[96];
        if ((rc = ctl_parse(c, argc, argv, spec, 1, 2, "IMPI LIST", &a)) != 0)
            return rc;
        int n = ctl_optv(&a, "scheme", &v);
        const char *one[1] = { a.npos > 1 ? a.pos[1] : NULL };
        if (a.npos > 1 && n)
            return ctl_fail(c, CTL_USAGE, "LIST: give it once (positional or --scheme)");
        if (a.npos > 1) {
            v = one;
            n = 1;
        }
        if (n == 0)
            return ctl_fail(c, CTL_USAGE, "LIST: required (md5,sha256,sha512-256,akav1,akav2)");
        if (!ctl_schemes(v, n, &schemes, why, sizeof(why)))
            return ctl_fail(c, CTL_USAGE, "LIST: %s", why);
        if ((rc = ctl_open(c)) != 0)
            return rc;
        if ((src = ims_store_impi_set_schemes(c->st, S(a.pos[0]), schemes)) != 0)
            return ctl_store_fail(c, src, "set-schemes");
        ctl_say(c, "schemes of %s: %s", a.pos[0], ctl_schemes_str(schemes, sch, sizeof(sch)));
        return ctl_done(c, json_pack("{s:s, s:s}", "impi", a.pos[0], "schemes",
                                     ctl_schemes_str(schemes, sch, sizeof(sch))));
    }
    if (strcmp(op, "link") == 0 || strcmp(op, "unlink") == 0) {
        bool link = op[0] == 'l';
        if ((rc = ctl_parse(c, argc, argv, NULL, 2, 2, "IMPI IMPU", &a)) != 0 ||
            (rc = ctl_open(c)) != 0)
            return rc;
        src = link ? ims_store_link(c->st, S(a.pos[0]), S(a.pos[1]))
                   : ims_store_unlink(c->st, S(a.pos[0]), S(a.pos[1]));
        if (src)
            return ctl_store_fail(c, src, op);
        ctl_say(c, "%s %s %s %s", link ? "linked" : "unlinked", a.pos[0], link ? "to" : "from",
                a.pos[1]);
        return ctl_done(c, json_pack("{s:s, s:s}", "impi", a.pos[0], "impu", a.pos[1]));
    }
    bool show = strcmp(op, "show") == 0, del = strcmp(op, "delete") == 0;
    if (!show && !del)
        return ctl_fail(c, CTL_USAGE, "unknown subcommand (add, show, list, set-password, "
                                      "set-aka, set-schemes, link, unlink, delete)");
    if ((rc = ctl_parse(c, argc, argv, NULL, 1, 1, "IMPI", &a)) != 0 || (rc = ctl_open(c)) != 0)
        return rc;
    struct ims_impi_rec r;
    if ((src = ims_store_impi_get(c->st, S(a.pos[0]), &r)) != 0)
        return ctl_store_fail(c, src, op);
    if (show) {
        json_t *o = ctl_json_impi(c->st, &r);
        json_object_set_new(o, "subscription", json_string(r.subscription));
        ctl_print_obj(c, o, 0);
        return ctl_done(c, json_pack("{s:o}", "impi", o));
    }
    /* delete: the sets registered through this IMPI are de-registered first */
    struct ctl_nset *set = ims_calloc(1, sizeof(*set));
    struct ims_impu_rec *arr = ims_calloc(256, sizeof(*arr));
    size_t n = 0;
    if (!set || !arr) {
        ims_free(set);
        ims_free(arr);
        return ctl_fail(c, CTL_FAIL, "out of memory");
    }
    src = ims_store_impus_of_impi(c->st, S(a.pos[0]), arr, 256, &n);
    if (src == IMS_ELIMIT) {
        n = 256;
        src = 0;
    }
    for (size_t i = 0; src == 0 && i < n; i++)
        ctl_nset_add(set, &arr[i]);
    if (src == 0)
        ctl_nset_send(c, set, CTL_NOTIFY_RTR, CX_REASON_PERMANENT_TERMINATION,
                      "private identity deleted by the operator");
    ims_free(set);
    ims_free(arr);
    if (src == 0)
        src = ims_store_impi_del(c->st, S(a.pos[0]));
    if (src)
        return ctl_store_fail(c, src, "delete");
    ctl_say(c, "deleted IMPI %s", a.pos[0]);
    return ctl_done(c, json_pack("{s:s}", "deleted", a.pos[0]));
}

/* ------------------------------------------------------------------- impu */

static int impu_print(void *ctx, const struct ims_impu_rec *r)
{
    struct ctl *c = ctx;
    static const char *const st[] = { "not-registered", "registered", "unregistered" };
    fprintf(c->out, "%-40s %-24s %4u %-16s %-6s %s\n", r->identity, r->subscription, r->irs,
            r->profile[0] ? r->profile : "-", r->barred ? "barred" : "-",
            (unsigned)r->reg_state < 3 ? st[r->reg_state] : "?");
    return 0;
}

static int impu_json(void *ctx, const struct ims_impu_rec *r)
{
    json_t *o = ctl_json_impu(r);
    json_object_set_new(o, "subscription", json_string(r->subscription));
    json_array_append_new(ctx, o);
    return 0;
}

struct max_irs {
    unsigned max;
};

static int max_irs_cb(void *ctx, const struct ims_impu_rec *r)
{
    struct max_irs *m = ctx;
    if (r->irs > m->max)
        m->max = r->irs;
    return 0;
}

static int impu_add(struct ctl *c, int argc, char **argv)
{
    static const char *const spec[] = { "sub=", "impi=*", "irs=", "profile=", "barred", "type=",
                                        NULL };
    struct ctl_args a;
    struct ctl_doc d;
    struct ctl_doc_sub sub;
    struct ctl_doc_impu u;
    char why[160];
    char(*xl)[2][IMS_STORE_ID_MAX] = NULL;
    int rc = ctl_parse(c, argc, argv, spec, 1, 1,
                       "URI --sub NAME [--impi IMPI]... [--irs N] [--profile NAME] [--barred] "
                       "[--type public|distinct-psi|wildcard-psi|wildcard-impu]",
                       &a);
    if (rc)
        return rc;
    memset(&d, 0, sizeof(d));
    memset(&sub, 0, sizeof(sub));
    memset(&u, 0, sizeof(u));
    const char *subname = ctl_opt(&a, "sub"), *profile = ctl_opt(&a, "profile");
    const char *irs = ctl_opt(&a, "irs"), *type = ctl_opt(&a, "type");
    if (!ctl_valid_impu(a.pos[0], why, sizeof(why)))
        return ctl_fail(c, CTL_USAGE, "URI '%s': %s", a.pos[0], why);
    if (!subname)
        return ctl_fail(c, CTL_USAGE, "--sub: required (the subscription the IMPU belongs to)");
    if (!ctl_valid_name(subname, why, sizeof(why)))
        return ctl_fail(c, CTL_USAGE, "--sub: %s", why);
    if (profile && profile[0] && !ctl_valid_name(profile, why, sizeof(why)))
        return ctl_fail(c, CTL_USAGE, "--profile: %s", why);
    uint64_t v = 0;
    if (irs && (!ctl_uint(irs, UINT32_MAX, &v, why, sizeof(why)) || v == 0))
        return ctl_fail(c, CTL_USAGE, "--irs: must be an implicit set number 1..4294967295");
    u.type = 0;
    if (type) {
        u.type = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(type, ctl_type_name(i)) == 0)
                u.type = i;
        if (u.type < 0)
            return ctl_fail(c, CTL_USAGE,
                            "--type: must be public, distinct-psi, wildcard-psi or wildcard-impu");
    }
    snprintf(u.identity, sizeof(u.identity), "%s", a.pos[0]);
    snprintf(u.profile, sizeof(u.profile), "%s", profile ? profile : "");
    u.barred = ctl_flag(&a, "barred");
    const char *const *iv;
    int ni = ctl_optv(&a, "impi", &iv);
    if (ni) {
        xl = ims_calloc((size_t)ni, sizeof(*xl));
        if (!xl)
            return ctl_fail(c, CTL_FAIL, "out of memory");
    }
    for (int i = 0; i < ni; i++) {
        if (!ctl_valid_id(iv[i], why, sizeof(why))) {
            rc = ctl_fail(c, CTL_USAGE, "--impi '%s': %s", iv[i], why);
            goto out;
        }
        snprintf(xl[i][0], IMS_STORE_ID_MAX, "%s", iv[i]);
        snprintf(xl[i][1], IMS_STORE_ID_MAX, "%s", a.pos[0]);
    }
    if ((rc = ctl_open(c)) != 0)
        goto out;
    if (!irs) { /* a new implicit set: the next free number (admin tool: no race guard) */
        struct max_irs m = { 0 };
        int src = ims_store_impu_list(c->st, S(subname), max_irs_cb, &m);
        if (src) {
            rc = ctl_store_fail(c, src, "add");
            goto out;
        }
        v = m.max + 1;
    }
    u.irs = (unsigned)v;
    snprintf(sub.rec.name, sizeof(sub.rec.name), "%s", subname);
    sub.existing = true;
    sub.impus = &u;
    sub.nimpus = 1;
    d.subs = &sub;
    d.nsubs = 1;
    d.xlinks = xl;
    d.nxlinks = (size_t)ni;
    if ((rc = apply_doc(c, &d)) != 0)
        goto out;
    ctl_say(c, "created IMPU %s in %s (implicit set %u%s%s%s)", u.identity, subname, u.irs,
            u.profile[0] ? ", profile " : "", u.profile, u.barred ? ", barred" : "");
    for (int i = 0; i < ni; i++)
        ctl_say(c, "linked %s to %s", iv[i], u.identity);
    rc = ctl_done(c, json_pack("{s:s, s:s, s:i}", "impu", u.identity, "subscription", subname,
                               "irs", (int)u.irs));
out:
    ims_free(xl);
    return rc;
}

int ctl_cmd_impu(struct ctl *c, int argc, char **argv)
{
    struct ctl_args a;
    int rc, src;
    if (argc < 1)
        return ctl_fail(c, CTL_USAGE, "usage: imscloudctl impu add|show|list|bar|unbar|"
                                      "set-profile|delete ...");
    const char *op = argv[0];
    ctl_set_cmd(c, "impu", op);
    argc--;
    argv++;
    if (strcmp(op, "add") == 0)
        return impu_add(c, argc, argv);
    if (strcmp(op, "list") == 0) {
        static const char *const spec[] = { "sub=", NULL };
        if ((rc = ctl_parse(c, argc, argv, spec, 0, 0, "[--sub NAME]", &a)) != 0 ||
            (rc = ctl_open(c)) != 0)
            return rc;
        json_t *arr = json_array();
        if (!c->json)
            fprintf(c->out, "%-40s %-24s %4s %-16s %-6s %s\n", "IMPU", "SUBSCRIPTION", "IRS",
                    "PROFILE", "BARRED", "STATE");
        src = ims_store_impu_list(c->st, S(ctl_opt(&a, "sub")), c->json ? impu_json : impu_print,
                                  c->json ? (void *)arr : (void *)c);
        if (src) {
            json_decref(arr);
            return ctl_store_fail(c, src, "list");
        }
        return ctl_done(c, json_pack("{s:o}", "impus", arr));
    }
    bool setp = strcmp(op, "set-profile") == 0;
    static const char *const none_spec[] = { "none", NULL };
    if ((rc = ctl_parse(c, argc, argv, setp ? none_spec : NULL, 1, setp ? 2 : 1,
                        setp ? "URI (PROFILE | --none)" : "URI", &a)) != 0)
        return rc;
    const char *impu = a.pos[0];
    struct ims_impu_rec r;
    if (strcmp(op, "show") == 0) {
        if ((rc = ctl_open(c)) != 0)
            return rc;
        if ((src = ims_store_impu_get(c->st, S(impu), &r)) != 0)
            return ctl_store_fail(c, src, op);
        json_t *o = ctl_json_impu(&r);
        char impis[8][IMS_STORE_ID_MAX];
        size_t n = 0;
        json_t *ja = json_array();
        src = ims_store_impis_of_impu(c->st, S(impu), impis, 8, &n);
        for (size_t i = 0; (src == 0 || src == IMS_ELIMIT) && i < n && i < 8; i++)
            json_array_append_new(ja, json_string(impis[i]));
        json_object_set_new(o, "subscription", json_string(r.subscription));
        json_object_set_new(o, "assigned_scscf", json_string(r.scscf_name));
        json_object_set_new(o, "impis", ja);
        ctl_print_obj(c, o, 0);
        return ctl_done(c, json_pack("{s:o}", "impu", o));
    }
    if (strcmp(op, "bar") == 0 || strcmp(op, "unbar") == 0) {
        bool bar = op[0] == 'b';
        if ((rc = ctl_open(c)) != 0)
            return rc;
        if ((src = ims_store_impu_bar(c->st, S(impu), bar)) != 0)
            return ctl_store_fail(c, src, op);
        ctl_say(c, "%s %s", bar ? "barred" : "unbarred", impu);
        if ((src = ims_store_impu_get(c->st, S(impu), &r)) == 0) {
            struct ctl_nset set = { .n = 0 };
            ctl_nset_add(&set, &r);
            /* barred: the S-CSCF must drop the registration (TS 29.228 §6.1.3
             * RTR); unbarred: its profile changed (§6.2.2 PPR) */
            ctl_nset_send(c, &set, bar ? CTL_NOTIFY_RTR : CTL_NOTIFY_PPR,
                          CX_REASON_PERMANENT_TERMINATION, "identity barred by the operator");
            if (set.n == 0)
                ctl_say(c, "%s is not registered: no %s needed", impu, bar ? "RTR" : "PPR");
        }
        return ctl_done(c, json_pack("{s:s, s:b}", "impu", impu, "barred", bar));
    }
    if (setp) {
        bool none = ctl_flag(&a, "none");
        char why[160];
        if ((a.npos == 2) == none)
            return ctl_fail(c, CTL_USAGE, "PROFILE or --none: give one");
        const char *profile = none ? "" : a.pos[1];
        if (profile[0] && !ctl_valid_name(profile, why, sizeof(why)))
            return ctl_fail(c, CTL_USAGE, "PROFILE: %s", why);
        if ((rc = ctl_open(c)) != 0)
            return rc;
        if ((src = ims_store_impu_set_profile(c->st, S(impu), S(profile))) != 0)
            return ctl_store_fail(c, src, op);
        ctl_say(c, "profile of %s: %s", impu, profile[0] ? profile : "none");
        if ((src = ims_store_impu_get(c->st, S(impu), &r)) == 0) {
            struct ctl_nset set = { .n = 0 };
            ctl_nset_add(&set, &r);
            ctl_nset_send(c, &set, CTL_NOTIFY_PPR, 0, NULL);
        }
        return ctl_done(c, json_pack("{s:s, s:s}", "impu", impu, "profile", profile));
    }
    if (strcmp(op, "delete") == 0) {
        if ((rc = ctl_open(c)) != 0)
            return rc;
        if ((src = ims_store_impu_get(c->st, S(impu), &r)) != 0)
            return ctl_store_fail(c, src, op);
        struct ctl_nset set = { .n = 0 };
        ctl_nset_add(&set, &r);
        ctl_nset_send(c, &set, CTL_NOTIFY_RTR, CX_REASON_PERMANENT_TERMINATION,
                      "identity deleted by the operator");
        if ((src = ims_store_impu_del(c->st, S(impu))) != 0)
            return ctl_store_fail(c, src, op);
        ctl_say(c, "deleted IMPU %s", impu);
        return ctl_done(c, json_pack("{s:s}", "deleted", impu));
    }
    return ctl_fail(c, CTL_USAGE, "unknown subcommand (add, show, list, bar, unbar, set-profile, "
                                  "delete)");
}
