/* test_keystone.c - the Keystone client without Keystone: JSON and time
 * parsing, the shared cache, and the error paths of the client against a
 * tiny scripted HTTP peer on loopback (a mock: the real Keystone runs in
 * tests/e2e/keystone).  Also an allocation-failure loop over validation. */
#define _GNU_SOURCE /* strcasestr */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "ev/loop.h"
#include "keystone/keystone.h"
#include "keystone/ks_int.h"

static const char token_body[] =
    "{\"token\":{\"methods\":[\"password\",\"totp\"],"
    "\"user\":{\"domain\":{\"id\":\"d1\",\"name\":\"ims\"},\"id\":\"u1\",\"name\":\"alice\"},"
    "\"audit_ids\":[\"x\"],\"expires_at\":\"2099-01-01T00:00:00.000000Z\","
    "\"issued_at\":\"2098-12-31T23:00:00.000000Z\","
    "\"project\":{\"domain\":{\"id\":\"d1\",\"name\":\"ims\"},\"id\":\"p1\",\"name\":\"ims\"},"
    "\"roles\":[{\"id\":\"r1\",\"name\":\"reader\"},{\"id\":\"r2\",\"name\":\"member\"}],"
    "\"catalog\":[{\"endpoints\":[{\"id\":\"e\",\"interface\":\"public\",\"region_id\":\"R1\","
    "\"url\":\"http://k/v3\"},{\"id\":\"f\",\"interface\":\"admin\",\"region_id\":\"R1\","
    "\"url\":\"http://a/v3\"}],\"id\":\"s\",\"type\":\"identity\",\"name\":\"keystone\"}]}}";

/* ---- parsing ---- */

static void test_time(void **state)
{
    int64_t t;
    assert_int_equal(ks_parse_time("1970-01-01T00:00:00Z", &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(ks_parse_time("2026-11-27T21:26:10.000000Z", &t), 0);
    assert_int_equal(t, 1796333170 - 6 * 86400);
    assert_int_equal(ks_parse_time("2000-02-29T12:00:00+00:00", &t), 0);
    assert_int_equal(t, 951825600);
    assert_int_equal(ks_parse_time("2026-11-27T21:26:10+02:00", &t), IMS_EPROTO);
    assert_int_equal(ks_parse_time("2026-13-27T21:26:10Z", &t), IMS_EPROTO);
    assert_int_equal(ks_parse_time("2026-11-27", &t), IMS_EPROTO);
    assert_int_equal(ks_parse_time(NULL, &t), IMS_EPROTO);
}

static void test_token(void **state)
{
    struct ims_ks_token *t = NULL;
    assert_int_equal(ks_parse_token(token_body, strlen(token_body), &t), 0);
    assert_string_equal(t->user_id, "u1");
    assert_string_equal(t->user_name, "alice");
    assert_string_equal(t->user_domain_name, "ims");
    assert_string_equal(t->project_id, "p1");
    assert_int_equal(t->nroles, 2);
    assert_true(ims_ks_token_has_role(t, "member"));
    assert_false(ims_ks_token_has_role(t, "admin"));
    assert_true(ims_ks_token_has_method(t, "totp"));
    assert_int_equal(t->expires_at - t->issued_at, 3600);
    assert_true(t->has_catalog);
    assert_string_equal(ims_ks_token_endpoint(t, "identity", NULL, "R1"), "http://k/v3");
    assert_string_equal(ims_ks_token_endpoint(t, "identity", "admin", NULL), "http://a/v3");
    assert_null(ims_ks_token_endpoint(t, "compute", NULL, NULL));
    assert_ptr_equal(ims_ks_token_ref(t), t);
    ims_ks_token_unref(t);
    ims_ks_token_unref(t);
}

static void test_token_bad(void **state)
{
    static const char *const bad[] = {
        "not json",
        "{}",
        "{\"token\":{\"methods\":[\"password\"],\"expires_at\":\"2099-01-01T00:00:00Z\"}}",
        "{\"token\":{\"methods\":[],\"user\":{\"id\":\"u\"},"
        "\"expires_at\":\"2099-01-01T00:00:00Z\"}}",
        "{\"token\":{\"methods\":[1],\"user\":{\"id\":\"u\"},"
        "\"expires_at\":\"2099-01-01T00:00:00Z\"}}",
        "{\"token\":{\"methods\":[\"password\"],\"user\":{\"id\":\"u\"},\"expires_at\":\"soon\"}}",
        "{\"token\":{\"methods\":[\"password\"],\"user\":{\"id\":\"u\"},\"user\":{\"id\":\"v\"},"
        "\"expires_at\":\"2099-01-01T00:00:00Z\"}}", /* duplicate key */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ims_ks_token *t = NULL;
        assert_int_equal(ks_parse_token(bad[i], strlen(bad[i]), &t), IMS_EPROTO);
        assert_null(t);
    }
}

/* Every allocation of the parse fails once in turn: ENOMEM, no leak. */
static void test_token_alloc_faults(void **state)
{
    for (unsigned long n = 1;; n++) {
        struct ims_ks_token *t = NULL;
        ims_alloc_fail_at(n, 0);
        int rc = ks_parse_token(token_body, strlen(token_body), &t);
        bool reached = ims_alloc_count() >= n;
        ims_alloc_fail_at(0, 0);
        if (!reached) {
            assert_int_equal(rc, 0);
            ims_ks_token_unref(t);
            break;
        }
        assert_int_equal(rc, IMS_ENOMEM);
        assert_null(t);
    }
}

static void test_lists(void **state)
{
    static const char asg[] =
        "{\"role_assignments\":[{\"scope\":{\"project\":{\"id\":\"p1\"}},\"user\":{\"id\":\"u1\"},"
        "\"role\":{\"id\":\"r2\",\"name\":\"member\"}},{\"scope\":{\"system\":{\"all\":true}},"
        "\"user\":{\"id\":\"u1\"},\"role\":{\"id\":\"r1\",\"name\":\"reader\"}}],\"links\":{}}";
    struct ims_ks_assignment *a;
    size_t n;
    assert_int_equal(ks_parse_assignments(asg, strlen(asg), &a, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(a[0].project_id, "p1");
    assert_string_equal(a[0].role_name, "member");
    assert_true(a[1].system_scope);
    assert_null(a[1].project_id);
    ks_free_assignments(a, n);
    assert_int_equal(ks_parse_assignments("{}", 2, &a, &n), IMS_EPROTO);

    static const char cred[] = "{\"credentials\":[{\"id\":\"c1\",\"user_id\":\"u1\","
                               "\"type\":\"ims-digest\",\"blob\":\"{\\\"ha1\\\":\\\"x\\\"}\"}]}";
    struct ims_ks_credential *c;
    assert_int_equal(ks_parse_credentials(cred, strlen(cred), &c, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].blob, "{\"ha1\":\"x\"}");
    assert_null(c[0].project_id);
    ks_free_credentials(c, n);
    assert_int_equal(ks_parse_credentials("[]", 2, &c, &n), IMS_EPROTO);
}

/* ---- the cache on its own ---- */

static void test_users(void **state)
{
    (void)state;
    const char *b = "{\"users\":[{\"id\":\"u1\",\"name\":\"alice2\",\"domain_id\":\"default\","
                    "\"enabled\":true},{\"id\":\"u2\",\"name\":\"x\",\"enabled\":false}]}";
    struct ims_ks_user *u;
    size_t n;
    assert_int_equal(ks_parse_users(b, strlen(b), &u, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(u[0].id, "u1");
    assert_string_equal(u[0].name, "alice2");
    assert_string_equal(u[0].domain_id, "default");
    assert_true(u[0].enabled);
    assert_false(u[1].enabled);
    assert_null(u[1].domain_id);
    ks_free_users(u, n);
    assert_int_equal(ks_parse_users("{\"users\":[]}", 12, &u, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ks_parse_users("{}", 2, &u, &n), IMS_EPROTO);
}

static void test_cache(void **state)
{
    struct ks_cache c;
    uint8_t k[4][KS_KEY_LEN];
    memset(k, 0, sizeof(k));
    for (int i = 0; i < 4; i++)
        k[i][0] = (uint8_t)(i + 1);
    assert_int_equal(ks_cache_init(&c, 3), 0);
    struct ks_entry *e0 = ks_cache_add_pending(&c, k[0], 1000);
    assert_non_null(e0);
    assert_ptr_equal(ks_cache_find(&c, k[0], 1000), e0);
    assert_non_null(ks_cache_add_pending(&c, k[1], 1000));
    struct ks_entry *e2 = ks_cache_add_pending(&c, k[2], 1000);
    assert_non_null(e2);
    assert_null(ks_cache_add_pending(&c, k[3], 1000)); /* full of PENDING: refused */
    /* a 404 cached for 500 ms */
    ks_cache_complete(&c, e0, IMS_ENOENT, NULL, 1500, 1000);
    assert_int_equal(ks_cache_find(&c, k[0], 1499)->state, KS_E_INVALID);
    assert_null(ks_cache_find(&c, k[0], 1500)); /* expired: dropped */
    /* an error is not cached */
    ks_cache_complete(&c, e2, IMS_EBACKEND, NULL, 0, 1000);
    assert_null(ks_cache_find(&c, k[2], 1000));
    assert_non_null(ks_cache_add_pending(&c, k[3], 1000));
    ks_cache_destroy(&c);
}

/* ---- a scripted HTTP peer ---- */

struct peer {
    int fd;
    uint16_t port;
    pthread_t th;
    atomic_int requests, auths, validations;
    /* what validation answers: HTTP status and body */
    int v_status;
    const char *v_body;
    int auth_status;
    atomic_bool stop;
};

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    while (!atomic_load(&p->stop)) {
        int c = accept(p->fd, NULL, NULL);
        if (c < 0)
            continue;
        char req[16384];
        size_t len = 0;
        ssize_t n;
        /* headers, then the body by Content-Length (auth POSTs are small) */
        while (len < sizeof(req) - 1 && (n = read(c, req + len, sizeof(req) - 1 - len)) > 0) {
            len += (size_t)n;
            req[len] = '\0';
            char *end = strstr(req, "\r\n\r\n");
            if (!end)
                continue;
            char *cl = strcasestr(req, "Content-Length:");
            size_t want = cl ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
            if (len >= (size_t)(end + 4 - req) + want)
                break;
        }
        if (len == 0) { /* the stop poke */
            close(c);
            continue;
        }
        atomic_fetch_add(&p->requests, 1);
        int status = 500;
        const char *body = "{}";
        const char *extra = "";
        if (strncmp(req, "POST /v3/auth/tokens", 20) == 0) {
            atomic_fetch_add(&p->auths, 1);
            status = p->auth_status;
            body = token_body;
            extra = "X-Subject-Token: svc-token\r\n";
        } else if (strncmp(req, "GET /v3/auth/tokens", 19) == 0) {
            atomic_fetch_add(&p->validations, 1);
            status = p->v_status;
            body = p->v_body;
        }
        char resp[20000];
        int m = snprintf(resp, sizeof(resp),
                         "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%s"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         status, extra, strlen(body), body);
        ssize_t w = write(c, resp, (size_t)m);
        (void)w;
        close(c);
    }
    return NULL;
}

static void peer_start(struct peer *p)
{
    memset(p, 0, sizeof(*p));
    p->auth_status = 201;
    p->v_status = 200;
    p->v_body = token_body;
    p->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    assert_int_equal(bind(p->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(p->fd, 64), 0);
    getsockname(p->fd, (struct sockaddr *)&a, &al);
    p->port = ntohs(a.sin_port);
    pthread_create(&p->th, NULL, peer_main, p);
}

static void peer_stop(struct peer *p)
{
    atomic_store(&p->stop, true);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(p->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (connect(c, (struct sockaddr *)&a, sizeof(a)) == 0)
        close(c);
    pthread_join(p->th, NULL);
    close(p->fd);
}

struct fix {
    struct peer peer;
    struct ims_loop *loop;
    struct ims_ks_ctx *ctx;
    struct ims_ks *ks;
    struct ims_timer guard;
    char url[64];
    int got, want;
    int rc[8];
};

static struct fix *F;

static void guard_cb(struct ims_loop *loop, struct ims_timer *t)
{
    ims_loop_stop(loop);
}

static void on_tok(void *arg, int rc, struct ims_ks_token *tok)
{
    F->rc[F->got % 8] = rc;
    if (++F->got >= F->want)
        ims_loop_stop(F->loop);
}

static void run(int want)
{
    F->want = want;
    ims_timer_start(F->loop, &F->guard, 5000);
    ims_loop_run(F->loop);
    ims_timer_stop(F->loop, &F->guard);
}

static int fix_client(struct fix *f)
{
    struct ims_ks_opts o = { .url = f->url, .user = "svc", .password = "pw",
                             .cache_ttl_s = 60, .negative_ttl_s = 5, .timeout_ms = 2000,
                             .max_pending = 4, .cache_size = 64 };
    int rc = ims_ks_ctx_new(&o, &f->ctx);
    if (rc == 0 && (rc = ims_ks_new(f->ctx, f->loop, &f->ks)) != 0) {
        ims_ks_ctx_free(f->ctx);
        f->ctx = NULL;
    }
    return rc;
}

static void fix_client_free(struct fix *f)
{
    ims_ks_free(f->ks);
    ims_ks_ctx_free(f->ctx);
    f->ks = NULL;
    f->ctx = NULL;
}

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    peer_start(&f->peer);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u/v3/", f->peer.port);
    assert_int_equal(ims_loop_new(64, &f->loop), 0);
    ims_timer_init(&f->guard, guard_cb, NULL);
    assert_int_equal(fix_client(f), 0);
    F = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    fix_client_free(f);
    ims_loop_free(f->loop);
    peer_stop(&f->peer);
    free(f);
    return 0;
}

static void test_server_error_not_cached(void **state)
{
    struct fix *f = *state;
    f->peer.v_status = 503;
    assert_int_equal(ims_ks_validate(f->ks, "t1", 2, 0, on_tok, NULL), 0);
    run(1);
    assert_int_equal(f->rc[0], IMS_EBACKEND);
    f->peer.v_status = 200;
    assert_int_equal(ims_ks_validate(f->ks, "t1", 2, 0, on_tok, NULL), 0);
    run(2);
    assert_int_equal(f->rc[1], 0);
    assert_int_equal(atomic_load(&f->peer.validations), 2);
    assert_int_equal(atomic_load(&f->peer.auths), 1);
}

static void test_garbage_answer(void **state)
{
    struct fix *f = *state;
    f->peer.v_body = "{\"token\": 42}";
    assert_int_equal(ims_ks_validate(f->ks, "t2", 2, 0, on_tok, NULL), 0);
    run(1);
    assert_int_equal(f->rc[0], IMS_EPROTO);
}

/* 401 twice: one re-authentication, then fail closed (no loop). */
static void test_401_twice(void **state)
{
    struct fix *f = *state;
    f->peer.v_status = 401;
    assert_int_equal(ims_ks_validate(f->ks, "t3", 2, 0, on_tok, NULL), 0);
    run(1);
    assert_int_equal(f->rc[0], IMS_EBACKEND);
    assert_int_equal(atomic_load(&f->peer.auths), 2);
    assert_int_equal(atomic_load(&f->peer.validations), 2);
    struct ims_ks_stats st;
    ims_ks_get_stats(f->ks, &st);
    assert_int_equal(st.reauth, 1);
}

/* The service login is refused: everything queued behind it fails closed. */
static void test_auth_refused(void **state)
{
    struct fix *f = *state;
    f->peer.auth_status = 401;
    assert_int_equal(ims_ks_validate(f->ks, "a", 1, 0, on_tok, NULL), 0);
    assert_int_equal(ims_ks_validate(f->ks, "b", 1, 0, on_tok, NULL), 0);
    run(2);
    assert_int_equal(f->rc[0], IMS_EBACKEND);
    assert_int_equal(f->rc[1], IMS_EBACKEND);
    assert_int_equal(atomic_load(&f->peer.validations), 0);
}

/* max_pending (4) per client: the fifth is refused at once. */
static void test_max_pending(void **state)
{
    struct fix *f = *state;
    for (int i = 0; i < 4; i++)
        assert_int_equal(ims_ks_validate(f->ks, "same", 4, 0, on_tok, NULL), 0);
    assert_int_equal(ims_ks_validate(f->ks, "same", 4, 0, on_tok, NULL), IMS_ELIMIT);
    run(4);
    assert_int_equal(atomic_load(&f->peer.validations), 1);
}

/* Freeing a client with requests in flight runs each callback once. */
static void test_free_aborts(void **state)
{
    struct fix *f = *state;
    assert_int_equal(ims_ks_validate(f->ks, "x", 1, 0, on_tok, NULL), 0);
    assert_int_equal(ims_ks_validate(f->ks, "y", 1, 0, on_tok, NULL), 0);
    fix_client_free(f);
    assert_int_equal(f->got, 2);
    assert_int_equal(f->rc[0], IMS_EBACKEND);
    assert_int_equal(fix_client(f), 0); /* for teardown */
}

struct two {
    int rc;
    int calls;
};

static void on_two(void *arg, int rc, struct ims_ks_token *tok)
{
    struct two *t = arg;
    t->rc = rc;
    t->calls++;
    if (++F->got >= F->want)
        ims_loop_stop(F->loop);
}

/* B joined A's flight and is freed first: B's callback runs (EBACKEND) in
 * the free, A's request still completes for A alone. */
static void test_free_joined(void **state)
{
    struct fix *f = *state;
    struct ims_ks *b;
    struct two ra = { 0 }, rb = { 0 };
    f->want = 100; /* no loop stop from the callbacks run inside ims_ks_free */
    assert_int_equal(ims_ks_new(f->ctx, f->loop, &b), 0);
    assert_int_equal(ims_ks_validate(f->ks, "tok", 3, 0, on_two, &ra), 0);
    assert_int_equal(ims_ks_validate(b, "tok", 3, 0, on_two, &rb), 0);
    ims_ks_free(b);
    assert_int_equal(rb.calls, 1);
    assert_int_equal(rb.rc, IMS_EBACKEND);
    run(2);
    assert_int_equal(ra.calls, 1);
    assert_int_equal(ra.rc, 0);
    assert_int_equal(atomic_load(&f->peer.validations), 1);
}

/* The owner A is freed while B waits on its flight: B gets EBACKEND on its
 * loop's next turn, exactly once. */
static void test_free_owner(void **state)
{
    struct fix *f = *state;
    struct ims_ks *b;
    struct two ra = { 0 }, rb = { 0 };
    f->want = 100; /* no loop stop from the callbacks run inside ims_ks_free */
    assert_int_equal(ims_ks_new(f->ctx, f->loop, &b), 0);
    assert_int_equal(ims_ks_validate(f->ks, "tok", 3, 0, on_two, &ra), 0);
    assert_int_equal(ims_ks_validate(b, "tok", 3, 0, on_two, &rb), 0);
    ims_ks_free(f->ks);
    f->ks = NULL;
    assert_int_equal(ra.calls, 1);
    assert_int_equal(ra.rc, IMS_EBACKEND);
    assert_int_equal(rb.calls, 0); /* not from inside someone else's call */
    run(2);
    assert_int_equal(rb.calls, 1);
    assert_int_equal(rb.rc, IMS_EBACKEND);
    /* the failed flight left no entry behind: B asks again and succeeds */
    assert_int_equal(ims_ks_validate(b, "tok", 3, 0, on_two, &rb), 0);
    run(3);
    assert_int_equal(rb.calls, 2);
    assert_int_equal(rb.rc, 0);
    ims_ks_free(b);
    assert_int_equal(ims_ks_new(f->ctx, f->loop, &f->ks), 0); /* for teardown */
}

/* Allocation N fails, for every N the validation path reaches: either the
 * call fails (and its callback never runs) or the callback runs once. */
static void test_validate_alloc_faults(void **state)
{
    struct fix *f = *state;
    fix_client_free(f);
    for (unsigned long n = 1;; n++) {
        f->got = 0;
        ims_alloc_fail_at(n, 0);
        int rc = fix_client(f);
        if (rc == 0) {
            rc = ims_ks_validate(f->ks, "tok", 3, 0, on_tok, NULL);
            if (rc == 0)
                run(1);
        }
        bool reached = ims_alloc_count() >= n;
        ims_alloc_fail_at(0, 0);
        if (rc == 0 && f->got != 1)
            fail_msg("allocation %lu failed: %d callbacks", n, f->got);
        if (rc != 0 && f->got != 0)
            fail_msg("allocation %lu: the call failed (%d) but its callback ran", n, rc);
        if (f->ks)
            fix_client_free(f);
        if (!reached) {
            assert_int_equal(rc, 0);
            assert_int_equal(f->rc[0], 0);
            print_message("%lu allocation points failed in turn\n", n - 1);
            break;
        }
        assert_true(n < 500);
    }
    assert_int_equal(fix_client(f), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_token_bad),
        cmocka_unit_test(test_token_alloc_faults),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_users),
        cmocka_unit_test(test_cache),
        cmocka_unit_test_setup_teardown(test_server_error_not_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_401_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_aborts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_joined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validate_alloc_faults, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
