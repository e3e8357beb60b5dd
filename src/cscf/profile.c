/* profile.c - IMSSubscription (TS 29.228 Annex E) -> struct ims_profile.
 *
 * libxml2 without network access, DTD loading or entity substitution
 * (XML_PARSE_NONET, no XML_PARSE_NOENT/DTDLOAD) and a document with a DTD is
 * refused: the HSS is a trusted peer, but its User-Data may carry operator
 * text and must not make us fetch or expand anything.  Element names are
 * matched without namespaces (the HSSs we know send none). */
#include "cscf/profile.h"

#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/crypto.h>

#include "base/alloc.h"
#include "base/err.h"
#include "crypto/digest.h"

#define XML_OPTS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)
#define TEXT_MAX 4096

static bool named(xmlNodePtr n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, (const xmlChar *)name) == 0;
}

static xmlNodePtr child(xmlNodePtr n, const char *name)
{
    for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
        if (named(c, name))
            return c;
    return NULL;
}

/* First descendant (depth first) with this name, or NULL. */
static xmlNodePtr descendant(xmlNodePtr n, const char *name)
{
    for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (named(c, name))
            return c;
        xmlNodePtr d = descendant(c, name);
        if (d)
            return d;
    }
    return NULL;
}

/* The trimmed text of n as a new string; *out NULL when n is NULL.
 * 0, IMS_EPROTO (too long), IMS_ENOMEM. */
static int text_dup(xmlNodePtr n, const char **out)
{
    *out = NULL;
    if (!n)
        return 0;
    xmlChar *t = xmlNodeGetContent(n);
    if (!t)
        return IMS_ENOMEM;
    ims_str s = ims_str_trim(ims_str_cstr((const char *)t));
    int rc = 0;
    if (s.len > TEXT_MAX)
        rc = IMS_EPROTO;
    else if (!(*out = ims_strndup(s.p ? s.p : "", s.len)))
        rc = IMS_ENOMEM;
    xmlFree(t);
    return rc;
}

/* A URI the S-CSCF writes between '<' and '>' as it is (P-Associated-URI,
 * Route to an AS): printable ASCII (RFC 3261 URIs escape the rest) without
 * '<', '>' or '"', so that nothing in the HSS's data can end the name-addr
 * or the header line. */
static bool uri_text_ok(const char *s)
{
    if (!s || !*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '<' || *p == '>' || *p == '"')
            return false;
    return true;
}

/* The number in n (absent: def).  0, IMS_EPROTO (not a number <= max). */
static int num_of(xmlNodePtr n, uint64_t max, uint64_t def, uint64_t *out)
{
    *out = def;
    if (!n)
        return 0;
    xmlChar *t = xmlNodeGetContent(n);
    if (!t)
        return IMS_ENOMEM;
    int rc = ims_str_to_u64(ims_str_trim(ims_str_cstr((const char *)t)), max, out) ? IMS_EPROTO
                                                                                    : 0;
    xmlFree(t);
    return rc;
}

static size_t count_children(xmlNodePtr n, const char *name)
{
    size_t k = 0;
    for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
        k += named(c, name);
    return k;
}

/* ------------------------------------------------------------ free */

static void free_ifc(struct ims_prof_ifc *f)
{
    for (size_t i = 0; f->spts && i < f->nspt; i++) {
        ims_free((void *)f->spts[i].value);
        ims_free((void *)f->spts[i].content);
    }
    ims_free(f->spts);
    ims_free((void *)f->server_name);
    ims_free((void *)f->service_info);
}

static void profile_free(struct ims_profile *p)
{
    for (size_t i = 0; p->sps && i < p->nsp; i++) {
        struct ims_service_profile *sp = &p->sps[i];
        for (size_t k = 0; sp->ids && k < sp->nids; k++) {
            ims_free((void *)sp->ids[k].identity);
            ims_free((void *)sp->ids[k].display_name);
        }
        ims_free(sp->ids);
        for (size_t k = 0; sp->ifcs && k < sp->nifc; k++)
            free_ifc(&sp->ifcs[k]);
        ims_free(sp->ifcs);
    }
    ims_free(p->sps);
    ims_free((void *)p->impi);
    ims_free((void *)p->roles);
    ims_free(p);
}

struct ims_profile *ims_profile_ref(struct ims_profile *p)
{
    if (p)
        __atomic_fetch_add(&p->refs, 1, __ATOMIC_RELAXED);
    return p;
}

void ims_profile_unref(struct ims_profile *p)
{
    if (p && __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) == 0)
        profile_free(p);
}

/* ------------------------------------------------------------ parse */

static const char *const spt_elems[] = {
    [IMS_SPTK_METHOD] = "Method",
    [IMS_SPTK_REQUEST_URI] = "RequestURI",
    [IMS_SPTK_SIP_HEADER] = "SIPHeader",
    [IMS_SPTK_SESSION_CASE] = "SessionCase",
    [IMS_SPTK_SESSION_DESCRIPTION] = "SessionDescription",
};

static int parse_spt(xmlNodePtr n, struct ims_prof_spt *s)
{
    uint64_t v;
    int rc = num_of(child(n, "ConditionNegated"), 1, 0, &v);
    if (rc)
        return rc;
    s->negated = v == 1;
    for (xmlNodePtr c = n->children; c; c = c->next) {
        if (!named(c, "Group"))
            continue;
        if (s->ngroups == IMS_PROFILE_MAX_GROUPS)
            return IMS_ELIMIT;
        rc = num_of(c, UINT32_MAX, 0, &v);
        if (rc)
            return rc;
        s->groups[s->ngroups++] = (uint32_t)v;
    }
    xmlNodePtr e = NULL;
    for (int k = 0; k <= IMS_SPTK_SESSION_DESCRIPTION && !e; k++) {
        e = child(n, spt_elems[k]);
        s->kind = (enum ims_spt_kind)k;
    }
    if (!e)
        return IMS_EPROTO;
    switch (s->kind) {
    case IMS_SPTK_SIP_HEADER:
        rc = text_dup(child(e, "Header"), &s->value);
        if (rc == 0)
            rc = text_dup(child(e, "Content"), &s->content);
        if (rc == 0 && !s->value)
            rc = IMS_EPROTO;
        break;
    case IMS_SPTK_SESSION_DESCRIPTION:
        rc = text_dup(child(e, "Line"), &s->value);
        if (rc == 0)
            rc = text_dup(child(e, "Content"), &s->content);
        if (rc == 0 && !s->value)
            rc = IMS_EPROTO;
        break;
    case IMS_SPTK_SESSION_CASE:
        rc = num_of(e, 4, 0, &v);
        s->session_case = (int)v;
        if (rc == 0)
            rc = text_dup(e, &s->value);
        break;
    default:
        rc = text_dup(e, &s->value);
        break;
    }
    if (rc)
        return rc;
    /* Extension/RegistrationType (0 INITIAL, 1 RE_REGISTRATION, 2 DE_REGISTRATION) */
    xmlNodePtr ext = child(n, "Extension");
    for (xmlNodePtr c = ext ? ext->children : NULL; c; c = c->next) {
        if (!named(c, "RegistrationType"))
            continue;
        rc = num_of(c, 2, 0, &v);
        if (rc)
            return rc;
        s->reg_types |= 1u << v;
    }
    return 0;
}

static int parse_ifc(xmlNodePtr n, struct ims_prof_ifc *f)
{
    uint64_t v;
    int rc = num_of(child(n, "Priority"), UINT32_MAX, 0, &v);
    if (rc)
        return rc;
    if (!child(n, "Priority"))
        return IMS_EPROTO;
    f->priority = (unsigned)v;
    f->profile_part = -1;
    xmlNodePtr tp = child(n, "TriggerPoint");
    if (tp) {
        f->has_trigger = true;
        rc = num_of(child(tp, "ConditionTypeCNF"), 1, 0, &v);
        if (rc)
            return rc;
        f->cnf = v == 1;
        size_t n_spt = count_children(tp, "SPT");
        if (n_spt > IMS_PROFILE_MAX_SPT)
            return IMS_ELIMIT;
        if (n_spt) {
            f->spts = ims_calloc(n_spt, sizeof(*f->spts));
            if (!f->spts)
                return IMS_ENOMEM;
        }
        for (xmlNodePtr c = tp->children; c; c = c->next) {
            if (!named(c, "SPT"))
                continue;
            rc = parse_spt(c, &f->spts[f->nspt]);
            f->nspt++; /* counted first: freed even when half parsed */
            if (rc)
                return rc;
        }
    }
    xmlNodePtr as = child(n, "ApplicationServer");
    if (!as)
        return IMS_EPROTO;
    rc = text_dup(child(as, "ServerName"), &f->server_name);
    if (rc == 0 && !uri_text_ok(f->server_name))
        rc = IMS_EPROTO;
    if (rc == 0)
        rc = num_of(child(as, "DefaultHandling"), 1, 0, &v);
    f->default_handling = (int)v;
    if (rc == 0)
        rc = text_dup(child(as, "ServiceInfo"), &f->service_info);
    if (rc == 0) {
        f->include_register_request = descendant(as, "IncludeRegisterRequest") != NULL;
        f->include_register_response = descendant(as, "IncludeRegisterResponse") != NULL;
        xmlNodePtr pp = child(n, "ProfilePartIndicator");
        rc = num_of(pp, 1, 0, &v);
        if (pp)
            f->profile_part = (int)v;
    }
    return rc;
}

static int cmp_ifc(const void *a, const void *b)
{
    const struct ims_prof_ifc *x = a, *y = b;
    return x->priority < y->priority ? -1 : x->priority > y->priority;
}

static int parse_sp(xmlNodePtr n, struct ims_service_profile *sp, size_t *total_ids)
{
    size_t nid = count_children(n, "PublicIdentity");
    size_t nf = count_children(n, "InitialFilterCriteria");
    if (nid == 0)
        return IMS_EPROTO;
    if (*total_ids + nid > IMS_PROFILE_MAX_IDS || nf > IMS_PROFILE_MAX_IFC)
        return IMS_ELIMIT;
    sp->ids = ims_calloc(nid, sizeof(*sp->ids));
    if (!sp->ids)
        return IMS_ENOMEM;
    if (nf && !(sp->ifcs = ims_calloc(nf, sizeof(*sp->ifcs))))
        return IMS_ENOMEM;
    int rc = 0;
    for (xmlNodePtr c = n->children; c && rc == 0; c = c->next) {
        if (named(c, "PublicIdentity")) {
            struct ims_pub_id *id = &sp->ids[sp->nids++];
            uint64_t v;
            rc = num_of(child(c, "BarringIndication"), 1, 0, &v);
            id->barred = v == 1;
            if (rc == 0)
                rc = text_dup(child(c, "Identity"), &id->identity);
            if (rc == 0 && !uri_text_ok(id->identity))
                rc = IMS_EPROTO;
            if (rc == 0)
                rc = num_of(descendant(child(c, "Extension"), "IdentityType"), 3, 0, &v);
            id->identity_type = (int)v;
            if (rc == 0)
                rc = text_dup(descendant(c, "DisplayName"), &id->display_name);
        } else if (named(c, "InitialFilterCriteria")) {
            rc = parse_ifc(c, &sp->ifcs[sp->nifc]);
            sp->nifc++;
        }
    }
    if (rc == 0 && sp->nifc > 1)
        qsort(sp->ifcs, sp->nifc, sizeof(*sp->ifcs), cmp_ifc); /* stable enough: distinct
                                                                * priorities per TS 29.228 */
    *total_ids += sp->nids;
    return rc;
}

/* <Extension><imscloud:Roles xmlns:imscloud=IMS_PROFILE_ROLES_NS> of a
 * ServiceProfile: matched by namespace, unlike the 3GPP elements, since the
 * Extension is open to anyone's elements.  0 or text_dup's error. */
static int parse_roles(xmlNodePtr sp, const char **out)
{
    for (xmlNodePtr e = sp->children; e; e = e->next) {
        if (!named(e, "Extension"))
            continue;
        for (xmlNodePtr r = e->children; r; r = r->next)
            if (named(r, "Roles") && r->ns && r->ns->href &&
                xmlStrcmp(r->ns->href, (const xmlChar *)IMS_PROFILE_ROLES_NS) == 0)
                return text_dup(r, out);
    }
    return 0;
}

int ims_profile_parse(ims_str xml, struct ims_profile **out)
{
    *out = NULL;
    if (xml.len == 0)
        return IMS_EPROTO;
    if (xml.len > IMS_PROFILE_DOC_MAX)
        return IMS_ELIMIT;
    xmlDocPtr doc = xmlReadMemory(xml.p, (int)xml.len, NULL, NULL, XML_OPTS);
    if (!doc)
        return IMS_EPROTO;
    int rc = 0;
    struct ims_profile *p = NULL;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (!root || doc->intSubset || !named(root, "IMSSubscription")) {
        rc = IMS_EPROTO;
        goto out;
    }
    size_t nsp = count_children(root, "ServiceProfile");
    if (nsp == 0) {
        rc = IMS_EPROTO;
        goto out;
    }
    if (nsp > IMS_PROFILE_MAX_SP) {
        rc = IMS_ELIMIT;
        goto out;
    }
    p = ims_calloc(1, sizeof(*p));
    if (!p || !(p->sps = ims_calloc(nsp, sizeof(*p->sps)))) {
        rc = IMS_ENOMEM;
        goto out;
    }
    p->refs = 1;
    rc = ims_sha256(xml.p, xml.len, p->src_sha256);
    if (rc == 0)
        rc = text_dup(child(root, "PrivateID"), &p->impi);
    for (xmlNodePtr c = root->children; c && rc == 0; c = c->next) {
        if (!named(c, "ServiceProfile"))
            continue;
        rc = parse_sp(c, &p->sps[p->nsp], &p->nids);
        p->nsp++;
        if (rc == 0 && !p->roles)
            rc = parse_roles(c, &p->roles);
    }
out:
    xmlFreeDoc(doc);
    if (rc) {
        if (p)
            profile_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

bool ims_profile_same_source(const struct ims_profile *p, ims_str xml)
{
    uint8_t d[sizeof(p->src_sha256)];
    if (!p || xml.len == 0 || ims_sha256(xml.p, xml.len, d) != 0)
        return false;
    return CRYPTO_memcmp(d, p->src_sha256, sizeof(d)) == 0;
}

const struct ims_service_profile *ims_profile_find(const struct ims_profile *p, ims_str impu)
{
    for (size_t i = 0; p && i < p->nsp; i++)
        for (size_t k = 0; k < p->sps[i].nids; k++)
            if (ims_str_eq(ims_str_cstr(p->sps[i].ids[k].identity), impu))
                return &p->sps[i];
    return NULL;
}

int ims_profile_each_id(const struct ims_profile *p,
                        int (*fn)(const struct ims_pub_id *id, void *ctx), void *ctx)
{
    for (size_t i = 0; p && i < p->nsp; i++)
        for (size_t k = 0; k < p->sps[i].nids; k++) {
            int rc = fn(&p->sps[i].ids[k], ctx);
            if (rc)
                return rc;
        }
    return 0;
}
