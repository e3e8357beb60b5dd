/* test_policy_hooks - the S-CSCF's policy follow-ups (src/cscf/bearer.c,
 * session.c) on a real proxy over the fake transport and clock: a denied
 * originating MESSAGE or SUBSCRIBE gets 403 naming the rule, bumps
 * IMS_M_POLICY_DENIALS and writes a CADF event (reason policy / the rule,
 * target the Request-URI) to the default audit trail; a reload with an
 * allowing file flips the decision; a reload with a bad file keeps the old
 * policy and names file:line.  The same, end to end: tests/e2e/ims/t_policy.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <libxml/parser.h>

#include "audit/audit.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "cfg/cfg.h"
#include "cscf/cscf.h"
#include "cscf/profile.h"
#include "cscf/registrar.h"
#include "ev/loop.h"
#include "fake_tp_net.h"
#include "metrics/metrics.h"
#include "proxy/proxy.h"
#include "sip/build.h"

#define ME_S "192.0.2.1:6060"
#define PCSCF "192.0.2.4:5060"
#define ICSCF "192.0.2.5:5070"

static const char *const self_names[] = { "192.0.2.1" };

/* alice and bob, no iFC */
static const char alice_data[] =
    "<IMSSubscription><PrivateID>alice@ims.test</PrivateID><ServiceProfile>"
    "<PublicIdentity><Identity>sip:alice@ims.test</Identity></PublicIdentity>"
    "</ServiceProfile></IMSSubscription>";

static const char deny_pol[] = "\"member\": \"role:member\"\n"
                               "\"ims:message\": \"role:admin\"\n"
                               "\"ims:subscribe\": \"role:admin\"\n";
static const char allow_pol[] = "\"ims:message\": \"rule:member\"\n"
                                "\"member\": \"role:member\"\n"
                                "\"ims:subscribe\": \"\"\n";
static const char bad_pol[] = "\"ims:message\": \"!\"\n"
                              "\"ims:subscribe\": [\n";

static int fake_cx(void *ctx, unsigned cmd, const void *req, struct dia_ans *a)
{
    (void)ctx;
    (void)cmd;
    (void)req;
    memset(a, 0, sizeof(*a));
    return IMS_ETIMEDOUT; /* no Cx in these tests */
}

static struct {
    char dir[64], pol[96], trail[96], keys[96];
    struct ims_cfg *cfg;
    struct ims_loop *loop;
    struct proxy_shared *sh;
    struct ims_proxy *p;
    struct ims_cscf *c;
    struct ims_audit *audit;
    struct fake_tp tp;
} E;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static void turn(void)
{
    fake_tp_run_posts(E.loop);
    fake_tp_clock_advance(E.loop, 1);
}

static int setup(void **state)
{
    (void)state;
    char err[256], conf[1024];
    memset(&E, 0, sizeof(E));
    snprintf(E.dir, sizeof(E.dir), "/tmp/test_policy_hooks.XXXXXX");
    assert_non_null(mkdtemp(E.dir));
    snprintf(E.pol, sizeof(E.pol), "%s/policy.yaml", E.dir);
    snprintf(E.trail, sizeof(E.trail), "%s/audit.jsonl", E.dir);
    snprintf(E.keys, sizeof(E.keys), "%s/keys", E.dir);
    write_file(E.pol, deny_pol);
    snprintf(conf, sizeof(conf),
             "[core]\nworkers = 1\nroles = scscf\n"
             "[sip]\nlisten = udp:192.0.2.1:6060\n"
             "[scscf]\nports = 6060\nuri = sip:192.0.2.1:6060\nicscf = sip:" ICSCF "\n"
             "policy_file = %s\n"
             "[diameter]\nrealm = ims.test\npeer = hss.test 127.0.0.1:3868\n",
             E.pol);
    assert_int_equal(ims_cfg_load_string("test", conf, &E.cfg, err, sizeof(err)), 0);
    assert_int_equal(ims_loop_new(8192, &E.loop), 0);
    fake_tp_init(&E.tp, E.loop);
    fake_tp_set_local(&E.tp, SIP_PROTO_UDP, ME_S);
    struct proxy_cfg pc = {
        .max_transactions = 64, .self_names = self_names, .nself = 1, .timer_c_ms = 5000
    };
    assert_int_equal(ims_proxy_shared_new(1, &pc, &E.sh), 0);
    assert_int_equal(ims_proxy_new(E.sh, 0, E.loop, NULL, &E.p), 0);
    struct proxy_io io = { fake_tp_send, fake_tp_local, &E.tp, NULL };
    ims_proxy_set_io(E.p, &io);
    assert_int_equal(ims_cscf_new_fake_cx(E.cfg, 1, fake_cx, NULL, &E.c, err, sizeof(err)), 0);
    assert_int_equal(ims_cscf_worker_init(E.c, 0, E.loop, E.p, err, sizeof(err)), 0);
    struct ims_audit_cfg ac = { .file = E.trail, .keys_dir = E.keys, .create_keys = true,
                                .key_id = IMS_AUDIT_KEY_PRIMARY };
    assert_int_equal(ims_audit_open(&ac, &E.audit, err, sizeof(err)), 0);
    ims_audit_set_default(E.audit);
    ims_metrics_reset();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 80; i++) { /* past Timer F (32 s): unanswered MESSAGEs end */
        fake_tp_clock_advance(E.loop, 500);
        turn();
    }
    ims_audit_set_default(NULL);
    ims_audit_close(E.audit);
    ims_cscf_stop(E.c);
    size_t leaked = ims_proxy_free(E.p);
    ims_proxy_shared_free(E.sh);
    fake_tp_free(&E.tp);
    ims_loop_free(E.loop);
    assert_int_equal(ims_cscf_free(E.c), 0);
    ims_cfg_free(E.cfg);
    assert_int_equal(leaked, 0);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", E.dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

struct put {
    struct ims_profile *prof;
};

static int put_fn(struct ims_reg *r, void *ctx)
{
    struct put *x = ctx;
    int64_t now = (int64_t)time(NULL);
    snprintf(r->impi, sizeof(r->impi), "%s", x->prof->impi);
    r->nimpu = 0;
    snprintf(r->impus[r->nimpu++], IMS_REG_ID_MAX, "%s", r->impu);
    r->ncontacts = 1;
    struct ims_reg_contact *c = &r->contacts[0];
    memset(c, 0, sizeof(*c));
    snprintf(c->uri, sizeof(c->uri), "sip:ue@10.0.0.9:5099");
    snprintf(c->path, sizeof(c->path), "<sip:term-abc@" PCSCF ";lr>");
    c->expires = now + 600;
    c->q = 1000;
    ims_profile_unref(r->profile);
    r->profile = ims_profile_ref(x->prof);
    r->registered_at = now;
    return 0;
}

static void put_alice(void)
{
    struct put x = { NULL };
    assert_int_equal(ims_profile_parse(ims_str_cstr(alice_data), &x.prof), 0);
    struct ims_reg *scratch = ims_calloc(1, sizeof(*scratch));
    assert_non_null(scratch);
    assert_int_equal(ims_loc_update(ims_cscf_loc(E.c), IMS_S("sip:alice@ims.test"),
                                    (int64_t)time(NULL), scratch, put_fn, &x),
                     0);
    ims_free(scratch);
    ims_profile_unref(x.prof);
}

/* An originating request of alice as the P-CSCF sends it (Service-Route,
 * PAI), the UE's own Via at the bottom. */
static void orig(const char *method, const char *branch, const char *extra)
{
    char buf[2048];
    snprintf(buf, sizeof(buf),
             "%s sip:bob@ims.test SIP/2.0\r\n"
             "Via: SIP/2.0/UDP " PCSCF ";branch=z9hG4bK%s\r\n"
             "Via: SIP/2.0/UDP 10.0.0.9:5099;branch=z9hG4bKue%s;received=198.51.100.7\r\n"
             "Max-Forwards: 69\r\n"
             "Route: <sip:" ME_S ";lr;orig>\r\n"
             "P-Asserted-Identity: <sip:alice@ims.test>\r\n"
             "From: <sip:alice@ims.test>;tag=a1\r\n"
             "To: <sip:bob@ims.test>\r\n"
             "Call-ID: %s\r\n"
             "CSeq: 1 %s\r\n"
             "%s"
             "Content-Length: 0\r\n\r\n",
             method, branch, branch, branch, method, extra);
    struct sip_tp_rx rx = fake_tp_rx(buf, SIP_PROTO_UDP, PCSCF, ME_S);
    ims_proxy_rx(E.p, &rx);
    turn();
    turn();
}

static const struct fake_tp_msg *sent_to(const char *dst, const char *prefix, size_t from)
{
    for (size_t i = from; i < E.tp.n; i++) {
        const struct fake_tp_msg *m = &E.tp.msgs[i];
        if (strcmp(fake_tp_dst(m), dst) == 0 && strncmp(m->buf, prefix, strlen(prefix)) == 0)
            return m;
    }
    return NULL;
}

/* The trail's text after every queued event is written. */
static char *trail(void)
{
    ims_audit_flush(E.audit);
    FILE *f = fopen(E.trail, "r");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_denial_audited_counted(void **state)
{
    (void)state;
    put_alice();
    orig("MESSAGE", "m1", "");
    const struct fake_tp_msg *r = sent_to(PCSCF, "SIP/2.0 403", 0);
    assert_non_null(r);
    assert_non_null(strstr(r->buf, "\"Denied by policy rule ims:message\""));
    assert_null(sent_to(ICSCF, "MESSAGE", 0));
    assert_int_equal(ims_metrics_get(IMS_M_POLICY_DENIALS), 1);
    const char *t = trail();
    assert_non_null(
        strstr(t, "\"reason\":{\"reasonCode\":\"ims:message\",\"reasonType\":\"policy\"}"));
    assert_non_null(strstr(t, "\"action\":\"send\""));
    assert_non_null(strstr(t, "\"outcome\":\"failure\""));
    /* a Digest user: the policy's user_id is the IMPI; the UE's address */
    assert_non_null(strstr(t, "\"initiator\":{\"host\":{\"address\":\"198.51.100.7\"},"
                              "\"id\":\"alice@ims.test\",\"name\":\"sip:alice@ims.test\""));
    assert_non_null(strstr(t, "\"target\":{\"id\":\"sip:bob@ims.test\""));

    /* SUBSCRIBE (a presence one: not reg-event) is ims:subscribe */
    size_t from = E.tp.n;
    orig("SUBSCRIBE", "s1", "Event: presence\r\nContact: <sip:alice@10.0.0.9:5099>\r\n");
    r = sent_to(PCSCF, "SIP/2.0 403", from);
    assert_non_null(r);
    assert_non_null(strstr(r->buf, "\"Denied by policy rule ims:subscribe\""));
    assert_int_equal(ims_metrics_get(IMS_M_POLICY_DENIALS), 2);
    assert_non_null(strstr(trail(), "\"reasonCode\":\"ims:subscribe\""));
}

static void test_reload(void **state)
{
    (void)state;
    char err[256] = "";
    put_alice();
    orig("MESSAGE", "m1", "");
    assert_non_null(sent_to(PCSCF, "SIP/2.0 403", 0));

    /* SIGHUP with an allowing file: the next MESSAGE goes on */
    write_file(E.pol, allow_pol);
    assert_int_equal(ims_cscf_reload_policy(E.c, err, sizeof(err)), 0);
    size_t from = E.tp.n;
    orig("MESSAGE", "m2", "");
    assert_non_null(sent_to(ICSCF, "MESSAGE sip:bob@ims.test", from));
    assert_null(sent_to(PCSCF, "SIP/2.0 403", from));
    assert_int_equal(ims_metrics_get(IMS_M_POLICY_DENIALS), 1);

    /* a bad file: refused with file:line, the allowing policy stays */
    write_file(E.pol, bad_pol);
    assert_int_not_equal(ims_cscf_reload_policy(E.c, err, sizeof(err)), 0);
    char want[128];
    snprintf(want, sizeof(want), "%s:2", E.pol);
    assert_non_null(strstr(err, want));
    from = E.tp.n;
    orig("MESSAGE", "m3", "");
    assert_non_null(sent_to(ICSCF, "MESSAGE sip:bob@ims.test", from));
    assert_null(sent_to(PCSCF, "SIP/2.0 403", from));
}

int main(void)
{
    ims_log_set_level(IMS_LOG_ERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_denial_audited_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
    };
    int rc = cmocka_run_group_tests_name("cscf_policy_hooks", tests, NULL, NULL);
    xmlCleanupParser();
    return rc;
}
