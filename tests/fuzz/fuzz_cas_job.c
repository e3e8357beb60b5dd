/* fuzz_cas_job.c - libFuzzer harness for the cloud AS's jobs
 * (src/cloudas/cas_job.c): whatever Keystone, Nova, Glance and Neutron
 * answer while a user's command runs (docs/cloud-as.md).
 *
 * The input is a scenario.  Its first byte picks the command (byte % 11,
 * the verbs of enum cas_verb) and 0x80 whether it carries the user's own
 * Bearer token (else the AS gets one from the user's delegation); the
 * second byte: 0x01 a second command after the first (on the token the
 * first cached), 0x02 the first is a subscription's poll instead, 0x04
 * names a flavor and image (else the smallest and the first active), 0x08
 * ICMP and an IPv6 range, 0x10 a build that may take a second.  The rest
 * is the answers, in order, separated by "\n--\n": each is a status line
 * ("201 <X-Subject-Token>" or "200") and a body; one that does not start
 * with three digits is a transport error ('T': a timeout).  When they run
 * out, every request still open times out.
 *
 * Link seams: this file defines ims_http_send/ims_http_cancel
 * (src/http/http.c), cas_send (cloudas.c) and cas_sub_polled/cas_sub_failed
 * (cas_sub.c), so the archive members with the real ones are not linked
 * in: the requests go nowhere, the results come here.
 *
 * Checks: every request has a method, a URL of printable ASCII without
 * spaces, and a JSON body if any; every result MESSAGE goes to the user
 * with the command's Call-ID and the next CSeq, a text of one line and a
 * JSON object that says ok, command, text and final; each command ends
 * with exactly one final result and nothing after it; a poll ends in
 * exactly one of polled (with an array) or failed; no job, timer, request
 * or leak is left.  Built without libFuzzer it is just a function
 * (fuzz_cas_job_replay runs the corpus). */
#define _GNU_SOURCE /* memmem */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "cloudas/cas_int.h"
#include "ev/loop.h"
#include "http/http.h"
#include "policy/policy.h"

#include "fuzz.h"

#define IMPU "sip:alice@ims.test"
#define KEYSTONE "http://127.0.0.1:5000/v3"

/* ---- the scenario being run ---- */

static struct {
    const char *p, *end;        /* answers not given yet */
    bool pending;               /* a request waits for its answer */
    ims_http_cb cb;
    void *arg;
    struct ims_deferred answer;
    struct ims_deferred check;
    struct ims_loop *loop;
    struct cas_worker *w;
    /* results by command (0, 1) */
    const char *call_id[2];
    enum cas_verb verb[2];
    uint32_t cseq[2];
    unsigned finals[2];
    unsigned polled, failed;
    int ingress; /* ingress rules in the last answer, -1: not a rule list */
} sc;

struct ims_http_req {
    int unused;
};
static struct ims_http_req the_req;

static void answer_next(struct ims_loop *loop, void *arg);

int ims_http_send(struct ims_http *h, const struct ims_http_opts *o, ims_http_cb cb, void *arg,
                  struct ims_http_req **out)
{
    (void)h;
    CHECK(!sc.pending); /* one request per job, one job at a time here */
    CHECK(o->method && (!strcmp(o->method, "GET") || !strcmp(o->method, "POST") ||
                        !strcmp(o->method, "DELETE")));
    CHECK(o->url && o->url[0]);
    for (const char *u = o->url; *u; u++)
        CHECK(*u > 0x20 && *u < 0x7f);
    if (o->body) {
        json_t *b = json_loadb(o->body, o->body_len, 0, NULL);
        CHECK(json_is_object(b));
        json_decref(b);
    }
    sc.pending = true;
    sc.cb = cb;
    sc.arg = arg;
    if (out)
        *out = &the_req;
    ims_loop_defer(sc.loop, &sc.answer, answer_next, NULL, NULL);
    return 0;
}

void ims_http_cancel(struct ims_http *h, struct ims_http_req *r)
{
    (void)h;
    CHECK(r == &the_req && sc.pending);
    sc.pending = false;
    ims_loop_defer_cancel(sc.loop, &sc.answer);
}

/* Stops the loop once no job is left (after whatever ended the last one). */
static void check_done(struct ims_loop *loop, void *arg)
{
    (void)arg;
    if (sc.w->njobs == 0) {
        CHECK(!sc.pending);
        ims_loop_stop(loop);
    }
}

static void soon_check(void)
{
    ims_loop_defer_cancel(sc.loop, &sc.check);
    ims_loop_defer(sc.loop, &sc.check, check_done, NULL, NULL);
}

/* The next answer, "\n--\n" ending it; none left: a timeout. */
static void answer_next(struct ims_loop *loop, void *arg)
{
    (void)loop;
    (void)arg;
    if (!sc.pending)
        return;
    sc.pending = false;
    ims_http_cb cb = sc.cb;
    if (sc.p >= sc.end) {
        cb(sc.arg, IMS_ETIMEDOUT, NULL, "timed out");
        soon_check();
        return;
    }
    const char *e = memmem(sc.p, (size_t)(sc.end - sc.p), "\n--\n", 4);
    if (!e)
        e = sc.end;
    const char *s = sc.p;
    size_t n = (size_t)(e - s);
    sc.p = e < sc.end ? e + 4 : sc.end;
    if (n < 3 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] < '0' ||
        s[2] > '9') {
        cb(sc.arg, n && s[0] == 'T' ? IMS_ETIMEDOUT : IMS_EBACKEND, NULL, "connection refused");
        soon_check();
        return;
    }
    /* "NNN[ header]\nbody": NUL-terminated copies, as libcurl's are */
    const char *nl = memchr(s, '\n', n);
    size_t line = nl ? (size_t)(nl - s) : n;
    char *hdr = NULL, *body = ims_alloc(n - line + 1);
    CHECK(body);
    size_t blen = nl ? n - line - 1 : 0;
    memcpy(body, nl ? nl + 1 : "", blen);
    body[blen] = '\0';
    if (line > 4 && s[3] == ' ') {
        hdr = ims_alloc(line - 3);
        CHECK(hdr);
        memcpy(hdr, s + 4, line - 4);
        hdr[line - 4] = '\0';
        if (strlen(hdr) != line - 4) { /* libcurl hands no NUL inside a header */
            ims_free(hdr);
            hdr = NULL;
        }
    }
    /* what a secgroup list must show: every ingress rule, up to the cap */
    json_t *o = json_loadb(body, blen, 0, NULL), *r;
    json_t *rules = json_object_get(o, "security_group_rules");
    size_t i;
    sc.ingress = json_is_array(rules) ? 0 : -1;
    json_array_foreach(rules, i, r)
    {
        const char *dir = json_string_value(json_object_get(r, "direction"));
        sc.ingress += dir && strcmp(dir, "ingress") == 0;
    }
    json_decref(o);
    struct ims_http_rsp rsp = {
        .status = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0'),
        .body = body,
        .len = blen,
        .header = hdr,
    };
    cb(sc.arg, 0, &rsp, NULL);
    ims_free(body);
    ims_free(hdr);
    soon_check();
}

/* ---- where results would go ---- */

void cas_send(struct cas_worker *w, const char *impu, const char *call_id, uint32_t cseq,
              const char *text, const char *json)
{
    CHECK(w == sc.w);
    CHECK(strcmp(impu, IMPU) == 0);
    int k = -1;
    for (int i = 0; i < 2; i++)
        if (sc.call_id[i] && strcmp(call_id, sc.call_id[i]) == 0)
            k = i;
    CHECK(k >= 0);
    CHECK(sc.finals[k] == 0); /* nothing after the final result */
    CHECK(cseq == ++sc.cseq[k]);
    for (const char *t = text; *t; t++) /* one line: nothing can end the text part */
        CHECK((unsigned char)*t >= 0x20 && *t != 0x7f);
    json_t *d = json_loads(json, 0, NULL);
    CHECK(json_is_object(d));
    CHECK(json_is_boolean(json_object_get(d, "ok")));
    CHECK(json_is_boolean(json_object_get(d, "final")));
    const char *cmd = json_string_value(json_object_get(d, "command"));
    CHECK(cmd && strcmp(cmd, cas_verb_name(sc.verb[k])) == 0);
    const char *t = json_string_value(json_object_get(d, "text"));
    CHECK(t && strcmp(t, text) == 0);
    if (sc.verb[k] == CAS_SG_LIST && json_is_true(json_object_get(d, "ok"))) {
        /* "N ingress rules: ..." lists what the document holds, and that
         * is every ingress rule Neutron gave, up to the cap */
        size_t n = json_array_size(json_object_get(d, "rules"));
        CHECK(strtoul(text, NULL, 10) == n);
        CHECK(sc.ingress >= 0 &&
              n == ((size_t)sc.ingress < CAS_LIST_MAX ? (size_t)sc.ingress : CAS_LIST_MAX));
    }
    if (json_is_true(json_object_get(d, "final")))
        sc.finals[k]++;
    json_decref(d);
    soon_check();
}

void cas_sub_polled(struct cas_sub *s, json_t *servers)
{
    CHECK(s == (struct cas_sub *)&sc);
    CHECK(json_is_array(servers));
    sc.polled++;
    soon_check();
}

void cas_sub_failed(struct cas_sub *s, int code, const char *msg)
{
    CHECK(s == (struct cas_sub *)&sc);
    CHECK(code >= 400 && code < 600 && msg);
    sc.failed++;
    soon_check();
}

/* ---- set up once ---- */

static const char policy[] = "\"project_member\": \"role:member and project_id:%(target.project_id)s\"\n"
                             "\"project_reader\": \"role:reader or rule:project_member\"\n"
                             "\"cloud:compute:list\": \"rule:project_reader\"\n"
                             "\"cloud:compute:show\": \"rule:project_reader\"\n"
                             "\"cloud:compute:create\": \"rule:project_member\"\n"
                             "\"cloud:compute:start\": \"rule:project_member\"\n"
                             "\"cloud:compute:stop\": \"rule:project_member\"\n"
                             "\"cloud:compute:delete\": \"rule:project_member\"\n"
                             "\"cloud:secgroup:list\": \"rule:project_reader\"\n"
                             "\"cloud:secgroup:manage\": \"rule:project_member\"\n"
                             "\"cloud:quota:show\": \"rule:project_reader\"\n";

static struct ims_cloudas as;
static struct cas_worker worker;
static struct cas_deleg deleg = { IMPU, "ac-1", "secret" };

static void setup(void)
{
    if (!fuzz_first())
        return;
    char err[256];
    CHECK(ims_policy_load_mem(policy, sizeof(policy) - 1, "policy.yaml", &as.policy, err,
                              sizeof(err)) == 0);
    snprintf(as.service_uri, sizeof(as.service_uri), "sip:cloud@ims.test");
    as.service_user = ims_str_make(as.service_uri + 4, 5);
    as.service_host = ims_str_make(as.service_uri + 10, 8);
    snprintf(as.keystone, sizeof(as.keystone), KEYSTONE);
    as.delegs = &deleg;
    as.ndelegs = 1;
    as.poll_ms = 0; /* polls on the next loop turn: the answers set the pace */
    as.poll_max_ms = 0;
    as.http_timeout_ms = 1000;
    as.max_jobs = 4;
    CHECK(ims_loop_new(64, &worker.loop) == 0);
    worker.as = &as;
    worker.http = (struct ims_http *)&the_req; /* never dereferenced: the seam above */
    sc.loop = worker.loop;
    sc.w = &worker;
}

static void command(uint8_t a, uint8_t b, struct cas_cmd *c)
{
    memset(c, 0, sizeof(*c));
    c->verb = (enum cas_verb)(a % 11);
    snprintf(c->name, sizeof(c->name), "%s",
             c->verb == CAS_SG_DELETE ? "5c3e0a52-rule" : "vm1");
    if (b & 0x04) {
        snprintf(c->flavor, sizeof(c->flavor), "m1.tiny");
        snprintf(c->image, sizeof(c->image), "cirros");
    }
    snprintf(c->proto, sizeof(c->proto), "%s", b & 0x08 ? "icmp" : "tcp");
    c->port_min = b & 0x08 ? 0 : 22;
    c->port_max = b & 0x08 ? 0 : 22;
    snprintf(c->cidr, sizeof(c->cidr), "%s", b & 0x08 ? "2001:db8::/32" : "10.0.0.0/8");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    setup();
    uint8_t a = data[0], b = data[1];
    memset(&sc.call_id, 0, sizeof(sc.call_id));
    memset(sc.cseq, 0, sizeof(sc.cseq));
    memset(sc.finals, 0, sizeof(sc.finals));
    sc.polled = sc.failed = 0;
    sc.ingress = -1;
    sc.pending = false;
    sc.p = (const char *)data + 2;
    sc.end = (const char *)data + size;
    as.build_timeout_s = b & 0x10 ? 1 : 0;

    struct cas_cmd cmd[2];
    command(a, b, &cmd[0]);
    command((uint8_t)(a / 11), b, &cmd[1]);
    static const char bearer[] = "gAAAAABbearer-token";
    ims_str tok = a & 0x80 ? ims_str_make(bearer, sizeof(bearer) - 1) : ims_str_cstr(NULL);
    bool poll = b & 0x02, twice = b & 0x01;
    for (int k = 0; k < (twice ? 2 : 1); k++) {
        struct cas_job *pj = NULL;
        int rc;
        if (k == 0 && poll) {
            rc = cas_job_poll(&worker, IMPU, (struct cas_sub *)&sc, &pj);
        } else {
            sc.call_id[k] = k ? "cmd-2@ue" : "cmd-1@ue";
            sc.verb[k] = cmd[k].verb;
            rc = cas_job_start(&worker, IMPU, ims_str_cstr(sc.call_id[k]), tok, &cmd[k]);
        }
        CHECK(rc == 0);
        CHECK(ims_loop_run(worker.loop) == 0);
        CHECK(worker.njobs == 0 && !sc.pending);
        if (k == 0 && poll)
            CHECK(sc.polled + sc.failed == 1);
        else
            CHECK(sc.finals[k] == 1);
    }
    cas_ident_free_all(&worker);
    CHECK(worker.idents == NULL);
    return 0;
}
