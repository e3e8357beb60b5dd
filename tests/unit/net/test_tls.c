/* test_tls.c - SIP over TLS on loopback.  A throwaway CA, server and client
 * certificates are made at test time with the OpenSSL API in a mkdtemp()
 * directory and removed afterwards; no key is ever committed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/alloc.h"
#include "base/err.h"
#include "net_test.h"

static char dir[64];
static char ca_pem[128], srv_pem[128], srv_key[128], cli_pem[128], cli_key[128];
static char rogue_pem[128], rogue_key[128], rogue_ca[128];

static void add_ext(X509 *x, X509 *issuer, int nid, const char *val)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, val);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

static X509 *mk_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, bool ca,
                     long serial)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    X509 *iss = issuer ? issuer : x;
    add_ext(x, iss, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, iss, NID_subject_key_identifier, "hash");
    if (ca)
        add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    else
        add_ext(x, iss, NID_key_usage, "critical,digitalSignature");
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static void write_pem(const char *path, X509 *x, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (x)
        assert_int_equal(PEM_write_X509(f, x), 1);
    if (k)
        assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

static int certs_setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/ims-tls-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
#define P(var, name) snprintf(var, sizeof(var), "%s/" name, dir)
    P(ca_pem, "ca.pem");
    P(srv_pem, "server.pem");
    P(srv_key, "server.key");
    P(cli_pem, "client.pem");
    P(cli_key, "client.key");
    P(rogue_pem, "rogue.pem");
    P(rogue_key, "rogue.key");
    P(rogue_ca, "rogue-ca.pem");
#undef P
    EVP_PKEY *cak = EVP_EC_gen("P-256"), *sk = EVP_EC_gen("P-256"), *ck = EVP_EC_gen("P-256");
    EVP_PKEY *rk = EVP_EC_gen("P-256"), *rcak = EVP_EC_gen("P-256");
    X509 *ca = mk_cert(cak, "Test CA", NULL, NULL, true, 1);
    X509 *srv = mk_cert(sk, "server.test", ca, cak, false, 2);
    X509 *cli = mk_cert(ck, "client.test", ca, cak, false, 3);
    X509 *rca = mk_cert(rcak, "Rogue CA", NULL, NULL, true, 4);
    X509 *rogue = mk_cert(rk, "rogue.test", rca, rcak, false, 5);
    write_pem(ca_pem, ca, NULL);
    write_pem(srv_pem, srv, NULL);
    write_pem(srv_key, NULL, sk);
    write_pem(cli_pem, cli, NULL);
    write_pem(cli_key, NULL, ck);
    write_pem(rogue_pem, rogue, NULL);
    write_pem(rogue_key, NULL, rk);
    write_pem(rogue_ca, rca, NULL);
    X509_free(ca);
    X509_free(srv);
    X509_free(cli);
    X509_free(rca);
    X509_free(rogue);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(sk);
    EVP_PKEY_free(ck);
    EVP_PKEY_free(rk);
    EVP_PKEY_free(rcak);
    return 0;
}

static int certs_teardown(void **state)
{
    const char *files[] = { ca_pem, srv_pem, srv_key, cli_pem, cli_key,
                            rogue_pem, rogue_key, rogue_ca };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        unlink(files[i]);
    rmdir(dir);
    return 0;
}

struct tfx {
    struct sip_listen_cfg listen[1];
    struct sip_tp_cfg cfg;
    struct sip_tp_shared *sh;
    struct worker w;
    bool started;
    struct rxlog log;
};

static void tfx_cfg(struct tfx *fx, bool verify_client)
{
    memset(fx, 0, sizeof(*fx));
    fx->listen[0].proto = SIP_PROTO_TLS;
    assert_int_equal(ims_addr_parse(IMS_S("127.0.0.1:0"), 0, &fx->listen[0].addr), 0);
    fx->cfg.listen = fx->listen;
    fx->cfg.nlisten = 1;
    fx->cfg.max_msg = 4096;
    fx->cfg.max_conns = 32;
    fx->cfg.max_conns_per_src = 32;
    fx->cfg.idle_timeout_ms = 5000;
    fx->cfg.tls_cert_file = srv_pem;
    fx->cfg.tls_key_file = srv_key;
    fx->cfg.tls_ca_file = ca_pem;
    fx->cfg.tls_verify_client = verify_client;
    rxlog_init(&fx->log);
}

static void tfx_start(struct tfx *fx)
{
    char err[256];
    int rc = ims_sip_tp_shared_new(&fx->cfg, &fx->sh, err, sizeof(err));
    if (rc)
        fail_msg("shared_new: %s", err);
    rc = worker_start(&fx->w, 0, fx->sh, &fx->cfg, &fx->log, err, sizeof(err));
    if (rc)
        fail_msg("worker_start: %s", err);
    fx->started = true;
}

static void tfx_stop(struct tfx *fx)
{
    if (fx->started)
        workers_stop(&fx->w, 1);
    ims_sip_tp_shared_free(fx->sh);
    rxlog_free(&fx->log);
}

static struct ims_addr tls_addr(struct tfx *fx)
{
    struct ims_addr a;
    assert_int_equal(w_local(&fx->w, SIP_PROTO_TLS, AF_INET, &a), 0);
    return a;
}

/* A blocking test client.  cert/key may be NULL. */
static SSL_CTX *client_ctx(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_load_verify_locations(ctx, ca_pem, NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cert) {
        assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, cert), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
    }
    return ctx;
}

static SSL *client_connect(SSL_CTX *ctx, const struct ims_addr *a, int *fdp)
{
    int fd = tcp_client(a);
    assert_true(fd >= 0);
    SSL *s = SSL_new(ctx);
    SSL_set_fd(s, fd);
    SSL_set1_host(s, "server.test"); /* the server's certificate is checked */
    *fdp = fd;
    if (SSL_connect(s) != 1) {
        ERR_clear_error();
        SSL_free(s);
        close(fd);
        *fdp = -1;
        return NULL;
    }
    return s;
}

static void test_tls_echo(void **state)
{
    struct tfx fx;
    tfx_cfg(&fx, false);
    tfx_start(&fx);
    fx.w.echo = true;
    struct ims_addr a = tls_addr(&fx);
    SSL_CTX *ctx = client_ctx(NULL, NULL);
    int fd;
    SSL *s = client_connect(ctx, &a, &fd);
    assert_non_null(s);
    assert_true(SSL_version(s) >= TLS1_2_VERSION);
    char msg[2048], back[2048];
    size_t len = mk_msg(msg, sizeof(msg), 1, 100);
    /* in two records, to exercise framing over TLS */
    assert_int_equal(SSL_write(s, msg, 50), 50);
    assert_int_equal(SSL_write(s, msg + 50, (int)len - 50), (int)len - 50);
    size_t got = 0;
    while (got < len) {
        int n = SSL_read(s, back + got, (int)(sizeof(back) - got));
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_int_equal(got, len);
    assert_memory_equal(back, msg, len);
    assert_true(rxlog_wait(&fx.log, 1, 2000));
    struct rx_rec r = rxlog_get(&fx.log, 0);
    assert_int_equal(r.proto, SIP_PROTO_TLS);
    assert_false(r.has_cn); /* client certificates not asked for */
    assert_true(r.conn_id != 0);
    /* CRLF ping over TLS */
    assert_int_equal(SSL_write(s, "\r\n\r\n", 4), 4);
    assert_int_equal(SSL_read(s, back, 2), 2);
    assert_memory_equal(back, "\r\n", 2);
    SSL_shutdown(s);
    SSL_free(s);
    close(fd);
    SSL_CTX_free(ctx);
    tfx_stop(&fx);
}

static void test_tls_old_version_refused(void **state)
{
    struct tfx fx;
    tfx_cfg(&fx, false);
    tfx_start(&fx);
    struct ims_addr a = tls_addr(&fx);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    SSL_CTX_set_security_level(ctx, 0);
    assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(ctx, TLS1_1_VERSION), 1);
    SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
    int fd = tcp_client(&a);
    assert_true(fd >= 0);
    SSL *s = SSL_new(ctx);
    SSL_set_fd(s, fd);
    assert_true(SSL_connect(s) != 1);
    ERR_clear_error();
    SSL_free(s);
    close(fd);
    SSL_CTX_free(ctx);
    assert_true(w_wait_stat(&fx.w, STAT_OFF(conns_current), 0, 2000));
    struct sip_tp_stats st;
    w_stats(&fx.w, &st);
    assert_int_equal(st.conn_errors, 1);
    assert_int_equal(rxlog_count(&fx.log), 0);
    tfx_stop(&fx);
}

/* Sends a message; true if the server delivered it and kept the link. */
static bool try_client(struct tfx *fx, const char *cert, const char *key)
{
    struct ims_addr a = tls_addr(fx);
    SSL_CTX *ctx = client_ctx(cert, key);
    int fd;
    bool ok = false;
    size_t before = rxlog_count(&fx->log);
    SSL *s = client_connect(ctx, &a, &fd);
    if (s) {
        /* TLS 1.3: the client finishes first; a refused certificate shows
         * as an alert on the next read */
        char msg[1024], back[1024];
        size_t len = mk_msg(msg, sizeof(msg), 4, 0);
        if (SSL_write(s, msg, (int)len) == (int)len) {
            int n = SSL_read(s, back, (int)len); /* the server echoes */
            ok = n > 0;
        }
        ERR_clear_error();
        SSL_free(s);
        close(fd);
    }
    SSL_CTX_free(ctx);
    if (!ok)
        assert_int_equal(rxlog_count(&fx->log), before);
    return ok;
}

static void test_tls_client_cert(void **state)
{
    struct tfx fx;
    tfx_cfg(&fx, true);
    tfx_start(&fx);
    fx.w.echo = true;
    assert_false(try_client(&fx, NULL, NULL));           /* no certificate */
    assert_false(try_client(&fx, rogue_pem, rogue_key)); /* not from our CA */
    assert_true(try_client(&fx, cli_pem, cli_key));
    assert_int_equal(rxlog_count(&fx.log), 1);
    struct rx_rec r = rxlog_get(&fx.log, 0);
    assert_true(r.has_cn);
    assert_string_equal(r.cn, "client.test");
    assert_true(w_wait_stat(&fx.w, STAT_OFF(conn_errors), 2, 2000));
    tfx_stop(&fx);
}

static void test_tls_outgoing(void **state)
{
    /* One worker talks TLS to its own listener: the outgoing side verifies
     * the server and presents our certificate; the accepting side requires
     * and verifies it. */
    struct tfx fx;
    tfx_cfg(&fx, true);
    fx.cfg.tls_verify_server = true;
    tfx_start(&fx);
    struct ims_addr a = tls_addr(&fx);
    char m1[1024], m2[1024];
    size_t l1 = mk_msg(m1, sizeof(m1), 1, 7), l2 = mk_msg(m2, sizeof(m2), 2, 9);
    /* queued until connected and the handshake is done */
    assert_int_equal(w_send(&fx.w, SIP_PROTO_TLS, &a, 0, m1, l1), 0);
    assert_int_equal(w_send(&fx.w, SIP_PROTO_TLS, &a, 0, m1, l1), 0);
    assert_true(rxlog_wait(&fx.log, 2, 3000));
    struct rx_rec r = rxlog_get(&fx.log, 0);
    assert_int_equal(r.proto, SIP_PROTO_TLS);
    assert_true(r.has_cn);
    assert_string_equal(r.cn, "server.test");
    assert_int_equal(r.len, l1);
    assert_memory_equal(r.data, m1, l1);
    /* answer on the accepted connection: arrives on the outgoing one, whose
     * peer (the listener) was verified too */
    assert_int_equal(w_send(&fx.w, SIP_PROTO_TLS, NULL, r.conn_id, m2, l2), 0);
    assert_true(rxlog_wait(&fx.log, 3, 3000));
    struct rx_rec r2 = rxlog_get(&fx.log, 2);
    assert_true(r2.conn_id != r.conn_id);
    assert_true(ims_addr_equal(&r2.src, &a));
    assert_true(r2.has_cn);
    assert_string_equal(r2.cn, "server.test");
    assert_memory_equal(r2.data, m2, l2);
    struct sip_tp_stats st;
    w_stats(&fx.w, &st);
    assert_int_equal(st.conns_open, 2);
    tfx_stop(&fx);

    /* the server's certificate is not from the CA we trust: no delivery */
    tfx_cfg(&fx, false);
    fx.cfg.tls_verify_server = true;
    fx.cfg.tls_ca_file = rogue_ca;
    tfx_start(&fx);
    a = tls_addr(&fx);
    assert_int_equal(w_send(&fx.w, SIP_PROTO_TLS, &a, 0, m1, l1), 0);
    assert_true(w_wait_stat(&fx.w, STAT_OFF(conns_current), 0, 3000));
    w_stats(&fx.w, &st);
    assert_true(st.conn_errors >= 1);
    assert_int_equal(rxlog_count(&fx.log), 0);
    tfx_stop(&fx);
}

static void test_tls_bad_files(void **state)
{
    struct tfx fx;
    char err[256];
    tfx_cfg(&fx, true);
    fx.cfg.tls_key_file = cli_key; /* does not match the certificate */
    assert_int_equal(ims_sip_tp_shared_new(&fx.cfg, &fx.sh, err, sizeof(err)), IMS_EINVAL);
    assert_non_null(strstr(err, "tls_key_file"));
    fx.cfg.tls_key_file = srv_key;
    fx.cfg.tls_cert_file = "/nonexistent/cert.pem";
    assert_int_equal(ims_sip_tp_shared_new(&fx.cfg, &fx.sh, err, sizeof(err)), IMS_EINVAL);
    assert_non_null(strstr(err, "tls_cert_file"));
    fx.cfg.tls_cert_file = srv_pem;
    fx.cfg.tls_ca_file = NULL;
    assert_int_equal(ims_sip_tp_shared_new(&fx.cfg, &fx.sh, err, sizeof(err)), IMS_EINVAL);
    assert_non_null(strstr(err, "tls_ca_file"));
    fx.cfg.tls_ca_file = ca_pem;
    fx.cfg.tls_ciphers = "NOPE-NOT-A-CIPHER";
    assert_int_equal(ims_sip_tp_shared_new(&fx.cfg, &fx.sh, err, sizeof(err)), IMS_EINVAL);
    assert_non_null(strstr(err, "tls_ciphers"));
    rxlog_free(&fx.log);
}

struct fail_send {
    const struct ims_addr *dst;
    unsigned long n;
    int rc;
};

static void fail_send_fn(struct worker *w, void *arg)
{
    struct fail_send *f = arg;
    char msg[512];
    size_t len = mk_msg(msg, sizeof(msg), 1, 0);
    ims_alloc_fail_at(f->n, 0);
    f->rc = ims_sip_tp_send(w->tp, SIP_PROTO_TLS, f->dst, 0, NULL, msg, len);
    ims_alloc_fail_at(0, 0);
}

static void test_tls_alloc_fail_send(void **state)
{
    struct tfx fx;
    tfx_cfg(&fx, false);
    tfx_start(&fx);
    struct ims_addr a = tls_addr(&fx);
    unsigned long n;
    for (n = 1;; n++) {
        struct fail_send f = { &a, n, 0 };
        worker_call(&fx.w, fail_send_fn, &f);
        if (f.rc == 0)
            break;
        assert_int_equal(f.rc, IMS_ENOMEM);
        assert_true(w_wait_stat(&fx.w, STAT_OFF(conns_current), 0, 2000));
        assert_true(n < 20);
    }
    assert_true(n > 1);
    assert_true(rxlog_wait(&fx.log, 1, 3000));
    tfx_stop(&fx);
}

int run_tls_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_echo),
        cmocka_unit_test(test_tls_old_version_refused),
        cmocka_unit_test(test_tls_client_cert),
        cmocka_unit_test(test_tls_outgoing),
        cmocka_unit_test(test_tls_bad_files),
        cmocka_unit_test(test_tls_alloc_fail_send),
    };
    return cmocka_run_group_tests_name("net_tls", tests, certs_setup, certs_teardown);
}
