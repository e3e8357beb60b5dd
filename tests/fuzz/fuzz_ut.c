/* fuzz_ut.c - libFuzzer harness for the Ut settings documents (src/ut/ut_doc.c).
 *
 * A Ut PUT body is a user's own bytes (docs/ut.md), and the stored document
 * comes back from the Sh repository, where other writers may have put it.
 * The first byte picks what the rest is: 'D' a stored document
 * (ut_doc_parse), anything else the PUT body of part (byte % 6: all, call
 * forwarding, incoming barring, privacy, devices, project), decoded as
 * ut.c decodes it.  Whatever is accepted must be a valid setting (URIs that
 * parse as sip:, sips: or tel:, a timeout from 5 to 180, a known privacy),
 * must come out of ut_doc_dump with no raw '<', '>' or '&' (the Sh-Data XML
 * embeds the document as is) and back out of ut_doc_parse unchanged, and
 * the JSON of each of its parts must apply back to the same values.  A
 * refusal must say why.  Built without libFuzzer it is just a function
 * (fuzz_ut_replay runs the corpus). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "sip/msg.h"
#include "ut/ut_int.h"

#include "fuzz.h"

static void check_uri(const char *u)
{
    size_t n = strnlen(u, UT_URI_MAX);
    CHECK(n < UT_URI_MAX);
    if (n == 0)
        return;
    struct sip_uri su;
    CHECK(ims_sip_parse_uri(ims_str_make(u, n), &su) == 0);
    CHECK(su.scheme == SIP_URI_SIP || su.scheme == SIP_URI_SIPS || su.scheme == SIP_URI_TEL);
}

static void check_valid(const struct ut_settings *s)
{
    check_uri(s->cfu);
    check_uri(s->cfb);
    check_uri(s->cfnr);
    CHECK(s->cfnr_timeout >= 5 && s->cfnr_timeout <= 180);
    CHECK((unsigned)s->privacy <= UT_PRIV_USER);
}

static bool same_cf(const struct ut_settings *a, const struct ut_settings *b)
{
    return strcmp(a->cfu, b->cfu) == 0 && strcmp(a->cfb, b->cfb) == 0 &&
           strcmp(a->cfnr, b->cfnr) == 0 && a->cfnr_timeout == b->cfnr_timeout;
}

static bool same(const struct ut_settings *a, const struct ut_settings *b, enum ut_part part)
{
    bool cf = same_cf(a, b);
    bool icb = a->icb_all == b->icb_all && a->icb_anonymous == b->icb_anonymous;
    bool priv = a->privacy == b->privacy;
    switch (part) {
    case UT_PART_CF: return cf;
    case UT_PART_ICB: return icb;
    case UT_PART_PRIVACY: return priv;
    default: return cf && icb && priv;
    }
}

/* s was accepted: it is valid, its stored form is XML-safe and reads back
 * the same, and each part's JSON applies back to the same values. */
static void check_accepted(const struct ut_settings *s)
{
    check_valid(s);
    struct ims_buf doc;
    ims_buf_init(&doc, 1 << 16);
    int rc = ut_doc_dump(s, &doc);
    CHECK(rc == 0 || rc == IMS_ELIMIT || rc == IMS_ENOMEM);
    if (rc == 0) {
        CHECK(!memchr(doc.p, '<', doc.len) && !memchr(doc.p, '>', doc.len) &&
              !memchr(doc.p, '&', doc.len));
        struct ut_settings back;
        CHECK(ut_doc_parse(ims_buf_str(&doc), &back) == 0);
        CHECK(same(s, &back, UT_PART_ALL));
    }
    ims_buf_free(&doc);
    static const enum ut_part parts[] = { UT_PART_ALL, UT_PART_CF, UT_PART_ICB, UT_PART_PRIVACY };
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        json_t *j = ut_json_part(s, parts[i]);
        if (!j)
            continue; /* out of memory */
        struct ut_settings t;
        const char *why = NULL;
        ut_settings_default(&t);
        CHECK(ut_json_apply(&t, parts[i], j, &why) == 0);
        CHECK(same(s, &t, parts[i]));
        json_decref(j);
    }
    struct ims_cdiv cd;
    ut_settings_cdiv(s, &cd);
    CHECK(strcmp(cd.cfu, s->cfu) == 0 && cd.icb_all == s->icb_all);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    uint8_t mode;
    const char *text;
    size_t len;
    if (!fuzz_mode(data, size, &mode, &text, &len))
        return 0;
    struct ut_settings s;
    if (mode == 'D') {
        if (ut_doc_parse(ims_str_make(text, len), &s) == 0)
            check_accepted(&s);
        return 0;
    }
    enum ut_part part = (enum ut_part)(mode % 6);
    /* as ut.c decodes a PUT body; NULL (not JSON) must be refused too */
    json_t *body = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    const char *why = NULL;
    ut_settings_default(&s);
    int rc = ut_json_apply(&s, part, body, &why);
    if (rc == 0) {
        CHECK(part <= UT_PART_PRIVACY && body);
        check_accepted(&s);
    } else {
        CHECK(rc == IMS_EPROTO && why && why[0]);
    }
    json_decref(body);
    return 0;
}
