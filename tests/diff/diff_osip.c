/* diff_osip.c - differential test: imscloud's SIP parser against libosip2.
 *
 * Every file of tests/corpus/sip/{ok,bad} is parsed by both (datagram mode).
 * For the messages both accept they must agree on: request or response,
 * method / status code, Request-URI (RFC 3261 §19.1.4 equality of our parse
 * of libosip2's re-serialised URI, or the same bytes), Call-ID, CSeq number
 * and method, From and To tags, and the branch of every Via value (same
 * count, same order).  Messages only one side accepts are counted and
 * listed, not compared: libosip2 is a lenient parser (it accepts most of
 * RFC 4475's invalid messages), so "we reject, libosip2 accepts" is expected
 * for bad/.  Known field divergences are listed in `known` below with the
 * reason; any other disagreement fails the test. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <osipparser2/osip_message.h>
#include <osipparser2/osip_parser.h>
#include <osipparser2/osip_port.h>

#include "base/err.h"
#include "sip/msg.h"

/* file, field: a disagreement we understand and accept */
static const struct {
    const char *file, *field, *why;
} known[] = {
    /* "SIP/2.0 180" with no SP and no reason phrase (we tolerate the missing
     * SP): libosip2 takes the next header line ("Via: ...") as the reason
     * phrase and so loses the Via */
    { "ok/response-no-reason-sp.sip", "via0", "libosip2 eats the next line as reason" },
    { NULL, NULL, NULL },
};

static int n_agree, n_osip_only, n_ims_only, n_neither, n_fail, n_known;

static bool is_known(const char *file, const char *field)
{
    for (size_t i = 0; known[i].file; i++)
        if (strcmp(known[i].file, file) == 0 && strcmp(known[i].field, field) == 0)
            return true;
    return false;
}

static void mismatch(const char *file, const char *field, const char *ours, const char *theirs)
{
    if (is_known(file, field)) {
        n_known++;
        printf("  known   %-28s %-10s ours=[%s] osip=[%s]\n", file, field, ours, theirs);
        return;
    }
    n_fail++;
    printf("  DIFFER  %-28s %-10s ours=[%s] osip=[%s]\n", file, field, ours, theirs);
}

static void cmp_str(const char *file, const char *field, ims_str ours, const char *theirs)
{
    char o[512];
    ims_str_copy(ours, o, sizeof(o));
    const char *t = theirs ? theirs : "";
    if (strlen(t) != ours.len || memcmp(t, ours.p ? ours.p : "", ours.len) != 0)
        mismatch(file, field, o, t);
}

static const char *tag_of(osip_list_t *params)
{
    osip_generic_param_t *p = NULL;
    if (osip_generic_param_get_byname(params, "tag", &p) == 0 && p)
        return p->gvalue ? p->gvalue : "";
    return NULL;
}

static void compare(const char *file, const struct sip_msg *m, osip_message_t *o)
{
    char buf[64];
    bool req = MSG_IS_REQUEST(o);
    if (req != (m->kind == SIP_MSG_REQUEST)) {
        mismatch(file, "kind", m->kind == SIP_MSG_REQUEST ? "request" : "response",
                 req ? "request" : "response");
        return;
    }
    if (req) {
        cmp_str(file, "method", m->method_name, o->sip_method);
        char *u = NULL;
        if (o->req_uri && osip_uri_to_str(o->req_uri, &u) == 0 && u) {
            struct sip_uri theirs;
            bool same = strlen(u) == m->ruri_raw.len && memcmp(u, m->ruri_raw.p, m->ruri_raw.len) == 0;
            if (!same && ims_sip_parse_uri(ims_str_cstr(u), &theirs) == 0)
                same = ims_sip_uri_equal(&m->ruri, &theirs);
            if (!same) {
                char o2[512];
                ims_str_copy(m->ruri_raw, o2, sizeof(o2));
                mismatch(file, "ruri", o2, u);
            }
            osip_free(u);
        } else {
            mismatch(file, "ruri", "(parsed)", "(none)");
        }
    } else {
        snprintf(buf, sizeof(buf), "%d", o->status_code);
        char ours[16];
        snprintf(ours, sizeof(ours), "%d", m->status);
        if (m->status != o->status_code)
            mismatch(file, "status", ours, buf);
    }
    char *cid = NULL;
    if (o->call_id && osip_call_id_to_str(o->call_id, &cid) == 0) {
        cmp_str(file, "call-id", m->call_id, cid);
        osip_free(cid);
    } else {
        mismatch(file, "call-id", "(present)", "(none)");
    }
    if (o->cseq && o->cseq->number) {
        char *end;
        unsigned long n = strtoul(o->cseq->number, &end, 10);
        snprintf(buf, sizeof(buf), "%u", m->cseq.num);
        if (*end || n != m->cseq.num)
            mismatch(file, "cseq-num", buf, o->cseq->number);
        cmp_str(file, "cseq-meth", m->cseq.method_name, o->cseq->method);
    } else {
        mismatch(file, "cseq", "(present)", "(none)");
    }
    const char *ft = o->from ? tag_of(&o->from->gen_params) : NULL;
    const char *tt = o->to ? tag_of(&o->to->gen_params) : NULL;
    cmp_str(file, "from-tag", m->from.tag, ft);
    cmp_str(file, "to-tag", m->to.tag, tt);

    /* every Via value, in order */
    size_t i = 0;
    for (const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_VIA); h; h = ims_sip_hdr_next(m, h)) {
        struct ims_cur c = { h->value.p, h->value.len ? h->value.p + h->value.len : h->value.p };
        ims_str e;
        while (ims_sip_list_next(&c, &e) == 0) {
            struct sip_via v;
            osip_via_t *ov = NULL;
            char field[32];
            snprintf(field, sizeof(field), "via%zu", i);
            if (osip_message_get_via(o, (int)i, &ov) < 0 || !ov) {
                mismatch(file, field, "(present)", "(none)");
                return;
            }
            if (ims_sip_parse_via(e, &v) != 0) {
                mismatch(file, field, "(unparsable)", "(parsed)");
            } else {
                osip_generic_param_t *b = NULL;
                const char *ob = NULL;
                if (osip_via_param_get_byname(ov, "branch", &b) == 0 && b)
                    ob = b->gvalue ? b->gvalue : "";
                cmp_str(file, field, v.branch, ob);
            }
            i++;
        }
    }
    osip_via_t *extra = NULL;
    if (osip_message_get_via(o, (int)i, &extra) >= 0 && extra) {
        snprintf(buf, sizeof(buf), "%zu", m->nvia);
        mismatch(file, "nvia", buf, "more");
    }
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void run_dir(const char *corpus, const char *sub)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/sip/%s", corpus, sub);
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        n_fail++;
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[2048], name[512];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        snprintf(name, sizeof(name), "%s/%s", sub, e->d_name);
        size_t len;
        char *data = slurp(path, &len);
        if (!data) {
            n_fail++;
            continue;
        }
        struct sip_msg m;
        struct sip_hdr h[SIP_MAX_HEADERS_DEFAULT];
        bool ours = ims_sip_parse(data, len, false, &m, h, SIP_MAX_HEADERS_DEFAULT) > 0;
        osip_message_t *o = NULL;
        osip_message_init(&o);
        bool theirs = osip_message_parse(o, data, len) == 0;
        if (ours && theirs) {
            int before = n_fail + n_known;
            compare(name, &m, o);
            if (n_fail + n_known == before)
                n_agree++;
        } else if (ours) {
            n_ims_only++;
            printf("  ims-only  %s (libosip2 rejects)\n", name);
        } else if (theirs) {
            n_osip_only++;
            printf("  osip-only %s (we: %d %s)\n", name, m.err_status, m.err_reason);
        } else {
            n_neither++;
        }
        osip_message_free(o);
        free(data);
    }
    closedir(d);
}

int main(int argc, char **argv)
{
    const char *corpus = argc > 1 ? argv[1] : getenv("IMS_CORPUS");
    if (!corpus) {
        fprintf(stderr, "usage: diff_osip tests/corpus\n");
        return 2;
    }
    parser_init();
    run_dir(corpus, "ok");
    run_dir(corpus, "bad");
    printf("diff_osip: both accept and agree: %d, known divergences: %d, DIFFER: %d\n", n_agree,
           n_known, n_fail);
    printf("diff_osip: only libosip2 accepts: %d, only we accept: %d, both reject: %d\n",
           n_osip_only, n_ims_only, n_neither);
    /* the comparison must have had something to compare */
    return (n_fail == 0 && n_agree >= 30) ? 0 : 1;
}
