/* test_registrar - the binding rules (RFC 3261 §10.3) and the location
 * store: expiry, max contacts, "*", Min-Expires, CSeq order, implicit sets
 * found by any identity, the expiry sweep and the cap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "cscf/registrar.h"
#include "cscf_tests.h"

#define NOW 1800000000LL

static const struct ims_reg_policy POL = { .default_expires = 3600, .min_expires = 60,
                                           .max_expires = 7200, .max_contacts = 2 };

static struct ims_reg *new_reg(void)
{
    struct ims_reg *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    snprintf(r->impu, sizeof(r->impu), "sip:alice@ims.test");
    return r;
}

static struct ims_reg_binding bind(const char *uri, long expires)
{
    return (struct ims_reg_binding){ .uri = ims_str_cstr(uri), .expires = expires, .q = 1000 };
}

static int apply(struct ims_reg *r, const struct ims_reg_binding *b, size_t n, long hdr,
                 uint32_t cseq, int64_t now)
{
    struct ims_reg_req rq = { .b = b, .n = n, .hdr_expires = hdr, .call_id = IMS_S("cid-1"),
                              .cseq = cseq, .path = IMS_S("<sip:term-x@p.test;lr>") };
    unsigned mn = 0;
    return ims_reg_apply(r, &rq, &POL, now, &mn);
}

static void test_apply_basic(void **state)
{
    struct ims_reg *r = new_reg();
    struct ims_reg_binding b = bind("sip:alice@10.0.0.1:5060", -1);
    /* Expires header, else the default */
    assert_int_equal(apply(r, &b, 1, 600, 1, NOW), 0);
    assert_int_equal(r->ncontacts, 1);
    assert_int_equal(r->contacts[0].expires, NOW + 600);
    assert_string_equal(r->contacts[0].path, "<sip:term-x@p.test;lr>");
    assert_string_equal(r->contacts[0].call_id, "cid-1");
    /* the same URI (RFC 3261 §19.1.4 equality: the host's case does not
     * matter) is refreshed */
    struct ims_reg_binding h1 = bind("sip:alice@MYHOST.test:5060", 600);
    assert_int_equal(apply(r, &h1, 1, -1, 2, NOW), 0);
    assert_int_equal(r->ncontacts, 2);
    struct ims_reg_binding h2 = bind("sip:alice@myhost.test:5060", 1200);
    assert_int_equal(apply(r, &h2, 1, -1, 3, NOW), 0);
    assert_int_equal(r->ncontacts, 2);
    h2.expires = 0;
    assert_int_equal(apply(r, &h2, 1, -1, 4, NOW), 0);
    assert_int_equal(r->ncontacts, 1);
    b = bind("sip:alice@10.0.0.1:5060", 900);
    assert_int_equal(apply(r, &b, 1, -1, 5, NOW + 10), 0);
    assert_int_equal(r->ncontacts, 1);
    assert_int_equal(r->contacts[0].expires, NOW + 10 + 900);
    /* longer than max_expires: shortened */
    b.expires = -1;
    assert_int_equal(apply(r, &b, 1, 999999, 6, NOW), 0);
    assert_int_equal(r->contacts[0].expires, NOW + 7200);
    /* no expires anywhere: the default */
    assert_int_equal(apply(r, &b, 1, -1, 7, NOW), 0);
    assert_int_equal(r->contacts[0].expires, NOW + 3600);
    /* expires 0 removes it */
    b.expires = 0;
    assert_int_equal(apply(r, &b, 1, -1, 8, NOW), 0);
    assert_int_equal(r->ncontacts, 0);
    ims_reg_clear(r);
    free(r);
}

/* A terminating request goes to the highest q, then the latest expiry,
 * then the newest registration: two registrations of equal Expires made in
 * one second go to the one made last, and a refresh makes a contact the
 * newest again (the array keeps registration order). */
static void test_pick_newest(void **state)
{
    (void)state;
    struct ims_reg *r = new_reg();
    struct ims_reg_binding a = bind("sip:alice@10.0.0.1:5060", 600);
    struct ims_reg_binding b = bind("sip:alice@10.0.0.2:5060", 600);
    assert_null(ims_reg_contact_pick(r));
    assert_int_equal(apply(r, &a, 1, -1, 1, NOW), 0);
    assert_int_equal(apply(r, &b, 1, -1, 2, NOW), 0);
    assert_string_equal(ims_reg_contact_pick(r)->uri, "sip:alice@10.0.0.2:5060");
    assert_int_equal(apply(r, &a, 1, -1, 3, NOW), 0);
    assert_string_equal(ims_reg_contact_pick(r)->uri, "sip:alice@10.0.0.1:5060");
    /* a later expiry and a higher q still come first */
    struct ims_reg_binding b2 = bind("sip:alice@10.0.0.2:5060", 601);
    assert_int_equal(apply(r, &b2, 1, -1, 4, NOW), 0);
    assert_int_equal(apply(r, &a, 1, -1, 5, NOW), 0);
    assert_string_equal(ims_reg_contact_pick(r)->uri, "sip:alice@10.0.0.2:5060");
    a.q = 900;
    b2.q = 800;
    assert_int_equal(apply(r, &b2, 1, -1, 6, NOW), 0);
    assert_int_equal(apply(r, &a, 1, -1, 7, NOW), 0);
    assert_string_equal(ims_reg_contact_pick(r)->uri, "sip:alice@10.0.0.1:5060");
    /* removing one keeps the order of the others */
    struct ims_reg_binding c = bind("sip:alice@10.0.0.3:5060", 600);
    struct ims_reg_policy pol3 = POL;
    pol3.max_contacts = 3;
    struct ims_reg_req rq = { .b = &c, .n = 1, .hdr_expires = -1, .call_id = IMS_S("cid-1"),
                              .cseq = 8 };
    unsigned mn = 0;
    assert_int_equal(ims_reg_apply(r, &rq, &pol3, NOW, &mn), 0);
    assert_int_equal(r->ncontacts, 3);
    a.expires = 0;
    assert_int_equal(apply(r, &a, 1, -1, 9, NOW), 0);
    assert_int_equal(r->ncontacts, 2);
    assert_string_equal(r->contacts[0].uri, "sip:alice@10.0.0.2:5060");
    assert_string_equal(r->contacts[1].uri, "sip:alice@10.0.0.3:5060");
    ims_reg_clear(r);
    free(r);
}

static bool skip_uri(const struct ims_reg_contact *c, void *ctx)
{
    return strcmp(c->uri, ctx) == 0;
}

/* The sequential search's next contact: the pick order without the ones
 * skipped, NULL when every one is. */
static void test_pick_next(void **state)
{
    (void)state;
    struct ims_reg *r = new_reg();
    struct ims_reg_binding a = bind("sip:alice@10.0.0.1:5060", 600);
    struct ims_reg_binding b = bind("sip:alice@10.0.0.2:5060", 600);
    a.q = 900;
    b.q = 500;
    assert_int_equal(apply(r, &a, 1, -1, 1, NOW), 0);
    assert_int_equal(apply(r, &b, 1, -1, 2, NOW), 0);
    assert_string_equal(ims_reg_contact_pick_next(r, NULL, NULL)->uri, "sip:alice@10.0.0.1:5060");
    assert_string_equal(ims_reg_contact_pick_next(r, skip_uri, "sip:alice@10.0.0.1:5060")->uri,
                        "sip:alice@10.0.0.2:5060");
    assert_string_equal(ims_reg_contact_pick_next(r, skip_uri, "sip:alice@10.0.0.2:5060")->uri,
                        "sip:alice@10.0.0.1:5060");
    r->ncontacts = 1;
    assert_null(ims_reg_contact_pick_next(r, skip_uri, "sip:alice@10.0.0.1:5060"));
    ims_reg_clear(r);
    free(r);
}

static void test_apply_refusals(void **state)
{
    struct ims_reg *r = new_reg();
    struct ims_reg_binding b = bind("sip:alice@10.0.0.1", 600);
    assert_int_equal(apply(r, &b, 1, -1, 5, NOW), 0);
    /* §10.3 step 7: 423 with Min-Expires for too short (but not 0) */
    struct ims_reg_req rq = { .b = &b, .n = 1, .hdr_expires = -1, .call_id = IMS_S("cid-2"),
                              .cseq = 1 };
    b.expires = 30;
    unsigned mn = 0;
    assert_int_equal(ims_reg_apply(r, &rq, &POL, NOW, &mn), 423);
    assert_int_equal(mn, 60);
    /* same Call-ID, CSeq not higher: 500, nothing changed */
    b.expires = 1200;
    assert_int_equal(apply(r, &b, 1, -1, 5, NOW), 500);
    assert_int_equal(r->contacts[0].expires, NOW + 600);
    /* another Call-ID may use a lower CSeq */
    assert_int_equal(ims_reg_apply(r, &rq, &POL, NOW, &mn), 0);
    assert_int_equal(r->contacts[0].expires, NOW + 1200);
    /* "*" only alone and with Expires: 0 */
    struct ims_reg_req star = { .star = true, .hdr_expires = 0, .call_id = IMS_S("cid-3"),
                                .cseq = 1 };
    star.hdr_expires = 10;
    assert_int_equal(ims_reg_apply(r, &star, &POL, NOW, &mn), 400);
    star.hdr_expires = 0;
    star.b = &b;
    star.n = 1;
    assert_int_equal(ims_reg_apply(r, &star, &POL, NOW, &mn), 400);
    star.n = 0;
    assert_int_equal(ims_reg_apply(r, &star, &POL, NOW, &mn), 0);
    assert_int_equal(r->ncontacts, 0);
    ims_reg_clear(r);
    free(r);
}

static void test_max_contacts_and_expiry(void **state)
{
    struct ims_reg *r = new_reg();
    struct ims_reg_binding b[3] = { bind("sip:a@10.0.0.1", 600), bind("sip:a@10.0.0.2", 300),
                                    bind("sip:a@10.0.0.3", 900) };
    assert_int_equal(apply(r, b, 2, -1, 1, NOW), 0);
    assert_int_equal(r->ncontacts, 2);
    /* a third beyond max_contacts = 2 replaces the one expiring first (.2) */
    assert_int_equal(apply(r, &b[2], 1, -1, 2, NOW), 0);
    assert_int_equal(r->ncontacts, 2);
    bool has1 = false, has3 = false;
    for (size_t i = 0; i < r->ncontacts; i++) {
        has1 |= strcmp(r->contacts[i].uri, "sip:a@10.0.0.1") == 0;
        has3 |= strcmp(r->contacts[i].uri, "sip:a@10.0.0.3") == 0;
    }
    assert_true(has1 && has3);
    /* expiry: .1 goes at NOW + 600, .3 at NOW + 900 */
    assert_int_equal(ims_reg_expire_contacts(r, NOW + 599), 2);
    assert_int_equal(ims_reg_expire_contacts(r, NOW + 600), 1);
    assert_string_equal(r->contacts[0].uri, "sip:a@10.0.0.3");
    assert_int_equal(ims_reg_expire_contacts(r, NOW + 900), 0);
    ims_reg_clear(r);
    free(r);
}

/* RFC 5626 §6: the same +sip.instance replaces the binding whatever its URI */
static void test_instance(void **state)
{
    struct ims_reg *r = new_reg();
    struct ims_reg_binding b = bind("sip:a@10.0.0.1:5060", 600);
    b.instance = IMS_S("\"<urn:uuid:1>\"");
    assert_int_equal(apply(r, &b, 1, -1, 1, NOW), 0);
    b.uri = IMS_S("sip:a@10.9.9.9:5062");
    assert_int_equal(apply(r, &b, 1, -1, 2, NOW), 0);
    assert_int_equal(r->ncontacts, 1);
    assert_string_equal(r->contacts[0].uri, "sip:a@10.9.9.9:5062");
    ims_reg_clear(r);
    free(r);
}

/* RFC 5626 §6: with a reg-id the binding is keyed by (instance, reg-id):
 * one UA's flows live side by side, each refreshed or removed alone; the
 * instance's binding without a reg-id is another one (RFC 5627) */
static void test_outbound_flows(void **state)
{
    static const struct ims_reg_policy pol4 = { .default_expires = 3600, .min_expires = 60,
                                                .max_expires = 7200, .max_contacts = 4 };
    struct ims_reg *r = new_reg();
    struct ims_reg_req rq = { .n = 1, .hdr_expires = -1, .call_id = IMS_S("cid-1") };
    struct ims_reg_binding b = bind("sip:a@10.0.0.1:5060;ob", 600);
    b.instance = IMS_S("<urn:uuid:1>");
    b.reg_id = 1;
    rq.b = &b;
    rq.cseq = 1;
    assert_int_equal(ims_reg_apply(r, &rq, &pol4, NOW, NULL), 0);
    /* a second flow of the same instance, another reg-id: both kept */
    struct ims_reg_binding b2 = b;
    b2.uri = IMS_S("sip:a@10.0.0.2:5070;transport=tcp;ob");
    b2.reg_id = 2;
    rq.b = &b2;
    rq.call_id = IMS_S("cid-2");
    assert_int_equal(ims_reg_apply(r, &rq, &pol4, NOW + 1, NULL), 0);
    assert_int_equal(r->ncontacts, 2);
    assert_int_equal(r->contacts[0].reg_id, 1);
    assert_int_equal(r->contacts[1].reg_id, 2);
    /* flow 1 again from a new address (its connection was rebuilt): the
     * binding is replaced, not added, whatever its URI */
    b.uri = IMS_S("sip:a@10.0.0.3:5062;ob");
    rq.b = &b;
    rq.call_id = IMS_S("cid-1");
    rq.cseq = 2;
    assert_int_equal(ims_reg_apply(r, &rq, &pol4, NOW + 2, NULL), 0);
    assert_int_equal(r->ncontacts, 2);
    assert_int_equal(r->contacts[1].reg_id, 1); /* refreshed: now the newest */
    assert_string_equal(r->contacts[1].uri, "sip:a@10.0.0.3:5062;ob");
    /* the same instance without a reg-id is a third binding */
    struct ims_reg_binding plain = b;
    plain.reg_id = 0;
    plain.uri = IMS_S("sip:a@10.0.0.4");
    rq.b = &plain;
    rq.call_id = IMS_S("cid-3");
    assert_int_equal(ims_reg_apply(r, &rq, &pol4, NOW + 3, NULL), 0);
    assert_int_equal(r->ncontacts, 3);
    /* a reg-id on a binding without an instance is not a flow key */
    struct ims_reg_binding noinst = bind("sip:a@10.0.0.5", 600);
    noinst.reg_id = 9;
    rq.b = &noinst;
    rq.call_id = IMS_S("cid-4");
    assert_int_equal(ims_reg_apply(r, &rq, &pol4, NOW + 3, NULL), 0);
    assert_int_equal(r->contacts[3].reg_id, 0);
    /* expires 0 on flow 2 removes flow 2 only */
    b2.expires = 0;
    rq.b = &b2;
    rq.call_id = IMS_S("cid-2");
    rq.cseq = 3;
    assert_int_equal(ims_reg_apply(r, &rq, &pol4, NOW + 4, NULL), 0);
    assert_int_equal(r->ncontacts, 3);
    for (size_t i = 0; i < r->ncontacts; i++)
        assert_int_not_equal(r->contacts[i].reg_id, 2);
    ims_reg_clear(r);
    free(r);
}

/* RFC 5626 §5.3: after a 430, the next flow of the same instance */
static void test_flow_pick(void **state)
{
    struct ims_reg *r = new_reg();
    static const struct {
        const char *inst;
        uint32_t reg_id;
        int64_t exp;
        unsigned q;
    } k[] = { { "<urn:uuid:1>", 1, 600, 1000 },
              { "<urn:uuid:1>", 2, 600, 1000 },
              { "<urn:uuid:1>", 0, 900, 1000 },
              { "<urn:uuid:2>", 1, 900, 1000 },
              { "<urn:uuid:1>", 3, 900, 100 } };
    for (size_t i = 0; i < 5; i++) {
        struct ims_reg_contact *c = &r->contacts[r->ncontacts++];
        snprintf(c->uri, sizeof(c->uri), "sip:a@10.0.0.%zu", i + 1);
        snprintf(c->instance, sizeof(c->instance), "%s", k[i].inst);
        c->reg_id = k[i].reg_id;
        c->expires = NOW + k[i].exp;
        c->q = k[i].q;
    }
    /* equal q and expiry: the later registered (flow 2) first; then 1, then
     * the low-q 3; never the plain binding or the other instance */
    uint32_t skip[4] = { 0 };
    const struct ims_reg_contact *c = ims_reg_flow_pick(r, "<urn:uuid:1>", skip, 0);
    assert_non_null(c);
    assert_int_equal(c->reg_id, 2);
    skip[0] = 2;
    c = ims_reg_flow_pick(r, "<urn:uuid:1>", skip, 1);
    assert_non_null(c);
    assert_int_equal(c->reg_id, 1);
    skip[1] = 1;
    c = ims_reg_flow_pick(r, "<urn:uuid:1>", skip, 2);
    assert_non_null(c);
    assert_int_equal(c->reg_id, 3);
    skip[2] = 3;
    assert_null(ims_reg_flow_pick(r, "<urn:uuid:1>", skip, 3));
    assert_null(ims_reg_flow_pick(r, "", skip, 0));
    c = ims_reg_flow_pick(r, "<urn:uuid:2>", skip, 3); /* reg-id 1 skipped was uuid:1's */
    assert_null(c);
    c = ims_reg_flow_pick(r, "<urn:uuid:2>", NULL, 0);
    assert_non_null(c);
    assert_string_equal(c->uri, "sip:a@10.0.0.4");
    ims_reg_clear(r);
    free(r);
}

/* ---- the store ---- */

struct setup_ctx {
    const char *impi;
    const char *const *impus;
    size_t n;
    const struct ims_reg_binding *b;
    size_t nb;
    uint32_t cseq;
};

static int set_fn(struct ims_reg *r, void *ctx)
{
    struct setup_ctx *c = ctx;
    struct ims_reg_req rq = { .b = c->b, .n = c->nb, .hdr_expires = -1,
                              .call_id = IMS_S("cid-s"), .cseq = c->cseq };
    int st = ims_reg_apply(r, &rq, &POL, NOW, NULL);
    if (st)
        return IMS_EINVAL;
    snprintf(r->impi, sizeof(r->impi), "%s", c->impi);
    r->nimpu = 0;
    for (size_t i = 0; i < c->n; i++)
        snprintf(r->impus[r->nimpu++], IMS_REG_ID_MAX, "%s", c->impus[i]);
    return 0;
}

static void test_store_aliases(void **state)
{
    struct ims_loc *l = NULL;
    struct ims_reg *scratch = calloc(1, sizeof(*scratch)), *out = calloc(1, sizeof(*out));
    assert_int_equal(ims_loc_new(16, 4, &l), 0);
    static const char *const set[] = { "sip:alice@ims.test", "tel:+15550001" };
    struct ims_reg_binding b = bind("sip:alice@10.0.0.1", 600);
    struct setup_ctx c = { "alice@ims.test", set, 2, &b, 1, 1 };
    assert_int_equal(ims_loc_update(l, IMS_S("sip:alice@ims.test"), NOW, scratch, set_fn, &c), 0);
    assert_int_equal(ims_loc_count(l), 2); /* the registration and one alias */
    /* found by either identity, keyed by the one registered */
    assert_int_equal(ims_loc_get(l, IMS_S("tel:+15550001"), NOW, out), 0);
    assert_string_equal(out->impu, "sip:alice@ims.test");
    assert_string_equal(out->impi, "alice@ims.test");
    assert_int_equal(out->ncontacts, 1);
    assert_int_equal(out->nimpu, 2);
    ims_reg_clear(out);
    /* an update through the alias changes the same registration */
    struct ims_reg_binding b2 = bind("sip:alice@10.0.0.2", 300);
    c.b = &b2;
    c.cseq = 2;
    assert_int_equal(ims_loc_update(l, IMS_S("tel:+15550001"), NOW, scratch, set_fn, &c), 0);
    assert_int_equal(ims_loc_get(l, IMS_S("sip:alice@ims.test"), NOW, out), 0);
    assert_int_equal(out->ncontacts, 2);
    ims_reg_clear(out);
    /* expired contacts are not returned; all expired: not registered */
    assert_int_equal(ims_loc_get(l, IMS_S("sip:alice@ims.test"), NOW + 400, out), 0);
    assert_int_equal(out->ncontacts, 1);
    ims_reg_clear(out);
    assert_int_equal(ims_loc_get(l, IMS_S("sip:alice@ims.test"), NOW + 700, out), IMS_ENOENT);
    assert_int_equal(ims_loc_get(l, IMS_S("sip:nobody@ims.test"), NOW, out), IMS_ENOENT);
    /* removal takes the aliases */
    assert_int_equal(ims_loc_remove(l, IMS_S("tel:+15550001")), 0);
    assert_int_equal(ims_loc_count(l), 0);
    assert_int_equal(ims_loc_remove(l, IMS_S("tel:+15550001")), IMS_ENOENT);
    ims_loc_free(l);
    free(scratch);
    free(out);
}

/* ims_loc_profile: the registration's profile by its key or an alias, as
 * a new reference; NULL for none and for an unknown identity. */
static const char prof_doc[] =
    "<?xml version=\"1.0\"?><IMSSubscription><PrivateID>alice@ims.test</PrivateID>"
    "<ServiceProfile><PublicIdentity><Identity>sip:alice@ims.test</Identity>"
    "</PublicIdentity></ServiceProfile></IMSSubscription>";

struct prof_set {
    struct setup_ctx c;
    struct ims_profile *p;
};

static int prof_set_fn(struct ims_reg *r, void *ctx)
{
    struct prof_set *x = ctx;
    int rc = set_fn(r, &x->c);
    if (rc == 0 && r->profile != x->p) {
        ims_profile_unref(r->profile);
        r->profile = ims_profile_ref(x->p);
    }
    return rc;
}

static void test_store_profile(void **state)
{
    struct ims_loc *l = NULL;
    struct ims_reg *scratch = calloc(1, sizeof(*scratch));
    assert_int_equal(ims_loc_new(16, 4, &l), 0);
    static const char *const set[] = { "sip:alice@ims.test", "tel:+15550001" };
    struct ims_reg_binding b = bind("sip:alice@10.0.0.1", 600);
    struct prof_set x = { { "alice@ims.test", set, 2, &b, 1, 1 }, NULL };
    assert_int_equal(ims_loc_update(l, IMS_S("sip:alice@ims.test"), NOW, scratch, prof_set_fn, &x),
                     0);
    assert_null(ims_loc_profile(l, IMS_S("sip:alice@ims.test"))); /* none yet */
    assert_int_equal(ims_profile_parse(IMS_S(prof_doc), &x.p), 0);
    x.c.cseq = 2;
    assert_int_equal(ims_loc_update(l, IMS_S("sip:alice@ims.test"), NOW, scratch, prof_set_fn, &x),
                     0);
    struct ims_profile *a = ims_loc_profile(l, IMS_S("sip:alice@ims.test"));
    struct ims_profile *t = ims_loc_profile(l, IMS_S("tel:+15550001")); /* the alias */
    assert_ptr_equal(a, x.p);
    assert_ptr_equal(t, x.p);
    assert_true(ims_profile_same_source(a, IMS_S(prof_doc)));
    assert_null(ims_loc_profile(l, IMS_S("sip:nobody@ims.test")));
    /* the references are the caller's: the registration keeps its own */
    ims_profile_unref(a);
    ims_profile_unref(t);
    ims_profile_unref(x.p);
    assert_int_equal(ims_loc_remove(l, IMS_S("sip:alice@ims.test")), 0);
    assert_null(ims_loc_profile(l, IMS_S("sip:alice@ims.test")));
    ims_loc_free(l);
    free(scratch);
}

struct gone_log {
    int n;
    char impu[64], impi[64];
};

static void gone_cb(const char *impu, const char *impi, void *ctx)
{
    struct gone_log *g = ctx;
    g->n++;
    snprintf(g->impu, sizeof(g->impu), "%s", impu);
    snprintf(g->impi, sizeof(g->impi), "%s", impi);
}

static void test_store_sweep(void **state)
{
    struct ims_loc *l = NULL;
    struct ims_reg *scratch = calloc(1, sizeof(*scratch));
    assert_int_equal(ims_loc_new(16, 4, &l), 0);
    static const char *const set[] = { "sip:bob@ims.test", "sip:bob2@ims.test" };
    struct ims_reg_binding b[2] = { bind("sip:bob@10.0.0.1", 100), bind("sip:bob@10.0.0.2", 200) };
    struct setup_ctx c = { "bob@ims.test", set, 2, b, 2, 1 };
    assert_int_equal(ims_loc_update(l, IMS_S("sip:bob@ims.test"), NOW, scratch, set_fn, &c), 0);
    struct gone_log g = { 0 };
    /* two workers share the shards: together they see everything */
    assert_int_equal(ims_loc_expire(l, 0, 2, NOW + 150, gone_cb, &g) +
                         ims_loc_expire(l, 1, 2, NOW + 150, gone_cb, &g),
                     0);
    assert_int_equal(ims_loc_count(l), 2);
    /* the one left expires at NOW + 200: not a second before */
    assert_int_equal(ims_loc_expire(l, 0, 1, NOW + 199, gone_cb, &g), 0);
    assert_int_equal(ims_loc_count(l), 2);
    /* a refresh that shortens it (to NOW + 160) counts at once, although
     * the record was swept (and its earliest expiry noted) before */
    struct ims_reg_binding shorter = bind("sip:bob@10.0.0.2", 160);
    struct setup_ctx c2 = { "bob@ims.test", set, 2, &shorter, 1, 2 };
    assert_int_equal(ims_loc_update(l, IMS_S("sip:bob@ims.test"), NOW, scratch, set_fn, &c2), 0);
    assert_int_equal(ims_loc_expire(l, 0, 1, NOW + 159, gone_cb, &g), 0);
    size_t n = ims_loc_expire(l, 0, 2, NOW + 160, gone_cb, &g) +
               ims_loc_expire(l, 1, 2, NOW + 160, gone_cb, &g);
    assert_int_equal(n, 1);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.impu, "sip:bob@ims.test");
    assert_string_equal(g.impi, "bob@ims.test");
    assert_int_equal(ims_loc_count(l), 0); /* the alias went too */
    ims_loc_free(l);
    free(scratch);
}

static void test_store_cap(void **state)
{
    struct ims_loc *l = NULL;
    struct ims_reg *scratch = calloc(1, sizeof(*scratch));
    assert_int_equal(ims_loc_new(2, 1, &l), 0);
    struct ims_reg_binding b = bind("sip:x@10.0.0.1", 600);
    char id[3][32];
    for (int i = 0; i < 3; i++) {
        snprintf(id[i], sizeof(id[i]), "sip:u%d@ims.test", i);
        const char *set[] = { id[i] };
        struct setup_ctx c = { "u@ims.test", set, 1, &b, 1, 1 };
        assert_int_equal(ims_loc_update(l, ims_str_cstr(id[i]), NOW, scratch, set_fn, &c),
                         i < 2 ? 0 : IMS_ELIMIT);
    }
    /* an update of one that exists still works when full */
    const char *set[] = { id[0] };
    struct setup_ctx c = { "u@ims.test", set, 1, &b, 1, 2 };
    assert_int_equal(ims_loc_update(l, ims_str_cstr(id[0]), NOW, scratch, set_fn, &c), 0);
    /* a callback error changes nothing */
    c.cseq = 1; /* lower CSeq, same Call-ID: refused */
    assert_int_equal(ims_loc_update(l, ims_str_cstr(id[0]), NOW, scratch, set_fn, &c), IMS_EINVAL);
    assert_int_equal(ims_loc_count(l), 2);
    ims_loc_free(l);
    free(scratch);
}

/* Every field of a registration survives the store's compact form, at the
 * longest sizes struct ims_reg holds, and a sweep that drops one contact
 * keeps the other's fields. */
struct full_ctx {
    char impi[IMS_REG_ID_MAX], sr[IMS_REG_ROUTE_MAX], path[IMS_REG_PATH_MAX];
    char uri[2][IMS_REG_URI_MAX], inst[IMS_REG_INSTANCE_MAX], cid[IMS_REG_CALLID_MAX];
};

static void fill(char *dst, size_t cap, const char *prefix, char ch)
{
    size_t n = strlen(prefix);
    memcpy(dst, prefix, n);
    memset(dst + n, ch, cap - 1 - n);
    dst[cap - 1] = '\0';
}

static int full_fn(struct ims_reg *r, void *ctx)
{
    struct full_ctx *f = ctx;
    snprintf(r->impi, sizeof(r->impi), "%s", f->impi);
    snprintf(r->service_route, sizeof(r->service_route), "%s", f->sr);
    r->nimpu = 3;
    snprintf(r->impus[0], IMS_REG_ID_MAX, "%s", r->impu);
    snprintf(r->impus[1], IMS_REG_ID_MAX, "tel:+15550002");
    snprintf(r->impus[2], IMS_REG_ID_MAX, "sip:carol-barred@ims.test");
    r->barred[0] = r->barred[1] = false;
    r->barred[2] = true;
    r->ncontacts = 2;
    for (int i = 0; i < 2; i++) {
        struct ims_reg_contact *c = &r->contacts[i];
        memset(c, 0, sizeof(*c));
        snprintf(c->uri, sizeof(c->uri), "%s", f->uri[i]);
        snprintf(c->path, sizeof(c->path), "%s", i ? "" : f->path);
        snprintf(c->call_id, sizeof(c->call_id), "%s", f->cid);
        snprintf(c->instance, sizeof(c->instance), "%s", i ? f->inst : "");
        c->cseq = 7u + (uint32_t)i;
        c->q = i ? 500 : 1000;
        c->expires = NOW + (i ? 900 : 100);
    }
    r->registered_at = NOW - 5;
    return 0;
}

static void test_store_round_trip(void **state)
{
    struct ims_loc *l = NULL;
    struct ims_reg *scratch = calloc(1, sizeof(*scratch)), *out = calloc(1, sizeof(*out));
    struct full_ctx *f = calloc(1, sizeof(*f));
    fill(f->impi, sizeof(f->impi), "carol@", 'i');
    fill(f->sr, sizeof(f->sr), "<sip:orig@s.test;lr>", 's');
    fill(f->path, sizeof(f->path), "<sip:term-", 'p');
    fill(f->uri[0], sizeof(f->uri[0]), "sip:carol@10.0.0.1;x=", 'u');
    fill(f->uri[1], sizeof(f->uri[1]), "sip:carol@10.0.0.2;y=", 'v');
    fill(f->inst, sizeof(f->inst), "\"<urn:uuid:", '9');
    fill(f->cid, sizeof(f->cid), "cid-", 'c');
    assert_int_equal(ims_loc_new(16, 4, &l), 0);
    /* the registration is keyed by impus[0] = the IMPU updated */
    assert_int_equal(ims_loc_update(l, IMS_S("sip:carol@ims.test"), NOW, scratch, full_fn, f), 0);
    assert_int_equal(ims_loc_count(l), 3);
    assert_int_equal(ims_loc_get(l, IMS_S("tel:+15550002"), NOW, out), 0);
    assert_string_equal(out->impu, "sip:carol@ims.test");
    assert_string_equal(out->impi, f->impi);
    assert_string_equal(out->service_route, f->sr);
    assert_int_equal(out->nimpu, 3);
    assert_string_equal(out->impus[0], "sip:carol@ims.test");
    assert_string_equal(out->impus[2], "sip:carol-barred@ims.test");
    assert_false(out->barred[0] || out->barred[1]);
    assert_true(out->barred[2]);
    assert_int_equal(out->registered_at, NOW - 5);
    assert_int_equal(out->ncontacts, 2);
    for (int i = 0; i < 2; i++) {
        const struct ims_reg_contact *c = &out->contacts[i];
        assert_string_equal(c->uri, f->uri[i]);
        assert_string_equal(c->path, i ? "" : f->path);
        assert_string_equal(c->call_id, f->cid);
        assert_string_equal(c->instance, i ? f->inst : "");
        assert_int_equal(c->cseq, 7 + i);
        assert_int_equal(c->q, i ? 500 : 1000);
        assert_int_equal(c->expires, NOW + (i ? 900 : 100));
    }
    ims_reg_clear(out);
    /* the sweep drops the first contact and keeps the second as it was */
    assert_int_equal(ims_loc_expire(l, 0, 1, NOW + 200, NULL, NULL), 0);
    assert_int_equal(ims_loc_get(l, IMS_S("sip:carol-barred@ims.test"), NOW, out), 0);
    assert_int_equal(out->ncontacts, 1);
    assert_string_equal(out->contacts[0].uri, f->uri[1]);
    assert_string_equal(out->contacts[0].instance, f->inst);
    assert_int_equal(out->contacts[0].q, 500);
    assert_int_equal(out->nimpu, 3);
    assert_true(out->barred[2]);
    ims_reg_clear(out);
    ims_loc_free(l);
    free(f);
    free(scratch);
    free(out);
}

/* The store under allocation failures: every call fails cleanly or works. */
static void test_store_alloc_failures(void **state)
{
    unsigned long n;
    static const char *const set[] = { "sip:alice@ims.test", "tel:+15550001", "sip:a2@ims.test" };
    for (n = 2; n < 4000; n++) {
        struct ims_reg *scratch = calloc(1, sizeof(*scratch)), *out = calloc(1, sizeof(*out));
        struct ims_loc *l = NULL;
        ims_alloc_fail_at(n / 2, (int)(n % 2 == 0));
        if (ims_loc_new(16, 4, &l) == 0) {
            struct ims_reg_binding b = bind("sip:alice@10.0.0.1", 100);
            struct setup_ctx c = { "alice@ims.test", set, 3, &b, 1, 1 };
            ims_loc_update(l, IMS_S("sip:alice@ims.test"), NOW, scratch, set_fn, &c);
            if (ims_loc_get(l, IMS_S("tel:+15550001"), NOW, out) == 0)
                ims_reg_clear(out);
            ims_loc_expire(l, 0, 1, NOW + 200, NULL, NULL);
            ims_loc_update(l, IMS_S("sip:alice@ims.test"), NOW, scratch, set_fn, &c);
            ims_loc_remove(l, IMS_S("sip:a2@ims.test"));
            ims_loc_free(l);
        }
        unsigned long used = ims_alloc_count();
        ims_alloc_fail_at(0, 0);
        free(scratch);
        free(out);
        if (used < n / 2)
            break;
    }
    assert_true(n > 10 && n < 4000);
}

int run_registrar_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply_basic),   cmocka_unit_test(test_apply_refusals),
        cmocka_unit_test(test_max_contacts_and_expiry), cmocka_unit_test(test_instance),
        cmocka_unit_test(test_outbound_flows), cmocka_unit_test(test_flow_pick),
        cmocka_unit_test(test_store_aliases), cmocka_unit_test(test_store_profile),
        cmocka_unit_test(test_store_sweep),
        cmocka_unit_test(test_store_cap),     cmocka_unit_test(test_store_alloc_failures),
        cmocka_unit_test(test_store_round_trip),
        cmocka_unit_test(test_pick_newest),
        cmocka_unit_test(test_pick_next),
    };
    return cmocka_run_group_tests_name("registrar", tests, NULL, NULL);
}
