/* userdata.c - IMSSubscription, iFC and Sh-Data XML (see userdata.h).
 * Parsing uses libxml2 without network access, DTD loading or entity
 * substitution (XML_PARSE_NONET, no XML_PARSE_NOENT/DTDLOAD): a peer's
 * document cannot make us fetch or expand anything. */
#include "hss/userdata.h"

#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/xml.h"

#define XML_OPTS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)
#define MAX_DOC (1u << 20)

/* Parses frag inside a synthetic root element.  NULL if not well-formed. */
static xmlDocPtr parse_fragment(ims_str frag)
{
    struct ims_buf b;
    xmlDocPtr doc = NULL;
    if (frag.len > MAX_DOC)
        return NULL;
    ims_buf_init(&b, MAX_DOC + 64);
    if (ims_buf_add_cstr(&b, "<r>") == 0 && ims_buf_add_str(&b, frag) == 0 &&
        ims_buf_add_cstr(&b, "</r>") == 0)
        doc = xmlReadMemory(b.p, (int)b.len, NULL, "UTF-8", XML_OPTS);
    ims_buf_free(&b);
    return doc;
}

bool ims_xml_fragment_ok(ims_str frag)
{
    if (frag.len == 0)
        return true;
    xmlDocPtr doc = parse_fragment(frag);
    bool ok = doc != NULL && doc->intSubset == NULL;
    if (ok) {
        /* only elements (and whitespace) at the top level */
        for (xmlNodePtr n = xmlDocGetRootElement(doc)->children; n && ok; n = n->next) {
            if (n->type == XML_TEXT_NODE) {
                for (const xmlChar *c = n->content; c && *c && ok; c++)
                    ok = *c == ' ' || *c == '\t' || *c == '\r' || *c == '\n';
            } else if (n->type != XML_ELEMENT_NODE && n->type != XML_COMMENT_NODE) {
                ok = false;
            }
        }
    }
    xmlFreeDoc(doc);
    return ok;
}

static int el(struct ims_buf *b, const char *name, ims_str text)
{
    ims_str n = ims_str_cstr(name);
    int rc = IMS_BUF_CAT(b, IMS_S("<"), n, IMS_S(">"));
    if (rc == 0)
        rc = ims_xml_escape(b, text);
    if (rc == 0)
        rc = IMS_BUF_CAT(b, IMS_S("</"), n, IMS_S(">"));
    return rc;
}

/* The subscription's local roles for the S-CSCF policy.  TS 29.228 Annex E
 * gives tIMSSubscription no Extension, so they ride in the ServiceProfile's
 * (last child): <Extension><imscloud:Roles xmlns:imscloud=...>. */
static int roles_xml(struct ims_buf *b, ims_str roles)
{
    int rc = ims_buf_add_cstr(b, "<Extension><imscloud:Roles xmlns:imscloud=\"" IMS_UD_ROLES_NS
                                 "\">");
    if (rc == 0)
        rc = ims_xml_escape(b, roles);
    if (rc == 0)
        rc = ims_buf_add_cstr(b, "</imscloud:Roles></Extension>");
    return rc;
}

int ims_ud_subscription(struct ims_buf *b, ims_str impi, const struct ims_ud_profile *profiles,
                        size_t n)
{
    int rc = ims_buf_add_cstr(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                                 "<IMSSubscription>");
    if (rc == 0)
        rc = el(b, "PrivateID", impi);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct ims_ud_profile *p = &profiles[i];
        rc = ims_buf_add_cstr(b, "<ServiceProfile>");
        for (size_t k = 0; rc == 0 && k < p->n; k++) {
            const struct ims_ud_impu *u = &p->impus[k];
            /* TS 29.228 Annex E tPublicIdentity: BarringIndication?, Identity, Extension? */
            rc = ims_buf_add_cstr(b, "<PublicIdentity>");
            if (rc == 0 && u->barred)
                rc = ims_buf_add_cstr(b, "<BarringIndication>1</BarringIndication>");
            if (rc == 0)
                rc = el(b, "Identity", u->identity);
            if (rc == 0 && u->identity_type != 0)
                rc = ims_buf_printf(b, "<Extension><IdentityType>%d</IdentityType></Extension>",
                                    u->identity_type);
            if (rc == 0)
                rc = ims_buf_add_cstr(b, "</PublicIdentity>");
        }
        if (rc == 0 && p->xml.len) {
            if (ims_xml_fragment_ok(p->xml))
                rc = ims_buf_add_str(b, p->xml);
            else
                LOG_E("hss", "event=bad_profile_xml impi=%.*s why=\"not well-formed, left out\"",
                      IMS_SF(impi));
        }
        if (rc == 0 && p->roles.len)
            rc = roles_xml(b, p->roles);
        if (rc == 0)
            rc = ims_buf_add_cstr(b, "</ServiceProfile>");
    }
    if (rc == 0)
        rc = ims_buf_add_cstr(b, "</IMSSubscription>");
    return rc;
}

static const char *const spt_names[] = { "Method", "RequestURI", "SIPHeader", "SessionCase",
                                         "SessionDescription" };

static int spt_xml(struct ims_buf *b, const struct ims_spt *s)
{
    if ((unsigned)s->type > IMS_SPT_SESSION_DESCRIPTION)
        return IMS_EINVAL;
    int rc = ims_buf_printf(b, "<SPT><ConditionNegated>%d</ConditionNegated><Group>%u</Group>",
                            s->negated ? 1 : 0, s->group);
    if (rc)
        return rc;
    switch (s->type) {
    case IMS_SPT_SIP_HEADER:
    case IMS_SPT_SESSION_DESCRIPTION: {
        const char *first = s->type == IMS_SPT_SIP_HEADER ? "Header" : "Line";
        rc = ims_buf_printf(b, "<%s>", spt_names[s->type]);
        if (rc == 0)
            rc = el(b, first, s->value);
        if (rc == 0 && s->content.len)
            rc = el(b, "Content", s->content);
        if (rc == 0)
            rc = ims_buf_printf(b, "</%s>", spt_names[s->type]);
        break;
    }
    default:
        rc = el(b, spt_names[s->type], s->value);
        break;
    }
    if (rc == 0)
        rc = ims_buf_add_cstr(b, "</SPT>");
    return rc;
}

int ims_ud_ifc(struct ims_buf *b, const struct ims_ifc *ifc, size_t n)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct ims_ifc *f = &ifc[i];
        rc = ims_buf_printf(b, "<InitialFilterCriteria><Priority>%u</Priority>", f->priority);
        if (rc == 0 && f->nspt) {
            rc = ims_buf_printf(b, "<TriggerPoint><ConditionTypeCNF>%d</ConditionTypeCNF>",
                                f->cnf ? 1 : 0);
            for (size_t k = 0; rc == 0 && k < f->nspt; k++)
                rc = spt_xml(b, &f->spts[k]);
            if (rc == 0)
                rc = ims_buf_add_cstr(b, "</TriggerPoint>");
        }
        if (rc == 0)
            rc = ims_buf_add_cstr(b, "<ApplicationServer>");
        if (rc == 0)
            rc = el(b, "ServerName", f->server_name);
        if (rc == 0)
            rc = ims_buf_printf(b, "<DefaultHandling>%d</DefaultHandling>",
                                f->default_handling ? 1 : 0);
        if (rc == 0 && f->service_info.len)
            rc = el(b, "ServiceInfo", f->service_info);
        if (rc == 0)
            rc = ims_buf_add_cstr(b, "</ApplicationServer>");
        if (rc == 0 && f->profile_part >= 0)
            rc = ims_buf_printf(b, "<ProfilePartIndicator>%d</ProfilePartIndicator>",
                                f->profile_part ? 1 : 0);
        if (rc == 0)
            rc = ims_buf_add_cstr(b, "</InitialFilterCriteria>");
    }
    return rc;
}

static xmlNodePtr child(xmlNodePtr n, const char *name)
{
    for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, (const xmlChar *)name) == 0)
            return c;
    return NULL;
}

/* Text content of n, trimmed, into a buffer; false if too long. */
static bool text_of(xmlNodePtr n, char *out, size_t cap)
{
    xmlChar *t = n ? xmlNodeGetContent(n) : NULL;
    bool ok = false;
    if (t) {
        ims_str s = ims_str_trim(ims_str_cstr((const char *)t));
        ok = s.len < cap;
        if (ok)
            ims_str_copy(s, out, cap);
        xmlFree(t);
    }
    return ok;
}

/* Appends the serialisation of node n. */
static int dump_node(struct ims_buf *b, xmlDocPtr doc, xmlNodePtr n)
{
    xmlBufferPtr xb = xmlBufferCreate();
    if (!xb)
        return IMS_ENOMEM;
    int rc = xmlNodeDump(xb, doc, n, 0, 0) < 0 ? IMS_ENOMEM
                                               : ims_buf_add(b, xmlBufferContent(xb),
                                                             (size_t)xmlBufferLength(xb));
    xmlBufferFree(xb);
    return rc;
}

int ims_ud_ifcs_of(struct ims_buf *b, ims_str fragment, ims_str server_name)
{
    if (fragment.len == 0)
        return 0;
    xmlDocPtr doc = parse_fragment(fragment);
    if (!doc)
        return IMS_EPROTO;
    int rc = 0;
    for (xmlNodePtr n = xmlDocGetRootElement(doc)->children; n && rc == 0; n = n->next) {
        if (n->type != XML_ELEMENT_NODE ||
            xmlStrcmp(n->name, (const xmlChar *)"InitialFilterCriteria") != 0)
            continue;
        if (server_name.len) {
            char name[512];
            if (!text_of(child(child(n, "ApplicationServer"), "ServerName"), name, sizeof(name)) ||
                !ims_str_eq(ims_str_cstr(name), server_name))
                continue;
        }
        rc = dump_node(b, doc, n);
    }
    xmlFreeDoc(doc);
    return rc;
}

int ims_sh_parse_repository(ims_str docs, struct ims_sh_repo *out, size_t cap, size_t *n)
{
    *n = 0;
    if (docs.len > MAX_DOC)
        return IMS_ELIMIT;
    xmlDocPtr doc = xmlReadMemory(docs.p, (int)docs.len, NULL, NULL, XML_OPTS);
    if (!doc)
        return IMS_EPROTO;
    int rc = 0;
    /* libxml2 writes a non-ASCII character of an attribute value as it is
     * when the document declared an encoding, and as a character reference
     * when it did not (text stays as it is either way): forget the
     * declaration, so that the ServiceData we keep is the same bytes however
     * the client spelt its prolog (found by fuzz_userdata's round trip). */
    xmlFree((xmlChar *)doc->encoding);
    doc->encoding = NULL;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (!root || doc->intSubset || xmlStrcmp(root->name, (const xmlChar *)"Sh-Data") != 0) {
        rc = IMS_EPROTO;
        goto out;
    }
    for (xmlNodePtr r = root->children; r && rc == 0; r = r->next) {
        if (r->type != XML_ELEMENT_NODE ||
            xmlStrcmp(r->name, (const xmlChar *)"RepositoryData") != 0)
            continue;
        if (*n == cap) {
            rc = IMS_ELIMIT;
            break;
        }
        struct ims_sh_repo *o = &out[*n];
        char seq[16];
        uint64_t v;
        if (!text_of(child(r, "ServiceIndication"), o->si, sizeof(o->si)) || !o->si[0] ||
            !text_of(child(r, "SequenceNumber"), seq, sizeof(seq)) ||
            ims_str_to_u64(ims_str_cstr(seq), 65535, &v) != 0) {
            rc = IMS_EPROTO;
            break;
        }
        o->seq = (unsigned)v;
        xmlNodePtr data = child(r, "ServiceData");
        o->has_data = data != NULL;
        ims_buf_reset(&o->data);
        for (xmlNodePtr c = data ? data->children : NULL; c && rc == 0; c = c->next)
            rc = dump_node(&o->data, doc, c);
        (*n)++;
    }
out:
    xmlFreeDoc(doc);
    return rc;
}
