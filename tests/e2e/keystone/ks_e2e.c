/* ks_e2e - the Keystone client against a real Keystone (started once by the
 * e2e_keystone_setup fixture, tests/e2e/keystone/ks-start.sh).
 *
 *   ks_e2e TEST        (env KS_STATE: the directory holding keystone.env)
 *
 * Each test drives a real ims_loop with the client on it and asserts on the
 * callbacks' results and the client's request counters.  Test-side HTTP
 * (issuing user tokens, revoking, admin changes) uses blocking curl: it is
 * the test playing the users and the operator, never the client under test.
 * Exit 0 pass, 1 fail (each check printed). */
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "cfg/cfg.h"
#include "ev/loop.h"
#include "keystone/keystone.h"

static int failures;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            printf("ok   %s\n", #cond);                                                            \
        } else {                                                                                   \
            printf("FAIL %s:%d %s: ", __FILE__, __LINE__, #cond);                                  \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* ---- the fixture's env file ---- */

static char env_keys[64][64], env_vals[64][512];
static int nenv;

static void load_env(void)
{
    const char *dir = getenv("KS_STATE");
    char path[1024];
    snprintf(path, sizeof(path), "%s/keystone.env", dir ? dir : ".");
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "ks_e2e: no %s (fixture e2e_keystone_setup not run?)\n", path);
        exit(1);
    }
    char line[700];
    while (nenv < 64 && fgets(line, sizeof(line), f)) {
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        eq[1 + strcspn(eq + 1, "\n")] = '\0';
        snprintf(env_keys[nenv], sizeof(env_keys[0]), "%.63s", line);
        snprintf(env_vals[nenv], sizeof(env_vals[0]), "%.511s", eq + 1);
        nenv++;
    }
    fclose(f);
}

static const char *E(const char *k)
{
    for (int i = 0; i < nenv; i++)
        if (strcmp(env_keys[i], k) == 0)
            return env_vals[i];
    fprintf(stderr, "ks_e2e: %s missing from keystone.env\n", k);
    exit(1);
}

/* IMS_TEST_TIMEOUT_MULTIPLIER: slack for slow (sanitizer, loaded) machines */
static double mult(void)
{
    const char *m = getenv("IMS_TEST_TIMEOUT_MULTIPLIER");
    double v = m ? strtod(m, NULL) : 1.0;
    return v >= 1.0 ? v : 1.0;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- blocking HTTP for the test's own side ---- */

struct resp {
    long status;
    char token[1024];
    char receipt[1024];
    char body[65536];
    size_t len;
};

static size_t r_body(char *p, size_t s, size_t n, void *d)
{
    struct resp *r = d;
    size_t k = s * n;
    if (r->len + k < sizeof(r->body)) {
        memcpy(r->body + r->len, p, k);
        r->len += k;
        r->body[r->len] = '\0';
    }
    return k;
}

static void hdr_copy(const char *p, size_t len, const char *name, char *dst, size_t cap)
{
    size_t nl = strlen(name);
    if (len > nl && strncasecmp(p, name, nl) == 0) {
        const char *v = p + nl;
        while (*v == ' ')
            v++;
        size_t vl = len - (size_t)(v - p);
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
            vl--;
        if (vl < cap) {
            memcpy(dst, v, vl);
            dst[vl] = '\0';
        }
    }
}

static size_t r_hdr(char *p, size_t s, size_t n, void *d)
{
    struct resp *r = d;
    hdr_copy(p, s * n, "X-Subject-Token:", r->token, sizeof(r->token));
    hdr_copy(p, s * n, "Openstack-Auth-Receipt:", r->receipt, sizeof(r->receipt));
    return s * n;
}

static long http(const char *method, const char *path, const char *auth, const char *subject,
                 const char *body, struct resp *r)
{
    char url[1024], h1[1200], h2[1200];
    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "%s%s", E("KS_URL"), path);
    CURL *e = curl_easy_init();
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    if (auth) {
        snprintf(h1, sizeof(h1), "X-Auth-Token: %s", auth);
        hl = curl_slist_append(hl, h1);
    }
    if (subject) {
        snprintf(h2, sizeof(h2), "X-Subject-Token: %s", subject);
        hl = curl_slist_append(hl, h2);
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, r_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, r_hdr);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
    if (body)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(e);
    if (rc == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(e);
    return r->status;
}

/* A project-scoped password token of a user of domain ims (empty on failure). */
static void user_token(const char *user, const char *pw, const char *totp, char *out, size_t cap,
                       long *status)
{
    char body[2048];
    struct resp r;
    if (totp)
        snprintf(body, sizeof(body),
                 "{\"auth\":{\"identity\":{\"methods\":[\"password\",\"totp\"],"
                 "\"password\":{\"user\":{\"name\":\"%s\",\"domain\":{\"name\":\"ims\"},"
                 "\"password\":\"%s\"}},\"totp\":{\"user\":{\"name\":\"%s\",\"domain\":"
                 "{\"name\":\"ims\"},\"passcode\":\"%s\"}}},"
                 "\"scope\":{\"project\":{\"id\":\"%s\"}}}}",
                 user, pw, user, totp, E("KS_IMS_PROJECT_ID"));
    else
        snprintf(body, sizeof(body),
                 "{\"auth\":{\"identity\":{\"methods\":[\"password\"],"
                 "\"password\":{\"user\":{\"name\":\"%s\",\"domain\":{\"name\":\"ims\"},"
                 "\"password\":\"%s\"}}},\"scope\":{\"project\":{\"id\":\"%s\"}}}}",
                 user, pw, E("KS_IMS_PROJECT_ID"));
    long st = http("POST", "/auth/tokens", NULL, NULL, body, &r);
    if (status)
        *status = st;
    snprintf(out, cap, "%s", st == 201 ? r.token : "");
}

static void alice_token(char *out, size_t cap)
{
    user_token("alice", E("KS_ALICE_PASSWORD"), NULL, out, cap, NULL);
}

static void admin_token(char *out, size_t cap)
{
    char body[1024];
    struct resp r;
    snprintf(body, sizeof(body),
             "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":"
             "{\"name\":\"admin\",\"domain\":{\"id\":\"default\"},\"password\":\"%s\"}}},"
             "\"scope\":{\"project\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"}}}}}",
             E("KS_ADMIN_PASSWORD"));
    http("POST", "/auth/tokens", NULL, NULL, body, &r);
    snprintf(out, cap, "%s", r.token);
}

/* RFC 6238 TOTP (HMAC-SHA1, 6 digits, 30 s), secret in RFC 4648 base32. */
static void totp_now(const char *b32, char out[7])
{
    uint8_t key[64];
    size_t klen = 0;
    unsigned bits = 0, acc = 0;
    for (const char *p = b32; *p && klen < sizeof(key); p++) {
        const char *al = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        const char *q = strchr(al, *p);
        if (!q || *p == '=')
            continue;
        acc = (acc << 5) | (unsigned)(q - al);
        bits += 5;
        if (bits >= 8) {
            key[klen++] = (uint8_t)(acc >> (bits - 8));
            bits -= 8;
        }
    }
    uint64_t ctr = (uint64_t)time(NULL) / 30;
    uint8_t msg[8], md[EVP_MAX_MD_SIZE];
    for (int i = 7; i >= 0; i--, ctr >>= 8)
        msg[i] = (uint8_t)ctr;
    unsigned mdlen = 0;
    HMAC(EVP_sha1(), key, (int)klen, msg, sizeof(msg), md, &mdlen);
    unsigned off = md[mdlen - 1] & 15;
    uint32_t v = ((uint32_t)(md[off] & 0x7f) << 24) | ((uint32_t)md[off + 1] << 16) |
                 ((uint32_t)md[off + 2] << 8) | md[off + 3];
    snprintf(out, 7, "%06u", v % 1000000);
}

/* ---- the loop side ---- */

static struct ims_loop *loop;
static struct ims_timer guard;
static int want, got;

static void guard_cb(struct ims_loop *l, struct ims_timer *t)
{
    ims_loop_stop(l);
}

/* Runs the loop until `n` callbacks arrived or max_ms passed. */
static void run_until(int n, unsigned max_ms)
{
    want = n;
    if (got >= want)
        return;
    ims_timer_start(loop, &guard, max_ms);
    ims_loop_run(loop);
    ims_timer_stop(loop, &guard);
}

static void run_for(unsigned ms)
{
    want = 1 << 30;
    ims_timer_start(loop, &guard, ms);
    ims_loop_run(loop);
}

struct vres {
    int rc;
    bool done;
    struct ims_ks_token *tok;
    double at;
};

static void on_token(void *arg, int rc, struct ims_ks_token *tok)
{
    struct vres *v = arg;
    v->rc = rc;
    v->done = true;
    v->at = mono();
    v->tok = tok ? ims_ks_token_ref(tok) : NULL;
    if (++got >= want)
        ims_loop_stop(loop);
}

static void vres_clear(struct vres *v)
{
    ims_ks_token_unref(v->tok);
    memset(v, 0, sizeof(*v));
}

static struct ims_ks_opts base_opts(void)
{
    struct ims_ks_opts o = { 0 };
    o.url = E("KS_URL");
    o.user = E("KS_SVC_USER");
    o.password = E("KS_SVC_PASSWORD");
    o.user_domain = "Default";
    o.cache_ttl_s = 60;
    o.negative_ttl_s = 5;
    o.timeout_ms = 2000;
    o.max_pending = 1024;
    o.cache_size = 1024;
    return o;
}

static struct ims_ks_ctx *ctx;
static struct ims_ks *ks;

static void client_up(const struct ims_ks_opts *o)
{
    if (ims_ks_ctx_new(o, &ctx) != 0 || ims_ks_new(ctx, loop, &ks) != 0) {
        fprintf(stderr, "ks_e2e: client setup failed\n");
        exit(1);
    }
}

static void client_down(void)
{
    ims_ks_free(ks);
    ims_ks_ctx_free(ctx);
    ks = NULL;
    ctx = NULL;
}

static int validate_sync(const char *tok, unsigned flags, struct vres *v)
{
    memset(v, 0, sizeof(*v));
    got = 0;
    int rc = ims_ks_validate(ks, tok, strlen(tok), flags, on_token, v);
    if (rc != 0)
        return rc;
    if (v->done)
        printf("FAIL callback ran inside ims_ks_validate\n"), failures++;
    run_until(1, 30000);
    return v->done ? 0 : IMS_ETIMEDOUT;
}

static struct ims_ks_stats stats(void)
{
    struct ims_ks_stats s;
    ims_ks_get_stats(ks, &s);
    return s;
}

/* ---- tests ---- */

/* Service authentication from a [keystone] config (password_file, system
 * scope) and with a project scope. */
static void t_service_auth(void)
{
    char pwfile[] = "/tmp/ks_e2e_pw_XXXXXX";
    int fd = mkstemp(pwfile);
    if (fd < 0 || dprintf(fd, "%s\n", E("KS_SVC_PASSWORD")) < 0)
        exit(1);
    close(fd);
    char text[2048], err[256];
    snprintf(text, sizeof(text),
             "[keystone]\nurl = %s\nuser = ims-core\npassword_file = %s\ncache_ttl = 30\n"
             "timeout_ms = 1500\n",
             E("KS_URL"), pwfile);
    struct ims_cfg *cfg = NULL;
    int rc = ims_cfg_load_string("ks.ini", text, &cfg, err, sizeof(err));
    CHECK(rc == 0, "config: %s", err);
    if (rc != 0)
        return;
    struct ims_ks_opts o;
    char *secret = NULL;
    rc = ims_ks_opts_from_cfg(cfg, &o, &secret, err, sizeof(err));
    CHECK(rc == 0, "opts: %s", err);
    CHECK(o.cache_ttl_s == 30 && o.timeout_ms == 1500 && o.negative_ttl_s == 5, "values");
    CHECK(o.password && strcmp(o.password, E("KS_SVC_PASSWORD")) == 0, "password from file");
    client_up(&o);
    ims_free(secret);
    ims_cfg_free(cfg);
    unlink(pwfile);

    struct vres v = { 0 };
    got = 0;
    rc = ims_ks_authenticate(ks, on_token, &v);
    CHECK(rc == 0 && !v.done, "rc=%d", rc);
    run_until(1, 30000);
    CHECK(v.done && v.rc == 0, "auth rc=%s", ims_strerror(v.rc));
    CHECK(stats().auth_requests == 1, "auth_requests=%llu",
          (unsigned long long)stats().auth_requests);
    CHECK(ims_ks_service_token_expiry(ks) > time(NULL), "expiry in the future");
    /* a second call is served from the token at hand */
    vres_clear(&v);
    got = 0;
    ims_ks_authenticate(ks, on_token, &v);
    run_until(1, 5000);
    CHECK(v.done && v.rc == 0 && stats().auth_requests == 1, "no second login");
    client_down();

    /* project scope; a wrong password fails closed */
    struct ims_ks_opts po = base_opts();
    po.project = "service";
    client_up(&po);
    vres_clear(&v);
    got = 0;
    ims_ks_authenticate(ks, on_token, &v);
    run_until(1, 30000);
    CHECK(v.done && v.rc == 0, "project-scoped auth rc=%s", ims_strerror(v.rc));
    client_down();

    struct ims_ks_opts bad = base_opts();
    bad.password = "wrong";
    client_up(&bad);
    vres_clear(&v);
    got = 0;
    ims_ks_authenticate(ks, on_token, &v);
    run_until(1, 30000);
    CHECK(v.done && v.rc == IMS_EBACKEND, "wrong password rc=%s", ims_strerror(v.rc));
    client_down();
}

static bool has_method(const struct ims_ks_token *t, const char *m)
{
    return t && ims_ks_token_has_method(t, m);
}

static void t_validate(void)
{
    char tok[1024];
    alice_token(tok, sizeof(tok));
    CHECK(tok[0], "alice got a token");
    struct ims_ks_opts o = base_opts();
    client_up(&o);
    struct vres v;
    time_t now = time(NULL);
    CHECK(validate_sync(tok, 0, &v) == 0 && v.rc == 0, "rc=%s", ims_strerror(v.rc));
    const struct ims_ks_token *t = v.tok;
    if (t) {
        CHECK(strcmp(t->user_id, E("KS_ALICE_ID")) == 0, "user_id %s", t->user_id);
        CHECK(t->user_name && strcmp(t->user_name, "alice") == 0, "user_name");
        CHECK(t->user_domain_name && strcmp(t->user_domain_name, "ims") == 0, "domain");
        CHECK(t->project_id && strcmp(t->project_id, E("KS_IMS_PROJECT_ID")) == 0, "project");
        CHECK(t->project_name && strcmp(t->project_name, "ims") == 0, "project name");
        CHECK(ims_ks_token_has_role(t, "member") && ims_ks_token_has_role(t, "reader"),
              "roles member+reader");
        CHECK(!ims_ks_token_has_role(t, "admin"), "not admin");
        bool role_ids = false;
        for (size_t i = 0; i < t->nroles; i++)
            role_ids |= t->roles[i].id && strcmp(t->roles[i].id, E("KS_MEMBER_ROLE_ID")) == 0;
        CHECK(role_ids, "member role id");
        CHECK(t->nmethods == 1 && has_method(t, "password"), "methods [password]");
        CHECK(t->issued_at >= now - 60 && t->issued_at <= now + 5, "issued_at %lld",
              (long long)t->issued_at);
        long life = strtol(E("KS_TOKEN_EXPIRATION"), NULL, 10);
        CHECK(t->expires_at - t->issued_at == life, "lifetime %lld",
              (long long)(t->expires_at - t->issued_at));
        CHECK(!t->has_catalog && t->nendpoints == 0, "no catalog unless asked");
        CHECK(strlen(t->hash_hex) == 12, "hash prefix for logs");
    }
    vres_clear(&v);
    /* with the catalog */
    CHECK(validate_sync(tok, IMS_KS_CATALOG, &v) == 0 && v.rc == 0, "catalog rc");
    if (v.tok) {
        const char *u = ims_ks_token_endpoint(v.tok, "identity", "public", "RegionOne");
        CHECK(u && strcmp(u, E("KS_URL")) == 0, "identity endpoint %s", u ? u : "(none)");
        CHECK(!ims_ks_token_endpoint(v.tok, "identity", "public", "Elsewhere"), "region");
    }
    CHECK(stats().validate_requests == 2, "catalog is its own cache entry");
    vres_clear(&v);
    client_down();
}

static void t_invalid(void)
{
    struct ims_ks_opts o = base_opts();
    client_up(&o);
    struct vres v;
    const char *bogus = "gAAAAABnot-a-real-fernet-token-at-all";
    CHECK(validate_sync(bogus, 0, &v) == 0 && v.rc == IMS_ENOENT, "rc=%s", ims_strerror(v.rc));
    CHECK(v.tok == NULL, "no token");
    /* negative cache */
    CHECK(validate_sync(bogus, 0, &v) == 0 && v.rc == IMS_ENOENT, "again");
    CHECK(stats().validate_requests == 1 && stats().cache_hits == 1, "negative cache hit");
    struct ims_ks_token *t = NULL;
    CHECK(ims_ks_lookup(ks, bogus, strlen(bogus), 0, &t) == IMS_ENOENT, "lookup invalid");
    CHECK(ims_ks_validate(ks, "", 0, 0, on_token, &v) == IMS_EINVAL, "empty token");
    client_down();
}

static void t_revoked(void)
{
    char tok[1024], adm[1024];
    alice_token(tok, sizeof(tok));
    admin_token(adm, sizeof(adm));
    struct ims_ks_opts o = base_opts();
    o.cache_ttl_s = 3;
    client_up(&o);
    struct vres v;
    CHECK(validate_sync(tok, 0, &v) == 0 && v.rc == 0, "valid before");
    vres_clear(&v);
    struct resp r;
    CHECK(http("DELETE", "/auth/tokens", adm, tok, NULL, &r) == 204, "revoked (%ld)", r.status);
    /* within the TTL the cache still answers (documented bound) */
    CHECK(validate_sync(tok, 0, &v) == 0 && v.rc == 0, "cached");
    vres_clear(&v);
    CHECK(stats().validate_requests == 1, "from cache");
    run_for(3200);
    double t0 = mono();
    CHECK(validate_sync(tok, 0, &v) == 0 && v.rc == IMS_ENOENT, "invalid after TTL: %s",
          ims_strerror(v.rc));
    CHECK(stats().validate_requests == 2, "asked Keystone again");
    printf("     revoked token refused %.2f s after the TTL ended\n", mono() - t0);
    client_down();
}

static void t_cache_hit(void)
{
    char tok[1024];
    alice_token(tok, sizeof(tok));
    struct ims_ks_opts o = base_opts();
    client_up(&o);
    struct vres v;
    CHECK(validate_sync(tok, 0, &v) == 0 && v.rc == 0, "first");
    struct ims_ks_token *first = v.tok;
    v.tok = NULL;
    struct ims_ks_stats s1 = stats();
    CHECK(validate_sync(tok, 0, &v) == 0 && v.rc == 0, "second");
    struct ims_ks_stats s2 = stats();
    CHECK(s2.requests == s1.requests && s2.validate_requests == 1, "no request: %llu -> %llu",
          (unsigned long long)s1.requests, (unsigned long long)s2.requests);
    CHECK(s2.cache_hits == 1, "one hit");
    CHECK(v.tok == first, "the same cached token object");
    vres_clear(&v);
    struct ims_ks_token *t = NULL;
    CHECK(ims_ks_lookup(ks, tok, strlen(tok), 0, &t) == 0 && t == first, "sync lookup");
    ims_ks_token_unref(t);
    CHECK(ims_ks_lookup(ks, tok, strlen(tok), IMS_KS_CATALOG, &t) == IMS_EAGAIN,
          "not cached with catalog");
    ims_ks_token_unref(first);
    client_down();
}

/* the second worker of the single-flight test */
struct worker {
    struct ims_ks_ctx *ctx;
    const char *tok;
    pthread_barrier_t *bar;
    int n, ok;
    struct ims_ks_stats st;
};

static __thread struct ims_loop *w_loop;
static __thread int w_got, w_want;

static void w_on_token(void *arg, int rc, struct ims_ks_token *tok)
{
    int *ok = arg;
    *ok += rc == 0 && tok != NULL;
    if (++w_got >= w_want)
        ims_loop_stop(w_loop);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct ims_ks *wks;
    if (ims_loop_new(256, &w_loop) != 0 || ims_ks_new(w->ctx, w_loop, &wks) != 0)
        return NULL;
    w_want = w->n;
    pthread_barrier_wait(w->bar);
    for (int i = 0; i < w->n; i++)
        ims_ks_validate(wks, w->tok, strlen(w->tok), 0, w_on_token, &w->ok);
    struct ims_timer t;
    ims_timer_init(&t, guard_cb, NULL);
    ims_timer_start(w_loop, &t, 30000);
    ims_loop_run(w_loop);
    ims_timer_stop(w_loop, &t);
    ims_ks_get_stats(wks, &w->st);
    ims_ks_free(wks);
    ims_loop_free(w_loop);
    return NULL;
}

static void t_single_flight(void)
{
    enum { N = 20 };
    char tok[1024], tok2[1024];
    alice_token(tok, sizeof(tok));
    alice_token(tok2, sizeof(tok2));
    struct ims_ks_opts o = base_opts();
    client_up(&o);
    /* authenticate first, so the validations are not merely queued behind it */
    struct vres a = { 0 };
    got = 0;
    ims_ks_authenticate(ks, on_token, &a);
    run_until(1, 30000);

    /* one worker: N concurrent validations of one token */
    struct vres v[N];
    memset(v, 0, sizeof(v));
    got = 0;
    for (int i = 0; i < N; i++)
        ims_ks_validate(ks, tok, strlen(tok), 0, on_token, &v[i]);
    run_until(N, 30000);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        ok += v[i].done && v[i].rc == 0;
        vres_clear(&v[i]);
    }
    CHECK(ok == N, "%d/%d valid", ok, N);
    CHECK(stats().validate_requests == 1, "validate_requests=%llu",
          (unsigned long long)stats().validate_requests);
    CHECK(stats().joined == N - 1, "joined=%llu", (unsigned long long)stats().joined);

    /* two workers (threads, loops) sharing the ctx: still one request */
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    struct worker w = { .ctx = ctx, .tok = tok2, .bar = &bar, .n = N };
    pthread_t th;
    pthread_create(&th, NULL, worker_main, &w);
    uint64_t before = stats().validate_requests, joined_before = stats().joined;
    uint64_t hits_before = stats().cache_hits;
    memset(v, 0, sizeof(v));
    got = 0;
    pthread_barrier_wait(&bar);
    for (int i = 0; i < N; i++)
        ims_ks_validate(ks, tok2, strlen(tok2), 0, on_token, &v[i]);
    run_until(N, 30000);
    pthread_join(th, NULL);
    ok = 0;
    for (int i = 0; i < N; i++) {
        ok += v[i].done && v[i].rc == 0;
        vres_clear(&v[i]);
    }
    uint64_t reqs = stats().validate_requests - before + w.st.validate_requests;
    uint64_t joined = stats().joined - joined_before + w.st.joined;
    /* a thread scheduled late may find the answer cached instead of joining */
    uint64_t hits = stats().cache_hits - hits_before + w.st.cache_hits;
    CHECK(ok == N && w.ok == N, "main %d/%d, worker %d/%d valid", ok, N, w.ok, N);
    CHECK(reqs == 1, "one Keystone request for 2 workers x %d: %llu", N,
          (unsigned long long)reqs);
    CHECK(joined + hits == 2 * N - 1 && joined >= N - 1, "joined=%llu hits=%llu",
          (unsigned long long)joined, (unsigned long long)hits);
    printf("     cross-worker: %llu joined the flight, %llu cache hits\n",
           (unsigned long long)joined, (unsigned long long)hits);
    pthread_barrier_destroy(&bar);
    client_down();
}

/* Tokens live KS_TOKEN_EXPIRATION (30 s) in the fixture: the service token is
 * renewed after 80% of that, in the background; and a cached user token is
 * never served past its expires_at even with cache_ttl 60. */
static void t_renewal(void)
{
    int life = (int)strtol(E("KS_TOKEN_EXPIRATION"), NULL, 10);
    char early[1024];
    alice_token(early, sizeof(early));
    struct ims_ks_opts o = base_opts();
    client_up(&o);
    struct vres v;
    CHECK(validate_sync(early, 0, &v) == 0 && v.rc == 0, "valid");
    int64_t early_exp = v.tok ? v.tok->expires_at : 0;
    vres_clear(&v);
    int64_t e1 = ims_ks_service_token_expiry(ks);
    CHECK(stats().auth_requests == 1, "one login");

    run_for((unsigned)(life * 800 + 1500)); /* past 80% of the service token's life */
    char tok[1024];
    alice_token(tok, sizeof(tok));
    CHECK(validate_sync(tok, 0, &v) == 0 && v.rc == 0, "valid with the renewing token");
    vres_clear(&v);
    /* let the background login finish */
    for (int i = 0; i < 40 && ims_ks_service_token_expiry(ks) == e1; i++)
        run_for(250);
    CHECK(stats().auth_requests == 2, "renewed: auth_requests=%llu",
          (unsigned long long)stats().auth_requests);
    int64_t e2 = ims_ks_service_token_expiry(ks);
    CHECK(e2 > e1, "new expiry %lld > %lld", (long long)e2, (long long)e1);

    /* the early user token has expired meanwhile: the cache must not serve it */
    int64_t wait_ms = (early_exp - time(NULL)) * 1000 + 1200;
    if (wait_ms > 0)
        run_for((unsigned)wait_ms);
    uint64_t before = stats().validate_requests;
    CHECK(validate_sync(early, 0, &v) == 0 && v.rc == IMS_ENOENT, "expired token: %s",
          ims_strerror(v.rc));
    CHECK(stats().validate_requests == before + 1, "asked Keystone, not the cache");
    client_down();
}

/* A 401 on the service token (revoked by disabling/enabling the account):
 * re-authenticate once, retry, succeed. */
static void t_reauth(void)
{
    char adm[1024], tok[1024], path[256];
    struct resp r;
    struct ims_ks_opts o = base_opts();
    client_up(&o);
    struct vres v = { 0 };
    got = 0;
    ims_ks_authenticate(ks, on_token, &v);
    run_until(1, 30000);
    CHECK(v.rc == 0, "logged in");
    admin_token(adm, sizeof(adm));
    snprintf(path, sizeof(path), "/users/%s", E("KS_SVC_USER_ID"));
    http("PATCH", path, adm, NULL, "{\"user\":{\"enabled\":false}}", &r);
    CHECK(r.status == 200, "disabled (%ld)", r.status);
    http("PATCH", path, adm, NULL, "{\"user\":{\"enabled\":true}}", &r);
    CHECK(r.status == 200, "enabled (%ld)", r.status);
    usleep(1300 * 1000); /* tokens issued in the revocation's second are dead too */
    alice_token(tok, sizeof(tok));
    CHECK(validate_sync(tok, 0, &v) == 0 && v.rc == 0, "valid after re-auth: %s",
          ims_strerror(v.rc));
    vres_clear(&v);
    CHECK(stats().reauth == 1 && stats().auth_requests == 2, "reauth=%llu auth=%llu",
          (unsigned long long)stats().reauth, (unsigned long long)stats().auth_requests);
    client_down();
}

static void t_keystone_down(void)
{
    char tok[1024];
    alice_token(tok, sizeof(tok));
    struct ims_ks_opts o = base_opts();
    o.timeout_ms = 1000;
    client_up(&o);
    struct vres v = { 0 };
    got = 0;
    ims_ks_authenticate(ks, on_token, &v);
    run_until(1, 30000);
    CHECK(v.rc == 0, "logged in");
    pid_t pg = (pid_t)strtol(E("KS_PID"), NULL, 10);
    CHECK(kill(-pg, SIGSTOP) == 0, "SIGSTOP uwsgi");
    double t0 = mono();
    int rc = validate_sync(tok, 0, &v);
    double dt = v.at - t0;
    kill(-pg, SIGCONT);
    CHECK(rc == 0 && v.rc == IMS_EBACKEND, "fail closed: %s", ims_strerror(v.rc));
    CHECK(dt >= 0.9 && dt < 1.0 + 2.0 * mult(), "within the timeout: %.2f s", dt);
    CHECK(stats().failures == 1, "failures=%llu", (unsigned long long)stats().failures);
    /* not cached as invalid: once Keystone is back the token validates */
    vres_clear(&v);
    CHECK(validate_sync(tok, 0, &v) == 0 && v.rc == 0, "back: %s", ims_strerror(v.rc));
    vres_clear(&v);
    client_down();

    /* nothing listening at all: fails at once */
    struct ims_ks_opts dead = base_opts();
    dead.url = "http://127.0.0.1:9/v3";
    client_up(&dead);
    t0 = mono();
    CHECK(validate_sync(tok, 0, &v) == 0 && v.rc == IMS_EBACKEND, "refused: %s",
          ims_strerror(v.rc));
    CHECK(v.at - t0 < 2.0, "fast");
    client_down();
}

static void t_app_cred(void)
{
    struct ims_ks_opts o = base_opts();
    o.user = o.password = NULL;
    o.app_cred_id = E("KS_AC_ID");
    o.app_cred_secret = E("KS_AC_SECRET");
    client_up(&o);
    char tok[1024];
    alice_token(tok, sizeof(tok));
    struct vres v;
    CHECK(validate_sync(tok, 0, &v) == 0 && v.rc == 0, "validated with an app-cred service "
                                                        "token: %s", ims_strerror(v.rc));
    CHECK(stats().auth_requests == 1, "one login");
    vres_clear(&v);
    client_down();

    o.app_cred_secret = "wrong-secret";
    client_up(&o);
    CHECK(validate_sync(tok, 0, &v) == 0 && v.rc == IMS_EBACKEND, "wrong secret: %s",
          ims_strerror(v.rc));
    client_down();
}

struct listres {
    int rc;
    bool done;
    char blob[1024], type[64];
    size_t n;
    bool member, reader, proj;
};

static void on_creds(void *arg, int rc, const struct ims_ks_credential *c, size_t n)
{
    struct listres *l = arg;
    l->rc = rc;
    l->done = true;
    l->n = n;
    if (n) {
        snprintf(l->blob, sizeof(l->blob), "%s", c[0].blob ? c[0].blob : "");
        snprintf(l->type, sizeof(l->type), "%s", c[0].type ? c[0].type : "");
    }
    if (++got >= want)
        ims_loop_stop(loop);
}

static void on_assign(void *arg, int rc, const struct ims_ks_assignment *a, size_t n)
{
    struct listres *l = arg;
    l->rc = rc;
    l->done = true;
    l->n = n;
    for (size_t i = 0; i < n; i++) {
        l->member |= a[i].role_name && strcmp(a[i].role_name, "member") == 0;
        l->reader |= a[i].role_name && strcmp(a[i].role_name, "reader") == 0;
        l->proj |= a[i].project_id && strcmp(a[i].project_id, E("KS_IMS_PROJECT_ID")) == 0;
    }
    if (++got >= want)
        ims_loop_stop(loop);
}

/* Credentials and role assignments need a system-scoped reader token (the
 * default: no project). */
static void t_credentials(void)
{
    struct ims_ks_opts o = base_opts();
    client_up(&o);
    struct listres l = { 0 };
    got = 0;
    CHECK(ims_ks_credentials(ks, E("KS_ALICE_ID"), "ims-digest", on_creds, &l) == 0, "start");
    CHECK(!l.done, "deferred");
    run_until(1, 30000);
    CHECK(l.done && l.rc == 0 && l.n == 1, "rc=%s n=%zu", ims_strerror(l.rc), l.n);
    CHECK(strcmp(l.type, "ims-digest") == 0, "type %s", l.type);
    json_error_t je;
    json_t *b = json_loads(l.blob, 0, &je);
    const char *impi = json_string_value(json_object_get(b, "impi"));
    CHECK(impi && strcmp(impi, "alice@ims.test") == 0, "blob impi");
    CHECK(json_string_value(json_object_get(b, "ha1")) != NULL, "blob ha1");
    json_decref(b);

    memset(&l, 0, sizeof(l));
    got = 0;
    ims_ks_credentials(ks, E("KS_ALICE_ID"), "ims-aka", on_creds, &l);
    run_until(1, 30000);
    CHECK(l.rc == 0 && l.n == 0, "no ims-aka credential");

    memset(&l, 0, sizeof(l));
    got = 0;
    CHECK(ims_ks_role_assignments(ks, E("KS_ALICE_ID"), E("KS_IMS_PROJECT_ID"), on_assign,
                                  &l) == 0, "start");
    run_until(1, 30000);
    CHECK(l.rc == 0 && l.member && l.reader && l.proj, "effective member+reader on ims: rc=%s "
          "n=%zu", ims_strerror(l.rc), l.n);
    client_down();
}

/* MFA: bob's rules are [password, totp]. */
static void t_totp(void)
{
    char tok[1024], code[7];
    long st = 0;
    user_token("bob", E("KS_BOB_PASSWORD"), NULL, tok, sizeof(tok), &st);
    CHECK(st == 401 && tok[0] == '\0', "password alone: %ld", st);
    totp_now(E("KS_BOB_TOTP"), code);
    user_token("bob", E("KS_BOB_PASSWORD"), code, tok, sizeof(tok), &st);
    CHECK(st == 201 && tok[0], "password+totp: %ld", st);
    struct ims_ks_opts o = base_opts();
    client_up(&o);
    struct vres v;
    CHECK(validate_sync(tok, 0, &v) == 0 && v.rc == 0, "valid");
    CHECK(has_method(v.tok, "password") && has_method(v.tok, "totp"), "methods password+totp");
    CHECK(v.tok && strcmp(v.tok->user_id, E("KS_BOB_ID")) == 0, "bob");
    vres_clear(&v);
    client_down();
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    { "service_auth", t_service_auth }, { "validate", t_validate },
    { "invalid", t_invalid },           { "revoked", t_revoked },
    { "cache_hit", t_cache_hit },       { "single_flight", t_single_flight },
    { "renewal", t_renewal },           { "reauth", t_reauth },
    { "keystone_down", t_keystone_down }, { "app_cred", t_app_cred },
    { "credentials", t_credentials },   { "totp", t_totp },
};

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: ks_e2e TEST\n");
        return 2;
    }
    ims_log_set_level(getenv("KS_E2E_DEBUG") ? IMS_LOG_DEBUG : IMS_LOG_INFO);
    load_env();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (ims_loop_new(1024, &loop) != 0)
        return 1;
    ims_timer_init(&guard, guard_cb, NULL);
    bool found = false;
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (strcmp(tests[i].name, argv[1]) == 0) {
            found = true;
            tests[i].fn();
        }
    }
    ims_loop_free(loop);
    curl_global_cleanup();
    if (!found) {
        fprintf(stderr, "ks_e2e: no test %s\n", argv[1]);
        return 2;
    }
    printf("%s: %s (%d failures)\n", argv[1], failures ? "FAIL" : "PASS", failures);
    return failures ? 1 : 0;
}
