/* fuzz_userdata.c - libFuzzer harness for the XML documents a Diameter peer
 * hands us: the User-Data (IMSSubscription) of an SAA or PPR, which the
 * S-CSCF parses into a profile (src/cscf/profile.c), and the Sh-Data of a
 * PUR, whose RepositoryData the HSS stores (ims_sh_parse_repository in
 * src/hss/userdata.c).  Both go through libxml2 without network, DTD or
 * entity expansion.
 *
 * The first byte picks the document kind (even: User-Data, odd: Sh-Data);
 * the rest is the document.  Properties beyond "no crash":
 * - User-Data: what parses holds within the caps of profile.h, with every
 *   string present and every enum in range; the iFCs of each service
 *   profile are sorted by priority; each identity is found by
 *   ims_profile_find() in a service profile that lists it, and
 *   ims_profile_each_id() visits them all in order; the profile remembers
 *   its source (and not a shorter one); a second parse gives the same.
 * - Sh-Data: at most the cap is returned; each RepositoryData has a
 *   ServiceIndication and a SequenceNumber within 0..65535; and what is
 *   kept of it, written back into a new Sh-Data document, parses to the
 *   same indication, number and data (what the HSS stores is what an AS
 *   reads back).
 * iFC evaluation is not fuzzed here: its RequestURI/SIPHeader patterns are
 * compiled by glibc's regcomp(), which has inputs of exponential cost, and
 * iFCs are the operator's data (docs/testing.md "Fuzzing").
 * Built without libFuzzer it is just a function (fuzz_userdata_replay runs
 * the corpus). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/xml.h"
#include "cscf/profile.h"
#include "hss/userdata.h"

#include "fuzz.h"

#define REPO_CAP 8
#define REPO_DATA_MAX (64u * 1024u)

struct walk {
    const struct ims_profile *p;
    size_t sp, i, seen;
};

/* ims_profile_each_id: the identities in document order */
static int each_id(const struct ims_pub_id *id, void *ctx)
{
    struct walk *w = ctx;
    while (w->sp < w->p->nsp && w->i == w->p->sps[w->sp].nids) {
        w->sp++;
        w->i = 0;
    }
    CHECK(w->sp < w->p->nsp);
    CHECK(id == &w->p->sps[w->sp].ids[w->i]);
    w->i++;
    w->seen++;
    return 0;
}

static bool lists(const struct ims_service_profile *sp, const char *identity)
{
    for (size_t i = 0; i < sp->nids; i++)
        if (strcmp(sp->ids[i].identity, identity) == 0)
            return true;
    return false;
}

static void check_spt(const struct ims_prof_spt *t)
{
    CHECK((unsigned)t->kind <= IMS_SPTK_SESSION_DESCRIPTION);
    CHECK(t->ngroups <= IMS_PROFILE_MAX_GROUPS);
    CHECK(t->reg_types < 8);
    if (t->kind == IMS_SPTK_SESSION_CASE)
        CHECK(t->session_case >= 0 && t->session_case <= IMS_SESSION_CASE_ORIGINATING_CDIV);
    else
        CHECK(t->value != NULL);
}

static void check_profile(const struct ims_profile *p)
{
    CHECK(p->refs == 1);
    CHECK(p->nsp <= IMS_PROFILE_MAX_SP && p->nids <= IMS_PROFILE_MAX_IDS);
    size_t ids = 0;
    for (size_t s = 0; s < p->nsp; s++) {
        const struct ims_service_profile *sp = &p->sps[s];
        ids += sp->nids;
        for (size_t i = 0; i < sp->nids; i++) {
            const struct ims_pub_id *id = &sp->ids[i];
            CHECK(id->identity && id->identity_type >= 0 && id->identity_type <= 3);
            const struct ims_service_profile *found =
                ims_profile_find(p, ims_str_cstr(id->identity));
            CHECK(found && lists(found, id->identity));
        }
        CHECK(sp->nifc <= IMS_PROFILE_MAX_IFC);
        for (size_t f = 0; f < sp->nifc; f++) {
            const struct ims_prof_ifc *ifc = &sp->ifcs[f];
            CHECK(f == 0 || sp->ifcs[f - 1].priority <= ifc->priority);
            CHECK(ifc->server_name);
            CHECK(ifc->default_handling == 0 || ifc->default_handling == 1);
            CHECK(ifc->profile_part >= -1 && ifc->profile_part <= 1);
            CHECK(ifc->nspt <= IMS_PROFILE_MAX_SPT && (ifc->nspt == 0 || ifc->has_trigger));
            for (size_t t = 0; t < ifc->nspt; t++)
                check_spt(&ifc->spts[t]);
        }
    }
    CHECK(ids == p->nids);
    struct walk w = { p, 0, 0, 0 };
    CHECK(ims_profile_each_id(p, each_id, &w) == 0 && w.seen == p->nids);
}

static void user_data(ims_str xml)
{
    struct ims_profile *p = NULL, *again = NULL;
    int rc = ims_profile_parse(xml, &p);
    CHECK(rc == 0 || rc == IMS_EPROTO || rc == IMS_ELIMIT || rc == IMS_ENOMEM);
    CHECK((rc == 0) == (p != NULL));
    int rc2 = ims_profile_parse(xml, &again);
    CHECK(rc2 == rc || rc2 == IMS_ENOMEM || rc == IMS_ENOMEM);
    if (rc == 0) {
        check_profile(p);
        CHECK(ims_profile_same_source(p, xml));
        CHECK(!ims_profile_same_source(p, ims_str_make(xml.p, xml.len - 1)));
        if (again) {
            CHECK(again->nsp == p->nsp && again->nids == p->nids);
            CHECK(!again->impi == !p->impi && (!p->impi || !strcmp(again->impi, p->impi)));
            for (size_t s = 0; s < p->nsp; s++)
                CHECK(again->sps[s].nids == p->sps[s].nids &&
                      again->sps[s].nifc == p->sps[s].nifc);
        }
    }
    ims_profile_unref(again);
    ims_profile_unref(p);
}

static void repos_init(struct ims_sh_repo *r)
{
    memset(r, 0, REPO_CAP * sizeof(*r));
    for (size_t i = 0; i < REPO_CAP; i++)
        ims_buf_init(&r[i].data, REPO_DATA_MAX);
}

static void repos_free(struct ims_sh_repo *r)
{
    for (size_t i = 0; i < REPO_CAP; i++)
        ims_buf_free(&r[i].data);
}

static void sh_data(ims_str doc)
{
    static struct ims_sh_repo r[REPO_CAP], back[REPO_CAP];
    size_t n = 0, m = 0;
    repos_init(r);
    int rc = ims_sh_parse_repository(doc, r, REPO_CAP, &n);
    CHECK(rc == 0 || rc == IMS_EPROTO || rc == IMS_ELIMIT || rc == IMS_ENOMEM);
    CHECK(n <= REPO_CAP);
    if (rc == 0) {
        struct ims_buf again;
        ims_buf_init(&again, 8u * REPO_DATA_MAX);
        int wrc = ims_buf_add_cstr(&again, "<Sh-Data>");
        for (size_t i = 0; wrc == 0 && i < n; i++) {
            CHECK(r[i].si[0] && strnlen(r[i].si, sizeof(r[i].si)) < sizeof(r[i].si));
            CHECK(r[i].seq <= 65535);
            CHECK(r[i].has_data || r[i].data.len == 0);
            wrc = ims_buf_add_cstr(&again, "<RepositoryData><ServiceIndication>");
            if (wrc == 0)
                wrc = ims_xml_escape(&again, ims_str_cstr(r[i].si)); /* text: may hold & < > */
            if (wrc == 0)
                wrc = ims_buf_printf(&again, "</ServiceIndication><SequenceNumber>%u"
                                             "</SequenceNumber>", r[i].seq);
            if (wrc == 0 && r[i].has_data)
                wrc = ims_buf_printf(&again, "<ServiceData>%.*s</ServiceData>",
                                     (int)r[i].data.len, r[i].data.len ? r[i].data.p : "");
            if (wrc == 0)
                wrc = ims_buf_add_cstr(&again, "</RepositoryData>");
        }
        if (wrc == 0)
            wrc = ims_buf_add_cstr(&again, "</Sh-Data>");
        repos_init(back);
        int brc = wrc ? IMS_ENOMEM : ims_sh_parse_repository(ims_buf_str(&again), back,
                                                             REPO_CAP, &m);
        CHECK(brc == 0 || brc == IMS_ENOMEM || brc == IMS_ELIMIT);
        if (brc == 0) {
            CHECK(m == n);
            for (size_t i = 0; i < n; i++) {
                CHECK(strcmp(back[i].si, r[i].si) == 0 && back[i].seq == r[i].seq);
                CHECK(back[i].has_data == r[i].has_data);
                CHECK(ims_str_eq(ims_buf_str(&back[i].data), ims_buf_str(&r[i].data)));
            }
        }
        repos_free(back);
        ims_buf_free(&again);
    }
    repos_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode;
    const char *rest;
    size_t len;
    fuzz_quiet();
    ims_xml_init(); /* as the S-CSCF and the HSS do: libxml2 prints nothing */
    if (!fuzz_mode(data, size, &mode, &rest, &len) || len == 0)
        return 0;
    if (mode % 2 == 0)
        user_data(ims_str_make(rest, len));
    else
        sh_data(ims_str_make(rest, len));
    return 0;
}
