/* Corpus walker (tests/corpus/sip/{ok,bad} + expect.txt), guard pages,
 * every proper prefix in stream mode, and "the parser allocates nothing". */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "sip/build.h"
#include "sip_tests.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* tests/fuzz/fuzz_sip_msg.c */

struct cfile {
    char rel[600]; /* "ok/x.dat" */
    char *data;
    size_t len;
};

struct expect {
    char rel[600];
    char stage[16]; /* parse | validate */
    int status;
    char kind[8];   /* req | resp | none */
    char reason[96];
    bool seen;
};

static struct cfile files[512];
static size_t nfiles;
static struct expect exps[512];
static size_t nexps;

static int cmp_names(const void *a, const void *b)
{
    return strcmp(((const struct cfile *)a)->rel, ((const struct cfile *)b)->rel);
}

static void load_dir(const char *sub)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/sip/%s", corpus_dir(), sub);
    DIR *d = opendir(path);
    if (!d)
        fail_msg("cannot open %s: %s (set IMS_CORPUS)", path, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        assert_true(nfiles < sizeof(files) / sizeof(files[0]));
        struct cfile *f = &files[nfiles];
        snprintf(f->rel, sizeof(f->rel), "%s/%s", sub, e->d_name);
        char fp[1024];
        snprintf(fp, sizeof(fp), "%s/%s", path, e->d_name);
        f->data = read_file(fp, &f->len);
        assert_non_null(f->data);
        nfiles++;
    }
    closedir(d);
}

static void load_expect(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/sip/expect.txt", corpus_dir());
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        char *p = line;
        while (*p == ' ')
            p++;
        if (*p == '#' || *p == '\n' || *p == '\0')
            continue;
        assert_true(nexps < sizeof(exps) / sizeof(exps[0]));
        struct expect *x = &exps[nexps];
        int off = 0;
        /* <file> <stage> <status> <kind> <reason...> */
        char status[8];
        if (sscanf(p, "%599s %15s %7s %7s %n", x->rel, x->stage, status, x->kind, &off) != 4)
            fail_msg("expect.txt: bad line: %s", line);
        x->status = atoi(status);
        snprintf(x->reason, sizeof(x->reason), "%s", p + off);
        x->reason[strcspn(x->reason, "\r\n")] = '\0';
        nexps++;
    }
    fclose(f);
}

static int setup(void **st)
{
    (void)st;
    load_dir("ok");
    load_dir("bad");
    qsort(files, nfiles, sizeof(files[0]), cmp_names);
    load_expect();
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    for (size_t i = 0; i < nfiles; i++)
        free(files[i].data);
    nfiles = nexps = 0;
    return 0;
}

static struct expect *find_expect(const char *rel)
{
    for (size_t i = 0; i < nexps; i++)
        if (strcmp(exps[i].rel, rel) == 0)
            return &exps[i];
    return NULL;
}

static const char *kind_name(enum sip_msg_kind k)
{
    return k == SIP_MSG_REQUEST ? "req" : k == SIP_MSG_RESPONSE ? "resp" : "none";
}

/* ok/: parses as a datagram, passes ims_sip_validate(), and agrees with the
 * stream parser and ims_sip_frame() when it has a Content-Length. */
static void test_ok(void **st)
{
    (void)st;
    size_t n = 0;
    for (size_t i = 0; i < nfiles; i++) {
        struct cfile *f = &files[i];
        if (strncmp(f->rel, "ok/", 3) != 0)
            continue;
        n++;
        struct tmsg t;
        int rc = tmsg_parse(&t, f->data, f->len, false);
        if (rc <= 0)
            fail_msg("%s: rc=%d status=%d reason=%s", f->rel, rc, t.m.err_status,
                     t.m.err_reason ? t.m.err_reason : "");
        assert_true((size_t)rc <= f->len);
        assert_true(t.m.kind != SIP_MSG_NONE);
        if (ims_sip_validate(&t.m) != 0)
            fail_msg("%s: validate: %s", f->rel, t.m.err_reason);
        bool has_cl = t.m.content_length >= 0;
        tmsg_free(&t);
        if (has_cl) {
            int src = tmsg_parse(&t, f->data, (size_t)rc, true);
            if (src != rc)
                fail_msg("%s: stream rc=%d datagram rc=%d", f->rel, src, rc);
            tmsg_free(&t);
            size_t skip;
            int fr = ims_sip_frame(f->data, f->len, SIP_MAX_MSG_DEFAULT, &skip);
            if (fr < 0 || skip + (size_t)fr != (size_t)rc)
                fail_msg("%s: frame=%d skip=%zu parse=%d", f->rel, fr, skip, rc);
        }
    }
    assert_true(n >= 40);
    assert_null(find_expect("ok/wsinv.dat"));
}

/* bad/: every file fails exactly as expect.txt says. */
static void test_bad(void **st)
{
    (void)st;
    size_t n = 0;
    for (size_t i = 0; i < nfiles; i++) {
        struct cfile *f = &files[i];
        if (strncmp(f->rel, "bad/", 4) != 0)
            continue;
        n++;
        struct expect *x = find_expect(f->rel);
        if (!x)
            fail_msg("%s: no line in expect.txt", f->rel);
        x->seen = true;
        struct tmsg t;
        int rc = tmsg_parse(&t, f->data, f->len, false);
        if (strcmp(x->stage, "validate") == 0) {
            if (rc <= 0)
                fail_msg("%s: parse failed (%s) but validate was expected to", f->rel,
                         t.m.err_reason);
            rc = ims_sip_validate(&t.m);
        } else {
            assert_string_equal(x->stage, "parse");
        }
        int want_rc = x->status == 513 ? IMS_ELIMIT : IMS_EPROTO;
        if (rc != want_rc || t.m.err_status != x->status ||
            strcmp(kind_name(t.m.kind), x->kind) != 0 || !t.m.err_reason ||
            strcmp(t.m.err_reason, x->reason) != 0)
            fail_msg("%s: got rc=%d %d %s \"%s\", want %d %s \"%s\"", f->rel, rc, t.m.err_status,
                     kind_name(t.m.kind), t.m.err_reason ? t.m.err_reason : "", x->status, x->kind,
                     x->reason);
        tmsg_free(&t);
    }
    for (size_t i = 0; i < nexps; i++)
        if (!exps[i].seen)
            fail_msg("expect.txt names %s, which is not in bad/", exps[i].rel);
    assert_true(n >= 50);
}

/* Every corpus message flush against a PROT_NONE page, both modes, through
 * the whole fuzz harness (parse, frame, validate, on-demand parsers, builders). */
static void test_guard(void **st)
{
    (void)st;
    for (size_t i = 0; i < nfiles; i++) {
        struct guard_buf g;
        char *p = guard_buf_new(&g, files[i].data, files[i].len);
        assert_non_null(p);
        LLVMFuzzerTestOneInput((const uint8_t *)p, files[i].len);
        /* and with the last byte cut, and the first */
        if (files[i].len > 1) {
            LLVMFuzzerTestOneInput((const uint8_t *)p, files[i].len - 1);
            LLVMFuzzerTestOneInput((const uint8_t *)p + 1, files[i].len - 1);
        }
        guard_buf_free(&g);
    }
}

/* Every proper prefix of a valid message is IMS_EAGAIN in stream mode, for
 * ims_sip_parse() and ims_sip_frame() alike, read flush on a guard page. */
static void test_prefixes(void **st)
{
    (void)st;
    size_t checked = 0;
    for (size_t i = 0; i < nfiles; i++) {
        struct cfile *f = &files[i];
        if (strncmp(f->rel, "ok/", 3) != 0)
            continue;
        struct sip_msg m;
        struct sip_hdr h[SIP_MAX_HEADERS_DEFAULT];
        int n = ims_sip_parse(f->data, f->len, false, &m, h, SIP_MAX_HEADERS_DEFAULT);
        assert_true(n > 0);
        if (m.content_length < 0)
            continue; /* a datagram-only message (RFC 4475 §3.4.1) */
        struct guard_buf g;
        char *p = guard_buf_new(&g, f->data, (size_t)n);
        assert_non_null(p);
        for (size_t k = 0; k < (size_t)n; k++) {
            char *q = p + (size_t)n - k;
            memmove(q, f->data, k);
            int rc = ims_sip_parse(q, k, true, &m, h, SIP_MAX_HEADERS_DEFAULT);
            if (rc != IMS_EAGAIN)
                fail_msg("%s: prefix %zu/%d: rc=%d (%s)", f->rel, k, n, rc,
                         m.err_reason ? m.err_reason : "");
            size_t skip;
            int fr = ims_sip_frame(q, k, SIP_MAX_MSG_DEFAULT, &skip);
            if (fr != IMS_EAGAIN)
                fail_msg("%s: frame prefix %zu/%d: rc=%d", f->rel, k, n, fr);
        }
        memmove(p, f->data, (size_t)n);
        assert_int_equal(ims_sip_parse(p, (size_t)n, true, &m, h, SIP_MAX_HEADERS_DEFAULT), n);
        guard_buf_free(&g);
        checked++;
    }
    assert_true(checked >= 35);
}

/* Scans obj as pointer-sized words: does any point into [lo, lo + n]? */
static bool points_into(const void *obj, size_t size, uintptr_t lo, size_t n)
{
    for (size_t off = 0; off + sizeof(uintptr_t) <= size; off += sizeof(uintptr_t)) {
        uintptr_t w;
        memcpy(&w, (const char *)obj + off, sizeof(w));
        if (w >= lo && w <= lo + n)
            return true;
    }
    return false;
}

/* ims_sip_msg_rebase(): a parse moved onto a copy of its bytes keeps no
 * pointer into the first buffer (a field the move forgets is caught here),
 * and reads like a parse of the copy itself; the first buffer is wiped and
 * freed, so ASan sees any later read of it. */
static void test_rebase(void **st)
{
    (void)st;
    size_t moved = 0;
    for (size_t i = 0; i < nfiles; i++) {
        struct cfile *f = &files[i];
        char *a = malloc(f->len), *b = malloc(f->len);
        assert_true(a && b);
        memcpy(a, f->data, f->len);
        memcpy(b, f->data, f->len);
        struct sip_msg ma, mb;
        static struct sip_hdr ha[SIP_MAX_HEADERS_DEFAULT], hb[SIP_MAX_HEADERS_DEFAULT];
        int na = ims_sip_parse(a, f->len, false, &ma, ha, SIP_MAX_HEADERS_DEFAULT);
        int nb = ims_sip_parse(b, f->len, false, &mb, hb, SIP_MAX_HEADERS_DEFAULT);
        assert_int_equal(na, nb);
        if (na <= 0) { /* only a parse that succeeded may move */
            free(a);
            free(b);
            continue;
        }
        /* the copy holds the message from its start line, as a transaction's does */
        size_t skip = (size_t)(ma.buf - a);
        ims_sip_msg_rebase(&ma, b + skip);
        uintptr_t old = (uintptr_t)a;
        memset(a, 'X', f->len);
        free(a);
        if (points_into(&ma, sizeof(ma), old, f->len) ||
            points_into(ha, ma.nhdrs * sizeof(ha[0]), old, f->len))
            fail_msg("%s: a slice still points at the first buffer", f->rel);
        assert_ptr_equal(ma.buf, mb.buf);
        assert_int_equal(ma.nhdrs, mb.nhdrs);
        assert_memory_equal(ha, hb, ma.nhdrs * sizeof(ha[0]));
        assert_memory_equal(ma.first, mb.first, sizeof(ma.first));
        const ims_str *sa[] = { &ma.start_line, &ma.ruri.host, &ma.ruri.user, &ma.via1.branch,
                                &ma.via1.host,  &ma.from.tag,  &ma.to.uri.raw, &ma.call_id,
                                &ma.cseq.method_name, &ma.body, &ma.reason, &ma.ruri.params };
        const ims_str *sb[] = { &mb.start_line, &mb.ruri.host, &mb.ruri.user, &mb.via1.branch,
                                &mb.via1.host,  &mb.from.tag,  &mb.to.uri.raw, &mb.call_id,
                                &mb.cseq.method_name, &mb.body, &mb.reason, &mb.ruri.params };
        for (size_t k = 0; k < sizeof(sa) / sizeof(sa[0]); k++) {
            assert_int_equal(sa[k]->len, sb[k]->len);
            if (sa[k]->len)
                assert_ptr_equal(sa[k]->p, sb[k]->p);
        }
        free(b);
        moved++;
    }
    if (moved < 45)
        fail_msg("only %zu messages parsed", moved);
}

/* The parser, validate and the on-demand parsers never allocate: with every
 * allocation failing they give the same results, and none was attempted. */
static void test_no_alloc(void **st)
{
    (void)st;
    int before[512];
    for (size_t i = 0; i < nfiles; i++) {
        struct sip_msg m;
        struct sip_hdr h[SIP_MAX_HEADERS_DEFAULT];
        before[i] = ims_sip_parse(files[i].data, files[i].len, false, &m, h, SIP_MAX_HEADERS_DEFAULT);
        if (before[i] > 0)
            before[i] += 1000000 * (ims_sip_validate(&m) != 0);
    }
    ims_alloc_fail_at(1, 1);
    for (size_t i = 0; i < nfiles; i++) {
        struct sip_msg m;
        struct sip_hdr h[SIP_MAX_HEADERS_DEFAULT];
        int rc = ims_sip_parse(files[i].data, files[i].len, false, &m, h, SIP_MAX_HEADERS_DEFAULT);
        if (rc > 0)
            rc += 1000000 * (ims_sip_validate(&m) != 0);
        assert_int_equal(rc, before[i]);
        ims_sip_parse(files[i].data, files[i].len, true, &m, h, SIP_MAX_HEADERS_DEFAULT);
        size_t skip;
        ims_sip_frame(files[i].data, files[i].len, SIP_MAX_MSG_DEFAULT, &skip);
        for (size_t k = 0; k < m.nhdrs; k++) {
            struct sip_nameaddr na;
            struct sip_via v;
            struct sip_auth a;
            ims_sip_parse_nameaddr(m.hdrs[k].value, &na);
            ims_sip_parse_via(m.hdrs[k].value, &v);
            ims_sip_parse_auth(m.hdrs[k].value, &a);
        }
    }
    unsigned long attempts = ims_alloc_count();
    ims_alloc_fail_at(0, 0);
    assert_int_equal(attempts, 0);
}

/* Spot checks of fields in the RFC 4475 messages. */
static struct tmsg *parse_file(struct tmsg *t, const char *rel)
{
    for (size_t i = 0; i < nfiles; i++) {
        if (strcmp(files[i].rel, rel) == 0) {
            assert_true(tmsg_parse(t, files[i].data, files[i].len, false) > 0);
            return t;
        }
    }
    fail_msg("%s missing", rel);
    return NULL;
}

static void test_rfc4475_fields(void **st)
{
    (void)st;
    struct tmsg t;
    parse_file(&t, "ok/wsinv.dat");
    assert_int_equal(t.m.nvia, 3);
    assert_str(t.m.via1.branch, "390skdjuw");
    assert_int_equal(t.m.max_forwards, 68);
    assert_int_equal(t.m.cseq.num, 9);
    assert_str(t.m.to.tag, "1918181833n");
    assert_str(t.m.from.tag, "98asjd8");
    assert_int_equal(t.m.content_length, 150);
    assert_int_equal(t.m.body.len, 150);
    assert_str(t.m.ruri.params, ";unknownparam");
    const struct sip_hdr *s = ims_sip_hdr_first(&t.m, SIP_H_SUBJECT);
    assert_non_null(s);
    assert_int_equal(s->value.len, 0);
    const struct sip_hdr *ct = ims_sip_hdr_first(&t.m, SIP_H_CONTACT);
    struct sip_nameaddr na;
    assert_int_equal(ims_sip_parse_nameaddr(ct->value, &na), 0);
    assert_str(na.display, "Quoted string \\\"\\\"");
    ims_str v;
    assert_int_equal(ims_sip_param_get(na.params, "newparam", &v), 0);
    assert_str(v, "newvalue");
    assert_int_equal(ims_sip_param_get(na.params, "q", &v), 0);
    assert_str(v, "0.33");
    tmsg_free(&t);

    parse_file(&t, "ok/intmeth.dat");
    assert_int_equal(t.m.method, SIP_M_UNKNOWN);
    assert_str(t.m.method_name, "!interesting-Method0123456789_*+`.%indeed'~");
    assert_str(t.m.call_id, "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");
    assert_str(t.m.via1.branch, "z9hG4bK-.!%66*_+`'~");
    assert_int_equal(t.m.to.display.len, strlen("BEL:\\\a NUL:\\") + 1 + strlen(" DEL:\\\x7f"));
    tmsg_free(&t);

    parse_file(&t, "ok/esc02.dat");
    assert_str(t.m.method_name, "RE%47IST%45R");
    size_t contacts = 0;
    for (const struct sip_hdr *h = ims_sip_hdr_first(&t.m, SIP_H_CONTACT); h;
         h = ims_sip_hdr_next(&t.m, h))
        contacts++;
    assert_int_equal(contacts, 2); /* "C%6Fntact" is another header */
    tmsg_free(&t);

    parse_file(&t, "ok/dblreq.dat");
    assert_int_equal(t.m.method, SIP_M_REGISTER);
    assert_int_equal(t.rc, 300);
    tmsg_free(&t);

    parse_file(&t, "ok/transports.dat");
    static const char *const tr[] = { "UDP", "SCTP", "TLS", "UNKNOWN", "TCP" };
    size_t k = 0;
    for (const struct sip_hdr *h = ims_sip_hdr_first(&t.m, SIP_H_VIA); h;
         h = ims_sip_hdr_next(&t.m, h), k++) {
        struct sip_via via;
        assert_int_equal(ims_sip_parse_via(h->value, &via), 0);
        assert_true(ims_str_eq(via.transport, ims_str_cstr(tr[k])));
    }
    assert_int_equal(k, 5);
    tmsg_free(&t);

    parse_file(&t, "ok/inv2543.dat");
    assert_int_equal(t.m.via1.branch.len, 0);
    assert_int_equal(t.m.from.tag.len, 0);
    assert_int_equal(t.m.max_forwards, -1);
    assert_int_equal(t.m.content_length, -1);
    assert_true(ims_str_has_caseprefix(t.m.body, "v=0\r\n"));
    assert_str(t.m.to.params, ";user=phone");
    tmsg_free(&t);

    parse_file(&t, "ok/mpart01.dat");
    assert_int_equal(t.m.body.len, 553);
    tmsg_free(&t);

    parse_file(&t, "ok/unksm2.dat");
    assert_int_equal(t.m.to.uri.scheme, SIP_URI_OTHER);
    assert_str(t.m.to.uri.scheme_name, "isbn");
    assert_str(t.m.from.uri.scheme_name, "http");
    tmsg_free(&t);

    parse_file(&t, "ok/badbranch.dat");
    assert_str(t.m.via1.branch, "z9hG4bK");
    tmsg_free(&t);

    parse_file(&t, "ok/zeromf.dat");
    assert_int_equal(t.m.max_forwards, 0);
    tmsg_free(&t);

    parse_file(&t, "ok/ims-register-aka-auth.sip");
    const struct sip_hdr *au = ims_sip_hdr_first(&t.m, SIP_H_AUTHORIZATION);
    struct sip_auth a;
    assert_int_equal(ims_sip_parse_auth(au->value, &a), 0);
    assert_str(a.algorithm, "AKAv1-MD5");
    assert_str(a.integrity_protected, "yes");
    assert_int_equal(t.m.nvia, 4);
    const struct sip_hdr *pv = ims_sip_hdr_first(&t.m, SIP_H_P_VISITED_NETWORK_ID);
    assert_non_null(pv);
    assert_non_null(ims_sip_hdr_first(&t.m, SIP_H_PATH));
    assert_non_null(ims_sip_hdr_first(&t.m, SIP_H_SECURITY_VERIFY));
    tmsg_free(&t);
}

/* The rewrite on every valid message: no edits gives the same bytes, and a
 * Via pushed by one hop and popped by the next leaves the message as it was
 * (the proxy's request/response path). */
static void test_rewrite_identity(void **st)
{
    (void)st;
    size_t checked = 0;
    struct ims_buf a, b;
    ims_buf_init(&a, 1 << 17);
    ims_buf_init(&b, 1 << 17);
    for (size_t i = 0; i < nfiles; i++) {
        struct cfile *f = &files[i];
        if (strncmp(f->rel, "ok/", 3) != 0)
            continue;
        struct sip_msg m, m2;
        struct sip_hdr h[SIP_MAX_HEADERS_DEFAULT], h2[SIP_MAX_HEADERS_DEFAULT];
        assert_true(ims_sip_parse(f->data, f->len, false, &m, h, SIP_MAX_HEADERS_DEFAULT) > 0);
        ims_str orig = ims_str_make(m.buf, m.len);
        bool crlf_end = m.head_len >= 4 && memcmp(m.buf + m.head_len - 4, "\r\n\r\n", 4) == 0;
        assert_int_equal(ims_sip_rewrite(&a, &m, NULL, 0), 0);
        if (m.content_length >= 0 && crlf_end && !ims_str_eq(ims_buf_str(&a), orig))
            fail_msg("%s: rewrite without edits changed the message", f->rel);
        struct sip_edit push = { SIP_EDIT_INSERT, 0,
                                 IMS_S("Via: SIP/2.0/UDP hop.example.com;branch=z9hG4bKhop\r\n") };
        assert_int_equal(ims_sip_rewrite(&a, &m, &push, 1), 0);
        int rc = ims_sip_parse(a.p, a.len, true, &m2, h2, SIP_MAX_HEADERS_DEFAULT);
        if (rc != (int)a.len)
            fail_msg("%s: pushed message does not parse: %d %s", f->rel, rc, m2.err_reason);
        assert_str(m2.via1.branch, "z9hG4bKhop");
        assert_int_equal(m2.nvia, m.nvia + 1);
        struct sip_edit pop = { SIP_EDIT_POP_VALUE, 0, IMS_STR_NULL };
        assert_int_equal(ims_sip_rewrite(&b, &m2, &pop, 1), 0);
        assert_int_equal(ims_sip_rewrite(&a, &m, NULL, 0), 0);
        if (!ims_str_eq(ims_buf_str(&a), ims_buf_str(&b)))
            fail_msg("%s: push + pop is not the identity", f->rel);
        checked++;
    }
    ims_buf_free(&a);
    ims_buf_free(&b);
    assert_true(checked >= 40);
}

const struct CMUnitTest corpus_tests[] = {
    cmocka_unit_test_setup_teardown(test_rewrite_identity, setup, teardown),
    cmocka_unit_test_setup_teardown(test_ok, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bad, setup, teardown),
    cmocka_unit_test_setup_teardown(test_guard, setup, teardown),
    cmocka_unit_test_setup_teardown(test_prefixes, setup, teardown),
    cmocka_unit_test_setup_teardown(test_rebase, setup, teardown),
    cmocka_unit_test_setup_teardown(test_no_alloc, setup, teardown),
    cmocka_unit_test_setup_teardown(test_rfc4475_fields, setup, teardown),
};
const size_t corpus_ntests = NTESTS(corpus_tests);
